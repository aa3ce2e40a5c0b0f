"""The machinery an event loop needs besides its idea: where a client stands and what its
app's thread does, a mailbox, a worker pool, an acceptor; for the select and the asyncio
servers both.

The loop owns every socket, and no other thread may touch the selector (or asyncio's
transports). So a worker that has finished (or a signal handler that wants the loop to
stop) does not act itself: it *posts* a callback to the loop's ``Mailbox`` and wakes the
loop, which runs the callback on its own thread at its next turn. gunicorn's gthread
worker has its twin, ``PollableMethodQueue``: a queue of callbacks, and a pipe that wakes
the worker's selector.

A ``LoopClient`` is one client as the loop and its app's thread share it: the app's
thread fills its outbox (or hands over a ``FileToSend``, a file the loop sends with
``os.sendfile``) and posts; the loop sends. The ``Acceptor`` accepts clients for the
select loop, and survives running out of descriptors.
"""

import os
import queue
import selectors
import socket
import threading
import time
import traceback
from collections import deque
from enum import Enum

from part2_wsgi.command_line import ACCEPT_PAUSE, SHORTAGES, log_problem, log_request, serves_files_only
from part2_wsgi.connection import Connection
from part2_wsgi.wsgi import ClientDisconnected, build_environ, run_app

DEFAULT_THREADS = 8  # worker threads that run the app
HIGH_WATER = 1024 * 1024  # response bytes a client may have waiting before the app must wait too


def runs_the_app_in_the_loop(settings):
    """``--threads 0``, or files alone (``--files DIR`` without an APP): the loop runs the app.

    The files app never waits on a client or a lock, and a small file costs it a few system
    calls: less than handing it to a worker thread and back, where every system call of the
    worker gives the GIL to the loop and takes it back (docs/bench/tuning.md). Its one wait
    is reading a file the page cache lacks (nginx has ``aio threads`` for that); a large
    file goes out after the app has returned (``LoopClient.send_file_after_app``), which
    needs ``os.sendfile``: without it, files are read and sent by the worker threads."""
    return settings.threads == 0 or (serves_files_only(settings) and hasattr(os, "sendfile"))


def serves_one_client_at_a_time(settings):
    """An app in the loop that is not the files app waits while one client takes what it
    sends: for the send deadline's sake, such a server serves one client at a time
    (command_line.run gives it the short one)."""
    return settings.threads == 0 and not serves_files_only(settings)


class Phase(Enum):
    """Where one client of an event loop stands. (Its HTTP rules stand in its ``Connection``:
    this is only who has the connection now, the loop or the app.)"""

    READING = "reading"  # the protocol wants bytes: a request, or what a lingering client still sends
    APP = "the app has the request"  # a worker runs it; we keep reading, to see the client leave
    CLOSING = "closing"  # the last bytes are going out; then close, or linger
    CLOSED = "closed"  # nothing more is read or written


class FileToSend:
    """A file an event loop sends with ``os.sendfile()``, a piece each time the socket is
    writable, keeping the offset: the kernel hands the file's pages to the socket, and
    Python never sees the bytes. The app's thread hands it to the loop and waits until
    ``done`` (``LoopClient.send_file_from_app``): the file stays open until then, and the
    next response cannot overtake it."""

    def __init__(self, file, offset, count, own=False):
        self.fd, self.offset, self.left = file.fileno(), offset, count
        if own:  # the loop's own descriptor of the file: the app's close() leaves it open
            self.fd = os.dup(self.fd)
        self.own = own
        self.sent = 0
        self.done = not count  # all sent, or the file ended first

    @property
    def ended_early(self):
        return self.done and self.left > 0

    def close(self):
        if self.own and self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def send_piece(self, sock_fd):
        """Send what the non-blocking socket takes now; return how much (0: not now)."""
        try:
            taken = os.sendfile(sock_fd, self.fd, self.offset, self.left)
        except BlockingIOError:
            return 0  # the socket's buffer is full: wait for the next writable event
        self.offset, self.left, self.sent = self.offset + taken, self.left - taken, self.sent + taken
        self.done = not self.left or not taken  # (nothing taken from a writable socket: the file ended)
        return taken


