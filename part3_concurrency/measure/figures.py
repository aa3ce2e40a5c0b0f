"""The README's benchmark figures, written from the files the benchmark wrote.

    python part3_concurrency/measure/figures.py            # rewrite the README's generated blocks
    python part3_concurrency/measure/figures.py --check    # exit 1, naming them, if any is stale

A figure typed into prose drifts from the run it came from. So every figure the README's
performance section quotes is rendered here from docs/bench/: ``results.csv``
(``bench.py``), ``c10k.csv`` (``bench.py --c10k``) and ``files.csv`` (``bench.py --files``),
and how long each run took from ``wall_time.json`` (each run adds its own); the part 4
section's ASGI table and targets from ``asgi.csv`` (``bench.py --asgi``).
The README holds each rendered piece between two markers,

    <!-- bench:begin NAME -->
    ...
    <!-- bench:end NAME -->

and this script rewrites what is between them. tests/test_bench_figures.py renders them
again and fails when the README no longer says what the files say: change a figure in
results.csv, and the test fails until this script has run. Outside the blocks, the
section states no measured figure (the test checks that too).
"""

import csv
import json
import math
import re
import sys
import textwrap
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import ROOT
from part2_wsgi.command_line import OneLineParser

BENCH = ROOT / "docs" / "bench"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- bench:begin (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- bench:end (?P=name) -->)", re.DOTALL)
PRODUCTION = ("gunicorn-gthread", "gunicorn-sync", "waitress")
GUNICORNS = ("gunicorn-gthread", "gunicorn-sync")
# The hello-world table: one column per (mode, connections).
TABLE_COLUMNS = (("keep-alive", 10), ("keep-alive", 100), ("keep-alive", 1000), ("close", 10), ("close", 100))
# The targets the files mode is held to (ratios within one run, on 2 cores).
FILES_TARGETS = {"prefork": 0.90, "select": 0.75, "cpu": 3.0}
# Small files at the speed of the loop: against whitenoise, and against the server's own hello world.
SMALL_FILE_TARGETS = {"select": 1.0, "asyncio": 1.0, "prefork": 2.5}
SMALL_FILE_SHARE_OF_HELLO = 0.5
HELLO = "-hello"  # files.csv's rows of our servers on the hello app: "select-hello" ...
# Part 4's target (keep-alive, 100 connections, one run): (ours, theirs, at least this ratio):
# twice uvicorn's rate on its pure-Python parser, the same class of server as ours. Against
# uvicorn on its C parser, on a hello world and on FastAPI, figures reported without a
# target: request_cost.csv shows why (tuning.md reads it).
ASGI_LEVEL = 100
ASGI_TARGETS = (("asgi", "uvicorn-h11", 2.0),)
# The comparisons reported without a target: (ours, theirs, why not).
ASGI_REPORTED = (
    ("asgi", "uvicorn-httptools", "a parser in C and fewer steps a request; docs/bench/tuning.md says why"),
    ("asgi-fastapi", "uvicorn-fastapi", "our server's further steps a request, as on a hello world; tuning.md"),
    ("asgi", "uvicorn-uvloop", "a parser and an event loop in C, against ours in Python"),
    ("asgi", "hypercorn", "pure Python too, on h11"),
)
ASGI_ANCHORS = ("uvicorn-h11", "uvicorn-httptools")  # the table's ratio columns
# The FastAPI rows are read against uvicorn serving FastAPI (httptools, asyncio), not
# against a hello world: each ratio compares two servers running the same app.
FASTAPI_ANCHORS = {"uvicorn-h11": None, "uvicorn-httptools": "uvicorn-fastapi"}
FASTAPI = ("asgi-fastapi", "uvicorn-fastapi")
ASGI_ORDER = ("asgi", "uvicorn-h11", "uvicorn-httptools", "uvicorn-uvloop", "hypercorn", *FASTAPI)


# --- reading the files ------------------------------------------------------------------------


def read_csv(path):
    """Rows of a CSV file as dicts, numbers turned into numbers; [] when there is no such file."""
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [{name: number(value) for name, value in row.items()} for row in csv.DictReader(file)]


