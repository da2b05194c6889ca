//! The Kimai HTTP client: one blocking [`Client`] per Kimai instance (base URL + TLS setting).
//!
//! Owns: authentication (`Authorization: Bearer`, token passed per call, never stored), TLS
//! (webpki roots, a private CA file, or verification off), explicit timeouts, the proxy choice,
//! retries of idempotent reads, the pagination headers and the mapping of every Kimai error shape
//! (`kimai-api/contract.md` §1.3, §2, §3) to one [`Error`] enum.
//!
//! Leaves to others: which endpoint to call and what its JSON means (`tools`), user-facing
//! wording around errors (`tools` adds context to [`Error::hint`]), reading configuration
//! (`config`). Never imports `mcp`, `dispatch`, `tools` or `sim`.
//!
//! Threads: a `Client` is `Send + Sync` and is shared through an `Arc` by every session and
//! worker thread that talks to the same Kimai. It holds no lock of its own; the `ureq::Agent`
//! inside keeps its connection pool behind its own short mutex. A call blocks the calling thread
//! for at most `(max_retries + 1) * timeout` plus the retry waits.
//!
//! Layout: this file holds the public value types and all defaults; `client.rs` the agent, the
//! request loop and the response mapping; `error.rs` the error enum, its classification of ureq
//! errors and the hints; `url.rs` URL normalisation and percent-encoding.

mod account;
mod client;
mod error;
mod memo;
mod probe;
mod url;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use account::{Account, Usage};
pub use client::Client;
pub use error::Error;
pub use memo::Memo;
pub use probe::{Me, Probe};
pub use url::without_api;

// ---------------------------------------------------------------------------------------------
// Defaults: every bound of the client in one place. `Settings::new` copies these; the `config`
// layer may override them per instance.
// ---------------------------------------------------------------------------------------------

/// TCP connect + TLS handshake budget per attempt (ureq `timeout_connect`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Overall budget per request attempt: DNS, connect, send, response head and body
/// (ureq `timeout_global`, which restarts with each attempt). Same 30 s as the Python client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read into memory, in bytes (32 MiB; a 500-row timesheet page is
/// well under 1 MiB).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Retries after the first attempt, for reads (GET) only. Writes are never retried.
pub const MAX_RETRIES: u32 = 2;
/// A `Retry-After` longer than this is not waited for: the error is returned at once.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Wait before retry 1 and retry 2 (and any later retry) when the server sends no `Retry-After`.
pub const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1500)];
/// Largest error-status (non-2xx) body read, in bytes; beyond it the status reason is used.
/// Kimai's largest error bodies (form validation with every field) are a few KiB.
pub const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;
/// Largest CA file (or file in a CA directory) read, in bytes.
pub const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// How long a [`Memo`] keeps what the tools made of a Kimai list (names of projects,
/// activities, users, customers' currencies) for one token: long enough that the calls of one
/// conversation share one read, short enough that a renamed or new project shows up within a
/// minute (a record whose id is missing from a remembered list makes the tools read it again).
pub const MEMO_TTL: Duration = Duration::from_secs(60);
/// Most entries a [`Memo`] holds (one per token and kind of list, about five per token);
/// when full, the oldest entry makes room.
pub const MAX_MEMO_ENTRIES: usize = 256;
/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("kimai-mcp/", env!("CARGO_PKG_VERSION"));

// ---------------------------------------------------------------------------------------------
// TLS and settings
// ---------------------------------------------------------------------------------------------

/// How the server certificate is checked (`--ssl-verify`, `KIMAI_SSL_VERIFY`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Tls {
    /// Verify against the Mozilla (webpki) roots compiled into the binary.
    Verify,
    /// No verification at all (logged as a warning when the client is built).
    NoVerify,
    /// Verify against the certificates of this PEM file only (like `curl --cacert`), or of
    /// every file in this directory. Replaces the built-in roots.
    CaFile(PathBuf),
}

impl Tls {
    /// `true`/`1`/`yes` → [`Tls::Verify`], `false`/`0`/`no` → [`Tls::NoVerify`] (case-insensitive,
    /// surrounding blanks ignored); anything else is a path to a PEM CA file or directory that
    /// must exist. The file's contents are checked by [`Client::new`].
    pub fn parse(s: &str) -> Result<Tls, String> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "" => Err("empty TLS verification setting: use true, false or a CA file path".into()),
            "true" | "1" | "yes" => Ok(Tls::Verify),
            "false" | "0" | "no" => Ok(Tls::NoVerify),
            _ => {
                let path = PathBuf::from(t);
                match std::fs::metadata(&path) {
                    Ok(_) => Ok(Tls::CaFile(path)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(format!("no such file: {}", path.display()))
                    }
                    Err(e) => Err(format!("cannot read CA file {}: {e}", path.display())),
                }
            }
        }
    }
}

