"""Fixtures shared by the test suite: real servers, started as processes on port 0."""

import pytest

from harness import start_server


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
