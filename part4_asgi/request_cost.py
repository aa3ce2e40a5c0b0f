"""What one request costs a server's own code: ours against uvicorn's, measured in process.

    python part4_asgi/request_cost.py [--requests N] [--rounds R] [--out DIR]

``bench.py --asgi`` measures whole servers from outside: wrk, the kernel's TCP and the
system calls share the two cores with the server, and its figures say which server
answers more. This script asks where the difference comes from. Each server's protocol
object (the one its event loop makes per connection) is handed a keep-alive hello-world
request's bytes, through a stand-in transport that counts the responses and sends
nothing; the loop turns once per request, so the app's task runs. No client, and no
system call but the loop's turn (one ``epoll_wait`` a request, for every kind alike): what
is left is the server's own code, the loop's turn and the app. What this leaves out is the
system calls a server's writes would make: the transport counts them (``writes``), and
ours writes a response in one piece where uvicorn writes its head and its body apart.

* ``asgi``: ours (server.py's ``ASGIProtocol``, part 2's ``Connection`` inside);
* ``uvicorn-httptools`` and ``uvicorn-h11``: uvicorn's two protocols, its parser in C
  and in pure Python;
* ``floor``: a protocol that creates a task and calls the app, and does no HTTP at all:
  what any asyncio server pays, whatever it does;
* ``asgi-fastapi`` and ``uvicorn-fastapi``: ours and uvicorn (httptools) serving the
  FastAPI app's JSON endpoint, ``GET /items/1``, as bench.py's rows of those names do.

And the request parsers alone, fed the same bytes: ``parser:asgi`` (part 2's
``RequestParser``), ``parser:httptools``, ``parser:h11``.

Two figures each: CPU microseconds per request (the median of the rounds, the kinds
taking turns, as bench.py's servers do), which depends on the machine and its load; and
Python function calls per request (the profiler's ``call`` events: each Python frame
entered, a coroutine resumed included), which does not depend on the machine, only on the
versions of Python and of the servers' packages. It writes ``request_cost.csv``.
"""

import argparse
import asyncio
import csv
import socket
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import OneLineParser, Settings, load_app, positive_int
from part2_wsgi.connection import Deadlines
from part2_wsgi.protocol import RequestParser
from part2_wsgi.wsgi import http_date
from part4_asgi import server

# The hello app answers any path; FastAPI's JSON endpoint is this one.
REQUEST = b"GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
HELLO, FASTAPI = "part4_asgi.apps.hello_app:app", "part4_asgi.apps.fastapi_app:app"
BODIES = {HELLO: b"Hello, world!\n", FASTAPI: b'{"item_id":1,"q":null}'}  # what each app answers
SERVERS = ("asgi", "uvicorn-httptools", "uvicorn-h11", "floor", "asgi-fastapi", "uvicorn-fastapi")
PARSERS = ("parser:asgi", "parser:httptools", "parser:h11")
WARM_UP = 200  # requests before the count: imports done, caches filled
COLUMNS = ("kind", "microseconds_per_request", "lowest", "highest", "python_calls_per_request", "python")


class StandInTransport(asyncio.Transport):
    """What a protocol writes to goes nowhere; the writes, each status line and each time
    the app's body ends a write are counted. A real socket (connected on loopback, never
    read) answers the protocols' questions about it."""

    def __init__(self, sock, body):
        super().__init__()
        self.extra = {"socket": sock, "peername": sock.getpeername(), "sockname": sock.getsockname()}
        self.body, self.closing = body, False
        self.writes, self.bodies, self.statuses = 0, 0, Counter()

    @property
    def responses(self):
        """The requests answered 200 with the app's body."""
        return min(self.statuses[b"200"], self.bodies)

    def get_extra_info(self, name, default=None):
        return self.extra.get(name, default)

    def write(self, data):
        self.writes += bool(data)  # (a real transport makes no system call for nothing)
        if data.startswith(b"HTTP/1.1 "):
            self.statuses[bytes(data[9:12])] += 1
        self.bodies += data.endswith(self.body)

    def get_write_buffer_size(self):
        return 0

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def can_write_eof(self):
        return True

    def write_eof(self):
        pass


# --- each server's protocol, made as its loop makes it -------------------------------------


def ours(loop, listener, app):
    settings = Settings(deadlines=Deadlines.for_server(one_at_a_time=False), access_log=False)
    settings.root_path, settings.max_body = "", server.MAX_BODY
    asgi_server = server.ASGIServer(listener, app, settings)
    asgi_server.loop = loop  # (serve_forever sets it; nothing here serves)
    return lambda: server.ASGIProtocol(asgi_server)


def uvicorn(http):
    def make(loop, listener, app):
        import uvicorn
        from uvicorn.server import ServerState

        config = uvicorn.Config(app, http=http, loop="asyncio", access_log=False, lifespan="off")
        config.load()
        state = ServerState()
        # Its Date and Server headers, as uvicorn's server sets them once a second: on the
        # wire, its responses carry them, as ours do.
        state.default_headers = [(b"date", http_date().encode()), *config.encoded_headers]
        protocol = config.http_protocol_class
        return lambda: protocol(config=config, server_state=state, app_state={})

    return make


