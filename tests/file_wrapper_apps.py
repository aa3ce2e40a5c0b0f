"""WSGI apps that return files, for the wsgi.file_wrapper tests. The file is named in the
query (``?path=...``): a test app, never to be served beyond loopback.

/file?path=P                          P through environ["wsgi.file_wrapper"], whole (HEAD too)
/range?path=P&start=S&length=N        P seeked to S, wrapped, with Content-Length: N
/blocks?path=P                        P in 64 KiB reads by the app itself: no file wrapper
/pipe?size=N                          N bytes from a pipe, wrapped: sendfile cannot read it
/bytesio?size=N                       N bytes in a BytesIO, wrapped: it has no descriptor at all
/chunked?path=P                       P wrapped, without a Content-Length: the body is chunked

Every file these apps open says "closed NAME" on stderr when it is closed, so that a test
can see that the server called the wrapper's close().
"""

import io
import os
import sys
import threading
from urllib.parse import parse_qs

from tests.slow_reader_apps import expected_body

BLOCK = 65536


class LoggedFile(io.FileIO):
    """A file that says on stderr when it is closed (the server's log is its stderr)."""

    label = None  # what to call it there, if not its name

    def close(self):
        if not self.closed:
            sys.stderr.write(f"closed {self.label or self.name}\n")
            sys.stderr.flush()
        super().close()


class LoggedBytesIO(io.BytesIO):
    def close(self):
        if not self.closed:
            sys.stderr.write("closed bytesio\n")
            sys.stderr.flush()
        super().close()


def query(environ):
    return {name: values[0] for name, values in parse_qs(environ["QUERY_STRING"]).items()}


def start(start_response, length=None):
    headers = [("Content-Type", "application/octet-stream")]
    if length is not None:
        headers.append(("Content-Length", str(length)))
    start_response("200 OK", headers)


def whole_file(environ, start_response):
    file = LoggedFile(query(environ)["path"])
    start(start_response, os.fstat(file.fileno()).st_size)
    return environ["wsgi.file_wrapper"](file, BLOCK)  # for HEAD too: the server sends no body


def file_range(environ, start_response):
    asked = query(environ)
    file = LoggedFile(asked["path"])
    file.seek(int(asked["start"]))
    start(start_response, int(asked["length"]))
    return environ["wsgi.file_wrapper"](file, BLOCK)


def blocks(environ, start_response):
    path = query(environ)["path"]
    start(start_response, os.path.getsize(path))
    return read_blocks(path)


def read_blocks(path):
    with open(path, "rb") as file:
        while block := file.read(BLOCK):
            yield block


def pipe(environ, start_response):
    body = expected_body(int(query(environ)["size"]))
    reader, writer = os.pipe()
    threading.Thread(target=write_and_close, args=(writer, body), daemon=True).start()
    start(start_response, len(body))
    file = LoggedFile(reader)
    file.label = "pipe"  # (its name would be a descriptor's number)
    return environ["wsgi.file_wrapper"](file, BLOCK)


def write_and_close(fd, data):
    with open(fd, "wb") as end:
        end.write(data)


def bytesio(environ, start_response):
    body = expected_body(int(query(environ)["size"]))
    start(start_response, len(body))
    return environ["wsgi.file_wrapper"](LoggedBytesIO(body), BLOCK)


def chunked(environ, start_response):
    start(start_response)
    return environ["wsgi.file_wrapper"](LoggedFile(query(environ)["path"]), BLOCK)


ROUTES = {
    "/file": whole_file,
    "/range": file_range,
    "/blocks": blocks,
    "/pipe": pipe,
    "/bytesio": bytesio,
    "/chunked": chunked,
}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
