//! `serve --state redis://…` with the real thing: Debian's `redis-server` on a free loopback
//! port (append-only persistence on, in a temporary directory) and two `serve` instances that
//! name it. A session opened on one is served by the other, also after the first was killed;
//! the per-address rate limit and the session caps hold for both together; a call lease of a
//! killed instance lapses; with Redis stopped, requests that need it get 503 and `/health`
//! says degraded (and `kimai-mcp health` still passes), and with Redis started again everything
//! recovers, the session included (it was on disk).
//!
//! `redis-server` is installed with apt-get when missing and this runs as root (as
//! `tests/deploy/nginx.sh` installs nginx); where it can be neither found nor installed, each
//! test writes one line saying so to stderr (past the harness's capture) and passes without
//! testing anything.

use crate::util::http::{JSON_SSE, SLUG_A, SLUG_B, Serve, call, init_body, post, request, session};
use crate::util::{DEADLINE, TempDir, bin};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `redis-server`, installed once if missing (root and apt-get only).
fn redis_server() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let find = || {
                std::env::var_os("PATH")
                    .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
                    .map(|d| d.join("redis-server"))
                    .find(|p| p.is_file())
            };
            if let Some(p) = find() {
                return Some(p);
            }
            let root = Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
            if !root {
                return None;
            }
            eprintln!("shared_state: redis-server is missing: installing it with apt-get");
            let apt = |args: &[&str]| {
                Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let _ = apt(&["update", "-qq"]);
            apt(&[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "redis-server",
            ]);
            find()
        })
        .clone()
}

/// A `redis-server` on a loopback port with append-only persistence in its own directory;
/// killed on drop.
struct Redis {
    bin: PathBuf,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// `--requirepass`, if any.
    password: Option<String>,
    /// A TLS port as well (`rediss://localhost:PORT`), with a certificate of `ca.pem` in `dir`.
    tls_port: Option<u16>,
}

impl Redis {
    /// `None` (after one printed line) when there is no redis-server to be had.
    fn start(test: &str) -> Option<Redis> {
        Redis::start_with(test, None)
    }

    fn start_with(test: &str, password: Option<&str>) -> Option<Redis> {
        let Some(bin) = redis_server() else {
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "shared_state::{test}: skipped: redis-server not found and not installable here (apt-get install redis-server)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis {
            bin,
            port,
            dir: TempDir::new(),
            child: None,
            password: password.map(str::to_string),
            tls_port: None,
        };
        r.run();
        Some(r)
    }

