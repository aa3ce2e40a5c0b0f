"""What test modules share besides fixtures: one home for each helper.

Test modules import helpers from here and the servers from ``tests/servers.py``; never
from one another, and never from ``conftest.py``, which keeps only fixtures: a helper
lives in one module that is not a test file, and a reader finds it by its import
(``tests/test_structure.py`` checks this).

* the programs pip cannot install: ``require_program``, ``IN_CI``;
* talking HTTP over a socket: ``get_request``, ``read_response``, ``fetch``;
* waiting for a condition, never sleeping and hoping: ``wait_until``;
* the processes a server made: ``children_of``;
* slow readers, and the scale they share: ``connect_slowly``, ``read_slowly``, ...
* running beside other tests (pytest-xdist): ``TIMING``, ``one_worker``.
"""

import http.client
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections import namedtuple

import pytest

from harness import ROOT

IN_CI = os.environ.get("CI") == "true"


def require_program(name):
    """Skip when a program is missing, except in CI, where every test must run."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed, and CI must run this test (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


# --- running beside other tests ---------------------------------------------------------
# The README's command runs the tests on several workers at once (pytest-xdist, with
# --dist loadgroup); a test in an xdist_group runs on the worker that runs the rest of its
# group, one after another.

# Tests that bound a time, a concurrency or a CPU share (deadlines, overlaps, benchmarks)
# form one group: they never run beside each other, so one's burst of work is not taken
# for another's slowness.
TIMING = pytest.mark.xdist_group("timing")


def one_worker(name):
    """The tests that share a costly module fixture (a grader run), kept on one worker: on
    several, each worker would build the fixture again."""
    return pytest.mark.xdist_group(name)


# --- talking HTTP -------------------------------------------------------------------

Response = namedtuple("Response", "version status reason headers body")


def get_request(target="/", version="HTTP/1.1", *extra_headers):
    lines = [f"GET {target} {version}", "Host: test", *extra_headers, "", ""]
    return "\r\n".join(lines).encode()


def read_response(stream, method="GET"):
    """Read one response from a socket's ``makefile("rb")``; headers keyed in lower case.

    Reads exactly one message, so a second (pipelined) response stays in the stream.
    """
    line = stream.readline(70_000)
    if not line:
        raise EOFError("the server closed the connection without a response")
    version, status, reason = (line.decode("latin-1").rstrip("\r\n").split(" ", 2) + [""])[:3]
    headers = {}
    while (line := stream.readline(70_000)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(status)
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        body = b""
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = read_chunked(stream)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        body = stream.read(length)
        if len(body) != length:
            raise EOFError(f"the body ended after {len(body)} of {length} bytes")
    else:
        body = stream.read()  # no framing: the body ends where the connection does
    return Response(version, status, reason, headers, body)


def read_chunked(stream):
    body = bytearray()
    while True:
        size = int(stream.readline(1024).split(b";")[0], 16)
        if size == 0:
            while stream.readline(70_000) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += stream.read(size)
        stream.readline(3)  # the CRLF after each chunk's data


def fetch(server, method, path, body=None, headers=None, timeout=10):
    """One request on its own connection with http.client: (status, response, body)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


# --- waiting and counting -----------------------------------------------------------


def wait_until(condition, timeout, what):
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return value


def children_of(pid):
    """{child pid: state letter} for every process whose parent is ``pid`` (Z: zombie)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue  # it exited while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            children[int(entry)] = fields[0]
    return children


# --- slow readers -------------------------------------------------------------------

# Not smaller: the event loops look at the deadlines once a second, so a send deadline
# under a second, or a read of fewer than about three, would let a server that counts
# the deadline from the response's start, not from the client's progress, pass.
SEND_DEADLINE = 1.0
SIZE = 12 * 1024 * 1024
RATE = 4 * 1024 * 1024  # bytes per second: SIZE takes three send deadlines to read
RECEIVE_BUFFER = 16 * 1024


def connect_slowly(server):
    """A client socket with a small receive buffer, pinned before connecting."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    client.settimeout(10)
    client.connect(server.address)
    return client


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()


def read_slowly(client, rate=RATE, until=None):
    """Read until the server closes (or ``until`` bytes), never faster than ``rate``.

    Its sleep paces the reader on purpose: it waits for nothing.
    """
    received = bytearray()
    started = time.monotonic()
    while until is None or len(received) < until:
        piece = client.recv(65536)
        if not piece:
            break
        received += piece
        ahead = started + len(received) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    return bytes(received), time.monotonic() - started


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    return status, {name.lower().decode(): value.decode() for name, value in headers.items()}, body


def reset(client):
    """Close with a TCP reset, as a browser tab closed in the middle of a download."""
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def wsgi_environ(path, method="GET", **extra):
    """A GET (or ``method``) of ``path`` as a WSGI server would build it, with ``extra`` keys
    (``HTTP_RANGE="bytes=0-9"``, a ``wsgi.file_wrapper``...): for calling an app in process."""
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **extra,
    }


def run_measuring_script(name, out, *args):
    """Run part3_concurrency/measure/NAME.py on a tiny load, writing into ``out``; fail with its stderr."""
    script = ROOT / "part3_concurrency" / "measure" / f"{name}.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--requests", "20", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert completed.returncode == 0, completed.stderr
    return completed
