"""Part 4's ASGI server, held to the WSGI servers' standards, as a real process on loopback.

The scope, receive and send as ASGI 3.0 (spec 2.4) has them; keep-alive, HEAD, chunked
uploads streamed to the app in pieces, ``Expect: 100-continue`` sent at the app's first
``receive()`` only, and never once the response has started; the connection free for the
next request when the response is complete (background tasks go on); hop-by-hop headers
from the app; a 400 for a malformed request; a slow reader served whole, a slowloris head
dropped with a 408; the app's mistakes cost one response; lifespan; Ctrl-C within the
stop budget.
Apps: tests/asgi_apps.py (bare ASGI) and part4_asgi/apps (Starlette, FastAPI).
"""

import json
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from harness import ROOT
from tests.helpers import TIMING

# Slow as a whole, out of the quick loop (pytest -m "not slow"): a server started for each of many tests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

SERVER = "part4_asgi/server.py"
APPS = "tests.asgi_apps:app"


def start(serve, *args):
    return serve(SERVER, *args)


class Client:
    """A raw socket and what it received beyond the last response read (pipelining)."""

    def __init__(self, server, timeout=10):
        self.sock = socket.create_connection(server.address, timeout=timeout)
        self.sock.settimeout(timeout)
        self.unread = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.sock.close()

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, size=65536):
        if self.unread:
            data, self.unread = self.unread, b""
            return data
        return self.sock.recv(size)

    def read_until(self, size):
        """At least ``size`` bytes, unless the connection ends first."""
        data = b""
        while len(data) < size and (more := self.recv()):
            data += more
        return data

    def read_response(self, head_only=False):
        """One response: (status, headers, body), framed by Content-Length, chunks, or the close.
        A 100 Continue before it shows as the header "after-100"."""
        raw = b""
        while b"\r\n\r\n" not in raw:
            data = self.recv()
            if not data:
                raise ConnectionError(f"closed before a whole head: {raw!r}")
            raw += data
        head, _, self.unread = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(
            (name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])
        )
        if status == 100:
            status, headers, body = self.read_response(head_only)
            return status, {**headers, "after-100": True}, body
        if head_only:
            return status, headers, b""
        if "content-length" in headers:
            length = int(headers["content-length"])
            data = self.read_until(length)
            body, self.unread = data[:length], data[length:]
        elif headers.get("transfer-encoding") == "chunked":
            body = self.read_chunks()
        else:
            body = self.read_until(float("inf"))
        return status, headers, body

    def read_chunks(self):
        body, data = b"", b""
        while True:
            while b"\r\n" not in data:
                data += self.recv()
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line, 16)
            while len(data) < size + 2:
                data += self.recv()
            if size == 0:
                self.unread = data[2:]
                return body
            body, data = body + data[:size], data[size + 2 :]


def connect(server, timeout=10):
    return Client(server, timeout)


def exchange(server, raw, **options):
    with connect(server) as client:
        client.sendall(raw)
        return client.read_response(**options)


def get(path, version="1.1", extra=""):
    return f"GET {path} HTTP/{version}\r\nHost: test\r\n{extra}\r\n".encode()


def closed(client, timeout=5):
    """Whether the server closes ``client``'s connection within ``timeout`` seconds."""
    client.sock.settimeout(timeout)
    try:
        return client.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# --- the scope ---------------------------------------------------------------------------------


def test_the_scope_says_what_asgi_3_says(serve):
    server = start(serve, APPS, "--root-path", "/api")
    extra = "X-Dup: 1\r\nX-Dup: 2\r\nX_Under: u\r\n"
    _, _, body = exchange(server, get("/api/caf%C3%A9/%FF/scope?q=a%20b&r=1", extra=extra))
    scope = json.loads(body)
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1" and scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/api/café/\ufffd/scope"  # decoded as UTF-8; an invalid byte is U+FFFD
    assert scope["raw_path"] == "/api/api/caf%C3%A9/%FF/scope"  # as sent, without the query
    assert scope["query_string"] == "q=a%20b&r=1"
    assert ["x-dup", "1"] in scope["headers"] and ["x-dup", "2"] in scope["headers"]
    assert ["x_under", "u"] in scope["headers"]  # kept: no CGI key to collide with
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", server.port]
    assert scope["extensions"] == {"http.response.pathsend": {}}
    assert scope["state"] == {"started": "yes"}
    _, _, body = exchange(server, get("/scope"))  # the app added to both: not to the next request's
    assert json.loads(body)["state"] == {"started": "yes"}
    assert json.loads(body)["extensions"] == {"http.response.pathsend": {}}


