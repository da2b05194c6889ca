//! `make bench`: speed and memory of the release binary against the simulated Kimai.
//!
//! Figures printed (targets from the foundation issue in brackets):
//! - stdio cold start: spawn to the `initialize` response, median of 20 spawns [≤ 20 ms]
//! - `user_current` round trip over stdio, median and p99 of 1,000 calls [median ≤ 1 ms]
//! - peak RSS (VmHWM) of the server after those 1,000 calls [≤ 10 MB]
//! - `timesheet list` with statistics over about 5,000 records: wall time, Kimai requests and
//!   the bytes the simulated Kimai sent, first call (names read) and later ones (names
//!   remembered) [≤ 60 ms, ≤ 11 page requests plus the name lists, ≤ 1.5 MB: the Python
//!   server's figure]
//! - `analyze_project_team` of project 1 over the same period: wall time, requests, bytes
//! - peak RSS of that stdio process after both [≤ 16 MB]
//! - `timesheet list` of 10 rows over stdio, median of 200 calls [≤ 1 ms]
//! - `kimai-mcp serve`: `user_current` with 1, 8 and 32 concurrent Streamable HTTP sessions:
//!   calls/s, p99, server CPU per call, RSS with 32 sessions open
//!   [≥ 1,500 calls/s and p99 ≤ 50 ms at 32, ≤ 0.3 ms CPU per call, ≤ 20 MB]
//! - the same at 32 sessions with `serve --state` (Redis): one instance, and two instances with
//!   the sessions split between them, beside the in-process figure, with the redis-server's own
//!   CPU per call, and the OAuth sign-in and access-token figures with `--state` (one
//!   instance) (`BENCH_ONLY=state` runs these alone; they need Debian's redis-server)
//! - OAuth sign-in time, and `user_current` with an OAuth access token at 8 and 32 sessions
//! - noisy neighbour: one user's `user_current` p50/p99 and `/health` p99, alone and while
//!   another user holds 1,000 idle sockets, floods sessions, keeps 32 calls waiting on a Kimai
//!   that never answers, or floods OAuth registrations (see `noisy.rs`)
//!   [0 failed calls and p99 < 50 ms in every row]
//!
//! The simulated Kimai runs in this process on a loopback port; the server under test is the
//! release `kimai-mcp` binary, started exactly as an MCP client would start it.
//!
//! `BENCH_ONLY=noisy` runs the noisy-neighbour table alone. It also runs in a debug build,
//! which is enough to check the harness without a release build (the figures are then not
//! comparable, and the table says so): `BENCH_ONLY=noisy cargo test --bench bench`. The
//! 1,000 idle sockets need a soft limit of open files above 1,024; `make bench` raises it.
//! `BENCH_ONLY=oauth` runs the OAuth figures alone, `BENCH_ONLY=stats` the statistics, team
//! analysis and memory figures (section 3) alone, `BENCH_ONLY=state` the `--state` rows.

mod noisy;

use kimai_mcp::sim::{Options, Sim};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const SPAWNS: usize = 20;
const LIST_CALLS: usize = 200;
const STATS_RUNS: usize = 10;
const CALLS: usize = 1000;

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn start(sim: &Sim) -> Proc {
        Proc::start_as(sim, &sim.demo_token())
    }

    fn start_as(sim: &Sim, token: &str) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kimai-mcp"))
            .arg("stdio")
            .env("KIMAI_URL", sim.url())
            .env("KIMAI_API_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the release kimai-mcp");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Proc {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, v: &Value) {
        let mut line = serde_json::to_vec(v).expect("serialise");
        line.push(b'\n');
        self.stdin.write_all(&line).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read");
        serde_json::from_str(&line).expect("a JSON line")
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}})
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The earliest first-of-month `begin` for which at most 5,000 records match (all users), so
/// that the statistics figure is measured on about 5,000 records.
fn stats_begin(sim: &Sim, token: &str) -> String {
    use kimai_mcp::kimai::{Client, Request, Settings, Tls, Token};
    let client = Client::new(Settings::new(sim.url(), Tls::Verify)).expect("client");
    let token = Token::new(token.to_string());
    let (mut year, mut month) = (2024, 1);
    loop {
        let begin = format!("{year:04}-{month:02}-01");
        let r = client
            .call(
                &token,
                &Request::get("/timesheets")
                    .query("user", "all")
                    .query("size", 1)
                    .query("begin", format!("{begin}T00:00:00")),
            )
            .expect("count");
        if r.page.map(|p| p.total_count).unwrap_or(0) <= 5000 {
            return begin;
        }
        month += 1;
        if month > 12 {
            (year, month) = (year + 1, 1);
        }
    }
}

