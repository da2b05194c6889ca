#!/usr/bin/env bash
# The container image (Dockerfile) and compose.yaml, checked by `make image-test` (part of
# `make test`):
#   1. the image builds (`make image` with podman; `make static` first when the binary is
#      missing or older than the sources);
#   2. its configuration (`podman image inspect`): entrypoint, cmd, a numeric non-root user,
#      port 8000, KIMAI_MCP_HOST=0.0.0.0, the health check, the OCI labels;
#   3. its file system: exactly the static binary and the state directory, no shell;
#   4. compose.yaml validates (`docker-compose config`, or podman-compose) with
#      compose.env.example as its .env, with the settings the README promises, and every
#      variable of the env example is one that `kimai-mcp serve` reads;
#   5. the image runs as its ENTRYPOINT + CMD + ENV say, as user 10001, on its exported root
#      file system mounted read-only with the mounts compose.yaml makes (users.json and the CA
#      read-only, the state volume writable), in a network namespace of its own (`podman run`
#      cannot set resource limits on this machine, and the test needs no engine): /health,
#      the image's HEALTHCHECK command, a tool call through /mcp/<slug> and one through /mcp
#      against the simulated Kimai behind TLS signed by a private CA that only the mounted CA
#      file makes trusted, the OAuth state written on the volume, a clean SIGTERM; and without
#      that CA the same call fails with a certificate error (or, when users.json names the
#      missing file, the server refuses to start).
#
# Usage: bash tests/image/run.sh      (root; installs podman and docker-compose with apt-get
# when missing). Skips, saying why, only where no container tool can be had (not root, or no
# apt-get). One line per check; the last is `image-test: N passed, M failed`; exit 1 on any
# failure. Secrets (tokens, slugs) never reach the output.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { echo "image-test: $*"; }

