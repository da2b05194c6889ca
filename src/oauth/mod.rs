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
//! Threads: connection threads call in concurrently; one mutex guards the tables and is never
//! held across I/O except the state-file write, which happens under a separate lock after the
//! tables were updated (a snapshot is taken under the table lock).

mod state;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

#[derive(Clone, Debug)]
struct Client {
    secret_hash: Option<String>,
    auth_method: AuthMethod,
    redirect_uris: Vec<String>,
    name: Option<String>,
    grant_types: Vec<String>,
    created: u64,
    last_used: u64,
}

/// A pending authorization request: the sign-in page's state.
#[derive(Clone, Debug)]
struct Request {
    client_id: String,
    redirect_uri: String,
    redirect_given: bool,
    challenge: String,
    state: Option<String>,
    resource: String,
    csrf: String,
    expires: u64,
    failures: u32,
}

#[derive(Clone, Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    redirect_given: bool,
    challenge: String,
    resource: String,
    subject: String,
    expires: u64,
}

#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
    subject: String,
    resource: String,
    refresh_hash: String,
    refresh_expires: u64,
    access_hash: Option<String>,
    rotated: Vec<String>,
    created: u64,
}

#[derive(Clone, Debug)]
struct Access {
    grant: String,
    expires: u64,
}

#[derive(Default)]
struct Tables {
    clients: HashMap<String, Client>,
    requests: HashMap<String, Request>,
    /// Code digest → code. A redeemed code stays (as `used`) until it expires.
    codes: HashMap<String, Code>,
    /// Redeemed code digest → (grant id, expiry): a second redemption revokes that grant.
    used_codes: HashMap<String, (String, u64)>,
    grants: HashMap<String, Grant>,
    /// Current refresh-token digest → grant id.
    refresh: HashMap<String, String>,
    /// Rotated refresh-token digest → grant id (reuse detection).
    rotated: HashMap<String, String>,
    /// Access-token digest → access.
    access: HashMap<String, Access>,
}

impl Tables {
    fn revoke_grant(&mut self, id: &str) -> Option<Grant> {
        let g = self.grants.remove(id)?;
        self.refresh.remove(&g.refresh_hash);
        for r in &g.rotated {
            self.rotated.remove(r);
        }
        if let Some(a) = &g.access_hash {
            self.access.remove(a);
        }
        Some(g)
    }
}

/// An error at the token, revocation or registration endpoint (RFC 6749 §5.2, RFC 7591 §3.2.2).
#[derive(Debug, PartialEq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
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
}

/// What the sign-in page shows and binds to.
#[derive(Clone, Debug)]
pub struct PendingView {
    pub client_name: Option<String>,
    pub redirect_uri: String,
    pub csrf: String,
}

/// Tokens issued at the token endpoint.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
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
    write: Mutex<()>,
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

/// A random value: `prefix` and 256 bits in base64url.
pub fn random_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // No randomness means no safe token: stop here rather than issue a guessable one.
        panic!("the OS random source failed");
    }
    format!("{prefix}{}", b64url(&b))
}

