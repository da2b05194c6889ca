//! The simulator's own small HTTP/1.1: one thread per connection reads requests one after the
//! other (keep-alive), hands each to `respond`, and writes the reply in a single write.
//!
//! Enough HTTP for Kimai clients: request line, headers, `Content-Length` bodies (a chunked
//! request body gets 411, as some PHP front ends answer), `Connection: close`, HTTP/1.0,
//! `HEAD`. Every read is bounded: the head by [`MAX_HEAD_BYTES`], the body by
//! `MAX_BODY_BYTES` (413), an idle connection by [`IDLE_TIMEOUT`].

use super::wire::Answer;
use super::{MAX_BODY_BYTES, Shared, respond};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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
}

enum Read1 {
    Request(Request, bool),
    /// A reply to send before closing (malformed request).
    Refuse(Answer),
    Closed,
}

/// Serves requests on `stream` until the client closes it, asks to, or idles out.
pub fn serve_connection(stream: TcpStream, shared: &Shared) {
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
            Read1::Request(req, keep_alive) => {
                let head_only = req.method == "HEAD";
                // A panicking handler costs this connection, not the simulator.
                let reply =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| respond(shared, req)));
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

/// The whole response as one buffer, so that it leaves in one write.
fn encode(reply: &Answer, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.body.len() + 256);
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
    if !head_only && reply.status != 204 {
        out.extend_from_slice(&reply.body);
    }
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
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Read1::Refuse(Answer::error(400));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Read1::Refuse(Answer::error(400));
    }
    let mut headers = Vec::new();
    loop {
        match line(reader, &mut budget) {
            None => return Read1::Closed,
            Some(Err(())) => return Read1::Refuse(Answer::error(431)),
            Some(Ok(l)) if l.is_empty() => break,
            Some(Ok(l)) => match l.split_once(':') {
                Some((k, v)) => headers.push((k.trim().to_string(), v.trim().to_string())),
                None => return Read1::Refuse(Answer::error(400)),
            },
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
    Read1::Request(
        Request {
            method: method.to_string(),
            target: target.to_string(),
            headers,
            body,
        },
        keep_alive,
    )
}
