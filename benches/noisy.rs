//! The noisy-neighbour table of `make bench`: how user B fares while user A attacks the server.
//!
//! Each row starts its own `kimai-mcp serve` (so that what one attack leaves behind, such as
//! sessions that live for the session TTL, does not weigh on the next row), starts A's attack
//! on threads of this process, lets it take hold for [`WARM_UP`] (the session flood for
//! [`SESSION_FLOOD_WARM_UP`]), and then measures B: a Streamable HTTP session on
//! `/mcp/{slug B}` opened while the attack runs, then [`B_CALLS`] sequential `user_current`
//! calls, each followed by a `GET /health` on a second connection. Then the attack stops, its
//! threads are joined and their sockets closed, and the server is killed before the next row
//! starts.
//!
//! Rows: B alone; (a) [`IDLE_SOCKETS`] idle sockets opened at once from 127.0.0.2; (b) a session
//! flood (A's slug from 127.0.1.1-8, and header-mode `/mcp` `initialize` with random
//! `X-Kimai-Token`s from 127.0.1.9-16); (c) [`SLOW_CALLS`] tool calls always in flight against a
//! Kimai that accepts and never answers (A's users.json entry points at it; `--timeout`
//! [`SLOW_KIMAI_TIMEOUT_SECS`] s); (d) `POST /register` from 200 addresses 127.0.2.1-200.
//!
//! The server runs with its defaults except `--rate-limit-rpm 0`, so that B's calls fit in a
//! few seconds and the session flood is met by the per-address and per-credential session
//! limits alone (the per-address rate limit is tested elsewhere). It also gets what the rows
//! need: the users file, a server token, the simulated Kimai as `--default-kimai-url`,
//! `--public-url` (the OAuth endpoints for row d) and `--timeout` (row c).
//!
//! Nothing here can hang: every connect, read and write has a timeout, every attack thread
//! checks its stop flag at least every [`POLL`], and B stops after [`B_BUDGET`] (the rest of
//! its calls are then not made, and the row says so). Each row ends within about 30 s.
//!
//! Source addresses: every client binds its socket to a distinct loopback address in
//! 127.0.0.0/8 before connecting (standing for distinct machines), so that per-address limits
//! see A and B as the different clients they are. B is 127.0.0.1.

use crate::{initialize, ms, percentile};
use kimai_mcp::sim::Sim;
use serde_json::json;
use socket2::{Domain, Socket, Type};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// User A (the attacker) and user B (the neighbour), as users.json slugs.
const SLUG_A: &str = "NoisyA7Hq2vX9mPz4Lw8Rt3NsQa";
const SLUG_B: &str = "NoisyBp4Rt8Wq2Lm6Xv9Bn3KsJd";
const SERVER_TOKEN: &str = "bench-server-token-0123456789";
/// B's own address.
const B_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// B's sequential `user_current` calls per row (each followed by one `/health`).
const B_CALLS: usize = 300;
/// One request of B that takes longer than this counts as failed (and its time as this).
const B_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// B stops calling after this long; the calls not made are reported, not counted as made.
const B_BUDGET: Duration = Duration::from_secs(20);
/// The target for every row: no failed call of B, and B's p99 below this.
const TARGET_P99_MS: f64 = 50.0;

