#!/usr/bin/env bash
# kimai-mcp serve behind the real nginx, on loopback only:
#   (a) Streamable HTTP through a TLS reverse proxy (throw-away self-signed certificate)
#   (b) legacy SSE through it: the endpoint event and a response event arrive within 3 s
#   (c) the client address the server logs: nginx's own without --trusted-proxy, the real client
#       with it, and never the X-Forwarded-For value the client forged
#   (d) two instances behind one nginx with the affinity configuration of the README (Deployment)
#       (--instance-id and a map on the session id prefix): many sessions, none gets 404
#   (e) OAuth sign-in with --public-url set to the TLS name: metadata, the sign-in form's Secure
#       cookie, code exchange and a tool call with the access token, --disable-legacy-slugs
#   (f) the Python kimai-mcp deployment guide's own nginx block (`proxy_set_header Host $host`,
#       its X-Forwarded-* and header lines, verbatim): refused with 403 naming --public-host
#       until that one option is given, then Streamable HTTP and SSE work through it
#   (g) two instances sharing their state in Redis (--state; Debian's redis-server on a loopback
#       port) behind nginx's plain `least_conn`: (g1) 12 sessions work, and one session's calls
#       land on both instances; (g3) --rate-limit-rpm 20 holds for both together (the 21st
#       request gets 429), and a session goes on after both instances restart; (g2) one instance
#       SIGKILLed mid-loop on 6 sessions: each carries on on the other, at most one retried
#       request each; (g4) OAuth with --public-url on the least_conn server's name: 4 people
#       (each with their own users.json entry, client registration and client address) sign in
#       through nginx, their requests landing on both instances, and call user_current with
#       their access tokens; one instance SIGKILLed mid-loop of calls and refreshes: each
#       carries on (at most one retried request) and no one signs in again; a refresh token
#       replayed after its successor was used gets invalid_grant and revokes the sign-in (the
#       newest access token then gets 401); no slug, secret, code or token in the logs or in redis-server's
#       append-only file; (g5) redis-server stopped (SIGTERM, append-only) and started again:
#       meanwhile /mcp with an access token gets 503 with Retry-After, a refresh 503
#       temporarily_unavailable and /health says "degraded"; then, within 10 s, the same access
#       token and a refresh work again on both instances (all of (g) skipped with a note when
#       redis-server is missing and not installable)
# The nginx configuration written here is the one the README (Deployment) documents.
#
# Usage: bash tests/deploy/nginx.sh        (after cargo build; KIMAI_MCP_BIN overrides the binary)
# nginx is installed with apt-get (nginx-light, else nginx) when missing; that needs root.
# The last line is `deploy-nginx: N passed, M failed`; the exit status is 1 on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KIMAI_MCP_BIN:-$root/target/debug/kimai-mcp}
say() { echo "deploy-nginx: $*"; }
[ -x "$bin" ] || { say "$bin is missing: run cargo build" >&2; exit 1; }
for tool in curl openssl python3; do
    command -v "$tool" >/dev/null || { say "$tool is required" >&2; exit 1; }
done

# --- nginx, installed when missing ------------------------------------------------------------
find_nginx() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        say "nginx is missing; install it (apt-get install nginx-light) or run this as root on Debian" >&2
        exit 1
    fi
    say "nginx is missing: installing it with apt-get"
    started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    if ! { timeout 300 apt-get update -qq \
            && { timeout 300 apt-get install -y -qq --no-install-recommends nginx-light \
                 || timeout 300 apt-get install -y -qq --no-install-recommends nginx; }; } >"$apt_log" 2>&1; then
        tail -20 "$apt_log" >&2; rm -f "$apt_log"
        say "apt-get could not install nginx" >&2
        exit 1
    fi
    rm -f "$apt_log"
    nginx_bin=$(find_nginx)
    [ -n "$nginx_bin" ] || { say "nginx is still missing after apt-get" >&2; exit 1; }
    say "installed $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //') in $((SECONDS - started)) s"
fi
say "using $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //') ($nginx_bin)"

