"""Benchmarks: every server of the workshop, side by side with the servers people deploy.

    python part3_concurrency/measure/bench.py             # the full run
    python part3_concurrency/measure/bench.py --quick     # 1 and 10 connections, 1 s each: for the notebook and tests
    python part3_concurrency/measure/bench.py --c10k      # 10,000 connections held by the select server
    python part3_concurrency/measure/bench.py --files     # serving files, against nginx (files_bench.py)
    python part3_concurrency/measure/bench.py --asgi      # part 4's ASGI server, against uvicorn and hypercorn

Each server serves the same hello-world app (part2_wsgi/apps/hello_app.py) on a port of
its own; servers with worker processes (prefork, gunicorn) get two each (``WORKERS``),
and prefork gets as many app threads in each as gunicorn gthread (``THREADS``).
Beside them runs ``bare-loop`` (part3_concurrency/measure/bare_loop.py), a loop that parses
nothing and answers fixed bytes: the pure-Python ceiling the others are read against.
``wrk``, a load generator written in C, drives each one at several
concurrency levels (open connections), with keep-alive (connections reused) and with
``Connection: close`` (a new TCP connection per request), in several interleaved rounds
so that a passing disturbance of the machine hits every server alike. Per server and
level it reports the median requests per second, the p50 and p99 latency, the errors,
and the server's peak resident memory (its worker processes included).

And how many of the clients got any answer at all: wrk counts requests, not clients, and
a server with a cap (64 children, 100 threads) answers the clients it took first while the
others wait unseen. After each wrk run, part3_concurrency/measure/census.py opens as many
connections for as long and counts those answered; a row where some got nothing is flagged.

Why wrk and not our own client? On 2 cores a Python client is slower than the select
server it would measure (run both commands of client.py's docstring to see it), so it
would measure itself. Without wrk installed, bench.py falls back to part3_concurrency/measure/client.py
and says that its figures are client-bound.

A run that measured nothing (wrk failed, or no request got a successful answer) shows
``error: ...`` in its row, never a figure.

``--asgi`` measures part 4 the same way, keep-alive only (what an ASGI server is deployed
for), and writes ``asgi.csv`` with results.csv's columns: our ASGI server
(part4_asgi/server.py) and uvicorn, in the three ways it runs (the h11 parser, pure
Python like ours; the httptools parser, in C, on asyncio's loop; httptools on uvloop, a
loop in C), and hypercorn, each serving the bare ASGI hello world
(part4_asgi/apps/hello_app.py), one worker, no access log; then the FastAPI app's JSON
endpoint on ours and on uvicorn with httptools. uvicorn and hypercorn are started by
part4_asgi/mixmatch.py, which gives them our servers' command line. Five rounds by default: the
README holds our server to targets measured against uvicorn in this run.

How long a run takes depends on the machine, so it is measured too: each run adds its
wall time to ``wall_time.json`` beside its results, under its options as typed (``""``
for the full run, ``"--files"`` ...). The README says how long a run took from that
file (figures.py), never from memory.

Read the figures as ratios, not absolutes: client and servers share this machine's
cores, and a laptop on battery differs from one on mains. What carries over from one
machine to another is the shape: which model scales with connections, which one stalls.
"""

import csv
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import ServerError, start_server
from part2_wsgi.command_line import OneLineParser, raise_open_file_limit
from part2_wsgi.mixmatch import GTHREAD_THREADS
from part3_concurrency.measure import files_bench
from part3_concurrency.measure.census import answered_clients
from part3_concurrency.measure.wrk import LoadFailed, parse_wrk, wrk_failure

