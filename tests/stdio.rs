//! The stdio server end to end: handshake in every version, both eras, both tools, Kimai
//! failures as `isError` results, malformed input, concurrency, cancellation and shutdown.

use crate::util::{Server, sim};
use kimai_mcp::sim::{Fault, FaultKind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MODERN: &str = "2026-07-28";

fn modern_meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}})
}

fn demo_username(sim: &kimai_mcp::sim::Sim) -> String {
    let token = sim.demo_token();
    sim.users()
        .into_iter()
        .find(|u| u.token == token)
        .expect("demo user listed")
        .username
}

#[test]
fn handshake_in_every_supported_version() {
    let sim = sim();
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut s = Server::stdio(&sim, &sim.demo_token());
        let r = s.initialize(version);
        assert_eq!(r["result"]["protocolVersion"], json!(version), "{r}");
        assert_eq!(r["result"]["serverInfo"]["name"], json!("kimai-mcp"));
        assert_eq!(
            r["result"]["capabilities"]["tools"]["listChanged"],
            json!(false)
        );
        let tools = s.request("tools/list", json!({}));
        assert_eq!(
            tools["result"]["tools"].as_array().unwrap().len(),
            registry_names().len(),
            "{tools}"
        );
    }
    // An unknown version is answered with the newest one we speak.
    let mut s = Server::stdio(&sim, &sim.demo_token());
    assert_eq!(
        s.initialize("2030-01-01")["result"]["protocolVersion"],
        json!("2025-11-25")
    );
}

#[test]
fn the_server_starts_without_contacting_kimai() {
    // Nothing listens on port 9: initialize and tools/list still answer at once.
    let mut s = Server::spawn(
        &["stdio"],
        &[
            ("KIMAI_URL", "http://127.0.0.1:9"),
            ("KIMAI_API_TOKEN", "x"),
        ],
    );
    let started = Instant::now();
    assert_eq!(
        s.initialize("2025-11-25")["result"]["protocolVersion"],
        json!("2025-11-25")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let (text, is_error) = s.call("user_current", json!({}));
    assert!(is_error);
    assert!(
        text.contains("127.0.0.1:9") || text.to_lowercase().contains("connect"),
        "{text}"
    );
}

#[test]
fn modern_era_discover_list_and_call_without_handshake() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    let d = s.request("server/discover", json!({"_meta": modern_meta()}));
    assert_eq!(d["result"]["supportedVersions"], json!([MODERN]), "{d}");
    assert_eq!(d["result"]["resultType"], json!("complete"));
    assert!(d["result"]["ttlMs"].as_u64().is_some());
    assert_eq!(
        d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        json!("kimai-mcp")
    );
    let l = s.request("tools/list", json!({"_meta": modern_meta()}));
    // The list depends on who asks (read-only users, tool selections): private.
    assert_eq!(l["result"]["cacheScope"], json!("private"));
    assert_eq!(
        l["result"]["tools"].as_array().unwrap().len(),
        registry_names().len()
    );
    let c = s.request(
        "tools/call",
        json!({"_meta": modern_meta(), "name": "user_current", "arguments": {}}),
    );
    assert_eq!(c["result"]["resultType"], json!("complete"));
    assert!(
        c["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains(&demo_username(&sim))
    );
    // Unsupported modern version.
    let bad = s.request(
        "tools/list",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}}}),
    );
    assert_eq!(bad["error"]["code"], json!(-32022));
    assert_eq!(bad["error"]["data"]["supported"], json!([MODERN]));
    assert_eq!(bad["error"]["data"]["requested"], json!("2099-01-01"));
}

/// The tool names in registry order (the order `tools/list` must show).
fn registry_names() -> Vec<&'static str> {
    kimai_mcp::tools::REGISTRY.iter().map(|t| t.name).collect()
}

#[test]
fn tools_list_describes_every_tool() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    let r = s.request("tools/list", json!({}));
    let tools = r["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, registry_names());
    for t in tools {
        assert!(t["description"].as_str().unwrap().len() > 40);
        assert!(t["annotations"]["readOnlyHint"].is_boolean());
        assert_eq!(t["inputSchema"]["additionalProperties"], json!(false));
    }
    let config = tools.iter().find(|t| t["name"] == "config").unwrap();
    assert_eq!(config["annotations"]["readOnlyHint"], json!(true));
    assert_eq!(
        config["inputSchema"]["properties"]["type"]["enum"],
        json!(["timesheet", "colors", "plugins", "version", "all"])
    );
}

#[test]
fn user_current_shows_the_token_owner() {
    let sim = sim();
    for user in sim.users() {
        let mut s = Server::stdio(&sim, &user.token);
        s.initialize("2025-11-25");
        let (text, is_error) = s.call("user_current", json!({}));
        if is_error {
            // The seeded disabled user cannot log in: Kimai says so.
            assert!(
                text.contains("401") && text.contains("disabled"),
                "{}: {text}",
                user.username
            );
            continue;
        }
        assert!(text.starts_with("Current user\n"), "{text}");
        assert!(text.contains(&format!("ID: {}\n", user.id)), "{text}");
        assert!(
            text.contains(&format!("Username: {}", user.username)),
            "{text}"
        );
        assert!(text.contains("Timezone: "), "{text}");
        if user.role != "ROLE_USER" {
            assert!(text.contains(user.role), "{}: {text}", user.role);
        }
    }
}

