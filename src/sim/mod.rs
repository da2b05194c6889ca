//! A simulated Kimai 2.65 for the demo, the tests and the benchmarks.
//!
//! Owns the server lifecycle (bind, worker threads, shutdown in `Drop`), fault injection, the
//! request log, and the `/__sim/*` control endpoints. The API itself lives in `api` (routing,
//! authentication, reads), `writes` (timesheet writes), `admin` (administration endpoints) and
//! `plugin` (the WorkContract plugin), which share only the wire types of `wire`; the data and
//! seed in `data`, JSON shapes in `json`, calendar rules in `time`. It deliberately shares no code with `crate::kimai`: a misreading of Kimai in
//! one must not hide in the other. Its spec is `/work/shared/kimai-api/contract.md`; it aims to be
//! faithful, not lenient.
//!
//! Threads: `sim-accept` owns the loopback listener and gives each connection its own
//! `sim-conn` thread, which speaks a small HTTP/1.1 (see `http`: keep-alive, Content-Length
//! bodies, bounded heads and bodies, idle timeout). A thread per connection keeps the fault
//! `DropConnection` honest (the socket really closes) and has no hand-off queue in which a
//! request could wait for a busy thread. Shared state: `State` (the data) and `Control` (fault,
//! request log, write counter), each behind its own `Mutex`, locked briefly and never across
//! socket I/O. The data is an `Arc<State>`: a read (`GET` of a list or of one entity, see
//! `api::handle_read`) takes a snapshot, an `Arc` clone, and filters and renders without any
//! lock, so that parallel page reads do not queue behind one another; a write changes the
//! data in place under the lock (`Arc::make_mut`, which copies the data only while a read
//! still holds an older snapshot). Poisoned locks are recovered: a panicking handler costs
//! one request, not the simulator.

mod admin;
mod api;
mod data;
mod http;
mod json;
mod plugin;
mod time;
mod wire;
mod writes;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use wire::{Answer, Req};

pub use http::MAX_BODY_BYTES;

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
    /// Whether that plugin offers month locks through the API
    /// (`DELETE /api/work-contract/{lock,unlock}/{user}/{month}`; routes the contract marks as
    /// unverified): `false` stands for a plugin version without them, whose other routes work.
    pub workcontract_month_locks: bool,
    /// Unix seconds to treat as "now" (seeding and server clock); `None` = the real clock.
    pub now: Option<i64>,
    /// Custom fields defined for timesheets (as a plugin would add them); none by default,
    /// as on a bare Kimai.
    pub timesheet_meta_fields: Vec<String>,
    /// Unix seconds: records beginning before this are in Kimai's lockdown period (§7.5);
    /// `None` = no lockdown, as on a default Kimai.
    pub lockdown_before: Option<i64>,
    /// Kimai 2.66's rate visibility (contract §6.1): timesheet reads omit `rate`,
    /// `internalRate` (and in entity responses `fixedRate`, `hourlyRate`) per record unless
    /// the caller holds `view_rate_own_timesheet` (own records) or `view_rate_other_timesheet`
    /// (others'). Off by default: Kimai 2.65 always sends them. Applies to the read endpoints
    /// (lists, one record, active, recent, favorites); write responses keep them.
    pub rates_need_permission: bool,
    /// Whether the ApiTokenBundle plugin is installed (`plugin::api_tokens`): off, as on a
    /// stock Kimai.
    pub api_token_plugin: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 0,
            seed: 42,
            workcontract_plugin: true,
            workcontract_month_locks: true,
            now: None,
            timesheet_meta_fields: Vec::new(),
            lockdown_before: None,
            rates_need_permission: false,
            api_token_plugin: false,
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
    /// Bytes of the response as sent (status line, headers and body); 0 when the connection
    /// was dropped without an answer.
    pub bytes: usize,
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

/// Open connections by number, so that `Drop` can close them.
type Conns = Arc<Mutex<HashMap<u64, TcpStream>>>;

struct Shared {
    /// The data; reads work on a snapshot (see the module header).
    state: Mutex<Arc<data::State>>,
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
    acceptor: Option<JoinHandle<()>>,
    conn_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Sim {
    /// Seed the data and start serving on `127.0.0.1:opts.port`.
    pub fn start(opts: Options) -> io::Result<Sim> {
        let now = opts.now.unwrap_or_else(data::now_real);
        let mut state = data::seed(opts.seed, now, opts.workcontract_plugin);
        state.workcontract_month_locks = opts.workcontract_month_locks;
        state.timesheet_meta_fields = opts.timesheet_meta_fields.clone();
        state.lockdown_before = opts.lockdown_before;
        state.rates_need_permission = opts.rates_need_permission;
        state.api_tokens.installed = opts.api_token_plugin;
        state.fixed_now = opts.now;
        // TCP_NODELAY (inherited by accepted sockets): see `crate::net`.
        let listener =
            crate::net::listener(std::net::SocketAddr::from(([127, 0, 0, 1], opts.port)))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            state: Mutex::new(Arc::new(state)),
            control: Mutex::new(Control::default()),
            conns: Arc::new(Mutex::new(HashMap::new())),
            stop: AtomicBool::new(false),
        });
        let conn_threads = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (shared, threads) = (shared.clone(), conn_threads.clone());
            std::thread::Builder::new()
                .name("sim-accept".into())
                .spawn(move || accept_loop(listener, &shared, &threads))?
        };
        Ok(Sim {
            port,
            shared,
            acceptor: Some(acceptor),
            conn_threads,
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
        Arc::make_mut(&mut lock(&self.shared.state))
            .plugin
            .denied_reads
            .push(user);
    }

    /// From now on the token gets 401 with an empty body (contract §1.3).
    pub fn revoke_token(&self, token: &str) {
        Arc::make_mut(&mut lock(&self.shared.state))
            .revoked
            .push(token.to_string());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.control).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.control).requests.clear();
    }

    /// Bytes of all responses in the request log (since the last [`Sim::clear_requests`]).
    pub fn bytes_sent(&self) -> usize {
        lock(&self.shared.control)
            .requests
            .iter()
            .map(|r| r.bytes)
            .sum()
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
        for (_, conn) in lock(&self.shared.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.conn_threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>, threads: &Mutex<Vec<JoinHandle<()>>>) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            // e.g. out of file descriptors: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(id, clone);
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sim-conn".into())
            .spawn(move || {
                http::serve_connection(stream, &|req| respond(&shared2, req));
                lock(&shared2.conns).remove(&id);
            });
        match spawned {
            Ok(h) => {
                let mut t = lock(threads);
                t.retain(|h| !h.is_finished());
                t.push(h);
            }
            Err(e) => {
                log::warn!("sim: cannot start a connection thread: {e}");
                lock(&shared.conns).remove(&id);
            }
        }
    }
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (
                crate::net::percent_decode(k, true),
                crate::net::percent_decode(v, true),
            ),
            None => (crate::net::percent_decode(p, true), String::new()),
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

