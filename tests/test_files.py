"""The files app (part2_wsgi/apps/files_app.py) and ``--files DIR``, on every server.

Each of the seven servers is started once, with ``--files`` on a folder built for the
module, and gets the same battery over raw sockets (a client library would normalise
the paths we send on purpose): path traversal in all its disguises, names that must
work, conditional requests (304), ranges (206, 416), HEAD, 405, a folder's redirect and
its index.html. A secret file sits beside the folder; no answer may ever hold its words.

Then, without sockets: ``resolve_path`` and ``parse_range`` case by case, and the app
with a server's ``wsgi.file_wrapper``.
"""

import http.client
import os
import socket
import subprocess
import sys
import threading
import wsgiref.simple_server
from email.utils import formatdate
from pathlib import Path
from wsgiref.validate import validator

import pytest

from harness import ROOT, start_server
from part2_wsgi.apps.files_app import FilesApp, RangeNotSatisfiable, parse_range, resolve_path
from tests.helpers import wsgi_environ
from tests.servers import SERVERS

pytestmark = pytest.mark.timeout(60)

SECRET = b"TOP-SECRET: this must never leave the machine"
HELLO = b"Hello, files!\n"
BIG = bytes(range(256)) * 1200  # 300 KB: more than one 64 KB block, each block different
REFUSED = {400, 403, 404}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """base/www (the folder served), base/secret.txt beside it, base/www2 (a sibling whose
    name starts like the folder's) with a secret too, and symlinks in and out."""
    base = tmp_path_factory.mktemp("files")
    www = base / "www"
    (www / "dir").mkdir(parents=True)
    (www / "docs").mkdir()
    (www / "hello.txt").write_bytes(HELLO)
    (www / "big.bin").write_bytes(BIG)
    (www / "with space.txt").write_bytes(b"a name with a space\n")
    (www / "café.txt").write_bytes(b"a name that is not ASCII\n")
    (www / "dir" / "index.html").write_bytes(b"<h1>the index of dir</h1>\n")
    (www / "docs" / "notes.txt").write_bytes(b"notes\n")  # docs/ has no index.html
    (base / "secret.txt").write_bytes(SECRET)
    (base / "www2").mkdir()
    (base / "www2" / "secret.txt").write_bytes(SECRET)
    (www / "escape.txt").symlink_to(base / "secret.txt")  # a symlink inside that points outside
    (www / "sibling").symlink_to(base / "www2")
    (www / "alias.txt").symlink_to(www / "hello.txt")  # inside, to inside: fine
    (www / "loop").symlink_to("loop")
    return base


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, site):
    with start_server(SERVERS[request.param], "--files", site / "www") as running:
        yield running


# --- raw HTTP ----------------------------------------------------------------------------------


class Reply:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else None
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def __repr__(self):
        return f"Reply({self.raw[:300]!r})"


def ask(server, target, method="GET", headers=()):
    """Send one request exactly as written, read until the server closes; return a Reply."""
    lines = [f"{method} {target} HTTP/1.1", "Host: test", "Connection: close", *headers, "", ""]
    with socket.create_connection(server.address, timeout=10) as connection:
        connection.sendall("\r\n".join(lines).encode("latin-1"))
        raw = b""
        while data := connection.recv(65536):
            raw += data
    return Reply(raw)


# --- never a byte from outside ---------------------------------------------------------------------

ATTACKS = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/dir/../../secret.txt",
    "/./../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/dir/%2e%2e/%2e%2e/secret.txt",
    "/%252e%252e/secret.txt",  # double encoding: decoded once it is "%2e%2e", a name
    "/%252e%252e%252fsecret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/dir\\..\\..\\secret.txt",
    "//etc/passwd",
    "/%2fetc/passwd",
    "/hello.txt%00",
    "/%00/../secret.txt",
    "/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for "."
    "/%c0%ae%c0%ae%c0%afsecret.txt",  # ... and for "/"
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/escape.txt",  # a symlink inside that points outside
    "/sibling/secret.txt",  # a symlink to the sibling folder www2
    "/../www2/secret.txt",  # www2 starts like www: a prefix check lets it through
    "../secret.txt",
    "http://test/../secret.txt",
]


