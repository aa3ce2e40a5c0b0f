"""Lesson 3, room 3: a single-threaded WSGI server that runs any PEP 3333 app.

    python part2_wsgi/server.py                                   # the built-in demo app
    python part2_wsgi/server.py part2_wsgi.apps.flask_app:app     # Flask, unmodified
    python part2_wsgi/server.py part2_wsgi.apps.django_app:application

This file owns the sockets and nothing else. It takes the same road as part 1's
http_server.py, but each stop is now a room of its own:

    recv() bytes --> RequestParser (protocol.py) --> Request
                 --> build_environ + run_app (wsgi.py) --> the app --> sendall()

``handle_connection`` serves one client; part 3's blocking servers reuse it unchanged
and differ only in how they hand connections to it.
"""

if __name__ == "__main__":
    # Run by path (python part2_wsgi/server.py), Python puts this file's folder on sys.path, not the
    # repository's root: put the root there, so the imports below work with nothing installed.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import socket
import sys

from part2_wsgi.protocol import CONTINUE, HTTPError, RequestParser, error_response
from part2_wsgi.serving import CHUNK, close_gently, log_problem, log_request, run
from part2_wsgi.wsgi import ClientDisconnected, build_environ, run_app

# A single-threaded server serves nobody else while it waits on one client, so a client
# that connects and then says nothing (or types slowly into telnet) would block everyone.
# After this many seconds of silence we give up on it and serve the next.
READ_TIMEOUT = 10


def read_request(connection, parser):
    """Receive until the parser holds one whole request; None if the client closed first."""
    continue_sent = False
    while (request := parser.next_request()) is None:
        waiting = parser.waiting_for_body
        if waiting is not None and waiting.expects_continue and not continue_sent:
            # curl sends "Expect: 100-continue" before a large upload and waits for
            # this go-ahead: the head was fine (not too large, say), so send the body.
            connection.sendall(CONTINUE)
            continue_sent = True
        data = connection.recv(CHUNK)
        if not data:
            if parser.has_partial_request:
                raise ConnectionError("closed the connection in the middle of a request")
            return None
        parser.feed(data)
    return request


def disable_nagle(connection):
    """Send small writes at once. By default TCP holds a small write back until the
    previous one is acknowledged (Nagle's algorithm), and the client delays its
    acknowledgement (by 40 ms on Linux): a streamed response of small chunks on a kept-
    alive connection would crawl at 40 ms a chunk. We write whole pieces, so no need."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def handle_connection(
    connection,
    address,
    app,
    server_address,
    keep_alive=False,
    timeout=READ_TIMEOUT,
    multithread=False,
    multiprocess=False,
):
    """Serve one client: read a request, run the app, send the response; repeat while
    ``keep_alive`` and the client want it; then close the connection."""
    connection.settimeout(timeout)
    disable_nagle(connection)
    parser = RequestParser()
    refused = False
    try:
        while True:
            request = read_request(connection, parser)
            if request is None:
                break  # the client closed between requests: the normal end of keep-alive
            environ = build_environ(request, *server_address, *address[:2], multithread, multiprocess)
            response = run_app(app, environ, request, connection.sendall, keep_alive)
            log_request(address, request, response.status_code, response.bytes_sent)
            if not response.keep_alive:
                break
    except HTTPError as error:
        # A malformed or oversized request: answer with its status, then hang up,
        # because we can no longer tell where the next request would begin.
        refused = True
        try:
            connection.sendall(error_response(error))
        except OSError:
            pass
        log_request(address, None, error.status.value, 0)
        log_problem(address, f"bad request: {error.status_line}: {error.detail}")
    except TimeoutError:
        if parser.has_partial_request:
            log_problem(address, f"sent part of a request, then nothing for {timeout} s: dropped")
    except (ConnectionError, ClientDisconnected) as error:
        log_problem(address, f"went away: {error}")
    except BaseException:
        connection.close()  # Ctrl-C in the middle of a request: close now, no lingering
        raise
    if refused or parser.has_partial_request:
        close_gently(connection)  # the client may still be sending: see close_gently
    else:
        connection.close()  # all it sent is read: nothing to wait for


def serve_forever(listener, app, args):
    """Accept one connection at a time and serve it: the iterative loop."""
    server_address = (args.host, listener.getsockname()[1])
    while True:
        connection, address = listener.accept()
        handle_connection(connection, address, app, server_address)


if __name__ == "__main__":
    sys.exit(run("A single-threaded WSGI server: one connection at a time, one request per connection.", serve_forever))
