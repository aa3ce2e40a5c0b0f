"""Lesson 4, the load client: many clients at once, and what each of them saw.

    python part3_concurrency/measure/client.py URL --concurrency C --requests N [--keep-alive]
                                       [--timeout S] [--timeline FILE.csv|FILE.json] [--quiet]

C client threads share N requests: each takes the next request number from a shared
counter, sends ``GET`` on its own connection, reads the whole response, and notes when
it started and when it ended. Exactly N requests are sent in total. From those notes:

* **Throughput** is requests completed per second of wall time: how much work the
  server gets through. **Latency** is how long one request took, seen by its client:
  what a user feels. They are different questions. A server can push many requests per
  second while some clients wait a long time (a queue), or answer each one quickly but
  few at once (no concurrency).
* **Percentiles**, not the average: p50 (the median) is the typical request; p99 is the
  one request in a hundred that waited longest, and with many users nearly everyone
  meets it now and then. One slow outlier moves the mean and hides in it; p99 and max
  show it. (Nearest rank: p90 is the latency that 90 % of requests did not exceed.)
* **The client can be the bottleneck.** This client is Python: sending, parsing and
  taking notes cost CPU, the GIL lets one of its threads run Python code at a time,
  and on a 2-core machine every cycle it spends is taken from the server. What you
  measure is the slower of the two. Measured on the workshop's 2-core machine, against
  the select server serving hello world (``--quiet``), keep-alive, on ``/``:

      python part3_concurrency/select_server.py part2_wsgi.apps.hello_app:app --quiet &
      python part3_concurrency/measure/client.py http://127.0.0.1:8888/ --concurrency 10 --requests 5000 --keep-alive

  it gets clearly less than wrk (``wrk -t2 -c10 -d3s``) gets from the same server (run
  both and compare): here the *client* sets the pace, and on 2
  cores every cycle it spends is taken from the server it measures. So use it for correctness,
  latency and timelines, and compare servers' throughput with wrk (``bench.py``): a C
  client, the usual yardstick, that takes fewer cycles from the server it measures.
* **Closed loop.** Each client sends its next request only when the previous answer
  has arrived, so a slow server is sent less work, and the queue it would build never
  shows in the numbers ("coordinated omission"). An open-loop tool (wrk2, say) sends at
  a fixed rate whatever happens, as real users do, and sees the queue.

``--keep-alive`` reuses one connection per client thread (reconnecting when the server
closes it); without it, every request opens a new connection, and its latency includes
the TCP handshake. ``--timeline FILE.csv`` (or ``.json``) writes one row per request:
client, index, start, end (seconds since the run began), status, error. Drawn as one
horizontal bar per request, they show which requests ran at the same time.

From Python (a notebook, a benchmark script):

    from part3_concurrency.measure.client import run_load, fetch
    result = run_load("http://127.0.0.1:8888/sleep?seconds=0.5", concurrency=4, requests=8)
    result.requests_per_second, result.latency_ms(99), result.errors, result.records[0]
    status, headers, body = fetch("http://127.0.0.1:8888/stream")

The standard library alone, and nothing of part 2's HTTP code (only its command-line
helpers): a load client is an independent peer, so a bug in the server's HTTP code
cannot hide behind the same bug here.
"""

import argparse
import csv
import json
import math
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from part2_wsgi.command_line import OneLineParser, positive_int

DEFAULT_TIMEOUT = 10.0
MAX_LINE = 65536  # longest status or header line we accept from a server
MAX_HEADERS = 100
TIMELINE_FORMATS = (".csv", ".json")


# --- the URL and the request ------------------------------------------------------------


class Target(NamedTuple):
    host: str
    port: int
    request: bytes  # the request's bytes, built once and sent as they are every time


