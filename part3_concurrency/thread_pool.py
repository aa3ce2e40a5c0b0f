"""What production adds to the threaded server: threads that wait for the next connection.

    python part3_concurrency/thread_pool.py [module:app] [--max-threads N] [--host H] [--port P]

threaded_server.py starts a thread for every connection, and ``Thread.start()`` waits
until the new thread runs: the accepting thread stands still meanwhile, as long as the
operating system takes to schedule the new thread and the GIL to let it in, at every
connection. Here a thread whose connection has ended waits for the next one instead of
exiting, and the accepting thread hands it over through a queue, which never waits; a
new thread starts only when none is free, up to the same cap. gunicorn's gthread worker
and waitress keep pools of threads for the same reason; docs/bench/tuning.md has what
it was measured to save. Diff this file against threaded_server.py to see what it costs
in code: a queue, a semaphore that counts the waiting threads, a set of the connections
in flight (the threads outlive them), and a loop in each thread.
"""

import queue
import sys
import threading
import time
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import accept, count_option, grace_period, run
from part2_wsgi.connection_handler import handle_connection


def serve_forever(listener, app, settings):
    server_address = (settings.host, listener.getsockname()[1])
    free_slots = threading.BoundedSemaphore(settings.max_threads)  # connections we may take on
    in_flight = set()  # connections being served: the grace period waits for them (threads outlive them)
    handed_over = queue.SimpleQueue()  # connections for the threads that wait for one
    waiting_threads = threading.Semaphore(0)  # how many threads wait on handed_over

    def serve_connections(connection, address):
        """A thread's life: serve its connection, then wait for the next one handed over."""
        while True:
            try:
                handle_connection(connection, address, app, server_address, settings, persistent=True, multithread=True)
            finally:  # however serving ended, or a failure would keep the slot for good
                in_flight.discard(connection)
                free_slots.release()
            waiting_threads.release()
            connection, address = handed_over.get()

    try:
        while True:
            free_slots.acquire()  # all busy: wait here, and new clients in the backlog
            connection, address = accept(listener)
            in_flight.add(connection)
            if waiting_threads.acquire(blocking=False):  # a thread is free: no need to start one
                handed_over.put((connection, address))
            else:
                # daemon: a thread stuck on a silent client must not keep us alive after Ctrl-C
                threading.Thread(target=serve_connections, args=(connection, address), daemon=True).start()
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        for _ in grace_period(lambda: in_flight):  # requests in flight may finish, for a while
            time.sleep(0.01)


if __name__ == "__main__":
    options = count_option("--max-threads", 100, "most connections served at once; more wait in the backlog")
    sys.exit(run("A threaded WSGI server that reuses its threads, up to --max-threads.", serve_forever, options))