/// Time the attack gets to take hold before B starts.
const WARM_UP: Duration = Duration::from_secs(1);
/// Longer for the session flood: long enough to fill a session table of the default 10,000
/// that nothing else protects, so that B's `initialize` shows whether new sessions are left.
const SESSION_FLOOD_WARM_UP: Duration = Duration::from_secs(3);
/// How often a blocked attack thread wakes to look at its stop flag.
const POLL: Duration = Duration::from_millis(200);
/// One connection attempt of an attacker.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One request of an attacker (they also stop when the row ends).
const ATTACK_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Opening A's session for row (c) (initialize and the initialized notification).
const SESSION_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Row (a): sockets opened from one address and kept open, sending nothing.
const IDLE_SOCKETS: usize = 1000;
/// Opening them may take at most this long (connects beyond a full backlog time out).
const IDLE_OPEN_BUDGET: Duration = Duration::from_secs(5);
/// Row (b): threads creating sessions with A's slug, and with random Kimai tokens.
const SLUG_FLOODERS: usize = 3;
const TOKEN_FLOODERS: usize = 1;
/// Row (c): A's tool calls in flight at once, and the Kimai timeout the server is given.
const SLOW_CALLS: usize = 32;
const SLOW_KIMAI_TIMEOUT_SECS: u64 = 3;
/// Row (d): source addresses 127.0.2.1 to 127.0.2.`REGISTER_ADDRESSES`, and threads.
const REGISTER_ADDRESSES: u8 = 200;
const REGISTER_FLOODERS: usize = 4;

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Alone,
    IdleSockets,
    SessionFlood,
    SlowKimai,
    RegistrationFlood,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::Alone => "B alone",
            Scenario::IdleSockets => "(a) 1,000 idle sockets",
            Scenario::SessionFlood => "(b) session flood",
            Scenario::SlowKimai => "(c) 32 calls, silent Kimai",
            Scenario::RegistrationFlood => "(d) registration flood",
        }
    }
}

/// One line of the table.
struct Row {
    scenario: Scenario,
    b: BFigures,
    attack: String,
}

impl Row {
    fn meets_target(&self) -> bool {
        self.b.made() == B_CALLS
            && self.b.failures == 0
            && self.b.health_failures == 0
            && ms(percentile(&self.b.calls, 0.99)) < TARGET_P99_MS
    }
}

/// Runs every row and prints the table.
pub fn run(sim: &Sim) {
    warn_about_open_files();
    let rows: Vec<Row> = [
        Scenario::Alone,
        Scenario::IdleSockets,
        Scenario::SessionFlood,
        Scenario::SlowKimai,
        Scenario::RegistrationFlood,
    ]
    .into_iter()
    .map(|s| row(sim, s))
    .collect();
    println!(
        "noisy neighbour ({} build): user B's user_current while user A attacks  [target: 0 failed calls and p99 < {TARGET_P99_MS:.0} ms in every row]",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "  serve with its defaults except --rate-limit-rpm 0 (the per-address rate limit is off); B: one Streamable HTTP session on /mcp/{{slug}} from 127.0.0.1, {B_CALLS} sequential calls, each followed by GET /health; percentiles over all of B's calls, failed ones included"
    );
    println!(
        "  {:<27} {:>8} {:>10} {:>8} {:>8} {:>14}  {:<7} what the attack got",
        "scenario", "B calls", "B failures", "p50 ms", "p99 ms", "/health p99 ms", "target"
    );
    for r in &rows {
        let b = &r.b;
        let calls = if b.made() == B_CALLS {
            B_CALLS.to_string()
        } else {
            format!("{}/{B_CALLS}", b.made())
        };
        let (p50, p99) = if b.calls.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.2}", ms(percentile(&b.calls, 0.5))),
                format!("{:.2}", ms(percentile(&b.calls, 0.99))),
            )
        };
        let health = match (b.health.is_empty(), b.health_failures) {
            (true, _) => "-".to_string(),
            (false, 0) => format!("{:.2}", ms(percentile(&b.health, 0.99))),
            (false, n) => format!("{:.2} ({n} failed)", ms(percentile(&b.health, 0.99))),
        };
        println!(
            "  {:<27} {calls:>8} {:>10} {p50:>8} {p99:>8} {health:>14}  {:<7} {}",
            r.scenario.label(),
            b.failures,
            if r.meets_target() { "ok" } else { "MISSED" },
            r.attack
        );
        if let Some(why) = &b.first_failure {
            println!("      B's first failure: {why}");
        }
        if ms(b.slowest_open) >= TARGET_P99_MS {
            println!(
                "      opening B's session took {:.0} ms",
                ms(b.slowest_open)
            );
        }
        if b.made() < B_CALLS {
            println!(
                "      B stopped after {:.0} s with {} of {B_CALLS} calls made",
                B_BUDGET.as_secs_f64(),
                b.made()
            );
        }
    }
}

