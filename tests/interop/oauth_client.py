"""The Python SDK's own OAuth client (`mcp` 2.3.0, `mcp.client.auth.OAuthClientProvider`) against
`kimai-mcp serve --public-url` over Streamable HTTP.

For each of two users (A registers with client_secret_post, B with client_secret_basic) the SDK
discovers the server from the 401 on /mcp, registers a client, and sends the user to the
authorization URL. The "user" is scripted in the redirect handler: an httpx2 client that keeps
cookies GETs the URL (following the redirect to /oauth/login), reads the hidden txn and csrf
inputs, posts the slug and auth secret, and hands the 302's code, state and iss to the SDK's
callback handler. The session then lists the tools and calls user_current, which must name that
user's sim user.

The refresh path: the SDK keeps the access token's expiry only in memory (from expires_in); the
script moves it into the past on the same provider, as if the hour had passed, and opens a new
session. The SDK must then send grant_type=refresh_token (seen on the wire) before the first
request, without a new sign-in, and the session must work with the new access token.

Finally, per user: the refresh token is refused for the other user's client (each token is bound
to its own client and acts only as its own user), and after POST /revoke the access token no
longer opens /mcp.

Then, with a client ID metadata document (the SDK's `client_metadata_url`): user A signs in
again with a client that does not register but names itself by the URL of its document (served
by the caller on http://localhost, which the server accepts only with its tests-only switch; the
SDK's own check of that URL insists on https, so this script lets exactly that URL through). The
SDK must see `client_id_metadata_document_supported` in the metadata, never call /register, sign
in with the URL as client_id and no secret, and refresh the same way.

Environment (secrets only from here, and masked in output):
  INTEROP_BASE                     http://127.0.0.1:PORT (the --public-url)
  INTEROP_SLUG_A, INTEROP_SECRET_A, INTEROP_USER_A   user A: slug, auth secret, sim username
  INTEROP_SLUG_B, INTEROP_SECRET_B, INTEROP_USER_B   user B
  INTEROP_CIMD_URL                 the URL of the client ID metadata document (optional)
  INTEROP_ISSUED                   a file to which every code, token and client secret issued is
                                   appended (for the caller's mask and log check)

Prints one `ok   NAME` / `FAIL NAME: DETAIL` line per check and a closing `N passed, M failed`
line; exits 1 if any check failed.
"""

import asyncio
import html.parser
import os
import re
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx2
import mcp
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

ENV = os.environ
BASE = ENV["INTEROP_BASE"].rstrip("/")
ISSUER = BASE + "/"
MCP_URL = BASE + "/mcp"
# Never contacted: the redirect handler reads the code from the 302 instead of following it.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
results = []
SECRETS = {}


def remember(value, label):
    if isinstance(value, str) and len(value) >= 8 and value not in SECRETS:
        SECRETS[value] = label
        if ENV.get("INTEROP_ISSUED"):
            with open(ENV["INTEROP_ISSUED"], "a") as f:
                f.write(value + "\n")


for key, label in (("SLUG_A", "<slug-a>"), ("SLUG_B", "<slug-b>"), ("SECRET_A", "<auth-secret-a>"), ("SECRET_B", "<auth-secret-b>")):
    SECRETS[ENV[f"INTEROP_{key}"]] = label


def mask(text):
    text = str(text)
    for secret, label in sorted(SECRETS.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(secret, label)
    return text


def check(name, ok, detail=""):
    results.append(bool(ok))
    detail = " ⏎ ".join(line.strip() for line in mask(detail).strip().splitlines())
    if len(detail) > 600:
        detail = detail[:600] + "…"
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)
    return ok


def info(line):
    print("     " + mask(line), flush=True)


def text_of(result):
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory; counts how often tokens were stored."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.token_writes = 0

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        remember(tokens.access_token, "<access-token>")
        remember(tokens.refresh_token, "<refresh-token>")
        self.tokens = tokens
        self.token_writes += 1

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        remember(client_info.client_secret, "<client-secret>")
        self.client_info = client_info


class HiddenInputs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


