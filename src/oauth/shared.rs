//! The authorization server on the shared state store (`serve --state` with `--public-url`):
//! the same endpoints and rules as with the tables in memory, with the records in the store
//! (`state::oauth`), so that every instance serves every client, sign-in and token.
//!
//! What the store holds is never usable by whoever reads it: codes, tokens and the ids of
//! sign-ins in progress appear only as SHA-256 digests (keys), client secrets as digests, and
//! the few secrets a record must give back (a sign-in page's CSRF value, the PKCE verifier of a
//! sign-in at the identity provider) are sealed with a key derived from the id or `state` that
//! only the browser holds ([`seal`]).
//!
//! When the store cannot be reached, the endpoints answer 503 `temporarily_unavailable` with
//! `Retry-After`, and requests with an access token 503 too (not 401, which would send clients
//! into a new sign-in for a blip).

use super::encoding::{digest_hex, random_secret, with_query};
use super::state::{client_from, client_json};
use super::tables::{Client, Code, Request};
use super::{
    AuthorizeError, Issued, MAX_GRANTS_PER_SUBJECT, MAX_SIGN_IN_ATTEMPTS, OAuth, OAuthError,
    PendingView, Scopes, Verified, ms, now_ms, short,
};
use crate::state::{NewGrant, Pair, Redeemed, Rotated, Store, Unreachable};
use serde_json::{Value, json};
use std::net::IpAddr;

/// How long a rotated refresh token may be presented once more as the retry of a rotation
/// whose answer was lost (while its successor is unused). A thief replaying a stolen token in
/// this window gets a pair without the reuse being noticed at once; the person's own next
/// refresh then presents a rotated token and revokes everything.
pub const REFRESH_RETRY_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an authorization code may be exchanged once more, with its PKCE verifier, as the
/// retry of an exchange whose answer was lost (while the grant was never refreshed).
pub const CODE_RETRY_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Seconds a client is told to wait when the store is unreachable.
const RETRY_AFTER: u64 = 5;

/// The token endpoint's answer while the store cannot be reached.
pub(super) fn unavailable(_: Unreachable) -> OAuthError {
    let mut e = OAuthError::new(
        503,
        "temporarily_unavailable",
        "the server's shared state store cannot be reached; try again in a few seconds",
    );
    e.retry_after = Some(RETRY_AFTER);
    e
}

/// The sign-in page's answer while the store cannot be reached.
pub(super) fn page_unavailable(_: Unreachable) -> AuthorizeError {
    AuthorizeError::Busy(
        "The server cannot reach its shared state right now. Try again in a few seconds.".into(),
        RETRY_AFTER,
    )
}

/// Seals (or, applied again, opens) `text` with a pad derived from `key` and `label`: SHA-256
/// blocks of `label`, a counter and `key`, XORed over the bytes, as hex. The store holds only
/// the digest of `key`, so it cannot open what is sealed with it.
pub(super) fn seal(key: &str, label: &str, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for (block, chunk) in text.chunks(32).enumerate() {
        let mut input = Vec::with_capacity(label.len() + key.len() + 9);
        input.extend_from_slice(label.as_bytes());
        input.extend_from_slice(&(block as u64).to_be_bytes());
        input.push(0);
        input.extend_from_slice(key.as_bytes());
        let pad = ring::digest::digest(&ring::digest::SHA256, &input);
        out.extend(chunk.iter().zip(pad.as_ref()).map(|(a, b)| a ^ b));
    }
    out
}

/// [`seal`] as hex.
pub(super) fn seal_hex(key: &str, label: &str, text: &str) -> String {
    crate::secret::hex(&seal(key, label, text.as_bytes()))
}

