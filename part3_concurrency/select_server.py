"""Lesson 4, model 4: one event loop over non-blocking sockets, with ``selectors``.

    python part3_concurrency/select_server.py [module:app] [--threads N] [--host H] [--port P]

Processes and threads each *wait* on one connection. An event loop waits on all of them
at once: ``selector.select()`` (epoll on Linux, kqueue on macOS) returns the sockets that
are ready, and the loop does just the work that will not block: read what has arrived,
write what the socket will take, accept a waiting client. So one thread holds thousands
of connections, each costing a small object: nginx, Node.js and asyncio work so.

The price: nothing in the loop may block, but a WSGI app *does* block (it sleeps, queries,
computes); run inside the loop it freezes every connection (``--threads 0`` shows it).
So, as waitress does, the loop keeps all socket I/O and hands each request to a pool of
worker threads (``--threads N``), which post the response back: what an app's thread does
is loop_tools.py's ``LoopClient``, which the asyncio server shares. Each client's HTTP
rules are part 2's ``Connection``, which the loop feeds and obeys, as the others do.

A file an app returns in ``wsgi.file_wrapper`` goes out with ``os.sendfile``, a piece each
time the socket is writable (``FileToSend``): the kernel copies it, Python never sees it.
(A file of one block or less goes with the head, as any body: see ``Response.write_file``.)
"""

import os
import selectors
import signal
import socket
import sys
import time
from functools import partial
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import CHUNK, count_option, grace_period, log_close, run
from part2_wsgi.connection import NEED_DATA, Close, Send
from part2_wsgi.connection_handler import send
from part2_wsgi.protocol import Request
from part2_wsgi.tcp import tune_accepted_socket, unacknowledged_bytes
from part2_wsgi.wsgi import ClientDisconnected
from part3_concurrency.loop_tools import (
    DEFAULT_THREADS,
    HIGH_WATER,
    Acceptor,
    LoopClient,
    Phase,
    SelectorMailbox,
    WorkerPool,
    environ_args,
    runs_the_app_in_the_loop,
    serves_one_client_at_a_time,
)


class Client(LoopClient):
    """One client: its socket, and what LoopClient shares with the app's thread."""

    def __init__(self, sock, address, server):
        super().__init__(server, address)
        tune_accepted_socket(sock, server.settings.send_buffer)
        self.sock = sock
        self.on_ready = partial(server.on_ready, self)  # the selector key's data: called when the socket is ready
        self.linger = False  # once closing: shut our side, and read on for a moment (Connection.start_lingering)
        self.events = 0  # what the selector watches this socket for (0: not registered)

    def send_from_app(self, data):
        """With ``--threads 0`` the loop runs the app and cannot wait for itself: above the
        high-water mark it sends the outbox as a blocking server does, nobody else meanwhile."""
        if not self.server.workers and len(self.outbox) > HIGH_WATER:
            waiting, self.outbox = self.outbox, bytearray()
            try:
                send(self.sock, self.http, waiting)
            except (OSError, ClientDisconnected) as error:
                self.server.close(self, self.http.connection_lost(error))
        super().send_from_app(data)


def send_some(sock, outbox):
    """Send what a non-blocking socket takes now, remove it from ``outbox``, return how much.

    ``send()`` on a non-blocking socket never waits. It may take only part of the bytes,
    when the kernel's buffer for this socket fills up (the client reads more slowly than
    we write): we keep the rest, in order, for when the selector says "writable" again.
    With the buffer full it takes nothing and raises BlockingIOError: not an error, "not now"."""
    try:
        sent = sock.send(outbox)
    except BlockingIOError:
        return 0
    del outbox[:sent]
    return sent


