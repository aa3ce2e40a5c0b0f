"""The grader's engine: which exercises there are, how each is run, and the report.

An exercise is one function of the workbook (``exercises/part1.py`` ...), graded by the
tests marked with its name in ``grader/tests/test_part1.py`` .... Each exercise runs in
a process of its own:

    python -m pytest grader/tests/test_part1.py --exercise serve_echo --results-file F ...

so that whatever the student's code does (loop forever, call ``sys.exit()`` or
``os._exit()``, start a server that never answers, crash the interpreter) it costs that
exercise its points and nothing more:

* each check (test) has a time limit, ``--timeout`` (pytest-timeout interrupts it);
* the whole process has a hard limit too, for code that ignores the first one;
  then its whole process group is killed, children included;
* the process writes one line per check to F *as it goes* (see ``grader/tests/conftest.py``),
  so even when it dies we know which checks passed and which one it died in.

Points are all or nothing per exercise: an exercise earns its points when every one of
its checks passes. Checks run in order, from basic to strict, and stop at the first
failure, whose message (what was seen, what was expected) is what the student sees.

There are two tracks. The required one is the student's own servers, stage by stage,
each graded over loopback; the optional hardening track is the helper functions that
make a server robust (framing, smuggling rules, parsing), with points of their own.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = ROOT / "grader" / "tests"

# Seconds one check may take before it fails as "timed out". More than the checks' own
# waits (3 s for an answer, 5 s for a megabyte), so that a check that waits in vain
# says what it was waiting for.
CHECK_TIMEOUT = 6.0
STARTUP_ALLOWANCE = 6.0  # seconds for starting Python and pytest, on a slow machine


# --- the exercises ---------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    part: str  # "part1"
    name: str  # the function's name, the same in the workbook and in the reference
    points: int
    reference: str  # "module:function": the reference code, graded by --solutions
    notebook: str  # the notebook section that prepares it
    track: str = "required"  # or "hardening": optional, with points of its own
    hints: tuple = ()  # revealed one at a time by --hint; the last says where to read

    @property
    def id(self):
        return f"{self.part}.{self.name}"


PARTS = {"part1": "Sockets", "part2": "HTTP and WSGI", "part3": "Concurrency", "part4": "ASGI"}
TRACKS = {
    "required": "Required track: your own servers, stage by stage",
    "hardening": "Hardening track (optional): the details that make a server robust",
}


def required(part, name, points, reference, notebook, *hints):
    return Exercise(part, name, points, reference, notebook, "required", hints)


def hardening(part, name, points, reference, notebook, *hints):
    return Exercise(part, name, points, reference, notebook, "hardening", hints)


# In the order a student meets them: the required track, part by part, then the
# hardening track. Within a part and a track, from easy to hard. Every hint says what
# to look at, never code to paste; the last one names the notebook section or the file.
EXERCISES = [
    required(
        "part1",
        "make_listener",
        1,
        "part1_sockets.echo_server:make_listener",
        "01_sockets.ipynb, section 2.1",
        "Four calls, in this order: make a TCP socket (IPv4, or IPv6 for a host with a ':'), set an option, "
        "bind, listen.",
        "The option is SO_REUSEADDR, at the SOL_SOCKET level; the backlog is the number you give listen(); "
        "the family AF_INET6 makes an IPv6 socket.",
        "Notebook 01, section 2.1 makes a listening socket in three cells, a call or two in each; "
        "part1_sockets/echo_server.py has the four calls in one function, the choice of family included.",
    ),
    required(
        "part1",
        "serve_echo",
        2,
        "part1_sockets.echo_server:serve_echo",
        "01_sockets.ipynb, section 2.2",
        "Two loops: the outer one accepts a client, the inner one receives and sends back until recv() gives b''.",
        "When recv() gives b'' the client has closed its side: close the connection (a with-block does it) and "
        "go back to accept(). A client that resets must not end the outer loop.",
        "Notebook 01, section 2.2 serves one client call by call; part1_sockets/echo_server.py is the whole loop.",
    ),
    required(
        "part1",
        "serve_http",
        3,
        "part1_sockets.http_server:serve_http",
        "01_sockets.ipynb, sections 3.1-3.5",
        "Give the connection a timeout of TIMEOUT seconds, then read until the blank line that ends the head, "
        "then exactly Content-Length more bytes: one recv() is never a whole request. A timeout, a reset or "
        "nonsense ends that client, never the loop.",
        "Every answer, a 400 too, is a status line (a BadRequest's status is its .status), Content-Type, "
        "Content-Length, Connection: close, a blank line and the body; HEAD gets the same head and no body. "
        "Fields arrive URL-encoded (urllib.parse decodes them) and go into the page HTML-escaped (the html module).",
        "Notebook 01, sections 3.2-3.4 take a GET, a HEAD and a POST apart byte by byte, and show the 400 and "
        "the timeout; part1_sockets/http_server.py reads top to bottom.",
    ),
    required(
        "part2",
        "load_app",
        1,
        "part2_wsgi.command_line:load_app",
        "02_wsgi.ipynb, section 3.1",
        "Split the spec at the colon; import the module by its name; then look the callable up on it.",
        "Catch the import's failure and the missing attribute, and raise AppLoadError with a message that "
        "names what is missing.",
        "Notebook 02, section 3.1 loads an app step by step; part2_wsgi/command_line.py has load_app.",
    ),
    required(
        "part2",
        "build_environ",
        2,
        "part2_wsgi.minimal_server:build_environ",
        "02_wsgi.ipynb, section 3.2",
        "A dict with CGI's keys (REQUEST_METHOD, PATH_INFO, QUERY_STRING, SERVER_NAME, REMOTE_ADDR, ...) and "
        "WSGI's (wsgi.version, wsgi.input, wsgi.errors, ...); every CGI value is a str. The server's address "
        "gives the SERVER_ keys, the client's address the REMOTE_ ones.",
        "The target splits at '?' into path and query; the path is %-decoded as latin-1; wsgi.input is a file "
        "that reads the body (io.BytesIO), not the bytes themselves.",
        "Notebook 02, section 3.2 lists the keys, and section 4.3 shows every one for a real request; "
        "part2_wsgi/minimal_server.py builds it.",
    ),
    required(
        "part2",
        "run_app",
        3,
        "part2_wsgi.minimal_server:run_app",
        "02_wsgi.ipynb, section 3.3",
        "Define start_response inside run_app: it only stores the status and headers (and returns a write "
        "callable); nothing is sent yet. A second call without exc_info is an AssertionError.",
        "Send the head, Connection: close included, with the first non-empty piece of body; call the result's "
        "close() in a finally. If the app raises, the traceback goes to wsgi.errors; then a 500 if nothing went "
        "out yet, or else re-raise.",
        "Notebook 02, section 3.3 runs an app by hand; part2_wsgi/minimal_server.py has run_app.",
    ),
    required(
        "part2",
        "serve_wsgi",
        3,
        "part2_wsgi.minimal_server:serve_wsgi",
        "02_wsgi.ipynb, section 3.4",
        "Accept a connection; give it a timeout of TIMEOUT seconds; read_request; build_environ; run_app with "
        "a send that hands each piece to send_in_pieces (given) with this connection, never the connection's own "
        "send or sendall; close it in a with-block; repeat.",
        "read_request gives None for a client that leaves without a word, raises ValueError for a request it "
        "cannot read (answer 400) and OSError for a client that breaks off or stays silent. Anything else "
        "run_app raises is the app failing half way: one line on stderr. Nothing may end the loop.",
        "Notebook 02, section 3 starts the minimal server with Flask before 3.1, and section 3.4 runs yours; "
        "part2_wsgi/minimal_server.py has serve_wsgi and serve_connection.",
    ),
    required(
        "part3",
        "serve_forking",
        3,
        "part3_concurrency.minimal_servers:serve_forking",
        "03_concurrency.ipynb, sections 1.1-1.2",
        "After fork() two processes hold both sockets: the child closes the listener before it serves, the parent "
        "closes the connection.",
        "The child ends with os._exit in a finally, whatever serving did; the parent reaps exited children in a "
        "SIGCHLD handler that loops on waitpid with WNOHANG, never waiting for a child still at work.",
        "Notebook 03, sections 1.1-1.2 run the two mistakes and the fix, and section 4.3 says why the handler "
        "loops; part3_concurrency/minimal_servers.py has serve_forking.",
    ),
    required(
        "part3",
        "serve_threaded",
        3,
        "part3_concurrency.minimal_servers:serve_threaded",
        "03_concurrency.ipynb, section 1.3",
        "First a free slot, then accept(); a new thread serves that connection while the main thread goes back "
        "to wait for the next free slot.",
        "The cap is a threading.BoundedSemaphore: acquire before accept, release when the thread is done, in a "
        "finally. Daemon threads let Ctrl-C stop the server at once.",
        "Notebook 03, section 1.3 shows the three-line version, then how the cap works and why it comes before "
        "accept; part3_concurrency/minimal_servers.py has serve_threaded.",
    ),
    required(
        "part3",
        "serve_select",
        4,
        "part3_concurrency.minimal_servers:serve_select",
        "03_concurrency.ipynb, section 1.4",
        "One selector; the listener and every connection non-blocking and registered; act only on the sockets "
        "select() says are ready.",
        "Keep what each connection has sent so far in its key's data; once it holds a blank line, switch the "
        "connection to EVENT_WRITE with a bytearray of what to send, and send() what the socket takes, keeping "
        "the rest.",
        "Notebook 03, section 1.4 runs the selectors loop; part3_concurrency/minimal_servers.py has serve_select.",
    ),
    required(
        "part4",
        "build_scope",
        2,
        "part4_asgi.asgi:build_scope",
        "04_asgi.ipynb, section 2.1",
        "A plain dict: strings where ASGI says str (method, path), bytes where the wire has bytes (raw_path, "
        "query_string, headers), lists for the two addresses.",
        "The path splits from the query at '?'; only the path is %-decoded, as UTF-8 with errors replaced; "
        "root_path goes in front of both paths; header names are lower-cased, then encoded as latin-1, and a "
        "repeated header stays two pairs.",
        "Notebook 04, section 2.1 prints the scope of a real request key by key; part4_asgi/asgi.py has "
        "build_scope, with the reason behind each rule.",
    ),
    required(
        "part4",
        "make_receive",
        2,
        "part4_asgi.minimal_asgi_server:make_receive",
        "04_asgi.ipynb, section 2.2",
        "make_receive defines an async receive() inside it and returns it; receive() keeps, between calls, how "
        "many body bytes are still to come (nonlocal).",
        "Each call reads once, at most CHUNK and never past what is left; more_body is whether anything is left "
        "after this piece. Once the body is given, read until the reader's end: then the client has gone. An "
        "early end, or an OSError, is the client gone too.",
        "Notebook 04, section 2.2 shows the messages a live server's receive() gives a small body and a chunked "
        "upload; part4_asgi/minimal_asgi_server.py has make_receive.",
    ),
    required(
        "part4",
        "make_send",
        3,
        "part4_asgi.minimal_asgi_server:make_send",
        "04_asgi.ipynb, section 2.3",
        "send() looks at the message's type: the start is only remembered; each body writes, and the first "
        "writes the head before it.",
        "After every write, await the writer's drain: that is where a slow client makes the app wait, and where "
        "a client that left raises. The last body (more_body missing or False) closes the writer; for HEAD "
        "write no body at all.",
        "Notebook 04, section 2.3 sends a response message by message, and section 4 shows send() waiting for "
        "a client that reads nothing (drain() does it in the one-screen server); part4_asgi/minimal_asgi_server.py "
        "has make_send.",
    ),
    required(
        "part4",
        "serve_asgi",
        4,
        "part4_asgi.minimal_asgi_server:serve_asgi",
        "04_asgi.ipynb, section 5",
        "One coroutine under asyncio.run: lifespan first, then start_server on the listener you are given, then "
        "serve_forever. The handler is a coroutine of its own, run by asyncio for each connection.",
        "The lifespan call is a task; its receive() hands out the startup message from a queue, its send() "
        "resolves a future; asyncio.wait on that future and on the task, FIRST_COMPLETED, tells an answer from "
        "an app that does no lifespan.",
        "Notebook 04, section 3 follows one request through the server, and section 5 shows the lifespan's state "
        "in a request, its shutdown, and a startup that fails; "
        "part4_asgi/minimal_asgi_server.py has serve_asgi and serve_connection, part4_asgi/asgi.py the Lifespan.",
    ),
    hardening(
        "part1",
        "receive_exactly",
        1,
        "part1_sockets.echo_client:receive_exactly",
        "01_sockets.ipynb, section 2.3",
        "recv(n) returns at most n bytes: loop until you have size bytes.",
        "Ask recv() for no more than the bytes still missing; b'' means the peer closed: raise ConnectionError.",
        "Notebook 01, section 2.3 shows recv() returning less than was sent; part1_sockets/echo_client.py uses it.",
    ),
    hardening(
        "part1",
        "format_response",
        1,
        "part1_sockets.http_server:format_response",
        "01_sockets.ipynb, section 3.2",
        "Encode the body first: its length in bytes is the Content-Length.",
        "Every line of the head ends with CRLF, and an empty line ends the head.",
        "Notebook 01, section 3.2 shows a response byte for byte; part1_sockets/http_server.py writes one.",
    ),
    hardening(
        "part1",
        "read_head",
        2,
        "part1_sockets.http_server:read_head",
        "01_sockets.ipynb, sections 2.3 and 3.2",
        "Gather recv() pieces in a buffer until END_OF_HEAD finds the blank line; split there.",
        "MAX_HEAD limits the head, not the body: while no blank line has come the whole buffer counts, once "
        "END_OF_HEAD finds one only what lies before it does. Treat b'' as the client leaving.",
        "Notebook 01, sections 2.3 (recv() cuts a stream anywhere) and 3.2 (where a head ends); "
        "part1_sockets/http_server.py has read_head.",
    ),
    hardening(
        "part1",
        "parse_head",
        3,
        "part1_sockets.http_server:parse_head",
        "01_sockets.ipynb, sections 3.3-3.4",
        "Decode as ASCII; the first line splits on single spaces into exactly three parts.",
        "Check the version's shape before its major digit (400, then 505; a later 1.x is read as 1.1); a target "
        "has three forms; a header splits at its first colon, with only its name before it, and Host or "
        "Content-Length may come once.",
        "Notebook 01, sections 3.3-3.4 show a POST's head and the 400 for nonsense; part1_sockets/http_server.py "
        "has parse_head, with the RFC behind each rule.",
    ),
    hardening(
        "part2",
        "response_head",
        1,
        "part2_wsgi.protocol:response_head",
        "02_wsgi.ipynb, section 4.5",
        "A status line, one line per header in order, then an empty line; every line ends with CRLF.",
        "Heads are latin-1, not UTF-8.",
        "Notebook 02, section 4.5; part2_wsgi/protocol.py has response_head.",
    ),
    hardening(
        "part2",
        "chunk",
        1,
        "part2_wsgi.protocol:chunk",
        "02_wsgi.ipynb, section 4.6",
        "The size comes first, in hexadecimal, then CRLF, the bytes, CRLF.",
        "Build bytes, not str: the data may be any bytes at all.",
        "Notebook 02, section 4.6; part2_wsgi/protocol.py has chunk.",
    ),
    hardening(
        "part2",
        "parse_header_line",
        2,
        "part2_wsgi.protocol:parse_header_line",
        "02_wsgi.ipynb, sections 4.2 and 5",
        "A line that starts with a space or a tab is refused before anything else.",
        "HEADER_LINE matches the whole line only when it is well formed: no match is a 400.",
        "Notebook 02, section 5; part2_wsgi/protocol.py has parse_header_line.",
    ),
    hardening(
        "part2",
        "add_header_variables",
        2,
        "part2_wsgi.wsgi:add_header_variables",
        "02_wsgi.ipynb, section 4.3",
        "Upper case, '-' to '_', and the HTTP_ prefix, except for two headers.",
        "Mind the four special cases of the docstring: repeated headers, Cookie, underscores, Transfer-Encoding.",
        "Notebook 02, section 4.3; part2_wsgi/wsgi.py has add_header_variables.",
    ),
    hardening(
        "part2",
        "response_framing",
        2,
        "part2_wsgi.protocol:response_framing",
        "02_wsgi.ipynb, sections 4.6-4.7",
        "Ask in order: no body at all? a Content-Length from the app? an HTTP/1.1 client? Else close.",
        "Header names are compared without regard to case.",
        "Notebook 02, sections 4.6-4.7; part2_wsgi/protocol.py has response_framing.",
    ),
    hardening(
        "part2",
        "parse_range",
        2,
        "part2_wsgi.apps.files_app:parse_range",
        "02_wsgi.ipynb, section 7.4",
        "Split at the '=' first, then at the '-': an empty side before the dash is the suffix form, an empty "
        "side after it runs to the end of the file. The end is included, so the last byte is size minus one.",
        "An empty file has no byte for a 206 to send: None, whatever the header. Otherwise decide what to "
        "ignore (a comma, another unit, no digits, END before START) before you look at the size; then a start "
        "at or past the end, or a suffix of zero, is the unsatisfiable case.",
        "Notebook 02, section 7.4 asks a server for pieces of a file; part2_wsgi/apps/files_app.py has parse_range.",
    ),
    hardening(
        "part2",
        "body_framing",
        3,
        "part2_wsgi.protocol:body_framing",
        "02_wsgi.ipynb, sections 4.2 and 5",
        "Read both headers first; refuse the ambiguous combinations before looking at either value.",
        "Only ASCII digits make a Content-Length (str.isdigit accepts more); compare with limits.max_body.",
        "Notebook 02, section 5; part2_wsgi/protocol.py has body_framing.",
    ),
    hardening(
        "part2",
        "resolve_path",
        3,
        "part2_wsgi.apps.files_app:resolve_path",
        "02_wsgi.ipynb, section 7.5",
        "The server decoded the path once already: turn it back into the bytes it was (latin-1) and read those "
        "as UTF-8; do not unquote it again. Refuse a NUL and a backslash.",
        "Keep the non-empty segments only and join them under the root: a leading '/' would make a path "
        "absolute, and joining an absolute path drops the root. Then resolve with symlinks followed (a loop "
        "of them is None: resolving strictly tells one with errno ELOOP), and ask os.path.commonpath whether "
        "the root is still the common part (a string prefix is not enough).",
        "Notebook 02, section 7.5 tries each attack on a real server; part2_wsgi/apps/files_app.py has resolve_path.",
    ),
]


def select(part=None, name=None):
    """The exercises of ``part`` (all parts if None), or just the one called ``name``."""
    if part is not None and part not in PARTS:
        raise ValueError(f"unknown part {part!r}: choose one of {', '.join(PARTS)}")
    chosen = [exercise for exercise in EXERCISES if part in (None, exercise.part)]
    if name is not None:
        chosen = [exercise for exercise in chosen if exercise.name == name]
        if not chosen:
            names = ", ".join(exercise.name for exercise in EXERCISES if part in (None, exercise.part))
            raise ValueError(f"no exercise {name!r} in {part or 'any part'}: choose one of {names}")
    return chosen


def find_exercise(part, name):
    return select(part, name)[0]


# --- running one exercise ------------------------------------------------------------------


@dataclass
class Check:
    """One graded test of an exercise, and how it went."""

    name: str
    description: str
    passed: bool
    message: str = ""


@dataclass
class Result:
    exercise: Exercise
    passed: bool
    message: str  # the first useful line of the first failure; "" when passed
    checks: list = field(default_factory=list)  # the checks that ran, in order
    total_checks: int = 0
    seconds: float = 0.0
    log: str = ""  # what the test process printed, for an instructor who debugs

    @property
    def score(self):
        return self.exercise.points if self.passed else 0

    @property
    def checks_passed(self):
        return sum(check.passed for check in self.checks)


def run_exercise(exercise, solutions=False, workbook=None, timeout=CHECK_TIMEOUT, every_check=False):
    """Run one exercise's checks in a fresh process; return its Result.

    ``solutions``: grade the reference code instead of the workbook. ``workbook``: a
    folder holding part1.py ... to grade instead of exercises/. ``every_check``: run
    every check even after one failed (CI uses it to show that *each* check can fail).
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-") as scratch:
        results_file = Path(scratch) / "results.jsonl"
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(TESTS_DIR / f"test_{exercise.part}.py"),
            "--exercise",
            exercise.name,
            "--results-file",
            str(results_file),
            "-p",
            "pytest_timeout",
            f"--timeout={timeout}",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:threadexception",
            "-q",
            "--no-header",
            "-rN",
        ]
        if not every_check:
            command.append("-x")  # all or nothing: after the first failure, stop
        env = {
            **os.environ,
            "GRADER_TARGET": "solutions" if solutions else "exercises",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Load no plugin but pytest-timeout: pytest starts twice as fast, and plugins
            # a student happens to have installed (random order, say) cannot change a grade.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
        if workbook is not None:
            env["GRADER_WORKBOOK"] = str(Path(workbook).resolve())
        # The hard limit, for code that ignores the time limit of a check: the passing
        # checks take a few seconds, the first failing one its time limit at most.
        hard_limit = STARTUP_ALLOWANCE + timeout * (3 if not every_check else 6)
        returncode, log, killed = _run_process(command, env, hard_limit)
        events = _read_events(results_file)
    result = _interpret(exercise, events, returncode, log, killed, hard_limit)
    result.seconds = time.monotonic() - started
    return result


def _run_process(command, env, hard_limit):
    """Run the command in its own process group; kill the whole group past the limit."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # A new session: the student's code may fork, and a hung process group must
            # be killed whole, or a forgotten child would keep running after we are done.
            start_new_session=True,
        )
        killed = False
        try:
            process.wait(hard_limit)
        except subprocess.TimeoutExpired:
            killed = True
            if hasattr(os, "killpg"):
                os.killpg(process.pid, signal.SIGKILL)  # the leader is not reaped yet: the group is ours
            else:
                process.kill()  # Windows has no process groups to kill: the checks' own children may outlive it
            process.wait()
        output.seek(0)
        log = output.read().decode("utf-8", "replace")
    return process.returncode, log, killed


def _read_events(path):
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut short when the process died: the "start" before it says enough
    return events


def _interpret(exercise, events, returncode, log, killed, hard_limit):
    """Turn the events a test process wrote into a Result, whatever became of it."""
    total = next((event["count"] for event in events if event["event"] == "collected"), 0)
    checks, running = [], None
    for event in events:
        if event["event"] == "start":
            running = event
        elif event["event"] == "result":
            checks.append(Check(event["check"], event["description"], event["passed"], event["message"]))
            running = None
    if running is not None:
        # The process ended in the middle of a check: it was killed, or it died.
        if killed:
            why = (
                f"stopped after {hard_limit:.0f} s: the code never returned and ignored the time limit "
                "(an endless loop that catches every exception?)"
            )
        else:
            why = (
                f"the test process ended during this check (exit status {returncode}): "
                "did the code call os._exit(), kill its own process, or crash Python?"
            )
        checks.append(Check(running["check"], running["description"], False, why))
    failures = [check for check in checks if not check.passed]
    if failures:
        message = failures[0].message
    elif total == 0:
        message = _no_checks_message(returncode, log, killed)
    elif len(checks) < total:
        message = f"only {len(checks)} of {total} checks ran (exit status {returncode})"
    else:
        message = ""
    passed = total > 0 and not message
    return Result(exercise, passed, message, checks, total, log=log)


def _no_checks_message(returncode, log, killed):
    if killed:
        return "the tests did not even start in time (is the machine very busy?)"
    # Nothing ran: the tests could not be collected. That is the grader's problem, not
    # the student's, so show the instructor the last line pytest printed about it.
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("=")]
    last = lines[-1] if lines else "no output"
    return f"no checks ran (pytest exit status {returncode}): {last}"


def run(exercises, solutions=False, workbook=None, timeout=CHECK_TIMEOUT, every_check=False, jobs=None, on_result=None):
    """Run several exercises, ``jobs`` at a time; return their Results in the given order.

    ``on_result(result)`` is called as each finishes, in the given order, so that a
    caller can print a part's rows as soon as they are known.
    """
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(run_exercise, e, solutions, workbook, timeout, every_check) for e in exercises]
        results = []
        for future in futures:
            results.append(future.result())
            if on_result:
                on_result(results[-1])
    return results


# --- the report ---------------------------------------------------------------------------------


def table_header():
    return f"{'part':<6} {'exercise':<21} {'points':>7}  {'result':<6}  {'checks':<16}  first problem"


def table_row(result):
    """One exercise: its points, pass or FAIL, how many checks pass, and the first
    problem in full (a cut message would hide what was expected)."""
    exercise = result.exercise
    points = f"{result.score} / {exercise.points}"
    outcome = "pass" if result.passed else "FAIL"
    checks = f"{result.checks_passed} of {result.total_checks} checks"
    return f"{exercise.part:<6} {exercise.name:<21} {points:>7}  {outcome:<6}  {checks:<16}  {result.message}".rstrip()


def total_row(label, results):
    earned = sum(result.score for result in results)
    possible = sum(result.exercise.points for result in results)
    passed = sum(result.passed for result in results)
    exercises = "exercise" if len(results) == 1 else "exercises"
    return f"{label:<28} {f'{earned} / {possible}':>7}  {passed} of {len(results)} {exercises} passed"


def track_title(track):
    return TRACKS[track]


def format_table(results):
    """The whole report: each track under its title, a row per exercise, the track's
    total, then the grand total."""
    lines = []
    tracks = [track for track in TRACKS if any(result.exercise.track == track for result in results)]
    for track in tracks:
        rows = [result for result in results if result.exercise.track == track]
        if len(tracks) > 1 or len(rows) > 1:
            lines.append(track_title(track))
        lines.append(table_header())
        lines += [table_row(result) for result in rows]
        if len(rows) > 1:
            lines.append(total_row(f"{track} track total", rows))
        lines.append("")
    if len(results) > 1:
        lines.append(total_row("TOTAL", results))
    return "\n".join(lines).rstrip("\n")


def describe(result):
    """Everything about one exercise's result, for Gradescope's "output" field."""
    exercise = result.exercise
    lines = [
        f"{exercise.part}.{exercise.name} ({exercise.track} track): {result.score} of {exercise.points} points, "
        f"{result.checks_passed} of {result.total_checks} checks pass. Prepared by {exercise.notebook}."
    ]
    if result.message:
        lines.append(f"First problem: {result.message}")
    for check in result.checks:
        mark = "passed" if check.passed else "FAILED"
        lines.append(f"  [{mark}] {check.description}")
        if check.message:
            lines.append(f"           {check.message}")
    not_run = result.total_checks - len(result.checks)
    if not_run > 0:
        lines.append(f"  ({not_run} more checks not run: fix the first problem first)")
    return "\n".join(lines)


def track_summary(results):
    """{"required": {"score": .., "max_score": ..}, "hardening": {...}} for the tracks graded."""
    summary = {}
    for track in TRACKS:
        rows = [result for result in results if result.exercise.track == track]
        if rows:
            summary[track] = {
                "score": sum(result.score for result in rows),
                "max_score": sum(result.exercise.points for result in rows),
                "passed": sum(result.passed for result in rows),
                "exercises": len(rows),
            }
    return summary


def gradescope_results(results, seconds=None):
    """Gradescope's results.json, as documented at
    https://gradescope-autograders.readthedocs.io/en/latest/specs/ (one test per exercise,
    tagged with its track)."""
    earned = sum(result.score for result in results)
    possible = sum(result.exercise.points for result in results)
    tracks = track_summary(results)
    per_track = "; ".join(f"{track} track {t['score']} of {t['max_score']}" for track, t in tracks.items())
    document = {
        "score": earned,
        "output": f"{earned} of {possible} points ({per_track}); "
        f"{sum(r.passed for r in results)} of {len(results)} exercises passed.",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"tracks": tracks},
        "tests": [
            {
                "name": f"{result.exercise.part}.{result.exercise.name}",
                "number": f"{result.exercise.part[-1]}.{index}",
                "score": result.score,
                "max_score": result.exercise.points,
                "status": "passed" if result.passed else "failed",
                "output": describe(result),
                "tags": [result.exercise.track],
                "visibility": "visible",
                # Not shown by Gradescope; kept for instructors and for the grader's own tests.
                "extra_data": {
                    "track": result.exercise.track,
                    "checks": [
                        {"name": check.name, "passed": check.passed, "message": check.message}
                        for check in result.checks
                    ],
                    "checks_passed": result.checks_passed,
                    "total_checks": result.total_checks,
                    "seconds": round(result.seconds, 2),
                },
            }
            for index, result in _numbered(results)
        ],
    }
    if seconds is not None:
        document["execution_time"] = round(seconds)
    return document


def _numbered(results):
    """Number exercises within their part: part1's are 1.1, 1.2, ..."""
    counters = {}
    for result in results:
        counters[result.exercise.part] = counters.get(result.exercise.part, 0) + 1
        yield counters[result.exercise.part], result


