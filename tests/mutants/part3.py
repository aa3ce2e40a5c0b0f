"""Wrong solutions of part 3's exercises: see tests/mutants/__init__.py."""

from tests.mutants import Mutant

# What every forking mutant shares, right but for the one mistake it shows.
FORKING_IMPORTS = """
        import os
        import signal

        from part2_wsgi.minimal_server import serve_connection
"""

REAP_IN_A_LOOP = """
        def reap(signum, frame):
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
"""

THREADED_IMPORTS = """
        import threading

        from part2_wsgi.minimal_server import serve_connection
"""

# The select mutants define what the reference workbook takes from its own module.
SELECT_IMPORTS = """
        import selectors

        from part3_concurrency.minimal_servers import CHUNK, MAX_HEAD, RESPONSE
"""

MUTANTS = [
    # --- serve_forking -----------------------------------------------------------------------
    Mutant(
        "part3",
        "serve_forking",
        "the reaper waits for every child, in a blocking waitpid",
        FORKING_IMPORTS
        + """
        def reap(signum, frame):
            while True:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    return


        def serve_forking(listener, app):
            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    try:
                        listener.close()
                        serve_connection(connection, address, app, multiprocess=True)
                    finally:
                        os._exit(0)
                connection.close()
        """,
        "Reap with WNOHANG",
    ),
    Mutant(
        "part3",
        "serve_forking",
        "one waitpid per signal",
        FORKING_IMPORTS
        + """
        def reap(signum, frame):
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pass


        def serve_forking(listener, app):
            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    try:
                        listener.close()
                        serve_connection(connection, address, app, multiprocess=True)
                    finally:
                        os._exit(0)
                connection.close()
        """,
        "waitpid with WNOHANG in a loop",
    ),
    Mutant(
        "part3",
        "serve_forking",
        "the child keeps the listener",
        FORKING_IMPORTS
        + REAP_IN_A_LOOP
        + """

        def serve_forking(listener, app):
            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    try:
                        serve_connection(connection, address, app, multiprocess=True)
                    finally:
                        os._exit(0)
                connection.close()
        """,
        "close the child's copy of the listener",
    ),
    Mutant(
        "part3",
        "serve_forking",
        "the child ends with sys.exit",
        FORKING_IMPORTS
        + REAP_IN_A_LOOP
        + """

        def serve_forking(listener, app):
            import sys

            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    try:
                        listener.close()
                        serve_connection(connection, address, app, multiprocess=True)
                    finally:
                        sys.exit(0)
                connection.close()
        """,
        "let SystemExit out of serve_forking()",
    ),
    Mutant(
        "part3",
        "serve_forking",
        "the child ends without a finally",
        FORKING_IMPORTS
        + REAP_IN_A_LOOP
        + """

        def serve_forking(listener, app):
            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    listener.close()
                    serve_connection(connection, address, app, multiprocess=True)
                    os._exit(0)
                connection.close()
        """,
        "os._exit(0) in a finally",
    ),
    Mutant(
        "part3",
        "serve_forking",
        "the parent forgets to close its copy",
        FORKING_IMPORTS
        + REAP_IN_A_LOOP
        + """

        def serve_forking(listener, app):
            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    try:
                        listener.close()
                        serve_connection(connection, address, app, multiprocess=True)
                    finally:
                        os._exit(0)
        """,
        "did each process close its copy?",
    ),
    Mutant(
        "part3",
        "serve_forking",
        "the app is not told of the processes",
        FORKING_IMPORTS
        + REAP_IN_A_LOOP
        + """

        def serve_forking(listener, app):
            signal.signal(signal.SIGCHLD, reap)
            while True:
                connection, address = listener.accept()
                if os.fork() == 0:
                    try:
                        listener.close()
                        serve_connection(connection, address, app)
                    finally:
                        os._exit(0)
                connection.close()
        """,
        "multiprocess=True",
    ),
    # --- serve_threaded ----------------------------------------------------------------------
    Mutant(
        "part3",
        "serve_threaded",
        "threads that are not daemons",
        THREADED_IMPORTS
        + """
        def serve_threaded(listener, app, max_threads):
            slots = threading.BoundedSemaphore(max_threads)

            def serve(connection, address):
                try:
                    serve_connection(connection, address, app, multithread=True)
                finally:
                    slots.release()

            while True:
                slots.acquire()
                connection, address = listener.accept()
                threading.Thread(target=serve, args=(connection, address)).start()
        """,
        "daemon=True",
    ),
    Mutant(
        "part3",
        "serve_threaded",
        "the slot is given back outside a finally",
        THREADED_IMPORTS
        + """
        def serve_threaded(listener, app, max_threads):
            slots = threading.BoundedSemaphore(max_threads)

            def serve(connection, address):
                serve_connection(connection, address, app, multithread=True)
                slots.release()

            while True:
                slots.acquire()
                connection, address = listener.accept()
                threading.Thread(target=serve, args=(connection, address), daemon=True).start()
        """,
        "give the slot back in a finally",
    ),
    Mutant(
        "part3",
        "serve_threaded",
        "the slot is taken after accept",
        THREADED_IMPORTS
        + """
        def serve_threaded(listener, app, max_threads):
            slots = threading.BoundedSemaphore(max_threads)

            def serve(connection, address):
                try:
                    serve_connection(connection, address, app, multithread=True)
                finally:
                    slots.release()

            while True:
                connection, address = listener.accept()
                slots.acquire()
                threading.Thread(target=serve, args=(connection, address), daemon=True).start()
        """,
        "Take a slot before accept()",
    ),
    Mutant(
        "part3",
        "serve_threaded",
        "the app is not told of the threads",
        THREADED_IMPORTS
        + """
        def serve_threaded(listener, app, max_threads):
            slots = threading.BoundedSemaphore(max_threads)

            def serve(connection, address):
                try:
                    serve_connection(connection, address, app)
                finally:
                    slots.release()

            while True:
                slots.acquire()
                connection, address = listener.accept()
                threading.Thread(target=serve, args=(connection, address), daemon=True).start()
        """,
        "multithread=True",
    ),
    Mutant(
        "part3",
        "serve_threaded",
        "a plain Semaphore, released in an except and in the finally",
        THREADED_IMPORTS
        + """
        def serve_threaded(listener, app, max_threads):
            slots = threading.Semaphore(max_threads)

            def serve(connection, address):
                try:
                    serve_connection(connection, address, app, multithread=True)
                except Exception:
                    slots.release()  # the app failed: free the slot
                    raise
                finally:
                    slots.release()

            while True:
                slots.acquire()
                connection, address = listener.accept()
                threading.Thread(target=serve, args=(connection, address), daemon=True).start()
        """,
        "the cap grew",
    ),
    # --- serve_select ------------------------------------------------------------------------
    Mutant(
        "part3",
        "serve_select",
        "recv() in a loop until the blank line, on a ready socket",
        SELECT_IMPORTS
        + """
        def serve_select(listener):
            listener.setblocking(False)
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ)
            while True:
                for key, events in selector.select():
                    sock = key.fileobj
                    if sock is listener:
                        try:
                            connection, _ = listener.accept()
                        except BlockingIOError:
                            continue
                        connection.setblocking(False)
                        selector.register(connection, selectors.EVENT_READ, bytearray())
                    elif events & selectors.EVENT_READ:
                        try:
                            while b"\\r\\n\\r\\n" not in key.data:
                                data = sock.recv(CHUNK)
                                if not data or len(key.data) > MAX_HEAD:
                                    raise ConnectionError("gone, or too long")
                                key.data.extend(data)
                        except OSError:
                            selector.unregister(sock)
                            sock.close()
                            continue
                        selector.modify(sock, selectors.EVENT_WRITE, bytearray(RESPONSE))
                    else:
                        try:
                            sent = sock.send(key.data)
                        except OSError:
                            sent = len(key.data)
                        del key.data[:sent]
                        if not key.data:
                            selector.unregister(sock)
                            sock.close()
        """,
        "BlockingIOError",
    ),
    Mutant(
        "part3",
        "serve_select",
        "blocking sockets",
        SELECT_IMPORTS
        + """
        def serve_select(listener):
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ)
            while True:
                for key, events in selector.select():
                    sock = key.fileobj
                    if sock is listener:
                        connection, _ = listener.accept()
                        selector.register(connection, selectors.EVENT_READ, bytearray())
                    elif events & selectors.EVENT_READ:
                        try:
                            data = sock.recv(CHUNK)
                        except OSError:
                            data = b""
                        key.data.extend(data)
                        if b"\\r\\n\\r\\n" in key.data:
                            selector.modify(sock, selectors.EVENT_WRITE, bytearray(RESPONSE))
                        elif not data or len(key.data) > MAX_HEAD:
                            selector.unregister(sock)
                            sock.close()
                    else:
                        try:
                            sent = sock.send(key.data)
                        except OSError:
                            sent = len(key.data)
                        del key.data[:sent]
                        if not key.data:
                            selector.unregister(sock)
                            sock.close()
        """,
        "setblocking(False)",
    ),
    Mutant(
        "part3",
        "serve_select",
        "no limit on the head",
        SELECT_IMPORTS
        + """
        def serve_select(listener):
            listener.setblocking(False)
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ)
            while True:
                for key, events in selector.select():
                    sock = key.fileobj
                    if sock is listener:
                        try:
                            connection, _ = listener.accept()
                        except BlockingIOError:
                            continue
                        connection.setblocking(False)
                        selector.register(connection, selectors.EVENT_READ, bytearray())
                    elif events & selectors.EVENT_READ:
                        try:
                            data = sock.recv(CHUNK)
                        except OSError:
                            data = b""
                        key.data.extend(data)
                        if b"\\r\\n\\r\\n" in key.data:
                            selector.modify(sock, selectors.EVENT_WRITE, bytearray(RESPONSE))
                        elif not data:
                            selector.unregister(sock)
                            sock.close()
                    else:
                        try:
                            sent = sock.send(key.data)
                        except OSError:
                            sent = len(key.data)
                        del key.data[:sent]
                        if not key.data:
                            selector.unregister(sock)
                            sock.close()
        """,
        "passes MAX_HEAD",
    ),
    Mutant(
        "part3",
        "serve_select",
        "sendall on a non-blocking socket",
        SELECT_IMPORTS
        + """
        def serve_select(listener):
            listener.setblocking(False)
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ)
            while True:
                for key, events in selector.select():
                    sock = key.fileobj
                    if sock is listener:
                        try:
                            connection, _ = listener.accept()
                        except BlockingIOError:
                            continue
                        connection.setblocking(False)
                        selector.register(connection, selectors.EVENT_READ, bytearray())
                    elif events & selectors.EVENT_READ:
                        try:
                            data = sock.recv(CHUNK)
                        except OSError:
                            data = b""
                        key.data.extend(data)
                        if b"\\r\\n\\r\\n" in key.data:
                            selector.modify(sock, selectors.EVENT_WRITE, RESPONSE)
                        elif not data or len(key.data) > MAX_HEAD:
                            selector.unregister(sock)
                            sock.close()
                    else:
                        sock.sendall(key.data)
                        selector.unregister(sock)
                        sock.close()
        """,
        "Call send() once per writable event",
    ),
    Mutant(
        "part3",
        "serve_select",
        "RESPONSE handed over as bytes, to be cut",
        SELECT_IMPORTS
        + """
        def serve_select(listener):
            listener.setblocking(False)
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ)
            while True:
                for key, events in selector.select():
                    sock = key.fileobj
                    if sock is listener:
                        try:
                            connection, _ = listener.accept()
                        except BlockingIOError:
                            continue
                        connection.setblocking(False)
                        selector.register(connection, selectors.EVENT_READ, bytearray())
                    elif events & selectors.EVENT_READ:
                        try:
                            data = sock.recv(CHUNK)
                        except OSError:
                            data = b""
                        key.data.extend(data)
                        if b"\\r\\n\\r\\n" in key.data:
                            selector.modify(sock, selectors.EVENT_WRITE, RESPONSE)
                        elif not data or len(key.data) > MAX_HEAD:
                            selector.unregister(sock)
                            sock.close()
                    else:
                        try:
                            sent = sock.send(key.data)
                        except OSError:
                            sent = len(key.data)
                        del key.data[:sent]
                        if not key.data:
                            selector.unregister(sock)
                            sock.close()
        """,
        "del key.data[:sent]",
    ),
]