/// Everything that shapes one [`Client`]. Build with [`Settings::new`] and override fields.
/// `Debug` hides credentials in the proxy URL.
#[derive(Clone)]
pub struct Settings {
    /// Kimai's base URL, e.g. `https://kimai.example.com` (a trailing slash and a trailing
    /// `/api` are tolerated and removed).
    pub base_url: String,
    pub tls: Tls,
    pub connect_timeout: Duration,
    /// Overall budget of one attempt (see [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    pub max_body_bytes: usize,
    /// Retries of a read after the first attempt (see [`MAX_RETRIES`]).
    pub max_retries: u32,
    pub max_retry_after: Duration,
    /// Waits before retries without `Retry-After` (see [`RETRY_BACKOFF`]); tests shorten them.
    pub retry_backoff: [Duration; 2],
    /// HTTP(S) or SOCKS proxy URL (`http://proxy:3128`, `socks5://…`). `None` (the default)
    /// connects directly: `HTTPS_PROXY`/`ALL_PROXY` in the environment are deliberately **not**
    /// read here, so that a token never travels through a proxy nobody configured for kimai-mcp.
    /// The `config` layer may fill this from the environment if it chooses to.
    pub proxy: Option<String>,
    /// See [`MEMO_TTL`]; zero turns the memo off.
    pub memo_ttl: Duration,
    /// See [`MAX_MEMO_ENTRIES`].
    pub max_memo_entries: usize,
}

impl Settings {
    /// Settings with every bound at its default (the constants above) and no proxy.
    pub fn new(base_url: impl Into<String>, tls: Tls) -> Settings {
        Settings {
            base_url: base_url.into(),
            tls,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: MAX_BODY_BYTES,
            max_retries: MAX_RETRIES,
            max_retry_after: MAX_RETRY_AFTER,
            retry_backoff: RETRY_BACKOFF,
            proxy: None,
            memo_ttl: MEMO_TTL,
            max_memo_entries: MAX_MEMO_ENTRIES,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `scheme://user:pw@host` → `scheme://***@host`.
        let proxy = self
            .proxy
            .as_ref()
            .map(|p| match (p.split_once("://"), p.rfind('@')) {
                (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &p[at..]),
                _ => p.clone(),
            });
        f.debug_struct("Settings")
            .field("base_url", &self.base_url)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .field("retry_backoff", &self.retry_backoff)
            .field("proxy", &proxy)
            .field("memo_ttl", &self.memo_ttl)
            .field("max_memo_entries", &self.max_memo_entries)
            .finish()
    }
}

/// A Kimai API token. A secret: `Debug` prints `Token(***)`, there is no `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Token {
        Token(token)
    }

    /// The raw token, for the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------

/// The four methods the Kimai API uses (there is no PUT, contract §0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Only reads are retried: a write that may have reached Kimai is never sent twice.
    pub fn is_idempotent_read(self) -> bool {
        self == Method::Get
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Kimai API call.
///
/// `path` is relative to `/api`, starts with `/` and is taken literally: characters that are
/// not allowed in a URL path (space, `%`, `?`, `#`, non-ASCII …) are percent-encoded by the
/// client, so do not pre-encode it. Query keys and values are encoded by the client too.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    /// Keep a JSON array response as bytes in [`Response::raw`] instead of parsing it into
    /// `body`, for callers that decode large lists into their own types (statistics over
    /// thousands of records). Objects (errors, the error envelope) are still parsed and checked.
    pub raw_array: bool,
}

