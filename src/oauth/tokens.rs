//! The token and revocation endpoints: client authentication, the authorization-code grant with
//! PKCE and resource checks, issuing access and refresh tokens, refresh-token rotation with
//! reuse detection (a rotated refresh token presented again revokes its grant), narrowing the
//! scope of one access token at a refresh (RFC 6749 §6), and revocation (RFC 7009). Tokens are
//! stored only as digests.

use std::collections::HashMap;

use super::encoding::{canonical_resource, digest_hex, is_pkce_value, random_secret, s256};
use super::shared::Refusal;
use super::tables::{Access, Code, Grant, Tables};
use super::{
    AuthMethod, Issued, MAX_GRANTS_PER_SUBJECT, MAX_PARAM, MAX_ROTATED, OAuth, OAuthError, Scopes,
    ms, now_ms, short, state,
};

/// What a grant is for; fixed when it is made, kept by every rotation.
struct Owner<'a> {
    client_id: &'a str,
    subject: &'a str,
    resource: &'a str,
    scopes: Scopes,
}

/// The scopes of the access token a refresh issues: the grant's, or the fewer that `scope`
/// asks for (RFC 6749 §6: a refresh may narrow, never widen; the grant keeps its own).
fn narrowed(p: &HashMap<String, String>, granted: Scopes) -> Result<Scopes, OAuthError> {
    let asked = Scopes::parse(p.get("scope").map_or("", String::as_str))
        .map_err(|unknown| OAuthError::new(400, "invalid_scope", unknown.to_string()))?;
    match asked {
        None => Ok(granted),
        Some(s) if granted.covers(s) => Ok(s),
        Some(s) => Err(OAuthError::new(
            400,
            "invalid_scope",
            format!(
                "the scope '{s}' is more than this sign-in granted ('{granted}'); a refresh can only narrow it: sign in again asking for '{s}'"
            ),
        )),
    }
}

impl OAuth {
    /// Authenticates the client of a token or revocation request. `basic` is the decoded
    /// `Authorization: Basic` pair, if one was sent.
    fn client_auth(
        &self,
        p: &HashMap<String, String>,
        basic: Option<(String, String)>,
    ) -> Result<String, OAuthError> {
        let (id, secret, via_basic) = match basic {
            Some((id, secret)) => {
                if p.contains_key("client_secret") {
                    return Err(OAuthError::request(
                        "send the client credentials once: in Authorization or in the body, not both",
                    ));
                }
                if p.get("client_id").is_some_and(|c| *c != id) {
                    return Err(OAuthError::client(
                        "client_id does not match the Authorization header",
                    ));
                }
                (id, Some(secret), true)
            }
            None => {
                let Some(id) = p.get("client_id").filter(|c| !c.is_empty()) else {
                    return Err(OAuthError::client("client_id is required"));
                };
                (id.clone(), p.get("client_secret").cloned(), false)
            }
        };
        let shared;
        let t;
        let c = match self.store() {
            Some(store) => {
                shared = self
                    .shared_client(store, &id)
                    .map_err(super::shared::unavailable)?;
                shared.as_ref()
            }
            None => {
                t = self.lock();
                t.clients.get(&id)
            }
        };
        let Some(c) = c else {
            return Err(OAuthError::client(
                "unknown client: register again (the server may have forgotten it after 30 days without use)",
            ));
        };
        match (&c.secret_hash, secret) {
            (None, _) => {}
            (Some(hash), Some(s)) => {
                if !crate::guard::ct_eq(digest_hex(&s).as_bytes(), hash.as_bytes()) {
                    return Err(OAuthError::client("client authentication failed"));
                }
                let method_ok = match c.auth_method {
                    AuthMethod::ClientSecretBasic => via_basic,
                    AuthMethod::ClientSecretPost => !via_basic,
                    AuthMethod::None => true,
                };
                if !method_ok {
                    return Err(OAuthError::client(format!(
                        "this client registered token_endpoint_auth_method {}",
                        c.auth_method.as_str()
                    )));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::client(
                    "this client must authenticate with its client_secret",
                ));
            }
        }
        Ok(id)
    }

