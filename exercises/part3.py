"""Workbook, part 3: serving many clients at once.

Each function below has the same name and signature as one in ``part3_concurrency/``,
and a docstring that says what it must do. Replace each ``raise NotImplementedError(...)``
with your code, then grade it:

    python -m grader part3                    # every exercise of this part
    python -m grader part3 reap_children      # just one

The notebook named in each docstring prepares the exercise; its last cell in that
section grades it too. The exercises go from easy to hard: do them in order. The tests
that grade them are in ``grader/tests/test_part3.py``: read them when you are stuck.
"""

import os  # noqa: F401
import signal  # noqa: F401
import socket  # noqa: F401
import threading  # noqa: F401

# Part 2's per-connection handler, given: it reads requests from one connection, runs
# the app, sends the responses and closes the connection. Part 3 only decides *where*
# it runs. See part2_wsgi/server.py for its parameters.
from part2_wsgi.server import handle_connection  # noqa: F401

KEEP_ALIVE_TIMEOUT = 5  # seconds a thread waits for the next request on an idle connection


# --- 1. alive (1 point) ----------------------------------------------------------------------


def alive(pid):
    """Is the process ``pid`` still there (running, or exited but not yet reaped)?

    ``os.kill(pid, 0)`` sends no signal at all: it only checks that the process exists,
    and raises ProcessLookupError if it does not. Return True or False; never wait, and
    never collect the child's exit status (that is the SIGCHLD handler's job).

    Example:

        alive(os.getpid())     ->  True
        alive(pid_of_a_child_that_exited_and_was_reaped)  ->  False

    Prepared by: notebooks/03_concurrency.ipynb, section 3.3 (The fix), and the
    forking server's ``stop_children``, which uses it; graded in 3.4.
    """
    raise NotImplementedError("try os.kill(pid, 0); ProcessLookupError means there is no such process")


# --- 2. reap_children (2 points) -------------------------------------------------------------


def reap_children(signum=None, frame=None):
    """Collect the exit status of every child that has exited, so none stays a zombie.

    The forking server installs this as its SIGCHLD handler (hence the two arguments,
    which it ignores): ``signal.signal(signal.SIGCHLD, reap_children)``.

    * Signals do not queue: three children that exit together may cause *one* SIGCHLD.
      So collect every exited child in a loop, not one per call.
    * Never block: other children are still serving clients. ``os.waitpid(-1,
      os.WNOHANG)`` returns ``(0, 0)`` at once when children remain but none has exited.
    * ``os.waitpid`` raises ChildProcessError when there are no children at all: then
      there is nothing to do.

    Example: children 101 and 102 have exited, child 103 is still serving a client.
    ``reap_children()`` collects 101 and 102, and returns at once, leaving 103 alone.

    Prepared by: notebooks/03_concurrency.ipynb, sections 3.2 (Mistake 2: nobody reaps
    the children) and 3.3 (The fix); graded in 3.4.
    """
    raise NotImplementedError(
        "loop on os.waitpid(-1, os.WNOHANG): stop when it returns pid 0 or raises ChildProcessError"
    )


# --- 3. send_some (2 points) -----------------------------------------------------------------


def send_some(sock, outbox):
    """Send what a non-blocking socket takes now; remove those bytes from ``outbox``.

    One step of the select loop's writing: ``sock`` is non-blocking, ``outbox`` a
    bytearray of bytes waiting to go out. Call ``sock.send`` once, and delete from the
    front of ``outbox`` (in place: ``del outbox[:sent]``) the bytes it took. Return True
    if the outbox is now empty, False if bytes remain (the loop then waits until the
    selector says the socket is writable, and calls you again).

    * ``send`` may take only part of the bytes: the kernel's buffer for the socket is
      full. Keep the rest, in order. Never wait (no ``sendall``, no loop until done).
    * When the buffer is completely full, ``send`` raises BlockingIOError: nothing was
      sent. That is not an error: return False, the outbox unchanged.
    * Any other OSError (BrokenPipeError, ConnectionResetError) means the client has
      gone: let it go up, the loop closes the connection.
    * An empty outbox: nothing to send, return True.

    Example: the kernel has room for 3 bytes.

        outbox = bytearray(b"hello")
        send_some(sock, outbox)  ->  False, and outbox is now bytearray(b"lo")

    Prepared by: notebooks/03_concurrency.ipynb, sections 1 (One question, four answers)
    and 5 (Never block the loop), and the select server's ``flush``, which calls it;
    graded in 5.3.
    """
    raise NotImplementedError("sent = sock.send(outbox) (0 on BlockingIOError); del outbox[:sent]; return not outbox")


# --- 4. serve_forever (3 points) -------------------------------------------------------------


def serve_forever(listener, app, args):
    """The threaded server's loop: accept connections, serve each on a thread of its own.

    ``listener`` is a listening socket; ``app`` a WSGI app; ``args.host`` the address
    the server listens on and ``args.max_threads`` how many connections may be served at
    once. Loop forever:

    * wait for a free slot (a ``threading.BoundedSemaphore(args.max_threads)``) *before*
      accepting: while every thread is busy, new clients wait in the listen backlog;
    * accept a connection, and start a daemon thread that serves it with
      ``handle_connection(connection, address, app, server_address, keep_alive=True,
      timeout=KEEP_ALIVE_TIMEOUT, multithread=True)``, where ``server_address`` is
      ``(args.host, listener.getsockname()[1])``;
    * when that thread is done (even after an error), it frees its slot.

    It never returns: Ctrl-C ends the server (``serving.run`` catches the
    KeyboardInterrupt).

    Example: with ``args.max_threads == 2``, two slow requests are served at the same
    time, and a third waits until one of them is done.

    Prepared by: notebooks/03_concurrency.ipynb, sections 2.3 (The other three: one
    second) and 4.4 (Why the threaded server has a cap); graded in 4.5.
    """
    raise NotImplementedError(
        "slots = threading.BoundedSemaphore(args.max_threads); loop: acquire, accept, start a Thread that releases"
    )
