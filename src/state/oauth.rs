//! The authorization server's tables in the shared store (`serve --state` with `--public-url`),
//! so that a client registered, a sign-in started or a token issued on one instance works on
//! every other, and outlives the instance that made it.
//!
//! Keys (all under `kimai-mcp:o:`), each expiring by itself:
//!
//! | key | holds | expires |
//! |---|---|---|
//! | `c:<client id>` | the client (JSON, secret as a digest) | after the idle time, reset on use |
//! | `cg:<client id>` | its grants by when they end (a client with a live grant is never forgotten to make room) | with its last grant |
//! | `clients` | sorted set of client ids by last use (the `--max-clients` count) | — |
//! | `reg:<address>` | registrations in the current window | with the window |
//! | `rq:<digest of id>` | a sign-in in progress (JSON) | request lifetime |
//! | `rqf:<digest of id>` | its wrong sign-ins | request lifetime |
//! | `rqip:<address>`, `rqall`, `rqips` | sign-ins in progress by start, per address and in all; addresses by how many they hold | request lifetime |
//! | `code:<digest>` | an authorization code (JSON, the user sealed) | code lifetime |
//! | `used:<digest>` | the grant a redeemed code made (a second redemption revokes it) | code lifetime |
//! | `g:<grant id>` | a grant (hash: client, owner, the user sealed, resource, scope, current refresh and access digests) | with its refresh token |
//! | `rt:<digest>` | current refresh token → grant | with the refresh token |
//! | `rr:<digest>` | rotated refresh token → grant, its successor's digest, when (reuse detection) | refresh lifetime |
//! | `gr:<grant id>` | the grant's rotated tokens, newest first, at most [`MAX_ROTATED`] | with the grant |
//! | `at:<digest>` | access token → grant, the user sealed, resource, scope (JSON) | access lifetime |
//! | `gs:<owner>` | a user's grants by creation (for the cap of sign-ins per user) | with the newest |
//! | `doc:<digest of URL>` | a client metadata document's answer (the document or the refusal) | its cache lifetime |
//! | `prov:<digest of identity>`, `provslug:<digest of slug>`, `provlock:<digest of identity>` | a provisioned person (encrypted with `--state-key-file`), the index by slug, and the lock while one instance provisions | never / never / 30 s |
//! | `login:<digest of state>`, `loginfor:<digest of request id>` | an identity-provider sign-in in flight (JSON, its secrets sealed), and the one of each sign-in in progress | sign-in lifetime |
//!
//! Redeeming a code, issuing a grant, rotating a refresh token and revoking are each one Lua
//! script, so two instances never interleave inside one: a code is redeemed once across all
//! instances, and a refresh token presented twice (on any instances, at any moment) is
//! rotated once and revokes the grant the second time.
//!
//! The user (the `users.json` slug, which is a credential) is never stored in clear: a code,
//! an access token and a grant hold it sealed with the code, the access token or the current
//! refresh token (`oauth::shared::seal`), which only the client holds; a grant's `owner` is its
//! SHA-256 digest, which groups a user's grants.

use super::{PREFIX, Store, Unreachable, millis};
use std::time::Duration;

/// Rotated refresh tokens remembered per grant (for reuse detection), as in memory: a client
/// refreshing in a loop cannot fill the store.
pub const MAX_ROTATED: usize = 1000;

/// The prefix of every key here.
fn prefix() -> String {
    format!("{PREFIX}o:")
}

/// The Lua function that revokes a grant by id: its current tokens, its place in its user's
/// set and the grant go. Returns the grant's client id, or false when there was none.
const REVOKE_FN: &str = r#"
local function revoke(p, id)
  local g = p .. 'g:' .. id
  local f = redis.call('HMGET', g, 'refresh', 'access', 'owner', 'client_id')
  if not f[3] then return false end
  if f[1] then redis.call('DEL', p .. 'rt:' .. f[1]) end
  if f[2] then redis.call('DEL', p .. 'at:' .. f[2]) end
  redis.call('ZREM', p .. 'gs:' .. f[3], id)
  if f[4] then redis.call('ZREM', p .. 'cg:' .. f[4], id) end
  for _, r in ipairs(redis.call('LRANGE', p .. 'gr:' .. id, 0, -1)) do
    redis.call('DEL', p .. 'rr:' .. r)
  end
  redis.call('DEL', g, p .. 'gr:' .. id)
  return f[4]
end
"#;

/// ARGV: prefix, client id, client JSON, idle ms, max clients, busy ms. 1 when stored, 0 when
/// full.
///
/// A full table forgets, oldest use first, clients nobody is using — none used within the
/// last `busy` ms (a sign-in in progress or a code not yet redeemed) and none with a live
/// grant (`cg:<client>`) —, 1% of the table at a time, as the table in memory does; when every
/// client is in use, the registration is refused. So a flood of registrations from many
/// addresses cannot fill the table for a month and keep everyone else out.
pub(super) const CLIENT_PUT: &str = r#"
local p = ARGV[1]
local all = p .. 'clients'
redis.call('ZREMRANGEBYSCORE', all, '-inf', now - tonumber(ARGV[4]))
local max = tonumber(ARGV[5])
if redis.call('EXISTS', p .. 'c:' .. ARGV[2]) == 0 and redis.call('ZCARD', all) >= max then
  local batch = math.max(1, math.floor(max / 100))
  local forgotten = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', all, '-inf', now - tonumber(ARGV[6]))) do
    if redis.call('ZCOUNT', p .. 'cg:' .. id, now, '+inf') == 0 then
      redis.call('DEL', p .. 'c:' .. id, p .. 'cg:' .. id)
      redis.call('ZREM', all, id)
      forgotten = forgotten + 1
      if forgotten >= batch then break end
    end
  end
  if forgotten == 0 then return 0 end
