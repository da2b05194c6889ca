//! Client ID Metadata Documents (MCP 2025-11-25 authorization; the IETF draft
//! `draft-ietf-oauth-client-id-metadata-document`): a client without a registration names
//! itself with an https URL as its `client_id`, and the document at that URL lists its name and
//! redirect URIs.
//!
//! Fetching it is an outbound request whose target a stranger chooses, so:
//! - the URL must be https, with a host, a path other than `/`, no user info, no fragment and
//!   no dot segments ([`check_url`]); plain `http://localhost` only with the tests-only switch;
//! - the name is resolved by [`PublicOnly`], the HTTP client's resolver, which drops every
//!   loopback, private, link-local, unique-local, shared, documentation, multicast and reserved
//!   address ([`forbidden`]): the connection goes to an address that passed the check, so a DNS
//!   answer cannot point the request back inside;
//! - no proxy from the environment (it would connect for us, unchecked), no redirects, a
//!   5 KiB body, 3 s to connect and 5 s in all;
//! - answers, good or bad, are cached per URL (good ones for their `Cache-Control: max-age`,
//!   within [`MIN_TTL`]–[`MAX_TTL`], [`DEFAULT_TTL`] without one; failures for
//!   [`FAILURE_TTL`]), at most [`MAX_CACHED`] URLs; and at most [`MAX_IN_FLIGHT`] fetches run at
//!   once. Fetches per client address share the registration budget
//!   (`--max-registrations-per-address`; see `OAuth::document_client`).

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::encoding::check_redirect_uri;

/// Largest document accepted (the draft suggests 5 KB).
pub const MAX_DOCUMENT: usize = 5 * 1024;
/// Time to connect, and for the whole fetch.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a document is used without asking again: its `max-age` within these bounds.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
pub const MIN_TTL: Duration = Duration::from_secs(0);
pub const MAX_TTL: Duration = Duration::from_secs(86_400);
/// How long a failed fetch is remembered, so that nobody can make this server ask a host
/// again and again.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);
/// URLs whose answers are cached at most.
pub const MAX_CACHED: usize = 1000;
/// Fetches running at once, from all clients.
pub const MAX_IN_FLIGHT: usize = 8;
/// Redirect URIs a document may list.
const MAX_REDIRECT_URIS: usize = 10;

/// What a valid document says about its client.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub redirect_uris: Vec<String>,
    pub name: Option<String>,
    pub grant_types: Vec<String>,
}

/// Why a URL or its document cannot be used; the text is shown on the error page.
pub type Refusal = String;

struct Entry {
    answer: Result<Document, Refusal>,
    until: Instant,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    in_flight: usize,
}

/// The fetcher and its cache.
pub struct Documents {
    allow_localhost: bool,
    agent: ureq::Agent,
    cache: Mutex<Cache>,
}

/// A fetch slot, given back on drop.
pub struct Slot<'a>(&'a Documents);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut c = self.0.lock();
        c.in_flight = c.in_flight.saturating_sub(1);
    }
}

