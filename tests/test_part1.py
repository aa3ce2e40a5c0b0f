"""Part 1: the echo server and client, and the smallest HTTP server, over real sockets."""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

from harness import ROOT, interrupt
from tests.helpers import TIMING, require_program

ECHO = "part1_sockets/echo_server.py"
CLIENT = "part1_sockets/echo_client.py"
HTTP = "part1_sockets/http_server.py"


# --- helpers -----------------------------------------------------------------------


def echo_round_trip(address, payload):
    """Send ``payload`` from one thread while reading the echo in this one."""
    with socket.create_connection(address, timeout=10) as connection:
        sender = threading.Thread(target=lambda: (connection.sendall(payload), connection.shutdown(socket.SHUT_WR)))
        sender.start()
        received = bytearray()
        while data := connection.recv(1 << 16):
            received += data
        sender.join()
    return bytes(received)


def exchange(address, *pieces, pause_check=False):
    """Send a request in pieces; return the whole response (the server closes after it).

    With ``pause_check``, after each piece but the last, check that the server has not
    answered yet: it must wait for the rest of the request, however it is cut.
    """
    with socket.create_connection(address, timeout=10) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index, piece in enumerate(pieces):
            connection.sendall(piece)
            if pause_check and index < len(pieces) - 1:
                readable, _, _ = select.select([connection], [], [], 0.02)
                assert not readable, f"the server answered before the request was complete (after {piece!r})"
        return read_all(connection)


def read_all(connection):
    chunks = []
    while data := connection.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def status_of(response):
    return response.split(b"\r\n", 1)[0].decode()


def run_cli(*args, input=None, timeout=10):
    return subprocess.run([sys.executable, *args], input=input, capture_output=True, timeout=timeout, cwd=ROOT)


# --- the echo server ---------------------------------------------------------------


def test_echo_returns_multi_megabyte_binary_payloads_to_several_clients_in_turn(serve):
    server = serve(ECHO)
    for size in (3_000_000, 5_000_000, 1):
        payload = os.urandom(size)
        assert echo_round_trip(server.address, payload) == payload


def test_echo_serves_the_next_client_after_one_leaves_abruptly(serve):
    server = serve(ECHO)
    rude = socket.create_connection(server.address)
    rude.sendall(b"x" * 100)
    # SO_LINGER 0: close() sends a reset instead of a polite goodbye.
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    rude.close()
    assert echo_round_trip(server.address, b"still here") == b"still here"


def test_echo_client_sends_a_message_and_prints_the_echo(serve):
    server = serve(ECHO)
    result = run_cli(CLIENT, "--port", str(server.port), "--message", "hello, server")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello, server\n"


