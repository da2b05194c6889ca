//! The request guards of `serve`, as pure decisions: who the client is, whether it may go on,
//! and which headers every answer carries (design §3, issue 6 "Guards").
//!
//! Owned here:
//! - secret comparison in constant time ([`ct_eq`], [`token_matches`]);
//! - the client address behind trusted reverse proxies ([`TrustedProxies`], [`client_ip`],
//!   [`is_https`]);
//! - the per-address token bucket ([`RateLimiter`]) and the unknown-slug enumeration guard
//!   ([`EnumerationGuard`]), each a bounded table behind one mutex;
//! - Host/Origin validation against DNS rebinding and the CORS decision ([`OriginPolicy`],
//!   `mcp/protocol.md` §2.1);
//! - the security headers of every response ([`security_headers`]) and the `users.json` slug
//!   rules ([`check_slug`]).
//!
//! Left to others: this module does no I/O, never sleeps and knows nothing of tiny_http. The
//! HTTP layer reads the headers, runs the guards in the order of design §3, turns a refusal into
//! a status code (403, 429 with `Retry-After`) and sleeps the delay that
//! [`EnumerationGuard::miss`] returns. The clock is always passed in (`now: Instant`), so the
//! tests drive time by hand and the caller reads the clock once per request.
//!
//! Threads: the `http-worker-N` threads call `check`/`miss` on every request, the sweeper thread
//! calls `sweep`, and the `/metrics` handler calls [`EnumerationGuard::stats`]. [`RateLimiter`]
//! and [`EnumerationGuard`] each hold one `Mutex` around their table; it is locked only to read
//! or update one entry (or to prune the table), never while logging, drawing random numbers or
//! doing anything else that may block. A poisoned mutex is recovered: every update leaves an
//! entry consistent, so a panic elsewhere cannot leave half-written state behind.
//!
//! Also here: the Kimai URL policy ([`kimai_url`]) and the short memory of Kimai's verdicts on
//! callers' tokens ([`verdicts`]).
//!
//! Nothing here logs or returns a token or a slug: messages name the rule that failed, not the
//! value.

pub mod kimai_url;
pub mod verdicts;

pub use kimai_url::KimaiUrls;
pub use verdicts::{TokenVerdicts, Verdict};

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses the rate limiter and the enumeration guard each track at most. A table entry is a
/// few dozen bytes, so this caps each table at a few MB however many addresses an attacker uses.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// When a table is full and a new address arrives, idle entries are pruned at most this often:
/// a table full of *active* addresses would otherwise cost a scan of the whole table on every
/// request from a new address, which is exactly what an address-flooding attacker produces.
pub const PRUNE_WHEN_FULL_INTERVAL: Duration = Duration::from_secs(1);

/// `X-Forwarded-For` hops walked from the right at most; a longer chain of trusted hops is
/// treated as malformed. Real deployments have one to three proxies.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// The shortest `Retry-After` we announce: the header counts whole seconds, and "0" would invite
/// an immediate retry that fails again.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// Slugs shorter than this are refused outright.
pub const SLUG_MIN_CHARS: usize = 8;
/// Slugs shorter than this are accepted with a low-entropy warning (16 random characters from
/// the 64-symbol alphabet are 96 bits).
pub const SLUG_STRONG_CHARS: usize = 16;
/// Slugs longer than this are refused (they end up in URLs and client configs).
pub const SLUG_MAX_CHARS: usize = 128;
/// A slug with fewer distinct characters than this looks typed, not generated: 16 random
/// characters from 64 symbols almost always have 13 or more distinct ones.
pub const SLUG_MIN_DISTINCT_CHARS: usize = 10;

/// Locks a guard table, recovering from poisoning (see the module header for why that is safe).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A wait as `Retry-After` announces it: whole seconds, rounded up, at least [`MIN_RETRY_AFTER`].
fn retry_after(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs).max(MIN_RETRY_AFTER)
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Constant-time equality of two secrets. The length may leak through timing (tokens have a
/// public format); the content must not, so every byte of `a` is compared, differences are
/// OR-accumulated, and there is no early return.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // A length mismatch is folded into the accumulator instead of returning early, so the loop
    // below runs for every presented byte either way.
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    // black_box keeps the optimizer from turning the accumulation into an early exit.
    std::hint::black_box(diff) == 0
}

