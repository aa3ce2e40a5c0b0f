"""Lesson 4, a side trip: the two classic mistakes of a forking server, made on purpose.

    python part3_concurrency/forking_mistakes.py [--forget-close] [--no-reap] [--host H] [--port P]

forking_server.py gets two things right, and says so at the spot. This file gets them
wrong when you ask it to, so that you can watch what happens (notebook 03, section 4;
section 1.1 makes the same two mistakes in a few lines):

--forget-close  The parent does not close its copy of each client's connection. The
                child answers and closes *its* copy, but a TCP connection only ends when
                every process holding it has closed it. So the client gets the response
                and never the end of it: a client that reads until the server closes
                (an HTTP/1.0 client, or one that sent ``Connection: close``) waits
                forever. And the parent holds one more descriptor for every client.

--no-reap       The parent never calls ``wait()``. A child that exits stays in the
                process table as a *zombie* (``Z``, ``<defunct>`` in ``ps``), keeping
                its process id and its exit status until its parent collects them.

Without either flag this is a correct, tiny forking server. To stay readable top to
bottom it uses the standard library only, none of part 2's code, and speaks just
enough HTTP: it reads a request head (and discards a body, if there is one), answers
every request with the same small response, and, since HTTP/1.1 keeps connections
open by default, waits up to IDLE_TIMEOUT seconds for the client's next request unless
the client asked to close. The response has a Content-Length and no ``Connection:
close``: a careful client knows where it ends without waiting for the connection to
close, which is exactly why the first mistake so often goes unnoticed.

Whatever the flags, on Ctrl-C or SIGTERM the server closes what it holds, stops its
children and reaps every one of them, zombies included, then exits 0: nothing is left
behind.
"""

import argparse
import os
import signal
import socket
import sys
import time

IDLE_TIMEOUT = 1.0  # seconds a child waits for the next request on a quiet connection
MAX_HEAD = 16384  # bytes; a longer request head is not a request we want to read
BACKLOG = 128


def response(pid):
    """The answer to every request: tiny, with its length, and no Connection: close."""
    body = f"hello from child {pid}\n".encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


# --- the child: one connection --------------------------------------------------------


def serve_connection(connection, address):
    """Answer requests on one connection until the client closes, asks to close, or
    stays quiet for IDLE_TIMEOUT seconds."""
    connection.settimeout(IDLE_TIMEOUT)
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:  # recv until the blank line that ends the head
            if len(buffer) > MAX_HEAD:
                return
            try:
                data = connection.recv(65536)
            except (TimeoutError, ConnectionError):
                return  # quiet for too long, or gone
            if not data:
                return  # the client closed
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

        # Read and discard a body, so that its bytes are not taken for the next request.
        length = headers.get("content-length", "0")
        if not length.isdigit():
            return
        try:
            while len(buffer) < int(length):
                data = connection.recv(65536)
                if not data:
                    return
                buffer += data
        except (TimeoutError, ConnectionError):
            return
        buffer = buffer[int(length) :]

        answer = response(os.getpid())
        connection.sendall(answer)
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        print(f'{address[0]} - - [{when}] "{request_line}" 200 {len(answer)}', file=sys.stderr, flush=True)

        # HTTP/1.1 keeps the connection open unless the client says otherwise;
        # HTTP/1.0 closes it after one response.
        if headers.get("connection", "").lower() == "close" or not request_line.endswith("HTTP/1.1"):
            return


def child(connection, address, listener):
    """Runs in the child after fork(): serve the one connection, then exit."""
    status = 0
    try:
        # Ctrl-C in a terminal reaches the whole process group, children included: leave
        # it to the parent to decide when children stop (it sends SIGTERM).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        listener.close()  # the child's copy of the listening socket: no use here
        serve_connection(connection, address)
        connection.close()  # the child's copy: with the parent's closed too, the client sees the end
    except BaseException:
        status = 1
    finally:
        # os._exit, not sys.exit: never run the parent's clean-up code in the child.
        os._exit(status)


# --- the parent: accept and fork ---------------------------------------------------------


def reap_children(signum, frame):
    """SIGCHLD: collect every child that has exited (signals do not queue, so loop)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children at all
        if pid == 0:
            return  # children remain, none has exited yet


def serve_forever(listener, forget_close, no_reap):
    if not no_reap:
        signal.signal(signal.SIGCHLD, reap_children)
    # MISTAKE 2 (--no-reap) is what is *missing* above: with no handler for SIGCHLD (and
    # no wait() anywhere) every child that exits becomes a zombie until we exit.
    children = set()
    forgotten = []
    try:
        while True:
            connection, address = listener.accept()
            pid = os.fork()
            if pid == 0:
                child(connection, address, listener)  # never returns
            children.add(pid)
            if forget_close:
                # MISTAKE 1 (--forget-close). In C, leaving out close() is enough to make
                # it. Python closes a socket when its last reference goes away, so here
                # the mistake needs a reference that stays, as a server would keep one by
                # remembering its clients "for the statistics". (And every later child
                # inherits these copies too.)
                forgotten.append(connection)
            else:
                connection.close()  # the parent's copy: only the child serves this client
            children = {pid for pid in children if alive(pid)}  # a zombie is still "alive"
    finally:
        listener.close()
        for connection in forgotten:
            connection.close()
        stop_children(children)


def alive(pid):
    """Does this process still exist (running, or a zombie not yet reaped)?"""
    try:
        os.kill(pid, 0)  # signal 0: check, send nothing
    except ProcessLookupError:
        return False
    return True


def stop_children(children):
    """On the way out: stop the children still running and reap all of them."""
    # From here on we reap by hand: no handler may collect a child behind our back (its
    # process id could then be reused by a stranger, whom we must not signal).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in children:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                continue  # it had exited (a zombie): now reaped
        except ChildProcessError:
            continue  # reaped already: not our child any more
        os.kill(pid, signal.SIGTERM)  # still running (lingering on a quiet client)
        os.waitpid(pid, 0)


# --- the command line ------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description="A forking HTTP server that makes two classic mistakes on request.")
    parser.add_argument("--forget-close", action="store_true", help="the parent keeps its copy of each connection open")
    parser.add_argument("--no-reap", action="store_true", help="no SIGCHLD handler: exited children become zombies")
    parser.add_argument("--host", default="127.0.0.1", help="IPv4 address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8888, help="port (default 8888; 0 picks a free one)")
    args = parser.parse_args(argv)
    if not hasattr(os, "fork"):
        print("forking_mistakes.py: this system has no fork() (Windows?)", file=sys.stderr)
        return 1

    # Ctrl-C and SIGTERM both raise KeyboardInterrupt in the parent: one clean way out.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # IPv4, as in part 1
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as error:
        print(f"forking_mistakes.py: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    listener.listen(BACKLOG)
    host, port = listener.getsockname()[:2]
    print(f"Serving on http://{host}:{port}", flush=True)
    try:
        serve_forever(listener, args.forget_close, args.no_reap)
    except KeyboardInterrupt:
        pass
    print("Shutting down.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
