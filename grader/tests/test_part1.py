"""Graded checks for part 1 (exercises/part1.py): sockets and the smallest HTTP server.

Each test is one check of the exercise named by its ``exercise`` mark; an exercise earns
its points when all its checks pass. ``part1.serve_echo`` is the function under test: yours,
or with ``--solutions`` the reference in part1_sockets/. Run them with

    python -m grader part1              (or: python -m pytest grader/tests/test_part1.py)
"""

import contextlib
import html
import http.client
import io
import re
import socket
from urllib.parse import quote_plus

import pytest
import requests

from grader.tests.helpers import (
    Background,
    StudentStopped,
    bytes_waiting,
    call,
    connected_pair,
    described,
    outcome,
    receive,
    send_pieces,
    short,
    split_response,
    wait_until,
)
from grader.workbook import Workbook
from part1_sockets.http_server import MAX_HEAD

part1 = Workbook("part1")
exercise = pytest.mark.exercise


def raises_status(function, argument, status, shown=None, because=""):
    """Check that ``function(argument)`` raises BadRequest whose status starts ``status``.

    ``because`` ends the failure message: why that status, and what to change.
    """
    shown = shown or f"{function.__name__}({short(argument, 100)})"
    because = f": {because}" if because else ""
    try:
        result = function(argument)
    except NotImplementedError:
        raise
    except Exception as error:
        got = getattr(error, "status", None)
        if type(error).__name__ == "BadRequest" and str(got).startswith(status):
            return
        detail = f"BadRequest({got!r})" if type(error).__name__ == "BadRequest" else f"{type(error).__name__}({error})"
        raise AssertionError(f"{shown} raised {detail}, expected BadRequest('{status} ...'){because}") from None
    raise AssertionError(f"{shown} returned {short(result)}, expected it to raise BadRequest('{status} ...'){because}")


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


@contextlib.contextmanager
def shortened(function, name, value):
    """Set the module constant ``name`` that ``function`` reads to ``value``, for a while.

    A check cannot wait 30 s for a timeout: it shortens the workbook's own TIMEOUT (or
    MAX_HEAD), which the student's function reads by name, as the docstring asks.
    """
    namespace = function.__globals__
    missing = object()
    before = namespace.get(name, missing)
    namespace[name] = value
    try:
        yield
    finally:
        if before is missing:
            del namespace[name]
        else:
            namespace[name] = before


# ===== the required track: make_listener, serve_echo, serve_http ==============================


def free_port():
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        return placeholder.getsockname()[1]


def listener_of(host="127.0.0.1", port=0):
    listener = call(part1.make_listener, host, port, what=f"make_listener({host!r}, {port})")
    assert isinstance(listener, socket.socket), (
        f"make_listener({host!r}, {port}) returned {short(listener)}, expected a socket"
    )
    return listener


@exercise("make_listener")
def test_make_listener_listens():
    """make_listener() returns a listening TCP socket that a client can connect to."""
    with listener_of() as listener:
        host, port = listener.getsockname()[:2]
        assert listener.type == socket.SOCK_STREAM, "the socket is not a TCP (SOCK_STREAM) socket"
        assert host == "127.0.0.1", f"make_listener('127.0.0.1', 0) is bound to {host!r}, expected '127.0.0.1'"
        assert port != 0, "make_listener('127.0.0.1', 0) is bound to port 0: bind it, port 0 picks a free port"
        try:
            client = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError as error:
            raise AssertionError(
                f"a client could not connect to the socket make_listener() returned ({error}): does it listen?"
            ) from None
        with client:
            listener.settimeout(2)
            connection, _ = listener.accept()
            connection.close()


@exercise("make_listener")
def test_make_listener_binds_the_port_given():
    """make_listener() binds the very port it is given."""
    port = free_port()
    with listener_of("127.0.0.1", port) as listener:
        got = listener.getsockname()[1]
        assert got == port, f"make_listener('127.0.0.1', {port}) is bound to port {got}, expected {port}"


@exercise("make_listener")
def test_make_listener_rebinds_at_once():
    """The port can be bound again at once after a server closed a connection (SO_REUSEADDR)."""
    with listener_of() as listener:
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=2)
        listener.settimeout(2)
        connection, _ = listener.accept()
        connection.close()  # the server closes first: its side of the connection lingers in TIME_WAIT
        client.recv(1)
        client.close()
    try:
        again = part1.make_listener("127.0.0.1", port)
    except OSError as error:
        raise AssertionError(
            f"a server on port {port} closed a connection and stopped; make_listener('127.0.0.1', {port}) "
            f"right after failed with {error.strerror or error}: expected the port to be free again at once "
            "(the socket option SO_REUSEADDR, set before bind)"
        ) from None
    again.close()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except (OSError, AttributeError):
        return False
    return True


