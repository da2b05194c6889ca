//! The answers the HTTP layer gives on its own (not the dispatcher's): a JSON-RPC error body
//! with the right status, and the common refusals (405, 429, 503), each written once.

use super::server::{Handled, Response};
use super::work::Busy;
use crate::mcp::code;
use serde_json::{Value, json};
use std::time::Duration;

/// A JSON-RPC error body with no id (transport-level errors).
pub fn json_error(status: u16, code: i64, message: &str) -> Handled {
    let body =
        json!({"jsonrpc": "2.0", "id": Value::Null, "error": {"code": code, "message": message}});
    Handled::Respond(Response::new(status).body("application/json", body.to_string()))
}

/// `reply` with one more header (replies built by `json_error` are never streams).
pub fn with_header(reply: Handled, name: &str, value: &str) -> Handled {
    match reply {
        Handled::Respond(r) => Handled::Respond(r.header(name, value)),
        other => other,
    }
}

/// 503 for a full session table.
pub fn at_capacity() -> Handled {
    with_header(
        json_error(
            503,
            code::SERVER_ERROR,
            "Server at capacity: too many open sessions; try again later",
        ),
        "Retry-After",
        "30",
    )
}

pub fn too_many(wait: Duration, message: &str) -> Handled {
    let secs = wait.as_secs().max(1);
    with_header(
        json_error(429, code::SERVER_ERROR, message),
        "Retry-After",
        &secs.to_string(),
    )
}

pub fn method_not_allowed(allow: &str) -> Handled {
    with_header(
        json_error(
            405,
            code::SERVER_ERROR,
            &format!("Method Not Allowed: use {allow}"),
        ),
        "Allow",
        allow,
    )
}

/// The reply for a call that found no place.
pub fn busy(why: &Busy) -> Handled {
    match why {
        Busy::Caller(_) => with_header(
            json_error(429, code::SERVER_ERROR, &why.message()),
            "Retry-After",
            "2",
        ),
        Busy::Server | Busy::State => with_header(
            json_error(503, code::SERVER_ERROR, &why.message()),
            "Retry-After",
            "5",
        ),
    }
}

/// The refusal of a batch with more than `--max-batch` messages: 400, -32600 naming the limit.
pub fn batch_too_large(max: usize) -> Value {
    crate::mcp::response_err(
        None,
        crate::mcp::RpcError::invalid_request(format!(
            "a batch may hold at most {max} messages (the server's --max-batch); send the rest in another request"
        )),
    )
}
