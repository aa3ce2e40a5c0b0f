"""The harness that starts and stops the servers of every test (harness.py): its second
Ctrl-C, its kill once a server's time is up, what it counts of a busy machine, and Ctrl-C
reaching what it starts from a run that ignores Ctrl-C."""

import signal
import subprocess
import sys
import time

import pytest

from harness import ROOT, longest_new_wait, start_server


def start_script(tmp_path, source):
    """Start a stand-in server written out from ``source``; return it and when it started."""
    script = tmp_path / "server.py"
    script.write_text(source)
    return start_server(script), time.monotonic()


# A server that sleeps through its first Ctrl-C (as one whose signal came just before a
# blocking call does) and exits, status 0, at the second.
STUBBORN = """
import signal, sys
pressed = []
signal.signal(signal.SIGINT, lambda *_: pressed.append(1) if not pressed else sys.exit(0))
print("Serving on http://127.0.0.1:9", flush=True)
while True:
    signal.pause()
"""


@pytest.mark.slow  # it waits 2.5 s for the second Ctrl-C
@pytest.mark.timeout(30)
def test_a_server_that_sleeps_through_ctrl_c_gets_it_again_after_two_and_a_half_seconds(tmp_path):
    server, began = start_script(tmp_path, STUBBORN)
    assert server.stop() == 0  # not killed: the second signal came before the 5 s timeout
    assert 2.5 <= time.monotonic() - began < 5
    assert server.waited_while_stopping < 2.5  # it slept: no wait for a core excused its delay


def test_the_longest_new_wait_is_one_threads_not_their_sum():
    before = {1: 1.0, 2: 0.5}
    after = {1: 1.5, 2: 0.75, 3: 0.25}  # thread 3 began meanwhile
    assert longest_new_wait(before, after) == 0.5
    assert longest_new_wait({}, {}) == 0.0


DEAF = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("Serving on http://127.0.0.1:9", flush=True)
while True:
    signal.pause()
"""


@pytest.mark.slow  # it waits out a 2 s timeout
@pytest.mark.timeout(30)
def test_a_server_that_ignores_ctrl_c_is_killed_once_its_time_is_up(tmp_path):
    server, began = start_script(tmp_path, DEAF)
    assert server.stop(timeout=2) == -signal.SIGKILL
    assert 2 <= time.monotonic() - began < 6  # its own 2 s; a busy machine may stretch them, three times at most


@pytest.mark.timeout(60)
def test_a_server_started_from_a_run_that_ignores_ctrl_c_still_hears_it():
    # A test run that a script started with `&` begins with SIGINT ignored; the minimal
    # ASGI server sets no handler of its own, so it would inherit that, and be killed.
    code = (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "import harness\n"
        "import urllib.request\n"
        "server = harness.start_server('part4_asgi/minimal_asgi_server.py')\n"
        "urllib.request.urlopen(server.url, timeout=20).read()  # in its loop, past its start\n"
        "print(server.stop(), server.log)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50, cwd=ROOT)
    assert run.stdout.split()[:1] == ["0"], run.stdout + run.stderr
