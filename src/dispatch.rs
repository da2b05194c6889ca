//! One message in, at most one message out: the MCP lifecycle, version negotiation, the method
//! table, parameter extraction and panic containment.
//!
//! The dispatcher is transport-agnostic. A transport (stdio, Streamable HTTP, legacy SSE) owns
//! one [`Connection`] per client (a stdio process or an HTTP session; a fresh one for each
//! stateless request) and hands what it read — parsed and classified once by
//! `mcp::parse_incoming` — to [`Dispatcher::handle_incoming`] (or [`Dispatcher::handle`] for
//! one message) together with an [`Env`]: the Kimai account to act as, a [`Notifier`] for
//! server -> client notifications, and a label for the audit log. Nothing here does I/O of its
//! own; tool calls do theirs through `tools`.
//!
//! Two eras are served side by side (`mcp/protocol.md`, "dual-era rules"):
//! - **legacy** (2024-11-05 … 2025-11-25): `initialize` negotiates a version for the connection;
//!   requests other than `ping` before it get an error (never silence, so that modern clients
//!   fall back cleanly); batches only when 2025-03-26 was negotiated.
//! - **modern** (2026-07-28): a request whose `params._meta` names the protocol version is served
//!   statelessly, whatever the connection did before; results carry `resultType`, the server's
//!   identity in `_meta`, and list results carry cache hints.
//!
//! Threads: `handle` is called concurrently from the transports' threads (stdio workers, HTTP
//! connection threads, SSE call threads). [`Connection`] keeps
//! its state behind short-lived mutex locks; no lock is held while a tool runs.

use crate::kimai::Account;
use crate::mcp::{
    self, Classified, LATEST_LEGACY, LEGACY_VERSIONS, META_PROTOCOL_VERSION, META_SERVER_INFO,
    MODERN_VERSIONS, Message, Notifier, RequestId, RpcError,
};
use crate::tools::{self, Tool};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The `_meta` key naming the client's capabilities on a modern request (required there).
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// How long clients may cache `tools/list` and `server/discover` (the tool set is fixed for the
/// life of the process).
const LIST_TTL_MS: u64 = 3_600_000;
/// Cancellations that arrive before their call started are remembered, this many at most.
const EARLY_CANCELS: usize = 64;

const INSTRUCTIONS: &str = "Tools for the Kimai time-tracking server, acting with the permissions \
of the configured Kimai account. Times are local to that account's timezone.";

/// What a transport hands down with every message.
pub struct Env<'a> {
    /// The Kimai account this connection acts as.
    pub backend: &'a Account,
    /// Where notifications (progress) for this connection go.
    pub notifier: &'a dyn Notifier,
    /// Who this is, for the audit log, as `key=value` words (e.g. `session=1a2b3c4d user=anna`
    /// or `user=stdio`): never a token or a slug.
    pub label: &'a str,
    /// What this connection may do with the tools (read only, which tools and actions).
    pub policy: &'a tools::policy::Policy,
}

/// Lifecycle state of one connection (a stdio process or an HTTP session).
#[derive(Default)]
pub struct Connection {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The legacy version negotiated by `initialize`, once it happened.
    negotiated: Option<&'static str>,
    /// `notifications/initialized` seen (informational: requests are served once negotiated).
    initialized: bool,
    client_name: Option<String>,
    /// Cancellation flags of the tool calls now running, by request id.
    running: HashMap<RequestId, Arc<AtomicBool>>,
    /// Ids cancelled before their call started (a call queued behind others).
    cancelled_early: VecDeque<RequestId>,
}

impl Connection {
    pub fn new() -> Connection {
        Connection::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-changed in a way that
        // matters (each change is one assignment), so a poisoned lock is simply recovered.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The negotiated legacy version, if `initialize` happened.
    pub fn negotiated(&self) -> Option<&'static str> {
        self.lock().negotiated
    }

    /// The client's self-reported name from `initialize`, for logs.
    pub fn client_name(&self) -> Option<String> {
        self.lock().client_name.clone()
    }

