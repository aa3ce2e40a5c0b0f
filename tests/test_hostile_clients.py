"""Hostile clients and lying apps, against every server, as real processes.

What an attacker tries, and what each server must hold to (see the README's contract):

* slowloris: clients that trickle a request head a line at a time are dropped at the
  head's deadline, and delay everyone else by a bounded time;
* an app that sends more than its Content-Length never gets the extra bytes onto a
  kept-alive connection (they would be read as a forged next response), and one that
  sends less does not leave its client waiting;
* an app that calls sys.exit() costs one 500, not the server;
* a forking server under a flood of clients never forks past its cap;
* a streaming app and a client that stops reading: the server's memory stays bounded;
* Host headers that RFC 9112 forbids get 400;
* the log stays quiet when a client leaves an idle connection, however it leaves.

Deadlines are shortened with ``--deadlines`` so that the tests wait seconds, not tens
of seconds. Nothing sleeps to wait for a server: the tests wait for conditions.
"""

import errno
import resource
import selectors
import socket
import sys
import threading
import time

import pytest

from harness import longest_new_wait, this_thread_waited_for_a_core
from part2_wsgi.command_line import wait_out_shortage
from tests.helpers import TIMING, children_of, fetch, get_request, read_response, require_program, reset, wait_until
from tests.servers import SERVERS

pytestmark = pytest.mark.timeout(60)

ALL = list(SERVERS)
LYING_APP = "tests.lying_apps:app"
HEAD_DEADLINE = 1.0
SHORT = ("--deadlines", f"head={HEAD_DEADLINE:g},body=1,idle=1")


def start(serve, name, *args):
    return serve(SERVERS[name], LYING_APP, *SHORT, *args)


def raise_descriptor_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit on open files is {hard}; this test needs {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


# --- slowloris ------------------------------------------------------------------------------


class Tricklers:
    """``count`` clients that each send a request head one header line at a time, a line
    every ``every`` seconds, and never the blank line that would end it. One thread
    drives them all; it records when the server ends each connection, and stops by
    itself after ``limit`` seconds."""

    def __init__(self, address, count, every=0.3, limit=20.0):
        self.connections = [socket.create_connection(address, timeout=10) for _ in range(count)]
        self.ended = {}  # connection -> (seconds after start, the bytes the server sent)
        self.began = time.monotonic()
        self.every, self.limit = every, limit
        self.received = {connection: b"" for connection in self.connections}
        for connection in self.connections:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
            connection.setblocking(False)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        selector = selectors.DefaultSelector()
        for connection in self.connections:
            selector.register(connection, selectors.EVENT_READ)
        next_line = time.monotonic() + self.every
        while len(self.ended) < len(self.connections) and time.monotonic() - self.began < self.limit:
            for key, _ in selector.select(timeout=max(0, next_line - time.monotonic())):
                self.read(key.fileobj, selector)
            if time.monotonic() >= next_line:
                next_line += self.every
                for connection in self.connections:
                    if connection not in self.ended:
                        try:
                            connection.send(b"X-Trickle: 1\r\n")
                        except OSError:
                            self.end(connection, selector)

    def read(self, connection, selector):
        try:
            data = connection.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.received[connection] += data
        if not data:
            self.end(connection, selector)

    def end(self, connection, selector):
        if connection not in self.ended:
            self.ended[connection] = time.monotonic() - self.began
            selector.unregister(connection)

    def close(self):
        self.limit = 0
        self.thread.join(5)
        for connection in self.connections:
            connection.close()


@pytest.fixture
def tricklers():
    started = []

    def make(*args, **kwargs):
        started.append(Tricklers(*args, **kwargs))
        return started[-1]

    yield make
    for group in started:
        group.close()


def timed_get(server, path="/", timeout=20):
    began = time.monotonic()
    status, _, body = fetch(server, "GET", path, timeout=timeout)
    return status, time.monotonic() - began


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("name", ["part2", "iterative"])
def test_a_trickling_client_holds_a_single_threaded_server_no_longer_than_the_head_deadline(serve, tricklers, name):
    server = start(serve, name)
    slow = tricklers(server.address, 1)
    status, elapsed = timed_get(server)
    assert status == 200
    assert elapsed < HEAD_DEADLINE + 1, f"a normal request waited {elapsed:.1f} s behind a trickling client"
    wait_until(lambda: slow.ended, 5, "the trickling client to be dropped")
    assert "too slow: the request's head was not complete" in server.wait_for_log("too slow")
    # The 408 goes out before the close; a line the client sent meanwhile, unread, can turn
    # that close into a reset that overtakes it, so the answer is not asserted here (see
    # tests/test_connection.py for the 408 itself).
    answer = slow.received[slow.connections[0]]
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), f"the trickling client got {answer[:60]!r}"


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("name, cap", [("threaded", "--max-threads"), ("forking", "--max-children")])
def test_twice_the_cap_of_trickling_clients_delay_a_request_by_at_most_two_head_deadlines(serve, tricklers, name, cap):
    server = start(serve, name, cap, "4")
    tricklers(server.address, 8)
    status, elapsed = timed_get(server)
    assert status == 200
    bound = 2 * HEAD_DEADLINE + 1
    assert elapsed < bound + 0.5, f"a normal request waited {elapsed:.1f} s behind 8 tricklers (bound {bound} s)"


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("name", ["select", "asyncio", "prefork"])
def test_a_thousand_trickling_clients_do_not_delay_an_event_loop_and_are_each_dropped(serve, tricklers, name):
    soft, hard = raise_descriptor_limit(2200)
    try:
        server = serve(SERVERS[name], LYING_APP, "--deadlines", "head=3,idle=3")
        slow = tricklers(server.address, 1000, every=0.5)
        for _ in range(3):
            # The loop's own delay is bounded, not the machine's: beside other tests and a CPU
            # load the server can wait over a second for a core, which the kernel counts. A
            # loop held by a trickler sleeps meanwhile, and its delay stays in the bound; a
            # loop that burns a second per burst of lines keeps it too.
            server_before, own_before = server.waits_for_a_core(), this_thread_waited_for_a_core()
            status, elapsed = timed_get(server)
            # The request waits for the server, then for this thread: one after the other.
            waited = longest_new_wait(server_before, server.waits_for_a_core())
            waited += this_thread_waited_for_a_core() - own_before
            assert status == 200 and elapsed - waited < 1.0, (
                f"a normal request took {elapsed:.2f} s beside 1,000 tricklers, {waited:.2f} s of it waiting for a core"
            )
        wait_until(lambda: len(slow.ended) == 1000, 10, "the server to drop all 1,000 tricklers")
        latest = max(slow.ended.values())
        assert latest < 3 + 2.5, f"the last trickler was dropped {latest:.1f} s after it began (deadline 3 s)"
        wait_until(
            lambda: server.log.count("too slow: the request's head was not complete") == 1000,
            5,
            "1,000 log lines that say each trickler was dropped for its deadline",
        )
        answered = sum(data.startswith(b"HTTP/1.1 408 ") for data in slow.received.values())
        assert answered > 0, "no trickler got its 408"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@TIMING
