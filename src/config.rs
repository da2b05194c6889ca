//! The command line and the environment, turned into one immutable [`Command`] before anything
//! runs.
//!
//! Precedence is the same for every option: a flag beats the environment variable, which beats
//! the default. Parsing takes the environment as a function so that tests can supply their own.
//! Errors name the flag and the variable that would fix them; `main` prints them on one line
//! and exits with status 2. Nothing here touches the network.
//!
//! This file holds the command line and the Kimai connection options of `stdio` and `check`;
//! the serve options and their resolution are in `config/serve.rs`, the help texts in
//! `config/help.rs`, the users file in `config/users.rs`.

mod help;
mod policy;
mod serve;
mod sign_in;
mod slug;
pub mod state;
pub mod users;

pub use help::{HELP, HELP_CHECK, HELP_DEMO, HELP_HEALTH, HELP_SERVE, HELP_SIM, HELP_STDIO};
use serve::{BOUND_FLAGS, ServeFlags};
pub use serve::{
    Bounds, KimaiUrlPolicy, ServeConfig, check_public_url, read_token_file, serve_defaults,
};
pub use sign_in::{DEFAULT_TOKEN_NAME, MatchMode, ProvisionConfig, SignIn};
pub use slug::{
    SLUG_MAX_CHARS, SLUG_MIN_CHARS, SLUG_MIN_DISTINCT_CHARS, SLUG_STRONG_CHARS, SlugCheck,
    check_slug,
};

use crate::kimai::{self, Tls, Token};
use lexopt::prelude::*;
use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

/// What the process was asked to do.
#[derive(Debug)]
pub enum Command {
    /// Serve MCP over stdin/stdout for one Kimai account.
    Stdio(KimaiConfig),
    /// Connect to Kimai with the same settings and report who the token belongs to.
    Check(KimaiConfig),
    /// Serve stdio against the built-in simulated Kimai.
    Demo(DemoConfig),
    /// Run the simulated Kimai alone.
    Sim(SimConfig),
    /// The central HTTP server.
    Serve(ServeConfig),
    /// Print a random secret.
    Generate(Secret),
    /// Ask a running server's `/health` (the container image's health check).
    Health {
        target: crate::healthcheck::Target,
        timeout: Duration,
    },
    /// Write the Claude Desktop configuration (`print`: only show it).
    Setup {
        print: bool,
    },
    /// Print this help text.
    Help(&'static str),
    Version,
}

/// Where Kimai is and how to talk to it.
#[derive(Debug, Clone)]
pub struct KimaiConfig {
    pub url: String,
    pub token: Token,
    pub tls: Tls,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// What the tools may do (`--read-only`, `--tools`, `--exclude-tools`); stdio only.
    pub policy: crate::tools::policy::Policy,
    /// `--audit-log FILE`: one JSON line per write call; stdio only.
    pub audit_log: Option<std::path::PathBuf>,
}

impl KimaiConfig {
    /// The client settings for this configuration.
    pub fn settings(&self) -> kimai::Settings {
        let mut s = kimai::Settings::new(self.url.clone(), self.tls.clone());
        s.connect_timeout = self.connect_timeout;
        s.timeout = self.timeout;
        s
    }
}

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    /// What the tools may do (`--read-only`, `--tools`, `--exclude-tools`).
    pub policy: crate::tools::policy::Policy,
    /// Serve HTTP (`kimai-mcp serve` against the simulator) instead of stdio.
    pub http: Option<ServeConfig>,
}

/// What `kimai-mcp generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// A server token: 256 bits, hex.
    Token,
    /// A users.json slug: 24 URL-safe characters (144 bits).
    Slug,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub port: u16,
    pub seed: u64,
    pub workcontract_plugin: bool,
    /// `--api-token-plugin`: install the ApiTokenBundle plugin (auto-provisioning's).
    pub api_token_plugin: bool,
}