    /// Whether `notifications/initialized` arrived.
    pub fn initialized(&self) -> bool {
        self.lock().initialized
    }

    /// The lifecycle state of a connection that another process started (a Streamable HTTP
    /// session record in the shared state store): the negotiated version (one this server
    /// offers, else none), `initialized`, the client's name. Calls in flight are not carried:
    /// a cancellation reaches a call only on the instance that runs it.
    pub fn restored(
        negotiated: Option<&str>,
        initialized: bool,
        client_name: Option<String>,
    ) -> Connection {
        let conn = Connection::new();
        {
            let mut st = conn.lock();
            st.negotiated =
                negotiated.and_then(|v| LEGACY_VERSIONS.iter().copied().find(|k| *k == v));
            st.initialized = initialized;
            st.client_name = client_name;
        }
        conn
    }

    fn start_call(&self, id: &RequestId) -> Arc<AtomicBool> {
        let mut st = self.lock();
        let flag = Arc::new(AtomicBool::new(false));
        if let Some(pos) = st.cancelled_early.iter().position(|c| c == id) {
            st.cancelled_early.remove(pos);
            flag.store(true, Ordering::SeqCst);
        }
        st.running.insert(id.clone(), flag.clone());
        flag
    }

    fn end_call(&self, id: &RequestId) {
        self.lock().running.remove(id);
    }

    fn cancel(&self, id: RequestId) {
        let mut st = self.lock();
        if let Some(flag) = st.running.get(&id) {
            flag.store(true, Ordering::SeqCst);
        } else {
            if st.cancelled_early.len() >= EARLY_CANCELS {
                st.cancelled_early.pop_front();
            }
            st.cancelled_early.push_back(id);
        }
    }
}

/// Which era a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Era {
    Legacy,
    Modern(&'static str),
}

/// Whether `incoming` holds a `tools/call` request that may change Kimai data
/// ([`tools::call_writes`]; a batch if any of its messages does). The HTTP layer asks this
/// before it serves an OAuth token that may only read; notifications and responses run no tool.
pub fn writes(incoming: &mcp::Incoming) -> bool {
    let writes = |c: &Classified| {
        let Ok(m) = c else { return false };
        let Some(name) = m.tool_name() else {
            return false;
        };
        let empty = Map::new();
        // Arguments that are not an object are refused by `tools/call` itself; as none, they
        // leave the decision to the action (missing: a write).
        let args = m
            .params()
            .and_then(|p| p.get("arguments"))
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        tools::call_writes(name, args)
    };
    match incoming {
        mcp::Incoming::Single(c) => writes(c),
        mcp::Incoming::Batch(items) => items.iter().any(writes),
    }
}

/// The method table over a tool registry. Cheap to share (`&'static` data only).
#[derive(Clone, Copy)]
pub struct Dispatcher {
    tools: &'static [Tool],
}

impl Default for Dispatcher {
    fn default() -> Dispatcher {
        Dispatcher::new()
    }
}

impl Dispatcher {
    /// A dispatcher serving every tool of [`tools::REGISTRY`].
    pub fn new() -> Dispatcher {
        Dispatcher {
            tools: tools::REGISTRY,
        }
    }

    /// A dispatcher over another registry (tests).
    pub fn with_tools(tools: &'static [Tool]) -> Dispatcher {
        Dispatcher { tools }
    }

    /// Handles what one line or body held (parsed and classified by [`mcp::parse_incoming`]):
    /// one message or a batch. Returns the response to send, if any.
    pub fn handle_incoming(
        &self,
        conn: &Connection,
        incoming: mcp::Incoming,
        env: &Env,
    ) -> Option<Value> {
        match incoming {
            mcp::Incoming::Single(msg) => self.handle(conn, msg, env),
            mcp::Incoming::Batch(items) => self.handle_batch(conn, items, env),
        }
    }