# ---------------------------------------------------------------------------------------------
# Bookkeeping shared by both halves: results go to $tmp/results, one line per check.
# ---------------------------------------------------------------------------------------------
pass() { echo "PASS $1" >>"$tmp/results"; say "PASS $1"; }
fail() { echo "FAIL $1" >>"$tmp/results"; say "FAIL $1${2:+: $2}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for FILE ERE SECONDS: true once a line of FILE matches, false after the deadline.
wait_for() {
    local end=$(($(now_ms) + $3 * 1000))
    until grep -Eq -- "$2" "$1" 2>/dev/null; do
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# =============================================================================================
# The second half, in a network and mount namespace of its own (see the end of the first half).
# =============================================================================================
if [ "${1-}" = --in-namespace ]; then
    tmp=$2
    # shellcheck source=/dev/null
    . "$tmp/vars"
    pids=()
    cleanup_inner() {
        local p
        for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
        for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
    }
    trap cleanup_inner EXIT
    ip link set lo up

    # --- the simulated Kimai, behind TLS from a private CA ------------------------------------
    "$bin" sim --port 0 >"$tmp/sim.out" 2>"$tmp/sim.err" &
    pids+=($!)
    wait_for "$tmp/sim.out" '^demo-token ' 10 || { cat "$tmp/sim.err" >&2; say "the simulated Kimai did not start" >&2; exit 1; }
    sim_url=$(awk '$1 == "url" {print $2; exit}' "$tmp/sim.out")
    # Two plain users: one behind the slug, the other on the header route.
    slug_user=$(awk '$1 == "user" && $4 == "ROLE_USER" {print $3}' "$tmp/sim.out" | sed -n 1p)
    slug_kimai_token=$(awk '$1 == "user" && $4 == "ROLE_USER" {print $5}' "$tmp/sim.out" | sed -n 1p)
    header_user=$(awk '$1 == "user" && $4 == "ROLE_USER" {print $3}' "$tmp/sim.out" | sed -n 2p)
    header_kimai_token=$(awk '$1 == "user" && $4 == "ROLE_USER" {print $5}' "$tmp/sim.out" | sed -n 2p)
    [ -n "$sim_url" ] && [ -n "$slug_kimai_token" ] && [ -n "$header_kimai_token" ] || { say "unexpected output from '$bin sim'" >&2; exit 1; }
    slug=$("$bin" generate slug)
    server_token=$("$bin" generate token)
    mask() { sed -e "s/$slug/<slug>/g" -e "s/$server_token/<server-token>/g" \
        -e "s/$slug_kimai_token/<kimai-token>/g" -e "s/$header_kimai_token/<kimai-token>/g" | cut -c1-400; }

    # The CA and Kimai's certificate for kimai.test (the name the server looks up in the
    # /etc/hosts that a container runtime provides).
    kimai_host=kimai.test
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=kimai-mcp image-test CA" \
            -keyout "$tmp/ca.key" -out "$tmp/ca.pem"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$kimai_host" -keyout "$tmp/kimai.key" -out "$tmp/kimai.csr"
        printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
            "$kimai_host" >"$tmp/kimai.ext"
        openssl x509 -req -in "$tmp/kimai.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
            -days 1 -extfile "$tmp/kimai.ext" -out "$tmp/kimai.pem"
    } >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log" >&2; say "openssl could not make the certificates" >&2; exit 1; }
    python3 "$here/tls_proxy.py" "$tmp/kimai.pem" "$tmp/kimai.key" "$sim_url" >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
    pids+=($!)
    wait_for "$tmp/proxy.out" '^port ' 10 || { cat "$tmp/proxy.err" >&2; say "the TLS proxy did not start" >&2; exit 1; }
    kimai_url="https://$kimai_host:$(awk '$1 == "port" {print $2}' "$tmp/proxy.out")"
    printf '127.0.0.1\tlocalhost %s\n::1\tlocalhost\n' "$kimai_host" >"$tmp/hosts"

    # users.json as the README says: owned by the image's user, mode 600.
    # write_users FILE [CA_PATH]: the slug user on the TLS Kimai, with ssl_verify CA_PATH if given.
    write_users() {
        python3 -c '
import json, sys
entry = {"kimai_url": sys.argv[2], "kimai_token": sys.argv[3], "kimai_user_id": 5}
if len(sys.argv) > 5:
    entry["ssl_verify"] = sys.argv[5]
json.dump({sys.argv[1]: entry}, open(sys.argv[4], "w"), indent=2)' "$slug" "$kimai_url" "$slug_kimai_token" "$@"
        chown "$image_user" "$1"
        chmod 600 "$1"
    }

    # --- the container, by hand -----------------------------------------------------------------
    export runtime_devices="null zero full random urandom tty"
    # start_container NAME USERS_FILE WITH_CA [VAR=value...]: a fresh copy of the image's root
    # file system with the mount points a runtime makes; in a mount namespace of its own the
    # root is bound read-only (read_only: true), users.json, the CA (when WITH_CA is yes) and
    # /etc/hosts read-only over it, the state volume writable, and the OCI runtime's default
    # devices (/dev/null, zero, full, random, urandom, tty; the static binary reads
    # /dev/urandom: see the Dockerfile); then the image's ENTRYPOINT + CMD run in it as the
    # image's user with the image's ENV plus compose.yaml's and these.
    # Logs in $tmp/NAME.err; the pid in $container_pid; its root in $container_root.
    start_container() {
        local name=$1 users=$2 with_ca=$3
        shift 3
        container_root="$tmp/root-$name"
        rm -rf "$container_root" "$tmp/state-$name"
        cp -a "$tmp/image-root" "$container_root"
        # A new named volume starts as a copy of the image's directory (owner included).
        cp -a "$tmp/image-root$state_target" "$tmp/state-$name"
        mkdir -p "$container_root/etc" "$container_root$(dirname "$users_target")" "$container_root$(dirname "$ca_target")"
        touch "$container_root/etc/hosts" "$container_root$users_target"
        mkdir "$container_root/dev"
        for dev in $runtime_devices; do touch "$container_root/dev/$dev"; done
        [ "$with_ca" = no ] || touch "$container_root$ca_target"
        # shellcheck disable=SC2016
        unshare --mount --propagation private -- sh -c '
            set -e
            r=$1 users=$2 ca=$3 hosts=$4 state=$5 users_target=$6 ca_target=$7 state_target=$8
            shift 8
            mount --bind "$r" "$r"
            mount --bind -o ro "$users" "$r$users_target"
            [ -z "$ca" ] || mount --bind -o ro "$ca" "$r$ca_target"
            mount --bind -o ro "$hosts" "$r/etc/hosts"
            mount --bind "$state" "$r$state_target"
            for dev in $runtime_devices; do mount --bind "/dev/$dev" "$r/dev/$dev"; done
            mount -o remount,bind,ro "$r"
            exec env -i "$@"' container "$container_root" "$users" "$([ "$with_ca" = no ] || echo "$tmp/ca.pem")" \
            "$tmp/hosts" "$tmp/state-$name" "$users_target" "$ca_target" "$state_target" \
            "${image_env[@]}" "USERS_CONFIG_FILE=$users_target" "$@" \
            "$chroot_bin" --userspec="$image_user" "$container_root" "${image_argv[@]}" \
            >"$tmp/$name.out" 2>"$tmp/$name.err" &
        container_pid=$!
        pids+=("$container_pid")
    }
    # wait_exit SECONDS: waits for the server to exit (killed after SECONDS); its exit status
    # in $exit_rc (137 when it had to be killed).
    wait_exit() {
        local end=$(($(now_ms) + $1 * 1000))
        while [ "$(now_ms)" -lt "$end" ]; do
            case "$(ps -o stat= -p "$container_pid" 2>/dev/null || true)" in "" | Z*) break ;; esac
            sleep 0.05
        done
        kill -KILL "$container_pid" 2>/dev/null || true
        exit_rc=0
        wait "$container_pid" || exit_rc=$?
    }
    # stop_container: SIGTERM to the server (the chroot process became it), then wait_exit 15.
    stop_container() {
        kill -TERM "$container_pid" 2>/dev/null || true
        wait_exit 15
    }
    # The image's HEALTHCHECK command, run as the image would run it: in the container's root,
    # as its user, with its environment.
    healthcheck() {
        env -i "${image_env[@]}" "$chroot_bin" --userspec="$image_user" "$container_root" "${health_argv[@]}"
    }

    curl_h=(curl -sS --max-time 20)
    INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"image-test","version":"1"}}}'
    INITIALIZED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
    CALL='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"user_current","arguments":{}}}'
    # mcp_post OUT URL SESSION BODY [CURL ARG...]: prints the status; headers in OUT.h, body in OUT.b.
    mcp_post() {
        local out=$1 url=$2 sid=$3 body=$4
        shift 4
        local h=(-H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json')
        [ -z "$sid" ] || h+=(-H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25')
        "${curl_h[@]}" -D "$out.h" -o "$out.b" -w '%{http_code}' "${h[@]}" "$@" --data-binary "$body" "$url" 2>"$out.e" || true
    }
    # user_current OUT URL [CURL ARG...]: initialize, initialized, one user_current call; the
    # call's body in OUT.b. Returns 1 (the reason on stderr) when the session cannot be made.
    user_current() {
        local out=$1 url=$2 code sid
        shift 2
        code=$(mcp_post "$out" "$url" "" "$INIT" "$@")
        sid=$(tr -d '\r' <"$out.h" 2>/dev/null | awk 'tolower($1) == "mcp-session-id:" {print $2}')
        [ "$code" = 200 ] && [ -n "$sid" ] || { echo "initialize got $code $(mask 2>/dev/null <"$out.b")" >&2; return 1; }
        code=$(mcp_post "$out" "$url" "$sid" "$INITIALIZED" "$@")
        [ "$code" = 202 ] || { echo "notifications/initialized got $code" >&2; return 1; }
        code=$(mcp_post "$out" "$url" "$sid" "$CALL" "$@")
        [ "$code" = 200 ] || { echo "tools/call got $code $(mask 2>/dev/null <"$out.b")" >&2; return 1; }
    }
    is_result() { grep -qs '"result"' "$1.b" && ! grep -qs '"isError":true' "$1.b"; }
    base=http://127.0.0.1:8000

    # --- (a) with the CA mounted ------------------------------------------------------------
    write_users "$tmp/users-ca.json" "$ca_target"
    start_container tls "$tmp/users-ca.json" yes \
        "MCP_SERVER_TOKEN=$server_token" "DEFAULT_KIMAI_URL=$kimai_url" "KIMAI_SSL_VERIFY=$ca_target" \
        "KIMAI_MCP_PUBLIC_URL=$base" "KIMAI_MCP_OAUTH_STATE_FILE=$state_target/oauth-state.json" \
        RATE_LIMIT_RPM=0 RUST_LOG=info
    if wait_for "$tmp/tls.err" 'listening on http://0\.0\.0\.0:8000/mcp' 10; then
        pass "the image's ENTRYPOINT + CMD start the server on 0.0.0.0:8000 as user $image_user"
    else
        fail "the server in the image did not start within 10 s" "$(mask <"$tmp/tls.err" | tail -5)"
    fi
    # What the server's user may write in its mount namespace: the state volume, nothing else.
    as_user() { nsenter --mount --target "$container_pid" -- setpriv --reuid "${image_user%%:*}" \
        --regid "${image_user##*:}" --clear-groups "$@"; }
    if ro=$(as_user touch "$container_root/written" 2>&1); then
        fail "read_only: user ${image_user%%:*} could write to the root file system"
    elif ! echo "$ro" | grep -q 'Read-only file system'; then
        fail "read_only: writing to the root failed otherwise" "$ro"
    elif ! as_user touch "$container_root$state_target/written"; then
        fail "the state volume is not writable by user ${image_user%%:*}"
    else
        pass "read_only: the root file system refuses writes; only the state volume ($state_target) takes them"
    fi
    status=$("${curl_h[@]}" "$base/health" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin).get("status"))' 2>/dev/null || true)
    case $status in
        healthy) pass "GET /health answers status \"$status\"" ;;
        *) fail "GET /health" "status '$status'" ;;
    esac
    if out=$(healthcheck 2>&1); then
        pass "the image's HEALTHCHECK (${health_argv[*]}) exits 0: $out"
    else
        fail "the image's HEALTHCHECK (${health_argv[*]}) exits $?" "$out"
    fi
    if user_current "$tmp/slug" "$base/mcp/$slug" 2>"$tmp/slug.why" && is_result "$tmp/slug" && grep -qs "$slug_user" "$tmp/slug.b"; then
        pass "user_current through /mcp/<slug>: Kimai over TLS verified with the mounted CA (users.json ssl_verify)"
    else
        fail "user_current through /mcp/<slug> with the mounted CA" "$(cat "$tmp/slug.why" 2>/dev/null) $(mask 2>/dev/null <"$tmp/slug.b")"
    fi
    if user_current "$tmp/hdr" "$base/mcp" -H "Authorization: Bearer $server_token" -H "X-Kimai-Token: $header_kimai_token" 2>"$tmp/hdr.why" \
        && is_result "$tmp/hdr" && grep -qs "$header_user" "$tmp/hdr.b"; then
        pass "user_current through /mcp with headers: DEFAULT_KIMAI_URL over TLS verified with KIMAI_SSL_VERIFY (the mounted CA)"
    else
        fail "user_current through /mcp with headers" "$(cat "$tmp/hdr.why" 2>/dev/null) $(mask 2>/dev/null <"$tmp/hdr.b")"
    fi
    # An OAuth client registration is written to the state file on the volume.
    code=$("${curl_h[@]}" -o "$tmp/register.b" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary '{"redirect_uris":["http://127.0.0.1:45999/callback"],"token_endpoint_auth_method":"none","client_name":"image-test"}' \
        "$base/register" 2>/dev/null || true)
    written=$(find "$tmp/state-tls" -name 'oauth-state.json*' -user "${image_user%%:*}" -perm 600 | wc -l)
    if [ "$code" = 201 ] && [ "$written" -ge 1 ]; then
        pass "an OAuth registration is kept on the state volume ($written file(s) owned by ${image_user%%:*}, mode 600)"
    else
        fail "OAuth state on the volume" "register got $code; files: $(cd "$tmp/state-tls" && find . -mindepth 1 -printf '%P %U %m, ')"
    fi
    stop_container
    if [ "$exit_rc" = 0 ]; then
        pass "SIGTERM: the server exits 0"
    else
        fail "SIGTERM" "exit status $exit_rc; $(mask <"$tmp/tls.err" | tail -3)"
    fi
    if out=$(healthcheck 2>&1); then
        fail "the HEALTHCHECK with the server stopped exits 0" "$out"
    else
        pass "the HEALTHCHECK with the server stopped exits $?: $out"
    fi

    # --- (b) without the CA -------------------------------------------------------------------
    # users.json names the CA file, which is not there: the server refuses to start.
    start_container noca "$tmp/users-ca.json" no "MCP_SERVER_TOKEN=$server_token" RUST_LOG=info
    wait_exit 10
    if [ "$exit_rc" = 2 ] && grep -q "no such file: $ca_target" "$tmp/noca.err"; then
        pass "CA not mounted, users.json names it: the server refuses to start (exit 2, \"no such file: $ca_target\")"
    else
        fail "CA not mounted, users.json names it" "exit $exit_rc: $(mask <"$tmp/noca.err" | tail -3)"
    fi
    # users.json trusts only the built-in roots: the call fails on Kimai's certificate.
    write_users "$tmp/users-roots.json"
    start_container roots "$tmp/users-roots.json" no "MCP_SERVER_TOKEN=$server_token" RATE_LIMIT_RPM=0 RUST_LOG=info
    if wait_for "$tmp/roots.err" 'listening on http://0\.0\.0\.0:8000/mcp' 10 \
        && user_current "$tmp/roots" "$base/mcp/$slug" 2>"$tmp/roots.why" \
        && grep -qs '"isError":true' "$tmp/roots.b" && grep -qis 'certificate' "$tmp/roots.b"; then
        pass "CA not mounted, built-in roots only: user_current fails with a certificate error"
    else
        fail "CA not mounted, built-in roots only: no certificate error" "$(cat "$tmp/roots.why" 2>/dev/null) $(mask 2>/dev/null <"$tmp/roots.b")"
    fi
    stop_container
    exit 0
