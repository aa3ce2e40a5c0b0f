"""The files app: a WSGI app that serves a folder, the first job of any web server.

    python part2_wsgi/server.py --files DIR                  # DIR, as python -m http.server serves it
    python part2_wsgi/server.py APP --files DIR              # DIR's files first, the rest to APP
    python part3_concurrency/select_server.py --files DIR    # every server takes --files

Or from Python: ``app = FilesApp("public")``, or ``FilesApp("public", fallback=flask_app)``
(a file that exists wins, anything else goes to the app, as whitenoise does it).

What it answers, and why each header is there:

* GET and HEAD; any other method on a file is a 405 with ``Allow: GET, HEAD``.
* ``Content-Type`` (from ``mimetypes``), ``Content-Length``, ``Last-Modified`` and a strong
  ``ETag`` (the file's size and modification time: a new version, a new tag).
* Conditional requests (RFC 9110, section 13), in the order section 13.2.2 gives:
  ``If-Match`` and ``If-Unmodified-Since`` guard a change ("only if it is still the
  version I had"): when false, ``412 Precondition Failed``, and nothing is sent.
  ``If-None-Match`` and ``If-Modified-Since`` spare a download ("only if it changed"):
  when the client's copy is current, ``304 Not Modified`` without a body.
* ``Range: bytes=START-END`` asks for a piece (a video player seeking, a download
  resumed): ``206 Partial Content`` with ``Content-Range``, unless an ``If-Range`` names
  another version (then the whole file). A range past the end is a ``416`` with
  ``Content-Range: bytes */SIZE``. A request for several ranges at once is answered with
  the whole file, 200, which RFC 9110 allows: a multipart answer is rarely asked for and
  costs more code than it is worth here.
* A folder answers with its ``index.html``; ``/docs`` without the slash is redirected
  (301) to ``/docs/``, so that the page's relative links work. No listing of a folder.
* Anything else is a 404 that does not say why: not there, outside the folder, a name
  we refuse, not a regular file. A 403 would tell a visitor that something exists where
  they looked. A server short of descriptors or memory answers 503 with ``Retry-After``:
  a 404 then would be a lie a cache could keep.

Two lessons about names:

1. The path is an attack (``GET /../../etc/passwd`` and its disguises). ``resolve_path``
   shows the rule on names alone: decode once, refuse what cannot be a name, join under
   the root, resolve, check that the result is still inside. (It is the graded exercise.)
2. A name is a promise that can change between two system calls. Check a name, then open
   it, and someone who can write in the folder swaps it in between: a file for a FIFO
   (whose ``open()`` waits for a writer for ever), a folder for a symlink to ``/etc``.
   So the app never checks a name and then opens it: it opens first, then checks what
   it opened (see ``open_beneath``).

The body: if the server offers ``environ["wsgi.file_wrapper"]`` (PEP 3333), the app
returns the open file wrapped in it, and the server may hand the file to the kernel
(``sendfile()``: no copy through Python). Otherwise it returns the file's blocks, read
one at a time. Either way the file is closed when the server calls ``close()``.
"""

import calendar
import errno
import mimetypes
import os
import stat
import sys
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

BLOCK_SIZE = 65536  # bytes per read() when the app reads the file itself
ALLOWED = "GET, HEAD"
INDEX = "index.html"
MAX_SYMLINKS = 40  # hops in one path, as Linux allows: then a loop, or an attack
MAX_STEPS = 1024  # names one walk may take, symlinks' targets included: then an attack
MAX_VERSIONS = 4096  # file versions whose headers the app keeps (see Version)


# --- where a URL path leads, on names alone ------------------------------------------------


def url_segments(url_path):
    """The names a URL path is made of, or None for a path that cannot name a file.

    ``url_path`` is ``PATH_INFO``: the server has already %-decoded it, once, and (PEP
    3333) made each byte one latin-1 character. So: never decode it again (``%252e``
    arrived as ``%2e``, which is a name, not a dot); re-read it as the UTF-8 bytes it was
    (``"/caf\\xc3\\xa9"`` is ``"/café"``), and bytes that are not UTF-8 (an overlong
    ``%c0%ae`` too) give None; a NUL or a backslash (a separator on Windows) gives None.
    Empty segments and ``.`` are dropped: ``//etc/passwd`` is not an absolute path here."""
    try:
        path = url_path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    if "\0" in path or "\\" in path:
        return None
    return [segment for segment in path.split("/") if segment not in ("", ".")]


