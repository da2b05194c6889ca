//! `kimai-mcp health` against the built binary: a running `serve` (exit 0, by URL and by
//! `KIMAI_MCP_PORT`), a closed port and a server answering 503 (exit 1, one line each).

use crate::util::http::Serve;
use crate::util::{run, sim};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn health_is_0_for_a_running_server_by_url_and_by_port() {
    let sim = sim();
    let serve = Serve::start(&sim, &[]);
    let url = format!("http://{}/health", serve.addr);
    let (code, out, err) = run(&["health", "--url", &url], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("is healthy"), "{out}");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    // No --url: the port comes from KIMAI_MCP_PORT, as for `serve` (the container's case,
    // with KIMAI_MCP_HOST=0.0.0.0 meaning ask 127.0.0.1).
    let port = serve.addr.rsplit(':').next().unwrap();
    let (code, out, err) = run(
        &["health"],
        &[("KIMAI_MCP_PORT", port), ("KIMAI_MCP_HOST", "0.0.0.0")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("http://127.0.0.1:{port}/health")),
        "{out}"
    );
}

#[test]
fn health_is_1_for_a_closed_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let (code, out, err) = run(&["health", "--port", &port], &[("KIMAI_MCP_HOST", "")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn health_is_1_for_a_server_answering_503() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 512];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&b[..n]),
            }
        }
        let body = r#"{"status":"healthy"}"#;
        let _ = write!(
            s,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        String::from_utf8_lossy(&head).into_owned()
    });
    let (code, out, err) = run(&["health", "--url", &url], &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("answered 503 Service Unavailable"), "{err}");
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /health HTTP/1.1\r\n"), "{head}");
}

#[test]
fn health_refuses_https_as_a_usage_error() {
    let (code, _, err) = run(&["health", "--url", "https://127.0.0.1:8000/health"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
}
