//! [`Memo`]: a small, short-lived cache of values derived from Kimai reads, per Kimai token.
//!
//! The tools read a few lists only to put names to ids (projects, activities, users, customers
//! for statistics and team analyses). Those lists change rarely, and a central server would
//! otherwise read them again for every call of every person. The memo keeps what a tool made
//! of them for [`MEMO_TTL`](super::MEMO_TTL), at most [`MAX_MEMO_ENTRIES`](super::MAX_MEMO_ENTRIES)
//! entries (the oldest go first), per token rather than per session: stateless requests
//! (MCP 2026-07-28) have no session, and every session of one person shares the token.
//!
//! Keys are a SHA-256 digest of (Kimai base URL, token) plus the kind of value: the token itself
//! is never kept, and what one token may see is never shown to another. Values are opaque to
//! this layer (`Arc<dyn Any>`, typed by the caller), so the Kimai client does not learn what
//! the tools cache.
//!
//! Threads: any worker; one short mutex around the map, never held across a Kimai call.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (digest of base URL and token, kind of value).
type Key = ([u8; 32], &'static str);

struct Entry {
    stored: Instant,
    value: Arc<dyn Any + Send + Sync>,
}

/// The cache; see the module header.
pub struct Memo {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Memo {
    pub fn new(ttl: Duration, max_entries: usize) -> Memo {
        Memo {
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key for `token` at the Kimai `base` URL and the kind of value.
    pub fn key(base: &str, token: &str, kind: &'static str) -> Key {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(base.as_bytes());
        // A separator that can occur in neither, so that no (URL, token) pair collides with
        // another by shifting bytes from one to the other.
        ctx.update(b"\n");
        ctx.update(token.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ctx.finish().as_ref());
        (digest, kind)
    }

    /// The value stored under `key`, if it is younger than the TTL and of type `T`.
    pub fn get<T: Any + Send + Sync>(&self, key: &Key) -> Option<Arc<T>> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.get(key)?;
        if e.stored.elapsed() >= self.ttl {
            return None;
        }
        e.value.clone().downcast::<T>().ok()
    }

    /// Stores `value` under `key` (replacing an older one). When the memo is full, expired
    /// entries go first, then the oldest.
    pub fn put<T: Any + Send + Sync>(&self, key: Key, value: Arc<T>) {
        if self.max_entries == 0 || self.ttl.is_zero() {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            let ttl = self.ttl;
            map.retain(|_, e| e.stored.elapsed() < ttl);
            while map.len() >= self.max_entries {
                let Some(oldest) = map.iter().min_by_key(|(_, e)| e.stored).map(|(k, _)| *k) else {
                    break;
                };
                map.remove(&oldest);
            }
        }
        map.insert(
            key,
            Entry {
                stored: Instant::now(),
                value,
            },
        );
    }

    /// Entries held now (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_per_token_and_kind_for_the_ttl() {
        let m = Memo::new(Duration::from_secs(60), 8);
        let a = Memo::key("https://k.example", "token-a", "projects");
        let b = Memo::key("https://k.example", "token-b", "projects");
        m.put(a, Arc::new(vec![1u8, 2]));
        assert_eq!(m.get::<Vec<u8>>(&a).as_deref(), Some(&vec![1, 2]));
        assert!(m.get::<Vec<u8>>(&b).is_none(), "another token sees nothing");
        assert!(m.get::<String>(&a).is_none(), "another type is no hit");
        assert!(
            m.get::<Vec<u8>>(&Memo::key("https://k.example", "token-a", "users"))
                .is_none()
        );
        // Another Kimai with the same token is another key; so is a shifted boundary.
        assert_ne!(a, Memo::key("https://other.example", "token-a", "projects"));
        assert_ne!(
            Memo::key("ab", "c", "x"),
            Memo::key("a", "bc", "x"),
            "the separator keeps URL and token apart"
        );
        // The key holds a digest, not the token.
        assert!(!format!("{a:?}").contains("token-a"));
    }

    #[test]
    fn entries_expire_and_the_oldest_make_room() {
        let m = Memo::new(Duration::from_millis(30), 2);
        let k = |t: &str| Memo::key("u", t, "k");
        m.put(k("1"), Arc::new(1u32));
        std::thread::sleep(Duration::from_millis(2));
        m.put(k("2"), Arc::new(2u32));
        m.put(k("3"), Arc::new(3u32));
        assert_eq!(m.len(), 2);
        assert!(m.get::<u32>(&k("1")).is_none(), "the oldest went first");
        assert_eq!(m.get::<u32>(&k("3")).as_deref(), Some(&3));
        std::thread::sleep(Duration::from_millis(40));
        assert!(m.get::<u32>(&k("3")).is_none(), "expired");
        let off = Memo::new(Duration::ZERO, 2);
        off.put(k("1"), Arc::new(1u32));
        assert!(off.is_empty(), "a zero TTL keeps nothing");
    }
}
