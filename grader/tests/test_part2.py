"""Graded checks for part 2 (exercises/part2.py): HTTP/1.1 as bytes, and the WSGI glue.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. ``part2.chunk`` is the function under test: yours,
or with ``--solutions`` the reference in part2_wsgi/. Run them with

    python -m grader part2              (or: python -m pytest grader/tests/test_part2.py)
"""

import http.client
import io
import os
import re
import socket
import sys
import time
import warnings
import wsgiref.simple_server
from pathlib import Path
from wsgiref.validate import validator

import pytest
import requests

from grader.tests.helpers import WAIT, Background, call, outcome, short, split_response
from grader.workbook import Workbook, load_workbook_module, target
from part2_wsgi.command_line import AppLoadError
from part2_wsgi.minimal_server import Request as MinimalRequest
from part2_wsgi.minimal_server import build_environ as reference_build_environ
from part2_wsgi.minimal_server import read_request as reference_read_request
from part2_wsgi.minimal_server import run_app as reference_run_app
from part2_wsgi.protocol import LAST_CHUNK, Limits, Request, RequestParser

part2 = Workbook("part2")
exercise = pytest.mark.exercise


def raises_http(status, function, *args, shown):
    """Check that ``function(*args)`` raises HTTPError with this status code."""
    try:
        result = function(*args)
    except NotImplementedError:
        raise
    except Exception as error:
        got = getattr(error, "status", None)
        if type(error).__name__ == "HTTPError" and got == status:
            return
        detail = f"HTTPError({int(got)})" if type(error).__name__ == "HTTPError" else f"{type(error).__name__}({error})"
        raise AssertionError(f"{shown} raised {detail}, expected HTTPError({status})") from None
    raise AssertionError(f"{shown} returned {short(result)}, expected it to raise HTTPError({status})")


def request(method="GET", version="HTTP/1.1", headers=(("Host", "example.com"),), body=b""):
    return Request(method, "/", version, list(headers), body)


def headers_text(headers):
    return ", ".join(f"{name}: {value}" for name, value in headers) or "no headers"


# ===== the required track: load_app, build_environ, run_app, serve_wsgi ========================


def load_error(spec):
    """Call load_app(spec), expecting an AppLoadError; return its message."""
    try:
        result = part2.load_app(spec)
    except NotImplementedError:
        raise
    except AppLoadError as error:
        return str(error)
    except Exception as error:
        raise AssertionError(
            f"load_app({spec!r}) raised {type(error).__name__}: {error}; expected AppLoadError, with a clear message"
        ) from None
    raise AssertionError(f"load_app({spec!r}) returned {short(result)}; expected it to raise AppLoadError")


@exercise("load_app")
def test_load_app_imports_module_and_callable():
    """load_app() returns the callable that module:callable names."""
    import part2_wsgi.apps.hello_app
    import part2_wsgi.command_line

    for spec, expected in (
        ("part2_wsgi.apps.hello_app:app", part2_wsgi.apps.hello_app.app),
        ("wsgiref.simple_server:demo_app", wsgiref.simple_server.demo_app),
        ("part2_wsgi.command_line:AppLoadError.__init__", part2_wsgi.command_line.AppLoadError.__init__),
    ):
        dotted = "." in spec.partition(":")[2]
        try:
            got = call(part2.load_app, spec, what=f"load_app({spec!r})")
        except (NotImplementedError, AssertionError):
            raise
        except Exception as error:
            if not dotted:
                raise
            raise AssertionError(
                f"load_app({spec!r}) raised {type(error).__name__}: {error}; expected the method it names. "
                "The part after the colon may be dotted (module:obj.attr, as gunicorn takes it): "
                "look up each name in turn, starting from the module"
            ) from None
        assert got is expected, f"load_app({spec!r}) returned {short(got)}, expected {short(expected)}"


@exercise("load_app")
def test_load_app_names_a_missing_module():
    """A module that cannot be imported is an AppLoadError that names it."""
    message = load_error("no_such_module_here:app")
    assert "no_such_module_here" in message, (
        f"load_app('no_such_module_here:app') raised AppLoadError({message!r}); the message should name the module"
    )


@exercise("load_app")
def test_load_app_names_a_missing_callable():
    """A module without that name is an AppLoadError that names what is missing."""
    message = load_error("part2_wsgi.apps.hello_app:no_such_app")
    assert "no_such_app" in message, (
        f"load_app('part2_wsgi.apps.hello_app:no_such_app') raised AppLoadError({message!r}); "
        "the message should name the missing attribute"
    )


@exercise("load_app")
def test_load_app_refuses_what_is_not_an_app():
    """No colon, an empty side, or something not callable: AppLoadError."""
    for spec in ("part2_wsgi.apps.hello_app", ":app", "part2_wsgi.apps.hello_app:", "part2_wsgi.command_line:BACKLOG"):
        load_error(spec)


def minimal_request(target="/", headers=(("Host", "example.com"),), body=b"", method="GET", version="HTTP/1.1"):
    return MinimalRequest(method, target, version, list(headers), body)


def environ_of(request, server_address=("127.0.0.1", 8888), client_address=("127.0.0.1", 54321)):
    environ = call(
        part2.build_environ, request, server_address, client_address, what="build_environ(request, server, client)"
    )
    assert isinstance(environ, dict), f"build_environ() returned {short(environ)}, expected a dict"
    return environ


# What to change when a CGI variable is missing or wrong, for the keys a student may miss.
CGI_ADVICE = {
    "PATH_INFO": " (%-decode the path as latin-1, as PEP 3333 says)",
    "SERVER_PORT": " (the port of server_address, as a str)",
    "REMOTE_ADDR": " (the client's host: the first item of client_address)",
    "REMOTE_PORT": " (the client's port: the second item of client_address, as a str)",
}


@exercise("build_environ")
def test_build_environ_cgi_variables():
    """build_environ() has CGI's variables, all str: method, path, query, server, protocol, client."""
    target_sent = "/hello%20you/caf%C3%A9?x=1&y=%20"
    environ = environ_of(minimal_request(target_sent), client_address=("10.0.0.7", 51000))
    expected = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/hello you/caf\u00c3\u00a9",
        "QUERY_STRING": "x=1&y=%20",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8888",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "REMOTE_PORT": "51000",
    }
    shown = f"for GET {target_sent} served at ('127.0.0.1', 8888) to the client ('10.0.0.7', 51000)"
    for key, value in expected.items():
        assert key in environ, f"{shown} the environ has no {key}{CGI_ADVICE.get(key, '')}"
        assert environ[key] == value, f"{shown}, {key} is {environ[key]!r}, expected {value!r}{CGI_ADVICE.get(key, '')}"


@exercise("build_environ")
def test_build_environ_wsgi_keys():
    """build_environ() has WSGI's keys, and wsgi.input reads the body."""
    environ = environ_of(minimal_request("/", body=b"name=Ada", method="POST"))
    expected = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for key, value in expected.items():
        assert environ.get(key, "missing") == value, f"{key} is {environ.get(key, 'missing')!r}, expected {value!r}"
    for key in ("wsgi.input", "wsgi.errors"):
        assert key in environ, f"the environ has no {key}"
    stream = environ["wsgi.input"]
    if not callable(getattr(stream, "read", None)):
        raise AssertionError(
            f"for a POST with the body b'name=Ada', wsgi.input is {short(stream)} (a {type(stream).__name__}); "
            "expected a file-like object whose read() gives the body: put the body's bytes in an io.BytesIO"
        )
    body = stream.read()
    assert body == b"name=Ada", f"reading wsgi.input gave {short(body)}, expected the body b'name=Ada'"
    errors = environ["wsgi.errors"]
    try:
        errors.write("")
        errors.flush()
    except Exception as error:
        raise AssertionError(
            f"wsgi.errors is {short(errors)}, and writing a str to it failed ({type(error).__name__}: {error}); "
            "expected a text stream with write() and flush(), where the app logs its errors: sys.stderr"
        ) from None