    /// The token endpoint. `user_ok(subject)` says whether the subject may still sign in.
    pub fn token(
        &self,
        p: &HashMap<String, String>,
        basic: Option<(String, String)>,
        user_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Issued, OAuthError> {
        if p.values().any(|v| v.len() > MAX_PARAM) {
            return Err(OAuthError::request("a parameter is too long"));
        }
        let grant_type = p
            .get("grant_type")
            .filter(|g| !g.is_empty())
            .ok_or_else(|| OAuthError::request("grant_type is required"))?
            .clone();
        if grant_type != "authorization_code" && grant_type != "refresh_token" {
            return Err(OAuthError::new(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ));
        }
        let client_id = self.client_auth(p, basic)?;
        let issued = if grant_type == "authorization_code" {
            self.redeem_code(p, &client_id, user_ok)
        } else {
            self.refresh(p, &client_id, user_ok)
        };
        // Failures change state too (a reused code or refresh token revokes a grant).
        self.save();
        issued
    }

    fn check_resource(&self, p: &HashMap<String, String>, bound: &str) -> Result<(), OAuthError> {
        if let Some(r) = p.get("resource").filter(|r| !r.is_empty()) {
            let c = canonical_resource(r);
            let ok = c.is_some()
                && (c == canonical_resource(bound)
                    || c.as_deref() == Some(self.origin.to_ascii_lowercase().as_str()));
            if !ok {
                return Err(OAuthError::new(
                    400,
                    "invalid_target",
                    "the resource is not the one this grant is for",
                ));
            }
        }
        Ok(())
    }

    fn redeem_code(
        &self,
        p: &HashMap<String, String>,
        client_id: &str,
        user_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Issued, OAuthError> {
        let code = p
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("code is required"))?;
        let verifier = p
            .get("code_verifier")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("code_verifier is required (PKCE)"))?;
        if !is_pkce_value(verifier) {
            return Err(OAuthError::request(
                "code_verifier must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~",
            ));
        }
        if let Some(store) = self.store() {
            return self.shared_redeem(
                store,
                code,
                &|c| self.check_code(c, p, client_id, verifier, user_ok, now_ms()),
                client_id,
            );
        }
        let hash = digest_hex(code);
        let now = now_ms();
        let mut t = self.lock();
        let Some(c) = t.codes.remove(&hash) else {
            if let Some((grant, _)) = t.used_codes.remove(&hash) {
                // RFC 6749 §4.1.2: a code used twice revokes what it granted.
                if let Some(g) = t.revoke_grant(&grant) {
                    log::warn!(
                        target: "kimai_mcp::audit",
                        "oauth: an authorization code was presented a second time; revoked the grant it issued (client {})",
                        short(&g.client_id)
                    );
                }
                drop(t);
                self.save();
                return Err(OAuthError::grant(
                    "the authorization code was already used; the tokens issued for it are revoked",
                ));
            }
            return Err(OAuthError::grant(
                "the authorization code is unknown or expired",
            ));
        };
        self.check_code(&c, p, client_id, verifier, user_ok, now)?;
        // Bounded per user: each sign-in is a grant, so a user signing in again and again from
        // many applications ends their oldest sign-ins rather than growing the table.
        let mut mine: Vec<(u64, String)> = t
            .grants
            .iter()
            .filter(|(_, g)| g.subject == c.subject)
            .map(|(id, g)| (g.created, id.clone()))
            .collect();
        if mine.len() >= MAX_GRANTS_PER_SUBJECT {
            mine.sort();
            for (_, id) in mine.iter().take(mine.len() + 1 - MAX_GRANTS_PER_SUBJECT) {
                t.revoke_grant(id);
            }
        }
        let grant_id = random_secret("");
        // A `scope` sent with the code is ignored (RFC 6749 §4.1.3 defines none): the grant has
        // what the person approved at the authorization request.
        let issued = self.issue(
            &mut t,
            &grant_id,
            None,
            Owner {
                client_id,
                subject: &c.subject,
                resource: &c.resource,
                scopes: c.scopes,
            },
            c.scopes,
            now,
        );
        t.used_codes.insert(hash, (grant_id, c.expires));
        if let Some(cl) = t.clients.get_mut(client_id) {
            cl.last_used = now;
        }
        Ok(issued)
    }

