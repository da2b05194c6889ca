//! `kimai-mcp health`: ask a running `kimai-mcp serve` for `GET /health` and say whether it is
//! healthy. This is the container image's `HEALTHCHECK` (a `FROM scratch` image has no curl
//! and no shell), and works as well on any machine where the server runs.
//!
//! It owns the URL it is given ([`Target`]), one request over a plain `std::net` TCP
//! connection, and the verdict: healthy means status 200 and a JSON body whose `status` is
//! `"healthy"`, `"ok"` or `"degraded"` (see [`HEALTHY_STATUSES`]). No TLS: the check is for the local process, so an `https` URL is
//! refused rather than half-supported. Everything is bounded: one deadline covers connecting,
//! writing and reading, and at most [`MAX_RESPONSE_BYTES`] are read. Runs on the calling thread
//! only; nothing is shared.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long the whole check may take unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer that is read; `/health` answers a few hundred bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The `status` values that mean healthy: the server's own (`ok`), the Python server's
/// (`healthy`), and `degraded`: the instance serves, but the shared state store of `--state`
/// is unreachable; restarting the instance would not bring the store back, so an orchestrator
/// must not do it (every instance would be restarted for one blip of the store).
pub const HEALTHY_STATUSES: [&str; 3] = ["healthy", "ok", "degraded"];
/// The path asked for when the URL names none.
pub const DEFAULT_PATH: &str = "/health";

/// Where to ask: an `http://` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (for messages).
    pub url: String,
    /// The host to connect to, without IPv6 brackets.
    host: String,
    port: u16,
    /// `host[:port]` as written in the URL, for the `Host` header.
    authority: String,
    /// Path and query, starting with `/`.
    path: String,
}

impl Target {
    /// Parses an `http://host[:port][/path]` URL. A URL without a path asks for `/health`;
    /// the port defaults to 80 as in any http URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(format!(
                "{url:?} is https: the health check talks plain HTTP to the local server \
                 (e.g. http://127.0.0.1:8000/health), not through a TLS proxy"
            ));
        }
        if !lower.starts_with("http://") {
            return Err(format!("{url:?} must start with http://"));
        }
        let rest = &url["http://".len()..];
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(format!("{url:?} must not contain a user name or password"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?} has an unclosed [ in its host"))?;
            match after {
                "" => (host, None),
                p => match p.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(format!("{url:?} has text after its IPv6 address")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("{url:?} has no valid port (1-65535)")),
            },
        };
        let path = match path {
            "" => DEFAULT_PATH.to_string(),
            p if p.starts_with('?') => format!("{DEFAULT_PATH}{p}"),
            p => p.to_string(),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "{url:?} has spaces or control characters in its path"
            ));
        }
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path,
        })
    }
}

/// The URL of the local server's `/health` for a `serve` listening on `host` (its `--host`,
/// `KIMAI_MCP_HOST`) and `port`: an address that means "every interface" (0.0.0.0, ::) is
/// asked on the loopback address of its family.
pub fn local_url(host: Option<&str>, port: u16) -> String {
    let host = match host.map(str::trim).filter(|h| !h.is_empty()) {
        None | Some("0.0.0.0") => "127.0.0.1".to_string(),
        Some(h) => match h.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(a)) if a.is_unspecified() => "[::1]".to_string(),
            Ok(std::net::IpAddr::V6(a)) => format!("[{a}]"),
            Ok(std::net::IpAddr::V4(a)) => a.to_string(),
            Err(_) => h.to_string(),
        },
    };
    format!("http://{host}:{port}{DEFAULT_PATH}")
}

/// What a healthy server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub status: String,
    pub version: Option<String>,
}

/// Why the server is not healthy, or could not be asked. One line each.
#[derive(Debug)]
pub enum Error {
    /// The host name did not resolve.
    Resolve(io::Error),
    /// No connection to any address of the host.
    Connect(io::Error),
    /// The deadline passed while connecting, writing or reading.
    TimedOut(Duration),
    /// Reading or writing failed after the connection was made.
    Io(io::Error),
    /// The answer is not an HTTP/1.x response, or is larger than [`MAX_RESPONSE_BYTES`].
    Malformed(String),
    /// An HTTP status other than 200.
    Status(u16, String),
    /// Status 200, but no JSON object with a string `status`.
    NotJson,
    /// Status 200 and a `status` that is not one of [`HEALTHY_STATUSES`].
    Unhealthy(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            Error::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused => write!(
                f,
                "connection refused (is `kimai-mcp serve` listening on that port?)"
            ),
            Error::Connect(e) => write!(f, "cannot connect: {e}"),
            Error::TimedOut(t) => write!(f, "no answer within {} s", t.as_secs_f64()),
            Error::Io(e) => write!(f, "the connection failed: {e}"),
            Error::Malformed(m) => write!(f, "not an HTTP answer: {m}"),
            Error::Status(code, reason) => write!(f, "answered {code} {reason}"),
            Error::NotJson => write!(f, "answered 200 without a JSON \"status\""),
            Error::Unhealthy(s) => write!(f, "status {s:?} is not healthy"),
        }
    }
}

