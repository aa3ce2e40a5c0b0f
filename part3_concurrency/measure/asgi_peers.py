"""The ASGI servers people deploy, started as bench.py starts ours: uvicorn and hypercorn.

    python part3_concurrency/measure/asgi_peers.py uvicorn --http h11 --loop asyncio APP [--host H] [--port P]
    python part3_concurrency/measure/asgi_peers.py hypercorn APP [--host H] [--port P]

bench.py waits for a ``Serving on http://HOST:PORT`` line to learn a server's port, and
stops it with Ctrl-C; uvicorn and hypercorn print lines of their own. So this script
opens the listening socket itself (``--port 0`` picks a free one, as for our servers),
hands it to the server, and prints the line once the server is ready to accept on it.
Each runs as it would in production, minus what bench.py keeps out of every server's
figures: one worker process, and no access log.
"""

import asyncio
import signal
import socket
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from part2_wsgi.command_line import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    OneLineParser,
    create_listening_socket,
    load_app,
    port_number,
    url_host,
)


def serving(listener):
    host, port = listener.getsockname()[:2]
    print(f"Serving on http://{url_host(host)}:{port}", flush=True)


def serve_uvicorn(spec, listener, http, loop):
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            serving(listener)  # after the app's lifespan startup, with the socket accepted on

    config = uvicorn.Config(spec, http=http, loop=loop, access_log=False, log_level="warning", workers=1)
    AnnouncingServer(config).run(sockets=[listener])


def serve_hypercorn(spec, listener):
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]  # our socket: its port is known before it serves
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    app = load_app(spec)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # hypercorn listens on the socket the moment serve() starts, and the socket already
        # queues connections: announcing it first loses none.
        loop.call_soon(serving, listener)
        await serve(app, config, shutdown_trigger=stop.wait)

    asyncio.run(main())


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=["uvicorn", "hypercorn"])
    parser.add_argument("app", metavar="APP", help="module:callable, an ASGI app")
    parser.add_argument("--http", choices=["h11", "httptools"], default="httptools", help="uvicorn's HTTP parser")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio", help="uvicorn's event loop")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # Made as our servers make it, then wrapped again so that Python asks the kernel its
    # protocol (TCP) instead of keeping the 0 it was created with: asyncio turns Nagle's
    # algorithm off (TCP_NODELAY) only on the connections of a socket it knows is TCP, as
    # the socket uvicorn would bind itself is. Without it, a response written in two
    # pieces (head, then body) waits for the client's delayed ACK, some 40 ms.
    listener = socket.socket(fileno=create_listening_socket(args.host, args.port).detach())
    if args.server == "uvicorn":
        serve_uvicorn(args.app, listener, args.http, args.loop)
    else:
        serve_hypercorn(args.app, listener)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
