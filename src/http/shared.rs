//! Where a limit or a Streamable HTTP session is kept: in this process, or with `--state` in
//! the shared store (`crate::state`) that every instance naming it uses. The guards and the
//! Streamable HTTP endpoint ask here and do not care which.
//!
//! When the store cannot be reached:
//! - the rate limits and the unknown-slug guard fall back to this instance's own counters (the
//!   same limits, held per instance until the store is back), so `/health` and everything else
//!   that needs no session keep answering;
//! - requests that need a session record or a call lease are answered 503 with `Retry-After`;
//!   the store logs one line at most every 10 s.
//!
//! Legacy SSE sessions stay in this process: their stream is a connection to this instance, so
//! a proxy must route `/messages?session_id=…` to it (`--instance-id`).

use super::app::App;
use super::auth::Caller;
use super::reply::{at_capacity, json_error, with_header};
use super::server::Handled;
use crate::dispatch::Connection;
use crate::guard::{self, CredentialKey, RateLimiter};
use crate::mcp::code;
use crate::session::{Refused, Session, Transport};
use crate::state::{Created, Record};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 503 for a request that needs the shared store while it is unreachable.
pub fn state_unreachable() -> Handled {
    with_header(
        json_error(
            503,
            code::SERVER_ERROR,
            "Service unavailable: the shared state store is unreachable; try again shortly",
        ),
        "Retry-After",
        "5",
    )
}

/// A wait as `Retry-After` says it: whole seconds, rounded up, at least one.
fn whole_seconds(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs).max(guard::MIN_RETRY_AFTER)
}

/// A session as this instance holds it, from its record in the store.
fn restore(id: &str, record: &Record, backend: &crate::kimai::Account) -> Session {
    Session::restored(
        id.to_string(),
        Connection::restored(
            record.version.as_deref(),
            record.initialized,
            record.client.clone(),
        ),
        backend.clone(),
        record.label.clone(),
        record.owner,
    )
}

/// A Streamable HTTP session found for a caller, with the record it came from (`--state`).
pub struct Found {
    pub session: Arc<Session>,
    record: Option<Record>,
}

impl App {
    /// One token of a bucket kept in the store under `kind`/`who`, with `limiter`'s rates;
    /// `local` (this instance's own bucket) without `--state` or while the store is away.
    fn take_shared<K: std::hash::Hash + Eq + Copy>(
        &self,
        limiter: &RateLimiter<K>,
        kind: &str,
        who: impl FnOnce() -> String,
        local: impl FnOnce() -> Result<(), Duration>,
    ) -> Result<(), Duration> {
        let (Some(store), Some((interval, capacity))) = (&self.state, limiter.rates()) else {
            return local();
        };
        match store.take_token(kind, &who(), interval, capacity) {
            Ok(taken) => taken.map_err(whole_seconds),
            Err(crate::state::Unreachable) => local(),
        }
    }

    /// `--rate-limit-rpm` for a client address (its limit key).
    pub(super) fn take_address_token(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = key.to_canonical();
        self.take_shared(
            &self.rate,
            "addr",
            || key.to_string(),
            || self.rate.check(key, now),
        )
    }

    /// `--user-rate-limit-rpm` for a credential.
    pub(super) fn take_user_token(
        &self,
        owner: CredentialKey,
        now: Instant,
    ) -> Result<(), Duration> {
        self.take_shared(
            &self.user_rate,
            "user",
            || crate::secret::hex(&owner),
            || self.user_rate.take(owner, now),
        )
    }

    /// `--session-rate-per-address` for a client address (its limit key).
    pub(super) fn take_session_token(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = key.to_canonical();
        self.take_shared(
            &self.session_rate,
            "new-session",
            || key.to_string(),
            || self.session_rate.check(key, now),
        )
    }

    /// `Err(retry_after)` while the unknown-slug guard blocks this address.
    pub(super) fn enumeration_check(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        if let Some(store) = &self.state
            && let Ok(blocked) = store.blocked(&key.to_canonical().to_string())
        {
            return match blocked {
                Some(wait) => Err(whole_seconds(wait)),
                None => Ok(()),
            };
        }
        self.enumeration.check(key, now)
    }

    /// Counts an unknown slug from this address; returns the delay to sleep before answering.
    pub(super) fn enumeration_miss(&self, key: IpAddr, now: Instant) -> Duration {
        if let Some(store) = &self.state {
            let s = self.enumeration.settings();
            let ip = key.to_canonical();
            if let Ok(blocked) = store.miss(&ip.to_string(), s.max_misses, s.window, s.block_for) {
                if blocked {
                    log::warn!(
                        "enumeration guard: {ip} blocked for {} s after more than {} unknown slugs in {} s (counted across the instances)",
                        s.block_for.as_secs(),
                        s.max_misses,
                        s.window.as_secs()
                    );
                }
                return self.enumeration.delay();
            }
        }
        self.enumeration.miss(key, now)
    }