def floor(loop, listener, app):
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    class Floor(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            loop.create_task(app({"type": "http"}, receive, self.send))

        async def send(self, message):
            if message["type"] == "http.response.body":
                self.transport.write(b"HTTP/1.1 200 OK\r\n\r\n" + message["body"])

    return Floor


PROTOCOLS = {  # kind: (how its loop makes the protocol, the app)
    "asgi": (ours, HELLO),
    "uvicorn-httptools": (uvicorn("httptools"), HELLO),
    "uvicorn-h11": (uvicorn("h11"), HELLO),
    "floor": (floor, HELLO),
    "asgi-fastapi": (ours, FASTAPI),
    "uvicorn-fastapi": (uvicorn("httptools"), FASTAPI),
}


async def serve(kind, requests):
    """CPU seconds for ``requests`` keep-alive requests on one connection, after a warm-up,
    and the transport, which counted what the protocol wrote."""
    make, app = PROTOCOLS[kind]
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            protocol = make(asyncio.get_running_loop(), listener, load_app(app))()
            transport = StandInTransport(accepted, BODIES[app])
            protocol.connection_made(transport)
            await send_requests(protocol, WARM_UP)
            started = time.process_time()
            await send_requests(protocol, requests)
            spent = time.process_time() - started
    if transport.responses != WARM_UP + requests:
        statuses = ", ".join(f"{status.decode()} x {count}" for status, count in transport.statuses.items())
        answered = f"{transport.responses} responses to {WARM_UP + requests} requests"
        raise RuntimeError(f"{kind}: {answered} (status lines: {statuses or 'none'})")
    return spent, transport


async def send_requests(protocol, count):
    for _ in range(count):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the loop's turn: the app's task runs


# --- the parsers alone -----------------------------------------------------------------


def parse_ours():
    parser = RequestParser()

    def parse():
        parser.feed(REQUEST)
        return parser.next_head()

    return parse


def parse_httptools():
    """What uvicorn asks httptools for: the URL, the headers, and the end of the head."""
    import httptools

    class Head:
        def on_message_begin(self):
            self.headers = []

        def on_url(self, url):
            self.url = url

        def on_header(self, name, value):
            self.headers.append((name.lower(), value))

        def on_headers_complete(self):
            self.method = parser.get_method()

    head = Head()
    parser = httptools.HttpRequestParser(head)

    def parse():
        parser.feed_data(REQUEST)
        return head

    return parse


def parse_h11():
    import h11

    def parse():
        connection = h11.Connection(h11.SERVER)  # (one per request, its making counted: h11 wants a response first)
        connection.receive_data(REQUEST)
        return connection.next_event()

    return parse


PARSING = {"parser:asgi": parse_ours, "parser:httptools": parse_httptools, "parser:h11": parse_h11}


def parse_all(kind, requests):
    parse = PARSING[kind]()
    for _ in range(WARM_UP):
        parse()
    started = time.process_time()
    for _ in range(requests):
        parse()
    return time.process_time() - started


# --- measuring -------------------------------------------------------------------------------


def cpu_seconds(kind, requests):
    if kind in PARSING:
        return parse_all(kind, requests)
    spent, _ = asyncio.run(serve(kind, requests))
    return spent


def python_calls(kind, requests):
    """Python function calls per request, as the profiler counts them (calls of C functions
    not included): the same on any machine, loaded or not, for the same versions of Python
    and of the packages, within a fraction of a call."""
    cpu_seconds(kind, 0)  # imports and first-time work, uncounted
    once, twice = calls_in(cpu_seconds, kind, requests), calls_in(cpu_seconds, kind, 2 * requests)
    return (twice - once) / requests  # (the set-up's and the warm-up's calls cancel)


def calls_in(function, *args):
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return calls


def measure(kinds, requests, rounds):
    """Each kind's CPU per request in every round, the kinds taking turns, the order
    reversed every other round; then its Python calls per request."""
    spent = {kind: [] for kind in kinds}
    for number in range(rounds):
        for kind in kinds if number % 2 == 0 else reversed(kinds):
            spent[kind].append(cpu_seconds(kind, requests) / requests * 1e6)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return [
        {
            "kind": kind,
            "microseconds_per_request": round(statistics.median(spent[kind]), 2),
            "lowest": round(min(spent[kind]), 2),
            "highest": round(max(spent[kind]), 2),
            "python_calls_per_request": round(python_calls(kind, min(requests, 1000)), 1),
            "python": python,
        }
        for kind in kinds
    ]


def writable_folder(text):
    """--out's folder, made if need be, and request_cost.csv opened in it once: a folder
    that cannot take it is said before minutes of measuring, not after."""
    folder = Path(text)
    path = folder / "request_cost.csv"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "a"):  # (appending: a committed file is left as it is until the end)
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write request_cost.csv into {text!r}: {error.strerror}") from None
    if not existed:
        path.unlink()
    return folder


def main(argv=None):
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=positive_int, default=5000, help="per kind and round (default 5000)")
    parser.add_argument("--rounds", type=positive_int, default=11, help="rounds, the kinds taking turns (default 11)")
    parser.add_argument("--out", type=writable_folder, default=None, help="a folder to write request_cost.csv into")
    options = parser.parse_args(argv)
    rows = measure(SERVERS + PARSERS, options.requests, options.rounds)
    for row in rows:
        print(
            f"{row['kind']:18} {row['microseconds_per_request']:7.2f} µs a request "
            f"({row['lowest']:.2f} to {row['highest']:.2f}), {row['python_calls_per_request']:6.1f} Python calls"
        )
    if options.out:
        with open(options.out / "request_cost.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
