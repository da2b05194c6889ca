//! `kimai-mcp serve` end to end: the built binary on a loopback port against the simulated
//! Kimai, driven with raw HTTP so every status code and header can be checked.

use crate::util::http::{
    JSON_SSE, SERVER_TOKEN, SLUG_A, SLUG_B, Serve, call, init_body, post, request, session,
    tool_text,
};
use crate::util::{DEADLINE, TempDir, bin, sim};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn slug_route_lifecycle_and_status_codes() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let path = format!("/mcp/{SLUG_A}");
    let sid = session(&srv, &path, &[]);
    assert_eq!(sid.len(), 32);
    let h = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = post(&srv, &path, &h, &call(2, "user_current", json!({})));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(tool_text(&r).contains("Username: tony_teamlead"));
    // Security headers on every response.
    for (k, v) in [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", "default-src 'none'"),
    ] {
        assert_eq!(r.header(k), Some(v), "{k}");
    }
    // Request without a session: 400. Unknown session: 404.
    assert_eq!(
        post(&srv, &path, &[], &call(3, "user_current", json!({}))).status,
        400
    );
    assert_eq!(
        post(
            &srv,
            &path,
            &[("Mcp-Session-Id", "0123456789abcdef0123456789abcdef")],
            &call(3, "user_current", json!({}))
        )
        .status,
        404
    );
    // Unsupported protocol version header: 400; absent: fine.
    let bad = post(
        &srv,
        &path,
        &[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "1999-01-01"),
        ],
        &call(4, "user_current", json!({})),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("2025-11-25"), "{}", bad.body);
    assert_eq!(
        post(
            &srv,
            &path,
            &[
                ("Mcp-Session-Id", &sid),
                ("MCP-Protocol-Version", "2025-03-26")
            ],
            &call(5, "user_current", json!({}))
        )
        .status,
        200
    );
    assert_eq!(
        post(
            &srv,
            &path,
            &[("Mcp-Session-Id", &sid)],
            &call(6, "user_current", json!({}))
        )
        .status,
        200
    );
    // Accept and Content-Type checks.
    let r = request(
        &srv.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("Mcp-Session-Id", &sid),
        ],
        &call(7, "user_current", json!({})).to_string(),
    );
    assert_eq!(r.status, 406);
    let r = request(
        &srv.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "text/plain"),
            ("Accept", JSON_SSE),
            ("Mcp-Session-Id", &sid),
        ],
        "{}",
    );
    assert_eq!(r.status, 415);
    // Malformed JSON: 400 with -32700 and a null id.
    let r = request(
        &srv.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Accept", JSON_SSE),
            ("Mcp-Session-Id", &sid),
        ],
        "{oops",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32700));
    assert_eq!(r.json()["id"], Value::Null);
    // GET: no standalone stream (405), PUT: 405.
    let r = request(
        &srv.addr,
        "GET",
        &path,
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
        "",
    );
    assert_eq!(r.status, 405);
    assert!(r.header("Allow").is_some());
    assert_eq!(request(&srv.addr, "PUT", &path, &[], "").status, 405);
    // DELETE ends the session; then 404.
    assert_eq!(
        request(&srv.addr, "DELETE", &path, &[("Mcp-Session-Id", &sid)], "").status,
        200
    );
    assert_eq!(
        post(&srv, &path, &h, &call(8, "user_current", json!({}))).status,
        404
    );
    assert_eq!(
        request(&srv.addr, "DELETE", &path, &[("Mcp-Session-Id", &sid)], "").status,
        404
    );
    // Unknown paths: 404.
    assert_eq!(request(&srv.addr, "GET", "/nope", &[], "").status, 404);
}

