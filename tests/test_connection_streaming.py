"""connection.py's ``Connection`` in streaming mode: the head, then the body as the app asks.

An ASGI app has the request as soon as its head is whole, and asks for its body piece by
piece (``receive()``). The driver says so (``want_body``) and asks ``next_event`` for a
``BodyData``, then ``END_OF_BODY``. One case table runs three ways, as h11's tests do:
the request whole, one byte at a time, and followed by the next request (pipelining).
"""

import pytest

from part2_wsgi.connection import END_OF_BODY, NEED_DATA, BodyData, Close, Connection, Deadlines, Send, State
from part2_wsgi.protocol import CONTINUE, Limits, Request

GET = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def streaming(**options):
    clock = Clock()
    return Connection(streaming=True, clock=clock, **options), clock


def respond(http, body=b"ok"):
    out = http.send_head("200 OK", [("Content-Length", str(len(body)))])
    return out + http.send_body(body) + http.send_end()


def read_body(http, pieces):
    """Feed ``pieces`` one at a time, asking for the body as an app would; return the
    Request, the body's pieces as handed out, and what the connection asked to send.
    What is left of ``pieces`` stays in the list."""
    request, body, sent = None, [], []
    while True:
        if request is None:
            event = http.next_event()
        else:
            http.want_body()
            event = http.next_event()
        if isinstance(event, Request):
            request = event
        elif isinstance(event, BodyData):
            body.append(event.data)
        elif isinstance(event, Send):
            sent.append(event.data)
        elif event is END_OF_BODY:
            return request, body, sent
        elif event is NEED_DATA:
            if not pieces:
                raise AssertionError("the body never ended")
            http.receive_data(pieces.pop(0))
        else:
            raise AssertionError(f"unexpected {event!r}")


