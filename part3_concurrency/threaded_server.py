"""Lesson 4, model 3: the threaded server, a thread per connection.

    python part3_concurrency/threaded_server.py [module:app] [--max-threads N] [--host H] [--port P]

The main thread accepts; each connection gets a thread of its own that runs part 2's
``handle_connection``, unchanged. Threads share one process and its memory, so the app
must be thread-safe (``wsgi.multithread`` tells it so). Python's GIL lets one thread at a
time run Python code, but a thread waiting on a socket or in ``time.sleep`` releases it:
for a server that mostly waits, threads overlap well. ``--max-threads`` caps them with a
semaphore, and a thread whose connection ended waits for the next one: handing it over
costs less than starting a thread (docs/bench/tuning.md says how much).

The servers in this folder differ in one thing, what happens to a connection once
accepted: diff any two to see it. What every server needs besides (deadlines for slow
clients, running out of descriptors, a grace period on Ctrl-C) lives once, in
part2_wsgi/protocol.py and part2_wsgi/command_line.py.
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
    in_flight = set()  # connections being served: the grace period waits for them
    handed_over = queue.SimpleQueue()  # connections for the threads that wait for one
    waiting_threads = threading.Semaphore(0)  # how many threads wait on handed_over

    def serve_connections(connection, address):
        """A thread's life: serve its connection, then wait for the next one handed over."""
        while True:
            try:
                handle_connection(connection, address, app, server_address, settings, persistent=True, multithread=True)
            finally:  # however serving ended, the slot is free again
                in_flight.discard(connection)
                free_slots.release()
            waiting_threads.release()
            connection, address = handed_over.get()

    try:
        while True:
            free_slots.acquire()  # all busy: wait here, and new clients in the backlog
            connection, address = accept(listener)
            in_flight.add(connection)
            # Hand the connection to a thread and go straight back to accept(). The thread
            # keeps it open for more requests: waiting costs nobody else now.
            if waiting_threads.acquire(blocking=False):
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
    description = "A threaded WSGI server: one thread per connection, up to --max-threads."
    sys.exit(run(description, serve_forever, options, serves_others_meanwhile=True))
