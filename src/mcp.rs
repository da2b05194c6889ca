//! JSON-RPC 2.0 and MCP wire types: request ids, the error object and its codes, the
//! protocol-version constants, and the parsing of one incoming message.
//!
//! This module owns the *shapes* only. It performs no I/O and knows nothing of Kimai, HTTP or
//! sessions; `dispatch` decides what a message means. Params are kept raw (`Value`) until the
//! method is known, as rust-analyzer's lsp-server does, so that the right error code falls out.

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// JSON-RPC error codes (JSON-RPC 2.0 §5.1 and MCP `schema.ts`).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// 2026-07-28: the version named in `_meta` is not one this server speaks.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// 2026-07-28: an HTTP header disagrees with the body (Streamable HTTP only).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// Implementation-defined server error (JSON-RPC's -32000 … -32099 range): the transport
    /// refused the request (authentication, limits, malformed HTTP), not the method.
    pub const SERVER_ERROR: i64 = -32000;
    /// The session named by `Mcp-Session-Id` (or the SSE session id) is unknown, expired or
    /// someone else's: the client starts a new one.
    pub const SESSION_NOT_FOUND: i64 = -32001;
}

/// The handshake-era ("legacy") revisions, oldest first. The last one is preferred.
pub const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest legacy revision: the answer to an `initialize` naming a version we do not know.
pub const LATEST_LEGACY: &str = "2025-11-25";
/// The stateless ("modern") revisions served without a handshake.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];
/// The `_meta` key that marks a request of the modern era and names its version.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key under which modern results carry the server's `Implementation`.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Every version this server can speak, legacy first.
pub fn all_versions() -> Vec<&'static str> {
    LEGACY_VERSIONS
        .iter()
        .chain(MODERN_VERSIONS.iter())
        .copied()
        .collect()
}

/// A request id: JSON-RPC allows a string or a number (MCP forbids null).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl RequestId {
    /// Reads an id from JSON; `None` for null, floats, objects and the like.
    pub fn from_value(v: &Value) -> Option<RequestId> {
        match v {
            Value::String(s) => Some(RequestId::String(s.clone())),
            Value::Number(n) => n.as_i64().map(RequestId::Number),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Number(n) => Value::from(*n),
            RequestId::String(s) => Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    pub fn parse(detail: impl fmt::Display) -> RpcError {
        RpcError::new(code::PARSE_ERROR, format!("Parse error: {detail}"))
    }

    pub fn invalid_request(detail: impl fmt::Display) -> RpcError {
        RpcError::new(code::INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    pub fn method_not_found(method: &str) -> RpcError {
        RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }

    pub fn invalid_params(detail: impl fmt::Display) -> RpcError {
        RpcError::new(code::INVALID_PARAMS, format!("Invalid params: {detail}"))
    }

    pub fn internal(detail: impl fmt::Display) -> RpcError {
        RpcError::new(code::INTERNAL_ERROR, format!("Internal error: {detail}"))
    }
}

/// A response to send: a result or an error, with the id of the request it answers
/// (`None` only for errors about a message whose id could not be read).
pub fn response_ok(id: &RequestId, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.to_value(), "result": result})
}

pub fn response_err(id: Option<&RequestId>, err: RpcError) -> Value {
    let id = id.map(RequestId::to_value).unwrap_or(Value::Null);
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

/// A notification to send (server -> client).
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// Where a transport delivers server -> client notifications (progress) for one connection.
/// Implementations must not block for long: stdio queues to its writer thread, HTTP to the
/// response stream of the call.
pub trait Notifier: Send + Sync {
    fn notify(&self, message: Value);
}

/// Sends notifications into a channel (the stdio writer, an SSE stream, a streamed response).
/// A closed channel means nobody is listening any more; the notification is dropped.
pub struct ChannelNotifier(pub std::sync::mpsc::Sender<Value>);

impl Notifier for ChannelNotifier {
    fn notify(&self, message: Value) {
        let _ = self.0.send(message);
    }
}

/// A notifier for contexts with nowhere to send notifications (e.g. `check`).
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _message: Value) {}
}

/// One incoming JSON-RPC message, classified. Params stay raw until the method is known.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A response from the client (to a server -> client request; we send none, so these are
    /// accepted and dropped).
    Response { id: Option<RequestId> },
}

