"""Files you can trust: the files app opens first, then checks what it opened.

A name is a promise that can change between two system calls. Someone who can write in
the served folder (an upload folder, a shared host) may swap a file for a FIFO, or a
folder for a symlink to /etc, between the moment the app looks at a name and the moment
it opens it. So:

* in process, the app's own logic: a folder's index.html that is a symlink out, symlinks
  that stay in (relative, absolute, through another symlink), loops, special files, the
  errors that are a 404 and the shortages that are a 503, compressed types, the
  preconditions of RFC 9110 section 13 and a Last-Modified never later than Date;
* each race once made deterministic: the swap is injected between the app's look at the
  name and its open, through a patched ``os.stat`` and ``os.open``;
* each race once live, bounded: a thread swaps while a few hundred requests come, on a
  blocking server and an event loop; the FIFO swap on all seven servers, since a hung open
  is the server's problem (it stops serving others), not only the app's.
"""

import errno
import os
import socket
import sys
import threading
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest

from harness import start_server
from part2_wsgi.apps import files_app
from part2_wsgi.apps.files_app import MAX_SYMLINKS, FilesApp, parse_range
from tests.helpers import wsgi_environ
from tests.servers import SERVERS

pytestmark = pytest.mark.timeout(60)

SECRET = b"TOP-SECRET: this must never leave the machine"
HELLO = b"Hello, files!\n"
INSIDE = b"the file inside the folder\n"


@pytest.fixture
def site(tmp_path):
    """tmp/www is served; tmp/outside holds a secret.txt and a file.txt with the secret."""
    www, outside = tmp_path / "www", tmp_path / "outside"
    (www / "dir").mkdir(parents=True)
    outside.mkdir()
    (www / "hello.txt").write_bytes(HELLO)
    (www / "empty.txt").write_bytes(b"")
    (www / "dir" / "index.html").write_bytes(b"<h1>dir</h1>\n")
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "file.txt").write_bytes(SECRET)
    (outside / "index.html").write_bytes(SECRET)
    return tmp_path


def call(app, path, method="GET", **headers):
    """Call a WSGI app as a server would; return (status code, headers, body, what it logged)."""
    environ = wsgi_environ(path, method, **{"HTTP_" + name.upper(): value for name, value in headers.items()})
    started = []
    result = app(environ, lambda status, headers, exc_info=None: started.append((status, dict(headers))))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    status, headers = started[0]
    return int(status[:3]), headers, body, environ["wsgi.errors"].getvalue()


# --- the folder's index goes through the same rule ---------------------------------------------


def test_a_folders_index_that_is_a_symlink_out_is_refused(site):
    www = site / "www"
    for name, target in (
        ("absolute", site / "outside" / "secret.txt"),
        ("relative", "../../outside/secret.txt"),
        ("etc", "/etc/passwd"),
        ("outside-folder", site / "outside" / "index.html"),
    ):
        (www / name).mkdir()
        (www / name / "index.html").symlink_to(target)
        status, _, body, _ = call(FilesApp(www), f"/{name}/")
        assert status == 404 and SECRET not in body and b"root:" not in body, f"/{name}/ -> {target}: {status} {body!r}"
    # An index.html symlink that stays inside is served, as any symlink that stays inside.
    (www / "inside").mkdir()
    (www / "inside" / "index.html").symlink_to("../dir/index.html")
    assert call(FilesApp(www), "/inside/")[:1] == (200,)


def test_symlinks_that_stay_inside_are_followed_and_the_rest_refused(site):
    www, outside = site / "www", site / "outside"
    (www / "abs.txt").symlink_to(www / "hello.txt")
    (www / "rel.txt").symlink_to("dir/../hello.txt")
    (www / "dir" / "up.txt").symlink_to("../hello.txt")
    (www / "absdir").symlink_to(www / "dir")
    (site / "www-link").symlink_to("www")  # the root reached through another name, as /var on macOS
    (www / "via-other-name.txt").symlink_to(site / "www-link" / "hello.txt")
    (www / "dir" / "climb.txt").symlink_to("../../outside/secret.txt")  # ".." stops at the root
    (www / "out").symlink_to(outside)
    (outside / "back").symlink_to(www)  # out, then back in: inside again
    app = FilesApp(www)
    for path in ("/abs.txt", "/rel.txt", "/dir/up.txt", "/via-other-name.txt", "/out/back/hello.txt"):
        status, _, body, _ = call(app, path)
        assert (status, body) == (200, HELLO), f"{path}: {status} {body!r}"
    assert call(app, "/absdir")[0] == 301
    assert call(app, "/absdir/")[2] == b"<h1>dir</h1>\n"
    for path in ("/dir/climb.txt", "/out/secret.txt", "/out/", "/absdir/../../outside/secret.txt", "/out/file.txt"):
        status, _, body, _ = call(app, path)
        assert status == 404 and SECRET not in body, f"{path}: {status} {body!r}"


