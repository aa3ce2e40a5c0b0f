"""Part 2, the protocol: the sans-I/O HTTP/1.1 parser and serialiser, tested with bytes alone.

No sockets here: a test is a byte string fed to a RequestParser (whole, one byte at a
time, or cut at random places) and the Request or HTTPError that comes out.
"""

import http.client
import io
import random
import time

import pytest

from part2_wsgi import protocol
from part2_wsgi.protocol import (
    CONTINUE,
    LAST_CHUNK,
    HTTPError,
    Limits,
    Request,
    RequestParser,
    body_framing,
    chunk,
    error_response,
    parse_head,
    parse_header_line,
    parse_header_lines,
    response_framing,
    response_has_body,
    response_head,
)

# --- helpers ---------------------------------------------------------------------------


def parse_all(data, limits=Limits()):
    """Feed ``data`` in one piece; return every complete request, in order."""
    parser = RequestParser(limits)
    parser.feed(data)
    return drain(parser)


def parse_one(data, limits=Limits()):
    requests = parse_all(data, limits)
    assert len(requests) == 1, requests
    return requests[0]


def drain(parser):
    requests = []
    while (request := parser.next_request()) is not None:
        requests.append(request)
    return requests


def parse_in_pieces(data, cuts, limits=Limits()):
    """Feed ``data`` cut at the offsets in ``cuts``, asking for requests after each piece."""
    parser = RequestParser(limits)
    requests = []
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        parser.feed(data[start:end])
        requests += drain(parser)
    assert not parser.has_partial_request, "bytes were left over after the last request"
    return requests


def status_for(data, limits=Limits()):
    """The status code the parser's HTTPError carries for ``data``."""
    parser = RequestParser(limits)
    parser.feed(data)
    with pytest.raises(HTTPError) as caught:
        drain(parser)
    return caught.value.status.value


def head(*lines):
    """A request head from lines, with CRLF endings and the blank line."""
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


GET = head(b"GET /search?q=wsgi HTTP/1.1", b"Host: example.com", b"Accept: */*")


# --- simple requests ------------------------------------------------------------------------


def test_a_simple_get_is_parsed_into_method_target_version_and_headers():
    request = parse_one(GET)
    assert request == Request("GET", "/search?q=wsgi", "HTTP/1.1", [("Host", "example.com"), ("Accept", "*/*")], b"")
    assert request.path == "/search" and request.query == "q=wsgi"


def test_headers_keep_their_order_and_case_and_repeated_ones_are_joined():
    request = parse_one(
        head(
            b"GET / HTTP/1.1",
            b"Host: h",
            b"X-Tag: one",
            b"accept: text/html",
            b"x-tag: two",
            b"X-Empty:",
            b"X-Spaces: \t padded value \t",
        )
    )
    assert request.headers == [
        ("Host", "h"),
        ("X-Tag", "one"),
        ("accept", "text/html"),
        ("x-tag", "two"),
        ("X-Empty", ""),
        ("X-Spaces", "padded value"),
    ]
    assert request.header("x-TAG") == "one, two"
    assert request.header("Accept") == "text/html"
    assert request.header("X-Empty") == ""
    assert request.header("Missing") is None


def test_header_values_may_carry_tabs_and_latin1_bytes():
    request = parse_one(head(b"GET / HTTP/1.1", b"Host: h", b"X-Name: caf\xe9\tbar"))
    assert request.header("X-Name") == "caf\xe9\tbar"


def test_the_method_is_kept_exactly_as_sent_and_left_for_the_app_to_judge():
    # Methods are case-sensitive tokens (RFC 9110, 9.1): "get" is valid syntax for an
    # unknown method, not a malformed request. The parser neither uppercases nor refuses it.
    assert parse_one(head(b"get / HTTP/1.1", b"Host: h")).method == "get"
    assert parse_one(head(b"M-SEARCH /x HTTP/1.1", b"Host: h")).method == "M-SEARCH"