/// Opens what [`seal_hex`] sealed.
pub(super) fn open_hex(key: &str, label: &str, sealed: &str) -> Option<String> {
    if sealed.len() % 2 != 0 || !sealed.is_ascii() {
        return None;
    }
    let bytes = (0..sealed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&sealed[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(seal(key, label, &bytes)).ok()
}

fn request_json(id: &str, r: &Request) -> String {
    json!({
        "client_id": r.client_id,
        "redirect_uri": r.redirect_uri,
        "redirect_given": r.redirect_given,
        "challenge": r.challenge,
        "state": r.state,
        "resource": r.resource,
        "scope": r.scopes.to_string(),
        "csrf": seal_hex(id, "csrf", &r.csrf),
        "expires": r.expires,
        "ip": r.ip.to_string(),
        "created": r.created,
    })
    .to_string()
}

fn request_from(id: &str, s: &str) -> Option<Request> {
    let v: Value = serde_json::from_str(s).ok()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Request {
        client_id: text("client_id")?,
        redirect_uri: text("redirect_uri")?,
        redirect_given: v.get("redirect_given")?.as_bool()?,
        challenge: text("challenge")?,
        state: text("state"),
        resource: text("resource")?,
        scopes: Scopes::parse(&text("scope")?).ok().flatten()?,
        csrf: open_hex(id, "csrf", &text("csrf")?)?,
        expires: v.get("expires")?.as_u64()?,
        failures: 0,
        ip: text("ip")?.parse().ok()?,
        created: v.get("created")?.as_u64()?,
    })
}

/// A code as the store keeps it: the user sealed with the code itself.
fn code_json(code: &str, c: &Code) -> String {
    json!({
        "client_id": c.client_id,
        "redirect_uri": c.redirect_uri,
        "redirect_given": c.redirect_given,
        "challenge": c.challenge,
        "resource": c.resource,
        "scope": c.scopes.to_string(),
        "subject": seal_hex(code, "subject", &c.subject),
        "expires": c.expires,
    })
    .to_string()
}

fn code_from(code: &str, s: &str) -> Option<Code> {
    let v: Value = serde_json::from_str(s).ok()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Code {
        client_id: text("client_id")?,
        redirect_uri: text("redirect_uri")?,
        redirect_given: v.get("redirect_given")?.as_bool()?,
        challenge: text("challenge")?,
        resource: text("resource")?,
        scopes: Scopes::parse(&text("scope")?).ok().flatten()?,
        subject: open_hex(code, "subject", &text("subject")?)?,
        expires: v.get("expires")?.as_u64()?,
    })
}

/// What an access token stands for, as the store keeps it under the token's digest: the user
/// sealed with the token itself.
fn access_json(token: &str, grant: &str, subject: &str, resource: &str, scopes: Scopes) -> String {
    json!({
        "grant": grant,
        "subject": seal_hex(token, "subject", subject),
        "resource": resource,
        "scope": scopes.to_string(),
    })
    .to_string()
}

impl OAuth {
    /// The shared store, with `--state`.
    pub(super) fn store(&self) -> Option<&Store> {
        self.shared.as_deref()
    }