# --- bookkeeping: everything started here is stopped on exit ----------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kimai-mcp-nginx.XXXXXX")
pids=()
# Stops one process we started: TERM, up to 5 s, then KILL; reaps it.
stop_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        case "$(ps -o stat= -p "$pid" 2>/dev/null || true)" in "" | Z*) break ;; esac
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in ${pids[@]+"${pids[@]}"}; do [ "$p" = "$pid" ] || keep+=("$p"); done
    pids=(${keep[@]+"${keep[@]}"})
}
summary_done=""
cleanup() {
    local rc=$? p
    # An unexpected error (set -e) still ends with the summary line.
    [ -n "$summary_done" ] || [ "$rc" = 0 ] || [ -z "${passed-}" ] || say "aborted (exit status $rc); $passed passed, $((failed + 1)) failed"
    for p in ${pids[@]+"${pids[@]}"}; do stop_pid "$p"; done
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
pass() { passed=$((passed + 1)); say "PASS $1"; }
fail() { failed=$((failed + 1)); say "FAIL $1${2:+: $2}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for FILE ERE SECONDS: true once a line of FILE matches, false after the deadline.
wait_for() {
    local end=$(($(now_ms) + $3 * 1000))
    until grep -Eq -- "$2" "$1" 2>/dev/null; do
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep 0.05
    done
}
# Secrets never reach the output: failure details go through this.
mask() { sed -e "s/$slug/<slug>/g" -e "s/$server_token/<server-token>/g" -e "s/$kimai_token/<kimai-token>/g" \
    -e "s/$slug_kimai_token/<kimai-token>/g" | cut -c1-300; }

# --- the simulated Kimai, secrets, users.json ---------------------------------------------------
"$bin" sim --port 0 >"$tmp/sim.out" 2>"$tmp/sim.err" &
pids+=($!)
wait_for "$tmp/sim.out" '^demo-token ' 10 || { cat "$tmp/sim.err" >&2; say "the simulated Kimai did not start within 10 s" >&2; exit 1; }
kimai_url=$(awk '$1 == "url" {print $2; exit}' "$tmp/sim.out")
# Two plain users: one behind the slug, the other on the header routes (/mcp, /sse).
slug_kimai_token=$(awk '$1 == "user" && $4 == "ROLE_USER" {print $5}' "$tmp/sim.out" | sed -n 1p)
kimai_token=$(awk '$1 == "user" && $4 == "ROLE_USER" {print $5}' "$tmp/sim.out" | sed -n 2p)
[ -n "$kimai_url" ] && [ -n "$slug_kimai_token" ] && [ -n "$kimai_token" ] || { say "unexpected output from '$bin sim'" >&2; exit 1; }

# As the README (Deployment): `kimai-mcp generate slug|token`, with the /dev/urandom fallback.
random_secret() { "$bin" generate "$1" 2>/dev/null || head -c 24 /dev/urandom | base64 | tr '+/' '-_'; }
slug=$(random_secret slug)
server_token=$(random_secret token)
(umask 077 && python3 -c 'import json, sys; json.dump({sys.argv[1]: {"kimai_url": sys.argv[2], "kimai_token": sys.argv[3], "kimai_user_id": 5}}, open(sys.argv[4], "w"), indent=2)' \
    "$slug" "$kimai_url" "$slug_kimai_token" "$tmp/users.json")

# Free loopback ports: five serve instances, six nginx servers, one redis-server.
read -r P1 P2 N1 N2 N3 N4 P3 N5 P4 P5 N6 R1 < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(12)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')

# --- kimai-mcp serve ------------------------------------------------------------------------
# start_serve NAME PORT [OPTION...]: logs in $tmp/NAME.err; sets serve_pid_NAME.
start_serve() {
    local name=$1 port=$2
    shift 2
    RUST_LOG=info "$bin" serve --host 127.0.0.1 --port "$port" --users-config "$tmp/users.json" \
        --server-token "$server_token" --default-kimai-url "$kimai_url" --rate-limit-rpm 0 "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    printf -v "serve_pid_$name" %s "$!"
    if ! wait_for "$tmp/$name.err" "listening on http://127\.0\.0\.1:$port/mcp" 10; then
        mask <"$tmp/$name.err" >&2
        say "kimai-mcp serve ($name) did not start within 10 s" >&2
        exit 1
    fi
}

# --- TLS certificate and nginx ------------------------------------------------------------------
# A public-looking name (mcp.example.test, resolved by curl --resolve) as well as localhost, so
# that nginx sees the Host a real deployment sees.
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:mcp.example.test \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >"$tmp/openssl.log" 2>&1; then
    cat "$tmp/openssl.log" >&2; say "openssl could not make a certificate" >&2; exit 1
fi
chmod 600 "$tmp/key.pem"
mkdir -p "$tmp/nginx-temp"
# nginx started by root switches its workers to `user`: root here, since the temp dir is private.
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"

# The proxy settings of the README (Deployment) (one copy, included by every location).
cat >"$tmp/kimai-mcp-proxy.conf" <<'EOF'
proxy_http_version 1.1;
proxy_set_header Connection "";
# The server accepts only loopback Host names on a loopback bind (DNS rebinding protection).
proxy_set_header Host localhost;
proxy_set_header X-Forwarded-Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
# SSE (/sse, and tool calls answered as a stream): no buffering, long reads.
proxy_buffering off;
proxy_cache off;
proxy_read_timeout 3600s;
proxy_send_timeout 3600s;
client_max_body_size 1m;
EOF

cat >"$tmp/nginx.conf" <<EOF
$user_line
worker_processes 1;
error_log $tmp/nginx-error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $tmp/nginx-temp/body;
    proxy_temp_path $tmp/nginx-temp/proxy;
    fastcgi_temp_path $tmp/nginx-temp/fastcgi;
    uwsgi_temp_path $tmp/nginx-temp/uwsgi;
    scgi_temp_path $tmp/nginx-temp/scgi;

    # The slug is a credential: log /mcp/{slug} instead of the path, and no query string.
    map \$uri \$kimai_mcp_log_path {
        ~^/mcp/.  "/mcp/{slug}";
        default   \$uri;
    }
    log_format kimai_mcp '\$remote_addr - [\$time_local] "\$request_method \$kimai_mcp_log_path" '
                         '\$status \$body_bytes_sent \$request_time upstream=\$upstream_addr port=\$server_port';
    access_log $tmp/nginx-access.log kimai_mcp;

    ssl_certificate     $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;

    # (a)-(c): one instance.
    server {
        listen 127.0.0.1:$N1 ssl;
        server_name mcp.example.test;
        location / {
            proxy_pass http://127.0.0.1:$P1;
            include $tmp/kimai-mcp-proxy.conf;
        }
    }

    # (d): two instances, sessions kept on their instance by the id prefix (--instance-id).
    upstream kimai_mcp {
        server 127.0.0.1:$P1;
        server 127.0.0.1:$P2;
        keepalive 16;
        keepalive_timeout 50s;
    }
    upstream kimai_mcp_a { server 127.0.0.1:$P1; keepalive 8; keepalive_timeout 50s; }
    upstream kimai_mcp_b { server 127.0.0.1:$P2; keepalive 8; keepalive_timeout 50s; }
    map "\$http_mcp_session_id\$arg_session_id" \$kimai_mcp_upstream {
        ~^a\\.    kimai_mcp_a;
        ~^b\\.    kimai_mcp_b;
        default  kimai_mcp;
    }
    server {
        listen 127.0.0.1:$N2 ssl;
        server_name mcp.example.test;
        location / {
            proxy_pass http://\$kimai_mcp_upstream;
            include $tmp/kimai-mcp-proxy.conf;
        }
    }

    # For comparison only: hashing on the session id alone (no instance prefix). A new session
    # has no id yet, so it is created where hash("") points and later requests go to hash(id).
    upstream kimai_mcp_hash_only {
        hash "\$http_mcp_session_id\$arg_session_id" consistent;
        server 127.0.0.1:$P1;
        server 127.0.0.1:$P2;
    }
    server {
        listen 127.0.0.1:$N3 ssl;
        server_name mcp.example.test;
        location / {
            proxy_pass http://kimai_mcp_hash_only;
            include $tmp/kimai-mcp-proxy.conf;
        }
    }

    # Health checks of one instance through nginx (any instance answers).
    server {
        listen 127.0.0.1:$N4 ssl;
        server_name mcp.example.test;
        location = /health {
            proxy_pass http://kimai_mcp;
            include $tmp/kimai-mcp-proxy.conf;
        }
        location / { return 404; }
    }

    # (f): the location block of the Python kimai-mcp's deployment guide (2.7-2.11), verbatim.
    server {
        listen 127.0.0.1:$N5 ssl;
        server_name mcp.example.test;
        location / {
            proxy_pass http://127.0.0.1:$P3;
            proxy_http_version 1.1;

            # SSE-spezifische Headers
            proxy_set_header Connection '';
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 86400s;  # 24 hours for long-lived SSE connections

            # Standard Proxy Headers
            proxy_set_header Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;

            # Forward client headers (important for per-client auth!)
            proxy_set_header Authorization \$http_authorization;
            proxy_set_header X-Kimai-Token \$http_x_kimai_token;
            proxy_set_header X-Kimai-URL \$http_x_kimai_url;
            proxy_set_header X-Kimai-User \$http_x_kimai_user;
        }
    }

    # (g): two instances sharing their state in Redis (--state): any instance serves any
    # Streamable HTTP session, so plain least_conn (the Python guide's balancing) is enough.
    upstream kimai_mcp_least {
        least_conn;
        server 127.0.0.1:$P4;
        server 127.0.0.1:$P5;
        keepalive 16;
        keepalive_timeout 50s;
    }
    server {
        listen 127.0.0.1:$N6 ssl;
        server_name mcp.example.test;
        location / {
            proxy_pass http://kimai_mcp_least;
            include $tmp/kimai-mcp-proxy.conf;
        }
    }
}
EOF

nginx_args=(-p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" -g "daemon off; pid $tmp/nginx.pid;")
if ! "$nginx_bin" -t -q "${nginx_args[@]}" >"$tmp/nginx-t.log" 2>&1; then
    cat "$tmp/nginx-t.log" >&2; say "nginx -t rejected the configuration" >&2; exit 1
fi

# --- clients ------------------------------------------------------------------------------------
host=mcp.example.test
curl_tls=(curl -sS --max-time 10 --cacert "$tmp/cert.pem")
for port in "$N1" "$N2" "$N3" "$N4" "$N5" "$N6"; do curl_tls+=(--resolve "$host:$port:127.0.0.1"); done
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"deploy-nginx","version":"1"}}}'
INIT_SSE='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"deploy-nginx","version":"1"}}}'
INITIALIZED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
CALLS=(
    '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"user_current","arguments":{}}}'
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"config","arguments":{"type":"version"}}}'
    '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"timer","arguments":{"action":"active"}}}'
)
# mcp_post OUT URL SESSION BODY [CURL ARG...]: prints the status; headers in OUT.h, body in OUT.b.
mcp_post() {
    local out=$1 url=$2 sid=$3 body=$4
    shift 4
    local h=(-H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json')
    [ -z "$sid" ] || h+=(-H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25')
    "${curl_tls[@]}" -D "$out.h" -o "$out.b" -w '%{http_code}' "${h[@]}" "$@" --data-binary "$body" "$url" 2>"$out.e" || true
}
session_of() { tr -d '\r' <"$1.h" | awk 'tolower($1) == "mcp-session-id:" {print $2}'; }
is_result() { grep -q '"result"' "$1.b" && ! grep -q '"isError":true' "$1.b"; }
# One Streamable HTTP session: initialize, initialized, three tool calls. Prints the session id;
# returns 1 (with a reason on stderr) at the first failure.
streamable_session() {
    local base=$1 tag=$2 out="$tmp/$2" code sid i
    code=$(mcp_post "$out" "$base" "" "$INIT")
    sid=$(session_of "$out" 2>/dev/null || true)
    [ "$code" = 200 ] && [ -n "$sid" ] || { echo "initialize got $code $(mask <"$out.b")" >&2; return 1; }
    code=$(mcp_post "$out" "$base" "$sid" "$INITIALIZED")
    [ "$code" = 202 ] || { echo "notifications/initialized got $code" >&2; return 1; }
    for i in 0 1 2; do
        code=$(mcp_post "$out" "$base" "$sid" "${CALLS[$i]}")
        [ "$code" = 200 ] && is_result "$out" || { echo "tool call $((i + 2)) got $code $(mask <"$out.b")" >&2; return 1; }
    done
    echo "$sid"
}
sse_headers=(-H "Authorization: Bearer $server_token" -H "X-Kimai-Token: $kimai_token" -H "X-Kimai-User: deploy-nginx")
# open_sse TAG URL: GET /sse in the background, the stream in $tmp/TAG.sse.
open_sse() {
    "${curl_tls[@]}" -N --max-time 40 -H 'Accept: text/event-stream' "${sse_headers[@]}" "$2" >"$tmp/$1.sse" 2>"$tmp/$1.sse.err" &
    pids+=($!)
    printf -v "sse_pid_$1" %s "$!"
}
endpoint_of() { grep -A1 '^event: endpoint' "$tmp/$1.sse" | sed -n 's/^data: *//p' | tr -d '\r' | head -1; }
# sse_send TAG BASE BODY ID: POSTs to the announced endpoint (202) and waits up to 3 s for the
# `event: message` answering ID.
sse_send() {
    local tag=$1 base=$2 body=$3 id=$4 ep code
    ep=$(endpoint_of "$tag")
    code=$("${curl_tls[@]}" -o "$tmp/$tag.post" -w '%{http_code}' -H 'Content-Type: application/json' \
        "${sse_headers[@]}" --data-binary "$body" "$base$ep" 2>/dev/null || true)
    [ "$code" = 202 ] || { echo "POST /messages got $code $(mask <"$tmp/$tag.post")" >&2; return 1; }
    [ -z "$id" ] && return 0
    wait_for "$tmp/$tag.sse" "^data: \{\"jsonrpc\":\"2\.0\",\"id\":$id," 3 \
        || { echo "no event: message for id $id within 3 s" >&2; return 1; }
    if [ "$id" != 1 ] && grep -E "^data: \{\"jsonrpc\":\"2\.0\",\"id\":$id," "$tmp/$tag.sse" | grep -q '"isError":true'; then
        echo "tool call $id failed" >&2; return 1
    fi
}
# One SSE session over an open stream: initialize, initialized, three tool calls.
sse_session() {
    local tag=$1 base=$2 i
    sse_send "$tag" "$base" "$INIT_SSE" 1 && sse_send "$tag" "$base" "$INITIALIZED" "" || return 1
    for i in 0 1 2; do sse_send "$tag" "$base" "${CALLS[$i]}" $((i + 2)) || return 1; done
}
# Access lines of a serve log (`<ip> <METHOD> <path> <status> <ms>ms`).
access_lines() { { grep 'kimai_mcp::access' "$1" || true; } | sed 's/.*kimai_mcp::access\] //'; }

# ==============================================================================================
start_serve one "$P1"
"$nginx_bin" "${nginx_args[@]}" >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for_health() { # URL: /health through nginx answers status healthy within 10 s
    local end=$((SECONDS + 10))
    until "${curl_tls[@]}" -m 1 "$1" 2>/dev/null | grep -q '"status":"healthy"'; do
        [ "$SECONDS" -lt "$end" ] || return 1
        kill -0 "$nginx_pid" 2>/dev/null || return 1
        sleep 0.1
    done
}
if ! wait_for_health "https://$host:$N1/health"; then
    cat "$tmp/nginx.out" "$tmp/nginx-error.log" 2>/dev/null | tail -20 >&2
    say "nginx did not answer /health over TLS within 10 s" >&2
    exit 1
fi
say "nginx (TLS) on 127.0.0.1:$N1 in front of kimai-mcp serve on 127.0.0.1:$P1"

# --- (a) Streamable HTTP through nginx --------------------------------------------------------
slug_url="https://$host:$N1/mcp/$slug"
code=$(mcp_post "$tmp/a1" "$slug_url" "" "$INIT")
sid=$(session_of "$tmp/a1" 2>/dev/null || true)
if [ "$code" = 200 ] && [ -n "$sid" ] && grep -q '"serverInfo"' "$tmp/a1.b"; then
    pass "(a) initialize through nginx: 200 with Mcp-Session-Id"
else
    fail "(a) initialize through nginx" "status $code, session '${sid}', body $(mask <"$tmp/a1.b" 2>/dev/null)"
fi
code=$(mcp_post "$tmp/a2" "$slug_url" "$sid" "${CALLS[0]}")
if [ "$code" = 200 ] && is_result "$tmp/a2" && grep -q 'john_user' "$tmp/a2.b"; then
    pass "(a) tools/call user_current with that session through nginx"
else
    fail "(a) tools/call user_current through nginx" "status $code, $(mask <"$tmp/a2.b" 2>/dev/null)"
fi
code=$(mcp_post "$tmp/a3" "https://$host:$N1/mcp" "" "$INIT" "${sse_headers[@]}")
if [ "$code" = 200 ] && [ -n "$(session_of "$tmp/a3")" ]; then
    pass "(a) /mcp with Authorization and X-Kimai-Token through nginx"
else
    fail "(a) /mcp with headers through nginx" "status $code, $(mask <"$tmp/a3.b" 2>/dev/null)"
fi
if grep -q -- "$slug" "$tmp/nginx-access.log" || grep -q -- "$slug" "$tmp/one.err"; then
    fail "(a) the slug stays out of the nginx and server access logs"
else
    pass "(a) the slug stays out of the nginx and server access logs"
fi

# --- (b) SSE through nginx --------------------------------------------------------------------
t0=$(now_ms)
open_sse b "https://$host:$N1/sse"
if wait_for "$tmp/b.sse" '^data: /messages\?session_id=' 3; then
    pass "(b) SSE: event: endpoint through nginx after $(($(now_ms) - t0)) ms"
    t0=$(now_ms)
    if why=$(sse_send b "https://$host:$N1" "$INIT_SSE" 1 2>&1); then
        pass "(b) SSE: event: message with the initialize result through nginx after $(($(now_ms) - t0)) ms"
    else
        fail "(b) SSE: event: message through nginx within 3 s" "$why"
    fi
    if why=$(sse_send b "https://$host:$N1" "$INITIALIZED" "" 2>&1 && sse_send b "https://$host:$N1" "${CALLS[0]}" 2 2>&1); then
        pass "(b) SSE: a tool call answered on the stream through nginx"
    else
        fail "(b) SSE: a tool call through nginx" "$why"
    fi
else
    fail "(b) SSE: event: endpoint through nginx within 3 s" "$(mask <"$tmp/b.sse.err")"
fi
stop_pid "$sse_pid_b"

# --- (c) the client address -----------------------------------------------------------------
# curl binds to 127.0.0.2 (the real client); nginx connects from 127.0.0.1; the client forges
# X-Forwarded-For: 203.0.113.7, so nginx sends "203.0.113.7, 127.0.0.2" and X-Real-IP 127.0.0.2.
forged=203.0.113.7
client_requests() { # LOGNAME: two requests from 127.0.0.2 with a forged header; the new access lines
    local before after
    before=$(access_lines "$tmp/$1.err" | wc -l)
    "${curl_tls[@]}" -o /dev/null --interface 127.0.0.2 -H "X-Forwarded-For: $forged" "https://$host:$N1/health" || true
    mcp_post "$tmp/c" "$slug_url" "" "$INIT" --interface 127.0.0.2 -H "X-Forwarded-For: $forged" >"$tmp/c.code"
    local end=$((SECONDS + 5))
    until [ "$(access_lines "$tmp/$1.err" | wc -l)" -ge $((before + 2)) ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.05; done
    access_lines "$tmp/$1.err" | tail -n +$((before + 1))
}
lines=$(client_requests one)
if [ "$(echo "$lines" | grep -c '^127\.0\.0\.1 ')" -ge 2 ] && ! echo "$lines" | grep -qv '^127\.0\.0\.1 '; then
    pass "(c) without --trusted-proxy the server logs nginx's address (127.0.0.1)"
else
    fail "(c) without --trusted-proxy the server logs nginx's address" "$(echo "$lines" | tr '\n' '|')"
fi
stop_pid "$serve_pid_one"

start_serve trusted "$P1" --trusted-proxy 127.0.0.1 --require-https
wait_for_health "https://$host:$N1/health" || true
lines=$(client_requests trusted)
if [ "$(echo "$lines" | grep -c '^127\.0\.0\.2 ')" -ge 2 ] && ! echo "$lines" | grep -qv '^127\.0\.0\.2 '; then
    pass "(c) with --trusted-proxy 127.0.0.1 the server logs the real client (127.0.0.2)"
else
    fail "(c) with --trusted-proxy the server logs the real client" "$(echo "$lines" | tr '\n' '|')"
fi
if [ "$(cat "$tmp/c.code")" = 200 ]; then
    pass "(c) --require-https accepts requests through the TLS proxy (X-Forwarded-Proto: https)"
else
    fail "(c) --require-https through the TLS proxy" "status $(cat "$tmp/c.code")"
fi
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Accept: application/json, text/event-stream' \
    -H 'Content-Type: application/json' --data-binary "$INIT" "http://127.0.0.1:$P1/mcp/$slug" 2>/dev/null || true)
if [ "$code" = 403 ]; then
    pass "(c) --require-https refuses plain HTTP that bypasses the proxy (403)"
else
    fail "(c) --require-https refuses plain HTTP that bypasses the proxy" "status $code"
fi
if grep -q -F "$forged" "$tmp/one.err" "$tmp/trusted.err"; then
    fail "(c) the forged X-Forwarded-For address is never logged"
else
    pass "(c) the forged X-Forwarded-For address is never logged"
fi

# --- (d) two instances behind one nginx -----------------------------------------------------
stop_pid "$serve_pid_trusted"
start_serve a "$P1" --trusted-proxy 127.0.0.1 --instance-id a
start_serve b "$P2" --trusted-proxy 127.0.0.1 --instance-id b
wait_for_health "https://$host:$N2/health" || true
say "two instances (--instance-id a on $P1, b on $P2) behind nginx on 127.0.0.1:$N2"

sessions=6
d_ok=0 d_bad=0 sids=()
# Streamable HTTP, slug and header routes alternately, the sessions interleaved: all are
# initialized before any makes its tool calls.
declare -A d_sid=()
for i in $(seq $sessions); do
    if [ $((i % 2)) = 0 ]; then url="https://$host:$N2/mcp"; extra=("${sse_headers[@]}"); else url="https://$host:$N2/mcp/$slug"; extra=(); fi
    code=$(mcp_post "$tmp/d$i" "$url" "" "$INIT" ${extra[@]+"${extra[@]}"})
    d_sid[$i]=$(session_of "$tmp/d$i" 2>/dev/null || true)
    [ "$code" = 200 ] && [ -n "${d_sid[$i]}" ] || echo "streamable $i: initialize got $code" >>"$tmp/d.fail"
done
for step in init 0 1 2; do
    for i in $(seq $sessions); do
        [ -n "${d_sid[$i]}" ] || continue
        if [ $((i % 2)) = 0 ]; then url="https://$host:$N2/mcp"; extra=("${sse_headers[@]}"); else url="https://$host:$N2/mcp/$slug"; extra=(); fi
        if [ "$step" = init ]; then body=$INITIALIZED want=202; else body=${CALLS[$step]} want=200; fi
        code=$(mcp_post "$tmp/d$i" "$url" "${d_sid[$i]}" "$body" ${extra[@]+"${extra[@]}"})
        if [ "$code" != "$want" ] || { [ "$want" = 200 ] && ! is_result "$tmp/d$i"; }; then
            echo "streamable $i (${d_sid[$i]%%.*}.): step $step got $code" >>"$tmp/d.fail"
            d_sid[$i]=""
        fi
    done
done
for i in $(seq $sessions); do
    if [ -n "${d_sid[$i]}" ]; then d_ok=$((d_ok + 1)); sids+=("${d_sid[$i]}"); else d_bad=$((d_bad + 1)); fi
done
# Legacy SSE: all streams open at once, their messages interleaved.
for i in $(seq $sessions); do open_sse "s$i" "https://$host:$N2/sse"; done
declare -A s_alive=()
for i in $(seq $sessions); do
    if wait_for "$tmp/s$i.sse" '^data: /messages\?session_id=' 3; then s_alive[$i]=1; else s_alive[$i]=""; echo "sse $i: no endpoint event" >>"$tmp/d.fail"; fi
done
for step in init initialized 0 1 2; do
    for i in $(seq $sessions); do
        [ -n "${s_alive[$i]}" ] || continue
        case $step in
        init) out=$(sse_send "s$i" "https://$host:$N2" "$INIT_SSE" 1 2>&1) ;;
        initialized) out=$(sse_send "s$i" "https://$host:$N2" "$INITIALIZED" "" 2>&1) ;;
        *) out=$(sse_send "s$i" "https://$host:$N2" "${CALLS[$step]}" $((step + 2)) 2>&1) ;;
        esac || { echo "sse $i ($(endpoint_of "s$i" | sed 's/.*session_id=\([^.]*\)\..*/\1./')): step $step: $out" >>"$tmp/d.fail"; s_alive[$i]=""; }
    done