/// True if `presented` equals any of `valid` (several during a token rotation). Every entry is
/// compared, so the timing does not reveal which one matched. An empty presented token never
/// matches, so that an empty entry in the configured list (`"a,,b"`) cannot open the door to a
/// request with an empty `Authorization: Bearer ` header.
pub fn token_matches(presented: &str, valid: &[String]) -> bool {
    let mut any = false;
    for v in valid {
        // `|` and not `||`: no short-circuit.
        any |= ct_eq(presented.as_bytes(), v.as_bytes());
    }
    any & !presented.is_empty()
}

// ---------------------------------------------------------------------------------------------
// Client address and scheme behind reverse proxies
// ---------------------------------------------------------------------------------------------

/// One trusted network: an address with the host bits cleared, and its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The reverse proxies whose forwarding headers (`X-Forwarded-For`, `X-Real-IP`,
/// `X-Forwarded-Proto`) we believe (`--trusted-proxy` / `KIMAI_MCP_TRUSTED_PROXIES`). Anyone can
/// send those headers, so from any other peer they are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks, IPv4 and IPv6:
    /// `"127.0.0.1,10.0.0.0/8,::1,fd00::/8"`. Blanks around entries and empty entries are
    /// ignored; host bits of a network are cleared (`10.1.2.3/8` is `10.0.0.0/8`). The error
    /// names the bad entry.
    pub fn parse(spec: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = parse_net(entry)
                .map_err(|why| format!("invalid trusted proxy {entry:?}: {why}"))?;
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// No trusted proxy: forwarding headers are never believed.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Whether `ip` is one of the trusted proxies. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, what a dual-stack listener reports) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn parse_net(entry: &str) -> Result<Net, String> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (entry, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "not an IP address or CIDR network".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => {
            let p: u8 = p
                .parse()
                .map_err(|_| "the prefix length is not a number".to_string())?;
            if p > max {
                return Err(format!("the prefix length {p} exceeds {max}"));
            }
            p
        }
    };
    let addr = match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask_v4(prefix)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask_v6(prefix)).into()),
    };
    Ok(Net { addr, prefix })
}

