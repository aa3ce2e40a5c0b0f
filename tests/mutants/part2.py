"""Wrong solutions of part 2's exercises: see tests/mutants/__init__.py."""

from tests.mutants import Mutant

# A student's build_environ, right but for the mistake each mutant below puts in it.
BUILD_ENVIRON = """
    import io
    import sys
    from urllib.parse import unquote


    def build_environ(request, server_address, client_address=("", 0)):
        path, _, query = request.target.partition("?")
        environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": server_address[0],
            "SERVER_PORT": str(server_address[1]),
            "SERVER_PROTOCOL": request.version,{remote}
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": {body},
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = environ[key] + ", " + value if key in environ else value
        return environ
    """
REMOTE = """
            "REMOTE_ADDR": client_address[0],
            "REMOTE_PORT": str(client_address[1]),"""


def build_environ(remote=REMOTE, body="io.BytesIO(request.body)"):
    return BUILD_ENVIRON.replace("{remote}", remote).replace("{body}", body)


# A student's run_app: the head with the first non-empty piece, and its failures.
RUN_APP = """
    import sys
    import traceback


    def run_app(app, environ, send):
        state = {"status": None, "headers": None, "head_sent": False}

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if state["head_sent"]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None{second_call}
            state["status"], state["headers"] = status, headers
            return write

        def write(data):
            if not state["head_sent"]:
                lines = ["HTTP/1.1 " + state["status"]]
                lines += [name + ": " + value for name, value in state["headers"]]
                head = "\\r\\n".join(lines + [{connection}"", ""]).encode("latin-1")
                data = head + data
                state["head_sent"] = True
            send(data)

        try:
            result = app(environ, start_response)
            try:
                for data in result:
                    if data:
                        write(data){empty_body}
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:
            {failure}
        return state["status"]
    """
SECOND_CALL = """
            elif state["status"] is not None:
                raise AssertionError("start_response() called twice without exc_info")"""
CONNECTION = '"Connection: close", '
EMPTY_BODY = """
                if not state["head_sent"]:
                    write(b"")"""
FAILURE = """traceback.print_exc(file=environ["wsgi.errors"])
            if state["head_sent"]:
                raise
            body = b"Internal Server Error"
            state["status"] = "500 Internal Server Error"
            state["headers"] = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            write(body)"""


def run_app(second_call=SECOND_CALL, connection=CONNECTION, failure=FAILURE, empty_body=EMPTY_BODY):
    code = RUN_APP.replace("{second_call}", second_call).replace("{connection}", connection)
    return code.replace("{failure}", failure).replace("{empty_body}", empty_body)


# A student's serve_wsgi, with the pieces a mutant changes: how it meets each error, and
# whether it closes the connection and sets a timeout.
SERVE_WSGI = """
    import sys
    from functools import partial

    from part2_wsgi.minimal_server import read_request, send_in_pieces

    TIMEOUT = 10
    BAD_REQUEST = b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 11\\r\\nConnection: close\\r\\n\\r\\nBad Request"


    def serve_wsgi(listener, app):
        while True:
            connection, address = listener.accept()
            {serve}
    """
SERVE_ONE = """with connection:
                connection.settimeout(TIMEOUT)
                try:
                    request = read_request(connection)
                except ValueError:
                    connection.sendall(BAD_REQUEST)
                    continue
                except OSError:
                    continue
                if request is None:
                    continue
                environ = build_environ(request, connection.getsockname(), address)
                try:
                    run_app(app, environ, partial(send_in_pieces, connection))
                except OSError:
                    pass
                except Exception as error:
                    print("the app failed:", error, file=sys.stderr)"""


def serve_wsgi(serve):
    return SERVE_WSGI.replace("{serve}", serve)


