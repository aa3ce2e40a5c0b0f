"""The Flask and Django demo apps keep the route contract, called directly as WSGI apps.

Each request goes through ``wsgiref.validate.validator``, which checks both sides of
PEP 3333, so an app that breaks the spec fails here before any server is involved.
These are unit tests: the integration tests run the same apps on the real servers.
"""

import importlib
import io
import json
import time
import types
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

APPS = {
    "flask": ("part2_wsgi.apps.flask_app", "app", "Flask"),
    "django": ("part2_wsgi.apps.django_app", "application", "Django"),
}


@pytest.fixture(params=list(APPS))
def framework(request):
    """(module, app, name) for each framework app."""
    module_name, attribute, name = APPS[request.param]
    module = importlib.import_module(module_name)
    return types.SimpleNamespace(module=module, app=getattr(module, attribute), name=name, key=request.param)


def call(app, method="GET", path="/", query="", body=b"", content_type=None):
    """Run one request through ``app``; return its status (int), headers (dict) and body."""
    environ = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query}
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    if content_type:
        environ["CONTENT_TYPE"] = content_type
    setup_testing_defaults(environ)
    started, written = [], []

    def start_response(status, headers, exc_info=None):
        started.append((status, headers))
        return written.append

    result = validator(app)(environ, start_response)
    try:
        chunks = list(result)
    finally:
        result.close()
    status, headers = started[-1]
    body = b"".join(written + chunks)
    return types.SimpleNamespace(status=int(status.split()[0]), headers=dict(headers), body=body, text=body.decode())


def test_get_index_says_hello_and_shows_the_form(framework):
    response = call(framework.app)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f"Hello from {framework.name}" in response.text
    assert '<form method="post" action="/">' in response.text
    assert 'name="name"' in response.text and 'name="message"' in response.text
    assert "Query string parameters" not in response.text


def test_get_index_shows_the_query_string_parameters(framework):
    response = call(framework.app, query="name=Ada&lang=%3Cpy%3E")
    assert response.status == 200
    assert "Query string parameters: name=Ada, lang=&lt;py&gt;" in response.text


def test_post_form_shows_the_submitted_fields_html_escaped(framework):
    form = b"name=Ada&message=%3Cscript%3Ehi%3C%2Fscript%3E"
    response = call(framework.app, "POST", body=form, content_type="application/x-www-form-urlencoded")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<dt>name</dt><dd>Ada</dd>" in response.text
    assert "<dt>message</dt><dd>&lt;script&gt;hi&lt;/script&gt;</dd>" in response.text
    assert "<script>" not in response.text


def test_post_json_echoes_the_parsed_json_and_names_the_framework(framework):
    sent = {"name": "Ada", "numbers": [1, 2.5, None], "nested": {"ok": True}}
    response = call(framework.app, "POST", "/json", body=json.dumps(sent).encode(), content_type="application/json")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {"received": sent, "framework": framework.key}


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe\xfa"])
def test_post_invalid_json_is_a_400_with_a_json_error(framework, body):
    response = call(framework.app, "POST", "/json", body=body, content_type="application/json")
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["error"].startswith("invalid JSON")


def test_error_route_gives_the_frameworks_own_500_page_and_logs_the_traceback(framework, caplog):
    response = call(framework.app, path="/error")  # the exception must not escape to us
    assert response.status == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Server Error" in response.text
    assert "boom" not in response.text  # no traceback for the client
    assert "RuntimeError: boom" in caplog.text  # but one in the log


@pytest.mark.parametrize(("seconds", "slept", "expected"), [("0.05", 0.05, "slept 0.05"), ("", 1.0, "slept 1")])
def test_sleep_sleeps_for_the_seconds_asked(framework, monkeypatch, seconds, slept, expected):
    naps = []
    monkeypatch.setattr(framework.module.time, "sleep", naps.append)
    response = call(framework.app, path="/sleep", query=f"seconds={seconds}" if seconds else "")
    assert (response.status, response.headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    assert response.text == expected
    assert naps == [slept]


def test_sleep_really_sleeps(framework):
    start = time.monotonic()
    response = call(framework.app, path="/sleep", query="seconds=0.2")
    assert response.text == "slept 0.2"
    assert time.monotonic() - start >= 0.2


@pytest.mark.parametrize(("seconds", "slept"), [("-5", 0.0), ("99", 10.0)])
def test_sleep_clamps_seconds_to_0_through_10(framework, monkeypatch, seconds, slept):
    naps = []
    monkeypatch.setattr(framework.module.time, "sleep", naps.append)
    response = call(framework.app, path="/sleep", query=f"seconds={seconds}")
    assert response.status == 200
    assert response.text == f"slept {slept:g}"
    assert naps == [slept]


@pytest.mark.parametrize("seconds", ["soon", "nan", "inf"])
def test_sleep_rejects_seconds_that_are_not_a_finite_number(framework, seconds):
    response = call(framework.app, path="/sleep", query=f"seconds={seconds}")
    assert response.status == 400


@pytest.mark.parametrize("path", ["/nowhere", "/json/extra", "/index.html"])
def test_unknown_path_is_the_frameworks_own_404(framework, path):
    response = call(framework.app, path=path)
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Not Found" in response.text
