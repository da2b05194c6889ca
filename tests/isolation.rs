//! One client can never harm another: the Kimai URL policy and the per-credential bounds of
//! `serve`, each tried as an attacker would, while a second user (another address, another
//! credential) is served — and how fast — during the attack.
//!
//! Many machines are stood for by distinct source addresses in 127.0.0.0/8. Every loop is
//! bounded; the timing bounds are generous (seconds), for a loaded machine: they catch a
//! server that makes the second user wait for the attack, not a slow CI run.

use crate::util::http::{
    JSON_SSE, SERVER_TOKEN, SLUG_A, SLUG_B, Serve, call, connect_from, init_body, post_from,
    read_response, request_from,
};
use crate::util::{rss_kib, sim};

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest a second user's request may take while an attack runs.
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// The second user: B on its own address and slug. Opens a session once, then each `check`
/// asks `/health` and `user_current` and returns the slower of the two times.
struct UserB {
    addr: String,
    sid: String,
}

const B_ADDR: [u8; 4] = [127, 0, 9, 9];

impl UserB {
    fn new(srv: &Serve) -> UserB {
        let r = post_from(
            B_ADDR,
            &srv.addr,
            &format!("/mcp/{SLUG_B}"),
            &[],
            &init_body(),
        );
        assert_eq!(r.status, 200, "B's initialize: {}", r.body);
        let sid = r.header("Mcp-Session-Id").unwrap().to_string();
        UserB {
            addr: srv.addr.clone(),
            sid,
        }
    }

    fn check(&self) -> Duration {
        let t = Instant::now();
        let h = request_from(B_ADDR, &self.addr, "GET", "/health", &[], "");
        assert_eq!(h.status, 200, "B's /health: {}", h.body);
        let health = t.elapsed();
        let t = Instant::now();
        let r = post_from(
            B_ADDR,
            &self.addr,
            &format!("/mcp/{SLUG_B}"),
            &[("Mcp-Session-Id", &self.sid)],
            &call(7, "user_current", json!({})),
        );
        assert_eq!(r.status, 200, "B's user_current: {}", r.body);
        let text = r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(text.contains("john_user"), "B's user_current: {text}");
        let tool = t.elapsed();
        assert!(
            health < SERVED_WITHIN && tool < SERVED_WITHIN,
            "B waited: /health {health:?}, user_current {tool:?}"
        );
        health.max(tool)
    }
}

/// A listener that counts connections and never answers (a Kimai that hangs, or a service
/// inside the network that the server must not reach).
struct BlackHole {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, st) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        held.push(c);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        BlackHole {
            addr,
            accepted,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn header_auth<'a>(token: &'a str, url: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("Authorization", "Bearer test-server-token-0123456789abcdef"),
        ("X-Kimai-Token", token),
    ];
    if let Some(u) = url {
        h.push(("X-Kimai-URL", u));
    }
    h
}

/// The headers of a 2026-07-28 tool call of `tool` with the caller's own Kimai token.
fn stateless_auth<'a>(
    token: &'a str,
    url: Option<&'a str>,
    tool: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut h = header_auth(token, url);
    h.extend([
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", tool),
    ]);
    h
}

fn stateless_call(id: i64, tool: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name": tool, "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
}