@exercise("make_listener")
def test_make_listener_speaks_ipv6():
    """make_listener("::1", 0) listens on the IPv6 loopback address (an AF_INET6 socket)."""
    if not has_ipv6_loopback():
        listener_of().close()  # an unfinished make_listener still fails here, as on every machine
        pytest.skip("this machine has no IPv6 loopback address")
    try:
        listener = call(part1.make_listener, "::1", 0, what="make_listener('::1', 0)")
    except (NotImplementedError, AssertionError):
        raise
    except Exception as error:
        raise AssertionError(
            f"make_listener('::1', 0) raised {type(error).__name__}({error}): '::1' is an IPv6 address; for a host "
            "with a ':' make the socket with the family AF_INET6"
        ) from None
    assert isinstance(listener, socket.socket), f"make_listener('::1', 0) returned {short(listener)}, expected a socket"
    with listener:
        assert listener.family == socket.AF_INET6, (
            f"make_listener('::1', 0) made a {listener.family.name} socket: for a host with a ':' "
            "the family is AF_INET6"
        )
        port = listener.getsockname()[1]
        try:
            client = socket.create_connection(("::1", port), timeout=2)
        except OSError as error:
            raise AssertionError(f"a client could not connect to [::1]:{port} ({error}): does it listen?") from None
        with client:
            listener.settimeout(2)
            listener.accept()[0].close()


@exercise("make_listener")
def test_make_listener_backlog_holds_128_clients():
    """The backlog holds at least 128 clients that wait while the server is busy."""
    clients = []
    with listener_of() as listener:
        address = listener.getsockname()[:2]
        try:
            for count in range(128):
                try:
                    clients.append(socket.create_connection(address, timeout=1))
                except OSError:
                    raise AssertionError(
                        f"with nobody calling accept(), {count} clients connected and client {count + 1} "
                        f"waited in vain: the backlog holds about {max(count - 1, 0)}; listen with at least 128"
                    ) from None
        finally:
            for client in clients:
                client.close()


class StudentServer:
    """The student's serve_echo() (or serve_http()) on a loopback port, in a background thread."""

    def __init__(self, function):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.address = self.listener.getsockname()
        self.running = Background(function, self.listener, name=function.__name__ + "()")

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept()
        except OSError:
            pass
        self.listener.close()


@pytest.fixture
def student_server():
    servers = []

    def start(function):
        servers.append(StudentServer(function))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def connect(server):
    client = socket.create_connection(server.address, timeout=3)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def echo_of(server, client, message):
    client.sendall(message)
    got = receive(
        client, until=lambda data: len(data) >= len(message), server=server.running, what="the echo", sent=message
    )
    assert got == message, f"sent {short(message)}, the echo was {short(got)}"


@exercise("serve_echo")
def test_serve_echo_echoes(student_server):
    """serve_echo() sends back each piece a client sends."""
    server = student_server(part1.serve_echo)
    with connect(server) as client:
        for message in (b"hello", b", ", b"world\n"):
            echo_of(server, client, message)


@exercise("serve_echo")
def test_serve_echo_closes_after_the_client(student_server):
    """serve_echo() closes the connection once the client has closed its side."""
    server = student_server(part1.serve_echo)
    with connect(server) as client:
        echo_of(server, client, b"bye")
        client.shutdown(socket.SHUT_WR)  # "I will send no more": the server's recv() returns b""
        rest = receive(
            client,
            server=server.running,
            what="the server to close the connection after the client closed its side (when recv() gives b'', close)",
        )
        assert rest == b"", f"after the client closed its side the server sent {short(rest)}, expected nothing"


@exercise("serve_echo")
def test_serve_echo_serves_clients_in_turn(student_server):
    """serve_echo() serves the next client after one leaves, and the one after."""
    server = student_server(part1.serve_echo)
    for number in range(1, 4):
        with connect(server) as client:
            message = f"client {number}".encode()
            client.sendall(message)
            got = receive(
                client,
                until=lambda data, message=message: len(data) >= len(message),
                server=server.running,
                what=f"the echo to client {number} (the one before had closed its side and left)",
                sent=message,
            )
            assert got == message, f"client {number} sent {message!r}, the echo was {short(got)}"
            client.shutdown(socket.SHUT_WR)
            receive(client, server=server.running, what=f"the server to close client {number}'s connection")


@exercise("serve_echo")
def test_serve_echo_copes_with_a_megabyte(student_server):
    """serve_echo() echoes 1 MB, which arrives in many recv() pieces, byte for byte."""
    payload = bytes(range(256)) * 4096
    server = student_server(part1.serve_echo)
    with connect(server) as client:
        send_pieces(client, payload, then_close=True)  # from a thread, while we read
        got = receive(client, server=server.running, what="the echo of 1 MB and the end of it", timeout=5)
        assert len(got) == len(payload), f"sent {len(payload)} bytes, {len(got)} came back"
        assert got == payload, "sent 1 MB, the same number of bytes came back but not the same bytes"


