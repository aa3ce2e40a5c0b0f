"""The grader: scores the workbook in exercises/ against the graded tests.

From a terminal:

    python -m grader [part1|part2|part3] [EXERCISE] [--solutions] [--json FILE]

From a notebook, one exercise at a time:

    from grader import grade
    result = grade("part1", "serve_echo")          # prints a one-row table; never raises
    result = grade("part1", "serve_echo", hint=True)   # and reveals its next hint

See ``grader/core.py`` for how each exercise is run in isolation, and
``grader/tests/`` for the checks themselves.
"""

from grader.core import format_hints, format_table, reveal_next_hint, run, select

__all__ = ["grade", "Report"]


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
