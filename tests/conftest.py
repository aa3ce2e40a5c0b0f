"""Fixtures shared by the test suite: real servers, started as processes on port 0."""

import pytest
from _pytest.nodeid import NodeId

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


def pytest_collection_modifyitems(config, items):
    """``--dist loadgroup`` (the README's command): give each test of an ``xdist_group`` its
    group as a suffix of its id (``...::test_x@timing``), which is how pytest-xdist's
    scheduler finds the group. pytest-xdist 3.8 writes that suffix to ``item._nodeid``,
    which pytest 9 no longer reads: without this hook every group would be scattered."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        if names and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(names))}")