def resolve_path(root, url_path):
    """The file or folder of ``root`` that ``url_path`` names, as a resolved Path, or None.

    The rule on names (``url_segments`` says how a URL path becomes names): the segments
    are joined under the root, the result is resolved, symlinks and ``..`` included, and
    must still lie inside the resolved root (``os.path.commonpath``), else None. A symlink
    loop gives None too (``os.path.realpath`` leaves a loop unresolved, on every version).

    Whether the path exists is the caller's question: a resolved path inside the root
    that names nothing is returned too. And by the time the caller opens it, it may name
    something else: the files app itself does not open what this returns (see
    ``open_beneath``), except where the system cannot do better (``FilesApp.walks``).

    Example, with a folder /srv/www holding notes.txt:

        resolve_path("/srv/www", "/notes.txt")         ->  Path("/srv/www/notes.txt")
        resolve_path("/srv/www", "/a/../notes.txt")    ->  Path("/srv/www/notes.txt")
        resolve_path("/srv/www", "/../etc/passwd")     ->  None
        resolve_path("/srv/www", "/%2e%2e/secret")     ->  Path("/srv/www/%2e%2e/secret") (no such file)
    """
    segments = url_segments(url_path)
    if segments is None:
        return None
    root = os.path.realpath(root)
    resolved = os.path.realpath(os.path.join(root, *segments))
    if os.path.commonpath([root, resolved]) != root:
        return None
    try:
        os.stat(resolved)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None  # a loop of symlinks names nothing
    except ValueError:
        return None
    return Path(resolved)


# --- opening a file of the folder: open first, then check -----------------------------------

# Each name is opened without following a symlink (we follow them ourselves, below), and
# without blocking: a FIFO's open() would wait for a writer, a device's may wait too.
# O_NOCTTY: a terminal opened by a server must not become its controlling terminal.
OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
FOLDER_FLAGS = OPEN_FLAGS | getattr(os, "O_DIRECTORY", 0)
# What open() with O_NOFOLLOW says of a symlink: ELOOP on Linux and macOS, EMLINK on
# FreeBSD, and ENOTDIR on Linux when O_DIRECTORY is asked too. Each then gets a readlink().
SYMLINK_ERRORS = {errno.ELOOP, errno.EMLINK, errno.ENOTDIR}
# Errors that say "the server is short of something", not "no such file": a 503, not a 404.
SHORTAGES = {errno.EMFILE, errno.ENFILE, errno.ENOMEM}


class NotFound(Exception):
    """No file to serve under that name: a 404 that does not say why."""


class Folder(Exception):
    """The path names a folder, and the URL lacks the slash that says so: a 301."""


def open_beneath(root_fd, names):
    """Open the regular file that ``names`` lead to, below the folder open as ``root_fd``;
    return its descriptor and ``os.fstat``.

    Why a walk, and not ``open(resolve_path(...))``? A check and then an open are two
    looks at a name, and the name may change in between. Here no name is checked and then
    used: each is opened by the very call that looks it up, relative to the folder opened
    just before (``dir_fd``: openat), and what was opened is what is checked (``fstat``).
    (A symlink is looked at twice: open refuses it, then ``readlink`` reads it; reading a
    link opens nothing.) So:

    * a symlink is never followed by the kernel (``O_NOFOLLOW``): we read it, and splice
      its target into the rest of the path; an absolute target is walked from ``/``;
    * ``..`` opens the folder above and checks that it is the folder we came from (by its
      device and inode: a folder moved meanwhile has another one above it);
    * the walk may leave the root (``..`` above it, a symlink out) and come back in (a
      symlink ``../www/page.html``): we know we are back by the ``(st_ino, st_dev)`` of
      the root's own folder, never by a string prefix (on macOS ``/var`` is
      ``/private/var``). Outside, nothing but folders is opened (``O_DIRECTORY``: a file or
      a device out there is never opened, not even to be refused), and nothing is served;
    * a file swapped for a FIFO opens at once (``O_NONBLOCK``), and ``fstat`` refuses it;
      a folder swapped for a symlink is too late once we have opened it: we read on in the
      folder we opened;
    * we hold one folder's descriptor at a time, however deep the path, and take at most
      ``MAX_STEPS`` steps and ``MAX_SYMLINKS`` symlinks: then a 404.

    (Linux 5.6 has a stricter walk in one system call, ``openat2`` with
    ``RESOLVE_BENEATH``, which refuses any step out of the folder, even one that comes
    back; Python has no binding for it, and macOS no such call.)

    Raises NotFound (a 404), Folder (a 301) or OSError for a shortage (a 503)."""
    walk = Walk(root_fd, names)
    try:
        return walk.run()
    finally:
        walk.leave()


