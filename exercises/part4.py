"""Workbook, part 4: your own ASGI server, where the app itself awaits.

The REQUIRED track, four stages: ``build_scope`` (the request as ASGI describes it),
``make_receive`` (the app's ``receive()``: the body in pieces as it arrives, then
``http.disconnect``), ``make_send`` (the app's ``send()``: the response, at the pace of
the client), then ``serve_asgi``, an asyncio server that tells the app it starts
(lifespan) and serves it. Part 4 has no hardening track: ``part4_asgi/asgi.py`` and
``part4_asgi/server.py`` are the place to read about the rest (keep-alive, chunked
uploads, ``100 Continue``, deadlines).

Each function has the same name and signature as one in ``part4_asgi/``: the scope in
``asgi.py``, the others in ``minimal_asgi_server.py``. Reading a request's head is given.
Then grade:

    python -m grader part4                        # every exercise of this part
    python -m grader part4 make_receive           # just one
    python -m grader part4 make_receive --hint    # and reveal its next hint

The checks of ``make_receive`` and ``make_send`` hand your function the two ends of
asyncio's streams on a real loopback connection, and play the app and the client; those
of ``serve_asgi`` run it as a server process of its own and talk to it as clients do.
The checks are in ``grader/tests/test_part4.py``.
"""

import asyncio  # noqa: F401  (you will want them)
import sys  # noqa: F401
from urllib.parse import unquote  # noqa: F401

# Given: part 2's Request, what read_head returns: .method, .target (as sent, with its
# query), .version ("HTTP/1.1"), .headers (a list of (name, value) str pairs, names as
# sent), and two properties, .path (the target before "?", still %-encoded) and .query.
from part2_wsgi.protocol import Request  # noqa: F401

# Given: read_head(reader) awaits one request's head from an asyncio.StreamReader and
# returns a Request (see below) whose body is still to be read from the reader, or None
# for a client that left or a head it cannot read (answer 400). body_length(request) is
# its Content-Length as an int (0 without one).
from part4_asgi.minimal_asgi_server import body_length, read_head  # noqa: F401

ASGI = {"version": "3.0", "spec_version": "2.4"}  # what scope["asgi"] says
CHUNK = 65536  # the most body one http.request message carries
MAX_HEAD = 64 * 1024  # the most a head may take: asyncio's stream limit (start_server's limit=)


# ===== The required track: your own ASGI server ===================================================


# --- build_scope (2 points) -----------------------------------------------------------------


def build_scope(request, *, server, client, root_path="", state=None):
    """Return the ``http`` scope ASGI 3.0 (spec 2.4) asks for, for one request.

    ``request`` is a Request (see above); ``server`` and ``client`` are (host, port)
    pairs; ``root_path`` is the prefix a proxy strips before passing requests on;
    ``state`` is what the app's lifespan stored (a dict, or None). WSGI's environ was
    CGI's strings; the scope is plain Python, and bytes where the wire has bytes:

    * ``type`` ``"http"``; ``asgi`` the dict ``ASGI`` above; ``http_version`` ``"1.1"``
      (the version without ``HTTP/``); ``method``; ``scheme`` ``"http"``;
    * ``path``: the path %-decoded *as UTF-8* (not latin-1, as WSGI did), a byte that is
      not UTF-8 becoming U+FFFD (``unquote`` does both); ``raw_path``: the path as sent,
      still %-encoded, as bytes, never the query; ``query_string``: what follows the
      ``?``, as sent, as bytes; both paths begin with ``root_path``, and ``root_path``
      is there too;
    * ``headers``: a list of (name, value) pairs of *bytes*, names lower-cased, in the
      order sent, a header sent twice kept twice (an app may need both: Set-Cookie,
      say); heads are latin-1;
    * ``client`` and ``server``: (host, port), a tuple (a list would do);
    * ``state``: a shallow copy of ``state`` (a request adds to its own copy, and no
      other request sees it), or ``{}``.

    Example: GET /caf%C3%A9?x=1 HTTP/1.1 with Host: a, served at ("127.0.0.1", 8000) to
    ("10.0.0.7", 51000) gives path "/café", raw_path b"/caf%C3%A9", query_string b"x=1",
    headers [(b"host", b"a")], server ("127.0.0.1", 8000), client ("10.0.0.7", 51000).

    Prepared by: notebooks/04_asgi.ipynb, section 2.1 (The scope); graded at its end.
    The reference is part4_asgi/asgi.py.
    """
    raise NotImplementedError("build_scope: plain Python values, bytes where the wire has bytes; path decoded as UTF-8")


# --- make_receive (2 points) ----------------------------------------------------------------


