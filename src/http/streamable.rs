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

use super::app::{App, Ctx};
use super::auth::{Caller, admit, authenticate, check_scope, session_allowed, verify_kimai_token};
use super::reply::{batch_too_large, busy, json_error, method_not_allowed};
use super::server::{Handled, Request, Response, Streamer};
use crate::dispatch::{Connection, Env};
use crate::guard;
use crate::kimai::Account;
use crate::mcp::{self, ChannelNotifier, Classified, Message, code};
use crate::session::{Session, Transport};
use serde_json::Value;
use std::sync::Arc;
use std::sync::mpsc;

/// The error sent when a request names an unknown, expired, ended or foreign session.
fn session_not_found() -> Handled {
    json_error(
        404,
        code::SESSION_NOT_FOUND,
        "Session not found: it expired or was ended; start a new one with initialize",
    )
}

fn session_header(req: &Request) -> Option<&str> {
    req.header("Mcp-Session-Id")
}

pub fn handle(
    app: &Arc<App>,
    ctx: &Ctx,
    req: Request,
    slug: Option<String>,
) -> Result<Handled, Handled> {
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
            let Some(id) = session_header(&req) else {
                return Err(json_error(
                    400,
                    code::SERVER_ERROR,
                    "Bad Request: Mcp-Session-Id header is required",
                ));
            };
            match app.streamable_session(id, &caller)? {
                Some(found) => {
                    app.end_streamable(&found.session)?;
                    log::info!(
                        "Ended client session {} on request",
                        found.session.short_id()
                    );
                    Ok(Handled::Respond(Response::new(200)))
                }
                None => Err(session_not_found()),
            }
        }
        _ => post(app, ctx, &req, caller),
    }
}

fn preflight(app: &Arc<App>, req: &Request) -> Handled {
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
    Handled::Respond(r)
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

fn post(app: &Arc<App>, ctx: &Ctx, req: &Request, caller: Caller) -> Result<Handled, Handled> {
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
    let incoming = match mcp::parse_incoming(&req.body) {
        Ok(i) => i,
        Err(resp) => {
            return Err(Handled::Respond(
                Response::new(400).body("application/json", resp.to_string()),
            ));
        }
    };
    let version_header = req.header("MCP-Protocol-Version");
    if let Some(v) = version_header
        && !mcp::all_versions().contains(&v)
    {
        // Without a session (and not opening one) this is a 2026-07-28 request: its error is
        // UnsupportedProtocolVersion with the versions served statelessly (those that
        // `server/discover` lists) and the requested one. A session's request keeps the
        // handshake era's plain 400.
        let single = match &incoming {
            mcp::Incoming::Single(Ok(m)) => Some(m),
            _ => None,
        };
        let opening = single.is_some_and(|m| m.method() == Some("initialize"));
        if session_header(req).is_none() && !opening {
            return Err(rpc_error(
                400,
                mcp::RpcError::new(
                    code::UNSUPPORTED_PROTOCOL_VERSION,
                    "Unsupported protocol version",
                )
                .with_data(serde_json::json!({
                    "supported": mcp::MODERN_VERSIONS,
                    "requested": v,
                })),
                single.and_then(Message::id),
            ));
        }
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version {}; supported: {}",
                crate::text::quote_name(v),
                mcp::all_versions().join(", ")
            ),
        ));
    }
    if let mcp::Incoming::Batch(items) = &incoming
        && items.len() > app.cfg.bounds.max_batch
    {
        return Err(Handled::Respond(Response::new(400).body(
            "application/json",
            batch_too_large(app.cfg.bounds.max_batch).to_string(),
        )));
    }
    // An OAuth token's scope covers every message, or none is served (session or not).
    check_scope(app, &caller, &incoming)?;
    let session_id = session_header(req).map(str::to_string);
    match (session_id, incoming) {
        (None, mcp::Incoming::Single(msg)) => without_session(app, ctx, req, caller, msg),
        (None, mcp::Incoming::Batch(_)) => Err(json_error(
            400,
            code::INVALID_REQUEST,
            "Bad Request: a batch needs a session negotiated with protocol 2025-03-26; send initialize first",
        )),
        (Some(id), incoming) => {
            let Some(found) = app.streamable_session(&id, &caller)? else {
                return Err(session_not_found());
            };
            // The credentials as they are now (a users.json entry may have been fixed since
            // the session started); the fingerprint check above proved they are the same user.
            let reply = in_session(app, &found.session, &caller, incoming);
            app.keep_lifecycle(&found);
            reply
        }
    }
}

