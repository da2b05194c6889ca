//! `kimai-mcp serve`: the HTTP server that a whole company shares (design §3).
//!
//! Endpoints: Streamable HTTP on `/mcp/{slug}` (a user of `users.json`; the slug is the
//! credential) and on `/mcp` (server token in `Authorization`, the user's own Kimai token in
//! `X-Kimai-Token`, or an OAuth access token), the legacy SSE transport on `/sse` and
//! `/messages`, the OAuth endpoints with `--public-url`, `/health` and `/metrics`. Every
//! request passes the guards in the design's order — client address (trusted proxies only) →
//! canonical path → rate limit → enumeration block → Host/Origin → HTTPS requirement →
//! method/Accept/Content-Type → bounded body (in `server`) → authentication → session — each
//! an early return of a [`Handled`]; `handle` adds the security headers and writes one access
//! line (no query string, no slug).
//!
//! The rooms: `server` (the connection server: bounds per peer and in total, parsing, panics
//! contained), `app` (the shared state), `auth` (who a request acts as, and the per-credential
//! admission), `work` (calls in flight per credential and worker slots), `reply` (the layer's
//! own answers), `path` (canonical paths and what the log shows), then the endpoints:
//! `streamable`, `sse`, `oauth`. This file routes.
//!
//! Threads: connection threads (`server`) call [`App::handle`] concurrently; the session
//! sweeper (`session`) also maintains the guard tables. Shared state: the session table, the
//! guard counters and the Kimai client cache, each behind its own lock, held only to look up
//! or change an entry — never across a Kimai call or a socket write.
mod app;
mod auth;
mod error;
mod oauth;
mod oidc;
mod path;
mod reply;
pub mod server;
mod shared;
mod sse;
mod streamable;
mod work;

pub use app::{App, Ctx, MAX_CACHED_CLIENTS};
pub use error::Error;
pub use reply::{at_capacity, busy, json_error, method_not_allowed, too_many, with_header};