class LoopClient:
    """One client of an event loop, where the loop and the app's thread meet.

    Only the loop touches the socket. The app runs on a worker thread (``call_app``); what
    it sends goes into the ``outbox``, a file into ``file``, and the thread posts the loop's
    ``flush`` to the mailbox: the loop sends. A thread whose client reads slowly waits
    (``drained``) while the outbox is above the high-water mark, so a streaming app cannot
    pile up its whole output in our memory; once the client is gone, the wait ends in
    ClientDisconnected (as waitress's ``write_soon`` does). When the app returns, the thread
    posts ``app_done``: the connection is the loop's again.

    ``server`` holds what every request needs: ``app``, ``settings``, ``mailbox``,
    ``environ_args`` and ``sends_files``; and, in the select server, the loop's side:
    ``flush(client)`` and ``app_done(client)``. asyncio's protocol has its own."""

    # The app ran in the loop and returned; its file is still on its way. (A class default:
    # an idle connection's object stays as small as it was, a few hundred bytes.)
    app_returned = False

    def __init__(self, server, address):
        self.server, self.address = server, address
        self.http = Connection(deadlines=server.settings.deadlines)
        self.phase = Phase.READING
        self.outbox = bytearray()  # response bytes waiting for the socket to take them
        self.file = None  # a FileToSend, once the outbox is empty: the app's thread waits for it
        self.lock = threading.RLock()  # the app's thread adds to the outbox while the loop sends from it
        self.drained = threading.Condition(self.lock)  # the app's thread waits here for the loop

    def call_app(self, request):
        """On a worker thread: run the app for ``request``, then hand the connection back.

        Or in the loop (``runs_the_app_in_the_loop``): the same posts, which the loop runs at
        the end of its turn. The files app's responses wait in the outbox until then, and the
        responses of one turn go out together, as the workers' do: sent as each app returns,
        each would wake its client in the middle of the turn, and a client woken on the
        loop's core takes it from the loop (docs/bench/tuning.md has what this was measured
        to save). An app that may wait (``--threads 0``) has each response sent as soon as
        it returns: the next client's request may take seconds."""
        server = self.server
        environ = build_environ(request, client_address=self.address, **server.environ_args)
        send_file = self.send_file_from_app if server.sends_files else None
        try:
            response = run_app(server.app, environ, self.http, self.send_from_app, send_file)
            if server.settings.access_log:
                log_request(self.address, request, response.status_code, response.bytes_sent)
        except ClientDisconnected:
            pass  # the loop has closed the connection already
        finally:  # whatever happened, the connection goes back to the loop: never left without an owner
            server.mailbox.post(self.app_done)

    def send_from_app(self, data):
        """The app's ``send``: add to the outbox, and let the loop write it."""
        with self.lock:
            while len(self.outbox) > HIGH_WATER and self.phase is not Phase.CLOSED:
                self.drained.wait()
            if self.phase is Phase.CLOSED:
                raise ClientDisconnected("the client went away")
            self.outbox += data
        self.server.mailbox.post(self.flush)

    def send_file_from_app(self, file, offset, count):
        """The app's ``send_file``: the loop sends the file after the outbox; wait until it is
        sent or the client is gone, and return how many bytes were sent."""
        if self.server.app_in_loop:
            return self.send_file_after_app(file, offset, count)
        to_send = FileToSend(file, offset, count)
        with self.lock:
            if self.phase is Phase.CLOSED:
                raise ClientDisconnected("the client went away")
            self.file = to_send
        self.server.mailbox.post(self.flush)
        with self.lock:
            while self.file is to_send and self.phase is not Phase.CLOSED:
                self.drained.wait()
        if not to_send.done:
            raise ClientDisconnected("the client went away")
        return to_send.sent

    def send_file_after_app(self, file, offset, count):
        """The app's ``send_file`` when the loop runs the app: the loop cannot wait for itself.
        It keeps a descriptor of the file and sends it once the app has returned; the next
        request waits for it (``app_done``). If the file ends early, the connection closes."""
        self.file = FileToSend(file, offset, count, own=True)
        return count

    # --- in the loop -----------------------------------------------------------------------

    def flush(self):
        """Send what the outbox holds, then the file, as far as the socket takes them now."""
        self.server.flush(self)

    def app_done(self):
        """The app has returned: the connection is the loop's again, once its file is out."""
        if self.file is not None and self.file.own:
            self.app_returned = True
            return
        self.server.app_done(self)

    def file_sent(self):
        """The file is sent (or the client is gone): the app's thread may go on. Return
        whether the file ended before the count it promised (then the caller closes)."""
        with self.lock:
            file, self.file = self.file, None
            self.drained.notify_all()
        if file is not None:
            file.close()
            if file.own and file.ended_early:
                return True
        if self.app_returned:
            self.app_returned = False
            self.app_done()
        return False

    def mark_closed(self):
        with self.lock:
            self.phase = Phase.CLOSED
            self.drained.notify_all()  # an app's thread waiting to send: the client is gone
            if self.file is not None:
                self.file.close()

    @property
    def busy(self):
        """The app has the request, or its response is still going out: worth a grace period."""
        return self.phase is Phase.APP or bool(self.outbox) or bool(self.file)


