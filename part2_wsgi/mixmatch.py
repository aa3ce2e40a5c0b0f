"""Lesson 3, the other side of the experiment: the same apps on servers we did not write.

WSGI's promise is that any server runs any app. ``server.py`` is our half of the
test; this script is the other half. It serves a WSGI app on one of four servers
someone else wrote (three programs, the last in two kinds of worker):

* ``wsgiref``: the reference server in Python's standard library
  (``wsgiref.simple_server``), single-threaded, like ours;
* ``waitress``: a production server, an event loop that hands each request to a pool
  of worker threads;
* ``gunicorn-sync`` and ``gunicorn-gthread``: gunicorn, the production server most
  Python sites run, with one worker process per core (``--workers``), each serving one
  connection at a time (sync) or several on threads (gthread). Unix only, like fork.

    python part2_wsgi/mixmatch.py wsgiref  part2_wsgi.apps.demo_app:app
    python part2_wsgi/mixmatch.py waitress part2_wsgi.apps.flask_app:app --port 0
    python part2_wsgi/mixmatch.py waitress part2_wsgi.apps.django_app:application

It keeps the same contract as this workshop's servers, so the notebook (and the
harness) start and stop it the same way: ``--host`` and ``--port`` (``0`` picks a free
port), a first line ``Serving on http://HOST:PORT`` once it listens, and exit status 0
on Ctrl-C or SIGTERM. No server is told anything about the app it runs, and the
app is not told which server runs it: that is the whole point. It takes only the
options it passes on: an APP, ``--host``, ``--port`` and, for gunicorn, ``--workers``;
``--files``, ``--quiet`` and ``--deadlines`` are our servers' own, and these servers
have their own ways (waitress and gunicorn keep no access log unless asked).
"""

import os
import signal
import sys
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import (
    DEFAULT_APP,
    DEFAULT_HOST,
    DEFAULT_PORT,
    AppLoadError,
    OneLineParser,
    count_option,
    load_app,
    port_number,
    url_host,
)


class QuietHandler(WSGIRequestHandler):
    """wsgiref's request handler without its per-request log line (errors still show)."""

    def log_request(self, code="-", size="-"):
        pass


class StoppableServer(WSGIServer):
    """wsgiref's server, stopped by a flag between requests.

    wsgiref's handler catches *every* exception an app or a write raises, KeyboardInterrupt
    included, and goes on serving: Ctrl-C in the middle of a request would be lost. So the
    signal only sets a flag, and the loop checks it between requests (every half second)."""

    stop_requested = False

    def service_actions(self):
        if self.stop_requested:
            raise KeyboardInterrupt


def serve_wsgiref(app, host, port):
    server = make_server(host, port, app, server_class=StoppableServer, handler_class=QuietHandler)

    def request_stop(signum, frame):
        server.stop_requested = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    with server:
        print(f"Serving on http://{url_host(host)}:{server.server_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def serve_waitress(app, host, port):
    import waitress  # only here: the rest of the workshop never needs it

    server = waitress.create_server(app, host=host, port=port)
    print(f"Serving on http://{url_host(host)}:{server.effective_port}", flush=True)
    try:
        server.run()  # returns on KeyboardInterrupt, after stopping its worker threads
    finally:
        server.close()


GTHREAD_THREADS = 4  # app threads in each gunicorn gthread worker


def serve_gunicorn(app, host, port, worker_class, workers):
    from gunicorn.app.base import BaseApplication  # only here: gunicorn is Unix-only

    def announce(arbiter):
        # gunicorn's hook once it listens; with port 0 the socket knows the real port.
        bound_port = arbiter.LISTENERS[0].sock.getsockname()[1]
        print(f"Serving on http://{url_host(host)}:{bound_port}", flush=True)

    class Gunicorn(BaseApplication):
        """gunicorn, configured in code rather than from its command line."""

        def load_config(self):
            settings = {
                "bind": f"{url_host(host)}:{port}",
                # --workers: one per core by default, as our prefork server has. gunicorn's own
                # default is 1; its docs suggest 2 to 4 per core, starting from (2 x cores) + 1.
                "workers": workers,
                "worker_class": worker_class,
                "threads": GTHREAD_THREADS if worker_class == "gthread" else 1,
                "when_ready": announce,
                "loglevel": "warning",
            }
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    # gunicorn's arbiter installs its own signal handlers: Ctrl-C and SIGTERM stop it.
    Gunicorn().run()


# Modules that exist on Unix only: gunicorn imports them, so it cannot start on Windows.
UNIX_ONLY_MODULES = {"fcntl", "grp", "pwd", "resource", "termios"}


def cannot_start(server, error):
    """One line on why ``server`` cannot be imported here: a missing package, or Windows."""
    if error.name in UNIX_ONLY_MODULES:
        return f"{server} runs on Unix only (it needs the {error.name} module); try waitress or wsgiref"
    return (
        f"{server} needs {error.name!r}, which is not installed; "
        "install the workshop's requirements: python -m pip install -r requirements.txt"
    )


SERVERS = {
    "wsgiref": serve_wsgiref,
    "waitress": serve_waitress,
    "gunicorn-sync": lambda app, host, port, workers: serve_gunicorn(app, host, port, "sync", workers),
    "gunicorn-gthread": lambda app, host, port, workers: serve_gunicorn(app, host, port, "gthread", workers),
}


def server_options(parser):
    """APP, --host and --port, as the workshop's servers take them: the options every
    server here honours. (Not --files, --quiet nor --deadlines: nothing would pass them on.)"""
    app_help = f"the WSGI app, as module:callable (default {DEFAULT_APP})"
    parser.add_argument("app", nargs="?", default=DEFAULT_APP, metavar="APP", help=app_help)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    return parser


def main(argv=None):
    parser = OneLineParser(description="Serve a WSGI app on a server this workshop did not write.")
    servers = parser.add_subparsers(dest="server", metavar="SERVER", required=True)
    for name in SERVERS:
        described = servers.add_parser(name, help=f"serve with {name}", description=f"Serve a WSGI app with {name}.")
        server = server_options(described)
        if name.startswith("gunicorn"):  # bench.py compares gunicorn and our prefork server at equal workers
            count_option("--workers", os.cpu_count() or 1, "worker processes")(server)
    args = parser.parse_args(argv)
    try:
        app = load_app(args.app)
    except AppLoadError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    # As in command_line.run: SIGTERM stops the server the same clean way as Ctrl-C.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        workers = (args.workers,) if args.server.startswith("gunicorn") else ()
        SERVERS[args.server](app, args.host, args.port, *workers)
    except ModuleNotFoundError as error:
        print(f"{parser.prog}: error: {cannot_start(args.server, error)}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