def test_loops_long_chains_and_special_files_are_404(site):
    www = site / "www"
    (www / "loop-a").symlink_to("loop-b")
    (www / "loop-b").symlink_to("loop-a")
    previous = "hello.txt"
    for hop in range(MAX_SYMLINKS + 1):
        (www / f"hop{hop}").symlink_to(previous)
        previous = f"hop{hop}"
    os.mkfifo(www / "fifo")
    (www / "to-fifo").symlink_to("fifo")
    app = FilesApp(www)
    assert call(app, f"/hop{MAX_SYMLINKS - 1}")[:1] == (200,), f"{MAX_SYMLINKS} hops are allowed"
    for path in ("/loop-a", "/loop-a/x", f"/hop{MAX_SYMLINKS}", "/fifo", "/to-fifo", "/hello.txt/", "/a" * 300,
                 "/" + "n" * 300, "/hello.txt\0", "/hello.txt/x"):  # fmt: skip
        status, _, _, log = call(app, path)
        assert status == 404 and log == "", f"{path[:40]}: {status} {log}"


def test_a_server_short_of_descriptors_answers_503_and_says_so_once(site, monkeypatch):
    def short_of_descriptors(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    app = FilesApp(site / "www")
    monkeypatch.setattr(files_app.os, "open", short_of_descriptors)
    status, headers, _, log = call(app, "/hello.txt")
    assert status == 503 and headers["Retry-After"] == "1", (status, headers)
    assert log.count("\n") == 1 and "Too many open files" in log and "Traceback" not in log, log


# --- types: the bytes on disk, never the type inside a compressed file ----------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("page.html.gz", "application/gzip"),
        ("archive.tar.gz", "application/gzip"),
        ("notes.txt.gz", "application/gzip"),
        ("archive.tgz", "application/gzip"),
        ("drawing.svgz", "application/gzip"),
        ("archive.tbz2", "application/x-bzip2"),
        ("data.bz2", "application/x-bzip2"),
        ("archive.txz", "application/x-xz"),
        ("data.xz", "application/x-xz"),
        ("page.html.br", "application/octet-stream"),
        ("old.Z", "application/octet-stream"),
        ("page.html", "text/html; charset=utf-8"),
        ("no-suffix", "application/octet-stream"),
        ("data:text.html", "text/html; charset=utf-8"),  # a colon in a name is not a URL scheme
    ],
)
def test_a_compressed_file_is_served_as_what_it_is(site, name, expected):
    (site / "www" / name).write_bytes(b"\x1f\x8b compressed, say")
    status, headers, _, _ = call(FilesApp(site / "www"), "/" + name)
    assert status == 200 and headers["Content-Type"] == expected, headers
    assert "Content-Encoding" not in headers


# --- preconditions, RFC 9110 section 13, in section 13.2.2's order ---------------------------------


@pytest.fixture
def versioned(site):
    """big.bin, written an hour ago: (app, its ETag, its Last-Modified, an earlier and a later date)."""
    path = site / "www" / "big.bin"
    path.write_bytes(bytes(range(256)) * 40)
    hour_ago = int(time.time()) - 3600
    os.utime(path, (hour_ago, hour_ago))
    app = FilesApp(site / "www")
    _, headers, _, _ = call(app, "/big.bin", method="HEAD")
    earlier, later = formatdate(hour_ago - 60, usegmt=True), formatdate(hour_ago + 60, usegmt=True)
    return app, headers["ETag"], headers["Last-Modified"], earlier, later


