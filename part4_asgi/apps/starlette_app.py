"""A small Starlette app, to show that our ASGI server runs a real framework unmodified.

Plain Starlette: nothing in it knows which server runs it. A Starlette ``app`` *is* an
ASGI callable, ``await app(scope, receive, send)``, so any ASGI server serves it:

    python part4_asgi/server.py part4_asgi.apps.starlette_app:app
    uvicorn part4_asgi.apps.starlette_app:app --port 8888

The same routes as ``fastapi_app``, so the same requests can be sent to both on every server:

    GET  /items/{item_id}?q=Q   {"item_id": <int>, "q": Q}: a path and a query parameter
    POST /upload                a form with a field "name" and a file "file":
                                {"name", "filename", "size"} (multipart: python-multipart)
    POST /count                 {"size"}: the body read as it streams in, never whole
    GET  /stream                five lines, sent one by one (StreamingResponse: chunked)
    GET  /state                 what the app's lifespan put in the state: {"started": true}
    GET  /file                  a file (FileResponse): sent by path where the server offers it
"""

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

A_FILE = Path(__file__).resolve().parent / "hello_app.py"


@asynccontextmanager
async def lifespan(app):
    # Opened once when the server starts (a database pool, say), and each request sees it.
    yield {"started": True}


async def item(request):
    return JSONResponse({"item_id": int(request.path_params["item_id"]), "q": request.query_params.get("q")})


async def upload(request):
    async with request.form() as form:
        file = form["file"]
        content = await file.read()
        return JSONResponse({"name": form["name"], "filename": file.filename, "size": len(content)})


async def count(request):
    size = 0
    async for piece in request.stream():
        size += len(piece)
    return JSONResponse({"size": size})


async def lines():
    for number in range(5):
        yield b"piece %d\n" % number
        await asyncio.sleep(0.01)  # as a real stream would wait for its next event


async def stream(request):
    return StreamingResponse(lines(), media_type="text/plain")


async def state(request):
    return JSONResponse({"started": request.state.started})


async def file(request):
    return FileResponse(A_FILE, media_type="text/x-python")


app = Starlette(
    routes=[
        Route("/items/{item_id:int}", item),
        Route("/upload", upload, methods=["POST"]),
        Route("/count", count, methods=["POST"]),
        Route("/stream", stream),
        Route("/state", state),
        Route("/file", file),
    ],
    lifespan=lifespan,
)
