"""Lesson 4, model 6: the same server on asyncio, the select loop written for you.

    python part3_concurrency/asyncio_server.py [module:app] [--threads N] [--host H] [--port P]

select_server.py wrote an event loop by hand. asyncio is this loop, written for you, in
the standard library; its pieces map one to one:

    select_server.py                         asyncio
    selector.select(), key.data(events)      the event loop (the same epoll or kqueue inside)
    Acceptor                                 loop.create_server()
    Client, on_ready, receive                a Protocol: connection_made, data_received, ...
    send_some, EVENT_WRITE                   transport.write() keeps what the socket does not take
    the outbox, until EVENT_WRITE            the outbox, until resume_writing() (see flush)
    SelectorMailbox's socket pair            loop.call_soon_threadsafe()
    check_deadlines once a second            a timer per client: loop.call_at(when, on_timer)
    request_stop and the mailbox's wake-up   loop.add_signal_handler()
    FileToSend on EVENT_WRITE                the same, on loop.add_writer() (see start_file)

What stays ours is what the select server's loop never decided either: the HTTP rules,
part 2's ``Connection``. The protocol below feeds it the bytes that arrived and carries
out its events, as every other server here does. A WSGI app blocks (it sleeps, queries,
computes), so it runs on a pool of threads, never in the loop: what an app's thread does
(its outbox, its file, posting back to the loop's mailbox) is loop_tools.py's
``LoopClient``, as in the select server. An app written with ``async def`` (ASGI, as
uvicorn serves) would run in the loop itself, and would have to ``await`` wherever it waits.

asyncio's own way to run a blocking call on a thread is ``await loop.run_in_executor(pool,
call)``. It wraps each call in two futures (one for the thread, one for the loop) and
chains them, and that machinery is Python code run for every request (docs/bench/tuning.md
has what it cost). So the pool runs the app, and the app's thread posts "done" back itself
to a ``Mailbox``, as in the select server, which ``call_soon_threadsafe`` wakes.
"""

import asyncio
import os
import signal
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import BACKLOG, CHUNK, count_option, grace_period, hold_stop_signals, log_close, run
from part2_wsgi.connection import NEED_DATA, Close, Send, State
from part2_wsgi.protocol import Request
from part2_wsgi.tcp import PROGRESS_LOOK, tune_accepted_socket, unacknowledged_bytes
from part3_concurrency.loop_tools import (
    DEFAULT_THREADS,
    HIGH_WATER,
    LoopClient,
    Mailbox,
    Phase,
    WorkerPool,
    environ_args,
    runs_the_app_in_the_loop,
)


