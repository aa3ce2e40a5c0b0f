"""The C10K problem: can one server hold ten thousand clients at once?

In 1999 Dan Kegel asked why servers of the day fell over long before ten thousand
concurrent connections, and answered: one process or thread per connection costs too
much; readiness notification (epoll, kqueue) and an event loop do not. This module opens
that many connections at once, sends a request on each, reads every answer, and keeps
them all open while the caller measures the server. ``bench.py --c10k`` uses it.

Each connection is a file descriptor, in the client as in the server, and a process
may only have ``RLIMIT_NOFILE`` of them (often 1024 by default): both raise their soft
limit up to the hard limit (``command_line.raise_open_file_limit``).
"""

import selectors
import socket
import time
from contextlib import contextmanager

REQUEST = b"GET / HTTP/1.1\r\nHost: c10k\r\n\r\n"


@contextmanager
def held_connections(address, count, timeout=60.0):
    """Open ``count`` connections, send a request on each, read each answer, keep them
    open inside the with-block. Yields (answered, seconds): how many got a 200."""
    selector = selectors.DefaultSelector()
    sockets = []
    started = time.monotonic()
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
            sock.setblocking(False)
            sock.connect_ex(address)  # non-blocking: the handshake finishes later
            sockets.append(sock)
            selector.register(sock, selectors.EVENT_WRITE, bytearray())
        answered = drive(selector, deadline=started + timeout)
        yield answered, time.monotonic() - started
    finally:
        selector.close()
        for sock in sockets:
            sock.close()


def drive(selector, deadline):
    """Send each request once its socket is connected; read until each answer is whole."""
    answered = 0
    pending = len(selector.get_map())
    while pending and time.monotonic() < deadline:
        for key, events in selector.select(timeout=1.0):
            sock, received = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(REQUEST)  # 30 bytes always fit in an empty send buffer
                except OSError:
                    selector.unregister(sock)
                    pending -= 1
                    continue
                selector.modify(sock, selectors.EVENT_READ, received)
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            received += data
            if not data or complete(received):
                answered += received.startswith(b"HTTP/1.1 200")
                selector.unregister(sock)  # keep it open, but stop watching it
                pending -= 1
    return answered


def complete(response):
    """A response with Content-Length is whole once its head and that many bytes arrived."""
    head, separator, body = bytes(response).partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False
