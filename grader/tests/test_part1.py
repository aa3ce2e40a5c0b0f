"""Graded checks for part 1 (exercises/part1.py): sockets and the smallest HTTP server.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. ``part1.echo`` is the function under test: yours,
or with ``--solutions`` the reference in part1_sockets/. Run them with

    python -m grader part1              (or: python -m pytest grader/tests/test_part1.py)
"""

import http.client
import io
import socket

import pytest

from grader.tests.helpers import Background, call, connected_pair, receive, send_pieces, short, split_response
from grader.workbook import Workbook
from part1_sockets.http_server import MAX_HEAD

part1 = Workbook("part1")
exercise = pytest.mark.exercise


def raises_status(function, argument, status, shown=None):
    """Check that ``function(argument)`` raises BadRequest whose status starts ``status``."""
    shown = shown or f"{function.__name__}({short(argument)})"
    try:
        result = function(argument)
    except NotImplementedError:
        raise
    except Exception as error:
        got = getattr(error, "status", None)
        if type(error).__name__ == "BadRequest" and str(got).startswith(status):
            return
        detail = f"BadRequest({got!r})" if type(error).__name__ == "BadRequest" else f"{type(error).__name__}({error})"
        raise AssertionError(f"{shown} raised {detail}, expected BadRequest('{status} ...')") from None
    raise AssertionError(f"{shown} returned {short(result)}, expected it to raise BadRequest('{status} ...')")


def expect_error(background, kind, what):
    """Wait for ``background`` to raise ``kind``; fail clearly if it returns or hangs."""
    if not background.done.wait(3):
        raise AssertionError(f"{what}: did not return within 3 s, expected {kind.__name__}")
    error = background.error
    if error is None:
        raise AssertionError(f"{what}: returned {short(background.result)}, expected {kind.__name__}")
    if not isinstance(error, kind):
        background.check()  # raise the student's own exception: its message says most
    return error


# --- echo -------------------------------------------------------------------------------------


@exercise("echo")
def test_echo_sends_back_each_piece():
    """echo() sends back each piece the client sends, and returns when the client closes."""
    client, server = connected_pair()
    with client, server:
        running = Background(part1.echo, server, name="echo(connection)")
        for message in (b"hello", b", ", b"world\n"):
            client.sendall(message)
            got = receive(
                client,
                until=lambda data, message=message: len(data) >= len(message),
                server=running,
                what="the echo",
                sent=message,
            )
            assert got == message, f"sent {message!r}, the echo was {got!r}"
        client.shutdown(socket.SHUT_WR)  # "I will send no more": echo's recv() returns b""
        running.wait(what="echo(connection), after the client closed its side (recv() returned b''),")


@exercise("echo")
def test_echo_copes_with_a_large_message():
    """echo() sends back 1 MB, which arrives in many recv() pieces, byte for byte."""
    payload = bytes(range(256)) * 4096
    client, server = connected_pair()
    with client, server:
        running = Background(part1.echo, server, name="echo(connection)")
        # Send from a thread while reading here, or both sides could block on full buffers.
        send_pieces(client, payload, then_close=True)
        got = receive(
            client, until=lambda data: len(data) >= len(payload), server=running, what="the echo of 1 MB", timeout=5
        )
        assert len(got) == len(payload), f"sent {len(payload)} bytes, {len(got)} came back"
        assert got == payload, "sent 1 MB, the same number of bytes came back but not the same bytes"
        running.wait(what="echo(connection), after the client closed its side,")


@exercise("echo")
def test_echo_returns_when_the_client_sends_nothing():
    """echo() returns at once when the client closes without sending anything."""
    client, server = connected_pair()
    with client, server:
        client.shutdown(socket.SHUT_WR)
        result = call(part1.echo, server, what="echo(connection), when the client closed at once,")
        assert result is None, f"echo() returned {short(result)}; it should return None"


# --- receive_exactly ---------------------------------------------------------------------------


@exercise("receive_exactly")
def test_receive_exactly_gathers_pieces():
    """receive_exactly() gathers a message that arrives in several pieces."""
    client, server = connected_pair()
    with client, server:
        send_pieces(server, b"hel", b"lo wor", b"ld", pause=0.05)
        got = call(part1.receive_exactly, client, 11)
        assert got == b"hello world", (
            f"the peer sent b'hel', b'lo wor', b'ld'; receive_exactly(connection, 11) returned {short(got)}, "
            "expected b'hello world' (one recv() is not enough: loop)"
        )


@exercise("receive_exactly")
def test_receive_exactly_never_reads_past_size():
    """receive_exactly() returns exactly size bytes, leaving the rest for the next call."""
    client, server = connected_pair()
    with client, server:
        server.sendall(b"helloWORLD!")
        first = call(part1.receive_exactly, client, 5)
        assert first == b"hello", (
            f"the peer sent b'helloWORLD!'; receive_exactly(connection, 5) returned {short(first)}, expected b'hello'"
        )
        second = call(part1.receive_exactly, client, 6)
        assert second == b"WORLD!", (
            f"the peer sent b'helloWORLD!'; after b'hello', receive_exactly(connection, 6) returned {short(second)}, "
            "expected b'WORLD!' (ask recv() for at most the bytes still missing)"
        )
        empty = call(part1.receive_exactly, client, 0, timeout=1, what="receive_exactly(connection, 0)")
        assert empty == b"", f"receive_exactly(connection, 0) returned {short(empty)}, expected b''"


