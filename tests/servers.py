"""The servers the tests start, by name: the one table that test modules share.

Seven servers, one per lesson: part 2's, and part 3's six ways of scheduling the same
connection handling. A test that must hold on every server takes its names from here.
"""

SERVERS = {
    "part2": "part2_wsgi/server.py",
    "iterative": "part3_concurrency/iterative_server.py",
    "forking": "part3_concurrency/forking_server.py",
    "threaded": "part3_concurrency/threaded_server.py",
    "select": "part3_concurrency/select_server.py",
    "prefork": "part3_concurrency/prefork_server.py",
    "asyncio": "part3_concurrency/asyncio_server.py",
}
SINGLE_THREADED = ["part2", "iterative"]  # a client that reads nothing holds everybody else
CONCURRENT = [name for name in SERVERS if name not in SINGLE_THREADED]
PART3 = [name for name in SERVERS if name != "part2"]  # the six concurrency models
