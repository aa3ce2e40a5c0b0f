"""Graded checks for part 3 (exercises/part3.py): your own forking, threaded and select servers.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. Each check starts the stage under test (yours, or
with ``--solutions`` the reference in part3_concurrency/minimal_servers.py) as a server
process of its own (``grader/tests/launch.py``), talks to it over loopback, and looks at
that process from outside: its children, its open files, its threads. Run them with

    python -m grader part3              (or: python -m pytest grader/tests/test_part3.py)
"""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from grader.tests.helpers import (
    WAIT,
    StudentError,
    StudentServer,
    children_of,
    listening_inode,
    open_descriptors,
    read_until_closed,
    short,
    thread_count,
)

exercise = pytest.mark.exercise
PID_APP = "grader.tests.apps:pid_app"
COUNTING_APP = "grader.tests.apps:counting_app"
RAISING_APP = "grader.tests.apps:raising_app"
TOGETHER_APP = "grader.tests.apps:together_app"
FLAGS_APP = "grader.tests.apps:flags_app"
SOCKETS_APP = "grader.tests.apps:sockets_app"


@pytest.fixture
def serve():
    """Start a stage as a server process; kill it, and every child it made, afterwards."""
    servers = []

    def start(name, app=None, max_threads=None, response_size=None):
        servers.append(StudentServer("part3", name, app, max_threads, response_size))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def at_once(server, paths, timeout=WAIT):
    """GET each path from a thread of its own, all at once; return ({path: body or error}, seconds)."""
    answers = {}

    def fetch(path):
        try:
            _, _, body = server.get(path, timeout=timeout)
            answers[path] = body.decode("latin-1")
        except BaseException as error:  # kept, and raised below in the check's own thread
            answers[path] = error

    started = time.monotonic()
    threads = [threading.Thread(target=fetch, args=(path,), daemon=True) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 2)
    seconds = time.monotonic() - started
    for path in paths:
        if isinstance(answers.get(path), BaseException):
            raise answers[path]
    return answers, seconds


def body_of(server, path, timeout=WAIT):
    status_line, _, body = server.get(path, timeout)
    assert " 200 " in status_line + " ", f"GET {path} got {status_line!r}, expected 200"
    return body.decode("latin-1")


# --- serve_forking ---------------------------------------------------------------------------------


@exercise("serve_forking")
def test_serve_forking_answers_and_ends_the_connection(serve):
    """serve_forking() answers a request, and the connection ends after the response."""
    server = serve("serve_forking", PID_APP)
    body_of(server, "/")


@exercise("serve_forking")
def test_serve_forking_serves_in_children(serve):
    """Each connection is served by a child process of its own."""
    server = serve("serve_forking", PID_APP)
    pids = [int(body_of(server, f"/{number}").split()[1]) for number in range(3)]
    assert server.pid not in pids, (
        f"the app ran in the server's own process (pid {server.pid}): fork, and serve in the child"
    )
    assert len(set(pids)) == 3, f"three connections were served by the processes {pids}: expected a new child each"


@exercise("serve_forking")
def test_serve_forking_tells_the_app_it_runs_in_a_process_of_its_own(serve):
    """The app is told that it runs in a child process: wsgi.multiprocess is True, wsgi.multithread False."""
    server = serve("serve_forking", FLAGS_APP)
    body = body_of(server, "/")
    assert body == "multithread False multiprocess True", (
        f"the app found {body!r} in its environ, expected multiprocess True and multithread False (PEP 3333): "
        "a forking server runs the app in many processes, so tell it with serve_connection's keyword "
        "multiprocess=True"
    )


@exercise("serve_forking")
def test_serve_forking_serves_clients_at_once(serve):
    """Three requests of one second each are served at the same time."""
    server = serve("serve_forking", PID_APP)
    answers, seconds = at_once(server, [f"/{number}?seconds=1" for number in range(3)])
    assert seconds < 2.5, (
        f"three requests of 1 s each, sent at once, took {seconds:.1f} s in all, expected about 1 s: "
        "does the parent wait for the child before accepting the next client?"
    )


