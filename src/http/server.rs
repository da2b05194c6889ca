//! A small HTTP/1.1 server: one thread per connection, every read, wait and count bounded.
//!
//! Why not tiny_http, which the design first named: tiny_http 0.12 hands each accepted
//! connection to an internal task pool whose `spawn` can queue a connection behind a thread
//! that is about to run another one (it counts that thread as idle until it wakes), so in a
//! burst of new connections one of them waits until some other keep-alive connection closes —
//! seen as requests that hung for seconds in our own tests. It also sets no socket timeouts
//! (an idle or slow-header client holds a thread forever) and cannot stream a response without
//! buffering it. What MCP needs of HTTP is small: this module reads a request head (bounded by
//! [`Limits::max_head_bytes`] and [`Limits::head_timeout`], parsed strictly by `httparse`), a
//! `Content-Length` body (bounded by [`Limits::max_body_bytes`], else 413, and by the total
//! [`Limits::body_timeout`], else 408; the buffer grows with what arrived, never with what was
//! announced), hands it to the handler, and writes the reply in one write; keep-alive until
//! [`Limits::idle_timeout`]. A new connection gets no idle allowance: its first head must
//! arrive within the head timeout, so a silent socket costs 10 s, not a minute. A handler may
//! take the connection over to stream (SSE) and then owns the socket.
//!
//! Connections are bounded in total ([`Limits::max_connections`]) and per peer
//! ([`Limits::per_peer`]: an IPv4 address, or an IPv6 /64), so that one client cannot take the
//! connections everyone else needs; what a peer may hold is the caller's choice (e.g. more for
//! a reverse proxy). A connection over a cap gets 503 and is closed at once, by the accept
//! thread, without ever blocking it. Each handler call runs under `catch_unwind` (a panic
//! costs that request a 500 and its connection, nothing else), and a connection's share of the
//! counts is an [`Admission`] that gives it back when dropped, however the thread ends.
//!
//! Threads: `http-accept` accepts and admits; each connection runs on its own `http-conn`
//! thread. Shared state is the [`Book`] of open connections: an atomic count, the per-peer
//! counts and the open sockets (for shutdown), each map behind its own mutex, held only to
//! change an entry. `Server::shutdown` stops accepting, closes idle connections and joins the
//! accept thread.

mod message;
mod read;

pub use message::{Handled, Handler, Request, Response, Streamer, reason};
pub use read::{Parsed, Source, parse_all, parse_requests, peer_ip};

use message::encode_head;
use read::{ReadOutcome, Wait, read_request};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bounds of the HTTP layer.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once, from everyone; more get 503.
    pub max_connections: usize,
    /// The one line a connection refused by `max_connections` is told (which limit, and how
    /// to raise it).
    pub at_capacity: Arc<str>,
    /// Connections one peer may hold at once; more get 503.
    pub per_peer: PeerAllowance,
    /// Request line plus headers.
    pub max_head_bytes: usize,
    /// Request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// The whole head must arrive within this: from the accept for a connection's first
    /// request, from its first byte for a later one (slow-header clients are cut off).
    pub head_timeout: Duration,
    /// A keep-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// The whole body must arrive within this, from the end of the head; else 408.
    pub body_timeout: Duration,
    /// Writing a response may block this long (a client that stops reading).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            at_capacity: "Server at capacity: too many connections are open; try again shortly"
                .into(),
            per_peer: PeerAllowance::fixed(
                64,
                "Too many connections from your address; close some and try again",
            ),
            max_head_bytes: 32 * 1024,
            max_body_bytes: 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// What one peer may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Connections open at once.
    pub max: usize,
    /// The one line a connection over `max` is told.
    pub refusal: Arc<str>,
}

/// Each peer's [`Allowance`], chosen by its address (unmapped from IPv4-mapped IPv6). The
/// count it bounds is kept per IPv4 address and per IPv6 /64 network: one machine, or one
/// home, usually owns a whole /64 and can pick any address in it.
#[derive(Clone)]
pub struct PeerAllowance(Arc<dyn Fn(IpAddr) -> Allowance + Send + Sync>);

impl PeerAllowance {
    pub fn new(f: impl Fn(IpAddr) -> Allowance + Send + Sync + 'static) -> PeerAllowance {
        PeerAllowance(Arc::new(f))
    }

    /// The same allowance for every peer.
    pub fn fixed(max: usize, refusal: &str) -> PeerAllowance {
        let allowance = Allowance {
            max,
            refusal: refusal.into(),
        };
        PeerAllowance::new(move |_| allowance.clone())
    }

