"""Lesson 4, model 3: the threaded server, a thread per connection.

    python part3_concurrency/threaded_server.py [module:app] [--max-threads N] [--host H] [--port P]

The main thread accepts; each connection gets a thread of its own that runs part 2's
``handle_connection``, unchanged, and ends with it. Threads share one process and its
memory, so the app must be thread-safe (``wsgi.multithread`` tells it so). Python's GIL
lets one thread at a time run Python code, but a thread waiting on a socket or in
``time.sleep`` releases it: for a server that mostly waits, threads overlap well.
``--max-threads`` caps them with a semaphore: a flood of clients must not start a flood
of threads.

What the servers in this folder have in common, and what they leave to the shared
layer, is said once, in iterative_server.py.
"""

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

    def serve_then_free_the_slot(connection, address):
        try:
            handle_connection(connection, address, app, server_address, settings, persistent=True, multithread=True)
        finally:  # however serving ended, or a failure would keep the slot for good
            free_slots.release()

    try:
        while True:
            free_slots.acquire()  # all busy: wait here, and new clients in the backlog
            connection, address = accept(listener)
            # Hand the connection to a thread and go straight back to accept(). The thread
            # keeps it open for more requests: waiting costs nobody else now.
            # daemon: a thread stuck on a silent client must not keep us alive after Ctrl-C.
            threading.Thread(target=serve_then_free_the_slot, args=(connection, address), daemon=True).start()
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        for _ in grace_period(lambda: threading.active_count() > 1):  # every other thread serves a client:
            time.sleep(0.01)  # requests in flight may finish, for a while


if __name__ == "__main__":
    options = count_option("--max-threads", 100, "most connections served at once; more wait in the backlog")
    sys.exit(run("A threaded WSGI server: one thread per connection, up to --max-threads.", serve_forever, options))
