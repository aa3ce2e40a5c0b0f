"""Part 2, the WSGI glue, tested without sockets.

A request is parsed from bytes by a ``Connection``, ``build_environ`` turns it
into an environ, and ``run_app`` calls the app with ``send`` being a list's ``append``; the bytes collected
are then read back by ``http.client``, which is strict about framing. Well-behaved apps
are wrapped in ``wsgiref.validate.validator``: it checks the environ and the
``start_response`` this glue provides, and any complaint becomes a 500 plus a
traceback, which every test below would notice.
"""

import http.client
import io
import os
import sys
from wsgiref.validate import WSGIWarning, validator

import pytest

from part2_wsgi.connection import Connection
from part2_wsgi.protocol import HTTPError, Request, RequestParser
from part2_wsgi.wsgi import SERVER_SOFTWARE, ClientDisconnected, build_environ, run_app

# The validator's warnings (an unknown method, a status without a reason) are failures too.
pytestmark = pytest.mark.filterwarnings("error", category=WSGIWarning)

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


# --- helpers ----------------------------------------------------------------------------


def parse(data):
    parser = RequestParser()
    parser.feed(data)
    request = parser.next_request()
    assert request is not None, "the test's request is incomplete"
    return request


def connection_for(data, persistent=True):
    """A Connection that has received ``data``, and the request it holds."""
    http = Connection(persistent=persistent)
    http.receive_data(data)
    request = http.next_event()
    assert isinstance(request, Request), f"the test's request gave {request!r}"
    return http, request


SERVER = {"server_address": ("server.example", 8888), "client_address": ("192.0.2.7", 54321)}


def environ_for(data, **kwargs):
    return build_environ(parse(data), **SERVER, **kwargs)


def run_checked(app, environ, http, send):
    """run_app, then check it called close() on what the app returned.

    A validator's iterable that is never closed complains from ``__del__``, at some
    random later moment; checking here turns that into a plain failure of this test.
    """
    returned = []

    def recording_app(environ, start_response):
        returned.append(app(environ, start_response))
        return returned[-1]

    try:
        return run_app(recording_app, environ, http, send)
    finally:
        for result in returned:
            if getattr(result, "closed", True) is False:
                result.close()
                pytest.fail("run_app did not call close() on the app's iterable")


class Exchange:
    """One request through run_app: what was sent, the Response, the errors logged."""

    def __init__(self, app, data=GET, send=None):
        self.http, self.request = connection_for(data)
        self.environ = build_environ(self.request, **SERVER)
        self.errors = io.StringIO()
        self.environ["wsgi.errors"] = self.errors
        self.sends = []
        self.response = run_checked(app, self.environ, self.http, send or self.sends.append)

    @property
    def raw(self):
        return b"".join(self.sends)

    @property
    def log(self):
        return self.errors.getvalue()

    def parsed(self):
        """The response as a strict HTTP client reads it: (HTTPResponse, body)."""
        response = http.client.HTTPResponse(_BytesSocket(self.raw), method=self.request.method)
        response.begin()
        return response, response.read()

    def head_and_body(self):
        head, _, body = self.raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(line.split(": ", 1)) for line in lines]
        return status_line, headers, body


class _BytesSocket:
    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def header_names(headers):
    return [name.lower() for name, _ in headers]


def hello_app(environ, start_response):
    body = b"Hello, world!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def generator_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one "
    yield b""  # an empty piece must not end a chunked body early
    yield b"two "
    yield b"three"


class ClosingBody:
    """An app's iterable with a close() that records being called, as frameworks' do."""

    def __init__(self, pieces, fail_after=None):
        self.pieces = pieces
        self.fail_after = fail_after
        self.closed = 0

    def __iter__(self):
        for index, piece in enumerate(self.pieces):
            if index == self.fail_after:
                raise RuntimeError("the body broke mid-iteration")
            yield piece

    def close(self):
        self.closed += 1


# --- build_environ -------------------------------------------------------------------------


