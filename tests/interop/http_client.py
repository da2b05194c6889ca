"""A real MCP client (the Python SDK, `mcp` 2.3.0) against `kimai-mcp serve` over Streamable HTTP.

For each mode given on the command line (`legacy`: the initialize handshake; `auto`: the SDK's
default, which probes the 2026-07-28 era with server/discover first) it connects twice: to the
slug route `/mcp/{slug}` (credentials from the server's users file, no header) and to the header
route `/mcp` (`Authorization: Bearer <server token>` and `X-Kimai-Token`, plus `X-Kimai-URL` in
legacy mode only, so that auto mode exercises the server's default Kimai URL). Each session
lists the tools and makes three calls, one of them invalid.

Everything secret comes from the environment, never the command line, and is masked in output:
  INTEROP_SLUG_URL      http://127.0.0.1:PORT/mcp/<slug>
  INTEROP_HEADER_URL    http://127.0.0.1:PORT/mcp
  INTEROP_SERVER_TOKEN  the server token (Authorization: Bearer)
  INTEROP_KIMAI_TOKEN   the Kimai token sent in X-Kimai-Token on the header route
  INTEROP_KIMAI_URL     the Kimai URL sent in X-Kimai-URL (legacy mode)
  INTEROP_SLUG_USER     optional: the username user_current must name on the slug route
  INTEROP_HEADER_USER   optional: the username user_current must name on the header route
  INTEROP_PROFILE       `kimai` (default), or `everything` to check the harness itself against
                        the TypeScript reference server @modelcontextprotocol/server-everything

Prints one line per check and a closing `N passed, M failed` line; exits 1 if any check failed.
"""

import asyncio
import os
import sys

import mcp
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MODES = sys.argv[1:] or ["legacy", "auto"]
ENV = os.environ
PROFILE = ENV.get("INTEROP_PROFILE", "kimai")
SECRETS = {
    ENV.get("INTEROP_SLUG_URL", "").partition("/mcp/")[2].strip("/"): "<slug>",
    ENV.get("INTEROP_SERVER_TOKEN", ""): "<server-token>",
    ENV.get("INTEROP_KIMAI_TOKEN", ""): "<kimai-token>",
}
SECRETS.pop("", None)
results = []


def mask(text):
    text = str(text)
    for secret, label in SECRETS.items():
        text = text.replace(secret, label)
    return text


def check(name, ok, detail=""):
    results.append(bool(ok))
    detail = mask(detail)
    if len(detail) > 600:
        detail = detail[:600] + "…"
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)


def text_of(result):
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def exercise(client, label, expected_user):
    check(f"{label} negotiated a protocol version", bool(client.protocol_version), str(client.protocol_version))
    tools = (await client.list_tools()).tools
    names = [t.name for t in tools]
    if PROFILE == "everything":
        check(f"{label} tools/list names tools", len(names) > 0 and "echo" in names, str(names))
    else:
        check(f"{label} tools/list names 12 distinct tools", len(names) == 12 and len(set(names)) == 12, str(names))
        check(f"{label} tools/list includes user_current and config", {"user_current", "config"} <= set(names), str(names))
    check(f"{label} every tool has a description", all(t.description for t in tools), str([t.name for t in tools if not t.description]))

    if PROFILE == "everything":
        r = await client.call_tool("echo", {"message": "interop"})
        check(f"{label} echo succeeds", not r.is_error and "interop" in text_of(r), text_of(r))
        bad = await client.call_tool("echo", {"message": 42})
        check(f"{label} invalid argument is an isError result", bad.is_error and text_of(bad), text_of(bad))
        return

    me = await client.call_tool("user_current", {})
    ok = not me.is_error and "Current user" in text_of(me)
    if expected_user:
        ok = ok and f"Username: {expected_user}\n" in text_of(me)
    who = f" and names {expected_user}" if expected_user else ""
    check(f"{label} user_current succeeds{who}", ok, text_of(me))
    ver = await client.call_tool("config", {"type": "version"})
    check(f"{label} config type=version names the Kimai version", not ver.is_error and "Kimai version:" in text_of(ver), text_of(ver))
    bad = await client.call_tool("config", {"type": "nope"})
    check(f"{label} invalid argument is an isError result", bad.is_error and "'type'" in text_of(bad), text_of(bad))


async def slug_route(mode):
    label = f"[{mode} /mcp/{{slug}}]"
    async with mcp.Client(ENV["INTEROP_SLUG_URL"], mode=mode) as client:
        await exercise(client, label, ENV.get("INTEROP_SLUG_USER"))
        return client.protocol_version


async def header_route(mode):
    label = f"[{mode} /mcp + headers]"
    headers = {}
    if ENV.get("INTEROP_SERVER_TOKEN"):
        headers["Authorization"] = f"Bearer {ENV['INTEROP_SERVER_TOKEN']}"
    if ENV.get("INTEROP_KIMAI_TOKEN"):
        headers["X-Kimai-Token"] = ENV["INTEROP_KIMAI_TOKEN"]
    if mode == "legacy" and ENV.get("INTEROP_KIMAI_URL"):
        headers["X-Kimai-URL"] = ENV["INTEROP_KIMAI_URL"]
    async with create_mcp_http_client(headers=headers) as http:
        async with mcp.Client(streamable_http_client(ENV["INTEROP_HEADER_URL"], http_client=http), mode=mode) as client:
            await exercise(client, label, ENV.get("INTEROP_HEADER_USER"))
            return client.protocol_version


async def sse_route(mode):
    """The legacy HTTP+SSE transport on /sse with the same headers as /mcp."""
    from mcp.client.sse import sse_client

    label = f"[{mode} /sse + headers]"
    headers = {}
    if ENV.get("INTEROP_SERVER_TOKEN"):
        headers["Authorization"] = f"Bearer {ENV['INTEROP_SERVER_TOKEN']}"
    if ENV.get("INTEROP_KIMAI_TOKEN"):
        headers["X-Kimai-Token"] = ENV["INTEROP_KIMAI_TOKEN"]
    url = ENV["INTEROP_HEADER_URL"].rsplit("/mcp", 1)[0] + "/sse"
    async with mcp.Client(sse_client(url, headers=headers), mode=mode) as client:
        await exercise(client, label, ENV.get("INTEROP_HEADER_USER"))
        return client.protocol_version


async def main():
    for mode in MODES:
        routes = [(slug_route, "/mcp/{slug}"), (header_route, "/mcp + headers")]
        # The SSE transport has no 2026-07-28 era: the legacy handshake only.
        if PROFILE == "kimai" and mode == "legacy":
            routes.append((sse_route, "/sse + headers"))
        for route, label in routes:
            try:
                version = await asyncio.wait_for(route(mode), timeout=60)
                print(f"     [{mode} {label}] protocol version {version}", flush=True)
            except Exception as e:  # noqa: BLE001 - any failure is a failed check
                check(f"[{mode} {label}] session completed", False, repr(e))
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


asyncio.run(main())
