//! Who a request acts as: a `users.json` user by slug (`/mcp/{slug}`) or by OAuth access token,
//! or a caller with the server token and their own Kimai token (`/mcp`, `/sse`, `/messages`);
//! and the per-credential admission that follows (the credential's request rate, the scope an
//! OAuth caller's messages need, the check of a caller's own Kimai token, new sessions per
//! address). Every secret is compared in constant time; nothing here logs a token or a slug.

use super::app::{App, Ctx};
use super::reply::{json_error, too_many, with_header};
use super::server::{Handled, Request};
use crate::guard;
use crate::kimai::Account;
use crate::mcp::{self, code};
use crate::oauth::Scopes;
use crate::session::fingerprint;
use crate::tools::policy::Policy;
use std::sync::Arc;

/// Who a request acts as, once authenticated.
pub struct Caller {
    pub backend: Account,
    pub owner: [u8; 32],
    pub label: String,
    pub via_slug: bool,
    /// The caller brought its own Kimai token (`X-Kimai-Token`): Kimai must accept it before a
    /// session is opened or a stateless request served ([`verify_kimai_token`]).
    pub own_token: bool,
    /// What an OAuth access token allows ([`check_scope`]); `None` for every other caller (a
    /// slug, or the server token with the caller's own Kimai token), whom Kimai's own
    /// permissions alone restrict.
    pub scopes: Option<Scopes>,
    /// What this caller's calls may do with the tools: the server's `--read-only`/`--tools`/
    /// `--exclude-tools`, narrowed by the user's users.json entry and a read-only scope.
    pub policy: Arc<Policy>,
}

pub(super) fn authenticate(
    app: &Arc<App>,
    ctx: &Ctx,
    req: &Request,
    slug: Option<&str>,
) -> Result<Caller, Handled> {
    if let Some(slug) = slug {
        // Users whose name is not a secret (`KIMAI_USER_<NAME>_*`) have no personal URL.
        let Some(user) = app.user_for_slug(slug).filter(|u| u.personal_url) else {
            // An unknown slug: count it against this address and answer late, so that
            // guessing is slow and soon blocked.
            app.metrics.enumeration_miss();
            let delay = app.enumeration_miss(ctx.key, std::time::Instant::now());
            std::thread::sleep(delay);
            return Err(json_error(404, code::SERVER_ERROR, "Not Found"));
        };
        let (backend, owner) = app.slug_backend(slug, &user).map_err(|e| {
            json_error(
                500,
                code::INTERNAL_ERROR,
                &format!("Internal error: the Kimai client for this user cannot be set up: {e}"),
            )
        })?;
        return Ok(Caller {
            backend,
            owner,
            label: user.label(),
            via_slug: true,
            own_token: false,
            scopes: None,
            policy: Arc::new(app.cfg.policy.narrow(&user.policy)),
        });
    }
    header_caller(app, req)
}

/// The token in `Authorization`: after the `Bearer` scheme (in any case, RFC 9110 §11.1), or
/// bare, as several clients send it.
pub(super) fn presented_token(req: &Request) -> Option<&str> {
    req.header("Authorization").map(|h| {
        let h = h.trim();
        match h.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => h,
        }
    })
}

/// `/mcp`, `/sse` and `/messages`: the server token, then the caller's own Kimai credentials.
pub(super) fn header_caller(app: &Arc<App>, req: &Request) -> Result<Caller, Handled> {
    let presented = presented_token(req);
    let tokens = app
        .server_tokens
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let ok = presented.is_some_and(|p| !p.is_empty() && guard::token_matches(p, &tokens));
    if !ok {
        if let Some(oauth) = app.oauth.as_ref() {
            return oauth_caller(app, oauth, presented.filter(|p| !p.is_empty()));
        }
        let challenge = if presented.is_some_and(|p| !p.is_empty()) {
            "Bearer realm=\"mcp\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"mcp\""
        };
        return Err(with_header(
            json_error(
                401,
                code::SERVER_ERROR,
                "Invalid or missing MCP server authentication token",
            ),
            "WWW-Authenticate",
            challenge,
        ));
    }
    let Some(kimai_token) = req
        .header("X-Kimai-Token")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            "Kimai API token is required. Send your own Kimai API token in the X-Kimai-Token header.",
        ));
    };
    if kimai_token
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
        || kimai_token.len() > 512
    {
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            "Bad Request: the X-Kimai-Token header is not a valid token",
        ));
    }
    let url = match req
        .header("X-Kimai-URL")
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(u) => {
            if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2048 {
                return Err(json_error(
                    400,
                    code::SERVER_ERROR,
                    "Bad Request: X-Kimai-URL must be an http:// or https:// URL",
                ));
            }
            crate::kimai::without_api(u).to_string()
        }
        None => match &app.cfg.default_kimai_url {
            Some(d) => d.clone(),
            None => {
                return Err(json_error(
                    400,
                    code::SERVER_ERROR,
                    "Kimai URL is required. Send it in the X-Kimai-URL header (this server has no --default-kimai-url).",
                ));
            }
        },
    };
    if !app.kimai_url_allowed(&url) {
        return Err(json_error(
            403,
            code::SERVER_ERROR,
            "Forbidden: X-Kimai-URL is not a Kimai this server may connect to; the operator can allow it with --allowed-kimai-url (KIMAI_MCP_ALLOWED_KIMAI_URLS)",
        ));
    }
    let owner = fingerprint(&app.fp_key, &["header", &url, kimai_token]);
    if app.verdicts.get(&owner, std::time::Instant::now()) == Some(guard::Verdict::Rejected) {
        return Err(token_rejected());
    }
    let client = app.client(&url, &app.cfg.tls).map_err(|e| {
        json_error(
            400,
            code::SERVER_ERROR,
            &format!("Bad Request: X-Kimai-URL cannot be used: {e}"),
        )
    })?;
    let label = req
        .header("X-Kimai-User")
        .map(|u| {
            u.chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._@-".contains(*c))
                .take(64)
                .collect::<String>()
        })
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "header-user".into());
    Ok(Caller {
        backend: Account {
            usage: Some(app.metrics.clone()),
            client,
            token: crate::kimai::Token::new(kimai_token.to_string()),
        },
        owner,
        label,
        policy: Arc::new(app.cfg.policy.clone()),
        via_slug: false,
        own_token: true,
        scopes: None,
    })
}

