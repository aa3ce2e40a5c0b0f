"""Lesson 3, the whole picture first: a minimal WSGI server, one screen per function.

    python part2_wsgi/minimal_server.py                                  # the demo app
    python part2_wsgi/minimal_server.py part2_wsgi.apps.flask_app:app    # Flask, unmodified

Four functions take one request down the whole road, and read top to bottom:

    read_request     bytes from the socket -> a Request (method, target, version, headers, body)
    build_environ    a Request -> the environ dict PEP 3333 describes
    run_app          call the app with environ and start_response; send what it returns
    serve_wsgi       the loop: accept a connection, serve it, close it, accept the next

One request per connection, and the end of the response is the end of the connection
(``Connection: close``), as in HTTP/1.0. What it leaves out is what ``server.py`` and
its rooms add: keep-alive, chunked bodies, deadlines, every way a client can break the
rules. This is the server the workbook's part 2 asks you to write, and part 3's stages
reuse its ``serve_connection`` to serve one client. Standard library only.

Who answers for what goes wrong: a client's mistake (a request that cannot be read) is a
400; a client that leaves, resets or stays silent is dropped; an app that fails before
sending anything is a 500 (``run_app``); an app that fails once its response has begun
can only have that response cut short: ``run_app`` raises again, the connection closes,
and the loop logs one line and serves the next client.
"""

import io
import sys
import time
import traceback
from collections import namedtuple
from functools import partial
from pathlib import Path
from urllib.parse import unquote

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import run

# This one screen keeps its own constants, to read without opening another module (the
# full servers take theirs from command_line.py and protocol.py's Limits).
CHUNK = 65536  # the most we ask recv() for at once
MAX_HEAD = 64 * 1024  # a request head longer than this is refused
MAX_BODY = 10 * 1024 * 1024  # and so is a body larger than this
TIMEOUT = 10  # seconds a client may stay silent, or take none of its response, before we give up

# What read_request() hands on: headers are (name, value) pairs, in the order sent.
Request = namedtuple("Request", "method target version headers body")


# --- 1. read one request ------------------------------------------------------------------


def read_request(connection):
    """Read one request from the connection; None if the client closed without a word.

    Raises ValueError for a request this server cannot read (the caller answers 400),
    ConnectionError if the client leaves half way, and TimeoutError if it stays silent
    longer than the connection's timeout (which the caller sets: ``settimeout``).
    """
    data = b""
    while b"\r\n\r\n" not in data:  # TCP hands us pieces: read until the blank line
        if len(data) > MAX_HEAD:
            raise ValueError("the request head is too long")
        piece = connection.recv(CHUNK)
        if not piece:
            if data:
                raise ConnectionError("the client closed the connection in the middle of a request")
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ")  # three parts, or ValueError
    headers = []
    for line in header_lines:
        name, value = line.split(":", 1)  # no colon: ValueError
        headers.append((name.strip(), value.strip()))
    length = int(dict((name.lower(), value) for name, value in headers).get("content-length", "0"))
    if not 0 <= length <= MAX_BODY:
        raise ValueError(f"cannot take a body of {length} bytes")
    while len(body) < length:  # the body may still be on its way
        piece = connection.recv(CHUNK)
        if not piece:
            raise ConnectionError("the client closed the connection in the middle of the body")
        body += piece
    return Request(method, target, version, headers, body[:length])


# --- 2. the environ -------------------------------------------------------------------------


