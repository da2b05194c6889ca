//! The unknown-slug enumeration guard ([`EnumerationGuard`]): a short random delay before every
//! answer to an unknown slug, and a block for an address that probes too many within a window.
//! The HTTP layer sleeps the delay [`EnumerationGuard::miss`] returns; nothing here sleeps.
//!
//! Threads: every connection thread calls `check`/`miss`, the sweeper calls `sweep`, the
//! `/metrics` handler calls `stats`; one `Mutex` around the table, never held while drawing
//! random numbers or logging.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::table::{ClientTable, MAX_TRACKED_CLIENTS, Room, lock, retry_after};

/// Enumeration guard default: misses tolerated within [`DEFAULT_MISS_WINDOW`]; one more blocks.
pub const DEFAULT_MAX_MISSES: u32 = 10;

/// Enumeration guard default: the sliding window in which misses are counted.
pub const DEFAULT_MISS_WINDOW: Duration = Duration::from_secs(60);

/// Enumeration guard default: how long an address that probed too many slugs stays blocked.
pub const DEFAULT_BLOCK_DURATION: Duration = Duration::from_secs(300);

/// Enumeration guard default: the shortest delay before answering an unknown slug.
pub const DEFAULT_MIN_MISS_DELAY: Duration = Duration::from_millis(100);

/// Enumeration guard default: the longest delay before answering an unknown slug.
pub const DEFAULT_MAX_MISS_DELAY: Duration = Duration::from_millis(300);

/// The thresholds of the [`EnumerationGuard`]; `Default` gives the `DEFAULT_*` values above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumerationSettings {
    /// Misses tolerated within `window`; one more blocks the address.
    pub max_misses: u32,
    /// The sliding window in which misses are counted.
    pub window: Duration,
    /// How long a blocked address stays blocked.
    pub block_for: Duration,
    /// Shortest delay before answering an unknown slug.
    pub min_delay: Duration,
    /// Longest delay before answering an unknown slug.
    pub max_delay: Duration,
}

impl Default for EnumerationSettings {
    fn default() -> Self {
        EnumerationSettings {
            max_misses: DEFAULT_MAX_MISSES,
            window: DEFAULT_MISS_WINDOW,
            block_for: DEFAULT_BLOCK_DURATION,
            min_delay: DEFAULT_MIN_MISS_DELAY,
            max_delay: DEFAULT_MAX_MISS_DELAY,
        }
    }
}

/// What the guard remembers about one address.
#[derive(Debug, Default)]
struct Prober {
    /// Instants of the misses still inside the window, oldest first; at most `max_misses + 1`.
    misses: VecDeque<Instant>,
    /// Set while the address is blocked.
    blocked_until: Option<Instant>,
}

impl Prober {
    fn blocked(&self, now: Instant) -> Option<Instant> {
        self.blocked_until.filter(|&t| t > now)
    }

    /// Drops misses older than `window` and an expired block; false once nothing is left.
    fn keep(&mut self, now: Instant, window: Duration) -> bool {
        while self
            .misses
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            self.misses.pop_front();
        }
        if self.blocked(now).is_none() {
            self.blocked_until = None;
        }
        !self.misses.is_empty() || self.blocked_until.is_some()
    }
}

#[derive(Debug)]
struct Probers {
    table: ClientTable<Prober>,
    /// Every miss ever recorded, for `/metrics`.
    total_misses: u64,
}

/// Guards the secret-slug routes (`/mcp/{slug}`) against guessing: every unknown slug costs the
/// client a random delay (so timing tells nothing and guessing is slow), and more than
/// `max_misses` within `window` blocks the address for `block_for`. `Send + Sync`; share it in
/// an `Arc`.
///
/// The table is bounded by [`MAX_TRACKED_CLIENTS`] like the rate limiter's, with the same choice
/// when it is full of live entries: a new address is not tracked (so not blocked), but still
/// pays the delay on every miss; with slugs of 96 bits and more, guessing stays hopeless.
#[derive(Debug)]
pub struct EnumerationGuard {
    settings: EnumerationSettings,
    probers: Mutex<Probers>,
}

/// What [`EnumerationGuard::miss`] decided, to be logged after the lock is released.
enum MissOutcome {
    Counted,
    Blocked,
    Untracked { just_pruned: bool },
}

impl EnumerationGuard {
    pub fn new(settings: EnumerationSettings) -> Self {
        EnumerationGuard::with_max_clients(settings, MAX_TRACKED_CLIENTS)
    }

    fn with_max_clients(settings: EnumerationSettings, max_clients: usize) -> Self {
        EnumerationGuard {
            settings,
            probers: Mutex::new(Probers {
                table: ClientTable::new(max_clients),
                total_misses: 0,
            }),
        }
    }