done
for i in $(seq $sessions); do
    if [ -n "${s_alive[$i]}" ]; then d_ok=$((d_ok + 1)); sids+=("$(endpoint_of "s$i" | sed 's/.*session_id=//')"); else d_bad=$((d_bad + 1)); fi
    stop_pid "$(eval echo "\$sse_pid_s$i")"
done

total=$((2 * sessions))
if [ "$d_bad" = 0 ]; then
    pass "(d) $total sessions through two instances ($sessions Streamable HTTP, $sessions SSE; initialize + 3 tool calls each) all kept working"
else
    fail "(d) every session keeps working through two instances" "$d_bad of $total failed: $(tr '\n' '|' <"$tmp/d.fail" | cut -c1-400)"
fi
on_a=$(printf '%s\n' "${sids[@]}" | grep -c '^a\.' || true)
on_b=$(printf '%s\n' "${sids[@]}" | grep -c '^b\.' || true)
# What each instance served, from its own access log and audit lines.
audit_sessions() { { grep -o 'session=[0-9a-f]*' "$1" || true; } | sort -u | wc -l; }
calls_a=$(grep -c 'kimai_mcp::audit' "$tmp/a.err" || true)
calls_b=$(grep -c 'kimai_mcp::audit' "$tmp/b.err" || true)
if [ "$on_a" -ge 1 ] && [ "$on_b" -ge 1 ] && [ "$(audit_sessions "$tmp/a.err")" = "$on_a" ] && [ "$(audit_sessions "$tmp/b.err")" = "$on_b" ] \
    && [ "$calls_a" = $((3 * on_a)) ] && [ "$calls_b" = $((3 * on_b)) ]; then
    pass "(d) both instances served sessions (a: $on_a sessions, $calls_a tool calls; b: $on_b sessions, $calls_b tool calls), each call on its session's instance"
