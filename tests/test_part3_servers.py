"""Part 3: the six servers (iterative, forking, threaded, select, prefork, asyncio) as real processes.

Every server is started on port 0 and talked to over loopback, with raw sockets when
the bytes on the wire matter and with ``http.client`` otherwise. Nothing sleeps to
synchronise: a test waits for a condition (a log line, a count in /proc) with a deadline.

Quick request/response checks share one server of each kind for the whole module
(``shared_servers``); tests that measure time, count descriptors, or stop the server
start their own with the ``serve`` fixture.
"""

import html
import http.client
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import ROOT, start_server
from part2_wsgi.command_line import create_listening_socket
from tests.helpers import TIMING, children_of, fetch, get_request, read_response, wait_until
from tests.servers import CONCURRENT, PART3, SERVERS

pytestmark = pytest.mark.timeout(30)

THREADED = SERVERS["threaded"]
SELECT = SERVERS["select"]
PREFORK = SERVERS["prefork"]

# A name for each way of running a server: (script, extra command-line arguments).
RUNS = {name: (SERVERS[name], ()) for name in PART3}
RUNS["select-threads-0"] = (SELECT, ("--threads", "0"))  # the app runs inside the loop (the default: worker threads)
RUNS["prefork"] = (PREFORK, ("--workers", "2"))  # two select loops, in two processes
EVERY_MODEL = PART3
KEEPS_ALIVE = ["forking", "threaded", "select", "select-threads-0", "prefork", "asyncio"]

ANNOUNCING_APP = "tests.announcing_app:app"  # the demo app, logging "app begins ..." first
STREAM_BODY = b"".join(f"piece {number} of 5\n".encode() for number in range(1, 6))
ON_LINUX = os.path.isdir("/proc/self/fd")
needs_proc = pytest.mark.skipif(not ON_LINUX, reason="counts descriptors and children in Linux's /proc")


def start(serve, name, *more_args):
    script, args = RUNS[name]
    return serve(script, *args, *more_args)


@pytest.fixture(scope="module")
def shared_servers():
    """``shared_servers(name)``: one running server of that kind for the whole module.

    A server that no longer answers (a test crashed it; it may still be exiting) is
    started again for the next test: the test that crashed it has already failed on its
    own follow-up request, and the next one should test a server, not the wreck.
    """
    started = {}

    def answers(server):
        try:
            socket.create_connection(server.address, timeout=5).close()
        except OSError:
            return False
        return server.process.poll() is None

    def get(name):
        server = started.get(name)
        if server is None or not answers(server):
            if server is not None:
                server.stop()
            script, args = RUNS[name]
            server = started[name] = start_server(script, *args)
        return server

    yield get
    for server in started.values():
        server.stop()


# --- talking HTTP -------------------------------------------------------------------


def assert_closed(stream):
    """The server has closed the connection (EOF, or a reset) and sent nothing more.

    Waits as long as the socket's timeout (``exchange`` sets 5 s).
    """
    try:
        rest = stream.read(1)
    except TimeoutError:
        pytest.fail("the server kept the connection open after its response")
    except ConnectionResetError:
        return
    assert rest == b"", f"unexpected bytes after the response: {rest!r}"


def exchange(server, request, timeout=5):
    """Send raw request bytes on a new connection; return (the first response, the stream)."""
    connection = socket.create_connection(server.address, timeout=timeout)
    stream = connection.makefile("rb")
    connection.sendall(request)
    return read_response(stream), stream, connection


