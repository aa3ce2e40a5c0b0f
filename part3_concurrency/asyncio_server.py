"""Lesson 4, model 6: the same server on asyncio, the select loop written for you.

    python part3_concurrency/asyncio_server.py [module:app] [--threads N] [--host H] [--port P]

select_server.py wrote an event loop by hand. asyncio is this loop, written for you, in
the standard library; its pieces map one to one:

    select_server.py                         asyncio
    selector.select(), key.data(events)      the event loop (the same epoll or kqueue inside)
    Acceptor                                 loop.create_server()
    Client, on_ready, receive                a Protocol: connection_made, data_received, ...
    outbox, send_some, EVENT_WRITE           transport.write() keeps what the socket does not take
    HIGH_WATER, drained.wait()               pause_writing() and resume_writing()
    Mailbox.post                             loop.call_soon_threadsafe()
    WorkerPool.gather                        loop.run_in_executor(), or the pool and call_soon_threadsafe
    check_deadlines once a second            loop.call_at(deadline, ...)
    request_stop and the mailbox's wake-up   loop.add_signal_handler()
    FileToSend on EVENT_WRITE                the same, on loop.add_writer() (see start_file)

What stays ours is what the select server's loop never decided either: the HTTP rules,
part 2's protocol ``Connection``. The protocol below feeds it the bytes that arrived and
carries out its events, as every other server here does. A WSGI app blocks (it sleeps,
queries, computes), so it runs on a pool of threads, never in the loop. An app written
with ``async def`` (ASGI, as uvicorn serves) would run in the loop itself, and would have
to ``await`` wherever it waits.

asyncio's own way to run a blocking call on a thread is ``await loop.run_in_executor(pool,
call)``. It wraps each call in two futures (one for the thread, one for the loop) and
chains them, and that machinery is Python code run for every request (docs/bench/tuning.md
has what it cost). So the pool runs the app, and the app's thread posts "done" back itself
with ``call_soon_threadsafe``: the select server's mailbox, once more.
"""

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import BACKLOG, CHUNK, count_option, grace_period, log_close, log_request, run
from part2_wsgi.connection import NEED_DATA, Close, Connection, Send
from part2_wsgi.protocol import Request
from part2_wsgi.tcp import PROGRESS_LOOK, tune_accepted_socket, unacknowledged_bytes
from part2_wsgi.wsgi import ClientDisconnected, build_environ, run_app
from part3_concurrency.loop_tools import FileToSend, Phase, WorkerPool
from part3_concurrency.select_server import DEFAULT_THREADS, HIGH_WATER


