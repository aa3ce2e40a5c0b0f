"""Lesson 3, the WSGI glue between a parsed request and any Python web app.

PEP 3333 is a contract with two sides. The *application* is a callable:

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, world!\\n"]

The *server* builds ``environ`` (a dict of CGI-style keys describing the request),
passes a ``start_response`` the app calls with its status and headers, then sends
the bytes the app returns. Flask and Django are such callables; so is this workshop's
demo app. Any server that keeps this contract runs any of them: mix and match.

This module knows PEP 3333 and nothing about sockets. It is handed a ``Request``, the
``Connection`` it came from (which frames the response: connection.py decides every
HTTP rule), and a ``send(bytes)`` function; the socket loop (``server.py``, or part
3's servers) owns the socket and decides what ``send`` does.
"""

import io
import os
import re
import stat
import sys
import time
import traceback
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

from part2_wsgi.protocol import response_has_body

SERVER_SOFTWARE = "SmallJourney/1.0"

# --- the environ -----------------------------------------------------------------------


def build_environ(request, *, server_address, client_address=("", 0), multithread=False, multiprocess=False):
    """The environ PEP 3333 asks for, built from a parsed Request.

    ``server_address`` and ``client_address`` are (host, port) pairs; ``multithread`` and
    ``multiprocess`` tell the app whether other requests may run beside it."""
    (server_name, server_port), (remote_addr, remote_port) = server_address, client_address[:2]
    environ = {
        # CGI variables
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",  # the app is mounted at the root of this server
        # PATH_INFO is decoded (%20 becomes a space), and PEP 3333 says how: bytes
        # decoded as latin-1, so every byte survives and the app can re-decode as UTF-8.
        "PATH_INFO": percent_decode(request.path),
        "QUERY_STRING": request.query,  # left encoded: the app parses it
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": request.version,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": str(remote_port),
        # WSGI's own keys
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        # The body has been read whole (and de-chunked) by the parser, so the app can
        # read it as a file, and can never read past it into the next request.
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        # PEP 3333's optional hook: an app that returns environ["wsgi.file_wrapper"](file)
        # lets the server send the file its own way (ours: sendfile, see FileWrapper).
        "wsgi.file_wrapper": FileWrapper,
    }
    add_header_variables(environ, request)
    if request.header("Transfer-Encoding"):
        # A chunked upload came with no Content-Length, so say that wsgi.input ends where
        # the body ends (as gunicorn and waitress do): Werkzeug reads nothing without it.
        # Only here: told so, Werkzeug calls read() with no size, which PEP 3333 allows
        # but wsgiref.validate (that the tests wrap apps in) refuses.
        environ["wsgi.input_terminated"] = True
    return environ


def add_header_variables(environ, request):
    """Headers become HTTP_* keys: "User-Agent" becomes HTTP_USER_AGENT."""
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        if "_" in name:
            # "X_Forwarded_For" would land on the same key as "X-Forwarded-For", letting
            # a client forge a header a proxy set. Like gunicorn and nginx, drop it.
            continue
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value  # these two keep their CGI names, without HTTP_
            continue
        key = "HTTP_" + key
        if key in environ:  # a repeated header: join the values, as RFC 9110 allows
            separator = "; " if key == "HTTP_COOKIE" else ", "
            value = environ[key] + separator + value
        environ[key] = value
    if request.header("Transfer-Encoding"):
        # The parser de-chunked the body, so its length is now known: tell the app.
        environ["CONTENT_LENGTH"] = str(len(request.body))


def percent_decode(path):
    """Decode %XX escapes: "/a%20b" becomes "/a b", each byte one latin-1 character."""
    if "%" not in path:
        return path  # nothing to decode: most paths
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


# --- the response ------------------------------------------------------------------------

# Headers that describe one connection, not the response: the server alone sets them.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class ClientDisconnected(Exception):
    """The client went away while we were sending. Not the app's fault."""


FILE_BLOCK = 65536  # bytes read at once from a file that is read and sent as any body


class FileWrapper:
    """``environ["wsgi.file_wrapper"]`` (PEP 3333, "Optional Platform-Specific File Handling").

    An app that serves a file returns ``environ["wsgi.file_wrapper"](file, block_size)``
    instead of reading the file itself. A server that recognizes the wrapper may send the
    file its own way: ours hand it to the kernel with ``sendfile()``, which hands the
    file's pages to the socket without passing them through Python (all but a file of one
    block or less: see ``Response.write_file``). Iterated, it reads the file in blocks, as
    any body: that is what happens when sendfile cannot be used (a pipe, a BytesIO; a body
    that must be chunked). ``close()`` closes the file."""

    def __init__(self, filelike, block_size=FILE_BLOCK):
        self.filelike, self.block_size = filelike, block_size

    def __iter__(self):
        while block := self.filelike.read(self.block_size):
            yield block

    def close(self):
        if hasattr(self.filelike, "close"):
            self.filelike.close()