    /// Handles a JSON-RPC batch. Only a connection that negotiated 2025-03-26 may send one
    /// (batching exists in that revision alone).
    pub fn handle_batch(
        &self,
        conn: &Connection,
        items: Vec<Classified>,
        env: &Env,
    ) -> Option<Value> {
        if conn.negotiated() != Some("2025-03-26") {
            return Some(mcp::response_err(
                None,
                RpcError::invalid_request(
                    "JSON-RPC batches are only accepted after negotiating protocol version 2025-03-26; send one message at a time",
                ),
            ));
        }
        let replies: Vec<Value> = items
            .into_iter()
            .filter_map(|m| self.handle(conn, m, env))
            .collect();
        if replies.is_empty() {
            None
        } else {
            Some(Value::Array(replies))
        }
    }

    /// Handles one classified message. Returns the response for a request (or for an invalid
    /// message), `None` for notifications, client responses and cancelled calls.
    pub fn handle(&self, conn: &Connection, msg: Classified, env: &Env) -> Option<Value> {
        let msg = match msg {
            Ok(m) => m,
            Err(invalid) => return Some(invalid.response()),
        };
        match msg {
            Message::Response { .. } => None, // we never send requests; nothing to correlate
            Message::Notification { method, params } => {
                self.notification(conn, &method, params.as_ref());
                None
            }
            Message::Request { id, method, params } => {
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    self.request(conn, &id, &method, params.as_ref(), env)
                }));
                match outcome {
                    Ok(Outcome::Result(result)) => Some(mcp::response_ok(&id, result)),
                    Ok(Outcome::Error(err)) => Some(mcp::response_err(Some(&id), err)),
                    Ok(Outcome::Suppressed) => None,
                    Err(panic) => {
                        conn.end_call(&id);
                        let what = panic_text(&panic);
                        log::error!("internal error while handling {method}: {what}");
                        Some(mcp::response_err(
                            Some(&id),
                            RpcError::internal(format!(
                                "the server failed while handling {method}; the error was logged"
                            )),
                        ))
                    }
                }
            }
        }
    }

    fn notification(&self, conn: &Connection, method: &str, params: Option<&Value>) {
        match method {
            "notifications/initialized" => conn.lock().initialized = true,
            "notifications/cancelled" => {
                match params
                    .and_then(|p| p.get("requestId"))
                    .and_then(RequestId::from_value)
                {
                    Some(id) => conn.cancel(id),
                    None => {
                        log::debug!("notifications/cancelled without a usable requestId ignored")
                    }
                }
            }
            other => log::debug!("notification {other} ignored"),
        }
    }

    fn request(
        &self,
        conn: &Connection,
        id: &RequestId,
        method: &str,
        params: Option<&Value>,
        env: &Env,
    ) -> Outcome {
        let era = match era_of(params) {
            Ok(era) => era,
            Err(err) => return Outcome::Error(err),
        };
        if let Era::Modern(version) = era {
            return self.modern(conn, id, method, params, version, env);
        }
        match method {
            "initialize" => initialize(conn, params),
            "ping" => Outcome::Result(json!({})),
            // A dual-era server answers discovery on any connection: it is stateless.
            "server/discover" => Outcome::Result(discover_result()),
            "tools/list" | "tools/call" => {
                if conn.negotiated().is_none() {
                    return Outcome::Error(RpcError::invalid_request(
                        "server not initialized: send \"initialize\" first, or name the protocol version in params._meta",
                    ));
                }
                if method == "tools/list" {
                    Outcome::Result(self.tools_list_result(params, None, env.policy))
                } else {
                    self.call_tool(conn, id, params, env, None)
                }
            }
            other => Outcome::Error(RpcError::method_not_found(other)),
        }
    }

    fn modern(
        &self,
        conn: &Connection,
        id: &RequestId,
        method: &str,
        params: Option<&Value>,
        version: &'static str,
        env: &Env,
    ) -> Outcome {
        let reply = match method {
            "server/discover" => Outcome::Result(discover_result()),
            "tools/list" => {
                Outcome::Result(self.tools_list_result(params, Some(version), env.policy))
            }
            "tools/call" => self.call_tool(conn, id, params, env, Some(version)),
            // `initialize` belongs to the handshake era: in a 2026-07-28 request it is a method
            // this era does not have (HTTP answers it 404, like any unknown method).
            other => Outcome::Error(RpcError::method_not_found(other)),
        };
        match reply {
            Outcome::Result(Value::Object(mut obj)) => {
                obj.insert("resultType".into(), json!("complete"));
                let meta = obj.entry("_meta").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    meta.insert(META_SERVER_INFO.into(), server_info());
                }
                Outcome::Result(Value::Object(obj))
            }
            other => other,
        }
    }
}