/// Why the command line could not be used.
#[derive(Debug, PartialEq)]
pub enum Error {
    Usage(String),
    Missing {
        what: &'static str,
        flag: &'static str,
        var: &'static str,
    },
    Invalid {
        flag: &'static str,
        var: &'static str,
        problem: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m} (see kimai-mcp --help)"),
            Error::Missing { what, flag, var } => {
                write!(f, "{what} is required: pass {flag} or set {var}")
            }
            Error::Invalid { flag, var, problem } => write!(f, "invalid {flag} / {var}: {problem}"),
        }
    }
}

impl std::error::Error for Error {}

type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses the process arguments (without the program name) with `env` as the environment.
pub fn parse(args: Vec<OsString>, env: EnvFn) -> Result<Command, Error> {
    parse_as(false, args, env)
}

/// Like [`parse`]; `invoked_as_server` when the binary was started under a server name
/// (`kimai-mcp-streamable`, `kimai-mcp-server`), where no command means `serve`.
pub fn parse_as(
    invoked_as_server: bool,
    args: Vec<OsString>,
    env: EnvFn,
) -> Result<Command, Error> {
    let mut p = lexopt::Parser::from_args(args);
    let mut command: Option<String> = None;
    // The first positional value, if any, names the command; options may come before it.
    let mut kimai = KimaiFlags::default();
    let mut seed: Option<u64> = None;
    let mut port: Option<u16> = None;
    let mut no_workcontract = false;
    let mut api_token_plugin = false;
    let mut serve = ServeFlags::default();
    let mut policy = policy::PolicyFlags::default();
    let mut print_only = false;
    let mut health_url: Option<String> = None;
    let mut help = false;
    let mut help_topic: Option<String> = None;

    while let Some(arg) = p.next().map_err(usage)? {
        match arg {
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("kimai-url") => kimai.url = Some(string(&mut p, "--kimai-url")?),
            Long("kimai-token") => kimai.token = Some(string(&mut p, "--kimai-token")?),
            Long("ssl-verify") => kimai.ssl_verify = Some(string(&mut p, "--ssl-verify")?),
            Long("timeout") => kimai.timeout = Some(string(&mut p, "--timeout")?),
            Long("connect-timeout") => {
                kimai.connect_timeout = Some(string(&mut p, "--connect-timeout")?)
            }
            Long("kimai-user") => {
                let _ = string(&mut p, "--kimai-user")?;
                kimai.user_given = true;
            }
            Long("seed") => {
                let v = string(&mut p, "--seed")?;
                seed =
                    Some(v.parse().map_err(|_| {
                        Error::Usage(format!("--seed must be a number, got {v:?}"))
                    })?);
            }
            Long("port") => {
                let v = string(&mut p, "--port")?;
                port = Some(v.parse().map_err(|_| {
                    Error::Usage(format!("--port must be a port number (0-65535), got {v:?}"))
                })?);
            }
            Long("no-workcontract") => no_workcontract = true,
            Long("read-only") => policy.read_only = true,
            Long("tools") => policy.tools.push(string(&mut p, "--tools")?),
            Long("exclude-tools") => policy.exclude.push(string(&mut p, "--exclude-tools")?),
            Long("audit-log") => policy.audit_log = Some(string(&mut p, "--audit-log")?),
            Long("api-token-plugin") => api_token_plugin = true,
            // Read before the rest (`logging::LogFormat::from_args`), so that every line,
            // errors of this parse included, is in the chosen format.
            Long("log-format") => {
                let _ = string(&mut p, "--log-format")?;
            }
            Long("http") => serve.http = true,
            Long("print") => print_only = true,
            Long("url") => health_url = Some(string(&mut p, "--url")?),
            Long("host") => serve.host = Some(string(&mut p, "--host")?),
            Long("workers") => serve.workers = Some(string(&mut p, "--workers")?),
            Long("users-config") => serve.users_config = Some(string(&mut p, "--users-config")?),
            Long("server-token") => serve.server_token = Some(string(&mut p, "--server-token")?),
            Long("default-kimai-url") => {
                serve.default_kimai_url = Some(string(&mut p, "--default-kimai-url")?)
            }
            Long("rate-limit-rpm") => {
                serve.rate_limit_rpm = Some(string(&mut p, "--rate-limit-rpm")?)
            }
            Long("max-sessions") => serve.max_sessions = Some(string(&mut p, "--max-sessions")?),
            Long("session-ttl") => serve.session_ttl = Some(string(&mut p, "--session-ttl")?),
            Long("require-https") => serve.require_https = true,
            Long("trusted-proxy") => serve.trusted.push(string(&mut p, "--trusted-proxy")?),
            Long("allowed-origin") => serve.origins.push(string(&mut p, "--allowed-origin")?),
            Long("instance-id") => serve.instance_id = Some(string(&mut p, "--instance-id")?),
            Long("public-host") => serve.public_hosts.push(string(&mut p, "--public-host")?),
            Long("server-token-file") => {
                serve.server_token_file = Some(string(&mut p, "--server-token-file")?)
            }
            Long("public-url") => serve.public_url = Some(string(&mut p, "--public-url")?),
            Long("oauth-state-file") => {
                serve.oauth_state_file = Some(string(&mut p, "--oauth-state-file")?)
            }
            Long("state") => serve.state = Some(string(&mut p, "--state")?),
            Long("state-key-file") => {
                serve.state_key_file = Some(string(&mut p, "--state-key-file")?)
            }
            Long("state-ca-file") => serve.state_ca_file = Some(string(&mut p, "--state-ca-file")?),
            Long("state-password-file") => {
                serve.state_password_file = Some(string(&mut p, "--state-password-file")?)
            }
            Long("disable-legacy-slugs") => serve.disable_legacy_slugs = true,
            Long("disable-client-metadata-documents") => {
                serve.disable_client_metadata_documents = true
            }
            Long("allow-localhost-client-metadata-for-tests") => {
                serve.localhost_client_metadata = true
            }
            Long("access-token-ttl") => {
                serve.access_token_ttl = Some(string(&mut p, "--access-token-ttl")?)
            }
            Long("refresh-token-ttl") => {
                serve.refresh_token_ttl = Some(string(&mut p, "--refresh-token-ttl")?)
            }
            Long("allowed-kimai-url") => serve
                .allowed_kimai_urls
                .push(string(&mut p, "--allowed-kimai-url")?),
            Long(name) if sign_in::OPTIONS.iter().any(|o| &o.flag[2..] == name) => {
                let Some(o) = sign_in::OPTIONS.iter().find(|o| &o.flag[2..] == name) else {
                    continue;
                };
                let v = if o.value {
                    string(&mut p, o.flag)?
                } else {
                    String::new()
                };
                serve.sign_in.push((o.flag, v));
            }
            Long(name) if BOUND_FLAGS.iter().any(|b| &b.flag[2..] == name) => {
                let flag = BOUND_FLAGS
                    .iter()
                    .find(|b| &b.flag[2..] == name)
                    .map_or("", |b| b.flag);
                let v = string(&mut p, flag)?;
                serve.bounds.push((flag, v));
            }
            Value(v) => {
                let v = v
                    .string()
                    .map_err(|_| Error::Usage("arguments must be valid UTF-8".into()))?;
                if command.is_none() {
                    command = Some(v);
                } else if matches!(command.as_deref(), Some("help" | "generate"))
                    && help_topic.is_none()
                {
                    help_topic = Some(v);
                } else {
                    return Err(Error::Usage(format!("unexpected argument {v:?}")));
                }
            }
            other => return Err(usage(other.unexpected())),
        }
    }

    // Deployments start the binary as `kimai-mcp-streamable` or `kimai-mcp-server` (the names
    // of the Python project's HTTP servers): those names mean `serve`.
    let cmd = command
        .as_deref()
        .unwrap_or(if invoked_as_server { "serve" } else { "stdio" });
    if print_only && cmd != "setup" {
        return Err(Error::Usage(format!(
            "--print does not apply to `kimai-mcp {cmd}`"
        )));
    }
    if health_url.is_some() && cmd != "health" {
        return Err(Error::Usage(format!(
            "--url does not apply to `kimai-mcp {cmd}`"
        )));
    }
    if cmd != "serve" && !(cmd == "demo" && serve.http) && !serve.is_empty() {
        return Err(Error::Usage(format!(
            "HTTP server options do not apply to `kimai-mcp {cmd}`"
        )));
    }
    if api_token_plugin && cmd != "sim" {
        return Err(Error::Usage(format!(
            "--api-token-plugin does not apply to `kimai-mcp {cmd}`"
        )));
    }
    if help || cmd == "help" {
        let topic = match command.as_deref() {
            Some("help") => help_topic.as_deref().unwrap_or(""),
            Some(c) => c,
            None => "",
        };
        return Ok(Command::Help(match topic {
            "stdio" => HELP_STDIO,
            "check" => HELP_CHECK,
            "demo" => HELP_DEMO,
            "sim" => HELP_SIM,
            "serve" => HELP_SERVE,
            "health" => HELP_HEALTH,
            _ => HELP,
        }));
    }
    let only_for = |ok: bool, flag: &str| -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "{flag} does not apply to `kimai-mcp {cmd}`"
            )))
        }
    };
    match cmd {
        "stdio" | "check" => {
            only_for(seed.is_none(), "--seed")?;
            only_for(port.is_none(), "--port")?;
            only_for(!no_workcontract, "--no-workcontract")?;
            let mut cfg = kimai.resolve(env)?;
            Ok(if cmd == "stdio" {
                cfg.policy = policy.resolve(env)?;
                cfg.audit_log = policy.audit_log(env);
                Command::Stdio(cfg)
            } else {
                only_for(
                    policy.is_empty(),
                    "--read-only / --tools / --exclude-tools / --audit-log",
                )?;
                Command::Check(cfg)
            })
        }
        "demo" => {
            only_for(kimai.is_empty(), "Kimai connection options")?;
            only_for(!no_workcontract, "--no-workcontract")?;
            let http = if serve.http {
                Some(serve.resolve(
                    port,
                    Tls::Verify,
                    kimai::DEFAULT_CONNECT_TIMEOUT,
                    kimai::DEFAULT_TIMEOUT,
                    env,
                )?)
            } else {
                only_for(port.is_none(), "--port (it needs --http)")?;
                None
            };
            only_for(policy.audit_log.is_none(), "--audit-log")?;
            let policy = policy.resolve(env)?;
            let http = http.map(|mut h| {
                h.policy = policy.clone();
                h
            });
            Ok(Command::Demo(DemoConfig {
                seed: seed.unwrap_or(42),
                policy,
                http,
            }))
        }
        "setup" => {
            only_for(
                kimai.is_empty() && seed.is_none() && port.is_none() && !no_workcontract,
                "options (setup asks for what it needs)",
            )?;
            Ok(Command::Setup { print: print_only })
        }
        "generate" => {
            only_for(
                kimai.is_empty() && seed.is_none() && port.is_none() && !no_workcontract,
                "options",
            )?;
            match help_topic.as_deref() {
                Some("token") => Ok(Command::Generate(Secret::Token)),
                Some("slug") => Ok(Command::Generate(Secret::Slug)),
                _ => Err(Error::Usage(
                    "`kimai-mcp generate` needs what to make: token or slug".into(),
                )),
            }
        }
        "serve" => {
            only_for(seed.is_none(), "--seed")?;
            only_for(!no_workcontract, "--no-workcontract")?;
            only_for(!serve.http, "--http")?;
            only_for(
                kimai.url.is_none() && kimai.token.is_none() && !kimai.user_given,
                "--kimai-url/--kimai-token (each user's Kimai comes from users.json or the client's headers)",
            )?;
            let tls = match kimai
                .ssl_verify
                .clone()
                .or_else(|| env("KIMAI_SSL_VERIFY"))
                .filter(|s| !s.trim().is_empty())
            {
                None => Tls::Verify,
                Some(v) => Tls::parse(v.trim()).map_err(|problem| Error::Invalid {
                    flag: "--ssl-verify",
                    var: "KIMAI_SSL_VERIFY",
                    problem,
                })?,
            };
            let timeout = seconds(
                kimai.timeout.clone().or_else(|| env("KIMAI_TIMEOUT")),
                kimai::DEFAULT_TIMEOUT,
                "--timeout",
                "KIMAI_TIMEOUT",
            )?;
            let connect = seconds(
                kimai
                    .connect_timeout
                    .clone()
                    .or_else(|| env("KIMAI_CONNECT_TIMEOUT")),
                kimai::DEFAULT_CONNECT_TIMEOUT,
                "--connect-timeout",
                "KIMAI_CONNECT_TIMEOUT",
            )?;
            let mut cfg = serve.resolve(port, tls, connect, timeout, env)?;
            cfg.policy = policy.resolve(env)?;
            cfg.audit_log = policy.audit_log(env);
            Ok(Command::Serve(cfg))
        }
        "health" => {
            // --timeout bounds the check itself; KIMAI_TIMEOUT (a Kimai request limit that a
            // container's environment may well set) is not read.
            let timeout = kimai.timeout.take();
            only_for(kimai.is_empty(), "Kimai connection options")?;
            only_for(seed.is_none(), "--seed")?;
            only_for(!no_workcontract, "--no-workcontract")?;
            only_for(policy.is_empty(), "--read-only / --tools / --exclude-tools")?;
            health(health_url, port, timeout, env)
        }
        "sim" => {
            only_for(kimai.is_empty(), "Kimai connection options")?;
            only_for(policy.is_empty(), "--read-only / --tools / --exclude-tools")?;
            Ok(Command::Sim(SimConfig {
                port: port.unwrap_or(0),
                seed: seed.unwrap_or(42),
                workcontract_plugin: !no_workcontract,
                api_token_plugin,
            }))
        }
        other => Err(Error::Usage(format!(
            "unknown command {other:?}; commands: stdio, check, serve, health, demo, sim, setup, generate, help"
        ))),
    }
}

