//! The values a handler sees and returns: the parsed [`Request`], the [`Response`] to write
//! (or a [`Handled::Stream`] that takes the connection over through a [`Streamer`]), and the
//! encoding of a response head. No I/O but the streamer's writes; no bounds (those are the
//! connection server's).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

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
        crate::net::header(&self.headers, name)
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| crate::net::percent_decode(v, true))
        })
    }
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
    Respond(Response),
    /// Write this head (no Content-Length; the connection closes afterwards), then give the
    /// socket to the function, which streams the body on this connection's thread.
    Stream(Response, Box<dyn FnOnce(Streamer) + Send>),
}

/// The socket of a taken-over connection: writes are flushed at once.
pub struct Streamer {
    pub(super) stream: TcpStream,
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

pub(super) fn encode_head(resp: &Response, keep_alive: bool, with_length: bool) -> Vec<u8> {
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