fn main() {
    let sim = Sim::start(Options::default()).expect("start the simulated Kimai");
    match std::env::var("BENCH_ONLY").as_deref() {
        Err(_) | Ok("") => {}
        Ok("noisy") => {
            noisy::run(&sim);
            sim.stop();
            return;
        }
        Ok("oauth") => {
            oauth_bench(&sim);
            sim.stop();
            return;
        }
        Ok("stats") => {
            stats_bench(&sim);
            sim.stop();
            return;
        }
        Ok("state") => {
            state_bench(&sim);
            sim.stop();
            return;
        }
        Ok(other) => {
            eprintln!(
                "BENCH_ONLY={other}: unknown part; the parts that run alone are `noisy`, `oauth`, `stats` and `state`"
            );
            std::process::exit(2);
        }
    }
    // `make bench-compare`: only the Streamable HTTP figures, ours and the Python server's.
    if let Ok(python) = std::env::var("PYTHON_KIMAI_MCP_STREAMABLE") {
        let ours = serve_bench(&sim);
        let theirs = python_serve_bench(&sim, &python);
        println!(
            "\nStreamable HTTP, user_current on /mcp/{{slug}}      kimai-mcp (Rust) | Python 2.20.1 | ratio"
        );
        for ((sessions, o), t) in [1, 8, 32].iter().zip(&ours).zip(&theirs) {
            println!(
                "  {sessions:>2} session(s): calls/s                      {:>10.0} | {:>13.0} | {:>6.1}x",
                o.0,
                t.0,
                o.0 / t.0
            );
            println!(
                "  {sessions:>2} session(s): p99 ms                       {:>10.2} | {:>13.2} | {:>6.1}x",
                o.1,
                t.1,
                t.1 / o.1
            );
            println!(
                "  {sessions:>2} session(s): server CPU ms per call         {:>10.3} | {:>13.3} | {:>6.1}x",
                o.2,
                t.2,
                t.2 / o.2
            );
            println!(
                "  {sessions:>2} session(s): server RSS MB                {:>10.1} | {:>13.1} | {:>6.1}x",
                o.3,
                t.3,
                t.3 / o.3
            );
        }
        sim.stop();
        return;
    }

    // 1. Cold start: process spawn to the initialize response.
    let mut starts = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let t = Instant::now();
        let mut p = Proc::start(&sim);
        p.send(&initialize());
        let r = p.recv();
        starts.push(t.elapsed());
        assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
        p.stop();
    }
    starts.sort();

    // 2. Round trips and memory: one server, 1,000 user_current calls.
    let mut p = Proc::start(&sim);
    p.send(&initialize());
    p.recv();
    p.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let mut trips = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let t = Instant::now();
        p.send(&json!({"jsonrpc":"2.0","id":i + 1,"method":"tools/call","params":{"name":"user_current","arguments":{}}}));
        let r = p.recv();
        trips.push(t.elapsed());
        assert_eq!(r["result"]["isError"], false, "call {i} failed: {r}");
    }
    let rss = p.peak_rss_kib();
    p.stop();
    trips.sort();

    println!(
        "kimai-mcp {} (release) against the simulated Kimai, {} cores",
        kimai_mcp::VERSION,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "stdio cold start to initialize response: median {:.2} ms, min {:.2} ms, max {:.2} ms ({SPAWNS} spawns)  [target <= 20 ms]",
        ms(percentile(&starts, 0.5)),
        ms(starts[0]),
        ms(starts[starts.len() - 1])
    );
    println!(
        "user_current round trip over stdio: median {:.3} ms, p99 {:.3} ms ({CALLS} calls)  [target median <= 1 ms]",
        ms(percentile(&trips, 0.5)),
        ms(percentile(&trips, 0.99))
    );
    println!(
        "peak RSS after {CALLS} tool calls: {:.1} MB ({rss} KiB VmHWM)  [target <= 10 MB]",
        rss as f64 / 1024.0
    );

    // 3. timesheet list: statistics over about 5,000 records, team analysis, a page of 10.
    stats_bench(&sim);
    let _ = serve_bench(&sim);
    state_bench(&sim);
    oauth_bench(&sim);
    noisy::run(&sim);
    sim.stop();
}

