"""Lesson 3, the server: a single-threaded WSGI server that runs any PEP 3333 app.

    python part2_wsgi/server.py                                   # the built-in demo app
    python part2_wsgi/server.py part2_wsgi.apps.flask_app:app     # Flask, unmodified
    python part2_wsgi/server.py part2_wsgi.apps.django_app:application

This file owns the socket loop and nothing else. It takes the same road as part 1's
http_server.py, but each stop now has a module of its own:

    recv() bytes --> Connection (connection.py) --> Request
                 --> build_environ + run_app (wsgi.py) --> the app --> send()

``handle_connection`` (connection_handler.py) serves one client on its socket: it feeds
the ``Connection`` what arrives and carries out what it decides (when to answer
``100 Continue``, whether to keep the connection, what to do after an error, how long to
wait). The command line, loading the app, the listening socket and the log are
command_line.py's. What is left here is the loop: accept a connection, serve it, close
it, accept the next.

One request per connection: while this one thread waits for a client's next request,
nobody else is served. Part 3's servers, which serve many clients at once, keep
connections open.
"""

import sys
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import accept, run
from part2_wsgi.connection_handler import handle_connection


def serve_forever(listener, app, settings):
    """Accept one connection at a time and serve it: the iterative loop."""
    server_address = (settings.host, listener.getsockname()[1])
    while True:
        connection, address = accept(listener)
        handle_connection(connection, address, app, server_address, settings, persistent=False)


if __name__ == "__main__":
    description = "A single-threaded WSGI server: one connection at a time, one request per connection."
    sys.exit(run(description, serve_forever, one_at_a_time=True))
