//! The request guards of `serve`, as pure decisions: who the client is, whether it may go on,
//! and which headers every answer carries (design §3, "Guards"). One file per guard:
//!
//! - `secrets.rs`: secret comparison in constant time ([`ct_eq`], [`token_matches`]);
//! - `client_addr.rs`: the client address behind trusted reverse proxies ([`TrustedProxies`],
//!   [`client_ip`], [`is_https`]);
//! - `table.rs` and `rate_limit.rs`: the bounded per-address table and the token bucket on it
//!   ([`RateLimiter`], per address or per credential);
//! - `enumeration.rs`: the unknown-slug enumeration guard ([`EnumerationGuard`]), on the same
//!   kind of table;
//! - `origin.rs`: Host/Origin validation against DNS rebinding and the CORS decision
//!   ([`OriginPolicy`], `mcp/protocol.md` §2.1);
//! - `headers.rs`: the security headers of every response ([`security_headers`]);
//! - `kimai_url.rs`: the Kimai URL policy ([`KimaiUrls`]);
//! - `verdicts.rs`: the short memory of Kimai's verdicts on callers' tokens ([`TokenVerdicts`]).
//!
//! The `users.json` slug rules live with the users file (`config::check_slug`).
//!
//! Left to others: this module does no I/O, never sleeps and knows nothing of the HTTP server.
//! The HTTP layer reads the headers, runs the guards in the order of design §3, turns a refusal
//! into a status code (403, 429 with `Retry-After`) and sleeps the delay that
//! [`EnumerationGuard::miss`] returns. The clock is always passed in (`now: Instant`), so the
//! tests drive time by hand and the caller reads the clock once per request.
//!
//! Threads: the server runs one thread per connection; each calls `check`/`miss` on its
//! requests, the sweeper thread calls `sweep`, and the `/metrics` handler calls
//! [`EnumerationGuard::stats`]. [`RateLimiter`] and [`EnumerationGuard`] each hold one `Mutex`
//! around their table; it is locked only to read or update one entry (or to prune the table),
//! never while logging, drawing random numbers or doing anything else that may block. A
//! poisoned mutex is recovered: every update leaves an entry consistent, so a panic elsewhere
//! cannot leave half-written state behind.
//!
//! Nothing here logs or returns a token or a slug: messages name the rule that failed, not the
//! value.

pub mod kimai_url;
pub mod verdicts;

mod client_addr;
mod enumeration;
mod headers;
mod origin;
mod rate_limit;
mod secrets;
mod table;

pub use client_addr::{MAX_FORWARDED_HOPS, TrustedProxies, client_ip, is_https};
pub use enumeration::{
    DEFAULT_BLOCK_DURATION, DEFAULT_MAX_MISS_DELAY, DEFAULT_MAX_MISSES, DEFAULT_MIN_MISS_DELAY,
    DEFAULT_MISS_WINDOW, EnumerationGuard, EnumerationSettings,
};
pub use headers::security_headers;
pub use kimai_url::KimaiUrls;
pub use origin::OriginPolicy;
pub use rate_limit::{CredentialKey, RateLimiter, limit_key};
pub use secrets::{ct_eq, token_matches};
pub use table::{MAX_TRACKED_CLIENTS, MIN_RETRY_AFTER, PRUNE_WHEN_FULL_INTERVAL};
pub use verdicts::{TokenVerdicts, Verdict};

#[cfg(test)]
mod test_support {
    use super::TrustedProxies;
    use std::net::IpAddr;

    pub(super) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    pub(super) fn proxies(spec: &str) -> TrustedProxies {
        TrustedProxies::parse(spec).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<RateLimiter>();
        shared::<EnumerationGuard>();
        shared::<OriginPolicy>();
        shared::<TrustedProxies>();
    }
}