@exercise("serve_forking")
def test_serve_forking_answers_at_once_while_a_slow_request_is_served(serve):
    """Quick requests are answered at once while a slow one is being served: reaping never waits."""
    server = serve("serve_forking", PID_APP)
    with server.connect() as slow:
        slow.sendall(b"GET /slow?seconds=2.5 HTTP/1.0\r\n\r\n")
        server.wait_for_app("/slow?seconds=2.5")  # in its child's app
        for number in range(1, 4):
            with server.connect() as quick:
                quick.sendall(f"GET /quick-{number} HTTP/1.0\r\n\r\n".encode())
                data, closed = read_until_closed(quick, 1)
            server.check()
            if not (data and closed):
                seen = "its answer came, but its connection did not end" if data else "no answer came"
                raise AssertionError(
                    f"while a request of 2.5 s was being served, quick requests were sent one after another, and "
                    f"to quick request {number} of 3 {seen} within 1 s: the parent stopped. Does it wait for a "
                    "child that is still serving (waitpid without WNOHANG, os.wait)? Reap with WNOHANG, which "
                    "never waits"
                )


def children_left(server, timeout=2):
    """The server's children ``timeout`` seconds after its clients left: ([zombies], [running])."""
    deadline = time.monotonic() + timeout
    while (left := children_of(server.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid, state in left if state == "Z"], [pid for pid, state in left if state != "Z"]


@exercise("serve_forking")
def test_serve_forking_leaves_no_children(serve):
    """Children exit after their connection, and are reaped: no zombies."""
    server = serve("serve_forking", PID_APP)
    for number in range(5):
        body_of(server, f"/{number}")
    zombies, running = children_left(server)
    assert not zombies, (
        f"5 clients were served and left; 2 s later the server had {len(zombies)} zombie children "
        "(exited, never reaped): collect every exited child, as it exits (SIGCHLD)"
    )
    assert not running, (
        f"5 clients were served and left; 2 s later {len(running)} children were still running: "
        "the child must end after its connection (os._exit), never return into the loop"
    )


@exercise("serve_forking")
def test_serve_forking_reaps_children_that_exit_together(serve):
    """Thirty children that exit at the same moment are all reaped: signals do not queue."""
    server = serve("serve_forking", TOGETHER_APP)
    until = time.time() + 1  # every child answers, then exits, at this moment
    at_once(server, [f"/{number}?until={until:.3f}" for number in range(30)])
    zombies, _ = children_left(server)
    assert not zombies, (
        f"30 clients were served at once and their children exited together; 2 s later the server had "
        f"{len(zombies)} zombie children: signals do not queue, one SIGCHLD may stand for many exited children. "
        "In the handler, call waitpid with WNOHANG in a loop, until no exited child is left"
    )


@exercise("serve_forking")
def test_serve_forking_leaks_no_descriptors(serve):
    """The server holds no more open files after 20 clients than after one."""
    server = serve("serve_forking", PID_APP)
    body_of(server, "/")
    before = open_descriptors(server.pid)
    if before is None:
        pytest.skip("counting open files needs /proc (Linux)")
    for number in range(20):
        body_of(server, f"/{number}")
    after = open_descriptors(server.pid)
    assert after - before <= 2, (
        f"the server had {before} files open after one client and {after} after 20 more: "
        "the parent keeps a descriptor per client; close the parent's copy of each connection"
    )


@exercise("serve_forking")
def test_serve_forking_child_lets_go_of_the_listener(serve):
    """The child that serves a connection holds no copy of the listening socket."""
    server = serve("serve_forking", SOCKETS_APP)
    held = body_of(server, "/").split()[1:]
    listener = listening_inode(server.address[1])
    if listener is None or held == ["unknown"]:
        pytest.skip("seeing which sockets a process holds needs /proc (Linux)")
    assert listener not in held, (
        "the child that served the request still held the listening socket while the app ran: close the "
        "child's copy of the listener first thing in the child. It accepts nobody, and while any child holds "
        "it the port still takes connections, even once the server itself has gone"
    )


@exercise("serve_forking")
def test_serve_forking_survives_an_app_that_fails_half_way(serve):
    """After a request whose app fails half way, the child ends itself and the next client is served."""
    server = serve("serve_forking", RAISING_APP)
    with server.connect() as client:
        client.sendall(b"GET /raise HTTP/1.0\r\n\r\n")
        read_until_closed(client, WAIT)  # half a body, then serve_connection lets the app's error out
    try:
        body_of(server, "/after-a-failure")
        children_left(server)
        server.check(wait=0.3)  # a child that came back out of serve_forking() has said so by now
    except StudentError as error:
        raise AssertionError(f"after a request whose app failed half way (GET /raise): {error}") from None
    except AssertionError as error:
        raise AssertionError(
            f"after a request whose app failed half way (GET /raise), the next client was not served ({error}): "
            "the parent must go on accepting, whatever happens in a child"
        ) from None


# --- serve_threaded ---------------------------------------------------------------------------------


@exercise("serve_threaded")
def test_serve_threaded_answers_requests(serve):
    """serve_threaded() answers requests, one after another."""
    server = serve("serve_threaded", PID_APP, max_threads=4)
    for number in range(3):
        body = body_of(server, f"/{number}")
        assert body == f"pid {server.pid}", f"GET /{number} got {short(body)}: threads run in the server's process"


@exercise("serve_threaded")
def test_serve_threaded_tells_the_app_it_runs_on_threads(serve):
    """The app is told that other threads may run it at once: wsgi.multithread is True, wsgi.multiprocess False."""
    server = serve("serve_threaded", FLAGS_APP, max_threads=4)
    body = body_of(server, "/")
    assert body == "multithread True multiprocess False", (
        f"the app found {body!r} in its environ, expected multithread True and multiprocess False (PEP 3333): "
        "a threaded server runs the app on many threads at once, so tell it with serve_connection's keyword "
        "multithread=True"
    )


@exercise("serve_threaded")
def test_serve_threaded_serves_clients_at_once(serve):
    """Three slow requests are in the app at the same time, each on a thread."""
    server = serve("serve_threaded", COUNTING_APP, max_threads=8)
    answers, seconds = at_once(server, [f"/{number}?seconds=0.6" for number in range(3)])
    peak = max(int(body.split()[1]) for body in answers.values())
    assert peak == 3 and seconds < 1.5, (
        f"three requests of 0.6 s each, sent at once, took {seconds:.1f} s and at most {peak} were in the app "
        "together: expected 3 at once, a thread for each connection"
    )


@exercise("serve_threaded")
def test_serve_threaded_caps_its_threads(serve):
    """With max_threads=2, two slow requests run at once, and a third waits its turn."""
    server = serve("serve_threaded", COUNTING_APP, max_threads=2)
    answers, seconds = at_once(server, [f"/{number}?seconds=0.6" for number in range(3)])
    peak = max(int(body.split()[1]) for body in answers.values())
    assert peak <= 2, (
        f"with max_threads=2, three slow requests sent at once were {peak} in the app together, expected 2 at "
        "most: take a slot before accepting"
    )


@exercise("serve_threaded")
def test_serve_threaded_frees_its_slots(serve):
    """With max_threads=2, ten clients in turn are all served: each thread frees its slot."""
    server = serve("serve_threaded", PID_APP, max_threads=2)
    for number in range(10):
        try:
            body_of(server, f"/{number}")
        except AssertionError as error:
            raise AssertionError(
                f"with max_threads=2, client {number + 1} of 10 (sent one after another) was not served ({error}): "
                "a thread must give its slot back when its connection is done"
            ) from None
    with server.connect():
        pass  # a client that leaves without a word frees its slot too
    server.connect().close()
    body_of(server, "/after-two-silent-clients")


@exercise("serve_threaded")
def test_serve_threaded_frees_a_slot_when_serving_fails(serve):
    """With max_threads=2, two requests whose app fails half way leave both slots free for the next client."""
    server = serve("serve_threaded", RAISING_APP, max_threads=2)
    for _ in range(2):
        with server.connect() as client:
            client.sendall(b"GET /raise HTTP/1.0\r\n\r\n")
            read_until_closed(client, WAIT)  # half a body, then serve_connection lets the app's error out
    try:
        body_of(server, "/after-two-failures")
    except AssertionError as error:
        raise AssertionError(
            f"with max_threads=2, after two requests whose app failed half way, the next client was not "
            f"served ({error}): give the slot back in a finally, however serving the connection ended"
        ) from None


@exercise("serve_threaded")
def test_serve_threaded_keeps_its_cap_after_failures(serve):
    """With max_threads=2, after two requests whose app fails half way, slow requests are still two at most at once."""
    server = serve("serve_threaded", COUNTING_APP, max_threads=2)
    for _ in range(2):
        with server.connect() as client:
            client.sendall(b"GET /raise HTTP/1.0\r\n\r\n")
            read_until_closed(client, WAIT)  # half a body, then serve_connection lets the app's error out
    answers, _ = at_once(server, [f"/{number}?seconds=0.6" for number in range(3)])
    peak = max(int(body.split()[1]) for body in answers.values())
    assert peak <= 2, (
        f"with max_threads=2, after two requests whose app failed half way (GET /raise), three requests of "
        f"0.6 s sent at once were {peak} in the app together, expected 2 at most: the cap grew. Each connection "
        "gives its slot back once, in a finally, whatever happened; a plain Semaphore released twice (in an "
        "except and in the finally) counts one more slot each time, where a BoundedSemaphore would raise"
    )


@exercise("serve_threaded")
def test_serve_threaded_takes_a_slot_before_accepting(serve):
    """With every thread busy, waiting clients stay in the listen backlog: none is accepted early."""
    server = serve("serve_threaded", COUNTING_APP, max_threads=2)
    before = open_descriptors(server.pid)
    clients = []
    try:
        for path in ("/?seconds=2.5", "/?seconds=2.5", "/", "/"):
            clients.append(server.connect())
            clients[-1].sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        during = before
        if before is not None:
            # The most connections held at once: until both threads have their slow client, then for a second
            # more, in which a server that accepts early does so (a busy machine may keep its loop from its next
            # accept() for a good part of that second). Counted all along, not once at the end: on a busy
            # machine a slow request may be over before the end, and its connection closed.
            deadline, settled = time.monotonic() + WAIT, None
            while time.monotonic() < (settled or deadline) and during - before <= 2:
                held = open_descriptors(server.pid)
                during = max(during, held if held is not None else during)
                if settled is None and during >= before + 2:
                    settled = time.monotonic() + 1.0
                time.sleep(0.02)
        server.check()
        if before is not None and during is not None:
            assert during - before <= 2, (
                f"with max_threads=2 and both threads busy, the server held {during - before} client connections "
                "open: it accepted a client it had no thread for. Take a slot before accept(), so that the others "
                "wait in the listen backlog"
            )
        for client in clients:
            data, closed = read_until_closed(client, WAIT)
            assert data.startswith(b"HTTP/1.") and closed, f"a client of four got {short(data)}"
    finally:
        for client in clients:
            client.close()


@exercise("serve_threaded")
def test_serve_threaded_stops_on_ctrl_c_with_a_request_in_flight(serve):
    """Ctrl-C (SIGINT) stops the server at once, even while a slow request is being served."""
    server = serve("serve_threaded", COUNTING_APP, max_threads=4)
    with server.connect() as slow:
        slow.sendall(b"GET /?seconds=3 HTTP/1.0\r\n\r\n")
        server.wait_for_app("/?seconds=3")  # in the app, on its thread
        server.check()
        os.kill(server.pid, signal.SIGINT)
        try:
            server.process.wait(timeout=1.5)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "Ctrl-C (SIGINT) reached the server while a request of 3 s was being served, and 1.5 s later the "
                "server was still running: Python waits for every thread that is not a daemon before it exits. "
                "Start the threads with daemon=True"
            ) from None