/// A request with an OAuth access token (or none) on a server with OAuth on: the signed-in
/// `users.json` user, or 401 pointing at the resource metadata (RFC 9728 §5.1) and naming the
/// scopes to ask for (MCP 2025-11-25) so that the client starts or repeats its sign-in.
fn oauth_caller(
    app: &Arc<App>,
    oauth: &crate::oauth::OAuth,
    presented: Option<&str>,
) -> Result<Caller, Handled> {
    let metadata = oauth.resource_metadata_url();
    let checked = match presented.map(|token| oauth.check_access(token)) {
        Some(Err(crate::state::Unreachable)) => {
            return Err(super::shared::state_unreachable());
        }
        Some(Ok(v)) => v,
        None => None,
    };
    let user = checked.and_then(|verified| {
        let user = app.user_for_slug(&verified.subject)?;
        app.may_sign_in(&verified.subject)
            .then_some((verified, user))
    });
    let Some((verified, user)) = user else {
        let scope = Scopes::FULL;
        let (challenge, message) = match presented {
            Some(_) => (
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"The access token is invalid or expired\", resource_metadata=\"{metadata}\", scope=\"{scope}\""
                ),
                "The access token is invalid or expired: refresh it or sign in again",
            ),
            None => (
                format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scope}\""),
                "Authentication required: sign in with OAuth (see the resource metadata in WWW-Authenticate) or send the server token",
            ),
        };
        return Err(with_header(
            json_error(401, code::SERVER_ERROR, message),
            "WWW-Authenticate",
            &challenge,
        ));
    };
    let (backend, owner) = app.slug_backend(&verified.subject, &user).map_err(|e| {
        json_error(
            500,
            code::INTERNAL_ERROR,
            &format!("Internal error: the Kimai client for this user cannot be set up: {e}"),
        )
    })?;
    let mut policy = app.cfg.policy.narrow(&user.policy);
    if !verified.scopes.covers(Scopes::FULL) {
        policy = policy.narrow(&Policy::read_only(
            "the OAuth sign-in granted only kimai:read",
        ));
    }
    Ok(Caller {
        backend,
        owner,
        label: user.label(),
        via_slug: true,
        own_token: false,
        scopes: Some(verified.scopes),
        policy: Arc::new(policy),
    })
}

/// The scopes `incoming` needs: `kimai:read` for any message, `kimai:write` as well when it
/// holds a tool call that may change Kimai data ([`crate::dispatch::writes`]); a batch needs
/// what its most demanding message needs.
fn scopes_needed(incoming: &mcp::Incoming) -> Scopes {
    if crate::dispatch::writes(incoming) {
        Scopes::FULL
    } else {
        Scopes::READ
    }
}

/// Refuses messages an OAuth caller's access token does not cover with 403 and an
/// `insufficient_scope` challenge naming the scopes to ask for (RFC 6750 §3.1; MCP 2025-11-25,
/// Authorization: step-up), so that the client can sign in again with more. Checked before a
/// message reaches the dispatcher: before any Kimai request and before a work slot is taken.
/// Callers without OAuth pass.
pub(super) fn check_scope(
    app: &App,
    caller: &Caller,
    incoming: &mcp::Incoming,
) -> Result<(), Handled> {
    let (Some(granted), Some(oauth)) = (caller.scopes, app.oauth.as_ref()) else {
        return Ok(());
    };
    let needed = scopes_needed(incoming);
    if granted.covers(needed) {
        return Ok(());
    }
    let description = format!(
        "This call changes Kimai data, which needs the scope kimai:write; this access token has only '{granted}'. Sign in again asking for '{needed}' (or for no scope)"
    );
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=\"{}\", error_description=\"{description}\"",
        oauth.resource_metadata_url()
    );
    let id = match incoming {
        mcp::Incoming::Single(Ok(m)) => m.id().filter(|_| m.is_request()),
        _ => None,
    };
    log::info!(
        target: "kimai_mcp::audit",
        "oauth: refused a request of user={} whose access token has scope '{granted}' and the request needs '{needed}'",
        caller.label
    );
    let body = mcp::response_err(
        id,
        mcp::RpcError::new(
            code::SERVER_ERROR,
            format!("Insufficient scope: {description}"),
        ),
    );
    Err(with_header(
        Handled::Respond(
            super::server::Response::new(403).body("application/json", body.to_string()),
        ),
        "WWW-Authenticate",
        &challenge,
    ))
}

