"""Lesson 5, the other side of the experiment: the same ASGI apps on servers we did not write.

ASGI keeps WSGI's promise: any server runs any app. ``server.py`` is our half of the
test; this script is the other half. It serves an ASGI app on a server someone else wrote:

* ``uvicorn-h11``, ``uvicorn-httptools``, ``uvicorn-uvloop``: uvicorn, the reference ASGI
  server, with h11 (a pure-Python parser, as ours is), with httptools (a C parser, on
  asyncio's loop), and with httptools on uvloop (a C loop): what ``uvicorn app`` runs
  when both are installed;
* ``hypercorn``: the other ASGI server of the specification's authors (h11 too).

    python part4_asgi/mixmatch.py uvicorn-httptools part4_asgi.apps.fastapi_app:app
    python part4_asgi/mixmatch.py hypercorn part4_asgi.apps.django_app:application --port 0

It keeps the workshop's contract, so the notebook, the tests and the benchmark start and
stop these servers as they start ours: ``--host`` and ``--port`` (``0`` picks a free port),
a first line ``Serving on http://HOST:PORT`` once it listens (the socket is ours, made
as our servers make theirs, and handed over), and exit status 0 on Ctrl-C or SIGTERM once
it serves (while an app's startup hangs, uvicorn waits for it and takes no notice of
either, and hypercorn waits up to its startup timeout, 60 s; ours stops). It
takes only the options it passes on: an APP, ``--host`` and ``--port``; ``--quiet``,
``--root-path`` and ``--deadlines`` are our server's own, and these servers keep no
access log here.

And ``table`` runs the experiment: five apps (a bare ASGI app, Starlette, FastAPI,
Django's ASGI application, and Flask, a WSGI app, through an adapter) on ours, uvicorn
and hypercorn, each pair a real process on a free port, the same requests to each app on
every server, one table of what came back, with the threads each server's process had
at the end: where the thread pool comes back.

    python part4_asgi/mixmatch.py table
    python part4_asgi/mixmatch.py table --servers ours,hypercorn --apps fastapi,flask
"""

import asyncio
import http.client
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import start_server
from part2_wsgi.command_line import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    AppLoadError,
    OneLineParser,
    create_listening_socket,
    load_app,
    port_number,
    url_host,
)
from part4_asgi.server import DEFAULT_APP

# --- serving one app on someone else's server ---------------------------------------------


def announce(listener):
    host, port = listener.getsockname()[:2]
    print(f"Serving on http://{url_host(host)}:{port}", flush=True)


def serve_uvicorn(app, listener, http, loop):
    """uvicorn on our listening socket, with its parser (``http``) and its loop; it prints
    ``Serving on`` once the app's lifespan startup is done, as ours does."""
    import uvicorn  # only here: the rest of the workshop never needs it

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:  # (not when the app's startup failed: uvicorn exits then)
                announce(listener)

    config = uvicorn.Config(app, http=http, loop=loop, lifespan="auto", log_level="warning", access_log=False)
    # uvicorn catches Ctrl-C and SIGTERM itself, shuts down, then raises the signal again
    # for whoever comes after it: KeyboardInterrupt, here, which main() takes as the end.
    Server(config).run(sockets=[listener])


