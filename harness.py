"""Start a workshop server in the background, find its URL, and stop it cleanly.

Tests, notebooks and the grader all need the same thing: run one of the servers
in this repository as a real process, know where it listens, and be sure it is gone
afterwards. Every server keeps one contract for this (the README, "Follow the workshop"):

* it accepts ``--port 0``, which asks the kernel for any free port, so two runs never
  fight over a fixed port;
* once it listens it prints ``Serving on http://HOST:PORT`` as its first line on stdout.

So we never ``sleep`` and hope: we wait for that line, read the real port from it,
and only then connect.

    with start_server("part1_sockets/echo_server.py") as server:
        print(server.host, server.port, server.url)
    # here the server has been sent SIGINT and has exited; server.returncode is set

On Windows, which cannot send SIGINT to another process, ``stop()`` ends the server
with ``terminate()`` instead: abrupt, but the process is gone and its port free.

The server's stderr (its access log, its tracebacks) is collected in ``server.log``.
"""

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SERVING_LINE = re.compile(r"Serving on http://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)")

# Every process this module starts and has not yet seen exit. If the interpreter
# leaves early (a failed test, an interrupted notebook), the atexit hook kills them.
_running = {}

# A program that a shell without job control starts with `&` (a script's `pytest &`, some
# CI runners; not a terminal's, which gives it a process group of its own instead) begins
# with SIGINT ignored, and passes that on to every program it starts: those that set no
# handler of their own (part 1's client, the minimal ASGI server) would ignore Ctrl-C, the
# way we stop them. So this process, and what it starts, hear Ctrl-C as from a terminal.
if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# How stop() ends a server: Ctrl-C, as a person would. Windows has no way to send SIGINT
# to another process (there Popen.send_signal takes only SIGTERM and console events, and
# a console event reaches every process on the console), so there: None, terminate().
INTERRUPT = None if sys.platform == "win32" else signal.SIGINT


class ServerError(RuntimeError):
    """The server did not come up: it exited, or never printed its Serving line."""


