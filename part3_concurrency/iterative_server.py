"""Lesson 4, model 1: the iterative server, one connection at a time. The baseline.

    python part3_concurrency/iterative_server.py [module:app] [--host H] [--port P]

This is part 2's server loop, written out again so that the others can be diffed
against it: accept a connection, serve it, close it, accept the next. While one client
is served, everyone else waits. They are not refused: the kernel finishes their TCP
handshakes on its own and queues them in the *listen backlog* (see command_line.py), and
``accept()`` takes them out one by one. Five clients asking for ``/sleep?seconds=1``
together take five seconds: the last one waits four seconds before its one second.

The servers in this folder differ in one thing, what happens to a connection once
accepted: diff any two to see it. What every server needs besides (deadlines for slow
clients, running out of descriptors, a grace period on Ctrl-C) lives once, in
part2_wsgi/connection.py and part2_wsgi/command_line.py.
"""

import sys
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import accept, run
from part2_wsgi.connection_handler import handle_connection


def serve_forever(listener, app, settings):
    server_address = (settings.host, listener.getsockname()[1])
    while True:
        connection, address = accept(listener)
        # Serve this client to the end before accepting anyone else. One request per
        # connection: keeping it open for more would make everyone else wait longer.
        handle_connection(connection, address, app, server_address, settings, persistent=False)


if __name__ == "__main__":
    sys.exit(run("An iterative WSGI server: one connection at a time.", serve_forever, one_at_a_time=True))
