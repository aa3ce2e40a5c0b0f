"""Lesson 3, the other side of the experiment: the same apps on servers we did not write.

WSGI's promise is that any server runs any app. ``server.py`` is our half of the
test; this script is the other half. It serves a WSGI app on one of two servers
someone else wrote:

* ``wsgiref``: the reference server in Python's standard library
  (``wsgiref.simple_server``), single-threaded, like ours;
* ``waitress``: a production server, an event loop that hands each request to a pool
  of worker threads.

    python part2_wsgi/mixmatch.py wsgiref  part2_wsgi.apps.demo_app:app
    python part2_wsgi/mixmatch.py waitress part2_wsgi.apps.flask_app:app --port 0
    python part2_wsgi/mixmatch.py waitress part2_wsgi.apps.django_app:application

It keeps the same contract as this workshop's servers, so the notebook (and the
harness) start and stop it the same way: ``--host`` and ``--port`` (``0`` picks a free
port), a first line ``Serving on http://HOST:PORT`` once it listens, and exit status 0
on Ctrl-C or SIGTERM. Neither server is told anything about the app it runs, and the
app is not told which server runs it: that is the whole point.
"""

import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from part2_wsgi.serving import AppLoadError, OneLineParser, load_app, make_parser, url_host


class QuietHandler(WSGIRequestHandler):
    """wsgiref's request handler without its per-request log line (errors still show)."""

    def log_request(self, code="-", size="-"):
        pass


def serve_wsgiref(app, host, port):
    server = make_server(host, port, app, handler_class=QuietHandler)
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


SERVERS = {"wsgiref": serve_wsgiref, "waitress": serve_waitress}


def main(argv=None):
    parser = OneLineParser(description="Serve a WSGI app on a server this workshop did not write.")
    servers = parser.add_subparsers(dest="server", metavar="SERVER", required=True)
    for name in SERVERS:
        # Each server takes the same APP, --host and --port as the workshop's servers.
        servers.add_parser(name, help=f"serve with {name}", add_help=False, parents=[make_parser(f"Serve a WSGI app with {name}.")])
    args = parser.parse_args(argv)
    try:
        app = load_app(args.app)
    except AppLoadError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    # As in serving.run: SIGTERM stops the server the same clean way as Ctrl-C.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        SERVERS[args.server](app, args.host, args.port)
    except OSError as error:
        print(f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
