"""The built-in demo app: plain WSGI, no framework, readable in one sitting.

Every server in parts 2 and 3 serves it when no APP is given. Each route shows one
thing a server must get right:

    GET  /                  hello, the environ this server built, and a form
    POST /                  the submitted form fields
    POST /echo              the request body, sent back as it came (uploads, chunked)
    POST /json              the JSON body, parsed and sent back
    GET  /sleep?seconds=S   waits S seconds, then answers (concurrency demos)
    GET  /cpu?ms=N          computes, in pure Python, for N ms of CPU time (the GIL, made visible); says which process
    GET  /stream            a generator body with no Content-Length (chunked framing)
    GET  /error             raises, so the server must answer 500 and carry on
    anything else           404

Run it on the workshop's server, on the standard library's, or on waitress:

    python part2_wsgi/server.py part2_wsgi.apps.demo_app:app
    python part2_wsgi/mixmatch.py wsgiref part2_wsgi.apps.demo_app:app
    python part2_wsgi/mixmatch.py waitress part2_wsgi.apps.demo_app:app

(``python -m wsgiref.simple_server`` would serve wsgiref's own demo app, not this one.
Notebook 02 mixes and matches servers and apps.)
"""

import html
import json
import math
import os
import time
from urllib.parse import parse_qs, parse_qsl

MAX_SLEEP = 10.0
MAX_CPU_MS = 10_000


HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def app(environ, start_response):
    """Route on method and path. Each route is itself a tiny WSGI app."""
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    # HEAD is GET without the body: the server, not the app, leaves the body out.
    route = ROUTES.get(("GET" if method == "HEAD" else method, path))
    if route is not None:
        return route(environ, start_response)
    allowed = [m for (m, p) in ROUTES if p == path]
    if allowed:
        return respond(
            start_response,
            "405 Method Not Allowed",
            TEXT,
            f"{path} takes {', '.join(allowed)}\n",
            [("Allow", ", ".join(allowed))],
        )
    return respond(start_response, "404 Not Found", TEXT, f"404 Not Found: nothing at {path}\n")


def respond(start_response, status, content_type, body, extra_headers=()):
    """Start the response and return the body as a one-item list (length known)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))), *extra_headers])
    return [data]


def read_body(environ):
    """Read exactly CONTENT_LENGTH bytes from wsgi.input, as PEP 3333 asks."""
    length = environ.get("CONTENT_LENGTH") or "0"
    return environ["wsgi.input"].read(int(length)) if length.isdigit() else b""


# --- the routes ------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
td, th {{ text-align: left; padding: 0 1em 0 0; vertical-align: top; }}
</style>
</head>
<body>
<h1>{title}</h1>
{content}
<h2>Send a form</h2>
<form method="post" action="/">
  <p><label>Name <input name="name" value="Ada"></label></p>
  <p><label>Message <input name="message" value="Hello, server!"></label></p>
  <p><button type="submit">POST it</button></p>
</form>
<h2>The environ this server built</h2>
{environ}
</body>
</html>
"""


def table(pairs):
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def page(environ, title, content):
    return PAGE.format(title=html.escape(title), content=content, environ=table(sorted(environ.items())))


def home(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    greeting = f"<p>Hello, {html.escape(query['name'][0])}!</p>" if "name" in query else "<p>Hello, world!</p>"
    server = html.escape(environ.get("SERVER_SOFTWARE", "an unnamed server"))
    return respond(
        start_response,
        "200 OK",
        HTML,
        page(environ, "Hello from the demo app", f"{greeting}<p>Served by {server}.</p>"),
    )


def submitted(environ, start_response):
    fields = parse_qsl(read_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
    return respond(start_response, "200 OK", HTML, page(environ, "You posted", table(fields)))


def echo(environ, start_response):
    content_type = environ.get("CONTENT_TYPE") or "application/octet-stream"
    return respond(start_response, "200 OK", content_type, read_body(environ))


def echo_json(environ, start_response):
    try:
        received = json.loads(read_body(environ))
    except ValueError as error:
        return respond(start_response, "400 Bad Request", JSON, json.dumps({"error": f"invalid JSON: {error}"}))
    return respond(start_response, "200 OK", JSON, json.dumps({"received": received, "framework": "none"}))


def sleep(environ, start_response):
    try:
        seconds = float(parse_qs(environ["QUERY_STRING"]).get("seconds", ["1"])[0])
    except ValueError:
        return respond(start_response, "400 Bad Request", TEXT, "seconds must be a number\n")
    seconds = min(max(seconds, 0.0), MAX_SLEEP)
    time.sleep(seconds)
    return respond(start_response, "200 OK", TEXT, f"slept {seconds:g}\n")


def cpu(environ, start_response):
    """Compute for N milliseconds of this thread's CPU time, then answer.

    CPU time, not wall-clock time: a thread that waits for the GIL is not computing, so
    four of these on four threads of one process take four times as long as one, and on
    four processes they share the machine's cores instead."""
    try:
        ms = float(parse_qs(environ["QUERY_STRING"]).get("ms", ["100"])[0])
    except ValueError:
        ms = math.nan
    if not math.isfinite(ms):
        return respond(start_response, "400 Bad Request", TEXT, "ms must be a number\n")
    ms = min(max(ms, 0.0), MAX_CPU_MS)
    done_at = time.thread_time() + ms / 1000
    rounds = 0
    while time.thread_time() < done_at:
        sum(number * number for number in range(1000))  # pure Python: it holds the GIL throughout
        rounds += 1
    # The process says who computed: on prefork, which worker took the request.
    return respond(start_response, "200 OK", TEXT, f"computed {ms:g} ms ({rounds} rounds) in process {os.getpid()}\n")


def stream(environ, start_response):
    """A generator body and no Content-Length: the server must frame it (chunked)."""
    start_response("200 OK", [("Content-Type", TEXT)])
    return (f"piece {number} of 5\n".encode() for number in range(1, 6))


def error(environ, start_response):
    raise RuntimeError("boom: /error raises on purpose, to show the server's 500")


ROUTES = {
    ("GET", "/"): home,
    ("POST", "/"): submitted,
    ("POST", "/echo"): echo,
    ("POST", "/json"): echo_json,
    ("GET", "/sleep"): sleep,
    ("GET", "/cpu"): cpu,
    ("GET", "/stream"): stream,
    ("GET", "/error"): error,
}