class HTTPProtocol(asyncio.Protocol, LoopClient):
    """One client. asyncio calls the methods up to ``resume_writing`` when something happens
    on its connection; the app's thread calls LoopClient's."""

    def __init__(self, server):
        LoopClient.__init__(self, server, address=None)  # (connection_made tells the address)
        self.loop = server.loop
        self.timer = None  # rings at the next time the protocol names: see set_timer
        # What the client took: the bytes we gave the transport, less what it still holds.
        self.written = 0
        self.taken = 0  # as far as the protocol was told (took)
        self.file_fd = None  # our duplicate of the socket's descriptor while a file is sent

    def connection_made(self, transport):
        self.transport = transport
        self.address = transport.get_extra_info("peername")
        # asyncio turns Nagle's algorithm off only on a socket that says its protocol is
        # IPPROTO_TCP, and one accepted from socket.socket(AF_INET, SOCK_STREAM) says 0.
        # Left on, a file's last piece would wait 40 ms behind the head's acknowledgement.
        tune_accepted_socket(transport.get_extra_info("socket"), self.server.settings.send_buffer)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.server.clients.add(self)
        self.advance()

    def data_received(self, data):
        if self.phase is Phase.CLOSED:
            return
        self.http.receive_data(data)
        if self.phase is Phase.READING:
            self.advance()
        elif self.http.buffered_bytes > CHUNK:
            self.transport.pause_reading()  # the client pipelines too much: stop reading for now

    def eof_received(self):
        if self.phase is Phase.CLOSED:
            return False  # asyncio closes the transport
        self.http.receive_data(b"")
        if self.phase is Phase.READING:
            self.advance()
        return True  # the client is done sending; keep our side open, the answer may be on its way

    def connection_lost(self, error):
        if self.phase is not Phase.CLOSED:
            self.close(self.http.connection_lost(error or "closed the connection"))
        elif error is not None and not self.http.dropped:
            # The transport was sending the last of a response when the socket failed: the
            # protocol says whether the client had it all. (The transport has emptied its
            # buffer by now: what the client took is what we last saw, see note_progress.)
            log_close(self.address, self.http.connection_lost(error))
        if self.timer:
            self.timer.cancel()
        self.server.clients.discard(self)

    def resume_writing(self):
        self.flush()  # the transport has room again: give it what waits in the outbox

    # --- carrying out the protocol's events ------------------------------------------------

    def advance(self):
        """Carry out the protocol's events until it needs more bytes or the app has a request."""
        while self.phase is Phase.READING:
            event = self.http.next_event()
            if event is NEED_DATA:
                return self.set_timer()
            if isinstance(event, Request):
                self.phase = Phase.APP
                self.server.start_app(self.call_app, event)
            elif isinstance(event, Send):
                self.write(event.data)
            elif isinstance(event, Close):
                self.close(event)

    def close(self, event):
        """End the conversation. The transport sends what it holds first, then closes. If the
        client may still be sending, shut our side only, and read on as the protocol says
        (Connection.start_lingering says why): advance then goes on, lingering."""
        log_close(self.address, event)
        if event.linger and self.transport.can_write_eof():
            self.transport.write_eof()  # once what the transport holds is sent
            self.http.start_lingering()
            self.transport.resume_reading()
            return
        self.mark_closed()
        self.transport.close()
        self.set_timer()  # a client that takes nothing must not keep what the transport holds

    def mark_closed(self):
        LoopClient.mark_closed(self)
        self.stop_file()

    def write(self, data):
        """``transport.write``, counted: the transport sends at once what the socket takes."""
        self.transport.write(data)
        self.written += len(data)
        self.note_progress()
        if self.taken < self.written:
            self.set_timer()  # bytes wait for the client: its send deadline runs

    # --- what the app's thread posts: its bytes, its file, its end ----------------------------

    def flush(self):
        """Give the transport what the outbox holds; while the app still writes, only below the
        transport's high-water mark (resume_writing comes back then). After the outbox, the file."""
        full = self.phase is Phase.APP and self.transport.get_write_buffer_size() > HIGH_WATER
        if full or self.phase is Phase.CLOSED:
            return
        with self.lock:
            data, self.outbox = self.outbox, bytearray()
            self.drained.notify_all()
        if data:
            self.write(data)
        if self.file and self.file_fd is None:
            self.start_file()

    def start_file(self):
        """Send the file the app's thread handed over, a piece each time the socket is writable.

        Why not the loop's own ``loop.sendfile(transport, file)``? It waits until the
        transport's buffer is empty, then sends the whole file before it returns: no
        progress to see on the way, so the send deadline could only count the whole file.
        And ``loop.add_writer`` refuses a socket a transport owns; so we watch a duplicate
        of its descriptor, the same socket under a number of our own."""
        self.file_fd = os.dup(self.transport.get_extra_info("socket").fileno())
        self.loop.add_writer(self.file_fd, self.send_file_piece)
        self.set_timer()

    def send_file_piece(self):
        if self.transport.get_write_buffer_size():
            return  # the head first: the transport is still sending it
        try:
            taken = self.file.send_piece(self.file_fd)
        except OSError as error:
            return self.close(self.http.connection_lost(error))
        self.http.took(taken)
        if self.file.done:
            self.stop_file()

    def stop_file(self):
        """The file is sent, or the client is gone: stop watching, let the app's thread go on."""
        if self.file_fd is not None:
            self.loop.remove_writer(self.file_fd)
            os.close(self.file_fd)
            self.file_fd = None
        if self.file_sent():
            self.close(Close("the file ended before its Content-Length"))

    def app_done(self):
        """Back in the loop, after the app's last bytes were handed to the transport (and its
        file, if the app ran in the loop: see LoopClient.send_file_after_app)."""
        if self.phase is not Phase.APP:
            return  # closed meanwhile
        if self.file is not None and self.file.own:
            self.app_returned = True
            return
        self.phase = Phase.READING
        self.flush()  # the app's last bytes, if the transport was full: before anything said next
        self.http.end_connection()  # nothing to end, unless the response was left unfinished (a bug)
        self.transport.resume_reading()
        http = self.http
        if http.state is State.IDLE and not http.buffered_bytes and not http.client_done:
            self.set_timer()  # the usual case, said quicker than advance would: wait for the next request
        else:
            self.advance()  # a pipelined request may be waiting already, or a close

    # --- deadlines: the protocol says when, a timer keeps the time -------------------------

    @property
    def reading(self):
        """Whether the client's deadline for sending runs: while we read a request (part 4's
        server adds: while its app waits for the body)."""
        return self.phase is Phase.READING

    def set_timer(self):
        """Ring at the protocol's deadline while reading; and while bytes wait for the client,
        at its send deadline, or in a second to see what it acknowledged (on_timer)."""
        when = self.http.deadline() if self.reading else None
        if (send_deadline := self.http.send_deadline()) is not None:
            look = min(send_deadline, self.loop.time() + PROGRESS_LOOK)  # loop.time() is time.monotonic()
            when = look if when is None else min(when, look)
        if when is None or (self.timer and self.timer.when() <= when):
            return  # the timer set already rings first, and then looks again
        if self.timer:
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self.on_timer)

    def on_timer(self):
        """The select server's check_deadlines, for this client alone. A client receiving
        steadily may go many seconds without the socket taking more: what it acknowledged
        shows that it reads (Connection.unacknowledged)."""
        self.timer = None
        http, now = self.http, self.loop.time()
        self.note_progress()
        if http.send_deadline() is not None:
            http.unacknowledged(unacknowledged_bytes(self.transport.get_extra_info("socket")))
        deadline = http.deadline() if self.reading else None
        send_deadline = http.send_deadline()
        if deadline is not None and now >= deadline:
            http.deadline_passed()  # then next_event says what to do: a 408, or close
            self.advance()
        elif send_deadline is not None and now >= send_deadline:
            log_close(self.address, http.send_deadline_passed())
            self.mark_closed()
            self.transport.abort()
        else:
            self.set_timer()

    def note_progress(self):
        """Tell the protocol what the socket took since we last looked. The transport does
        the sending, so that is what we gave it less what it still holds. (Not the size of
        what it holds: the app's thread may refill it faster than a slow client reads, and
        the size would grow while the client takes megabytes.)"""
        taken = self.written - self.transport.get_write_buffer_size()
        if taken > self.taken:
            self.http.took(taken - self.taken)
            self.taken = taken


