"""WSGI apps for the slow-reader tests: large responses, and headers an app sets itself.

/one-piece?size=N   N bytes of PATTERN in one bytes object, with a Content-Length
/pieces?size=N      the same N bytes as a generator of 64 KiB pieces, with a Content-Length
/own-headers        sets its own Date and Server headers
/paced?pieces=N     N pieces of 100 bytes of the pattern, PAUSE apart, with a Content-Length
anything else: the demo app

The body repeats PATTERN, so that a test can check every byte arrived, in order.
"""

import time
from urllib.parse import parse_qs

from part2_wsgi.apps.demo_app import app as demo_app

PATTERN = bytes(range(256))
PAUSE = 0.001  # seconds between /paced's pieces: each is a write of its own
PIECE = 65536  # a multiple of len(PATTERN): every piece is the pattern, repeated
OWN_DATE = "Tue, 01 Jan 2030 00:00:00 GMT"
OWN_SERVER = "TheAppsOwn/2.0"


def expected_body(size):
    """The body the apps send for ``size``."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def requested_size(environ):
    return int(parse_qs(environ["QUERY_STRING"]).get("size", ["0"])[0])


def one_piece(environ, start_response):
    body = expected_body(requested_size(environ))
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]


def pieces(environ, start_response):
    size = requested_size(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return generate_pieces(size)


def generate_pieces(size):
    piece = expected_body(PIECE)
    for start in range(0, size, PIECE):
        yield piece[: size - start]


def paced(environ, start_response):
    count = int(parse_qs(environ["QUERY_STRING"]).get("pieces", ["0"])[0])
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(count * 100))])
    return generate_paced(count)


def generate_paced(count):
    for number in range(count):
        if number:
            time.sleep(PAUSE)  # the piece before has left: this one is a write of its own
        yield expected_body(100)


def own_headers(environ, start_response):
    body = b"dated by the app\n"
    start_response(
        "200 OK",
        [
            ("date", OWN_DATE),
            ("Server", OWN_SERVER),
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


ROUTES = {"/one-piece": one_piece, "/pieces": pieces, "/paced": paced, "/own-headers": own_headers}


def app(environ, start_response):
    return ROUTES.get(environ["PATH_INFO"], demo_app)(environ, start_response)
