//! The options of `kimai-mcp serve`: their defaults ([`serve_defaults`]), the resolved
//! [`ServeConfig`] with its [`Bounds`] and [`KimaiUrlPolicy`], and how the serve flags and their
//! environment variables become them (flag beats variable beats default, as everywhere).
//!
//! The command line itself (which flag is which, which command may take them) stays in
//! `config.rs`; this file only resolves what was given. Nothing here touches the network.

use std::path::PathBuf;
use std::time::Duration;

use super::{EnvFn, Error, check_url};
use crate::kimai::{self, Tls};

/// Defaults of `kimai-mcp serve`, in one place.
pub mod serve_defaults {
    use std::time::Duration;
    pub const HOST: &str = "127.0.0.1";
    pub const PORT: u16 = 8000;
    pub const RATE_LIMIT_RPM: u32 = 60;
    pub const MAX_SESSIONS: usize = 10_000;
    pub const SESSION_TTL: Duration = Duration::from_secs(3600);
    /// Tool calls and other requests handled at once (more wait their turn).
    pub const WORKERS: usize = 32;
    /// Connections open at once, from everyone.
    pub const MAX_CONNECTIONS: usize = 4096;
    /// Connections open at once from one client address.
    pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
    /// Connections open at once from one trusted proxy (it carries many clients).
    pub const MAX_CONNECTIONS_PER_PROXY: usize = 1024;
    /// A request body must arrive completely within this.
    pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Open sessions of one credential (slug, Kimai token, OAuth grant).
    pub const MAX_SESSIONS_PER_USER: usize = 20;
    /// New sessions per minute from one client address.
    pub const SESSION_RATE_PER_ADDRESS: u32 = 60;
    /// Tool calls of one credential in flight at once.
    pub const MAX_CALLS_PER_USER: usize = 4;
    /// Messages in one JSON-RPC batch.
    pub const MAX_BATCH: usize = 20;
    /// Requests per minute of one credential, from all addresses together (0 = off).
    pub const USER_RATE_LIMIT_RPM: u32 = 0;
    /// OAuth client registrations per hour from one client address.
    pub const REGISTRATIONS_PER_ADDRESS: u32 = 20;
    /// OAuth sign-ins in progress (authorize started, not finished) from one client address.
    pub const PENDING_SIGN_INS_PER_ADDRESS: usize = 20;
    /// With `--state`: how long a tool call's place among its credential's calls is held in
    /// the shared store before it lapses by itself (a killed instance gives its places back
    /// after this). A call running longer keeps running; its place is then free early.
    pub const CALL_LEASE: Duration = Duration::from_secs(120);
}

/// The per-address and per-credential bounds of `serve` (design §3): what keeps one client
/// from slowing down, locking out or reaching past the server for anyone else.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub max_connections_per_proxy: usize,
    pub body_timeout: Duration,
    pub max_sessions_per_user: usize,
    pub session_rate_per_address: u32,
    pub max_calls_per_user: usize,
    pub max_batch: usize,
    pub user_rate_limit_rpm: u32,
    pub registrations_per_address: u32,
    pub pending_sign_ins_per_address: usize,
    /// `--call-lease` (with `--state`): see [`serve_defaults::CALL_LEASE`].
    pub call_lease: Duration,
}

impl Default for Bounds {
    fn default() -> Bounds {
        use serve_defaults as d;
        Bounds {
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_address: d::MAX_CONNECTIONS_PER_ADDRESS,
            max_connections_per_proxy: d::MAX_CONNECTIONS_PER_PROXY,
            body_timeout: d::BODY_TIMEOUT,
            max_sessions_per_user: d::MAX_SESSIONS_PER_USER,
            session_rate_per_address: d::SESSION_RATE_PER_ADDRESS,
            max_calls_per_user: d::MAX_CALLS_PER_USER,
            max_batch: d::MAX_BATCH,
            user_rate_limit_rpm: d::USER_RATE_LIMIT_RPM,
            registrations_per_address: d::REGISTRATIONS_PER_ADDRESS,
            pending_sign_ins_per_address: d::PENDING_SIGN_INS_PER_ADDRESS,
            call_lease: d::CALL_LEASE,
        }
    }
}

