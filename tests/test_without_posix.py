"""Windows, simulated: where a POSIX-only piece is missing, a program says so or does without.

We cannot run Windows here, but we can take away what Windows lacks: ``os.fork``,
``os.WNOHANG``, ``signal.SIGCHLD``, the ``resource`` module, ``fcntl``. A launcher
(written to a temporary folder) removes them and then runs a server's script as
``python SCRIPT`` would. Each program must then either print one line and exit
non-zero (the forking servers, gunicorn), or serve as usual without the missing piece
(the other servers, whose only POSIX-only call raises the open-file limit). The grader,
without process groups to kill, kills a stuck check's process itself.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest

import harness
from grader import core
from grader.core import PARTS
from grader.workbook import STUBS
from harness import ROOT, start_server
from part2_wsgi.command_line import create_listening_socket, raise_open_file_limit
from tests.mutants.misbehaving import MISBEHAVING
from tests.servers import SERVERS

# Slow as a whole, out of the quick loop (pytest -m "not slow"): a server per test, on a simulated system.
pytestmark = pytest.mark.slow

LAUNCHER = textwrap.dedent(
    """
    # python without_posix.py SCRIPT ARGS: run SCRIPT as on a system without these.
    import os, runpy, signal, sys

    for module in ("resource", "fcntl"):
        sys.modules[module] = None  # now "import resource" raises ModuleNotFoundError
    del os.fork, os.WNOHANG, signal.SIGCHLD
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


@pytest.fixture
def without_posix(tmp_path):
    """The command that runs ``python SCRIPT`` without fork, SIGCHLD, resource, fcntl."""
    launcher = tmp_path / "without_posix.py"
    launcher.write_text(LAUNCHER)
    return [sys.executable, str(launcher)]


def run(command, *args):
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, cwd=ROOT
    )


@pytest.mark.parametrize(
    "command, says",
    [
        ([SERVERS["forking"]], "this system has no fork() (Windows?); try threaded_server.py"),
        ([SERVERS["prefork"]], "this system has no fork() (Windows?); try select_server.py"),
        (["part2_wsgi/mixmatch.py", "gunicorn-sync"], "runs on Unix only (it needs the fcntl module)"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_what_needs_posix_says_so_in_one_line(without_posix, command, says):
    script, *args = command
    result = run(without_posix, ROOT / script, *args, "--port", "0")
    assert result.returncode != 0
    assert result.stdout == ""  # never announced: it did not start
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "command",
    [
        *([SERVERS[name]] for name in ("part2", "iterative", "threaded", "select")),
        ["part2_wsgi/mixmatch.py", "waitress"],
    ],
    ids=" ".join,
)
def test_the_other_servers_serve_without_posix(without_posix, command):
    script, *args = command
    # The launcher is the "script" the harness runs; the server's script is its argument.
    server = start_server(without_posix[1], ROOT / script, *args, cwd=ROOT)
    try:
        with urllib.request.urlopen(server.url + "/", timeout=10) as response:
            assert response.status == 200
    finally:
        assert server.stop() == 0, server.log
    assert "Traceback" not in server.log


def test_the_listening_socket_is_exclusive_on_windows_and_reusable_elsewhere(monkeypatch):
    """On Windows SO_REUSEADDR would let a second server bind our port: there the
    listener asks for SO_EXCLUSIVEADDRUSE instead (simulated: this system has no such
    option, so the fake socket records it rather than passing it to the kernel)."""
    options = []

    class RecordingSocket(socket.socket):
        def setsockopt(self, level, option, value):
            options.append(option)
            if option != FAKE_EXCLUSIVEADDRUSE:
                super().setsockopt(level, option, value)

    monkeypatch.setattr(socket, "socket", RecordingSocket)
    with create_listening_socket("127.0.0.1", 0):
        assert options == [socket.SO_REUSEADDR]  # here: restart at once after Ctrl-C
    options.clear()
    monkeypatch.setattr(socket, "SO_EXCLUSIVEADDRUSE", FAKE_EXCLUSIVEADDRUSE, raising=False)
    with create_listening_socket("127.0.0.1", 0):
        assert options == [FAKE_EXCLUSIVEADDRUSE]  # "Windows": exclusive, and never SO_REUSEADDR


FAKE_EXCLUSIVEADDRUSE = -5  # Windows' value is ~SO_REUSEADDR, -5


def test_a_second_server_on_a_busy_port_fails():
    with create_listening_socket("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(OSError) as caught:
            create_listening_socket("127.0.0.1", port)
    assert caught.value.errno == errno.EADDRINUSE


def test_raise_open_file_limit_is_a_no_op_without_resource(monkeypatch):
    monkeypatch.setitem(sys.modules, "resource", None)
    assert raise_open_file_limit() is None


def test_the_harness_stops_a_server_with_terminate_where_sigint_cannot_be_sent(monkeypatch):
    monkeypatch.setattr(harness, "INTERRUPT", None)
    server = start_server(SERVERS["part2"])
    calls = []
    terminate, send_signal = server.process.terminate, server.process.send_signal
    monkeypatch.setattr(server.process, "terminate", lambda: calls.append("terminate") or terminate())
    monkeypatch.setattr(server.process, "send_signal", lambda sig: calls.append(sig) or send_signal(sig))
    server.stop()
    assert calls[0] == "terminate" and signal.SIGINT not in calls  # (on Unix terminate() sends SIGTERM)
    assert server.process.poll() is not None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_grader_stops_a_stubborn_check_without_process_groups(monkeypatch, tmp_path):
    """No os.killpg (Windows): the grader kills the check's process itself, and goes on."""
    workbook = tmp_path / "workbook"
    workbook.mkdir()
    for part in PARTS:
        shutil.copy(STUBS / f"{part}.py", workbook / f"{part}.py")
    with open(workbook / "part2.py", "a", encoding="utf-8") as file:
        file.write("\n\n" + textwrap.dedent(MISBEHAVING["part2"]))  # a chunk() that swallows the time limit
    monkeypatch.delattr(os, "killpg")
    result = core.run_exercise(core.find_exercise("part2", "chunk"), workbook=workbook, timeout=1)
    assert not result.passed and "stopped after" in result.message, result.message