    /// The Streamable HTTP session `id` if `caller` owns it (`None`: unknown, expired, ended
    /// or another's: the caller gets 404 either way).
    pub(super) fn streamable_session(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<Option<Found>, Handled> {
        let Some(store) = &self.state else {
            return Ok(self
                .sessions
                .get(id)
                .filter(|s| {
                    guard::ct_eq(&s.owner, &caller.owner) && s.transport == Transport::Streamable
                })
                .map(|session| Found {
                    session,
                    record: None,
                }));
        };
        let record = match store.session(id, self.cfg.session_ttl) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.attached.remove(id);
                return Ok(None);
            }
            Err(_) => return Err(state_unreachable()),
        };
        if !guard::ct_eq(&record.owner, &caller.owner) {
            return Ok(None);
        }
        if let Some(session) = self.attached.get(id).filter(|s| s.owner == record.owner) {
            return Ok(Some(Found {
                session,
                record: Some(record),
            }));
        }
        // First request of this session on this instance (or its entry here was swept).
        let session = match self.attached.insert(restore(id, &record, &caller.backend)) {
            Ok(s) => s,
            // Not remembered here (the table is full): served all the same.
            Err(_) => Arc::new(restore(id, &record, &caller.backend)),
        };
        Ok(Some(Found {
            session,
            record: Some(record),
        }))
    }

    /// After a request of a session: writes what it changed of the lifecycle state
    /// (`notifications/initialized`) to its record, so the next request on any instance sees it.
    pub(super) fn keep_lifecycle(&self, found: &Found) {
        let (Some(store), Some(before)) = (&self.state, &found.record) else {
            return;
        };
        let conn = &found.session.conn;
        let now = Record {
            owner: before.owner,
            version: conn.negotiated().map(str::to_string),
            initialized: conn.initialized(),
            client: conn.client_name(),
            label: before.label.clone(),
        };
        if &now != before {
            // A failure is logged by the store; the record keeps what it had.
            let _ = store.update_session(&found.session.id, &now);
        }
    }

    /// Ends a Streamable HTTP session (DELETE) on every instance.
    pub(super) fn end_streamable(&self, session: &Session) -> Result<(), Handled> {
        if let Some(store) = &self.state {
            store
                .end_session(&session.id)
                .map_err(|_| state_unreachable())?;
            self.attached.remove(&session.id);
            return Ok(());
        }
        self.sessions.remove(&session.id);
        Ok(())
    }

    /// Stores a Streamable HTTP session that `initialize` has just opened, under the session
    /// caps counted across the instances (`--max-sessions`, `--max-sessions-per-user`: the
    /// owner's least recently used sessions end to make room).
    pub(super) fn share_session(&self, mut session: Session) -> Result<Arc<Session>, Handled> {
        let Some(store) = &self.state else {
            return self.sessions.insert(session).map_err(|e| match e {
                Refused::Full => at_capacity(),
                Refused::Random(e) => {
                    json_error(500, code::INTERNAL_ERROR, &format!("Internal error: {e}"))
                }
            });
        };
        if let Some(prefix) = self.cfg.instance_id.as_deref() {
            session.id = format!("{prefix}.{}", session.id);
        }
        let record = Record {
            owner: session.owner,
            version: session.conn.negotiated().map(str::to_string),
            initialized: session.conn.initialized(),
            client: session.conn.client_name(),
            label: session.label.clone(),
        };
        let per_owner = self.cfg.bounds.max_sessions_per_user;
        let (id, backend) = (session.id.clone(), session.backend.clone());
        match store.create_session(
            &session.id,
            &record,
            self.cfg.session_ttl,
            per_owner,
            self.cfg.max_sessions,
        ) {
            Err(_) => Err(state_unreachable()),
            Ok(Created::Full) => Err(at_capacity()),
            Ok(Created::Yes { ended }) => {
                for gone in ended {
                    self.attached.remove(&gone);
                    let random = gone.rsplit('.').next().unwrap_or(&gone);
                    log::info!(
                        "Ended client session {}: its user opened more than {per_owner} sessions (--max-sessions-per-user)",
                        random.get(..8).unwrap_or(random)
                    );
                }
                // Its later requests on this instance share one lifecycle state.
                Ok(self
                    .attached
                    .insert(session)
                    .unwrap_or_else(|_| Arc::new(restore(&id, &record, &backend))))
            }
        }
    }

    /// Streamable HTTP sessions open: with `--state`, across the instances (`None` when the
    /// store is unreachable); else this process's.
    pub(super) fn streamable_count(&self) -> Option<usize> {
        match &self.state {
            Some(store) => store.session_count(self.cfg.session_ttl).ok(),
            None => Some(self.sessions.counts().0),
        }
    }
}
