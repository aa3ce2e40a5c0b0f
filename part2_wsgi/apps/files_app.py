"""The files app: a WSGI app that serves a folder, the first job of any web server.

    python part2_wsgi/server.py --files DIR                  # DIR, as python -m http.server serves it
    python part2_wsgi/server.py APP --files DIR              # DIR's files first, the rest to APP
    python part3_concurrency/select_server.py --files DIR    # every server takes --files

Or from Python: ``app = FilesApp("public")``, or ``FilesApp("public", fallback=flask_app)``
(a file that exists wins, anything else goes to the app, as whitenoise does it).

What it answers, and why each header is there:

* GET and HEAD; any other method on a file is a 405 with ``Allow: GET, HEAD``.
* ``Content-Type`` (from ``mimetypes``), ``Content-Length``, ``Last-Modified`` and a strong
  ``ETag`` (the file's size and modification time: a new version, a new tag).
* A client that has a copy sends ``If-None-Match`` (its ETag) or ``If-Modified-Since``; if
  the copy is current, a ``304 Not Modified`` without a body saves sending the file again.
  If-None-Match wins when both are there (RFC 9110, 13.2.2): a tag is exact, a date is
  only to the second.
* ``Range: bytes=START-END`` asks for a piece (a video player seeking, a download
  resumed): ``206 Partial Content`` with ``Content-Range``. A range past the end is a
  ``416`` with ``Content-Range: bytes */SIZE``. A request for several ranges at once is
  answered with the whole file, 200, which RFC 9110 allows: a multipart answer is
  rarely asked for and costs more code than it is worth here.
* A folder answers with its ``index.html``; ``/docs`` without the slash is redirected
  (301) to ``/docs/``, so that the page's relative links work. No listing of a folder.
* Anything else is a 404 that does not say why: not there, outside the folder, a name
  we refuse. A 403 would tell a visitor that something exists where they looked.

The path is an attack (``GET /../../etc/passwd`` and its disguises), so one function,
``resolve_path``, turns a URL path into a file of the folder, or into nothing.

The body: if the server offers ``environ["wsgi.file_wrapper"]`` (PEP 3333), the app
returns the open file wrapped in it, and the server may hand the file to the kernel
(``sendfile()``: no copy through Python). Otherwise it returns the file's blocks, read
one at a time. Either way the file is closed when the server calls ``close()``.
"""

import mimetypes
import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

BLOCK_SIZE = 65536  # bytes per read() when the app reads the file itself
ALLOWED = "GET, HEAD"


# --- where a URL path leads -------------------------------------------------------------


def resolve_path(root, url_path):
    """The file or folder of ``root`` that ``url_path`` names, as a resolved Path, or None.

    ``url_path`` is ``PATH_INFO``: the server has already %-decoded it, once, and (PEP
    3333) made each byte one latin-1 character. So:

    * never decode it again: ``%252e`` arrived as ``%2e``, which is a name, not a dot;
    * re-read it as the UTF-8 bytes it was (``"/caf\\xc3\\xa9"`` is ``"/café"``); bytes
      that are not UTF-8 (an overlong ``%c0%ae`` too) give None;
    * a NUL or a backslash (a separator on Windows) gives None;
    * its segments are joined under the root, empty ones dropped (``//etc/passwd`` is not
      an absolute path here), then the result is resolved, symlinks and ``..`` included,
      and must still lie inside the resolved root (``os.path.commonpath``), else None.

    Whether the path exists is the caller's question: a resolved path inside the root
    that names nothing is returned too.

    Example, with a folder /srv/www holding notes.txt:

        resolve_path("/srv/www", "/notes.txt")         ->  Path("/srv/www/notes.txt")
        resolve_path("/srv/www", "/a/../notes.txt")    ->  Path("/srv/www/notes.txt")
        resolve_path("/srv/www", "/../etc/passwd")     ->  None
        resolve_path("/srv/www", "/%2e%2e/secret")     ->  Path("/srv/www/%2e%2e/secret") (no such file)
    """
    try:
        path = url_path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    if "\0" in path or "\\" in path:
        return None
    root = os.path.realpath(root)
    segments = [segment for segment in path.split("/") if segment]
    resolved = os.path.realpath(os.path.join(root, *segments))
    if os.path.commonpath([root, resolved]) != root:
        return None
    return Path(resolved)