impl Documents {
    /// `allow_localhost`: accept `http://localhost` documents and connect to loopback for
    /// them (the tests-only switch; never in production).
    pub fn new(allow_localhost: bool) -> Documents {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            // A proxy would resolve and connect for us, past the address check.
            .proxy(None)
            .https_only(!allow_localhost)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(FETCH_TIMEOUT))
            .user_agent(concat!(
                "kimai-mcp/",
                env!("CARGO_PKG_VERSION"),
                " (client metadata)"
            ))
            .accept("application/json")
            .max_response_header_size(8 * 1024)
            .input_buffer_size(16 * 1024)
            .output_buffer_size(4 * 1024)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            PublicOnly { allow_localhost },
        );
        Documents {
            allow_localhost,
            agent,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `url` may be fetched at all (no network).
    pub fn check(&self, url: &str) -> Result<(), Refusal> {
        check_url(url, self.allow_localhost)
    }

    /// The cached answer for `url`, if it is still fresh.
    pub fn cached(&self, url: &str, now: Instant) -> Option<Result<Document, Refusal>> {
        let c = self.lock();
        c.entries
            .get(url)
            .filter(|e| e.until > now)
            .map(|e| e.answer.clone())
    }

    /// A fetch slot, or `None` when [`MAX_IN_FLIGHT`] fetches are running.
    pub fn slot(&self) -> Option<Slot<'_>> {
        let mut c = self.lock();
        if c.in_flight >= MAX_IN_FLIGHT {
            return None;
        }
        c.in_flight += 1;
        Some(Slot(self))
    }

    /// Fetches and validates the document at `url` (already [`Documents::check`]ed) and caches
    /// the answer.
    pub fn fetch(&self, url: &str, slot: &Slot<'_>) -> Result<Document, Refusal> {
        self.fetch_for(url, slot).0
    }

    /// [`Documents::fetch`], with how long the answer may be used (zero: not at all).
    pub fn fetch_for(&self, url: &str, _slot: &Slot<'_>) -> (Result<Document, Refusal>, Duration) {
        let (answer, ttl) = match self.get(url) {
            Ok((body, ttl)) => (parse_document(url, &body), ttl),
            Err(why) => (Err(why), FAILURE_TTL),
        };
        let ttl = if answer.is_err() { FAILURE_TTL } else { ttl };
        self.remember(url, &answer, ttl);
        (answer, ttl)
    }

    /// Caches an answer for `ttl` (one another instance fetched, or this one).
    pub fn remember(&self, url: &str, answer: &Result<Document, Refusal>, ttl: Duration) {
        let now = Instant::now();
        let mut c = self.lock();
        if ttl > Duration::ZERO {
            if !c.entries.contains_key(url) && c.entries.len() >= MAX_CACHED {
                c.entries.retain(|_, e| e.until > now);
                if c.entries.len() >= MAX_CACHED
                    && let Some(first) = c
                        .entries
                        .iter()
                        .min_by_key(|(_, e)| e.until)
                        .map(|(k, _)| k.clone())
                {
                    c.entries.remove(&first);
                }
            }
            c.entries.insert(
                url.to_string(),
                Entry {
                    answer: answer.clone(),
                    until: now + ttl,
                },
            );
        } else {
            c.entries.remove(url);
        }
    }

    /// URLs with a cached answer (fresh or not yet swept).
    pub fn cached_count(&self) -> usize {
        self.lock().entries.len()
    }

    /// Forgets answers that are no longer fresh.
    pub fn sweep(&self, now: Instant) {
        self.lock().entries.retain(|_, e| e.until > now);
    }

    /// The document's bytes and how long they may be used.
    fn get(&self, url: &str) -> Result<(Vec<u8>, Duration), Refusal> {
        let host = host_of(url).unwrap_or_default();
        let mut resp = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                io.to_string()
            }
            ureq::Error::HostNotFound => not_public(&host),
            ureq::Error::Timeout(_) => {
                format!("{host} did not answer within {} s", FETCH_TIMEOUT.as_secs())
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
                format!("{host} does not offer a trusted TLS certificate")
            }
            ureq::Error::LargeResponseHeader(..) => {
                format!("{host} answered with headers that are too large")
            }
            _ => format!("{host} could not be reached"),
        })?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return Err(format!(
                "{host} answered {status} (a redirect); the document must be served at the client_id URL itself, redirects are not followed"
            ));
        }
        if status != 200 {
            return Err(format!("{host} answered {status} instead of the document"));
        }
        let json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let v = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json {
            return Err(format!("{host} did not answer with application/json"));
        }
        let ttl = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map_or(DEFAULT_TTL, cache_lifetime);
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_DOCUMENT as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|_| {
                format!(
                    "{host} did not send the whole document within {} s",
                    FETCH_TIMEOUT.as_secs()
                )
            })?;
        if body.len() > MAX_DOCUMENT {
            return Err(format!(
                "the document is larger than {} KiB",
                MAX_DOCUMENT / 1024
            ));
        }
        Ok((body, ttl))
    }
}

fn not_public(host: &str) -> String {
    // One text for "does not resolve" and "resolves inside": the page must not tell a
    // stranger which internal names exist.
    format!("{host} does not resolve to a public internet address")
}

