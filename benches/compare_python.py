"""kimai-mcp (this project, release build) against the Python kimai-mcp 2.20.1, both over stdio
against the same simulated Kimai: cold start to the initialize response, user_current round
trip, and peak RSS after the calls. Run with `make bench-python` (installs the Python package
into target/pycompare/ on first use).

Usage: compare_python.py RUST_BINARY PYTHON_KIMAI_MCP
"""

import json
import statistics
import subprocess
import sys
import time

RUST, PYTHON = sys.argv[1], sys.argv[2]
SPAWNS = 10
CALLS = 300

sim = subprocess.Popen([RUST, "sim", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
url = token = None
for line in sim.stdout:
    if line.startswith("url "):
        url = line.split()[1]
    if line.startswith("demo-token "):
        token = line.split()[1]
        break

INIT = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})


def start(cmd):
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)


def send(p, msg):
    p.stdin.write(msg + "\n")
    p.stdin.flush()


def recv(p):
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("server closed stdout")
        m = json.loads(line)
        if "id" in m:
            return m


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(name, cmd):
    starts = []
    for _ in range(SPAWNS):
        t = time.perf_counter()
        p = start(cmd)
        send(p, INIT)
        recv(p)
        starts.append((time.perf_counter() - t) * 1000)
        p.stdin.close()
        p.wait(timeout=30)
    p = start(cmd)
    send(p, INIT)
    recv(p)
    send(p, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    trips = []
    for i in range(CALLS):
        t = time.perf_counter()
        send(p, json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": "user_current", "arguments": {}}}))
        r = recv(p)
        trips.append((time.perf_counter() - t) * 1000)
        assert not r["result"].get("isError"), r
    rss = peak_rss_mb(p.pid)
    p.stdin.close()
    p.wait(timeout=30)
    trips.sort()
    print(f"{name:<22} cold start median {statistics.median(starts):8.1f} ms | user_current median {statistics.median(trips):6.2f} ms, p99 {trips[int(len(trips) * 0.99) - 1]:6.2f} ms | peak RSS {rss:6.1f} MB")


measure("kimai-mcp (Rust)", [RUST, "stdio", "--kimai-url", url, "--kimai-token", token])
measure("kimai-mcp 2.20.1 (Py)", [PYTHON, "--kimai-url", url, "--kimai-token", token])
sim.terminate()