/// The 1,000 idle sockets need more file descriptors than the usual soft limit of 1,024 (the
/// server, started from here, inherits the same limit). `make bench` raises it.
fn warn_about_open_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < IDLE_SOCKETS + 1024
    {
        eprintln!(
            "noisy neighbour: the soft limit of open files is {soft}, too few for {IDLE_SOCKETS} idle sockets; run through `make bench` (it raises it with ulimit -n) or raise it yourself"
        );
    }
}

fn row(sim: &Sim, scenario: Scenario) -> Row {
    let blackhole = (scenario == Scenario::SlowKimai).then(Blackhole::start);
    let kimai_a = blackhole.as_ref().map_or_else(|| sim.url(), Blackhole::url);
    let server = Server::start(sim, &kimai_a);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads = match scenario {
        Scenario::Alone => Vec::new(),
        Scenario::IdleSockets => vec![idle_sockets(port, stop.clone(), tally.clone())],
        Scenario::SessionFlood => session_flood(port, &stop, &tally),
        Scenario::SlowKimai => slow_calls(port, &stop, &tally),
        Scenario::RegistrationFlood => registration_flood(port, &stop, &tally),
    };
    match scenario {
        Scenario::Alone => {}
        Scenario::SessionFlood => std::thread::sleep(SESSION_FLOOD_WARM_UP),
        _ => std::thread::sleep(WARM_UP),
    }
    if scenario == Scenario::IdleSockets {
        // B starts once all the sockets are open (or the opening budget is spent).
        let started = Instant::now();
        while !tally.has("opened") && started.elapsed() < IDLE_OPEN_BUDGET + WARM_UP {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let b = run_b(port);
    if let Some(hole) = &blackhole {
        // Calls that reached the silent Kimai while B ran (the rest waited for a place).
        tally.add_n(
            "calls reached the silent Kimai",
            hole.accepted.load(Ordering::SeqCst),
        );
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        // Attack threads do not panic on server behaviour; a panic is a harness bug.
        if t.join().is_err() {
            tally.add("attack thread panicked");
        }
    }
    drop(server);
    drop(blackhole);
    Row {
        scenario,
        b,
        attack: tally.describe(scenario),
    }
}

/// A `kimai-mcp serve` process for one row; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Server {
    /// Users A (tony_teamlead, whose Kimai is `kimai_a`) and B (john_user, on the simulator).
    fn start(sim: &Sim, kimai_a: &str) -> Server {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!(
            "kimai-mcp-bench-noisy-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let users = dir.join("users.json");
        std::fs::write(
            &users,
            json!({
                SLUG_A: {"kimai_url": kimai_a, "kimai_token": sim.token("tony_teamlead").expect("sim user")},
                SLUG_B: {"kimai_url": sim.url(), "kimai_token": sim.token("john_user").expect("sim user")},
            })
            .to_string(),
        )
        .expect("users file");
        let child = Command::new(env!("CARGO_BIN_EXE_kimai-mcp"))
            .args([
                "serve",
                "--port",
                &port.to_string(),
                "--rate-limit-rpm",
                "0",
            ])
            .args(["--server-token", SERVER_TOKEN, "--default-kimai-url"])
            .arg(sim.url())
            .arg("--public-url")
            .arg(format!("http://127.0.0.1:{port}"))
            .args(["--timeout", &SLOW_KIMAI_TIMEOUT_SECS.to_string()])
            .arg("--users-config")
            .arg(&users)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        crate::wait_port(port, "serve");
        Server { child, port, dir }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Kimai that accepts connections and never answers; stops (and closes them) when dropped.
struct Blackhole {
    port: u16,
    /// Connections the server opened to it (one per call that reached Kimai).
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("blackhole listener");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), accepted.clone());
        let thread = std::thread::Builder::new()
            .name("silent-kimai".into())
            .spawn(move || {
                let mut held = Vec::new();
                while !flag.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            count.fetch_add(1, Ordering::SeqCst);
                            held.push(s);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .expect("spawn the silent Kimai");
        Blackhole {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the attack got: outcomes counted by name.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, usize>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        self.add_n(what, 1);
    }

    fn add_n(&self, what: impl Into<String>, n: usize) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(what.into())
            .or_default() += n;
    }

    fn has(&self, what: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(what)
    }

    fn describe(&self, scenario: Scenario) -> String {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if scenario == Scenario::Alone {
            return "-".into();
        }
        counts
            .iter()
            // "opened" is the idle-socket thread's signal that the opening phase is over.
            .filter(|(k, _)| k.as_str() != "opened")
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A socket connected to the server from `src` (bound before connecting).
fn connect_from(src: Ipv4Addr, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((src, 0)).into())?;
    socket.connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into(),
        timeout,
    )?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A parsed HTTP response.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// The server closes the connection after this response.
    closes: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A short description for the table (status, then the start of the body).
    fn summary(&self) -> String {
        let body: String = self.body.chars().take(120).collect();
        format!("HTTP {} {}", self.status, body.trim())
    }
}

/// A keep-alive HTTP/1.1 client from one source address: reconnects when the server closed the
/// connection or a request failed.
struct Client {
    src: Ipv4Addr,
    port: u16,
    stream: Option<TcpStream>,
    /// Bytes read past the end of the last response.
    pending: Vec<u8>,
}

impl Client {
    fn new(src: Ipv4Addr, port: u16) -> Client {
        Client {
            src,
            port,
            stream: None,
            pending: Vec::new(),
        }
    }

    /// One request; fails with `TimedOut` at `deadline`, and with `Interrupted` soon after
    /// `stop` is set.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        deadline: Instant,
        stop: Option<&AtomicBool>,
    ) -> io::Result<Resp> {
        if self.stream.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = left.min(CONNECT_TIMEOUT).max(Duration::from_millis(1));
            self.stream = Some(connect_from(self.src, self.port, timeout)?);
            self.pending.clear();
        }
        let result = match self.stream.as_mut() {
            Some(stream) => exchange(
                stream,
                &mut self.pending,
                (method, path, headers, body),
                self.port,
                deadline,
                stop,
            ),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "no connection")),
        };
        if !matches!(&result, Ok(r) if !r.closes) {
            self.stream = None;
        }
        result
    }
}