end
redis.call('SET', p .. 'c:' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', all, now, ARGV[2])
return 1
"#;

/// ARGV: prefix, client id, idle ms. Marks a client as used now.
pub(super) const CLIENT_TOUCH: &str = r#"
local p = ARGV[1]
if redis.call('PEXPIRE', p .. 'c:' .. ARGV[2], ARGV[3]) == 1 then
  redis.call('ZADD', p .. 'clients', now, ARGV[2])
end
return 1
"#;

/// KEYS: counter. ARGV: window ms, max. 0 when counted, else the ms until the window ends.
pub(super) const WINDOW_COUNT: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[1])
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then left = 1 end
  return left
end
return 0
"#;

/// The Lua functions of the sign-ins in progress: `recount` trims an address's set of the
/// expired and keeps `rqips` (addresses by how many sign-ins they hold) right for it; `finish`
/// ends one sign-in everywhere.
const REQUEST_FNS: &str = r#"
local function recount(p, ip, ttl)
  local ipk = p .. 'rqip:' .. ip
  redis.call('ZREMRANGEBYSCORE', ipk, '-inf', now - ttl)
  local n = redis.call('ZCARD', ipk)
  if n == 0 then redis.call('ZREM', p .. 'rqips', ip) else redis.call('ZADD', p .. 'rqips', n, ip) end
  return n
end
local function finish(p, id, ip)
  redis.call('DEL', p .. 'rq:' .. id, p .. 'rqf:' .. id)
  redis.call('ZREM', p .. 'rqall', id)
  redis.call('ZREM', p .. 'rqip:' .. ip, id)
end
"#;

/// A script that needs [`REQUEST_FNS`].
pub(super) fn with_request_fns(body: &str) -> String {
    format!("{REQUEST_FNS}{body}")
}

/// ARGV: prefix, digest of the request id, request JSON, address, ttl ms, per-address cap,
/// max in total. Returns {1, ended} when stored (ended: sign-ins ended to make room), {0, wait
/// seconds} when the table is full and nothing may be ended yet.
///
/// Room is made as in memory: one address at its cap ends its own oldest sign-in; a full table
/// ends the oldest sign-in of the address that holds the most (if it holds more than one),
/// else the oldest sign-in overall once it is a tenth of the lifetime old.
pub(super) const REQUEST_OPEN: &str = r#"
local p = ARGV[1]
local ttl = tonumber(ARGV[5])
local ip = ARGV[4]
local ipk = p .. 'rqip:' .. ip
local all = p .. 'rqall'
redis.call('ZREMRANGEBYSCORE', all, '-inf', now - ttl)
local ended = 0
while recount(p, ip, ttl) >= tonumber(ARGV[6]) do
  finish(p, redis.call('ZRANGE', ipk, 0, 0)[1], ip)
  ended = ended + 1
end
if redis.call('ZCARD', all) >= tonumber(ARGV[7]) then
  local made = false
  for _ = 1, 8 do
    local top = redis.call('ZREVRANGE', p .. 'rqips', 0, 0)[1]
    if not top then break end
    local n = recount(p, top, ttl)
    if n > 0 and redis.call('ZREVRANGE', p .. 'rqips', 0, 0)[1] == top then
      if n > 1 then
        finish(p, redis.call('ZRANGE', p .. 'rqip:' .. top, 0, 0)[1], top)
        recount(p, top, ttl)
        made = true
      end
      break
    end
  end
  if not made then
    local oldest = redis.call('ZRANGE', all, 0, 0, 'WITHSCORES')
    if not oldest[1] then return {0, 60} end
    local age = now - tonumber(oldest[2])
    local min_age = math.floor(ttl / 10)
    if age < min_age then return {0, math.max(1, math.ceil((min_age - age) / 1000))} end
    local v = redis.call('GET', p .. 'rq:' .. oldest[1])
    local oip = ''
    if v then oip = cjson.decode(v).ip or '' end
    finish(p, oldest[1], oip)
    if oip ~= '' then recount(p, oip, ttl) end
  end
  ended = ended + 1
end
redis.call('SET', p .. 'rq:' .. ARGV[2], ARGV[3], 'PX', ttl)
redis.call('ZADD', ipk, now, ARGV[2])
redis.call('PEXPIRE', ipk, ttl)
redis.call('ZADD', all, now, ARGV[2])
redis.call('PEXPIRE', all, ttl)
recount(p, ip, ttl)
redis.call('PEXPIRE', p .. 'rqips', ttl)
return {1, ended}
"#;