@exercise("build_environ")
def test_build_environ_headers():
    """Headers become HTTP_* keys; Content-Type and Content-Length keep their CGI names."""
    headers = [
        ("Host", "example.com"),
        ("User-Agent", "grader"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "8"),
        ("Accept", "text/html"),
        ("Accept", "text/plain"),
    ]
    environ = environ_of(minimal_request("/", headers=headers, body=b"name=Ada", method="POST"))
    expected = {
        "HTTP_HOST": "example.com",
        "HTTP_USER_AGENT": "grader",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": "8",
        "HTTP_ACCEPT": "text/html, text/plain",
    }
    got = {key: environ.get(key, "missing") for key in expected}
    assert got == expected, f"for headers {headers_text(headers)} the environ has {got}, expected {expected}"
    for key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        assert key not in environ, f"the environ has {key}: Content-Type and Content-Length go without HTTP_"


@exercise("build_environ")
def test_build_environ_passes_wsgiref_validate():
    """wsgiref.validate finds nothing wrong with the environ."""
    environ = environ_of(minimal_request("/form?x=1", headers=[("Host", "h"), ("Content-Length", "0")]))

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the validator warns about some mistakes: make them count
        try:
            result = validator(app)(environ, lambda status, headers, exc_info=None: None)
            result.close()
        except (AssertionError, Warning) as error:
            raise AssertionError(f"wsgiref.validate says of the environ: {error}") from None


class Sent:
    """A ``send`` for run_app that keeps every call, and the calls made so far."""

    def __init__(self):
        self.calls = []
        self.log = io.StringIO()  # the environ's wsgi.errors

    def __call__(self, data):
        if not isinstance(data, (bytes, bytearray)):
            raise AssertionError(f"run_app() called send() with a {type(data).__name__}, expected bytes")
        self.calls.append(bytes(data))

    @property
    def data(self):
        return b"".join(self.calls)


def run_app_on(app, request=None, what="run_app(app, environ, send)", sent=None):
    """Run part2.run_app with the reference environ; return (status it returned, Sent).

    ``sent.log`` is the environ's wsgi.errors: a StringIO, which keeps the expected
    failures of the apps here out of the grader's output, and shows what was logged."""
    environ = reference_build_environ(request or minimal_request(), ("127.0.0.1", 8888), ("127.0.0.1", 5))
    sent = sent or Sent()
    environ["wsgi.errors"] = sent.log
    status = call(part2.run_app, app, environ, sent, what=what)
    return status, sent


def simple_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Grader", "yes")])
    return [b"Hello", b", world"]


@exercise("run_app")
def test_run_app_sends_a_whole_response():
    """run_app() sends status line, headers, blank line and body, and returns the status."""
    status, sent = run_app_on(simple_app)
    assert sent.data, "run_app() sent nothing"
    status_line, headers, body = split_response(sent.data)
    assert status_line in ("HTTP/1.1 200 OK", "HTTP/1.0 200 OK"), (
        f"the app said '200 OK'; run_app() sent the status line {status_line!r}, expected 'HTTP/1.1 200 OK'"
    )
    assert headers.get("content-type") == "text/plain" and headers.get("x-grader") == "yes", (
        f"the app gave the headers Content-Type: text/plain and X-Grader: yes; run_app() sent {headers}"
    )
    assert body == b"Hello, world", f"the app returned [b'Hello', b', world']; the body sent was {short(body)}"
    connection = headers.get("connection")
    assert connection is not None and connection.lower() == "close", (
        f"the head run_app() sent has {'Connection: ' + connection if connection else 'no Connection header'}; "
        "expected Connection: close. The server closes the connection after each response, and must say so "
        "in the head (RFC 9112, section 9.6): add a Connection: close line after the app's headers"
    )
    assert status == "200 OK", f"run_app() returned {short(status)}, expected the status line '200 OK'"


@exercise("run_app")
def test_run_app_sends_the_head_with_the_first_bytes():
    """The head goes out with the first non-empty piece of body, not before."""
    seen = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen.append(len(sent_holder[0].calls))
        yield b""
        seen.append(len(sent_holder[0].calls))
        yield b"first"
        seen.append(b"".join(sent_holder[0].calls))
        yield b"second"

    sent_holder = [None]
    environ = reference_build_environ(minimal_request(), ("127.0.0.1", 8888), ("127.0.0.1", 5))
    sent_holder[0] = sent = Sent()
    call(part2.run_app, app, environ, sent, what="run_app() of an app that yields b'', b'first', b'second'")
    assert seen[:2] == [0, 0], (
        f"an app that called start_response() and yielded b'' found {seen[1]} send() calls made already: "
        "send nothing until the first non-empty piece of body"
    )
    assert len(seen) == 3 and seen[2].startswith(b"HTTP/1.") and seen[2].endswith(b"first"), (
        f"after the app yielded b'first' the client had {short(seen[-1])}: the head and b'first' should be out"
    )
    assert sent.data.endswith(b"firstsecond"), f"the body sent was {short(sent.data[-30:])}"


@exercise("run_app")
def test_run_app_sends_the_head_of_an_empty_body():
    """An app whose body is empty ([] or [b""]) still gets its head sent: a 204 has nothing else."""
    for status, headers, body in (("204 No Content", [], []), ("200 OK", [("Content-Length", "0")], [b""])):

        def app(environ, start_response, status=status, headers=headers, body=body):
            start_response(status, headers)
            return body

        _, sent = run_app_on(app, what=f"run_app() of an app that starts {status!r} and returns {body!r}")
        head = re.match(rb"HTTP/1\.[01] (.*?)\r\n(.*\r\n)?\r\n\Z", sent.data, re.DOTALL)
        assert head and head[1] == status.encode(), (
            f"an app started {status!r} and returned {body!r}; run_app() sent "
            f"{short(sent.data) if sent.data else 'nothing'}, expected the head alone (the status line "
            f"HTTP/1.1 {status}, the headers, Connection: close and a blank line): an empty body has a head all "
            "the same, so once the body is done, send the head if no piece of the body took it"
        )


