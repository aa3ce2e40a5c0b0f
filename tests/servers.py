"""The seven servers that serve WSGI apps, by name: the one table the tests take them from.

Part 2's server and the iterative server serve one client at a time; the other five serve
others meanwhile (a process, a thread, or an event loop)."""

SERVERS = {
    "part2": "part2_wsgi/server.py",
    "iterative": "part3_concurrency/iterative_server.py",
    "forking": "part3_concurrency/forking_server.py",
    "threaded": "part3_concurrency/threaded_server.py",
    "select": "part3_concurrency/select_server.py",
    "prefork": "part3_concurrency/prefork_server.py",
    "asyncio": "part3_concurrency/asyncio_server.py",
}
ONE_AT_A_TIME = ["part2", "iterative"]
CONCURRENT = [name for name in SERVERS if name not in ONE_AT_A_TIME]
