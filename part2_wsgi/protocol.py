"""Lesson 3, the protocol: HTTP/1.1 as bytes in, requests out, and never a socket.

Part 1 read a request and answered it in one breath, mixing socket calls with parsing.
Here the parsing stands alone: a ``RequestParser`` is *fed* whatever bytes arrived, in
pieces of any size, and asked for the next complete request. It answers with a
``Request``, with ``None`` ("feed me more"), or by raising ``HTTPError``, which carries the
status code the server should answer with (h11 calls this the error's status hint).

Because it never calls ``recv`` or ``send``:

* the blocking servers (part 2, part 3) feed it from ``sock.recv``;
* the ``selectors`` server (part 3) feeds it whatever a non-blocking read returned;
* the tests feed it byte strings, one byte at a time if they like.

The second part goes the other way: status line, headers and body framing
(Content-Length, chunked, or "until the connection closes") as bytes to send.

The last part, ``Connection``, holds the rules of one whole conversation, as h11's
``Connection`` does: when to send ``100 Continue``, whether the connection outlives the
response, what happens after an error, how long the client may take to send and to read,
how to close without losing the last answer, and that a response body never runs past the
Content-Length it declared. The servers only carry out what it decides: they move bytes
and keep time.

The rules come from RFC 9112 (HTTP/1.1 message syntax). Where a request could be read
two ways (both Content-Length and Transfer-Encoding, two different Content-Lengths, a
space before a header's colon) we refuse it: a proxy in front of us might read it the
other way, and that disagreement is how request smuggling works.
"""

import re
import time
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from typing import ClassVar, NamedTuple

# --- errors that know their status code ----------------------------------------------


# RFC 9110's phrases for two statuses our parser answers with: 413 "Content Too Large" (RFC
# 9110 renamed it; RFC 7231 said "Payload Too Large") and 414 "URI Too Long" (RFC 7231's name
# already). http.HTTPStatus kept RFC 2616's phrases for 413, 414 and 416 until Python 3.13:
# "Request Entity Too Large", "Request-URI Too Long" (416: the files app writes its own).
RFC_9110_PHRASES = {413: "Content Too Large", 414: "URI Too Long"}


class HTTPError(Exception):
    """A request we cannot serve; ``status`` is what the server should answer."""

    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = HTTPStatus(status)
        self.detail = detail

    @property
    def phrase(self):
        """For example ``"Bad Request"``: RFC 9110's name for the status."""
        return RFC_9110_PHRASES.get(self.status.value, self.status.phrase)

    @property
    def status_line(self):
        """For example ``"400 Bad Request"``."""
        return f"{self.status.value} {self.phrase}"


def bad_request(detail):
    return HTTPError(400, detail)


# --- limits: explicit, so a reader sees them and a server can change them ---------------


@dataclass(frozen=True)
class Limits:
    max_request_line: int = 8 * 1024  # longer: 414 URI Too Long
    max_head: int = 64 * 1024  # request line and headers together; longer: 431
    max_headers: int = 100  # more header lines: 431
    max_body: int = 16 * 1024 * 1024  # a larger body is refused before it is read: 413


@dataclass(frozen=True)
class Deadlines:
    """How long a client may take, in seconds: deadlines, never per-read timeouts.

    A timeout per ``recv()`` starts again with every byte, so a client that sends one
    header line every few seconds (slowloris) would hold its connection forever. A
    deadline starts once and does not move. The anchors: Apache's mod_reqtimeout gives a
    request head 20 to 40 s and a body 20 s plus 1 s per 500 bytes received; nginx's
    client_header_timeout is 60 s and its keepalive_timeout 75 s; gunicorn keeps an idle
    connection 2 s. A small workshop server can afford to be stricter than the first two.

    ``send`` runs between two bits of progress of a client reading its response (see
    ``Connection.unacknowledged``), and how long it may be depends on the server
    (``for_server``). Where others are served meanwhile (threaded, forking, select,
    prefork, asyncio), a client that pauses holds only itself, and patient readers must
    be served: ``curl --limit-rate`` reads megabytes at once and then takes nothing
    until its average is down, for most of a minute. So those wait as nginx's
    send_timeout does, 60 s. The single-threaded servers (part 2's, the iterative one)
    serve nobody else while one client reads nothing, so they keep a short deadline.
    """

    head: float = 10.0  # the whole request head, from its first byte
    body: float = 10.0  # the body, from the end of the head ...
    body_min_rate: int = 500  # ... plus one second per this many bytes received
    idle: float = 5.0  # a kept-alive connection waits this long for the next request
    send: float = 10.0  # a client that takes none of its response for this long is dropped
    linger: float = 1.0  # after the last answer, how long we read and discard what still comes

    PATIENT_SEND: ClassVar[float] = 60.0  # nginx's send_timeout

    @classmethod
    def for_server(cls, serves_others_meanwhile):
        """The defaults of a server: the patient send deadline where a client that reads
        nothing holds only itself, the short one where it holds everybody."""
        return cls(send=cls.PATIENT_SEND) if serves_others_meanwhile else cls()


