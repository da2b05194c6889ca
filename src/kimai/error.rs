//! `kimai::Error`: every way a Kimai call can fail and the short hints the tools append for the
//! user or the model. How ureq's errors map onto these cases is the client's business
//! (`client.rs`); this file knows nothing of the HTTP library.
//!
//! Missing routes are folded into [`Error::Api`]: [`Error::is_missing_route`] tells a 405 or a
//! debug-mode "No route found" 404 apart, so callers can say "needs a newer Kimai".
//!
//! Pure values, no shared state; built on the thread that made the call.

use std::fmt;

use super::Method;

/// What went wrong with a Kimai call. `Display` is short and starts lowercase (ureq's style),
/// never contains a token; [`Error::hint`] says what to check.
#[derive(Debug)]
pub enum Error {
    /// Kimai answered with an error status, or a 2xx carrying an error envelope
    /// (`{"code": 400, "message": …}`, then `status` is that code). `message` is Kimai's own
    /// message (or the HTTP reason phrase when the body is not Kimai's JSON); `details` is the
    /// `errors` object of a validation failure with empty `{}` children removed. A 3xx also
    /// lands here: `message` names the redirect target.
    Api {
        status: u16,
        message: String,
        details: Option<serde_json::Value>,
        method: Method,
        path: String,
    },
    /// 401: the token is unknown, expired, revoked or its user disabled. `reason` comes from
    /// `WWW-Authenticate: Bearer error_description="…"` or the JSON `message`.
    Unauthorized { reason: Option<String> },
    /// A configured timeout expired; `connect` when it was DNS, TCP connect or TLS handshake.
    Timeout { connect: bool },
    /// The TCP connection could not be made (refused, host or network unreachable).
    Connect(String),
    /// The host name did not resolve.
    Dns(String),
    /// TLS failed: untrusted or expired certificate, name mismatch, handshake failure.
    Tls(String),
    /// An established connection broke (reset, closed mid-response) or the server did not speak
    /// HTTP.
    Io(String),
    /// The response body exceeded `Settings::max_body_bytes`.
    BodyTooLarge { limit: usize },
    /// A 2xx whose body is not JSON (garbage, truncated, an HTML page).
    InvalidBody { status: u16, detail: String },
    /// The caller's cancellation check said stop before an attempt.
    Cancelled,
    /// Bad client settings: base URL, CA file, proxy, a token unfit for a header.
    Config(String),
}

/// Wording of [`Error::InvalidBody`] for HTML, also used by [`Error::hint`] to recognise it.
pub(crate) const NOT_KIMAI_API: &str = "the URL does not look like a Kimai API";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api {
                status,
                message,
                method,
                path,
                ..
            } => {
                write!(
                    f,
                    "kimai answered {status} to {method} /api{path}: {message}"
                )
            }
            Error::Unauthorized { reason: Some(r) } => {
                write!(f, "kimai rejected the API token (401): {r}")
            }
            Error::Unauthorized { reason: None } => write!(f, "kimai rejected the API token (401)"),
            Error::Timeout { connect: true } => write!(f, "timed out connecting to kimai"),
            Error::Timeout { connect: false } => write!(f, "kimai did not answer in time"),
            Error::Connect(s) => write!(f, "cannot connect to kimai: {s}"),
            Error::Dns(s) => write!(f, "cannot resolve the kimai host name: {s}"),
            Error::Tls(s) => write!(f, "tls: {s}"),
            Error::Io(s) => write!(f, "connection to kimai failed: {s}"),
            Error::BodyTooLarge { limit } => {
                write!(f, "kimai response larger than the {limit} byte limit")
            }
            Error::InvalidBody { status, detail } => {
                write!(f, "invalid kimai response (status {status}): {detail}")
            }
            Error::Cancelled => write!(f, "request cancelled"),
            Error::Config(s) => write!(f, "kimai client setting: {s}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The HTTP status Kimai answered with, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::InvalidBody { status, .. } => Some(*status),
            Error::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// Whether a later attempt may well succeed: exactly what the client retries for reads
    /// (429, 502, 503, a broken established connection). Timeouts, refused connections, DNS
    /// failures and 504 are not transient in this sense (the Python client agrees).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { status, .. } => matches!(status, 429 | 502 | 503),
            Error::Io(_) => true,
            _ => false,
        }
    }

    /// A 405, or a 404 with Kimai's debug-mode routing wording: the endpoint does not exist on
    /// this Kimai (probably older than the endpoint). In production Kimai a missing route is a
    /// plain `{"code":404,"message":"Not Found"}`, indistinguishable from a missing entity.
    pub fn is_missing_route(&self) -> bool {
        match self {
            Error::Api { status: 405, .. } => true,
            Error::Api {
                status: 404,
                message,
                ..
            } => message.contains("No route found"),
            _ => false,
        }
    }

    /// What the user should check, or `None` when Kimai's own message says it all.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::Unauthorized { .. } => {
                "check the Kimai API token: it may be mistyped, revoked or expired, or its user disabled"
            }
            Error::Api { status: 403, .. } => {
                "the token's Kimai user lacks the permission for this action (Kimai checks roles, teams and customer/project access)"
            }
            e if e.is_missing_route() => {
                "this endpoint does not exist on this Kimai; it needs a newer Kimai version (or the plugin that provides it)"
            }
            Error::Api {
                status: 404,
                path,
                method: Method::Get,
                ..
            } if path == "/version" => {
                "the URL does not point to a Kimai API: use the address of the Kimai web interface, without /api"
            }
            Error::Api {
                status: 300..=399, ..
            } => {
                "the Kimai URL redirects: use the redirect target as the Kimai URL (often https:// instead of http://)"
            }
            Error::Api { status: 429, .. } => {
                "Kimai is limiting the request rate; wait a moment and try again"
            }
            Error::Api {
                status: 502..=504, ..
            } => "Kimai or the proxy in front of it is unavailable or overloaded; try again later",
            Error::Api { status: 500, .. } => {
                "Kimai failed internally; its log (var/log/) has the details"
            }
            Error::Api { .. } => return None,
            Error::Timeout { connect: true } => {
                "check that the Kimai host and port are reachable from here (firewall, VPN, proxy)"
            }
            Error::Timeout { connect: false } => {
                "Kimai is slow to answer: try a narrower query or a longer timeout"
            }
            Error::Connect(_) => {
                "check the host and port of the Kimai URL and that Kimai is running"
            }
            Error::Dns(_) => {
                "check the host name in the Kimai URL (a typo, or does it need a VPN or internal DNS?)"
            }
            Error::Tls(_) => {
                "the server's certificate is not trusted: for an internal CA set the TLS verification setting (--ssl-verify / KIMAI_SSL_VERIFY) to the CA's PEM file"
            }
            Error::Io(_) => {
                "the connection broke; try again, and check any proxy between here and Kimai"
            }
            Error::BodyTooLarge { .. } => "narrow the query (filters, a smaller page size)",
            Error::InvalidBody { detail, .. } if detail.starts_with(NOT_KIMAI_API) => {
                "check the Kimai URL: it should be the address of the Kimai web interface, without /api"
            }
            Error::InvalidBody { .. } => {
                "Kimai sent a broken response; try again, and check any proxy in between"
            }
            Error::Cancelled => return None,
            Error::Config(_) => return None,
        })
    }
}

