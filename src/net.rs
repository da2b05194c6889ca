//! HTTP plumbing shared by both servers (`serve` and the simulated Kimai): listening sockets,
//! and the percent-decoding of paths, query strings and forms. No Kimai and no MCP knowledge:
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