def parse_url(url, keep_alive=False):
    """``http://host[:port]/path?query`` -> Target. ValueError, with a clear message, else."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        what = "https is not supported (no TLS here)" if parts.scheme == "https" else "expected an http:// URL"
        raise ValueError(f"{what}: {url!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rpartition("@")[2]
    # HTTP/1.1 keeps a connection open unless a side says otherwise: we say so when we
    # do not mean to reuse it, so the server can close as soon as it has answered.
    connection = "" if keep_alive else "Connection: close\r\n"
    request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: workshop-load-client\r\n{connection}\r\n"
    return Target(parts.hostname, port, request.encode("latin-1"))


# --- reading a response --------------------------------------------------------------------
#
# We read through ``sock.makefile("rb")``, a buffered reader: readline() and read(n) then
# pull from the socket as much as they need, however the bytes were cut into packets.
# http.client would do the same work, but it builds an email.message object for every
# header block, and costs the client about three times the CPU per request of this reader
# (docs/bench/tuning.md). On a 2-core machine the client's CPU is taken from the server,
# so the small reader it is.


class BadResponse(Exception):
    """The server sent something that is not an HTTP/1.x response."""


class IncompleteResponse(Exception):
    """The connection ended before the response did."""


def read_line(rfile, line=None):
    """The next line, ending in LF; ``line`` checks one read already."""
    line = rfile.readline(MAX_LINE + 1) if line is None else line
    if not line.endswith(b"\n"):
        if len(line) > MAX_LINE:
            raise BadResponse("a line longer than 64 KiB")
        raise IncompleteResponse("the connection closed in the middle of the response")
    return line


def read_response(rfile, status_line=None):
    """Read one response: (status, headers, body, reusable).

    ``headers`` has lower-case names (repeated headers joined with ", "); ``reusable``
    says whether another request may follow on this connection. The body is framed by,
    in this order: no body at all (1xx, 204, 304; we never send HEAD), ``Transfer-Encoding: chunked``,
    ``Content-Length``, or else everything until the server closes the connection.
    """
    while True:
        line = read_line(rfile, status_line)
        status_line = None
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code = rest[:3]
        if not (version.startswith("HTTP/1.") and code.isdigit() and rest[3:4] in ("", " ")):
            raise BadResponse(f"not an HTTP/1.x status line: {line[:80]!r}")
        status = int(code)
        headers = {}
        while (line := read_line(rfile)) not in (b"\r\n", b"\n"):
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(headers) >= MAX_HEADERS:
                raise BadResponse(f"bad header line: {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if not 100 <= status < 200 or status == 101:
            break  # a final response; "100 Continue" and friends come before one, skip them
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    reusable = "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = read_chunked(rfile)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise BadResponse(f"bad Content-Length: {length!r}")
        body = rfile.read(int(length))
        if len(body) < int(length):
            raise IncompleteResponse(f"the connection closed after {len(body)} of {length} body bytes")
    else:
        body = rfile.read()  # no length given: the body ends when the server closes
        reusable = False
    return status, headers, body, reusable


def read_chunked(rfile):
    """Chunks: a hex size line, that many bytes, CRLF; a size of 0 ends, then trailers."""
    body = bytearray()
    while True:
        size_text = read_line(rfile).split(b";")[0].strip()  # ";name=value" extensions ignored
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse(f"bad chunk size: {size_text[:40]!r}") from None
        if size == 0:
            while read_line(rfile) not in (b"\r\n", b"\n"):
                pass  # trailer fields: read and ignored
            return bytes(body)
        data = rfile.read(size)
        if len(data) < size:
            raise IncompleteResponse("the connection closed in the middle of a chunk")
        body += data
        if read_line(rfile) not in (b"\r\n", b"\n"):
            raise BadResponse("a chunk did not end with CRLF")


def error_kind(error):
    """A short name for why a request failed: the keys of LoadResult.errors."""
    if isinstance(error, ConnectionRefusedError):
        return "refused"  # nothing listens on that port, or its backlog overflowed
    if isinstance(error, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return "timeout"
    if isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(error, IncompleteResponse):
        return "closed early"
    if isinstance(error, BadResponse):
        return "bad response"
    if isinstance(error, OSError):
        return (error.strerror or str(error)).lower()  # e.g. "cannot assign requested address"
    return f"client bug: {type(error).__name__}: {error}"


# --- one request, and a whole run ------------------------------------------------------------


def fetch(url, timeout=DEFAULT_TIMEOUT):
    """One GET on a new connection: ``(status, headers, body)``. Errors are raised."""
    target = parse_url(url)
    with socket.create_connection((target.host, target.port), timeout) as sock, sock.makefile("rb") as rfile:
        sock.sendall(target.request)
        status, headers, body, _ = read_response(rfile)
    return status, headers, body


class Record(NamedTuple):
    """One request: who sent it, when (seconds since the run began), and how it went."""

    client: int  # which client thread, 0 .. C-1
    index: int  # which request, 0 .. N-1, in the order they were handed out
    start: float
    end: float
    status: int | None  # None if no response came
    error: str | None  # None if a response came (whatever its status), else error_kind()

    @property
    def latency_ms(self):
        return (self.end - self.start) * 1000


class _Connection:
    """One client thread's connection, opened when needed and reused with keep-alive."""

    def __init__(self, target, keep_alive, timeout):
        self.target, self.keep_alive, self.timeout = target, keep_alive, timeout
        self.sock = self.rfile = None
        self.opened = 0

    def request(self):
        """Send the request, read the response, return its status."""
        reused = self.sock is not None
        if not reused:
            self.sock = socket.create_connection((self.target.host, self.target.port), self.timeout)
            self.rfile = self.sock.makefile("rb")
            self.opened += 1
        try:
            self.sock.sendall(self.target.request)
            first_line = self.rfile.readline(MAX_LINE + 1)
        except (ConnectionResetError, BrokenPipeError):
            first_line = b""
            if not reused:
                self.close()
                raise
        except BaseException:
            self.close()
            raise
        if not first_line and reused:
            # The server closed this idle connection (its keep-alive timeout, say) just as
            # we reused it, before reading our request. Browsers retry a GET then; so do we.
            self.close()
            return self.request()
        try:
            status, _, _, reusable = read_response(self.rfile, first_line)
        except BaseException:
            self.close()
            raise
        if not (self.keep_alive and reusable):
            self.close()
        return status

    def close(self):
        if self.sock is not None:
            self.rfile.close()
            self.sock.close()
            self.sock = self.rfile = None