/// How long a `Cache-Control` value lets a document be used.
fn cache_lifetime(v: &str) -> Duration {
    let mut ttl = DEFAULT_TTL;
    for d in v.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-store" || d == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(n) = d.strip_prefix("max-age=") {
            match n.trim_matches('"').parse::<u64>() {
                Ok(n) => ttl = Duration::from_secs(n),
                Err(_) => return Duration::ZERO,
            }
        }
    }
    ttl.clamp(MIN_TTL, MAX_TTL)
}

/// Whether a `client_id` names a metadata document (rather than a registered client).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// The host of an http(s) URL as written (an IPv6 literal without its brackets).
pub fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    Some(host.to_ascii_lowercase())
}

/// The URL rules of the draft (§3) plus this server's: https, a host of letters, digits, `-`
/// and `.` (or an IP literal), an optional port, a path other than `/` without dot segments,
/// no user info, no fragment, at most 2,048 characters.
pub fn check_url(url: &str, allow_localhost: bool) -> Result<(), Refusal> {
    let bad = |why: &str| Err(format!("the client_id URL {why}"));
    if url.len() > 2048 {
        return bad("is longer than 2,048 characters");
    }
    if url.chars().any(|c| !c.is_ascii_graphic()) {
        return bad("contains spaces, control or non-ASCII characters");
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        if !(allow_localhost && host_of(url).as_deref() == Some("localhost")) {
            return bad("must use https");
        }
        r
    } else {
        return bad("must use https");
    };
    if url.contains('#') {
        return bad("must not have a fragment");
    }
    if url.contains('\\') {
        return bad("must not contain a backslash");
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(end);
    if authority.contains('@') {
        return bad("must not contain user information");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return bad("has an unclosed IPv6 address");
        };
        if h.parse::<Ipv6Addr>().is_err() {
            return bad("has an invalid IPv6 address");
        }
        (h, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ':')
    {
        return bad("has no valid host name");
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return bad("has an invalid port");
    }
    let path = path_and_query.split('?').next().unwrap_or("");
    if path.is_empty() || path == "/" {
        return bad("must have a path (the document cannot be at the root of the host)");
    }
    if path.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    }) {
        return bad("must not contain . or .. path segments");
    }
    Ok(())
}

/// Validates a document fetched from `url` (the draft §4: `client_id` equal to the URL, no
/// shared-secret client authentication, no client secret; redirect URIs as at `/register`).
pub fn parse_document(url: &str, body: &[u8]) -> Result<Document, Refusal> {
    let bad = |why: String| Err(format!("the document {why}"));
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return bad("is not a JSON object".into());
    };
    match m.get("client_id") {
        Some(Value::String(id)) if id == url => {}
        Some(Value::String(_)) => {
            return bad("has a client_id that differs from its own URL".into());
        }
        _ => return bad("has no client_id".into()),
    }
    if m.contains_key("client_secret") || m.contains_key("client_secret_expires_at") {
        return bad("must not contain a client_secret".into());
    }
    match m.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "none" => {}
        Some(Value::String(s)) => {
            let s: String = s.chars().filter(char::is_ascii_graphic).take(40).collect();
            return bad(format!(
                "asks for token_endpoint_auth_method {s:?}; this server accepts only \"none\" (PKCE) for client ID metadata documents"
            ));
        }
        Some(_) => return bad("has a token_endpoint_auth_method that is not a string".into()),
    }
    let uris = match m.get("redirect_uris") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_REDIRECT_URIS => a,
        Some(Value::Array(a)) if !a.is_empty() => {
            return bad(format!("lists more than {MAX_REDIRECT_URIS} redirect_uris"));
        }
        _ => return bad("has no redirect_uris".into()),
    };
    let mut redirect_uris = Vec::new();
    for u in uris {
        let Some(u) = u.as_str() else {
            return bad("has a redirect URI that is not a string".into());
        };
        check_redirect_uri(u).map_err(|d| format!("the document has a bad redirect URI: {d}"))?;
        redirect_uris.push(u.to_string());
    }
    let list = |key: &str, default: &str| -> Result<Vec<String>, Refusal> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(vec![default.to_string()]),
            Some(Value::Array(a)) if a.len() <= 10 => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("the document's {key} must be a list of strings")),
            Some(_) => Err(format!("the document's {key} must be a list of strings")),
        }
    };
    let grant_types = list("grant_types", "authorization_code")?;
    if !grant_types.iter().any(|g| g == "authorization_code")
        || grant_types
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return bad(
            "must list grant_types authorization_code (and optionally refresh_token) only".into(),
        );
    }
    if list("response_types", "code")?.iter().any(|r| r != "code") {
        return bad("may only use the response type code".into());
    }
    let name = match m.get("client_name") {
        Some(Value::String(s)) => {
            let clean: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
            (!clean.trim().is_empty()).then(|| clean.trim().to_string())
        }
        _ => None,
    };
    Ok(Document {
        redirect_uris,
        name,
        grant_types,
    })
}