#[test]
fn header_route_needs_the_server_token_and_a_kimai_token() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let bearer = format!("Bearer {SERVER_TOKEN}");
    let tony = sim.token("tony_teamlead").unwrap();
    let r = post(&srv, "/mcp", &[("X-Kimai-Token", &tony)], &init_body());
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer realm=\"mcp\""));
    assert!(
        r.body
            .contains("Invalid or missing MCP server authentication token")
    );
    let r = post(
        &srv,
        "/mcp",
        &[
            ("Authorization", "Bearer wrong-token-0123456789"),
            ("X-Kimai-Token", &tony),
        ],
        &init_body(),
    );
    assert_eq!(r.status, 401);
    assert!(
        r.header("WWW-Authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let r = post(&srv, "/mcp", &[("Authorization", &bearer)], &init_body());
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Kimai API token is required"), "{}", r.body);
    // A bare token (no "Bearer") is accepted too.
    let sid = session(
        &srv,
        "/mcp",
        &[("Authorization", SERVER_TOKEN), ("X-Kimai-Token", &tony)],
    );
    let h = [
        ("Authorization", bearer.as_str()),
        ("X-Kimai-Token", tony.as_str()),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    let r = post(&srv, "/mcp", &h, &call(2, "user_current", json!({})));
    assert!(tool_text(&r).contains("tony_teamlead"));
    // The session is bound to the credentials that created it: another user's token gets 404.
    let john = sim.token("john_user").unwrap();
    let r = post(
        &srv,
        "/mcp",
        &[
            ("Authorization", &bearer),
            ("X-Kimai-Token", &john),
            ("Mcp-Session-Id", &sid),
        ],
        &call(3, "user_current", json!({})),
    );
    assert_eq!(r.status, 404, "{r:?}");
    // A slug user cannot use it either.
    let r = post(
        &srv,
        &format!("/mcp/{SLUG_B}"),
        &[("Mcp-Session-Id", &sid)],
        &call(3, "user_current", json!({})),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn kimai_url_is_required_without_a_default() {
    let sim = sim();
    let dir = TempDir::new();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--port",
            "0",
            "--server-token",
            SERVER_TOKEN,
            "--rate-limit-rpm",
            "0",
        ])
        .env_remove("DEFAULT_KIMAI_URL")
        .env("RUST_LOG", "info")
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let start = Instant::now();
    let mut addr = String::new();
    while start.elapsed() < DEADLINE {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = rest.split('/').next().unwrap().to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "serve did not start");
    let r = request(
        &addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", JSON_SSE),
            ("Authorization", &format!("Bearer {SERVER_TOKEN}")),
            ("X-Kimai-Token", &sim.demo_token()),
        ],
        &init_body().to_string(),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Kimai URL is required"), "{}", r.body);
    // The legacy SSE stream gives the same answer.
    let r = request(
        &addr,
        "GET",
        "/sse",
        &[
            ("Authorization", SERVER_TOKEN),
            ("X-Kimai-Token", &sim.demo_token()),
        ],
        "",
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Kimai URL is required"), "{}", r.body);
    let r = request(
        &addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", JSON_SSE),
            ("Authorization", &format!("Bearer {SERVER_TOKEN}")),
            ("X-Kimai-Token", &sim.demo_token()),
            ("X-Kimai-URL", &sim.url()),
        ],
        &init_body().to_string(),
    );
    // Without --default-kimai-url or a users file, no Kimai is allowed until the operator
    // names one: the answer says how.
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("--allowed-kimai-url"), "{}", r.body);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn two_users_at_once_never_see_each_others_data() {
    let sim = sim();
    let srv = Arc::new(Serve::start(&sim, &["--rate-limit-rpm", "0"]));
    let mut handles = Vec::new();
    for (slug, name) in [(SLUG_A, "tony_teamlead"), (SLUG_B, "john_user")] {
        let srv = srv.clone();
        handles.push(std::thread::spawn(move || {
            let path = format!("/mcp/{slug}");
            let sid = session(&srv, &path, &[]);
            for i in 0..15 {
                let r = post(
                    &srv,
                    &path,
                    &[("Mcp-Session-Id", &sid)],
                    &call(10 + i, "user_current", json!({})),
                );
                let t = tool_text(&r);
                assert!(t.contains(&format!("Username: {name}")), "{name} saw: {t}");
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn stateless_2026_requests_and_header_checks() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let path = format!("/mcp/{SLUG_A}");
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let body = json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta": meta}});
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "server/discover"),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    assert!(r.header("Mcp-Session-Id").is_none());
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta": meta, "name": "config", "arguments": {"type": "version"}}});
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "config"),
        ],
        &body,
    );
    assert_eq!(r.status, 200);
    assert!(tool_text(&r).contains("2.65.0"));
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "user_current"),
        ],
        &body,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32020));
    let body = json!({"jsonrpc":"2.0","id":3,"method":"nope/nope","params":{"_meta": meta}});
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "nope/nope"),
        ],
        &body,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], json!(-32601));
    assert_eq!(r.json()["id"], json!(3));
    // `initialize` is no method of this era: 404 and -32601 too.
    let body = json!({"jsonrpc":"2.0","id":5,"method":"initialize","params":{"_meta": meta}});
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "initialize"),
        ],
        &body,
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!(-32601)),
        "{}",
        r.body
    );
    let body = json!({"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let r = post(&srv, &path, &[], &body);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32022));
    assert_eq!(
        r.json()["error"]["data"],
        json!({"supported": ["2026-07-28"], "requested": "2099-01-01"})
    );
    assert_eq!(r.json()["id"], json!(4));
    // An unknown version in the header: the same error, echoing the header's version.
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "v999.0.0"),
            ("Mcp-Method", "tools/list"),
        ],
        &body,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["data"]["requested"], json!("v999.0.0"));
    assert_eq!(r.json()["id"], json!(4));
    // The envelope: a 2026-07-28 request (by its header) without `_meta`, or whose `_meta`
    // does not name the version, gets 400 and -32602 with its id.
    for (id, params) in [
        (101, json!({})),
        (
            102,
            json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
        ),
    ] {
        let body = json!({"jsonrpc":"2.0","id":id,"method":"server/discover","params":params});
        let r = post(
            &srv,
            &path,
            &[
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "server/discover"),
            ],
            &body,
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], json!(-32602));
        assert_eq!(r.json()["id"], json!(id));
    }
    // Required headers: Mcp-Method always, Mcp-Name for a tool call: 400 and -32020.
    let body = json!({"jsonrpc":"2.0","id":6,"method":"tools/list","params":{"_meta": meta}});
    let r = post(
        &srv,
        &path,
        &[("MCP-Protocol-Version", "2026-07-28")],
        &body,
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32020)),
        "{}",
        r.body
    );
    assert_eq!(r.json()["id"], json!(6));
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta": meta, "name": "config", "arguments": {"type": "version"}}});
    let r = post(
        &srv,
        &path,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
        ],
        &body,
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32020)),
        "{}",
        r.body
    );
    // The header route follows the same rules.
    let header_route = [
        ("Authorization", "Bearer test-server-token-0123456789abcdef"),
        ("X-Kimai-Token", "unused-0123456789abcdef"),
        ("MCP-Protocol-Version", "2026-07-28"),
    ];
    let r = post(&srv, "/mcp", &header_route, &body);
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32020)),
        "{}",
        r.body
    );
    assert_eq!(r.json()["id"], json!(7));
}

