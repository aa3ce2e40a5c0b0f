"""What the notebooks say a server does, checked against the server.

A sentence such as "the answers come one a second" describes the code at the time it
was written; when the code changes, the sentence is left behind. Each test here
re-enacts one claim of notebook 03, with the notebook's own numbers, and fails when the
server stops behaving as the notebook says:

* section 6.1: the select server with ``--threads 0`` answers five one-second requests
  one a second, as the iterative server does;
* sections 1.1 and 4.2: a forking server that never reaps leaves one zombie for each
  request it served (six in 1.1, where a first request comes before the five; five in 4.2);
* section 4.1: a forking server whose parent keeps its copies holds one more descriptor
  for every client, and one that closes them does not;
* sections 5.3, 5.4 and 8.1: a silent connection costs the select server "two to three
  kilobytes here", by the notebook's own method.

And notebook 01, section 2.3: the kernels' buffers hide a peer that reads nothing for
megabytes on loopback (8 MB go out), not for many times more (64 MB are stuck).

And claims of the README and of a program's own ``--help``:

* ``mixmatch.py``'s help offers only the options it passes on to the server it starts;
* "Deadlines, not per-read timeouts": an idle kept-alive connection is closed without a
  word, a late head gets 408, and a client that takes none of its response is dropped
  with one line in the log.
"""

import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness import ROOT
from part2_wsgi.connection import Deadlines
from part3_concurrency.measure.client import run_load
from tests.helpers import TIMING, wait_until


def child_states(pid):
    """The state letter of each child process of ``pid`` (``Z``: a zombie), from ps."""
    out = subprocess.run(["ps", "-A", "-o", "ppid=,stat="], capture_output=True, text=True, timeout=10).stdout
    return [line.split()[1][0] for line in out.splitlines() if line.split()[0] == str(pid)]


def wait_for_zombies(pid, count, timeout=5.0):
    """Ask ps until ``count`` children are zombies (a child exits a moment after it has answered)."""
    deadline = time.monotonic() + timeout
    while (states := child_states(pid)).count("Z") < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return states


def established(local_port, remote_port):
    """Whether loopback holds an ESTABLISHED TCP connection from ``local_port`` to ``remote_port``."""
    try:
        with open("/proc/net/tcp") as file:
            lines = file.readlines()[1:]
    except OSError:
        return False  # no /proc (macOS): nothing to watch; the request after it still orders the log
    for line in lines:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == local_port and int(fields[2].split(":")[1], 16) == remote_port:
            return fields[3] == "01"
    return False


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        return response.headers


@TIMING
@pytest.mark.slow
@pytest.mark.timeout(30)
def test_the_select_server_with_the_app_in_its_loop_answers_one_a_second(serve):
    """Notebook 03, section 6.1: one request at a time, each answered as soon as it is done."""
    server = serve("part3_concurrency/select_server.py", "--threads", "0", "--quiet")
    result = run_load(server.url + "/sleep?seconds=1", concurrency=5, requests=5)
    assert [record.status for record in result.records] == [200] * 5
    answers = sorted(record.end for record in result.records)
    # About 1, 2, 3, 4 and 5 s: never two together (the gaps are a second, give or take a busy machine).
    assert 0.8 < answers[0] < 2.5, answers
    gaps = [later - earlier for earlier, later in zip(answers, answers[1:], strict=False)]
    assert all(0.6 < gap < 1.8 for gap in gaps), answers