else
    fail "(d) both instances served sessions, each call on its instance" \
        "a: $on_a sessions, $(audit_sessions "$tmp/a.err") in its audit log, $calls_a calls; b: $on_b, $(audit_sessions "$tmp/b.err"), $calls_b calls"
fi
n404=$(cat <(access_lines "$tmp/a.err") <(access_lines "$tmp/b.err") | awk '$4 == 404' | wc -l)
c404=$({ grep -E "\" 404 .* port=$N2\$" "$tmp/nginx-access.log" || true; } | wc -l)
if [ "$n404" = 0 ] && [ "$c404" = 0 ]; then
    pass "(d) no request got 404 (neither instance answered one; nginx passed none on)"
else
    fail "(d) no request got 404" "$n404 at the instances, $c404 in nginx's access log"
fi
if "${curl_tls[@]}" "https://$host:$N4/health" 2>/dev/null | grep -q '"status":"healthy"' \
    && "${curl_tls[@]}" -o /dev/null -w '%{http_code}' "https://$host:$N4/mcp/$slug" 2>/dev/null | grep -q '^404$'; then
    pass "(d) /health through nginx answers status healthy"
else
    fail "(d) /health through nginx"
fi

# For comparison (not counted): the same Streamable HTTP sessions behind `hash` on the session id.
lost=0
for i in $(seq $sessions); do
    streamable_session "https://$host:$N3/mcp/$slug" "h$i" >/dev/null 2>"$tmp/h$i.why" || lost=$((lost + 1))
done
statuses=$(cat "$tmp"/h*.why 2>/dev/null | grep -o 'got [0-9]*' | sort | uniq -c | awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $3}' || true)
say "note (not counted): behind \`hash \$http_mcp_session_id consistent\` alone, without the instance prefix, $lost of $sessions sessions failed${statuses:+ ($statuses)}"

# --- (e) OAuth sign-in through nginx -----------------------------------------------------------
# --public-url is the TLS name; the whole browser flow done with curl: registration, authorize,
# the sign-in form (cookie and Origin as a browser sends them), code exchange, /mcp with the token.
stop_pid "$serve_pid_a"
stop_pid "$serve_pid_b"
auth_secret=$(random_secret token)
(umask 077 && python3 -c 'import json, sys; json.dump({sys.argv[1]: {"kimai_url": sys.argv[2], "kimai_token": sys.argv[3], "kimai_user_id": 5, "auth_secret": sys.argv[4]}}, open(sys.argv[5], "w"), indent=2)' \
    "$slug" "$kimai_url" "$slug_kimai_token" "$auth_secret" "$tmp/users-oauth.json")
public="https://$host:$N1"
start_serve oauth "$P1" --users-config "$tmp/users-oauth.json" --trusted-proxy 127.0.0.1 --require-https \
    --public-url "$public" --disable-legacy-slugs
wait_for_health "$public/health" || true
json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null || true; }
header_of() { tr -d '\r' <"$1" | awk -v n="$(echo "$2" | tr 'A-Z' 'a-z')" 'tolower($1) == n":" {sub(/^[^:]*: */, ""); print; exit}'; }
"${curl_tls[@]}" -o "$tmp/e-meta.json" "$public/.well-known/oauth-authorization-server" || true
code=$(mcp_post "$tmp/e0" "$public/mcp" "" "$INIT")
if [ "$(json_field "$tmp/e-meta.json" issuer)" = "$public/" ] && [ "$code" = 401 ] \
    && header_of "$tmp/e0.h" WWW-Authenticate | grep -qF "resource_metadata=\"$public/.well-known/oauth-protected-resource/mcp\""; then
    pass "(e) OAuth metadata and the 401 challenge name the public https URL"
else
    fail "(e) OAuth metadata and the 401 challenge" "issuer $(json_field "$tmp/e-meta.json" issuer), /mcp $code, $(header_of "$tmp/e0.h" WWW-Authenticate)"
fi
redirect="http://127.0.0.1:9/callback"
"${curl_tls[@]}" -o "$tmp/e-reg.json" -H 'Content-Type: application/json' \
    --data-binary "{\"redirect_uris\":[\"$redirect\"],\"token_endpoint_auth_method\":\"none\",\"client_name\":\"deploy-nginx\"}" \
    "$public/register" || true
client_id=$(json_field "$tmp/e-reg.json" client_id)
verifier=$(random_secret token)
challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
"${curl_tls[@]}" -o /dev/null -D "$tmp/e-auth.h" -G "$public/authorize" --data-urlencode response_type=code \
    --data-urlencode "client_id=$client_id" --data-urlencode "redirect_uri=$redirect" --data-urlencode "state=s1" \
    --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256 \
    --data-urlencode "resource=$public/mcp" || true
login=$(header_of "$tmp/e-auth.h" Location)
"${curl_tls[@]}" -c "$tmp/e-jar" -D "$tmp/e-page.h" -o "$tmp/e-page.html" "$public$login" || true
txn=$(sed -n 's/.*name="txn" value="\([^"]*\)".*/\1/p' "$tmp/e-page.html")
csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$tmp/e-page.html")
if header_of "$tmp/e-page.h" Set-Cookie | grep -q 'Secure' && header_of "$tmp/e-page.h" Set-Cookie | grep -q 'HttpOnly'; then
    pass "(e) the sign-in page through nginx sets a Secure, HttpOnly CSRF cookie"
else
    fail "(e) the sign-in page's cookie through nginx" "location '${login%%\?*}', cookie '$(header_of "$tmp/e-page.h" Set-Cookie | sed 's/=[^;]*/=…/')'"
fi
"${curl_tls[@]}" -b "$tmp/e-jar" -o /dev/null -D "$tmp/e-login.h" -H "Origin: $public" \
    --data-urlencode "txn=$txn" --data-urlencode "csrf=$csrf" --data-urlencode "username=$slug" \
    --data-urlencode "secret=$auth_secret" --data-urlencode action=sign-in "$public/oauth/login" || true
back=$(header_of "$tmp/e-login.h" Location)
oauth_code=$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query).get("code", [""])[0])' "$back")
"${curl_tls[@]}" -o "$tmp/e-token.json" --data-urlencode grant_type=authorization_code --data-urlencode "code=$oauth_code" \
    --data-urlencode "redirect_uri=$redirect" --data-urlencode "client_id=$client_id" \
    --data-urlencode "code_verifier=$verifier" "$public/token" || true
access=$(json_field "$tmp/e-token.json" access_token)
code=$(mcp_post "$tmp/e1" "$public/mcp" "" "$INIT" -H "Authorization: Bearer $access")
sid=$(session_of "$tmp/e1" 2>/dev/null || true)
code2=$(mcp_post "$tmp/e2" "$public/mcp" "$sid" "${CALLS[0]}" -H "Authorization: Bearer $access")
if [ -n "$access" ] && [ "$code" = 200 ] && [ "$code2" = 200 ] && grep -q 'john_user' "$tmp/e2.b"; then
    pass "(e) sign-in, code exchange and a tool call with the access token through nginx"
else
    fail "(e) the OAuth flow through nginx" "sign-in redirect '${back%%\?*}', token $( [ -n "$access" ] && echo issued || echo missing), initialize $code, call $code2"
fi
code=$(mcp_post "$tmp/e3" "$public/mcp/$slug" "" "$INIT")
if [ "$code" = 404 ]; then
    pass "(e) --disable-legacy-slugs: the personal URL is 404"
else
    fail "(e) --disable-legacy-slugs" "status $code"
fi
if grep -qF -- "$auth_secret" "$tmp/oauth.err" "$tmp/nginx-access.log" || { [ -n "$access" ] && grep -qF -- "$access" "$tmp/oauth.err"; } \
    || { [ -n "$oauth_code" ] && grep -qF -- "$oauth_code" "$tmp/oauth.err" "$tmp/nginx-access.log"; }; then
    fail "(e) no auth secret, code or token in the server or nginx logs"
else
    pass "(e) no auth secret, code or token in the server or nginx logs"
fi

# --- (f) the Python deployment guide's nginx block --------------------------------------------
start_serve guide "$P3"
guide_url="https://$host:$N5/mcp/$slug"
code=$(mcp_post "$tmp/f1" "$guide_url" "" "$INIT")
if [ "$code" = 403 ] && grep -q -- "--public-host $host" "$tmp/f1.b"; then
    pass "(f) the guide's block (Host \$host) without --public-host: 403 naming --public-host $host"
