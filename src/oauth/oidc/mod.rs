//! Sign-in through the company's OpenID Connect identity provider (`serve --auth-backend oidc`):
//! this server is a relying party (OpenID Connect Core 1.0, authorization code flow with PKCE
//! S256, `state` and `nonce`) for the one step where its own authorization server
//! (`crate::oauth`) needs to know who the person is. The MCP client never sees the provider:
//! it gets our own code and tokens, exactly as with the local sign-in form.
//!
//! The flow: a pending authorization request (`OAuth::authorize`) → [`Oidc::start`] keeps a
//! sign-in ([`Login`]: its `state`, `nonce`, PKCE verifier, a secret bound to the browser by a
//! cookie) and gives the provider's authorization URL → the provider sends the browser to
//! `/oauth/oidc/callback` → [`Oidc::take`] ends the sign-in (single use) → [`Oidc::finish`]
//! redeems the code, verifies the ID token (`jws`, `id_token`) and names the identity. Mapping
//! the identity to a user, and everything the browser sees, is the HTTP layer's
//! (`http::oidc`).
//!
//! Files: this one holds the settings and the sign-ins in flight; `provider` the HTTP side
//! (discovery, keys, token endpoint, with their cache); `jws` the signature; `id_token` the
//! claims and the identity.
//!
//! Threads: connection threads call in concurrently, the sweeper calls [`Oidc::sweep`]. One
//! mutex guards the sign-ins and is never held across a request to the provider.

pub mod id_token;
pub mod jws;
pub mod provider;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::encoding::{digest_hex, random_secret, s256, with_query};
pub use id_token::Identity;
pub use provider::Timing;

/// The path of the callback, to be registered at the provider as `<public URL>` + this.
pub const CALLBACK_PATH: &str = "/oauth/oidc/callback";
/// Sign-ins in flight at most (each also holds a pending authorization request, which are
/// bounded per address; this bounds the table itself).
pub const MAX_LOGINS: usize = 10_000;
/// Scopes asked for by default (2.20.1).
pub const DEFAULT_SCOPES: &str = "openid email profile";

/// The relying party's settings (`--oidc-*`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--oidc-issuer`, checked: https, or http on loopback.
    pub issuer: String,
    pub client_id: String,
    /// `--oidc-client-secret`; none = a public client (PKCE only).
    pub client_secret: Option<crate::kimai::Token>,
    /// Always holds `openid`.
    pub scopes: Vec<String>,
    pub identity: id_token::Rules,
    /// `--oidc-discovery-url`; none = `<issuer>/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// How long a sign-in at the provider may take (the pending request's lifetime).
    pub login_ttl: Duration,
    pub timing: Timing,
}

/// One sign-in in flight.
pub struct Login {
    /// The pending authorization request it finishes.
    pub txn: String,
    nonce: String,
    verifier: String,
    /// SHA-256 of the secret in the browser's cookie.
    browser: String,
    expires: Instant,
}

impl Login {
    /// Whether the browser's cookie value is the one this sign-in set.
    pub fn same_browser(&self, cookie: Option<&str>) -> bool {
        let presented = digest_hex(cookie.unwrap_or(""));
        crate::guard::ct_eq(presented.as_bytes(), self.browser.as_bytes()) && cookie.is_some()
    }
}

/// A started sign-in: where to send the browser and the cookie that binds it.
pub struct Started {
    pub url: String,
    /// The cookie's name and value (the value is a secret).
    pub cookie_name: String,
    pub cookie_value: String,
}

/// Why a sign-in could not be finished (for the log, no secret).
#[derive(Debug)]
pub enum Failure {
    /// The provider could not be reached or answered wrongly.
    Provider(provider::Error),
    /// The ID token or its claims were refused.
    Token(String),
    /// The verified claims assert no usable identity.
    Identity(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Provider(e) => write!(f, "identity provider: {e}"),
            Failure::Token(m) => write!(f, "ID token refused: {m}"),
            Failure::Identity(m) => write!(f, "no usable identity: {m}"),
        }
    }
}

