"""The short reference servers, run by their command lines as the notebooks run them:
part2_wsgi/minimal_server.py (Flask and Django through wsgiref.validate) and each loop of
part3_concurrency/minimal_servers.py."""

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from part2_wsgi import minimal_server
from tests.helpers import TIMING

MINIMAL = "part2_wsgi/minimal_server.py"
MODELS = "part3_concurrency/minimal_servers.py"


def read_until_closed(address, request, timeout=5):
    with socket.create_connection(address, timeout=timeout) as client:
        client.sendall(request)
        data = b""
        while piece := client.recv(65536):
            data += piece
    return data


@pytest.mark.slow  # the server imports its framework: a second
@pytest.mark.parametrize("app", ["tests.validated_apps:flask", "tests.validated_apps:django"])
def test_minimal_server_serves_frameworks_through_the_validator(serve, app):
    server = serve(MINIMAL, app)
    page = requests.get(server.url + "/", params={"name": "Ada"}, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    posted = requests.post(server.url + "/json", json={"answer": 42}, timeout=10)
    assert posted.json()["received"] == {"answer": 42}
    assert requests.get(server.url + "/no/such/page", timeout=10).status_code == 404
    assert requests.get(server.url + "/error", timeout=10).status_code == 500
    assert "Traceback" in server.wait_for_log("RuntimeError: boom")
    assert "AssertionError" not in server.log, server.log  # the validator found nothing


def test_minimal_server_answers_nonsense_with_400_and_carries_on(serve):
    server = serve(MINIMAL)
    assert read_until_closed(server.address, b"HELLO\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert requests.get(server.url + "/", timeout=10).status_code == 200
    assert server.stop() == 0


def test_minimal_server_cuts_short_an_app_that_fails_half_way_and_carries_on(serve):
    server = serve(MINIMAL, "grader.tests.apps:raising_app")
    cut_short = read_until_closed(server.address, b"GET /raise HTTP/1.0\r\n\r\n")
    assert cut_short.startswith(b"HTTP/1.1 200 OK\r\n") and cut_short.endswith(b"\r\n\r\nhalf a body"), cut_short
    assert requests.get(server.url + "/after", timeout=10).text == "served"
    log = server.wait_for_log("response cut short: RuntimeError")
    assert "Traceback" in log, log
    assert server.stop() == 0


def serve_one_connection(app, listener, **flags):
    """Accept one connection on ``listener`` and serve it with serve_connection, on a thread;
    what serve_connection raised is kept in the list returned."""
    raised = []

    def serve():
        connection, address = listener.accept()
        try:
            minimal_server.serve_connection(connection, address, app, **flags)
        except Exception as error:
            raised.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, raised


def test_serve_connection_lets_an_app_error_after_the_head_go_up_and_closes():
    def fails_with_value_error(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"half"
        raise ValueError("an app's ValueError, after its head: not a bad request")

    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread, raised = serve_one_connection(fails_with_value_error, listener)
        data = read_until_closed(listener.getsockname(), b"GET / HTTP/1.0\r\n\r\n")
        thread.join(5)
    assert data.endswith(b"\r\n\r\nhalf") and b"400" not in data, data
    assert [type(error) for error in raised] == [ValueError]


@pytest.mark.parametrize("flags", [{}, {"multithread": True}, {"multiprocess": True}])
def test_serve_connection_tells_the_app_about_concurrency(flags):
    def flags_app(environ, start_response):
        body = f"{environ['wsgi.multithread']} {environ['wsgi.multiprocess']}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread, raised = serve_one_connection(flags_app, listener, **flags)
        data = read_until_closed(listener.getsockname(), b"GET / HTTP/1.0\r\n\r\n")
        thread.join(5)
    expected = f"{flags.get('multithread', False)} {flags.get('multiprocess', False)}".encode()
    assert data.endswith(b"\r\n\r\n" + expected) and not raised, (data, raised)


@TIMING
@pytest.mark.slow
def test_minimal_server_keeps_a_slow_but_steady_reader(monkeypatch):
    # One sendall() of this response cannot finish within TIMEOUT: the client takes it
    # slowly, through small buffers on both sides. But it takes some of it all the time,
    # so the connection must last until the end of the body.
    monkeypatch.setattr(minimal_server, "TIMEOUT", 0.3)
    body = b"x" * (1024 * 1024)

    def large_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)  # accepted sockets inherit it
        thread, raised = serve_one_connection(large_app, listener)
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # set before connecting: pinned
            client.connect(listener.getsockname())
            client.settimeout(5)
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            started, received = time.monotonic(), b""
            while piece := client.recv(8 * 1024):  # at most 8 KB each 10 ms
                received += piece
                time.sleep(0.01)  # paces the reader, on purpose
            seconds = time.monotonic() - started
        thread.join(5)
    assert received.endswith(b"\r\n\r\n" + body) and not raised, f"{len(received)} bytes in {seconds:.2f} s"
    assert seconds > 3 * minimal_server.TIMEOUT, f"the response took only {seconds:.2f} s: the test proves nothing"


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("model", ["forking", "threads-unbounded", "threaded", "select"])
def test_each_loop_serves_clients_at_once(serve, model):
    server = serve(MODELS, "--model", model)
    path = "/" if model == "select" else "/sleep?seconds=1"
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: requests.get(server.url + path, timeout=10), range(4)))
    assert all(reply.status_code == 200 for reply in replies)
    assert time.monotonic() - started < 3
    assert server.stop() == 0


