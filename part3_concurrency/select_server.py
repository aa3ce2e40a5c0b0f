"""Lesson 4, model 4: one event loop over non-blocking sockets, with ``selectors``.

    python part3_concurrency/select_server.py [module:app] [--threads N] [--host H] [--port P]

Processes and threads each *wait* on one connection. An event loop waits on all of
them at once: ``selector.select()`` (epoll on Linux, kqueue on macOS) returns the
sockets that are ready, and the loop does just the work that will not block: read what
has arrived, write what the socket will take, accept a waiting client. No socket call
ever waits, so one thread holds thousands of connections, each costing only a small
object and its buffers. This is how nginx, Node.js and asyncio work.

The price: nothing in the loop may block. A socket read that would wait is never made,
because the selector said the data is there. But a WSGI app *does* block: it sleeps,
queries a database, computes. Run inside the loop, it freezes every connection
(``--threads 0`` does exactly that, to show it). So, as waitress does, the loop keeps
all socket I/O and hands each complete request to a small pool of worker threads
(``--threads N``, default 8); a worker runs the app, hands the response bytes back to
the loop, and wakes it.

Each connection keeps its own state: a RequestParser (part 2's, fed whatever arrived),
an outgoing buffer (``send`` may take only part of it; the rest waits for the socket to
be writable again), and what it is doing now: reading a request, waiting for the app,
or closing.
"""

if __name__ == "__main__":
    # Run by path (python part3_concurrency/select_server.py), Python puts this file's folder on sys.path, not the
    # repository's root: put the root there, so the imports below work with nothing installed.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import queue
import selectors
import signal
import socket
import sys
import threading
import time
from collections import deque

from part2_wsgi.protocol import CONTINUE, HTTPError, RequestParser, error_response
from part2_wsgi.server import disable_nagle
from part2_wsgi.serving import CHUNK, log_problem, log_request, non_negative_int, raise_open_file_limit, run
from part2_wsgi.wsgi import build_environ, run_app

KEEP_ALIVE_TIMEOUT = 5  # seconds an idle connection stays open between requests
READ_TIMEOUT = 10  # seconds a client may take to finish sending a request it has begun
LINGER = 1.0  # after we are done, seconds we read and discard what the client still sends
GRACE_PERIOD = 1.0  # on Ctrl-C, how long requests in flight may take to finish
DEFAULT_THREADS = 8
ACCEPTS_PER_WAKE = 64  # accept at most this many clients in one go, then serve the others
ACCEPT_PAUSE = 0.1  # seconds to stop accepting when out of file descriptors


class Connection:
    """Everything the loop knows about one client."""

    def __init__(self, sock, address):
        self.sock = sock
        self.address = address
        self.parser = RequestParser()
        self.outbox = bytearray()  # response bytes waiting for the socket to take them
        self.state = "reading"  # "reading" -> "app" -> "reading" ... -> "closing"
        self.keep_alive = True
        self.continue_sent = False
        self.last_active = time.monotonic()
        self.lock = threading.Lock()  # guards outbox while a worker thread writes to it
        self.events = 0  # what the selector watches this socket for (0: not registered)
        self.input_closed = False  # the client has sent all it will send (EOF)


def send_some(sock, outbox):
    """Send what a non-blocking socket takes now, and remove it from ``outbox``.

    Return True once the outbox is empty, False while bytes remain: the loop then waits
    for the selector to report the socket writable, and calls this again.

    ``send()`` on a non-blocking socket never waits. It may take only part of the
    bytes, because the kernel's buffer for this socket is full (the client reads more
    slowly than we write); we keep the rest, in order. If the buffer is completely full
    it takes nothing and raises BlockingIOError: not an error, just "not now". Any
    other OSError means the client has gone, and goes up to the caller, who closes.
    """
    if outbox:
        try:
            sent = sock.send(outbox)
        except BlockingIOError:
            sent = 0
        del outbox[:sent]
    return not outbox