@dataclass
class LoadResult:
    """What a run saw. ``records`` holds one Record per request sent, in index order."""

    url: str
    concurrency: int
    requests: int  # how many were asked for
    keep_alive: bool
    records: list = field(default_factory=list)
    wall_time: float = 0.0
    connections_opened: int = 0
    interrupted: bool = False  # Ctrl-C: records hold what completed until then

    @property
    def completed(self):
        """Requests that got a whole response, whatever its status."""
        return sum(1 for record in self.records if record.error is None)

    @property
    def errors(self):
        """Counter of failed requests (no response) by kind: refused, timeout, reset, ..."""
        return Counter(record.error for record in self.records if record.error is not None)

    @property
    def statuses(self):
        """Counter of responses by status code."""
        return Counter(record.status for record in self.records if record.error is None)

    @property
    def non_2xx(self):
        """Responses that came but were not a success (404, 500, ...), by status code."""
        return Counter({status: n for status, n in self.statuses.items() if not 200 <= status < 300})

    @property
    def requests_per_second(self):
        return self.completed / self.wall_time if self.wall_time > 0 else 0.0

    def latency_ms(self, percentile):
        """Nearest rank: the latency that ``percentile`` % of responses did not exceed.
        Over completed requests only; None if there were none. ``latency_ms(100)`` is the max."""
        latencies = sorted(record.latency_ms for record in self.records if record.error is None)
        if not latencies:
            return None
        if not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be between 0 and 100, not {percentile}")
        rank = max(1, math.ceil(percentile / 100 * len(latencies)))
        return latencies[rank - 1]

    def summary(self):
        """The numbers the CLI prints, as a dict (for tables and JSON)."""
        return {
            "url": self.url,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "keep_alive": self.keep_alive,
            "sent": len(self.records),
            "completed": self.completed,
            "errors": dict(self.errors),
            "non_2xx": dict(self.non_2xx),
            "statuses": dict(self.statuses),
            "connections_opened": self.connections_opened,
            "wall_time": self.wall_time,
            "requests_per_second": self.requests_per_second,
            "latency_ms": {
                name: self.latency_ms(p) for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
            },
            "interrupted": self.interrupted,
        }

    def report(self):
        """The summary as the few lines the CLI prints."""
        s = self.summary()
        mode = "keep-alive" if self.keep_alive else "a new connection per request"
        clients = f"{self.concurrency} client{'s' if self.concurrency != 1 else ''}"
        lines = [f"GET {self.url}: {clients}, {mode}" + ("  (interrupted by Ctrl-C)" if self.interrupted else "")]
        lines.append(f"  completed      {s['completed']} of {self.requests}")
        lines.append(
            f"  errors         {sum(self.errors.values())}"
            + "".join(f"\n    {kind:<12} {n}" for kind, n in self.errors.most_common())
        )
        lines.append(
            f"  non-2xx        {sum(self.non_2xx.values())}"
            + "".join(f"\n    status {code:<5} {n}" for code, n in sorted(self.non_2xx.items()))
        )
        lines.append(f"  connections    {self.connections_opened}")
        lines.append(f"  wall time      {self.wall_time:.3f} s")
        lines.append(f"  requests/s     {self.requests_per_second:.1f}")
        latency = "  ".join(f"{name} {'-' if ms is None else f'{ms:.1f}'}" for name, ms in s["latency_ms"].items())
        lines.append(f"  latency ms     {latency}")
        return "\n".join(lines)

    def write_timeline(self, path):
        """Write every record to ``path``: CSV or JSON, chosen by the file's extension."""
        path = Path(path)
        columns = Record._fields
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps([record._asdict() for record in self.records], indent=1) + "\n")
        elif path.suffix.lower() == ".csv":
            with path.open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(columns)
                for record in self.records:
                    writer.writerow(
                        [
                            "" if value is None else f"{value:.6f}" if isinstance(value, float) else value
                            for value in record
                        ]
                    )
        else:
            raise ValueError(f"timeline file must end in .csv or .json, not {path.name!r}")
        return path


