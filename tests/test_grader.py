"""The grading grades: proof that ``python -m grader`` measures what it claims.

* Every graded check fails on the untouched stubs, and passes on the reference code:
  a check that cannot fail grades nothing, and one the reference fails is wrong.
* Solving one exercise earns exactly its points, and nothing else changes.
* Code that misbehaves (loops forever, calls sys.exit() or os._exit(), serves a socket
  and never answers, ignores the time limit) fails its own exercise, with the reason,
  and the grader still finishes promptly.
* The workbook matches the reference: same names, same signatures, a hint in every stub.
* ``--json`` writes what Gradescope documents for results.json, the tracks apart.
* Nothing the grader says about the untouched workbook, and no hint, is code to paste;
  ``--hint`` reveals the hints one at a time and remembers how many.
* A student's serve_wsgi, built from the reference pieces, serves Flask and Django
  through wsgiref.validate.
* Wrong solutions a student would plausibly write (``tests/mutants/``) fail their own
  exercise, with a message that says what to change, and touch no other exercise.
* Whatever the workbook holds, this suite passes: the checks of "the stubs" grade the
  untouched copy in ``grader/stubs/``, and a student's code only ever runs in the
  grader's own processes, never in this one.

The grader runs real subprocesses here, a few dozen of them: these tests take a few
minutes, most of it grading the mutants.
"""

import filecmp
import importlib.util
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest

from grader import core
from grader.core import EXERCISES, PARTS, find_exercise
from grader.workbook import ROOT, STUBS
from tests import mutants
from tests.helpers import IN_CI, one_worker
from tests.mutants.misbehaving import MISBEHAVING
from tests.mutants.part4 import RIGHT as RIGHT_PART4

TOTAL_POINTS = sum(exercise.points for exercise in EXERCISES)
REQUIRED_POINTS = sum(exercise.points for exercise in EXERCISES if exercise.track == "required")

# Code a student could paste: a call with arguments on a module or object
# ("connection.recv(CHUNK)"), or an assignment from one ("data = sock.recv(").
PASTEABLE_CODE = re.compile(r"\b[a-z_]+\.[a-z_]+\([^)\s][^)]*\)|\b\w+\s*=\s*\w+\.\w+\(")


def run_grader(*args, json_file):
    """``python -m grader ARGS --json FILE``: return (exit status, stdout, results, seconds)."""
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "grader", *args, "--json", str(json_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,  # (test_grading_everything_is_quick holds the grader to less)
    )
    seconds = time.monotonic() - started
    assert json_file.exists(), f"no results.json written\nstdout: {completed.stdout}\nstderr: {completed.stderr}"
    return completed.returncode, completed.stdout, json.loads(json_file.read_text()), seconds


def by_name(results):
    return {test["name"]: test for test in results["tests"]}


GRADER_RUNS = one_worker("grader-runs")  # the tests of the two runs below


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """The grader on the untouched workbook, every check run."""
    return run_grader(
        "--every-check", "--workbook", str(STUBS), json_file=tmp_path_factory.mktemp("stubs") / "results.json"
    )


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    """The grader on the reference code, every check run."""
    # (a check's time limit three times the default: the suite runs on four workers beside it)
    json_file = tmp_path_factory.mktemp("solutions") / "results.json"
    return run_grader("--every-check", "--solutions", "--timeout", "18", json_file=json_file)


# --- the stubs score nothing, the reference everything ------------------------------------------


@pytest.mark.slow
@GRADER_RUNS
def test_every_check_fails_on_the_stubs(stubs):
    returncode, stdout, results, seconds = stubs
    assert returncode == 1, stdout
    assert results["score"] == 0
    for exercise in EXERCISES:
        test = by_name(results)[exercise.id]
        checks = test["extra_data"]["checks"]
        assert len(checks) == test["extra_data"]["total_checks"] >= 2, (
            f"{exercise.id}: every exercise has several checks, and all ran"
        )
        passing = [check["name"] for check in checks if check["passed"]]
        assert not passing, f"{exercise.id}: these checks pass on the untouched stub, so they grade nothing: {passing}"
        assert test["status"] == "failed" and test["score"] == 0