/// Which Kimai servers `serve` may connect to for `/mcp` and `/sse` callers that send
/// `X-Kimai-URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KimaiUrlPolicy {
    /// `--allowed-kimai-url '*'`: any URL (a startup warning says so).
    Any,
    /// These base URLs (normalised like `--default-kimai-url`), plus `--default-kimai-url` and
    /// every `kimai_url` of the users file, which the server adds when it starts and reloads.
    List(Vec<String>),
}

/// `kimai-mcp serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub users_config: Option<PathBuf>,
    /// Accepted server tokens (several during a rotation). Empty = generate one at start.
    pub server_tokens: Vec<String>,
    /// A file holding the server tokens (comma- or line-separated), re-read on SIGHUP.
    pub server_token_file: Option<PathBuf>,
    pub default_kimai_url: Option<String>,
    pub tls: Tls,
    pub rate_limit_rpm: u32,
    pub max_sessions: usize,
    pub session_ttl: Duration,
    pub require_https: bool,
    /// Comma-separated IPs/CIDRs whose X-Forwarded-* headers are believed.
    pub trusted_proxies: String,
    pub allowed_origins: Vec<String>,
    /// Prefix of session ids, for a proxy that keeps sessions on their instance.
    pub instance_id: Option<String>,
    /// Host names (as a proxy forwards them) accepted besides loopback names.
    pub public_hosts: Vec<String>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The public origin (`https://host[:port]`); turns on the OAuth authorization server.
    pub public_url: Option<String>,
    /// Where registered OAuth clients and sign-ins are kept across restarts.
    pub oauth_state_file: Option<PathBuf>,
    /// `--state URL`: Streamable HTTP sessions and the limits' counters in Redis/Valkey, shared
    /// by every instance that names the same store (`None`: all in this process).
    pub state: Option<super::state::StateConfig>,
    /// Turns off `/mcp/{slug}`.
    pub disable_legacy_slugs: bool,
    /// OAuth lifetimes and limits (tests shorten them).
    pub oauth: crate::oauth::Settings,
    /// Per-address and per-credential bounds.
    pub bounds: Bounds,
    /// `--allowed-kimai-url`.
    pub allowed_kimai_urls: KimaiUrlPolicy,
    /// How people sign in to the OAuth server: the local form, or the identity provider
    /// with optional auto-provisioning (`config/sign_in.rs`).
    pub sign_in: super::sign_in::SignIn,
    /// Settings that were given but are not used, to log at start (never a secret).
    pub warnings: Vec<String>,
    /// What the tools may do for every caller (`--read-only`, `--tools`, `--exclude-tools`);
    /// a user's entry and an OAuth scope narrow it per caller.
    pub policy: crate::tools::policy::Policy,
    /// `--audit-log FILE` (`KIMAI_MCP_AUDIT_LOG`): one JSON line per write call, reopened on
    /// SIGHUP.
    pub audit_log: Option<PathBuf>,
}

impl ServeConfig {
    /// Kimai client settings for a URL and TLS choice with this server's timeouts.
    pub fn kimai_settings(&self, url: &str, tls: Tls) -> kimai::Settings {
        let mut s = kimai::Settings::new(url.to_string(), tls);
        s.connect_timeout = self.connect_timeout;
        s.timeout = self.timeout;
        s
    }
}

