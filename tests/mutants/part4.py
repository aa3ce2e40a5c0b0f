"""Wrong solutions of part 4's exercises: see tests/mutants/__init__.py.

Each is a student's function that is right but for one mistake, made with ``wrong()``
from the right one below it (``RIGHT``: tests/test_grader.py grades it, and it passes):
a diff of one or two lines, as a student's slip is.
"""

from tests.mutants import Mutant

# A student's own solutions, each passing its exercise (proved in tests/test_grader.py).
BUILD_SCOPE = """
    from urllib.parse import unquote


    def build_scope(request, *, server, client, root_path="", state=None):
        path, _, query = request.target.partition("?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": request.version[len("HTTP/"):],
            "method": request.method,
            "scheme": "http",
            "path": root_path + unquote(path, encoding="utf-8", errors="replace"),
            "raw_path": (root_path + path).encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": root_path,
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers],
            "client": [client[0], client[1]],
            "server": [server[0], server[1]],
            "state": dict(state) if state else {},
        }
    """

MAKE_RECEIVE = """
    CHUNK = 65536


    def make_receive(reader, length):
        remaining = length
        body_done = False

        async def receive():
            nonlocal remaining, body_done
            if body_done:
                try:
                    while await reader.read(CHUNK):
                        pass
                except OSError:
                    pass
                return {"type": "http.disconnect"}
            piece = b""
            if remaining > 0:
                try:
                    piece = await reader.read(min(CHUNK, remaining))
                except OSError:
                    piece = b""
                if not piece:
                    body_done = True
                    return {"type": "http.disconnect"}
            remaining -= len(piece)
            if remaining == 0:
                body_done = True
            return {"type": "http.request", "body": piece, "more_body": remaining > 0}

        return receive
    """

MAKE_SEND = """
    from http import HTTPStatus


    def make_send(writer, method):
        response = {}

        async def send(message):
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = message.get("headers", [])
                return
            if not send.head_sent:
                status = response["status"]
                head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\\r\\nConnection: close\\r\\n"
                for name, value in response["headers"]:
                    head += f"{name.decode('latin-1')}: {value.decode('latin-1')}\\r\\n"
                writer.write((head + "\\r\\n").encode("latin-1"))
                send.head_sent = True
            if method != "HEAD":
                writer.write(message.get("body", b""))
            await writer.drain()
            if not message.get("more_body", False):
                writer.close()

        send.head_sent = False
        return send
    """

SERVE_ASGI = """
    import asyncio
    import sys

    from part4_asgi.minimal_asgi_server import MAX_HEAD, body_length, read_head


    def serve_asgi(listener, app):
        asyncio.run(main(listener, app))


    async def main(listener, app):
        state = {}
        started = asyncio.get_running_loop().create_future()
        messages = asyncio.Queue()
        await messages.put({"type": "lifespan.startup"})

        async def lifespan_send(message):
            if not started.done():
                started.set_result(message["type"])

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.4"}, "state": state}
        task = asyncio.create_task(app(scope, messages.get, lifespan_send))
        await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
        if started.done() and started.result() == "lifespan.startup.failed":
            raise RuntimeError("the app's startup failed")

        async def handler(reader, writer):
            try:
                request = await read_head(reader)
                if request is None:
                    writer.write(b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
                    return
                scope = build_scope(
                    request,
                    server=writer.get_extra_info("sockname"),
                    client=writer.get_extra_info("peername"),
                    state=state,
                )
                send = make_send(writer, request.method)
                try:
                    await app(scope, make_receive(reader, body_length(request)), send)
                except Exception as error:
                    print("the app failed:", error, file=sys.stderr)
                    if not send.head_sent:
                        writer.write(b"HTTP/1.1 500 Internal Server Error\\r\\nContent-Length: 0\\r\\n\\r\\n")
                await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handler, sock=listener, limit=MAX_HEAD)
        await server.serve_forever()
    """

RIGHT = {"build_scope": BUILD_SCOPE, "make_receive": MAKE_RECEIVE, "make_send": MAKE_SEND, "serve_asgi": SERVE_ASGI}


def wrong(exercise, mistake, expect, *changes):
    """A mutant: the right ``exercise`` with each (old, new) of ``changes`` made once."""
    code = RIGHT[exercise]
    for old, new in changes:
        assert code.count(old) == 1, f"{exercise}: {old!r} is not in the right version exactly once"
        code = code.replace(old, new)
    return Mutant("part4", exercise, mistake, code, expect)