impl Dispatcher {
    fn tools_list_result(
        &self,
        params: Option<&Value>,
        modern: Option<&str>,
        policy: &tools::policy::Policy,
    ) -> Value {
        // One page holds every tool; a cursor from a client that pages anyway is accepted and ignored.
        let _ = params;
        let mut result = Map::new();
        let all = tools::list_json(self.tools);
        let list = if policy.is_unrestricted() {
            all.into_owned()
        } else {
            Value::Array(
                self.tools
                    .iter()
                    .zip(all.as_array().into_iter().flatten())
                    .filter_map(|(t, e)| policy.list_entry(t, e))
                    .collect(),
            )
        };
        result.insert("tools".into(), list);
        if modern.is_some() {
            result.insert("ttlMs".into(), json!(LIST_TTL_MS));
            // The list depends on who asks (read-only users, tool selections): a shared cache
            // must not hand one caller's list to another.
            result.insert("cacheScope".into(), json!("private"));
        }
        Value::Object(result)
    }

    fn call_tool(
        &self,
        conn: &Connection,
        id: &RequestId,
        params: Option<&Value>,
        env: &Env,
        modern: Option<&str>,
    ) -> Outcome {
        let Some(Value::Object(p)) = params else {
            return Outcome::Error(RpcError::invalid_params(
                "tools/call needs params with \"name\"",
            ));
        };
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Outcome::Error(RpcError::invalid_params(
                "\"name\" must be a string naming the tool",
            ));
        };
        let available = || {
            self.tools
                .iter()
                .filter(|t| env.policy.offers(t))
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        // A tool the policy leaves nothing of is not there for this connection.
        let tool = tools::find(self.tools, name)
            .filter(|t| env.policy.is_unrestricted() || env.policy.offers(t));
        let Some(tool) = tool else {
            return Outcome::Error(RpcError::invalid_params(format!(
                "Unknown tool: {}. Available tools: {}",
                tools::quote_name(name),
                available()
            )));
        };
        let empty = Map::new();
        let args = match p.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(a)) => a,
            Some(_) => {
                return Outcome::Error(RpcError::invalid_params("\"arguments\" must be an object"));
            }
        };
        let progress_token = mcp::params_meta(params)
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
            .cloned();

        if let Err(why) = env
            .policy
            .check(tool, tools::policy::Policy::action_of(args))
        {
            log::info!(
                target: "kimai_mcp::audit",
                user = env.label,
                tool = tool.name,
                action = tools::policy::Policy::action_of(args).unwrap_or("-"),
                outcome = "refused";
                "{} tool={} action={} outcome=refused (policy)",
                env.label,
                tool.name,
                tools::policy::Policy::action_of(args)
                    .map(|a| a.chars().take(32).filter(char::is_ascii_graphic).collect::<String>())
                    .unwrap_or_else(|| "-".into())
            );
            audit_write(conn, env, tool, args, "refused", None);
            return Outcome::Result(
                tools::CallOutcome::failed(format!("Refused: {why}.")).to_json(),
            );
        }
        let cancelled = conn.start_call(id);
        let started = Instant::now();
        let ctx = tools::Context::new(env.backend, env.notifier, progress_token, &cancelled);
        // A panic inside the tool unwinds to `handle`, which answers -32603 and forgets the call.
        let outcome = tools::call(tool, &ctx, args);
        conn.end_call(id);
        let elapsed = started.elapsed();
        let action = args
            .get("action")
            .or_else(|| args.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        let action: String = action
            .chars()
            .take(32)
            .filter(|c| c.is_ascii_graphic())
            .collect();
        let status = if cancelled.load(Ordering::SeqCst) {
            "cancelled"
        } else if outcome.is_error {
            "error"
        } else {
            "ok"
        };
        if let Some(usage) = &env.backend.usage {
            usage.tool_call(tool.name, status);
        }
        audit_write(
            conn,
            env,
            tool,
            args,
            status,
            outcome.blocks.first().map(String::as_str),
        );
        log::info!(
            target: "kimai_mcp::audit",
            user = env.label,
            tool = tool.name,
            action = action.as_str(),
            outcome = status,
            duration_ms = elapsed.as_millis() as u64,
            era = if modern.is_some() { "modern" } else { "handshake" };
            "{} tool={} action={} outcome={} duration_ms={}{}",
            env.label,
            tool.name,
            action,
            status,
            elapsed.as_millis(),
            modern.map(|_| " era=modern").unwrap_or("")
        );
        if status == "cancelled" {
            return Outcome::Suppressed;
        }
        Outcome::Result(outcome.to_json())
    }
}

