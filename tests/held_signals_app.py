"""A WSGI app for the part 3 server tests: it answers with the signals its thread holds back.

A program the app starts (``subprocess.run``, say) inherits them held: Ctrl-C and ``kill``
would never reach it. A server that holds signals for a moment of its own must not pass
that on to the threads that run the app.

    python part3_concurrency/asyncio_server.py tests.held_signals_app:app --port 0
"""

import signal


def app(environ, start_response):
    held = sorted(signal.Signals(number).name for number in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [" ".join(held).encode()]