/// `timesheet list` statistics over about 5,000 records, `analyze_project_team` over the same
/// period, the peak RSS after both, and a plain page of 10 rows (`BENCH_ONLY=stats`).
fn stats_bench(sim: &Sim) {
    let admin = sim.admin_token();
    let mut p = Proc::start_as(sim, &admin);
    p.send(&initialize());
    p.recv();
    let begin = stats_begin(sim, &admin);
    let mut id = 10_000;
    let mut call_tool = |p: &mut Proc, tool: &str, args: Value| -> (Duration, String) {
        id += 1;
        let t = Instant::now();
        p.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}}));
        let r = p.recv();
        let took = t.elapsed();
        assert_eq!(r["result"]["isError"], false, "{tool} call failed: {r}");
        (
            took,
            r["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let stats_args = json!({"action":"list","filters":{"user_scope":"all","begin":begin,"calculate_stats":true}});
    let mut stats = Vec::new();
    let mut requests = Vec::new();
    let mut bytes = Vec::new();
    let mut found = String::new();
    for _ in 0..STATS_RUNS {
        sim.clear_requests();
        let (t, text) = call_tool(&mut p, "timesheet", stats_args.clone());
        requests.push(sim.requests().len());
        bytes.push(sim.bytes_sent());
        found = text.lines().next().unwrap_or_default().to_string();
        stats.push(t);
    }
    stats.sort();
    // Team analysis of the busiest project over the same period, in the same process.
    let today = kimai_mcp::tools::time::Date::from_days(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64 / 86_400)
            .unwrap_or(0),
    );
    let team_args = json!({"project_id": 1, "begin": begin, "end": today.to_string()});
    let mut team = Vec::new();
    let mut team_requests = Vec::new();
    let mut team_bytes = Vec::new();
    let mut team_head = String::new();
    for _ in 0..STATS_RUNS {
        sim.clear_requests();
        let (t, text) = call_tool(&mut p, "analyze_project_team", team_args.clone());
        team.push(t);
        team_head = text.lines().nth(2).unwrap_or_default().to_string();
        team_requests.push(sim.requests().len());
        team_bytes.push(sim.bytes_sent());
    }
    team.sort();
    let heavy_rss = p.peak_rss_kib();
    let mut lists = Vec::new();
    for _ in 0..LIST_CALLS {
        lists.push(
            call_tool(
                &mut p,
                "timesheet",
                json!({"action":"list","filters":{"size":10}}),
            )
            .0,
        );
    }
    lists.sort();
    p.stop();
    println!(
        "timesheet statistics ({found}): median {:.1} ms, min {:.1} ms over {STATS_RUNS} runs; Kimai requests {} first, {} later; Kimai bytes {} first (name lists read), {} later (remembered)  [target <= 60 ms, <= 1,500,000 bytes]",
        ms(percentile(&stats, 0.5)),
        ms(stats[0]),
        requests[0],
        requests[requests.len() - 1],
        bytes[0],
        bytes[bytes.len() - 1]
    );
    println!(
        "analyze_project_team, project 1 from {begin} to {today} ({team_head}): median {:.1} ms, min {:.1} ms over {STATS_RUNS} runs; Kimai requests {} first, {} later; Kimai bytes {} first, {} later",
        ms(percentile(&team, 0.5)),
        ms(team[0]),
        team_requests[0],
        team_requests[team_requests.len() - 1],
        team_bytes[0],
        team_bytes[team_bytes.len() - 1]
    );
    println!(
        "peak RSS of that stdio process after statistics and team analysis: {:.1} MB ({heavy_rss} KiB VmHWM)  [target <= 16 MB]",
        heavy_rss as f64 / 1024.0
    );
    println!(
        "timesheet list of 10 rows over stdio: median {:.3} ms, p99 {:.3} ms ({LIST_CALLS} calls)  [target median <= 1 ms]",
        ms(percentile(&lists, 0.5)),
        ms(percentile(&lists, 0.99))
    );
}

const AUTH_SECRET: &str = "bench-auth-secret-0123456789";

/// `serve --public-url`: the whole OAuth sign-in (register, authorize, sign-in form, code
/// exchange) timed, then `user_current` over Streamable HTTP with the access token.
fn oauth_bench(sim: &Sim) {
    oauth_bench_with(sim, &[], None, "");
}

