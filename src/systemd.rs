//! systemd service notifications (`sd_notify(3)`) without libsystemd: readiness, reload,
//! stop, status and the watchdog keep-alive.
//!
//! systemd passes a Unix datagram socket in `$NOTIFY_SOCKET` (a path, or `@name` for a socket
//! in the abstract namespace) to a `Type=notify` service; each message is one datagram of
//! newline-separated `KEY=VALUE` assignments ("READY=1", "STOPPING=1", "WATCHDOG=1",
//! "STATUS=…"). With `WatchdogSec=` it also sets `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, the
//! process meant to send) and restarts the service when no "WATCHDOG=1" arrives in time.
//! The protocol is small and stable, so a few lines of std beat linking libsystemd into a
//! static binary. Outside systemd every call is a no-op.
//!
//! The core functions take the socket address and the variables as parameters
//! ([`notify_to`], [`interval_from`], [`Watchdog::start_to`]) so the tests can drive them
//! without setting environment variables (which needs `unsafe` in edition 2024); [`notify`],
//! [`watchdog_interval`] and [`start_watchdog`] read the environment and call them.
//!
//! Threads: the caller's thread for single notifications; one thread named `watchdog`, owned by
//! [`Watchdog`], for the keep-alive. Nothing is shared but a channel that stops it.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The variable naming the notification socket.
pub const NOTIFY_SOCKET_VAR: &str = "NOTIFY_SOCKET";
/// The variable with the watchdog timeout in microseconds.
pub const WATCHDOG_USEC_VAR: &str = "WATCHDOG_USEC";
/// The variable with the pid that must send the keep-alives (absent: whoever has the socket).
pub const WATCHDOG_PID_VAR: &str = "WATCHDOG_PID";
/// The keep-alive message.
pub const WATCHDOG_MESSAGE: &str = "WATCHDOG=1";
/// The shortest keep-alive period, so that a silly `WATCHDOG_USEC=1` cannot make the thread spin.
pub const MIN_WATCHDOG_PERIOD: Duration = Duration::from_millis(1);

/// Sends one notification to the socket `socket` as systemd spells it in `$NOTIFY_SOCKET`:
/// an absolute path, or `@name` for the abstract namespace (Linux only, like systemd).
pub fn notify_to(socket: &str, state: &str) -> io::Result<()> {
    let addr = if let Some(name) = socket.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes())?
    } else if socket.starts_with('/') {
        SocketAddr::from_pathname(socket)?
    } else {
        // systemd also knows `vsock:` addresses (for virtual machines); a service unit never
        // gets one, so they are refused rather than half-supported.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "NOTIFY_SOCKET is neither an absolute path nor an @abstract name",
        ));
    };
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        // A datagram is sent whole or not at all; a short count would mean a truncated message.
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification datagram was truncated",
        ));
    }
    Ok(())
}

/// Sends `state` to `$NOTIFY_SOCKET`. Returns false when the variable is unset or empty (not
/// run by systemd, or not `Type=notify`) or the send failed (logged at `warn`: systemd would
/// then time the start out or restart us, and the log should say why).
pub fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET_VAR) else {
        return false;
    };
    let Some(socket) = socket.to_str().filter(|s| !s.is_empty()) else {
        return false;
    };
    match notify_to(socket, state) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("systemd notification failed: {e}");
            false
        }
    }
}

/// "RELOADING=1" with the `MONOTONIC_USEC` systemd uses to match a reload to its request;
/// send it before re-reading the configuration and "READY=1" after.
pub fn reloading_message() -> String {
    match monotonic_usec() {
        Some(usec) => format!("RELOADING=1\nMONOTONIC_USEC={usec}"),
        None => "RELOADING=1".to_string(),
    }
}

