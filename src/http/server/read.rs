//! Reading requests from a connection: the head (bounded in bytes and time, parsed strictly
//! by `httparse` with our own rules on top), the `Content-Length` body (bounded in bytes and in
//! total time; the buffer grows with what arrived), and the same reading over a byte slice for
//! the fuzzer and the tests. Returns what to do next; writes nothing.

use super::Limits;
use super::message::{Request, Response};
use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub(super) enum ReadOutcome {
    Request(Request, bool),
    /// Answer this and close.
    Refuse(Response),
    Closed,
}

/// When the next request's head must arrive.
#[derive(Clone, Copy, Debug)]
pub(super) enum Wait {
    /// The first request of a connection accepted at this instant: the whole head within the
    /// head timeout from then (a new socket that stays silent is closed then).
    First(Instant),
    /// A later request on a keep-alive connection: its first byte within the idle timeout,
    /// the rest of the head within the head timeout from that byte.
    Next,
}

/// The answer to a request whose handler panicked (the panic itself is logged by the panic
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

/// Headers in one request head; more get 431.
pub(super) const MAX_HEADERS: usize = 100;
/// The body buffer starts at most this large and grows with what arrives: what a client
/// announces in `Content-Length` costs nothing until it sends it.
pub(super) const BODY_FIRST_CAPACITY: usize = 16 * 1024;

/// The buffer for a body of `length` announced bytes.
pub(super) fn new_body(length: usize) -> Vec<u8> {
    Vec::with_capacity(length.min(BODY_FIRST_CAPACITY))
}

fn refuse(status: u16, message: &str) -> ReadOutcome {
    ReadOutcome::Refuse(
        Response::new(status).body("text/plain; charset=utf-8", format!("{message}\n")),
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Waits until input is available, up to `deadline`; false when the connection ended or
/// stayed silent.
fn wait_for_input<S: Source>(reader: &mut BufReader<S>, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        reader.get_ref().set_timeout(Some(left));
        match reader.fill_buf() {
            Ok(b) => return !b.is_empty(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq)]
enum HeadError {
    /// The deadline passed.
    Timeout,
    /// More than the head limit before the blank line.
    TooLarge,
    /// A line ended in a bare LF (RFC 9112 §2.2: a server must not treat it as a line end
    /// unless it is lenient, and leniency is what request smuggling needs).
    BareLf,
    /// The connection ended in the middle of the head.
    Truncated,
}

/// Reads a request head up to and including its blank line, bounded by `max` bytes and
/// `deadline`. Empty lines before the request line are skipped (RFC 9112 §2.2). `Ok(None)`:
/// the connection ended before a request began.
fn read_head<S: Source>(
    reader: &mut BufReader<S>,
    max: usize,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, HeadError> {
    let mut head = Vec::new();
    let mut seen = 0usize;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        reader.get_ref().set_timeout(Some(left));
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if is_timeout(&e) => return Err(HeadError::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        };
        if available.is_empty() {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(HeadError::Truncated)
            };
        }
        let mut used = 0;
        let mut complete = false;
        for &b in available {
            used += 1;
            seen += 1;
            if seen > max {
                return Err(HeadError::TooLarge);
            }
            if b != b'\n' {
                head.push(b);
                continue;
            }
            if head.last() != Some(&b'\r') {
                return Err(HeadError::BareLf);
            }
            if head.len() == 1 {
                // An empty line before the request line.
                head.clear();
                continue;
            }
            head.push(b);
            if head.ends_with(b"\r\n\r\n") {
                complete = true;
                break;
            }
        }
        reader.consume(used);
        if complete {
            return Ok(Some(head));
        }
    }
}

/// A `Content-Length` value: ASCII digits only (RFC 9110 §8.6) — no sign, no blank inside, no
/// hexadecimal. A number too large for `u64` is still a number (and gets 413).
fn content_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(u64::MAX))
}

