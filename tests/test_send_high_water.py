"""docs/bench/tuning.md's figures for part 4's send high-water mark are those
part3_concurrency/measure/send_high_water.py wrote, and the mark kept is one it measured."""

import csv
import statistics

from harness import ROOT
from part4_asgi.server import SEND_HIGH_WATER

BENCH = ROOT / "docs" / "bench"


def medians():
    rows = list(csv.DictReader(open(BENCH / "send_high_water.csv")))
    marks = sorted({int(row["high_water"]) for row in rows}, reverse=True)
    columns = ("rss_20_unread_mib", "stream_mib_s", "server_cpu_s_per_gib")
    return {
        mark: {
            column: statistics.median(float(row[column]) for row in rows if int(row["high_water"]) == mark)
            for column in columns
        }
        for mark in marks
    }


def test_tuning_md_quotes_send_high_water_csv():
    figures = medians()
    assert SEND_HIGH_WATER in figures
    tuning = " ".join((BENCH / "tuning.md").read_text(encoding="utf-8").split())
    for mark, median in figures.items():
        quoted = (
            f"{mark // 1024} KiB: {median['rss_20_unread_mib']:.1f} MiB held with 20 clients that read nothing,"
            f" {median['stream_mib_s']:.0f} MiB/s, {median['server_cpu_s_per_gib']:.2f} CPU seconds per GiB"
        )
        assert quoted in tuning