/// [`oauth_bench`] with more `serve` options (`--state …`), the store's pid for its CPU per
/// call, and a label for the lines.
fn oauth_bench_with(sim: &Sim, extra: &[&str], redis: Option<u32>, label: &str) {
    let dir = std::env::temp_dir().join(format!("kimai-mcp-bench-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let users = dir.join("users.json");
    std::fs::write(
        &users,
        json!({SLUG: {"kimai_url": sim.url(), "kimai_token": sim.demo_token(), "auth_secret": AUTH_SECRET}}).to_string(),
    )
    .expect("users file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kimai-mcp"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--rate-limit-rpm",
            "0",
            "--max-sessions",
            "200",
            // One person signs in 200 times and then runs 32 sessions with one access token:
            // the per-address registration limit and the per-user limits are raised for that.
            "--max-registrations-per-address",
            "0",
            "--max-sessions-per-user",
            "64",
            "--max-calls-per-user",
            "64",
        ])
        .args([
            "--server-token",
            "bench-server-token-0123456789",
            "--public-url",
            &base,
        ])
        .args(extra)
        .arg("--users-config")
        .arg(&users)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    wait_port(port, "serve");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let redirect = "http://127.0.0.1:9/cb";
    let location = |r: &ureq::http::Response<ureq::Body>| {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut flows = Vec::new();
    let mut access = String::new();
    for _ in 0..SIGN_INS {
        let t = Instant::now();
        let mut r = agent
            .post(&format!("{base}/register"))
            .header("Content-Type", "application/json")
            .send(
                json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none"})
                    .to_string(),
            )
            .expect("register");
        let reg: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let client = reg["client_id"].as_str().expect("client_id").to_string();
        let verifier = kimai_mcp::oauth::random_secret("v");
        let q = [
            ("response_type", "code"),
            ("client_id", client.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", &kimai_mcp::oauth::s256(&verifier)),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", kimai_mcp::oauth::form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let r = agent
            .get(&format!("{base}/authorize?{q}"))
            .call()
            .expect("authorize");
        let login = location(&r);
        let mut page = agent
            .get(&format!("{base}{login}"))
            .call()
            .expect("sign-in page");
        let cookie = page
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .unwrap_or_default()
            .to_string();
        let html = page.body_mut().read_to_string().unwrap();
        let field = |name: &str| {
            html.split(&format!("name=\"{name}\" value=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let form = format!(
            "txn={}&csrf={}&username={SLUG}&secret={AUTH_SECRET}&action=sign-in",
            field("txn"),
            field("csrf")
        );
        let r = agent
            .post(&format!("{base}/oauth/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", &cookie)
            .send(form)
            .expect("sign in");
        let back = location(&r);
        let code = kimai_mcp::oauth::parse_form(back.split_once('?').map_or("", |(_, q)| q))
            .unwrap()
            .remove("code")
            .expect("code");
        let mut r = agent
            .post(&format!("{base}/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}&client_id={client}&code_verifier={verifier}",
                kimai_mcp::oauth::form_encode(redirect)
            ))
            .expect("token");
        let tok: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        access = tok["access_token"]
            .as_str()
            .expect("access token")
            .to_string();
        flows.push(t.elapsed());
    }
    flows.sort();
    println!(
        "OAuth sign-in{label} (register, authorize, sign-in form, code exchange; 5 HTTP requests): median {:.2} ms, p99 {:.2} ms over {SIGN_INS} sign-ins",
        ms(percentile(&flows, 0.5)),
        ms(percentile(&flows, 0.99))
    );
    http_load_on(
        &format!("serve (OAuth access token){label}"),
        &[child.id()],
        redis,
        &[format!("{base}/mcp")],
        Some(&format!("Bearer {access}")),
        if redis.is_some() { &[32] } else { &[8, 32] },
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sign-ins timed by [`oauth_bench`]. Each failed attempt would be delayed by the enumeration
/// guard, so the form is always filled in right.
const SIGN_INS: usize = 200;

const HTTP_SECONDS: f64 = 5.0;
const SLUG: &str = "BenchSlug7Hq2vX9mPz4Lw8Rt3Ns";

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn proc_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `kimai-mcp serve` (release) with one users.json entry; sessions on `/mcp/{slug}`.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

fn wait_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn users_file(sim: &Sim) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kimai-mcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let users = dir.join("users.json");
    let mut entries = serde_json::Map::new();
    for i in 0..32 {
        entries.insert(
            bench_slug(i),
            json!({"kimai_url": sim.url(), "kimai_token": sim.demo_token()}),
        );
    }
    std::fs::write(&users, Value::Object(entries).to_string()).expect("users file");
    users
}

/// The slug of load client `i`: the HTTP load models 32 people, each with their own slug
/// (one slug is one user, whose calls in flight `serve` caps at `--max-calls-per-user`).
fn bench_slug(i: usize) -> String {
    format!("{SLUG}{i:02}")
}

/// The `/mcp/{slug}` URLs of the 32 load clients.
fn slug_urls(port: u16) -> Vec<String> {
    (0..32)
        .map(|i| format!("http://127.0.0.1:{port}/mcp/{}", bench_slug(i)))
        .collect()
}

/// `kimai-mcp serve` (release) with one users.json entry; sessions on `/mcp/{slug}`.
fn serve_bench(sim: &Sim) -> Vec<(f64, f64, f64, f64)> {
    let users = users_file(sim);
    let (mut child, port) = spawn_serve(&users, &[]);
    let figures = http_load("serve", child.id(), &slug_urls(port));
    let _ = child.kill();
    let _ = child.wait();
    figures
}

/// `kimai-mcp serve` (release) for the HTTP load on a free port, with `extra` options; returns
/// once it accepts connections.
fn spawn_serve(users: &std::path::Path, extra: &[&str]) -> (Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kimai-mcp"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--rate-limit-rpm",
            "0",
            "--max-sessions",
            "200",
            "--server-token",
            "bench-server-token-0123456789",
        ])
        .args(extra)
        .arg("--users-config")
        .arg(users)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    wait_port(port, "serve");
    (child, port)
}

/// `BENCH_ONLY=state`: `user_current` at 32 Streamable HTTP sessions in process (no `--state`),
/// with `--state` on one instance, and on two instances with the sessions split between them,
/// against a `redis-server` of its own (Debian's, on a free loopback port, append-only file on
/// as the README asks). On a machine with few cores this is the cost of shared state per call,
/// not scaling.
fn state_bench(sim: &Sim) {
    let Some(redis_bin) = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        println!("--state figures skipped: redis-server not found (apt-get install redis-server)");
        return;
    };
    let users = users_file(sim);
    let dir = users.parent().expect("temp dir").join("redis");
    std::fs::create_dir_all(&dir).expect("redis dir");
    let redis_port = free_port();
    let mut redis = Command::new(redis_bin)
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    wait_port(redis_port, "redis-server");
    let version = Command::new(redis_bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let version = version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or("?");
    println!("--state: redis-server {version} on 127.0.0.1:{redis_port} (appendonly yes)");
    let state = format!("redis://127.0.0.1:{redis_port}/0");

    let (mut alone, port) = spawn_serve(&users, &[]);
    http_load_on(
        "serve, in process (no --state),",
        &[alone.id()],
        None,
        &slug_urls(port),
        None,
        &[32],
    );
    let _ = alone.kill();
    let _ = alone.wait();

    let (mut one, port) = spawn_serve(&users, &["--state", &state]);
    http_load_on(
        "serve --state, one instance,",
        &[one.id()],
        Some(redis.id()),
        &slug_urls(port),
        None,
        &[32],
    );
    let _ = one.kill();
    let _ = one.wait();

    // Two instances: client i goes to instance i % 2 (16 sessions each); CPU of both summed.
    let (mut a, port_a) = spawn_serve(&users, &["--state", &state]);
    let (mut b, port_b) = spawn_serve(&users, &["--state", &state]);
    let (urls_a, urls_b) = (slug_urls(port_a), slug_urls(port_b));
    let split: Vec<String> = (0..32)
        .map(|i| {
            if i % 2 == 0 {
                urls_a[i].clone()
            } else {
                urls_b[i].clone()
            }
        })
        .collect();
    http_load_on(
        "serve --state, two instances (16 sessions each, CPU of both),",
        &[a.id(), b.id()],
        Some(redis.id()),
        &split,
        None,
        &[32],
    );
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
    // OAuth with its tables in the store: every request's access token is looked up there.
    oauth_bench_with(
        sim,
        // The runs above took this address's new sessions of the minute, counted in the store.
        &["--state", &state, "--session-rate-per-address", "0"],
        Some(redis.id()),
        " with --state, one instance,",
    );
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Python kimai-mcp's Streamable HTTP server on the same simulated Kimai and workload.
fn python_serve_bench(sim: &Sim, program: &str) -> Vec<(f64, f64, f64, f64)> {
    let users = users_file(sim);
    let port = free_port();
    let mut child = Command::new(program)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--rate-limit-rpm",
            "0",
        ])
        .arg("--users-config")
        .arg(&users)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the Python kimai-mcp-streamable");
    wait_port(port, "kimai-mcp-streamable");
    let figures = http_load("python", child.id(), &slug_urls(port));
    let _ = child.kill();
    let _ = child.wait();
    figures
}

/// `user_current` over Streamable HTTP with 1, 8 and 32 sessions; per row (calls/s, p99 ms,
/// server CPU ms per call, server RSS MB).
fn http_load(label: &str, pid: u32, bases: &[String]) -> Vec<(f64, f64, f64, f64)> {
    http_load_as(label, pid, bases, None, &[1, 8, 32])
}

/// Like [`http_load`], with an `Authorization` header on every request. Client `i` uses
/// `bases[i % bases.len()]`.
fn http_load_as(
    label: &str,
    pid: u32,
    bases: &[String],
    auth: Option<&str>,
    counts: &[usize],
) -> Vec<(f64, f64, f64, f64)> {
    http_load_on(label, &[pid], None, bases, auth, counts)
}

/// Like [`http_load_as`] for several server processes (CPU summed over `pids`, RSS of the
/// largest), and the CPU per call of one more process (`redis`: the store) printed beside.
fn http_load_on(
    label: &str,
    pids: &[u32],
    redis: Option<u32>,
    bases: &[String],
    auth: Option<&str>,
    counts: &[usize],
) -> Vec<(f64, f64, f64, f64)> {
    let cpu_of = |pids: &[u32]| pids.iter().map(|&p| proc_cpu_ticks(p)).sum::<u64>();
    let mut rows = Vec::new();
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    for &sessions in counts {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(sessions + 1));
        let mut handles = Vec::new();
        for n in 0..sessions {
            let (base, stop, barrier) = (
                bases[n % bases.len()].clone(),
                stop.clone(),
                barrier.clone(),
            );
            let auth = auth.map(str::to_string);
            handles.push(std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let post = |sid: Option<&str>, body: &Value| -> (u16, Option<String>, String) {
                    let mut r = agent.post(&base).header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream");
                    if let Some(a) = &auth {
                        r = r.header("Authorization", a);
                    }
                    if let Some(s) = sid {
                        r = r.header("Mcp-Session-Id", s);
                    }
                    let mut resp = r.send(body.to_string()).expect("request");
                    let sid = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    (resp.status().as_u16(), sid, text)
                };
                let (st, sid, text) = post(None, &initialize());
                // Past the barrier before failing, so that the main thread is not left waiting.
                barrier.wait();
                assert_eq!(st, 200, "initialize: {text}");
                let sid = sid.expect("session id");
                post(Some(&sid), &json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
                let mut lat = Vec::new();
                let mut i = 1;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let t = Instant::now();
                    let (st, _, text) = post(Some(&sid), &json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"user_current","arguments":{}}}));
                    lat.push(t.elapsed());
                    assert!(st == 200 && text.contains("\"isError\":false"), "call failed: {st} {text}");
                }
                lat
            }));
        }
        barrier.wait();
        let cpu0 = cpu_of(pids);
        let redis0 = redis.map(proc_cpu_ticks).unwrap_or(0);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(HTTP_SECONDS));
        let rss = pids.iter().map(|&p| proc_rss_kib(p)).max().unwrap_or(0);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all: Vec<Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect();
        let wall = t0.elapsed().as_secs_f64();
        let cpu = (cpu_of(pids) - cpu0) as f64 / ticks_per_sec;
        all.sort();
        let calls = all.len() as f64;
        let redis_cpu = redis
            .map(|p| {
                format!(
                    ", redis-server CPU {:.3} ms/call",
                    (proc_cpu_ticks(p) - redis0) as f64 / ticks_per_sec * 1000.0 / calls
                )
            })
            .unwrap_or_default();
        println!(
            "{label} user_current, {sessions:>2} session(s): {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, server CPU {:.3} ms/call{redis_cpu}, server RSS {:.1} MB  [at 32: >= 1500 calls/s, p99 <= 50 ms, <= 0.3 ms CPU, <= 20 MB]",
            calls / wall,
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            cpu * 1000.0 / calls,
            rss as f64 / 1024.0
        );
        rows.push((
            calls / wall,
            ms(percentile(&all, 0.99)),
            cpu * 1000.0 / calls,
            rss as f64 / 1024.0,
        ));
    }
    rows
}
