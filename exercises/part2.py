"""Workbook, part 2: your own WSGI server, and HTTP/1.1 as bytes.

Two tracks. The REQUIRED track builds a whole WSGI server of your own, piece by piece:
``load_app``, ``build_environ``, ``run_app``, then ``serve_wsgi``, which serves Flask and
Django, unmodified, to real clients. The HARDENING track (optional, points of its own)
is the pieces of part 2's full server that make it robust: framing, parsing, smuggling,
and serving files safely.

Each function below has the same name and signature as one in ``part2_wsgi/``, and a
docstring that says what it must do, with an example and the notebook section that
prepares it. Replace each ``raise NotImplementedError(...)`` with your code, then grade:

    python -m grader part2                      # every exercise of this part
    python -m grader part2 build_environ        # just one
    python -m grader part2 build_environ --hint # and reveal its next hint

The checks are in ``grader/tests/test_part2.py``.
"""

import importlib  # noqa: F401
import io  # noqa: F401  (you will want them)
import os  # noqa: F401
import re  # noqa: F401
import sys  # noqa: F401
import traceback  # noqa: F401
from pathlib import Path  # noqa: F401
from urllib.parse import unquote  # noqa: F401

# Given, for serving files: what parse_range raises for a range the file cannot satisfy.
from part2_wsgi.apps.files_app import RangeNotSatisfiable  # noqa: F401

# Given, for the required track: the error load_app raises, and read_request, which reads
# one request from a connection (see part2_wsgi/minimal_server.py): it returns a Request
# with .method, .target, .version, .headers (a list of (name, value) pairs) and .body
# (bytes); None if the client left without a word; it raises ValueError for a request it
# cannot read, ConnectionError for a client that breaks off, and TimeoutError (both are
# OSErrors) for a client silent for longer than the connection's timeout, if it has one.
# send_in_pieces(connection, data) sends all of data, a piece at a time, so that the
# connection's timeout bounds each piece the client takes, not the whole response.
from part2_wsgi.command_line import AppLoadError  # noqa: F401  (given: raise it from load_app)
from part2_wsgi.minimal_server import read_request, send_in_pieces  # noqa: F401

# Given, for the hardening track: part 2's parser and its Request (method, target,
# version, headers as a list of (name, value) pairs, body, and request.header(name)).
# HEADER_LINE matches a whole "Name: value" line (see protocol.py); its match has two
# groups, match["name"] and match["value"], the value with the blanks around it still
# there. response_has_body(method, status_code) takes the request's method (a str) and
# the response's status code (an int), and says whether that response has a body.
from part2_wsgi.protocol import (  # noqa: F401  (given: use them)
    HEADER_LINE,  # a regular expression for one header line
    TOKEN,  # what a header name may be made of
    HTTPError,  # raise HTTPError(400, "why") for a request you refuse
    Limits,
    Request,
    RequestParser,
    response_has_body,  # False for HEAD answers, 1xx, 204 and 304
)

CHUNK = 65536  # the most to ask recv() for at once
TIMEOUT = 10  # seconds serve_wsgi lets a client stay silent before it gives up on it


# ===== The required track: your own WSGI server ============================================


# --- load_app (1 point) ---------------------------------------------------------------------


def load_app(spec):
    """Import the WSGI app named by ``spec``, ``"module:callable"``, and return it.

    That is how gunicorn, waitress and our servers take an app on their command line.
    Split ``spec`` at the colon, import the module by its name (``importlib``), then get
    the callable from it (the part after the colon may be dotted: ``"module:obj.app"``).
    Anything wrong is an ``AppLoadError`` (given) with a message that names the culprit:

    * no colon, or nothing on one side of it;
    * a module that cannot be imported (its name in the message);
    * a module without that attribute (its name in the message);
    * something that is not callable.

    Example:

        load_app("part2_wsgi.apps.flask_app:app")  ->  the Flask app object
        load_app("no_such_module:app")             ->  raises AppLoadError("cannot import 'no_such_module' ...")

    Prepared by: notebooks/02_wsgi.ipynb, section 3.1 (Loading the app: module:callable);
    graded at its end. The reference is part2_wsgi/command_line.py.
    """
    raise NotImplementedError("load_app: split at the colon, import the module by name, then find the callable on it")