class Walk:
    """The state of one ``open_beneath``: where it stands, how it got there, what is left."""

    def __init__(self, root_fd, names):
        self.root_fd = root_fd
        self.root_id = folder_id(os.fstat(root_fd))
        self.here = root_fd  # the folder we stand in: the one descriptor we hold
        self.trail = [self.root_id]  # the folders from the walk's top down to here
        self.names = list(names)
        self.steps = self.hops = 0

    @property
    def inside(self):
        return self.trail[0] == self.root_id

    def run(self):
        while self.names:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise NotFound("too many steps")
            name = self.names.pop(0)
            if name == "..":
                self.climb()
                continue
            last = not self.names
            # The last name inside may be the file; any other name must be a folder.
            fd = self.open_name(name, OPEN_FLAGS if last and self.inside else FOLDER_FLAGS)
            if fd is None:
                continue  # a symlink: its target is now in self.names
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                self.move(fd, info, [*self.trail, folder_id(info)])
            elif stat.S_ISREG(info.st_mode) and last:
                return fd, info
            else:
                os.close(fd)  # a FIFO, a device, a socket: not ours to serve
                raise NotFound(name)
        if not self.inside:
            raise NotFound("a path that ends outside the folder")
        raise Folder()  # the walk ended on a folder: the caller redirects, or serves its index

    def open_name(self, name, flags):
        """Open ``name`` where we stand; None if it is a symlink (spliced in instead)."""
        try:
            return os.open(name, flags, dir_fd=self.here)
        except OSError as error:
            if error.errno in SHORTAGES:
                raise
            if error.errno in SYMLINK_ERRORS:
                try:
                    target = os.readlink(name, dir_fd=self.here)
                except OSError:
                    raise NotFound(name) from None  # not a symlink after all: a file where a folder was asked
                return self.follow(target)
            raise NotFound(name) from None
        except ValueError:  # a NUL in a name
            raise NotFound(name) from None

    def follow(self, target):
        self.hops += 1
        if self.hops > MAX_SYMLINKS:
            raise NotFound("too many symlinks")
        if target.startswith("/"):
            fd = os.open("/", FOLDER_FLAGS)
            info = os.fstat(fd)
            self.move(fd, info, [folder_id(info)])
        self.names[:0] = [part for part in target.split("/") if part not in ("", ".")]

    def climb(self):
        """``..``: the folder above, checked to be the one we came from. Above the walk's
        top (the root, or ``/``), the folder above is a new top, outside the root."""
        fd = os.open("..", FOLDER_FLAGS, dir_fd=self.here)
        info = os.fstat(fd)
        if len(self.trail) == 1:
            return self.move(fd, info, [folder_id(info)])
        if folder_id(info) != self.trail[-2]:
            os.close(fd)
            raise NotFound("a folder moved while the walk went through it")
        self.move(fd, info, self.trail[:-1])

    def move(self, fd, info, trail):
        """Stand in the folder just opened. The root's own folder, however the walk reached
        it, makes the root the walk's top again: inside."""
        self.leave()
        if folder_id(info) == self.root_id:
            os.close(fd)
            self.here, self.trail = self.root_fd, [self.root_id]
        else:
            self.here, self.trail = fd, trail

    def leave(self):
        if self.here != self.root_fd:
            os.close(self.here)
            self.here = self.root_fd


def folder_id(info):
    """What makes a folder itself, whatever it is called: its inode and device numbers."""
    return info.st_ino, info.st_dev


# --- ranges --------------------------------------------------------------------------------


