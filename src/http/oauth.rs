//! The HTTP side of the OAuth authorization server (`crate::oauth`): the metadata documents,
//! `/register`, `/authorize`, the sign-in page at `/oauth/login`, `/token` and `/revoke`. With
//! `--auth-backend oidc` the sign-in page sends the person on to the identity provider instead
//! of asking for a slug and secret; that page and `/oauth/oidc/callback` are in `http::oidc`.
//!
//! Browser-facing parts: `/authorize` sends the browser to `/oauth/login?txn=…`, a small HTML
//! form (no script, no external resource; its CSP allows only its own inline style, found by
//! hash, and form submission to itself and to the application's redirect origin). CSRF: the
//! page sets a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/oauth`) whose value is also a
//! hidden field; a POST must carry both, equal to the request's own token, and an `Origin`, if
//! any, of this server. Wrong credentials are answered after the enumeration guard's delay and
//! counted against the address (too many block it, as for unknown slugs); the pending request
//! dies after five failures. Every attempt also takes its turn in the schedule of the user name
//! it names (`oauth::throttle`): after a few failures for one user, from any addresses, its
//! attempts are spaced by a growing delay, never refused to a person with the right secret.
//!
//! `/register` and `/authorize` are open to anyone, so `oauth` bounds what they create per
//! client address (`ctx.key`: the forwarded address behind a trusted proxy, an IPv6 /64).
//!
//! The JSON endpoints (metadata, register, token, revoke) answer any origin (`*`, no
//! credentials): applications in a browser call them, and they carry no cookie.

use super::app::{App, Ctx};
use super::reply::{json_error, method_not_allowed, with_header};
use super::server::{Handled, Request, Response};
use crate::guard;
use crate::mcp::code;
use crate::oauth::{self, AuthorizeError, OAuthError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Whether a path belongs to the authorization server (these skip the general Origin check:
/// the JSON endpoints allow any origin, the sign-in form checks its own).
pub fn is_oauth_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        [".well-known", "oauth-protected-resource", ..]
            | [".well-known", "oauth-authorization-server", ..]
            | ["authorize"]
            | ["token"]
            | ["register"]
            | ["revoke"]
            | ["oauth", "login"]
            | ["oauth", "oidc", "callback"]
    )
}