# --- serve_select -------------------------------------------------------------------------------------

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def expect_fixed_response(data, closed, what):
    assert data, f"{what}: the server sent nothing"
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"Hello, select!"), (
        f"{what}: got {short(data)}, expected RESPONSE (HTTP/1.1 200 OK ... Hello, select!)"
    )
    assert closed, f"{what}: RESPONSE came, but the server did not close the connection after it"


@exercise("serve_select")
def test_serve_select_answers_and_closes(serve):
    """serve_select() answers a request with RESPONSE, then closes the connection."""
    server = serve("serve_select")
    for number in range(3):
        data, closed = server.request(REQUEST)
        expect_fixed_response(data, closed, f"request {number + 1} of 3")


def send_head_in_pieces(server):
    """Send a head in four pieces; after each but the last, check that nothing came back yet."""
    with server.connect() as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (b"GET / HT", b"TP/1.1\r\nHost: x\r\n", b"\r"):
            client.sendall(piece)
            time.sleep(0.1)  # a moment in which an early answer would come: watching for an absence
            client.setblocking(False)
            try:
                early = client.recv(100)
            except BlockingIOError:
                early = None
            except ConnectionResetError:
                early = b""  # closed, with what we sent unread
            finally:
                client.settimeout(WAIT)
            if early == b"":
                server.check(wait=1)  # a stage that stopped has said why by now
                raise AssertionError(
                    f"a client sent a head in pieces, 0.1 s apart; after the piece {piece!r}, before the head's "
                    "blank line, the server closed the connection, expected it to wait for the rest: recv() once "
                    "per readable event, keep what came, and wait for the selector to say the socket is readable "
                    "again (a second recv() on a non-blocking socket raises BlockingIOError when nothing more has "
                    "come: no reason to close)"
                )
            assert early is None, (
                f"after the piece {piece!r}, before the head's blank line, the server sent {short(early)}, "
                "expected nothing yet: wait for the blank line"
            )
            server.check()
        client.sendall(b"\n")
        return read_until_closed(client, WAIT)


