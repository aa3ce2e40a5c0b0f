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

This is message syntax only, as h11's readers and writers are. The rules of a whole
conversation (keep-alive, ``100 Continue``, what follows an error, deadlines) live in
connection.py's ``Connection``, which uses this module and which every server drives.

The rules come from RFC 9112 (HTTP/1.1 message syntax). Where a request could be read
two ways (both Content-Length and Transfer-Encoding, two different Content-Lengths, a
space before a header's colon) we refuse it: a proxy in front of us might read it the
other way, and that disagreement is how request smuggling works.
"""

import re
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus

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
    # A larger body is refused before it is read: 413. Read whole (WSGI), a body is held in
    # memory, and this bounds that memory; streamed (ASGI, connection.py), the server holds
    # no more than a high-water mark of it and one read more (a driver asks should_read
    # between reads), and this only bounds what one request may send in all, as nginx's
    # client_max_body_size does: a policy, not memory.
    max_body: int = 16 * 1024 * 1024


# --- the request ------------------------------------------------------------------------


@dataclass
class Request:
    method: str  # "GET"
    target: str  # "/search?q=wsgi", exactly as sent
    version: str  # "HTTP/1.1"
    headers: list = field(default_factory=list)  # [(name, value)], in order, names as sent
    body: bytes = b""
    # The headers' values by lower-case name, made at the first look-up (header): a server
    # asks for five or six headers of every request, and each would read the whole list.
    _by_name: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def path(self):
        """The target's path, still percent-encoded."""
        return self.target.partition("?")[0]

    @property
    def query(self):
        return self.target.partition("?")[2]

    def header(self, name):
        """The value of header ``name`` (any case); repeated headers joined with ", "."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def header_values(self, name):
        """Every value of header ``name`` (any case), in order: [] if it was not sent."""
        if self._by_name is None:
            self._by_name = by_name(self.headers)
        return self._by_name.get(name.lower(), [])

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


def by_name(headers):
    """``{"content-type": ["text/plain"], ...}``: each lower-case name's values, in order."""
    index = {}
    for name, value in headers:
        index.setdefault(name.lower(), []).append(value)
    return index


# --- the grammar, as regular expressions --------------------------------------------------

TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110's tchar: what names and methods are made of
# A request target is visible ASCII (RFC 9112 section 3, RFC 3986 section 2: other bytes
# travel percent-encoded), and never holds a fragment: "#..." stays in the browser
# (RFC 9112 section 3.2). Anything else is a 400.
TARGET = r'[!"$-~]+'  # from "!" to "~", all but "#"
REQUEST_LINE = re.compile(rf"(?P<method>{TOKEN}) (?P<target>{TARGET}) (?P<version>HTTP/\d\.\d)")
# One header line (parse_header_line, which names a bad line; the value's surrounding
# blanks are stripped after the match).
HEADER_LINE = re.compile(rf"(?P<name>{TOKEN}):(?P<value>[^\x00-\x08\x0a-\x1f\x7f]*)")
# The same rule for every line of a head's header block at once, the values coming out
# without the blanks around them: one call into the regular expression engine instead of
# one per line (parse_header_lines). The
# value is runs of visible characters with blanks between them, so that a line that does
# not match fails in one pass: a value that could begin or end on a blank would let the
# engine try every way of sharing a run of blanks out, and a line of a few thousand
# blanks would hold the server for minutes.
VISIBLE = r"[^\x00-\x20\x7f]"  # what a value may hold but blanks (space, tab) and control characters
HEADER_FIELDS = re.compile(rf"^({TOKEN}):[ \t]*(?:({VISIBLE}+(?:[ \t]+{VISIBLE}+)*)[ \t]*)?$", re.MULTILINE)
CHUNK_SIZE_LINE = re.compile(rb"(?P<size>[0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
# A line ends with CRLF; like most servers we also accept a bare LF (telnet, nc).
END_OF_LINE = re.compile(rb"\r?\n")
# The blank line that ends a head, found from its first LF: a pattern that begins with a
# fixed byte is searched for quickly, and the CR before that LF, if any, is the head's end.
END_OF_HEAD = re.compile(rb"\n\r?\n")


def parse_head(head, limits=Limits()):
    """Parse the request line and headers (bytes or a bytearray, without the blank line)
    into a Request."""
    # HTTP heads are octets; latin-1 maps each byte to one character and back.
    request_line, _, fields = head.decode("latin-1").replace("\r\n", "\n").partition("\n")
    if len(request_line) > limits.max_request_line:
        raise HTTPError(414, "the request line is too long")
    match = REQUEST_LINE.fullmatch(request_line)
    if not match:
        raise bad_request(f"malformed request line {request_line[:100]!r}")
    method, target, version = match.groups()
    if version != "HTTP/1.1":  # (the usual version and target need no second look)
        version = supported_version(version)
    target, authority = (target, None) if target[0] == "/" else origin_form(method, target)

    headers = parse_header_lines(fields, limits)
    request = Request(method, target, version, headers)
    check_host(request, authority)
    if authority is not None:
        # "GET http://a.example/x" names its host in the target, and then the target
        # wins over any Host header (RFC 9112, section 3.2.2).
        headers = [(name, value) for name, value in headers if name.lower() != "host"]
        headers.append(("Host", authority))
        request = Request(method, target, version, headers)
    return request


def parse_header_lines(fields, limits):
    """The header block's lines ("\\n" between them) as (name, value) pairs. All lines are
    matched at once; if one does not match, parse_header_line finds it and says why."""
    if not fields:
        return []
    if fields.count("\n") >= limits.max_headers:
        raise HTTPError(431, f"more than {limits.max_headers} header fields")
    headers = HEADER_FIELDS.findall(fields)
    if len(headers) <= fields.count("\n"):  # a line did not match
        headers = [parse_header_line(line) for line in fields.split("\n")]
    return headers


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
# (The name's characters are written as runs between %-escapes: one alternative for each
# character would make the engine try both at every one of them.)
HOST_CHARACTER = r"[A-Za-z0-9\-._~!$&'()*+,;=]"
HOST = re.compile(rf"(?:\[[0-9A-Fa-f:.]+\]|{HOST_CHARACTER}*(?:%[0-9A-Fa-f]{{2}}{HOST_CHARACTER}*)*)(?::[0-9]*)?")


def check_host(request, authority):
    """RFC 9112, section 3.2: a server MUST answer 400 to an HTTP/1.1 request without a
    Host header (even one whose target names its host), with more than one, or with one
    whose value is not a valid host: which site was meant would be anyone's guess."""
    hosts = request.header_values("Host")
    if request.version == "HTTP/1.1" and not hosts:
        raise bad_request("HTTP/1.1 requests must carry a Host header")
    if len(hosts) > 1:
        raise bad_request("more than one Host header")
    for host in hosts if authority is None else [*hosts, authority]:
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

    Or, streaming (an ASGI server hands the body to the app as it comes): ``next_head()``
    gives the request as soon as its head is whole, and ``take_body()`` the body bytes
    decoded since, until it says the body is complete.
    """

    def __init__(self, limits=Limits()):
        self.limits = limits
        self.buffer = bytearray()
        self.head = None  # a Request whose head is parsed and whose body is not yet whole
        self.framing = None
        self.body = bytearray()  # decoded body bytes not yet handed out
        self.body_received = 0  # decoded body bytes of this request so far, handed out or not
        # A chunked body's decoder: where it stands, and how much of this chunk is to come.
        self.chunked_state = ChunkedState.SIZE_LINE
        self.bytes_in_chunk = 0
        # How far the buffer was searched for a head's end: a head trickled in a thousand
        # pieces is searched a thousand times, and each search starts where the last one
        # stopped, not at the head's first byte again.
        self.head_searched = 0

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
        if not self._read_body():
            return None
        request, self.head = self.head, None
        request.body = bytes(self.body)
        self.body.clear()
        return request

    def next_head(self):
        """Streaming: the next Request as soon as its head is whole (its ``body`` stays
        empty: ``take_body`` hands it out, unless it has none), or None if more bytes are
        needed."""
        if self.head is None and self.buffer and self._read_head():
            request = self.head
            if self.framing == ("length", 0):
                self.head = None  # no body to hand out: the parser moves on to the next request
            return request
        return None

    def take_body(self):
        """Streaming: ``(data, complete)``, the body bytes decoded since the last call and
        whether the body is now complete (then the parser moves on to the next request)."""
        complete = self._read_body()
        data = bytes(self.body)
        self.body.clear()
        if complete:
            self.head = None
        return data, complete

    def _read_body(self):
        kind, length = self.framing
        return self._read_chunked() if kind == "chunked" else self._read_fixed(length)

    def _read_head(self):
        if not self.buffer:
            return False  # nothing yet: the usual case, asked after every request on keep-alive
        # Clients may send a stray CRLF after a body; RFC 9112 says to ignore it.
        while self.buffer.startswith((b"\r\n", b"\n")):
            del self.buffer[: 2 if self.buffer[:1] == b"\r" else 1]
            self.head_searched = 0
        end = END_OF_HEAD.search(self.buffer, self.head_searched)
        if end is None:
            self.head_searched = max(0, len(self.buffer) - 2)  # (the end's first bytes may be there)
            self._check_incomplete_head()
            return False
        self.head_searched = 0
        head_ends = end.start() - (self.buffer[end.start() - 1] == 13)  # (13: CR)
        if head_ends > self.limits.max_head:
            raise HTTPError(431, "the request head is too large")
        head = self.buffer[:head_ends]
        del self.buffer[: end.end()]
        self.head = parse_head(head, self.limits)
        self.framing = body_framing(self.head, self.limits)
        self.chunked_state = ChunkedState.SIZE_LINE
        self.body_received = 0
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
        take = min(length - self.body_received, len(self.buffer))
        self.body += self.buffer[:take]
        del self.buffer[:take]
        self.body_received += take
        return self.body_received == length

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
                if self.body_received + self.bytes_in_chunk > self.limits.max_body:
                    raise HTTPError(413, f"the chunked body is over the limit of {self.limits.max_body} bytes")
                # A chunk of size zero is the last one: trailer fields follow.
                self.chunked_state = ChunkedState.DATA if self.bytes_in_chunk else ChunkedState.TRAILERS
            if self.chunked_state is ChunkedState.TRAILERS:
                return self._skip_trailers()
            if self.chunked_state is ChunkedState.DATA:
                take = min(self.bytes_in_chunk, len(self.buffer))
                self.body += self.buffer[:take]
                del self.buffer[:take]
                self.body_received += take
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
    fields = "".join([f"{name}: {value}\r\n" for name, value in headers])
    return f"{version} {status}\r\n{fields}\r\n".encode("latin-1")


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
    for name, _ in headers:
        if name.lower() == "content-length":
            return "length"
    if request.version == "HTTP/1.1":
        return "chunked"
    return "close"


def declared_content_length(headers):
    """The app's Content-Length as a number, or None; a bad one is the app's error."""
    values = []
    for name, value in headers:
        if name.lower() == "content-length":
            values.append(value.strip())
    if not values:
        return None
    if len(set(values)) > 1 or not values[0].isdigit():
        raise ValueError(f"the app gave an invalid Content-Length: {', '.join(values)}")
    return int(values[0])


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
