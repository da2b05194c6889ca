//! The limits' counters in the shared store, so that two instances enforce one limit together:
//!
//! - token buckets (`--rate-limit-rpm` per address, `--user-rate-limit-rpm` per credential,
//!   `--session-rate-per-address`): the same GCRA as `guard::RateLimiter`, one key per client
//!   holding the instant (µs of the store's clock) its bucket is full again, expiring then;
//! - the unknown-slug guard: a sorted set of miss instants per address within the window, and a
//!   block key that expires when the block ends;
//! - tool calls in flight per credential (`--max-calls-per-user`): a sorted set of lease ids
//!   scored by the instant they lapse (`--call-lease`), so that an instance killed mid-call
//!   leaves no place taken for longer than the lease.
//!
//! Addresses and credentials appear only as the limit key (an address, or a credential's HMAC
//! fingerprint in hex), never as a token or slug.

use super::{PREFIX, Store, Unreachable, millis};
use std::time::Duration;

/// One token of a bucket. KEYS: bucket. ARGV: interval µs, capacity µs. 0 when taken, else
/// the µs until one is.
pub(super) const RATE_TAKE: &str = r#"
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local full_at = tonumber(redis.call('GET', KEYS[1]) or now_us)
if full_at < now_us then full_at = now_us end
full_at = full_at + interval
local deficit = full_at - now_us
if deficit > capacity then return deficit - capacity end
redis.call('SET', KEYS[1], string.format('%d', full_at), 'PX', math.ceil(deficit / 1000))
return 0
"#;

/// A miss. KEYS: misses, block. ARGV: window ms, max misses, block ms, a unique member.
/// 1 when this miss blocked the address, else 0.
pub(super) const MISS: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// A lease. KEYS: leases. ARGV: max, lease ms, lease id. 1 when taken.
pub(super) const LEASE_TAKE: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
local left = redis.call('PTTL', KEYS[1])
if left < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
"#;

/// Leases not lapsed. KEYS: leases.
pub(super) const LEASE_COUNT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"#;

/// A place among a credential's calls in the store (give it back with
/// [`Store::return_lease`]; it lapses by itself otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseId {
    key: String,
    id: String,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Store {
    /// Takes one token from the bucket `kind`/`who` (`interval` per token, a burst worth
    /// `capacity`): `Ok(Ok(()))`, or `Ok(Err(wait))` until one is there.
    pub fn take_token(
        &self,
        kind: &str,
        who: &str,
        interval: Duration,
        capacity: Duration,
    ) -> Result<Result<(), Duration>, Unreachable> {
        let key = format!("{PREFIX}rate:{kind}:{who}");
        let wait: u64 = self.run("counting a rate limit", |c| {
            self.scripts
                .rate_take
                .key(&key)
                .arg(micros(interval))
                .arg(micros(capacity))
                .invoke(c)
        })?;
        Ok(if wait == 0 {
            Ok(())
        } else {
            Err(Duration::from_micros(wait))
        })
    }

    /// How long the address stays blocked by the unknown-slug guard (`None`: not blocked).
    pub fn blocked(&self, who: &str) -> Result<Option<Duration>, Unreachable> {
        let key = format!("{PREFIX}enum:block:{who}");
        let ms: i64 = self.run("reading the unknown-slug guard", |c| {
            redis::cmd("PTTL").arg(&key).query(c)
        })?;
        Ok(u64::try_from(ms)
            .ok()
            .filter(|&m| m > 0)
            .map(Duration::from_millis))
    }

    /// Records an unknown-slug miss of `who`; true when this one blocked it for `block_for`
    /// (more than `max_misses` within `window`, counted across the instances).
    pub fn miss(
        &self,
        who: &str,
        max_misses: u32,
        window: Duration,
        block_for: Duration,
    ) -> Result<bool, Unreachable> {
        let member = crate::secret::random_hex::<8>().unwrap_or_else(|_| "x".into());
        let n: i64 = self.run("counting an unknown slug", |c| {
            self.scripts
                .miss
                .key(format!("{PREFIX}enum:miss:{who}"))
                .key(format!("{PREFIX}enum:block:{who}"))
                .arg(millis(window))
                .arg(max_misses)
                .arg(millis(block_for))
                .arg(&member)
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    /// A place among `who`'s calls if fewer than `max` are in flight across the instances,
    /// held for at most `lease`.
    pub fn take_lease(
        &self,
        who: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Option<LeaseId>, Unreachable> {
        let key = format!("{PREFIX}calls:{who}");
        let id = crate::secret::random_hex::<12>().map_err(|_| Unreachable)?;
        let taken: i64 = self.run("taking a call place", |c| {
            self.scripts
                .lease_take
                .key(&key)
                .arg(max)
                .arg(millis(lease))
                .arg(&id)
                .invoke(c)
        })?;
        Ok((taken == 1).then_some(LeaseId { key, id }))
    }

    /// Gives a place back (a failure leaves it to lapse).
    pub fn return_lease(&self, lease: &LeaseId) {
        let _ = self.run("giving a call place back", |c| {
            redis::cmd("ZREM")
                .arg(&lease.key)
                .arg(&lease.id)
                .query::<i64>(c)
        });
    }

    /// `who`'s calls in flight across the instances (leases not lapsed).
    pub fn leases(&self, who: &str) -> Result<usize, Unreachable> {
        let n: i64 = self.run("counting call places", |c| {
            self.scripts
                .lease_count
                .key(format!("{PREFIX}calls:{who}"))
                .invoke(c)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
