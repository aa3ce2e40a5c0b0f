"""part2_wsgi/tcp.py: what the kernel says about a connection besides send's count.

A client that stops reading leaves bytes in the server's send buffer, unacknowledged;
once it reads them all, none are. Where the system cannot tell (simulated by taking the
way to ask away), the answer is None, and the servers count writability alone.
"""

import socket
import sys
import time

import pytest

from part2_wsgi import tcp

pytestmark = pytest.mark.timeout(30)

CAN_ASK = sys.platform.startswith("linux") or sys.platform == "darwin"


def connected_pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return server, client


def fill(sock):
    """Send until the kernel takes no more: the reader has read nothing. Return how much."""
    sock.setblocking(False)
    sent = 0
    try:
        while True:
            sent += sock.send(b"x" * 65536)
    except BlockingIOError:
        return sent


@pytest.mark.skipif(not CAN_ASK, reason="Linux and macOS only can say what was acknowledged")
def test_bytes_a_reader_has_not_taken_are_unacknowledged_until_it_reads_them():
    server, client = connected_pair()
    with server, client:
        sent = fill(server)
        waiting = tcp.unacknowledged_bytes(server)
        assert 0 < waiting <= sent  # the rest is in the client's receive buffer, acknowledged
        received = 0
        client.settimeout(5)
        while received < sent:
            received += len(client.recv(1 << 20))
        deadline = time.monotonic() + 5
        while tcp.unacknowledged_bytes(server) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tcp.unacknowledged_bytes(server) == 0


def test_where_the_system_cannot_tell_the_answer_is_none(monkeypatch):
    monkeypatch.setattr(tcp, "HOW_TO_ASK", None)
    server, client = connected_pair()
    with server, client:
        fill(server)
        assert tcp.unacknowledged_bytes(server) is None


def test_a_closed_socket_has_no_answer():
    server, client = connected_pair()
    client.close()
    server.close()
    assert tcp.unacknowledged_bytes(server) is None