@exercise("run_app")
def test_run_app_exc_info():
    """start_response() with exc_info replaces an unsent response, and re-raises once it is sent."""

    def replaces(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("the app changed its mind")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    _, sent = run_app_on(replaces, what="run_app() of an app that calls start_response() twice, with exc_info")
    status_line = sent.data.split(b"\r\n", 1)[0]
    assert status_line.endswith(b"500 Internal Server Error"), (
        f"an app started '200 OK', then, before any body, called start_response('500 ...', headers, exc_info); "
        f"run_app() sent the status line {short(status_line)}, expected the 500"
    )

    outcome = []

    def too_late(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"half a page"
        try:
            raise KeyError("too late")
        except KeyError:
            try:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
                outcome.append("start_response returned")
            except KeyError:
                outcome.append("re-raised")
        yield b""

    try:
        run_app_on(too_late, what="run_app() of an app that calls start_response() with exc_info after its body")
    except KeyError:
        pass  # re-raised through run_app: allowed, the server then closes the connection
    assert outcome == ["re-raised"], (
        "an app sent body bytes, then called start_response() with exc_info: "
        f"{outcome[0] if outcome else 'nothing came back'}; expected start_response to re-raise that exception"
    )


@exercise("run_app")
def test_run_app_refuses_a_second_start_response():
    """A second start_response() without exc_info is the app's mistake: AssertionError."""
    outcome = []

    def twice(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
        except AssertionError:
            outcome.append("AssertionError")
        except Exception as error:
            outcome.append(f"{type(error).__name__}: {error}")
        else:
            outcome.append("accepted")
        return [b"body"]

    run_app_on(twice, what="run_app() of an app that calls start_response() twice, without exc_info")
    said = "accepted the second call" if outcome == ["accepted"] else f"raised {outcome[0] if outcome else 'nothing'}"
    assert outcome == ["AssertionError"], (
        "an app called start_response('200 OK', ...), then start_response('404 Not Found', ...) without "
        f"exc_info; run_app()'s start_response {said}, expected it to raise AssertionError: only with exc_info "
        "may an app replace its response (PEP 3333)"
    )


@exercise("run_app")
def test_run_app_always_calls_close():
    """close() of the app's result is called, even when iterating over it fails."""

    class BodyBroke(Exception):
        pass

    class Body:
        def __init__(self, fail):
            self.fail, self.closed = fail, False

        def __iter__(self):
            yield b"one"
            if self.fail:
                raise BodyBroke("the body broke half way")
            yield b"two"

        def close(self):
            self.closed = True

    for fail in (False, True):
        body = Body(fail)

        def app(environ, start_response, body=body):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return body

        try:
            run_app_on(app, what="run_app() of an app whose body has a close()")
        except BodyBroke:
            pass  # the failure went up, after the head: allowed
        when = "when the iteration raised half way" if fail else "after a normal body"
        assert body.closed, f"the app's result has a close(); run_app() did not call it {when} (use finally)"


@exercise("run_app")
def test_run_app_keeps_wsgiref_validate_happy():
    """Through wsgiref.validate: write() works, and an app that fails early gets a 500."""

    def pushing(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"pushed ")
        return [b"and returned"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            _, sent = run_app_on(validator(pushing), what="run_app() of a validated app that uses write()")
        except (AssertionError, Warning) as error:
            raise AssertionError(f"wsgiref.validate says: {error}") from None
    assert sent.data.endswith(b"pushed and returned"), (
        f"an app called write(b'pushed ') and returned [b'and returned']; the body ended {short(sent.data[-40:])}"
    )

    def failing(environ, start_response):
        raise RuntimeError("the app fails before start_response")

    status, sent = run_app_on(failing, what="run_app() of an app that raises at once")
    assert sent.data.startswith(b"HTTP/1.") and b" 500 " in sent.data.split(b"\r\n")[0] + b" ", (
        f"an app raised before start_response(); run_app() sent {short(sent.data)}, expected a 500 response"
    )
    logged = sent.log.getvalue()
    assert "Traceback" in logged and "the app fails before start_response" in logged, (
        "an app raised RuntimeError('the app fails before start_response'); the environ's wsgi.errors received "
        f"{short(logged) if logged else 'nothing'}, expected the traceback: print it to environ['wsgi.errors'], "
        "the server's log, not to the terminal (the traceback module's functions take a file)"
    )


class HalfWay(Exception):
    """What the app of the next check raises, after its first piece of body."""


def fails_half_way(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"half"
    raise HalfWay("the app fails after its first piece, on purpose")


@exercise("run_app")
def test_run_app_lets_an_error_after_the_head_go_up():
    """An app that fails once its head is out: nothing more is sent; logged, the error goes up."""
    sent, raised, status = Sent(), None, None
    try:
        status, _ = run_app_on(fails_half_way, what="run_app() of an app that fails after b'half'", sent=sent)
    except HalfWay as error:
        raised = error
    except (NotImplementedError, AssertionError):
        raise
    except Exception as error:
        raise AssertionError(
            f"an app sent b'half', then raised HalfWay; run_app() raised {type(error).__name__}: {error}; "
            "expected the app's own error, raised again"
        ) from None
    _, _, body = split_response(sent.data)
    assert body == b"half", (
        f"an app sent b'half', then raised; after it run_app() sent {short(body[4:])}. Nothing may follow half "
        "a response (the client reads it all as one body): print the traceback and re-raise the error, for "
        "the server to close the connection"
    )
    assert raised is not None, (
        f"an app sent b'half', then raised HalfWay; run_app() returned {short(status)}, as if the response "
        "were whole: once the head is out, re-raise the error (a bare raise), so that the server logs it and "
        "closes the connection, the only way to tell the client its response is cut short"
    )
    logged = sent.log.getvalue()
    assert "Traceback" in logged and "HalfWay" in logged, (
        "an app sent b'half', then raised HalfWay; the environ's wsgi.errors received "
        f"{short(logged) if logged else 'nothing'}: print the traceback to environ['wsgi.errors'] before "
        "re-raising the error"
    )


class WSGIServer:
    """The student's serve_wsgi() on a loopback port, in a background thread, serving
    ``app`` wrapped in wsgiref.validate, with the reference build_environ and run_app."""

    def __init__(self, app, send_buffer=None):
        self.problems = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        if send_buffer:  # each accepted connection inherits it: a small buffer, the same on every machine
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.address = self.listener.getsockname()
        self.running = Background(part2.serve_wsgi, self.listener, self.recording(validator(app)), name="serve_wsgi()")

    def recording(self, app):
        """Keep what the validator (or the app) raised, to say it in a failure."""

        def recorded(environ, start_response):
            try:
                return app(environ, start_response)
            except Exception as error:
                self.problems.append(f"{type(error).__name__}: {error}")
                raise

        return recorded

    def fetch(self, method, path, **options):
        self.running.check_serving(f"{method} {path}")  # the stub raises at once: say so, rather than wait
        try:
            reply = requests.request(method, self.url + path, timeout=3, **options)
        except requests.RequestException as error:
            self.running.check_serving(f"the answer to {method} {path}")
            raise AssertionError(
                f"{method} {path} with requests got no complete response within 3 s ({type(error).__name__}): "
                "a response must come whole, then the connection must close"
            ) from None
        if reply.status_code == 500 and self.problems:
            raise AssertionError(f"{method} {path} got a 500: wsgiref.validate or the app said {self.problems[-1]}")
        return reply

    def exchange(self, raw):
        """Send ``raw`` over a socket of its own; return (bytes received, whether the server closed)
        once the server closes, after WAIT seconds, or as soon as serve_wsgi() has stopped (nobody
        would answer any more). The stub's NotImplementedError is raised at once."""
        with socket.create_connection(self.address, timeout=WAIT) as client:
            client.sendall(raw)
            client.settimeout(0.05)
            data = bytearray()
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                if isinstance(self.running.error, NotImplementedError):
                    raise self.running.error
                if self.running.done.is_set():
                    deadline = min(deadline, time.monotonic() + 0.1)  # take what is on its way, then stop
                try:
                    piece = client.recv(65536)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    return bytes(data), True
                if not piece:
                    return bytes(data), True
                data += piece
            return bytes(data), False

    def stopped_with(self):
        """What serve_wsgi() raised, if it has stopped (a moment is allowed for it to stop)."""
        if self.running.done.wait(0.2):
            return self.running.error
        return None

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


@pytest.fixture
def wsgi_server(monkeypatch):
    """Start the student's serve_wsgi(); the reference pieces stand in for the student's."""
    if target() == "exercises":
        module = load_workbook_module("part2")
        monkeypatch.setattr(module, "build_environ", reference_build_environ, raising=False)
        monkeypatch.setattr(module, "run_app", reference_run_app, raising=False)
        monkeypatch.setattr(module, "read_request", reference_read_request, raising=False)
    servers = []

    def start(app, send_buffer=None):
        servers.append(WSGIServer(app, send_buffer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def hello_app(environ, start_response):
    body = f"hello from {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@exercise("serve_wsgi")
def test_serve_wsgi_serves_a_wsgi_app(wsgi_server):
    """serve_wsgi() serves a bare WSGI app to requests, again and again."""
    server = wsgi_server(hello_app)
    for path in ("/first", "/second", "/third"):
        reply = server.fetch("GET", path)
        assert reply.status_code == 200 and reply.text == f"hello from {path}", (
            f"GET {path} got {reply.status_code} {short(reply.text)}, expected 200 'hello from {path}'"
        )


@exercise("serve_wsgi")
def test_serve_wsgi_closes_each_connection(wsgi_server):
    """Each response ends with the end of the connection, and the next client is served."""
    server = wsgi_server(hello_app)
    for number in range(1, 4):
        request_bytes = f"GET /{number} HTTP/1.0\r\n\r\n".encode()
        data, closed = server.exchange(request_bytes)
        server.running.check_serving(f"the answer to {short(request_bytes)}")
        assert data, f"client {number} sent {short(request_bytes)} and got no answer within {WAIT:g} s"
        assert closed, (
            f"client {number} sent {short(request_bytes)}; the response came ({short(data, 50)}), but the "
            f"connection stayed open for {WAIT:g} s after it. The client reads until the server closes: close "
            "the connection after each request (a with-block closes it however serving ends)"
        )
        assert data.endswith(f"hello from /{number}".encode()), f"client {number} got {short(data)}"


@exercise("serve_wsgi")
def test_serve_wsgi_serves_flask(wsgi_server):
    """serve_wsgi() serves the Flask app, unmodified, through wsgiref.validate."""
    from part2_wsgi.apps.flask_app import app

    server = wsgi_server(app)
    page = server.fetch("GET", "/", params={"name": "Ada"})
    assert page.status_code == 200 and "Hello from Flask" in page.text, (
        f"GET /?name=Ada of the Flask app got {page.status_code} {short(page.text)}"
    )
    posted = server.fetch("POST", "/", data={"name": "Grace", "message": "<hi>"})
    assert posted.status_code == 200 and "Grace" in posted.text and "&lt;hi&gt;" in posted.text, (
        f"POST / of a form to the Flask app got {posted.status_code} without the fields: {short(posted.text)}"
    )
    missing = server.fetch("GET", "/no/such/page")
    assert missing.status_code == 404, f"GET /no/such/page of the Flask app got {missing.status_code}, expected 404"


@exercise("serve_wsgi")
def test_serve_wsgi_serves_django(wsgi_server):
    """serve_wsgi() serves the Django app, unmodified, through wsgiref.validate."""
    from part2_wsgi.apps.django_app import application

    server = wsgi_server(application)
    page = server.fetch("GET", "/")
    assert page.status_code == 200 and "<form" in page.text, (
        f"GET / of the Django app got {page.status_code} {short(page.text)}"
    )
    echoed = server.fetch("POST", "/json", json={"answer": 42})
    assert echoed.status_code == 200 and echoed.json().get("received") == {"answer": 42}, (
        f"POST /json of the Django app got {echoed.status_code} {short(echoed.text)}"
    )


def served_after(server, what):
    """Check that a client is served after ``what`` happened; say why not."""
    data, closed = server.exchange(b"GET /after HTTP/1.0\r\n\r\n")
    if data.endswith(b"hello from /after") and closed:
        return
    stopped = server.stopped_with()
    if stopped is not None:
        raise AssertionError(
            f"after {what}, serve_wsgi() had stopped: it raised {type(stopped).__name__}: {stopped}. "
            "Nothing a client or an app does may end the loop: catch it, say it in one line on sys.stderr, "
            "and serve the next client"
        )
    raise AssertionError(f"after {what}, GET /after (HTTP/1.0) got {short(data) if data else 'no answer'}")


@exercise("serve_wsgi")
def test_serve_wsgi_carries_on_after_bad_clients(wsgi_server):
    """A client that leaves, sends nonsense (answered 400) or breaks off does not stop the server."""
    server = wsgi_server(hello_app)
    socket.create_connection(server.address, timeout=WAIT).close()  # leaves without a word
    served_after(server, "a client connected and left without a word")
    nonsense = b"HELLO\r\n\r\n"  # not a request line: read_request raises ValueError
    data, closed = server.exchange(nonsense)
    server.running.check_serving(f"an answer to {short(nonsense)}, after a client that left without a word")
    assert re.match(rb"HTTP/1\.[01] 400 ", data) and closed, (
        f"a client sent {short(nonsense)}, not a request line; it got "
        f"{short(data) if data else 'no answer'}{'' if closed else ', and the connection stayed open'}. "
        "Expected a 400 Bad Request response, then the end of the connection: read_request raises ValueError "
        "for a request it cannot read, and the client deserves to know"
    )
    with socket.create_connection(server.address, timeout=WAIT) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")  # then leaves
    served_after(server, "a client sent half a request body and left")


FAILURES = {"/runtime-error": RuntimeError, "/value-error": ValueError}


def failing_app(environ, start_response):
    """Each path of FAILURES sends b"half a body", then raises that exception; anything else is hello_app's."""
    failure = FAILURES.get(environ["PATH_INFO"])
    if failure is None:
        return hello_app(environ, start_response)
    return fail_after_half_a_body(start_response, failure)


def fail_after_half_a_body(start_response, failure):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"half a body"
    raise failure("the app fails half way through its body, on purpose")


@exercise("serve_wsgi")
def test_serve_wsgi_carries_on_after_an_app_fails_half_way(wsgi_server):
    """An app that fails half way through its body costs that response (cut short), never the server."""
    server = wsgi_server(failing_app)
    for path, failure in FAILURES.items():
        request_bytes = f"GET {path} HTTP/1.0\r\n\r\n".encode()
        data, closed = server.exchange(request_bytes)
        stopped = server.stopped_with()
        if stopped is not None:
            raise AssertionError(
                f"for {short(request_bytes)} the app sent b'half a body', then raised {failure.__name__}; "
                f"serve_wsgi() stopped with {type(stopped).__name__}: {stopped}, and the next client would find "
                "no server. An exception from run_app is the app's failure once its response began: write one "
                "line to sys.stderr, let the with-block close the connection, and serve the next client"
            )
        _, _, body = split_response(data)
        extra = body[len(b"half a body") :]
        if body.startswith(b"half a body") and extra:
            advice = (
                "catch ValueError around read_request alone: from run_app it is the app's error, not a bad request"
                if b" 400 " in extra
                else "nothing may follow half a response"
            )
            raise AssertionError(
                f"for {short(request_bytes)} the app sent b'half a body', then raised {failure.__name__}; the "
                f"client then got {short(extra, 50)}, a second response inside the first: {advice}. Write one "
                "line to sys.stderr and close the connection"
            )
        assert body == b"half a body" and closed, (
            f"for {short(request_bytes)} the app sent b'half a body', then raised {failure.__name__}; the client "
            f"got {short(data)}{'' if closed else ' and the connection stayed open'}, expected that half body "
            "and the end of the connection"
        )
        served_after(server, f"the app failed half way through {path}")


SHORT_TIMEOUT = 0.5  # seconds: the check's TIMEOUT, so that a silent client is dropped well within WAIT


@exercise("serve_wsgi")
def test_serve_wsgi_drops_a_silent_client(wsgi_server, monkeypatch):
    """A client that connects and says nothing is dropped after TIMEOUT seconds; the next one is served."""
    monkeypatch.setitem(part2.serve_wsgi.__globals__, "TIMEOUT", SHORT_TIMEOUT)
    server = wsgi_server(hello_app)
    with socket.create_connection(server.address, timeout=WAIT):  # connects, and stays silent
        data, closed = server.exchange(b"GET /after HTTP/1.0\r\n\r\n")
        server.running.check_serving("the answer to GET /after, while another client stayed silent")
    assert data.endswith(b"hello from /after") and closed, (
        f"while one client stayed connected and silent, the next one's GET /after got "
        f"{short(data) if data else 'no answer'} within {WAIT:g} s (the check set TIMEOUT to {SHORT_TIMEOUT:g} s). "
        "Give each connection a timeout of TIMEOUT seconds (settimeout) before read_request: a silent client "
        "then raises TimeoutError, an OSError, and the next client is served"
    )


LARGE = 20 * 1024 * 1024  # bytes: far more than a socket's buffers hold, so that send() must wait for the client
MEGABYTE = 1024 * 1024


def large_app(environ, start_response):
    """A body of LARGE bytes, in one piece."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(LARGE))])
    return [bytes(LARGE)]


def read_large_response(server, rate=None, receive_buffer=None, timeout=4.0):
    """GET /large over a socket of its own, reading at most ``rate`` bytes a second; return
    (body bytes received, whether the server closed, seconds taken) once the server
    closes, or when ``timeout`` seconds pass without a byte."""
    with socket.socket() as client:
        if receive_buffer:  # before connecting: it sets the window the client offers
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        client.settimeout(timeout)
        client.connect(server.address)
        client.sendall(b"GET /large HTTP/1.0\r\n\r\n")
        client.settimeout(0.05)
        started = last_byte = time.monotonic()
        received, head, head_length = 0, b"", None
        while True:
            if rate:  # steady: never more than rate bytes a second, and never a long pause
                time.sleep(max(0.0, started + received / rate - time.monotonic()))
            try:
                piece = client.recv(65536)
            except TimeoutError:
                server.running.check_serving(f"a body of {LARGE // MEGABYTE} MB, after {received} bytes")
                if time.monotonic() - last_byte < timeout:
                    continue
                piece, closed = b"", False
            except ConnectionResetError:
                piece, closed = b"", True
            else:
                closed = not piece
            if not piece:
                body = received - head_length if head_length is not None else 0
                return body, closed, time.monotonic() - started
            received += len(piece)
            last_byte = time.monotonic()
            if head_length is None:
                head += piece
                end = head.find(b"\r\n\r\n")
                head_length = end + 4 if end >= 0 else None


SEND_IN_PIECES = (
    "give run_app a send that sends every byte and waits at most TIMEOUT for each piece the client takes: "
    "send_in_pieces (given), with this connection"
)


def why_cut_short(seconds, timeout):
    """What cut a large body short: at once, send(); after the timeout, sendall()."""
    if seconds < timeout / 2:
        return (
            "the connection's send() takes only what fits in the socket's buffer and says how many bytes it "
            "took; run_app does not look, so the rest is lost"
        )
    return (
        f"a socket's timeout caps a whole sendall() call (Python 3.5 and later), so the connection's sendall "
        f"gave up after TIMEOUT ({timeout:g} s) however steadily the client read"
    )


@exercise("serve_wsgi")
def test_serve_wsgi_sends_a_large_body_whole(wsgi_server):
    """A body of 20 MB, more than a socket's buffers hold, arrives whole."""
    server = wsgi_server(large_app)
    body, closed, seconds = read_large_response(server)
    assert body == LARGE and closed, (
        f"GET /large of an app that returns a body of {LARGE} bytes (its Content-Length) got {body} bytes of it "
        f"in {seconds:.1f} s, {'then the connection closed' if closed else 'and then nothing for 4 s'}, expected "
        f"all of it: {why_cut_short(seconds, 10)}; {SEND_IN_PIECES}"
    )


SLOW_RATE = 8 * MEGABYTE  # bytes a second: 20 MB take about 2.5 s, more than twice TIMEOUT, read steadily


@exercise("serve_wsgi")
def test_serve_wsgi_serves_a_slow_steady_reader(wsgi_server, monkeypatch):
    """A client that reads 20 MB steadily, for longer than TIMEOUT in all, gets every byte."""
    monkeypatch.setitem(part2.serve_wsgi.__globals__, "TIMEOUT", 1)
    # Small buffers on both sides, the same on every machine: what the kernel holds counts little.
    server = wsgi_server(large_app, send_buffer=256 * 1024)
    body, closed, seconds = read_large_response(server, rate=SLOW_RATE, receive_buffer=64 * 1024)
    assert body == LARGE and closed, (
        f"a client read GET /large, a body of {LARGE // MEGABYTE} MB, steadily at {SLOW_RATE // MEGABYTE} MB a "
        f"second, with TIMEOUT at 1 s for this check; it got {body / MEGABYTE:.1f} MB in {seconds:.1f} s, "
        f"{'then the connection closed' if closed else 'and then nothing'}, expected all of it in about "
        f"{LARGE / SLOW_RATE:.1f} s: {why_cut_short(seconds, 1)}; {SEND_IN_PIECES}"
    )


# ===== the hardening track ==========================================================================


# --- response_head ---------------------------------------------------------------------------


@exercise("response_head")
def test_response_head_bytes():
    """response_head() gives the status line, a line per header in order, a blank line."""
    headers = [("Content-Type", "text/plain"), ("Content-Length", "5"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    got = part2.response_head("200 OK", headers)
    expected = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
    )
    assert got == expected, (
        f"response_head('200 OK', [{headers_text(headers)}]) returned "
        f"{short(got, 110)}, expected {short(expected, 110)}"
    )
    reader = http.client.HTTPResponse(
        type("FakeSocket", (), {"makefile": lambda self, mode: io.BytesIO(got + b"hello")})()
    )
    reader.begin()
    assert (reader.status, reader.read()) == (200, b"hello"), "Python's HTTP client could not read the head"


@exercise("response_head")
def test_response_head_version_and_no_headers():
    """response_head() takes another version, and works with no headers at all."""
    got = part2.response_head("404 Not Found", [], version="HTTP/1.0")
    assert got == b"HTTP/1.0 404 Not Found\r\n\r\n", (
        f"response_head('404 Not Found', [], version='HTTP/1.0') returned {short(got)}"
    )


@exercise("response_head")
def test_response_head_is_latin_1():
    """Header values are encoded as Latin-1, as PEP 3333 says (not UTF-8)."""
    got = part2.response_head("200 OK", [("X-Name", "Zo\u00eb")])
    assert got == b"HTTP/1.1 200 OK\r\nX-Name: Zo\xeb\r\n\r\n", (
        "response_head('200 OK', [('X-Name', 'Zoë')]) returned "
        f"{short(got)}, expected 'ë' as the one byte b'\\xeb' (Latin-1)"
    )


# --- chunk ---------------------------------------------------------------------------------------


def size_line(data):
    return data.split(b"\r\n", 1)[0]


@exercise("chunk")
def test_chunk_frames_data():
    """chunk(b"hello") is b"5\\r\\nhello\\r\\n": size, CRLF, bytes, CRLF."""
    got = part2.chunk(b"hello")
    assert isinstance(got, bytes), f"chunk(b'hello') returned a {type(got).__name__}, expected bytes"
    assert got == b"5\r\nhello\r\n", f"chunk(b'hello') returned {short(got)}, expected b'5\\r\\nhello\\r\\n'"


@exercise("chunk")
def test_chunk_size_is_hexadecimal():
    """The size is written in hexadecimal: 26 bytes is "1a", 4096 is "1000"."""
    for size, hexadecimal in ((26, b"1a"), (4096, b"1000"), (255, b"ff")):
        got = part2.chunk(b"x" * size)
        assert size_line(got).lower() == hexadecimal, (
            f"chunk() of {size} bytes starts {short(got[:12])}, expected b'{hexadecimal.decode()}\\r\\n': "
            "write the size in hexadecimal"
        )
        assert got == size_line(got) + b"\r\n" + b"x" * size + b"\r\n", (
            f"chunk() of {size} bytes is not size, CRLF, the bytes, CRLF"
        )


@exercise("chunk")
def test_chunks_make_a_body_a_parser_reads():
    """A body made of chunk()s and the last chunk is decoded whole by an HTTP parser."""
    pieces = [b"hello, ", bytes(range(256)), b"line\r\nbreak"]
    body = b"".join(part2.chunk(piece) for piece in pieces) + LAST_CHUNK
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    decoded = parser.next_request()
    assert decoded is not None and decoded.body == b"".join(pieces), (
        "the parser did not read back the bytes that went into chunk()"
    )


# --- parse_header_line ----------------------------------------------------------------------------


@exercise("parse_header_line")
def test_parse_header_line_splits_name_and_value():
    """parse_header_line() gives (name as sent, value without surrounding spaces)."""
    cases = {
        "Host: example.com": ("Host", "example.com"),
        "Content-Type:text/html": ("Content-Type", "text/html"),
        "Host:   example.com:8080 \t": ("Host", "example.com:8080"),
        "X-Empty:": ("X-Empty", ""),
        "x-MiXeD: a value, with spaces": ("x-MiXeD", "a value, with spaces"),
    }
    for line, expected in cases.items():
        got = part2.parse_header_line(line)
        assert got == expected, f"parse_header_line({line!r}) returned {short(got)}, expected {expected!r}"


@exercise("parse_header_line")
def test_parse_header_line_refuses_folded_lines():
    """A line that starts with a space or tab (an obsolete folded line) is a 400."""
    for line in (" continued", "\tcontinued: x"):
        raises_http(400, part2.parse_header_line, line, shown=f"parse_header_line({line!r})")


@exercise("parse_header_line")
def test_parse_header_line_refuses_malformed_lines():
    """No colon, no name, a space before the colon, a bad name or a control byte: 400."""
    for line in ("no colon here", ": no name", "Host : example.com", "Bad Name: x", "X-Ctl: a\x01b"):
        raises_http(400, part2.parse_header_line, line, shown=f"parse_header_line({line!r})")


# --- add_header_variables ---------------------------------------------------------------------------


def environ_after(headers, body=b""):
    environ = {"REQUEST_METHOD": "GET"}
    result = part2.add_header_variables(environ, request(headers=headers, body=body))
    if result is not None and result is not environ and len(environ) == 1:
        raise AssertionError(
            "add_header_variables() returned a new dict and left environ unchanged: change environ in place"
        )
    return environ


def added(environ):
    return {key: value for key, value in environ.items() if key != "REQUEST_METHOD"}


@exercise("add_header_variables")
def test_add_header_variables_makes_http_keys():
    """Headers become HTTP_* keys: "User-Agent" becomes HTTP_USER_AGENT."""
    headers = [("Host", "example.com"), ("User-Agent", "grader"), ("X-Forwarded-For", "10.0.0.1")]
    environ = environ_after(headers)
    expected = {"HTTP_HOST": "example.com", "HTTP_USER_AGENT": "grader", "HTTP_X_FORWARDED_FOR": "10.0.0.1"}
    assert added(environ) == expected, (
        f"for headers {headers_text(headers)}, environ got {added(environ)}, expected {expected}"
    )
    assert environ["REQUEST_METHOD"] == "GET", "add_header_variables() changed a key that was already in environ"


@exercise("add_header_variables")
def test_add_header_variables_content_keys():
    """Content-Type and Content-Length become CONTENT_TYPE and CONTENT_LENGTH, without HTTP_."""
    headers = [("Host", "h"), ("Content-Type", "text/plain"), ("Content-Length", "5")]
    environ = environ_after(headers, body=b"hello")
    expected = {"HTTP_HOST": "h", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "5"}
    assert added(environ) == expected, (
        f"for headers {headers_text(headers)}, environ got {added(environ)}, expected {expected}"
    )


@exercise("add_header_variables")
def test_add_header_variables_joins_repeated_headers():
    """A header sent twice is one key, values joined by ", " (for Cookie, by "; ")."""
    headers = [("Host", "h"), ("Accept", "text/html"), ("Cookie", "a=1"), ("Accept", "text/plain"), ("Cookie", "b=2")]
    environ = environ_after(headers)
    expected = {"HTTP_HOST": "h", "HTTP_ACCEPT": "text/html, text/plain", "HTTP_COOKIE": "a=1; b=2"}
    assert added(environ) == expected, (
        f"for headers {headers_text(headers)}, environ got {added(environ)}, expected {expected}"
    )


@exercise("add_header_variables")
def test_add_header_variables_drops_underscores():
    """A header named with an underscore (X_User) is dropped: it could forge X-User."""
    for headers in (
        [("Host", "h"), ("X_User", "mallory"), ("X-User", "alice")],
        [("Host", "h"), ("X-User", "alice"), ("X_User", "mallory")],
    ):
        environ = environ_after(headers)
        expected = {"HTTP_HOST": "h", "HTTP_X_USER": "alice"}
        assert added(environ) == expected, (
            f"for headers {headers_text(headers)}, environ got {added(environ)}, expected {expected}"
        )


@exercise("add_header_variables")
def test_add_header_variables_length_of_a_chunked_body():
    """After a chunked upload (Transfer-Encoding), CONTENT_LENGTH is the decoded body's length."""
    headers = [("Host", "h"), ("Transfer-Encoding", "chunked")]
    environ = environ_after(headers, body=b"hello world")
    assert environ.get("CONTENT_LENGTH") == "11", (
        f"for headers {headers_text(headers)} and a body of 11 bytes, "
        f"CONTENT_LENGTH is {environ.get('CONTENT_LENGTH')!r}, expected '11'"
    )


# --- response_framing ---------------------------------------------------------------------------------


def framing_case(method, version, status, headers, expected):
    got = part2.response_framing(request(method, version), status, headers)
    assert got == expected, (
        f"response_framing() for {method} over {version}, status {status}, headers [{headers_text(headers)}] "
        f"returned {got!r}, expected {expected!r}"
    )


@exercise("response_framing")
def test_response_framing_with_a_content_length():
    """With a Content-Length header (in any case), the body is framed by its "length"."""
    framing_case("GET", "HTTP/1.1", 200, [("Content-Type", "text/plain"), ("Content-Length", "5")], "length")
    framing_case("GET", "HTTP/1.1", 200, [("content-length", "5")], "length")
    framing_case("POST", "HTTP/1.0", 201, [("Content-Length", "5")], "length")


@exercise("response_framing")
def test_response_framing_without_a_length():
    """Without Content-Length: "chunked" for HTTP/1.1 clients, "close" for HTTP/1.0 ones."""
    framing_case("GET", "HTTP/1.1", 200, [("Content-Type", "text/plain")], "chunked")
    framing_case("GET", "HTTP/1.0", 200, [("Content-Type", "text/plain")], "close")
    framing_case("GET", "HTTP/1.1", 404, [], "chunked")


@exercise("response_framing")
def test_response_framing_without_a_body():
    """HEAD answers, 1xx, 204 and 304 responses have no body at all: "none"."""
    framing_case("HEAD", "HTTP/1.1", 200, [("Content-Length", "5")], "none")
    framing_case("HEAD", "HTTP/1.0", 200, [], "none")
    framing_case("GET", "HTTP/1.1", 204, [], "none")
    framing_case("GET", "HTTP/1.1", 304, [("Content-Length", "5")], "none")
    framing_case("GET", "HTTP/1.0", 100, [], "none")


# --- body_framing --------------------------------------------------------------------------------------


def framing_of(headers, version="HTTP/1.1", limits=None):
    args = (request("POST", version, [("Host", "h"), *headers]),) + ((limits,) if limits else ())
    shown = f"body_framing() for a POST over {version} with [{headers_text(headers)}]" + (
        f" and max_body {limits.max_body}" if limits else ""
    )
    return args, shown


def body_framing_is(headers, expected, version="HTTP/1.1", limits=None, because=""):
    args, shown = framing_of(headers, version, limits)
    got = outcome(part2.body_framing, *args, shown=shown, expected=repr(expected), because=because)
    because = f": {because}" if because else ""
    assert got == expected, f"{shown} returned {short(got)}, expected {expected!r}{because}"


def body_framing_refuses(headers, status, version="HTTP/1.1", limits=None):
    args, shown = framing_of(headers, version, limits)
    raises_http(status, part2.body_framing, *args, shown=shown)


@exercise("body_framing")
def test_body_framing_by_length():
    """No framing header means no body; Content-Length n means n bytes."""
    body_framing_is([], ("length", 0))
    body_framing_is([("Content-Length", "12")], ("length", 12))
    body_framing_is([("Content-Length", "0")], ("length", 0), version="HTTP/1.0")


@exercise("body_framing")
def test_body_framing_chunked():
    """Transfer-Encoding: chunked (in any case) means a chunked body."""
    body_framing_is([("Transfer-Encoding", "chunked")], ("chunked", None))
    body_framing_is(
        [("Transfer-Encoding", "Chunked")],
        ("chunked", None),
        because="transfer codings are compared without regard to case (RFC 9112, section 7)",
    )


@exercise("body_framing")
def test_body_framing_refuses_bad_lengths():
    """A Content-Length that is not plain ASCII digits is a 400."""
    for value in ("-1", "abc", "1.5", "5, 7", "\u0663"):
        body_framing_refuses([("Content-Length", value)], 400)


@exercise("body_framing")
def test_body_framing_refuses_a_body_too_large():
    """A Content-Length over limits.max_body is a 413, refused before reading it."""
    body_framing_refuses([("Content-Length", str(Limits().max_body + 1))], 413)
    small = Limits(max_body=10)
    body_framing_is([("Content-Length", "10")], ("length", 10), limits=small)
    body_framing_refuses([("Content-Length", "11")], 413, limits=small)


@exercise("body_framing")
def test_body_framing_refuses_ambiguous_requests():
    """Both framings, Transfer-Encoding in HTTP/1.0, or chunked not last: 400; other codings: 501."""
    body_framing_refuses([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], 400)
    body_framing_refuses([("Transfer-Encoding", "chunked")], 400, version="HTTP/1.0")
    body_framing_refuses([("Transfer-Encoding", "gzip")], 400)
    body_framing_refuses([("Transfer-Encoding", "chunked, gzip")], 400)
    body_framing_refuses([("Transfer-Encoding", "gzip, chunked")], 501)


# --- read_request ----------------------------------------------------------------------------------------


# ===== serving files: parse_range, resolve_path ===========================================================


# --- parse_range -------------------------------------------------------------------------------------------


def range_is(header, size, expected, because=""):
    shown = f"parse_range({header!r}, {size})"
    got = outcome(part2.parse_range, header, size, shown=shown, expected=repr(expected), because=because)
    because = f": {because}" if because else ""
    assert got == expected, f"{shown} returned {short(got)}, expected {expected!r}{because}"


@exercise("parse_range")
def test_parse_range_start_and_end():
    """bytes=START-END and bytes=START-: (start, end), the end byte included."""
    range_is("bytes=0-499", 1000, (0, 499))
    range_is("bytes=500-", 1000, (500, 999))
    range_is("bytes=999-999", 1000, (999, 999))
    range_is("bytes=0-0", 1, (0, 0))
    range_is("Bytes=0-1", 1000, (0, 1), because="the unit is read in any case")
    range_is("bytes= 0-1 ", 1000, (0, 1), because="blanks around the range are ignored")


@exercise("parse_range")
def test_parse_range_suffix_and_past_the_end():
    """bytes=-N is the last N bytes; an end past the file is cut to its last byte."""
    range_is("bytes=-100", 1000, (900, 999))
    range_is("bytes=-5000", 1000, (0, 999))
    range_is("bytes=900-5000", 1000, (900, 999))
    range_is("bytes=0-1000", 1000, (0, 999))


@exercise("parse_range")
def test_parse_range_ignores_what_it_cannot_read():
    """Several ranges, another unit, no digits, END before START: None (the whole file)."""
    for header in (
        "bytes=0-1,5-9",
        "items=0-1",
        "bytes=5-1",
        "bytes=a-b",
        "bytes=-",
        "bytes=7",
        "bytes=+1-2",
        "bytes=\u0663-4",
    ):
        range_is(header, 1000, None)


@exercise("parse_range")
def test_parse_range_ignores_any_range_of_an_empty_file():
    """An empty file has no first byte for a 206 to send: any range of it is None (a 200, the empty file)."""
    for header in ("bytes=-5", "bytes=0-0", "bytes=0-", "bytes=-0"):
        range_is(
            header,
            0,
            None,
            because="a 206 names the first and the last byte it sends, and an empty file has neither, even "
            "for bytes=-5, which RFC 9110 (section 14.1) counts as satisfiable; so the answer is the whole, "
            "empty file (200, Content-Length: 0), as section 14.2 lets a server ignore a Range",
        )


@exercise("parse_range")
def test_parse_range_refuses_a_range_past_the_end():
    """A start at or past the end, or bytes=-0: RangeNotSatisfiable (a 416)."""
    for header, size in (
        ("bytes=1000-", 1000),
        ("bytes=1000-1999", 1000),
        ("bytes=-0", 1000),
    ):
        shown = f"parse_range({header!r}, {size})"
        try:
            got = part2.parse_range(header, size)
        except NotImplementedError:
            raise
        except Exception as error:
            if type(error).__name__ == "RangeNotSatisfiable":
                continue
            raise AssertionError(
                f"{shown} raised {type(error).__name__}({error}), expected RangeNotSatisfiable"
            ) from None
        raise AssertionError(
            f"{shown} returned {short(got)}, expected it to raise RangeNotSatisfiable: the file has no such bytes, "
            "and the answer is a 416, not the whole file"
        )


# --- resolve_path ------------------------------------------------------------------------------------------

SECRET = b"the secret beside the folder"


@pytest.fixture
def site(tmp_path):
    """tmp/www, the folder served; tmp/secret.txt beside it; tmp/www2, a sibling whose name
    starts like the folder's; symlinks inside www, to inside and to outside; and two loops
    of symlinks, loop (to itself) and ping and pong (to each other)."""
    TMP.clear()
    TMP.update({str(tmp_path), os.path.realpath(tmp_path)})
    www = tmp_path / "www"
    (www / "dir").mkdir(parents=True)
    (www / "hello.txt").write_bytes(b"hello\n")
    (www / "with space.txt").write_bytes(b"space\n")
    (www / "café.txt").write_bytes(b"cafe\n")
    (www / "dir" / "index.html").write_bytes(b"<h1>index</h1>\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "www2").mkdir()
    (tmp_path / "www2" / "secret.txt").write_bytes(SECRET)
    (www / "alias.txt").symlink_to(www / "hello.txt")
    (www / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (www / "sibling").symlink_to(tmp_path / "www2")
    (www / "loop").symlink_to(www / "loop")
    (www / "ping").symlink_to(www / "pong")
    (www / "pong").symlink_to(www / "ping")
    return www


def resolves_to(root, url_path, expected, why=""):
    shown = f"resolve_path({shorter(root)!r}, {url_path!r})"
    shown_expected = "None" if expected is None else repr(shorter(expected))
    got = outcome(call, part2.resolve_path, root, url_path, shown=shown, expected=shown_expected, because=why)
    if expected is None:
        assert got is None, f"{shown} returned {shorter(got)!r}, expected None: {why}"
        return
    assert got is not None and Path(got) == expected, (
        f"{shown} returned {shorter(got)!r}, expected {shorter(expected)!r}; {why}"
    )


def shorter(path):
    """A path of the checks' temporary folder as TMP/...: the message stays one short line."""
    if not isinstance(path, (str, os.PathLike)):
        return path
    text = os.fspath(path)
    for tmp in sorted(TMP, key=len, reverse=True):  # the longer first: one may hold the other
        text = text.replace(tmp, "TMP")
    return text


TMP = set()  # the temporary folder of the check that runs, as given and resolved


@exercise("resolve_path")
def test_resolve_path_finds_what_is_inside(site):
    """A file, a folder, the root itself, a name with a space: their resolved paths."""
    root = Path(os.path.realpath(site))
    why = "a URL path joined as it is starts with '/', an absolute path that replaces the root"
    resolves_to(site, "/hello.txt", root / "hello.txt", why)
    resolves_to(str(site), "/dir/index.html", root / "dir" / "index.html", why)
    resolves_to(site, "/dir/", root / "dir", why)
    resolves_to(site, "/with space.txt", root / "with space.txt", why)
    resolves_to(
        site,
        "/",
        root,
        "the root itself is inside (its index is served); a test that asks for the root and a separator "
        "as a prefix leaves it out, and os.path.commonpath does not",
    )
    resolves_to(site, "/dir/../hello.txt", root / "hello.txt", "a '..' that stays inside is fine: resolve it")
    resolves_to(
        site,
        "/no/such/file.txt",
        root / "no" / "such" / "file.txt",
        "a path inside the root that names nothing is resolved all the same (the caller answers it with a "
        "404): resolving with strict=True raises for it, and that is no reason for None",
    )


@exercise("resolve_path")
def test_resolve_path_decodes_once_and_reads_utf8(site):
    """PATH_INFO is decoded already: UTF-8 again, never unquote; a bad byte, a NUL, a backslash: None."""
    root = Path(os.path.realpath(site))
    resolves_to(site, "/caf\xc3\xa9.txt", root / "café.txt", "PATH_INFO is latin-1: encode it so, decode as UTF-8")
    resolves_to(
        site,
        "/%2e%2e/secret.txt",
        root / "%2e%2e" / "secret.txt",
        "the server decoded the path once; decoding it again turns a name into '..' (the %252e hole)",
    )
    resolves_to(
        site, "//etc/passwd", root / "etc" / "passwd", "empty segments are dropped, not read as the disk's root"
    )
    for url_path in (
        "/\xc0\xae\xc0\xae/secret.txt",
        "/\xff.txt",
        "/hello.txt\0",
        "/..\\secret.txt",
        "/dir\\..\\hello.txt",
    ):
        resolves_to(site, url_path, None, "bytes that are not UTF-8, a NUL and a backslash are refused")


@exercise("resolve_path")
def test_resolve_path_refuses_every_way_out(site):
    """'..' past the root, and a sibling folder whose name starts like the root's: None."""
    for url_path in ("/../secret.txt", "/dir/../../secret.txt", "/../../../../../../etc/passwd", "/./../secret.txt"):
        resolves_to(site, url_path, None, "it lies outside the root")
    resolves_to(
        site,
        "/../www2/secret.txt",
        None,
        f"www2 is outside {site.name}, though its name starts the same: compare paths, not strings "
        "(os.path.commonpath)",
    )


@exercise("resolve_path")
def test_resolve_path_follows_symlinks(site):
    """A symlink inside that points outside is outside: resolve symlinks, then check."""
    root = Path(os.path.realpath(site))
    why = "a symlink leads where it points: resolve symlinks (os.path.realpath, Path.resolve) before the check"
    resolves_to(site, "/escape.txt", None, why)
    resolves_to(site, "/sibling/secret.txt", None, why)
    resolves_to(site, "/alias.txt", root / "hello.txt", "a symlink to a file inside resolves to that file")


@exercise("resolve_path")
def test_resolve_path_refuses_a_symlink_loop(site):
    """A symlink loop (loop -> loop, or ping -> pong -> ping) cannot be resolved: None, on every Python."""
    for url_path in ("/loop", "/ping/inside.txt"):
        resolves_to(
            site,
            url_path,
            None,
            f"Path.resolve raises RuntimeError for a loop up to Python 3.12 and returns it unresolved from "
            f"3.13 (this is {sys.version_info[0]}.{sys.version_info[1]}), and os.path.realpath returns it "
            "unresolved; with strict=True, os.path.realpath raises OSError for it, errno ELOOP, on every version",
        )
