"""bench.py runs end to end on a tiny load and writes every row and plot.

These tests check that the benchmark works, never how fast anything is: speed is
measured by running bench.py itself, not by the test suite.
"""

import csv
import json
import math
import socket
import subprocess
import sys

import pytest

from harness import ROOT
from part3_concurrency.measure.bench import (
    MODES,
    NAN,
    SERVERS,
    LoadFailed,
    Measurement,
    parse_wrk,
    print_table,
    run_wrk,
    summarise,
    wrk_failure,
)
from tests.conftest import require_program

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(240)
def test_quick_run_writes_a_row_for_every_server_mode_and_level_and_both_plots(tmp_path):
    require_program("wrk")
    result = subprocess.run(
        [sys.executable, "part3_concurrency/measure/bench.py", "--quick", "--out", str(tmp_path)],
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
            "part3_concurrency/measure/bench.py",
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
        [sys.executable, "part3_concurrency/measure/bench.py", "--servers", "nginx"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown server 'nginx'" in result.stderr


# --- a failed run is an error in its row, never a figure ---------------------------------

REFUSED = """Running 1s test @ http://127.0.0.1:1/
  2 threads and 10 connections
  Latency Distribution
     50%    0.00us
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 10, read 0, write 0, timeout 0
Requests/sec:      0.00
"""
RESET = WRK_OUTPUT.replace("12000 requests", "5 requests").replace("connect 1, read 2", "connect 0, read 900")
ALL_404 = WRK_OUTPUT.replace("Non-2xx or 3xx responses: 4", "Non-2xx or 3xx responses: 12000")


@pytest.mark.parametrize(
    ("returncode", "output", "says"),
    [
        (1, "unable to connect to 127.0.0.1:1 Connection refused\n", "wrk exited with status 1: unable to connect"),
        (0, "", "wrk printed no report"),
        (0, REFUSED, "no successful response: 0 requests; Socket errors: connect 10"),
        (0, RESET, "more socket errors than requests: 5 requests"),
        (0, ALL_404, "no successful response: 12000 requests"),
    ],
    ids=["non-zero-exit", "no-report", "zero-requests", "socket-errors-for-all", "no-2xx"],
)
def test_a_wrk_run_that_measured_nothing_is_a_failure(returncode, output, says):
    assert says in wrk_failure(returncode, output)


def test_a_wrk_run_with_a_few_errors_is_a_measurement():
    assert wrk_failure(0, WRK_OUTPUT) is None


def test_a_failed_round_makes_its_row_an_error_without_figures():
    measured = [
        Measurement("select", "keep-alive", 10, 1, 20000.0, 0.4, 1.2, 0, 20_000, "wrk"),
        Measurement("select", "keep-alive", 10, 2, NAN, NAN, NAN, 0, 20_000, "wrk", "no successful response"),
        Measurement("select", "close", 10, 1, 9000.0, 1.0, 2.0, 0, 20_000, "wrk"),
    ]
    rows = {row.mode: row for row in summarise(measured, {}, [10])}
    failed = rows["keep-alive"]
    assert failed.note == "error: no successful response"
    assert math.isnan(failed.requests_per_second) and math.isnan(failed.p99_ms)
    assert rows["close"].note == "" and rows["close"].requests_per_second == 9000.0


@pytest.mark.timeout(60)
def test_wrk_against_a_port_nobody_listens_on_is_an_error_row(capsys):
    require_program("wrk")
    with socket.socket() as unused:  # bound, never listening: every connection is refused
        unused.bind(("127.0.0.1", 0))
        with pytest.raises(LoadFailed):
            run_wrk(f"http://127.0.0.1:{unused.getsockname()[1]}/", 2, "keep-alive", 1)
    print_table(summarise([Measurement("select", "keep-alive", 2, 1, NAN, NAN, NAN, 0, 0, "wrk", "refused")], {}, [2]))
    table = capsys.readouterr().out
    assert "error: refused" in table and "nan" not in table
