"""The smallest useful ASGI app: "Hello, world!" and nothing else, without a framework.

Part 2's hello app, in ASGI: the benchmarks serve it on every ASGI server, so that the
figures measure the servers and not the app. It reads no body (a GET has none), and
does no lifespan: on the ``lifespan`` scope it raises, which tells a server to go on
without (the ASGI specification says so).
"""

BODY = b"Hello, world!\n"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(BODY)).encode())],
}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError(f"this app serves HTTP only, not {scope['type']!r}")
    await send(START)
    await send(RESPONSE)