# --- build_environ (2 points) ---------------------------------------------------------------


def build_environ(request, server_address, client_address=("", 0)):
    """Return the ``environ`` dict PEP 3333 asks for, for one request.

    ``request`` is what ``read_request`` returns (see above); ``server_address`` and
    ``client_address`` are ``(host, port)`` pairs: the server's, and the client's.
    The dict holds:

    * CGI's variables, every one a str: REQUEST_METHOD; SCRIPT_NAME (``""``: the app is
      at the root); PATH_INFO (the target's path, before any ``?``, %-decoded as latin-1:
      ``/a%20b`` is ``/a b``); QUERY_STRING (after the ``?``, left as sent, ``""`` if
      none); SERVER_NAME and SERVER_PORT (from ``server_address``); SERVER_PROTOCOL
      (``request.version``); REMOTE_ADDR and REMOTE_PORT (from ``client_address``);
    * WSGI's keys: ``wsgi.version`` ``(1, 0)``; ``wsgi.url_scheme`` ``"http"``;
      ``wsgi.input``, a file the app reads the body from with ``read()`` (the body's
      bytes in an ``io.BytesIO``, not the bytes themselves); ``wsgi.errors``, the text
      stream the app writes its errors to (``sys.stderr``); ``wsgi.multithread``,
      ``wsgi.multiprocess`` and ``wsgi.run_once``, all False;
    * each header: "User-Agent: x" becomes HTTP_USER_AGENT ``"x"`` (upper case, "-" to
      "_", the prefix HTTP_), except Content-Type and Content-Length, which become
      CONTENT_TYPE and CONTENT_LENGTH; a header sent twice joins its values with ", ".

    Example: GET /hello%20you?x=1 HTTP/1.1, headers Host: a and Accept: */*, served at
    ("127.0.0.1", 8888) to a client at ("10.0.0.7", 51000) gives REQUEST_METHOD "GET",
    PATH_INFO "/hello you", QUERY_STRING "x=1", SERVER_PORT "8888", REMOTE_ADDR
    "10.0.0.7", REMOTE_PORT "51000", HTTP_HOST "a", HTTP_ACCEPT "*/*", ...

    Prepared by: notebooks/02_wsgi.ipynb, section 3.2 (The environ); graded at its end.
    The reference is part2_wsgi/minimal_server.py.
    """
    raise NotImplementedError("build_environ: CGI's keys as strings, WSGI's keys, then one key per header")


# --- run_app (3 points) ---------------------------------------------------------------------


def run_app(app, environ, send):
    """Call the WSGI ``app`` for one request, send its response, return its status line.

    ``send(data)`` sends bytes to the client, every one of them (``serve_wsgi`` passes a
    function that hands them to ``send_in_pieces``). Define
    ``start_response(status, headers, exc_info=None)`` here and call
    ``app(environ, start_response)``; then iterate over what the app returns:

    * ``start_response`` only remembers the status (like "200 OK") and the headers (a
      list of (name, value) pairs), and returns a ``write(data)`` callable that sends
      body bytes as the pieces of the body do;
    * the head (``HTTP/1.1 <status>``, a line per header, ``Connection: close``, an empty
      line; CRLF line ends; latin-1) goes out with the first *non-empty* piece of body,
      or after the last one if all were empty, never before: until then the app may
      call ``start_response`` again, with ``exc_info``, to replace the response;
    * with ``exc_info`` once the head is out, re-raise that exception: too late; a
      second call without ``exc_info`` is the app's mistake: raise AssertionError;
    * if the result has a ``close()``, call it however the iteration ends (finally);
    * if the app raises, print the traceback to ``environ["wsgi.errors"]`` (the
      server's log), then: before anything was sent, answer ``500 Internal Server
      Error``; once the head is out, re-raise the error. Half a response has gone out and
      no second response can follow it; the server closes the connection, the only way
      left to tell the client that its response is cut short.

    ``Connection: close`` in the head tells the client what the server will do: close
    the connection after this response (HTTP/1.1 keeps connections open unless told).

    Return the status line, e.g. "200 OK" (the server's log line wants it).

    Example: an app that starts "200 OK" with [("Content-Type", "text/plain")] and returns
    [b"Hello"] makes run_app send b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\n"
    b"Connection: close\\r\\n\\r\\nHello" and return "200 OK".

    Prepared by: notebooks/02_wsgi.ipynb, section 3.3 (Running the app); graded at its
    end. The reference is part2_wsgi/minimal_server.py.
    """
    raise NotImplementedError("run_app: start_response only remembers; the head goes out with the first body bytes")