def test_environ_has_every_cgi_and_wsgi_key():
    environ = environ_for(
        b"GET /caf%C3%A9/a%20b?x=%20y&z=caf%C3%A9 HTTP/1.1\r\nHost: example.com\r\n\r\n", multithread=True
    )
    assert {
        key: environ[key]
        for key in (
            "REQUEST_METHOD",
            "SCRIPT_NAME",
            "PATH_INFO",
            "QUERY_STRING",
            "SERVER_NAME",
            "SERVER_PORT",
            "SERVER_PROTOCOL",
            "SERVER_SOFTWARE",
            "REMOTE_ADDR",
            "REMOTE_PORT",
        )
    } == {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/caf\xc3\xa9/a b",  # percent-decoded, as latin-1 (PEP 3333)
        "QUERY_STRING": "x=%20y&z=caf%C3%A9",  # left as sent
        "SERVER_NAME": "server.example",
        "SERVER_PORT": "8888",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REMOTE_ADDR": "192.0.2.7",
        "REMOTE_PORT": "54321",
    }
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a b"  # what a framework does
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "http"
    assert (environ["wsgi.multithread"], environ["wsgi.multiprocess"], environ["wsgi.run_once"]) == (True, False, False)
    assert environ["wsgi.errors"] is sys.stderr
    assert environ["wsgi.input"].read() == b""
    # CGI variables are native strings; only the wsgi.* extensions are other types.
    assert all(type(value) is str for key, value in environ.items() if "." not in key)


def test_path_info_keeps_encoded_slashes_decoded_and_every_byte():
    environ = environ_for(b"GET /a%2Fb/%FF%00 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert environ["PATH_INFO"] == "/a/b/\xff\x00"


def test_raw_non_ascii_bytes_in_the_target_are_refused_or_reach_path_info_unchanged():
    # A client that sends UTF-8 bytes raw instead of %-encoding them. RFC 9112 allows a
    # 400; if the request is accepted, PEP 3333 wants each byte as one latin-1 character,
    # exactly as for "/caf%C3%A9", so the app can re-decode it as UTF-8.
    raw = b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"
    try:
        environ = environ_for(raw)
    except HTTPError as error:
        assert error.status.value == 400
        return
    assert (
        environ["PATH_INFO"]
        == environ_for(b"GET /caf%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n")["PATH_INFO"]
        == "/caf\xc3\xa9"
    )


def test_headers_become_http_variables_and_repeated_ones_are_joined():
    environ = environ_for(
        b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0\r\nx-lower-case: yes\r\n"
        b"Accept: text/html\r\nAccept: */*\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
    )
    assert environ["HTTP_HOST"] == "example.com"
    assert environ["HTTP_USER_AGENT"] == "test/1.0"
    assert environ["HTTP_X_LOWER_CASE"] == "yes"
    assert environ["HTTP_ACCEPT"] == "text/html, */*"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"  # cookies join with "; " (RFC 6265)


def test_header_names_with_underscores_are_dropped_so_they_cannot_forge_dashed_ones():
    environ = environ_for(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX_Forwarded_For: 6.6.6.6\r\nX_Only: x\r\n\r\n"
    )
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
    assert "HTTP_X_ONLY" not in environ


def test_content_type_and_length_keep_their_cgi_names():
    environ = environ_for(b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "5")
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.input"].read(5) == b"hello"


def test_a_chunked_body_arrives_decoded_with_its_content_length():
    environ = environ_for(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert environ["CONTENT_LENGTH"] == "11"
    assert environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])) == b"hello world"


def test_wsgi_input_ends_at_the_body_and_never_reaches_the_next_request():
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    environ = build_environ(parser.next_request(), server_address=("h", 80))
    body = environ["wsgi.input"]
    assert body.read(100) == b"hello"
    assert body.read(100) == b"" and body.read() == b"" and body.readline() == b""
    assert parser.next_request().target == "/next"  # the next request is intact


def test_the_host_of_an_absolute_form_target_wins_over_the_host_header():
    # RFC 9112, 3.2.2: "When an origin server receives a request with an absolute-form of
    # request-target, the origin server MUST ignore the received Host header field (if
    # any) and instead use the host information of the request-target." Werkzeug's server
    # does this by setting HTTP_HOST from the target.
    environ = environ_for(b"GET http://a.example:8080/x?y=1 HTTP/1.1\r\nHost: b.example\r\n\r\n")
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/x", "y=1")
    assert environ["HTTP_HOST"] == "a.example:8080"


