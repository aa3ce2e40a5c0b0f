"""The pure-Python ceiling: an event loop that answers every request with the same bytes.

    python part3_concurrency/measure/bare_loop.py [--host H] [--port P]

Not a server to use: it parses nothing, checks nothing, runs no app. It counts the
blank lines that end request heads and sends one fixed "Hello, world!" response for
each, closing the connection after it if the client asked (``Connection: close``).
What is left is the least any Python event loop must do per request: ``select()``,
``recv()``, ``send()``. bench.py measures it beside the real servers, so that their
figures have a ceiling to be read against: how much of the time goes to HTTP, WSGI and
the app, and how much to Python moving bytes at all.
"""

import selectors
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from part2_wsgi.command_line import CHUNK, run

BODY = b"Hello, world!\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(BODY)
RESPONSE = HEAD + b"\r\n" + BODY
LAST_RESPONSE = HEAD + b"Connection: close\r\n\r\n" + BODY  # the client asked us to close after it


def serve_forever(listener, app, settings):
    """``app`` is loaded by ``run`` as for every server, and never called."""
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ)
    pending = {}  # socket -> the bytes of a request head not yet complete
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                accept(listener, selector, pending)
            else:
                answer(key.fileobj, selector, pending)


def accept(listener, selector, pending):
    try:
        sock, _ = listener.accept()
    except BlockingIOError:
        return  # another process or a client that left: nobody waiting
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ)
    pending[sock] = b""


def answer(sock, selector, pending):
    try:
        data = sock.recv(CHUNK)
    except OSError:
        data = b""
    if not data:
        selector.unregister(sock)
        sock.close()
        del pending[sock]
        return
    heads = (pending[sock] + data).split(b"\r\n\r\n")
    pending[sock] = heads.pop()  # what follows the last blank line: part of the next head
    close = any(b"connection: close" in head.lower() for head in heads)
    try:
        sock.sendall(RESPONSE * (len(heads) - close) + (LAST_RESPONSE if close else b""))  # small: sent at once
    except OSError:
        pass  # the client left; its next recv() says so
    if close:
        selector.unregister(sock)
        sock.close()
        del pending[sock]


if __name__ == "__main__":
    sys.exit(run("The pure-Python ceiling: a bare event loop that answers a fixed response.", serve_forever))
