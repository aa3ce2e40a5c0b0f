"""Wrong solutions of part 1's exercises: see tests/mutants/__init__.py.

Most mistakes are one line in an otherwise right function, so each such mutant is a right
student's solution (``SERVE_HTTP``, ``PARSE_HEAD``) with that line changed: the
difference between the two is the mistake, and nothing else.
"""

from tests.mutants import Mutant


def changed(code, old, new):
    """``code`` with the one line (or lines) ``old`` replaced by ``new``."""
    assert code.count(old) == 1, f"the right solution no longer holds {old!r}"
    return code.replace(old, new)


# A right serve_http, as a student would write it with the reference's read_head,
# parse_head and read_body (through their module: a parse_head mutant graded in the same
# workbook must not change this serve_http), and a loop and a page of their own.
SERVE_HTTP = """
import html
from urllib.parse import parse_qsl

from part1_sockets import http_server
from part1_sockets.http_server import BadRequest

TIMEOUT = 30
KNOWN_METHODS = ("GET", "HEAD", "POST")
FORM = '<form method="post" action="/"><input name="name"><input name="message"><button>Send</button></form>'


def page_for(method, body):
    if method == "POST":
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return "".join(f"<p>{html.escape(name)}: {html.escape(value)}</p>" for name, value in fields)
    return f"<h1>Hello</h1>{FORM}"


def answer(connection):
    method = None
    try:
        head, rest = http_server.read_head(connection)
        method, target, version, headers = http_server.parse_head(head)
        if method not in KNOWN_METHODS:
            raise BadRequest("501 Not Implemented", f"no {method} here")
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        body = http_server.read_body(connection, headers, rest)
        if target.partition("?")[0] == "/":
            status, text = "200 OK", page_for(method, body)
        else:
            status, text = "404 Not Found", "<p>Nothing here.</p>"
    except BadRequest as error:
        status, text = error.status, f"<p>{html.escape(error.reason)}</p>"
    body = text.encode("utf-8")
    head = (
        f"HTTP/1.1 {status}\\r\\n"
        "Content-Type: text/html; charset=utf-8\\r\\n"
        f"Content-Length: {len(body)}\\r\\n"
        "Connection: close\\r\\n"
        "\\r\\n"
    ).encode("ascii")
    connection.sendall(head if method == "HEAD" else head + body)


def serve_http(listener):
    while True:
        connection, address = listener.accept()
        with connection:
            connection.settimeout(TIMEOUT)
            try:
                answer(connection)
            except (ConnectionError, TimeoutError):
                pass
"""

# A right parse_head, as a student would write it.
PARSE_HEAD = """
import re

from part1_sockets.http_server import BadRequest


def parse_head(head):
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("400 Bad Request", "the head is not ASCII") from None
    request_line, *lines = text.replace("\\r\\n", "\\n").split("\\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or "" in parts or not re.fullmatch(r"HTTP/\\d\\.\\d", parts[2]):
        raise BadRequest("400 Bad Request", "a bad request line")
    method, target, version = parts
    if version[5] != "1":
        raise BadRequest("505 HTTP Version Not Supported", version)
    if version != "HTTP/1.0":
        version = "HTTP/1.1"
    if not (target.startswith(("/", "http://", "https://")) or (target == "*" and method == "OPTIONS")):
        raise BadRequest("400 Bad Request", "a bad target")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest("400 Bad Request", "a bad header line")
        name = name.lower()
        if name in ("host", "content-length") and name in headers:
            raise BadRequest("400 Bad Request", f"two {name} headers")
        headers[name] = value.strip()
    if version == "HTTP/1.1" and "host" not in headers:
        raise BadRequest("400 Bad Request", "no Host")
    return method, target, version, headers
"""


