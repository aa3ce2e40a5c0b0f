"""How the graded tests report to the grader.

``python -m grader`` runs pytest once per exercise with two options this file adds:

* ``--exercise NAME`` keeps only the tests marked ``@pytest.mark.exercise("NAME")``;
* ``--results-file F`` writes one JSON line to F per event, *as it happens*: how many
  checks there are, each check as it starts, each check's outcome with the first useful
  line of its failure. If the student's code kills the process half way (``os._exit``,
  a crash), the lines already written still say what passed and where it died.

You can also run the graded tests yourself, with pytest's full output:

    python -m pytest grader/tests/test_part1.py                 # your workbook
    python -m pytest grader/tests/test_part1.py --exercise serve_echo
    GRADER_TARGET=solutions python -m pytest grader/tests       # the reference
"""

import json
import os
import sys
import threading
import traceback

import pytest

from grader.workbook import WorkbookError, workbook_dir


def report_thread_exception(args):
    """One line for an exception that ends a thread, never a formatted traceback.

    On CPython 3.11, two threads formatting tracebacks at the same moment can crash the
    interpreter's parser ("AST constructor recursion depth mismatch"), and a student's
    threads may well raise while pytest reports a failure. The check itself says what
    went wrong; this line is only a trace in the log. (The grader also runs pytest
    with ``-p no:threadexception``, whose hook would format the traceback instead.)
    """
    name = args.thread.name if args.thread is not None else "a thread"
    sys.stderr.write(f"{name} ended with {args.exc_type.__name__}: {args.exc_value}\n")


threading.excepthook = report_thread_exception


def pytest_addoption(parser):
    group = parser.getgroup("grader")
    group.addoption("--exercise", help="run only the checks of this exercise")
    group.addoption("--results-file", help="append one JSON line per check to this file")


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(name): the workbook exercise this test grades")
    path = config.getoption("--results-file")
    config._grader_results = open(path, "a", encoding="utf-8") if path else None


def pytest_unconfigure(config):
    if getattr(config, "_grader_results", None):
        config._grader_results.close()


def write_event(config, **event):
    stream = config._grader_results
    if stream:
        stream.write(json.dumps(event) + "\n")
        stream.flush()  # now, not at exit: the process may not get to exit cleanly


def exercise_of(item):
    marker = item.get_closest_marker("exercise")
    return marker.args[0] if marker else None


def pytest_collection_modifyitems(config, items):
    wanted = config.getoption("--exercise")
    if wanted:
        selected = [item for item in items if exercise_of(item) == wanted]
        deselected = [item for item in items if exercise_of(item) != wanted]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    write_event(config, event="collected", count=len(items))


def description(item):
    """The check's docstring, first line: what it checks, in words a student reads."""
    doc = getattr(item.function, "__doc__", None) or item.name
    return doc.strip().splitlines()[0]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    write_event(item.config, event="start", check=item.name, description=description(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # One outcome per check: its "call" phase, or an earlier phase that failed or skipped.
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:  # a check that cannot run on this system costs nothing
            passed, message = True, "skipped on this system"
        else:
            passed, message = report.passed, "" if report.passed else failure_line(call.excinfo, item)
        write_event(
            item.config, event="result", check=item.name, description=description(item), passed=passed, message=message
        )
    return report


# --- the first useful line of a failure ----------------------------------------------------


def failure_line(excinfo, item):
    """One line that tells the student what went wrong, and where to look."""
    if excinfo is None:
        return "failed"
    error = excinfo.value
    timeout = item.config.getoption("--timeout", None)
    if isinstance(error, NotImplementedError):
        return f"not done yet: {first_line(error) or 'the function still raises NotImplementedError'}"
    if isinstance(error, WorkbookError):
        return str(error)
    if isinstance(error, SystemExit):
        return f"the code called sys.exit({error.code!r}): a function must return or raise, never end the program"
    if type(error).__name__ == "Failed" and str(error).startswith("Timeout"):
        limit = f"{float(timeout):g} s" if timeout else "its time limit"
        return f"timed out after {limit}: an endless loop, or waiting for bytes that never come?"
    if isinstance(error, AssertionError):
        return first_line(error) or "an assertion failed" + where(excinfo)
    if type(error).__name__ == "StudentError":  # the server's own process said what it raised, and where
        return first_line(error)
    return f"{type(error).__name__}: {first_line(error)}{where(excinfo)}"


def first_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


def where(excinfo):
    """The innermost line of the workbook in the traceback, as " (part2.py, line 12: ...)".

    Only the student's own lines are named: a line of the grader's checks tells the
    student nothing they can change. An error raised in the checks (a StudentError from
    the server's own process, say) carries the student's line in its message already.
    """
    book = str(workbook_dir().resolve())
    for frame in reversed(traceback.extract_tb(excinfo.tb)):
        if os.path.abspath(frame.filename).startswith(book):
            return f" ({os.path.basename(frame.filename)}, line {frame.lineno}: {frame.line})"
    return ""
