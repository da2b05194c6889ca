//! Streamable HTTP session records in the shared store, and the session caps counted across
//! instances.
//!
//! A record is a hash `kimai-mcp:s:<id>` holding what any instance needs to serve the session:
//! the owner (the HMAC fingerprint of the credentials that created it, hex), the transport, the
//! negotiated protocol version, whether `notifications/initialized` arrived, the client's
//! self-reported name and the audit label. Never a slug or a token: the Kimai account is derived
//! again from the caller's credentials on every request, which must fingerprint to the owner.
//! The record expires by itself after the session TTL; every use sets it again (sliding TTL).
//!
//! Two sorted sets index the records by last use (the store's clock, in ms): one per owner
//! (`kimai-mcp:so:<owner>`, for `--max-sessions-per-user`: a new session beyond it ends that
//! owner's least recently used one) and one for all (`kimai-mcp:sessions`, for
//! `--max-sessions`). Entries older than the TTL are trimmed by the scripts that count them, so
//! a record that expired leaves no count behind.

use super::{PREFIX, Store, Unreachable, millis};
use std::time::Duration;

/// What a session record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The credentials' fingerprint.
    pub owner: [u8; 32],
    /// The negotiated protocol version, once `initialize` happened.
    pub version: Option<String>,
    /// `notifications/initialized` seen.
    pub initialized: bool,
    /// The client's name from `initialize`.
    pub client: Option<String>,
    /// The audit label (`session=… user=…`).
    pub label: String,
}

/// What [`Store::create_session`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// Stored; these sessions of the same owner ended to make room (least recently used).
    Yes { ended: Vec<String> },
    /// `--max-sessions` sessions are open across the instances.
    Full,
}

fn record_key(id: &str) -> String {
    format!("{PREFIX}s:{id}")
}

fn owner_key_prefix() -> String {
    format!("{PREFIX}so:")
}

fn all_key() -> String {
    format!("{PREFIX}sessions")
}

/// KEYS: record, owner set, all sessions. ARGV: ttl ms, per-owner cap, max, id, record key
/// prefix, then the record's fields and values. Returns {1, ended ids} or {0, {}} when full.
pub(super) const CREATE: &str = r#"
local ttl = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local cutoff = now - ttl
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff)
local mine = redis.call('ZCARD', KEYS[2])
local evict = 0
if mine >= cap then evict = mine - cap + 1 end
if redis.call('ZCARD', KEYS[3]) - evict >= max then
  return {0, {}}
end
local ended = {}
if evict > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, evict - 1)
  for _, v in ipairs(old) do
    redis.call('DEL', ARGV[5] .. v)
    redis.call('ZREM', KEYS[2], v)
    redis.call('ZREM', KEYS[3], v)
    table.insert(ended, v)
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], now, ARGV[4])
return {1, ended}
"#;

/// KEYS: record, all sessions. ARGV: ttl ms, id, owner set prefix. The record's fields (empty
/// when there is none), its TTL and last use renewed.
pub(super) const GET: &str = r#"
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return rec end
local ttl = tonumber(ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[2])
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  redis.call('ZADD', ARGV[3] .. owner, now, ARGV[2])
  redis.call('PEXPIRE', ARGV[3] .. owner, ttl)
end
return rec
"#;

/// KEYS: record. ARGV: fields and values, set only while the record exists.
pub(super) const UPDATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"#;

/// KEYS: record, all sessions. ARGV: id, owner set prefix. 1 if it existed.
pub(super) const END: &str = r#"
local owner = redis.call('HGET', KEYS[1], 'owner')
redis.call('ZREM', KEYS[2], ARGV[1])
if not owner then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2] .. owner, ARGV[1])
return 1
"#;

/// KEYS: all sessions. ARGV: ttl ms. Sessions used within the TTL.
pub(super) const COUNT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
"#;

