"""Everything a server program does besides serving: its command line and settings,
loading the app, the listening socket, the access log, a clean start and stop.

The servers of parts 2 and 3 differ in how they serve connections; what they do around
that lives here once. Each server file calls ``run(description, serve_forever)`` and
supplies its own ``serve_forever(listener, app, settings)``.

The contract (see the README): ``python SERVER.py [module:app] [--host H] [--port P]``
(``--files DIR`` serves a folder, before the app);
the first line on stdout is ``Serving on http://HOST:PORT``; Ctrl-C or SIGTERM stops
the server with exit status 0; a bad argument or an app that cannot be loaded prints
one line and exits 2.

Two things a production server adds that are not the lesson of any one server, each one
call away: ``accept`` waits out a shortage of file descriptors instead of dying, and
``grace_period`` lets requests in flight finish on Ctrl-C.
"""

import argparse
import errno
import importlib
import os
import signal
import socket
import sys
import time
from dataclasses import fields, replace
from functools import partial

from part2_wsgi.apps.files_app import FilesApp
from part2_wsgi.connection import Deadlines

DEFAULT_APP = "part2_wsgi.apps.demo_app:app"
DEFAULT_HOST = "127.0.0.1"  # loopback: only this machine can connect, unless you ask
DEFAULT_PORT = 8888
# Finished handshakes the kernel queues while the server is busy. With the old
# customary 5, a burst of 100 clients overflows the queue and clients wait for SYN
# retries (the README's contract says what that costs in latency).
BACKLOG = 1024
CHUNK = 65536  # the most we ask recv() for at once
GRACE_PERIOD = 1.0  # on Ctrl-C, seconds that requests in flight may take to finish
ACCEPT_PAUSE = 0.1  # seconds to stop accepting when out of file descriptors


# --- the settings: what the command line said ------------------------------------------------


class Settings(argparse.Namespace):
    """What the command line said, in one object: ``run`` builds it and hands it to the
    server's ``serve_forever``, which hands it down. Nothing changes it afterwards.

    Every server's settings have the attributes below; each server adds its own counts
    (``max_threads``, ``threads``, ``workers`` ...). Tests build one by hand:
    ``Settings(deadlines=Deadlines(idle=1), access_log=False)``."""

    app = DEFAULT_APP  # module:callable
    files = None  # a folder to serve (--files), its files before the app
    host = DEFAULT_HOST
    port = DEFAULT_PORT
    access_log = True  # one line per request on stderr; --quiet turns it off
    deadlines = Deadlines()  # how long clients may take; --deadlines changes them
    send_buffer = None  # SO_SNDBUF of each client's socket, in bytes (--send-buffer); None: the system's


# --- the command line -------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """On a bad argument, print one clear line (not the whole usage) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def port_number(text):
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a number from 0 to 65535")
    return int(text)


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a whole number of at least 1")
    return int(text)


def non_negative_int(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a whole number, 0 or more")
    return int(text)


def positive_seconds(text):
    """A number of seconds above 0 (``0.5``, ``10``); not negative, nan, or infinity."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number of seconds above 0")
    return seconds


def count_option(name, default, help_text, minimum=1):
    """``add_options`` for a server's count, such as ``--threads``: a whole number."""

    def add_options(parser):
        kind = positive_int if minimum == 1 else non_negative_int
        parser.add_argument(name, type=kind, default=default, help=f"{help_text} (default {default})")

    return add_options


def make_parser(description, deadlines=Deadlines(), interface="WSGI", default_app=DEFAULT_APP, files=True):
    """The options every server shares. Part 4's ASGI server says ``interface="ASGI"``,
    its own default app, and ``files=False`` (the files app is a WSGI app)."""
    parser = OneLineParser(description=description)
    with_files = "; with --files, none" if files else ""
    parser.add_argument(
        "app",
        nargs="?",
        default=None,
        metavar="APP",
        help=f"the {interface} app to serve, as module:callable (default {default_app}{with_files})",
    )
    if files:
        parser.add_argument(
            "--files",
            type=existing_folder,
            metavar="DIR",
            help="serve the files of DIR (as python -m http.server does); with an APP, a file that exists "
            "wins and the rest goes to the APP",
        )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--quiet",
        dest="access_log",
        action="store_false",
        help="no access log (benchmarks: gunicorn and waitress keep none by default)",
    )
    names = ",".join(f"{field.name}={getattr(deadlines, field.name):g}" for field in fields(Deadlines))
    parser.add_argument(
        "--deadlines",
        type=partial(deadlines_setting, defaults=deadlines),
        metavar="NAME=S,...",
        help=f"how long clients may take, in seconds (default {names}; see part2_wsgi/connection.py's Deadlines)",
    )
    parser.add_argument(
        "--send-buffer",
        type=positive_int,
        metavar="BYTES",
        help="the kernel's send buffer for each client (SO_SNDBUF; Linux doubles it); default: the system's, "
        "which grows as needed. A small one shows a slow reader's progress sooner (the tests use it)",
    )
    return parser


