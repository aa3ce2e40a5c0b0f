"""Lesson 5, the ASGI glue: an app that awaits, driven by the server's event loop.

WSGI is one call, one response: ``app(environ, start_response)`` returns the body, and
the app has the whole request body before it starts. An app that waits (for a database,
for the next piece of an upload) holds a thread while it waits. ASGI 3.0 turns the call
into a conversation of messages, and the app into a coroutine:

    async def app(scope, receive, send):
        event = await receive()            # {"type": "http.request", "body": ..., "more_body": ...}
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Hello, world!\\n"})

``scope`` says what the request is (the environ's successor); ``receive()`` hands the
body out as it arrives, and ``http.disconnect`` once the client has gone; ``send()``
waits while the client is slow, so an app that streams cannot fill the server's memory.
Starlette and FastAPI are such apps; so is ``apps/hello_app.py``.

This module knows ASGI and nothing about sockets, as wsgi.py knows WSGI: a ``Cycle``
carries one request between the app and the protocol ``Connection`` (in streaming mode:
connection.py decides every HTTP rule), and its ``client`` (the server's, server.py)
moves the bytes. The other scope, ``lifespan``, tells the app when the server starts
and stops (``Lifespan``).
"""

import asyncio
import inspect
import os
import sys
import traceback
from http import HTTPStatus
from urllib.parse import unquote

from part2_wsgi.apps.files_app import FOLDER_FLAGS, open_beneath
from part2_wsgi.connection import END_OF_BODY, NEED_DATA, BodyData, Close, Send, State
from part2_wsgi.wsgi import FILE_BLOCK, LINE_BREAK, SERVER_SOFTWARE, check_header, http_date

ASGI = {"version": "3.0", "spec_version": "2.4"}
# The extension this server offers: a file sent by path (and by it with sendfile, zero-copy).
PATHSEND = "http.response.pathsend"
DISCONNECT = {"type": "http.disconnect"}
LIFESPAN_TIMEOUT = 10.0  # seconds the app may take to start up (its shutdown: server.py's STOP_BUDGET)


class ClientDisconnected(OSError):
    """``send()`` on a connection the client has left. An ``OSError``, as spec 2.4 asks:
    Starlette ends its endless event streams on it."""


class InvalidMessage(RuntimeError):
    """The app sent a message ASGI does not allow (str headers, a second start ...)."""


# --- at load: is it an ASGI 3 app? ------------------------------------------------------


def check_app(app):
    """None if ``app`` looks like an ASGI 3 app (``async def app(scope, receive, send)``);
    else one line that says what it looks like instead. Frameworks' apps are objects
    whose ``__call__`` is a coroutine function."""
    if inspect.isclass(app):
        return "is a class: an ASGI 2 app (a class taking the scope); ASGI 3 is async def app(scope, receive, send)"
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):
        return None
    try:
        count = len(inspect.signature(app).parameters)
    except (TypeError, ValueError):
        return None  # no signature to read (a C callable): let it try
    if count == 2:
        return "looks like a WSGI app (environ, start_response): serve it with part2_wsgi/server.py"
    if count == 1:
        return "looks like an ASGI 2 app (it takes the scope alone); ASGI 3 is async def app(scope, receive, send)"
    return None


# --- the scope ----------------------------------------------------------------------------


def build_scope(request, *, server, client, root_path="", state=None):
    """The ``http`` scope of a parsed Request. ``server`` and ``client`` are (host, port)
    tuples, given as they are (an IPv6 address: its first two parts): immutable, every
    request of a connection may share them.

    ``path`` is percent-decoded as UTF-8; a byte that is not UTF-8 becomes U+FFFD (as
    uvicorn does), and the app that cares reads ``raw_path``, the bytes as they came.
    Both begin with ``root_path`` (the prefix a proxy strips before us), as uvicorn and
    Starlette now expect. Headers keep their order and repeats, names lower-cased, and
    names with an underscore are kept: an ASGI name is not a CGI key, so
    ``x_forwarded_for`` cannot land on ``x-forwarded-for`` (why wsgi.py drops them);
    a framework that maps names to WSGI keys (an adapter) must drop them itself."""
    target_path, _, query = request.target.partition("?")  # (request.path and .query, split once)
    raw_path = target_path.encode("latin-1")
    path = unquote(target_path, errors="replace") if "%" in target_path else target_path
    return {
        "type": "http",
        "asgi": ASGI,
        "http_version": request.version[5:],  # "1.1"
        "method": request.method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": root_path.encode("utf-8") + raw_path,
        "query_string": query.encode("latin-1"),
        "root_path": root_path,
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers],
        "client": client[:2],  # (an IPv6 address has four parts; a tuple's whole slice is itself)
        "server": server[:2],
        # What the app's lifespan put in its state, shallow-copied: a request may add to its
        # own copy, and no other request sees it.
        "state": dict(state) if state is not None else {},
        "extensions": {PATHSEND: {}},  # (a new one too: what an app adds is not offered to the next)
    }