CASES = {
    "length": (b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", b"hello world"),
    "chunked": (
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"hello world",
    ),
    "chunked-trailer": (
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        b"abc",
    ),
}


def whole(data):
    return [data]


def byte_by_byte(data):
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("split", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize("case", CASES)
def test_the_body_comes_out_as_it_arrives_then_the_next_request(case, split):
    raw, expected = CASES[case]
    http, _ = streaming()
    pieces = split(raw + GET)
    request, body, sent = read_body(http, pieces)
    assert request.method == "POST" and request.body == b"" and sent == []
    assert b"".join(body) == expected
    if split is byte_by_byte and case == "length":
        assert len(body) == len(expected)  # each byte handed out as it came, never gathered
    assert http.state is State.RESPONDING
    respond(http)
    assert http.keep_alive and http.state is State.IDLE
    for piece in pieces:
        http.receive_data(piece)
    assert http.next_event().target == "/next"  # pipelined after the streamed body


def test_a_request_without_a_body_goes_straight_to_responding():
    http, _ = streaming()
    http.receive_data(GET + GET)
    assert isinstance(http.next_event(), Request)
    assert http.state is State.RESPONDING and not http.receiving_body
    respond(http)
    assert http.next_event().target == "/next"


def test_the_body_waits_until_the_app_asks():
    http, _ = streaming()
    http.receive_data(CASES["length"][0])
    assert isinstance(http.next_event(), Request)
    assert http.receiving_body
    with pytest.raises(RuntimeError):
        http.next_event()  # the app has not asked: nothing to hand out
    http.want_body()
    assert http.next_event() == BodyData(b"hello world")
    http.want_body()
    assert http.next_event() is END_OF_BODY


EXPECT = b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_100_continue_goes_out_at_the_apps_first_ask_and_only_then():
    http, _ = streaming()
    http.receive_data(EXPECT)
    assert isinstance(http.next_event(), Request)
    http.want_body()
    assert http.next_event() == Send(CONTINUE)
    assert http.next_event() is NEED_DATA
    http.receive_data(b"hello")
    assert http.next_event() == BodyData(b"hello")
    http.want_body()
    assert http.next_event() is END_OF_BODY  # and no second 100


def test_an_app_that_answers_without_reading_sends_no_100_and_the_connection_closes():
    http, _ = streaming()
    http.receive_data(EXPECT)
    assert isinstance(http.next_event(), Request)
    raw = respond(http)
    assert b"100 Continue" not in raw and b"Connection: close" in raw
    assert http.state is State.CLOSED
    assert http.next_event() == Close(linger=True)


def test_no_100_continue_once_a_response_head_has_gone_out():
    # A streaming echo starts its response, then reads: a 100 now would land in its body.
    http, _ = streaming()
    http.receive_data(EXPECT)
    assert isinstance(http.next_event(), Request)
    http.send_head("200 OK", [])
    http.want_body()
    assert http.next_event() is NEED_DATA
    http.receive_data(b"hello")
    assert http.next_event() == BodyData(b"hello")


def test_http_1_0_never_gets_a_100():
    http, _ = streaming()
    request, body, sent = read_body(http, [EXPECT.replace(b"HTTP/1.1", b"HTTP/1.0") + b"hello"])
    assert sent == [] and body == [b"hello"]


def test_an_unread_body_that_is_all_here_is_dropped_and_the_connection_goes_on():
    http, _ = streaming()
    http.receive_data(CASES["chunked"][0] + GET)
    assert isinstance(http.next_event(), Request)
    respond(http)  # the app never asked for the body
    assert http.keep_alive and http.state is State.IDLE
    assert http.next_event().target == "/next"


def test_an_unread_body_still_to_come_closes_the_connection():
    http, _ = streaming()
    http.receive_data(CASES["length"][0][:-3])
    assert isinstance(http.next_event(), Request)
    respond(http)
    assert http.state is State.CLOSED and http.next_event() == Close(linger=True)


def test_the_body_deadline_runs_only_while_the_app_asks():
    http, clock = streaming(deadlines=Deadlines(body=10, body_min_rate=1000))
    http.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
    assert isinstance(http.next_event(), Request)
    assert http.deadline() is None  # the app has not asked yet
    clock.now += 100  # a slow app: no client is late for that
    http.want_body()
    assert http.next_event() == BodyData(b"ab")
    assert http.deadline() is None
    clock.now += 100
    http.want_body()
    assert http.next_event() is NEED_DATA
    assert http.deadline() == pytest.approx(clock.now + 10 + 2 / 1000)
    clock.now += 4
    http.receive_data(b"cd")
    assert http.next_event() == BodyData(b"cd")
    clock.now += 50
    http.want_body()
    http.next_event()
    # 4 s of the 10 are spent: waiting, not the app's 150 s in between.
    assert http.deadline() == pytest.approx(clock.now + 6 + 4 / 1000)
    clock.now = http.deadline()
    http.deadline_passed()
    assert http.next_event().data.startswith(b"HTTP/1.1 408")
    assert http.next_event().status == 408


def test_a_late_body_after_the_response_head_closes_without_a_408():
    http, clock = streaming(deadlines=Deadlines(body=1))
    http.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n")
    assert isinstance(http.next_event(), Request)
    http.send_head("200 OK", [])
    http.want_body()
    assert http.next_event() is NEED_DATA
    clock.now += 2
    http.deadline_passed()
    event = http.next_event()
    assert isinstance(event, Close) and event.status is None and "too slow" in event.problem


def test_reading_stops_above_the_high_water_mark():
    http, _ = streaming(high_water=100)
    http.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n")
    assert isinstance(http.next_event(), Request)
    http.receive_data(b"x" * 101)
    assert not http.should_read
    http.want_body()
    assert http.next_event() == BodyData(b"x" * 101)
    assert http.should_read


def test_a_client_that_leaves_in_the_middle_of_a_body():
    http, _ = streaming()
    http.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
    assert isinstance(http.next_event(), Request)
    http.receive_data(b"")
    http.want_body()
    assert http.next_event() == BodyData(b"ab")
    http.want_body()
    event = http.next_event()
    assert isinstance(event, Close) and "went away" in event.problem


def test_a_malformed_chunk_is_a_400_if_no_response_went_out():
    http, _ = streaming()
    http.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert isinstance(http.next_event(), Request)
    http.want_body()
    assert http.next_event().data.startswith(b"HTTP/1.1 400")
    assert http.next_event().status == 400


def test_max_body_bounds_what_one_request_sends_in_all():
    http, _ = streaming(limits=Limits(max_body=10))
    http.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n")
    assert isinstance(http.next_event(), Request)
    http.want_body()
    assert http.next_event() == BodyData(b"12345678")
    http.receive_data(b"8\r\n12345678\r\n")
    http.want_body()
    assert http.next_event().data.startswith(b"HTTP/1.1 413")
    close = http.next_event()
    assert close.status == 413 and close.request.target == "/"  # the access log names it


def test_without_streaming_the_body_still_comes_whole_with_the_request():
    http = Connection()
    http.receive_data(CASES["chunked"][0])
    request = http.next_event()
    assert isinstance(request, Request) and request.body == b"hello world"
