"""What the graded tests share: loopback sockets, and student code run on a thread.

Code under test may never return: a loop that waits for bytes that never come, a server
that accepts and never answers. A check must then fail with a sentence that says what
it was waiting for, not hang. So socket reads here have deadlines, student functions
that may block run on a daemon thread (``Background``), and whenever a check waits it
also looks at that thread: if the student's function raised (NotImplementedError, say),
the check re-raises that very exception, so the student sees their own error.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

try:
    import fcntl
    import termios
except ImportError:  # Windows: bytes_waiting cannot tell
    fcntl = termios = None

from grader.tests.apps import APP_BEGINS
from grader.tests.launch import ERROR_MARK
from grader.workbook import WorkbookError, workbook_dir
from harness import ROOT, SERVING_LINE

WAIT = 3.0  # seconds to wait for student code to answer or return


def short(data, limit=70):
    """repr() of bytes or str, cut to ``limit`` characters: a failure line stays one line."""
    text = repr(data)
    if len(text) <= limit:
        return text
    size = f" ({len(data)} in all)" if isinstance(data, (bytes, bytearray, str)) else ""
    return text[: limit - 5] + "..." + size


def student_line(error):
    """ " (part1.py, line 12: code)": the innermost line of the workbook in the error's
    traceback, or "" (the reference's lines are not the student's)."""
    book = str(workbook_dir().resolve())
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if os.path.abspath(frame.filename).startswith(book):
            return f" ({os.path.basename(frame.filename)}, line {frame.lineno}: {frame.line})"
    return ""


def described(error):
    """What the student's code raised, in one line, with the line that raised it."""
    text = " ".join(str(error).split())
    text = text if len(text) <= 100 else text[:95] + "..."
    return f"{type(error).__name__}({text!r}){student_line(error)}"


class CheckFailed(AssertionError):
    """A failure the check itself worded (the code did not return in time, say)."""


# What a check lets through as it is: the stub's NotImplementedError (its message is the
# stub's hint), a workbook that does not load, and a failure the check worded have messages
# of their own; so have sys.exit() and pytest's time limit, which are no Exception.
AS_IT_IS = (NotImplementedError, WorkbookError, CheckFailed)


def outcome(function, *args, shown, expected, because=""):
    """``function(*args)``'s result; an exception it raises becomes a failure that says
    what the check called (``shown``), what it expected and what was raised."""
    try:
        return function(*args)
    except AS_IT_IS:
        raise
    except Exception as error:  # not BaseException: pytest's own time limit is one
        because = f": {because}" if because else ""
        raise AssertionError(f"{shown} raised {described(error)}, expected {expected}{because}") from None


class StudentStopped(CheckFailed):
    """The student's server function, on its thread, stopped with ``error``."""

    def __init__(self, message, error):
        super().__init__(message)
        self.error = error


class Background:
    """Run ``function(*args)`` on a daemon thread; keep what it returned or raised."""

    def __init__(self, function, *args, name="student code"):
        self.name = name
        self.result = None
        self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(function, args), daemon=True, name=name)
        self.thread.start()

    def _run(self, function, args):
        try:
            self.result = function(*args)
        except BaseException as error:  # SystemExit too: a thread would swallow it silently
            self.error = error
        finally:
            self.done.set()

    def check(self):
        """If the function has raised, raise its exception here, in the test."""
        if self.done.is_set() and self.error is not None:
            raise self.error

    def check_serving(self, waiting_for):
        """Like check(), for a server loop: what it raised becomes a StudentStopped that
        says what the check was waiting for when the loop stopped, and what it raised."""
        try:
            self.check()
        except AS_IT_IS:
            raise
        except Exception as error:  # not BaseException: pytest's own time limit is one
            raise StudentStopped(
                f"{self.name} stopped with {described(error)} while the check waited for {waiting_for}; "
                "expected it to serve on: whatever one client does (leave, reset, stay silent, send nonsense) "
                "ends that client's connection, never the loop",
                error,
            ) from None

    def wait(self, timeout=WAIT, what=None):
        """Wait for the function to return; return its result, or raise what it raised."""
        if not self.done.wait(timeout):
            raise CheckFailed(f"{what or self.name} did not return within {timeout:g} s")
        self.check()
        return self.result


def call(function, *args, timeout=WAIT, what=None):
    """``function(*args)``, on a thread, failing clearly if it does not return in time."""
    return Background(function, *args, name=what or f"{function.__name__}()").wait(timeout, what)


