//! Why `serve` could not start: each case names what failed, in words for the operator.

use std::fmt;
use std::io;
use std::net::SocketAddr;

#[derive(Debug)]
pub enum Error {
    /// A setting that is checked only when the server is built (`--host`, trusted proxies,
    /// the OAuth state file).
    Setting(String),
    /// The operating system's random source failed (no keys, no session ids).
    Random(String),
    /// The address could not be listened on (in use, not ours, no permission).
    Listen { addr: SocketAddr, source: io::Error },
    /// A thread of the server could not be started.
    Thread {
        what: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setting(s) => f.write_str(s),
            Error::Random(s) => f.write_str(s),
            Error::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Thread { what, source } => write!(f, "cannot start the {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {}