type Message<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

fn exchange(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    (method, path, headers, body): Message,
    port: u16,
    deadline: Instant,
    stop: Option<&AtomicBool>,
) -> io::Result<Resp> {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    stream.write_all(raw.as_bytes())?;
    read_response(stream, pending, deadline, stop)
}

/// Reads one response (`Content-Length` body, or up to the close when there is none), waking
/// every [`POLL`] to check the deadline and the stop flag.
fn read_response(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    deadline: Instant,
    stop: Option<&AtomicBool>,
) -> io::Result<Resp> {
    let mut buf = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let find = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let length = find("Content-Length").and_then(|v| v.parse::<usize>().ok());
            let close = find("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let start = end + 4;
            let complete = match length {
                Some(n) if pending.len() >= start + n => Some(start + n),
                None if eof => Some(pending.len()),
                _ => None,
            };
            if let Some(stop_at) = complete {
                let body = String::from_utf8_lossy(&pending[start..stop_at]).into_owned();
                pending.drain(..stop_at);
                return Ok(Resp {
                    status,
                    headers,
                    body,
                    closes: close || length.is_none(),
                });
            }
        }
        if eof {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a whole response",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
        }
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
        stream.set_read_timeout(Some(left.min(POLL).max(Duration::from_millis(1))))?;
        match stream.read(&mut buf) {
            Ok(0) => eof = true,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

const MCP_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
];

fn user_current(id: usize) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"user_current","arguments":{}}}).to_string()
}