else
    fail "(f) the guide's block without --public-host" "status $code, $(mask <"$tmp/f1.b" 2>/dev/null)"
fi
stop_pid "$serve_pid_guide"
start_serve guide2 "$P3" --public-host "$host" --trusted-proxy 127.0.0.1
if sid=$(streamable_session "$guide_url" f2 2>"$tmp/f2.why"); then
    pass "(f) with --public-host: a Streamable HTTP session (initialize and three tool calls) through the guide's block"
else
    fail "(f) with --public-host: Streamable HTTP through the guide's block" "$(mask <"$tmp/f2.why")"
fi
open_sse f3 "https://$host:$N5/sse"
if wait_for "$tmp/f3.sse" '^data: /messages\?session_id=' 3 && why=$(sse_session f3 "https://$host:$N5" 2>&1); then
    pass "(f) with --public-host: an SSE session with the guide's headers through its block"
else
    fail "(f) with --public-host: SSE through the guide's block" "${why:-no endpoint event} $(mask <"$tmp/f3.sse.err")"
fi
stop_pid "$sse_pid_f3"
if grep -q "is not a --trusted-proxy" "$tmp/guide.err" && ! grep -q "is not a --trusted-proxy" "$tmp/guide2.err"; then
    pass "(f) forwarded headers from an untrusted nginx are warned about; with --trusted-proxy they are not"
else
    fail "(f) the untrusted-proxy warning" "without: $(grep -c 'is not a --trusted-proxy' "$tmp/guide.err"), with: $(grep -c 'is not a --trusted-proxy' "$tmp/guide2.err")"
fi

# --- (g) least_conn over two instances sharing their state in Redis (--state) ----------------
# Debian's redis-server on a free loopback port, append-only persistence in its own directory;
# two instances with --state and no --instance-id behind nginx's plain least_conn upstream.
stop_pid "$serve_pid_guide2"
find_redis() { command -v redis-server || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; } || true; }
redis_bin=$(find_redis)
if [ -z "$redis_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "redis-server is missing: installing it with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends redis-server; } \
        >"$tmp/apt-redis.log" 2>&1 || tail -5 "$tmp/apt-redis.log" >&2
    redis_bin=$(find_redis)
fi
if [ -z "$redis_bin" ]; then
    say "note: (g) skipped: redis-server is missing and cannot be installed here (apt-get install redis-server as root)"
