"""Part 3's load client (part3_concurrency/measure/client.py), run against real servers.

Through its Python API (as notebook 03 and bench.py use it) and its command line. The
servers start on port 0 with the ``serve`` fixture; everything talks over 127.0.0.1.
"""

import csv
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from harness import ROOT
from part3_concurrency.measure.client import LoadResult, Record, fetch, run_load
from tests.helpers import TIMING
from tests.servers import SERVERS

# Slow as a whole, out of the quick loop (pytest -m "not slow"): a server and the load client started for each test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]

CLIENT = str(ROOT / "part3_concurrency" / "measure" / "client.py")
ITERATIVE, THREADED, SELECT = SERVERS["iterative"], SERVERS["threaded"], SERVERS["select"]
STREAM_BODY = b"".join(f"piece {n} of 5\n".encode() for n in range(1, 6))


def run_client(*args, timeout=20):
    return subprocess.run(
        [sys.executable, CLIENT, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def logged(server, request_line, count, timeout=5.0):
    """Wait until the server's access log holds ``count`` lines for ``request_line``
    (it arrives through a pipe, a moment after the response), then for the line of one
    more request made after them, so that one line too many would show; return how
    many it holds."""
    deadline = time.monotonic() + timeout
    while server.log.count(f'"{request_line}"') < count and time.monotonic() < deadline:
        time.sleep(0.02)
    with urllib.request.urlopen(server.url + "/?name=last", timeout=10) as response:
        response.read()
    server.wait_for_log('"GET /?name=last HTTP/1.1"', timeout)
    return server.log.count(f'"{request_line}"')


def free_port():
    """A port nothing listens on: bind one, note it, close it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def overlapping(records):
    """Did every interval overlap every other (all were in flight at one moment)?"""
    return max(r.start for r in records) < min(r.end for r in records)


# --- the API ---------------------------------------------------------------------------------


def test_sends_exactly_n_requests_shared_by_the_threads(serve):
    server = serve(THREADED)
    result = run_load(server.url + "/", concurrency=3, requests=20)
    assert [r.index for r in result.records] == list(range(20))
    assert {r.client for r in result.records} <= {0, 1, 2}
    assert [r.status for r in result.records] == [200] * 20 and not result.errors
    assert result.completed == 20 and result.connections_opened == 20  # no keep-alive: one each
    assert all(0 <= r.start <= r.end <= result.wall_time for r in result.records)
    assert logged(server, "GET / HTTP/1.1", 20) == 20


@pytest.mark.parametrize("script", [THREADED, SELECT])
def test_keep_alive_reuses_one_connection_per_thread(serve, script):
    server = serve(script)
    result = run_load(server.url + "/", concurrency=2, requests=40, keep_alive=True)
    assert result.completed == 40 and not result.errors
    assert result.connections_opened <= 4  # 2, unless the server closed one along the way
    assert logged(server, "GET / HTTP/1.1", 40) == 40


def test_keep_alive_reconnects_when_the_server_closes(serve):
    # The iterative server answers every request with "Connection: close".
    server = serve(ITERATIVE)
    result = run_load(server.url + "/", concurrency=2, requests=10, keep_alive=True)
    assert result.completed == 10 and not result.errors
    assert result.connections_opened == 10
    assert logged(server, "GET / HTTP/1.1", 10) == 10


def test_chunked_responses_are_read_whole(serve):
    server = serve(SELECT)
    status, headers, body = fetch(server.url + "/stream")
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == STREAM_BODY
    assert headers["connection"] == "close"  # we said we would not reuse it, so it agrees
    # Read correctly, a chunked response leaves the connection ready for the next one.
    result = run_load(server.url + "/stream", concurrency=2, requests=20, keep_alive=True)
    assert result.statuses == {200: 20} and not result.errors
    assert result.connections_opened <= 4


def test_fetch_reads_a_content_length_body(serve):
    server = serve(THREADED)
    status, headers, body = fetch(server.url + "/sleep?seconds=0")
    assert (status, body) == (200, b"slept 0\n")
    assert headers["content-length"] == "8"


def test_non_2xx_responses_are_counted_apart_from_errors(serve):
    server = serve(THREADED)
    result = run_load(server.url + "/no-such-page", concurrency=2, requests=6, keep_alive=True)
    assert result.completed == 6 and not result.errors
    assert result.non_2xx == {404: 6}
    assert result.summary()["non_2xx"] == {404: 6}


def test_a_refused_port_counts_errors(serve):
    result = run_load(f"http://127.0.0.1:{free_port()}/", concurrency=2, requests=5)
    assert result.errors == {"refused": 5}
    assert result.completed == 0 and len(result.records) == 5
    assert result.latency_ms(50) is None


@TIMING
@pytest.mark.slow
def test_a_slow_server_counts_timeouts(serve):
    server = serve(THREADED)
    result = run_load(server.url + "/sleep?seconds=3", concurrency=2, requests=2, timeout=0.3)
    assert result.errors == {"timeout": 2}
    assert all(r.end - r.start < 2 for r in result.records)


@TIMING
@pytest.mark.slow
def test_the_timeline_shows_requests_served_at_the_same_time(serve):
    server = serve(THREADED)
    result = run_load(server.url + "/sleep?seconds=0.5", concurrency=4, requests=4)
    assert result.statuses == {200: 4}
    assert overlapping(result.records)  # all four in flight at one moment
    assert all(0.45 <= r.end - r.start < 1.0 for r in result.records)  # and served together
    assert result.wall_time < 1.5  # one after another would take 2 s


@TIMING
@pytest.mark.slow
def test_the_timeline_shows_requests_queued_one_behind_another(serve):
    # The client's four intervals still overlap: all were sent at once. But the iterative
    # server takes one at a time, so the others wait in its listen backlog and their
    # ends come about 0.5 s apart: 0.5, 1, 1.5, 2 s.
    server = serve(ITERATIVE)
    result = run_load(server.url + "/sleep?seconds=0.5", concurrency=4, requests=4)
    assert result.statuses == {200: 4}
    assert overlapping(result.records)
    ends = sorted(r.end for r in result.records)
    assert all(later - earlier >= 0.4 for earlier, later in zip(ends, ends[1:], strict=False))
    assert result.wall_time >= 1.9


def test_percentiles_are_nearest_rank():
    records = [Record(0, i, 0.0, ms / 1000, 200, None) for i, ms in enumerate(range(1, 101))]
    records.append(Record(0, 100, 0.0, 5.0, None, "timeout"))  # failures have no latency
    result = LoadResult("http://x/", 1, 101, False, records, wall_time=2.0)
    assert [round(result.latency_ms(p), 6) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert result.requests_per_second == 50.0
    assert result.summary()["latency_ms"]["p99"] == pytest.approx(99)


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_cli_prints_a_summary_and_writes_a_timeline(serve, tmp_path, suffix):
    server = serve(THREADED)
    path = tmp_path / f"timeline{suffix}"
    done = run_client(server.url + "/", "--concurrency", 3, "--requests", 12, "--keep-alive", "--timeline", path)
    assert done.returncode == 0, done.stderr
    assert "completed      12 of 12" in done.stdout and "requests/s" in done.stdout and "p99" in done.stdout
    if suffix == ".csv":
        with path.open(newline="") as rows:
            rows = list(csv.DictReader(rows))
    else:
        rows = json.loads(path.read_text())
    assert len(rows) == 12
    assert set(rows[0]) == {"client", "index", "start", "end", "status", "error"}
    assert sorted(int(row["index"]) for row in rows) == list(range(12))
    assert all(0 <= float(row["start"]) <= float(row["end"]) for row in rows)
    assert all(int(row["status"]) == 200 and row["error"] in ("", None) for row in rows)


def test_cli_counts_a_refused_connection_without_a_traceback():
    done = run_client(f"http://127.0.0.1:{free_port()}/", "--concurrency", 2, "--requests", 4, "--quiet")
    assert done.returncode == 1  # not one response came back
    assert "Traceback" not in done.stdout + done.stderr
    assert "refused      4" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["not-a-url", "-n", "1"],
        ["https://127.0.0.1:8443/"],
        ["http://127.0.0.1:8888/", "--concurrency", "0"],
        ["http://127.0.0.1:8888/", "--requests", "0"],
        ["http://127.0.0.1:8888/", "--requests", "many"],
        ["http://127.0.0.1:8888/", "--timeout", "-1"],
        ["http://127.0.0.1:8888/", "--timeline", "out.txt"],
    ],
    ids=["not-a-url", "https", "concurrency-0", "requests-0", "requests-word", "timeout", "timeline-ext"],
)
def test_cli_bad_arguments_print_one_line_and_exit_2(args):
    done = run_client(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "error" in done.stderr


def test_cli_help_says_to_compare_throughput_with_wrk():
    done = run_client("--help")
    assert done.returncode == 0
    assert "slower than wrk" in done.stdout and "bench.py" in done.stdout


@pytest.mark.slow
def test_cli_shows_progress_on_long_runs_unless_quiet(serve):
    # About 2.4 s; off a terminal, a progress line appears every 2 s.
    server = serve(THREADED)
    command = [sys.executable, CLIENT, server.url + "/sleep?seconds=0.3", "--requests", "8"]
    runs = [
        subprocess.Popen(command + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for extra in ([], ["--quiet"])
    ]
    (out, err), (quiet_out, quiet_err) = [run.communicate(timeout=15) for run in runs]
    assert "completed      8 of 8" in out and "completed      8 of 8" in quiet_out
    assert re.fullmatch(r"([1-8]/8 requests, \d+/s\n)+", err), err
    assert quiet_err == ""


@pytest.mark.slow
def test_cli_ctrl_c_stops_cleanly_with_what_completed(serve):
    server = serve(THREADED)
    client = subprocess.Popen(
        [sys.executable, CLIENT, server.url + "/sleep?seconds=0.2", "--concurrency", "2", "--requests", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        server.wait_for_log("GET /sleep?seconds=0.2")  # requests are flowing
        client.send_signal(signal.SIGINT)
        stdout, stderr = client.communicate(timeout=10)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0
    assert "Traceback" not in stdout + stderr
    assert "interrupted" in stdout and "completed" in stdout
    completed = int(stdout.split("completed")[1].split()[0])
    assert 1 <= completed < 200


def test_keep_alive_retries_when_the_server_closed_the_idle_connection():
    """A server may close a kept-alive connection between two requests (its idle
    timeout) without saying so. The client must notice, reconnect and send again,
    not count an error. This stub server answers once per connection, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    answered = []

    def answer_once_per_connection():
        while len(answered) < 6:
            connection, _ = listener.accept()
            with connection:
                request = b""
                while b"\r\n\r\n" not in request and (data := connection.recv(4096)):
                    request += data
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                answered.append(request)

    stub = threading.Thread(target=answer_once_per_connection, daemon=True)
    stub.start()
    with listener:
        result = run_load(
            f"http://127.0.0.1:{listener.getsockname()[1]}/", concurrency=1, requests=6, keep_alive=True, timeout=5
        )
        stub.join(5)
    assert result.statuses == {200: 6} and not result.errors
    assert result.connections_opened == 6 and len(answered) == 6
