//! The per-user slow-down of wrong `auth_secret`s on the sign-in form, next to the per-address
//! enumeration guard (`crate::guard::EnumerationGuard`, which the HTTP layer applies first).
//!
//! Why per user too: the per-address guard alone lets anyone with many addresses try a user's
//! secret from all of them at once, each address staying under its own limit. Here every
//! attempt for one user name (slug) shares one schedule, whatever address it comes from.
//!
//! The rule: the first [`Settings::sign_in_free_failures`] failures for a name cost nothing
//! extra. After that, attempts for that name are *serialised*: each one takes the next free
//! slot of that name's schedule, and the slots are spaced by a delay that doubles with every
//! further failure, from [`Settings::sign_in_base_delay`] up to [`Settings::sign_in_max_delay`]
//! (a few seconds). Parallel connections therefore queue up instead of multiplying the rate.
//! An attempt counts as a failure from the moment it is admitted (so a burst is counted before
//! any of it is answered) until it turns out right. Failures are forgotten once the name has
//! seen none for [`Settings::sign_in_window`].
//!
//! Never a lockout: a stranger who knows a slug must not be able to keep its owner out, so no
//! attempt waits longer than the cap. When the queue is already longer than the cap:
//! - an attempt from an address with no failure for this name in the window and no attempt in
//!   progress (the person's own browser, typically) is checked after the cap, without queueing
//!   behind strangers. An address gets this once per window: many addresses buy one guess
//!   each, not a rate;
//! - an attempt from any other address is refused at once *without* its secret being looked
//!   at (so it tells nothing), with the wait until a slot is free.
//!
//! So the person with the right secret waits at most the cap and is never refused, unless
//! their own address failed for their name in the window (then they share the queue and its
//! short `Retry-After` with everyone who failed). The addresses that failed are remembered in a
//! Bloom filter per name: no address is stored, and there is no eviction an attacker could
//! churn to become "new" again; a false positive (rare below a few hundred failing addresses)
//! only puts a person in the queue.
//!
//! Unknown names are treated exactly like real ones (the table cannot tell them apart), so the
//! timing says nothing about which slugs exist. The table holds no slug: entries are keyed by
//! an HMAC-SHA256 of the name under a key drawn at start, truncated to 128 bits. It is bounded
//! by [`MAX_TRACKED_NAMES`] entries of about half a kilobyte.
//!
//! With `serve --state` the schedule is the shared store's (`state::throttle`), so that every
//! instance counts a name's failures together: the same rule in one Lua script, keyed by the
//! same HMAC under a key all instances derive from the store's shared key, the addresses in
//! flight as leases (an instance killed mid-attempt leaves none behind). While the store is
//! unreachable, each instance falls back to its own table.
//!
//! Threads: connection threads call [`Throttle::begin`] and drop the [`Attempt`] it returns;
//! the sweeper calls [`Throttle::sweep`]. One mutex around the table, never held while
//! sleeping: the caller sleeps the wait that `begin` returns.

use super::Settings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// User names whose failures are remembered at most.
pub const MAX_TRACKED_NAMES: usize = 10_000;
/// Bits of each name's filter of failing addresses, and the positions set per address: about
/// 1% false positives at 250 failing addresses, 10% at 1,000.
const FILTER_BITS: usize = 4096;
const FILTER_HASHES: usize = 3;

type Key = [u8; 16];

#[derive(Debug)]
struct Entry {
    /// Failures (and attempts in progress) since the name was last quiet for a whole window.
    failures: u32,
    last_failure: Instant,
    /// When the next queued attempt may be checked.
    next_slot: Instant,
    /// The addresses that failed for this name in the window (a Bloom filter).
    failed_from: [u64; FILTER_BITS / 64],
    /// The address of each attempt in progress.
    in_flight: Vec<IpAddr>,
}

/// An admitted sign-in attempt: sleep [`Attempt::wait`], check the secret, and call
/// [`Attempt::succeeded`] if it was right. Dropped otherwise (a panic included), it is a
/// failure.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    key: Key,
    ip: IpAddr,
    ok: bool,
    /// The attempt's id in the shared store, when the store admitted it.
    shared: Option<String>,
    /// How long to wait before checking the secret.
    pub wait: Duration,
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.ok = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        match (&self.shared, &self.throttle.store) {
            (Some(id), Some(store)) => {
                let positions = self.throttle.positions(self.ip);
                // A failure here leaves the attempt to lapse with its lease.
                let _ = store.sign_in_finish(
                    &crate::secret::hex(&self.key),
                    &self.ip.to_string(),
                    id,
                    self.ok,
                    &positions,
                    self.throttle.window,
                );
            }
            _ => self.throttle.finish(self.key, self.ip, self.ok),
        }
    }
}

/// The per-name schedule of sign-in attempts.
pub struct Throttle {
    key: ring::hmac::Key,
    free_failures: u32,
    base: Duration,
    cap: Duration,
    window: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
    /// The shared store (`--state`): the schedule is kept there.
    store: Option<std::sync::Arc<crate::state::Store>>,
}

