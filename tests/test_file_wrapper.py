"""wsgi.file_wrapper on every server: files sent whole, in range, slowly, and with sendfile.

PEP 3333 lets a server offer ``environ["wsgi.file_wrapper"]``; an app that returns a file
in it lets the server send the file its own way. Ours send a regular file with sendfile
(``socket.sendfile`` on the blocking servers, ``os.sendfile`` a piece per writable event
on the event loops), and anything else block by block. What every server must hold to:
the bytes arrive whole and unchanged, never past the Content-Length, under the same send
deadline as any response, HEAD without a body, and the file closed.

That sendfile is really used cannot be counted from outside the server's process; what
it saves can: the server's CPU time for a large file, sent with sendfile and read by the
app in 64 KiB blocks.
"""

import http.client
import os
import socket

import pytest

from tests.slow_reader_apps import expected_body
from tests.test_part3_servers import children_of, wait_until
from tests.test_slow_readers import (
    ALL,
    RATE,
    SEND_DEADLINE,
    SERVERS,
    SIZE,
    connect_slowly,
    read_slowly,
    request,
    split_response,
)

pytestmark = pytest.mark.timeout(60)

APP = "tests.file_wrapper_apps:app"


@pytest.fixture(scope="module")
def a_file(tmp_path_factory):
    """A file of 8 MB of random bytes: a byte out of place would show."""
    path = tmp_path_factory.mktemp("files") / "random.bin"
    path.write_bytes(os.urandom(8 * 1024 * 1024))
    return path


@pytest.fixture(scope="module")
def a_slow_file(tmp_path_factory):
    """The slow readers' body, as a file."""
    path = tmp_path_factory.mktemp("files") / "slow.bin"
    path.write_bytes(expected_body(SIZE))
    return path


def start(serve, name, *args):
    return serve(SERVERS[name], APP, "--deadlines", f"send={SEND_DEADLINE:g}", *args)


def get(server, target, method="GET", connection=None):
    """One request (on ``connection``, kept open, if given): (status, headers, body)."""
    client = connection or http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        client.request(method, target)
        response = client.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        if connection is None:
            client.close()


def closed_files(server, name, count=1):
    """Wait until the server's log says ``name`` was closed ``count`` times."""
    wait_until(lambda: server.log.count(f"closed {name}\n") >= count, 5, f"the server to close {name}")
    return server.log.count(f"closed {name}\n")


@pytest.mark.parametrize("name", ALL)
def test_a_wrapped_file_arrives_whole_and_unchanged_and_is_closed(serve, name, a_file):
    server = start(serve, name)
    status, headers, body = get(server, f"/file?path={a_file}")
    assert status == 200 and int(headers["Content-Length"]) == a_file.stat().st_size
    assert body == a_file.read_bytes()
    assert closed_files(server, a_file) == 1
    assert "Traceback" not in server.log, server.log


@pytest.mark.parametrize("name", ALL)
def test_head_sends_no_body(serve, name, a_file):
    server = start(serve, name)
    with socket.create_connection(server.address, timeout=10) as client:
        client.sendall(f"HEAD /file?path={a_file} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        raw = client.makefile("rb").read()  # everything, until the server closes
    status, headers, body = split_response(raw)
    assert status == 200 and headers["content-length"] == str(a_file.stat().st_size)
    assert body == b""
    closed_files(server, a_file)


@pytest.mark.parametrize("name", ALL)
def test_a_file_wrapped_at_an_offset_sends_exactly_its_range(serve, name, a_file):
    server = start(serve, name)
    data = a_file.read_bytes()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)  # kept alive where it may be
    try:
        for start_at, length in [(1000, 5000), (3 * 1024 * 1024 + 7, 2 * 1024 * 1024)]:
            target = f"/range?path={a_file}&start={start_at}&length={length}"
            status, _, body = get(server, target, connection=connection)
            assert status == 200 and body == data[start_at : start_at + length]
        # A byte past the range would be read as the start of the next response:
        assert get(server, f"/range?path={a_file}&start=0&length=10", connection=connection)[2] == data[:10]
    finally:
        connection.close()
    closed_files(server, a_file, 3)
    assert "app error" not in server.log, server.log