@exercise("serve_select")
def test_serve_select_waits_for_the_whole_head(serve):
    """A head that arrives in pieces is answered once its blank line has come, not before."""
    server = serve("serve_select")
    try:
        data, closed = send_head_in_pieces(server)
    except OSError:
        server.check(wait=2)  # the server died: say why
        raise
    if not data:
        server.check(wait=1)
    expect_fixed_response(data, closed, "a head sent in four pieces")


HEAD_TOO_LONG = 2 * 64 * 1024  # twice the workbook's MAX_HEAD, and never a blank line


@exercise("serve_select")
def test_serve_select_hangs_up_on_a_head_too_long(serve):
    """A client that sends more than MAX_HEAD bytes without a blank line is hung up on, and the server serves on."""
    server = serve("serve_select")
    with server.connect() as client:
        head = b"GET / HTTP/1.1\r\nX-Padding: " + b"x" * HEAD_TOO_LONG
        try:
            client.sendall(head)
        except OSError:
            pass  # the server hung up half way: what it should do
        data, closed = read_until_closed(client, WAIT)
    server.check()
    assert closed, (
        f"a client sent a head of {len(head) // 1024} KB without the blank line that ends it, and {WAIT:g} s later "
        "the connection was still open: once what a connection has sent passes MAX_HEAD (64 KB), unregister and "
        "close it, or one client can fill the server's memory"
    )
    # Closed, but by whom? A server that died closes every connection too: the next
    # client must still be served.
    data, closed = server.request(REQUEST)
    expect_fixed_response(data, closed, "the client after one that was hung up on")