def parse_range(header, size):
    """The one byte range a ``Range`` header asks for, as ``(start, end)``, end included.

    ``size`` is the file's length in bytes. Three forms (RFC 9110, 14.1.2), the unit in
    any case and with spaces allowed around the numbers:

    * ``bytes=START-END``: END past the file is cut to its last byte;
    * ``bytes=START-``: from START to the end;
    * ``bytes=-N``: the last N bytes (the whole file if it is shorter).

    Returns None for a header to ignore (the answer is then the whole file, 200): another
    unit than bytes, several ranges (a comma), anything not made of ASCII digits in
    those forms, END before START, or any range of an empty file (RFC 9110 counts
    ``bytes=-5`` of an empty file as satisfiable, yet a 206 would need a first byte, which
    an empty file lacks; section 14.2 lets a server ignore Range, and the 200 is empty).
    Raises ``RangeNotSatisfiable`` for a range that asks for nothing the file has (START
    at or past the end, ``bytes=-0``): the answer is then a 416.

    Example, for a file of 1000 bytes:

        parse_range("bytes=0-499", 1000)    ->  (0, 499)
        parse_range("bytes=500-", 1000)     ->  (500, 999)
        parse_range("bytes=-100", 1000)     ->  (900, 999)
        parse_range("bytes=900-5000", 1000) ->  (900, 999)
        parse_range("bytes=0-1,5-9", 1000)  ->  None
        parse_range("bytes=0-10", 0)        ->  None
        parse_range("bytes=1000-", 1000)    ->  raises RangeNotSatisfiable
    """
    unit, equals, ranges = header.partition("=")
    if unit.strip().lower() != "bytes" or not equals or "," in ranges or size == 0:
        return None
    first, dash, last = (part.strip() for part in ranges.partition("-"))
    if not dash or not all(part == "" or (part.isascii() and part.isdigit()) for part in (first, last)):
        return None
    if first == "":  # the last N bytes
        if last == "":
            return None
        if position(last) == 0:
            raise RangeNotSatisfiable(f"{header[:40]!r} asks for no bytes of a file of {size}")
        return max(size - position(last), 0), size - 1
    start = position(first)
    if last != "" and position(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"{header[:40]!r} starts past the end of a file of {size} bytes")
    return start, size - 1 if last == "" else min(position(last), size - 1)


def position(digits):
    """A byte position. Past any file's size is as good as infinite, and Python refuses to
    convert more than 4300 digits (a denial of service, CPython says): so a long number
    is cut to 19 digits, which no file reaches."""
    return int(digits[:19]) if len(digits.lstrip("0")) <= 19 else 10**19


class RangeNotSatisfiable(ValueError):
    """A Range that asks for no byte the file has: the answer is 416."""


# --- the app ------------------------------------------------------------------------------


