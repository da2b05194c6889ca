"""The stdio half of `make bench-compare`: kimai-mcp (this project, release build) and the
Python kimai-mcp 2.20.1, one after the other against the same simulated Kimai, with the same
tool calls. Prints each figure side by side with the ratio. (The Streamable HTTP half runs in
benches/bench.rs, in Rust, so that the load generator is not the bottleneck.)

Usage: compare_python.py RUST_BINARY PYTHON_KIMAI_MCP
"""

import json
import statistics
import subprocess
import sys
import time
import urllib.request

RUST, PYTHON = sys.argv[1], sys.argv[2]
SPAWNS = 10
CALLS = 200
STATS_RUNS = 5

sim = subprocess.Popen([RUST, "sim", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
url = demo = admin = None
for line in sim.stdout:
    parts = line.split()
    if parts[0] == "url":
        url = parts[1]
    elif parts[0] == "user" and parts[3] == "ROLE_SUPER_ADMIN":
        admin = parts[4]
    elif parts[0] == "demo-token":
        demo = parts[1]
        break


def sim_get(path, token):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers, r.read()


def kimai_requests():
    _, body = sim_get("/__sim/requests", admin)
    return len(json.loads(body)["requests"])


def clear_requests():
    urllib.request.urlopen(urllib.request.Request(url + "/__sim/requests", method="DELETE"), timeout=10).read()


# The earliest month start from which at most 5,000 records match (all users).
begin = None
for year in range(2024, 2027):
    for month in range(1, 13):
        b = f"{year:04d}-{month:02d}-01"
        headers, _ = sim_get(f"/api/timesheets?user=all&size=1&begin={b}T00:00:00", admin)
        if int(headers["X-Total-Count"]) <= 5000:
            begin = b
            break
    if begin:
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


def session(cmd):
    p = start(cmd)
    send(p, INIT)
    recv(p)
    send(p, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    return p


def call(p, i, tool, args):
    t = time.perf_counter()
    send(p, json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": args}}))
    r = recv(p)
    took = (time.perf_counter() - t) * 1000
    assert "result" in r and not r["result"].get("isError"), (tool, r)
    return took


def measure(cmd_for):
    f = {}
    starts = []
    for _ in range(SPAWNS):
        t = time.perf_counter()
        p = start(cmd_for(demo))
        send(p, INIT)
        recv(p)
        starts.append((time.perf_counter() - t) * 1000)
        p.stdin.close()
        p.wait(timeout=30)
    f["cold start to initialize, median ms"] = statistics.median(starts)
    p = session(cmd_for(demo))
    for name, tool, args in [
        ("user_current, median ms", "user_current", {}),
        ("timer active, median ms", "timer", {"action": "active"}),
        ("timesheet list (10 rows), median ms", "timesheet", {"action": "list", "filters": {"size": 10}}),
    ]:
        f[name] = statistics.median(call(p, i, tool, args) for i in range(1, CALLS + 1))
    f["peak RSS after the calls, MB"] = peak_rss_mb(p.pid)
    p.stdin.close()
    p.wait(timeout=30)
    p = session(cmd_for(admin))
    args = {"action": "list", "filters": {"user_scope": "all", "begin": begin, "calculate_stats": True}}
    runs = []
    for i in range(STATS_RUNS):
        clear_requests()
        runs.append(call(p, 10_000 + i, "timesheet", args))
        requests = kimai_requests()
    f["statistics over <= 5,000 records, median ms"] = statistics.median(runs)
    f["statistics: Kimai requests"] = requests
    p.stdin.close()
    p.wait(timeout=30)
    return f


ours = measure(lambda token: [RUST, "stdio", "--kimai-url", url, "--kimai-token", token])
theirs = measure(lambda token: [PYTHON, "--kimai-url", url, "--kimai-token", token])
print(f"stdio (simulated Kimai at {url}, statistics from {begin})")
print(f"{'figure':<46} {'kimai-mcp (Rust)':>17} {'Python 2.20.1':>14} {'ratio':>8}")
for k in ours:
    o, t = ours[k], theirs[k]
    ratio = t / o if o else float("inf")
    print(f"{k:<46} {o:>17.2f} {t:>14.2f} {ratio:>7.1f}x")
sim.terminate()
