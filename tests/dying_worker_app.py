"""A WSGI app for the prefork tests: the demo app, in a master whose later workers die.

Loaded in the master, before any fork, it asks (``os.register_at_fork``) that every
process forked after the first exit at once, before it can serve or publish on the
board: with ``--workers 2``, the first worker lives and the second dies at every start.

    python part3_concurrency/prefork_server.py tests.dying_worker_app:app --workers 2 --port 0
"""

import os

from part2_wsgi.apps.demo_app import app  # noqa: F401  (the app served, unchanged)

forks_before = 0  # counted in the master; each child inherits the count at its fork


def count_fork():
    global forks_before
    forks_before += 1


def die_unless_first():
    if forks_before:
        os._exit(1)


os.register_at_fork(after_in_parent=count_fork, after_in_child=die_unless_first)