@exercise("receive_exactly")
def test_receive_exactly_raises_when_the_peer_closes_early():
    """receive_exactly() raises ConnectionError when the peer closes before size bytes came."""
    client, server = connected_pair()
    with client, server:
        server.sendall(b"abc")
        server.close()
        running = Background(part1.receive_exactly, client, 10)
        expect_error(running, ConnectionError, "the peer sent b'abc' and closed; receive_exactly(connection, 10)")


@exercise("receive_exactly")
def test_receive_exactly_reads_a_megabyte():
    """receive_exactly() reads 1 MB, sent in one sendall(), whole."""
    payload = bytes(range(256)) * 4096
    client, server = connected_pair()
    with client, server:
        send_pieces(server, payload)
        got = call(part1.receive_exactly, client, len(payload), timeout=5)
        assert got == payload, f"the peer sent 1 MB; receive_exactly returned {len(got)} bytes" + (
            ", not the same bytes" if len(got) == len(payload) else ""
        )


# --- format_response -----------------------------------------------------------------------------


def read_with_http_client(response):
    """Let Python's own HTTP client read the bytes, as a browser would."""

    class FakeSocket:
        def makefile(self, mode):
            return io.BytesIO(response)

    reader = http.client.HTTPResponse(FakeSocket())
    reader.begin()
    return reader.status, reader.read()


@exercise("format_response")
def test_format_response_has_the_shape_of_a_response():
    """format_response() gives bytes: status line, headers, blank line, body."""
    response = part1.format_response("200 OK", "<p>Hello!</p>")
    assert isinstance(response, bytes), f"format_response() returned a {type(response).__name__}, expected bytes"
    assert response.startswith(b"HTTP/1.1 200 OK\r\n"), (
        f"format_response('200 OK', ...) starts {short(response[:30])}, expected b'HTTP/1.1 200 OK\\r\\n'"
    )
    status_line, headers, body = split_response(response)
    assert body == b"<p>Hello!</p>", f"the body after the blank line is {short(body)}, expected b'<p>Hello!</p>'"
    status, read = read_with_http_client(response)
    assert (status, read) == (200, b"<p>Hello!</p>"), (
        f"Python's HTTP client read status {status} and body {short(read)}"
    )
    not_found = part1.format_response("404 Not Found", "nothing here")
    assert not_found.startswith(b"HTTP/1.1 404 Not Found\r\n"), (
        f"format_response('404 Not Found', ...) starts {short(not_found[:30])}"
    )


@exercise("format_response")
def test_format_response_counts_bytes_not_characters():
    """Content-Length is the body's size in UTF-8 bytes ("é" is two bytes)."""
    text = "héllo wörld ✓"
    response = part1.format_response("200 OK", text)
    _, headers, body = split_response(response)
    assert body == text.encode("utf-8"), (
        f"the body is {short(body)}, expected the text in UTF-8: {short(text.encode())}"
    )
    assert "content-length" in headers, f"no Content-Length header in {sorted(headers)}"
    length = headers["content-length"]
    assert length == str(len(body)), (
        f"for {text!r} ({len(text)} characters, {len(body)} bytes in "
        f"UTF-8) Content-Length is {length!r}, expected '{len(body)}'"
    )


@exercise("format_response")
def test_format_response_says_html_and_close():
    """The headers say Content-Type: text/html; charset=utf-8 and Connection: close."""
    _, headers, _ = split_response(part1.format_response("200 OK", "<p>hi</p>"))
    content_type = headers.get("content-type", "")
    assert "text/html" in content_type and "charset=utf-8" in content_type.lower(), (
        f"Content-Type is {content_type!r}, expected 'text/html; charset=utf-8'"
    )
    assert headers.get("connection", "").lower() == "close", (
        f"Connection is {headers.get('connection')!r}, expected 'close'"
    )


# --- read_head ---------------------------------------------------------------------------------------


@exercise("read_head")
def test_read_head_reads_until_the_blank_line():
    """read_head() reads a head that arrives in pieces, up to the blank line."""
    pieces = (b"GET / HTTP/1.1\r\nHo", b"st: example\r\n", b"\r", b"\n")
    client, server = connected_pair()
    with client, server:
        send_pieces(client, *pieces, pause=0.05)
        got = call(part1.read_head, server)
        expected = (b"GET / HTTP/1.1\r\nHost: example", b"")
        assert got == expected, (
            f"the client sent {b''.join(pieces)!r} in 4 pieces; "
            f"read_head() returned {short(got, 120)}, expected {expected!r}"
        )


