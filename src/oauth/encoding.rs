//! The encodings and URI rules of the authorization server: random secrets and their digests,
//! base64 (RFC 4648), PKCE S256 (RFC 7636), form encoding, and the checks of redirect URIs and
//! resource indicators. Pure functions, no state.

use std::collections::HashMap;

/// A random value: `prefix` and 256 bits in base64url.
pub fn random_secret(prefix: &str) -> String {
    // No randomness means no safe token: stop here rather than issue a guessable one.
    let b = crate::secret::random_bytes::<32>().unwrap_or_else(|e| panic!("{e}"));
    format!("{prefix}{}", b64url(&b))
}

/// SHA-256 as lowercase hex.
pub fn digest_hex(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    crate::secret::hex(d.as_ref())
}

/// base64url without padding (RFC 4648 §5).
pub fn b64url(bytes: &[u8]) -> String {
    b64_with(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

/// Standard base64 with padding (RFC 4648 §4), as CSP hashes are written.
pub fn b64_std(bytes: &[u8]) -> String {
    b64_with(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

fn b64_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let a = alphabet;
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        let chars = c.len() + 1;
        for i in 0..chars {
            out.push(a[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in chars..4 {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (with or without padding) for HTTP Basic credentials.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The PKCE S256 transform of a verifier.
pub fn s256(verifier: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

pub(super) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The origin (`scheme://host[:port]`, lowercase) of an absolute http(s) URL, or for another
/// scheme `scheme:`. None for something that is not an absolute URI.
pub fn uri_origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "http" || scheme == "https" {
        let after = rest.strip_prefix("//")?;
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
    } else {
        Some(format!("{scheme}:"))
    }
}

/// True for a loopback host name of an http URL authority (`host[:port]`).
fn loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks one redirect URI of a registration: absolute, no fragment, https (http only for a
/// loopback host, as native apps use), or a private-use scheme of a native app; never a scheme
/// a browser would run or read locally.
pub(super) fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > super::MAX_PARAM || uri.chars().any(|c| c.is_control() || c == ' ') {
        return Err("a redirect URI is too long or contains spaces or control characters".into());
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment (#)".into());
    }
    let Some(origin) = uri_origin(uri) else {
        return Err("a redirect URI must be an absolute URI such as https://app.example.com/callback or http://127.0.0.1:PORT/callback".into());
    };
    if let Some(authority) = origin.strip_prefix("http://") {
        if !loopback_authority(authority) {
            return Err("an http:// redirect URI is allowed only for a loopback host (127.0.0.1, [::1] or localhost); use https://".into());
        }
    } else if !origin.starts_with("https://") {
        let scheme = origin.trim_end_matches(':');
        if [
            "javascript",
            "data",
            "file",
            "vbscript",
            "about",
            "blob",
            "filesystem",
            "ws",
            "wss",
            "ftp",
        ]
        .contains(&scheme)
        {
            return Err(format!(
                "the {scheme}: scheme is not allowed for a redirect URI"
            ));
        }
    }
    Ok(())
}

/// Appends query parameters to a redirect URI (which may already have a query).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&form_encode(v));
        sep = '&';
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `application/x-www-form-urlencoded` text (also a query string). A parameter given
/// twice is an error (RFC 6749 §3.1: parameters must not be repeated); the name is returned.
pub fn parse_form(s: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = crate::net::percent_decode(k, true);
        if k.len() > 64 {
            return Err("a parameter name is too long".into());
        }
        let v = crate::net::percent_decode(v, true);
        if map.insert(k.clone(), v).is_some() {
            return Err(format!("the parameter {k} is repeated"));
        }
    }
    Ok(map)
}

/// The canonical form of a resource URI for comparison: lowercase scheme and host, no
/// trailing slash.
pub(super) fn canonical_resource(uri: &str) -> Option<String> {
    let origin = uri_origin(uri)?;
    if !origin.starts_with("http") || uri.contains('#') {
        return None;
    }
    let rest = &uri[origin.len()..];
    Some(format!("{origin}{}", rest.trim_end_matches('/')))
}
