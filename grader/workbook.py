"""Which code the graded tests call: the student's workbook, or the reference.

The graded tests never import ``exercises`` or ``part1_sockets`` themselves. They ask

    part1 = Workbook("part1")
    ...
    part1.receive_exactly(connection, 5)

and ``Workbook`` hands them the function under test, chosen by two environment
variables that ``python -m grader`` sets for each run:

* ``GRADER_TARGET``: ``exercises`` (the default) or ``solutions`` (the reference code,
  found through the registry in ``grader/core.py``);
* ``GRADER_WORKBOOK``: the folder that holds ``part1.py`` ... ``part4.py``
  (default: this repository's ``exercises/``), so that an instructor can grade a copy.

The workbook file is loaded when a test first asks for a function, not when the tests
are collected: a workbook with a syntax error, or one that calls ``sys.exit()`` at the
top, then fails each test with a clear message instead of stopping the whole run.
"""

import importlib
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The workbook as handed out, untouched: what the grader's own tests grade as "the
# stubs", whatever the student has written in exercises/ since.
STUBS = ROOT / "grader" / "stubs"
TARGET_VARIABLE = "GRADER_TARGET"
WORKBOOK_VARIABLE = "GRADER_WORKBOOK"

_loaded = {}


class WorkbookError(Exception):
    """The workbook file cannot be loaded, or lacks the function a test asks for."""


def target():
    """ "exercises" or "solutions"."""
    return os.environ.get(TARGET_VARIABLE, "exercises")


def workbook_dir():
    return Path(os.environ.get(WORKBOOK_VARIABLE) or ROOT / "exercises")


def load_exercise(part, name):
    """The function (or class) ``name`` of ``part``, from the workbook or the reference."""
    if target() == "solutions":
        return load_reference(part, name)
    module = load_workbook_module(part)
    try:
        return getattr(module, name)
    except AttributeError:
        raise WorkbookError(f"{display(module.__file__)} has no {name}(): did you rename or delete it?") from None


def load_reference(part, name):
    """The reference function of exercise ``name``, as grader/core.py's registry names it."""
    from grader.core import find_exercise  # here, so that core never imports test code

    module_name, _, attribute = find_exercise(part, name).reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_workbook_module(part):
    """Import ``part1.py`` (say) from the workbook folder, once per process."""
    if part in _loaded:
        return _loaded[part]
    path = workbook_dir() / f"{part}.py"
    if not path.is_file():
        raise WorkbookError(f"there is no {display(path)}")
    spec = importlib.util.spec_from_file_location(f"workbook_{part}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as error:
        del sys.modules[spec.name]
        raise WorkbookError(f"{display(path)} called sys.exit({error.code!r}) while loading") from None
    except Exception as error:
        del sys.modules[spec.name]
        raise WorkbookError(f"{display(path)} does not load: {type(error).__name__}: {error}") from error
    _loaded[part] = module
    return module


def display(path):
    """A path relative to the repository when it is inside it: shorter to read."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class Workbook:
    """``Workbook("part1").echo`` is the ``echo`` under test; see the module docstring."""

    def __init__(self, part):
        self._part = part

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return load_exercise(self._part, name)
