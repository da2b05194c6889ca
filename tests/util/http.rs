//! Helpers for `kimai-mcp serve`: the built binary on a loopback port with two slug users, a
//! raw HTTP/1.1 client (from the default or a chosen 127.x.y.z source address, on a fresh or a
//! kept connection, so every status code and header can be checked), and the MCP bodies and
//! session handshake the HTTP tests share.

use super::{DEADLINE, TempDir, bin};
use kimai_mcp::sim::Sim;
use serde_json::{Value, json};
use socket2::{Domain, Socket, Type};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SLUG_A: &str = "k7Hq2vX9mPz4Lw8Rt3NsQa";
pub const SLUG_B: &str = "Zp4Rt8Wq2Lm6Xv9Bn3KsJd";
pub const SERVER_TOKEN: &str = "test-server-token-0123456789abcdef";
pub const JSON_SSE: &str = "application/json, text/event-stream";

// ---- The server process ----

/// A `kimai-mcp serve` process.
pub struct Serve {
    child: Child,
    pub addr: String,
    logs: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Serve {
    /// Two users: A is tony_teamlead, B is john_user.
    pub fn start(sim: &Sim, extra: &[&str]) -> Serve {
        Serve::start_logging(sim, extra, "debug")
    }

    /// Like `start`, with `RUST_LOG` set to `level`.
    pub fn start_logging(sim: &Sim, extra: &[&str], level: &str) -> Serve {
        let body = json!({
            "_comment": "test users",
            SLUG_A: {"kimai_url": sim.url(), "kimai_token": sim.token("tony_teamlead").unwrap(), "kimai_user_id": 3},
            SLUG_B: {"kimai_url": sim.url(), "kimai_token": sim.token("john_user").unwrap()},
        });
        Serve::start_with(sim, &body, extra, level)
    }

    /// Starts `serve` with this users file (written with mode 0600).
    pub fn start_with(sim: &Sim, body: &Value, extra: &[&str], level: &str) -> Serve {
        let dir = TempDir::new();
        let users = dir.0.join("users.json");
        std::fs::write(&users, body.to_string()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut cmd = Command::new(bin());
        cmd.args(["serve", "--port", "0", "--users-config"])
            .arg(&users)
            .args([
                "--server-token",
                SERVER_TOKEN,
                "--default-kimai-url",
                &sim.url(),
            ])
            .args(extra)
            .env_remove("MCP_SERVER_TOKEN")
            .env_remove("RATE_LIMIT_RPM")
            .env("RUST_LOG", level);
        Serve::spawn(cmd, dir)
    }

    /// `kimai-mcp serve ARGS` with only these environment variables besides `PATH` (no users
    /// file or server token unless `args` or `env` give them).
    pub fn start_plain(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .arg("serve")
            .args(args)
            .envs(env.iter().copied());
        Serve::spawn(cmd, TempDir::new())
    }

    /// Runs `cmd`, collecting its stdout and stderr, until it logs its address.
    fn spawn(mut cmd: Command, dir: TempDir) -> Serve {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kimai-mcp serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
                    sent = true;
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("serve did not start: {}", logs.lock().unwrap()));
        Serve {
            child,
            addr,
            logs,
            stdout,
            _dir: dir,
        }
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The users file the server reads (rewrite it, then send SIGHUP).
    pub fn users_path(&self) -> std::path::PathBuf {
        self._dir.0.join("users.json")
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- The raw client ----

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A response read whole: its head, then everything after it as the body.
fn parse(text: &str) -> Resp {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends one request on `s` (`Connection: close`, and `Host: addr` unless `headers` name a
/// host) and reads the answer until the server closes.
fn exchange(
    mut s: TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Host")) {
        raw.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    // The server may answer (e.g. 413) and stop reading before the whole body is sent.
    let _ = s.write_all(raw.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse(&String::from_utf8_lossy(&out))
}

/// One request on a fresh connection (`Connection: close`), with a deadline.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    exchange(s, addr, method, path, headers, body)
}

/// A POST of an MCP message, with the JSON content type and the Accept header MCP asks for.
pub fn post(srv: &Serve, path: &str, extra: &[(&str, &str)], body: &Value) -> Resp {
    let mut h = vec![("Content-Type", "application/json"), ("Accept", JSON_SSE)];
    h.extend_from_slice(extra);
    request(&srv.addr, "POST", path, &h, &body.to_string())
}

/// How long an answer to a connection from a chosen source address may take: longer than
/// [`DEADLINE`], for calls that wait for a place behind slow ones.
const FROM_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection from `src` (an address in 127.0.0.0/8, standing for another machine) to
/// `addr`, with a read timeout of 20 s. Panics with a clear word when the open-files limit is
/// what failed.
pub fn connect_from(src: [u8; 4], addr: &str) -> TcpStream {
    let to: SocketAddr = addr.parse().expect("a socket address");
    let open = || -> std::io::Result<TcpStream> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        s.bind(&SocketAddr::from((src, 0)).into())?;
        s.connect_timeout(&to.into(), DEADLINE)?;
        Ok(s.into())
    };
    let s = open().unwrap_or_else(|e| {
        panic!(
            "cannot connect from {src:?}: {e} (over 1,000 sockets need more open files than the usual 1,024: run the tests through `make unit`, or `ulimit -n 8192` first)"
        )
    });
    s.set_read_timeout(Some(FROM_READ_TIMEOUT)).unwrap();
    s
}

/// One request from `src` on a fresh connection (`Connection: close`).
pub fn request_from(
    src: [u8; 4],
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    exchange(connect_from(src, addr), addr, method, path, headers, body)
}

/// [`post`] from `src`.
pub fn post_from(
    src: [u8; 4],
    addr: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &Value,
) -> Resp {
    let mut h = vec![("Content-Type", "application/json"), ("Accept", JSON_SSE)];
    h.extend_from_slice(extra);
    request_from(src, addr, "POST", path, &h, &body.to_string())
}

/// Sends `raw` bytes from `src` on a fresh connection; everything the server sent before it
/// closed.
pub fn raw_from(src: [u8; 4], addr: &str, raw: &[u8]) -> String {
    let mut s = connect_from(src, addr);
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response (head, then a `Content-Length` body) from a connection that stays open.
pub fn read_response(s: &mut TcpStream) -> Resp {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = parse(&String::from_utf8_lossy(&got[..end + 4]));
            let length: usize = head
                .header("Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return parse(&String::from_utf8_lossy(&got[..end + 4 + length]));
            }
        }
        match s.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!(
                "no complete response ({other:?}): {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

// ---- MCP over HTTP ----

pub fn init_body() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
}

pub fn call(id: i64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})
}

/// Initializes a session on `path` and returns its id.
pub fn session(srv: &Serve, path: &str, extra: &[(&str, &str)]) -> String {
    let r = post(srv, path, extra, &init_body());
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.header("Mcp-Session-Id").expect("session id").to_string();
    let mut h: Vec<(&str, &str)> = extra.to_vec();
    h.push(("Mcp-Session-Id", &id));
    let n = post(
        srv,
        path,
        &h,
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    assert_eq!(n.status, 202, "{n:?}");
    assert!(n.body.is_empty());
    id
}

pub fn tool_text(r: &Resp) -> String {
    r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text: {}", r.body))
        .to_string()
}