pub(super) fn read_request<S: Source>(
    reader: &mut BufReader<S>,
    peer: SocketAddr,
    limits: &Limits,
    wait: Wait,
) -> ReadOutcome {
    let first_byte_by = match wait {
        Wait::First(accepted) => accepted + limits.head_timeout,
        Wait::Next => Instant::now() + limits.idle_timeout,
    };
    if !wait_for_input(reader, first_byte_by) {
        return ReadOutcome::Closed;
    }
    let head_by = match wait {
        Wait::First(accepted) => accepted + limits.head_timeout,
        Wait::Next => Instant::now() + limits.head_timeout,
    };
    let head = match read_head(reader, limits.max_head_bytes, head_by) {
        Ok(Some(h)) => h,
        Ok(None) => return ReadOutcome::Closed,
        Err(HeadError::Timeout) => {
            return refuse(
                408,
                "Request Timeout: the request head did not arrive in time",
            );
        }
        Err(HeadError::TooLarge) => return refuse(431, "Request Header Fields Too Large"),
        Err(HeadError::BareLf) => {
            return refuse(400, "Bad Request: every line must end with CRLF");
        }
        Err(HeadError::Truncated) => return refuse(400, "Bad Request: incomplete request head"),
    };
    let parsed = match crate::net::parse_head(&head, MAX_HEADERS) {
        Ok(h) => h,
        Err((status, message)) => return refuse(status, &message),
    };
    let keep_alive = parsed.keep_alive();
    let crate::net::Head {
        method,
        target,
        headers,
        ..
    } = parsed;
    drop(head);
    let get = |name: &str| crate::net::header(&headers, name);
    if get("Transfer-Encoding").is_some() {
        return refuse(411, "Length Required: send the body with Content-Length");
    }
    let mut length: Option<u64> = None;
    for (_, v) in headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
    {
        let Some(n) = content_length(v) else {
            return refuse(400, "Bad Request: invalid Content-Length (digits only)");
        };
        if length.is_some_and(|l| l != n) {
            return refuse(400, "Bad Request: conflicting Content-Length headers");
        }
        length = Some(n);
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body_bytes as u64 {
        return refuse(
            413,
            &format!(
                "Payload Too Large: the body may have at most {} bytes",
                limits.max_body_bytes
            ),
        );
    }
    let length = length as usize;
    let body_by = Instant::now() + limits.body_timeout;
    let mut body = new_body(length);
    while body.len() < length {
        let left = body_by.saturating_duration_since(Instant::now());
        let timed_out = || {
            refuse(
                408,
                &format!(
                    "Request Timeout: the request body did not arrive within {} s",
                    limits.body_timeout.as_secs_f64()
                ),
            )
        };
        if left.is_zero() {
            return timed_out();
        }
        reader.get_ref().set_timeout(Some(left));
        match reader.fill_buf() {
            // The client is gone.
            Ok([]) => return ReadOutcome::Closed,
            Ok(available) => {
                let n = available.len().min(length - body.len());
                body.extend_from_slice(&available[..n]);
                reader.consume(n);
            }
            Err(e) if is_timeout(&e) => return timed_out(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return ReadOutcome::Closed,
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    ReadOutcome::Request(
        Request {
            method,
            path,
            query,
            headers,
            body,
            peer,
        },
        keep_alive,
    )
}

/// One request as [`parse_requests`] found it.
#[derive(Debug, PartialEq)]
pub struct Parsed<'a> {
    pub method: String,
    pub path: String,
    pub body_len: usize,
    /// The bytes of its head as sent (with any empty lines before it), up to the blank line.
    pub head: &'a [u8],
}

/// Parses the requests in `bytes` the way a connection would (for the fuzzer): each request,
/// then the status of a refusal, if one ends the input.
pub fn parse_requests<'a>(bytes: &'a [u8], limits: &Limits) -> (Vec<Parsed<'a>>, Option<u16>) {
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut reader = BufReader::new(bytes);
    let mut out = Vec::new();
    let mut wait = Wait::First(Instant::now());
    let mut start = 0;
    loop {
        match read_request(&mut reader, peer, limits, wait) {
            ReadOutcome::Request(r, keep_alive) => {
                let end = bytes.len() - reader.get_ref().len() - reader.buffer().len();
                out.push(Parsed {
                    head: &bytes[start..end - r.body.len()],
                    method: r.method,
                    path: r.path,
                    body_len: r.body.len(),
                });
                start = end;
                if !keep_alive {
                    return (out, None);
                }
            }
            ReadOutcome::Refuse(resp) => return (out, Some(resp.status)),
            ReadOutcome::Closed => return (out, None),
        }
        wait = Wait::Next;
    }
}

/// [`parse_requests`] as (method, path, body length) triples.
pub fn parse_all(bytes: &[u8], limits: &Limits) -> (Vec<(String, String, usize)>, Option<u16>) {
    let (requests, refused) = parse_requests(bytes, limits);
    let requests = requests
        .into_iter()
        .map(|p| (p.method, p.path, p.body_len))
        .collect();
    (requests, refused)
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