def connected_pair(timeout=WAIT):
    """Two ends of one TCP connection over loopback: ``(client, server)``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        server, _ = listener.accept()
    server.settimeout(timeout)
    # Send small pieces at once, without waiting to batch them (Nagle's algorithm):
    # the checks cut requests into pieces on purpose.
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, server


def bytes_waiting(sock):
    """How many received bytes wait in ``sock`` to be read (FIONREAD); None where it cannot tell."""
    if fcntl is None:
        return None
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return None


def wait_until(condition, timeout):
    """Poll ``condition`` until it holds, for at most ``timeout`` seconds; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def send_pieces(sock, *pieces, pause=0.03, then_close=False):
    """Send ``pieces`` one by one with a pause between them (on purpose: the checks cut
    requests into pieces), from a thread."""

    def send():
        try:
            for index, piece in enumerate(pieces):
                if index:
                    time.sleep(pause)
                sock.sendall(piece)
            if then_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other side gave up first; the check reports why

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def receive(sock, until=None, server=None, timeout=WAIT, what="an answer", sent=None):
    """Read from ``sock`` until ``until(data)`` is true, or else until the peer closes.

    Fails with a sentence saying what was sent, what it waited for and what came, if
    nothing more arrives within ``timeout`` seconds. ``server`` (a Background) is watched
    meanwhile: if the student's code raised, that exception is raised here.
    """
    data = bytearray()
    deadline = time.monotonic() + timeout
    sock.settimeout(0.05)
    sent_text = f" after sending {short(sent)}" if sent is not None else ""
    try:
        while not (until and until(bytes(data))):
            if server is not None:
                server.check_serving(what + sent_text)
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                if time.monotonic() > deadline:
                    if server is not None and server.done.is_set() and server.error is None:
                        returned = f"; {server.name} had already returned {short(server.result)}"
                    else:
                        returned = ""
                    raise AssertionError(
                        f"timed out after {timeout:g} s waiting for "
                        f"{what}{sent_text}; received {short(bytes(data))}{returned}"
                    ) from None
                continue
            except ConnectionResetError:
                break
            if not piece:
                break  # the peer closed
            data += piece
    finally:
        sock.settimeout(timeout)
    return bytes(data)


def split_response(response):
    """``(status_line, {lower-case name: value}, body)`` of an HTTP response's bytes."""
    head, separator, body = response.partition(b"\r\n\r\n")
    assert separator, f"the response has no blank line (CRLF CRLF) after its head: {short(response)}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        assert colon, f"the response has a header line without a colon: {line!r}"
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


# --- a stage run as a server process of its own (part 3) ---------------------------------------


class StudentError(Exception):
    """The student's server raised this (in its own process); see ``StudentServer.check``."""