@exercise("serve_select")
def test_serve_select_is_not_held_up_by_a_quiet_client(serve):
    """A client that sent half a request and went quiet holds up nobody."""
    server = serve("serve_select")
    with server.connect() as quiet:
        quiet.sendall(b"GET / HTTP/1.1\r\nHo")
        for number in range(5):
            started = time.monotonic()
            data, closed = server.request(REQUEST, timeout=1)
            if not data:
                raise AssertionError(
                    f"while one client had sent half a request and went quiet, client {number + 1} waited 1 s "
                    "for nothing: the loop must only recv() from sockets the selector says are ready"
                )
            expect_fixed_response(data, closed, f"client {number + 1}, while another was quiet")
            seconds = time.monotonic() - started
            assert seconds < 1, (
                f"while one client had sent half a request and went quiet, client {number + 1} was answered only "
                f"after {seconds:.1f} s: the loop must only recv() from sockets the selector says are ready"
            )


LARGE = 16 * 1024 * 1024  # more than the kernel buffers for one socket (a few MB on loopback)


@exercise("serve_select")
def test_serve_select_sends_only_what_the_socket_takes(serve):
    """A client that does not read its large response holds up nobody: send() what fits, never sendall()."""
    server = serve("serve_select", response_size=LARGE)
    with socket.socket() as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # set before connecting: a small window
        stuck.settimeout(WAIT)
        try:
            stuck.connect(server.address)
        except OSError:
            server.check(wait=2)  # the stage died: its own error says why
            raise
        stuck.sendall(REQUEST)  # and never reads the answer
        for number in range(3):
            try:
                with server.connect() as client:
                    client.sendall(REQUEST)
                    data, closed = read_until_closed(client, WAIT)
                server.check()
            except (StudentError, OSError) as error:
                raise AssertionError(
                    f"while one client did not read its {LARGE // 2**20} MB response: {error}. "
                    "Call send() once per writable event and keep what it did not take: sendall() "
                    "on a non-blocking socket fails once the socket's buffer is full"
                ) from None
            if not data:
                server.check(wait=1)  # a server that stopped has said why by now
                raise AssertionError(
                    f"while one client did not read its {LARGE // 2**20} MB response, client {number + 1} got "
                    f"nothing in {WAIT:g} s: the one client that reads nothing held the whole loop. Make every socket "
                    "non-blocking (setblocking(False)): a blocking send() waits until the client makes room, and the "
                    "loop waits with it. Then send() only to sockets the selector says are writable"
                )
            if not (data.endswith(b"Hello, select!") and closed):
                raise AssertionError(
                    f"while one client did not read its {LARGE // 2**20} MB response, client {number + 1} got "
                    f"{len(data)} bytes of its own in {WAIT:g} s, and the connection "
                    f"{'closed' if closed else 'stayed open'}: a loop that waits to send everything to one client "
                    "stops every other; send() what the socket takes, and come back when the selector says it is "
                    "writable again"
                )