impl Request {
    fn new(method: Method, path: impl Into<String>, body: Option<serde_json::Value>) -> Request {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body,
            raw_array: false,
        }
    }

    /// See [`Request::raw_array`].
    pub fn raw_array(mut self) -> Request {
        self.raw_array = true;
        self
    }

    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::Get, path, None)
    }

    pub fn post(path: impl Into<String>, body: serde_json::Value) -> Request {
        Request::new(Method::Post, path, Some(body))
    }

    pub fn patch(path: impl Into<String>, body: serde_json::Value) -> Request {
        Request::new(Method::Patch, path, Some(body))
    }

    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::Delete, path, None)
    }

    /// Appends `k=v`.
    pub fn query(mut self, k: impl Into<String>, v: impl ToString) -> Request {
        self.query.push((k.into(), v.to_string()));
        self
    }

    /// Appends `name[]=a&name[]=b…` (PHP's array syntax; the brackets go out as `%5B%5D`,
    /// which PHP decodes before it parses the key).
    pub fn query_list(
        mut self,
        name: &str,
        values: impl IntoIterator<Item = impl ToString>,
    ) -> Request {
        let key = format!("{name}[]");
        for v in values {
            self.query.push((key.clone(), v.to_string()));
        }
        self
    }
}

/// Keys whose values `Debug` hides (user create carries `plainPassword` / `plainApiToken`).
fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k.contains("token") || k.contains("password") || k.contains("secret")
}

/// A copy of `v` with the values of secret-looking keys replaced by `"***"`.
fn mask_secrets(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::from("***")
                    } else {
                        mask_secrets(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask_secrets).collect()),
        other => other.clone(),
    }
}

impl fmt::Debug for Request {
    /// Like a derived `Debug`, but values of keys that look secret are masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<(&str, &str)> = self
            .query
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_key(k) { "***" } else { v.as_str() },
                )
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &query)
            .field("body", &self.body.as_ref().map(mask_secrets))
            .finish()
    }
}

/// A successful (2xx) Kimai answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// The parsed JSON body; `Value::Null` for 204 and any empty body.
    pub body: serde_json::Value,
    /// The pagination headers, on `/timesheets` and `/invoices` (contract §3).
    pub page: Option<Page>,
    /// The undecoded body of a JSON array, when the request asked for it (`body` is then
    /// `Value::Null`).
    pub raw: Option<Vec<u8>>,
}

/// Kimai's pagination headers; present only when all four are present and decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
    pub total_count: u64,
    pub total_pages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tls_parse_words() {
        for s in ["true", "1", "yes", "TRUE", " Yes "] {
            assert_eq!(Tls::parse(s), Ok(Tls::Verify), "{s}");
        }
        for s in ["false", "0", "no", "False", "NO"] {
            assert_eq!(Tls::parse(s), Ok(Tls::NoVerify), "{s}");
        }
        assert!(Tls::parse("").is_err());
        assert!(Tls::parse("  ").is_err());
    }

    #[test]
    fn tls_parse_paths() {
        let err = Tls::parse("/x/does-not-exist.pem").unwrap_err();
        assert_eq!(err, "no such file: /x/does-not-exist.pem");
        let dir = std::env::temp_dir();
        let f = dir.join(format!("kimai-tls-parse-{}.pem", std::process::id()));
        std::fs::write(&f, "x").unwrap();
        assert_eq!(Tls::parse(f.to_str().unwrap()), Ok(Tls::CaFile(f.clone())));
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn settings_defaults() {
        let s = Settings::new("https://k.example.com", Tls::Verify);
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert_eq!(s.max_body_bytes, 32 << 20);
        assert_eq!(s.max_retries, 2);
        assert_eq!(
            s.retry_backoff,
            [Duration::from_millis(500), Duration::from_millis(1500)]
        );
        assert_eq!(s.proxy, None);
    }

    #[test]
    fn request_builders() {
        let r = Request::get("/timesheets")
            .query("page", 2)
            .query_list("users", [1, 2]);
        assert_eq!(r.method, Method::Get);
        assert_eq!(
            r.query,
            vec![
                ("page".to_string(), "2".to_string()),
                ("users[]".to_string(), "1".to_string()),
                ("users[]".to_string(), "2".to_string())
            ]
        );
        let p = Request::patch("/timesheets/1", json!({"a": 1}));
        assert_eq!(p.method, Method::Patch);
        assert_eq!(p.body, Some(json!({"a": 1})));
        assert!(Request::delete("/tags/1").body.is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let t = Token::new("s3cr3t-token-value".into());
        assert_eq!(format!("{t:?}"), "Token(***)");
        let r = Request::post(
            "/users",
            json!({"username": "ann", "plainPassword": "pw-123456", "nested": [{"plainApiToken": "tok-987"}]}),
        )
        .query("token", "tok-555");
        let d = format!("{r:?}");
        assert!(d.contains("ann"), "{d}");
        for secret in ["pw-123456", "tok-987", "tok-555"] {
            assert!(!d.contains(secret), "{d}");
        }
    }
}
