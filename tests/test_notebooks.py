"""The notebooks: each one runs top to bottom, and each one is committed clean.

A notebook runs here as a student runs it: in a fresh python3 kernel whose working
directory is notebooks/, cell after cell (``execute()`` of notebooks/render.py, which
also writes the rendered pages). A cell that raises fails the test with that cell's
code and traceback. The notebooks are committed without outputs, so that a
diff shows changes to the lesson and not to the numbers a run happened to print.
"""

import json
import re

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from notebooks.render import NOTEBOOKS_DIR, execute, main

NOTEBOOKS = sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb"))
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # the kernel colours its tracebacks


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name):
    try:
        execute(NOTEBOOKS_DIR / name)
    except (CellExecutionError, CellTimeoutError) as error:
        pytest.fail(f"{name}: a cell failed\n{ANSI_COLOUR.sub('', str(error))}", pytrace=False)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{name}: cells {dirty} have outputs or execution counts; clear them with\n"
        f"    jupyter nbconvert --clear-output --inplace notebooks/{name}"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_render_writes_a_page_with_outputs_and_prints_timings(tmp_path, capsys):
    """The quickest notebook, rendered: its page holds a cell's output, and timings are printed."""
    notebook = NOTEBOOKS_DIR / "01_sockets.ipynb"
    assert main(["--out", str(tmp_path), "--timings", str(tmp_path / "timings.json"), str(notebook)]) == 0
    page = (tmp_path / f"{notebook.stem}.html").read_text(encoding="utf-8")
    assert "jp-OutputArea-output" in page  # nbconvert's mark of a cell's output
    assert "exit code: 0" in page  # printed by its last cell, as each server stops
    printed = capsys.readouterr().out
    assert printed.startswith(f"{notebook.name}: ") and " s to run" in printed
    timings = json.loads((tmp_path / "timings.json").read_text())
    first = timings["notebooks"][0]
    assert first["sections"] and all(section["seconds"] >= 0 for section in first["sections"])
    assert timings["measured"]["python"] and timings["measured"]["cores"]


def test_every_exercise_has_a_grading_cell_in_its_notebook():
    from grader.core import EXERCISES

    for exercise in EXERCISES:
        name = exercise.notebook.split(",")[0]
        notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        cell = f'grade("{exercise.part}", "{exercise.name}")'
        assert any(cell in c.source for c in notebook.cells if c.cell_type == "code"), f"{name} has no {cell}"