    pub fn of(&self, ip: IpAddr) -> Allowance {
        (self.0)(ip)
    }
}

impl fmt::Debug for PeerAllowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerAllowance(..)")
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    book: Arc<Book>,
}

impl Server {
    /// Starts serving `listener` with `handler`.
    pub fn start(listener: TcpListener, limits: Limits, handler: Handler) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let book = Arc::new(Book::default());
        let accept = {
            let (stop, book) = (stop.clone(), book.clone());
            std::thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || accept_loop(listener, limits, handler, stop, book))?
        };
        Ok(Server {
            addr,
            stop,
            accept: Some(accept),
            book,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn active_connections(&self) -> usize {
        self.book.active.load(Ordering::SeqCst)
    }

    /// Peers (IPv4 addresses, IPv6 /64 networks) with a connection open now.
    pub fn connected_peers(&self) -> usize {
        lock(&self.book.peers).len()
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
        for (_, c) in lock(&self.book.open).iter() {
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

/// The open connections: how many, how many per peer, and their sockets (so that shutdown can
/// end idle ones). Entries of the maps exist only while a connection is open, so both stay as
/// small as the connection caps.
#[derive(Default)]
struct Book {
    active: AtomicUsize,
    peers: Mutex<HashMap<IpAddr, usize>>,
    open: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

/// One admitted connection's share of the [`Book`]. Dropping it gives the share back: at the
/// end of its thread, while a panic unwinds that thread, or when the thread could not start.
struct Admission {
    book: Arc<Book>,
    id: u64,
    peer: IpAddr,
}

impl Book {
    /// Counts a new connection from `ip`, or says why it is refused (the line to send).
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        stream: &TcpStream,
        limits: &Limits,
    ) -> Result<Admission, Arc<str>> {
        let allowance = limits.per_peer.of(ip);
        let peer = peer_key(ip);
        {
            // Only the accept thread adds connections, so the checks and the increments below
            // cannot race with another admission.
            let mut peers = lock(&self.peers);
            if self.active.load(Ordering::SeqCst) >= limits.max_connections {
                return Err(limits.at_capacity.clone());
            }
            let held = peers.get(&peer).copied().unwrap_or(0);
            if held >= allowance.max {
                return Err(allowance.refusal);
            }
            peers.insert(peer, held + 1);
            self.active.fetch_add(1, Ordering::SeqCst);
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(c) = stream.try_clone() {
            lock(&self.open).insert(id, c);
        }
        Ok(Admission {
            book: self.clone(),
            id,
            peer,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        lock(&self.book.open).remove(&self.id);
        {
            let mut peers = lock(&self.book.peers);
            match peers.get_mut(&self.peer) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    peers.remove(&self.peer);
                }
            }
        }
        self.book.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The unit connections are counted in: an IPv4 address, or the /64 network of an IPv6
/// address.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// How often at most the accept thread reports refused connections (an attack must not turn
/// into a flood of log lines).
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(60);

fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
    stop: Arc<AtomicBool>,
    book: Arc<Book>,
) {
    let mut refused_since_report = 0u64;
    let mut last_report: Option<Instant> = None;
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (stream, addr) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // e.g. out of file descriptors: back off instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let since = Instant::now();
        let ip = peer_ip(addr);
        let admission = match book.admit(ip, &stream, &limits) {
            Ok(a) => a,
            Err(refusal) => {
                refuse_at_once(stream, &refusal);
                refused_since_report += 1;
                if last_report.is_none_or(|t| t.elapsed() >= REFUSAL_REPORT_EVERY) {
                    log::warn!(
                        "{refused_since_report} connection(s) refused over a connection cap since the last report; the latest from {ip}: {refusal}"
                    );
                    refused_since_report = 0;
                    last_report = Some(Instant::now());
                }
                continue;
            }
        };
        let (limits, handler) = (limits.clone(), handler.clone());
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                let _admission = admission;
                serve_connection(stream, since, &limits, &handler);
            });
        // On failure the closure, and with it the admission, is dropped: the counts go back.
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
        }
    }
}

/// Answers a connection over a cap from the accept thread, which must never wait on a client:
/// the socket is made non-blocking and the short answer written once (a new socket's send
/// buffer has room for it); what the client already sent is read and dropped (bounded), so
/// that closing does not reset the connection before the answer is read.
fn refuse_at_once(mut stream: TcpStream, message: &str) {
    let resp = Response::new(503)
        .header("Retry-After", "5")
        .body("text/plain; charset=utf-8", format!("{message}\n"));
    let mut bytes = encode_head(&resp, false, true);
    bytes.extend_from_slice(&resp.body);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = stream.write(&bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// hook; the connection closes, since the handler may have left it anywhere).
fn panic_response() -> Response {
    Response::new(500)
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .body(
            "application/json",
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: the server failed while handling this request; the failure is logged"}}"#,
        )
}

fn serve_connection(stream: TcpStream, accepted: Instant, limits: &Limits, handler: &Handler) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.write_timeout));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    let mut wait = Wait::First(accepted);
    loop {
        match read_request(&mut reader, peer, limits, wait) {
            ReadOutcome::Closed => break,
            ReadOutcome::Refuse(resp) => {
                let mut bytes = encode_head(&resp, false, true);
                bytes.extend_from_slice(&resp.body);
                let _ = writer.write_all(&bytes);
                linger(&writer, reader);
                return;
            }
            ReadOutcome::Request(req, keep_alive) => {
                wait = Wait::Next;
                let head_only = req.method == "HEAD";
                let method = req.method.clone();
                // A bug in a handler costs this request, not the connection thread's
                // bookkeeping or anyone else's request. The handler's shared state recovers
                // poisoned locks, so observing it after a panic is sound.
                let handled = match catch_unwind(AssertUnwindSafe(|| handler(req))) {
                    Ok(h) => h,
                    Err(_) => {
                        log::error!(
                            "{} {method}: the request handler panicked; answered 500 and closed the connection",
                            peer_ip(peer)
                        );
                        let resp = panic_response();
                        let mut bytes = encode_head(&resp, false, true);
                        if !head_only {
                            bytes.extend_from_slice(&resp.body);
                        }
                        let _ = writer.write_all(&bytes).and_then(|_| writer.flush());
                        break;
                    }
                };
                match handled {
                    Handled::Respond(resp) => {
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
                        let streamer = Streamer { stream: writer };
                        if catch_unwind(AssertUnwindSafe(move || body(streamer))).is_err() {
                            log::error!(
                                "{} {method}: a response stream panicked; its connection is closed",
                                peer_ip(peer)
                            );
                        }
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

#[cfg(test)]
mod tests {
    use super::read::{BODY_FIRST_CAPACITY, MAX_HEADERS, new_body};
    use super::*;

    fn start(limits: Limits) -> Server {
        let l = crate::net::listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let handler: Handler = Arc::new(|req: Request| {
            match req.path.as_str() {
                "/stream" => {
                    return Handled::Stream(
                        Response::new(200).header("Content-Type", "text/event-stream"),
                        Box::new(|mut s: Streamer| {
                            let _ = s.send(b"data: one\n\n");
                            let _ = s.send(b"data: two\n\n");
                        }),
                    );
                }
                "/panic" => panic!("injected panic in a request handler"),
                "/stream-panic" => {
                    return Handled::Stream(
                        Response::new(200).header("Content-Type", "text/event-stream"),
                        Box::new(|mut s: Streamer| {
                            let _ = s.send(b"data: one\n\n");
                            panic!("injected panic in a response stream");
                        }),
                    );
                }
                _ => {}
            }
            Handled::Respond(Response::new(200).body(
                "text/plain",
                format!("{} {} {}", req.method, req.path, req.body.len()),
            ))
        });
        Server::start(l, limits, handler).unwrap()
    }

    fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        exchange_on(TcpStream::connect(addr).unwrap(), raw)
    }

    fn exchange_on(mut s: TcpStream, raw: &[u8]) -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A connection from `src` (an address of 127.0.0.0/8) to `addr`.
    fn connect_from(src: [u8; 4], addr: SocketAddr) -> TcpStream {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((src, 0)).into()).unwrap();
        s.connect_timeout(&addr.into(), Duration::from_secs(5))
            .unwrap();
        s.into()
    }

    /// Waits (bounded) until the server's connection counts are back to zero.
    fn wait_for_no_connections(srv: &Server) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while (srv.active_connections() > 0 || srv.connected_peers() > 0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(srv.active_connections(), 0, "a connection count leaked");
        assert_eq!(srv.connected_peers(), 0, "a per-peer count leaked");
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
    fn a_silent_new_connection_gets_the_head_timeout_not_the_idle_timeout() {
        let srv = start(Limits {
            head_timeout: Duration::from_millis(400),
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        });
        let mut silent = TcpStream::connect(srv.local_addr()).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // A keep-alive connection that completed a request keeps its idle allowance.
        let mut kept = TcpStream::connect(srv.local_addr()).unwrap();
        kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        kept.write_all(b"GET /one HTTP/1.1\r\n\r\n").unwrap();
        let mut buf = [0u8; 512];
        let n = kept.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("GET /one 0"));
        let started = Instant::now();
        let mut out = Vec::new();
        let _ = silent.read_to_end(&mut out);
        let waited = started.elapsed();
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        assert!(
            waited < Duration::from_secs(2),
            "a silent new socket was held {waited:?}"
        );
        std::thread::sleep(Duration::from_millis(400));
        kept.write_all(b"GET /two HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = kept.read_to_string(&mut out);
        assert!(out.contains("GET /two 0"), "{out}");
    }

    #[test]
    fn the_body_deadline_is_total_not_per_read() {
        let srv = start(Limits {
            body_timeout: Duration::from_millis(600),
            ..Limits::default()
        });
        let mut s = TcpStream::connect(srv.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        s.write_all(b"POST /slow HTTP/1.1\r\nContent-Length: 50\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        // One byte every 100 ms: each read finds data, so only a total deadline ends it.
        for _ in 0..40 {
            if s.write_all(b"x").is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn the_body_buffer_grows_with_what_arrived() {
        let mut reader =
            BufReader::new(&b"POST /x HTTP/1.1\r\nContent-Length: 1048575\r\n\r\n0123456789"[..]);
        let limits = Limits {
            max_body_bytes: 2 * 1024 * 1024,
            ..Limits::default()
        };
        // The client stops after 10 bytes: nothing is answered, and nothing was allocated
        // for the megabyte announced.
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        assert!(matches!(
            read_request(&mut reader, peer, &limits, Wait::First(Instant::now())),
            ReadOutcome::Closed
        ));
        let body = new_body(1_048_575);
        assert!(body.capacity() <= BODY_FIRST_CAPACITY);
        // A body that does arrive is complete however large its announcement.
        let big = vec![b'a'; 300_000];
        let mut raw = b"POST /x HTTP/1.1\r\nContent-Length: 300000\r\n\r\n".to_vec();
        raw.extend_from_slice(&big);
        let (reqs, refused) = parse_all(&raw, &limits);
        assert_eq!(reqs, vec![("POST".into(), "/x".into(), 300_000)]);
        assert_eq!(refused, None);
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
            at_capacity: "at capacity (raise --the-option)".into(),
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
        assert!(out.ends_with("at capacity (raise --the-option)\n"), "{out}");
    }

    #[test]
    fn connections_are_bounded_per_peer() {
        let srv = start(Limits {
            per_peer: PeerAllowance::new(|ip| Allowance {
                max: if ip == IpAddr::from([127, 0, 0, 1]) {
                    2
                } else {
                    3
                },
                refusal: format!("too many from {ip}").into(),
            }),
            ..Limits::default()
        });
        let addr = srv.local_addr();
        let held: Vec<TcpStream> = (0..2).map(|_| connect_from([127, 0, 0, 1], addr)).collect();
        std::thread::sleep(Duration::from_millis(100));
        let out = exchange_on(
            connect_from([127, 0, 0, 1], addr),
            b"GET /x HTTP/1.1\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
        assert!(out.ends_with("too many from 127.0.0.1\n"), "{out}");
        // Another address has its own allowance.
        let others: Vec<TcpStream> = (0..2).map(|_| connect_from([127, 0, 0, 2], addr)).collect();
        let out = exchange_on(
            connect_from([127, 0, 0, 2], addr),
            b"GET /y HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(out.contains("GET /y 0"), "{out}");
        assert_eq!(srv.connected_peers(), 2);
        drop(held);
        drop(others);
        wait_for_no_connections(&srv);
        let out = exchange_on(
            connect_from([127, 0, 0, 1], addr),
            b"GET /z HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(out.contains("GET /z 0"), "{out}");
    }

    #[test]
    fn ipv6_peers_are_counted_per_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            peer_key(ip("2001:db8:1:2:aaaa::1")),
            peer_key(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            peer_key(ip("2001:db8:1:2::1")),
            peer_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(peer_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(peer_key(ip("192.0.2.7")), peer_key(ip("192.0.2.8")));
    }

    #[test]
    fn a_panic_costs_one_request_and_no_count() {
        let srv = start(Limits::default());
        for _ in 0..3 {
            let out = exchange(
                srv.local_addr(),
                b"POST /panic HTTP/1.1\r\nContent-Length: 11\r\n\r\nsecret-body",
            );
            assert!(out.starts_with("HTTP/1.1 500"), "{out}");
            assert!(out.contains("Connection: close"), "{out}");
            let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["error"]["code"], -32603);
            assert!(!out.contains("secret-body") && !out.contains("injected"));
            let out = exchange(srv.local_addr(), b"GET /stream-panic HTTP/1.1\r\n\r\n");
            assert!(
                out.starts_with("HTTP/1.1 200") && out.ends_with("data: one\n\n"),
                "{out}"
            );
        }
        wait_for_no_connections(&srv);
        let out = exchange(
            srv.local_addr(),
            b"GET /after HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(out.contains("GET /after 0"), "{out}");
        wait_for_no_connections(&srv);
    }

    fn status_of(raw: &[u8]) -> Option<u16> {
        parse_all(raw, &Limits::default()).1
    }

    #[test]
    fn content_length_is_digits_only() {
        for bad in ["+4", "-1", "1 0", "0x10", "4.0", "", "1,1", "٤"] {
            let raw = format!("POST /x HTTP/1.1\r\nContent-Length: {bad}\r\n\r\nabcd");
            assert_eq!(status_of(raw.as_bytes()), Some(400), "{bad:?}");
        }
        // Blanks around the value are not part of it (RFC 9110 §5.5).
        let (reqs, refused) = parse_all(
            b"POST /x HTTP/1.1\r\nContent-Length:   4 \t\r\n\r\nabcd",
            &Limits::default(),
        );
        assert_eq!((reqs.len(), refused), (1, None));
        assert_eq!(reqs[0].2, 4);
        // Repeated equal values are one value; different ones are refused.
        let (reqs, _) = parse_all(
            b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
            &Limits::default(),
        );
        assert_eq!(reqs.len(), 1);
        assert_eq!(
            status_of(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab"),
            Some(400)
        );
        // Digits beyond u64 are a number too large, not a malformed one.
        assert_eq!(
            status_of(b"POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Some(413)
        );
    }

    #[test]
    fn lines_must_end_with_crlf() {
        assert_eq!(status_of(b"GET / HTTP/1.1\n\r\n"), Some(400));
        assert_eq!(status_of(b"GET / HTTP/1.1\nHost: x\n\n"), Some(400));
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), Some(400));
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\r\n\n"), Some(400));
        assert_eq!(status_of(b"\nGET / HTTP/1.1\r\n\r\n"), Some(400));
        // A bare CR is no line end either.
        assert_eq!(status_of(b"GET / HTTP/1.1\rHost: x\r\n\r\n"), Some(400));
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), Some(400));
        // Empty lines before the request line are skipped (RFC 9112 §2.2).
        let (reqs, refused) = parse_all(b"\r\n\r\nGET /a HTTP/1.1\r\n\r\n", &Limits::default());
        assert_eq!((reqs.len(), refused), (1, None));
    }

    #[test]
    fn obsolete_line_folding_is_refused() {
        for folded in [
            "GET / HTTP/1.1\r\nX-A: 1\r\n continued\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n",
            "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        ] {
            assert_eq!(status_of(folded.as_bytes()), Some(400), "{folded:?}");
        }
        let (_, refused) = parse_all(
            b"GET / HTTP/1.1\r\nX-A: 1\r\n continued\r\n\r\n",
            &Limits::default(),
        );
        assert_eq!(refused, Some(400));
    }

    #[test]
    fn request_lines_and_headers_are_strict() {
        for bad in [
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1 \r\n\r\n",
            "get / HTTP/1.1\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "GET * HTTP/1.1\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        ] {
            assert_eq!(status_of(bad.as_bytes()), Some(400), "{bad:?}");
        }
        assert_eq!(
            status_of(b"GET / HTTP/1.1\r\nX-Bad: \xff\xfe\r\n\r\n"),
            Some(400)
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(status_of(raw.as_bytes()), Some(431));
        // HTTP/1.0 and values with inner blanks are fine.
        let (reqs, refused) = parse_all(
            b"GET /old HTTP/1.0\r\nUser-Agent: a b  c\r\n\r\n",
            &Limits::default(),
        );
        assert_eq!((reqs.len(), refused), (1, None));
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
    fn parsed_requests_carry_their_heads() {
        let raw = b"\r\nGET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nConnection: close\r\n\r\n";
        let (reqs, refused) = parse_requests(raw, &Limits::default());
        assert_eq!(refused, None);
        let heads: Vec<&[u8]> = reqs.iter().map(|r| r.head).collect();
        assert_eq!(
            heads,
            vec![
                &b"\r\nGET /a HTTP/1.1\r\n\r\n"[..],
                &b"POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\n"[..],
                &b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
            ]
        );
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
