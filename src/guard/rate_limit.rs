//! The token-bucket rate limiter ([`RateLimiter`]), per client address (counted by
//! [`limit_key`]: an IPv6 address by its /64) or per credential ([`CredentialKey`]).
//!
//! Threads: every connection thread calls `check`, the sweeper calls `sweep`; one `Mutex` around
//! the table, locked only to read or update one entry or to prune.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::table::{ClientTable, MAX_TRACKED_CLIENTS, Room, lock, retry_after};

/// One client's token bucket, stored as the instant it is full again (the "theoretical arrival
/// time" of GCRA): each allowed request pushes it one token interval later, and the time it lies
/// ahead of now is the bucket's deficit. One `Instant` per client, and no floating point.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    full_at: Instant,
}

/// Per-client-address token bucket (`--rate-limit-rpm`): `rpm` requests per minute, refilled
/// continuously, with a burst of `rpm`. `rpm` 0 disables it. `Send + Sync`; share it in an `Arc`.
///
/// The table is bounded by [`MAX_TRACKED_CLIENTS`]. When it is full of active clients and a new
/// address arrives, the new address is allowed without being tracked: refusing it instead would
/// let anyone with many addresses (an IPv6 /64 has 2^64) lock every new legitimate client out,
/// while an attacker who already controls that many addresses is not slowed by a per-address
/// limit anyway. Memory stays bounded either way.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    /// Time to refill one token (60 s / rpm); `None` when disabled.
    interval: Option<Duration>,
    /// Time to refill the whole bucket (interval × burst): the deficit a bucket may reach.
    capacity: Duration,
    buckets: Mutex<ClientTable<Bucket, K>>,
}

impl RateLimiter<IpAddr> {
    pub fn new(rpm: u32) -> RateLimiter {
        RateLimiter::with_max_clients(rpm, MAX_TRACKED_CLIENTS)
    }

    /// Takes one token for `ip`: `Ok(())`, or `Err(retry_after)`, the wait until one token is
    /// available, in whole seconds rounded up and at least [`MIN_RETRY_AFTER`].
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.take(ip.to_canonical(), now)
    }
}

/// The key a per-address limit counts `ip` under: an IPv4 address (IPv4-mapped IPv6 ones
/// unmapped) as it is, an IPv6 address as its /64 network. One machine or one customer line
/// usually holds a whole IPv6 /64, so counting single addresses would let it take 2^64 shares.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(net))
        }
        v4 => v4,
    }
}

/// A credential's key: a fingerprint of a slug, Kimai token or OAuth user.
pub type CredentialKey = [u8; 32];

impl RateLimiter<CredentialKey> {
    /// `rpm` requests per minute per credential (`--user-rate-limit-rpm`), whatever address
    /// they come from; 0 disables it.
    pub fn per_credential(rpm: u32) -> RateLimiter<CredentialKey> {
        RateLimiter::with_max_clients(rpm, MAX_TRACKED_CLIENTS)
    }
}

impl<K: std::hash::Hash + Eq + Copy> RateLimiter<K> {
    fn with_max_clients(rpm: u32, max_clients: usize) -> RateLimiter<K> {
        let interval = (rpm > 0).then(|| Duration::from_secs(60) / rpm);
        // burst = rpm; saturating only matters for absurd rpm values, and then errs on allowing.
        let capacity = interval.map_or(Duration::ZERO, |i| i.saturating_mul(rpm));
        RateLimiter {
            interval,
            capacity,
            buckets: Mutex::new(ClientTable::new(max_clients)),
        }
    }

    /// Whether the limiter is on.
    pub fn is_on(&self) -> bool {
        self.interval.is_some()
    }

    /// `(time to refill one token, time to refill the whole bucket)`, or `None` when off: the
    /// same bucket kept elsewhere (the shared state store of `serve --state`).
    pub fn rates(&self) -> Option<(Duration, Duration)> {
        self.interval.map(|i| (i, self.capacity))
    }

