//! No secret in any output: every transport at `RUST_LOG=trace`, with distinctive token, slug
//! and password values, and a check of stdout, stderr and the responses that must not carry
//! them. Logs are searched as written and also as a reader could reassemble them: messages
//! joined without their prefixes and white space, and hex dumps decoded back to bytes (ureq's
//! protocol layer dumps each request that way at `trace`, 16 bytes a line, so a token split
//! over two lines escapes a plain search).

use crate::util::http::{SERVER_TOKEN, SLUG_A, Serve, request};
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

/// A log line's message: the line without env_logger's `[time LEVEL target] ` prefix.
fn message(line: &str) -> &str {
    match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
        Some((_, m)) => m,
        None => line,
    }
}

fn is_hex_group(t: &str) -> bool {
    t.len() >= 2
        && t.len() % 2 == 0
        && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && t.bytes().any(|b| b.is_ascii_hexdigit())
}

/// A hex dump row: its bytes and its ASCII column. Rows are an optional offset (`0010:`, or a
/// number longer than the groups after it), at least two groups of hex byte pairs of one
/// width (`--` pads a short row), then the ASCII column.
fn hex_row(message: &str) -> Option<(Vec<u8>, String)> {
    let mut tokens: Vec<&str> = message.split_whitespace().collect();
    if tokens.len() > 2 {
        let first = tokens[0];
        let offset = first
            .strip_suffix(':')
            .is_some_and(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_hexdigit()))
            || (is_hex_group(first) && first.len() > tokens[1].len() && is_hex_group(tokens[1]));
        if offset {
            tokens.remove(0);
        }
    }
    // Groups have one width; an ASCII column can look like hex too, but not of that width.
    let width = tokens.first()?.len();
    let groups = tokens
        .iter()
        .take_while(|t| is_hex_group(t) && t.len() == width)
        .count();
    if groups < 2 {
        return None;
    }
    let mut bytes = Vec::new();
    for g in &tokens[..groups] {
        for pair in g.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).ok()?;
            if let Ok(b) = u8::from_str_radix(pair, 16) {
                bytes.push(b);
            }
        }
    }
    Some((bytes, tokens[groups..].concat()))
}

/// The log as written, and as it can be reassembled: messages joined without white space; the
/// bytes of its hex dumps; their ASCII columns joined.
fn log_views(logs: &str) -> Vec<(&'static str, String)> {
    let messages: Vec<&str> = logs.lines().map(message).collect();
    let joined: String = messages
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut bytes = Vec::new();
    let mut ascii = String::new();
    for (b, a) in messages.iter().filter_map(|m| hex_row(m)) {
        bytes.extend_from_slice(&b);
        ascii.push_str(&a);
    }
    vec![
        ("as written", logs.to_string()),
        ("joined without white space", joined),
        (
            "hex dumps decoded",
            String::from_utf8_lossy(&bytes).into_owned(),
        ),
        ("hex dump ASCII columns joined", ascii),
    ]
}

fn assert_clean_logs(what: &str, logs: &str, secrets: &[&str]) {
    for (view, text) in log_views(logs) {
        assert_clean(&format!("{what} ({view})"), &text, secrets);
    }
}

/// Lines below `info` come from this crate only (dependencies are capped at `info`).
fn assert_no_dependency_debug(what: &str, logs: &str) {
    for line in logs.lines() {
        let Some((prefix, _)) = line.strip_prefix('[').and_then(|l| l.split_once("] ")) else {
            continue;
        };
        let mut parts = prefix.split_whitespace().skip(1);
        let (Some(level), Some(target)) = (parts.next(), parts.next()) else {
            continue;
        };
        if matches!(level, "TRACE" | "DEBUG") {
            assert!(
                target == "kimai_mcp" || target.starts_with("kimai_mcp::"),
                "{what}: a dependency logged below info: {level} {target}"
            );
        }
    }
}

/// ureq_proto's trace layout: 8 groups of 2 bytes in hex, `--` for missing bytes, then the
/// ASCII column with `.` for anything else.
fn ureq_style_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for row in bytes.chunks(16) {
        out.push_str("[2026-01-01T00:00:00Z TRACE ureq_proto::util] ");
        for i in 0..16 {
            match row.get(i) {
                Some(b) => out.push_str(&format!("{b:02x}")),
                None => out.push_str("--"),
            }
            if i % 2 == 1 {
                out.push(' ');
            }
        }
        out.push(' ');
        for i in 0..16 {
            out.push(match row.get(i) {
                Some(b) if b.is_ascii_alphanumeric() || b.is_ascii_punctuation() => *b as char,
                _ => '.',
            });
        }
        out.push('\n');
    }
    out
}

/// `hexdump -C` layout: an offset, 16 single-byte groups, the ASCII column between bars.
fn hexdump_c_style(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (n, row) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", n * 16));
        for b in row {
            out.push_str(&format!("{b:02x} "));
        }
        let ascii: String = row
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(" |{ascii}|\n"));
    }
    out
}

#[test]
fn the_log_search_finds_secrets_split_over_lines_and_hex_dumps() {
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let request = format!(
        "GET /api/users/me HTTP/1.1\r\nhost: 127.0.0.1:8001\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    for (layout, dump) in [
        ("ureq", ureq_style_dump(request.as_bytes())),
        ("hexdump -C", hexdump_c_style(request.as_bytes())),
    ] {
        let logs = format!("[2026-01-01T00:00:00Z INFO  kimai_mcp] started\n{dump}");
        // A plain search misses it: the token is split over rows (and in hex).
        assert!(!logs.contains(token), "{layout}: {logs}");
        let found: Vec<&str> = log_views(&logs)
            .into_iter()
            .filter(|(_, text)| text.contains(token))
            .map(|(view, _)| view)
            .collect();
        assert!(found.contains(&"hex dumps decoded"), "{layout}: {found:?}");
    }
    // A token broken over two log lines.
    let logs = format!(
        "[2026-01-01T00:00:00Z DEBUG kimai_mcp::x] header: {}\n[2026-01-01T00:00:00Z DEBUG kimai_mcp::x] {}\n",
        &token[..10],
        &token[10..]
    );
    assert!(!logs.contains(token));
    assert!(
        log_views(&logs)
            .iter()
            .any(|(view, text)| *view == "joined without white space" && text.contains(token))
    );
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
    let stdio_logs = s.stderr();
    assert_clean_logs("stdio stderr", &stdio_logs, &secrets);
    assert_no_dependency_debug("stdio stderr", &stdio_logs);

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
    assert_clean_logs("the server's stderr", &logs, &secrets);
    assert_no_dependency_debug("the server's stderr", &logs);
}
