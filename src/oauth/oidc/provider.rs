//! The identity provider as seen over HTTP: its discovery document (OpenID Connect Discovery
//! 1.0 §4), its signing keys (the `jwks_uri`), and its token endpoint (OpenID Connect Core
//! §3.1.3). Owns the HTTP client for these three and their cache; knows nothing of claims or
//! of our own OAuth server.
//!
//! Rules:
//! - every URL is https, or http on a loopback host only when the configured issuer itself is
//!   such a loopback URL (a test provider on this machine); the discovery document's `issuer`
//!   must be the configured issuer (a trailing `/` aside), and its endpoints follow the same
//!   scheme rule;
//! - no redirects are followed (a provider answers these three at the URLs it publishes), no
//!   proxy from the environment, [`CONNECT_TIMEOUT`] to connect and [`REQUEST_TIMEOUT`] in all,
//!   at most [`MAX_RESPONSE_BYTES`] of body;
//! - discovery and keys are cached for [`Timing::ttl`]; when a refresh fails the stale copy is
//!   used (and the failure logged), so a provider that is briefly unreachable does not stop
//!   sign-ins that it would have signed; a forced key refresh (a token names a `kid` we do not
//!   know: the provider rotated its keys) happens at most once per [`Timing::refetch_gap`];
//! - the token request authenticates with `client_secret_basic` (the default of OpenID Connect
//!   Discovery §3) unless the provider lists only `client_secret_post`; without a secret the
//!   client is public and PKCE alone binds the code. The code, the verifier, the secret and the
//!   tokens in the answer are never logged; a refusal is logged by status and `error` code.
//!
//! Threads: connection threads call in concurrently. One mutex guards the cache; it is held
//! only to read or replace an entry, never during a request, so two threads may fetch at once
//! (the later answer wins; both are valid).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::jws::{self, Jwk};

/// Time to connect to the provider.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole request to the provider.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body read from the provider (discovery, keys and token answers are a few KiB; Entra
/// ID's key set with its certificates about 20).
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
/// Longest `error` code of a token-endpoint refusal that is logged.
const MAX_LOGGED_ERROR: usize = 64;

/// Cache lifetimes; [`Timing::default`] is what the server uses, tests shorten them.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long discovery and keys are used before they are fetched again.
    pub ttl: Duration,
    /// Shortest time between two fetches of the keys forced by an unknown `kid`.
    pub refetch_gap: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ttl: Duration::from_secs(3600),
            refetch_gap: Duration::from_secs(1),
        }
    }
}

/// Why the provider could not be used. Lowercase texts for the log, with the provider's host
/// and no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No answer: DNS, connection, TLS, timeout.
    Unreachable(String),
    /// An answer that is not what the protocol wants (status, body, fields).
    Invalid(String),
    /// The token endpoint refused the code (status and its `error` code).
    Refused(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unreachable(m) | Error::Invalid(m) | Error::Refused(m) => f.write_str(m),
        }
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
}

/// What the discovery document says and this server uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Exactly as the provider writes it: `iss` in ID tokens must equal it.
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub client_auth: ClientAuth,
}

#[derive(Default)]
struct Cache {
    metadata: Option<(Arc<Metadata>, Instant)>,
    keys: Option<(Arc<Vec<Jwk>>, Instant)>,
}

/// The provider's client and cache.
pub struct Provider {
    /// The configured issuer, without a trailing `/`.
    issuer: String,
    discovery_url: String,
    /// Whether http URLs on loopback hosts are accepted (the issuer is one).
    loopback_http: bool,
    timing: Timing,
    agent: ureq::Agent,
    cache: Mutex<Cache>,
}

/// Whether `url` is http on a loopback host (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(r) = authority.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a provider URL: https with a host and no user info or fragment, or (when allowed)
/// http on a loopback host.
pub fn check_url(url: &str, loopback_http: bool) -> Result<(), String> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if loopback_http && is_loopback_http(url) {
        &url["http://".len()..]
    } else if url.starts_with("http://") {
        return Err(format!(
            "{url:?} must be https:// (http:// only for a provider on this machine's loopback address)"
        ));
    } else {
        return Err(format!("{url:?} is not an https:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.contains('#') {
        return Err(format!(
            "{url:?} needs a host, and no user name or fragment"
        ));
    }
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a provider URL is too long or has spaces".into());
    }
    Ok(())
}

/// The host of a URL, for messages.
fn host(url: &str) -> &str {
    url.split_once("://")
        .map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or(r))
        .unwrap_or(url)
}