class ScriptedUser:
    """The redirect and callback handlers: signs in through the HTML form like a browser would."""

    def __init__(self, label, slug, secret):
        self.label, self.slug, self.secret = label, slug, secret
        self.result: AuthorizationCodeResult | None = None
        self.sign_ins = 0

    async def redirect_handler(self, authorization_url: str) -> None:
        self.sign_ins += 1
        self.result = None
        query = parse_qs(urlsplit(authorization_url).query)
        check(f"{self.label} the SDK's authorization URL has PKCE S256, state and resource={BASE}/mcp",
              query.get("code_challenge_method") == ["S256"] and query.get("code_challenge") and query.get("state")
              and query.get("resource") == [MCP_URL] and query.get("redirect_uri") == [REDIRECT_URI],
              str({k: v for k, v in query.items() if k in ("code_challenge_method", "resource", "redirect_uri")}))
        async with httpx2.AsyncClient(timeout=20, follow_redirects=True) as browser:
            page = await browser.get(authorization_url)
            hidden = HiddenInputs()
            hidden.feed(page.text)
            txn, csrf = hidden.fields.get("txn"), hidden.fields.get("csrf")
            remember(txn, "<txn>")
            remember(csrf, "<csrf>")
            cookies = {c.name: c for c in browser.cookies.jar}
            for c in cookies.values():
                remember(c.value, "<csrf>")
            check(f"{self.label} GET authorization URL -> 302 -> /oauth/login: 200 HTML with hidden txn and csrf",
                  page.status_code == 200 and urlsplit(str(page.url)).path == "/oauth/login"
                  and [r.status_code for r in page.history] == [302] and txn and csrf,
                  f"{page.status_code} {urlsplit(str(page.url)).path} via {[r.status_code for r in page.history]}, "
                  f"txn {bool(txn)}, csrf {bool(csrf)}")
            cookie = next((c for c in cookies.values() if c.name.startswith("kmcsrf_")), None)
            held = [(re.sub(r"_[A-Za-z0-9_-]{6,}$", "_…", c.name), c.path, c.value == csrf) for c in cookies.values()]
            check(f"{self.label} the page sets a CSRF cookie kmcsrf_… (Path=/oauth) equal to the csrf field",
                  cookie is not None and cookie.value == csrf and cookie.path == "/oauth",
                  f"cookies held (name, path, equal to the field): {held}")
            response = await browser.post(
                BASE + "/oauth/login",
                data={"txn": txn or "", "csrf": csrf or "", "username": self.slug, "secret": self.secret, "action": "sign-in"},
                follow_redirects=False,
            )
            location = response.headers.get("location", "")
            params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            remember(params.get("code"), "<code>")
            check(f"{self.label} POST /oauth/login: 302 to the redirect_uri with code, state and iss",
                  response.status_code == 302 and location.startswith(REDIRECT_URI + "?") and params.get("code")
                  and params.get("state") == query["state"][0] and params.get("iss") == ISSUER,
                  f"{response.status_code} to {location.split('?')[0]} with {sorted(params)}, iss {params.get('iss')}")
            if params.get("code"):
                self.result = AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("the scripted sign-in got no code")
        return self.result


def token_requests(log):
    return [grant for method, path, grant in log if path == "/token"]


async def session(provider, log, label, expected_user):
    """One MCP session with the provider: initialize, tools/list, user_current."""

    async def hook(request):
        grant = None
        if request.url.path == "/token":
            grant = parse_qs((request.content or b"").decode()).get("grant_type", [None])[0]
        log.append((request.method, request.url.path, grant))

    http = create_mcp_http_client()
    http.auth = provider
    http.event_hooks["request"].append(hook)
    async with http:
        async with mcp.Client(streamable_http_client(MCP_URL, http_client=http), mode="legacy") as client:
            check(f"{label} initialize negotiated a protocol version", bool(client.protocol_version), str(client.protocol_version))
            names = [t.name for t in (await client.list_tools()).tools]
            check(f"{label} tools/list names 12 distinct tools", len(names) == 12 and len(set(names)) == 12, str(names))
            me = await client.call_tool("user_current", {})
            text = text_of(me)
            check(f"{label} user_current acts as {expected_user}",
                  not me.is_error and "Current user" in text and f"Username: {expected_user}\n" in text, text)


