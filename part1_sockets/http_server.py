"""Lesson 2: the smallest HTTP server that keeps HTTP's rules for what it does.

HTTP/1.x is text over a TCP connection. A browser connects and sends a *request*:

    POST / HTTP/1.1\\r\\n                       <- request line: method, target, version
    Host: 127.0.0.1:8888\\r\\n                  <- headers, one per line
    Content-Type: application/x-www-form-urlencoded\\r\\n
    Content-Length: 12\\r\\n
    \\r\\n                                       <- a blank line ends the head
    name=Ada&x=1                              <- the body: exactly Content-Length bytes

and the server answers with a *response* of the same shape: a status line
(``HTTP/1.1 200 OK``), headers, a blank line, a body. That is all this file does: read
one request, answer it, close the connection, serve the next client.

What it does, it does by the standard (RFC 9110, RFC 9112): it answers GET, HEAD (the
head a GET would get, without the body) and POST with a body of Content-Length bytes;
it reads the target in both forms a server must accept, ``/path`` and
``http://host/path``; it refuses, with the status the RFCs name, a request that could be
read two ways. What it leaves out, it says: one request per connection (``Connection:
close``), and a chunked upload or any other method gets 501 Not Implemented.

    python part1_sockets/http_server.py       # then open http://127.0.0.1:8888 in a browser
    telnet 127.0.0.1 8888                     # and type:  GET / HTTP/1.0  then Enter twice
    printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8888

Everything is in this one file, with no imports from the rest of the workshop: read it top
to bottom. Part 2 takes the same road in separate rooms (a parser, WSGI, a socket loop).
"""

import argparse
import html
import re
import signal
import socket
import sys
import time
from urllib.parse import parse_qsl

# Part 1's files import nothing from one another: each keeps its own copy of these.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
BACKLOG = 128
CHUNK = 65536
MAX_HEAD = 64 * 1024  # a request line and headers longer than this are refused
MAX_BODY = 10 * 1024 * 1024  # so is a body larger than 10 MB
TIMEOUT = 30  # seconds a client may stay silent: long enough to type into telnet
KNOWN_METHODS = {"GET", "HEAD", "POST"}  # GET and HEAD every server must know (RFC 9110, section 9.1)

# The head ends at the first blank line. The standard says lines end with CRLF, but
# nc and some hand-typed requests send a bare LF, which servers may accept: we do.
END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


class BadRequest(Exception):
    """The request cannot be answered: the status to answer with, and why.

    ``error.status`` is the end of the status line ("400 Bad Request"), ``error.reason``
    a sentence for the page. Exception keeps only the reason in ``args``, so
    ``str(error)`` and ``error.args[0]`` are the reason, never the status:

        try:
            parse_head(b"HELLO SERVER")
        except BadRequest as error:
            answer = format_response(error.status, html.escape(error.reason))  # b"HTTP/1.1 400 Bad Request..."
    """

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------------
# Step 1: read the request. TCP hands us bytes in pieces of any size: one recv() may
# hold half a header, or the whole request. So we keep reading until we have what we
# need, and never assume one recv() is one request.


def read_head(connection):
    """Read until the blank line; return (head, whatever body bytes came with it)."""
    received = b""
    while True:
        end = END_OF_HEAD.search(received)
        if (end.start() if end else len(received)) > MAX_HEAD:
            raise BadRequest("431 Request Header Fields Too Large", "the request head is too long")
        if end:
            return received[: end.start()], received[end.end() :]
        data = connection.recv(CHUNK)
        if not data:
            raise ConnectionError("the client closed the connection before the request ended")
        received += data


