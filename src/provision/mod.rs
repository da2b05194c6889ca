//! Auto-provisioning (`serve --auto-provision`): a person the identity provider vouches for,
//! who has a Kimai user but no users-file entry, gets a Kimai API token of their own at their
//! first sign-in — made by Kimai itself through the ApiTokenBundle plugin with the
//! provisioning admin token — and is in, without anyone handling a token.
//!
//! At a sign-in ([`Provisioner::provision`], under a lock of that identity so that two tabs do
//! not make two tokens, the second replacing the first): the identity's domain must be allowed
//! (`--provision-allowed-domains`); Kimai's users are listed (`GET /api/users?visible=3`, the
//! admin token needs `view_user`); `matching` finds exactly one enabled user or refuses;
//! `POST /api/users/{id}/api-token` `{name, replaceExisting: true}` makes the token (needs
//! `api-token_other_profile`, a super admin's by default); `GET /api/users/me` with the new
//! token must name that user, else the token is not used. The person then has a random slug
//! (never a personal URL: provisioned users sign in through OAuth only), kept in memory and,
//! with `--provision-store`, in the store file.
//!
//! A 401 from Kimai on a provisioned user's token (an administrator deleted it, another
//! instance replaced it) forgets the entry ([`Watch`]): their OAuth sign-in stops working, the
//! application signs in again, and that sign-in provisions a fresh token.
//!
//! Every refusal is a reason for the log, never for the person (the HTTP layer shows its
//! neutral page). No token is logged.
//!
//! Threads: connection threads call in concurrently. The table (a read-write lock) is held only
//! to look up or change an entry, never across a Kimai call; the per-identity locks are held
//! across the Kimai calls of one sign-in, and only by sign-ins of that identity; the store's
//! lock serialises file writes.

pub mod matching;
mod shared;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::ProvisionConfig;
use crate::config::users::{Source, User, Users, identity_key};
use crate::kimai::{self, Request, Token, Usage};
use matching::{KimaiUser, Names, Outcome};
use store::Saved;

/// Provisioned users kept at most (in memory and in the store).
pub const MAX_PROVISIONED: usize = 100_000;

/// One provisioned person.
#[derive(Clone, Debug)]
struct Entry {
    slug: String,
    user: User,
    created_at: i64,
}

#[derive(Default)]
struct Table {
    /// By lowercased identity.
    by_identity: HashMap<String, Entry>,
    /// Slug to lowercased identity.
    by_slug: HashMap<String, String>,
}