MUTANTS = [
    # --- load_app --------------------------------------------------------------------------
    Mutant(
        "part2",
        "load_app",
        "the import's own error let through",
        """
        import importlib

        from part2_wsgi.command_line import AppLoadError


        def load_app(spec):
            module_name, _, name = spec.partition(":")
            app = importlib.import_module(module_name)
            for part in name.split("."):
                app = getattr(app, part)
            if not callable(app):
                raise AppLoadError(f"{spec} is not callable")
            return app
        """,
        "expected AppLoadError",
    ),
    Mutant(
        "part2",
        "load_app",
        "one getattr for a dotted name",
        """
        import importlib

        from part2_wsgi.command_line import AppLoadError


        def load_app(spec):
            module_name, colon, name = spec.partition(":")
            if not colon or not module_name or not name:
                raise AppLoadError(f"expected module:callable, got {spec!r}")
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                raise AppLoadError(f"cannot import {module_name!r}: {error}") from None
            try:
                return getattr(module, name)
            except AttributeError:
                raise AppLoadError(f"{module_name!r} has no attribute {name!r}") from None
        """,
        "look up each name in turn",
    ),
    Mutant(
        "part2",
        "chunk",
        "the size in decimal",
        """
        def chunk(data):
            return b"%d\\r\\n%s\\r\\n" % (len(data), data)
        """,
        "hexadecimal",
    ),
    Mutant("part2", "build_environ", "no REMOTE_ADDR, no REMOTE_PORT", build_environ(remote=""), "client_address"),
    Mutant(
        "part2",
        "build_environ",
        "the client's address taken from the server's",
        build_environ(
            remote="""
            "REMOTE_ADDR": server_address[0],
            "REMOTE_PORT": str(client_address[1]),"""
        ),
        "client_address",
    ),
    Mutant(
        "part2", "build_environ", "wsgi.input is the body's bytes", build_environ(body="request.body"), "io.BytesIO"
    ),
    Mutant(
        "part2",
        "run_app",
        "a second start_response() without exc_info is accepted",
        run_app(second_call=""),
        "AssertionError",
    ),
    Mutant("part2", "run_app", "no Connection: close in the head", run_app(connection=""), "Connection: close"),
    Mutant(
        "part2",
        "run_app",
        "an empty body never sends the head",
        run_app(empty_body=""),
        "an empty body has a head all the same",
    ),
    Mutant(
        "part2",
        "run_app",
        "a 500 response after the head went out",
        run_app(
            failure="""traceback.print_exc(file=environ["wsgi.errors"])
            head = b"HTTP/1.1 500 Internal Server Error\\r\\nContent-Length: 21\\r\\nConnection: close\\r\\n\\r\\n"
            send(head + b"Internal Server Error")
            return "500 Internal Server Error\""""
        ),
        "re-raise",
    ),
    Mutant(
        "part2",
        "run_app",
        "an error after the head is swallowed",
        run_app(
            failure="""traceback.print_exc(file=environ["wsgi.errors"])
            if state["head_sent"]:
                return state["status"]
            body = b"Internal Server Error"
            state["status"] = "500 Internal Server Error"
            state["headers"] = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            write(body)"""
        ),
        "re-raise",
    ),
    Mutant(
        "part2",
        "run_app",
        "the traceback printed to sys.stdout",
        run_app(failure=FAILURE.replace('file=environ["wsgi.errors"]', "file=sys.stdout")),
        "wsgi.errors",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "dies when an app fails half way (catches only what read_request raises)",
        serve_wsgi(
            """with connection:
                connection.settimeout(TIMEOUT)
                try:
                    request = read_request(connection)
                    if request is None:
                        continue
                    environ = build_environ(request, connection.getsockname(), address)
                    run_app(app, environ, partial(send_in_pieces, connection))
                except ValueError:
                    connection.sendall(BAD_REQUEST)
                except OSError:
                    pass"""
        ),
        "serve the next client",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "an app's error after its head answered as a bad request",
        serve_wsgi(
            """with connection:
                connection.settimeout(TIMEOUT)
                try:
                    request = read_request(connection)
                    if request is None:
                        continue
                    environ = build_environ(request, connection.getsockname(), address)
                    run_app(app, environ, partial(send_in_pieces, connection))
                except OSError:
                    pass
                except Exception:
                    connection.sendall(BAD_REQUEST)"""
        ),
        "read_request alone",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "a catch-all except, and no 400",
        serve_wsgi(
            """with connection:
                connection.settimeout(TIMEOUT)
                try:
                    request = read_request(connection)
                    if request is None:
                        continue
                    environ = build_environ(request, connection.getsockname(), address)
                    run_app(app, environ, partial(send_in_pieces, connection))
                except Exception:
                    pass"""
        ),
        "400 Bad Request",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "never closes a connection",
        serve_wsgi(
            """connection.settimeout(TIMEOUT)
            try:
                request = read_request(connection)
            except ValueError:
                connection.sendall(BAD_REQUEST)
                continue
            except OSError:
                continue
            if request is None:
                continue
            environ = build_environ(request, connection.getsockname(), address)
            try:
                run_app(app, environ, partial(send_in_pieces, connection))
            except OSError:
                pass
            except Exception as error:
                print("the app failed:", error, file=sys.stderr)"""
        ),
        "with-block",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "no timeout on reading",
        serve_wsgi(SERVE_ONE.replace("connection.settimeout(TIMEOUT)", "pass")),
        "TIMEOUT",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "run_app given the connection's send",
        serve_wsgi(SERVE_ONE.replace("partial(send_in_pieces, connection)", "connection.send")),
        "send() takes only what fits",
    ),
    Mutant(
        "part2",
        "serve_wsgi",
        "run_app given the connection's sendall",
        serve_wsgi(SERVE_ONE.replace("partial(send_in_pieces, connection)", "connection.sendall")),
        "caps a whole sendall() call",
    ),
]


