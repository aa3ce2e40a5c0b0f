"""Lesson 4, model 2: the forking server, a child process per connection.

    python part3_concurrency/forking_server.py [module:app] [--max-children N] [--host H] [--port P]

``os.fork()`` makes a copy of the running process. The parent goes straight back to
``accept()``; the child serves the one connection it was forked for, then exits. A slow
request, or a crash, in one child touches nobody else: gunicorn's sync workers and
Apache's prefork descend from it. Two things a forking server must get right are
explained at the spot: closing what each process does not use, and reaping children.

The servers in this folder differ in one thing, what happens to a connection once
accepted: diff any two to see it. What every server needs besides (deadlines for slow
clients, running out of descriptors, a grace period on Ctrl-C) lives once, in
part2_wsgi/protocol.py and part2_wsgi/serving.py.
"""

import os
import signal
import sys
import traceback
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.server import handle_connection
from part2_wsgi.serving import ChildProcesses, accept, count_option, run


def serve_forever(listener, app, args):
    server_address = (args.host, listener.getsockname()[1])
    children = ChildProcesses(args.max_children)  # a flood of clients must not fork without end
    # An exited child stays a zombie until we collect its exit status: the kernel says
    # when with SIGCHLD, and ChildProcesses.reap collects (see there why it loops).
    signal.signal(signal.SIGCHLD, children.reap)
    try:
        while True:
            children.wait_for_free_slot()
            connection, address = accept(listener)
            if children.fork() == 0:
                serve_in_child(connection, address, listener, app, server_address)
            # The parent closes its copy: a TCP connection ends only when *every* process
            # holding it has closed it, or the client waits for an end that never comes
            # (forking_mistakes.py --forget-close shows it).
            connection.close()
    finally:
        listener.close()  # stop accepting: new clients are refused at once
        children.stop()  # requests in flight may finish, for a grace period


def serve_in_child(connection, address, listener, app, server_address):
    """Runs in the child: serve one connection, then exit with os._exit, not sys.exit: the
    child must not run the parent's clean-up code (``finally`` blocks up the stack, atexit
    hooks), nor flush buffers it inherited from the parent, which would print them twice."""
    try:
        # The child's copy of the listening socket is of no use here, and while any
        # process holds it open the port stays bound after the parent exits.
        listener.close()
        handle_connection(connection, address, app, server_address, persistent=True, multiprocess=True)
    except BaseException:
        traceback.print_exc()  # a bug in the server: say so in its log, not in silence
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    if not hasattr(os, "fork"):
        sys.exit("forking_server.py: this system has no fork() (Windows?); try threaded_server.py")
    options = count_option("--max-children", 64, "most child processes at once; more clients wait in the backlog")
    sys.exit(run("A forking WSGI server: one child process per connection.", serve_forever, options))
