#!/usr/bin/env bash
# Runs the real-client interoperability checks. Installs the pinned clients into
# target/interop/ (ignored by git) on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/interop/venv"
bin="${KIMAI_MCP_BIN:-$root/target/debug/kimai-mcp}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("mcp") == "2.3.0"' 2>/dev/null; then
    echo "interop: installing the Python MCP SDK (mcp==2.3.0) into target/interop/venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "mcp==2.3.0"
fi

echo "interop: Python SDK over stdio (legacy and auto modes)"
"$venv/bin/python" "$root/tests/interop/stdio_client.py" "$bin" legacy auto
