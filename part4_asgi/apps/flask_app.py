"""Part 2's Flask app, a WSGI app, served through ASGI by an adapter (a2wsgi).

An ASGI server calls ``await app(scope, receive, send)``; Flask is ``app(environ,
start_response)``, and blocks. a2wsgi's ``WSGIMiddleware`` stands between them: it builds
an environ from the scope, runs the WSGI app on a thread of its own pool (ten by default)
so that the loop goes on serving, and hands what the app returns to ``send``:

    python part4_asgi/server.py part4_asgi.apps.flask_app:app
    uvicorn part4_asgi.apps.flask_app:app --port 8888

This is where part 3's thread pool comes back: the pool our asyncio server ran WSGI apps
on is, here, the adapter's.
"""

from a2wsgi import WSGIMiddleware

from part2_wsgi.apps.flask_app import app as flask_app

app = WSGIMiddleware(flask_app)
