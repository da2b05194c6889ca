//! `serve` and its signals: SIGHUP re-reads users.json without dropping the sessions of users
//! that remain; SIGTERM lets a slow tool call finish and deliver its result.

use crate::util::http::{JSON_SSE, Resp, SLUG_A, SLUG_B, Serve, request};
use crate::util::{DEADLINE, sim};
use kimai_mcp::sim::{Fault, FaultKind};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const SLUG_C: &str = "Nw5Tq8Lk3Xr7Vm2Hs9PzDa";

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} failed");
}

fn post(srv: &Serve, path: &str, sid: Option<&str>, body: &Value) -> Resp {
    let mut h = vec![("Content-Type", "application/json"), ("Accept", JSON_SSE)];
    if let Some(s) = sid {
        h.push(("Mcp-Session-Id", s));
    }
    request(&srv.addr, "POST", path, &h, &body.to_string())
}

fn init(srv: &Serve, slug: &str) -> String {
    let r = post(
        srv,
        &format!("/mcp/{slug}"),
        None,
        &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.header("Mcp-Session-Id").unwrap().to_string()
}

fn whoami(srv: &Serve, slug: &str, sid: &str) -> (u16, String) {
    let r = post(
        srv,
        &format!("/mcp/{slug}"),
        Some(sid),
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"user_current","arguments":{}}}),
    );
    let text = if r.status == 200 {
        r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    } else {
        String::new()
    };
    (r.status, text)
}

#[test]
fn sighup_adds_and_removes_users_and_keeps_other_sessions() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let a = init(&srv, SLUG_A);
    let b = init(&srv, SLUG_B);
    // Remove B, add C (maria_user), keep A.
    let users = json!({
        SLUG_A: {"kimai_url": sim.url(), "kimai_token": sim.token("tony_teamlead").unwrap()},
        SLUG_C: {"kimai_url": sim.url(), "kimai_token": sim.token("maria_user").unwrap()},
    });
    std::fs::write(srv.users_path(), users.to_string()).unwrap();
    kill(srv.pid(), "HUP");
    let start = Instant::now();
    while !srv.logs().contains("Reloaded:") && start.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = srv.logs();
    assert!(
        logs.contains(
            "Reloaded: 2 users (1 added, 1 removed, 0 changed); 1 sessions of removed users ended"
        ),
        "{logs}"
    );
    assert!(!logs.contains(SLUG_B) && !logs.contains(SLUG_C));
    let (status, text) = whoami(&srv, SLUG_A, &a);
    assert_eq!(status, 200);
    assert!(
        text.contains("tony_teamlead"),
        "A's session stays usable: {text}"
    );
    assert_eq!(whoami(&srv, SLUG_B, &b).0, 404, "B's session ended with B");
    assert_eq!(post(&srv, &format!("/mcp/{SLUG_B}"), None, &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})).status, 404);
    let c = init(&srv, SLUG_C);
    assert!(whoami(&srv, SLUG_C, &c).1.contains("maria_user"));
    // A broken file is refused and the current users are kept.
    std::fs::write(srv.users_path(), "{ not json").unwrap();
    kill(srv.pid(), "HUP");
    let start = Instant::now();
    while !srv.logs().contains("Reload failed") && start.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        srv.logs()
            .contains("Reload failed, keeping the current users")
    );
    assert!(whoami(&srv, SLUG_A, &a).1.contains("tony_teamlead"));
}

#[test]
fn sigterm_lets_a_slow_call_finish_and_exits_cleanly() {
    let sim = sim();
    let mut srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let a = init(&srv, SLUG_A);
    sim.set_fault(Fault {
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: Some(1),
        path_prefix: Some("/api/users/me".into()),
    });
    let addr = srv.addr.clone();
    let slow = std::thread::spawn(move || {
        let body = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"user_current","arguments":{}}});
        request(
            &addr,
            "POST",
            &format!("/mcp/{SLUG_A}"),
            &[
                ("Content-Type", "application/json"),
                ("Accept", JSON_SSE),
                ("Mcp-Session-Id", &a),
            ],
            &body.to_string(),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    kill(srv.pid(), "TERM");
    let r = slow.join().unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("tony_teamlead")
    );
    assert_eq!(
        srv.wait_exit(Duration::from_secs(12)),
        Some(0),
        "{}",
        srv.logs()
    );
    // New connections are refused once it stopped.
    assert!(std::net::TcpStream::connect(&srv.addr).is_err());
}
