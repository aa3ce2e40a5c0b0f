"""The hand-off: what a small file costs when the select loop gives it to a worker thread.

    python part3_concurrency/measure/hand_off.py [--requests N] [--out DIR]

The select server serves the same 10 KB file two ways:

* **before**: the files app behind an APP (``--files DIR`` and the hello app): every
  request goes to a worker thread, which runs the files app and posts the response back
  to the loop, as in any server that hands its app to a pool;
* **after**: ``--files DIR`` alone: the loop runs the files app itself
  (``loop_tools.runs_the_app_in_the_loop``).

One client, alone, asks for the file N times on one kept-alive connection, after a
warm-up: the file is in the page cache. (A file the cache lacks is read from the disk,
and that read blocks whichever thread makes it: the loop, after. ``O_NONBLOCK`` does
nothing for a regular file; nginx has ``aio threads`` for that. This measures the warm
case only.) Two things are measured:

1. **futex calls per request**: ``strace -f -c -e trace=futex`` attached to the server
   over N requests counts the calls threads make to wait for each other and to wake each
   other (the GIL, the queue of jobs). Without strace, this row is left empty.
2. **where the time of one request goes**, in microseconds: *parse* (the head to a
   ``Request``, and its environ) and *app* (``run_app`` with the files app: the call, the
   head, the body read, ``close()``) are timed in process, on the same file, best of 5
   rounds; the median round trip the client sees, less those two, is *the loop and the
   sockets* (the client's included); and *hand-off* is before's round trip less after's:
   the rest of the code is the same. Both servers run at once, their rounds interleaved,
   and each figure is its least disturbed round's: the machine may be busy meanwhile.

It writes ``hand_off.csv``: one row per way and figure.
"""

import argparse
import csv
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

if __name__ == "__main__":  # run by path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import start_server
from part2_wsgi.apps.files_app import FilesApp
from part2_wsgi.connection import Connection
from part2_wsgi.wsgi import build_environ, run_app
from part3_concurrency.measure.files_bench import FILE_NAMES, HELLO_APP, SMALL_BYTES, make_folder

ROUNDS = 5
WARM_UP = 200  # requests before any timing: the file in the page cache, the code paths warm
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "bench"
WAYS = {"before": [HELLO_APP], "after": []}  # the select server's arguments besides --files DIR
PARTS = ("parse", "app", "loop_and_sockets", "hand_off")  # where a round trip goes, in this order
SELECT = "part3_concurrency/select_server.py"


def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


# --- in process: the parts every way shares -----------------------------------------------------


def parse_and_app_seconds(folder, path, requests):
    """(parse, app): seconds per request, with no socket and no thread, from the round of
    ``requests`` that took least in all (the least disturbed of ``ROUNDS``)."""
    app = FilesApp(folder)
    raw = request_bytes(path)
    best = None
    for _ in range(ROUNDS):
        http, parse, app_time = Connection(), 0.0, 0.0
        for _ in range(requests):
            started = time.perf_counter()
            http.receive_data(raw)
            environ = build_environ(http.next_event(), server_address=("127.0.0.1", 8888))
            parsed = time.perf_counter()
            run_app(app, environ, http, lambda data: None, lambda file, offset, count: count)
            parse, app_time = parse + parsed - started, app_time + time.perf_counter() - parsed
        if best is None or parse + app_time < sum(best):
            best = (parse, app_time)
    return best[0] / requests, best[1] / requests


# --- over a socket: the round trip, and the futex calls ------------------------------------------


class Client:
    """One kept-alive connection that asks for ``path`` again and again."""

    def __init__(self, address, path):
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = request_bytes(path)

    def get(self):
        self.sock.sendall(self.request)
        received = b""
        while b"\r\n\r\n" not in received:
            received += self.recv()
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head)[1])
        while len(body) < length:
            body += self.recv()
        return body

    def recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data

    def close(self):
        self.sock.close()


def round_trip_seconds(client, requests):
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def futex_calls(pid, client, requests):
    """futex calls the server's threads make over ``requests`` requests, or None without strace."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as summary:
        tracer = subprocess.Popen(
            [strace, "-f", "-c", "-e", "trace=futex", "-o", summary.name, "-p", str(pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = tracer.stderr.readline()  # "strace: Process N attached": tracing from here on
        if "attached" not in line:
            tracer.kill()
            tracer.wait()
            print(f"strace could not attach: {line.strip()}", file=sys.stderr)
            return None
        time.sleep(0.2)  # its other threads are attached in turn
        for _ in range(requests):
            client.get()
        tracer.send_signal(signal.SIGINT)
        tracer.communicate(timeout=30)
        found = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?futex$", summary.read(), re.MULTILINE)
    return int(found[1]) if found else 0


def measure_ways(folder, path, requests):
    """{way: (round trip in seconds, futex calls per request or None)}. Both servers run at
    once; their rounds interleave, the order swapped each round, and each way keeps its
    least disturbed round (the lowest median)."""
    with ExitStack() as stack:
        clients = {}
        for way, extra in WAYS.items():
            server = stack.enter_context(start_server(SELECT, "--quiet", "--files", folder, *extra))
            clients[way] = (server, Client(server.address, path))
            stack.callback(clients[way][1].close)
            for _ in range(WARM_UP):
                clients[way][1].get()
        trips = {way: float("inf") for way in WAYS}
        for number in range(ROUNDS):
            for way in list(WAYS)[:: 1 if number % 2 == 0 else -1]:
                trips[way] = min(trips[way], round_trip_seconds(clients[way][1], requests))
        traced = min(requests, 500)  # strace slows every call it sees: fewer will do
        calls = {way: futex_calls(server.pid, client, traced) for way, (server, client) in clients.items()}
    return {way: (trips[way], None if calls[way] is None else calls[way] / traced) for way in WAYS}


# --- the figures ------------------------------------------------------------------------------


def measure(requests):
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        folder = make_folder(Path(tmp) / "site", SMALL_BYTES, 0)
        path = "/" + FILE_NAMES["small"]
        parse, app = parse_and_app_seconds(folder, path, requests)
        measured = measure_ways(folder, path, requests)
    after_trip = measured["after"][0]
    rows = []
    for way, (round_trip, futexes) in measured.items():
        parts = dict(zip(PARTS, (parse, app, after_trip - parse - app, round_trip - after_trip), strict=True))
        rows += [(way, part, f"{seconds * 1e6:.1f}", "µs") for part, seconds in parts.items()]
        rows.append((way, "round_trip", f"{round_trip * 1e6:.1f}", "µs"))
        rows.append((way, "futex_calls_per_request", "" if futexes is None else f"{futexes:.1f}", "calls"))
    return rows


def write_csv(rows, out):
    out.mkdir(parents=True, exist_ok=True)
    target = out / "hand_off.csv"
    with open(target, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["way", "figure", "value", "unit", "cpus", "python"])
        for row in rows:
            writer.writerow([*row, os.cpu_count(), sys.version.split()[0]])
    return target


def read_csv(path):
    """{(way, figure): value} from a hand_off.csv: what the notebook and the tests read."""
    with open(path, newline="") as file:
        return {(row["way"], row["figure"]): row["value"] for row in csv.DictReader(file)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement (default 2000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the CSV goes (default {DEFAULT_OUT})")
    options = parser.parse_args(argv)
    rows = measure(options.requests)
    for way, figure, value, unit in rows:
        print(f"{way:7} {figure:24} {value or '-':>8} {unit}")
    print(f"wrote {write_csv(rows, options.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