@pytest.mark.slow
def test_a_flood_of_clients_never_forks_past_the_cap(serve, tricklers):
    soft, hard = raise_descriptor_limit(800)
    try:
        server = serve(SERVERS["forking"], LYING_APP, "--deadlines", "head=2")
        tricklers(server.address, 300)
        most = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            most = max(most, len(children_of(server.pid)))
            time.sleep(0.05)  # a look each 50 ms for 3 s: the cap must hold all along
        assert most == 64, f"the forking server had at most {most} children with 300 clients waiting (cap 64)"
        status, _ = timed_get(server)
        assert status == 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- the app held to its word ------------------------------------------------------------------


def keep_alive_exchange(server, path):
    """GET ``path`` on a kept-alive connection, then GET / on the same connection:
    return (the first response, what followed it, seconds until the connection ended)."""
    connection = socket.create_connection(server.address, timeout=5)
    stream = connection.makefile("rb")
    began = time.monotonic()
    connection.sendall(get_request(path))
    try:
        first = read_response(stream)
    except EOFError as error:
        first = error
    try:
        connection.sendall(get_request("/"))
    except OSError:
        pass
    try:
        rest = stream.read()  # until the server closes
    except (ConnectionResetError, TimeoutError) as error:
        rest = repr(error).encode()
    connection.close()
    return first, rest, time.monotonic() - began


@pytest.mark.parametrize("name", ALL)
def test_an_app_that_sends_more_than_it_declared_gets_no_byte_more_onto_the_connection(serve, name):
    server = start(serve, name)
    first, rest, _ = keep_alive_exchange(server, "/over")
    assert first.status == 200 and first.body == b"hello"
    assert b"forged" not in rest and b"HTTP/1.1" not in rest, f"after the declared body came {rest[:80]!r}"
    assert "app error: the app declared Content-Length: 5 and gave more" in server.wait_for_log("app error")
    assert fetch(server, "GET", "/")[0] == 200  # and the server goes on


@pytest.mark.parametrize("name", ALL)
def test_an_app_that_sends_less_than_it_declared_does_not_leave_its_client_waiting(serve, name):
    server = start(serve, name)
    first, rest, elapsed = keep_alive_exchange(server, "/under")
    assert isinstance(first, EOFError), f"expected a response cut short, got {first!r}"
    assert rest == b"" and elapsed < 2, f"the client waited {elapsed:.1f} s for the rest of the body"
    assert "gave 3 bytes" in server.wait_for_log("app error")


