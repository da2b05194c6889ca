//! A small HTTP/1.1 server: one thread per connection, every read and wait bounded.
//!
//! Why not tiny_http, which the design first named: tiny_http 0.12 hands each accepted
//! connection to an internal task pool whose `spawn` can queue a connection behind a thread
//! that is about to run another one (it counts that thread as idle until it wakes), so in a
//! burst of new connections one of them waits until some other keep-alive connection closes —
//! seen as requests that hung for seconds in our own tests. It also sets no socket timeouts
//! (an idle or slow-header client holds a thread forever) and cannot stream a response without
//! buffering it. What MCP needs of HTTP is small: this module reads a request head (bounded by
//! [`Limits::max_head_bytes`] and [`Limits::head_timeout`]), a `Content-Length` body (bounded by
//! [`Limits::max_body_bytes`], else 413), hands it to the handler, and writes the reply in one
//! write; keep-alive until [`Limits::idle_timeout`]. A handler may take the connection over to
//! stream (SSE) and then owns the socket.
//!
//! Threads: `http-accept` accepts; each connection runs on its own `http-conn` thread, at most
//! [`Limits::max_connections`] at once (beyond that a connection gets 503 and is closed at once).
//! `Server::shutdown` stops accepting, closes idle connections and joins the accept thread.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bounds of the HTTP layer.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once; more get 503.
    pub max_connections: usize,
    /// Request line plus headers.
    pub max_head_bytes: usize,
    /// Request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// The whole head must arrive within this (slow-header clients are cut off).
    pub head_timeout: Duration,
    /// A keep-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// A body must arrive within this.
    pub body_timeout: Duration,
    /// Writing a response may block this long (a client that stops reading).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_head_bytes: 32 * 1024,
            max_body_bytes: 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// One request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string, as sent (not decoded).
    pub path: String,
    /// The raw query string (without `?`), empty if none.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, k: impl Into<String>, v: impl Into<String>) -> Response {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.body = body.into();
        self
    }
}

/// What a handler does with a request.
pub enum Handled {
    /// Write this response (keep-alive continues).
    Reply(Response),
    /// Write this head (no Content-Length; the connection closes afterwards), then give the
    /// socket to the function, which streams the body on this connection's thread.
    Stream(Response, Box<dyn FnOnce(Streamer) + Send>),
}

/// The socket of a taken-over connection: writes are flushed at once.
pub struct Streamer {
    stream: TcpStream,
}

impl Streamer {
    /// Writes `bytes` now; an error means the client is gone.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// True when the client has closed its side (a read returns 0 or fails), without blocking.
    pub fn client_closed(&self) -> bool {
        let _ = self.stream.set_nonblocking(true);
        let mut buf = [0u8; 64];
        let closed = match (&self.stream).read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        let _ = self.stream.set_nonblocking(false);
        closed
    }
}

/// The request handler: called on connection threads, concurrently.
pub type Handler = Arc<dyn Fn(Request) -> Handled + Send + Sync>;

/// A running server.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    active: Arc<AtomicUsize>,
}