def build_environ(request, server_address, client_address=("", 0)):
    """The dict PEP 3333 asks for: CGI's variables, WSGI's own keys, and the headers."""
    path, _, query = request.target.partition("?")
    environ = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",  # the app is mounted at the root
        # Decoded (%20 is a space) as latin-1, as PEP 3333 says: every byte survives.
        "PATH_INFO": unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,  # left encoded: the app parses it
        "SERVER_NAME": server_address[0],
        "SERVER_PORT": str(server_address[1]),  # strings, all of them
        "SERVER_PROTOCOL": request.version,
        "REMOTE_ADDR": client_address[0],
        "REMOTE_PORT": str(client_address[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),  # the app reads the body as a file
        "wsgi.errors": sys.stderr,  # and writes its complaints here
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        # "User-Agent" becomes HTTP_USER_AGENT; Content-Type and Content-Length keep
        # their CGI names, without the prefix. A repeated header joins its values.
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


# --- 3. run the app ----------------------------------------------------------------------------


def run_app(app, environ, send):
    """Call the app; send its response with ``send(bytes)``; return the status line.

    PEP 3333's rules, kept here: the head goes out with the first non-empty piece of
    body (until then the app may change its mind: ``start_response`` again, with
    ``exc_info``); the body is whatever the app returns, iterated; and ``close()``, if
    the result has one, is called however the iteration ends.

    If the app fails, its traceback goes to ``environ["wsgi.errors"]``. Before anything
    was sent, the client gets a 500. After, half a response is out and no second one can
    follow: the error is raised again, for the caller to close the connection, the only
    way left to tell the client that its response is cut short.
    """
    response = []  # [status, headers] once start_response has been called
    head_sent = False

    def start_response(status, headers, exc_info=None):
        if exc_info:
            try:
                if head_sent:  # too late to take it back: let the error go up
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif response:
            raise AssertionError("start_response() called a second time without exc_info")
        response[:] = [status, headers]
        return write  # the old-style write() callable, for apps that push their body

    def write(data):
        nonlocal head_sent
        if not response:
            raise AssertionError("the app sent body bytes before calling start_response()")
        if not head_sent:
            status, headers = response
            lines = [f"HTTP/1.1 {status}"] + [f"{name}: {value}" for name, value in headers]
            head = "\r\n".join(lines + ["Connection: close", "", ""]).encode("latin-1")
            data = head + data  # one send for the head and the first piece
            head_sent = True
        send(data)

    try:
        result = app(environ, start_response)
        try:
            for data in result:
                if data:  # an empty piece sends nothing, not even the head
                    write(data)
            if not head_sent:
                write(b"")  # an empty body: the head alone
        finally:
            if hasattr(result, "close"):
                result.close()
    except Exception:
        traceback.print_exc(file=environ["wsgi.errors"])
        if head_sent:
            raise  # half a response is out: all we can do is close the connection
        body = b"500 Internal Server Error: the application failed; see the server's log.\n"
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        response[:] = ["500 Internal Server Error", headers]
        write(body)
    return response[0]


# --- 4. the loop ----------------------------------------------------------------------------


BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Request\n"


def serve_connection(connection, address, app, *, multithread=False, multiprocess=False):
    """Serve one client: read its request, run the app, send the answer, close.

    What a caller can count on:

    * the connection gets a timeout of TIMEOUT seconds: a client that sends nothing for
      that long, or takes none of its response for that long, is dropped;
    * the client's errors end here: a request that cannot be read is answered
      ``400 Bad Request``; a client that leaves, resets or stays silent (OSError) is
      logged in one line;
    * an app that fails before sending anything gets its 500 from ``run_app``; an app
      that fails after its head went out has its error raised from here, as ``run_app``
      raised it: the caller logs it and serves the next client;
    * the connection is closed however this ends.

    ``multithread`` and ``multiprocess`` become the environ's ``wsgi.multithread`` and
    ``wsgi.multiprocess``: PEP 3333 asks that they be true when another thread, or
    another process, may call the app at the same time (a threaded or forking server).
    """
    with connection:  # closed however this ends, an app's error included
        connection.settimeout(TIMEOUT)  # no recv() or send() below waits longer
        try:
            try:
                request = read_request(connection)
            except ValueError as error:  # a request we cannot read, and only that, is a 400
                connection.sendall(BAD_REQUEST)
                log_problem(address, f"400 Bad Request ({error})")
                return
            if request is None:
                return  # connected and left without a word: nothing to answer
            environ = build_environ(request, connection.getsockname()[:2], address[:2])
            environ["wsgi.multithread"] = multithread
            environ["wsgi.multiprocess"] = multiprocess
            status = run_app(app, environ, partial(send_in_pieces, connection))
            log_request(address, f"{request.method} {request.target} {request.version}", status)
        except OSError as error:  # the client left, reset, or stayed silent: next!
            log_problem(address, f"dropped ({error})")


def send_in_pieces(connection, data):
    """Send all of ``data``, waiting at most TIMEOUT for the client to take each piece.

    Why not ``sendall``: a socket's timeout caps a whole ``sendall`` call, however much
    it has to send (Python 3.5 and later). A client on a slow line, reading steadily,
    would then lose a large response after TIMEOUT seconds. ``send`` takes what the
    socket's buffer has room for, so the timeout counts only while the client takes
    nothing at all.
    """
    view = memoryview(data)  # slices of a memoryview share its bytes: nothing is copied
    while view:
        sent = connection.send(view[:CHUNK])
        view = view[sent:]


def serve_wsgi(listener, app):
    """Accept connections one after another, and serve each one; an app that fails
    half way through its response costs that response, never the server."""
    while True:
        connection, address = listener.accept()
        try:
            serve_connection(connection, address, app)
        except Exception as error:  # the app failed after its head went out
            # Its traceback is in wsgi.errors already; the connection is closed.
            log_problem(address, f"response cut short: {type(error).__name__}: {error}")


def log_request(address, request_line, status):
    """One line per request on stderr, in Common Log Format."""
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    sys.stderr.write(f'{address[0]} - - [{when}] "{request_line}" {status[:3]} -\n')


def log_problem(address, what):
    """One line on stderr for a request that got no ordinary answer."""
    sys.stderr.write(f"{address[0]}:{address[1]} {what}\n")


if __name__ == "__main__":
    # The command line every server of the workshop shares (command_line.py), around our loop.
    sys.exit(
        run("A minimal WSGI server: one request per connection.", lambda listener, app, args: serve_wsgi(listener, app))
    )
