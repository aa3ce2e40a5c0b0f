"""The files app without sendfile: a folder served by reading it in Python, 64 KB a piece.

    BENCH_FILES_ROOT=DIR python part3_concurrency/prefork_server.py part3_concurrency.measure.read_and_send_app:app

``bench.py --files`` serves the same folder from the same server twice: with ``--files DIR``
(the files app hands the server ``wsgi.file_wrapper``, and the server hands the file to the
kernel with ``sendfile()``) and with this app, the files app told not to use the wrapper
(``file_wrapper=False``): every piece is read into a Python bytes object and written to the
socket. The difference in CPU time per GB is what sendfile saves.

The folder comes from the environment, since an app is named as ``module:callable``.
"""

import os

from part2_wsgi.apps.files_app import FilesApp
from part3_concurrency.measure.files_bench import ROOT_VARIABLE

app = FilesApp(os.environ[ROOT_VARIABLE], file_wrapper=False)