def serve_hypercorn(app, listener):
    """hypercorn on our listening socket (handed over by its descriptor, ``fd://``). It has
    no hook for "listening": the socket listens already, so a client that connects before
    the app has started waits in the backlog, and is served."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{os.dup(listener.fileno())}"]  # (a copy: hypercorn closes the one it is given)
    config.loglevel = "WARNING"
    config.graceful_timeout = 1.0  # as our servers' grace period
    config.accesslog = None

    async def run():
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        announce(listener)
        await serve(app, config, shutdown_trigger=stop.wait)

    asyncio.run(run())


SERVERS = {
    "uvicorn-h11": lambda app, listener: serve_uvicorn(app, listener, "h11", "asyncio"),
    "uvicorn-httptools": lambda app, listener: serve_uvicorn(app, listener, "httptools", "asyncio"),
    "uvicorn-uvloop": lambda app, listener: serve_uvicorn(app, listener, "httptools", "uvloop"),
    "hypercorn": serve_hypercorn,
}


def serve(name, spec, host, port):
    """Serve the app ``spec`` with the server ``name``; return the exit status."""
    try:
        app = load_app(spec)
    except AppLoadError as error:
        print(f"mixmatch.py: error: {error}", file=sys.stderr)
        return 2
    try:
        # Made as our servers make it, then wrapped again from its descriptor so that Python
        # asks the kernel its protocol (TCP) instead of keeping the 0 it was created with:
        # asyncio turns Nagle's algorithm off (TCP_NODELAY) only on the connections of a
        # socket it knows is TCP, as the socket uvicorn would bind itself is. Without it, a
        # response written in two pieces (head, then body) waits for the client's delayed
        # ACK (docs/bench/tuning.md, "A fair start for uvicorn").
        listener = socket.socket(fileno=create_listening_socket(host, port).detach())
    except OSError as error:
        print(f"mixmatch.py: error: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        return 1
    try:
        with listener:
            SERVERS[name](app, listener)
    except ModuleNotFoundError as error:
        print(
            f"mixmatch.py: error: {name} needs {error.name!r}, which is not installed; "
            "install the workshop's requirements: python -m pip install -r requirements.txt",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        # Stopped: a second Ctrl-C (pressed again, as people do, while the server was still
        # shutting down) has nothing left to stop, and must not end the exit with a traceback.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    return 0


# --- the table: every app on every server ----------------------------------------------------


class Probe(NamedTuple):
    """One request of a table's row: what it is called, how to send it, what it should get."""

    label: str
    method: str
    path: str
    body: object = None  # bytes, or an iterable of bytes (sent chunked)
    headers: dict = {}
    expected: int = 200


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BOUNDARY = "workshop-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
UPLOAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
    f"Content-Type: text/plain\r\n\r\nhello, upload\r\n--{BOUNDARY}--\r\n"
).encode()

# The same requests to an app on every server; apps of one family share their routes.
PROBES = {
    "bare": [Probe("GET /", "GET", "/"), Probe("POST / (ignored body)", "POST", "/", b"x" * 1000)],
    "starlette": [
        Probe("GET /items/7?q=x", "GET", "/items/7?q=x"),
        Probe("POST /upload (form)", "POST", "/upload", UPLOAD, {"Content-Type": MULTIPART}),
        Probe("POST /count (chunked)", "POST", "/count", [b"x" * 10_000] * 10),
        Probe("GET /stream", "GET", "/stream"),
        Probe("GET /state", "GET", "/state"),
        Probe("GET /file", "GET", "/file"),
    ],
    "part2": [
        Probe("GET /?name=Ada", "GET", "/?name=Ada"),
        Probe("POST / (form)", "POST", "/", b"name=Ada&message=Hello", FORM),
        Probe("POST /json", "POST", "/json", b'{"name": "Ada"}', {"Content-Type": "application/json"}),
        Probe("GET /error", "GET", "/error", expected=500),
        Probe("GET /nope", "GET", "/nope", expected=404),
    ],
}


class App(NamedTuple):
    spec: str  # module:app
    routes: str  # its family in PROBES
    label: str


APPS = {
    "bare": App("part4_asgi.apps.hello_app:app", "bare", "bare ASGI app"),
    "starlette": App("part4_asgi.apps.starlette_app:app", "starlette", "Starlette"),
    "fastapi": App("part4_asgi.apps.fastapi_app:app", "starlette", "FastAPI"),
    "django": App("part4_asgi.apps.django_app:application", "part2", "Django (ASGI)"),
    "flask": App("part4_asgi.apps.flask_app:app", "part2", "Flask (WSGI, by a2wsgi)"),
}
TABLE_SERVERS = {  # name: the script, and the arguments before APP
    "ours": ["part4_asgi/server.py", "--quiet"],
    "uvicorn": ["part4_asgi/mixmatch.py", "uvicorn-httptools"],
    "hypercorn": ["part4_asgi/mixmatch.py", "hypercorn"],
}
STARTS_AT_ONCE = 3  # servers started side by side: each spends a second importing its framework