@exercise("serve_echo")
def test_serve_echo_survives_a_reset(student_server):
    """serve_echo() goes on serving after a client resets its connection."""
    server = student_server(part1.serve_echo)
    rude = connect(server)
    rude.sendall(b"x" * 100)
    # SO_LINGER 0: close() sends a reset (RST) instead of a polite goodbye (FIN).
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    rude.close()
    with connect(server) as client:
        client.sendall(b"still there?")
        try:
            got = receive(
                client,
                until=lambda data: len(data) >= 12,
                server=server.running,
                what="the echo to a client that came after one that reset its connection",
            )
        except StudentStopped as stopped:
            if not isinstance(stopped.error, ConnectionError):
                raise
            raise AssertionError(  # the student's server let the reset end it
                f"a client sent 100 bytes and reset its connection (RST); serve_echo() then stopped with "
                f"{described(stopped.error)}, expected it to accept the next client. A client that vanishes "
                "is that client's problem: catch ConnectionError around serving one client, and accept the next"
            ) from None
        assert got == b"still there?", f"the echo was {short(got)}"


def exchange(server, request, what):
    """Send a raw request; return the response, read until the server closes."""
    with connect(server) as client:
        client.sendall(request)
        response = receive(client, server=server.running, what=what, sent=request)
    return response


def parsed(response, request_text):
    assert response, f"the server closed the connection without answering {request_text}"
    return split_response(response)


def is_status(status_line, code):
    """Whether ``status_line`` is a well-formed one with this code: "HTTP/1.1 200 OK"."""
    return re.fullmatch(rf"HTTP/1\.[01] {code} \S.*", status_line) is not None


GET = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: grader\r\n\r\n"


@exercise("serve_http")
def test_serve_http_answers_get_with_a_form(student_server):
    """GET / answers 200 with an HTML page that holds a form that POSTs."""
    server = student_server(part1.serve_http)
    status_line, headers, body = parsed(exchange(server, GET, "the response to GET / (and then the end)"), "GET /")
    assert is_status(status_line, 200), f"GET / got the status line {status_line!r}, expected 'HTTP/1.1 200 OK'"
    assert "text/html" in headers.get("content-type", ""), (
        f"GET / got Content-Type {headers.get('content-type')!r}, expected 'text/html; charset=utf-8'"
    )
    page = body.decode("utf-8", "replace").lower()
    assert "<form" in page and 'method="post"' in page.replace("'", '"'), (
        f'GET / got a page without a form that posts (<form method="post" ...>): {short(body)}'
    )


@exercise("serve_http")
def test_serve_http_frames_its_response(student_server):
    """Each response says where it ends (Content-Length) and that the server hangs up (Connection: close)."""
    server = student_server(part1.serve_http)
    status_line, headers, body = parsed(exchange(server, GET, "the response to GET /, and the end of it"), "GET /")
    assert "content-length" in headers, f"the response to GET / has no Content-Length header: {sorted(headers)}"
    assert headers["content-length"] == str(len(body)), (
        f"Content-Length says {headers['content-length']}, the body has {len(body)} bytes (count bytes, not characters)"
    )
    assert headers.get("connection", "").lower() == "close", (
        f"the response to GET / says Connection: {headers.get('connection')!r} (its headers: {sorted(headers)}), "
        "expected 'Connection: close': say so, since the server hangs up after each response"
    )


def post_form(server, fields):
    """POST ``fields`` as a form with requests; return the reply."""
    url = f"http://127.0.0.1:{server.address[1]}/"
    try:
        return requests.post(url, data=fields, timeout=3)
    except requests.RequestException as error:
        server.running.check_serving(f"the answer to a POST of {fields}")
        raise AssertionError(
            f"POSTing the form {fields} with requests got no complete answer within 3 s ({type(error).__name__}), "
            "expected a 200 page, then the end of the connection: read the body (Content-Length bytes after "
            "the head), answer, and close"
        ) from None


def field_advice(page, fields):
    """Why a page lacks the fields posted: left URL-encoded, or never read."""
    encoded = {name: quote_plus(value) for name, value in fields.items()}
    if any(value in page for value in encoded.values() if "+" in value or "%" in value):
        return (
            "the page shows them URL-encoded, '+' for a space and %XX for a byte, as the form body carried them: "
            "decode the body as a form (urllib.parse has parse_qsl), not as a path (unquote leaves each '+')"
        )
    return (
        "requests may send the body after the head, as a piece of its own: after the blank line, read until "
        "Content-Length bytes of body have come, then decode the fields"
    )


@exercise("serve_http")
def test_serve_http_answers_a_post_with_its_fields(student_server):
    """POST / with a form answers with the fields submitted, as requests sends them."""
    server = student_server(part1.serve_http)
    fields = {"name": "Ada Lovelace", "message": "Hello, server!"}
    reply = post_form(server, fields)
    assert reply.status_code == 200, f"POST / got the status {reply.status_code}, expected 200"
    assert "text/html" in reply.headers.get("Content-Type", ""), (
        f"POST / got Content-Type {reply.headers.get('Content-Type')!r}, expected 'text/html; charset=utf-8'"
    )
    for name, value in fields.items():
        assert name in reply.text and value in reply.text, (
            f"POST / with {name}={value!r} (sent URL-encoded) got a page without {name!r} and {value!r}: "
            f"{short(reply.text)}; {field_advice(reply.text, fields)}"
        )


