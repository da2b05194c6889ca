//! The legacy HTTP+SSE transport against the built binary, with a raw client: the endpoint
//! event first and promptly, responses on the stream within a deadline (this catches any
//! buffering), every error status, capacity, TTL, and a closed stream freeing its session.

use crate::util::http::{Resp, SERVER_TOKEN, Serve, request};
use crate::util::sim;
use kimai_mcp::sim::Sim;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct Stream {
    s: TcpStream,
    buf: String,
    pub status: u16,
    pub head: String,
}

impl Stream {
    pub fn open(addr: &str, headers: &[(&str, &str)]) -> Stream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut raw = format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        s.write_all(raw.as_bytes()).unwrap();
        let mut st = Stream {
            s,
            buf: String::new(),
            status: 0,
            head: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !st.buf.contains("\r\n\r\n") && Instant::now() < deadline {
            st.fill();
        }
        let (head, rest) = st.buf.split_once("\r\n\r\n").expect("response head");
        st.head = head.to_string();
        st.status = head.split(' ').nth(1).unwrap().parse().unwrap();
        st.buf = rest.to_string();
        st
    }

    fn fill(&mut self) -> bool {
        let mut b = [0u8; 4096];
        match self.s.read(&mut b) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.push_str(&String::from_utf8_lossy(&b[..n]));
                true
            }
            Err(_) => true,
        }
    }

    /// The next event (name, data) within `wait`; comments are skipped.
    pub fn event(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((ev, rest)) = self.buf.split_once("\n\n") {
                let ev = ev.to_string();
                self.buf = rest.to_string();
                if ev.starts_with(':') {
                    continue;
                }
                let name = ev
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or("message")
                    .to_string();
                let data = ev
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or("")
                    .to_string();
                return Some((name, data));
            }
            if Instant::now() >= deadline || !self.fill() {
                return None;
            }
        }
    }
}

fn auth(sim: &Sim) -> Vec<(String, String)> {
    vec![
        ("Authorization".into(), format!("Bearer {SERVER_TOKEN}")),
        ("X-Kimai-Token".into(), sim.demo_token()),
    ]
}

fn refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn post(srv: &Serve, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    request(&srv.addr, "POST", path, &h, &body.to_string())
}