/// Why this server never connects to `ip` for a document; `None` for a public address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, b, _) if (16..32).contains(&b) => "private",
        (100, b, _) if (64..128).contains(&b) => "shared (carrier-grade NAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18 | 19, _) => "benchmarking",
        (a, _, _) if a >= 224 => "multicast or reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return forbidden_v4(mapped);
    }
    // NAT64 (64:ff9b::/96, 64:ff9b:1::/48): judged by the IPv4 address inside.
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
        return forbidden_v4(v4(s[6], s[7]));
    }
    // 6to4 (2002::/16) carries an IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        return forbidden_v4(v4(s[1], s[2]));
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "unique-local",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        // Teredo tunnels reach IPv4 hosts this check cannot see.
        0x2001 if s[1] == 0 => "Teredo",
        0x2000..=0x3fff => return None,
        _ => "reserved",
    })
}

/// The HTTP client's resolver for documents: the system resolver's answer without the
/// addresses [`forbidden`] names, so the connection goes only to a checked address. With the
/// tests-only switch, loopback is allowed for the name `localhost`.
#[derive(Debug)]
struct PublicOnly {
    allow_localhost: bool,
}

impl Resolver for PublicOnly {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_string();
        let all = DefaultResolver::default().resolve(uri, config, timeout)?;
        let loopback_ok = self.allow_localhost && host.eq_ignore_ascii_case("localhost");
        let mut out = self.empty();
        for &a in all.iter() {
            match forbidden(a.ip()) {
                None => out.push(a),
                Some(_) if loopback_ok && a.ip().is_loopback() => out.push(a),
                Some(why) => log::debug!("client metadata: {host} has a {why} address; skipped"),
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                not_public(&host),
            )));
        }
        Ok(out)
    }
}

/// An answer as the shared store keeps it (`serve --state`): the document or the refusal.
pub fn answer_json(answer: &Result<Document, Refusal>) -> String {
    match answer {
        Ok(d) => serde_json::json!({"ok": {
            "redirect_uris": d.redirect_uris, "client_name": d.name, "grant_types": d.grant_types}}),
        Err(why) => serde_json::json!({"refused": why}),
    }
    .to_string()
}