MUTANTS = [
    # --- build_scope -----------------------------------------------------------------------------
    wrong(
        "build_scope",
        "headers as str, as they came",
        "pairs of bytes",
        ('(name.lower().encode("latin-1"), value.encode("latin-1"))', "(name.lower(), value)"),
    ),
    wrong(
        "build_scope",
        "a repeated header lost in a dict",
        "kept as two pairs",
        (
            '[(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers]',
            'list({name.lower().encode("latin-1"): value.encode("latin-1")'
            " for name, value in request.headers}.items())",
        ),
    ),
    wrong(
        "build_scope",
        "the path decoded as latin-1, as WSGI does",
        "as UTF-8",
        ('unquote(path, encoding="utf-8", errors="replace")', 'unquote(path, encoding="latin-1")'),
    ),
    wrong(
        "build_scope",
        "raw_path with the query",
        "without the query",
        ('(root_path + path).encode("latin-1")', '(root_path + request.target).encode("latin-1")'),
    ),
    wrong(
        "build_scope",
        "every request shares the lifespan's state",
        "shallow copy",
        ('"state": dict(state) if state else {}', '"state": state if state is not None else {}'),
    ),
    # --- make_receive ----------------------------------------------------------------------------
    wrong(
        "make_receive",
        "reads a 32 MB upload whole before its first message",
        "read the whole body before it gave any",
        ("piece = await reader.read(min(CHUNK, remaining))", "piece = await reader.readexactly(remaining)"),
    ),
    wrong(
        "make_receive",
        "no more_body in its messages",
        "missing more_body as False",
        (
            'return {"type": "http.request", "body": piece, "more_body": remaining > 0}',
            'return {"type": "http.request", "body": piece}',
        ),
    ),
    wrong(
        "make_receive",
        "never says http.disconnect: after the body, an empty body again",
        "http.disconnect",
        (
            """                try:
                    while await reader.read(CHUNK):
                        pass
                except OSError:
                    pass
                return {"type": "http.disconnect"}""",
            """                return {"type": "http.request", "body": b"", "more_body": False}""",
        ),
    ),
    wrong(
        "make_receive",
        "reads past the Content-Length",
        "never past",
        ("piece = await reader.read(min(CHUNK, remaining))", "piece = await reader.read(CHUNK)"),
    ),
    wrong(
        "make_receive",
        "a reset is an exception for the app",
        "an OSError",
        (
            """                try:
                    piece = await reader.read(min(CHUNK, remaining))
                except OSError:
                    piece = b\"\"""",
            """                piece = await reader.read(min(CHUNK, remaining))""",
        ),
    ),
    # --- make_send -------------------------------------------------------------------------------
    wrong(
        "make_send",
        "a send that never waits for its client",
        "await writer.drain()",
        ("            await writer.drain()\n", ""),
    ),
    wrong(
        "make_send",
        "writes the headers' repr",
        "decode names and values as latin-1",
        ("{name.decode('latin-1')}: {value.decode('latin-1')}", "{name}: {value}"),
    ),
    wrong(
        "make_send",
        "no more_body: the first body ends the response",
        "only the last body ends the response",
        ('if not message.get("more_body", False):', "if True:  # the response is sent"),
    ),
    wrong(
        "make_send",
        "never ends the connection",
        "close it",
        ("                writer.close()\n", "                pass\n"),
    ),
    wrong(
        "make_send",
        "sends the head at http.response.start",
        "send nothing before the first body",
        (
            """                response["headers"] = message.get("headers", [])
                return""",
            """                response["headers"] = message.get("headers", [])
                message = {"body": b"", "more_body": True}""",
        ),
    ),
    wrong(
        "make_send",
        "a body for HEAD too",
        "a response to HEAD has none",
        ('if method != "HEAD":', "if method:"),
    ),
    wrong(
        "make_send",
        "swallows the error of a client that left",
        "Let the OSError",
        (
            "            await writer.drain()\n",
            "            try:\n                await writer.drain()\n"
            "            except ConnectionError:\n                pass\n",
        ),
    ),
    # --- serve_asgi ------------------------------------------------------------------------------
    wrong(
        "serve_asgi",
        "lifespan ignored",
        "Run the lifespan first",
        (
            "        await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)\n"
            '        if started.done() and started.result() == "lifespan.startup.failed":\n'
            """            raise RuntimeError("the app's startup failed")\n""",
            "",
        ),
        ("        task = asyncio.create_task(app(scope, messages.get, lifespan_send))\n", ""),
    ),
    wrong(
        "serve_asgi",
        "serves before lifespan.startup.complete",
        "wait for lifespan.startup.complete",
        (
            "        await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)\n",
            "        await asyncio.sleep(0)  # the lifespan has begun\n",
        ),
    ),
    wrong(
        "serve_asgi",
        "waits for a startup answer from an app that does no lifespan",
        "does no lifespan",
        ("await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)", "await started"),
    ),
    wrong(
        "serve_asgi",
        "no 500 for an app that fails before its response",
        "expected a 500",
        ("                    if not send.head_sent:\n", "                    if False:\n"),
    ),
]