impl Record {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("owner", crate::secret::hex(&self.owner)),
            ("transport", "streamable-http".into()),
            ("version", self.version.clone().unwrap_or_default()),
            (
                "initialized",
                if self.initialized { "1" } else { "0" }.into(),
            ),
            ("client", self.client.clone().unwrap_or_default()),
            ("label", self.label.clone()),
        ]
    }

    /// A record from the hash's fields; `None` when it is not one of ours.
    fn from_fields(pairs: Vec<(String, String)>) -> Option<Record> {
        let get = |k: &str| pairs.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        if get("transport")? != "streamable-http" {
            return None;
        }
        let owner_hex = get("owner")?;
        if owner_hex.len() != 64 || !owner_hex.is_ascii() {
            return None;
        }
        let mut owner = [0u8; 32];
        for (i, b) in owner.iter_mut().enumerate() {
            *b = u8::from_str_radix(&owner_hex[2 * i..2 * i + 2], 16).ok()?;
        }
        let some = |v: Option<String>| v.filter(|s| !s.is_empty());
        Some(Record {
            owner,
            version: some(get("version")),
            initialized: get("initialized").as_deref() == Some("1"),
            client: some(get("client")),
            label: get("label").unwrap_or_default(),
        })
    }
}

impl Store {
    /// Stores a new session record under the caps: `per_owner` sessions per owner (beyond it,
    /// the owner's least recently used sessions end) and `max` in all.
    pub fn create_session(
        &self,
        id: &str,
        record: &Record,
        ttl: Duration,
        per_owner: usize,
        max: usize,
    ) -> Result<Created, Unreachable> {
        let owner_key = format!(
            "{}{}",
            owner_key_prefix(),
            crate::secret::hex(&record.owner)
        );
        let fields = record.fields();
        let (ok, ended): (i64, Vec<String>) = self.run("storing a session", |c| {
            let mut inv = self.scripts.session_create.prepare_invoke();
            inv.key(record_key(id))
                .key(&owner_key)
                .key(all_key())
                .arg(millis(ttl))
                .arg(per_owner.max(1))
                .arg(max)
                .arg(id)
                .arg(record_key(""));
            for (k, v) in &fields {
                inv.arg(*k).arg(v);
            }
            inv.invoke(c)
        })?;
        Ok(if ok == 1 {
            Created::Yes { ended }
        } else {
            Created::Full
        })
    }

    /// The session's record, its TTL renewed; `None` when it does not exist (expired, ended).
    pub fn session(&self, id: &str, ttl: Duration) -> Result<Option<Record>, Unreachable> {
        let flat: Vec<String> = self.run("reading a session", |c| {
            self.scripts
                .session_get
                .key(record_key(id))
                .key(all_key())
                .arg(millis(ttl))
                .arg(id)
                .arg(owner_key_prefix())
                .invoke(c)
        })?;
        if flat.is_empty() {
            return Ok(None);
        }
        let pairs = flat
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        Ok(Record::from_fields(pairs))
    }

    /// Writes the lifecycle fields of a record that still exists.
    pub fn update_session(&self, id: &str, record: &Record) -> Result<(), Unreachable> {
        let fields = record.fields();
        self.run("updating a session", |c| {
            let mut inv = self.scripts.session_update.prepare_invoke();
            inv.key(record_key(id));
            for (k, v) in fields.iter().filter(|(k, _)| *k != "owner") {
                inv.arg(*k).arg(v);
            }
            inv.invoke::<i64>(c)
        })
        .map(|_| ())
    }

    /// Ends a session on every instance; true if it existed.
    pub fn end_session(&self, id: &str) -> Result<bool, Unreachable> {
        let n: i64 = self.run("ending a session", |c| {
            self.scripts
                .session_end
                .key(record_key(id))
                .key(all_key())
                .arg(id)
                .arg(owner_key_prefix())
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    /// Streamable HTTP sessions open across the instances.
    pub fn session_count(&self, ttl: Duration) -> Result<usize, Unreachable> {
        let n: i64 = self.run("counting sessions", |c| {
            self.scripts
                .session_count
                .key(all_key())
                .arg(millis(ttl))
                .invoke(c)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_fields() {
        let r = Record {
            owner: [0xab; 32],
            version: Some("2025-06-18".into()),
            initialized: true,
            client: Some("inspector".into()),
            label: "session=1234abcd user=anna".into(),
        };
        let pairs = r
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(Record::from_fields(pairs), Some(r));
        let bare = Record {
            owner: [1; 32],
            version: None,
            initialized: false,
            client: None,
            label: String::new(),
        };
        let pairs: Vec<(String, String)> = bare
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(Record::from_fields(pairs.clone()), Some(bare));
        // Not ours (another transport, a cut owner): no record.
        let mut other = pairs.clone();
        other[1].1 = "sse".into();
        assert_eq!(Record::from_fields(other), None);
        let mut cut = pairs;
        cut[0].1.truncate(10);
        assert_eq!(Record::from_fields(cut), None);
    }
}
