"""Graded checks for part 2 (exercises/part2.py): HTTP/1.1 as bytes, and the WSGI glue.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. ``part2.chunk`` is the function under test: yours,
or with ``--solutions`` the reference in part2_wsgi/. Run them with

    python -m grader part2              (or: python -m pytest grader/tests/test_part2.py)
"""

import http.client
import io
import select
import socket

import pytest

from grader.tests.helpers import Background, call, connected_pair, send_pieces, short
from grader.workbook import Workbook
from part2_wsgi.protocol import CONTINUE, LAST_CHUNK, Limits, Request, RequestParser

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
            f"chunk() of {size} bytes starts {short(got[:12])}, expected b'{hexadecimal.decode()}\\r\\n'"
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


def body_framing_is(headers, expected, version="HTTP/1.1", limits=None):
    args, shown = framing_of(headers, version, limits)
    got = part2.body_framing(*args)
    assert got == expected, f"{shown} returned {short(got)}, expected {expected!r}"


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
    body_framing_is([("Transfer-Encoding", "Chunked")], ("chunked", None))


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


def nothing_sent_back(client):
    readable, _, _ = select.select([client], [], [], 0.05)
    return not readable


@exercise("read_request")
def test_read_request_reads_a_request_in_pieces():
    """read_request() receives until the parser holds a whole request, and returns it."""
    pieces = (b"GET /a?b=c HTTP/1.1\r\nHo", b"st: x\r\n\r", b"\n")
    client, server = connected_pair()
    with client, server:
        send_pieces(client, *pieces, pause=0.05)
        got = call(part2.read_request, server, RequestParser())
        assert isinstance(got, Request), (
            f"the client sent {b''.join(pieces)!r} in 3 pieces; "
            f"read_request() returned {short(got)}, expected a Request"
        )
        assert (got.method, got.target) == ("GET", "/a?b=c"), (
            f"read_request() returned a request for {got.method} {got.target}"
        )


@exercise("read_request")
def test_read_request_reads_the_body():
    """read_request() waits for the whole body, and sends nothing back by itself."""
    pieces = (b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello", b" world")
    client, server = connected_pair()
    with client, server:
        send_pieces(client, *pieces, pause=0.05)
        got = call(part2.read_request, server, RequestParser())
        body = getattr(got, "body", None)
        assert body == b"hello world", (
            f"the client sent {b''.join(pieces)!r}; read_request() returned a request with body {short(body)}"
        )
        assert nothing_sent_back(client), "read_request() sent bytes to a client that did not ask for 100 Continue"


@exercise("read_request")
def test_read_request_serves_pipelined_requests():
    """Two requests sent at once: two calls return them in order (ask the parser first)."""
    both = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
    client, server = connected_pair()
    with client, server:
        client.sendall(both)
        parser = RequestParser()
        first = call(part2.read_request, server, parser)
        assert getattr(first, "target", None) == "/one", (
            f"the client sent two requests at once; the first call returned {short(first)}"
        )
        second = call(
            part2.read_request,
            server,
            parser,
            timeout=2,
            what="the second read_request(), with the second request already in the parser "
            "(ask parser.next_request() before recv()),",
        )
        assert getattr(second, "target", None) == "/two", (
            f"the second call returned {short(second)}, expected the request for /two"
        )


@exercise("read_request")
def test_read_request_when_the_client_closes():
    """None when the client closes between requests; ConnectionError in the middle of one."""
    client, server = connected_pair()
    with client, server:
        client.shutdown(socket.SHUT_WR)
        got = call(
            part2.read_request, server, RequestParser(), what="read_request(), when the client closed without sending,"
        )
        assert got is None, (
            f"the client closed without sending anything; read_request() returned {short(got)}, expected None"
        )
    client, server = connected_pair()
    with client, server:
        client.sendall(b"GET / HTTP/1.1\r\nHost")
        client.shutdown(socket.SHUT_WR)
        running = Background(part2.read_request, server, RequestParser())
        if not running.done.wait(3):
            raise AssertionError(
                "the client sent half a head and closed; read_request() "
                "did not return within 3 s, expected ConnectionError"
            )
        if running.error is None:
            raise AssertionError(
                "the client sent half a head and closed; read_request() "
                f"returned {short(running.result)}, expected ConnectionError"
            )
        if not isinstance(running.error, ConnectionError):
            running.check()


@exercise("read_request")
def test_read_request_lets_http_errors_go_up():
    """A malformed request: the parser's HTTPError goes up to the server, which answers it."""
    client, server = connected_pair()
    with client, server:
        client.sendall(b"HELLO SERVER\r\n\r\n")
        running = Background(part2.read_request, server, RequestParser())
        if not running.done.wait(3):
            raise AssertionError(
                "the client sent b'HELLO SERVER\\r\\n\\r\\n'; read_request() "
                "did not return within 3 s, expected HTTPError(400)"
            )
        if type(running.error).__name__ != "HTTPError":
            if running.error is None:
                raise AssertionError(
                    "the client sent b'HELLO SERVER\\r\\n\\r\\n'; read_request() "
                    f"returned {short(running.result)}, expected HTTPError(400)"
                )
            running.check()


@exercise("read_request")
def test_read_request_answers_expect_continue():
    """With Expect: 100-continue, read_request() sends CONTINUE once the head is in, then reads the body."""
    head = b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    client, server = connected_pair()
    seen = {}
    with client, server:

        def curl_like_client():
            # Send the head, wait for the go-ahead (as curl does, for a while), then the body.
            client.sendall(head)
            client.settimeout(1.5)
            try:
                seen["reply"] = client.recv(1024)
            except OSError:
                seen["reply"] = b""
            client.sendall(b"hello")

        sender = Background(curl_like_client, name="the client")
        got = call(part2.read_request, server, RequestParser(), timeout=4)
        sender.done.wait(2)
        assert seen.get("reply") == CONTINUE, (
            f"the client sent {short(head, 60)} and waited; it received "
            f"{short(seen.get('reply'))}, expected {CONTINUE!r}"
        )
        assert getattr(got, "body", None) == b"hello", (
            f"read_request() returned {short(got)}, expected the PUT with body b'hello'"
        )
