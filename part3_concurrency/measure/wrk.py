"""What bench.py and files_bench.py both need from wrk: reading its report, and knowing
when a run measured nothing. Both import it from here, so that neither imports the other
for it."""

import re

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output):
    """Pull requests/s, p50, p99 (ms) and the error count out of wrk's report."""

    def latency(percentile):
        match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        return float(match[1]) * UNITS[match[2]] if match else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = sum(map(int, socket_errors.groups())) if socket_errors else 0
    errors += int(non_2xx[1]) if non_2xx else 0
    return (float(rate[1]) if rate else 0.0), latency(50), latency(99), errors


class LoadFailed(Exception):
    """The load measured nothing worth a figure; its row says why instead of a number."""


def wrk_failure(returncode, output):
    """Why a wrk run is no measurement, or None: wrk failed, or no request succeeded.

    wrk prints a report even when every connection was refused (0 requests, and a rate
    of 0.00) or reset (socket errors, and a few requests): a figure made of that would
    be a measurement of nothing, so the row must say what happened instead."""
    if returncode != 0:
        last_line = (output.strip().splitlines() or ["no output"])[-1]
        return f"wrk exited with status {returncode}: {last_line[:120]}"
    done = re.search(r"(\d+) requests in", output)
    if done is None:
        return "wrk printed no report"
    requests = int(done[1])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*", output)
    errors = socket_errors[0] if socket_errors else "no socket errors"
    if requests - (int(non_2xx[1]) if non_2xx else 0) <= 0:
        return f"no successful response: {requests} requests; {errors}"
    if socket_errors and sum(map(int, re.findall(r"\d+", errors))) >= requests:
        return f"more socket errors than requests: {requests} requests; {errors}"
    return None
