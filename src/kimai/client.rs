//! The Kimai [`Client`]: one `ureq::Agent` per Kimai instance, the request/retry loop and the
//! mapping of Kimai's answers (success, the error shapes of `kimai-api/contract.md` §1.3 and §2,
//! the 200-with-error-envelope, pagination headers) to [`Response`] or [`Error`], including the
//! classification of ureq's own errors (so `error.rs` stays free of the HTTP library).
//! Its tests and the scripted fake servers they run against live in `client/tests.rs` and
//! `client/fake.rs`.
//!
//! Decisions, each matching or beating the Python client (`reference/upstream-kimai-mcp.md` §3):
//! * Proxy: none unless `Settings::proxy` says so (the environment is not read).
//! * Redirects: never followed (`max_redirects(0)`); a 3xx becomes [`Error::Api`] naming the
//!   `Location`, so a token never follows a redirect and `http://` → `https://` is reported.
//! * Retries: GET only, on 429/502/503 and on broken established connections (reset, closed
//!   before the response was complete); `Retry-After` (seconds or IMF-fixdate) wins when it is
//!   at most `max_retry_after`, beyond that the error is returned at once. Malformed HTTP
//!   (`ureq::Error::Protocol`) counts as a broken connection and is retried, as in Python.
//! * Stale pooled connections: ureq probes an idle connection before reusing it and drops it
//!   after 15 s idle, so a write is not lost to a keep-alive the server already closed.
//!
//! Threads: `Client` is `Send + Sync`, shared through `Arc`; each call runs entirely on the
//! calling thread. No locks of our own; ureq's pool has its own.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};
use serde_json::Value;
use ureq::http::{self, HeaderMap};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::error::{NOT_KIMAI_API, prune_empty};
use super::{
    Error, MAX_CA_FILE_BYTES, MAX_ERROR_BODY_BYTES, Memo, Method, Page, Request, Response,
    Settings, Tls, Token, USER_AGENT, url,
};

/// Longest Kimai `message` kept in an error (Kimai's are short; a foreign JSON body may not be).
const MAX_MESSAGE_CHARS: usize = 1000;
/// Granularity of the cancellation check while waiting between retries.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// The largest Kimai response head (status line and headers) read, in KiB; below the 32 KiB
/// input buffer, so that a larger head is reported as too large.
pub(crate) const MAX_RESPONSE_HEAD_KIB: usize = 24;

/// A blocking client for one Kimai instance. Holds no token: every call takes one.
pub struct Client {
    settings: Settings,
    /// Normalised base URL, without trailing slash and without `/api`.
    base: String,
    /// `host[:port]` of the base URL, for error messages.
    authority: String,
    agent: ureq::Agent,
    /// What the tools derived from this Kimai's lists, per token (see [`Memo`]).
    memo: Memo,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One failed attempt, with what the retry decision needs besides the error (boxed: failures
/// are the rare path and `Error` is large).
struct Failure {
    error: Box<Error>,
    retry_after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error: Box::new(error),
            retry_after: None,
        }
    }
}