def test_the_environ_satisfies_wsgiref_validator():
    seen = {}

    def app(environ, start_response):
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen["lines"] = list(environ["wsgi.input"])
        environ["wsgi.errors"].write("a note for the log\n")
        return hello_app(environ, start_response)

    exchange = Exchange(
        validator(app), b"PUT /x?y HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert exchange.log == "a note for the log\n"
    assert exchange.parsed()[0].status == 200
    assert seen == {"body": b"abc", "lines": []}


# --- run_app: framing -----------------------------------------------------------------------


def test_a_validated_app_with_content_length_is_sent_with_that_length():
    exchange = Exchange(validator(hello_app))
    response, body = exchange.parsed()
    assert (response.status, body) == (200, b"Hello, world!\n")
    assert response.getheader("Content-Length") == "14"
    assert response.getheader("Server") == SERVER_SOFTWARE and response.getheader("Date")
    assert response.getheader("Transfer-Encoding") is None
    assert exchange.http.keep_alive and exchange.log == ""
    assert (exchange.response.status_code, exchange.response.bytes_sent) == (200, 14)
    assert len(exchange.sends) == 1  # head and body in one send


def test_a_list_body_without_content_length_gets_one_computed():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"abc", b"", b"defg"]

    exchange = Exchange(app)
    status_line, headers, body = exchange.head_and_body()
    assert ("Content-Length", "7") in headers and "transfer-encoding" not in header_names(headers)
    assert body == b"abcdefg"


def test_a_generator_on_http_1_1_is_sent_chunked():
    exchange = Exchange(validator(generator_app))
    status_line, headers, body = exchange.head_and_body()
    assert status_line == "HTTP/1.1 200 OK"
    assert ("Transfer-Encoding", "chunked") in headers and "content-length" not in header_names(headers)
    assert body == b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n"
    response, decoded = exchange.parsed()
    assert decoded == b"one two three"
    assert exchange.http.keep_alive and exchange.response.bytes_sent == 13