    /// Takes one token for `key`: `Ok(())`, or `Err(retry_after)`, the wait until one token is
    /// available, in whole seconds rounded up and at least [`MIN_RETRY_AFTER`].
    pub fn take(&self, ip: K, now: Instant) -> Result<(), Duration> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let mut table = lock(&self.buckets);
        let full_at = match table.entries.get(&ip) {
            // max: a bucket full in the past is simply full (and another worker may have read
            // the clock a moment before the one that last updated this entry).
            Some(b) => b.full_at.max(now),
            None => match table.make_room(now, |b| b.full_at > now) {
                Room::Yes => now,
                Room::No { just_pruned } => {
                    drop(table);
                    if just_pruned {
                        log::warn!(
                            "rate limit: {MAX_TRACKED_CLIENTS} client addresses tracked, new addresses pass unlimited"
                        );
                    }
                    return Ok(());
                }
            },
        };
        let full_at = full_at + interval;
        let deficit = full_at.saturating_duration_since(now);
        if deficit > self.capacity {
            return Err(retry_after(deficit - self.capacity));
        }
        table.entries.insert(ip, Bucket { full_at });
        Ok(())
    }

    /// Forgets buckets that are full again (idle clients); the sweeper calls this. Returns how
    /// many buckets remain.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut table = lock(&self.buckets);
        table.prune(|b| b.full_at > now);
        table.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::table::{MIN_RETRY_AFTER, PRUNE_WHEN_FULL_INTERVAL};
    use crate::guard::test_support::ip;
    use std::net::Ipv4Addr;

    #[test]
    fn limits_count_ipv6_by_its_64_network() {
        let k = |s: &str| limit_key(s.parse().unwrap()).to_string();
        assert_eq!(k("192.0.2.7"), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }

    // --- rate limit ---

    #[test]
    fn rate_limit_allows_a_burst_then_asks_to_retry() {
        let rl = RateLimiter::new(60);
        let now = Instant::now();
        let a = ip("198.51.100.1");
        for i in 0..60 {
            assert_eq!(rl.check(a, now), Ok(()), "request {i} of the burst");
        }
        let wait = rl.check(a, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // A refused request takes no token: still one second to wait.
        assert_eq!(
            rl.check(a, now + Duration::from_millis(100)),
            Err(Duration::from_secs(1))
        );
    }

    #[test]
    fn rate_limit_retry_after_is_whole_seconds_of_at_least_one() {
        // 1 request per minute: the second waits a whole minute.
        let rl = RateLimiter::new(1);
        let now = Instant::now();
        let a = ip("198.51.100.1");
        assert_eq!(rl.check(a, now), Ok(()));
        assert_eq!(rl.check(a, now), Err(Duration::from_secs(60)));
        assert_eq!(
            rl.check(a, now + Duration::from_millis(500)),
            Err(Duration::from_secs(60)),
            "59.5 s rounds up"
        );
        assert_eq!(
            rl.check(a, now + Duration::from_millis(59_900)),
            Err(MIN_RETRY_AFTER)
        );
        assert_eq!(rl.check(a, now + Duration::from_secs(60)), Ok(()));
        // 600 rpm: a token every 100 ms, still announced as one second.
        let rl = RateLimiter::new(600);
        for _ in 0..600 {
            assert_eq!(rl.check(a, now), Ok(()));
        }
        assert_eq!(rl.check(a, now), Err(Duration::from_secs(1)));
    }

    #[test]
    fn rate_limit_refills_continuously() {
        let rl = RateLimiter::new(60);
        let now = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..60 {
            rl.check(a, now).unwrap();
        }
        assert!(rl.check(a, now + Duration::from_millis(999)).is_err());
        assert_eq!(rl.check(a, now + Duration::from_secs(1)), Ok(()));
        assert!(rl.check(a, now + Duration::from_secs(1)).is_err());
        // Ten seconds later: ten more tokens, not more.
        let later = now + Duration::from_secs(11);
        for _ in 0..10 {
            assert_eq!(rl.check(a, later), Ok(()));
        }
        assert!(rl.check(a, later).is_err());
        // A long idle time refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..60 {
            assert_eq!(rl.check(a, much_later), Ok(()));
        }
        assert!(rl.check(a, much_later).is_err());
    }

    #[test]
    fn rate_limit_is_per_address() {
        let rl = RateLimiter::new(2);
        let now = Instant::now();
        let (a, b) = (ip("198.51.100.1"), ip("2001:db8::1"));
        rl.check(a, now).unwrap();
        rl.check(a, now).unwrap();
        assert!(rl.check(a, now).is_err());
        assert_eq!(rl.check(b, now), Ok(()));
        assert_eq!(rl.check(b, now), Ok(()));
        assert!(rl.check(b, now).is_err());
        // The mapped form of a is a, not a new client.
        assert!(rl.check(ip("::ffff:198.51.100.1"), now).is_err());
    }

    #[test]
    fn rate_limit_zero_never_limits() {
        let rl = RateLimiter::new(0);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(rl.check(ip("198.51.100.1"), now), Ok(()));
        }
        assert_eq!(rl.sweep(now), 0, "a disabled limiter tracks nobody");
    }

    #[test]
    fn rate_limit_sweep_forgets_full_buckets() {
        let rl = RateLimiter::new(60);
        let now = Instant::now();
        rl.check(ip("198.51.100.1"), now).unwrap();
        for _ in 0..30 {
            rl.check(ip("198.51.100.2"), now).unwrap();
        }
        assert_eq!(rl.sweep(now), 2);
        // After 1 s the first bucket is full again, the second still 29 tokens short.
        assert_eq!(rl.sweep(now + Duration::from_secs(1)), 1);
        assert_eq!(rl.sweep(now + Duration::from_secs(30)), 0);
    }

    #[test]
    fn rate_limit_table_is_bounded_and_fails_open() {
        let rl = RateLimiter::with_max_clients(1, 3);
        let now = Instant::now();
        for n in 1..=3 {
            rl.check(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), now)
                .unwrap();
        }
        // Full of live buckets: a new address passes, untracked, however often it asks.
        let newcomer = ip("203.0.113.1");
        for _ in 0..5 {
            assert_eq!(rl.check(newcomer, now), Ok(()));
        }
        assert_eq!(rl.sweep(now), 3);
        // The tracked ones are still limited.
        assert!(rl.check(ip("198.51.100.1"), now).is_err());
        // A minute later the old buckets are full again: pruning makes room, and the newcomer
        // is tracked and limited like anyone.
        let later = now + Duration::from_secs(60);
        assert_eq!(rl.check(newcomer, later), Ok(()));
        assert!(rl.check(newcomer, later).is_err());
        assert_eq!(rl.sweep(later), 1);
    }

    #[test]
    fn rate_limit_prunes_a_full_table_at_most_once_per_interval() {
        // 600 rpm: a bucket that gave one token is full again after 100 ms.
        let rl = RateLimiter::with_max_clients(600, 1);
        let now = Instant::now();
        rl.check(ip("198.51.100.1"), now).unwrap();
        // Full: this prune finds nothing idle, and blocks the next one for the interval.
        rl.check(ip("198.51.100.2"), now).unwrap();
        // The first bucket is idle from 100 ms on, but the prune is not due before
        // `now + PRUNE_WHEN_FULL_INTERVAL`; the newcomer stays untracked.
        let soon = now + PRUNE_WHEN_FULL_INTERVAL - Duration::from_millis(1);
        rl.check(ip("198.51.100.2"), soon).unwrap();
        assert_eq!(lock(&rl.buckets).entries.len(), 1);
        assert!(lock(&rl.buckets).entries.contains_key(&ip("198.51.100.1")));
        let due = now + PRUNE_WHEN_FULL_INTERVAL;
        rl.check(ip("198.51.100.2"), due).unwrap();
        assert!(lock(&rl.buckets).entries.contains_key(&ip("198.51.100.2")));
    }

    #[test]
    fn rate_limit_is_shared_across_threads() {
        let rl = std::sync::Arc::new(RateLimiter::new(100));
        let now = Instant::now();
        let allowed: usize = (0..4)
            .map(|_| {
                let rl = rl.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|_| rl.check(ip("198.51.100.1"), now).is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(allowed, 100);
    }
}
