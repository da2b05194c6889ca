//! What Kimai said about a Kimai token lately, so that a wrong token costs Kimai one request,
//! not one per attempt (design §3).
//!
//! `/mcp` and `/sse` callers bring their own Kimai token. Before the server opens a session for
//! one (or serves a stateless request with it), it asks Kimai once whether the token works and
//! keeps the answer here for a short time: a rejected token for [`REJECTED_FOR`], an accepted
//! one for [`ACCEPTED_FOR`] (so a stateless client is not checked on every call; a token
//! revoked in that minute still fails at Kimai on its next call). Keys are credential
//! fingerprints (`session::fingerprint` of URL and token), never tokens.
//!
//! The table holds at most [`MAX_VERDICTS`] entries; when it is full, expired entries go, and
//! if that is not enough the oldest go, so an attacker with many tokens can only make the
//! server forget, never grow.

use super::CredentialKey;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a token that Kimai rejected is refused without asking Kimai again.
pub const REJECTED_FOR: Duration = Duration::from_secs(60);
/// How long a token that Kimai accepted is trusted without asking again.
pub const ACCEPTED_FOR: Duration = Duration::from_secs(60);
/// Entries kept at most.
pub const MAX_VERDICTS: usize = 50_000;

/// Kimai's last word on a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
}

#[derive(Debug)]
pub struct TokenVerdicts {
    map: Mutex<HashMap<CredentialKey, (Verdict, Instant)>>,
    max: usize,
}

impl Default for TokenVerdicts {
    fn default() -> TokenVerdicts {
        TokenVerdicts::with_capacity(MAX_VERDICTS)
    }
}

impl TokenVerdicts {
    pub fn with_capacity(max: usize) -> TokenVerdicts {
        TokenVerdicts {
            map: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CredentialKey, (Verdict, Instant)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdict still in force for `key`, if any.
    pub fn get(&self, key: &CredentialKey, now: Instant) -> Option<Verdict> {
        let map = self.lock();
        let (verdict, until) = map.get(key)?;
        (now < *until).then_some(*verdict)
    }

    /// Records Kimai's answer.
    pub fn record(&self, key: CredentialKey, verdict: Verdict, now: Instant) {
        let until = now
            + match verdict {
                Verdict::Accepted => ACCEPTED_FOR,
                Verdict::Rejected => REJECTED_FOR,
            };
        let mut map = self.lock();
        if map.len() >= self.max && !map.contains_key(&key) {
            map.retain(|_, (_, u)| *u > now);
            if map.len() >= self.max {
                // Still full of live entries: forget the quarter that expires first.
                let mut ends: Vec<Instant> = map.values().map(|(_, u)| *u).collect();
                ends.sort_unstable();
                let cut = ends[(ends.len() / 4).min(ends.len() - 1)];
                map.retain(|_, (_, u)| *u > cut);
            }
        }
        map.insert(key, (verdict, until));
    }

    /// Forgets expired verdicts (the sweeper calls this); returns how many remain.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut map = self.lock();
        map.retain(|_, (_, u)| *u > now);
        if map.capacity() > 2 * map.len() + 64 {
            map.shrink_to_fit();
        }
        map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_expire_and_the_table_stays_bounded() {
        let v = TokenVerdicts::with_capacity(8);
        let now = Instant::now();
        v.record([1; 32], Verdict::Rejected, now);
        v.record([2; 32], Verdict::Accepted, now);
        assert_eq!(v.get(&[1; 32], now), Some(Verdict::Rejected));
        assert_eq!(v.get(&[2; 32], now), Some(Verdict::Accepted));
        assert_eq!(v.get(&[3; 32], now), None);
        assert_eq!(v.get(&[1; 32], now + REJECTED_FOR), None);
        for i in 0..100u8 {
            v.record(
                [i; 32],
                Verdict::Rejected,
                now + Duration::from_millis(u64::from(i)),
            );
            assert!(v.lock().len() <= 8);
        }
        // The newest verdict is always kept.
        assert_eq!(
            v.get(&[99; 32], now + Duration::from_millis(99)),
            Some(Verdict::Rejected)
        );
        assert_eq!(v.sweep(now + Duration::from_secs(3600)), 0);
    }
}
