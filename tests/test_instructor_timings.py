"""The instructor's guide states timings measured by a run, never typed by hand.

``python notebooks/render.py --out rendered --timings docs/timings.json --update-guide``
runs every notebook, keeps its figures (and the machine, and the date) in
docs/timings.json, and rewrites the guide's timing tables and sentences, and the
README's rendering time, from that file. These tests fail when the guide or the README
says something the file does not, and when a notebook's prose has changed since the
file was measured (its words are counted here without running it): then measure again.
"""

import copy
import json

import nbformat
import pytest

from notebooks.render import (
    GUIDE,
    GUIDE_BLOCKS,
    MEASURED_BLOCK,
    NOTEBOOKS_DIR,
    README,
    README_RENDER_LINE,
    TIMINGS,
    section_totals,
    sections,
    updated_guide,
    updated_readme,
)

MEASURE_AGAIN = "python notebooks/render.py --out rendered --timings docs/timings.json --update-guide"


@pytest.fixture(scope="module")
def timings():
    return json.loads(TIMINGS.read_text(encoding="utf-8"))


def test_the_guide_holds_every_measured_block_once():
    names = [match["name"] for match in MEASURED_BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))]
    assert sorted(names) == sorted(GUIDE_BLOCKS)


def test_the_guide_says_what_the_timings_file_says(timings):
    text = GUIDE.read_text(encoding="utf-8")
    assert updated_guide(text, timings) == text, (
        "docs/instructor.md's timings differ from docs/timings.json: python notebooks/render.py --update-guide"
    )


def test_the_readme_says_how_long_rendering_takes_as_measured(timings):
    text = README.read_text(encoding="utf-8")
    assert README_RENDER_LINE.search(text), "the README's render.py line is gone"
    assert updated_readme(text, timings) == text, "python notebooks/render.py --update-guide"


def test_a_changed_figure_changes_the_guide(timings):
    """The check above can fail: change one measured second, and the guide no longer matches."""
    changed = copy.deepcopy(timings)
    changed["notebooks"][0]["sections"][-1]["seconds"] += 10
    changed["notebooks"][0]["seconds"] += 10
    assert updated_guide(GUIDE.read_text(encoding="utf-8"), changed) != GUIDE.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")))
def test_each_notebooks_words_are_those_measured(name, timings):
    measured = {entry["notebook"]: entry for entry in timings["notebooks"]}
    assert name in measured, f"{name} was never measured: {MEASURE_AGAIN}"
    found = sections(nbformat.read(NOTEBOOKS_DIR / name, as_version=4), {})
    now = [(section["title"], section["words"]) for section in section_totals(found)]
    then = [(section["title"], section["words"]) for section in measured[name]["sections"]]
    assert now == then, f"{name}'s prose changed since docs/timings.json was measured: {MEASURE_AGAIN}"
