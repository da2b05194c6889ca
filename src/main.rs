//! The `kimai-mcp` binary: parse the command line, start the chosen command, map failures to
//! exit codes (0 success, 1 runtime failure, 2 usage or configuration error).

use kimai_mcp::config::{self, Command, KimaiConfig};
use kimai_mcp::kimai;
use kimai_mcp::kimai::Account;
use kimai_mcp::{sim, stdio};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let program = argv
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let name = program
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let as_server = matches!(name.as_str(), "kimai-mcp-streamable" | "kimai-mcp-server");
    let args: Vec<_> = argv.collect();
    let env = |k: &str| std::env::var(k).ok();
    let log_format = match kimai_mcp::logging::LogFormat::from_args(&args, &env) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kimai-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    let command = config::parse_as(as_server, args, &env);
    // `check` prints its own diagnosis; the client's warnings would only repeat it.
    let default_level = if matches!(command, Ok(Command::Check(_))) {
        "error"
    } else {
        "info"
    };
    init_logging(default_level, log_format);
    let command = match command {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kimai-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("kimai-mcp {}", kimai_mcp::VERSION);
            ExitCode::SUCCESS
        }
        Command::Stdio(cfg) => run_stdio(&cfg),
        Command::Check(cfg) => run_check(&cfg),
        Command::Demo(cfg) => match cfg.http {
            Some(http) => run_demo_http(cfg.seed, http),
            None => run_demo(cfg.seed, cfg.policy),
        },
        Command::Serve(cfg) => run_serve(cfg),
        Command::Setup { print } => run_setup(print),
        Command::Generate(what) => match generate(what) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kimai-mcp generate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Sim(cfg) => run_sim(cfg),
        Command::Health { target, timeout } => run_health(&target, timeout),
    }
}

/// `kimai-mcp health`: one line on stdout when healthy, one on stderr (and status 1) when not.
fn run_health(target: &kimai_mcp::healthcheck::Target, timeout: std::time::Duration) -> ExitCode {
    match kimai_mcp::healthcheck::check(target, timeout) {
        Ok(r) => {
            println!(
                "kimai-mcp health: {} is healthy (status {:?}, version {})",
                target.url,
                r.status,
                r.version.as_deref().unwrap_or("unknown")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kimai-mcp health: {}: {e}", target.url);
            ExitCode::FAILURE
        }
    }
}

/// The most any dependency may log, whatever `RUST_LOG` says. ureq's protocol layer hex-dumps
/// every request at `trace`, the `Authorization` header included; at `debug` ureq shows header
/// values (its own allow-list) and, while `trace` is on anywhere, request paths and query
/// strings. Nothing an operator needs from rustls, ureq or any other crate is below `info`.
const DEPENDENCY_MAX_LEVEL: log::Level = log::Level::Info;

/// `env_logger` as `RUST_LOG` configures it, with every target outside this crate capped at
/// [`DEPENDENCY_MAX_LEVEL`].
struct CappedLogger {
    inner: env_logger::Logger,
}

fn is_ours(target: &str) -> bool {
    target == "kimai_mcp" || target.starts_with("kimai_mcp::")
}

impl log::Log for CappedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        (is_ours(metadata.target()) || metadata.level() <= DEPENDENCY_MAX_LEVEL)
            && self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Logs to stderr at `RUST_LOG` (else `default_level`), dependencies capped; panics go
/// through the logger too.
fn init_logging(default_level: &str, format: kimai_mcp::logging::LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level));
    builder.target(env_logger::Target::Stderr);
    if format == kimai_mcp::logging::LogFormat::Json {
        builder.format(kimai_mcp::logging::write_json);
    }
    let inner = builder.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(CappedLogger { inner })).is_ok() {
        log::set_max_level(max);
    }
    std::panic::set_hook(Box::new(log_panic));
}

/// A panic, reported once: thread, location and message (a backtrace with
/// `RUST_BACKTRACE=1`), through the logger when it logs errors, else straight to stderr. The
/// HTTP server answers the request that panicked with 500 and logs only its method and client
/// address, never its path or body.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_else(|| "an unknown location".into());
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
        _ => String::new(),
    };
    let line = format!("thread '{name}' panicked at {location}: {message}{backtrace}");
    if log::log_enabled!(target: "kimai_mcp::panic", log::Level::Error) {
        log::error!(target: "kimai_mcp::panic", "{line}");
    } else {
        eprintln!("{line}");
    }
}