#[test]
fn a_call_with_a_progress_token_streams_progress_then_the_result() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let path = format!("/mcp/{SLUG_A}");
    let sid = session(&srv, &path, &[]);
    let body = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"timesheet","arguments":{"action":"list","filters":{"calculate_stats":true}},"_meta":{"progressToken":"p"}}});
    let r = post(&srv, &path, &[("Mcp-Session-Id", &sid)], &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/event-stream"));
    assert_eq!(r.header("X-Accel-Buffering"), Some("no"));
    let events: Vec<Value> = r
        .body
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events.len() >= 2, "{}", r.body);
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e["method"] == "notifications/progress")
    );
    let last = events.last().unwrap();
    assert_eq!(last["id"], json!(9));
    assert!(
        last["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("## Statistics")
    );
}

#[test]
fn health_counts_only() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    session(&srv, &format!("/mcp/{SLUG_A}"), &[]);
    let r = request(&srv.addr, "GET", "/health", &[], "");
    assert_eq!(r.status, 200);
    let h = r.json();
    // The Python server's wording, which its deployment guide's checks expect.
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["transport"], "streamable-http");
    assert_eq!(h["transports"], json!(["streamable-http", "sse"]));
    assert_eq!(h["user_count"], 2);
    assert_eq!(h["active_sessions"], 1);
    assert_eq!(h["mode"], "multi-user");
    assert_eq!(h["default_kimai_url"], json!(sim.url()));
    assert!(!r.body.contains(SLUG_A) && !r.body.contains(&sim.demo_token()));
}

#[test]
fn sessions_expire_and_capacity_is_enforced() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--max-sessions",
            "2",
            "--session-ttl",
            "0.6",
        ],
    );
    let path = format!("/mcp/{SLUG_A}");
    let a = session(&srv, &path, &[]);
    let _b = session(&srv, &path, &[]);
    let r = post(&srv, &path, &[], &init_body());
    assert_eq!(r.status, 503);
    assert!(r.header("Retry-After").is_some());
    std::thread::sleep(Duration::from_millis(900));
    // Expired: 404, and the place is free again.
    assert_eq!(
        post(
            &srv,
            &path,
            &[("Mcp-Session-Id", &a)],
            &call(2, "user_current", json!({}))
        )
        .status,
        404
    );
    assert_eq!(post(&srv, &path, &[], &init_body()).status, 200);
    let start = Instant::now();
    while !srv.logs().contains("Cleaned up client session") && start.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        srv.logs().contains("Cleaned up client session"),
        "the sweeper did not run"
    );
}