/// Routes an authorization-server path. With OAuth off every one of them is 404, so that
/// clients stop looking for an authorization server at once (`mcp/protocol.md` §7.3).
pub fn route(app: &Arc<App>, ctx: &Ctx, req: &Request, segs: &[&str]) -> Result<Handled, Handled> {
    let Some(oauth) = app.oauth.as_ref() else {
        return Err(json_error(404, code::SERVER_ERROR, "Not Found"));
    };
    match segs {
        [".well-known", "oauth-protected-resource"]
        | [".well-known", "oauth-protected-resource", "mcp"] => {
            metadata(req, oauth.resource_metadata())
        }
        [".well-known", "oauth-authorization-server"] => metadata(req, oauth.server_metadata()),
        ["register"] => register(app, oauth, ctx, req),
        ["authorize"] => authorize(oauth, ctx, req),
        ["oauth", "login"] => match req.method.as_str() {
            "GET" | "HEAD" => login_page(app, oauth, req),
            "POST" => login_submit(app, oauth, ctx, req),
            _ => Err(html_error(405, "Use the sign-in form.")),
        },
        ["oauth", "oidc", "callback"] => super::oidc::callback(app, ctx, req),
        ["token"] => token(app, oauth, req),
        ["revoke"] => revoke(oauth, req),
        _ => Err(json_error(404, code::SERVER_ERROR, "Not Found")),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON endpoints
// ---------------------------------------------------------------------------------------------

fn cors(r: Response, methods: &str) -> Response {
    r.header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Allow-Methods", methods)
        .header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, MCP-Protocol-Version",
        )
        .header("Access-Control-Max-Age", "600")
}

fn json_reply(status: u16, body: &Value, methods: &str) -> Handled {
    Handled::Respond(cors(
        Response::new(status)
            .body("application/json", body.to_string())
            .header("Pragma", "no-cache"),
        methods,
    ))
}

fn oauth_error(e: &OAuthError, methods: &str, basic_used: bool) -> Handled {
    let mut r = cors(
        Response::new(e.status)
            .body("application/json", e.body().to_string())
            .header("Pragma", "no-cache"),
        methods,
    );
    if e.status == 401 && basic_used {
        r = r.header("WWW-Authenticate", "Basic realm=\"kimai-mcp\"");
    }
    if let Some(secs) = e.retry_after {
        r = r.header("Retry-After", secs.to_string());
    }
    Handled::Respond(r)
}

fn metadata(req: &Request, doc: Value) -> Result<Handled, Handled> {
    match req.method.as_str() {
        "GET" | "HEAD" => Ok(json_reply(200, &doc, "GET, OPTIONS")),
        "OPTIONS" => Ok(Handled::Respond(cors(Response::new(204), "GET, OPTIONS"))),
        _ => Err(method_not_allowed("GET")),
    }
}

fn is_form(req: &Request) -> bool {
    req.header("Content-Type").is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// The form parameters of a POST body, or an `invalid_request` error.
fn form(req: &Request, methods: &str) -> Result<HashMap<String, String>, Handled> {
    if !is_form(req) {
        return Err(oauth_error(
            &OAuthError::new(
                400,
                "invalid_request",
                "send the parameters as application/x-www-form-urlencoded",
            ),
            methods,
            false,
        ));
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| {
        oauth_error(
            &OAuthError::new(400, "invalid_request", "the body is not UTF-8"),
            methods,
            false,
        )
    })?;
    oauth::parse_form(text)
        .map_err(|d| oauth_error(&OAuthError::new(400, "invalid_request", d), methods, false))
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1: each part form-encoded).
/// `Err` for a malformed header.
fn basic_auth(req: &Request) -> Result<Option<(String, String)>, OAuthError> {
    let Some(h) = req.header("Authorization") else {
        return Ok(None);
    };
    let Some(b64) = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))
    else {
        return Err(OAuthError::new(
            401,
            "invalid_client",
            "client credentials go in Authorization: Basic or in the body",
        ));
    };
    let bad = || {
        OAuthError::new(
            401,
            "invalid_client",
            "the Authorization: Basic header is malformed",
        )
    };
    let raw = oauth::b64_decode(b64).ok_or_else(bad)?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        oauth::parse_form(&format!("v={s}"))
            .ok()
            .and_then(|m| m.get("v").cloned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

const TOKEN_METHODS: &str = "POST, OPTIONS";

fn register(
    app: &Arc<App>,
    oauth: &oauth::OAuth,
    ctx: &Ctx,
    req: &Request,
) -> Result<Handled, Handled> {
    match req.method.as_str() {
        "POST" => {}
        "OPTIONS" => return Ok(Handled::Respond(cors(Response::new(204), TOKEN_METHODS))),
        _ => return Err(method_not_allowed("POST")),
    }
    let json_type = req.header("Content-Type").is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    let meta: Value = match serde_json::from_slice(&req.body) {
        Ok(v) if json_type => v,
        _ => {
            return Err(oauth_error(
                &OAuthError::new(
                    400,
                    "invalid_client_metadata",
                    "send the client metadata as a JSON object (Content-Type: application/json)",
                ),
                TOKEN_METHODS,
                false,
            ));
        }
    };
    match oauth.register(&meta, ctx.key) {
        Ok(out) => {
            app.metrics.oauth("register");
            Ok(json_reply(201, &out, TOKEN_METHODS))
        }
        Err(e) => Err(oauth_error(&e, TOKEN_METHODS, false)),
    }
}

/// The common start of `/token` and `/revoke`: a POST with a form body and optional Basic client
/// credentials. Anything else is answered here (`Err`; the router sends `Ok` and `Err` alike),
/// a CORS preflight included.
type ClientPost = (HashMap<String, String>, Option<(String, String)>);

fn client_post(req: &Request) -> Result<ClientPost, Handled> {
    match req.method.as_str() {
        "POST" => {}
        "OPTIONS" => return Err(Handled::Respond(cors(Response::new(204), TOKEN_METHODS))),
        _ => return Err(method_not_allowed("POST")),
    }
    let p = form(req, TOKEN_METHODS)?;
    let basic = basic_auth(req).map_err(|e| oauth_error(&e, TOKEN_METHODS, true))?;
    Ok((p, basic))
}

fn token(app: &Arc<App>, oauth: &oauth::OAuth, req: &Request) -> Result<Handled, Handled> {
    let (p, basic) = client_post(req)?;
    let basic_used = basic.is_some();
    let user_ok = |slug: &str| app.may_sign_in(slug);
    match oauth.token(&p, basic, &user_ok) {
        Ok(t) => {
            app.metrics
                .oauth(match p.get("grant_type").map(String::as_str) {
                    Some("refresh_token") => "refresh",
                    _ => "code",
                });
            Ok(json_reply(
                200,
                &json!({
                    "access_token": t.access_token,
                    "token_type": "Bearer",
                    "expires_in": t.expires_in,
                    "refresh_token": t.refresh_token,
                    "scope": t.scopes.to_string(),
                }),
                TOKEN_METHODS,
            ))
        }
        Err(e) => {
            app.metrics.oauth("token_error");
            Err(oauth_error(&e, TOKEN_METHODS, basic_used))
        }
    }
}

fn revoke(oauth: &oauth::OAuth, req: &Request) -> Result<Handled, Handled> {
    let (p, basic) = client_post(req)?;
    let basic_used = basic.is_some();
    match oauth.revoke(&p, basic) {
        Ok(()) => Ok(json_reply(200, &json!({}), TOKEN_METHODS)),
        Err(e) => Err(oauth_error(&e, TOKEN_METHODS, basic_used)),
    }
}

// ---------------------------------------------------------------------------------------------
// Browser endpoints
// ---------------------------------------------------------------------------------------------

pub(super) fn redirect(location: &str) -> Handled {
    Handled::Respond(Response::new(302).header("Location", location))
}

fn authorize(oauth: &oauth::OAuth, ctx: &Ctx, req: &Request) -> Result<Handled, Handled> {
    let params = match req.method.as_str() {
        "GET" | "HEAD" => oauth::parse_form(&req.query),
        "POST" if is_form(req) => oauth::parse_form(&String::from_utf8_lossy(&req.body)),
        "POST" => {
            return Err(html_error(
                400,
                "The authorization request must be a GET with a query string or a form POST.",
            ));
        }
        _ => return Err(method_not_allowed("GET, POST")),
    };
    let params = params.map_err(|d| {
        html_error(
            400,
            &format!("The authorization request is malformed: {d}."),
        )
    })?;
    match oauth.authorize(&params, ctx.key) {
        Ok(id) => Ok(redirect(&format!("/oauth/login?txn={id}"))),
        Err(AuthorizeError::Page(msg)) => Err(html_error(400, &msg)),
        Err(AuthorizeError::Redirect(url)) => Err(redirect(&url)),
        Err(AuthorizeError::Busy(msg, secs)) => Err(with_header(
            html_error(503, &msg),
            "Retry-After",
            &secs.to_string(),
        )),
        Err(AuthorizeError::TooMany(msg, secs)) => Err(with_header(
            html_error(429, &msg),
            "Retry-After",
            &secs.to_string(),
        )),
    }
}

/// The CSRF cookie's name for a pending request (one per request, so that two sign-ins in two
/// tabs do not overwrite each other's).
fn csrf_cookie_name(txn: &str) -> String {
    format!(
        "kmcsrf_{}",
        txn.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(10)
            .collect::<String>()
    )
}

pub(super) fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

fn login_page(app: &Arc<App>, oauth: &oauth::OAuth, req: &Request) -> Result<Handled, Handled> {
    let txn = req.query_param("txn").unwrap_or_default();
    let Some(view) = (!txn.is_empty() && txn.len() <= 64)
        .then(|| oauth.pending(&txn))
        .flatten()
    else {
        return Err(expired_request());
    };
    let secure = oauth.origin.starts_with("https://");
    let set_cookie = format!(
        "{}={}; Path=/oauth; Max-Age=600; HttpOnly; SameSite=Strict{}",
        csrf_cookie_name(&txn),
        view.csrf,
        if secure { "; Secure" } else { "" }
    );
    let shown = match app.oidc.as_ref() {
        Some(oidc) => super::oidc::continue_page(app, oidc, oauth, &txn, &view),
        None => sign_in_page(200, &txn, &view, None),
    };
    Ok(shown.map_reply(|r| r.header("Set-Cookie", set_cookie)))
}

pub(super) fn expired_request() -> Handled {
    html_error(
        400,
        "Invalid or expired authorization request. Go back to your application and start the sign-in again.",
    )
}

fn login_submit(
    app: &Arc<App>,
    oauth: &oauth::OAuth,
    ctx: &Ctx,
    req: &Request,
) -> Result<Handled, Handled> {
    // Cross-site form posts are refused outright (a second line behind the CSRF token).
    // "null" is what a browser sends when it withholds the origin; the SameSite=Strict cookie
    // below is what keeps cross-site posts out.
    if let Some(origin) = req.header("Origin") {
        let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if o != "null"
            && o != oauth.origin.to_ascii_lowercase()
            && app.origin.check_origin(Some(origin)).is_err()
        {
            return Err(html_error(
                403,
                "This form can only be sent from this server's own sign-in page.",
            ));
        }
    }
    if !is_form(req) {
        return Err(html_error(400, "The sign-in form was not sent as a form."));
    }
    let p = oauth::parse_form(&String::from_utf8_lossy(&req.body))
        .map_err(|_| html_error(400, "The sign-in form is malformed."))?;
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let txn = get("txn");
    let Some(view) = (!txn.is_empty() && txn.len() <= 64)
        .then(|| oauth.pending(txn))
        .flatten()
    else {
        return Err(expired_request());
    };
    let cookie_ok = cookie(req, &csrf_cookie_name(txn))
        .is_some_and(|c| guard::ct_eq(c.as_bytes(), view.csrf.as_bytes()));
    if !cookie_ok || !guard::ct_eq(get("csrf").as_bytes(), view.csrf.as_bytes()) {
        return Err(html_error(
            403,
            "The sign-in form could not be verified (its security cookie is missing or does not match). Make sure cookies are allowed for this site, then start the sign-in again from your application.",
        ));
    }
    if get("action") == "deny" {
        return match oauth.deny(txn) {
            Some(url) => Ok(redirect(&url)),
            None => Err(expired_request()),
        };
    }
    // With the identity provider the form only sends the person on (`http::oidc`).
    if let Some(oidc) = app.oidc.as_ref() {
        return Ok(super::oidc::start(app, oidc, oauth, txn));
    }
    let now = std::time::Instant::now();
    if let Err(wait) = app.enumeration_check(ctx.key, now) {
        app.metrics.enumeration_blocked();
        return Err(with_header(
            sign_in_page(
                429,
                txn,
                &view,
                Some(
                    "Too many failed sign-ins from your address. Wait a few minutes, then try again.",
                ),
            ),
            "Retry-After",
            &wait.as_secs().max(1).to_string(),
        ));
    }
    let slug = get("username").trim();
    let secret = get("secret");
    // The per-user schedule (`oauth::throttle`): the same for every name, known or not. The
    // attempt counts as a failure unless it is marked as a success below.
    let attempt = match oauth.sign_in_attempt(slug, ctx.key) {
        Ok(attempt) => attempt,
        Err(wait) => {
            app.metrics.oauth("sign_in_failed");
            return Err(with_header(
                sign_in_page(
                    429,
                    txn,
                    &view,
                    Some(
                        "Too many sign-in attempts for this user right now. Wait a few seconds, then try again.",
                    ),
                ),
                "Retry-After",
                &wait.as_millis().div_ceil(1000).max(1).to_string(),
            ));
        }
    };
    std::thread::sleep(attempt.wait);
    let found = check_credentials(app, slug, secret);
    if found.is_some() {
        attempt.succeeded();
    } else {
        drop(attempt);
    }
    match found {
        Some(label) => match oauth.approve(txn, slug) {
            Some(url) => {
                app.metrics.oauth("sign_in");
                log::info!(
                    target: "kimai_mcp::audit",
                    "oauth: {label} signed in from {}",
                    ctx.ip
                );
                Ok(redirect(&url))
            }
            None => Err(expired_request()),
        },
        None => {
            app.metrics.oauth("sign_in_failed");
            log::warn!(
                target: "kimai_mcp::audit",
                "oauth: failed sign-in from {}",
                ctx.ip
            );
            let delay = app.enumeration_miss(ctx.key, now);
            std::thread::sleep(delay);
            if oauth.sign_in_failed(txn) {
                Err(sign_in_page(
                    401,
                    txn,
                    &view,
                    Some("Invalid user slug or auth secret."),
                ))
            } else {
                Err(html_error(
                    400,
                    "Too many wrong attempts for this sign-in. Go back to your application and start again.",
                ))
            }
        }
    }
}

/// The audit label of the user whose slug and auth secret these are. The slug is looked up
/// in constant time per entry against every user ([`App::user_for_slug`]), and one secret is
/// always compared — the user's, or a dummy when the slug is unknown or its user has no secret —
/// so the timing tells nothing about which slugs exist.
fn check_credentials(app: &Arc<App>, slug: &str, secret: &str) -> Option<String> {
    if slug.is_empty() || secret.is_empty() || slug.len() > 128 || secret.len() > 512 {
        return None;
    }
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| oauth::random_secret(""));
    let user = app.user_for_slug(slug);
    let expected = user.as_ref().and_then(|u| u.auth_secret.as_ref());
    let secret_ok = guard::ct_eq(
        expected.map_or(dummy.as_str(), |t| t.expose()).as_bytes(),
        secret.as_bytes(),
    );
    match user {
        Some(u) if secret_ok && expected.is_some() => Some(u.label()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

const STYLE: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;background:#f4f5f7;color:#1d2330;margin:0;padding:2rem 1rem}main{max-width:26rem;margin:0 auto;background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:1.5rem 1.75rem}h1{font-size:1.35rem;margin:0 0 .75rem}p{line-height:1.45}label{display:block;font-weight:600;margin:1rem 0 .3rem}input{box-sizing:border-box;width:100%;padding:.55rem .6rem;font-size:1rem;border:1px solid #8a93a3;border-radius:4px}input:focus,button:focus{outline:3px solid #2a62c9;outline-offset:1px}.buttons{display:flex;gap:.75rem;margin-top:1.5rem}button{font-size:1rem;padding:.55rem 1.1rem;border-radius:4px;border:1px solid #1f4fa8;background:#2a62c9;color:#fff;cursor:pointer}button.secondary{background:#fff;color:#1d2330;border-color:#8a93a3}.alert{background:#fdecec;border:1px solid #c62828;color:#8e1b1b;padding:.6rem .75rem;border-radius:4px}.hint{font-size:.9rem;color:#4a5263}";

fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let d = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
        format!("'sha256-{}'", oauth::b64_std(d.as_ref()))
    })
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A CSP source for the redirect target (`https://host:port` or `scheme:`), for form-action:
/// the form's POST answers with a redirect there, which browsers check against form-action.
pub(super) fn csp_source(uri: &str) -> String {
    oauth::uri_origin(uri)
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":/.-[]+".contains(&b))
        })
        .unwrap_or_default()
}

