"""Part 2, connection.py's ``Connection``: the rules of one conversation, without a socket.

Bytes go in with ``receive_data``; ``next_event`` says what to do (serve a Request, send
bytes, wait for more, close); the ``send_*`` methods frame a response and return its
bytes. Time is a fake clock the tests move by hand, so deadlines are tested exactly.
"""

import pytest

from part2_wsgi.connection import NEED_DATA, Close, Connection, Deadlines, Send, State
from part2_wsgi.protocol import CONTINUE, Request

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def connection(persistent=True):
    clock = Clock()
    return Connection(persistent=persistent, clock=clock), clock


def received(http, data):
    http.receive_data(data)
    return http.next_event()


def respond(http, status="200 OK", headers=(("Content-Length", "2"),), body=b"hi"):
    """The bytes of a whole response, as a driver would send them."""
    out = http.send_head(status, list(headers))
    if body:
        out += http.send_body(body)
    return out + http.send_end()


# --- requests in, events out ---------------------------------------------------------------


def test_a_request_then_a_response_then_the_next_request():
    http, _ = connection()
    assert http.next_event() is NEED_DATA and http.state is State.IDLE
    request = received(http, GET)
    assert isinstance(request, Request) and http.state is State.RESPONDING
    raw = respond(http)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"\r\n\r\nhi")
    assert b"Connection" not in raw  # HTTP/1.1 keeps the connection open by default
    assert http.keep_alive and http.state is State.IDLE
    assert http.next_event() is NEED_DATA


def test_pipelined_requests_come_out_one_at_a_time():
    http, _ = connection()
    first = received(http, GET.replace(b"/", b"/one", 1) + GET.replace(b"/", b"/two", 1))
    assert first.target == "/one"
    with pytest.raises(RuntimeError):
        http.next_event()  # one request at a time: answer this one first
    respond(http)
    assert http.next_event().target == "/two"


def test_next_event_is_need_data_until_the_request_is_whole():
    http, _ = connection()
    for byte in GET[:-1]:
        assert received(http, bytes([byte])) is NEED_DATA
    assert isinstance(received(http, GET[-1:]), Request)


@pytest.mark.parametrize(
    "data, header",
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", b"Connection: close"),
        (b"GET / HTTP/1.0\r\n\r\n", None),
    ],
    ids=["http-1.1-close", "http-1.0"],
)
def test_a_client_that_wants_to_close_gets_a_close(data, header):
    http, _ = connection()
    received(http, data)
    raw = respond(http)
    assert (header in raw) if header else (b"Connection" not in raw)
    assert not http.keep_alive
    assert http.next_event() == Close()