# --- waiting and counting -----------------------------------------------------------


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fd_count(pid, quiet=0.3, timeout=10):
    """The descriptor count once it has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = fd_count(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = fd_count(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def signal_and_wait(server, sig, timeout=10):
    """Send ``sig``; return (exit code, seconds until the process exited)."""
    began = time.monotonic()
    server.process.send_signal(sig)
    try:
        code = server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
        show_where_it_hangs(server)
    elapsed = time.monotonic() - began
    server.stop()  # kills it if it is still running; collects the rest of its log
    return code, elapsed


def show_where_it_hangs(server):
    """For a server started with ``PYTHONFAULTHANDLER=1``: SIGABRT makes it write every
    thread's stack to its log before it dies, so a hang that happens once in many runs
    says where it was."""
    server.process.send_signal(signal.SIGABRT)
    try:
        server.process.wait(5)
    except subprocess.TimeoutExpired:
        pass  # server.stop() kills it


def assert_port_free_again(server):
    """A restarted server binds the same port at once (SO_REUSEADDR, as the servers do)."""
    listener = create_listening_socket(server.address[0], server.port)
    listener.close()


def run_cli(*args, timeout=10):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL
    )


# --- overlap: do slow requests wait for each other? -----------------------------------


def run_together(server, path, clients):
    """Connect ``clients`` clients, release them at one moment to GET ``path``;
    return (seconds until the last answer, [(status, body) or exception])."""
    go = threading.Barrier(clients + 1)
    results = [None] * clients

    def client(index):
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        try:
            connection.connect()
            go.wait(timeout=10)
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            results[index] = (response.status, response.read())
        except Exception as error:  # reported by the assertion below
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    go.wait(timeout=10)
    began = time.monotonic()
    for thread in threads:
        thread.join(60)
    return time.monotonic() - began, results


@TIMING
@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "name, overlaps",
    [
        ("iterative", False),
        ("forking", True),
        ("threaded", True),
        ("select", True),
        ("select-threads-0", False),
        ("prefork", True),
        ("asyncio", True),
    ],
    ids=["iterative", "forking", "threaded", "select", "select-threads-0", "prefork", "asyncio"],
)
def test_four_one_second_requests_overlap_only_on_concurrent_servers(serve, name, overlaps):
    server = start(serve, name)
    seconds, results = run_together(server, "/sleep?seconds=1", 4)
    assert results == [(200, b"slept 1\n")] * 4
    if overlaps:
        assert seconds < 2.0, f"{name}: four 1 s requests took {seconds:.2f} s; they did not overlap"
    else:
        assert seconds >= 3.5, f"{name}: four 1 s requests took only {seconds:.2f} s; expected them one after another"


# --- silent clients ---------------------------------------------------------------------


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("name", KEEPS_ALIVE)
def test_silent_clients_never_delay_other_clients(serve, name):
    server = start(serve, name)
    silent = [socket.create_connection(server.address, timeout=10) for _ in range(5)]
    try:
        began = time.monotonic()
        status, _, body = fetch(server, "GET", "/", timeout=5)
        elapsed = time.monotonic() - began
    finally:
        for connection in silent:
            connection.close()
    assert status == 200 and b"Hello, world!" in body
    assert elapsed < 1.0, f"GET / took {elapsed:.2f} s with five silent clients connected"


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("script", [THREADED, "part3_concurrency/thread_pool.py"])
def test_threaded_server_serves_at_most_max_threads_connections_at_once(serve, script):
    """The threaded server, and the pool beside it, which hands a freed thread the 4th client."""
    server = serve(script, "--max-threads", "3")
    silent = [socket.create_connection(server.address, timeout=10) for _ in range(2)]
    try:
        # Two silent clients hold two of three threads: the third is free to serve.
        status, _, _ = fetch(server, "GET", "/", timeout=5)
        assert status == 200
        silent.append(socket.create_connection(server.address, timeout=10))
        with socket.create_connection(server.address, timeout=10) as fourth:
            fourth.sendall(get_request("/?name=fourth"))
            readable, _, _ = select.select([fourth], [], [], 1.0)
            assert not readable, "a 4th client was answered while 3 silent clients held all 3 threads"
            silent.pop(0).close()  # frees a thread: the 4th client is accepted and served
            began = time.monotonic()
            response = read_response(fourth.makefile("rb"))
            assert response.status == 200 and b"Hello, fourth!" in response.body
            assert time.monotonic() - began < 3.0
    finally:
        for connection in silent:
            connection.close()


# --- keep-alive, pipelining, HTTP/1.0 ---------------------------------------------------


@pytest.mark.parametrize("name", KEEPS_ALIVE)
def test_keep_alive_serves_ten_requests_on_one_connection(shared_servers, name):
    server = shared_servers(name)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    local_addresses = set()
    sockets = []
    try:
        for number in range(10):
            connection.request("GET", f"/?name=n{number}")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200 and f"Hello, n{number}!".encode() in body
            assert connection.sock is not None, f"the server closed the connection after request {number + 1}"
            sockets.append(connection.sock)
            local_addresses.add(connection.sock.getsockname())
    finally:
        connection.close()
    assert len(local_addresses) == 1 and all(sock is sockets[0] for sock in sockets), (
        f"ten requests used {len(local_addresses)} connections"
    )


@pytest.mark.parametrize("name", KEEPS_ALIVE)
def test_pipelined_requests_are_answered_in_order(shared_servers, name):
    server = shared_servers(name)
    # The first is the slowest: a server that ran them side by side might answer out of order.
    pipelined = get_request("/sleep?seconds=0.2") + get_request("/?name=second") + get_request("/stream")
    with socket.create_connection(server.address, timeout=10) as connection:
        stream = connection.makefile("rb")
        connection.sendall(pipelined)
        first, second, third = (read_response(stream) for _ in range(3))
    assert (first.status, first.body) == (200, b"slept 0.2\n")
    assert second.status == 200 and b"Hello, second!" in second.body
    assert (third.status, third.body) == (200, STREAM_BODY)


def test_iterative_server_answers_one_request_per_connection(shared_servers):
    server = shared_servers("iterative")
    response, stream, connection = exchange(server, get_request("/?name=first") + get_request("/?name=second"))
    with connection, stream:
        assert response.status == 200 and b"Hello, first!" in response.body
        assert response.headers.get("connection") == "close"
        assert_closed(stream)  # the pipelined second request is not answered


@pytest.mark.parametrize("name", EVERY_MODEL + ["select-threads-0"])
def test_http10_without_keep_alive_closes_after_one_response(shared_servers, name):
    server = shared_servers(name)
    response, stream, connection = exchange(server, b"GET /?name=old HTTP/1.0\r\n\r\n")
    with connection, stream:
        assert response.status == 200 and b"Hello, old!" in response.body
        assert response.headers.get("connection", "close") == "close"
        assert_closed(stream)


@pytest.mark.parametrize("name", KEEPS_ALIVE)
def test_http10_with_keep_alive_stays_open(shared_servers, name):
    server = shared_servers(name)
    with socket.create_connection(server.address, timeout=10) as connection:
        stream = connection.makefile("rb")
        for number in range(3):
            connection.sendall(f"GET /?name=old{number} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            response = read_response(stream)
            assert response.status == 200 and f"Hello, old{number}!".encode() in response.body
            assert response.headers.get("connection", "").lower() == "keep-alive"


def test_iterative_server_closes_http10_keep_alive_too(shared_servers):
    server = shared_servers("iterative")
    response, stream, connection = exchange(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    with connection, stream:
        assert response.status == 200
        assert response.headers.get("connection", "close") == "close"
        assert_closed(stream)


# --- the environ each server builds ---------------------------------------------------


@pytest.mark.parametrize(
    "name, multithread, multiprocess",
    [
        ("iterative", False, False),
        ("forking", False, True),
        ("threaded", True, False),
        ("select", True, False),
        ("select-threads-0", False, False),
        ("prefork", True, True),
        ("asyncio", True, False),
    ],
    ids=["iterative", "forking", "threaded", "select", "select-threads-0", "prefork", "asyncio"],
)
def test_environ_says_how_the_server_runs_the_app(shared_servers, name, multithread, multiprocess):
    status, _, body = fetch(shared_servers(name), "GET", "/")
    assert status == 200
    rows = re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", body.decode())
    environ = {html.unescape(key): html.unescape(value) for key, value in rows}
    assert environ["wsgi.multithread"] == str(multithread)
    assert environ["wsgi.multiprocess"] == str(multiprocess)
    assert environ["wsgi.run_once"] == "False"


# --- bad input: answered, and the server stays up --------------------------------------

BAD_REQUESTS = {
    "garbage-400": (b"HELLO THERE\r\n\r\n", 400),
    "no-host-400": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "huge-content-length-413": (b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 99999999999\r\n\r\n", 413),
    "long-target-414": (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 414),
    "huge-header-431": (b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    "gzip-chunked-501": (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    "http2-505": (b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505),
    "cl-and-te-smuggling-400": (
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
@pytest.mark.parametrize("name", EVERY_MODEL + ["select-threads-0"])
def test_bad_request_gets_its_status_and_the_server_stays_up(shared_servers, name, case):
    server = shared_servers(name)
    request, expected = BAD_REQUESTS[case]
    log_start = len(server.log)
    response, stream, connection = exchange(server, request)
    with connection, stream:
        assert response.status == expected, f"{case}: got {response.status} {response.reason}"
        assert response.headers.get("connection") == "close"
        assert_closed(stream)
    status, _, _ = fetch(server, "GET", f"/?name=after-{case}")
    assert status == 200
    log = server.wait_for_log(f'"GET /?name=after-{case} HTTP/1.1" 200')
    assert "Traceback" not in log[log_start:]


# --- bodies: streamed responses, big uploads, Expect: 100-continue ----------------------


@pytest.mark.parametrize("name", EVERY_MODEL + ["select-threads-0"])
def test_streamed_response_is_chunked(shared_servers, name):
    status, response, body = fetch(shared_servers(name), "GET", "/stream")
    assert status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert body == STREAM_BODY


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("name", EVERY_MODEL + ["select-threads-0"])
def test_three_megabyte_upload_echoes_back_identical(shared_servers, name, framing):
    payload = os.urandom(3_000_000)
    headers = {"Content-Type": "application/octet-stream"}
    if framing == "chunked":  # an iterable body without a length: http.client chunks it
        body = (payload[start : start + 100_000] for start in range(0, len(payload), 100_000))
    else:
        body = payload
    status, response, echoed = fetch(shared_servers(name), "POST", "/echo", body=body, headers=headers, timeout=20)
    assert status == 200
    assert len(echoed) == len(payload) and echoed == payload


@pytest.mark.parametrize("name", EVERY_MODEL + ["select-threads-0"])
def test_expect_100_continue_gets_the_go_ahead_before_the_body(shared_servers, name):
    server = shared_servers(name)
    payload = os.urandom(200_000)
    head = (
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(server.address, timeout=5) as connection:
        stream = connection.makefile("rb")
        connection.sendall(head.encode())
        go_ahead = read_response(stream)  # times out if the server waits for the body
        assert (go_ahead.version, go_ahead.status) == ("HTTP/1.1", 100)
        connection.sendall(payload)
        final = read_response(stream)
    assert final.status == 200 and final.body == payload


# --- descriptors and zombies after a mixed load -------------------------------------------

KEEP_ALIVE_PLAN = [  # 8 requests on one connection; /error closes it, http.client reconnects
    ("GET", "/", 200),
    ("POST", "/echo", 200),
    ("GET", "/stream", 200),
    ("GET", "/missing", 404),
    ("GET", "/error", 500),
    ("GET", "/", 200),
    ("POST", "/json", 200),
    ("GET", "/sleep?seconds=0", 200),
]


def mixed_requests(server, rounds):
    """``rounds`` times: one keep-alive connection with 8 requests, 6 one-shot GETs with
    Connection: close, 2 /error, 2 malformed, 1 HTTP/1.0, and 1 client that sends half a
    head and leaves: 20 requests a round. Returns how many were made."""
    made = 0
    for round_ in range(rounds):
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            for method, path, expected in KEEP_ALIVE_PLAN:
                connection.request(method, path, body=b'{"round": 1}' if method == "POST" else None)
                response = connection.getresponse()
                response.read()
                assert response.status == expected, f"{method} {path}"
                made += 1
        finally:
            connection.close()
        for number in range(6):
            assert fetch(server, "GET", f"/?name={round_}-{number}", headers={"Connection": "close"})[0] == 200
            made += 1
        for _ in range(2):
            assert fetch(server, "GET", "/error", headers={"Connection": "close"})[0] == 500
            made += 1
        for bad in (b"NONSENSE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
            response, stream, raw = exchange(server, bad)
            with raw, stream:
                assert response.status == 400
                assert_closed(stream)
            made += 1
        response, stream, raw = exchange(server, b"GET / HTTP/1.0\r\n\r\n")
        with raw, stream:
            assert response.status == 200
        made += 1
        with socket.create_connection(server.address, timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHo")  # ... and closes: the server logs "went away"
        made += 1
    return made


@pytest.mark.slow
@needs_proc
@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", EVERY_MODEL)
def test_no_descriptor_leaks_and_no_zombies_after_200_requests(serve, name):
    server = start(serve, name)
    mixed_requests(server, rounds=1)  # warm-up: every code path once
    baseline = settled_fd_count(server.pid)
    assert mixed_requests(server, rounds=10) == 200
    deadline = time.monotonic() + 10
    while abs((count := fd_count(server.pid)) - baseline) > 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert abs(count - baseline) <= 2, (
        f"{name}: {count} descriptors open after 200 requests, {baseline} after the warm-up"
    )
    if name == "forking":
        # Each child exits once its client has closed; the parent must reap every one.
        deadline = time.monotonic() + 10
        while (children := children_of(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        zombies = [pid for pid, state in children.items() if state == "Z"]
        assert not zombies, f"zombie children of the forking server: {zombies}"
        assert not children, f"children still running 10 s after their clients closed: {children}"
    assert server.process.poll() is None, "the server died"


# --- a thousand idle connections on the event loop -----------------------------------------


@pytest.mark.slow
@needs_proc
@pytest.mark.timeout(60)
def test_select_server_holds_a_thousand_idle_connections(serve):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip(f"the hard limit on open files is {hard}; 1,000 connections need about 2,100 (both ends)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        server = serve(SELECT)
        baseline = settled_fd_count(server.pid, quiet=0.1)
        idle = []
        try:
            for _ in range(1000):
                idle.append(socket.create_connection(server.address, timeout=10))
            wait_until(lambda: fd_count(server.pid) >= baseline + 1000, 10, "the server to accept 1,000 connections")
            began = time.monotonic()
            status, _, body = fetch(server, "GET", "/", timeout=5)
            elapsed = time.monotonic() - began
            assert status == 200 and b"Hello, world!" in body
            assert elapsed < 1.0, f"GET / took {elapsed:.2f} s with 1,000 idle connections open"
        finally:
            for connection in idle:
                connection.close()
        wait_until(lambda: fd_count(server.pid) <= baseline + 2, 10, "the server to close the 1,000 connections")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- stopping: SIGINT and SIGTERM ----------------------------------------------------------

SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


def open_idle_connection(server, name):
    """A connection the server is holding open while nothing happens on it.

    The concurrent servers keep it after one request (keep-alive); the iterative server
    closes after every response, so for it this is a client that connected and is silent.
    """
    if name == "iterative":
        return socket.create_connection(server.address, timeout=10)
    connection = socket.create_connection(server.address, timeout=10)
    stream = connection.makefile("rb")
    connection.sendall(get_request("/"))
    assert read_response(stream).status == 200
    stream.close()
    return connection


def assert_closed_by_server(connection):
    connection.settimeout(5)
    try:
        data = connection.recv(1)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        pytest.fail("the idle connection is still open after the server exited")
    assert data == b""


@pytest.mark.slow
@pytest.mark.parametrize("with_idle_connection", [False, True], ids=["no-clients", "idle-connection"])
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("name", EVERY_MODEL)
def test_signal_stops_the_server_cleanly(serve, name, sig, with_idle_connection):
    script, args = RUNS[name]
    server = serve(script, *args, env={"PYTHONFAULTHANDLER": "1"})  # see show_where_it_hangs
    idle = open_idle_connection(server, name) if with_idle_connection else None
    try:
        code, elapsed = signal_and_wait(server, sig)
        assert code == 0, f"exit status {code}\n{server.log}"
        assert elapsed < 2.0, f"took {elapsed:.2f} s to exit"
        assert "Traceback" not in server.log
        if idle:
            assert_closed_by_server(idle)
        assert_port_free_again(server)
    finally:
        if idle:
            idle.close()


# The asyncio server, with a selector that signals its own process as it is made: asyncio
# makes one first of all the loop's parts, so the signal lands while the loop is half-built.
SIGNAL_WHILE_THE_LOOP_IS_BUILT = """
import os, runpy, selectors, sys