class FilesApp:
    """A WSGI app that serves the folder ``root``; see the module's docstring.

    ``fallback``: a WSGI app for every request that names no file (say a Flask app). Without
    one, those get a 404. ``file_wrapper``: use the server's ``wsgi.file_wrapper`` when it
    offers one (False reads the file in Python even then: notebook 03 measures the two).

    Each request opens the folder by its name, then walks from that descriptor: a folder
    replaced by a new one (a deploy's ``rm -rf site && build``) is served at once, as
    nginx does. (The folder's own name is the administrator's, not a client's: it may
    hold symlinks.) Where the system cannot open a name relative to a folder without
    following symlinks (Windows has neither ``dir_fd`` nor ``O_NOFOLLOW``), the app checks
    the name with ``resolve_path`` and then opens it, and says once that this can race."""

    def __init__(self, root, fallback=None, file_wrapper=True, block_size=BLOCK_SIZE):
        self.root = os.path.abspath(root)
        self.fallback = fallback
        self.file_wrapper = file_wrapper
        self.block_size = block_size
        self.versions = {}  # (device, inode, size, mtime, name) -> Version
        self.walks = can_walk()
        if not self.walks:
            print(
                "files: this system cannot open a name without following symlinks (no dir_fd, no O_NOFOLLOW):"
                " names are checked, then opened, and a folder others can write to may be raced",
                file=sys.stderr,
            )

    def __call__(self, environ, start_response):
        url_path = environ.get("PATH_INFO") or "/"
        try:
            fd, info, name = self.open(url_path)
        except Folder:
            return redirect_to_folder(environ, url_path, start_response)
        except NotFound:
            if self.fallback is not None:
                return self.fallback(environ, start_response)
            return plain(start_response, "404 Not Found", "Not Found\n")
        except OSError as error:  # out of descriptors or memory: it will pass
            environ["wsgi.errors"].write(f"files: cannot open {url_path!r}: {error.strerror}; answered 503\n")
            return plain(start_response, "503 Service Unavailable", "Service Unavailable\n", [("Retry-After", "1")])
        file = OpenFile(fd)
        try:
            if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
                file.close()
                return plain(start_response, "405 Method Not Allowed", "Method Not Allowed\n", [("Allow", ALLOWED)])
            return self.respond(environ, start_response, file, info, name)
        except BaseException:
            file.close()
            raise

    def open(self, url_path):
        """The descriptor, ``fstat`` and name of the regular file ``url_path`` names (a
        folder's index.html for a folder's URL with its slash; the name gives the type).
        Raises NotFound, Folder, or OSError."""
        segments = url_segments(url_path)
        if segments is None:
            raise NotFound(url_path)
        wants_folder = url_path.endswith(("/", "/.", "/.."))
        if wants_folder:  # a folder's URL: its index, through the same walk
            segments.append(INDEX)
        name = segments[-1] if segments else INDEX
        if not self.walks:
            return (*self.check_then_open(url_path, wants_folder), name)
        root_fd = self.open_root()
        try:
            return (*open_beneath(root_fd, segments), name)
        except Folder:
            if wants_folder:
                raise NotFound("index.html is a folder") from None
            raise
        finally:
            os.close(root_fd)

    def open_root(self):
        try:
            return os.open(self.root, FOLDER_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
        except OSError as error:
            if error.errno in SHORTAGES:
                raise
            raise NotFound("the folder itself is gone") from None  # (between a deploy's two steps, say)

    def check_then_open(self, url_path, wants_folder):
        """Where the system cannot walk (see the class): resolve the name, then open it.
        Still without blocking where the system can, and still checking what was opened."""
        path = resolve_path(self.root, url_path)
        if path is not None and path.is_dir():
            if not wants_folder:
                raise Folder()
            path = resolve_path(self.root, url_path + "/" + INDEX)
        elif wants_folder:
            raise NotFound(url_path)  # "/notes.txt/" names a folder, and notes.txt is none
        if path is None:
            raise NotFound(url_path)
        try:
            fd = os.open(path, OPEN_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
        except OSError as error:
            if error.errno in SHORTAGES:
                raise
            raise NotFound(url_path) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise NotFound(url_path)
        return fd, info

    def respond(self, environ, start_response, file, info, name):
        """The response for an open regular file: 200, 206, 304, 412 or 416, with its body."""
        size = info.st_size
        version = self.describe(info, name)
        validators = [("ETag", version.etag), ("Last-Modified", version.last_modified_text)]
        verdict = evaluate_preconditions(environ, version.etag, version.last_modified)
        if verdict is not None:
            file.close()
            if verdict == 304:
                start_response("304 Not Modified", validators)
                return []
            return plain(start_response, "412 Precondition Failed", "Precondition Failed\n")
        headers = [("Content-Type", version.content_type), *validators, ("Accept-Ranges", "bytes")]
        status, start, end = "200 OK", 0, size - 1
        wanted = requested_range(environ, version.etag, version.last_modified)
        try:
            piece = parse_range(wanted, size) if wanted is not None else None
        except RangeNotSatisfiable:
            file.close()
            unsatisfiable = [("Content-Range", f"bytes */{size}")]
            return plain(start_response, "416 Range Not Satisfiable", "Range Not Satisfiable\n", unsatisfiable)
        if piece is not None:
            status, (start, end) = "206 Partial Content", piece
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        length = end - start + 1
        start_response(status, [*headers, ("Content-Length", str(length))])
        if environ["REQUEST_METHOD"] == "HEAD":
            file.close()
            return []
        piece = FilePiece(file, start, length, self.block_size)
        wrapper = environ.get("wsgi.file_wrapper") if self.file_wrapper else None
        # PEP 3333: a server sends a wrapped file from where it stands, and may do so with
        # sendfile(). Without a wrapper, the piece is the body itself: blocks, read here.
        return wrapper(piece, self.block_size) if wrapper is not None else piece

    def describe(self, info, name):
        """The headers of one version of a file, made once and kept (``Version``)."""
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, name)
        version = self.versions.get(key)
        if version is None:
            version = Version(info, name)
            if version.keepable:
                if len(self.versions) >= MAX_VERSIONS:
                    self.versions.clear()  # (simple, and rare: a folder of thousands of files)
                self.versions[key] = version
        return version


class Version:
    """What the headers say of one version of a file: its ETag, its Last-Modified and its type.

    Made once per version and kept by the app: a file's identity (device, inode), size and
    modification time (nanoseconds) name a version, and the name gives the type. A file
    rewritten with the same size within one tick of the file system's clock keeps its key,
    and its ETag too: both miss that change alike. A Last-Modified cut to the clock (a file
    dated in the future) is not kept: it must move with the clock."""

    def __init__(self, info, name):
        self.etag = etag(info)
        self.last_modified = last_modified(info)
        self.last_modified_text = formatdate(self.last_modified, usegmt=True)
        self.content_type = content_type(name)
        self.keepable = self.last_modified == int(info.st_mtime)


def can_walk():
    """Can this system open a name relative to a folder, without following a symlink?"""
    return os.open in os.supports_dir_fd and os.readlink in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")


class OpenFile:
    """The file just opened, read through its descriptor: what ``os.fdopen(fd, "rb",
    buffering=0)`` gives, less two system calls per request. ``fdopen`` makes an ``fstat``
    of its own (to refuse a folder), and the walk has just made one; the descriptor was
    opened without blocking (a FIFO's open must not wait), and reads of a regular file
    never wait for that flag anyway, so the flag is cleared (an ``ioctl``) only for a
    server that asks for the descriptor itself, say to hand it to ``sendfile()``, which
    may expect a normal one. ``close()`` may be called twice: the descriptor is closed once."""

    def __init__(self, fd):
        self.fd, self.blocking = fd, False

    def read(self, size):
        return os.read(self.fd, size)

    def seek(self, position):
        os.lseek(self.fd, position, os.SEEK_SET)

    def tell(self):
        return os.lseek(self.fd, 0, os.SEEK_CUR)

    def fileno(self):
        if not self.blocking and hasattr(os, "set_blocking"):
            os.set_blocking(self.fd, True)
            self.blocking = True
        return self.fd

    @property
    def closed(self):
        return self.fd < 0

    def close(self):
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self):  # a server that never calls close(): the file is closed all the same
        self.close()