impl Client {
    /// Builds the agent: validates the base URL, loads the CA file, applies timeouts, the
    /// proxy choice and the redirect policy. Logs a warning when verification is off.
    pub fn new(settings: Settings) -> Result<Client, Error> {
        let base = url::normalize_base(&settings.base_url).map_err(Error::Config)?;
        let authority = base
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .unwrap_or(&base)
            .to_string();
        let tls = match &settings.tls {
            Tls::Verify => TlsConfig::builder().build(),
            Tls::NoVerify => {
                warn!(
                    "TLS certificate verification is disabled for {base}: anyone on the network path can read the API token and the data"
                );
                TlsConfig::builder().disable_verification(true).build()
            }
            Tls::CaFile(path) => {
                let certs = load_ca(path)?;
                debug!(
                    "loaded {} CA certificate(s) from {}",
                    certs.len(),
                    path.display()
                );
                TlsConfig::builder()
                    .root_certs(RootCerts::new_with_certs(&certs))
                    .build()
            }
        };
        let proxy = match &settings.proxy {
            None => None,
            // The proxy URL may carry credentials: never echo it.
            Some(p) => Some(ureq::Proxy::new(p).map_err(|_| {
                Error::Config(
                    "invalid proxy URL (expected http://, https:// or socks5:// …)".into(),
                )
            })?),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(proxy)
            .tls_config(tls)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.timeout))
            .user_agent(USER_AGENT)
            .accept("application/json")
            // ureq's default buffers are 128 KiB each way per connection; with one connection
            // per concurrent call that is most of the server's memory at 32 sessions. Kimai's
            // response headers are about 1 KiB and request heads (with the token) under 4 KiB;
            // a body larger than a buffer streams through it. The response head limit stays
            // below the input buffer: a head that fills the buffer is then reported as too
            // large rather than as a connection closed early.
            .input_buffer_size(32 * 1024)
            .output_buffer_size(16 * 1024)
            .max_response_header_size(MAX_RESPONSE_HEAD_KIB * 1024)
            .build()
            .new_agent();
        let memo = Memo::new(settings.memo_ttl, settings.max_memo_entries);
        Ok(Client {
            settings,
            base,
            authority,
            agent,
            memo,
        })
    }

    /// The normalised base URL: no trailing slash, no `/api`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A value remembered for `token` under `kind` (see [`Memo`]), if still fresh.
    pub fn memo_get<T: std::any::Any + Send + Sync>(
        &self,
        token: &Token,
        kind: &'static str,
    ) -> Option<std::sync::Arc<T>> {
        self.memo.get(&Memo::key(&self.base, token.expose(), kind))
    }

    /// Remembers `value` for `token` under `kind`.
    pub fn memo_put<T: std::any::Any + Send + Sync>(
        &self,
        token: &Token,
        kind: &'static str,
        value: std::sync::Arc<T>,
    ) {
        self.memo
            .put(Memo::key(&self.base, token.expose(), kind), value);
    }

    /// One Kimai call; GETs are retried on transient failures.
    pub fn call(&self, token: &Token, req: &Request) -> Result<Response, Error> {
        self.call_cancellable(token, req, &|| false)
    }

    /// Like [`Client::call`], but `cancelled()` is checked before the first attempt and before
    /// each retry (also while waiting for one); when it returns true the call ends with
    /// [`Error::Cancelled`]. An attempt in flight is not interrupted (it is bounded by the
    /// timeout).
    pub fn call_cancellable(
        &self,
        token: &Token,
        req: &Request,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Response, Error> {
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let url = url::request_url(&self.base, &req.path, &req.query);
        let auth =
            http::HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                Error::Config(
                    "the API token contains characters that cannot be sent in an HTTP header"
                        .into(),
                )
            })?;
        let body = match &req.body {
            Some(v) => Some(
                serde_json::to_vec(v)
                    .map_err(|e| Error::Config(format!("cannot encode the request body: {e}")))?,
            ),
            None => None,
        };
        let log_path = if req.path.starts_with('/') {
            format!("/api{}", req.path)
        } else {
            format!("/api/{}", req.path)
        };
        let mut retries_done = 0u32;
        loop {
            let started = Instant::now();
            let outcome = self.attempt(&url, &auth, req, body.as_deref());
            let ms = started.elapsed().as_millis();
            let failure = match outcome {
                Ok(resp) => {
                    debug!("{} {log_path} -> {} ({ms} ms)", req.method, resp.status);
                    return Ok(resp);
                }
                Err(f) => f,
            };
            match failure.error.status() {
                Some(status) => warn!("{} {log_path} -> {status} ({ms} ms)", req.method),
                None => warn!("{} {log_path} -> {} ({ms} ms)", req.method, failure.error),
            }
            let retryable = req.method.is_idempotent_read()
                && failure.error.is_transient()
                && retries_done < self.settings.max_retries;
            if !retryable {
                return Err(*failure.error);
            }
            let wait = match failure.retry_after {
                Some(d) if d > self.settings.max_retry_after => {
                    warn!(
                        "{} {log_path}: not retrying, Retry-After of {} s exceeds {} s",
                        req.method,
                        d.as_secs(),
                        self.settings.max_retry_after.as_secs()
                    );
                    return Err(*failure.error);
                }
                Some(d) => d,
                None => {
                    let backoff = &self.settings.retry_backoff;
                    let i = usize::try_from(retries_done).unwrap_or(usize::MAX);
                    backoff[i.min(backoff.len() - 1)]
                }
            };
            retries_done += 1;
            warn!(
                "{} {log_path}: retry {retries_done} of {} in {} ms",
                req.method,
                self.settings.max_retries,
                wait.as_millis()
            );
            sleep_unless_cancelled(wait, cancelled)?;
        }
    }

    /// One HTTP exchange, fully mapped.
    fn attempt(
        &self,
        url: &str,
        auth: &http::HeaderValue,
        req: &Request,
        body: Option<&[u8]>,
    ) -> Result<Response, Failure> {
        let method = match req.method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
        };
        let builder = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::AUTHORIZATION, auth.clone());
        let built = match body {
            Some(bytes) => builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(bytes)
                .map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        };
        let mut resp = built
            .map_err(|e| Error::Config(format!("cannot build the request: {e}")))?
            .map_err(|e| Error::from_ureq(e, &self.authority))?;

        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let success = (200..300).contains(&status);
        let limit = if success {
            self.settings.max_body_bytes
        } else {
            MAX_ERROR_BODY_BYTES.min(self.settings.max_body_bytes)
        };
        let read = resp
            .body_mut()
            .with_config()
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .read_to_vec();

        if success {
            let bytes = read.map_err(|e| match Error::from_ureq(e, &self.authority) {
                Error::BodyTooLarge { .. } => Error::BodyTooLarge { limit },
                other => other,
            })?;
            return Ok(parse_success(status, &headers, bytes, req)?);
        }
        // An error status: a body we cannot read (too large, cut off) is no reason to hide the
        // status; fall back to the reason phrase.
        let bytes = read.unwrap_or_default();
        let retry_after = if matches!(status, 429 | 502 | 503) {
            header_str(&headers, "retry-after").and_then(parse_retry_after)
        } else {
            None
        };
        Err(Failure {
            error: Box::new(error_from_status(status, &headers, &bytes, req)),
            retry_after,
        })
    }
}