def test_a_generator_on_http_1_0_is_ended_by_closing_the_connection():
    exchange = Exchange(validator(generator_app), b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status_line, headers, body = exchange.head_and_body()
    assert "transfer-encoding" not in header_names(headers) and "content-length" not in header_names(headers)
    assert "connection" not in header_names(headers)  # no keep-alive promised: the close ends the body
    assert body == b"one two three"
    assert exchange.http.framing == "close" and not exchange.http.keep_alive


def test_http_1_0_keep_alive_is_acknowledged_when_the_length_is_known():
    exchange = Exchange(validator(hello_app), b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert ("Connection", "keep-alive") in exchange.head_and_body()[1]
    assert exchange.http.keep_alive


def test_connection_close_from_the_client_is_echoed():
    exchange = Exchange(validator(hello_app), b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert ("Connection", "close") in exchange.head_and_body()[1]
    assert not exchange.http.keep_alive


@pytest.mark.parametrize(
    "data, connection",
    [(GET, "close"), (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", None)],
    ids=["http-1.1", "http-1.0-keep-alive"],
)
def test_a_server_that_will_close_says_so_whatever_the_client_wants(data, connection):
    http, request = connection_for(data, persistent=False)
    sends = []
    run_checked(validator(hello_app), build_environ(request, server_address=("h", 80)), http, sends.append)
    headers = dict(line.split(": ", 1) for line in b"".join(sends).partition(b"\r\n\r\n")[0].decode().split("\r\n")[1:])
    assert headers.get("Connection") == connection  # HTTP/1.0: no header means close
    assert not http.keep_alive


@pytest.mark.parametrize("app", [hello_app, generator_app], ids=["content-length", "generator"])
def test_head_gets_the_headers_and_no_body(app):
    exchange = Exchange(validator(app), b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    status_line, headers, body = exchange.head_and_body()
    assert status_line == "HTTP/1.1 200 OK" and body == b""
    assert "transfer-encoding" not in header_names(headers)
    if app is hello_app:
        assert ("Content-Length", "14") in headers  # the length a GET would have had
    assert exchange.http.keep_alive


def test_a_204_sends_no_body_and_no_content_length():
    def app(environ, start_response):
        start_response("204 No Content", [])
        return [b"ignored"]

    exchange = Exchange(app)
    status_line, headers, body = exchange.head_and_body()
    assert status_line == "HTTP/1.1 204 No Content"
    assert (
        body == b""
        and "content-length" not in header_names(headers)
        and "transfer-encoding" not in header_names(headers)
    )


def test_an_empty_generator_body_is_framed_with_content_length_zero():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""

    exchange = Exchange(validator(app))
    response, body = exchange.parsed()
    assert body == b"" and response.getheader("Content-Length") == "0"
    assert exchange.raw.endswith(b"\r\n\r\n") and exchange.http.keep_alive


def test_the_write_callable_sends_before_the_returned_body():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        write(b"")
        return [b"then returned"]

    exchange = Exchange(validator(app))
    response, body = exchange.parsed()
    assert body == b"written, then returned"
    assert exchange.log == ""


def test_the_head_waits_for_the_first_non_empty_piece():
    sent_before_data = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""
        sent_before_data.append(len(exchange_sends))
        yield b"data"

    exchange_sends = []
    Exchange(validator(app), send=exchange_sends.append)
    assert sent_before_data == [0]
    assert exchange_sends[0].startswith(b"HTTP/1.1 200 OK\r\n") and exchange_sends[0].endswith(b"4\r\ndata\r\n")


# --- run_app: a file in wsgi.file_wrapper ----------------------------------------------------


@pytest.mark.parametrize(
    "size, with_sendfile", [(0, False), (10 * 1024, False), (65536, False), (65537, True), (1 << 20, True)]
)
def test_a_wrapped_file_of_one_block_goes_with_the_head_and_a_larger_one_to_send_file(tmp_path, size, with_sendfile):
    """One block or less: read, and sent with the head in one send (a second packet and a
    second system call would cost more than the copy sendfile saves). More: the driver's
    send_file, once, for the whole body."""
    path = tmp_path / "file.bin"
    data = os.urandom(size)
    path.write_bytes(data)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 65536)

    sends, files = [], []

    def send_file(file, offset, count):
        files.append((offset, count))
        sends.append(os.pread(file.fileno(), count, offset))
        return count

    http, request = connection_for(GET)
    environ = build_environ(request, **SERVER)
    environ["wsgi.errors"] = io.StringIO()
    response = run_app(app, environ, http, sends.append, send_file)
    assert files == ([(0, size)] if with_sendfile else [])
    assert len(sends) == (2 if with_sendfile else 1), "the head and a small file go out in one send"
    assert b"".join(sends).endswith(b"\r\n\r\n" + data) and response.bytes_sent == size
    assert environ["wsgi.errors"].getvalue() == ""


# --- run_app: errors --------------------------------------------------------------------------


def assert_clean_500(exchange):
    response, body = exchange.parsed()
    assert response.status == 500
    assert response.getheader("Connection") == "close"
    assert int(response.getheader("Content-Length")) == len(body) and body.startswith(b"500 Internal Server Error")
    assert exchange.raw.count(b"HTTP/1.1 ") == 1  # one response, nothing of the first attempt
    assert not exchange.http.keep_alive
    assert exchange.log.count("Traceback") == 1


def test_an_exception_in_the_app_is_a_500_and_a_traceback_in_wsgi_errors():
    def app(environ, start_response):
        raise RuntimeError("boom")

    exchange = Exchange(validator(app))
    assert_clean_500(exchange)
    assert "RuntimeError: boom" in exchange.log


def test_an_exception_after_start_response_but_before_any_data_is_still_a_clean_500():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Partial", "yes")])
        yield b""  # nothing yet: the head must not have gone out
        raise ValueError("failed before the first byte")

    exchange = Exchange(validator(app))
    assert_clean_500(exchange)
    assert b"X-Partial" not in exchange.raw
    assert "ValueError: failed before the first byte" in exchange.log


def test_start_response_with_exc_info_before_the_head_is_sent_replaces_the_response():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise KeyError("missing")
        except KeyError:
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain"), ("Content-Length", "6")], sys.exc_info()
            )
            return [b"sorry\n"]

    exchange = Exchange(validator(app))
    response, body = exchange.parsed()
    assert (response.status, body) == (503, b"sorry\n")
    assert response.getheader("X-First") is None
    assert exchange.log == ""  # the app handled it


def test_start_response_with_exc_info_after_the_head_is_sent_re_raises_and_closes():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        try:
            raise KeyError("too late")
        except KeyError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"never sent"

    exchange = Exchange(validator(app))
    status_line, headers, body = exchange.head_and_body()
    assert status_line == "HTTP/1.1 200 OK"
    assert body == b"7\r\npartial\r\n"  # no last chunk: the client sees the body was cut short
    assert not exchange.http.keep_alive
    assert "KeyError: 'too late'" in exchange.log and exchange.log.count("Traceback") == 1
    response = http.client.HTTPResponse(_BytesSocket(exchange.raw))
    response.begin()
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_start_response_twice_without_exc_info_is_an_error():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"x"]

    exchange = Exchange(app)
    assert_clean_500(exchange)
    assert "called twice" in exchange.log


@pytest.mark.parametrize(
    "app_headers",
    [
        [("Connection", "keep-alive")],
        [("Transfer-Encoding", "chunked")],
        [("keep-alive", "timeout=5")],
        [("Upgrade", "h2c")],
    ],
    ids=["connection", "transfer-encoding", "keep-alive", "upgrade"],
)
def test_a_hop_by_hop_header_from_the_app_is_a_500(app_headers):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), *app_headers])
        return [b"x"]

    exchange = Exchange(app)
    assert_clean_500(exchange)
    assert "hop-by-hop" in exchange.log