def parse_range(header, size):
    """The one byte range a ``Range`` header asks for, as ``(start, end)``, end included.

    ``size`` is the file's length in bytes. Three forms (RFC 9110, 14.1.2):

    * ``bytes=START-END``: END past the file is cut to its last byte;
    * ``bytes=START-``: from START to the end;
    * ``bytes=-N``: the last N bytes (the whole file if it is shorter).

    Returns None for a header to ignore (the answer is then the whole file, 200): another
    unit than bytes, several ranges (a comma), anything not made of ASCII digits in
    those forms, or END before START. Raises ``RangeNotSatisfiable`` for a range that
    asks for nothing the file has (START at or past the end, ``bytes=-0``, any range of
    an empty file): the answer is then a 416.

    Example, for a file of 1000 bytes:

        parse_range("bytes=0-499", 1000)    ->  (0, 499)
        parse_range("bytes=500-", 1000)     ->  (500, 999)
        parse_range("bytes=-100", 1000)     ->  (900, 999)
        parse_range("bytes=900-5000", 1000) ->  (900, 999)
        parse_range("bytes=0-1,5-9", 1000)  ->  None
        parse_range("bytes=1000-", 1000)    ->  raises RangeNotSatisfiable
    """
    unit, equals, ranges = header.partition("=")
    if unit.strip().lower() != "bytes" or not equals or "," in ranges:
        return None
    first, dash, last = ranges.strip().partition("-")
    if not dash or not all(part == "" or (part.isascii() and part.isdigit()) for part in (first, last)):
        return None
    if first == "":  # the last N bytes
        if last == "":
            return None
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(f"{header!r} asks for no bytes of a file of {size}")
        return max(size - int(last), 0), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"{header!r} starts past the end of a file of {size} bytes")
    return start, size - 1 if last == "" else min(int(last), size - 1)


class RangeNotSatisfiable(ValueError):
    """A Range that asks for no byte the file has: the answer is 416."""


# --- the app ------------------------------------------------------------------------------


class FilesApp:
    """A WSGI app that serves the folder ``root``; see the module's docstring.

    ``fallback``: a WSGI app for every request that names no file (say a Flask app). Without
    one, those get a 404. ``file_wrapper``: use the server's ``wsgi.file_wrapper`` when it
    offers one (False reads the file in Python even then: notebook 03 measures the two)."""

    def __init__(self, root, fallback=None, file_wrapper=True, block_size=BLOCK_SIZE):
        self.root = os.path.realpath(root)
        self.fallback = fallback
        self.file_wrapper = file_wrapper
        self.block_size = block_size

    def __call__(self, environ, start_response):
        url_path = environ.get("PATH_INFO") or "/"
        path = resolve_path(self.root, url_path)
        kind = kind_of(path)
        if kind == "folder":
            if not url_path.endswith("/"):
                return redirect_to_folder(environ, url_path, start_response)
            path = path / "index.html"
            kind = kind_of(path)
        elif url_path.endswith("/"):
            kind = None  # "/notes.txt/" names a folder, and notes.txt is none
        if kind != "file":
            if self.fallback is not None:
                return self.fallback(environ, start_response)
            return plain(start_response, "404 Not Found", "Not Found\n")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return plain(start_response, "405 Method Not Allowed", "Method Not Allowed\n", [("Allow", ALLOWED)])
        try:
            file = open(path, "rb")
        except OSError:  # gone since, or not ours to read: still a 404 that does not say why
            return plain(start_response, "404 Not Found", "Not Found\n")
        try:
            return self.respond(environ, start_response, file, path)
        except BaseException:
            file.close()
            raise

    def respond(self, environ, start_response, file, path):
        """The response for an open file: 200, 206, 304 or 416, with its body."""
        info = os.fstat(file.fileno())  # the file we opened, not the name: it may change meanwhile
        if not stat.S_ISREG(info.st_mode):
            file.close()
            return plain(start_response, "404 Not Found", "Not Found\n")
        size = info.st_size
        validators = [("ETag", etag(info)), ("Last-Modified", formatdate(info.st_mtime, usegmt=True))]
        if not_modified(environ, info):
            file.close()
            start_response("304 Not Modified", validators)
            return []
        headers = [("Content-Type", content_type(path)), *validators, ("Accept-Ranges", "bytes")]
        status, start, end = "200 OK", 0, size - 1
        wanted = requested_range(environ, info)
        try:
            piece = parse_range(wanted, size) if wanted is not None else None
        except RangeNotSatisfiable:
            file.close()
            unsatisfiable = [("Content-Range", f"bytes */{size}")]
            return plain(start_response, "416 Range Not Satisfiable", "Range Not Satisfiable\n", unsatisfiable)
        if piece is not None:
            status, (start, end) = "206 Partial Content", piece
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        length = end - start + 1
        start_response(status, [*headers, ("Content-Length", str(length))])
        if environ["REQUEST_METHOD"] == "HEAD":
            file.close()
            return []
        piece = FilePiece(file, start, length, self.block_size)
        wrapper = environ.get("wsgi.file_wrapper") if self.file_wrapper else None
        # PEP 3333: a server sends a wrapped file from where it stands, and may do so with
        # sendfile(). Without a wrapper, the piece is the body itself: blocks, read here.
        return wrapper(piece, self.block_size) if wrapper is not None else piece