# A student's parse_range and resolve_path, right but for the mistake each mutant puts in.
PARSE_RANGE = """
    from part2_wsgi.apps.files_app import RangeNotSatisfiable


    def parse_range(header, size):{empty_file}
        unit, _, spec = header.partition("=")
        if unit.strip(){case} != "bytes" or "," in spec:
            return None
        first, dash, last = spec.strip().partition("-")
        if not dash or not all(part == "" or (part.isascii() and part.isdigit()) for part in (first, last)):
            return None
        if first == "":
            {suffix}
        start = int(first)
        if last != "" and int(last) < start:
            return None
        {past_the_end}
        return start, {end}
    """
SUFFIX = """if last == "":
                return None
            if int(last) == 0:
                raise RangeNotSatisfiable(header)
            return max(size - int(last), 0), size - 1"""
PAST_THE_END = """if start >= size:
            raise RangeNotSatisfiable(header)"""
END = 'size - 1 if last == "" else min(int(last), size - 1)'
EMPTY_FILE = """
        if size == 0:
            return None"""


def parse_range(suffix=SUFFIX, past_the_end=PAST_THE_END, end=END, empty_file=EMPTY_FILE, case=".lower()"):
    code = PARSE_RANGE.replace("{suffix}", suffix).replace("{past_the_end}", past_the_end).replace("{end}", end)
    return code.replace("{empty_file}", empty_file).replace("{case}", case)


RESOLVE_PATH = """
    import errno
    import os
    from pathlib import Path
    from urllib.parse import unquote


    def resolve_path(root, url_path):
        try:
            path = {decode}
        except UnicodeError:
            return None
        if {refused}:
            return None
        root = os.path.realpath(root)
        resolved = {resolve}({join})
        if {inside}:
            return None{loop}
        return Path(resolved)
    """
LOOP = """
        try:
            os.stat(resolved)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return None"""


def resolve_path(
    decode='url_path.encode("latin-1").decode("utf-8")',
    resolve="os.path.realpath",
    join='os.path.join(root, *[segment for segment in path.split("/") if segment])',
    inside="os.path.commonpath([root, resolved]) != root",
    loop=LOOP,
    refused='"\\0" in path or "\\\\" in path',
):
    code = RESOLVE_PATH.replace("{decode}", decode).replace("{resolve}", resolve)
    code = code.replace("{join}", join).replace("{inside}", inside).replace("{loop}", loop)
    return code.replace("{refused}", refused)


