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

Threads are started as connections need them, and *reused*: when its connection ends, a
thread waits for the next one rather than exiting. Starting a thread costs a handshake
with the new thread (about 80 microseconds, and a wait for the GIL). Measured here with
``wrk -t2 -c10 -d3s -H 'Connection: close'`` against the hello-world app (``--quiet``):
a new thread per connection served about 4,200 requests a second, reused threads
about 7,000.
"""

if __name__ == "__main__":
    # Run by path (python part3_concurrency/threaded_server.py), Python puts this file's folder on sys.path, not the
    # repository's root: put the root there, so the imports below work with nothing installed.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import queue
import sys
import threading
import time

from part2_wsgi.server import handle_connection
from part2_wsgi.serving import log_problem, positive_int, raise_open_file_limit, run

KEEP_ALIVE_TIMEOUT = 5  # seconds a thread waits for the next request on an idle connection
GRACE_PERIOD = 1.0  # on Ctrl-C, how long threads may finish what they are doing
DEFAULT_MAX_THREADS = 100
ACCEPT_PAUSE = 0.1  # seconds to stop accepting when out of file descriptors


def serve_forever(listener, app, args):
    server_address = (args.host, listener.getsockname()[1])
    raise_open_file_limit()  # each connection is a descriptor; see serving.py
    free_slots = threading.BoundedSemaphore(args.max_threads)  # connections we may take on
    idle_threads = threading.Semaphore(0)  # threads waiting for their next connection
    handed_over = queue.SimpleQueue()  # connections for the idle threads to take

    def serve_connections(connection, address):
        """A thread's life: serve its first connection, then each one handed over."""
        while True:
            try:
                handle_connection(
                    connection,
                    address,
                    app,
                    server_address,
                    keep_alive=True,
                    timeout=KEEP_ALIVE_TIMEOUT,
                    multithread=True,
                )
            finally:
                free_slots.release()
            idle_threads.release()  # count me among the idle, then wait for work
            connection, address = handed_over.get()

    try:
        while True:
            free_slots.acquire()  # wait for a free slot *before* accepting
            try:
                connection, address = listener.accept()
            except OSError as error:
                # Out of file descriptors (EMFILE), most likely: the server must not die
                # of it. Give the slot back, wait a moment for connections to close.
                free_slots.release()
                log_problem(("server", "-"), f"cannot accept: {error.strerror}; pausing for {ACCEPT_PAUSE} s")
                time.sleep(ACCEPT_PAUSE)
                continue
            if idle_threads.acquire(blocking=False):
                handed_over.put((connection, address))  # an idle thread will take it
            else:
                # No idle thread: start one. daemon=True: a thread stuck on a silent client
                # must not keep the process alive after Ctrl-C; see the grace period below.
                threading.Thread(target=serve_connections, args=(connection, address), daemon=True).start()
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        wait_for_slots(free_slots, args.max_threads, GRACE_PERIOD)


def wait_for_slots(free_slots, count, seconds):
    """Let requests in flight finish, for a while: every slot free means every connection
    is done. Idle keep-alive connections are abandoned when the time is up."""
    deadline = time.monotonic() + seconds
    for _ in range(count):
        if not free_slots.acquire(timeout=max(0, deadline - time.monotonic())):
            return


def add_options(parser):
    parser.add_argument(
        "--max-threads",
        type=positive_int,
        default=DEFAULT_MAX_THREADS,
        help=f"most connections served at once (default {DEFAULT_MAX_THREADS}); more wait in the backlog",
    )


if __name__ == "__main__":
    sys.exit(run("A threaded WSGI server: one thread per connection, up to --max-threads.", serve_forever, add_options))