@exercise("read_head")
def test_read_head_keeps_the_start_of_the_body():
    """read_head() returns the body bytes that arrived with the head, as ``rest``."""
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nname=Ada"
    client, server = connected_pair()
    with client, server:
        client.sendall(request)
        got = call(part1.read_head, server)
        expected = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8", b"name=Ada")
        assert got == expected, (
            f"the client sent {request!r}; read_head() returned {short(got, 120)}, expected {expected!r}"
        )


@exercise("read_head")
def test_read_head_accepts_bare_newlines():
    """read_head() also ends the head at a blank line of bare LFs, as nc sends."""
    client, server = connected_pair()
    with client, server:
        client.sendall(b"GET / HTTP/1.0\n\n")
        got = call(part1.read_head, server)
        assert got == (b"GET / HTTP/1.0", b""), (
            f"the client sent b'GET / HTTP/1.0\\n\\n'; read_head() returned {short(got, 120)}"
        )


@exercise("read_head")
def test_read_head_refuses_an_endless_head():
    """read_head() raises BadRequest 431 once the head passes MAX_HEAD bytes."""
    endless = b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (MAX_HEAD + 4096)
    client, server = connected_pair()
    with client, server:
        server.settimeout(2)
        send_pieces(client, endless)  # and then nothing: no blank line, no close
        running = Background(part1.read_head, server, name="read_head(connection)")
        if not running.done.wait(3):
            raise AssertionError(
                f"the client sent {len(endless)} bytes without a blank "
                "line; read_head() kept waiting, expected BadRequest 431"
            )
        if running.error is None:
            raise AssertionError(
                f"the client sent {len(endless)} bytes without a blank "
                f"line; read_head() returned {short(running.result)}"
            )
        error = running.error
        if type(error).__name__ == "BadRequest" and str(getattr(error, "status", "")).startswith("431"):
            return
        if isinstance(error, TimeoutError):
            raise AssertionError(
                f"the client sent {len(endless)} bytes without a blank line and waited; read_head() kept reading until "
                f"the socket timed out, expected BadRequest 431 once the head passed MAX_HEAD ({MAX_HEAD}) bytes"
            )
        running.check()


@exercise("read_head")
def test_read_head_raises_when_the_client_closes_early():
    """read_head() raises ConnectionError when the client closes before the blank line."""
    client, server = connected_pair()
    with client, server:
        client.sendall(b"GET / HTT")
        client.shutdown(socket.SHUT_WR)
        running = Background(part1.read_head, server)
        expect_error(running, ConnectionError, "the client sent b'GET / HTT' and closed; read_head(connection)")


# --- parse_head ----------------------------------------------------------------------------------------


@exercise("parse_head")
def test_parse_head_splits_a_request():
    """parse_head() splits a GET into method, target, version and a dict of headers."""
    head = b"GET /search?q=tcp HTTP/1.1\r\nHost: example.com\r\nUser-Agent: grader/1.0"
    got = part1.parse_head(head)
    expected = ("GET", "/search?q=tcp", "HTTP/1.1", {"host": "example.com", "user-agent": "grader/1.0"})
    assert isinstance(got, tuple) and len(got) == 4, (
        f"parse_head({head!r}) returned {short(got, 120)}, expected a tuple of 4"
    )
    assert got == expected, f"parse_head({head!r}) returned {got!r}, expected {expected!r}"


@exercise("parse_head")
def test_parse_head_normalises_headers():
    """Header names become lower case, values lose their spaces; a bare LF ends a line too."""
    head = b"POST /form HTTP/1.0\nContent-LENGTH:   8  \nX-Where: host:8888"
    got = part1.parse_head(head)
    expected = ("POST", "/form", "HTTP/1.0", {"content-length": "8", "x-where": "host:8888"})
    assert got == expected, f"parse_head({head!r}) returned {got!r}, expected {expected!r}"


@exercise("parse_head")
def test_parse_head_refuses_a_malformed_request_line():
    """A request line that is not "METHOD /target HTTP/x.y" is a 400 Bad Request."""
    for head in (
        b"HELLO SERVER",
        b"GET /",
        b"GET / HTTP/1.1 extra",
        b"GET index.html HTTP/1.1",
        b"GET / HTTX/1.1",
        b"GET  / HTTP/1.1",
    ):
        raises_status(part1.parse_head, head + b"\r\nHost: x", "400")


@exercise("parse_head")
def test_parse_head_refuses_other_versions():
    """HTTP/2.0 or HTTP/0.9 in a request line is a 505 HTTP Version Not Supported."""
    for head in (b"GET / HTTP/2.0\r\nHost: x", b"GET / HTTP/0.9"):
        raises_status(part1.parse_head, head, "505")


@exercise("parse_head")
def test_parse_head_refuses_bad_headers():
    """No Host in HTTP/1.1, a header without a colon, or bytes beyond ASCII: 400."""
    raises_status(part1.parse_head, b"GET / HTTP/1.1\r\nAccept: */*", "400")
    raises_status(part1.parse_head, b"GET / HTTP/1.1\r\nHost: x\r\nno colon here", "400")
    raises_status(part1.parse_head, "GET /caf\u00e9 HTTP/1.1\r\nHost: x".encode("utf-8"), "400")