impl Provider {
    /// `issuer` and `discovery_url` are checked by the configuration ([`check_url`]).
    pub fn new(issuer: &str, discovery_url: Option<&str>, timing: Timing) -> Provider {
        let issuer = issuer.trim_end_matches('/').to_string();
        let loopback_http = is_loopback_http(&issuer);
        let discovery_url = discovery_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("{issuer}/.well-known/openid-configuration"));
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .https_only(!loopback_http)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("kimai-mcp/", env!("CARGO_PKG_VERSION"), " (oidc)"))
            .accept("application/json")
            .max_response_header_size(16 * 1024)
            .input_buffer_size(32 * 1024)
            .output_buffer_size(8 * 1024)
            .build();
        Provider {
            issuer,
            discovery_url,
            loopback_http,
            timing,
            agent: config.new_agent(),
            cache: Mutex::new(Cache::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured issuer (no trailing `/`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document: cached, fetched when older than the TTL, the stale copy when a
    /// refresh fails.
    pub fn metadata(&self) -> Result<Arc<Metadata>, Error> {
        let now = Instant::now();
        let cached = self.lock().metadata.clone();
        if let Some((m, at)) = &cached
            && now.duration_since(*at) < self.timing.ttl
        {
            return Ok(m.clone());
        }
        match self.fetch_metadata() {
            Ok(m) => {
                let m = Arc::new(m);
                self.lock().metadata = Some((m.clone(), Instant::now()));
                Ok(m)
            }
            Err(e) => match cached {
                Some((m, _)) => {
                    log::warn!(
                        "oidc: refreshing the discovery document failed ({e}); using the copy fetched earlier"
                    );
                    Ok(m)
                }
                None => Err(e),
            },
        }
    }

    /// The signing keys. `force`: the caller met an unknown `kid`, so fetch now unless a
    /// fetch happened within [`Timing::refetch_gap`].
    pub fn keys(&self, force: bool) -> Result<Arc<Vec<Jwk>>, Error> {
        let now = Instant::now();
        let cached = self.lock().keys.clone();
        if let Some((k, at)) = &cached {
            let age = now.duration_since(*at);
            if age < self.timing.refetch_gap || (!force && age < self.timing.ttl) {
                return Ok(k.clone());
            }
        }
        let meta = self.metadata()?;
        match self.fetch_keys(&meta.jwks_uri) {
            Ok(k) => {
                let k = Arc::new(k);
                self.lock().keys = Some((k.clone(), Instant::now()));
                Ok(k)
            }
            Err(e) => match cached {
                Some((k, _)) => {
                    log::warn!(
                        "oidc: refreshing the signing keys failed ({e}); using the keys fetched earlier"
                    );
                    Ok(k)
                }
                None => Err(e),
            },
        }
    }

    /// One GET of a JSON document.
    fn get_json(&self, url: &str, what: &str) -> Result<Value, Error> {
        let h = host(url);
        let mut resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| unreachable(h, what, &e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(Error::Invalid(format!(
                "{h} answered {status} for the {what}{}",
                if (300..400).contains(&status) {
                    " (a redirect; redirects are not followed)"
                } else {
                    ""
                }
            )));
        }
        let body = read_body(&mut resp, h, what)?;
        serde_json::from_slice(&body)
            .map_err(|_| Error::Invalid(format!("the {what} from {h} is not JSON")))
    }

    fn fetch_metadata(&self) -> Result<Metadata, Error> {
        let doc = self.get_json(&self.discovery_url, "discovery document")?;
        let h = host(&self.discovery_url);
        let field = |name: &str| -> Result<String, Error> {
            doc.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Invalid(format!("the discovery document from {h} has no {name}"))
                })
        };
        let issuer = field("issuer")?;
        if issuer.trim_end_matches('/') != self.issuer {
            return Err(Error::Invalid(format!(
                "the discovery document names the issuer {:?}, not the configured {:?} (--oidc-issuer must be the provider's issuer exactly)",
                issuer.chars().take(200).collect::<String>(),
                self.issuer
            )));
        }
        let authorization_endpoint = field("authorization_endpoint")?;
        let token_endpoint = field("token_endpoint")?;
        let jwks_uri = field("jwks_uri")?;
        for (name, url) in [
            ("authorization_endpoint", &authorization_endpoint),
            ("token_endpoint", &token_endpoint),
            ("jwks_uri", &jwks_uri),
        ] {
            check_url(url, self.loopback_http).map_err(|why| {
                Error::Invalid(format!(
                    "the discovery document's {name} cannot be used: {why}"
                ))
            })?;
        }
        // PKCE S256 is what we send; a provider that lists methods without it would ignore or
        // refuse the challenge.
        if let Some(methods) = doc
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
            && !methods.iter().any(|m| m.as_str() == Some("S256"))
        {
            log::warn!(
                "oidc: the provider does not list PKCE S256 in code_challenge_methods_supported; sign-ins may fail"
            );
        }
        let methods: Vec<&str> = doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let client_auth = if !methods.is_empty()
            && !methods.contains(&"client_secret_basic")
            && methods.contains(&"client_secret_post")
        {
            ClientAuth::Post
        } else {
            ClientAuth::Basic
        };
        Ok(Metadata {
            issuer,
            authorization_endpoint,
            token_endpoint,
            jwks_uri,
            client_auth,
        })
    }

    fn fetch_keys(&self, jwks_uri: &str) -> Result<Vec<Jwk>, Error> {
        let doc = self.get_json(jwks_uri, "signing keys")?;
        let keys = jws::parse_jwks(&doc);
        if keys.is_empty() {
            return Err(Error::Invalid(format!(
                "the key set from {} holds no usable signing key (RSA, or EC P-256/P-384)",
                host(jwks_uri)
            )));
        }
        Ok(keys)
    }

    /// Redeems an authorization code at the token endpoint; the ID token of the answer.
    pub fn exchange(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<String, Error> {
        let meta = self.metadata()?;
        let h = host(&meta.token_endpoint);
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut req = self.agent.post(&meta.token_endpoint);
        match (secret, meta.client_auth) {
            (Some(s), ClientAuth::Basic) => {
                // RFC 6749 §2.3.1: each part form-encoded, then base64.
                let pair = format!(
                    "{}:{}",
                    crate::oauth::form_encode(client_id),
                    crate::oauth::form_encode(s)
                );
                req = req.header(
                    "Authorization",
                    format!("Basic {}", crate::oauth::b64_std(pair.as_bytes())),
                );
            }
            (Some(s), ClientAuth::Post) => {
                form.push(("client_id", client_id));
                form.push(("client_secret", s));
            }
            (None, _) => form.push(("client_id", client_id)),
        }
        let mut resp = req
            .send_form(form)
            .map_err(|e| unreachable(h, "token endpoint", &e))?;
        let status = resp.status().as_u16();
        let body = read_body(&mut resp, h, "token answer")?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 {
            let code: String = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(MAX_LOGGED_ERROR)
                .collect();
            return Err(Error::Refused(format!(
                "the token endpoint at {h} answered {status}{}",
                if code.is_empty() {
                    String::new()
                } else {
                    format!(" {code}")
                }
            )));
        }
        match v.get("id_token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => Ok(t.to_string()),
            _ => Err(Error::Invalid(format!(
                "the token answer from {h} has no id_token (is `openid` among --oidc-scopes?)"
            ))),
        }
    }
}

fn read_body(
    resp: &mut ureq::http::Response<ureq::Body>,
    h: &str,
    what: &str,
) -> Result<Vec<u8>, Error> {
    resp.body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::Invalid(format!(
                "the {what} from {h} is larger than {} KiB",
                MAX_RESPONSE_BYTES / 1024
            )),
            e => unreachable(h, what, &e),
        })
}

