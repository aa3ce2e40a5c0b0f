"""What the graded tests share: loopback sockets, and student code run on a thread.

Code under test may never return: a loop that waits for bytes that never come, a server
that accepts and never answers. A check must then fail with a sentence that says what
it was waiting for, not hang. So socket reads here have deadlines, student functions
that may block run on a daemon thread (``Background``), and whenever a check waits it
also looks at that thread: if the student's function raised (NotImplementedError, say),
the check re-raises that very exception, so the student sees their own error.
"""

import socket
import threading
import time

WAIT = 3.0  # seconds to wait for student code to answer or return


def short(data, limit=70):
    """repr() of bytes or str, cut to ``limit`` characters: a failure line stays one line."""
    text = repr(data)
    if len(text) <= limit:
        return text
    size = f" ({len(data)} in all)" if isinstance(data, (bytes, bytearray, str)) else ""
    return text[: limit - 5] + "..." + size


class Background:
    """Run ``function(*args)`` on a daemon thread; keep what it returned or raised."""

    def __init__(self, function, *args, name="student code"):
        self.name = name
        self.result = None
        self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(function, args), daemon=True, name=name)
        self.thread.start()

    def _run(self, function, args):
        try:
            self.result = function(*args)
        except BaseException as error:  # SystemExit too: a thread would swallow it silently
            self.error = error
        finally:
            self.done.set()

    def check(self):
        """If the function has raised, raise its exception here, in the test."""
        if self.done.is_set() and self.error is not None:
            raise self.error

    def wait(self, timeout=WAIT, what=None):
        """Wait for the function to return; return its result, or raise what it raised."""
        if not self.done.wait(timeout):
            raise AssertionError(f"{what or self.name} did not return within {timeout:g} s")
        self.check()
        return self.result


def call(function, *args, timeout=WAIT, what=None):
    """``function(*args)``, on a thread, failing clearly if it does not return in time."""
    return Background(function, *args, name=what or f"{function.__name__}()").wait(timeout, what)


def connected_pair(timeout=WAIT):
    """Two ends of one TCP connection over loopback: ``(client, server)``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        server, _ = listener.accept()
    server.settimeout(timeout)
    # Send small pieces at once, without waiting to batch them (Nagle's algorithm):
    # the checks cut requests into pieces on purpose.
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, server


def send_pieces(sock, *pieces, pause=0.03, then_close=False):
    """Send ``pieces`` one by one with a pause between them, from a thread."""

    def send():
        try:
            for index, piece in enumerate(pieces):
                if index:
                    time.sleep(pause)
                sock.sendall(piece)
            if then_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other side gave up first; the check reports why

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def receive(sock, until=None, server=None, timeout=WAIT, what="an answer", sent=None):
    """Read from ``sock`` until ``until(data)`` is true, or else until the peer closes.

    Fails with a sentence saying what was sent, what it waited for and what came, if
    nothing more arrives within ``timeout`` seconds. ``server`` (a Background) is watched
    meanwhile: if the student's code raised, that exception is raised here.
    """
    data = bytearray()
    deadline = time.monotonic() + timeout
    sock.settimeout(0.05)
    try:
        while not (until and until(bytes(data))):
            if server is not None:
                server.check()
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                if time.monotonic() > deadline:
                    if server is not None and server.done.is_set() and server.error is None:
                        returned = f"; {server.name} had already returned {short(server.result)}"
                    else:
                        returned = ""
                    sent_text = f" after sending {short(sent)}" if sent is not None else ""
                    raise AssertionError(
                        f"timed out after {timeout:g} s waiting for "
                        f"{what}{sent_text}; received {short(bytes(data))}{returned}"
                    ) from None
                continue
            except ConnectionResetError:
                break
            if not piece:
                break  # the peer closed
            data += piece
    finally:
        sock.settimeout(timeout)
    return bytes(data)


def split_response(response):
    """``(status_line, {lower-case name: value}, body)`` of an HTTP response's bytes."""
    head, separator, body = response.partition(b"\r\n\r\n")
    assert separator, f"the response has no blank line (CRLF CRLF) after its head: {short(response)}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        assert colon, f"the response has a header line without a colon: {line!r}"
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body
