//! The OAuth 2.1 authorization server of `kimai-mcp serve` (on when `--public-url` is set):
//! dynamic client registration (RFC 7591), the authorization code flow with PKCE S256 only,
//! resource indicators (RFC 8707), refresh-token rotation with reuse detection, and revocation
//! (RFC 7009). A grant's subject is a `users.json` user (its slug); the HTTP layer
//! (`http::oauth`) checks the person's slug and `auth_secret` on the sign-in form and maps an
//! access token back to that user on every request.
//!
//! Everything secret is kept as a SHA-256 digest: codes, access and refresh tokens, client
//! secrets. A leaked state file therefore holds no usable token. Tokens are 256-bit random
//! values with a prefix (`kmat_`, `kmrt_`) so that secret scanners can recognise them.
//!
//! Lifetimes (the Python server's): authorization requests and codes 10 minutes, access tokens
//! 1 hour, refresh tokens 30 days (each refresh issues a new pair and revokes the old one; a
//! rotated refresh token presented again revokes the whole grant), registered clients pruned
//! after 30 days without use.
//!
//! Bounds that keep one client from harming another (all unauthenticated endpoints create
//! state, so each table is bounded per client address as well as in total):
//! - registrations: at most [`Settings::registrations_per_address`] per hour from one address
//!   (`--max-registrations-per-address`); a full client table forgets the least recently used
//!   client that nobody is signing in with or signed in with, and refuses the registration
//!   when every client is in use;
//! - sign-ins in progress: at most [`Settings::pending_per_address`] per address
//!   (`--max-pending-sign-ins-per-address`), a new one ending that address's oldest; a full
//!   table makes room at the address that holds the most;
//! - wrong `auth_secret`s: slowed per address by the HTTP layer's enumeration guard and per
//!   user by [`throttle`].
//!
//! Threads: connection threads call in concurrently; the sweeper calls [`OAuth::sweep`]. One
//! mutex guards the tables and is never held across I/O. Changes to persistent state are queued
//! under it (in the order they were made) and written to the state journal under a second lock
//! right after, before the endpoint answers (see `state`).
//!
//! Files: this one holds the settings, the error types, the [`OAuth`] state with its metadata
//! documents, access-token verification and upkeep; `register.rs` the registration endpoint,
//! `authorize.rs` the authorization endpoint and the sign-in it opens, `tokens.rs` the token
//! and revocation endpoints; `encoding.rs` the encodings, digests and URI rules, `tables.rs` the
//! in-memory tables, `state.rs` the state file, `throttle.rs` the per-user throttle of wrong
//! secrets, `scope.rs` the scopes (`kimai:read`, `kimai:write`) a grant and a token carry.

mod authorize;
pub mod cimd;
mod encoding;
pub mod oidc;
mod register;
pub mod scope;
mod shared;
mod state;
mod tables;
pub mod throttle;
mod tokens;

pub use encoding::{
    b64_decode, b64_std, b64url, digest_hex, form_encode, parse_form, random_secret, s256,
    uri_origin, with_query,
};
pub use scope::Scopes;
use serde_json::{Value, json};
pub(crate) use state::write_atomic;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tables::Tables;

/// Lifetimes and limits. [`Settings::default`] is what the server uses; tests shorten them.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub code_ttl: Duration,
    /// How long a sign-in page (authorization request) stays usable.
    pub request_ttl: Duration,
    /// Registered clients unused this long are forgotten.
    pub client_idle: Duration,
    pub max_clients: usize,
    /// Pending authorization requests at most (they are created without credentials).
    pub max_requests: usize,
    /// Client registrations per [`Settings::registration_window`] from one address; 0 = no
    /// limit (`--max-registrations-per-address`).
    pub registrations_per_address: u32,
    pub registration_window: Duration,
    /// Sign-ins in progress from one address (`--max-pending-sign-ins-per-address`).
    pub pending_per_address: usize,
    /// Wrong sign-ins for one user that cost no extra delay ([`throttle`]).
    pub sign_in_free_failures: u32,
    /// The first per-user delay after those; it doubles with each further failure ...
    pub sign_in_base_delay: Duration,
    /// ... up to this.
    pub sign_in_max_delay: Duration,
    /// A user's failures are forgotten after this long without one.
    pub sign_in_window: Duration,
    /// Accept https URLs as `client_id` and fetch their client ID metadata documents
    /// (`--disable-client-metadata-documents` turns this off).
    pub client_metadata_documents: bool,
    /// Also accept `http://localhost` documents and connect to loopback for them: only for
    /// tests (`--allow-localhost-client-metadata-for-tests`).
    pub client_metadata_localhost: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            code_ttl: Duration::from_secs(600),
            request_ttl: Duration::from_secs(600),
            client_idle: Duration::from_secs(30 * 86_400),
            max_clients: 10_000,
            max_requests: 10_000,
            // The `serve` defaults (`config::serve_defaults`).
            registrations_per_address: 20,
            registration_window: Duration::from_secs(3600),
            pending_per_address: 20,
            sign_in_free_failures: 3,
            sign_in_base_delay: Duration::from_millis(250),
            sign_in_max_delay: Duration::from_secs(4),
            sign_in_window: Duration::from_secs(900),
            client_metadata_documents: true,
            client_metadata_localhost: false,
        }
    }
}

/// Wrong sign-in attempts on one authorization request before it is dropped.
const MAX_SIGN_IN_ATTEMPTS: u32 = 5;
/// Rotated refresh tokens remembered per grant (for reuse detection).
const MAX_ROTATED: usize = 1000;
/// Sign-ins (grants) kept per user; a new one beyond this ends the oldest.
const MAX_GRANTS_PER_SUBJECT: usize = 50;
/// Longest accepted value of a parameter (state, redirect URI, …).
const MAX_PARAM: usize = 2048;