class FilePiece:
    """``length`` bytes of a file just opened, from ``start``: the body of a 200 or a 206.

    Handed to the server's ``wsgi.file_wrapper``, it is a file: ``fileno()`` and ``tell()``
    for a server that sends it with sendfile() (no further than the Content-Length), and a
    ``read()`` that stops at the piece's end for one that reads it instead (wsgiref sends
    all it reads, whatever the Content-Length). Without a wrapper, it is the body itself,
    an iterable of blocks. ``close()`` closes the file. A class rather than a generator: a
    generator closed before its first step never runs its ``finally``, and the file would
    stay open."""

    def __init__(self, file, start, length, block_size=BLOCK_SIZE):
        if start:  # (a file just opened stands at 0)
            file.seek(start)
        self.file, self.left, self.block_size = file, length, block_size

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        if size == 0:
            return b""  # the piece's end: no read() to learn what we know
        data = self.file.read(size)
        self.left -= len(data)
        return data

    def __iter__(self):
        # read() gives b"" at the piece's end, or sooner if the file shrank meanwhile (the
        # server then sees a body shorter than its Content-Length, and closes the connection).
        while data := self.read(self.block_size):
            yield data

    def fileno(self):
        return self.file.fileno()

    def tell(self):
        return self.file.tell()

    def close(self):
        self.file.close()


# --- headers -----------------------------------------------------------------------------------


def etag(info):
    """A strong validator: size and modification time (nanoseconds), in hexadecimal."""
    return f'"{info.st_size:x}-{info.st_mtime_ns:x}"'


def last_modified(info):
    """The modification time we send, in whole seconds: never later than now, since a
    Last-Modified later than the response's Date is forbidden (RFC 9110, 8.8.2.1), and a
    file's clock can run ahead (copied from another machine, touched with a future date).
    Every comparison with a client's date uses this value, the one we send. (For a file
    dated in the future it moves on with the clock, so the date a client was sent a
    moment ago is already older: such a file is, for HTTP, modified every second.)"""
    return min(int(info.st_mtime), int(time.time()))


# What mimetypes calls a compression ("x.tar.gz" is a tar, gzip-encoded): the answer is the
# compressed file itself, as the bytes on disk are, never the type inside. Served as
# text/html without Content-Encoding, "x.html.gz" would be gzip bytes a browser tries to
# render; served as text/html *with* it, a browser would unpack it and run its script.
COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


