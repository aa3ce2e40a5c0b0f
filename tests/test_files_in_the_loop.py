"""The event loops run the files app in the loop when they serve files only.

A small file costs the files app a few system calls that never wait for a client, less
than the trip to a worker thread and back; so ``--files DIR`` alone runs it in the loop,
and a large file goes out with ``os.sendfile`` a piece per writable event, after the app
has returned. What must stay true: a client that reads a large file slowly holds nobody
else, a kept-alive connection's responses stay in order, and with an APP as well
(``--files DIR APP``) the app runs in the worker threads, so a slow app still never
blocks the loop.
"""

import http.client
import socket
import time

import pytest

from harness import start_server
from tests.helpers import TIMING
from tests.servers import SERVERS

# servers, an 8 MB file, a slow reader; each test bounds how long the others wait
pytestmark = [pytest.mark.timeout(60), pytest.mark.slow, TIMING]

LOOPS = ["select", "prefork", "asyncio"]
SMALL = bytes(range(256)) * 40  # 10 KB: goes out with the head
LARGE = bytes(range(256)) * 4096 * 8  # 8 MB: sendfile, many writable events


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "small.bin").write_bytes(SMALL)
    (tmp_path / "large.bin").write_bytes(LARGE)
    return tmp_path


def timed_get(server, path):
    started = time.monotonic()
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    try:
        connection.request("GET", path)
        body = connection.getresponse().read()
    finally:
        connection.close()
    return body, time.monotonic() - started


@pytest.mark.parametrize("name", LOOPS)
def test_a_slow_reader_of_a_large_file_holds_nobody_else(folder, name):
    with start_server(SERVERS[name], "--files", folder, "--quiet", "--send-buffer", "65536") as server:
        slow = socket.create_connection(server.address, timeout=10)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        slow.sendall(b"GET /large.bin HTTP/1.1\r\nHost: test\r\n\r\n")
        received = slow.recv(4096)  # the response has begun, and then we read no more for a while
        for _ in range(5):
            body, seconds = timed_get(server, "/small.bin")
            assert body == SMALL and seconds < 2, f"a small file took {seconds:.2f} s beside a slow reader"
        while True:  # and the slow reader gets every byte, in the end
            _, blank_line, body = received.partition(b"\r\n\r\n")
            if blank_line and len(body) >= len(LARGE):
                break
            data = slow.recv(1 << 20)
            if not data:
                break
            received += data
        slow.close()
        assert body == LARGE, f"{len(body):,} bytes of {len(LARGE):,}"


@pytest.mark.parametrize("name", LOOPS)
def test_a_kept_alive_connection_keeps_its_responses_in_order(folder, name):
    with start_server(SERVERS[name], "--files", folder, "--quiet") as server:
        connection = http.client.HTTPConnection(*server.address, timeout=10)
        try:
            for path, expected in [("/large.bin", LARGE), ("/small.bin", SMALL)] * 3:
                connection.request("GET", path)
                assert connection.getresponse().read() == expected, path
        finally:
            connection.close()
        with socket.create_connection(server.address, timeout=10) as pipelined:  # all at once
            pipelined.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /small.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            reply = b""
            while len(reply) < len(LARGE) + len(SMALL) + 400:
                data = pipelined.recv(1 << 20)
                if not data:
                    break
                reply += data
        first, _, rest = reply.partition(b"\r\n\r\n")
        assert rest[: len(LARGE)] == LARGE and rest[len(LARGE) :].endswith(SMALL)


@pytest.mark.parametrize("name", LOOPS)
def test_with_an_app_as_well_a_slow_app_never_blocks_the_loop(folder, name):
    """The file is asked for once /sleep is inside the app (the app says so in the log), and
    comes back while /sleep still sleeps. An app run in the loop would hold the file back
    for the whole sleep. (Prefork gets one worker: with two, the other would serve the file.)"""
    one_loop = ["--workers", "1"] if name == "prefork" else []
    with start_server(SERVERS[name], "tests.announcing_app:app", "--files", folder, "--quiet", *one_loop) as server:
        sleeper = socket.create_connection(server.address, timeout=10)
        sleeper.sendall(b"GET /sleep?seconds=3 HTTP/1.1\r\nHost: test\r\n\r\n")
        server.wait_for_log("app begins GET /sleep?seconds=3")
        body, seconds = timed_get(server, "/small.bin")
        assert body == SMALL and seconds < 1.5, f"a file took {seconds:.2f} s beside /sleep: the app blocked the loop"
        sleeper.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing to read yet: /sleep was still asleep when the file came
            sleeper.recv(1)
        sleeper.close()