class Selector(selectors.DefaultSelector):
    def __init__(self):
        os.kill(os.getpid(), {sig})
        super().__init__()

selectors.DefaultSelector = Selector
sys.argv = [{script!r}, "--port", "0"]
runpy.run_path({script!r}, run_name="__main__")
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signals cannot be held here")
@pytest.mark.parametrize("sig", SIGNALS)
def test_a_signal_while_asyncio_builds_its_loop_is_a_clean_stop(sig):
    script = str(ROOT / SERVERS["asyncio"])
    run = run_cli("-c", SIGNAL_WHILE_THE_LOOP_IS_BUILT.format(sig=int(sig), script=script))
    assert (run.returncode, "Traceback" in run.stderr) == (0, False), run.stderr
    assert "Shutting down." in run.stderr


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signals cannot be held here")
@pytest.mark.parametrize("name", EVERY_MODEL + ["select-threads-0"])
def test_the_app_runs_with_no_signal_held(serve, name):
    # The asyncio server holds Ctrl-C and SIGTERM while its loop is built: a thread it
    # started then would hold them for good, and so would every program the app starts.
    server = start(serve, name, "tests.held_signals_app:app")
    status, _, held = fetch(server, "GET", "/")
    assert (status, held) == (200, b""), held


def start_in_flight(server, path):
    """GET ``path`` in a thread; once the app has the request, return (thread, result)."""
    result = {}

    def client():
        try:
            status, _, body = fetch(server, "GET", path, headers={"Connection": "close"}, timeout=15)
            result["response"] = (status, body)
        except Exception as error:
            result["response"] = error

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    server.wait_for_log(f"app begins GET {path}", timeout=10)
    return thread, result


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("name", CONCURRENT)
def test_signal_lets_a_request_in_flight_finish(serve, name, sig):
    server = start(serve, name, ANNOUNCING_APP)
    idle = open_idle_connection(server, name)
    try:
        thread, result = start_in_flight(server, "/sleep?seconds=0.5")
        code, elapsed = signal_and_wait(server, sig)
        thread.join(10)
        assert result.get("response") == (200, b"slept 0.5\n"), "the request in flight did not get its answer"
        assert code == 0, f"exit status {code}\n{server.log}"
        assert elapsed < 2.0, f"took {elapsed:.2f} s to exit"
        assert "Traceback" not in server.log
        assert_closed_by_server(idle)
        assert_port_free_again(server)
    finally:
        idle.close()