@exercise("serve_http")
def test_serve_http_escapes_the_fields_it_shows(student_server):
    """The page shows a posted field as text: "<b>" arrives as "&lt;b&gt;" (HTML-escaped)."""
    server = student_server(part1.serve_http)
    value = "<b>1 < 2 & 3</b>"
    fields = {"name": "Ada", "message": value}
    reply = post_form(server, fields)
    assert reply.status_code == 200, f"POST / got the status {reply.status_code}, expected 200"
    if value not in reply.text and html.escape(value) not in reply.text:
        raise AssertionError(
            f"POST / with message={value!r} got a page that shows it neither as sent nor escaped "
            f"({short(reply.text)}), expected {html.escape(value)!r}: {field_advice(reply.text, fields)}"
        )
    assert value not in reply.text and html.escape(value) in reply.text, (
        f"POST / with message={value!r} got a page that shows it as HTML, expected {html.escape(value)!r}: "
        "what a client sends is text, not markup; escape each name and "
        "value (html.escape) before putting it in the page, or a client can put its own HTML and scripts in it"
    )


@exercise("serve_http")
def test_serve_http_reads_a_request_in_pieces(student_server):
    """A request whose head and body arrive in pieces, the body last, is read whole."""
    server = student_server(part1.serve_http)
    body = b"name=Grace&message=pieces"
    head = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    pieces = (b"POST / HT", head[9:].encode(), f"Content-Length: {len(body)}\r\n\r\n".encode(), body[:9], body[9:])
    with connect(server) as client:
        send_pieces(client, *pieces, pause=0.15)
        response = receive(client, server=server.running, what="the response to a POST sent in 5 pieces")
    status_line, _, page = parsed(response, "a POST sent in pieces")
    assert is_status(status_line, 200) and b"pieces" in page, (
        f"a POST sent in 5 pieces, 0.15 s apart, got {status_line!r} and a page without its message 'pieces': "
        "one recv() is not a whole request; read the head up to its blank line, then Content-Length bytes"
    )


@exercise("serve_http")
def test_serve_http_answers_http_1_0_without_host(student_server):
    """GET / HTTP/1.0 with no Host header is a whole request, answered 200."""
    server = student_server(part1.serve_http)
    request = b"GET / HTTP/1.0\r\n\r\n"
    response = exchange(server, request, "the response to 'GET / HTTP/1.0' and a blank line (no Host)")
    status_line, _, _ = parsed(response, "'GET / HTTP/1.0' (no Host)")
    assert is_status(status_line, 200), (
        f"'GET / HTTP/1.0' and a blank line, with no Host header, got {status_line!r}, expected 'HTTP/1.1 200 OK': "
        "HTTP/1.0 needs no Host; only HTTP/1.1 requests must carry one"
    )


@exercise("serve_http")
def test_serve_http_answers_head_without_a_body(student_server):
    """HEAD / gets the head GET / gets (status, headers, Content-Length) and no body."""
    server = student_server(part1.serve_http)
    get_status, get_headers, _ = parsed(exchange(server, GET, "the response to GET /"), "GET /")
    request = b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    status_line, headers, body = parsed(exchange(server, request, "the response to HEAD /, and its end"), "HEAD /")
    assert is_status(status_line, 200), (
        f"HEAD / got {status_line!r}, expected {get_status!r} as for GET /: every server must answer HEAD "
        "(RFC 9110, section 9.1); answer it as GET, without the body"
    )
    assert not body, (
        f"HEAD / got {len(body)} bytes of body after its head ({short(body)}), expected none: send the head "
        "GET / gets, its Content-Length too, without the body"
    )
    for name in ("content-type", "content-length"):
        assert headers.get(name) == get_headers.get(name), (
            f"HEAD / got {name.title()}: {headers.get(name)!r}, GET / got {get_headers.get(name)!r}: HEAD gets the "
            "very head GET gets (Content-Length is the size of the body GET would send), without the body"
        )


@exercise("serve_http")
def test_serve_http_accepts_the_absolute_form(student_server):
    """GET http://host:port/ (the absolute form of the target) is routed on its path, /."""
    server = student_server(part1.serve_http)
    target = f"http://127.0.0.1:{server.address[1]}/"
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    status_line, _, body = parsed(exchange(server, request, f"the response to GET {target}"), f"GET {target}")
    assert is_status(status_line, 200) and b"<form" in body.lower(), (
        f"'GET {target} HTTP/1.1' got {status_line!r}, expected the page GET / gets: a server must accept the "
        "absolute form of the target (RFC 9112, section 3.2.2), and route on its path, /"
    )


