"""Code that misbehaves rather than errs: it loops, swallows the time limit, ends its process.

A mutant (``tests/mutants``) is a plausible wrong answer; these are what a student's code
may do to the grader itself. ``tests/test_grader.py`` grades them, and
``tests/test_without_posix.py`` stops one without process groups: the grader must fail
each with the reason, and go on.
"""

MISBEHAVING = {
    "part1": """
        def serve_echo(listener):  # loops forever, on the thread that serves the clients
            while True:
                pass


        def receive_exactly(connection, size):  # ends the program
            import sys
            sys.exit()


        def format_response(status, text):  # kills its own process
            import os
            os._exit(3)


        def parse_head(head):  # loops forever, on the test's own thread
            while True:
                pass
        """,
    "part2": """
        def chunk(data):  # loops forever and swallows the time limit's exception
            import time
            while True:
                try:
                    time.sleep(10)
                except BaseException:
                    pass
        """,
    "part3": """
        def serve_threaded(listener, app, max_threads):  # accepts clients, never answers
            held = []
            while True:
                connection, _ = listener.accept()
                held.append(connection)
        """,
}
