//! The authorization endpoint: [`OAuth::authorize`] validates a browser's authorization request
//! (client, redirect URI, PKCE S256, resource) and opens a pending sign-in, bounded per client
//! address; the sign-in page then looks it up ([`OAuth::pending`]) and ends it with
//! [`OAuth::approve`] (a code for the client's redirect URI) or [`OAuth::deny`]. Checking the
//! person's slug and secret is the HTTP layer's job.

use std::collections::HashMap;
use std::net::IpAddr;

use super::cimd;
use super::encoding::{canonical_resource, digest_hex, is_pkce_value, random_secret, with_query};
use super::tables::{Client, Code, Request};
use super::{AuthorizeError, MAX_PARAM, MAX_SIGN_IN_ATTEMPTS, OAuth, PendingView, ms, now_ms};

impl OAuth {
    /// Validates an authorization request from a browser at `ip` and opens a pending request
    /// for the sign-in page; returns its id. `Err(Redirect(url))` sends the error to the
    /// client's redirect URI.
    pub fn authorize(
        &self,
        p: &HashMap<String, String>,
        ip: IpAddr,
    ) -> Result<String, AuthorizeError> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if p.values().any(|v| v.len() > MAX_PARAM) {
            return Err(AuthorizeError::Page(
                "The authorization request has a parameter that is too long.".into(),
            ));
        }
        let Some(client_id) = get("client_id") else {
            return Err(AuthorizeError::Page(
                "The authorization request names no client (client_id is missing).".into(),
            ));
        };
        let client = if cimd::is_document_url(client_id) {
            Some(self.document_client(client_id, ip)?)
        } else if let Some(store) = self.store() {
            self.shared_client(store, client_id)
                .map_err(super::shared::page_unavailable)?
        } else {
            self.lock().clients.get(client_id).cloned()
        };
        let Some(client) = client else {
            return Err(AuthorizeError::Page(
                "This application is not registered with this server (unknown client_id). Remove the server from the application and add it again so that it registers anew.".into(),
            ));
        };
        let (redirect_uri, redirect_given) = match get("redirect_uri") {
            Some(r) if client.redirect_uris.iter().any(|u| u == r) => (r.to_string(), true),
            Some(_) => {
                return Err(AuthorizeError::Page(
                    "The redirect URI does not match any URI this application registered.".into(),
                ));
            }
            None if client.redirect_uris.len() == 1 => (client.redirect_uris[0].clone(), false),
            None => {
                return Err(AuthorizeError::Page(
                    "The authorization request has no redirect_uri and the application registered several.".into(),
                ));
            }
        };
        let state = get("state").map(str::to_string);
        let fail = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(s) = &state {
                params.push(("state", s));
            }
            params.push(("iss", &self.issuer));
            AuthorizeError::Redirect(with_query(&redirect_uri, &params))
        };
        match get("response_type") {
            Some("code") => {}
            None => return Err(fail("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        let Some(challenge) = get("code_challenge") else {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        };
        if get("code_challenge_method") != Some("S256") {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        if challenge.len() != 43 || !is_pkce_value(challenge) {
            return Err(fail(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            ));
        }
        let resource = match get("resource") {
            None => self.resource.clone(),
            Some(r) => {
                let ours = canonical_resource(&self.resource);
                let c = canonical_resource(r);
                if c.is_none()
                    || (c != ours
                        && c.as_deref() != Some(self.origin.to_ascii_lowercase().as_str()))
                {
                    return Err(fail(
                        "invalid_target",
                        "the resource is not this server's MCP endpoint",
                    ));
                }
                self.resource.clone()
            }
        };
        // The scope (`scope.rs`): none of ours asks for everything, as every sign-in did before
        // scopes existed; scopes of other servers are ignored (the token response names what
        // was granted).
        let scopes =
            super::Scopes::parse_known(get("scope").unwrap_or("")).unwrap_or(super::Scopes::FULL);
        let id = random_secret("");
        let req = Request {
            client_id: client_id.to_string(),
            redirect_uri,
            redirect_given,
            challenge: challenge.to_string(),
            state,
            resource,
            scopes,
            csrf: random_secret(""),
            expires: now_ms() + ms(self.settings.request_ttl),
            failures: 0,
            ip: ip.to_canonical(),
            created: now_ms(),
        };
        if let Some(store) = self.store() {
            self.shared_open_request(store, &id, &req)?;
            return Ok(id);
        }
        let now = now_ms();
        let mut t = self.lock();
        // One address at its cap ends its own oldest sign-in rather than being refused: the
        // newest request is the one a person is looking at, the oldest is most likely an
        // abandoned tab or an application that retried. Refusing instead would let a stuck or
        // hostile client keep every person behind the same address (an office NAT) from
        // starting a sign-in for the whole request lifetime; either way the address cannot
        // hold more than its cap.
        let cap = self.settings.pending_per_address.max(1);
        while t
            .requests_by_ip
            .get(&req.ip)
            .is_some_and(|q| q.len() >= cap)
        {
            t.end_oldest_request(req.ip);
        }
        if t.requests.len() >= self.settings.max_requests {
            t.expire_requests(now);
        }
        if t.requests.len() >= self.settings.max_requests {
            t.make_room_for_request(&self.settings, now)?;
        }
        if let Some(c) = t.clients.get_mut(client_id) {
            // In memory only (the snapshot picks it up): it orders the clients for eviction.
            c.last_used = now;
        }
        t.add_request(id.clone(), req);
        Ok(id)
    }

    /// The pending request behind a sign-in page, if it is still open.
    pub fn pending(&self, id: &str) -> Option<PendingView> {
        if let Some(store) = self.store() {
            return self.shared_pending(store, id);
        }
        let t = self.lock();
        let r = t.requests.get(id).filter(|r| r.expires > now_ms())?;
        Some(PendingView {
            client_name: t.clients.get(&r.client_id).and_then(|c| c.name.clone()),
            document_host: cimd::is_document_url(&r.client_id)
                .then(|| cimd::host_of(&r.client_id))
                .flatten(),
            redirect_uri: r.redirect_uri.clone(),
            csrf: r.csrf.clone(),
            read_only: !r.scopes.covers(super::Scopes::FULL),
        })
    }

    /// Counts a failed sign-in on a request; the request is dropped after a few. Returns
    /// whether it is still open.
    pub fn sign_in_failed(&self, id: &str) -> bool {
        if let Some(store) = self.store() {
            return self.shared_sign_in_failed(store, id);
        }
        let mut t = self.lock();
        let Some(r) = t.requests.get_mut(id) else {
            return false;
        };
        r.failures += 1;
        if r.failures >= MAX_SIGN_IN_ATTEMPTS {
            t.take_request(id);
            return false;
        }
        true
    }

    /// Ends a pending request with a code for `subject`; the URL to send the browser to.
    pub fn approve(&self, id: &str, subject: &str) -> Option<String> {
        if let Some(store) = self.store() {
            return self.shared_approve(store, id, subject);
        }
        let code = random_secret("");
        let mut t = self.lock();
        let r = t.take_request(id).filter(|r| r.expires > now_ms())?;
        t.codes.insert(
            digest_hex(&code),
            Code::for_request(&r, subject, now_ms() + ms(self.settings.code_ttl)),
        );
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        params.push(("iss", &self.issuer));
        Some(with_query(&r.redirect_uri, &params))
    }

    /// Ends a pending request as refused by the person; the URL to send the browser to.
    pub fn deny(&self, id: &str) -> Option<String> {
        self.deny_with(id, "access_denied", "the sign-in was cancelled")
    }

    /// Ends a pending request with an error for the client (RFC 6749 §4.1.2.1: e.g.
    /// `access_denied`, `temporarily_unavailable`); the URL to send the browser to.
    pub fn deny_with(&self, id: &str, error: &str, description: &str) -> Option<String> {
        let r = match self.store() {
            Some(store) => self.shared_take_request(store, id).ok()??,
            None => self.lock().take_request(id)?,
        };
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        params.push(("iss", &self.issuer));
        Some(with_query(&r.redirect_uri, &params))
    }

    /// The client behind a `client_id` that is a metadata document URL: from the cache while
    /// fresh, else fetched ([`cimd`]). A fetch counts against the caller's address like a
    /// registration (`--max-registrations-per-address`), so one address cannot make this
    /// server fetch without end. The client is kept in the client table under its URL (public,
    /// PKCE only), where the token endpoint finds it.
    fn document_client(&self, url: &str, ip: IpAddr) -> Result<Client, AuthorizeError> {
        let page = |why: String| {
            AuthorizeError::Page(format!(
                "The application names itself by a client ID metadata document, which cannot be used: {why}."
            ))
        };
        let Some(docs) = &self.documents else {
            return Err(AuthorizeError::Page(
                "This application names itself by a URL (a client ID metadata document), which this server does not accept (--disable-client-metadata-documents). Ask your administrator, or use an application that registers itself.".into(),
            ));
        };
        docs.check(url).map_err(page)?;
        let ip = ip.to_canonical();
        // Another instance's answer, while it is fresh (with --state): one fetch per document
        // and cache lifetime across the instances.
        let shared = match (docs.cached(url, std::time::Instant::now()), self.store()) {
            (None, Some(store)) => store
                .oauth_document(&digest_hex(url))
                .ok()
                .flatten()
                .and_then(|(json, left)| {
                    let answer = cimd::answer_from(&json)?;
                    docs.remember(url, &answer, left);
                    Some(answer)
                }),
            _ => None,
        };
        let doc = match shared.or_else(|| docs.cached(url, std::time::Instant::now())) {
            Some(answer) => answer.map_err(page)?,
            None => {
                let counted = match self.store() {
                    Some(store) => self.shared_count_registration(store, ip),
                    None => self
                        .lock()
                        .check_registration_rate(&self.settings, ip, now_ms()),
                };
                if let Err(e) = counted {
                    if e.status == 503 {
                        return Err(AuthorizeError::Busy(
                            e.description,
                            e.retry_after.unwrap_or(5),
                        ));
                    }
                    let wait = e.retry_after.unwrap_or(60);
                    return Err(AuthorizeError::TooMany(
                        format!(
                            "Too many new applications from your network address: registrations and client ID metadata documents count together, at most {} per hour (--max-registrations-per-address on the server). Try again in {wait} s.",
                            self.settings.registrations_per_address
                        ),
                        wait,
                    ));
                }
                let Some(slot) = docs.slot() else {
                    return Err(AuthorizeError::Busy(
                        "The server is fetching many client ID metadata documents right now. Try again in a few seconds.".into(),
                        5,
                    ));
                };
                if self.store().is_none() {
                    self.lock().count_registration(&self.settings, ip, now_ms());
                }
                let (answer, ttl) = docs.fetch_for(url, &slot);
                if let Some(store) = self.store()
                    && ttl > std::time::Duration::ZERO
                {
                    let _ =
                        store.oauth_put("doc", &digest_hex(url), &cimd::answer_json(&answer), ttl);
                }
                if let Err(why) = &answer {
                    log::info!(
                        target: "kimai_mcp::audit",
                        "oauth: client metadata document of {} refused: {why}",
                        cimd::host_of(url).unwrap_or_default()
                    );
                }
                answer.map_err(page)?
            }
        };
        let now = now_ms();
        if let Some(store) = self.store() {
            let known = self
                .shared_client(store, url)
                .map_err(super::shared::page_unavailable)?;
            if let Some(c) = known.filter(|c| {
                c.redirect_uris == doc.redirect_uris
                    && c.name == doc.name
                    && c.grant_types == doc.grant_types
            }) {
                return Ok(c);
            }
            let client = Client::from_document(doc, now);
            self.shared_put_client(store, url, &client)
                .map_err(|e| AuthorizeError::Busy(e.description, e.retry_after.unwrap_or(60)))?;
            log::info!(
                target: "kimai_mcp::audit",
                "oauth: client metadata document of {} accepted",
                cimd::host_of(url).unwrap_or_default()
            );
            return Ok(client);
        }
        let mut t = self.lock();
        let known = t.clients.get(url).cloned();
        let same = known.as_ref().is_some_and(|c| {
            c.redirect_uris == doc.redirect_uris
                && c.name == doc.name
                && c.grant_types == doc.grant_types
        });
        if let Some(c) = known.filter(|_| same) {
            return Ok(c);
        }
        if t.clients.len() >= self.settings.max_clients && !t.clients.contains_key(url) {
            t.make_room_for_client(&self.settings, now)
                .map_err(|e| AuthorizeError::Busy(e.description, e.retry_after.unwrap_or(60)))?;
        }
        let client = Client::from_document(doc, now);
        t.put_client(url, client.clone());
        drop(t);
        self.save();
        log::info!(
            target: "kimai_mcp::audit",
            "oauth: client metadata document of {} accepted",
            cimd::host_of(url).unwrap_or_default()
        );
        Ok(client)
    }
}
