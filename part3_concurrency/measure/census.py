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

On a busy machine a client can go unanswered for a second only because the server, or
the census itself, was ready to run and got no core: that client was answered late,
not left out. So the window stretches by the time either spent waiting for a core
(``withheld``: the server's, from ``harness.RunningServer.waits_for_a_core``), and what
arrived before the window closed is read before counting. A client that a server with
a cap leaves waiting behind the ones it serves is never answered, however long the
window: it is still counted as left out.
"""

import selectors
import socket
import time

from harness import longest_new_wait, this_thread_waited_for_a_core
from part3_concurrency.measure.c10k import complete

RECEIVE_SIZE = 65536


class _Client:
    """One of the clients: its current connection, what it received, whether it was answered."""

    def __init__(self):
        self.sock = None
        self.received = bytearray()
        self.answered = False


def answered_clients(address, clients, seconds, keep_alive=True, withheld=dict):
    """Keep ``clients`` connections busy for ``seconds``, longer by the time the server or
    the census waited for a core (``withheld()``: the server's waits so far, as
    ``harness.RunningServer.waits_for_a_core`` gives them); return how many got an answer."""
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n" + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n"
    selector = selectors.DefaultSelector()
    everyone = [_Client() for _ in range(clients)]
    window = Window(seconds, withheld)
    try:
        for client in everyone:
            connect(selector, client, address)
        waiting = clients
        while waiting and window.is_open():
            for key, events in selector.select(timeout=min(0.1, window.left())):
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


class Window:
    """``seconds`` from now, stretched by the longest time that a thread of the server
    (``withheld()``) or this thread waited for a core meanwhile, but never past ten times
    its length: a server kept from a core that long is not being measured. Once closed,
    it opens one last time, for no time, to read the answers that arrived while this
    thread waited."""

    def __init__(self, seconds, withheld):
        self.withheld = withheld
        self.waits_before = self.waits()
        self.began = time.monotonic()
        self.seconds = seconds
        self.deadline = self.began + seconds
        self.last_look_taken = False

    def waits(self):
        return {**self.withheld(), "census": this_thread_waited_for_a_core()}

    def is_open(self):
        if time.monotonic() < self.deadline:
            return True
        # The kernel is asked only at the deadline: each look reads a file per thread of the server.
        stretch = longest_new_wait(self.waits_before, self.waits())
        self.deadline = self.began + self.seconds + min(stretch, 9 * self.seconds)
        if time.monotonic() < self.deadline:
            return True
        if not self.last_look_taken:
            self.last_look_taken = True
            return True
        return False

    def left(self):
        return max(0.0, self.deadline - time.monotonic())


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
