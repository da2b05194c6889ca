#!/usr/bin/env bash
# Deployment checks run by `make test` (target `deploy`):
#   1. kimai-mcp.service through `systemd-analyze security --offline=true`: fails above 2.0.
#   2. `systemd-analyze verify` with ExecStart pointed at the built binary (verify refuses a
#      missing executable, and /usr/local/bin/kimai-mcp is not there on a build machine); any
#      warning about the unit fails too, since verify exits 0 on unknown keys and bad values.
#   3. `make install` / `make uninstall` into a scratch DESTDIR: the expected files and links,
#      the installed unit verifies, and nothing is left afterwards.
# Readiness and the watchdog are tested in Rust (tests/notify.rs), against the binary itself.
#
# systemd-analyze comes with the `systemd` package; when it is missing the script installs it
# with apt-get (as root) or fails saying so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${KIMAI_MCP_BIN:-$root/target/debug/kimai-mcp}"
unit="$root/kimai-mcp.service"
# The highest accepted exposure, in systemd-analyze's 0.0-10.0 scale ("OK" is below 4.0).
max_exposure=2.0

fail() { echo "deploy: FAIL: $*" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "deploy: systemd-analyze missing; installing the systemd package"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null \
            || fail "apt-get could not install systemd (systemd-analyze)"
    else
        fail "systemd-analyze is missing: install the systemd package (apt-get install systemd)"
    fi
fi
[ -x "$bin" ] || fail "$bin is missing: run \`cargo build\` (or set KIMAI_MCP_BIN)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- 1. security ------------------------------------------------------------------------------
# --threshold is in tenths (20 = 2.0); the "Overall exposure level" line is checked as well, so
# a change in how a later systemd reads --threshold cannot pass a worse unit unnoticed.
set +e
report=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1)
rc=$?
set -e
overall=$(printf '%s\n' "$report" | grep 'Overall exposure level' || true)
score=$(printf '%s\n' "$overall" | grep -oE '[0-9]+\.[0-9]+' | head -1)
[ -n "$score" ] || fail "no exposure level in systemd-analyze security output:"$'\n'"$report"
echo "deploy: $overall"
if [ "$rc" != 0 ] || awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s > m) }'; then
    printf '%s\n' "$report" | grep '✗' >&2 || true
    fail "kimai-mcp.service is rated $score (exit $rc); at most $max_exposure is accepted"
fi

# --- 2. verify --------------------------------------------------------------------------------
verify() { # unit file -> fails on a non-zero exit or any message
    local out
    out=$(systemd-analyze verify --man=no "$1" 2>&1) || fail "systemd-analyze verify $1:"$'\n'"$out"
    [ -z "$out" ] || fail "systemd-analyze verify $1 warns:"$'\n'"$out"
}
mkdir "$tmp/unit"
sed "s|^ExecStart=/usr/local/bin/kimai-mcp |ExecStart=$bin |" "$unit" > "$tmp/unit/kimai-mcp.service"
grep -q "^ExecStart=$bin serve\$" "$tmp/unit/kimai-mcp.service" || fail "ExecStart= not found in $unit"
verify "$tmp/unit/kimai-mcp.service"
echo "deploy: systemd-analyze verify: clean"

# --- 3. install / uninstall -------------------------------------------------------------------
dest="$tmp/dest"
make -s -C "$root" install DESTDIR="$dest" BINARY="$bin" PREFIX=/opt/kimai >/dev/null
expected="etc/kimai-mcp/kimai-mcp.env.example
etc/kimai-mcp/users.example.json
etc/systemd/system/kimai-mcp.service
opt/kimai/bin/kimai-mcp
opt/kimai/bin/kimai-mcp-server
opt/kimai/bin/kimai-mcp-streamable"
got=$(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
[ "$got" = "$expected" ] || fail "make install put:"$'\n'"$got"$'\n'"expected:"$'\n'"$expected"
for link in kimai-mcp-server kimai-mcp-streamable; do
    [ "$(readlink "$dest/opt/kimai/bin/$link")" = kimai-mcp ] || fail "$link is not a link to kimai-mcp"
done
"$dest/opt/kimai/bin/kimai-mcp-server" --version | grep -q '^kimai-mcp ' || fail "kimai-mcp-server --version"
# PREFIX reached the unit; verify the installed unit with the real path under DESTDIR.
grep -q '^ExecStart=/opt/kimai/bin/kimai-mcp serve$' "$dest/etc/systemd/system/kimai-mcp.service" \
    || fail "the installed unit does not start /opt/kimai/bin/kimai-mcp"
sed "s|^ExecStart=/opt/kimai/bin/|ExecStart=$dest/opt/kimai/bin/|" \
    "$dest/etc/systemd/system/kimai-mcp.service" > "$tmp/unit/kimai-mcp.service"
verify "$tmp/unit/kimai-mcp.service"
# An administrator's own file in the config directory survives uninstall, and keeps the dir.
echo "MCP_SERVER_TOKEN=x" > "$dest/etc/kimai-mcp/kimai-mcp.env"
make -s -C "$root" uninstall DESTDIR="$dest" PREFIX=/opt/kimai >/dev/null
left=$(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
[ "$left" = "etc/kimai-mcp/kimai-mcp.env" ] || fail "after make uninstall, left:"$'\n'"$left"
rm "$dest/etc/kimai-mcp/kimai-mcp.env"
make -s -C "$root" uninstall DESTDIR="$dest" PREFIX=/opt/kimai >/dev/null
[ ! -e "$dest/etc/kimai-mcp" ] || fail "make uninstall kept an empty $dest/etc/kimai-mcp"
echo "deploy: make install/uninstall: ok"
echo "deploy: 3 passed, 0 failed"
