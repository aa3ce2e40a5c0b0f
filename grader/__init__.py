"""The grader: scores the workbook in exercises/ against the graded tests.

From a terminal:

    python -m grader [part1|part2|part3|part4] [EXERCISE] [--solutions] [--json FILE]

From a notebook, one exercise at a time:

    from grader import grade
    result = grade("part1", "serve_echo")          # prints a one-row table; never raises
    result = grade("part1", "serve_echo", hint=True)   # and reveals its next hint
    compare_with_reference("part2", "run_app")     # grades it; shows the reference once yours passes

See ``grader/core.py`` for how each exercise is run in isolation, and
``grader/tests/`` for the checks themselves.
"""

import inspect

from grader.core import find_exercise, format_hints, format_table, reveal_next_hint, run, select
from grader.workbook import display

__all__ = ["grade", "compare_with_reference", "Report"]


class Report:
    """What ``grade()`` returns: the results, and their score."""

    def __init__(self, results):
        self.results = results
        self.score = sum(result.score for result in results)
        self.max_score = sum(result.exercise.points for result in results)
        self.passed = all(result.passed for result in results)

    def __repr__(self):
        names = ", ".join(result.exercise.name for result in self.results)
        return f"<Report {names}: {self.score} of {self.max_score} points, {'pass' if self.passed else 'not yet'}>"


def grade(part=None, exercise=None, solutions=False, workbook=None, hint=False):
    """Grade one exercise, one part, or everything; print the table; return a Report.

    A failing exercise is a result, not an error: this never raises for one, so a
    notebook cell that grades an unfinished exercise shows the failure and carries on.
    ``hint=True`` also reveals the next hint of the first exercise that fails.
    """
    results = run(select(part, exercise), solutions=solutions, workbook=workbook)
    print(format_table(results), flush=True)
    failing = [result for result in results if not result.passed]
    if hint and failing and not solutions:
        first = failing[0].exercise
        print("\n" + format_hints(first, reveal_next_hint(first, workbook)), flush=True)
    return Report(results)


def compare_with_reference(part, exercise, workbook=None):
    """Grade one exercise; print the reference solution only if the student's own passes.

    A notebook that printed the reference right after an exercise would hand out the
    answer to whoever runs every cell. So the reference is earned: until the exercise
    passes, this says what still fails and prints no reference code.
    """
    report = grade(part, exercise, workbook=workbook)
    if not report.passed:
        print(
            f"\nThe reference {exercise}() is shown here once yours passes; "
            f"fix what the table says first (python -m grader {part} {exercise} --hint for a hint).",
            flush=True,
        )
        return report
    module_name, _, attribute = find_exercise(part, exercise).reference.partition(":")
    reference = getattr(__import__(module_name, fromlist=[attribute]), attribute)
    where = display(inspect.getsourcefile(reference))
    print(f"\nYours passes. The reference, from {where}, to compare with yours:\n", flush=True)
    print(inspect.getsource(reference), flush=True)
    return report