/// `kimai-mcp health`: `--url`, else the local server at `--port` / `KIMAI_MCP_PORT` (8000) on
/// the loopback address for `KIMAI_MCP_HOST`, the same variables `serve` reads.
fn health(
    url: Option<String>,
    port: Option<u16>,
    timeout: Option<String>,
    env: EnvFn,
) -> Result<Command, Error> {
    use crate::healthcheck;
    let url = match url {
        Some(url) if port.is_some() => {
            return Err(Error::Usage(format!(
                "--port does not apply with --url {url:?} (the URL names the port)"
            )));
        }
        Some(url) => url,
        None => {
            let port = match port {
                Some(p) => p,
                None => match env("KIMAI_MCP_PORT").filter(|v| !v.trim().is_empty()) {
                    None => serve_defaults::PORT,
                    Some(v) => v.trim().parse().map_err(|_| Error::Invalid {
                        flag: "--port",
                        var: "KIMAI_MCP_PORT",
                        problem: format!("expected a port number, got {v:?}"),
                    })?,
                },
            };
            if port == 0 {
                return Err(Error::Invalid {
                    flag: "--port",
                    var: "KIMAI_MCP_PORT",
                    problem: "the health check needs the server's port, not 0 (any free port)"
                        .into(),
                });
            }
            healthcheck::local_url(env("KIMAI_MCP_HOST").as_deref(), port)
        }
    };
    let target =
        healthcheck::Target::parse(&url).map_err(|p| Error::Usage(format!("--url: {p}")))?;
    let timeout = match timeout.filter(|v| !v.trim().is_empty()) {
        None => healthcheck::DEFAULT_TIMEOUT,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
            _ => {
                return Err(Error::Usage(format!(
                    "--timeout must be a number of seconds between 0 and 3600, got {v:?}"
                )));
            }
        },
    };
    Ok(Command::Health { target, timeout })
}