#[test]
fn x_kimai_url_outside_the_allow_list_is_refused_before_any_connection() {
    assert_eq!(SERVER_TOKEN, "test-server-token-0123456789abcdef");
    let sim = sim();
    let inside = BlackHole::start();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let b = UserB::new(&srv);
    let token = sim.demo_token();
    let target = format!("{}/internal/admin", inside.url());
    let attacker = [127, 0, 1, 1];
    // Initialize, a stateless 2026-07-28 tool call, and the legacy stream: all refused.
    for body in [init_body(), stateless_call(2, "user_current")] {
        let r = post_from(
            attacker,
            &srv.addr,
            "/mcp",
            &header_auth(&token, Some(&target)),
            &body,
        );
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("--allowed-kimai-url"), "{}", r.body);
    }
    let r = request_from(
        attacker,
        &srv.addr,
        "GET",
        "/sse",
        &header_auth(&token, Some(&target)),
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Spellings of the allowed URL that parsers disagree on are refused too.
    for spelled in [
        format!("{}@{}", sim.url(), inside.addr),
        format!("http://user@{}", inside.addr),
        format!("{}/..%2f", sim.url()),
    ] {
        let r = post_from(
            attacker,
            &srv.addr,
            "/mcp",
            &header_auth(&token, Some(&spelled)),
            &init_body(),
        );
        assert!(r.status == 403 || r.status == 400, "{spelled}: {}", r.body);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        inside.accepted(),
        0,
        "the server connected to the refused URL"
    );
    b.check();
    // The allowed URL (the default, spelled differently) works.
    let spelled = format!(
        "{}/api/",
        sim.url().to_uppercase().replace("HTTP://", "http://")
    );
    let r = post_from(
        attacker,
        &srv.addr,
        "/mcp",
        &header_auth(&token, Some(&spelled)),
        &init_body(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!srv.logs().contains("/internal/admin"));
}

#[test]
fn an_operator_can_allow_more_kimai_urls_or_any() {
    let sim = sim();
    let other = BlackHole::start();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--allowed-kimai-url",
            &other.url(),
            "--timeout",
            "1",
        ],
    );
    let token = sim.demo_token();
    let r = post_from(
        [127, 0, 1, 2],
        &srv.addr,
        "/mcp",
        &header_auth(&token, Some(&other.url())),
        &init_body(),
    );
    // Allowed: the server connects (and the hanging Kimai times out: 502).
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(other.accepted() >= 1);
    drop(srv);
    let srv = Serve::start(&sim, &["--allowed-kimai-url", "*"]);
    assert!(
        srv.logs().contains("--allowed-kimai-url '*'"),
        "no warning: {}",
        srv.logs()
    );
}

#[test]
fn a_kimai_that_answers_like_something_else_is_named_without_quoting_it() {
    // A web service that answers every request with a JSON error of its own.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming().take(20) {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = r#"{"error":"not found","message":"internal-secret-inventory"}"#;
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--allowed-kimai-url", &url],
    );
    let r = post_from(
        [127, 0, 1, 3],
        &srv.addr,
        "/mcp",
        &header_auth("some-token-0123456789", Some(&url)),
        &init_body(),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(!r.body.contains("internal-secret-inventory"), "{}", r.body);
    assert!(r.body.contains("does not look like Kimai"), "{}", r.body);
}

#[test]
fn one_credential_cannot_fill_the_session_table() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--max-sessions",
            "30",
            "--max-sessions-per-user",
            "5",
            "--session-rate-per-address",
            "0",
        ],
    );
    let b = UserB::new(&srv);
    // A opens 60 sessions with its slug from 12 addresses: twice the whole table.
    let mut ids = Vec::new();
    for i in 0..60u8 {
        let r = post_from(
            [127, 0, 2, 1 + i % 12],
            &srv.addr,
            &format!("/mcp/{SLUG_A}"),
            &[],
            &init_body(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.header("Mcp-Session-Id").unwrap().to_string());
    }
    b.check();
    let health = request_from(B_ADDR, &srv.addr, "GET", "/health", &[], "").json();
    // A holds its 5, B its 1.
    assert_eq!(health["active_sessions"], json!(6), "{health}");
    // A's oldest sessions were ended, its newest work.
    let ping = json!({"jsonrpc":"2.0","id":3,"method":"ping"});
    let path = format!("/mcp/{SLUG_A}");
    let old = post_from(
        [127, 0, 2, 1],
        &srv.addr,
        &path,
        &[("Mcp-Session-Id", &ids[0])],
        &ping,
    );
    assert_eq!(old.status, 404);
    let new = post_from(
        [127, 0, 2, 1],
        &srv.addr,
        &path,
        &[("Mcp-Session-Id", &ids[59])],
        &ping,
    );
    assert_eq!(new.status, 200, "{}", new.body);
    assert!(srv.logs().contains("--max-sessions-per-user"));
    // Another user can still open a session.
    let r = post_from(
        [127, 0, 9, 10],
        &srv.addr,
        &format!("/mcp/{SLUG_B}"),
        &[],
        &init_body(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn new_sessions_are_limited_per_address() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--session-rate-per-address", "5"],
    );
    let b = UserB::new(&srv);
    let attacker = [127, 0, 3, 1];
    let statuses: Vec<u16> = (0..8)
        .map(|_| {
            post_from(
                attacker,
                &srv.addr,
                &format!("/mcp/{SLUG_A}"),
                &[],
                &init_body(),
            )
            .status
        })
        .collect();
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 3], "{statuses:?}");
    let r = post_from(
        attacker,
        &srv.addr,
        &format!("/mcp/{SLUG_A}"),
        &[],
        &init_body(),
    );
    assert!(r.header("Retry-After").is_some());
    assert!(r.body.contains("--session-rate-per-address"), "{}", r.body);
    // The legacy stream counts against the same limit.
    let r = request_from(
        attacker,
        &srv.addr,
        "GET",
        "/sse",
        &header_auth(&sim.demo_token(), None),
        "",
    );
    assert_eq!(r.status, 429, "{}", r.body);
    b.check();
}

