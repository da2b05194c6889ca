//! The OAuth 2.1 authorization server of `serve --public-url`, end to end with a scripted
//! client over raw HTTP: metadata, registration, authorization with PKCE, the sign-in form
//! (CSRF, wrong secrets, rate limit), the code exchange, `/mcp` calls with the access token,
//! refresh-token rotation and reuse detection, revocation, expiry, users removed on SIGHUP, the
//! state file across a restart, every error response the RFCs define for bad input, and the
//! scopes (`kimai:read`, `kimai:write`): chosen at sign-in, narrowed at refresh, enforced with
//! 403 `insufficient_scope` before Kimai sees a write.

use crate::util::http::{
    JSON_SSE, Resp, SERVER_TOKEN, SLUG_A, SLUG_B, Serve, call, init_body, post, request, session,
    tool_text,
};
use crate::util::{TempDir, sim};
use kimai_mcp::sim::Sim;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;

pub(crate) const SECRET_A: &str = "auth-secret-for-tony-0123456789";
pub(crate) const SECRET_B: &str = "auth-secret-for-john-9876543210";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:45999/callback";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn users(sim: &Sim) -> Value {
    json!({
        SLUG_A: {"kimai_url": sim.url(), "kimai_token": sim.token("tony_teamlead").unwrap(), "kimai_user_id": 3, "auth_secret": SECRET_A},
        SLUG_B: {"kimai_url": sim.url(), "kimai_token": sim.token("john_user").unwrap(), "auth_secret": SECRET_B},
    })
}

/// `serve` with OAuth on at `http://127.0.0.1:PORT`.
pub(crate) fn start(sim: &Sim, extra: &[&str]) -> (Serve, String) {
    start_users(sim, &users(sim), extra)
}

fn start_users(sim: &Sim, body: &Value, extra: &[&str]) -> (Serve, String) {
    let port = free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let mut args = vec![
        "--port",
        &port,
        "--public-url",
        &base,
        "--rate-limit-rpm",
        "0",
    ];
    args.extend_from_slice(extra);
    (Serve::start_with(sim, body, &args, "debug"), base)
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", kimai_mcp::oauth::form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn post_form(
    srv: &Serve,
    path: &str,
    headers: &[(&str, &str)],
    pairs: &[(&str, &str)],
) -> Resp {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    request(&srv.addr, "POST", path, &h, &form(pairs))
}

fn register(srv: &Serve, meta: Value) -> Resp {
    request(
        &srv.addr,
        "POST",
        "/register",
        &[("Content-Type", "application/json")],
        &meta.to_string(),
    )
}

/// A public client (PKCE only); its client_id.
pub(crate) fn public_client(srv: &Serve) -> String {
    let r = register(
        srv,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Test <app>", "grant_types": ["authorization_code", "refresh_token"]}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let j = r.json();
    assert!(j.get("client_secret").is_none(), "{j}");
    j["client_id"].as_str().unwrap().to_string()
}

pub(crate) fn query_of(location: &str) -> HashMap<String, String> {
    kimai_mcp::oauth::parse_form(location.split_once('?').map_or("", |(_, q)| q)).unwrap()
}

/// A PKCE verifier and its S256 challenge.
pub(crate) fn pkce() -> (String, String) {
    let v = kimai_mcp::oauth::random_secret("v");
    let c = kimai_mcp::oauth::s256(&v);
    (v, c)
}

pub(crate) fn authorize_path(client_id: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
    ];
    for (k, v) in extra {
        p.retain(|(x, _)| x != k);
        if !v.is_empty() {
            p.push((k, v));
        }
    }
    format!("/authorize?{}", form(&p))
}

/// The sign-in page of an authorization request: (txn, csrf, cookie "name=value", response).
pub(crate) struct Page {
    pub(crate) txn: String,
    pub(crate) csrf: String,
    pub(crate) cookie: String,
    pub(crate) resp: Resp,
}

pub(crate) fn open_sign_in(srv: &Serve, path: &str) -> Page {
    let r = request(&srv.addr, "GET", path, &[], "");
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("Location").unwrap().to_string();
    assert!(loc.starts_with("/oauth/login?txn="), "{loc}");
    let page = request(&srv.addr, "GET", &loc, &[], "");
    assert_eq!(page.status, 200, "{page:?}");
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let rest = page.body.split(&marker).nth(1).expect(name);
        rest.split('"').next().unwrap().to_string()
    };
    let cookie = page
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    Page {
        txn: field("txn"),
        csrf: field("csrf"),
        cookie,
        resp: page,
    }
}

pub(crate) fn submit(srv: &Serve, p: &Page, slug: &str, secret: &str) -> Resp {
    post_form(
        srv,
        "/oauth/login",
        &[("Cookie", &p.cookie)],
        &[
            ("txn", &p.txn),
            ("csrf", &p.csrf),
            ("username", slug),
            ("secret", secret),
            ("action", "sign-in"),
        ],
    )
}

/// Signs `slug` in for `client_id`: the code and the verifier.
pub(crate) fn sign_in(srv: &Serve, client_id: &str, slug: &str, secret: &str) -> (String, String) {
    sign_in_with(srv, client_id, slug, secret, &[])
}

/// As `sign_in`, with `extra` parameters on the authorization request.
fn sign_in_with(
    srv: &Serve,
    client_id: &str,
    slug: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let page = open_sign_in(srv, &authorize_path(client_id, &challenge, extra));
    // The page says what is being granted.
    let read_only = extra.iter().any(|(k, v)| {
        *k == "scope" && v.split(' ').any(|s| s == "kimai:read") && !v.contains("kimai:write")
    });
    let says = if read_only {
        "<strong>read</strong> your Kimai data (it cannot change anything)"
    } else {
        "read and change your Kimai data"
    };
    assert!(page.resp.body.contains(says), "{}", page.resp.body);
    let r = submit(srv, &page, slug, secret);
    assert_eq!(r.status, 302, "{r:?}");
    let q = query_of(r.header("Location").unwrap());
    assert_eq!(q["state"], "st-123");
    (q["code"].clone(), verifier)
}

