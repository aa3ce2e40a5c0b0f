"""Graded checks for part 4 (exercises/part4.py): the scope, receive, send, and an ASGI server.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. ``part4.make_send`` is the function under test:
yours, or with ``--solutions`` the reference in part4_asgi/. The checks of
``make_receive`` and ``make_send`` run an asyncio loop on a thread of this process and
hand your function the server's end of a real loopback connection as asyncio streams
(``Loopback``); the check plays the app, and the client on the other end. Those of
``serve_asgi`` run it as a server process of its own (``grader/tests/launch.py``) with
the app of ``grader/tests/asgi_apps.py``. Run them with

    python -m grader part4              (or: python -m pytest grader/tests/test_part4.py)
"""

import asyncio
import concurrent.futures
import inspect
import socket
import struct
import threading
import time

import pytest

from grader.tests.helpers import (
    WAIT,
    CheckFailed,
    StudentServer,
    call,
    described,
    read_until_closed,
    short,
    split_response,
)
from grader.workbook import Workbook
from part2_wsgi.protocol import Request

part4 = Workbook("part4")
exercise = pytest.mark.exercise
ASGI_APP = "grader.tests.asgi_apps:app"
HELLO_APP = "part4_asgi.apps.hello_app:app"  # it does no lifespan: it raises on that scope
PIECE = 64 * 1024
SENDS = 120  # pieces an app streams: past the 100 that may complete while its client reads nothing
DISCONNECT = {"type": "http.disconnect"}
# A connection that ended without a word, or failed: how long the server's own error (a
# stub's NotImplementedError, say) may take to reach us through its log, on a busy machine.
ERROR_WAIT = 1.0


# --- build_scope ------------------------------------------------------------------------------------


def scope_of(target, headers=(("Host", "a"),), root_path="", state=None, method="GET"):
    request = Request(method, target, "HTTP/1.1", list(headers))
    scope = call(
        lambda: part4.build_scope(
            request, server=("127.0.0.1", 8000), client=("10.0.0.7", 51000), root_path=root_path, state=state
        ),
        what="build_scope(request, server=..., client=...)",
    )
    assert isinstance(scope, dict), f"build_scope() returned {short(scope)}, expected a dict"
    return scope


def expect(scope, key, value, shown, advice=""):
    assert key in scope, f"{shown}: the scope has no {key!r}{advice}"
    assert scope[key] == value and type(scope[key]) is type(value), (
        f"{shown}: scope[{key!r}] is {scope[key]!r}, expected {value!r}{advice}"
    )


@exercise("build_scope")
def test_build_scope_describes_the_request():
    """build_scope() has ASGI's keys: type, asgi, http_version, method, scheme, the addresses."""
    scope = scope_of("/")
    shown = "for GET / HTTP/1.1 served at ('127.0.0.1', 8000) to ('10.0.0.7', 51000)"
    expect(scope, "type", "http", shown)
    expect(scope, "asgi", {"version": "3.0", "spec_version": "2.4"}, shown)
    expect(scope, "http_version", "1.1", shown, " (the version without 'HTTP/')")
    expect(scope, "method", "GET", shown)
    expect(scope, "scheme", "http", shown)
    for key, value in (("server", ("127.0.0.1", 8000)), ("client", ("10.0.0.7", 51000))):
        assert key in scope, f"{shown}: the scope has no {key!r}"
        assert tuple(scope[key]) == value, f"{shown}: scope[{key!r}] is {scope[key]!r}, expected {value!r}"


@exercise("build_scope")
def test_build_scope_paths_and_query():
    """path is %-decoded as UTF-8; raw_path and query_string are bytes as sent; root_path leads both paths."""
    target = "/caf%C3%A9/a%20b?x=1&y=%20"
    scope = scope_of(target)
    shown = f"for GET {target}"
    expect(scope, "path", "/café/a b", shown, " (%-decode the path as UTF-8, as ASGI says: unquote does)")
    expect(scope, "raw_path", b"/caf%C3%A9/a%20b", shown, " (the path as sent, as bytes, without the query)")
    expect(scope, "query_string", b"x=1&y=%20", shown, " (what follows the '?', as sent, as bytes)")
    scope = scope_of("/%FF")
    expect(scope, "path", "/\ufffd", "for GET /%FF", " (a byte that is not UTF-8 becomes U+FFFD)")
    scope = scope_of("/items?q=1", root_path="/api")
    shown = "for GET /items?q=1 behind a proxy that stripped root_path '/api'"
    expect(scope, "root_path", "/api", shown)
    expect(scope, "path", "/api/items", shown, " (root_path goes in front of the path)")
    expect(scope, "raw_path", b"/api/items", shown, " (and of raw_path)")


