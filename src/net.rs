//! Listening sockets for the HTTP servers (`serve` and the simulated Kimai).
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
}