# --- serve_wsgi (3 points) ------------------------------------------------------------------


def serve_wsgi(listener, app):
    """Your WSGI server: serve ``app`` to clients one after another, forever.

    Loop: accept a connection; give it a timeout of ``TIMEOUT`` seconds
    (``settimeout``), so that a client that connects and stays silent cannot hold your
    server: ``read_request`` then raises TimeoutError; ``read_request`` from it (given);
    ``build_environ`` with the connection's own address (``getsockname``) as the
    server's and the accepted address as the client's; ``run_app`` with a ``send`` that
    hands each piece of the response to ``send_in_pieces`` (given) with this connection;
    close the connection (a with-block), however serving it ended: the client reads the
    response until the connection closes.

    Why ``send_in_pieces``, not the connection's own ``send`` or ``sendall``: ``send``
    takes only what fits in the socket's buffer and returns how many bytes it took, and
    ``run_app`` does not look, so a large body would lose the rest; and a socket's timeout
    caps a whole ``sendall`` call (Python 3.5 and later), so a client on a slow line,
    reading steadily, would lose a large response after TIMEOUT seconds. ``send_in_pieces``
    sends every byte, and the timeout counts only while the client takes nothing at all.

    What can go wrong, and what to do; in every case, serve the next client:

    * ``read_request`` returns None: the client left without a word;
    * ``read_request`` raises ValueError: a request it cannot read; answer ``400 Bad
      Request`` (a status line, ``Content-Length``, ``Connection: close``, a blank line,
      a short body). Catch ValueError around ``read_request`` alone: from anywhere else
      it is not the client's mistake;
    * OSError (ConnectionError, TimeoutError), from reading or sending: the client broke
      off, or stayed silent; nothing to answer;
    * any other exception from ``run_app``: the app failed once its response had begun
      (an earlier failure ``run_app`` answers with a 500 itself), and its traceback is
      in wsgi.errors already: write one line about it to ``sys.stderr``, and let the
      with-block close the connection.

    How it is graded: the checks serve a bare WSGI app, the Flask app and the Django app
    (``part2_wsgi/apps/``), each wrapped in ``wsgiref.validate.validator``, to real
    clients (``requests``), and a body of 20 MB to a client that reads it at once and to
    one that reads it steadily for longer than TIMEOUT (which that check sets to 1 s).
    While they do, the grader puts the *reference* ``build_environ`` and ``run_app`` in
    place of yours in this module, so this stage is graded on its own loop, whatever
    state your other stages are in. (Call them by these names, as module globals, for
    that to work.) Once your pieces pass too, run your whole server with them: notebook
    02, section 3.4 shows how.

    Example: serving the Flask app, ``GET /`` answers 200 with Flask's page, ``POST /``
    with a form shows the fields, a client that sends "HELLO" gets a 400, and an app that
    fails half way through a body cuts that response short, but does not stop the server.

    Prepared by: notebooks/02_wsgi.ipynb, section 3.4 (The loop, with Flask and Django);
    graded at its end. The reference is part2_wsgi/minimal_server.py: ``serve_wsgi``,
    and ``serve_connection``, which serves one client.
    """
    raise NotImplementedError("serve_wsgi: accept; read_request; build_environ; run_app; close; serve the next")


# ===== The hardening track (optional) ========================================================


# --- response_head (1 point) ------------------------------------------------------------