@pytest.mark.slow
@GRADER_RUNS
def test_every_failure_on_the_stubs_shows_the_hint(stubs):
    returncode, stdout, results, seconds = stubs
    wrong = []
    for exercise in EXERCISES:
        hint = stub_hint(exercise)
        row = next(line for line in stdout.splitlines() if line.startswith(f"{exercise.part}  {exercise.name} "))
        if not ("FAIL" in row and f"not done yet: {hint}" in row):
            wrong.append(row)
        for check in by_name(results)[exercise.id]["extra_data"]["checks"]:
            if check["message"] != f"not done yet: {hint}":
                wrong.append(f"{exercise.id}, {check['name']}: {check['message']}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
@GRADER_RUNS
def test_nothing_said_about_the_stubs_is_code_to_paste(stubs):
    returncode, stdout, results, seconds = stubs
    pasteable = {
        test["name"]: PASTEABLE_CODE.findall(test["output"])
        for test in results["tests"]
        if PASTEABLE_CODE.search(test["output"])
    }
    assert not pasteable, f"the grader's output on the untouched workbook holds code: {pasteable}"
    assert not PASTEABLE_CODE.search(stdout), PASTEABLE_CODE.findall(stdout)


@pytest.mark.slow
@GRADER_RUNS
def test_the_table_shows_each_track_and_how_many_checks_pass(stubs):
    returncode, stdout, results, seconds = stubs
    assert stdout.index(core.TRACKS["required"]) < stdout.index(core.TRACKS["hardening"]), stdout
    assert re.search(rf"^required track total +0 / {REQUIRED_POINTS} ", stdout, re.MULTILINE), stdout
    for exercise in EXERCISES:
        total = by_name(results)[exercise.id]["extra_data"]["total_checks"]
        row = next(line for line in stdout.splitlines() if line.startswith(f"{exercise.part}  {exercise.name} "))
        assert f"0 of {total} checks" in row, row
    assert results["extra_data"]["tracks"]["required"] == {
        "score": 0,
        "max_score": REQUIRED_POINTS,
        "passed": 0,
        "exercises": sum(exercise.track == "required" for exercise in EXERCISES),
    }
    assert all(test["tags"] == [find_exercise(*test["name"].split(".")).track] for test in results["tests"])


@pytest.mark.slow
@GRADER_RUNS
def test_every_check_passes_on_the_reference(solutions):
    returncode, stdout, results, seconds = solutions
    failing = {
        test["name"]: [check for check in test["extra_data"]["checks"] if not check["passed"]]
        for test in results["tests"]
        if test["status"] != "passed"
    }
    assert not failing, f"the reference fails checks, which are therefore wrong: {failing}"
    assert returncode == 0, stdout
    assert results["score"] == TOTAL_POINTS
    assert re.search(rf"^TOTAL +{TOTAL_POINTS} / {TOTAL_POINTS} ", stdout, re.MULTILINE), stdout


@pytest.mark.slow
@GRADER_RUNS
def test_grading_everything_is_quick(stubs, solutions):
    # Generous bounds for a busy two-core machine: 4 s per exercise, each a process of its
    # own (well under two minutes for the 26 of parts 1 to 4).
    limit = 4 * len(EXERCISES)
    assert stubs[3] < limit, f"grading the stubs took {stubs[3]:.0f} s"
    assert solutions[3] < limit, f"grading the reference took {solutions[3]:.0f} s"


# --- results.json is what Gradescope documents ---------------------------------------------------

# From https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format"):
# every field Gradescope reads, and nothing else; the issue asks for the five per test.
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
GRADESCOPE_RESULTS = {
    "type": "object",
    "required": ["score", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "leaderboard": {"type": "array"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "output", "status"],
                "additionalProperties": False,
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": FORMAT,
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}


@pytest.mark.slow
@GRADER_RUNS
@pytest.mark.parametrize("which", ["stubs", "solutions"])
def test_results_json_follows_gradescope(which, request):
    results = request.getfixturevalue(which)[2]
    jsonschema.validate(results, GRADESCOPE_RESULTS)
    assert results["score"] == sum(test["score"] for test in results["tests"])
    assert [test["name"] for test in results["tests"]] == [exercise.id for exercise in EXERCISES]
    assert all(test["max_score"] == find_exercise(*test["name"].split(".")).points for test in results["tests"])


# --- solving one exercise earns exactly its points -------------------------------------------------


def copy_workbook(tmp_path):
    workbook = tmp_path / "workbook"
    workbook.mkdir()
    for part in PARTS:
        shutil.copy(STUBS / f"{part}.py", workbook / f"{part}.py")
    return workbook


def append(workbook, part, code):
    with open(workbook / f"{part}.py", "a", encoding="utf-8") as file:
        file.write("\n\n" + textwrap.dedent(code))


def solve(workbook, exercise):
    """Replace one stub by the reference: import it over the stub's name."""
    module, _, name = exercise.reference.partition(":")
    append(workbook, exercise.part, f"from {module} import {name}  # noqa: E402,F811\n")


@pytest.mark.slow
def test_solving_one_exercise_earns_exactly_its_points(tmp_path):
    workbook = copy_workbook(tmp_path)
    solved = [
        find_exercise("part1", "serve_echo"),
        find_exercise("part2", "serve_wsgi"),
        find_exercise("part3", "serve_select"),
        find_exercise("part2", "body_framing"),
    ]
    for exercise in solved:
        solve(workbook, exercise)
    returncode, stdout, results, seconds = run_grader("--workbook", str(workbook), json_file=tmp_path / "results.json")
    assert returncode == 1
    scores = {test["name"]: test["score"] for test in results["tests"]}
    assert scores == {exercise.id: exercise.points if exercise in solved else 0 for exercise in EXERCISES}, stdout
    assert results["score"] == sum(exercise.points for exercise in solved)
    for track in core.TRACKS:
        earned = sum(exercise.points for exercise in solved if exercise.track == track)
        possible = sum(exercise.points for exercise in EXERCISES if exercise.track == track)
        assert re.search(rf"^{track} track total +{earned} / {possible} ", stdout, re.MULTILINE), stdout


# A student's own serve_wsgi, written as a student would (not the reference), in a
# workbook whose build_environ and run_app are still the stubs: the grader puts the
# reference pieces in their place, so this stage is graded on the student's loop alone.
STUDENT_SERVE_WSGI = """
    BAD_REQUEST = b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 11\\r\\nConnection: close\\r\\n\\r\\nBad Request"


    def serve_wsgi(listener, app):
        while True:
            connection, address = listener.accept()
            with connection:
                connection.settimeout(TIMEOUT)
                try:
                    request = read_request(connection)
                except ValueError:
                    connection.sendall(BAD_REQUEST)
                    continue
                except OSError:
                    continue
                if request is None:
                    continue
                environ = build_environ(request, connection.getsockname(), address)
                try:
                    run_app(app, environ, lambda data: send_in_pieces(connection, data))
                except Exception as error:
                    print("the app failed:", error, file=sys.stderr)
    """


@pytest.mark.slow
def test_a_students_serve_wsgi_serves_flask_and_django_through_the_validator(tmp_path):
    workbook = copy_workbook(tmp_path)
    append(workbook, "part2", STUDENT_SERVE_WSGI)
    exercise = find_exercise("part2", "serve_wsgi")
    result = core.run_exercise(exercise, workbook=workbook)
    descriptions = [check.description for check in result.checks]
    assert result.passed and result.score == exercise.points, result.message
    assert any("Flask" in text and "wsgiref.validate" in text for text in descriptions), descriptions
    assert any("Django" in text and "wsgiref.validate" in text for text in descriptions), descriptions


# --- a half-solved workbook: progress, messages, hints -------------------------------------------

HALF_SOLVED = """
    def serve_echo(listener):  # echoes, but never closes a connection
        while True:
            connection, address = listener.accept()
            while True:
                data = connection.recv(CHUNK)
                if not data:
                    break
                connection.sendall(data)
    """


@pytest.mark.slow
def test_a_half_solved_stage_shows_its_progress_and_reveals_hints_one_at_a_time(tmp_path):
    workbook = copy_workbook(tmp_path)
    solve(workbook, find_exercise("part1", "make_listener"))
    append(workbook, "part1", HALF_SOLVED)
    exercise = find_exercise("part1", "serve_echo")
    hints = []
    for _ in range(len(exercise.hints) + 1):
        completed = subprocess.run(
            [sys.executable, "-m", "grader", "part1", "serve_echo", "--workbook", str(workbook), "--hint"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        row = next(line for line in completed.stdout.splitlines() if line.startswith("part1  serve_echo "))
        assert "FAIL" in row and "1 of 5 checks" in row, row
        assert "close" in row and "b''" in row, f"the first failure should say what was awaited: {row}"
        hints.append(completed.stdout.split("Hints for part1 serve_echo", 1)[1])
    saved = json.loads((workbook / core.HINTS_FILE).read_text())
    assert saved == {"part1.serve_echo": len(exercise.hints)}
    for number, text in enumerate(hints, 1):
        shown = min(number, len(exercise.hints))
        assert f"({shown} of {len(exercise.hints)} revealed)" in text, text
        assert exercise.hints[shown - 1] in text
        if shown < len(exercise.hints):
            assert exercise.hints[shown] not in text, "a hint was revealed before its turn"


def test_hints_lead_without_giving_the_answer_away():
    for exercise in EXERCISES:
        assert 2 <= len(exercise.hints) <= 3, f"{exercise.id}: two or three hints"
        for hint in exercise.hints:
            assert not PASTEABLE_CODE.search(hint), f"{exercise.id}: a hint holds code to paste: {hint}"
        last = exercise.hints[-1]
        assert "otebook" in last and (".py" in last), f"{exercise.id}: the last hint names the section and the file"


# --- misbehaving code fails its exercise, with the reason, and nothing more ------------------------


@pytest.mark.slow
def test_misbehaving_code_fails_its_own_exercise_with_the_reason(tmp_path):
    workbook = copy_workbook(tmp_path)
    for part, code in MISBEHAVING.items():
        append(workbook, part, code)
    solve(workbook, find_exercise("part1", "read_head"))
    chosen = [exercise for exercise in EXERCISES if exercise.part == "part1" and exercise.name != "make_listener"]

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        # The exception-swallowing loop only stops at the hard limit, which a short time
        # limit per check brings down to a few seconds.
        stubborn = pool.submit(core.run_exercise, find_exercise("part2", "chunk"), workbook=workbook, timeout=1)
        # The server that never answers is given three times the limit (as the suite grades
        # the reference): beside three other workers its check once took the whole limit to
        # get going, and the student read the limit's message instead of its own 3 s wait's.
        silent = find_exercise("part3", "serve_threaded")
        threaded = pool.submit(core.run_exercise, silent, workbook=workbook, timeout=3 * core.CHECK_TIMEOUT)
        results = {result.exercise.name: result for result in core.run(chosen, workbook=workbook, jobs=2)}
        results["chunk"] = stubborn.result()
        results["serve_threaded"] = threaded.result()
    seconds = time.monotonic() - started

    expected_reasons = {
        "serve_echo": "timed out after 3 s waiting for the echo after sending b'hello'",
        "receive_exactly": "called sys.exit(None)",
        "format_response": "ended during this check (exit status 3)",
        "parse_head": f"timed out after {core.CHECK_TIMEOUT:g} s",
        "serve_threaded": "no answer to GET /0 within 3 s",
        "chunk": "stopped after",
    }
    for name, reason in expected_reasons.items():
        assert not results[name].passed and results[name].score == 0, name
        assert reason in results[name].message, f"{name}: {results[name].message}"
    # ... and its neighbour, solved, earns its points regardless.
    assert results["read_head"].passed and results["read_head"].score == find_exercise("part1", "read_head").points, (
        results["read_head"].message
    )
    assert seconds < 45, f"grading misbehaving code took {seconds:.0f} s"


# --- the workbook matches the reference ----------------------------------------------------------


def reference_of(exercise):
    module, _, name = exercise.reference.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


def load_stubs(part):
    """The untouched workbook's part, loaded under a name of its own: whatever the student
    wrote in exercises/ never runs in this process."""
    spec = importlib.util.spec_from_file_location(f"untouched_{part}", STUBS / f"{part}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stub_of(exercise):
    return getattr(load_stubs(exercise.part), exercise.name)


def stub_hint(exercise):
    stub = stub_of(exercise)
    parameters = inspect.signature(stub).parameters.values()
    arguments = [None for parameter in parameters if parameter.kind is not parameter.KEYWORD_ONLY]
    keywords = {parameter.name: None for parameter in parameters if parameter.kind is parameter.KEYWORD_ONLY}
    with pytest.raises(NotImplementedError) as raised:
        stub(*arguments, **keywords)
    return str(raised.value)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda exercise: exercise.id)
def test_stub_matches_the_reference(exercise):
    stub, reference = stub_of(exercise), reference_of(exercise)
    assert inspect.signature(stub) == inspect.signature(reference), "the stub's signature differs from the reference's"
    hint = stub_hint(exercise)
    assert hint and "\n" not in hint and len(hint) < 140, f"the hint should be one short line: {hint!r}"
    doc = inspect.getdoc(stub)
    notebook = exercise.notebook.split(",")[0]
    assert doc and "Example" in doc and f"notebooks/{notebook}" in doc, (
        "the docstring states the contract, an example and the notebook"
    )


def test_exercises_run_from_easy_to_hard():
    for part in PARTS:
        stages = [exercise.points for exercise in EXERCISES if exercise.part == part and exercise.track == "required"]
        assert len(stages) >= 3, f"{part} has fewer than three required stages"
        for track in core.TRACKS:
            points = [exercise.points for exercise in EXERCISES if exercise.part == part and exercise.track == track]
            assert points == sorted(points), f"{part}, {track}: exercises should go from easy (few points) to hard"
    tracks = [exercise.track for exercise in EXERCISES]
    assert tracks == sorted(tracks, key=list(core.TRACKS).index), "the required track comes first"


def test_the_handed_out_workbook_is_the_untouched_copy():
    """exercises/ as committed is grader/stubs/: the copy these tests grade as "the stubs"."""
    different = [part for part in PARTS if not filecmp.cmp(ROOT / "exercises" / f"{part}.py", STUBS / f"{part}.py")]
    if different and not IN_CI:
        pytest.skip(f"exercises/ holds your own work ({', '.join(different)}); grader/stubs/ keeps the untouched copy")
    assert not different, f"exercises/ and grader/stubs/ differ in {different}: edit both, they are handed out alike"


# --- wrong solutions fail their own exercise, and only it -----------------------------------------

MUTANTS = mutants.every_mutant()


@pytest.fixture(scope="module")
def mutant_results(tmp_path_factory):
    """``result(mutant)``: its own exercise's Result. A part's mutants are graded together
    when a test first asks for one of them, in workbooks of a round each (at most one
    mutant per exercise), every round at once; ``-k part4`` grades part 4's alone."""
    graded = {}

    def result(mutant):
        if mutant.part not in graded:
            chosen = [other for other in MUTANTS if other.part == mutant.part]
            graded[mutant.part] = mutants.grade(chosen, tmp_path_factory.mktemp(f"mutants-{mutant.part}"))
        return graded[mutant.part][mutant]

    return result


@pytest.mark.slow
@pytest.mark.timeout(900)
@one_worker("mutants")  # the mutants are graded once, for all of them
@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.id)
def test_a_wrong_solution_fails_its_own_exercise_and_says_what_to_change(mutant, mutant_results):
    # verdict() also asks that the mutant bind no other exercise's name: the rest of its
    # workbook is the reference, which test_every_check_passes_on_the_reference grades.
    problem = mutants.verdict(mutant, mutant_results(mutant))
    assert problem is None, problem


def test_a_mutant_that_binds_a_neighbours_name_is_told():
    clumsy = mutants.Mutant(
        "part1",
        "serve_http",
        "a helper named like another exercise",
        """
        from part1_sockets.http_server import parse_head as read_head, serve_http

        format_response = None
        """,
        "anything",
    )
    assert mutants.neighbours_bound(clumsy) == ["format_response", "read_head"]


def test_every_required_exercise_has_wrong_solutions_to_fail():
    covered = {mutant.exercise for mutant in MUTANTS}
    missing = [exercise.id for exercise in EXERCISES if exercise.track == "required" and exercise.name not in covered]
    assert not missing, f"no mutant proves these exercises fail wrong code: {missing}"


# --- whatever the workbook holds, the rest of the suite is safe --------------------------------------

SIGCHLD_REAPER = """
    import os as _os
    import signal as _signal


    def serve_forking(listener, app):  # a reaper that swallows every child's exit status
        def reap(signum, frame):
            try:
                while _os.waitpid(-1, _os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass

        _signal.signal(_signal.SIGCHLD, reap)
        from part3_concurrency.minimal_servers import serve_forking as reference

        reference(listener, app)
    """


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_grading_a_solved_workbook_or_a_reaper_leaves_this_process_untouched(tmp_path):
    solved = tmp_path / "solved"
    subprocess.run([sys.executable, "-m", "grader", "--export-solutions", str(solved)], cwd=ROOT, check=True)
    append(solved, "part3", SIGCHLD_REAPER)
    # Part 4 solved by a student's own code: the right solution tests/mutants/part4.py's
    # mutants are each one slip from, which must therefore earn every point.
    assert set(RIGHT_PART4) == {exercise.name for exercise in EXERCISES if exercise.part == "part4"}
    for code in RIGHT_PART4.values():
        append(solved, "part4", code)
    returncode, stdout, results, seconds = run_grader("--workbook", str(solved), json_file=tmp_path / "r.json")
    assert returncode == 0 and results["score"] == TOTAL_POINTS, stdout
    # The student's handlers, threads and globals stayed in the grader's processes: here
    # a child's exit status is still what it was, and SIGCHLD has its default handler.
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    assert subprocess.run([sys.executable, "-c", "raise SystemExit(2)"]).returncode == 2
    assert os.environ.get("GRADER_WORKBOOK") is None
