//! The shared state of `serve`: the configuration, the users, the server tokens, the session
//! table, the guards' tables, the bounded cache of Kimai clients and the Kimai URL policy, the
//! work limits, the metrics and the OAuth server — and the operations on them that do not
//! depend on a request (reload on SIGHUP, the slug lookup, the Kimai client for a URL).
//!
//! Threads: connection threads read it concurrently; each table has its own lock, held only to
//! look up or change an entry, never across a Kimai call or a socket write.

use super::error::Error;
use super::work;
use crate::config::ServeConfig;
use crate::config::users::Users;
use crate::dispatch::Dispatcher;
use crate::guard::{
    self, EnumerationGuard, EnumerationSettings, KimaiUrls, OriginPolicy, RateLimiter,
    TokenVerdicts, TrustedProxies,
};
use crate::kimai::Account;
use crate::kimai::{self, Tls};
use crate::session::{SessionTable, fingerprint};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Per-request facts the guards established.
pub struct Ctx {
    /// The client's address (behind a trusted proxy, the forwarded one), for logs.
    pub ip: IpAddr,
    /// What the per-address limits count: the address, or for IPv6 its /64 network (one
    /// machine usually holds a whole /64, so counting single IPv6 addresses would give it 2^64
    /// shares).
    pub key: IpAddr,
    pub started: Instant,
}

/// The server's shared state.
pub struct App {
    pub cfg: ServeConfig,
    pub users: RwLock<Arc<Users>>,
    pub server_tokens: RwLock<Vec<String>>,
    pub sessions: Arc<SessionTable>,
    /// `--state`: the shared store (Streamable HTTP session records, the limits' counters).
    pub state: Option<Arc<crate::state::Store>>,
    /// `--state`: the Streamable HTTP sessions this instance served lately, so that its
    /// requests of one session share one lifecycle state (cancellations reach their call);
    /// the store's record decides whether a session exists.
    pub attached: Arc<SessionTable>,
    clients: Mutex<HashMap<(String, Tls), Arc<kimai::Client>>>,
    /// The Kimai URLs callers may name (`--allowed-kimai-url`, the default URL and the users
    /// file's URLs; rebuilt on reload).
    pub kimai_urls: RwLock<KimaiUrls>,
    pub rate: RateLimiter,
    /// `--user-rate-limit-rpm`: requests per credential, from all its addresses.
    pub user_rate: RateLimiter<guard::CredentialKey>,
    /// `--session-rate-per-address`: new sessions per client address.
    pub session_rate: RateLimiter,
    /// Kimai's recent verdicts on callers' own tokens.
    pub verdicts: TokenVerdicts,
    /// Tool calls in flight per credential.
    pub calls: Arc<work::CallLimiter>,
    pub enumeration: EnumerationGuard,
    pub origin: OriginPolicy,
    pub trusted: TrustedProxies,
    /// Key for credential fingerprints (random per process; with `--state`, shared through
    /// the store).
    pub fp_key: [u8; 32],
    pub dispatcher: Dispatcher,
    pub slots: work::Slots,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The OAuth authorization server (with `--public-url`).
    pub oauth: Option<crate::oauth::OAuth>,
    /// The identity provider people sign in with (`--auth-backend oidc`; needs `oauth`).
    pub oidc: Option<crate::oauth::oidc::Oidc>,
    /// Auto-provisioning (`--auto-provision`; needs `oidc`).
    pub provisioner: Option<Arc<crate::provision::Provisioner>>,
    /// Deployment mistakes already warned about (each once per process).
    pub warned: Warned,
}

/// Set once a deployment mistake has been logged, so that the log names it once, not per
/// request.
#[derive(Default)]
pub struct Warned {
    /// `X-Forwarded-For` from a peer that is not a `--trusted-proxy`.
    pub untrusted_proxy: std::sync::atomic::AtomicBool,
    /// A `Host` that is not a loopback or `--public-host` name on a loopback listener.
    pub host: std::sync::atomic::AtomicBool,
}

impl Warned {
    /// True the first time only.
    pub fn first(flag: &std::sync::atomic::AtomicBool) -> bool {
        !flag.swap(true, std::sync::atomic::Ordering::Relaxed)
    }
}

