"""Lesson 4, model 3: the threaded server, a thread per connection.

    python part3_concurrency/threaded_server.py [module:app] [--max-threads N] [--host H] [--port P]

The main thread accepts; each connection gets a thread of its own that runs part 2's
``handle_connection``, unchanged. Threads share one process: starting one is cheaper
than a fork, and they share memory, so the app must be thread-safe (``wsgi.multithread``
tells it so). Python's GIL lets only one thread run Python code at a time, but a thread
waiting on a socket or in ``time.sleep`` releases it: for a server that mostly waits,
threads overlap well. ``--max-threads`` caps them: a flood of clients must not start
thousands of threads (``ConnectionThreads`` in serving.py, which also reuses them).

The servers in this folder differ in one thing, what happens to a connection once
accepted: diff any two to see it. What every server needs besides (deadlines for slow
clients, running out of descriptors, a grace period on Ctrl-C) lives once, in
part2_wsgi/protocol.py and part2_wsgi/serving.py.
"""

import sys
from functools import partial
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.server import handle_connection
from part2_wsgi.serving import ConnectionThreads, accept, count_option, run


def serve_forever(listener, app, args):
    server_address = (args.host, listener.getsockname()[1])
    threads = ConnectionThreads(args.max_threads)
    serve = partial(handle_connection, app=app, server_address=server_address, persistent=True, multithread=True)
    try:
        while True:
            threads.wait_for_free_slot()  # all busy: wait here, and new clients in the backlog
            connection, address = accept(listener)
            # Hand the connection to a thread and go straight back to accept(). The thread
            # keeps it open for more requests: waiting costs nobody else now.
            threads.start(serve, connection, address)
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        threads.wait_for_all()  # requests in flight may finish, for a grace period


if __name__ == "__main__":
    options = count_option("--max-threads", 100, "most connections served at once; more wait in the backlog")
    sys.exit(run("A threaded WSGI server: one thread per connection, up to --max-threads.", serve_forever, options))
