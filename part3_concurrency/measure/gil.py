"""The GIL made visible: four CPU-bound requests at once, on threads and on processes.

    python part3_concurrency/measure/gil.py                 # a table: when each request began and ended
    python part3_concurrency/measure/gil.py --ms 250        # shorter requests
    python part3_concurrency/measure/gil.py --plot gil.png  # and the picture

CPython's global interpreter lock (the GIL) lets one thread at a time run Python code.
A thread that *waits* (``time.sleep``, ``recv``, a database query) lets go of it, so
threads overlap their waiting well: that is what notebook 03's ``/sleep`` showed. A
thread that *computes* holds it, and gives it up only every few milliseconds
(``sys.getswitchinterval()``) so that the others take turns on one core. Processes have
a GIL each, so they compute on every core at once.

The experiment sends four requests at once to each server, first four to ``/cpu?ms=N``
(the demo app computes in pure Python for N ms of CPU time), then four to
``/sleep?seconds=N/1000`` (it waits as long), and notes when each request began and ended:

* threaded and select: the four computations take turns on one core, so the last one
  ends after about four times N; the four sleeps overlap, and end together after N;
* forking: the computations run in four processes, on every core: on 2 cores, the
  four end after about two times N, half the time the threads take;
* prefork (a worker per core): each worker is one process with threads, so it depends
  on how the four connections fell on the workers. A worker with more open connections
  than another leaves new clients to it, and a worker not started yet counts as one
  with none (least_connections.py, ``LeastConnections``), so on 2 cores they fall two and
  two from the first request on, and end like forking. (Four and none would end like
  threads: run the server with ``--reuse-port``, where the kernel spreads clients by a
  hash of both ends' addresses and ports, to see chance decide.)

Python 3.13 can be built without the GIL (PEP 703: the free-threaded build, installed as
``python3.13t``; ``sys._is_gil_enabled()`` says which one runs). There, the threads of
the threaded and select servers compute on every core at once too, as processes do,
while they still share one memory. In 3.13 the build is experimental: single-threaded
code runs slower on it, and an extension module not marked as safe without the GIL turns
it back on. Run this file with ``python3.13t`` to see the threads' bars line up.
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import start_server
from part2_wsgi.command_line import OneLineParser, positive_int
from part3_concurrency.measure.client import run_load

CORES = os.cpu_count() or 1
# The servers, each as start_server takes it. One prefork worker per core, as by default;
# the forking server starts a process per connection.
SERVERS = {
    "threaded": ["part3_concurrency/threaded_server.py"],
    "select": ["part3_concurrency/select_server.py"],
    "forking": ["part3_concurrency/forking_server.py"],
    "prefork": ["part3_concurrency/prefork_server.py", "--workers", str(CORES)],
}
KINDS = ("cpu", "sleep")


@dataclass
class Timing:
    """One request: which server, which kind, and when it began and ended (seconds since
    the four were sent)."""

    server: str
    kind: str  # "cpu" or "sleep"
    request: int
    start: float
    end: float


def path_for(kind, ms):
    return f"/cpu?ms={ms}" if kind == "cpu" else f"/sleep?seconds={ms / 1000:g}"


def run_experiment(servers=tuple(SERVERS), requests=4, ms=500, python=None):
    """Send ``requests`` requests at once of each kind to each server; return the Timings.

    ``python`` is the interpreter's command for the servers, as a list (default: this
    one); ``["python3.13t"]`` shows what the free-threaded build changes."""
    timings = []
    for name in servers:
        with start_server(*SERVERS[name], "--quiet", python=python) as server:
            for kind in KINDS:
                result = run_load(server.url + path_for(kind, ms), concurrency=requests, requests=requests)
                failed = [record.error or record.status for record in result.records if record.status != 200]
                if failed:
                    raise RuntimeError(f"{name}: {kind} requests failed: {failed}")
                for number, record in enumerate(sorted(result.records, key=lambda record: record.start)):
                    timings.append(Timing(name, kind, number, record.start, record.end))
    return timings


def last_end(timings, server, kind):
    """When the last of one server's requests of one kind ended: its wall time."""
    return max(t.end for t in timings if t.server == server and t.kind == kind)


def print_table(timings, ms, file=sys.stdout):
    servers = list(dict.fromkeys(t.server for t in timings))
    at_once = sum(1 for t in timings if t.server == servers[0] and t.kind == "cpu")
    print(f"{at_once} requests at once, each {ms} ms of work, on {CORES} cores", file=file)
    print(f"{'server':10}{'kind':7}{'all done':>10}  each request: began-ended (s)", file=file)
    for server in servers:
        for kind in KINDS:
            mine = [t for t in timings if t.server == server and t.kind == kind]
            spans = "  ".join(f"{t.start:.2f}-{t.end:.2f}" for t in mine)
            print(f"{server:10}{kind:7}{last_end(timings, server, kind):>9.2f}s  {spans}", file=file)


def draw(timings, ms):
    """The timelines: one bar per request, from when it was sent to when its answer came;
    one panel per kind of request, the servers one above the other. Returns the figure."""
    import matplotlib.pyplot as plt  # only here: the experiment itself needs no plotting

    servers = list(dict.fromkeys(t.server for t in timings))
    colours = dict(zip(servers, ["tab:red", "tab:orange", "tab:blue", "tab:green", "tab:purple"], strict=False))
    figure, axes = plt.subplots(1, len(KINDS), figsize=(12, 1 + 0.9 * len(servers)), sharex=True)
    for axis, kind in zip(axes, KINDS, strict=True):
        labels = []
        for row, server in enumerate(reversed(servers)):
            mine = [t for t in timings if t.server == server and t.kind == kind]
            for t in mine:
                height = 0.8 / len(mine)
                axis.barh(
                    row - 0.4 + height * (t.request + 0.5),
                    t.end - t.start,
                    left=t.start,
                    height=height * 0.9,
                    color=colours[server],
                )
            axis.text(
                last_end(timings, server, kind) + 0.03,
                row,
                f"{last_end(timings, server, kind):.2f} s",
                va="center",
                fontsize=9,
            )
            labels.append(server)
        axis.set_yticks(range(len(labels)), labels)
        axis.set_title(f"{kind}: {path_for(kind, ms)}, four at once", loc="left")
        axis.set_xlabel("seconds since the requests were sent")
        axis.grid(True, axis="x", alpha=0.3)
    figure.suptitle(f"The GIL: threads take turns computing, processes compute side by side ({CORES} cores)")
    figure.tight_layout()
    return figure


def main(argv=None):
    parser = OneLineParser(description="The GIL made visible: CPU-bound and sleeping requests, four at once.")
    parser.add_argument("--ms", type=positive_int, default=500, help="work per request, in ms (default 500)")
    parser.add_argument("--requests", type=positive_int, default=4, help="requests at once (default 4)")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"which servers (default all: {','.join(SERVERS)})"
    )
    parser.add_argument("--plot", type=Path, help="also draw the timelines into this PNG file")
    args = parser.parse_args(argv)
    servers = args.servers.split(",")
    unknown = [name for name in servers if name not in SERVERS]
    if unknown:
        parser.error(f"unknown server {unknown[0]!r}; choose from {', '.join(SERVERS)}")
    timings = run_experiment(servers, args.requests, args.ms)
    print_table(timings, args.ms)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")  # no screen needed
        draw(timings, args.ms).savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers were stopped on the way out (start_server's with)
        sys.exit(0)
