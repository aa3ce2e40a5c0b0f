"""Run one of the workbook's server stages as a server of its own, for the graded checks.

    python -m grader.tests.launch part3 serve_forking grader.tests.apps:pid_app
    python -m grader.tests.launch part3 serve_threaded grader.tests.apps:counting_app --max-threads 2
    python -m grader.tests.launch part3 serve_select
    python -m grader.tests.launch part3 serve_select --response-size 16000000   # a large RESPONSE
    python grader/tests/launch.py part2 serve_wsgi part2_wsgi.apps.flask_app:app --port 0   # your whole server
    python -m grader.tests.launch part4 serve_asgi grader.tests.asgi_apps:app

It keeps the contract of every server in the workshop: listen on a free loopback port,
print ``Serving on http://HOST:PORT``, then call the stage (the workbook's, or with
``GRADER_TARGET=solutions`` the reference) in the *main thread*, where a SIGCHLD
handler can be installed and ``fork`` is safe. If the stage raises, the exception goes
to stderr as one line, ``GRADER-ERROR {"type": ..., "message": ..., "where": ...}``,
which the check turns back into the student's own error.

A forked child that lets an exception out of the stage (or returns from it) lands here
too, in a copy of this launcher: it reports the same line, marked ``"child": true``,
and ends at once, never running the parent's code. A forking server must end its
children itself, so the check turns that line into a failure that says so.

A stage graded on its own loop (``PIECES_GIVEN``) calls the reference's pieces in place of
the workbook's during its checks, as part 2's serve_wsgi does: serve_asgi earns its points
for its lifespan and its handler, whatever the student's make_send does yet.

``--response-size N`` gives serve_select's fixed ``RESPONSE`` a body of N bytes (still
ending in "Hello, select!"): more than a socket's buffers hold, so that a loop that waits
to send all of it to one client is seen waiting.
"""

import argparse
import json
import os
import signal
import sys
import traceback

from grader.workbook import load_exercise, load_reference, target, workbook_dir
from part2_wsgi.command_line import create_listening_socket, load_app

ERROR_MARK = "GRADER-ERROR "
CHILD_EXIT_STATUS = 70  # a child that reached the launcher ends with this, never running the parent's code
PIECES_GIVEN = {("part4", "serve_asgi"): ("build_scope", "make_receive", "make_send")}


class StageReturned(Exception):
    """The stage returned: a server loop serves forever."""


def where(error):
    """The innermost line of the workbook in the traceback, if any."""
    book = str(workbook_dir().resolve())
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if os.path.abspath(frame.filename).startswith(book):
            return f"{os.path.basename(frame.filename)}, line {frame.lineno}: {frame.line}"
    return ""


def give_pieces(part, name, stage):
    """Put the reference's pieces in place of the workbook's, where the stage calls them."""
    if target() != "exercises":
        return
    for piece in PIECES_GIVEN.get((part, name), ()):
        stage.__globals__[piece] = load_reference(part, piece)


def large_response(size):
    """A response like serve_select's RESPONSE, with a body of ``size`` bytes."""
    body = b"." * (size - len(b"Hello, select!")) + b"Hello, select!"
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("part")
    parser.add_argument("name")
    parser.add_argument("app", nargs="?")
    parser.add_argument("--max-threads", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--response-size", type=int)
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    me = os.getpid()
    try:
        stage = load_exercise(args.part, args.name)
        give_pieces(args.part, args.name, stage)
        if args.response_size:
            stage.__globals__["RESPONSE"] = large_response(args.response_size)
        listener = create_listening_socket(args.host, args.port)
        print(f"Serving on http://{args.host}:{listener.getsockname()[1]}", flush=True)
        arguments = [listener]
        if args.app:
            arguments.append(load_app(args.app))
        if args.max_threads is not None:
            arguments.append(args.max_threads)
        stage(*arguments)
        raise StageReturned(f"{args.name}() returned")
    except KeyboardInterrupt:
        if os.getpid() != me:
            os._exit(0)  # a child stopped with its parent: nothing to report
        return 0
    except BaseException as error:
        in_child = os.getpid() != me
        report_error(error, in_child)
        if in_child:
            os._exit(CHILD_EXIT_STATUS)  # never unwind into the parent's code, nor run its exit handlers
        return 1


def report_error(error, in_child):
    """One GRADER-ERROR line on stderr, in one write: children share the parent's stderr."""
    report = {"type": type(error).__name__, "message": str(error)[:300], "where": where(error), "child": in_child}
    sys.stderr.write(ERROR_MARK + json.dumps(report) + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
