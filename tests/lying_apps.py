"""WSGI apps that misbehave, for the hostile-client tests: each route breaks one promise.

/over     declares Content-Length: 5 and yields more: a forged response after it
/under    declares Content-Length: 10 and yields 3 bytes
/exit     calls sys.exit(), as a stray script line would
/flood    streams 64 KiB pieces, 256 MiB in all, to a client that may not read them
anything else: the demo app
"""

import sys

from part2_wsgi.apps.demo_app import app as demo_app

FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"


def over(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello", FORGED]


def under(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"abc"]


def exits(environ, start_response):
    sys.exit("the app called sys.exit()")


def flood(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    piece = b"x" * 65536
    for _ in range(4096):
        yield piece


ROUTES = {"/over": over, "/under": under, "/exit": exits, "/flood": flood}


def app(environ, start_response):
    return ROUTES.get(environ["PATH_INFO"], demo_app)(environ, start_response)