/// One address from a forwarding header: a bare IP, or with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or in brackets (`[2001:db8::1]`), as some proxies write them.
fn parse_forwarded_addr(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    let ip = value
        .parse::<IpAddr>()
        .ok()
        .or_else(|| value.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .and_then(|v| v.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// The address of the client, for rate limiting, the enumeration guard and the access log.
///
/// The TCP peer, unless the peer is a trusted proxy; then the right-most untrusted address of
/// `X-Forwarded-For` (each proxy appends the address it saw, so hops to the right of the first
/// untrusted one were written by our proxies and the ones to its left by the client, who may
/// lie), else `X-Real-IP`, else the peer. When every hop is trusted the left-most one is the
/// client. A value that does not parse ends the walk: `X-Forwarded-For` is then ignored, as is a
/// malformed `X-Real-IP`. Several `X-Forwarded-For` headers must be joined with `,` in order by
/// the caller. The result is canonical (`::ffff:1.2.3.4` becomes `1.2.3.4`), so one client has
/// one table entry whichever way it connected.
pub fn client_ip(
    peer: IpAddr,
    x_forwarded_for: Option<&str>,
    x_real_ip: Option<&str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    x_forwarded_for
        .and_then(|v| from_forwarded_for(v, trusted))
        .or_else(|| x_real_ip.and_then(parse_forwarded_addr))
        .unwrap_or(peer)
}

fn from_forwarded_for(value: &str, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut leftmost = None;
    for (n, hop) in value.rsplit(',').enumerate() {
        if n >= MAX_FORWARDED_HOPS {
            return None;
        }
        let ip = parse_forwarded_addr(hop)?;
        if !trusted.contains(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// Whether the request came over HTTPS (`--require-https`). We serve plain HTTP only, so that is
/// the case only behind a TLS-terminating proxy: the peer must be trusted and the first value of
/// `X-Forwarded-Proto` (the scheme the outermost proxy saw) must be `https`, in any case.
pub fn is_https(peer: IpAddr, x_forwarded_proto: Option<&str>, trusted: &TrustedProxies) -> bool {
    trusted.contains(peer)
        && x_forwarded_proto
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

// ---------------------------------------------------------------------------------------------
// Bounded per-address tables
// ---------------------------------------------------------------------------------------------

/// A per-address table that never holds more than `capacity` entries: the shared part of the
/// rate limiter and the enumeration guard.
#[derive(Debug)]
struct ClientTable<V, K = IpAddr> {
    entries: HashMap<K, V>,
    capacity: usize,
    /// When the table may be pruned again on the full path (see [`PRUNE_WHEN_FULL_INTERVAL`]).
    next_prune: Option<Instant>,
}

/// What [`ClientTable::make_room`] decided for a new address.
#[derive(Debug, PartialEq, Eq)]
enum Room {
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
    fn new(capacity: usize) -> Self {
        ClientTable {
            entries: HashMap::new(),
            capacity,
            next_prune: None,
        }
    }

    /// Whether a new address may be added, pruning entries that `keep` rejects when the table is
    /// full (at most once per [`PRUNE_WHEN_FULL_INTERVAL`]).
    fn make_room(&mut self, now: Instant, keep: impl FnMut(&mut V) -> bool) -> Room {
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

    fn prune(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.entries.retain(|_, v| keep(v));
        // Give memory back after an attack; a table that shrank by more than half reallocates.
        if self.entries.capacity() > 2 * self.entries.len() + 64 {
            self.entries.shrink_to_fit();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Enumeration guard
// ---------------------------------------------------------------------------------------------

/// The thresholds of the [`EnumerationGuard`]; `Default` gives the issue-6 numbers.
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

// ---------------------------------------------------------------------------------------------
// Host and Origin (DNS rebinding, CORS)
// ---------------------------------------------------------------------------------------------

/// Host names accepted on a loopback bind (compared without the port and case-insensitively;
/// IPv6 without its brackets).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Host/Origin validation against DNS rebinding (`mcp/protocol.md` §2.1, MCP 2025-11-25) and the
/// CORS decision. Built once from the serve configuration; immutable, so shared freely.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    bind_loopback: bool,
    /// `http://localhost:PORT` and friends, lowercase.
    loopback_origins: Vec<String>,
    /// Configured exact origins, normalized by [`normalize_origin`]; `"*"` is kept apart.
    allowed_origins: Vec<String>,
    /// `"*"` was configured.
    any_origin: bool,
    /// Extra accepted Host values, lowercase, with or without a port.
    public_hosts: Vec<String>,
}

/// Origins as browsers serialize them: lowercase scheme and host, no path, so a configured
/// `https://Claude.ai/` matches the header `https://claude.ai`.
fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Splits a Host header value into the host name (IPv6 without brackets) and the port, if any.
/// None for a value that is not `name`, `name:port`, `[v6]` or `[v6]:port`.
fn split_host(value: &str) -> Option<(&str, Option<&str>)> {
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (name, port)
    } else {
        match value.split_once(':') {
            // A second colon: an IPv6 address without brackets, which Host does not allow.
            Some((_, port)) if port.contains(':') => return None,
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        }
    };
    if name.is_empty() || port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((name, port))
}

impl OriginPolicy {
    /// `bind_loopback`: the server listens on a loopback address; `port`: its port;
    /// `allowed_origins`: the `--allowed-origin` values (exact origins such as
    /// `https://claude.ai`, or `*`); `public_hosts`: extra Host values to accept on a loopback
    /// bind (from `--public-url`, host with or without port; may be empty).
    pub fn new(
        bind_loopback: bool,
        port: u16,
        allowed_origins: Vec<String>,
        public_hosts: Vec<String>,
    ) -> OriginPolicy {
        let mut loopback_origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|h| format!("http://{h}:{port}"))
            .collect();
        if port == 80 {
            // Browsers leave the default port out of the Origin they send.
            loopback_origins
                .extend(["http://localhost", "http://127.0.0.1", "http://[::1]"].map(String::from));
        }
        let any_origin = allowed_origins.iter().any(|o| o.trim() == "*");
        let allowed_origins = allowed_origins
            .iter()
            .filter(|o| o.trim() != "*")
            .map(|o| normalize_origin(o))
            .filter(|o| !o.is_empty())
            .collect();
        let public_hosts = public_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        OriginPolicy {
            bind_loopback,
            loopback_origins,
            allowed_origins,
            any_origin,
            public_hosts,
        }
    }

    /// The Host check. On a loopback bind only `localhost`, `127.0.0.1` and `[::1]` (any port:
    /// the name is what DNS rebinding controls, and an `ssh -L` forward may change the port) or
    /// a public host are accepted; on any other bind every Host is (a reverse proxy sets it). A
    /// missing Host is accepted (HTTP/1.0). `Err(message)` means 403; the message does not echo
    /// the value.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), String> {
        let Some(host) = host else { return Ok(()) };
        if !self.bind_loopback {
            return Ok(());
        }
        let host = host.trim().to_ascii_lowercase();
        let Some((name, _port)) = split_host(&host) else {
            return Err("malformed Host header".to_string());
        };
        let public = self.public_hosts.iter().any(|p| {
            // A configured host with a port must match exactly; without one, any port.
            *p == host || *p == name || (p.starts_with('[') && p.get(1..p.len() - 1) == Some(name))
        });
        if LOOPBACK_HOSTS.contains(&name) || public {
            Ok(())
        } else {
            Err(
                "Host not allowed: this server listens on loopback only (DNS rebinding protection)"
                    .to_string(),
            )
        }
    }

    /// The Origin check. Absent: accepted (non-browser clients send none). Present: accepted if
    /// it is a loopback origin of this port (`http://localhost:PORT`, `http://127.0.0.1:PORT`,
    /// `http://[::1]:PORT`), one of the allowed origins, or anything when `*` is configured
    /// (otherwise `*` would answer preflights for requests that are then refused; requests
    /// still need their token or slug, and no CORS credentials are ever allowed).
    /// `Err(message)` means 403.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), String> {
        let Some(origin) = origin else { return Ok(()) };
        let origin = normalize_origin(origin);
        if self.any_origin
            || self.loopback_origins.contains(&origin)
            || self.allowed_origins.contains(&origin)
        {
            Ok(())
        } else {
            Err("Origin not allowed".to_string())
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request with this Origin, or None (send no
    /// CORS headers): the request's origin itself when it is configured (the caller then adds
    /// `Vary: Origin`), `*` when `*` is configured. Loopback origins of our own port are
    /// same-origin and need none. The caller never sends `Access-Control-Allow-Credentials`:
    /// our credentials are explicit headers or the URL, never cookies, and browsers refuse
    /// credentials with `*` anyway.
    pub fn cors_allow_origin(&self, origin: Option<&str>) -> Option<String> {
        let origin = origin?.trim();
        if self.allowed_origins.contains(&normalize_origin(origin)) {
            Some(origin.to_string())
        } else if self.any_origin {
            Some("*".to_string())
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Security headers
// ---------------------------------------------------------------------------------------------

/// Headers every response carries, whatever its status. The server returns JSON and event
/// streams only, never pages: nothing may be sniffed, framed, cached or load anything.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'"),
];

/// The security headers every response carries.
pub fn security_headers() -> &'static [(&'static str, &'static str)] {
    &SECURITY_HEADERS
}

// ---------------------------------------------------------------------------------------------
// Slugs
// ---------------------------------------------------------------------------------------------

/// The verdict on a `users.json` key. Reasons never contain the slug (it is a secret and the
/// reason gets logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlugCheck {
    Ok,
    /// Accepted, with a low-entropy warning.
    Weak(String),
    /// Refused.
    Invalid(String),
}

/// Judges a `users.json` key (keys starting with `_` are comments and are filtered out by the
/// caller before this). Valid: 16 to 128 characters from `[A-Za-z0-9_-]`. Weak (accepted with a
/// warning):
/// - 8 to 15 characters;
/// - or it looks typed, not generated: fewer than [`SLUG_MIN_DISTINCT_CHARS`] distinct
///   characters, or a single character class (only lowercase, only uppercase or only digits),
///   or the shape of a word with a number (letters, then optionally digits: `Password2024`).
///
/// Anything else is invalid, with the reason.
pub fn check_slug(slug: &str) -> SlugCheck {
    if let Some(pos) = slug
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return SlugCheck::Invalid(format!(
            "character {} is not one of A-Z a-z 0-9 _ -",
            pos + 1
        ));
    }
    // ASCII only from here, so bytes are characters.
    let len = slug.len();
    if len < SLUG_MIN_CHARS {
        return SlugCheck::Invalid(format!(
            "{len} characters, at least {SLUG_MIN_CHARS} required ({SLUG_STRONG_CHARS} or more recommended)"
        ));
    }
    if len > SLUG_MAX_CHARS {
        return SlugCheck::Invalid(format!(
            "{len} characters, at most {SLUG_MAX_CHARS} allowed"
        ));
    }
    if len < SLUG_STRONG_CHARS {
        return SlugCheck::Weak(format!(
            "only {len} characters; use {SLUG_STRONG_CHARS} or more random ones"
        ));
    }
    let b = slug.as_bytes();
    let distinct = b.iter().collect::<HashSet<_>>().len();
    if distinct < SLUG_MIN_DISTINCT_CHARS {
        return SlugCheck::Weak(format!(
            "only {distinct} distinct characters; use a random slug"
        ));
    }
    let single_class = b.iter().all(u8::is_ascii_lowercase)
        || b.iter().all(u8::is_ascii_uppercase)
        || b.iter().all(u8::is_ascii_digit);
    if single_class {
        return SlugCheck::Weak("a single character class; use a random slug".to_string());
    }
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters > 0 && b[letters..].iter().all(u8::is_ascii_digit) {
        return SlugCheck::Weak("looks like a word with a number; use a random slug".to_string());
    }
    SlugCheck::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_ipv6_by_its_64_network() {
        let k = |s: &str| limit_key(s.parse().unwrap()).to_string();
        assert_eq!(k("192.0.2.7"), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(spec: &str) -> TrustedProxies {
        TrustedProxies::parse(spec).unwrap()
    }

    // --- secrets ---

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"secret-token", b"secret-token"));
        assert!(!ct_eq(b"secret-token", b"secret-tokem"));
        assert!(!ct_eq(b"Xecret-token", b"secret-token"));
        assert!(!ct_eq(b"secret", b"secret-token"));
        assert!(!ct_eq(b"secret-token", b"secret"));
        // A prefix padded with NULs must not equal the longer value (the padding in ct_eq).
        assert!(!ct_eq(b"ab\0", b"ab"));
        assert!(!ct_eq(b"ab", b"ab\0"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"", b"x"));
        assert!(!ct_eq(b"x", b""));
    }

    #[test]
    fn token_matches_any_token_of_a_rotation() {
        let valid = vec!["old-token-1234".to_string(), "new-token-5678".to_string()];
        assert!(token_matches("old-token-1234", &valid));
        assert!(token_matches("new-token-5678", &valid));
        assert!(!token_matches("new-token-567", &valid));
        assert!(!token_matches("other", &valid));
        assert!(!token_matches("old-token-1234", &[]));
    }

    #[test]
    fn token_matches_never_accepts_an_empty_token() {
        let valid = vec!["a".to_string(), String::new()];
        assert!(!token_matches("", &valid));
        assert!(token_matches("a", &valid));
    }

    // --- trusted proxies ---

    #[test]
    fn trusted_proxies_parse_addresses_and_networks() {
        let t = proxies(" 127.0.0.1, 10.0.0.0/8 ,::1,fd00::/8,192.168.1.7/32,");
        assert!(!t.is_empty());
        assert!(t.contains(ip("127.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(t.contains(ip("10.255.1.2")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("::2")));
        assert!(t.contains(ip("fd12:3456::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        // A dual-stack listener reports IPv4 peers as mapped IPv6 addresses.
        assert!(t.contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn trusted_proxies_prefix_edges() {
        let all_v4 = proxies("0.0.0.0/0");
        assert!(all_v4.contains(ip("1.2.3.4")));
        assert!(all_v4.contains(ip("255.255.255.255")));
        assert!(
            !all_v4.contains(ip("2001:db8::1")),
            "a v4 network never holds v6"
        );
        let all_v6 = proxies("::/0");
        assert!(all_v6.contains(ip("2001:db8::1")));
        assert!(!all_v6.contains(ip("1.2.3.4")));
        // Host bits are cleared.
        let t = proxies("10.1.2.3/8");
        assert!(t.contains(ip("10.200.0.1")));
        let t = proxies("2001:db8::1/128");
        assert!(t.contains(ip("2001:db8::1")));
        assert!(!t.contains(ip("2001:db8::2")));
    }

    #[test]
    fn trusted_proxies_reject_bad_entries_by_name() {
        for (spec, bad) in [
            ("127.0.0.1,proxy.local", "proxy.local"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("::/129", "::/129"),
            ("10.0.0.0/x", "10.0.0.0/x"),
            ("10.0.0.0/", "10.0.0.0/"),
            ("1.2.3.4.5", "1.2.3.4.5"),
            ("10.0.0.0/-1", "10.0.0.0/-1"),
        ] {
            let err = TrustedProxies::parse(spec).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{spec}: {err}");
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::none().is_empty());
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
    }

    // --- client address ---

    #[test]
    fn client_ip_from_an_untrusted_peer_ignores_headers() {
        let t = proxies("10.0.0.0/8");
        let peer = ip("203.0.113.9");
        assert_eq!(client_ip(peer, Some("1.1.1.1"), Some("2.2.2.2"), &t), peer);
        assert_eq!(
            client_ip(peer, Some("1.1.1.1"), None, &TrustedProxies::none()),
            peer
        );
    }

    #[test]
    fn client_ip_takes_the_right_most_untrusted_hop() {
        let t = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        // The client claims 6.6.6.6; our proxy 10.0.0.2 saw 198.51.100.7.
        let xff = "6.6.6.6, 198.51.100.7, 10.0.0.2";
        assert_eq!(
            client_ip(peer, Some(xff), Some("9.9.9.9"), &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, Some("198.51.100.7"), None, &t),
            ip("198.51.100.7")
        );
        // Ports and brackets written by some proxies.
        assert_eq!(
            client_ip(peer, Some("198.51.100.7:4711"), None, &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, Some("[2001:db8::5]:443"), None, &t),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_ip(peer, Some("[2001:db8::5]"), None, &t),
            ip("2001:db8::5")
        );
        // A mapped peer is trusted as its v4 address, and the result is canonical.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), Some("::ffff:198.51.100.7"), None, &t),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn client_ip_with_an_all_trusted_chain_takes_the_left_most() {
        let t = proxies("10.0.0.0/8");
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                Some("10.9.9.9, 10.0.0.3, 10.0.0.2"),
                None,
                &t
            ),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn client_ip_falls_back_to_x_real_ip_then_the_peer() {
        let t = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        assert_eq!(
            client_ip(peer, None, Some(" 198.51.100.7 "), &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, Some("garbage"), Some("198.51.100.7"), &t),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(peer, None, None, &t), peer);
        assert_eq!(client_ip(peer, Some("garbage"), None, &t), peer);
        assert_eq!(client_ip(peer, Some(""), Some("not-an-ip"), &t), peer);
        assert_eq!(
            client_ip(peer, Some("1.2.3.4, unknown, 10.0.0.2"), None, &t),
            peer
        );
        // Garbage left of the first untrusted hop is the client's business, not ours.
        assert_eq!(
            client_ip(peer, Some("garbage, 198.51.100.7"), None, &t),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn client_ip_bounds_the_walk() {
        let t = proxies("10.0.0.0/8");
        let long = vec!["10.0.0.9"; MAX_FORWARDED_HOPS + 1].join(",");
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(&long), None, &t),
            ip("10.0.0.1")
        );
        let just = vec!["10.0.0.9"; MAX_FORWARDED_HOPS].join(",");
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(&just), None, &t),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn https_only_from_a_trusted_peer() {
        let t = proxies("10.0.0.1");
        assert!(is_https(ip("10.0.0.1"), Some("https"), &t));
        assert!(is_https(ip("10.0.0.1"), Some("HTTPS"), &t));
        assert!(is_https(ip("10.0.0.1"), Some(" https , http"), &t));
        assert!(!is_https(ip("10.0.0.1"), Some("http, https"), &t));
        assert!(!is_https(ip("10.0.0.1"), Some("http"), &t));
        assert!(!is_https(ip("10.0.0.1"), None, &t));
        assert!(!is_https(ip("10.0.0.2"), Some("https"), &t));
        assert!(!is_https(
            ip("10.0.0.1"),
            Some("https"),
            &TrustedProxies::none()
        ));
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

    // --- Host and Origin ---

    fn local(port: u16) -> OriginPolicy {
        OriginPolicy::new(true, port, vec![], vec![])
    }

    #[test]
    fn host_on_a_loopback_bind() {
        let p = local(8000);
        for host in [
            "localhost",
            "localhost:8000",
            "LocalHost:8000",
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]",
            "[::1]:8000",
            "localhost:9000",
        ] {
            assert_eq!(p.check_host(Some(host)), Ok(()), "{host}");
        }
        for host in [
            "evil.example.com",
            "evil.example.com:8000",
            "localhost.evil.example.com",
            "127.0.0.2:8000",
            "::1",
            "[::1",
            "[::2]:8000",
            "localhost:80x",
            "",
            ":8000",
        ] {
            assert!(p.check_host(Some(host)).is_err(), "{host}");
        }
        assert_eq!(p.check_host(None), Ok(()), "HTTP/1.0 sends no Host");
    }

    #[test]
    fn host_public_names_on_a_loopback_bind() {
        let p = OriginPolicy::new(
            true,
            8000,
            vec![],
            vec![
                "MCP.example.com".into(),
                "other.example.com:8443".into(),
                "[2001:db8::1]".into(),
            ],
        );
        assert_eq!(p.check_host(Some("mcp.example.com")), Ok(()));
        assert_eq!(p.check_host(Some("mcp.example.com:443")), Ok(()));
        assert_eq!(p.check_host(Some("other.example.com:8443")), Ok(()));
        assert!(p.check_host(Some("other.example.com:9999")).is_err());
        assert_eq!(p.check_host(Some("[2001:db8::1]:8000")), Ok(()));
        assert!(p.check_host(Some("evil.example.com")).is_err());
    }

    #[test]
    fn any_host_on_another_bind() {
        let p = OriginPolicy::new(false, 8000, vec![], vec![]);
        assert_eq!(p.check_host(Some("evil.example.com")), Ok(()));
        assert_eq!(p.check_host(Some("mcp.example.com:443")), Ok(()));
        assert_eq!(p.check_host(None), Ok(()));
    }

    #[test]
    fn origin_absent_loopback_listed_or_refused() {
        let p = OriginPolicy::new(true, 8000, vec!["https://Claude.ai/".into()], vec![]);
        assert_eq!(p.check_origin(None), Ok(()));
        for origin in [
            "http://localhost:8000",
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
        ] {
            assert_eq!(p.check_origin(Some(origin)), Ok(()), "{origin}");
        }
        assert_eq!(p.check_origin(Some("https://claude.ai")), Ok(()));
        for origin in [
            "http://evil.example.com",
            "http://localhost:9000",
            "https://localhost:8000",
            "http://localhost",
            "http://[::1]:9000",
            "https://claude.ai.evil.example.com",
            "null",
        ] {
            assert!(p.check_origin(Some(origin)).is_err(), "{origin}");
        }
        // On port 80 browsers omit the port.
        let p80 = local(80);
        assert_eq!(p80.check_origin(Some("http://localhost")), Ok(()));
        assert_eq!(p80.check_origin(Some("http://[::1]")), Ok(()));
        assert_eq!(p80.check_origin(Some("http://localhost:80")), Ok(()));
    }

    #[test]
    fn cors_exact_origin_or_star() {
        let p = OriginPolicy::new(true, 8000, vec!["https://claude.ai".into()], vec![]);
        assert_eq!(
            p.cors_allow_origin(Some("https://claude.ai")),
            Some("https://claude.ai".to_string())
        );
        assert_eq!(p.cors_allow_origin(Some("https://evil.example.com")), None);
        assert_eq!(
            p.cors_allow_origin(Some("http://localhost:8000")),
            None,
            "same-origin"
        );
        assert_eq!(p.cors_allow_origin(None), None);

        let star = OriginPolicy::new(
            false,
            8000,
            vec!["*".into(), "https://claude.ai".into()],
            vec![],
        );
        assert_eq!(
            star.check_origin(Some("https://anyone.example.com")),
            Ok(())
        );
        assert_eq!(
            star.cors_allow_origin(Some("https://anyone.example.com")),
            Some("*".to_string())
        );
        assert_eq!(
            star.cors_allow_origin(Some("https://claude.ai")),
            Some("https://claude.ai".to_string()),
            "a listed origin is echoed even with *"
        );
        assert_eq!(star.cors_allow_origin(None), None);
    }

    // --- headers ---

    #[test]
    fn security_headers_are_all_there() {
        let h = security_headers();
        for (name, value) in [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'"),
        ] {
            assert!(h.contains(&(name, value)), "{name}");
        }
        assert_eq!(h.len(), 5);
    }

    // --- slugs ---

    /// A generated-looking slug of `n` characters.
    fn random_looking(n: usize) -> String {
        "k7Q2xZp9-Lm4_Vb8RtcW".chars().cycle().take(n).collect()
    }

    #[test]
    fn slugs_valid_weak_and_invalid() {
        assert_eq!(check_slug("k7Q2xZp9-Lm4_Vb8Rt"), SlugCheck::Ok);
        assert_eq!(
            check_slug("550e8400-e29b-41d4-a716-446655440000"),
            SlugCheck::Ok
        );
        assert_eq!(
            check_slug("3f9a1c7e5b2d4086af13c9e7b5d20468"),
            SlugCheck::Ok
        );
        assert_eq!(
            check_slug(&random_looking(16)),
            SlugCheck::Ok,
            "16 characters"
        );
        assert_eq!(
            check_slug(&random_looking(128)),
            SlugCheck::Ok,
            "128 characters"
        );

        let weak = |s: &str| matches!(check_slug(s), SlugCheck::Weak(_));
        assert!(weak("k7Q2xZp9"), "8 characters");
        assert!(weak("k7Q2xZp9-Lm4_Vb"), "15 characters");
        assert!(weak("correcthorsebatterystaple"), "only lowercase");
        assert!(weak("CORRECTHORSEBATTERY"), "only uppercase");
        assert!(weak("12345678901234567890"), "only digits");
        assert!(weak("abababababababab1"), "few distinct characters");
        assert!(
            weak("a1-b2_c3Da1-b2_c3D"),
            "9 distinct characters, mixed classes"
        );
        assert_eq!(
            check_slug("a1-b2_c3D4a1-b2_c3D4"),
            SlugCheck::Ok,
            "10 distinct"
        );
        assert!(weak("CorrectHorseBattery2024"), "word and number");

        let invalid = |s: &str| matches!(check_slug(s), SlugCheck::Invalid(_));
        assert!(invalid(""));
        assert!(invalid("k7Q2xZp"), "7 characters");
        assert!(invalid(&random_looking(129)), "129 characters");
        assert!(invalid("k7Q2xZp9/Lm4_Vb8Rt"));
        assert!(invalid("k7Q2xZp9 Lm4_Vb8Rt"));
        assert!(invalid("k7Q2xZp9.Lm4_Vb8Rt"));
        assert!(invalid("k7Q2xZp9-Lm4_Vb8Rä"));
    }

    #[test]
    fn slug_reasons_never_contain_the_slug() {
        for slug in ["k7Q2x/Zp9Lm4Vb8Rt", "k7Q2xZp9", "passwordpassword", "k7Q"] {
            match check_slug(slug) {
                SlugCheck::Weak(why) | SlugCheck::Invalid(why) => {
                    assert!(!why.contains(slug), "{why}");
                    assert!(!why.contains("k7Q"), "{why}");
                    assert!(!why.contains("password"), "{why}");
                }
                SlugCheck::Ok => panic!("{slug} should not be Ok"),
            }
        }
    }

    #[test]
    fn guards_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<RateLimiter>();
        shared::<EnumerationGuard>();
        shared::<OriginPolicy>();
        shared::<TrustedProxies>();
    }
}