#[test]
fn config_every_type() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(!err);
    assert!(
        text.contains("Kimai version: 2.65.0") && text.contains("Version id: 26500"),
        "{text}"
    );
    let (text, err) = s.call("config", json!({"type": "timesheet"}));
    assert!(!err);
    assert!(
        text.contains("Tracking mode: default") && text.contains("Running records per user: 1"),
        "{text}"
    );
    let (text, err) = s.call("config", json!({"type": "colors"}));
    assert!(!err);
    assert!(
        text.starts_with("Colors (27):\n- Silver: #c0c0c0\n- Gray: #808080"),
        "{text}"
    );
    let (text, err) = s.call("config", json!({"type": "plugins"}));
    assert!(!err);
    assert!(text.starts_with("Plugins ("), "{text}");
    let r = s.request(
        "tools/call",
        json!({"name": "config", "arguments": {"type": "all"}}),
    );
    let blocks = r["result"]["content"].as_array().unwrap();
    assert_eq!(blocks.len(), 4, "{r}");
    assert!(
        blocks[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Kimai version:")
    );
    assert!(
        blocks[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Timesheet configuration")
    );
    assert!(blocks[2]["text"].as_str().unwrap().starts_with("Plugins"));
    assert!(blocks[3]["text"].as_str().unwrap().starts_with("Colors"));
}

#[test]
fn config_all_reads_the_four_parts_in_parallel_and_shows_a_failure_inline() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    // Each part takes 600 ms; in sequence the call would take 2.4 s.
    sim.set_fault(Fault {
        kind: FaultKind::Delay(Duration::from_millis(600)),
        times: None,
        path_prefix: None,
    });
    let started = Instant::now();
    let (_, err) = s.call("config", json!({"type": "all"}));
    let took = started.elapsed();
    assert!(!err);
    assert!(
        took < Duration::from_millis(2000),
        "config all took {took:?}: not parallel"
    );
    sim.clear_fault();
    // Colors fail with a 500: the other three parts still show, the failure is named inline.
    sim.set_fault(Fault {
        kind: FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        times: None,
        path_prefix: Some("/api/config/colors".into()),
    });
    let (text, err) = s.call("config", json!({"type": "all"}));
    assert!(!err, "{text}");
    assert!(text.contains("Kimai version: 2.65.0"));
    assert!(text.contains("Colors: unavailable"), "{text}");
    assert!(text.contains("500"), "{text}");
}

