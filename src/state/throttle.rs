//! The per-user slow-down of wrong secrets on the OAuth sign-in form (`oauth::throttle`) in
//! the shared store, so that every instance keeps one schedule per user name: the same rule,
//! in one Lua script each for admitting an attempt and for its end.
//!
//! Keys, all derived from the name's HMAC (hex; never the name): `kimai-mcp:o:thr:<k>` a hash
//! (`failures`, `last` failure, `next` slot, in ms of the store's clock), `…:thrb:<k>` the
//! Bloom filter of addresses that failed (a bit string), `…:thri:<k>` the attempts in flight
//! (`address|id`, scored by when their lease lapses). All expire a window after the last
//! failure.

use super::{PREFIX, Store, Unreachable, millis};
use std::time::Duration;

/// How long an attempt in flight counts as such at most (the wait, the secret check and the
/// answer take far less; an instance killed mid-attempt leaves it this long).
const ATTEMPT_LEASE: Duration = Duration::from_secs(60);

/// The rule's numbers (`oauth::Settings`).
pub struct SignInRule {
    pub free: u32,
    pub base: Duration,
    pub cap: Duration,
    pub window: Duration,
}

/// KEYS: entry, filter, in flight. ARGV: free failures, base ms, cap ms, window ms, address,
/// attempt id, lease ms, then the filter positions. {1, wait ms} when admitted, {0, wait ms}
/// when refused (the secret must not be checked).
pub(super) const BEGIN: &str = r#"
local h, b, f = KEYS[1], KEYS[2], KEYS[3]
local free, base, cap, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ip, lease = ARGV[5], tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', f, '-inf', now)
local last = tonumber(redis.call('HGET', h, 'last') or '0')
if now - last >= window then
  redis.call('HSET', h, 'failures', 0)
  redis.call('DEL', b)