fn usage(e: lexopt::Error) -> Error {
    Error::Usage(e.to_string())
}

fn string(p: &mut lexopt::Parser, flag: &str) -> Result<String, Error> {
    p.value()
        .map_err(usage)?
        .into_string()
        .map_err(|_| Error::Usage(format!("the value of {flag} must be valid UTF-8")))
}

#[derive(Default)]
struct KimaiFlags {
    url: Option<String>,
    token: Option<String>,
    ssl_verify: Option<String>,
    timeout: Option<String>,
    connect_timeout: Option<String>,
    user_given: bool,
}

impl KimaiFlags {
    fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.token.is_none()
            && self.ssl_verify.is_none()
            && self.timeout.is_none()
            && self.connect_timeout.is_none()
            && !self.user_given
    }

    fn resolve(self, env: EnvFn) -> Result<KimaiConfig, Error> {
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let url = nonempty(self.url.or_else(|| env("KIMAI_URL"))).ok_or(Error::Missing {
            what: "the Kimai URL",
            flag: "--kimai-url",
            var: "KIMAI_URL",
        })?;
        let url = check_url(url.trim()).map_err(|problem| Error::Invalid {
            flag: "--kimai-url",
            var: "KIMAI_URL",
            problem,
        })?;
        let token =
            nonempty(self.token.or_else(|| env("KIMAI_API_TOKEN"))).ok_or(Error::Missing {
                what: "the Kimai API token",
                flag: "--kimai-token",
                var: "KIMAI_API_TOKEN",
            })?;
        let token = token.trim().to_string();
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Invalid {
                flag: "--kimai-token",
                var: "KIMAI_API_TOKEN",
                problem: "the token contains spaces or control characters".into(),
            });
        }
        let tls = match nonempty(self.ssl_verify.or_else(|| env("KIMAI_SSL_VERIFY"))) {
            None => Tls::Verify,
            Some(v) => Tls::parse(v.trim()).map_err(|problem| Error::Invalid {
                flag: "--ssl-verify",
                var: "KIMAI_SSL_VERIFY",
                problem,
            })?,
        };
        let timeout = seconds(
            self.timeout.or_else(|| env("KIMAI_TIMEOUT")),
            kimai::DEFAULT_TIMEOUT,
            "--timeout",
            "KIMAI_TIMEOUT",
        )?;
        let connect_timeout = seconds(
            self.connect_timeout
                .or_else(|| env("KIMAI_CONNECT_TIMEOUT")),
            kimai::DEFAULT_CONNECT_TIMEOUT,
            "--connect-timeout",
            "KIMAI_CONNECT_TIMEOUT",
        )?;
        if self.user_given || env("KIMAI_DEFAULT_USER").is_some() {
            log::warn!(
                "--kimai-user / KIMAI_DEFAULT_USER is ignored: the token decides which user acts"
            );
        }
        Ok(KimaiConfig {
            url,
            token: Token::new(token),
            tls,
            connect_timeout,
            timeout,
            policy: crate::tools::policy::Policy::default(),
            audit_log: None,
        })
    }
}