pub(super) fn page(status: u16, title: &str, body: &str, form_action: &str) -> Handled {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"referrer\" content=\"same-origin\">\n<title>{} – Kimai MCP</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    );
    let csp = format!(
        "default-src 'none'; style-src {}; form-action 'self'{}{}; frame-ancestors 'none'; base-uri 'none'",
        style_hash(),
        if form_action.is_empty() { "" } else { " " },
        form_action
    );
    Handled::Respond(
        Response::new(status)
            .body("text/html; charset=utf-8", html)
            .header("Content-Security-Policy", csp)
            // Not no-referrer: with it, browsers send `Origin: null` on the form's POST. Other
            // sites (the application the browser returns to) still get no Referer.
            .header("Referrer-Policy", "same-origin"),
    )
}

pub(super) fn html_error(status: u16, message: &str) -> Handled {
    page(
        status,
        "Sign-in problem",
        &format!(
            "<h1>Sign-in problem</h1>\n<p role=\"alert\" class=\"alert\">{}</p>\n",
            escape(message)
        ),
        "",
    )
}

fn sign_in_page(status: u16, txn: &str, view: &oauth::PendingView, error: Option<&str>) -> Handled {
    let app_name = view
        .client_name
        .as_deref()
        .map(|n| format!("<strong>{}</strong>", escape(n)))
        .unwrap_or_else(|| "An application".into());
    // A client that names itself by a metadata document chose its own name: the document's
    // host is what vouches for it, so the person sees that too.
    let app_name = match &view.document_host {
        Some(host) => format!(
            "{app_name} (described by <strong>{}</strong>)",
            escape(host)
        ),
        None => app_name,
    };
    let back_to = oauth::uri_origin(&view.redirect_uri).unwrap_or_default();
    let (alert, described) = match error {
        Some(e) => (
            format!(
                "<p id=\"error\" role=\"alert\" class=\"alert\">{}</p>\n",
                escape(e)
            ),
            " aria-describedby=\"error\" aria-invalid=\"true\"",
        ),
        None => (String::new(), ""),
    };
    // What is being granted (the scope the application asked for).
    let access = if view.read_only {
        "<strong>read</strong> your Kimai data (it cannot change anything)"
    } else {
        "read and change your Kimai data"
    };
    let body = format!(
        "<h1>Sign in to Kimai MCP</h1>\n<p>{app_name} asks to {access} through this server. After you sign in you return to <strong>{}</strong>.</p>\n{alert}<form method=\"post\" action=\"/oauth/login\">\n<input type=\"hidden\" name=\"txn\" value=\"{}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n<label for=\"username\">User slug</label>\n<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required maxlength=\"128\" autofocus{described}>\n<label for=\"secret\">Auth secret</label>\n<input id=\"secret\" name=\"secret\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"512\"{described}>\n<div class=\"buttons\">\n<button type=\"submit\" name=\"action\" value=\"sign-in\">Sign in</button>\n<button type=\"submit\" name=\"action\" value=\"deny\" class=\"secondary\" formnovalidate>Cancel</button>\n</div>\n</form>\n<p class=\"hint\">Your administrator gives you your user slug and auth secret.</p>\n",
        escape(&back_to),
        escape(txn),
        escape(&view.csrf),
    );
    page(status, "Sign in", &body, &csp_source(&view.redirect_uri))
}

pub(super) trait MapReply {
    fn map_reply(self, f: impl FnOnce(Response) -> Response) -> Handled;
}

impl MapReply for Handled {
    fn map_reply(self, f: impl FnOnce(Response) -> Response) -> Handled {
        match self {
            Handled::Respond(r) => Handled::Respond(f(r)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_csp_sources() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            csp_source("http://127.0.0.1:3000/callback?x=1"),
            "http://127.0.0.1:3000"
        );
        assert_eq!(csp_source("cursor://anysphere/cb"), "cursor:");
        // Anything that could break out of the header value is dropped.
        assert_eq!(csp_source("https://a.example;script-src *"), "");
    }

    #[test]
    fn the_style_hash_matches_the_style() {
        let h = style_hash();
        assert!(h.starts_with("'sha256-") && h.ends_with("='"), "{h}");
        assert_eq!(h.len(), "'sha256-'".len() + 44);
    }
}
