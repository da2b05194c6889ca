//! Isolation at the connection layer: what one client can do to everyone else with sockets
//! alone — hold idle connections, drip a body, announce bodies it never sends, send malformed
//! heads and non-canonical paths, open a socket and say nothing. Each test runs the attack from
//! its own loopback addresses (127.x.y.z standing for other machines) and checks, while it
//! runs, that it is refused and that another user from another address gets `/health` and a
//! `user_current` call answered, and how fast (generously: a loaded 2-core machine).

use crate::util::http::{
    JSON_SSE, SLUG_A, SLUG_B, Serve, call, connect_from, init_body, raw_from, read_response,
    request_from,
};
use crate::util::{rss_kib, sim};
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a request of the other user may take while an attack runs.
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// The other user, from `src`: `/health`, then a session on `/mcp/<slug>` and a `user_current`
/// call. Asserts each is answered within [`SERVED_WITHIN`]; returns the times of `/health` and
/// of the tool call.
fn other_user(srv: &Serve, src: [u8; 4], slug: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let r = request_from(src, &srv.addr, "GET", "/health", &[], "");
    let health = t.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(health < SERVED_WITHIN, "/health took {health:?}");
    let path = format!("/mcp/{slug}");
    let h = [("Content-Type", "application/json"), ("Accept", JSON_SSE)];
    let t = Instant::now();
    let r = request_from(src, &srv.addr, "POST", &path, &h, &init_body().to_string());
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        t.elapsed() < SERVED_WITHIN,
        "initialize took {:?}",
        t.elapsed()
    );
    let sid = r
        .header("Mcp-Session-Id")
        .expect("a session id")
        .to_string();
    let h = [h[0], h[1], ("Mcp-Session-Id", sid.as_str())];
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        request_from(src, &srv.addr, "POST", &path, &h, &note.to_string()).status,
        202
    );
    let t = Instant::now();
    let r = request_from(
        src,
        &srv.addr,
        "POST",
        &path,
        &h,
        &call(2, "user_current", json!({})).to_string(),
    );
    let tool = t.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["result"]["isError"], false, "{}", r.body);
    assert!(tool < SERVED_WITHIN, "user_current took {tool:?}");
    (health, tool)
}

/// What a socket has received so far, without waiting.
#[derive(Default)]
struct Seen {
    bytes: Vec<u8>,
    closed: bool,
}

