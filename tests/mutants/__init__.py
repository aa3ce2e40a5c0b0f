"""Wrong solutions a student would plausibly write, kept to prove that the grader fails them.

A graded check that passes on wrong code teaches the student that the code is right. So
every mistake we know students make is kept here as a *mutant*: the reference workbook
(``python -m grader --export-solutions``) with one function replaced by the wrong one,
written the way a student would write it. ``tests/test_grader.py`` grades each mutant
and asserts that it fails its own exercise, with a message that says what to change,
and that it leaves every other exercise alone.

Only the mutated exercises are graded. The rest of a mutant's workbook is the reference,
imported under the exercises' names, which ``--solutions`` grades already; the one way a
mutant could change a neighbour is to bind its name (a helper called ``read_head``, say),
and ``neighbours_bound`` finds that in the mutant's code without running it.

Try them by hand (an instructor adding a check, or a developer changing one):

    python -m tests.mutants                    # every mutant
    python -m tests.mutants serve_http         # the mutants of one exercise

Each mutant's ``code`` is appended to the exported workbook, so it replaces the
reference under the exercise's name; it may import what it needs, as a student's file
does (``from part1_sockets.http_server import read_head``).
"""

import ast
import os
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
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
        return f"{self.part}.{self.exercise}: {self.mistake}"


def every_mutant():
    from tests.mutants.part1 import MUTANTS as PART1
    from tests.mutants.part2 import MUTANTS as PART2
    from tests.mutants.part3 import MUTANTS as PART3
    from tests.mutants.part4 import MUTANTS as PART4

    return PART1 + PART2 + PART3 + PART4


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


def grade(mutants, folder, jobs=None):
    """Grade each mutant's own exercise, in workbooks of a round each under ``folder``, all
    rounds at once on ``jobs`` processes: {mutant: Result}."""
    work = []
    for number, round_ in enumerate(rounds(mutants)):
        workbook = workbook_with(Path(folder) / f"round{number}", round_)
        work += [(mutant, workbook) for mutant in round_]
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(jobs) as pool:
        futures = {
            mutant: pool.submit(core.run_exercise, core.find_exercise(mutant.part, mutant.exercise), workbook=workbook)
            for mutant, workbook in work
        }
        return {mutant: future.result() for mutant, future in futures.items()}


def neighbours_bound(mutant):
    """The names of the part's other exercises that the mutant's code binds at the top of
    the workbook (a def, an import, an assignment): each would replace a neighbour."""
    others = {exercise.name for exercise in core.EXERCISES if exercise.part == mutant.part} - {mutant.exercise}
    bound = set()
    for node in ast.parse(textwrap.dedent(mutant.code)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).partition(".")[0] for alias in node.names}
        else:
            names = [name for name in ast.walk(node) if isinstance(name, ast.Name)]
            bound |= {name.id for name in names if isinstance(name.ctx, ast.Store)}
    return sorted(bound & others)


def verdict(mutant, own):
    """None if the mutant fails its own exercise (``own``, its Result), with the expected
    words, and binds no other exercise's name; otherwise what went wrong, in one line."""
    if own.passed:
        return f"{mutant.id}: PASSES its exercise, so the grader teaches that it is right"
    if mutant.expect.lower() not in own.message.lower():
        return f"{mutant.id}: fails, but the message lacks {mutant.expect!r}: {own.message}"
    for grader_file in ("test_part", "helpers.py", "conftest.py", "launch.py"):
        if grader_file in own.message:
            return f"{mutant.id}: the message points into the grader ({grader_file}): {own.message}"
    neighbours = neighbours_bound(mutant)
    if neighbours:
        return f"{mutant.id}: its code binds {', '.join(neighbours)}, replacing another exercise of {mutant.part}"
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    chosen = [mutant for mutant in every_mutant() if not argv or mutant.exercise in argv]
    problems = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        results = grade(chosen, folder)
    for mutant in chosen:
        problem = verdict(mutant, results[mutant])
        print(f"  {'ok ' if problem is None else 'BAD'} {mutant.id}\n      {results[mutant].message}")
        problems += [problem] if problem else []
    print("\n".join(["", *problems]) if problems else "\nevery mutant fails its own exercise, and only that one")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
