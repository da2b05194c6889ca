//! The session table shared by the HTTP transports (design §4): a mutex-guarded map from
//! session id to [`Session`], with a sliding TTL and a capacity.
//!
//! A session holds what its requests need: the MCP lifecycle state (`dispatch::Connection`),
//! the Kimai account it acts as, an audit label, and a fingerprint of the credentials that
//! created it, so that a request carrying another user's credentials can never use it. Ids are
//! 128 random bits (hex) from the OS. Locks are held only to look up, insert or remove; never
//! across a Kimai call or a socket write. A sweeper thread (`session-sweeper`) removes sessions
//! idle longer than the TTL.

use crate::dispatch::Connection;
use crate::kimai::Account;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the sweeper looks for expired sessions (at most; a shorter TTL sweeps faster).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Which transport a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Streamable,
    Sse,
}

/// One client session.
pub struct Session {
    pub id: String,
    pub transport: Transport,
    pub conn: Connection,
    pub backend: Account,
    /// For audit lines: `session=<8 hex> user=<label>`; never a token or slug.
    pub label: String,
    /// A digest of the credentials that created the session (see `fingerprint`).
    pub owner: [u8; 32],
    /// Created through a `users.json` slug (ends when that user is removed on reload).
    pub via_slug: bool,
    /// Legacy SSE: where responses and notifications for the open stream go.
    pub stream: Option<std::sync::mpsc::Sender<serde_json::Value>>,
    last_used: Mutex<Instant>,
}

impl Session {
    pub fn new(
        transport: Transport,
        backend: Account,
        user_label: &str,
        owner: [u8; 32],
    ) -> Result<Session, String> {
        let id = new_id()?;
        let label = format!("session={} user={user_label}", &id[..8]);
        Ok(Session {
            id,
            transport,
            conn: Connection::new(),
            backend,
            label,
            owner,
            via_slug: false,
            stream: None,
            last_used: Mutex::new(Instant::now()),
        })
    }

    /// A Streamable HTTP session whose record is in the shared state store, as this instance
    /// holds it while serving it: its id and label as stored, its lifecycle state restored
    /// from the record, the account of the caller whose credentials matched its owner.
    pub fn restored(
        id: String,
        conn: Connection,
        backend: Account,
        label: String,
        owner: [u8; 32],
    ) -> Session {
        Session {
            id,
            transport: Transport::Streamable,
            conn,
            backend,
            label,
            owner,
            via_slug: false,
            stream: None,
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Marks a session created through a `users.json` slug.
    pub fn via_slug(mut self, yes: bool) -> Session {
        self.via_slug = yes;
        self
    }

    /// The session with an SSE stream channel (legacy HTTP+SSE transport).
    pub fn with_stream(mut self, tx: std::sync::mpsc::Sender<serde_json::Value>) -> Session {
        self.stream = Some(tx);
        self
    }

    /// The first 8 hex characters, for logs.
    pub fn short_id(&self) -> &str {
        // Past the instance prefix, if any (`<instance>.<32 hex>`).
        let random = self.id.rsplit('.').next().unwrap_or(&self.id);
        random.get(..8).unwrap_or(random)
    }

    fn touch(&self, now: Instant) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*self.last_used.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// 128 random bits as 32 lowercase hex characters.
pub fn new_id() -> Result<String, String> {
    crate::secret::random_hex::<16>()
}

/// A one-way digest of credentials, to bind a session (and the per-credential limits) to them
/// without keeping them around in a comparable form: HMAC-SHA256 under a per-process random
/// key, so that nobody without the key can find other credentials with the same digest. The
/// parts are separated by a 0xff byte, which UTF-8 text never contains.
pub fn fingerprint(key: &[u8; 32], parts: &[&str]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0xff]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Why a session could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The table is full: answer 503 with `Retry-After`.
    Full,
    Random(String),
}

struct Inner {
    map: HashMap<String, Arc<Session>>,
}

/// The session table.
pub struct SessionTable {
    inner: Mutex<Inner>,
    /// `--instance-id`: prefixed to every id (`<instance>.<hex>`) so that a proxy in front of
    /// several instances can route a session's requests to the instance that holds it.
    prefix: String,
    max: usize,
    /// Sessions one credential may hold (`--max-sessions-per-user`); a new one beyond it ends
    /// that credential's least recently used session.
    per_owner: usize,
    ttl: Duration,
    stop: Mutex<bool>,
    wake: Condvar,
    stopped: AtomicBool,
}

impl SessionTable {
    pub fn new(max: usize, ttl: Duration) -> Arc<SessionTable> {
        SessionTable::with_prefix(max, ttl, "")
    }

    /// A table whose session ids start with `prefix.` (empty: no prefix).
    pub fn with_prefix(max: usize, ttl: Duration, prefix: &str) -> Arc<SessionTable> {
        Arc::new(SessionTable {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
            }),
            prefix: prefix.to_string(),
            max,
            per_owner: usize::MAX,
            ttl,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
        })
    }

