//! The client address and scheme behind reverse proxies: which peers are trusted
//! ([`TrustedProxies`], from `--trusted-proxy`), the client address they forward
//! ([`client_ip`], walking `X-Forwarded-For` from the right) and whether the original request was
//! https ([`is_https`]). Headers of an untrusted peer are never believed.
//!
//! Pure decisions over values the HTTP layer passes in; no I/O, no shared state.

use std::net::{IpAddr, SocketAddr};

/// `X-Forwarded-For` hops walked from the right at most; a longer chain of trusted hops is
/// treated as malformed. Real deployments have one to three proxies.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// One trusted network: an address with the host bits cleared, and its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The reverse proxies whose forwarding headers (`X-Forwarded-For`, `X-Real-IP`,
/// `X-Forwarded-Proto`) we believe (`--trusted-proxy` / `KIMAI_MCP_TRUSTED_PROXIES`). Anyone can
/// send those headers, so from any other peer they are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks, IPv4 and IPv6:
    /// `"127.0.0.1,10.0.0.0/8,::1,fd00::/8"`. Blanks around entries and empty entries are
    /// ignored; host bits of a network are cleared (`10.1.2.3/8` is `10.0.0.0/8`). The error
    /// names the bad entry.
    pub fn parse(spec: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = parse_net(entry)
                .map_err(|why| format!("invalid trusted proxy {entry:?}: {why}"))?;
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// No trusted proxy: forwarding headers are never believed.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Whether `ip` is one of the trusted proxies. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, what a dual-stack listener reports) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn parse_net(entry: &str) -> Result<Net, String> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (entry, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "not an IP address or CIDR network".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => {
            let p: u8 = p
                .parse()
                .map_err(|_| "the prefix length is not a number".to_string())?;
            if p > max {
                return Err(format!("the prefix length {p} exceeds {max}"));
            }
            p
        }
    };
    let addr = match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask_v4(prefix)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask_v6(prefix)).into()),
    };
    Ok(Net { addr, prefix })
}