#[test]
fn rate_limit_and_enumeration_guard() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "5"]);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(request(&srv.addr, "GET", "/health", &[], "").status);
    }
    assert_eq!(&statuses[..5], &[200; 5]);
    let r = request(&srv.addr, "GET", "/health", &[], "");
    assert_eq!(r.status, 429);
    assert!(r.header("Retry-After").is_some());

    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let started = Instant::now();
    let mut codes = Vec::new();
    for i in 0..12 {
        codes.push(
            post(
                &srv,
                &format!("/mcp/unknown-slug-guess-{i:04}"),
                &[],
                &init_body(),
            )
            .status,
        );
    }
    // Every miss was delayed (at least 100 ms each for the first ten).
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(&codes[..10], &[404; 10]);
    assert_eq!(codes[11], 429, "{codes:?}");
    // Blocked: even the right slug gets 429 from this address now.
    assert_eq!(
        post(&srv, &format!("/mcp/{SLUG_A}"), &[], &init_body()).status,
        429
    );
}

#[test]
fn host_origin_body_limit_and_forwarded_headers() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--allowed-origin",
            "https://claude.ai",
        ],
    );
    let path = format!("/mcp/{SLUG_A}");
    let r = post(
        &srv,
        &path,
        &[
            ("Host", "evil.example.com"),
            ("Origin", "http://evil.example.com"),
        ],
        &init_body(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        post(
            &srv,
            &path,
            &[("Origin", "http://evil.example.com")],
            &init_body()
        )
        .status,
        403
    );
    let r = post(
        &srv,
        &path,
        &[("Origin", "https://claude.ai")],
        &init_body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("https://claude.ai")
    );
    assert!(r.header("Access-Control-Allow-Credentials").is_none());
    let port = srv.addr.rsplit(':').next().unwrap();
    assert_eq!(
        post(
            &srv,
            &path,
            &[("Origin", &format!("http://localhost:{port}"))],
            &init_body()
        )
        .status,
        200
    );
    // Body limit: 413 without reading a huge body.
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let r = request(
        &srv.addr,
        "POST",
        &path,
        &[("Content-Type", "application/json"), ("Accept", JSON_SSE)],
        &big,
    );
    assert_eq!(r.status, 413);
    // X-Forwarded-For from an untrusted peer is ignored: the log names the real peer.
    request(
        &srv.addr,
        "GET",
        "/health",
        &[("X-Forwarded-For", "203.0.113.9")],
        "",
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !srv.logs().contains("203.0.113.9"),
        "an untrusted X-Forwarded-For was believed"
    );
    // From a trusted proxy it is honoured.
    let srv2 = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--trusted-proxy", "127.0.0.1"],
    );
    request(
        &srv2.addr,
        "GET",
        "/health",
        &[("X-Forwarded-For", "203.0.113.9")],
        "",
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        srv2.logs().contains("203.0.113.9 GET /health 200"),
        "{}",
        srv2.logs()
    );
}

#[test]
fn require_https_refuses_plain_requests_unless_a_trusted_proxy_says_https() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--require-https",
            "--trusted-proxy",
            "127.0.0.1",
        ],
    );
    let path = format!("/mcp/{SLUG_A}");
    let r = post(&srv, &path, &[], &init_body());
    assert_eq!(r.status, 403);
    assert!(r.body.contains("HTTPS"), "{}", r.body);
    assert_eq!(
        post(&srv, &path, &[("X-Forwarded-Proto", "https")], &init_body()).status,
        200
    );
}

