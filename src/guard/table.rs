//! The bounded per-address table shared by the rate limiter and the enumeration guard
//! ([`ClientTable`]): at most a fixed number of entries, pruned at most once per
//! [`PRUNE_WHEN_FULL_INTERVAL`] when full, so an address-flooding attacker costs bounded memory
//! and bounded work. Also the helpers both share: recovering a poisoned lock and rounding a wait
//! the way `Retry-After` announces it.
//!
//! The table itself holds no lock; its owners keep it behind one `Mutex` each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses the rate limiter and the enumeration guard each track at most. A table entry is a
/// few dozen bytes, so this caps each table at a few MB however many addresses an attacker uses.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// When a table is full and a new address arrives, idle entries are pruned at most this often:
/// a table full of *active* addresses would otherwise cost a scan of the whole table on every
/// request from a new address, which is exactly what an address-flooding attacker produces.
pub const PRUNE_WHEN_FULL_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest `Retry-After` we announce: the header counts whole seconds, and "0" would invite
/// an immediate retry that fails again.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Locks a guard table, recovering from poisoning (see the module header for why that is safe).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A wait as `Retry-After` announces it: whole seconds, rounded up, at least [`MIN_RETRY_AFTER`].
pub(super) fn retry_after(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs).max(MIN_RETRY_AFTER)
}

/// A per-address table that never holds more than `capacity` entries: the shared part of the
/// rate limiter and the enumeration guard.
#[derive(Debug)]
pub(super) struct ClientTable<V, K = IpAddr> {
    pub(super) entries: HashMap<K, V>,
    capacity: usize,
    /// When the table may be pruned again on the full path (see [`PRUNE_WHEN_FULL_INTERVAL`]).
    next_prune: Option<Instant>,
}

/// What [`ClientTable::make_room`] decided for a new address.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Room {
    /// There is room: track the address.
    Yes,
    /// The table is full of live entries: let the address through untracked.
    No {
        /// The table was pruned just now and that did not help: worth one log line (at most one
        /// per [`PRUNE_WHEN_FULL_INTERVAL`]).
        just_pruned: bool,
    },
}

impl<V, K: std::hash::Hash + Eq> ClientTable<V, K> {
    pub(super) fn new(capacity: usize) -> Self {
        ClientTable {
            entries: HashMap::new(),
            capacity,
            next_prune: None,
        }
    }

    /// Whether a new address may be added, pruning entries that `keep` rejects when the table is
    /// full (at most once per [`PRUNE_WHEN_FULL_INTERVAL`]).
    pub(super) fn make_room(&mut self, now: Instant, keep: impl FnMut(&mut V) -> bool) -> Room {
        if self.entries.len() < self.capacity {
            return Room::Yes;
        }
        if self.next_prune.is_some_and(|t| now < t) {
            return Room::No { just_pruned: false };
        }
        self.prune(keep);
        self.next_prune = Some(now + PRUNE_WHEN_FULL_INTERVAL);
        if self.entries.len() < self.capacity {
            Room::Yes
        } else {
            Room::No { just_pruned: true }
        }
    }

    pub(super) fn prune(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.entries.retain(|_, v| keep(v));
        // Give memory back after an attack; a table that shrank by more than half reallocates.
        if self.entries.capacity() > 2 * self.entries.len() + 64 {
            self.entries.shrink_to_fit();
        }
    }
}