def test_no_path_leaves_the_folder(server, site):
    targets = ATTACKS + [str(site / "secret.txt"), "/" + str(site / "secret.txt")]
    for target in targets:
        reply = ask(server, target)
        assert reply.status in REFUSED, f"GET {target}: {reply!r}"
        assert SECRET not in reply.raw and b"root:" not in reply.raw, f"GET {target} leaked a file: {reply!r}"
    assert ask(server, "/hello.txt").body == HELLO, "the server still serves after them"


def test_serves_files_with_their_headers(server):
    reply = ask(server, "/hello.txt")
    assert reply.status == 200 and reply.body == HELLO, reply
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["content-length"] == str(len(HELLO))
    assert reply.headers["etag"].startswith('"') and reply.headers["etag"].endswith('"'), "a strong ETag"
    assert reply.headers["last-modified"].endswith(" GMT")
    assert reply.headers["accept-ranges"] == "bytes"
    big = ask(server, "/big.bin")
    assert big.status == 200 and big.body == BIG, f"big.bin: {len(big.body)} bytes of {len(BIG)}"
    assert big.headers["content-type"] == "application/octet-stream"


def test_names_with_spaces_and_beyond_ascii_work(server):
    for target, body in (
        ("/with%20space.txt", b"a name with a space\n"),
        ("/caf%C3%A9.txt", b"a name that is not ASCII\n"),
        ("/alias.txt", HELLO),  # a symlink that stays inside
        ("/dir/../hello.txt", HELLO),  # ".." that stays inside
    ):
        reply = ask(server, target)
        assert reply.status == 200 and reply.body == body, f"GET {target}: {reply!r}"


def test_conditional_requests_answer_304(server):
    first = ask(server, "/hello.txt")
    tag, modified = first.headers["etag"], first.headers["last-modified"]
    for header in (
        f"If-None-Match: {tag}",
        f"If-None-Match: W/{tag}",  # If-None-Match compares weakly
        f'If-None-Match: "another", {tag}',
        "If-None-Match: *",
        f"If-Modified-Since: {modified}",
    ):
        reply = ask(server, "/hello.txt", headers=[header])
        assert reply.status == 304 and reply.body == b"", f"{header}: {reply!r}"
        assert reply.headers["etag"] == tag
    # If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2): another tag, a whole answer.
    reply = ask(server, "/hello.txt", headers=['If-None-Match: "other"', f"If-Modified-Since: {modified}"])
    assert reply.status == 200 and reply.body == HELLO, reply
    long_ago = formatdate(0, usegmt=True)
    reply = ask(server, "/hello.txt", headers=[f"If-Modified-Since: {long_ago}"])
    assert reply.status == 200 and reply.body == HELLO, reply


def test_ranges_answer_206_or_416(server):
    size = len(BIG)
    for header, (start, end) in (
        ("bytes=0-4", (0, 4)),
        ("bytes=-3", (size - 3, size - 1)),
        ("bytes=70000-", (70000, size - 1)),
        ("bytes=65530-140000", (65530, 140000)),
        ("bytes=100-99999999", (100, size - 1)),
    ):
        reply = ask(server, "/big.bin", headers=[f"Range: {header}"])
        assert reply.status == 206, f"{header}: {reply!r}"
        assert reply.headers["content-range"] == f"bytes {start}-{end}/{size}", header
        assert reply.body == BIG[start : end + 1], f"{header}: {len(reply.body)} bytes"
    reply = ask(server, "/big.bin", headers=["Range: bytes=0-1,5-9"])
    assert reply.status == 200 and reply.body == BIG, "several ranges: the whole file"
    reply = ask(server, "/big.bin", headers=[f"Range: bytes={size}-"])
    assert reply.status == 416 and reply.headers["content-range"] == f"bytes */{size}", reply
    tag = ask(server, "/big.bin", method="HEAD").headers["etag"]
    reply = ask(server, "/big.bin", headers=["Range: bytes=0-4", 'If-Range: "an old version"'])
    assert reply.status == 200 and reply.body == BIG, "If-Range with another tag: the whole file"
    reply = ask(server, "/big.bin", headers=["Range: bytes=0-4", f"If-Range: {tag}"])
    assert reply.status == 206 and reply.body == BIG[:5], reply