class AsyncioServer:
    def __init__(self, listener, app, settings):
        self.listener, self.app, self.settings = listener, app, settings
        self.app_in_loop = runs_the_app_in_the_loop(settings)
        self.workers = None  # started with the loop: see serve_forever
        self.environ_args = environ_args(settings, listener, multithread=not self.app_in_loop, multiprocess=False)
        self.sends_files = hasattr(os, "sendfile")
        self.clients = set()

    def start_app(self, call_app, request):
        """Gather the requests of this turn, for the workers to take in one go (see
        WorkerPool.dispatch): call_soon runs it after the callbacks of this turn. Files
        alone run in the loop (runs_the_app_in_the_loop)."""
        if self.app_in_loop:
            return call_app(request)
        if not self.workers.gathered:
            self.loop.call_soon(self.workers.dispatch)
        self.workers.gather(call_app, request)

    async def serve_forever(self):
        self.loop = asyncio.get_running_loop()
        # How the app's threads reach the loop: the select server's mailbox, woken by asyncio.
        self.mailbox = Mailbox(
            wake_loop=lambda: self.loop.call_soon_threadsafe(self.mailbox.run_posted),
            run_soon=lambda: self.loop.call_soon(self.mailbox.run_posted),  # a post from the loop's own thread
        )
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.loop.add_signal_handler(signum, stop.set)  # a flag and a wake-up, as request_stop
            except NotImplementedError:  # Windows' event loop has no signal handlers: the same by hand
                signal.signal(signum, lambda *_: self.loop.call_soon_threadsafe(stop.set))
        hold_stop_signals(False)  # the loop takes them now
        # A thread inherits the signals its starter holds, and so does every program it starts:
        # the app's threads begin here, once nothing is held (daemons: see WorkerPool).
        self.workers = None if self.app_in_loop else WorkerPool(self.settings.threads)
        server = await self.loop.create_server(lambda: HTTPProtocol(self), sock=self.listener, backlog=BACKLOG)
        await stop.wait()
        server.close()  # stop accepting: new clients are refused at once
        for _ in grace_period(lambda: any(c.busy or c.transport.get_write_buffer_size() for c in self.clients)):
            await asyncio.sleep(0.02)  # requests in flight may finish, for a while
        for client in list(self.clients):
            client.mark_closed()
            client.transport.abort()


def serve_forever(listener, app, settings):
    hold_stop_signals(True)  # a Ctrl-C now would stop asyncio half-way through building its loop
    asyncio.run(AsyncioServer(listener, app, settings).serve_forever())


if __name__ == "__main__":
    options = count_option("--threads", DEFAULT_THREADS, "worker threads that run the app")
    sys.exit(
        run("An asyncio WSGI server: asyncio's loop for I/O, a pool of threads for the app.", serve_forever, options)
    )
