//! The Kimai [`Client`]: one `ureq::Agent` per Kimai instance, the request/retry loop and the
//! mapping of Kimai's answers (success, the error shapes of `kimai-api/contract.md` §1.3 and §2,
//! the 200-with-error-envelope, pagination headers) to [`Response`] or [`Error`].
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
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};
use serde_json::Value;
use ureq::http::{self, HeaderMap};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::error::{NOT_KIMAI_API, prune_empty};
use super::{
    Error, MAX_CA_FILE_BYTES, MAX_ERROR_BODY_BYTES, Method, Page, Request, Response, Settings, Tls,
    Token, USER_AGENT, url,
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
        Ok(Client {
            settings,
            base,
            authority,
            agent,
        })
    }

    /// The normalised base URL: no trailing slash, no `/api`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
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
            return Ok(parse_success(status, &headers, &bytes, req)?);
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
    bytes: &[u8],
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
            raw: Some(bytes.to_vec()),
        });
    }
    let body: Value = match serde_json::from_slice(bytes) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    const TOKEN: &str = "0123456789abcdef01234567x";

    fn token() -> Token {
        Token::new(TOKEN.to_string())
    }

    /// Fast settings for tests: short timeouts and backoff.
    fn settings(url: &str) -> Settings {
        let mut s = Settings::new(url, Tls::Verify);
        s.connect_timeout = Duration::from_secs(2);
        s.timeout = Duration::from_secs(3);
        s.retry_backoff = [Duration::from_millis(20), Duration::from_millis(40)];
        s
    }

    fn client(url: &str) -> Client {
        Client::new(settings(url)).expect("test client settings are valid")
    }

    /// One call with these settings that must fail; its error.
    fn call_err(s: Settings, req: &Request) -> Error {
        Client::new(s)
            .expect("test client settings are valid")
            .call(&token(), req)
            .expect_err("the call must fail")
    }

    // ----- a scripted fake Kimai on tiny_http -------------------------------------------------

    #[derive(Clone)]
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn raw(status: u16, content_type: &str, body: &str) -> Reply {
            Reply {
                status,
                headers: vec![("Content-Type".into(), content_type.into())],
                body: body.as_bytes().to_vec(),
            }
        }
        fn json(status: u16, v: Value) -> Reply {
            Reply::raw(status, "application/json", &v.to_string())
        }
        fn header(mut self, k: &str, v: &str) -> Reply {
            self.headers.push((k.into(), v.into()));
            self
        }
    }

    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Serves `replies` in order (the last one repeats) and records every request.
    struct Fake {
        url: String,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Fake {
        fn new(replies: Vec<Reply>) -> Fake {
            let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
            let port = server.server_addr().to_ip().expect("ip listener").port();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (seen2, stop2) = (seen.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let mut n = 0;
                while !stop2.load(Ordering::SeqCst) {
                    let Ok(Some(mut rq)) = server.recv_timeout(Duration::from_millis(20)) else {
                        continue;
                    };
                    let mut body = String::new();
                    let _ = rq.as_reader().take(1 << 20).read_to_string(&mut body);
                    seen2.lock().unwrap().push(Seen {
                        method: rq.method().to_string(),
                        url: rq.url().to_string(),
                        headers: rq
                            .headers()
                            .iter()
                            .map(|h| (h.field.to_string(), h.value.to_string()))
                            .collect(),
                        body,
                    });
                    let r = replies[n.min(replies.len() - 1)].clone();
                    n += 1;
                    let mut resp =
                        tiny_http::Response::from_data(r.body).with_status_code(r.status);
                    for (k, v) in r.headers {
                        resp.add_header(tiny_http::Header::from_bytes(k, v).expect("valid header"));
                    }
                    let _ = rq.respond(resp);
                }
            });
            Fake {
                url: format!("http://127.0.0.1:{port}"),
                seen,
                stop,
                thread: Some(thread),
            }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    // ----- a raw TCP server for faults -------------------------------------------------------

    /// Accepts connections one after another and hands each (with its index) to `handler`.
    struct Raw {
        url: String,
        conns: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Raw {
        fn new(handler: impl Fn(usize, TcpStream, &AtomicBool) + Send + 'static) -> Raw {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let port = listener.local_addr().expect("local addr").port();
            listener
                .set_nonblocking(true)
                .expect("nonblocking listener");
            let conns = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (conns2, stop2) = (conns.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                            let n = conns2.fetch_add(1, Ordering::SeqCst);
                            handler(n, s, &stop2);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            Raw {
                url: format!("http://127.0.0.1:{port}"),
                conns,
                stop,
                thread: Some(thread),
            }
        }

        fn conns(&self) -> usize {
            self.conns.load(Ordering::SeqCst)
        }
    }

    impl Drop for Raw {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Reads a request head (and ignores any body).
    fn read_head(s: &mut TcpStream) {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
            match s.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
        }
    }

    const OK_JSON: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";

    // ----- requests -------------------------------------------------------------------------

    #[test]
    fn sends_bearer_headers_and_encoded_query() {
        let fake = Fake::new(vec![Reply::json(200, json!([]))]);
        let c = client(&format!("{}/", fake.url));
        let req = Request::get("/timesheets")
            .query("page", 2)
            .query_list("users", [1, 2])
            .query("term", "a b&c");
        let resp = c.call(&token(), &req).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, json!([]));
        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert_eq!(s.method, "GET");
        assert_eq!(
            s.url,
            "/api/timesheets?page=2&users%5B%5D=1&users%5B%5D=2&term=a%20b%26c"
        );
        assert_eq!(
            s.header("Authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(s.header("Accept"), Some("application/json"));
        assert_eq!(s.header("User-Agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("kimai-mcp/"));
        assert_eq!(s.header("Content-Type"), None);
    }

    #[test]
    fn sends_json_body_on_writes() {
        let fake = Fake::new(vec![Reply::json(200, json!({"id": 7}))]);
        let c = client(&fake.url);
        let body = json!({"project": 1, "activity": 2, "description": "ü"});
        let resp = c
            .call(&token(), &Request::post("/timesheets", body.clone()))
            .unwrap();
        assert_eq!(resp.body, json!({"id": 7}));
        let s = &fake.seen()[0];
        assert_eq!(s.method, "POST");
        assert_eq!(s.header("Content-Type"), Some("application/json"));
        assert_eq!(serde_json::from_str::<Value>(&s.body).unwrap(), body);
        c.call(&token(), &Request::patch("/timesheets/7/stop", json!({})))
            .unwrap();
        assert_eq!(fake.seen()[1].method, "PATCH");
        assert_eq!(fake.seen()[1].url, "/api/timesheets/7/stop");
    }

    #[test]
    fn pagination_headers() {
        let paged = Reply::json(200, json!([{"id": 1}]))
            .header("X-Page", "2")
            .header("X-Per-Page", "4")
            .header("X-Total-Count", "22")
            .header("X-Total-Pages", "6");
        let partial = Reply::json(200, json!([])).header("X-Page", "1");
        let fake = Fake::new(vec![paged, partial]);
        let c = client(&fake.url);
        let r = c.call(&token(), &Request::get("/timesheets")).unwrap();
        assert_eq!(
            r.page,
            Some(Page {
                page: 2,
                per_page: 4,
                total_count: 22,
                total_pages: 6
            })
        );
        let r = c.call(&token(), &Request::get("/customers")).unwrap();
        assert_eq!(r.page, None);
    }

    #[test]
    fn no_content_is_null() {
        let fake = Fake::new(vec![Reply::raw(204, "application/json", "")]);
        let r = client(&fake.url)
            .call(&token(), &Request::delete("/tags/3"))
            .unwrap();
        assert_eq!((r.status, r.body), (204, Value::Null));
        assert_eq!(fake.seen()[0].method, "DELETE");
    }

    // ----- error shapes ---------------------------------------------------------------------

    /// One call against a fake answering `reply`, without retries.
    fn error_for(reply: Reply, req: Request) -> Error {
        let fake = Fake::new(vec![reply]);
        let mut s = settings(&fake.url);
        s.max_retries = 0;
        let e = Client::new(s).unwrap().call(&token(), &req).unwrap_err();
        assert_eq!(fake.seen().len(), 1);
        e
    }

    #[test]
    fn form_validation_400() {
        let body = json!({"code": 400, "message": "Validation Failed", "errors": {
            "errors": ["This form should not contain extra fields."],
            "children": {"begin": {}, "project": {"errors": ["A project needs to be selected."]}, "tags": {}}}});
        let e = error_for(
            Reply::json(400, body),
            Request::post("/timesheets", json!({})),
        );
        let Error::Api {
            status,
            message,
            details,
            method,
            path,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            (*status, message.as_str(), *method, path.as_str()),
            (400, "Validation Failed", Method::Post, "/timesheets")
        );
        assert_eq!(
            details.as_ref().unwrap(),
            &json!({"errors": ["This form should not contain extra fields."],
                    "children": {"project": {"errors": ["A project needs to be selected."]}}})
        );
        assert_eq!(
            e.to_string(),
            "kimai answered 400 to POST /api/timesheets: Validation Failed"
        );
    }

    #[test]
    fn service_validation_400() {
        let body = json!({"code": "400", "message": "You have an active time record which cannot be stopped automatically.",
            "errors": {"children": {"end_date": {"errors": ["The end date must not be earlier than the start date."]}}}});
        let e = error_for(
            Reply::json(400, body),
            Request::patch("/timesheets/1/stop", json!({})),
        );
        let Error::Api {
            status,
            message,
            details,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*status, 400);
        assert!(message.starts_with("You have an active time record"));
        assert_eq!(
            details.as_ref().unwrap()["children"]["end_date"]["errors"][0],
            "The end date must not be earlier than the start date."
        );
    }

    #[test]
    fn unauthorized_shapes() {
        let empty = Reply::raw(401, "text/plain", "").header(
            "WWW-Authenticate",
            "Bearer error=\"invalid_token\",error_description=\"Invalid credentials.\"",
        );
        let e = error_for(empty, Request::get("/users/me"));
        assert!(
            matches!(&e, Error::Unauthorized { reason: Some(r) } if r == "Invalid credentials."),
            "{e:?}"
        );
        assert!(e.hint().unwrap().contains("token"));
        assert!(!format!("{e} {e:?}").contains(TOKEN));

        let json401 = Reply::json(401, json!({"code": 401, "message": "Unauthorized"}));
        let e = error_for(json401, Request::get("/users/me"));
        assert!(
            matches!(&e, Error::Unauthorized { reason: Some(r) } if r == "Unauthorized"),
            "{e:?}"
        );
    }

    #[test]
    fn generic_error_shapes() {
        let cases = [
            (
                Reply::json(403, json!({"code": 403, "message": "Forbidden"})),
                403,
                "Forbidden",
            ),
            (
                Reply::json(403, json!({"message": "Invalid credentials"})),
                403,
                "Invalid credentials",
            ),
            (
                Reply::json(404, json!({"code": 404, "message": "Not Found"})),
                404,
                "Not Found",
            ),
            (
                Reply::json(405, json!({"code": 405, "message": "Method Not Allowed"})),
                405,
                "Method Not Allowed",
            ),
            (
                Reply::json(
                    410,
                    json!({"code": 410, "message": "This endpoint was removed, use \"POST /api/teams/\" instead."}),
                ),
                410,
                "This endpoint was removed, use \"POST /api/teams/\" instead.",
            ),
            (
                Reply::json(
                    500,
                    json!({"code": 500, "message": "Internal Server Error"}),
                ),
                500,
                "Internal Server Error",
            ),
            (
                Reply::raw(
                    502,
                    "text/html",
                    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                ),
                502,
                "Bad Gateway",
            ),
        ];
        for (reply, want_status, want_message) in cases {
            let e = error_for(reply, Request::get("/projects/1"));
            let Error::Api {
                status,
                message,
                details,
                ..
            } = &e
            else {
                panic!("{e:?}")
            };
            assert_eq!((*status, message.as_str()), (want_status, want_message));
            assert_eq!(details, &None);
            assert!(!e.to_string().contains('<'), "{e}");
            assert_eq!(e.is_missing_route(), want_status == 405);
        }
        // Something other than Kimai: its words are not passed on, and the message says so.
        for reply in [
            Reply::json(
                404,
                json!({"error": "no such key", "message": "internal-secret-value"}),
            ),
            Reply::raw(404, "text/html", "<html>internal-secret-value</html>"),
            Reply::raw(400, "text/plain", "internal-secret-value"),
        ] {
            let e = error_for(reply, Request::get("/users/me"));
            let text = e.to_string();
            assert!(!text.contains("internal-secret-value"), "{text}");
            assert!(text.contains("does not look like Kimai's"), "{text}");
        }
        let e = error_for(
            Reply::json(403, json!({"code": 403, "message": "Forbidden"})),
            Request::get("/users"),
        );
        assert!(e.hint().unwrap().contains("permission"));
        let e = error_for(
            Reply::json(404, json!({"code": 404, "message": "Not Found"})),
            Request::get("/version"),
        );
        assert!(e.hint().unwrap().contains("does not point to a Kimai API"));
    }

    #[test]
    fn error_envelope_in_a_200() {
        let body = json!({"code": 400, "message": "Validation Failed",
            "errors": {"children": {"end": {"errors": ["bad"]}, "begin": {}}}});
        let e = error_for(
            Reply::json(200, body),
            Request::patch("/timesheets/5", json!({"end": "x"})),
        );
        let Error::Api {
            status, details, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*status, 400);
        assert_eq!(
            details.as_ref().unwrap(),
            &json!({"children": {"end": {"errors": ["bad"]}}})
        );
        let e = error_for(
            Reply::json(200, json!({"code": 401, "message": "Unauthorized"})),
            Request::get("/users/me"),
        );
        assert!(
            matches!(&e, Error::Unauthorized { reason: Some(r) } if r == "Unauthorized"),
            "{e:?}"
        );
        // A record that merely has a `code` field is not an envelope.
        let fake = Fake::new(vec![Reply::json(
            200,
            json!({"code": 7, "message": "hello"}),
        )]);
        assert!(
            client(&fake.url)
                .call(&token(), &Request::get("/x"))
                .is_ok()
        );
    }

    #[test]
    fn redirect_is_reported_not_followed() {
        let reply = Reply::raw(301, "text/html", "moved")
            .header("Location", "https://kimai.example.com/api/version");
        let e = error_for(reply, Request::get("/version"));
        let Error::Api {
            status, message, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*status, 301);
        assert!(
            message.contains("https://kimai.example.com/api/version"),
            "{message}"
        );
        assert!(e.hint().unwrap().contains("redirect"));
    }

    // ----- retries --------------------------------------------------------------------------

    fn unavailable() -> Reply {
        Reply::json(503, json!({"code": 503, "message": "Service Unavailable"}))
    }

    #[test]
    fn get_retried_on_503_then_succeeds() {
        let fake = Fake::new(vec![
            unavailable(),
            unavailable(),
            Reply::json(200, json!({"v": 1})),
        ]);
        let r = client(&fake.url)
            .call(&token(), &Request::get("/version"))
            .unwrap();
        assert_eq!(r.body, json!({"v": 1}));
        assert_eq!(fake.seen().len(), 3);
    }

    #[test]
    fn get_gives_up_after_max_retries() {
        let fake = Fake::new(vec![Reply::raw(429, "text/plain", "slow down")]);
        let e = client(&fake.url)
            .call(&token(), &Request::get("/version"))
            .unwrap_err();
        assert_eq!(e.status(), Some(429));
        assert_eq!(fake.seen().len(), 3);
    }

    #[test]
    fn get_not_retried_on_504_or_404() {
        for status in [504, 404, 500] {
            let fake = Fake::new(vec![Reply::raw(status, "text/plain", "")]);
            let e = client(&fake.url)
                .call(&token(), &Request::get("/version"))
                .unwrap_err();
            assert_eq!(e.status(), Some(status));
            assert_eq!(fake.seen().len(), 1, "status {status}");
        }
    }

    #[test]
    fn retry_after_respected() {
        let fake = Fake::new(vec![
            unavailable().header("Retry-After", "1"),
            Reply::json(200, json!({})),
        ]);
        let started = Instant::now();
        client(&fake.url)
            .call(&token(), &Request::get("/version"))
            .unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(950), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        assert_eq!(fake.seen().len(), 2);
    }

    #[test]
    fn large_retry_after_not_retried() {
        let fake = Fake::new(vec![
            unavailable().header("Retry-After", "120"),
            Reply::json(200, json!({})),
        ]);
        let started = Instant::now();
        let e = client(&fake.url)
            .call(&token(), &Request::get("/version"))
            .unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert_eq!(fake.seen().len(), 1);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn writes_never_retried() {
        for req in [
            Request::post("/timesheets", json!({})),
            Request::patch("/timesheets/1", json!({})),
            Request::delete("/timesheets/1"),
        ] {
            let fake = Fake::new(vec![unavailable(), Reply::json(200, json!({}))]);
            let e = client(&fake.url).call(&token(), &req).unwrap_err();
            assert_eq!(e.status(), Some(503));
            assert_eq!(fake.seen().len(), 1, "{:?}", req.method);
        }
    }

    #[test]
    fn dropped_connection_retried_for_get() {
        // First connection: the head promises 100 bytes, 10 arrive, then the socket closes.
        let raw = Raw::new(|n, mut s, _| {
            read_head(&mut s);
            if n == 0 {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\": 123");
            } else {
                let _ = s.write_all(OK_JSON);
            }
        });
        let r = client(&raw.url)
            .call(&token(), &Request::get("/timesheets/1"))
            .unwrap();
        assert_eq!(r.body, json!({"ok": true}));
        assert_eq!(raw.conns(), 2);
    }

    #[test]
    fn dropped_connection_not_retried_for_post() {
        let raw = Raw::new(|n, mut s, _| {
            read_head(&mut s);
            if n > 0 {
                let _ = s.write_all(OK_JSON);
            }
            // n == 0: close without an answer.
        });
        let e = client(&raw.url)
            .call(
                &token(),
                &Request::post("/timesheets", json!({"project": 1})),
            )
            .unwrap_err();
        assert!(matches!(e, Error::Io(_)), "{e:?}");
        assert!(e.is_transient());
        assert_eq!(raw.conns(), 1);
    }

    #[test]
    fn refused_connection_not_retried() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut s = settings(&format!("http://127.0.0.1:{port}"));
        s.retry_backoff = [Duration::from_secs(2); 2];
        let started = Instant::now();
        let e = call_err(s, &Request::get("/version"));
        assert!(
            matches!(&e, Error::Connect(m) if m.contains("refused")),
            "{e:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "retried: {:?}",
            started.elapsed()
        );
        assert!(e.hint().is_some());
    }

    #[test]
    fn silent_server_times_out() {
        let raw = Raw::new(|_, mut s, stop| {
            read_head(&mut s);
            let until = Instant::now() + Duration::from_secs(5);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut s = settings(&raw.url);
        s.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let e = call_err(s, &Request::get("/version"));
        assert!(matches!(e, Error::Timeout { connect: false }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(raw.conns(), 1);
    }

    #[test]
    fn unknown_host_is_dns_error() {
        let e = client("http://kimai-mcp-test.invalid")
            .call(&token(), &Request::get("/version"))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Dns(m) if m.contains("kimai-mcp-test.invalid")),
            "{e:?}"
        );
    }

    #[test]
    fn garbage_and_truncated_bodies() {
        let fake = Fake::new(vec![
            Reply::raw(200, "application/json", "{\"id\": 1, \"name\":"),
            Reply::raw(200, "text/plain", "hello, world"),
            Reply::raw(
                200,
                "text/html; charset=UTF-8",
                "<!DOCTYPE html><html><body>Login</body></html>",
            ),
        ]);
        let c = client(&fake.url);
        for want in ["not JSON", "not JSON", NOT_KIMAI_API] {
            let e = c.call(&token(), &Request::get("/version")).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidBody { status: 200, detail } if detail.starts_with(want)),
                "{e:?}"
            );
        }
        let e = c.call(&token(), &Request::get("/version")).unwrap_err();
        assert!(
            e.to_string().contains("does not look like a Kimai API"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("Kimai URL"));
    }

    #[test]
    fn non_http_garbage_is_io_error() {
        let raw = Raw::new(|_, mut s, _| {
            read_head(&mut s);
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
        });
        let mut s = settings(&raw.url);
        s.max_retries = 0;
        let e = call_err(s, &Request::get("/version"));
        assert!(matches!(e, Error::Io(_)), "{e:?}");
    }

    #[test]
    fn body_cap() {
        let big = format!("[{}]", vec!["1"; 1000].join(","));
        let fake = Fake::new(vec![Reply::raw(200, "application/json", &big)]);
        let mut s = settings(&fake.url);
        s.max_body_bytes = 1000;
        let e = call_err(s, &Request::get("/x"));
        assert!(matches!(e, Error::BodyTooLarge { limit: 1000 }), "{e:?}");
        let mut s = settings(&fake.url);
        s.max_body_bytes = big.len();
        assert!(
            Client::new(s)
                .unwrap()
                .call(&token(), &Request::get("/x"))
                .is_ok()
        );
    }

    #[test]
    fn bodies_and_heads_larger_than_the_buffers() {
        // A 300 KiB request body and a 600 KiB response body stream through the 16/32 KiB
        // buffers; a 20 KiB response head fits (the limit is 24 KiB).
        let description = "x".repeat(300 * 1024);
        let rows: Vec<Value> = (0..20_000)
            .map(|i| json!({"id": i, "n": "abcdefghij"}))
            .collect();
        let fake = Fake::new(vec![
            Reply::json(200, Value::Array(rows.clone()))
                .header("X-Padding", &"p".repeat(20 * 1024)),
        ]);
        let body = json!({"description": description});
        let resp = client(&fake.url)
            .call(&token(), &Request::post("/timesheets", body.clone()))
            .unwrap();
        assert_eq!(resp.body, Value::Array(rows));
        let seen = fake.seen();
        assert_eq!(serde_json::from_str::<Value>(&seen[0].body).unwrap(), body);

        // A 40 KiB head is refused with a message that says so, not read without bound.
        let raw = Raw::new(|_, mut s, _| {
            read_head(&mut s);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: {}\r\nContent-Length: 2\r\n\r\n{{}}",
                "p".repeat(40 * 1024)
            );
            let _ = s.write_all(head.as_bytes());
        });
        let mut s = settings(&raw.url);
        s.max_retries = 0;
        let e = call_err(s, &Request::get("/version"));
        assert!(
            matches!(&e, Error::Io(m) if m.contains("too large")),
            "{e:?}"
        );
    }

    // ----- cancellation ---------------------------------------------------------------------

    #[test]
    fn cancelled_before_the_call_sends_nothing() {
        let fake = Fake::new(vec![Reply::json(200, json!({}))]);
        let e = client(&fake.url)
            .call_cancellable(&token(), &Request::get("/version"), &|| true)
            .unwrap_err();
        assert!(matches!(e, Error::Cancelled));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(fake.seen().len(), 0);
    }

    #[test]
    fn cancelled_while_waiting_for_a_retry() {
        let fake = Fake::new(vec![unavailable()]);
        let mut s = settings(&fake.url);
        s.retry_backoff = [Duration::from_secs(5); 2];
        let c = Client::new(s).unwrap();
        let checks = AtomicUsize::new(0);
        let cancel = || checks.fetch_add(1, Ordering::SeqCst) >= 3;
        let started = Instant::now();
        let e = c
            .call_cancellable(&token(), &Request::get("/version"), &cancel)
            .unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(fake.seen().len(), 1);
    }

    // ----- construction, TLS, secrets -------------------------------------------------------

    #[test]
    fn bad_settings_refused() {
        for url in ["kimai.example.com", "ftp://x", "https://"] {
            assert!(
                matches!(
                    Client::new(Settings::new(url, Tls::Verify)),
                    Err(Error::Config(_))
                ),
                "{url}"
            );
        }
        let mut s = Settings::new("https://k.example.com", Tls::Verify);
        s.proxy = Some("not a proxy url".into());
        assert!(matches!(Client::new(s), Err(Error::Config(_))));
        let c = client("https://k.example.com/api/");
        assert_eq!(c.base_url(), "https://k.example.com");
        let e = c
            .call(&Token::new("bad\ntoken".into()), &Request::get("/version"))
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kimai-mcp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ca_file_missing_or_garbage() {
        let dir = temp_dir("ca-garbage");
        let missing = Settings::new("https://k.example.com", Tls::CaFile(dir.join("none.pem")));
        assert!(matches!(Client::new(missing), Err(Error::Config(m)) if m.contains("none.pem")));
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "this is not a certificate\n").unwrap();
        let e =
            Client::new(Settings::new("https://k.example.com", Tls::CaFile(garbage))).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("no certificates")),
            "{e:?}"
        );
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e =
            Client::new(Settings::new("https://k.example.com", Tls::CaFile(broken))).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("broken.pem")),
            "{e:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Runs `openssl` with `args` in `dir`; `None` when it is missing or fails.
    fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(())
    }

    /// A private CA and a server certificate for 127.0.0.1 / localhost signed by it.
    fn make_ca(dir: &Path) -> Option<()> {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kimai-mcp test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &ca)?;
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(dir, &csr)?;
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .ok()?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )
    }

    #[test]
    fn ca_file_loads_every_certificate() {
        let dir = temp_dir("ca-load");
        if make_ca(&dir).is_none() {
            eprintln!("note: openssl unavailable, CA file test skipped");
            return;
        }
        // A bundle: two certificates and a private key (ignored).
        let bundle = [
            std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
            std::fs::read_to_string(dir.join("server.key")).unwrap(),
            std::fs::read_to_string(dir.join("server.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
        assert_eq!(load_ca(&dir.join("bundle.pem")).unwrap().len(), 2);
        assert_eq!(load_ca(&dir.join("ca.pem")).unwrap().len(), 1);
        // A directory: every certificate of every file (ca, server, bundle = 4).
        assert_eq!(load_ca(&dir).unwrap().len(), 4);
        let s = Settings::new("https://127.0.0.1", Tls::CaFile(dir.join("ca.pem")));
        assert!(Client::new(s).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `openssl s_server -www` on a loopback port, killed on drop.
    struct TlsServer {
        child: std::process::Child,
        port: u16,
    }

    impl TlsServer {
        fn start(dir: &Path) -> Option<TlsServer> {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = std::process::Command::new("openssl")
                .args([
                    "s_server",
                    "-quiet",
                    "-www",
                    "-cert",
                    "server.pem",
                    "-key",
                    "server.key",
                ])
                .args(["-accept", &format!("127.0.0.1:{port}")])
                .current_dir(dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()?;
            let server = TlsServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }
    }

    impl Drop for TlsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn tls_against_a_private_ca() {
        let dir = temp_dir("tls-live");
        let Some(server) = make_ca(&dir).and_then(|_| TlsServer::start(&dir)) else {
            eprintln!("note: openssl unavailable, live TLS test skipped");
            return;
        };
        let url = format!("https://127.0.0.1:{}", server.port);
        let call = |tls: Tls| {
            let mut s = settings(&url);
            s.tls = tls;
            s.max_retries = 0;
            call_err(s, &Request::get("/version"))
        };
        // Built-in roots: the private CA is unknown.
        let e = call(Tls::Verify);
        assert!(
            matches!(&e, Error::Tls(m) if m.contains("certificate")),
            "{e:?}"
        );
        assert!(e.hint().unwrap().contains("CA"));
        // With the CA file, and with verification off, the handshake succeeds and the
        // s_server status page (HTML) comes back.
        for tls in [Tls::CaFile(dir.join("ca.pem")), Tls::NoVerify] {
            let e = call(tls.clone());
            assert!(
                matches!(&e, Error::InvalidBody { detail, .. } if detail.starts_with(NOT_KIMAI_API)),
                "{tls:?}: {e:?}"
            );
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_secrets_in_debug_output() {
        let mut s = settings("https://k.example.com");
        s.proxy = Some("http://puser:ppass@proxy.example.com:3128".into());
        let c = Client::new(s.clone()).unwrap();
        let req = Request::get("/timesheets").query("term", "x");
        for d in [
            format!("{:?}", token()),
            format!("{s:?}"),
            format!("{c:?}"),
            format!("{req:?}"),
        ] {
            assert!(!d.contains(TOKEN), "{d}");
            assert!(!d.contains("ppass"), "{d}");
        }
        assert!(format!("{c:?}").contains("https://k.example.com"));
    }

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
        check::<Error>();
        check::<Token>();
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // An HTTP-date 100 s ahead, built with the inverse of the parser's arithmetic.
        let ahead = parse_retry_after(&http_date(now + 100)).unwrap();
        assert!((98..=100).contains(&ahead.as_secs()), "{ahead:?}");
    }

    /// IMF-fixdate for a Unix time (civil from days, H. Hinnant); weekday is not checked.
    fn http_date(t: u64) -> String {
        let days = i64::try_from(t / 86_400).unwrap() + 719_468;
        let secs = t % 86_400;
        let era = days.div_euclid(146_097);
        let doe = days - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][usize::try_from(m - 1).unwrap()];
        format!(
            "Mon, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    #[test]
    fn www_authenticate_parsing() {
        assert_eq!(
            bearer_error_description(
                "Bearer error=\"invalid_token\",error_description=\"Account is disabled.\""
            )
            .as_deref(),
            Some("Account is disabled.")
        );
        assert_eq!(
            bearer_error_description("Bearer error=\"invalid_token\"").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            bearer_error_description("Bearer realm=\"api\"").as_deref(),
            None
        );
    }
}
