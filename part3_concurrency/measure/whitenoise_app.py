"""whitenoise, the static-file library Django and Flask deployments use, as bench.py runs it.

    BENCH_FILES_ROOT=DIR python part2_wsgi/mixmatch.py gunicorn-gthread part3_concurrency.measure.whitenoise_app:app

``WhiteNoise(app, root=DIR)`` answers for the files of DIR and passes every other request
to ``app`` (here a 404). It returns ``environ["wsgi.file_wrapper"](file)``, so on gunicorn
the file goes out with ``sendfile()``, as on our servers with ``--files``. The folder comes
from the environment, since an app is named as ``module:callable``.
"""

import os

from whitenoise import WhiteNoise

from part3_concurrency.measure.files_bench import ROOT_VARIABLE


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"Not Found\n"]


app = WhiteNoise(not_found, root=os.environ[ROOT_VARIABLE])
