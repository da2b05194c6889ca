//! Listening sockets for the tiny_http servers (the simulated Kimai now, `serve` later).
//!
//! tiny_http accepts connections itself and gives no hook to configure them, and it writes
//! responses through a 1 KiB buffer, so a response larger than that leaves in two writes.
//! With Nagle's algorithm on, the second write waits for the peer's ACK of the first, which a
//! peer that delays ACKs sends only after 40 ms: every such response would take 40 ms longer.
//! Linux copies `TCP_NODELAY` from a listening socket to each accepted one, so the listener is
//! created here with it set, and handed to `tiny_http::Server::from_listener`.

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