class _Progress:
    """One line on stderr: requests done so far, and the rate over the last interval.
    On a terminal it updates in place every 0.5 s; elsewhere (a log, a notebook) it adds
    a line every 2 s, so runs shorter than that print nothing."""

    def __init__(self, total, count_done, stream=None):
        self.total, self.count_done = total, count_done
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = 0.5 if self.tty else 2.0
        self.last_time, self.last_done = time.perf_counter(), 0
        self.shown = False

    def tick(self):
        now = time.perf_counter()
        if now - self.last_time < self.interval:
            return
        done = self.count_done()
        rate = (done - self.last_done) / (now - self.last_time)
        self.last_time, self.last_done = now, done
        line = f"{done}/{self.total} requests, {rate:.0f}/s"
        self.stream.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        self.stream.flush()
        self.shown = True

    def finish(self):
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")  # wipe the progress line before the report
            self.stream.flush()


def run_load(url, concurrency, requests, keep_alive=False, timeout=DEFAULT_TIMEOUT, progress=False):
    """Send ``requests`` GETs to ``url`` from ``concurrency`` threads; return a LoadResult.

    Errors (refused, timeout, ...) are counted in the result, never raised; a bad URL or
    a count below 1 raises ValueError. Ctrl-C stops the run and returns what completed,
    with ``interrupted`` set.
    """
    target = parse_url(url, keep_alive)
    if concurrency < 1 or requests < 1:
        raise ValueError("concurrency and requests must be at least 1")
    next_index = iter(range(requests))
    take_lock = threading.Lock()  # hands out each request number exactly once
    stop = threading.Event()
    threads = min(concurrency, requests)
    records = [[] for _ in range(threads)]  # one list per thread: no lock needed to append
    connections = [_Connection(target, keep_alive, timeout) for _ in range(threads)]

    def client(number):
        clock, mine, connection = time.perf_counter, records[number], connections[number]
        try:
            while not stop.is_set():
                with take_lock:
                    index = next(next_index, None)
                if index is None:
                    return
                start = clock()
                try:
                    status, error = connection.request(), None
                except Exception as failure:  # counted, never raised: a load test goes on
                    status, error = None, error_kind(failure)
                mine.append(Record(number, index, start - t0, clock() - t0, status, error))
        finally:
            connection.close()

    workers = [threading.Thread(target=client, args=(n,), name=f"client-{n}", daemon=True) for n in range(threads)]
    meter = _Progress(requests, lambda: sum(map(len, records))) if progress else None
    interrupted = False
    t0 = time.perf_counter()
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.1)  # a timeout, so Ctrl-C and progress get their turn
                if meter:
                    meter.tick()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()  # no new requests; give those in flight a moment to finish
        deadline = time.perf_counter() + 1.0
        for worker in workers:
            if worker.ident is not None:  # Ctrl-C may come before all have started
                worker.join(max(0.0, deadline - time.perf_counter()))
    wall_time = time.perf_counter() - t0
    if meter:
        meter.finish()
    done = sorted((record for mine in records for record in list(mine)), key=lambda record: record.index)
    return LoadResult(
        url=url,
        concurrency=concurrency,
        requests=requests,
        keep_alive=keep_alive,
        records=done,
        wall_time=wall_time,
        connections_opened=sum(c.opened for c in connections),
        interrupted=interrupted,
    )