/// Status line reason phrases for the codes we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn encode_head(resp: &Response, keep_alive: bool, with_length: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes(),
    );
    for (k, v) in &resp.headers {
        // Header values we send never contain line breaks; drop any that would.
        if k.contains(['\r', '\n']) || v.contains(['\r', '\n']) {
            continue;
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if with_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", resp.body.len()).as_bytes());
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
    out
}

impl Server {
    /// Starts serving `listener` with `handler`.
    pub fn start(listener: TcpListener, limits: Limits, handler: Handler) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::new(Mutex::new(HashMap::new()));
        let active = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (stop, conns, active) = (stop.clone(), conns.clone(), active.clone());
            std::thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || accept_loop(listener, limits, handler, stop, conns, active))?
        };
        Ok(Server {
            addr,
            stop,
            accept: Some(accept),
            conns,
            active,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every open connection's read side, so that idle keep-alive
    /// connections end; requests being handled finish and are answered.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for (_, c) in lock(&self.conns).iter() {
            let _ = c.shutdown(Shutdown::Read);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    active: Arc<AtomicUsize>,
) {
    let next = AtomicU64::new(0);
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // e.g. out of file descriptors: back off instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= limits.max_connections {
            let resp = Response::new(503)
                .header("Retry-After", "5")
                .body("text/plain; charset=utf-8", "Server at capacity\n");
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut bytes = encode_head(&resp, false, true);
            bytes.extend_from_slice(&resp.body);
            let _ = stream.write_all(&bytes);
            continue;
        }
        let id = next.fetch_add(1, Ordering::SeqCst);
        if let Ok(c) = stream.try_clone() {
            lock(&conns).insert(id, c);
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (limits, handler, conns2, active2) = (
            limits.clone(),
            handler.clone(),
            conns.clone(),
            active.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                serve_connection(stream, &limits, &handler);
                lock(&conns2).remove(&id);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
            lock(&conns).remove(&id);
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

enum ReadOutcome {
    Request(Request, bool),
    /// Answer this and close.
    Refuse(Response),
    Closed,
}

fn serve_connection(stream: TcpStream, limits: &Limits, handler: &Handler) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.write_timeout));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    loop {
        match read_request(&mut reader, peer, limits) {
            ReadOutcome::Closed => break,
            ReadOutcome::Refuse(resp) => {
                let mut bytes = encode_head(&resp, false, true);
                bytes.extend_from_slice(&resp.body);
                let _ = writer.write_all(&bytes);
                linger(&writer, reader);
                return;
            }
            ReadOutcome::Request(req, keep_alive) => {
                let head_only = req.method == "HEAD";
                match handler(req) {
                    Handled::Reply(resp) => {
                        let mut bytes = encode_head(&resp, keep_alive, true);
                        if !head_only {
                            bytes.extend_from_slice(&resp.body);
                        }
                        if writer
                            .write_all(&bytes)
                            .and_then(|_| writer.flush())
                            .is_err()
                            || !keep_alive
                        {
                            break;
                        }
                    }
                    Handled::Stream(head, body) => {
                        if writer
                            .write_all(&encode_head(&head, false, false))
                            .and_then(|_| writer.flush())
                            .is_err()
                        {
                            break;
                        }
                        // No read timeout while streaming: the stream decides when it ends.
                        let _ = writer.set_read_timeout(None);
                        body(Streamer { stream: writer });
                        return;
                    }
                }
            }
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// Most bytes read and dropped after refusing a request (see [`linger`]).
const LINGER_BYTES: u64 = 8 * 1024 * 1024;
/// Longest time spent doing so.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Closes a connection whose request was refused (e.g. 413) so that the client can read the
/// answer: closing with unread input makes the kernel reset the connection, which can discard
/// the response before the client reads it. So: stop writing, read and drop what the client is
/// still sending (bounded in bytes and time), then close.
fn linger(writer: &TcpStream, mut reader: BufReader<TcpStream>) {
    let _ = writer.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 16 * 1024];
    let mut total = 0u64;
    while Instant::now() < deadline && total < LINGER_BYTES {
        match reader.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// Where request bytes come from: a socket, whose read timeout bounds every wait, or (for the
/// fuzzer and tests) a byte slice.
pub trait Source: Read {
    fn set_timeout(&self, timeout: Option<Duration>);
}

impl Source for TcpStream {
    fn set_timeout(&self, timeout: Option<Duration>) {
        let _ = self.set_read_timeout(timeout);
    }
}

impl Source for &[u8] {
    fn set_timeout(&self, _timeout: Option<Duration>) {}
}

/// Reads one line, bounded by `budget` bytes and the head deadline.
fn read_line<S: Source>(
    reader: &mut BufReader<S>,
    budget: &mut usize,
    deadline: Instant,
) -> Result<Option<String>, u16> {
    let mut line = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(408);
        }
        reader
            .get_ref()
            .set_timeout(Some(left.max(Duration::from_millis(1))));
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(408);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        };
        if available.is_empty() {
            return if line.is_empty() { Ok(None) } else { Err(400) };
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if chunk.len() > *budget {
            return Err(431);
        }
        *budget -= chunk.len();
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if done {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            return String::from_utf8(line).map(Some).map_err(|_| 400);
        }
    }
}

fn refuse(status: u16, message: &str) -> ReadOutcome {
    ReadOutcome::Refuse(
        Response::new(status).body("text/plain; charset=utf-8", format!("{message}\n")),
    )
}

fn read_request<S: Source>(
    reader: &mut BufReader<S>,
    peer: SocketAddr,
    limits: &Limits,
) -> ReadOutcome {
    // Wait for the first byte of the next request up to the idle timeout; from then on the
    // whole head must arrive within the head timeout.
    reader.get_ref().set_timeout(Some(limits.idle_timeout));
    match reader.fill_buf() {
        Ok([]) => return ReadOutcome::Closed,
        Ok(_) => {}
        Err(_) => return ReadOutcome::Closed,
    }
    let deadline = Instant::now() + limits.head_timeout;
    let mut budget = limits.max_head_bytes;
    let request_line = loop {
        match read_line(reader, &mut budget, deadline) {
            Ok(None) => return ReadOutcome::Closed,
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => break l,
            Err(408) => {
                return refuse(
                    408,
                    "Request Timeout: the request head did not arrive in time",
                );
            }
            Err(431) => return refuse(431, "Request Header Fields Too Large"),
            Err(_) => return refuse(400, "Bad Request"),
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refuse(400, "Bad Request: malformed request line");
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return refuse(400, "Bad Request: only HTTP/1.0 and HTTP/1.1 are served");
    }
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
    {
        return refuse(400, "Bad Request: malformed request line");
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        match read_line(reader, &mut budget, deadline) {
            Ok(None) => return ReadOutcome::Closed,
            Ok(Some(l)) if l.is_empty() => break,
            Ok(Some(l)) => match l.split_once(':') {
                Some((k, v)) if !k.is_empty() && !k.contains(' ') && headers.len() < 100 => {
                    headers.push((k.to_string(), v.trim().to_string()))
                }
                _ => return refuse(400, "Bad Request: malformed header"),
            },
            Err(408) => {
                return refuse(
                    408,
                    "Request Timeout: the request head did not arrive in time",
                );
            }
            Err(431) => return refuse(431, "Request Header Fields Too Large"),
            Err(_) => return refuse(400, "Bad Request"),
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let connection = get("Connection")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    if get("Transfer-Encoding").is_some() {
        return refuse(411, "Length Required: send the body with Content-Length");
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_str())
        .collect();
    if lengths.len() > 1 && lengths.iter().any(|l| *l != lengths[0]) {
        return refuse(400, "Bad Request: conflicting Content-Length headers");
    }
    let length = match lengths.first().map(|v| v.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return refuse(400, "Bad Request: invalid Content-Length"),
    };
    if length > limits.max_body_bytes {
        return refuse(
            413,
            &format!(
                "Payload Too Large: the body may have at most {} bytes",
                limits.max_body_bytes
            ),
        );
    }
    reader.get_ref().set_timeout(Some(limits.body_timeout));
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return ReadOutcome::Closed;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    ReadOutcome::Request(
        Request {
            method: method.to_string(),
            path,
            query,
            headers,
            body,
            peer,
        },
        keep_alive,
    )
}

/// Parses the requests in `bytes` the way a connection would (for the fuzzer): each request's
/// method and path, then the status of a refusal, if one ends the input.
pub fn parse_all(bytes: &[u8], limits: &Limits) -> (Vec<(String, String, usize)>, Option<u16>) {
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut reader = BufReader::new(bytes);
    let mut out = Vec::new();
    loop {
        match read_request(&mut reader, peer, limits) {
            ReadOutcome::Request(r, keep_alive) => {
                out.push((r.method, r.path, r.body.len()));
                if !keep_alive {
                    return (out, None);
                }
            }
            ReadOutcome::Refuse(resp) => return (out, Some(resp.status)),
            ReadOutcome::Closed => return (out, None),
        }
    }
}

/// The peer address as an `IpAddr` with IPv4-mapped IPv6 addresses unmapped.
pub fn peer_ip(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(limits: Limits) -> Server {
        let l = crate::net::listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let handler: Handler = Arc::new(|req: Request| {
            if req.path == "/stream" {
                return Handled::Stream(
                    Response::new(200).header("Content-Type", "text/event-stream"),
                    Box::new(|mut s: Streamer| {
                        let _ = s.send(b"data: one\n\n");
                        let _ = s.send(b"data: two\n\n");
                    }),
                );
            }
            Handled::Reply(Response::new(200).body(
                "text/plain",
                format!("{} {} {}", req.method, req.path, req.body.len()),
            ))
        });
        Server::start(l, limits, handler).unwrap()
    }

    fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn keep_alive_serves_several_requests_on_one_connection() {
        let srv = start(Limits::default());
        let out = exchange(
            srv.local_addr(),
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert!(
            out.contains("GET /a 0") && out.contains("POST /b 3") && out.contains("GET /c 0"),
            "{out}"
        );
        assert!(out.contains("Connection: close"));
    }

    #[test]
    fn bounds_are_enforced() {
        let limits = Limits {
            max_body_bytes: 10,
            max_head_bytes: 200,
            head_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let srv = start(limits);
        let out = exchange(
            srv.local_addr(),
            b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
        );
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        let big = format!("GET /x HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(300));
        assert!(exchange(srv.local_addr(), big.as_bytes()).starts_with("HTTP/1.1 431"));
        assert!(
            exchange(
                srv.local_addr(),
                b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .starts_with("HTTP/1.1 411")
        );
        assert!(exchange(srv.local_addr(), b"BLAH\r\n\r\n").starts_with("HTTP/1.1 400"));
        // A slow head is cut off.
        let mut s = TcpStream::connect(srv.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nX-Slow: ").unwrap();
        let started = Instant::now();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn streams_flush_each_write_and_close() {
        let srv = start(Limits::default());
        let out = exchange(srv.local_addr(), b"GET /stream HTTP/1.1\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 200 OK") && out.contains("Connection: close"),
            "{out}"
        );
        assert!(!out.contains("Content-Length"), "{out}");
        assert!(out.ends_with("data: one\n\ndata: two\n\n"), "{out}");
    }

    #[test]
    fn capacity_is_bounded() {
        let srv = start(Limits {
            max_connections: 1,
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        });
        let _hold = TcpStream::connect(srv.local_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let out = exchange(srv.local_addr(), b"GET /x HTTP/1.1\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 503") && out.contains("Retry-After"),
            "{out}"
        );
    }

    #[test]
    fn requests_parse_from_bytes() {
        let (reqs, refused) = parse_all(
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c",
            &Limits::default(),
        );
        assert_eq!(
            reqs,
            vec![
                ("GET".into(), "/a".into(), 0),
                ("POST".into(), "/b".into(), 2)
            ]
        );
        assert_eq!(refused, Some(400));
        let (_, refused) = parse_all(
            b"GET /a HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            &Limits::default(),
        );
        assert_eq!(refused, Some(413));
    }

    #[test]
    fn query_parameters_decode() {
        let r = Request {
            method: "GET".into(),
            path: "/m".into(),
            query: "session_id=ab%20c&x=1&sessionId=q".into(),
            headers: vec![],
            body: vec![],
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        assert_eq!(r.query_param("session_id").as_deref(), Some("ab c"));
        assert_eq!(r.query_param("sessionId").as_deref(), Some("q"));
        assert_eq!(r.query_param("nope"), None);
    }
}
