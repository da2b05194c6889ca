//! Helpers: start the simulated Kimai in-process and run the `kimai-mcp` binary as a stdio
//! MCP server or to completion, with every wait bounded by a deadline; a temporary directory;
//! the resident memory of a process. `http` holds the helpers for `kimai-mcp serve`.

pub mod http;

use kimai_mcp::sim::{Options, Sim};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expected message may take to arrive.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kimai-mcp")
}

pub fn sim() -> Sim {
    Sim::start(Options::default()).expect("start the simulated Kimai")
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let p = std::env::temp_dir().join(format!(
            "kimai-mcp-test-{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The `kimai-mcp` binary serving stdio, with a reader thread collecting its stdout lines.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    next_id: i64,
}

impl Server {
    /// Starts `kimai-mcp stdio` against `sim` with the given user's token.
    pub fn stdio(sim: &Sim, token: &str) -> Server {
        Server::spawn(
            &["stdio"],
            &[("KIMAI_URL", &sim.url()), ("KIMAI_API_TOKEN", token)],
        )
    }

    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_remove("KIMAI_URL")
            .env_remove("KIMAI_API_TOKEN")
            .env_remove("KIMAI_SSL_VERIFY")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn kimai-mcp");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take();
        Server {
            child,
            stdin,
            lines: rx,
            stderr,
            next_id: 100,
        }
    }

    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send_bytes(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&serde_json::to_string(msg).unwrap());
    }

    /// The next line from stdout, parsed; panics after the deadline.
    pub fn recv(&mut self) -> Value {
        self.try_recv(DEADLINE)
            .unwrap_or_else(|| panic!("no message within {DEADLINE:?}; stderr:\n{}", self.stderr()))
    }

    pub fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                assert!(!line.is_empty(), "empty line on stdout");
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
                )
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Sends a request and waits for the response with its id (notifications before it are
    /// returned too).
    pub fn request_with_notes(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut notes = Vec::new();
        let start = Instant::now();
        loop {
            let msg = self.recv();
            if msg.get("id") == Some(&json!(id)) {
                return (msg, notes);
            }
            notes.push(msg);
            assert!(start.elapsed() < DEADLINE, "response {id} did not arrive");
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_with_notes(method, params).0
    }

    pub fn initialize(&mut self, version: &str) -> Value {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "tests", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    /// Calls a tool and returns (text of all blocks joined by a blank line, isError).
    pub fn call(&mut self, tool: &str, args: Value) -> (String, bool) {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let result = r
            .get("result")
            .unwrap_or_else(|| panic!("tools/call {tool} failed: {r}"));
        let text = result["content"]
            .as_array()
            .expect("content array")
            .iter()
            .map(|c| c["text"].as_str().expect("text block").to_string())
            .collect::<Vec<_>>()
            .join("\n\n");
        (text, result["isError"].as_bool().expect("isError present"))
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` to its end on a thread, so that the child never blocks on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs the binary to completion with a deadline; returns (exit code, stdout, stderr). Both
/// pipes are read while it runs, so a child that writes more than a pipe holds still finishes.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("KIMAI_URL")
        .env_remove("KIMAI_API_TOKEN")
        .env_remove("KIMAI_SSL_VERIFY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let out = drain(child.stdout.take().expect("stdout piped"));
    let err = drain(child.stderr.take().expect("stderr piped"));
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = out.join().expect("the stdout reader");
            let err = err.join().expect("the stderr reader");
            return (status.code().unwrap_or(-1), out, err);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kimai-mcp {args:?} did not finish within 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
}
