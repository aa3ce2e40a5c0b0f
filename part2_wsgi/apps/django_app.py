"""A whole Django project in one file, to show that our server runs Django unmodified.

Django usually spreads a project over settings.py, urls.py, views.py and wsgi.py; here
they are four sections of this file, in that order. The last line is what wsgi.py
would hold: ``get_wsgi_application()`` returns a plain WSGI callable, so any PEP 3333
server can serve it:

    python part2_wsgi/server.py part2_wsgi.apps.django_app:application
    waitress-serve --listen=127.0.0.1:8888 part2_wsgi.apps.django_app:application

(``app`` is the same callable, for tools that look for that name.) Nothing here knows
which server runs it. It keeps the same route contract as the bare demo app and
``flask_app``, so the same requests can be sent to every app and the answers compared:

    GET  /                 an HTML page: hello, the query parameters, a form that POSTs
    POST /                 the submitted form fields, HTML-escaped
    POST /json             {"received": <the parsed JSON>, "framework": "django"}; bad JSON: 400
    GET  /error            raises RuntimeError("boom"): Django answers with its own 500 page
    GET  /sleep?seconds=S  sleeps S seconds (0 to 10, default 1), answers "slept S"
    anything else          Django's own 404 (or 405 for a known path with the wrong method)
"""

import json
import math
import time

from django.conf import settings

# --- settings.py ---------------------------------------------------------------------

if not settings.configured:
    settings.configure(
        # DEBUG=False: an exception gives Django's plain "Server Error (500)" page, not the
        # debug page with the traceback and settings (which must never face a network).
        DEBUG=False,
        # Django checks the Host header against this list. "*" accepts any: fine here,
        # because the workshop's servers listen on loopback (127.0.0.1) only.
        ALLOWED_HOSTS=["*"],
        # A fixed, public value: this is a demo. A real project reads a secret from its
        # environment. (Nothing here signs anything: no sessions, no CSRF tokens.)
        SECRET_KEY="demo-only-not-secret-web-server-small-journey",
        ROOT_URLCONF=__name__,  # the urlpatterns below
        DATABASES={},  # no database
        INSTALLED_APPS=[],  # no models, no admin, no auth
        # No CsrfViewMiddleware: a real site needs it, but then every POST must carry a
        # token from a page Django rendered, and this demo's form must POST from curl,
        # requests or a raw socket too. No middleware at all: the views below are the app.
        MIDDLEWARE=[],
        USE_I18N=False,
        # With DEBUG=False, Django's default logging prints nothing on the console, so a
        # 500 would leave no trace. Send the errors of django.request (a view's exception,
        # with its traceback) to stderr, where the server's own log goes.
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "ERROR"}},
            "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
        },
    )

# Imported only now: these modules read the settings.
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse  # noqa: E402
from django.template import Context, Engine  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_http_methods, require_POST, require_safe  # noqa: E402

# --- views.py ------------------------------------------------------------------------

# A standalone template engine (no TEMPLATES setting, no template files). Django escapes
# every {{ value }}: a posted "<script>" shows as text.
PAGE = Engine().from_string("""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hello from Django</title></head>
<body>
<h1>Hello from Django</h1>
{% if query %}<p>Query string parameters: {{ query }}</p>{% endif %}
{% if posted is not None %}<h2>You posted</h2>
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
""")


def pairs(query_dict):
    """A QueryDict (request.GET, request.POST) as (key, value) pairs, repeated keys too."""
    return [(key, value) for key, values in query_dict.lists() for value in values]


@require_http_methods(["GET", "HEAD", "POST"])
def index(request):
    posted = pairs(request.POST) if request.method == "POST" else None
    query = ", ".join(f"{key}={value}" for key, value in pairs(request.GET))  # escaped by the template
    return HttpResponse(PAGE.render(Context({"query": query, "posted": posted})))


@require_POST
def echo_json(request):
    # Parse the body whatever its Content-Type, and answer bad JSON with JSON, not HTML.
    try:
        received = json.loads(request.body)
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return JsonResponse({"error": f"invalid JSON: {error}"}, status=400)
    return JsonResponse({"received": received, "framework": "django"})


@require_safe
def error(request):
    raise RuntimeError("boom")


@require_safe
def sleep(request):
    try:
        seconds = float(request.GET.get("seconds", "1"))
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        return HttpResponseBadRequest("seconds must be a number from 0 to 10", content_type="text/plain; charset=utf-8")
    seconds = min(max(seconds, 0.0), 10.0)
    time.sleep(seconds)
    return HttpResponse(f"slept {seconds:g}", content_type="text/plain; charset=utf-8")


# --- urls.py -------------------------------------------------------------------------

# Django matches the path without its leading "/": "" is "/", "json" is "/json".
urlpatterns = [
    path("", index),
    path("json", echo_json),
    path("error", error),
    path("sleep", sleep),
]

# --- wsgi.py -------------------------------------------------------------------------

application = get_wsgi_application()
app = application
