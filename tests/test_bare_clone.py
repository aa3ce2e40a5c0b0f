"""A bare clone, and a Python with nothing installed: every server still starts and serves.

A newcomer may run ``python part2_wsgi/server.py`` before the set-up command, or with
another Python than the one they installed into. The servers use the standard library
only, so that must work; what does need the install (Flask, waitress, the grader's
pytest) must say so in one line that names the set-up command, never in a traceback.

The copy holds the working tree's files as git knows them (tracked, or new and not
ignored), so that uncommitted changes are tested too, and no .venv, caches or .git. The
interpreter runs with ``-S`` (no site-packages: neither this repository's editable
install nor Flask), ``-s`` (no user site) and ``-E`` (no PYTHONPATH): nothing installed.
It still puts the script's folder on sys.path, as a plain ``python SCRIPT`` does.
"""

import shutil
import subprocess
import sys
import urllib.request

import pytest

from harness import ROOT, start_server
from tests.servers import SERVERS

# Slow as a whole, out of the quick loop (pytest -m "not slow"): a repository copy and a server per test.
pytestmark = pytest.mark.slow

BARE_PYTHON = [sys.executable, "-E", "-s", "-S"]
INSTALL_COMMAND = "python -m pip install -r requirements.txt"

EVERY_SERVER = [
    ["part1_sockets/http_server.py"],
    ["part2_wsgi/minimal_server.py"],
    ["part3_concurrency/minimal_servers.py"],
    ["part2_wsgi/mixmatch.py", "wsgiref"],
    *([script] for script in SERVERS.values()),
    ["part3_concurrency/measure/bare_loop.py"],
]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The working tree's files, copied as a fresh clone would hold them."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout, or no git: {error}")
    copy = tmp_path_factory.mktemp("bare-clone")
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def run_bare(clone, *args, timeout=30):
    return subprocess.run(
        [*BARE_PYTHON, *args], cwd=clone, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )


def test_the_bare_python_has_nothing_installed(clone):
    for module in ("flask", "pytest", "part2_wsgi"):
        result = run_bare(clone, "-c", f"import sys; sys.path.remove(''); import {module}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, module


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", EVERY_SERVER, ids=lambda command: " ".join(command))
def test_each_server_runs_from_a_bare_clone(clone, command):
    script, *args = command
    server = start_server(clone / script, *args, python=BARE_PYTHON, cwd=clone)
    try:
        with urllib.request.urlopen(server.url + "/", timeout=10) as response:
            assert response.status == 200
            assert response.read()
    finally:
        assert server.stop() == 0, server.log


@pytest.mark.timeout(60)
def test_the_load_client_and_the_benchmark_run_from_a_bare_clone(clone):
    server = start_server(clone / SERVERS["part2"], "--quiet", python=BARE_PYTHON, cwd=clone)
    try:
        result = run_bare(clone, "part3_concurrency/measure/client.py", server.url + "/", "-n", "3", "-c", "1")
        assert result.returncode == 0, result.stderr
        assert "requests" in result.stdout
    finally:
        server.stop()
    result = run_bare(clone, "part3_concurrency/measure/bench.py", "--help")
    assert result.returncode == 0 and "usage" in result.stdout, result.stderr


ONE_LINE_ERRORS = {
    "flask app": ([SERVERS["part2"], "part2_wsgi.apps.flask_app:app", "--port", "0"], "No module named 'flask'"),
    "django app": (
        [SERVERS["threaded"], "part2_wsgi.apps.django_app:application", "--port", "0"],
        "No module named 'django'",
    ),
    "waitress": (["part2_wsgi/mixmatch.py", "waitress", "--port", "0"], "needs 'waitress'"),
    "gunicorn": (["part2_wsgi/mixmatch.py", "gunicorn-sync", "--port", "0"], "needs 'gunicorn'"),
    "grader": (["-m", "grader"], "pytest"),
    "render": (["notebooks/render.py", "--out", "rendered"], "nbclient"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command, says", ONE_LINE_ERRORS.values(), ids=ONE_LINE_ERRORS.keys())
def test_what_needs_the_install_says_so_in_one_line(clone, command, says):
    result = run_bare(clone, *command)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1, result.stderr
    assert says in lines[0] and INSTALL_COMMAND in lines[0], lines[0]


def test_a_missing_app_module_gets_no_install_advice(clone):
    result = run_bare(clone, SERVERS["part2"], "no_such_module:app", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "server.py: error: cannot import 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'"
    )