    /// `Err(retry_after)` while `ip` is blocked (whole seconds, at least [`MIN_RETRY_AFTER`]).
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let probers = lock(&self.probers);
        match probers
            .table
            .entries
            .get(&ip.to_canonical())
            .and_then(|p| p.blocked(now))
        {
            Some(until) => Err(retry_after(until - now)),
            None => Ok(()),
        }
    }

    /// Records a miss (an unknown slug) from `ip` and returns the random delay, uniform in
    /// `[min_delay, max_delay]`, that the caller must sleep before answering. The miss that
    /// makes more than `max_misses` within `window` blocks the address for `block_for`. Misses
    /// from an address that is already blocked (the caller should have refused it through
    /// [`check`](Self::check)) are counted for `/metrics` but do not extend the block.
    pub fn miss(&self, ip: IpAddr, now: Instant) -> Duration {
        let ip = ip.to_canonical();
        let window = self.settings.window;
        let outcome = {
            let mut probers = lock(&self.probers);
            probers.total_misses = probers.total_misses.saturating_add(1);
            let table = &mut probers.table;
            let room = if table.entries.contains_key(&ip) {
                Room::Yes
            } else {
                table.make_room(now, |p| p.keep(now, window))
            };
            match room {
                Room::No { just_pruned } => MissOutcome::Untracked { just_pruned },
                Room::Yes => {
                    let p = table.entries.entry(ip).or_default();
                    p.keep(now, window);
                    if p.blocked(now).is_some() {
                        MissOutcome::Counted
                    } else {
                        p.misses.push_back(now);
                        if p.misses.len() > self.settings.max_misses as usize {
                            p.misses.clear();
                            p.blocked_until = Some(now + self.settings.block_for);
                            MissOutcome::Blocked
                        } else {
                            MissOutcome::Counted
                        }
                    }
                }
            }
        };
        match outcome {
            MissOutcome::Counted => {}
            MissOutcome::Blocked => log::warn!(
                "enumeration guard: {ip} blocked for {} s after more than {} unknown slugs in {} s",
                self.settings.block_for.as_secs(),
                self.settings.max_misses,
                window.as_secs()
            ),
            MissOutcome::Untracked { just_pruned: true } => log::warn!(
                "enumeration guard: {MAX_TRACKED_CLIENTS} addresses tracked, new addresses are not blocked"
            ),
            MissOutcome::Untracked { just_pruned: false } => {}
        }
        self.random_delay()
    }

    /// The thresholds (the shared state store of `serve --state` counts by them too).
    pub fn settings(&self) -> &EnumerationSettings {
        &self.settings
    }

    /// A random delay for one miss counted elsewhere (the shared state store), uniform in
    /// `[min_delay, max_delay]` like [`miss`](Self::miss)'s.
    pub fn delay(&self) -> Duration {
        self.random_delay()
    }

    /// `(addresses blocked now, misses recorded since start)`, for `/metrics`.
    pub fn stats(&self, now: Instant) -> (usize, u64) {
        let probers = lock(&self.probers);
        let blocked = probers
            .table
            .entries
            .values()
            .filter(|p| p.blocked(now).is_some())
            .count();
        (blocked, probers.total_misses)
    }

    /// Forgets misses that left the window and blocks that expired, and addresses with neither;
    /// the sweeper calls this.
    pub fn sweep(&self, now: Instant) {
        let window = self.settings.window;
        lock(&self.probers).table.prune(|p| p.keep(now, window));
    }

    /// Uniform in `[min_delay, max_delay]` (the bounds swapped if configured the wrong way
    /// round). If the system has no randomness to give, the longest delay: slower, never
    /// predictable.
    fn random_delay(&self) -> Duration {
        let lo = self.settings.min_delay.min(self.settings.max_delay);
        let hi = self.settings.min_delay.max(self.settings.max_delay);
        let span = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX);
        if span == 0 {
            return lo;
        }
        match getrandom::u64() {
            // The modulo bias is below span / 2^64: nothing for spans of milliseconds.
            Ok(r) => lo + Duration::from_nanos(r % span.saturating_add(1)),
            Err(e) => {
                log::warn!("enumeration guard: no randomness for the miss delay: {e}");
                hi
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::table::MIN_RETRY_AFTER;
    use crate::guard::test_support::ip;

    // --- enumeration guard ---

    #[test]
    fn enumeration_delays_stay_within_bounds() {
        let g = EnumerationGuard::new(EnumerationSettings {
            max_misses: u32::MAX,
            ..EnumerationSettings::default()
        });
        let now = Instant::now();
        let delays: Vec<Duration> = (0..200).map(|_| g.miss(ip("198.51.100.1"), now)).collect();
        for d in &delays {
            assert!(
                (DEFAULT_MIN_MISS_DELAY..=DEFAULT_MAX_MISS_DELAY).contains(d),
                "{d:?}"
            );
        }
        // Random, not constant: 200 draws from 200 ms of nanoseconds are not all equal.
        assert!(delays.iter().any(|d| *d != delays[0]));
        // A degenerate or inverted range.
        let fixed = EnumerationGuard::new(EnumerationSettings {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(5),
            ..EnumerationSettings::default()
        });
        assert_eq!(
            fixed.miss(ip("198.51.100.1"), now),
            Duration::from_millis(5)
        );
        let inverted = EnumerationGuard::new(EnumerationSettings {
            min_delay: Duration::from_millis(9),
            max_delay: Duration::from_millis(7),
            ..EnumerationSettings::default()
        });
        let d = inverted.miss(ip("198.51.100.1"), now);
        assert!((Duration::from_millis(7)..=Duration::from_millis(9)).contains(&d));
    }

    #[test]
    fn enumeration_eleventh_miss_blocks_for_five_minutes() {
        let g = EnumerationGuard::new(EnumerationSettings::default());
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        for i in 0..10 {
            g.miss(a, t0 + Duration::from_secs(i * 5));
            assert_eq!(
                g.check(a, t0 + Duration::from_secs(i * 5)),
                Ok(()),
                "miss {}",
                i + 1
            );
        }
        let t11 = t0 + Duration::from_secs(59);
        g.miss(a, t11);
        assert_eq!(g.check(a, t11), Err(Duration::from_secs(300)));
        assert_eq!(
            g.check(a, t11 + Duration::from_millis(100_500)),
            Err(Duration::from_secs(200)),
            "199.5 s rounds up"
        );
        assert_eq!(g.stats(t11), (1, 11));
        // Another address is not affected.
        assert_eq!(g.check(ip("198.51.100.2"), t11), Ok(()));
        // The block ends after 300 s, and the count starts afresh.
        let end = t11 + Duration::from_secs(300);
        assert_eq!(
            g.check(a, end - Duration::from_millis(1)),
            Err(MIN_RETRY_AFTER)
        );
        assert_eq!(g.check(a, end), Ok(()));
        assert_eq!(g.stats(end), (0, 11));
        g.miss(a, end);
        assert_eq!(
            g.check(a, end),
            Ok(()),
            "one miss after a block does not block again"
        );
    }

    #[test]
    fn enumeration_misses_while_blocked_do_not_extend_the_block() {
        let g = EnumerationGuard::new(EnumerationSettings::default());
        let t0 = Instant::now();
        let a = ip("2001:db8::7");
        for _ in 0..11 {
            g.miss(a, t0);
        }
        let t1 = t0 + Duration::from_secs(100);
        for _ in 0..20 {
            g.miss(a, t1);
        }
        assert_eq!(g.check(a, t1), Err(Duration::from_secs(200)));
        assert_eq!(g.stats(t1), (1, 31));
    }

    #[test]
    fn enumeration_window_slides() {
        let g = EnumerationGuard::new(EnumerationSettings::default());
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..5 {
            g.miss(a, t0);
        }
        for _ in 0..5 {
            g.miss(a, t0 + Duration::from_secs(30));
        }
        // At 60 s the first five have left the window: 6 in it, no block.
        let t60 = t0 + Duration::from_secs(60);
        g.miss(a, t60);
        assert_eq!(g.check(a, t60), Ok(()));
        for _ in 0..4 {
            g.miss(a, t60);
        }
        assert_eq!(g.check(a, t60), Ok(()), "ten in the window are tolerated");
        g.miss(a, t60);
        assert!(
            g.check(a, t60).is_err(),
            "the eleventh in the window blocks"
        );
    }

    #[test]
    fn enumeration_sweep_forgets_expired_state() {
        let g = EnumerationGuard::new(EnumerationSettings::default());
        let t0 = Instant::now();
        let (a, b) = (ip("198.51.100.1"), ip("198.51.100.2"));
        g.miss(a, t0);
        for _ in 0..11 {
            g.miss(b, t0);
        }
        g.sweep(t0 + Duration::from_secs(59));
        assert_eq!(lock(&g.probers).table.entries.len(), 2);
        g.sweep(t0 + Duration::from_secs(60));
        assert_eq!(
            lock(&g.probers).table.entries.len(),
            1,
            "a's miss left the window"
        );
        g.sweep(t0 + Duration::from_secs(300));
        assert_eq!(lock(&g.probers).table.entries.len(), 0, "b's block expired");
        assert_eq!(g.stats(t0 + Duration::from_secs(300)), (0, 12));
    }

    #[test]
    fn enumeration_table_is_bounded() {
        let settings = EnumerationSettings {
            max_misses: 0,
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..EnumerationSettings::default()
        };
        let g = EnumerationGuard::with_max_clients(settings, 2);
        let now = Instant::now();
        g.miss(ip("198.51.100.1"), now);
        g.miss(ip("198.51.100.2"), now);
        // Full of blocked addresses: a third is not tracked, so not blocked.
        let c = ip("198.51.100.3");
        g.miss(c, now);
        assert_eq!(g.check(c, now), Ok(()));
        assert_eq!(lock(&g.probers).table.entries.len(), 2);
        assert_eq!(g.stats(now), (2, 3));
        // Once the blocks expire, the third is tracked (and, with max_misses 0, blocked).
        let later = now + DEFAULT_BLOCK_DURATION;
        g.miss(c, later);
        assert!(g.check(c, later).is_err());
    }
}