fi

# =============================================================================================
# The first half: tools, the binary, the image, its configuration and files, compose.yaml.
# =============================================================================================
started=$SECONDS
if [ "$(id -u)" != 0 ]; then
    say "skipped: needs root (podman's image store, a network namespace, chroot to user 10001)"
    exit 0
fi
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v docker-compose >/dev/null || command -v podman-compose >/dev/null || missing+=(docker-compose)
for tool in curl openssl python3 unshare chroot ip readelf; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        say "skipped: ${missing[*]} missing and no apt-get to install them"
        exit 0
    fi
    packages=()
    for tool in "${missing[@]}"; do
        case $tool in
            ip) packages+=(iproute2) ;; unshare) packages+=(util-linux) ;; chroot) packages+=(coreutils) ;;
            readelf) packages+=(binutils) ;; python3) packages+=(python3 python3-yaml) ;; *) packages+=("$tool") ;;
        esac
    done
    say "installing ${packages[*]} with apt-get"
    t0=$SECONDS
    apt_log=$(mktemp)
    if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${packages[@]}"; } >"$apt_log" 2>&1; then
        tail -20 "$apt_log" >&2
        rm -f "$apt_log"
        say "FAIL apt-get could not install ${packages[*]}"
        say "0 passed, 1 failed"
        exit 1
    fi
    rm -f "$apt_log"
    say "installed in $((SECONDS - t0)) s"
