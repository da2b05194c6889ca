//! The shared state store of `serve --state redis://…` (design §4, issue 21): a Redis or Valkey
//! server that several instances share, so that any instance serves any Streamable HTTP session
//! and the limits hold for all instances together.
//!
//! This module owns the connection to it: a small pool of synchronous connections
//! (`Mutex<Vec<Connection>>`, taken for one operation and given back), connect, read and write
//! timeouts, reconnection after any error, and the one log line that says the store cannot be
//! reached (at most every [`COMPLAIN_EVERY`]). What is kept there, each with Redis's own expiry
//! and never a secret in clear, is in the two rooms: `sessions` (Streamable HTTP session
//! records and the per-credential and global session caps) and `limits` (rate limits, the
//! unknown-slug counters and the leases of tool calls in flight). Every change that reads and
//! writes is one Lua script, so two instances never interleave inside it; time is the store's
//! clock (`TIME`), so the instances' clocks need not agree.
//!
//! The key for credential fingerprints is shared too: a random 256-bit key set once with
//! `SET NX` by the first instance to start ([`Store::fingerprint_key`]). Whoever can read the
//! store can read it; fingerprints are HMACs of high-entropy secrets (slugs, tokens), so the key
//! lets nobody recover one, but the store must be protected like the users file.
//!
//! Threads: any connection thread calls in; the pool's lock is held only to take or give back
//! a connection, never during the network round trip. Standalone Redis/Valkey only (the
//! scripts touch keys they derive, which a cluster would not allow).

mod limits;
mod oauth;
mod sessions;
#[cfg(test)]
pub mod testing;
mod throttle;

pub use limits::LeaseId;
pub use oauth::{NewGrant, Pair, Redeemed, Rotated, rotated_grant, rotated_subject};
pub use sessions::{Created, Record};
pub use throttle::SignInRule;

use crate::config::state::StateConfig;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long connecting to the store may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command's request and answer may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept for reuse (more are closed after use).
pub const MAX_IDLE: usize = 16;
/// After a failed connect, operations fail at once for this long instead of each waiting for
/// its own connect (a store that is down costs a request nothing).
pub const FAIL_FAST: Duration = Duration::from_millis(500);
/// The "unreachable" log line at most this often.
pub const COMPLAIN_EVERY: Duration = Duration::from_secs(10);

/// Every key of ours starts with this.
const PREFIX: &str = "kimai-mcp:";

/// The store could not be used (down, timed out, refused our password, answered an error).
/// The line that says why is logged by the store itself; callers answer 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the shared state store is unreachable")
    }
}

impl std::error::Error for Unreachable {}

/// The connection to the shared state store.
pub struct Store {
    client: redis::Client,
    idle: Mutex<Vec<redis::Connection>>,
    /// `scheme://host:port/db`, for logs (never a password).
    shown: String,
    /// Set when a connect failed: until then, fail at once.
    down_until: Mutex<Option<Instant>>,
    /// When the last "unreachable" line was logged.
    complained: Mutex<Option<Instant>>,
    /// Set by a failure, cleared (with a "reachable again" line) by the next success.
    failing: AtomicBool,
    scripts: Scripts,
}

/// The Lua scripts, loaded once per server (`EVALSHA`, `EVAL` on a store that forgot them).
struct Scripts {
    session_create: redis::Script,
    session_get: redis::Script,
    session_update: redis::Script,
    session_end: redis::Script,
    session_count: redis::Script,
    rate_take: redis::Script,
    miss: redis::Script,
    lease_take: redis::Script,
    lease_count: redis::Script,
    oauth: OAuthScripts,
}

/// The scripts of the authorization server's tables (`oauth`).
struct OAuthScripts {
    client_put: redis::Script,
    client_touch: redis::Script,
    window_count: redis::Script,
    request_open: redis::Script,
    request_take: redis::Script,
    request_fail: redis::Script,
    code_redeem: redis::Script,
    grant_issue: redis::Script,
    rotate: redis::Script,
    grant_revoke: redis::Script,
    grant_reissue: redis::Script,
    sign_in_begin: redis::Script,
    sign_in_finish: redis::Script,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// A store for `cfg`; connects lazily (see [`Store::fingerprint_key`] for the first use).
    pub fn open(cfg: &StateConfig) -> Result<Store, String> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(cfg.url())
            .map_err(|_| format!("{} is not a usable Redis URL", cfg.shown))?;
        if let Some(pw) = cfg.password() {
            let settings = info.redis_settings().clone().set_password(pw);
            info = info.set_redis_settings(settings);
        }
        let client = match &cfg.ca_pem {
            // rediss:// with a private CA: trust only its certificates.
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
        .map_err(|e| format!("the state store {} cannot be used: {e}", cfg.shown))?;
        Ok(Store {
            client,
            idle: Mutex::new(Vec::new()),
            shown: cfg.shown.clone(),
            down_until: Mutex::new(None),
            complained: Mutex::new(None),
            failing: AtomicBool::new(false),
            scripts: Scripts {
                session_create: script(sessions::CREATE),
                session_get: script(sessions::GET),
                session_update: script(sessions::UPDATE),
                session_end: script(sessions::END),
                session_count: script(sessions::COUNT),
                rate_take: script(limits::RATE_TAKE),
                miss: script(limits::MISS),
                lease_take: script(limits::LEASE_TAKE),
                lease_count: script(limits::LEASE_COUNT),
                oauth: OAuthScripts {
                    client_put: script(oauth::CLIENT_PUT),
                    client_touch: script(oauth::CLIENT_TOUCH),
                    window_count: script(oauth::WINDOW_COUNT),
                    request_open: script(&oauth::with_request_fns(oauth::REQUEST_OPEN)),
                    request_take: script(&oauth::with_request_fns(oauth::REQUEST_TAKE)),
                    request_fail: script(&oauth::with_request_fns(oauth::REQUEST_FAIL)),
                    code_redeem: script(&oauth::with_revoke(oauth::CODE_REDEEM)),
                    grant_issue: script(&oauth::with_revoke(oauth::GRANT_ISSUE)),
                    rotate: script(&oauth::with_revoke(oauth::ROTATE)),
                    grant_revoke: script(&oauth::with_revoke(oauth::GRANT_REVOKE)),
                    grant_reissue: script(oauth::GRANT_REISSUE),
                    sign_in_begin: script(throttle::BEGIN),
                    sign_in_finish: script(throttle::FINISH),
                },
            },
        })
    }