/// How a client authenticates at the token and revocation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl AuthMethod {
    fn parse(s: &str) -> Option<AuthMethod> {
        match s {
            "none" => Some(AuthMethod::None),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
        }
    }
}

/// An error at the token, revocation or registration endpoint (RFC 6749 §5.2, RFC 7591 §3.2.2).
#[derive(Debug, PartialEq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }
    fn request(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_request", d)
    }
    fn grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_grant", d)
    }
    fn client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(401, "invalid_client", d)
    }
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// What went wrong with an authorization request.
#[derive(Debug, PartialEq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// Tell the client, at its (verified) redirect URI.
    Redirect(String),
    /// No room for another sign-in right now: show this page with 503 and `Retry-After`
    /// (seconds).
    Busy(String, u64),
    /// This client address asked for too much: show this page with 429 and `Retry-After`.
    TooMany(String, u64),
}

/// What the sign-in page shows and binds to.
#[derive(Clone, Debug)]
pub struct PendingView {
    pub client_name: Option<String>,
    /// The host serving the client's metadata document, when it named itself by one.
    pub document_host: Option<String>,
    pub redirect_uri: String,
    pub csrf: String,
    /// The application asked to read only (scope `kimai:read`).
    pub read_only: bool,
}

/// Tokens issued at the token endpoint.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    /// What the access token may do (the token response's `scope`).
    pub scopes: Scopes,
}

/// A valid access token: who it signs in and what it may do.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The `users.json` slug.
    pub subject: String,
    pub scopes: Scopes,
}

/// The authorization server's state.
pub struct OAuth {
    /// `https://host/` (with the slash, as MCP clients render it).
    pub issuer: String,
    /// `https://host`.
    pub origin: String,
    /// `https://host/mcp`: the only resource tokens are issued for.
    pub resource: String,
    settings: Settings,
    state_file: Option<PathBuf>,
    tables: Mutex<Tables>,
    /// The state journal (with a state file); also serialises its writers and compaction.
    journal: Mutex<Option<state::Journal>>,
    sign_ins: throttle::Throttle,
    /// Client ID metadata documents, when accepted.
    documents: Option<cimd::Documents>,
    /// The shared state store (`--state`): the tables live there instead (`shared`).
    shared: Option<std::sync::Arc<crate::state::Store>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX / 4)) as u64
}

impl OAuth {
    /// `public_url` is an origin (`https://host[:port]`), checked by the configuration.
    pub fn new(
        public_url: &str,
        settings: Settings,
        state_file: Option<PathBuf>,
    ) -> Result<OAuth, String> {
        let origin = public_url.trim_end_matches('/').to_string();
        let oauth = OAuth {
            issuer: format!("{origin}/"),
            resource: format!("{origin}/mcp"),
            origin,
            sign_ins: throttle::Throttle::new(&settings),
            documents: settings
                .client_metadata_documents
                .then(|| cimd::Documents::new(settings.client_metadata_localhost)),
            settings,
            state_file,
            tables: Mutex::new(Tables::default()),
            journal: Mutex::new(None),
            shared: None,
        };
        if let Some(path) = &oauth.state_file {
            let loaded = state::load(path)?;
            let lines = loaded.journal_lines;
            {
                let mut t = oauth.lock();
                t.journaling = true;
                t.seq = loaded.seq;
                t.clients = loaded.clients;
                for (id, g) in loaded.grants {
                    t.refresh.insert(g.refresh_hash.clone(), id.clone());
                    for r in &g.rotated {
                        t.rotated.insert(r.clone(), id.clone());
                    }
                    t.grants.insert(id, g);
                }
            }
            let mut j = state::Journal::new(path, lines);
            // Start from a fresh snapshot and an empty journal, so that the file modes are
            // right and a torn last line is gone before anything is appended.
            if lines > 0 || !path.exists() {
                oauth.compact(&mut j).map_err(|e| {
                    format!("cannot write the OAuth state file {}: {e}", path.display())
                })?;
            }
            *oauth.journal.lock().unwrap_or_else(|e| e.into_inner()) = Some(j);
        }
        Ok(oauth)
    }

    /// The lifetimes and limits in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the changes made so far to the journal (with a state file), before the caller
    /// acknowledges them. Changes queued by other threads are written too, in order. Errors are
    /// logged: the tables in memory stay right, and the next sweep writes a full snapshot.
    fn save(&self) {
        let mut guard = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let Some(j) = guard.as_mut() else { return };
        let batch = std::mem::take(&mut self.lock().unsaved);
        if let Err(e) = j.append(&batch) {
            self.log_write_error(&e);
        }
        // A safety net for a sweeper that is far behind: past four times the threshold the
        // writer compacts itself (amortised: at most once per that many changes).
        if j.lines > 4 * self.compaction_threshold()
            && let Err(e) = self.compact(j)
        {
            self.log_write_error(&e);
        }
    }

    fn log_write_error(&self, e: &std::io::Error) {
        if let Some(path) = &self.state_file {
            log::error!(
                "cannot write the OAuth state file {} or its journal: {e}; registered clients and sign-ins made since the last successful write will be lost on restart unless a later write succeeds",
                path.display()
            );
        }
    }

    /// Journal lines above which the sweeper folds the journal into a new snapshot: when it
    /// holds more lines than the snapshot would have records.
    fn compaction_threshold(&self) -> usize {
        let t = self.lock();
        (t.clients.len() + t.grants.len()).max(state::COMPACT_MIN_LINES)
    }

