"""Lesson 1: a TCP echo server, the smallest server there is.

A server is a program that listens on a port, accepts a connection, reads bytes and
writes bytes back. This one writes back every byte it receives, until the client
closes; then it serves the next client. One client at a time: that is an *iterative*
server. While one client stays connected, even silently, everyone else waits in the
backlog; try it with two telnets. Part 3 of the workshop is about doing better.

Run it, then talk to it from another terminal:

    python part1_sockets/echo_server.py            # Serving on http://127.0.0.1:8888
    telnet 127.0.0.1 8888                          # or: nc 127.0.0.1 8888
    python part1_sockets/echo_client.py --message hello

Stop it with Ctrl-C. Everything is in this one file, on purpose: read it top to bottom.
"""

import argparse
import signal
import socket
import sys

# Part 1's files import nothing from one another: each keeps its own copy of these.
DEFAULT_HOST = "127.0.0.1"  # loopback only: nobody else on the network can connect
DEFAULT_PORT = 8888
BACKLOG = 128  # how many finished handshakes the kernel queues while we are busy
CHUNK = 65536  # the most we ask recv() for at once; it may give us less


def make_listener(host, port):
    """Make a socket, bind it to (host, port) and start listening; return it."""
    # AF_INET: IPv4 addresses (AF_INET6 for IPv6 ones such as ::1);
    # SOCK_STREAM: TCP, a reliable stream of bytes.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)

    # Without SO_REUSEADDR, restarting the server right after Ctrl-C fails with
    # "Address already in use": the kernel keeps the old connections in TIME_WAIT for
    # a minute or so. This option lets us bind the port again at once.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    # bind() claims the address. Port 0 asks the kernel for any free port.
    listener.bind((host, port))

    # listen() turns this into a *listening* socket. From now on the kernel completes
    # TCP's three-way handshake (SYN, SYN-ACK, ACK) for each client by itself, and
    # queues the finished connections: the backlog is how long that queue may grow
    # while we are busy with someone else. Clients beyond it wait or are refused.
    listener.listen(BACKLOG)
    return listener


def echo(connection):
    """Send back every byte the client sends, until it closes its side."""
    while True:
        # recv() returns whatever has arrived, between 1 and CHUNK bytes: TCP is a
        # stream, not a sequence of messages, so one send() on the client may arrive
        # as several recv()s here, or several as one.
        data = connection.recv(CHUNK)
        if not data:
            # b"" means the client closed its side: no more bytes will ever come.
            return
        # send() may write only part of the data when the kernel's buffer is full, and
        # tells us how much it wrote. sendall() loops until every byte is written.
        connection.sendall(data)


def serve_echo(listener):
    """Accept clients one after another; echo to each until it leaves, then close."""
    while True:
        # accept() waits for the next connection in the backlog. The handshake is
        # already done; we get a *new* socket for this one client, and its address.
        # The listening socket stays open to accept the next client.
        connection, address = listener.accept()
        with connection:  # closes the client's socket however echo() ends
            try:
                echo(connection)
            except ConnectionError as error:
                # A client that vanishes (reset, broken pipe) must not stop the server.
                print(f"client {address[0]}:{address[1]} left abruptly: {error}", file=sys.stderr)


# ---------------------------------------------------------------------------------
# The command line: the same contract as every server in the workshop.


def port_number(text):
    """argparse type: a TCP port, 0 to 65535 (0 means "any free port")."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a number from 0 to 65535")
    return int(text)


class OneLineParser(argparse.ArgumentParser):
    """On a bad argument, print one clear line (not the whole usage) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None):
    parser = OneLineParser(description="An iterative TCP echo server.")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # Ctrl-C (SIGINT) raises KeyboardInterrupt; make SIGTERM (what `kill` sends) do the
    # same, so both stop the server the same clean way. We set SIGINT too because a
    # program started in the background by a shell begins with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        listener = make_listener(args.host, args.port)
    except OSError as error:
        sys.exit(f"echo_server.py: cannot listen on {args.host}:{args.port}: {error.strerror or error}")
    with listener:
        try:  # inside the try: whoever waits for the Serving line may signal at once
            host, port = listener.getsockname()[:2]
            host = f"[{host}]" if ":" in host else host  # how URLs write IPv6 addresses
            # Tests and notebooks wait for this exact line to learn the real port.
            print(f"Serving on http://{host}:{port}", flush=True)
            serve_echo(listener)
        except KeyboardInterrupt:
            print("Shutting down.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
