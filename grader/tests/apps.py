"""Small WSGI apps the part 3 checks serve: each says who served it, and how.

pid_app       "pid 1234": the process that ran the app (a child, for a forking server)
counting_app  sleeps ?seconds=S, then says "peak N": the most requests in the app at once;
              /raise fails half way through its body, as raising_app's does, and is not counted
raising_app   /raise fails half way through its body (RuntimeError); anything else: "served"
together_app  sleeps until ?until=T (a time.time()), then says its pid: many children end at once
flags_app     "multithread True multiprocess False": what the server told the app (PEP 3333)
sockets_app   "sockets 1234 5678": the inodes of the sockets the process that runs the app holds

pid_app and counting_app announce each request on stderr as they begin it ("app begins
/slow?seconds=2.5"), so that a check knows a request is in the app without sleeping and
hoping (``StudentServer.wait_for_app``).
"""

import os
import sys
import threading
import time
from urllib.parse import parse_qs

APP_BEGINS = "app begins "
_lock = threading.Lock()
_inside = 0
_peak = 0


def answer(start_response, text):
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def announce(environ):
    query = environ.get("QUERY_STRING")
    sys.stderr.write(f"{APP_BEGINS}{environ['PATH_INFO']}{'?' + query if query else ''}\n")
    sys.stderr.flush()


def seconds(environ):
    return float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["0"])[0])


def pid_app(environ, start_response):
    announce(environ)
    time.sleep(seconds(environ))
    return answer(start_response, f"pid {os.getpid()}")


def counting_app(environ, start_response):
    global _inside, _peak
    if environ["PATH_INFO"] == "/raise":
        return fail_half_way(start_response)
    announce(environ)
    with _lock:
        _inside += 1
        _peak = max(_peak, _inside)
    try:
        time.sleep(seconds(environ))
    finally:
        with _lock:
            _inside -= 1
    return answer(start_response, f"peak {_peak}")


def raising_app(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        return fail_half_way(start_response)
    return answer(start_response, "served")


def fail_half_way(start_response):
    """A body that raises after its first piece: too late for a 500, so the error goes up."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"half a body"
    raise RuntimeError("raising_app fails half way through /raise, on purpose")


def together_app(environ, start_response):
    until = float(parse_qs(environ.get("QUERY_STRING", "")).get("until", ["0"])[0])
    time.sleep(max(0.0, until - time.time()))  # every request of a burst answers at the same moment
    return answer(start_response, f"pid {os.getpid()}")


def flags_app(environ, start_response):
    return answer(
        start_response, f"multithread {environ.get('wsgi.multithread')} multiprocess {environ.get('wsgi.multiprocess')}"
    )


def sockets_app(environ, start_response):
    """Which sockets the serving process holds: a forking server's child must not hold the listener."""
    inodes = []
    try:
        for descriptor in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{descriptor}")
            except OSError:
                continue  # the descriptor listdir itself used, closed since
            if target.startswith("socket:["):
                inodes.append(target[len("socket:[") : -1])
    except OSError:
        return answer(start_response, "sockets unknown")  # no /proc (macOS)
    return answer(start_response, "sockets " + " ".join(inodes))