pub(crate) fn exchange(srv: &Serve, client_id: &str, code: &str, verifier: &str) -> Resp {
    post_form(
        srv,
        "/token",
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
    )
}

pub(crate) fn refresh(srv: &Serve, client_id: &str, token: &str) -> Resp {
    post_form(
        srv,
        "/token",
        &[],
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ],
    )
}

/// Access and refresh token of a full sign-in.
pub(crate) fn tokens(srv: &Serve, client_id: &str, slug: &str, secret: &str) -> (String, String) {
    let (code, verifier) = sign_in(srv, client_id, slug, secret);
    let r = exchange(srv, client_id, &code, &verifier);
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    (
        j["access_token"].as_str().unwrap().to_string(),
        j["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The Kimai user name `user_current` reports through `/mcp` with this access token, or the
/// failing response.
pub(crate) fn whoami(srv: &Serve, access: &str) -> Result<String, Resp> {
    let auth = format!("Bearer {access}");
    let r = post(srv, "/mcp", &[("Authorization", &auth)], &init_body());
    if r.status != 200 {
        return Err(r);
    }
    let sid = r.header("Mcp-Session-Id").unwrap().to_string();
    let h = [
        ("Authorization", auth.as_str()),
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = post(srv, "/mcp", &h, &call(2, "user_current", json!({})));
    if r.status != 200 {
        return Err(r);
    }
    let text = tool_text(&r);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("Username: "))
        .unwrap_or_else(|| panic!("no user name: {text}"))
        .to_string())
}

pub(crate) fn oauth_error(r: &Resp) -> String {
    r.json()["error"].as_str().unwrap_or("").to_string()
}

#[test]
fn metadata_and_the_401_challenge_point_clients_at_the_sign_in() {
    let sim = sim();
    let (srv, base) = start(&sim, &[]);
    let prm = request(
        &srv.addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        "",
    );
    assert_eq!(prm.status, 200);
    assert_eq!(prm.header("Access-Control-Allow-Origin"), Some("*"));
    let prm = prm.json();
    assert_eq!(prm["resource"], format!("{base}/mcp"));
    assert_eq!(prm["authorization_servers"], json!([format!("{base}/")]));
    let asm = request(
        &srv.addr,
        "GET",
        "/.well-known/oauth-authorization-server",
        &[("Origin", "https://claude.ai")],
        "",
    );
    assert_eq!(asm.status, 200, "any origin may read the metadata: {asm:?}");
    let asm = asm.json();
    assert_eq!(asm["issuer"], format!("{base}/"));
    assert_eq!(asm["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(asm["token_endpoint"], format!("{base}/token"));
    assert_eq!(asm["registration_endpoint"], format!("{base}/register"));
    assert_eq!(asm["revocation_endpoint"], format!("{base}/revoke"));
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
    let scopes = json!(["kimai:read", "kimai:write"]);
    assert_eq!(asm["scopes_supported"], scopes);
    assert_eq!(prm["scopes_supported"], scopes);

    // No token: 401 with the resource metadata and the scopes to ask for (MCP 2025-11-25); a
    // wrong token: also invalid_token.
    let r = post(&srv, "/mcp", &[], &init_body());
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate").unwrap(),
        format!(
            "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", scope=\"kimai:read kimai:write\""
        )
    );
    let r = post(
        &srv,
        "/mcp",
        &[("Authorization", "Bearer kmat_not-a-real-token")],
        &init_body(),
    );
    assert_eq!(r.status, 401);
    let challenge = r.header("WWW-Authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\"")
            && challenge.contains("resource_metadata=")
            && challenge.contains("scope=\"kimai:read kimai:write\""),
        "{challenge}"
    );
    // The server token and the client's own Kimai token keep working next to OAuth.
    let auth = format!("Bearer {SERVER_TOKEN}");
    let kimai = sim.token("anna_admin").unwrap();
    session(
        &srv,
        "/mcp",
        &[("Authorization", &auth), ("X-Kimai-Token", &kimai)],
    );
    // OpenID discovery is not offered.
    let r = request(
        &srv.addr,
        "GET",
        "/.well-known/openid-configuration",
        &[],
        "",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn token_and_revoke_answer_preflights_and_only_post() {
    let sim = sim();
    let (srv, _) = start(&sim, &[]);
    for path in ["/token", "/revoke"] {
        // A browser-based client's CORS preflight, from any origin.
        let r = request(
            &srv.addr,
            "OPTIONS",
            path,
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
            "",
        );
        assert_eq!(r.status, 204, "{path}: {}", r.body);
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"), "{path}");
        assert_eq!(
            r.header("Access-Control-Allow-Methods"),
            Some("POST, OPTIONS"),
            "{path}"
        );
        assert_eq!(r.header("Access-Control-Allow-Credentials"), None, "{path}");
        let r = request(&srv.addr, "GET", path, &[], "");
        assert_eq!(r.status, 405, "{path}: {}", r.body);
        assert_eq!(r.header("Allow"), Some("POST"), "{path}");
    }
}

#[test]
fn without_a_public_url_there_is_no_authorization_server() {
    let sim = sim();
    let srv = Serve::start(&sim, &[]);
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
        "/authorize",
        "/oauth/login",
    ] {
        let r = request(&srv.addr, "GET", path, &[], "");
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    for path in ["/token", "/register", "/revoke"] {
        let r = request(&srv.addr, "POST", path, &[], "");
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    let r = post(&srv, "/mcp", &[], &init_body());
    assert_eq!(r.status, 401);
    let challenge = r.header("WWW-Authenticate").unwrap();
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
}

#[test]
fn full_flow_refresh_rotation_reuse_detection_and_revocation() {
    let sim = sim();
    let (srv, base) = start(&sim, &[]);
    let client = public_client(&srv);

    // The sign-in page: a form with its CSRF token, a strict CSP, no script.
    let (verifier, challenge) = pkce();
    let resource = format!("{base}/mcp");
    let page = open_sign_in(
        &srv,
        &authorize_path(&client, &challenge, &[("resource", &resource)]),
    );
    let csp = page.resp.header("Content-Security-Policy").unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:45999"),
        "{csp}"
    );
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(!page.resp.body.contains("<script"));
    assert!(
        page.resp.body.contains("Test &lt;app&gt;"),
        "client name escaped"
    );
    assert!(page.cookie.starts_with("kmcsrf_"));
    let set_cookie = page.resp.header("Set-Cookie").unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );

    // A wrong secret: the form again, 401, with the message.
    let r = submit(&srv, &page, SLUG_A, "wrong-secret-wrong-secret");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("Invalid user slug or auth secret."));
    assert!(r.body.contains("role=\"alert\""));
    // Another user's slug with this user's secret: refused the same way.
    let r = submit(&srv, &page, SLUG_B, SECRET_A);
    assert_eq!(r.status, 401);

    // The right pair: back to the application with code, state and issuer.
    let r = submit(&srv, &page, SLUG_A, SECRET_A);
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("Location").unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(loc);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], format!("{base}/"));
    let code = q["code"].clone();

    let r = post_form(
        &srv,
        "/token",
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", &verifier),
            ("resource", &resource),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    let j = r.json();
    assert_eq!(j["expires_in"], 3600);
    let access1 = j["access_token"].as_str().unwrap().to_string();
    let refresh1 = j["refresh_token"].as_str().unwrap().to_string();
    assert!(access1.starts_with("kmat_") && refresh1.starts_with("kmrt_"));

    // The token acts as the user who signed in, and only as them.
    assert_eq!(whoami(&srv, &access1).unwrap(), "tony_teamlead");
    let (access_b, _) = tokens(&srv, &client, SLUG_B, SECRET_B);
    assert_eq!(whoami(&srv, &access_b).unwrap(), "john_user");

    // serverInfo never names the slug.
    let r = post(
        &srv,
        "/mcp",
        &[("Authorization", &format!("Bearer {access1}"))],
        &init_body(),
    );
    assert!(!r.body.contains(SLUG_A), "{}", r.body);

    // Refresh: a new pair; the old access token stops working at once.
    let r = refresh(&srv, &client, &refresh1);
    assert_eq!(r.status, 200, "{r:?}");
    let access2 = r.json()["access_token"].as_str().unwrap().to_string();
    let refresh2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    assert_eq!(whoami(&srv, &access1).unwrap_err().status, 401);
    assert_eq!(whoami(&srv, &access2).unwrap(), "tony_teamlead");

    // Another client cannot redeem this client's refresh token.
    let other = public_client(&srv);
    let r = refresh(&srv, &other, &refresh2);
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));

    // Reuse of the rotated refresh token revokes the whole grant, current pair included.
    let r = refresh(&srv, &client, &refresh1);
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(whoami(&srv, &access2).unwrap_err().status, 401);
    let r = refresh(&srv, &client, &refresh2);
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));
    // The other user's sign-in is untouched.
    assert_eq!(whoami(&srv, &access_b).unwrap(), "john_user");

    // Revocation (RFC 7009): revoking the refresh token ends the access token too.
    let (access3, refresh3) = tokens(&srv, &client, SLUG_A, SECRET_A);
    assert_eq!(whoami(&srv, &access3).unwrap(), "tony_teamlead");
    let r = post_form(
        &srv,
        "/revoke",
        &[],
        &[("token", &refresh3), ("client_id", &client)],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(whoami(&srv, &access3).unwrap_err().status, 401);
    let r = refresh(&srv, &client, &refresh3);
    assert_eq!(oauth_error(&r), "invalid_grant");
    // An unknown token is not an error; another client cannot revoke someone's grant.
    let r = post_form(
        &srv,
        "/revoke",
        &[],
        &[("token", "kmrt_unknown"), ("client_id", &client)],
    );
    assert_eq!(r.status, 200);
    let (access4, _) = tokens(&srv, &client, SLUG_A, SECRET_A);
    let r = post_form(
        &srv,
        "/revoke",
        &[],
        &[("token", &access4), ("client_id", &other)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(whoami(&srv, &access4).unwrap(), "tony_teamlead");
    // Revoking the access token ends its refresh token as well.
    let r = post_form(
        &srv,
        "/revoke",
        &[],
        &[("token", &access4), ("client_id", &client)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(whoami(&srv, &access4).unwrap_err().status, 401);

    // Nothing secret in the logs.
    let logs = srv.logs();
    for secret in [
        SLUG_A, SECRET_A, SECRET_B, &code, &access1, &refresh1, &access2, &refresh2, &verifier,
        &page.csrf,
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    assert!(logs.contains("oauth: kimai-user-3 signed in"), "{logs}");
}

#[test]
fn token_endpoint_errors_follow_rfc_6749() {
    let sim = sim();
    let (srv, _) = start(&sim, &[]);
    let client = public_client(&srv);

    // Wrong verifier.
    let (code, _) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let (wrong, _) = pkce();
    let r = exchange(&srv, &client, &code, &wrong);
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));
    // …and the code is gone after that attempt.
    let r = exchange(&srv, &client, &code, &wrong);
    assert_eq!(oauth_error(&r), "invalid_grant");

    // A verifier of the wrong shape.
    let (code, _) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let r = exchange(&srv, &client, &code, "short");
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (400, "invalid_request")
    );

    // Reused code: refused, and the tokens of its first use are revoked.
    let (code, verifier) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let r = exchange(&srv, &client, &code, &verifier);
    assert_eq!(r.status, 200);
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&srv, &access).unwrap(), "tony_teamlead");
    let r = exchange(&srv, &client, &code, &verifier);
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));
    assert_eq!(whoami(&srv, &access).unwrap_err().status, 401);

    // Wrong redirect URI.
    let (code, verifier) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let r = post_form(
        &srv,
        "/token",
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:45999/other"),
            ("client_id", &client),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));

    // The code of one client redeemed by another.
    let other = public_client(&srv);
    let (code, verifier) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let r = exchange(&srv, &other, &code, &verifier);
    assert_eq!((r.status, oauth_error(&r).as_str()), (400, "invalid_grant"));

    // A resource that is not this server (RFC 8707).
    let (code, verifier) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let r = post_form(
        &srv,
        "/token",
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", &verifier),
            ("resource", "https://evil.example/mcp"),
        ],
    );
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (400, "invalid_target")
    );

    // Unknown client: 401 invalid_client.
    let r = exchange(&srv, "kmc_unknown", "x", &pkce().0);
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (401, "invalid_client")
    );
    // Unsupported grant type; missing grant type; a repeated parameter; not a form.
    let r = post_form(
        &srv,
        "/token",
        &[],
        &[("grant_type", "password"), ("client_id", &client)],
    );
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (400, "unsupported_grant_type")
    );
    let r = post_form(&srv, "/token", &[], &[("client_id", &client)]);
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (400, "invalid_request")
    );
    let r = request(
        &srv.addr,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id={client}"),
    );
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (400, "invalid_request")
    );
    let r = request(
        &srv.addr,
        "POST",
        "/token",
        &[("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (400, "invalid_request")
    );
    // GET is not the token endpoint's method.
    let r = request(&srv.addr, "GET", "/token", &[], "");
    assert_eq!(r.status, 405);
}

#[test]
fn confidential_clients_authenticate_with_their_secret() {
    let sim = sim();
    let (srv, _) = start(&sim, &[]);
    // Default method (RFC 7591): client_secret_basic.
    let r = register(
        &srv,
        json!({"redirect_uris": [REDIRECT], "client_name": "Server app"}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let j = r.json();
    assert_eq!(j["token_endpoint_auth_method"], "client_secret_basic");
    let id = j["client_id"].as_str().unwrap().to_string();
    let secret = j["client_secret"].as_str().unwrap().to_string();
    let basic = |id: &str, secret: &str| {
        let pair = format!("{id}:{secret}");
        format!("Basic {}", kimai_mcp::oauth::b64_std(pair.as_bytes()))
    };

    let (code, verifier) = sign_in(&srv, &id, SLUG_B, SECRET_B);
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    // Without credentials, with a wrong secret, and with the secret in the body although the
    // client registered Basic: all invalid_client.
    let r = post_form(&srv, "/token", &[], &pairs);
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (401, "invalid_client")
    );
    let wrong = basic(&id, "kmcs_wrong");
    let r = post_form(&srv, "/token", &[("Authorization", &wrong)], &pairs);
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (401, "invalid_client")
    );
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"kimai-mcp\"")
    );
    let mut in_body = pairs.to_vec();
    in_body.push(("client_id", &id));
    in_body.push(("client_secret", &secret));
    let r = post_form(&srv, "/token", &[], &in_body);
    assert_eq!(
        (r.status, oauth_error(&r).as_str()),
        (401, "invalid_client")
    );
    // The right credentials (the code survived the failed client authentications).
    let right = basic(&id, &secret);
    let r = post_form(&srv, "/token", &[("Authorization", &right)], &pairs);
    assert_eq!(r.status, 200, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&srv, &access).unwrap(), "john_user");

    // client_secret_post.
    let r = register(
        &srv,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
    );
    let j = r.json();
    let id = j["client_id"].as_str().unwrap().to_string();
    let secret = j["client_secret"].as_str().unwrap().to_string();
    let (code, verifier) = sign_in(&srv, &id, SLUG_B, SECRET_B);
    let r = post_form(
        &srv,
        "/token",
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn registration_and_authorization_refuse_bad_input() {
    let sim = sim();
    let (srv, _) = start(&sim, &[]);
    let bad = [
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["/relative"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_client_metadata"),
    ];
    for (meta, error) in bad {
        let r = register(&srv, meta.clone());
        assert_eq!((r.status, oauth_error(&r).as_str()), (400, error), "{meta}");
    }
    // Native-app redirects: loopback http and a private-use scheme are fine.
    let r = register(
        &srv,
        json!({"redirect_uris": ["http://localhost:8123/cb", "com.example.app:/oauth", "https://claude.ai/api/mcp/auth_callback"], "token_endpoint_auth_method": "none"}),
    );
    assert_eq!(r.status, 201, "{r:?}");

    let client = public_client(&srv);
    let (_, challenge) = pkce();
    // Errors that must not redirect (the client or redirect cannot be trusted): 400 page.
    for path in [
        authorize_path("kmc_unknown", &challenge, &[]),
        authorize_path(&client, &challenge, &[("client_id", "")]),
        authorize_path(
            &client,
            &challenge,
            &[("redirect_uri", "http://127.0.0.1:45999/elsewhere")],
        ),
        format!("{}&state=again", authorize_path(&client, &challenge, &[])),
    ] {
        let r = request(&srv.addr, "GET", &path, &[], "");
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert!(r.header("Location").is_none());
        assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    }
    // Errors that go back to the (verified) redirect URI, with state and iss.
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("resource", "https://evil.example/mcp")],
            "invalid_target",
        ),
    ] {
        let path = authorize_path(&client, &challenge, &extra);
        let r = request(&srv.addr, "GET", &path, &[], "");
        assert_eq!(r.status, 302, "{extra:?}: {r:?}");
        let loc = r.header("Location").unwrap();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        let q = query_of(loc);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st-123");
        assert!(q.contains_key("iss"));
    }
    // An unknown or expired sign-in request.
    let r = request(&srv.addr, "GET", "/oauth/login?txn=nope", &[], "");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Invalid or expired authorization request"));
}

