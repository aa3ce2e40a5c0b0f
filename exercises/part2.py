"""Workbook, part 2: HTTP/1.1 as bytes, and the WSGI glue.

Each function below has the same name and signature as one in ``part2_wsgi/``, and a
docstring that says what it must do. Replace each ``raise NotImplementedError(...)``
with your code, then grade it:

    python -m grader part2                    # every exercise of this part
    python -m grader part2 body_framing       # just one

The notebook named in each docstring prepares the exercise; its last cell in that
section grades it too. The exercises go from easy to hard: do them in order. The tests
that grade them are in ``grader/tests/test_part2.py``: read them when you are stuck.

What the exercises build on is given, imported below from the reference: the
``Request`` (method, target, version, headers as a list of (name, value) pairs, body,
and ``request.header(name)``), ``HTTPError(status, detail)``, ``Limits`` and the parser.
"""

import re  # noqa: F401

from part2_wsgi.protocol import (  # noqa: F401  (given: use them)
    CONTINUE,  # b"HTTP/1.1 100 Continue\r\n\r\n"
    HEADER_LINE,  # a regular expression for "Name: value" (see protocol.py)
    TOKEN,  # what a header name may be made of
    HTTPError,  # raise HTTPError(400, "why") for a request you refuse
    Limits,
    Request,
    RequestParser,
    response_has_body,  # False for HEAD answers, 1xx, 204 and 304
)

CHUNK = 65536  # the most to ask recv() for at once


# --- 1. response_head (1 point) ------------------------------------------------------------


def response_head(status, headers, version="HTTP/1.1"):
    """The head of a response as bytes: status line, one line per header, blank line.

    ``status`` is like "200 OK"; ``headers`` is a list of (name, value) pairs of str,
    kept in order. Lines end with CRLF. HTTP heads are Latin-1 (ISO-8859-1), as PEP 3333
    says: encode with "latin-1", not UTF-8.

    Example:

        response_head("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        ->  b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\n"

    Prepared by: notebooks/02_wsgi.ipynb, section 2.5 (run_app: the server's half, down
    to the bytes); graded in 2.8.
    """
    raise NotImplementedError(
        "f'{version} {status}\\r\\n', then f'{name}: {value}\\r\\n' per header, then '\\r\\n'; encode as latin-1"
    )


# --- 2. chunk (1 point) --------------------------------------------------------------------


def chunk(data):
    """One piece of a chunked body: the size of ``data`` in hexadecimal, CRLF, the
    bytes, CRLF.

    A response whose length is unknown in advance is sent in chunks, each saying how
    long it is; a chunk of size zero (b"0\\r\\n\\r\\n") ends the body.

    Example:

        chunk(b"hello")        ->  b"5\\r\\nhello\\r\\n"
        chunk(b"x" * 26)       ->  b"1a\\r\\nxxxxxxxxxxxxxxxxxxxxxxxxxx\\r\\n"

    Prepared by: notebooks/02_wsgi.ipynb, section 2.6 (A body of unknown length:
    chunked framing); graded in 2.8.
    """
    raise NotImplementedError(
        "the size is f'{len(data):x}' (hexadecimal), then CRLF, the bytes, CRLF: build bytes, not str"
    )


# --- 3. parse_header_line (2 points) -------------------------------------------------------


def parse_header_line(line):
    """Split one header line (a str, without its line end) into ``(name, value)``.

    The name is kept as sent; spaces and tabs around the value are dropped. Refuse,
    with ``HTTPError(400, reason)``, every line that a server could read two ways:

    * a line that starts with a space or tab (an obsolete "folded" continuation line);
    * a line without a colon, or with an empty name;
    * a name that is not a token (letters, digits and ``!#$%&'*+-.^_`|~``), which also
      refuses a space before the colon: ``"Host : x"``;
    * a value with control characters in it (tab excepted).

    ``HEADER_LINE.fullmatch(line)`` (given) does most of this.

    Example:

        parse_header_line("Host:   example.com:8080 ")  ->  ("Host", "example.com:8080")
        parse_header_line("X-Empty:")                    ->  ("X-Empty", "")
        parse_header_line("Host : example.com")          ->  raises HTTPError, status 400

    Prepared by: notebooks/02_wsgi.ipynb, sections 2.2 (The parser, fed in two pieces)
    and 3 (Errors know their status); graded in 3.1.
    """
    raise NotImplementedError("refuse a leading space/tab, then match = HEADER_LINE.fullmatch(line): no match is a 400")


# --- 4. add_header_variables (2 points) ----------------------------------------------------


