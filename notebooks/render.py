"""Run the notebooks top to bottom and write them as HTML pages, outputs and plots included.

    python notebooks/render.py --out rendered                      # all three
    python notebooks/render.py --out rendered notebooks/01_sockets.ipynb
    python notebooks/render.py --out rendered --timings timings.json
    python notebooks/render.py --out rendered --timings docs/timings.json --update-guide
    python notebooks/render.py --update-guide      # the guide's tables from docs/timings.json

The notebooks are committed without outputs; this is how to see them with theirs, in
any browser, with nothing to install or run (for a handout, or to read ahead). Each
page is self-contained: the plots are embedded in it.

While it runs it times each notebook and each section (a markdown heading and the
cells up to the next one), and counts each section's words: the measured half of the
timings in docs/instructor.md. ``tests/test_notebooks.py`` runs the notebooks through
``execute()`` below, so the pages and the tests see the same run.

The guide's figures are never typed: ``--timings docs/timings.json`` keeps a run's
figures, with the machine and the date, and ``--update-guide`` rewrites the guide's
timing tables and sentences (between ``<!-- measured: NAME -->`` and
``<!-- /measured -->``) and the README's rendering time from that file.
``tests/test_instructor_timings.py`` fails when the guide and the file disagree, or when
a notebook's prose no longer has the words the file counted: then measure again.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent
ROOT = NOTEBOOKS_DIR.parent
TIMINGS = ROOT / "docs" / "timings.json"  # the committed measurement
GUIDE = ROOT / "docs" / "instructor.md"
README = ROOT / "README.md"
WORDS_PER_MINUTE = 150  # reading technical prose, running its cells along the way
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


def measuring_machine():
    """What the figures were measured on, to print beside them."""
    return {
        "date": datetime.date.today().isoformat(),
        "system": f"{platform.system()} {platform.machine()}",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": shutil.which("wrk") is not None,  # the quick benchmark uses it when it is there
    }


# --- the guide's figures, from the timings file ----------------------------------------------

MEASURED_BLOCK = re.compile(r"(<!-- measured: (?P<name>[a-z-]+) -->)(?P<body>.*?)(<!-- /measured -->)", re.DOTALL)
README_RENDER_LINE = re.compile(
    r"(python notebooks/render\.py --out rendered +# rendered/01_sockets\.html \.\.\., )(about [^\n]*)"
)


def about_minutes(seconds):
    """Seconds in words, to the half minute: "about a minute and a half", "about 3 minutes"."""
    halves = max(1, round(seconds / 30))
    whole, half = divmod(halves, 2)
    if whole == 0:
        return "about half a minute"
    if whole == 1:
        return "about a minute and a half" if half else "about a minute"
    return f"about {whole} and a half minutes" if half else f"about {whole} minutes"


def reading_minutes(words):
    return max(1, round(words / WORDS_PER_MINUTE))


def hours_and_minutes(minutes):
    minutes = 5 * round(minutes / 5)
    return f"about {minutes // 60} h {minutes % 60:02d}" if minutes >= 60 else f"about {minutes} min"


def table_rows(body):
    """The cells of each row of the Markdown table in ``body`` (header and rule included)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in body.strip().splitlines()]


def table_text(rows):
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def notebooks_table(body, timings):
    """Per notebook: measured run time and words, reading estimated from them; the stages'
    columns are the guide's own, and the whole part adds them up (plus 15 minutes of trying)."""
    rows = table_rows(body)
    measured = {t["notebook"]: t for t in timings["notebooks"]}
    for row in rows[2:]:
        t = measured[row[0].strip("`")]
        reading = reading_minutes(t["words"])
        required = int(re.search(r"(\d+) min", row[4])[1])
        row[1:4] = [f"{t['seconds']:.1f} s", f"{t['words']:,}", f"{reading} min"]
        row[6] = hours_and_minutes(reading + required + 15)
    return "\n" + table_text(rows) + "\n"