@pytest.mark.parametrize(
    "version, connection, keep_alive",
    [
        (b"HTTP/1.1", None, True),
        (b"HTTP/1.1", b"close", False),
        (b"HTTP/1.1", b"Close", False),
        (b"HTTP/1.1", b"keep-alive", True),
        (b"HTTP/1.1", b"Upgrade, close", False),
        (b"HTTP/1.0", None, False),
        (b"HTTP/1.0", b"keep-alive", True),
        (b"HTTP/1.0", b"Keep-Alive", True),
        (b"HTTP/1.0", b"close", False),
    ],
)
def test_keep_alive_follows_the_version_default_and_the_connection_header(version, connection, keep_alive):
    lines = [b"GET / " + version, b"Host: h"]
    if connection is not None:
        lines.append(b"Connection: " + connection)
    assert parse_one(head(*lines)).wants_keep_alive is keep_alive


@pytest.mark.parametrize(
    "target, origin",
    [
        (b"http://example.com/a/b?x=1", "/a/b?x=1"),
        (b"HTTP://Example.com:8080/p", "/p"),
        (b"https://example.com", "/"),
        (b"http://example.com?x=1", "/?x=1"),
    ],
)
def test_an_absolute_form_target_is_reduced_to_origin_form(target, origin):
    request = parse_one(head(b"GET " + target + b" HTTP/1.1", b"Host: example.com"))
    assert request.target == origin


def test_options_star_is_accepted_and_star_is_refused_for_other_methods():
    assert parse_one(head(b"OPTIONS * HTTP/1.1", b"Host: h")).target == "*"
    assert status_for(head(b"GET * HTTP/1.1", b"Host: h")) == 400


def test_http_1_0_needs_no_host_header():
    request = parse_one(b"GET / HTTP/1.0\r\n\r\n")
    assert (request.method, request.target, request.version, request.headers) == ("GET", "/", "HTTP/1.0", [])


# --- incremental feeding -----------------------------------------------------------------------

# Several requests back to back, with every framing the parser knows: no body, a
# Content-Length body, a chunked body with extensions and trailers, bare LF endings,
# and a stray CRLF between two requests.
STREAM = (
    head(b"GET /one HTTP/1.1", b"Host: h", b"X-A: 1")
    + head(b"POST /two HTTP/1.1", b"Host: h", b"Content-Length: 11", b"Content-Type: text/plain")
    + b"hello world"
    + b"\r\n"
    + head(b"POST /three HTTP/1.1", b"Host: h", b"Transfer-Encoding: chunked")
    + b"5;name=value\r\nhello\r\n1A \r\n"
    + b"z" * 26
    + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
    + b"GET /four HTTP/1.0\nUser-Agent: nc\n\n"
)


def expected_stream_requests():
    return [
        Request("GET", "/one", "HTTP/1.1", [("Host", "h"), ("X-A", "1")]),
        Request(
            "POST",
            "/two",
            "HTTP/1.1",
            [("Host", "h"), ("Content-Length", "11"), ("Content-Type", "text/plain")],
            b"hello world",
        ),
        Request("POST", "/three", "HTTP/1.1", [("Host", "h"), ("Transfer-Encoding", "chunked")], b"hello" + b"z" * 26),
        Request("GET", "/four", "HTTP/1.0", [("User-Agent", "nc")]),
    ]


def test_pipelined_requests_in_one_feed_come_out_in_order():
    assert parse_all(STREAM) == expected_stream_requests()


def test_the_same_requests_come_out_when_fed_one_byte_at_a_time():
    assert parse_in_pieces(STREAM, range(1, len(STREAM))) == expected_stream_requests()


@pytest.mark.parametrize("seed", range(20))
def test_the_same_requests_come_out_however_the_bytes_are_cut(seed):
    rng = random.Random(seed)
    cuts = rng.sample(range(1, len(STREAM)), rng.randint(1, 40))
    assert parse_in_pieces(STREAM, cuts) == expected_stream_requests()