#[test]
fn a_wrong_kimai_token_costs_kimai_one_request_and_opens_no_session() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--session-rate-per-address", "0"],
    );
    let b = UserB::new(&srv);
    sim.clear_requests();
    let wrong = "wrong-token-0123456789abcdef";
    for i in 0..20u8 {
        let r = post_from(
            [127, 0, 4, 1 + i % 4],
            &srv.addr,
            "/mcp",
            &header_auth(wrong, None),
            &init_body(),
        );
        assert_eq!(r.status, 502, "{}", r.body);
        assert!(
            r.body.contains("does not accept this X-Kimai-Token"),
            "{}",
            r.body
        );
        // Stateless requests with it are refused the same way.
        let r = post_from(
            [127, 0, 4, 1 + i % 4],
            &srv.addr,
            "/mcp",
            &stateless_auth(wrong, None, "user_current"),
            &stateless_call(2, "user_current"),
        );
        assert_eq!(r.status, 502, "{}", r.body);
    }
    let asked = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/users/me")
        .count();
    assert_eq!(
        asked, 1,
        "Kimai was asked {asked} times about one wrong token"
    );
    // Many different wrong tokens open no session either.
    for i in 0..30 {
        let t = format!("random-token-{i:04}-0123456789");
        let r = post_from(
            [127, 0, 4, 9],
            &srv.addr,
            "/mcp",
            &header_auth(&t, None),
            &init_body(),
        );
        assert_eq!(r.status, 502);
    }
    let health = request_from(B_ADDR, &srv.addr, "GET", "/health", &[], "").json();
    assert_eq!(health["active_sessions"], json!(1), "{health}");
    b.check();
    // A right token works, and is checked once.
    sim.clear_requests();
    let right = sim.token("maria_user").unwrap();
    for _ in 0..3 {
        let r = post_from(
            [127, 0, 4, 10],
            &srv.addr,
            "/mcp",
            &stateless_auth(&right, None, "user_current"),
            &stateless_call(3, "user_current"),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("maria_user"), "{}", r.body);
    }
    let checks = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/users/me")
        .count();
    // One check, plus one per call (user_current itself reads /users/me).
    assert_eq!(checks, 4, "{checks}");
}

