"""Part 2's Django project, served through ASGI: what a Django project's asgi.py holds.

Django speaks both interfaces. ``get_wsgi_application()`` (part2_wsgi/apps/django_app.py)
returns a WSGI callable; ``get_asgi_application()``, below, an ASGI one, for the very same
settings, urls and views:

    python part4_asgi/server.py part4_asgi.apps.django_app:application
    uvicorn part4_asgi.apps.django_app:application --port 8888

Its views are plain ``def`` functions, which block, so Django's ASGI handler runs each
one on a thread (asgiref's ``sync_to_async``): under ASGI, a synchronous framework
brings its thread pool with it. The routes are part 2's (``/``, ``/json``, ``/error``,
``/sleep``): the same requests as for Flask, on every server.
"""

from django.core.asgi import get_asgi_application

import part2_wsgi.apps.django_app  # noqa: F401 (the project: it configures the settings and holds the urls)

application = get_asgi_application()
app = application