def test_next_request_says_none_until_the_head_is_complete():
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHo")
    assert parser.next_request() is None
    assert parser.has_partial_request
    parser.feed(b"st: example\r\n\r")
    assert parser.next_request() is None
    parser.feed(b"\n")
    assert parser.next_request().header("Host") == "example"
    assert not parser.has_partial_request


def test_a_stray_crlf_before_a_request_is_ignored():
    parser = RequestParser()
    parser.feed(b"\r\n\r\n\n")
    assert parser.next_request() is None
    assert not parser.has_partial_request  # closing now would cut nothing off
    parser.feed(GET)
    assert parser.next_request().target == "/search?q=wsgi"


def test_bare_lf_line_endings_are_accepted():
    request = parse_one(b"POST /x HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc")
    assert (request.method, request.headers, request.body) == ("POST", [("Host", "h"), ("Content-Length", "3")], b"abc")


NAMES = ["Host", "x-a", "X_B", "", "a b", "(", "\xe9"]
BLANKS = ["", " ", "\t", " \t "]
VALUES = ["", "v", "a b", "v\tw", "\xe9", "\r", "\x00", "\x7f", "q:r", " lead"]


def header_block(generator):
    """A few header lines, each well formed or not at random (about three in ten well formed:
    the others have a bad name, a control byte or a fold)."""
    lines = []
    for _ in range(generator.randint(1, 4)):
        name, value = generator.choice(NAMES), generator.choice(VALUES)
        line = f"{name}:{generator.choice(BLANKS)}{value}{generator.choice(BLANKS)}"
        lines.append(generator.choice(BLANKS[1:]) + line if generator.random() < 0.05 else line)
    return "\n".join(lines)


@pytest.mark.parametrize("seed", range(5))
def test_the_header_block_read_at_once_agrees_with_reading_it_line_by_line(seed):
    """parse_header_lines matches every line with one pattern, and goes line by line only
    to name a bad one: the two must accept and refuse the same blocks, the same way."""
    generator = random.Random(seed)
    accepted = 0
    for _ in range(400):
        fields = header_block(generator)
        try:
            expected = [parse_header_line(line) for line in fields.split("\n")]
        except HTTPError as error:
            expected = error.status.value
        try:
            seen = parse_header_lines(fields, Limits())
        except HTTPError as error:
            seen = error.status.value
        assert seen == expected, f"header block {fields!r}"
        accepted += isinstance(seen, list)
    assert 20 < accepted < 380  # both kinds were tried, many times


LONG_RUN = 60_000  # a head this long is within Limits().max_head: any client may send it