/// The audit-log line of a tool call that writes (`--audit-log`); reads are not logged.
fn audit_write(
    conn: &Connection,
    env: &Env,
    tool: &tools::Tool,
    args: &Map<String, Value>,
    outcome: &str,
    output: Option<&str>,
) {
    if crate::audit::enabled() && tools::call_writes(tool.name, args) {
        crate::audit::record(&crate::audit::Entry {
            label: env.label,
            client: conn.client_name().as_deref(),
            tool: tool.name,
            args,
            outcome,
            output,
        });
    }
}

/// What a request produced.
enum Outcome {
    Result(Value),
    Error(RpcError),
    /// The call was cancelled: per the spec no response is sent.
    Suppressed,
}

/// Decides the era of a request from `params._meta` (the modern validation ladder: the envelope
/// keys, then the version).
fn era_of(params: Option<&Value>) -> Result<Era, RpcError> {
    let Some(meta) = mcp::params_meta(params) else {
        return Ok(Era::Legacy);
    };
    let Some(version) = meta.get(META_PROTOCOL_VERSION) else {
        return Ok(Era::Legacy);
    };
    let Some(version) = version.as_str() else {
        return Err(RpcError::invalid_params(format!(
            "params._meta[\"{META_PROTOCOL_VERSION}\"] must be a string"
        )));
    };
    if !meta.contains_key(META_CLIENT_CAPABILITIES) {
        return Err(RpcError::invalid_params(format!(
            "params._meta is missing the required envelope key {META_CLIENT_CAPABILITIES}"
        )));
    }
    match MODERN_VERSIONS.iter().find(|v| **v == version) {
        Some(v) => Ok(Era::Modern(v)),
        None => Err(RpcError::new(
            mcp::code::UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
        )
        .with_data(json!({"supported": MODERN_VERSIONS, "requested": version}))),
    }
}

/// The `Implementation` object naming this server.
pub fn server_info() -> Value {
    json!({
        "name": "kimai-mcp",
        "title": "Kimai MCP",
        "version": crate::VERSION,
        "description": "Track time and manage a Kimai time-tracking server",
    })
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

fn initialize(conn: &Connection, params: Option<&Value>) -> Outcome {
    let Some(Value::Object(p)) = params else {
        return Outcome::Error(RpcError::invalid_params(
            "initialize needs params with \"protocolVersion\"",
        ));
    };
    let Some(requested) = p.get("protocolVersion").and_then(Value::as_str) else {
        return Outcome::Error(RpcError::invalid_params(
            "\"protocolVersion\" must be a string",
        ));
    };
    // Echo a version we speak, else answer the newest legacy one and let the client decide.
    let version = LEGACY_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LATEST_LEGACY);
    let client_name = p
        .get("clientInfo")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .map(|s| s.chars().take(64).collect::<String>());
    {
        let mut st = conn.lock();
        if st.negotiated.is_some() {
            return Outcome::Error(RpcError::invalid_request(
                "the server is already initialized on this connection",
            ));
        }
        st.negotiated = Some(version);
        st.client_name = client_name;
    }
    Outcome::Result(json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    }))
}