def number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class Results:
    """results.csv, looked up by (server, mode, connections)."""

    def __init__(self, rows):
        self.rows = {(row["server"], row["mode"], row["concurrency"]): row for row in rows}
        self.servers = list(dict.fromkeys(row["server"] for row in rows))
        self.counted = bool(rows) and "answered" in rows[0]  # older files have no census

    def measured(self, server, mode, connections):
        row = self.rows.get((server, mode, connections))
        return row if row is not None and not row["note"] else None

    def rate(self, server, mode, connections):
        row = self.measured(server, mode, connections)
        return row["requests_per_second"] if row else math.nan

    def unserved(self, row):
        return self.counted and row["answered"] < row["concurrency"]

    def rate_text(self, server, mode, connections):
        """The rate as the prose quotes it, with the census's warning when it applies."""
        row = self.measured(server, mode, connections)
        if row is None:
            return "no figure (see its row)"
        text = f"{row['requests_per_second']:,.0f}"
        if self.unserved(row):
            text += f" (only {row['answered']:,} of {connections:,} clients answered)"
        return text

    def best(self, servers, mode, connections):
        """The server with the highest rate among ``servers``, and that rate."""
        return max(((name, self.rate(name, mode, connections)) for name in servers), key=lambda pair: pair[1])

    def peak_mb(self, server):
        return max(row["peak_rss_kb"] for row in self.rows.values() if row["server"] == server) / 1024


def bulleted(paragraphs, width=88):
    """A Markdown list, wrapped as the README's prose is."""
    return "\n".join(
        textwrap.fill(
            text, width, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
        )
        for text in paragraphs
    )


def display(server):
    return server.replace("gunicorn-", "gunicorn ")


# --- the hello-world blocks ---------------------------------------------------------------------


def table(results):
    header = "| server | " + " | ".join(f"{mode}, {level}" for mode, level in TABLE_COLUMNS) + " | peak memory |"
    lines = [header, "| --- |" + " ---: |" * (len(TABLE_COLUMNS) + 1)]
    for server in results.servers:
        cells = []
        for mode, level in TABLE_COLUMNS:
            row = results.rows.get((server, mode, level))
            if row is None:
                cells.append("-")
            elif row["note"]:
                cells.append("error" if row["note"].startswith("error") else "unavailable")
            elif results.unserved(row):
                cells.append(f"{row['requests_per_second']:,.0f} ({row['answered']:,}/{level:,} answered)")
            else:
                cells.append(f"{row['requests_per_second']:,.0f}")
        lines.append(f"| {server} | " + " | ".join(cells) + f" | {results.peak_mb(server):,.0f} MB |")
    return "\n".join(lines)


def ratios(results, c10k):
    r = results.rate
    best, best_rate = results.best(PRODUCTION, "keep-alive", 100)
    gunicorn, gunicorn_rate = results.best(GUNICORNS, "keep-alive", 100)
    select, bare = r("select", "keep-alive", 100), r("bare-loop", "keep-alive", 100)
    bare_text = results.rate_text("bare-loop", "keep-alive", 100)
    production = ", ".join(
        f"{display(name)} {results.rate_text(name, 'keep-alive', 100)}"
        for name in sorted(PRODUCTION, key=lambda name: -r(name, "keep-alive", 100))
    )
    bullets = [
        f"**select, keep-alive, 100 connections**: {results.rate_text('select', 'keep-alive', 100)} requests/s, "
        f"{select / best_rate:.2f} times the best production server ({production}).",
        f"**threaded, `Connection: close`, 10 connections**: {results.rate_text('threaded', 'close', 10)}, "
        f"{r('threaded', 'close', 10) / r('waitress', 'close', 10):.2f} times waitress "
        f"({results.rate_text('waitress', 'close', 10)}).",
        f"**part 2's server, `Connection: close`, 10 connections**: {results.rate_text('part2', 'close', 10)}, "
        f"{r('part2', 'close', 10) / r('wsgiref', 'close', 10):.2f} times `wsgiref.simple_server` "
        f"({results.rate_text('wsgiref', 'close', 10)}).",
        f"**prefork**, keep-alive, 100 connections: {results.rate_text('prefork', 'keep-alive', 100)}, "
        f"{r('prefork', 'keep-alive', 100) / select:.2f} times the select server, and "
        f"{r('prefork', 'keep-alive', 100) / gunicorn_rate:.2f} times the best gunicorn ({display(gunicorn)}).",
        f"**asyncio**, keep-alive, 100 connections: {results.rate_text('asyncio', 'keep-alive', 100)}, "
        f"{r('asyncio', 'keep-alive', 100) / gunicorn_rate:.2f} times the best gunicorn, and "
        f"{r('asyncio', 'keep-alive', 100) / select:.2f} times the select server: asyncio's generality "
        "(transports, handles, futures) is Python code too; docs/bench/tuning.md has what its hand-over "
        "to the app's threads was measured to save.",
        f"**select** reaches {select / bare:.1%} of the bare loop ({bare_text}):"
        " the rest of each request's time goes to HTTP (parsing, the protocol's rules), WSGI (the environ, the "
        f"response) and handing the app to a thread and back. 30% of the bare loop would leave "
        f"{1e6 / (0.3 * bare):.0f} microseconds a request, under one GIL, for all of that.",
    ]
    c10k = {row["server"]: row for row in c10k}
    if "select" in c10k and "threaded" in c10k:
        select_c10k, threaded_c10k = c10k["select"], c10k["threaded"]
        bullets.append(
            f"**select, memory per idle connection** (`--c10k`, `docs/bench/c10k.csv`): "
            f"{select_c10k['answered']:,} of {select_c10k['connections']:,} connections answered and held open, "
            f"{select_c10k['kb_per_connection']:.1f} KB of resident memory each; the threaded server, "
            f"{threaded_c10k['connections']:,} connections, {threaded_c10k['kb_per_connection']:.1f} KB each "
            "(a thread's stack and bookkeeping)."
        )
    return bulleted(bullets)


