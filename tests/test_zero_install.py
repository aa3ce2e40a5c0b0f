"""The zero-install paths (Codespaces, Binder) set up what the README's set-up does.

We cannot build a codespace or a Binder image here; we check that their configuration
says what the README promises: the same install command, the programs pip cannot
install, the port, the files it opens. And the README's set-up stays two commands, and
its test counts are what pytest collects.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from harness import ROOT

INSTALL = "python -m pip install -r requirements.txt"
TEST = 'python -m pytest -n 4 --dist loadgroup -m "not alone" && python -m pytest -m alone'


def devcontainer():
    text = (ROOT / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8")
    # JSON with comments (VS Code's flavour): this file has whole-line comments only.
    return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))


def test_the_devcontainer_installs_what_the_readme_does_and_more():
    config = devcontainer()
    assert config["image"].startswith("mcr.microsoft.com/devcontainers/python:3.")
    command = config["postCreateCommand"]
    assert INSTALL in command
    assert re.search(r"apt-get install .*\bwrk\b", command)
    assert all(program in command for program in ("curl", "chromium"))


def test_the_devcontainer_forwards_the_servers_port_and_opens_the_notebooks():
    config = devcontainer()
    assert 8888 in config["forwardPorts"] and config["portsAttributes"]["8888"]["label"]
    opened = config["customizations"]["codespaces"]["openFiles"]
    assert "notebooks/01_sockets.ipynb" in opened and all((ROOT / path).is_file() for path in opened)
    assert {"ms-python.python", "ms-toolsai.jupyter"} <= set(config["customizations"]["vscode"]["extensions"])


def test_binder_installs_the_repositorys_requirements_and_wrk():
    apt = (ROOT / "binder" / "apt.txt").read_text().split()
    assert {"wrk", "curl"} <= set(apt)
    lines = [
        line for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    assert lines == ["-r ../requirements.txt"]
    assert "-e ." in (ROOT / "binder" / "../requirements.txt").read_text().splitlines()


def test_the_readme_set_up_is_two_commands_and_ci_runs_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    set_up = readme.split("## Set up", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    commands = re.findall(r"```\n(.*?)\n```", set_up, re.DOTALL)
    assert commands == [INSTALL, TEST]
    ci = (ROOT / ".ci" / "run").read_text()
    assert all(command in ci for command in commands)


def collected_counts():
    """(every test, the quick loop's), as pytest counts them: one collection with ``-m "not
    slow"`` says both ("KEPT/ALL tests collected"), and on a busy machine a collection is
    slow. A subprocess, without PYTEST_ADDOPTS: this run's own command line may narrow
    its collection."""
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not slow"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    counts = re.search(r"(\d+)/(\d+) tests collected", run.stdout)
    assert counts, run.stdout[-2000:] + run.stderr[-2000:]
    return int(counts[2]), int(counts[1])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_counts_the_tests_as_pytest_does():
    # The counts drift as tests come and go: within 2%, the README still tells a student
    # what the command runs; past it, the README's figures want measuring again.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    said_all = int(re.search(r"\(([\d,]+) tests\)", readme)[1].replace(",", ""))
    said_quick = int(re.search(r"about\s+two thirds of them \(([\d,]+)\)", readme)[1].replace(",", ""))
    everything, quick = collected_counts()
    assert abs(everything - said_all) <= everything * 0.02, (said_all, everything)
    assert abs(quick - said_quick) <= quick * 0.02, (said_quick, quick)
    assert 0.6 < quick / everything < 0.7  # "about two thirds"
