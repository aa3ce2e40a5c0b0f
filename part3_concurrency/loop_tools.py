"""The machinery an event loop needs besides its idea: where a client stands, a mailbox,
a worker pool, an acceptor.

The select server's loop owns every socket, and no other thread may touch the selector.
So a worker that has finished (or a signal handler that wants the loop to stop) does not
act itself: it *posts* a callback to the loop's ``Mailbox`` and wakes the loop, which
runs the callback on its own thread at its next turn. asyncio calls the same idea
``call_soon_threadsafe``; gunicorn's gthread worker has its twin, ``PollableMethodQueue``:
a queue of callbacks, and a pipe that wakes the worker's selector.

The ``Acceptor`` accepts clients for the loop, and survives running out of descriptors.
``Phase`` is where one client stands, and ``FileToSend`` a file on its way to it with
``os.sendfile``, for the select and the asyncio servers both.
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

from part2_wsgi.command_line import ACCEPT_PAUSE, SHORTAGES, log_problem
from part2_wsgi.wsgi import ClientDisconnected


class Phase(Enum):
    """Where one client of an event loop stands. (Its HTTP rules stand in its protocol
    ``Connection``: this is only who has the connection now, the loop or the app.)"""

    READING = "reading"  # the protocol wants bytes: a request, or what a lingering client still sends
    APP = "the app has the request"  # a worker runs it; we keep reading, to see the client leave
    CLOSING = "closing"  # the last bytes are going out; then close, or linger
    CLOSED = "closed"  # nothing more is read or written


class FileToSend:
    """A file an event loop sends with ``os.sendfile()``, a piece each time the socket is
    writable, keeping the offset: the kernel hands the file's pages to the socket, and
    Python never sees the bytes. The app's thread hands it to the loop and waits until
    ``done``: the file stays open until then, and the next response cannot overtake it."""

    def __init__(self, file, offset, count):
        self.fd, self.offset, self.left = file.fileno(), offset, count
        self.sent = 0
        self.done = not count  # all sent, or the file ended first

    def send_piece(self, sock_fd):
        """Send what the non-blocking socket takes now; return how much (0: not now)."""
        try:
            taken = os.sendfile(sock_fd, self.fd, self.offset, self.left)
        except BlockingIOError:
            return 0  # the socket's buffer is full: wait for the next writable event
        self.offset, self.left, self.sent = self.offset + taken, self.left - taken, self.sent + taken
        self.done = not self.left or not taken  # (nothing taken from a writable socket: the file ended)
        return taken

    def hand_over(self, client, handover, wake_loop):
        """From the app's thread: make this the file ``client.file`` that the loop sends, wake
        the loop (``wake_loop()``), and wait on the condition ``handover`` until it is sent
        or the client is gone (``client.phase``); return how many bytes were sent."""
        with handover:
            if client.phase is Phase.CLOSED:
                raise ClientDisconnected("the client went away")
            client.file = self
        wake_loop()
        with handover:
            while client.file is self and client.phase is not Phase.CLOSED:
                handover.wait()
        if not self.done:
            raise ClientDisconnected("the client went away")
        return self.sent


class Mailbox:
    """Callbacks for the loop to run, and a socket pair that wakes ``select()`` for them.

    A byte written to one end of the pair makes the other end readable, and the selector
    watches that end, so ``select()`` returns at once, however long its timeout."""

    def __init__(self, selector):
        self.selector = selector
        self.posted = deque()  # callbacks, in the order they were posted
        self.wake_pending = False  # a wake-up byte is on its way: no need for another
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.wake_writer.setblocking(False)
        selector.register(self.wake_reader, selectors.EVENT_READ, self.drain)

    def post(self, callback):
        """From any thread: have the loop call ``callback()`` soon."""
        self.posted.append(callback)
        self.wake()

    def wake(self):
        """Under load many workers finish while the loop is busy: one wake-up byte is enough
        for all of them, so only send one when none is pending."""
        if self.wake_pending:
            return
        self.wake_pending = True
        try:
            self.wake_writer.send(b"\0")
        except BlockingIOError:
            pass  # the pair is full of wake-ups already: the loop will wake anyway

    def drain(self, events):
        """The selector's callback: read the wake-up bytes away."""
        try:
            self.wake_reader.recv(4096)  # a byte or two: wake() sends one per turn; if more, the next turn reads them
        except BlockingIOError:
            pass
        # Clear the flag only now that the bytes are read, and before the loop runs the
        # callbacks (run_posted comes next): a callback posted from here on sends a new
        # byte, and one posted earlier is in the deque already.
        self.wake_pending = False

    def run_posted(self):
        """In the loop: run what was posted, oldest first."""
        while self.posted:
            self.posted.popleft()()

    def close(self):
        self.selector.unregister(self.wake_reader)
        self.wake_reader.close()
        self.wake_writer.close()


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
