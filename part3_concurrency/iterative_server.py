"""Lesson 4, model 1: the iterative server, one connection at a time. The baseline.

    python part3_concurrency/iterative_server.py [module:app] [--host H] [--port P]

This is part 2's server loop: accept a connection, serve it, close it, accept the next.
While one client is served, everyone else waits. They are not refused: the kernel
finishes their TCP handshakes on its own and queues them in the *listen backlog*
(``listen(BACKLOG)``; see part2_wsgi/serving.py), and ``accept()`` takes them out one
by one. Five clients asking for ``/sleep?seconds=1`` together therefore take five
seconds: the last one waits four seconds in the queue before its one second of work.

The three other servers in this folder change one thing, what happens to a connection
once accepted, and nothing else. Diff this file against any of them to see it.
"""

if __name__ == "__main__":
    # Run by path (python part3_concurrency/iterative_server.py), Python puts this file's folder on sys.path, not the
    # repository's root: put the root there, so the imports below work with nothing installed.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sys

from part2_wsgi.server import handle_connection
from part2_wsgi.serving import run


# These lines are part2_wsgi/server.py's loop, written out again on purpose rather than
# imported: this file is the baseline the other three are diffed against (notebook 03),
# and a diff against an import line would show nothing.
def serve_forever(listener, app, args):
    server_address = (args.host, listener.getsockname()[1])
    while True:
        connection, address = listener.accept()
        # Serve this client to the end before accepting anyone else. One request per
        # connection: keeping it open for more would make everyone else wait longer.
        handle_connection(connection, address, app, server_address)


if __name__ == "__main__":
    sys.exit(run("An iterative WSGI server: one connection at a time.", serve_forever))