def kind_of(path):
    """What ``path`` names, from one stat(): "file", "folder", or None for nothing there or
    something not to serve (a FIFO, whose open() would wait for a writer; a device; a socket)."""
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None


class FilePiece:
    """``length`` bytes of a file just opened, from ``start``: the body of a 200 or a 206.

    Handed to the server's ``wsgi.file_wrapper``, it is a file: ``fileno()`` and ``tell()``
    for a server that sends it with sendfile() (no further than the Content-Length), and a
    ``read()`` that stops at the piece's end for one that reads it instead (wsgiref sends
    all it reads, whatever the Content-Length). Without a wrapper, it is the body itself,
    an iterable of blocks. ``close()`` closes the file. A class rather than a generator: a
    generator closed before its first step never runs its ``finally``, and the file would
    stay open."""

    def __init__(self, file, start, length, block_size=BLOCK_SIZE):
        if start:  # (a file just opened stands at 0)
            file.seek(start)
        self.file, self.left, self.block_size = file, length, block_size

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.file.read(size)
        self.left -= len(data)
        return data

    def __iter__(self):
        # read() gives b"" at the piece's end, or sooner if the file shrank meanwhile (the
        # server then sees a body shorter than its Content-Length, and closes the connection).
        while data := self.read(self.block_size):
            yield data

    def fileno(self):
        return self.file.fileno()

    def tell(self):
        return self.file.tell()

    def close(self):
        self.file.close()


# --- headers -----------------------------------------------------------------------------------


def etag(info):
    """A strong validator: size and modification time (nanoseconds), in hexadecimal."""
    return f'"{info.st_size:x}-{info.st_mtime_ns:x}"'


def content_type(path):
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


def not_modified(environ, info):
    """Whether the client's copy is current (RFC 9110, 13.2.2): If-None-Match first, and
    If-Modified-Since only when there is no If-None-Match."""
    tags = environ.get("HTTP_IF_NONE_MATCH")
    if tags is not None:
        current = etag(info)
        # If-None-Match compares weakly: a W/ prefix does not matter.
        return any(tag.strip().removeprefix("W/") in ("*", current) for tag in tags.split(","))
    since = http_time(environ.get("HTTP_IF_MODIFIED_SINCE"))
    return since is not None and int(info.st_mtime) <= since


def requested_range(environ, info):
    """The Range header to act on, or None. Only GET has ranges; and an If-Range that names
    another version of the file means "send it whole" (RFC 9110, 13.1.5)."""
    wanted = environ.get("HTTP_RANGE")
    if wanted is None or environ["REQUEST_METHOD"] != "GET":
        return None
    condition = environ.get("HTTP_IF_RANGE")
    if condition is not None and condition.strip() not in (etag(info), formatdate(info.st_mtime, usegmt=True)):
        return None
    return wanted


def http_time(text):
    """An HTTP date as a Unix time, or None for a missing or malformed one."""
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


# --- small answers --------------------------------------------------------------------------------


def plain(start_response, status, text, extra_headers=()):
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra_headers]
    start_response(status, headers)
    return [body]


def redirect_to_folder(environ, url_path, start_response):
    """301 to the folder's URL with its slash. The Location is built from the path's
    non-empty segments, re-encoded: a path "//evil.example" would otherwise become the
    Location "//evil.example/", which a browser reads as another site."""
    segments = [quote(segment.encode("latin-1"), safe="") for segment in url_path.split("/") if segment]
    location = quote(environ.get("SCRIPT_NAME", "").encode("latin-1")) + "/" + "/".join(segments) + "/"
    if environ.get("QUERY_STRING"):
        location += "?" + environ["QUERY_STRING"]
    return plain(start_response, "301 Moved Permanently", f"See {location}\n", [("Location", location)])
