"""Serve one client on a blocking socket, from its first byte to its close.

``handle_connection`` is what part 2's server does with each connection it accepts, and
what part 3's blocking servers (iterative, forking, threaded) do too, unchanged: they
differ only in how they hand connections to it.

It takes the same road as part 1's http_server.py, but each stop now lives elsewhere:

    recv() bytes --> Connection (protocol.py) --> Request
                 --> build_environ + run_app (wsgi.py) --> the app --> send()

The protocol ``Connection`` decides every HTTP rule (when to answer ``100 Continue``,
whether to keep the connection, what to do after an error, how long the client may
take); this file only carries out what it says: receive, send, keep time, close. A file
an app returns in ``wsgi.file_wrapper`` goes out with ``socket.sendfile()`` (unless it
fits in one block: wsgi.py then sends it with the head).
"""

import socket
import time
from functools import partial

from part2_wsgi.command_line import CHUNK, log_close, log_request
from part2_wsgi.protocol import NEED_DATA, Connection, Request, Send
from part2_wsgi.wsgi import ClientDisconnected, build_environ, run_app

FILE_SLICE = 8 * 1024 * 1024  # bytes of a file per sendfile() call, between looks at the send deadline


def handle_connection(
    sock, address, app, server_address, settings, *, persistent, multithread=False, multiprocess=False
):
    """Serve one client, doing what its protocol ``Connection`` says, until it says close.

    ``settings``: what the command line said (the deadlines, the access log).
    ``persistent``: keep the connection open for more requests, as long as the client
    wants, or (``False``) serve one request and close. ``multithread`` and
    ``multiprocess`` tell the app whether other requests run beside it (PEP 3333's
    environ keys)."""
    disable_nagle(sock)
    http = Connection(persistent=persistent, deadlines=settings.deadlines)
    try:
        while True:
            event = http.next_event()
            if event is NEED_DATA:
                receive(sock, http)
            elif isinstance(event, Send):
                send(sock, http, event.data)
            elif isinstance(event, Request):
                environ = build_environ(
                    event,
                    server_address=server_address,
                    client_address=address,
                    multithread=multithread,
                    multiprocess=multiprocess,
                )
                response = run_app(app, environ, http, partial(send, sock, http), partial(send_file, sock, http))
                if settings.access_log:
                    log_request(address, event, response.status_code, response.bytes_sent)
            elif event.linger:  # a Close, but the client may still be sending: see start_lingering
                log_close(address, event)
                sock.shutdown(socket.SHUT_WR)
                http.start_lingering()
            else:
                break
    except (OSError, ClientDisconnected) as error:
        event = http.connection_lost(error)
    except BaseException:
        sock.close()  # Ctrl-C in the middle of a request: close now, no lingering
        raise
    log_close(address, event)
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


def send(sock, http, data):
    """``sock.sendall(data)``, under the connection's send deadline.

    A client that reads nothing would hold this connection, and a thread or a process
    with it, for ever. Each time the socket takes some bytes, the client has shown that it
    reads, and its deadline starts again; one that takes nothing until then is dropped.

    Why not ``sock.settimeout(deadline)`` and ``sock.sendall(data)``? Since Python 3.5 the
    timeout covers the whole ``sendall`` call: 50 MB read at 2 MB/s would be cut off after
    the timeout, however steadily the client reads. ``send`` takes what the socket takes
    now (a slice of the memoryview, without copying), and the deadline is per slice."""
    view = memoryview(data)
    while view:
        sock.settimeout(time_to_send(http))
        try:
            sent = sock.send(view)
        except TimeoutError:
            raise ClientDisconnected(http.send_deadline_passed().problem) from None
        http.sent_some(sent)
        view = view[sent:]


def send_file(sock, http, file, offset, count):
    """Send ``count`` bytes of ``file`` from ``offset`` with ``sock.sendfile()``; return how
    many were sent (fewer only if the file ended first).

    ``socket.sendfile`` uses ``os.sendfile`` where the system has it: the kernel copies the
    file's pages to the socket, and Python never sees the bytes. It waits for the socket
    at most its timeout each time, so we give it slices of the file, and the deadline is
    per slice, as ``send`` does."""
    sent = 0
    while sent < count:
        sock.settimeout(time_to_send(http))
        try:
            taken = sock.sendfile(file, offset + sent, min(count - sent, FILE_SLICE))
        except TimeoutError:
            raise ClientDisconnected(http.send_deadline_passed().problem) from None
        if not taken:
            break  # the file ended: it is shorter than when the app looked
        http.sent_some(taken)
        sent += taken
    return sent


def time_to_send(http):
    """Seconds left before the send deadline (a moment at least: the socket may take some now)."""
    return max(http.send_deadline() - time.monotonic(), 0.001)


def disable_nagle(sock):
    """Send small writes at once. By default TCP holds a small write back until the
    previous one is acknowledged (Nagle's algorithm), and the client delays its
    acknowledgement (by 40 ms on Linux): a streamed response of small chunks on a kept-
    alive connection would crawl at 40 ms a chunk. We write whole pieces, so no need."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