def environ_args(settings, listener, multithread, multiprocess):
    """What ``build_environ`` needs besides the request and the client's address."""
    address = (settings.host, listener.getsockname()[1])
    return dict(server_address=address, multithread=multithread, multiprocess=multiprocess)


class Mailbox:
    """Callbacks for the loop to run, posted from any thread, and one wake-up for many.

    ``wake_loop()`` makes the loop look: the select server writes a byte to a socket pair
    its selector watches (``SelectorMailbox``); asyncio has ``loop.call_soon_threadsafe``. Under
    load many workers finish while the loop is busy, and one wake-up is enough for all of
    them: we send one only when none is pending.

    An app that runs in the loop posts from the loop's own thread: the loop is awake, and
    runs what was posted before it waits again (``run_soon`` makes sure of it, if needed),
    so no wake-up goes out, and no system call. The mailbox belongs to the thread that
    makes it: the loop's."""

    def __init__(self, wake_loop, run_soon=None):
        self.wake_loop, self.run_soon = wake_loop, run_soon
        self.loop_thread = threading.get_ident()
        self.posted = deque()  # callbacks, in the order they were posted
        self.wake_pending = False

    def post(self, callback):
        """From any thread: have the loop call ``callback()`` soon."""
        self.posted.append(callback)
        if not self.wake_pending:
            self.wake_pending = True
            if threading.get_ident() != self.loop_thread:
                self.wake_loop()
            elif self.run_soon is not None:
                self.run_soon()

    def run_posted(self):
        """In the loop: run what was posted, oldest first. The flag goes down first: a callback
        posted from here on wakes the loop again, and one posted earlier is in the deque."""
        self.wake_pending = False
        while self.posted:
            self.posted.popleft()()


class SelectorMailbox(Mailbox):
    """The select loop's mailbox, woken by a socket pair: a byte written to one end makes
    the other end readable, and the selector watches that end, so ``select()`` returns at
    once, however long its timeout."""

    def __init__(self, selector):
        super().__init__(wake_loop=self.send_wake_up_byte)
        self.selector = selector
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        selector.register(self.reader, selectors.EVENT_READ, self.drain)

    def send_wake_up_byte(self):
        try:
            self.writer.send(b"\0")
        except BlockingIOError:
            pass  # the pair is full of wake-ups already: the loop will wake anyway

    def drain(self, events):
        """The selector's callback: read the wake-up bytes away (then the loop runs what was posted)."""
        try:
            self.reader.recv(4096)  # a byte or two; if more, the next turn reads them
        except BlockingIOError:
            pass

    def close(self):
        self.selector.unregister(self.reader)
        self.reader.close()
        self.writer.close()


