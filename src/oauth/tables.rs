//! The authorization server's tables (clients, sign-ins in progress, codes, grants, tokens)
//! and the bounds that keep one client address from filling them for everyone: registrations
//! per address, which clients may be forgotten to make room, and sign-ins in progress per
//! address. Changes to what the state file keeps are queued here, in the order they are made,
//! for `OAuth` to write to the journal (`state`).
//!
//! Everything here runs under the one table lock of `OAuth`; nothing does I/O.

use super::{AuthMethod, AuthorizeError, OAuthError, Scopes, Settings, ms, state};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Addresses whose registration counts are remembered at most.
pub(super) const MAX_REGISTERING_ADDRESSES: usize = 10_000;
/// When no client can be forgotten, how long a refused registration is told to wait at most.
const FULL_RETRY_AFTER_SECS: u64 = 300;

#[derive(Clone, Debug)]
pub(super) struct Client {
    pub(super) secret_hash: Option<String>,
    pub(super) auth_method: AuthMethod,
    pub(super) redirect_uris: Vec<String>,
    pub(super) name: Option<String>,
    pub(super) grant_types: Vec<String>,
    pub(super) created: u64,
    pub(super) last_used: u64,
}

/// A pending authorization request: the sign-in page's state.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) redirect_given: bool,
    pub(super) challenge: String,
    pub(super) state: Option<String>,
    pub(super) resource: String,
    /// What the client asked for (normalized; the default when it asked for nothing).
    pub(super) scopes: Scopes,
    pub(super) csrf: String,
    pub(super) expires: u64,
    pub(super) failures: u32,
    /// The client address that opened it.
    pub(super) ip: IpAddr,
    pub(super) created: u64,
}

#[derive(Clone, Debug)]
pub(super) struct Code {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) redirect_given: bool,
    pub(super) challenge: String,
    pub(super) resource: String,
    pub(super) scopes: Scopes,
    pub(super) subject: String,
    pub(super) expires: u64,
}

impl Code {
    /// The code that ends sign-in `r` for `subject`, valid until `expires`.
    pub(super) fn for_request(r: &Request, subject: &str, expires: u64) -> Code {
        Code {
            client_id: r.client_id.clone(),
            redirect_uri: r.redirect_uri.clone(),
            redirect_given: r.redirect_given,
            challenge: r.challenge.clone(),
            resource: r.resource.clone(),
            scopes: r.scopes,
            subject: subject.to_string(),
            expires,
        }
    }
}

impl Client {
    /// A client described by its metadata document (public, PKCE only), first seen `now`.
    pub(super) fn from_document(doc: super::cimd::Document, now: u64) -> Client {
        Client {
            secret_hash: None,
            auth_method: AuthMethod::None,
            redirect_uris: doc.redirect_uris,
            name: doc.name,
            grant_types: doc.grant_types,
            created: now,
            last_used: now,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) subject: String,
    pub(super) resource: String,
    /// What the person granted; a refresh may narrow one access token, never this.
    pub(super) scopes: Scopes,
    pub(super) refresh_hash: String,
    pub(super) refresh_expires: u64,
    pub(super) access_hash: Option<String>,
    pub(super) rotated: Vec<String>,
    pub(super) created: u64,
}

#[derive(Clone, Debug)]
pub(super) struct Access {
    pub(super) grant: String,
    /// The grant's scopes, or fewer (a refresh that asked for less).
    pub(super) scopes: Scopes,
    pub(super) expires: u64,
}

#[derive(Default)]
pub(super) struct Tables {
    pub(super) clients: HashMap<String, Client>,
    pub(super) requests: HashMap<String, Request>,
    /// Request ids by the address that opened them, oldest first (at most
    /// `pending_per_address` each).
    pub(super) requests_by_ip: HashMap<IpAddr, VecDeque<String>>,
    /// Registrations per address: (start of its window, registrations in it).
    pub(super) registrations: HashMap<IpAddr, (u64, u32)>,
    /// When a refused registration was last logged (at most one line a minute in a flood).
    pub(super) full_logged: u64,
    /// Code digest → code. A redeemed code stays (as `used`) until it expires.
    pub(super) codes: HashMap<String, Code>,
    /// Redeemed code digest → (grant id, expiry): a second redemption revokes that grant.
    pub(super) used_codes: HashMap<String, (String, u64)>,
    pub(super) grants: HashMap<String, Grant>,
    /// Current refresh-token digest → grant id.
    pub(super) refresh: HashMap<String, String>,
    /// Rotated refresh-token digest → grant id (reuse detection).
    pub(super) rotated: HashMap<String, String>,
    /// Access-token digest → access.
    pub(super) access: HashMap<String, Access>,
    /// Whether changes are journaled (there is a state file).
    pub(super) journaling: bool,
    /// The sequence number of the last change.
    pub(super) seq: u64,
    /// Changes not yet in the journal, in the order they were made.
    pub(super) unsaved: Vec<(u64, state::Record)>,
}

impl Tables {
    pub(super) fn record(&mut self, r: state::Record) {
        if self.journaling {
            self.seq += 1;
            self.unsaved.push((self.seq, r));
        }
    }