    /// The checks of a redeemed code: not expired, this client's, the same redirect URI, the
    /// PKCE verifier, the resource, and a user who may still sign in.
    fn check_code(
        &self,
        c: &Code,
        p: &HashMap<String, String>,
        client_id: &str,
        verifier: &str,
        user_ok: &dyn Fn(&str) -> bool,
        now: u64,
    ) -> Result<(), OAuthError> {
        if c.expires <= now {
            return Err(OAuthError::grant(
                "the authorization code expired; sign in again",
            ));
        }
        if c.client_id != client_id {
            return Err(OAuthError::grant(
                "the authorization code was issued to another client",
            ));
        }
        match p.get("redirect_uri").filter(|r| !r.is_empty()) {
            Some(r) if *r != c.redirect_uri => {
                return Err(OAuthError::grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
            None if c.redirect_given => {
                return Err(OAuthError::request(
                    "redirect_uri is required: the authorization request had one",
                ));
            }
            _ => {}
        }
        if !crate::guard::ct_eq(s256(verifier).as_bytes(), c.challenge.as_bytes()) {
            return Err(OAuthError::grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        self.check_resource(p, &c.resource)?;
        if !user_ok(&c.subject) {
            return Err(OAuthError::grant("the user can no longer sign in here"));
        }
        Ok(())
    }

    /// Creates or rotates a grant's token pair; the access token may do `access` (the grant's
    /// scopes or fewer).
    fn issue(
        &self,
        t: &mut Tables,
        grant_id: &str,
        previous: Option<Grant>,
        owner: Owner<'_>,
        access: Scopes,
        now: u64,
    ) -> Issued {
        let access_token = random_secret("kmat_");
        let refresh_token = random_secret("kmrt_");
        let access_hash = digest_hex(&access_token);
        let refresh_hash = digest_hex(&refresh_token);
        let mut rotated = Vec::new();
        let mut created = now;
        let refresh_expires = now + ms(self.settings.refresh_ttl);
        let rotation = previous.is_some();
        if let Some(old) = previous {
            t.record(state::Record::Rotate {
                grant: grant_id.to_string(),
                refresh_hash: refresh_hash.clone(),
                refresh_expires,
                at: now,
            });
            t.refresh.remove(&old.refresh_hash);
            if let Some(a) = &old.access_hash {
                t.access.remove(a);
            }
            rotated = old.rotated;
            rotated.push(old.refresh_hash.clone());
            t.rotated.insert(old.refresh_hash, grant_id.to_string());
            if rotated.len() > MAX_ROTATED {
                let gone = rotated.remove(0);
                t.rotated.remove(&gone);
            }
            created = old.created;
        }
        t.access.insert(
            access_hash.clone(),
            Access {
                grant: grant_id.to_string(),
                scopes: access,
                expires: now + ms(self.settings.access_ttl),
            },
        );
        t.refresh.insert(refresh_hash.clone(), grant_id.to_string());
        let grant = Grant {
            client_id: owner.client_id.to_string(),
            subject: owner.subject.to_string(),
            resource: owner.resource.to_string(),
            scopes: owner.scopes,
            refresh_hash,
            refresh_expires,
            access_hash: Some(access_hash),
            rotated,
            created,
        };
        if !rotation {
            t.record(state::Record::Grant(grant_id.to_string(), grant.clone()));
        }
        t.grants.insert(grant_id.to_string(), grant);
        Issued {
            access_token,
            refresh_token,
            expires_in: self.settings.access_ttl.as_secs().max(1),
            scopes: access,
        }
    }

    fn refresh(
        &self,
        p: &HashMap<String, String>,
        client_id: &str,
        user_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Issued, OAuthError> {
        let token = p
            .get("refresh_token")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("refresh_token is required"))?;
        if let Some(store) = self.store() {
            return self.shared_refresh(store, token, &|g| {
                if g.client_id != client_id {
                    return Err(OAuthError::grant(
                        "the refresh token was issued to another client",
                    )
                    .into());
                }
                if g.refresh_expires <= now_ms() {
                    return Err(Refusal {
                        error: OAuthError::grant("the refresh token expired; sign in again"),
                        revokes: true,
                    });
                }
                if g.resource != self.resource {
                    return Err(OAuthError::new(
                        400,
                        "invalid_target",
                        "the grant is for another resource; sign in again",
                    )
                    .into());
                }
                self.check_resource(p, &g.resource)?;
                let access = narrowed(p, g.scopes)?;
                if !user_ok(&g.subject) {
                    return Err(Refusal {
                        error: OAuthError::grant(
                            "the user can no longer sign in here; sign in again",
                        ),
                        revokes: true,
                    });
                }
                Ok(access)
            });
        }
        let hash = digest_hex(token);
        let now = now_ms();
        let mut t = self.lock();
        let Some(grant_id) = t.refresh.get(&hash).cloned() else {
            if let Some(grant_id) = t.rotated.get(&hash).cloned() {
                // A rotated refresh token came back: someone holds a copy. Revoke the grant.
                let g = t.revoke_grant(&grant_id);
                drop(t);
                if let Some(g) = g {
                    log::warn!(
                        target: "kimai_mcp::audit",
                        "oauth: a rotated refresh token was reused; revoked the whole grant (client {}) — the person must sign in again",
                        short(&g.client_id)
                    );
                }
                self.save();
                return Err(OAuthError::grant(
                    "the refresh token was already used; the sign-in is revoked: sign in again",
                ));
            }
            return Err(OAuthError::grant(
                "the refresh token is unknown, revoked or expired; sign in again",
            ));
        };
        // The refresh index and the grants change together under this lock; should they ever
        // disagree, the token is treated as unknown rather than ending the request thread.
        let Some(g) = t.grants.get(&grant_id).cloned() else {
            log::error!("oauth: a refresh token's grant is missing; treated as revoked");
            return Err(OAuthError::grant(
                "the refresh token is unknown, revoked or expired; sign in again",
            ));
        };
        if g.client_id != client_id {
            return Err(OAuthError::grant(
                "the refresh token was issued to another client",
            ));
        }
        if g.refresh_expires <= now {
            t.revoke_grant(&grant_id);
            return Err(OAuthError::grant(
                "the refresh token expired; sign in again",
            ));
        }
        if g.resource != self.resource {
            return Err(OAuthError::new(
                400,
                "invalid_target",
                "the grant is for another resource; sign in again",
            ));
        }
        self.check_resource(p, &g.resource)?;
        let access = narrowed(p, g.scopes)?;
        if !user_ok(&g.subject) {
            t.revoke_grant(&grant_id);
            return Err(OAuthError::grant(
                "the user can no longer sign in here; sign in again",
            ));
        }
        let (subject, resource, scopes) = (g.subject.clone(), g.resource.clone(), g.scopes);
        let issued = self.issue(
            &mut t,
            &grant_id,
            Some(g),
            Owner {
                client_id,
                subject: &subject,
                resource: &resource,
                scopes,
            },
            access,
            now,
        );
        if let Some(cl) = t.clients.get_mut(client_id) {
            cl.last_used = now;
        }
        Ok(issued)
    }

    /// RFC 7009: revokes the grant behind an access or refresh token of this client. Unknown
    /// tokens are not an error.
    pub fn revoke(
        &self,
        p: &HashMap<String, String>,
        basic: Option<(String, String)>,
    ) -> Result<(), OAuthError> {
        let token = p
            .get("token")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::request("token is required"))?;
        if token.len() > MAX_PARAM {
            return Err(OAuthError::request("token is too long"));
        }
        let client_id = self.client_auth(p, basic)?;
        if let Some(store) = self.store() {
            return self.shared_revoke(store, token, &client_id);
        }
        let hash = digest_hex(token);
        let mut t = self.lock();
        let grant = t
            .refresh
            .get(&hash)
            .or_else(|| t.rotated.get(&hash))
            .cloned()
            .or_else(|| t.access.get(&hash).map(|a| a.grant.clone()));
        let Some(grant) = grant else { return Ok(()) };
        if t.grants
            .get(&grant)
            .is_some_and(|g| g.client_id == client_id)
        {
            t.revoke_grant(&grant);
            drop(t);
            log::info!(target: "kimai_mcp::audit", "oauth: a grant was revoked by its client {}", short(&client_id));
            self.save();
        }
        Ok(())
    }
}
