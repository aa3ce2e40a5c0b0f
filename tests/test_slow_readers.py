"""Nothing lost on the way out: slow readers, on every server, as real processes.

A client that reads slowly but steadily must get every byte of a large response, however
many send deadlines the whole response takes: the deadline counts the client's progress,
not the time since the response began. A client that stops reading is dropped after one
send deadline, and the log says so; one that leaves in the middle is logged once, with how
much it received. An app's own Date and Server headers go out once. And what is written
goes out at once: no small write waits for the client's acknowledgement (Nagle's algorithm).

Fast, but the same as a browser on a slow line: a send deadline of 1 s, a reader whose
receive buffer is pinned small (SO_RCVBUF, set before connecting: the kernel then does not
grow it), and a body of a few MB read at a few MB/s. (The server's socket takes a few MB
into the kernel at once, and takes more once the client has read a third of those: the
rate must let that happen well within the deadline.)

Slower readers, and readers that pause, are served because the servers look at what the
client has acknowledged (part2_wsgi/tcp.py), not only at what the socket took: the tests
pin the server's send buffer small (``--send-buffer``), so that the socket would say
"writable" too seldom to show their progress within the deadline.
"""

import http.client
import socket
import subprocess
import sys
import time

import pytest

from harness import ROOT
from part3_concurrency.loop_tools import HIGH_WATER
from tests.helpers import (
    RATE,
    SEND_DEADLINE,
    SIZE,
    TIMING,
    connect_slowly,
    fetch,
    read_slowly,
    request,
    reset,
    split_response,
)
from tests.servers import CONCURRENT, SERVERS, SINGLE_THREADED
from tests.slow_reader_apps import OWN_DATE, OWN_SERVER, PAUSE, expected_body

pytestmark = pytest.mark.timeout(60)

ALL = list(SERVERS)


def start(serve, name):
    return serve(SERVERS[name], "tests.slow_reader_apps:app", "--deadlines", f"send={SEND_DEADLINE:g}")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/one-piece", "/pieces"], ids=["one-bytes-object", "a-generator"])
@pytest.mark.parametrize("name", ALL)
def test_a_slow_but_steady_reader_gets_every_byte(serve, name, path):
    server = start(serve, name)
    with connect_slowly(server) as client:
        client.sendall(request(f"{path}?size={SIZE}"))
        raw, seconds = read_slowly(client)
    status, headers, body = split_response(raw)
    assert status == 200 and headers["content-length"] == str(SIZE)
    assert len(body) == SIZE, f"{len(body):,} of {SIZE:,} bytes in {seconds:.1f} s; the log:\n{server.log}"
    assert body == expected_body(SIZE)
    assert seconds > 2.5 * SEND_DEADLINE, f"read in {seconds:.1f} s: too fast to prove anything"
    assert "took none" not in server.log and "went away" not in server.log, server.log


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_a_reader_that_stops_is_dropped_after_the_send_deadline_and_logged(serve, name):
    server = start(serve, name)
    with connect_slowly(server) as client:
        client.sendall(request(f"/one-piece?size={SIZE}"))
        # Reads for longer than one send deadline (it is not dropped meanwhile), then stops.
        read_slowly(client, until=int(1.5 * SEND_DEADLINE * RATE))
        stopped = time.monotonic()
        log = server.wait_for_log("took none of its response for 1 s: dropped", timeout=10)
        waited = time.monotonic() - stopped
    # The deadline, and the event loops' look at it once a second, and a margin:
    assert waited < SEND_DEADLINE + 3, f"dropped {waited:.2f} s after the client stopped reading"
    assert log.count("took none of its response") == 1 and "went away" not in log, log
    assert fetch(server, "GET", "/")[0] == 200  # and the server serves on
    assert "Traceback" not in server.log


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_a_reader_that_leaves_in_the_middle_is_logged_once_with_what_it_received(serve, name):
    server = start(serve, name)
    client = connect_slowly(server)
    client.sendall(request(f"/one-piece?size={SIZE}"))
    read_slowly(client, until=1024 * 1024)
    reset(client)
    log = server.wait_for_log("went away", timeout=10)
    assert fetch(server, "GET", "/")[0] == 200  # (and lets the single-threaded servers finish the line)
    log = server.log
    assert log.count("went away") == 1, log
    line = next(line for line in log.splitlines() if "went away" in line)
    assert "bytes of its response" in line and "received" in line, line
    assert "took none" not in log and "Traceback" not in log, log