def sendable_size(filelike):
    """The size of ``filelike`` if sendfile() can read it, else None. sendfile() reads a
    regular file, with a descriptor, opened in binary mode: not a pipe or a socket
    (sendfile reads pages of a file), nor a BytesIO."""
    try:
        info = os.fstat(filelike.fileno())
    except (AttributeError, OSError, ValueError):  # no fileno(), or io.UnsupportedOperation
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and "b" in getattr(filelike, "mode", "b") else None


class Response:
    """One response in the making: ``start_response``, ``write`` and ``finish``.

    PEP 3333's rules, as this class keeps them:

    * the app calls ``start_response(status, headers)`` once, or again with ``exc_info``
      to swap an unsent response for an error page;
    * nothing is sent until the first non-empty piece of body (or the end), so an app
      can still change its mind until then.

    How the body is framed (Content-Length, chunked, or until the connection closes) and
    whether the connection outlives the response, the ``Connection`` decides.
    """

    def __init__(self, http, send, send_file=None):
        self.http = http
        self._send = send
        self._send_file = send_file
        self.status = None
        self.headers = None
        self.headers_sent = False
        self.close_after = False  # set after an app error: this connection is not to be reused
        self.bytes_sent = 0  # body bytes, for the access log

    @property
    def status_code(self):
        return int(self.status[:3]) if self.status else None

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.headers_sent:
                    # Too late to replace what the client already has: re-raise, the
                    # server logs it and closes the connection.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback reference cycle
        elif self.status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        check_status(status)
        for name, value in headers:
            check_header(name, value)
        self.status, self.headers = status, list(headers)
        return self.write

    def add_length_if_missing(self, length):
        """The body's length is known in advance (a list or tuple of bytes): frame it
        with Content-Length rather than chunks. wsgiref does so for a one-item list only;
        a list of several pieces is as easy to count, so we count any list."""
        if not response_has_body("GET", self.status_code):
            return  # 1xx, 204 and 304 responses must not carry a Content-Length
        if not any(name.lower() == "content-length" for name, _ in self.headers):
            self.headers.append(("Content-Length", str(length)))

    def write(self, data):
        """Send a piece of the body; the head goes out with the first non-empty piece."""
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"a WSGI body is made of bytes, not {type(data).__name__}")
        if not data:
            return
        # One send for the head and the first piece: fewer system calls, fewer packets.
        head = self._head() if not self.headers_sent else b""
        framed = self.http.send_body(data)  # never past the declared Content-Length
        if head or framed:
            self._send_bytes(head + framed)
        self.bytes_sent = self.http.body_sent

    def write_file(self, wrapper):
        """Send a ``FileWrapper``'s file, from its current position and never past the
        Content-Length: with the driver's ``send_file(file, offset, count)`` (sendfile) if
        it has one and the file is one sendfile can read, else block by block.

        A body of one block or less is read and sent with the head, in one send: sendfile
        would save copying a few kilobytes, and cost a second system call, a second packet
        and, on the event loops, a trip to the loop's thread and back."""
        head = self._head() if not self.headers_sent else b""
        allowance = self.http.body_allowance()  # the protocol says how much body may go out
        file = wrapper.filelike
        if allowance and allowance <= wrapper.block_size:
            # The Content-Length is the size to read: no fstat() to learn the file's size,
            # no lseek() to learn where it stands; a read stops at the file's end anyway.
            data = file.read(allowance)
            self._send_bytes(head + self.http.send_body(data))
            self.bytes_sent = self.http.body_sent
            if len(data) < allowance:  # a pipe gives what it has; a file that shrank, nothing
                self._write_blocks(wrapper, allowance - len(data))
            return
        size = sendable_size(file) if allowance and self._send_file else None
        if size is None:
            if head:
                self._send_bytes(head)
            return self._write_blocks(wrapper, allowance)
        offset = file.tell()
        count = self.http.send_file_body(min(max(size - offset, 0), allowance))
        if head:
            self._send_bytes(head)
        try:
            sent = self._send_file(file, offset, count)
        except OSError as error:
            raise ClientDisconnected(str(error)) from error
        if sent < count:
            self.http.file_ended_early(count - sent)
        self.bytes_sent = self.http.body_sent

    def _write_blocks(self, blocks, limit):
        """``write`` each block, but no more than ``limit`` bytes in all (None: no limit)."""
        if limit == 0:
            return  # HEAD, 304: no body, so not even a read
        for block in blocks:
            if limit is not None:
                block = block[:limit]
                limit -= len(block)
            self.write(block)
            if limit == 0 or self.http.framing_error:
                return

    def finish(self):
        """End the body: the head if no body came, then the framing's ending."""
        head = self._head(empty=True) if not self.headers_sent else b""
        ending = self.http.send_end()
        if head or ending:
            self._send_bytes(head + ending)

    def _head(self, empty=False):
        # Date and Server, unless the app set its own: RFC 9110 (6.6.1) allows one Date.
        given = {name.lower() for name, _ in self.headers}
        ours = [("Date", http_date())] if "date" not in given else []
        if "server" not in given:
            ours.append(("Server", SERVER_SOFTWARE))
        headers = [*ours, *self.headers]
        head = self.http.send_head(self.status, headers, empty=empty, close=self.close_after)
        self.headers_sent = True
        return head

    def _send_bytes(self, data):
        try:
            self._send(data)
        except OSError as error:
            raise ClientDisconnected(str(error)) from error