def write_json(path, results, seconds=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gradescope_results(results, seconds), indent=2) + "\n", encoding="utf-8")


# --- hints -----------------------------------------------------------------------------------------

HINTS_FILE = ".hints.json"  # in the workbook's folder; git ignores it


def hints_path(workbook=None):
    return Path(workbook) / HINTS_FILE if workbook else ROOT / "exercises" / HINTS_FILE


def revealed_hints(workbook=None):
    """{"part1.serve_echo": 2, ...}: how many hints of each exercise have been revealed."""
    path = hints_path(workbook)
    try:
        counts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return counts if isinstance(counts, dict) else {}


def reveal_next_hint(exercise, workbook=None):
    """Reveal one more hint of ``exercise`` (up to all of them); return the hints shown."""
    counts = revealed_hints(workbook)
    shown = min(len(exercise.hints), int(counts.get(exercise.id, 0)) + 1)
    counts[exercise.id] = shown
    path = hints_path(workbook)
    try:
        path.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only workbook: the hint is still shown, just not remembered
    return exercise.hints[:shown]


def format_hints(exercise, hints):
    lines = [f"Hints for {exercise.part} {exercise.name} ({len(hints)} of {len(exercise.hints)} revealed):"]
    lines += [f"  {number}. {hint}" for number, hint in enumerate(hints, 1)]
    if len(hints) < len(exercise.hints):
        lines.append(f"  (--hint again for the next one; {exercise.notebook} prepares this stage)")
    return "\n".join(lines)