    /// A registered client (or a client metadata document's), from the store.
    pub(super) fn shared_client(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Client>, Unreachable> {
        let Some(s) = store.oauth_client(id)? else {
            return Ok(None);
        };
        let parsed = serde_json::from_str::<Value>(&s)
            .ok()
            .and_then(|v| client_from(id, &v, &|m| m).ok());
        if parsed.is_none() {
            log::error!(
                "oauth: the shared store holds an unreadable client {}; it is treated as unknown",
                short(id)
            );
        }
        Ok(parsed)
    }

    /// Stores a client; `Err(503)` when the store is full or unreachable.
    pub(super) fn shared_put_client(
        &self,
        store: &Store,
        id: &str,
        c: &Client,
    ) -> Result<(), OAuthError> {
        let stored = store
            .oauth_put_client(
                id,
                &client_json(c).to_string(),
                self.settings.client_idle,
                self.settings.max_clients,
                // In use meanwhile: a sign-in opened (it touches the client) and its code.
                self.settings.request_ttl + self.settings.code_ttl,
            )
            .map_err(unavailable)?;
        if stored {
            return Ok(());
        }
        // At most one line a minute in a flood.
        static LOGGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let minute = now_ms() / 60_000;
        if LOGGED.swap(minute, std::sync::atomic::Ordering::Relaxed) != minute {
            log::warn!(
                "oauth: registrations are refused: all {} registered clients are in use (a sign-in in progress or a live sign-in)",
                self.settings.max_clients
            );
        }
        let mut e = OAuthError::new(
            503,
            "temporarily_unavailable",
            format!(
                "this server keeps at most {} registered applications and every one of them is in the middle of a sign-in or signed in; try again later",
                self.settings.max_clients
            ),
        );
        e.retry_after = Some(300);
        Err(e)
    }

    /// Counts a registration (or a metadata document fetch) of `ip` across the instances;
    /// `Err(429)` when its window is used up.
    pub(super) fn shared_count_registration(
        &self,
        store: &Store,
        ip: IpAddr,
    ) -> Result<(), OAuthError> {
        let limit = self.settings.registrations_per_address;
        if limit == 0 {
            return Ok(());
        }
        match store
            .oauth_count(
                "reg",
                &ip.to_canonical().to_string(),
                self.settings.registration_window,
                limit,
            )
            .map_err(unavailable)?
        {
            Ok(()) => Ok(()),
            Err(wait) => Err(super::tables::registrations_refused(
                &self.settings,
                wait.as_secs().max(1),
            )),
        }
    }

    /// Opens a sign-in in the store under the digest of `id`.
    pub(super) fn shared_open_request(
        &self,
        store: &Store,
        id: &str,
        r: &Request,
    ) -> Result<(), AuthorizeError> {
        let opened = store
            .oauth_open_request(
                &digest_hex(id),
                &request_json(id, r),
                &r.ip.to_string(),
                self.settings.request_ttl,
                self.settings.pending_per_address,
                self.settings.max_requests,
            )
            .map_err(page_unavailable)?;
        if let Err(wait) = opened {
            let wait = wait.as_secs().max(1);
            return Err(AuthorizeError::Busy(
                format!(
                    "Too many sign-ins are in progress on this server right now. Try again in {wait} seconds."
                ),
                wait,
            ));
        }
        let _ = store.oauth_touch_client(&r.client_id, self.settings.client_idle);
        Ok(())
    }

    /// A sign-in in progress, from the store.
    pub(super) fn shared_request(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Request>, Unreachable> {
        Ok(store
            .oauth_request(&digest_hex(id))?
            .and_then(|s| request_from(id, &s))
            .filter(|r| r.expires > now_ms()))
    }

    /// Ends a sign-in in progress (once across the instances); what it was.
    pub(super) fn shared_take_request(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Request>, Unreachable> {
        let key = digest_hex(id);
        let Some(r) = store
            .oauth_request(&key)?
            .and_then(|s| request_from(id, &s))
        else {
            return Ok(None);
        };
        let taken = store.oauth_take_request(&key, &r.ip.to_string(), self.settings.request_ttl)?;
        Ok(taken.is_some().then_some(r))
    }

    /// The sign-in page's view of a request in the store.
    pub(super) fn shared_pending(&self, store: &Store, id: &str) -> Option<PendingView> {
        let r = self.shared_request(store, id).ok()??;
        let client_name = self
            .shared_client(store, &r.client_id)
            .ok()
            .flatten()
            .and_then(|c| c.name);
        Some(PendingView {
            client_name,
            document_host: super::cimd::is_document_url(&r.client_id)
                .then(|| super::cimd::host_of(&r.client_id))
                .flatten(),
            redirect_uri: r.redirect_uri.clone(),
            csrf: r.csrf.clone(),
            read_only: !r.scopes.covers(Scopes::FULL),
        })
    }

    /// Counts a wrong sign-in on a request in the store; whether it stays open.
    pub(super) fn shared_sign_in_failed(&self, store: &Store, id: &str) -> bool {
        let key = digest_hex(id);
        let Ok(Some(r)) = self.shared_request(store, id) else {
            return false;
        };
        store
            .oauth_request_failed(
                &key,
                &r.ip.to_string(),
                MAX_SIGN_IN_ATTEMPTS,
                self.settings.request_ttl,
            )
            .unwrap_or(false)
    }

    /// Ends a request in the store with a code for `subject`; the URL for the browser.
    pub(super) fn shared_approve(&self, store: &Store, id: &str, subject: &str) -> Option<String> {
        let r = self.shared_take_request(store, id).ok()??;
        let code = random_secret("");
        let c = Code::for_request(&r, subject, now_ms() + ms(self.settings.code_ttl));
        store
            .oauth_put(
                "code",
                &digest_hex(&code),
                &code_json(&code, &c),
                self.settings.code_ttl,
            )
            .ok()?;
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        params.push(("iss", &self.issuer));
        Some(with_query(&r.redirect_uri, &params))
    }

    /// A new token pair for grant `grant`: the tokens, and their digests for the store.
    fn new_pair(
        &self,
        grant: &str,
        subject: &str,
        resource: &str,
        scopes: Scopes,
    ) -> (Issued, String, String, String) {
        let access_token = random_secret("kmat_");
        let refresh_token = random_secret("kmrt_");
        let access_hash = digest_hex(&access_token);
        let refresh_hash = digest_hex(&refresh_token);
        let json = access_json(&access_token, grant, subject, resource, scopes);
        (
            Issued {
                access_token,
                refresh_token,
                expires_in: self.settings.access_ttl.as_secs().max(1),
                scopes,
            },
            refresh_hash,
            access_hash,
            json,
        )
    }

    /// The token endpoint's `authorization_code` grant on the store: the code is redeemed once
    /// across the instances (a second redemption revokes what the first issued); then the
    /// same checks as in memory.
    pub(super) fn shared_redeem(
        &self,
        store: &Store,
        code: &str,
        check: &dyn Fn(&Code) -> Result<(), OAuthError>,
        client_id: &str,
    ) -> Result<Issued, OAuthError> {
        let grant_id = random_secret("");
        let hash = digest_hex(code);
        let c = match store
            .oauth_redeem_code(&hash, &grant_id, self.settings.code_ttl, CODE_RETRY_GRACE)
            .map_err(unavailable)?
        {
            Redeemed::Code(s) => code_from(code, &s).ok_or_else(|| {
                log::error!("oauth: the shared store holds an unreadable authorization code");
                OAuthError::grant("the authorization code is unknown or expired")
            })?,
            Redeemed::Again {
                grant,
                code: stored,
                recent,
            } => {
                // The retry of an exchange whose answer was lost (an instance killed between
                // the redemption and its answer) proves itself with the PKCE verifier, which an
                // eavesdropper of the code lacks: within the grace time, for a grant never
                // refreshed, the grant gets a new first pair (the lost one is dead). Anything
                // else is a second use (RFC 6749 §4.1.2): the grant is revoked.
                if recent
                    && let Some(c) = code_from(code, &stored)
                    && check(&c).is_ok()
                {
                    let (issued, refresh, access, access_json) =
                        self.new_pair(&grant, &c.subject, &c.resource, c.scopes);
                    let sealed = seal_hex(&issued.refresh_token, "subject", &c.subject);
                    let pair = Pair {
                        refresh: &refresh,
                        access: &access,
                        access_json: &access_json,
                        refresh_ttl: self.settings.refresh_ttl,
                        access_ttl: self.settings.access_ttl,
                    };
                    if store
                        .oauth_reissue(&grant, &pair, &sealed)
                        .map_err(unavailable)?
                    {
                        log::info!(
                            target: "kimai_mcp::audit",
                            "oauth: an authorization code was exchanged again with its verifier within {} s (a lost answer); the sign-in's first tokens were replaced (client {})",
                            CODE_RETRY_GRACE.as_secs(),
                            short(client_id)
                        );
                        return Ok(issued);
                    }
                }
                if let Some(client) = store.oauth_revoke(&grant).map_err(unavailable)? {
                    log::warn!(
                        target: "kimai_mcp::audit",
                        "oauth: an authorization code was presented a second time; revoked the grant it issued (client {})",
                        short(&client)
                    );
                }
                return Err(OAuthError::grant(
                    "the authorization code was already used; the tokens issued for it are revoked",
                ));
            }
            Redeemed::Unknown => {
                return Err(OAuthError::grant(
                    "the authorization code is unknown or expired",
                ));
            }
        };
        check(&c)?;
        let (issued, refresh, access, access_json) =
            self.new_pair(&grant_id, &c.subject, &c.resource, c.scopes);
        let scope = c.scopes.to_string();
        let sealed = seal_hex(&issued.refresh_token, "subject", &c.subject);
        store
            .oauth_issue_grant(
                &NewGrant {
                    id: &grant_id,
                    client_id,
                    owner: &digest_hex(&c.subject),
                    subject: &sealed,
                    resource: &c.resource,
                    scope: &scope,
                    per_subject: MAX_GRANTS_PER_SUBJECT,
                },
                &Pair {
                    refresh: &refresh,
                    access: &access,
                    access_json: &access_json,
                    refresh_ttl: self.settings.refresh_ttl,
                    access_ttl: self.settings.access_ttl,
                },
            )
            .map_err(unavailable)?;
        let _ = store.oauth_touch_client(client_id, self.settings.client_idle);
        Ok(issued)
    }

    /// The token endpoint's `refresh_token` grant on the store. `check(grant fields)` does the
    /// same checks as in memory and returns the access token's scopes; the rotation itself is
    /// one script, so a refresh token presented twice is rotated once, whichever instances
    /// see it, and the second presentation revokes the grant.
    pub(super) fn shared_refresh(
        &self,
        store: &Store,
        token: &str,
        check: &dyn Fn(&Grantee) -> Result<Scopes, Refusal>,
    ) -> Result<Issued, OAuthError> {
        let hash = digest_hex(token);
        let reused = |client: Option<String>| {
            if let Some(client) = client {
                log::warn!(
                    target: "kimai_mcp::audit",
                    "oauth: a rotated refresh token was reused; revoked the whole grant (client {}) — the person must sign in again",
                    short(&client)
                );
            }
            OAuthError::grant(
                "the refresh token was already used; the sign-in is revoked: sign in again",
            )
        };
        let unknown =
            || OAuthError::grant("the refresh token is unknown, revoked or expired; sign in again");
        // A rotated token goes on to the rotation script too, which revokes the grant unless
        // it is the retry of a rotation whose answer was lost (see `state::oauth::ROTATE`).
        let (grant_id, rotated) = match store.oauth_refresh_grant(&hash).map_err(unavailable)? {
            Some(Ok(g)) => (g, None),
            Some(Err(record)) => (
                crate::state::rotated_grant(&record).to_string(),
                Some(record),
            ),
            None => return Err(unknown()),
        };
        let was_rotated = rotated.is_some();
        let Some(fields) = store.oauth_grant(&grant_id).map_err(unavailable)? else {
            return Err(if was_rotated { reused(None) } else { unknown() });
        };
        let field = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let g = Grantee {
            client_id: field("client_id"),
            // The grant holds the user sealed with its current refresh token; a rotated token's
            // record holds it sealed with that token.
            subject: match &rotated {
                None => open_hex(token, "subject", &field("subject")),
                Some(r) => {
                    crate::state::rotated_subject(r).and_then(|s| open_hex(token, "subject", s))
                }
            }
            .unwrap_or_default(),
            resource: field("resource"),
            scopes: Scopes::parse(&field("scope"))
                .ok()
                .flatten()
                .unwrap_or(Scopes::READ),
            refresh_expires: field("refresh_expires").parse().unwrap_or(0),
        };
        let access = match check(&g) {
            Ok(a) => a,
            Err(_) if was_rotated => {
                // A rotated token that fails the checks (another client, say) is a reuse.
                return Err(reused(store.oauth_revoke(&grant_id).map_err(unavailable)?));
            }
            Err(e) => {
                if e.revokes {
                    let _ = store.oauth_revoke(&grant_id);
                }
                return Err(e.error);
            }
        };
        let (issued, refresh, access_hash, access_json) =
            self.new_pair(&grant_id, &g.subject, &g.resource, access);
        let sealed = seal_hex(&issued.refresh_token, "subject", &g.subject);
        let sealed_with_old = seal_hex(token, "subject", &g.subject);
        match store
            .oauth_rotate(
                &hash,
                &grant_id,
                &Pair {
                    refresh: &refresh,
                    access: &access_hash,
                    access_json: &access_json,
                    refresh_ttl: self.settings.refresh_ttl,
                    access_ttl: self.settings.access_ttl,
                },
                &sealed,
                REFRESH_RETRY_GRACE,
                &sealed_with_old,
            )
            .map_err(unavailable)?
        {
            Rotated::Done => {
                let _ = store.oauth_touch_client(&g.client_id, self.settings.client_idle);
                Ok(issued)
            }
            Rotated::Reused(client) => Err(reused(client)),
            Rotated::Unknown => Err(unknown()),
        }
    }

    /// RFC 7009 on the store: the grant behind any token of this client is revoked.
    pub(super) fn shared_revoke(
        &self,
        store: &Store,
        token: &str,
        client_id: &str,
    ) -> Result<(), OAuthError> {
        let hash = digest_hex(token);
        let (current, rotated, access) = store.oauth_token_owner(&hash).map_err(unavailable)?;
        let grant = current
            .or(rotated.map(|r| crate::state::rotated_grant(&r).to_string()))
            .or_else(|| {
                access
                    .and_then(|a| serde_json::from_str::<Value>(&a).ok())
                    .and_then(|v| v.get("grant")?.as_str().map(str::to_string))
            });
        let Some(grant) = grant else { return Ok(()) };
        let owner = store.oauth_grant(&grant).map_err(unavailable)?;
        if owner.is_some_and(|f| f.get("client_id").is_some_and(|c| c == client_id)) {
            store.oauth_revoke(&grant).map_err(unavailable)?;
            log::info!(target: "kimai_mcp::audit", "oauth: a grant was revoked by its client {}", short(client_id));
        }
        Ok(())
    }

    /// Access-token verification on the store: `Err` when it cannot be reached.
    pub(super) fn shared_verify(
        &self,
        store: &Store,
        access_token: &str,
    ) -> Result<Option<Verified>, Unreachable> {
        let Some(s) = store.oauth_access(&digest_hex(access_token))? else {
            return Ok(None);
        };
        let v: Value = serde_json::from_str(&s).unwrap_or(Value::Null);
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        if text("resource") != Some(self.resource.as_str()) {
            return Ok(None);
        }
        let (Some(subject), Some(Ok(Some(scopes)))) = (
            text("subject").and_then(|s| open_hex(access_token, "subject", s)),
            text("scope").map(Scopes::parse),
        ) else {
            return Ok(None);
        };
        Ok(Some(Verified { subject, scopes }))
    }
}

/// A grant as the refresh checks need it.
pub(super) struct Grantee {
    pub client_id: String,
    pub subject: String,
    pub resource: String,
    pub scopes: Scopes,
    pub refresh_expires: u64,
}

/// A refused refresh, and whether the refusal ends the grant (expired, user gone).
pub(super) struct Refusal {
    pub error: OAuthError,
    pub revokes: bool,
}

impl From<OAuthError> for Refusal {
    fn from(error: OAuthError) -> Refusal {
        Refusal {
            error,
            revokes: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_opens_only_with_the_same_key_and_label() {
        let secret = random_secret("");
        let sealed = seal_hex("request-id", "csrf", &secret);
        assert_ne!(sealed, crate::secret::hex(secret.as_bytes()));
        assert!(!sealed.contains(&secret));
        assert_eq!(
            open_hex("request-id", "csrf", &sealed).as_deref(),
            Some(secret.as_str())
        );
        assert_ne!(
            open_hex("other-id", "csrf", &sealed).as_deref(),
            Some(secret.as_str())
        );
        assert_ne!(
            open_hex("request-id", "pkce", &sealed).as_deref(),
            Some(secret.as_str())
        );
        // Longer than one block of pad, and odd or non-hex input.
        let long = "x".repeat(100);
        assert_eq!(
            open_hex("k", "l", &seal_hex("k", "l", &long)).as_deref(),
            Some(long.as_str())
        );
        assert_eq!(open_hex("k", "l", "abc"), None);
        assert_eq!(open_hex("k", "l", "zz"), None);
    }

    #[test]
    fn records_round_trip_through_their_json() {
        let r = Request {
            client_id: "kmc_x".into(),
            redirect_uri: "http://127.0.0.1:5000/cb".into(),
            redirect_given: true,
            challenge: "c".repeat(43),
            state: Some("st".into()),
            resource: "https://mcp.example/mcp".into(),
            scopes: Scopes::READ,
            csrf: random_secret(""),
            expires: 5,
            failures: 0,
            ip: "10.0.0.1".parse().unwrap(),
            created: 4,
        };
        let s = request_json("the-id", &r);
        assert!(!s.contains(&r.csrf), "the CSRF value is sealed");
        let back = request_from("the-id", &s).unwrap();
        assert_eq!(back.csrf, r.csrf);
        assert_eq!(back.scopes, Scopes::READ);
        assert_eq!(back.ip, r.ip);
        assert_eq!(back.state.as_deref(), Some("st"));
        let c = Code {
            client_id: "kmc_x".into(),
            redirect_uri: r.redirect_uri.clone(),
            redirect_given: false,
            challenge: r.challenge.clone(),
            resource: r.resource.clone(),
            scopes: Scopes::FULL,
            subject: "slug".into(),
            expires: 9,
        };
        let stored = code_json("the-code", &c);
        assert!(!stored.contains("slug"), "the user is sealed: {stored}");
        let back = code_from("the-code", &stored).unwrap();
        assert_eq!(
            (back.subject.as_str(), back.scopes, back.expires),
            ("slug", Scopes::FULL, 9)
        );
    }
}