fi
if ! podman info >/dev/null 2>&1; then
    podman info 2>&1 | tail -5 >&2
    say "FAIL podman is installed but does not work"
    say "0 passed, 1 failed"
    exit 1
fi
compose=(docker-compose)
command -v docker-compose >/dev/null || compose=(podman-compose)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kimai-mcp-image.XXXXXX")
chmod 755 "$tmp"
: >"$tmp/results"
mounted=""
cleanup() {
    local rc=$?
    [ -z "$mounted" ] || podman image unmount "$mounted" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
license=$(sed -n 's/^license = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
image=kimai-mcp
bin="$root/target/static/kimai-mcp"

# --- 1. the binary and the image ------------------------------------------------------------
static_s=0
newer=""
[ -x "$bin" ] && newer=$(find "$root/src" "$root/Cargo.toml" "$root/Cargo.lock" -newer "$bin" -print -quit)
if [ ! -x "$bin" ] || [ -n "$newer" ]; then
    say "make static (${newer:+$newer is newer than }${newer:-the binary is missing})"
    t0=$SECONDS
    if ! make -s -C "$root" static >"$tmp/static.log" 2>&1; then
        tail -30 "$tmp/static.log" >&2
        fail "make static"
        say "0 passed, 1 failed"
        exit 1
    fi
    static_s=$((SECONDS - t0))
    say "make static took $static_s s"
fi
t0=$SECONDS
if make -s -C "$root" image CONTAINER_TOOL=podman IMAGE="$image" >"$tmp/image.log" 2>&1 \
    && [ "$(podman image inspect --format '{{.Id}}' "$image:$version")" = "$(podman image inspect --format '{{.Id}}' "$image:latest")" ]; then
    pass "make image builds $image:$version and $image:latest ($(grep '^make image: .* built' "$tmp/image.log" | sed 's/^make image: //'))"
else
    tail -30 "$tmp/image.log" >&2
    fail "make image"
    say "$(grep -c '^PASS' "$tmp/results") passed, $(grep -c '^FAIL' "$tmp/results") failed"
    exit 1
fi
image_s=$((SECONDS - t0))
size=$(podman image inspect --format '{{.Size}}' "$image:$version")

# --- 2. the configuration -------------------------------------------------------------------
podman image inspect "$image:$version" >"$tmp/inspect.json"
dockerfile_version=$(sed -n 's/^ARG VERSION=//p' "$root/Dockerfile")
# One `PASS|FAIL<tab>check<tab>detail` line per check.
python3 - "$tmp/inspect.json" "$version" "$license" "$dockerfile_version" >"$tmp/config.checks" <<'EOF'
import json, re, sys
inspect, version, license_, dockerfile_version = sys.argv[1:5]
image = json.load(open(inspect))[0]
config = image.get("Config") or {}
labels = config.get("Labels") or {}
health = (image.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test")
env = dict(e.split("=", 1) for e in config.get("Env") or [])
user = config.get("User") or ""
def check(ok, what, got):
    print("%s\t%s\t%s" % ("PASS" if ok else "FAIL", what, got))
check(config.get("Entrypoint") == ["/kimai-mcp"], 'ENTRYPOINT ["/kimai-mcp"]', config.get("Entrypoint"))
check(config.get("Cmd") == ["serve"], 'CMD ["serve"]', config.get("Cmd"))
m = re.fullmatch(r"(\d+):(\d+)", user)
check(bool(m) and int(m.group(1)) != 0 and int(m.group(2)) != 0, "USER numeric and not root (%s)" % user, user)
check(list(config.get("ExposedPorts") or {}) == ["8000/tcp"], "EXPOSE 8000", config.get("ExposedPorts"))
check(env.get("KIMAI_MCP_HOST") == "0.0.0.0" and env.get("KIMAI_MCP_PORT") == "8000",
      "ENV KIMAI_MCP_HOST=0.0.0.0 KIMAI_MCP_PORT=8000", env)
check(health == ["CMD", "/kimai-mcp", "health"], 'HEALTHCHECK CMD ["/kimai-mcp", "health"]', health)
want = {"title": "kimai-mcp", "version": version, "licenses": license_}
ok = all(labels.get("org.opencontainers.image." + k) == v for k, v in want.items())
ok = ok and bool(labels.get("org.opencontainers.image.description"))
ok = ok and "org.opencontainers.image.source" in labels
check(ok, "OCI labels title, description, source, licenses (%s), version (%s)" % (license_, version),
      {k: v for k, v in labels.items() if k.startswith("org.opencontainers")})
check(dockerfile_version == version, "the Dockerfile's ARG VERSION default is Cargo.toml's version",
      dockerfile_version)
EOF
while IFS=$'\t' read -r verdict what got; do
    if [ "$verdict" = PASS ]; then pass "inspect: $what"; else fail "inspect: $what" "got $got"; fi
done <"$tmp/config.checks"

# --- 3. the file system ---------------------------------------------------------------------
mounted="$image:$version"
mnt=$(podman image mount "$mounted")
mkdir "$tmp/image-root"
cp -a "$mnt/." "$tmp/image-root/"
podman image unmount "$mounted" >/dev/null
mounted=""
listing=$(cd "$tmp/image-root" && find . -mindepth 1 -printf '%P %y %U:%G\n' | sort)
expected="kimai-mcp f 0:0
var d 10001:10001
var/lib d 10001:10001
var/lib/kimai-mcp d 10001:10001
var/lib/kimai-mcp/README f 10001:10001"
if [ "$listing" = "$expected" ]; then
    pass "the image holds only /kimai-mcp (root's) and /var/lib/kimai-mcp (user 10001's)"
else
    fail "the image's files" "$(echo "$listing" | tr '\n' ';')"
fi
if [ ! -e "$tmp/image-root/bin/sh" ] && [ ! -e "$tmp/image-root/usr/bin/sh" ]; then
    pass "no shell: /bin/sh is absent"
else
    fail "no shell" "/bin/sh exists"
fi
mode=$(stat -c %a "$tmp/image-root/kimai-mcp")
if cmp -s "$bin" "$tmp/image-root/kimai-mcp" && [ "$mode" = 755 ] \
    && ! readelf -lW "$tmp/image-root/kimai-mcp" | grep -q INTERP; then
    pass "/kimai-mcp is target/static/kimai-mcp, statically linked, mode 755"
else
    fail "/kimai-mcp" "mode $mode; same as $bin: $(cmp -s "$bin" "$tmp/image-root/kimai-mcp" && echo yes || echo no)"
fi

# --- 4. compose.yaml --------------------------------------------------------------------------
mkdir "$tmp/compose"
cp "$root/compose.yaml" "$tmp/compose/"
cp "$root/compose.env.example" "$tmp/compose/.env"
touch "$tmp/compose/users.json" "$tmp/compose/kimai-ca.pem"
if (cd "$tmp/compose" && "${compose[@]}" config) >"$tmp/compose.out" 2>"$tmp/compose.err"; then
    pass "compose.yaml validates (${compose[*]} config, compose.env.example as .env)"
else
    fail "${compose[*]} config" "$(tail -3 "$tmp/compose.err" | tr '\n' ' ')"
fi
"$bin" help serve >"$tmp/help-serve.txt"
# Checks, then `VARS<tab>users_target=… ca_target=… state_target=…` for the run below.
python3 - "$tmp/compose.out" "$root/compose.env.example" "$tmp/help-serve.txt" "$tmp/compose" >"$tmp/compose.checks" <<'EOF'
import re, sys, yaml
out, env_example, help_serve, compose_dir = sys.argv[1:5]
def check(ok, what, got=""):
    print("%s\t%s\t%s" % ("PASS" if ok else "FAIL", what, got))
try:
    doc = yaml.safe_load(open(out)) or {}
except Exception as e:
    doc = {}
s = (doc.get("services") or {}).get("kimai-mcp") or {}
check(s.get("image") == "kimai-mcp:latest" and bool(s.get("build")), "compose: build . and image kimai-mcp:latest",
      (s.get("build"), s.get("image")))
ports = s.get("ports") or []
check(any((p.get("published") in (8000, "8000") and p.get("target") in (8000, "8000")) if isinstance(p, dict)
          else str(p).endswith("8000:8000") for p in ports), "compose: ports 8000:8000", ports)
check(s.get("read_only") is True and s.get("cap_drop") == ["ALL"]
      and "no-new-privileges:true" in (s.get("security_opt") or []) and s.get("restart") == "unless-stopped",
      "compose: read_only, cap_drop ALL, no-new-privileges, restart unless-stopped",
      {k: s.get(k) for k in ("read_only", "cap_drop", "security_opt", "restart")})
limits = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
check(bool(s.get("mem_limit")) and bool(s.get("cpus")) and bool(limits.get("memory")) and bool(limits.get("cpus")),
      "compose: resource limits (mem_limit, cpus, deploy.resources.limits)", (s.get("mem_limit"), s.get("cpus"), limits))
check((s.get("healthcheck") or {}).get("test") == ["CMD", "/kimai-mcp", "health"], "compose: the health check",
      s.get("healthcheck"))
env = s.get("environment") or {}
if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
volumes = []
for v in s.get("volumes") or []:
    if isinstance(v, dict):
        volumes.append((v.get("source", ""), v.get("target", ""), bool(v.get("read_only"))))
    else:
        parts = v.split(":")
        volumes.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
def target(source_name):
    for src, tgt, ro in volumes:
        if src.rstrip("/").endswith("/" + source_name) or src == source_name:
            return tgt, ro
    return None, None
users_target, users_ro = target("users.json")
ca_target, ca_ro = target("kimai-ca.pem")
state = [(src, tgt) for src, tgt, ro in volumes if not src.startswith("/") and not ro]
check(users_ro is True and env.get("USERS_CONFIG_FILE") == users_target,
      "compose: users.json mounted read-only at USERS_CONFIG_FILE (%s)" % users_target, (volumes, env.get("USERS_CONFIG_FILE")))
check(ca_ro is True and bool(ca_target), "compose: the CA file mounted read-only (%s)" % ca_target, volumes)
check(len(state) == 1 and state[0][1] == "/var/lib/kimai-mcp", "compose: a named state volume at /var/lib/kimai-mcp", state)
help_text = open(help_serve).read()
names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", open(env_example).read(), re.M)
unread = [n for n in names if n != "RUST_LOG" and n not in help_text]
check(bool(names) and not unread, "compose.env.example: its %d variables are all read by kimai-mcp serve" % len(names),
      unread)
print("VARS\tusers_target=%s ca_target=%s state_target=%s\t" % (users_target or "", ca_target or "", state[0][1] if state else ""))
EOF
while IFS=$'\t' read -r verdict what got; do
    case $verdict in
        PASS) pass "$what" ;;
        FAIL) fail "$what" "got $got" ;;
        VARS) eval "$what" ;;
    esac