def test_preconditions_in_the_rfcs_order(versioned):
    app, tag, modified, earlier, later = versioned
    cases = [
        # If-Match: strong comparison; a false one is a 412, even for a range (412 wins over 206 and 416).
        ({"If-Match": tag}, 200),
        ({"If-Match": f'"other", {tag}'}, 200),
        ({"If-Match": "*"}, 200),
        ({"If-Match": f"W/{tag}"}, 412),
        ({"If-Match": '"other"'}, 412),
        ({"If-Match": '"other"', "Range": "bytes=0-9"}, 412),
        ({"If-Match": '"other"', "Range": "bytes=999999-"}, 412),
        ({"If-Match": '"other"', "If-None-Match": tag}, 412),
        ({"If-Match": tag, "Range": "bytes=0-9"}, 206),
        # If-Unmodified-Since, only without If-Match.
        ({"If-Unmodified-Since": earlier}, 412),
        ({"If-Unmodified-Since": earlier, "Range": "bytes=0-9"}, 412),
        ({"If-Unmodified-Since": modified}, 200),
        ({"If-Unmodified-Since": later}, 200),
        ({"If-Unmodified-Since": earlier, "If-Match": tag}, 200),
        ({"If-Unmodified-Since": "yesterday"}, 200),
        ({"If-Unmodified-Since": f"{earlier}, {earlier}"}, 200),  # a list of dates: ignored
        # If-None-Match: weak comparison; 304 wins over 416.
        ({"If-None-Match": tag}, 304),
        ({"If-None-Match": f"W/{tag}"}, 304),
        ({"If-None-Match": tag, "Range": "bytes=999999-"}, 304),
        ({"If-None-Match": '"other"', "If-Modified-Since": later}, 200),
        # If-Modified-Since, only without If-None-Match; a bad date or a list is ignored.
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": later}, 304),
        ({"If-Modified-Since": earlier}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        ({"If-Modified-Since": f"{later}, {later}"}, 200),
        ({"If-Modified-Since": "Sunday, 06-Nov-94 08:49:37 GMT"}, 200),  # the obsolete forms parse
        # If-Range: strong, exact.
        ({"Range": "bytes=0-9", "If-Range": tag}, 206),
        ({"Range": "bytes=0-9", "If-Range": f"W/{tag}"}, 200),
        ({"Range": "bytes=0-9", "If-Range": modified}, 206),
        ({"Range": "bytes=0-9", "If-Range": earlier}, 200),
    ]
    for headers, expected in cases:
        status, answer, body, _ = call(app, "/big.bin", **{name.replace("-", "_"): v for name, v in headers.items()})
        assert status == expected, f"{headers}: {status}, expected {expected}"
        if status in (304, 412):
            assert body == b"" or b"Precondition" in body, body
    assert call(app, "/big.bin", method="HEAD", If_Match='"other"')[0] == 412


def test_404_and_405_win_over_preconditions(versioned):
    app, *_ = versioned
    assert call(app, "/missing.bin", If_Match='"other"')[0] == 404
    assert call(app, "/big.bin", method="POST", If_Match='"other"')[0] == 405
    assert call(app, "/big.bin", method="DELETE", If_None_Match="*")[0] == 405


def test_last_modified_is_never_later_than_now(site):
    path = site / "www" / "hello.txt"
    tomorrow = time.time() + 86400
    os.utime(path, (tomorrow, tomorrow))
    before = int(time.time())
    status, headers, _, _ = call(FilesApp(site / "www"), "/hello.txt")
    sent = parsedate_to_datetime(headers["Last-Modified"]).timestamp()
    assert status == 200 and before <= sent <= time.time(), headers["Last-Modified"]
    # The date sent is the one compared: the client's copy, dated with it, is current.
    assert call(FilesApp(site / "www"), "/hello.txt", If_Modified_Since=headers["Last-Modified"])[0] == 304


def test_an_empty_file_ignores_range(site):
    status, headers, body, _ = call(FilesApp(site / "www"), "/empty.txt", Range="bytes=-5")
    assert (status, headers["Content-Length"], body) == (200, "0", b"")
    assert parse_range("bytes=0-0", 0) is None and parse_range("bytes=-5", 0) is None


# --- each race, made deterministic -----------------------------------------------------------------


def swap_between_look_and_open(monkeypatch, name, swap):
    """Run ``swap()`` once, at the moment the app has looked at ``name`` and not yet opened
    it: after an ``os.stat`` of it returns, or before an ``os.open`` of it, whichever comes
    first. (A check-then-open app stats, then opens; the walk only opens.)"""
    real_stat, real_open, done = os.stat, os.open, []

    def once():
        if not done:
            done.append(True)
            swap()

    def stat(path, *args, **kwargs):
        result = real_stat(path, *args, **kwargs)
        if str(path).endswith(name):
            once()
        return result

    def open_(path, *args, **kwargs):
        if str(path).endswith(name):
            once()
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "open", open_)
    return done