def kernel_wait_channel(pid):
    """Where in the kernel the process sleeps ("anon_pipe_write", "pipe_write", ...)."""
    try:
        with open(f"/proc/{pid}/wchan") as file:
            return file.read()
    except OSError:
        return ""


@needs_proc
@pytest.mark.parametrize("name", EVERY_MODEL)
def test_a_signal_while_the_server_announces_itself_still_exits_cleanly(name):
    """Ctrl-C at any moment after start-up is a clean stop, even the moment the server
    prints its Serving line (a test, the grader, a notebook often signals right then).

    To hit that moment every time, the server's stdout is a pipe we have filled: its
    ``print("Serving on ...")`` blocks in write() until we read, and we signal it there.
    """
    script, args = RUNS[name]
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 65536)
    except BlockingIOError:
        pass  # the pipe is full
    os.set_blocking(write_end, True)
    command = [sys.executable, "-u", str(ROOT / script), *args, "--port", "0"]
    process = subprocess.Popen(
        command, stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT, text=True
    )
    os.close(write_end)
    drained = []
    try:
        deadline = time.monotonic() + 10
        while "pipe" not in (where := kernel_wait_channel(process.pid)):
            if time.monotonic() > deadline:
                if where.strip() in ("", "0"):
                    pytest.skip("this kernel does not show where a process waits (/proc/PID/wchan)")
                pytest.fail(f"the server never blocked writing its Serving line (it waits in {where!r})")
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        # Now read the pipe, so that whatever the server still writes does not block it.
        drain = threading.Thread(
            target=lambda: drained.extend(iter(lambda: os.read(read_end, 65536), b"")), daemon=True
        )
        drain.start()
        code = process.wait(10)
        stderr = process.stderr.read()
        drain.join(5)  # ends at EOF: the server, the pipe's only writer, has exited
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
        os.close(read_end)
    assert code == 0, f"exit status {code}\n{stderr}"
    assert "Traceback" not in stderr, stderr


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("name", EVERY_MODEL)
def test_sigterm_stops_the_server_within_two_seconds_during_a_long_request(serve, name):
    server = start(serve, name, ANNOUNCING_APP)
    thread, _ = start_in_flight(server, "/sleep?seconds=5")
    code, elapsed = signal_and_wait(server, signal.SIGTERM)
    thread.join(10)
    assert code == 0, f"exit status {code}\n{server.log}"
    assert elapsed < 2.0, f"took {elapsed:.2f} s to exit while a 5 s request was in the app"
    assert "Traceback" not in server.log


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, option",
    [
        ("iterative", None),
        ("forking", None),
        ("threaded", "--max-threads"),
        ("select", "--threads"),
        ("prefork", "--workers"),
        ("asyncio", "--threads"),
    ],
    ids=EVERY_MODEL,
)
def test_help_explains_the_options(name, option):
    result = run_cli(RUNS[name][0], "--help")
    assert result.returncode == 0, result.stderr
    for expected in ("--host", "--port", "APP", option):
        if expected:
            assert expected in result.stdout
    if name == "iterative":
        assert "--threads" not in result.stdout and "--max-threads" not in result.stdout