impl Seen {
    fn poll(&mut self, s: &mut TcpStream) {
        let mut buf = [0u8; 1024];
        while !self.closed {
            match s.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.closed = true,
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[test]
fn idle_sockets_from_one_address_cannot_take_the_server() {
    const SOCKETS: usize = 1030;
    const PER_ADDRESS: usize = 64;
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let attacker = [127, 0, 1, 1];
    let started = Instant::now();
    let mut sockets: Vec<TcpStream> = (0..SOCKETS)
        .map(|_| {
            let s = connect_from(attacker, &srv.addr);
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let (health, tool) = other_user(&srv, [127, 0, 1, 2], SLUG_A);
    // Every socket over the cap is answered at once; poll them all until that is so (bounded).
    let mut seen: Vec<Seen> = sockets.iter().map(|_| Seen::default()).collect();
    let poll_until = Instant::now() + Duration::from_secs(5);
    loop {
        for (s, seen) in sockets.iter_mut().zip(seen.iter_mut()) {
            seen.poll(s);
        }
        let answered = seen.iter().filter(|s| s.closed).count();
        if answered >= SOCKETS - PER_ADDRESS || Instant::now() >= poll_until {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let held: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.bytes.is_empty() && !s.closed)
        .collect();
    let refused: Vec<&Seen> = seen.iter().filter(|s| s.closed).collect();
    // Until the head timeout (10 s) the held ones are exactly the allowance.
    if started.elapsed() < Duration::from_secs(9) {
        assert_eq!(held.len(), PER_ADDRESS, "sockets held for one address");
    }
    assert!(held.len() <= PER_ADDRESS, "{} sockets held", held.len());
    assert_eq!(refused.len(), SOCKETS - held.len());
    for r in &refused {
        let text = r.text();
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("Retry-After: "), "{text}");
        assert!(
            text.contains("at most 64") && text.contains("--max-connections-per-address"),
            "{text}"
        );
    }
    // And again, now that the attacker holds its allowance and was refused the rest.
    let (health2, tool2) = other_user(&srv, [127, 0, 1, 3], SLUG_B);
    eprintln!(
        "1,030 idle sockets from one address: {} held, {} refused in {:?}; other user /health {health:?} / {health2:?}, user_current {tool:?} / {tool2:?}",
        held.len(),
        refused.len(),
        started.elapsed()
    );
}

#[test]
fn a_slow_body_is_cut_off_at_the_body_timeout() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0", "--body-timeout", "3"]);
    let mut s = connect_from([127, 0, 2, 1], &srv.addr);
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = format!(
        "POST /mcp/{SLUG_A} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: {JSON_SSE}\r\nContent-Length: 100\r\n\r\n",
        srv.addr
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    // One byte every 2 s: each read of the server finds data in time, so only a deadline for
    // the whole body ends it.
    let stop = Arc::new(AtomicBool::new(false));
    let drip = {
        let (mut w, stop) = (s.try_clone().unwrap(), stop.clone());
        std::thread::spawn(move || {
            for _ in 0..10 {
                if stop.load(Ordering::SeqCst) || w.write_all(b" ").is_err() {
                    return;
                }
                for _ in 0..20 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (health, tool) = other_user(&srv, [127, 0, 2, 2], SLUG_B);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    drip.join().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("did not arrive within 3 s"), "{out}");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(6),
        "the slow body was cut off after {took:?}"
    );
    eprintln!(
        "a body dripping 1 byte / 2 s: 408 after {took:?}; other user /health {health:?}, user_current {tool:?}"
    );
}

#[test]
fn announced_bodies_cost_nothing_until_they_arrive() {
    const CONNECTIONS: usize = 600;
    const ADDRESSES: usize = 10;
    const WAVES: usize = 3;
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    // The other user's code paths once, so that they are resident before the baseline.
    other_user(&srv, [127, 0, 3, 200], SLUG_A);
    let before = rss_kib(srv.pid());
    let head = format!(
        "POST /mcp/{SLUG_A} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: {JSON_SSE}\r\nContent-Length: 1048575\r\n\r\n{{\"jsonrpc\"",
        srv.addr
    );
    // Several waves: a buffer allocated for the announced size shows in RSS once the allocator
    // hands out memory that an earlier wave used (fresh pages are zero without being touched,
    // so a first wave alone can hide it).
    let mut peak = before;
    let mut times = Vec::new();
    for wave in 0..WAVES {
        let mut conns: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|i| {
                let mut s = connect_from([127, 0, 3, 1 + (i % ADDRESSES) as u8], &srv.addr);
                s.write_all(head.as_bytes()).unwrap();
                s
            })
            .collect();
        // Time for every connection thread to read its head and the first bytes of its body.
        std::thread::sleep(Duration::from_millis(800));
        times.push(other_user(
            &srv,
            [127, 0, 3, 100 + wave as u8],
            if wave % 2 == 0 { SLUG_B } else { SLUG_A },
        ));
        peak = peak.max(rss_kib(srv.pid()));
        // Every one of them is held, waiting for its megabyte (60 per address is within the
        // cap).
        let mut waiting = 0;
        for s in &mut conns {
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 64];
            if matches!(s.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                waiting += 1;
            }
        }
        assert_eq!(waiting, CONNECTIONS, "connections held by the server");
        drop(conns);
        std::thread::sleep(Duration::from_millis(500));
    }
    let grew = peak.saturating_sub(before);
    eprintln!(
        "{WAVES} waves of {CONNECTIONS} connections announcing 1 MiB - 1 byte: RSS {before} KiB, peak {peak} KiB (+{grew} KiB); other user (/health, user_current): {times:?}"
    );
    // A buffer per announced body would be 600 MiB; threads and small buffers are a few dozen.
    assert!(
        grew < 120 * 1024,
        "RSS grew by {grew} KiB ({before} -> {peak} KiB)"
    );
}

/// The status a raw request from `src` is answered with.
fn raw_status(src: [u8; 4], addr: &str, raw: &[u8]) -> u16 {
    let text = raw_from(src, addr, raw);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text:?}"))
}

#[test]
fn malformed_heads_and_non_canonical_paths_are_refused_without_logging_the_slug() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let addr = srv.addr.clone();
    let init = init_body().to_string();
    let post = |path: &str, eol: &str, extra: &str, length: &str| {
        format!(
            "POST {path} HTTP/1.1{eol}Host: {addr}{eol}Content-Type: application/json{eol}Accept: {JSON_SSE}{eol}Connection: close{eol}{extra}Content-Length: {length}{eol}{eol}{init}"
        )
        .into_bytes()
    };
    let n = init.len().to_string();
    let slug_path = format!("/mcp/{SLUG_A}");
    let mut cases: Vec<(String, Vec<u8>, u16)> = Vec::new();
    for path in [
        format!("//mcp/{SLUG_A}"),
        format!("/mcp//{SLUG_A}"),
        format!("/./mcp/{SLUG_A}"),
        format!("/mcp/./{SLUG_A}"),
        format!("/mcp/{SLUG_A}/"),
        format!("/MCP/{SLUG_A}"),
        format!("/mcp%2F{SLUG_A}"),
        format!("/%6Dcp/{SLUG_A}"),
        format!("/mcp/%2E/{SLUG_A}"),
    ] {
        cases.push((path.clone(), post(&path, "\r\n", "", &n), 404));
    }
    for length in [
        format!("+{n}"),
        "-1".into(),
        "0x10".into(),
        format!("{n} 0"),
    ] {
        cases.push((
            format!("Content-Length: {length}"),
            post(&slug_path, "\r\n", "", &length),
            400,
        ));
    }
    cases.push(("bare LF".into(), post(&slug_path, "\n", "", &n), 400));
    cases.push((
        "obs-fold".into(),
        post(&slug_path, "\r\n", "X-Folded: a\r\n b\r\n", &n),
        400,
    ));
    // The attack runs on its own thread while the other user is served.
    let attack = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                for (what, raw, want) in &cases {
                    let got = raw_status([127, 0, 4, 1], &addr, raw);
                    assert_eq!(got, *want, "{what}");
                }
            }
        })
    };
    let (health, tool) = other_user(&srv, [127, 0, 4, 2], SLUG_B);
    attack.join().expect("every hostile request refused");
    // The canonical path still works.
    other_user(&srv, [127, 0, 4, 3], SLUG_A);
    std::thread::sleep(Duration::from_millis(200));
    let logs = srv.logs();
    assert!(
        logs.contains("POST /MCP/{slug} 404") && logs.contains("POST //mcp/{slug} 404"),
        "the access log did not record the refused paths: {logs}"
    );
    assert!(logs.contains("POST /mcp/{slug} 200"), "{logs}");
    for slug in [SLUG_A, SLUG_B] {
        assert!(
            !logs.contains(slug) && !logs.contains(&slug[..8]),
            "a slug reached the log"
        );
    }
    eprintln!("malformed heads and paths: other user /health {health:?}, user_current {tool:?}");
}

