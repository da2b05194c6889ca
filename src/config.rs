//! The command line and the environment, turned into one immutable [`Command`] before anything
//! runs.
//!
//! Precedence is the same for every option: a flag beats the environment variable, which beats
//! the default. Parsing takes the environment as a function so that tests can supply their own.
//! Errors name the flag and the variable that would fix them; `main` prints them on one line
//! and exits with status 2. Nothing here touches the network.

pub mod users;

use crate::kimai::{self, Tls, Token};
use lexopt::prelude::*;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
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
    /// Serve HTTP (`kimai-mcp serve` against the simulator) instead of stdio.
    pub http: Option<ServeConfig>,
}

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

/// What `kimai-mcp generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// A server token: 256 bits, hex.
    Token,
    /// A users.json slug: 24 URL-safe characters (144 bits).
    Slug,
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
    /// Turns off `/mcp/{slug}`.
    pub disable_legacy_slugs: bool,
    /// OAuth lifetimes and limits (tests shorten them).
    pub oauth: crate::oauth::Settings,
    /// Per-address and per-credential bounds.
    pub bounds: Bounds,
    /// `--allowed-kimai-url`.
    pub allowed_kimai_urls: KimaiUrlPolicy,
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
    kimai-mcp serve [OPTIONS]     the HTTP server for many users (see kimai-mcp help serve)
    kimai-mcp demo [--http]       serve stdio (or HTTP) against a built-in simulated Kimai
    kimai-mcp sim [--port N]      run the simulated Kimai alone (for trying clients)
    kimai-mcp setup [--print]     configure Claude Desktop for your Kimai (asks, checks, writes)
    kimai-mcp generate token      print a random server token (MCP_SERVER_TOKEN)
    kimai-mcp generate slug       print a random users.json slug
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

pub const HELP_SERVE: &str = "\
kimai-mcp serve: the HTTP server that many people share, each with their own Kimai identity

USAGE:
    kimai-mcp serve [OPTIONS]          (also started as kimai-mcp-streamable or kimai-mcp-server)

ENDPOINTS:
    /mcp/SLUG   Streamable HTTP for a user of the users file (the slug is the credential)
    /mcp        Streamable HTTP with `Authorization: Bearer SERVER_TOKEN` and the caller's own
                `X-Kimai-Token` (optional `X-Kimai-URL`, default --default-kimai-url;
                optional `X-Kimai-User`, a label for the audit log); with --public-url also
                with an OAuth access token of a users-file user
    /sse, /messages   the legacy HTTP+SSE transport (same credentials as /mcp)
    /health     status and counts (no secrets)
    /metrics    Prometheus counters (server token required)

OAUTH SIGN-IN (on with --public-url): applications such as Claude connectors find the
authorization server through /.well-known/oauth-protected-resource/mcp and
/.well-known/oauth-authorization-server, register themselves (/register), and send the person to
a sign-in page that asks for their user slug and the `auth_secret` of their users-file entry.
Access tokens last --access-token-ttl, refresh tokens --refresh-token-ttl (renewed on every use).

