"""The old name of command_line.py, kept so that code written against it still loads.

A student's workbook written before the rename imports ``AppLoadError`` from here, and
so do older notebooks and scripts; everything new imports from command_line.py (the
command line, loading the app, the listening socket, the logs) or connection_handler.py
(serving one client on a blocking socket).
"""

from part2_wsgi.command_line import (  # noqa: F401  (re-exported)
    BACKLOG,
    CHUNK,
    DEFAULT_APP,
    AppLoadError,
    OneLineParser,
    count_option,
    create_listening_socket,
    load_app,
    positive_int,
    raise_open_file_limit,
    run,
)
