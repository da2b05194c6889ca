//! The legacy HTTP+SSE transport (MCP 2024-11-05): `GET /sse` opens a stream whose first event
//! names the endpoint for this session's messages, `POST /messages?session_id=…` delivers
//! client messages (202 at once), and every response and notification travels on the stream.
//!
//! Authentication is the `/mcp` header scheme (server token, the caller's own `X-Kimai-Token`,
//! optional `X-Kimai-URL` and `X-Kimai-User`) on both the stream and every message; a message
//! must come with the credentials that opened the stream. The Kimai credentials are checked
//! when the stream opens (`GET /api/version` and `/api/users/me`), so a wrong token fails at
//! once with 502, not at the first tool call.
//!
//! Threads: the stream runs on its own connection thread (outside any pool): it writes the
//! session's channel to the socket, flushing every event, and a keep-alive comment every
//! [`SSE_KEEP_ALIVE`]. It ends when the client goes away (the session is then removed) or the
//! session leaves the table (TTL sweeper). Tool calls posted to the session run on their own
//! threads (bounded by the worker slots) so that a slow call does not hold up a `ping`.

use super::app::{App, Ctx};
use super::auth::{admit, check_scope, header_caller, session_allowed, verify_kimai_token};
use super::reply::{at_capacity, batch_too_large, busy, json_error, method_not_allowed};
use super::server::{Handled, Request, Response, Streamer};
use crate::dispatch::Env;
use crate::guard;
use crate::mcp::{self, ChannelNotifier, code};
use crate::session::{Refused, Session, Transport};
use serde_json::Value;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How often an idle stream sends a comment line (keeps proxies from closing it, and finds
/// clients that went away).
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often an idle stream checks whether its client hung up or its session ended.
const STREAM_POLL: Duration = Duration::from_millis(500);

/// `GET /sse`.
pub fn open(app: &Arc<App>, ctx: &Ctx, req: &Request) -> Result<Handled, Handled> {
    if req.method != "GET" {
        return Err(method_not_allowed("GET"));
    }
    let caller = header_caller(app, req)?;
    admit(app, &caller)?;
    session_allowed(app, ctx)?;
    // Check the credentials now, so that a wrong token or URL fails at connect (a token Kimai
    // rejected lately is refused without asking it again).
    verify_kimai_token(app, &caller)?;
    let version = caller
        .backend
        .client
        .version(&caller.backend.token)
        .map_err(|e| {
            json_error(
                502,
                code::SERVER_ERROR,
                &format!("Failed to connect to Kimai: {e}"),
            )
        })?;
    let (tx, rx) = mpsc::channel::<Value>();
    let session = Session::new(Transport::Sse, caller.backend, &caller.label, caller.owner)
        .map_err(|e| json_error(500, code::INTERNAL_ERROR, &format!("Internal error: {e}")))?
        .with_stream(tx);
    let session = match app.sessions.insert(session) {
        Ok(s) => s,
        Err(Refused::Full) => {
            return Err(at_capacity());
        }
        Err(Refused::Random(e)) => {
            return Err(json_error(
                500,
                code::INTERNAL_ERROR,
                &format!("Internal error: {e}"),
            ));
        }
    };
    log::info!(
        "Client session {} connected to Kimai {} at {}",
        session.short_id(),
        crate::text::safe(&version),
        session.backend.client.base_url()
    );
    let head = Response::new(200)
        .header("Content-Type", "text/event-stream")
        .header("Cache-Control", "no-cache")
        .header("X-Accel-Buffering", "no");
    let app = app.clone();
    Ok(Handled::Stream(
        head,
        Box::new(move |out: Streamer| stream(app, session, rx, out)),
    ))
}

fn stream(app: Arc<App>, session: Arc<Session>, rx: mpsc::Receiver<Value>, mut out: Streamer) {
    // A same-origin relative URL with the session id (the Python client accepts
    // `session_id`; the TypeScript one `sessionId`: we read both).
    let endpoint = format!(
        "event: endpoint\ndata: /messages?session_id={}\n\n",
        session.id
    );
    let mut alive = out.send(endpoint.as_bytes()).is_ok();
    let mut last_write = std::time::Instant::now();
    while alive {
        match rx.recv_timeout(STREAM_POLL) {
            Ok(msg) => {
                let event = format!("event: message\ndata: {msg}\n\n");
                alive = out.send(event.as_bytes()).is_ok();
                last_write = std::time::Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // The client hung up, or the session expired (TTL) or was ended.
                if out.client_closed() || !app.sessions.contains(&session.id) {
                    break;
                }
                if last_write.elapsed() >= SSE_KEEP_ALIVE {
                    alive = out.send(b": keepalive\n\n").is_ok();
                    last_write = std::time::Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    app.sessions.remove(&session.id);
    log::info!("Cleaned up client session {}", session.short_id());
}

/// `POST /messages?session_id=…`.
pub fn message(app: &Arc<App>, req: &Request) -> Result<Handled, Handled> {
    if req.method != "POST" {
        return Err(method_not_allowed("POST"));
    }
    let caller = header_caller(app, req)?;
    admit(app, &caller)?;
    let Some(id) = req
        .query_param("session_id")
        .or_else(|| req.query_param("sessionId"))
        .filter(|s| !s.is_empty())
    else {
        return Err(json_error(
            400,
            code::SERVER_ERROR,
            "Bad Request: the session_id query parameter is required (use the endpoint URL the stream announced)",
        ));
    };
    let session = match app.sessions.get(&id) {
        Some(s) if s.transport == Transport::Sse && guard::ct_eq(&s.owner, &caller.owner) => s,
        _ => {
            return Err(json_error(
                404,
                code::SESSION_NOT_FOUND,
                "Session not found: the stream was closed or expired; open a new one with GET /sse",
            ));
        }
    };
    let Some(tx) = session.stream.clone() else {
        return Err(json_error(
            404,
            code::SESSION_NOT_FOUND,
            "Session not found",
        ));
    };
    let incoming = match mcp::parse_incoming(&req.body) {
        Ok(i) => i,
        Err(resp) => {
            return Err(Handled::Respond(
                Response::new(400).body("application/json", resp.to_string()),
            ));
        }
    };
    if let mcp::Incoming::Batch(items) = &incoming
        && items.len() > app.cfg.bounds.max_batch
    {
        return Err(Handled::Respond(Response::new(400).body(
            "application/json",
            batch_too_large(app.cfg.bounds.max_batch).to_string(),
        )));
    }
    // Refused here, with 403, not on the stream: the client learns at once that it must sign
    // in again with more scope.
    check_scope(app, &caller, &incoming)?;
    if incoming.holds_tool_call() {
        // A tool call (or a batch holding one) runs on its own thread and answers on the
        // stream. It first takes a place among its user's calls, here on the request's
        // thread: a user who posts calls faster than Kimai answers them waits (and then gets
        // 429), instead of starting a thread per message.
        let permit = app
            .calls
            .acquire(caller.owner, super::work::SLOT_WAIT)
            .map_err(|b| busy(&b))?;
        let app2 = app.clone();
        let spawned = std::thread::Builder::new()
            .name("sse-call".into())
            .spawn(move || {
                let notifier = ChannelNotifier(tx.clone());
                let env = Env {
                    backend: &caller.backend,
                    notifier: &notifier,
                    label: &session.label,
                    policy: &caller.policy,
                };
                let id = match &incoming {
                    mcp::Incoming::Single(Ok(m)) => m.id().cloned(),
                    _ => None,
                };
                let reply = super::work::run_with_permit(permit, &app2.slots, || {
                    app2.dispatcher
                        .handle_incoming(&session.conn, incoming, &env)
                });
                match reply {
                    Ok(Some(r)) => {
                        let _ = tx.send(r);
                    }
                    Ok(None) => {}
                    Err(busy) => {
                        let _ = tx.send(mcp::response_err(
                            id.as_ref(),
                            mcp::RpcError::new(code::SERVER_ERROR, busy.message()),
                        ));
                    }
                }
            });
        if spawned.is_err() {
            return Err(json_error(
                503,
                code::SERVER_ERROR,
                "Server busy: cannot start a worker; try again shortly",
            ));
        }
    } else {
        let notifier = ChannelNotifier(tx.clone());
        let env = Env {
            backend: &caller.backend,
            notifier: &notifier,
            label: &session.label,
            policy: &caller.policy,
        };
        if let Some(r) = app
            .dispatcher
            .handle_incoming(&session.conn, incoming, &env)
        {
            let _ = tx.send(r);
        }
    }
    Ok(Handled::Respond(
        Response::new(202).body("text/plain; charset=utf-8", "Accepted"),
    ))
}
