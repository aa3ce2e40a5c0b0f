"""wsgi.file_wrapper on every server: files sent whole, in range, slowly, and with sendfile.

PEP 3333 lets a server offer ``environ["wsgi.file_wrapper"]``; an app that returns a file
in it lets the server send the file its own way. Ours send a regular file with
``os.sendfile`` (what the socket takes, call by call), and anything else block by block.
What every server must hold to: the bytes arrive whole and unchanged, never past the
Content-Length, under the same send deadline as any response, HEAD without a body, and
the file closed. Where a system has no
``os.sendfile`` (Windows, simulated), the server reads the file and sends it itself: a
range too. A client that leaves in the middle is logged once, with what it really took.

That sendfile is really used cannot be counted from outside the server's process; what
it saves can: the server's CPU time for a large file, sent with sendfile and read by the
app in 64 KiB blocks.
"""

import http.client
import os
import re
import socket

import pytest

from tests.helpers import (
    RATE,
    RECEIVE_BUFFER,
    SEND_DEADLINE,
    SIZE,
    children_of,
    connect_slowly,
    read_slowly,
    request,
    reset,
    split_response,
    wait_until,
)
from tests.servers import SERVERS
from tests.slow_reader_apps import expected_body

# Slow as a whole, out of the quick loop (pytest -m "not slow"): a server started for each of many tests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

APP = "tests.file_wrapper_apps:app"
ALL = list(SERVERS)


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --- sendfile is really used: the file never passes through Python ----------------------------


def read_calls(pid):
    """How many reads a server made (``syscr`` of /proc/PID/io: read() and sendfile() calls
    both count, one each): its process, its live children (prefork's workers) and the
    children it has reaped (a forking server's: Linux adds theirs to the parent's)."""
    calls = 0
    for process in [pid, *children_of(pid)]:
        try:
            with open(f"/proc/{process}/io") as io:
                calls += int(next(line.split()[1] for line in io if line.startswith("syscr:")))
        except OSError:
            continue  # it exited while we looked: its parent counts it once reaped
    return calls


def download(server, target):
    """Read a response as fast as the client can, without keeping it: its length."""
    with socket.create_connection(server.address, timeout=20) as client:
        client.sendall(request(target))
        buffer, total = bytearray(1 << 20), 0
        while received := client.recv_into(buffer):
            total += received
    return total


def reads_for(server, name, target):
    """The reads a server made to send ``target`` to a fast reader: (bytes, calls)."""
    before = read_calls(server.pid)
    size = download(server, target)
    if name == "forking":  # the child's reads count once the server has reaped it
        wait_until(lambda: not children_of(server.pid), 5, "the forking server's child to be reaped")
    return size, read_calls(server.pid) - before


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="reads the system-call counts of Linux's /proc")
@pytest.mark.parametrize("name", ALL)
def test_sendfile_hands_the_file_to_the_kernel_in_a_few_calls(serve, name, tmp_path):
    """Read by the app, 200 MB are 3,200 reads of 64 KB, each a copy into Python and out
    again; handed to sendfile, a call sends all that the socket takes, and Python never
    sees a byte. Counting calls, not CPU time: the count does not depend on the load, and
    the CPU time the copies cost is the benchmark's to measure (bench.py --files)."""
    path = tmp_path / "large.bin"
    with open(path, "wb") as file:
        for _ in range(200):
            file.write(os.urandom(1024 * 1024))
    server = start(serve, name, "--quiet")
    size, with_sendfile = reads_for(server, name, f"/file?path={path}")
    assert size > 200 * 1024 * 1024
    size, reading = reads_for(server, name, f"/blocks?path={path}")
    assert size > 200 * 1024 * 1024
    assert reading >= 3200, f"{reading} reads to read 200 MB in 64 KB blocks"
    assert with_sendfile * 10 < reading, f"{with_sendfile} reads with sendfile, {reading} without"


# --- without os.sendfile, and clients that leave in the middle -----------------------------------

# A system without os.sendfile (Windows), simulated: it is taken away before anything imports
# the socket module, which decides at import whether socket.sendfile() can use it.
WITHOUT_SENDFILE = """
import os, runpy, sys
del os.sendfile
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
SEND_BUFFER = 65536  # the server's SO_SNDBUF (--send-buffer): what it holds for the client stays small


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder for --files: a file of 9 MB (more than one 8 MB sendfile slice), random bytes."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "large.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    return folder


@pytest.fixture
def without_sendfile(tmp_path):
    launcher = tmp_path / "without_sendfile.py"
    launcher.write_text(WITHOUT_SENDFILE)
    return (launcher,)


def serve_files(serve, name, site, launcher=()):
    args = ("--files", site, "--deadlines", f"send={SEND_DEADLINE:g}", "--send-buffer", SEND_BUFFER)
    return serve(*launcher, SERVERS[name], *args)


def ranged(target, first):
    return f"GET {target} HTTP/1.1\r\nHost: t\r\nRange: bytes={first}-\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize("name", ALL)
def test_without_sendfile_a_range_and_a_large_file_arrive_whole(serve, name, site, without_sendfile):
    server = serve_files(serve, name, site, without_sendfile)
    data = (site / "large.bin").read_bytes()
    with socket.create_connection(server.address, timeout=10) as client:
        client.sendall(ranged("/large.bin", 1000))
        status, headers, body = split_response(client.makefile("rb").read())
    assert status == 206 and headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert body == data[1000:]
    assert get(server, "/large.bin")[2] == data
    assert "Traceback" not in server.log, server.log


@pytest.mark.parametrize("sendfile", [True, False], ids=["with-sendfile", "without-sendfile"])
@pytest.mark.parametrize("name", ALL)
def test_an_abandoned_ranged_download_is_one_went_away_line(serve, name, site, sendfile, without_sendfile):
    server = serve_files(serve, name, site, () if sendfile else without_sendfile)
    client = connect_slowly(server)
    client.sendall(ranged("/large.bin", 1000))
    read_slowly(client, rate=1e9, until=1024 * 1024)
    reset(client)
    server.wait_for_log("went away", timeout=10)
    assert get(server, "/large.bin")[0] == 200  # and the server serves on
    assert server.log.count("went away") == 1 and "Traceback" not in server.log, server.log


TAKEN = re.compile(r"went away: .*received ([\d,]+) of the ([\d,]+) bytes of its response")


@pytest.mark.parametrize("name", ALL)
def test_the_went_away_line_says_what_the_client_took(serve, name, site):
    """Within what the kernel holds between the server and the client: the server's send
    buffer (Linux doubles the number asked) and the client's receive buffer."""
    server = serve_files(serve, name, site)
    client = connect_slowly(server)
    client.sendall(request("/large.bin"))
    took = len(read_slowly(client, rate=1e9, until=3 * 1024 * 1024)[0])
    reset(client)
    line = TAKEN.search(server.wait_for_log("went away", timeout=10))
    assert line, server.log
    logged = int(line[1].replace(",", ""))
    in_between = 2 * SEND_BUFFER + 4 * client_buffer_size()
    assert took <= logged <= took + in_between, f"the client took {took:,} bytes; the log:\n{server.log}"


def client_buffer_size():
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        return probe.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