/// Removes `{}` children (and then-empty containers) from a validation `errors` object, so that
/// only the fields with problems remain (Kimai lists every form field, most of them as `{}`).
/// Returns `None` when nothing is left.
pub(crate) fn prune_empty(v: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let kept: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| prune_empty(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(a) => {
            // Keep positions in collections (team members) so an index still means something.
            let items: Vec<Value> = a
                .iter()
                .map(|v| prune_empty(v).unwrap_or(Value::Null))
                .collect();
            items
                .iter()
                .any(|v| !v.is_null())
                .then_some(Value::Array(items))
        }
        Value::Null => None,
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(status: u16, message: &str, path: &str) -> Error {
        Error::Api {
            status,
            message: message.into(),
            details: None,
            method: Method::Get,
            path: path.into(),
        }
    }

    #[test]
    fn prune_keeps_only_problems() {
        let form = json!({
            "errors": ["This form should not contain extra fields."],
            "children": {
                "begin": {}, "end": {},
                "project": {"errors": ["A project needs to be selected."]},
                "members": {"children": [{"children": {"user": {}, "teamlead": {}}},
                                          {"children": {"user": {"errors": ["bad"]}}}]},
                "tags": {}
            }
        });
        assert_eq!(
            prune_empty(&form).unwrap(),
            json!({
                "errors": ["This form should not contain extra fields."],
                "children": {
                    "project": {"errors": ["A project needs to be selected."]},
                    "members": {"children": [null, {"children": {"user": {"errors": ["bad"]}}}]}
                }
            })
        );
        assert_eq!(prune_empty(&json!({"children": {"a": {}, "b": {}}})), None);
    }

    #[test]
    fn display_and_hints() {
        let e = api(400, "Validation Failed", "/timesheets");
        assert_eq!(
            e.to_string(),
            "kimai answered 400 to GET /api/timesheets: Validation Failed"
        );
        assert_eq!(e.hint(), None);
        assert!(api(405, "Method Not Allowed", "/x").is_missing_route());
        assert!(api(404, "No route found for \"GET /api/x\"", "/x").is_missing_route());
        assert!(!api(404, "Not Found", "/timesheets/9").is_missing_route());
        assert!(
            api(404, "Not Found", "/version")
                .hint()
                .unwrap()
                .contains("Kimai API")
        );
        assert!(
            api(403, "Forbidden", "/users")
                .hint()
                .unwrap()
                .contains("permission")
        );
        assert!(
            Error::Unauthorized { reason: None }
                .hint()
                .unwrap()
                .contains("token")
        );
        assert_eq!(Error::Unauthorized { reason: None }.status(), Some(401));
        assert!(api(503, "Service Unavailable", "/x").is_transient());
        assert!(!api(504, "Gateway Timeout", "/x").is_transient());
        assert!(!Error::Timeout { connect: false }.is_transient());
        assert!(!Error::Connect("x".into()).is_transient());
    }
}
