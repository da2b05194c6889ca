//! For tests in this crate: a `redis-server` of its own on a free loopback port (killed on
//! drop), and stores on it or on nothing.

use super::Store;
use std::time::{Duration, Instant};

/// A `redis-server` of its own; `None` (after one line on stderr naming `test`) where there is
/// none (`tests/shared_state.rs` installs it in CI).
pub struct TestRedis {
    child: std::process::Child,
    pub port: u16,
}

impl TestRedis {
    pub fn start(test: &str) -> Option<TestRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{test}: skipped: no redis-server here");
            return None;
        };
        let r = TestRedis { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed().as_secs() < 10, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A store on this server.
    pub fn store(&self) -> Store {
        store_at(&self.url())
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Every key of ours and its value (strings and hashes as text), one line each.
    pub fn dump(&self) -> String {
        let mut c = self.conn();
        let keys: Vec<String> = redis::cmd("KEYS").arg("kimai-mcp:*").query(&mut c).unwrap();
        let mut out = String::new();
        for k in keys {
            let kind: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let v: Vec<String> = match kind.as_str() {
                "string" => {
                    let bytes: Vec<u8> = redis::cmd("GET").arg(&k).query(&mut c).unwrap();
                    vec![String::from_utf8_lossy(&bytes).into_owned()]
                }
                "hash" => redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap(),
                _ => vec![kind],
            };
            out.push_str(&format!("{k} {v:?}\n"));
        }
        out
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store for `url`; it connects only when used.
pub fn store_at(url: &str) -> Store {
    let cfg = crate::config::state::resolve(Some(url.to_string()), None, None, None, &|_| None)
        .unwrap()
        .unwrap();
    Store::open(&cfg).unwrap()
}