@exercise("build_scope")
def test_build_scope_headers_are_lower_case_bytes_and_repeats_are_kept():
    """headers is a list of (name, value) pairs of bytes, names lower-cased, in order, repeats kept."""
    sent = [("Host", "a"), ("Accept", "text/html"), ("X-Tag", "one"), ("X-Tag", "two"), ("User-Agent", "caf\u00e9")]
    scope = scope_of("/", headers=sent)
    shown = "for the headers " + ", ".join(f"{name}: {value}" for name, value in sent)
    assert "headers" in scope, f"{shown}: the scope has no 'headers'"
    headers = scope["headers"]
    try:
        pairs = [tuple(pair) for pair in headers]
    except TypeError:
        raise AssertionError(f"{shown}: scope['headers'] is {short(headers)}, expected a list of pairs") from None
    text = [pair for pair in pairs if not all(isinstance(item, bytes) for item in pair)]
    assert not text, (
        f"{shown}: scope['headers'] holds {short(text[0])}: expected pairs of bytes, as ASGI says "
        "(encode names and values as latin-1, the heads' encoding)"
    )
    expected = [(b"host", b"a"), (b"accept", b"text/html"), (b"x-tag", b"one"), (b"x-tag", b"two")]
    expected.append((b"user-agent", "café".encode("latin-1")))
    assert pairs == expected, (
        f"{shown}: scope['headers'] is {short(pairs, 200)}, expected {short(expected, 200)}: names lower-cased, "
        "values as sent, in order, a repeated header kept as two pairs"
    )


@exercise("build_scope")
def test_build_scope_state_is_a_copy_per_request():
    """state is a shallow copy of the lifespan's state: what a request adds, no other request sees."""
    lifespan_state = {"pool": "the database pool"}
    scope = scope_of("/", state=lifespan_state)
    assert scope.get("state") == lifespan_state, (
        f"given state={lifespan_state!r}, scope['state'] is {short(scope.get('state', 'missing'))}, expected a copy"
    )
    assert scope["state"] is not lifespan_state, (
        "scope['state'] is the lifespan's own dict: what one request puts there, every later request would see; "
        "give each request a shallow copy (dict(state))"
    )
    assert scope_of("/").get("state") == {}, "without state, scope['state'] should be {}"


# --- a loop, and one connection as asyncio streams ---------------------------------------------------


class Loopback:
    """An asyncio loop on a thread of its own, and one TCP connection over loopback: its
    server's end as asyncio streams (``reader``, ``writer``) for the function under test,
    its client's end a plain socket (``client``) that the check plays.

    ``send_buffer`` and ``receive_buffer`` shrink the kernel's buffers on the way to the
    client, the same on every machine: a client that reads nothing then fills them soon."""

    def __init__(self, send_buffer=None, receive_buffer=None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="the check's loop")
        self.thread.start()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            if send_buffer:  # the accepted socket inherits it
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            self.client = socket.socket()
            if receive_buffer:
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self.client.connect(listener.getsockname())
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server_end, _ = listener.accept()
        self.reader, self.writer = self.run(asyncio.open_connection(sock=server_end), "opening the streams")

    def run(self, coroutine, what, timeout=WAIT):
        """Run ``coroutine`` on the loop; its result, or a failure that says what did not return."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CheckFailed(f"{what} did not return within {timeout:g} s") from None

    def start(self, coroutine):
        """Start ``coroutine`` on the loop, and return its concurrent future at once."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def make(self, name, *args):
        """part4.NAME(self's reader or writer, *args), called in the loop, as a server calls it."""

        async def build():
            return getattr(part4, name)(*args)

        made = self.run(build(), f"{name}()")
        if not inspect.iscoroutinefunction(made):
            raise AssertionError(
                f"{name}() returned {short(made)}, expected a function defined with async def inside it "
                "(the app awaits it)"
            )
        return made

    def client_closes(self, reset=False):
        if reset:  # an RST at once, not a FIN: the client crashed, or its network went away
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.client.close()

    def close(self):
        self.client.close()

        async def abort():
            if not self.writer.transport.is_closing():  # (closed by send, or by the client's leaving)
                self.writer.transport.abort()
            await asyncio.sleep(0.01)  # the transport closes its socket at the loop's next turn

        try:
            self.run(abort(), "closing the server's end", timeout=1)
        except Exception:  # the check has its verdict already: tidying up must not change it
            pass  # (a loop still running an app that never awaits: the process's end closes it)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)
        if not self.thread.is_alive():  # (a loop still running an app that never awaits cannot be closed)
            self.loop.close()