@pytest.mark.parametrize(
    "name, args",
    [
        ("select", ["--threads", "abc"]),
        ("select", ["--threads", "-1"]),
        ("threaded", ["--max-threads", "abc"]),
        ("threaded", ["--max-threads", "0"]),
        ("forking", ["--port", "http"]),
    ],
    ids=["threads-abc", "threads-negative", "max-threads-abc", "max-threads-0", "port-http"],
)
def test_a_bad_option_prints_one_line_and_exits_2(name, args):
    result = run_cli(RUNS[name][0], "--port", "0", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit status {result.returncode}\n{result.stderr}"
    assert len(lines) == 1 and args[0] in lines[0], result.stderr
    assert "Serving on" not in result.stdout


@pytest.mark.parametrize("name", list(RUNS))
def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(shared_servers, name):
    """`printf 'GET ...' | nc` shuts its sending side once the request is out, and waits:
    end of input is not end of interest. The answer must come, then the close."""
    server = shared_servers(name)
    with socket.create_connection(server.address, timeout=10) as client:
        client.sendall(b"GET /sleep?seconds=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
        client.shutdown(socket.SHUT_WR)
        response = b""
        while data := client.recv(65536):
            response += data
    assert response.startswith(b"HTTP/1.1 200 OK"), response[:200]
    assert response.endswith(b"slept 0.3\n"), response[-200:]


# --- prefork: the master keeps its workers, and leaves none behind ---------------------------


def live_children(pid):
    return {child for child, state in children_of(pid).items() if state != "Z"}


def workers_of(server, count, timeout=10):
    """The master's worker PIDs, once it has ``count`` of them running."""
    return sorted(
        wait_until(lambda: len(workers := live_children(server.pid)) == count and workers, timeout, f"{count} workers")
    )


def process_gone(pid):
    """No such process: exited and reaped (a zombie still counts as there)."""
    return not os.path.exists(f"/proc/{pid}")


@TIMING
@pytest.mark.slow
@needs_proc
@pytest.mark.timeout(60)
def test_prefork_replaces_a_worker_killed_with_sigkill_and_serves_meanwhile(serve):
    server = start(serve, "prefork")
    first, second = workers_of(server, 2)
    os.kill(first, signal.SIGKILL)
    began = time.monotonic()
    statuses = []
    while True:
        statuses.append(fetch(server, "GET", f"/?name=during-{len(statuses)}", timeout=5)[0])
        workers = live_children(server.pid)
        if len(workers) == 2 and first not in workers:
            break
        assert time.monotonic() - began < 2.0, f"no new worker 2 s after SIGKILL: {workers}"
    assert second in workers, "the worker that was not killed was replaced too"
    assert statuses and set(statuses) == {200}
    server.wait_for_log(f"worker {first} was killed by SIGKILL; starting another")
    assert all(fetch(server, "GET", f"/?name=after-{n}")[0] == 200 for n in range(10))
    assert "Traceback" not in server.log


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("sig", SIGNALS)
def test_prefork_stops_every_worker_and_leaves_no_zombie_or_orphan(serve, sig):
    server = start(serve, "prefork")
    workers = workers_of(server, 2)
    idle = open_idle_connection(server, "prefork")
    try:
        code, elapsed = signal_and_wait(server, sig)
        assert code == 0 and elapsed < 2.0, f"exit status {code} after {elapsed:.2f} s\n{server.log}"
        # The master reaped them: not running, and not left as zombies (they would be
        # children of init now, since their parent is gone).
        wait_until(lambda: all(process_gone(pid) for pid in workers), 2, "the workers to be gone")
        assert_closed_by_server(idle)
        assert_port_free_again(server)
    finally:
        idle.close()


@pytest.mark.slow
@needs_proc
@pytest.mark.timeout(30)
def test_prefork_workers_stop_when_their_master_is_killed(serve):
    server = start(serve, "prefork")
    workers = workers_of(server, 2)
    server.process.kill()  # SIGKILL: the master cannot tell its workers anything
    server.process.wait(5)
    # Their new parent (init, or a subreaper) reaps them: gone, or a zombie until it does.
    wait_until(lambda: all(not_running(pid) for pid in workers), 5, "orphaned workers to stop by themselves")


def not_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


@needs_proc
def test_prefork_reuse_port_gives_each_worker_a_listening_socket(serve):
    server = serve(PREFORK, "--workers", "3", "--reuse-port")
    workers = workers_of(server, 3)
    assert all(fetch(server, "GET", f"/?name=r{n}")[0] == 200 for n in range(20))
    listening = {pid: listening_sockets(pid) for pid in workers}
    assert all(len(inodes) == 1 for inodes in listening.values()), listening
    assert len(set().union(*listening.values())) == 3, f"the workers share sockets: {listening}"


@TIMING
@pytest.mark.slow
@needs_proc
@pytest.mark.timeout(90)
def test_prefork_spreads_clients_that_come_at_once_evenly_over_its_workers(serve):
    """Four CPU-bound requests sent the moment ``Serving on`` appears, on 2 workers: two
    each, in five fresh starts (the demo app's /cpu says which process computed). A
    student sends them so, before any worker may be up; left to the kernel, or to a
    first worker that took every client until its sibling published, they landed 4-0."""
    for attempt in range(5):
        server = start(serve, "prefork")  # a new one each time: no worker has started yet
        with ThreadPoolExecutor(4) as pool:
            bodies = list(pool.map(lambda at: fetch(at, "GET", "/cpu?ms=200")[2].decode(), [server] * 4))
        pids = [int(body.rpartition("in process ")[2]) for body in bodies]
        workers = workers_of(server, 2)
        assert set(pids) <= set(workers), f"answered by {pids}, the workers are {workers}"
        assert sorted(Counter(pids).values()) == [2, 2], f"start {attempt + 1}: four clients split {pids}"
        server.stop()


@TIMING
@pytest.mark.slow
@needs_proc
@pytest.mark.timeout(60)
def test_a_prefork_worker_that_dies_at_start_holds_back_no_other(serve):
    """Until a worker publishes, its slot counts as idle, so the first worker up takes one
    client and leaves the next to it; a worker that dies before publishing must not hold
    the others to that. Here the second worker dies at every start: the first takes four
    half-second sleeps at once and ends them together, not one after another (2 s)."""
    server = start(serve, "prefork", "tests.dying_worker_app:app")
    server.wait_for_log("exited with status 1; starting another")
    began = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda at: fetch(at, "GET", "/sleep?seconds=0.5")[0], [server] * 4))
    elapsed = time.monotonic() - began
    assert statuses == [200] * 4
    assert elapsed < 1.5, f"four 0.5 s sleeps took {elapsed:.1f} s: the dead worker's slot held the live one back"


