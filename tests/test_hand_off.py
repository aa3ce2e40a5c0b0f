"""part3_concurrency/measure/hand_off.py: it runs, its parts add up, and the prose quotes its CSV."""

import shutil

import pytest

from harness import ROOT
from part3_concurrency.measure.hand_off import PARTS, read_csv
from tests.helpers import run_measuring_script

pytestmark = pytest.mark.timeout(120)
BENCH = ROOT / "docs" / "bench"


def microseconds(figures, way, figure):
    return float(figures[(way, figure)])


@pytest.mark.slow  # two servers, a few hundred requests, strace
def test_a_tiny_run_writes_both_ways_and_their_parts_add_up_to_the_round_trip(tmp_path):
    run_measuring_script("hand_off", tmp_path)
    figures = read_csv(tmp_path / "hand_off.csv")
    for way in ("before", "after"):
        parts = sum(microseconds(figures, way, part) for part in PARTS)
        assert parts == pytest.approx(microseconds(figures, way, "round_trip"), abs=0.5)
        futexes = figures[(way, "futex_calls_per_request")]
        assert futexes != "" or shutil.which("strace") is None, "strace is installed: the futex calls are counted"
    assert microseconds(figures, "after", "hand_off") == 0
    if shutil.which("strace"):  # the loop alone has no other thread to wait for
        futexes = {way: float(figures[(way, "futex_calls_per_request")]) for way in ("before", "after")}
        assert futexes["after"] < futexes["before"]


def test_tuning_md_quotes_hand_off_csv():
    """docs/bench/tuning.md's hand-off figures are the file's."""
    figures = read_csv(BENCH / "hand_off.csv")
    prose = " ".join((BENCH / "tuning.md").read_text(encoding="utf-8").split())
    quoted = (
        f"{figures[('before', 'futex_calls_per_request')]} futex calls per request against"
        f" {figures[('after', 'futex_calls_per_request')]}"
    )
    assert quoted in prose
    trips = f"{figures[('before', 'round_trip')]} µs against {figures[('after', 'round_trip')]} µs"
    assert trips in prose
    parts = ", ".join(f"{part.replace('_', ' ')} {figures[('before', part)]} µs" for part in PARTS)
    assert parts in prose


def test_notebook_03_reads_its_hand_off_figures_from_the_csv():
    """The notebook quotes no figure of its own: its cell reads hand_off.csv."""
    notebook = (ROOT / "notebooks" / "03_concurrency.ipynb").read_text(encoding="utf-8")
    assert "hand_off.read_csv" in notebook and "hand_off.csv" in notebook
    figures = read_csv(BENCH / "hand_off.csv")
    for value in figures.values():
        if value and float(value) >= 10:  # a figure that means something, not a 0.0 or a count of 2
            assert value not in notebook, f"{value} is typed into the notebook; its cell should read it"