class SelectServer:
    def __init__(self, listener, app, threads, host):
        self.listener = listener
        self.app = app
        self.server_address = (host, listener.getsockname()[1])
        self.selector = selectors.DefaultSelector()
        self.connections = set()
        # Worker threads cannot touch the selector safely; they post finished work here
        # and write a byte to this socket pair, which wakes select() at once.
        self.finished = deque()  # (connection, keep_alive) for each app call that is done
        self.to_flush = deque()  # connections a worker has added response bytes to
        self.wake_pending = False  # a wake-up byte is on its way: no need for another
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.wake_writer.setblocking(False)
        self.pool = WorkerPool(threads) if threads else None
        self.app_running_in_loop = False  # --threads 0: Ctrl-C must be able to interrupt it
        self.stopping = False
        self.last_sweep = time.monotonic()
        self.accept_paused_until = None  # set while out of descriptors: see accept_clients

    # --- the loop --------------------------------------------------------------------

    def serve_forever(self):
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_reader, selectors.EVENT_READ, "wake")
        try:
            while not self.stopping:
                self.run_once(timeout=1.0)
        except KeyboardInterrupt:
            pass  # Ctrl-C while the app ran inside the loop: see request_stop
        self.shut_down()

    def run_once(self, timeout):
        """One turn of the loop: wait for readiness, then do what will not block."""
        for key, events in self.selector.select(timeout):
            if key.data == "accept":
                self.accept_clients()
            elif key.data == "wake":
                self.drain_wakeups()
            else:
                connection = key.data
                if events & selectors.EVENT_WRITE:
                    self.on_writable(connection)
                if events & selectors.EVENT_READ and connection.state != "closed":
                    self.on_readable(connection)
        self.collect_finished_work()
        self.sweep_idle_connections()
        self.resume_accepting()

    def resume_accepting(self):
        if self.accept_paused_until and time.monotonic() >= self.accept_paused_until and not self.stopping:
            self.accept_paused_until = None
            self.selector.register(self.listener, selectors.EVENT_READ, "accept")

    def wake(self):
        """Called from other threads (and the signal handler) to interrupt select().

        Under load many workers finish while the loop is busy: one wake-up byte is enough
        for all of them, so a worker only sends one when none is pending."""
        if self.wake_pending:
            return
        self.wake_pending = True
        try:
            self.wake_writer.send(b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already: the loop will wake anyway

    def drain_wakeups(self):
        try:
            while self.wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass
        # Clear the flag only now that the bytes are read, and before the loop looks at
        # the finished work (run_once does that next): a worker that finishes from here
        # on sends a new byte, and one that finished earlier is in the queue already.
        self.wake_pending = False

    # --- accepting -----------------------------------------------------------------------

    def accept_clients(self):
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = self.listener.accept()
            except BlockingIOError:
                return  # nobody else is waiting
            except OSError as error:
                # Out of file descriptors (EMFILE), most likely. The client stays in the
                # backlog, so the listener stays readable: if we kept watching it, the
                # loop would spin, failing to accept as fast as it can. Look away for a
                # moment instead; closing connections will free descriptors meanwhile.
                log_problem(("server", "-"), f"cannot accept: {error.strerror}; pausing for {ACCEPT_PAUSE} s")
                self.selector.unregister(self.listener)
                self.accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            sock.setblocking(False)
            disable_nagle(sock)
            connection = Connection(sock, address)
            self.connections.add(connection)
            self.watch(connection, reading=True)

    # --- reading requests ------------------------------------------------------------------

    def on_readable(self, connection):
        try:
            data = connection.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as error:
            log_problem(connection.address, f"went away: {error}")
            return self.close(connection)
        connection.last_active = time.monotonic()
        if connection.state == "closing":  # reading only to discard, until the client closes
            if not data:
                self.close(connection)
            return
        if not data and connection.state == "app":
            # The client has sent all it will send, perhaps only half-closing its side
            # (as `printf ... | nc` does) while it waits for the answer: answer, then close.
            connection.input_closed = True
            return self.watch(connection, reading=False, writing=bool(connection.outbox))
        if not data:
            if connection.parser.has_partial_request:
                log_problem(connection.address, "went away: closed the connection in the middle of a request")
            return self.close(connection)
        connection.parser.feed(data)
        if connection.state == "reading":
            self.try_request(connection)
        elif len(connection.parser.buffer) > connection.parser.limits.max_head:
            # A client pipelining request after request while the app still works on the
            # first: stop reading until this response is out, so its bytes wait in the
            # kernel, not in our memory.
            self.watch(connection, reading=False, writing=bool(connection.outbox))

    def try_request(self, connection):
        """If a whole request has arrived, hand it to the app; else wait for more bytes."""
        try:
            request = connection.parser.next_request()
        except HTTPError as error:
            log_request(connection.address, None, error.status.value, 0)
            log_problem(connection.address, f"bad request: {error.status_line}: {error.detail}")
            # Answer and hang up: the stream cannot be trusted past a malformed request.
            # The state must say "closing" *before* anything is sent, or a finished send
            # would go back to parsing the rest of this broken request.
            connection.keep_alive = False
            with connection.lock:
                connection.outbox += error_response(error)
            return self.finish_response(connection)
        if request is None:
            waiting = connection.parser.waiting_for_body
            if waiting is not None and waiting.expects_continue and not connection.continue_sent:
                connection.continue_sent = True
                self.send(connection, CONTINUE)
            return
        connection.continue_sent = False
        connection.state = "app"
        # While the app runs we keep reading: a pipelined next request waits in the parser
        # (see on_readable), and the selector needs no change, which saves two system
        # calls a request.
        self.watch(connection, reading=True, writing=bool(connection.outbox))
        environ = build_environ(
            request, *self.server_address, *connection.address[:2], multithread=self.pool is not None
        )
        if self.pool is None:
            self.app_running_in_loop = True
            try:
                self.run_app(connection, request, environ)  # --threads 0: the whole loop waits
            finally:
                self.app_running_in_loop = False
            self.collect_finished_work()  # and sends the answer before anything else
        else:
            self.pool.submit(self.run_app, connection, request, environ)

    # --- running the app (in a worker thread, or in the loop with --threads 0) ---------

    def run_app(self, connection, request, environ):
        in_worker = self.pool is not None

        def send(data):
            with connection.lock:
                connection.outbox += data
            if in_worker:
                self.to_flush.append(connection)
                self.wake()  # the loop writes the outbox when it wakes

        try:
            response = run_app(self.app, environ, request, send)
            log_request(connection.address, request, response.status_code, response.bytes_sent)
            keep_alive = response.keep_alive
        except Exception as error:  # never let a worker die silently
            log_problem(connection.address, f"internal error: {error!r}")
            keep_alive = False
        self.finished.append((connection, keep_alive))
        if in_worker:
            self.wake()

    def collect_finished_work(self):
        while self.finished:
            connection, keep_alive = self.finished.popleft()
            if connection.state == "closed":
                continue
            connection.keep_alive = keep_alive and not connection.input_closed
            self.finish_response(connection)
        while self.to_flush:  # a streaming app's pieces, before the app is done
            connection = self.to_flush.popleft()
            if connection.outbox and connection.state != "closed":
                self.flush(connection)

    def finish_response(self, connection):
        """The app is done. Once the outbox drains: next request, or close."""
        connection.state = "reading" if connection.keep_alive else "closing"
        connection.last_active = time.monotonic()
        self.flush(connection)

    # --- writing ---------------------------------------------------------------------------

    def send(self, connection, data):
        with connection.lock:
            connection.outbox += data
        self.flush(connection)

    def flush(self, connection):
        """Write what the socket takes now; wait for writability if anything is left."""
        with connection.lock:
            try:
                pending = not send_some(connection.sock, connection.outbox)
            except OSError as error:
                log_problem(connection.address, f"went away: {error}")
                connection.outbox.clear()
                return self.close(connection)
        if pending:
            # Ask the selector to tell us when the socket has room again.
            return self.watch(connection, writing=True, reading=connection.state == "closing")
        self.response_written(connection)

    def on_writable(self, connection):
        connection.last_active = time.monotonic()
        self.flush(connection)

    def response_written(self, connection):
        if connection.state == "reading":
            self.watch(connection, reading=True)
            if connection.parser.has_partial_request:
                self.try_request(connection)  # a pipelined request may be waiting already
        elif connection.state == "closing":
            # Shut down our side so the client sees the end, then keep reading (and
            # discarding) until it closes too, so an unread body does not turn our
            # close into a reset that loses the response. See serving.close_gently.
            try:
                connection.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return self.close(connection)
            self.watch(connection, reading=True)
        elif connection.state == "app":  # a streaming app's piece is out; more to come
            reading = not connection.input_closed and len(connection.parser.buffer) <= connection.parser.limits.max_head
            self.watch(connection, reading=reading)

    def watch(self, connection, reading=False, writing=False):
        """Tell the selector what to watch this socket for; a system call only on change."""
        events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if writing else 0)
        if connection.state == "closed" or events == connection.events:
            return
        if not events:
            # The selector cannot hold a socket with no events: take it out until needed.
            self.selector.unregister(connection.sock)
        elif connection.events:
            self.selector.modify(connection.sock, events, connection)
        else:
            self.selector.register(connection.sock, events, connection)
        connection.events = events

    # --- closing -------------------------------------------------------------------------------

    def close(self, connection):
        if connection.state == "closed":
            return
        connection.state = "closed"
        if connection.events:
            self.selector.unregister(connection.sock)
        connection.sock.close()
        self.connections.discard(connection)

    def sweep_idle_connections(self):
        """Close connections that have been silent too long. Once a second is enough."""
        now = time.monotonic()
        if now - self.last_sweep < 1.0:
            return
        self.last_sweep = now
        for connection in list(self.connections):
            silent = now - connection.last_active
            if connection.state == "closing" and not connection.outbox and silent > LINGER:
                self.close(connection)
            elif connection.outbox and silent > READ_TIMEOUT:
                # A client that stops reading its response would hold it here forever.
                log_problem(connection.address, f"read nothing of its response for {READ_TIMEOUT} s: dropped")
                self.close(connection)
            elif connection.state == "reading" and not connection.outbox:
                limit = READ_TIMEOUT if connection.parser.has_partial_request else KEEP_ALIVE_TIMEOUT
                if silent > limit:
                    if connection.parser.has_partial_request:
                        log_problem(connection.address, f"sent part of a request, then nothing for {limit} s: dropped")
                    self.close(connection)

    def request_stop(self, signum=None, frame=None):
        """The signal handler: only set a flag and wake the loop (never real work here).

        With --threads 0 the loop may be stuck inside the app for a while, and would only
        see the flag afterwards: then we interrupt the app instead, as Ctrl-C does."""
        self.stopping = True
        self.wake()
        if self.app_running_in_loop:
            raise KeyboardInterrupt

    def shut_down(self):
        """Stop accepting; let requests in flight finish for a moment; close the rest."""
        if self.accept_paused_until is None:
            self.selector.unregister(self.listener)
        self.listener.close()
        deadline = time.monotonic() + GRACE_PERIOD
        while time.monotonic() < deadline and any(c.state == "app" or c.outbox for c in self.connections):
            self.run_once(timeout=0.05)
        for connection in list(self.connections):
            self.close(connection)
        # Worker threads still inside the app are daemon threads: they end with the process.


class WorkerPool:
    """A few threads that run jobs from a queue: the app runs here, never in the loop.

    Why not concurrent.futures.ThreadPoolExecutor? Its threads are joined when the
    interpreter exits, so Ctrl-C would wait for every app call still running (a
    /sleep?seconds=10, say). Ours are daemon threads: the grace period is ours to set.
    """

    def __init__(self, size):
        self.jobs = queue.SimpleQueue()
        for number in range(size):
            threading.Thread(target=self.work, name=f"app-{number}", daemon=True).start()

    def submit(self, function, *args):
        self.jobs.put((function, args))

    def work(self):
        while True:
            function, args = self.jobs.get()
            function(*args)


def serve_forever(listener, app, args):
    raise_open_file_limit()
    server = SelectServer(listener, app, args.threads, args.host)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, server.request_stop)
    server.serve_forever()


def add_options(parser):
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=DEFAULT_THREADS,
        help=f"worker threads that run the app (default {DEFAULT_THREADS}); "
        "0 runs it inside the loop, which stalls everyone",
    )


if __name__ == "__main__":
    sys.exit(
        run(
            "A selectors event-loop WSGI server: one thread for all I/O, a pool for the app.",
            serve_forever,
            add_options,
        )
    )