# --- keep-alive, HEAD, uploads ------------------------------------------------------------------


def test_keep_alive_and_head(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/echo") + get("/echo"))
        for _ in range(2):
            status, headers, body = client.read_response()
            assert status == 200 and body == b"1 pieces, 0 bytes\n"
        client.sendall(b"HEAD /echo HTTP/1.1\r\nHost: test\r\n\r\n" + get("/echo"))
        status, headers, body = client.read_response(head_only=True)
        assert status == 200 and headers["content-length"] == "18" and body == b""
        assert client.read_response()[2] == b"1 pieces, 0 bytes\n"  # HEAD's body was not sent


def test_a_chunked_upload_reaches_the_app_in_pieces(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            client.sendall(b"5\r\nhello\r\n")
            time.sleep(0.05)  # (the pieces must arrive apart to be handed out apart)
        client.sendall(b"0\r\n\r\n" + get("/echo"))
        status, _, body = client.read_response()
        pieces = int(body.split()[0])
        assert status == 200 and body.endswith(b"15 bytes\n") and pieces > 1
        assert client.read_response()[0] == 200  # kept alive after a streamed body


def test_the_first_piece_of_a_32_mb_upload_arrives_before_the_client_has_sent_it_all(serve):
    server = start(serve, APPS)
    size = 32 * 1024 * 1024
    with connect(server) as client:
        client.sendall(f"POST /first HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n\r\n".encode())
        client.sendall(b"u" * (1024 * 1024))
        status, headers, body = client.read_response()
        first, more = body.split()
        assert status == 200 and 0 < int(first) <= 1024 * 1024 and more == b"True"
        assert headers.get("connection") != "keep-alive"
        assert closed(client)  # the rest of the body will not be read: the connection ends


# --- Expect: 100-continue --------------------------------------------------------------------


def expect(path, version="1.1", length=5):
    return (
        f"POST {path} HTTP/{version}\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_100_continue_goes_out_when_the_app_first_receives(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(expect("/echo"))
        assert client.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(b"hello")
        status, _, body = client.read_response()
        assert status == 200 and body == b"1 pieces, 5 bytes\n"


def test_no_100_continue_to_http_1_0(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(expect("/echo", version="1.0") + b"hello")
        status, headers, body = client.read_response()
        assert status == 200 and "after-100" not in headers and body == b"1 pieces, 5 bytes\n"


def test_an_app_that_answers_without_reading_sends_no_100_and_closes_after(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(expect("/unread"))
        status, headers, body = client.read_response()
        assert status == 200 and "after-100" not in headers and headers["connection"] == "close"
        assert closed(client)


def test_no_100_continue_once_the_response_has_started(serve):
    # A streaming echo starts its response, then reads: a 100 would land inside its body.
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(expect("/stream-echo"))
        first = client.read_until(len(b"HTTP/1.1 200 OK\r\n"))
        while b"echo:" not in first:
            first += client.recv()
        client.sendall(b"hello")  # no 100 will come: the client sends its body anyway
        client.unread = first
        status, headers, body = client.read_response()
        assert b"100 Continue" not in first and status == 200 and "after-100" not in headers
        assert body == b"echo:hello" and b"100 Continue" not in client.unread


# --- the connection after the response ------------------------------------------------------


def test_the_next_request_is_served_while_the_previous_call_goes_on(serve):
    # Starlette runs background tasks after the response, within the app's call.
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/background?seconds=3"))
        assert client.read_response()[2] == b"accepted\n"
        began = time.monotonic()
        client.sendall(get("/echo"))
        assert client.read_response()[0] == 200
        assert time.monotonic() - began < 1
    server.wait_for_log("background done, then receive() gave http.disconnect")


def test_an_app_may_set_hop_by_hop_headers_and_connection_close_is_honoured(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/hop-by-hop"))
        status, headers, body = client.read_response()
        assert status == 426 and body == b"upgrade\n" and headers["upgrade"] == "h2c"
        assert headers["connection"] == "close" and "keep-alive" not in headers
        assert "transfer-encoding" not in headers and headers["content-length"] == "8"
        assert closed(client)


# --- bad requests, hostile clients -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"GET / HTTP/1.1\r\n\r\n", b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n"]
)
def test_a_malformed_request_and_one_without_host_get_400(serve, raw):
    server = start(serve, APPS)
    status, _, _ = exchange(server, raw)
    assert status == 400
    assert exchange(server, get("/echo"))[0] == 200


@TIMING
@pytest.mark.slow
def test_a_slowloris_head_gets_408(serve):
    server = start(serve, APPS, "--deadlines", "head=1")
    with connect(server) as client:
        client.sendall(b"GET / HTTP/1.1\r\n")
        began = time.monotonic()
        status, _, _ = client.read_response()
        assert status == 408 and time.monotonic() - began < 3


def test_upgrade_is_served_as_plain_http(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/echo", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n") + get("/echo"))
        assert client.read_response()[0] == 200
        assert client.read_response()[0] == 200  # never a 101, and the next request is served


# --- sending: streams, slow readers, clients that leave ----------------------------------------


def test_a_streamed_response_is_chunked(serve):
    server = start(serve, APPS)
    status, headers, body = exchange(server, get("/stream?count=3&size=5"))
    assert status == 200 and headers["transfer-encoding"] == "chunked" and body == b"x" * 15


def test_empty_pieces_of_a_streamed_response_end_nothing_and_the_next_request_follows(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/empty-pieces") + get("/echo"))
        assert client.read_response()[2] == b"ab"
        assert client.read_response()[:1] == (200,)  # (a stray zero-size chunk first: no status line)


@TIMING
@pytest.mark.slow
def test_send_waits_while_the_client_reads_nothing(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        client.sendall(get("/stream?count=400&size=65536&note=1"))
        time.sleep(2)  # (a client that reads nothing, for 2 s: the app must be held back meanwhile)
        sent = [line for line in server.log.splitlines() if line.startswith("app: sent ")]
        assert len(sent) < 101, f"the app sent {len(sent)} pieces of 64 KB to a client that reads nothing"


@pytest.mark.slow
def test_30_mb_to_a_2_mb_per_second_reader_arrives_whole(serve):
    server = start(serve, APPS, "--deadlines", "send=2")
    size = 30 * 1024 * 1024
    with connect(server, timeout=30) as client:
        client.sendall(get(f"/big?size={size}", extra="Connection: close\r\n"))
        received, began = 0, time.monotonic()
        while data := client.sock.recv(64 * 1024):
            received += len(data)
            ahead = received / (2 * 1024 * 1024) - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
        assert received > size  # the head, and every byte of the body
        head_size = received - size
        assert 50 < head_size < 300


def test_a_client_that_leaves_gives_no_traceback_and_send_raises_oserror(serve):
    server = start(serve, APPS)
    client = connect(server)
    client.sendall(get("/stream?count=100000&size=65536"))
    client.recv(65536)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sock.close()  # a reset
    log = server.wait_for_log("send raised")
    assert "send raised ClientDisconnected" in log
    assert exchange(server, get("/echo"))[0] == 200
    assert "Traceback" not in server.log


def test_receive_says_http_disconnect_when_the_client_leaves(serve):
    server = start(serve, APPS)
    client = connect(server)
    client.sendall(get("/wait-disconnect"))
    server.wait_for_log("app: waiting")
    client.sock.close()
    assert "app: then http.disconnect" in server.wait_for_log("app: then")
    assert exchange(server, get("/echo"))[0] == 200
    # (A traceback would come before the next request's log line.)
    assert "Traceback" not in server.wait_for_log('"GET /echo')  # told its client is gone, it owes no response


def test_an_app_that_ends_its_stream_when_told_the_client_left_gives_no_traceback(serve):
    server = start(serve, APPS)
    client = connect(server)
    client.sendall(get("/stream-until-disconnect"))
    assert client.recv(65536).startswith(b"HTTP/1.1 200")
    client.sock.close()
    assert "app: stream stopped on http.disconnect" in server.wait_for_log("stream stopped")
    assert exchange(server, get("/echo"))[0] == 200
    assert "Traceback" not in server.wait_for_log('"GET /echo')  # (a traceback would come before)


# --- the app's mistakes -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/fail-before", "/no-response", "/str-headers", "/second-start"])
def test_an_app_that_fails_before_its_body_gets_a_500(serve, path):
    server = start(serve, APPS)
    status, headers, _ = exchange(server, get(path))
    assert status == 500 and headers["connection"] == "close"
    assert exchange(server, get("/echo"))[0] == 200
    if path != "/no-response":
        # The log arrives through a pipe, maybe after the response: wait for it, then count.
        assert server.wait_for_log("Traceback").count("Traceback") == 1


def test_an_app_that_fails_after_its_head_has_its_connection_closed(serve):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/fail-after"))
        status, headers, body = client.read_response()
        assert status == 200 and body == b"half"  # cut short: the client sees fewer bytes than declared
    assert server.wait_for_log("Traceback").count("Traceback") == 1  # the log may come after the response


# --- pathsend --------------------------------------------------------------------------------------


def test_pathsend_sends_the_file(serve, tmp_path):
    server = start(serve, APPS)
    data = bytes(range(256)) * 4096  # 1 MB
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    status, _, body = exchange(server, get(f"/pathsend?path={path}&size={len(data)}"))
    assert status == 200 and body == data
    status, _, _ = exchange(server, get(f"/pathsend?path={tmp_path}&size=1"))
    assert status == 500  # a folder is no file to send


# --- lifespan, loading, stopping -------------------------------------------------------------------


def run_to_exit(*args, timeout=10):
    command = [sys.executable, str(ROOT / SERVER), *args, "--port", "0"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_a_failed_startup_stops_the_server_with_one_line_and_status_3():
    result = run_to_exit("tests.asgi_apps:failing_startup")
    assert result.returncode == 3 and "Serving on" not in result.stdout
    assert result.stderr.strip().splitlines() == ["server.py: error: the app's startup failed: no database"]


def test_a_traceback_as_the_failure_message_is_one_line():
    result = run_to_exit("tests.asgi_apps:traceback_startup")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "server.py: error: the app's startup failed: ConnectionError: no database"
    ]


def test_an_app_that_raises_on_lifespan_startup_is_served_without_after_one_line(serve):
    server = start(serve, "tests.asgi_apps:raises_in_startup")
    assert exchange(server, get("/"))[2] == b"served\n"
    # The line is written before Serving on, but to stderr, which the harness reads apart.
    log = server.wait_for_log("going on without")
    lines = [line for line in log.splitlines() if "lifespan" in line]
    assert lines == ["lifespan: the app raised on lifespan.startup: ConnectionError: no database; going on without"]


def test_max_body_is_an_option(serve):
    server = start(serve, APPS, "--max-body", "10")
    raw = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world"
    assert exchange(server, raw)[0] == 413
    assert exchange(server, raw.replace(b"11", b"10")[:-1])[2] == b"1 pieces, 10 bytes\n"


@pytest.mark.parametrize(
    "option", [("--max-body", "-1"), ("--startup-timeout", "-1"), ("--startup-timeout", "nan")], ids=" ".join
)
def test_a_negative_limit_or_timeout_is_refused_in_one_line(option):
    # (-1 was taken: a max body under 0 refused every body, even an empty one, with a 413)
    result = run_to_exit("tests.asgi_apps:app", *option)
    assert result.returncode == 2 and "Serving on" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and f"invalid value '{option[1]}'" in result.stderr


@pytest.mark.slow
def test_a_startup_that_hangs_stops_the_server_after_the_timeout():
    result = run_to_exit("tests.asgi_apps:hanging_startup", "--startup-timeout", "0.5")
    assert result.returncode == 3 and "did not complete within 0.5 s" in result.stderr


@pytest.mark.parametrize("app", ["tests.asgi_apps:wsgi_app", "tests.asgi_apps:Asgi2App"])
def test_a_wsgi_or_asgi_2_app_gets_one_clear_line(app):
    result = run_to_exit(app)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert ("WSGI" if "wsgi" in app else "ASGI 2") in result.stderr


def test_an_app_without_lifespan_is_served(serve):
    server = start(serve)  # the default: part4_asgi.apps.hello_app, which raises on lifespan
    assert exchange(server, get("/"))[2] == b"Hello, world!\n"


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_ends_requests_then_the_lifespan_within_2_seconds(serve, sig):
    server = start(serve, APPS)
    client = connect(server)
    client.sendall(get("/hang"))
    server.wait_for_log("app: hanging")
    began = time.monotonic()
    assert server.stop(sig) == 0
    # 2 s of the server's own time: beside other tests and a CPU load it can wait for a
    # core longer than its whole stop takes, and the kernel counts that wait (harness.py).
    assert time.monotonic() - began - server.waited_while_stopping < 2
    log = server.log
    assert "hang got http.disconnect" in log and "hang cancelled" in log
    assert log.index("hang cancelled") < log.index("lifespan lifespan.shutdown")
    assert "Traceback" not in log
    client.sock.close()


def stop_while(serve, path, started):
    """Start a request on ``path``, stop the server once the log says ``started``; return the
    server, its exit status and its own seconds from the signal to the exit."""
    server = start(serve, APPS)
    client = connect(server)
    client.sendall(get(path))
    server.wait_for_log(started)
    began = time.monotonic()
    status = server.stop(signal.SIGTERM)
    client.sock.close()
    # The server's own seconds, as test_ctrl_c_ends_requests_then_the_lifespan_within_2_seconds
    # counts them: its waits for a core on a busy machine are not its stop's doing.
    return server, status, time.monotonic() - began - server.waited_while_stopping


@pytest.mark.slow
def test_a_request_and_a_background_task_in_flight_finish_before_the_lifespan_shutdown(serve):
    server, status, took = stop_while(serve, "/slow?seconds=0.5", "slow began")
    assert status == 0 and took < 2
    log = server.log
    assert log.index("slow answered") < log.index("lifespan lifespan.shutdown")
    server, status, took = stop_while(serve, "/background?seconds=0.5", "background began")
    log = server.log
    assert status == 0 and took < 2 and log.index("background done") < log.index("lifespan lifespan.shutdown")


@pytest.mark.slow
@pytest.mark.parametrize(
    "path, started, ended",
    [
        ("/slow-cleanup", "cleanup route waiting", "cleanup began"),
        ("/in-a-thread", "thread sleeping", "thread view cancelled"),
    ],
)
def test_what_cannot_be_cancelled_in_time_is_named_and_the_exit_keeps_the_budget(serve, path, started, ended):
    # A task that cleans up for 5 s, a thread that sleeps 8 s: the lifespan shutdown runs
    # after the cancellation, and the process exits within the budget, saying what it left.
    server, status, took = stop_while(serve, path, started)
    assert status == 0 and took < 2
    log = server.log
    assert log.index(ended) < log.index("lifespan lifespan.shutdown")
    assert f"server.py: exiting without waiting for 1 request(s) still running (GET {path})" in log
    assert "Traceback" not in log


# --- frameworks, unmodified, through requests ------------------------------------------------------

requests = pytest.importorskip("requests")


@pytest.mark.slow
@pytest.mark.parametrize("app", ["part4_asgi.apps.starlette_app:app", "part4_asgi.apps.fastapi_app:app"])
def test_starlette_and_fastapi_apps_work_unmodified(serve, app, tmp_path):
    pytest.importorskip("fastapi" if "fastapi" in app else "starlette")
    server = start(serve, app)
    url = server.url
    with requests.Session() as session:
        assert session.get(f"{url}/items/7?q=x").json() == {"item_id": 7, "q": "x"}
        answer = session.post(f"{url}/upload", files={"file": ("a.txt", b"x" * 300_000)}, data={"name": "n"})
        assert answer.json() == {"name": "n", "filename": "a.txt", "size": 300_000}
        streamed = session.get(f"{url}/stream", stream=True)
        assert b"".join(streamed.iter_content(None)) == b"".join(b"piece %d\n" % i for i in range(5))
        assert session.get(f"{url}/state").json() == {"started": True}
        served = session.get(f"{url}/file")
        assert (
            served.status_code == 200 and served.content == (ROOT / "part4_asgi" / "apps" / "hello_app.py").read_bytes()
        )
        upload = session.post(f"{url}/count", data=iter([b"a" * 100_000] * 10))  # chunked
        assert upload.json() == {"size": 1_000_000}


def test_many_apps_waiting_at_once_hold_nobody_back(serve):
    # The apps run as tasks in the loop: twenty waiting requests hold no thread between them.
    server = start(serve, APPS)
    clients = [connect(server) for _ in range(20)]
    for client in clients:
        client.sendall(get("/wait-disconnect"))
    assert exchange(server, get("/echo"))[0] == 200
    for client in clients:
        client.sock.close()


# --- the one-screen server -------------------------------------------------------------------------

MINIMAL = "part4_asgi/minimal_asgi_server.py"


@pytest.mark.slow
def test_the_minimal_server_serves_fastapi(serve):
    server = serve(MINIMAL)
    assert exchange(server, get("/"))[2] == b"Hello, world!\n"
    pytest.importorskip("fastapi")
    server = serve(MINIMAL, "part4_asgi.apps.fastapi_app:app")
    assert requests.get(f"{server.url}/items/3?q=y", timeout=10).json() == {"item_id": 3, "q": "y"}
    assert requests.post(f"{server.url}/count", data=b"z" * 1000, timeout=10).json() == {"size": 1000}
    assert server.stop() == 0


# --- pathsend's edges, messages ASGI does not know, the body's limit -----------------------------

# No os.sendfile (Windows), simulated: taken away before the server imports anything, so
# that pathsend reads and sends (tests/test_file_wrapper.py does the same for WSGI).
WITHOUT_SENDFILE = """
import os, runpy, sys
del os.sendfile
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture
def without_sendfile(tmp_path):
    launcher = tmp_path / "without_sendfile.py"
    launcher.write_text(WITHOUT_SENDFILE)
    return launcher


def test_without_sendfile_pathsend_reads_and_sends_the_file(serve, tmp_path, without_sendfile):
    server = serve(without_sendfile, SERVER, APPS)
    data = bytes(range(256)) * 4096 * 3  # 3 MB: many reads of one block
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with connect(server) as client:
        client.sendall(get(f"/pathsend?path={path}&size={len(data)}") + get("/echo"))
        status, headers, body = client.read_response()
        assert status == 200 and body == data and headers.get("connection") != "close"
        assert client.read_response()[0] == 200  # the connection goes on: the body was whole
    assert "Traceback" not in server.log


def test_pathsend_never_sends_past_the_content_length(serve, tmp_path):
    """A file longer than the app declared: Content-Length bytes go out, not one more (the
    rest would be read as the next response)."""
    server = start(serve, APPS)
    path = tmp_path / "data.bin"
    path.write_bytes(b"a" * 1000 + b"EXTRA")
    with connect(server) as client:
        client.sendall(get(f"/pathsend?path={path}&size=1000") + get("/echo"))
        status, _, body = client.read_response()
        assert status == 200 and body == b"a" * 1000
        status, _, body = client.read_response()
        assert (status, body) == (200, b"1 pieces, 0 bytes\n")  # and no EXTRA in between


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "read-and-send"])
def test_pathsend_of_a_file_shorter_than_declared_closes_the_connection(serve, tmp_path, sendfile, without_sendfile):
    """The app declared more than the file has (or the file shrank since it looked): what
    the file has goes out, then the connection is closed, so that the client sees the
    response cut short instead of waiting for bytes that never come."""
    server = serve(*([] if sendfile else [without_sendfile]), SERVER, APPS)
    path = tmp_path / "data.bin"
    path.write_bytes(b"s" * 5000)
    with connect(server) as client:
        client.sendall(get(f"/pathsend?path={path}&size=8000"))
        received = client.read_until(10_000)
        assert received.startswith(b"HTTP/1.1 200") and received.endswith(b"\r\n\r\n" + b"s" * 5000)
        assert closed(client)
    assert exchange(server, get("/echo"))[0] == 200


def test_pathsend_of_a_file_that_shrinks_while_it_is_sent_closes_the_connection(serve, tmp_path):
    """The file was 32 MB when the server looked (fstat, then the head went out); it is cut
    to 1 MB while the client reads nothing: the client gets what the file still has, never
    past the Content-Length, and the connection closes."""
    server = start(serve, APPS)
    size = 32 * 1024 * 1024
    path = tmp_path / "data.bin"
    path.write_bytes(b"f" * size)
    with connect(server, timeout=20) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.sendall(get(f"/pathsend?path={path}&size={size}"))
        head = client.read_until(1)  # the head is out: the server has looked at the file
        with open(path, "r+b") as file:
            file.truncate(1024 * 1024)
        received = head + client.read_until(size + 1000)  # until the server closes
        body = received.partition(b"\r\n\r\n")[2]
        # (zeros too: sendfile queues the page cache's pages themselves, and the cut may zero
        # some of those already queued; the server sends no byte of its own)
        assert 0 < len(body) < size and set(body) <= {ord("f"), 0}
    assert exchange(server, get("/echo"))[0] == 200


@pytest.mark.parametrize("after", [False, True], ids=["before-the-head", "after-the-head"])
def test_an_unknown_message_type_is_a_500_before_the_head_and_a_close_after(serve, after):
    server = start(serve, APPS)
    with connect(server) as client:
        client.sendall(get("/unknown-type" + ("?after=1" if after else "")))
        status, headers, body = client.read_response()
        if after:
            assert status == 200 and body == b"half"  # cut short: fewer bytes than declared
        else:
            assert status == 500 and headers["connection"] == "close"
        assert closed(client)
    assert exchange(server, get("/echo"))[0] == 200
    assert (
        server.wait_for_log("Traceback").count("Traceback") == 1
        and "unknown message 'http.response.bodies'" in server.log
    )


def chunked_upload(path, pieces, size):
    head = f"POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    return head + b"".join(b"%x\r\n%s\r\n" % (size, b"u" * size) for _ in range(pieces)) + b"0\r\n\r\n"


def test_a_streamed_upload_over_max_body_gets_413_and_the_app_sees_a_disconnect(serve):
    """--max-body bounds what one request sends in all (for ASGI the server holds only a
    high-water mark of the body at a time; the limit is a policy, as nginx's
    client_max_body_size). A chunked upload says its size only as it goes, so the app may
    be reading it when the limit is passed: the client gets one response, the 413, and the
    app http.disconnect (it has nothing more to answer, and no traceback is printed)."""
    server = start(serve, APPS, "--max-body", "100000")
    with connect(server) as client:
        client.sendall(chunked_upload("/count", 3, 40_000))  # 120,000 bytes in all
        status, headers, _ = client.read_response()
        assert status == 413 and headers["connection"] == "close"
        assert closed(client)
    assert "body ended by http.disconnect" in server.wait_for_log("body ended")
    assert '"POST /count HTTP/1.1" 413' in server.wait_for_log('" 413')  # the request named, not "-"
    with connect(server) as client:  # under the limit, the same upload is read whole
        client.sendall(chunked_upload("/count", 2, 40_000))
        assert client.read_response()[::2] == (200, b"80000 bytes\n")
    with connect(server) as client:  # declared too large: refused before the app is called
        client.sendall(b"POST /count HTTP/1.1\r\nHost: test\r\nContent-Length: 100001\r\n\r\n")
        assert client.read_response()[0] == 413
    assert "Traceback" not in server.log


def test_an_upgrade_to_websocket_is_never_a_101(serve):
    """A full WebSocket handshake, as a browser sends it: answered as plain HTTP, and the
    request after it on the same connection is served."""
    server = start(serve, APPS)
    handshake = (
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    with connect(server) as client:
        client.sendall(get("/scope", extra=handshake) + get("/echo"))
        status, headers, body = client.read_response()
        assert status == 200 and "upgrade" not in headers and json.loads(body)["type"] == "http"
        assert client.read_response()[0] == 200


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_host_is_required_of_http_1_1_only(serve, version):
    """RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host;
    HTTP/1.0 had no Host header, and is served."""
    server = start(serve, APPS)
    status, _, _ = exchange(server, f"GET /echo HTTP/{version}\r\n\r\n".encode())
    assert status == (400 if version == "1.1" else 200)