fn without_session(
    app: &Arc<App>,
    ctx: &Ctx,
    req: &Request,
    caller: Caller,
    msg: Classified,
) -> Result<Handled, Handled> {
    // A 2026-07-28 request names its version in `_meta`, or at least in the header (then its
    // missing `_meta` is the error to report, not a missing session).
    let header_modern = req
        .header("MCP-Protocol-Version")
        .is_some_and(|v| mcp::MODERN_VERSIONS.contains(&v));
    let is_initialize = matches!(&msg, Ok(m) if m.is_request() && m.method() == Some("initialize"));
    if let Ok(m) = &msg
        && (m.meta_protocol_version().is_some() || (header_modern && !is_initialize))
    {
        return stateless(app, req, caller, msg);
    }
    if !is_initialize {
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
    let refused = |reply: Option<Value>| {
        let body = reply.unwrap_or(Value::Null).to_string();
        Handled::Respond(Response::new(400).body("application/json", body))
    };
    let (session, reply) = if app.state.is_some() {
        // Shared state: `initialize` first (it needs no Kimai request), so that the record
        // is stored once, with the negotiated version, under the caps of all instances.
        let env = Env {
            backend: &session.backend,
            notifier: &mcp::NoNotifier,
            label: &session.label,
            policy: &caller.policy,
        };
        let reply = app.dispatcher.handle(&session.conn, msg, &env);
        if reply.as_ref().is_none_or(|r| r.get("error").is_some()) {
            return Err(refused(reply));
        }
        (app.share_session(session)?, reply)
    } else {
        let session = app.share_session(session)?;
        let env = Env {
            backend: &session.backend,
            notifier: &mcp::NoNotifier,
            label: &session.label,
            policy: &caller.policy,
        };
        let reply = app.dispatcher.handle(&session.conn, msg, &env);
        if reply.as_ref().is_none_or(|r| r.get("error").is_some()) {
            app.sessions.remove(&session.id);
            return Err(refused(reply));
        }
        (session, reply)
    };
    log::info!(
        "Client session {} started ({}, protocol {})",
        session.short_id(),
        session
            .conn
            .client_name()
            .map(|n| crate::text::safe(&n))
            .unwrap_or_else(|| "unnamed client".into()),
        session.conn.negotiated().unwrap_or("?")
    );
    let body = reply.unwrap_or(Value::Null).to_string();
    Ok(Handled::Respond(
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
    msg: Classified,
) -> Result<Handled, Handled> {
    let Ok(m) = &msg else {
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            "Bad Request: Mcp-Session-Id header is required; start with initialize",
        ));
    };
    let id = m.id();
    let method = m.method().unwrap_or("");
    // The envelope first: `_meta` must name the version (the dispatcher checks the rest of it).
    let Some(meta_version) = m.meta_protocol_version() else {
        let what = if m.meta().is_none() {
            "params._meta is required in a 2026-07-28 request"
        } else {
            "params._meta is missing io.modelcontextprotocol/protocolVersion"
        };
        return Err(rpc_error(400, mcp::RpcError::invalid_params(what), id));
    };
    let meta_version = meta_version.as_str();
    let header_error =
        |message: String| rpc_error(400, mcp::RpcError::new(code::HEADER_MISMATCH, message), id);
    let mismatch = |what: &str| {
        header_error(format!(
            "Header mismatch: {what} does not match the request body"
        ))
    };
    let missing = |what: &str| {
        header_error(format!(
            "Header mismatch: the {what} header is required with a 2026-07-28 request"
        ))
    };
    if let (Some(h), Some(b)) = (req.header("MCP-Protocol-Version"), meta_version)
        && h != b
    {
        return Err(mismatch("MCP-Protocol-Version"));
    }
    if let Some(v) = meta_version
        && !mcp::MODERN_VERSIONS.contains(&v)
    {
        return Err(rpc_error(
            400,
            mcp::RpcError::new(
                code::UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
            )
            .with_data(serde_json::json!({"supported": mcp::MODERN_VERSIONS, "requested": v})),
            id,
        ));
    }
    match req.header("Mcp-Method") {
        None => return Err(missing("Mcp-Method")),
        Some(h) if h != method => return Err(mismatch("Mcp-Method")),
        Some(_) => {}
    }
    // Named requests name their target in `Mcp-Name` too.
    if matches!(method, "tools/call" | "resources/read" | "prompts/get") {
        let key = if method == "resources/read" {
            "uri"
        } else {
            "name"
        };
        let name = m.params().and_then(|p| p.get(key)).and_then(Value::as_str);
        match (req.header("Mcp-Name"), name) {
            (None, _) => return Err(missing("Mcp-Name")),
            (Some(h), Some(n)) if h != n => return Err(mismatch("Mcp-Name")),
            _ => {}
        }
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
            caller.policy.clone(),
            msg,
        ));
    }
    let env = Env {
        backend: &caller.backend,
        notifier: &mcp::NoNotifier,
        label: &label,
        policy: &caller.policy,
    };
    let reply = if m.is_tool_call() {
        super::work::run_call(&app.calls, &app.slots, caller.owner, || {
            app.dispatcher.handle(&conn, msg, &env)
        })
        .map_err(|b| busy(&b))?
    } else {
        app.dispatcher.handle(&conn, msg, &env)
    };
    let Some(reply) = reply else {
        return Ok(Handled::Respond(Response::new(202)));
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
    Ok(Handled::Respond(
        Response::new(status).body("application/json", reply.to_string()),
    ))
}