def response_head(status, headers, version="HTTP/1.1"):
    """The head of a response as bytes: status line, one line per header, blank line.

    ``status`` is like "200 OK"; ``headers`` is a list of (name, value) pairs of str,
    kept in order; ``version`` is the status line's first word, "HTTP/1.1" unless
    another is given (say "HTTP/1.0"). Lines end with CRLF. HTTP heads are Latin-1
    (ISO-8859-1), as PEP 3333 says: encode with "latin-1", not UTF-8.

    Example:

        response_head("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        ->  b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\n"
        response_head("404 Not Found", [], version="HTTP/1.0")
        ->  b"HTTP/1.0 404 Not Found\\r\\n\\r\\n"

    Prepared by: notebooks/02_wsgi.ipynb, section 4.5 (The response, down to the
    bytes); graded in 4.8.
    """
    raise NotImplementedError("response_head: a status line, a line per header, an empty line; CRLF line ends; latin-1")


# --- chunk (1 point) --------------------------------------------------------------------


def chunk(data):
    """One piece of a chunked body: the size of ``data`` in hexadecimal, CRLF, the
    bytes, CRLF.

    A response whose length is unknown in advance is sent in chunks, each saying how
    long it is; a chunk of size zero (b"0\\r\\n\\r\\n") ends the body.

    Example:

        chunk(b"hello")        ->  b"5\\r\\nhello\\r\\n"
        chunk(b"x" * 26)       ->  b"1a\\r\\nxxxxxxxxxxxxxxxxxxxxxxxxxx\\r\\n"

    Prepared by: notebooks/02_wsgi.ipynb, section 4.6 (A body of unknown length:
    chunked framing); graded in 4.8.
    """
    raise NotImplementedError("chunk: the size in hexadecimal, CRLF, the bytes, CRLF; build bytes, not str")


# --- parse_header_line (2 points) -------------------------------------------------------


def parse_header_line(line):
    """Split one header line (a str, without its line end) into ``(name, value)``.

    The name is kept as sent; spaces and tabs around the value are dropped. Refuse,
    with ``HTTPError(400, reason)``, every line that a server could read two ways:

    * a line that starts with a space or tab (an obsolete "folded" continuation line);
    * a line without a colon, or with an empty name;
    * a name that is not a token (letters, digits and ``!#$%&'*+-.^_`|~``), which also
      refuses a space before the colon: ``"Host : x"``;
    * a value with control characters in it (tab excepted).

    ``HEADER_LINE.fullmatch(line)`` (given) does most of this: a match, or None, whose
    groups "name" and "value" hold the two parts (the value with its blanks).

    Example:

        parse_header_line("Host:   example.com:8080 ")  ->  ("Host", "example.com:8080")
        parse_header_line("X-Empty:")                    ->  ("X-Empty", "")
        parse_header_line("Host : example.com")          ->  raises HTTPError, status 400

    Prepared by: notebooks/02_wsgi.ipynb, sections 4.2 (The parser, fed in two pieces)
    and 5 (Errors know their status); graded in 5.1.
    """
    raise NotImplementedError(
        "parse_header_line: refuse a leading space or tab, then HEADER_LINE must match the whole line, or it is a 400"
    )


# --- add_header_variables (2 points) ----------------------------------------------------


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

    Prepared by: notebooks/02_wsgi.ipynb, section 4.3 (The environ); graded in 4.8.
    """
    raise NotImplementedError(
        "add_header_variables: upper case, dashes to underscores, the HTTP_ prefix; mind the four special cases"
    )


# --- response_framing (2 points) --------------------------------------------------------


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

    Prepared by: notebooks/02_wsgi.ipynb, sections 4.6 (A body of unknown length:
    chunked framing) and 4.7 (HTTP/1.0: the end of the body is the end of the
    connection); graded in 4.8.
    """
    raise NotImplementedError(
        "response_framing: ask in order: no body at all? a Content-Length? HTTP/1.1? otherwise close"
    )


