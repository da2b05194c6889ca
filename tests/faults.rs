//! Kimai failing in every way the simulator can inject: each failure becomes a tool result
//! that says what happened, the server keeps serving, and no write is ever sent twice.

use crate::util::{Server, sim};
use kimai_mcp::sim::{Fault, FaultKind, Sim};
use serde_json::json;
use std::time::{Duration, Instant};

fn fault(sim: &Sim, kind: FaultKind, times: Option<u32>, path: &str) {
    sim.set_fault(Fault {
        kind,
        times,
        path_prefix: Some(path.into()),
    });
}

fn ready(sim: &Sim, extra_env: &[(&str, &str)]) -> Server {
    let url = sim.url();
    let token = sim.demo_token();
    let mut env = vec![
        ("KIMAI_URL", url.as_str()),
        ("KIMAI_API_TOKEN", token.as_str()),
    ];
    env.extend_from_slice(extra_env);
    let mut s = Server::spawn(&["stdio"], &env);
    s.initialize("2025-11-25");
    s
}

#[test]
fn kimai_down_or_refusing_connections() {
    // Nothing listens on port 9: connection refused, at once, not retried.
    let mut s = Server::spawn(
        &["stdio"],
        &[
            ("KIMAI_URL", "http://127.0.0.1:9"),
            ("KIMAI_API_TOKEN", "x"),
        ],
    );
    s.initialize("2025-11-25");
    let t = Instant::now();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(err && text.contains("connection refused"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(text.contains("Hint:"), "{text}");
    assert_eq!(s.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn a_kimai_slower_than_the_timeout() {
    let sim = sim();
    let mut s = ready(&sim, &[("KIMAI_TIMEOUT", "0.5")]);
    fault(
        &sim,
        FaultKind::Delay(Duration::from_millis(1500)),
        None,
        "/api/version",
    );
    let t = Instant::now();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(err && text.contains("did not answer in time"), "{text}");
    // A read that timed out is not retried: one attempt of 0.5 s, not three.
    assert!(
        t.elapsed() < Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
    sim.clear_fault();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(!err, "{text}");
}

#[test]
fn server_errors_with_and_without_retry_after() {
    let sim = sim();
    let mut s = ready(&sim, &[]);
    // Two 503s with Retry-After: 1, then success: the read is retried and succeeds.
    fault(
        &sim,
        FaultKind::Status {
            status: 503,
            retry_after: Some("1".into()),
        },
        Some(2),
        "/api/version",
    );
    sim.clear_requests();
    let t = Instant::now();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(!err, "{text}");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "Retry-After was not honoured: {:?}",
        t.elapsed()
    );
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r.path == "/api/version")
            .count(),
        3
    );
    // A 502 without Retry-After that persists: three attempts, then the error, named.
    fault(
        &sim,
        FaultKind::Status {
            status: 502,
            retry_after: None,
        },
        None,
        "/api/version",
    );
    sim.clear_requests();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(err && text.contains("502"), "{text}");
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r.path == "/api/version")
            .count(),
        3
    );
    // A 500 is not retried.
    fault(
        &sim,
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        None,
        "/api/version",
    );
    sim.clear_requests();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(err && text.contains("500"), "{text}");
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r.path == "/api/version")
            .count(),
        1
    );
    // A Retry-After longer than 10 s: no retry, the error at once.
    fault(
        &sim,
        FaultKind::Status {
            status: 503,
            retry_after: Some("120".into()),
        },
        None,
        "/api/version",
    );
    let t = Instant::now();
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(
        err && text.contains("503") && t.elapsed() < Duration::from_secs(2),
        "{text}"
    );
}

#[test]
fn garbage_truncated_and_dropped_answers() {
    let sim = sim();
    let mut s = ready(&sim, &[]);
    fault(&sim, FaultKind::Garbage, None, "/api/users/me");
    let (text, err) = s.call("user_current", json!({}));
    assert!(err && text.contains("not JSON"), "{text}");
    fault(&sim, FaultKind::Truncated, None, "/api/users/me");
    let (text, err) = s.call("user_current", json!({}));
    assert!(err && text.contains("not JSON"), "{text}");
    // A dropped connection on a read is retried: one drop, then the answer.
    fault(&sim, FaultKind::DropConnection, Some(1), "/api/users/me");
    let (text, err) = s.call("user_current", json!({}));
    assert!(!err, "a dropped read should be retried: {text}");
    // Dropped every time: the call fails and says so.
    fault(&sim, FaultKind::DropConnection, None, "/api/users/me");
    let (text, err) = s.call("user_current", json!({}));
    assert!(err, "{text}");
    sim.clear_fault();
    assert!(!s.call("user_current", json!({})).1);
}

#[test]
fn writes_are_never_sent_twice() {
    let sim = sim();
    let mut s = ready(&sim, &[]);
    let (recent, _) = s.call("timer", json!({"action": "recent", "size": 1}));
    let id: i64 = recent
        .lines()
        .find_map(|l| l.strip_prefix('#'))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let (got, _) = s.call("timesheet", json!({"action": "get", "id": id}));
    let num = |name: &str| -> i64 {
        got.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: #")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let data = json!({"project": num("Project"), "activity": num("Activity"), "begin": "2026-02-03T09:00", "end": "2026-02-03T10:00"});
    for kind in [
        FaultKind::Status {
            status: 503,
            retry_after: Some("1".into()),
        },
        FaultKind::Status {
            status: 502,
            retry_after: None,
        },
        FaultKind::DropConnection,
    ] {
        fault(&sim, kind.clone(), Some(1), "/api/timesheets");
        let before = sim.write_count();
        let posts_before = sim.requests().iter().filter(|r| r.method == "POST").count();
        let (text, err) = s.call("timesheet", json!({"action": "create", "data": data}));
        assert!(err, "{kind:?}: {text}");
        let posts = sim.requests().iter().filter(|r| r.method == "POST").count() - posts_before;
        assert_eq!(posts, 1, "{kind:?}: the create was sent {posts} times");
        assert_eq!(
            sim.write_count(),
            before,
            "{kind:?}: the fault answered before the handler"
        );
    }
    sim.clear_fault();
    let (text, err) = s.call("timesheet", json!({"action": "create", "data": data}));
    assert!(!err, "{text}");
}

#[test]
fn a_token_revoked_mid_session() {
    let sim = sim();
    let mut s = ready(&sim, &[]);
    assert!(!s.call("user_current", json!({})).1);
    sim.revoke_token(&sim.demo_token());
    let (text, err) = s.call("user_current", json!({}));
    assert!(
        err && text.contains("401") && text.to_lowercase().contains("token"),
        "{text}"
    );
    // The server keeps answering.
    assert_eq!(s.request("ping", json!({}))["result"], json!({}));
}