impl App {
    /// `port` is the port actually bound (with `--port 0` the configured one is 0).
    pub fn new(
        cfg: ServeConfig,
        port: u16,
        users: Users,
        server_tokens: Vec<String>,
        enumeration: EnumerationSettings,
    ) -> Result<App, Error> {
        let trusted = TrustedProxies::parse(&cfg.trusted_proxies).map_err(|e| {
            Error::Setting(format!(
                "invalid --trusted-proxy / KIMAI_MCP_TRUSTED_PROXIES: {e}"
            ))
        })?;
        let loopback =
            cfg.host == "localhost" || cfg.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let mut public_hosts = cfg.public_hosts.clone();
        if let Some(url) = &cfg.public_url {
            // The public URL's host (with its port, if it names one) is how browsers and
            // the proxy address us.
            if let Some(authority) = url.split("://").nth(1) {
                public_hosts.push(authority.to_string());
            }
        }
        let origin = OriginPolicy::new(loopback, port, cfg.allowed_origins.clone(), public_hosts);
        let state = match &cfg.state {
            Some(c) => Some(Arc::new(
                crate::state::Store::open(c).map_err(Error::Setting)?,
            )),
            None => None,
        };
        let fp_key = match &state {
            Some(store) => {
                let key = store.fingerprint_key().map_err(Error::Setting)?;
                log::info!(
                    "shared state: Streamable HTTP sessions, rate limits, the unknown-slug guard and calls in flight{} are kept in {} with every instance that names it",
                    if cfg.public_url.is_some() {
                        ", and the OAuth clients, sign-ins and tokens,"
                    } else {
                        ""
                    },
                    store.shown()
                );
                key
            }
            None => crate::secret::random_bytes::<32>().map_err(Error::Random)?,
        };
        let oauth = match &cfg.public_url {
            Some(url) => Some(
                crate::oauth::OAuth::new(
                    url,
                    crate::oauth::Settings {
                        registrations_per_address: cfg.bounds.registrations_per_address,
                        pending_per_address: cfg.bounds.pending_sign_ins_per_address,
                        ..cfg.oauth.clone()
                    },
                    // With the shared store the tables live there; a state file is not used.
                    cfg.oauth_state_file.clone().filter(|_| state.is_none()),
                )
                .map_err(Error::Setting)
                .map(|o| match &state {
                    Some(store) => o.with_store(store.clone(), &fp_key),
                    None => o,
                })?,
            ),
            None => None,
        };
        if state.is_some() && oauth.is_some() && cfg.oauth_state_file.is_some() {
            log::warn!(
                "--oauth-state-file is not used with --state: registered clients, sign-ins and tokens are kept in the shared state store (a file's sign-ins are not copied there; people sign in once more)"
            );
        }
        if oauth.is_some() && cfg.oauth.client_metadata_localhost {
            log::warn!(
                "--allow-localhost-client-metadata-for-tests is on: OAuth clients may name http://localhost documents, which this server then fetches from loopback; use it for test suites only"
            );
        }
        let oidc = match (&cfg.sign_in.oidc, &oauth) {
            (Some(settings), Some(o)) => Some(crate::oauth::oidc::Oidc::new(
                crate::oauth::oidc::Settings {
                    login_ttl: o.settings().request_ttl,
                    ..settings.clone()
                },
                &o.origin,
            ))
            .map(|oidc| match &state {
                Some(store) => oidc.with_store(store.clone()),
                None => oidc,
            }),
            _ => None,
        };
        let provisioner = match (&cfg.sign_in.provision, &oidc) {
            (Some(p), Some(_)) => {
                let settings = cfg.kimai_settings(&p.kimai_url, p.tls.clone());
                let provisioner = crate::provision::Provisioner::new(p.clone(), settings)
                    .map_err(Error::Setting)?;
                let provisioner = match (&state, cfg.state.as_ref().and_then(|c| c.key)) {
                    (Some(store), Some(key)) => provisioner.with_store(store.clone(), &key),
                    (Some(_), None) => {
                        return Err(Error::Setting(format!(
                            "--auto-provision with --state needs {} ({}): the provisioned Kimai tokens are shared by all instances through the store, encrypted with that key (make one with: kimai-mcp generate token > /etc/kimai-mcp/state-key; chmod 600; the same file on every instance)",
                            crate::config::state::KEY_FLAG,
                            crate::config::state::KEY_VAR
                        )));
                    }
                    (None, _) => {
                        provisioner.load(&users);
                        provisioner
                    }
                };
                Some(Arc::new(provisioner))
            }
            _ => None,
        };
        if let Some(o) = &oauth {
            // Grants of users that are gone or can no longer sign in end now.
            let oidc_on = oidc.is_some();
            let provisioned =
                |slug: &str| provisioner.as_ref().is_some_and(|p| p.user(slug).is_some());
            let gone = o.retain_subjects(&|slug| {
                provisioned(slug) || can_sign_in(oidc_on, users.by_slug.get(slug))
            });
            if gone > 0 {
                log::info!(
                    "oauth: {gone} sign-in(s) of users no longer in the users file (or without {}) ended",
                    if oidc_on {
                        "oidc_identity"
                    } else {
                        "auth_secret"
                    }
                );
            }
        }
        let kimai_urls = kimai_url_policy(&cfg, &users);
        if kimai_urls.is_empty() && !kimai_urls.allows_any() {
            log::warn!(
                "no Kimai URL is allowed for /mcp and /sse callers: set --default-kimai-url, list your Kimai in --allowed-kimai-url, or add users to the users file"
            );
        }
        if kimai_urls.allows_any() {
            log::warn!(
                "--allowed-kimai-url '*': /mcp and /sse callers may point this server at any URL (X-Kimai-URL), including addresses inside your network; list your Kimai URLs instead"
            );
        }
        Ok(App {
            sessions: SessionTable::with_per_owner(
                cfg.max_sessions,
                cfg.session_ttl,
                cfg.instance_id.as_deref().unwrap_or(""),
                cfg.bounds.max_sessions_per_user,
            ),
            rate: RateLimiter::new(cfg.rate_limit_rpm),
            user_rate: RateLimiter::per_credential(cfg.bounds.user_rate_limit_rpm),
            session_rate: RateLimiter::new(cfg.bounds.session_rate_per_address),
            verdicts: TokenVerdicts::default(),
            calls: match &state {
                Some(store) => work::CallLimiter::shared(
                    cfg.bounds.max_calls_per_user,
                    store.clone(),
                    cfg.bounds.call_lease,
                ),
                None => work::CallLimiter::new(cfg.bounds.max_calls_per_user),
            },
            attached: SessionTable::new(cfg.max_sessions, cfg.session_ttl),
            state,
            kimai_urls: RwLock::new(kimai_urls),
            enumeration: EnumerationGuard::new(enumeration),
            slots: work::Slots::new(cfg.workers),
            users: RwLock::new(Arc::new(users)),
            server_tokens: RwLock::new(server_tokens),
            clients: Mutex::new(HashMap::new()),
            origin,
            trusted,
            fp_key,
            dispatcher: Dispatcher::new(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            oauth,
            oidc,
            provisioner,
            warned: Warned::default(),
            cfg,
        })
    }

    pub fn users(&self) -> Arc<Users> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The shared Kimai client for a URL and TLS setting (one connection pool each). Only
    /// allowed URLs get here; with `--allowed-kimai-url '*'` there can be any number of them,
    /// so the cache keeps at most [`MAX_CACHED_CLIENTS`]: when it is full, a client no session
    /// uses any more makes room, and if every one is in use the new client is not cached.
    pub fn client(&self, url: &str, tls: &Tls) -> Result<Arc<kimai::Client>, kimai::Error> {
        let key = (url.to_string(), tls.clone());
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        // Built outside the lock (reading a CA file is I/O); a racing builder wins harmlessly.
        let c = Arc::new(kimai::Client::new(
            self.cfg.kimai_settings(url, tls.clone()),
        )?);
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_CLIENTS && !map.contains_key(&key) {
            map.retain(|_, c| Arc::strong_count(c) > 1);
            if map.len() >= MAX_CACHED_CLIENTS {
                return Ok(c);
            }
        }
        Ok(map.entry(key).or_insert(c).clone())
    }

    /// Kimai clients cached now.
    pub fn cached_clients(&self) -> usize {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether callers may point the server at this Kimai base URL.
    pub fn kimai_url_allowed(&self, url: &str) -> bool {
        self.kimai_urls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .allows(url)
    }
}

impl App {
    /// Replaces the users (SIGHUP): sessions of slugs that are gone end at once; sessions of
    /// users that remain keep working (with their entry as it is now). Returns a summary with
    /// counts only (never a slug).
    pub fn reload_users(&self, users: Users, server_tokens: Option<Vec<String>>) -> String {
        let old = self.users();
        let added = users
            .by_slug
            .keys()
            .filter(|k| !old.by_slug.contains_key(*k))
            .count();
        let removed = old
            .by_slug
            .keys()
            .filter(|k| !users.by_slug.contains_key(*k))
            .count();
        let changed = users
            .by_slug
            .iter()
            .filter(|(k, u)| {
                old.by_slug.get(*k).is_some_and(|o| {
                    o.kimai_url != u.kimai_url
                        || o.token.expose() != u.token.expose()
                        || o.tls != u.tls
                })
            })
            .count();
        let valid: Vec<[u8; 32]> = users
            .by_slug
            .keys()
            .map(|slug| fingerprint(&self.fp_key, &["slug", slug]))
            .collect();
        let count = users.by_slug.len();
        // OAuth sign-ins end for users that are gone, lost what they sign in with (their
        // auth_secret, or with the identity provider their oidc_identity) or got a new one.
        let oidc_on = self.oidc.is_some();
        let signed_out = self.oauth.as_ref().map_or(0, |o| {
            o.retain_subjects(&|slug| {
                self.is_provisioned(slug)
                    || same_sign_in(oidc_on, old.by_slug.get(slug), users.by_slug.get(slug))
            })
        });
        *self.kimai_urls.write().unwrap_or_else(|e| e.into_inner()) =
            kimai_url_policy(&self.cfg, &users);
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        let ended = self
            .sessions
            .retain(|s| !s.via_slug || valid.contains(&s.owner));
        let mut summary = format!(
            "{count} users ({added} added, {removed} removed, {changed} changed); {ended} sessions of removed users ended"
        );
        if self.oauth.is_some() {
            summary.push_str(&format!(
                "; {signed_out} OAuth sign-in(s) of removed users or changed {} ended",
                if oidc_on {
                    "identities"
                } else {
                    "auth secrets"
                }
            ));
        }
        if let Some(tokens) = server_tokens {
            summary.push_str(&format!("; {} server token(s)", tokens.len()));
            *self
                .server_tokens
                .write()
                .unwrap_or_else(|e| e.into_inner()) = tokens;
        }
        summary
    }

    /// Whether `slug` may sign in with OAuth (and its grants stay valid): with the identity
    /// provider, a users-file user with an `oidc_identity` or a provisioned user; with the local
    /// form, a users-file user with an `auth_secret`.
    pub fn may_sign_in(&self, slug: &str) -> bool {
        self.is_provisioned(slug)
            || can_sign_in(self.oidc.is_some(), self.users().by_slug.get(slug))
    }

    /// Whether `slug` is a user that auto-provisioning created.
    pub fn is_provisioned(&self, slug: &str) -> bool {
        self.provisioner
            .as_ref()
            .is_some_and(|p| p.user(slug).is_some())
    }

    /// Resolves a slug to its user in constant time per entry (every slug is compared); then
    /// the provisioned users (whose slugs are never personal URLs).
    pub fn user_for_slug(&self, slug: &str) -> Option<crate::config::users::User> {
        let users = self.users();
        let mut found = None;
        for (s, u) in &users.by_slug {
            if guard::ct_eq(s.as_bytes(), slug.as_bytes()) {
                found = Some(u.clone());
            }
        }
        found.or_else(|| self.provisioner.as_ref().and_then(|p| p.user(slug)))
    }

    /// The backend and owner fingerprint for a slug user.
    pub fn slug_backend(
        &self,
        slug: &str,
        user: &crate::config::users::User,
    ) -> Result<(Account, [u8; 32]), kimai::Error> {
        let client = self.client(&user.kimai_url, &user.tls)?;
        let metrics: Arc<dyn crate::kimai::Usage> = self.metrics.clone();
        // A provisioned user's token that Kimai refuses is forgotten (`provision::Watch`).
        let usage = match (&self.provisioner, user.source) {
            (Some(p), crate::config::users::Source::Provisioned) => {
                Arc::new(crate::provision::Watch {
                    inner: metrics,
                    provisioner: p.clone(),
                    slug: slug.to_string(),
                }) as Arc<dyn crate::kimai::Usage>
            }
            _ => metrics,
        };
        Ok((
            Account {
                usage: Some(usage),
                client,
                token: user.token.clone(),
            },
            fingerprint(&self.fp_key, &["slug", slug]),
        ))
    }
}

/// Whether a users-file user can sign in with OAuth under the backend in use.
fn can_sign_in(oidc: bool, user: Option<&crate::config::users::User>) -> bool {
    user.is_some_and(|u| {
        if oidc {
            u.oidc_identity.is_some()
        } else {
            u.auth_secret.is_some()
        }
    })
}

/// Whether a user signs in with the same credential before and after a reload (auth secrets
/// compared in constant time, identities without regard to case).
fn same_sign_in(
    oidc: bool,
    old: Option<&crate::config::users::User>,
    new: Option<&crate::config::users::User>,
) -> bool {
    let (Some(old), Some(new)) = (old, new) else {
        return false;
    };
    if oidc {
        use crate::config::users::identity_key;
        match (&old.oidc_identity, &new.oidc_identity) {
            (Some(a), Some(b)) => identity_key(a) == identity_key(b),
            _ => false,
        }
    } else {
        match (&old.auth_secret, &new.auth_secret) {
            (Some(a), Some(b)) => guard::ct_eq(a.expose().as_bytes(), b.expose().as_bytes()),
            _ => false,
        }
    }
}

/// Kimai clients kept at most (one per allowed Kimai URL and TLS setting).
pub const MAX_CACHED_CLIENTS: usize = 256;

/// The Kimai URL policy: `--allowed-kimai-url`, plus the default URL and the users file's URLs.
fn kimai_url_policy(cfg: &ServeConfig, users: &Users) -> KimaiUrls {
    use crate::config::KimaiUrlPolicy;
    let (any, listed): (bool, &[String]) = match &cfg.allowed_kimai_urls {
        KimaiUrlPolicy::Any => (true, &[]),
        KimaiUrlPolicy::List(l) => (false, l),
    };
    KimaiUrls::new(
        any,
        listed
            .iter()
            .map(String::as_str)
            .chain(cfg.default_kimai_url.as_deref())
            .chain(users.by_slug.values().map(|u| u.kimai_url.as_str())),
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Command;

    fn app(args: &[&str]) -> App {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let Ok(Command::Serve(cfg)) =
            crate::config::parse(all.iter().map(std::ffi::OsString::from).collect(), &|_| {
                None
            })
        else {
            panic!("serve options did not parse")
        };
        let users = Users {
            by_slug: HashMap::new(),
            warnings: Vec::new(),
        };
        App::new(cfg, 8000, users, vec![], EnumerationSettings::default()).unwrap()
    }

    #[test]
    fn the_kimai_client_cache_stays_bounded_whatever_urls_arrive() {
        let app = app(&["--allowed-kimai-url", "*"]);
        let tls = app.cfg.tls.clone();
        let mut held = Vec::new();
        for i in 0..(MAX_CACHED_CLIENTS + 500) {
            let c = app
                .client(&format!("http://10.0.{}.{}:8001", i / 250, i % 250), &tls)
                .unwrap();
            // The first ones stay in use (as by open sessions); the rest are dropped at once.
            if i < 10 {
                held.push(c);
            }
        }
        assert!(app.cached_clients() <= MAX_CACHED_CLIENTS);
        // Clients in use are kept; a cached URL gives the same client.
        let again = app.client("http://10.0.0.0:8001", &tls).unwrap();
        assert!(Arc::ptr_eq(&again, &held[0]));
    }

    #[test]
    fn only_configured_kimai_urls_are_allowed_by_default() {
        let app = app(&["--default-kimai-url", "https://kimai.example.com/api"]);
        assert!(app.kimai_url_allowed("https://kimai.example.com"));
        assert!(!app.kimai_url_allowed("http://127.0.0.1:6379"));
        let app = app_with_list();
        assert!(app.kimai_url_allowed("http://10.1.1.1:8001"));
        assert!(app.kimai_url_allowed("https://b.example.com"));
        assert!(!app.kimai_url_allowed("https://c.example.com"));
    }

    fn app_with_list() -> App {
        app(&[
            "--allowed-kimai-url",
            "http://10.1.1.1:8001,https://b.example.com",
        ])
    }
}