fn unreachable(h: &str, what: &str, e: &ureq::Error) -> Error {
    let why = match e {
        ureq::Error::Timeout(_) => format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
        ureq::Error::HostNotFound => "the name does not resolve".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "no trusted TLS certificate".into(),
        ureq::Error::RequireHttpsOnly(_) => "not https".into(),
        ureq::Error::Io(io) => io.kind().to_string(),
        _ => "no usable answer".into(),
    };
    Error::Unreachable(format!("{h} ({what}): {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls_are_https_or_loopback_http_for_a_loopback_issuer() {
        assert!(check_url("https://login.example.com/tenant/v2.0", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/realms/x", true).is_ok());
        assert!(check_url("http://localhost:9000", true).is_ok());
        assert!(check_url("http://[::1]:9000/", true).is_ok());
        assert!(check_url("http://127.0.0.1:9000", false).is_err());
        assert!(check_url("http://idp.example.com", true).is_err());
        assert!(check_url("http://127.0.0.1.evil.example", true).is_err());
        assert!(check_url("https://user@idp.example.com", false).is_err());
        assert!(check_url("https://idp.example.com/#x", false).is_err());
        assert!(check_url("https://", false).is_err());
        assert!(check_url("ftp://idp.example.com", false).is_err());
        assert!(check_url("https://idp.example.com/a b", false).is_err());
        assert!(is_loopback_http("http://127.8.9.10:1/x"));
        assert!(!is_loopback_http("https://127.0.0.1"));
    }
}