/// Opens a Streamable HTTP session on `path` (initialize, then the initialized notification);
/// its id, or what went wrong.
fn open_session(
    client: &mut Client,
    path: &str,
    extra: &[(&str, &str)],
    deadline: Instant,
    stop: Option<&AtomicBool>,
) -> Result<String, String> {
    let headers: Vec<(&str, &str)> = MCP_HEADERS.iter().chain(extra).copied().collect();
    let r = client
        .request(
            "POST",
            path,
            &headers,
            &initialize().to_string(),
            deadline,
            stop,
        )
        .map_err(|e| format!("initialize: {e}"))?;
    let sid = match r.header("Mcp-Session-Id") {
        Some(sid) if r.status == 200 => sid.to_string(),
        _ => return Err(format!("initialize: {}", r.summary())),
    };
    let mut with_sid = headers.clone();
    with_sid.push(("Mcp-Session-Id", &sid));
    let r = client
        .request(
            "POST",
            path,
            &with_sid,
            &json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
            deadline,
            stop,
        )
        .map_err(|e| format!("notifications/initialized: {e}"))?;
    if r.status != 202 {
        return Err(format!("notifications/initialized: {}", r.summary()));
    }
    Ok(sid)
}

/// B's figures for one row.
#[derive(Default)]
struct BFigures {
    /// Every `user_current` call made (and every failed attempt to open the session), timed.
    calls: Vec<Duration>,
    failures: usize,
    health: Vec<Duration>,
    health_failures: usize,
    first_failure: Option<String>,
    /// The longest time a successful session opening took (not among the calls).
    slowest_open: Duration,
}

impl BFigures {
    fn made(&self) -> usize {
        self.calls.len()
    }

    fn fail(&mut self, why: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(why);
    }
}

/// User B: opens a session while the attack runs, then [`B_CALLS`] `user_current` calls, each
/// followed by `/health` on a second connection. A failed `initialize` counts as a failed call
/// and is tried again in place of the next call.
fn run_b(port: u16) -> BFigures {
    let path = format!("/mcp/{SLUG_B}");
    let mut mcp = Client::new(B_ADDR, port);
    let mut health = Client::new(B_ADDR, port);
    let mut b = BFigures::default();
    let mut session: Option<String> = None;
    let started = Instant::now();
    let mut id = 0;
    while b.made() < B_CALLS && started.elapsed() < B_BUDGET {
        id += 1;
        let t = Instant::now();
        let deadline = t + B_REQUEST_TIMEOUT;
        match &session {
            None => match open_session(&mut mcp, &path, &[], deadline, None) {
                Ok(sid) => {
                    session = Some(sid);
                    b.slowest_open = b.slowest_open.max(t.elapsed());
                }
                Err(why) => {
                    b.calls.push(t.elapsed());
                    b.fail(format!("opening the session: {why}"));
                }
            },
            Some(sid) => {
                let mut headers = MCP_HEADERS.to_vec();
                headers.push(("Mcp-Session-Id", sid));
                let r = mcp.request("POST", &path, &headers, &user_current(id), deadline, None);
                b.calls.push(t.elapsed());
                match r {
                    Ok(r) if r.status == 200 && r.body.contains("\"isError\":false") => {}
                    Ok(r) => {
                        if r.status == 404 {
                            session = None;
                        }
                        b.fail(format!("user_current: {}", r.summary()));
                    }
                    Err(e) => b.fail(format!("user_current: {e}")),
                }
            }
        }
        let t = Instant::now();
        let r = health.request("GET", "/health", &[], "", t + B_REQUEST_TIMEOUT, None);
        b.health.push(t.elapsed());
        match r {
            Ok(r) if r.status == 200 => {}
            Ok(r) => {
                b.health_failures += 1;
                b.first_failure
                    .get_or_insert(format!("/health: {}", r.summary()));
            }
            Err(e) => {
                b.health_failures += 1;
                b.first_failure.get_or_insert(format!("/health: {e}"));
            }
        }
    }
    b.calls.sort();
    b.health.sort();
    b
}

