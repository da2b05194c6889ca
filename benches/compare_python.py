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
# Statistics and team analysis are measured in this many rounds, each in a fresh process (so
# that each round starts without remembered names); ratios are the median over the rounds.
ROUNDS = 3

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


def kimai_log():
    """(requests, bytes the simulated Kimai sent) since the last clear."""
    _, body = sim_get("/__sim/requests", admin)
    log = json.loads(body)["requests"]
    return len(log), sum(r.get("bytes", 0) for r in log)


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
    return f


def heavy_round(cmd_for):
    """One round in a fresh process: statistics over about 5,000 records (STATS_RUNS calls; the
    first one reads the name lists), then analyze_project_team (STATS_RUNS calls; the lists of
    the statistics are still remembered), then the process's peak RSS; and the team analysis
    once more as the first call of another fresh process."""
    f = {}
    p = session(cmd_for(admin))
    stats_args = {"action": "list", "filters": {"user_scope": "all", "begin": begin, "calculate_stats": True}}
    team_args = {"project_id": 1, "begin": begin, "end": today}
    for key, tool, args in [("statistics", "timesheet", stats_args), ("team analysis", "analyze_project_team", team_args)]:
        runs, first = [], None
        for i in range(STATS_RUNS):
            clear_requests()
            runs.append(call(p, 10_000 + len(runs) + (0 if tool == "timesheet" else 100), tool, args))
            log = kimai_log()
            if first is None:
                first = log
        f[key + " ms"] = statistics.median(runs)
        f[key + " requests (first call)"] = first[0]
        f[key + " Kimai bytes (first call)"] = first[1]
        f[key + " Kimai bytes (later calls)"] = log[1]
    f["peak RSS after both, MB"] = peak_rss_mb(p.pid)
    p.stdin.close()
    p.wait(timeout=30)
    # Team analysis as the first call of a fresh process (no remembered names).
    p = session(cmd_for(admin))
    clear_requests()
    call(p, 1, "analyze_project_team", team_args)
    first = kimai_log()
    f["team analysis alone: requests"] = first[0]
    f["team analysis alone: Kimai bytes"] = first[1]
    p.stdin.close()
    p.wait(timeout=30)
    return f


today = time.strftime("%Y-%m-%d")
rust_cmd = lambda token: [RUST, "stdio", "--kimai-url", url, "--kimai-token", token]
python_cmd = lambda token: [PYTHON, "--kimai-url", url, "--kimai-token", token]
ours = measure(rust_cmd)
theirs = measure(python_cmd)
print(f"stdio (simulated Kimai at {url}, statistics from {begin}, team analysis of project 1 from {begin} to {today})")
print(f"{'figure':<46} {'kimai-mcp (Rust)':>17} {'Python 2.20.1':>14} {'ratio':>8}")
for k in ours:
    o, t = ours[k], theirs[k]
    ratio = t / o if o else float("inf")
    print(f"{k:<46} {o:>17.2f} {t:>14.2f} {ratio:>7.1f}x")

# The heavy calls, alternating the two servers round by round.
rounds = []
for _ in range(ROUNDS):
    rounds.append((heavy_round(rust_cmd), heavy_round(python_cmd)))
print(f"\nstatistics over <= 5,000 records and analyze_project_team: {ROUNDS} rounds, each in a fresh process (median of {STATS_RUNS} calls per figure; the first call reads the name lists)")
print(f"{'figure':<46} {'kimai-mcp (Rust), per round':>30} {'Python 2.20.1, per round':>30} {'median ratio':>13}")
for k in rounds[0][0]:
    o = [r[0][k] for r in rounds]
    t = [r[1][k] for r in rounds]
    ratio = statistics.median(tt / oo if oo else float("inf") for oo, tt in zip(o, t))
    fmt = lambda v: " / ".join(f"{x:.1f}" if isinstance(x, float) else f"{x:,}" for x in v)
    print(f"{k:<46} {fmt(o):>30} {fmt(t):>30} {ratio:>12.2f}x")
sim.terminate()
