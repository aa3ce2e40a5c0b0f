"""Which servers wait how long for a client that reads nothing (connection.Deadlines.for_server).

A server that serves one client at a time keeps the short send deadline; one that serves
others meanwhile waits a minute, as nginx does. The rule is given to ``command_line.run``
by each server, and an event loop with ``--threads 0`` (the app in the loop) serves one
client at a time: it gets the short one, unless ``--deadlines`` says otherwise.
"""

import runpy
import signal
import sys

import pytest

from harness import ROOT
from part2_wsgi import command_line
from tests.servers import SERVERS

pytestmark = pytest.mark.timeout(30)


def send_deadline_of(script, *argv, monkeypatch):
    """The send deadline a server's ``run`` hands its serve_forever, without serving."""
    seen = []

    def run_without_serving(description, serve_forever, add_options=None, argv=None, **rule):
        def record(listener, app, settings):
            seen.append(settings.deadlines.send)

        return real_run(description, record, add_options, argv, **rule)

    real_run = command_line.run
    monkeypatch.setattr(command_line, "run", run_without_serving)
    monkeypatch.setattr(sys, "argv", [str(script), "--port", "0", *argv])
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit):
            runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:  # run() sets Ctrl-C's and SIGTERM's handlers: give this process its own back
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return seen[0]


@pytest.mark.parametrize(
    "name, argv, expected",
    [
        ("part2", [], 10),
        ("iterative", [], 10),
        ("threaded", [], 60),
        ("select", [], 60),
        ("asyncio", [], 60),
        ("select", ["--threads", "0"], 10),
        ("select", ["--threads", "0", "--deadlines", "send=30"], 30),
    ],
)
def test_each_server_waits_as_long_as_it_can_afford(name, argv, expected, monkeypatch, capsys):
    assert send_deadline_of(SERVERS[name], *argv, monkeypatch=monkeypatch) == expected


def test_the_thread_pool_variant_serves_others_meanwhile_too(monkeypatch, capsys):
    assert send_deadline_of("part3_concurrency/thread_pool.py", monkeypatch=monkeypatch) == 60
