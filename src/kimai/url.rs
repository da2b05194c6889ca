//! URL handling for the Kimai client: normalising the configured base URL and building the
//! request URL `base + "/api" + path + "?" + query` with our own percent-encoding.
//!
//! Pure functions, no I/O, no shared state; called on whichever thread makes the call.

/// Normalises a configured Kimai URL: trims blanks, requires `http://` or `https://` and a host,
/// refuses credentials, a query or a fragment, and removes trailing slashes and a trailing
/// `/api` (people often paste the API URL). Returns e.g. `https://kimai.example.com/sub`.
pub(crate) fn normalize_base(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("the Kimai URL is empty".into());
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => {
            return Err(format!(
                "the Kimai URL must start with http:// or https:// (got {s:?})"
            ));
        }
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "the Kimai URL must use http:// or https://, not {scheme}://"
        ));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err("the Kimai URL must not contain a query (?) or fragment (#)".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(
            "the Kimai URL must not contain a user name or password; use the API token".into(),
        );
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => return Err(format!("the Kimai URL has an unclosed [ in its host: {s}")),
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(format!("the Kimai URL has no host name: {s}"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("the Kimai URL has an invalid port {p:?}"));
        }
    }
    let path = without_api(path);
    let base = format!("{scheme}://{authority}{}", encode(path, PATH_KEEP));
    // The http crate must accept what we built (port digits, host characters …).
    base.parse::<ureq::http::Uri>()
        .map_err(|e| format!("invalid Kimai URL {s}: {e}"))?;
    Ok(base)
}

/// A Kimai base URL (or its path) as people write it, without a trailing `/` or `/api`: users
/// often paste the API URL, and the client adds `/api` itself.
pub fn without_api(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    match url.strip_suffix("/api") {
        Some(u) => u.trim_end_matches('/'),
        None => url,
    }
}

/// Characters kept as they are in a path besides the RFC 3986 unreserved set: the segment
/// separator and the sub-delims / `:` / `@` that `pchar` allows.
const PATH_KEEP: &[u8] = b"/!$&'()*+,;=:@";
/// In query keys and values only the unreserved set is kept.
const QUERY_KEEP: &[u8] = b"";

/// Percent-encodes every byte that is not RFC 3986 unreserved (`A-Z a-z 0-9 - . _ ~`) and not in
/// `keep`, as `%XX` with upper-case hex.
pub(crate) fn encode(s: &str, keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// The full request URL. `path` gets a leading `/` if it lacks one.
pub(crate) fn request_url(base: &str, path: &str, query: &[(String, String)]) -> String {
    let mut url = String::with_capacity(base.len() + path.len() + 16);
    url.push_str(base);
    url.push_str("/api");
    if !path.starts_with('/') {
        url.push('/');
    }
    url.push_str(&encode(path, PATH_KEEP));
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&encode(k, QUERY_KEEP));
        url.push('=');
        url.push_str(&encode(v, QUERY_KEEP));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_normalised() {
        let ok = |s: &str| normalize_base(s).unwrap();
        assert_eq!(ok("https://kimai.example.com"), "https://kimai.example.com");
        assert_eq!(
            ok("https://kimai.example.com/"),
            "https://kimai.example.com"
        );
        assert_eq!(
            ok(" HTTPS://kimai.example.com/api/ "),
            "https://kimai.example.com"
        );
        assert_eq!(
            ok("http://10.0.0.1:8001/kimai//"),
            "http://10.0.0.1:8001/kimai"
        );
        assert_eq!(ok("http://[::1]:8080"), "http://[::1]:8080");
    }

    #[test]
    fn base_refused() {
        for bad in [
            "",
            "kimai.example.com",
            "ftp://kimai.example.com",
            "https://",
            "https:///path",
            "https://user:pw@kimai.example.com",
            "https://kimai.example.com/?x=1",
            "https://kimai.example.com:99999999",
            "https://kimai.example.com:",
            "https://kimai.example.com:x1",
            "http://[::1",
        ] {
            assert!(normalize_base(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn query_encoding() {
        let q = vec![
            ("users[]".to_string(), "1".to_string()),
            ("term".to_string(), "a b&c=d/ü~".to_string()),
        ];
        assert_eq!(
            request_url("https://k", "/timesheets", &q),
            "https://k/api/timesheets?users%5B%5D=1&term=a%20b%26c%3Dd%2F%C3%BC~"
        );
        assert_eq!(
            request_url("https://k", "version", &[]),
            "https://k/api/version"
        );
        assert_eq!(
            request_url("https://k", "/work-contract/lock/3/2024-05-01", &[]),
            "https://k/api/work-contract/lock/3/2024-05-01"
        );
        assert_eq!(
            request_url("https://k", "/a b?#%", &[]),
            "https://k/api/a%20b%3F%23%25"
        );
    }
}