fn client(cfg: &KimaiConfig) -> Result<Arc<kimai::Client>, ExitCode> {
    kimai::Client::new(cfg.settings())
        .map(Arc::new)
        .map_err(|e| {
            eprintln!("kimai-mcp: {e}");
            ExitCode::from(2)
        })
}

fn serve_stdio(
    backend: Account,
    label: &str,
    policy: kimai_mcp::tools::policy::Policy,
) -> ExitCode {
    if let Some(from) = &policy.read_only {
        log::info!("read-only ({from}): only tool actions that read are offered and served");
    }
    let stdin = std::io::stdin();
    match stdio::serve_with(stdin.lock(), std::io::stdout(), backend, label, policy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kimai-mcp: reading stdin failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens `--audit-log`, if given.
fn open_audit_log(path: Option<&std::path::Path>) -> Result<(), ExitCode> {
    if let Some(p) = path {
        kimai_mcp::audit::install(p).map_err(|e| {
            eprintln!("kimai-mcp: {e}");
            ExitCode::from(2)
        })?;
        log::info!("audit log: one JSON line per write call in {}", p.display());
    }
    Ok(())
}

fn run_stdio(cfg: &KimaiConfig) -> ExitCode {
    if let Err(code) = open_audit_log(cfg.audit_log.as_deref()) {
        return code;
    }
    let client = match client(cfg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Kimai is not contacted here: the server answers `initialize` at once and reports a Kimai
    // problem on the first tool call, where the model can see it.
    log::info!(
        "kimai-mcp {} serving stdio for Kimai at {}",
        kimai_mcp::VERSION,
        client.base_url()
    );
    serve_stdio(
        Account {
            usage: None,
            client,
            token: cfg.token.clone(),
        },
        "user=stdio",
        cfg.policy.clone(),
    )
}

fn run_check(cfg: &KimaiConfig) -> ExitCode {
    let client = match client(cfg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let version = match client.version(&cfg.token) {
        Ok(v) => v,
        Err(e) => {
            let url = client.base_url();
            match e {
                kimai::Error::Unauthorized { .. } => {
                    eprintln!("kimai-mcp check: Kimai at {url} refused the token: {e}")
                }
                kimai::Error::Api { .. } | kimai::Error::InvalidBody { .. } => {
                    eprintln!("kimai-mcp check: {url} answered, but not as a usable Kimai API: {e}")
                }
                _ => eprintln!("kimai-mcp check: cannot reach Kimai at {url}: {e}"),
            }
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            return ExitCode::FAILURE;
        }
    };
    println!("Kimai {version} at {}", client.base_url());
    match client.me(&cfg.token) {
        Ok(me) => {
            let id = me.id.map_or_else(|| "?".into(), |i| i.to_string());
            let roles = if me.roles.is_empty() {
                "ROLE_USER".to_string()
            } else {
                me.roles.join(", ")
            };
            println!(
                "Token belongs to {} (user id {id}, roles {roles}, timezone {})",
                kimai_mcp::text::safe(&me.username),
                kimai_mcp::text::safe(me.timezone.as_deref().unwrap_or("?"))
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kimai-mcp check: Kimai answered, but the token does not work: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            ExitCode::FAILURE
        }
    }
}

fn start_sim(opts: sim::Options) -> Result<sim::Sim, ExitCode> {
    sim::Sim::start(opts).map_err(|e| {
        eprintln!("kimai-mcp: could not start the simulated Kimai: {e}");
        ExitCode::FAILURE
    })
}

fn run_demo(seed: u64, policy: kimai_mcp::tools::policy::Policy) -> ExitCode {
    let sim = match start_sim(sim::Options {
        seed,
        ..sim::Options::default()
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if std::io::stdin().is_terminal() {
        eprintln!(
            "kimai-mcp demo: a simulated Kimai is running at {} and this process now speaks MCP on stdin/stdout.\n\
             It is meant to be started by an MCP client. In Claude Desktop's claude_desktop_config.json:\n\
             \n  {{\"mcpServers\": {{\"kimai-demo\": {{\"command\": \"{}\", \"args\": [\"demo\"]}}}}}}\n\n\
             Or paste a JSON-RPC message here, e.g.\n  {{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"terminal\",\"version\":\"0\"}}}}}}\n\
             Press Ctrl-D to quit.",
            sim.url(),
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "kimai-mcp".into())
        );
    }
    let settings = kimai::Settings::new(sim.url(), kimai::Tls::Verify);
    let client = match kimai::Client::new(settings) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("kimai-mcp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = serve_stdio(
        Account {
            usage: None,
            client,
            token: kimai::Token::new(sim.demo_token()),
        },
        "user=demo",
        policy,
    );
    sim.stop();
    code
}

fn run_sim(cfg: config::SimConfig) -> ExitCode {
    let sim = match start_sim(sim::Options {
        port: cfg.port,
        seed: cfg.seed,
        workcontract_plugin: cfg.workcontract_plugin,
        api_token_plugin: cfg.api_token_plugin,
        ..sim::Options::default()
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    println!("url {}", sim.url());
    for u in sim.users() {
        println!("user {} {} {} {}", u.id, u.username, u.role, u.token);
    }
    println!("demo-token {}", sim.demo_token());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "kimai-mcp sim: simulated Kimai 2.65 serving at {}/api; stop with Ctrl-C",
        sim.url()
    );
    loop {
        std::thread::park();
    }
}

fn run_setup(print_only: bool) -> ExitCode {
    let Some(path) = kimai_mcp::setup::claude_config_path() else {
        eprintln!(
            "kimai-mcp setup: cannot tell where Claude Desktop keeps its configuration (HOME / APPDATA is not set)"
        );
        return ExitCode::FAILURE;
    };
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "kimai-mcp".into());
    let check = |url: &str, token: &str, tls: &str| -> Result<String, String> {
        let tls = kimai::Tls::parse(tls)?;
        let client = kimai::Client::new(kimai::Settings::new(url.to_string(), tls))
            .map_err(|e| e.to_string())?;
        let token = kimai::Token::new(token.to_string());
        let probe = client.probe(&token).map_err(|e| {
            format!(
                "{e}{}",
                e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
            )
        })?;
        Ok(format!(
            "Kimai {}, user {}",
            probe.version,
            kimai_mcp::text::safe(&probe.me.username)
        ))
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    let mut io = kimai_mcp::setup::Io {
        input: &mut input,
        output: &mut output,
        check: &check,
    };
    match kimai_mcp::setup::run(&mut io, &exe, &path, print_only) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kimai-mcp setup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A random secret from the OS random source.
fn generate(what: config::Secret) -> Result<String, String> {
    match what {
        config::Secret::Token => random_token(),
        config::Secret::Slug => kimai_mcp::secret::random_slug(),
    }
}

/// A random server token: 32 bytes from the OS as hex.
fn random_token() -> Result<String, String> {
    kimai_mcp::secret::random_hex::<32>()
}

/// The users of `serve` (the users file, else `USERS_CONFIG`, else `KIMAI_USER_<NAME>_*`),
/// their warnings logged. The environment cannot change under a running process, so a reload
/// re-reads only the file.
fn load_users(cfg: &config::ServeConfig) -> Result<config::users::Users, config::users::Error> {
    let vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("KIMAI_USER_"))
        .collect();
    let users = config::users::load_sources(
        cfg.users_config.as_deref(),
        &|k| std::env::var(k).ok(),
        &vars,
    )?;
    for w in &users.warnings {
        log::warn!("{w}");
    }
    Ok(users)
}

fn run_serve(cfg: config::ServeConfig) -> ExitCode {
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    if let Err(code) = open_audit_log(cfg.audit_log.as_deref()) {
        return code;
    }
    let users = match load_users(&cfg) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("kimai-mcp serve: {e}");
            return ExitCode::from(2);
        }
    };
    let tokens = if cfg.server_tokens.is_empty() {
        match random_token() {
            Ok(t) => {
                // Printed once, on stdout, not in the log. The opening words are the Python
                // server's, so its guide's `docker-compose logs | grep "Generated new
                // authentication token"` finds the line, token included.
                println!(
                    "Generated new authentication token for MCP server: {t} (clients send it as Authorization: Bearer; set MCP_SERVER_TOKEN to keep one across restarts)"
                );
                vec![t]
            }
            Err(e) => {
                eprintln!("kimai-mcp serve: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        cfg.server_tokens.clone()
    };
    if cfg.tls == kimai::Tls::NoVerify {
        log::warn!(
            "TLS certificate verification is disabled for the Kimai servers of /mcp clients (--ssl-verify false)"
        );
    }
    let user_count = users.by_slug.len();
    if let (Some(url), Some(oidc)) = (&cfg.public_url, &cfg.sign_in.oidc) {
        let mapped = users
            .by_slug
            .values()
            .filter(|u| u.oidc_identity.is_some())
            .count();
        let provisioning = cfg.sign_in.provision.is_some();
        if mapped == 0 && !provisioning {
            log::warn!(
                "OAuth sign-in through the identity provider is on ({url}) but no user in the users file has an oidc_identity and auto-provisioning is off, so nobody can sign in: add \"oidc_identity\" to the users' entries, or turn on --auto-provision"
            );
        } else {
            log::info!(
                "OAuth sign-in on {url} through the identity provider {}: {mapped} of {user_count} users mapped by oidc_identity (claim {}){}",
                oidc.issuer,
                oidc.identity.claim,
                if provisioning {
                    "; others are provisioned at their first sign-in"
                } else {
                    ""
                }
            );
        }
    } else if let Some(url) = &cfg.public_url {
        let can_sign_in = users
            .by_slug
            .values()
            .filter(|u| u.auth_secret.is_some())
            .count();
        if can_sign_in == 0 {
            log::warn!(
                "OAuth sign-in is on ({url}) but no user in the users file has an auth_secret, so nobody can sign in: add \"auth_secret\" to the users' entries (make one with `kimai-mcp generate token`)"
            );
        } else {
            log::info!("OAuth sign-in on {url}: {can_sign_in} of {user_count} users can sign in");
        }
        if !cfg.disable_legacy_slugs && user_count > 0 {
            log::info!(
                "the personal URLs /mcp/SLUG stay on next to OAuth; once everyone signs in with OAuth, --disable-legacy-slugs turns them off"
            );
        }
    }
    let running = match kimai_mcp::http::start(
        cfg.clone(),
        users,
        tokens,
        kimai_mcp::guard::EnumerationSettings::default(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kimai-mcp serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "kimai-mcp {} listening on http://{}/mcp ({} users in users.json, default Kimai {})",
        kimai_mcp::VERSION,
        running.addr(),
        user_count,
        cfg.default_kimai_url.as_deref().unwrap_or("none")
    );
    if running.addr().ip().is_loopback() {
        log::info!(
            "listening on loopback ({}) only: this machine can connect, others cannot (a LAN URL or a container's published port gets \"connection refused\"). That is right behind a reverse proxy on the same machine; to accept connections from the network, start with --host 0.0.0.0 (KIMAI_MCP_HOST)",
            running.addr().ip()
        );
    }
    // The identity provider, once: what it is, or why it cannot be used yet (sign-ins retry).
    if let Some(oidc) = &running.app.oidc {
        match oidc.probe() {
            Ok(summary) => log::info!("oidc: {summary}"),
            Err(e) => log::error!(
                "oidc: the identity provider cannot be used right now ({e}); sign-ins fail until it can"
            ),
        }
    }
    if let Some(p) = &running.app.provisioner {
        p.probe();
    }
    // systemd (Type=notify): ready now; the watchdog pings while we serve.
    kimai_mcp::systemd::notify("READY=1\nSTATUS=serving");
    let _watchdog = kimai_mcp::systemd::start_watchdog();
    serve_until_signal(running, &cfg)
}

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits for signals: SIGHUP reloads users.json and the token file, SIGTERM/SIGINT stop.
fn serve_until_signal(
    mut running: kimai_mcp::http::Running,
    cfg: &config::ServeConfig,
) -> ExitCode {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kimai-mcp serve: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    for signal in signals.forever() {
        if signal == SIGHUP {
            kimai_mcp::systemd::notify(&kimai_mcp::systemd::reloading_message());
            reload(&running, cfg);
            kimai_mcp::systemd::notify("READY=1\nSTATUS=serving");
            continue;
        }
        kimai_mcp::systemd::notify("STOPPING=1");
        log::info!(
            "Shutting down: no new connections; requests in progress get up to {} s",
            SHUTDOWN_GRACE.as_secs()
        );
        running.stop_accepting();
        let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
        while running.server.active_connections() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let left = running.server.active_connections();
        if left > 0 {
            log::warn!(
                "{left} connection(s) still open after {} s; exiting anyway",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        running.stop();
        log::info!("Stopped");
        return ExitCode::SUCCESS;
    }
    ExitCode::SUCCESS
}

/// SIGHUP: re-read the users file (and the token file); keep the old ones on any error.
fn reload(running: &kimai_mcp::http::Running, cfg: &config::ServeConfig) {
    // A log rotation moved the audit log away: write to the path again.
    kimai_mcp::audit::reopen();
    let users = match load_users(cfg) {
        Ok(u) => u,
        Err(e) => {
            log::error!("Reload failed, keeping the current users: {e}");
            return;
        }
    };
    let tokens = match &cfg.server_token_file {
        Some(path) => match config::read_token_file(path) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("Reload failed, keeping the current users and tokens: {e}");
                return;
            }
        },
        None => None,
    };
    let summary = running.app.reload_users(users, tokens);
    log::info!("Reloaded: {summary}");
}

fn run_demo_http(seed: u64, mut cfg: config::ServeConfig) -> ExitCode {
    let sim = match start_sim(sim::Options {
        seed,
        ..sim::Options::default()
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let slug = match random_token() {
        Ok(t) => t[..32].to_string(),
        Err(e) => {
            eprintln!("kimai-mcp demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let users_json = serde_json::json!({ slug.clone(): {"kimai_url": sim.url(), "kimai_token": sim.demo_token()} });
    let users = match config::users::parse(&users_json.to_string(), "the demo users") {
        Ok(u) => u,
        Err(e) => {
            eprintln!("kimai-mcp demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    cfg.default_kimai_url.get_or_insert_with(|| sim.url());
    let tokens = if cfg.server_tokens.is_empty() {
        match random_token() {
            Ok(t) => vec![t],
            Err(e) => {
                eprintln!("kimai-mcp demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        cfg.server_tokens.clone()
    };
    let running = match kimai_mcp::http::start(
        cfg,
        users,
        tokens.clone(),
        kimai_mcp::guard::EnumerationSettings::default(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kimai-mcp demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = running.addr();
    println!("Simulated Kimai: {}", sim.url());
    println!("MCP URL (Streamable HTTP, no headers needed): http://{addr}/mcp/{slug}");
    println!(
        "Or http://{addr}/mcp with Authorization: Bearer {} and X-Kimai-Token: {}",
        tokens[0],
        sim.demo_token()
    );
    println!("Stop with Ctrl-C.");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::{Level, Log, Metadata};

    fn enabled(logger: &CappedLogger, target: &str, level: Level) -> bool {
        logger.enabled(&Metadata::builder().target(target).level(level).build())
    }

    #[test]
    fn dependencies_log_at_most_info_whatever_rust_log_says() {
        let logger = CappedLogger {
            inner: env_logger::Builder::new().parse_filters("trace").build(),
        };
        for target in [
            "ureq::run",
            "ureq_proto::util",
            "rustls::client::hs",
            "jiff",
        ] {
            assert!(!enabled(&logger, target, Level::Trace), "{target}");
            assert!(!enabled(&logger, target, Level::Debug), "{target}");
            assert!(enabled(&logger, target, Level::Info), "{target}");
            assert!(enabled(&logger, target, Level::Warn), "{target}");
        }
        for target in ["kimai_mcp", "kimai_mcp::http", "kimai_mcp::access"] {
            assert!(enabled(&logger, target, Level::Trace), "{target}");
        }
        // A name that merely starts like ours is a dependency.
        assert!(!enabled(&logger, "kimai_mcp_fake::x", Level::Debug));
        // RUST_LOG still lowers everything.
        let quiet = CappedLogger {
            inner: env_logger::Builder::new().parse_filters("warn").build(),
        };
        assert!(!enabled(&quiet, "ureq::run", Level::Info));
        assert!(!enabled(&quiet, "kimai_mcp", Level::Info));
        assert!(enabled(&quiet, "kimai_mcp", Level::Warn));
    }
}