@exercise("serve_select")
def test_serve_select_serves_200_clients_from_one_thread(serve):
    """200 clients connected at once are all answered, by a server of one thread."""
    server = serve("serve_select")
    clients = []
    try:
        for _ in range(200):
            client = server.connect()
            clients.append(client)
        for client in clients:
            client.sendall(REQUEST)
        answered = 0
        deadline = time.monotonic() + 5
        for client in clients:
            data, closed = read_until_closed(client, max(0.1, deadline - time.monotonic()))
            if data.endswith(b"Hello, select!") and closed:
                answered += 1
        if answered == 0:
            server.check(wait=1)
        assert answered == 200, f"200 clients connected at once and sent a request; {answered} got RESPONSE in 5 s"
        threads = thread_count(server.pid)
        if threads is not None:
            assert threads == 1, f"the server ran {threads} threads: serve every client from the one thread"
    finally:
        for client in clients:
            client.close()


@exercise("serve_select")
def test_serve_select_survives_clients_that_leave(serve):
    """Clients that leave early, or reset, do not stop the loop."""
    server = serve("serve_select")
    before = open_descriptors(server.pid)
    server.connect().close()  # leaves without a word
    rude = server.connect()
    rude.sendall(b"GET / HTTP/1.1\r\n")
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    rude.close()  # a reset, half way through its request
    early = server.connect()
    early.sendall(REQUEST)
    early.close()  # asked, and left before the answer
    if before is not None:  # the loop has seen all three go once it has closed their sockets
        deadline = time.monotonic() + WAIT
        while open_descriptors(server.pid) != before and time.monotonic() < deadline:
            server.check()
            time.sleep(0.02)
    else:
        time.sleep(0.2)  # no /proc (macOS): nothing to watch, so a moment for the loop to see them
    server.check()
    data, closed = server.request(REQUEST)
    expect_fixed_response(data, closed, "a client that came after three that left early")