end
local failures = tonumber(redis.call('HGET', h, 'failures') or '0')
local wait = 0
if failures >= free then
  local slot = tonumber(redis.call('HGET', h, 'next') or now)
  if slot < now then slot = now end
  wait = slot - now
  local known = false
  for _, m in ipairs(redis.call('ZRANGE', f, 0, -1)) do
    if string.sub(m, 1, #ip + 1) == ip .. '|' then known = true end
  end
  if not known then
    known = true
    for i = 8, #ARGV do
      if redis.call('GETBIT', b, ARGV[i]) == 0 then known = false end
    end
  end
  if wait <= cap then
    local d = failures - free
    if d > 30 then d = 30 end
    local delay = base * math.pow(2, d)
    if delay > cap then delay = cap end
    redis.call('HSET', h, 'next', string.format('%d', slot + delay))
  elseif not known then
    wait = cap
  else
    return {0, wait - cap}
  end
end
redis.call('HINCRBY', h, 'failures', 1)
redis.call('HSET', h, 'last', string.format('%d', now))
redis.call('ZADD', f, now + lease, ip .. '|' .. ARGV[6])
redis.call('PEXPIRE', h, window + lease)
redis.call('PEXPIRE', f, window + lease)
return {1, wait}
"#;

/// KEYS: entry, filter, in flight. ARGV: address, attempt id, 1 if the secret was right,
/// window ms, then the filter positions.
pub(super) const FINISH: &str = r#"
local h, b, f = KEYS[1], KEYS[2], KEYS[3]
redis.call('ZREM', f, ARGV[1] .. '|' .. ARGV[2])
if redis.call('EXISTS', h) == 0 then return 0 end
local failures
if ARGV[3] == '1' then
  failures = redis.call('HINCRBY', h, 'failures', -1)
  if failures < 0 then
    redis.call('HSET', h, 'failures', 0)
    failures = 0
  end
else
  failures = tonumber(redis.call('HGET', h, 'failures') or '0')
  for i = 5, #ARGV do redis.call('SETBIT', b, ARGV[i], 1) end
  redis.call('PEXPIRE', b, ARGV[4])
end
if failures == 0 and redis.call('ZCARD', f) == 0 then
  redis.call('DEL', h, b, f)
end
return 1
"#;

fn keys(key: &str) -> [String; 3] {
    [
        format!("{PREFIX}o:thr:{key}"),
        format!("{PREFIX}o:thrb:{key}"),
        format!("{PREFIX}o:thri:{key}"),
    ]
}

impl Store {
    /// Admits a sign-in attempt for the name whose HMAC is `key`, from `ip`: `Ok(Ok(wait))`
    /// (sleep it, then check the secret), or `Ok(Err(wait))` (refused without checking).
    pub fn sign_in_begin(
        &self,
        key: &str,
        ip: &str,
        attempt: &str,
        positions: &[usize],
        rule: &SignInRule,
    ) -> Result<Result<Duration, Duration>, Unreachable> {
        let [h, b, f] = keys(key);
        let (admitted, wait): (i64, i64) = self.run("slowing wrong sign-ins", |c| {
            let mut inv = self.scripts.oauth.sign_in_begin.prepare_invoke();
            inv.key(&h)
                .key(&b)
                .key(&f)
                .arg(rule.free)
                .arg(millis(rule.base))
                .arg(millis(rule.cap))
                .arg(millis(rule.window))
                .arg(ip)
                .arg(attempt)
                .arg(millis(ATTEMPT_LEASE));
            for p in positions {
                inv.arg(*p);
            }
            inv.invoke(c)
        })?;
        let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        Ok(if admitted == 1 { Ok(wait) } else { Err(wait) })
    }

    /// The end of an admitted attempt: a failure marks its address, a success takes back the
    /// failure counted when it was admitted.
    pub fn sign_in_finish(
        &self,
        key: &str,
        ip: &str,
        attempt: &str,
        ok: bool,
        positions: &[usize],
        window: Duration,
    ) -> Result<(), Unreachable> {
        let [h, b, f] = keys(key);
        self.run("ending a sign-in attempt", |c| {
            let mut inv = self.scripts.oauth.sign_in_finish.prepare_invoke();
            inv.key(&h)
                .key(&b)
                .key(&f)
                .arg(ip)
                .arg(attempt)
                .arg(if ok { "1" } else { "0" })
                .arg(millis(window));
            for p in positions {
                inv.arg(*p);
            }
            inv.invoke::<i64>(c)
        })
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_schedule_queues_then_refuses_known_addresses_but_admits_a_new_one() {
        let Some(redis) = super::super::testing::TestRedis::start("state::throttle") else {
            return;
        };
        let s = redis.store();
        let rule = SignInRule {
            free: 2,
            base: Duration::from_millis(1000),
            cap: Duration::from_millis(2500),
            window: Duration::from_secs(60),
        };
        let pos = [1, 2, 3];
        let begin = |ip: &str, id: &str| s.sign_in_begin("k", ip, id, &pos, &rule).unwrap();
        // Two free attempts, then a queue spaced by a doubling delay: 0, 1 s, 3 s (over the
        // 2.5 s cap: refused for an address with an attempt in flight).
        assert_eq!(begin("10.0.0.1", "a"), Ok(Duration::ZERO));
        assert_eq!(begin("10.0.0.1", "b"), Ok(Duration::ZERO));
        assert_eq!(begin("10.0.0.1", "c"), Ok(Duration::ZERO));
        let w = begin("10.0.0.1", "d").unwrap();
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_millis(1000),
            "{w:?}"
        );
        let refused = begin("10.0.0.1", "e").unwrap_err();
        assert!(
            refused > Duration::ZERO && refused <= Duration::from_millis(500),
            "{refused:?}"
        );
        // An address that never failed and has nothing in flight is admitted after the cap.
        assert_eq!(begin("10.0.0.2", "f"), Ok(rule.cap));
        // Its failure marks it: the next attempt from it is refused.
        s.sign_in_finish("k", "10.0.0.2", "f", false, &pos, rule.window)
            .unwrap();
        assert!(begin("10.0.0.2", "g").is_err());
        // A success takes its failure back; with nothing in flight and no failure, the entry
        // is gone.
        for id in ["a", "b", "c", "d"] {
            s.sign_in_finish("k", "10.0.0.1", id, true, &pos, rule.window)
                .unwrap();
        }
        let mut c = redis.conn();
        let failures: Option<i64> = redis::cmd("HGET")
            .arg(format!("{PREFIX}o:thr:k"))
            .arg("failures")
            .query(&mut c)
            .unwrap();
        // One failure left: 10.0.0.2's.
        assert_eq!(failures, Some(1));
    }
}