@pytest.mark.parametrize("route", ["pipe", "bytesio"])
@pytest.mark.parametrize("name", ALL)
def test_what_sendfile_cannot_read_is_sent_block_by_block(serve, name, route):
    server = start(serve, name)
    size = 3 * 1024 * 1024 + 5
    status, headers, body = get(server, f"/{route}?size={size}")
    assert status == 200 and body == expected_body(size)
    closed_files(server, route)
    assert "Traceback" not in server.log, server.log


@pytest.mark.parametrize("name", ALL)
def test_a_wrapped_file_without_a_length_is_chunked(serve, name, a_file):
    server = start(serve, name)
    status, headers, body = get(server, f"/chunked?path={a_file}")
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    assert body == a_file.read_bytes()
    closed_files(server, a_file)


@pytest.mark.parametrize("name", ALL)
def test_a_slow_but_steady_reader_gets_the_whole_file(serve, name, a_slow_file):
    server = start(serve, name)
    with connect_slowly(server) as client:
        client.sendall(request(f"/file?path={a_slow_file}"))
        raw, seconds = read_slowly(client)
    status, _, body = split_response(raw)
    assert status == 200 and len(body) == SIZE, f"{len(body):,} of {SIZE:,} bytes; the log:\n{server.log}"
    assert body == expected_body(SIZE)
    assert seconds > 2.5 * SEND_DEADLINE, f"read in {seconds:.1f} s: too fast to prove anything"
    assert "took none" not in server.log and "went away" not in server.log, server.log


@pytest.mark.parametrize("name", ALL)
def test_a_reader_that_stops_reading_a_file_is_dropped(serve, name, a_slow_file):
    server = start(serve, name)
    with connect_slowly(server) as client:
        client.sendall(request(f"/file?path={a_slow_file}"))
        read_slowly(client, until=RATE // 2)
        server.wait_for_log("took none of its response", timeout=10)
    closed_files(server, a_slow_file)
    assert get(server, "/bytesio?size=10")[0] == 200  # and the server serves on
    assert "Traceback" not in server.log, server.log


# --- sendfile is really used: what it saves ----------------------------------------------------


def cpu_seconds(pid):
    """CPU time of a server: its process, its live children (prefork's workers) and the
    children it has reaped (a forking server's)."""
    ticks = 0
    for process in [pid, *children_of(pid)]:
        try:
            with open(f"/proc/{process}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked: its parent counts it once reaped
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def download(server, target):
    """Read a response as fast as the client can, without keeping it: its length."""
    with socket.create_connection(server.address, timeout=20) as client:
        client.sendall(request(target))
        buffer, total = bytearray(1 << 20), 0
        while received := client.recv_into(buffer):
            total += received
    return total


def cpu_for(server, name, target):
    """The server's CPU time to send ``target`` to a fast reader: (bytes, seconds)."""
    before = cpu_seconds(server.pid)
    size = download(server, target)
    if name == "forking":  # the child's time counts once the server has reaped it
        wait_until(lambda: not children_of(server.pid), 5, "the forking server's child to be reaped")
    return size, cpu_seconds(server.pid) - before


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads CPU times from Linux's /proc")
@pytest.mark.parametrize("name", ALL)
def test_sendfile_costs_the_server_far_less_cpu_than_reading_the_file(serve, name, tmp_path):
    path = tmp_path / "large.bin"
    with open(path, "wb") as file:
        for _ in range(200):
            file.write(os.urandom(1024 * 1024))
    server = start(serve, name, "--quiet")
    spent = {"file": [], "blocks": []}
    for _ in range(2):  # the least of two runs each: another process may have taken the CPU meanwhile
        for route in spent:
            size, seconds = cpu_for(server, name, f"/{route}?path={path}")
            assert size > 200 * 1024 * 1024
            spent[route].append(seconds)
    with_sendfile, reading = min(spent["file"]), min(spent["blocks"])
    assert with_sendfile < 0.6 * reading, f"{with_sendfile:.2f} s of CPU with sendfile, {reading:.2f} s without"