# --- the command line ----------------------------------------------------------------------


def positive_seconds(text):
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: expected a number of seconds above 0")
    return seconds


def http_url(text):
    try:
        parse_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def timeline_path(text):
    if Path(text).suffix.lower() not in TIMELINE_FORMATS:
        raise argparse.ArgumentTypeError(f"timeline file must end in .csv or .json: {text!r}")
    return text


def make_parser():
    parser = OneLineParser(
        description="A load client: C threads share N GET requests; prints throughput, errors and latency percentiles.",
        epilog=(
            "Against the select server on 2 cores it is slower than wrk (run both and compare): "
            "the client sets the pace. What you measure is the slower of the two, and "
            "on 2 cores the client's CPU is taken from the server. Use it for correctness, latency and "
            "timelines; compare servers' throughput with wrk (bench.py)."
        ),
    )
    parser.add_argument(
        "url", type=http_url, metavar="URL", help="an http:// URL, e.g. http://127.0.0.1:8888/sleep?seconds=0.5"
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        type=positive_int,
        default=1,
        metavar="C",
        help="client threads sending at once (default 1)",
    )
    parser.add_argument(
        "-n",
        "--requests",
        type=positive_int,
        default=1,
        metavar="N",
        help="requests in total, shared by the threads (default 1)",
    )
    parser.add_argument(
        "-k",
        "--keep-alive",
        action="store_true",
        help="each thread reuses one connection (else a new connection per request)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait to connect, or for each read (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--timeline",
        type=timeline_path,
        metavar="FILE",
        help="write every request's client, index, start, end, status, error to FILE.csv or FILE.json",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    # A program a shell starts in the background begins with SIGINT ignored (so that
    # Ctrl-C only reaches the foreground job); `kill -INT` should still stop a run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = run_load(
            args.url, args.concurrency, args.requests, args.keep_alive, args.timeout, progress=not args.quiet
        )
        print(result.report(), flush=True)
        if args.timeline:
            try:
                result.write_timeline(args.timeline)
            except OSError as error:
                print(f"client.py: error: cannot write {args.timeline}: {error.strerror or error}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:  # a second Ctrl-C, while reporting
        return 0
    # Ctrl-C is how a person ends a run early, with what completed printed: exit 0, as
    # every program of the workshop does on Ctrl-C.
    if result.interrupted:
        return 0
    return 0 if result.completed else 1  # 1: not a single response came back


if __name__ == "__main__":
    sys.exit(main())
