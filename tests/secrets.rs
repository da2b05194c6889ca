//! No secret in any output: every transport at `RUST_LOG=trace`, with distinctive token, slug
//! and password values, and a check of stdout, stderr and the responses that must not carry
//! them.

use crate::http::{SERVER_TOKEN, SLUG_A, Serve, request};
use crate::util::{Server, sim};
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "Pw-Distinctive-7391-secret";
const JSON_SSE: &str = "application/json, text/event-stream";

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !text.contains(s),
            "{what} contains a secret ({} chars starting {:?})",
            s.len(),
            &s[..4]
        );
    }
}

#[test]
fn no_secret_reaches_any_output_at_trace_level() {
    let sim = sim();
    let tony = sim.token("tony_teamlead").unwrap();
    let admin = sim.admin_token();
    let secrets = [
        tony.as_str(),
        admin.as_str(),
        SLUG_A,
        SERVER_TOKEN,
        PASSWORD,
    ];

    // stdio at trace level: a call that sends a password to Kimai.
    let mut s = Server::spawn(
        &["stdio"],
        &[
            ("KIMAI_URL", &sim.url()),
            ("KIMAI_API_TOKEN", &admin),
            ("RUST_LOG", "trace"),
        ],
    );
    s.initialize("2025-11-25");
    let (text, err) = s.call(
        "entity",
        json!({"type": "user", "action": "create", "data": {"username": "secret_test_user", "email": "s@example.com", "plainPassword": PASSWORD, "enabled": true, "language": "en", "locale": "en", "timezone": "Europe/Berlin"}}),
    );
    assert!(
        !err,
        "the user (and so the password) must really reach Kimai: {text}"
    );
    assert_clean("the stdio tool result", &text, &secrets);
    let (text, _) = s.call("user_current", json!({}));
    assert_clean("the stdio tool result", &text, &secrets);
    s.close_stdin();
    s.wait_exit(Duration::from_secs(5));
    assert_clean("stdio stderr", &s.stderr(), &secrets);

    // serve at trace level: slug route, header route, SSE, metrics, errors.
    let srv = Serve::start_logging(&sim, &["--rate-limit-rpm", "0"], "trace");
    let path = format!("/mcp/{SLUG_A}");
    let mut bodies = String::new();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let r = request(
        &srv.addr,
        "POST",
        &path,
        &[("Content-Type", "application/json"), ("Accept", JSON_SSE)],
        &init.to_string(),
    );
    let sid = r.header("Mcp-Session-Id").unwrap().to_string();
    bodies.push_str(&r.body);
    let call = |id: i64, tool: &str, args: Value| {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}}).to_string()
    };
    let r = request(
        &srv.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Accept", JSON_SSE),
            ("Mcp-Session-Id", &sid),
        ],
        &call(2, "user_current", json!({})),
    );
    bodies.push_str(&r.body);
    let bearer = format!("Bearer {SERVER_TOKEN}");
    let hdr = [
        ("Content-Type", "application/json"),
        ("Accept", JSON_SSE),
        ("Authorization", bearer.as_str()),
        ("X-Kimai-Token", admin.as_str()),
    ];
    let r = request(&srv.addr, "POST", "/mcp", &hdr, &init.to_string());
    let hsid = r.header("Mcp-Session-Id").unwrap().to_string();
    let mut h2 = hdr.to_vec();
    h2.push(("Mcp-Session-Id", &hsid));
    let r = request(
        &srv.addr,
        "POST",
        "/mcp",
        &h2,
        &call(
            3,
            "entity",
            json!({"type": "user", "action": "create", "data": {"username": "secret_test_user2", "email": "s2@example.com", "plainPassword": PASSWORD, "enabled": true, "language": "en", "locale": "en", "timezone": "Europe/Berlin"}}),
        ),
    );
    assert!(r.body.contains("\"isError\":false"), "{}", r.body);
    bodies.push_str(&r.body);
    // Wrong credentials and unknown slugs: the errors do not echo what was sent.
    for r in [
        request(
            &srv.addr,
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", JSON_SSE),
                ("Authorization", &format!("Bearer {PASSWORD}")),
            ],
            &init.to_string(),
        ),
        request(
            &srv.addr,
            "POST",
            &format!("/mcp/{PASSWORD}"),
            &[("Content-Type", "application/json"), ("Accept", JSON_SSE)],
            &init.to_string(),
        ),
        request(
            &srv.addr,
            "GET",
            "/sse",
            &[("Authorization", SERVER_TOKEN), ("X-Kimai-Token", PASSWORD)],
            "",
        ),
        request(&srv.addr, "GET", "/health", &[], ""),
        request(
            &srv.addr,
            "GET",
            "/metrics",
            &[("Authorization", &bearer)],
            "",
        ),
    ] {
        bodies.push_str(&r.body);
    }
    assert_clean("the HTTP responses", &bodies, &secrets);
    std::thread::sleep(Duration::from_millis(200));
    let logs = srv.logs();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the server did not log at trace/debug level"
    );
    assert_clean("the server's stderr", &logs, &secrets);
}