@pytest.mark.parametrize("name", ALL)
def test_an_app_that_calls_sys_exit_gets_a_500_and_the_server_goes_on(serve, name):
    server = start(serve, name)
    for _ in range(10):  # more than the select server's worker threads: none of them may die
        status, _, body = fetch(server, "GET", "/exit")
        assert status == 500
    assert fetch(server, "GET", "/")[0] == 200
    assert "SystemExit" in server.log
    assert server.process.poll() is None


def rss_kb(pid):
    """Resident memory of a server, its worker processes included (prefork)."""
    total = 0
    for process in [pid, *children_of(pid)]:
        try:
            with open(f"/proc/{process}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass  # it exited while we looked
    return total


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("name", ["select", "threaded", "prefork", "asyncio"])
def test_a_client_that_stops_reading_a_stream_does_not_fill_the_servers_memory(serve, name):
    server = start(serve, name)
    before = rss_kb(server.pid)
    connection = socket.create_connection(server.address, timeout=5)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    connection.sendall(get_request("/flood"))
    most = before
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the app could make 256 MiB in this time
        most = max(most, rss_kb(server.pid))
        time.sleep(0.05)  # a look each 50 ms for 3 s: memory must stay bounded all along
    grew_mb = (most - before) / 1024
    assert grew_mb < 48, f"the server grew by {grew_mb:.0f} MB for a client that reads nothing"
    connection.close()
    assert fetch(server, "GET", "/")[0] == 200


# --- Host -----------------------------------------------------------------------------------------

HOST_CASES = {
    "absolute-form-without-host": b"GET http://test/ HTTP/1.1\r\n\r\n",
    "a-list": b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n",
    "userinfo": b"GET / HTTP/1.1\r\nHost: user@host\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


@pytest.mark.parametrize("name", ALL)
def test_hosts_that_rfc_9112_forbids_get_400(serve, name):
    server = start(serve, name)
    for case, request in HOST_CASES.items():
        connection = socket.create_connection(server.address, timeout=5)
        with connection, connection.makefile("rb") as stream:
            connection.sendall(request)
            assert read_response(stream).status == 400, case


# --- quiet about normal endings ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["forking", "threaded", "select", "prefork", "asyncio"])
def test_a_client_that_resets_an_idle_kept_alive_connection_is_not_logged(serve, name):
    server = start(serve, name, "--quiet")
    for _ in range(5):
        connection = socket.create_connection(server.address, timeout=5)
        connection.sendall(get_request("/"))
        read_response(connection.makefile("rb"))
        reset(connection)
    # A request on a new connection is answered only after the server took in the resets
    # of the single-threaded ones; for the others, stopping the server flushes its log.
    assert fetch(server, "GET", "/")[0] == 200
    server.stop()
    assert "went away" not in server.log, server.log


@pytest.mark.parametrize("name", ALL)
def test_a_reset_in_the_middle_of_a_request_is_logged_once(serve, name):
    server = start(serve, name, "--quiet")
    connection = socket.create_connection(server.address, timeout=5)
    connection.sendall(b"GET / HTTP/1.1\r\nHost: te")
    wait_until(lambda: unread_bytes(server.port, connection) == 0, 5, "the server to read the half request")
    reset(connection)
    log = server.wait_for_log("went away")
    assert log.count("went away") == 1


def unread_bytes(server_port, client):
    """How many bytes the client sent that the server has not read yet (Linux's /proc/net/tcp)."""
    client_port = client.getsockname()[1]
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                return int(queues.split(":")[1], 16)  # rx_queue
    return None  # not accepted yet


# --- running out of descriptors ------------------------------------------------------------------


# The servers that hold many connections in one process; the forking parent closes its
# copy of each, and the iterative one holds one at a time.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["threaded", "select", "prefork"])
def test_running_out_of_descriptors_pauses_accepting_and_recovers(serve, name):
    prlimit = require_program("prlimit")
    server = serve(SERVERS[name], LYING_APP, *SHORT, python=[prlimit, "--nofile=40:40", sys.executable])
    idle = [socket.create_connection(server.address, timeout=5) for _ in range(120)]  # prefork: 2 × 40 descriptors
    try:
        server.wait_for_log("cannot accept", timeout=10)
    finally:
        for connection in idle:
            connection.close()
    status, _, _ = fetch(server, "GET", "/", timeout=15)
    assert status == 200 and server.process.poll() is None


def test_a_shortage_of_processes_is_waited_out_not_fatal(capsys):
    attempts = []

    def fork_that_fails_twice():
        attempts.append(1)
        if len(attempts) < 3:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return 1234

    assert wait_out_shortage(fork_that_fails_twice, "fork") == 1234
    assert capsys.readouterr().err.count("cannot fork: Resource temporarily unavailable") == 2


def test_other_errors_are_not_waited_out():
    def broken():
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError):
        wait_out_shortage(broken, "accept")