class RunningServer:
    """A server subprocess that has printed its ``Serving on`` line."""

    def __init__(self, process, host, port):
        self.process = process
        self.pid = process.pid
        self.host = host
        self.port = port
        self.returncode = None
        self.waited_while_stopping = 0.0  # see _signal_until_exit
        self._stdout = []
        self._stderr = []

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def address(self):
        """``(host, port)`` for ``socket.create_connection``."""
        return (self.host.strip("[]"), self.port)

    @property
    def log(self):
        """Everything the server wrote to stderr so far (its access log, tracebacks)."""
        return "".join(self._stderr)

    @property
    def output(self):
        """Everything the server wrote to stdout after its Serving line."""
        return "".join(self._stdout)

    def waits_for_a_core(self):
        """{thread id: seconds it has spent ready to run while no core was free for it}, for
        every thread of the server and of its worker processes: what a busy machine
        withheld from it so far, as the kernel counts it (Linux's
        ``/proc/PID/task/TID/schedstat``; empty elsewhere). Compare two of them with
        ``longest_new_wait``."""
        return {
            int(task): _run_queue_wait(f"/proc/{pid}/task/{task}/schedstat")
            for pid in _process_tree(self.pid)
            for task in _listdir(f"/proc/{pid}/task")
        }

    def wait_for_log(self, text, timeout=5.0):
        """Wait until ``text`` appears in the server's stderr; return the log."""
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server's log:\n{self.log}")
            time.sleep(0.01)
        return self.log

    def stop(self, sig=None, timeout=5.0):
        """Send ``sig`` (Ctrl-C by default), wait for the exit, return the exit code.

        A server that does not exit within ``timeout`` seconds of its own (its waits for a
        core do not count; three times ``timeout`` on the clock at most) is killed, and
        the exit code is then the negative signal number, so a test can tell a clean exit
        from a kill.
        Where SIGINT cannot be sent (``INTERRUPT`` is None: Windows), the default is
        ``terminate()``.
        """
        if self.returncode is not None:
            return self.returncode
        sig = sig if sig is not None else INTERRUPT
        if self.process.poll() is None:
            try:
                if sig is None:
                    self.process.terminate()
                    self.process.wait(timeout)
                else:
                    self._signal_until_exit(sig, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.returncode = self.process.returncode
        self._readers_done()
        _running.pop(self.pid, None)
        return self.returncode

    def _signal_until_exit(self, sig, timeout, again_after=2.5):
        """Send ``sig``, and send it again (as a person presses Ctrl-C again) if the server
        is still there after ``again_after`` seconds of its own: past the servers' 1 s
        grace period, and time to exit after it (a second signal in the middle of an
        orderly stop would be a traceback at exit, or worse).

        Why again: CPython runs a Python signal handler between bytecodes, and a blocking
        system call that the signal interrupts (EINTR) returns to let it run. But a signal
        that lands in the instant after the interpreter last checked for signals and
        before a blocking ``recv()`` begins interrupts nothing: the handler waits until the
        call returns, which for a silent client is never. Seen about once in a few hundred
        stops on a loaded machine; the second signal finds the call already waiting.

        Of its own: the time the server spent waiting for a core does not count (see
        ``waits_for_a_core``). On a busy machine a server still busy with its first
        signal's orderly stop would take the second for an impatient user's, and some
        exit at once (the ASGI server, once its loop has closed, dies of a second
        SIGTERM). ``waited_while_stopping`` keeps the server's longest wait since the
        first signal, as last seen before it exited."""
        began = time.monotonic()
        waits = self.waits_for_a_core()
        while True:
            self.process.send_signal(sig)
            sent, waited_before, own_time = time.monotonic(), self.waited_while_stopping, 0.0
            while own_time < again_after:
                try:
                    self.process.wait(min(0.1, again_after - own_time))
                    return
                except subprocess.TimeoutExpired:
                    spent = time.monotonic() - began
                    if spent - self.waited_while_stopping >= timeout or spent >= 3 * timeout:
                        raise
                waited = longest_new_wait(waits, self.waits_for_a_core())
                self.waited_while_stopping = max(self.waited_while_stopping, waited)
                own_time = time.monotonic() - sent - (self.waited_while_stopping - waited_before)

    def _readers_done(self):
        for thread in getattr(self, "_readers", []):
            thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def interrupt(process, sig=INTERRUPT, timeout=5.0):
    """Stop any program started with ``subprocess.Popen`` (a client, say) as ``stop()``
    stops a server: Ctrl-C, again if it is still there (why: ``_signal_until_exit``),
    killed after ``timeout`` seconds of its own; returns the exit code."""
    return RunningServer(process, None, None).stop(sig, timeout)


def start_server(script, *args, port=0, host="127.0.0.1", timeout=15.0, env=None, cwd=None, python=None):
    """Start ``python SCRIPT ARGS --host HOST --port PORT``; return a RunningServer.

    ``script`` is a path relative to the repository root (or absolute). ``python`` is
    the interpreter's command as a list (default: this one, ``[sys.executable]``).
    Raises ServerError, with what the process printed, if it exits or stays silent for
    ``timeout`` seconds.
    """
    command = [*(python or [sys.executable]), "-u", str(ROOT / script), *map(str, args)]
    command += ["--host", host, "--port", str(port)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
    )
    _running[process.pid] = process
    try:
        host, port = _wait_for_serving_line(process, timeout)
    except BaseException:
        _kill(process)
        raise
    server = RunningServer(process, host, port)
    server._readers = [
        _drain(process.stdout, server._stdout),
        _drain(process.stderr, server._stderr),
    ]
    return server


def _wait_for_serving_line(process, timeout):
    """Read stdout until the Serving line; a reader thread lets us give up in time."""
    found = {}
    seen = []

    def read_first_lines():
        for line in process.stdout:
            seen.append(line)
            match = SERVING_LINE.search(line)
            if match:
                found["host"], found["port"] = match["host"], int(match["port"])
                return

    reader = threading.Thread(target=read_first_lines, daemon=True)
    reader.start()
    reader.join(timeout)
    if found:
        return found["host"], found["port"]
    what = "stayed silent" if reader.is_alive() else "exited"  # the reader ends at end of output
    _kill(process)
    reader.join(2)
    errors = process.stderr.read() if process.stderr else ""
    raise ServerError(
        f"server {what} before printing 'Serving on http://HOST:PORT'\n"
        f"stdout: {''.join(seen)!r}\nstderr: {errors.strip()}"
    )


def _process_tree(pid):
    """``pid`` and its descendants, from Linux's ``/proc/PID/task/TID/children``."""
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        for task in _listdir(f"/proc/{current}/task"):
            try:
                with open(f"/proc/{current}/task/{task}/children") as file:
                    stack.extend(int(child) for child in file.read().split())
            except OSError:
                continue  # the thread ended while we looked
    return tree


def longest_new_wait(before, after):
    """The longest any one thread waited for a core between two ``waits_for_a_core``: the
    threads wait side by side, so their sum would grow faster than the clock."""
    return max((seconds - before.get(thread, 0.0) for thread, seconds in after.items()), default=0.0)


def this_thread_waited_for_a_core():
    """Seconds the calling thread has spent ready to run with no core free for it (Linux;
    0.0 elsewhere): see ``RunningServer.waits_for_a_core``."""
    return _run_queue_wait("/proc/thread-self/schedstat")


def _run_queue_wait(schedstat):
    """A schedstat line is "CPU time, time runnable but waiting, time slices", the times in
    nanoseconds; the wait is returned in seconds."""
    try:
        with open(schedstat) as file:
            return int(file.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0  # the thread ended while we looked, or no schedstat here


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:  # not Linux, or the process has exited
        return []


def _drain(stream, into):
    """Keep reading a pipe so the server never blocks writing its log."""

    def read():
        for line in stream:
            into.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _kill(process):
    if process.poll() is None:
        process.kill()
    process.wait()
    _running.pop(process.pid, None)


def _kill_leftovers():
    for process in list(_running.values()):
        _kill(process)


atexit.register(_kill_leftovers)