class StudentServer:
    """The workbook's ``part``.``name`` serving on a loopback port, in a process of its own.

    Part 3's stages fork, install signal handlers and start threads: they run in the main
    thread of a process started with ``python -m grader.tests.launch``, in a session of
    its own, so that ``stop()`` kills it and every child it made.
    """

    def __init__(self, part, name, app=None, max_threads=None, response_size=None):
        command = [sys.executable, "-m", "grader.tests.launch", part, name]
        if app:
            command.append(app)
        if max_threads is not None:
            command += ["--max-threads", str(max_threads)]
        if response_size is not None:
            command += ["--response-size", str(response_size)]
        self.name = f"{name}()"
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.process.pid
        self._errors = []
        self._lines = []  # what else the process wrote on stderr: the apps' "app begins ..." lines
        self._stderr_reader = None
        self.address = self._wait_for_serving_line()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _wait_for_serving_line(self, timeout=10):
        found = []

        def read():
            for line in self.process.stdout:
                match = SERVING_LINE.search(line)
                if match:
                    found.append(("127.0.0.1", int(match["port"])))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            self._read_stderr()
            self.check()
            raise AssertionError(f"the server process did not start within {timeout} s")
        return found[0]

    def _read_stderr(self):
        for line in self.process.stderr:
            if line.startswith(ERROR_MARK):
                self._errors.append(json.loads(line[len(ERROR_MARK) :]))
            else:
                self._lines.append(line)

    def wait_for_app(self, target, timeout=WAIT):
        """Wait until the app has begun ``target`` (grader/tests/apps.py announces each request)."""
        deadline = time.monotonic() + timeout
        while f"{APP_BEGINS}{target}\n" not in self._lines:
            self.check()
            if time.monotonic() > deadline:
                raise AssertionError(f"a client sent GET {target}; the app had not begun it {timeout:g} s later")
            time.sleep(0.01)

    def check(self, wait=0.0):
        """If the stage has raised (within ``wait`` seconds), raise its exception here."""
        deadline = time.monotonic() + wait
        while not self._errors and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.process.poll() is not None and self._stderr_reader is not None:
            self._stderr_reader.join(1)  # it ends at the end of stderr: it has read the last line
        if self._errors:
            error = self._errors[0]
            if error["type"] == "NotImplementedError":
                raise NotImplementedError(error["message"])
            where = f" ({error['where']})" if error["where"] else ""
            if error.get("child"):
                raise StudentError(self._child_error(error, where))
            if error["type"] == "StageReturned":
                raise StudentError(f"{self.name} returned: a server loop serves forever, until the process is stopped")
            raise StudentError(f"{self.name} raised {error['type']}: {error['message']}{where}")
        if self.process.poll() is not None:
            raise AssertionError(f"the server process ended (exit status {self.process.returncode})")

    def _child_error(self, error, where):
        """What to say when a forked child came back out of the stage, into the launcher."""
        if error["type"] == "StageReturned":
            what = f"returned from {self.name}"
        else:
            what = f"let {error['type']} out of {self.name}{where}"
        return (
            f"a child process {what}, into the code that called it: in a real server it would go on running "
            "the parent's loop. End the child with os._exit(0) in a finally, whatever happened"
        )

    def connect(self, timeout=WAIT):
        """A client socket connected to the server (or the server's own error, if it died)."""
        try:
            return socket.create_connection(self.address, timeout=timeout)
        except OSError as refused:
            try:
                self.check(wait=2)
            except StudentError as error:
                raise StudentError(
                    f"a client could not connect ({refused.strerror or refused}), expected the server to serve on; "
                    f"instead {error}"
                ) from None
            raise

    def request(self, raw, timeout=WAIT):
        """Send ``raw`` bytes; return (bytes received, whether the server closed)."""
        with self.connect(timeout) as client:
            try:
                client.sendall(raw)
            except OSError:
                self.check(wait=2)
                raise
            data, closed = read_until_closed(client, timeout)
        if not data:
            try:
                self.check(wait=2)
            except StudentError as error:
                raise StudentError(f"a client sent {short(raw)}, expected a response; instead {error}") from None
        return data, closed

    def get(self, path, timeout=WAIT):
        """GET ``path`` over HTTP/1.0; return (status line, headers, body) once the server closes."""
        request = f"GET {path} HTTP/1.0\r\n\r\n".encode()
        data, closed = self.request(request, timeout)
        if not data and closed:
            raise AssertionError(f"the server closed the connection without answering GET {path}")
        if not data:
            raise AssertionError(f"no answer to GET {path} within {timeout:g} s: the connection stayed open and silent")
        if not closed:
            raise AssertionError(
                f"GET {path}: the response came ({short(data)}), but the connection did not end within "
                f"{timeout:g} s. The client reads until the server closes, and a connection ends only "
                "when every process holding it has closed it: did each process close its copy?"
            )
        return split_response(data)

    def stop(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the server and any child it forked
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


def read_until_closed(client, timeout):
    """Read until the peer closes or ``timeout`` passes: (data, closed)."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False
        client.settimeout(left)
        try:
            piece = client.recv(65536)
        except TimeoutError:
            return bytes(data), False
        except ConnectionResetError:
            return bytes(data), True
        if not piece:
            return bytes(data), True
        data += piece


def children_of(pid):
    """[(child pid, state letter)] of the process ``pid``: "Z" is a zombie."""
    found = []
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # after "(command name)"
            if int(fields[1]) == pid:
                found.append((int(entry.name), fields[0]))
        return found
    listing = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        child, parent, state = line.split()[:3]
        if int(parent) == pid:
            found.append((int(child), state[0]))
    return found


def open_descriptors(pid):
    """How many files ``pid`` has open; None where /proc cannot tell (macOS)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def listening_inode(port):
    """The inode of the socket listening on loopback ``port`` (/proc/net/tcp); None without /proc."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if int(local.split(":")[1], 16) == port and state == "0A":  # 0A: LISTEN
            return inode
    return None


def thread_count(pid):
    """How many threads ``pid`` runs; None where /proc cannot tell (macOS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None
