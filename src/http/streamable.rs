//! Streamable HTTP (MCP 2025-03-26 … 2025-11-25, and stateless 2026-07-28 POSTs) on `/mcp`
//! and `/mcp/{slug}`: authentication, sessions, and the status codes of `mcp/interop.md`.
//!
//! POST `initialize` creates a session (`Mcp-Session-Id`); later requests name it and must
//! carry the credentials that created it (a session is bound to them: another user's
//! credentials get 404, as if the session did not exist). A request whose `_meta` names
//! 2026-07-28 is served without a session. Plain calls are answered with JSON; a tool call
//! that carries a `progressToken` is answered with an SSE-framed stream so progress
//! notifications arrive before the result. GET offers no standalone stream (405); DELETE ends
//! the session.

use super::server::{Handled, Request, Response, Streamer};
use super::{App, Ctx, Reply, json_error, method_not_allowed};
use crate::dispatch::{Connection, Env};
use crate::guard;
use crate::mcp::{self, ChannelNotifier, code};
use crate::session::{Refused, Session, Transport, fingerprint};
use crate::tools::Backend;
use serde_json::Value;
use std::sync::Arc;
use std::sync::mpsc;

/// Who a request acts as, once authenticated.
pub(super) struct Caller {
    pub backend: Backend,
    pub owner: [u8; 32],
    pub label: String,
    pub via_slug: bool,
    /// The caller brought its own Kimai token (`X-Kimai-Token`): Kimai must accept it before a
    /// session is opened or a stateless request served ([`verify_kimai_token`]).
    pub own_token: bool,
}

/// The error sent when a request names an unknown, expired, ended or foreign session.
fn session_not_found() -> Reply {
    json_error(
        404,
        code::SESSION_NOT_FOUND,
        "Session not found: it expired or was ended; start a new one with initialize",
    )
}

fn header_mode(req: &Request) -> Option<&str> {
    req.header("Mcp-Session-Id")
}

pub fn handle(
    app: &Arc<App>,
    ctx: &Ctx,
    req: Request,
    slug: Option<String>,
) -> Result<Reply, Reply> {
    match req.method.as_str() {
        "POST" | "GET" | "DELETE" => {}
        "OPTIONS" => return Ok(preflight(app, &req)),
        _ => return Err(method_not_allowed("POST, GET, DELETE")),
    }
    let caller = authenticate(app, ctx, &req, slug.as_deref())?;
    admit(app, &caller)?;
    match req.method.as_str() {
        "GET" => {
            // No standalone server-to-client stream on offer (MCP §2.4): 405 is the answer.
            Err(method_not_allowed("POST, DELETE"))
        }
        "DELETE" => {
            let Some(id) = header_mode(&req) else {
                return Err(json_error(
                    400,
                    code::SERVER_ERROR,
                    "Bad Request: Mcp-Session-Id header is required",
                ));
            };
            match app.sessions.get(id) {
                Some(s)
                    if guard::ct_eq(&s.owner, &caller.owner)
                        && s.transport == Transport::Streamable =>
                {
                    app.sessions.remove(id);
                    log::info!("Ended client session {} on request", s.short_id());
                    Ok(Handled::Reply(Response::new(200)))
                }
                _ => Err(session_not_found()),
            }
        }
        _ => post(app, ctx, &req, caller),
    }
}

/// The per-credential request rate (`--user-rate-limit-rpm`), counted for every request a
/// credential makes, with or without a session, from any address.
pub(super) fn admit(app: &App, caller: &Caller) -> Result<(), Reply> {
    match app.user_rate.take(caller.owner, std::time::Instant::now()) {
        Ok(()) => Ok(()),
        Err(wait) => {
            app.metrics.rate_limited();
            Err(super::too_many(
                wait,
                "Too many requests for this user (the server's --user-rate-limit-rpm); slow down",
            ))
        }
    }
}