/// Counts an attacker's request by its outcome ("`noun` `done`" when `ok`, else by status or
/// error). After a connection error it pauses a little, so that an attacker whose connections
/// fail does not spin on the two shared cores.
fn count(
    tally: &Tally,
    noun: &str,
    done: &str,
    result: &io::Result<Resp>,
    ok: impl Fn(&Resp) -> bool,
) {
    match result {
        Ok(r) if ok(r) => tally.add(format!("{noun} {done}")),
        Ok(r) => tally.add(format!("{noun} refused {}", r.status)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => {
            tally.add(format!("{noun} failed ({})", e.kind()));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// (a) [`IDLE_SOCKETS`] sockets from 127.0.0.2, opened at once and kept open without sending
/// anything. When the row ends, each is looked at before it is closed: still open (held), or
/// answered (e.g. 503) or closed by the server.
fn idle_sockets(port: u16, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let src = Ipv4Addr::new(127, 0, 0, 2);
        let started = Instant::now();
        let mut open = Vec::with_capacity(IDLE_SOCKETS);
        for _ in 0..IDLE_SOCKETS {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if started.elapsed() > IDLE_OPEN_BUDGET {
                tally.add("not tried (opening took too long)");
                continue;
            }
            match connect_from(src, port, CONNECT_TIMEOUT) {
                Ok(s) => open.push(s),
                Err(e) => tally.add(format!("not connected ({})", e.kind())),
            }
        }
        tally.add("opened");
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL);
        }
        let mut buf = [0u8; 256];
        for s in &mut open {
            if s.set_nonblocking(true).is_err() {
                tally.add("unknown");
                continue;
            }
            match s.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => tally.add("held"),
                Ok(0) => tally.add("closed by the server"),
                Ok(n) => {
                    let status = String::from_utf8_lossy(&buf[..n])
                        .split(' ')
                        .nth(1)
                        .unwrap_or("?")
                        .to_string();
                    tally.add(format!("refused {status}"));
                }
                Err(e) => tally.add(format!("closed by the server ({})", e.kind())),
            }
        }
    })
}

/// (b) A opens sessions as fast as it can: with its own slug from 127.0.1.1-8, and in header
/// mode (`/mcp` with the server token and a new random `X-Kimai-Token` each time) from
/// 127.0.1.9-16. Each thread keeps one connection per address and takes the addresses in turn.
fn session_flood(port: u16, stop: &Arc<AtomicBool>, tally: &Arc<Tally>) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    for k in 0..SLUG_FLOODERS + TOKEN_FLOODERS {
        let (stop, tally) = (stop.clone(), tally.clone());
        let header_mode = k >= SLUG_FLOODERS;
        threads.push(std::thread::spawn(move || {
            let first = if header_mode { 9 } else { 1 };
            let mut clients: Vec<Client> = (first..first + 8)
                .map(|i| Client::new(Ipv4Addr::new(127, 0, 1, i), port))
                .collect();
            let body = initialize().to_string();
            let auth = format!("Bearer {SERVER_TOKEN}");
            let slug_path = format!("/mcp/{SLUG_A}");
            let mut turn = k;
            while !stop.load(Ordering::SeqCst) {
                turn += 1;
                let client = &mut clients[turn % 8];
                let deadline = Instant::now() + ATTACK_REQUEST_TIMEOUT;
                let created = |r: &Resp| r.status == 200 && r.header("Mcp-Session-Id").is_some();
                if header_mode {
                    let token = kimai_mcp::oauth::random_secret("t");
                    let mut headers = MCP_HEADERS.to_vec();
                    headers.push(("Authorization", &auth));
                    headers.push(("X-Kimai-Token", &token));
                    let r = client.request("POST", "/mcp", &headers, &body, deadline, Some(&stop));
                    count(&tally, "random-token sessions", "created", &r, created);
                } else {
                    let r = client.request(
                        "POST",
                        &slug_path,
                        &MCP_HEADERS,
                        &body,
                        deadline,
                        Some(&stop),
                    );
                    count(&tally, "slug sessions", "created", &r, created);
                }
            }
        }));
    }
    threads
}