@pytest.fixture
def loopback():
    made = []

    def make(**buffers):
        made.append(Loopback(**buffers))
        return made[-1]

    yield make
    for connection in made:
        connection.close()


# --- make_receive -----------------------------------------------------------------------------------


async def called(function, *args, because=""):
    """``await function(*args)``, or an AssertionError that says what it raised (and ``because``: why not)."""
    try:
        return await function(*args)
    except Exception as error:
        because = f": {because}" if because else ""
        shown = f"{function.__name__}{short(args) if args else '()'}"
        raise AssertionError(f"{shown} raised {described(error)}{because}") from None


def check_request_message(message, number):
    """An http.request message, with a body of bytes and more_body, or a failure that says what is wrong."""
    shown = f"receive() call {number} returned {short(message, 120)}"
    assert isinstance(message, dict), f"{shown}, expected a dict"
    assert message.get("type") == "http.request", f"{shown}, expected type 'http.request'"
    assert isinstance(message.get("body"), bytes), f"{shown}, expected its body as bytes"
    assert "more_body" in message, (
        f"{shown}: no more_body. ASGI reads a missing more_body as False, so the app stops at this piece; "
        "say True while more of the body is to come"
    )


async def body_messages(receive, limit=2000, because=""):
    """Call receive() until a message says the body is complete; return (messages, [(seconds, size)])."""
    messages, times = [], []
    while len(messages) < limit:
        message = await called(receive, because=because)
        messages.append(message)
        times.append((time.monotonic(), len(message.get("body", b"")) if isinstance(message, dict) else 0))
        if message == DISCONNECT:
            return messages, times
        check_request_message(message, len(messages))
        if not message["more_body"]:
            return messages, times
    raise AssertionError(f"receive() gave {limit} messages and the body was still not complete")


def body_of(messages):
    return b"".join(message.get("body", b"") for message in messages if message.get("type") == "http.request")