/// ARGV: prefix, digest of the request id, its address, ttl ms. The request (ended), or false.
pub(super) const REQUEST_TAKE: &str = r#"
local p = ARGV[1]
local v = redis.call('GET', p .. 'rq:' .. ARGV[2])
if not v then return false end
finish(p, ARGV[2], ARGV[3])
recount(p, ARGV[3], tonumber(ARGV[4]))
return v
"#;

/// ARGV: prefix, digest of the request id, its address, max failures, ttl ms. Counts a wrong
/// sign-in; 1 while the request stays open, 0 when it ended (or was gone).
pub(super) const REQUEST_FAIL: &str = r#"
local p = ARGV[1]
local key = p .. 'rq:' .. ARGV[2]
local left = redis.call('PTTL', key)
if left < 1 then return 0 end
local n = redis.call('INCR', p .. 'rqf:' .. ARGV[2])
redis.call('PEXPIRE', p .. 'rqf:' .. ARGV[2], left)
if n >= tonumber(ARGV[4]) then
  finish(p, ARGV[2], ARGV[3])
  recount(p, ARGV[3], tonumber(ARGV[5]))
  return 0
end
return 1
"#;

/// ARGV: prefix, code digest, the id the grant will have, code ttl ms, grace ms. {1, code
/// JSON} when redeemed now; {2, record, 1 if within the grace time} when it had been redeemed
/// (the record is `grant id`, a newline and the code JSON; nothing is revoked here: the caller
/// decides between a retry and a reuse); {0, ''} when unknown.
pub(super) const CODE_REDEEM: &str = r#"
local p = ARGV[1]
local c = redis.call('GET', p .. 'code:' .. ARGV[2])
if c then
  redis.call('DEL', p .. 'code:' .. ARGV[2])
  redis.call('SET', p .. 'used:' .. ARGV[2], ARGV[3] .. '\n' .. c .. '\n' .. string.format('%d', now), 'PX', ARGV[4])
  return {1, c}
end
local u = redis.call('GET', p .. 'used:' .. ARGV[2])
if u then
  local at = tonumber(string.match(u, '\n(%d+)$') or '0')
  local recent = 0
  if now - at <= tonumber(ARGV[5]) then recent = 1 end
  return {2, u, recent}
end
return {0, ''}
"#;

/// ARGV: prefix, grant id, client id, owner (the digest of the user), resource, scope, refresh
/// digest, access digest, access JSON, refresh ttl ms, access ttl ms, grants per user, the
/// user sealed with the refresh token. Stores a new grant
/// with its first token pair; a user at the cap loses their oldest grants. Returns the number
/// of grants ended.
pub(super) const GRANT_ISSUE: &str = r#"
local p = ARGV[1]
local gid = ARGV[2]
local owner = ARGV[4]
local rttl = tonumber(ARGV[10])
local gs = p .. 'gs:' .. owner
for _, id in ipairs(redis.call('ZRANGE', gs, 0, -1)) do
  if redis.call('EXISTS', p .. 'g:' .. id) == 0 then redis.call('ZREM', gs, id) end
end
local ended = 0
local n = redis.call('ZCARD', gs)
local cap = tonumber(ARGV[12])
if n >= cap then
  for _, id in ipairs(redis.call('ZRANGE', gs, 0, n - cap)) do
    revoke(p, id)
    ended = ended + 1
  end
end
local g = p .. 'g:' .. gid
redis.call('HSET', g, 'client_id', ARGV[3], 'owner', owner, 'subject', ARGV[13], 'resource', ARGV[5], 'fresh', '1',
  'scope', ARGV[6], 'refresh', ARGV[7], 'access', ARGV[8], 'created', string.format('%d', now),
  'refresh_expires', string.format('%d', now + rttl))
redis.call('PEXPIRE', g, rttl)
redis.call('SET', p .. 'rt:' .. ARGV[7], gid, 'PX', rttl)
redis.call('SET', p .. 'at:' .. ARGV[8], ARGV[9], 'PX', ARGV[11])
redis.call('ZADD', gs, now, gid)
if redis.call('PTTL', gs) < rttl then redis.call('PEXPIRE', gs, rttl) end
local cg = p .. 'cg:' .. ARGV[3]
redis.call('ZADD', cg, now + rttl, gid)
if redis.call('PTTL', cg) < rttl then redis.call('PEXPIRE', cg, rttl) end
return ended
"#;

/// ARGV: prefix, presented refresh digest, the grant it was read as, new refresh digest, new
/// access digest, access JSON, refresh ttl ms, access ttl ms, the user sealed with the new
/// refresh token, grace ms, the user sealed with the presented token, rotated tokens kept per
/// grant. {1, gid} when rotated; {2, client id or ''} when the token had
/// been rotated already (the grant is revoked now); {0, ''} when unknown or no longer that
/// grant's.
///
/// A rotated token is kept as `grant|successor|when|the user sealed with it`. Presented again within the grace time
/// while its successor is still unused (the answer of that rotation was lost: an instance died
/// after the script and before its answer reached the client), it rotates once more from the
/// successor instead of revoking; at most once, since the successor is then rotated too.
pub(super) const ROTATE: &str = r#"
local p = ARGV[1]
local old = ARGV[2]
local gid = redis.call('GET', p .. 'rt:' .. old)
local retry = false
if not gid then
  local r = redis.call('GET', p .. 'rr:' .. old)
  if not r then return {0, ''} end
  local rg, succ, at = string.match(r, '^([^|]*)|([^|]*)|(%d+)|')
  if not rg then rg = r end
  if succ and succ ~= '' and rg == ARGV[3] and now - tonumber(at) <= tonumber(ARGV[10])
      and redis.call('GET', p .. 'rt:' .. succ) == rg then
    old = succ
    gid = rg
    retry = true
  else
    local client = revoke(p, rg)
    return {2, client or ''}
  end
