"""Lesson 1, the other side: a TCP client, Python's answer to telnet.

A client makes a socket and connect()s it to a server's address; the kernel does the
three-way handshake, and from then on both sides hold a socket that reads and writes a
stream of bytes. This client sends each line you type (or one --message) to the echo
server and prints what comes back.

    python part1_sockets/echo_client.py --message "hello, server"
    python part1_sockets/echo_client.py                  # type lines; Ctrl-D to end
    printf 'one\\ntwo\\n' | python part1_sockets/echo_client.py --port 8888

Everything is in this one file, on purpose: read it top to bottom.
"""

import argparse
import socket
import sys

# Part 1's files import nothing from one another: each keeps its own copy of these.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
CHUNK = 65536
TIMEOUT = 10  # seconds to wait for the server before giving up


def receive_exactly(connection, size):
    """Read exactly ``size`` bytes: recv() may hand them over in any number of pieces."""
    pieces = []
    remaining = size
    while remaining:
        piece = connection.recv(min(remaining, CHUNK))
        if not piece:
            raise ConnectionError(f"the server closed the connection with {remaining} bytes still to come")
        pieces.append(piece)
        remaining -= len(piece)
    return b"".join(pieces)


def echo(connection, data):
    """Send ``data`` and return what the echo server sends back.

    We send a chunk and read its echo before sending the next. Sending everything first
    and reading afterwards deadlocks on a large message: the server blocks writing to us
    because we are not reading, so it stops reading, and then we block writing to it.
    """
    echoed = []
    for start in range(0, len(data), CHUNK):
        chunk = data[start : start + CHUNK]
        connection.sendall(chunk)
        echoed.append(receive_exactly(connection, len(chunk)))
    return b"".join(echoed)


def messages(args):
    """What to send: the --message, or each line of standard input as it is typed."""
    if args.message is not None:
        yield args.message.encode() + b"\n"
        return
    yield from sys.stdin.buffer


def run(args):
    # create_connection() resolves the host, makes the socket and connect()s it.
    with socket.create_connection((args.host, args.port), timeout=TIMEOUT) as connection:
        for message in messages(args):
            reply = echo(connection, message)
            sys.stdout.buffer.write(reply)
            sys.stdout.flush()
        # Leaving the with-block close()s the socket: the server's recv() returns b"".


def port_number(text):
    """argparse type: a TCP port, 1 to 65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a number from 1 to 65535")
    return int(text)


class OneLineParser(argparse.ArgumentParser):
    """On a bad argument, print one clear line (not the whole usage) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None):
    parser = OneLineParser(description="Send lines to an echo server and print what comes back.")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"server address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"server port (default {DEFAULT_PORT})")
    parser.add_argument("--message", help="send this one message instead of reading standard input")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        return 0  # Ctrl-C while typing: just leave
    except OSError as error:  # refused, timed out, reset: one clear line, no traceback
        sys.exit(f"echo_client.py: {args.host}:{args.port}: {error.strerror or error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