class HTTPProtocol(asyncio.Protocol):
    """One client. asyncio calls the methods up to ``resume_writing`` when something happens
    on its connection."""

    def __init__(self, server):
        self.server, self.loop = server, server.loop
        self.http = Connection(deadlines=server.settings.deadlines)
        self.phase = Phase.READING  # as the select server's clients: who has the connection now
        self.timer = None  # wakes us at the protocol's deadline
        self.send_timer = None  # wakes us at the send deadline, while the transport holds bytes
        # The hand-over from the app's thread to the loop, and backpressure: the app's thread
        # waits while the client reads too slowly.
        self.handover = threading.Condition()
        self.outgoing = []  # bytes the app handed over that the loop has not yet written
        self.queued = 0  # how many
        self.app_finished = False  # the app has returned: the loop is to call app_done
        self.posted = False  # hand_over is scheduled in the loop: no need to wake it again
        self.paused = False  # the transport holds more than its high-water mark
        # What the client took: the bytes we gave the transport, less what it still holds.
        self.written = 0
        self.taken = 0  # as far as the protocol was told (sent_some)
        self.file = None  # a FileToSend the app's thread handed over, and waits for
        self.file_fd = None  # our duplicate of the socket's descriptor while it is sent

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
        for timer in (self.timer, self.send_timer):
            if timer:
                timer.cancel()
        self.server.clients.discard(self)

    def pause_writing(self):
        with self.handover:
            self.paused = True
        self.watch_sending()

    def resume_writing(self):
        self.note_progress()
        with self.handover:
            self.paused = False
            self.handover.notify_all()

    # --- carrying out the protocol's events ------------------------------------------------

    def advance(self):
        """Carry out the protocol's events until it needs more bytes or the app has a request."""
        while self.phase is Phase.READING:
            event = self.http.next_event()
            if event is NEED_DATA:
                return self.set_timer()
            if isinstance(event, Send):
                self.write(event.data)
            elif isinstance(event, Request):
                self.phase = Phase.APP
                self.server.start_app(self.call_app, event)
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
        self.watch_sending()  # a client that takes nothing must not keep what the transport holds

    def write(self, data):
        """``transport.write``, counted: the transport sends at once what the socket takes."""
        self.transport.write(data)
        self.written += len(data)
        self.note_progress()
        self.watch_sending()

    def mark_closed(self):
        self.stop_file()
        with self.handover:
            self.phase = Phase.CLOSED
            self.handover.notify_all()  # an app's thread waiting to send: the client is gone

    # --- deadlines: the protocol says when, a timer keeps the time -------------------------

    def set_timer(self):
        deadline = self.http.deadline()
        if deadline is None or (self.timer and self.timer.when() <= deadline):
            return  # the timer set already rings first, and then looks again
        if self.timer:
            self.timer.cancel()
        self.timer = self.loop.call_at(deadline, self.on_timer)  # loop.time() is time.monotonic()

    def on_timer(self):
        self.timer = None
        if self.phase is not Phase.READING:
            return  # app_done sets the next timer
        if self.loop.time() >= self.http.deadline():
            self.http.deadline_passed()  # then next_event says what to do: a 408, or close
            self.advance()
        else:
            self.set_timer()  # the deadline moved on since the timer was set

    def note_progress(self):
        """Tell the protocol what the socket took since we last looked. The transport does
        the sending, so that is what we gave it less what it still holds. (Not the size of
        what it holds: the app's thread may refill it faster than a slow client reads, and
        the size would grow while the client takes megabytes.)"""
        taken = self.written - self.transport.get_write_buffer_size()
        if taken > self.taken:
            self.http.took(taken - self.taken)
            self.taken = taken

    def watch_sending(self):
        """While bytes wait for the client, look again at the protocol's send deadline, and at
        least once a second at what the client acknowledged (see check_sending)."""
        deadline = self.http.send_deadline()
        if deadline is not None and self.send_timer is None:
            look = min(deadline, self.loop.time() + PROGRESS_LOOK)
            self.send_timer = self.loop.call_at(look, self.check_sending)

    def check_sending(self):
        """A client receiving steadily may go many seconds without the socket taking more:
        what it acknowledged shows that it reads (Connection.unacknowledged)."""
        self.send_timer = None
        self.note_progress()
        self.http.unacknowledged(unacknowledged_bytes(self.transport.get_extra_info("socket")))
        deadline = self.http.send_deadline()
        if deadline is not None and self.loop.time() >= deadline:
            log_close(self.address, self.http.send_deadline_passed())
            self.mark_closed()
            self.transport.abort()
        else:
            self.watch_sending()

    # --- a file, with os.sendfile on writable events ------------------------------------------

    def start_file(self):
        """Send the file the app's thread handed over, a piece each time the socket is writable.

        Why not the loop's own ``loop.sendfile(transport, file)``? It waits until the
        transport's buffer is empty, then sends the whole file before it returns: no
        progress to see on the way, so the send deadline could only count the whole file.
        And ``loop.add_writer`` refuses a socket a transport owns; so we watch a duplicate
        of its descriptor, the same socket under a number of our own."""
        self.file_fd = os.dup(self.transport.get_extra_info("socket").fileno())
        self.loop.add_writer(self.file_fd, self.send_file_piece)
        self.watch_sending()

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
        with self.handover:
            self.file = None
            self.handover.notify_all()

    # --- the app: on a worker thread --------------------------------------------------------

    def call_app(self, request):
        environ = build_environ(request, client_address=self.address, **self.server.environ_args)
        try:
            send_file = self.send_file_from_app if hasattr(os, "sendfile") else None
            response = run_app(self.server.app, environ, self.http, self.send_from_app, send_file)
            if self.server.settings.access_log:
                log_request(self.address, request, response.status_code, response.bytes_sent)
        except ClientDisconnected:
            pass  # the loop has closed the connection already
        finally:  # whatever happened, the connection goes back to the loop
            self.post(app_finished=True)

    def send_from_app(self, data):
        """The app's ``send``: only the loop touches the transport, so hand it the bytes.
        Above the high-water mark, wait for the client to read (as the select server does)."""
        with self.handover:
            while (self.paused or self.queued > HIGH_WATER) and self.phase is not Phase.CLOSED:
                self.handover.wait()
            if self.phase is Phase.CLOSED:
                raise ClientDisconnected("the client went away")
        self.post(data)

    def send_file_from_app(self, file, offset, count):
        """The app's ``send_file``: hand the file to the loop (start_file), after the bytes
        handed over before it, and wait until it is sent or the client is gone."""
        return FileToSend(file, offset, count).hand_over(self, self.handover, self.post)

    def post(self, data=b"", app_finished=False):
        """From the app's thread: have the loop write ``data`` (and, once the app has
        returned, call app_done). Each call_soon_threadsafe wakes the loop with a system
        call; under load the loop has not yet run the last one, which takes these too
        (the select server's Mailbox does the same)."""
        with self.handover:
            self.outgoing.append(data)
            self.queued += len(data)
            self.app_finished |= app_finished
            if self.posted:
                return
            self.posted = True
        self.loop.call_soon_threadsafe(self.hand_over)

    def hand_over(self):
        """In the loop: write what the app handed over, in order; then app_done, if it returned."""
        with self.handover:
            data, finished, file = b"".join(self.outgoing), self.app_finished, self.file
            self.outgoing.clear()
            self.queued, self.app_finished, self.posted = 0, False, False
            self.handover.notify_all()
        if data and self.phase is not Phase.CLOSED:
            self.write(data)
        if file and self.file_fd is None and self.phase is not Phase.CLOSED:
            self.start_file()
        if finished:
            self.app_done()

    def app_done(self):
        """Back in the loop, after the app's last bytes were handed to the transport."""
        if self.phase is not Phase.APP:
            return  # closed meanwhile
        self.phase = Phase.READING
        self.http.end_connection()  # nothing to end, unless the response was left unfinished (a bug)
        self.transport.resume_reading()
        self.advance()  # a pipelined request may be waiting already


