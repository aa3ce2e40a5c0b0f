"""Lesson 4, model 2: the forking server, a child process per connection.

    python part3_concurrency/forking_server.py [module:app] [--max-children N] [--host H] [--port P]

``os.fork()`` copies the running process. The parent goes straight back to ``accept()``;
the child serves the one connection it was forked for, then exits. A slow request, or a
crash, in one child touches nobody else: gunicorn's sync workers and Apache's prefork
descend from it. What a forking server must get right is explained at the spot: closing
what each process does not use, reaping children, and a cap on them.

What the servers in this folder have in common, and what they leave to the shared
layer, is said once, in iterative_server.py.
"""

import os
import signal
import sys
import time
import traceback
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import accept, count_option, run, wait_out_shortage
from part2_wsgi.connection_handler import handle_connection
from part3_concurrency.child_processes import stop_children


def serve_forever(listener, app, settings):
    server_address = (settings.host, listener.getsockname()[1])
    running = set()  # our children's PIDs, until reaped
    # SIGCHLD says a child has exited: reap collects its exit status (see there why it loops).
    signal.signal(signal.SIGCHLD, lambda signum, frame: reap(running))
    try:
        while True:
            while len(running) >= settings.max_children:  # a flood of clients must not fork without end:
                time.sleep(0.01)  # at the cap, new clients wait in the backlog until reap frees a slot
            connection, address = accept(listener)
            if wait_out_shortage(lambda: fork(running), "fork") == 0:
                # The child's copy of the listening socket is of no use here, and while any
                # process holds it open the port stays bound after the parent exits.
                listener.close()
                serve_in_child(connection, address, app, server_address, settings)
            # The parent closes its copy: a TCP connection ends only when *every* process
            # holding it has closed it, or the client waits for an end that never comes
            # (minimal_servers.py --model forking-mistakes shows it).
            connection.close()
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        stop_children(running)  # requests in flight may finish, for a grace period


def fork(running):
    """``os.fork()``: the parent gets the child's PID, the child 0. SIGCHLD waits till the PID is
    in ``running``: a child reaped before we knew it was ours would never free its slot."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pid = os.fork()
        if pid:
            running.add(pid)
        else:
            # Ctrl-C reaches the whole process group: the parent decides when children stop.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    return pid


def serve_in_child(connection, address, app, server_address, settings):
    """In the child: serve one connection, then os._exit. Never sys.exit: that would run the parent's
    clean-up code (``finally`` blocks up the stack, atexit hooks) and flush its buffers twice."""
    try:
        handle_connection(connection, address, app, server_address, settings, persistent=True, multiprocess=True)
    except BaseException:
        traceback.print_exc()  # a bug in the server: say so in its log, not in silence
        os._exit(1)
    os._exit(0)


def reap(running):
    """Collect the exit status of every child that has exited; return [(pid, wait status)].

    An exited child stays a zombie (``<defunct>`` in ``ps``) until its parent collects its
    status. Signals do not queue: three children that exit together may bring *one*
    SIGCHLD, so a handler that calls ``wait()`` once per signal leaves zombies under load.
    We loop; WNOHANG makes ``waitpid`` return at once (pid 0) while the others still run."""
    exited = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return exited  # no children at all
        if pid == 0:
            return exited  # children remain, but none has exited yet
        running.discard(pid)
        exited.append((pid, status))


if __name__ == "__main__":
    if not hasattr(os, "fork"):
        sys.exit("forking_server.py: this system has no fork() (Windows?); try threaded_server.py")
    options = count_option("--max-children", 64, "most child processes at once; more clients wait in the backlog")
    description = "A forking WSGI server: one child process per connection."
    sys.exit(run(description, serve_forever, options))
