"""Flask and Django, unmodified, on the workshop's servers, over real sockets.

Each app is wrapped in ``wsgiref.validate.validator`` (tests/validated_apps.py): a
broken PEP 3333 promise on either side would turn a 200 into a 500 and a traceback in
the server's log, so every test also checks the log is clean (but for /error, whose
traceback is the point). Each test starts a server of its own, and each server
imports its framework: a second a test, so the module is ``slow``, out of the quick loop.
"""

import pytest
import requests

from tests.servers import SERVERS

pytestmark = pytest.mark.slow

ON = [SERVERS[name] for name in ("part2", "threaded", "select")]
FRAMEWORKS = {"flask": "Hello from Flask", "django": "Hello from Django"}


@pytest.fixture(params=[(s, f) for s in ON for f in FRAMEWORKS], ids=lambda p: f"{p[1]}-on-{p[0].split('/')[-1][:-3]}")
def site(request, serve):
    script, framework = request.param
    server = serve(script, f"tests.validated_apps:{framework}")
    return server, framework


def assert_clean_log(server):
    assert "Traceback" not in server.log, server.log[-3000:]


def test_get_with_a_path_and_a_query(site):
    server, framework = site
    response = requests.get(server.url + "/", params={"name": "Ada Lovelace"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert FRAMEWORKS[framework] in response.text
    assert "Ada Lovelace" in response.text
    assert '<form method="post" action="/">' in response.text
    assert_clean_log(server)


def test_a_form_post(site):
    server, _ = site
    response = requests.post(server.url + "/", data={"name": "Grace", "message": "<hello>"}, timeout=10)
    assert response.status_code == 200
    assert "Grace" in response.text and "&lt;hello&gt;" in response.text
    assert_clean_log(server)


def test_a_json_post_and_a_bad_one(site):
    server, framework = site
    response = requests.post(server.url + "/json", json={"answer": 42, "list": [1, "two"]}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"received": {"answer": 42, "list": [1, "two"]}, "framework": framework}
    bad = requests.post(
        server.url + "/json", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert bad.status_code == 400 and "error" in bad.json()
    assert_clean_log(server)


def test_the_frameworks_own_error_page_and_404(site):
    server, _ = site
    error = requests.get(server.url + "/error", timeout=10)
    assert error.status_code == 500
    assert requests.get(server.url + "/no/such/page", timeout=10).status_code == 404
    # The server still serves after the framework's 500.
    assert requests.get(server.url + "/", timeout=10).status_code == 200


def test_several_requests_on_one_session_each_framed_as_its_app_asks(site):
    server, framework = site
    with requests.Session() as session:
        responses = [session.get(server.url + "/", params={"n": n}, timeout=10) for n in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    if framework == "django":
        # Django gives no Content-Length: the server must frame the body itself.
        assert all(r.headers.get("Transfer-Encoding") == "chunked" for r in responses)
    else:
        assert all(int(r.headers["Content-Length"]) == len(r.content) for r in responses)
    assert_clean_log(server)


UNWRAPPED = {"flask": "part2_wsgi.apps.flask_app:app", "django": "part2_wsgi.apps.django_app:application"}
EVERY_SERVER = [(script, "--workers", "2") if name == "prefork" else (script,) for name, script in SERVERS.items()]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("command", EVERY_SERVER, ids=lambda command: command[0].split("/")[-1][:-3])
def test_a_chunked_json_upload_reaches_the_framework_on_every_server(serve, command, framework):
    """An upload without a Content-Length (Transfer-Encoding: chunked): the server
    de-chunks it and says the body ends there (wsgi.input_terminated, CONTENT_LENGTH),
    so Werkzeug and Django read all of it.

    The apps are not wrapped in wsgiref.validate here: told that the input ends, Werkzeug
    calls ``wsgi.input.read()`` without a size, which PEP 3333 allows and the validator,
    older than that rule, refuses."""
    script, *options = command
    server = serve(script, UNWRAPPED[framework], *options)
    pieces = (piece for piece in [b'{"answer": ', b"42, ", b'"list": [1, "two"]}'])  # requests sends these as chunks
    response = requests.post(
        server.url + "/json", data=pieces, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert response.json() == {"received": {"answer": 42, "list": [1, "two"]}, "framework": framework}
    assert_clean_log(server)
