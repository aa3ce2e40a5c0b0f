"""Part 4's send high-water mark, A/B: what a client that reads nothing costs, and the rate
of one large stream.

    python part3_concurrency/measure/send_high_water.py [--rounds N] [--out DIR] [BYTES ...]

The ASGI server's ``send()`` waits while the transport holds more than
``SEND_HIGH_WATER`` bytes for a client (part4_asgi/server.py). For each mark (default 1 MiB,
the part 3 loops' own; 256 KiB; 64 KiB, asyncio's default), a server runs
tests/asgi_apps.py with the mark set, and:

* 20 clients ask for a 125 MiB stream and read nothing (a 4 KB receive buffer): the
  server's resident memory before, and 3 s after;
* curl reads a 1 GiB chunked stream: its rate, and the server's CPU seconds for it (less
  disturbed by other work on the machine than the rate is).

The marks take turns, the order swapped every round. It writes ``send_high_water.csv``.
"""

import argparse
import csv
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Runs the server with the mark patched in: the first argument is the mark.
LAUNCH = (
    "import sys, part4_asgi.server as server; server.SEND_HIGH_WATER = int(sys.argv.pop(1)); "
    "sys.argv[0] = 'server.py'; sys.exit(server.main())"
)
CLIENTS = 20


def start(mark):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", LAUNCH, str(mark), "tests.asgi_apps:app", "--port", "0", "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    process.port = int(re.search(r":(\d+)$", process.stdout.readline().strip()).group(1))
    return process


def resident_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def clients_that_read_nothing(port):
    clients = []
    for _ in range(CLIENTS):
        client = socket.create_connection(("127.0.0.1", port))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(b"GET /stream?count=2000&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append(client)
    return clients


def stream(process):
    """curl reads 1 GiB: MiB per second, and the server's CPU seconds meanwhile."""
    before = cpu_seconds(process.pid)
    url = f"http://127.0.0.1:{process.port}/stream?count=16384&size=65536"
    rate = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url], capture_output=True)
    return float(rate.stdout) / 2**20, cpu_seconds(process.pid) - before


def measure(mark):
    process = start(mark)
    try:
        idle = resident_mib(process.pid)
        clients = clients_that_read_nothing(process.port)
        time.sleep(3)
        held = resident_mib(process.pid)
        for client in clients:
            client.close()
        rate, cpu = stream(process)
    finally:
        process.terminate()
        process.wait()
    return {
        "rss_idle_mib": f"{idle:.1f}",
        "rss_20_unread_mib": f"{held:.1f}",
        "stream_mib_s": f"{rate:.0f}",
        "server_cpu_s_per_gib": f"{cpu:.2f}",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("marks", nargs="*", type=int, default=[1024 * 1024, 256 * 1024, 64 * 1024], metavar="BYTES")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    options = parser.parse_args()
    rows = []
    for round_ in range(options.rounds):
        for mark in options.marks if round_ % 2 == 0 else options.marks[::-1]:
            rows.append({"round": round_, "high_water": mark, **measure(mark)})
            print(rows[-1], flush=True)
    with open(options.out / "send_high_water.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
