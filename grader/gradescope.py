"""Gradescope: the autograder's zip, the run for one submission, and the reference as a workbook.

    python -m grader --gradescope-zip autograder.zip     # upload it as the autograder
    python -m grader --export-solutions DIR              # DIR/part1.py ...: the reference

Gradescope unpacks the zip into ``/autograder/source`` of an Ubuntu image and runs its
``setup.sh`` there once, then, for each submission, ``run_autograder``, with the
student's files in ``/autograder/submission``; it reads the grade from
``/autograder/results/results.json``. Our ``run_autograder`` hands over to ``run()``
below, which collects ``part1.py`` ... ``part4.py`` into a workbook folder
and grades it with ``python -m grader --workbook DIR --json .../results.json``.
``AUTOGRADER_ROOT`` moves ``/autograder`` elsewhere, to try it all on your own machine.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from grader.core import EXERCISES, PARTS, ROOT

# What grading needs: the grader, the reference it imports (and --solutions grades), the
# stubs, and what `pip install -r requirements.txt` needs to install this repository.
SOURCES = [
    "grader",
    "exercises",
    "part1_sockets",
    "part2_wsgi",
    "part3_concurrency",
    "part4_asgi",
    "harness.py",
    "pyproject.toml",
    "requirements.txt",
    "README.md",
]
LEFT_OUT = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source of its Ubuntu image:
# Python 3 and the workshop's requirements, in a virtual environment of their own.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install -r requirements.txt
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade the student's part1.py ... part4.py,
# and write results/results.json. AUTOGRADER_ROOT (default /autograder) and
# AUTOGRADER_PYTHON (default the virtual environment setup.sh made) let you try it
# on your own machine.
set -euo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
cd "$root/source"
exec "${AUTOGRADER_PYTHON:-/autograder/venv/bin/python}" -m grader.gradescope "$root"
"""


# --- the zip ------------------------------------------------------------------------------


def build_zip(path):
    """Write the autograder's zip to ``path``: setup.sh and run_autograder at its root."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            _add_executable(archive, name, text)
        for source in SOURCES:
            for file in _files(ROOT / source):
                archive.write(file, file.relative_to(ROOT).as_posix())
    return path


def _add_executable(archive, name, text):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | 0o755) << 16  # rwxr-xr-x, kept by unzip
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def _files(path):
    if path.is_file():
        yield path
        return
    for file in sorted(path.rglob("*")):
        parts = set(file.relative_to(ROOT).parts)
        if file.is_file() and not parts & LEFT_OUT and not any(part.endswith(".egg-info") for part in parts):
            yield file


# --- the reference as a student's files -------------------------------------------------------


def export_solutions(folder):
    """Write ``folder/part1.py`` ...: each exercise is its reference function, imported
    under the exercise's name, as ``EXERCISES`` in grader/core.py names them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for part, title in PARTS.items():
        lines = [
            f'"""{title}: the reference solutions, as a student\'s {part}.py.',
            "",
            "Written by `python -m grader --export-solutions`. Each exercise is the reference",
            "function that grader/core.py's EXERCISES names for it, imported under the",
            "exercise's name: `python -m grader --workbook THIS_FOLDER` must give full marks.",
            '"""',
            "",
        ]
        for exercise in (exercise for exercise in EXERCISES if exercise.part == part):
            module, _, attribute = exercise.reference.partition(":")
            first, *rest = attribute.split(".")
            if rest:  # a method or a class attribute: Class.name
                lines.append(f"from {module} import {first} as _{exercise.name}_owner")
                lines.append(f"{exercise.name} = _{exercise.name}_owner.{'.'.join(rest)}")
            elif first == exercise.name:
                lines.append(f"from {module} import {first}")
            else:
                lines.append(f"from {module} import {first} as {exercise.name}")
        path = folder / f"{part}.py"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


# --- one submission, on Gradescope ----------------------------------------------------------


def find_submitted(submission, part):
    """``part1.py`` at the top of the submission, or else the one file of that name in it
    (a zip of the repository holds exercises/part1.py, say); None if there is none."""
    top = submission / f"{part}.py"
    if top.is_file():
        return top
    found = sorted(path for path in submission.rglob(f"{part}.py") if path.is_file())
    return found[0] if len(found) == 1 else None


def run(root):
    """Grade the submission in ``root/submission``; write ``root/results/results.json``."""
    root = Path(root)
    submission, results = root / "submission", root / "results" / "results.json"
    workbook = root / "workbook"
    shutil.rmtree(workbook, ignore_errors=True)
    workbook.mkdir(parents=True)
    missing = []
    for part in PARTS:
        found = find_submitted(submission, part) if submission.is_dir() else None
        if found is None:
            missing.append(f"{part}.py")
        else:
            shutil.copy(found, workbook / f"{part}.py")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    command = [sys.executable, "-m", "grader", "--workbook", str(workbook), "--json", str(results)]
    graded = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL)
    if results.is_file():
        document = json.loads(results.read_text(encoding="utf-8"))
    else:  # the grader itself failed: say so, and give no points rather than no page
        document = {
            "score": 0,
            "output": f"The grader stopped (exit status {graded.returncode}) before writing results.",
        }
    if missing:
        note = (
            f"Not found in the submission (or found twice): {', '.join(missing)}. "
            "Upload part1.py, part2.py, part3.py and part4.py (the files of exercises/, as they are named there); "
            "the exercises of a missing file score 0."
        )
        document["output"] = note + "\n" + document.get("output", "")
    results.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0  # the grade is in results.json; a failed exercise is not a failed autograder


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOGRADER_ROOT", "/autograder")))
