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
    WorkerPool.run                           loop.run_in_executor(), or the pool and call_soon_threadsafe
    check_deadlines at every turn            loop.call_at(deadline, ...)
    request_stop and the mailbox's wake-up   loop.add_signal_handler()

What stays ours is what the select server's loop never decided either: the HTTP rules,
part 2's protocol ``Connection``. The protocol below feeds it the bytes that arrived and
carries out its events, as every other server here does. A WSGI app blocks (it sleeps,
queries, computes), so it runs on a pool of threads, never in the loop. An app written
with ``async def`` (ASGI, as uvicorn serves) would run in the loop itself, and would have
to ``await`` wherever it waits.

asyncio's own way to run a blocking call on a thread is ``await loop.run_in_executor(pool,
call)``. It wraps each call in two futures (one for the thread, one for the loop) and
chains them; measured with wrk (hello world, 100 connections, keep-alive), that machinery
cost a third of this server's throughput. So the pool runs the app, and the app's thread
posts "done" back itself with ``call_soon_threadsafe``: the select server's mailbox,
once more.
"""

import asyncio
import signal
import sys
import threading
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi import serving
from part2_wsgi.protocol import NEED_DATA, Close, Connection, Request, Send
from part2_wsgi.serving import BACKLOG, CHUNK, GRACE_PERIOD, LINGER, count_option, log_close, log_request, run
from part2_wsgi.wsgi import ClientDisconnected, build_environ, run_app
from part3_concurrency.loop_tools import WorkerPool
from part3_concurrency.select_server import DEFAULT_THREADS, HIGH_WATER


class HTTPProtocol(asyncio.Protocol):
    """One client. asyncio calls the methods up to ``resume_writing`` when something happens
    on its connection; asyncio turns Nagle's algorithm off by itself (TCP_NODELAY)."""

    def __init__(self, server):
        self.server, self.loop = server, server.loop
        self.http = Connection(deadlines=serving.deadlines)
        self.app_running = False
        self.closed = False  # the conversation is over: nothing more is read or written
        self.timer = None  # wakes us at the protocol's deadline
        self.watching_send = False  # a timer checks that a slow reader still takes its response
        # Backpressure: an app's thread waits while the client reads too slowly.
        self.room = threading.Condition()
        self.outgoing = []  # bytes the app handed over that the loop has not yet written
        self.queued = 0  # how many
        self.app_finished = False  # the app has returned: the loop is to call app_done
        self.posted = False  # hand_over is scheduled in the loop: no need to wake it again
        self.paused = False  # the transport holds more than its high-water mark

    def connection_made(self, transport):
        self.transport = transport
        self.address = transport.get_extra_info("peername")
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.server.clients.add(self)
        self.advance()

    def data_received(self, data):
        if self.closed:
            return  # closing gently: discard what comes, until the client closes too
        self.http.receive_data(data)
        if not self.app_running:
            self.advance()
        elif len(self.http.parser.buffer) > CHUNK:
            self.transport.pause_reading()  # the client pipelines too much: stop reading for now

    def eof_received(self):
        if self.closed:
            return False  # asyncio closes the transport
        self.http.receive_data(b"")
        if not self.app_running:
            self.advance()
        return True  # the client is done sending; keep our side open, the answer may be on its way

    def connection_lost(self, error):
        if not self.closed:
            self.close(self.http.connection_lost(error or "closed the connection"))
        if self.timer:
            self.timer.cancel()
        self.server.clients.discard(self)

    def pause_writing(self):
        with self.room:
            self.paused = True
        self.watch_sending()

    def resume_writing(self):
        with self.room:
            self.paused = False
            self.room.notify_all()

    # --- carrying out the protocol's events ------------------------------------------------

    def advance(self):
        """Carry out the protocol's events until it needs more bytes or the app has a request."""
        while not (self.app_running or self.closed):
            event = self.http.next_event()
            if event is NEED_DATA:
                return self.set_timer()
            if isinstance(event, Send):
                self.transport.write(event.data)
            elif isinstance(event, Request):
                self.app_running = True
                self.server.start_app(self.call_app, event)
            elif isinstance(event, Close):
                self.close(event)

    def close(self, event):
        """End the conversation. The transport sends what it holds first, then closes; if the
        client may still be sending, shut our side first and discard what comes for a moment
        (see serving.close_gently)."""
        log_close(self.address, event)
        self.mark_closed()
        if event.linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.resume_reading()
            self.loop.call_later(LINGER, self.transport.abort)
        else:
            self.transport.close()
        self.watch_sending()

    def mark_closed(self):
        with self.room:
            self.closed = True
            self.room.notify_all()  # an app's thread waiting to send: the client is gone

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
        if self.closed or self.app_running:
            return  # app_done sets the next timer
        if self.loop.time() >= self.http.deadline():
            self.http.deadline_passed()  # then next_event says what to do: a 408, or close
            self.advance()
        else:
            self.set_timer()  # the deadline moved on since the timer was set

    def watch_sending(self, size_then=None):
        """Drop a client that takes none of its response for ``deadlines.send`` seconds: each
        time this timer rings, the transport must hold less than it did the time before."""
        size = self.transport.get_write_buffer_size()
        if size == 0:
            self.watching_send = False  # all sent
        elif size_then is None and self.watching_send:
            return  # a timer runs already
        elif size_then is not None and size >= size_then:
            log_close(self.address, Close(f"took none of its response for {self.http.deadlines.send:g} s: dropped"))
            self.mark_closed()
            self.transport.abort()
        else:
            self.watching_send = True
            self.loop.call_later(self.http.deadlines.send, self.watch_sending, size)

    # --- the app: on a worker thread --------------------------------------------------------

    def call_app(self, request):
        environ = build_environ(request, client_address=self.address, **self.server.environ_args)
        try:
            response = run_app(self.server.app, environ, self.http, self.send_from_app)
            log_request(self.address, request, response.status_code, response.bytes_sent)
        except ClientDisconnected:
            pass  # the loop has closed the connection already
        finally:  # whatever happened, the connection goes back to the loop
            self.post(app_finished=True)

    def send_from_app(self, data):
        """The app's ``send``: only the loop touches the transport, so hand it the bytes.
        Above the high-water mark, wait for the client to read (as the select server does)."""
        with self.room:
            while (self.paused or self.queued > HIGH_WATER) and not self.closed:
                self.room.wait()
            if self.closed:
                raise ClientDisconnected("the client went away")
        self.post(data)

    def post(self, data=b"", app_finished=False):
        """From the app's thread: have the loop write ``data`` (and, once the app has
        returned, call app_done). Each call_soon_threadsafe wakes the loop with a system
        call; under load the loop has not yet run the last one, which takes these too
        (the select server's Mailbox does the same)."""
        with self.room:
            self.outgoing.append(data)
            self.queued += len(data)
            self.app_finished |= app_finished
            if self.posted:
                return
            self.posted = True
        self.loop.call_soon_threadsafe(self.hand_over)

    def hand_over(self):
        """In the loop: write what the app handed over, in order; then app_done, if it returned."""
        with self.room:
            data, finished = b"".join(self.outgoing), self.app_finished
            self.outgoing.clear()
            self.queued, self.app_finished, self.posted = 0, False, False
            self.room.notify_all()
        if data and not self.closed:
            self.transport.write(data)
        if finished:
            self.app_done()

    def app_done(self):
        """Back in the loop, after the app's last bytes were handed to the transport."""
        self.app_running = False
        if self.closed:
            return
        if self.http.request is not None:  # the response was never finished (a bug): end it
            self.http.end_connection()
        self.transport.resume_reading()
        self.advance()  # a pipelined request may be waiting already