    pub(super) fn put_client(&mut self, id: &str, c: Client) {
        self.record(state::Record::Client(id.to_string(), c.clone()));
        self.clients.insert(id.to_string(), c);
    }

    pub(super) fn forget_client(&mut self, id: &str) {
        if self.clients.remove(id).is_some() {
            self.record(state::Record::ForgetClient(id.to_string()));
        }
    }

    pub(super) fn add_request(&mut self, id: String, r: Request) {
        self.requests_by_ip
            .entry(r.ip)
            .or_default()
            .push_back(id.clone());
        self.requests.insert(id, r);
    }

    pub(super) fn take_request(&mut self, id: &str) -> Option<Request> {
        let r = self.requests.remove(id)?;
        if let Some(q) = self.requests_by_ip.get_mut(&r.ip) {
            q.retain(|x| x != id);
            if q.is_empty() {
                self.requests_by_ip.remove(&r.ip);
            }
        }
        Some(r)
    }

    /// Ends the oldest sign-in in progress from `ip`.
    pub(super) fn end_oldest_request(&mut self, ip: IpAddr) {
        let oldest = self
            .requests_by_ip
            .get(&ip)
            .and_then(|q| q.front().cloned());
        if let Some(id) = oldest {
            self.take_request(&id);
        }
    }

    pub(super) fn expire_requests(&mut self, now: u64) {
        let gone: Vec<String> = self
            .requests
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.take_request(&id);
        }
    }

    /// Clients that someone is using: a sign-in in progress, a code not yet redeemed, or a
    /// live grant. These are never forgotten to make room.
    pub(super) fn clients_in_use(&self, now: u64) -> HashSet<String> {
        let mut used = HashSet::new();
        for r in self.requests.values().filter(|r| r.expires > now) {
            used.insert(r.client_id.clone());
        }
        for c in self.codes.values().filter(|c| c.expires > now) {
            used.insert(c.client_id.clone());
        }
        for g in self.grants.values() {
            used.insert(g.client_id.clone());
        }
        used
    }

    pub(super) fn revoke_grant(&mut self, id: &str) -> Option<Grant> {
        let g = self.grants.remove(id)?;
        self.record(state::Record::Revoke(id.to_string()));
        self.refresh.remove(&g.refresh_hash);
        for r in &g.rotated {
            self.rotated.remove(r);
        }
        if let Some(a) = &g.access_hash {
            self.access.remove(a);
        }
        Some(g)
    }

    /// `Err(429)` when `ip` has used up its registrations for the current window.
    pub(super) fn check_registration_rate(
        &mut self,
        s: &Settings,
        ip: IpAddr,
        now: u64,
    ) -> Result<(), OAuthError> {
        let limit = s.registrations_per_address;
        if limit == 0 {
            return Ok(());
        }
        let window = ms(s.registration_window);
        let Some(&(start, n)) = self.registrations.get(&ip) else {
            return Ok(());
        };
        let ends = start.saturating_add(window);
        if ends <= now || n < limit {
            return Ok(());
        }
        let wait = (ends - now).div_ceil(1000).max(1);
        Err(registrations_refused(s, wait))
    }