fn record(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &[(String, String)],
    status: u16,
    bytes: usize,
) {
    lock(&shared.control).requests.push(Recorded {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_vec(),
        status,
        bytes,
    });
}

/// Answers one request; `None` means: close the connection without a response (the fault
/// `DropConnection`).
fn respond(shared: &Shared, req: http::Request) -> Option<Answer> {
    let http::Request {
        method,
        target,
        headers,
        body,
        keep_alive,
    } = req;
    let head_only = method == "HEAD";
    let sent = |reply: &Answer| http::encoded_len(reply, keep_alive, head_only);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target.clone(), Vec::new()),
    };
    log::debug!("sim: {method} {path}");

    if path.starts_with("/__sim/") {
        return Some(control(shared, &method, &path, &body));
    }

    if let Some(kind) = take_fault(shared, &path) {
        let reply = match kind {
            FaultKind::Delay(d) => {
                std::thread::sleep(d);
                None
            }
            FaultKind::Status { status, retry_after } => {
                let mut r = Answer::error(status);
                if let Some(ra) = retry_after {
                    r = r.header("Retry-After", ra);
                }
                Some(r)
            }
            FaultKind::Garbage => Some(Answer {
                status: 200,
                headers: Vec::new(),
                body: b"\x00\x01garbage <<not json>> \xff".to_vec(),
                content_type: Some("application/json"),
            }),
            FaultKind::Truncated => Some(Answer {
                status: 200,
                headers: Vec::new(),
                body: br#"[{"id":1,"begin":"2026-08-12T09:00:00+0200","descr"#.to_vec(),
                content_type: Some("application/json"),
            }),
            FaultKind::Html => Some(Answer {
                status: 200,
                headers: Vec::new(),
                body: b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n".to_vec(),
                content_type: Some("text/html; charset=UTF-8"),
            }),
            FaultKind::DropConnection => {
                record(shared, &method, &path, &query, 0, 0);
                return None;
            }
        };
        if let Some(reply) = reply {
            record(shared, &method, &path, &query, reply.status, sent(&reply));
            return Some(reply);
        }
    }

    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let authorization = header("Authorization");
    let x_auth = header("X-AUTH-USER").zip(header("X-AUTH-TOKEN"));
    let req = Req {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        authorization,
        x_auth,
        body,
    };
    // A read runs on a snapshot, without the lock; anything else changes the data under it.
    let snapshot = matches!(method.as_str(), "GET" | "HEAD").then(|| lock(&shared.state).clone());
    let outcome = match snapshot.and_then(|st| api::handle_read(&st, &req)) {
        Some(o) => o,
        None => {
            let mut st = lock(&shared.state);
            api::handle(Arc::make_mut(&mut st), &req)
        }
    };
    if outcome.write_reached_handler {
        lock(&shared.control).write_count += 1;
    }
    let reply = outcome.reply;
    record(shared, &method, &path, &query, reply.status, sent(&reply));
    Some(reply)
}

// ---------------------------------------------------------------------------------------------
// Control endpoint (`/__sim/*`, never part of Kimai, no auth)

fn control(shared: &Shared, method: &str, path: &str, body: &[u8]) -> Answer {
    match (method, path) {
        ("POST", "/__sim/fault") => match fault_from_json(body) {
            Some(f) => {
                lock(&shared.control).fault = Some(f);
                Answer::ok(json!({"ok": true}))
            }
            None => Answer::error(400),
        },
        ("DELETE", "/__sim/fault") => {
            lock(&shared.control).fault = None;
            Answer::empty(204)
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
                        "status": r.status, "bytes": r.bytes,
                    })
                })
                .collect();
            Answer::ok(json!({"requests": list, "write_count": c.write_count}))
        }
        ("DELETE", "/__sim/requests") => {
            lock(&shared.control).requests.clear();
            Answer::empty(204)
        }
        (_, "/__sim/fault" | "/__sim/requests") => Answer::error(405),
        _ => Answer::error(404),
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