def pattern(size):
    """``size`` bytes in which a piece out of place shows."""
    return bytes(range(251)) * (size // 251) + bytes(range(size % 251))


@exercise("make_receive")
def test_make_receive_gives_the_body_in_pieces_then_disconnect(loopback):
    """make_receive() gives a 200 KB body in pieces (more_body True until the last), then http.disconnect."""
    connection = loopback()
    body = pattern(200_000)
    connection.client.sendall(body + b"GET /next HTTP/1.1\r\n")  # what follows the body is not the body's
    receive = connection.make("make_receive", connection.reader, len(body))
    messages, _ = connection.run(body_messages(receive), "receive(), called until more_body was False")
    assert messages[-1] != DISCONNECT, (
        f"after {len(body_of(messages))} of the body's {len(body)} bytes, with more on its way, receive() "
        "returned http.disconnect: the client had not left"
    )
    got = body_of(messages)
    assert got == body, (
        f"the client sent a body of {len(body)} bytes (Content-Length), then the start of its next request; the "
        f"http.request messages held {len(got)} bytes{' that differ' if len(got) == len(body) else ''}: "
        "expected the body exactly, read up to its length and never past it"
    )
    connection.client_closes()
    after = connection.run(called(receive), "receive(), called after the body once the client had closed")
    assert after == DISCONNECT, (
        f"after the whole body, the client closed its connection; the next receive() returned {short(after, 100)}, "
        "expected {'type': 'http.disconnect'}: read until the reader's end, then say the client has gone"
    )


@exercise("make_receive")
def test_make_receive_gives_an_empty_body_at_once(loopback):
    """A body of 0 bytes is one message, b'' and more_body False, at once: nothing is read."""
    connection = loopback()
    receive = connection.make("make_receive", connection.reader, 0)
    try:
        message = connection.run(called(receive), "receive(), for a body of 0 bytes,", timeout=1)
    except CheckFailed as error:
        raise AssertionError(
            f"{error}, the client connected and sent nothing more (a GET has no body): expected "
            "{'type': 'http.request', 'body': b'', 'more_body': False} at once. Read nothing when nothing is to come"
        ) from None
    expected = {"type": "http.request", "body": b"", "more_body": False}
    assert message == expected, f"for a body of 0 bytes receive() returned {short(message, 100)}, expected {expected}"


@exercise("make_receive")
def test_make_receive_streams_a_32_mb_upload(loopback):
    """A 32 MB upload streams: its first piece comes before the client has sent it all, no piece over 1 MB."""
    connection = loopback()
    size = 32 * 1024 * 1024
    receive = connection.make("make_receive", connection.reader, size)
    sent = {}

    def upload():
        try:
            connection.client.sendall(b"x" * (size - 1024 * 1024))
            sent["before the last MB"] = time.monotonic()  # a body read whole cannot begin before this
            connection.client.sendall(b"x" * 1024 * 1024)
        except OSError:
            pass

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    try:
        messages, times = connection.run(body_messages(receive, limit=100_000), "receiving 32 MB", timeout=5)
    finally:
        uploader.join(2)
    got = body_of(messages)
    assert len(got) == size and messages[-1] != DISCONNECT, (
        f"of a 32 MB upload, receive() gave {len(got)} bytes before {short(messages[-1])}"
    )
    first_at, first_size = times[0]
    assert first_at < sent.get("before the last MB", float("inf")), (
        f"the first http.request message ({first_size} bytes) came only once the client had sent all 32 MB of its "
        "body: receive() read the whole body before it gave any of it. Expected a piece as soon as one arrives "
        "(one read of at most CHUNK bytes per call): a server that holds whole uploads holds 1 GB for a 1 GB upload"
    )
    largest = max(piece for _, piece in times)
    assert largest <= 1024 * 1024, (
        f"a piece of {largest} bytes came in one message, expected at most CHUNK (64 KB) per read; "
        "this check allows up to 1 MB"
    )


@exercise("make_receive")
def test_make_receive_says_disconnect_when_the_client_leaves_half_way(loopback):
    """A client that leaves half way through its body (a close, then a reset): http.disconnect, never an error."""
    for reset in (False, True):
        connection = loopback()
        connection.client.sendall(pattern(30_000))
        time.sleep(0.05)  # (the half body is on its way before the client leaves)
        connection.client_closes(reset=reset)
        receive = connection.make("make_receive", connection.reader, 100_000)
        how = "reset its connection" if reset else "closed its connection"
        because = (
            f"the client {how} half way through its body; expected {{'type': 'http.disconnect'}}: an OSError from "
            "the reader means the client has gone, and the app is told so, never with an exception"
        )
        messages, _ = connection.run(
            body_messages(receive, because=because),
            f"receive(), after the client {how} half way through its body,",
            timeout=2,
        )
        assert messages[-1] == DISCONNECT, (
            f"the client sent 30,000 of its 100,000 bytes and {how}; receive() gave {short(messages[-1], 100)} "
            "with the body incomplete: expected {'type': 'http.disconnect'} (an early end of the reader, "
            "or an OSError, means the client has gone)"
        )


# --- make_send --------------------------------------------------------------------------------------


def start(status=200, headers=((b"content-type", b"text/plain"),)):
    return {"type": "http.response.start", "status": status, "headers": [tuple(pair) for pair in headers]}


def body(data, more=False):
    return {"type": "http.response.body", "body": data, "more_body": more}


def received_so_far(client, wait=0.2):
    """What the client has received within ``wait`` seconds, and whether the connection ended."""
    client.settimeout(wait)
    data = bytearray()
    try:
        while piece := client.recv(65536):
            data += piece
        return bytes(data), True
    except TimeoutError:
        return bytes(data), False
    except ConnectionResetError:
        return bytes(data), True


@exercise("make_send")
def test_make_send_writes_the_head_with_the_first_body(loopback):
    """make_send() keeps the start, writes the head with the first body, and ends the connection after the last."""
    connection = loopback()
    send = connection.make("make_send", connection.writer, "GET")
    headers = [(b"content-type", b"text/plain"), (b"x-tag", b"one"), (b"x-tag", b"two")]
    connection.run(called(send, start(200, headers)), "send(http.response.start)")
    early, _ = received_so_far(connection.client)
    assert not early, (
        f"after http.response.start alone, the client had received {short(early)}: keep the status and "
        "headers, and send nothing before the first body (until then, an app that fails can still get a 500)"
    )
    assert getattr(send, "head_sent", None) is False, (
        f"after http.response.start, send.head_sent is {getattr(send, 'head_sent', 'missing')!r}, expected False"
    )
    connection.run(called(send, body(b"Hel", more=True)), "send(http.response.body)")
    assert getattr(send, "head_sent", None) is True, (
        f"after the first body, send.head_sent is {getattr(send, 'head_sent', 'missing')!r}, expected True"
    )
    first, closed = received_so_far(connection.client)
    assert not closed, (
        f"after the first body (b'Hel', more_body True) the client got {short(first)}, then the end of the "
        "connection: more_body True says more follows; only the last body ends the response"
    )
    connection.run(called(send, body(b"lo")), "send(the last http.response.body)")
    data, closed = read_until_closed(connection.client, WAIT)
    data = first + data
    assert closed, f"after the last body the client got {short(data)}, and the connection did not end: close it"
    status_line, got, text = split_response(data)
    assert status_line == "HTTP/1.1 200 OK", f"the status line is {status_line!r}, expected 'HTTP/1.1 200 OK'"
    head = data.partition(b"\r\n\r\n")[0]
    assert b"b'" not in head, (
        f"the head is {short(head, 120)}: it holds the headers' repr (b'...'); decode names and values as "
        "latin-1 before writing them"
    )
    assert got.get("connection", "").lower() == "close", f"the head has no 'Connection: close': {short(data, 200)}"
    assert got.get("content-type") == "text/plain", f"the head lacks content-type: text/plain: {short(data, 200)}"
    assert data.count(b"x-tag: ") == 2, f"the header x-tag was sent twice; the head holds: {short(data, 200)}"
    assert text == b"Hello", f"the body is {short(text)}, expected b'Hello' (b'Hel', then b'lo')"


@exercise("make_send")
def test_make_send_streams_pieces_and_ends_only_after_the_last(loopback):
    """Body messages with more_body True keep the connection open; the one without ends it."""
    connection = loopback()
    send = connection.make("make_send", connection.writer, "GET")
    connection.run(called(send, start()), "send(http.response.start)")
    for number, piece in enumerate((b"one ", b"two "), 1):
        connection.run(called(send, body(piece, more=True)), f"send(body {number}, more_body True)")
        data, closed = received_so_far(connection.client)
        assert piece in data and not closed, (
            f"after body {number} of 3 ({short(piece)}, more_body True) the client got {short(data)} and the "
            f"connection {'ended' if closed else 'stayed open'}: expected the piece, and the connection open for "
            "more (more_body True says more follows)"
        )
    connection.run(called(send, body(b"three")), "send(the last body)")
    data, closed = received_so_far(connection.client, wait=2)
    assert data == b"three" and closed, (
        f"after the last body (b'three', no more_body) the client got {short(data)} and the connection "
        f"{'ended' if closed else 'stayed open'} within 2 s: expected b'three', then the end of the connection"
    )


@exercise("make_send")
def test_make_send_sends_no_body_for_head(loopback):
    """For HEAD, the head only: the same headers, no body."""
    connection = loopback()
    send = connection.make("make_send", connection.writer, "HEAD")
    connection.run(called(send, start(200, [(b"content-length", b"5")])), "send(http.response.start)")
    connection.run(called(send, body(b"hello")), "send(http.response.body)")
    data, closed = read_until_closed(connection.client, WAIT)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5" in head.lower(), (
        f"to a HEAD request the client got {short(data)}, expected a 200 head with content-length: 5"
    )
    assert not rest and closed, (
        f"to a HEAD request the client got the body {short(rest)} after the head: a response to HEAD has none"
    )