# --- one request: receive, send ------------------------------------------------------------


STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
# The app's headers about this connection, which the server decides. PEP 3333 forbids a
# WSGI app every hop-by-hop header; ASGI does not, and apps set them (a proxy copies them,
# Starlette's ``Response(headers={"Connection": "close"})``). So ``Connection`` and
# ``Keep-Alive`` are dropped, and ``Connection: close`` honoured (the connection closes
# after this response); ``Transfer-Encoding`` is dropped, as the server frames the body
# (chunked unless the app gave a Content-Length); the others (``Upgrade`` in a 426,
# ``Proxy-Authenticate`` in a 407 ...) are the app's, and pass.
CONNECTION_HEADERS = {"connection", "keep-alive", "transfer-encoding"}


def connection_header_says_close(name, value):
    return name == "connection" and "close" in {token.strip().lower() for token in value.split(",")}


class Cycle:
    """One request between the app and the connection: ``receive``, ``send``, ``run``.

    ``client`` is the server's side (server.py): ``await client.send(data)`` sends and
    waits while the client is slow (raising ``ClientDisconnected`` once it is gone);
    ``await client.more_data()`` waits for more bytes; ``await client.send_file(file,
    offset, count)`` sends a file with sendfile (``client.sends_files``); ``client.gone``
    is True once the connection is lost; ``client.take_event(event)``
    carries out a ``Close`` or a ``Send`` the connection decided;
    ``client.response_complete(cycle)`` hands the connection back for the next request,
    once the response is written, while the app's call may go on (``finish``).

    The rules this class keeps, after the WSGI glue's:

    * the head goes out with the first body message, so an app that fails before it, even
      after ``http.response.start``, still gets a 500; after it, the connection is closed;
    * an app that returns without completing its response: a 500, or a close; but quietly,
      a close, if ``receive()`` told it its client had gone (sse-starlette's streams end so);
    * an invalid message is the app's error, as an exception is: one traceback;
    * what the app does after its response is complete (a background task) is its own: a
      ``receive()`` says ``http.disconnect``, a ``send()`` is an invalid message, and an
      exception costs one traceback, never the connection, already serving the next request.
    """

    def __init__(self, http, client, scope):
        self.http, self.client, self.scope = http, client, scope
        self.status = None  # the app's http.response.start: its status and headers
        self.headers = None
        self.given = set()  # the lower-case names of the app's headers
        self.head_sent = False
        self.complete = False  # the last body message went out
        self.finished = False  # the connection is handed back (finish)
        self.closes = False  # the app said Connection: close
        self.body_given = False  # (a request without a body: its one empty message went out)
        self.error = None  # an invalid message, kept in case the app swallows it
        self.told_gone = False  # receive() said http.disconnect: the app owes the client nothing

    @property
    def status_code(self):
        return self.status

    @property
    def connection_over(self):
        """The client is gone, or the connection has answered for the app (a 400, 408 or 413
        about the body) and is closing: nothing the app sends can go out, and the app was
        told so (``receive()`` said ``http.disconnect``, ``send()`` raises)."""
        return self.client.gone or self.http.state in (State.CLOSED, State.LINGERING)

    # --- receive: the request's body, then http.disconnect ---------------------------------

    async def receive(self):
        http, client = self.http, self.client
        while True:
            if self.complete or self.connection_over:
                return DISCONNECT
            if not http.receiving_body:
                if not self.body_given:
                    self.body_given = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                if http.client_done:
                    self.told_gone = True
                    return DISCONNECT  # it closed its side: it will send no more, and may be gone
                await client.more_data()  # the body is all given: the next news is the client leaving
                continue
            http.want_body()
            event = http.next_event()
            if isinstance(event, BodyData):
                client.read_on()  # below the high-water mark again?
                more = http.receiving_body  # (False: that was the last piece)
                self.body_given = not more
                return {"type": "http.request", "body": event.data, "more_body": more}
            if event is END_OF_BODY:
                self.body_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if event is NEED_DATA:
                await client.more_data()
            elif isinstance(event, (Send, Close)):
                await client.take_event(event)  # 100 Continue; or a body gone wrong: 400, 408, or gone

    # --- send: the response ------------------------------------------------------------

    async def send(self, message):
        if self.complete:
            raise self.invalid(f"{message.get('type')!r} after the response was complete")
        if self.connection_over:
            raise ClientDisconnected("the client went away")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "http.response.start":
            self.start(message)
        elif kind == "http.response.body":
            if self.status is None:
                raise self.invalid("http.response.body before http.response.start")
            body, more = message.get("body", b""), message.get("more_body", False)
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise self.invalid(f"a body is bytes, not {type(body).__name__}")
            head = self.head(empty=not body and not more)
            data = head + self.http.send_body(bytes(body))
            if not more:
                data += self.http.send_end()
                self.complete = True
            if data:
                await self.client.send(data)
            if self.complete:
                self.finish()
        elif kind == PATHSEND:
            if self.status is None:
                raise self.invalid("http.response.pathsend before http.response.start")
            await self.send_path(message.get("path"))
        else:
            raise self.invalid(f"unknown message {kind!r}")

    def invalid(self, text):
        self.error = InvalidMessage(text)
        return self.error

    def start(self, message):
        if self.status is not None:
            raise self.invalid("a second http.response.start")
        status, headers = message.get("status"), message.get("headers", [])
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise self.invalid(f"status must be a number like 200, not {status!r}")
        decoded = []
        for name, value in headers:
            if not isinstance(name, bytes) or not isinstance(value, bytes):
                raise self.invalid(f"header names and values must be bytes: {name!r}: {value!r}")
            decoded.append((name.decode("latin-1"), value.decode("latin-1")))
        if LINE_BREAK.search("".join(map("".join, decoded))):  # all at once; then which one
            try:
                for name, value in decoded:
                    check_header(name, value, hop_by_hop=())
            except ValueError as error:
                raise self.invalid(str(error)) from None
        kept, self.given = [], set()
        for name, value in decoded:
            lower = name.lower()
            if lower in CONNECTION_HEADERS:
                self.closes = self.closes or connection_header_says_close(lower, value)
            else:
                kept.append((name, value))
                self.given.add(lower)
        self.status, self.headers = status, kept

    def head(self, empty=False, close=False):
        """The head's bytes, once: b"" after that. Date and Server unless the app set its own."""
        if self.head_sent:
            return b""
        ours = [("Date", http_date())] if "date" not in self.given else []
        if "server" not in self.given:
            ours.append(("Server", SERVER_SOFTWARE))
        status = STATUS_LINES.get(self.status) or f"{self.status} Unknown"
        head = self.http.send_head(status, [*ours, *self.headers], empty=empty, close=close or self.closes)
        self.head_sent = True
        return head

    async def send_path(self, path):
        """``http.response.pathsend``: the file at the absolute ``path``, opened as the files
        app opens a file (without blocking, no symlink followed by the kernel, a regular
        file or nothing), then sent with sendfile, never past the declared Content-Length."""
        if not isinstance(path, str) or not os.path.isabs(path):
            raise self.invalid(f"pathsend needs an absolute path, not {path!r}")
        fd, info = open_path(path)
        with open(fd, "rb", buffering=0) as file:
            head = self.head()
            allowance = self.http.body_allowance()
            if allowance is None or not self.client.sends_files:
                # Chunked (no Content-Length), or no sendfile here: read and send as any body.
                await self.client.send(head)
                while block := file.read(FILE_BLOCK):
                    await self.client.send(self.http.send_body(block))
                    if self.http.framing_error:
                        break
            else:
                count = self.http.send_file_body(min(info.st_size, allowance))
                await self.client.send(head)
                sent = await self.client.send_file(file, 0, count) if count else 0
                if sent < count:
                    self.http.file_ended_early(count - sent)  # it shrank meanwhile: the connection ends
        ending = self.http.send_end()
        self.complete = True
        if ending:
            await self.client.send(ending)
        self.finish()

    # --- run: the app, and what it does wrong ------------------------------------------------

    async def run(self, app):
        """Call the app and see the response through; whatever it does wrong costs this
        response and nothing more (a 500, or a close), and one traceback in the log."""
        try:
            await app(self.scope, self.receive, self.send)
            if self.error is not None:
                raise self.error  # the app swallowed it: still its error
            if not self.complete and not self.connection_over and not self.told_gone:
                raise InvalidMessage("the app returned without completing its response")
        except ClientDisconnected:
            pass  # the client left: not the app's fault, and nothing to say
        except (Exception, SystemExit):
            if self.finished:  # after its response (a background task): the connection is no longer its
                traceback.print_exc(file=sys.stderr)
                return
            if not self.connection_over:  # (else it failed because the connection ended under it: quiet)
                traceback.print_exc(file=sys.stderr)
                if self.head_sent:
                    self.http.end_connection()  # half a response is out: close, the client sees it cut short
                else:
                    await self.internal_error()
        self.finish()

    def finish(self):
        """Once: the response is complete, or given up on; the connection goes back to the
        server, for the next request, even if the app's call goes on."""
        if self.finished:
            return
        self.finished = True
        if self.http.framing_error:
            sys.stderr.write(f"app error: {self.http.framing_error}; the connection is closed\n")
        self.client.response_complete(self)

    async def internal_error(self):
        body = b"500 Internal Server Error: the application failed; see the server's log.\n"
        self.status = 500
        self.headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        self.given = set()
        data = self.head(close=True) + self.http.send_body(body) + self.http.send_end()
        self.complete = True
        try:
            await self.client.send(data)
        except ClientDisconnected:
            pass


