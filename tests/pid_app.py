"""A WSGI app for the tests: the demo app, saying which process served each request.

Every response carries ``X-Served-By: PID``, so a test can count how a multi-process
server spread its requests over its processes, without timing anything.

    python part3_concurrency/prefork_server.py tests.pid_app:app --workers 2 --port 0
"""

import os

from part2_wsgi.apps.demo_app import app as demo_app


def app(environ, start_response):
    def start_response_with_pid(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Served-By", str(os.getpid()))], exc_info)

    return demo_app(environ, start_response_with_pid)