def test_echo_client_sends_each_line_of_standard_input(serve):
    server = serve(ECHO)
    lines = b"one\ntwo\n" + b"z" * 200_000 + b"\n"
    result = run_cli(CLIENT, "--port", str(server.port), input=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout == lines


def test_echo_client_with_no_server_prints_one_line_and_fails():
    with socket.socket() as placeholder:  # a port that nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    result = run_cli(CLIENT, "--port", str(port), "--message", "hi")
    assert result.returncode != 0
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert "refused" in result.stderr.decode().lower()


def test_echo_client_exits_cleanly_on_ctrl_c(serve):
    server = serve(ECHO)
    client = subprocess.Popen(
        [sys.executable, CLIENT, "--port", str(server.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        client.stdin.write(b"ready\n")
        client.stdin.flush()
        assert client.stdout.readline() == b"ready\n"  # it is now waiting for our next line
        # A clean exit; the bound only keeps a hang from lasting.
        assert interrupt(client, signal.SIGINT, timeout=10) == 0
        assert b"Traceback" not in client.stderr.read()
    finally:
        client.kill()
        client.wait()


# --- the HTTP server ---------------------------------------------------------------


def test_get_returns_a_page_with_a_form_that_posts(serve):
    server = serve(HTTP)
    response = requests.get(server.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert '<form method="post" action="/">' in response.text


def test_a_form_post_shows_what_was_posted(serve):
    server = serve(HTTP)
    response = requests.post(server.url + "/", data={"name": "Ada <3", "message": "héllo"}, timeout=10)
    assert response.status_code == 200
    assert "<th>name</th><td>Ada &lt;3</td>" in response.text
    assert "<th>message</th><td>héllo</td>" in response.text


def test_a_large_body_arrives_whole(serve):
    server = serve(HTTP)
    body = b"x" * 5_000_000
    response = requests.post(server.url + "/", data=body, timeout=30)
    assert response.status_code == 200
    assert "You posted 5000000 bytes" in response.text


def test_a_request_typed_line_by_line_is_answered_once_complete(serve):
    server = serve(HTTP)
    lines = [b"POST / HTTP/1.1\r\n", b"Host: localhost\r\n", b"Content-Length: 7\r\n", b"\r\n", b"name=Al"]
    response = exchange(server.address, *lines, pause_check=True)
    assert status_of(response) == "HTTP/1.1 200 OK"
    assert b"<th>name</th><td>Al</td>" in response


def test_a_request_sent_one_byte_at_a_time_is_answered(serve):
    server = serve(HTTP)
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    response = exchange(server.address, *[bytes([b]) for b in request], pause_check=True)
    assert status_of(response) == "HTTP/1.1 200 OK"


def test_bare_newlines_as_nc_sends_them_are_accepted(serve):
    server = serve(HTTP)
    response = exchange(server.address, b"GET / HTTP/1.0\n\n")
    assert status_of(response) == "HTTP/1.1 200 OK"


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GARBAGE\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/1.1 extra\r\n\r\n", "400 Bad Request"),
        (b"GET / SPDY/3\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/2.0\r\n\r\n", "505 HTTP Version Not Supported"),
        (b"GET / HTTP/0.9\r\n\r\n", "505 HTTP Version Not Supported"),
        (b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", "400 Bad Request"),  # not the shape HTTP/d.d
        (b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),  # HTTP/1.1 requires Host
        (b"GET / HTTP/1.2\r\n\r\n", "400 Bad Request"),  # and so does a later 1.x, read as 1.1
        (b"GET / HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", "400 Bad Request"),
        (b"POST / HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400 Bad Request"),
        (b"POST / HTTP/1.0\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", "400 Bad Request"),
        (b"GET / HTTP/1.0\r\nHost : x\r\n\r\n", "400 Bad Request"),  # whitespace before the colon
        (b"GET / HTTP/1.0\r\nX-Name\t: x\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "400 Bad Request"),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"),  # the asterisk form is for OPTIONS
        (b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "501 Not Implemented"),  # well formed, not served
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501 Not Implemented"),
        (b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", "400 Bad Request"),
        (b"GET /\xff HTTP/1.1\r\n\r\n", "400 Bad Request"),
        (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", "501 Not Implemented"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", "413 Content Too Large"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "431 Request Header Fields Too Large"),
    ],
)
def test_bad_requests_get_their_status_and_the_server_keeps_serving(serve, request_bytes, status):
    server = serve(HTTP)
    response = exchange(server.address, request_bytes)
    assert status_of(response) == f"HTTP/1.1 {status}"
    assert requests.get(server.url + "/", timeout=10).status_code == 200
    assert "Traceback" not in server.log


def test_head_gets_the_head_a_get_gets_and_no_body(serve):
    server = serve(HTTP)
    get = exchange(server.address, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head = exchange(server.address, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert head == get[: get.index(b"\r\n\r\n") + 4]  # same status and headers, Content-Length too
    assert status_of(head) == "HTTP/1.1 200 OK"
    missing = exchange(server.address, b"HEAD /nothing HTTP/1.0\r\n\r\n")
    assert status_of(missing) == "HTTP/1.1 404 Not Found" and missing.endswith(b"\r\n\r\n")
    assert '"HEAD / HTTP/1.1" 200' in server.wait_for_log('"HEAD / HTTP/1.1" 200')


def test_the_absolute_form_is_routed_on_its_path(serve):
    server = serve(HTTP)
    for target in (f"http://127.0.0.1:{server.port}/", "http://localhost", "HTTP://localhost/?x=1"):
        response = exchange(server.address, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        assert status_of(response) == "HTTP/1.1 200 OK", target
        assert b'<form method="post" action="/">' in response
    response = exchange(server.address, b"GET http://localhost/nothing?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status_of(response) == "HTTP/1.1 404 Not Found"


def test_a_later_http_1_minor_version_is_served_as_http_1_1(serve):
    server = serve(HTTP)
    response = exchange(server.address, b"GET / HTTP/1.2\r\nHost: localhost\r\n\r\n")
    assert status_of(response) == "HTTP/1.1 200 OK"


@TIMING
def test_a_silent_client_is_dropped_after_the_timeout_and_the_next_is_served(monkeypatch):
    from part1_sockets import http_server

    monkeypatch.setattr(http_server, "TIMEOUT", 0.3)
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    threading.Thread(target=serve_quietly, args=(http_server.serve_http, listener), daemon=True).start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as silent:
            started = time.monotonic()
            response = exchange(listener.getsockname(), b"GET / HTTP/1.0\r\n\r\n")
            assert status_of(response) == "HTTP/1.1 200 OK"
            assert 0.2 < time.monotonic() - started < 3
            assert silent.recv(1) == b""  # it was dropped, without an answer
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def serve_quietly(serve_function, listener):
    """Run a server loop on a thread; it ends with OSError once the listener is closed."""
    try:
        serve_function(listener)
    except OSError:
        pass


@TIMING
def test_a_slow_reader_gets_the_whole_response_though_each_piece_has_a_timeout():
    from part1_sockets.http_server import send_response

    server, client = socket.socketpair()
    with server, client:
        for end in (server, client):  # small buffers: the sender has to wait for the reader
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        server.settimeout(0.3)
        response = os.urandom(2_000_000)
        failures = []
        sender = threading.Thread(target=lambda: failures.append(send_quietly(send_response, server, response)))
        sender.start()
        started, received = time.monotonic(), bytearray()
        while len(received) < len(response):
            time.sleep(0.01)  # a slow reader: far longer in all than the timeout
            received += client.recv(65536)
        sender.join()
        assert time.monotonic() - started > 0.3  # so one sendall() of it all would have timed out
        assert failures == [None] and bytes(received) == response


def send_quietly(send, connection, data):
    """``send(connection, data)``; return the exception it raised, or None."""
    try:
        send(connection, data)
    except OSError as error:
        return error
    return None


def test_each_request_is_logged_in_common_log_format(serve):
    server = serve(HTTP)
    requests.get(server.url + "/?x=1", timeout=10)
    line = server.wait_for_log("HTTP/1.1").strip().splitlines()[-1]
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /\?x=1 HTTP/1\.1" 200 \d+', line
    ), line


def test_unknown_paths_are_404(serve):
    server = serve(HTTP)
    assert requests.get(server.url + "/favicon.ico", timeout=10).status_code == 404


@pytest.mark.slow
def test_a_real_browser_renders_the_page(serve):
    chromium = require_program("chromium")
    server = serve(HTTP)
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--dump-dom",
                server.url + "/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert "Hello from a socket" in result.stdout, result.stderr[-2000:]
    assert '<button type="submit">Send a POST</button>' in result.stdout
    assert '"GET / HTTP/1.1" 200' in server.wait_for_log('"GET / HTTP/1.1" 200')


# --- the contract every server keeps -------------------------------------------------


@TIMING
@pytest.mark.parametrize("script", [ECHO, HTTP])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_exits_0_quickly_without_traceback_and_frees_the_port(serve, script, sig):
    server = serve(script)
    idle = socket.create_connection(server.address)  # a client in the middle of a conversation
    try:
        started = time.monotonic()
        assert server.stop(sig) == 0
        assert time.monotonic() - started < 2
    finally:
        idle.close()
    assert "Traceback" not in server.log
    # The port is free again at once: a new server can bind it (with SO_REUSEADDR, as ours do).
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(server.address)


@pytest.mark.parametrize("script", [ECHO, CLIENT, HTTP])
@pytest.mark.parametrize("port", ["abc", "70000", "-1"])
def test_a_bad_port_prints_one_clear_line(script, port):
    result = run_cli(script, "--port", port)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "invalid port" in lines[0], lines


@pytest.mark.parametrize("script", [ECHO, HTTP])
def test_a_port_in_use_prints_one_clear_line(script):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli(script, "--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Address already in use" in lines[0], lines


@pytest.mark.parametrize("script", [ECHO, CLIENT, HTTP])
def test_help_explains_the_options(script):
    result = run_cli(script, "--help")
    assert result.returncode == 0
    assert b"--port" in result.stdout and b"--host" in result.stdout


# --- the reference functions carry the names of the workbook's stages ----------------------


def test_reference_functions_have_the_stage_names_and_signatures():
    import inspect

    from part1_sockets import echo_server, http_server

    for function, parameters in (
        (echo_server.make_listener, ["host", "port"]),
        (echo_server.serve_echo, ["listener"]),
        (http_server.make_listener, ["host", "port"]),
        (http_server.serve_http, ["listener"]),
    ):
        assert list(inspect.signature(function).parameters) == parameters, function.__qualname__


def test_make_listener_reuses_the_address_and_listens():
    from part1_sockets.echo_server import make_listener

    with make_listener("127.0.0.1", 0) as listener:
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        with socket.create_connection(listener.getsockname(), timeout=5):
            pass