end
if gid ~= ARGV[3] then return {0, ''} end
local g = p .. 'g:' .. gid
local f = redis.call('HMGET', g, 'access', 'owner', 'client_id')
if not f[2] then
  redis.call('DEL', p .. 'rt:' .. old)
  return {0, ''}
end
local rttl = tonumber(ARGV[7])
redis.call('DEL', p .. 'rt:' .. old)
if f[1] then redis.call('DEL', p .. 'at:' .. f[1]) end
if retry then
  -- The lost answer's token never reached its client: presented, it is a reuse.
  redis.call('SET', p .. 'rr:' .. old, gid .. '||0|', 'PX', rttl)
else
  redis.call('SET', p .. 'rr:' .. old, gid .. '|' .. ARGV[4] .. '|' .. string.format('%d', now) .. '|' .. ARGV[11], 'PX', rttl)
end
-- The grant's rotated tokens, newest first, at most MAX_ROTATED: the oldest is forgotten.
local gr = p .. 'gr:' .. gid
redis.call('LPUSH', gr, old)
if redis.call('LLEN', gr) > tonumber(ARGV[12]) then
  redis.call('DEL', p .. 'rr:' .. redis.call('RPOP', gr))
end
redis.call('PEXPIRE', gr, rttl)
redis.call('SET', p .. 'rt:' .. ARGV[4], gid, 'PX', rttl)
redis.call('SET', p .. 'at:' .. ARGV[5], ARGV[6], 'PX', ARGV[8])
redis.call('HSET', g, 'refresh', ARGV[4], 'access', ARGV[5], 'subject', ARGV[9], 'fresh', '0',
  'refresh_expires', string.format('%d', now + rttl))
redis.call('PEXPIRE', g, rttl)
if f[3] then
  local cg = p .. 'cg:' .. f[3]
  redis.call('ZADD', cg, now + rttl, gid)
  if redis.call('PTTL', cg) < rttl then redis.call('PEXPIRE', cg, rttl) end
end
return {1, gid}
"#;

/// ARGV: prefix, grant id, new refresh digest, new access digest, access JSON, refresh ttl
/// ms, access ttl ms, the user sealed with the new refresh token. Replaces the first token
/// pair of a grant never refreshed (the retry of a code exchange whose answer was lost); once
/// only. 1 when done, 0 when the grant is gone or was refreshed or reissued already.
pub(super) const GRANT_REISSUE: &str = r#"
local p = ARGV[1]
local g = p .. 'g:' .. ARGV[2]
local f = redis.call('HMGET', g, 'refresh', 'access', 'fresh', 'owner')
if not f[4] or f[3] ~= '1' then return 0 end
if f[1] then redis.call('DEL', p .. 'rt:' .. f[1]) end
if f[2] then redis.call('DEL', p .. 'at:' .. f[2]) end
redis.call('SET', p .. 'rt:' .. ARGV[3], ARGV[2], 'PX', ARGV[6])
redis.call('SET', p .. 'at:' .. ARGV[4], ARGV[5], 'PX', ARGV[7])
redis.call('HSET', g, 'refresh', ARGV[3], 'access', ARGV[4], 'subject', ARGV[8], 'fresh', '0')
return 1
"#;

/// ARGV: prefix, grant id. The revoked grant's client id, or false.
pub(super) const GRANT_REVOKE: &str = r#"
return revoke(ARGV[1], ARGV[2])
"#;

/// A script that needs [`REVOKE_FN`].
pub(super) fn with_revoke(body: &str) -> String {
    format!("{REVOKE_FN}{body}")
}

/// The grant of a rotated refresh token's record (`grant|successor|when|sealed user`).
pub fn rotated_grant(record: &str) -> &str {
    record.split('|').next().unwrap_or(record)
}

/// The user of a rotated refresh token's record, sealed with that token.
pub fn rotated_subject(record: &str) -> Option<&str> {
    record.split('|').nth(3)
}

/// What redeeming a code found.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// The code (as stored), redeemed now.
    Code(String),
    /// Redeemed before: the grant it made and the code (as stored), and whether that was
    /// within the grace time. Nothing is revoked yet.
    Again {
        grant: String,
        code: String,
        recent: bool,
    },
    Unknown,
}

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotated {
    Done,
    /// The token had been rotated: the grant is revoked (its client id, if it still existed).
    Reused(Option<String>),
    Unknown,
}

/// What a token's digest is found as: (current refresh token → grant, rotated refresh token →
/// grant, access token → its JSON).
pub type TokenOwner = (Option<String>, Option<String>, Option<String>);

/// A new token pair's digests and what the access token stands for (JSON), with lifetimes.
pub struct Pair<'a> {
    pub refresh: &'a str,
    pub access: &'a str,
    pub access_json: &'a str,
    pub refresh_ttl: Duration,
    pub access_ttl: Duration,
}

