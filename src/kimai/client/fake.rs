//! Scripted fake Kimai servers for the client's tests: [`Fake`] (tiny_http) answers a list of
//! canned replies in order and records every request; [`Raw`] hands each raw TCP connection to
//! a handler, for faults a well-behaved HTTP server cannot produce (resets, garbage, stalls).
//!
//! Each server runs on one loopback thread on port 0 and stops in `Drop`. Test-only; knows
//! nothing of the client beyond HTTP.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Clone)]
pub(super) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub(super) fn raw(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }
    pub(super) fn json(status: u16, v: Value) -> Reply {
        Reply::raw(status, "application/json", &v.to_string())
    }
    pub(super) fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) url: String,
    headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Seen {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `replies` in order (the last one repeats) and records every request.
pub(super) struct Fake {
    pub(super) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    pub(super) fn new(replies: Vec<Reply>) -> Fake {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !stop2.load(Ordering::SeqCst) {
                let Ok(Some(mut rq)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                let mut body = String::new();
                let _ = rq.as_reader().take(1 << 20).read_to_string(&mut body);
                seen2.lock().unwrap().push(Seen {
                    method: rq.method().to_string(),
                    url: rq.url().to_string(),
                    headers: rq
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let r = replies[n.min(replies.len() - 1)].clone();
                n += 1;
                let mut resp = tiny_http::Response::from_data(r.body).with_status_code(r.status);
                for (k, v) in r.headers {
                    resp.add_header(tiny_http::Header::from_bytes(k, v).expect("valid header"));
                }
                let _ = rq.respond(resp);
            }
        });
        Fake {
            url: format!("http://127.0.0.1:{port}"),
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ----- a raw TCP server for faults -------------------------------------------------------

/// Accepts connections one after another and hands each (with its index) to `handler`.
pub(super) struct Raw {
    pub(super) url: String,
    conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Raw {
    pub(super) fn new(handler: impl Fn(usize, TcpStream, &AtomicBool) + Send + 'static) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let conns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (conns2, stop2) = (conns.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let n = conns2.fetch_add(1, Ordering::SeqCst);
                        handler(n, s, &stop2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Raw {
            url: format!("http://127.0.0.1:{port}"),
            conns,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request head (and ignores any body).
pub(super) fn read_head(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return,
        }
    }
}

pub(super) const OK_JSON: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