#[derive(Default)]
pub(super) struct ServeFlags {
    pub(super) http: bool,
    pub(super) host: Option<String>,
    pub(super) workers: Option<String>,
    pub(super) users_config: Option<String>,
    pub(super) server_token: Option<String>,
    pub(super) default_kimai_url: Option<String>,
    pub(super) rate_limit_rpm: Option<String>,
    pub(super) max_sessions: Option<String>,
    pub(super) session_ttl: Option<String>,
    pub(super) require_https: bool,
    pub(super) trusted: Vec<String>,
    pub(super) origins: Vec<String>,
    pub(super) instance_id: Option<String>,
    pub(super) server_token_file: Option<String>,
    pub(super) public_hosts: Vec<String>,
    pub(super) public_url: Option<String>,
    pub(super) oauth_state_file: Option<String>,
    pub(super) state: Option<String>,
    pub(super) state_password_file: Option<String>,
    pub(super) state_ca_file: Option<String>,
    pub(super) state_key_file: Option<String>,
    pub(super) disable_legacy_slugs: bool,
    pub(super) disable_client_metadata_documents: bool,
    pub(super) localhost_client_metadata: bool,
    pub(super) access_token_ttl: Option<String>,
    pub(super) refresh_token_ttl: Option<String>,
    pub(super) allowed_kimai_urls: Vec<String>,
    /// Numeric bounds as given: (flag, value).
    pub(super) bounds: Vec<(&'static str, String)>,
    /// `--auth-backend`, `--oidc-*`, `--auto-provision`, `--provision-*` as given: (flag,
    /// value; "" for a switch).
    pub(super) sign_in: Vec<(&'static str, String)>,
}

/// A boolean switch: the flag when given, else its variable (true/false words; any other word
/// is refused, naming both).
pub(super) fn switch(
    given: bool,
    flag: &'static str,
    var: &'static str,
    env: EnvFn,
) -> Result<bool, Error> {
    if given {
        return Ok(true);
    }
    match env(var) {
        None => Ok(false),
        Some(v) => truthy(&v).ok_or_else(|| Error::Invalid {
            flag,
            var,
            problem: format!("expected true or false, got {v:?}"),
        }),
    }
}

pub(super) fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(
    v: Option<String>,
    default: T,
    flag: &'static str,
    var: &'static str,
    what: &str,
) -> Result<T, Error> {
    match v.filter(|s| !s.trim().is_empty()) {
        None => Ok(default),
        Some(s) => s.trim().parse().map_err(|_| Error::Invalid {
            flag,
            var,
            problem: format!("expected {what}, got {s:?}"),
        }),
    }
}

impl ServeFlags {
    pub(super) fn is_empty(&self) -> bool {
        !self.http
            && self.host.is_none()
            && self.workers.is_none()
            && self.users_config.is_none()
            && self.server_token.is_none()
            && self.default_kimai_url.is_none()
            && self.rate_limit_rpm.is_none()
            && self.max_sessions.is_none()
            && self.session_ttl.is_none()
            && !self.require_https
            && self.trusted.is_empty()
            && self.origins.is_empty()
            && self.instance_id.is_none()
            && self.server_token_file.is_none()
            && self.public_hosts.is_empty()
            && self.public_url.is_none()
            && self.oauth_state_file.is_none()
            && self.state.is_none()
            && self.state_password_file.is_none()
            && self.state_ca_file.is_none()
            && self.state_key_file.is_none()
            && !self.disable_legacy_slugs
            && !self.disable_client_metadata_documents
            && !self.localhost_client_metadata
            && self.access_token_ttl.is_none()
            && self.refresh_token_ttl.is_none()
            && self.allowed_kimai_urls.is_empty()
            && self.bounds.is_empty()
            && self.sign_in.is_empty()
    }

    pub(super) fn resolve(
        self,
        port: Option<u16>,
        tls: Tls,
        connect_timeout: Duration,
        timeout: Duration,
        env: EnvFn,
    ) -> Result<ServeConfig, Error> {
        use serve_defaults as d;
        let host = self
            .host
            .or_else(|| env("KIMAI_MCP_HOST"))
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| d::HOST.into());
        if host.parse::<std::net::IpAddr>().is_err() && host != "localhost" {
            return Err(Error::Invalid {
                flag: "--host",
                var: "KIMAI_MCP_HOST",
                problem: format!(
                    "expected an IP address to listen on (e.g. 127.0.0.1 or 0.0.0.0), got {host:?}"
                ),
            });
        }
        let port = match port {
            Some(p) => p,
            None => number(
                env("KIMAI_MCP_PORT"),
                d::PORT,
                "--port",
                "KIMAI_MCP_PORT",
                "a port number",
            )?,
        };
        let workers = number(
            self.workers.or_else(|| env("KIMAI_MCP_WORKERS")),
            d::WORKERS,
            "--workers",
            "KIMAI_MCP_WORKERS",
            "a number of workers",
        )?;
        if workers == 0 || workers > 1024 {
            return Err(Error::Invalid {
                flag: "--workers",
                var: "KIMAI_MCP_WORKERS",
                problem: "must be between 1 and 1024".into(),
            });
        }
        let users_config = self
            .users_config
            .or_else(|| env("USERS_CONFIG_FILE"))
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from);
        let server_tokens: Vec<String> = self
            .server_token
            .or_else(|| env("MCP_SERVER_TOKEN"))
            .map(|t| {
                t.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(short) = server_tokens.iter().find(|t| t.len() < 16) {
            return Err(Error::Invalid {
                flag: "--server-token",
                var: "MCP_SERVER_TOKEN",
                problem: format!(
                    "a server token must be at least 16 characters (one is {}); generate one with `kimai-mcp generate token` or leave it unset to get a random one",
                    short.len()
                ),
            });
        }
        let default_kimai_url = match self
            .default_kimai_url
            .or_else(|| env("DEFAULT_KIMAI_URL"))
            .filter(|s| !s.trim().is_empty())
        {
            None => None,
            Some(u) => Some(check_url(u.trim()).map_err(|problem| Error::Invalid {
                flag: "--default-kimai-url",
                var: "DEFAULT_KIMAI_URL",
                problem,
            })?),
        };
        let rate_limit_rpm = number(
            self.rate_limit_rpm.or_else(|| env("RATE_LIMIT_RPM")),
            d::RATE_LIMIT_RPM,
            "--rate-limit-rpm",
            "RATE_LIMIT_RPM",
            "requests per minute (0 disables)",
        )?;
        let max_sessions = number(
            self.max_sessions.or_else(|| env("MAX_SESSIONS")),
            d::MAX_SESSIONS,
            "--max-sessions",
            "MAX_SESSIONS",
            "a number of sessions",
        )?;
        if max_sessions == 0 {
            return Err(Error::Invalid {
                flag: "--max-sessions",
                var: "MAX_SESSIONS",
                problem: "must be at least 1".into(),
            });
        }
        let ttl: f64 = number(
            self.session_ttl.or_else(|| env("SESSION_TTL")),
            d::SESSION_TTL.as_secs_f64(),
            "--session-ttl",
            "SESSION_TTL",
            "seconds",
        )?;
        if !(0.05..=7.0 * 86_400.0).contains(&ttl) {
            return Err(Error::Invalid {
                flag: "--session-ttl",
                var: "SESSION_TTL",
                problem: "must be between 0.05 s and 7 days".into(),
            });
        }
        let require_https = switch(self.require_https, "--require-https", "REQUIRE_HTTPS", env)?;
        let trusted_proxies = if self.trusted.is_empty() {
            env("KIMAI_MCP_TRUSTED_PROXIES").unwrap_or_default()
        } else {
            self.trusted.join(",")
        };
        let allowed_origins: Vec<String> = if self.origins.is_empty() {
            env("KIMAI_MCP_ALLOWED_ORIGINS")
                .map(|o| {
                    o.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            self.origins
        };
        let instance_id = self
            .instance_id
            .or_else(|| env("KIMAI_MCP_INSTANCE_ID"))
            .filter(|s| !s.trim().is_empty());
        if let Some(id) = &instance_id
            && (id.len() > 16
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(Error::Invalid {
                flag: "--instance-id",
                var: "KIMAI_MCP_INSTANCE_ID",
                problem: format!("expected 1 to 16 letters, digits, '_' or '-', got {id:?}"),
            });
        }
        let server_token_file = self
            .server_token_file
            .or_else(|| env("MCP_SERVER_TOKEN_FILE"))
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from);
        let server_tokens = match &server_token_file {
            Some(path) if server_tokens.is_empty() => read_token_file(path)?,
            Some(_) => {
                return Err(Error::Usage(
                    "give the server tokens either directly (--server-token / MCP_SERVER_TOKEN) or in a file (--server-token-file / MCP_SERVER_TOKEN_FILE), not both".into(),
                ));
            }
            None => server_tokens,
        };
        let public_hosts: Vec<String> = if self.public_hosts.is_empty() {
            env("KIMAI_MCP_PUBLIC_HOSTS")
                .map(|o| {
                    o.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            self.public_hosts
                .iter()
                .flat_map(|h| h.split(','))
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        let public_url = match self
            .public_url
            .or_else(|| env("KIMAI_MCP_PUBLIC_URL"))
            .filter(|s| !s.trim().is_empty())
        {
            None => None,
            Some(u) => Some(
                check_public_url(u.trim()).map_err(|problem| Error::Invalid {
                    flag: "--public-url",
                    var: "KIMAI_MCP_PUBLIC_URL",
                    problem,
                })?,
            ),
        };
        let mut warnings = Vec::new();
        let state_flag = self
            .oauth_state_file
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from);
        let state_env = env("KIMAI_MCP_OAUTH_STATE_FILE")
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from);
        if state_flag.is_some() && public_url.is_none() {
            return Err(Error::Usage(
                "--oauth-state-file needs --public-url (KIMAI_MCP_PUBLIC_URL): OAuth sign-in is on only with a public URL".into(),
            ));
        }
        // The Python server's compose file sets the variable by default, public URL or not:
        // without OAuth there is nothing to keep, so the variable alone is not a reason to stop.
        let oauth_state_file = match (state_flag, state_env) {
            (Some(f), _) => Some(f),
            (None, Some(f)) if public_url.is_none() => {
                warnings.push(format!(
                    "KIMAI_MCP_OAUTH_STATE_FILE ({}) is not used: OAuth sign-in is off without KIMAI_MCP_PUBLIC_URL (--public-url)",
                    f.display()
                ));
                None
            }
            (None, f) => f,
        };
        let sign_in =
            super::sign_in::resolve(&self.sign_in, public_url.as_deref(), env, &mut warnings)?;
        let disable_legacy_slugs = switch(
            self.disable_legacy_slugs,
            "--disable-legacy-slugs",
            "KIMAI_MCP_DISABLE_LEGACY_SLUGS",
            env,
        )?;
        let documents_off = switch(
            self.disable_client_metadata_documents,
            "--disable-client-metadata-documents",
            "KIMAI_MCP_DISABLE_CLIENT_METADATA_DOCUMENTS",
            env,
        )?;
        let mut oauth = crate::oauth::Settings {
            client_metadata_documents: !documents_off,
            // Tests only, so a flag and never an environment variable: a stray variable must
            // not let strangers point this server at loopback.
            client_metadata_localhost: self.localhost_client_metadata,
            ..crate::oauth::Settings::default()
        };
        let access: u64 = number(
            self.access_token_ttl
                .or_else(|| env("KIMAI_MCP_ACCESS_TOKEN_TTL")),
            oauth.access_ttl.as_secs(),
            "--access-token-ttl",
            "KIMAI_MCP_ACCESS_TOKEN_TTL",
            "seconds",
        )?;
        if !(1..=86_400).contains(&access) {
            return Err(Error::Invalid {
                flag: "--access-token-ttl",
                var: "KIMAI_MCP_ACCESS_TOKEN_TTL",
                problem: "must be between 1 second and 1 day".into(),
            });
        }
        let refresh: u64 = number(
            self.refresh_token_ttl
                .or_else(|| env("KIMAI_MCP_REFRESH_TOKEN_TTL")),
            oauth.refresh_ttl.as_secs(),
            "--refresh-token-ttl",
            "KIMAI_MCP_REFRESH_TOKEN_TTL",
            "seconds",
        )?;
        if !(access..=366 * 86_400).contains(&refresh) {
            return Err(Error::Invalid {
                flag: "--refresh-token-ttl",
                var: "KIMAI_MCP_REFRESH_TOKEN_TTL",
                problem: "must be at least the access-token lifetime and at most 366 days".into(),
            });
        }
        oauth.access_ttl = Duration::from_secs(access);
        oauth.refresh_ttl = Duration::from_secs(refresh);
        let bounds = resolve_bounds(&self.bounds, env)?;
        let state = super::state::resolve(
            self.state,
            self.state_password_file,
            self.state_ca_file,
            self.state_key_file,
            env,
        )?;
        let allowed_kimai_urls = {
            let given: Vec<String> = if self.allowed_kimai_urls.is_empty() {
                env("KIMAI_MCP_ALLOWED_KIMAI_URLS")
                    .map(|v| v.split(',').map(|x| x.trim().to_string()).collect())
                    .unwrap_or_default()
            } else {
                self.allowed_kimai_urls
                    .iter()
                    .flat_map(|u| u.split(','))
                    .map(|x| x.trim().to_string())
                    .collect()
            };
            let given: Vec<String> = given.into_iter().filter(|x| !x.is_empty()).collect();
            if given.iter().any(|u| u == "*") {
                KimaiUrlPolicy::Any
            } else {
                let mut list = Vec::new();
                for u in given {
                    list.push(check_url(&u).map_err(|problem| Error::Invalid {
                        flag: "--allowed-kimai-url",
                        var: "KIMAI_MCP_ALLOWED_KIMAI_URLS",
                        problem,
                    })?);
                }
                KimaiUrlPolicy::List(list)
            }
        };
        Ok(ServeConfig {
            sign_in,
            state,
            bounds,
            allowed_kimai_urls,
            warnings,
            policy: crate::tools::policy::Policy::default(),
            audit_log: None,
            public_url,
            oauth_state_file,
            disable_legacy_slugs,
            oauth,
            public_hosts,
            server_token_file,
            instance_id,
            host,
            port,
            workers,
            users_config,
            server_tokens,
            default_kimai_url,
            tls,
            rate_limit_rpm,
            max_sessions,
            session_ttl: Duration::from_secs_f64(ttl),
            require_https,
            trusted_proxies,
            allowed_origins,
            connect_timeout,
            timeout,
        })
    }
}

/// One numeric bound of `serve`: its flag, variable, and where it goes.
pub(super) struct BoundFlag {
    pub(super) flag: &'static str,
    pub(super) var: &'static str,
    /// Smallest and largest accepted value.
    pub(super) range: (u64, u64),
    pub(super) set: fn(&mut Bounds, u64),
}

pub(super) const BOUND_FLAGS: [BoundFlag; 12] = [
    BoundFlag {
        flag: "--max-connections",
        var: "KIMAI_MCP_MAX_CONNECTIONS",
        range: (1, 1_000_000),
        set: |b, v| b.max_connections = v as usize,
    },
    BoundFlag {
        flag: "--max-connections-per-address",
        var: "KIMAI_MCP_MAX_CONNECTIONS_PER_ADDRESS",
        range: (1, 1_000_000),
        set: |b, v| b.max_connections_per_address = v as usize,
    },
    BoundFlag {
        flag: "--max-connections-per-proxy",
        var: "KIMAI_MCP_MAX_CONNECTIONS_PER_PROXY",
        range: (1, 1_000_000),
        set: |b, v| b.max_connections_per_proxy = v as usize,
    },
    BoundFlag {
        flag: "--body-timeout",
        var: "KIMAI_MCP_BODY_TIMEOUT",
        range: (1, 3600),
        set: |b, v| b.body_timeout = Duration::from_secs(v),
    },
    BoundFlag {
        flag: "--max-sessions-per-user",
        var: "KIMAI_MCP_MAX_SESSIONS_PER_USER",
        range: (1, 1_000_000),
        set: |b, v| b.max_sessions_per_user = v as usize,
    },
    BoundFlag {
        flag: "--session-rate-per-address",
        var: "KIMAI_MCP_SESSION_RATE_PER_ADDRESS",
        range: (0, 1_000_000),
        set: |b, v| b.session_rate_per_address = v as u32,
    },
    BoundFlag {
        flag: "--max-calls-per-user",
        var: "KIMAI_MCP_MAX_CALLS_PER_USER",
        range: (1, 1024),
        set: |b, v| b.max_calls_per_user = v as usize,
    },
    BoundFlag {
        flag: "--max-batch",
        var: "KIMAI_MCP_MAX_BATCH",
        range: (1, 10_000),
        set: |b, v| b.max_batch = v as usize,
    },
    BoundFlag {
        flag: "--user-rate-limit-rpm",
        var: "KIMAI_MCP_USER_RATE_LIMIT_RPM",
        range: (0, 1_000_000),
        set: |b, v| b.user_rate_limit_rpm = v as u32,
    },
    BoundFlag {
        flag: "--max-registrations-per-address",
        var: "KIMAI_MCP_MAX_REGISTRATIONS_PER_ADDRESS",
        range: (0, 1_000_000),
        set: |b, v| b.registrations_per_address = v as u32,
    },
    BoundFlag {
        flag: "--max-pending-sign-ins-per-address",
        var: "KIMAI_MCP_MAX_PENDING_SIGN_INS_PER_ADDRESS",
        range: (1, 1_000_000),
        set: |b, v| b.pending_sign_ins_per_address = v as usize,
    },
    BoundFlag {
        flag: "--call-lease",
        var: "KIMAI_MCP_CALL_LEASE",
        range: (1, 86_400),
        set: |b, v| b.call_lease = Duration::from_secs(v),
    },
];

/// The bounds from flags (last one wins), else their variables, else the defaults.
fn resolve_bounds(flags: &[(&'static str, String)], env: EnvFn) -> Result<Bounds, Error> {
    let mut bounds = Bounds::default();
    for b in &BOUND_FLAGS {
        let given = flags
            .iter()
            .rev()
            .find(|(f, _)| *f == b.flag)
            .map(|(_, v)| v.clone())
            .or_else(|| env(b.var))
            .filter(|v| !v.trim().is_empty());
        let Some(v) = given else { continue };
        let flag = b.flag;
        let n: u64 = v.trim().parse().map_err(|_| Error::Invalid {
            flag,
            var: b.var,
            problem: format!("expected a whole number, got {v:?}"),
        })?;
        if !(b.range.0..=b.range.1).contains(&n) {
            return Err(Error::Invalid {
                flag,
                var: b.var,
                problem: format!("must be between {} and {}", b.range.0, b.range.1),
            });
        }
        (b.set)(&mut bounds, n);
    }
    let per_address = bounds.max_connections_per_address;
    if per_address >= bounds.max_connections {
        return Err(Error::Invalid {
            flag: "--max-connections-per-address",
            var: "KIMAI_MCP_MAX_CONNECTIONS_PER_ADDRESS",
            problem: format!(
                "must be below --max-connections ({}), so that one address cannot take every connection",
                bounds.max_connections
            ),
        });
    }
    if bounds.max_connections_per_proxy > bounds.max_connections {
        return Err(Error::Invalid {
            flag: "--max-connections-per-proxy",
            var: "KIMAI_MCP_MAX_CONNECTIONS_PER_PROXY",
            problem: format!(
                "must be at most --max-connections ({})",
                bounds.max_connections
            ),
        });
    }
    Ok(bounds)
}

/// Reads server tokens from a file: separated by commas or line breaks, blank entries and
/// `#` comment lines ignored, each at least 16 characters.
pub fn read_token_file(path: &std::path::Path) -> Result<Vec<String>, Error> {
    let bad = |problem: String| Error::Invalid {
        flag: "--server-token-file",
        var: "MCP_SERVER_TOKEN_FILE",
        problem,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let tokens: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err(bad(format!("{} holds no token", path.display())));
    }
    if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
        return Err(bad(format!(
            "a server token must be at least 16 characters (one in {} has {})",
            path.display(),
            short.len()
        )));
    }
    Ok(tokens)
}

/// `--public-url`: the origin people and applications reach the server at, which becomes the
/// OAuth issuer. An origin only (the server serves from the root of its host name); https,
/// except on a loopback host (a local test). Returns it without a trailing slash.
pub fn check_public_url(u: &str) -> Result<String, String> {
    let lower = u.to_ascii_lowercase();
    let (scheme, rest) = if let Some(r) = lower.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = lower.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err(format!(
            "expected the server's public address such as https://mcp.example.com, got {u:?}"
        ));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "expected an origin only (scheme, host and optional port, no path, query or user), got {u:?}; serve kimai-mcp at the root of its own host name"
        ));
    }
    let host = if let Some(r) = authority.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if scheme == "http" && !loopback {
        return Err(format!(
            "must be https:// (OAuth sends tokens to it), got {u:?}; http:// is accepted only for a loopback host such as http://127.0.0.1:8000"
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}
