"""The short reference servers, run by their command lines as the notebooks run them:
part2_wsgi/minimal_server.py (Flask and Django through wsgiref.validate) and each loop of
part3_concurrency/minimal_servers.py."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

MINIMAL = "part2_wsgi/minimal_server.py"
MODELS = "part3_concurrency/minimal_servers.py"


def read_until_closed(address, request, timeout=5):
    with socket.create_connection(address, timeout=timeout) as client:
        client.sendall(request)
        data = b""
        while piece := client.recv(65536):
            data += piece
    return data


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