def existing_folder(text):
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no folder {text!r} to serve")
    return text


def deadlines_setting(text, defaults=Deadlines()):
    """``head=2,idle=1``: the server's ``defaults`` with those values changed (tests use short ones)."""
    known = {field.name for field in fields(Deadlines)}
    changes = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in known or not value.replace(".", "", 1).isdigit():
            raise argparse.ArgumentTypeError(
                f"invalid deadline {item!r}: expected NAME=SECONDS, NAME one of {sorted(known)}"
            )
        changes[name] = type(getattr(defaults, name))(float(value))  # body_min_rate is a whole number
    return replace(defaults, **changes)


# --- loading the app -----------------------------------------------------------------------


class AppLoadError(Exception):
    """The APP argument does not name a callable we can import."""


def load_app(spec):
    """Import ``module:callable`` (as gunicorn and waitress take it) and return the callable."""
    module_name, colon, attribute = spec.partition(":")
    if not (module_name and colon and attribute):
        raise AppLoadError(f"APP must look like module:callable, for example {DEFAULT_APP}; got {spec!r}")
    # Let "myapp:app" find myapp.py in the directory the server was started from, as
    # gunicorn does; Python itself only looks beside the server's script.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or the module itself failed (SyntaxError, ...)
        message = f"cannot import {module_name!r}: {type(error).__name__}: {error}"
        missing = error.name if isinstance(error, ModuleNotFoundError) else None
        if missing and not f"{module_name}.".startswith(f"{missing}."):
            # The module exists but needs a package that is not installed (Flask, say).
            message += "; install the workshop's requirements: python -m pip install -r requirements.txt"
        raise AppLoadError(message) from None
    app = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(app):
        raise AppLoadError(f"{spec!r} is a {type(app).__name__}, not a callable WSGI app")
    return app


def served_app(settings):
    """The app a server serves: APP; with --files, the folder's files first, then APP (if
    one was given; without, what is not a file is a 404)."""
    if settings.files is None:
        return load_app(settings.app or DEFAULT_APP)
    return FilesApp(settings.files, fallback=load_app(settings.app) if settings.app else None)


def serves_files_only(settings):
    """Is the app the files app alone (``--files DIR`` without an APP)?"""
    return settings.files is not None and not settings.app


# --- the listening socket ------------------------------------------------------------------


def create_listening_socket(host, port, backlog=BACKLOG, reuse_port=False):
    """socket, SO_REUSEADDR, bind, listen: as in part 1, now shared by every server.

    ``reuse_port``: SO_REUSEPORT, so that several sockets can listen on one port (the
    prefork server's ``--reuse-port``). Never by default: a second server started on a
    port in use must fail with "address already in use", not share it in silence.

    Windows gives SO_REUSEADDR another meaning: any socket may then bind the same
    address, a second server too, and take connections meant for the first (see the
    comment in CPython's ``socket.create_server``). Restarting needs no option there, so
    we ask for the opposite, SO_EXCLUSIVEADDRUSE: nobody else may bind our address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows only
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
    else:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after Ctrl-C
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(backlog)
    return listener


SIGNAL_LOOK = 1.0  # seconds accept() waits before it looks for a Ctrl-C it may have missed


def accept(listener):
    """``listener.accept()``, waiting out a shortage of file descriptors instead of dying.

    Every connection is a descriptor. When the process has none left (EMFILE), accept()
    fails while the client stays in the backlog; connections that close meanwhile free
    descriptors, so we pause a moment and try again.

    It also looks up every ``SIGNAL_LOOK`` seconds while nobody comes. CPython runs a
    signal's handler between bytecodes, and a signal interrupts the blocking call it
    lands in; but a Ctrl-C that lands in the instant before accept() begins to block
    interrupts nothing, and would wait for the next client. Rare, but a server that
    ignores Ctrl-C once in a few hundred times is a server people kill."""
    if listener.gettimeout() is None:
        listener.settimeout(SIGNAL_LOOK)  # (the sockets it accepts are blocking all the same)
    while True:
        try:
            return wait_out_shortage(listener.accept, "accept")
        except TimeoutError:
            pass  # nobody came: a pending Ctrl-C's handler runs now, between bytecodes


SHORTAGES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EAGAIN}


def wait_out_shortage(call, what):
    """``call()``, retried after a pause while the system is short of descriptors,
    processes or memory: such shortages pass, and a server must not die of one."""
    while True:
        try:
            return call()
        except OSError as error:
            if error.errno not in SHORTAGES:
                raise
            log_problem(("server", "-"), f"cannot {what}: {error.strerror}; pausing for {ACCEPT_PAUSE} s")
            time.sleep(ACCEPT_PAUSE)


def url_host(host):
    return f"[{host}]" if ":" in host else host


def raise_open_file_limit():
    """Raise this process's soft limit on open files to its hard limit; return it.

    Every connection is a file descriptor, and the usual soft limit (often 1024) would
    cap a server, or a load client, near a thousand connections. Raising the soft limit
    up to the hard one needs no privileges.

    Windows has no ``resource`` module, and no such limit to raise: there this returns None.
    """
    try:
        import resource  # Unix only, and only needed here
    except ImportError:
        return None

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # macOS caps the soft limit below an "unlimited" hard one
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the logs ------------------------------------------------------------------------------------


# A target may hold a quote and a backslash (the parser takes any visible ASCII there): a
# quote written as it is would end the quoted request line early, and what the client put
# after it would read as the status and size. nginx's access log writes both as \x22 and
# \x5C (the escape's own backslash escaped too); so does ours.
LOG_ESCAPES = str.maketrans({'"': r"\x22", "\\": r"\x5C"})


def log_request(address, request, status_code, size):
    """One line per request on stderr, in Common Log Format (as Apache and nginx write it):
    127.0.0.1 - - [25/Nov/2026:14:03:07 +0000] "GET / HTTP/1.1" 200 1832

    The servers call it when ``settings.access_log`` is on."""
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    request_line = f"{request.method} {request.target} {request.version}" if request else "-"
    request_line = request_line.translate(LOG_ESCAPES)
    write_log_line(f'{address[0]} - - [{when}] "{request_line}" {status_code} {size or "-"}')


def log_close(address, close):
    """The log lines for a connection's ``Close``: the refused request, and what went wrong."""
    if close.status:
        log_request(address, close.request, close.status, 0)
    if close.problem:
        log_problem(address, close.problem)


