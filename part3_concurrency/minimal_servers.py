"""Lesson 4, the short versions: fork, threads and select, a few lines each.

    python part3_concurrency/minimal_servers.py --model forking [APP] [--port P]
    python part3_concurrency/minimal_servers.py --model forking-mistakes
    python part3_concurrency/minimal_servers.py --model threads-unbounded
    python part3_concurrency/minimal_servers.py --model threaded --max-threads 10
    python part3_concurrency/minimal_servers.py --model select

Every loop here changes one thing only: *where* a connection is served. What serving
one connection means (read a request, run the app, answer, close) is part 2's
``serve_connection`` from ``minimal_server.py``, unchanged. Notebook 03 shows these
before the full servers (``forking_server.py``, ``threaded_server.py``,
``select_server.py``), which add keep-alive, deadlines, grace periods on Ctrl-C and the
rest; the workbook's part 3 asks you to write ``serve_forking``, ``serve_threaded`` and
``serve_select``.
"""

import os
import selectors
import signal
import sys
import threading
from pathlib import Path

if __name__ == "__main__":  # run by path, Python put this folder on sys.path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2_wsgi.command_line import positive_int, run
from part2_wsgi.minimal_server import CHUNK, MAX_HEAD, serve_connection

# --- fork: a child process per connection --------------------------------------------------


def serve_forking_with_mistakes(listener, app):
    """A forking server with the two classic mistakes. It seems to work; it does not."""
    served = []  # every client's connection, kept "for the statistics"
    while True:
        connection, address = listener.accept()
        served.append(connection)
        if os.fork() == 0:  # the child: serve this one client, then exit
            serve_connection(connection, address, app)
            os._exit(0)
        # Mistake 1: the parent keeps its copy of the connection. (In C, forgetting close()
        # is enough; Python closes a socket once nothing refers to it, so here the list
        # keeps it.) The child closes its own, but a TCP connection ends only when *every*
        # process holding it has closed it: the client never sees the end of the response,
        # and the parent holds one more descriptor for every client, until it runs out.
        # Mistake 2: nobody waits for the children. Each one that exits stays in the
        # process table as a zombie until its parent collects its exit status.


def reap_children(signum, frame):
    """SIGCHLD: collect every child that has exited. Signals do not queue (three children
    that exit together may send one SIGCHLD), so loop; WNOHANG: never wait for the rest."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children at all
        if pid == 0:
            return  # children remain, none has exited


def serve_forking(listener, app):
    """A child process per connection, done right: close what you do not need, reap."""
    signal.signal(signal.SIGCHLD, reap_children)
    while True:
        connection, address = listener.accept()
        if os.fork() == 0:  # the child
            try:
                listener.close()  # the child accepts nobody: let go of the port
                serve_connection(connection, address, app, multiprocess=True)  # tell the app (PEP 3333)
            finally:
                # Never return into the parent's loop, whatever happened: an app that fails
                # after its head lets its error out of serve_connection, and os._exit skips
                # the parent's cleanup (sys.exit would run it, in the child).
                os._exit(0)
        connection.close()  # the parent: the child has its own copy


# --- threads: a thread per connection --------------------------------------------------------


def serve_threads_unbounded(listener, app):
    """A thread per connection, in three lines, and no limit: a flood of clients starts
    a flood of threads."""
    while True:
        connection, address = listener.accept()
        threading.Thread(target=serve_connection, args=(connection, address, app), daemon=True).start()


def serve_threaded(listener, app, max_threads):
    """A thread per connection, at most ``max_threads`` at once; the rest wait in the
    listen backlog until a thread is free."""
    free_slots = threading.BoundedSemaphore(max_threads)

    def serve_then_free_the_slot(connection, address):
        try:
            serve_connection(connection, address, app, multithread=True)  # tell the app (PEP 3333)
        finally:
            free_slots.release()  # even after an app's error, or the server slowly seizes up

    while True:
        free_slots.acquire()  # wait for a free slot *before* accepting
        connection, address = listener.accept()
        # daemon: Ctrl-C stops the server at once, without waiting for requests in flight.
        threading.Thread(target=serve_then_free_the_slot, args=(connection, address), daemon=True).start()


# --- select: one thread, every connection --------------------------------------------------------

# The select loop serves this fixed response to every request: the loop is the lesson,
# not the app. (select_server.py runs real WSGI apps, on a pool of threads.)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: close\r\n\r\nHello, select!"
)


def serve_select(listener):
    """One thread, non-blocking sockets, and a selector that says which one is ready."""
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, events in selector.select():  # wait until some socket is ready
            sock = key.fileobj
            if sock is listener:  # a client is waiting: accept() will not block
                try:
                    connection, _ = listener.accept()
                except BlockingIOError:
                    continue  # someone else took it (or it left) first
                connection.setblocking(False)
                selector.register(connection, selectors.EVENT_READ, bytearray())  # data: what came so far
            elif events & selectors.EVENT_READ:  # bytes arrived: recv() will not block
                try:
                    data = sock.recv(CHUNK)
                except OSError:
                    data = b""  # reset by the client: as good as closed
                key.data.extend(data)
                if b"\r\n\r\n" in key.data:  # a whole head: answer, when the socket can take it
                    selector.modify(sock, selectors.EVENT_WRITE, bytearray(RESPONSE))
                elif not data or len(key.data) > MAX_HEAD:
                    selector.unregister(sock)
                    sock.close()
            else:  # room to write: send() takes what it can, now, and never waits
                try:
                    sent = sock.send(key.data)
                except OSError:
                    sent = len(key.data)  # the client has gone: nothing more to send
                del key.data[:sent]
                if not key.data:
                    selector.unregister(sock)
                    sock.close()


# --- the command line: command_line.py's contract, and a choice of loop --------------------------

MODELS = {
    "forking-mistakes": lambda listener, app, args: serve_forking_with_mistakes(listener, app),
    "forking": lambda listener, app, args: serve_forking(listener, app),
    "threads-unbounded": lambda listener, app, args: serve_threads_unbounded(listener, app),
    "threaded": lambda listener, app, args: serve_threaded(listener, app, args.max_threads),
    "select": lambda listener, app, args: serve_select(listener),
}


def add_options(parser):
    parser.add_argument("--model", choices=MODELS, default="forking", help="which loop serves (default forking)")
    parser.add_argument("--max-threads", type=positive_int, default=10, help="the threaded model's cap (default 10)")


def serve_forever(listener, app, args):
    if args.model.startswith("forking") and not hasattr(os, "fork"):
        sys.exit("minimal_servers.py: this system has no fork() (Windows?)")
    MODELS[args.model](listener, app, args)


if __name__ == "__main__":
    sys.exit(run("The short versions of part 3's servers, one loop each.", serve_forever, add_options))