use crate::config::ServeConfig;
use crate::config::users::Users;
use crate::guard::{self, EnumerationSettings, TrustedProxies};
use crate::mcp::code;
use serde_json::json;
use server::{Handled, Request, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Routing: the guards in order, then the endpoint.
impl App {
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
        if (xff.is_some() || req.header("X-Real-IP").is_some())
            && !self.trusted.contains(peer)
            && app::Warned::first(&self.warned.untrusted_proxy)
        {
            // A reverse proxy that is not trusted makes every client one address: one rate
            // bucket and one enumeration count for the whole company, and --require-https
            // cannot see https. The peer is a proxy's address, not a secret.
            log::warn!(
                "a request from {peer} carries X-Forwarded-For or X-Real-IP, but {peer} is not a --trusted-proxy: the forwarded client address is ignored, so everyone behind it shares one address's limits (rate limit, unknown-slug guard, connections) and --require-https cannot see https. If {peer} is your reverse proxy, start the server with --trusted-proxy {peer} (KIMAI_MCP_TRUSTED_PROXIES). This is logged once."
            );
        }
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
            Handled::Respond(r) => (r.status, Handled::Respond(finish(r))),
            Handled::Stream(r, body) => (r.status, Handled::Stream(finish(r), body)),
        };
        self.metrics.request(endpoint, status);
        let ms = started.elapsed().as_millis() as u64;
        log::info!(
            target: "kimai_mcp::access",
            client = ip.to_string().as_str(),
            method = method.as_str(),
            path = logged_path.as_str(),
            status = status,
            duration_ms = ms;
            "{ip} {method} {logged_path} {status} {ms}ms"
        );
        out
    }

    fn route(self: &Arc<Self>, ctx: &Ctx, req: Request, peer: IpAddr) -> Result<Handled, Handled> {
        let now = Instant::now();
        if let Err(wait) = self.take_address_token(ctx.key, now) {
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
        if slug_route && let Err(wait) = self.enumeration_check(ctx.key, now) {
            self.metrics.enumeration_blocked();
            return Err(too_many(
                wait,
                "Too many unknown addresses from this client; try again later",
            ));
        }
        if let Err(why) = self.origin.check_host(req.header("Host")) {
            if app::Warned::first(&self.warned.host) {
                log::warn!("a request was refused with 403: {why} (logged once)");
            }
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
    fn metrics_page(&self, req: &Request) -> Result<Handled, Handled> {
        if req.method != "GET" {
            return Err(method_not_allowed("GET"));
        }
        let presented = auth::presented_token(req).filter(|p| !p.is_empty());
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
                    Handled::Respond(r) => {
                        Handled::Respond(r.header("WWW-Authenticate", "Bearer realm=\"mcp\""))
                    }
                    other => other,
                },
            );
        }
        let (streamable, sse) = self.sessions.counts();
        // With --state: the store's count, all instances (0 while it is unreachable).
        let streamable = match &self.state {
            Some(_) => self.streamable_count().unwrap_or(0),
            None => streamable,
        };
        let page = self
            .metrics
            .render(&[("streamable-http", streamable), ("sse", sse)]);
        Ok(Handled::Respond(
            Response::new(200).body("text/plain; version=0.0.4; charset=utf-8", page),
        ))
    }

    fn health(&self) -> Handled {
        let users = self.users();
        // With --state: the store's count of Streamable HTTP sessions (all instances) beside
        // this process's legacy SSE sessions; unreachable makes the status "degraded" (still
        // 200, and `kimai-mcp health` still succeeds: an orchestrator should not restart every
        // instance for a blip of the store).
        let shared = self.state.as_ref().map(|_| self.streamable_count());
        let active = match shared {
            Some(Some(n)) => n + self.sessions.counts().1,
            _ => self.sessions.len(),
        };
        let mut body = json!({
            // The Python server's words, which deployment checks look for.
            "status": "healthy",
            "version": crate::VERSION,
            "transport": "streamable-http",
            "transports": ["streamable-http", "sse"],
            "mode": if users.by_slug.is_empty() { "per-client-auth" } else { "multi-user" },
            "default_kimai_url": self.cfg.default_kimai_url,
            "active_sessions": active,
            "user_count": users.by_slug.len(),
            "oauth": self.oauth.is_some(),
        });
        if let Some(count) = shared {
            body["state"] = json!(if count.is_some() { "ok" } else { "unreachable" });
            if count.is_none() {
                body["status"] = json!("degraded");
            }
        }
        Handled::Respond(Response::new(200).body("application/json", body.to_string()))
    }
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
        self.app.attached.stop_sweeper();
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
) -> Result<Running, Error> {
    let addr: SocketAddr = if cfg.host == "localhost" {
        SocketAddr::from(([127, 0, 0, 1], cfg.port))
    } else {
        let ip: IpAddr = cfg
            .host
            .parse()
            .map_err(|_| Error::Setting(format!("--host {} is not an IP address", cfg.host)))?;
        SocketAddr::new(ip, cfg.port)
    };
    let listener = crate::net::listener(addr).map_err(|source| Error::Listen { addr, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?
        .port();
    let app = Arc::new(App::new(cfg, port, users, server_tokens, enumeration)?);
    let handler_app = app.clone();
    let handler: server::Handler = Arc::new(move |req| handler_app.handle(req));
    let limits = connection_limits(&app.cfg, &app.trusted);
    let server =
        server::Server::start(listener, limits, handler).map_err(|source| Error::Thread {
            what: "connection server",
            source,
        })?;
    let guard_app = app.clone();
    let sweeper = app
        .sessions
        .start_sweeper(Box::new(move |now| {
            guard_app.rate.sweep(now);
            guard_app.user_rate.sweep(now);
            guard_app.session_rate.sweep(now);
            guard_app.verdicts.sweep(now);
            guard_app.enumeration.sweep(now);
            guard_app.attached.sweep(now);
            if let Some(o) = &guard_app.oauth {
                o.sweep();
            }
            if let Some(o) = &guard_app.oidc {
                o.sweep();
            }
            // Provisioned users whose token Kimai refused: their grants end.
            if let (Some(p), Some(o)) = (&guard_app.provisioner, &guard_app.oauth)
                && p.take_forgotten()
            {
                o.retain_subjects(&|slug| guard_app.may_sign_in(slug));
            }
        }))
        .map_err(|source| Error::Thread {
            what: "session sweeper",
            source,
        })?;
    Ok(Running {
        app,
        server,
        sweeper: Some(sweeper),
    })
}