def test_http_1_0_keep_alive_is_acknowledged():
    http, _ = connection()
    received(http, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Connection: keep-alive\r\n" in respond(http) and http.keep_alive


def test_a_server_serving_one_request_per_connection_says_close():
    http, _ = connection(persistent=False)
    received(http, GET)
    assert b"Connection: close\r\n" in respond(http)
    assert http.next_event() == Close()


def test_expect_100_continue_is_answered_once_the_head_is_in():
    http, _ = connection()
    head = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    assert received(http, head) == Send(CONTINUE)
    assert http.next_event() is NEED_DATA  # once only
    assert received(http, b"hel") is NEED_DATA
    assert received(http, b"lo").body == b"hello"


def test_no_100_continue_when_the_body_came_with_the_head():
    http, _ = connection()
    data = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
    assert received(http, data).body == b"hello"


def test_a_malformed_request_is_answered_then_closed_gently():
    http, _ = connection()
    event = received(http, b"HELLO\r\n\r\n")
    assert isinstance(event, Send) and event.data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    close = http.next_event()
    assert close.status == 400 and close.linger and "bad request" in close.problem
    assert http.state is State.CLOSED


def test_the_client_closing_between_requests_is_a_quiet_end():
    http, _ = connection()
    received(http, GET)
    respond(http)
    assert received(http, b"") == Close()


def test_the_client_closing_in_the_middle_of_a_request_is_a_problem():
    http, _ = connection()
    received(http, b"GET / HTTP/1.1\r\nHo")
    close = received(http, b"")
    assert close.problem and "middle of a request" in close.problem


def test_a_reset_between_requests_is_quiet_and_one_in_the_middle_is_not():
    idle, _ = connection()
    assert idle.connection_lost(ConnectionResetError("reset")) == Close()
    busy, _ = connection()
    received(busy, b"GET / HT")
    assert "went away" in busy.connection_lost(ConnectionResetError("reset")).problem


# --- the response: framing, and the app held to its word ------------------------------------


def test_no_content_length_on_http_1_1_is_chunked():
    http, _ = connection()
    received(http, GET)
    raw = http.send_head("200 OK", []) + http.send_body(b"abc") + http.send_end()
    assert b"Transfer-Encoding: chunked\r\n" in raw and raw.endswith(b"3\r\nabc\r\n0\r\n\r\n")
    assert http.keep_alive


def test_an_empty_piece_of_a_chunked_body_sends_nothing():
    # Framed, it would be the zero-size chunk that ends the body: what followed would be
    # read as the next response (ASGI apps send b"" pieces: Starlette's last message).
    http, _ = connection()
    received(http, GET)
    raw = http.send_head("200 OK", []) + http.send_body(b"a") + http.send_body(b"") + http.send_body(b"b")
    raw += http.send_body(b"") + http.send_end()
    assert raw.endswith(b"\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n") and http.body_sent == 2


def test_no_content_length_on_http_1_0_ends_with_the_connection():
    http, _ = connection()
    received(http, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    raw = http.send_head("200 OK", []) + http.send_body(b"abc") + http.send_end()
    assert raw.endswith(b"\r\n\r\nabc") and not http.keep_alive and http.framing == "close"


def test_an_empty_body_says_content_length_0_rather_than_chunks():
    http, _ = connection()
    received(http, GET)
    raw = http.send_head("200 OK", [], empty=True) + http.send_end()
    assert b"Content-Length: 0\r\n" in raw and b"chunked" not in raw


@pytest.mark.parametrize(
    "request_line, status",
    [(b"HEAD / HTTP/1.1", "200 OK"), (b"GET / HTTP/1.1", "204 No Content"), (b"GET / HTTP/1.1", "304 Not Modified")],
)
def test_head_204_and_304_responses_carry_no_body(request_line, status):
    http, _ = connection()
    received(http, request_line + b"\r\nHost: h\r\n\r\n")
    raw = http.send_head(status, [("Content-Length", "5")] if "200" in status else []) + http.send_body(b"hello")
    raw += http.send_end()
    assert raw.endswith(b"\r\n\r\n") and http.keep_alive


def test_an_app_that_sends_more_than_it_declared_is_cut_at_its_word_and_the_connection_ends():
    http, _ = connection()
    received(http, GET + GET)
    http.send_head("200 OK", [("Content-Length", "5")])
    assert http.send_body(b"hello, and a forged HTTP/1.1 200 OK") == b"hello"
    assert "Content-Length: 5" in http.framing_error
    assert http.send_body(b"more") == b"" and http.send_end() == b""
    assert not http.keep_alive
    assert http.next_event() == Close(linger=True)  # the second request is never served


def test_an_app_that_sends_less_than_it_declared_ends_the_connection():
    http, _ = connection()
    received(http, GET)
    http.send_head("200 OK", [("Content-Length", "5")])
    http.send_body(b"hel")
    assert http.send_end() == b""
    assert "gave 3 bytes" in http.framing_error
    assert not http.keep_alive and http.next_event() == Close()


def test_an_invalid_content_length_from_the_app_is_the_apps_error():
    http, _ = connection()
    received(http, GET)
    with pytest.raises(ValueError):
        http.send_head("200 OK", [("Content-Length", "five")])


def test_ending_a_response_early_closes_the_connection():
    http, _ = connection()
    received(http, GET)
    http.send_head("200 OK", [])
    http.send_body(b"half")
    http.end_connection()
    assert http.next_event() == Close()


# --- deadlines, not per-read timeouts -------------------------------------------------------


def test_an_idle_connection_has_the_idle_deadline_and_closes_quietly():
    http, clock = connection()
    assert http.next_event() is NEED_DATA
    assert http.deadline() == clock.now + Deadlines().idle
    http.deadline_passed()
    assert http.next_event() == Close()


def test_the_head_deadline_starts_at_the_first_byte_and_does_not_move():
    http, clock = connection()
    received(http, b"G")
    started = clock.now
    for _ in range(5):
        clock.now += 1.5
        received(http, b"E")  # a byte now and then does not buy more time (slowloris)
    assert http.deadline() == started + Deadlines().head


def test_a_client_past_its_deadline_gets_a_408_then_the_connection_closes():
    http, clock = connection()
    received(http, b"GET / HTTP/1.1\r\n")
    clock.now += Deadlines().head + 1
    http.deadline_passed()
    event = http.next_event()
    assert isinstance(event, Send) and event.data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    close = http.next_event()
    assert close.status == 408 and "too slow" in close.problem


@pytest.mark.parametrize(
    "sent, status, target",
    [
        (b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n", 413, "/upload"),
        (b"POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", 408, "/slow"),
        (b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, None),  # no request to name
        (b"GET /half HTTP/1.1\r\nHost", 408, None),  # its head never came whole
    ],
)
def test_a_refusal_names_the_request_it_answers_once_its_head_was_read(sent, status, target):
    """For the access log: a body too large or too slow is refused after its head was read,
    and the log names the request (nginx's does), not "-"; a head refused has none."""
    http, clock = connection()
    if (answer := received(http, sent)) is NEED_DATA:  # (refused when its time is up)
        clock.now += Deadlines().body + Deadlines().head + 1
        http.deadline_passed()
        answer = http.next_event()
    assert isinstance(answer, Send)
    close = http.next_event()
    assert close.status == status
    assert (close.request.target if close.request else None) == target


@pytest.mark.parametrize(
    "second, status, target",
    [
        (b"POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n", 413, "/second"),
        (b"POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", 408, "/second"),
        (b"GET /b c HTTP/1.1\r\nHost: h\r\n\r\n", 400, None),
        (b"GET /half HTTP/1.1\r\nHost", 408, None),  # not the request served before it
    ],
)
def test_after_a_served_request_a_refusal_names_the_next_one_or_none(second, status, target):
    """Keep-alive, the second request in the same packet as the first: its refusal names it,
    never the request answered before it."""
    http, clock = connection()
    first = received(http, b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n" + second)
    assert first.target == "/first"
    respond(http)
    if (answer := http.next_event()) is NEED_DATA:  # (refused when its time is up)
        clock.now += Deadlines().body + Deadlines().head + 1
        http.deadline_passed()
        answer = http.next_event()
    assert isinstance(answer, Send)
    close = http.next_event()
    assert close.status == status
    assert (close.request.target if close.request else None) == target


def test_a_body_earns_time_as_its_bytes_arrive():
    http, clock = connection()
    received(http, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n")
    first = http.deadline()
    assert first == clock.now + Deadlines().body
    received(http, b"x" * 5000)
    assert http.deadline() == first + 5000 / Deadlines().body_min_rate


def test_no_read_deadline_while_the_app_has_the_request():
    http, _ = connection()
    received(http, GET)
    assert http.deadline() is None


def test_a_reset_after_the_whole_response_was_framed_is_quiet():
    # The select server's loop can send the last bytes, and see the client leave, before
    # the app's thread has ended the response: that client left between requests.
    http, _ = connection()
    received(http, GET)
    sent = http.send_head("200 OK", [("Content-Length", "2")]) + http.send_body(b"hi")
    http.took(len(sent))  # the socket took all of it
    assert http.connection_lost(ConnectionResetError("reset")) == Close()


def test_a_reset_before_the_socket_took_the_whole_response_says_how_much_arrived():
    # The app framed its whole response at once (one large bytes object), but the client
    # left with part of it: the log says so, and how much it received.
    http, _ = connection()
    received(http, GET)
    head = http.send_head("200 OK", [("Content-Length", "5000")])
    http.send_body(b"x" * 5000)
    http.took(len(head) + 1000)
    problem = http.connection_lost(ConnectionResetError("reset")).problem
    whole = len(head) + 5000
    assert problem == f"went away: reset; it received {len(head) + 1000:,} of the {whole:,} bytes of its response"


def test_a_reset_while_the_response_is_unfinished_is_a_problem():
    http, _ = connection()
    received(http, GET)
    http.send_head("200 OK", [("Content-Length", "5")])
    http.send_body(b"hi")
    assert "went away" in http.connection_lost(ConnectionResetError("reset")).problem


# --- the send deadline, and closing without losing the last answer -------------------------


def test_a_client_that_takes_nothing_is_dropped_at_its_send_deadline():
    http, clock = connection()
    received(http, GET)
    http.send_head("200 OK", [])
    assert http.send_deadline() == clock.now + Deadlines().send
    clock.now += 4
    http.took(10)  # the socket took some: the deadline starts again
    assert http.send_deadline() == clock.now + Deadlines().send
    clock.now += 4
    http.send_body(b"more")  # more to send is no progress of the client's
    assert http.send_deadline() == clock.now - 4 + Deadlines().send
    close = http.send_deadline_passed()
    assert "took none of its response" in close.problem and not close.linger
    assert http.connection_lost(ConnectionResetError("reset")) == close  # said once, the same way


def test_no_send_deadline_while_nothing_waits_for_the_client():
    http, clock = connection()
    received(http, GET)
    head = http.send_head("200 OK", [("Content-Length", "4")])
    http.took(len(head))
    assert http.send_deadline() is None  # the app may take its time: the client is not late
    clock.now += 60
    http.send_body(b"more")
    assert http.send_deadline() == clock.now + Deadlines().send  # the wait starts with the bytes


def test_what_the_client_acknowledged_restarts_the_send_deadline_only_when_it_grows():
    http, clock = connection()
    received(http, GET)
    http.send_head("200 OK", [("Content-Length", "100000")])
    http.took(50_000)  # the socket took 50,000 bytes at once, then nothing for a while
    http.send_body(b"x" * 100_000)
    started = clock.now
    clock.now += 3
    http.unacknowledged(40_000)  # the client has 10,000 of them: it reads
    assert http.send_deadline() == clock.now + Deadlines().send
    clock.now += 3
    http.unacknowledged(40_000)  # nothing more since the last look
    assert http.send_deadline() == clock.now - 3 + Deadlines().send
    http.unacknowledged(None)  # the system cannot tell: nothing learnt
    assert http.send_deadline() == started + 3 + Deadlines().send


def test_a_server_that_serves_others_meanwhile_waits_a_minute_for_a_slow_reader():
    assert Deadlines.for_server(one_at_a_time=False).send == 60  # nginx's send_timeout
    assert Deadlines.for_server(one_at_a_time=True) == Deadlines()  # a short one: 10 s
    assert Deadlines().send == 10


def test_a_file_is_sent_up_to_the_declared_length_and_no_further():
    http, _ = connection()
    received(http, GET)
    http.send_head("200 OK", [("Content-Length", "100")])
    assert http.body_allowance() == 100
    assert http.send_file_body(5000) == 100  # a file wrapped for a range: the rest stays unsent
    assert http.body_allowance() == 0 and http.response_framed
    assert http.send_end() == b"" and http.framing_error is None


def test_a_file_that_ends_early_ends_the_connection():
    http, _ = connection()
    received(http, GET)
    http.send_head("200 OK", [("Content-Length", "100")])
    http.send_file_body(100)
    http.file_ended_early(40)
    assert http.body_sent == 60 and "ended 40 bytes before" in http.framing_error
    assert http.next_event() == Close()


@pytest.mark.parametrize(
    ("request_bytes", "headers", "allowance"),
    [
        (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", [("Content-Length", "100")], 0),
        (GET, [], None),  # chunked: the body must be framed piece by piece
        (b"GET / HTTP/1.0\r\n\r\n", [], None),  # until the connection closes
    ],
)
def test_no_file_body_where_the_framing_does_not_allow_one(request_bytes, headers, allowance):
    http, _ = connection()
    received(http, request_bytes)
    http.send_head("200 OK", headers)
    assert http.body_allowance() == allowance


def test_lingering_discards_what_comes_until_the_client_closes():
    http, clock = connection()
    assert received(http, b"HELLO\r\n\r\nmore").data.startswith(b"HTTP/1.1 400")
    assert http.next_event().linger
    http.start_lingering()
    assert http.deadline() == clock.now + Deadlines().linger
    before = http.buffered_bytes
    assert received(http, b"what the client still sends") is NEED_DATA
    assert http.buffered_bytes == before  # discarded, never parsed
    assert received(http, b"") == Close()


def test_lingering_ends_quietly_at_its_deadline():
    http, clock = connection()
    received(http, b"HELLO\r\n\r\n")
    http.next_event()
    http.start_lingering()
    clock.now += Deadlines().linger
    http.deadline_passed()
    assert http.next_event() == Close()