@pytest.mark.parametrize("name", ALL)
def test_an_apps_own_date_and_server_go_out_once(serve, name):
    server = start(serve, name)
    for path, date, software in [("/own-headers", OWN_DATE, OWN_SERVER), ("/", None, "SmallJourney/1.0")]:
        with socket.create_connection(server.address, timeout=5) as client:
            client.sendall(request(path))
            raw = client.makefile("rb").read()
        head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
        names = [line.partition(":")[0].lower() for line in head.split("\r\n")[1:]]
        assert names.count("date") == 1 and names.count("server") == 1, head
        headers = split_response(raw)[1]
        assert headers["server"] == software
        assert date is None or headers["date"] == date


@TIMING
@pytest.mark.parametrize("name", ALL)
def test_a_second_small_write_leaves_at_once_not_held_back_by_nagle(serve, name):
    """An answer in two small writes, a moment apart, on a kept-alive connection: the
    second must leave at once. With Nagle's algorithm on, TCP holds a small write until the
    client has acknowledged the one before, and the client delays that (by 40 ms on Linux,
    once the connection is past its first few packets): twenty answers would take most of a
    second. Every server turns it off (disable_nagle). The bound is generous, not a timing:
    a server with Nagle off answers each in about 2 ms."""
    server = start(serve, name)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        started = time.monotonic()
        for _ in range(20):
            connection.request("GET", "/paced?pieces=2")
            assert connection.getresponse().read() == expected_body(100) * 2
        seconds = time.monotonic() - started
    finally:
        connection.close()
    assert seconds < 0.3, (
        f"20 answers of two small writes {PAUSE * 1000:g} ms apart, on one connection, took {seconds:.2f} s: "
        "Nagle's algorithm holds the second write back until the client acknowledges the first "
        "(TCP_NODELAY not set)"
    )


# --- patient readers: progress the socket does not show ---------------------------------------

SEND_BUFFER = 65536  # the server's SO_SNDBUF (--send-buffer): its socket says writable once a third is free
STEADY_RATE = 28 * 1024  # bytes per second: a third of the send buffer takes longer than the deadline
PATIENT_SIZE = 200_000  # some more than the buffers hold at once: the last bytes wait for the client


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder to serve with --files, with the file the patient readers read."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "patient.bin").write_bytes(expected_body(PATIENT_SIZE))
    return folder


def start_patient(serve, name, site, *args, launcher=()):
    return serve(
        *launcher,
        SERVERS[name],
        "--files",
        site,
        "--deadlines",
        f"send={SEND_DEADLINE:g}",
        "--send-buffer",
        SEND_BUFFER,
        *args,
    )


def read_in_bursts(client, pause):
    """Sleep ``pause``, then take what has arrived in one recv(); again, until the end."""
    received = bytearray()
    client.setblocking(False)
    while True:
        time.sleep(pause)  # the reader pauses, on purpose
        try:
            piece = client.recv(1 << 20)
        except BlockingIOError:
            continue
        if not piece:
            return bytes(received)
        received += piece


def assert_whole(server, raw, size):
    status, _, body = split_response(raw)
    assert status == 200 and len(body) == size, f"{len(body):,} of {size:,} bytes; the log:\n{server.log}"
    assert body == expected_body(size)
    assert "took none" not in server.log and "went away" not in server.log, server.log


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_a_steady_reader_is_served_though_its_socket_seldom_says_writable(serve, name, site):
    """A third of the send buffer takes the reader longer than the send deadline to free:
    the socket says nothing for that long, and only the acknowledgements show it reads."""
    server = start_patient(serve, name, site)
    with connect_slowly(server) as client:
        client.sendall(request("/patient.bin"))
        raw, seconds = read_slowly(client, rate=STEADY_RATE)
    assert_whole(server, raw, PATIENT_SIZE)
    assert seconds > 3 * SEND_DEADLINE, f"read in {seconds:.1f} s: too fast to prove anything"


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_a_reader_that_pauses_for_most_of_the_deadline_between_reads_is_served(serve, name, site):
    """As curl --limit-rate reads: all that has arrived at once, then nothing for a while.
    Each read frees less than a third of the server's send buffer, so for several pauses
    in a row the socket says nothing; the client acknowledges bytes after each pause."""
    server = start_patient(serve, name, site)
    with connect_slowly(server) as client:
        client.sendall(request("/patient.bin"))
        raw = read_in_bursts(client, pause=0.9 * SEND_DEADLINE)
    assert_whole(server, raw, PATIENT_SIZE)