# --- the request ------------------------------------------------------------------------


@dataclass
class Request:
    method: str  # "GET"
    target: str  # "/search?q=wsgi", exactly as sent
    version: str  # "HTTP/1.1"
    headers: list = field(default_factory=list)  # [(name, value)], in order, names as sent
    body: bytes = b""

    @property
    def path(self):
        """The target's path, still percent-encoded."""
        return self.target.partition("?")[0]

    @property
    def query(self):
        return self.target.partition("?")[2]

    def header(self, name):
        """The value of header ``name`` (any case); repeated headers joined with ", "."""
        name = name.lower()
        values = [value for key, value in self.headers if key.lower() == name]
        return ", ".join(values) if values else None

    @property
    def wants_keep_alive(self):
        """Whether the client wants the connection kept open after this response."""
        connection = self.header("Connection")
        if connection is None:  # the usual case: the version decides
            return self.version == "HTTP/1.1"
        tokens = {token.strip().lower() for token in connection.split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens  # HTTP/1.1 keeps connections open by default
        return "keep-alive" in tokens  # HTTP/1.0 closes them unless asked

    @property
    def expects_continue(self):
        """``Expect: 100-continue``: the client waits for our go-ahead to send the body."""
        return self.version == "HTTP/1.1" and (self.header("Expect") or "").lower() == "100-continue"


# --- the grammar, as regular expressions --------------------------------------------------

TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110's tchar: what names and methods are made of
# A request target is visible ASCII (RFC 9112 section 3, RFC 3986 section 2: other bytes
# travel percent-encoded), and never holds a fragment: "#..." stays in the browser
# (RFC 9112 section 3.2). Anything else is a 400.
TARGET = r'[!"$-~]+'  # from "!" to "~", all but "#"
REQUEST_LINE = re.compile(rf"(?P<method>{TOKEN}) (?P<target>{TARGET}) (?P<version>HTTP/\d\.\d)")
# (A header value's surrounding blanks are stripped after the match: quicker than in the pattern.)
HEADER_LINE = re.compile(rf"(?P<name>{TOKEN}):(?P<value>[^\x00-\x08\x0a-\x1f\x7f]*)")
CHUNK_SIZE_LINE = re.compile(rb"(?P<size>[0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
# A line ends with CRLF; like most servers we also accept a bare LF (telnet, nc).
END_OF_LINE = re.compile(rb"\r?\n")
END_OF_DECODED_LINE = re.compile(r"\r?\n")  # the same, in a head already decoded to text
END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


def parse_head(head, limits=Limits()):
    """Parse the request line and headers (bytes, without the blank line) into a Request."""
    # HTTP heads are octets; latin-1 maps each byte to one character and back.
    lines = END_OF_DECODED_LINE.split(head.decode("latin-1"))
    request_line = lines[0]
    if len(request_line) > limits.max_request_line:
        raise HTTPError(414, "the request line is too long")
    match = REQUEST_LINE.fullmatch(request_line)
    if not match:
        raise bad_request(f"malformed request line {request_line[:100]!r}")
    method, target, version = match["method"], match["target"], match["version"]
    version = supported_version(version)
    target, authority = origin_form(method, target)

    if len(lines) - 1 > limits.max_headers:
        raise HTTPError(431, f"more than {limits.max_headers} header fields")
    headers = [parse_header_line(line) for line in lines[1:]]
    check_host(version, headers, authority)
    if authority is not None:
        # "GET http://a.example/x" names its host in the target, and then the target
        # wins over any Host header (RFC 9112, section 3.2.2).
        headers = [(name, value) for name, value in headers if name.lower() != "host"]
        headers.append(("Host", authority))
    return Request(method, target, version, headers)


def supported_version(version):
    """HTTP/1.0 and 1.1 are served; a later 1.x is served as 1.1 (RFC 9110, section 2.5),
    because minor versions promise to stay compatible; other majors get 505."""
    major, minor = version[5], version[7]
    if major != "1":
        raise HTTPError(505, f"{version} is not supported; speak HTTP/1.0 or HTTP/1.1")
    return "HTTP/1.0" if minor == "0" else "HTTP/1.1"


def origin_form(method, target):
    """Reduce the request target to "/path?query", the form the rest of the server uses.

    Returns (target, authority): the authority ("host:port") only for an absolute target.
    """
    if target.startswith("/"):
        return target, None
    if target == "*" and method == "OPTIONS":
        return target, None
    # Absolute form, "http://host/path", is what clients send to proxies; servers must
    # accept it too (RFC 9112, section 3.2.2).
    match = re.fullmatch(r"https?://(?P<authority>[^/?#]+)(?P<rest>[/?][^#]*)?", target, re.IGNORECASE)
    if match:
        rest = match["rest"] or "/"
        return (rest if rest.startswith("/") else "/" + rest), match["authority"]
    raise bad_request(f"unsupported request target {target[:100]!r}")


def parse_header_line(line):
    if line[:1] in (" ", "\t"):
        # "obs-fold": a header continued on the next line. Obsolete, and read differently
        # by different servers, so RFC 9112 lets a server refuse it.
        raise bad_request("folded header lines are not accepted")
    match = HEADER_LINE.fullmatch(line)
    if not match:
        # This also catches "Name : value": the space before the colon is forbidden,
        # because some servers would read a header named "Name " and others "Name".
        raise bad_request(f"malformed header line {line[:100]!r}")
    return match["name"], match["value"].strip(" \t")


# RFC 3986's authority, without the userinfo that HTTP forbids there: an IP literal in
# brackets, or a name of letters, digits, "-._~", sub-delimiters and %-escapes; then an
# optional port. No spaces, no "@", no "/".
HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?")


def check_host(version, headers, authority):
    """RFC 9112, section 3.2: a server MUST answer 400 to an HTTP/1.1 request without a
    Host header (even one whose target names its host), with more than one, or with one
    whose value is not a valid host: which site was meant would be anyone's guess."""
    hosts = [value for name, value in headers if name.lower() == "host"]
    if version == "HTTP/1.1" and not hosts:
        raise bad_request("HTTP/1.1 requests must carry a Host header")
    if len(hosts) > 1:
        raise bad_request("more than one Host header")
    if authority is not None:
        hosts.append(authority)
    for host in hosts:
        if not HOST.fullmatch(host):
            raise bad_request(f"invalid host {host[:100]!r}")


# --- how long is the body? -------------------------------------------------------------------


def body_framing(request, limits=Limits()):
    """Return ("length", n) or ("chunked", None): how the request's body is delimited."""
    transfer_encoding = request.header("Transfer-Encoding")
    content_length = request.header("Content-Length")
    if transfer_encoding is not None:
        if content_length is not None:
            raise bad_request("both Transfer-Encoding and Content-Length: refused as ambiguous")
        if request.version == "HTTP/1.0":
            raise bad_request("Transfer-Encoding is not defined in HTTP/1.0")
        codings = [coding.strip().lower() for coding in transfer_encoding.split(",")]
        if codings[-1] != "chunked":
            # Without chunked last, the body would run until the connection closes;
            # for a request that is unreadable (RFC 9112, section 6.3).
            raise bad_request(f"Transfer-Encoding {transfer_encoding!r} does not end with chunked")
        if codings != ["chunked"]:
            raise HTTPError(501, f"Transfer-Encoding {transfer_encoding!r} is not implemented; only chunked is")
        return "chunked", None
    if content_length is None:
        return "length", 0
    if not content_length.isdigit() or not content_length.isascii():
        # Also refuses "5, 5" and "5, 7": two Content-Length headers.
        raise bad_request(f"invalid Content-Length {content_length!r}")
    length = int(content_length)
    if length > limits.max_body:
        raise HTTPError(413, f"a body of {length} bytes is over the limit of {limits.max_body}")
    return "length", length


# --- the incremental parser --------------------------------------------------------------------


class ChunkedState(Enum):
    """Where a chunked body's decoder stands."""

    SIZE_LINE = "at a chunk-size line"
    DATA = "inside a chunk's data"
    DATA_END = "at the CRLF after a chunk's data"
    TRAILERS = "at the trailer fields after the last chunk"


class RequestParser:
    """Feed it bytes as they arrive; take complete requests out.

        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\\r\\nHo")
        parser.next_request()              # None: the head is not complete yet
        parser.feed(b"st: example\\r\\n\\r\\n")
        parser.next_request()              # Request(method='GET', target='/', ...)

    Bytes after one request stay in the buffer for the next (pipelining, keep-alive).
    Once it raises HTTPError the stream cannot be trusted: answer and close.
    """

    def __init__(self, limits=Limits()):
        self.limits = limits
        self.buffer = bytearray()
        self.head = None  # a Request whose head is parsed and whose body is not yet whole
        self.framing = None
        self.body = bytearray()
        # A chunked body's decoder: where it stands, and how much of this chunk is to come.
        self.chunked_state = ChunkedState.SIZE_LINE
        self.bytes_in_chunk = 0

    def feed(self, data):
        self.buffer += data

    @property
    def has_partial_request(self):
        """True while some of a request has arrived: closing now would cut it off."""
        return self.head is not None or bool(self.buffer.strip(b"\r\n"))

    def next_request(self):
        """The next complete Request, or None if more bytes are needed."""
        if self.head is None and (not self.buffer or not self._read_head()):
            return None
        kind, length = self.framing
        done = self._read_chunked() if kind == "chunked" else self._read_fixed(length)
        if not done:
            return None
        request, self.head = self.head, None
        request.body = bytes(self.body)
        self.body.clear()
        return request

    def _read_head(self):
        if not self.buffer:
            return False  # nothing yet: the usual case, asked after every request on keep-alive
        # Clients may send a stray CRLF after a body; RFC 9112 says to ignore it.
        while self.buffer.startswith((b"\r\n", b"\n")):
            del self.buffer[: 2 if self.buffer[:1] == b"\r" else 1]
        end = END_OF_HEAD.search(self.buffer)
        if end is None:
            self._check_incomplete_head()
            return False
        if end.start() > self.limits.max_head:
            raise HTTPError(431, "the request head is too large")
        head = bytes(self.buffer[: end.start()])
        del self.buffer[: end.end()]
        self.head = parse_head(head, self.limits)
        self.framing = body_framing(self.head, self.limits)
        self.chunked_state = ChunkedState.SIZE_LINE
        return True

    def _check_incomplete_head(self):
        """Refuse a head that is already too long, before all of it has arrived."""
        first_line_ends = END_OF_LINE.search(self.buffer)
        first_line = first_line_ends.start() if first_line_ends else len(self.buffer)
        if first_line > self.limits.max_request_line:
            raise HTTPError(414, "the request line is too long")
        if len(self.buffer) > self.limits.max_head:
            raise HTTPError(431, "the request head is too large")

    def _read_fixed(self, length):
        if length == 0:
            return True  # no body: most requests
        take = min(length - len(self.body), len(self.buffer))
        self.body += self.buffer[:take]
        del self.buffer[:take]
        return len(self.body) == length

    def _read_chunked(self):
        """Decode "SIZE\\r\\nDATA\\r\\n ... 0\\r\\n[trailers]\\r\\n" as far as the buffer goes."""
        while True:
            if self.chunked_state is ChunkedState.SIZE_LINE:
                line = self._take_line(max_length=1024)
                if line is None:
                    return False
                match = CHUNK_SIZE_LINE.fullmatch(line)
                if not match:
                    raise bad_request(f"malformed chunk size line {line[:40]!r}")
                self.bytes_in_chunk = int(match["size"], 16)
                if len(self.body) + self.bytes_in_chunk > self.limits.max_body:
                    raise HTTPError(413, f"the chunked body is over the limit of {self.limits.max_body} bytes")
                # A chunk of size zero is the last one: trailer fields follow.
                self.chunked_state = ChunkedState.DATA if self.bytes_in_chunk else ChunkedState.TRAILERS
            if self.chunked_state is ChunkedState.TRAILERS:
                return self._skip_trailers()
            if self.chunked_state is ChunkedState.DATA:
                take = min(self.bytes_in_chunk, len(self.buffer))
                self.body += self.buffer[:take]
                del self.buffer[:take]
                self.bytes_in_chunk -= take
                if self.bytes_in_chunk:
                    return False
                self.chunked_state = ChunkedState.DATA_END
            ending = END_OF_LINE.match(self.buffer)
            if ending is None:
                if len(self.buffer) >= 2:
                    raise bad_request("chunk data is not followed by CRLF")
                return False  # wait for the CRLF
            del self.buffer[: ending.end()]
            self.chunked_state = ChunkedState.SIZE_LINE

    def _skip_trailers(self):
        """Trailer fields follow the last chunk; we read them and set them aside."""
        while True:
            line = self._take_line(max_length=self.limits.max_head)
            if line is None:
                return False
            if line == b"":
                return True

    def _take_line(self, max_length):
        """Remove and return one line (without its ending), or None if it is incomplete."""
        end = END_OF_LINE.search(self.buffer)
        if end is None:
            if len(self.buffer) > max_length:
                raise bad_request("line too long in chunked body")
            return None
        line = bytes(self.buffer[: end.start()])
        del self.buffer[: end.end()]
        return line


# --- the response: the other direction ---------------------------------------------------------


def response_head(status, headers, version="HTTP/1.1"):
    """Status line and header lines, then the blank line, as bytes."""
    lines = [f"{version} {status}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def chunk(data):
    """One piece of a chunked body: its size in hex, CRLF, the bytes, CRLF."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"  # a zero-size chunk ends a chunked body


def response_has_body(method, status_code):
    """HEAD answers, 1xx, 204 and 304 responses never have a body (RFC 9112, 6.3)."""
    return method != "HEAD" and not (100 <= status_code < 200 or status_code in (204, 304))


def response_framing(request, status_code, headers):
    """How this response's body ends: "length", "chunked", "close" or "none".

    "length": the app gave a Content-Length. "chunked": it did not, and the client
    speaks HTTP/1.1. "close": an HTTP/1.0 client; the end of the body is the end of
    the connection. "none": this response has no body at all.
    """
    if not response_has_body(request.method, status_code):
        return "none"
    if any(name.lower() == "content-length" for name, _ in headers):
        return "length"
    if request.version == "HTTP/1.1":
        return "chunked"
    return "close"


def error_response(error, version="HTTP/1.1"):
    """A complete response for an HTTPError, with a short text body, then close."""
    body = f"{error.status_line}: {error.detail}\n".encode("utf-8", "replace")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    return response_head(error.status_line, headers, version) + body


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # the go-ahead for a client that sent Expect


# --- the connection: the rules of one conversation, still without a socket -------------------


class State(Enum):
    """Where a connection stands, from the server's side."""

    IDLE = "waiting for a request"  # nothing of the next request has arrived
    RECEIVING = "receiving a request"  # some of it has: its deadline runs
    RESPONDING = "responding"  # the app has the request; the response is being written
    LINGERING = "lingering"  # our side is shut; what the client still sends is discarded
    CLOSED = "closed"  # nothing more is read or written


@dataclass(frozen=True)
class NeedData:
    """Feed me more bytes (``receive_data``), or tell me the deadline passed."""


NEED_DATA = NeedData()


class Send(NamedTuple):
    """Send these bytes to the client now (``100 Continue``, or an error response)."""

    data: bytes


class Close(NamedTuple):
    """Close the connection. ``problem`` says what went wrong, for the log (None: a normal
    end); ``status`` is the error response just sent, if any; ``linger``: the client may
    still be sending, so shut down our sending side and read on for a moment before
    closing (see ``Connection.start_lingering``)."""

    problem: str | None = None
    status: int | None = None
    linger: bool = False


class Connection:
    """One client's conversation, as events: bytes go in, decisions come out.

        http = Connection()
        http.receive_data(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        http.next_event()       # Request(method='GET', ...): run the app
        http.send_head("200 OK", [("Content-Length", "2")])   # bytes to send
        http.send_body(b"hi")   # b"hi"
        http.send_end()         # b""; the connection is idle again
        http.next_event()       # NEED_DATA

    ``next_event()`` answers with a ``Request`` to serve, ``NEED_DATA``, ``Send(bytes)``
    or ``Close(...)``. While a request is being answered, the ``send_*`` methods frame
    the response and return the bytes to send. ``persistent=False`` is the server's policy
    of one request per connection. ``clock`` is only read, never waited on. The driver
    keeps two times: ``deadline()``, when the client must have sent more by (then it calls
    ``deadline_passed()``), and ``send_deadline()``, when it must have taken more of what
    we send (then ``send_deadline_passed()``); ``sent_some(count)`` tells us how many
    bytes the socket took, and ``unacknowledged(count)`` how many of those the client has
    not yet acknowledged. So the connection knows what the client received, not only
    what we framed: a client that leaves in the middle of a response is logged with it.

    A file can be sent by the driver itself (``sendfile()``, no copy through Python): it
    asks ``body_allowance()`` how many body bytes it may still send, and reserves what it
    will send with ``send_file_body(count)``.

    What the drivers may read besides: ``client_done``, ``buffered_bytes``,
    ``response_framed``, ``keep_alive``, ``body_sent`` and ``framing_error``.
    """

    def __init__(self, persistent=True, limits=Limits(), deadlines=Deadlines(), clock=time.monotonic):
        self.parser = RequestParser(limits)
        self.persistent = persistent
        self.deadlines = deadlines
        self.clock = clock
        self.state = State.IDLE
        self.idle_since = clock()
        self.request_started = None  # when the first byte of the request being received came
        self.client_done = False  # the client has sent all it will send (end of file)
        self.body_started = None  # when the head was complete, if a body is to follow
        self.continue_sent = False
        self.pending = []  # decided events that next_event hands out first
        # The response being written:
        self.request = None
        self.framing = None  # "length", "chunked", "close" or "none": see response_framing
        self.declared_length = None
        self.body_sent = 0
        self.keep_alive = False  # will this connection carry another request after this one?
        self.framing_error = None  # how the app broke its response's framing, for the log
        # What the client received: every byte we gave the driver to send, and of those the
        # bytes its socket took (sent_some). The difference is waiting for the client.
        self.bytes_framed = 0
        self.bytes_taken = 0
        self.bytes_acknowledged = 0  # of those, the client had acknowledged this many at the last look
        self.response_start = None  # bytes_framed when the current response's head was framed
        self.response_size = None  # its head and declared body, in bytes, once known
        self.last_send = self.idle_since  # when the client last took some, or bytes began to wait
        self.dropped = None  # the Close, once we gave up on a client that does not read
        self.lingering_since = None

    # --- bytes in, events out ----------------------------------------------------------

    def receive_data(self, data):
        """Bytes from the client; ``b""`` means it closed its sending side."""
        if not data:
            self.client_done = True
        elif self.state is not State.LINGERING:  # (lingering: what comes is discarded)
            self.parser.feed(data)

    @property
    def buffered_bytes(self):
        """How many bytes received are not yet part of a request: a driver stops reading
        while the app runs if a client pipelines too much."""
        return len(self.parser.buffer)

    def next_event(self):
        if self.pending:
            return self.pending.pop(0)
        if self.state is State.LINGERING:
            if not self.client_done:
                return NEED_DATA
            self.state = State.CLOSED
            return Close()  # the client has closed too: every byte of our answer reached it
        if self.state in (State.RESPONDING, State.CLOSED):
            raise RuntimeError(f"next_event() while {self.state.value}: finish the response first")
        try:
            request = self.parser.next_request()
        except HTTPError as error:
            # The stream cannot be trusted past a malformed request: answer, then hang up.
            self.refuse(error, f"bad request: {error.status_line}: {error.detail}")
            return self.pending.pop(0)
        if request is not None:
            self.state = State.RESPONDING
            self.request, self.continue_sent, self.body_started = request, False, None
            self.framing = None  # decided by send_head, for this response
            self.response_start = self.response_size = None
            return request
        if self.parser.has_partial_request:
            if self.state is State.IDLE:
                self.state, self.request_started = State.RECEIVING, self.clock()
            head = self.parser.head
            if head is not None and self.body_started is None:
                self.body_started = self.clock()
            if head is not None and head.expects_continue and not self.continue_sent:
                # curl sends "Expect: 100-continue" before a large upload and waits for
                # this go-ahead: the head was fine (not too large, say), so send the body.
                self.continue_sent = True
                return self.framed_send(CONTINUE)
        if self.client_done:
            self.state = State.CLOSED
            if self.parser.has_partial_request:
                return Close("went away: closed the connection in the middle of a request")
            return Close()  # the client closed between requests: the normal end of keep-alive
        return NEED_DATA

    def connection_lost(self, reason):
        """The socket failed (a reset, say): close. A client that leaves between requests,
        having taken every byte we sent, is normal, and says nothing to the log; one that
        leaves in the middle of a request or of a response is not, and the log says how
        much of its response it received."""
        if self.dropped:
            return self.dropped  # we gave up on it ourselves: see send_deadline_passed
        # A response is cut short if bytes we framed wait for a socket that failed, or if
        # the app had more to send. (Closed or lingering, with every byte taken: we were
        # closing anyway, and said why when we decided to.)
        unfinished = self.state is State.RESPONDING and not self.response_framed
        cut_short = self.bytes_taken < self.bytes_framed or unfinished
        quiet = not cut_short and not self.parser.has_partial_request
        self.state = State.CLOSED
        if quiet:
            return Close()
        if cut_short and self.response_start is not None:
            return Close(f"went away: {reason}; it {self.response_progress()}")
        return Close(f"went away: {reason}")

    def response_progress(self):
        """What the client received of the current response, for the log:
        "received 24,117,248 of the 52,428,926 bytes of its response"."""
        received = max(self.bytes_taken - self.response_start, 0)
        if self.response_size is None:  # chunked, or until the connection closes: no size told
            return f"received {received:,} bytes of its response"
        return f"received {received:,} of the {self.response_size:,} bytes of its response"

    @property
    def response_framed(self):
        """Every byte the response declared has been framed for sending: the client may have
        it all, and leave, before the app's thread has said that it is done."""
        if self.state is not State.RESPONDING:
            return False
        return self.framing == "none" or (self.framing == "length" and self.body_sent == self.declared_length)

    def refuse(self, error, problem, linger=True):
        """Answer with the error's status, then close. ``linger``: the client may still be
        sending, and we read a while before closing, or our close could lose the answer."""
        self.state = State.CLOSED
        answer = error_response(error)
        self.response_start, self.response_size = self.bytes_framed, len(answer)
        self.pending += [self.framed_send(answer), Close(problem, status=error.status.value, linger=linger)]

    # --- deadlines -------------------------------------------------------------------------

    def deadline(self):
        """The clock time by which the client must have sent more, or None while responding."""
        if self.state is State.IDLE:
            return self.idle_since + self.deadlines.idle
        if self.state is State.LINGERING:
            return self.lingering_since + self.deadlines.linger
        if self.state is not State.RECEIVING:
            return None
        if self.body_started is None:
            return self.request_started + self.deadlines.head
        earned = len(self.parser.body) / self.deadlines.body_min_rate  # a slow client that keeps sending
        return self.body_started + self.deadlines.body + earned

    def deadline_passed(self):
        """The driver saw the deadline pass: a 408 if a request was under way, then close."""
        if self.state in (State.IDLE, State.LINGERING):
            self.state = State.CLOSED
            self.pending.append(Close())  # an idle kept-alive connection: nothing to report
        elif self.state is State.RECEIVING:
            part = "head" if self.body_started is None else "body"
            waited = self.clock() - self.request_started
            error = HTTPError(408, f"the request's {part} was not complete after {waited:.0f} s")
            # No lingering for a client that was too slow already: it would only win more time.
            self.refuse(error, f"too slow: {error.detail}", linger=False)

    def sent_some(self, count):
        """The driver's socket took ``count`` more bytes of what we send: the client reads,
        and its send deadline starts again.

        What the socket took, and not what we framed: a response framed at once (one
        large bytes object, a file) may take many send deadlines to reach a slow client,
        which keeps its connection as long as it takes some within each."""
        if count:
            self.bytes_taken += count
            self.last_send = self.clock()

    def unacknowledged(self, count):
        """The driver looked at its socket: of the bytes it took, ``count`` still wait for the
        client's acknowledgement (None: the system cannot tell). If the client has received
        more than at the last look, it reads, and its send deadline starts again.

        Why look, when ``sent_some`` says what the socket took? The kernel's send buffer
        takes up to a few MB at once, and the socket takes more only once a good part of
        it is free (on Linux, a third): a client reading steadily at 100 KiB/s frees that
        much only after many seconds, and would look as if it read nothing. Drivers look
        while a client keeps them waiting, and before they drop it."""
        if count is None:
            return
        received = self.bytes_taken - count
        if received > self.bytes_acknowledged:
            self.bytes_acknowledged = received
            self.last_send = self.clock()

    def will_send(self, count):
        """``count`` more bytes are given to the driver to send. If none were waiting for
        the client, the send deadline starts now: a client that took all we sent is not
        late because the app took its time to make more."""
        if count:
            if self.bytes_taken >= self.bytes_framed:
                self.last_send = self.clock()
            self.bytes_framed += count

    def framed_send(self, data):
        """``Send(data)``, counted as bytes to send."""
        self.will_send(len(data))
        return Send(data)

    def send_deadline(self):
        """The clock time by which the client must have taken more of what we send it, or
        None while nothing waits for it. A client that reads nothing holds its connection,
        and the memory of its response, no longer than ``deadlines.send``."""
        if self.bytes_taken >= self.bytes_framed:
            return None
        return self.last_send + self.deadlines.send

    def send_deadline_passed(self):
        """The driver saw the send deadline pass: drop the client, without lingering."""
        self.state = State.CLOSED
        self.dropped = Close(f"took none of its response for {self.deadlines.send:g} s: dropped")
        return self.dropped

    # --- closing without losing the last answer --------------------------------------------

    def start_lingering(self):
        """Call after a ``Close(linger=True)``, once the answer is sent and the driver has shut
        down its sending side (``shutdown(SHUT_WR)``: the client sees the end).

        If bytes the client sent are still unread when a socket closes (a body refused
        with 413, say), the kernel answers with a reset, and the client may lose the
        response we just sent. So we read on and discard, until the client closes too or
        ``deadlines.linger`` has passed: ``next_event()`` then says ``Close()``."""
        self.state, self.lingering_since = State.LINGERING, self.clock()

    # --- the response: decisions in, bytes out -------------------------------------------

    def send_head(self, status, headers, empty=False, close=False):
        """Status line and headers, with the framing headers this server adds.

        ``empty``: the app has finished and gave no body, so say Content-Length: 0 rather
        than start a chunked nothing. ``close``: end the connection after this response
        (after an app error, say)."""
        request = self.request
        headers = list(headers)
        self.framing = response_framing(request, int(status[:3]), headers)
        if empty and self.framing == "chunked":
            headers.append(("Content-Length", "0"))
            self.framing = "length"
        self.declared_length = declared_content_length(headers)
        self.keep_alive = (
            self.persistent
            and request.wants_keep_alive
            and self.framing != "close"
            and not close
            and not self.client_done
        )
        if self.framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        if request.version == "HTTP/1.1" and not self.keep_alive:
            headers.append(("Connection", "close"))
        elif request.version == "HTTP/1.0" and self.keep_alive:
            headers.append(("Connection", "keep-alive"))
        self.body_sent, self.framing_error = 0, None
        head = response_head(status, headers)
        self.response_start = self.bytes_framed
        known = self.framing == "none" or (self.framing == "length" and self.declared_length is not None)
        self.response_size = len(head) + (self.declared_length or 0) if known else None
        self.will_send(len(head))
        return head

    def send_body(self, data):
        """One piece of the body, framed: what may be sent of it.

        Never more than the declared Content-Length: past it, the rest is dropped, the
        connection ends with this response, and ``framing_error`` says why (for the log)."""
        if self.framing == "none" or self.framing_error:
            return b""  # HEAD, 1xx, 204, 304: the app's body is dropped, not sent; or it broke its word
        if self.framing == "length":
            allowed = self.declared_length - self.body_sent
            if len(data) > allowed:
                # Extra bytes on a kept-alive connection would be read as the next
                # response: a forged one, if the app echoes what a client sent.
                self.framing_error = f"the app declared Content-Length: {self.declared_length} and gave more"
                self.end_connection()
                data = data[:allowed]
        self.body_sent += len(data)
        framed = chunk(data) if self.framing == "chunked" else data
        self.will_send(len(framed))
        return framed

    def body_allowance(self):
        """How many body bytes the response may still carry, for a driver that sends them
        itself (a file, with sendfile): what is left of the declared Content-Length; 0 if
        the response has no body (HEAD, 304) or broke its framing; None if the body must be
        framed piece by piece (chunked) or has no declared length."""
        if self.framing == "none" or self.framing_error:
            return 0
        if self.framing == "length":
            return self.declared_length - self.body_sent
        return None

    def send_file_body(self, count):
        """The driver will send ``count`` bytes of a file itself: how many it may send.

        Never past the declared Content-Length. A file longer than that is no error: an
        app that answers a Range request wraps the whole file, seeked to the range's
        start, and declares the range's length."""
        allowed = min(count, self.body_allowance() or 0)
        self.body_sent += allowed
        self.will_send(allowed)
        return allowed

    def file_ended_early(self, missing):
        """The file gave ``missing`` bytes fewer than ``send_file_body`` reserved (it shrank
        meanwhile): the response cannot be finished as declared, and the connection ends."""
        self.body_sent -= missing
        self.bytes_framed -= missing
        self.framing_error = f"the file ended {missing} bytes before the Content-Length the app declared"
        self.end_connection()

    def send_end(self):
        """The body is complete: the last chunk if chunked; then the next request, or close."""
        if self.framing_error:
            return b""  # the connection has ended already: see send_body
        if self.framing == "length" and self.body_sent < self.declared_length:
            # The client waits for the rest: closing is the only way to tell it there is none.
            declared, given = self.declared_length, self.body_sent
            self.framing_error = f"the app declared Content-Length: {declared} and gave {given} bytes"
            self.end_connection()
            return b""
        self.finish_response()
        if self.framing == "chunked":
            self.will_send(len(LAST_CHUNK))
            return LAST_CHUNK
        return b""

    def end_connection(self):
        """The response cannot be finished as declared (an app error after the head went out,
        say): the connection ends with it, so that the client sees it was cut short."""
        if self.state is State.RESPONDING:
            self.keep_alive = False
            self.finish_response()

    def finish_response(self):
        self.request = None
        if self.keep_alive:
            self.state, self.idle_since = State.IDLE, self.clock()
        else:
            self.state = State.CLOSED
            self.pending.append(Close(linger=self.parser.has_partial_request))


def declared_content_length(headers):
    """The app's Content-Length as a number, or None; a bad one is the app's error."""
    values = [value.strip() for name, value in headers if name.lower() == "content-length"]
    if not values:
        return None
    if len(set(values)) > 1 or not values[0].isdigit():
        raise ValueError(f"the app gave an invalid Content-Length: {', '.join(values)}")
    return int(values[0])
