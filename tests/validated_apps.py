"""Apps wrapped in ``wsgiref.validate.validator``, for servers started by the tests.

The validator checks both sides of PEP 3333 as the request goes through: the environ
and ``start_response`` the server provides, and what the app does with them. A
broken promise raises AssertionError inside the app call, which the server turns
into a 500 and a logged traceback, so a test that expects a 200 and no traceback
also proves the server kept its side of the contract.

    python part2_wsgi/server.py tests.validated_apps:demo

Each app is built when a server first asks for it (a module ``__getattr__``, PEP 562):
a server of the demo app does not pay a second for importing Flask and Django.
"""

import importlib
from wsgiref.validate import validator

# name: (module, the WSGI callable in it); importing django_app configures Django for this process
APPS = {
    "demo": ("part2_wsgi.apps.demo_app", "app"),
    "flask": ("part2_wsgi.apps.flask_app", "app"),
    "django": ("part2_wsgi.apps.django_app", "application"),
}


def __getattr__(name):
    if name not in APPS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = APPS[name]
    app = globals()[name] = validator(getattr(importlib.import_module(module), attribute))
    return app
