"""``python -m grader``: grade the workbook (or the reference), print a score table.

    python -m grader                          # every exercise of every part
    python -m grader part2                    # one part
    python -m grader part2 chunk              # one exercise
    python -m grader --solutions              # the reference code: must score full marks
    python -m grader --json results.json      # also write Gradescope's results.json
    python -m grader --workbook DIR           # grade DIR/part1.py ... instead of exercises/
    python -m grader --gradescope-zip FILE    # write Gradescope's autograder zip (see grader/gradescope.py)
    python -m grader --export-solutions DIR   # write the reference as a student's part1.py ... in DIR
    python -m grader part1 serve_echo --hint  # grade it, and reveal its next hint

The exit status is 0 only when every exercise graded passes.
"""

import argparse
import importlib.util
import sys
import time

from grader.core import (
    CHECK_TIMEOUT,
    PARTS,
    format_hints,
    reveal_next_hint,
    run,
    select,
    table_header,
    table_row,
    total_row,
    track_title,
    write_json,
)
from grader.workbook import display


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m grader", description="Grade the workbook's exercises and print a score table."
    )
    parser.add_argument("part", nargs="?", choices=list(PARTS), help="grade only this part (default: all four)")
    parser.add_argument("exercise", nargs="?", help="grade only this exercise of the part, e.g. receive_exactly")
    parser.add_argument(
        "--solutions",
        action="store_true",
        help="grade the reference code instead of exercises/ (instructors: it must score full marks)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as Gradescope's results.json to FILE")
    parser.add_argument("--workbook", metavar="DIR", help="grade DIR/part1.py ... DIR/part4.py instead of exercises/")
    parser.add_argument(
        "--gradescope-zip", metavar="FILE", help="write the autograder zip to upload to Gradescope, and exit"
    )
    parser.add_argument(
        "--export-solutions",
        metavar="DIR",
        help="write the reference as a student's part1.py ... part4.py in DIR (they pass), and exit",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=CHECK_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of one check (default {CHECK_TIMEOUT:g})",
    )
    parser.add_argument(
        "--every-check", action="store_true", help="run every check, even after an exercise's first failure"
    )
    parser.add_argument(
        "--hint",
        action="store_true",
        help="after grading, reveal the next hint of the exercise named (or of the first one that fails)",
    )
    parser.add_argument(
        "--jobs", type=int, metavar="N", help="exercises graded at once (default: the number of CPUs, at most 4)"
    )
    args = parser.parse_args(argv)
    if args.exercise and not args.part:
        parser.error("name the part before the exercise, e.g. python -m grader part1 serve_echo")
    return args


def write_files(args):
    """--gradescope-zip and --export-solutions: files for instructors, no grading."""
    from grader.gradescope import build_zip, export_solutions

    if args.gradescope_zip:
        path = build_zip(args.gradescope_zip)
        print(f"Wrote {path}: upload it as the autograder of a Gradescope assignment.")
    if args.export_solutions:
        paths = export_solutions(args.export_solutions)
        print(
            f"Wrote {', '.join(map(str, paths))}: grade them with python -m grader --workbook {args.export_solutions}"
        )
    return 0


def missing_requirement():
    """The first module the checks need that is not installed, or None."""
    for module in ("pytest", "pytest_timeout"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def main(argv=None):
    args = parse_args(argv)
    if args.gradescope_zip or args.export_solutions:
        return write_files(args)
    missing = missing_requirement()
    if missing:
        print(
            f"python -m grader: error: the checks run with {missing}, which is not installed; "
            "install the workshop's requirements: python -m pip install -r requirements.txt",
            file=sys.stderr,
        )
        return 2
    try:
        exercises = select(args.part, args.exercise)
    except ValueError as error:
        print(f"python -m grader: error: {error}", file=sys.stderr)
        return 2
    what = "the reference code (--solutions)" if args.solutions else display(args.workbook or "exercises") + "/"
    count = f"{len(exercises)} exercises, each" if len(exercises) > 1 else "1 exercise,"
    print(f"Grading {what}: {count} in a process of its own.\n", flush=True)

    started = time.monotonic()
    done = []

    def show(result):
        # Print each row as soon as it is known: a track's title before its first row,
        # its total after its last.
        track = result.exercise.track
        if not done or done[-1].exercise.track != track:
            print(("\n" if done else "") + track_title(track), flush=True)
            print(table_header(), flush=True)
        done.append(result)
        print(table_row(result), flush=True)
        same_track = [r for r in done if r.exercise.track == track]
        last_of_track = all(e.track != track for e in exercises[len(done) :])
        if last_of_track and len(same_track) > 1:
            print(total_row(f"{track} track total", same_track), flush=True)

    results = run(exercises, args.solutions, args.workbook, args.timeout, args.every_check, args.jobs, on_result=show)
    seconds = time.monotonic() - started
    if len(results) > 1:
        print("\n" + total_row("TOTAL", results))
    print(f"\nGraded in {seconds:.1f} s.", end="")
    if args.json:
        write_json(args.json, results, seconds)
        print(f" Gradescope results written to {args.json}.", end="")
    print()
    failing = [result for result in results if not result.passed]
    if failing and not args.solutions:
        print("Each FAIL shows the first problem found: fix it, save, grade again. The checks are in grader/tests/.")
        if args.hint:
            exercise = failing[0].exercise
            print("\n" + format_hints(exercise, reveal_next_hint(exercise, args.workbook)))
        else:
            first = failing[0].exercise
            print(f"Stuck? python -m grader {first.part} {first.name} --hint reveals a hint, one at a time.")
    elif args.hint and not args.solutions:
        print("Everything graded passes: no hint needed.")
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