def listening_sockets(pid):
    """Inodes of the TCP sockets in LISTEN state (0A) among a process's descriptors."""
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed since the listing: a client's connection ending, not a listening socket
        if target.startswith("socket:["):
            sockets.add(target[8:-1])
    with open(f"/proc/{pid}/net/tcp") as file:
        listening = {line.split()[9] for line in file.readlines()[1:] if line.split()[3] == "0A"}
    return sockets & listening


# --- prefork and asyncio: slow clients meet their deadlines ----------------------------------

SHORT_DEADLINES = ("--deadlines", "head=1,idle=1,send=1")


@TIMING
@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["prefork", "asyncio"])
def test_a_trickling_client_gets_408_and_others_are_served_meanwhile(serve, name):
    server = start(serve, name, *SHORT_DEADLINES)
    with socket.create_connection(server.address, timeout=10) as slow:
        began = time.monotonic()
        slow.sendall(b"GET / HTTP/1.1\r\n")
        for header in (b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
            assert fetch(server, "GET", "/?name=meanwhile", timeout=5)[0] == 200
            time.sleep(0.4)  # a slowloris: one header line now and then, never the end of the head
            try:
                slow.sendall(header)
            except OSError:
                break  # already answered and closed
        response = read_response(slow.makefile("rb"))
        assert response.status == 408
        assert time.monotonic() - began < 3.0


@TIMING
@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["prefork", "asyncio"])
def test_an_idle_kept_alive_connection_is_closed_after_the_idle_deadline(serve, name):
    server = start(serve, name, *SHORT_DEADLINES)
    connection = open_idle_connection(server, name)
    try:
        began = time.monotonic()
        assert_closed_by_server(connection)
        assert time.monotonic() - began < 3.0
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["prefork", "asyncio"])
def test_a_client_that_reads_none_of_a_large_response_is_dropped(serve, name):
    server = start(serve, name, *SHORT_DEADLINES)
    payload = b"x" * 8_000_000  # far more than the socket buffers and the high-water mark hold
    head = f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
    with socket.create_connection(server.address, timeout=10) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(head + payload)  # ... and never reads the echo
        server.wait_for_log("took none of its response", timeout=10)
    assert fetch(server, "GET", "/?name=after")[0] == 200
    assert "Traceback" not in server.log
