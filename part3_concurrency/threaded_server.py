"""Lesson 4, model 3: the threaded server, a thread per connection.

    python part3_concurrency/threaded_server.py [module:app] [--max-threads N] [--host H] [--port P]

The main thread accepts; each connection gets a thread of its own that runs part 2's
``handle_connection``, unchanged. Threads share one process: starting one is cheaper
than a fork, and they share memory, so the app must be thread-safe
(``wsgi.multithread`` tells it so). Python's GIL lets only one thread run Python code at
a time, but a thread waiting on a socket or in ``time.sleep`` releases it: for a server
that mostly waits, threads overlap well.

A thread per connection, without a limit, lets a flood of clients start thousands of
threads and exhaust memory. So a semaphore caps them at ``--max-threads``: when all are
busy, the main thread stops accepting, and new clients wait in the listen backlog.
"""

import sys
import threading
import time

from part2_wsgi.serving import log_problem, positive_int, raise_open_file_limit, run
from part2_wsgi.server import handle_connection

KEEP_ALIVE_TIMEOUT = 5  # seconds a thread waits for the next request on an idle connection
GRACE_PERIOD = 1.0  # on Ctrl-C, how long threads may finish what they are doing
DEFAULT_MAX_THREADS = 100
ACCEPT_PAUSE = 0.1  # seconds to stop accepting when out of file descriptors


def serve_forever(listener, app, args):
    server_address = (args.host, listener.getsockname()[1])
    raise_open_file_limit()  # each connection is a descriptor; see serving.py
    free_slots = threading.BoundedSemaphore(args.max_threads)
    threads = set()

    def serve_then_free_slot(connection, address):
        try:
            handle_connection(connection, address, app, server_address, keep_alive=True, timeout=KEEP_ALIVE_TIMEOUT, multithread=True)
        finally:
            free_slots.release()
            threads.discard(threading.current_thread())

    try:
        while True:
            free_slots.acquire()  # wait for a free thread *before* accepting
            try:
                connection, address = listener.accept()
            except OSError as error:
                # Out of file descriptors (EMFILE), most likely: the server must not die
                # of it. Give the slot back, wait a moment for connections to close.
                free_slots.release()
                log_problem(("server", "-"), f"cannot accept: {error.strerror}; pausing for {ACCEPT_PAUSE} s")
                time.sleep(ACCEPT_PAUSE)
                continue
            # daemon=True: a thread stuck on a silent client must not keep the process
            # alive after Ctrl-C; we give threads a grace period below instead.
            thread = threading.Thread(target=serve_then_free_slot, args=(connection, address), daemon=True)
            threads.add(thread)
            thread.start()
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        wait_for(threads, GRACE_PERIOD)


def wait_for(threads, seconds):
    """Let requests in flight finish, for a while; idle keep-alive threads are abandoned."""
    deadline = time.monotonic() + seconds
    for thread in list(threads):
        thread.join(max(0, deadline - time.monotonic()))


def add_options(parser):
    parser.add_argument(
        "--max-threads", type=positive_int, default=DEFAULT_MAX_THREADS,
        help=f"most connections served at once (default {DEFAULT_MAX_THREADS}); more wait in the backlog",
    )


if __name__ == "__main__":
    sys.exit(run("A threaded WSGI server: one thread per connection, up to --max-threads.", serve_forever, add_options))
