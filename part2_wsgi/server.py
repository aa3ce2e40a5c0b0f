"""Lesson 3, room 3: a single-threaded WSGI server that runs any PEP 3333 app.

    python part2_wsgi/server.py                                   # the built-in demo app
    python part2_wsgi/server.py part2_wsgi.apps.flask_app:app     # Flask, unmodified
    python part2_wsgi/server.py part2_wsgi.apps.django_app:application

This file owns the sockets and nothing else. It takes the same road as part 1's
http_server.py, but each stop is now a room of its own:

    recv() bytes --> Connection (protocol.py) --> Request
                 --> build_environ + run_app (wsgi.py) --> the app --> sendall()

The protocol ``Connection`` decides every HTTP rule (when to answer ``100 Continue``,
whether to keep the connection, what to do after an error, how long to wait); this
file only carries out what it says: receive, send, keep time, close.

``handle_connection`` serves one client; part 3's blocking servers reuse it unchanged
and differ only in how they hand connections to it.
"""

import socket
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi import serving
from part2_wsgi.protocol import NEED_DATA, Close, Connection, Request, Send
from part2_wsgi.serving import CHUNK, accept, close_gently, log_close, log_request, run
from part2_wsgi.wsgi import ClientDisconnected, build_environ, run_app


def handle_connection(sock, address, app, server_address, persistent=False, multithread=False, multiprocess=False):
    """Serve one client, doing what its protocol ``Connection`` says, until it says close.

    ``persistent``: keep the connection open for more requests, as long as the client
    wants; part 2 serves one request per connection. ``multithread`` and ``multiprocess``
    tell the app whether other requests run beside it (PEP 3333's environ keys)."""
    disable_nagle(sock)
    http = Connection(persistent=persistent, deadlines=serving.deadlines)
    try:
        while not isinstance(event := http.next_event(), Close):
            if event is NEED_DATA:
                receive(sock, http)
                continue
            # Now we send: give up on a client that takes none of it for a while.
            sock.settimeout(http.deadlines.send)
            if isinstance(event, Send):
                sock.sendall(event.data)
            elif isinstance(event, Request):
                environ = build_environ(
                    event,
                    server_address=server_address,
                    client_address=address,
                    multithread=multithread,
                    multiprocess=multiprocess,
                )
                response = run_app(app, environ, http, sock.sendall)
                log_request(address, event, response.status_code, response.bytes_sent)
    except (OSError, ClientDisconnected) as error:
        event = http.connection_lost(error)
    except BaseException:
        sock.close()  # Ctrl-C in the middle of a request: close now, no lingering
        raise
    log_close(address, event)
    if event.linger:
        close_gently(sock)  # the client may still be sending: see close_gently
    else:
        sock.close()


def receive(sock, http):
    """Receive what the client sends next, but wait no longer than its deadline.

    A single-threaded server serves nobody else while it waits on one client, so a client
    that connects and says nothing, or trickles a byte at a time, must not hold it long:
    the connection sets the deadline (protocol.Deadlines), and we only keep the time."""
    time_left = http.deadline() - time.monotonic()
    if time_left <= 0:
        return http.deadline_passed()
    sock.settimeout(time_left)
    try:
        data = sock.recv(CHUNK)
    except TimeoutError:
        return http.deadline_passed()
    http.receive_data(data)


def disable_nagle(sock):
    """Send small writes at once. By default TCP holds a small write back until the
    previous one is acknowledged (Nagle's algorithm), and the client delays its
    acknowledgement (by 40 ms on Linux): a streamed response of small chunks on a kept-
    alive connection would crawl at 40 ms a chunk. We write whole pieces, so no need."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def serve_forever(listener, app, args):
    """Accept one connection at a time and serve it: the iterative loop."""
    server_address = (args.host, listener.getsockname()[1])
    while True:
        connection, address = accept(listener)
        handle_connection(connection, address, app, server_address)


if __name__ == "__main__":
    sys.exit(run("A single-threaded WSGI server: one connection at a time, one request per connection.", serve_forever))
