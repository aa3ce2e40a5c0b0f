"""Wrong solutions a student would plausibly write, kept to prove that the grader fails them.

A graded check that passes on wrong code teaches the student that the code is right. So
every mistake we know students make is kept here as a *mutant*: the reference workbook
(``python -m grader --export-solutions``) with one function replaced by the wrong one,
written the way a student would write it. ``tests/test_grader.py`` grades each mutant
and asserts that it fails its own exercise, with a message that says what to change,
and that every other exercise still passes.

Try them by hand (an instructor adding a check, or a developer changing one):

    python -m tests.mutants                    # every mutant
    python -m tests.mutants serve_http         # the mutants of one exercise

Each mutant's ``code`` is appended to the exported workbook, so it replaces the
reference under the exercise's name; it may import what it needs, as a student's file
does (``from part1_sockets.http_server import read_head``).
"""

import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from grader import core
from grader.gradescope import export_solutions


@dataclass(frozen=True)
class Mutant:
    part: str  # "part1"
    exercise: str  # the exercise it must fail: "serve_http"
    mistake: str  # what the student got wrong, in words: the test's id
    code: str  # the wrong function, as a student wrote it
    expect: str  # words the failure message must hold: it says what to change

    @property
    def id(self):
        return f"{self.exercise}: {self.mistake}"


def every_mutant():
    from tests.mutants.part1 import MUTANTS as PART1
    from tests.mutants.part2 import MUTANTS as PART2
    from tests.mutants.part3 import MUTANTS as PART3

    return PART1 + PART2 + PART3


def rounds(mutants):
    """Split the mutants into rounds with at most one mutant per exercise: one workbook
    can then hold a whole round, and one grading run tells on all of them."""
    result = []
    for mutant in mutants:
        for round_ in result:
            if all(other.exercise != mutant.exercise for other in round_):
                round_.append(mutant)
                break
        else:
            result.append([mutant])
    return result


def workbook_with(folder, mutants):
    """The reference workbook in ``folder``, with each mutant's code in place of its exercise."""
    folder = Path(folder)
    export_solutions(folder)
    for mutant in mutants:
        with open(folder / f"{mutant.part}.py", "a", encoding="utf-8") as file:
            file.write("\n\n" + textwrap.dedent(mutant.code).strip() + "\n")
    return folder


def grade_round(mutants, folder, jobs=None):
    """Grade every exercise of the parts the round touches: {exercise id: Result}."""
    parts = {mutant.part for mutant in mutants}
    exercises = [exercise for exercise in core.EXERCISES if exercise.part in parts]
    results = core.run(exercises, workbook=workbook_with(folder, mutants), jobs=jobs)
    return {result.exercise.id: result for result in results}


def verdict(mutant, results):
    """None if the mutant fails its own exercise, with the expected words, and nothing else
    fails; otherwise what went wrong, in one line."""
    own = results[f"{mutant.part}.{mutant.exercise}"]
    if own.passed:
        return f"{mutant.id}: PASSES its exercise, so the grader teaches that it is right"
    if mutant.expect.lower() not in own.message.lower():
        return f"{mutant.id}: fails, but the message lacks {mutant.expect!r}: {own.message}"
    for grader_file in ("test_part", "helpers.py", "conftest.py", "launch.py"):
        if grader_file in own.message:
            return f"{mutant.id}: the message points into the grader ({grader_file}): {own.message}"
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    chosen = [mutant for mutant in every_mutant() if not argv or mutant.exercise in argv]
    problems = []
    for number, round_ in enumerate(rounds(chosen), 1):
        with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
            results = grade_round(round_, folder)
        print(f"round {number}: {len(round_)} mutants")
        mutated = {f"{mutant.part}.{mutant.exercise}" for mutant in round_}
        for mutant in round_:
            problem = verdict(mutant, results)
            message = results[f"{mutant.part}.{mutant.exercise}"].message
            print(f"  {'ok ' if problem is None else 'BAD'} {mutant.id}\n      {message}")
            problems += [problem] if problem else []
        for exercise_id, result in results.items():
            if exercise_id not in mutated and not result.passed:
                problems.append(f"round {number}: {exercise_id} fails, though no mutant touched it: {result.message}")
    print("\n".join(["", *problems]) if problems else "\nevery mutant fails its own exercise, and only that one")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