def unserved(results):
    """The census's findings: which figures come from only some of the clients."""
    if not results.counted:
        return bulleted(
            [
                "The results.csv in docs/bench/ predates that count (it has no `answered` column): "
                "run the benchmark again to see which figures it flags."
            ]
        )
    flagged = [
        f"{row['server']}, {row['mode']}, {row['concurrency']:,} connections: {row['answered']:,} answered"
        for row in results.rows.values()
        if not row["note"] and results.unserved(row)
    ]
    if not flagged:
        return bulleted(["In this run every client of every row got an answer."])
    return bulleted(
        ["In this run, the figures that come from only some of the clients are: " + "; ".join(flagged) + "."]
    )


def memory(results):
    return bulleted(
        [
            f"In this run the forking server reached {results.peak_mb('forking'):,.0f} MB by that count, "
            f"the prefork server {results.peak_mb('prefork'):,.0f} MB."
        ]
    )


# --- the files blocks ------------------------------------------------------------------------------


def size_text(size):
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


class FileResults:
    """files.csv, looked up by (server, file, connections)."""

    def __init__(self, rows):
        self.rows = {(row["server"], row["file"], row["concurrency"]): row for row in rows}
        self.servers = list(dict.fromkeys(row["server"] for row in rows if not row["server"].endswith(HELLO)))
        self.sizes = {row["file"]: row["file_bytes"] for row in rows}
        self.levels = {
            file: sorted({row["concurrency"] for row in rows if row["file"] == file})
            for file in ("small", "large", "hello")
        }

    def figure(self, server, file, connections, field):
        row = self.rows.get((server, file, connections))
        return row[field] if row is not None and not row["note"] else math.nan