# --- body_framing (3 points) ------------------------------------------------------------


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

    Prepared by: notebooks/02_wsgi.ipynb, sections 4.2 (The parser, fed in two pieces)
    and 5 (Errors know their status); graded in 5.1.
    """
    raise NotImplementedError(
        "body_framing: read both framing headers first; refuse the ambiguous cases; then the length, digits only"
    )


# ===== Serving files (hardening track) =========================================================


# --- parse_range (2 points) ----------------------------------------------------------------


def parse_range(header, size):
    """The one byte range a ``Range`` header asks for, as ``(start, end)``, end included.

    ``header`` is the Range header's value, ``size`` the file's length in bytes. Three
    forms (RFC 9110, 14.1.2):

    * ``bytes=START-END``: END past the file's last byte is cut to it;
    * ``bytes=START-``: from START to the last byte;
    * ``bytes=-N``: the last N bytes (the whole file if it is shorter than N).

    The unit is read in any case (``Bytes=0-1`` is ``bytes=0-1``), and blanks around
    the unit and around the range are ignored (``bytes= 0-1``).

    Return None for a header to ignore (the answer is then the whole file, 200): a unit
    other than bytes, several ranges (a comma), anything other than ASCII digits in
    those forms, or END before START; and any header at all for an empty file (``size``
    0). RFC 9110 (section 14.1) counts ``bytes=-5`` of an empty file as satisfiable, yet
    a 206 names the first and the last byte it sends, and an empty file has neither: its
    answer is the whole, empty file (200, ``Content-Length: 0``), as section 14.2 lets a
    server ignore a Range. Raise ``RangeNotSatisfiable`` (given) for a range that asks
    for nothing the file has: START at or past the end, or ``bytes=-0`` (the answer is
    then a 416).

    Example, for a file of 1000 bytes:

        parse_range("bytes=0-499", 1000)    ->  (0, 499)
        parse_range("bytes=-100", 1000)     ->  (900, 999)
        parse_range("bytes=900-5000", 1000) ->  (900, 999)
        parse_range("bytes=0-1,5-9", 1000)  ->  None
        parse_range("bytes=1000-", 1000)    ->  raises RangeNotSatisfiable
        parse_range("bytes=-5", 0)          ->  None

    Prepared by: notebooks/02_wsgi.ipynb, section 7.4 (A piece of a file: Range, 206 and
    416); graded in 7.6.
    """
    raise NotImplementedError(
        "parse_range: split at '=' then at '-'; three forms; end included; None to ignore, raise past the end"
    )


# --- resolve_path (3 points) ----------------------------------------------------------------


def resolve_path(root, url_path):
    """The file or folder of the folder ``root`` that ``url_path`` names, or None.

    ``root`` is a folder (a str or a Path); ``url_path`` is ``PATH_INFO``, which the
    server has already %-decoded once, each byte as one latin-1 character (PEP 3333).
    Return the resolved ``Path`` (symlinks followed, no ``..`` left) when it lies inside
    the resolved root, whether or not it exists; None for anything else:

    * never %-decode again: "/%2e%2e/x" arrived from "/%252e%252e/x" and names a folder
      called "%2e%2e", not the parent;
    * re-read the path as the UTF-8 bytes it was ("/caf\xc3\xa9.txt" is "/café.txt");
      bytes that are not UTF-8 (an overlong "\xc0\xae" too): None;
    * a NUL or a backslash anywhere: None;
    * "//etc/passwd" names root/etc/passwd: a URL path is not a path of this machine;
    * after resolving, the path must be the root or inside it: the root itself ("/")
      is inside; a sibling folder whose name starts like the root's ("/srv/www2" beside
      "/srv/www") is outside;
    * a path that names nothing is resolved all the same (whether it exists is the
      caller's question, answered with a 404); but a symlink loop (a link that leads,
      link after link, back to itself) cannot be resolved: None, on every Python.
      ``Path.resolve`` raises RuntimeError for one up to Python 3.12 and returns it
      unresolved from 3.13, and ``os.path.realpath`` returns it unresolved; but with
      ``strict=True``, ``os.path.realpath`` raises OSError for it on every version, with
      errno ELOOP (and other OSErrors for a path that names nothing, no reason for None).

    Example, with a folder /srv/www holding notes.txt:

        resolve_path("/srv/www", "/notes.txt")       ->  Path("/srv/www/notes.txt")
        resolve_path("/srv/www", "/a/../notes.txt")  ->  Path("/srv/www/notes.txt")
        resolve_path("/srv/www", "/../etc/passwd")   ->  None

    Prepared by: notebooks/02_wsgi.ipynb, section 7.5 (The path is an attack); graded in
    7.6.
    """
    raise NotImplementedError(
        "resolve_path: UTF-8 again, no second decoding; join the segments, resolve, check it is inside"
    )