@exercise("make_send")
def test_make_send_waits_for_a_client_that_reads_nothing(loopback):
    """To a client that reads nothing, the app's 101st send of 64 KB does not complete within 2 s; then all arrives."""
    connection = loopback(send_buffer=64 * 1024, receive_buffer=64 * 1024)
    send = connection.make("make_send", connection.writer, "GET")
    done = [0]

    async def streaming_app():
        await send(start())
        for _ in range(SENDS):
            await send(body(b"." * PIECE, more=True))
            done[0] += 1
        await send(body(b"end"))

    app = connection.start(streaming_app())
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and done[0] <= 100 and not app.done():
        time.sleep(0.02)
    if app.done() and app.exception() is not None:
        raise AssertionError(f"send() raised {described(app.exception())} while the client was connected")
    assert done[0] <= 100, (
        f"the client read nothing, and the app's sends of 64 KB had completed {done[0]} times within "
        f"{2 - max(0.0, deadline - time.monotonic()):.1f} s: {done[0] * PIECE / 1e6:.1f} MB held in the server's "
        "memory. Expected send() to wait while the client is slow: await writer.drain() after each write"
    )
    data, closed = read_until_closed(connection.client, WAIT)
    expected = SENDS * PIECE + len(b"end")
    got = len(data.partition(b"\r\n\r\n")[2])
    assert got == expected and closed, (
        f"once the client read, it got {got} bytes of body (expected {expected}), and the connection "
        f"{'ended' if closed else 'did not end'} within {WAIT:g} s"
    )


