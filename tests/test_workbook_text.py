"""The workbook's text: every pointer lands, and no notebook gives an answer away.

A stub's docstring says where the notebook prepares it ("Prepared by:
notebooks/02_wsgi.ipynb, section 3.4 (The loop, with Flask and Django); graded at its
end"), and its hints say where to read ("Notebook 02, section 3.4 runs ..."). A student who
follows a pointer to a section that was renamed, moved or never existed is lost at the
moment they needed help. So each pointer is checked against the notebooks themselves:

* the section exists, and the title in parentheses is its heading, word for word;
* the section the docstring says grades the exercise holds the cell that grades it.

And a notebook shows a reference solution only once the student's own exercise passes
(``compare_with_reference``): no cell prints, with ``inspect.getsource`` or by reading its
file, a reference function that a stub asks the student to write, or a function of the
reference that such a function calls (the reaper that ``serve_forking`` installs, say),
or a full server of part 3 that schedules connections as an exercise asks; nor any
function or class, wherever it lives, shaped like a part 3 answer (a correct forking loop
in any file is ``serve_forking``'s answer as surely as the reference is). And a cell
that gates on a grade grades in that same cell: a report read from an earlier cell is a
NameError for whoever skipped it.

The docstrings are read from the untouched copy of the workbook (``grader/stubs/``) with
``ast``: nothing of the student's runs here, and their edits cannot break these tests.
"""

import ast
import json
import re

import pytest

from grader.core import EXERCISES
from grader.workbook import ROOT, STUBS

NOTEBOOKS = ROOT / "notebooks"
PLANNED = {"04_asgi.ipynb"}
HEADING = re.compile(r"^#{1,3} (\d+(?:\.\d+)?)\.? (.+)$")
SECTION_NUMBER = re.compile(r"(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?")


def written_yet(notebook):
    """Skip a check of a notebook that DESIGN.md plans and nobody has written yet (04_asgi,
    while part 4's workbook comes first): its pointers are checked once it exists."""
    if not (NOTEBOOKS / notebook).is_file() and notebook in PLANNED:
        pytest.skip(f"notebooks/{notebook} is planned, not written yet")


def sections_of(notebook):
    """{"3.4": {"title": ..., "code": [source of each code cell in it]}}; a section holds
    its subsections' cells too ("3" holds those of 3.1, 3.2 ...)."""
    written_yet(notebook)
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    sections, current = {}, []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for line in source.splitlines():
                match = HEADING.match(line)
                if match:
                    number = match[1]
                    sections[number] = {"title": match[2].replace("`", "").strip(), "code": []}
                    parent = number.split(".")[0]
                    current = [sections[number]] + ([sections[parent]] if parent != number else [])
        elif cell["cell_type"] == "code":
            for section in current:
                section["code"].append(source)
    return sections


def titled_sections(text):
    """[(number, title)] of every "3.4 (Title)" in ``text``; titles may hold "()" pairs."""
    found = []
    for match in re.finditer(r"(\d+(?:\.\d+)?)(?:-\d+(?:\.\d+)?)? \(", text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        found.append((match[1], text[match.end() : end - 1]))
    return found


def stub_docstrings(part):
    """{function name: docstring} of the untouched workbook's part, read without running it."""
    tree = ast.parse((STUBS / f"{part}.py").read_text(encoding="utf-8"))
    return {node.name: ast.get_docstring(node) for node in tree.body if isinstance(node, ast.FunctionDef)}


def prepared_by(exercise):
    """(notebook file, the "Prepared by" paragraph, folded onto one line) of an exercise."""
    doc = stub_docstrings(exercise.part)[exercise.name]
    paragraph = " ".join(doc.split("Prepared by:", 1)[1].split("\n\n", 1)[0].split())
    notebook = re.search(r"notebooks/(\w+\.ipynb)", paragraph)
    assert notebook, f"{exercise.id}: the 'Prepared by' paragraph names no notebook: {paragraph}"
    return notebook[1], paragraph


def numbers_in(text):
    """Every section number in a "sections 3.1-3.5 and 4" phrase, ranges unfolded to their ends."""
    numbers = []
    for match in SECTION_NUMBER.finditer(text):
        numbers += [number for number in match.groups() if number]
    return numbers


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda exercise: exercise.id)
def test_the_docstring_names_sections_by_their_titles(exercise):
    notebook, paragraph = prepared_by(exercise)
    sections = sections_of(notebook)
    named = titled_sections(paragraph.split("graded", 1)[0])
    assert named, f"{exercise.id}: 'Prepared by' names no section with its title: {paragraph}"
    for number, title in named:
        assert number in sections, f"{exercise.id}: {notebook} has no section {number}"
        assert sections[number]["title"] == title.replace("`", ""), (
            f"{exercise.id}: section {number} of {notebook} is titled {sections[number]['title']!r}, "
            f"the docstring says {title!r}"
        )


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda exercise: exercise.id)
def test_the_section_that_grades_it_holds_its_grading_cell(exercise):
    notebook, paragraph = prepared_by(exercise)
    sections = sections_of(notebook)
    graded = paragraph.split("graded", 1)[1] if "graded" in paragraph else ""
    assert graded, f"{exercise.id}: the docstring does not say where the notebook grades it: {paragraph}"
    phrase = graded.split(". ", 1)[0]  # "in 3.8", "at its end", "at the end of section 3"
    where = [titled_sections(paragraph)[-1][0]] if "its end" in phrase else numbers_in(phrase)
    cell = re.compile(rf"""(grade|compare_with_reference)\(\s*["']{exercise.part}["'],\s*["']{exercise.name}["']""")
    assert where, f"{exercise.id}: cannot tell which section grades it: {paragraph}"
    holding = [number for number in where if any(cell.search(code) for code in sections[number]["code"])]
    assert holding, f"{exercise.id}: {notebook} section {' or '.join(where)} holds no cell that grades it"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda exercise: exercise.id)