#[test]
fn no_secret_reaches_the_logs() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let tony = sim.token("tony_teamlead").unwrap();
    let sid = session(&srv, &format!("/mcp/{SLUG_A}"), &[]);
    post(
        &srv,
        &format!("/mcp/{SLUG_A}"),
        &[("Mcp-Session-Id", &sid)],
        &call(
            2,
            "timesheet",
            json!({"action": "list", "filters": {"size": 2, "term": "secret-search-words"}}),
        ),
    );
    let hsid = session(
        &srv,
        "/mcp",
        &[
            ("Authorization", &format!("Bearer {SERVER_TOKEN}")),
            ("X-Kimai-Token", &tony),
        ],
    );
    post(
        &srv,
        "/mcp",
        &[
            ("Authorization", &format!("Bearer {SERVER_TOKEN}")),
            ("X-Kimai-Token", &tony),
            ("Mcp-Session-Id", &hsid),
        ],
        &call(3, "user_current", json!({})),
    );
    post(&srv, "/mcp/not-a-real-slug-123456", &[], &init_body());
    std::thread::sleep(Duration::from_millis(200));
    let logs = srv.logs();
    assert!(
        logs.contains("kimai_mcp::audit") && logs.contains("tool=timesheet"),
        "{logs}"
    );
    for secret in [
        SLUG_A,
        SLUG_B,
        SERVER_TOKEN,
        tony.as_str(),
        "not-a-real-slug-123456",
        "secret-search-words",
        sid.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the log: {secret}");
    }
}

#[test]
fn instance_id_prefixes_session_ids_for_proxy_affinity() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0", "--instance-id", "east-1"]);
    let path = format!("/mcp/{SLUG_A}");
    let sid = session(&srv, &path, &[]);
    assert!(
        sid.starts_with("east-1.") && sid.len() == "east-1.".len() + 32,
        "{sid}"
    );
    let r = post(
        &srv,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &call(2, "user_current", json!({})),
    );
    assert!(tool_text(&r).contains("tony_teamlead"));
}

#[test]
fn metrics_behind_the_server_token() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let path = format!("/mcp/{SLUG_A}");
    let sid = session(&srv, &path, &[]);
    post(
        &srv,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &call(2, "user_current", json!({})),
    );
    post(
        &srv,
        &path,
        &[("Mcp-Session-Id", &sid)],
        &call(3, "config", json!({"type": "nope"})),
    );
    post(&srv, "/mcp/unknown-slug-0000000000", &[], &init_body());
    assert_eq!(request(&srv.addr, "GET", "/metrics", &[], "").status, 401);
    assert_eq!(
        request(
            &srv.addr,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer wrong-0123456789abcdef")],
            ""
        )
        .status,
        401
    );
    let r = request(
        &srv.addr,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {SERVER_TOKEN}"))],
        "",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = &r.body;
    assert!(
        m.contains("kimai_mcp_http_requests_total{endpoint=\"mcp_slug\",status=\"200\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("kimai_mcp_tool_calls_total{tool=\"user_current\",outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("kimai_mcp_tool_calls_total{tool=\"config\",outcome=\"error\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("kimai_mcp_kimai_request_duration_seconds_count 1"),
        "{m}"
    );
    assert!(
        m.contains("kimai_mcp_sessions{transport=\"streamable-http\"} 1"),
        "{m}"
    );
    assert!(m.contains("kimai_mcp_unknown_slugs_total 1"), "{m}");
    assert!(m.contains("kimai_mcp_rate_limited_total 0"), "{m}");
    assert!(!m.contains(SLUG_A) && !m.contains("unknown-slug"), "{m}");
}

#[test]
fn a_public_host_name_is_accepted_behind_a_proxy() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &["--rate-limit-rpm", "0", "--public-host", "mcp.example.test"],
    );
    let path = format!("/mcp/{SLUG_A}");
    assert_eq!(
        post(&srv, &path, &[("Host", "mcp.example.test")], &init_body()).status,
        200
    );
    assert_eq!(
        post(&srv, &path, &[("Host", "evil.example.com")], &init_body()).status,
        403
    );
}

/// The 2026-07-28 rules of Streamable HTTP on one route: (status, JSON-RPC code, id) of each
/// probe. `auth` are the route's own headers.
fn stateless_rules(srv: &Serve, path: &str, auth: &[(&str, &str)]) -> Vec<(u16, Value, Value)> {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let probes: Vec<(Vec<(&str, &str)>, Value)> = vec![
        // 1. no _meta, the header names the era
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "server/discover"),
            ],
            json!({"jsonrpc":"2.0","id":101,"method":"server/discover","params":{}}),
        ),
        // 2. _meta without the version
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "server/discover"),
            ],
            json!({"jsonrpc":"2.0","id":102,"method":"server/discover","params":{"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}}),
        ),
        // 3. an unknown version in header and body
        (
            vec![
                ("MCP-Protocol-Version", "v999.0.0"),
                ("Mcp-Method", "server/discover"),
            ],
            json!({"jsonrpc":"2.0","id":301,"method":"server/discover","params":{"_meta": {"io.modelcontextprotocol/protocolVersion": "v999.0.0", "io.modelcontextprotocol/clientCapabilities": {}}}}),
        ),
        // 4. header and body disagree
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "server/discover"),
            ],
            json!({"jsonrpc":"2.0","id":302,"method":"server/discover","params":{"_meta": {"io.modelcontextprotocol/protocolVersion": "v999.0.0", "io.modelcontextprotocol/clientCapabilities": {}}}}),
        ),
        // 5. no Mcp-Method
        (
            vec![("MCP-Protocol-Version", "2026-07-28")],
            json!({"jsonrpc":"2.0","id":401,"method":"tools/list","params":{"_meta": meta}}),
        ),
        // 6. a tool call without Mcp-Name
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
            ],
            json!({"jsonrpc":"2.0","id":402,"method":"tools/call","params":{"_meta": meta, "name": "config", "arguments": {"type": "version"}}}),
        ),
        // 7. initialize is no method of this era
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "initialize"),
            ],
            json!({"jsonrpc":"2.0","id":500,"method":"initialize","params":{"_meta": meta}}),
        ),
        // 8. a good tool call
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "config"),
            ],
            json!({"jsonrpc":"2.0","id":600,"method":"tools/call","params":{"_meta": meta, "name": "config", "arguments": {"type": "version"}}}),
        ),
    ];
    probes
        .into_iter()
        .map(|(mut headers, body)| {
            headers.extend_from_slice(auth);
            let r = post(srv, path, &headers, &body);
            let v = r.json();
            (r.status, v["error"]["code"].clone(), v["id"].clone())
        })
        .collect()
}