/// Waits `d`, checking `cancelled` every [`CANCEL_POLL`].
fn sleep_unless_cancelled(d: Duration, cancelled: &dyn Fn() -> bool) -> Result<(), Error> {
    let deadline = Instant::now() + d;
    loop {
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(CANCEL_POLL));
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("HTTP error")
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A 2xx: JSON (or nothing) becomes a [`Response`], unless it is Kimai's error envelope.
fn parse_success(
    status: u16,
    headers: &HeaderMap,
    bytes: Vec<u8>,
    req: &Request,
) -> Result<Response, Error> {
    let page = parse_page(headers);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Response {
            status,
            body: Value::Null,
            page,
            raw: None,
        });
    }
    if req.raw_array && bytes.trim_ascii_start().starts_with(b"[") {
        return Ok(Response {
            status,
            body: Value::Null,
            page,
            raw: Some(bytes),
        });
    }
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let html = header_str(headers, "content-type")
                .is_some_and(|ct| ct.to_ascii_lowercase().contains("html"))
                || bytes.trim_ascii_start().starts_with(b"<");
            let detail = if html {
                format!("{NOT_KIMAI_API} (it answered with an HTML page)")
            } else {
                format!("not JSON: {e}")
            };
            return Err(Error::InvalidBody { status, detail });
        }
    };
    // Kimai's form-error envelope on some PATCHes: a 200 whose body is the error.
    if let Some(obj) = body.as_object() {
        let code = obj
            .get("code")
            .and_then(Value::as_u64)
            .filter(|c| (400..600).contains(c));
        let message = obj.get("message").and_then(Value::as_str);
        if let (Some(code), Some(message)) = (code, message) {
            let code = u16::try_from(code).unwrap_or(500);
            let message = truncate_chars(message, MAX_MESSAGE_CHARS);
            if code == 401 {
                return Err(Error::Unauthorized {
                    reason: Some(message),
                });
            }
            return Err(Error::Api {
                status: code,
                message,
                details: obj.get("errors").and_then(prune_empty),
                method: req.method,
                path: req.path.clone(),
            });
        }
    }
    Ok(Response {
        status,
        body,
        page,
        raw: None,
    })
}

