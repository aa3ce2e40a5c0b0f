"""Workbook, part 1: sockets, and the smallest HTTP server.

Two tracks. The REQUIRED track is three servers of your own, each graded by real
clients over loopback: ``make_listener``, ``serve_echo``, ``serve_http``. The HARDENING
track (optional, points of its own) is four helpers of ``part1_sockets/``.

Each function below has the same name and signature as one in ``part1_sockets/``, and a
docstring that says what it must do, with an example and the notebook section that
prepares it. Replace each ``raise NotImplementedError(...)`` with your code, then grade:

    python -m grader part1                     # every exercise of this part
    python -m grader part1 serve_echo          # just one
    python -m grader part1 serve_echo --hint   # and reveal its next hint

The grader says how many checks pass ("2 of 5 checks") and what the first failing one
saw and expected. The checks are in ``grader/tests/test_part1.py``.
"""

import html  # noqa: F401  (to escape what clients send before it goes into a page)
import re
import socket  # noqa: F401  (you will want it)

# BadRequest is given: raise it, as part1_sockets/http_server.py does, when a request
# cannot be answered, and answer with what it carries. BadRequest(status, reason) has two
# attributes: ``.status``, the end of the status line to answer with ("400 Bad Request"),
# and ``.reason``, a sentence saying why. Mind that ``str(error)`` and ``error.args[0]``
# are the reason, never the status. Answering with one:
#
#     try:
#         ...  # read and parse the request
#     except BadRequest as error:
#         status, page = error.status, f"<p>{html.escape(error.reason)}</p>"
#
# and then send "HTTP/1.1 " + status as the status line, as for any response.
from part1_sockets.http_server import BadRequest  # noqa: F401

BACKLOG = 128  # clients the kernel may queue while the server is busy (at least 128)
CHUNK = 65536  # the most to ask recv() for at once; it may give you less
MAX_HEAD = 64 * 1024  # a request head longer than this is refused with 431
END_OF_HEAD = re.compile(rb"\r?\n\r?\n")  # the blank line that ends a head (CRLF, or bare LF)
TIMEOUT = 30  # seconds serve_http waits for a silent client before dropping it


# ===== The required track: your own servers ================================================


# --- make_listener (1 point) ------------------------------------------------------------


def make_listener(host, port):
    """Return a TCP socket listening on ``(host, port)``.

    Four steps: make a TCP socket (IPv4, or IPv6 when ``host`` has a ":"); set the
    option SO_REUSEADDR, so that the server can be restarted at once, while old
    connections linger in TIME_WAIT; bind it to ``(host, port)`` (port 0 asks the
    kernel for any free port); listen, with a backlog of at least 128 (``BACKLOG``):
    that many clients may wait while the server is busy.

    Example:

        listener = make_listener("127.0.0.1", 0)
        listener.getsockname()   ->  ("127.0.0.1", 43215)   # the port the kernel chose

    Prepared by: notebooks/01_sockets.ipynb, section 2.1 (The listening socket); graded
    at its end. The reference is part1_sockets/echo_server.py.
    """
    raise NotImplementedError("make_listener: four calls, socket, an option, bind, listen; see the docstring")


# --- serve_echo (2 points) ----------------------------------------------------------------


def serve_echo(listener):
    """Serve clients one after another, forever: send back every byte each one sends.

    ``listener`` is a listening socket (from ``make_listener``). Loop forever: accept a
    client; receive with ``recv(CHUNK)`` (it returns what has arrived, 1 to CHUNK bytes,
    or ``b""`` once the client has closed its side) and send each piece straight back
    with ``sendall``; when the client has closed, close the connection, and accept the
    next client. A client that vanishes (a reset: ConnectionError) must not stop the
    server.

    Example: a client sends b"hello", then b" world", then closes its side. It receives
    b"hello world", then sees the server close the connection; the next client is
    served the same way.

    Prepared by: notebooks/01_sockets.ipynb, section 2.2 (One client, call by call);
    graded at its end. The reference is part1_sockets/echo_server.py.
    """
    raise NotImplementedError("serve_echo: accept a client, echo until recv gives nothing, close, accept the next")