@exercise("serve_http")
def test_serve_http_counts_bytes_of_a_page_beyond_ascii(student_server):
    """A page that shows a field beyond ASCII ("Zoë ✓") has the Content-Length of its bytes, not of its characters."""
    server = student_server(part1.serve_http)
    body = b"name=Zo%C3%AB&message=caf%C3%A9+%E2%9C%93"  # Zoë, café ✓: URL-encoded UTF-8, as a browser sends them
    request = (
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    response = exchange(server, request, "the response to a POST of name=Zoë and message=café ✓")
    status_line, headers, page = parsed(response, "a POST of name=Zoë")
    assert is_status(status_line, 200), f"a POST of name=Zoë got the status line {status_line!r}, expected 200"
    length = headers.get("content-length")
    assert length == str(len(page)), (
        f"a POST of name=Zoë and message=café ✓ got Content-Length: {length} for a page of {len(page)} bytes, "
        f"expected {len(page)}: count the bytes of the page once encoded (UTF-8), not its characters; "
        "'ë' is one character and two bytes"
    )
    text = page.decode("utf-8", "replace")
    assert "Zoë" in text and "café ✓" in text, (
        f"a POST of name=Zo%C3%AB&message=caf%C3%A9+%E2%9C%93 got a page without 'Zoë' and 'café ✓': "
        f"{short(text)}; %XX escapes are the bytes of UTF-8 text: decode the fields as UTF-8"
    )


@exercise("serve_http")
def test_serve_http_answers_nonsense_with_400_and_carries_on(student_server):
    """Nonsense gets a 400 Bad Request page, and a client that leaves or talks nonsense does not stop the server."""
    server = student_server(part1.serve_http)
    socket.create_connection(server.address, timeout=3).close()  # connects, says nothing, leaves
    nonsense = b"HELLO SERVER\r\n\r\n"
    try:
        response = exchange(server, nonsense, "an answer to nonsense")
    except StudentStopped as stopped:
        if not isinstance(stopped.error, OSError):
            raise
        raise AssertionError(
            f"a client connected and left without a word; serve_http() then stopped with "
            f"{described(stopped.error)}, expected it to close that connection and serve the next client. "
            "A client that leaves (recv() gives b'') or resets is that client's problem: catch ConnectionError "
            "(and TimeoutError) around serving one client"
        ) from None
    assert response, (
        f"the server closed the connection without answering {nonsense!r}, expected 'HTTP/1.1 400 Bad Request': "
        "answer a request that is not HTTP with a 400 Bad Request page that says why, then close"
    )
    status_line, headers, body = split_response(response)
    assert is_status(status_line, 400), (
        f"{nonsense!r} got the status line {status_line!r}, expected 'HTTP/1.1 400 Bad Request': a BadRequest's "
        "status is error.status (str(error) and error.args[0] are only its reason)"
    )
    framed = headers.get("content-length") == str(len(body)) and headers.get("connection", "").lower() == "close"
    assert "text/html" in headers.get("content-type", "") and framed, (
        f"{nonsense!r} got a 400 with Content-Type {headers.get('content-type')!r}, Content-Length "
        f"{headers.get('content-length')!r} for a body of {len(body)} bytes and Connection "
        f"{headers.get('connection')!r}: an error answer is a response like any other, with Content-Type: "
        "text/html; charset=utf-8, its Content-Length and Connection: close"
    )
    response = exchange(server, GET, "the response to GET / after two clients misbehaved")
    status_line, _, _ = parsed(response, "GET / after two clients misbehaved")
    assert is_status(status_line, 200), (
        f"after one client left without a word and one sent nonsense, GET / got {status_line!r}, expected 200"
    )


@exercise("serve_http")
def test_serve_http_answers_other_paths_404_and_other_methods_501(student_server):
    """Another path gets 404 Not Found; a method other than GET, HEAD and POST gets 501 Not Implemented."""
    server = student_server(part1.serve_http)
    for request, code, why in (
        (
            b"GET /elsewhere HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "404",
            "the server has a page at / only; any other path is 404 Not Found",
        ),
        (
            b"DELETE / HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "501",
            "a method the server does not implement is 501 Not Implemented (RFC 9110, section 15.6.2); 405 "
            "would say that the server knows the method and this page refuses it",
        ),
    ):
        response = exchange(server, request, f"the response to {short(request)}")
        status_line, _, _ = parsed(response, short(request))
        assert is_status(status_line, code), (
            f"{short(request, 80)} got the status line {status_line!r}, expected 'HTTP/1.1 {code} ...': {why}"
        )


@exercise("serve_http")
def test_serve_http_drops_a_silent_client_after_timeout(student_server):
    """A client that stays silent is dropped after TIMEOUT seconds, and the next is served."""
    with shortened(part1.serve_http, "TIMEOUT", 0.5):
        server = student_server(part1.serve_http)
        silent = connect(server)  # connects, and never sends a byte
        with silent:  # connect() returned, its handshake done: it is ahead of the next client in the backlog
            with connect(server) as client:
                client.sendall(GET)
                try:
                    response = receive(client, server=server.running, timeout=2.5, what="GET /", sent=GET)
                except StudentStopped as stopped:
                    if not isinstance(stopped.error, TimeoutError):
                        raise
                    raise AssertionError(
                        "with TIMEOUT at 0.5 s, serve_http() raised TimeoutError when a silent client's time was "
                        "up, expected it to serve the next client: catch it, close that client's connection and "
                        "serve the next"
                    ) from None
                except AssertionError:
                    raise AssertionError(
                        "while one client stayed silent, GET / from the next one got no answer within 2.5 s, with "
                        "TIMEOUT at 0.5 s: before reading, give each connection a timeout of TIMEOUT seconds "
                        "(settimeout, with the name TIMEOUT, which the check shortens); recv() then raises "
                        "TimeoutError, and the server drops that client"
                    ) from None
    status_line, _, _ = parsed(response, "GET / after a silent client")
    assert is_status(status_line, 200), f"after a silent client was dropped, GET / got {status_line!r}"


# ===== the hardening track ==========================================================================


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
        empty = outcome(
            call,
            part1.receive_exactly,
            client,
            0,
            shown="receive_exactly(connection, 0), with the peer still connected,",
            expected="b''",
            because="no byte is missing, so there is nothing to read (recv() gives b'' when asked for 0 bytes, "
            "though the peer is still there): check what is missing before each recv()",
        )
        assert empty == b"", f"receive_exactly(connection, 0) returned {short(empty)}, expected b''"


class ScriptedConnection:
    """A connection whose peer sends ``pieces``: each recv(n) returns the next piece, cut to
    n bytes (the rest of it comes next), and b"" once all are taken. It keeps every size
    asked for. Over a real socket, two pieces may arrive together on a busy machine, and a
    check could not tell what recv() returned."""

    def __init__(self, *pieces):
        self.pieces = list(pieces)
        self.calls = []  # (size asked for, bytes returned)

    def recv(self, size, flags=0):
        piece = self.pieces.pop(0) if self.pieces and size > 0 else b""
        if len(piece) > size:
            self.pieces.insert(0, piece[size:])
        self.calls.append((size, len(piece[:size])))
        return piece[:size]

    def asked_too_much(self, size):
        """The first recv() that asked for more than was missing: (asked, missing), or None."""
        missing = size
        for asked, got in self.calls:
            if asked > missing:
                return asked, missing
            missing -= got
        return None

    def __getattr__(self, name):
        raise AssertionError(f"receive_exactly() used connection.{name}, expected recv() alone to be needed")


@exercise("receive_exactly")
def test_receive_exactly_asks_for_what_is_missing():
    """receive_exactly() asks recv() for no more than the bytes still missing: b"hel", then b"lo world"."""
    connection = ScriptedConnection(b"hel", b"lo world")
    shown = "the peer sent b'hel', then b'lo world'; receive_exactly(connection, 5)"
    first = outcome(call, part1.receive_exactly, connection, 5, shown=shown, expected="b'hello'")
    too_much = connection.asked_too_much(5)
    if too_much:
        asked = [size for size, _ in connection.calls]
        raise AssertionError(
            f"{shown} asked recv() for {too_much[0]} bytes when {too_much[1]} were missing (it asked for "
            f"{asked}, and returned {short(first)}), expected b'hello', asking recv() for 5 bytes, then for 2: "
            "a recv() asked for more than is missing takes bytes that belong to the next message; ask for what "
            "is still missing, each time"
        )
    assert first == b"hello", f"{shown} returned {short(first)}, expected b'hello'"
    shown = "then receive_exactly(connection, 6)"
    second = outcome(call, part1.receive_exactly, connection, 6, shown=shown, expected="b' world'")
    assert second == b" world", f"the peer sent b'hel', then b'lo world'; after b'hello', {shown} returned " + (
        f"{short(second)}, expected b' world'"
    )


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
        server.settimeout(1)
        client.sendall(b"GET / HTTP/1.0\n\n")  # and then waits for the answer
        running = Background(part1.read_head, server, name="read_head(connection)")
        expected = (b"GET / HTTP/1.0", b"")
        shown = "the client sent b'GET / HTTP/1.0\\n\\n' and waited for an answer; read_head(connection)"
        advice = (
            "a blank line may be bare LFs, as nc and hand-typed requests send: look for the blank line "
            "with END_OF_HEAD, which matches CRLF CRLF and LF LF alike"
        )
        if not running.done.wait(3):
            raise AssertionError(f"{shown} kept reading for 3 s, expected {expected!r}: {advice}")
        if isinstance(running.error, TimeoutError):
            raise AssertionError(
                f"{shown} kept reading until the socket's timeout (1 s) raised {described(running.error)}, "
                f"expected {expected!r}: {advice}"
            )
        got = outcome(running.wait, shown=shown, expected=repr(expected))
        assert got == expected, f"{shown} returned {short(got, 120)}, expected {expected!r}"


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
def test_read_head_limits_the_head_not_the_body():
    """A small head that came with a large piece of body is not too long: MAX_HEAD limits the head."""
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8000"
    body = b"x" * 8000
    with shortened(part1.read_head, "MAX_HEAD", 1024):
        client, server = connected_pair()
        with client, server:
            client.sendall(head + b"\r\n\r\n" + body)
            waiting = len(head) + 4 + len(body)
            if not wait_until(lambda: (bytes_waiting(server) or waiting) >= waiting, 3):  # None: cannot tell
                raise AssertionError(f"{waiting} bytes sent on loopback had not arrived 3 s later")
            # The whole request waits in the socket: one recv() may take all of it.
            running = Background(part1.read_head, server, name="read_head(connection)")
            if not running.done.wait(3):
                raise AssertionError("the client sent a whole request; read_head() did not return within 3 s")
    error = running.error
    if type(error).__name__ == "BadRequest" and str(getattr(error, "status", "")).startswith("431"):
        raise AssertionError(
            f"the client sent a head of {len(head)} bytes and, in the same send, {len(body)} bytes of body (MAX_HEAD "
            "at 1024 for this check); read_head() raised BadRequest('431 ...'): the limit is on the head, the bytes "
            "before the blank line, not on everything received; measure the head once the blank line is found"
        )
    running.check()
    got = running.result
    assert isinstance(got, tuple) and len(got) == 2 and got[0] == head and body.startswith(got[1]), (
        f"the client sent {short(head, 60)} + b'\\r\\n\\r\\n' + {len(body)} bytes of body; read_head() returned "
        f"{short(got, 100)}, expected ({short(head, 60)}, the body bytes that came with it)"
    )


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


def parse_head_is(head, expected, because=""):
    """Check that parse_head(head) returns ``expected``; say what it did instead."""
    shown = f"parse_head({head!r})"
    got = outcome(part1.parse_head, head, shown=shown, expected=repr(expected), because=because)
    because = f": {because}" if because else ""
    assert isinstance(got, tuple) and len(got) == 4, f"{shown} returned {short(got, 120)}, expected a tuple of 4"
    assert got == expected, f"{shown} returned {got!r}, expected {expected!r}{because}"


@exercise("parse_head")
def test_parse_head_splits_a_request():
    """parse_head() splits a GET into method, target, version and a dict of headers."""
    head = b"GET /search?q=tcp HTTP/1.1\r\nHost: example.com\r\nUser-Agent: grader/1.0"
    expected = ("GET", "/search?q=tcp", "HTTP/1.1", {"host": "example.com", "user-agent": "grader/1.0"})
    parse_head_is(head, expected)


@exercise("parse_head")
def test_parse_head_normalises_headers():
    """Header names become lower case, values lose their spaces; a bare LF ends a line too."""
    head = b"POST /form HTTP/1.0\nContent-LENGTH:   8  \nX-Where: host:8888"
    expected = ("POST", "/form", "HTTP/1.0", {"content-length": "8", "x-where": "host:8888"})
    parse_head_is(
        head,
        expected,
        because="a header splits at its first colon, and its value may hold more (host:8888); names are "
        "lower-cased, values lose the blanks around them, and a bare LF ends a line as CRLF does",
    )


@exercise("parse_head")
def test_parse_head_keeps_the_last_of_a_repeated_header():
    """A header other than Host and Content-Length that comes twice keeps its last value."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nAccept: text/plain"
    parse_head_is(
        head,
        ("GET", "/", "HTTP/1.1", {"host": "x", "accept": "text/plain"}),
        because="the dict keeps one value per name, and a header that comes again replaces the one before it "
        "(only Host and Content-Length, which must come once, are refused when repeated)",
    )


@exercise("parse_head")
def test_parse_head_accepts_every_form_of_target():
    """The absolute form (http://host/path) and OPTIONS * are accepted; the target comes back as sent."""
    for head, expected in (
        (
            b"GET http://example.com:8080/search?q=1 HTTP/1.1\r\nHost: example.com",
            ("GET", "http://example.com:8080/search?q=1", "HTTP/1.1", {"host": "example.com"}),
        ),
        (b"OPTIONS * HTTP/1.1\r\nHost: x", ("OPTIONS", "*", "HTTP/1.1", {"host": "x"})),
    ):
        try:
            got = part1.parse_head(head)
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(
                f"parse_head({head!r}) raised {type(error).__name__}({getattr(error, 'status', error)!r}), expected "
                f"{expected!r}: a server must accept the absolute form, http://host/path (RFC 9112, section 3.2.2), "
                "and * with OPTIONS; a target that starts with '/' is only the commonest form"
            ) from None
        assert got == expected, f"parse_head({head!r}) returned {short(got, 150)}, expected {expected!r}"


@exercise("parse_head")
def test_parse_head_reads_a_later_http_1_as_1_1():
    """HTTP/1.2 is accepted and read as HTTP/1.1 (minor versions stay compatible)."""
    head = b"GET / HTTP/1.2\r\nHost: x"
    expected = ("GET", "/", "HTTP/1.1", {"host": "x"})
    try:
        got = part1.parse_head(head)
    except NotImplementedError:
        raise
    except Exception as error:
        raise AssertionError(
            f"parse_head({head!r}) raised {type(error).__name__}({getattr(error, 'status', error)!r}), expected "
            f"{expected!r}: every HTTP/1.x is accepted, a later minor version read as HTTP/1.1 (RFC 9110, "
            "section 2.5); only a major version other than 1 is a 505"
        ) from None
    assert got == expected, (
        f"parse_head({head!r}) returned {short(got, 150)}, expected {expected!r}: a later HTTP/1.x is read, and "
        "returned, as HTTP/1.1"
    )
    raises_status(
        part1.parse_head, b"GET / HTTP/1.2", "400", because="read as HTTP/1.1, it needs a Host header as 1.1 does"
    )


@exercise("parse_head")
def test_parse_head_refuses_a_malformed_request_line():
    """A request line that is not "METHOD TARGET HTTP/d.d", or a target of no known form, is a 400 Bad Request."""
    for head in (
        b"HELLO SERVER",
        b"GET /",
        b"GET / HTTP/1.1 extra",
        b"GET / HTTX/1.1",
        b"GET / HTTP/1.10",
        b"GET  / HTTP/1.1",
    ):
        raises_status(
            part1.parse_head,
            head + b"\r\nHost: x",
            "400",
            because="a request line is three parts, one space apart, the last HTTP/<digit>.<digit>",
        )
    for head in (b"GET index.html HTTP/1.1", b"GET * HTTP/1.1"):
        raises_status(
            part1.parse_head,
            head + b"\r\nHost: x",
            "400",
            because="a target is /path, http://host/path (or https://), or * with OPTIONS only",
        )


@exercise("parse_head")
def test_parse_head_refuses_other_versions():
    """HTTP/2.0, HTTP/3.0 or HTTP/0.9 in a request line is a 505 HTTP Version Not Supported."""
    for head in (b"GET / HTTP/2.0\r\nHost: x", b"GET / HTTP/3.0\r\nHost: x", b"GET / HTTP/0.9"):
        raises_status(part1.parse_head, head, "505", because="only major version 1 is served")


@exercise("parse_head")
def test_parse_head_refuses_bad_headers():
    """No Host in HTTP/1.1, a header without a colon or a name, or bytes beyond ASCII: 400."""
    raises_status(part1.parse_head, b"GET / HTTP/1.1\r\nAccept: */*", "400", because="HTTP/1.1 requires a Host header")
    for head in (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here", b"GET / HTTP/1.1\r\nHost: x\r\n: no name"):
        raises_status(part1.parse_head, head, "400", because="a header line is Name: value")
    raises_status(
        part1.parse_head,
        "GET /caf\u00e9 HTTP/1.1\r\nHost: x".encode("utf-8"),
        "400",
        because="RFC 9112's grammar has no room for a byte beyond ASCII in a request line",
    )
    raises_status(
        part1.parse_head,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Name: Zo\u00eb".encode("utf-8"),
        "400",
        because="RFC 9110 (section 5.5) allows such bytes in a header value, as obs-text, but part 1 refuses "
        "them too, to stay small, as its docstring says",
    )


@exercise("parse_head")
def test_parse_head_refuses_whitespace_before_a_colon():
    """A header name with whitespace before its colon ("Host : x") is a 400 Bad Request."""
    for head in (b"GET / HTTP/1.0\r\nHost : example.com", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 5"):
        raises_status(
            part1.parse_head,
            head,
            "400",
            because="is that header 'Host' or 'Host '? Two programs that read it differently see two different "
            "requests (RFC 9112, section 5.1): refuse a name with whitespace in it",
        )


@exercise("parse_head")
def test_parse_head_refuses_two_hosts_or_two_lengths():
    """Two Host headers, or two Content-Length headers, are a 400 Bad Request."""
    raises_status(
        part1.parse_head,
        b"GET / HTTP/1.1\r\nHost: a.example\r\nhost: b.example",
        "400",
        because="more than one Host header: keeping the first or the last is a guess at which site is meant "
        "(RFC 9112, section 3.2); refuse it",
    )
    for lengths in ((b"5", b"7"), (b"5", b"5")):
        raises_status(
            part1.parse_head,
            b"POST / HTTP/1.0\r\nContent-Length: %s\r\ncontent-length: %s" % lengths,
            "400",
            because="more than one Content-Length header, even with the same value: where the body ends must "
            "not depend on which one a program keeps (RFC 9112, section 6.3); refuse it",
        )