fn discover_result() -> Value {
    json!({
        "supportedVersions": MODERN_VERSIONS,
        "capabilities": capabilities(),
        "instructions": INSTRUCTIONS,
        "ttlMs": LIST_TTL_MS,
        "cacheScope": "public",
    })
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::code;

    fn era(meta: Value) -> Result<Era, RpcError> {
        let params = json!({"_meta": meta});
        era_of(Some(&params))
    }

    #[test]
    fn negotiation_echoes_known_versions_and_otherwise_answers_the_newest() {
        for v in LEGACY_VERSIONS {
            let conn = Connection::new();
            let Outcome::Result(r) = initialize(&conn, Some(&json!({"protocolVersion": v}))) else {
                panic!("initialize failed")
            };
            assert_eq!(r["protocolVersion"], json!(v));
            assert_eq!(conn.negotiated(), Some(v));
        }
        for v in ["1999-01-01", "2026-07-28", "2025-11-26"] {
            let conn = Connection::new();
            let Outcome::Result(r) = initialize(&conn, Some(&json!({"protocolVersion": v}))) else {
                panic!("initialize failed")
            };
            assert_eq!(r["protocolVersion"], json!(LATEST_LEGACY), "for {v}");
        }
    }

    #[test]
    fn initialize_needs_a_string_version_and_happens_once() {
        let conn = Connection::new();
        assert!(
            matches!(initialize(&conn, None), Outcome::Error(e) if e.code == code::INVALID_PARAMS)
        );
        assert!(
            matches!(initialize(&conn, Some(&json!({"protocolVersion": 5}))), Outcome::Error(e) if e.code == code::INVALID_PARAMS)
        );
        assert!(matches!(
            initialize(&conn, Some(&json!({"protocolVersion": "2025-06-18"}))),
            Outcome::Result(_)
        ));
        assert!(
            matches!(initialize(&conn, Some(&json!({"protocolVersion": "2025-06-18"}))), Outcome::Error(e) if e.code == code::INVALID_REQUEST)
        );
    }

    #[test]
    fn modern_era_is_recognised_from_meta() {
        assert_eq!(era_of(None).unwrap(), Era::Legacy);
        assert_eq!(era(json!({"progressToken": 1})).unwrap(), Era::Legacy);
        assert_eq!(
            era(json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: {}}))
                .unwrap(),
            Era::Modern("2026-07-28")
        );
        let err = era(json!({META_PROTOCOL_VERSION: "2099-01-01", META_CLIENT_CAPABILITIES: {}}))
            .unwrap_err();
        assert_eq!(err.code, code::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            err.data.unwrap(),
            json!({"supported": ["2026-07-28"], "requested": "2099-01-01"})
        );
        let err = era(json!({META_PROTOCOL_VERSION: "2026-07-28"})).unwrap_err();
        assert_eq!(err.code, code::INVALID_PARAMS);
        let err = era(json!({META_PROTOCOL_VERSION: 20260728})).unwrap_err();
        assert_eq!(err.code, code::INVALID_PARAMS);
    }

    fn panicking(
        _: &tools::Context,
        args: &Map<String, Value>,
    ) -> Result<tools::Output, tools::ToolError> {
        if args.contains_key("boom") {
            panic!("boom requested");
        }
        Ok(tools::Output::text("fine"))
    }

    fn cancel_self(
        ctx: &tools::Context,
        _: &Map<String, Value>,
    ) -> Result<tools::Output, tools::ToolError> {
        // Simulates a cancellation that arrives while the call runs.
        ctx.test_cancel();
        Ok(tools::Output::text("too late"))
    }

    fn open_schema() -> Value {
        json!({"type": "object", "properties": {"boom": {"type": "boolean"}}, "additionalProperties": false})
    }

    static TEST_TOOLS: &[Tool] = &[
        Tool {
            name: "fragile",
            title: "Fragile",
            description: "panics on request",
            schema: open_schema,
            read_only: true,
            destructive: false,
            idempotent: true,
            handler: panicking,
        },
        Tool {
            name: "cancelled",
            title: "Cancelled",
            description: "cancelled while running",
            schema: open_schema,
            read_only: true,
            destructive: false,
            idempotent: true,
            handler: cancel_self,
        },
    ];

    struct Fixture {
        backend: Account,
    }

    impl Fixture {
        fn new() -> Fixture {
            // Never contacted: the test tools make no Kimai request.
            let client = crate::kimai::Client::new(crate::kimai::Settings::new(
                "http://127.0.0.1:9",
                crate::kimai::Tls::Verify,
            ))
            .unwrap();
            Fixture {
                backend: Account {
                    usage: None,
                    client: Arc::new(client),
                    token: crate::kimai::Token::new("t".into()),
                },
            }
        }
        fn send(&self, d: &Dispatcher, conn: &Connection, v: Value) -> Option<Value> {
            d.handle(
                conn,
                mcp::classify(v),
                &Env {
                    backend: &self.backend,
                    notifier: &mcp::NoNotifier,
                    label: "test",
                    policy: &crate::tools::policy::Policy::default(),
                },
            )
        }
    }

    fn init(f: &Fixture, d: &Dispatcher, conn: &Connection, version: &str) {
        let r = f.send(d, conn, json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":version,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}})).unwrap();
        assert_eq!(r["result"]["protocolVersion"], json!(version));
    }

    #[test]
    fn a_panicking_tool_costs_one_request_not_the_connection() {
        let (f, d, conn) = (
            Fixture::new(),
            Dispatcher::with_tools(TEST_TOOLS),
            Connection::new(),
        );
        init(&f, &d, &conn, "2025-11-25");
        let r = f.send(&d, &conn, json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fragile","arguments":{"boom":true}}})).unwrap();
        assert_eq!(r["error"]["code"], json!(code::INTERNAL_ERROR));
        assert_eq!(r["id"], json!(1));
        let r = f.send(&d, &conn, json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fragile","arguments":{}}})).unwrap();
        assert_eq!(r["result"]["content"][0]["text"], json!("fine"));
        assert!(conn.lock().running.is_empty());
    }

    #[test]
    fn lifecycle_rules() {
        let (f, d, conn) = (
            Fixture::new(),
            Dispatcher::with_tools(TEST_TOOLS),
            Connection::new(),
        );
        // Before initialize: ping works, tools do not, unknown methods are -32601.
        let r = f
            .send(&d, &conn, json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .unwrap();
        assert_eq!(r["result"], json!({}));
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
            )
            .unwrap();
        assert_eq!(r["error"]["code"], json!(code::INVALID_REQUEST));
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("initialize")
        );
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":3,"method":"resources/list"}),
            )
            .unwrap();
        assert_eq!(r["error"]["code"], json!(code::METHOD_NOT_FOUND));
        assert_eq!(
            f.send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","method":"notifications/initialized"})
            ),
            None
        );
        init(&f, &d, &conn, "2025-06-18");
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":"s","method":"tools/list"}),
            )
            .unwrap();
        assert_eq!(r["id"], json!("s"));
        assert_eq!(r["result"]["tools"].as_array().unwrap().len(), 2);
        assert!(r["result"].get("resultType").is_none());
        // Unknown tool and bad arguments shape are protocol errors.
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}),
            )
            .unwrap();
        assert_eq!(r["error"]["code"], json!(code::INVALID_PARAMS));
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Available tools: fragile, cancelled")
        );
        let r = f.send(&d, &conn, json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fragile","arguments":[1]}})).unwrap();
        assert_eq!(r["error"]["code"], json!(code::INVALID_PARAMS));
        // Schema violations are tool results with isError.
        let r = f.send(&d, &conn, json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"fragile","arguments":{"boom":"yes"}}})).unwrap();
        assert_eq!(r["result"]["isError"], json!(true));
        assert!(
            r["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("argument 'boom' must be a boolean")
        );
    }

    #[test]
    fn batches_only_with_2025_03_26() {
        let f = Fixture::new();
        let d = Dispatcher::with_tools(TEST_TOOLS);
        let conn = Connection::new();
        init(&f, &d, &conn, "2025-11-25");
        let batch = json!([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]);
        let r = d
            .handle_incoming(
                &conn,
                mcp::parse_incoming(batch.to_string().as_bytes()).unwrap(),
                &Env {
                    backend: &f.backend,
                    notifier: &mcp::NoNotifier,
                    label: "t",
                    policy: &crate::tools::policy::Policy::default(),
                },
            )
            .unwrap();
        assert_eq!(r["error"]["code"], json!(code::INVALID_REQUEST));
        let conn = Connection::new();
        init(&f, &d, &conn, "2025-03-26");
        let batch = json!([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"nope"}]);
        let r = d
            .handle_incoming(
                &conn,
                mcp::parse_incoming(batch.to_string().as_bytes()).unwrap(),
                &Env {
                    backend: &f.backend,
                    notifier: &mcp::NoNotifier,
                    label: "t",
                    policy: &crate::tools::policy::Policy::default(),
                },
            )
            .unwrap();
        let r = r.as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["id"], json!(1));
        assert_eq!(r[1]["error"]["code"], json!(code::METHOD_NOT_FOUND));
    }

    #[test]
    fn modern_requests_are_served_without_a_handshake() {
        let (f, d, conn) = (
            Fixture::new(),
            Dispatcher::with_tools(TEST_TOOLS),
            Connection::new(),
        );
        let meta = json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: {}});
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":meta}}),
            )
            .unwrap();
        assert_eq!(r["result"]["supportedVersions"], json!(["2026-07-28"]));
        assert_eq!(r["result"]["resultType"], json!("complete"));
        assert_eq!(r["result"]["cacheScope"], json!("public"));
        assert_eq!(
            r["result"]["_meta"][META_SERVER_INFO]["name"],
            json!("kimai-mcp")
        );
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":meta}}),
            )
            .unwrap();
        assert!(r["result"]["ttlMs"].as_u64().is_some());
        assert_eq!(r["result"]["resultType"], json!("complete"));
        let r = f.send(&d, &conn, json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta":meta,"name":"fragile"}})).unwrap();
        assert_eq!(r["result"]["content"][0]["text"], json!("fine"));
        assert_eq!(r["result"]["resultType"], json!("complete"));
        let r = f
            .send(
                &d,
                &conn,
                json!({"jsonrpc":"2.0","id":4,"method":"ping","params":{"_meta":meta}}),
            )
            .unwrap();
        assert_eq!(r["error"]["code"], json!(code::METHOD_NOT_FOUND));
        // The connection itself stays un-negotiated.
        assert_eq!(conn.negotiated(), None);
    }

    #[test]
    fn a_call_cancelled_while_running_sends_no_result() {
        let (f, d, conn) = (
            Fixture::new(),
            Dispatcher::with_tools(TEST_TOOLS),
            Connection::new(),
        );
        init(&f, &d, &conn, "2025-11-25");
        let r = f.send(
            &d,
            &conn,
            json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"cancelled"}}),
        );
        assert_eq!(r, None);
    }

    #[test]
    fn early_cancellation_applies_when_the_call_starts() {
        let conn = Connection::new();
        conn.cancel(RequestId::Number(9));
        assert!(
            conn.start_call(&RequestId::Number(9))
                .load(Ordering::SeqCst)
        );
        assert!(
            !conn
                .start_call(&RequestId::Number(10))
                .load(Ordering::SeqCst)
        );
        conn.cancel(RequestId::Number(10));
        assert!(conn.lock().running[&RequestId::Number(10)].load(Ordering::SeqCst));
        for i in 0..200 {
            conn.cancel(RequestId::Number(1000 + i));
        }
        assert!(conn.lock().cancelled_early.len() <= EARLY_CANCELS);
    }
}