@exercise("make_send")
def test_make_send_raises_once_the_client_has_gone(loopback):
    """An app that streams forever to a client that has left: its send() raises an OSError within 2 s."""
    connection = loopback(send_buffer=64 * 1024, receive_buffer=64 * 1024)
    send = connection.make("make_send", connection.writer, "GET")
    sent = [0]

    async def endless_app():
        await send(start())
        while True:  # an event stream: it ends when send() says the client has gone
            await send(body(b"." * PIECE, more=True))
            sent[0] += 1

    app = connection.start(endless_app())
    connection.client.settimeout(WAIT)
    try:
        connection.client.recv(65536)  # the stream has begun; the client takes a piece of it, and leaves
    except TimeoutError:
        pass  # (it never began: what follows says so)
    connection.client_closes(reset=True)
    try:
        app.result(2)
    except concurrent.futures.TimeoutError:
        app.cancel()
        raise AssertionError(
            f"the client left; 2 s later the app's send() still had not raised ({sent[0]} sends of 64 KB had "
            "completed): an app that streams forever stops only when send raises. Let the OSError of drain() out"
        ) from None
    except OSError:
        return
    except Exception as error:
        raise AssertionError(f"the client left, and send() raised {described(error)}, expected an OSError") from None


# --- serve_asgi ------------------------------------------------------------------------------------


@pytest.fixture
def serve():
    """Start serve_asgi(listener, app) as a server process; kill it afterwards."""
    servers = []

    def start_server(app=ASGI_APP):
        servers.append(StudentServer("part4", "serve_asgi", app))
        return servers[-1]

    yield start_server
    for server in servers:
        server.stop()


def fetch(server, raw, timeout=WAIT, advice=""):
    """Send ``raw``; return (status line, headers, body) once the server closes the connection,
    or fail saying what came (and ``advice``: what to look at)."""
    with server.connect() as client:
        client.sendall(raw)
        data, closed = read_until_closed(client, timeout)
    server.check(wait=0 if data else ERROR_WAIT)  # the server's own error, if it stopped
    advice = f": {advice}" if advice else ""
    if not data:
        what = "the server closed the connection" if closed else "the connection stayed open and silent"
        raise AssertionError(f"no answer to {short(raw)} within {timeout:g} s ({what}){advice}")
    if not closed:
        raise AssertionError(f"to {short(raw)} the response came ({short(data)}), but the connection did not end")
    return split_response(data)


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: grader\r\n\r\n".encode()


