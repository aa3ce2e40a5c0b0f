"""part4_asgi/request_cost.py: each server's protocol measured in process, on requests it
answered; and the figures docs/bench/tuning.md quotes from the committed request_cost.csv."""

import csv
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
    with pytest.raises(RuntimeError, match="asgi: 0 responses to"):
        request_cost.cpu_seconds("asgi", 10)
    assert request_cost.cpu_seconds("uvicorn-httptools", 10) > 0


def test_a_bad_argument_is_one_line():
    script = ROOT / "part4_asgi" / "request_cost.py"
    done = subprocess.run([sys.executable, script, "--rounds", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    said = "argument --rounds: invalid value '0': expected a whole number of at least 1 (see --help)"
    assert done.stderr.splitlines() == [f"request_cost.py: error: {said}"]


def quoted(rows):
    """The phrases tuning.md builds from request_cost.csv."""
    cpu = {row["kind"]: float(row["microseconds_per_request"]) for row in rows}
    calls = {row["kind"]: round(float(row["python_calls_per_request"])) for row in rows}
    above_floor = {kind: calls[kind] - calls["floor"] for kind in ("asgi", "uvicorn-httptools")}
    parser_more = calls["parser:asgi"] - calls["parser:httptools"]
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
        f"httptools, of the {cpu['asgi'] - cpu['uvicorn-httptools']:.0f} µs between the two servers.",
        f"ours makes {calls['asgi-fastapi'] - calls['uvicorn-fastapi']} calls more than uvicorn, of "
        f"{calls['asgi-fastapi']}",
    ]


def test_tuning_quotes_the_committed_request_cost_csv():
    tuning = " ".join((BENCH / "tuning.md").read_text(encoding="utf-8").split())
    for phrase in quoted(read(BENCH / "request_cost.csv")):
        assert phrase in tuning