/// The provisioner.
pub struct Provisioner {
    cfg: ProvisionConfig,
    admin: kimai::Client,
    table: RwLock<Table>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    store: Option<Mutex<store::Store>>,
    /// Entries forgotten since the sweeper last looked (their OAuth grants end).
    forgotten: AtomicUsize,
    /// How long the last successful provisioning took (for the log and tests).
    last_took: Mutex<Option<Duration>>,
    /// The shared state store (`--state`): entries are kept there, sealed, for all instances.
    shared: Option<shared::Shared>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Provisioner {
    /// `settings` are the Kimai client settings for `cfg.kimai_url` (the server's timeouts).
    pub fn new(cfg: ProvisionConfig, settings: kimai::Settings) -> Result<Provisioner, String> {
        let admin = kimai::Client::new(settings)
            .map_err(|e| format!("--provision-kimai-url cannot be used: {e}"))?;
        let store = cfg
            .store
            .as_deref()
            .map(|p| Mutex::new(store::Store::new(p)));
        Ok(Provisioner {
            cfg,
            admin,
            table: RwLock::new(Table::default()),
            locks: Mutex::new(HashMap::new()),
            store,
            forgotten: AtomicUsize::new(0),
            last_took: Mutex::new(None),
            shared: None,
        })
    }

    /// Keeps the provisioned people in the shared store (sealed with `key`, from
    /// `--state-key-file`) instead of `--provision-store`.
    pub fn with_store(mut self, store: Arc<crate::state::Store>, key: &[u8; 32]) -> Provisioner {
        if let Some(path) = &self.cfg.store {
            log::warn!(
                "--provision-store {} is not used with --state: provisioned people are kept in the shared state store, encrypted with --state-key-file",
                path.display()
            );
        }
        self.store = None;
        self.shared = Some(shared::Shared::new(store, key));
        self
    }

    /// Takes an entry another instance made into this one's table; the entry as found.
    fn adopt(&self, s: Saved) -> (String, User) {
        let mut t = self.write();
        if let Some(e) = t.by_identity.get(&s.identity) {
            return (e.slug.clone(), e.user.clone());
        }
        self.insert(&mut t, s)
    }

    /// Puts a saved entry into the table.
    fn insert(&self, t: &mut Table, s: Saved) -> (String, User) {
        let user = User {
            kimai_url: s.kimai_url.clone(),
            tls: s.tls.clone(),
            ..self.user_of(
                &s.identity,
                &s.kimai_token,
                s.kimai_user_id,
                t.by_identity.len() + 1,
            )
        };
        t.by_slug.insert(s.slug.clone(), s.identity.clone());
        t.by_identity.insert(
            s.identity.clone(),
            Entry {
                slug: s.slug.clone(),
                user: user.clone(),
                created_at: s.created_at,
            },
        );
        (s.slug, user)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self) -> Option<MutexGuard<'_, store::Store>> {
        self.store
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn user_of(
        &self,
        identity: &str,
        token: &str,
        kimai_user_id: Option<i64>,
        index: usize,
    ) -> User {
        User {
            kimai_url: self.cfg.kimai_url.clone(),
            token: Token::new(token.to_string()),
            tls: self.cfg.tls.clone(),
            kimai_user_id,
            index,
            auth_secret: None,
            oidc_identity: Some(identity.to_string()),
            personal_url: false,
            source: Source::Provisioned,
            // Provisioned people get the server's own restrictions only.
            policy: crate::tools::policy::Policy::default(),
        }
    }

    /// Takes the store's entries, except those the users file now covers (its users win: an
    /// identity it maps, or a slug it uses). Returns how many were taken.
    pub fn load(&self, file: &Users) -> usize {
        let Some(store) = self.store() else { return 0 };
        let saved = store.load();
        let shown = store.path().display().to_string();
        drop(store);
        let mut t = self.write();
        let mut taken = 0;
        for s in saved {
            if file.by_identity(&s.identity).is_some() || file.by_slug.contains_key(&s.slug) {
                continue;
            }
            if t.by_slug.contains_key(&s.slug) || t.by_identity.len() >= MAX_PROVISIONED {
                continue;
            }
            self.insert(&mut t, s);
            taken += 1;
        }
        log::info!("provisioning: {taken} provisioned user(s) loaded from {shown}");
        taken
    }

    /// The provisioned user of an identity: slug and user.
    pub fn find(&self, identity: &str) -> Option<(String, User)> {
        let local = {
            let t = self.read();
            t.by_identity
                .get(&identity_key(identity))
                .map(|e| (e.slug.clone(), e.user.clone()))
        };
        if local.is_some() {
            return local;
        }
        let s = self.shared.as_ref()?.get(identity).ok()??;
        Some(self.adopt(s))
    }

    /// The provisioned user behind a slug.
    pub fn user(&self, slug: &str) -> Option<User> {
        let local = {
            let t = self.read();
            t.by_slug
                .get(slug)
                .and_then(|id| t.by_identity.get(id))
                .map(|e| e.user.clone())
        };
        if local.is_some() {
            return local;
        }
        let s = self.shared.as_ref()?.by_slug(slug).ok()??;
        Some(self.adopt(s).1)
    }

    /// Provisioned users now.
    pub fn count(&self) -> usize {
        self.read().by_identity.len()
    }

    /// How long the last provisioning took.
    pub fn last_took(&self) -> Option<Duration> {
        *self.last_took.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether entries were forgotten since the last call (their grants should end).
    pub fn take_forgotten(&self) -> bool {
        self.forgotten.swap(0, Ordering::Relaxed) > 0
    }

    /// Forgets the user behind `slug` (Kimai no longer takes its token); the next sign-in of
    /// that identity provisions again.
    pub fn forget(&self, slug: &str, why: &str) {
        let removed = {
            let mut t = self.write();
            match t.by_slug.remove(slug) {
                Some(identity) => t.by_identity.remove(&identity).map(|e| (identity, e)),
                None => None,
            }
        };
        let Some((identity, entry)) = removed else {
            return;
        };
        if let Some(sh) = &self.shared
            && sh.forget(&identity, slug).is_err()
        {
            log::warn!(
                "provisioning: {} could not be forgotten in the shared state store (unreachable); the other instances forget it at their own next refusal by Kimai",
                entry.user.label()
            );
        }
        self.forgotten.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            target: "kimai_mcp::audit",
            "provisioning: forgot {} ({identity}): {why}; the next sign-in provisions a new token",
            entry.user.label()
        );
        self.save();
    }

    /// Writes the table to the store (with one); a failure is logged, memory stays right.
    fn save(&self) {
        let Some(store) = self.store() else { return };
        let entries: Vec<store::Saved> = {
            let t = self.read();
            t.by_identity
                .iter()
                .map(|(identity, e)| store::Saved {
                    identity: identity.clone(),
                    slug: e.slug.clone(),
                    kimai_url: e.user.kimai_url.clone(),
                    kimai_token: e.user.token.expose().to_string(),
                    tls: e.user.tls.clone(),
                    created_at: e.created_at,
                    kimai_user_id: e.user.kimai_user_id,
                })
                .collect()
        };
        if let Err(e) = store.save(&entries) {
            log::error!(
                "provisioning: cannot write the store {} ({e}); provisioned users are kept in memory and provisioned again after a restart",
                store.path().display()
            );
        }
    }

    /// The lock of one identity (made on first use, dropped when nobody holds or waits).
    fn identity_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone()
    }

