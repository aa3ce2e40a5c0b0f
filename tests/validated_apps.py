"""Apps wrapped in ``wsgiref.validate.validator``, for servers started by the tests.

The validator checks both sides of PEP 3333 as the request goes through: the environ
and ``start_response`` the server provides, and what the app does with them. A
broken promise raises AssertionError inside the app call, which the server turns
into a 500 and a logged traceback, so a test that expects a 200 and no traceback
also proves the server kept its side of the contract.

    python part2_wsgi/server.py tests.validated_apps:demo
"""

from wsgiref.validate import validator

import part2_wsgi.apps.demo_app

demo = validator(part2_wsgi.apps.demo_app.app)

import part2_wsgi.apps.django_app  # noqa: E402  (configures Django for this process)
import part2_wsgi.apps.flask_app  # noqa: E402

flask = validator(part2_wsgi.apps.flask_app.app)
django = validator(part2_wsgi.apps.django_app.application)