#[test]
fn kimai_failures_become_is_error_results_with_kimais_message() {
    let sim = sim();
    let token = sim.demo_token();
    let mut s = Server::stdio(&sim, &token);
    s.initialize("2025-11-25");
    // 403 from Kimai.
    sim.set_fault(Fault {
        kind: FaultKind::Status {
            status: 403,
            retry_after: None,
        },
        times: Some(1),
        path_prefix: Some("/api/version".into()),
    });
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(err);
    assert!(text.contains("403") && text.contains("Forbidden"), "{text}");
    // Garbage instead of JSON.
    sim.set_fault(Fault {
        kind: FaultKind::Garbage,
        times: Some(1),
        path_prefix: Some("/api/version".into()),
    });
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(err, "{text}");
    // A revoked token: 401, and every part of `all` fails, so the call fails.
    sim.revoke_token(&token);
    let (text, err) = s.call("user_current", json!({}));
    assert!(err);
    assert!(text.contains("401"), "{text}");
    assert!(text.to_lowercase().contains("token"), "{text}");
    let (text, err) = s.call("config", json!({"type": "all"}));
    assert!(err, "{text}");
    // The server keeps serving.
    assert_eq!(s.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn invalid_arguments_are_tool_errors_naming_the_field() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    let (text, err) = s.call("config", json!({"type": "everything"}));
    assert!(err);
    assert!(
        text.contains("'type' must be one of: timesheet, colors, plugins, version, all"),
        "{text}"
    );
    let (text, err) = s.call("config", json!({}));
    assert!(err);
    assert!(text.contains("argument 'type' is required"), "{text}");
    let (text, err) = s.call("user_current", json!({"verbose": true}));
    assert!(err);
    assert!(
        text.contains("takes no arguments") && text.contains("verbose"),
        "{text}"
    );
    // No request reached Kimai for any of them.
    assert!(
        sim.requests().is_empty(),
        "{:?}",
        sim.requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    // Unknown tool: protocol error.
    let r = s.request("tools/call", json!({"name": "timesheets", "arguments": {}}));
    assert_eq!(r["error"]["code"], json!(-32602));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Available tools: {}", registry_names().join(", ")))
    );
}

#[test]
fn malformed_lines_get_errors_and_the_server_keeps_serving() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.send_raw("{not json");
    let r = s.recv();
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    s.send_raw("[]");
    assert_eq!(s.recv()["error"]["code"], json!(-32600));
    s.send_raw(r#"{"jsonrpc":"2.0","id":1}"#);
    let r = s.recv();
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(1), json!(-32600))
    );
    s.send_raw(r#"{"jsonrpc":"1.0","id":2,"method":"ping"}"#);
    assert_eq!(s.recv()["error"]["code"], json!(-32600));
    s.send_raw(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#);
    assert_eq!(s.recv()["error"]["code"], json!(-32600));
    s.send_raw("\"just a string\"");
    assert_eq!(s.recv()["error"]["code"], json!(-32600));
    s.send_raw("");
    s.send_raw("   ");
    s.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"p\xffng\"}");
    assert_eq!(s.recv()["error"]["code"], json!(-32700));
    // Before initialize: tools are refused with an error (never silence), unknown methods -32601.
    let r = s.request("tools/list", json!({}));
    assert_eq!(r["error"]["code"], json!(-32600));
    let r = s.request("resources/list", json!({}));
    assert_eq!(r["error"]["code"], json!(-32601));
    assert_eq!(s.request("ping", json!({}))["result"], json!({}));
    s.initialize("2025-11-25");
    // A second initialize is refused.
    let r = s.request("initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}));
    assert_eq!(r["error"]["code"], json!(-32600));
    // Notifications and client responses get no answer; the next request is answered.
    s.send(&json!({"jsonrpc": "2.0", "method": "notifications/whatever"}));
    s.send(&json!({"jsonrpc": "2.0", "id": 55, "result": {}}));
    let r = s.request("ping", json!({}));
    assert_eq!(r["result"], json!({}));
}

#[test]
fn batches_follow_the_negotiated_version() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-03-26");
    s.send_raw(r#"[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"config","arguments":{"type":"version"}}}]"#);
    let r = s.recv();
    let items = r
        .as_array()
        .unwrap_or_else(|| panic!("expected a batch response: {r}"));
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], json!("a"));
    assert!(
        items[1]["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("2.65.0")
    );

    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-06-18");
    s.send_raw(r#"[{"jsonrpc":"2.0","id":"a","method":"ping"}]"#);
    let r = s.recv();
    assert_eq!(r["error"]["code"], json!(-32600), "{r}");
}

#[test]
fn a_slow_tool_call_does_not_hold_up_ping() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    sim.set_fault(Fault {
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: Some(1),
        path_prefix: Some("/api/users/me".into()),
    });
    s.send(&json!({"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"user_current","arguments":{}}}));
    std::thread::sleep(Duration::from_millis(100));
    s.send(&json!({"jsonrpc":"2.0","id":"quick","method":"ping"}));
    let first = s.recv();
    assert_eq!(first["id"], json!("quick"), "ping waited for the slow call");
    let second = s.recv();
    assert_eq!(second["id"], json!("slow"));
}

#[test]
fn a_cancelled_call_sends_no_result() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    sim.set_fault(Fault {
        kind: FaultKind::Delay(Duration::from_millis(800)),
        times: None,
        path_prefix: None,
    });
    s.send(&json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"config","arguments":{"type":"version"}}}));
    std::thread::sleep(Duration::from_millis(100));
    s.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"user"}}));
    // Everything that arrives until well past the delay, then up to the answer of a later ping,
    // then for a moment more: no message may carry the cancelled id.
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_millis(1200);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match s.try_recv(left) {
            Some(msg) => seen.push(msg),
            None => break,
        }
    }
    sim.clear_fault();
    let (r, notes) = s.request_with_notes("ping", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");
    seen.extend(notes);
    let late = s.try_recv(Duration::from_millis(300));
    assert!(
        late.is_none(),
        "a message after the ping's answer: {late:?}"
    );
    let stray: Vec<&Value> = seen.iter().filter(|m| m["id"] == json!(7)).collect();
    assert!(
        stray.is_empty(),
        "a message for the cancelled call arrived: {stray:?}"
    );
    assert!(s.stderr().contains("outcome=cancelled"), "{}", s.stderr());
}

#[test]
fn eof_shuts_down_with_status_zero() {
    let sim = sim();
    let mut s = Server::stdio(&sim, &sim.demo_token());
    s.initialize("2025-11-25");
    s.close_stdin();
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
fn stdout_carries_protocol_only_and_logs_never_show_the_token() {
    let sim = sim();
    let token = sim.demo_token();
    let mut s = Server::stdio(&sim, &token);
    s.initialize("2025-11-25");
    s.call("user_current", json!({}));
    s.call("config", json!({"type": "all"}));
    s.request("nope/nope", json!({}));
    s.close_stdin();
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
    // Every stdout line was parsed as JSON by `recv`; nothing else is left on stdout.
    if let Some(extra) = s.try_recv(Duration::from_millis(100)) {
        panic!("unexpected stdout line: {extra}");
    }
    let logs = s.stderr();
    assert!(
        logs.contains("tool=user_current"),
        "audit line missing: {logs}"
    );
    assert!(!logs.contains(&token), "the token reached the log");
}
