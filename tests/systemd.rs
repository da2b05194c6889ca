//! systemd readiness and watchdog of `kimai-mcp serve`, as systemd would see them: the test
//! binds a Unix datagram socket, passes it as `$NOTIFY_SOCKET` with `$WATCHDOG_USEC`, starts
//! the built binary and reads the datagrams (`src/systemd.rs` sends them; `run_serve` calls it
//! once the listener is up).

use crate::util::TempDir;
use crate::util::{DEADLINE, bin};
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The watchdog timeout given to the server: it must ping every 100 ms.
const WATCHDOG_USEC: &str = "200000";
/// How long to listen for a ping that must not come (several periods of 100 ms).
const QUIET: Duration = Duration::from_millis(600);

/// `kimai-mcp serve` on a free loopback port, notifying the socket in `dir`.
struct Notified {
    child: Child,
    sock: UnixDatagram,
    logs: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Notified {
    fn start(extra_env: &[(&str, &str)]) -> Notified {
        let dir = TempDir::new();
        let path = dir.0.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        let mut cmd = Command::new(bin());
        cmd.args([
            "serve",
            "--port",
            "0",
            "--server-token",
            "0123456789abcdef0123",
            "--rate-limit-rpm",
            "0",
        ])
        .env_remove("USERS_CONFIG_FILE")
        .env_remove("MCP_SERVER_TOKEN")
        .env_remove("WATCHDOG_PID")
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", WATCHDOG_USEC)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn kimai-mcp serve");
        let mut stderr = child.stderr.take().expect("stderr piped");
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Notified {
            child,
            sock,
            logs,
            _dir: dir,
        }
    }

    /// The next datagram within `wait`, or None.
    fn recv(&self, wait: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8(buf[..n].to_vec()).expect("UTF-8 notification")),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("recv on the notify socket: {e}"),
        }
    }

    /// Reads datagrams until one has the line `want`, within the deadline; returns those read.
    fn expect_line(&self, want: &str, seen: &mut Vec<String>) {
        let start = Instant::now();
        while let Some(left) = DEADLINE.checked_sub(start.elapsed()) {
            match self.recv(left) {
                Some(msg) => {
                    let hit = msg.lines().any(|l| l == want);
                    seen.push(msg);
                    if hit {
                        return;
                    }
                }
                None => break,
            }
        }
        panic!(
            "no {want} within {DEADLINE:?}; datagrams so far: {seen:?}; server log:\n{}",
            self.logs.lock().unwrap()
        );
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_notifies_ready_then_feeds_the_watchdog() {
    let server = Notified::start(&[]);
    let mut seen = Vec::new();
    server.expect_line("READY=1", &mut seen);
    // Pings may have started before READY=1; the ones that count come after it: two, so the
    // keep-alive is seen repeating, not just sent once at start.
    let mut pings = Vec::new();
    server.expect_line("WATCHDOG=1", &mut pings);
    server.expect_line("WATCHDOG=1", &mut pings);
    assert!(
        seen.iter().chain(&pings).all(|m| !m.contains("STOPPING=1")),
        "the server said it is stopping: {seen:?} {pings:?}"
    );
}

#[test]
fn serve_feeds_no_watchdog_meant_for_another_process() {
    // WATCHDOG_PID names another process (pid 1): the environment was inherited, the
    // watchdog is not ours to feed. Readiness still goes out.
    let server = Notified::start(&[("WATCHDOG_PID", "1")]);
    let mut seen = Vec::new();
    server.expect_line("READY=1", &mut seen);
    let start = Instant::now();
    while let Some(left) = QUIET.checked_sub(start.elapsed()) {
        if let Some(msg) = server.recv(left) {
            assert!(
                !msg.lines().any(|l| l == "WATCHDOG=1"),
                "a ping although WATCHDOG_PID is another process: {msg:?}"
            );
        } else {
            break;
        }
    }
}
