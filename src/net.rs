//! HTTP plumbing shared by both servers (`serve` and the simulated Kimai): listening sockets,
//! the strict parsing of a request head, and the percent-decoding of paths, query strings and
//! forms. No Kimai and no MCP knowledge:
//! the simulator may share HTTP framing, never Kimai logic.
//!
//! Both write each response in one go, but a streamed response (SSE) is many small writes:
//! with Nagle's algorithm on, a small write waits for the peer's ACK of the previous one,
//! which a peer that delays ACKs sends only after 40 ms. Linux copies `TCP_NODELAY` from a
//! listening socket to each accepted one, so the listener is created here with it set (the
//! connection code sets it again, for systems that do not copy it).

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};

/// Pending connections the kernel queues before `accept`.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Binds a TCP listener with `TCP_NODELAY` (inherited by accepted sockets) and `SO_REUSEADDR`.
pub fn listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// `%XX` escapes decoded (an escape that is not two hex digits stays as it is), and `+` read as
/// a space when `plus_is_space` (query strings and forms; not paths); invalid UTF-8 replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The head parsed: method, target, version, headers.
pub struct Head {
    pub method: String,
    pub target: String,
    /// HTTP/1.0 (else 1.1).
    pub http10: bool,
    pub headers: Vec<(String, String)>,
}

/// The first value of header `name` in `headers` (names compare case-insensitively).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Head {
    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether the connection stays open after this request: HTTP/1.1 unless it says
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let connection = self
            .header("Connection")
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if self.http10 {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }
}

/// Parses a complete request head (every line ending in CRLF, then the empty line) with
/// `httparse`, at most `max_headers` headers,
/// strictly: one space between the parts of the request line, token header names, no white
/// space before a colon, no obsolete line folding, UTF-8 values.
pub fn parse_head(head: &[u8], max_headers: usize) -> Result<Head, (u16, String)> {
    // httparse reports a folded line as a bad header name; say what it is.
    if head
        .windows(3)
        .any(|w| w[0] == b'\r' && w[1] == b'\n' && matches!(w[2], b' ' | b'\t'))
    {
        return Err((400, "Bad Request: a header line starts with white space (obsolete line folding is not accepted)".into()));
    }
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err((400, "Bad Request: incomplete request head".into()));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err((
                431,
                format!("Request Header Fields Too Large: at most {max_headers} headers"),
            ));
        }
        Err(httparse::Error::Version) => {
            return Err((
                400,
                "Bad Request: only HTTP/1.0 and HTTP/1.1 are served".into(),
            ));
        }
        Err(e) => return Err((400, format!("Bad Request: malformed head ({e})"))),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err((400, "Bad Request: malformed request line".into()));
    };
    if !method.bytes().all(|b| b.is_ascii_uppercase()) || !target.starts_with('/') {
        return Err((400, "Bad Request: malformed request line".into()));
    }
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err((400, "Bad Request: a header value is not UTF-8".into()));
        };
        headers.push((
            h.name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        http10: version == 0,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let l = listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        let (accepted, _) = l.accept().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY was not inherited");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("%41", false), "A");
        assert_eq!(percent_decode("%4", false), "%4");
        assert_eq!(percent_decode("%zz%", true), "%zz%");
    }
}
