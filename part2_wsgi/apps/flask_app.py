"""A small Flask app, to show that our server runs a real framework unmodified.

This is plain Flask: nothing in it knows which server runs it. A Flask ``app`` *is* a
WSGI callable, ``app(environ, start_response)``, so any PEP 3333 server can serve it:

    python part2_wsgi/server.py part2_wsgi.apps.flask_app:app
    waitress-serve --listen=127.0.0.1:8888 part2_wsgi.apps.flask_app:app

It keeps the same route contract as the bare demo app and ``django_app``, so the same
requests can be sent to every app on every server and the answers compared:

    GET  /                 an HTML page: hello, the query parameters, a form that POSTs
    POST /                 the submitted form fields, HTML-escaped
    POST /json             {"received": <the parsed JSON>, "framework": "flask"}; bad JSON: 400
    GET  /error            raises RuntimeError("boom"): Flask answers with its own 500 page
    GET  /sleep?seconds=S  sleeps S seconds (0 to 10, default 1), answers "slept S"
    anything else          Flask's own 404 (or 405 for a known path with the wrong method)
"""

import json
import math
import time

from flask import Flask, Response, jsonify, render_template_string, request

app = Flask(__name__)
# An exception in a view becomes Flask's own "500 Internal Server Error" page and a logged
# traceback; it never reaches the server. That is Flask's default unless debug or testing
# mode is on (FLASK_DEBUG=1 in the environment would turn it on), so we say it outright.
app.config["PROPAGATE_EXCEPTIONS"] = False

# render_template_string escapes every {{ value }}: a posted "<script>" shows as text.
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hello from Flask</title></head>
<body>
<h1>Hello from Flask</h1>
{% if query %}<p>Query string parameters: {% for key, value in query %}{{ key }}={{ value }}
{%- if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
{% if posted is not none %}<h2>You posted</h2>
<dl>
{% for key, value in posted %}<dt>{{ key }}</dt><dd>{{ value }}</dd>
{% endfor %}</dl>{% endif %}
<form method="post" action="/">
  <label>Name <input name="name"></label>
  <label>Message <input name="message"></label>
  <button type="submit">Send</button>
</form>
</body>
</html>
"""


@app.route("/", methods=["GET", "POST"])
def index():
    posted = list(request.form.items(multi=True)) if request.method == "POST" else None
    return render_template_string(PAGE, query=list(request.args.items(multi=True)), posted=posted)


@app.post("/json")
def echo_json():
    # Parse the body whatever its Content-Type, and answer bad JSON with JSON, not HTML.
    try:
        received = json.loads(request.get_data())
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return jsonify(error=f"invalid JSON: {error}"), 400
    return jsonify(received=received, framework="flask")


@app.route("/error")
def error():
    raise RuntimeError("boom")


@app.route("/sleep")
def sleep():
    try:
        seconds = float(request.args.get("seconds", "1"))
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        return Response("seconds must be a number from 0 to 10", 400, mimetype="text/plain")
    seconds = min(max(seconds, 0.0), 10.0)
    time.sleep(seconds)
    return Response(f"slept {seconds:g}", mimetype="text/plain")
