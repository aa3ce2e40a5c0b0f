"""Run the notebooks top to bottom and write them as HTML pages, outputs and plots included.

    python notebooks/render.py --out rendered                      # all three
    python notebooks/render.py --out rendered notebooks/01_sockets.ipynb
    python notebooks/render.py --out rendered --timings timings.json

The notebooks are committed without outputs; this is how to see them with theirs, in
any browser, with nothing to install or run (for a handout, or to read ahead). Each
page is self-contained: the plots are embedded in it.

While it runs it times each notebook and each section (a markdown heading and the
cells up to the next one), and counts each section's words: the measured half of the
timings in docs/instructor.md. ``tests/test_notebooks.py`` runs the notebooks through
``execute()`` below, so the pages and the tests see the same run.
"""

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent
CELL_TIMEOUT = 120  # a limit, not a target: the slowest cell (the quick benchmark) takes about 25 s
HEADING = re.compile(r"(#{1,3})\s+(.*)")
NEEDS = ("nbclient", "nbconvert", "nbformat", "ipykernel")


def execute(path, timeout=CELL_TIMEOUT):
    """Run the notebook at ``path`` as a student does (a fresh python3 kernel whose working
    directory is notebooks/); return it, outputs filled in, and each code cell's seconds
    by cell index. A cell that fails raises nbclient's CellExecutionError (or
    CellTimeoutError), with that cell's code and traceback."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    started, seconds = {}, {}

    def on_cell_start(cell, cell_index):
        started[cell_index] = time.monotonic()

    def on_cell_executed(cell, cell_index, execute_reply):
        seconds[cell_index] = time.monotonic() - started[cell_index]

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
    )
    client.execute()
    return notebook, seconds


def sections(notebook, seconds):
    """Per heading of levels 1 to 3: its title, level, seconds of its code, words of its prose."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                heading = HEADING.match(line)
                if heading:
                    found.append({"level": len(heading[1]), "title": heading[2].strip(), "seconds": 0.0, "words": 0})
                elif found:
                    found[-1]["words"] += len(line.split())
        elif found:
            found[-1]["seconds"] += seconds.get(index, 0.0)
    return found


def section_totals(found):
    """Each level-2 section ("## 2. An echo server") with its subsections summed in."""
    totals = []
    for section in found:
        if section["level"] <= 2:
            totals.append(dict(section))
        elif totals:
            totals[-1]["seconds"] += section["seconds"]
            totals[-1]["words"] += section["words"]
    return totals


def to_html(notebook):
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter(embed_images=True).from_notebook_node(notebook)
    return body


def render(path, out):
    """Execute one notebook, write OUT/NAME.html; return its timings."""
    started = time.monotonic()
    notebook, seconds = execute(path)
    total = time.monotonic() - started  # the kernel's start included, as a student waits for it
    page = Path(out) / (Path(path).stem + ".html")
    page.write_text(to_html(notebook), encoding="utf-8")
    found = sections(notebook, seconds)
    return {
        "notebook": Path(path).name,
        "html": str(page),
        "seconds": round(total, 1),
        "words": sum(section["words"] for section in found),
        "sections": [{**section, "seconds": round(section["seconds"], 1)} for section in section_totals(found)],
        "subsections": [{**section, "seconds": round(section["seconds"], 1)} for section in found],
    }


def print_timings(timings):
    print(f"{timings['notebook']}: {timings['seconds']:.1f} s to run, {timings['words']} words -> {timings['html']}")
    for section in timings["subsections"]:
        title = "  " * section["level"] + section["title"][:60]
        print(f"{title:<66}{section['seconds']:>7.1f} s{section['words']:>7} words")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the notebooks and write them as HTML with their outputs.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="the notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the HTML pages")
    parser.add_argument("--timings", type=Path, metavar="FILE", help="also write the timings as JSON to FILE")
    args = parser.parse_args(argv)
    missing = [module for module in NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        print(
            f"render.py: error: running notebooks needs {', '.join(missing)}, which is not installed; "
            "install the workshop's requirements: python -m pip install -r requirements.txt",
            file=sys.stderr,
        )
        return 2
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    args.out.mkdir(parents=True, exist_ok=True)
    everything = []
    for path in args.notebooks or sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        try:
            timings = render(path, args.out)
        except (CellExecutionError, CellTimeoutError) as error:
            last = [line for line in str(error).splitlines() if line.strip()][-1:]
            print(f"render.py: {Path(path).name}: a cell failed: {''.join(last)}", file=sys.stderr)
            return 1
        print_timings(timings)
        everything.append(timings)
    if args.timings:
        args.timings.write_text(json.dumps(everything, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