def test_head_and_other_methods(server):
    reply = ask(server, "/big.bin", method="HEAD")
    assert reply.status == 200 and reply.body == b"", reply
    assert reply.headers["content-length"] == str(len(BIG))
    for method in ("POST", "PUT", "DELETE"):
        reply = ask(server, "/hello.txt", method=method, headers=["Content-Length: 0"])
        assert reply.status == 405 and reply.headers["allow"] == "GET, HEAD", f"{method}: {reply!r}"


def test_folders_redirect_and_answer_their_index(server):
    reply = ask(server, "/dir?x=1")
    assert reply.status == 301 and reply.headers["location"] == "/dir/?x=1", reply
    reply = ask(server, "//dir")  # never "//dir/": a browser reads that as another host
    assert reply.status == 301 and reply.headers["location"] == "/dir/", reply
    reply = ask(server, "/dir/")
    assert reply.status == 200 and reply.body == b"<h1>the index of dir</h1>\n", reply
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    for target in ("/docs/", "/", "/hello.txt/", "/nothing-here"):  # no index.html, no listing
        reply = ask(server, target)
        assert reply.status == 404 and b"notes" not in reply.body, f"GET {target}: {reply!r}"


def test_a_kept_alive_connection_carries_a_range_then_a_whole_file(server):
    """Each body is exactly its Content-Length: the next response on the connection is intact."""
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    try:
        for headers, expected in (({"Range": "bytes=10-70009"}, BIG[10:70010]), ({}, BIG), ({}, HELLO)):
            connection.request("GET", "/hello.txt" if expected is HELLO else "/big.bin", headers=headers)
            response = connection.getresponse()
            assert response.read() == expected
    finally:
        connection.close()


# --- the command line ----------------------------------------------------------------------------


def test_files_with_an_app_serves_files_first_then_the_app(site):
    with start_server(SERVERS["part2"], "part2_wsgi.apps.demo_app:app", "--files", site / "www") as running:
        assert ask(running, "/hello.txt").body == HELLO
        home = ask(running, "/")
        assert home.status == 200 and b"<form" in home.body, "no file: the app answers"
        assert ask(running, "/../secret.txt").status == 404