#[test]
fn endpoint_first_then_responses_on_the_stream() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let h = auth(&sim);
    let started = Instant::now();
    let mut st = Stream::open(&srv.addr, &refs(&h));
    assert_eq!(st.status, 200, "{}", st.head);
    assert!(
        st.head.contains("Content-Type: text/event-stream")
            && st.head.contains("Cache-Control: no-cache")
            && st.head.contains("X-Accel-Buffering: no"),
        "{}",
        st.head
    );
    let (name, endpoint) = st.event(Duration::from_secs(2)).expect("endpoint event");
    assert_eq!(name, "endpoint");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(endpoint.starts_with("/messages?session_id="), "{endpoint}");
    let r = post(
        &srv,
        &endpoint,
        &refs(&h),
        &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}),
    );
    assert_eq!(r.status, 202);
    let (name, data) = st
        .event(Duration::from_secs(2))
        .expect("initialize response on the stream");
    assert_eq!(name, "message");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(
        post(
            &srv,
            &endpoint,
            &refs(&h),
            &json!({"jsonrpc":"2.0","method":"notifications/initialized"})
        )
        .status,
        202
    );
    // The sessionId spelling works too.
    let alt = endpoint.replace("session_id", "sessionId");
    let r = post(
        &srv,
        &alt,
        &refs(&h),
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"user_current","arguments":{}}}),
    );
    assert_eq!(r.status, 202);
    let (_, data) = st
        .event(Duration::from_secs(5))
        .expect("tool result on the stream");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["id"], 2);
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("tony_teamlead")
    );
    assert!(
        srv.logs().contains("connected to Kimai 2.65.0 at"),
        "{}",
        srv.logs()
    );
    // /health counts the SSE session.
    let health = request(&srv.addr, "GET", "/health", &[], "").json();
    assert_eq!(health["active_sessions"], 1);
    assert_eq!(health["transports"], json!(["streamable-http", "sse"]));
    // Closing the stream frees the session.
    drop(st);
    let deadline = Instant::now() + Duration::from_secs(5);
    while request(&srv.addr, "GET", "/health", &[], "").json()["active_sessions"] != 0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        request(&srv.addr, "GET", "/health", &[], "").json()["active_sessions"],
        0
    );
    assert!(srv.logs().contains("Cleaned up client session"));
    // The session is gone: 404 at once, never a hang.
    let t = Instant::now();
    assert_eq!(
        post(
            &srv,
            &endpoint,
            &refs(&h),
            &json!({"jsonrpc":"2.0","id":3,"method":"ping"})
        )
        .status,
        404
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn error_statuses() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0", "--max-sessions", "1"]);
    let st = Stream::open(&srv.addr, &[("X-Kimai-Token", &sim.demo_token())]);
    assert_eq!(st.status, 401);
    assert!(st.head.contains("WWW-Authenticate: Bearer"));
    let st = Stream::open(&srv.addr, &[("Authorization", SERVER_TOKEN)]);
    assert_eq!(st.status, 400);
    assert!(st.buf.contains("Kimai API token is required"), "{}", st.buf);
    // A wrong Kimai token fails at connect with 502.
    let st = Stream::open(
        &srv.addr,
        &[
            ("Authorization", SERVER_TOKEN),
            ("X-Kimai-Token", "0123456789abcdef012345678"),
        ],
    );
    assert_eq!(st.status, 502);
    assert!(st.buf.contains("Failed to connect to Kimai"), "{}", st.buf);
    assert!(
        st.buf.contains("does not accept this X-Kimai-Token"),
        "{}",
        st.buf
    );
    // Capacity: the second stream gets 503 with Retry-After.
    let h = auth(&sim);
    let mut first = Stream::open(&srv.addr, &refs(&h));
    assert_eq!(first.status, 200);
    let (_, endpoint) = first.event(Duration::from_secs(2)).unwrap();
    let second = Stream::open(&srv.addr, &refs(&h));
    assert_eq!(second.status, 503);
    assert!(second.head.contains("Retry-After"));
    // Messages: missing id 400, unknown id 404, bad JSON 400, another user's credentials 404.
    assert_eq!(post(&srv, "/messages", &refs(&h), &json!({})).status, 400);
    assert_eq!(
        post(
            &srv,
            "/messages?session_id=00000000000000000000000000000000",
            &refs(&h),
            &json!({"jsonrpc":"2.0","id":1,"method":"ping"})
        )
        .status,
        404
    );
    let r = request(
        &srv.addr,
        "POST",
        &endpoint,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", SERVER_TOKEN),
            ("X-Kimai-Token", &sim.demo_token()),
        ],
        "{nope",
    );
    assert_eq!(r.status, 400);
    let john = sim.token("john_user").unwrap();
    assert_eq!(
        post(
            &srv,
            &endpoint,
            &[("Authorization", SERVER_TOKEN), ("X-Kimai-Token", &john)],
            &json!({"jsonrpc":"2.0","id":1,"method":"ping"})
        )
        .status,
        404
    );
    assert_eq!(
        post(
            &srv,
            &endpoint,
            &[("X-Kimai-Token", &sim.demo_token())],
            &json!({"jsonrpc":"2.0","id":1,"method":"ping"})
        )
        .status,
        401
    );
}

#[test]
fn the_ttl_ends_an_idle_stream() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0", "--session-ttl", "1"]);
    let h = auth(&sim);
    let mut st = Stream::open(&srv.addr, &refs(&h));
    assert_eq!(st.status, 200);
    st.event(Duration::from_secs(2)).expect("endpoint");
    // No POST for longer than the TTL: the sweeper removes the session and the stream ends.
    let t = Instant::now();
    let mut ended = false;
    while t.elapsed() < Duration::from_secs(8) {
        if !st.fill() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the stream outlived its session");
}
