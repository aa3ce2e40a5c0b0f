"""The demo app's /cpu route: pure-Python work for N milliseconds of CPU time, bounded.

Called directly as a WSGI app through ``wsgiref.validate``; part 3's GIL experiment
(tests/test_gil.py) runs it on the real servers.
"""

import io
import time
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from part2_wsgi.apps import demo_app
from tests.helpers import TIMING

pytestmark = pytest.mark.timeout(30)


def get(query):
    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/cpu", "QUERY_STRING": query}
    environ["wsgi.input"] = io.BytesIO()
    setup_testing_defaults(environ)
    started = []
    result = validator(demo_app.app)(environ, lambda status, headers, exc_info=None: started.append(status))
    try:
        body = b"".join(result)
    finally:
        result.close()
    return int(started[0][:3]), body.decode()


@TIMING
def test_cpu_computes_for_the_cpu_time_asked():
    began_cpu, began = time.thread_time(), time.monotonic()
    status, body = get("ms=200")
    assert status == 200 and body.startswith("computed 200 ms (")
    assert time.thread_time() - began_cpu >= 0.2  # CPU time of this thread, not a sleep
    assert time.monotonic() - began < 5


def test_cpu_without_ms_computes_for_100_ms():
    assert get("")[1].startswith("computed 100 ms")


@pytest.mark.parametrize(("ms", "clamped"), [("-5", 0.0), ("99999999", 10_000.0)])
def test_cpu_is_bounded_like_sleep(monkeypatch, ms, clamped):
    clock = iter(range(0, 1_000_000, 5_000))  # each reading of the clock jumps 5 s: no real work needed
    monkeypatch.setattr(demo_app.time, "thread_time", lambda: next(clock))
    status, body = get(f"ms={ms}")
    assert status == 200 and body.startswith(f"computed {clamped:g} ms")


@pytest.mark.parametrize("ms", ["soon", "nan", "inf"])
def test_cpu_rejects_ms_that_is_not_a_finite_number(ms):
    assert get(f"ms={ms}")[0] == 400