    /// Writes a snapshot of the persistent tables and empties the journal. Changes still
    /// queued are appended first, so a failed snapshot loses nothing.
    fn compact(&self, j: &mut state::Journal) -> std::io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let batch = std::mem::take(&mut self.lock().unsaved);
        // An error here is survivable: the snapshot below holds these changes too.
        let _ = j.append(&batch);
        // Copied under the lock, rendered and written outside it.
        let (clients, grants, seq) = {
            let t = self.lock();
            (t.clients.clone(), t.grants.clone(), t.seq)
        };
        state::write_atomic(path, &state::render(&clients, &grants, seq))?;
        j.clear()
    }

    /// Compacts the journal if it has grown past the threshold or a write failed; the sweeper
    /// calls this.
    fn maintain_state_file(&self) {
        let threshold = self.compaction_threshold();
        let mut guard = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let Some(j) = guard.as_mut() else { return };
        if (j.failed || j.lines > threshold)
            && let Err(e) = self.compact(j)
        {
            self.log_write_error(&e);
        }
    }

    /// RFC 8414 metadata.
    pub fn server_metadata(&self) -> Value {
        let o = &self.origin;
        let mut doc = json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{o}/authorize"),
            "token_endpoint": format!("{o}/token"),
            "registration_endpoint": format!("{o}/register"),
            "revocation_endpoint": format!("{o}/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": scope::SUPPORTED,
        });
        if self.documents.is_some() {
            doc["client_id_metadata_document_supported"] = Value::Bool(true);
        }
        doc
    }

    /// RFC 9728 protected resource metadata.
    pub fn resource_metadata(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "Kimai MCP",
            "scopes_supported": scope::SUPPORTED,
        })
    }

    /// The URL of the resource metadata, for `WWW-Authenticate`.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.origin)
    }

    /// The subject (slug) and scopes of a valid access token for this server's resource.
    pub fn verify(&self, access_token: &str) -> Option<Verified> {
        self.check_access(access_token).ok().flatten()
    }

    /// [`OAuth::verify`], telling apart a token that is not valid (`Ok(None)`) from a shared
    /// state store that cannot be reached (`Err`: answer 503, so that clients retry rather
    /// than sign in again).
    pub fn check_access(
        &self,
        access_token: &str,
    ) -> Result<Option<Verified>, crate::state::Unreachable> {
        if !access_token.starts_with("kmat_") || access_token.len() > 128 {
            return Ok(None);
        }
        if let Some(store) = self.store() {
            return self.shared_verify(store, access_token);
        }
        let hash = digest_hex(access_token);
        let t = self.lock();
        let Some(a) = t.access.get(&hash).filter(|a| a.expires > now_ms()) else {
            return Ok(None);
        };
        Ok(t.grants
            .get(&a.grant)
            .filter(|g| g.resource == self.resource)
            .map(|g| Verified {
                subject: g.subject.clone(),
                scopes: a.scopes,
            }))
    }

    /// Keeps the tables in the shared state store from now on (`serve --state`): clients,
    /// sign-ins in progress, codes, grants and tokens, so that every instance serves them. A
    /// state file is then not used.
    /// `shared_key` is the store's shared key, from which the sign-in throttle's key is
    /// derived (the same on every instance).
    pub fn with_store(
        mut self,
        store: std::sync::Arc<crate::state::Store>,
        shared_key: &[u8; 32],
    ) -> OAuth {
        let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, shared_key);
        let derived = ring::hmac::sign(&hmac, b"kimai-mcp oauth sign-in throttle");
        self.sign_ins =
            throttle::Throttle::new(&self.settings).shared(store.clone(), derived.as_ref());
        self.shared = Some(store);
        self
    }

    /// Revokes every grant whose subject fails `keep` (users removed or changed on reload).
    /// Returns how many were revoked.
    pub fn retain_subjects(&self, keep: &dyn Fn(&str) -> bool) -> usize {
        if self.store().is_some() {
            // The store holds users only sealed with their tokens: a removed user's sign-ins
            // end at their next use, when the user is not found (401, and a refresh revokes).
            return 0;
        }
        let mut t = self.lock();
        let gone: Vec<String> = t
            .grants
            .iter()
            .filter(|(_, g)| !keep(&g.subject))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            t.revoke_grant(id);
        }
        let n = gone.len();
        drop(t);
        if n > 0 {
            self.save();
        }
        n
    }

    /// Drops expired requests, codes, tokens and grants, idle clients, registration windows
    /// that are over and users' sign-in failures that are forgotten; compacts the state
    /// journal when it has grown.
    pub fn sweep(&self) {
        let now = now_ms();
        self.sign_ins.sweep(Instant::now());
        if let Some(d) = &self.documents {
            d.sweep(Instant::now());
        }
        let mut t = self.lock();
        t.expire_requests(now);
        let window = ms(self.settings.registration_window);
        t.registrations
            .retain(|_, (start, _)| start.saturating_add(window) > now);
        t.codes.retain(|_, c| c.expires > now);
        t.used_codes.retain(|_, (_, exp)| *exp > now);
        t.access.retain(|_, a| a.expires > now);
        let expired: Vec<String> = t
            .grants
            .iter()
            .filter(|(_, g)| g.refresh_expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            t.revoke_grant(id);
        }
        t.prune_idle_clients(&self.settings, now);
        drop(t);
        self.save();
        self.maintain_state_file();
    }

    /// Admits a sign-in attempt for the user name `slug` from `ip` ([`throttle`]): sleep its
    /// wait, then check the secret, and mark it as succeeded if it was right. `Err(wait)`:
    /// refuse it without checking the secret.
    pub fn sign_in_attempt(
        &self,
        slug: &str,
        ip: IpAddr,
    ) -> Result<throttle::Attempt<'_>, Duration> {
        self.sign_ins.begin(slug, ip, Instant::now())
    }

    /// Sign-ins in progress: in total, and from `ip`.
    pub fn pending_counts(&self, ip: IpAddr) -> (usize, usize) {
        let t = self.lock();
        let mine = t
            .requests_by_ip
            .get(&ip.to_canonical())
            .map_or(0, VecDeque::len);
        (t.requests.len(), mine)
    }

    /// Counts for `/metrics` and `/health`: registered clients and live grants.
    pub fn counts(&self) -> (usize, usize) {
        let t = self.lock();
        (t.clients.len(), t.grants.len())
    }
}

