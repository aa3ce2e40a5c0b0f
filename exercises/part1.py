"""Workbook, part 1: sockets, and the smallest HTTP server.

Each function below has the same name and signature as one in ``part1_sockets/``, and
a docstring that says what it must do. Replace each ``raise NotImplementedError(...)``
with your code, then grade it:

    python -m grader part1                    # every exercise of this part
    python -m grader part1 receive_exactly    # just one

The notebook named in each docstring prepares the exercise; its last cell in that
section grades it too. The exercises go from easy to hard: do them in order. The tests
that grade them are in ``grader/tests/test_part1.py``: read them when you are stuck.
"""

import re
import socket  # noqa: F401  (you will want it)

# BadRequest carries the status line a server answers with, e.g. "400 Bad Request".
# It is given: raise it, as part1_sockets/http_server.py does.
from part1_sockets.http_server import BadRequest  # noqa: F401

CHUNK = 65536  # the most to ask recv() for at once; it may give you less
MAX_HEAD = 64 * 1024  # a request head longer than this is refused with 431
END_OF_HEAD = re.compile(rb"\r?\n\r?\n")  # the blank line that ends a head (CRLF, or bare LF)


# --- 1. echo (1 point) ------------------------------------------------------------------


def echo(connection):
    """Send back every byte the client sends, until it closes its side; then return.

    ``connection`` is a connected TCP socket. Read with ``connection.recv(CHUNK)``, which
    returns whatever has arrived (1 to CHUNK bytes), or ``b""`` once the client has closed
    its side: then return. Send each piece straight back with ``sendall`` (``send`` may
    write only part of it).

    Example: the client sends b"hello", then b" world", then closes. The client
    receives b"hello world", and ``echo(connection)`` returns None.

    Prepared by: notebooks/01_sockets.ipynb, sections 2.1 and 2.2 (the echo server);
    graded in section 2.5.
    """
    raise NotImplementedError(
        "loop: data = connection.recv(CHUNK); return when data is b''; else connection.sendall(data)"
    )


# --- 2. receive_exactly (1 point) ---------------------------------------------------------


def receive_exactly(connection, size):
    """Read exactly ``size`` bytes from ``connection`` and return them, as bytes.

    TCP is a stream: ``recv(n)`` returns *at most* n bytes, whatever has arrived, so
    one message may take many recv() calls. Keep reading until you have ``size`` bytes,
    and never more: bytes after them belong to whatever the peer sends next. If the peer
    closes first (recv returns ``b""``), raise ConnectionError.

    Example: the peer sends b"hel", then b"lo world".

        receive_exactly(connection, 5)   ->  b"hello"
        receive_exactly(connection, 6)   ->  b" world"
        receive_exactly(connection, 0)   ->  b""

    Prepared by: notebooks/01_sockets.ipynb, sections 2.3 (recv() may return fewer
    bytes than were sent) and 2.4 (A round trip with echo_client.echo); graded in 2.5.
    """
    raise NotImplementedError(
        "loop on connection.recv(min(remaining, CHUNK)) until size bytes have come; b'' means the peer closed"
    )


# --- 3. format_response (1 point) ---------------------------------------------------------


def format_response(status, text):
    """Return the bytes of a whole HTTP response: status line, headers, blank line, body.

    ``status`` is a status line's end, like "200 OK"; ``text`` is the HTML body, a str.
    The body goes out as UTF-8. Every line ends with CRLF (``\\r\\n``), and a blank line
    ends the head. Send these three headers:

    * ``Content-Type: text/html; charset=utf-8``
    * ``Content-Length``: the size of the body *in bytes* (not characters: "é" is 2 bytes)
    * ``Connection: close``: we hang up after this response.

    Example:

        format_response("200 OK", "héllo")  ->
        b"HTTP/1.1 200 OK\\r\\n"
        b"Content-Type: text/html; charset=utf-8\\r\\n"
        b"Content-Length: 6\\r\\n"
        b"Connection: close\\r\\n"
        b"\\r\\n"
        b"h\\xc3\\xa9llo"

    Prepared by: notebooks/01_sockets.ipynb, section 3.2 (A GET request, byte for byte);
    graded in section 3.6.
    """
    raise NotImplementedError(
        "encode the body first (its length in bytes is Content-Length), then build the head with \\r\\n line ends"
    )


# --- 4. read_head (2 points) ---------------------------------------------------------------


def read_head(connection):
    """Read a request's head from ``connection``; return ``(head, rest)``, both bytes.

    Read until the blank line that ends the head (``END_OF_HEAD`` finds it; it matches
    CRLF CRLF, and also the bare LF LF that nc and hand-typed requests send). ``head`` is
    everything before the blank line; ``rest`` is whatever came after it in the same
    reads (the start of the body), which the caller needs.

    * If the head grows beyond MAX_HEAD bytes without a blank line, raise
      ``BadRequest("431 Request Header Fields Too Large", "the request head is too long")``:
      never read (and store) without a limit.
    * If the client closes first (recv returns ``b""``), raise ConnectionError.

    Example: the client sends b"GET / HTTP/1.1\\r\\nHo", then b"st: x\\r\\n\\r\\nBODY".

        read_head(connection)  ->  (b"GET / HTTP/1.1\\r\\nHost: x", b"BODY")

    Prepared by: notebooks/01_sockets.ipynb, sections 2.3 (recv() may return fewer
    bytes than were sent) and 3.2 (A GET request, byte for byte); graded in 3.6.
    """
    raise NotImplementedError(
        "append each recv() to a buffer until END_OF_HEAD.search(buffer) finds the blank line; split there"
    )


# --- 5. parse_head (3 points) --------------------------------------------------------------


def parse_head(head):
    """Split a request head (bytes) into ``(method, target, version, headers)``.

    The first line is the request line, ``METHOD TARGET VERSION``, separated by single
    spaces; each following line is a header, ``Name: value``. Lines end with CRLF (or a
    bare LF). ``headers`` is a dict whose keys are the header names in lower case and
    whose values have the spaces around them removed.

    Refuse what is not HTTP with ``BadRequest(status, reason)``:

    * not exactly three parts, a target that does not start with "/", or a version
      that is not ``HTTP/<digit>.<digit>``: "400 Bad Request";
    * a version other than HTTP/1.0 or HTTP/1.1: "505 HTTP Version Not Supported";
    * a header line without a colon: "400 Bad Request";
    * an HTTP/1.1 request without a Host header: "400 Bad Request";
    * a head that is not ASCII: "400 Bad Request".

    Example:

        parse_head(b"POST /form HTTP/1.1\\r\\nHost: example.com\\r\\nContent-Length:  8 ")
        ->  ("POST", "/form", "HTTP/1.1", {"host": "example.com", "content-length": "8"})

    Prepared by: notebooks/01_sockets.ipynb, sections 3.3 (A POST with a form body) and
    3.4 (A malformed request gets a 400, and the server carries on); graded in 3.6.
    """
    raise NotImplementedError(
        "decode as ASCII, split into lines, split the first on ' ' into 3 parts, then each header at its first ':'"
    )