    /// `scheme://host:port/db` (no password), for logs and `/health`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection (or a new one). A pooled connection that fails with an
    /// I/O error (the store restarted, a proxy closed it) is dropped and `f` tried once more on
    /// a new one; any other failure drops the connection too, logs (rate limited) and is
    /// [`Unreachable`].
    fn run<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Unreachable> {
        if lock(&self.down_until).is_some_and(|t| Instant::now() < t) {
            return Err(Unreachable);
        }
        // (A statement of its own: the pool's lock must not live on into the block.)
        let pooled = lock(&self.idle).pop();
        if let Some(mut conn) = pooled {
            match f(&mut conn) {
                Ok(v) => {
                    self.recovered();
                    self.give_back(conn);
                    return Ok(v);
                }
                Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                    // Other idle connections are likely as stale: drop them all, and try
                    // once on a new one.
                    lock(&self.idle).clear();
                }
                Err(e) => {
                    self.complain(what, &e);
                    return Err(Unreachable);
                }
            }
        }
        let mut conn = match self.connect() {
            Ok(c) => c,
            Err(e) => {
                *lock(&self.down_until) = Some(Instant::now() + FAIL_FAST);
                self.complain(what, &e);
                return Err(Unreachable);
            }
        };
        match f(&mut conn) {
            Ok(v) => {
                self.recovered();
                self.give_back(conn);
                Ok(v)
            }
            Err(e) => {
                self.complain(what, &e);
                Err(Unreachable)
            }
        }
    }

    /// After a success: one line if the store had failed, and the next failure is logged at
    /// once.
    fn recovered(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            *lock(&self.complained) = None;
            log::info!("shared state {}: reachable again", self.shown);
        }
    }

    fn give_back(&self, conn: redis::Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// One line, at most every [`COMPLAIN_EVERY`]: what failed and what follows. The client's
    /// error text names the failure (refused, timed out, WRONGPASS), never the password.
    fn complain(&self, what: &str, e: &redis::RedisError) {
        self.failing.store(true, Ordering::Relaxed);
        let now = Instant::now();
        {
            let mut last = lock(&self.complained);
            if last.is_some_and(|t| now.duration_since(t) < COMPLAIN_EVERY) {
                return;
            }
            *last = Some(now);
        }
        log::error!(
            "shared state {}: {what} failed: {e}; requests that need the store are answered 503 until it is back (this line at most every {} s)",
            self.shown,
            COMPLAIN_EVERY.as_secs()
        );
    }

    /// Whether the store answers `PING` now (for `/health`).
    pub fn ping(&self) -> bool {
        self.run("PING", |c| redis::cmd("PING").query::<String>(c))
            .is_ok()
    }

    /// The key of credential fingerprints shared by every instance: set once (`SET NX`) to 256
    /// random bits by whichever instance starts first, then read by all.
    pub fn fingerprint_key(&self) -> Result<[u8; 32], String> {
        let key = format!("{PREFIX}fingerprint-key");
        let candidate = crate::secret::random_hex::<32>()?;
        let hex = self
            .run("reading the fingerprint key", |c| {
                let _: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&candidate)
                    .arg("NX")
                    .query(c)?;
                redis::cmd("GET").arg(&key).query::<String>(c)
            })
            .map_err(|_| {
                format!(
                    "the shared state store {} cannot be reached (see the line above); an instance with --state starts only when it can read the shared key",
                    self.shown
                )
            })?;
        let mut out = [0u8; 32];
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(format!(
                "the shared state store {} holds a malformed {key}; delete it (every session then ends) and start again",
                self.shown
            ));
        }
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("the shared state store holds a malformed {key}"))?;
        }
        Ok(out)
    }
}

/// A script that starts by reading the store's clock ([`NOW_MS`]).
fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{NOW_MS}{body}"))
}

/// `Duration` as whole milliseconds for the scripts (at least 1: 0 would mean "no expiry").
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The Lua lines that read the store's clock: `now` in milliseconds.
const NOW_MS: &str = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";
