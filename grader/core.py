"""The grader's engine: which exercises there are, how each is run, and the report.

An exercise is one function of the workbook (``exercises/part1.py`` ...), graded by the
tests marked with its name in ``grader/tests/test_part1.py`` .... Each exercise runs in
a process of its own:

    python -m pytest grader/tests/test_part1.py --exercise echo --results-file F ...

so that whatever the student's code does (loop forever, call ``sys.exit()`` or
``os._exit()``, start a server that never answers, crash the interpreter) it costs that
exercise its points and nothing more:

* each check (test) has a time limit, ``--timeout`` (pytest-timeout interrupts it);
* the whole process has a hard limit too, for code that ignores the first one;
  then its whole process group is killed, children included;
* the process writes one line per check to F *as it goes* (see ``grader/tests/conftest.py``),
  so even when it dies we know which checks passed and which one it died in.

Points are all or nothing per exercise: an exercise earns its points when every one of
its checks passes. Checks run in order and stop at the first failure, whose first
useful line is what the student sees.
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

    @property
    def id(self):
        return f"{self.part}.{self.name}"


PARTS = {"part1": "Sockets", "part2": "HTTP and WSGI", "part3": "Concurrency"}

# In the order a student meets them, from easy to hard within each part.
EXERCISES = [
    Exercise("part1", "echo", 1, "part1_sockets.echo_server:echo", "01_sockets.ipynb, sections 2.1-2.2; graded in 2.5"),
    Exercise(
        "part1",
        "receive_exactly",
        1,
        "part1_sockets.echo_client:receive_exactly",
        "01_sockets.ipynb, sections 2.3-2.4; graded in 2.5",
    ),
    Exercise(
        "part1",
        "format_response",
        1,
        "part1_sockets.http_server:format_response",
        "01_sockets.ipynb, section 3.2; graded in 3.6",
    ),
    Exercise(
        "part1",
        "read_head",
        2,
        "part1_sockets.http_server:read_head",
        "01_sockets.ipynb, sections 2.3 and 3.2; graded in 3.6",
    ),
    Exercise(
        "part1",
        "parse_head",
        3,
        "part1_sockets.http_server:parse_head",
        "01_sockets.ipynb, sections 3.3-3.4; graded in 3.6",
    ),
    Exercise("part2", "response_head", 1, "part2_wsgi.protocol:response_head", "02_wsgi.ipynb, section 2.5"),
    Exercise("part2", "chunk", 1, "part2_wsgi.protocol:chunk", "02_wsgi.ipynb, section 2.6"),
    Exercise(
        "part2", "parse_header_line", 2, "part2_wsgi.protocol:parse_header_line", "02_wsgi.ipynb, sections 2.2 and 3"
    ),
    Exercise("part2", "add_header_variables", 2, "part2_wsgi.wsgi:add_header_variables", "02_wsgi.ipynb, section 2.3"),
    Exercise("part2", "response_framing", 2, "part2_wsgi.protocol:response_framing", "02_wsgi.ipynb, sections 2.6-2.7"),
    Exercise("part2", "body_framing", 3, "part2_wsgi.protocol:body_framing", "02_wsgi.ipynb, sections 2.2 and 3"),
    Exercise("part2", "read_request", 3, "part2_wsgi.server:read_request", "02_wsgi.ipynb, sections 2.2 and 4"),
    Exercise("part3", "alive", 1, "part3_concurrency.forking_server:alive", "03_concurrency.ipynb, section 3.3"),
    Exercise(
        "part3",
        "reap_children",
        2,
        "part3_concurrency.forking_server:reap_children",
        "03_concurrency.ipynb, sections 3.2-3.3",
    ),
    Exercise(
        "part3", "send_some", 2, "part3_concurrency.select_server:send_some", "03_concurrency.ipynb, sections 1 and 5"
    ),
    Exercise(
        "part3",
        "serve_forever",
        3,
        "part3_concurrency.threaded_server:serve_forever",
        "03_concurrency.ipynb, sections 2.3 and 4.4",
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

MESSAGE_WIDTH = 150  # the table shows this much of a failure; the JSON has all of it


def table_header():
    return f"{'part':<6} {'exercise':<21} {'points':>7}  {'result':<6}  first problem"


def table_row(result):
    exercise = result.exercise
    points = f"{result.score} / {exercise.points}"
    outcome = "pass" if result.passed else "FAIL"
    message = result.message
    if len(message) > MESSAGE_WIDTH:
        message = message[: MESSAGE_WIDTH - 3] + "..."
    return f"{exercise.part:<6} {exercise.name:<21} {points:>7}  {outcome:<6}  {message}".rstrip()


def total_row(label, results):
    earned = sum(result.score for result in results)
    possible = sum(result.exercise.points for result in results)
    passed = sum(result.passed for result in results)
    exercises = "exercise" if len(results) == 1 else "exercises"
    return f"{label:<28} {f'{earned} / {possible}':>7}  {passed} of {len(results)} {exercises} passed"


def format_table(results):
    """The whole report: a row per exercise, a total per part, then the grand total."""
    lines = [table_header()]
    parts = [part for part in PARTS if any(result.exercise.part == part for result in results)]
    for part in parts:
        rows = [result for result in results if result.exercise.part == part]
        lines += [table_row(result) for result in rows]
        if len(rows) > 1 and len(parts) > 1:
            lines.append(total_row(f"{part} total", rows))
            lines.append("")
    if len(results) > 1:
        lines.append(total_row("TOTAL", results))
    return "\n".join(lines)


def describe(result):
    """Everything about one exercise's result, for Gradescope's "output" field."""
    exercise = result.exercise
    lines = [
        f"{exercise.part}.{exercise.name}: {result.score} of {exercise.points} points. Prepared by {exercise.notebook}."
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


def gradescope_results(results, seconds=None):
    """Gradescope's results.json, as documented at
    https://gradescope-autograders.readthedocs.io/en/latest/specs/ (one test per exercise)."""
    earned = sum(result.score for result in results)
    possible = sum(result.exercise.points for result in results)
    document = {
        "score": earned,
        "output": f"{earned} of {possible} points; "
        f"{sum(r.passed for r in results)} of {len(results)} exercises passed.",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": f"{result.exercise.part}.{result.exercise.name}",
                "number": f"{result.exercise.part[-1]}.{index}",
                "score": result.score,
                "max_score": result.exercise.points,
                "status": "passed" if result.passed else "failed",
                "output": describe(result),
                "visibility": "visible",
                # Not shown by Gradescope; kept for instructors and for the grader's own tests.
                "extra_data": {
                    "checks": [
                        {"name": check.name, "passed": check.passed, "message": check.message}
                        for check in result.checks
                    ],
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
