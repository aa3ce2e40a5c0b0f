"""Which clients got an answer: wrk counts requests, never clients.

wrk reports the requests that completed, summed over its threads; it cannot say how
many of its connections got none. A server with a cap (the forking server's children,
the threaded server's threads) keeps busy the kept-alive clients it took first, and the
others wait in the listen backlog, unanswered, until the run ends: wrk's figures then
come from the lucky clients alone, and the latency looks better than the server is.

So ``bench.py`` counts them itself, right after each wrk run, at the same concurrency,
with the same kind of connection and for as long: ``answered_clients`` opens that many
connections at once, keeps each one busy the way wrk does (the next request as soon as
an answer came: on the same connection with keep-alive, on a new one without), and
counts the connections that got at least one whole answer. It stops early once every
client has one: the count can only grow.

One thread and a selector, not a thread per client: a thousand clients must cost the
machine little, since the server under test runs on the same cores.
"""

import selectors
import socket
import time

from part3_concurrency.measure.c10k import complete

RECEIVE_SIZE = 65536


class _Client:
    """One of the clients: its current connection, what it received, whether it was answered."""

    def __init__(self):
        self.sock = None
        self.received = bytearray()
        self.answered = False


def answered_clients(address, clients, seconds, keep_alive=True):
    """Keep ``clients`` connections busy for ``seconds``; return how many got an answer."""
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n" + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n"
    selector = selectors.DefaultSelector()
    everyone = [_Client() for _ in range(clients)]
    deadline = time.monotonic() + seconds
    try:
        for client in everyone:
            connect(selector, client, address)
        waiting = clients
        while waiting and time.monotonic() < deadline:
            for key, events in selector.select(timeout=min(0.1, max(0.0, deadline - time.monotonic()))):
                client = key.data
                if events & selectors.EVENT_WRITE:
                    send_request(selector, client, address, request)
                    continue
                try:
                    data = client.sock.recv(RECEIVE_SIZE)
                except OSError:
                    data = b""
                if not data:  # closed or reset: this client tries again on a new connection
                    reconnect(selector, client, address)
                    continue
                client.received += data
                if complete(client.received):
                    waiting -= not client.answered
                    client.answered = True
                    client.received.clear()
                    if keep_alive:
                        send_request(selector, client, address, request)
                    else:
                        reconnect(selector, client, address)
        return sum(client.answered for client in everyone)
    finally:
        selector.close()
        for client in everyone:
            if client.sock is not None:
                client.sock.close()


def connect(selector, client, address):
    """Start a non-blocking connect; the socket turns writable once the handshake is done."""
    client.sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    client.sock.setblocking(False)
    client.sock.connect_ex(address)
    client.received.clear()
    selector.register(client.sock, selectors.EVENT_WRITE, client)


def reconnect(selector, client, address):
    selector.unregister(client.sock)
    client.sock.close()
    connect(selector, client, address)


def send_request(selector, client, address, request):
    """Send the request (a few dozen bytes: they fit in any send buffer), then wait to read."""
    try:
        client.sock.send(request)
    except OSError:  # refused, or reset before the request went out
        reconnect(selector, client, address)
        return
    selector.modify(client.sock, selectors.EVENT_READ, client)