/// The answer to a caller whose Kimai token Kimai rejected (502, as when the stream of the
/// legacy transport cannot connect: the gateway could not act for the caller).
fn token_rejected() -> Reply {
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
pub(super) fn verify_kimai_token(app: &App, caller: &Caller) -> Result<(), Reply> {
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
pub(super) fn session_allowed(app: &App, ctx: &Ctx) -> Result<(), Reply> {
    match app.session_rate.check(ctx.key, std::time::Instant::now()) {
        Ok(()) => Ok(()),
        Err(wait) => {
            app.metrics.rate_limited();
            Err(super::too_many(
                wait,
                "Too many new sessions from this address (the server's --session-rate-per-address); reuse a session or try again later",
            ))
        }
    }
}

/// The reply for a call that found no place.
pub(super) fn busy_reply(why: &super::work::Busy) -> Reply {
    match why {
        super::work::Busy::Caller(_) => super::with_header(
            json_error(429, code::SERVER_ERROR, &why.message()),
            "Retry-After",
            "2",
        ),
        super::work::Busy::Server => super::with_header(
            json_error(503, code::SERVER_ERROR, &why.message()),
            "Retry-After",
            "5",
        ),
    }
}

/// Whether a message is a tool call (the only kind of request that waits for a place).
pub(super) fn is_tool_call(msg: &Value) -> bool {
    msg.get("method").and_then(Value::as_str) == Some("tools/call")
}

/// The refusal of a batch with more than `--max-batch` messages.
pub(super) fn batch_too_large(max: usize) -> Value {
    mcp::response_err(
        None,
        mcp::RpcError::invalid_request(format!(
            "a batch may hold at most {max} messages (the server's --max-batch); send the rest in another request"
        )),
    )
}

fn preflight(app: &Arc<App>, req: &Request) -> Reply {
    let allowed = app.origin.cors_allow_origin(req.header("Origin")).is_some();
    let mut r = Response::new(204);
    if allowed {
        r = r
            .header("Access-Control-Allow-Methods", "POST, GET, DELETE, OPTIONS")
            .header(
                "Access-Control-Allow-Headers",
                "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID, X-Kimai-Token, X-Kimai-URL, X-Kimai-User",
            )
            .header("Access-Control-Max-Age", "600");
    }
    Handled::Reply(r)
}

fn authenticate(
    app: &Arc<App>,
    ctx: &Ctx,
    req: &Request,
    slug: Option<&str>,
) -> Result<Caller, Reply> {
    if let Some(slug) = slug {
        let Some(user) = app.user_for_slug(slug) else {
            // An unknown slug: count it against this address and answer late, so that
            // guessing is slow and soon blocked.
            app.metrics.enumeration_miss();
            let delay = app.enumeration.miss(ctx.key, std::time::Instant::now());
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
        });
    }
    header_caller(app, req)
}

/// `/mcp`, `/sse` and `/messages`: the server token, then the caller's own Kimai credentials.
pub(super) fn header_caller(app: &Arc<App>, req: &Request) -> Result<Caller, Reply> {
    let presented = req.header("Authorization").map(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .unwrap_or(h)
            .trim()
    });
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
        return Err(super::with_header(
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
            let mut base = u.trim_end_matches('/').to_string();
            if let Some(b) = base.strip_suffix("/api") {
                base = b.to_string();
            }
            base
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
        backend: Backend {
            metrics: Some(app.metrics.clone()),
            client,
            token: crate::kimai::Token::new(kimai_token.to_string()),
        },
        owner,
        label,
        via_slug: false,
        own_token: true,
    })
}

/// A request with an OAuth access token (or none) on a server with OAuth on: the signed-in
/// `users.json` user, or 401 pointing at the resource metadata (RFC 9728 §5.1) so that the
/// client starts or repeats its sign-in.
fn oauth_caller(
    app: &Arc<App>,
    oauth: &crate::oauth::OAuth,
    presented: Option<&str>,
) -> Result<Caller, Reply> {
    let metadata = oauth.resource_metadata_url();
    let user = presented.and_then(|token| {
        let slug = oauth.verify(token)?;
        let user = app.user_for_slug(&slug)?;
        user.auth_secret.is_some().then_some((slug, user))
    });
    let Some((slug, user)) = user else {
        let (challenge, message) = match presented {
            Some(_) => (
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"The access token is invalid or expired\", resource_metadata=\"{metadata}\""
                ),
                "The access token is invalid or expired: refresh it or sign in again",
            ),
            None => (
                format!("Bearer resource_metadata=\"{metadata}\""),
                "Authentication required: sign in with OAuth (see the resource metadata in WWW-Authenticate) or send the server token",
            ),
        };
        return Err(super::with_header(
            json_error(401, code::SERVER_ERROR, message),
            "WWW-Authenticate",
            &challenge,
        ));
    };
    let (backend, owner) = app.slug_backend(&slug, &user).map_err(|e| {
        json_error(
            500,
            code::INTERNAL_ERROR,
            &format!("Internal error: the Kimai client for this user cannot be set up: {e}"),
        )
    })?;
    Ok(Caller {
        backend,
        owner,
        label: user.label(),
        via_slug: true,
        own_token: false,
    })
}