class SelectServer:
    multiprocess = False  # other processes serve beside this one? (True in prefork_server.py)

    def __init__(self, listener, app, settings):
        self.app, self.settings = app, settings
        self.selector = selectors.DefaultSelector()
        self.acceptor = Acceptor(self.selector, listener, self.add_client)
        self.mailbox = SelectorMailbox(self.selector)  # how workers and signal handlers reach the loop
        self.app_in_loop = runs_the_app_in_the_loop(settings)
        self.workers = None if self.app_in_loop else WorkerPool(settings.threads)
        self.sends_at_once = not self.app_in_loop or serves_one_client_at_a_time(settings)  # LoopClient.call_app
        self.environ_args = environ_args(settings, listener, bool(self.workers), self.multiprocess)
        self.sends_files = hasattr(os, "sendfile")
        self.clients = set()
        self.app_running_in_loop = False  # --threads 0: Ctrl-C must be able to interrupt it
        self.stopping, self.next_check = False, 0.0  # next_check: when to look at the deadlines again

    # --- the loop: wait for readiness, then call what the ready socket's key holds ----------

    def serve_forever(self, signals=(signal.SIGINT, signal.SIGTERM)):
        for signum in signals:
            signal.signal(signum, self.request_stop)
        try:
            while not self.stopping:
                self.run_once(timeout=1.0)
        except KeyboardInterrupt:
            pass  # Ctrl-C while the app ran inside the loop: see request_stop
        self.shut_down()

    def run_once(self, timeout):
        for key, events in self.selector.select(0 if self.mailbox.posted else timeout):  # (see Mailbox.post)
            key.data(events)
        self.mailbox.run_posted()  # what the workers finished meanwhile
        if time.monotonic() >= self.next_check:  # deadlines count in seconds: a look a second will do
            self.every_second()
        if self.workers:
            self.workers.dispatch()  # the requests this turn started: see WorkerPool.dispatch

    def add_client(self, sock, address):
        client = Client(sock, address, self)
        self.clients.add(client)
        self.watch(client)

    def on_ready(self, client, events):
        if events & selectors.EVENT_WRITE:
            self.flush(client)
        if events & selectors.EVENT_READ and client.phase is not Phase.CLOSED:
            self.receive(client)

    def receive(self, client):
        try:
            data = client.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as error:
            return self.close(client, client.http.connection_lost(error))
        client.http.receive_data(data)
        if client.phase is Phase.READING:
            self.advance(client)
        else:  # the app has the request: watch() stops reading if the client closed or pipelines too much
            self.watch(client)

    def advance(self, client):
        """Carry out the protocol's events until it needs more bytes or the app has a request."""
        while client.phase is Phase.READING:
            event = client.http.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, Send):
                with client.lock:
                    client.outbox += event.data
            elif isinstance(event, Request):
                self.start_app(client, event)
            elif isinstance(event, Close):
                log_close(client.address, event)
                client.phase, client.linger = Phase.CLOSING, event.linger
        if client.phase is not Phase.APP or self.sends_at_once:
            self.flush(client)

    def start_app(self, client, request):
        client.phase = Phase.APP
        if self.workers:
            return self.workers.gather(client.call_app, request)
        self.app_running_in_loop = True
        try:
            client.call_app(request)  # --threads 0: the whole loop waits for the app
        finally:
            self.app_running_in_loop = False

    # --- back from the app (LoopClient runs it, in a worker thread or with --threads 0 in the loop) ---

    def app_done(self, client):
        if client.phase is Phase.APP:
            client.http.end_connection()  # nothing to end, unless the response was left unfinished (a bug)
            client.phase = Phase.READING
            self.advance(client)  # a pipelined request may be waiting already

    def flush(self, client):
        """Write what the socket takes now, the outbox first, then a file; let a waiting
        worker go on once below the mark, or once its file is sent."""
        if (client.outbox or client.file) and client.phase is not Phase.CLOSED:
            with client.lock:
                was_full = len(client.outbox) > HIGH_WATER
                try:
                    sent = send_some(client.sock, client.outbox)
                    if client.file and not client.outbox:
                        sent += client.file.send_piece(client.sock.fileno())
                except OSError as error:
                    return self.close(client, client.http.connection_lost(error))
                client.http.took(sent)  # the client reads: its send deadline starts again
                if client.file and client.file.done and client.file_sent():
                    return self.close(client, Close("the file ended before its Content-Length"))
                elif was_full and len(client.outbox) <= HIGH_WATER:
                    client.drained.notify_all()
        if client.phase is Phase.CLOSING and not client.outbox:
            return self.finish_closing(client)
        self.watch(client)

    def watch(self, client):
        """Tell the selector what to watch this socket for, from its state (a system call on change)."""
        http = client.http
        reading = client.phase is Phase.READING or (
            client.phase is Phase.APP and not http.client_done and http.buffered_bytes <= CHUNK
        )
        writing = client.outbox or client.file
        events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if writing else 0)
        if client.phase is Phase.CLOSED or events == client.events:
            return
        if not events:
            self.selector.unregister(client.sock)  # a selector cannot hold a socket with no events
        elif client.events:
            self.selector.modify(client.sock, events, client.on_ready)
        else:
            self.selector.register(client.sock, events, client.on_ready)
        client.events = events

    def finish_closing(self, client):
        """The last response is out. If the client may still be sending, shut down our side, and
        read on as the protocol says (Connection.start_lingering says why); else close."""
        if not client.linger:
            return self.close(client)
        try:
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the client is gone already
            return self.close(client)
        client.http.start_lingering()
        client.phase, client.linger = Phase.READING, False
        self.advance(client)

    def close(self, client, close=Close()):
        log_close(client.address, close)
        if client.phase is Phase.CLOSED:
            return
        client.mark_closed()
        if client.events:
            self.selector.unregister(client.sock)
        client.sock.close()
        self.clients.discard(client)

    def every_second(self):
        """What the loop looks at once a second: the deadlines, and an acceptor's pause."""
        now = time.monotonic()
        self.next_check = now + 1.0
        self.check_deadlines(now)
        if not self.stopping:
            self.acceptor.resume_if_due(now)

    def check_deadlines(self, now):
        """Carry out the protocol's deadlines: for what a client sends, and for what it takes."""
        for client in list(self.clients):
            http = client.http
            if http.send_deadline() is not None:  # bytes wait for the client: has it received more?
                http.unacknowledged(unacknowledged_bytes(client.sock))
            send_deadline = http.send_deadline()  # None while nothing waits for the client
            if client.phase is Phase.READING and now > http.deadline():
                http.deadline_passed()
                self.advance(client)
            elif send_deadline is not None and client.phase is not Phase.CLOSED and now > send_deadline:
                self.close(client, http.send_deadline_passed())

    def request_stop(self, signum=None, frame=None):
        """The signal handler: only set a flag and wake the loop (never real work here). With
        --threads 0 the loop may be stuck in the app: then interrupt it, as Ctrl-C does."""
        self.stopping = True
        self.mailbox.wake_loop()
        if self.app_running_in_loop:
            raise KeyboardInterrupt

    def shut_down(self):
        """Stop accepting, let requests in flight finish a moment, close the rest (workers are daemons)."""
        self.acceptor.close()
        for _ in grace_period(lambda: any(client.busy for client in self.clients)):
            self.run_once(timeout=0.05)
        for client in list(self.clients):
            self.close(client)
        self.mailbox.close()
        self.selector.close()


def serve_forever(listener, app, settings):
    SelectServer(listener, app, settings).serve_forever()


if __name__ == "__main__":
    options = count_option("--threads", DEFAULT_THREADS, "worker threads that run the app; 0 runs it in the loop", 0)
    description = "A selectors event-loop WSGI server: one thread for I/O, a pool for the app."
    sys.exit(run(description, serve_forever, options, one_at_a_time=serves_one_client_at_a_time))
