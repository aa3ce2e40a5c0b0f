"""part3_concurrency/measure/files_app_cost.py: it runs, and writes a row per app."""

import csv

import pytest

from harness import ROOT
from tests.helpers import run_measuring_script

pytestmark = pytest.mark.timeout(120)


def test_a_tiny_run_writes_the_cost_of_each_app_and_their_ratio(tmp_path):
    run_measuring_script("files_app_cost", tmp_path)
    rows = {row["app"]: row for row in csv.DictReader(open(tmp_path / "files_app_cost.csv"))}
    assert set(rows) == {"files_app", "whitenoise"}
    assert all(float(row["microseconds_per_request"]) > 0 for row in rows.values())
    assert rows["whitenoise"]["times_whitenoise"] == "1.00"


def test_tuning_md_quotes_files_app_cost_csv():
    """docs/bench/tuning.md's in-process figures are the file's."""
    bench = ROOT / "docs" / "bench"
    rows = {row["app"]: row for row in csv.DictReader(open(bench / "files_app_cost.csv"))}
    ours, theirs = rows["files_app"], rows["whitenoise"]
    quoted = (
        f"app {ours['microseconds_per_request']} µs against whitenoise's {theirs['microseconds_per_request']} µs,"
        f" {ours['times_whitenoise']} times"
    )
    assert quoted in " ".join((bench / "tuning.md").read_text(encoding="utf-8").split())