/// Now on `CLOCK_MONOTONIC`, in microseconds, as systemd wants in `MONOTONIC_USEC`.
///
/// std offers no safe way to read that clock: `clock_gettime` is `unsafe` through libc, and
/// `/proc/uptime` is `CLOCK_BOOTTIME`, which runs ahead after a suspend. On Linux, `Instant` is
/// a `CLOCK_MONOTONIC` timespec and its `Debug` output shows the two fields, so they are read
/// from there; if a future std prints it differently this returns None and the message goes
/// out without the timestamp (systemd then accepts the reload without matching it).
pub fn monotonic_usec() -> Option<u64> {
    parse_instant_debug(&format!("{:?}", Instant::now()))
}

/// Reads `Instant { tv_sec: S, tv_nsec: N }` as microseconds.
fn parse_instant_debug(debug: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let start = debug.find(name)? + name.len();
        let digits: String = debug[start..]
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let sec = field("tv_sec")?;
    let nsec = field("tv_nsec")?;
    sec.checked_mul(1_000_000)?.checked_add(nsec / 1_000)
}

/// The watchdog timeout from the values of `$WATCHDOG_USEC` and `$WATCHDOG_PID`: None when the
/// timeout is absent, zero or not a number, or when the pid is set and names another process
/// (a child that inherited the environment must not feed its parent's watchdog).
pub fn interval_from(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// The watchdog timeout systemd set for this process, if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var(WATCHDOG_USEC_VAR).ok();
    let pid = std::env::var(WATCHDOG_PID_VAR).ok();
    interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The thread that sends "WATCHDOG=1" every half timeout. Dropping it (or [`Watchdog::stop`])
/// ends the thread and waits for it, so keep it alive for as long as the server serves.
pub struct Watchdog {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the keep-alive towards `socket` for a systemd timeout of `timeout`. The period is
    /// half the timeout, the margin `sd_watchdog_enabled(3)` recommends.
    pub fn start_to(socket: String, timeout: Duration) -> io::Result<Watchdog> {
        let period = (timeout / 2).max(MIN_WATCHDOG_PERIOD);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut warned = false;
                // Sent once at once: a restart may have left little of the timeout.
                loop {
                    if let Err(e) = notify_to(&socket, WATCHDOG_MESSAGE) {
                        // Once is enough; systemd will restart us and the log says why.
                        if !warned {
                            log::warn!("systemd watchdog notification failed: {e}");
                            warned = true;
                        }
                    }
                    match stopped.recv_timeout(period) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        // A stop message or the Watchdog dropped.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Watchdog {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the keep-alive and waits for the thread to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may already have ended; then there is no one to tell.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::warn!("the watchdog thread panicked");
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Starts the watchdog keep-alive when systemd asked for one (`WatchdogSec=` sets
/// `$WATCHDOG_USEC`) and gave us a socket; None otherwise, or when the thread could not start
/// (logged). Keep the value alive while serving: dropping it stops the keep-alive.
pub fn start_watchdog() -> Option<Watchdog> {
    let timeout = watchdog_interval()?;
    let socket = std::env::var(NOTIFY_SOCKET_VAR)
        .ok()
        .filter(|s| !s.is_empty())?;
    match Watchdog::start_to(socket, timeout) {
        Ok(w) => {
            log::debug!(
                "systemd watchdog: keep-alive every {:?}",
                (timeout / 2).max(MIN_WATCHDOG_PERIOD)
            );
            Some(w)
        }
        Err(e) => {
            log::warn!("could not start the systemd watchdog thread: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// How long a test waits for a datagram that should come.
    const DEADLINE: Duration = Duration::from_secs(5);

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A fresh socket path in the temp dir (short enough for `sun_path`'s 108 bytes).
    fn socket_path() -> PathBuf {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("kimai-mcp-notify-{}-{n}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn recv(sock: &UnixDatagram, within: Duration) -> Option<String> {
        sock.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        match sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8(buf[..n].to_vec()).unwrap()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("recv: {e}"),
        }
    }

    #[test]
    fn sends_to_a_path() {
        let path = socket_path();
        let sock = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1\nSTATUS=serving").unwrap();
        assert_eq!(
            recv(&sock, DEADLINE).as_deref(),
            Some("READY=1\nSTATUS=serving")
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_name() {
        let name = format!(
            "kimai-mcp-notify-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "STOPPING=1").unwrap();
        assert_eq!(recv(&sock, DEADLINE).as_deref(), Some("STOPPING=1"));
    }

    #[test]
    fn refuses_other_addresses_and_reports_a_missing_socket() {
        let e = notify_to("relative/path", "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let e = notify_to("vsock:2:1234", "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        // Nobody listening: the error reaches the caller (notify() logs it and returns false).
        let path = socket_path();
        assert!(notify_to(path.to_str().unwrap(), "READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_needs_a_positive_timeout_and_our_pid() {
        let us = 4242;
        assert_eq!(
            interval_from(Some("30000000"), None, us),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            interval_from(Some("200000"), Some("4242"), us),
            Some(Duration::from_millis(200))
        );
        assert_eq!(interval_from(Some("200000"), Some("4243"), us), None);
        assert_eq!(interval_from(Some("200000"), Some("x"), us), None);
        assert_eq!(interval_from(None, Some("4242"), us), None);
        assert_eq!(interval_from(Some("0"), None, us), None);
        assert_eq!(interval_from(Some("-5"), None, us), None);
        assert_eq!(interval_from(Some("soon"), None, us), None);
    }

    #[test]
    fn watchdog_pings_every_half_timeout_until_stopped() {
        let path = socket_path();
        let sock = UnixDatagram::bind(&path).unwrap();
        let timeout = Duration::from_millis(100);
        let started = Instant::now();
        let dog = Watchdog::start_to(path.to_str().unwrap().into(), timeout).unwrap();
        // The first at once, then one per 50 ms: three arrive well within the deadline.
        for _ in 0..3 {
            assert_eq!(recv(&sock, DEADLINE).as_deref(), Some(WATCHDOG_MESSAGE));
        }
        assert!(
            started.elapsed() >= timeout,
            "pings came faster than every half timeout: {:?}",
            started.elapsed()
        );
        dog.stop();
        // Drain anything sent before the stop, then silence.
        while recv(&sock, Duration::from_millis(10)).is_some() {}
        assert_eq!(recv(&sock, timeout * 2), None, "a ping after stop()");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn dropping_the_watchdog_ends_its_thread() {
        let path = socket_path();
        let sock = UnixDatagram::bind(&path).unwrap();
        let dog =
            Watchdog::start_to(path.to_str().unwrap().into(), Duration::from_secs(60)).unwrap();
        assert_eq!(recv(&sock, DEADLINE).as_deref(), Some(WATCHDOG_MESSAGE));
        // The next ping would be 30 s away: drop must not wait for it.
        let t = Instant::now();
        drop(dog);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "drop took {:?}",
            t.elapsed()
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        assert_eq!(
            parse_instant_debug("Instant { tv_sec: 12, tv_nsec: 345678901 }"),
            Some(12_345_678)
        );
        assert_eq!(parse_instant_debug("Instant(42)"), None);
        // The real clock: std prints the timespec on Linux, and CLOCK_MONOTONIC never runs ahead
        // of CLOCK_BOOTTIME (/proc/uptime) or goes backwards.
        let a = monotonic_usec().expect("Instant's Debug output has tv_sec and tv_nsec");
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let uptime_usec = (uptime * 1e6) as u64;
        assert!(a <= uptime_usec + 20_000, "{a} > uptime {uptime_usec}");
        let b = monotonic_usec().unwrap();
        assert!(b >= a);
        let msg = reloading_message();
        let usec: u64 = msg
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .expect("RELOADING=1 with MONOTONIC_USEC")
            .parse()
            .unwrap();
        assert!(usec >= b);
    }

    #[test]
    fn notify_without_the_variable_is_a_no_op() {
        // The test runner is not a Type=notify service (and nobody sets NOTIFY_SOCKET for it).
        if std::env::var_os(NOTIFY_SOCKET_VAR).is_none() {
            assert!(!notify("READY=1"));
            assert!(start_watchdog().is_none());
        }
    }
}
