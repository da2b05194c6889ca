//! The simulator's own small HTTP/1.1: one thread per connection reads requests one after the
//! other (keep-alive), hands each to `respond`, and writes the reply in a single write.
//!
//! Enough HTTP for Kimai clients: request line, headers (the head parsed by `httparse`),
//! `Content-Length` bodies (a chunked request body gets 411, as some PHP front ends answer),
//! `Connection: close`, HTTP/1.0, `HEAD`. Every read is bounded: the head by
//! [`MAX_HEAD_BYTES`], the body by [`MAX_BODY_BYTES`] (413), an idle connection by
//! [`IDLE_TIMEOUT`].
//!
//! Knows HTTP framing and the wire types only: the handler is handed in by `mod.rs`, so this
//! file never imports the simulator that imports it.

use super::wire::Answer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Largest request body the simulator reads; larger bodies get 413 (Kimai's web server would
/// refuse far larger ones, but nothing legitimate comes close).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest request line plus headers.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A keep-alive connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One parsed request.
pub struct Request {
    pub method: String,
    /// Path and query string as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the reply (decides its `Connection` header,
    /// and so the reply's exact size: see [`encoded_len`]).
    pub keep_alive: bool,
}

enum Read1 {
    Request(Request),
    /// A reply to send before closing (malformed request).
    Refuse(Answer),
    Closed,
}

/// Serves requests on `stream` until the client closes it, asks to, or idles out. `respond`
/// answers one request; `None` closes the connection without a byte.
pub fn serve_connection(stream: TcpStream, respond: &dyn Fn(Request) -> Option<Answer>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    loop {
        match read_request(&mut reader) {
            Read1::Closed => break,
            Read1::Refuse(reply) => {
                let _ = writer.write_all(&encode(&reply, false, false));
                break;
            }
            Read1::Request(req) => {
                let keep_alive = req.keep_alive;
                let head_only = req.method == "HEAD";
                // A panicking handler costs this connection, not the simulator.
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| respond(req)));
                match reply {
                    Ok(Some(reply)) => {
                        if writer
                            .write_all(&encode(&reply, keep_alive, head_only))
                            .is_err()
                            || !keep_alive
                        {
                            break;
                        }
                    }
                    // DropConnection: close without a byte.
                    Ok(None) => break,
                    Err(_) => {
                        let _ = writer.write_all(&encode(&Answer::error(500), false, false));
                        break;
                    }
                }
            }
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Bytes [`encode`] makes of `reply`: what the client receives for it, head included (the
/// simulator's request log counts them, so that tests can hold a tool call to a byte budget).
pub fn encoded_len(reply: &Answer, keep_alive: bool, head_only: bool) -> usize {
    head(reply, keep_alive).len() + body_sent(reply, head_only).len()
}

fn body_sent(reply: &Answer, head_only: bool) -> &[u8] {
    if head_only || reply.status == 204 {
        &[]
    } else {
        &reply.body
    }
}

/// The whole response as one buffer, so that it leaves in one write.
fn encode(reply: &Answer, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let body = body_sent(reply, head_only);
    let mut out = head(reply, keep_alive);
    out.reserve_exact(body.len());
    out.extend_from_slice(body);
    out
}

/// Status line and headers, through the blank line.
fn head(reply: &Answer, keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status)).as_bytes(),
    );
    if let Some(ct) = reply.content_type {
        out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
    }
    for (k, v) in &reply.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if reply.status != 204 {
        out.extend_from_slice(format!("Content-Length: {}\r\n", reply.body.len()).as_bytes());
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
    out
}

/// Reads one line (up to `\n`), counting against `budget`.
fn line(reader: &mut BufReader<TcpStream>, budget: &mut usize) -> Option<Result<String, ()>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX) + 1;
    match reader.by_ref().take(limit).read_until(b'\n', &mut buf) {
        Ok(0) => None,
        Ok(n) => {
            if n > *budget || !buf.ends_with(b"\n") {
                return Some(Err(()));
            }
            *budget -= n;
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            Some(String::from_utf8(buf).map_err(|_| ()))
        }
        Err(_) => None,
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Read1 {
    let mut budget = MAX_HEAD_BYTES;
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    let request_line = loop {
        match line(reader, &mut budget) {
            None => return Read1::Closed,
            Some(Err(())) => return Read1::Refuse(Answer::error(400)),
            Some(Ok(l)) if l.is_empty() => continue,
            Some(Ok(l)) => break l,
        }
    };
    // The head again as one CRLF-terminated block for `httparse`; lines end in LF or CRLF on
    // the wire and have been checked against the budget and for UTF-8 one by one.
    let mut head = request_line.into_bytes();
    head.extend_from_slice(b"\r\n");
    // A malformed request line is refused before its headers are read.
    if httparse::Request::new(&mut []).parse(&head).is_err() {
        return Read1::Refuse(Answer::error(400));
    }
    let mut lines = 0;
    loop {
        match line(reader, &mut budget) {
            None => return Read1::Closed,
            Some(Err(())) => return Read1::Refuse(Answer::error(431)),
            Some(Ok(l)) if l.is_empty() => break,
            Some(Ok(l)) => {
                head.extend_from_slice(l.as_bytes());
                head.extend_from_slice(b"\r\n");
                lines += 1;
            }
        }
    }
    head.extend_from_slice(b"\r\n");
    let Ok(parsed) = crate::net::parse_head(&head, lines) else {
        return Read1::Refuse(Answer::error(400));
    };
    let keep_alive = parsed.keep_alive();
    let crate::net::Head {
        method,
        target,
        headers,
        ..
    } = parsed;
    let get = |name: &str| crate::net::header(&headers, name);
    if get("Transfer-Encoding").is_some() {
        return Read1::Refuse(Answer::error(411));
    }
    let length = match get("Content-Length").map(|v| v.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Read1::Refuse(Answer::error(400)),
    };
    if length > MAX_BODY_BYTES {
        return Read1::Refuse(Answer::error(413));
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return Read1::Closed;
    }
    Read1::Request(Request {
        method,
        target,
        headers,
        body,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use crate::net::parse_head;

    #[test]
    fn a_request_line_alone_is_incomplete_not_malformed() {
        let ok = httparse::Request::new(&mut []).parse(b"GET /api/ping HTTP/1.1\r\n");
        assert!(matches!(ok, Ok(httparse::Status::Partial)));
        for bad in [
            &b"GET  /api/ping HTTP/1.1\r\n"[..],
            b"GET /api/ping HTTP/2.0\r\n",
            b"GET /api/ping\r\n",
        ] {
            assert!(httparse::Request::new(&mut []).parse(bad).is_err());
        }
    }

    #[test]
    fn heads_parse_with_their_headers() {
        let head = parse_head(
            b"POST /api/timesheets?x=1 HTTP/1.0\r\nHost: sim\r\nX-Empty:\r\nContent-Length:  2 \r\n\r\n",
            3,
        )
        .unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.target, "/api/timesheets?x=1");
        assert!(head.http10);
        assert_eq!(
            head.headers,
            [
                ("Host".to_string(), "sim".to_string()),
                ("X-Empty".to_string(), String::new()),
                ("Content-Length".to_string(), "2".to_string()),
            ]
        );
        assert!(parse_head(b"GET * HTTP/1.1\r\n\r\n", 0).is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 1).is_err());
    }
}
