"""The Gradescope autograder, run here as Gradescope runs it.

``python -m grader --gradescope-zip`` builds the zip; we unpack it into a folder laid out
as Gradescope's ``/autograder`` (``source/``, ``submission/``, ``results/``) and run its
``run_autograder`` with ``AUTOGRADER_ROOT`` pointing there. The untouched stubs must
score 0, the exported reference (``--export-solutions``) full marks, and a submission
that lacks a file must still get a results.json that says which file is missing.
(``setup.sh`` installs the requirements; here this test's own Python has them.)
"""

import json
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from grader.core import EXERCISES, PARTS, ROOT
from grader.workbook import STUBS

FULL_MARKS = sum(exercise.points for exercise in EXERCISES)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("zip") / "autograder.zip"
    result = subprocess.run(
        [sys.executable, "-m", "grader", "--gradescope-zip", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return path


def autograde(autograder_zip, root, submitted):
    """Unpack the zip as Gradescope does, put ``submitted`` files in, run, return results.json."""
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    (root / "submission").mkdir()
    for file in submitted:
        shutil.copy(file, root / "submission" / file.name)
    env = {"AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.slow
def test_the_zip_has_the_scripts_at_its_root_and_no_clutter(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        for script in ("setup.sh", "run_autograder"):
            mode = archive.getinfo(script).external_attr >> 16
            assert mode & stat.S_IXUSR, f"{script} is not executable"
    needed_files = (
        "grader/core.py",
        "grader/tests/test_part1.py",
        "grader/tests/test_part4.py",
        "grader/stubs/part4.py",
        "part2_wsgi/protocol.py",
        "part4_asgi/minimal_asgi_server.py",
        "requirements.txt",
    )
    for needed in needed_files:
        assert needed in names
    assert not [name for name in names if "__pycache__" in name or name.startswith((".git", ".venv", "tests/"))]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_untouched_stubs_score_zero(autograder_zip, tmp_path):
    results = autograde(autograder_zip, tmp_path, [STUBS / f"{part}.py" for part in PARTS])
    assert results["score"] == 0
    assert len(results["tests"]) == len(EXERCISES)
    assert all(test["status"] == "failed" for test in results["tests"])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_exported_reference_scores_full_marks(autograder_zip, tmp_path):
    exported = subprocess.run(
        [sys.executable, "-m", "grader", "--export-solutions", str(tmp_path / "exported")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 0, exported.stderr
    results = autograde(autograder_zip, tmp_path / "root", sorted((tmp_path / "exported").glob("part*.py")))
    failed = [test["output"] for test in results["tests"] if test["status"] != "passed"]
    assert results["score"] == FULL_MARKS, failed
    assert sum(test["max_score"] for test in results["tests"]) == FULL_MARKS


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_missing_file_is_named_in_the_results(autograder_zip, tmp_path):
    results = autograde(autograder_zip, tmp_path, [STUBS / "part1.py"])
    assert results["output"].startswith("Not found in the submission (or found twice): part2.py, part3.py, part4.py.")
    for part in ("part3", "part4"):
        tests = [test for test in results["tests"] if test["name"].startswith(f"{part}.")]
        assert tests and all("there is no" in test["output"] and f"{part}.py" in test["output"] for test in tests)