fn seconds(
    v: Option<String>,
    default: Duration,
    flag: &'static str,
    var: &'static str,
) -> Result<Duration, Error> {
    let Some(v) = v.filter(|s| !s.trim().is_empty()) else {
        return Ok(default);
    };
    match v.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(Error::Invalid {
            flag,
            var,
            problem: format!("expected a number of seconds between 0 and 3600, got {v:?}"),
        }),
    }
}

/// Checks that `url` is an http(s) URL with a host, and strips a trailing `/` or `/api`.
pub(super) fn check_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with https:// or http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{url:?} has no host name"));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "{url:?} must not contain a query string or fragment"
        ));
    }
    Ok(crate::kimai::without_api(url).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(OsString::from).collect(), &|k| {
            env.get(k).cloned()
        })
    }

    #[test]
    fn default_command_is_stdio_and_flags_beat_env() {
        let Command::Stdio(c) = run(
            &[
                "--kimai-url",
                "https://flag.example/",
                "--kimai-token",
                "abc",
            ],
            &[
                ("KIMAI_URL", "https://env.example"),
                ("KIMAI_API_TOKEN", "envtok"),
            ],
        )
        .unwrap() else {
            panic!("not stdio")
        };
        assert_eq!(c.url, "https://flag.example");
        assert_eq!(c.token.expose(), "abc");
        assert_eq!(c.tls, Tls::Verify);
        assert_eq!(c.timeout, kimai::DEFAULT_TIMEOUT);
        let Command::Stdio(c) = run(
            &["stdio"],
            &[
                ("KIMAI_URL", "https://env.example/api/"),
                ("KIMAI_API_TOKEN", "envtok"),
                ("KIMAI_SSL_VERIFY", "false"),
                ("KIMAI_TIMEOUT", "5"),
            ],
        )
        .unwrap() else {
            panic!("not stdio")
        };
        assert_eq!(c.url, "https://env.example");
        assert_eq!(c.token.expose(), "envtok");
        assert_eq!(c.tls, Tls::NoVerify);
        assert_eq!(c.timeout, Duration::from_secs(5));
        let Command::Check(c) = run(
            &["check", "--ssl-verify", "true"],
            &[
                ("KIMAI_URL", "http://k"),
                ("KIMAI_API_TOKEN", "t"),
                ("KIMAI_SSL_VERIFY", "false"),
            ],
        )
        .unwrap() else {
            panic!("not check")
        };
        assert_eq!(c.tls, Tls::Verify);
    }

    #[test]
    fn missing_url_or_token_names_flag_and_variable() {
        let e = run(&[], &[("KIMAI_API_TOKEN", "t")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Kimai URL is required: pass --kimai-url or set KIMAI_URL"
        );
        let e = run(&["--kimai-url", "https://k"], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Kimai API token is required: pass --kimai-token or set KIMAI_API_TOKEN"
        );
        let e = run(&["--kimai-url", "https://k", "--kimai-token", "  "], &[]).unwrap_err();
        assert!(matches!(
            e,
            Error::Missing {
                flag: "--kimai-token",
                ..
            }
        ));
    }

    #[test]
    fn bad_values_are_explained() {
        let e = run(
            &["--kimai-url", "kimai.example.com", "--kimai-token", "t"],
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("must start with https:// or http://"),
            "{e}"
        );
        let e = run(
            &[
                "--kimai-url",
                "https://k",
                "--kimai-token",
                "t",
                "--timeout",
                "0",
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid --timeout / KIMAI_TIMEOUT"),
            "{e}"
        );
        let e = run(
            &[
                "--kimai-url",
                "https://k",
                "--kimai-token",
                "t",
                "--ssl-verify",
                "/no/such/ca.pem",
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid --ssl-verify / KIMAI_SSL_VERIFY"),
            "{e}"
        );
        let e = run(&["frobnicate"], &[]).unwrap_err();
        assert!(
            e.to_string().contains("unknown command \"frobnicate\""),
            "{e}"
        );
        let e = run(&["--bogus"], &[]).unwrap_err();
        assert!(e.to_string().contains("--bogus"), "{e}");
        let e = run(&["demo", "--kimai-url", "https://k"], &[]).unwrap_err();
        assert!(e.to_string().contains("does not apply"), "{e}");
    }

    #[test]
    fn help_version_demo_sim() {
        assert!(matches!(run(&["--help"], &[]).unwrap(), Command::Help(h) if h == HELP));
        assert!(
            matches!(run(&["check", "--help"], &[]).unwrap(), Command::Help(h) if h == HELP_CHECK)
        );
        assert!(matches!(run(&["help", "sim"], &[]).unwrap(), Command::Help(h) if h == HELP_SIM));
        assert!(matches!(run(&["-V"], &[]).unwrap(), Command::Version));
        assert!(matches!(
            run(&["demo"], &[]).unwrap(),
            Command::Demo(DemoConfig {
                seed: 42,
                http: None,
                ..
            })
        ));
        let Command::Sim(s) = run(&["sim", "--port", "8123", "--no-workcontract"], &[]).unwrap()
        else {
            panic!()
        };
        assert_eq!((s.port, s.workcontract_plugin), (8123, false));
    }

    #[test]
    fn health_asks_the_local_server_or_the_url() {
        let health = |args: &[&str], env: &[(&str, &str)]| {
            let mut all = vec!["health"];
            all.extend_from_slice(args);
            match run(&all, env) {
                Ok(Command::Health { target, timeout }) => Ok((target.url, timeout)),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.to_string()),
            }
        };
        let three = crate::healthcheck::DEFAULT_TIMEOUT;
        assert_eq!(
            health(&[], &[("KIMAI_TIMEOUT", "30")]).unwrap(),
            ("http://127.0.0.1:8000/health".into(), three)
        );
        let env = [("KIMAI_MCP_PORT", "9000"), ("KIMAI_MCP_HOST", "0.0.0.0")];
        assert_eq!(health(&[], &env).unwrap().0, "http://127.0.0.1:9000/health");
        assert_eq!(
            health(&["--port", "9001", "--timeout", "0.5"], &env).unwrap(),
            (
                "http://127.0.0.1:9001/health".into(),
                Duration::from_millis(500)
            )
        );
        assert_eq!(
            health(&[], &[("KIMAI_MCP_HOST", "::")]).unwrap().0,
            "http://[::1]:8000/health"
        );
        assert_eq!(
            health(&["--url", "http://10.1.2.3:81/health"], &env)
                .unwrap()
                .0,
            "http://10.1.2.3:81/health"
        );
        for (args, env, want) in [
            (
                &["--url", "https://127.0.0.1:8000/health"][..],
                &[][..],
                "is https",
            ),
            (
                &["--url", "http://h/", "--port", "1"][..],
                &[][..],
                "--port does not apply",
            ),
            (&["--port", "0"][..], &[][..], "not 0"),
            (
                &[][..],
                &[("KIMAI_MCP_PORT", "x")][..],
                "invalid --port / KIMAI_MCP_PORT",
            ),
            (&["--timeout", "0"][..], &[][..], "--timeout must be"),
            (&["--kimai-url", "https://k"][..], &[][..], "does not apply"),
            (
                &["--host", "0.0.0.0"][..],
                &[][..],
                "HTTP server options do not apply",
            ),
        ] {
            let e = health(args, env).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        let e = run(&["check", "--url", "http://h/"], &[]).unwrap_err();
        assert!(e.to_string().contains("--url does not apply"), "{e}");
        assert!(
            matches!(run(&["health", "--help"], &[]).unwrap(), Command::Help(h) if h == HELP_HEALTH)
        );
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let c = run(
            &[
                "--kimai-url",
                "https://k",
                "--kimai-token",
                "supersecret123",
            ],
            &[],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("supersecret123"));
    }

    #[test]
    fn public_urls() {
        assert_eq!(
            check_public_url("https://MCP.example.com/").unwrap(),
            "https://mcp.example.com"
        );
        assert_eq!(
            check_public_url("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert_eq!(
            check_public_url("http://[::1]:8000").unwrap(),
            "http://[::1]:8000"
        );
        assert!(check_public_url("http://localhost").is_ok());
        for bad in [
            "http://mcp.example.com",
            "https://mcp.example.com/kimai",
            "https://mcp.example.com?x",
            "https://user@mcp.example.com",
            "mcp.example.com",
            "https://",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }
}
