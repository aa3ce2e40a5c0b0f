"""Bare ASGI apps the part 4 tests serve: one route per behaviour to check, and apps that
get lifespan wrong in each way a server must survive. What the apps see, they write to
stderr, which the tests read in the server's log."""

import asyncio
import json
import sys
import time
from urllib.parse import parse_qs

PIECE = 64 * 1024


def note(text):
    sys.stderr.write(f"app: {text}\n")
    sys.stderr.flush()


async def respond(send, status=200, body=b"", headers=()):
    headers = [(b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_all(receive):
    pieces = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        pieces.append(message["body"])
        if not message.get("more_body"):
            return pieces


def text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else value


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        scope["state"]["started"] = "yes"
        note("lifespan startup")
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        note(f"lifespan {message['type']}")
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = {name: values[0] for name, values in parse_qs(scope["query_string"].decode()).items()}
    route = ROUTES.get(scope["path"].rsplit("/", 1)[-1])  # (the last name: a root_path may come first)
    if route is None:
        return await respond(send, 404, b"not found\n")
    await route(scope, receive, send, query)


async def scope_route(scope, receive, send, query):
    shown = {key: value for key, value in scope.items() if key != "headers"}
    shown["headers"] = [[text(name), text(value)] for name, value in scope["headers"]]
    body = json.dumps(shown, default=text).encode()  # the scope as the server gave it
    scope["state"]["mine"] = 1  # the request's own copies: the next request must not see these
    scope["extensions"]["mine"] = {}
    await respond(send, body=body, headers=[(b"content-type", b"application/json")])


async def echo(scope, receive, send, query):
    pieces = await read_all(receive)
    body = b"".join(pieces)
    await respond(send, body=f"{len(pieces)} pieces, {len(body)} bytes\n".encode())


async def first_piece(scope, receive, send, query):
    """Answers with the size of the first piece of the body, and reads no more."""
    message = await receive()
    await respond(send, body=f"{len(message['body'])} {message['more_body']}\n".encode())


async def unread(scope, receive, send, query):
    await respond(send, body=b"not read\n")


async def stream(scope, receive, send, query):
    """``count`` pieces of ``size`` bytes, chunked (no Content-Length); notes each send."""
    count, size = int(query.get("count", 3)), int(query.get("size", 5))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    sent = 0
    try:
        for _ in range(count):
            await send({"type": "http.response.body", "body": b"x" * size, "more_body": True})
            sent += 1
            if query.get("note"):
                note(f"sent {sent}")
        await send({"type": "http.response.body", "body": b""})
    except OSError as error:
        note(f"send raised {type(error).__name__} after {sent}")
        raise


async def empty_pieces(scope, receive, send, query):
    """Chunked, with empty pieces between and at the end, as Starlette's streams send them."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for piece in (b"a", b"", b"b"):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def big(scope, receive, send, query):
    size = int(query["size"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(size).encode())]})
    for start in range(0, size, 1024 * 1024):
        piece = min(1024 * 1024, size - start)
        await send({"type": "http.response.body", "body": b"b" * piece, "more_body": start + piece < size})


async def wait_disconnect(scope, receive, send, query):
    await read_all(receive)
    note("waiting")
    message = await receive()
    note(f"then {message['type']}")


async def stream_until_disconnect(scope, receive, send, query):
    """Streams, and stops when ``receive()`` says the client has gone, without a last
    message, as sse-starlette's event streams do (a task listens for the disconnect)."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await read_all(receive)
    message = await receive()
    note(f"stream stopped on {message['type']}")


async def hang(scope, receive, send, query):
    note("hanging")
    try:
        message = await receive()
        message = await receive()  # the body was empty: the next news is the client leaving
        note(f"hang got {message['type']}")
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        note("hang cancelled")
        raise


async def fail_before(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("failed before the body")


async def fail_after(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
    await send({"type": "http.response.body", "body": b"half", "more_body": True})
    raise RuntimeError("failed after the head")


async def no_response(scope, receive, send, query):
    return


async def str_headers(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": [("content-type", "text/plain")]})


async def second_start(scope, receive, send, query):
    start = {"type": "http.response.start", "status": 200, "headers": []}
    await send(start)
    await send(start)


async def unknown_type(scope, receive, send, query):
    """A message ASGI has no such type for: before anything is sent, or (``after``) once
    the head and some of the body are out."""
    if query.get("after"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
    await send({"type": "http.response.bodies", "body": b"a typo"})


async def count_body(scope, receive, send, query):
    """Reads the body as it streams in, notes how it ends, and answers with its size."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return note(f"body ended by http.disconnect after {size} bytes")
        size += len(message["body"])
        if not message.get("more_body"):
            break
    note(f"body complete: {size} bytes")
    await respond(send, body=f"{size} bytes\n".encode())


async def pathsend(scope, receive, send, query):
    path = query["path"]
    size = int(query["size"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(size).encode())]})
    await send({"type": "http.response.pathsend", "path": path})


async def stream_echo(scope, receive, send, query):
    """Starts its response before it reads the body (a streaming echo, a proxy)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"echo:", "more_body": True})
    for piece in await read_all(receive):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def background(scope, receive, send, query):
    """Responds, then goes on working within the same call, as Starlette's background tasks do."""
    await respond(send, body=b"accepted\n")
    note("background began")
    await asyncio.sleep(float(query.get("seconds", 3)))
    note(f"background done, then receive() gave {(await receive())['type']}")


async def hop_by_hop(scope, receive, send, query):
    headers = [(b"connection", b"close"), (b"keep-alive", b"timeout=5"), (b"upgrade", b"h2c")]
    headers.append((b"transfer-encoding", b"chunked"))  # beside its Content-Length: the server frames
    await respond(send, 426, b"upgrade\n", headers)


async def slow(scope, receive, send, query):
    note("slow began")
    await asyncio.sleep(float(query.get("seconds", 0.5)))
    await respond(send, body=b"slow\n")
    note("slow answered")


async def slow_cleanup(scope, receive, send, query):
    """Takes its time to clean up when cancelled, longer than the stop budget, and will not
    be cancelled again meanwhile."""
    note("cleanup route waiting")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        note("cleanup began")
        cleanup = asyncio.get_running_loop().create_future()  # (a future, not a task: nothing cancels it)
        asyncio.get_running_loop().call_later(5, cleanup.set_result, None)
        while not cleanup.done():
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                pass
        raise


async def in_a_thread(scope, receive, send, query):
    """Waits for a thread that nothing can cancel, as a framework runs a plain ``def`` view;
    like anyio, it defers its cancellation until the thread is done."""
    work = asyncio.get_running_loop().run_in_executor(None, time.sleep, float(query.get("seconds", 8)))
    note("thread sleeping")
    while not work.done():
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            note("thread view cancelled: the thread sleeps on")
    await respond(send, body=b"slept\n")
    note("thread view ended")


ROUTES = {
    "scope": scope_route,
    "echo": echo,
    "first": first_piece,
    "unread": unread,
    "stream": stream,
    "empty-pieces": empty_pieces,
    "big": big,
    "wait-disconnect": wait_disconnect,
    "stream-until-disconnect": stream_until_disconnect,
    "hang": hang,
    "fail-before": fail_before,
    "fail-after": fail_after,
    "no-response": no_response,
    "str-headers": str_headers,
    "second-start": second_start,
    "pathsend": pathsend,
    "unknown-type": unknown_type,
    "count": count_body,
    "stream-echo": stream_echo,
    "background": background,
    "hop-by-hop": hop_by_hop,
    "slow": slow,
    "slow-cleanup": slow_cleanup,
    "in-a-thread": in_a_thread,
}


async def failing_startup(scope, receive, send):
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


async def traceback_startup(scope, receive, send):
    """Says its startup failed with a whole traceback as the message, as Starlette does."""
    await receive()
    message = "Traceback (most recent call last):\n  File ...\nConnectionError: no database"
    await send({"type": "lifespan.startup.failed", "message": message})


async def raises_in_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise ConnectionError("no database")
    await respond(send, body=b"served\n")


async def hanging_startup(scope, receive, send):
    await receive()
    note("startup hangs")  # (the server has its signal handlers by now)
    await asyncio.sleep(60)


def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    return [b""]


class Asgi2App:
    def __init__(self, scope):
        self.scope = scope
