"""Workbook, part 3: your own servers that serve many clients at once.

The REQUIRED track: three loops of your own, each a real server graded over loopback:
``serve_forking`` (a child process per connection), ``serve_threaded`` (a thread per
connection, with a cap) and ``serve_select`` (one thread, non-blocking sockets, a
selector). Part 3 has no hardening track: the full servers in ``part3_concurrency/``
are the place to read about the rest.

Each function has the same name and signature as one in
``part3_concurrency/minimal_servers.py``. Serving *one* connection is given: part 2's
``serve_connection`` reads one request, runs the app, sends the answer and closes the
connection. You write only the scheduling: where and when it runs. Then grade:

    python -m grader part3                        # every exercise of this part
    python -m grader part3 serve_forking          # just one
    python -m grader part3 serve_forking --hint   # and reveal its next hint

Each check runs your function in the main thread of a server process of its own (so
that signal handlers and fork work as in a real server), talks to it over loopback, and
looks at the process from outside: its children, its open files, its threads. The
checks are in ``grader/tests/test_part3.py``.
"""

import os  # noqa: F401  (you will want them)
import selectors  # noqa: F401
import signal  # noqa: F401
import socket  # noqa: F401
import threading  # noqa: F401

# Given: serve one client. serve_connection(connection, address, app) reads a request
# from the accepted connection, runs the app, sends the response and closes the
# connection; it handles the client's errors itself, but an app that fails after its
# head was sent lets its error out (too late for a 500): your loop must survive that.
# Its keywords multithread=False, multiprocess=False go into the app's environ (PEP 3333).
# See part2_wsgi/minimal_server.py.
from part2_wsgi.minimal_server import serve_connection  # noqa: F401

CHUNK = 65536  # the most to ask recv() for at once
MAX_HEAD = 64 * 1024  # a head longer than this: close the connection

# What serve_select answers to every request: the loop is the lesson, not the app.
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: close\r\n\r\nHello, select!"
)


# ===== The required track: your own concurrent servers ===========================================


# --- serve_forking (3 points) ---------------------------------------------------------------


def serve_forking(listener, app):
    """Serve each connection in a child process of its own, forever.

    Loop: accept a connection, then ``os.fork()``. In the child (fork returned 0): close
    the child's copy of the listener first (it accepts nobody), then
    ``serve_connection(connection, address, app, multiprocess=True)`` (the app is told
    that it runs in a process of its own), and end the child with ``os._exit(0)``,
    whatever happened, in a ``finally``: an app that fails after its head lets its error
    out of serve_connection, and a child that returns, raises or calls ``sys.exit``
    unwinds into the parent's code and goes on running the parent's loop. In the parent:
    close the parent's copy of the connection (a TCP connection ends only when *every*
    process holding it has closed it), and accept the next client at once.

    And reap: a child that exits stays a zombie until its parent collects its exit
    status. Install a SIGCHLD handler before the loop that collects *every* exited child
    (``os.waitpid(-1, os.WNOHANG)`` in a loop, until it returns pid 0 or raises
    ChildProcessError): signals do not queue (thirty children that exit together may
    send one SIGCHLD), and the handler must never wait for a child that is still
    serving (the parent accepts nobody while it waits).

    Example: three clients each ask for a page that takes one second: all three are
    answered after about one second, each by another process; a quick page asked for
    meanwhile is answered at once; afterwards the server has no children left, and no
    more open files than before; a request whose app failed half way is followed by
    the next client, served as usual.

    Prepared by: notebooks/03_concurrency.ipynb, sections 1.1-1.2 (A child per
    connection, and its two mistakes); graded at the end of 1.2. The reference is
    part3_concurrency/minimal_servers.py.
    """
    raise NotImplementedError(
        "serve_forking: accept, fork; the child serves and exits; the parent closes its copy and reaps"
    )


# --- serve_threaded (3 points) --------------------------------------------------------------


def serve_threaded(listener, app, max_threads):
    """Serve each connection on a thread of its own, at most ``max_threads`` at once, forever.

    Loop: wait for a free slot; accept a connection; start a thread that runs
    ``serve_connection(connection, address, app, multithread=True)`` (the app is told
    that other threads may run it at the same time) and then frees its slot, in a
    ``finally``: an app that fails after its head lets its error out of
    serve_connection, and a slot lost to each such error would seize the server up. A
    ``threading.BoundedSemaphore(max_threads)`` counts the slots: acquire it *before*
    accepting, so that when every thread is busy new clients wait in the listen backlog
    instead of piling up threads. Start the threads with ``daemon=True``: Python waits
    for every other thread before it exits, so Ctrl-C would wait for every request in
    flight.

    Example: with max_threads=2, three slow requests at once: two are in the app at the
    same time, the third waits until one of them is done, then is served. Ctrl-C (SIGINT)
    stops the server at once, even with a slow request in flight.

    Prepared by: notebooks/03_concurrency.ipynb, section 1.3 (A thread per connection:
    three lines, then a cap); graded at its end. The reference is
    part3_concurrency/minimal_servers.py.
    """
    raise NotImplementedError("serve_threaded: a slot, then accept, then a thread that serves and gives the slot back")


# --- serve_select (4 points) ----------------------------------------------------------------


def serve_select(listener):
    """Serve every client from one thread with a selector, forever; answer each request
    with ``RESPONSE`` and close its connection.

    No app here, and no threads: the loop is the lesson. Make the listener and every
    connection non-blocking (``setblocking(False)``), register them with a
    ``selectors.DefaultSelector()``, and loop on ``select()``, acting only on the sockets
    it says are ready:

    * the listener is readable: accept the client (BlockingIOError: someone was faster),
      make it non-blocking, register it for EVENT_READ with an empty ``bytearray`` as its
      data (what it has sent so far);
    * a connection is readable: ``recv`` once, add to its data; once the data holds the
      blank line that ends a request head (``b"\\r\\n\\r\\n"``), switch it to EVENT_WRITE
      (``selector.modify``) with a ``bytearray`` copy of ``RESPONSE`` as its data: what
      is left to send (RESPONSE is bytes, which cannot shrink); if recv gave ``b""`` or failed, or the data
      passes MAX_HEAD without a blank line, unregister and close it;
    * a connection is writable: ``send`` once (it takes what fits, never waits), drop
      what was sent from the front of the data; once all is sent (or the client has
      gone), unregister and close.

    Never wait on one socket: a blocking socket's ``recv`` or ``send`` would hold the
    whole loop for one quiet client. And no ``sendall``: on a non-blocking socket it does
    not wait either, it raises BlockingIOError once the socket's buffer is full, having
    sent an amount you cannot know.

    Example: 200 clients connect at once and each sends ``GET / HTTP/1.1`` with its
    headers; all 200 get RESPONSE, from a server that runs one thread; a client that
    sent half a request and went quiet holds up nobody; a client that sends more than
    MAX_HEAD bytes without a blank line is hung up on.

    Prepared by: notebooks/03_concurrency.ipynb, section 1.4 (One thread, every
    connection: a selectors loop); graded at its end. The reference is
    part3_concurrency/minimal_servers.py.
    """
    raise NotImplementedError("serve_select: one selector; act only on ready sockets; recv or send once per event")