def add_header_variables(environ, request):
    """Add the request's headers to the WSGI ``environ`` dict, as PEP 3333 (and CGI) say.

    Change ``environ`` in place, and return nothing.

    * "User-Agent: x" becomes ``environ["HTTP_USER_AGENT"] = "x"``: upper case, "-" to
      "_", and the prefix ``HTTP_``;
    * except Content-Type and Content-Length, which become ``CONTENT_TYPE`` and
      ``CONTENT_LENGTH``, without the prefix;
    * a header sent twice is one key, its values joined with ", " (for Cookie, "; ");
    * a header whose name has an underscore ("X_User") is dropped: it would land on the
      same key as "X-User", and let a client forge a header a proxy sets;
    * if the request had a Transfer-Encoding (a chunked body, which the parser has
      already decoded into ``request.body``), set ``CONTENT_LENGTH`` to the body's
      length, as a str.

    Example: a request with headers [("Host", "a"), ("Accept", "x"), ("Accept", "y"),
    ("Content-Type", "text/plain")] adds ``{"HTTP_HOST": "a", "HTTP_ACCEPT": "x, y",
    "CONTENT_TYPE": "text/plain"}`` to environ.

    Prepared by: notebooks/02_wsgi.ipynb, section 2.3 (The environ); graded in 2.8.
    """
    raise NotImplementedError(
        "for name, value in request.headers: key = name.upper().replace('-', '_'); mind the four special cases"
    )


# --- 5. response_framing (2 points) --------------------------------------------------------


def response_framing(request, status_code, headers):
    """How this response's body ends: "length", "chunked", "close" or "none".

    ``request`` is the Request being answered; ``status_code`` an int; ``headers`` the
    app's (name, value) pairs.

    * "none": the response has no body at all (``response_has_body`` is False: an
      answer to HEAD, or a 1xx, 204 or 304 status);
    * "length": the app set a Content-Length header (in any case: "content-length");
    * "chunked": no Content-Length, and the client speaks HTTP/1.1;
    * "close": no Content-Length, and an HTTP/1.0 client, which knows no chunks: the
      end of the body is the end of the connection.

    Example: a GET over HTTP/1.1 answered "200 OK" with only a Content-Type header:

        response_framing(request, 200, [("Content-Type", "text/plain")])  ->  "chunked"

    Prepared by: notebooks/02_wsgi.ipynb, sections 2.6 (A body of unknown length:
    chunked framing) and 2.7 (HTTP/1.0: the end of the body is the end of the
    connection); graded in 2.8.
    """
    raise NotImplementedError("check in order: no body at all? a Content-Length header? HTTP/1.1? otherwise 'close'")


# --- 6. body_framing (3 points) ------------------------------------------------------------


def body_framing(request, limits=Limits()):
    """How the *request's* body is delimited: ``("length", n)`` or ``("chunked", None)``.

    Read the request's Transfer-Encoding and Content-Length headers (``request.header``
    joins repeated ones with ", "):

    * neither: no body, ``("length", 0)``;
    * Content-Length n: ``("length", n)``; bigger than ``limits.max_body``:
      HTTPError 413, before a byte of it is read. Anything but ASCII digits (say "-1",
      "abc", "5, 7" from two headers, or "\\u0663", an Arabic 3 that ``int``
      and ``str.isdigit`` accept): HTTPError 400;
    * Transfer-Encoding "chunked" (any case): ``("chunked", None)``.

    Refuse ambiguous requests, which a proxy in front of us might read another way
    (request smuggling):

    * both Transfer-Encoding and Content-Length: 400;
    * Transfer-Encoding in an HTTP/1.0 request: 400;
    * a Transfer-Encoding whose last coding is not chunked ("gzip"): 400;
    * other codings before chunked ("gzip, chunked"): 501, we do not implement them.

    Example:

        body_framing(Request("POST", "/", "HTTP/1.1", [("Host", "a"), ("Content-Length", "12")]))
        ->  ("length", 12)

    Prepared by: notebooks/02_wsgi.ipynb, sections 2.2 (The parser, fed in two pieces)
    and 3 (Errors know their status); graded in 3.1.
    """
    raise NotImplementedError(
        "te = request.header('Transfer-Encoding'), cl = request.header('Content-Length'); handle te first"
    )


# --- 7. read_request (3 points) ------------------------------------------------------------


def read_request(connection, parser):
    """Receive from ``connection`` until ``parser`` holds one whole request; return it.

    ``parser`` is a RequestParser: ``parser.feed(data)`` gives it bytes,
    ``parser.next_request()`` returns the next complete Request or None ("feed me more").
    Ask the parser first: bytes of a second request may already be in it (pipelining).

    * If the client closes (recv returns ``b""``) before sending anything: return None,
      the normal end of a keep-alive connection. If it closes in the middle of a request
      (``parser.has_partial_request``): raise ConnectionError.
    * ``Expect: 100-continue``: a client (curl, for a large upload) sends the head and
      waits for our go-ahead before sending the body. When the parser has the head and
      waits for the body (``parser.waiting_for_body`` is a Request whose
      ``expects_continue`` is True), send ``CONTINUE`` once.
    * Let the parser's HTTPError go up: the server answers it.

    Example: the client sends b"GET / HTTP/1.1\\r\\nHo", then b"st: x\\r\\n\\r\\n".

        read_request(connection, RequestParser())  ->  Request(method="GET", target="/", ...)

    Prepared by: notebooks/02_wsgi.ipynb, sections 2.2 (The parser, fed in two pieces)
    and 4 (The real server); graded in 4.4.
    """
    raise NotImplementedError(
        "loop: request = parser.next_request(); if None, parser.feed(connection.recv(CHUNK)); mind b'' and Expect"
    )