APP = "part2_wsgi.apps.hello_app:app"
# Servers with worker processes (prefork, gunicorn) get the same number, whatever the
# machine's cores: the comparison is between servers, not between machines.
WORKERS = 2
THREADS = str(GTHREAD_THREADS)
# --quiet: no access log, as gunicorn and waitress keep none unless asked.
OURS = {
    "part2": ["part2_wsgi/server.py", "--quiet"],
    "iterative": ["part3_concurrency/iterative_server.py", "--quiet"],
    "forking": ["part3_concurrency/forking_server.py", "--quiet"],
    "threaded": ["part3_concurrency/threaded_server.py", "--quiet"],
    "select": ["part3_concurrency/select_server.py", "--quiet"],
    # prefork gets what gunicorn gthread gets: WORKERS processes of GTHREAD_THREADS app threads.
    "prefork": ["part3_concurrency/prefork_server.py", "--quiet", "--workers", str(WORKERS), "--threads", THREADS],
    "asyncio": ["part3_concurrency/asyncio_server.py", "--quiet"],
}
# The least a pure-Python event loop does per request (no parsing, no app): the ceiling.
CEILING = {"bare-loop": ["part3_concurrency/measure/bare_loop.py"]}
PEERS = {
    "wsgiref": ["part2_wsgi/mixmatch.py", "wsgiref"],
    "waitress": ["part2_wsgi/mixmatch.py", "waitress"],
    "gunicorn-sync": ["part2_wsgi/mixmatch.py", "gunicorn-sync", "--workers", str(WORKERS)],
    "gunicorn-gthread": ["part2_wsgi/mixmatch.py", "gunicorn-gthread", "--workers", str(WORKERS)],
}
SERVERS = {**OURS, **CEILING, **PEERS}
MODES = ("keep-alive", "close")

# --asgi: each server with its app (an ASGI app; FastAPI's JSON endpoint for the last two).
ASGI_APP = "part4_asgi.apps.hello_app:app"
FASTAPI_APP = "part4_asgi.apps.fastapi_app:app"
ASGI_PEERS = "part4_asgi/mixmatch.py"  # run as a command: part 3 never imports part 4
UVICORN_HTTPTOOLS = [ASGI_PEERS, "uvicorn-httptools"]
ASGI_SERVERS = {
    "asgi": ["part4_asgi/server.py", "--quiet", ASGI_APP],
    "uvicorn-h11": [ASGI_PEERS, "uvicorn-h11", ASGI_APP],
    "uvicorn-httptools": [*UVICORN_HTTPTOOLS, ASGI_APP],
    "uvicorn-uvloop": [ASGI_PEERS, "uvicorn-uvloop", ASGI_APP],
    "hypercorn": [ASGI_PEERS, "hypercorn", ASGI_APP],
    "asgi-fastapi": ["part4_asgi/server.py", "--quiet", FASTAPI_APP],
    "uvicorn-fastapi": [*UVICORN_HTTPTOOLS, FASTAPI_APP],
}
# The path each server is asked for, "/" unless said here: an ``async def`` view that
# returns JSON, with a path parameter FastAPI converts and checks.
PATHS = {"asgi-fastapi": "/items/1", "uvicorn-fastapi": "/items/1"}
ASGI_MODES = ("keep-alive",)
# The runs whose ratios the README holds to targets (--files, --asgi): five rounds, so that
# a ratio near its line is a median with a spread, not one draw.
TARGET_ROUNDS = 5


@dataclass
class Measurement:
    server: str
    mode: str
    concurrency: int
    round: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    answered: int  # of the ``concurrency`` clients, how many got at least one answer (census.py)
    peak_rss_kb: int
    client: str
    failure: str = ""  # why this measurement has no figures (see LoadFailed)


@dataclass
class Row:
    """The median over rounds for one server, mode and concurrency level."""

    server: str
    mode: str
    concurrency: int
    answered: int  # the fewest clients answered in any round: below ``concurrency``, some got nothing
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_kb: int
    client: str
    note: str = ""


# --- measuring memory: the server and every process it started ------------------------