/// A JSON-RPC error answer of the transport that carries the request's id when it is known
/// (2026-07-28: every error response carries the id of the request it answers).
fn rpc_error(status: u16, error: mcp::RpcError, id: Option<&mcp::RequestId>) -> Handled {
    Handled::Respond(
        Response::new(status).body("application/json", mcp::response_err(id, error).to_string()),
    )
}

/// A tool call with a progress token is answered as a stream, so progress arrives first.
fn wants_stream(msg: &Classified) -> bool {
    msg.as_ref()
        .is_ok_and(|m| m.is_tool_call() && m.has_progress_token())
}

fn in_session(
    app: &Arc<App>,
    session: &Arc<Session>,
    caller: &Caller,
    incoming: mcp::Incoming,
) -> Result<Handled, Handled> {
    let backend = &caller.backend;
    let env = Env {
        backend,
        notifier: &mcp::NoNotifier,
        label: &session.label,
        policy: &caller.policy,
    };
    match incoming {
        mcp::Incoming::Batch(items) => {
            // A batch that holds a tool call waits for a place like one tool call.
            let holds_call = items
                .iter()
                .any(|m| m.as_ref().is_ok_and(Message::is_tool_call));
            let run = || app.dispatcher.handle_batch(&session.conn, items, &env);
            let reply = if holds_call {
                super::work::run_call(&app.calls, &app.slots, caller.owner, run)
                    .map_err(|b| busy(&b))?
            } else {
                run()
            };
            Ok(match reply {
                None => Handled::Respond(Response::new(202)),
                Some(r) if r.is_object() => {
                    Handled::Respond(Response::new(400).body("application/json", r.to_string()))
                }
                Some(r) => {
                    Handled::Respond(Response::new(200).body("application/json", r.to_string()))
                }
            })
        }
        mcp::Incoming::Single(Err(invalid)) => Err(Handled::Respond(
            Response::new(400).body("application/json", invalid.response().to_string()),
        )),
        mcp::Incoming::Single(msg) => {
            if !msg.as_ref().is_ok_and(Message::is_request) {
                // Notifications and client responses: accepted.
                let _ = app.dispatcher.handle(&session.conn, msg, &env);
                return Ok(Handled::Respond(Response::new(202)));
            }
            if msg.as_ref().is_ok_and(|m| m.method() == Some("initialize")) {
                let reply = app
                    .dispatcher
                    .handle(&session.conn, msg, &env)
                    .unwrap_or(Value::Null);
                return Err(Handled::Respond(
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
                    caller.policy.clone(),
                    msg,
                ));
            }
            // Only tool calls wait for a place; ping, tools/list and the like never queue
            // behind them.
            let reply = if msg.as_ref().is_ok_and(Message::is_tool_call) {
                super::work::run_call(&app.calls, &app.slots, caller.owner, || {
                    app.dispatcher.handle(&session.conn, msg, &env)
                })
                .map_err(|b| busy(&b))?
            } else {
                app.dispatcher.handle(&session.conn, msg, &env)
            };
            Ok(match reply {
                None => Handled::Respond(Response::new(202)),
                Some(r) => {
                    Handled::Respond(Response::new(200).body("application/json", r.to_string()))
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
    backend: Account,
    owner: guard::CredentialKey,
    label: String,
    policy: Arc<crate::tools::policy::Policy>,
    msg: Classified,
) -> Handled {
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
                let (app, state, backend, label, policy) =
                    (&app, &state, &backend, &label, &policy);
                scope.spawn(move || {
                    let env = Env {
                        backend,
                        notifier: &notifier,
                        label,
                        policy,
                    };
                    let id = msg.as_ref().ok().and_then(Message::id).cloned();
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