/// The per-credential request rate (`--user-rate-limit-rpm`), counted for every request a
/// credential makes, with or without a session, from any address.
pub(super) fn admit(app: &App, caller: &Caller) -> Result<(), Handled> {
    match app.take_user_token(caller.owner, std::time::Instant::now()) {
        Ok(()) => Ok(()),
        Err(wait) => {
            app.metrics.rate_limited();
            Err(too_many(
                wait,
                "Too many requests for this user (the server's --user-rate-limit-rpm); slow down",
            ))
        }
    }
}

/// The answer to a caller whose Kimai token Kimai rejected (502, as when the stream of the
/// legacy transport cannot connect: the gateway could not act for the caller).
fn token_rejected() -> Handled {
    json_error(
        502,
        code::SERVER_ERROR,
        "Failed to connect to Kimai: Kimai does not accept this X-Kimai-Token; check the token (in Kimai: your profile, API access) and the Kimai URL",
    )
}

/// Asks Kimai once whether a caller's own token works (`GET /api/users/me`), unless Kimai's
/// answer on it is still fresh ([`guard::verdicts`]); slug and OAuth users need no check (the
/// operator configured their tokens). A rejected token is refused for a minute without asking
/// Kimai again; a failure to reach Kimai is not remembered.
pub(super) fn verify_kimai_token(app: &App, caller: &Caller) -> Result<(), Handled> {
    if !caller.own_token {
        return Ok(());
    }
    let now = std::time::Instant::now();
    match app.verdicts.get(&caller.owner, now) {
        Some(guard::Verdict::Accepted) => return Ok(()),
        Some(guard::Verdict::Rejected) => return Err(token_rejected()),
        None => {}
    }
    let answer = caller.backend.client.call(
        &caller.backend.token,
        &crate::kimai::Request::get("/users/me"),
    );
    match answer {
        Ok(_) => {
            app.verdicts.record(
                caller.owner,
                guard::Verdict::Accepted,
                std::time::Instant::now(),
            );
            Ok(())
        }
        Err(
            e @ (crate::kimai::Error::Unauthorized { .. }
            | crate::kimai::Error::Api { status: 403, .. }),
        ) => {
            app.verdicts.record(
                caller.owner,
                guard::Verdict::Rejected,
                std::time::Instant::now(),
            );
            log::info!("a client's Kimai token was rejected by Kimai: {e}");
            Err(token_rejected())
        }
        Err(e) => Err(json_error(
            502,
            code::SERVER_ERROR,
            &format!("Failed to connect to Kimai: {e}"),
        )),
    }
}

/// A new session from this address, unless it opened too many lately
/// (`--session-rate-per-address`).
pub(super) fn session_allowed(app: &App, ctx: &Ctx) -> Result<(), Handled> {
    match app.take_session_token(ctx.key, std::time::Instant::now()) {
        Ok(()) => Ok(()),
        Err(wait) => {
            app.metrics.rate_limited();
            Err(too_many(
                wait,
                "Too many new sessions from this address (the server's --session-rate-per-address); reuse a session or try again later",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn needed(body: Value) -> Scopes {
        scopes_needed(&mcp::parse_incoming(body.to_string().as_bytes()).unwrap())
    }

    fn call(id: i64, tool: &str, args: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
    }

    #[test]
    fn a_message_needs_write_only_for_a_call_that_writes() {
        assert_eq!(
            needed(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            Scopes::READ
        );
        assert_eq!(needed(call(1, "user_current", json!({}))), Scopes::READ);
        let read = call(2, "timesheet", json!({"action": "list"}));
        let write = call(3, "timesheet", json!({"action": "create"}));
        assert_eq!(needed(read.clone()), Scopes::READ);
        assert_eq!(needed(write.clone()), Scopes::FULL);
        // No arguments on a tool that writes: fail closed.
        assert_eq!(
            needed(
                json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "timer"}})
            ),
            Scopes::FULL
        );
        // A batch needs what its most demanding message needs.
        assert_eq!(needed(json!([read.clone(), read.clone()])), Scopes::READ);
        assert_eq!(needed(json!([read, write])), Scopes::FULL);
        // A notification is no call.
        assert_eq!(
            needed(
                json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "timesheet", "arguments": {"action": "create"}}})
            ),
            Scopes::READ
        );
    }
}