fn accepts(req: &Request, what: &str) -> bool {
    req.header("Accept").is_some_and(|a| {
        a.split(',').any(|p| {
            let m = p
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            m == what || m == "*/*"
        })
    })
}

fn post(app: &Arc<App>, ctx: &Ctx, req: &Request, caller: Caller) -> Result<Reply, Reply> {
    if !(accepts(req, "application/json") && accepts(req, "text/event-stream")) {
        return Err(json_error(
            406,
            code::SERVER_ERROR,
            "Not Acceptable: the client must accept both application/json and text/event-stream",
        ));
    }
    let ct = req.header("Content-Type").map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if ct.as_deref() != Some("application/json") {
        return Err(json_error(
            415,
            code::SERVER_ERROR,
            "Unsupported Media Type: the body must be application/json",
        ));
    }
    let version_header = req.header("MCP-Protocol-Version");
    if let Some(v) = version_header
        && !mcp::all_versions().contains(&v)
    {
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version {}; supported: {}",
                crate::tools::quote_name(v),
                mcp::all_versions().join(", ")
            ),
        ));
    }
    let incoming = match mcp::parse_incoming(&req.body) {
        Ok(i) => i,
        Err(resp) => {
            return Err(Handled::Reply(
                Response::new(400).body("application/json", resp.to_string()),
            ));
        }
    };
    if let mcp::Incoming::Batch(items) = &incoming
        && items.len() > app.cfg.bounds.max_batch
    {
        return Err(Handled::Reply(Response::new(400).body(
            "application/json",
            batch_too_large(app.cfg.bounds.max_batch).to_string(),
        )));
    }
    let session_id = header_mode(req).map(str::to_string);
    match (session_id, incoming) {
        (None, mcp::Incoming::Single(msg)) => without_session(app, ctx, req, caller, msg),
        (None, mcp::Incoming::Batch(_)) => Err(json_error(
            400,
            -32600,
            "Bad Request: a batch needs a session negotiated with protocol 2025-03-26; send initialize first",
        )),
        (Some(id), incoming) => {
            let session = match app.sessions.get(&id) {
                Some(s)
                    if guard::ct_eq(&s.owner, &caller.owner)
                        && s.transport == Transport::Streamable =>
                {
                    s
                }
                _ => return Err(session_not_found()),
            };
            // The credentials as they are now (a users.json entry may have been fixed since
            // the session started); the fingerprint check above proved they are the same user.
            in_session(app, &session, &caller, incoming)
        }
    }
}

fn is_request(msg: &Value) -> bool {
    msg.get("method").is_some() && msg.get("id").is_some()
}

fn without_session(
    app: &Arc<App>,
    ctx: &Ctx,
    req: &Request,
    caller: Caller,
    msg: Value,
) -> Result<Reply, Reply> {
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let modern = mcp::params_meta(msg.get("params"))
        .and_then(|m| m.get(mcp::META_PROTOCOL_VERSION))
        .is_some();
    if modern {
        return stateless(app, req, caller, msg, &method);
    }
    if method != "initialize" || !is_request(&msg) {
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            "Bad Request: Mcp-Session-Id header is required; start with initialize",
        ));
    }
    session_allowed(app, ctx)?;
    verify_kimai_token(app, &caller)?;
    let session = Session::new(
        Transport::Streamable,
        caller.backend,
        &caller.label,
        caller.owner,
    )
    .map(|s| s.via_slug(caller.via_slug))
    .map_err(|e| json_error(500, code::INTERNAL_ERROR, &format!("Internal error: {e}")))?;
    let session = match app.sessions.insert(session) {
        Ok(s) => s,
        Err(Refused::Full) => {
            return Err(super::at_capacity());
        }
        Err(Refused::Random(e)) => {
            return Err(json_error(
                500,
                code::INTERNAL_ERROR,
                &format!("Internal error: {e}"),
            ));
        }
    };
    let env = Env {
        backend: &session.backend,
        notifier: &mcp::NoNotifier,
        label: &session.label,
    };
    let reply = app.dispatcher.handle(&session.conn, msg, &env);
    if reply.as_ref().is_none_or(|r| r.get("error").is_some()) {
        app.sessions.remove(&session.id);
        let body = reply.unwrap_or(Value::Null).to_string();
        return Err(Handled::Reply(
            Response::new(400).body("application/json", body),
        ));
    }
    log::info!(
        "Client session {} started ({}, protocol {})",
        session.short_id(),
        session
            .conn
            .client_name()
            .map(|n| crate::tools::text::safe(&n))
            .unwrap_or_else(|| "unnamed client".into()),
        session.conn.negotiated().unwrap_or("?")
    );
    let body = reply.unwrap_or(Value::Null).to_string();
    Ok(Handled::Reply(
        Response::new(200)
            .header("Mcp-Session-Id", session.id.clone())
            .body("application/json", body),
    ))
}