/// One address from a forwarding header: a bare IP, or with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or in brackets (`[2001:db8::1]`), as some proxies write them.
fn parse_forwarded_addr(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    let ip = value
        .parse::<IpAddr>()
        .ok()
        .or_else(|| value.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .and_then(|v| v.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// The address of the client, for rate limiting, the enumeration guard and the access log.
///
/// The TCP peer, unless the peer is a trusted proxy; then the right-most untrusted address of
/// `X-Forwarded-For` (each proxy appends the address it saw, so hops to the right of the first
/// untrusted one were written by our proxies and the ones to its left by the client, who may
/// lie), else `X-Real-IP`, else the peer. When every hop is trusted the left-most one is the
/// client. A value that does not parse ends the walk: `X-Forwarded-For` is then ignored, as is a
/// malformed `X-Real-IP`. Several `X-Forwarded-For` headers must be joined with `,` in order by
/// the caller. The result is canonical (`::ffff:1.2.3.4` becomes `1.2.3.4`), so one client has
/// one table entry whichever way it connected.
pub fn client_ip(
    peer: IpAddr,
    x_forwarded_for: Option<&str>,
    x_real_ip: Option<&str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    x_forwarded_for
        .and_then(|v| from_forwarded_for(v, trusted))
        .or_else(|| x_real_ip.and_then(parse_forwarded_addr))
        .unwrap_or(peer)
}

fn from_forwarded_for(value: &str, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut leftmost = None;
    for (n, hop) in value.rsplit(',').enumerate() {
        if n >= MAX_FORWARDED_HOPS {
            return None;
        }
        let ip = parse_forwarded_addr(hop)?;
        if !trusted.contains(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// Whether the request came over HTTPS (`--require-https`). We serve plain HTTP only, so that is
/// the case only behind a TLS-terminating proxy: the peer must be trusted and the first value of
/// `X-Forwarded-Proto` (the scheme the outermost proxy saw) must be `https`, in any case.
pub fn is_https(peer: IpAddr, x_forwarded_proto: Option<&str>, trusted: &TrustedProxies) -> bool {
    trusted.contains(peer)
        && x_forwarded_proto
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::test_support::{ip, proxies};

    // --- trusted proxies ---

    #[test]
    fn trusted_proxies_parse_addresses_and_networks() {
        let t = proxies(" 127.0.0.1, 10.0.0.0/8 ,::1,fd00::/8,192.168.1.7/32,");
        assert!(!t.is_empty());
        assert!(t.contains(ip("127.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(t.contains(ip("10.255.1.2")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("::2")));
        assert!(t.contains(ip("fd12:3456::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        // A dual-stack listener reports IPv4 peers as mapped IPv6 addresses.
        assert!(t.contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn trusted_proxies_prefix_edges() {
        let all_v4 = proxies("0.0.0.0/0");
        assert!(all_v4.contains(ip("1.2.3.4")));
        assert!(all_v4.contains(ip("255.255.255.255")));
        assert!(
            !all_v4.contains(ip("2001:db8::1")),
            "a v4 network never holds v6"
        );
        let all_v6 = proxies("::/0");
        assert!(all_v6.contains(ip("2001:db8::1")));
        assert!(!all_v6.contains(ip("1.2.3.4")));
        // Host bits are cleared.
        let t = proxies("10.1.2.3/8");
        assert!(t.contains(ip("10.200.0.1")));
        let t = proxies("2001:db8::1/128");
        assert!(t.contains(ip("2001:db8::1")));
        assert!(!t.contains(ip("2001:db8::2")));
    }

    #[test]
    fn trusted_proxies_reject_bad_entries_by_name() {
        for (spec, bad) in [
            ("127.0.0.1,proxy.local", "proxy.local"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("::/129", "::/129"),
            ("10.0.0.0/x", "10.0.0.0/x"),
            ("10.0.0.0/", "10.0.0.0/"),
            ("1.2.3.4.5", "1.2.3.4.5"),
            ("10.0.0.0/-1", "10.0.0.0/-1"),
        ] {
            let err = TrustedProxies::parse(spec).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{spec}: {err}");
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::none().is_empty());
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
    }

    // --- client address ---

    #[test]
    fn client_ip_from_an_untrusted_peer_ignores_headers() {
        let t = proxies("10.0.0.0/8");
        let peer = ip("203.0.113.9");
        assert_eq!(client_ip(peer, Some("1.1.1.1"), Some("2.2.2.2"), &t), peer);
        assert_eq!(
            client_ip(peer, Some("1.1.1.1"), None, &TrustedProxies::none()),
            peer
        );
    }

    #[test]
    fn client_ip_takes_the_right_most_untrusted_hop() {
        let t = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        // The client claims 6.6.6.6; our proxy 10.0.0.2 saw 198.51.100.7.
        let xff = "6.6.6.6, 198.51.100.7, 10.0.0.2";
        assert_eq!(
            client_ip(peer, Some(xff), Some("9.9.9.9"), &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, Some("198.51.100.7"), None, &t),
            ip("198.51.100.7")
        );
        // Ports and brackets written by some proxies.
        assert_eq!(
            client_ip(peer, Some("198.51.100.7:4711"), None, &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, Some("[2001:db8::5]:443"), None, &t),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_ip(peer, Some("[2001:db8::5]"), None, &t),
            ip("2001:db8::5")
        );
        // A mapped peer is trusted as its v4 address, and the result is canonical.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), Some("::ffff:198.51.100.7"), None, &t),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn client_ip_with_an_all_trusted_chain_takes_the_left_most() {
        let t = proxies("10.0.0.0/8");
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                Some("10.9.9.9, 10.0.0.3, 10.0.0.2"),
                None,
                &t
            ),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn client_ip_falls_back_to_x_real_ip_then_the_peer() {
        let t = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        assert_eq!(
            client_ip(peer, None, Some(" 198.51.100.7 "), &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, Some("garbage"), Some("198.51.100.7"), &t),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(peer, None, None, &t), peer);
        assert_eq!(client_ip(peer, Some("garbage"), None, &t), peer);
        assert_eq!(client_ip(peer, Some(""), Some("not-an-ip"), &t), peer);
        assert_eq!(
            client_ip(peer, Some("1.2.3.4, unknown, 10.0.0.2"), None, &t),
            peer
        );
        // Garbage left of the first untrusted hop is the client's business, not ours.
        assert_eq!(
            client_ip(peer, Some("garbage, 198.51.100.7"), None, &t),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn client_ip_bounds_the_walk() {
        let t = proxies("10.0.0.0/8");
        let long = vec!["10.0.0.9"; MAX_FORWARDED_HOPS + 1].join(",");
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(&long), None, &t),
            ip("10.0.0.1")
        );
        let just = vec!["10.0.0.9"; MAX_FORWARDED_HOPS].join(",");
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(&just), None, &t),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn https_only_from_a_trusted_peer() {
        let t = proxies("10.0.0.1");
        assert!(is_https(ip("10.0.0.1"), Some("https"), &t));
        assert!(is_https(ip("10.0.0.1"), Some("HTTPS"), &t));
        assert!(is_https(ip("10.0.0.1"), Some(" https , http"), &t));
        assert!(!is_https(ip("10.0.0.1"), Some("http, https"), &t));
        assert!(!is_https(ip("10.0.0.1"), Some("http"), &t));
        assert!(!is_https(ip("10.0.0.1"), None, &t));
        assert!(!is_https(ip("10.0.0.2"), Some("https"), &t));
        assert!(!is_https(
            ip("10.0.0.1"),
            Some("https"),
            &TrustedProxies::none()
        ));
    }
}