/// A new grant.
pub struct NewGrant<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    /// The digest of the user.
    pub owner: &'a str,
    /// The user, sealed with the refresh token.
    pub subject: &'a str,
    pub resource: &'a str,
    pub scope: &'a str,
    pub per_subject: usize,
}

impl Store {
    fn get_string(&self, what: &str, key: &str) -> Result<Option<String>, Unreachable> {
        self.run(what, |c| redis::cmd("GET").arg(key).query(c))
    }

    /// A registered client (JSON), if known.
    pub fn oauth_client(&self, id: &str) -> Result<Option<String>, Unreachable> {
        self.get_string("reading an OAuth client", &format!("{}c:{id}", prefix()))
    }

    /// Stores a client; false when `max` clients are known already.
    pub fn oauth_put_client(
        &self,
        id: &str,
        json: &str,
        idle: Duration,
        max: usize,
        busy: Duration,
    ) -> Result<bool, Unreachable> {
        let n: i64 = self.run("storing an OAuth client", |c| {
            self.scripts
                .oauth
                .client_put
                .arg(prefix())
                .arg(id)
                .arg(json)
                .arg(millis(idle))
                .arg(max)
                .arg(millis(busy))
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    /// Marks a client as used now (it is forgotten `idle` after its last use).
    pub fn oauth_touch_client(&self, id: &str, idle: Duration) -> Result<(), Unreachable> {
        self.run("marking an OAuth client as used", |c| {
            self.scripts
                .oauth
                .client_touch
                .arg(prefix())
                .arg(id)
                .arg(millis(idle))
                .invoke::<i64>(c)
        })
        .map(drop)
    }

    /// Counts one event of `kind` for `who` in a fixed window: `Ok(Ok(()))`, or `Ok(Err(wait))`
    /// when `max` are counted already (this one is not).
    pub fn oauth_count(
        &self,
        kind: &str,
        who: &str,
        window: Duration,
        max: u32,
    ) -> Result<Result<(), Duration>, Unreachable> {
        let left: i64 = self.run("counting OAuth registrations", |c| {
            self.scripts
                .oauth
                .window_count
                .key(format!("{}{kind}:{who}", prefix()))
                .arg(millis(window))
                .arg(max)
                .invoke(c)
        })?;
        Ok(match u64::try_from(left) {
            Ok(0) | Err(_) => Ok(()),
            Ok(ms) => Err(Duration::from_millis(ms)),
        })
    }

    /// Opens a sign-in: `Ok(Ok(ended))` (sign-ins ended to make room), `Ok(Err(wait))` when
    /// `max` are open across the instances and none may be ended for `wait`.
    #[allow(clippy::too_many_arguments)]
    pub fn oauth_open_request(
        &self,
        key: &str,
        json: &str,
        ip: &str,
        ttl: Duration,
        per_ip: usize,
        max: usize,
    ) -> Result<Result<u64, Duration>, Unreachable> {
        let (ok, n): (i64, u64) = self.run("storing a sign-in", |c| {
            self.scripts
                .oauth
                .request_open
                .arg(prefix())
                .arg(key)
                .arg(json)
                .arg(ip)
                .arg(millis(ttl))
                .arg(per_ip.max(1))
                .arg(max)
                .invoke(c)
        })?;
        Ok(if ok == 1 {
            Ok(n)
        } else {
            Err(Duration::from_secs(n.max(1)))
        })
    }

    /// A sign-in in progress (JSON), if open.
    pub fn oauth_request(&self, key: &str) -> Result<Option<String>, Unreachable> {
        self.get_string("reading a sign-in", &format!("{}rq:{key}", prefix()))
    }

    /// Ends a sign-in (`ttl`: the sign-ins' lifetime); what it was, if it was open.
    pub fn oauth_take_request(
        &self,
        key: &str,
        ip: &str,
        ttl: Duration,
    ) -> Result<Option<String>, Unreachable> {
        self.run("ending a sign-in", |c| {
            self.scripts
                .oauth
                .request_take
                .arg(prefix())
                .arg(key)
                .arg(ip)
                .arg(millis(ttl))
                .invoke(c)
        })
    }

    /// Counts a wrong sign-in; whether the sign-in stays open.
    pub fn oauth_request_failed(
        &self,
        key: &str,
        ip: &str,
        max: u32,
        ttl: Duration,
    ) -> Result<bool, Unreachable> {
        let n: i64 = self.run("counting a wrong sign-in", |c| {
            self.scripts
                .oauth
                .request_fail
                .arg(prefix())
                .arg(key)
                .arg(ip)
                .arg(max)
                .arg(millis(ttl))
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    /// Redeems a code once across the instances; `grant` is the id the new grant will have.
    pub fn oauth_redeem_code(
        &self,
        digest: &str,
        grant: &str,
        ttl: Duration,
        grace: Duration,
    ) -> Result<Redeemed, Unreachable> {
        let answer: Vec<redis::Value> = self.run("redeeming an authorization code", |c| {
            self.scripts
                .oauth
                .code_redeem
                .arg(prefix())
                .arg(digest)
                .arg(grant)
                .arg(millis(ttl))
                .arg(millis(grace))
                .invoke(c)
        })?;
        let text = |i: usize| -> String {
            answer
                .get(i)
                .and_then(|v| <String as redis::FromRedisValue>::from_redis_value_ref(v).ok())
                .unwrap_or_default()
        };
        let n = answer
            .first()
            .and_then(|v| <i64 as redis::FromRedisValue>::from_redis_value_ref(v).ok())
            .unwrap_or(0);
        let recent = answer
            .get(2)
            .and_then(|v| <i64 as redis::FromRedisValue>::from_redis_value_ref(v).ok())
            == Some(1);
        Ok(match n {
            1 => Redeemed::Code(text(1)),
            2 => {
                let record = text(1);
                let mut parts = record.splitn(3, '\n');
                let grant = parts.next().unwrap_or_default().to_string();
                let code = parts.next().unwrap_or_default().to_string();
                Redeemed::Again {
                    grant,
                    code,
                    recent,
                }
            }
            _ => Redeemed::Unknown,
        })
    }

    /// Replaces the first token pair of a grant never refreshed, once; whether it did.
    pub fn oauth_reissue(
        &self,
        grant: &str,
        pair: &Pair<'_>,
        sealed_subject: &str,
    ) -> Result<bool, Unreachable> {
        let n: i64 = self.run("reissuing a sign-in's tokens", |c| {
            self.scripts
                .oauth
                .grant_reissue
                .arg(prefix())
                .arg(grant)
                .arg(pair.refresh)
                .arg(pair.access)
                .arg(pair.access_json)
                .arg(millis(pair.refresh_ttl))
                .arg(millis(pair.access_ttl))
                .arg(sealed_subject)
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    /// Stores a new grant with its first token pair; returns how many of the user's oldest
    /// grants ended (at most `per_subject` are kept).
    pub fn oauth_issue_grant(&self, g: &NewGrant<'_>, pair: &Pair<'_>) -> Result<u64, Unreachable> {
        self.run("storing a sign-in's tokens", |c| {
            self.scripts
                .oauth
                .grant_issue
                .arg(prefix())
                .arg(g.id)
                .arg(g.client_id)
                .arg(g.owner)
                .arg(g.resource)
                .arg(g.scope)
                .arg(pair.refresh)
                .arg(pair.access)
                .arg(pair.access_json)
                .arg(millis(pair.refresh_ttl))
                .arg(millis(pair.access_ttl))
                .arg(g.per_subject.max(1))
                .arg(g.subject)
                .invoke(c)
        })
    }

    /// The grant a current refresh token belongs to, or (`Err`) the record of a rotated one
    /// (see [`rotated_grant`], [`rotated_subject`]).
    pub fn oauth_refresh_grant(
        &self,
        digest: &str,
    ) -> Result<Option<Result<String, String>>, Unreachable> {
        let p = prefix();
        let (current, rotated): (Option<String>, Option<String>) =
            self.run("reading a refresh token", |c| {
                redis::pipe()
                    .cmd("GET")
                    .arg(format!("{p}rt:{digest}"))
                    .cmd("GET")
                    .arg(format!("{p}rr:{digest}"))
                    .query(c)
            })?;
        Ok(match (current, rotated) {
            (Some(g), _) => Some(Ok(g)),
            (None, Some(r)) => Some(Err(r)),
            (None, None) => None,
        })
    }

    /// A grant's fields (client_id, subject, resource, scope, refresh, access, created,
    /// refresh_expires), if it exists.
    pub fn oauth_grant(
        &self,
        id: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, Unreachable> {
        let map: std::collections::HashMap<String, String> = self.run("reading a grant", |c| {
            redis::cmd("HGETALL")
                .arg(format!("{}g:{id}", prefix()))
                .query(c)
        })?;
        Ok((!map.is_empty()).then_some(map))
    }

    /// Rotates the refresh token `old` of grant `grant` to `pair`, atomically across the
    /// instances.
    pub fn oauth_rotate(
        &self,
        old: &str,
        grant: &str,
        pair: &Pair<'_>,
        sealed_subject: &str,
        grace: Duration,
        sealed_with_old: &str,
    ) -> Result<Rotated, Unreachable> {
        let (n, v): (i64, String) = self.run("rotating a refresh token", |c| {
            self.scripts
                .oauth
                .rotate
                .arg(prefix())
                .arg(old)
                .arg(grant)
                .arg(pair.refresh)
                .arg(pair.access)
                .arg(pair.access_json)
                .arg(millis(pair.refresh_ttl))
                .arg(millis(pair.access_ttl))
                .arg(sealed_subject)
                .arg(millis(grace))
                .arg(sealed_with_old)
                .arg(MAX_ROTATED)
                .invoke(c)
        })?;
        Ok(match n {
            1 => Rotated::Done,
            2 => Rotated::Reused((!v.is_empty()).then_some(v)),
            _ => Rotated::Unknown,
        })
    }

    /// Revokes a grant; its client id, if it existed.
    pub fn oauth_revoke(&self, grant: &str) -> Result<Option<String>, Unreachable> {
        self.run("revoking a grant", |c| {
            self.scripts
                .oauth
                .grant_revoke
                .arg(prefix())
                .arg(grant)
                .invoke(c)
        })
    }

    /// What an access token stands for (JSON), while it is valid.
    pub fn oauth_access(&self, digest: &str) -> Result<Option<String>, Unreachable> {
        self.get_string(
            "reading an access token",
            &format!("{}at:{digest}", prefix()),
        )
    }

    /// The grant behind any token (refresh, rotated refresh or access JSON's `grant`): the
    /// refresh indexes' grant id, or the access token's JSON.
    pub fn oauth_token_owner(&self, digest: &str) -> Result<TokenOwner, Unreachable> {
        let p = prefix();
        self.run("reading a token", |c| {
            redis::pipe()
                .cmd("GET")
                .arg(format!("{p}rt:{digest}"))
                .cmd("GET")
                .arg(format!("{p}rr:{digest}"))
                .cmd("GET")
                .arg(format!("{p}at:{digest}"))
                .query(c)
        })
    }

    /// A client metadata document's answer another instance fetched (JSON), with how long
    /// it may still be used.
    pub fn oauth_document(&self, digest: &str) -> Result<Option<(String, Duration)>, Unreachable> {
        let key = format!("{}doc:{digest}", prefix());
        let (v, left): (Option<String>, i64) =
            self.run("reading a client metadata document", |c| {
                redis::pipe()
                    .cmd("GET")
                    .arg(&key)
                    .cmd("PTTL")
                    .arg(&key)
                    .query(c)
            })?;
        Ok(v.zip(u64::try_from(left).ok().filter(|&l| l > 0))
            .map(|(v, l)| (v, Duration::from_millis(l))))
    }

    /// Stores a record of `kind` (`code`, `doc`, `login`) under a digest for `ttl`.
    pub fn oauth_put(
        &self,
        kind: &str,
        digest: &str,
        json: &str,
        ttl: Duration,
    ) -> Result<(), Unreachable> {
        self.oauth_set(&format!("{kind}:{digest}"), json, Some(ttl), false)
            .map(drop)
    }

    /// A value under `o:<suffix>` (for records that need no script).
    pub fn oauth_get(&self, suffix: &str) -> Result<Option<String>, Unreachable> {
        self.get_string("reading the shared state", &format!("{}{suffix}", prefix()))
    }

    /// Sets `o:<suffix>`, with an expiry or none; with `only_new`, only if it is not set
    /// (returns whether it was set).
    pub fn oauth_set(
        &self,
        suffix: &str,
        value: &str,
        ttl: Option<Duration>,
        only_new: bool,
    ) -> Result<bool, Unreachable> {
        let set: Option<String> = self.run("writing the shared state", |c| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(format!("{}{suffix}", prefix())).arg(value);
            if let Some(t) = ttl {
                cmd.arg("PX").arg(millis(t));
            }
            if only_new {
                cmd.arg("NX");
            }
            cmd.query(c)
        })?;
        Ok(set.is_some())
    }

    /// Deletes `o:<suffix>` for each suffix.
    pub fn oauth_del(&self, suffixes: &[&str]) -> Result<(), Unreachable> {
        let p = prefix();
        self.run("deleting from the shared state", |c| {
            let mut cmd = redis::cmd("DEL");
            for s in suffixes {
                cmd.arg(format!("{p}{s}"));
            }
            cmd.query::<i64>(c)
        })
        .map(drop)
    }

    /// Takes (ends) an identity-provider sign-in in flight, once across the instances.
    pub fn oauth_take_login(&self, digest: &str) -> Result<Option<String>, Unreachable> {
        self.run("ending a sign-in at the identity provider", |c| {
            redis::cmd("GETDEL")
                .arg(format!("{}login:{digest}", prefix()))
                .query(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::TestRedis;

    #[test]
    fn a_full_table_of_sign_ins_makes_room_at_the_busiest_address_and_never_locks_others_out() {
        let Some(redis) = TestRedis::start("state::oauth") else {
            return;
        };
        let s = redis.store();
        let ttl = Duration::from_secs(600);
        let open = |id: &str, ip: &str, max: usize| {
            let json = format!("{{\"ip\":\"{ip}\"}}");
            s.oauth_open_request(id, &json, ip, ttl, 3, max).unwrap()
        };
        let open_now = |id: &str| s.oauth_request(id).unwrap().is_some();
        // One address at its cap of 3 ends its own oldest.
        for id in ["a1", "a2", "a3"] {
            assert_eq!(open(id, "10.0.0.1", 5), Ok(0));
        }
        assert_eq!(open("a4", "10.0.0.1", 5), Ok(1));
        assert!(!open_now("a1") && open_now("a4"));
        // Full (5): a newcomer's sign-in ends the oldest of the address holding the most.
        assert_eq!(open("b1", "10.0.0.2", 5), Ok(0));
        assert_eq!(open("b2", "10.0.0.2", 5), Ok(0));
        assert_eq!(open("c1", "10.0.0.3", 5), Ok(1));
        assert!(!open_now("a2") && open_now("a3") && open_now("b1") && open_now("c1"));
        // Ended sign-ins leave their address's count.
        s.oauth_take_request("a3", "10.0.0.1", ttl)
            .unwrap()
            .unwrap();
        s.oauth_take_request("a4", "10.0.0.1", ttl)
            .unwrap()
            .unwrap();
        assert_eq!(open("d1", "10.0.0.4", 5), Ok(0));
        assert_eq!(open("e1", "10.0.0.5", 5), Ok(0));
        // Full again, 10.0.0.2 holds the most: its oldest goes, not the newcomers'.
        assert_eq!(open("f1", "10.0.0.6", 5), Ok(1));
        assert!(!open_now("b1") && open_now("b2") && open_now("d1"));
        // Every address holds one, all young: refused for a while, nobody's sign-in ended.
        let refused = open("g1", "10.0.0.7", 5).unwrap_err();
        assert!(
            refused > Duration::from_secs(50) && refused <= Duration::from_secs(60),
            "{refused:?}"
        );
        for id in ["b2", "c1", "d1", "e1", "f1"] {
            assert!(open_now(id), "{id}");
        }
    }

    #[test]
    fn a_grant_remembers_at_most_max_rotated_tokens_and_revoking_forgets_them() {
        let Some(redis) = TestRedis::start("state::oauth") else {
            return;
        };
        let s = redis.store();
        fn pair<'a>(r: &'a str, a: &'a str) -> Pair<'a> {
            let day = Duration::from_secs(86_400);
            Pair {
                refresh: r,
                access: a,
                access_json: "{}",
                refresh_ttl: day,
                access_ttl: day,
            }
        }
        let grant = NewGrant {
            id: "g",
            client_id: "c",
            owner: "o",
            subject: "s",
            resource: "https://mcp.example/mcp",
            scope: "kimai:read",
            per_subject: 50,
        };
        s.oauth_issue_grant(&grant, &pair("r0", "a0")).unwrap();
        let n = MAX_ROTATED + 5;
        for i in 0..n {
            let (old, new, access) = (
                format!("r{i}"),
                format!("r{}", i + 1),
                format!("a{}", i + 1),
            );
            let done = s
                .oauth_rotate(&old, "g", &pair(&new, &access), "s", Duration::ZERO, "s")
                .unwrap();
            assert_eq!(done, Rotated::Done, "rotation {i}");
        }
        let mut c = redis.conn();
        let kept: i64 = redis::cmd("LLEN")
            .arg("kimai-mcp:o:gr:g")
            .query(&mut c)
            .unwrap();
        assert_eq!(kept, MAX_ROTATED as i64);
        let rotated = |c: &mut redis::Connection| -> Vec<String> {
            redis::cmd("KEYS").arg("kimai-mcp:o:rr:*").query(c).unwrap()
        };
        assert_eq!(rotated(&mut c).len(), MAX_ROTATED);
        // The oldest are forgotten: presented, they are unknown; a kept one is a reuse.
        assert_eq!(s.oauth_refresh_grant("r0").unwrap(), None);
        assert!(matches!(s.oauth_refresh_grant("r5").unwrap(), Some(Err(_))));
        assert_eq!(s.oauth_revoke("g").unwrap().as_deref(), Some("c"));
        assert!(rotated(&mut c).is_empty());
        let left: Vec<String> = redis::cmd("KEYS")
            .arg("kimai-mcp:o:*")
            .query(&mut c)
            .unwrap();
        assert!(
            left.iter()
                .all(|k| !k.contains(":g") || k.ends_with(":gs:o")),
            "{left:?}"
        );
    }

    #[test]
    fn a_full_client_table_forgets_idle_clients_without_grants_and_refuses_when_all_are_in_use() {
        let Some(redis) = TestRedis::start("state::oauth") else {
            return;
        };
        let s = redis.store();
        let day = Duration::from_secs(86_400);
        let put = |id: &str, busy: Duration| s.oauth_put_client(id, "{}", day, 3, busy).unwrap();
        let known = |id: &str| s.oauth_client(id).unwrap().is_some();
        let pause = || std::thread::sleep(Duration::from_millis(5));
        for id in ["c1", "c2", "c3"] {
            assert!(put(id, Duration::ZERO));
            pause();
        }
        // Full: the least recently used client goes.
        assert!(put("c4", Duration::ZERO));
        assert!(!known("c1") && known("c2") && known("c4"));
        // A client with a live grant stays: the next oldest without one goes instead.
        let pair = Pair {
            refresh: "r",
            access: "a",
            access_json: "{}",
            refresh_ttl: day,
            access_ttl: day,
        };
        let grant = NewGrant {
            id: "g1",
            client_id: "c2",
            owner: "o",
            subject: "s",
            resource: "https://mcp.example/mcp",
            scope: "kimai:read",
            per_subject: 50,
        };
        s.oauth_issue_grant(&grant, &pair).unwrap();
        pause();
        assert!(put("c5", Duration::ZERO));
        assert!(known("c2") && !known("c3") && known("c5"));
        // Every client used within the busy time (a sign-in may be in progress): refused.
        assert!(!put("c6", Duration::from_secs(3600)));
        assert!(!known("c6"));
        // Its grant revoked, c2 may go too.
        assert_eq!(s.oauth_revoke("g1").unwrap().as_deref(), Some("c2"));
        assert!(put("c7", Duration::ZERO));
        assert!(!known("c2") && known("c7"));
    }
}
