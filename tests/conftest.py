"""Fixtures shared by the test suite: real servers, started as processes on port 0."""

import os
import shutil

import pytest

from harness import start_server

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture
def serve():
    """``serve(script, *args)`` starts a server and stops it (by PID) after the test."""
    started = []

    def start(script, *args, **kwargs):
        server = start_server(script, *args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def require_program(name):
    """Skip when a program is missing, except in CI, where every test must run."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed, and CI must run this test (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path