_date_cache = (0, "")


def http_date():
    """The Date header. It changes once a second, and formatting it is among the
    slowest steps of a small response, so we format it once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def check_status(status):
    if not (isinstance(status, str) and len(status) >= 4 and status[:3].isdigit() and status[3] == " "):
        raise ValueError(f"status must be a string like '200 OK', not {status!r}")


LINE_BREAK = re.compile("[\r\n\0]")  # in a header, these would let the app forge more headers


def check_header(name, value, hop_by_hop=HOP_BY_HOP):
    if not (isinstance(name, str) and isinstance(value, str)):
        raise TypeError(f"header names and values must be str: {name!r}: {value!r}")
    if name.lower() in hop_by_hop:
        raise ValueError(f"the app may not set the hop-by-hop header {name!r}; the server frames responses")
    if LINE_BREAK.search(name) or LINE_BREAK.search(value):
        raise ValueError(f"header {name!r} contains a line break")


# --- running the app ----------------------------------------------------------------------------


def run_app(app, environ, http, send, send_file=None):
    """Call the app for ``http``'s current request and send its response; return the Response.

    ``send(data)`` sends bytes; ``send_file(file, offset, count)``, if the server has one,
    sends ``count`` bytes of a regular file from ``offset`` (with sendfile) and returns how
    many it sent: fewer only if the file ended first. It is used for a ``FileWrapper``.

    Whatever the app does wrong costs this one response and nothing more:

    * an exception (``SystemExit`` too: a stray ``sys.exit()`` must not stop the server)
      becomes a 500 if nothing was sent yet, else the connection closes, so that the
      client sees the response was cut short; one traceback goes to the log;
    * a body longer or shorter than the app's Content-Length is cut or ended there, and
      the connection closes, with one line in the log.

    ``close()`` on the app's result is always called: frameworks release resources there.
    Ctrl-C (KeyboardInterrupt) is not the app's error: it goes up and stops the server.
    """
    response = Response(http, send, send_file)
    try:
        result = app(environ, response.start_response)
        try:
            if isinstance(result, FileWrapper) and response.status is not None:
                response.write_file(result)  # with sendfile, if the server can
            else:
                if isinstance(result, (list, tuple)) and response.status is not None:
                    response.add_length_if_missing(sum(map(len, result)))
                for data in result:
                    response.write(data)
                    if http.framing_error:
                        break  # the rest would run past the app's Content-Length
            if response.status is None:
                raise AssertionError("the app returned without calling start_response()")
            response.finish()
        finally:
            if hasattr(result, "close"):
                result.close()
        if http.framing_error:  # the protocol cut or ended the response, and the connection
            environ["wsgi.errors"].write(f"app error: {http.framing_error}; the connection is closed\n")
    except ClientDisconnected:
        raise
    except (Exception, SystemExit):
        traceback.print_exc(file=environ["wsgi.errors"])
        if response.headers_sent:
            http.end_connection()  # half a response is out: close, so the client sees it cut short
        else:
            send_internal_error(response)
    return response


def send_internal_error(response):
    body = b"500 Internal Server Error: the application raised an exception; see the server's log.\n"
    response.status = "500 Internal Server Error"
    response.headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    response.close_after = True  # after a failure, do not trust this connection further
    response.write(body)
    response.finish()