#[test]
fn the_sign_in_form_is_csrf_safe_and_rate_limited() {
    let sim = sim();
    let (srv, base) = start(&sim, &[]);
    let client = public_client(&srv);
    let (_, challenge) = pkce();
    let page = open_sign_in(&srv, &authorize_path(&client, &challenge, &[]));
    let fields = [
        ("txn", page.txn.as_str()),
        ("csrf", page.csrf.as_str()),
        ("username", SLUG_A),
        ("secret", SECRET_A),
    ];
    // No cookie, a wrong cookie, a wrong field, a foreign Origin: all refused, no code.
    let wrong_cookie = format!("{}=x{}", page.cookie.split('=').next().unwrap(), page.csrf);
    let mut wrong_field = fields.to_vec();
    wrong_field[1] = ("csrf", "forged");
    for (headers, pairs) in [
        (vec![], fields.to_vec()),
        (vec![("Cookie", wrong_cookie.as_str())], fields.to_vec()),
        (vec![("Cookie", page.cookie.as_str())], wrong_field),
        (
            vec![
                ("Cookie", page.cookie.as_str()),
                ("Origin", "https://evil.example"),
            ],
            fields.to_vec(),
        ),
    ] {
        let r = post_form(&srv, "/oauth/login", &headers, &pairs);
        assert_eq!(r.status, 403, "{headers:?}: {r:?}");
        assert!(r.header("Location").is_none());
    }
    // Cancel: back to the application with access_denied.
    let r = post_form(
        &srv,
        "/oauth/login",
        &[("Cookie", &page.cookie)],
        &[("txn", &page.txn), ("csrf", &page.csrf), ("action", "deny")],
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        query_of(r.header("Location").unwrap())["error"],
        "access_denied"
    );

    // A browser's own POST: Origin is this server (or "null" when withheld) and the cookie is
    // there: accepted.
    for origin in [base.as_str(), "null"] {
        let page = open_sign_in(&srv, &authorize_path(&client, &challenge, &[]));
        assert_eq!(page.resp.header("Referrer-Policy"), Some("same-origin"));
        let r = post_form(
            &srv,
            "/oauth/login",
            &[("Cookie", &page.cookie), ("Origin", origin)],
            &[
                ("txn", &page.txn),
                ("csrf", &page.csrf),
                ("username", SLUG_A),
                ("secret", SECRET_A),
            ],
        );
        assert_eq!(r.status, 302, "Origin {origin}: {r:?}");
        assert!(query_of(r.header("Location").unwrap()).contains_key("code"));
    }

    // Five wrong attempts end a sign-in request.
    let page = open_sign_in(&srv, &authorize_path(&client, &challenge, &[]));
    for i in 0..5 {
        let r = submit(&srv, &page, SLUG_A, "not-the-secret");
        assert_eq!(
            r.status,
            if i < 4 { 401 } else { 400 },
            "attempt {i}: {r:?}"
        );
    }
    let r = submit(&srv, &page, SLUG_A, SECRET_A);
    assert_eq!(r.status, 400, "the request is closed");
    // More than 10 failures in a minute block the address, even for the right secret.
    for _ in 0..2 {
        let page = open_sign_in(&srv, &authorize_path(&client, &challenge, &[]));
        for _ in 0..3 {
            submit(&srv, &page, SLUG_B, "not-the-secret");
        }
    }
    let page = open_sign_in(&srv, &authorize_path(&client, &challenge, &[]));
    let r = submit(&srv, &page, SLUG_A, SECRET_A);
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.header("Retry-After").is_some());
    assert!(r.body.contains("Too many failed sign-ins"));
}