else
    mkdir -p "$tmp/redis"
    "$redis_bin" --port "$R1" --bind 127.0.0.1 --appendonly yes --dir "$tmp/redis" --save '' \
        --daemonize no --logfile "$tmp/redis.log" >/dev/null 2>&1 &
    pids+=($!)
    redis_pid=$!
    wait_for "$tmp/redis.log" 'Ready to accept connections' 10 || { tail -5 "$tmp/redis.log" >&2; say "redis-server did not start within 10 s" >&2; exit 1; }
    state="redis://127.0.0.1:$R1/0"
    g_url="https://$host:$N6/mcp/$slug"
    # start_pair RPM: instances ga (P4) and gb (P5) with the shared state.
    start_pair() {
        start_serve ga "$P4" --state "$state" --trusted-proxy 127.0.0.1 --rate-limit-rpm "$1"
        start_serve gb "$P5" --state "$state" --trusted-proxy 127.0.0.1 --rate-limit-rpm "$1"
        wait_for_health "https://$host:$N6/health" || true
    }
    # Tool calls (audit lines) of the session whose id starts with $2, in serve log $1.
    calls_of() { { grep 'kimai_mcp::audit' "$1" | grep -c "session=${2:0:8} " ; } || true; }
    start_pair 0
    say "redis-server $("$redis_bin" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') on 127.0.0.1:$R1; two instances with --state on $P4 and $P5 behind least_conn on 127.0.0.1:$N6"

    # (g1) 12 sessions, one after another: least_conn spreads each session's requests.
    g_ok=0 g_both=0 g_why="" g_calls_a=0 g_calls_b=0 g_sids=()
    for i in $(seq 12); do
        if sid=$(streamable_session "$g_url" "g$i" 2>"$tmp/g$i.why"); then
            g_ok=$((g_ok + 1)); g_sids+=("$sid")
            na=$(calls_of "$tmp/ga.err" "$sid") nb=$(calls_of "$tmp/gb.err" "$sid")
            g_calls_a=$((g_calls_a + na)) g_calls_b=$((g_calls_b + nb))
            [ "$na" -ge 1 ] && [ "$nb" -ge 1 ] && g_both=$((g_both + 1))
        else
            g_why+="session $i: $(mask <"$tmp/g$i.why" | head -1)|"
        fi
    done
    if [ "$g_ok" = 12 ]; then
        pass "(g1) 12 Streamable HTTP sessions (initialize + 3 tool calls each) through least_conn over two --state instances all worked"
    else
        fail "(g1) 12 sessions through least_conn" "$((12 - g_ok)) failed: ${g_why:0:300}"
    fi
    if [ "$g_both" -ge 1 ] && [ $((g_calls_a + g_calls_b)) = $((3 * g_ok)) ]; then
        pass "(g1) $g_both of $g_ok sessions had tool calls served by both instances (audit lines: a $g_calls_a calls, b $g_calls_b)"
    else
        fail "(g1) the same session served by both instances" "$g_both sessions on both; audit lines a $g_calls_a, b $g_calls_b of $((3 * g_ok))"
    fi

    # (g3) --rate-limit-rpm 20 for the two instances together: both restarted with it; the client
    # is 127.0.0.3 (nginx's X-Forwarded-For, trusted). Its 21st request within the minute gets
    # 429 on whichever instance it lands.
    stop_pid "$serve_pid_ga"
    stop_pid "$serve_pid_gb"
    start_pair 20
    g3=(--interface 127.0.0.3)
    g3_codes=()
    code=$(mcp_post "$tmp/g3" "$g_url" "" "$INIT" "${g3[@]}"); g3_codes+=("$code")
    g3_sid=$(session_of "$tmp/g3" 2>/dev/null || true)
    code=$(mcp_post "$tmp/g3" "$g_url" "$g3_sid" "$INITIALIZED" "${g3[@]}"); g3_codes+=("$code")
    for k in $(seq 3 21); do
        code=$(mcp_post "$tmp/g3" "$g_url" "$g3_sid" "${CALLS[0]}" "${g3[@]}"); g3_codes+=("$code")
    done
    g3_first=$(printf '%s\n' "${g3_codes[@]:0:20}" | sort | uniq -c | awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $2}')
    sleep 0.2
    g3_a=$(access_lines "$tmp/ga.err" | grep -c '^127\.0\.0\.3 ' || true)
    g3_b=$(access_lines "$tmp/gb.err" | grep -c '^127\.0\.0\.3 ' || true)
    g3_429_on=$( { access_lines "$tmp/ga.err" | awk '$1 == "127.0.0.3" && $4 == 429 {print "a"}'; access_lines "$tmp/gb.err" | awk '$1 == "127.0.0.3" && $4 == 429 {print "b"}'; } | tr '\n' ' ')
    if [ "$(printf '%s\n' "${g3_codes[@]:0:20}" | grep -cvE '^(200|202)$')" = 0 ] && [ "${g3_codes[20]}" = 429 ] \
        && [ "$g3_a" -ge 1 ] && [ "$g3_b" -ge 1 ]; then
        pass "(g3) --rate-limit-rpm 20 holds for both instances together: requests 1-20 from 127.0.0.3 answered ($g3_first; a served $g3_a, b $g3_b in all), the 21st got 429 on instance ${g3_429_on% }"
    else
        fail "(g3) --rate-limit-rpm 20 across two instances" "first 20: $g3_first; 21st: ${g3_codes[20]}; a served $g3_a, b $g3_b; 429 on '${g3_429_on}'"
    fi
    code=$(mcp_post "$tmp/g3b" "$g_url" "" "$INIT" --interface 127.0.0.4)
    if [ "$code" = 200 ]; then
        pass "(g3) meanwhile another client address (127.0.0.4) is served (200)"
    else
        fail "(g3) another client address is still served" "status $code"
    fi
    # Both instances were restarted: a session of (g1) goes on (its record is in Redis).
    code=$(mcp_post "$tmp/g3c" "$g_url" "${g_sids[0]:-none}" "${CALLS[1]}")
    if [ "$code" = 200 ] && is_result "$tmp/g3c"; then
        pass "(g) a session of (g1) goes on after both instances were restarted (its record is in Redis)"
    else
        fail "(g) a (g1) session after both instances were restarted" "status $code $(mask <"$tmp/g3c.b")"
    fi

    # (g2) SIGKILL one instance in the middle of a loop of calls on 6 open sessions; each
    # client retries a failed request once.
    stop_pid "$serve_pid_ga"
    stop_pid "$serve_pid_gb"
    start_pair 0
    g2_calls=20
    declare -A g2_sid=()
    g2_args() { if [ $(($1 % 2)) = 0 ]; then echo "https://$host:$N6/mcp"; else echo "$g_url"; fi; }
    for i in $(seq 6); do
        if [ $((i % 2)) = 0 ]; then extra=("${sse_headers[@]}"); else extra=(); fi
        code=$(mcp_post "$tmp/g2-$i" "$(g2_args "$i")" "" "$INIT" ${extra[@]+"${extra[@]}"})
        g2_sid[$i]=$(session_of "$tmp/g2-$i" 2>/dev/null || true)
        mcp_post "$tmp/g2-$i" "$(g2_args "$i")" "${g2_sid[$i]}" "$INITIALIZED" ${extra[@]+"${extra[@]}"} >/dev/null
    done
    # g2_loop I: $g2_calls tool calls on session I; "failed lost" into $tmp/g2-I.res.
    g2_loop() {
        local i=$1 url k code failed=0 lost=0 body extra=()
        url=$(g2_args "$i")
        [ $((i % 2)) = 0 ] && extra=("${sse_headers[@]}")
        for k in $(seq $g2_calls); do
            body="{\"jsonrpc\":\"2.0\",\"id\":$((100 + k)),\"method\":\"tools/call\",\"params\":{\"name\":\"user_current\",\"arguments\":{}}}"
            code=$(mcp_post "$tmp/g2-$i" "$url" "${g2_sid[$i]}" "$body" ${extra[@]+"${extra[@]}"})
            if [ "$code" != 200 ] || ! is_result "$tmp/g2-$i"; then
                failed=$((failed + 1)); echo "call $k: $code" >>"$tmp/g2-$i.fail"
                code=$(mcp_post "$tmp/g2-$i" "$url" "${g2_sid[$i]}" "$body" ${extra[@]+"${extra[@]}"})
                if [ "$code" != 200 ] || ! is_result "$tmp/g2-$i"; then lost=$((lost + 1)); echo "call $k, retried: $code" >>"$tmp/g2-$i.fail"; fi
            fi
            echo "$k" >>"$tmp/g2-$i.progress"
            sleep 0.05
        done
        echo "$failed $lost" >"$tmp/g2-$i.res"
    }
    loops=()
    for i in $(seq 6); do g2_loop "$i" & loops+=($!); done
    # The middle of the loop: half of all calls done.
    end=$((SECONDS + 30))
    until [ "$(cat "$tmp"/g2-*.progress 2>/dev/null | wc -l)" -ge $((6 * g2_calls / 2)) ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.02; done
    before_b=$(grep -c 'kimai_mcp::audit' "$tmp/gb.err" || true)
    lines_a=$(wc -l <"$tmp/ga.err")
    nginx_err_lines=$(wc -l <"$tmp/nginx-error.log")
    kill -9 "$serve_pid_gb"
    wait "$serve_pid_gb" 2>/dev/null || true
    killed_at=$(cat "$tmp"/g2-*.progress | wc -l)
    for p in "${loops[@]}"; do wait "$p" || true; done
    stop_pid "$serve_pid_gb"
    g2_failed=0 g2_lost=0 g2_max=0 g2_per="" g2_after=0
    for i in $(seq 6); do
        read -r f l <"$tmp/g2-$i.res" || { f=99; l=99; }
        g2_failed=$((g2_failed + f)) g2_lost=$((g2_lost + l))
        [ "$f" -gt "$g2_max" ] && g2_max=$f
        g2_per+="${g2_per:+ }$f"
        n=$(tail -n +$((lines_a + 1)) "$tmp/ga.err" | grep 'kimai_mcp::audit' | grep -c "session=${g2_sid[$i]:0:8} " || true)
        [ "$n" -ge 1 ] && g2_after=$((g2_after + 1))
    done
    # What nginx itself passed on to the other instance (a refused connect before the request
    # was sent) or gave up on (a request in flight on the killed instance: 502 to the client).
    g2_nginx=$(tail -n +$((nginx_err_lines + 1)) "$tmp/nginx-error.log" | grep -c "upstream: \"http://127\.0\.0\.1:$P5" || true)
    g2_fail_list=$({ cat "$tmp"/g2-*.fail 2>/dev/null || true; } | tr '\n' ',' | sed 's/,$//')
    if [ "$g2_lost" = 0 ] && [ "$g2_max" -le 1 ] && [ "$g2_after" = 6 ] && [ "$before_b" -ge 1 ]; then
        pass "(g2) instance b SIGKILLed after $killed_at of $((6 * g2_calls)) calls (b had served $before_b): all 6 sessions finished their $g2_calls calls on instance a; failed requests per session: $g2_per ($g2_failed in all${g2_fail_list:+: $g2_fail_list}; each failed one retried once, none lost); nginx logged $g2_nginx errors towards b and passed refused connects on to a"
    else
        fail "(g2) every session survives SIGKILL of one instance with at most one retried request" \
            "failed per session: $g2_per, lost after retry: $g2_lost, sessions on a after the kill: $g2_after of 6, b had served $before_b; ${g2_fail_list:0:200}"
    fi
    stop_pid "$serve_pid_ga"

    # (g4) OAuth through least_conn: two instances with --public-url (the TLS name of the
    # least_conn server) keep the authorization server's tables in the same redis-server. Four
    # people, each with their own users.json entry (auth_secret), their own client registration
    # and their own client address (127.0.0.21-24, so that nginx's access log tells whose request
    # went where), sign in through nginx and call user_current with their access tokens.
    g4_names=("" john_user maria_user kai_user tara_lead)
    g4_people=4
    g4_args=()
    for p in $(seq $g4_people); do
        name=${g4_names[$p]}
        g4_args+=("$(random_secret slug)" "$(awk -v n="$name" '$1 == "user" && $3 == n {print $5}' "$tmp/sim.out")"
            "$(awk -v n="$name" '$1 == "user" && $3 == n {print $2}' "$tmp/sim.out")" "$(random_secret token)")
    done
    (umask 077 && python3 -c 'import json, sys; a = sys.argv[3:]; json.dump({a[i]: {"kimai_url": sys.argv[2], "kimai_token": a[i + 1], "kimai_user_id": int(a[i + 2]), "auth_secret": a[i + 3]} for i in range(0, len(a), 4)}, open(sys.argv[1], "w"), indent=2)' \
        "$tmp/users-g4.json" "$kimai_url" "${g4_args[@]}")
    # Every secret of (g4): slugs, Kimai tokens, auth secrets, then each code and token as it is
    # issued; none may appear in a log or in redis-server's append-only file.
    (umask 077 && for p in $(seq $g4_people); do printf '%s\n%s\n%s\n' "${g4_args[$((4 * p - 4))]}" "${g4_args[$((4 * p - 3))]}" "${g4_args[$((4 * p - 1))]}"; done >"$tmp/g4-secrets")
    g4_public="https://$host:$N6"
    g4_mcp="$g4_public/mcp"
    g4_redirect="http://127.0.0.1:9/callback"
    # start_oauth NAME PORT: an instance with the shared state and OAuth on the least_conn name.
    start_oauth() {
        start_serve "$1" "$2" --users-config "$tmp/users-g4.json" --state "$state" --trusted-proxy 127.0.0.1 \
            --require-https --public-url "$g4_public"
    }
    # nginx reloaded (new workers, the upstream's peers fresh): after (g2)'s SIGKILL it would
    # send nothing to this port until the upstream's fail_timeout (10 s) has passed.
    nginx_reload() {
        local from
        from=$(wc -l <"$tmp/nginx-error.log")
        kill -HUP "$nginx_pid"
        local end=$((SECONDS + 5))
        until tail -n +$((from + 1)) "$tmp/nginx-error.log" | grep -q 'start worker process' || [ "$SECONDS" -ge "$end" ]; do sleep 0.05; done
        sleep 0.2
        wait_for_health "$g4_public/health" || true
    }
    start_oauth oa "$P4"
    start_oauth ob "$P5"
    nginx_reload
    g4_ip() { echo "127.0.0.$((20 + $1))"; }
    g4_keep() { # P FIELD JSON: stores the token FIELD of JSON as person P's current one
        local v
        v=$(json_field "$3" "$2")
        echo "$v" >"$tmp/g4-$1.${2%_token}"
        [ -z "$v" ] || echo "$v" >>"$tmp/g4-secrets"
    }
    # g4_sign_in P: person P's browser flow through nginx: registration, /authorize, the sign-in
    # form (cookie, csrf, Origin), the code exchange, then initialize with the access token.
    # Client id, tokens and session in $tmp/g4-P.*; the step that failed (no secret) on stderr.
    g4_sign_in() {
        local p=$1 out="$tmp/g4-$1" client verifier challenge login txn csrf back oauth_code code sid
        local -a c=("${curl_tls[@]}" --interface "$(g4_ip "$p")")
        "${c[@]}" -o "$out-reg.json" -H 'Content-Type: application/json' \
            --data-binary "{\"redirect_uris\":[\"$g4_redirect\"],\"token_endpoint_auth_method\":\"none\",\"client_name\":\"deploy-nginx person $p\"}" \
            "$g4_public/register" 2>/dev/null || true
        client=$(json_field "$out-reg.json" client_id)
        [ -n "$client" ] || { echo "registration: $(json_field "$out-reg.json" error)" >&2; return 1; }
        echo "$client" >"$out.client"
        verifier=$(random_secret token)
        challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
        "${c[@]}" -o /dev/null -D "$out-auth.h" -G "$g4_public/authorize" --data-urlencode response_type=code \
            --data-urlencode "client_id=$client" --data-urlencode "redirect_uri=$g4_redirect" --data-urlencode "state=p$p" \
            --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256 \
            --data-urlencode "resource=$g4_mcp" 2>/dev/null || true
        login=$(header_of "$out-auth.h" Location)
        [ "${login:0:1}" = / ] || { echo "/authorize: $(head -1 "$out-auth.h" | tr -d '\r')" >&2; return 1; }
        "${c[@]}" -c "$out-jar" -o "$out-page.html" "$g4_public$login" 2>/dev/null || true
        txn=$(sed -n 's/.*name="txn" value="\([^"]*\)".*/\1/p' "$out-page.html")
        csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$out-page.html")
        [ -n "$txn" ] && [ -n "$csrf" ] || { echo "the sign-in page has no form" >&2; return 1; }
        "${c[@]}" -b "$out-jar" -o /dev/null -D "$out-login.h" -H "Origin: $g4_public" \
            --data-urlencode "txn=$txn" --data-urlencode "csrf=$csrf" --data-urlencode "username=${g4_args[$((4 * p - 4))]}" \
            --data-urlencode "secret=${g4_args[$((4 * p - 1))]}" --data-urlencode action=sign-in "$g4_public/oauth/login" 2>/dev/null || true
        back=$(header_of "$out-login.h" Location)
        oauth_code=$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query).get("code", [""])[0])' "$back")
        [ -n "$oauth_code" ] || { echo "sign-in: $(head -1 "$out-login.h" | tr -d '\r'), redirect '${back%%\?*}'" >&2; return 1; }
        echo "$oauth_code" >>"$tmp/g4-secrets"
        code=$("${c[@]}" -o "$out-token.json" -w '%{http_code}' --data-urlencode grant_type=authorization_code \
            --data-urlencode "code=$oauth_code" --data-urlencode "redirect_uri=$g4_redirect" --data-urlencode "client_id=$client" \
            --data-urlencode "code_verifier=$verifier" "$g4_public/token" 2>/dev/null || true)
        g4_keep "$p" access_token "$out-token.json"
        g4_keep "$p" refresh_token "$out-token.json"
        [ "$code" = 200 ] && [ -s "$out.access" ] && [ -s "$out.refresh" ] \
            || { echo "code exchange: $code $(json_field "$out-token.json" error)" >&2; return 1; }
        code=$(mcp_post "$out-init" "$g4_mcp" "" "$INIT" --interface "$(g4_ip "$p")" -H "Authorization: Bearer $(cat "$out.access")")
        sid=$(session_of "$out-init" 2>/dev/null || true)
        [ "$code" = 200 ] && [ -n "$sid" ] || { echo "initialize with the access token: $code" >&2; return 1; }
        echo "$sid" >"$out.sid"
        code=$(mcp_post "$out-init" "$g4_mcp" "$sid" "$INITIALIZED" --interface "$(g4_ip "$p")" -H "Authorization: Bearer $(cat "$out.access")")
        [ "$code" = 202 ] || { echo "notifications/initialized: $code" >&2; return 1; }
    }
    # g4_call P OUT: user_current on person P's session with their current access token; prints
    # ok when the answer names their Kimai user, else the status.
    g4_call() {
        local p=$1 code
        code=$(mcp_post "$2" "$g4_mcp" "$(cat "$tmp/g4-$p.sid")" "${CALLS[0]}" --interface "$(g4_ip "$p")" \
            -H "Authorization: Bearer $(cat "$tmp/g4-$p.access")")
        if [ "$code" = 200 ] && is_result "$2" && grep -q "${g4_names[$p]}" "$2.b"; then echo ok; else echo "$code"; fi
    }
    # g4_refresh P OUT [TOKEN]: the refresh grant with person P's current refresh token (or
    # TOKEN, then nothing is kept); prints ok (the new pair kept) or "status error".
    g4_refresh() {
        local p=$1 out=$2 rt=${3:-} code
        [ -n "$rt" ] || rt=$(cat "$tmp/g4-$p.refresh")
        code=$("${curl_tls[@]}" --interface "$(g4_ip "$p")" -o "$out.json" -D "$out.h" -w '%{http_code}' \
            --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$rt" \
            --data-urlencode "client_id=$(cat "$tmp/g4-$p.client")" "$g4_public/token" 2>/dev/null || true)
        if [ "$code" = 200 ] && [ -n "$(json_field "$out.json" access_token)" ] && [ -n "$(json_field "$out.json" refresh_token)" ]; then
            if [ -z "${3:-}" ]; then g4_keep "$p" access_token "$out.json"; g4_keep "$p" refresh_token "$out.json"; fi
            echo ok
        else
            echo "$code $(json_field "$out.json" error)"
        fi
    }
    # (g4)'s people's requests in nginx's access log from line $1 on: "ip method path status
    # a|b" (the instance that answered: the last one nginx tried).
    g4_log() {
        tail -n +"$1" "$tmp/nginx-access.log" | awk -v port="port=$N6" -v a="127.0.0.1:$P4" -v b="127.0.0.1:$P5" '
            $NF == port && $1 ~ /^127\.0\.0\.2[1-9]$/ {
                match($0, /"[A-Z]+ [^"]*"/); split(substr($0, RSTART + 1, RLENGTH - 2), r, " ")
                rest = substr($0, RSTART + RLENGTH + 1); split(rest, s, " ")
                match($0, /upstream=.* port=/); n = split(substr($0, RSTART + 9, RLENGTH - 15), u, ", ")
                print $1, r[1], r[2], s[1], (u[n] == a ? "a" : u[n] == b ? "b" : "-")
            }'
    }
    nginx_lines() { wc -l <"$tmp/nginx-access.log"; }
    # by_instance LINES: "a N, b M" of g4_log lines
    by_instance() { echo "a $(echo "$1" | grep -c ' a$' || true), b $(echo "$1" | grep -c ' b$' || true)"; }

    g4_from=$(($(nginx_lines) + 1))
    g4_ok=0 g4_why=""
    for p in $(seq $g4_people); do
        if g4_sign_in "$p" 2>"$tmp/g4-$p.why"; then g4_ok=$((g4_ok + 1)); else g4_why+="person $p: $(head -1 "$tmp/g4-$p.why")|"; fi
    done
    sleep 0.2
    g4_signin_log=$(g4_log "$g4_from" | grep -E ' (/register|/authorize|/oauth/login|/token) ' || true)
    g4_crossed=0
    for p in $(seq $g4_people); do
        [ "$(echo "$g4_signin_log" | awk -v ip="$(g4_ip "$p")" '$1 == ip {print $5}' | sort -u | wc -l)" = 2 ] && g4_crossed=$((g4_crossed + 1))
    done
    if [ "$g4_ok" = "$g4_people" ] && echo "$g4_signin_log" | grep -q ' a$' && echo "$g4_signin_log" | grep -q ' b$'; then
        pass "(g4) $g4_people people signed in through least_conn over two --state instances (registration, /authorize, the sign-in form, /token); both instances served OAuth requests ($(by_instance "$g4_signin_log") of $(echo "$g4_signin_log" | wc -l)), $g4_crossed of $g4_people sign-ins went through both"
    else
        fail "(g4) $g4_people people sign in through least_conn" "$g4_ok signed in; ${g4_why:0:300} OAuth requests by instance: $(by_instance "$g4_signin_log")"
    fi
    g4_from=$(($(nginx_lines) + 1))
    g4_bad=""
    for k in 1 2 3; do
        for p in $(seq $g4_people); do
            r=$(g4_call "$p" "$tmp/g4-$p-c")
            [ "$r" = ok ] || g4_bad+="person $p call $k: $r|"
        done
    done
    sleep 0.1
    g4_calls_log=$(g4_log "$g4_from" | grep ' /mcp ' || true)
    if [ -z "$g4_bad" ] && echo "$g4_calls_log" | grep -q ' a$' && echo "$g4_calls_log" | grep -q ' b$'; then
        pass "(g4) each person's access token works for 3 user_current calls, answered with their own Kimai user, on both instances ($(by_instance "$g4_calls_log"))"
    else
        fail "(g4) user_current with each person's access token" "${g4_bad:0:300} calls by instance: $(by_instance "$g4_calls_log")"
    fi

    # SIGKILL of instance b while the four go on: 16 rounds each, a user_current call per
    # round and a refresh (the new pair used from then on) every fourth, staggered. A failed
    # request is retried once.
    g4_rounds=16
    g4_loop() {
        local p=$1 k r what failed=0 lost=0
        for k in $(seq $g4_rounds); do
            if [ $((k % 4)) = $((p % 4)) ]; then what=refresh; else what=call; fi
            r=$("g4_$what" "$p" "$tmp/g4-$p-loop")
            if [ "$r" != ok ]; then
                failed=$((failed + 1)); echo "person $p round $k $what: $r" >>"$tmp/g4-$p.fail"
                r=$("g4_$what" "$p" "$tmp/g4-$p-loop")
                [ "$r" = ok ] || { lost=$((lost + 1)); echo "person $p round $k $what retried: $r" >>"$tmp/g4-$p.fail"; }
            fi
            echo "$k" >>"$tmp/g4-$p.progress"
            sleep 0.05
        done
        echo "$failed $lost" >"$tmp/g4-$p.res"
    }
    g4_from=$(($(nginx_lines) + 1))
    loops=()
    for p in $(seq $g4_people); do g4_loop "$p" & loops+=($!); done
    end=$((SECONDS + 30))
    until [ "$(cat "$tmp"/g4-*.progress 2>/dev/null | wc -l)" -ge $((g4_people * g4_rounds / 2)) ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.02; done
    kill -9 "$serve_pid_ob"
    wait "$serve_pid_ob" 2>/dev/null || true
    g4_killed_at=$(cat "$tmp"/g4-*.progress | wc -l)
    g4_before=$(g4_log "$g4_from")
    for p in "${loops[@]}"; do wait "$p" || true; done
    stop_pid "$serve_pid_ob"
    g4_per="" g4_failed=0 g4_lost=0 g4_max=0
    for p in $(seq $g4_people); do
        read -r f l <"$tmp/g4-$p.res" || { f=99; l=99; }
        g4_failed=$((g4_failed + f)) g4_lost=$((g4_lost + l))
        [ "$f" -gt "$g4_max" ] && g4_max=$f
        g4_per+="${g4_per:+ }$f"
    done
    g4_fail_list=$({ cat "$tmp"/g4-*.fail 2>/dev/null || true; } | tr '\n' ',' | sed 's/,$//')
    g4_b_calls=$(echo "$g4_before" | grep -c ' /mcp .* b$' || true)
    g4_b_refresh=$(echo "$g4_before" | grep -c ' /token .* b$' || true)
    if [ "$g4_lost" = 0 ] && [ "$g4_max" -le 1 ] && [ "$g4_b_calls" -ge 1 ] && [ "$g4_b_refresh" -ge 1 ]; then
        pass "(g4) instance b SIGKILLed after $g4_killed_at of $((g4_people * g4_rounds)) rounds (b had answered $g4_b_calls calls and $g4_b_refresh refreshes of them): every person finished on instance a; failed requests per person: $g4_per ($g4_failed in all${g4_fail_list:+: $g4_fail_list}; each retried once, none lost)"
    else
        fail "(g4) every person carries on after SIGKILL of one instance with at most one retried request" \
            "failed per person: $g4_per, lost after retry: $g4_lost, b had answered $g4_b_calls calls and $g4_b_refresh refreshes; ${g4_fail_list:0:300}"
    fi
    g4_bad=""
    for p in $(seq $g4_people); do
        r=$(g4_call "$p" "$tmp/g4-$p-after")
        [ "$r" = ok ] || g4_bad+="person $p: call with the access token $r|"
        r=$(g4_refresh "$p" "$tmp/g4-$p-after")
        [ "$r" = ok ] || g4_bad+="person $p: refresh $r|"
        r=$(g4_call "$p" "$tmp/g4-$p-after")
        [ "$r" = ok ] || g4_bad+="person $p: call with the refreshed token $r|"
    done
    if [ -z "$g4_bad" ]; then
        pass "(g4) no one has to sign in again: after the kill each person's access token still works, and a refresh and its new token work"
    else
        fail "(g4) no one has to sign in again after the kill" "${g4_bad:0:300}"
    fi

    # b back (a new process), and nginx reloaded so that it does not wait out b's fail_timeout.
    start_oauth ob2 "$P5"
    nginx_reload

    # A refresh token replayed after its rotation: person 4 rotates twice (so the first
    # rotation's answer surely arrived: its token was used), then presents the first token
    # again (invalid_grant, the grant revoked); the newest access token gets 401 on both
    # instances and the newest refresh token invalid_grant. (Presented again within 30 s while
    # its successor is unused, a rotated token is taken as the retry of a lost answer instead:
    # tests/shared_state.rs.)
    g4_from=$(($(nginx_lines) + 1))
    g4_old=$(cat "$tmp/g4-4.refresh")
    r1=$(g4_refresh 4 "$tmp/g4-r1")
    [ "$r1" = ok ] && r1=$(g4_refresh 4 "$tmp/g4-r1b")
    r2=$(g4_refresh 4 "$tmp/g4-r2" "$g4_old")
    r3=$(g4_call 4 "$tmp/g4-r3")
    r4=$(g4_call 4 "$tmp/g4-r4")
    r5=$(g4_refresh 4 "$tmp/g4-r5")
    sleep 0.1
    g4_replay_log=$(g4_log "$g4_from" | awk '$1 == "127.0.0.24" {print $3 "@" $5}' | tr '\n' ' ')
    if [ "$r1" = ok ] && [ "$r2" = "400 invalid_grant" ] && [ "$r3" = 401 ] && [ "$r4" = 401 ] && [ "$r5" = "400 invalid_grant" ] \
        && header_of "$tmp/g4-r3.h" WWW-Authenticate | grep -q 'error="invalid_token"'; then
        pass "(g4) a refresh token replayed after its successor was used gets invalid_grant and revokes the sign-in: the newest access token then gets 401 (invalid_token) and the newest refresh token invalid_grant (2 rotations, replay, 2 calls, refresh on: ${g4_replay_log% })"
    else
        fail "(g4) a replayed refresh token revokes the grant" "rotation $r1, replay $r2, newest access token $r3 and $r4, newest refresh token $r5 (on: ${g4_replay_log% })"
    fi

    # (g5) redis-server stopped (SIGTERM: it writes its append-only file and exits) and started
    # again with the same directory, while persons 1-3 keep their sign-ins.
    g4_from=$(($(nginx_lines) + 1))
    stop_pid "$redis_pid"
    g5_bad=""
    grep -q 'ready to exit' "$tmp/redis.log" || g5_bad+="redis-server did not log a clean exit|"
    for p in 1 2 3; do
        r=$(g4_call "$p" "$tmp/g5-$p")
        ra=$(header_of "$tmp/g5-$p.h" Retry-After)
        [ "$r" = 503 ] && [ -n "$ra" ] || g5_bad+="person $p: /mcp $r Retry-After '$ra'|"
    done
    for p in 1 2; do
        r=$(g4_refresh "$p" "$tmp/g5-r$p")
        ra=$(header_of "$tmp/g5-r$p.h" Retry-After)
        [ "$r" = "503 temporarily_unavailable" ] && [ -n "$ra" ] || g5_bad+="person $p: refresh $r Retry-After '$ra'|"
    done
    g5_health=""
    for k in 1 2; do
        g5_health+="$("${curl_tls[@]}" "$g4_public/health" 2>/dev/null | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("status"), d.get("state"))' 2>/dev/null || echo none) "
    done
    [ "$g5_health" = "degraded unreachable degraded unreachable " ] || g5_bad+="/health: $g5_health|"
    sleep 0.1
    g5_down_log=$(g4_log "$g4_from")
    if [ -z "$g5_bad" ]; then
        pass "(g5) redis-server stopped (SIGTERM): /mcp with an access token 503 with Retry-After ($(header_of "$tmp/g5-1.h" Retry-After) s), refresh 503 temporarily_unavailable, /health degraded (state unreachable), through nginx on both instances ($(by_instance "$g5_down_log"))"
    else
        fail "(g5) while redis-server is down" "${g5_bad:0:300}"
    fi
    "$redis_bin" --port "$R1" --bind 127.0.0.1 --appendonly yes --dir "$tmp/redis" --save '' \
        --daemonize no --logfile "$tmp/redis2.log" >/dev/null 2>&1 &
    pids+=($!)
    redis_pid=$!
    wait_for "$tmp/redis2.log" 'Ready to accept connections' 10 || { tail -5 "$tmp/redis2.log" >&2; say "redis-server did not start again within 10 s" >&2; exit 1; }
    # Within the deadline, person 1's access token works twice in a row (least_conn sends the
    # two to different instances; an instance whose connect failed answers 503 at once for
    # half a second before it tries the store again).
    t0=$(now_ms)
    g5_deadline=10 g5_first="" g5_streak=0
    g4_from=$(($(nginx_lines) + 1))
    until [ "$g5_streak" -ge 2 ] || [ $(($(now_ms) - t0)) -ge $((g5_deadline * 1000)) ]; do
        if [ "$(g4_call 1 "$tmp/g5-back")" = ok ]; then
            g5_streak=$((g5_streak + 1)); [ -n "$g5_first" ] || g5_first=$(($(now_ms) - t0))
        else
            g5_streak=0; sleep 0.1
        fi
    done
    g5_back=$(($(now_ms) - t0))
    g5_bad=""
    for p in 1 2 3; do
        r=$(g4_call "$p" "$tmp/g5-$p-up")
        [ "$r" = ok ] || g5_bad+="person $p: the same access token $r|"
        r=$(g4_refresh "$p" "$tmp/g5-$p-up")
        [ "$r" = ok ] || g5_bad+="person $p: refresh $r|"
        r=$(g4_call "$p" "$tmp/g5-$p-up")
        [ "$r" = ok ] || g5_bad+="person $p: the refreshed token $r|"
    done
    "${curl_tls[@]}" "$g4_public/health" 2>/dev/null | grep -q '"status":"healthy"' || g5_bad+="/health not healthy|"
    g5_loaded=$(grep -q 'DB loaded from append only file' "$tmp/redis2.log" && echo "it loaded its append-only file" || echo "no 'DB loaded from append only file' in its log")
    sleep 0.1
    g5_up_log=$(g4_log "$g4_from")
    g5_503=$(echo "$g5_up_log" | awk '$4 == 503' | wc -l)
    echo "$g5_up_log" | grep -q ' a$' && echo "$g5_up_log" | grep -q ' b$' || g5_bad+="not on both instances: $(by_instance "$g5_up_log")|"
    if [ -z "$g5_bad" ] && [ "$g5_streak" -ge 2 ]; then
        pass "(g5) redis-server started again ($g5_loaded): the same access token works after ${g5_first} ms (twice in a row after $g5_back ms; $g5_503 x 503 before), then each person's same token, a refresh and its new token work on both instances ($(by_instance "$g5_up_log")) and /health is healthy: the sign-ins survived"
    else
        fail "(g5) after redis-server is back" "first success after ${g5_first:-none} ms, twice in a row: $([ "$g5_streak" -ge 2 ] && echo "after $g5_back ms" || echo "not within ${g5_deadline} s"); ${g5_bad:0:300}"
    fi
    grep -v '^$' "$tmp/g4-secrets" >"$tmp/g4-secrets.nonempty" || true
    if [ "$(wc -l <"$tmp/g4-secrets.nonempty")" -ge $((2 * g4_people)) ] \
        && ! grep -rqFf "$tmp/g4-secrets.nonempty" "$tmp/redis" "$tmp/oa.err" "$tmp/ob.err" "$tmp/ob2.err" "$tmp/nginx-access.log" "$tmp/nginx-error.log"; then
        pass "(g4, g5) no slug, Kimai token, auth secret, code or token of the $(wc -l <"$tmp/g4-secrets.nonempty") issued is in the instances' or nginx's logs or in redis-server's append-only file"
    else
        fail "(g4, g5) no slug, Kimai token, auth secret, code or token in the logs or the append-only file" \
            "found in: $(grep -rlFf "$tmp/g4-secrets.nonempty" "$tmp/redis" "$tmp/oa.err" "$tmp/ob.err" "$tmp/ob2.err" "$tmp/nginx-access.log" "$tmp/nginx-error.log" 2>/dev/null | sed "s|$tmp/||" | tr '\n' ' ')"
    fi
    stop_pid "$serve_pid_oa"
    stop_pid "$serve_pid_ob2"
    stop_pid "$redis_pid"
fi

if [ -s "$tmp/nginx-error.log" ] && grep -Eq '\[(alert|crit|emerg)\]' "$tmp/nginx-error.log"; then
    fail "nginx logged no alert" "$(grep -E '\[(alert|crit|emerg)\]' "$tmp/nginx-error.log" | head -3 | mask)"
fi
summary_done=1
say "$passed passed, $failed failed"
[ "$failed" = 0 ]