/// A finished sign-in: the person's identity and the verified claims (names, for matching).
#[derive(Debug)]
pub struct Signed {
    pub identity: Identity,
    pub claims: Value,
}

/// The cookie name for a sign-in (one per sign-in, so that two tabs do not collide).
pub fn cookie_name(state: &str) -> String {
    format!(
        "kmoidc_{}",
        state
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(10)
            .collect::<String>()
    )
}

/// The relying party.
pub struct Oidc {
    settings: Settings,
    provider: provider::Provider,
    redirect_uri: String,
    logins: Mutex<HashMap<String, Login>>,
    /// The shared state store (`--state`): sign-ins in flight are kept there instead, so that
    /// the provider's redirect may land on any instance.
    shared: Option<std::sync::Arc<crate::state::Store>>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Oidc {
    /// `origin` is this server's public origin (`--public-url`).
    pub fn new(settings: Settings, origin: &str) -> Oidc {
        let provider = provider::Provider::new(
            &settings.issuer,
            settings.discovery_url.as_deref(),
            settings.timing,
        );
        Oidc {
            redirect_uri: format!("{}{CALLBACK_PATH}", origin.trim_end_matches('/')),
            provider,
            settings,
            logins: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keeps the sign-ins in flight in the shared state store (`serve --state`).
    pub fn with_store(mut self, store: std::sync::Arc<crate::state::Store>) -> Oidc {
        self.shared = Some(store);
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Login>> {
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The host of the provider's sign-in page (for our page's wording and its CSP), once the
    /// discovery document is known.
    pub fn provider(&self) -> &provider::Provider {
        &self.provider
    }

    /// Fetches discovery and keys, for the start-up log.
    pub fn probe(&self) -> Result<String, provider::Error> {
        let meta = self.provider.metadata()?;
        let keys = self.provider.keys(false)?;
        Ok(format!(
            "issuer {}, sign-in at {}, {} signing key(s); register the redirect URI {} at the provider",
            meta.issuer,
            meta.authorization_endpoint
                .split('?')
                .next()
                .unwrap_or_default(),
            keys.len(),
            self.redirect_uri
        ))
    }

    /// Starts a sign-in for the pending request `txn`: the provider's authorization URL.
    pub fn start(&self, txn: &str) -> Result<Started, provider::Error> {
        let meta = self.provider.metadata()?;
        let state = random_secret("");
        let nonce = random_secret("");
        let verifier = random_secret("");
        let browser = random_secret("");
        let scope = self.settings.scopes.join(" ");
        let url = with_query(
            &meta.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", &self.settings.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", &scope),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &s256(&verifier)),
                ("code_challenge_method", "S256"),
            ],
        );
        let now = Instant::now();
        let login = Login {
            txn: txn.to_string(),
            nonce,
            verifier,
            browser: digest_hex(&browser),
            expires: now + self.settings.login_ttl,
        };
        if let Some(store) = &self.shared {
            // The nonce and the PKCE verifier are sealed with the state, which only the
            // browser holds (the key is its digest).
            let record = serde_json::json!({
                "txn": login.txn,
                "nonce": super::shared::seal_hex(&state, "oidc-nonce", &login.nonce),
                "verifier": super::shared::seal_hex(&state, "oidc-verifier", &login.verifier),
                "browser": login.browser,
            });
            let unreachable =
                |_| provider::Error::Unreachable("the shared state store cannot be reached".into());
            let key = digest_hex(&state);
            store
                .oauth_put("login", &key, &record.to_string(), self.settings.login_ttl)
                .map_err(unreachable)?;
            // A second start for the same request (the person went back and pressed the button
            // again) ends the first, so that one request holds one sign-in in the store.
            let of_request = format!("loginfor:{}", digest_hex(txn));
            if let Ok(Some(previous)) = store.oauth_get(&of_request)
                && previous != key
            {
                let _ = store.oauth_del(&[&format!("login:{previous}")]);
            }
            store
                .oauth_set(&of_request, &key, Some(self.settings.login_ttl), false)
                .map_err(unreachable)?;
            return Ok(Started {
                url,
                cookie_name: cookie_name(&state),
                cookie_value: browser,
            });
        }
        let mut logins = self.lock();
        // A second start for the same request (the person went back and pressed the button
        // again) replaces the first.
        logins.retain(|_, l| l.txn != txn);
        if logins.len() >= MAX_LOGINS {
            logins.retain(|_, l| l.expires > now);
            while logins.len() >= MAX_LOGINS {
                let Some(oldest) = logins
                    .iter()
                    .min_by_key(|(_, l)| l.expires)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                logins.remove(&oldest);
            }
        }
        logins.insert(digest_hex(&state), login);
        Ok(Started {
            url,
            cookie_name: cookie_name(&state),
            cookie_value: browser,
        })
    }

    /// Ends the sign-in of `state` (single use), if it is still open.
    pub fn take(&self, state: &str) -> Option<Login> {
        if state.is_empty() || state.len() > 128 {
            return None;
        }
        if let Some(store) = &self.shared {
            let record = store.oauth_take_login(&digest_hex(state)).ok()??;
            let v: Value = serde_json::from_str(&record).ok()?;
            let text = |k: &str| v.get(k).and_then(Value::as_str);
            return Some(Login {
                txn: text("txn")?.to_string(),
                nonce: super::shared::open_hex(state, "oidc-nonce", text("nonce")?)?,
                verifier: super::shared::open_hex(state, "oidc-verifier", text("verifier")?)?,
                browser: text("browser")?.to_string(),
                // The store expired it otherwise.
                expires: Instant::now() + Duration::from_secs(1),
            });
        }
        let login = self.lock().remove(&digest_hex(state))?;
        (login.expires > Instant::now()).then_some(login)
    }

    /// Redeems the code and verifies the ID token; the identity it asserts.
    pub fn finish(&self, login: &Login, code: &str) -> Result<Signed, Failure> {
        let secret = self.settings.client_secret.as_ref().map(|t| t.expose());
        let token = self
            .provider
            .exchange(
                code,
                &login.verifier,
                &self.redirect_uri,
                &self.settings.client_id,
                secret,
            )
            .map_err(Failure::Provider)?;
        let claims = self.verify(&token, &login.nonce)?;
        let identity =
            id_token::identity(&claims, &self.settings.identity).map_err(Failure::Identity)?;
        Ok(Signed { identity, claims })
    }

    /// The verified claims of an ID token.
    fn verify(&self, token: &str, nonce: &str) -> Result<Value, Failure> {
        let bad = |e: jws::Error| Failure::Token(e.to_string());
        let parsed = jws::parse(token).map_err(bad)?;
        let mut keys = self.provider.keys(false).map_err(Failure::Provider)?;
        let key = match jws::select(&keys, &parsed) {
            Err(jws::Error::UnknownKey) => {
                // The provider may have rotated its keys since we fetched them: once more.
                keys = self.provider.keys(true).map_err(Failure::Provider)?;
                jws::select(&keys, &parsed).map_err(bad)?
            }
            other => other.map_err(bad)?,
        };
        jws::verify(&parsed, key).map_err(bad)?;
        let claims: Value = serde_json::from_slice(parsed.payload())
            .map_err(|_| Failure::Token("the payload is not JSON".into()))?;
        let meta = self.provider.metadata().map_err(Failure::Provider)?;
        id_token::check(
            &claims,
            &id_token::Expected {
                issuer: &meta.issuer,
                client_id: &self.settings.client_id,
                nonce,
                now: now_secs(),
            },
        )
        .map_err(Failure::Token)?;
        Ok(claims)
    }

    /// Forgets sign-ins that were never finished.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.lock().retain(|_, l| l.expires > now);
    }

    /// Sign-ins in flight (tests, metrics).
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;
