"""bench.py runs end to end on a tiny load and writes every row and plot.

These tests check that the benchmark works, never how fast anything is: speed is
measured by running bench.py itself, not by the test suite.
"""

import csv
import json
import subprocess
import sys

import pytest

from harness import ROOT
from part3_concurrency.bench import MODES, SERVERS, parse_wrk
from tests.conftest import require_program

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(240)
def test_quick_run_writes_a_row_for_every_server_mode_and_level_and_both_plots(tmp_path):
    require_program("wrk")
    result = subprocess.run(
        [sys.executable, "part3_concurrency/bench.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "results.csv") as file:
        rows = list(csv.DictReader(file))
    measured = {(row["server"], row["mode"], int(row["concurrency"])) for row in rows if not row["note"]}
    assert measured == {(server, mode, level) for server in SERVERS for mode in MODES for level in (1, 10)}
    for row in rows:
        assert float(row["requests_per_second"]) > 0, row
        assert int(row["errors"]) == 0, row
        assert int(row["peak_rss_kb"]) > 0, row
        assert row["client"] == "wrk"
    assert json.loads((tmp_path / "results.json").read_text()) == [
        {
            **row,
            "concurrency": int(row["concurrency"]),
            "requests_per_second": float(row["requests_per_second"]),
            "p50_ms": float(row["p50_ms"]),
            "p99_ms": float(row["p99_ms"]),
            "errors": int(row["errors"]),
            "peak_rss_kb": int(row["peak_rss_kb"]),
        }
        for row in rows
    ]
    for plot in ("throughput.png", "latency.png"):
        assert (tmp_path / plot).read_bytes().startswith(PNG_SIGNATURE)
    assert "select" in result.stdout and "waitress" in result.stdout  # the table is printed


@pytest.mark.timeout(120)
def test_c10k_mode_holds_every_connection_it_opens(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "part3_concurrency/bench.py",
            "--c10k",
            "--connections",
            "1500",
            "--threaded-connections",
            "200",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = {entry["server"]: entry for entry in json.loads((tmp_path / "c10k.json").read_text())}
    assert report["select"]["answered"] == report["select"]["connections"] == 1500
    assert report["threaded"]["answered"] == report["threaded"]["connections"] == 200


WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:4000/
  2 threads and 10 connections
  Latency Distribution
     50%  512.00us
     75%    1.00ms
     90%    2.00ms
     99%    1.50s
  12000 requests in 1.00s, 1.50MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:  12000.50
"""


def test_wrk_reports_are_parsed_with_their_units():
    assert parse_wrk(WRK_OUTPUT) == (12000.5, 0.512, 1500.0, 10)


def test_an_unknown_server_name_is_one_clear_line():
    result = subprocess.run(
        [sys.executable, "part3_concurrency/bench.py", "--servers", "nginx"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown server 'nginx'" in result.stderr
