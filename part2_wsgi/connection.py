"""Lesson 3, the conversation: the rules of one whole connection, still without a socket.

protocol.py reads and writes HTTP messages. A ``Connection`` holds what lies between two
messages, as h11's ``Connection`` does: when to send ``100 Continue``, whether the
connection outlives the response, what happens after an error, how long the client may
take to send and to read, how to close without losing the last answer, and that a
response body never runs past the Content-Length it declared. The servers only carry out
what it decides: they move bytes and keep time.

Where a connection stands is a ``State``; these are every way it moves (h11's _state.py
keeps its own as tables):

    from        what happens (who says so)                   to          the driver is told
    IDLE        a byte of a request arrives (next_event)     RECEIVING   NEED_DATA
    IDLE        a whole request arrives (next_event)         RESPONDING  the Request
    RECEIVING   the rest of it arrives (next_event)          RESPONDING  the Request
    IDLE        the client closes (next_event)               CLOSED      Close()
    RECEIVING   the client closes (next_event)               CLOSED      Close("went away ...")
    IDLE,       a malformed request (next_event)             CLOSED      Send(4xx),
    RECEIVING                                                            Close("bad request ...",
                                                                               linger=True)
    IDLE        the idle deadline passes (deadline_passed)   CLOSED      Close()
    RECEIVING   its deadline passes (deadline_passed)        CLOSED      Send(408),
                                                                         Close("too slow ...")
    RESPONDING  the response ends, kept alive (send_end)     IDLE        NEED_DATA
    RESPONDING  the response ends, or is cut short           CLOSED      Close(linger=True if
                (send_end, send_body, end_connection)                    more bytes came)
    CLOSED      the driver shut its sending side after a     LINGERING   NEED_DATA
                Close(linger=True) (start_lingering)
    LINGERING   the client closes (next_event)               CLOSED      Close()
    LINGERING   the linger deadline passes (deadline_passed) CLOSED      Close()
    any         the socket fails (connection_lost)           CLOSED      the Close it returns
    any         the client takes nothing of what we send     CLOSED      the Close it returns
                in time (send_deadline_passed)

(Once a head that asks for it is complete, ``Send(100 Continue)`` comes instead of a
NEED_DATA, without a move.)

Streaming (``Connection(streaming=True)``, for ASGI), the app has the request as soon as
its head is whole, and asks for its body piece by piece (``want_body``, then
``next_event``); the response may start before the body has all arrived:

    from        what happens (who says so)                   to          the driver is told
    IDLE,       a whole head arrives, a body to follow       BODY        the Request, its body empty
    RECEIVING   (next_event)
    IDLE,       a whole head arrives, no body (next_event)   RESPONDING  the Request
    RECEIVING
    BODY        the app asks (want_body), the head asked     BODY        Send(100 Continue), once
                for Expect: 100-continue, and no response
                head went out yet (next_event)
    BODY        body bytes arrive, asked for (next_event)    BODY        BodyData(bytes)
    BODY        the body ends, asked for (next_event)        RESPONDING  END_OF_BODY
    BODY        the client closes (next_event)               CLOSED      Close("went away ...")
    BODY        a malformed chunk (next_event)               CLOSED      Send(400) unless a response
                                                                         head went out, Close(linger=True)
    BODY        its deadline passes while the app asks       CLOSED      Send(408) unless a response
                (deadline_passed)                                        head went out, Close()
    BODY        the response ends (send_end), the rest of    IDLE        NEED_DATA
                the body here already: it is discarded
    BODY        the response ends, the rest of the body      CLOSED      Close(linger=True)
                not here (send_end, end_connection)

The body's deadline runs only while the app asks for more: an app that takes its time
between two ``receive()`` calls does not make its client late. And the driver stops
reading while ``should_read`` is False: more than ``high_water`` bytes wait for the app,
which is how a client that sends faster than the app reads is slowed down (TCP's own
window does the rest). ``Limits.max_body`` then bounds what one request may send in all,
not what the server holds.

Bytes are counted three ways, from the connection's start: *framed*, handed to the
driver to send; *taken* by its socket (the driver says so, ``took``); and, of those,
*acknowledged* by the client (``unacknowledged``). What is framed and not yet taken is
waiting for the client, and has a deadline.
"""