impl Message {
    /// Classifies one JSON value. On failure returns the error to send and, when it could be
    /// read, the id to send it with.
    // The error is built once per malformed message and sent at once; boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn from_value(v: Value) -> Result<Message, (Option<RequestId>, RpcError)> {
        let Value::Object(mut obj) = v else {
            return Err((
                None,
                RpcError::invalid_request("a message must be a JSON object"),
            ));
        };
        let raw_id = obj.remove("id");
        let id = match &raw_id {
            None => None,
            Some(v) => match RequestId::from_value(v) {
                Some(id) => Some(id),
                None => {
                    return Err((
                        None,
                        RpcError::invalid_request("\"id\" must be a string or an integer"),
                    ));
                }
            },
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err((id, RpcError::invalid_request("\"jsonrpc\" must be \"2.0\"")));
        }
        if obj.contains_key("result") || obj.contains_key("error") {
            if obj.contains_key("method") {
                return Err((
                    id,
                    RpcError::invalid_request("a message cannot be both a request and a response"),
                ));
            }
            return Ok(Message::Response { id });
        }
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            Some(_) => return Err((id, RpcError::invalid_request("\"method\" must be a string"))),
            None => return Err((id, RpcError::invalid_request("\"method\" is missing"))),
        };
        // `params`, when present, must be an object or an array (JSON-RPC 2.0 §4.2). MCP only
        // uses objects; arrays are refused by the method handlers with -32602. A null params is
        // treated like an absent one: several clients send it for parameterless methods.
        let params = match obj.remove("params") {
            None | Some(Value::Null) => None,
            Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
            Some(_) => {
                return Err((
                    id,
                    RpcError::invalid_request("\"params\" must be an object or an array"),
                ));
            }
        };
        Ok(match id {
            Some(id) => Message::Request { id, method, params },
            None => Message::Notification { method, params },
        })
    }
}

impl Message {
    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    /// The id of a request (or of a client response).
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Message::Request { id, .. } => Some(id),
            Message::Response { id } => id.as_ref(),
            Message::Notification { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => {
                params.as_ref()
            }
            Message::Response { .. } => None,
        }
    }

    /// `params._meta`, when it is an object.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        params_meta(self.params())
    }

    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request { .. })
    }

    /// A `tools/call` request: the only kind of message that may take long.
    pub fn is_tool_call(&self) -> bool {
        matches!(self, Message::Request { method, .. } if method == "tools/call")
    }

    /// Whether the request carries a `progressToken` (its caller wants progress notifications).
    pub fn has_progress_token(&self) -> bool {
        self.meta().is_some_and(|m| m.contains_key("progressToken"))
    }

    /// The protocol version a 2026-07-28 request names in `_meta` (any JSON value; the
    /// dispatcher checks it). `None` for a request of the handshake era.
    pub fn meta_protocol_version(&self) -> Option<&Value> {
        self.meta()?.get(META_PROTOCOL_VERSION)
    }

    /// The tool a `tools/call` names.
    pub fn tool_name(&self) -> Option<&str> {
        if !self.is_tool_call() {
            return None;
        }
        self.params()?.get("name")?.as_str()
    }
}

/// A message that could not be classified: the error to answer, with the message's id when it
/// could be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub id: Option<RequestId>,
    pub error: RpcError,
}

impl Invalid {
    /// The error response to send.
    pub fn response(&self) -> Value {
        response_err(self.id.as_ref(), self.error.clone())
    }
}

/// One message as read: classified, or invalid with the error to answer.
pub type Classified = Result<Message, Invalid>;

/// Classifies one JSON value ([`Message::from_value`]).
// As for `Message::from_value`: the error is built once per malformed message and answered at
// once; boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub fn classify(v: Value) -> Classified {
    Message::from_value(v).map_err(|(id, error)| Invalid { id, error })
}

/// The result of reading one line or body: a single message or a batch, each message
/// classified once, here; transports and the dispatcher use the classification.
#[derive(Debug)]
pub enum Incoming {
    Single(Classified),
    Batch(Vec<Classified>),
}

impl Incoming {
    /// Whether it holds a tool call (the only kind of request that waits for a place).
    pub fn holds_tool_call(&self) -> bool {
        let call = |c: &Classified| c.as_ref().is_ok_and(Message::is_tool_call);
        match self {
            Incoming::Single(c) => call(c),
            Incoming::Batch(items) => items.iter().any(call),
        }
    }
}

/// Parses raw bytes into one message or a batch, each classified. On failure returns the
/// -32700/-32600 error response to send (with a null id).
pub fn parse_incoming(bytes: &[u8]) -> Result<Incoming, Value> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| response_err(None, RpcError::parse("input is not valid UTF-8")))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| response_err(None, RpcError::parse(e)))?;
    match value {
        Value::Array(items) if items.is_empty() => Err(response_err(
            None,
            RpcError::invalid_request("an empty batch is not allowed"),
        )),
        Value::Array(items) => Ok(Incoming::Batch(items.into_iter().map(classify).collect())),
        other => Ok(Incoming::Single(classify(other))),
    }
}