def tree_rss_kb(pid):
    """Resident memory of ``pid`` and its descendants, in KB (``ps`` works on Linux and macOS)."""
    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    children, rss = {}, {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3 and all(f.isdigit() for f in fields):
            child, parent, kb = map(int, fields)
            children.setdefault(parent, []).append(child)
            rss[child] = kb
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


class PeakMemory:
    """Samples a process tree's memory in the background while a load runs."""

    def __init__(self, pid, interval=0.2):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_kb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


# --- driving the load -------------------------------------------------------------------------

NAN = float("nan")  # no figure: the row's note says why


def run_wrk(url, concurrency, mode, seconds):
    command = ["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if mode == "close":
        command += ["-H", "Connection: close"]
    result = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 30)
    failure = wrk_failure(result.returncode, result.stdout + result.stderr)
    if failure:
        raise LoadFailed(failure)
    return parse_wrk(result.stdout)


def run_python_client(url, concurrency, mode, seconds):
    """Fallback without wrk: our own client, for a fixed number of requests."""
    from part3_concurrency.measure.client import run_load

    result = run_load(url, concurrency, requests=max(concurrency, int(500 * seconds)), keep_alive=mode == "keep-alive")
    errors = sum(result.errors.values())
    if errors >= len(result.records):
        raise LoadFailed(f"no successful response: {errors} errors")
    return result.requests_per_second, result.latency_ms(50), result.latency_ms(99), errors


# --- the run -------------------------------------------------------------------------------------


def start(name):
    if name in ASGI_SERVERS:
        return start_server(*ASGI_SERVERS[name], timeout=30)  # (its app is in its arguments)
    script, *args = SERVERS[name]
    return start_server(script, *args, APP, timeout=30)


def load_average():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # not Linux
        return "unknown"


def measure_all(names, levels, rounds, seconds, progress=print, modes=MODES):
    """Start every server once, then measure round by round, servers interleaved.
    After each load, count the clients that got an answer (census.py), with as many
    connections of the same kind for as long (longer by the time the machine kept the
    server or the census from a core)."""
    load = run_wrk if shutil.which("wrk") else run_python_client
    client = "wrk" if load is run_wrk else "client.py (client-bound)"
    servers, unavailable = {}, {}
    for name in names:
        try:
            servers[name] = start(name)
        except ServerError as error:
            unavailable[name] = str(error).splitlines()[-1][-200:]
    measurements = []
    total = rounds * len(servers) * len(modes) * len(levels)
    try:
        for round_number in range(1, rounds + 1):
            progress(f"round {round_number}: load average {load_average()} (the machine's others' work shows here)")
            for mode in modes:
                for level in levels:
                    for name, server in servers.items():
                        with PeakMemory(server.pid) as memory:
                            try:
                                url = server.url + PATHS.get(name, "/")
                                rate, p50, p99, errors = load(url, level, mode, seconds)
                                failure = ""
                            except LoadFailed as error:
                                rate, p50, p99, errors, failure = NAN, NAN, NAN, 0, str(error)
                        keep_alive = mode == "keep-alive"
                        answered = (
                            0
                            if failure
                            else answered_clients(server.address, level, seconds, keep_alive, server.waits_for_a_core)
                        )
                        measurements.append(
                            Measurement(
                                name,
                                mode,
                                level,
                                round_number,
                                rate,
                                p50,
                                p99,
                                errors,
                                answered,
                                memory.peak,
                                client,
                                failure,
                            )
                        )
                        figures = (
                            f"error: {failure}"
                            if failure
                            else f"{rate:9.0f} req/s  p99 {p99:8.2f} ms  answered {answered}/{level}"
                        )
                        progress(
                            f"[{len(measurements)}/{total}] round {round_number} {mode:10} c={level:<5} {name:16} "
                            f"{figures}  errors {errors}"
                        )
    finally:
        for server in servers.values():
            server.stop(timeout=10)
    return measurements, unavailable


def summarise(measurements, unavailable, levels, modes=MODES):
    """Median over rounds; a row per unavailable server saying why. A failed round is not
    averaged away: its row shows the error, and no figures."""
    groups = {}
    for m in measurements:
        groups.setdefault((m.server, m.mode, m.concurrency), []).append(m)
    failed = {
        key: next(m.failure for m in group if m.failure)
        for key, group in groups.items()
        if any(m.failure for m in group)
    }
    rows = [
        Row(*key, 0, NAN, NAN, NAN, 0, max(m.peak_rss_kb for m in group), group[0].client, f"error: {failed[key]}")
        for key, group in groups.items()
        if key in failed
    ]
    rows += [
        Row(
            server,
            mode,
            level,
            min(m.answered for m in group),
            round(statistics.median(m.requests_per_second for m in group), 1),
            round(statistics.median(m.p50_ms for m in group), 3),
            round(statistics.median(m.p99_ms for m in group), 3),
            sum(m.errors for m in group),
            max(m.peak_rss_kb for m in group),
            group[0].client,
        )
        for (server, mode, level), group in groups.items()
        if (server, mode, level) not in failed
    ]
    for name, reason in unavailable.items():
        for mode in modes:
            for level in levels:
                rows.append(Row(name, mode, level, 0, NAN, NAN, NAN, 0, 0, "-", f"unavailable: {reason}"))
    return rows


# --- writing the results ---------------------------------------------------------------------


def write_csv(rows, path):
    """Rows (dataclasses or dicts, all alike) to a CSV file with a header; its folder is made."""
    rows = [row if isinstance(row, dict) else asdict(row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_results(rows, out):
    write_csv(rows, out / "results.csv")
    (out / "results.json").write_text(json.dumps([asdict(row) for row in rows], indent=1))
    return [
        out / "results.csv",
        out / "results.json",
        plot(rows, out, "requests_per_second", "requests per second", "throughput.png", log_y=False),
        plot(rows, out, "p99_ms", "p99 latency (ms)", "latency.png", log_y=True),
    ]


def plot(rows, out, field, label, filename, log_y):
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(MODES), figsize=(12, 4.5), sharey=True)
    for axis, mode in zip(axes, MODES, strict=False):
        for server in dict.fromkeys(row.server for row in rows):
            points = sorted(
                (r.concurrency, getattr(r, field)) for r in rows if r.server == server and r.mode == mode and not r.note
            )
            if points:
                style = "-o" if server in OURS else ":^" if server in CEILING else "--s"
                (line,) = axis.plot(
                    *zip(*points, strict=False), style, label=server, linewidth=2 if server in OURS else 1.2
                )
                unserved = [
                    (r.concurrency, getattr(r, field))
                    for r in rows
                    if r.server == server and r.mode == mode and not r.note and r.answered < r.concurrency
                ]
                if unserved:  # a hollow ring: this figure comes from only some of the clients
                    axis.plot(
                        *zip(*unserved, strict=False), "o", markersize=13, fillstyle="none", color=line.get_color()
                    )
        axis.set_xscale("log")
        levels = sorted({row.concurrency for row in rows})
        axis.set_xticks(levels, [str(level) for level in levels])
        if log_y:
            axis.set_yscale("log")
        axis.set_title(f"{mode}")
        axis.set_xlabel("concurrent connections")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(label)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    figure.suptitle(
        f"hello world, {label}: ours (solid), production servers (dashed), the bare loop (dotted);\n"
        "ringed: some clients got no answer during the run, the figure counts only the others"
    )
    figure.tight_layout()
    path = out / filename
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def print_table(rows):
    print(
        f"{'server':18}{'mode':12}{'conns':>6}{'answered':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'peak MB':>9}"
    )
    for r in sorted(rows, key=lambda r: (r.mode, r.concurrency, r.server)):
        if r.note:
            print(f"{r.server:18}{r.mode:12}{r.concurrency:>6}  {r.note}")
        else:
            flag = "  some clients got no answer" if r.answered < r.concurrency else ""
            print(
                f"{r.server:18}{r.mode:12}{r.concurrency:>6}{r.answered:>9}{r.requests_per_second:>10.0f}"
                f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{r.peak_rss_kb / 1024:>9.1f}{flag}"
            )


# --- C10K: ten thousand connections at once ----------------------------------------------------


def c10k(connections, threaded_connections):
    """Hold many connections open at once; count the answers; memory per connection."""
    from part3_concurrency.measure.c10k import held_connections

    limit = raise_open_file_limit()
    if limit is not None and limit < connections + 100:  # None: no such limit (Windows)
        print(
            f"the open-file hard limit is {limit}, too low for {connections} connections; "
            f"using {limit - 100} (raise it as root, for example: ulimit -Hn {connections + 1000})",
            file=sys.stderr,
        )
        connections = limit - 100
    results = []
    for name, args, count in (
        ("select", ["part3_concurrency/select_server.py"], connections),
        (
            "threaded",
            ["part3_concurrency/threaded_server.py", "--max-threads", str(threaded_connections + 10)],
            min(connections, threaded_connections),
        ),
    ):
        with start_server(*args, APP, timeout=30) as server:
            before = tree_rss_kb(server.pid)
            with held_connections(server.address, count) as (answered, seconds):
                holding = tree_rss_kb(server.pid)
        per_connection = (holding - before) / max(answered, 1)
        results.append(
            {
                "server": name,
                "connections": count,
                "answered": answered,
                "seconds": round(seconds, 2),
                "rss_before_kb": before,
                "rss_holding_kb": holding,
                "kb_per_connection": round(per_connection, 1),
            }
        )
        print(
            f"{name:9} {answered:>6}/{count} connections answered in {seconds:.1f} s, all held open; "
            f"{per_connection:.1f} KB of resident memory per connection"
        )
    return results


# --- files: against nginx, whitenoise and http.server (files_bench.py) -------------------------


def file_servers():
    return files_bench.servers(OURS, WORKERS)


def files(args):
    if not shutil.which("wrk"):
        print("bench.py --files needs wrk (apt-get install wrk, brew install wrk)", file=sys.stderr)
        return 1
    rows = files_bench.measure_files(
        args.servers,
        file_servers(),
        args.rounds,
        args.seconds,
        args.small_bytes or files_bench.SMALL_BYTES,
        args.large_bytes or files_bench.LARGE_BYTES,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    files_bench.print_files_table(rows)
    print(f"wrote {write_csv(rows, args.out / 'files.csv')}")
    print(f"wrote {files_bench.plot_files(rows, args.out / 'files.png', OURS)}")
    return 0


# --- the command line ---------------------------------------------------------------------------


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s at 1 and 10 connections")
    parser.add_argument("--levels", default="1,10,100,1000", help="concurrency levels (default 1,10,100,1000)")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"interleaved rounds; the median is reported (default 2; {TARGET_ROUNDS} with --files or --asgi)",
    )
    parser.add_argument("--seconds", type=int, default=2, help="length of each measurement (default 2)")
    parser.add_argument(
        "--servers", help=f"which servers (default all: {','.join(SERVERS)}; with --files or --asgi, theirs)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="folder for results.csv, results.json and the plots"
    )
    parser.add_argument(
        "--c10k", action="store_true", help="instead: hold 10,000 connections against the select server"
    )
    parser.add_argument("--connections", type=int, default=10_000, help="with --c10k: how many (default 10000)")
    parser.add_argument(
        "--files", action="store_true", help="instead: serve a small and a large file, against nginx (files_bench.py)"
    )
    parser.add_argument(
        "--asgi", action="store_true", help="instead: part 4's ASGI server against uvicorn and hypercorn (asgi.csv)"
    )
    parser.add_argument("--small-bytes", type=int, default=None, help="with --files: the small file (default 10 KB)")
    parser.add_argument("--large-bytes", type=int, default=None, help="with --files: the large file (default 100 MB)")
    parser.add_argument(
        "--threaded-connections",
        type=int,
        default=1000,
        help="with --c10k: how many for the threaded server (default 1000)",
    )
    args = parser.parse_args(argv)
    choices = list(file_servers()) if args.files else list(ASGI_SERVERS) if args.asgi else list(SERVERS)
    args.servers = args.servers.split(",") if args.servers else choices
    unknown = [s for s in args.servers if s not in choices]
    if unknown:
        parser.error(f"unknown server {unknown[0]!r}; choose from {', '.join(choices)}")
    try:
        args.levels = [int(level) for level in args.levels.split(",")]
    except ValueError:
        parser.error(f"--levels takes numbers separated by commas, not {args.levels!r}")
    if args.rounds is None:
        args.rounds = TARGET_ROUNDS if args.asgi or args.files else 2
    if args.quick:
        args.levels, args.rounds, args.seconds = [1, 10], 1, 1
    return args


WALL_TIME = "wall_time.json"  # how long each kind of run took, beside its results


def run_name(argv):
    """A run's options as typed, less ``--out``: "" for the full run, "--files", "--quick" ..."""
    words, skip = [], False
    for word in argv:
        if skip or word == "--out" or word.startswith("--out="):
            skip = word == "--out"
            continue
        words.append(word)
    return " ".join(words)


def record_wall_time(out, name, seconds):
    """Add this run's wall time to out/wall_time.json, keeping the other runs' times."""
    path = out / WALL_TIME
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = round(seconds, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    return path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    began = time.monotonic()
    status = measure(args)
    if status == 0:
        print(f"wrote {record_wall_time(args.out, run_name(argv), time.monotonic() - began)}")
    return status


def measure(args):
    if args.c10k:
        results = c10k(args.connections, args.threaded_connections)
        print(f"wrote {write_csv(results, args.out / 'c10k.csv')}")
        return 0
    if args.files:
        return files(args)
    raise_open_file_limit()  # the census opens as many connections as wrk: a thousand and more
    if not shutil.which("wrk"):
        print(
            "wrk is not installed: falling back to part3_concurrency/measure/client.py; its figures are client-bound",
            file=sys.stderr,
        )
    modes = ASGI_MODES if args.asgi else MODES
    measurements, unavailable = measure_all(
        args.servers,
        args.levels,
        args.rounds,
        args.seconds,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        modes=modes,
    )
    rows = summarise(measurements, unavailable, args.levels, modes)
    print_table(rows)
    paths = [write_csv(rows, args.out / "asgi.csv")] if args.asgi else write_results(rows, args.out)
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers were stopped on the way out (measure_all)
        print("bench.py: interrupted; nothing written", file=sys.stderr)
        sys.exit(0)
