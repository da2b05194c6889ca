//! Hostile input against `kimai-mcp serve`: oversized and malformed requests, deep JSON,
//! invalid UTF-8, traversal attempts, smuggling attempts, clients that vanish mid-request.
//! Every case gets the right status, nothing panics or hangs, and the server keeps serving.

use crate::util::http::{JSON_SSE, SLUG_A, Serve, request};
use crate::util::sim;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn alive(srv: &Serve) {
    let t = Instant::now();
    assert_eq!(request(&srv.addr, "GET", "/health", &[], "").status, 200);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn malformed_and_oversized_requests() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let a = &srv.addr;
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: {a}\r\nX-Big: {}\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    assert_eq!(status(&raw(a, big_header.as_bytes())), 431);
    let long_url = format!(
        "GET /{} HTTP/1.1\r\nHost: {a}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    assert_eq!(status(&raw(a, long_url.as_bytes())), 431);
    assert_eq!(status(&raw(a, b"GARBAGE\r\n\r\n")), 400);
    assert_eq!(status(&raw(a, b"GET /health HTTP/9.9\r\n\r\n")), 400);
    assert_eq!(
        status(&raw(a, b"GET /health HTTP/1.1\r\nNo colon here\r\n\r\n")),
        400
    );
    assert_eq!(
        status(&raw(a, b"GET /health HTTP/1.1\r\nX-Bad: \xff\xfe\r\n\r\n")),
        400
    );
    // Smuggling attempts: chunked bodies are refused, conflicting lengths too.
    let te = format!(
        "POST /mcp/{SLUG_A} HTTP/1.1\r\nHost: {a}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(status(&raw(a, te.as_bytes())), 411);
    let cl = format!(
        "POST /mcp/{SLUG_A} HTTP/1.1\r\nHost: {a}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"
    );
    assert_eq!(status(&raw(a, cl.as_bytes())), 400);
    alive(&srv);
}

#[test]
fn lenient_heads_are_refused() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let a = &srv.addr;
    let post = |eol: &str, extra: &str, length: &str| {
        format!(
            "POST /health HTTP/1.1{eol}Host: {a}{eol}Connection: close{eol}{extra}Content-Length: {length}{eol}{eol}abcd"
        )
    };
    // Content-Length is digits only: no sign, no blank inside, no hexadecimal.
    for length in ["+4", "-1", "4 4", "0x4", "4,4"] {
        assert_eq!(
            status(&raw(a, post("\r\n", "", length).as_bytes())),
            400,
            "{length:?}"
        );
    }
    // Lines end with CRLF: a bare LF anywhere in the head is refused.
    assert_eq!(status(&raw(a, post("\n", "", "4").as_bytes())), 400);
    let mixed = format!("GET /health HTTP/1.1\nHost: {a}\r\nConnection: close\r\n\r\n");
    assert_eq!(status(&raw(a, mixed.as_bytes())), 400);
    // No obsolete line folding.
    for fold in ["X-A: 1\r\n b\r\n", "X-A: 1\r\n\tb\r\n"] {
        assert_eq!(
            status(&raw(a, post("\r\n", fold, "4").as_bytes())),
            400,
            "{fold:?}"
        );
    }
    // The strict form of the same request is served (405: /health takes GET).
    assert_eq!(status(&raw(a, post("\r\n", "", "4").as_bytes())), 405);
    alive(&srv);
}

#[test]
fn hostile_bodies() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let path = format!("/mcp/{SLUG_A}");
    let h = [("Content-Type", "application/json"), ("Accept", JSON_SSE)];
    // Deeply nested JSON: a parse error (serde_json stops at depth 128), not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = request(&srv.addr, "POST", &path, &h, &deep);
    assert!(r.status == 400 || r.status == 413, "{r:?}");
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let r = request(&srv.addr, "POST", &path, &h, &deep);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    // Invalid UTF-8.
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}";
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: {JSON_SSE}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        srv.addr,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(status(&out), 400, "{out}");
    assert!(out.contains("-32700"));
    // JSON that is not JSON-RPC.
    let r = request(&srv.addr, "POST", &path, &h, "[1, 2, 3]");
    assert_eq!(r.status, 400);
    let r = request(&srv.addr, "POST", &path, &h, "\"hello\"");
    assert_eq!(r.status, 400);
    alive(&srv);
}

#[test]
fn traversal_attempts_find_nothing() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    for path in [
        "/../../etc/passwd",
        "/mcp/../health",
        "/mcp/..%2F..%2Fetc%2Fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/health/../metrics",
        "/sse/../../etc/passwd",
        "/messages/../../etc/passwd",
        "//etc/passwd",
        "/mcp/%00",
        "//health",
        "/health/",
        "/./health",
        "/%68ealth",
        "/mcp%2Fx",
        "//mcp",
    ] {
        // Not a file, not another endpoint, not the path echoed back: the server's own
        // JSON-RPC "Not Found", exactly.
        let r = request(&srv.addr, "GET", path, &[], "");
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.header("Content-Type"), Some("application/json"), "{path}");
        assert_eq!(
            r.json(),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "Not Found"}}),
            "{path}"
        );
    }
    alive(&srv);
}

#[test]
fn clients_that_vanish_mid_request_cost_nothing() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    // A body announced but never sent; a head never finished; a connection opened and closed.
    for bytes in [
        format!(
            "POST /mcp/{SLUG_A} HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\n{{\"jsonrpc\"",
            srv.addr
        ),
        "GET /health HTTP/1.1\r\nHost: x".to_string(),
        String::new(),
    ] {
        let mut s = TcpStream::connect(&srv.addr).unwrap();
        let _ = s.write_all(bytes.as_bytes());
        drop(s);
    }
    alive(&srv);
    // Unknown and repeated headers are harmless.
    let r = request(
        &srv.addr,
        "GET",
        "/health",
        &[
            ("X-Whatever", "1"),
            ("X-Whatever", "2"),
            ("Accept", "a"),
            ("Accept", "b"),
        ],
        "",
    );
    assert_eq!(r.status, 200);
}