def test_a_missing_folder_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "nowhere"
    completed = subprocess.run(
        [sys.executable, str(ROOT / SERVERS["select"]), "--files", str(missing), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "nowhere" in completed.stderr, completed.stderr
    assert completed.stdout == ""


# --- resolve_path and parse_range, case by case --------------------------------------------------


def test_resolve_path(site):
    www = site / "www"
    root = os.path.realpath(www)
    assert resolve_path(www, "/hello.txt") == Path(root, "hello.txt")
    assert resolve_path(str(www), "/") == Path(root)
    assert resolve_path(www, "/caf\xc3\xa9.txt") == Path(root, "café.txt")  # PATH_INFO is latin-1
    assert resolve_path(www, "/dir/../hello.txt") == Path(root, "hello.txt")
    assert resolve_path(www, "/alias.txt") == Path(root, "hello.txt")
    assert resolve_path(www, "/%2e%2e/secret.txt") == Path(root, "%2e%2e", "secret.txt")  # a name, not a dot
    assert resolve_path(www, "//etc/passwd") == Path(root, "etc", "passwd")  # not the absolute path
    for url_path in (
        "/../secret.txt",
        "/dir/../../secret.txt",
        "/../www2/secret.txt",
        "/escape.txt",
        "/sibling/secret.txt",
        "/hello.txt\0",
        "/..\\secret.txt",
        "/\xc0\xae\xc0\xae/secret.txt",
        "/\xff",
        "/loop",  # a loop of symlinks names nothing, on every Python version
        "/loop/x",
    ):
        assert resolve_path(www, url_path) is None, url_path


@pytest.mark.parametrize(
    "header, size, expected",
    [
        ("bytes=0-499", 1000, (0, 499)),
        ("bytes=500-", 1000, (500, 999)),
        ("bytes=-100", 1000, (900, 999)),
        ("bytes=-5000", 1000, (0, 999)),
        ("bytes=900-5000", 1000, (900, 999)),
        ("bytes=999-999", 1000, (999, 999)),
        ("Bytes = 1-2", 1000, (1, 2)),
        ("bytes=0-1,5-9", 1000, None),
        ("items=0-1", 1000, None),
        ("bytes=5-1", 1000, None),
        ("bytes=a-b", 1000, None),
        ("bytes=-", 1000, None),
        ("bytes=1", 1000, None),
        ("bytes=+1-2", 1000, None),
        ("bytes=\u0663-4", 1000, None),
        ("bytes=0-0", 0, None),  # an empty file has no first byte for a 206: a 200, empty
        ("bytes=-5", 0, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header, size", [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000)])
def test_parse_range_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


# --- the app, with a server's file wrapper ----------------------------------------------------------


class FileWrapper:
    """What a server puts in environ["wsgi.file_wrapper"] (PEP 3333), recording what it got."""

    def __init__(self, file, block_size=8192):
        self.file, self.block_size, self.start = file, block_size, file.tell()

    def __iter__(self):
        return iter(lambda: self.file.read(self.block_size), b"")

    def close(self):
        self.file.close()


def call(app, path, headers=None, wrapper=True):
    environ = wsgi_environ(path, **(headers or {}))
    if wrapper:
        environ["wsgi.file_wrapper"] = FileWrapper
    started = []
    result = validator(app)(environ, lambda status, headers, exc_info=None: started.append((status, dict(headers))))
    return started[0], result


def test_the_app_hands_the_file_to_the_servers_wrapper(site):
    app = FilesApp(site / "www")
    (status, headers), result = call(app, "/big.bin", {"HTTP_RANGE": "bytes=100-199"})
    assert status == "206 Partial Content" and headers["Content-Length"] == "100"
    wrapped = result.original_iterator  # the validator's wrapper around what the app returned
    assert isinstance(wrapped, FileWrapper) and wrapped.start == 100, "seek to the range's start, then wrap"
    result.close()
    assert wrapped.file.file.closed


def test_a_range_stays_a_range_on_a_server_that_reads_the_wrapper_whole(site):
    """wsgiref's file_wrapper reads to the end and sends it all, whatever the Content-Length:
    the piece the app wraps ends where the range ends."""

    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args):
            pass

    with wsgiref.simple_server.make_server("127.0.0.1", 0, FilesApp(site / "www"), handler_class=Quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with socket.create_connection(server.server_address, timeout=10) as connection:
                connection.sendall(b"GET /big.bin HTTP/1.0\r\nRange: bytes=10-19\r\n\r\n")
                raw = b""
                while data := connection.recv(65536):
                    raw += data
        finally:
            server.shutdown()
    reply = Reply(raw)
    assert reply.status == 206 and reply.body == BIG[10:20], f"{len(reply.body)} bytes: {reply!r}"


def test_the_app_reads_the_file_itself_without_a_wrapper_and_closes_it(site):
    for app, wrapper in ((FilesApp(site / "www"), False), (FilesApp(site / "www", file_wrapper=False), True)):
        (status, headers), result = call(app, "/big.bin", {"HTTP_RANGE": "bytes=65000-"}, wrapper=wrapper)
        assert b"".join(result) == BIG[65000:]
        file = result.original_iterator.file
        result.close()
        assert file.closed
        # Closed before a single block was asked for: the file is closed all the same.
        (status, headers), result = call(app, "/big.bin", wrapper=wrapper)
        file = result.original_iterator.file
        result.close()
        assert file.closed
