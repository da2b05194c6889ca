//! A simulated Kimai 2.65 for the demo, the tests and the benchmarks.
//!
//! Owns the server lifecycle (bind, worker threads, shutdown in `Drop`), fault injection, the
//! request log, and the `/__sim/*` control endpoints. The API itself lives in `api` (reads) and
//! `writes` (timesheet writes), the data and seed in `data`, JSON shapes in `json`, calendar
//! rules in `time`. It deliberately shares no code with `crate::kimai`: a misreading of Kimai in
//! one must not hide in the other. Its spec is `/work/shared/kimai-api/contract.md`; it aims to be
//! faithful, not lenient.
//!
//! Threads: `sim-accept` owns the public loopback listener and relays each connection through
//! two `sim-pipe` threads to the internal tiny_http server (the relay is what lets
//! `FaultKind::DropConnection` really close a keep-alive socket, which tiny_http alone cannot);
//! `sim-worker-N` threads share one `Arc<tiny_http::Server>`. Shared state: `State` (the data)
//! and `Control` (fault, request log, write counter), each behind its own `Mutex`, locked briefly
//! and never across socket I/O. Poisoned locks are recovered: a panicking handler costs one
//! request, not the simulator.

mod admin;
mod api;
mod data;
mod json;
mod plugin;
mod time;
mod writes;

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use api::{Reply, Req};

/// Largest request body the simulator reads; larger bodies get 413 (Kimai's web server would
/// refuse far larger ones, but nothing legitimate comes close).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Number of worker threads answering requests.
const WORKERS: usize = 4;

/// How to start the simulator.
#[derive(Clone, Debug)]
pub struct Options {
    /// 0 = pick a free loopback port.
    pub port: u16,
    /// Seed for the deterministic data and tokens.
    pub seed: u64,
    /// Whether the WorkContract plugin is installed: `/api/plugins` lists it and its routes
    /// (absences, public holidays, month locks; `plugin`) exist, else they answer 404.
    pub workcontract_plugin: bool,
    /// Unix seconds to treat as "now" (seeding and server clock); `None` = the real clock.
    pub now: Option<i64>,
    /// Custom fields defined for timesheets (as a plugin would add them); none by default,
    /// as on a bare Kimai.
    pub timesheet_meta_fields: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 0,
            seed: 42,
            workcontract_plugin: true,
            now: None,
            timesheet_meta_fields: Vec::new(),
        }
    }
}

/// A seeded user and its Bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub id: u64,
    pub username: String,
    /// "ROLE_USER" | "ROLE_TEAMLEAD" | "ROLE_ADMIN" | "ROLE_SUPER_ADMIN"
    pub role: &'static str,
    pub token: String,
}

/// One request as the simulator saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Status sent; 0 when the connection was dropped without an answer.
    pub status: u16,
}

/// An injected failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// `None` = every matching request until cleared; `Some(n)` = the next n matching requests.
    pub times: Option<u32>,
    /// Only requests whose path starts with this (e.g. `/api/version`); `None` = all.
    pub path_prefix: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Sleep, then answer normally.
    Delay(Duration),
    /// Kimai-style JSON error body for that status, optional `Retry-After` header.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 application/json cut off mid-JSON (Content-Length of the short body).
    Truncated,
    /// Close the socket without answering.
    DropConnection,
    /// 200 text/html page, as if the URL pointed at a website.
    Html,
}

/// Fault, request log and write counter: everything tests steer or observe.
#[derive(Default)]
struct Control {
    fault: Option<Fault>,
    requests: Vec<Recorded>,
    write_count: usize,
}

/// Open relayed connections, keyed by the relay's local address towards tiny_http (which is
/// what tiny_http reports as the request's remote address).
type Conns = Arc<Mutex<HashMap<SocketAddr, (TcpStream, TcpStream)>>>;