MUTANTS = [
    # --- serve_echo ------------------------------------------------------------------------
    Mutant(
        "part1",
        "serve_echo",
        "never closes a connection",
        """
        CHUNK = 65536


        def serve_echo(listener):
            while True:
                connection, address = listener.accept()
                while True:
                    data = connection.recv(CHUNK)
                    if not data:
                        break
                    connection.sendall(data)
        """,
        "when recv() gives b'', close",
    ),
    Mutant(
        "part1",
        "serve_echo",
        "a reset ends the server",
        """
        CHUNK = 65536


        def serve_echo(listener):
            while True:
                connection, address = listener.accept()
                with connection:
                    while data := connection.recv(CHUNK):
                        connection.sendall(data)
        """,
        "catch ConnectionError around serving one client",
    ),
    # --- make_listener ---------------------------------------------------------------------
    Mutant(
        "part1",
        "make_listener",
        "always IPv4, even for ::1",
        """
        import socket

        def make_listener(host, port):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(128)
            return listener
        """,
        "AF_INET6",
    ),
    # --- serve_http ------------------------------------------------------------------------
    Mutant(
        "part1",
        "serve_http",
        "no Connection: close",
        changed(SERVE_HTTP, '        "Connection: close\\r\\n"\n', ""),
        "Connection: close",
    ),
    Mutant(
        "part1",
        "serve_http",
        "the posted fields shown unescaped",
        changed(
            SERVE_HTTP,
            'f"<p>{html.escape(name)}: {html.escape(value)}</p>"',
            'f"<p>{name}: {value}</p>"',
        ),
        "escape each name and value",
    ),
    Mutant(
        "part1",
        "serve_http",
        "demands a Host of HTTP/1.0 too",
        changed(
            SERVE_HTTP,
            "        method, target, version, headers = http_server.parse_head(head)\n",
            "        method, target, version, headers = http_server.parse_head(head)\n"
            '        if "host" not in headers:\n'
            '            raise BadRequest("400 Bad Request", "which site? say Host")\n',
        ),
        "HTTP/1.0 needs no Host",
    ),
    Mutant(
        "part1",
        "serve_http",
        "HEAD answered 501",
        changed(SERVE_HTTP, 'KNOWN_METHODS = ("GET", "HEAD", "POST")', 'KNOWN_METHODS = ("GET", "POST")'),
        "answer it as GET, without the body",
    ),
    Mutant(
        "part1",
        "serve_http",
        "every path and every method gets the page",
        changed(
            changed(
                SERVE_HTTP,
                "        if method not in KNOWN_METHODS:\n"
                '            raise BadRequest("501 Not Implemented", f"no {method} here")\n',
                "",
            ),
            '        if target.partition("?")[0] == "/":\n',
            "        if True:\n",
        ),
        "404 Not Found",
    ),
    Mutant(
        "part1",
        "serve_http",
        "Content-Length counts characters",
        changed(SERVE_HTTP, 'f"Content-Length: {len(body)}\\r\\n"', 'f"Content-Length: {len(text)}\\r\\n"'),
        "not its characters",
    ),
    Mutant(
        "part1",
        "serve_http",
        "the body is what came with the head",
        changed(SERVE_HTTP, "body = http_server.read_body(connection, headers, rest)", "body = rest"),
        "Content-Length bytes",
    ),
    Mutant(
        "part1",
        "serve_http",
        "the fields decoded with unquote, '+' left as it is",
        changed(
            changed(SERVE_HTTP, "from urllib.parse import parse_qsl", "from urllib.parse import unquote"),
            '        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)\n',
            '        pairs = [pair.partition("=") for pair in body.decode("utf-8", "replace").split("&")]\n'
            "        fields = [(unquote(name), unquote(value)) for name, _, value in pairs]\n",
        ),
        "not as a path",
    ),
    Mutant(
        "part1",
        "serve_http",
        "a client that leaves ends the server",
        changed(SERVE_HTTP, "except (ConnectionError, TimeoutError):", "except TimeoutError:"),
        "catch ConnectionError",
    ),
    Mutant(
        "part1",
        "serve_http",
        "HEAD answered with a body",
        changed(
            SERVE_HTTP,
            'connection.sendall(head if method == "HEAD" else head + body)',
            "connection.sendall(head + body)",
        ),
        "without the body",
    ),
    Mutant(
        "part1",
        "serve_http",
        "the absolute form refused",
        changed(
            SERVE_HTTP,
            '        if target.startswith(("http://", "https://")):\n'
            '            target = "/" + target.split("://", 1)[1].partition("/")[2]\n',
            '        if not target.startswith("/"):\n'
            '            raise BadRequest("400 Bad Request", "a target starts with /")\n',
        ),
        "accept the absolute form",
    ),
    Mutant(
        "part1",
        "serve_http",
        "error.args[0] as the status",
        changed(SERVE_HTTP, "status, text = error.status,", "status, text = error.args[0],"),
        "error.status",
    ),
    Mutant(
        "part1",
        "serve_http",
        "hangs up on nonsense without a 400",
        changed(
            SERVE_HTTP,
            "    except BadRequest as error:\n"
            '        status, text = error.status, f"<p>{html.escape(error.reason)}</p>"\n',
            "    except BadRequest:\n        return  # nonsense: hang up\n",
        ),
        "400 Bad Request page",
    ),
    Mutant(
        "part1",
        "serve_http",
        "a bare status line for an error",
        changed(
            SERVE_HTTP,
            "    except BadRequest as error:\n"
            '        status, text = error.status, f"<p>{html.escape(error.reason)}</p>"\n',
            "    except BadRequest as error:\n"
            '        connection.sendall(f"HTTP/1.1 {error.status}\\r\\n\\r\\n".encode())\n'
            "        return\n",
        ),
        "an error answer is a response like any other",
    ),
    Mutant(
        "part1",
        "serve_http",
        "no timeout: a silent client holds the server",
        changed(SERVE_HTTP, "            connection.settimeout(TIMEOUT)\n", ""),
        "timeout of TIMEOUT seconds",
    ),
    Mutant(
        "part1",
        "serve_http",
        "a timeout that ends the server",
        changed(SERVE_HTTP, "except (ConnectionError, TimeoutError):", "except ConnectionError:"),
        "catch it",
    ),
    Mutant(
        "part1",
        "serve_http",
        "the timeout as a number, not the constant",
        changed(SERVE_HTTP, "connection.settimeout(TIMEOUT)", "connection.settimeout(30)"),
        "with the name TIMEOUT",
    ),
    # --- receive_exactly -------------------------------------------------------------------
    Mutant(
        "part1",
        "receive_exactly",
        "asks recv() for size bytes each time",
        """
        def receive_exactly(connection, size):
            data = b""
            while len(data) < size:
                piece = connection.recv(size)
                if not piece:
                    raise ConnectionError("the peer closed the connection")
                data += piece
            return data
        """,
        "ask for what is still missing",
    ),
    Mutant(
        "part1",
        "receive_exactly",
        "receives before asking whether anything is missing",
        """
        def receive_exactly(connection, size):
            data = b""
            while True:
                piece = connection.recv(size - len(data))
                if not piece:
                    raise ConnectionError("the peer closed the connection")
                data += piece
                if len(data) == size:
                    return data
        """,
        "check what is missing before each recv()",
    ),
    # --- read_head -------------------------------------------------------------------------
    Mutant(
        "part1",
        "read_head",
        "only CRLF CRLF ends a head",
        """
        from part1_sockets.http_server import CHUNK, MAX_HEAD, BadRequest

        def read_head(connection):
            received = b""
            while True:
                end = received.find(b"\\r\\n\\r\\n")
                if (end if end >= 0 else len(received)) > MAX_HEAD:
                    raise BadRequest("431 Request Header Fields Too Large", "the request head is too long")
                if end >= 0:
                    return received[:end], received[end + 4 :]
                data = connection.recv(CHUNK)
                if not data:
                    raise ConnectionError("the client left before the blank line")
                received += data
        """,
        "bare LFs",
    ),
    Mutant(
        "part1",
        "read_head",
        "the limit on everything received, not on the head",
        """
        from part1_sockets.http_server import CHUNK, END_OF_HEAD, MAX_HEAD, BadRequest

        def read_head(connection):
            received = b""
            while not END_OF_HEAD.search(received):
                data = connection.recv(CHUNK)
                if not data:
                    raise ConnectionError("the client left before the blank line")
                received += data
                if len(received) > MAX_HEAD:
                    raise BadRequest("431 Request Header Fields Too Large", "the request head is too long")
            end = END_OF_HEAD.search(received)
            return received[: end.start()], received[end.end() :]
        """,
        "the limit is on the head",
    ),
    # --- parse_head ------------------------------------------------------------------------
    Mutant(
        "part1",
        "parse_head",
        "505 for HTTP/1.2",
        changed(
            PARSE_HEAD,
            '    if version[5] != "1":\n'
            '        raise BadRequest("505 HTTP Version Not Supported", version)\n'
            '    if version != "HTTP/1.0":\n'
            '        version = "HTTP/1.1"\n',
            '    if version not in ("HTTP/1.0", "HTTP/1.1"):\n'
            '        raise BadRequest("505 HTTP Version Not Supported", version)\n',
        ),
        "every HTTP/1.x is accepted",
    ),
    Mutant(
        "part1",
        "parse_head",
        "the absolute form refused",
        changed(
            PARSE_HEAD,
            'if not (target.startswith(("/", "http://", "https://")) or (target == "*" and method == "OPTIONS")):',
            'if not target.startswith("/"):',
        ),
        "accept the absolute form",
    ),
    Mutant(
        "part1",
        "parse_head",
        "a space before the colon let through",
        changed(
            PARSE_HEAD,
            "        if not colon or not name or name != name.strip():\n"
            '            raise BadRequest("400 Bad Request", "a bad header line")\n'
            "        name = name.lower()\n",
            "        if not colon or not name.strip():\n"
            '            raise BadRequest("400 Bad Request", "a bad header line")\n'
            "        name = name.strip().lower()\n",
        ),
        "refuse a name with whitespace",
    ),
    Mutant(
        "part1",
        "parse_head",
        "a header split at every colon",
        changed(
            PARSE_HEAD,
            '        name, colon, value = line.partition(":")\n'
            "        if not colon or not name or name != name.strip():\n",
            '        if ":" not in line:\n'
            '            raise BadRequest("400 Bad Request", "a bad header line")\n'
            '        name, value = line.split(":")\n'
            "        if not name or name != name.strip():\n",
        ),
        "splits at its first colon",
    ),
    Mutant(
        "part1",
        "parse_head",
        "the first of two Accept headers kept",
        changed(PARSE_HEAD, "headers[name] = value.strip()", "headers.setdefault(name, value.strip())"),
        "replaces the one before it",
    ),
    Mutant(
        "part1",
        "parse_head",
        "the last of two Hosts kept",
        changed(
            PARSE_HEAD,
            'if name in ("host", "content-length") and name in headers:',
            'if name == "content-length" and name in headers:',
        ),
        "more than one Host",
    ),
    Mutant(
        "part1",
        "parse_head",
        "two equal Content-Lengths let through",
        changed(
            PARSE_HEAD,
            'if name in ("host", "content-length") and name in headers:',
            'if name in ("host", "content-length") and headers.get(name, value.strip()) != value.strip():',
        ),
        "even with the same value",
    ),
]
