"""What one small-file request costs the files app itself, beside whitenoise, in process.

    python part3_concurrency/measure/files_app_cost.py [--requests N] [--out DIR]

No server and no socket: each app is called the way a server calls it, on the same 10 KB
file of a folder as deep as ``bench.py --files`` makes it. One call is
``app(environ, start_response)``, the body read to its end through the server's
``wsgi.file_wrapper``, then ``close()``. The best of 5 rounds of N calls is kept: the
least disturbed, which is what an app costs, not what the machine did meanwhile. It
writes ``files_app_cost.csv``: microseconds per request for each app, and their ratio.

Why it matters: a server answers a small file no faster than its app can. whitenoise
answers from a table it builds at start-up; the files app opens and checks a file at
every request (files_app.py says why), so it does a little more by design.
"""

import argparse
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # run by path: add the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from part2_wsgi.apps.files_app import FilesApp
from part2_wsgi.wsgi import FileWrapper
from part3_concurrency.measure.files_bench import FILE_NAMES, SMALL_BYTES, make_folder

ROUNDS = 5
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "bench"


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return []


def environ_for(path):
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8888",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8888",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }


def one_request(app, path):
    """What a server does with the app for one GET: call, read the body to its end, close."""
    result = app(environ_for(path), lambda status, headers, exc_info=None: None)
    try:
        for _ in result:
            pass
    finally:
        if hasattr(result, "close"):
            result.close()


def seconds_per_request(app, path, requests):
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(requests):
            one_request(app, path)
        best = min(best, (time.perf_counter() - started) / requests)
    return best


def apps(folder):
    """name -> app. whitenoise only if it is installed (the workshop's requirements have it)."""
    found = {"files_app": FilesApp(folder)}
    try:
        from whitenoise import WhiteNoise
    except ImportError:
        print("whitenoise is not installed: python -m pip install -r requirements.txt", file=sys.stderr)
    else:
        found["whitenoise"] = WhiteNoise(not_found, root=str(folder))
    return found


def measure(requests):
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        folder = make_folder(Path(tmp) / "site", SMALL_BYTES, 0)
        path = "/" + FILE_NAMES["small"]
        return {name: seconds_per_request(app, path, requests) for name, app in apps(folder).items()}


def write_csv(costs, out):
    out.mkdir(parents=True, exist_ok=True)
    target = out / "files_app_cost.csv"
    with open(target, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["app", "microseconds_per_request", "times_whitenoise", "python"])
        anchor = costs.get("whitenoise")
        for name, seconds in costs.items():
            ratio = f"{seconds / anchor:.2f}" if anchor else ""
            writer.writerow([name, f"{seconds * 1e6:.1f}", ratio, sys.version.split()[0]])
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="calls per round (default 5000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the CSV goes (default {DEFAULT_OUT})")
    options = parser.parse_args(argv)
    costs = measure(options.requests)
    for name, seconds in costs.items():
        print(f"{name:12} {seconds * 1e6:7.1f} µs per request")
    print(f"wrote {write_csv(costs, options.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
