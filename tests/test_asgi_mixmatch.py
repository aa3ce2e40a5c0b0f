"""part4_asgi/mixmatch.py: other people's ASGI servers under the workshop's contract, and
its table of every app on every server (notebook 04, section 6).

Real processes on free ports: each server prints ``Serving on``, answers, and exits 0 on
Ctrl-C; the table's every cell holds the expected status codes; and the threads column
says what the notebook says of it: a bare ASGI app is served by one thread on every
server, and a WSGI app through the adapter, or Django's ASGI application, by more
(as are Starlette and FastAPI, whose ``FileResponse`` calls ``os.stat`` on a thread).
"""

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness import ROOT
from part4_asgi.mixmatch import APPS, SERVERS, TABLE_SERVERS, run_table

# Slow as a whole, out of the quick loop (pytest -m "not slow"): uvicorn and hypercorn started for each test.
pytestmark = pytest.mark.slow


def mixmatch(*args, timeout=60):
    command = [sys.executable, "part4_asgi/mixmatch.py", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", list(SERVERS))
def test_each_server_offers_only_the_options_it_honours(server):
    """APP, --host, --port: --quiet, --root-path and --deadlines are our server's own, and
    refused here, so that nothing is quietly ignored."""
    shown = mixmatch(server, "--help")
    assert shown.returncode == 0, shown.stderr
    offered = {word.rstrip(",") for word in shown.stdout.split() if word.startswith("--")}
    assert offered == {"--help", "--host", "--port"}, shown.stdout
    for option in (["--quiet"], ["--root-path", "/api"], ["--deadlines", "head=1"]):
        refused = mixmatch(server, *option, "--port", "0")
        assert refused.returncode == 2, f"{option}: exit {refused.returncode}, {refused.stderr}"
        assert f"unrecognized arguments: {option[0]}" in refused.stderr, refused.stderr


@pytest.mark.timeout(30)
def test_the_table_refuses_an_app_it_does_not_know():
    refused = mixmatch("table", "--apps", "bare,nope")
    assert refused.returncode == 2 and "--apps" in refused.stderr, refused.stderr


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("server", list(SERVERS))
def test_each_server_serves_fastapi_and_stops_cleanly_on_ctrl_c(serve, server):
    running = serve("part4_asgi/mixmatch.py", server, "part4_asgi.apps.fastapi_app:app", timeout=30)
    with urllib.request.urlopen(running.url + "/state", timeout=10) as response:
        assert response.read() == b'{"started":true}'  # its lifespan ran before it served
    assert running.stop() == 0, running.log


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server, stops", [("ours", True), ("uvicorn-httptools", False), ("hypercorn", False)])
def test_ctrl_c_while_the_app_starts_stops_ours_and_not_the_others(server, stops):
    """While an app's startup hangs, uvicorn waits for it and takes no notice of Ctrl-C,
    and hypercorn waits for its own startup timeout (60 s); ours stops, status 0."""
    script = ["part4_asgi/server.py"] if server == "ours" else ["part4_asgi/mixmatch.py", server]
    command = [sys.executable, *script, "tests.asgi_apps:hanging_startup", "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while "startup hangs" not in (line := process.stderr.readline()):
            assert line, "the server ended before the app's startup began"
        process.send_signal(signal.SIGINT)
        try:
            status = process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
        assert status == (0 if stops else None)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_every_app_on_every_server_answers_as_expected_and_the_threads_come_back_with_wsgi():
    outcomes = run_table()
    assert [(o.app, o.server) for o in outcomes] == [(a, s) for a in APPS for s in TABLE_SERVERS]
    failed = [(o.app, o.server, [answer.status for answer in o.answers]) for o in outcomes if not o.passed]
    assert not failed, failed
    assert all(outcome.exit_code == 0 for outcome in outcomes), [(o.app, o.server, o.exit_code) for o in outcomes]
    if Path("/proc/self/status").exists():
        threads = {(o.app, o.server): o.threads for o in outcomes}
        for server in TABLE_SERVERS:
            assert threads["bare", server] == 1, threads
            assert threads["flask", server] > 1 and threads["django", server] > 1, threads
            # (and Starlette's FileResponse, GET /file, calls os.stat on a thread)
            assert threads["starlette", server] > 1 and threads["fastapi", server] > 1, threads