    /// Counts a registration of `ip` in its window. The table of addresses is bounded: when it
    /// is full, windows that are over go first, then the oldest window (an attacker who owns
    /// that many addresses gains a fresh count for one of them; the client table's own bound
    /// still holds).
    pub(super) fn count_registration(&mut self, s: &Settings, ip: IpAddr, now: u64) {
        if s.registrations_per_address == 0 {
            return;
        }
        let window = ms(s.registration_window);
        if !self.registrations.contains_key(&ip)
            && self.registrations.len() >= MAX_REGISTERING_ADDRESSES
        {
            self.registrations
                .retain(|_, (start, _)| start.saturating_add(window) > now);
            if self.registrations.len() >= MAX_REGISTERING_ADDRESSES
                && let Some(oldest) = self
                    .registrations
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(a, _)| *a)
            {
                self.registrations.remove(&oldest);
            }
        }
        let entry = self.registrations.entry(ip).or_insert((now, 0));
        if entry.0.saturating_add(window) <= now {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Makes room in a full client table by forgetting the least recently used clients that
    /// nobody is using (see [`Tables::clients_in_use`]): a client in the middle of a sign-in,
    /// or with a live sign-in, is never forgotten. `Err(503)` when every client is in use.
    pub(super) fn make_room_for_client(
        &mut self,
        s: &Settings,
        now: u64,
    ) -> Result<(), OAuthError> {
        let in_use = self.clients_in_use(now);
        let mut idle: Vec<(u64, String)> = self
            .clients
            .iter()
            .filter(|(id, _)| !in_use.contains(*id))
            .map(|(id, c)| (c.last_used, id.clone()))
            .collect();
        if idle.is_empty() {
            // The soonest a client can become free: when a sign-in in progress or an unredeemed
            // code expires (a client with a live grant stays in use).
            let soonest = self
                .requests
                .values()
                .map(|r| r.expires)
                .chain(self.codes.values().map(|c| c.expires))
                .filter(|&e| e > now)
                .min()
                .map_or(FULL_RETRY_AFTER_SECS, |e| (e - now).div_ceil(1000).max(1))
                .min(FULL_RETRY_AFTER_SECS);
            if now.saturating_sub(self.full_logged) >= 60_000 {
                self.full_logged = now;
                log::warn!(
                    "oauth: registrations are refused: all {} registered clients are in use (a sign-in in progress or a live sign-in)",
                    self.clients.len()
                );
            }
            let mut e = OAuthError::new(
                503,
                "temporarily_unavailable",
                format!(
                    "this server keeps at most {} registered applications and every one of them is in the middle of a sign-in or signed in; try again in {soonest} s",
                    s.max_clients
                ),
            );
            e.retry_after = Some(soonest);
            return Err(e);
        }
        // Forget a batch (1% of the table) at once, so that a burst of registrations into a
        // full table costs one scan per batch, not one per registration.
        let excess = self.clients.len() + 1 - s.max_clients;
        let n = excess.max(s.max_clients / 100).max(1).min(idle.len());
        if n < idle.len() {
            idle.select_nth_unstable(n - 1);
        }
        for (_, id) in idle.into_iter().take(n) {
            self.forget_client(&id);
        }
        log::debug!(
            "oauth: the client table was full; forgot the {n} least recently used idle clients"
        );
        Ok(())
    }

    /// Forgets clients unused for `client_idle` that nobody is using. Returns how many.
    pub(super) fn prune_idle_clients(&mut self, s: &Settings, now: u64) -> usize {
        let idle = ms(s.client_idle);
        let in_use = self.clients_in_use(now);
        let stale: Vec<String> = self
            .clients
            .iter()
            .filter(|(id, c)| now.saturating_sub(c.last_used) > idle && !in_use.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            self.forget_client(id);
        }
        stale.len()
    }

    /// Makes room in a full table of sign-ins in progress. The address that holds the most
    /// gives up its oldest, so a flood from many addresses ends its own requests, not the one a
    /// person has open. Only when every address holds a single one (a flood from as many
    /// addresses as the table has room) does the oldest request go, and only once it is a tenth
    /// of its lifetime old (a minute): a person finishes a sign-in sooner, and the oldest is
    /// the likeliest to be abandoned. Until then the new one is refused with the wait.
    pub(super) fn make_room_for_request(
        &mut self,
        s: &Settings,
        now: u64,
    ) -> Result<(), AuthorizeError> {
        let busiest = self
            .requests_by_ip
            .iter()
            .max_by_key(|(_, q)| q.len())
            .map(|(a, q)| (*a, q.len()));
        if let Some((a, n)) = busiest
            && n > 1
        {
            self.end_oldest_request(a);
            return Ok(());
        }
        let min_age = ms(s.request_ttl) / 10;
        let oldest = self
            .requests
            .iter()
            .min_by_key(|(_, r)| r.created)
            .map(|(id, r)| (id.clone(), r.created));
        match oldest {
            Some((id, created)) if now.saturating_sub(created) >= min_age => {
                self.take_request(&id);
                Ok(())
            }
            Some((_, created)) => {
                let wait = (created + min_age)
                    .saturating_sub(now)
                    .div_ceil(1000)
                    .max(1);
                Err(AuthorizeError::Busy(
                    format!(
                        "Too many sign-ins are in progress on this server right now. Try again in {wait} seconds."
                    ),
                    wait,
                ))
            }
            // A table of size 0 (never configured so): nothing to make room from.
            None => Err(AuthorizeError::Busy(
                "Sign-in is not available on this server right now.".into(),
                60,
            )),
        }
    }
}

/// "hour", "2 hours", "10 minutes", "30 seconds": a window as a message names it.
/// The 429 of an address that used up its registrations; `wait` seconds until it may again.
pub(super) fn registrations_refused(s: &Settings, wait: u64) -> OAuthError {
    let mut e = OAuthError::new(
        429,
        "temporarily_unavailable",
        format!(
            "too many client registrations from this address: at most {} per {} (--max-registrations-per-address on the server); try again in {wait} s",
            s.registrations_per_address,
            human_duration(s.registration_window)
        ),
    );
    e.retry_after = Some(wait);
    e
}

pub(super) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        3600 => "hour".into(),
        60 => "minute".into(),
        _ if s >= 3600 && s % 3600 == 0 => format!("{} hours", s / 3600),
        _ if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        _ => format!("{} seconds", s.max(1)),
    }
}
