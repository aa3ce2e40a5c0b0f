"""The smallest useful WSGI app: "Hello, world!" and nothing else.

Benchmarks serve this app on every server, ours and the production ones, so that the
figures measure the servers (parsing, environ, framing, socket calls) and not the app.
"""

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