/// All four pagination headers, decimal, or `None` (contract §3).
fn parse_page(headers: &HeaderMap) -> Option<Page> {
    let num = |name: &str| header_str(headers, name)?.parse::<u64>().ok();
    Some(Page {
        page: num("x-page")?,
        per_page: num("x-per-page")?,
        total_count: num("x-total-count")?,
        total_pages: num("x-total-pages")?,
    })
}

/// A non-2xx status: 401 → [`Error::Unauthorized`], everything else → [`Error::Api`] with
/// Kimai's message and pruned validation details, or the reason phrase for a non-JSON body.
fn error_from_status(status: u16, headers: &HeaderMap, bytes: &[u8], req: &Request) -> Error {
    let json: Option<serde_json::Map<String, Value>> = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        });
    // Kimai's error bodies carry `code` next to `message` (contract §2), except the 403 of
    // the legacy header login, which is `{"message": …}` alone. A JSON body of another shape
    // came from something else (a proxy, another service), whose words are not passed on:
    // the status line says enough, and the body may hold anything.
    let json = json.filter(|m| {
        m.contains_key("code") || (status == 403 && m.len() == 1 && m.contains_key("message"))
    });
    let json_message = json
        .as_ref()
        .and_then(|m| m.get("message"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| truncate_chars(s, MAX_MESSAGE_CHARS));
    if status == 401 {
        let reason = header_str(headers, "www-authenticate")
            .and_then(bearer_error_description)
            .or(json_message);
        return Error::Unauthorized { reason };
    }
    let message = if (300..400).contains(&status) {
        match header_str(headers, "location") {
            Some(loc) => format!("the server redirects to {}", truncate_chars(loc, 300)),
            None => format!("the server redirects ({status}) without saying where"),
        }
    } else {
        json_message.unwrap_or_else(|| match json {
            // A gateway or server error from a proxy in front of Kimai is common and says
            // enough on its own; a client error without Kimai's body shape is not Kimai.
            None if (400..500).contains(&status) && status != 429 => format!(
                "{} (the answer does not look like Kimai's; check that the URL points at Kimai)",
                reason_phrase(status)
            ),
            _ => reason_phrase(status).to_string(),
        })
    };
    Error::Api {
        status,
        message,
        details: json
            .as_ref()
            .and_then(|m| m.get("errors"))
            .and_then(prune_empty),
        method: req.method,
        path: req.path.clone(),
    }
}

/// `error_description` (else `error`) of `WWW-Authenticate: Bearer error="…",error_description="…"`.
fn bearer_error_description(h: &str) -> Option<String> {
    fn param(h: &str, name: &str) -> Option<String> {
        let mut rest = h;
        while let Some(i) = rest.find(name) {
            let before = rest[..i].chars().next_back();
            let after = rest[i + name.len()..].trim_start();
            rest = &rest[i + name.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let Some(value) = after.strip_prefix('=') else {
                continue;
            };
            let value = value.trim_start();
            if let Some(quoted) = value.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => return Some(out),
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
                return Some(out);
            }
            return Some(value.split([',', ' ']).next().unwrap_or("").to_string());
        }
        None
    }
    param(h, "error_description")
        .or_else(|| param(h, "error"))
        .map(|s| truncate_chars(s.trim(), MAX_MESSAGE_CHARS))
        .filter(|s| !s.is_empty())
}

/// `Retry-After` as a wait from now: delay-seconds, or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`; a date in the past means no wait). Other forms → `None`.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_imf_fixdate(v)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate (RFC 9110 §5.6.7).
fn parse_imf_fixdate(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_ascii_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days from civil (H. Hinnant), month index 0-based.
    let mon = i64::try_from(month).ok()? + 1;
    let y = if mon <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::try_from(day).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::try_from(h * 3600 + m * 60 + s).ok()?;
    u64::try_from(secs).ok()
}

