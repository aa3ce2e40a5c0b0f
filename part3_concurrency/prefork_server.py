"""Lesson 4, model 5: prefork, the select loop on every core.

    python part3_concurrency/prefork_server.py [module:app] [--workers N] [--reuse-port] [--host H] [--port P]

One event loop runs on one core: Python's GIL lets one thread at a time run Python code,
so the select server's worker threads overlap their *waiting*, not their computing. To
use every core, run the loop in several processes. A *master* opens the listening
socket, then forks ``--workers`` processes (one per core by default), each running the
select server's loop (``SelectServer``) on that same socket: the kernel hands each new
connection to whichever worker accepts it first. nginx, gunicorn and Apache's prefork
MPM all work so.

Left at that, the split is chance: four clients that come at once may all land on one
worker while another core idles, and for an app that computes, that is half the machine
lost. So the workers share one more thing, a board where each says how many connections
it has open (``least_connections.py``): a worker with more than another stops watching
the listening socket until the other has caught up, and the kernel wakes only the others
for the next client. That is the least-connections rule of load balancers; a worker
tells the board when it takes or loses a client, and the board does the rest.

The master serves no client. It watches its workers: one that dies (a crash, the OOM
killer, a ``kill -9``) is replaced at once, and the others serve on meanwhile. On Ctrl-C
or SIGTERM it tells every worker to stop, gives requests in flight a grace period, and
collects every exit status: no orphan, no zombie. Its signal handlers only set a flag and
wake it through a pipe: the real work happens in its loop. (gunicorn's arbiter keeps the
same rule another way: its handlers only put the signal in a queue its loop waits on.)

The thundering herd: every worker's selector watches the one listening socket, so a new
connection wakes them all; one wins ``accept()``, the others find nobody waiting
(BlockingIOError) and go back to sleep. Wasted wake-ups, harmless at a few workers.
``--reuse-port`` gives each worker a listening socket of its own on the same port
(SO_REUSEPORT): the kernel then spreads new connections over the sockets itself, by a
hash of both ends' addresses and ports, and wakes one worker for each. Linux spreads
them; macOS accepts the option, but lets one socket take every connection. A worker must then accept
all that its own socket gets, so there is no board.
"""

import os
import select
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import (
    GRACE_PERIOD,
    count_option,
    create_listening_socket,
    run,
    wait_out_shortage,
    write_log_line,
)
from part2_wsgi.connection import Close
from part3_concurrency.child_processes import stop_children
from part3_concurrency.forking_server import fork, reap
from part3_concurrency.least_connections import LeastConnections
from part3_concurrency.loop_tools import serves_one_client_at_a_time
from part3_concurrency.select_server import DEFAULT_THREADS, SelectServer

RESTART_PAUSE = 1.0  # a worker that dies this soon after its start is replaced only after this pause


class Worker(SelectServer):
    """The select server's loop, in a worker process; it stops if its master is gone, and
    tells the board (if there is one) whenever it takes or loses a client."""

    multiprocess = True  # tell the app (wsgi.multiprocess): other processes serve beside it

    def __init__(self, listener, app, settings, master_pid, board=None, slot=0):
        super().__init__(listener, app, settings)
        self.master_pid = master_pid
        # The board decides when this worker watches the listening socket (least_connections.py).
        self.seat = board.seat(slot, self.selector, self.acceptor) if board else None
        self.tell_the_board()

    def add_client(self, sock, address):
        super().add_client(sock, address)
        self.tell_the_board()

    def close(self, client, close=Close()):
        super().close(client, close)
        self.tell_the_board()

    def tell_the_board(self):
        if self.seat:
            self.seat.publish(len(self.clients))

    def every_second(self):
        super().every_second()
        self.tell_the_board()  # again: two workers may have looked at the board at the same instant
        # A master killed with SIGKILL cannot tell us to stop; nobody would reap or
        # replace us. Our parent is then someone else (init): stop, as gunicorn's workers do.
        if os.getppid() != self.master_pid and not self.stopping:
            self.request_stop()

    def shut_down(self):
        if self.seat:
            self.seat.leave()  # the listening socket closes now: nothing left to hold back
        super().shut_down()


