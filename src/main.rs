//! The `kimai-mcp` binary: parse the command line, start the chosen command, map failures to
//! exit codes (0 success, 1 runtime failure, 2 usage or configuration error).

use kimai_mcp::config::{self, Command, KimaiConfig};
use kimai_mcp::kimai::{self, Request};
use kimai_mcp::tools::Backend;
use kimai_mcp::{sim, stdio};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let command = config::parse(args, &|k| std::env::var(k).ok());
    // `check` prints its own diagnosis; the client's warnings would only repeat it.
    let default_level = if matches!(command, Ok(Command::Check(_))) {
        "error"
    } else {
        "info"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .target(env_logger::Target::Stderr)
        .init();
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
        Command::Demo(cfg) => run_demo(cfg.seed),
        Command::Sim(cfg) => run_sim(cfg),
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

fn serve_stdio(backend: Backend, label: &str) -> ExitCode {
    let stdin = std::io::stdin();
    match stdio::serve(stdin.lock(), std::io::stdout(), backend, label) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kimai-mcp: reading stdin failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_stdio(cfg: &KimaiConfig) -> ExitCode {
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
        Backend {
            client,
            token: cfg.token.clone(),
        },
        "stdio",
    )
}

fn run_check(cfg: &KimaiConfig) -> ExitCode {
    let client = match client(cfg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let version = match client.call(&cfg.token, &Request::get("/version")) {
        Ok(r) => r.body,
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
    let shown = version
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("(unknown version)");
    println!("Kimai {shown} at {}", client.base_url());
    match client.call(&cfg.token, &Request::get("/users/me")) {
        Ok(r) => {
            let me = r.body;
            let name = me.get("username").and_then(|v| v.as_str()).unwrap_or("?");
            let id = me
                .get("id")
                .and_then(|v| v.as_i64())
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".into());
            let roles: Vec<&str> = me
                .get("roles")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .collect();
            let roles = if roles.is_empty() {
                "ROLE_USER".to_string()
            } else {
                roles.join(", ")
            };
            let tz = me.get("timezone").and_then(|v| v.as_str()).unwrap_or("?");
            println!(
                "Token belongs to {} (user id {id}, roles {roles}, timezone {})",
                kimai_mcp::tools::text::safe(name),
                kimai_mcp::tools::text::safe(tz)
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

fn run_demo(seed: u64) -> ExitCode {
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
        Backend {
            client,
            token: kimai::Token::new(sim.demo_token()),
        },
        "demo",
    );
    sim.stop();
    code
}

fn run_sim(cfg: config::SimConfig) -> ExitCode {
    let sim = match start_sim(sim::Options {
        port: cfg.port,
        seed: cfg.seed,
        workcontract_plugin: cfg.workcontract_plugin,
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