/// Every certificate of a PEM file, or of every file in a directory (files without
/// certificates or with broken PEM are skipped there). Private keys are ignored.
fn load_ca(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", path.display())))?;
    if !meta.is_dir() {
        let certs = certs_in(path)?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "no certificates found in {}",
                path.display()
            )));
        }
        return Ok(certs);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Error::Config(format!("cannot read CA directory {}: {e}", path.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        match certs_in(&f) {
            Ok(certs) => all.extend(certs),
            Err(e) => debug!("skipping {}: {e}", f.display()),
        }
    }
    if all.is_empty() {
        return Err(Error::Config(format!(
            "no certificates found in the files of {}",
            path.display()
        )));
    }
    Ok(all)
}

fn certs_in(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", path.display())))?;
    let mut data = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", path.display())))?;
    if data.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(Error::Config(format!(
            "CA file {} is larger than {MAX_CA_FILE_BYTES} bytes",
            path.display()
        )));
    }
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&data) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Config(format!(
                    "invalid PEM in {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(certs)
}

// ---------------------------------------------------------------------------------------------
// ureq's errors, classified
// ---------------------------------------------------------------------------------------------

impl Error {
    /// Maps a ureq error of one attempt. `host` names the target for DNS and connect errors.
    pub(crate) fn from_ureq(e: ureq::Error, host: &str) -> Error {
        use ureq::Timeout as T;
        match e {
            ureq::Error::Timeout(t) => Error::Timeout {
                connect: matches!(t, T::Resolve | T::Connect),
            },
            ureq::Error::HostNotFound => Error::Dns(format!("{host}: host not found")),
            ureq::Error::ConnectionFailed => Error::Connect(format!("{host}: connection failed")),
            ureq::Error::Io(io) => Error::from_io(io, host),
            ureq::Error::BodyExceedsLimit(n) => Error::BodyTooLarge {
                limit: usize::try_from(n).unwrap_or(usize::MAX),
            },
            ureq::Error::Tls(s) => Error::Tls(s.to_string()),
            ureq::Error::Rustls(r) => Error::Tls(r.to_string()),
            ureq::Error::Pem(p) => Error::Config(format!("PEM: {p:?}")),
            ureq::Error::Protocol(p) => Error::Io(format!(
                "the server did not answer with valid HTTP ({p}); is this the right port and scheme?"
            )),
            ureq::Error::BadUri(s) => Error::Config(format!("bad URL: {s}")),
            ureq::Error::Http(h) => Error::Config(format!("cannot build the request: {h}")),
            ureq::Error::InvalidProxyUrl => Error::Config("invalid proxy URL".into()),
            ureq::Error::ConnectProxyFailed(s) => Error::Connect(format!("proxy: {s}")),
            ureq::Error::LargeResponseHeader(..) => Error::Io(format!(
                "the response headers are too large (over {} KiB); is a proxy or login page in front of Kimai?",
                MAX_RESPONSE_HEAD_KIB
            )),
            other => Error::Io(other.to_string()),
        }
    }

    fn from_io(io: io::Error, host: &str) -> Error {
        use io::ErrorKind as K;
        let text = io.to_string();
        match io.kind() {
            K::TimedOut | K::WouldBlock => Error::Timeout { connect: false },
            K::ConnectionRefused => Error::Connect(format!("{host}: connection refused")),
            K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown | K::AddrNotAvailable => {
                Error::Connect(format!("{host}: {text}"))
            }
            // rustls reports handshake and certificate failures as InvalidData wrapping a
            // rustls::Error ("invalid peer certificate: UnknownIssuer", "received fatal alert").
            K::InvalidData if io.get_ref().is_some() => Error::Tls(text),
            // std's getaddrinfo failures have no ErrorKind of their own; the text is stable.
            _ if text.contains("failed to lookup address") => Error::Dns(format!("{host}: {text}")),
            K::UnexpectedEof => {
                Error::Io("the connection was closed before the response was complete".into())
            }
            _ => Error::Io(text),
        }
    }
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