#[test]
fn a_hanging_kimai_ties_up_only_its_users_calls() {
    let sim = sim();
    let hole = BlackHole::start();
    let slug_hung = "Hq8Rt3NsQk7Lw2vX9mPz4a";
    let users = json!({
        slug_hung: {"kimai_url": hole.url(), "kimai_token": "hung-token-0123456789"},
        SLUG_B: {"kimai_url": sim.url(), "kimai_token": sim.token("john_user").unwrap()},
    });
    let srv = Serve::start_with(
        &sim,
        &users,
        &[
            "--rate-limit-rpm",
            "0",
            "--timeout",
            "8",
            "--session-rate-per-address",
            "0",
        ],
        "debug",
    );
    let b = UserB::new(&srv);
    let path = format!("/mcp/{slug_hung}");
    let a = post_from([127, 0, 5, 1], &srv.addr, &path, &[], &init_body());
    assert_eq!(a.status, 200, "{}", a.body);
    let sid = a.header("Mcp-Session-Id").unwrap().to_string();
    // 32 concurrent tool calls (from 8 addresses) against the Kimai that never answers.
    let mut calls = Vec::new();
    for i in 0..32u8 {
        let (addr, path, sid) = (srv.addr.clone(), path.clone(), sid.clone());
        calls.push(std::thread::spawn(move || {
            post_from(
                [127, 0, 5, 1 + i % 8],
                &addr,
                &path,
                &[("Mcp-Session-Id", &sid)],
                &call(100 + i64::from(i), "user_current", json!({})),
            )
            .status
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    // B is served at once, repeatedly, while A's calls hang.
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(b.check());
    }
    // A's own ping does not wait behind A's calls either.
    let t = Instant::now();
    let p = post_from(
        [127, 0, 5, 1],
        &srv.addr,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        t.elapsed() < SERVED_WITHIN,
        "A's ping took {:?}",
        t.elapsed()
    );
    // At most A's 4 calls reached the hanging Kimai.
    assert!(
        hole.accepted() <= 4,
        "{} connections to the hung Kimai",
        hole.accepted()
    );
    assert!(hole.accepted() >= 1);
    eprintln!("B's slowest request while A's 32 calls hung: {worst:?}");
    drop(calls);
}

#[test]
fn batches_are_bounded() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let b = UserB::new(&srv);
    let path = format!("/mcp/{SLUG_A}");
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let r = post_from([127, 0, 6, 1], &srv.addr, &path, &[], &init);
    let sid = r.header("Mcp-Session-Id").unwrap().to_string();
    let batch = |n: i64| {
        Value::Array(
            (0..n)
                .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"ping"}))
                .collect(),
        )
    };
    let r = post_from(
        [127, 0, 6, 1],
        &srv.addr,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &batch(20),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json().as_array().map(Vec::len), Some(20));
    let r = post_from(
        [127, 0, 6, 1],
        &srv.addr,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &batch(9700),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], json!(-32600));
    assert!(
        r.body.contains("--max-batch") && r.body.contains("20"),
        "{}",
        r.body
    );
    // A 1 MiB batch of tool calls (about 9,700 of them) is refused as a whole, at once, while
    // B is served.
    let calls = Value::Array(
        (0..9700)
            .map(|i| call(i, "user_current", json!({})))
            .collect(),
    );
    let started = Instant::now();
    let r = post_from(
        [127, 0, 6, 1],
        &srv.addr,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &calls,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(started.elapsed() < SERVED_WITHIN, "{:?}", started.elapsed());
    b.check();
}