class AsyncioServer:
    def __init__(self, listener, app, threads, host):
        self.listener, self.app = listener, app
        address = (host, listener.getsockname()[1])
        self.environ_args = dict(server_address=address, multithread=True, multiprocess=False)
        self.workers = WorkerPool(threads)  # daemon threads: see loop_tools.WorkerPool
        self.clients = set()

    def start_app(self, call_app, request):
        """Gather the requests of this turn, for the workers to take in one go (see
        WorkerPool.dispatch): call_soon runs it after the callbacks of this turn."""
        if not self.workers.gathered:
            self.loop.call_soon(self.workers.dispatch)
        self.workers.run(call_app, request)

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
        deadline = self.loop.time() + GRACE_PERIOD  # requests in flight may finish, for a while
        while self.loop.time() < deadline and any(
            c.app_running or c.transport.get_write_buffer_size() for c in self.clients
        ):
            await asyncio.sleep(0.02)
        for client in list(self.clients):
            client.mark_closed()
            client.transport.abort()


def serve_forever(listener, app, args):
    asyncio.run(AsyncioServer(listener, app, args.threads, args.host).serve_forever())


if __name__ == "__main__":
    options = count_option("--threads", DEFAULT_THREADS, "worker threads that run the app")
    sys.exit(
        run("An asyncio WSGI server: asyncio's loop for I/O, a pool of threads for the app.", serve_forever, options)
    )