/// A 2026-07-28 request: no session; the headers must agree with the body (MCP 2026-07-28,
/// Streamable HTTP: `MCP-Protocol-Version`, `Mcp-Method`, and `Mcp-Name` for named calls).
fn stateless(
    app: &Arc<App>,
    req: &Request,
    caller: Caller,
    msg: Value,
    method: &str,
) -> Result<Reply, Reply> {
    let meta_version = mcp::params_meta(msg.get("params"))
        .and_then(|m| m.get(mcp::META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let mismatch = |what: &str| {
        json_error(
            400,
            code::HEADER_MISMATCH,
            &format!("Header mismatch: {what} does not match the request body"),
        )
    };
    if let (Some(h), Some(b)) = (req.header("MCP-Protocol-Version"), meta_version)
        && h != b
    {
        return Err(mismatch("MCP-Protocol-Version"));
    }
    if let Some(h) = req.header("Mcp-Method")
        && h != method
    {
        return Err(mismatch("Mcp-Method"));
    }
    if method == "tools/call"
        && let (Some(h), Some(name)) = (
            req.header("Mcp-Name"),
            msg.get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str),
        )
        && h != name
    {
        return Err(mismatch("Mcp-Name"));
    }
    // Every stateless request is a new visitor: a caller's own token is checked with Kimai
    // (its verdict is remembered for a minute), and tool calls count against the caller's
    // share exactly as calls in a session do.
    verify_kimai_token(app, &caller)?;
    let conn = Connection::new();
    // A stateless request has no session: the audit line names the user only.
    let label = format!("user={}", caller.label);
    if wants_stream(&msg) {
        return Ok(stream_call(
            app.clone(),
            conn_holder(conn),
            caller.backend,
            caller.owner,
            label,
            msg,
        ));
    }
    let env = Env {
        backend: &caller.backend,
        notifier: &mcp::NoNotifier,
        label: &label,
    };
    let reply = if is_tool_call(&msg) {
        super::work::run_call(&app.calls, &app.slots, caller.owner, || {
            app.dispatcher.handle(&conn, msg, &env)
        })
        .map_err(|b| busy_reply(&b))?
    } else {
        app.dispatcher.handle(&conn, msg, &env)
    };
    let Some(reply) = reply else {
        return Ok(Handled::Reply(Response::new(202)));
    };
    let status = match reply
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64)
    {
        Some(code::METHOD_NOT_FOUND) => 404,
        Some(code::UNSUPPORTED_PROTOCOL_VERSION | code::INVALID_PARAMS | code::INVALID_REQUEST) => {
            400
        }
        _ => 200,
    };
    Ok(Handled::Reply(
        Response::new(status).body("application/json", reply.to_string()),
    ))
}

/// A tool call with a progress token is answered as a stream, so progress arrives first.
fn wants_stream(msg: &Value) -> bool {
    msg.get("method").and_then(Value::as_str) == Some("tools/call")
        && msg.get("id").is_some()
        && mcp::params_meta(msg.get("params")).is_some_and(|m| m.contains_key("progressToken"))
}