@pytest.mark.parametrize(
    "line, value",
    [
        (b"X-A:" + b" " * LONG_RUN + b"\x01", None),  # blanks, then a byte no value may hold
        (b"X-A: a" + b" \t" * (LONG_RUN // 2) + b"\x7f", None),
        (b"X-A: " + b"a " * (LONG_RUN // 2) + b"\x00", None),
        (b"X-A: a" + b" " * LONG_RUN + b"b", "a" + " " * LONG_RUN + "b"),  # blanks inside a value stay
        (b"X-A:" + b"\t" * LONG_RUN, ""),
    ],
    ids=["blanks then a control", "a, blanks and tabs, then DEL", "words then NUL", "a, blanks, b", "tabs alone"],
)
def test_a_line_of_blanks_is_read_in_one_pass(line, value):
    """A header's value is stripped of the blanks around it. A pattern that can share a run
    of blanks out in more than one way tries them all before it gives up: over a few
    thousand blanks that takes minutes, and a server with one loop serves no one meanwhile."""
    started = time.perf_counter()
    request = head(b"GET / HTTP/1.1", b"Host: h", line)
    if value is None:
        assert status_for(request) == 400
    else:
        assert parse_one(request).header("X-A") == value
    assert time.perf_counter() - started < 2  # one pass takes milliseconds, even on a busy machine


def test_the_head_limit_counts_the_head_without_the_blank_line_however_lines_end():
    limits = Limits(max_head=40)
    for ending in (b"\r\n", b"\n"):
        head = b"GET / HTTP/1.1" + ending + b"Host: " + b"h" * (40 - 20 - len(ending))
        assert len(head) == 40
        parser = RequestParser(limits)
        parser.feed(head + ending + ending)
        assert parser.next_request().header("Host") == "h" * (40 - 20 - len(ending))
        parser = RequestParser(limits)
        parser.feed(head + b"h" + ending + ending)
        with pytest.raises(HTTPError) as refused:
            parser.next_request()
        assert refused.value.status == 431


# --- bodies ---------------------------------------------------------------------------------------


def test_a_content_length_body_is_read_exactly_and_the_rest_is_the_next_request():
    parser = RequestParser()
    parser.feed(head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 5") + b"hel")
    assert parser.next_request() is None
    parser.feed(b"lo" + GET)
    assert parser.next_request().body == b"hello"
    assert parser.next_request().target == "/search?q=wsgi"


def test_a_chunked_body_with_extensions_and_trailers_is_decoded():
    body = (
        b"4\r\nWiki\r\n7;ext=1;other\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0;last\r\nExpires: never\r\nX-Sum: 42\r\n\r\n"
    )
    request = parse_one(head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: Chunked") + body)
    assert request.body == b"Wikipedia in \r\nchunks."


def test_the_serialisers_chunks_are_what_the_parser_decodes():
    pieces = [b"a", b"\r\n", bytes(range(256)) * 20]
    encoded = b"".join(chunk(piece) for piece in pieces) + LAST_CHUNK
    request = parse_one(head(b"PUT / HTTP/1.1", b"Host: h", b"Transfer-Encoding: chunked") + encoded)
    assert request.body == b"".join(pieces)


@pytest.mark.parametrize(
    "framing_headers, expected",
    [
        ([], ("length", 0)),
        ([b"Content-Length: 42"], ("length", 42)),
        ([b"Content-Length: 007"], ("length", 7)),
        ([b"Transfer-Encoding: chunked"], ("chunked", None)),
        ([b"Transfer-Encoding: CHUNKED"], ("chunked", None)),
    ],
)
def test_body_framing_reads_content_length_or_chunked(framing_headers, expected):
    request = parse_head(head(b"POST / HTTP/1.1", b"Host: h", *framing_headers)[:-4])
    assert body_framing(request) == expected


def test_the_head_of_a_request_is_known_before_its_body_arrives():
    parser = RequestParser()
    parser.feed(b"POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n")
    assert parser.next_request() is None
    assert parser.head is None  # the head is not complete yet
    parser.feed(b"\r\n")
    assert parser.next_request() is None
    assert parser.head.target == "/upload" and parser.head.expects_continue
    parser.feed(b"data")
    assert parser.next_request().body == b"data"
    assert parser.head is None


@pytest.mark.parametrize(
    "version, expect, expected",
    [
        (b"HTTP/1.1", b"100-continue", True),
        (b"HTTP/1.1", None, False),
        (b"HTTP/1.1", b"something-else", False),
        (b"HTTP/1.0", b"100-continue", False),  # a 1.0 client does not understand 100
    ],
)
def test_expects_continue(version, expect, expected):
    lines = [b"POST / " + version, b"Host: h"] + ([b"Expect: " + expect] if expect else [])
    assert parse_head(head(*lines)[:-4]).expects_continue is expected


def test_continue_is_a_complete_interim_response():
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"


# --- malformed requests and their status codes ------------------------------------------------------

POST_CHUNKED = head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: chunked")

MALFORMED = {
    # 400 Bad Request: the request cannot be read, or could be read two ways
    "garbage request line": (b"GARBAGE\r\n\r\n", 400),
    "missing version": (head(b"GET /", b"Host: h"), 400),
    "extra word in request line": (head(b"GET / HTTP/1.1 extra", b"Host: h"), 400),
    "two spaces in request line": (head(b"GET  / HTTP/1.1", b"Host: h"), 400),
    "not HTTP": (head(b"GET / SPDY/3", b"Host: h"), 400),
    "lowercase protocol name": (head(b"GET / http/1.1", b"Host: h"), 400),
    "invalid method characters": (head(b"GE(T / HTTP/1.1", b"Host: h"), 400),
    "non-ascii method": (head(b"G\xc9T / HTTP/1.1", b"Host: h"), 400),
    "target with a control character": (head(b"GET /a\x01b HTTP/1.1", b"Host: h"), 400),
    "target that is neither a path nor a URL": (head(b"GET example.com/ HTTP/1.1", b"Host: h"), 400),
    # raw bytes beyond ASCII travel percent-encoded (RFC 9112 section 3, RFC 3986 section 2)
    "target with a raw latin-1 byte": (head(b"GET /api/\xe9esource HTTP/1.1", b"Host: h"), 400),
    "target with raw UTF-8": (head(b"GET /\xce\xb4\xc2\xb6/ HTTP/1.1", b"Host: h"), 400),
    # a fragment never leaves the browser (RFC 9112 section 3.2)
    "target with a fragment": (head(b"GET /forums/1/topics/2375?page=1#posts-17408 HTTP/1.1", b"Host: h"), 400),
    "header line without a colon": (head(b"GET / HTTP/1.1", b"Host: h", b"no colon here"), 400),
    "header with an empty name": (head(b"GET / HTTP/1.1", b"Host: h", b": value"), 400),
    "header name with invalid characters": (head(b"GET / HTTP/1.1", b"Host: h", b"X(Y): 1"), 400),
    "space before the colon": (head(b"GET / HTTP/1.1", b"Host : h"), 400),
    "obs-fold continuation line": (head(b"GET / HTTP/1.1", b"Host: h", b"X-A: one", b"  two"), 400),
    "obs-fold with a tab": (head(b"GET / HTTP/1.1", b"Host: h", b"X-A: one", b"\ttwo"), 400),
    "control character in a header value": (head(b"GET / HTTP/1.1", b"Host: h", b"X-A: a\x01b"), 400),
    "DEL in a header value": (head(b"GET / HTTP/1.1", b"Host: h", b"X-A: a\x7fb"), 400),
    "bare CR in a header value": (head(b"GET / HTTP/1.1", b"Host: h", b"X-A: a\rb"), 400),
    "HTTP/1.1 without Host": (head(b"GET / HTTP/1.1", b"Accept: */*"), 400),
    "two Host headers": (head(b"GET / HTTP/1.1", b"Host: a", b"Host: b"), 400),
    "two Host headers on HTTP/1.0": (head(b"GET / HTTP/1.0", b"Host: a", b"Host: b"), 400),
    "Content-Length not a number": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: ten"), 400),
    "Content-Length negative": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: -1"), 400),
    "Content-Length with a sign": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: +5"), 400),
    "Content-Length in hex": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 0x10"), 400),
    "Content-Length empty": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length:"), 400),
    "Content-Length with non-ascii digits": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: \xb2"), 400),
    "two Content-Lengths 5 and 7": (
        head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 5", b"Content-Length: 7") + b"hello",
        400,
    ),
    "Content-Length list 5, 7": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 5, 7") + b"hello", 400),
    "Content-Length and Transfer-Encoding": (
        head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 5", b"Transfer-Encoding: chunked") + b"0\r\n\r\n",
        400,
    ),
    "Transfer-Encoding on HTTP/1.0": (head(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked") + b"0\r\n\r\n", 400),
    "Transfer-Encoding not ending in chunked": (head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: gzip"), 400),
    "Transfer-Encoding chunked then gzip": (
        head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: chunked, gzip"),
        400,
    ),
    "empty Transfer-Encoding": (head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding:"), 400),
    "chunk size not hex": (POST_CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "chunk size line empty": (POST_CHUNKED + b"\r\nhello\r\n0\r\n\r\n", 400),
    "negative chunk size": (POST_CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk data not followed by CRLF": (POST_CHUNKED + b"3\r\nhelloworld\r\n0\r\n\r\n", 400),
    "chunk size line that never ends": (POST_CHUNKED + b"1" * 2000, 400),
    # 413 Content Too Large: refused from the head alone, before any body byte
    "Content-Length over the limit": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 16777217"), 413),
    "huge Content-Length": (head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 99999999999999999999"), 413),
    "one chunk over the limit": (POST_CHUNKED + b"1000001\r\n", 413),
    # 414 URI Too Long
    "request line over the limit, head complete": (head(b"GET /" + b"a" * 8200 + b" HTTP/1.1", b"Host: h"), 414),
    "request line over the limit, no newline yet": (b"GET /" + b"a" * 9 * 1024, 414),
    # 431 Request Header Fields Too Large
    "too many header lines": (head(b"GET / HTTP/1.1", b"Host: h", *[b"X-%d: %d" % (n, n) for n in range(100)]), 431),
    "head over the limit, complete": (
        head(b"GET / HTTP/1.1", b"Host: h", *[b"X-%d: " % n + b"v" * 4000 for n in range(17)]),
        431,
    ),
    "head over the limit, still arriving": (head(b"GET / HTTP/1.1", b"Host: h")[:-2] + b"X-Big: " + b"v" * 70_000, 431),
    # 501 Not Implemented: a transfer coding we do not decode
    "gzip, chunked": (head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: gzip, chunked"), 501),
    "gzip then chunked on two lines": (
        head(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"),
        501,
    ),
    # 505 HTTP Version Not Supported: another major version
    "HTTP/2.0": (head(b"GET / HTTP/2.0", b"Host: h"), 505),
    "HTTP/3.0": (head(b"GET / HTTP/3.0", b"Host: h"), 505),
    "HTTP/0.9": (head(b"GET / HTTP/0.9", b"Host: h"), 505),
}


@pytest.mark.parametrize("data, status", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_raise_http_error_with_their_status(data, status):
    assert status_for(data) == status


@pytest.mark.parametrize("data, status", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_refused_however_they_are_cut(data, status):
    rng = random.Random(len(data))
    cuts = sorted(rng.sample(range(1, len(data)), min(8, len(data) - 1)))
    parser = RequestParser()
    with pytest.raises(HTTPError) as caught:
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=False):
            parser.feed(data[start:end])
            drain(parser)
    assert caught.value.status.value == status


def test_a_request_line_just_under_the_limit_is_fine_and_just_over_is_414():
    limits = Limits(max_request_line=100)
    line = b"GET /" + b"a" * (100 - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == 100
    assert parse_one(head(line, b"Host: h"), limits).method == "GET"
    assert status_for(head(line.replace(b"GET /", b"GET /a"), b"Host: h"), limits) == 414


def test_a_long_request_line_is_refused_before_its_end_arrives():
    parser = RequestParser(Limits(max_request_line=100))
    parser.feed(b"GET /" + b"a" * 90)
    assert parser.next_request() is None  # not over the limit yet: wait
    parser.feed(b"a" * 20)
    with pytest.raises(HTTPError) as caught:
        parser.next_request()
    assert caught.value.status.value == 414


def test_header_count_limit_is_exact():
    limits = Limits(max_headers=3)
    assert parse_one(head(b"GET / HTTP/1.1", b"Host: h", b"A: 1", b"B: 2"), limits).header("B") == "2"
    assert status_for(head(b"GET / HTTP/1.1", b"Host: h", b"A: 1", b"B: 2", b"C: 3"), limits) == 431


def test_a_body_over_the_limit_is_refused_before_any_of_it_arrives():
    parser = RequestParser(Limits(max_body=10))
    parser.feed(head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 11"))  # the head only
    with pytest.raises(HTTPError) as caught:
        parser.next_request()
    assert caught.value.status.value == 413
    # ... while a body exactly at the limit is read.
    assert (
        parse_one(head(b"POST / HTTP/1.1", b"Host: h", b"Content-Length: 10") + b"0123456789", Limits(max_body=10)).body
        == b"0123456789"
    )


def test_a_chunked_body_that_grows_over_the_limit_is_413():
    limits = Limits(max_body=10)
    parser = RequestParser(limits)
    parser.feed(POST_CHUNKED + b"6\r\nabcdef\r\n")
    assert parser.next_request() is None  # 6 bytes so far: fine
    parser.feed(b"5\r\n")  # 11 announced: refused before the data is read
    with pytest.raises(HTTPError) as caught:
        parser.next_request()
    assert caught.value.status.value == 413
    exactly = POST_CHUNKED + b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"
    assert parse_one(exactly, limits).body == b"abcdefghij"


def test_http_1_2_is_served_as_http_1_1_not_refused_with_505():
    # RFC 9110, 2.5: a recipient that receives a message with a major version it implements
    # and a higher minor version SHOULD process it as the highest minor version it supports.
    # RFC 9112, 2.3 reserves 505 for refusing the client's *major* version.
    request = parse_one(head(b"GET / HTTP/1.2", b"Host: h"))
    assert request.wants_keep_alive  # HTTP/1.1's default, not HTTP/1.0's
    assert response_framing(request, 200, []) == "chunked"


def test_http_error_knows_its_status_line():
    error = HTTPError(431, "too big")
    assert error.status_line == "431 Request Header Fields Too Large"
    assert error.detail == "too big" and str(error) == "too big"


@pytest.mark.parametrize("status, line", [(413, "413 Content Too Large"), (414, "414 URI Too Long")])
def test_413_and_414_carry_rfc_9110_names_on_every_python(status, line):
    # http.HTTPStatus names them so only from Python 3.13 on.
    assert HTTPError(status, "too big").status_line == line


def test_a_percent_encoded_target_is_still_fine():
    assert parse_one(head(b"GET /%CE%B4?q=%C3%A9&x=%23 HTTP/1.1", b"Host: h")).target == "/%CE%B4?q=%C3%A9&x=%23"


# --- the serialiser -------------------------------------------------------------------------------


def test_response_head_is_a_status_line_headers_and_a_blank_line():
    assert response_head("200 OK", [("Content-Type", "text/plain"), ("X-A", "caf\xe9")]) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: caf\xe9\r\n\r\n"
    )
    assert response_head("404 Not Found", [], "HTTP/1.0") == b"HTTP/1.0 404 Not Found\r\n\r\n"


@pytest.mark.parametrize(
    "data, encoded",
    [
        (b"hello", b"5\r\nhello\r\n"),
        (b"x" * 255, b"ff\r\n" + b"x" * 255 + b"\r\n"),
        (b"\r\n", b"2\r\n\r\n\r\n"),
    ],
)
def test_chunk_is_hex_size_crlf_data_crlf(data, encoded):
    assert chunk(data) == encoded


def test_the_last_chunk_is_zero_size_and_a_blank_line():
    assert LAST_CHUNK == b"0\r\n\r\n"


@pytest.mark.parametrize(
    "method, version, status, headers, framing",
    [
        ("GET", "HTTP/1.1", 200, [("Content-Length", "5")], "length"),
        ("GET", "HTTP/1.1", 200, [("content-length", "5")], "length"),
        ("GET", "HTTP/1.0", 200, [("Content-Length", "5")], "length"),
        ("GET", "HTTP/1.1", 200, [], "chunked"),
        ("POST", "HTTP/1.1", 500, [("Content-Type", "text/plain")], "chunked"),
        ("GET", "HTTP/1.0", 200, [], "close"),
        ("HEAD", "HTTP/1.1", 200, [], "none"),
        ("HEAD", "HTTP/1.1", 200, [("Content-Length", "5")], "none"),
        ("GET", "HTTP/1.1", 204, [], "none"),
        ("GET", "HTTP/1.1", 304, [("Content-Length", "5")], "none"),
        ("GET", "HTTP/1.0", 304, [], "none"),
        ("GET", "HTTP/1.1", 101, [], "none"),
    ],
)
def test_response_framing(method, version, status, headers, framing):
    request = Request(method, "/", version, [("Host", "h")])
    assert response_framing(request, status, headers) == framing


@pytest.mark.parametrize(
    "method, status, has_body",
    [
        ("GET", 200, True),
        ("HEAD", 200, False),
        ("GET", 199, False),
        ("GET", 204, False),
        ("GET", 304, False),
        ("GET", 205, True),
        ("POST", 404, True),
    ],
)
def test_response_has_body(method, status, has_body):
    assert response_has_body(method, status) is has_body


class _BytesSocket:
    """Just enough of a socket for http.client.HTTPResponse to read from."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


@pytest.mark.parametrize("status", [400, 413, 414, 431, 501, 505])
def test_an_error_response_is_a_valid_complete_response_that_closes(status):
    error = HTTPError(status, "because \u2603")
    raw = error_response(error)
    response = http.client.HTTPResponse(_BytesSocket(raw))
    response.begin()
    body = response.read()
    assert (response.status, response.version) == (status, 11)
    assert response.reason == error.phrase
    assert response.getheader("Connection") == "close"
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert int(response.getheader("Content-Length")) == len(body)
    assert body.decode("utf-8") == f"{status} {error.phrase}: because \u2603\n"
    assert raw.endswith(body)  # nothing after the body


# --- Host, RFC 9112 section 3.2 ------------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        [b"GET / HTTP/1.1"],
        [b"GET http://a.example/ HTTP/1.1"],  # the target names a host, but Host is still required
        [b"GET / HTTP/1.1", b"Host: a, b"],
        [b"GET / HTTP/1.1", b"Host: user@host"],
        [b"GET / HTTP/1.1", b"Host: a.example/x"],
        [b"GET / HTTP/1.1", b"Host: a", b"Host: b"],
        [b"GET / HTTP/1.0", b"Host: a", b"Host: a"],
        [b"GET http://user@a.example/ HTTP/1.1", b"Host: a.example"],
    ],
    ids=["missing", "absolute-form-without-host", "list", "userinfo", "path", "two", "two-in-1.0", "userinfo-target"],
)
def test_a_missing_repeated_or_invalid_host_is_a_400(lines):
    with pytest.raises(HTTPError) as caught:
        parse_head(head(*lines)[:-4])
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "host", [b"a.example", b"a.example:8080", b"127.0.0.1", b"[::1]:8888", b"", b"xn--caf-dma.example"]
)
def test_valid_hosts_are_accepted(host):
    assert parse_head(head(b"GET / HTTP/1.1", b"Host: " + host)[:-4]).header("Host") == host.decode()


def test_http_1_0_may_omit_host():
    assert parse_head(head(b"GET / HTTP/1.0")[:-4]).header("Host") is None


def test_a_head_trickled_in_pieces_is_searched_once_not_once_per_piece(monkeypatch):
    # A client may send its head four bytes at a time: if each piece made the parser
    # search the whole head again for its end, a 60 KB head would cost it nearly half a
    # gigabyte of searching, and a few such clients would hold a server's CPU.
    searched = []
    pattern = protocol.END_OF_HEAD

    class CountingPattern:
        def search(self, buffer, position=0):
            searched.append(len(buffer) - position)
            return pattern.search(buffer, position)

    monkeypatch.setattr(protocol, "END_OF_HEAD", CountingPattern())
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%04d: %s\r\n" % (i, b"v" * 40) for i in range(1200))
    parser = RequestParser(Limits(max_headers=2000))
    for start in range(0, len(head), 4):
        parser.feed(head[start : start + 4])
        assert parser.next_request() is None
    parser.feed(b"\r\n")
    request = parser.next_request()
    assert request.header("X-1199") == "v" * 40
    assert sum(searched) < 3 * len(head)
