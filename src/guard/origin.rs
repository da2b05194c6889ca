//! Host and Origin validation against DNS rebinding, and the CORS decision ([`OriginPolicy`],
//! `mcp/protocol.md` §2.1). Built once from the serve configuration and immutable, so shared
//! without a lock.

/// Host names accepted on a loopback bind (compared without the port and case-insensitively;
/// IPv6 without its brackets).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Host/Origin validation against DNS rebinding (`mcp/protocol.md` §2.1, MCP 2025-11-25) and the
/// CORS decision. Built once from the serve configuration; immutable, so shared freely.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    bind_loopback: bool,
    /// `http://localhost:PORT` and friends, lowercase.
    loopback_origins: Vec<String>,
    /// Configured exact origins, normalized by [`normalize_origin`]; `"*"` is kept apart.
    allowed_origins: Vec<String>,
    /// `"*"` was configured.
    any_origin: bool,
    /// Extra accepted Host values, lowercase, with or without a port.
    public_hosts: Vec<String>,
}

/// Origins as browsers serialize them: lowercase scheme and host, no path, so a configured
/// `https://Claude.ai/` matches the header `https://claude.ai`.
fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Splits a Host header value into the host name (IPv6 without brackets) and the port, if any.
/// None for a value that is not `name`, `name:port`, `[v6]` or `[v6]:port`.
fn split_host(value: &str) -> Option<(&str, Option<&str>)> {
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (name, port)
    } else {
        match value.split_once(':') {
            // A second colon: an IPv6 address without brackets, which Host does not allow.
            Some((_, port)) if port.contains(':') => return None,
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        }
    };
    if name.is_empty() || port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((name, port))
}