/// Extracts `params._meta` if present.
pub fn params_meta(params: Option<&Value>) -> Option<&Map<String, Value>> {
    params?.get("_meta")?.as_object()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::result_large_err)] // mirrors `Message::from_value`
    fn msg(v: Value) -> Result<Message, (Option<RequestId>, RpcError)> {
        Message::from_value(v)
    }

    #[test]
    fn ids_are_numbers_or_strings() {
        let m = msg(json!({"jsonrpc":"2.0","id":7,"method":"ping"})).unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: RequestId::Number(7),
                method: "ping".into(),
                params: None
            }
        );
        let m = msg(json!({"jsonrpc":"2.0","id":"a-1","method":"ping"})).unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: RequestId::String("a-1".into()),
                method: "ping".into(),
                params: None
            }
        );
        // The string "7" and the number 7 are different ids.
        assert_ne!(RequestId::String("7".into()), RequestId::Number(7));
        assert_eq!(RequestId::String("7".into()).to_value(), json!("7"));
        assert_eq!(RequestId::Number(7).to_value(), json!(7));
    }

    #[test]
    fn null_float_or_object_ids_are_invalid() {
        for id in [json!(null), json!(1.5), json!({"a":1}), json!([1])] {
            let (rid, err) = msg(json!({"jsonrpc":"2.0","id":id,"method":"ping"})).unwrap_err();
            assert_eq!(rid, None);
            assert_eq!(err.code, code::INVALID_REQUEST);
        }
    }

    #[test]
    fn null_params_equal_missing_params_but_scalars_are_refused() {
        let a = msg(json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":null})).unwrap();
        let b = msg(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})).unwrap();
        assert_eq!(a, b);
        let (rid, err) =
            msg(json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":3})).unwrap_err();
        assert_eq!(rid, Some(RequestId::Number(1)));
        assert_eq!(err.code, code::INVALID_REQUEST);
        let m = msg(json!({"jsonrpc":"2.0","id":1,"method":"x","params":{}})).unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: RequestId::Number(1),
                method: "x".into(),
                params: Some(json!({}))
            }
        );
    }

    #[test]
    fn notifications_and_responses_are_told_apart() {
        assert_eq!(
            msg(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).unwrap(),
            Message::Notification {
                method: "notifications/initialized".into(),
                params: None
            }
        );
        assert_eq!(
            msg(json!({"jsonrpc":"2.0","id":3,"result":{}})).unwrap(),
            Message::Response {
                id: Some(RequestId::Number(3))
            }
        );
    }

    #[test]
    fn wrong_version_or_missing_method_is_invalid_request() {
        let (rid, err) = msg(json!({"jsonrpc":"1.0","id":1,"method":"ping"})).unwrap_err();
        assert_eq!(
            (rid, err.code),
            (Some(RequestId::Number(1)), code::INVALID_REQUEST)
        );
        let (_, err) = msg(json!({"jsonrpc":"2.0","id":1})).unwrap_err();
        assert_eq!(err.code, code::INVALID_REQUEST);
        let (_, err) = msg(json!({"jsonrpc":"2.0","id":1,"method":5})).unwrap_err();
        assert_eq!(err.code, code::INVALID_REQUEST);
        let (_, err) = msg(json!("hello")).unwrap_err();
        assert_eq!(err.code, code::INVALID_REQUEST);
    }

    #[test]
    fn parse_errors_have_null_id() {
        for bad in [&b"{not json"[..], b"", b"\xff\xfe", b"[]"] {
            let resp = parse_incoming(bad).unwrap_err();
            assert_eq!(resp["id"], Value::Null);
            assert!(
                resp["error"]["code"] == json!(code::PARSE_ERROR)
                    || resp["error"]["code"] == json!(code::INVALID_REQUEST)
            );
        }
        assert_eq!(
            parse_incoming(b"{oops").unwrap_err()["error"]["code"],
            json!(-32700)
        );
        assert_eq!(
            parse_incoming(b"[]").unwrap_err()["error"]["code"],
            json!(-32600)
        );
        assert!(matches!(parse_incoming(b"[{},{}]").unwrap(), Incoming::Batch(v) if v.len() == 2));
    }

    #[test]
    fn error_responses_serialize_without_empty_data() {
        let v = response_err(Some(&RequestId::Number(1)), RpcError::method_not_found("x"));
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found: x"}})
        );
    }
}