struct Shared {
    state: Mutex<data::State>,
    control: Mutex<Control>,
    conns: Conns,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle of a running simulator; dropping it stops the server and joins its threads.
pub struct Sim {
    port: u16,
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Sim {
    /// Seed the data and start serving on `127.0.0.1:opts.port`.
    pub fn start(opts: Options) -> io::Result<Sim> {
        let now = opts.now.unwrap_or_else(data::now_real);
        let mut state = data::seed(opts.seed, now, opts.workcontract_plugin);
        state.timesheet_meta_fields = opts.timesheet_meta_fields.clone();
        state.fixed_now = opts.now;
        let listener = TcpListener::bind(("127.0.0.1", opts.port))?;
        let port = listener.local_addr()?.port();
        // TCP_NODELAY on the inner listener: see `crate::net` (without it every response over
        // 1 KiB would wait 40 ms for a delayed ACK).
        let inner = crate::net::listener(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let server =
            Arc::new(tiny_http::Server::from_listener(inner, None).map_err(io::Error::other)?);
        let internal = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("tiny_http did not bind an IP address"))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            control: Mutex::new(Control::default()),
            conns: Arc::new(Mutex::new(HashMap::new())),
            stop: AtomicBool::new(false),
        });
        let mut workers = Vec::new();
        for n in 0..WORKERS {
            let (server, shared) = (server.clone(), shared.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("sim-worker-{n}"))
                    .spawn(move || worker(&server, &shared))?,
            );
        }
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (shared, pipes) = (shared.clone(), pipes.clone());
            std::thread::Builder::new()
                .name("sim-accept".into())
                .spawn(move || accept_loop(listener, internal, &shared, &pipes))?
        };
        Ok(Sim {
            port,
            shared,
            server,
            workers,
            acceptor: Some(acceptor),
            pipes,
        })
    }

    /// `http://127.0.0.1:PORT` (without `/api`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every seeded user with its Bearer token (also the disabled one).
    pub fn users(&self) -> Vec<SimUser> {
        lock(&self.shared.state)
            .users
            .iter()
            .map(|u| SimUser {
                id: u.id,
                username: u.username.clone(),
                role: u.role,
                token: u.token.clone(),
            })
            .collect()
    }

    pub fn token(&self, username: &str) -> Option<String> {
        lock(&self.shared.state)
            .users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.token.clone())
    }

    /// Token of the demo user (`tony_teamlead`, ROLE_TEAMLEAD, leads team "Development").
    pub fn demo_token(&self) -> String {
        self.token(data::DEMO_USER).unwrap_or_default()
    }

    /// Token of the ROLE_SUPER_ADMIN user (`susan_super`).
    pub fn admin_token(&self) -> String {
        self.token(data::ADMIN_USER).unwrap_or_default()
    }

    /// Replace any current fault.
    pub fn set_fault(&self, fault: Fault) {
        lock(&self.shared.control).fault = Some(fault);
    }

    pub fn clear_fault(&self) {
        lock(&self.shared.control).fault = None;
    }

    /// WorkContract plugin: reads of this user's absences answer 403 to everyone but the user
    /// (an instance whose permission setup hides one contract from the others).
    pub fn deny_absence_reads(&self, user: u64) {
        lock(&self.shared.state).plugin.denied_reads.push(user);
    }

    /// From now on the token gets 401 with an empty body (contract §1.3).
    pub fn revoke_token(&self, token: &str) {
        lock(&self.shared.state).revoked.push(token.to_string());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.control).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.control).requests.clear();
    }

    /// POST/PATCH/DELETE requests under `/api` that passed routing and authentication and
    /// reached a handler (whatever the handler answered).
    pub fn write_count(&self) -> usize {
        lock(&self.shared.control).write_count
    }

    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for (_, (client, upstream)) in lock(&self.shared.conns).drain() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let pipes: Vec<JoinHandle<()>> = lock(&self.pipes).drain(..).collect();
        for p in pipes {
            let _ = p.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Relay

fn accept_loop(
    listener: TcpListener,
    internal: SocketAddr,
    shared: &Arc<Shared>,
    pipes: &Mutex<Vec<JoinHandle<()>>>,
) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = conn else {
            // e.g. out of file descriptors: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if let Err(e) = relay(client, internal, shared, pipes) {
            log::warn!("sim: relay setup failed: {e}");
        }
        lock(pipes).retain(|p| !p.is_finished());
    }
}