/// (c) [`SLOW_CALLS`] threads from 127.0.3.1-4 call `user_current` on one session of A, whose
/// Kimai never answers, and call again as soon as an answer comes, so that that many calls are
/// always in flight. A lost session is opened again.
fn slow_calls(port: u16, stop: &Arc<AtomicBool>, tally: &Arc<Tally>) -> Vec<JoinHandle<()>> {
    let path = format!("/mcp/{SLUG_A}");
    let mut opener = Client::new(Ipv4Addr::new(127, 0, 3, 1), port);
    let deadline = Instant::now() + SESSION_OPEN_TIMEOUT;
    let session = Arc::new(Mutex::new(
        match open_session(&mut opener, &path, &[], deadline, Some(stop)) {
            Ok(sid) => Some(sid),
            Err(why) => {
                tally.add(format!("session not opened ({why})"));
                None
            }
        },
    ));
    let mut threads = Vec::new();
    for k in 0..SLOW_CALLS {
        let (stop, tally, session, path) =
            (stop.clone(), tally.clone(), session.clone(), path.clone());
        threads.push(std::thread::spawn(move || {
            let mut client = Client::new(Ipv4Addr::new(127, 0, 3, 1 + (k % 4) as u8), port);
            let mut id = 0;
            while !stop.load(Ordering::SeqCst) {
                id += 1;
                let current = session.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let Some(sid) = current else {
                    let deadline = Instant::now() + SESSION_OPEN_TIMEOUT;
                    match open_session(&mut client, &path, &[], deadline, Some(&stop)) {
                        Ok(sid) => *session.lock().unwrap_or_else(|e| e.into_inner()) = Some(sid),
                        Err(_) => {
                            tally.add("calls: session not opened");
                            std::thread::sleep(POLL);
                        }
                    }
                    continue;
                };
                let mut headers = MCP_HEADERS.to_vec();
                headers.push(("Mcp-Session-Id", &sid));
                let r = client.request(
                    "POST",
                    &path,
                    &headers,
                    &user_current(id),
                    Instant::now() + ATTACK_REQUEST_TIMEOUT,
                    Some(&stop),
                );
                match &r {
                    Ok(r) if r.status == 200 && r.body.contains("\"isError\":true") => {
                        tally.add("calls ended with a Kimai error")
                    }
                    Ok(r) if r.status == 200 && r.body.contains("\"error\"") => {
                        tally.add("calls refused (JSON-RPC error)")
                    }
                    Ok(r) if r.status == 404 => {
                        tally.add("calls: session lost");
                        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                        if s.as_deref() == Some(sid.as_str()) {
                            *s = None;
                        }
                    }
                    _ => count(&tally, "calls", "answered", &r, |r| r.status == 200),
                }
            }
        }));
    }
    threads
}

/// (d) `POST /register` of public OAuth clients as fast as possible from 127.0.2.1-200, one
/// connection per address, the addresses shared out among the threads.
fn registration_flood(
    port: u16,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    for k in 0..REGISTER_FLOODERS {
        let (stop, tally) = (stop.clone(), tally.clone());
        threads.push(std::thread::spawn(move || {
            let mut clients: Vec<Client> = (1..=REGISTER_ADDRESSES)
                .filter(|i| *i as usize % REGISTER_FLOODERS == k)
                .map(|i| Client::new(Ipv4Addr::new(127, 0, 2, i), port))
                .collect();
            let body = json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}).to_string();
            let mut turn = 0;
            while !stop.load(Ordering::SeqCst) {
                turn += 1;
                let n = clients.len();
                let client = &mut clients[turn % n];
                let r = client.request(
                    "POST",
                    "/register",
                    &[("Content-Type", "application/json")],
                    &body,
                    Instant::now() + ATTACK_REQUEST_TIMEOUT,
                    Some(&stop),
                );
                count(&tally, "clients", "registered", &r, |r| r.status == 201);
            }
        }));
    }
    threads
}
