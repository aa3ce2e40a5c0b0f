"""Each lesson file holds its idea and little else: the sizes set for them, checked.

Sizes count code lines: not blank, not comments, not docstrings (``code_lines``). A
diff of two servers is read as a student reads it, docstrings and comments stripped
(``stripped``): what it adds is what the second server does besides the first.
"""

import ast
import difflib
import io
import json
import tokenize
from pathlib import Path

from tests.servers import SERVERS

ROOT = Path(__file__).resolve().parent.parent
PART3 = ROOT / "part3_concurrency"
TEST_MODULES = sorted([*(ROOT / "tests").glob("test_*.py"), *(ROOT / "grader" / "tests").glob("test_*.py")])


def docstring_lines(tree):
    """The line numbers of every module, class and function docstring."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def stripped(source):
    """The code lines of ``source``, in order, each without its comment."""
    docstrings = docstring_lines(ast.parse(source))
    code, comments = set(), {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.start[1]
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    lines = source.splitlines()
    return [lines[n - 1][: comments.get(n)].rstrip() for n in sorted(code)]


def code_lines(path):
    return len(stripped(path.read_text(encoding="utf-8")))


def added_lines(before, after):
    """The lines a unified diff of the two files, stripped, marks with ``+``."""
    diff = difflib.unified_diff(
        stripped(before.read_text(encoding="utf-8")), stripped(after.read_text(encoding="utf-8")), lineterm="", n=0
    )
    return [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]


def test_the_counts_skip_docstrings_comments_and_blank_lines():
    source = (
        '"""Module."""\n\nimport os  # why\n\n\n'
        'def f():\n    """Doc,\n    two lines."""\n    # a comment\n    return (1,\n            2)\n'
    )
    assert stripped(source) == ["import os", "def f():", "    return (1,", "            2)"]


def test_the_prefork_server_shows_its_master_and_workers_in_at_most_150_code_lines():
    assert code_lines(PART3 / "prefork_server.py") <= 150


def test_the_prefork_server_leaves_the_board_and_its_shared_memory_to_least_connections():
    source = (PART3 / "prefork_server.py").read_text(encoding="utf-8")
    assert "mmap" not in source
    assert "import mmap" in (PART3 / "least_connections.py").read_text(encoding="utf-8")


def test_the_threaded_server_adds_at_most_20_lines_to_the_iterative_one():
    added = added_lines(PART3 / "iterative_server.py", PART3 / "threaded_server.py")
    assert len(added) <= 20, "\n".join(added)
    assert any("threading.Thread(" in line and ".start()" in line for line in added)


def imported_modules(path):
    """Every module ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom):  # from . import name
            found |= {alias.name for alias in node.names}
    return found


def test_no_two_modules_of_measure_import_each_other():
    package = "part3_concurrency.measure"
    imports = {f"{package}.{path.stem}": imported_modules(path) for path in (PART3 / "measure").glob("*.py")}
    both_ways = [(a, b) for a in imports for b in imports if a < b and b in imports[a] and a in imports[b]]
    assert not both_ways


def test_the_minimal_asgi_server_shows_the_idea_in_at_most_120_code_lines():
    assert code_lines(ROOT / "part4_asgi" / "minimal_asgi_server.py") <= 120


def test_the_protocol_keeps_message_syntax_in_at_most_400_code_lines():
    assert code_lines(ROOT / "part2_wsgi" / "protocol.py") <= 400


def private_names_of_connection():
    """The ``_`` names the Connection class defines: its methods and its ``self._`` fields."""
    tree = ast.parse((ROOT / "part2_wsgi" / "connection.py").read_text(encoding="utf-8"))
    [connection] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Connection"]
    names = set()
    for node in ast.walk(connection):
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            names.add(node.attr)
    return {name for name in names if name.startswith("_") and not name.endswith("__")}


def python_sources():
    """Every Python file of the repository, and the code of every notebook, but connection.py."""
    for path in sorted(ROOT.rglob("*.py")):
        if path.name != "connection.py" and not path.relative_to(ROOT).parts[0].startswith("."):
            yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for number, cell in enumerate(cells):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and not source.lstrip().startswith(("%", "!")):
                yield f"{path.name}, cell {number}", source


def test_nothing_outside_connection_py_touches_a_private_name_of_a_connection():
    private = private_names_of_connection()
    assert {"_state", "_framed", "_taken", "_acknowledged", "_frame"} <= private
    touched = [
        f"{where}: .{node.attr}"
        for where, source in python_sources()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in private
    ]
    assert not touched


def test_the_select_server_stays_under_300_lines():
    assert len((PART3 / "select_server.py").read_text(encoding="utf-8").splitlines()) < 300


def test_the_asyncio_server_is_shorter_than_the_select_loop_it_writes_for_you():
    assert code_lines(PART3 / "asyncio_server.py") < code_lines(PART3 / "select_server.py")


# --- the tests: one home for each helper, one table of the servers -------------------------


def test_no_test_module_imports_another_test_module_or_a_conftest():
    """Helpers live in modules that are not tests (tests/helpers.py, tests/servers.py,
    grader/tests/helpers.py); conftest.py holds fixtures, which pytest hands out by name."""
    assert len(TEST_MODULES) > 30
    imports = {
        f"{path.parent.name}/{path.name}": sorted(
            name
            for name in imported_modules(path)
            if any(part.startswith("test_") or part == "conftest" for part in name.split("."))
        )
        for path in TEST_MODULES
    }
    offenders = {module: names for module, names in imports.items() if names}
    assert not offenders, f"import helpers from tests/helpers.py or tests/servers.py: {offenders}"


def test_the_tests_conftest_holds_only_fixtures_and_hooks():
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert functions
    others = [
        node.name
        for node in functions
        if not node.name.startswith("pytest_") and not any("fixture" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert not others, f"helpers belong in tests/helpers.py: {others}"
    assigned = [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))]
    assert not assigned, f"constants belong in tests/helpers.py: {assigned}"


def test_no_test_module_writes_its_own_table_of_the_servers():
    """The seven servers are listed once, in tests/servers.py. A test module that spells
    out three or more of their scripts has a table of its own, which the next server
    (or the next rename) would miss."""
    assert len(SERVERS) == 7
    scripts = set(SERVERS.values())
    tables = {}
    for path in TEST_MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        named = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in scripts}
        if len(named) >= 3:
            tables[path.name] = sorted(named)
    assert not tables, f"take the servers from tests/servers.py: {tables}"