@pytest.mark.parametrize(
    "status, headers, body",
    [
        ("200 OK", [("X-Evil", "a\r\nSet-Cookie: pwned=1")], [b"x"]),
        ("OK", [], [b"x"]),
        ("200 OK", [("X-Num", 5)], [b"x"]),
        ("200 OK", [], ["a str, not bytes"]),
    ],
    ids=["header injection", "status without code", "header value not str", "body of str"],
)
def test_an_app_breaking_the_contract_gets_a_500(status, headers, body):
    def app(environ, start_response):
        start_response(status, headers)
        return body

    exchange = Exchange(app)
    assert_clean_500(exchange)
    assert b"pwned" not in exchange.raw


def test_an_app_that_never_calls_start_response_gets_a_500():
    exchange = Exchange(lambda environ, start_response: [b"no status"])
    assert_clean_500(exchange)


def test_head_of_a_failing_app_gets_a_500_head_without_body():
    def app(environ, start_response):
        raise RuntimeError("boom")

    exchange = Exchange(app, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    status_line, headers, body = exchange.head_and_body()
    assert status_line == "HTTP/1.1 500 Internal Server Error" and body == b""


# --- run_app: close() and the client going away ---------------------------------------------------


def test_close_is_called_after_a_normal_response():
    body = ClosingBody([b"a", b"b"])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    exchange = Exchange(validator(app))
    assert exchange.parsed()[1] == b"ab"
    assert body.closed == 1


def test_close_is_called_when_iteration_raises():
    body = ClosingBody([b"a", b"b"], fail_after=1)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    exchange = Exchange(validator(app))
    assert body.closed == 1
    assert "the body broke mid-iteration" in exchange.log
    assert not exchange.http.keep_alive  # "a" was sent: the response cannot be completed


def test_close_is_called_when_the_client_has_gone():
    body = ClosingBody([b"a", b"b"])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    def send(data):
        raise BrokenPipeError(32, "Broken pipe")

    errors = io.StringIO()
    http, request = connection_for(GET)
    environ = build_environ(request, server_address=("h", 80))
    environ["wsgi.errors"] = errors
    with pytest.raises(ClientDisconnected):
        run_checked(validator(app), environ, http, send)
    assert body.closed == 1
    assert errors.getvalue() == ""  # not the app's fault: no traceback


@pytest.mark.parametrize("error", [BrokenPipeError, ConnectionResetError, TimeoutError])
def test_a_failing_send_is_client_disconnected_even_midway(error):
    calls = []

    def send(data):
        calls.append(data)
        if len(calls) == 2:
            raise error("gone")

    errors = io.StringIO()
    http, request = connection_for(GET)
    environ = build_environ(request, server_address=("h", 80))
    environ["wsgi.errors"] = errors
    with pytest.raises(ClientDisconnected):
        run_checked(validator(generator_app), environ, http, send)
    assert len(calls) == 2 and errors.getvalue() == ""
