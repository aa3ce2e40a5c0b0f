"""The old name of measure/bench.py, kept so that commands written against it still run:
``python part3_concurrency/bench.py ...`` runs measure/bench.py. Use that path in new
commands."""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parent / "measure" / "bench.py"), run_name="__main__")
else:
    from part3_concurrency.measure import bench

    sys.modules[__name__] = bench