# A system that cannot say what the client acknowledged, simulated: Linux's SIOCOUTQ taken
# away before the server starts. The servers then count only what the socket takes.
WITHOUT_ACKNOWLEDGEMENTS = """
import runpy, sys, termios
del termios.TIOCOUTQ
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="simulates a Linux without SIOCOUTQ")
@pytest.mark.parametrize("name", ALL)
def test_without_acknowledgements_readers_are_served_and_one_that_stops_is_dropped(serve, name, site, tmp_path):
    launcher = tmp_path / "without_acknowledgements.py"
    launcher.write_text(WITHOUT_ACKNOWLEDGEMENTS)
    server = start_patient(serve, name, site, launcher=(launcher,))
    with connect_slowly(server) as client:  # a reader at full speed
        client.sendall(request("/patient.bin"))
        raw, _ = read_slowly(client, rate=1e9)
    assert_whole(server, raw, PATIENT_SIZE)
    with connect_slowly(server) as client:  # a reader that takes a little, then nothing
        client.sendall(request("/patient.bin"))
        client.recv(1000)
        stopped = time.monotonic()
        server.wait_for_log("took none of its response", timeout=10)
        assert time.monotonic() - stopped < SEND_DEADLINE + 3
    assert fetch(server, "GET", "/")[0] in (200, 404)  # and the server serves on
    assert "Traceback" not in server.log, server.log


def help_text(name):
    result = subprocess.run(
        [sys.executable, str(ROOT / SERVERS[name]), "--help"], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    return " ".join(result.stdout.split())


@pytest.mark.parametrize("name", ALL)
def test_servers_that_serve_others_meanwhile_wait_a_minute_for_a_slow_reader(name):
    """nginx's send_timeout, 60 s, where a client that reads nothing holds only itself; a
    short one where it holds everybody: --help says which."""
    expected = "send=60" if name in CONCURRENT else "send=10"
    assert name in CONCURRENT or name in SINGLE_THREADED
    assert expected in help_text(name), help_text(name)


# --- memory: a client that reads nothing costs a bounded outbox, even with --threads 0 -------


def resident_bytes(pid):
    """The resident memory of a process, from ps (Linux and macOS)."""
    output = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout
    return int(output.strip()) * 1024


def only_child(pid):
    output = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    assert len(output) == 1, output
    return int(output[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["select", "prefork"])
def test_with_threads_0_a_client_that_reads_nothing_costs_no_more_than_the_high_water_mark(serve, name):
    """With --threads 0 the loop runs the app itself: it must pull the next piece of a body
    only once the outbox is below the high-water mark, waiting for the client meanwhile
    (and serving nobody else), until the send deadline drops it."""
    workers = ("--workers", "1") if name == "prefork" else ()
    server = serve(SERVERS[name], "tests.slow_reader_apps:app", "--threads", "0", *workers, "--deadlines", "send=2")
    assert fetch(server, "GET", "/")[0] == 200
    pid = only_child(server.pid) if name == "prefork" else server.pid
    before = most = resident_bytes(pid)
    with connect_slowly(server) as client:
        client.sendall(request(f"/pieces?size={200 * 1024 * 1024}"))  # ... and reads nothing
        deadline = time.monotonic() + 30
        while "took none of its response" not in server.log:
            assert time.monotonic() < deadline, f"not dropped 30 s after it stopped reading; the log:\n{server.log}"
            most = max(most, resident_bytes(pid))
            time.sleep(0.05)  # (a reading of its memory each 50 ms, until it is dropped)
    grown = most - before
    assert grown < 2 * HIGH_WATER + 8 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MB"
    assert fetch(server, "GET", "/")[0] == 200
