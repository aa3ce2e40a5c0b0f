"""part3_concurrency/measure/files_app_cost.py: it runs, and writes a row per app."""

import csv
import subprocess
import sys

import pytest

from harness import ROOT

pytestmark = pytest.mark.timeout(120)


def test_a_tiny_run_writes_the_cost_of_each_app_and_their_ratio(tmp_path):
    script = ROOT / "part3_concurrency" / "measure" / "files_app_cost.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--requests", "20", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert completed.returncode == 0, completed.stderr
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