/// The first characters of an identifier, for logs.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::encoding::check_redirect_uri;
    use super::tables::MAX_REGISTERING_ADDRESSES;
    use super::*;

    fn oauth(settings: Settings) -> OAuth {
        OAuth::new("http://127.0.0.1:8000", settings, None).unwrap()
    }

    /// A client address; `n` tells them apart.
    fn ip(n: u16) -> IpAddr {
        IpAddr::from([127, 0, (n >> 8) as u8, n as u8])
    }

    const HOME: u16 = 1;

    fn register(o: &OAuth, from: u16) -> Result<String, OAuthError> {
        o.register(
            &json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}),
            ip(from),
        )
        .map(|r| r["client_id"].as_str().unwrap().to_string())
    }

    /// Opens a sign-in for `client` from `from`; (request id, verifier).
    fn start_sign_in(
        o: &OAuth,
        client: &str,
        from: u16,
    ) -> Result<(String, String), AuthorizeError> {
        let verifier = random_secret("v");
        let txn = o.authorize(
            &params(&[
                ("response_type", "code"),
                ("client_id", client),
                ("code_challenge", &s256(&verifier)),
                ("code_challenge_method", "S256"),
            ]),
            ip(from),
        )?;
        Ok((txn, verifier))
    }

    /// Approves a sign-in; the code.
    fn finish_sign_in(o: &OAuth, txn: &str, subject: &str) -> Option<String> {
        let url = o.approve(txn, subject)?;
        Some(parse_form(url.split_once('?').unwrap().1).unwrap()["code"].clone())
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A public client and a code for `subject`; (client id, code, verifier).
    fn code_for(o: &OAuth, subject: &str) -> (String, String, String) {
        code_with_scope(o, subject, None)
    }

    /// As `code_for`, with a `scope` parameter at the authorization request.
    fn code_with_scope(o: &OAuth, subject: &str, scope: Option<&str>) -> (String, String, String) {
        let reg = o
            .register(
                &json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}),
                ip(HOME),
            )
            .unwrap();
        let id = reg["client_id"].as_str().unwrap().to_string();
        let verifier = random_secret("v");
        let challenge = s256(&verifier);
        let mut p = params(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        if let Some(scope) = scope {
            p.insert("scope".into(), scope.into());
        }
        let txn = o.authorize(&p, ip(HOME)).unwrap();
        let url = o.approve(&txn, subject).unwrap();
        let q = parse_form(url.split_once('?').unwrap().1).unwrap();
        assert_eq!(q["iss"], "http://127.0.0.1:8000/");
        (id, q["code"].clone(), verifier)
    }

    /// The token request parameters that exchange `code` (from `code_for`).
    fn code_grant(id: &str, code: &str, verifier: &str) -> HashMap<String, String> {
        params(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", id),
            ("code_verifier", verifier),
        ])
    }

    #[test]
    fn encodings() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64_std(b"f"), "Zg==");
        assert_eq!(b64_std(&[0xfb, 0xff]), "+/8=");
        assert_eq!(b64_decode("Zm9vOmJhcg==").unwrap(), b"foo:bar");
        assert_eq!(b64_decode("Zm9vOmJhcg").unwrap(), b"foo:bar");
        assert!(b64_decode("Zm9v!").is_none());
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(form_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            with_query("https://a/cb?x=1", &[("code", "c d")]),
            "https://a/cb?x=1&code=c%20d"
        );
    }

    #[test]
    fn forms_refuse_repeated_parameters() {
        let m = parse_form("a=1&b=x+y%21&c=").unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x y!");
        assert_eq!(m["c"], "");
        assert!(parse_form("a=1&a=2").unwrap_err().contains("repeated"));
        assert_eq!(parse_form("bad=%zz%").unwrap()["bad"], "%zz%");
    }

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "http://127.0.0.1.evil.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "https://a.example/cb#x",
            "https://user@a.example/cb",
            "/cb",
            "https://a.example/c b",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_expire_and_bind_everything() {
        let o = oauth(Settings {
            code_ttl: Duration::from_millis(30),
            ..Settings::default()
        });
        let ok = |_: &str| true;
        let (id, code, verifier) = code_for(&o, "slug-a");
        std::thread::sleep(Duration::from_millis(60));
        let e = o
            .token(&code_grant(&id, &code, &verifier), None, &ok)
            .unwrap_err();
        assert_eq!(e.error, "invalid_grant");
        assert!(e.description.contains("expired"), "{e:?}");

        // A redirect URI omitted at authorize (one registered) may be omitted at the token
        // endpoint; a subject that may no longer sign in gets no tokens.
        let o = oauth(Settings::default());
        let (id, code, verifier) = code_for(&o, "slug-a");
        let p = code_grant(&id, &code, &verifier);
        let e = o.token(&p, None, &|_| false).unwrap_err();
        assert_eq!(e.error, "invalid_grant");
        let (id, code, verifier) = code_for(&o, "slug-a");
        let p = code_grant(&id, &code, &verifier);
        let t = o.token(&p, None, &ok).unwrap();
        assert_eq!(
            o.verify(&t.access_token).map(|v| v.subject).as_deref(),
            Some("slug-a")
        );
        assert_eq!(o.verify("kmat_nope"), None);
        assert_eq!(o.counts(), (2, 1));
        // Revoking subjects that are gone.
        assert_eq!(o.retain_subjects(&|s| s != "slug-a"), 1);
        assert_eq!(o.verify(&t.access_token), None);
    }

    fn refresh_scoped(
        o: &OAuth,
        client: &str,
        token: &str,
        scope: &str,
    ) -> Result<Issued, OAuthError> {
        o.token(
            &params(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", client),
                ("scope", scope),
            ]),
            None,
            &|_| true,
        )
    }

    fn scopes_of(o: &OAuth, access_token: &str) -> Option<Scopes> {
        o.verify(access_token).map(|v| v.scopes)
    }

    #[test]
    fn the_authorization_request_chooses_the_scope() {
        let o = oauth(Settings::default());
        let ok = |_: &str| true;
        // None, an empty one, or kimai:write alone: both scopes.
        for scope in [
            None,
            Some(""),
            Some("kimai:write"),
            Some("kimai:read kimai:write"),
        ] {
            let (id, code, verifier) = code_with_scope(&o, "slug-a", scope);
            let t = o
                .token(&code_grant(&id, &code, &verifier), None, &ok)
                .unwrap();
            assert_eq!(t.scopes, Scopes::FULL, "{scope:?}");
            assert_eq!(scopes_of(&o, &t.access_token), Some(Scopes::FULL));
        }
        // Read only; a scope sent with the code does not widen it.
        let (id, code, verifier) = code_with_scope(&o, "slug-a", Some("kimai:read"));
        let mut p = code_grant(&id, &code, &verifier);
        p.insert("scope".into(), "kimai:write".into());
        let t = o.token(&p, None, &ok).unwrap();
        assert_eq!(t.scopes, Scopes::READ);
        assert_eq!(
            o.verify(&t.access_token),
            Some(Verified {
                subject: "slug-a".into(),
                scopes: Scopes::READ
            })
        );

        // Scopes of other servers are ignored: the grant is what ours name, or everything.
        for (scope, granted) in [
            ("openid kimai:read offline_access", Scopes::READ),
            ("openid profile", Scopes::FULL),
        ] {
            let (id, code, verifier) = code_with_scope(&o, "slug-a", Some(scope));
            let t = o
                .token(&code_grant(&id, &code, &verifier), None, &ok)
                .unwrap();
            assert_eq!(t.scopes, granted, "{scope}");
        }
        assert_eq!(o.pending_counts(ip(HOME)), (0, 0));
    }

    #[test]
    fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
        let o = oauth(Settings::default());
        let (id, code, verifier) = code_for(&o, "slug-a");
        let t = o
            .token(&code_grant(&id, &code, &verifier), None, &|_| true)
            .unwrap();
        // Narrowed: this access token reads only ...
        let t = refresh_scoped(&o, &id, &t.refresh_token, "kimai:read").unwrap();
        assert_eq!(t.scopes, Scopes::READ);
        assert_eq!(scopes_of(&o, &t.access_token), Some(Scopes::READ));
        // ... the grant keeps both: a refresh without scope, or asking for both, has them.
        let t = refresh_with(&o, &id, &t.refresh_token).unwrap();
        assert_eq!(scopes_of(&o, &t.access_token), Some(Scopes::FULL));
        let t = refresh_scoped(&o, &id, &t.refresh_token, "kimai:write").unwrap();
        assert_eq!(t.scopes, Scopes::FULL);

        // A read-only sign-in cannot refresh its way to writing.
        let (id, code, verifier) = code_with_scope(&o, "slug-a", Some("kimai:read"));
        let t = o
            .token(&code_grant(&id, &code, &verifier), None, &|_| true)
            .unwrap();
        for scope in ["kimai:write", "kimai:read kimai:write"] {
            let e = refresh_scoped(&o, &id, &t.refresh_token, scope).unwrap_err();
            assert_eq!((e.status, e.error), (400, "invalid_scope"), "{e:?}");
            assert!(
                e.description.contains(
                    "'kimai:read kimai:write' is more than this sign-in granted ('kimai:read')"
                ),
                "{e:?}"
            );
        }
        let e = refresh_scoped(&o, &id, &t.refresh_token, "kimai:admin").unwrap_err();
        assert_eq!(e.error, "invalid_scope");
        assert!(e.description.contains("'kimai:admin'"), "{e:?}");
        // A refused refresh used nothing up: the token still works, for reading.
        assert_eq!(scopes_of(&o, &t.access_token), Some(Scopes::READ));
        let t = refresh_scoped(&o, &id, &t.refresh_token, "kimai:read").unwrap();
        let t = refresh_with(&o, &id, &t.refresh_token).unwrap();
        assert_eq!(t.scopes, Scopes::READ);
    }

    #[test]
    fn sign_ins_per_user_are_bounded() {
        let o = oauth(Settings {
            registrations_per_address: 0,
            ..Settings::default()
        });
        let ok = |_: &str| true;
        let mut first = None;
        for i in 0..MAX_GRANTS_PER_SUBJECT + 3 {
            let (id, code, verifier) = code_for(&o, "busy");
            let t = o
                .token(&code_grant(&id, &code, &verifier), None, &ok)
                .unwrap();
            if i == 0 {
                first = Some(t.access_token);
            }
            // Distinct creation times, so that "oldest" is well defined.
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(o.counts().1, MAX_GRANTS_PER_SUBJECT);
        assert_eq!(o.verify(&first.unwrap()), None, "the oldest sign-in ended");
    }

    #[test]
    fn refresh_tokens_expire_and_sweeping_forgets_idle_clients() {
        let o = oauth(Settings {
            refresh_ttl: Duration::from_millis(40),
            access_ttl: Duration::from_millis(20),
            client_idle: Duration::from_millis(40),
            ..Settings::default()
        });
        let ok = |_: &str| true;
        let (id, code, verifier) = code_for(&o, "s");
        let t = o
            .token(&code_grant(&id, &code, &verifier), None, &ok)
            .unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let e = o
            .token(
                &params(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &t.refresh_token),
                    ("client_id", &id),
                ]),
                None,
                &ok,
            )
            .unwrap_err();
        assert_eq!(e.error, "invalid_grant");
        o.sweep();
        assert_eq!(o.counts(), (0, 0));
    }

    fn temp_state() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("kimai-mcp-oauth-{}", random_secret("")));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        (dir, path)
    }

    fn reopen(path: &std::path::Path) -> OAuth {
        OAuth::new(
            "http://127.0.0.1:8000",
            Settings {
                registrations_per_address: 0,
                ..Settings::default()
            },
            Some(path.to_path_buf()),
        )
        .unwrap()
    }

    #[test]
    fn a_state_file_of_the_python_server_is_taken_over_and_set_aside() {
        let (dir, path) = temp_state();
        let python = json!({"clients": {
            "py-post": {"client_id": "py-post", "client_secret": "python-secret-in-clear-0123",
                        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                        "token_endpoint_auth_method": "client_secret_post",
                        "grant_types": ["authorization_code", "refresh_token"],
                        "response_types": ["code"], "client_name": "Claude",
                        "client_id_issued_at": 1764000000, "client_secret_expires_at": 0},
            "py-public": {"client_id": "py-public", "redirect_uris": ["http://127.0.0.1:3000/cb"],
                          "token_endpoint_auth_method": "none"},
            "py-bad": {"client_id": "py-bad", "redirect_uris": ["javascript:alert(1)"],
                       "token_endpoint_auth_method": "none"},
            "py-expired": {"client_id": "py-expired", "client_secret": "s",
                           "redirect_uris": ["https://a.example/cb"],
                           "client_secret_expires_at": 1000}
        }});
        std::fs::write(&path, python.to_string()).unwrap();
        let o = reopen(&path);
        assert_eq!(o.counts(), (2, 0));
        // The original (secrets in clear) is set aside; ours holds digests only.
        let aside = state::python_copy_path(&path);
        assert!(
            std::fs::read_to_string(&aside)
                .unwrap()
                .contains("python-secret-in-clear")
        );
        let ours = std::fs::read_to_string(&path).unwrap();
        assert!(
            ours.contains("\"version\":1") && !ours.contains("python-secret-in-clear"),
            "{ours}"
        );
        // The taken-over client authenticates with its old secret.
        let t = o.lock();
        let c = &t.clients["py-post"];
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(
            c.secret_hash.as_deref(),
            Some(digest_hex("python-secret-in-clear-0123").as_str())
        );
        assert_eq!(c.name.as_deref(), Some("Claude"));
        assert!(t.clients["py-public"].secret_hash.is_none());
        drop(t);
        drop(o);
        // A restart reads our own file now.
        assert_eq!(reopen(&path).counts(), (2, 0));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn refresh_with(o: &OAuth, client: &str, token: &str) -> Result<Issued, OAuthError> {
        o.token(
            &params(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", client),
            ]),
            None,
            &|_| true,
        )
    }

    #[test]
    fn the_state_file_round_trips_without_secrets() {
        let (dir, path) = temp_state();
        let journal = state::journal_path(&path);
        let o = reopen(&path);
        let snapshot = std::fs::read_to_string(&path).unwrap();
        let reg = o
            .register(
                &json!({"redirect_uris": ["https://app.example/cb"], "client_name": "App"}),
                ip(HOME),
            )
            .unwrap();
        let secret = reg["client_secret"].as_str().unwrap();
        // A registration appends one line to the journal and leaves the snapshot alone.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), snapshot);
        let text = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(!text.contains(secret));
        assert!(text.contains(&digest_hex(secret)));
        for p in [&path, &journal] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }
        // A sign-in and two refreshes, then a "crash" (no shutdown of any kind).
        let (id, code, verifier) = code_for(&o, "slug-a");
        let t = o
            .token(&code_grant(&id, &code, &verifier), None, &|_| true)
            .unwrap();
        let t = refresh_with(&o, &id, &t.refresh_token).unwrap();
        let rotated = t.refresh_token.clone();
        let t = refresh_with(&o, &id, &rotated).unwrap();
        let text = std::fs::read_to_string(&journal).unwrap();
        assert!(!text.contains(&t.refresh_token) && !text.contains(&rotated));
        let lines = text.clone();
        drop(o);

        // Everything acknowledged is back: the last refresh token works, a rotated one is
        // still recognised as reused.
        let again = reopen(&path);
        assert_eq!(again.counts(), (2, 1));
        // Opening folded the journal into the snapshot.
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), "");
        // A crash after a snapshot but before the journal was emptied replays nothing twice;
        // a torn last line (a crash while appending) is dropped.
        drop(again);
        std::fs::write(&journal, format!("{lines}{{\"seq\": 99, \"op\": \"cli")).unwrap();
        let again = reopen(&path);
        assert_eq!(again.counts(), (2, 1));
        let t = refresh_with(&again, &id, &t.refresh_token).unwrap();
        assert_eq!(
            refresh_with(&again, &id, &rotated).unwrap_err().error,
            "invalid_grant"
        );
        assert_eq!(
            again.verify(&t.access_token),
            None,
            "reuse revoked the grant"
        );
        drop(again);
        assert_eq!(reopen(&path).counts(), (2, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_state_file_keeps_each_grants_scope() {
        let (dir, path) = temp_state();
        let o = reopen(&path);
        let ok = |_: &str| true;
        let (read_id, code, verifier) = code_with_scope(&o, "slug-a", Some("kimai:read"));
        let read = o
            .token(&code_grant(&read_id, &code, &verifier), None, &ok)
            .unwrap();
        let (full_id, code, verifier) = code_for(&o, "slug-b");
        let full = o
            .token(&code_grant(&full_id, &code, &verifier), None, &ok)
            .unwrap();
        // A narrowed refresh does not narrow the grant on disk.
        let full = refresh_scoped(&o, &full_id, &full.refresh_token, "kimai:read").unwrap();
        let journal = std::fs::read_to_string(state::journal_path(&path)).unwrap();
        assert!(journal.contains("\"scope\":\"kimai:read\""), "{journal}");
        drop(o);
        // Replayed from the journal, then (the first reopening folded it in) from the snapshot.
        let (mut read, mut full) = (read.refresh_token, full.refresh_token);
        for _ in 0..2 {
            let again = reopen(&path);
            let e = refresh_scoped(&again, &read_id, &read, "kimai:write").unwrap_err();
            assert_eq!(e.error, "invalid_scope");
            let r = refresh_with(&again, &read_id, &read).unwrap();
            assert_eq!(r.scopes, Scopes::READ);
            let f = refresh_with(&again, &full_id, &full).unwrap();
            assert_eq!(f.scopes, Scopes::FULL);
            (read, full) = (r.refresh_token, f.refresh_token);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_file_without_scopes_loads_as_full_access() {
        // A snapshot and a journal line as the version before scopes wrote them.
        let (dir, path) = temp_state();
        let refresh = random_secret("kmrt_");
        let journal_refresh = random_secret("kmrt_");
        let far = now_ms() + 86_400_000;
        let client = json!({"auth_method": "none", "redirect_uris": ["http://127.0.0.1:9/cb"],
            "client_name": null, "grant_types": ["authorization_code", "refresh_token"],
            "secret_sha256": null, "created": 1, "last_used": 1});
        let grant = |refresh: &str| {
            json!({"client_id": "kmc_old", "subject": "slug-a",
                "resource": "http://127.0.0.1:8000/mcp", "refresh_sha256": digest_hex(refresh),
                "refresh_expires": far, "rotated": [], "created": 1})
        };
        let snapshot = json!({"version": 1, "seq": 2, "clients": {"kmc_old": client},
            "grants": {"g1": grant(&refresh)}});
        std::fs::write(&path, snapshot.to_string()).unwrap();
        let mut line = grant(&journal_refresh);
        line["seq"] = json!(3);
        line["op"] = json!("grant");
        line["id"] = json!("g2");
        std::fs::write(state::journal_path(&path), format!("{line}\n")).unwrap();
        let o = reopen(&path);
        assert_eq!(o.counts(), (1, 2));
        for token in [&refresh, &journal_refresh] {
            let t = refresh_with(&o, "kmc_old", token).unwrap();
            assert_eq!(t.scopes, Scopes::FULL);
            assert_eq!(scopes_of(&o, &t.access_token), Some(Scopes::FULL));
        }
        // Written back with the scope spelled out.
        drop(o);
        reopen(&path);
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for g in v["grants"].as_object().unwrap().values() {
            assert_eq!(g["scope"], "kimai:read kimai:write");
        }
        // A scope this version does not know stops the server with what to do.
        let mut bad = v.clone();
        for g in bad["grants"].as_object_mut().unwrap().values_mut() {
            g["scope"] = json!("kimai:read kimai:admin");
        }
        std::fs::write(&path, bad.to_string()).unwrap();
        let e = OAuth::new(
            "http://127.0.0.1:8000",
            Settings::default(),
            Some(path.clone()),
        )
        .err()
        .unwrap();
        assert!(
            e.contains("unknown scope 'kimai:admin'") && e.contains("move it"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_sweeper_folds_a_long_journal_into_the_snapshot() {
        let (dir, path) = temp_state();
        let journal = state::journal_path(&path);
        let o = reopen(&path);
        // One client, one grant, and many refreshes: the journal outgrows the snapshot.
        let (id, code, verifier) = code_for(&o, "slug-a");
        let mut t = o
            .token(&code_grant(&id, &code, &verifier), None, &|_| true)
            .unwrap();
        let n = state::COMPACT_MIN_LINES + 10;
        for _ in 0..n {
            t = refresh_with(&o, &id, &t.refresh_token).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&journal).unwrap().lines().count(),
            n + 2
        );
        o.sweep();
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), "");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["clients"].as_object().unwrap().len(), 1);
        assert_eq!(v["seq"], json!(n + 2));
        assert_eq!(
            v["grants"].as_object().unwrap().values().next().unwrap()["rotated"]
                .as_array()
                .unwrap()
                .len(),
            MAX_ROTATED
        );
        t = refresh_with(&o, &id, &t.refresh_token).unwrap();
        drop(o);
        let again = reopen(&path);
        assert_eq!(again.counts(), (1, 1));
        refresh_with(&again, &id, &t.refresh_token).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn registrations_are_limited_per_address() {
        let o = oauth(Settings {
            registrations_per_address: 3,
            registration_window: Duration::from_millis(300),
            ..Settings::default()
        });
        for _ in 0..3 {
            register(&o, 7).unwrap();
        }
        let e = register(&o, 7).unwrap_err();
        assert_eq!((e.status, e.error), (429, "temporarily_unavailable"));
        assert_eq!(e.retry_after, Some(1));
        assert!(
            e.description.contains("at most 3 per")
                && e.description.contains("--max-registrations-per-address"),
            "{e:?}"
        );
        // Other addresses are not affected; the window ends.
        register(&o, 8).unwrap();
        std::thread::sleep(Duration::from_millis(350));
        register(&o, 7).unwrap();
        // The table of addresses is bounded.
        for n in 0..(MAX_REGISTERING_ADDRESSES + 20) as u16 {
            register(&o, 100 + n).unwrap();
        }
        assert!(o.lock().registrations.len() <= MAX_REGISTERING_ADDRESSES);
        // 0 turns the limit off.
        let o = oauth(Settings {
            registrations_per_address: 0,
            ..Settings::default()
        });
        for _ in 0..30 {
            register(&o, 7).unwrap();
        }
    }

    #[test]
    fn a_full_client_table_never_forgets_a_client_in_use() {
        let o = oauth(Settings {
            max_clients: 20,
            registrations_per_address: 0,
            ..Settings::default()
        });
        let ok = |_: &str| true;
        // Three clients in use: one in the middle of its sign-in, one holding a code, one
        // signed in.
        let pending = register(&o, HOME).unwrap();
        let (txn, pending_verifier) = start_sign_in(&o, &pending, HOME).unwrap();
        let coded = register(&o, HOME).unwrap();
        let (t2, coded_verifier) = start_sign_in(&o, &coded, HOME).unwrap();
        let code = finish_sign_in(&o, &t2, "slug-b").unwrap();
        let (signed_in, c3, v3) = code_for(&o, "slug-c");
        let tokens = o
            .token(&code_grant(&signed_in, &c3, &v3), None, &ok)
            .unwrap();
        // A flood of registrations from many addresses, 10 times the table.
        for n in 0..200 {
            register(&o, 1000 + n).unwrap();
        }
        assert_eq!(o.counts().0, 20);
        // All three carry on.
        let code1 = finish_sign_in(&o, &txn, "slug-a").expect("the pending sign-in survived");
        o.token(&code_grant(&pending, &code1, &pending_verifier), None, &ok)
            .unwrap();
        o.token(&code_grant(&coded, &code, &coded_verifier), None, &ok)
            .unwrap();
        refresh_with(&o, &signed_in, &tokens.refresh_token).unwrap();

        // When every client is in use, a registration is refused, with when to come back.
        let o = oauth(Settings {
            max_clients: 5,
            registrations_per_address: 0,
            ..Settings::default()
        });
        let mut txns = Vec::new();
        for n in 0..5 {
            let c = register(&o, n).unwrap();
            txns.push(start_sign_in(&o, &c, n).unwrap().0);
        }
        let e = register(&o, 99).unwrap_err();
        assert_eq!((e.status, e.error), (503, "temporarily_unavailable"));
        assert!(
            e.retry_after.is_some_and(|s| (1..=600).contains(&s)),
            "{e:?}"
        );
        assert!(e.description.contains("at most 5 registered"), "{e:?}");
        // One sign-in ends (cancelled): its client is free to go, and a registration fits.
        o.deny(&txns[0]).unwrap();
        register(&o, 99).unwrap();
        assert!(o.pending(&txns[1]).is_some());
    }

    #[test]
    fn sign_ins_in_progress_are_capped_per_address_and_in_total() {
        let o = oauth(Settings {
            pending_per_address: 3,
            max_requests: 10,
            registrations_per_address: 0,
            ..Settings::default()
        });
        let client = register(&o, HOME).unwrap();
        // One address: its oldest requests end, its newest stay.
        let txns: Vec<String> = (0..5)
            .map(|_| start_sign_in(&o, &client, 50).unwrap().0)
            .collect();
        assert!(o.pending(&txns[0]).is_none() && o.pending(&txns[1]).is_none());
        assert!(txns[2..].iter().all(|t| o.pending(t).is_some()));
        assert_eq!(o.pending_counts(ip(50)), (3, 3));
        // A person opens one sign-in; a flood from several addresses fills the table, over and
        // over.
        let (mine, verifier) = start_sign_in(&o, &client, HOME).unwrap();
        for round in 0..10 {
            for n in 0..6 {
                start_sign_in(&o, &client, 100 + n).unwrap();
                assert!(o.pending_counts(ip(100 + n)).1 <= 3, "round {round}");
            }
        }
        assert_eq!(o.pending_counts(ip(HOME)), (10, 1));
        let code = finish_sign_in(&o, &mine, "slug-a").expect("the person's sign-in survived");
        o.token(&code_grant(&client, &code, &verifier), None, &|_| true)
            .unwrap();
        // Every address holds one: nobody's is ended while it is young, the next one is told
        // to come back; later the oldest goes.
        let o = oauth(Settings {
            max_requests: 4,
            request_ttl: Duration::from_millis(2000),
            registrations_per_address: 0,
            ..Settings::default()
        });
        let client = register(&o, HOME).unwrap();
        let txns: Vec<String> = (0..4)
            .map(|n| {
                // Distinct creation times, so that "oldest" is well defined.
                std::thread::sleep(Duration::from_millis(2));
                start_sign_in(&o, &client, 10 + n).unwrap().0
            })
            .collect();
        match start_sign_in(&o, &client, 20) {
            Err(AuthorizeError::Busy(msg, secs)) => {
                assert!(msg.contains("Too many sign-ins"), "{msg}");
                assert_eq!(secs, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(txns.iter().all(|t| o.pending(t).is_some()));
        std::thread::sleep(Duration::from_millis(250));
        start_sign_in(&o, &client, 20).unwrap();
        assert!(o.pending(&txns[0]).is_none());
        assert!(txns[1..].iter().all(|t| o.pending(t).is_some()));
    }

    /// Registration cost at 10,000 clients with a state file; run by hand:
    /// `cargo test --lib registration_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn registration_cost_at_10000_clients() {
        let (dir, path) = temp_state();
        let o = reopen(&path);
        let started = Instant::now();
        let mut last = Vec::new();
        for i in 0..10_000u16 {
            let t = Instant::now();
            register(&o, i).unwrap();
            if i >= 9_900 {
                last.push(t.elapsed().as_secs_f64());
            }
            if i % 1000 == 999 {
                o.sweep();
            }
        }
        let total = started.elapsed();
        let mean = last.iter().sum::<f64>() / last.len() as f64;
        eprintln!(
            "10,000 registrations in {total:?}; mean of the last 100: {:.3} ms",
            mean * 1e3
        );
        drop(o);
        assert_eq!(reopen(&path).counts(), (10_000, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