impl Throttle {
    pub fn new(s: &Settings) -> Throttle {
        // Same stance as `random_secret`: without randomness nothing keyed is safe.
        let k = crate::secret::random_bytes::<32>().unwrap_or_else(|e| panic!("{e}"));
        Throttle {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k),
            free_failures: s.sign_in_free_failures,
            base: s.sign_in_base_delay,
            cap: s.sign_in_max_delay.max(s.sign_in_base_delay),
            window: s.sign_in_window,
            entries: Mutex::new(HashMap::new()),
            store: None,
        }
    }

    /// Keeps the schedule in the shared store, keyed under `key` (the same on every instance,
    /// derived from the store's shared key).
    pub fn shared(mut self, store: std::sync::Arc<crate::state::Store>, key: &[u8]) -> Throttle {
        self.key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        self.store = Some(store);
        self
    }

    fn key(&self, name: &str) -> Key {
        let tag = ring::hmac::sign(&self.key, name.as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&tag.as_ref()[..16]);
        k
    }

    /// The filter positions of an address.
    fn positions(&self, ip: IpAddr) -> [usize; FILTER_HASHES] {
        let bytes = match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let tag = ring::hmac::sign(&self.key, &bytes);
        let t = tag.as_ref();
        std::array::from_fn(|i| {
            (usize::from(t[2 * i]) << 8 | usize::from(t[2 * i + 1])) % FILTER_BITS
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The spacing of queued attempts after `failures` failures.
    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(self.free_failures).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// Admits one sign-in attempt for `name` from `ip`, or refuses it with the wait until a
    /// slot is free (the secret must then not be checked).
    pub fn begin(&self, name: &str, ip: IpAddr, now: Instant) -> Result<Attempt<'_>, Duration> {
        let key = self.key(name);
        let ip = ip.to_canonical();
        let positions = self.positions(ip);
        if let Some(store) = &self.store
            && let Ok(id) = crate::secret::random_hex::<12>()
        {
            let rule = crate::state::SignInRule {
                free: self.free_failures,
                base: self.base,
                cap: self.cap,
                window: self.window,
            };
            match store.sign_in_begin(
                &crate::secret::hex(&key),
                &ip.to_string(),
                &id,
                &positions,
                &rule,
            ) {
                Ok(Ok(wait)) => {
                    return Ok(Attempt {
                        throttle: self,
                        key,
                        ip,
                        ok: false,
                        shared: Some(id),
                        wait,
                    });
                }
                Ok(Err(wait)) => return Err(wait),
                // Unreachable: this instance's own table meanwhile.
                Err(_) => {}
            }
        }
        let mut entries = self.lock();
        if !entries.contains_key(&key) && entries.len() >= MAX_TRACKED_NAMES {
            self.make_room(&mut entries, now);
        }
        let e = entries.entry(key).or_insert_with(|| Entry {
            failures: 0,
            last_failure: now,
            next_slot: now,
            failed_from: [0; FILTER_BITS / 64],
            in_flight: Vec::new(),
        });
        if now.saturating_duration_since(e.last_failure) >= self.window {
            e.failures = 0;
            e.failed_from = [0; FILTER_BITS / 64];
        }
        let wait = if e.failures < self.free_failures {
            Duration::ZERO
        } else {
            let slot = e.next_slot.max(now);
            let wait = slot - now;
            let known = e.in_flight.contains(&ip)
                || positions
                    .iter()
                    .all(|&p| e.failed_from[p / 64] & (1 << (p % 64)) != 0);
            if wait <= self.cap {
                e.next_slot = slot + self.delay(e.failures);
                wait
            } else if !known {
                // Not queued behind strangers (see the module header); the schedule is left
                // alone so that the queue keeps its length.
                self.cap
            } else {
                return Err(wait - self.cap);
            }
        };
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.in_flight.push(ip);
        Ok(Attempt {
            throttle: self,
            key,
            ip,
            ok: false,
            shared: None,
            wait,
        })
    }

    /// The end of an admitted attempt: a failure marks its address; a success takes back the
    /// failure counted when it was admitted.
    fn finish(&self, key: Key, ip: IpAddr, ok: bool) {
        let positions = self.positions(ip);
        let mut entries = self.lock();
        let Some(e) = entries.get_mut(&key) else {
            return;
        };
        if let Some(i) = e.in_flight.iter().position(|a| *a == ip) {
            e.in_flight.swap_remove(i);
        }
        if ok {
            e.failures = e.failures.saturating_sub(1);
        } else {
            for p in positions {
                e.failed_from[p / 64] |= 1 << (p % 64);
            }
        }
        if e.failures == 0 && e.in_flight.is_empty() {
            entries.remove(&key);
        }
    }

    /// Called with a full table: forgets names quiet for a window, else the quietest one.
    /// Whoever fills the table with live entries needs thousands of names and addresses and
    /// gains a fresh start for one name.
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let window = self.window;
        entries.retain(|_, e| {
            now.saturating_duration_since(e.last_failure) < window || !e.in_flight.is_empty()
        });
        if entries.len() >= MAX_TRACKED_NAMES
            && let Some(k) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(k, _)| *k)
        {
            entries.remove(&k);
        }
    }

    /// Forgets names quiet for a whole window; the sweeper calls this.
    pub fn sweep(&self, now: Instant) {
        let window = self.window;
        let mut entries = self.lock();
        entries.retain(|_, e| {
            now.saturating_duration_since(e.last_failure) < window || !e.in_flight.is_empty()
        });
        if entries.capacity() > 2 * entries.len() + 64 {
            entries.shrink_to_fit();
        }
    }

    /// Names tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(&Settings {
            sign_in_free_failures: 3,
            sign_in_base_delay: Duration::from_millis(100),
            sign_in_max_delay: Duration::from_millis(800),
            sign_in_window: Duration::from_secs(60),
            ..Settings::default()
        })
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 9, n])
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One failed attempt: its wait, or `Err` when refused.
    fn fail(t: &Throttle, name: &str, from: u8, now: Instant) -> Result<Duration, Duration> {
        t.begin(name, ip(from), now).map(|a| a.wait)
    }

    #[test]
    fn parallel_attempts_are_spaced_by_a_doubling_delay() {
        let t = throttle();
        let now = Instant::now();
        // Attempts in progress at the same time: three free ones ...
        let mut open: Vec<Attempt> = (0..3)
            .map(|_| t.begin("slug", ip(1), now).unwrap())
            .collect();
        assert!(open.iter().all(|a| a.wait == ms(0)));
        // ... then each takes the next slot, and the spacing doubles up to the cap (100, 200,
        // 400, then 800 ms).
        for expected in [0, 100, 300, 700] {
            let a = t.begin("slug", ip(1), now).unwrap();
            assert_eq!(a.wait, ms(expected));
            open.push(a);
        }
        // The queue is now longer than the cap: an address with an attempt in progress is
        // refused without its secret being looked at, and told when a slot is free ...
        assert_eq!(fail(&t, "slug", 1, now).unwrap_err(), ms(700));
        // ... while an address that never failed for this name waits the cap at most, once.
        let person = t.begin("slug", ip(2), now).unwrap();
        assert_eq!(person.wait, ms(800));
        assert_eq!(fail(&t, "slug", 2, now).unwrap_err(), ms(700));
        drop(person);
        assert_eq!(fail(&t, "slug", 2, now).unwrap_err(), ms(700), "it failed");
        drop(open);
        assert_eq!(fail(&t, "slug", 1, now).unwrap_err(), ms(700), "it failed");
        // Another name is not affected, known or not: the table cannot tell them apart.
        assert_eq!(fail(&t, "other", 1, now), Ok(ms(0)));
        // Later, the queue has drained: attempts wait at most the cap again.
        let later = now + ms(1500);
        assert_eq!(fail(&t, "slug", 1, later), Ok(ms(0)));
        assert_eq!(fail(&t, "slug", 1, later), Ok(ms(800)));
    }

    #[test]
    fn the_right_secret_is_never_refused_and_takes_its_failure_back() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..12 {
            let _ = fail(&t, "slug", 1, now);
        }
        // The person, from an address that has not failed: at most the cap.
        let a = t.begin("slug", ip(7), now).expect("the person was refused");
        assert!(a.wait <= ms(800), "{:?}", a.wait);
        a.succeeded();
        // A success does not mark the address: the person's next sign-in is not refused.
        for _ in 0..3 {
            let a = t.begin("slug", ip(7), now).expect("the person was refused");
            assert!(a.wait <= ms(800));
            a.succeeded();
        }
        // A success without failures leaves nothing behind.
        t.begin("fresh", ip(7), now).unwrap().succeeded();
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn many_addresses_buy_one_attempt_each() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..8 {
            let _ = fail(&t, "slug", 1, now);
        }
        // 300 addresses try once each, then again: only the first round gets through, and
        // no address is "forgotten" however many there are.
        let addr = |n: u16| IpAddr::from([10, 0, (n >> 8) as u8, n as u8]);
        let first = (0..300)
            .filter(|&n| t.begin("slug", addr(n), now).is_ok())
            .count();
        let second = (0..300)
            .filter(|&n| t.begin("slug", addr(n), now).is_ok())
            .count();
        // (A few may be taken for one that failed already: the filter's false positives.)
        assert!(
            first >= 295,
            "{first} of 300 addresses got their first attempt"
        );
        assert!(
            second <= 3,
            "{second} of 300 addresses got a second attempt"
        );
    }

    #[test]
    fn failures_are_forgotten_and_the_table_is_bounded() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..8 {
            let _ = fail(&t, "slug", 1, now);
        }
        assert!(fail(&t, "slug", 1, now).is_err());
        // A quiet window later, the name starts afresh.
        let later = now + Duration::from_secs(61);
        assert_eq!(fail(&t, "slug", 1, later), Ok(ms(0)));
        t.sweep(later + Duration::from_secs(61));
        assert_eq!(t.tracked(), 0);
        // However many names are tried, the table stays bounded.
        for i in 0..MAX_TRACKED_NAMES + 50 {
            let _ = fail(&t, &format!("name-{i}"), 1, now);
        }
        assert_eq!(t.tracked(), MAX_TRACKED_NAMES);
    }
}
