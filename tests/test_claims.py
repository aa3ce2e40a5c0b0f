"""What the notebooks say a server does, checked against the server.

A sentence such as "the answers come one a second" describes the code at the time it
was written; when the code changes, the sentence is left behind. Each test here
re-enacts one claim of notebook 03, with the notebook's own numbers, and fails when the
server stops behaving as the notebook says:

* section 6.1: the select server with ``--threads 0`` answers five one-second requests
  one a second, as the iterative server does;
* sections 1.1 and 4.2: a forking server that never reaps leaves one zombie for each
  request it served (six in 1.1, where a first request comes before the five; five in 4.2).

And claims of the README and of a program's own ``--help``:

* ``mixmatch.py``'s help offers only the options it passes on to the server it starts;
* "Deadlines, not per-read timeouts": an idle kept-alive connection is closed without a
  word, a late head gets 408, and a client that takes none of its response is dropped
  with one line in the log.
"""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from harness import ROOT
from part3_concurrency.measure.client import run_load


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


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        return response.headers


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
def test_forking_mistakes_no_reap_leaves_five_zombies_after_five_requests(serve):
    """Notebook 03, section 4.2: five requests, five children in state Z."""
    server = serve("part3_concurrency/forking_mistakes.py", "--no-reap")
    for _ in range(5):
        get(server.url + "/")
    states = wait_for_zombies(server.pid, 5)
    assert states == ["Z"] * 5, states


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
