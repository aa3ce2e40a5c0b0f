"""``bench.py --files``: serving files, every server against nginx, whitenoise and http.server.

    python part3_concurrency/measure/bench.py --files [--quick] [--out DIR]

One generated folder, with a small file (10 KB) and a large one (100 MB), is served by:

* each of our seven servers, with ``--files DIR``: the files app hands the server
  ``wsgi.file_wrapper``, and the server sends the file with ``sendfile()``;
* ``prefork-read`` and ``select-read``: the same servers with the files app told to read
  the file itself, 64 KB a piece (read_and_send_app.py): what sendfile saves, on one server;
* ``nginx``, from a configuration written in a temporary folder (``worker_processes 2``,
  as our 2-worker servers have, and ``sendfile on``): the speed to aim at;
* ``whitenoise`` on gunicorn gthread, 2 workers of 4 threads (whitenoise_app.py): what a
  Python deployment serves its files with;
* ``http.server``: ``python -m http.server``, what a student tries first;
* and each of ours again on the hello app (``select-hello`` ...), in the same rounds, at
  the small file's levels: what a small file costs a server beside what a request costs.

wrk measures the small file in requests per second (keep-alive, 1, 10 and 100
connections) and the large one in MB/s (1 and 10 connections), and for the large one the
CPU time (user and system) the server's processes spent per GB sent: read from /proc on
Linux, from ``ps`` elsewhere. Servers interleave round by round, as in the hello-world
run, and the median of the rounds is reported. It writes ``files.csv`` and ``files.png``.
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import ServerError, start_server
from part3_concurrency.measure.wrk import LoadFailed, parse_wrk, wrk_failure

# The apps bench.py names as module:callable (read_and_send_app.py, whitenoise_app.py) find
# the folder in this environment variable.
ROOT_VARIABLE = "BENCH_FILES_ROOT"
SMALL_BYTES = 10 * 1024
LARGE_BYTES = 100 * 1024 * 1024
SMALL_LEVELS = (1, 10, 100)
LARGE_LEVELS = (1, 10)
FILE_NAMES = {"small": "small.bin", "large": "large.bin", "hello": ""}
HELLO_APP = "part2_wsgi.apps.hello_app:app"
MB, GB = 1 << 20, 1 << 30


@dataclass
class FileMeasurement:
    server: str
    file: str  # "small" or "large"
    file_bytes: int
    concurrency: int
    round: int
    requests_per_second: float
    mb_per_second: float
    cpu_seconds_per_gb: float
    errors: int
    client: str
    failure: str = ""


@dataclass
class FileRow:
    """The median over rounds for one server, file and concurrency level."""

    server: str
    file: str
    file_bytes: int
    concurrency: int
    requests_per_second: float
    mb_per_second: float
    cpu_seconds_per_gb: float
    errors: int
    client: str
    note: str = ""


# --- the folder ------------------------------------------------------------------------------


def make_folder(folder, small_bytes, large_bytes):
    """Write the two files; let every user read them (nginx's workers may run as nobody)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for name, size in (("small", small_bytes), ("large", large_bytes)):
        path = folder / FILE_NAMES[name]
        with open(path, "wb") as file:
            piece = bytes(range(256)) * 4096  # 1 MB of anything: only its size matters
            for start in range(0, size, len(piece)):
                file.write(piece[: size - start])
        path.chmod(0o644)
    return folder


# --- the anchors: programs that print no Serving line ---------------------------------------


def free_port():
    """A port nobody listens on now (nginx cannot be told port 0 and report the real one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Program:
    """A server that is not ours: started on a port we chose, ready once it accepts."""

    def __init__(self, command, port, log, timeout=15.0):
        """``log``: a file for its output (http.server logs every request: a pipe nobody
        reads would fill, and block it)."""
        self.port, self.host = port, "127.0.0.1"
        with open(log, "wb") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        self.pid = self.process.pid
        deadline = time.monotonic() + timeout
        while not self.accepts():  # it says nothing when ready: ask the port, as a client would
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                error = Path(log).read_text(errors="replace").strip()
                raise ServerError(f"{Path(command[0]).name} did not start: {error[-300:] or 'no message'}")
            time.sleep(0.02)

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def address(self):
        return (self.host, self.port)

    def accepts(self):
        try:
            socket.create_connection(self.address, timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self, timeout=10):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


NGINX_CONF = """\
worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    sendfile on;
    # wrk keeps each connection for the whole run, as our servers allow: no cap per connection
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def find_nginx():
    """nginx lives in sbin, which a normal user's PATH may not have."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/opt/homebrew/bin")


def start_nginx(folder, tmp):
    nginx = find_nginx()
    if nginx is None:
        raise ServerError("nginx is not installed (apt-get install nginx, brew install nginx)")
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port, root=folder))
    command = [nginx, "-p", f"{tmp}/", "-c", str(tmp / "nginx.conf")]
    if sets_error_log_at_start(nginx):  # else it first tries /var/log/nginx, and says so
        command += ["-e", str(tmp / "error.log")]
    return Program(command, port, tmp / "output.log")


def sets_error_log_at_start(nginx):
    """nginx takes ``-e FILE`` since 1.19.5."""
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
    return found is not None and tuple(map(int, found.groups())) >= (1, 19, 5)


def start_http_server(folder, tmp):
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)]
    return Program(command, port, tmp / "http.server.log")


# --- the servers -------------------------------------------------------------------------------

HELLO_SUFFIX = "-hello"  # "select-hello": the select server on the hello app, measured at SMALL_LEVELS


def servers(ours, workers):
    """name -> a function of (folder, tmp) that starts it and returns a running server."""
    read_app = "part3_concurrency.measure.read_and_send_app:app"

    def our(script, *args):
        return lambda folder, tmp: start_server(script, *args, "--files", folder, timeout=30)

    def hello(script, *args):
        return lambda folder, tmp: start_server(script, *args, HELLO_APP, timeout=30)

    def reading(script, *args):
        return lambda folder, tmp: start_server(script, *args, read_app, env={ROOT_VARIABLE: str(folder)}, timeout=30)

    starters = {name: our(*command) for name, command in ours.items()}
    # Each of ours on the hello app too, in the same rounds: a file's cost beside a request's.
    for name, command in ours.items():
        starters[f"{name}{HELLO_SUFFIX}"] = hello(*command)
    starters["prefork-read"] = reading(*ours["prefork"])
    starters["select-read"] = reading(*ours["select"])
    starters["nginx"] = lambda folder, tmp: start_nginx(folder, tmp / "nginx")
    starters["whitenoise"] = lambda folder, tmp: start_server(
        "part2_wsgi/mixmatch.py",
        "gunicorn-gthread",
        "--workers",
        str(workers),
        "part3_concurrency.measure.whitenoise_app:app",
        env={ROOT_VARIABLE: str(folder)},
        timeout=30,
    )
    starters["http.server"] = lambda folder, tmp: start_http_server(folder, tmp)
    return starters


# --- CPU time: the server and every process it started ---------------------------------------


def tree_cpu_seconds(pid):
    """User + system CPU seconds of ``pid`` and its descendants, the children it has reaped
    included (a forking server's finished children count in its own ``cutime``)."""
    processes = proc_table() if os.path.isdir("/proc/self") else ps_table()
    children = {}
    for child, (parent, _) in processes.items():
        children.setdefault(parent, []).append(child)
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += processes.get(current, (0, 0.0))[1]
        stack.extend(children.get(current, []))
    return total


def proc_table():
    """pid -> (ppid, CPU seconds) from /proc/PID/stat (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:  # it exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": the name may hold spaces
        ppid, utime, stime, cutime, cstime = int(fields[1]), *map(int, fields[11:15])
        table[int(entry)] = (ppid, (utime + stime + cutime + cstime) / tick)
    return table


def ps_table():
    """pid -> (ppid, CPU seconds) from ``ps`` (macOS and other systems without /proc)."""
    listing = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,time="], capture_output=True, text=True).stdout
    table = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0].isdigit() and fields[1].isdigit():
            table[int(fields[0])] = (int(fields[1]), clock_seconds(fields[2]))
    return table


def clock_seconds(text):
    """``[DD-]HH:MM:SS[.cc]`` or ``MM:SS.cc``, as ps prints CPU time, in seconds."""
    days, _, clock = text.rpartition("-")
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds + (int(days) * 86400 if days else 0)


# --- driving the load --------------------------------------------------------------------------

SIZE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_wrk_totals(output):
    """(requests, seconds, bytes read) from wrk's ``N requests in 2.00s, 1.75GB read``."""
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read", output)
    if found is None:
        return 0, 0.0, 0
    seconds = float(found[2]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[found[3]]
    return int(found[1]), seconds, int(float(found[4]) * SIZE_UNITS[found[5]])


def measure_file(server, file, file_bytes, level, seconds):
    """One wrk run on one file: (requests/s, MB/s, CPU s per GB, errors); LoadFailed if nothing."""
    command = ["wrk", f"-t{min(2, level)}", f"-c{level}", f"-d{seconds}s", "--timeout", "30s"]
    before = tree_cpu_seconds(server.pid)
    result = subprocess.run(
        command + [f"{server.url}/{FILE_NAMES[file]}"], capture_output=True, text=True, timeout=seconds + 60
    )
    cpu = tree_cpu_seconds(server.pid) - before
    output = result.stdout + result.stderr
    failure = wrk_failure(result.returncode, output)
    if failure:
        raise LoadFailed(failure)
    rate, _, _, errors = parse_wrk(result.stdout)
    _, elapsed, received = parse_wrk_totals(result.stdout)
    if received < file_bytes:
        raise LoadFailed(f"not one whole file arrived: {received} bytes read")
    return rate, received / MB / elapsed, cpu / (received / GB), errors


def measure_files(names, starters, rounds, seconds, small_bytes, large_bytes, progress=print):
    """Start every server once on one folder, then measure round by round, servers interleaved."""
    nan = float("nan")
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        tmp = Path(tmp)
        tmp.chmod(0o755)  # nginx's workers, as nobody, must reach the folder inside
        folder = make_folder(tmp / "public", small_bytes, large_bytes)
        sizes = {"small": small_bytes, "large": large_bytes}
        running, unavailable = {}, {}
        for name in names:
            try:
                running[name] = starters[name](folder, tmp)
            except ServerError as error:
                unavailable[name] = str(error).splitlines()[-1][-200:]
        plan = [("small", level) for level in SMALL_LEVELS] + [("large", level) for level in LARGE_LEVELS]
        plan += [("hello", level) for level in SMALL_LEVELS]
        sizes["hello"] = 0  # (hello world's body: its size does not matter here)

        def measured_on(name, file):
            return (file == "hello") == name.endswith(HELLO_SUFFIX)

        steps = [(file, level, name) for file, level in plan for name in running if measured_on(name, file)]
        measurements, total = [], rounds * len(steps)
        try:
            for round_number in range(1, rounds + 1):
                for file, level, name in steps:
                    server = running[name]
                    try:
                        figures = measure_file(server, file, sizes[file], level, seconds)
                        failure = ""
                    except LoadFailed as error:
                        figures, failure = (nan, nan, nan, 0), str(error)
                    rate, mb, cpu, errors = figures
                    measurements.append(
                        FileMeasurement(
                            name, file, sizes[file], level, round_number, rate, mb, cpu, errors, "wrk", failure
                        )
                    )
                    said = f"error: {failure}" if failure else f"{rate:9.0f} req/s {mb:8.0f} MB/s {cpu:6.2f} CPU s/GB"
                    progress(
                        f"[{len(measurements)}/{total}] round {round_number} {file:5} c={level:<4} {name:13} {said}"
                    )
        finally:
            for server in running.values():
                server.stop(timeout=10)
    return summarise_files(measurements, unavailable, sizes, plan, measured_on)


def summarise_files(measurements, unavailable, sizes, plan, measured_on=lambda name, file: True):
    """Median over rounds; a failed round makes its row an error; a row per unavailable server."""
    nan = float("nan")
    groups = {}
    for m in measurements:
        groups.setdefault((m.server, m.file, m.file_bytes, m.concurrency), []).append(m)
    rows = []
    for (server, file, file_bytes, level), group in groups.items():
        failure = next((m.failure for m in group if m.failure), "")
        if failure:
            rows.append(FileRow(server, file, file_bytes, level, nan, nan, nan, 0, "wrk", f"error: {failure}"))
            continue
        rows.append(
            FileRow(
                server,
                file,
                file_bytes,
                level,
                round(statistics.median(m.requests_per_second for m in group), 1),
                round(statistics.median(m.mb_per_second for m in group), 3),
                round(statistics.median(m.cpu_seconds_per_gb for m in group), 3),
                sum(m.errors for m in group),
                "wrk",
            )
        )
    for name, reason in unavailable.items():
        for file, level in plan:
            if measured_on(name, file):
                rows.append(FileRow(name, file, sizes[file], level, nan, nan, nan, 0, "-", f"unavailable: {reason}"))
    return rows


# --- the plot ------------------------------------------------------------------------------------


def plot_files(rows, path, ours):
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    measured = [row for row in rows if not row.note]
    names = list(dict.fromkeys(row.server for row in rows))
    figure, (small, large, cpu) = plt.subplots(1, 3, figsize=(15, 4.5))
    for axis, file, field, label in (
        (small, "small", "requests_per_second", "requests per second"),
        (large, "large", "mb_per_second", "MB/s"),
    ):
        for name in names:
            points = sorted((r.concurrency, getattr(r, field)) for r in measured if r.server == name and r.file == file)
            if points:
                axis.plot(*zip(*points, strict=False), "-o" if name in ours else "--s", label=name)
        levels = sorted({r.concurrency for r in rows if r.file == file})
        axis.set_xscale("log")
        axis.set_xticks(levels, [str(level) for level in levels])
        axis.set_xlabel("concurrent connections (keep-alive)")
        axis.set_ylabel(label)
        size = next((r.file_bytes for r in rows if r.file == file), 0)
        axis.set_title(f"a {size / 1024:.3g} KB file" if size < MB else f"a {size / MB:.3g} MB file")
        axis.grid(True, which="both", alpha=0.3)
    top = max((r.concurrency for r in measured if r.file == "large"), default=0)
    bars = [(r.server, r.cpu_seconds_per_gb) for r in measured if r.file == "large" and r.concurrency == top]
    if bars:
        cpu.barh(*zip(*bars, strict=False))
        cpu.invert_yaxis()
    cpu.set_xlabel("CPU seconds per GB sent (the server's processes)")
    cpu.set_title(f"CPU per GB, large file, {top} connections")
    large.legend(loc="upper left", fontsize=8)
    figure.suptitle("serving files: ours (solid) with sendfile, read-and-send, nginx, whitenoise, http.server (dashed)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def print_files_table(rows):
    print(f"{'server':14}{'file':7}{'conns':>6}{'req/s':>10}{'MB/s':>9}{'CPU s/GB':>10}{'errors':>8}")
    for r in sorted(rows, key=lambda r: (r.file != "small", r.concurrency, r.server)):
        if r.note:
            print(f"{r.server:14}{r.file:7}{r.concurrency:>6}  {r.note}")
        else:
            print(
                f"{r.server:14}{r.file:7}{r.concurrency:>6}{r.requests_per_second:>10.0f}{r.mb_per_second:>9.0f}"
                f"{r.cpu_seconds_per_gb:>10.2f}{r.errors:>8}"
            )