class WorkerPool:
    """A few threads that run jobs from a queue: the app runs here, never in the loop.

    Why not concurrent.futures.ThreadPoolExecutor? Its threads are joined when the
    interpreter exits, so Ctrl-C would wait for every app call still running (a
    /sleep?seconds=10, say). Ours are daemon threads: the grace period is ours to set."""

    def __init__(self, size):
        self.jobs = queue.SimpleQueue()
        self.gathered = deque()  # jobs from this turn of the loop, not yet handed over
        for number in range(size):
            threading.Thread(target=self.work, name=f"app-{number}", daemon=True).start()

    def gather(self, function, *args):
        """Keep ``function(*args)`` for a worker thread: it runs once the loop calls ``dispatch``."""
        self.gathered.append((function, args))

    def dispatch(self):
        """At the end of each turn, the loop gives the workers what it gathered, in one go.

        Why not each job at once? Every recv() and send() of the loop lets go of the GIL,
        and a worker woken mid-turn would take it there: the loop would wait for it back,
        at every system call. Woken together, the workers find several jobs waiting and
        run them one after another. (docs/bench/tuning.md has what this was measured to save.)"""
        while self.gathered:
            self.jobs.put(self.gathered.popleft())

    def work(self):
        while True:
            function, args = self.jobs.get()
            try:
                function(*args)
            except BaseException:
                traceback.print_exc()  # a worker must never die: log it, and take the next job


class Acceptor:
    """Accepts waiting clients when the listener is readable, and hands each to ``on_accept``.

    When the process is out of file descriptors (EMFILE), accept() fails and the client
    stays in the backlog, so the listener stays readable: a loop that kept watching it
    would spin, failing as fast as it can. So we look away for a moment instead; closing
    connections free descriptors meanwhile, and ``resume_if_due`` looks back. A prefork
    worker also looks away while it is busier than another (``hold`` and ``release``)."""

    PER_WAKE = 64  # accept at most this many in one go, then serve the others

    def __init__(self, selector, listener, on_accept):
        self.selector = selector
        self.listener = listener
        self.on_accept = on_accept
        self.paused_until = None
        self.held = False
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, self.accept)

    @property
    def watching(self):
        return self.paused_until is None and not self.held

    def accept(self, events):
        for _ in range(self.PER_WAKE):
            if not self.watching:
                return  # on_accept held us back, or we are out of descriptors
            try:
                sock, address = self.listener.accept()
            except BlockingIOError:
                return  # nobody else is waiting
            except OSError as error:
                if error.errno not in SHORTAGES:
                    raise
                log_problem(("server", "-"), f"cannot accept: {error.strerror}; pausing for {ACCEPT_PAUSE} s")
                self.selector.unregister(self.listener)
                self.paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            sock.setblocking(False)  # a loop's sockets never wait
            self.on_accept(sock, address)

    def resume_if_due(self, now):
        if self.paused_until is not None and now >= self.paused_until:
            self.paused_until = None
            if self.watching:
                self.selector.register(self.listener, selectors.EVENT_READ, self.accept)

    def hold(self):
        """Stop watching the listener until ``release``: let other processes take the next clients."""
        if self.watching:
            self.selector.unregister(self.listener)
        self.held = True

    def release(self):
        if self.held:
            self.held = False
            if self.watching:
                self.selector.register(self.listener, selectors.EVENT_READ, self.accept)

    def close(self):
        """Stop accepting: new clients are refused at once."""
        if self.watching:
            self.selector.unregister(self.listener)
        # Held for good: neither release() nor resume_if_due() may register a closed socket.
        self.paused_until, self.held = None, True
        self.listener.close()