/// SHA-256 as lowercase hex.
pub fn digest_hex(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// base64url without padding (RFC 4648 §5).
pub fn b64url(bytes: &[u8]) -> String {
    b64_with(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

/// Standard base64 with padding (RFC 4648 §4), as CSP hashes are written.
pub fn b64_std(bytes: &[u8]) -> String {
    b64_with(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

fn b64_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let a = alphabet;
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        let chars = c.len() + 1;
        for i in 0..chars {
            out.push(a[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in chars..4 {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (with or without padding) for HTTP Basic credentials.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The PKCE S256 transform of a verifier.
pub fn s256(verifier: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The origin (`scheme://host[:port]`, lowercase) of an absolute http(s) URL, or for another
/// scheme `scheme:`. None for something that is not an absolute URI.
pub fn uri_origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "http" || scheme == "https" {
        let after = rest.strip_prefix("//")?;
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
    } else {
        Some(format!("{scheme}:"))
    }
}

/// True for a loopback host name of an http URL authority (`host[:port]`).
fn loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks one redirect URI of a registration: absolute, no fragment, https (http only for a
/// loopback host, as native apps use), or a private-use scheme of a native app; never a scheme
/// a browser would run or read locally.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_PARAM || uri.chars().any(|c| c.is_control() || c == ' ') {
        return Err("a redirect URI is too long or contains spaces or control characters".into());
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment (#)".into());
    }
    let Some(origin) = uri_origin(uri) else {
        return Err("a redirect URI must be an absolute URI such as https://app.example.com/callback or http://127.0.0.1:PORT/callback".into());
    };
    if let Some(authority) = origin.strip_prefix("http://") {
        if !loopback_authority(authority) {
            return Err("an http:// redirect URI is allowed only for a loopback host (127.0.0.1, [::1] or localhost); use https://".into());
        }
    } else if !origin.starts_with("https://") {
        let scheme = origin.trim_end_matches(':');
        if [
            "javascript",
            "data",
            "file",
            "vbscript",
            "about",
            "blob",
            "filesystem",
            "ws",
            "wss",
            "ftp",
        ]
        .contains(&scheme)
        {
            return Err(format!(
                "the {scheme}: scheme is not allowed for a redirect URI"
            ));
        }
    }
    Ok(())
}

/// Appends query parameters to a redirect URI (which may already have a query).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&form_encode(v));
        sep = '&';
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `application/x-www-form-urlencoded` text (also a query string). A parameter given
/// twice is an error (RFC 6749 §3.1: parameters must not be repeated); the name is returned.
pub fn parse_form(s: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k);
        if k.len() > 64 {
            return Err("a parameter name is too long".into());
        }
        let v = percent_decode(v);
        if map.insert(k.clone(), v).is_some() {
            return Err(format!("the parameter {k} is repeated"));
        }
    }
    Ok(map)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical form of a resource URI for comparison: lowercase scheme and host, no
/// trailing slash.
fn canonical_resource(uri: &str) -> Option<String> {
    let origin = uri_origin(uri)?;
    if !origin.starts_with("http") || uri.contains('#') {
        return None;
    }
    let rest = &uri[origin.len()..];
    Some(format!("{origin}{}", rest.trim_end_matches('/')))
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
            settings,
            state_file,
            tables: Mutex::new(Tables::default()),
            write: Mutex::new(()),
        };
        if let Some(path) = &oauth.state_file {
            let loaded = state::load(path)?;
            let mut t = oauth.lock();
            t.clients = loaded.clients;
            for (id, g) in loaded.grants {
                t.refresh.insert(g.refresh_hash.clone(), id.clone());
                for r in &g.rotated {
                    t.rotated.insert(r.clone(), id.clone());
                }
                t.grants.insert(id, g);
            }
        }
        Ok(oauth)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state file (clients and grants), if there is one. Errors are logged: the
    /// tables in memory stay right, only a restart would lose the change.
    fn persist(&self) {
        let Some(path) = &self.state_file else { return };
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = {
            let t = self.lock();
            state::render(&t.clients, &t.grants)
        };
        if let Err(e) = state::write_atomic(path, &snapshot) {
            log::error!(
                "cannot write the OAuth state file {}: {e}; registered clients and sign-ins made since the last successful write will be lost on restart",
                path.display()
            );
        }
    }

    /// RFC 8414 metadata.
    pub fn server_metadata(&self) -> Value {
        let o = &self.origin;
        json!({
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
        })
    }

    /// RFC 9728 protected resource metadata.
    pub fn resource_metadata(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "Kimai MCP",
        })
    }

    /// The URL of the resource metadata, for `WWW-Authenticate`.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.origin)
    }

    // -----------------------------------------------------------------------------------------
    // Registration (RFC 7591)
    // -----------------------------------------------------------------------------------------

    /// Registers a client from its metadata; the answer for a 201.
    pub fn register(&self, meta: &Value) -> Result<Value, OAuthError> {
        let bad = |d: String| OAuthError::new(400, "invalid_client_metadata", d);
        let Value::Object(m) = meta else {
            return Err(bad("the registration must be a JSON object".into()));
        };
        let uris = match m.get("redirect_uris") {
            Some(Value::Array(a)) if !a.is_empty() && a.len() <= 10 => a,
            Some(Value::Array(a)) if a.len() > 10 => {
                return Err(OAuthError::new(
                    400,
                    "invalid_redirect_uri",
                    "at most 10 redirect_uris",
                ));
            }
            _ => {
                return Err(OAuthError::new(
                    400,
                    "invalid_redirect_uri",
                    "redirect_uris is required: a list of the client's callback URLs",
                ));
            }
        };
        let mut redirect_uris = Vec::new();
        for u in uris {
            let Some(u) = u.as_str() else {
                return Err(OAuthError::new(
                    400,
                    "invalid_redirect_uri",
                    "redirect_uris must be strings",
                ));
            };
            check_redirect_uri(u).map_err(|d| OAuthError::new(400, "invalid_redirect_uri", d))?;
            redirect_uris.push(u.to_string());
        }
        let auth_method = match m.get("token_endpoint_auth_method") {
            None | Some(Value::Null) => AuthMethod::ClientSecretBasic,
            Some(Value::String(s)) => AuthMethod::parse(s).ok_or_else(|| {
                bad("token_endpoint_auth_method must be none, client_secret_post or client_secret_basic".into())
            })?,
            Some(_) => return Err(bad("token_endpoint_auth_method must be a string".into())),
        };
        let strings = |key: &str, default: &[&str]| -> Result<Vec<String>, OAuthError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(default.iter().map(|s| s.to_string()).collect()),
                Some(Value::Array(a)) if a.len() <= 10 => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("{key} must be a list of strings"))),
                Some(_) => Err(bad(format!("{key} must be a list of strings"))),
            }
        };
        let grant_types = strings("grant_types", &["authorization_code"])?;
        if let Some(g) = grant_types
            .iter()
            .find(|g| !["authorization_code", "refresh_token"].contains(&g.as_str()))
        {
            return Err(bad(format!(
                "grant type {:?} is not supported (only authorization_code and refresh_token)",
                g.chars().take(40).collect::<String>()
            )));
        }
        if !grant_types.iter().any(|g| g == "authorization_code") {
            return Err(bad("grant_types must include authorization_code".into()));
        }
        let response_types = strings("response_types", &["code"])?;
        if response_types.iter().any(|r| r != "code") {
            return Err(bad("only the response type code is supported".into()));
        }
        let name = match m.get("client_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let clean: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
                (!clean.trim().is_empty()).then(|| clean.trim().to_string())
            }
            Some(_) => return Err(bad("client_name must be a string".into())),
        };
        let client_id = random_secret("kmc_");
        let secret = (auth_method != AuthMethod::None).then(|| random_secret("kmcs_"));
        let now = now_ms();
        let client = Client {
            secret_hash: secret.as_deref().map(digest_hex),
            auth_method,
            redirect_uris: redirect_uris.clone(),
            name: name.clone(),
            grant_types: grant_types.clone(),
            created: now,
            last_used: now,
        };
        {
            let mut t = self.lock();
            if t.clients.len() >= self.settings.max_clients {
                self.prune_clients(&mut t, now, true);
                if t.clients.len() >= self.settings.max_clients {
                    return Err(OAuthError::new(
                        503,
                        "temporarily_unavailable",
                        "too many registered clients; try again later",
                    ));
                }
            }
            t.clients.insert(client_id.clone(), client);
        }
        self.persist();
        log::info!(
            target: "kimai_mcp::audit",
            "oauth: registered client {} ({}, {})",
            short(&client_id),
            name.as_deref().unwrap_or("unnamed").chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(40).collect::<String>(),
            auth_method.as_str()
        );
        let mut out = json!({
            "client_id": client_id,
            "client_id_issued_at": now / 1000,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": auth_method.as_str(),
            "grant_types": grant_types,
            "response_types": ["code"],
        });
        if let Some(n) = name {
            out["client_name"] = Value::String(n);
        }
        if let Some(s) = secret {
            out["client_secret"] = Value::String(s);
            out["client_secret_expires_at"] = json!(0);
        }
        Ok(out)
    }

    /// Forgets clients idle for too long (and, when `make_room`, the oldest clients that hold
    /// no grant). Grants of forgotten clients go too.
    fn prune_clients(&self, t: &mut Tables, now: u64, make_room: bool) -> usize {
        let idle = ms(self.settings.client_idle);
        let with_grants: std::collections::HashSet<String> =
            t.grants.values().map(|g| g.client_id.clone()).collect();
        let stale: Vec<String> = t
            .clients
            .iter()
            .filter(|(id, c)| now.saturating_sub(c.last_used) > idle && !with_grants.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        let mut n = stale.len();
        for id in stale {
            t.clients.remove(&id);
        }
        if make_room && t.clients.len() >= self.settings.max_clients {
            let mut unused: Vec<(u64, String)> = t
                .clients
                .iter()
                .filter(|(id, _)| !with_grants.contains(*id))
                .map(|(id, c)| (c.last_used, id.clone()))
                .collect();
            unused.sort();
            let excess = t.clients.len() + 1 - self.settings.max_clients;
            for (_, id) in unused.into_iter().take(excess.max(t.clients.len() / 10)) {
                t.clients.remove(&id);
                n += 1;
            }
        }
        n
    }

    // -----------------------------------------------------------------------------------------
    // Authorization
    // -----------------------------------------------------------------------------------------

    /// Validates an authorization request and opens a pending request for the sign-in page;
    /// returns its id. `Err(Redirect(url))` sends the error to the client's redirect URI.
    pub fn authorize(&self, p: &HashMap<String, String>) -> Result<String, AuthorizeError> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if p.values().any(|v| v.len() > MAX_PARAM) {
            return Err(AuthorizeError::Page(
                "The authorization request has a parameter that is too long.".into(),
            ));
        }
        let Some(client_id) = get("client_id") else {
            return Err(AuthorizeError::Page(
                "The authorization request names no client (client_id is missing).".into(),
            ));
        };
        let client = self.lock().clients.get(client_id).cloned();
        let Some(client) = client else {
            return Err(AuthorizeError::Page(
                "This application is not registered with this server (unknown client_id). Remove the server from the application and add it again so that it registers anew.".into(),
            ));
        };
        let (redirect_uri, redirect_given) = match get("redirect_uri") {
            Some(r) if client.redirect_uris.iter().any(|u| u == r) => (r.to_string(), true),
            Some(_) => {
                return Err(AuthorizeError::Page(
                    "The redirect URI does not match any URI this application registered.".into(),
                ));
            }
            None if client.redirect_uris.len() == 1 => (client.redirect_uris[0].clone(), false),
            None => {
                return Err(AuthorizeError::Page(
                    "The authorization request has no redirect_uri and the application registered several.".into(),
                ));
            }
        };
        let state = get("state").map(str::to_string);
        let fail = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(s) = &state {
                params.push(("state", s));
            }
            params.push(("iss", &self.issuer));
            AuthorizeError::Redirect(with_query(&redirect_uri, &params))
        };
        match get("response_type") {
            Some("code") => {}
            None => return Err(fail("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        let Some(challenge) = get("code_challenge") else {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        };
        if get("code_challenge_method") != Some("S256") {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        if challenge.len() != 43 || !is_pkce_value(challenge) {
            return Err(fail(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            ));
        }
        let resource = match get("resource") {
            None => self.resource.clone(),
            Some(r) => {
                let ours = canonical_resource(&self.resource);
                let c = canonical_resource(r);
                if c.is_none()
                    || (c != ours
                        && c.as_deref() != Some(self.origin.to_ascii_lowercase().as_str()))
                {
                    return Err(fail(
                        "invalid_target",
                        "the resource is not this server's MCP endpoint",
                    ));
                }
                self.resource.clone()
            }
        };
        let id = random_secret("");
        let req = Request {
            client_id: client_id.to_string(),
            redirect_uri,
            redirect_given,
            challenge: challenge.to_string(),
            state,
            resource,
            csrf: random_secret(""),
            expires: now_ms() + ms(self.settings.request_ttl),
            failures: 0,
        };
        let mut t = self.lock();
        if t.requests.len() >= self.settings.max_requests {
            let now = now_ms();
            t.requests.retain(|_, r| r.expires > now);
            if t.requests.len() >= self.settings.max_requests {
                return Err(AuthorizeError::Page(
                    "Too many sign-ins are in progress; try again in a few minutes.".into(),
                ));
            }
        }
        t.requests.insert(id.clone(), req);
        Ok(id)
    }

    /// The pending request behind a sign-in page, if it is still open.
    pub fn pending(&self, id: &str) -> Option<PendingView> {
        let t = self.lock();
        let r = t.requests.get(id).filter(|r| r.expires > now_ms())?;
        Some(PendingView {
            client_name: t.clients.get(&r.client_id).and_then(|c| c.name.clone()),
            redirect_uri: r.redirect_uri.clone(),
            csrf: r.csrf.clone(),
        })
    }

    /// Counts a failed sign-in on a request; the request is dropped after a few. Returns
    /// whether it is still open.
    pub fn sign_in_failed(&self, id: &str) -> bool {
        let mut t = self.lock();
        let Some(r) = t.requests.get_mut(id) else {
            return false;
        };
        r.failures += 1;
        if r.failures >= MAX_SIGN_IN_ATTEMPTS {
            t.requests.remove(id);
            return false;
        }
        true
    }

    /// Ends a pending request with a code for `subject`; the URL to send the browser to.
    pub fn approve(&self, id: &str, subject: &str) -> Option<String> {
        let code = random_secret("");
        let mut t = self.lock();
        let r = t.requests.remove(id).filter(|r| r.expires > now_ms())?;
        t.codes.insert(
            digest_hex(&code),
            Code {
                client_id: r.client_id.clone(),
                redirect_uri: r.redirect_uri.clone(),
                redirect_given: r.redirect_given,
                challenge: r.challenge.clone(),
                resource: r.resource.clone(),
                subject: subject.to_string(),
                expires: now_ms() + ms(self.settings.code_ttl),
            },
        );
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        params.push(("iss", &self.issuer));
        Some(with_query(&r.redirect_uri, &params))
    }

    /// Ends a pending request as refused by the person; the URL to send the browser to.
    pub fn deny(&self, id: &str) -> Option<String> {
        let r = self.lock().requests.remove(id)?;
        let mut params = vec![
            ("error", "access_denied"),
            ("error_description", "the sign-in was cancelled"),
        ];
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        params.push(("iss", &self.issuer));
        Some(with_query(&r.redirect_uri, &params))
    }

    // -----------------------------------------------------------------------------------------
    // Token endpoint
    // -----------------------------------------------------------------------------------------

    /// Authenticates the client of a token or revocation request. `basic` is the decoded
    /// `Authorization: Basic` pair, if one was sent.
    fn client_auth(
        &self,
        p: &HashMap<String, String>,
        basic: Option<(String, String)>,
    ) -> Result<String, OAuthError> {
        let (id, secret, via_basic) = match basic {
            Some((id, secret)) => {
                if p.contains_key("client_secret") {
                    return Err(OAuthError::request(
                        "send the client credentials once: in Authorization or in the body, not both",
                    ));
                }
                if p.get("client_id").is_some_and(|c| *c != id) {
                    return Err(OAuthError::client(
                        "client_id does not match the Authorization header",
                    ));
                }
                (id, Some(secret), true)
            }
            None => {
                let Some(id) = p.get("client_id").filter(|c| !c.is_empty()) else {
                    return Err(OAuthError::client("client_id is required"));
                };
                (id.clone(), p.get("client_secret").cloned(), false)
            }
        };
        let t = self.lock();
        let Some(c) = t.clients.get(&id) else {
            return Err(OAuthError::client(
                "unknown client: register again (the server may have forgotten it after 30 days without use)",
            ));
        };
        match (&c.secret_hash, secret) {
            (None, _) => {}
            (Some(hash), Some(s)) => {
                if !crate::guard::ct_eq(digest_hex(&s).as_bytes(), hash.as_bytes()) {
                    return Err(OAuthError::client("client authentication failed"));
                }
                let method_ok = match c.auth_method {
                    AuthMethod::ClientSecretBasic => via_basic,
                    AuthMethod::ClientSecretPost => !via_basic,
                    AuthMethod::None => true,
                };
                if !method_ok {
                    return Err(OAuthError::client(format!(
                        "this client registered token_endpoint_auth_method {}",
                        c.auth_method.as_str()
                    )));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::client(
                    "this client must authenticate with its client_secret",
                ));
            }
        }
        Ok(id)
    }

    /// The token endpoint. `user_ok(subject)` says whether the subject may still sign in.
    pub fn token(
        &self,
        p: &HashMap<String, String>,
        basic: Option<(String, String)>,
        user_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Issued, OAuthError> {
        if p.values().any(|v| v.len() > MAX_PARAM) {
            return Err(OAuthError::request("a parameter is too long"));
        }
        let grant_type = p
            .get("grant_type")
            .filter(|g| !g.is_empty())
            .ok_or_else(|| OAuthError::request("grant_type is required"))?
            .clone();
        if grant_type != "authorization_code" && grant_type != "refresh_token" {
            return Err(OAuthError::new(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ));
        }
        let client_id = self.client_auth(p, basic)?;
        let issued = if grant_type == "authorization_code" {
            self.redeem_code(p, &client_id, user_ok)?
        } else {
            self.refresh(p, &client_id, user_ok)?
        };
        self.persist();
        Ok(issued)
    }

    fn check_resource(&self, p: &HashMap<String, String>, bound: &str) -> Result<(), OAuthError> {
        if let Some(r) = p.get("resource").filter(|r| !r.is_empty()) {
            let c = canonical_resource(r);
            let ok = c.is_some()
                && (c == canonical_resource(bound)
                    || c.as_deref() == Some(self.origin.to_ascii_lowercase().as_str()));
            if !ok {
                return Err(OAuthError::new(
                    400,
                    "invalid_target",
                    "the resource is not the one this grant is for",
                ));
            }
        }
        Ok(())
    }

    fn redeem_code(
        &self,
        p: &HashMap<String, String>,
        client_id: &str,
        user_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Issued, OAuthError> {
        let code = p
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("code is required"))?;
        let verifier = p
            .get("code_verifier")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("code_verifier is required (PKCE)"))?;
        if !is_pkce_value(verifier) {
            return Err(OAuthError::request(
                "code_verifier must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~",
            ));
        }
        let hash = digest_hex(code);
        let now = now_ms();
        let mut t = self.lock();
        let Some(c) = t.codes.remove(&hash) else {
            if let Some((grant, _)) = t.used_codes.remove(&hash) {
                // RFC 6749 §4.1.2: a code used twice revokes what it granted.
                if let Some(g) = t.revoke_grant(&grant) {
                    log::warn!(
                        target: "kimai_mcp::audit",
                        "oauth: an authorization code was presented a second time; revoked the grant it issued (client {})",
                        short(&g.client_id)
                    );
                }
                drop(t);
                self.persist();
                return Err(OAuthError::grant(
                    "the authorization code was already used; the tokens issued for it are revoked",
                ));
            }
            return Err(OAuthError::grant(
                "the authorization code is unknown or expired",
            ));
        };
        if c.expires <= now {
            return Err(OAuthError::grant(
                "the authorization code expired; sign in again",
            ));
        }
        if c.client_id != client_id {
            return Err(OAuthError::grant(
                "the authorization code was issued to another client",
            ));
        }
        match p.get("redirect_uri").filter(|r| !r.is_empty()) {
            Some(r) if *r != c.redirect_uri => {
                return Err(OAuthError::grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
            None if c.redirect_given => {
                return Err(OAuthError::request(
                    "redirect_uri is required: the authorization request had one",
                ));
            }
            _ => {}
        }
        if !crate::guard::ct_eq(s256(verifier).as_bytes(), c.challenge.as_bytes()) {
            return Err(OAuthError::grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        self.check_resource(p, &c.resource)?;
        if !user_ok(&c.subject) {
            return Err(OAuthError::grant("the user can no longer sign in here"));
        }
        // Bounded per user: each sign-in is a grant, so a user signing in again and again from
        // many applications ends their oldest sign-ins rather than growing the table.
        let mut mine: Vec<(u64, String)> = t
            .grants
            .iter()
            .filter(|(_, g)| g.subject == c.subject)
            .map(|(id, g)| (g.created, id.clone()))
            .collect();
        if mine.len() >= MAX_GRANTS_PER_SUBJECT {
            mine.sort();
            for (_, id) in mine.iter().take(mine.len() + 1 - MAX_GRANTS_PER_SUBJECT) {
                t.revoke_grant(id);
            }
        }
        let grant_id = random_secret("");
        let issued = self.issue(
            &mut t,
            &grant_id,
            None,
            client_id,
            &c.subject,
            &c.resource,
            now,
        );
        t.used_codes.insert(hash, (grant_id, c.expires));
        if let Some(cl) = t.clients.get_mut(client_id) {
            cl.last_used = now;
        }
        Ok(issued)
    }

    /// Creates or rotates a grant's token pair.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        t: &mut Tables,
        grant_id: &str,
        previous: Option<Grant>,
        client_id: &str,
        subject: &str,
        resource: &str,
        now: u64,
    ) -> Issued {
        let access_token = random_secret("kmat_");
        let refresh_token = random_secret("kmrt_");
        let access_hash = digest_hex(&access_token);
        let refresh_hash = digest_hex(&refresh_token);
        let mut rotated = Vec::new();
        let mut created = now;
        if let Some(old) = previous {
            t.refresh.remove(&old.refresh_hash);
            if let Some(a) = &old.access_hash {
                t.access.remove(a);
            }
            rotated = old.rotated;
            rotated.push(old.refresh_hash.clone());
            t.rotated.insert(old.refresh_hash, grant_id.to_string());
            if rotated.len() > MAX_ROTATED {
                let gone = rotated.remove(0);
                t.rotated.remove(&gone);
            }
            created = old.created;
        }
        t.access.insert(
            access_hash.clone(),
            Access {
                grant: grant_id.to_string(),
                expires: now + ms(self.settings.access_ttl),
            },
        );
        t.refresh.insert(refresh_hash.clone(), grant_id.to_string());
        t.grants.insert(
            grant_id.to_string(),
            Grant {
                client_id: client_id.to_string(),
                subject: subject.to_string(),
                resource: resource.to_string(),
                refresh_hash,
                refresh_expires: now + ms(self.settings.refresh_ttl),
                access_hash: Some(access_hash),
                rotated,
                created,
            },
        );
        Issued {
            access_token,
            refresh_token,
            expires_in: self.settings.access_ttl.as_secs().max(1),
        }
    }

    fn refresh(
        &self,
        p: &HashMap<String, String>,
        client_id: &str,
        user_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Issued, OAuthError> {
        let token = p
            .get("refresh_token")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("refresh_token is required"))?;
        let hash = digest_hex(token);
        let now = now_ms();
        let mut t = self.lock();
        let Some(grant_id) = t.refresh.get(&hash).cloned() else {
            if let Some(grant_id) = t.rotated.get(&hash).cloned() {
                // A rotated refresh token came back: someone holds a copy. Revoke the grant.
                let g = t.revoke_grant(&grant_id);
                drop(t);
                if let Some(g) = g {
                    log::warn!(
                        target: "kimai_mcp::audit",
                        "oauth: a rotated refresh token was reused; revoked the whole grant (client {}) — the person must sign in again",
                        short(&g.client_id)
                    );
                }
                self.persist();
                return Err(OAuthError::grant(
                    "the refresh token was already used; the sign-in is revoked: sign in again",
                ));
            }
            return Err(OAuthError::grant(
                "the refresh token is unknown, revoked or expired; sign in again",
            ));
        };
        // The refresh index and the grants change together under this lock; should they ever
        // disagree, the token is treated as unknown rather than ending the request thread.
        let Some(g) = t.grants.get(&grant_id).cloned() else {
            log::error!("oauth: a refresh token's grant is missing; treated as revoked");
            return Err(OAuthError::grant(
                "the refresh token is unknown, revoked or expired; sign in again",
            ));
        };
        if g.client_id != client_id {
            return Err(OAuthError::grant(
                "the refresh token was issued to another client",
            ));
        }
        if g.refresh_expires <= now {
            t.revoke_grant(&grant_id);
            return Err(OAuthError::grant(
                "the refresh token expired; sign in again",
            ));
        }
        if g.resource != self.resource {
            return Err(OAuthError::new(
                400,
                "invalid_target",
                "the grant is for another resource; sign in again",
            ));
        }
        self.check_resource(p, &g.resource)?;
        if !user_ok(&g.subject) {
            t.revoke_grant(&grant_id);
            return Err(OAuthError::grant(
                "the user can no longer sign in here; sign in again",
            ));
        }
        let (subject, resource) = (g.subject.clone(), g.resource.clone());
        let issued = self.issue(
            &mut t,
            &grant_id,
            Some(g),
            client_id,
            &subject,
            &resource,
            now,
        );
        if let Some(cl) = t.clients.get_mut(client_id) {
            cl.last_used = now;
        }
        Ok(issued)
    }

    /// RFC 7009: revokes the grant behind an access or refresh token of this client. Unknown
    /// tokens are not an error.
    pub fn revoke(
        &self,
        p: &HashMap<String, String>,
        basic: Option<(String, String)>,
    ) -> Result<(), OAuthError> {
        let token = p
            .get("token")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("token is required"))?;
        if token.len() > MAX_PARAM {
            return Err(OAuthError::request("token is too long"));
        }
        let client_id = self.client_auth(p, basic)?;
        let hash = digest_hex(token);
        let mut t = self.lock();
        let grant = t
            .refresh
            .get(&hash)
            .or_else(|| t.rotated.get(&hash))
            .cloned()
            .or_else(|| t.access.get(&hash).map(|a| a.grant.clone()));
        let Some(grant) = grant else { return Ok(()) };
        if t.grants
            .get(&grant)
            .is_some_and(|g| g.client_id == client_id)
        {
            t.revoke_grant(&grant);
            drop(t);
            log::info!(target: "kimai_mcp::audit", "oauth: a grant was revoked by its client {}", short(&client_id));
            self.persist();
        }
        Ok(())
    }

    /// The subject (slug) of a valid access token for this server's resource.
    pub fn verify(&self, access_token: &str) -> Option<String> {
        if !access_token.starts_with("kmat_") || access_token.len() > 128 {
            return None;
        }
        let hash = digest_hex(access_token);
        let t = self.lock();
        let a = t.access.get(&hash)?;
        if a.expires <= now_ms() {
            return None;
        }
        let g = t.grants.get(&a.grant)?;
        (g.resource == self.resource).then(|| g.subject.clone())
    }

    /// Revokes every grant whose subject fails `keep` (users removed or changed on reload).
    /// Returns how many were revoked.
    pub fn retain_subjects(&self, keep: &dyn Fn(&str) -> bool) -> usize {
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
            self.persist();
        }
        n
    }

    /// Drops expired requests, codes, tokens and grants, and idle clients.
    pub fn sweep(&self) {
        let now = now_ms();
        let mut t = self.lock();
        t.requests.retain(|_, r| r.expires > now);
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
        let pruned = self.prune_clients(&mut t, now, false);
        drop(t);
        if !expired.is_empty() || pruned > 0 {
            self.persist();
        }
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
    use super::*;

    fn oauth(settings: Settings) -> OAuth {
        OAuth::new("http://127.0.0.1:8000", settings, None).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A public client and a code for `subject`; (client id, code, verifier).
    fn code_for(o: &OAuth, subject: &str) -> (String, String, String) {
        let reg = o
            .register(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}))
            .unwrap();
        let id = reg["client_id"].as_str().unwrap().to_string();
        let verifier = random_secret("v");
        let txn = o
            .authorize(&params(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("code_challenge", &s256(&verifier)),
                ("code_challenge_method", "S256"),
            ]))
            .unwrap();
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
        assert_eq!(o.verify(&t.access_token).as_deref(), Some("slug-a"));
        assert_eq!(o.verify("kmat_nope"), None);
        assert_eq!(o.counts(), (2, 1));
        // Revoking subjects that are gone.
        assert_eq!(o.retain_subjects(&|s| s != "slug-a"), 1);
        assert_eq!(o.verify(&t.access_token), None);
    }

    #[test]
    fn sign_ins_per_user_are_bounded() {
        let o = oauth(Settings::default());
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

    #[test]
    fn the_state_file_round_trips_without_secrets() {
        let dir = std::env::temp_dir().join(format!("kimai-mcp-oauth-{}", random_secret("")));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let o = OAuth::new(
            "https://mcp.example.com",
            Settings::default(),
            Some(path.clone()),
        )
        .unwrap();
        let reg = o
            .register(&json!({"redirect_uris": ["https://app.example/cb"], "client_name": "App"}))
            .unwrap();
        let secret = reg["client_secret"].as_str().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(secret));
        assert!(text.contains(&digest_hex(secret)));
        let again = OAuth::new(
            "https://mcp.example.com",
            Settings::default(),
            Some(path.clone()),
        )
        .unwrap();
        assert_eq!(again.counts(), (1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
