//! The Kimai URL policy of `serve` (design §3): the Kimai servers that `/mcp` and `/sse`
//! callers may name in `X-Kimai-URL`.
//!
//! Without a policy the server token would turn the server into a proxy into the internal
//! network: it would connect wherever a caller points it, send the caller's chosen bearer
//! token, and tell refused ports from open ones. So the server connects only to base URLs the
//! operator allowed: `--default-kimai-url`, every `kimai_url` of the users file, and
//! `--allowed-kimai-url` (or any URL with `*`, which the server warns about at start).
//!
//! URLs are compared in a normal form ([`normalize`]): scheme and host in lower case, the
//! scheme's default port dropped, no trailing `/` and no `/api` suffix (the client adds it).
//! The path stays case-sensitive, as web servers treat it. A URL with user info, a query, a
//! fragment, a backslash, a percent sign or a control character has no normal form and is
//! never allowed: those are the spellings that parsers disagree on.
//!
//! Pure data; the HTTP layer keeps the policy behind an `RwLock` and rebuilds it when the
//! users file is reloaded.

use std::collections::HashSet;

/// Which Kimai base URLs may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KimaiUrls {
    any: bool,
    allowed: HashSet<String>,
}

impl KimaiUrls {
    /// `any`: every URL is allowed. Otherwise the given URLs (entries without a normal form are
    /// skipped; configuration checked them already).
    pub fn new<'a>(any: bool, urls: impl IntoIterator<Item = &'a str>) -> KimaiUrls {
        KimaiUrls {
            any,
            allowed: urls.into_iter().filter_map(normalize).collect(),
        }
    }

    /// Whether the server may connect to this base URL.
    pub fn allows(&self, url: &str) -> bool {
        match normalize(url) {
            Some(n) => self.any || self.allowed.contains(&n),
            None => false,
        }
    }

    /// Whether any URL is allowed (`--allowed-kimai-url '*'`).
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// How many URLs are on the list.
    pub fn len(&self) -> usize {
        self.allowed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }
}

/// The normal form of an `http(s)://host[:port][/path]` base URL, or `None` when it is not one
/// (see the module comment).
pub fn normalize(url: &str) -> Option<String> {
    let url = url.trim();
    if url.len() > 2048
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '\\' | '%' | '@'))
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    if rest.contains(['?', '#']) {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port: the colon is inside the brackets.
        Some((h, p)) if !p.contains(']') => (h.to_string(), Some(p.to_string())),
        _ => (authority.clone(), None),
    };
    // A trailing dot names the same host ("example.com." is fully qualified).
    let host = host.trim_end_matches('.').to_string();
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => return None,
        Some(p) => {
            let n: u32 = p.parse().ok()?;
            if n == 0 || n > 65_535 {
                return None;
            }
            let n = n.to_string();
            (n != default_port).then_some(n)
        }
    };
    let path = crate::kimai::without_api(path);
    if path.split('/').any(|seg| seg == "." || seg == "..") || path.contains("//") {
        return None;
    }
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        let n = |u: &str| normalize(u);
        assert_eq!(
            n("HTTPS://Kimai.Example.com:443/api/").as_deref(),
            Some("https://kimai.example.com")
        );
        assert_eq!(
            n("http://kimai.example.com:80").as_deref(),
            Some("http://kimai.example.com")
        );
        assert_eq!(
            n("http://10.0.0.5:8001/Kimai").as_deref(),
            Some("http://10.0.0.5:8001/Kimai")
        );
        assert_eq!(
            n("https://[::1]:9000/").as_deref(),
            Some("https://[::1]:9000")
        );
        assert_eq!(n("https://[::1]").as_deref(), Some("https://[::1]"));
        assert_eq!(
            n("https://kimai.example.com.").as_deref(),
            Some("https://kimai.example.com")
        );
        for bad in [
            "ftp://kimai.example.com",
            "https://user:pw@kimai.example.com",
            "https://kimai.example.com@10.0.0.1",
            "https://kimai.example.com/?x=1",
            "https://kimai.example.com/#x",
            "https://kimai.example.com:99999",
            "https://kimai.example.com:",
            "https://kimai.example.com:8a",
            "https://kimai.example.com/%2e%2e/",
            "https://kimai.example.com/a/../b",
            "https://kimai.example.com\\@evil",
            "https://kimai example.com",
            "https://",
            "kimai.example.com",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_listed_urls_are_allowed() {
        let p = KimaiUrls::new(
            false,
            ["https://kimai.example.com", "http://127.0.0.1:8001"],
        );
        assert!(p.allows("https://KIMAI.example.com/api"));
        assert!(p.allows("https://kimai.example.com:443/"));
        assert!(p.allows("http://127.0.0.1:8001/api/"));
        assert!(!p.allows("http://127.0.0.1:8002"));
        assert!(!p.allows("http://127.0.0.1:8001/other"));
        assert!(!p.allows("http://kimai.example.com"));
        assert!(!p.allows("https://kimai.example.com.evil.test"));
        assert!(!p.allows("https://kimai.example.com@127.0.0.1:8001"));
        assert_eq!(p.len(), 2);
        let any = KimaiUrls::new(true, []);
        assert!(any.allows("http://10.1.2.3:6379") && any.allows_any());
        // Even with '*', a URL without a normal form is refused.
        assert!(!any.allows("https://a@b"));
    }
}