fn in_session(
    app: &Arc<App>,
    session: &Arc<Session>,
    caller: &Caller,
    incoming: mcp::Incoming,
) -> Result<Reply, Reply> {
    let backend = &caller.backend;
    let env = Env {
        backend,
        notifier: &mcp::NoNotifier,
        label: &session.label,
    };
    match incoming {
        mcp::Incoming::Batch(items) => {
            // A batch that holds a tool call waits for a place like one tool call.
            let holds_call = items.iter().any(is_tool_call);
            let run = || app.dispatcher.handle_batch(&session.conn, items, &env);
            let reply = if holds_call {
                super::work::run_call(&app.calls, &app.slots, caller.owner, run)
                    .map_err(|b| busy_reply(&b))?
            } else {
                run()
            };
            Ok(match reply {
                None => Handled::Reply(Response::new(202)),
                Some(r) if r.is_object() => {
                    Handled::Reply(Response::new(400).body("application/json", r.to_string()))
                }
                Some(r) => {
                    Handled::Reply(Response::new(200).body("application/json", r.to_string()))
                }
            })
        }
        mcp::Incoming::Single(msg) => {
            if !is_request(&msg) {
                // Notifications and client responses: accepted.
                let _ = app.dispatcher.handle(&session.conn, msg, &env);
                return Ok(Handled::Reply(Response::new(202)));
            }
            if msg.get("method").and_then(Value::as_str) == Some("initialize") {
                let reply = app
                    .dispatcher
                    .handle(&session.conn, msg, &env)
                    .unwrap_or(Value::Null);
                return Err(Handled::Reply(
                    Response::new(400).body("application/json", reply.to_string()),
                ));
            }
            if wants_stream(&msg) {
                return Ok(stream_call(
                    app.clone(),
                    SessionOrConn::Session(session.clone()),
                    backend.clone(),
                    caller.owner,
                    session.label.clone(),
                    msg,
                ));
            }
            // Only tool calls wait for a place; ping, tools/list and the like never queue
            // behind them.
            let reply = if is_tool_call(&msg) {
                super::work::run_call(&app.calls, &app.slots, caller.owner, || {
                    app.dispatcher.handle(&session.conn, msg, &env)
                })
                .map_err(|b| busy_reply(&b))?
            } else {
                app.dispatcher.handle(&session.conn, msg, &env)
            };
            Ok(match reply {
                None => Handled::Reply(Response::new(202)),
                Some(r) => {
                    Handled::Reply(Response::new(200).body("application/json", r.to_string()))
                }
            })
        }
    }
}

/// The lifecycle state a streamed call runs against.
enum SessionOrConn {
    Session(Arc<Session>),
    Conn(Connection),
}

fn conn_holder(c: Connection) -> SessionOrConn {
    SessionOrConn::Conn(c)
}

impl SessionOrConn {
    fn conn(&self) -> &Connection {
        match self {
            SessionOrConn::Session(s) => &s.conn,
            SessionOrConn::Conn(c) => c,
        }
    }
}

fn sse_event(v: &Value) -> Vec<u8> {
    format!("event: message\ndata: {v}\n\n").into_bytes()
}

/// Runs the call on its own thread and streams its notifications, then its result, as SSE.
fn stream_call(
    app: Arc<App>,
    state: SessionOrConn,
    backend: Backend,
    owner: guard::CredentialKey,
    label: String,
    msg: Value,
) -> Reply {
    let head = Response::new(200)
        .header("Content-Type", "text/event-stream")
        .header("Cache-Control", "no-cache")
        .header("X-Accel-Buffering", "no");
    Handled::Stream(
        head,
        Box::new(move |mut out: Streamer| {
            let (tx, rx) = mpsc::channel::<Value>();
            let (done_tx, done_rx) = mpsc::channel::<Option<Value>>();
            std::thread::scope(|scope| {
                let notifier = ChannelNotifier(tx);
                let (app, state, backend, label) = (&app, &state, &backend, &label);
                scope.spawn(move || {
                    let env = Env {
                        backend,
                        notifier: &notifier,
                        label,
                    };
                    let id = msg.get("id").and_then(mcp::RequestId::from_value);
                    let reply = super::work::run_call(&app.calls, &app.slots, owner, || {
                        app.dispatcher.handle(state.conn(), msg, &env)
                    })
                    .unwrap_or_else(|busy| {
                        Some(mcp::response_err(
                            id.as_ref(),
                            mcp::RpcError::new(code::SERVER_ERROR, busy.message()),
                        ))
                    });
                    let _ = done_tx.send(reply);
                });
                let mut client_gone = false;
                loop {
                    match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                        Ok(note) => {
                            if !client_gone && out.send(&sse_event(&note)).is_err() {
                                // A dropped stream is not a cancellation (MCP §2.2): the call
                                // finishes; its result has nowhere to go.
                                client_gone = true;
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {}
                    }
                    if let Ok(reply) = done_rx.try_recv() {
                        while let Ok(note) = rx.try_recv() {
                            if !client_gone {
                                let _ = out.send(&sse_event(&note));
                            }
                        }
                        if let Some(reply) = reply
                            && !client_gone
                        {
                            let _ = out.send(&sse_event(&reply));
                        }
                        break;
                    }
                }
            });
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_parsing() {
        let req = |a: &str| Request {
            method: "POST".into(),
            path: "/mcp".into(),
            query: String::new(),
            headers: vec![("Accept".into(), a.into())],
            body: vec![],
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        assert!(accepts(
            &req("application/json, text/event-stream"),
            "text/event-stream"
        ));
        assert!(accepts(
            &req("application/json;q=0.9, text/event-stream"),
            "application/json"
        ));
        assert!(!accepts(&req("application/json"), "text/event-stream"));
        assert!(accepts(&req("*/*"), "text/event-stream"));
    }
}