#[test]
fn many_kimai_urls_do_not_grow_the_client_cache() {
    // Even with every URL allowed, each distinct X-Kimai-URL costs memory only while it is
    // used: the client cache keeps at most 256. (With no bound, the 8,000 URLs below added
    // 13.7 MB here, about 1.7 KB each; with it, 2.3 MB.)
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--session-rate-per-address",
            "0",
            "--allowed-kimai-url",
            "*",
            "--connect-timeout",
            "1",
        ],
    );
    let b = UserB::new(&srv);
    // A port that refuses at once (nothing listens on it any more).
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let before = rss_kib(srv.pid());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let addr = srv.addr.clone();
            std::thread::spawn(move || {
                let mut s = connect_from([127, 0, 10, 1 + t], &addr);
                let body = init_body().to_string();
                for i in 0..2000u16 {
                    // Each a different Kimai URL (the path differs).
                    let head = format!(
                        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: {JSON_SSE}\r\nAuthorization: Bearer {SERVER_TOKEN}\r\nX-Kimai-Token: t-0123456789abcdef\r\nX-Kimai-URL: http://127.0.0.1:{closed}/k{t}/{i}\r\n"
                    );
                    s.write_all(
                        format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
                    )
                    .unwrap();
                    let r = read_response(&mut s);
                    assert_eq!(r.status, 502, "{r:?}");
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    b.check();
    for t in threads {
        t.join().unwrap();
    }
    b.check();
    let after = rss_kib(srv.pid());
    eprintln!("RSS before {before} KiB, after 8,000 Kimai URLs {after} KiB");
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

#[test]
fn one_credential_is_rate_limited_across_addresses() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--user-rate-limit-rpm",
            "10",
            "--session-rate-per-address",
            "0",
        ],
    );
    let b = UserB::new(&srv);
    let token = sim.demo_token();
    // Stateless requests with one Kimai token from ten addresses: ten pass, then 429.
    let statuses: Vec<u16> = (0..15u8)
        .map(|i| {
            post_from(
                [127, 0, 7, 1 + i % 10],
                &srv.addr,
                "/mcp",
                &stateless_auth(&token, None, "user_current"),
                &stateless_call(1, "user_current"),
            )
            .status
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
    let r = post_from(
        [127, 0, 7, 11],
        &srv.addr,
        "/mcp",
        &stateless_auth(&token, None, "user_current"),
        &stateless_call(1, "user_current"),
    );
    assert!(r.body.contains("--user-rate-limit-rpm"), "{}", r.body);
    // B (its own credential, one request so far) is not touched.
    b.check();
}

#[test]
fn legacy_sse_calls_take_a_place_among_their_users_calls_before_a_thread() {
    let sim = sim();
    // A's Kimai: another simulator whose timesheet list takes 4 s.
    let slow = crate::util::sim();
    slow.set_fault(kimai_mcp::sim::Fault {
        kind: kimai_mcp::sim::FaultKind::Delay(Duration::from_secs(4)),
        times: None,
        path_prefix: Some("/api/timesheets".into()),
    });
    let srv = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--allowed-kimai-url", &slow.url()],
    );
    let b = UserB::new(&srv);
    let token = slow.demo_token();
    let slow_url = slow.url();
    let auth = header_auth(&token, Some(&slow_url));
    // A opens a stream and reads its endpoint.
    let mut stream = connect_from([127, 0, 8, 1], &srv.addr);
    let mut head = format!("GET /sse HTTP/1.1\r\nHost: {}\r\n", srv.addr);
    for (k, v) in &auth {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("session_id=") || !seen[seen.find("session_id=").unwrap()..].contains('\n')
    {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let endpoint = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: /messages"))
        .map(|rest| format!("/messages{rest}"))
        .unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    for body in [
        init,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    ] {
        let r = post_from([127, 0, 8, 1], &srv.addr, &endpoint, &auth, &body);
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // Twelve slow tool calls at once: four are taken (202 at once), the rest wait for a place.
    let done = Arc::new(AtomicUsize::new(0));
    let mut posts = Vec::new();
    for i in 0..12u8 {
        let (addr, endpoint, token, url, done) = (
            srv.addr.clone(),
            endpoint.clone(),
            token.clone(),
            slow_url.clone(),
            done.clone(),
        );
        posts.push(std::thread::spawn(move || {
            let r = post_from(
                [127, 0, 8, 2 + i],
                &addr,
                &endpoint,
                &header_auth(&token, Some(&url)),
                &call(200 + i64::from(i), "timesheet", json!({"action": "list"})),
            );
            done.fetch_add(1, Ordering::SeqCst);
            r.status
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        done.load(Ordering::SeqCst),
        4,
        "calls accepted while four hang"
    );
    b.check();
    let statuses: Vec<u16> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
}

#[test]
fn the_credential_rate_counts_legacy_sse_messages_too() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--user-rate-limit-rpm", "6"],
    );
    let b = UserB::new(&srv);
    let token = sim.demo_token();
    let auth = header_auth(&token, None);
    let mut stream = connect_from([127, 0, 11, 1], &srv.addr);
    let mut head = format!("GET /sse HTTP/1.1\r\nHost: {}\r\n", srv.addr);
    for (k, v) in &auth {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("session_id=") || !seen.split("session_id=").nth(1).unwrap().contains('\n')
    {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let endpoint = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: /messages"))
        .map(|rest| format!("/messages{rest}"))
        .unwrap();
    // The stream took one of the six; five pings pass, from several addresses; the next is 429.
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    let statuses: Vec<u16> = (0..7u8)
        .map(|i| post_from([127, 0, 11, 2 + i], &srv.addr, &endpoint, &auth, &ping).status)
        .collect();
    assert_eq!(
        statuses,
        [202, 202, 202, 202, 202, 429, 429],
        "{statuses:?}"
    );
    b.check();
}