@pytest.mark.timeout(30)
def test_the_minimal_forking_mistakes_leave_six_zombies_after_a_first_request_and_five_more(serve):
    """Notebook 03, section 1.1: a first request (read until closed), five more, six zombies."""
    server = serve("part3_concurrency/minimal_servers.py", "--model", "forking-mistakes")
    with socket.create_connection(server.address, timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        conn.recv(65536)  # (the connection does not end: the parent holds a copy)
    for _ in range(5):
        get(server.url + "/")
    states = wait_for_zombies(server.pid, 6)
    assert states == ["Z"] * 6, states


@pytest.mark.timeout(30)
def test_the_minimal_forking_mistakes_leave_five_zombies_after_five_requests(serve):
    """Notebook 03, section 4.2: five requests, five children in state Z."""
    server = serve("part3_concurrency/minimal_servers.py", "--model", "forking-mistakes")
    for _ in range(5):
        get(server.url + "/")
    states = wait_for_zombies(server.pid, 5)
    assert states == ["Z"] * 5, states


@pytest.mark.timeout(30)
@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors in /proc (Linux)")
def test_the_minimal_forking_mistakes_hold_a_descriptor_per_client_and_the_fix_none(serve):
    """Notebook 03, section 4.1: twenty requests, twenty more descriptors in the parent
    that keeps its copies; as many as before in the one that closes them."""
    grown = {}
    for model in ("forking-mistakes", "forking"):
        server = serve("part3_concurrency/minimal_servers.py", "--model", model)
        get(server.url + "/")  # a first request: whatever a server opens once is open now
        before = len(list(Path(f"/proc/{server.pid}/fd").iterdir()))
        for _ in range(20):
            get(server.url + "/")
        grown[model] = len(list(Path(f"/proc/{server.pid}/fd").iterdir())) - before
    assert grown == {"forking-mistakes": 20, "forking": 0}, grown


@pytest.mark.slow  # four runs of mixmatch.py, each importing its production server
@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", ["wsgiref", "waitress", "gunicorn-sync", "gunicorn-gthread"])
def test_mixmatch_offers_only_the_options_it_honours(server):
    """``mixmatch.py SERVER --help`` lists APP, --host, --port (and --workers for gunicorn);
    --files, --quiet and --deadlines, which it would pass to nobody, are refused, so that
    ``mixmatch.py waitress --files DIR`` cannot quietly serve the demo app instead."""

    def mixmatch(*args):
        command = [sys.executable, "part2_wsgi/mixmatch.py", server, *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)

    shown = mixmatch("--help")
    assert shown.returncode == 0, shown.stderr
    offered = {word.rstrip(",") for word in shown.stdout.split() if word.startswith("--")}
    expected = {"--help", "--host", "--port"} | ({"--workers"} if server.startswith("gunicorn") else set())
    assert offered == expected, shown.stdout
    for option in (["--files", "docs"], ["--quiet"], ["--deadlines", "head=1"]):
        refused = mixmatch(*option, "--port", "0")
        assert refused.returncode == 2, f"{option}: exit {refused.returncode}, {refused.stdout} {refused.stderr}"
        assert f"unrecognized arguments: {option[0]}" in refused.stderr, refused.stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc/sys/net/ipv4/tcp_wmem").exists(), reason="Linux's default buffer sizes")
def test_the_buffers_hide_a_peer_that_reads_nothing_for_4_mb_and_not_for_64(serve):
    """Notebook 01, section 2.3: sendall to the echo server, reading nothing of the echo.
    (8 MB is at the edge of what the four buffers hold: most times, not every time.)"""
    server = serve("part1_sockets/echo_server.py")
    with socket.create_connection(server.address, timeout=5) as client:
        client.sendall(bytes(4 << 20))  # completes: the four buffers on the way hold it
    with socket.create_connection(server.address, timeout=3) as client:
        with pytest.raises(TimeoutError):
            client.sendall(bytes(64 << 20))  # stuck: the echo fills them, nobody reads it


def resident_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from Linux's /proc")
def test_a_silent_connection_costs_the_select_server_two_to_three_kilobytes(serve):
    """Notebook 03, section 5: silent connections at 0, 250, 500 and 1,000, one request after
    each batch (so the server has accepted them all), and the least-squares slope of its
    resident memory: "two to three kilobytes here"."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open-file hard limit ({hard}) is too low for 1,000 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    server = serve("part3_concurrency/select_server.py", "--quiet")
    get(server.url + "/")  # the baseline is a server that has served
    held, points = [], []
    try:
        for level in (0, 250, 500, 1000):
            while len(held) < level:
                held.append(socket.create_connection(server.address, timeout=5))
            get(server.url + "/")
            points.append((level, resident_kb(server.pid)))
        slope = statistics.linear_regression(*zip(*points, strict=True)).slope
    finally:
        for connection in held:
            connection.close()
    assert 2.0 <= slope <= 3.0, f"{slope:.1f} KB per silent connection: {points}"


def readme_text():
    """The README, its lines folded into one: a phrase may wrap anywhere."""
    return " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())


# The README's "Deadlines, not per-read timeouts", phrase by phrase: each is re-enacted below.
DEADLINE_PHRASES = [
    f"A request head must be complete {Deadlines().head:g} s after its first byte",
    f"a body gets {Deadlines().body:g} s plus a second per {Deadlines().body_min_rate} bytes received",
    "a late head or body gets `408 Request Timeout`",
    f"An idle kept-alive connection is closed without a word after {Deadlines().idle:g} s",
    "is dropped, with one line in the log",
]


@TIMING
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_readme_deadline_cases_idle_closed_silently_late_head_408_non_reader_dropped(serve, tmp_path):
    """README, "Deadlines, not per-read timeouts": only a late head (or body) gets 408; an
    idle kept-alive connection is closed without a word; a client that takes nothing of
    its response is dropped, with one line in the log. One server, short deadlines."""
    readme = readme_text()
    missing = [phrase for phrase in DEADLINE_PHRASES if phrase not in readme]
    assert not missing, f"the README no longer says: {missing}"
    (tmp_path / "big.bin").write_bytes(bytes(30 << 20))  # far more than the kernel's buffers hold
    server = serve(
        "part3_concurrency/threaded_server.py", "--files", str(tmp_path), "--deadlines", "head=1,idle=1,send=1"
    )

    # Idle: one answer, then nothing more asked. The server closes, and says nothing.
    with socket.create_connection(server.address, timeout=10) as idle:
        idle.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: test\r\n\r\n")
        stream = idle.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 404")
        while stream.readline() != b"\r\n":
            pass
        stream.read(10)  # the 404's body: "Not Found\n"
        began = time.monotonic()
        assert stream.read() == b"", "an idle connection was answered, not closed silently"
        assert 0.5 < time.monotonic() - began < 3, "closed at its idle deadline"
        idle_port = idle.getsockname()[1]

    # A late head: 408, then closed.
    with socket.create_connection(server.address, timeout=10) as late:
        late.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")  # and never the blank line
        assert late.makefile("rb").readline().startswith(b"HTTP/1.1 408 ")

    # A client that reads nothing of a large file: dropped, with one line in the log.
    with socket.create_connection(server.address, timeout=10) as sleeper:
        sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sleeper.sendall(b"GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n")
        port = sleeper.getsockname()[1]
        server.wait_for_log(f":{port} ", timeout=10)
        # Done with this client once it has closed its socket (the kernel may still be
        # sending what it holds: the connection is not ESTABLISHED any more on its side).
        wait_until(lambda: not established(server.port, port), 10, "the server to close the dropped connection")
    # Whatever it logged about the client came down the pipe before a request made after that.
    with socket.create_connection(server.address, timeout=10) as after:
        after.sendall(f"GET /after-{port} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        assert after.makefile("rb").read().startswith(b"HTTP/1.1 404")
    log = server.wait_for_log(f"/after-{port} ", timeout=10)
    about_it = [line for line in log.splitlines() if f":{port} " in line or "/big.bin" in line]
    assert len(about_it) == 1 and "dropped" in about_it[0], about_it
    assert not [line for line in log.splitlines() if f":{idle_port} " in line], "the idle close was logged"
