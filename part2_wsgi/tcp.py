"""What a server asks of a TCP socket besides send and recv: the lesson is that the
kernel knows more about a connection than ``send()`` tells you.

Every server here, blocking or event loop, uses these on the sockets it accepts:

* ``tune_accepted_socket``: turn Nagle's algorithm off, and set the size of the
  kernel's send buffer if the command line asks (``--send-buffer``);
* ``wait_until_writable``: wait, for a while, until a socket takes more bytes;
* ``unacknowledged_bytes``: how many of the bytes a socket took the client has not yet
  acknowledged. ``send()`` says what the *kernel* took, and the kernel takes more only
  once a good part of its buffer is free again (on Linux a third of a buffer that grows
  to a few MB): a client that reads slowly but steadily can go many seconds without the
  socket taking a byte, and yet it receives all the time. The acknowledgements show it.

The HTTP rules about what that progress means (the send deadline) are the protocol's
``Connection.unacknowledged``; this module only asks the kernel.
"""

import select
import socket
import struct
import sys

try:  # Unix only; elsewhere there is no way to ask, and the servers count writability alone
    import fcntl
    import termios
except ImportError:
    fcntl = termios = None

# macOS's getsockopt(SOL_SOCKET, SO_NWRITE): the bytes in the send buffer, sent or not, that
# the peer has not acknowledged (the kernel keeps them until then). Python's socket module
# does not name it; the value is <sys/socket.h>'s.
SO_NWRITE = 0x1024

if sys.platform.startswith("linux") and hasattr(termios, "TIOCOUTQ"):
    # SIOCOUTQ, which Linux numbers as the terminal's TIOCOUTQ: for a TCP socket, the
    # bytes written and not yet acknowledged (the kernel's write_seq - snd_una; man 7 tcp
    # calls them "unsent", but what was sent stays queued until the peer acknowledges it).
    HOW_TO_ASK = "SIOCOUTQ"
elif sys.platform == "darwin":
    HOW_TO_ASK = "SO_NWRITE"
else:
    HOW_TO_ASK = None

PROGRESS_LOOK = 1.0  # seconds between two looks at the acknowledgements of a client we wait for


def disable_nagle(sock):
    """Send small writes at once. By default TCP holds a small write back until the
    previous one is acknowledged (Nagle's algorithm), and the client delays its
    acknowledgement (by 40 ms on Linux): a streamed response of small chunks on a kept-
    alive connection would crawl at 40 ms a chunk. We write whole pieces, so no need."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tune_accepted_socket(sock, send_buffer=None):
    """Nagle off; and with ``send_buffer`` (bytes), a send buffer of that size instead of one
    the kernel grows as it sees fit (Linux doubles the number, for its own bookkeeping).
    A small buffer makes a slow reader's progress show within seconds: the tests use it."""
    disable_nagle(sock)
    if send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)


def wait_until_writable(sock, timeout):
    """Whether ``sock`` takes more bytes within ``timeout`` seconds. poll() where the system
    has it: select() cannot watch a descriptor numbered 1024 or more, and a server with
    many clients has such numbers; Windows has select() only."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        return bool(poller.poll(max(timeout, 0) * 1000))
    return bool(select.select([], [sock], [], max(timeout, 0))[1])


def unacknowledged_bytes(sock):
    """How many of the bytes ``sock`` took the client has not acknowledged yet, or None
    where the system cannot tell (or the socket is gone)."""
    try:
        if HOW_TO_ASK == "SIOCOUTQ":
            answer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, bytes(4))
            return struct.unpack("i", answer)[0]
        if HOW_TO_ASK == "SO_NWRITE":
            return sock.getsockopt(socket.SOL_SOCKET, SO_NWRITE)
    except (OSError, ValueError):  # (ValueError: a closed socket's descriptor is -1)
        pass
    return None