OPTIONS:                                    [env]                         (default)
    --host ADDR               address to listen on   [KIMAI_MCP_HOST]     (127.0.0.1)
    --port N                  port                   [KIMAI_MCP_PORT]     (8000)
    --workers N               requests handled at once; more wait       (32)
                                                     [KIMAI_MCP_WORKERS]
    --users-config FILE       users.json: slug -> kimai_url, kimai_token, ssl_verify,
                              auth_secret (for OAuth sign-in)
                                                     [USERS_CONFIG_FILE]
    --server-token T[,T2]     token(s) for /mcp and /sse; several during a rotation;
                              generated and printed once when unset [MCP_SERVER_TOKEN]
    --server-token-file FILE  the tokens in a file (comma- or line-separated), re-read on
                              SIGHUP                 [MCP_SERVER_TOKEN_FILE]
    --default-kimai-url URL   Kimai for /mcp clients that send no X-Kimai-URL
                                                     [DEFAULT_KIMAI_URL]
    --ssl-verify VALUE        TLS for /mcp clients' Kimai: true, false or a CA file
                                                     [KIMAI_SSL_VERIFY]   (true)
    --rate-limit-rpm N        requests per minute per client address, 0 = off
                                                     [RATE_LIMIT_RPM]     (60)
    --max-sessions N          open sessions at most; more get 503      (10000)
                                                     [MAX_SESSIONS]
    --session-ttl SECS        idle time after which a session ends     (3600)
                                                     [SESSION_TTL]
    --require-https           refuse requests that did not come over HTTPS (through a trusted
                              proxy sending X-Forwarded-Proto: https) [REQUIRE_HTTPS]
    --trusted-proxy IP/CIDR   believe X-Forwarded-For/-Proto and X-Real-IP from this proxy;
                              repeatable or comma-separated [KIMAI_MCP_TRUSTED_PROXIES]
    --allowed-origin ORIGIN   a browser origin allowed to call (CORS); repeatable
                                                     [KIMAI_MCP_ALLOWED_ORIGINS]
    --public-host NAME        a Host name to accept when listening on loopback behind a proxy
                              that forwards the public name (proxy_set_header Host $host);
                              repeatable or comma-separated [KIMAI_MCP_PUBLIC_HOSTS]
    --instance-id NAME        prefix session ids with NAME. so that a proxy in front of several
                              instances sends a session's requests to its instance
                                                     [KIMAI_MCP_INSTANCE_ID]
    --timeout SECS, --connect-timeout SECS   Kimai request limits (30, 10)
    --public-url URL          the address people reach the server at, e.g.
                              https://mcp.example.com (https unless loopback; no path); turns
                              on OAuth sign-in and is its issuer [KIMAI_MCP_PUBLIC_URL]
    --oauth-state-file FILE   keep registered applications and sign-ins across restarts
                              (written atomically, mode 600; tokens only as SHA-256 digests)
                                                     [KIMAI_MCP_OAUTH_STATE_FILE]
    --access-token-ttl SECS   lifetime of OAuth access tokens       (3600)
                                                     [KIMAI_MCP_ACCESS_TOKEN_TTL]
    --refresh-token-ttl SECS  lifetime of OAuth refresh tokens      (2592000 = 30 days)
                                                     [KIMAI_MCP_REFRESH_TOKEN_TTL]
    --disable-legacy-slugs    turn off /mcp/SLUG (then slugs are only user names for the
                              sign-in form)          [KIMAI_MCP_DISABLE_LEGACY_SLUGS]
    --allowed-kimai-url URL   a Kimai that /mcp and /sse callers may name in X-Kimai-URL;
                              repeatable or comma-separated; '*' allows any (not advised).
                              --default-kimai-url and the users file's URLs are always allowed;
                              any other X-Kimai-URL gets 403 before a connection is made
                                                     [KIMAI_MCP_ALLOWED_KIMAI_URLS]

LIMITS (each client address -- an IPv4 address or an IPv6 /64 -- and each credential -- slug,
Kimai token, OAuth user -- gets its own share, so that no one client can use up what the
others need; behind a --trusted-proxy the forwarded client address counts):
    --max-connections N              connections open at once, in all      (4096)
                                                     [KIMAI_MCP_MAX_CONNECTIONS]
    --max-connections-per-address N  connections from one address          (64)
                                                     [KIMAI_MCP_MAX_CONNECTIONS_PER_ADDRESS]
    --max-connections-per-proxy N    connections from one trusted proxy     (1024)
                                                     [KIMAI_MCP_MAX_CONNECTIONS_PER_PROXY]
    --body-timeout SECS              a request body must arrive within this (30)
                                                     [KIMAI_MCP_BODY_TIMEOUT]
    --max-sessions-per-user N        open sessions of one credential; a new one ends that
                                     credential's least recently used session (20)
                                                     [KIMAI_MCP_MAX_SESSIONS_PER_USER]
    --session-rate-per-address N     new sessions per minute from one address, 0 = off (60)
                                                     [KIMAI_MCP_SESSION_RATE_PER_ADDRESS]
    --max-calls-per-user N           tool calls of one credential at once; more wait (4)
                                                     [KIMAI_MCP_MAX_CALLS_PER_USER]
    --max-batch N                    messages in one JSON-RPC batch          (20)
                                                     [KIMAI_MCP_MAX_BATCH]
    --user-rate-limit-rpm N          requests per minute of one credential from all its
                                     addresses together, 0 = off             (0)
                                                     [KIMAI_MCP_USER_RATE_LIMIT_RPM]
    --max-registrations-per-address N  OAuth client registrations per hour from one
                                     address, 0 = off                        (20)
                                                     [KIMAI_MCP_MAX_REGISTRATIONS_PER_ADDRESS]
    --max-pending-sign-ins-per-address N  OAuth sign-ins in progress from one address; a new
                                     one ends that address's oldest           (20)
                                                     [KIMAI_MCP_MAX_PENDING_SIGN_INS_PER_ADDRESS]

SIGNALS: SIGHUP re-reads the users file and the token file (sessions of users that remain keep
working; sessions and OAuth sign-ins of removed users end, and sign-ins of users whose
auth_secret changed); SIGTERM or SIGINT stop accepting, let requests in
progress finish (up to 10 s) and exit.

A flag beats its environment variable. Unknown slugs are answered slowly; more than 10 misses in
60 s block the address for 5 minutes. Logs (stderr, RUST_LOG) name no token, slug or body.
";