#[test]
fn the_2026_rules_hold_on_the_slug_and_the_header_route() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let token = sim.demo_token();
    let header_route = [
        ("Authorization", "Bearer test-server-token-0123456789abcdef"),
        ("X-Kimai-Token", token.as_str()),
    ];
    let expected = vec![
        (400, json!(-32602), json!(101)),
        (400, json!(-32602), json!(102)),
        (400, json!(-32022), json!(301)),
        (400, json!(-32020), json!(302)),
        (400, json!(-32020), json!(401)),
        (400, json!(-32020), json!(402)),
        (404, json!(-32601), json!(500)),
        (200, Value::Null, json!(600)),
    ];
    assert_eq!(
        stateless_rules(&srv, &format!("/mcp/{SLUG_A}"), &[]),
        expected
    );
    assert_eq!(stateless_rules(&srv, "/mcp", &header_route), expected);
}

#[test]
fn name_lists_are_remembered_per_token_across_stateless_requests_and_sessions() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let args = json!({"action": "list", "filters": {"calculate_stats": true}});
    let stateless = |slug: &str, id: i64| {
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"_meta": meta, "name": "timesheet", "arguments": args}});
        let r = post(
            &srv,
            &format!("/mcp/{slug}"),
            &[
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "timesheet"),
            ],
            &body,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let text = tool_text(&r);
        assert!(text.contains("## Statistics ("), "{text}");
        text
    };
    let lookups = || {
        let mut l: Vec<String> = sim
            .requests()
            .into_iter()
            .filter(|r| r.path != "/api/timesheets")
            .map(|r| r.path)
            .collect();
        l.sort();
        sim.clear_requests();
        l
    };
    sim.clear_requests();
    let first = stateless(SLUG_A, 1);
    assert_eq!(
        lookups(),
        ["/api/activities", "/api/customers", "/api/projects"]
    );
    // The same answer (a running record's hours may tick on between calls: compare the
    // shape, not the figures).
    let same = |a: &str, b: &str| {
        a.lines().next() == b.lines().next() && a.lines().count() == b.lines().count()
    };
    // Stateless requests have no session: the names are remembered per token.
    assert!(same(&stateless(SLUG_A, 2), &first));
    assert!(lookups().is_empty());
    // A session of the same token shares them too.
    let sid = session(&srv, &format!("/mcp/{SLUG_A}"), &[]);
    let r = post(
        &srv,
        &format!("/mcp/{SLUG_A}"),
        &[("Mcp-Session-Id", &sid)],
        &call(3, "timesheet", args.clone()),
    );
    assert!(same(&tool_text(&r), &first));
    assert!(lookups().is_empty());
    // Another token reads its own (what one token may see is never shown to another).
    stateless(SLUG_B, 4);
    assert_eq!(
        lookups(),
        ["/api/activities", "/api/customers", "/api/projects"]
    );
}