def sections_table(body, timings):
    """One row per section (its subsections and, for the first, the introduction summed in),
    keeping the guide's own columns: the extra reading time, and the exercises graded there."""
    rows = table_rows(body)
    kept = {}  # (notebook, section number) -> (extra after the reading estimate, exercises)
    for row in rows[2:]:
        number, section = row[0].split(" ", 1)
        extra = re.sub(r"^\d+ min", "", row[3])
        kept[number, section.split(".")[0]] = (extra, row[4])
    out = rows[:2]
    for t in timings["notebooks"]:
        number = t["notebook"][:2]
        introduction = [s for s in t["sections"] if s["level"] == 1]
        for index, section in enumerate(s for s in t["sections"] if s["level"] == 2):
            seconds, words, title = section["seconds"], section["words"], section["title"]
            if index == 0 and introduction:
                seconds += introduction[0]["seconds"]
                words += introduction[0]["words"]
                title += " (with the introduction)"
            extra, exercises = kept.get((f"**{number}**", title.split(".")[0]), ("", ""))
            row = [f"**{number}** {title}", f"{seconds:.1f} s", f"{words:,}", f"{reading_minutes(words)} min{extra}"]
            out.append([*row, exercises])
    return "\n" + table_text(out) + "\n"


def machine_sentence(body, timings):
    m = timings["measured"]
    wrk = (
        "with wrk installed (the quick benchmark used it)"
        if m["wrk"]
        else "without wrk (the quick benchmark fell back to its Python client)"
    )
    return f"\nMeasured on {m['date']}, on {m['system']} with {m['cores']} cores, Python {m['python']}, {wrk}.\n"


def render_time(body, timings):
    return about_minutes(sum(t["seconds"] for t in timings["notebooks"]))


def slowest_sections(body, timings):
    """The two slowest subsections of the slowest notebook, with its whole run time."""
    slowest = max(timings["notebooks"], key=lambda t: t["seconds"])
    two = sorted(slowest["subsections"], key=lambda s: s["seconds"], reverse=True)[:2]
    parts = [
        f"{s['title'].split(' ', 1)[0].rstrip('.')} ({s['title'].split(' ', 1)[1]}) takes {s['seconds']:.0f} s"
        for s in two
    ]
    return f"of {slowest['notebook']}'s {slowest['seconds']:.0f} s, section {parts[0]} and section {parts[1]}"


GUIDE_BLOCKS = {
    "machine": machine_sentence,
    "render-time": render_time,
    "notebooks": notebooks_table,
    "sections": sections_table,
    "slowest": slowest_sections,
}


def updated_guide(text, timings):
    """The guide with every measured block rewritten from ``timings``."""

    def rewrite(match):
        return match[1] + GUIDE_BLOCKS[match["name"]](match["body"], timings) + match[4]

    return MEASURED_BLOCK.sub(rewrite, text)


def updated_readme(text, timings):
    return README_RENDER_LINE.sub(lambda match: match[1] + render_time("", timings), text)


def update_guide(timings_path=TIMINGS):
    timings = json.loads(Path(timings_path).read_text(encoding="utf-8"))
    for path, update in [(GUIDE, updated_guide), (README, updated_readme)]:
        text = path.read_text(encoding="utf-8")
        new = update(text, timings)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)} from {Path(timings_path).name}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the notebooks and write them as HTML with their outputs.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="the notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, help="folder for the HTML pages")
    parser.add_argument("--timings", type=Path, metavar="FILE", help="also write the timings as JSON to FILE")
    parser.add_argument(
        "--update-guide",
        action="store_true",
        help=f"rewrite docs/instructor.md's timings (and the README's) from --timings FILE, else {TIMINGS.name}",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        if args.update_guide and not args.timings:
            update_guide()
            return 0
        parser.error("--out is required to render")
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
        pages = [{key: value for key, value in timings.items() if key != "html"} for timings in everything]
        measured = {"measured": measuring_machine(), "notebooks": pages}  # (where the pages went is no figure)
        args.timings.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
        if args.update_guide:
            update_guide(args.timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
