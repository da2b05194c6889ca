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
pub mod server;
mod sse;
mod streamable;

use crate::config::ServeConfig;
use crate::config::users::Users;
use crate::dispatch::Dispatcher;
use crate::guard::{
    self, EnumerationGuard, EnumerationSettings, OriginPolicy, RateLimiter, TrustedProxies,
};
use crate::kimai::{self, Tls};
use crate::session::{SessionTable, fingerprint};
use crate::tools::Backend;
use serde_json::{Value, json};
use server::{Handled, Request, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What a handler step returns: a finished reply.
pub type Reply = Handled;

/// Per-request facts the guards established.
pub struct Ctx {
    pub ip: IpAddr,
    pub started: Instant,
}

/// Limits the work done at once (tool calls wait their turn instead of piling up threads on
/// Kimai).
pub struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

/// How long a request waits for a free worker slot before it gets 503.
pub const SLOT_WAIT: Duration = Duration::from_secs(30);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    /// Runs `f` in a slot, or returns `None` when none freed up in time.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        {
            let guard = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let (mut free, timeout) = self
                .cv
                .wait_timeout_while(guard, SLOT_WAIT, |n| *n == 0)
                .unwrap_or_else(|e| e.into_inner());
            if timeout.timed_out() && *free == 0 {
                return None;
            }
            *free -= 1;
        }
        struct Release<'a>(&'a Slots);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                self.0.cv.notify_one();
            }
        }
        let _release = Release(self);
        Some(f())
    }
}

/// The server's shared state.
pub struct App {
    pub cfg: ServeConfig,
    pub users: RwLock<Arc<Users>>,
    pub server_tokens: RwLock<Vec<String>>,
    pub sessions: Arc<SessionTable>,
    clients: Mutex<HashMap<(String, Tls), Arc<kimai::Client>>>,
    pub rate: RateLimiter,
    pub enumeration: EnumerationGuard,
    pub origin: OriginPolicy,
    pub trusted: TrustedProxies,
    /// Key for credential fingerprints (random per process).
    pub fp_key: [u8; 32],
    pub dispatcher: Dispatcher,
    pub slots: Slots,
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
        Ok(App {
            sessions: SessionTable::with_prefix(
                cfg.max_sessions,
                cfg.session_ttl,
                cfg.instance_id.as_deref().unwrap_or(""),
            ),
            rate: RateLimiter::new(cfg.rate_limit_rpm),
            enumeration: EnumerationGuard::new(enumeration),
            slots: Slots::new(cfg.workers),
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

    /// The shared Kimai client for a URL and TLS setting (one connection pool each).
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
        Ok(map.entry(key).or_insert(c).clone())
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
        let ctx = Ctx { ip, started };
        let method = req.method.clone();
        let logged_path = logged_path(&req.path);
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
        self.metrics.request(endpoint_name(&logged_path), status);
        log::info!(
            target: "kimai_mcp::access",
            "{ip} {method} {logged_path} {status} {}ms",
            started.elapsed().as_millis()
        );
        out
    }

    fn route(self: &Arc<Self>, ctx: &Ctx, req: Request, peer: IpAddr) -> Result<Reply, Reply> {
        let now = Instant::now();
        if let Err(wait) = self.rate.check(ctx.ip, now) {
            self.metrics.rate_limited();
            return Err(too_many(
                wait,
                "Too many requests from this address; slow down",
            ));
        }
        let path = req.path.clone();
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let slug_route = matches!(segs.as_slice(), ["mcp", s] if !s.is_empty());
        if slug_route && let Err(wait) = self.enumeration.check(ctx.ip, now) {
            self.metrics.enumeration_blocked();
            return Err(too_many(
                wait,
                "Too many unknown addresses from this client; try again later",
            ));
        }
        if let Err(why) = self.origin.check_host(req.header("Host")) {
            return Err(json_error(403, -32000, &format!("Forbidden: {why}")));
        }
        let oauth_path = oauth::is_oauth_path(&segs);
        // The authorization server's JSON endpoints answer any origin; its form checks its own.
        if !oauth_path && let Err(why) = self.origin.check_origin(req.header("Origin")) {
            return Err(json_error(403, -32000, &format!("Forbidden: {why}")));
        }
        let health = segs.as_slice() == ["health"];
        if self.cfg.require_https
            && !health
            && !guard::is_https(peer, req.header("X-Forwarded-Proto"), &self.trusted)
        {
            return Err(json_error(
                403,
                -32000,
                "Forbidden: this server requires HTTPS; connect through the TLS proxy (it must be a trusted proxy that sends X-Forwarded-Proto: https)",
            ));
        }
        if oauth_path {
            return oauth::route(self, ctx, &req, &segs);
        }
        match segs.as_slice() {
            ["mcp", s] if !s.is_empty() && self.cfg.disable_legacy_slugs => {
                Err(json_error(404, -32000, "Not Found"))
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
            _ => Err(json_error(404, -32000, "Not Found")),
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
                    -32000,
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

/// The route name for metrics (a fixed set, so label values stay few and never secret).
fn endpoint_name(logged_path: &str) -> &'static str {
    match logged_path {
        "/mcp" => "mcp",
        "/mcp/{slug}" => "mcp_slug",
        "/sse" => "sse",
        "/messages" | "/message" | "/messages/" => "messages",
        "/health" => "health",
        "/metrics" => "metrics",
        "/authorize" | "/token" | "/register" | "/revoke" | "/oauth/login" => "oauth",
        p if p.starts_with("/.well-known/") => "oauth_metadata",
        _ => "other",
    }
}

/// The path for the access log: a slug is never logged.
fn logged_path(path: &str) -> String {
    if path.starts_with("/mcp/") {
        "/mcp/{slug}".to_string()
    } else {
        path.chars().take(64).collect()
    }
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
            -32000,
            "Server at capacity: too many open sessions; try again later",
        ),
        "Retry-After",
        "30",
    )
}

pub fn too_many(wait: Duration, message: &str) -> Reply {
    let secs = wait.as_secs().max(1);
    with_header(
        json_error(429, -32000, message),
        "Retry-After",
        &secs.to_string(),
    )
}

pub fn method_not_allowed(allow: &str) -> Reply {
    with_header(
        json_error(405, -32000, &format!("Method Not Allowed: use {allow}")),
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
    let server = server::Server::start(listener, server::Limits::default(), handler)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let guard_app = app.clone();
    let sweeper = app
        .sessions
        .start_sweeper(Box::new(move |now| {
            guard_app.rate.sweep(now);
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
