//! The simulator's wire types: the request as the handlers see it ([`Req`]), the owned reply
//! they return ([`Answer`], written to the socket by `http`), and the small helpers every
//! handler shares (Kimai's generic error replies, the `\d+` path-segment rule).
//!
//! Imported by the router (`api`) and every handler module (`admin`, `plugin`, `writes`); it
//! imports none of them, nor `data`: it knows HTTP-shaped values, not Kimai's rules.

use serde_json::{Value, json};

/// A request as the API layer sees it.
pub struct Req {
    pub method: String,
    pub path: String,
    /// Decoded, in order; repeated keys kept (`users[]=1&users[]=2`).
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    /// Legacy `X-AUTH-USER` / `X-AUTH-TOKEN` headers (§1.2).
    pub x_auth: Option<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn param(&self, name: &str) -> Option<&str> {
        // PHP keeps the last occurrence of a scalar parameter.
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn array(&self, name: &str) -> Vec<&str> {
        let key = format!("{name}[]");
        self.query
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An owned HTTP reply; `http.rs` writes it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub content_type: Option<&'static str>,
}

impl Answer {
    pub fn json(status: u16, v: &Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(v).unwrap_or_default(),
            content_type: Some("application/json"),
        }
    }
    /// A 200 with an already serialised JSON body.
    pub fn raw_json(body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body,
            content_type: Some("application/json"),
        }
    }
    pub fn ok(v: Value) -> Answer {
        Answer::json(200, &v)
    }
    /// Kimai's generic production error body (§2.1).
    pub fn error(status: u16) -> Answer {
        let message = match status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            413 => "Payload Too Large",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Error",
        };
        Answer::json(status, &json!({"code": status, "message": message}))
    }
    pub fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            content_type: None,
        }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

pub type Res = Result<Answer, Answer>;

pub fn bad() -> Answer {
    Answer::error(400)
}
pub fn forbidden() -> Answer {
    Answer::error(403)
}
pub fn not_found() -> Answer {
    Answer::error(404)
}

/// Kimai's `\d+` requirement; anything else does not match a route (→ 404).
pub fn id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