# --- serve_http (3 points) ----------------------------------------------------------------


def serve_http(listener):
    """The smallest HTTP server: one request per connection, forever.

    For each client: read the request (the head, up to the blank line; then exactly
    Content-Length bytes of body, which may arrive later, in pieces), answer, close.

    * ``GET /``: ``200 OK`` with an HTML page that holds a form posting to ``/``
      (``<form method="post" action="/">`` and an ``<input name="name">`` or two);
    * ``HEAD /``: the head ``GET /`` gets (its status and headers, Content-Length
      included), and no body;
    * ``POST /`` with a form body (``name=Ada+Lovelace&message=Hi``): ``200 OK`` with a
      page that shows each submitted field and its value, decoded (``+`` is a space, and
      ``%C3%AB`` the UTF-8 bytes of "ë") and HTML-escaped (a value ``<b>`` shows as
      ``&lt;b&gt;``: what a client sends is text, not HTML);
    * any other path (``GET /elsewhere``): ``404 Not Found``; any other method
      (``DELETE /``): ``501 Not Implemented``, the status for a method a server does not
      implement (RFC 9110, section 15.6.2); each with a short page that says why;
    * HTTP/1.0 needs no Host: ``GET / HTTP/1.0`` and a blank line is a whole request
      (HTTP/1.1 requires a Host header);
    * the target may come in the absolute form, ``GET http://host:port/ HTTP/1.1``:
      route on its path, ``/``;
    * a request that is not HTTP (``HELLO SERVER``) gets ``400 Bad Request``: a
      BadRequest's status is its ``.status`` (see BadRequest above);
    * every response, errors included, has the status line ``HTTP/1.1 <status>``,
      ``Content-Type: text/html; charset=utf-8``, ``Content-Length`` (the body's size
      in bytes) and ``Connection: close``; then the server closes the connection;
    * before reading, give each connection a timeout of ``TIMEOUT`` seconds
      (``settimeout``): a client that stays silent that long makes recv() raise
      TimeoutError. Use the name TIMEOUT, not its value: a check shortens it;
    * a client that sends nonsense, leaves, or times out never stops the server: close
      its connection and serve the next.

    A real browser and curl can use it: try ``curl -v -d name=Ada URL`` and the form.

    Example: ``POST / HTTP/1.1`` with the body ``name=Ada`` gets ``HTTP/1.1 200 OK`` and a
    page in which "name" and "Ada" appear; ``HEAD / HTTP/1.0`` gets the same head as
    ``GET / HTTP/1.0`` and nothing after the blank line.

    Prepared by: notebooks/01_sockets.ipynb, sections 3.1-3.5 (Start the HTTP server);
    graded in section 3.8. The reference is part1_sockets/http_server.py (its
    ``read_head``, ``parse_head`` and ``format_response`` are the hardening exercises
    below: use yours, or write it all in one function).
    """
    raise NotImplementedError("serve_http: read the head, then Content-Length bytes of body; answer; close")


# ===== The hardening track (optional) ========================================================


# --- receive_exactly (1 point) -----------------------------------------------------------


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
        "receive_exactly: recv() returns at most what you ask for; keep asking until size bytes have come"
    )