impl OriginPolicy {
    /// `bind_loopback`: the server listens on a loopback address; `port`: its port;
    /// `allowed_origins`: the `--allowed-origin` values (exact origins such as
    /// `https://claude.ai`, or `*`); `public_hosts`: extra Host values to accept on a loopback
    /// bind (from `--public-url`, host with or without port; may be empty).
    pub fn new(
        bind_loopback: bool,
        port: u16,
        allowed_origins: Vec<String>,
        public_hosts: Vec<String>,
    ) -> OriginPolicy {
        let mut loopback_origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|h| format!("http://{h}:{port}"))
            .collect();
        if port == 80 {
            // Browsers leave the default port out of the Origin they send.
            loopback_origins
                .extend(["http://localhost", "http://127.0.0.1", "http://[::1]"].map(String::from));
        }
        let any_origin = allowed_origins.iter().any(|o| o.trim() == "*");
        let allowed_origins = allowed_origins
            .iter()
            .filter(|o| o.trim() != "*")
            .map(|o| normalize_origin(o))
            .filter(|o| !o.is_empty())
            .collect();
        let public_hosts = public_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        OriginPolicy {
            bind_loopback,
            loopback_origins,
            allowed_origins,
            any_origin,
            public_hosts,
        }
    }

    /// The Host check. On a loopback bind only `localhost`, `127.0.0.1` and `[::1]` (any port:
    /// the name is what DNS rebinding controls, and an `ssh -L` forward may change the port) or
    /// a public host are accepted; on any other bind every Host is (a reverse proxy sets it). A
    /// missing Host is accepted (HTTP/1.0). `Err(message)` means 403; the message does not echo
    /// the value.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), String> {
        let Some(host) = host else { return Ok(()) };
        if !self.bind_loopback {
            return Ok(());
        }
        let host = host.trim().to_ascii_lowercase();
        let Some((name, _port)) = split_host(&host) else {
            return Err("malformed Host header".to_string());
        };
        let public = self.public_hosts.iter().any(|p| {
            // A configured host with a port must match exactly; without one, any port.
            *p == host || *p == name || (p.starts_with('[') && p.get(1..p.len() - 1) == Some(name))
        });
        if LOOPBACK_HOSTS.contains(&name) || public {
            Ok(())
        } else {
            // The name is shown only when it is a plain host name (it comes from the client).
            let plain = name.len() <= 100
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
            let shown = if plain { name } else { "NAME" };
            Err(format!(
                "Host not allowed: this server listens on loopback only and accepts only loopback Host names (DNS rebinding protection). Behind a reverse proxy that forwards the public name (nginx: proxy_set_header Host $host), start the server with --public-host {shown} (KIMAI_MCP_PUBLIC_HOSTS)"
            ))
        }
    }

    /// The Origin check. Absent: accepted (non-browser clients send none). Present: accepted if
    /// it is a loopback origin of this port (`http://localhost:PORT`, `http://127.0.0.1:PORT`,
    /// `http://[::1]:PORT`), one of the allowed origins, or anything when `*` is configured
    /// (otherwise `*` would answer preflights for requests that are then refused; requests
    /// still need their token or slug, and no CORS credentials are ever allowed).
    /// `Err(message)` means 403.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), String> {
        let Some(origin) = origin else { return Ok(()) };
        let origin = normalize_origin(origin);
        if self.any_origin
            || self.loopback_origins.contains(&origin)
            || self.allowed_origins.contains(&origin)
        {
            Ok(())
        } else {
            Err("Origin not allowed".to_string())
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request with this Origin, or None (send no
    /// CORS headers): the request's origin itself when it is configured (the caller then adds
    /// `Vary: Origin`), `*` when `*` is configured. Loopback origins of our own port are
    /// same-origin and need none. The caller never sends `Access-Control-Allow-Credentials`:
    /// our credentials are explicit headers or the URL, never cookies, and browsers refuse
    /// credentials with `*` anyway.
    pub fn cors_allow_origin(&self, origin: Option<&str>) -> Option<String> {
        let origin = origin?.trim();
        if self.allowed_origins.contains(&normalize_origin(origin)) {
            Some(origin.to_string())
        } else if self.any_origin {
            Some("*".to_string())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- Host and Origin ---

    fn local(port: u16) -> OriginPolicy {
        OriginPolicy::new(true, port, vec![], vec![])
    }

    #[test]
    fn host_on_a_loopback_bind() {
        let p = local(8000);
        for host in [
            "localhost",
            "localhost:8000",
            "LocalHost:8000",
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]",
            "[::1]:8000",
            "localhost:9000",
        ] {
            assert_eq!(p.check_host(Some(host)), Ok(()), "{host}");
        }
        for host in [
            "evil.example.com",
            "evil.example.com:8000",
            "localhost.evil.example.com",
            "127.0.0.2:8000",
            "::1",
            "[::1",
            "[::2]:8000",
            "localhost:80x",
            "",
            ":8000",
        ] {
            assert!(p.check_host(Some(host)).is_err(), "{host}");
        }
        assert_eq!(p.check_host(None), Ok(()), "HTTP/1.0 sends no Host");
    }

    #[test]
    fn host_public_names_on_a_loopback_bind() {
        let p = OriginPolicy::new(
            true,
            8000,
            vec![],
            vec![
                "MCP.example.com".into(),
                "other.example.com:8443".into(),
                "[2001:db8::1]".into(),
            ],
        );
        assert_eq!(p.check_host(Some("mcp.example.com")), Ok(()));
        assert_eq!(p.check_host(Some("mcp.example.com:443")), Ok(()));
        assert_eq!(p.check_host(Some("other.example.com:8443")), Ok(()));
        assert!(p.check_host(Some("other.example.com:9999")).is_err());
        assert_eq!(p.check_host(Some("[2001:db8::1]:8000")), Ok(()));
        assert!(p.check_host(Some("evil.example.com")).is_err());
    }

    #[test]
    fn any_host_on_another_bind() {
        let p = OriginPolicy::new(false, 8000, vec![], vec![]);
        assert_eq!(p.check_host(Some("evil.example.com")), Ok(()));
        assert_eq!(p.check_host(Some("mcp.example.com:443")), Ok(()));
        assert_eq!(p.check_host(None), Ok(()));
    }

    #[test]
    fn origin_absent_loopback_listed_or_refused() {
        let p = OriginPolicy::new(true, 8000, vec!["https://Claude.ai/".into()], vec![]);
        assert_eq!(p.check_origin(None), Ok(()));
        for origin in [
            "http://localhost:8000",
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
        ] {
            assert_eq!(p.check_origin(Some(origin)), Ok(()), "{origin}");
        }
        assert_eq!(p.check_origin(Some("https://claude.ai")), Ok(()));
        for origin in [
            "http://evil.example.com",
            "http://localhost:9000",
            "https://localhost:8000",
            "http://localhost",
            "http://[::1]:9000",
            "https://claude.ai.evil.example.com",
            "null",
        ] {
            assert!(p.check_origin(Some(origin)).is_err(), "{origin}");
        }
        // On port 80 browsers omit the port.
        let p80 = local(80);
        assert_eq!(p80.check_origin(Some("http://localhost")), Ok(()));
        assert_eq!(p80.check_origin(Some("http://[::1]")), Ok(()));
        assert_eq!(p80.check_origin(Some("http://localhost:80")), Ok(()));
    }

    #[test]
    fn cors_exact_origin_or_star() {
        let p = OriginPolicy::new(true, 8000, vec!["https://claude.ai".into()], vec![]);
        assert_eq!(
            p.cors_allow_origin(Some("https://claude.ai")),
            Some("https://claude.ai".to_string())
        );
        assert_eq!(p.cors_allow_origin(Some("https://evil.example.com")), None);
        assert_eq!(
            p.cors_allow_origin(Some("http://localhost:8000")),
            None,
            "same-origin"
        );
        assert_eq!(p.cors_allow_origin(None), None);

        let star = OriginPolicy::new(
            false,
            8000,
            vec!["*".into(), "https://claude.ai".into()],
            vec![],
        );
        assert_eq!(
            star.check_origin(Some("https://anyone.example.com")),
            Ok(())
        );
        assert_eq!(
            star.cors_allow_origin(Some("https://anyone.example.com")),
            Some("*".to_string())
        );
        assert_eq!(
            star.cors_allow_origin(Some("https://claude.ai")),
            Some("https://claude.ai".to_string()),
            "a listed origin is echoed even with *"
        );
        assert_eq!(star.cors_allow_origin(None), None);
    }
}