    fn release_lock(&self, key: &str, lock: Arc<Mutex<()>>) {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and ours: nobody else holds or waits for it.
        if Arc::strong_count(&lock) == 2 {
            m.remove(key);
        }
    }

    /// Provisions `identity`: its slug and user, or why not (for the log).
    pub fn provision(&self, identity: &str, claims: &Value) -> Result<(String, User), String> {
        let key = identity_key(identity);
        let lock = self.identity_lock(&key);
        let result = {
            let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
            // Another sign-in of this identity may have provisioned it while we waited.
            match self.find(identity) {
                Some(found) => Ok(found),
                None => match &self.shared {
                    Some(sh) => self.provision_shared(sh, identity, &key, claims),
                    None => self.provision_now(identity, &key, claims),
                },
            }
        };
        self.release_lock(&key, lock);
        result
    }

    /// Provisioning with the shared store: one instance at a time per identity (the others
    /// wait for its entry, at most the lock's lifetime), and the entry shared when made.
    fn provision_shared(
        &self,
        sh: &shared::Shared,
        identity: &str,
        key: &str,
        claims: &Value,
    ) -> Result<(String, User), String> {
        let unreachable = || {
            "the shared state store cannot be reached, so the person cannot be provisioned for all instances now; try again shortly".to_string()
        };
        let started = Instant::now();
        while !sh.lock(identity).map_err(|_| unreachable())? {
            if let Some(found) = self.find(identity) {
                return Ok(found);
            }
            if started.elapsed() > shared::LOCK_TTL {
                return Err(
                    "another instance has been provisioning this person for too long; try again"
                        .into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // It may have been made between our look and the lock.
        let result = match sh.get(identity) {
            Ok(Some(s)) => Ok(self.adopt(s)),
            Ok(None) => self
                .provision_now(identity, key, claims)
                .and_then(|(slug, user)| {
                    let saved = Saved {
                        identity: key.to_string(),
                        slug: slug.clone(),
                        kimai_url: user.kimai_url.clone(),
                        kimai_token: user.token.expose().to_string(),
                        tls: user.tls.clone(),
                        created_at: now_secs(),
                        kimai_user_id: user.kimai_user_id,
                    };
                    match sh.put(&saved) {
                        Ok(()) => Ok((slug, user)),
                        Err(_) => {
                            // Not shared means served by this instance only: refuse rather than
                            // let another instance replace the token.
                            self.forget(&slug, "it could not be shared with the other instances");
                            Err(unreachable())
                        }
                    }
                }),
            Err(_) => Err(unreachable()),
        };
        sh.unlock(identity);
        result
    }

    fn provision_now(
        &self,
        identity: &str,
        key: &str,
        claims: &Value,
    ) -> Result<(String, User), String> {
        let started = Instant::now();
        if self.read().by_identity.len() >= MAX_PROVISIONED {
            return Err(format!(
                "{MAX_PROVISIONED} users are provisioned already, the most this server keeps"
            ));
        }
        let admin = &self.cfg.admin_token;
        let list = self
            .admin
            .call(admin, &Request::get("/users").query("visible", 3))
            .map_err(|e| match e.status() {
                Some(403) => "the provisioning admin token may not list Kimai's users (GET /api/users needs view_user, a super admin's permission by default)".to_string(),
                Some(401) => "Kimai does not accept the provisioning admin token (401)".to_string(),
                _ => format!("Kimai's user list cannot be read: {e}"),
            })?;
        let users: Vec<KimaiUser> = list
            .body
            .as_array()
            .map(|a| a.iter().filter_map(KimaiUser::from_json).collect())
            .unwrap_or_default();
        let names = Names::from_claims(claims);
        let (user, rule) = match matching::resolve(
            &users,
            identity,
            &names,
            self.cfg.match_mode,
            &self.cfg.allowed_domains,
        ) {
            Outcome::Matched { user, rule } => (user.clone(), rule),
            Outcome::Unsupported(why) => return Err(format!("cannot be provisioned: {why}")),
            Outcome::Ambiguous { rule, usernames } => {
                return Err(format!(
                    "ambiguous: the match rule '{rule}' finds several enabled Kimai users ({}); map the person with oidc_identity in users.json",
                    usernames.join(", ")
                ));
            }
            Outcome::NotFound { disabled } if !disabled.is_empty() => {
                return Err(format!(
                    "the only Kimai user that matches is disabled ({})",
                    disabled.join(", ")
                ));
            }
            Outcome::NotFound { .. } => {
                return Err(format!(
                    "no enabled Kimai user matches among {} (--provision-match {})",
                    users.len(),
                    match self.cfg.match_mode {
                        crate::config::MatchMode::Exact => "exact",
                        crate::config::MatchMode::Normalized => "normalized",
                        crate::config::MatchMode::Fuzzy => "fuzzy",
                    }
                ));
            }
        };
        let made = self
            .admin
            .call(
                admin,
                &Request::post(
                    format!("/users/{}/api-token", user.id),
                    json!({"name": self.cfg.token_name, "replaceExisting": true}),
                ),
            )
            .map_err(|e| match e.status() {
                Some(404) => "Kimai has no POST /api/users/{id}/api-token: the ApiTokenBundle plugin is not installed".to_string(),
                Some(403) => "Kimai refused to make the token: the provisioning admin token lacks api-token_other_profile (a super admin's permission by default)".to_string(),
                _ => format!("Kimai did not make the token: {e}"),
            })?;
        let token = made
            .body
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= 512)
            .ok_or("Kimai's answer to the token request holds no token")?
            .to_string();
        // The token must be that user's, or it is not handed to anyone.
        let me = self
            .admin
            .me(&Token::new(token.clone()))
            .map_err(|e| format!("the new token could not be checked with /api/users/me: {e}"))?;
        if me.id != Some(user.id) {
            return Err(format!(
                "the new token belongs to Kimai user {} ({}), not to the matched user {} ({}); it is not used",
                me.id.unwrap_or(-1),
                me.username,
                user.id,
                user.username
            ));
        }
        let slug = loop {
            let s = crate::secret::random_slug().map_err(|e| e.to_string())?;
            if !self.read().by_slug.contains_key(&s) {
                break s;
            }
        };
        let entry = {
            let mut t = self.write();
            let index = t.by_identity.len() + 1;
            let entry = Entry {
                slug: slug.clone(),
                user: self.user_of(identity, &token, Some(user.id), index),
                created_at: now_secs(),
            };
            t.by_slug.insert(slug.clone(), key.to_string());
            t.by_identity.insert(key.to_string(), entry.clone());
            entry
        };
        self.save();
        let took = started.elapsed();
        *self.last_took.lock().unwrap_or_else(|e| e.into_inner()) = Some(took);
        log::info!(
            target: "kimai_mcp::audit",
            "provisioning: {identity} is Kimai user {} (id {}, rule {rule}); token '{}' made and checked in {} ms",
            user.username,
            user.id,
            self.cfg.token_name,
            took.as_millis()
        );
        Ok((entry.slug, entry.user))
    }

    /// Start-up check: logs what will and will not work; never fails.
    pub fn probe(&self) {
        let admin = &self.cfg.admin_token;
        let url = &self.cfg.kimai_url;
        match self.admin.version(admin) {
            Ok(v) => log::info!("provisioning: Kimai {v} at {url}"),
            Err(e) => {
                log::error!(
                    "provisioning: Kimai at {url} cannot be reached ({e}); first sign-ins fail until it can"
                );
                return;
            }
        }
        match self.admin.me(admin) {
            Ok(me) => {
                log::info!(
                    "provisioning: the admin token belongs to {} (roles {})",
                    me.username,
                    if me.roles.is_empty() {
                        "ROLE_USER".to_string()
                    } else {
                        me.roles.join(", ")
                    }
                );
                if !me.roles.iter().any(|r| r == "ROLE_SUPER_ADMIN") {
                    log::warn!(
                        "provisioning: the admin token's user is not a super admin; Kimai gives view_user and api-token_other_profile to super admins by default, so first sign-ins fail unless its role has them"
                    );
                }
            }
            Err(e) => log::error!(
                "provisioning: Kimai refuses the admin token ({e}); first sign-ins fail"
            ),
        }
        match self.admin.call(admin, &Request::get("/plugins")) {
            Ok(r) => {
                let has = r.body.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|p| p.get("name").and_then(Value::as_str) == Some("ApiTokenBundle"))
                });
                if !has {
                    log::error!(
                        "provisioning: the ApiTokenBundle plugin is not installed in Kimai at {url}: Kimai cannot make tokens over its API, so every first sign-in is refused (see the README: Sign in with your identity provider)"
                    );
                }
            }
            Err(e) => log::warn!("provisioning: Kimai's plugin list cannot be read ({e})"),
        }
        match self
            .admin
            .call(admin, &Request::get("/users").query("visible", 3))
        {
            Ok(r) => log::info!(
                "provisioning: {} Kimai users visible to the admin token",
                r.body.as_array().map_or(0, Vec::len)
            ),
            Err(e) if e.status() == Some(403) => log::error!(
                "provisioning: the admin token may not list Kimai's users (view_user): every first sign-in is refused"
            ),
            Err(e) => log::warn!("provisioning: Kimai's user list cannot be read ({e})"),
        }
    }
}

/// The usage hook of a provisioned user's account: counts as the server's metrics do, and a
/// 401 from Kimai forgets the user.
pub struct Watch {
    pub inner: Arc<dyn Usage>,
    pub provisioner: Arc<Provisioner>,
    pub slug: String,
}

impl Usage for Watch {
    fn kimai_request(&self, took: Duration) {
        self.inner.kimai_request(took);
    }
    fn tool_call(&self, tool: &'static str, outcome: &'static str) {
        self.inner.tool_call(tool, outcome);
    }
    fn kimai_unauthorized(&self) {
        self.provisioner
            .forget(&self.slug, "Kimai answered 401 to its token");
    }
}

#[cfg(test)]
mod tests;