def content_type(name):
    """The type of a file, from its name, as the URL names it (a symlink's own name)."""
    # The "/" before the name keeps mimetypes from reading "data:..." or "x:..." as a URL scheme.
    kind, encoding = mimetypes.guess_type("/" + name)
    if encoding is not None:
        return COMPRESSED.get(encoding, "application/octet-stream")
    kind = kind or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


def evaluate_preconditions(environ, current_tag, modified):
    """RFC 9110, 13.2.2, in its order, for GET and HEAD: 412, 304, or None to go on.

    1. If-Match (strong comparison: a weak tag never matches; ``*``, any version); when
       absent, If-Unmodified-Since. False: 412, the client's version is gone.
    2. If-None-Match (weak comparison); when absent, If-Modified-Since. The client's
       copy is current: 304.
    A date that does not parse, or a list of dates, is ignored, as the RFC asks."""
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None:
        if not tag_matches(if_match, current_tag, weak=False):
            return 412
    else:
        since = http_time(environ.get("HTTP_IF_UNMODIFIED_SINCE"))
        if since is not None and modified > since:
            return 412
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return 304 if tag_matches(if_none_match, current_tag, weak=True) else None
    since = http_time(environ.get("HTTP_IF_MODIFIED_SINCE"))
    if since is not None and modified <= since:
        return 304
    return None


def tag_matches(header, current_tag, weak):
    """Does a list of entity tags (or ``*``) name the current version? A strong comparison
    needs both tags strong and equal; a weak one ignores the ``W/`` prefix (RFC 9110, 8.8.3.2)."""
    if header.strip() == "*":  # any version (a "*" inside a list is malformed: it matches nothing)
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if weak:
            tag = tag.removeprefix("W/")
        if tag == current_tag:
            return True
    return False


def requested_range(environ, current_tag, modified):
    """The Range header to act on, or None. Only GET has ranges; and an If-Range that names
    another version of the file means "send it whole" (RFC 9110, 13.1.5). If-Range compares
    strongly: a weak tag never matches, and a date only if it is exactly the one we send.
    (A date is a weak validator unless the client's copy came with a Date at least a second
    after it, section 8.8.2.2: two changes in one second share it. The client is to check
    that before it sends a date here; ours always get an ETag, which has no such gap.)"""
    wanted = environ.get("HTTP_RANGE")
    if wanted is None or environ["REQUEST_METHOD"] != "GET":
        return None
    condition = environ.get("HTTP_IF_RANGE")
    if condition is not None:
        condition = condition.strip()
        if condition.startswith(("W/", '"')):
            return wanted if condition == current_tag else None
        return wanted if http_time(condition) == modified else None
    return wanted


# RFC 9110, 5.6.7: IMF-fixdate, and the two obsolete forms a recipient must accept too.
HTTP_DATE_FORMATS = ("%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y")


def http_time(text):
    """An HTTP date as a whole Unix time, or None for a missing or malformed one. strptime
    wants the whole text to match, so a list of dates ("..., ...") is malformed too."""
    if not text:
        return None
    for form in HTTP_DATE_FORMATS:
        try:
            parsed = time.strptime(text.strip(), form)
        except ValueError:
            continue
        year = parsed.tm_year
        if "%y" in form:  # two digits: the most recent such year not more than 50 years ahead (RFC 9110, 5.6.7)
            this_year = time.gmtime().tm_year
            year = this_year - this_year % 100 + year % 100
            if year > this_year + 50:
                year -= 100
        return calendar.timegm((year, *parsed[1:6]))
    return None


# --- small answers --------------------------------------------------------------------------------


def plain(start_response, status, text, extra_headers=()):
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra_headers]
    start_response(status, headers)
    return [body]


def redirect_to_folder(environ, url_path, start_response):
    """301 to the folder's URL with its slash. The Location is built from the path's
    non-empty segments, re-encoded: a path "//evil.example" would otherwise become the
    Location "//evil.example/", which a browser reads as another site."""
    segments = [quote(segment.encode("latin-1"), safe="") for segment in url_path.split("/") if segment]
    location = quote(environ.get("SCRIPT_NAME", "").encode("latin-1")) + "/" + "/".join(segments) + "/"
    if environ.get("QUERY_STRING"):
        location += "?" + environ["QUERY_STRING"]
    return plain(start_response, "301 Moved Permanently", f"See {location}\n", [("Location", location)])