import time
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, NamedTuple

from part2_wsgi.protocol import (
    CONTINUE,
    LAST_CHUNK,
    HTTPError,
    Limits,
    RequestParser,
    chunk,
    declared_content_length,
    error_response,
    response_framing,
    response_head,
)


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
    prefork, asyncio, thread_pool.py), a client that pauses holds only itself, and
    patient readers must be served: ``curl --limit-rate`` reads megabytes at once and
    then takes nothing until its average is down, for most of a minute. So those wait as
    nginx's send_timeout does, 60 s. A server that serves one client at a time (part 2's,
    the iterative one, and an event loop that runs an app in the loop with ``--threads
    0``) serves nobody else while that client reads nothing, so it keeps a short deadline.
    """

    head: float = 10.0  # the whole request head, from its first byte
    body: float = 10.0  # the body, from the end of the head ...
    body_min_rate: int = 500  # ... plus one second per this many bytes received
    idle: float = 5.0  # a kept-alive connection waits this long for the next request
    send: float = 10.0  # a client that takes none of its response for this long is dropped
    linger: float = 1.0  # after the last answer, how long we read and discard what still comes

    PATIENT_SEND: ClassVar[float] = 60.0  # nginx's send_timeout

    @classmethod
    def for_server(cls, one_at_a_time):
        """The defaults of a server: the short send deadline where a client that reads
        nothing holds everybody, the patient one where it holds only itself."""
        return cls() if one_at_a_time else cls(send=cls.PATIENT_SEND)


class State(Enum):
    """Where a connection stands, from the server's side (the table above)."""

    IDLE = "waiting for a request"  # nothing of the next request has arrived
    RECEIVING = "receiving a request"  # some of it has: its deadline runs
    BODY = "receiving a body"  # streaming: the app has the head; the body comes as it asks
    RESPONDING = "responding"  # the app has the request; the response is being written
    LINGERING = "lingering"  # our side is shut; what the client still sends is discarded
    CLOSED = "closed"  # nothing more is read or written


# --- the events: what the driver is told to do -------------------------------------------


@dataclass(frozen=True)
class NeedData:
    """Feed me more bytes (``receive_data``), or tell me the deadline passed."""


NEED_DATA = NeedData()


class Send(NamedTuple):
    """Send these bytes to the client now (``100 Continue``, or an error response)."""

    data: bytes


class BodyData(NamedTuple):
    """Streaming: a piece of the request's body, decoded (no chunk sizes), for the app."""

    data: bytes


@dataclass(frozen=True)
class EndOfBody:
    """Streaming: the request's body is complete."""


END_OF_BODY = EndOfBody()
STREAM_HIGH_WATER = 256 * 1024  # body bytes that may wait for the app before the driver stops reading