@exercise("serve_asgi")
def test_serve_asgi_serves_an_app(serve):
    """serve_asgi() serves an ASGI app that does no lifespan, request after request."""
    server = serve(HELLO_APP)
    advice = (
        "this app raises on the lifespan scope (it does no lifespan) and must be served all the same: "
        "wait for its startup answer or for the end of its lifespan task, whichever comes first"
    )
    for path in ("/", "/again", "/third"):
        status_line, _, text = fetch(server, get(path), timeout=2, advice=advice)
        assert status_line.startswith("HTTP/1.1 200") and text == b"Hello, world!\n", (
            f"GET {path} got {status_line!r} {short(text)}, expected 200 b'Hello, world!\\n'"
        )


@exercise("serve_asgi")
def test_serve_asgi_runs_the_lifespan_before_serving(serve):
    """The app's lifespan starts before the first request is served, and its state reaches the request's scope."""
    server = serve()
    status_line, _, text = fetch(server, get("/state"))
    assert text == b"ready yes", (
        f"the app's lifespan startup takes 0.5 s and stores state['ready'] = 'yes'; a request sent at once got "
        f"{status_line!r} {short(text)}, expected b'ready yes'. Run the lifespan first, wait for "
        "lifespan.startup.complete, and pass its state to build_scope"
    )


@exercise("serve_asgi")
def test_serve_asgi_streams_an_upload_through_the_app(serve):
    """A 2 MB upload goes to the app in pieces, and comes back whole, piece by piece."""
    server = serve()
    size = 2 * 1024 * 1024
    data = pattern(size)
    head = f"POST /echo HTTP/1.1\r\nHost: grader\r\nContent-Length: {size}\r\n\r\n".encode()
    with server.connect() as client:
        try:
            client.sendall(head + data)
        except OSError as error:  # it stopped reading, or stopped: its own error first, if it raised one
            server.check(wait=ERROR_WAIT)
            raise AssertionError(
                f"sending a {size}-byte upload to POST /echo failed ({error!r}): the server closed the connection "
                "before it had read the body; expected the app to be given the body, a piece per receive()"
            ) from None
        response, closed = read_until_closed(client, WAIT)
    server.check(wait=0 if response else ERROR_WAIT)
    status_line, _, text = split_response(response)
    assert status_line.startswith("HTTP/1.1 200") and text == data and closed, (
        f"POST /echo with a body of {size} bytes: the app sends each piece back as it arrives; got {status_line!r} "
        f"and {len(text)} bytes{' that differ' if len(text) == size else ''}"
    )


@exercise("serve_asgi")
def test_serve_asgi_answers_500_when_the_app_fails_and_serves_on(serve):
    """An app that fails before its response gets a 500; a head it cannot read a 400; the server serves on."""
    server = serve()
    advice = "expected a 500: the app raised before its head went out (send.head_sent was False)"
    status_line, _, _ = fetch(server, get("/fail"), timeout=2, advice=advice)
    assert status_line.startswith("HTTP/1.1 500"), f"GET /fail (the app raises) got {status_line!r}, {advice}"
    status_line, _, _ = fetch(server, b"nonsense\r\n\r\n")
    assert " 400 " in status_line, f"a head that is no request got {status_line!r}, expected a 400"
    with server.connect() as leaving:
        leaving.sendall(b"GET /half")  # and leaves
    status_line, _, text = fetch(server, get("/after"))
    assert text == b"hello from /after", (
        f"after an app failure, a bad request and a client that left, GET /after got {status_line!r} {short(text)}"
    )


@exercise("serve_asgi")
def test_serve_asgi_serves_waiting_apps_at_once(serve):
    """Two requests whose app awaits one second are served together, in about one second."""
    server = serve()
    fetch(server, get("/warm-up"))
    answers = []

    def one():
        answers.append(fetch(server, get("/sleep"))[2])

    started = time.monotonic()
    threads = [threading.Thread(target=one, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT + 1)
    seconds = time.monotonic() - started
    assert answers == [b"slept", b"slept"], f"two GET /sleep got {answers}, expected b'slept' twice"
    assert seconds < 1.8, (
        f"two requests whose app awaits 1 s took {seconds:.1f} s together, expected about 1 s: each connection "
        "is a task of its own (start_server runs the handler for each), and the app awaits without holding the loop"
    )
