"""Graded checks for part 3 (exercises/part3.py): processes, threads, and an event loop.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. ``part3.alive`` is the function under test: yours,
or with ``--solutions`` the reference in part3_concurrency/. Run them with

    python -m grader part3              (or: python -m pytest grader/tests/test_part3.py)

The forking checks start real child processes. Each child waits on a pipe, so that it
ends when the check lets it, or at the latest when the test process itself ends.
"""

import argparse
import os
import select
import signal
import socket
import threading
import time

import pytest

from grader.tests.helpers import WAIT, Background, call, receive, short, split_response
from grader.workbook import Workbook
from part2_wsgi.serving import create_listening_socket

part3 = Workbook("part3")
exercise = pytest.mark.exercise


# --- child processes ----------------------------------------------------------------------------


class Child:
    """A child process that exits when released (or at once).

    Two pipes tie it to the test. The child waits to read from the first, so closing
    our end of it (``release``) lets the child exit. The child holds the second one's
    write end, which the kernel closes when the child exits: then our read end sees the
    end of the pipe, which tells us the child has exited without collecting its exit
    status (``os.waitid`` with WNOWAIT would do that, but macOS has it only from Python
    3.13). Either way, a child never outlives the test process: when that dies, the end
    of the first pipe comes too.
    """

    go_ends = set()  # our ends of every child's first pipe still open in this process

    def __init__(self, exit_at_once=False):
        go_read, self.go_write = os.pipe()
        self.done_read, done_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child
            try:
                # Close our write end, and our siblings': a child sees the end of its
                # pipe only once no process at all holds the write end open.
                for end in Child.go_ends | {self.go_write}:
                    os.close(end)
                if not exit_at_once:
                    os.read(go_read, 1)
            finally:
                os._exit(7)
        os.close(go_read)
        os.close(done_write)
        Child.go_ends.add(self.go_write)
        if exit_at_once:
            self.release()

    def release(self):
        """Let the child exit."""
        if self.go_write is not None:
            Child.go_ends.discard(self.go_write)
            os.close(self.go_write)
            self.go_write = None

    def wait_until_exited(self, timeout=WAIT):
        """Wait until the child has exited, *without* collecting its status (a zombie)."""
        ready, _, _ = select.select([self.done_read], [], [], timeout)
        if not ready:
            raise AssertionError(f"child {self.pid} did not exit within {timeout} s")
        # The pipe closes as the child exits; an instant later the kernel has made it a
        # zombie, ready to be reaped. Wait for that instant.
        deadline = time.monotonic() + 1
        while hasattr(os, "waitid") and time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return
            except ChildProcessError:
                return  # already reaped, by the code under test
            time.sleep(0.005)
        time.sleep(0.1)  # without waitid: wait a moment, which is ample

    def reaped(self):
        """Has somebody collected this child's exit status? Until then, even after it
        has exited, the process exists (a zombie), and signal 0 reaches it."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def clean_up(self):
        self.release()
        os.close(self.done_read)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


@pytest.fixture
def children():
    """Make children with ``children.make(...)``; every one is released and reaped after."""
    made = []

    class Maker:
        @staticmethod
        def make(count=1, exit_at_once=False):
            new = [Child(exit_at_once) for _ in range(count)]
            made.extend(new)
            return new

    yield Maker
    for child in made:
        child.clean_up()


# --- alive ------------------------------------------------------------------------------------------


@exercise("alive")
def test_alive_for_running_processes(children):
    """alive() is True for this process and for a child that is still running."""
    me = call(part3.alive, os.getpid(), what="alive(os.getpid())")
    assert me is True, f"alive(os.getpid()) returned {short(me)}, expected True"
    (child,) = children.make()
    running = call(part3.alive, child.pid, what="alive() of a running child")
    assert running is True, f"alive() of a child that is still running returned {short(running)}, expected True"
    assert not child.reaped(), "alive() collected the child's exit status: it should only look"


@exercise("alive")
def test_alive_after_a_child_is_reaped(children):
    """alive() is False, without raising, for a child that has exited and been reaped."""
    (child,) = children.make(exit_at_once=True)
    child.wait_until_exited()
    os.waitpid(child.pid, 0)  # reap it: the process is gone for good
    gone = call(part3.alive, child.pid, what="alive() of a reaped child")
    assert gone is False, f"alive() of a child that exited and was reaped returned {short(gone)}, expected False"


# --- reap_children ------------------------------------------------------------------------------------


@exercise("reap_children")
def test_reap_children_with_no_children():
    """reap_children() returns quietly when there are no children at all."""
    call(part3.reap_children, what="reap_children(), with no children,")
    call(part3.reap_children, signal.SIGCHLD, None, what="reap_children(signal.SIGCHLD, None)")


@exercise("reap_children")
def test_reap_children_reaps_every_exited_child(children):
    """Five children exit together (maybe one SIGCHLD): one call reaps all five."""
    exited = children.make(5, exit_at_once=True)
    for child in exited:
        child.wait_until_exited()
    call(part3.reap_children, signal.SIGCHLD, None, what="reap_children(signal.SIGCHLD, None)")
    zombies = [child.pid for child in exited if not child.reaped()]
    assert not zombies, (
        f"5 children had exited; after one reap_children() call {len(zombies)} were still zombies: "
        "loop until waitpid() has no more exited children"
    )


@exercise("reap_children")
def test_reap_children_never_waits_for_running_children(children):
    """With one child exited and one still running, reap_children() reaps one and returns at once."""
    (running,) = children.make()
    (exited,) = children.make(exit_at_once=True)
    exited.wait_until_exited()
    call(
        part3.reap_children,
        signal.SIGCHLD,
        None,
        timeout=2,
        what="reap_children(), while another child was still running (use os.WNOHANG),",
    )
    assert exited.reaped(), "the child that had exited is still a zombie after reap_children()"
    assert not running.reaped(), "reap_children() collected a child that was still running"


@exercise("reap_children")
def test_reap_children_as_a_signal_handler(children):
    """Installed as the SIGCHLD handler, reap_children() leaves no zombies behind."""
    reap_children, errors = part3.reap_children, []

    def handler(signum, frame):
        # A handler's exception pops up wherever the main thread happens to be, and may
        # be lost there (inside fork(), say): keep it, and raise it below instead.
        try:
            reap_children(signum, frame)
        except BaseException as error:
            errors.append(error)

    previous = signal.signal(signal.SIGCHLD, handler)
    try:
        made = children.make(3, exit_at_once=True)
        deadline = time.monotonic() + WAIT
        while not all(child.reaped() for child in made) and time.monotonic() < deadline and not errors:
            time.sleep(0.02)  # signal handlers run in the main thread, between bytecodes
        if errors:
            raise errors[0]
        zombies = [child.pid for child in made if not child.reaped()]
        assert not zombies, (
            f"with reap_children() as the SIGCHLD handler, {len(zombies)} of 3 exited children stayed zombies"
        )
    finally:
        signal.signal(signal.SIGCHLD, previous)


# --- send_some -----------------------------------------------------------------------------------------


def nonblocking_pair():
    """A connected pair of sockets; ``sender`` is non-blocking, as in the select loop."""
    sender, receiver = socket.socketpair()
    sender.setblocking(False)
    receiver.settimeout(WAIT)
    return sender, receiver


def drain(sock):
    """Everything that is waiting to be read on ``sock`` right now."""
    data = bytearray()
    sock.setblocking(False)
    try:
        while True:
            piece = sock.recv(1 << 20)
            if not piece:
                break
            data += piece
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(WAIT)
    return bytes(data)


@exercise("send_some")
def test_send_some_sends_a_small_outbox():
    """A small outbox goes out whole: True, the outbox empty, the peer has the bytes."""
    sender, receiver = nonblocking_pair()
    with sender, receiver:
        outbox = bytearray(b"HTTP/1.1 200 OK\r\n\r\nhello")
        done = call(part3.send_some, sender, outbox, timeout=2)
        assert done is True, f"send_some() of 24 bytes returned {short(done)}, expected True (all sent)"
        assert outbox == b"", (
            f"after sending everything the outbox still holds {short(bytes(outbox))}: delete what was sent, in place"
        )
        got = drain(receiver)
        assert got == b"HTTP/1.1 200 OK\r\n\r\nhello", f"the peer received {short(got)}"
        assert call(part3.send_some, sender, bytearray(), timeout=2) is True, (
            "send_some() of an empty outbox should return True"
        )


@exercise("send_some")
def test_send_some_keeps_what_the_socket_did_not_take():
    """A large outbox: part goes out, the rest stays in order, and send_some() never waits."""
    sender, receiver = nonblocking_pair()
    with sender, receiver:
        original = bytes(range(256)) * 16384  # 4 MB: more than the kernel's buffer takes
        outbox = bytearray(original)
        done = call(
            part3.send_some,
            sender,
            outbox,
            timeout=2,
            what="send_some() with 4 MB for a peer that is not reading (never wait)",
        )
        assert done is False, (
            f"send_some() of 4 MB to a peer that does not read returned {short(done)}, expected False (bytes remain)"
        )
        assert 0 < len(outbox) < len(original), (
            f"after send_some() the outbox holds {len(outbox)} of {len(original)} bytes"
        )
        got = drain(receiver)
        assert got + bytes(outbox) == original, (
            f"what the peer received ({len(got)} bytes) followed by what is left in the outbox ({len(outbox)}) "
            "is not the original: delete from the front of the outbox exactly the bytes send() took"
        )


@exercise("send_some")
def test_send_some_when_the_socket_is_full():
    """A full socket is no error: False, the outbox unchanged; later calls finish the job."""
    sender, receiver = nonblocking_pair()
    with sender, receiver:
        for size in (65536, 4096, 256, 1):  # fill the kernel's buffer to the brim
            try:
                while True:
                    sender.send(b"x" * size)
            except BlockingIOError:
                pass
        outbox = bytearray(b"still waiting")
        done = call(part3.send_some, sender, outbox, timeout=2, what="send_some() on a full socket")
        assert done is False and outbox == b"still waiting", (
            f"on a full socket send_some() returned {short(done)} and left {short(bytes(outbox))}, "
            "expected False and the outbox unchanged (BlockingIOError means: not now)"
        )
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while not done and time.monotonic() < deadline:
            received += drain(receiver)  # the peer reads: room again
            done = call(part3.send_some, sender, outbox, timeout=2)
        received += drain(receiver)
        assert done is True and received.endswith(b"still waiting"), (
            "once the peer read, send_some() did not finish sending the outbox"
        )


@exercise("send_some")
def test_send_some_lets_a_closed_connection_error_go_up():
    """When the peer has gone, the OSError goes up, so that the loop closes the connection."""
    sender, receiver = nonblocking_pair()
    with sender:
        receiver.close()
        running = Background(part3.send_some, sender, bytearray(b"hello"))
        if not running.done.wait(2):
            raise AssertionError("send_some() to a peer that has closed did not return within 2 s")
        if running.error is None:
            raise AssertionError(
                f"send_some() to a peer that has closed returned {short(running.result)}: "
                "let the OSError (BrokenPipeError) go up, or the loop keeps a dead connection forever"
            )
        if not isinstance(running.error, OSError) or isinstance(running.error, BlockingIOError):
            running.check()


# --- serve_forever (threaded) ----------------------------------------------------------------------------


class Server:
    """The student's serve_forever() on a loopback port, in a background thread."""

    def __init__(self, app, max_threads=8):
        self.listener = create_listening_socket("127.0.0.1", 0)
        self.address = self.listener.getsockname()
        args = argparse.Namespace(host="127.0.0.1", port=self.address[1], max_threads=max_threads)
        self.running = Background(part3.serve_forever, self.listener, app, args, name="serve_forever()")

    def get(self, path, timeout=WAIT):
        """Send a GET (HTTP/1.0: one request, then the server closes) and return the response."""
        request = f"GET {path} HTTP/1.0\r\n\r\n".encode()
        with socket.create_connection(self.address, timeout=timeout) as client:
            client.sendall(request)
            response = receive(
                client, server=self.running, timeout=timeout, what=f"the response to GET {path}", sent=request
            )
        if not response:
            self.running.check()
            raise AssertionError(f"the server closed the connection without a response to {request!r}")
        return split_response(response)

    def stop(self):
        # shutdown() wakes an accept() that is blocked on the socket (close() alone does
        # not). serve_forever() may then end, or carry on failing to accept (the reference
        # pauses and retries, so as never to die of a full descriptor table): its thread
        # is a daemon, and ends with the test process either way.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