#[test]
fn a_silent_new_socket_is_closed_after_the_head_timeout() {
    let sim = sim();
    let srv = Serve::start(&sim, &["--rate-limit-rpm", "0"]);
    let mut silent = connect_from([127, 0, 5, 1], &srv.addr);
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let opened = Instant::now();
    // A keep-alive connection that completed a request keeps the idle allowance (60 s).
    let mut kept = connect_from([127, 0, 5, 2], &srv.addr);
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let get = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr);
    kept.write_all(get.as_bytes()).unwrap();
    assert_eq!(read_response(&mut kept).status, 200);
    let (health, tool) = other_user(&srv, [127, 0, 5, 3], SLUG_A);
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    let held = opened.elapsed();
    assert!(matches!(read, Ok(0)), "{read:?}");
    assert!(
        held >= Duration::from_secs(9) && held < Duration::from_secs(13),
        "a silent new socket was held {held:?}"
    );
    kept.write_all(get.as_bytes()).unwrap();
    assert_eq!(
        read_response(&mut kept).status,
        200,
        "the keep-alive connection"
    );
    eprintln!(
        "a silent socket: closed after {held:?}; other user /health {health:?}, user_current {tool:?}"
    );
}

#[test]
fn a_trusted_proxy_has_its_own_larger_allowance() {
    let sim = sim();
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--trusted-proxy",
            "127.0.6.1",
            "--max-connections-per-address",
            "4",
            "--max-connections-per-proxy",
            "12",
        ],
    );
    for (src, allowance, option) in [
        ([127, 0, 6, 1], 12, "--max-connections-per-proxy"),
        ([127, 0, 6, 2], 4, "--max-connections-per-address"),
    ] {
        let mut held: Vec<TcpStream> = (0..allowance)
            .map(|_| connect_from(src, &srv.addr))
            .collect();
        let mut over = connect_from(src, &srv.addr);
        over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = over.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 503"), "{src:?}: {out}");
        assert!(
            out.contains(&format!("at most {allowance}")) && out.contains(option),
            "{out}"
        );
        // Accepted in order, so the ones before it were admitted, and are waiting.
        for s in &mut held {
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 64];
            let r = s.read(&mut buf);
            assert!(
                matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "{src:?}: {r:?}"
            );
        }
        other_user(&srv, [127, 0, 6, 3], SLUG_A);
    }
}
