"""Serve one client on a blocking socket, from its first byte to its close.

``handle_connection`` is what part 2's server does with each connection it accepts, and
what part 3's blocking servers (iterative, forking, threaded) do too, unchanged: they
differ only in how they hand connections to it.

It takes the same road as part 1's http_server.py, but each stop now lives elsewhere:

    recv() bytes --> Connection (connection.py) --> Request
                 --> build_environ + run_app (wsgi.py) --> the app --> send()

The ``Connection`` (connection.py) decides every HTTP rule (when to answer ``100 Continue``,
whether to keep the connection, what to do after an error, how long the client may
take); this file only carries out what it says: receive, send, keep time, close. A file
an app returns in ``wsgi.file_wrapper`` goes out with ``os.sendfile()`` (unless it fits
in one block: wsgi.py then sends it with the head).
"""

import errno
import os
import socket
import time
from functools import partial

from part2_wsgi.command_line import CHUNK, log_close, log_request
from part2_wsgi.connection import NEED_DATA, Connection, Send
from part2_wsgi.protocol import Request
from part2_wsgi.tcp import PROGRESS_LOOK, tune_accepted_socket, unacknowledged_bytes, wait_until_writable
from part2_wsgi.wsgi import FILE_BLOCK, ClientDisconnected, build_environ, run_app

# os.sendfile's errors that mean "not this file, or not this system" rather than "the
# client is gone": then we read the file and send it ourselves.
CANNOT_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EOVERFLOW}


def handle_connection(
    sock, address, app, server_address, settings, *, persistent, multithread=False, multiprocess=False
):
    """Serve one client, doing what its ``Connection`` says, until it says close.

    ``settings``: what the command line said (the deadlines, the access log).
    ``persistent``: keep the connection open for more requests, as long as the client
    wants, or (``False``) serve one request and close. ``multithread`` and
    ``multiprocess`` tell the app whether other requests run beside it (PEP 3333's
    environ keys)."""
    tune_accepted_socket(sock, settings.send_buffer)
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
    the connection sets the deadline (connection.Deadlines), and we only keep the time."""
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
    with it, for ever. Each time the socket takes some bytes, or the client acknowledges
    more of those it took, the client has shown that it reads, and its deadline starts
    again; one that shows nothing until then is dropped.

    Why not ``sock.settimeout(deadline)`` and ``sock.sendall(data)``? Since Python 3.5 the
    timeout covers the whole ``sendall`` call: 50 MB read at 2 MB/s would be cut off after
    the timeout, however steadily the client reads. ``send`` takes what the socket takes
    now (a slice of the memoryview, without copying), and we wait in between ourselves."""
    view = memoryview(data)
    sock.setblocking(False)  # send() takes what fits, or raises BlockingIOError: we do the waiting
    while view:
        sent = when_writable(sock, http, sock.send, view)
        http.took(sent)
        view = view[sent:]


def send_file(sock, http, file, offset, count):
    """Send ``count`` bytes of ``file`` from ``offset`` with ``os.sendfile()``; return how
    many were sent (fewer only if the file ended first).

    The kernel hands the file's pages to the socket, and Python never sees the bytes.
    Each call sends what the socket takes now, and is counted at once: a client that
    leaves is logged with what it took (within what the kernel's send buffer held). Why
    not ``socket.sendfile()``? It counts only what a whole call sent, and loses the count when the call fails; where
    ``os.sendfile`` fails, it falls back to ``file.seek()`` and ``read()``, which not every
    wrapped file has (a range of a file, say)."""
    if not hasattr(os, "sendfile"):  # Windows
        return read_and_send(sock, http, file, offset, count)
    sock.setblocking(False)
    sent = 0
    while sent < count:
        try:
            taken = when_writable(sock, http, os.sendfile, sock.fileno(), file.fileno(), offset + sent, count - sent)
        except OSError as error:
            if error.errno not in CANNOT_SENDFILE:
                raise
            return sent + read_and_send(sock, http, file, offset + sent, count - sent)
        if not taken:
            break  # the file ended: it is shorter than when the app looked
        http.took(taken)
        sent += taken
    return sent


def read_and_send(sock, http, file, offset, count):
    """``send_file`` where ``os.sendfile`` is missing or refuses: read the file block by block
    and send each. By its descriptor, from ``offset``: whatever the file object's own
    position, and whether or not it can seek."""
    fd, sent = file.fileno(), 0
    os.lseek(fd, offset, os.SEEK_SET)
    while sent < count and (block := os.read(fd, min(FILE_BLOCK, count - sent))):
        send(sock, http, block)
        sent += len(block)
    return sent


def when_writable(sock, http, send_now, *args):
    """``send_now(*args)`` on the non-blocking socket, once the socket takes something."""
    while True:
        try:
            return send_now(*args)
        except BlockingIOError:
            wait_for_client(sock, http)


def wait_for_client(sock, http):
    """Wait until the socket takes more, but no later than the send deadline; and once a
    second, look at what the client acknowledged meanwhile (Connection.unacknowledged):
    a client that receives steadily restarts its deadline, whenever the socket says
    writable."""
    while not wait_until_writable(sock, min(time_to_send(http), PROGRESS_LOOK)):
        http.unacknowledged(unacknowledged_bytes(sock))
        if time.monotonic() >= http.send_deadline():
            raise ClientDisconnected(http.send_deadline_passed().problem)


def time_to_send(http):
    """Seconds left before the send deadline (a moment at least: the socket may take some now)."""
    return max(http.send_deadline() - time.monotonic(), 0.001)