def in_a_thread(function, seconds=5):
    """``function()`` on a daemon thread: its result, or TimeoutError if it hangs."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(seconds)
    if not result:
        raise TimeoutError(f"still running after {seconds} s")
    return result[0]


def unblock_fifo(path):
    """Free a thread stuck in open() of a FIFO for reading: a writer comes, and goes."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize("walks", [True, False], ids=["walk", "check-then-open fallback"])
def test_a_file_swapped_for_a_fifo_never_hangs_the_open(site, monkeypatch, walks):
    www = site / "www"
    (www / "target.txt").write_bytes(INSIDE)
    monkeypatch.setattr(files_app, "can_walk", lambda: walks)
    app = FilesApp(www)

    def swap():
        os.mkfifo(www / "fifo.tmp")
        os.rename(www / "fifo.tmp", www / "target.txt")

    done = swap_between_look_and_open(monkeypatch, "target.txt", swap)
    try:
        status, *_ = in_a_thread(lambda: call(app, "/target.txt"))
    finally:
        unblock_fifo(www / "target.txt")
    assert done, "the swap happened"
    assert status == 404


@pytest.mark.parametrize("walks", [True], ids=["walk"])
def test_a_folder_swapped_for_a_symlink_out_never_leaks(site, monkeypatch, walks):
    www = site / "www"
    (www / "sub").mkdir()
    (www / "sub" / "file.txt").write_bytes(INSIDE)
    app = FilesApp(www)

    def swap():
        os.rename(www / "sub", www / "sub-was-here")
        os.symlink(site / "outside", www / "sub")

    done = swap_between_look_and_open(monkeypatch, "file.txt", swap)
    status, _, body, log = in_a_thread(lambda: call(app, "/sub/file.txt"))
    assert done, "the swap happened"
    # The walk had opened sub before the swap, and reads on in the folder it opened: inside.
    assert SECRET not in body and (status, body) in ((200, INSIDE), (404, b"Not Found\n")), (status, body)
    assert "Traceback" not in log


def test_the_fallback_says_once_that_it_can_be_raced(site, monkeypatch, capsys):
    monkeypatch.setattr(files_app, "can_walk", lambda: False)
    app = FilesApp(site / "www")
    assert capsys.readouterr().err.count("\n") == 1
    assert call(app, "/hello.txt")[2] == HELLO
    assert call(app, "/dir/")[2] == b"<h1>dir</h1>\n"
    (site / "www" / "out").mkdir()
    (site / "www" / "out" / "index.html").symlink_to(site / "outside" / "index.html")
    assert call(app, "/out/")[0] == 404


# --- each race, live: a few hundred requests while a thread swaps ------------------------------------


def get(server, path):
    """GET path on a new connection; (status, whole reply). Every request has a timeout."""
    with socket.create_connection(server.address, timeout=5) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while data := connection.recv(65536):
            reply += data
    return int(reply.split(b" ", 2)[1]), reply


class Swapper:
    """A thread that swaps one name back and forth, as fast as it can, until stopped."""

    def __init__(self, steps):
        self.steps, self.running, self.swaps = steps, True, 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while self.running:
            for step in self.steps:
                step()
            self.swaps += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join(5)


def fifo_steps(www):
    target, spare = www / "target.txt", www / "spare.tmp"

    def to_fifo():
        os.mkfifo(spare)
        os.rename(spare, target)
        time.sleep(0)  # let the server's look fall in between

    def to_file():
        spare.write_bytes(INSIDE)
        os.rename(spare, target)
        time.sleep(0)

    return [to_fifo, to_file]


