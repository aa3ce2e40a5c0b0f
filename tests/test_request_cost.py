"""part4_asgi/request_cost.py: each server's protocol measured in process, on requests it
answered; and the figures docs/bench/tuning.md quotes from the committed request_cost.csv."""

import asyncio
import csv
import selectors
import subprocess
import sys

import pytest

from harness import ROOT
from part4_asgi import request_cost

BENCH = ROOT / "docs" / "bench"


def read(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_every_kind_is_measured_and_written(tmp_path, capsys):
    assert request_cost.main(["--requests", "40", "--rounds", "2", "--out", str(tmp_path)]) == 0
    rows = read(tmp_path / "request_cost.csv")
    assert [row["kind"] for row in rows] == [*request_cost.SERVERS, *request_cost.PARSERS]
    for row in rows:
        assert 0 < float(row["lowest"]) <= float(row["microseconds_per_request"]) <= float(row["highest"])
    calls = {row["kind"]: float(row["python_calls_per_request"]) for row in rows}
    # What tuning.md says of them: ours makes more calls than uvicorn with its C parser,
    # fewer than with h11; the floor fewest; and so for the parsers alone.
    assert calls["floor"] < calls["uvicorn-httptools"] < calls["asgi"] < calls["uvicorn-h11"]
    assert calls["parser:httptools"] < calls["parser:asgi"] < calls["parser:h11"]
    assert calls["uvicorn-fastapi"] < calls["asgi-fastapi"]
    assert "asgi-fastapi" in capsys.readouterr().out


def test_a_request_the_server_refuses_is_not_measured(monkeypatch):
    """Only answered requests count: ours answers an HTTP/1.1 request without Host 400 (RFC
    9112 says a server MUST), and the measurement stops rather than time the refusal.
    uvicorn with httptools answers it 200."""
    monkeypatch.setattr(request_cost, "REQUEST", b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(RuntimeError, match=r"asgi: 0 responses to 210 requests \(status lines: 400 x 1\)"):
        request_cost.cpu_seconds("asgi", 10)
    assert request_cost.cpu_seconds("uvicorn-httptools", 10) > 0


def test_a_response_without_the_apps_body_is_not_counted(monkeypatch):
    monkeypatch.setitem(request_cost.BODIES, request_cost.HELLO, b"Goodbye, world!\n")
    with pytest.raises(RuntimeError, match=r"asgi: 0 responses to 210 requests \(status lines: 200 x 210\)"):
        request_cost.cpu_seconds("asgi", 10)


def test_a_connection_answered_once_is_not_measured(monkeypatch):
    """Every request must be answered, not one: asked to close, ours answers the first
    request and reads no more."""
    monkeypatch.setattr(request_cost, "REQUEST", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with pytest.raises(RuntimeError, match=r"asgi: 1 responses to 210 requests \(status lines: 200 x 1\)"):
        request_cost.cpu_seconds("asgi", 10)


@pytest.mark.parametrize("kind", request_cost.SERVERS)
def test_each_request_is_answered_with_the_apps_body_in_as_many_writes_as_tuning_says(kind):
    """A 200 is not enough: the app's body too (the floor calls the app; a protocol that
    wrote a status line of its own would not count). And the writes, each a system call on
    a real socket, that the stand-in spares: ours one a response, uvicorn two (head, body)."""
    _, transport = asyncio.run(request_cost.serve(kind, 10))
    answered = request_cost.WARM_UP + 10
    assert transport.statuses == {b"200": answered} and transport.bodies == answered
    writes = {"uvicorn-httptools": 2, "uvicorn-h11": 2, "uvicorn-fastapi": 2}.get(kind, 1)
    assert transport.writes == writes * answered


def test_the_drive_makes_the_loop_wait_once_a_request(monkeypatch):
    """The one system call the drive leaves, as tuning.md says: the loop's wait, once a
    request, whatever the kind (the drive turns the loop; serve() checks every response
    was written by then)."""
    waits = 0

    class CountingSelector(selectors.DefaultSelector):
        def select(self, timeout=None):
            nonlocal waits
            waits += 1
            return super().select(timeout)

    async def waits_while_serving():
        before = waits
        await request_cost.serve("asgi", 10)
        return waits - before

    monkeypatch.setattr(selectors, "DefaultSelector", CountingSelector)
    assert asyncio.run(waits_while_serving()) == request_cost.WARM_UP + 10


def test_python_calls_are_per_request_and_the_same_every_time():
    """The set-up's and the warm-up's calls cancel out: a request's count, the same each
    time within a fraction of a call (the collector's finalizers, or a Date header formatted
    again when a second turns, fall in one run or the other)."""
    after_other_work = request_cost.python_calls("asgi-fastapi", 50)
    assert request_cost.python_calls("asgi-fastapi", 50) == pytest.approx(after_other_work, abs=0.5)
    # (What a request costs in calls depends on the version of Python: the count is held to
    # itself, not to this machine's figure.)
    floor = request_cost.python_calls("floor", 1000)
    assert floor == pytest.approx(round(floor), abs=0.1)
    assert floor == pytest.approx(request_cost.python_calls("floor", 300), abs=0.15)


def test_each_kinds_figures_are_its_rounds_median_lowest_and_highest(monkeypatch):
    times = iter([5e-6, 1e-6, 3e-6, 9e-6, 7e-6, 8e-6])  # a, b; then b, a (reversed); then a, b
    monkeypatch.setattr(request_cost, "cpu_seconds", lambda kind, requests: next(times))
    monkeypatch.setattr(request_cost, "python_calls", lambda kind, requests: 7)
    rows = {row["kind"]: row for row in request_cost.measure(("a", "b"), 1, 3)}
    assert [rows["a"][key] for key in ("microseconds_per_request", "lowest", "highest")] == [7.0, 5.0, 9.0]
    assert [rows["b"][key] for key in ("microseconds_per_request", "lowest", "highest")] == [3.0, 1.0, 8.0]


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--rounds", "0"], "argument --rounds: invalid value '0': expected a whole number of at least 1"),
        (["--out", "{file}"], "argument --out: cannot write request_cost.csv into '{file}': File exists"),
        (["--out", "{file}/csv"], "argument --out: cannot write request_cost.csv into '{file}/csv': Not a directory"),
        (["--out", "{taken}"], "argument --out: cannot write request_cost.csv into '{taken}': Is a directory"),
    ],
)
def test_a_bad_argument_is_one_line_before_any_measuring(tmp_path, argv, said):
    """A folder that cannot take request_cost.csv is said at once (a folder of that name
    in the way stops root too), not after minutes of measuring."""
    a_file, taken = tmp_path / "a_file", tmp_path / "taken"
    a_file.write_text("")
    (taken / "request_cost.csv").mkdir(parents=True)
    argv = [word.format(file=a_file, taken=taken) for word in argv]
    script = ROOT / "part4_asgi" / "request_cost.py"
    done = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"request_cost.py: error: {said.format(file=a_file, taken=taken)} (see --help)"]