def parse_head(head):
    """Split the head into (method, target, version, headers); headers keyed lower-case.

    What cannot be read one way only is refused, with the status the RFCs name: two
    programs on the road (a proxy, then this server) must never read one request as two
    different ones.

    A byte beyond ASCII is refused too (400), though only in the request line and in a
    header's name is that the RFCs' rule: their grammar has no room for one there. In a
    header value RFC 9110 (section 5.5) allows such bytes, as obs-text; this server
    refuses them to stay small, and decodes the whole head as ASCII.
    """
    try:
        text = head.decode("ascii")  # beyond ASCII: not HTTP in the request line, obs-text in a value
    except UnicodeDecodeError:
        raise BadRequest("400 Bad Request", "the request head is not ASCII text") from None
    request_line, *header_lines = text.replace("\r\n", "\n").split("\n")

    parts = request_line.split(" ")
    if len(parts) != 3 or not all(parts) or not re.fullmatch(r"HTTP/\d\.\d", parts[2]):
        raise BadRequest("400 Bad Request", f"expected 'METHOD TARGET HTTP/1.x', got {request_line!r}")
    method, target, version = parts
    if not version.startswith("HTTP/1."):
        raise BadRequest("505 HTTP Version Not Supported", f"this server speaks HTTP/1.x, not {version}")
    # Minor versions promise to stay compatible, so a later HTTP/1.x is read as the
    # latest we know (RFC 9110, section 2.5); we answer in HTTP/1.1 anyway.
    version = "HTTP/1.0" if version == "HTTP/1.0" else "HTTP/1.1"
    if not is_request_target(method, target):
        raise BadRequest("400 Bad Request", f"a target is /path, http://host/path or * (for OPTIONS), not {target!r}")

    headers = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        # A name is one word, right before its colon. "Host : x" is refused rather than
        # read as Host: a program that reads it as a header named "Host " would not see
        # the Host we saw (RFC 9112, section 5.1).
        if not colon or not name or re.search(r"\s", name):
            raise BadRequest("400 Bad Request", f"malformed header line {line!r}")
        name = name.lower()
        if name in headers and name in ("host", "content-length"):
            # Two Hosts: which site is meant? Two lengths: where does the body end? A
            # program that keeps the first and one that keeps the last would disagree,
            # so we refuse to guess (RFC 9112, sections 3.2 and 6.3), as part 2's parser does.
            raise BadRequest("400 Bad Request", f"more than one {name.title()} header")
        headers[name] = value.strip()
    if version == "HTTP/1.1" and "host" not in headers:
        raise BadRequest("400 Bad Request", "an HTTP/1.1 request must say which Host it is for")
    return method, target, version, headers


def is_request_target(method, target):
    """The three forms of target a server takes (RFC 9112, section 3.2)."""
    return (
        target.startswith("/")  # the origin form, "/path?query": what browsers send
        or target.lower().startswith(("http://", "https://"))  # the absolute form, as sent to a proxy
        or (target == "*" and method == "OPTIONS")  # the asterisk form: the server itself
    )