def folder_steps(site):
    www = site / "www"

    def to_symlink():
        os.rename(www / "sub", www / "sub.real")
        os.symlink(site / "outside", www / "sub")

    def to_folder():
        os.unlink(www / "sub")
        os.rename(www / "sub.real", www / "sub")

    return [to_symlink, to_folder]


REQUESTS = 200


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SERVERS))
def test_a_file_swapped_for_a_fifo_live_never_stops_the_server(site, name):
    www = site / "www"
    (www / "target.txt").write_bytes(INSIDE)
    with start_server(SERVERS[name], "--files", www, "--quiet") as server:
        statuses = []
        try:
            with Swapper(fifo_steps(www)) as swapper:
                for _ in range(REQUESTS):
                    status, reply = get(server, "/target.txt")
                    statuses.append(status)
                    assert status in (200, 404) and SECRET not in reply, reply[:300]
        finally:
            unblock_fifo(www / "target.txt")  # (so that a server stuck on today's code can stop)
        assert swapper.swaps > 0 and get(server, "/hello.txt")[0] == 200, "it still serves"
    assert "Traceback" not in server.log, server.log[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["part2", "select"])
def test_a_folder_swapped_for_a_symlink_out_live_never_leaks(site, name):
    www = site / "www"
    (www / "sub").mkdir()
    (www / "sub" / "file.txt").write_bytes(INSIDE)
    with start_server(SERVERS[name], "--files", www, "--quiet") as server:
        statuses = {}
        with Swapper(folder_steps(site)) as swapper:
            for _ in range(REQUESTS):
                status, reply = get(server, "/sub/file.txt")
                statuses[status] = statuses.get(status, 0) + 1
                assert SECRET not in reply, f"leaked after {sum(statuses.values())} requests: {reply[:300]!r}"
        assert set(statuses) <= {200, 404}, statuses
        assert swapper.swaps > 0
    assert "Traceback" not in server.log, server.log[-2000:]


def test_a_ranged_piece_of_the_served_file_still_starts_where_asked(site):
    """FilePiece seeks the descriptor the walk opened (not a name opened again)."""
    www = site / "www"
    (www / "big.bin").write_bytes(bytes(range(256)) * 40)
    status, headers, body, _ = call(FilesApp(www), "/big.bin", Range="bytes=300-309")
    assert status == 206 and body == (bytes(range(256)) * 40)[300:310]


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("FIFOs and symlinks: Linux and macOS", allow_module_level=True)


def test_headers_kept_per_version_follow_a_new_version_and_never_keep_a_clamped_date(site, monkeypatch):
    path, app = site / "www" / "hello.txt", FilesApp(site / "www")
    first = call(app, "/hello.txt")[1]["ETag"]
    path.write_bytes(b"a new version, longer\n")
    assert call(app, "/hello.txt")[1]["ETag"] != first, "a new size: a new version"
    tomorrow = time.time() + 86400
    os.utime(path, (tomorrow, tomorrow))
    now = time.time()
    monkeypatch.setattr(files_app.time, "time", lambda: now)
    early = call(app, "/hello.txt")[1]["Last-Modified"]
    monkeypatch.setattr(files_app.time, "time", lambda: now + 10)
    later = call(app, "/hello.txt")[1]["Last-Modified"]
    assert parsedate_to_datetime(later).timestamp() - parsedate_to_datetime(early).timestamp() == 10


# --- what an attacker tried next ---------------------------------------------------------------------


def test_a_range_of_huge_numbers_is_a_416_or_cut_never_a_500(site):
    app, many = FilesApp(site / "www"), "9" * 5000
    assert call(app, "/hello.txt", Range=f"bytes={many}-")[0] == 416
    status, headers, body, _ = call(app, "/hello.txt", Range=f"bytes=0-{many}")
    assert (status, body) == (206, HELLO)
    assert call(app, "/hello.txt", Range=f"bytes={'0' * 4301}-1")[2] == HELLO[:2]
    assert call(app, "/hello.txt", Range=f"bytes=-{many}")[2] == HELLO