class Answer(NamedTuple):
    status: int
    server: str  # the Server header, the server's signature
    body: bytes


class Outcome(NamedTuple):
    app: str
    server: str
    answers: list  # an Answer per probe
    threads: object  # the server process's threads after the requests (None where /proc is not)
    exit_code: int

    @property
    def passed(self):
        return [answer.status for answer in self.answers] == [probe.expected for probe in PROBES[APPS[self.app].routes]]


def ask(address, probe):
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        body = probe.body
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(probe.method, probe.path, body=body, headers=probe.headers, encode_chunked=chunked)
        response = conn.getresponse()
        return Answer(response.status, response.getheader("Server", ""), response.read())
    finally:
        conn.close()


def thread_count(pid):
    """The threads of process ``pid``, from Linux's /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    except OSError:
        return None


def try_pair(app, server):
    with start_server(*TABLE_SERVERS[server], APPS[app].spec, timeout=30) as running:
        answers = [ask(running.address, probe) for probe in PROBES[APPS[app].routes]]
        threads = thread_count(running.pid)
    return Outcome(app, server, answers, threads, running.returncode)


def run_table(apps=tuple(APPS), servers=tuple(TABLE_SERVERS)):
    """Every app on every server; the Outcomes, app by app."""
    pairs = [(app, server) for app in apps for server in servers]
    with ThreadPoolExecutor(STARTS_AT_ONCE) as pool:
        return list(pool.map(lambda pair: try_pair(*pair), pairs))


def table_rows(outcomes):
    """A row per app and server: its status codes (and a check), its threads, its Server header."""
    return [
        [
            APPS[outcome.app].label,
            outcome.server,
            " ".join(str(answer.status) for answer in outcome.answers) + ("  ✓" if outcome.passed else "  ✗"),
            "-" if outcome.threads is None else outcome.threads,
            outcome.answers[0].server or "-",
            outcome.exit_code,
        ]
        for outcome in outcomes
    ]


TABLE_HEADER = ["app", "server", "status codes", "threads", "Server header", "exit code"]


def print_table(outcomes):
    for family in dict.fromkeys(APPS[outcome.app].routes for outcome in outcomes):
        apps = [app.label for app in APPS.values() if app.routes == family]
        probes = PROBES[family]
        print(f"{', '.join(apps)}: {'; '.join(probe.label for probe in probes)}")
        print(f"  expected: {' '.join(str(probe.expected) for probe in probes)}")
    rows = [TABLE_HEADER, *table_rows(outcomes)]
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(TABLE_HEADER))]
    for row in rows:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


# --- the command line ------------------------------------------------------------------------------


def names(known):
    """An argparse type: a comma-separated list of names among ``known``."""

    def parse(text):
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown or not chosen:
            raise ValueError(text)
        return chosen

    parse.__name__ = "list of " + ", ".join(known)  # (argparse names the type in its error)
    return parse


def main(argv=None):
    parser = OneLineParser(description="Serve an ASGI app on a server this workshop did not write, or compare them.")
    commands = parser.add_subparsers(dest="server", metavar="SERVER", required=True)
    for name in SERVERS:
        one = commands.add_parser(name, help=f"serve with {name}", description=f"Serve an ASGI app with {name}.")
        app_help = f"the ASGI app, as module:app (default {DEFAULT_APP})"
        one.add_argument("app", nargs="?", default=DEFAULT_APP, metavar="APP", help=app_help)
        one.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
        one.add_argument(
            "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
        )
    table = commands.add_parser(
        "table", help="every app on ours, uvicorn and hypercorn", description="Five apps on three servers: one table."
    )
    for option, known in (("--apps", list(APPS)), ("--servers", list(TABLE_SERVERS))):
        table.add_argument(option, type=names(known), default=known, help=f"some of {','.join(known)} (default all)")
    args = parser.parse_args(argv)
    if args.server == "table":
        outcomes = run_table(args.apps, args.servers)
        print_table(outcomes)
        return 0 if all(outcome.passed for outcome in outcomes) else 1
    # Ctrl-C and SIGTERM alike stop the server the same clean way (as command_line.run does).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    return serve(args.server, args.app, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