fn relay(
    client: TcpStream,
    internal: SocketAddr,
    shared: &Arc<Shared>,
    pipes: &Mutex<Vec<JoinHandle<()>>>,
) -> io::Result<()> {
    let upstream = TcpStream::connect(internal)?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let key = upstream.local_addr()?;
    lock(&shared.conns).insert(key, (client.try_clone()?, upstream.try_clone()?));
    let (c_read, u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::Builder::new()
        .name("sim-pipe".into())
        .spawn(move || pipe(c_read, u_write))?;
    let conns = shared.conns.clone();
    let down = std::thread::Builder::new()
        .name("sim-pipe".into())
        .spawn(move || {
            pipe(upstream, client);
            lock(&conns).remove(&key);
        })?;
    let mut p = lock(pipes);
    p.push(up);
    p.push(down);
    Ok(())
}

/// Copy until EOF or error, then half-close the destination so the other side sees EOF too.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

// ---------------------------------------------------------------------------------------------
// Workers

fn worker(server: &tiny_http::Server, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let request = match server.recv() {
            Ok(r) => r,
            Err(e) => {
                log::debug!("sim: recv failed: {e}");
                continue;
            }
        };
        let shared = shared.clone();
        // A bug in a handler costs one request (tiny_http answers 500 for a dropped request).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(request, &shared)));
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Take the fault for this request if one matches, counting down `times`.
fn take_fault(shared: &Shared, path: &str) -> Option<FaultKind> {
    let mut c = lock(&shared.control);
    let f = c.fault.as_mut()?;
    if f.path_prefix
        .as_deref()
        .is_some_and(|p| !path.starts_with(p))
    {
        return None;
    }
    let kind = f.kind.clone();
    match f.times {
        Some(0) => {
            c.fault = None;
            return None;
        }
        Some(1) => c.fault = None,
        Some(n) => f.times = Some(n - 1),
        None => {}
    }
    Some(kind)
}

fn record(shared: &Shared, method: &str, path: &str, query: &[(String, String)], status: u16) {
    lock(&shared.control).requests.push(Recorded {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_vec(),
        status,
    });
}

fn serve(mut request: tiny_http::Request, shared: &Arc<Shared>) {
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (url.clone(), Vec::new()),
    };
    log::debug!("sim: {method} {path}");

    if path.starts_with("/__sim/") {
        let mut body = Vec::new();
        let _ = request
            .as_reader()
            .take(MAX_BODY_BYTES as u64)
            .read_to_end(&mut body);
        let reply = control(shared, &method, &path, &body);
        send(request, reply);
        return;
    }

    if let Some(kind) = take_fault(shared, &path) {
        let reply = match kind {
            FaultKind::Delay(d) => {
                std::thread::sleep(d);
                None
            }
            FaultKind::Status { status, retry_after } => {
                let mut r = Reply::error(status);
                if let Some(ra) = retry_after {
                    r = r.header("Retry-After", ra);
                }
                Some(r)
            }
            FaultKind::Garbage => Some(Reply {
                status: 200,
                headers: Vec::new(),
                body: b"\x00\x01garbage <<not json>> \xff".to_vec(),
                content_type: Some("application/json"),
            }),
            FaultKind::Truncated => Some(Reply {
                status: 200,
                headers: Vec::new(),
                body: br#"[{"id":1,"begin":"2026-08-12T09:00:00+0200","descr"#.to_vec(),
                content_type: Some("application/json"),
            }),
            FaultKind::Html => Some(Reply {
                status: 200,
                headers: Vec::new(),
                body: b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n".to_vec(),
                content_type: Some("text/html; charset=UTF-8"),
            }),
            FaultKind::DropConnection => {
                record(shared, &method, &path, &query, 0);
                drop_connection(request, shared);
                return;
            }
        };
        if let Some(reply) = reply {
            record(shared, &method, &path, &query, reply.status);
            send(request, reply);
            return;
        }
    }

    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let authorization = header("Authorization");
    let x_auth = header("X-AUTH-USER").zip(header("X-AUTH-TOKEN"));
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body);
    let reply = if read.is_err() {
        Reply::error(400)
    } else if body.len() > MAX_BODY_BYTES {
        Reply::error(413)
    } else {
        let req = Req {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            authorization,
            x_auth,
            body,
        };
        let outcome = {
            let mut st = lock(&shared.state);
            api::handle(&mut st, &req)
        };
        if outcome.write_reached_handler {
            lock(&shared.control).write_count += 1;
        }
        outcome.reply
    };
    record(shared, &method, &path, &query, reply.status);
    send(request, reply);
}