/// Reads what [`answer_json`] wrote.
pub fn answer_from(s: &str) -> Option<Result<Document, Refusal>> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    if let Some(why) = v.get("refused").and_then(|w| w.as_str()) {
        return Some(Err(why.to_string()));
    }
    let d = v.get("ok")?;
    let strings = |k: &str| -> Option<Vec<String>> {
        d.get(k)?
            .as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    Some(Ok(Document {
        redirect_uris: strings("redirect_uris")?,
        name: d
            .get("client_name")
            .and_then(|n| n.as_str())
            .map(str::to_string),
        grant_types: strings("grant_types")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example.com/oauth/client.json";

    fn doc(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"client_id":"{URL}","redirect_uris":["http://127.0.0.1:3000/callback"]{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn url_rules() {
        assert_eq!(check_url(URL, false), Ok(()));
        assert_eq!(
            check_url("https://app.example.com:8443/c?v=1", false),
            Ok(())
        );
        assert_eq!(check_url("https://[2001:4860::1]/c", false), Ok(()));
        for (url, why) in [
            ("http://app.example.com/c", "https"),
            ("http://localhost:3000/c", "https"),
            ("https://app.example.com", "path"),
            ("https://app.example.com/", "path"),
            ("https://app.example.com/c#x", "fragment"),
            ("https://user:pw@app.example.com/c", "user information"),
            ("https://app.example.com/a/../c", "segments"),
            ("https://app.example.com/a/%2E%2e/c", "segments"),
            ("https://app.example.com/./c", "segments"),
            ("https://app.exa mple.com/c", "spaces"),
            ("https://app.example.com:0/c", "port"),
            ("https://app.example.com:99999/c", "port"),
            ("https://[::1/c", "IPv6"),
            ("https://a_b.example.com/c", "host"),
            ("https://app.example.com\\@evil/c", "backslash"),
        ] {
            let e = check_url(url, false).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        assert_eq!(check_url("http://localhost:3000/c", true), Ok(()));
        assert!(check_url("http://127.0.0.1:3000/c", true).is_err());
        assert!(check_url("http://example.com/c", true).is_err());
        assert_eq!(host_of("https://[::1]:8/c").as_deref(), Some("::1"));
        assert_eq!(host_of("https://Ex.COM:8/c").as_deref(), Some("ex.com"));
    }

    #[test]
    fn addresses_inside_any_network_are_forbidden() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "fd00::1",
            "fc12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "2002:c0a8:101::1",
            "2002:7f00:1::1",
            "100::1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{a} must be forbidden");
        }
        for a in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{a} is public");
        }
    }

    #[test]
    fn documents_are_validated() {
        let d = parse_document(URL, &doc(r#","client_name":"Writer\u0007 App""#)).unwrap();
        assert_eq!(d.redirect_uris, vec!["http://127.0.0.1:3000/callback"]);
        assert_eq!(d.name.as_deref(), Some("Writer App"));
        assert_eq!(d.grant_types, vec!["authorization_code"]);
        for (body, why) in [
            (b"[]".to_vec(), "JSON object"),
            (b"{".to_vec(), "JSON object"),
            (
                br#"{"client_id":"https://other.example.com/c","redirect_uris":["http://127.0.0.1/cb"]}"#
                    .to_vec(),
                "differs",
            ),
            (br#"{"redirect_uris":["http://127.0.0.1/cb"]}"#.to_vec(), "no client_id"),
            (doc(r#","client_secret":"s""#), "client_secret"),
            (
                doc(r#","token_endpoint_auth_method":"client_secret_basic""#),
                "accepts only",
            ),
            (
                doc(r#","grant_types":["client_credentials"]"#),
                "grant_types",
            ),
            (doc(r#","response_types":["token"]"#), "response type"),
            (
                format!(r#"{{"client_id":"{URL}","redirect_uris":[]}}"#).into_bytes(),
                "no redirect_uris",
            ),
            (
                format!(r#"{{"client_id":"{URL}","redirect_uris":["javascript:alert(1)"]}}"#)
                    .into_bytes(),
                "bad redirect URI",
            ),
        ] {
            let e = parse_document(URL, &body).unwrap_err();
            assert!(e.contains(why), "{}: {e}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn cache_lifetimes_follow_cache_control() {
        assert_eq!(cache_lifetime("max-age=60"), Duration::from_secs(60));
        assert_eq!(
            cache_lifetime("public, max-age=600"),
            Duration::from_secs(600)
        );
        assert_eq!(cache_lifetime("max-age=99999999"), MAX_TTL);
        assert_eq!(cache_lifetime("no-store"), Duration::ZERO);
        assert_eq!(cache_lifetime("max-age=60, no-cache"), Duration::ZERO);
        assert_eq!(cache_lifetime("max-age=x"), Duration::ZERO);
        assert_eq!(cache_lifetime("public"), DEFAULT_TTL);
    }

    #[test]
    fn forbidden_literals_are_refused_without_a_connection() {
        // The resolver refuses before any socket exists: a listener on loopback sees nothing.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let docs = Documents::new(false);
        for url in [
            format!("https://127.0.0.1:{port}/c"),
            format!("https://localhost:{port}/c"),
            format!("https://[::1]:{port}/c"),
            format!("https://[::ffff:127.0.0.1]:{port}/c"),
        ] {
            docs.check(&url).unwrap();
            let slot = docs.slot().unwrap();
            let e = docs.fetch(&url, &slot).unwrap_err();
            assert!(e.contains("does not resolve to a public"), "{url}: {e}");
        }
        assert!(l.accept().is_err(), "no connection may reach the listener");
    }
}