class AsyncioServer:
    def __init__(self, listener, app, settings):
        self.listener, self.app, self.settings = listener, app, settings
        address = (settings.host, listener.getsockname()[1])
        self.environ_args = dict(server_address=address, multithread=True, multiprocess=False)
        self.workers = WorkerPool(settings.threads)  # daemon threads: see loop_tools.WorkerPool
        self.clients = set()

    def start_app(self, call_app, request):
        """Gather the requests of this turn, for the workers to take in one go (see
        WorkerPool.dispatch): call_soon runs it after the callbacks of this turn."""
        if not self.workers.gathered:
            self.loop.call_soon(self.workers.dispatch)
        self.workers.gather(call_app, request)

    async def serve_forever(self):
        self.loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.loop.add_signal_handler(signum, stop.set)  # a flag and a wake-up, as request_stop
            except NotImplementedError:  # Windows' event loop has no signal handlers: the same by hand
                signal.signal(signum, lambda *_: self.loop.call_soon_threadsafe(stop.set))
        server = await self.loop.create_server(lambda: HTTPProtocol(self), sock=self.listener, backlog=BACKLOG)
        await stop.wait()
        server.close()  # stop accepting: new clients are refused at once
        for _ in grace_period(self.busy):  # requests in flight may finish, for a while
            await asyncio.sleep(0.02)
        for client in list(self.clients):
            client.mark_closed()
            client.transport.abort()

    def busy(self):
        return any(c.phase is Phase.APP or c.file or c.transport.get_write_buffer_size() for c in self.clients)


def serve_forever(listener, app, settings):
    asyncio.run(AsyncioServer(listener, app, settings).serve_forever())


if __name__ == "__main__":
    options = count_option("--threads", DEFAULT_THREADS, "worker threads that run the app")
    sys.exit(
        run(
            "An asyncio WSGI server: asyncio's loop for I/O, a pool of threads for the app.",
            serve_forever,
            options,
            serves_others_meanwhile=True,
        )
    )