def log_problem(address, message):
    """One line for a client that misbehaved or left: never a traceback."""
    write_log_line(f"{address[0]}:{address[1]} {message}")


def write_log_line(line):
    # One write() call per line: print() writes the text and the newline separately,
    # and lines from several threads would interleave between the two.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# --- a clean stop ------------------------------------------------------------------------------


def grace_period(busy, seconds=GRACE_PERIOD):
    """On Ctrl-C, let requests in flight finish, for a while: yields as long as ``busy()``
    says some are left and the time is not up, and the caller waits a moment (or serves)
    each time round. Whatever is still busy afterwards, the caller stops.

        for _ in grace_period(lambda: running):
            time.sleep(0.01)
    """
    deadline = time.monotonic() + seconds
    while busy() and time.monotonic() < deadline:
        yield


# --- start and stop -------------------------------------------------------------------------

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def hold_stop_signals(hold):
    """Hold Ctrl-C and SIGTERM back (``True``), then let them through (``False``).

    For an event loop's first instants: whoever read ``Serving on`` may signal us at once,
    and a KeyboardInterrupt while asyncio builds its loop leaves the loop half-built (a
    traceback when it is collected). Held, the signal waits for the loop's own handler.
    It holds them in the calling thread: while held, the process should have no other
    thread (the kernel gives a signal to any thread that does not hold it), and a thread
    started meanwhile would hold them for good. Where signals cannot be held (Windows),
    it does nothing."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK if hold else signal.SIG_UNBLOCK, STOP_SIGNALS)


def run(description, serve_forever, add_options=None, argv=None, one_at_a_time=False):
    """Parse the command line, load the app, listen, announce, serve until Ctrl-C.

    ``one_at_a_time``: while one client keeps the server waiting, nobody else is served
    (True, or a function of the settings that says so: an event loop with ``--threads
    0``); such a server waits less for a slow reader (``Deadlines.for_server``)."""
    deadlines = Deadlines.for_server(one_at_a_time is True)
    parser = make_parser(description, deadlines)
    if add_options:
        add_options(parser)
    settings = parser.parse_args(argv, namespace=Settings(deadlines=deadlines))
    if callable(one_at_a_time) and one_at_a_time(settings) and settings.deadlines is deadlines:
        settings.deadlines = Deadlines.for_server(one_at_a_time=True)  # (--deadlines not given)
    program = parser.prog
    # Ctrl-C (SIGINT) raises KeyboardInterrupt; SIGTERM (what `kill` sends) does the same,
    # so both stop the server one clean way, from the start: a large app takes a while to
    # load. SIGINT is set too because what a shell without job control starts with `&` (a
    # script's) begins with SIGINT ignored.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.default_int_handler)
    try:
        app = served_app(settings)
    except AppLoadError as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # stopped while the app loaded
        return 0
    raise_open_file_limit()  # every connection is a descriptor: room for more than a thousand
    reuse_port = getattr(settings, "reuse_port", False)
    try:
        listener = create_listening_socket(settings.host, settings.port, reuse_port=reuse_port)
    except OSError as error:
        where = f"{settings.host}:{settings.port}"
        print(f"{program}: error: cannot listen on {where}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    with listener:
        # The announcement is inside the try: whoever waits for it may signal us at once.
        try:
            host, port = listener.getsockname()[:2]
            # Tests, notebooks and the grader wait for this exact line to learn the port.
            print(f"Serving on http://{url_host(host)}:{port}", flush=True)
            serve_forever(listener, app, settings)
        except KeyboardInterrupt:
            pass
    print("Shutting down.", file=sys.stderr, flush=True)
    return 0