/// Close the client's socket without a byte of response: shut down both relay sockets of this
/// connection, then let tiny_http's writer go (its 500 lands on a closed socket).
fn drop_connection(request: tiny_http::Request, shared: &Shared) {
    if let Some(addr) = request.remote_addr().copied() {
        if let Some((client, upstream)) = lock(&shared.conns).remove(&addr) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
    drop(request.into_writer());
}

/// The only function that knows tiny_http's response type.
fn send(request: tiny_http::Request, reply: Reply) {
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    if let Some(ct) = reply.content_type {
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", ct) {
            response.add_header(h);
        }
    }
    for (k, v) in reply.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    if let Err(e) = request.respond(response) {
        log::debug!("sim: responding failed: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Control endpoint (`/__sim/*`, never part of Kimai, no auth)

fn control(shared: &Shared, method: &str, path: &str, body: &[u8]) -> Reply {
    match (method, path) {
        ("POST", "/__sim/fault") => match fault_from_json(body) {
            Some(f) => {
                lock(&shared.control).fault = Some(f);
                Reply::ok(json!({"ok": true}))
            }
            None => Reply::error(400),
        },
        ("DELETE", "/__sim/fault") => {
            lock(&shared.control).fault = None;
            Reply::empty(204)
        }
        ("GET", "/__sim/requests") => {
            let c = lock(&shared.control);
            let list: Vec<Value> = c
                .requests
                .iter()
                .map(|r| {
                    json!({
                        "method": r.method, "path": r.path,
                        "query": r.query.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                        "status": r.status,
                    })
                })
                .collect();
            Reply::ok(json!({"requests": list, "write_count": c.write_count}))
        }
        ("DELETE", "/__sim/requests") => {
            lock(&shared.control).requests.clear();
            Reply::empty(204)
        }
        (_, "/__sim/fault" | "/__sim/requests") => Reply::error(405),
        _ => Reply::error(404),
    }
}

/// `{"kind":"delay","ms":500,"times":1,"path_prefix":"/api/version"}`,
/// `{"kind":"status","status":503,"retry_after":"1"}`, `"garbage"`, `"truncated"`, `"drop"`,
/// `"html"`.
fn fault_from_json(body: &[u8]) -> Option<Fault> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let kind = match v.get("kind")?.as_str()? {
        "delay" => FaultKind::Delay(Duration::from_millis(v.get("ms")?.as_u64()?)),
        "status" => FaultKind::Status {
            status: u16::try_from(v.get("status")?.as_u64()?)
                .ok()
                .filter(|s| (100..=599).contains(s))?,
            retry_after: match v.get("retry_after") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => return None,
            },
        },
        "garbage" => FaultKind::Garbage,
        "truncated" => FaultKind::Truncated,
        "drop" => FaultKind::DropConnection,
        "html" => FaultKind::Html,
        _ => return None,
    };
    let times = match v.get("times") {
        None | Some(Value::Null) => None,
        Some(t) => Some(u32::try_from(t.as_u64()?).ok()?),
    };
    let path_prefix = match v.get("path_prefix") {
        None | Some(Value::Null) => None,
        Some(p) => Some(p.as_str()?.to_string()),
    };
    Some(Fault {
        kind,
        times,
        path_prefix,
    })
}

#[cfg(test)]
mod tests;