def test_a_folder_replaced_by_a_new_one_is_served_at_once(site):
    www, app = site / "www", FilesApp(site / "www")
    assert call(app, "/hello.txt")[2] == HELLO
    www.rename(site / "www.old")  # a deploy: the old build out, the new one in
    assert call(app, "/hello.txt")[0] == 404, "between the two steps: no folder, a 404"
    www.mkdir()
    (www / "hello.txt").write_bytes(b"the new build\n")
    assert call(app, "/hello.txt")[2] == b"the new build\n"


def test_a_relative_symlink_out_and_back_in_names_its_real_target(site):
    www = site / "www"
    (www / "www").mkdir()
    (www / "www" / "hello.txt").write_bytes(b"the wrong file\n")
    (www / "out-and-in.txt").symlink_to("../www/hello.txt")
    (www / "many-dots").symlink_to("../../../../../../../etc/passwd")
    app = FilesApp(www)
    assert call(app, "/out-and-in.txt")[2] == HELLO
    assert call(app, "/../www/hello.txt")[2] == HELLO, "a URL's .. goes where the kernel's would"
    assert call(app, "/many-dots")[0] == 404


def record_opens(monkeypatch):
    """Every name os.open is asked for, and the most descriptors the walk held at once."""
    real_open, real_close, opened, state = os.open, os.close, [], {"now": 0, "most": 0}

    def open_(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        opened.append(str(path))
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        return fd

    def close(fd):
        state["now"] -= 1
        real_close(fd)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "close", close)
    return opened, state


def test_nothing_but_folders_is_opened_outside_the_root(site, monkeypatch):
    www = site / "www"
    (www / "passwd").symlink_to("/etc/passwd")
    (www / "zero").symlink_to("/dev/zero")
    (www / "out").symlink_to(site / "outside")
    app = FilesApp(www)
    opened, _ = record_opens(monkeypatch)
    for path in ("/passwd", "/zero", "/out/secret.txt", "/out/"):
        assert call(app, path)[0] == 404, path
    assert not {"passwd", "zero", "secret.txt", "index.html"} & set(opened), opened


def test_a_deep_path_holds_few_descriptors_and_a_long_walk_stops(site, monkeypatch):
    www, deep = site / "www", site / "www"
    for _ in range(200):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "f.txt").write_bytes(HELLO)
    for link in range(10):  # each a few hundred steps: a walk of thousands in all
        (www / f"busy{link}").symlink_to("dir/.." + "/dir/.." * 200 + f"/busy{link + 1}")
    (www / "busy10").symlink_to("hello.txt")
    app = FilesApp(www)
    _, state = record_opens(monkeypatch)
    assert call(app, "/d" * 200 + "/f.txt")[2] == HELLO
    assert state["most"] <= 3, f"{state['most']} descriptors at once"
    started = time.monotonic()
    assert call(app, "/busy0")[0] == 404, "more steps than a walk may take"
    assert time.monotonic() - started < 0.5


def test_the_root_of_the_file_system_as_the_folder_follows_absolute_symlinks(site):
    (site / "www" / "abs.txt").symlink_to(site / "www" / "hello.txt")
    assert call(FilesApp("/"), str(site / "www" / "abs.txt"))[2] == HELLO


def test_a_star_in_a_list_and_two_digit_years(versioned):
    app, tag, *_ = versioned
    assert call(app, "/big.bin", If_Match='"x", *')[0] == 412, "* only matches alone"
    assert call(app, "/big.bin", If_None_Match='"x", *')[0] == 200
    year = time.gmtime().tm_year + 48  # two digits, less than 50 years ahead: this century
    ahead = time.strftime(f"%A, %d-%b-{year % 100:02d} %H:%M:%S GMT", time.gmtime())
    assert call(app, "/big.bin", If_Modified_Since=ahead)[0] == 304


def test_a_file_followed_by_a_dot_is_no_folder(site):
    app = FilesApp(site / "www")
    assert call(app, "/hello.txt/.")[0] == 404
    assert call(app, "/dir/.")[2] == b"<h1>dir</h1>\n"
    assert call(app, "/dir/sub/..")[0] == 404  # (no sub: the kernel's answer too)