pub const HELP_DEMO: &str = "\
kimai-mcp demo: try kimai-mcp without a Kimai

USAGE:
    kimai-mcp demo [--seed N]

Starts a simulated Kimai (in memory, realistic data: customers, projects, activities, users,
teams and a few thousand timesheets over two years) on a loopback port and serves MCP over
stdin/stdout against it, as a team lead. Point an MCP client's command at `kimai-mcp demo`.

With --http [--port N], it runs `kimai-mcp serve` against the simulator instead and prints the
URL to paste into a client (a personal /mcp/SLUG URL, and the /mcp headers).
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
    let mut serve = ServeFlags::default();
    let mut print_only = false;
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
            Long("http") => serve.http = true,
            Long("print") => print_only = true,
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
            Long("disable-legacy-slugs") => serve.disable_legacy_slugs = true,
            Long("access-token-ttl") => {
                serve.access_token_ttl = Some(string(&mut p, "--access-token-ttl")?)
            }
            Long("refresh-token-ttl") => {
                serve.refresh_token_ttl = Some(string(&mut p, "--refresh-token-ttl")?)
            }
            Long("allowed-kimai-url") => serve
                .allowed_kimai_urls
                .push(string(&mut p, "--allowed-kimai-url")?),
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
    if cmd != "serve" && !(cmd == "demo" && serve.http) && !serve.is_empty() {
        return Err(Error::Usage(format!(
            "HTTP server options do not apply to `kimai-mcp {cmd}`"
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
            Ok(Command::Demo(DemoConfig {
                seed: seed.unwrap_or(42),
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
            Ok(Command::Serve(
                serve.resolve(port, tls, connect, timeout, env)?,
            ))
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
            "unknown command {other:?}; commands: stdio, check, serve, demo, sim, setup, generate, help"
        ))),
    }
}

#[derive(Default)]
struct ServeFlags {
    http: bool,
    host: Option<String>,
    workers: Option<String>,
    users_config: Option<String>,
    server_token: Option<String>,
    default_kimai_url: Option<String>,
    rate_limit_rpm: Option<String>,
    max_sessions: Option<String>,
    session_ttl: Option<String>,
    require_https: bool,
    trusted: Vec<String>,
    origins: Vec<String>,
    instance_id: Option<String>,
    server_token_file: Option<String>,
    public_hosts: Vec<String>,
    public_url: Option<String>,
    oauth_state_file: Option<String>,
    disable_legacy_slugs: bool,
    access_token_ttl: Option<String>,
    refresh_token_ttl: Option<String>,
    allowed_kimai_urls: Vec<String>,
    /// Numeric bounds as given: (flag, value).
    bounds: Vec<(&'static str, String)>,
}

fn truthy(v: &str) -> Option<bool> {
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
    fn is_empty(&self) -> bool {
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
            && !self.disable_legacy_slugs
            && self.access_token_ttl.is_none()
            && self.refresh_token_ttl.is_none()
            && self.allowed_kimai_urls.is_empty()
            && self.bounds.is_empty()
    }

    fn resolve(
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
        let require_https = self.require_https
            || match env("REQUIRE_HTTPS") {
                None => false,
                Some(v) => truthy(&v).ok_or_else(|| Error::Invalid {
                    flag: "--require-https",
                    var: "REQUIRE_HTTPS",
                    problem: format!("expected true or false, got {v:?}"),
                })?,
            };
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
        let oauth_state_file = self
            .oauth_state_file
            .or_else(|| env("KIMAI_MCP_OAUTH_STATE_FILE"))
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from);
        if oauth_state_file.is_some() && public_url.is_none() {
            return Err(Error::Usage(
                "--oauth-state-file needs --public-url (KIMAI_MCP_PUBLIC_URL): OAuth sign-in is on only with a public URL".into(),
            ));
        }
        let disable_legacy_slugs = self.disable_legacy_slugs
            || match env("KIMAI_MCP_DISABLE_LEGACY_SLUGS") {
                None => false,
                Some(v) => truthy(&v).ok_or_else(|| Error::Invalid {
                    flag: "--disable-legacy-slugs",
                    var: "KIMAI_MCP_DISABLE_LEGACY_SLUGS",
                    problem: format!("expected true or false, got {v:?}"),
                })?,
            };
        let mut oauth = crate::oauth::Settings::default();
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
            bounds,
            allowed_kimai_urls,
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
struct BoundFlag {
    flag: &'static str,
    var: &'static str,
    /// Smallest and largest accepted value.
    range: (u64, u64),
    set: fn(&mut Bounds, u64),
}

const BOUND_FLAGS: [BoundFlag; 11] = [
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
            Command::Demo(DemoConfig {
                seed: 42,
                http: None
            })
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
