"""part3_concurrency/measure/gil.py: the GIL experiment measures what it says, and draws it.

The lower bound is the GIL's own doing, and holds on any machine however busy: four
computations on the threads of one process take turns on one core. That processes do
better needs a second core, and is only checked where there is one.
"""

import subprocess
import sys
import time

import pytest

from harness import ROOT
from part3_concurrency.measure.gil import CORES, KINDS, draw, last_end, run_experiment
from tests.helpers import TIMING

# CPU shares and overlaps, from one experiment the module shares; a free core to show them,
# so the README's test command runs them after the parallel run (alone).
pytestmark = [TIMING, pytest.mark.alone]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MS = 200


@pytest.fixture(scope="module")
def timings():
    return run_experiment(["threaded", "forking"], requests=4, ms=MS)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_every_request_has_a_start_and_an_end(timings):
    assert {(t.server, t.kind) for t in timings} == {(s, k) for s in ("threaded", "forking") for k in KINDS}
    assert len(timings) == 2 * 2 * 4
    assert all(0 <= t.start < t.end for t in timings)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_four_computations_on_threads_take_turns_on_one_core(timings):
    assert last_end(timings, "threaded", "cpu") >= 0.9 * 4 * MS / 1000


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_four_sleeps_overlap_on_threads_and_on_processes(timings):
    for server in ("threaded", "forking"):
        assert last_end(timings, server, "sleep") < 2 * MS / 1000, server


def cpu_times():
    """(idle, total) time of all cores since boot, in ticks, from Linux's /proc/stat."""
    with open("/proc/stat") as file:
        fields = [int(number) for number in file.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait, and everything


def idle_cores(seconds=0.5):
    """How many cores sat idle over the next ``seconds``; None where /proc/stat is missing."""
    try:
        idle_before, total_before = cpu_times()
        time.sleep(seconds)
        idle_after, total_after = cpu_times()
    except OSError:
        return None
    return CORES * (idle_after - idle_before) / max(1, total_after - total_before)


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.skipif(CORES < 2, reason="processes compute side by side only on two cores or more")
def test_processes_compute_side_by_side(timings):
    # One thread needs one core; four processes need a second one as well. On a machine
    # busy with other work there is none to lend, and the comparison says nothing.
    idle = idle_cores()
    if idle is not None and idle < 1.5:
        pytest.skip(f"only {idle:.1f} cores are idle: processes need a free second core to show it")
    assert last_end(timings, "forking", "cpu") < 0.8 * last_end(timings, "threaded", "cpu")


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_draw_gives_one_panel_per_kind(timings):
    import matplotlib

    matplotlib.use("Agg")
    figure = draw(timings, MS)
    assert [axis.get_title(loc="left").split(":")[0] for axis in figure.axes] == list(KINDS)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_script_prints_a_table_and_writes_the_plot(tmp_path):
    plot = tmp_path / "gil.png"
    result = subprocess.run(
        [
            sys.executable,
            "part3_concurrency/measure/gil.py",
            "--ms",
            "100",
            "--servers",
            "select,prefork",
            "--plot",
            str(plot),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for server in ("select", "prefork"):
        for kind in KINDS:
            assert any(line.split()[:2] == [server, kind] for line in lines), result.stdout
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