async def raw_mcp_status(access_token):
    async with httpx2.AsyncClient(timeout=20) as http:
        r = await http.post(MCP_URL, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"},
                            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                                "protocolVersion": "2025-06-18", "capabilities": {},
                                "clientInfo": {"name": "interop-oauth-revoked", "version": "0"}}})
        sid = r.headers.get("mcp-session-id")
        if sid:
            await http.delete(MCP_URL, headers={"Authorization": f"Bearer {access_token}", "Mcp-Session-Id": sid})
        return r.status_code


def client_auth(client_info):
    """(data, headers) authenticating a token or revocation request as the SDK would."""
    if client_info.token_endpoint_auth_method == "client_secret_basic":
        return {}, httpx2.BasicAuth(client_info.client_id, client_info.client_secret)
    data = {"client_id": client_info.client_id}
    if client_info.client_secret:
        data["client_secret"] = client_info.client_secret
    return data, None


async def user_flow(label, slug, secret, expected_user, auth_method):
    storage = MemoryStorage()
    user = ScriptedUser(label, slug, secret)
    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(
            client_name=f"kimai-mcp interop (Python SDK, {auth_method})",
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method=auth_method,
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
    )
    log = []

    # --- sign-in and first session
    await session(provider, log, f"{label} [sign-in]", expected_user)
    ci, tok = storage.client_info, storage.tokens
    check(f"{label} the SDK registered a {auth_method} client with a client_secret",
          ci is not None and ci.token_endpoint_auth_method == auth_method and bool(ci.client_secret),
          str(ci and {"token_endpoint_auth_method": ci.token_endpoint_auth_method, "client_secret": bool(ci.client_secret)}))
    check(f"{label} one sign-in, one authorization_code token request; Bearer, expires_in 3600, a refresh_token",
          user.sign_ins == 1 and token_requests(log) == ["authorization_code"] and tok is not None
          and tok.token_type == "Bearer" and tok.expires_in == 3600 and bool(tok.refresh_token),
          f"sign-ins {user.sign_ins}, token requests {token_requests(log)}, "
          f"token {tok and {'type': tok.token_type, 'expires_in': tok.expires_in, 'refresh': bool(tok.refresh_token)}}")
    info(f"{label} first session: {' '.join(m + ' ' + p + (' ' + g if g else '') for m, p, g in log)}")

    # --- refresh: the hour has passed (the SDK's in-memory expiry moved into the past)
    if tok is None:
        return None
    first_access, first_refresh = tok.access_token, tok.refresh_token
    provider.context.token_expiry_time = time.time() - 1
    log.clear()
    await session(provider, log, f"{label} [after refresh]", expected_user)
    tok = storage.tokens
    check(f"{label} an expired token makes the SDK refresh: one refresh_token request, no sign-in, a new access token",
          token_requests(log) == ["refresh_token"] and log and log[0][1] == "/token" and user.sign_ins == 1
          and storage.token_writes == 2 and tok.access_token != first_access,
          f"requests {log[:3]}, sign-ins {user.sign_ins}, token writes {storage.token_writes}, "
          f"new access token {tok.access_token != first_access}")
    info(f"{label} refresh token rotated: {'yes' if tok.refresh_token != first_refresh else 'no'}; "
         f"the old access token now gets HTTP {await raw_mcp_status(first_access)} on /mcp")
    return {"label": label, "user": expected_user, "client_info": storage.client_info, "tokens": tok}


