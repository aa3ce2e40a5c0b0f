"""Lesson 4, model 2: the forking server, a child process per connection.

    python part3_concurrency/forking_server.py [module:app] [--host H] [--port P]

``os.fork()`` makes a copy of the running process. The parent goes straight back to
``accept()``; the child serves the one connection it was forked for, then exits. Each
child has its own memory and its own interpreter, so a slow request, or a crash, in one
child touches nobody else: the Unix way since the first inetd, and gunicorn's sync
workers and Apache's prefork are its descendants.

Two things every forking server must get right, and this file explains at the spot:

1. **Descriptors.** After fork both processes hold *both* sockets. The parent must
   close its copy of the connection, and the child its copy of the listening socket.
2. **Zombies.** A child that exits stays in the process table (``<defunct>`` in ``ps``)
   until its parent collects its exit status with ``wait``. The parent does that in a
   SIGCHLD handler.

There is no ``fork`` on Windows: there the program says so and exits.
"""

if __name__ == "__main__":
    # Run by path (python part3_concurrency/forking_server.py), Python puts this file's folder on sys.path, not the
    # repository's root: put the root there, so the imports below work with nothing installed.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os
import signal
import sys
import time

from part2_wsgi.server import handle_connection
from part2_wsgi.serving import run

KEEP_ALIVE_TIMEOUT = 5  # seconds a child waits for the next request on an idle connection
GRACE_PERIOD = 1.0  # on Ctrl-C, how long children may finish what they are doing


def reap_children(signum=None, frame=None):
    """Collect the exit status of every child that has exited: no zombies.

    Signals do not queue: if three children exit while this handler runs (or before it
    gets to run), the kernel delivers *one* SIGCHLD, not three. A handler that calls
    ``wait()`` once per signal therefore leaves zombies behind under load. So we loop,
    collecting every exited child, and WNOHANG makes ``waitpid`` return at once
    (with pid 0) when the remaining children are still running, instead of blocking.
    """
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children at all
        if pid == 0:
            return  # children remain, but none has exited yet


def serve_in_child(connection, address, listener, app, server_address):
    """Runs in the child: serve one connection, then exit."""
    status = 0
    try:
        # Close the child's copy of the listening socket. It is of no use here, and while
        # any process holds it open the port stays bound after the parent exits.
        listener.close()
        # Ctrl-C in a terminal signals the whole process group, children included. Let
        # the parent decide when children stop (a grace period, then SIGTERM).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        handle_connection(
            connection, address, app, server_address, keep_alive=True, timeout=KEEP_ALIVE_TIMEOUT, multiprocess=True
        )
    except BaseException:
        status = 1
    finally:
        sys.stderr.flush()
        # os._exit, not sys.exit: the child must not run the parent's clean-up code (the
        # `finally` and `with` blocks up the stack, atexit hooks), nor flush buffers it
        # inherited from the parent, which would print them twice.
        os._exit(status)


def serve_forever(listener, app, args):
    server_address = (args.host, listener.getsockname()[1])
    # Reap children as they exit. While we wait in accept(), a SIGCHLD interrupts the
    # system call (EINTR); since Python 3.5 (PEP 475) the handler runs and accept() is
    # simply retried, so the loop below never sees it.
    signal.signal(signal.SIGCHLD, reap_children)
    children = set()
    try:
        while True:
            connection, address = listener.accept()
            pid = os.fork()
            if pid == 0:
                serve_in_child(connection, address, listener, app, server_address)
            # The parent closes its copy of the connection. A TCP connection is only
            # closed when *every* process holding it has closed it: if the parent kept
            # its copy, a child that simply close()d would leave the client waiting for
            # an end that never comes (forking_mistakes.py --forget-close shows it; our
            # child's shutdown() happens to hide it). And the parent's descriptors would
            # run out after a thousand or so connections.
            connection.close()
            children.add(pid)
            children = {pid for pid in children if alive(pid)}
    finally:
        listener.close()
        stop_children(children)


def alive(pid):
    """Is this child still running (not yet reaped)?"""
    try:
        os.kill(pid, 0)  # signal 0 checks that the process exists, and sends nothing
    except ProcessLookupError:
        return False
    return True


def stop_children(children):
    """Give children a grace period to finish their requests, then stop the rest."""
    deadline = time.monotonic() + GRACE_PERIOD
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # already reaped by the SIGCHLD handler


def main():
    if not hasattr(os, "fork"):
        print("forking_server.py: this system has no fork() (Windows?); try threaded_server.py", file=sys.stderr)
        return 1
    return run("A forking WSGI server: one child process per connection.", serve_forever)


if __name__ == "__main__":
    sys.exit(main())