def quoted(rows):
    """The phrases tuning.md builds from request_cost.csv."""
    cpu = {row["kind"]: float(row["microseconds_per_request"]) for row in rows}
    calls = {row["kind"]: round(float(row["python_calls_per_request"])) for row in rows}
    above_floor = {kind: calls[kind] - calls["floor"] for kind in ("asgi", "uvicorn-httptools")}
    parser_more = calls["parser:asgi"] - calls["parser:httptools"]
    hello_gap = cpu["asgi"] - cpu["uvicorn-httptools"]
    fastapi_gap = cpu["asgi-fastapi"] - cpu["uvicorn-fastapi"]
    assert calls["asgi-fastapi"] - calls["uvicorn-fastapi"] == calls["asgi"] - calls["uvicorn-httptools"]
    return [
        f"On Python {rows[0]['python']}, Python function calls a request",
        f"ours {calls['asgi']}, uvicorn with httptools {calls['uvicorn-httptools']}, uvicorn with h11 "
        f"{calls['uvicorn-h11']}, the floor {calls['floor']}; serving FastAPI, ours {calls['asgi-fastapi']} and "
        f"uvicorn {calls['uvicorn-fastapi']}; the parsers alone, ours {calls['parser:asgi']}, httptools "
        f"{calls['parser:httptools']}, h11 {calls['parser:h11']}.",
        f"ours {cpu['asgi']:.0f}, uvicorn with httptools {cpu['uvicorn-httptools']:.0f}, uvicorn with h11 "
        f"{cpu['uvicorn-h11']:.0f}, the floor {cpu['floor']:.0f}; the parsers alone, ours "
        f"{cpu['parser:asgi']:.1f}, httptools {cpu['parser:httptools']:.1f}, h11 {cpu['parser:h11']:.1f}.",
        f"Above the floor, ours makes {above_floor['asgi']} calls a request and uvicorn "
        f"{above_floor['uvicorn-httptools']}; our parser makes {parser_more} more than httptools' does.",
        f"Given httptools' parser, ours would still make {above_floor['asgi'] - parser_more}, "
        f"{(above_floor['asgi'] - parser_more) / above_floor['uvicorn-httptools']:.1f} times uvicorn's.",
        f"In CPU time, our parser takes {cpu['parser:asgi'] - cpu['parser:httptools']:.1f} µs more than "
        f"httptools, of the {hello_gap:.0f} µs between the two servers in process.",
        f"ours makes {calls['asgi-fastapi'] - calls['uvicorn-fastapi']} calls more than uvicorn, of "
        f"{calls['asgi-fastapi']} (the same difference as on the hello world)",
        f"ours spends {cpu['asgi-fastapi']:.0f} µs a FastAPI request and uvicorn {cpu['uvicorn-fastapi']:.0f}, "
        f"{fastapi_gap:.0f} µs more, {fastapi_gap / hello_gap:.1f} times the gap on the hello world",
        f"in process they cost ours {fastapi_gap:.0f} µs of its {cpu['asgi-fastapi']:.0f} a request",
    ]


def test_tuning_quotes_the_committed_request_cost_csv():
    tuning = " ".join((BENCH / "tuning.md").read_text(encoding="utf-8").split())
    for phrase in quoted(read(BENCH / "request_cost.csv")):
        assert phrase in tuning
