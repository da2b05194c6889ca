//! `kimai-mcp serve`: the HTTP server that a whole company shares (design §3).
//!
//! Endpoints: Streamable HTTP on `/mcp/{slug}` (a user of `users.json`; the slug is the
//! credential) and on `/mcp` (server token in `Authorization`, the user's own Kimai token in
//! `X-Kimai-Token`), and `/health`. Every request passes the guards in the design's order —
//! client address (trusted proxies only) → rate limit → enumeration block → Host/Origin →
//! HTTPS requirement → method/Accept/Content-Type → bounded body (in `server`) →
//! authentication → session — each an early return of a [`Reply`]; `finish` adds the security
//! headers and writes one access line (no query string, no slug).
//!
//! Threads: connection threads (`server`) call [`App::handle`] concurrently; the session
//! sweeper (`session`) also maintains the guard tables. Shared state: the session table, the
//! guard counters and the Kimai client cache, each behind its own lock, held only to look up
//! or change an entry — never across a Kimai call or a socket write.

mod oauth;
mod path;
pub mod server;
mod sse;
mod streamable;
mod work;

use crate::config::ServeConfig;
use crate::config::users::Users;
use crate::dispatch::Dispatcher;
use crate::guard::{
    self, EnumerationGuard, EnumerationSettings, KimaiUrls, OriginPolicy, RateLimiter,
    TokenVerdicts, TrustedProxies,
};
use crate::kimai::{self, Tls};
use crate::mcp::code;
use crate::session::{SessionTable, fingerprint};
use crate::tools::Backend;
use serde_json::{Value, json};
use server::{Handled, Request, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What a handler step returns: a finished reply.
pub type Reply = Handled;

/// Per-request facts the guards established.
pub struct Ctx {
    /// The client's address (behind a trusted proxy, the forwarded one), for logs.
    pub ip: IpAddr,
    /// What the per-address limits count: the address, or for IPv6 its /64 network (one
    /// machine usually holds a whole /64, so counting single IPv6 addresses would give it 2^64
    /// shares).
    pub key: IpAddr,
    pub started: Instant,
}

/// The server's shared state.
pub struct App {
    pub cfg: ServeConfig,
    pub users: RwLock<Arc<Users>>,
    pub server_tokens: RwLock<Vec<String>>,
    pub sessions: Arc<SessionTable>,
    clients: Mutex<HashMap<(String, Tls), Arc<kimai::Client>>>,
    /// The Kimai URLs callers may name (`--allowed-kimai-url`, the default URL and the users
    /// file's URLs; rebuilt on reload).
    pub kimai_urls: RwLock<KimaiUrls>,
    pub rate: RateLimiter,
    /// `--user-rate-limit-rpm`: requests per credential, from all its addresses.
    pub user_rate: RateLimiter<guard::CredentialKey>,
    /// `--session-rate-per-address`: new sessions per client address.
    pub session_rate: RateLimiter,
    /// Kimai's recent verdicts on callers' own tokens.
    pub verdicts: TokenVerdicts,
    /// Tool calls in flight per credential.
    pub calls: Arc<work::CallLimiter>,
    pub enumeration: EnumerationGuard,
    pub origin: OriginPolicy,
    pub trusted: TrustedProxies,
    /// Key for credential fingerprints (random per process).
    pub fp_key: [u8; 32],
    pub dispatcher: Dispatcher,
    pub slots: work::Slots,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The OAuth authorization server (with `--public-url`).
    pub oauth: Option<crate::oauth::OAuth>,
}

impl App {
    /// `port` is the port actually bound (with `--port 0` the configured one is 0).
    pub fn new(
        cfg: ServeConfig,
        port: u16,
        users: Users,
        server_tokens: Vec<String>,
        enumeration: EnumerationSettings,
    ) -> Result<App, String> {
        let trusted = TrustedProxies::parse(&cfg.trusted_proxies)
            .map_err(|e| format!("invalid --trusted-proxy / KIMAI_MCP_TRUSTED_PROXIES: {e}"))?;
        let loopback =
            cfg.host == "localhost" || cfg.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let mut public_hosts = cfg.public_hosts.clone();
        if let Some(url) = &cfg.public_url {
            // The public URL's host (with its port, if it names one) is how browsers and
            // the proxy address us.
            if let Some(authority) = url.split("://").nth(1) {
                public_hosts.push(authority.to_string());
            }
        }
        let origin = OriginPolicy::new(loopback, port, cfg.allowed_origins.clone(), public_hosts);
        let oauth = match &cfg.public_url {
            Some(url) => Some(crate::oauth::OAuth::new(
                url,
                crate::oauth::Settings {
                    registrations_per_address: cfg.bounds.registrations_per_address,
                    pending_per_address: cfg.bounds.pending_sign_ins_per_address,
                    ..cfg.oauth.clone()
                },
                cfg.oauth_state_file.clone(),
            )?),
            None => None,
        };
        if let Some(o) = &oauth {
            // Grants of users that are gone or can no longer sign in end now.
            let gone = o.retain_subjects(&|slug| {
                users
                    .by_slug
                    .get(slug)
                    .is_some_and(|u| u.auth_secret.is_some())
            });
            if gone > 0 {
                log::info!(
                    "oauth: {gone} sign-in(s) of users no longer in the users file (or without auth_secret) ended"
                );
            }
        }
        let mut fp_key = [0u8; 32];
        getrandom::fill(&mut fp_key).map_err(|e| format!("the OS random source failed: {e}"))?;
        let kimai_urls = kimai_url_policy(&cfg, &users);
        if kimai_urls.is_empty() && !kimai_urls.allows_any() {
            log::warn!(
                "no Kimai URL is allowed for /mcp and /sse callers: set --default-kimai-url, list your Kimai in --allowed-kimai-url, or add users to the users file"
            );
        }
        if kimai_urls.allows_any() {
            log::warn!(
                "--allowed-kimai-url '*': /mcp and /sse callers may point this server at any URL (X-Kimai-URL), including addresses inside your network; list your Kimai URLs instead"
            );
        }
        Ok(App {
            sessions: SessionTable::with_per_owner(
                cfg.max_sessions,
                cfg.session_ttl,
                cfg.instance_id.as_deref().unwrap_or(""),
                cfg.bounds.max_sessions_per_user,
            ),
            rate: RateLimiter::new(cfg.rate_limit_rpm),
            user_rate: RateLimiter::per_credential(cfg.bounds.user_rate_limit_rpm),
            session_rate: RateLimiter::new(cfg.bounds.session_rate_per_address),
            verdicts: TokenVerdicts::default(),
            calls: work::CallLimiter::new(cfg.bounds.max_calls_per_user),
            kimai_urls: RwLock::new(kimai_urls),
            enumeration: EnumerationGuard::new(enumeration),
            slots: work::Slots::new(cfg.workers),
            users: RwLock::new(Arc::new(users)),
            server_tokens: RwLock::new(server_tokens),
            clients: Mutex::new(HashMap::new()),
            origin,
            trusted,
            fp_key,
            dispatcher: Dispatcher::new(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            oauth,
            cfg,
        })
    }

    pub fn users(&self) -> Arc<Users> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The shared Kimai client for a URL and TLS setting (one connection pool each). Only
    /// allowed URLs get here; with `--allowed-kimai-url '*'` there can be any number of them,
    /// so the cache keeps at most [`MAX_CACHED_CLIENTS`]: when it is full, a client no session
    /// uses any more makes room, and if every one is in use the new client is not cached.
    pub fn client(&self, url: &str, tls: &Tls) -> Result<Arc<kimai::Client>, kimai::Error> {
        let key = (url.to_string(), tls.clone());
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        // Built outside the lock (reading a CA file is I/O); a racing builder wins harmlessly.
        let c = Arc::new(kimai::Client::new(
            self.cfg.kimai_settings(url, tls.clone()),
        )?);
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_CLIENTS && !map.contains_key(&key) {
            map.retain(|_, c| Arc::strong_count(c) > 1);
            if map.len() >= MAX_CACHED_CLIENTS {
                return Ok(c);
            }
        }
        Ok(map.entry(key).or_insert(c).clone())
    }

    /// Kimai clients cached now.
    pub fn cached_clients(&self) -> usize {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether callers may point the server at this Kimai base URL.
    pub fn kimai_url_allowed(&self, url: &str) -> bool {
        self.kimai_urls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .allows(url)
    }

    /// Handles one request: guards, routing, security headers, access log.
    pub fn handle(self: &Arc<Self>, req: Request) -> Handled {
        let started = Instant::now();
        let peer = server::peer_ip(req.peer);
        // Repeated X-Forwarded-For headers are one list (RFC 9110 §5.3).
        let xff: Vec<&str> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("X-Forwarded-For"))
            .map(|(_, v)| v.as_str())
            .collect();
        let xff = (!xff.is_empty()).then(|| xff.join(","));
        let ip = guard::client_ip(peer, xff.as_deref(), req.header("X-Real-IP"), &self.trusted);
        let ctx = Ctx {
            ip,
            key: guard::limit_key(ip),
            started,
        };
        let method = req.method.clone();
        let logged_path = path::logged_path(&req.path);
        let endpoint = path::endpoint_name(&req.path);
        let origin = req.header("Origin").map(str::to_string);
        let out = match self.route(&ctx, req, peer) {
            Ok(h) | Err(h) => h,
        };
        let cors = self.origin.cors_allow_origin(origin.as_deref());
        let finish = |mut resp: Response| {
            let has = |resp: &Response, name: &str| {
                resp.headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case(name))
            };
            for (k, v) in guard::security_headers() {
                // A page (the OAuth sign-in form) brings its own Content-Security-Policy.
                if !has(&resp, k) {
                    resp.headers.push(((*k).to_string(), (*v).to_string()));
                }
            }
            if let Some(o) = cors
                .as_ref()
                .filter(|_| !has(&resp, "Access-Control-Allow-Origin"))
            {
                resp.headers
                    .push(("Access-Control-Allow-Origin".into(), o.clone()));
                resp.headers.push((
                    "Access-Control-Expose-Headers".into(),
                    "Mcp-Session-Id, MCP-Protocol-Version".into(),
                ));
                resp.headers.push(("Vary".into(), "Origin".into()));
            }
            resp
        };
        let (status, out) = match out {
            Handled::Reply(r) => (r.status, Handled::Reply(finish(r))),
            Handled::Stream(r, body) => (r.status, Handled::Stream(finish(r), body)),
        };
        self.metrics.request(endpoint, status);
        log::info!(
            target: "kimai_mcp::access",
            "{ip} {method} {logged_path} {status} {}ms",
            started.elapsed().as_millis()
        );
        out
    }

    fn route(self: &Arc<Self>, ctx: &Ctx, req: Request, peer: IpAddr) -> Result<Reply, Reply> {
        let now = Instant::now();
        if let Err(wait) = self.rate.check(ctx.key, now) {
            self.metrics.rate_limited();
            return Err(too_many(
                wait,
                "Too many requests from this address; slow down",
            ));
        }
        let path = req.path.clone();
        // Only the canonical form of a path is routed (see `path`).
        let Some(segs) = path::canonical_segments(&path) else {
            return Err(json_error(404, code::SERVER_ERROR, "Not Found"));
        };
        let slug_route = matches!(segs.as_slice(), ["mcp", s] if !s.is_empty());
        if slug_route && let Err(wait) = self.enumeration.check(ctx.key, now) {
            self.metrics.enumeration_blocked();
            return Err(too_many(
                wait,
                "Too many unknown addresses from this client; try again later",
            ));
        }
        if let Err(why) = self.origin.check_host(req.header("Host")) {
            return Err(json_error(
                403,
                code::SERVER_ERROR,
                &format!("Forbidden: {why}"),
            ));
        }
        let oauth_path = oauth::is_oauth_path(&segs);
        // The authorization server's JSON endpoints answer any origin; its form checks its own.
        if !oauth_path && let Err(why) = self.origin.check_origin(req.header("Origin")) {
            return Err(json_error(
                403,
                code::SERVER_ERROR,
                &format!("Forbidden: {why}"),
            ));
        }
        let health = segs.as_slice() == ["health"];
        if self.cfg.require_https
            && !health
            && !guard::is_https(peer, req.header("X-Forwarded-Proto"), &self.trusted)
        {
            return Err(json_error(
                403,
                code::SERVER_ERROR,
                "Forbidden: this server requires HTTPS; connect through the TLS proxy (it must be a trusted proxy that sends X-Forwarded-Proto: https)",
            ));
        }
        if oauth_path {
            return oauth::route(self, ctx, &req, &segs);
        }
        match segs.as_slice() {
            ["mcp", s] if !s.is_empty() && self.cfg.disable_legacy_slugs => {
                Err(json_error(404, code::SERVER_ERROR, "Not Found"))
            }
            ["health"] => match req.method.as_str() {
                "GET" | "HEAD" => Ok(self.health()),
                _ => Err(method_not_allowed("GET")),
            },
            ["metrics"] => self.metrics_page(&req),
            ["mcp"] => streamable::handle(self, ctx, req, None),
            ["sse"] => sse::open(self, ctx, &req),
            ["messages"] | ["message"] | ["messages", ""] => sse::message(self, &req),
            ["mcp", slug] if !slug.is_empty() => {
                let slug = slug.to_string();
                streamable::handle(self, ctx, req, Some(slug))
            }
            _ => Err(json_error(404, code::SERVER_ERROR, "Not Found")),
        }
    }

    /// `GET /metrics`, behind the server token.
    fn metrics_page(&self, req: &Request) -> Result<Reply, Reply> {
        if req.method != "GET" {
            return Err(method_not_allowed("GET"));
        }
        let presented = req
            .header("Authorization")
            .map(|h| h.strip_prefix("Bearer ").unwrap_or(h).trim())
            .filter(|p| !p.is_empty());
        let tokens = self
            .server_tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !presented.is_some_and(|p| guard::token_matches(p, &tokens)) {
            return Err(
                match json_error(
                    401,
                    code::SERVER_ERROR,
                    "Invalid or missing MCP server authentication token",
                ) {
                    Handled::Reply(r) => {
                        Handled::Reply(r.header("WWW-Authenticate", "Bearer realm=\"mcp\""))
                    }
                    other => other,
                },
            );
        }
        let (streamable, sse) = self.sessions.counts();
        let page = self
            .metrics
            .render(&[("streamable-http", streamable), ("sse", sse)]);
        Ok(Handled::Reply(
            Response::new(200).body("text/plain; version=0.0.4; charset=utf-8", page),
        ))
    }

    fn health(&self) -> Reply {
        let users = self.users();
        let body = json!({
            "status": "ok",
            "version": crate::VERSION,
            "transports": ["streamable-http", "sse"],
            "mode": if users.by_slug.is_empty() { "per-client-auth" } else { "multi-user" },
            "default_kimai_url": self.cfg.default_kimai_url,
            "active_sessions": self.sessions.len(),
            "user_count": users.by_slug.len(),
            "oauth": self.oauth.is_some(),
        });
        Handled::Reply(Response::new(200).body("application/json", body.to_string()))
    }

    /// Replaces the users (SIGHUP): sessions of slugs that are gone end at once; sessions of
    /// users that remain keep working (with their entry as it is now). Returns a summary with
    /// counts only (never a slug).
    pub fn reload_users(&self, users: Users, server_tokens: Option<Vec<String>>) -> String {
        let old = self.users();
        let added = users
            .by_slug
            .keys()
            .filter(|k| !old.by_slug.contains_key(*k))
            .count();
        let removed = old
            .by_slug
            .keys()
            .filter(|k| !users.by_slug.contains_key(*k))
            .count();
        let changed = users
            .by_slug
            .iter()
            .filter(|(k, u)| {
                old.by_slug.get(*k).is_some_and(|o| {
                    o.kimai_url != u.kimai_url
                        || o.token.expose() != u.token.expose()
                        || o.tls != u.tls
                })
            })
            .count();
        let valid: Vec<[u8; 32]> = users
            .by_slug
            .keys()
            .map(|slug| fingerprint(&self.fp_key, &["slug", slug]))
            .collect();
        let count = users.by_slug.len();
        // OAuth sign-ins end for users that are gone, lost their auth_secret or got a new one.
        let signed_out = self.oauth.as_ref().map_or(0, |o| {
            o.retain_subjects(&|slug| match (
                old.by_slug.get(slug).and_then(|u| u.auth_secret.as_ref()),
                users.by_slug.get(slug).and_then(|u| u.auth_secret.as_ref()),
            ) {
                (Some(a), Some(b)) => guard::ct_eq(a.expose().as_bytes(), b.expose().as_bytes()),
                _ => false,
            })
        });
        *self.kimai_urls.write().unwrap_or_else(|e| e.into_inner()) =
            kimai_url_policy(&self.cfg, &users);
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        let ended = self
            .sessions
            .retain(|s| !s.via_slug || valid.contains(&s.owner));
        let mut summary = format!(
            "{count} users ({added} added, {removed} removed, {changed} changed); {ended} sessions of removed users ended"
        );
        if self.oauth.is_some() {
            summary.push_str(&format!(
                "; {signed_out} OAuth sign-in(s) of removed users or changed auth secrets ended"
            ));
        }
        if let Some(tokens) = server_tokens {
            summary.push_str(&format!("; {} server token(s)", tokens.len()));
            *self
                .server_tokens
                .write()
                .unwrap_or_else(|e| e.into_inner()) = tokens;
        }
        summary
    }

    /// Resolves a slug to its user in constant time per entry (every slug is compared).
    pub fn user_for_slug(&self, slug: &str) -> Option<crate::config::users::User> {
        let users = self.users();
        let mut found = None;
        for (s, u) in &users.by_slug {
            if guard::ct_eq(s.as_bytes(), slug.as_bytes()) {
                found = Some(u.clone());
            }
        }
        found
    }

    /// The backend and owner fingerprint for a slug user.
    pub fn slug_backend(
        &self,
        slug: &str,
        user: &crate::config::users::User,
    ) -> Result<(Backend, [u8; 32]), kimai::Error> {
        let client = self.client(&user.kimai_url, &user.tls)?;
        Ok((
            Backend {
                metrics: Some(self.metrics.clone()),
                client,
                token: user.token.clone(),
            },
            fingerprint(&self.fp_key, &["slug", slug]),
        ))
    }
}

/// Kimai clients kept at most (one per allowed Kimai URL and TLS setting).
pub const MAX_CACHED_CLIENTS: usize = 256;

/// The Kimai URL policy: `--allowed-kimai-url`, plus the default URL and the users file's URLs.
fn kimai_url_policy(cfg: &ServeConfig, users: &Users) -> KimaiUrls {
    use crate::config::KimaiUrlPolicy;
    let (any, listed): (bool, &[String]) = match &cfg.allowed_kimai_urls {
        KimaiUrlPolicy::Any => (true, &[]),
        KimaiUrlPolicy::List(l) => (false, l),
    };
    KimaiUrls::new(
        any,
        listed
            .iter()
            .map(String::as_str)
            .chain(cfg.default_kimai_url.as_deref())
            .chain(users.by_slug.values().map(|u| u.kimai_url.as_str())),
    )
}

/// A JSON-RPC error body with no id (transport-level errors).
pub fn json_error(status: u16, code: i64, message: &str) -> Reply {
    let body =
        json!({"jsonrpc": "2.0", "id": Value::Null, "error": {"code": code, "message": message}});
    Handled::Reply(Response::new(status).body("application/json", body.to_string()))
}

/// `reply` with one more header (replies built by `json_error` are never streams).
pub fn with_header(reply: Reply, name: &str, value: &str) -> Reply {
    match reply {
        Handled::Reply(r) => Handled::Reply(r.header(name, value)),
        other => other,
    }
}

/// 503 for a full session table.
pub fn at_capacity() -> Reply {
    with_header(
        json_error(
            503,
            code::SERVER_ERROR,
            "Server at capacity: too many open sessions; try again later",
        ),
        "Retry-After",
        "30",
    )
}

pub fn too_many(wait: Duration, message: &str) -> Reply {
    let secs = wait.as_secs().max(1);
    with_header(
        json_error(429, code::SERVER_ERROR, message),
        "Retry-After",
        &secs.to_string(),
    )
}

pub fn method_not_allowed(allow: &str) -> Reply {
    with_header(
        json_error(
            405,
            code::SERVER_ERROR,
            &format!("Method Not Allowed: use {allow}"),
        ),
        "Allow",
        allow,
    )
}

/// A running HTTP server (tests, `demo --http`).
pub struct Running {
    pub app: Arc<App>,
    pub server: server::Server,
    sweeper: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops accepting new connections and ends idle ones; requests in progress go on.
    pub fn stop_accepting(&mut self) {
        self.server.shutdown();
    }

    /// Stops accepting, stops the sweeper, joins it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.server.shutdown();
        self.app.sessions.stop_sweeper();
        if let Some(s) = self.sweeper.take() {
            let _ = s.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The HTTP layer's bounds from the configuration: connections in total, per client address
/// and per trusted proxy (one peer that carries many clients), and the body deadline. Each
/// refusal is one line that names the limit and the option that raises it.
fn connection_limits(cfg: &ServeConfig, trusted: &TrustedProxies) -> server::Limits {
    let b = &cfg.bounds;
    let per_address = server::Allowance {
        max: b.max_connections_per_address,
        refusal: format!(
            "Too many connections from your address: at most {} at once; close idle ones and retry (the operator can raise --max-connections-per-address)",
            b.max_connections_per_address
        )
        .into(),
    };
    let per_proxy = server::Allowance {
        max: b.max_connections_per_proxy,
        refusal: format!(
            "Too many connections from this proxy: at most {} at once; retry shortly (the operator can raise --max-connections-per-proxy)",
            b.max_connections_per_proxy
        )
        .into(),
    };
    let trusted = trusted.clone();
    server::Limits {
        max_connections: b.max_connections,
        at_capacity: format!(
            "Server at capacity: {} connections are open, the most it serves at once; retry shortly (the operator can raise --max-connections)",
            b.max_connections
        )
        .into(),
        per_peer: server::PeerAllowance::new(move |ip| {
            if trusted.contains(ip) {
                per_proxy.clone()
            } else {
                per_address.clone()
            }
        }),
        body_timeout: b.body_timeout,
        ..server::Limits::default()
    }
}

/// Binds and starts serving; returns at once.
pub fn start(
    cfg: ServeConfig,
    users: Users,
    server_tokens: Vec<String>,
    enumeration: EnumerationSettings,
) -> Result<Running, String> {
    let addr: SocketAddr = if cfg.host == "localhost" {
        SocketAddr::from(([127, 0, 0, 1], cfg.port))
    } else {
        let ip: IpAddr = cfg
            .host
            .parse()
            .map_err(|_| format!("--host {} is not an IP address", cfg.host))?;
        SocketAddr::new(ip, cfg.port)
    };
    let listener =
        crate::net::listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?
        .port();
    let app = Arc::new(App::new(cfg, port, users, server_tokens, enumeration)?);
    let handler_app = app.clone();
    let handler: server::Handler = Arc::new(move |req| handler_app.handle(req));
    let limits = connection_limits(&app.cfg, &app.trusted);
    let server = server::Server::start(listener, limits, handler)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let guard_app = app.clone();
    let sweeper = app
        .sessions
        .start_sweeper(Box::new(move |now| {
            guard_app.rate.sweep(now);
            guard_app.user_rate.sweep(now);
            guard_app.session_rate.sweep(now);
            guard_app.verdicts.sweep(now);
            guard_app.enumeration.sweep(now);
            if let Some(o) = &guard_app.oauth {
                o.sweep();
            }
        }))
        .map_err(|e| format!("cannot start the session sweeper: {e}"))?;
    Ok(Running {
        app,
        server,
        sweeper: Some(sweeper),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Command;

    fn app(args: &[&str]) -> App {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let Ok(Command::Serve(cfg)) =
            crate::config::parse(all.iter().map(std::ffi::OsString::from).collect(), &|_| {
                None
            })
        else {
            panic!("serve options did not parse")
        };
        let users = Users {
            by_slug: HashMap::new(),
            warnings: Vec::new(),
        };
        App::new(cfg, 8000, users, vec![], EnumerationSettings::default()).unwrap()
    }

    #[test]
    fn the_kimai_client_cache_stays_bounded_whatever_urls_arrive() {
        let app = app(&["--allowed-kimai-url", "*"]);
        let tls = app.cfg.tls.clone();
        let mut held = Vec::new();
        for i in 0..(MAX_CACHED_CLIENTS + 500) {
            let c = app
                .client(&format!("http://10.0.{}.{}:8001", i / 250, i % 250), &tls)
                .unwrap();
            // The first ones stay in use (as by open sessions); the rest are dropped at once.
            if i < 10 {
                held.push(c);
            }
        }
        assert!(app.cached_clients() <= MAX_CACHED_CLIENTS);
        // Clients in use are kept; a cached URL gives the same client.
        let again = app.client("http://10.0.0.0:8001", &tls).unwrap();
        assert!(Arc::ptr_eq(&again, &held[0]));
    }

    #[test]
    fn only_configured_kimai_urls_are_allowed_by_default() {
        let app = app(&["--default-kimai-url", "https://kimai.example.com/api"]);
        assert!(app.kimai_url_allowed("https://kimai.example.com"));
        assert!(!app.kimai_url_allowed("http://127.0.0.1:6379"));
        let app = app_with_list();
        assert!(app.kimai_url_allowed("http://10.1.1.1:8001"));
        assert!(app.kimai_url_allowed("https://b.example.com"));
        assert!(!app.kimai_url_allowed("https://c.example.com"));
    }

    fn app_with_list() -> App {
        app(&[
            "--allowed-kimai-url",
            "http://10.1.1.1:8001,https://b.example.com",
        ])
    }
}