class Master:
    """Starts the workers, replaces those that die, and stops them all on Ctrl-C or SIGTERM."""

    def __init__(self, listeners, app, settings):
        self.listeners = listeners  # one shared socket, or with --reuse-port one per worker
        self.app, self.settings = app, settings
        # With one shared socket, the workers choose who takes a client; with --reuse-port, the kernel.
        self.board = LeastConnections(settings.workers) if len(listeners) == 1 else None
        self.running = set()  # worker PIDs, until reaped
        self.slots = {}  # worker pid -> (its slot number, when it started)
        self.not_before = {}  # slot -> earliest time to start it again (a worker that keeps dying)
        self.stopping = False
        self.wake_reader, self.wake_writer = os.pipe()
        os.set_blocking(self.wake_writer, False)

    # --- signals: set a flag, wake the loop, and nothing more -----------------------------

    def on_signal(self, signum, frame):
        if signum != signal.SIGCHLD:
            self.stopping = True
        try:
            os.write(self.wake_writer, b"!")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already

    def sleep(self, timeout):
        """Wait for a signal (the pipe becomes readable) or the timeout, whichever first."""
        if select.select([self.wake_reader], [], [], timeout)[0]:
            os.read(self.wake_reader, 4096)

    # --- the master's loop ----------------------------------------------------------------

    def serve_forever(self):
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, self.on_signal)
        try:
            while not self.stopping:
                self.collect_exited()
                self.start_missing_workers()
                self.sleep(timeout=1.0)
        finally:
            self.stop_workers()

    def collect_exited(self):
        for pid, status in reap(self.running):
            slot, started = self.slots.pop(pid)
            if self.board is not None:
                self.board.vacate(slot)  # its connections died with it
            if not self.stopping:
                write_log_line(f"prefork: worker {pid} {describe(status)}; starting another")
            if time.monotonic() - started < RESTART_PAUSE:  # it died at once: do not fork in a tight loop
                self.not_before[slot] = time.monotonic() + RESTART_PAUSE

    def start_missing_workers(self):
        taken = {slot for slot, _ in self.slots.values()}
        for slot in range(self.settings.workers):
            if slot not in taken and time.monotonic() >= self.not_before.get(slot, 0):
                self.start_worker(slot)

    def start_worker(self, slot):
        master_pid = os.getpid()  # read before the fork: the master may be gone by the time the worker asks
        pid = wait_out_shortage(lambda: fork(self.running), "fork")  # see forking_server.py
        if pid:
            self.slots[pid] = (slot, time.monotonic())
            return
        # In the worker: the master's pipe and the other workers' sockets are not ours.
        os.close(self.wake_reader)
        os.close(self.wake_writer)
        listener = self.listeners[slot % len(self.listeners)]
        for other in self.listeners:
            if other is not listener:
                other.close()
        code = 0
        try:
            worker = Worker(listener, self.app, self.settings, master_pid, self.board, slot)
            worker.serve_forever(signals=(signal.SIGTERM,))  # Ctrl-C is the master's to forward
        except BaseException:
            traceback.print_exc()  # a bug in the server: say so in its log
            code = 1
        os._exit(code)  # never return into the master's code (see forking_server.py)

    def stop_workers(self):
        """SIGTERM to every worker (each stops accepting and finishes its requests in flight),
        then collect every exit status; a worker still there after the grace period is killed."""
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in self.running:
            os.kill(pid, signal.SIGTERM)
        # The workers have a grace period of their own: give them a little more.
        stop_children(self.running, last_signal=signal.SIGKILL, seconds=GRACE_PERIOD + 0.3)
        os.close(self.wake_reader)
        os.close(self.wake_writer)


def describe(status):
    """A wait status in words: "exited with status 1", "was killed by SIGKILL"."""
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def serve_forever(listener, app, settings):
    listeners = [listener]
    if settings.reuse_port:  # a socket of its own for each worker, all on the port `run` bound
        port = listener.getsockname()[1]
        more = settings.workers - 1
        listeners += [create_listening_socket(settings.host, port, reuse_port=True) for _ in range(more)]
    try:
        Master(listeners, app, settings).serve_forever()
    finally:
        for extra in listeners[1:]:
            extra.close()


def add_options(parser):
    count_option("--workers", os.cpu_count() or 1, "worker processes, each an event loop")(parser)
    count_option("--threads", DEFAULT_THREADS, "threads per worker that run the app; 0 runs it in the loop", 0)(parser)
    parser.add_argument(
        "--reuse-port", action="store_true", help="a listening socket per worker (SO_REUSEPORT): the kernel balances"
    )


if __name__ == "__main__":
    if not hasattr(os, "fork"):
        sys.exit("prefork_server.py: this system has no fork() (Windows?); try select_server.py")
    if "--reuse-port" in sys.argv and not hasattr(socket, "SO_REUSEPORT"):
        sys.exit("prefork_server.py: this system has no SO_REUSEPORT; run without --reuse-port")
    description = "A prefork WSGI server: a master and --workers processes, each a select loop."
    sys.exit(run(description, serve_forever, add_options, one_at_a_time=serves_one_client_at_a_time))