MUTANTS += [
    Mutant(
        "part2",
        "parse_range",
        "an end past the file, not cut",
        parse_range(end='size - 1 if last == "" else int(last)'),
        "(900, 999)",
    ),
    Mutant(
        "part2",
        "parse_range",
        "the end one byte too far",
        parse_range(end='size - 1 if last == "" else min(int(last), size)'),
        "(900, 999)",
    ),
    Mutant("part2", "parse_range", "no suffix ranges (bytes=-500)", parse_range(suffix="return None"), "(900, 999)"),
    Mutant(
        "part2",
        "parse_range",
        "an unsatisfiable range answered whole",
        parse_range(past_the_end="if start >= size:\n            return None"),
        "416",
    ),
    Mutant(
        "part2",
        "parse_range",
        "any range of an empty file refused with a 416",
        parse_range(empty_file=EMPTY_FILE.replace("return None", "raise RangeNotSatisfiable(header)")),
        "an empty file has neither",
    ),
    Mutant("part2", "parse_range", "Bytes= not read as bytes=", parse_range(case=""), "in any case"),
    Mutant(
        "part2",
        "resolve_path",
        "decodes the path again",
        resolve_path(decode='unquote(url_path.encode("latin-1").decode("utf-8"))'),
        "decoding it again",
    ),
    Mutant(
        "part2",
        "resolve_path",
        "a prefix check: /root2 passes for /root",
        resolve_path(inside="not resolved.startswith(root)"),
        "compare paths, not strings",
    ),
    Mutant(
        "part2",
        "resolve_path",
        "does not follow symlinks",
        resolve_path(resolve="os.path.normpath"),
        "resolve symlinks",
    ),
    Mutant(
        "part2",
        "resolve_path",
        "joins the URL path, an absolute path, to the root",
        resolve_path(join="os.path.join(root, path)"),
        "replaces the root",
    ),
    Mutant(
        "part2",
        "resolve_path",
        "a prefix check that leaves out the root itself",
        resolve_path(inside="not resolved.startswith(root + os.sep)"),
        "the root itself is inside",
    ),
    Mutant(
        "part2",
        "resolve_path",
        "resolves strictly: a path that names nothing is None",
        """
        import os
        from pathlib import Path


        def resolve_path(root, url_path):
            try:
                path = url_path.encode("latin-1").decode("utf-8")
            except UnicodeError:
                return None
            if "\\0" in path or "\\\\" in path:
                return None
            root = os.path.realpath(root)
            segments = [segment for segment in path.split("/") if segment]
            try:
                resolved = os.path.realpath(os.path.join(root, *segments), strict=True)
            except OSError:  # a symlink loop
                return None
            if os.path.commonpath([root, resolved]) != root:
                return None
            return Path(resolved)
        """,
        "no reason for None",
    ),
    Mutant("part2", "resolve_path", "a symlink loop resolved as it is", resolve_path(loop=""), "errno ELOOP"),
    Mutant("part2", "resolve_path", "a NUL let through", resolve_path(refused='"\\\\" in path'), "a NUL"),
    # --- body_framing ------------------------------------------------------------------------
    Mutant(
        "part2",
        "body_framing",
        "Chunked not read as chunked",
        """
        from part2_wsgi.protocol import HTTPError, Limits


        def body_framing(request, limits=Limits()):
            coding = request.header("Transfer-Encoding")
            length = request.header("Content-Length")
            if coding is not None:
                if length is not None or request.version == "HTTP/1.0":
                    raise HTTPError(400, "two framings, or chunks for HTTP/1.0")
                codings = [part.strip() for part in coding.split(",")]
                if codings[-1] != "chunked":
                    raise HTTPError(400, "the last coding is not chunked")
                if len(codings) > 1:
                    raise HTTPError(501, "codings before chunked")
                return "chunked", None
            if length is None:
                return "length", 0
            if not (length.isascii() and length.isdigit()):
                raise HTTPError(400, f"Content-Length {length!r}")
            if int(length) > limits.max_body:
                raise HTTPError(413, "too large")
            return "length", int(length)
        """,
        "without regard to case",
    ),
]