async def cimd_flow(label, slug, secret, expected_user, url):
    import mcp.client.auth.oauth2 as sdk_oauth2

    sdk_check = sdk_oauth2.is_valid_client_metadata_url
    sdk_oauth2.is_valid_client_metadata_url = lambda u: u == url or sdk_check(u)
    storage = MemoryStorage()
    user = ScriptedUser(label, slug, secret)
    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(
            client_name="kimai-mcp interop (Python SDK, client ID metadata document)",
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
        client_metadata_url=url,
    )
    log = []
    await session(provider, log, f"{label} [sign-in]", expected_user)
    ci, tok = storage.client_info, storage.tokens
    check(f"{label} the SDK used the document URL as its client_id, with no secret and no /register",
          ci is not None and ci.client_id == url and not ci.client_secret
          and not any(path == "/register" for _, path, _ in log),
          str(ci and {"client_id": ci.client_id, "secret": bool(ci.client_secret)}) + f" paths {[p for _, p, _ in log]}")
    check(f"{label} one sign-in, one authorization_code token request, a refresh_token",
          user.sign_ins == 1 and token_requests(log) == ["authorization_code"] and tok is not None and bool(tok.refresh_token),
          f"sign-ins {user.sign_ins}, token requests {token_requests(log)}")
    if tok is None:
        return
    first_access = tok.access_token
    provider.context.token_expiry_time = time.time() - 1
    log.clear()
    await session(provider, log, f"{label} [after refresh]", expected_user)
    check(f"{label} the document client refreshes: one refresh_token request, no sign-in, a new access token",
          token_requests(log) == ["refresh_token"] and user.sign_ins == 1 and storage.tokens.access_token != first_access,
          f"requests {log[:3]}, sign-ins {user.sign_ins}")


async def cross_and_revoke(me, other):
    label = me["label"]
    async with httpx2.AsyncClient(timeout=20) as http:
        # The other user's client presenting my refresh token.
        data, auth = client_auth(other["client_info"])
        r = await http.post(BASE + "/token", data={"grant_type": "refresh_token", "refresh_token": me["tokens"].refresh_token,
                                                   "resource": MCP_URL, **data}, auth=auth)
        body = r.text
        try:
            remember(r.json().get("access_token"), "<access-token>")
            remember(r.json().get("refresh_token"), "<refresh-token>")
        except ValueError:
            pass
        check(f"{label} its refresh token is refused for {other['label']}'s client (400 invalid_grant)",
              r.status_code == 400 and '"invalid_grant"' in body.replace(" ", ""), f"{r.status_code} {body[:300]}")

        # Revocation of the access token with the client's own authentication.
        data, auth = client_auth(me["client_info"])
        r = await http.post(BASE + "/revoke", data={"token": me["tokens"].access_token, "token_type_hint": "access_token", **data}, auth=auth)
        check(f"{label} POST /revoke of the access token: 200", r.status_code == 200, f"{r.status_code} {r.text[:300]}")
    status = await raw_mcp_status(me["tokens"].access_token)
    check(f"{label} the revoked access token no longer opens /mcp (401)", status == 401, f"HTTP {status}")


async def main():
    users = [("[A]", ENV["INTEROP_SLUG_A"], ENV["INTEROP_SECRET_A"], ENV["INTEROP_USER_A"], "client_secret_post"),
             ("[B]", ENV["INTEROP_SLUG_B"], ENV["INTEROP_SECRET_B"], ENV["INTEROP_USER_B"], "client_secret_basic")]
    done = []
    for label, slug, secret, name, method in users:
        try:
            r = await asyncio.wait_for(user_flow(label, slug, secret, name, method), timeout=60)
            if r:
                done.append(r)
        except Exception as e:  # noqa: BLE001 - any failure is a failed check
            check(f"{label} the SDK's OAuth flow ran to the end", False, repr(e))
    if len(done) == 2:
        a, b = done
        check("A and B hold different access tokens and act as different users",
              a["tokens"].access_token != b["tokens"].access_token and a["user"] != b["user"])
        for me, other in ((a, b), (b, a)):
            try:
                await asyncio.wait_for(cross_and_revoke(me, other), timeout=30)
            except Exception as e:  # noqa: BLE001
                check(f"{me['label']} cross-client refresh and revocation ran to the end", False, repr(e))
    cimd_url = ENV.get("INTEROP_CIMD_URL")
    if cimd_url:
        try:
            await asyncio.wait_for(cimd_flow("[A, document]", ENV["INTEROP_SLUG_A"], ENV["INTEROP_SECRET_A"],
                                             ENV["INTEROP_USER_A"], cimd_url), timeout=60)
        except Exception as e:  # noqa: BLE001
            check("[A, document] the SDK's flow with a client ID metadata document ran to the end", False, repr(e))
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


asyncio.run(main())