def read_body(connection, headers, already_received):
    """Read exactly Content-Length bytes of body (none if there is no Content-Length)."""
    if "transfer-encoding" in headers:
        # Chunked uploads are part 2's business; refuse them clearly rather than guess.
        raise BadRequest("501 Not Implemented", "Transfer-Encoding is not supported here")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequest("400 Bad Request", f"invalid Content-Length {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY:
        raise BadRequest("413 Content Too Large", f"the body may be at most {MAX_BODY} bytes")
    body = bytearray(already_received)  # a bytearray grows in place, without copying
    while len(body) < length:
        data = connection.recv(min(CHUNK, length - len(body)))
        if not data:
            raise ConnectionError("the client closed the connection in the middle of the body")
        body += data
    return bytes(body[:length])


# ---------------------------------------------------------------------------------
# Step 2: decide what to answer. This part knows nothing about sockets.

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{content}
<form method="post" action="/">
  <p><label>Name <input name="name" value="Ada"></label></p>
  <p><label>Message <input name="message" value="Hello, server!"></label></p>
  <p><button type="submit">Send a POST</button></p>
</form>
</body>
</html>
"""


def page(title, content):
    return PAGE.format(title=html.escape(title), content=content)


def describe_post(body):
    """An HTML fragment showing what was posted: the form fields, or the raw text."""
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    if fields:
        rows = "".join(
            f"<tr><th>{html.escape(name)}</th><td>{html.escape(value[:2000])}</td></tr>" for name, value in fields
        )
        listing = f"<table>{rows}</table>"
    else:
        listing = f"<pre>{html.escape(body[:2000].decode('utf-8', 'replace'))}</pre>"
    return f"<p>You posted {len(body)} bytes:</p>{listing}"


def path_of(target):
    """The path a target asks for: "/a" of "/a?q=1", and of "http://host:8888/a?q=1" too."""
    if target.lower().startswith(("http://", "https://")):  # the absolute form: the path follows the host
        target = "/" + target.partition("://")[2].partition("/")[2]
    return target.split("?", 1)[0]


def respond(method, target, body):
    """Return (status, html) for a well-formed request. HEAD gets what GET gets."""
    path = path_of(target)
    if path != "/":
        return "404 Not Found", page("Not found", f"<p>There is nothing at {html.escape(path)}.</p>")
    if method == "POST":
        return "200 OK", page("Thank you", describe_post(body))
    return "200 OK", page("Hello from a socket", "<p>This page came from part1_sockets/http_server.py.</p>")


# ---------------------------------------------------------------------------------
# Step 3: write the response, the same shape as the request.


def format_response(status, text):
    """Status line, headers, blank line, body: the bytes we send back."""
    body = text.encode("utf-8")
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        # Content-Length tells the client where the body ends ...
        f"Content-Length: {len(body)}\r\n"
        # ... and "Connection: close" that we hang up after it: one request per connection.
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def handle(connection, address):
    """Read one request from the connection and send one response."""
    request_line, method = "-", None
    try:
        head, rest = read_head(connection)
        method, target, version, headers = parse_head(head)
        request_line = f"{method} {target} {version}"
        if method not in KNOWN_METHODS:
            raise BadRequest("501 Not Implemented", f"this server does not know the method {method}")
        body = read_body(connection, headers, rest)
        status, text = respond(method, target, body)
    except BadRequest as error:
        status, text = error.status, page(error.status, f"<p>{html.escape(error.reason)}</p>")
    response = format_response(status, text)
    if method == "HEAD":
        # The head a GET would get, its Content-Length included, and no body: a client
        # asks for it to learn about a page without downloading it (RFC 9110, section 9.3.2).
        response = response[: response.index(b"\r\n\r\n") + 4]
    send_response(connection, response)
    log_request(address, request_line, status, len(response))


def send_response(connection, response):
    """sendall() the response a piece at a time, so that the timeout applies to each piece.

    A socket's timeout bounds one call, and for sendall() that is the whole response,
    however slowly the client reads it: a slow reader on a bad line would be cut off half
    way. Piece by piece, a client that reads slowly gets everything, and one that reads
    nothing for TIMEOUT seconds is dropped.
    """
    for start in range(0, len(response), CHUNK):
        connection.sendall(response[start : start + CHUNK])


def log_request(address, request_line, status, size):
    """One line per request, in the Common Log Format web servers have written since NCSA:
    127.0.0.1 - - [25/Nov/2026:14:03:07 +0000] "GET / HTTP/1.1" 200 443"""
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    print(f'{address[0]} - - [{when}] "{request_line}" {status[:3]} {size}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------
# Step 4: the socket loop, as in echo_server.py: accept, handle, close, repeat.


def make_listener(host, port):
    """socket, SO_REUSEADDR, bind, listen: as in echo_server.py (see the comments there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after Ctrl-C
    listener.bind((host, port))
    listener.listen(BACKLOG)
    return listener


def serve_http(listener):
    """Accept clients one after another; answer one request from each, then close."""
    while True:
        connection, address = listener.accept()
        # While we serve this client, everyone else waits in the backlog: a client that
        # connects and says nothing would block the server for good, so each recv() (and
        # each piece we send) may wait TIMEOUT seconds at most; then TimeoutError.
        connection.settimeout(TIMEOUT)
        with connection:
            try:
                handle(connection, address)
                close_gently(connection)
            except (ConnectionError, TimeoutError) as error:
                print(f"client {address[0]}:{address[1]} dropped: {error}", file=sys.stderr)


def close_gently(connection):
    """Tell the client we are done, and let it finish sending before we close.

    If bytes the client sent are still unread when we close() (a body we refused, say),
    the kernel answers with a reset, and the client may lose the response we just sent.
    So we shut down our side for writing (the client sees the end of the response),
    then read and discard what is left, for a moment at most, before closing.
    """
    connection.shutdown(socket.SHUT_WR)
    connection.settimeout(1)
    deadline = time.monotonic() + 1
    try:
        while connection.recv(CHUNK) and time.monotonic() < deadline:
            pass
    except OSError:
        pass  # the client closed first or stayed silent: either way we are done


# ---------------------------------------------------------------------------------
# The command line: the same contract as every server in the workshop.


def port_number(text):
    """argparse type: a TCP port, 0 to 65535 (0 means "any free port")."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a number from 0 to 65535")
    return int(text)


class OneLineParser(argparse.ArgumentParser):
    """On a bad argument, print one clear line (not the whole usage) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None):
    parser = OneLineParser(description="The smallest HTTP server: GET, HEAD and POST, one request per connection.")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and `kill` both stop us cleanly
        signal.signal(signum, signal.default_int_handler)
    try:
        listener = make_listener(args.host, args.port)
    except OSError as error:
        sys.exit(f"http_server.py: cannot listen on {args.host}:{args.port}: {error.strerror or error}")
    with listener:
        try:  # inside the try: whoever waits for the Serving line may signal at once
            host, port = listener.getsockname()[:2]
            host = f"[{host}]" if ":" in host else host
            print(f"Serving on http://{host}:{port}", flush=True)
            serve_http(listener)
        except KeyboardInterrupt:
            print("Shutting down.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