def test_the_hints_and_the_registry_name_sections_that_exist(exercise):
    pointers = [(exercise.notebook.split(",")[0], exercise.notebook.split(",", 1)[1])]
    for hint in exercise.hints:
        for match in re.finditer(r"[Nn]otebook (\d\d), (sections? [\d.\-, and]+)", hint):
            found = [path.name for path in NOTEBOOKS.glob(f"{match[1]}_*.ipynb")]
            found += [name for name in sorted(PLANNED) if name.startswith(f"{match[1]}_")]
            assert found, f"{exercise.id}: a hint names notebook {match[1]}, and there is none: {hint}"
            notebook = found[0]
            pointers.append((notebook, match[2]))
    for notebook, text in pointers:
        sections = sections_of(notebook)
        numbers = numbers_in(text)
        assert numbers, f"{exercise.id}: no section number in {text!r}"
        missing = [number for number in numbers if number not in sections]
        assert not missing, f"{exercise.id}: {notebook} has no section {', '.join(missing)} ({text!r})"


# --- no notebook prints an answer before it is earned ---------------------------------------------


# Part 3's full servers schedule connections as serve_forking, serve_threaded and
# serve_select do: printing one shows that exercise's answer too (the threaded server's
# cap is serve_threaded's).
FULL_SERVERS = ("forking_server", "threaded_server", "select_server")


