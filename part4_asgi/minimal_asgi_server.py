"""Lesson 5, the whole picture first: a minimal ASGI server on one screen.

    python part4_asgi/minimal_asgi_server.py                                     # the hello app
    python part4_asgi/minimal_asgi_server.py part4_asgi.apps.fastapi_app:app     # FastAPI, unmodified

asyncio hands each connection to ``serve_connection`` as a pair of streams; it reads one
request (its own tiny parsing: a head, then a body by Content-Length), builds the scope,
and awaits the app with two coroutines of its own:

    receive()   the body, in one http.request message; then http.disconnect
    send(m)     http.response.start keeps the status and headers; http.response.body
                writes them with the first body, and ``await writer.drain()`` waits
                while the client is slow: backpressure in one line

One request per connection (``Connection: close``), no chunked uploads, no deadlines, no
lifespan: what ``server.py`` and the streaming ``Connection`` add. Standard library only.
"""

import asyncio
import sys
from pathlib import Path
from urllib.parse import unquote

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import load_app, make_parser

MAX_HEAD = 64 * 1024  # a longer head is refused
PHRASES = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}


async def read_request(reader):
    """(method, target, version, headers, body), or None for a request we cannot read."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    length = next((value for name, value in headers if name.lower() == "content-length"), "0")
    if not length.isdigit():
        return None
    body = await reader.readexactly(int(length))
    return (*parts, headers, body)


def build_scope(method, target, version, headers, writer):
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": version[5:],
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "client": writer.get_extra_info("peername")[:2],
        "server": writer.get_extra_info("sockname")[:2],
    }


async def serve_connection(app, reader, writer):
    try:
        request = await read_request(reader)
        if request is None:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        *start, body = request
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        response = {}  # the status and headers, until the first body goes out with them

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                response.update(message, sent=False)
            elif message["type"] == "http.response.body":
                if not response["sent"]:
                    status = response["status"]
                    lines = [f"HTTP/1.1 {status} {PHRASES.get(status, 'Unknown')}", "Connection: close"]
                    lines += [
                        f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in response["headers"]
                    ]
                    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                    response["sent"] = True
                if start[0] != "HEAD":
                    writer.write(message.get("body", b""))
                await writer.drain()  # wait while the client is slow

        try:
            await app(build_scope(*start, writer), receive, send)
        except Exception as error:
            print(f"app error: {error!r}", file=sys.stderr)
            if not response.get("sent"):
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    except OSError:
        pass  # the client went away
    finally:
        writer.close()


async def serve(app, host, port):
    server = await asyncio.start_server(lambda r, w: serve_connection(app, r, w), host, port, limit=MAX_HEAD)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"Serving on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = make_parser("A minimal ASGI server, on one screen.", interface="ASGI", files=False)
    settings = parser.parse_args()
    try:
        asyncio.run(serve(load_app(settings.app or "part4_asgi.apps.hello_app:app"), settings.host, settings.port))
    except KeyboardInterrupt:
        pass