done <"$tmp/compose.checks"

# --- 5. the image, run as it would run --------------------------------------------------------
# What the runtime would run: ENTRYPOINT + CMD, the HEALTHCHECK test, ENV, USER.
python3 - "$tmp/inspect.json" >"$tmp/image.vars" <<'EOF'
import json, shlex, sys
image = json.load(open(sys.argv[1]))[0]
c = image.get("Config") or {}
health = ((image.get("Healthcheck") or c.get("Healthcheck") or {}).get("Test") or ["CMD"])[1:]
q = lambda xs: " ".join(shlex.quote(x) for x in xs)
print("image_argv=(%s)" % q((c.get("Entrypoint") or []) + (c.get("Cmd") or [])))
print("health_argv=(%s)" % q(health))
print("image_env=(%s)" % q(c.get("Env") or []))
print("image_user=%s" % shlex.quote(c.get("User") or "0:0"))
EOF
if [ -n "${users_target-}" ] && [ -n "${ca_target-}" ] && [ -n "${state_target-}" ]; then
    {
        cat "$tmp/image.vars"
        printf 'bin=%q\nhere=%q\nusers_target=%q\nca_target=%q\nstate_target=%q\nchroot_bin=%q\n' \
            "$bin" "$here" "$users_target" "$ca_target" "$state_target" "$(command -v chroot)"
    } >"$tmp/vars"
    t0=$SECONDS
    unshare --net --mount --propagation private --fork -- bash "$here/run.sh" --in-namespace "$tmp" \
        || fail "the run in a network namespace stopped early (exit status $?)"
    run_s=$((SECONDS - t0))
else
    fail "the run needs the mount paths from compose.yaml" "users=${users_target-} ca=${ca_target-} state=${state_target-}"
    run_s=0
fi

passed=$(grep -c '^PASS' "$tmp/results" || true)
failed=$(grep -c '^FAIL' "$tmp/results" || true)
say "$image:$version is $size bytes ($((size / 1000)) kB); make static $static_s s, make image $image_s s, run $run_s s, in all $((SECONDS - started)) s"
say "$passed passed, $failed failed"
[ "$failed" = 0 ]