def make_receive(reader, length):
    """Return the app's ``receive()``: an ``async def`` that gives the request's body,
    ``length`` bytes to be read from ``reader`` (an ``asyncio.StreamReader``), a piece
    at a time, as the client sends it.

    Each call returns one message:

    * ``{"type": "http.request", "body": piece, "more_body": True}`` while more follows,
      each piece what ``reader.read()`` gives, never more than ``CHUNK`` bytes, never
      past ``length`` (what follows belongs to no one); the last piece has
      ``"more_body": False``: a message without ``more_body`` means the same, so the
      app would stop after the first piece. A body of 0 bytes is one message, ``b""``
      and ``False``, at once: nothing is to be read, so read nothing;
    * then, on the next call: wait until the client has gone (the reader reaches its
      end: read until ``b""``) and return ``{"type": "http.disconnect"}``. An app that
      streams, or waits, learns so that its client left. A client that leaves half way
      through its body (``b""`` early), or resets (an OSError), is gone too:
      ``http.disconnect``, never an exception, never a wait.

    Never read the whole body before the first message (``readexactly(length)``): an
    upload of 1 GB would be 1 GB of the server's memory, and the app could not even
    refuse it before it had all come.

    Example: a client sends a 200 KB body: receive() gives 64 KB, 64 KB, 64 KB (each
    with more_body True), then 8 KB with more_body False; the client closes: receive()
    gives http.disconnect.

    Prepared by: notebooks/04_asgi.ipynb, section 2.2 (receive: the body, in pieces); graded at its end. The
    reference is part4_asgi/minimal_asgi_server.py.
    """
    raise NotImplementedError("make_receive: define an async receive() that reads a piece per call, then return it")


# --- make_send (3 points) -------------------------------------------------------------------


def make_send(writer, method):
    """Return the app's ``send(message)``: an ``async def`` that writes the response to
    ``writer`` (an ``asyncio.StreamWriter``), for a request whose method is ``method``.

    The messages, in this order:

    * ``{"type": "http.response.start", "status": 200, "headers": [(b"content-type",
      b"text/plain")]}``: keep the status and headers, send nothing yet: until the first
      body goes out, an app that fails can still be answered with a 500;
    * ``{"type": "http.response.body", "body": b"...", "more_body": True}``, any number
      of times, then one without ``more_body`` (or with False): the last. The first
      writes the head: ``HTTP/1.1 <status> <phrase>``, ``Connection: close``, a line per
      header (bytes: decode them as latin-1, never write their repr), a blank line; CRLF
      line ends. Each writes its body (none at all for HEAD: the head only). The last
      ends the response, and with it the connection (``writer.close()``).

    After each write, ``await writer.drain()``: it waits while the client reads slower
    than the app sends, so an app that streams waits for its client instead of filling
    the server's memory (backpressure). It raises an OSError once the client has gone:
    let it out. ASGI says so: an app that streams forever stops there, and only there.

    Give the function an attribute ``send.head_sent``: False until the head went out,
    then True (``serve_asgi`` decides with it between a 500 and a close).

    Example: start 200 with [(b"content-type", b"text/plain")], then body b"Hel" with
    more_body True, then b"lo": the client gets b"HTTP/1.1 200 OK\\r\\nConnection:
    close\\r\\ncontent-type: text/plain\\r\\n\\r\\nHello", then the end of the connection.

    Prepared by: notebooks/04_asgi.ipynb, section 2.3 (send: the response, at the client's pace), and section 4
    (Backpressure and disconnects); graded at the end of section 4. The reference is
    part4_asgi/minimal_asgi_server.py.
    """
    raise NotImplementedError("make_send: the head waits for the first body; drain after each write; close at the last")


# --- serve_asgi (4 points) ------------------------------------------------------------------


def serve_asgi(listener, app):
    """Your ASGI server: tell ``app`` the server starts, then serve it, forever.

    ``asyncio.run()`` a coroutine that does two things.

    First, lifespan: call the app once with the scope ``{"type": "lifespan", "asgi":
    ASGI, "state": state}`` (``state`` a dict of yours), as a task of its own
    (``asyncio.create_task``): it lasts as long as the server. Its ``receive()`` gives
    ``{"type": "lifespan.startup"}``; wait until the app sends
    ``{"type": "lifespan.startup.complete"}``, and only then serve: the app opens what
    it needs there (a database pool, say) and puts it in ``state``. An app that raises
    (or returns) instead of answering does no lifespan: serve it all the same (wait
    for whichever comes first, the answer or the task's end: ``asyncio.wait``).
    ``lifespan.startup.failed``: raise an exception, and serve nothing.

    Then serve: ``asyncio.start_server(handler, sock=listener, limit=MAX_HEAD)``, and
    ``serve_forever()``. ``handler(reader, writer)`` runs for each connection as a task
    of its own: ``read_head`` (None: write a 400 and close); ``build_scope`` with the
    addresses of ``writer.get_extra_info("sockname")`` and ``("peername")`` and the
    lifespan's ``state``; ``make_receive(reader, body_length(request))``;
    ``make_send(writer, request.method)``; then ``await app(scope, receive, send)``.
    If the app raises: one line on stderr, and a 500 if its head has not gone out
    (``send.head_sent``). However it ends, close the connection; a client that left (an
    OSError) is nothing to report. One connection never stops the server.

    Example: an app whose startup takes half a second and stores state["ready"] =
    True: the first request, sent at once, is answered after that half second, and its
    scope's state holds ready; two requests whose app awaits one second each are
    answered together, after about one second.

    Prepared by: notebooks/04_asgi.ipynb, section 3 (The road of one request), and
    section 5 (Lifespan); graded at the end of section 5. The reference is
    part4_asgi/minimal_asgi_server.py.
    """
    raise NotImplementedError("serve_asgi: lifespan startup first, then start_server with a handler per connection")
