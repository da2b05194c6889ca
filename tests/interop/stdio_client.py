"""A real MCP client (the Python SDK, `mcp` 2.3.0) against `kimai-mcp demo` over stdio.

Connects in each mode given on the command line (`legacy`: the initialize handshake; `auto`:
the SDK's default, which probes the 2026-07-28 era with server/discover first), lists the
tools and calls both. Prints one line per check and a closing `N passed, M failed` line;
exits 1 if any check failed.
"""

import asyncio
import sys

import mcp

BINARY = sys.argv[1]
MODES = sys.argv[2:] or ["legacy", "auto"]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)


def text_of(result):
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def run(mode):
    params = mcp.StdioServerParameters(command=BINARY, args=["demo"], env={"RUST_LOG": "warn"})
    async with mcp.Client(params, mode=mode) as client:
        check(f"[{mode}] negotiated a protocol version", bool(client.protocol_version), str(client.protocol_version))
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        check(f"[{mode}] tools/list names every tool in order", names == ["entity", "timesheet", "timer", "rate", "team_access", "absence", "calendar", "meta", "user_current", "analyze_project_team", "config", "comment"], str(names))
        check(f"[{mode}] every tool has a description", all(t.description for t in tools.tools))
        me = await client.call_tool("user_current", {})
        check(f"[{mode}] user_current succeeds", not me.is_error and "Current user" in text_of(me), text_of(me))
        cfg = await client.call_tool("config", {"type": "all"})
        check(f"[{mode}] config type=all returns four blocks", not cfg.is_error and len(cfg.content) == 4, text_of(cfg))
        page = await client.call_tool("timesheet", {"action": "list", "filters": {"size": 3}})
        check(f"[{mode}] timesheet list returns a page", not page.is_error and text_of(page).startswith("Found "), text_of(page))
        bad = await client.call_tool("config", {"type": "nope"})
        check(f"[{mode}] invalid argument is an isError result", bad.is_error and "'type'" in text_of(bad), text_of(bad))
        return client.protocol_version


async def main():
    for mode in MODES:
        try:
            version = await asyncio.wait_for(run(mode), timeout=60)
            print(f"     [{mode}] protocol version {version}")
        except Exception as e:  # noqa: BLE001 - any failure is a failed check
            check(f"[{mode}] session completed", False, repr(e))
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


asyncio.run(main())
