"""A small FastAPI app, to show that our ASGI server runs FastAPI unmodified.

FastAPI is Starlette with types: parameters are read from the signature, checked and
converted (``item_id: int``), and the answer is JSON. Its ``app`` is an ASGI callable:

    python part4_asgi/server.py part4_asgi.apps.fastapi_app:app
    uvicorn part4_asgi.apps.fastapi_app:app --port 8888

The same routes as ``starlette_app`` (its docstring lists them). Every view is ``async
def``: FastAPI runs a plain ``def`` view on a thread pool, and that is the thread hand-off
an ASGI server is meant to spare.
"""

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse

A_FILE = Path(__file__).resolve().parent / "hello_app.py"


@asynccontextmanager
async def lifespan(app):
    yield {"started": True}


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/upload")
async def upload(name: str = Form(...), file: UploadFile = File(...)):  # noqa: B008 (FastAPI's own idiom)
    content = await file.read()
    return {"name": name, "filename": file.filename, "size": len(content)}


@app.post("/count")
async def count(request: Request):
    size = 0
    async for piece in request.stream():
        size += len(piece)
    return {"size": size}


async def lines():
    for number in range(5):
        yield b"piece %d\n" % number
        await asyncio.sleep(0.01)


@app.get("/stream")
async def stream():
    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/state")
async def state(request: Request):
    return {"started": request.state.started}


@app.get("/file")
async def file():
    return FileResponse(A_FILE, media_type="text/x-python")