@pytest.mark.slow
def test_the_forking_mistake_never_ends_a_connection(serve):
    forgetful = serve(MODELS, "--model", "forking-mistakes")
    with socket.create_connection(forgetful.address, timeout=2) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        with pytest.raises(TimeoutError):
            while piece := client.recv(65536):
                data += piece
    assert data.startswith(b"HTTP/1.1 200 OK")  # the whole response came, and never its end
    careful = serve(MODELS, "--model", "forking")
    assert read_until_closed(careful.address, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")


@TIMING
@pytest.mark.slow
@pytest.mark.parametrize("model", ["forking", "threads-unbounded", "threaded"])
def test_each_loop_stops_at_once_on_ctrl_c_with_a_request_in_flight(serve, model):
    server = serve(MODELS, "tests.announcing_app:app", "--model", model)
    with socket.create_connection(server.address, timeout=5) as slow:
        slow.sendall(b"GET /sleep?seconds=5 HTTP/1.0\r\n\r\n")
        server.wait_for_log("app begins GET /sleep?seconds=5")  # in the app, on its thread or in its child
        server.process.send_signal(signal.SIGINT)
        # The server itself must be gone at once (a child may finish its request: it
        # holds the output pipes until then, which is why stop() alone would wait).
        assert server.process.wait(timeout=2) == 0, "Ctrl-C waited for the request in flight"
    assert server.stop() == 0


@pytest.mark.parametrize(("model", "flags"), [("forking", "False True"), ("threaded", "True False")])
def test_each_capped_loop_tells_the_app_how_it_runs(serve, model, flags):
    server = serve(MODELS, "grader.tests.apps:flags_app", "--model", model)
    assert requests.get(server.url + "/", timeout=10).text == "multithread {} multiprocess {}".format(*flags.split())


@pytest.mark.parametrize("model", ["forking", "threaded"])
def test_each_capped_loop_survives_an_app_that_fails_after_its_head(serve, model):
    server = serve(MODELS, "grader.tests.apps:raising_app", "--model", model, "--max-threads", "1")
    for _ in range(3):  # with one thread, a slot lost to each failure would stop the server at once
        cut_short = read_until_closed(server.address, b"GET /raise HTTP/1.0\r\n\r\n")
        assert cut_short.endswith(b"\r\n\r\nhalf a body"), cut_short
    assert requests.get(server.url + "/after", timeout=10).text == "served"
    assert "RuntimeError: raising_app fails half way" in server.log
    assert server.stop() == 0