#[test]
fn access_tokens_expire() {
    let sim = sim();
    let (srv, _) = start(&sim, &["--access-token-ttl", "1"]);
    let client = public_client(&srv);
    let (code, verifier) = sign_in(&srv, &client, SLUG_A, SECRET_A);
    let r = exchange(&srv, &client, &code, &verifier);
    assert_eq!(r.json()["expires_in"], 1);
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let refresh_token = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&srv, &access).unwrap(), "tony_teamlead");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let r = whoami(&srv, &access).unwrap_err();
    assert_eq!(r.status, 401);
    assert!(
        r.header("WWW-Authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // The refresh token still works and gives a fresh access token.
    let r = refresh(&srv, &client, &refresh_token);
    assert_eq!(r.status, 200, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&srv, &access).unwrap(), "tony_teamlead");
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn a_user_removed_on_reload_is_signed_out_at_once() {
    let sim = sim();
    let (srv, _) = start(&sim, &[]);
    let client = public_client(&srv);
    let (access_a, refresh_a) = tokens(&srv, &client, SLUG_A, SECRET_A);
    let (access_b, _) = tokens(&srv, &client, SLUG_B, SECRET_B);
    let auth_a = format!("Bearer {access_a}");
    let sid = session(&srv, "/mcp", &[("Authorization", &auth_a)]);

    // Remove A; keep B.
    let mut body = users(&sim);
    body.as_object_mut().unwrap().remove(SLUG_A);
    std::fs::write(srv.users_path(), body.to_string()).unwrap();
    kill(srv.pid(), "HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !srv.logs().contains("OAuth sign-in(s)") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        srv.logs().contains("1 OAuth sign-in(s) of removed users"),
        "{}",
        srv.logs()
    );
    assert_eq!(whoami(&srv, &access_a).unwrap_err().status, 401);
    let r = post(
        &srv,
        "/mcp",
        &[
            ("Authorization", &auth_a),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        &call(3, "user_current", json!({})),
    );
    assert_eq!(r.status, 401, "{r:?}");
    let r = refresh(&srv, &client, &refresh_a);
    assert_eq!(oauth_error(&r), "invalid_grant");
    assert_eq!(whoami(&srv, &access_b).unwrap(), "john_user");

    // A new auth_secret for B ends B's sign-ins too.
    body[SLUG_B]["auth_secret"] = json!("a-brand-new-secret-for-john");
    std::fs::write(srv.users_path(), body.to_string()).unwrap();
    kill(srv.pid(), "HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while whoami(&srv, &access_b).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(whoami(&srv, &access_b).unwrap_err().status, 401);
}

#[test]
fn the_state_file_keeps_clients_and_sign_ins_across_a_restart() {
    let sim = sim();
    let dir = TempDir::new();
    let state = dir.0.join("oauth-state.json");
    let state_arg = state.to_str().unwrap().to_string();
    let body = users(&sim);
    let port = free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let args = [
        "--port",
        &port,
        "--public-url",
        &base,
        "--rate-limit-rpm",
        "0",
        "--oauth-state-file",
        &state_arg,
    ];
    let journal = dir.0.join("oauth-state.json.journal");
    let srv = Serve::start_with(&sim, &body, &args, "debug");
    // The snapshot is written at start; changes go to the journal next to it, one line each.
    let snapshot = std::fs::read_to_string(&state).unwrap();
    let client = public_client(&srv);
    let (access, refresh_token) = tokens(&srv, &client, SLUG_A, SECRET_A);
    for file in [&state, &journal] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    assert_eq!(std::fs::read_to_string(&state).unwrap(), snapshot);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(
        text.lines().count(),
        2,
        "a registration and a grant: {text}"
    );
    assert!(text.contains(&client));
    assert!(!text.contains(&refresh_token) && !text.contains(&access));
    // Killed, not stopped: everything acknowledged is on disk already.
    drop(srv);

    let srv = Serve::start_with(&sim, &body, &args, "debug");
    // Access tokens live in memory only; the refresh token survives the restart.
    assert_eq!(whoami(&srv, &access).unwrap_err().status, 401);
    let r = refresh(&srv, &client, &refresh_token);
    assert_eq!(r.status, 200, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&srv, &access).unwrap(), "tony_teamlead");
    // The client is still registered: a new sign-in works without registering again.
    tokens(&srv, &client, SLUG_B, SECRET_B);
    drop(srv);

    // A state file that cannot be read stops the server with the way out.
    std::fs::write(&state, "{not json").unwrap();
    let mut cmd = Command::new(crate::util::bin());
    let users_file = dir.0.join("users.json");
    std::fs::write(&users_file, body.to_string()).unwrap();
    let out = cmd
        .args(["serve", "--port", "0", "--users-config"])
        .arg(&users_file)
        .args(["--public-url", &base, "--oauth-state-file", &state_arg])
        .env_remove("MCP_SERVER_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("move it and"), "{err}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{not json");
}

#[test]
fn legacy_slugs_can_be_turned_off() {
    let sim = sim();
    let (srv, _) = start(&sim, &["--disable-legacy-slugs"]);
    let r = post(&srv, &format!("/mcp/{SLUG_A}"), &[], &init_body());
    assert_eq!(r.status, 404, "{r:?}");
    // OAuth and the server-token header mode still work.
    let client = public_client(&srv);
    let (access, _) = tokens(&srv, &client, SLUG_A, SECRET_A);
    assert_eq!(whoami(&srv, &access).unwrap(), "tony_teamlead");
    let auth = format!("Bearer {SERVER_TOKEN}");
    let kimai = sim.token("anna_admin").unwrap();
    session(
        &srv,
        "/mcp",
        &[("Authorization", &auth), ("X-Kimai-Token", &kimai)],
    );
    // Without the flag, the slug route works and never shows the slug in serverInfo.
    let (srv, _) = start(&sim, &[]);
    let r = post(&srv, &format!("/mcp/{SLUG_A}"), &[], &init_body());
    assert_eq!(r.status, 200);
    assert!(!r.body.contains(SLUG_A));
    assert_eq!(r.json()["result"]["serverInfo"]["name"], "kimai-mcp");
}

#[test]
fn users_without_an_auth_secret_cannot_sign_in() {
    let sim = sim();
    let mut body = users(&sim);
    body[SLUG_B].as_object_mut().unwrap().remove("auth_secret");
    let (srv, _) = start_users(&sim, &body, &[]);
    let client = public_client(&srv);
    let (_, challenge) = pkce();
    let page = open_sign_in(&srv, &authorize_path(&client, &challenge, &[]));
    // Whatever is typed as the secret, B cannot sign in (not even with A's secret or empty).
    for secret in [SECRET_A, SECRET_B, "x"] {
        let r = submit(&srv, &page, SLUG_B, secret);
        assert_eq!(r.status, 401, "{r:?}");
    }
    assert_eq!(
        post(&srv, "/mcp", &[("Accept", JSON_SSE)], &init_body()).status,
        401
    );
}

#[test]
fn public_url_is_checked() {
    for (url, problem) in [
        ("http://mcp.example.com", "must be https://"),
        ("https://mcp.example.com/kimai", "origin only"),
        ("ftp://x", "public address"),
    ] {
        let (code, _out, err) = crate::util::run(&["serve", "--public-url", url], &[]);
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains(problem), "{url}: {err}");
    }
    let (code, _, err) = crate::util::run(&["serve", "--oauth-state-file", "/tmp/x"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs --public-url"), "{err}");
}

#[test]
fn the_legacy_sse_transport_accepts_an_access_token() {
    let sim = sim();
    let (srv, _) = start(&sim, &[]);
    let client = public_client(&srv);
    let (access, _) = tokens(&srv, &client, SLUG_B, SECRET_B);
    let auth = format!("Bearer {access}");
    let mut stream = crate::sse::Stream::open(&srv.addr, &[("Authorization", &auth)]);
    assert_eq!(stream.status, 200, "{}", stream.head);
    let (name, endpoint) = stream
        .event(std::time::Duration::from_secs(5))
        .expect("endpoint event");
    assert_eq!(name, "endpoint");
    let r = post_json(&srv, &endpoint, &auth, &init_body());
    assert_eq!(r.status, 202, "{r:?}");
    stream
        .event(std::time::Duration::from_secs(5))
        .expect("initialize result");
    post_json(
        &srv,
        &endpoint,
        &auth,
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    let r = post_json(&srv, &endpoint, &auth, &call(2, "user_current", json!({})));
    assert_eq!(r.status, 202);
    let (_, data) = stream
        .event(std::time::Duration::from_secs(5))
        .expect("tool result");
    assert!(data.contains("Username: john_user"), "{data}");
    // Without a token: 401 with the resource metadata.
    let s = crate::sse::Stream::open(&srv.addr, &[]);
    assert_eq!(s.status, 401);
    assert!(s.head.contains("resource_metadata="), "{}", s.head);
}

fn post_json(srv: &Serve, path: &str, auth: &str, body: &Value) -> Resp {
    request(
        &srv.addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", auth),
        ],
        &body.to_string(),
    )
}

/// The token response of a sign-in of `slug` with `extra` authorization parameters.
fn token_response(
    srv: &Serve,
    client: &str,
    slug: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> Value {
    let (code, verifier) = sign_in_with(srv, client, slug, secret, extra);
    let r = exchange(srv, client, &code, &verifier);
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

fn refresh_scoped(srv: &Serve, client_id: &str, token: &str, scope: &str) -> Resp {
    post_form(
        srv,
        "/token",
        &[],
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
            ("scope", scope),
        ],
    )
}

/// An initialized `/mcp` session for an access token: the headers of its requests.
fn mcp_headers(srv: &Serve, access: &str) -> Vec<(&'static str, String)> {
    let auth = format!("Bearer {access}");
    let sid = session(srv, "/mcp", &[("Authorization", &auth)]);
    vec![
        ("Authorization", auth),
        ("Mcp-Session-Id", sid),
        ("MCP-Protocol-Version", "2025-11-25".into()),
    ]
}

fn post_with(srv: &Serve, headers: &[(&'static str, String)], body: &Value) -> Resp {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post(srv, "/mcp", &h, body)
}

/// A tool call's text, which must not be an error result.
fn call_ok(srv: &Serve, headers: &[(&'static str, String)], body: &Value) -> String {
    let r = post_with(srv, headers, body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["result"]["isError"], false, "{}", r.body);
    tool_text(&r)
}

/// The first `#id` of a record list.
fn first_record(text: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix('#'))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record in {text}"))
}

/// The parts of the step-up challenge a write with a read-only token gets.
fn assert_insufficient_scope(r: &Resp, base: &str, id: Value) {
    assert_eq!(r.status, 403, "{r:?}");
    let challenge = r.header("WWW-Authenticate").unwrap();
    let expected = format!(
        "Bearer error=\"insufficient_scope\", scope=\"kimai:read kimai:write\", resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", error_description=\""
    );
    assert!(challenge.starts_with(&expected), "{challenge}");
    assert!(
        challenge.contains("needs the scope kimai:write") && challenge.ends_with('"'),
        "{challenge}"
    );
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], id, "{body}");
    assert_eq!(body["error"]["code"], -32000);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Insufficient scope: ") && message.contains("kimai:write"),
        "{message}"
    );
}

#[test]
fn a_read_only_sign_in_reads_and_its_writes_never_reach_kimai() {
    let sim = sim();
    let (srv, base) = start(&sim, &[]);
    let client = public_client(&srv);

    // A sign-in without scope gets both, and may write.
    let full = token_response(&srv, &client, SLUG_A, SECRET_A, &[]);
    assert_eq!(full["scope"], "kimai:read kimai:write");
    let full_headers = mcp_headers(&srv, full["access_token"].as_str().unwrap());
    let recent = call_ok(
        &srv,
        &full_headers,
        &call(2, "timer", json!({"action": "recent", "size": 1})),
    );
    let record = first_record(&recent);
    let writes = sim.write_count();
    let text = call_ok(
        &srv,
        &full_headers,
        &call(
            3,
            "timesheet",
            json!({"action": "create", "data": {"project": 1, "activity": 1, "begin": "2026-01-13T08:00", "end": "2026-01-13T09:00", "description": "scope probe full"}}),
        ),
    );
    assert!(text.starts_with("Created timesheet ID"), "{text}");
    assert_eq!(sim.write_count(), writes + 1);

    // A read-only sign-in: reads work ...
    let read = token_response(&srv, &client, SLUG_A, SECRET_A, &[("scope", "kimai:read")]);
    assert_eq!(read["scope"], "kimai:read");
    let access = read["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&srv, &access).unwrap(), "tony_teamlead");
    let h = mcp_headers(&srv, &access);
    let projects = call_ok(
        &srv,
        &h,
        &call(2, "entity", json!({"type": "project", "action": "list"})),
    );
    assert!(!projects.is_empty());
    call_ok(
        &srv,
        &h,
        &call(3, "timesheet", json!({"action": "get", "id": record})),
    );

    // ... a write is refused with 403 and the step-up challenge, before Kimai hears of it:
    // in the session, in a batch with a read, in a session the full token opened, as a
    // 2026-07-28 request without a session, and on the legacy SSE transport.
    sim.clear_requests();
    let writes = sim.write_count();
    let create = json!({"action": "create", "data": {"project": 1, "activity": 1, "begin": "2026-01-13T09:00", "end": "2026-01-13T10:00", "description": "scope probe read"}});
    let r = post_with(&srv, &h, &call(4, "timesheet", create.clone()));
    assert_insufficient_scope(&r, &base, json!(4));
    let batch = json!([
        call(5, "user_current", json!({})),
        call(6, "timer", json!({"action": "stop", "id": record}))
    ]);
    let r = post_with(&srv, &h, &batch);
    assert_insufficient_scope(&r, &base, Value::Null);
    let mut in_full_session = full_headers.clone();
    in_full_session[0].1 = format!("Bearer {access}");
    let r = post_with(
        &srv,
        &in_full_session,
        &call(7, "timesheet", json!({"action": "delete", "id": record})),
    );
    assert_insufficient_scope(&r, &base, json!(7));
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let auth = format!("Bearer {access}");
    let r = post(
        &srv,
        "/mcp",
        &[
            ("Authorization", &auth),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "timesheet"),
        ],
        &json!({"jsonrpc": "2.0", "id": "w-8", "method": "tools/call", "params": {"_meta": meta, "name": "timesheet", "arguments": create}}),
    );
    assert_insufficient_scope(&r, &base, json!("w-8"));
    let mut stream = crate::sse::Stream::open(&srv.addr, &[("Authorization", &auth)]);
    assert_eq!(stream.status, 200, "{}", stream.head);
    let (_, endpoint) = stream
        .event(std::time::Duration::from_secs(5))
        .expect("endpoint event");
    let r = post_json(&srv, &endpoint, &auth, &init_body());
    assert_eq!(r.status, 202, "{r:?}");
    stream
        .event(std::time::Duration::from_secs(5))
        .expect("initialize result");
    sim.clear_requests();
    let r = post_json(
        &srv,
        &endpoint,
        &auth,
        &call(9, "timer", json!({"action": "favorite", "id": record})),
    );
    assert_insufficient_scope(&r, &base, json!(9));
    // A read on the same stream still works.
    let r = post_json(&srv, &endpoint, &auth, &call(10, "user_current", json!({})));
    assert_eq!(r.status, 202, "{r:?}");
    let (_, data) = stream
        .event(std::time::Duration::from_secs(5))
        .expect("tool result");
    assert!(
        data.contains("\"id\":10") && data.contains("Username: tony_teamlead"),
        "{data}"
    );
    assert_eq!(sim.write_count(), writes, "Kimai saw a write");
    assert!(
        sim.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        sim.requests()
    );
    // Of the two records created that day, only the full token's exists; the one to be
    // deleted is still there.
    let listed = call_ok(
        &srv,
        &full_headers,
        &call(
            11,
            "timesheet",
            json!({"action": "list", "filters": {"term": "scope probe", "begin": "2026-01-13", "end": "2026-01-13"}}),
        ),
    );
    assert!(
        listed.contains("scope probe full") && !listed.contains("scope probe read"),
        "{listed}"
    );
    call_ok(
        &srv,
        &full_headers,
        &call(12, "timesheet", json!({"action": "get", "id": record})),
    );
}

#[test]
fn scopes_are_chosen_at_sign_in_and_only_narrowed_at_refresh() {
    let sim = sim();
    let (srv, base) = start(&sim, &[]);
    let client = public_client(&srv);
    // kimai:write alone is both; scopes of other servers are ignored, and the token response
    // says what was granted.
    let t = token_response(&srv, &client, SLUG_B, SECRET_B, &[("scope", "kimai:write")]);
    assert_eq!(t["scope"], "kimai:read kimai:write");
    let r = token_response(
        &srv,
        &client,
        SLUG_B,
        SECRET_B,
        &[("scope", "openid kimai:read offline_access")],
    );
    assert_eq!(r["scope"], "kimai:read");
    let r = token_response(
        &srv,
        &client,
        SLUG_B,
        SECRET_B,
        &[("scope", "openid profile")],
    );
    assert_eq!(r["scope"], "kimai:read kimai:write");

    // A full sign-in refreshed to read only: that access token cannot write ...
    let refresh_token = t["refresh_token"].as_str().unwrap();
    let r = refresh_scoped(&srv, &client, refresh_token, "kimai:read");
    assert_eq!(r.status, 200, "{r:?}");
    let narrowed = r.json();
    assert_eq!(narrowed["scope"], "kimai:read");
    let h = mcp_headers(&srv, narrowed["access_token"].as_str().unwrap());
    let r = post_with(
        &srv,
        &h,
        &call(
            2,
            "timer",
            json!({"action": "start", "data": {"project": 1, "activity": 1}}),
        ),
    );
    assert_insufficient_scope(&r, &base, json!(2));
    // ... the grant still has both: the next refresh without scope gets them back.
    let r = refresh(&srv, &client, narrowed["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["scope"], "kimai:read kimai:write");

    // A read-only sign-in cannot refresh its way to writing.
    let read = token_response(&srv, &client, SLUG_B, SECRET_B, &[("scope", "kimai:read")]);
    let refresh_token = read["refresh_token"].as_str().unwrap();
    for scope in ["kimai:write", "kimai:read kimai:write", "kimai:admin"] {
        let r = refresh_scoped(&srv, &client, refresh_token, scope);
        assert_eq!(
            (r.status, oauth_error(&r).as_str()),
            (400, "invalid_scope"),
            "{scope}: {r:?}"
        );
    }
    // The refused refreshes used nothing up.
    let r = refresh(&srv, &client, refresh_token);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["scope"], "kimai:read");
}