# --- format_response (1 point) -----------------------------------------------------------


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
    graded in section 3.8.
    """
    raise NotImplementedError(
        "format_response: encode the body first (its size in bytes is Content-Length), then the head"
    )


# --- read_head (2 points) -----------------------------------------------------------------


def read_head(connection):
    """Read a request's head from ``connection``; return ``(head, rest)``, both bytes.

    Read until ``END_OF_HEAD`` finds the blank line that ends the head: it matches the
    CRLF CRLF that ends the last header line and the empty line after it, and also the
    bare LF LF that nc and hand-typed requests send. ``head`` is everything before that
    match (the request line and the headers, without the last header's line end);
    ``rest`` is everything after it that came in the same reads (the start of the
    body), which the caller needs.

    * If the head passes MAX_HEAD bytes, raise
      ``BadRequest("431 Request Header Fields Too Large", "the request head is too long")``:
      never read (and store) without a limit. The limit is on the head: the bytes
      before the blank line or, while none has come, all the bytes received. A small
      head that came with a large piece of body is not too long.
    * If the client closes first (recv returns ``b""``), raise ConnectionError.

    Example: the client sends b"GET / HTTP/1.1\\r\\nHo", then b"st: x\\r\\n\\r\\nBODY".

        read_head(connection)  ->  (b"GET / HTTP/1.1\\r\\nHost: x", b"BODY")

    Prepared by: notebooks/01_sockets.ipynb, sections 2.3 (recv() may return fewer
    bytes than were sent) and 3.2 (A GET request, byte for byte); graded in 3.8.
    """
    raise NotImplementedError(
        "read_head: gather recv() pieces until END_OF_HEAD finds the blank line; mind MAX_HEAD and b''"
    )


# --- parse_head (3 points) ----------------------------------------------------------------


def parse_head(head):
    """Split a request head (bytes) into ``(method, target, version, headers)``.

    The first line is the request line, ``METHOD TARGET VERSION``, separated by single
    spaces; each following line is a header, ``Name: value``. Lines end with CRLF (or a
    bare LF). ``headers`` is a dict whose keys are the header names in lower case and
    whose values have the spaces around them removed. The target is returned as it
    came; the version too, except that a later 1.x is returned as "HTTP/1.1".

    Refuse, with ``BadRequest(status, reason)``, what is not HTTP and what two programs
    could read two ways (RFC 9110 and RFC 9112 say which status); and, to stay small,
    one thing HTTP allows (the first case below):

    * a byte beyond ASCII: "400 Bad Request". In the request line it is not HTTP (RFC
      9112's grammar has no room for it). In a header value, RFC 9110 (section 5.5)
      allows it, as obs-text, which a server may take as opaque bytes; part 1 refuses it
      all the same: decode the whole head as ASCII;
    * a request line that is not three parts, or a version not of the shape
      ``HTTP/<digit>.<digit>``: "400 Bad Request";
    * a major version other than 1 (``HTTP/2.0``, ``HTTP/0.9``): "505 HTTP Version Not
      Supported". Every ``HTTP/1.x`` is accepted: minor versions stay compatible, so
      ``HTTP/1.2`` is read as ``HTTP/1.1`` (RFC 9110, section 2.5);
    * a target in none of the three forms a server takes (RFC 9112, section 3.2):
      "400 Bad Request". The forms are ``/path?query`` (the origin form),
      ``http://host/path`` or ``https://...`` (the absolute form, sent to proxies, which
      every server must accept), and ``*`` (the asterisk form), with OPTIONS only;
    * a header line without a colon, with no name, or with whitespace in its name
      (``Host : x``: is that header "Host" or "Host "? RFC 9112, section 5.1):
      "400 Bad Request";
    * more than one Host header, or more than one Content-Length header (even with
      the same value, as part 2's parser does): "400 Bad Request". Which site, and
      where the body ends, must not depend on which copy a program keeps. Any other
      header that comes more than once keeps its last value (``Accept: a`` then
      ``Accept: b`` gives ``{"accept": "b"}``): part 1 needs no other header's value;
    * an HTTP/1.1 request (a later 1.x too) without a Host header: "400 Bad Request".

    Example:

        parse_head(b"POST /form HTTP/1.1\\r\\nHost: example.com\\r\\nContent-Length:  8 ")
        ->  ("POST", "/form", "HTTP/1.1", {"host": "example.com", "content-length": "8"})

    Prepared by: notebooks/01_sockets.ipynb, sections 3.3 (A POST with a form body) and
    3.4 (A malformed request gets a 400, and the server carries on); graded in 3.8.
    """
    raise NotImplementedError(
        "parse_head: decode as ASCII, split into lines, the first into three parts, each header at its colon"
    )