impl std::error::Error for Error {}

/// Asks `target` once, within `timeout` in all.
pub fn check(target: &Target, timeout: Duration) -> Result<Report, Error> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Error::TimedOut(timeout))
    };
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(Error::Resolve)?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Error::TimedOut(timeout)),
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(Error::Connect(last))?;
    let io_err = |e: io::Error| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::TimedOut(timeout),
        _ => Error::Io(e),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kimai-mcp-health/{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        target.path,
        target.authority,
        crate::VERSION
    );
    stream.set_write_timeout(Some(left()?)).map_err(io_err)?;
    stream.write_all(request.as_bytes()).map_err(io_err)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let answer = Answer::parse(&buf)?;
        if let Some(a) = &answer
            && a.length.is_some_and(|len| a.body.len() >= len)
        {
            return a.verdict();
        }
        stream.set_read_timeout(Some(left()?)).map_err(io_err)?;
        let n = stream.read(&mut chunk).map_err(io_err)?;
        if n == 0 {
            // Closed: whatever arrived is the whole answer.
            return match answer {
                Some(a) => a.verdict(),
                None => Err(Error::Malformed(if buf.is_empty() {
                    "the connection closed without an answer".into()
                } else {
                    "the connection closed in the middle of the head".into()
                })),
            };
        }
        if buf.len() + n > MAX_RESPONSE_BYTES {
            return Err(Error::Malformed(format!(
                "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An answer whose head has arrived whole; the body may still be partial.
struct Answer<'a> {
    status: u16,
    reason: String,
    /// The bytes after the head so far, cut at `Content-Length` when there are more.
    body: &'a [u8],
    length: Option<usize>,
}

impl<'a> Answer<'a> {
    /// The answer in `buf`, or None while its head is incomplete.
    fn parse(buf: &'a [u8]) -> Result<Option<Answer<'a>>, Error> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(Error::Malformed(e.to_string())),
        };
        let mut length = None;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(Error::Malformed(
                    "a chunked body (the server sends Content-Length)".into(),
                ));
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
            }
        }
        let body = &buf[head_len..];
        Ok(Some(Answer {
            status: resp.code.unwrap_or(0),
            reason: crate::text::safe(resp.reason.unwrap_or("")),
            body: &body[..length.map_or(body.len(), |len: usize| len.min(body.len()))],
            length,
        }))
    }

    fn verdict(&self) -> Result<Report, Error> {
        if self.status != 200 {
            return Err(Error::Status(self.status, self.reason.clone()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(self.body).map_err(|_| Error::NotJson)?;
        let said = value
            .get("status")
            .and_then(|s| s.as_str())
            .ok_or(Error::NotJson)?;
        if !HEALTHY_STATUSES.contains(&said) {
            return Err(Error::Unhealthy(said.to_string()));
        }
        Ok(Report {
            status: said.to_string(),
            version: value
                .get("version")
                .and_then(|v| v.as_str())
                .map(crate::text::safe),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8000/health").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8000, "/health")
        );
        assert_eq!(t.authority, "127.0.0.1:8000");
        let t = Target::parse("HTTP://localhost:9000").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("localhost", 9000, "/health")
        );
        let t = Target::parse("http://[::1]:8000/x?y=1#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8000, "/x?y=1")
        );
        assert_eq!(t.authority, "[::1]:8000");
        let t = Target::parse("http://example.test").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/health"));
        let e = Target::parse("https://127.0.0.1:8000/health").unwrap_err();
        assert!(e.contains("is https"), "{e}");
        for bad in [
            "127.0.0.1:8000",
            "ftp://h/",
            "http://",
            "http://:8000/health",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u:p@h/",
            "http://[::1/",
            "http://[::1]x/",
            "http://h/a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_urls() {
        assert_eq!(local_url(None, 8000), "http://127.0.0.1:8000/health");
        assert_eq!(
            local_url(Some("0.0.0.0"), 8001),
            "http://127.0.0.1:8001/health"
        );
        assert_eq!(local_url(Some("::"), 8000), "http://[::1]:8000/health");
        assert_eq!(local_url(Some("::1"), 8000), "http://[::1]:8000/health");
        assert_eq!(
            local_url(Some("10.0.0.5"), 8000),
            "http://10.0.0.5:8000/health"
        );
        assert_eq!(
            local_url(Some("localhost"), 8000),
            "http://localhost:8000/health"
        );
        assert_eq!(local_url(Some(" "), 8000), "http://127.0.0.1:8000/health");
        for h in [None, Some("::"), Some("0.0.0.0"), Some("localhost")] {
            assert!(Target::parse(&local_url(h, 8000)).is_ok(), "{h:?}");
        }
    }

    /// A one-connection server on a loopback port that reads the request head, then writes
    /// `parts` (pausing between them) and closes unless `hold` (then it keeps the connection
    /// open for 5 s). Returns the URL and the request it received.
    fn server(parts: Vec<Vec<u8>>, hold: bool) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&b[..n]);
            }
            for p in parts {
                let _ = s.write_all(&p);
                let _ = s.flush();
                std::thread::sleep(Duration::from_millis(20));
            }
            if hold {
                std::thread::sleep(Duration::from_secs(5));
            }
            String::from_utf8_lossy(&req).into_owned()
        });
        (url, handle)
    }

    fn answer(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn ask(url: &str) -> Result<Report, Error> {
        check(&Target::parse(url).unwrap(), Duration::from_secs(3))
    }

    #[test]
    fn healthy_answers() {
        for status in HEALTHY_STATUSES {
            let body = format!(r#"{{"status":"{status}","version":"1.2.3"}}"#);
            let (url, h) = server(vec![answer("200 OK", &body)], false);
            let r = ask(&url).unwrap();
            assert_eq!(r.status, status);
            assert_eq!(r.version.as_deref(), Some("1.2.3"));
            let req = h.join().unwrap();
            assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
            assert!(req.contains("\r\nHost: 127.0.0.1:"), "{req}");
            assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
        }
    }

    #[test]
    fn an_answer_in_pieces_without_length_runs_to_the_close() {
        let (url, h) = server(
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Ty".to_vec(),
                b"pe: application/json\r\n\r\n{\"sta".to_vec(),
                b"tus\":\"ok\"}".to_vec(),
            ],
            false,
        );
        assert_eq!(ask(&url).unwrap().status, "ok");
        h.join().unwrap();
    }

    #[test]
    fn a_kept_open_connection_ends_at_content_length() {
        // The server holds the connection for 5 s after answering; the check is done long
        // before (the thread is left to finish on its own).
        let (url, _held) = server(vec![answer("200 OK", r#"{"status":"ok"}"#)], true);
        let start = Instant::now();
        assert!(ask(&url).is_ok());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn unhealthy_answers_say_why() {
        let cases: [(Vec<u8>, &str); 6] = [
            (
                answer("503 Service Unavailable", r#"{"status":"ok"}"#),
                "answered 503 Service Unavailable",
            ),
            (
                answer("200 OK", r#"{"status":"starting"}"#),
                "status \"starting\" is not healthy",
            ),
            (
                answer("200 OK", "<html>ok</html>"),
                "without a JSON \"status\"",
            ),
            (
                answer("200 OK", r#"{"status":1}"#),
                "without a JSON \"status\"",
            ),
            (b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), "not an HTTP answer"),
            (Vec::new(), "closed without an answer"),
        ];
        for (reply, want) in cases {
            let (url, h) = server(vec![reply], false);
            let e = ask(&url).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
            assert!(!e.contains('\n'), "{e:?}");
            h.join().unwrap();
        }
    }

    #[test]
    fn an_oversized_answer_is_refused() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(MAX_RESPONSE_BYTES)
        );
        let (url, h) = server(vec![big.into_bytes()], false);
        let e = ask(&url).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn a_closed_port_is_refused() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = ask(&format!("http://127.0.0.1:{port}/health")).unwrap_err();
        assert!(matches!(e, Error::Connect(_)), "{e:?}");
        assert!(e.to_string().contains("connection refused"), "{e}");
    }

    #[test]
    fn a_silent_server_times_out_on_time() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let start = Instant::now();
        let e = check(&Target::parse(&url).unwrap(), Duration::from_millis(300)).unwrap_err();
        let took = start.elapsed();
        assert!(matches!(e, Error::TimedOut(_)), "{e:?}");
        assert_eq!(e.to_string(), "no answer within 0.3 s");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(listener);
    }
}
