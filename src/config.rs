//! The command line and the environment, turned into one immutable [`Command`] before anything
//! runs.
//!
//! Precedence is the same for every option: a flag beats the environment variable, which beats
//! the default. Parsing takes the environment as a function so that tests can supply their own.
//! Errors name the flag and the variable that would fix them; `main` prints them on one line
//! and exits with status 2. Nothing here touches the network.

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
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub port: u16,
    pub seed: u64,
    pub workcontract_plugin: bool,
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

pub const HELP: &str = "\
kimai-mcp: an MCP server for the Kimai time-tracking system

USAGE:
    kimai-mcp [stdio] [OPTIONS]   serve MCP over stdin/stdout (the default)
    kimai-mcp check [OPTIONS]     test the Kimai URL and token, then exit
    kimai-mcp demo                serve stdio against a built-in simulated Kimai
    kimai-mcp sim [--port N]      run the simulated Kimai alone (for trying clients)
    kimai-mcp help [COMMAND]      help for a command

OPTIONS (stdio and check):
    --kimai-url URL         Kimai base URL, e.g. https://kimai.example.com   [env: KIMAI_URL]
    --kimai-token TOKEN     Kimai API token (Kimai: your profile > API access) [env: KIMAI_API_TOKEN]
    --ssl-verify VALUE      true (default), false, or the path of a PEM CA file for a private CA
                                                                               [env: KIMAI_SSL_VERIFY]
    --timeout SECS          overall time limit per Kimai request (default 30)  [env: KIMAI_TIMEOUT]
    --connect-timeout SECS  time limit to connect to Kimai (default 10)        [env: KIMAI_CONNECT_TIMEOUT]
    -h, --help              print help
    -V, --version           print the version

A flag beats its environment variable. Logs go to stderr; set RUST_LOG=debug for more
(e.g. RUST_LOG=kimai_mcp=debug). Tokens are never logged.

EXAMPLES:
    kimai-mcp demo                                   try it without a Kimai
    KIMAI_URL=https://kimai.example.com KIMAI_API_TOKEN=... kimai-mcp check
";

pub const HELP_STDIO: &str = "\
kimai-mcp stdio: serve MCP over stdin/stdout for one Kimai account

USAGE:
    kimai-mcp [stdio] --kimai-url URL --kimai-token TOKEN [--ssl-verify VALUE]

One JSON-RPC message per line on stdin; responses on stdout; logs on stderr. Exits when stdin
closes. Kimai is not contacted until the first tool call, so the server starts at once.

OPTIONS:
    --kimai-url URL         Kimai base URL (without /api)                      [env: KIMAI_URL]
    --kimai-token TOKEN     Kimai API token                                    [env: KIMAI_API_TOKEN]
    --ssl-verify VALUE      true, false, or a PEM CA file path (default true)  [env: KIMAI_SSL_VERIFY]
    --timeout SECS          overall time limit per Kimai request (default 30)  [env: KIMAI_TIMEOUT]
    --connect-timeout SECS  time limit to connect (default 10)                 [env: KIMAI_CONNECT_TIMEOUT]
    --kimai-user ID         accepted for compatibility and ignored            [env: KIMAI_DEFAULT_USER]

Claude Desktop (claude_desktop_config.json):
    {\"mcpServers\": {\"kimai\": {\"command\": \"kimai-mcp\",
      \"env\": {\"KIMAI_URL\": \"https://kimai.example.com\", \"KIMAI_API_TOKEN\": \"...\"}}}}
";

pub const HELP_CHECK: &str = "\
kimai-mcp check: test the connection to Kimai and exit

USAGE:
    kimai-mcp check --kimai-url URL --kimai-token TOKEN [--ssl-verify VALUE]

Calls GET /api/version and GET /api/users/me with the same settings the server would use and
prints the Kimai version and the token's user, or exactly why it cannot: the name does not
resolve, the connection is refused or times out, the TLS certificate is not trusted, the URL
is not a Kimai, or the token is wrong or lacks permissions. Exit status 0 when it works, 1
when it does not, 2 for a usage error. Options and variables as for `kimai-mcp stdio`.
";

pub const HELP_DEMO: &str = "\
kimai-mcp demo: try kimai-mcp without a Kimai

USAGE:
    kimai-mcp demo [--seed N]

Starts a simulated Kimai (in memory, realistic data: customers, projects, activities, users,
teams and a few thousand timesheets over two years) on a loopback port and serves MCP over
stdin/stdout against it, as a team lead. Point an MCP client's command at `kimai-mcp demo`.
";

pub const HELP_SIM: &str = "\
kimai-mcp sim: run the simulated Kimai alone

USAGE:
    kimai-mcp sim [--port N] [--seed N] [--no-workcontract]

Serves a simulated Kimai 2.65 REST API on 127.0.0.1 (port 0 = any free port) and prints its
URL and the API token of every user, one per line, on stdout. Runs until interrupted. Any Kimai
client can be pointed at it, e.g. `kimai-mcp check --kimai-url URL --kimai-token TOKEN`.
";

type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses the process arguments (without the program name) with `env` as the environment.
pub fn parse(args: Vec<OsString>, env: EnvFn) -> Result<Command, Error> {
    let mut p = lexopt::Parser::from_args(args);
    let mut command: Option<String> = None;
    // The first positional value, if any, names the command; options may come before it.
    let mut kimai = KimaiFlags::default();
    let mut seed: Option<u64> = None;
    let mut port: Option<u16> = None;
    let mut no_workcontract = false;
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
            Value(v) => {
                let v = v
                    .string()
                    .map_err(|_| Error::Usage("arguments must be valid UTF-8".into()))?;
                if command.is_none() {
                    command = Some(v);
                } else if command.as_deref() == Some("help") && help_topic.is_none() {
                    help_topic = Some(v);
                } else {
                    return Err(Error::Usage(format!("unexpected argument {v:?}")));
                }
            }
            other => return Err(usage(other.unexpected())),
        }
    }

    let cmd = command.as_deref().unwrap_or("stdio");
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
            let cfg = kimai.resolve(env)?;
            Ok(if cmd == "stdio" {
                Command::Stdio(cfg)
            } else {
                Command::Check(cfg)
            })
        }
        "demo" => {
            only_for(kimai.is_empty(), "Kimai connection options")?;
            only_for(port.is_none(), "--port")?;
            only_for(!no_workcontract, "--no-workcontract")?;
            Ok(Command::Demo(DemoConfig {
                seed: seed.unwrap_or(42),
            }))
        }
        "sim" => {
            only_for(kimai.is_empty(), "Kimai connection options")?;
            Ok(Command::Sim(SimConfig {
                port: port.unwrap_or(0),
                seed: seed.unwrap_or(42),
                workcontract_plugin: !no_workcontract,
            }))
        }
        other => Err(Error::Usage(format!(
            "unknown command {other:?}; commands: stdio, check, demo, sim, help"
        ))),
    }
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
fn check_url(url: &str) -> Result<String, String> {
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
    let mut base = url.trim_end_matches('/').to_string();
    if let Some(stripped) = base.strip_suffix("/api") {
        // Users often paste the API URL; the client adds /api itself.
        base = stripped.to_string();
    }
    Ok(base)
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
            Command::Demo(DemoConfig { seed: 42 })
        ));
        let Command::Sim(s) = run(&["sim", "--port", "8123", "--no-workcontract"], &[]).unwrap()
        else {
            panic!()
        };
        assert_eq!((s.port, s.workcontract_plugin), (8123, false));
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
}