def files_table(files):
    small, large = size_text(files.sizes["small"]), size_text(files.sizes["large"])
    top_large = files.levels["large"][-1]
    columns = [("small", level, "requests_per_second", f"{small}, {level}, req/s") for level in files.levels["small"]]
    columns += [("large", level, "mb_per_second", f"{large}, {level}, MB/s") for level in files.levels["large"]]
    columns.append(("large", top_large, "cpu_seconds_per_gb", f"{large}, {top_large}, CPU s per GB"))
    top_small = files.levels["small"][-1]
    columns.append(("hello", top_small, "requests_per_second", f"hello world, {top_small}, req/s"))
    lines = [
        "| server | " + " | ".join(column[3] for column in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for server in files.servers:
        cells = []
        for file, level, field, _ in columns:
            row = files.rows.get((server + HELLO if file == "hello" else server, file, level))
            if row is None:
                cells.append("-")
            elif row["note"]:
                cells.append("error" if row["note"].startswith("error") else "unavailable")
            else:
                cells.append(f"{row[field]:,.2f}" if field == "cpu_seconds_per_gb" else f"{row[field]:,.0f}")
        lines.append(f"| {server} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def files_ratios(files):
    small, large = size_text(files.sizes["small"]), size_text(files.sizes["large"])
    top_small, top_large = files.levels["small"][-1], files.levels["large"][-1]

    def ratio(server, anchor, file, level, field):
        return files.figure(server, file, level, field) / files.figure(anchor, file, level, field)

    def verdict(value, target):
        return "met" if value >= target else "not met" if not math.isnan(value) else "not measured"

    bullets = []
    for server in ("prefork", "select"):
        value = ratio(server, "nginx", "large", top_large, "mb_per_second")
        target = FILES_TARGETS[server]
        bullets.append(
            f"**{server} against nginx**, {large}, {top_large} connections: {value:.0%} of nginx's MB/s "
            f"(the target: at least {target:.0%}; {verdict(value, target)})."
        )
    for server, target in SMALL_FILE_TARGETS.items():
        value = ratio(server, "whitenoise", "small", top_small, "requests_per_second")
        bullets.append(
            f"**{server} against whitenoise on gunicorn gthread**, {small}, keep-alive, {top_small} connections: "
            f"{value:.2f} times its requests/s (the target: at least {target:g} times; {verdict(value, target)})."
        )
    for server in SMALL_FILE_TARGETS:
        value = files.figure(server, "small", top_small, "requests_per_second") / files.figure(
            server + HELLO, "hello", top_small, "requests_per_second"
        )
        target = SMALL_FILE_SHARE_OF_HELLO
        bullets.append(
            f"**{server}: the {small} file against its own hello world**, {top_small} connections: {value:.0%} of "
            f"its hello-world requests/s (the target: at least {target:.0%}; {verdict(value, target)})."
        )
    target = FILES_TARGETS["cpu"]
    for server in ("prefork", "select"):
        value = ratio(f"{server}-read", server, "large", top_large, "cpu_seconds_per_gb")
        bullets.append(
            f"**sendfile against read-and-send** on the {server} server, {large}, {top_large} connections: "
            f"{value:.1f} times less CPU time per GB (the target: at least {target:g} times; "
            f"{verdict(value, target)})."
        )
    return bulleted(bullets)


# --- the ASGI blocks (part 4) ---------------------------------------------------------------------


def asgi_ratio(results, ours, theirs, connections=ASGI_LEVEL):
    return results.rate(ours, "keep-alive", connections) / results.rate(theirs, "keep-alive", connections)


def ratio_text(value, target=1.0):
    """Two decimals, or three where two would round a ratio up to its target or to parity:
    0.998 is not "1.00" beside the server it is read against, nor 1.996 "2.00" beside a
    target of 2."""
    shown = f"{value:.2f}"
    crosses = any((float(shown) >= mark) != (value >= mark) for mark in {target, 1.0})
    return f"{value:.3f}" if crosses and not math.isnan(value) else shown


def asgi_table(results):
    """Requests per second at each level, and at 100 connections the ratio to each anchor."""
    levels = sorted({level for (_, mode, level) in results.rows if mode == "keep-alive"})
    header = "| server | " + " | ".join(f"keep-alive, {level:,}" for level in levels)
    header += "".join(f" | / {anchor}, {ASGI_LEVEL}" for anchor in ASGI_ANCHORS) + " | peak memory |"
    lines = [header, "| --- |" + " ---: |" * (len(levels) + len(ASGI_ANCHORS) + 1)]
    order = {name: index for index, name in enumerate(ASGI_ORDER)}
    for server in sorted(results.servers, key=lambda name: order.get(name, len(order))):
        cells = []
        for level in levels:
            row = results.rows.get((server, "keep-alive", level))
            if row is None:
                cells.append("-")
            elif row["note"]:
                cells.append("error" if row["note"].startswith("error") else "unavailable")
            elif results.unserved(row):
                cells.append(f"{row['requests_per_second']:,.0f} ({row['answered']:,}/{level:,} answered)")
            else:
                cells.append(f"{row['requests_per_second']:,.0f}")
        for anchor in ASGI_ANCHORS:
            anchor = FASTAPI_ANCHORS[anchor] if server in FASTAPI else anchor
            target = next((t for ours, theirs, t in ASGI_TARGETS if (ours, theirs) == (server, anchor)), 1.0)
            cells.append(ratio_text(asgi_ratio(results, server, anchor), target) if anchor else "-")
        lines.append(f"| {server} | " + " | ".join(cells) + f" | {results.peak_mb(server):,.0f} MB |")
    return "\n".join(lines)


def asgi_targets_met(results):
    """Each target of part 4: (ours, theirs, target, ratio measured)."""
    return [(ours, theirs, target, asgi_ratio(results, ours, theirs)) for ours, theirs, target in ASGI_TARGETS]


def asgi_ratios(results):
    def verdict(value, target):
        return "met" if value >= target else "not met" if not math.isnan(value) else "not measured"

    def rate(server):
        return results.rate_text(server, "keep-alive", ASGI_LEVEL)

    bullets = [
        f"**{ours} against {theirs}**, keep-alive, {ASGI_LEVEL} connections: {rate(ours)} against {rate(theirs)} "
        f"requests/s, {ratio_text(value, target)} times "
        f"(the target: at least {target:g} times; {verdict(value, target)})."
        for ours, theirs, target, value in asgi_targets_met(results)
    ]
    bullets += [
        f"**{ours} against {theirs}**, keep-alive, {ASGI_LEVEL} connections: {rate(ours)} against {rate(theirs)} "
        f"requests/s, {ratio_text(asgi_ratio(results, ours, theirs))} times (no target: {why})."
        for ours, theirs, why in ASGI_REPORTED
    ]
    return bulleted(bullets)


# --- how long a run takes ------------------------------------------------------------------------

# The runs the README names, by their options as bench.py records them (run_name).
RUNS = {"": "the full run", "--quick": "`--quick`", "--c10k": "`--c10k`", "--files": "`--files`", "--asgi": "`--asgi`"}


def duration_text(seconds):
    return f"{seconds:.0f} seconds" if seconds < 90 else f"{seconds / 60:.0f} minutes"


def durations(bench):
    """How long each run of the README's commands took, from wall_time.json; a run not
    recorded there is said to be not measured, never guessed."""
    path = bench / "wall_time.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    measured = [f"{label} {duration_text(times[name])}" for name, label in RUNS.items() if name in times]
    unmeasured = [label for name, label in RUNS.items() if name not in times]
    if not measured:
        return (
            "How long each run takes is not measured yet: `bench.py` writes its wall time into "
            "`wall_time.json` beside its results, and the runs in `docs/bench/` are older than that."
        )
    sentence = f"How long each run took on that machine (`docs/bench/wall_time.json`): {'; '.join(measured)}"
    if unmeasured:
        sentence += f"; {', '.join(unmeasured)}: not measured yet"
    return sentence + "."


def wrapped(text, width=88):
    return textwrap.fill(text, width, break_on_hyphens=False, break_long_words=False)


# --- rendering and checking ----------------------------------------------------------------------


def render(bench=BENCH):
    """Every generated block, by name, from the files in ``bench``."""
    results = Results(read_csv(bench / "results.csv"))
    blocks = {
        "table": table(results),
        "ratios": ratios(results, read_csv(bench / "c10k.csv")),
        "unserved": unserved(results),
        "memory": memory(results),
        "durations": wrapped(durations(bench)),
    }
    file_rows = read_csv(bench / "files.csv")
    if file_rows:
        files = FileResults(file_rows)
        blocks["files-table"], blocks["files-ratios"] = files_table(files), files_ratios(files)
    else:
        missing = "No files run in docs/bench/ yet: `bench.py --files --out docs/bench` writes `files.csv`."
        blocks["files-table"], blocks["files-ratios"] = missing, bulleted(["(no files run yet)"])
    asgi_rows = read_csv(bench / "asgi.csv")
    if asgi_rows:
        asgi = Results(asgi_rows)
        blocks["asgi-table"], blocks["asgi-ratios"] = asgi_table(asgi), asgi_ratios(asgi)
    else:
        missing = "No ASGI run in docs/bench/ yet: `bench.py --asgi --out docs/bench` writes `asgi.csv`."
        blocks["asgi-table"], blocks["asgi-ratios"] = missing, bulleted(["(no ASGI run yet)"])
    return {name: text + "\n" for name, text in blocks.items()}


def blocks_in(text):
    return {match["name"]: match["body"] for match in BLOCK.finditer(text)}


def rewrite(text, blocks):
    """``text`` with each block's body replaced by the rendered one."""
    unknown = set(blocks_in(text)) - set(blocks)
    if unknown:
        raise ValueError(f"no renderer for the block(s) {', '.join(sorted(unknown))}")
    return BLOCK.sub(lambda match: match[1] + blocks[match["name"]] + match[4], text)


def stale(text, blocks):
    """Names of the blocks whose text differs from the rendered one, or that are missing."""
    found = blocks_in(text)
    return [name for name, body in blocks.items() if found.get(name) != body]


def main(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    parser.add_argument("--bench", type=Path, default=BENCH, help="the folder of results.csv (default docs/bench)")
    parser.add_argument("--readme", type=Path, default=README, help="the file to rewrite (default README.md)")
    args = parser.parse_args(argv)
    blocks = render(args.bench)
    text = args.readme.read_text(encoding="utf-8")
    out_of_date = stale(text, blocks)
    if args.check:
        if out_of_date:
            print(f"stale in {args.readme}: {', '.join(out_of_date)} (run figures.py)", file=sys.stderr)
            return 1
        return 0
    missing = [name for name in out_of_date if name not in blocks_in(text)]
    if missing:
        print(f"{args.readme} has no markers for: {', '.join(missing)}", file=sys.stderr)
        return 1
    args.readme.write_text(rewrite(text, blocks), encoding="utf-8")
    print(f"rewrote {len(out_of_date)} block(s) of {args.readme}: {', '.join(out_of_date) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
