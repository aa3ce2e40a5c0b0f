"""The ASGI app the part 4 checks serve with a student's serve_asgi: bare ASGI, no framework.

Its lifespan takes half a second to start and stores ``state["ready"] = "yes"``, as a
real app opens its database pool there; then, by path:

/state         "ready yes": what the request's scope["state"] holds ("ready missing" without it)
/echo          the body, sent back a piece per piece received (more_body), as it arrives
/sleep         awaits one second, then "slept": two at once take one second, not two
/fail          raises before any response: the server answers 500
anything else  "hello from PATH"
"""

import asyncio

STARTUP_SECONDS = 0.5


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send, scope["state"])
    path = scope["path"]
    if path == "/fail":
        raise RuntimeError("this app fails on /fail, on purpose")
    if path == "/echo":
        return await echo(receive, send)
    if path == "/sleep":
        await asyncio.sleep(1)
        return await answer(send, "slept")
    if path == "/state":
        return await answer(send, f"ready {scope.get('state', {}).get('ready', 'missing')}")
    await answer(send, f"hello from {path}")


async def lifespan(receive, send, state):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await asyncio.sleep(STARTUP_SECONDS)
            state["ready"] = "yes"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def answer(send, text):
    body = text.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def echo(receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client left
        more = message.get("more_body", False)
        await send({"type": "http.response.body", "body": message.get("body", b""), "more_body": more})
        if not more:
            return