    /// As `start`, with a TLS port too whose certificate (for localhost and 127.0.0.1) a
    /// private CA signed: `ca.pem` in the server's directory. `None` without openssl.
    fn start_tls(test: &str) -> Option<Redis> {
        let mut r = Redis::start(test)?;
        r.stop();
        let dir = r.dir.0.clone();
        let sh = |script: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let made = sh(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=kimai-mcp test CA' -keyout ca.key -out ca.pem \
            && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost -keyout server.key -out server.csr \
            && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext \
            && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.pem \
            && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=another CA' -keyout other.key -out other.pem",
        );
        if !made {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "shared_state::{test}: skipped: openssl could not make the test certificates"
            );
            return None;
        }
        r.tls_port = Some(
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port(),
        );
        r.run();
        Some(r)
    }

    fn tls_url(&self) -> String {
        format!("rediss://localhost:{}/0", self.tls_port.unwrap())
    }

    fn run(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir.0)
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .args(
                self.password
                    .as_deref()
                    .map(|p| vec!["--requirepass", p])
                    .unwrap_or_default(),
            )
            .args(
                self.tls_port
                    .map(|port| {
                        let f = |name: &str| self.dir.0.join(name).display().to_string();
                        vec![
                            "--tls-port".to_string(),
                            port.to_string(),
                            "--tls-cert-file".into(),
                            f("server.pem"),
                            "--tls-key-file".into(),
                            f("server.key"),
                            "--tls-ca-cert-file".into(),
                            f("ca.pem"),
                            "--tls-auth-clients".into(),
                            "no".into(),
                        ]
                    })
                    .unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Ok(mut c) = self.conn_once()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (Redis finishes its append-only file), then wait for it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn_once(&self) -> redis::RedisResult<redis::Connection> {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => self.url(),
        };
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(1))
    }

    fn conn(&self) -> redis::Connection {
        self.conn_once().expect("a connection to the test's redis")
    }

    /// Every key and every value held now, as text.
    fn dump(&self) -> String {
        let mut c = self.conn();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        let mut out = String::new();
        for k in keys {
            let kind: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let v: Vec<String> = match kind.as_str() {
                "string" => {
                    let bytes: Vec<u8> = redis::cmd("GET").arg(&k).query(&mut c).unwrap();
                    vec![String::from_utf8_lossy(&bytes).into_owned()]
                }
                "hash" => redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query(&mut c)
                    .unwrap(),
                other => vec![format!("<{other}>")],
            };
            out.push_str(&format!("{k} = {v:?}\n"));
        }
        out
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SIGKILL: the instance ends mid-whatever, as a crashed VM would.
fn sigkill(srv: &Serve) {
    let _ = Command::new("kill")
        .args(["-KILL", &srv.pid().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(100));
}

fn in_session(id: &str) -> Vec<(&str, &str)> {
    vec![("Mcp-Session-Id", id)]
}

fn health(srv: &Serve) -> Value {
    let r = request(&srv.addr, "GET", "/health", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

/// `serve --port 0 --server-token … ARGS`, which must refuse to start: its stdout and stderr.
fn refused_start(args: &[&str]) -> (String, String) {
    let mut argv = vec![
        "serve",
        "--port",
        "0",
        "--server-token",
        crate::util::http::SERVER_TOKEN,
    ];
    argv.extend_from_slice(args);
    let (code, out, err) = crate::util::run(&argv, &[]);
    assert_ne!(code, 0, "{err}");
    (out, err)
}

/// Two instances with the same store and these extra options.
fn two(sim: &kimai_mcp::sim::Sim, redis: &Redis, extra: &[&str]) -> (Serve, Serve) {
    let url = redis.url();
    let mut args = vec!["--state", url.as_str()];
    args.extend_from_slice(extra);
    (Serve::start(sim, &args), Serve::start(sim, &args))
}

#[test]
fn a_session_opened_on_one_instance_is_served_by_the_other_also_after_a_sigkill() {
    let Some(redis) = Redis::start("sessions") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b) = two(&sim, &redis, &[]);
    let path = format!("/mcp/{SLUG_A}");
    let id = session(&a, &path, &[]);
    // On B: the same session, its lifecycle state from the record (a call needs `initialize`).
    let r = post(
        &b,
        &path,
        &in_session(&id),
        &call(2, "user_current", json!({})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let text = crate::util::http::tool_text(&r);
    assert!(text.contains("tony_teamlead"), "{text}");
    // Another user's credentials never reach it, on either instance.
    let other = format!("/mcp/{SLUG_B}");
    for srv in [&a, &b] {
        let r = post(
            srv,
            &other,
            &in_session(&id),
            &call(3, "user_current", json!({})),
        );
        assert_eq!(r.status, 404, "{r:?}");
    }
    // The record holds digests and names, never a slug or a token.
    let dump = redis.dump();
    assert!(dump.contains(&format!("kimai-mcp:s:{id}")), "{dump}");
    assert!(dump.contains("\"initialized\", \"1\""), "{dump}");
    assert!(dump.contains("\"version\", \"2025-11-25\""), "{dump}");
    for secret in [
        SLUG_A.to_string(),
        SLUG_B.to_string(),
        sim.token("tony_teamlead").unwrap(),
        sim.token("john_user").unwrap(),
        crate::util::http::SERVER_TOKEN.to_string(),
    ] {
        assert!(!dump.contains(&secret), "a secret in the store: {dump}");
    }
    // A dies mid-session: B carries on with it, and it ends there for everyone.
    let id2 = session(&a, &path, &[]);
    sigkill(&a);
    for s in [&id, &id2] {
        let r = post(
            &b,
            &path,
            &in_session(s),
            &call(4, "user_current", json!({})),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    let mut h = in_session(&id);
    h.push(("Accept", JSON_SSE));
    let r = request(&b.addr, "DELETE", &path, &h, "");
    assert_eq!(r.status, 200, "{r:?}");
    let r = post(
        &b,
        &path,
        &in_session(&id),
        &call(5, "user_current", json!({})),
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert!(!redis.dump().contains(&format!("kimai-mcp:s:{id} ")));
    // /health counts the sessions of all instances.
    assert_eq!(health(&b)["active_sessions"], 1);
    assert_eq!(health(&b)["state"], "ok");
    assert_eq!(health(&b)["status"], "healthy");
}

#[test]
fn the_rate_limit_holds_for_both_instances_together() {
    let Some(redis) = Redis::start("rate") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b) = two(&sim, &redis, &["--rate-limit-rpm", "10"]);
    let mut statuses = Vec::new();
    for i in 0..14 {
        let srv = if i % 2 == 0 { &a } else { &b };
        statuses.push(request(&srv.addr, "GET", "/health", &[], "").status);
    }
    // A burst of 10 for the address, from both together (each alone would allow 10).
    assert_eq!(&statuses[..10], &[200; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 4], "{statuses:?}");
}

#[test]
fn the_unknown_slug_guard_counts_misses_on_both_instances_together() {
    let Some(redis) = Redis::start("enumeration") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b) = two(&sim, &redis, &["--rate-limit-rpm", "0"]);
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    // Ten misses are tolerated within the minute (five on each instance); the eleventh blocks
    // the address on both, known slug or not.
    for i in 0..11 {
        let srv = if i % 2 == 0 { &a } else { &b };
        let r = post(srv, &format!("/mcp/guess{i:02}xxxxxxxxxxxxxx"), &[], &ping);
        assert_eq!(r.status, 404, "miss {i}: {r:?}");
    }
    for srv in [&a, &b] {
        let r = post(srv, &format!("/mcp/{SLUG_A}"), &[], &init_body());
        assert_eq!(r.status, 429, "{r:?}");
        assert!(r.header("Retry-After").is_some());
    }
}

#[test]
fn the_session_caps_hold_across_instances() {
    let Some(redis) = Redis::start("caps") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b) = two(
        &sim,
        &redis,
        &["--max-sessions-per-user", "2", "--max-sessions", "3"],
    );
    let pa = format!("/mcp/{SLUG_A}");
    let pb = format!("/mcp/{SLUG_B}");
    let a1 = session(&a, &pa, &[]);
    std::thread::sleep(Duration::from_millis(20));
    let a2 = session(&b, &pa, &[]);
    std::thread::sleep(Duration::from_millis(20));
    // The third of the same user, on A: its least recently used one (a1) ends, wherever it is.
    let a3 = session(&a, &pa, &[]);
    let ping = json!({"jsonrpc":"2.0","id":9,"method":"ping"});
    for srv in [&a, &b] {
        assert_eq!(post(srv, &pa, &in_session(&a1), &ping).status, 404);
        assert_eq!(post(srv, &pa, &in_session(&a2), &ping).status, 200);
        assert_eq!(post(srv, &pa, &in_session(&a3), &ping).status, 200);
    }
    assert!(
        a.logs().contains("its user opened more than 2 sessions"),
        "{}",
        a.logs()
    );
    // Three sessions in all (a2, a3 and B's first): the fourth is refused on either instance.
    let _b1 = session(&b, &pb, &[]);
    for srv in [&a, &b] {
        let r = post(srv, &pb, &[], &init_body());
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.header("Retry-After").is_some());
    }
}

#[test]
fn a_call_lease_of_a_killed_instance_lapses() {
    let Some(redis) = Redis::start("leases") else {
        return;
    };
    let sim = crate::util::sim();
    // The first timesheet list takes 8 s: A is killed while it runs.
    sim.set_fault(kimai_mcp::sim::Fault {
        kind: kimai_mcp::sim::FaultKind::Delay(Duration::from_secs(8)),
        times: Some(1),
        path_prefix: Some("/api/timesheets".into()),
    });
    let (a, b) = two(
        &sim,
        &redis,
        &["--max-calls-per-user", "1", "--call-lease", "2"],
    );
    let path = format!("/mcp/{SLUG_A}");
    let id = session(&a, &path, &[]);
    let (addr, p, i) = (a.addr.clone(), path.clone(), id.clone());
    let slow = std::thread::spawn(move || {
        // Its answer never comes (A is killed); only that the request went out matters.
        let body = call(2, "timesheet", json!({"action": "list"})).to_string();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        use std::io::{Read, Write};
        let raw = format!(
            "POST {p} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: {JSON_SSE}\r\nMcp-Session-Id: {i}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(raw.as_bytes());
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    });
    // The lease is held in the store while the call runs.
    let start = Instant::now();
    let held = loop {
        let dump = redis.dump();
        if dump.contains("kimai-mcp:calls:") {
            break dump;
        }
        assert!(start.elapsed() < DEADLINE, "no lease appeared: {dump}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(held.contains("kimai-mcp:calls:"), "{held}");
    sigkill(&a);
    // B's call of the same user waits for the place, which lapses 2 s after it was taken (not
    // when the 8-s call would have ended, nor after B's 30-s wait).
    let t = Instant::now();
    let r = post(
        &b,
        &path,
        &in_session(&id),
        &call(3, "user_current", json!({})),
    );
    let waited = t.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );
    let _ = slow.join();
}

#[test]
fn with_redis_stopped_requests_get_503_and_health_degraded_then_all_recovers() {
    let Some(mut redis) = Redis::start("outage") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b) = two(&sim, &redis, &[]);
    let path = format!("/mcp/{SLUG_A}");
    let id = session(&a, &path, &[]);
    redis.stop();
    let ping = json!({"jsonrpc":"2.0","id":7,"method":"ping"});
    for srv in [&a, &b, &a, &b] {
        let r = post(srv, &path, &in_session(&id), &ping);
        assert_eq!(r.status, 503, "{r:?}");
        assert!(
            r.body.contains("shared state store is unreachable"),
            "{r:?}"
        );
        assert_eq!(r.header("Retry-After"), Some("5"));
        // A new session needs the store too.
        assert_eq!(post(srv, &path, &[], &init_body()).status, 503);
    }
    let h = health(&b);
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["state"], "unreachable", "{h}");
    // The container's health command still counts the instance as alive.
    let out = Command::new(bin())
        .args(["health", "--url", &format!("http://{}/health", b.addr)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // One clear line, not one per request (at most every 10 s).
    let logs = a.logs();
    let lines = logs
        .lines()
        .filter(|l| l.contains("requests that need the store are answered 503"))
        .count();
    assert_eq!(lines, 1, "{logs}");
    assert!(logs.contains(&redis.url()), "{logs}");
    // Redis back (from its append-only file): the session works again on both.
    redis.run();
    let start = Instant::now();
    for srv in [&a, &b] {
        loop {
            let r = post(srv, &path, &in_session(&id), &ping);
            if r.status == 200 {
                break;
            }
            assert_eq!(r.status, 503, "{r:?}");
            assert!(start.elapsed() < DEADLINE, "not back: {r:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let r = post(
        &b,
        &path,
        &in_session(&id),
        &call(8, "user_current", json!({})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(health(&a)["status"], "healthy");
    assert!(a.logs().contains("reachable again"), "{}", a.logs());
}

#[test]
fn an_instance_without_its_store_does_not_start() {
    let Some(mut redis) = Redis::start("start") else {
        return;
    };
    redis.stop();
    let url = redis.url();
    let (_, err) = refused_start(&["--state", &url]);
    assert!(err.contains("cannot be reached"), "{err}");
}

#[test]
fn the_stores_password_works_from_the_url_or_a_file_and_is_never_logged() {
    const PASSWORD: &str = "pw-7f3a9c2e5b1d4a68";
    let Some(redis) = Redis::start_with("password", Some(PASSWORD)) else {
        return;
    };
    let sim = crate::util::sim();
    let in_url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port);
    let file = redis.dir.0.join("redis-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let file = file.display().to_string();
    let a = Serve::start(&sim, &["--state", &in_url]);
    let b = Serve::start(
        &sim,
        &["--state", &redis.url(), "--state-password-file", &file],
    );
    let path = format!("/mcp/{SLUG_A}");
    let id = session(&a, &path, &[]);
    let r = post(
        &b,
        &path,
        &in_session(&id),
        &call(2, "user_current", json!({})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    for srv in [&a, &b] {
        assert!(srv.logs().contains(&redis.url()), "{}", srv.logs());
        assert!(!srv.logs().contains(PASSWORD), "{}", srv.logs());
    }
    // A wrong password: no start, and neither password in the message.
    let wrong = format!("redis://:not-{PASSWORD}@127.0.0.1:{}/0", redis.port);
    let (out, err) = refused_start(&["--state", &wrong]);
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{err}");
}

/// Two instances with OAuth on, one public URL (as behind one proxy), the same store.
fn two_with_oauth(sim: &kimai_mcp::sim::Sim, redis: &Redis) -> (Serve, Serve, String) {
    two_with_oauth_and(sim, redis, &[])
}

/// As `two_with_oauth`, with more options.
fn two_with_oauth_and(
    sim: &kimai_mcp::sim::Sim,
    redis: &Redis,
    extra: &[&str],
) -> (Serve, Serve, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");
    let url = redis.url();
    let users = crate::oauth::users(sim);
    let start = |own_port: &str| {
        let mut args = vec![
            "--port",
            own_port,
            "--public-url",
            &base,
            "--rate-limit-rpm",
            "0",
            "--state",
            &url,
        ];
        args.extend_from_slice(extra);
        Serve::start_with(sim, &users, &args, "debug")
    };
    let a = start(&port);
    let b = start("0");
    (a, b, base)
}

#[test]
fn oauth_sign_ins_and_tokens_work_on_either_instance_and_survive_a_sigkill() {
    use crate::oauth::{
        SECRET_A, SECRET_B, authorize_path, exchange, oauth_error, open_sign_in, pkce,
        public_client, query_of, refresh, submit, tokens, whoami,
    };
    let Some(redis) = Redis::start("oauth") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b, _) = two_with_oauth(&sim, &redis);
    // Registered on A, signed in with the page opened on B and the form sent to A, the code
    // redeemed on B: each step on another instance.
    let client = public_client(&a);
    let (verifier, challenge) = pkce();
    let page = open_sign_in(&b, &authorize_path(&client, &challenge, &[]));
    let r = submit(&a, &page, SLUG_A, SECRET_A);
    assert_eq!(r.status, 302, "{r:?}");
    let q = query_of(r.header("Location").unwrap());
    let code = q["code"].clone();
    let r = exchange(&b, &client, &code, &verifier);
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    let (access, refresh_token) = (
        j["access_token"].as_str().unwrap().to_string(),
        j["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(whoami(&a, &access).unwrap(), "tony_teamlead");
    assert_eq!(whoami(&b, &access).unwrap(), "tony_teamlead");
    // The code again with its verifier within 30 s, on the other instance: the retry of an
    // exchange whose answer was lost. The sign-in gets a new first pair; the lost one is dead.
    let r = exchange(&a, &client, &code, &verifier);
    assert_eq!(r.status, 200, "{r:?}");
    let retried = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&a, &access).unwrap_err().status, 401);
    assert_eq!(whoami(&b, &retried).unwrap(), "tony_teamlead");
    assert_eq!(
        oauth_error(&refresh(&a, &client, &refresh_token)),
        "invalid_grant"
    );
    // A third time: a second use (RFC 6749 §4.1.2), and what it issued is revoked.
    let again = exchange(&b, &client, &code, &verifier);
    assert_eq!(again.status, 400, "{again:?}");
    assert_eq!(oauth_error(&again), "invalid_grant");
    assert!(again.body.contains("already used"), "{again:?}");
    assert_eq!(whoami(&a, &retried).unwrap_err().status, 401);
    // A code presented again without its verifier (someone who saw it): revoked at once.
    let (verifier, challenge) = pkce();
    let page = open_sign_in(&a, &authorize_path(&client, &challenge, &[]));
    let r = submit(&b, &page, SLUG_A, SECRET_A);
    let code = query_of(r.header("Location").unwrap())["code"].clone();
    let r = exchange(&a, &client, &code, &verifier);
    assert_eq!(r.status, 200, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let (other, _) = pkce();
    let stolen = exchange(&b, &client, &code, &other);
    assert!(stolen.body.contains("already used"), "{stolen:?}");
    assert_eq!(whoami(&a, &access).unwrap_err().status, 401);
    assert!(
        a.logs().contains("a lost answer") || b.logs().contains("a lost answer"),
        "the retry is in the audit log"
    );

    // A new sign-in; refreshed on B, the old pair is dead everywhere and the new one works
    // on A.
    let (access, refresh1) = tokens(&a, &client, SLUG_B, SECRET_B);
    let pair = |r: &crate::util::http::Resp| {
        assert_eq!(r.status, 200, "{r:?}");
        let j = r.json();
        (
            j["access_token"].as_str().unwrap().to_string(),
            j["refresh_token"].as_str().unwrap().to_string(),
        )
    };
    let (access2, refresh2) = pair(&refresh(&b, &client, &refresh1));
    assert_eq!(whoami(&a, &access).unwrap_err().status, 401);
    assert_eq!(whoami(&a, &access2).unwrap(), "john_user");
    // The same refresh token again at once, on the other instance, while its successor is
    // unused: the retry of a rotation whose answer was lost (an instance killed after the
    // rotation, before its answer arrived). It rotates once more; the pair of the lost answer
    // is dead, the new one works. Only once: the lost answer's token presented later revokes.
    let (access3, _) = pair(&refresh(&a, &client, &refresh1));
    assert_eq!(whoami(&b, &access2).unwrap_err().status, 401);
    assert_eq!(whoami(&b, &access3).unwrap(), "john_user");
    assert_eq!(
        oauth_error(&refresh(&b, &client, &refresh2)),
        "invalid_grant"
    );
    assert_eq!(
        whoami(&b, &access3).unwrap_err().status,
        401,
        "refresh2 reused: revoked"
    );
    // A fresh sign-in; its successor used, the rotated refresh token replayed on the other
    // instance: reuse is detected and the whole sign-in ends, on both.
    let (_, refresh1) = tokens(&a, &client, SLUG_B, SECRET_B);
    let (_, refresh2) = pair(&refresh(&b, &client, &refresh1));
    let (access3, refresh3) = pair(&refresh(&a, &client, &refresh2));
    assert_eq!(whoami(&b, &access3).unwrap(), "john_user");
    let r = refresh(&a, &client, &refresh1);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("already used"), "{r:?}");
    assert_eq!(whoami(&b, &access3).unwrap_err().status, 401);
    assert_eq!(
        oauth_error(&refresh(&b, &client, &refresh3)),
        "invalid_grant"
    );
    assert!(
        a.logs().contains("a rotated refresh token was reused"),
        "{}",
        a.logs()
    );

    // Two presentations of one refresh token at once, one on each instance: exactly one
    // rotation wins, and the other ends the sign-in.
    let (_, shared_refresh) = tokens(&b, &client, SLUG_A, SECRET_A);
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| refresh(&a, &client, &shared_refresh));
        let hb = s.spawn(|| refresh(&b, &client, &shared_refresh));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    // The second is taken as the retry of the first (see above): both may get a pair, but at
    // most one pair lives on.
    let living = [&ra, &rb]
        .into_iter()
        .filter(|r| r.status == 200)
        .filter(|r| whoami(&a, r.json()["access_token"].as_str().unwrap()).is_ok())
        .count();
    assert!(living <= 1, "two living pairs: {ra:?} {rb:?}");
    for r in [&ra, &rb] {
        assert!(
            r.status == 200 || oauth_error(r) == "invalid_grant",
            "{r:?}"
        );
    }

    // A sign-in made on A; A killed mid-use: B carries on with the same tokens and refreshes.
    let (access, refresh_token) = tokens(&a, &client, SLUG_A, SECRET_A);
    assert_eq!(whoami(&a, &access).unwrap(), "tony_teamlead");
    sigkill(&a);
    assert_eq!(whoami(&b, &access).unwrap(), "tony_teamlead");
    let r = refresh(&b, &client, &refresh_token);
    assert_eq!(r.status, 200, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&b, &access).unwrap(), "tony_teamlead");

    // Nothing in the store is usable as it is: no token, code, client secret, slug or Kimai
    // token in clear.
    let dump = redis.dump();
    for secret in [
        access.as_str(),
        refresh_token.as_str(),
        code.as_str(),
        SLUG_A,
        SLUG_B,
        SECRET_A,
        SECRET_B,
        &sim.token("tony_teamlead").unwrap(),
    ] {
        assert!(!dump.contains(secret), "{secret} in the store:\n{dump}");
    }
    assert!(dump.contains(":o:g:"), "grants are in the store:\n{dump}");
}

#[test]
fn oauth_with_redis_stopped_answers_503_and_keeps_sign_ins_across_a_redis_restart() {
    use crate::oauth::{SECRET_A, public_client, refresh, tokens, whoami};
    let Some(mut redis) = Redis::start("oauth_outage") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b, _) = two_with_oauth(&sim, &redis);
    let client = public_client(&a);
    let (access, refresh_token) = tokens(&a, &client, SLUG_A, SECRET_A);
    redis.stop();
    // A token is not called invalid (401 would send the client into a new sign-in): 503.
    let r = whoami(&b, &access).unwrap_err();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("Retry-After"), Some("5"));
    let r = refresh(&b, &client, &refresh_token);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    assert!(r.header("Retry-After").is_some(), "{r:?}");
    let r = request(
        &a.addr,
        "POST",
        "/register",
        &[("Content-Type", "application/json")],
        &json!({"redirect_uris": [crate::oauth::REDIRECT], "token_endpoint_auth_method": "none"})
            .to_string(),
    );
    assert_eq!(r.status, 503, "{r:?}");
    // Redis back from its append-only file: the client, the sign-in and its tokens are there.
    redis.run();
    let start = Instant::now();
    let access = loop {
        let r = refresh(&b, &client, &refresh_token);
        if r.status == 200 {
            break r.json()["access_token"].as_str().unwrap().to_string();
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(start.elapsed() < DEADLINE, "not back: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(whoami(&a, &access).unwrap(), "tony_teamlead");
    assert_eq!(whoami(&b, &access).unwrap(), "tony_teamlead");
}

#[test]
fn rediss_with_a_private_ca_file_works_and_another_ca_is_refused() {
    let Some(redis) = Redis::start_tls("rediss") else {
        return;
    };
    let sim = crate::util::sim();
    let url = redis.tls_url();
    let ca = redis.dir.0.join("ca.pem").display().to_string();
    let args = ["--state", url.as_str(), "--state-ca-file", ca.as_str()];
    let (a, b) = (Serve::start(&sim, &args), Serve::start(&sim, &args));
    let path = format!("/mcp/{SLUG_A}");
    let id = session(&a, &path, &[]);
    let r = post(
        &b,
        &path,
        &in_session(&id),
        &call(2, "user_current", json!({})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("tony_teamlead"), "{r:?}");
    // The session went over TLS into the store (read back on its plain port).
    assert!(redis.dump().contains(":s:"), "{}", redis.dump());
    assert_eq!(health(&a)["state"], "ok", "{}", health(&a));
    // A CA that did not sign the store's certificate, or the public roots alone: no start,
    // and the reason is the certificate.
    let other = redis.dir.0.join("other.pem").display().to_string();
    for extra in [vec!["--state-ca-file", other.as_str()], vec![]] {
        let mut argv = vec!["--state", url.as_str()];
        argv.extend(extra);
        let (_, err) = refused_start(&argv);
        assert!(err.contains("cannot be reached"), "{err}");
        assert!(
            err.to_ascii_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
            "{err}"
        );
    }
    // A CA file needs rediss://.
    let (_, err) = refused_start(&["--state", &redis.url(), "--state-ca-file", &ca]);
    assert!(err.contains("use a rediss:// URL"), "{err}");
}

#[test]
fn a_client_metadata_document_is_fetched_once_for_all_instances() {
    use crate::oauth::{SECRET_A, open_sign_in, pkce, query_of, submit};
    use crate::oauth_cimd::{Docs, LOCAL_DOCS, authorize};
    let Some(redis) = Redis::start("documents") else {
        return;
    };
    let sim = crate::util::sim();
    let docs = Docs::start();
    let (a, b, _) = two_with_oauth_and(&sim, &redis, &[LOCAL_DOCS]);
    let client_id = docs.url("/client.json");
    let (_, challenge) = pkce();
    open_sign_in(&a, &authorize(&client_id, &challenge));
    assert_eq!(docs.hits("/client.json"), 1);
    // The other instance uses the first one's answer (cached for its max-age, 300 s), and
    // knows the client for the sign-in.
    let (_, challenge) = pkce();
    let page = open_sign_in(&b, &authorize(&client_id, &challenge));
    assert!(
        page.resp.body.contains("Report &lt;Writer&gt;"),
        "{}",
        page.resp.body
    );
    let r = submit(&a, &page, SLUG_A, SECRET_A);
    assert_eq!(r.status, 302, "{r:?}");
    assert!(query_of(r.header("Location").unwrap()).contains_key("code"));
    assert_eq!(docs.hits("/client.json"), 1);
    // A refused document is shared for its minute too.
    let (_, challenge) = pkce();
    let r = request(
        &a.addr,
        "GET",
        &authorize(&docs.url("/wrong-id.json"), &challenge),
        &[],
        "",
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = request(
        &b.addr,
        "GET",
        &authorize(&docs.url("/wrong-id.json"), &challenge),
        &[],
        "",
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(docs.hits("/wrong-id.json"), 1);
}

#[test]
fn wrong_secrets_for_one_user_count_on_both_instances_together() {
    use crate::oauth::{SECRET_A, authorize_path, open_sign_in, pkce, public_client, submit};
    let Some(redis) = Redis::start("throttle") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b, _) = two_with_oauth(&sim, &redis);
    let client = public_client(&a);
    let attempt = |srv: &Serve, secret: &str| {
        let (_, challenge) = pkce();
        let page = open_sign_in(srv, &authorize_path(&client, &challenge, &[]));
        submit(srv, &page, SLUG_A, secret)
    };
    // The user's schedule in the store: its failures, counted by both instances.
    let failures = || -> Option<i64> {
        let mut c = redis.conn();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("kimai-mcp:o:thr:*")
            .query(&mut c)
            .unwrap();
        assert!(keys.len() <= 1, "{keys:?}");
        let key = keys.first()?;
        redis::cmd("HGET")
            .arg(key)
            .arg("failures")
            .query(&mut c)
            .unwrap()
    };
    assert_eq!(failures(), None);
    for (n, srv) in [&a, &b, &a, &b].into_iter().enumerate() {
        let r = attempt(srv, "not-the-secret-0123456789");
        assert_ne!(r.status, 302, "{r:?}");
        assert_eq!(failures(), Some(n as i64 + 1));
    }
    // The per-address guard in front counted them on both instances together too.
    let mut c = redis.conn();
    let misses: i64 = redis::cmd("ZCARD")
        .arg("kimai-mcp:enum:miss:127.0.0.1")
        .query(&mut c)
        .unwrap();
    assert_eq!(misses, 4);
    // The right secret on either instance is admitted (queued behind the failures, never
    // refused) and takes back the failure it was counted as.
    let r = attempt(&b, SECRET_A);
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(failures(), Some(4));
    // Nothing in flight is left, and the keys name no user.
    let dump = redis.dump();
    assert!(!dump.contains(SLUG_A), "{dump}");
    let mut c = redis.conn();
    let in_flight: Vec<String> = redis::cmd("KEYS")
        .arg("kimai-mcp:o:thri:*")
        .query(&mut c)
        .unwrap();
    for k in in_flight {
        let n: i64 = redis::cmd("ZCARD").arg(&k).query(&mut c).unwrap();
        assert_eq!(n, 0, "{k}");
    }
}

#[test]
fn redis_stopped_and_started_mid_load_costs_503s_only_while_it_is_down() {
    let Some(mut redis) = Redis::start("mid_load") else {
        return;
    };
    let sim = crate::util::sim();
    let (a, b) = two(&sim, &redis, &["--rate-limit-rpm", "0"]);
    let path = format!("/mcp/{SLUG_A}");
    let ids: Vec<String> = (0..4).map(|_| session(&a, &path, &[])).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Four clients call in a loop on both instances while Redis is stopped and started again.
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let (a, b, path, stop) = (&a, &b, &path, &stop);
                s.spawn(move || {
                    let mut seen = Vec::new();
                    let mut i = 0i64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let srv = if (i + n as i64) % 2 == 0 { a } else { b };
                        let t = Instant::now();
                        let r = post(
                            srv,
                            path,
                            &in_session(id),
                            &call(10 + i, "user_current", json!({})),
                        );
                        seen.push((r.status, t.elapsed(), Instant::now()));
                        i += 1;
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        redis.stop();
        let stopped_at = Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        redis.run();
        let started_at = Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (seen, stopped_at, started_at)
    });
    let (seen, stopped_at, started_at) = results;
    let count =
        |f: &dyn Fn(&(u16, Duration, Instant)) -> bool| seen.iter().filter(|x| f(x)).count();
    // Only 200 or 503 (with Retry-After, tested elsewhere): no 500, no hang, no crash.
    assert_eq!(count(&|x| x.0 != 200 && x.0 != 503), 0, "{seen:?}");
    assert!(
        count(&|x| x.2 < stopped_at && x.0 == 200) > 0,
        "served before"
    );
    assert!(count(&|x| x.0 == 503) > 0, "503 while Redis was down");
    // No request waited on the dead store for long (its I/O timeout is 2 s).
    let slowest = seen.iter().map(|x| x.1).max().unwrap();
    assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
    // Back within a second of Redis, every request after that succeeds on both instances.
    let late: Vec<_> = seen
        .iter()
        .filter(|x| x.2 > started_at + Duration::from_secs(1))
        .collect();
    assert!(!late.is_empty());
    assert!(late.iter().all(|x| x.0 == 200), "{late:?}");
}
