"""Lesson 5, the whole picture first: a minimal ASGI server on one screen.

    python part4_asgi/minimal_asgi_server.py                                     # the hello app
    python part4_asgi/minimal_asgi_server.py part4_asgi.apps.fastapi_app:app     # FastAPI, unmodified

asyncio hands each connection to ``serve_connection`` as a pair of streams; it reads a
request's head (its own tiny parsing), builds the scope (asgi.py's ``build_scope``), and
awaits the app with two coroutines of its own:

    receive()   the body as it arrives, a piece per http.request message (more_body
                says whether more follows); then http.disconnect once the client leaves
    send(m)     http.response.start keeps the status and headers; http.response.body
                writes them with the first body, and ``await writer.drain()`` waits
                while the client is slow: backpressure in one line

Before it serves, the app is told that the server starts (lifespan, asgi.py's
``Lifespan``). One request per connection (``Connection: close``), no chunked uploads,
no deadlines: what ``server.py`` and the streaming ``Connection`` add. Standard library only.
"""

import asyncio
import functools
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import create_listening_socket, load_app, make_parser
from part2_wsgi.protocol import Request
from part4_asgi.asgi import Lifespan, build_scope

CHUNK = 65536  # the most body one http.request message carries
MAX_HEAD = 64 * 1024  # a longer head is refused
PHRASES = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


async def read_head(reader):
    """A Request (its body still to read), or None for a request we cannot read."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    request = Request(*parts, [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line])
    return request if body_length(request) >= 0 else None


def body_length(request):
    length = request.header("Content-Length") or "0"
    return int(length) if length.isdigit() else -1


async def read_piece(reader, size):
    """Up to ``size`` bytes as they come; b"" once the client has gone (closed, or reset)."""
    try:
        return await reader.read(size)
    except OSError:
        return b""


def make_receive(reader, length):
    """The app's receive(): ``length`` bytes of body, a piece at a time, then http.disconnect."""
    left = length

    async def receive():
        nonlocal left
        if left is None:  # the body is all given: the next news is the client leaving
            while await read_piece(reader, CHUNK):
                pass
            return {"type": "http.disconnect"}
        piece = await read_piece(reader, min(left, CHUNK)) if left else b""
        if left and not piece:
            left = None
            return {"type": "http.disconnect"}  # it left half way
        left -= len(piece)
        more = left > 0
        left = left if more else None
        return {"type": "http.request", "body": piece, "more_body": more}

    return receive


def make_send(writer, method):
    """The app's send(): the head with the first body, then each piece, waiting for the client.
    ``send.head_sent`` says whether the head went out (until then, a failing app gets a 500)."""
    response = {}  # the status and headers, until the first body goes out with them

    async def send(message):
        if message["type"] == "http.response.start":
            response.update(message)
        elif message["type"] == "http.response.body":
            if not send.head_sent:
                status = response["status"]
                lines = [f"HTTP/1.1 {status} {PHRASES.get(status, 'Unknown')}", "Connection: close"]
                lines += [f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in response["headers"]]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                send.head_sent = True
            if method != "HEAD":
                writer.write(message.get("body", b""))
            await writer.drain()  # wait while the client is slow; raises once it has gone
            if not message.get("more_body", False):
                writer.close()  # the response ends with the connection

    send.head_sent = False
    return send


async def serve_connection(app, state, reader, writer):
    try:
        request = await read_head(reader)
        if request is None:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        server, client = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
        scope = build_scope(request, server=server, client=client, state=state)
        del scope["extensions"]  # (this server sends no file by path)
        send = make_send(writer, request.method)
        try:
            await app(scope, make_receive(reader, body_length(request)), send)
        except Exception as error:
            print(f"app error: {error!r}", file=sys.stderr)
            if not send.head_sent:
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    except OSError:
        pass  # the client went away
    finally:
        writer.close()


def serve_asgi(listener, app):
    """Tell the app the server starts (lifespan); then serve each connection as a task, forever."""

    async def serve():
        lifespan = Lifespan(app)
        await lifespan.startup()  # until the app says it is ready, or shows it does no lifespan
        handler = functools.partial(serve_connection, app, lifespan.state)
        server = await asyncio.start_server(handler, sock=listener, limit=MAX_HEAD)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    parser = make_parser("A minimal ASGI server, on one screen.", interface="ASGI", files=False)
    settings = parser.parse_args()
    listener = create_listening_socket(settings.host, settings.port)
    print(f"Serving on http://{settings.host}:{listener.getsockname()[1]}", flush=True)
    try:
        serve_asgi(listener, load_app(settings.app or "part4_asgi.apps.hello_app:app"))
    except KeyboardInterrupt:
        pass