@pytest.fixture
def serve():
    servers = []

    def start(app, max_threads=8):
        servers.append(Server(app, max_threads))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def hello_app(environ, start_response):
    body = f"hello from {environ['PATH_INFO']}, multithread={environ['wsgi.multithread']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@exercise("serve_forever")
def test_serve_forever_serves_requests(serve):
    """serve_forever() answers requests, one after another, through handle_connection."""
    server = serve(hello_app)
    for path in ("/first", "/second"):
        status_line, _, body = server.get(path)
        assert status_line.startswith("HTTP/1.0 200") or status_line.startswith("HTTP/1.1 200"), (
            f"GET {path} got {status_line!r}"
        )
        assert body == f"hello from {path}, multithread=True".encode(), (
            f"GET {path} got the body {short(body)}; expected multithread=True (tell the app it runs on threads)"
        )


@exercise("serve_forever")
def test_serve_forever_serves_clients_at_once(serve):
    """Two requests are in the app at the same time: each connection has its own thread."""
    meeting = threading.Barrier(2, timeout=2)

    def meeting_app(environ, start_response):
        try:
            meeting.wait()  # returns only once both requests are here
            status, body = "200 OK", b"met"
        except threading.BrokenBarrierError:
            status, body = "503 Service Unavailable", b"alone"
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    server = serve(meeting_app)
    results = {}
    first = Background(lambda: results.update(first=server.get("/a", timeout=5)), name="the first client")
    results["second"] = server.get("/b", timeout=5)
    first.done.wait(5)
    statuses = [results[name][0] if name in results else "no answer" for name in ("first", "second")]
    assert all(" 200 " in status for status in statuses), (
        f"two clients at once got {statuses}: the first request waited 2 s alone in the app "
        "while the second was not served. Serve each connection on its own thread"
    )


@exercise("serve_forever")
def test_serve_forever_caps_threads(serve):
    """With max_threads=2, a third request waits until a thread is free, then is served."""
    inside = []
    release = threading.Event()

    def slow_app(environ, start_response):
        inside.append(environ["PATH_INFO"])
        release.wait(4)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = serve(slow_app, max_threads=2)
    answers = {}
    clients = [
        Background(lambda p=path: answers.update({p: server.get(p, timeout=4)}), name=f"client {path}")
        for path in ("/1", "/2", "/3")
    ]
    deadline = time.monotonic() + 2
    while len(inside) < 2 and time.monotonic() < deadline:
        server.running.check()
        time.sleep(0.02)
    time.sleep(0.3)  # time enough for a third thread to enter, if one were started
    in_app = len(inside)
    release.set()
    deadline = time.monotonic() + 2
    for client in clients:
        client.done.wait(max(0, deadline - time.monotonic()))
    assert in_app == 2, f"with max_threads=2 and 3 slow requests, the app ran {in_app} at once, expected 2"
    served = sorted(path for path, (status, _, _) in answers.items() if " 200 " in status)
    assert served == ["/1", "/2", "/3"], (
        f"with max_threads=2, only {served} of 3 requests were answered: free a slot when a thread is done"
    )