def answers():
    """{(module, name)} of each function a student is asked to write, and of each function
    of its reference module that it uses: printing any of them gives the answer away. Also
    each full server of part 3 that does what an exercise asks."""
    found = {(module, "serve_forever") for module in FULL_SERVERS}
    for exercise in EXERCISES:
        module_name, _, name = exercise.reference.partition(":")
        module = module_name.rpartition(".")[2]
        tree = ast.parse((ROOT / (module_name.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        found.add((module, name))
        if name in functions:
            used = {node.id for node in ast.walk(functions[name]) if isinstance(node, ast.Name)}
            found |= {(module, helper) for helper in used if helper in functions}
    return found


def code_cells(notebook):
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def unearned_lines(source):
    """The cell's lines, less those that run only once an exercise has passed: the body
    of ``if report.passed:`` after ``report = compare_with_reference(...)``."""
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (!ls, %time): every line counts
        return lines
    earned = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Attribute) and node.test.attr == "passed":
            earned |= {line for child in node.body for line in range(child.lineno, child.end_lineno + 1)}
    return [line for number, line in enumerate(lines, 1) if number not in earned]


@pytest.mark.parametrize("notebook", sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")))
def test_no_cell_prints_a_reference_solution_before_it_is_earned(notebook):
    shown = []
    answered = answers()
    for source in code_cells(notebook):
        text = "\n".join(unearned_lines(source))
        for module, name in re.findall(r"getsource\(\s*(?:(\w+)\.)?(\w+)\s*\)", text):
            if (module, name) in answered or (not module and name in {name for _, name in answered}):
                shown.append(f"inspect.getsource of {module or '?'}.{name}")
        if "read_text" in text:
            shown += [f"the whole of {module}.py" for module in {m for m, _ in answered} if f'"{module}.py"' in text]
    assert not shown, (
        f"{notebook} prints reference solutions without waiting for the student's own to pass: {shown}; "
        "use compare_with_reference(part, exercise)"
    )


# --- answer-shaped code, wherever it lives ------------------------------------------------------

# What a part 3 answer does, as names its code must use: each entry is a list of
# alternatives, and a function or class that uses one of each, printed, gives the
# answer away. A fork per accepted client whose parent closes its copy and reaps on
# SIGCHLD is serve_forking's answer; a thread per client under a semaphore is
# serve_threaded's; accept, register and select in one loop is serve_select's. (The
# notebooks may show the forking loop with its two mistakes, and three unbounded
# lines of threads: neither is an answer.)
ANSWER_SHAPES = {
    "serve_forking": [{"accept"}, {"fork"}, {"close"}, {"SIGCHLD", "waitpid"}],
    "serve_threaded": [{"accept"}, {"Thread"}, {"Semaphore", "BoundedSemaphore"}],
    "serve_select": [{"accept"}, {"register"}, {"select"}],
}


def imported_modules(notebook):
    """{name in the notebook: dotted module} for every module its code cells import."""
    modules = {}
    for source in code_cells(notebook):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {(alias.asname or alias.name): alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules |= {(alias.asname or alias.name): f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def definition(dotted_module, name):
    """The AST of a top-level function or class of one of this repository's modules, or None."""
    path = ROOT / (dotted_module.replace(".", "/") + ".py")
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name), None
    )


def answer_shaped(node):
    """The exercises whose answer ``node`` has the shape of (see ANSWER_SHAPES)."""
    used = {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}
    used |= {child.attr for child in ast.walk(node) if isinstance(child, ast.Attribute)}
    return [exercise for exercise, shape in ANSWER_SHAPES.items() if all(used & names for names in shape)]


def shown_answers(notebook):
    """["module.name (shaped like EXERCISE)"] for each ungated getsource of answer-shaped code."""
    modules = imported_modules(notebook)
    shown = []
    for source in code_cells(notebook):
        text = "\n".join(unearned_lines(source))
        for module, name in re.findall(r"getsource\(\s*(\w+)\.(\w+)\s*\)", text):
            node = definition(modules.get(module, module), name)
            if node is not None and answer_shaped(node):
                shown.append(f"{module}.{name} (shaped like {', '.join(answer_shaped(node))})")
    return shown


@pytest.mark.parametrize("notebook", sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")))
def test_no_cell_prints_code_shaped_like_an_answer_before_it_is_earned(notebook):
    shown = shown_answers(notebook)
    assert not shown, (
        f"{notebook} prints code that answers an exercise without waiting for the student's own to pass: "
        f"{shown}; print it under `if report.passed:`, after grading in that cell"
    )


def test_the_shapes_know_an_answer_from_what_the_notebooks_may_show():
    """The reference answers have their shapes; the forking loop with its mistakes and the
    three unbounded lines, which notebook 03 shows at once, do not."""
    for exercise in ("serve_forking", "serve_threaded", "serve_select"):
        assert answer_shaped(definition("part3_concurrency.minimal_servers", exercise)) == [exercise]
    for shown in ("serve_forking_with_mistakes", "serve_threads_unbounded"):
        assert answer_shaped(definition("part3_concurrency.minimal_servers", shown)) == []


GRADED = re.compile(r"^(\w+)\s*=\s*(?:grade|compare_with_reference)\(", re.MULTILINE)


@pytest.mark.parametrize("notebook", sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")))
def test_a_cell_that_gates_on_a_grade_grades_in_that_cell(notebook):
    """``if report.passed:`` reads the report of the same cell: a student who skipped the
    cell that graded it (or solved the exercise since) must not get a NameError, or an
    old answer."""
    stray = []
    for source in code_cells(notebook):
        graded_here = set(GRADED.findall(source))
        for name in re.findall(r"\b(\w+)\.passed\b", source):
            if name not in graded_here:
                stray.append(f"{name}.passed in a cell that does not grade it: {source.splitlines()[0]!r} ...")
    assert not stray, f"{notebook}: {stray}"