def one_line(text):
    """An error or a message in one line, for a log that gives each event one: its first
    line, or, of a traceback (Starlette sends its startup's as the message), the last,
    which names the exception."""
    lines = str(text).strip().splitlines() or [""]
    if isinstance(text, BaseException):
        return f"{type(text).__name__}: {lines[0]}"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def open_path(path):
    """Open the file at absolute ``path`` with the files app's walk from ``/``: without
    blocking, no symlink followed by the kernel, ``fstat`` a regular file (files_app.py's
    ``open_beneath`` says why). Returns its descriptor and fstat."""
    root = os.open("/", FOLDER_FLAGS)
    try:
        return open_beneath(root, [name for name in path.split("/") if name not in ("", ".")])
    finally:
        os.close(root)


# --- lifespan: the app's start and stop ------------------------------------------------------


class LifespanFailed(Exception):
    """The app said its startup failed, or took too long: the server does not start."""


class Lifespan:
    """The ``lifespan`` scope: one call of the app that lasts as long as the server.

    The server sends ``lifespan.startup`` and waits for ``lifespan.startup.complete``
    before it serves (and prints ``Serving on``); on Ctrl-C, ``lifespan.shutdown``. What
    the app puts in ``scope["state"]`` (a database pool, say) each request's scope gets a
    shallow copy of. An app that raises at once on this scope does not do lifespan (our
    hello app, say): the server goes on without it."""

    def __init__(self, app):
        self.app = app
        self.state = {}
        self.inbox = asyncio.Queue()
        self.answer = None  # the future of the app's reply to what we sent
        self.supported = True
        self.task = None
        self.error = None  # what the app raised, if it did

    async def startup(self, timeout=LIFESPAN_TIMEOUT):
        self.task = asyncio.get_running_loop().create_task(self.main())
        await self.ask({"type": "lifespan.startup"}, "startup", timeout)

    async def shutdown(self, timeout=LIFESPAN_TIMEOUT):
        if not self.supported or self.task.done():
            return
        try:
            await self.ask({"type": "lifespan.shutdown"}, "shutdown", timeout)
        except LifespanFailed as error:
            sys.stderr.write(f"lifespan: {error}\n")
        self.task.cancel()

    async def ask(self, message, what, timeout):
        self.answer = asyncio.get_running_loop().create_future()
        await self.inbox.put(message)
        done, _ = await asyncio.wait({self.answer, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise LifespanFailed(f"the app's {what} did not complete within {round(timeout, 1):g} s")
        if not self.answer.done():
            # The app raised, or returned, instead of answering: it does no lifespan (as
            # the spec says, and uvicorn's default): the server goes on without. Quietly if
            # it never took the message (an app without lifespan); else the log says why.
            self.supported = False
            if self.inbox.empty() and self.error is not None:
                sys.stderr.write(
                    f"lifespan: the app raised on lifespan.{what}: {one_line(self.error)}; going on without\n"
                )
            return
        kind, text = self.answer.result()
        if kind.endswith(".failed"):
            raise LifespanFailed(f"the app's {what} failed: {one_line(text)}" if text else f"the app's {what} failed")

    async def main(self):
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        try:
            await self.app(scope, self.inbox.get, self.send)
        except (Exception, SystemExit) as error:
            self.error = error  # before its startup answer: no lifespan (see ask); after: nothing we can do

    async def send(self, message):
        kind = message.get("type", "")
        if kind.startswith("lifespan.") and self.answer is not None and not self.answer.done():
            self.answer.set_result((kind, message.get("message", "")))