class Close(NamedTuple):
    """Close the connection. ``problem`` says what went wrong, for the log (None: a normal
    end); ``status`` is the error response just sent, if any, and ``request`` the request
    it answered, if its head was read (a body too large, too slow or badly framed), for
    the access log; ``linger``: the client may still be sending, so shut down our sending
    side and read on for a moment before closing (see ``Connection.start_lingering``)."""

    problem: str | None = None
    status: int | None = None
    linger: bool = False
    request: object = None


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
    we send (then ``send_deadline_passed()``); ``took(count)`` tells us how many bytes the
    socket took, and ``unacknowledged(count)`` how many of those the client has not yet
    acknowledged. So the connection knows what the client received, not only what we
    framed: a client that leaves in the middle of a response is logged with it.

    ``streaming=True`` hands the body out as it comes (the module's docstring has the
    states): ``next_event()`` gives the ``Request`` at the end of its head, then, each time
    the driver says the app asks for more (``want_body()``), ``BodyData`` or
    ``END_OF_BODY`` (or ``NEED_DATA``, ``Send``, ``Close`` as before). ``100 Continue`` goes
    out only then, at the app's first ask: an app that answers without reading the body
    spares the client sending it. The driver reads while ``should_read`` says so.

    A file can be sent by the driver itself (``sendfile()``, no copy through Python): it
    asks ``body_allowance()`` how many body bytes it may still send, and reserves what it
    will send with ``send_file_body(count)``.

    What the drivers may read besides are the properties below; the rest is the
    connection's own.
    """

    # Streaming (an ASGI server): whether the app asks for body now, since when, and how
    # long it has waited for body while asking, over the whole body (its deadline counts
    # only that). Class defaults, set on the object only once it streams: every idle
    # connection of an event loop is one of these objects, and its size is a lesson's figure.
    _streaming = False
    _high_water = STREAM_HIGH_WATER
    _body_wanted = False
    _asking_since = None
    _body_waited = 0.0
    _body_complete = False  # the last piece was handed out; END_OF_BODY is next

    def __init__(
        self,
        persistent=True,
        limits=Limits(),
        deadlines=Deadlines(),
        clock=time.monotonic,
        streaming=False,
        high_water=STREAM_HIGH_WATER,
    ):
        # The server's policy, and the tools: a parser, and a clock.
        self._persistent = persistent
        if streaming:  # (else the class's defaults: a WSGI connection's object stays small)
            self._streaming, self._high_water = True, high_water
        self._deadlines = deadlines
        self._clock = clock
        self._parser = RequestParser(limits)
        # Where we stand, and what next_event hands out before it looks at the parser.
        self._state = State.IDLE
        self._pending = []  # events decided already
        # What the client sends: the times its deadlines run from.
        self._idle_since = clock()  # the end of the last response (or the connection's start)
        self._request_started = None  # the first byte of the request being received
        self._body_started = None  # the end of its head, if a body is to follow
        self._lingering_since = None
        self._continue_sent = False
        self._client_done = False  # it has sent all it will send (end of file)
        # The response being written.
        self._request = None
        self._framing = None  # "length", "chunked", "close" or "none": see response_framing
        self._declared_length = None
        self._body_sent = 0
        self._keep_alive = False  # will this connection carry another request after this one?
        self._framing_error = None  # how the app broke its response's framing, for the log
        self._response_start = None  # bytes framed before its head
        self._response_size = None  # its head and declared body, in bytes, once known
        # What the client received: the three counts (the module's docstring), the start of
        # its send deadline, and the Close once we gave up on a client that does not read.
        self._framed = 0
        self._taken = 0
        self._acknowledged = 0  # as the last look at the socket saw it
        self._waiting_since = self._idle_since  # when bytes began to wait for it, or it last took some
        self._dropped = None

    # --- what the drivers may read -------------------------------------------------------

    @property
    def state(self):
        return self._state

    @property
    def client_done(self):
        """The client has closed its sending side: a driver need not read any more."""
        return self._client_done

    @property
    def buffered_bytes(self):
        """How many bytes received are not yet part of a request: a driver stops reading
        while the app runs if a client pipelines too much."""
        return len(self._parser.buffer)

    @property
    def should_read(self):
        """Whether the driver reads from the socket now: not while more than the high-water
        mark of what the client sent waits to be handed out (streaming mode)."""
        return len(self._parser.buffer) <= self._high_water

    @property
    def receiving_body(self):
        """Streaming: the request's body has more to come (``want_body``, then ``next_event``).
        False as soon as its last piece is handed out, before ``END_OF_BODY``: an ASGI driver
        says ``more_body: False`` with that piece."""
        return self._state is State.BODY and not self._body_complete

    @property
    def keep_alive(self):
        """Whether this connection carries another request after the current response."""
        return self._keep_alive

    @property
    def framing(self):
        """How the current response's body ends: "length", "chunked", "close" or "none"."""
        return self._framing

    @property
    def body_sent(self):
        """The body bytes of the current response framed so far (for the access log)."""
        return self._body_sent

    @property
    def framing_error(self):
        """How the app broke its response's framing (for the log), or None."""
        return self._framing_error

    @property
    def response_framed(self):
        """Every byte the response declared has been framed for sending: the client may have
        it all, and leave, before the app's thread has said that it is done."""
        if self._state not in (State.RESPONDING, State.BODY) or self._framing is None:
            return False
        return self._framing == "none" or (self._framing == "length" and self._body_sent == self._declared_length)

    @property
    def dropped(self):
        """The ``Close`` of a client we gave up on (``send_deadline_passed``), or None."""
        return self._dropped

    # --- bytes in, events out ----------------------------------------------------------

    def receive_data(self, data):
        """Bytes from the client; ``b""`` means it closed its sending side."""
        if not data:
            self._client_done = True
        elif self._state is not State.LINGERING:  # (lingering: what comes is discarded)
            self._parser.feed(data)

    def next_event(self):
        if self._pending:
            return self._pending.pop(0)
        if self._state is State.LINGERING:
            if not self._client_done:
                return NEED_DATA
            self._state = State.CLOSED
            return Close()  # the client has closed too: every byte of our answer reached it
        if self._state is State.BODY and self._body_wanted:
            return self._next_body_event()
        if self._state in (State.RESPONDING, State.CLOSED, State.BODY):
            raise RuntimeError(f"next_event() while {self._state.value}: finish the response first")
        try:
            request = self._parser.next_head() if self._streaming else self._parser.next_request()
        except HTTPError as error:
            # The stream cannot be trusted past a malformed request: answer, then hang up.
            self._refuse(error, f"bad request: {error.status_line}: {error.detail}")
            return self._pending.pop(0)
        if request is not None:
            self._state = State.RESPONDING
            self._request, self._continue_sent, self._body_started = request, False, None
            self._framing = None  # decided by send_head, for this response
            self._response_start = self._response_size = None
            if self._streaming and self._parser.framing != ("length", 0):
                self._state, self._body_wanted, self._body_waited = State.BODY, False, 0.0
                self._body_complete = False
            return request
        if self._parser.has_partial_request:
            if self._state is State.IDLE:
                self._state, self._request_started = State.RECEIVING, self._clock()
            head = self._parser.head
            if head is not None and self._body_started is None:
                self._body_started = self._clock()
            if head is not None and head.expects_continue and not self._continue_sent:
                # curl sends "Expect: 100-continue" before a large upload and waits for
                # this go-ahead: the head was fine (not too large, say), so send the body.
                self._continue_sent = True
                self._frame(len(CONTINUE))
                return Send(CONTINUE)
        if self._client_done:
            self._state = State.CLOSED
            if self._parser.has_partial_request:
                return Close("went away: closed the connection in the middle of a request")
            return Close()  # the client closed between requests: the normal end of keep-alive
        return NEED_DATA

    # --- streaming: the body as the app asks for it -------------------------------------------

    def want_body(self):
        """Streaming: the app asks for more of the body (ASGI's ``receive()``); the body's
        deadline runs until ``next_event`` hands it some."""
        if self._state is State.BODY and not self._body_wanted:
            self._body_wanted, self._asking_since = True, self._clock()

    def _next_body_event(self):
        if self._body_complete:
            self._state, self._body_wanted = State.RESPONDING, False
            return END_OF_BODY
        head = self._request
        if head.expects_continue and not self._continue_sent and self._response_start is None:
            # curl sends "Expect: 100-continue" before a large upload and waits for this
            # go-ahead. Streaming, it goes out when the app first asks for the body: an app
            # that answers without reading it spares the client sending it at all. Once a
            # response head has gone out, a 100 would land inside that response's body: the
            # client, which has its final answer, sends the body without one (RFC 9110 10.1.1).
            self._continue_sent = True
            self._frame(len(CONTINUE))
            return Send(CONTINUE)
        try:
            data, complete = self._parser.take_body()
        except HTTPError as error:
            self._refuse_body(error, f"bad request: {error.status_line}: {error.detail}", linger=True)
            return self._pending.pop(0)
        if complete and not data:
            self._state, self._body_wanted = State.RESPONDING, False
            return END_OF_BODY
        if data:
            self._body_complete = complete  # then END_OF_BODY, at the app's next ask
            self._body_wanted = False  # the app has what it asked for: its body deadline pauses
            self._body_waited += self._clock() - self._asking_since
            return BodyData(data)
        if self._client_done:
            self._state = State.CLOSED
            return Close("went away: closed the connection in the middle of a request")
        return NEED_DATA

    def _refuse_body(self, error, problem, linger):
        """A body gone wrong, streaming: the error's answer if no response head went out
        yet; if one did, the client would read the answer as part of that response: close."""
        if self._response_start is None:
            self._refuse(error, problem, linger=linger)
        else:
            self._state = State.CLOSED
            self._pending.append(Close(problem))

    def connection_lost(self, reason):
        """The socket failed (a reset, say): close. A client that leaves between requests,
        having taken every byte we sent, is normal, and says nothing to the log; one that
        leaves in the middle of a request or of a response is not, and the log says how
        much of its response it received."""
        if self._dropped:
            return self._dropped  # we gave up on it ourselves: see send_deadline_passed
        # A response is cut short if bytes we framed wait for a socket that failed, or if
        # the app had more to send. (Closed or lingering, with every byte taken: we were
        # closing anyway, and said why when we decided to.)
        unfinished = self._state in (State.RESPONDING, State.BODY) and not self.response_framed
        cut_short = self._taken < self._framed or unfinished
        quiet = not cut_short and not self._parser.has_partial_request
        self._state = State.CLOSED
        if quiet:
            return Close()
        if cut_short and self._response_start is not None:
            return Close(f"went away: {reason}; it {self._response_progress()}")
        return Close(f"went away: {reason}")

    def _response_progress(self):
        """What the client received of the current response, for the log:
        "received 24,117,248 of the 52,428,926 bytes of its response"."""
        received = max(self._taken - self._response_start, 0)
        if self._response_size is None:  # chunked, or until the connection closes: no size told
            return f"received {received:,} bytes of its response"
        return f"received {received:,} of the {self._response_size:,} bytes of its response"

    def _refuse(self, error, problem, linger=True):
        """Answer with the error's status, then close. ``linger``: the client may still be
        sending, and we read a while before closing, or our close could lose the answer."""
        self._state = State.CLOSED
        answer = error_response(error)
        self._response_start, self._response_size = self._framed, len(answer)
        self._frame(len(answer))
        request = self._request or self._parser.head  # (None: the head itself was refused)
        self._pending += [Send(answer), Close(problem, status=error.status.value, linger=linger, request=request)]

    # --- the deadlines for what the client sends -------------------------------------------

    def deadline(self):
        """The clock time by which the client must have sent more, or None while responding."""
        if self._state is State.IDLE:
            return self._idle_since + self._deadlines.idle
        if self._state is State.LINGERING:
            return self._lingering_since + self._deadlines.linger
        if self._state is State.BODY:
            if not self._body_wanted:
                return None  # the app is not asking: no client is late for that
            earned = self._parser.body_received / self._deadlines.body_min_rate
            return self._asking_since + self._deadlines.body + earned - self._body_waited
        if self._state is not State.RECEIVING:
            return None
        if self._body_started is None:
            return self._request_started + self._deadlines.head
        earned = len(self._parser.body) / self._deadlines.body_min_rate  # a slow client that keeps sending
        return self._body_started + self._deadlines.body + earned

    def deadline_passed(self):
        """The driver saw the deadline pass: a 408 if a request was under way, then close."""
        if self._state in (State.IDLE, State.LINGERING):
            self._state = State.CLOSED
            self._pending.append(Close())  # an idle kept-alive connection: nothing to report
        elif self._state is State.RECEIVING:
            part = "head" if self._body_started is None else "body"
            waited = self._clock() - self._request_started
            error = HTTPError(408, f"the request's {part} was not complete after {waited:.0f} s")
            # No lingering for a client that was too slow already: it would only win more time.
            self._refuse(error, f"too slow: {error.detail}", linger=False)
        elif self._state is State.BODY and self._body_wanted:
            waited = self._body_waited + self._clock() - self._asking_since
            error = HTTPError(408, f"the request's body was not complete after {waited:.0f} s of waiting for it")
            self._refuse_body(error, f"too slow: {error.detail}", linger=False)

    # --- the deadline for what it takes: the three counts ----------------------------------

    def _frame(self, count):
        """``count`` more bytes are given to the driver to send. If none were waiting for
        the client, the send deadline starts now: a client that took all we sent is not
        late because the app took its time to make more."""
        if count:
            if self._taken >= self._framed:
                self._waiting_since = self._clock()
            self._framed += count

    def took(self, count):
        """The driver's socket took ``count`` more bytes of what we send: the client reads,
        and its send deadline starts again.

        What the socket took, and not what we framed: a response framed at once (one
        large bytes object, a file) may take many send deadlines to reach a slow client,
        which keeps its connection as long as it takes some within each."""
        if count:
            self._taken += count
            self._waiting_since = self._clock()

    def unacknowledged(self, count):
        """The driver looked at its socket: of the bytes it took, ``count`` still wait for the
        client's acknowledgement (None: the system cannot tell). If the client has received
        more than at the last look, it reads, and its send deadline starts again.

        Why look, when ``took`` says what the socket took? The kernel's send buffer takes
        up to a few MB at once, and the socket takes more only once a good part of it is
        free (on Linux, a third): a client reading steadily at 100 KiB/s frees that much
        only after many seconds, and would look as if it read nothing. Drivers look while
        a client keeps them waiting, and before they drop it."""
        if count is None:
            return
        received = self._taken - count
        if received > self._acknowledged:
            self._acknowledged = received
            self._waiting_since = self._clock()

    def send_deadline(self):
        """The clock time by which the client must have taken more of what we send it, or
        None while nothing waits for it. A client that reads nothing holds its connection,
        and the memory of its response, no longer than ``deadlines.send``."""
        if self._taken >= self._framed:
            return None
        return self._waiting_since + self._deadlines.send

    def send_deadline_passed(self):
        """The driver saw the send deadline pass: drop the client, without lingering."""
        self._state = State.CLOSED
        self._dropped = Close(f"took none of its response for {self._deadlines.send:g} s: dropped")
        return self._dropped

    # --- closing without losing the last answer --------------------------------------------

    def start_lingering(self):
        """Call after a ``Close(linger=True)``, once the answer is sent and the driver has shut
        down its sending side (``shutdown(SHUT_WR)``: the client sees the end).

        If bytes the client sent are still unread when a socket closes (a body refused
        with 413, say), the kernel answers with a reset, and the client may lose the
        response we just sent. So we read on and discard, until the client closes too or
        ``deadlines.linger`` has passed: ``next_event()`` then says ``Close()``."""
        self._state, self._lingering_since = State.LINGERING, self._clock()

    # --- the response: decisions in, bytes out -------------------------------------------

    def send_head(self, status, headers, empty=False, close=False):
        """Status line and headers, with the framing headers this server adds.

        ``empty``: the app has finished and gave no body, so say Content-Length: 0 rather
        than start a chunked nothing. ``close``: end the connection after this response
        (after an app error, say)."""
        request = self._request
        headers = list(headers)
        self._framing = response_framing(request, int(status[:3]), headers)
        if empty and self._framing == "chunked":
            headers.append(("Content-Length", "0"))
            self._framing = "length"
        self._declared_length = declared_content_length(headers)
        # Streaming, an app that answers before asking for a body the client holds back
        # (Expect: 100-continue) will not read it: say that the connection ends here.
        unread = self._state is State.BODY and request.expects_continue and not self._continue_sent
        self._keep_alive = (
            not unread
            and self._persistent
            and request.wants_keep_alive
            and self._framing != "close"
            and not close
            and not self._client_done
        )
        if self._framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        if request.version == "HTTP/1.1" and not self._keep_alive:
            headers.append(("Connection", "close"))
        elif request.version == "HTTP/1.0" and self._keep_alive:
            headers.append(("Connection", "keep-alive"))
        self._body_sent, self._framing_error = 0, None
        head = response_head(status, headers)
        self._response_start = self._framed
        known = self._framing == "none" or (self._framing == "length" and self._declared_length is not None)
        self._response_size = len(head) + (self._declared_length or 0) if known else None
        self._frame(len(head))
        return head

    def send_body(self, data):
        """One piece of the body, framed: what may be sent of it.

        Never more than the declared Content-Length: past it, the rest is dropped, the
        connection ends with this response, and ``framing_error`` says why (for the log)."""
        if self._framing == "none" or self._framing_error:
            return b""  # HEAD, 1xx, 204, 304: the app's body is dropped, not sent; or it broke its word
        if self._framing == "length":
            allowed = self._declared_length - self._body_sent
            if len(data) > allowed:
                # Extra bytes on a kept-alive connection would be read as the next
                # response: a forged one, if the app echoes what a client sent.
                self._framing_error = f"the app declared Content-Length: {self._declared_length} and gave more"
                self.end_connection()
                data = data[:allowed]
        self._body_sent += len(data)
        # (An empty piece is no chunk: framed, it would be the zero-size one that ends the body.)
        framed = chunk(data) if self._framing == "chunked" and data else data
        self._frame(len(framed))
        return framed

    def body_allowance(self):
        """How many body bytes the response may still carry, for a driver that sends them
        itself (a file, with sendfile): what is left of the declared Content-Length; 0 if
        the response has no body (HEAD, 304) or broke its framing; None if the body must be
        framed piece by piece (chunked) or has no declared length."""
        if self._framing == "none" or self._framing_error:
            return 0
        if self._framing == "length":
            return self._declared_length - self._body_sent
        return None

    def send_file_body(self, count):
        """The driver will send ``count`` bytes of a file itself: how many it may send.

        Never past the declared Content-Length. A file longer than that is no error: an
        app that answers a Range request wraps the whole file, seeked to the range's
        start, and declares the range's length."""
        allowed = min(count, self.body_allowance() or 0)
        self._body_sent += allowed
        self._frame(allowed)
        return allowed

    def file_ended_early(self, missing):
        """The file gave ``missing`` bytes fewer than ``send_file_body`` reserved (it shrank
        meanwhile): the response cannot be finished as declared, and the connection ends."""
        self._body_sent -= missing
        self._framed -= missing
        self._framing_error = f"the file ended {missing} bytes before the Content-Length the app declared"
        self.end_connection()

    def send_end(self):
        """The body is complete: the last chunk if chunked; then the next request, or close."""
        if self._framing_error:
            return b""  # the connection has ended already: see send_body
        if self._framing == "length" and self._body_sent < self._declared_length:
            # The client waits for the rest: closing is the only way to tell it there is none.
            declared, given = self._declared_length, self._body_sent
            self._framing_error = f"the app declared Content-Length: {declared} and gave {given} bytes"
            self.end_connection()
            return b""
        self._finish_response()
        if self._framing == "chunked":
            self._frame(len(LAST_CHUNK))
            return LAST_CHUNK
        return b""

    def end_connection(self):
        """The response cannot be finished as declared (an app error after the head went out,
        say): the connection ends with it, so that the client sees it was cut short."""
        if self._state in (State.RESPONDING, State.BODY):
            self._keep_alive = False
            self._finish_response()

    def _finish_response(self):
        self._request = None
        if self._state is State.BODY:
            self._discard_body()
        if self._keep_alive:
            self._state, self._idle_since = State.IDLE, self._clock()
        else:
            self._state = State.CLOSED
            self._pending.append(Close(linger=self._parser.has_partial_request))

    def _discard_body(self):
        """Streaming, the response ended before the app read the whole body. If the rest is
        here already, it is dropped and the connection goes on; else the client is still
        sending (or waits for a 100 Continue that will not come): the connection ends."""
        self._body_wanted = False
        complete = self._body_complete
        try:
            while not complete:
                data, complete = self._parser.take_body()
                if not data:
                    break
        except HTTPError:
            complete = False
        if not complete:
            self._keep_alive = False