    /// The same table with at most `n` sessions per credential (see [`SessionTable::insert`]).
    pub fn with_per_owner(max: usize, ttl: Duration, prefix: &str, n: usize) -> Arc<SessionTable> {
        let mut t = SessionTable::with_prefix(max, ttl, prefix);
        if let Some(t) = Arc::get_mut(&mut t) {
            t.per_owner = n.max(1);
        }
        t
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Adds a session unless the table is full (expired sessions are swept first). A credential
    /// that already holds its share of sessions loses its least recently used one: a person
    /// whose clients forgot to end their sessions keeps working, and one credential can never
    /// hold more than its share of the table. (Refusing instead would lock that person out
    /// until the TTL ran out.)
    pub fn insert(&self, mut session: Session) -> Result<Arc<Session>, Refused> {
        if !self.prefix.is_empty() {
            session.id = format!("{}.{}", self.prefix, session.id);
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let ttl = self.ttl;
        let mine: Vec<(Duration, String)> = inner
            .map
            .values()
            .filter(|s| s.owner == session.owner)
            .map(|s| (s.idle(now), s.id.clone()))
            .collect();
        let mut ended = Vec::new();
        if mine.len() >= self.per_owner {
            let mut mine = mine;
            // Most idle first.
            mine.sort_by_key(|m| std::cmp::Reverse(m.0));
            for (_, id) in mine.iter().take(mine.len() + 1 - self.per_owner) {
                ended.extend(inner.map.remove(id));
            }
        }
        if inner.map.len() >= self.max {
            inner.map.retain(|_, s| s.idle(now) < ttl);
        }
        if inner.map.len() >= self.max {
            return Err(Refused::Full);
        }
        let s = Arc::new(session);
        inner.map.insert(s.id.clone(), s.clone());
        drop(inner);
        for e in ended {
            log::info!(
                "Ended client session {}: its user opened more than {} sessions (--max-sessions-per-user)",
                e.short_id(),
                self.per_owner
            );
        }
        Ok(s)
    }

    /// Sessions held by this credential now.
    pub fn count_owned(&self, owner: &[u8; 32]) -> usize {
        self.lock()
            .map
            .values()
            .filter(|s| &s.owner == owner)
            .count()
    }

    /// The live session with this id, touched (sliding TTL); `None` if unknown or expired.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let s = inner.map.get(id)?.clone();
        if s.idle(now) >= self.ttl {
            inner.map.remove(id);
            return None;
        }
        s.touch(now);
        Some(s)
    }

    /// Whether the session is still in the table (without touching it).
    pub fn contains(&self, id: &str) -> bool {
        self.lock().map.contains_key(id)
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().map.remove(id)
    }

    /// Removes every session for which `drop` says so (e.g. users gone from users.json).
    pub fn retain(&self, keep: impl Fn(&Session) -> bool) -> usize {
        let mut inner = self.lock();
        let before = inner.map.len();
        inner.map.retain(|_, s| keep(s));
        before - inner.map.len()
    }

    /// Sessions now, by transport.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let sse = inner
            .map
            .values()
            .filter(|s| s.transport == Transport::Sse)
            .count();
        (inner.map.len() - sse, sse)
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes expired sessions; returns them (for "Cleaned up" log lines).
    pub fn sweep(&self, now: Instant) -> Vec<Arc<Session>> {
        let ttl = self.ttl;
        let mut inner = self.lock();
        let expired: Vec<String> = inner
            .map
            .iter()
            .filter(|(_, s)| s.idle(now) >= ttl)
            .map(|(k, _)| k.clone())
            .collect();
        expired.iter().filter_map(|k| inner.map.remove(k)).collect()
    }

    /// Starts the sweeper thread; `extra` runs on every sweep (guard maintenance).
    pub fn start_sweeper(
        self: &Arc<Self>,
        extra: Box<dyn Fn(Instant) + Send>,
    ) -> std::io::Result<JoinHandle<()>> {
        let table = self.clone();
        let interval = SWEEP_INTERVAL
            .min(self.ttl / 2)
            .max(Duration::from_millis(50));
        std::thread::Builder::new()
            .name("session-sweeper".into())
            .spawn(move || {
                loop {
                    {
                        let stop = table.stop.lock().unwrap_or_else(|e| e.into_inner());
                        let (stop, _) = table
                            .wake
                            .wait_timeout(stop, interval)
                            .unwrap_or_else(|e| e.into_inner());
                        if *stop {
                            return;
                        }
                    }
                    let now = Instant::now();
                    for s in table.sweep(now) {
                        log::info!("Cleaned up client session {}", s.short_id());
                    }
                    extra(now);
                }
            })
    }

    /// Stops the sweeper (it exits at once).
    pub fn stop_sweeper(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.wake.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(
            Transport::Streamable,
            crate::kimai::Account::offline_for_tests(),
            "u",
            [0; 32],
        )
        .unwrap()
    }

    #[test]
    fn ids_are_random_hex() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn capacity_ttl_and_sweep() {
        let t = SessionTable::new(2, Duration::from_millis(200));
        let a = t.insert(session()).unwrap();
        let _b = t.insert(session()).unwrap();
        assert_eq!(t.insert(session()).err(), Some(Refused::Full));
        assert!(t.get(&a.id).is_some());
        std::thread::sleep(Duration::from_millis(250));
        // Expired sessions are gone and free their place.
        assert!(t.get(&a.id).is_none());
        assert!(t.insert(session()).is_ok());
        assert_eq!(t.sweep(Instant::now() + Duration::from_secs(1)).len(), 2);
        assert!(t.is_empty());
    }

    fn owned(owner: u8) -> Session {
        Session::new(
            Transport::Streamable,
            crate::kimai::Account::offline_for_tests(),
            "u",
            [owner; 32],
        )
        .unwrap()
    }

    #[test]
    fn a_credential_holds_its_share_and_loses_its_least_recently_used_session() {
        let t = SessionTable::with_per_owner(100, Duration::from_secs(60), "", 3);
        let first = t.insert(owned(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let second = t.insert(owned(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let third = t.insert(owned(1)).unwrap();
        let other = t.insert(owned(2)).unwrap();
        // The oldest is used again, so the second becomes the least recently used.
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.get(&first.id).is_some());
        let fourth = t.insert(owned(1)).unwrap();
        assert_eq!(t.count_owned(&[1; 32]), 3);
        assert!(t.contains(&first.id) && t.contains(&third.id) && t.contains(&fourth.id));
        assert!(!t.contains(&second.id));
        // Another credential's session is untouched by all of it.
        for _ in 0..10 {
            t.insert(owned(1)).unwrap();
        }
        assert!(t.contains(&other.id));
        assert_eq!(t.count_owned(&[1; 32]), 3);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn fingerprints_tell_credentials_apart() {
        let key = [7u8; 32];
        assert_eq!(
            fingerprint(&key, &["a", "b"]),
            fingerprint(&key, &["a", "b"])
        );
        assert_ne!(
            fingerprint(&key, &["a", "b"]),
            fingerprint(&key, &["ab", ""])
        );
        assert_ne!(fingerprint(&key, &["a"]), fingerprint(&[8u8; 32], &["a"]));
    }
}
