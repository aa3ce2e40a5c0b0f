"""A WSGI app for the part 3 server tests: the demo app, announcing each request.

Before it hands a request to the demo app it writes one line to ``wsgi.errors`` (the
server's stderr), for example ``app begins GET /sleep?seconds=0.5``. A test waits for
that line (``server.wait_for_log``) to know that a request is *inside the app*, in
flight, without sleeping and hoping; then it can, say, signal the server to stop.

    python part3_concurrency/threaded_server.py tests.announcing_app:app --port 0
"""

from part2_wsgi.apps.demo_app import app as demo_app


def app(environ, start_response):
    query = environ.get("QUERY_STRING")
    target = environ["PATH_INFO"] + (f"?{query}" if query else "")
    errors = environ["wsgi.errors"]
    errors.write(f"app begins {environ['REQUEST_METHOD']} {target}\n")
    errors.flush()
    return demo_app(environ, start_response)
