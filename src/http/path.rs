//! Request paths: which ones are routed, how they are logged and counted.
//!
//! A path is routed only in its one canonical form: no empty segment (`//mcp/…`, `/mcp//…`, a
//! trailing `/`), no `.` or `..` segment, no percent-encoding. None of our paths needs any of
//! these, and each is a way for a proxy, a log reader and this server to disagree about what a
//! path names; so they answer 404 whatever follows. The one exception is `/messages/`, the
//! legacy SSE endpoint as the Python server announces it.
//!
//! The access log never shows a slug: in any path, canonical or not, every segment after one
//! that reads `mcp` (in any case, percent-encoded or not) is replaced by `{slug}`, and a
//! segment that merely contains `mcp` (`/mcp<slug>`, a typo) is replaced itself.
//!
//! Pure functions; no state, no locks.

/// The segments of `path` (without the leading `/`) when it is canonical, else `None`.
pub fn canonical_segments(path: &str) -> Option<Vec<&str>> {
    if path == "/messages/" {
        return Some(vec!["messages", ""]);
    }
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let bad = |s: &&str| s.is_empty() || *s == "." || *s == ".." || s.contains('%');
    if segs.iter().any(bad) {
        return None;
    }
    Some(segs)
}

/// Longest path shown in the access log, in characters.
const LOGGED_PATH_CHARS: usize = 64;

/// The path for the access log: percent-decoded (so that an encoded `mcp` or `/` cannot hide
/// a slug from the masking), slugs masked, control characters replaced, at most
/// [`LOGGED_PATH_CHARS`] characters.
pub fn logged_path(path: &str) -> String {
    let decoded = crate::net::percent_decode(path, false);
    let mut out = String::with_capacity(decoded.len().min(LOGGED_PATH_CHARS + 8));
    let mut after_mcp = false;
    for (i, seg) in decoded.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let lower = seg.to_ascii_lowercase();
        if after_mcp && !seg.is_empty() {
            out.push_str("{slug}");
        } else if lower == "mcp" {
            out.push_str(seg);
            after_mcp = true;
        } else if lower.contains("mcp") {
            out.push_str("{mcp-like}");
            after_mcp = true;
        } else {
            out.extend(seg.chars().map(|c| if c.is_control() { '?' } else { c }));
        }
        if out.chars().count() > LOGGED_PATH_CHARS {
            break;
        }
    }
    out.chars().take(LOGGED_PATH_CHARS).collect()
}

/// The route name for metrics (a fixed set, so label values stay few and never secret).
pub fn endpoint_name(path: &str) -> &'static str {
    let Some(segs) = canonical_segments(path) else {
        return "other";
    };
    match segs.as_slice() {
        ["mcp"] => "mcp",
        ["mcp", _] => "mcp_slug",
        ["sse"] => "sse",
        ["messages"] | ["message"] | ["messages", ""] => "messages",
        ["health"] => "health",
        ["metrics"] => "metrics",
        ["authorize"] | ["token"] | ["register"] | ["revoke"] | ["oauth", "login"] => "oauth",
        ["oauth", "oidc", "callback"] => "oauth",
        [".well-known", ..] => "oauth_metadata",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLUG: &str = "k7Hq2vX9mPz4Lw8Rt3NsQa";

    #[test]
    fn only_canonical_paths_are_routed() {
        assert_eq!(
            canonical_segments(&format!("/mcp/{SLUG}")),
            Some(vec!["mcp", SLUG])
        );
        assert_eq!(canonical_segments("/mcp"), Some(vec!["mcp"]));
        assert_eq!(
            canonical_segments("/.well-known/oauth-authorization-server"),
            Some(vec![".well-known", "oauth-authorization-server"])
        );
        assert_eq!(canonical_segments("/messages/"), Some(vec!["messages", ""]));
        for p in [
            format!("//mcp/{SLUG}"),
            format!("/mcp//{SLUG}"),
            format!("/./mcp/{SLUG}"),
            format!("/mcp/./{SLUG}"),
            format!("/x/../mcp/{SLUG}"),
            format!("/mcp/{SLUG}/"),
            format!("/mcp%2F{SLUG}"),
            format!("/mcp%2f{SLUG}"),
            format!("/%6Dcp/{SLUG}"),
            format!("/mcp/%2e%2e/{SLUG}"),
            format!("/mcp/{SLUG}%2F"),
            "/".to_string(),
            "/mcp/".to_string(),
            "relative".to_string(),
            "/sse/".to_string(),
        ] {
            assert_eq!(canonical_segments(&p), None, "{p}");
        }
    }

    #[test]
    fn no_slug_reaches_the_log() {
        for p in [
            format!("/mcp/{SLUG}"),
            format!("//mcp/{SLUG}"),
            format!("/mcp//{SLUG}"),
            format!("/./mcp/{SLUG}"),
            format!("/mcp/{SLUG}/"),
            format!("/mcp/{SLUG}/x"),
            format!("/MCP/{SLUG}"),
            format!("/Mcp/{SLUG}"),
            format!("/mcp%2F{SLUG}"),
            format!("/%6Dcp/{SLUG}"),
            format!("/%4d%43%50/{SLUG}"),
            format!("/mcp{SLUG}"),
            format!("/api/mcp/{SLUG}"),
            format!("/.well-known/oauth-protected-resource/mcp/{SLUG}"),
        ] {
            let logged = logged_path(&p);
            assert!(!logged.contains(SLUG), "{p} logged as {logged}");
            assert!(!logged.contains(&SLUG[..6]), "{p} logged as {logged}");
        }
        assert_eq!(logged_path(&format!("/mcp/{SLUG}")), "/mcp/{slug}");
        assert_eq!(logged_path(&format!("/MCP/{SLUG}")), "/MCP/{slug}");
        assert_eq!(logged_path(&format!("//mcp/{SLUG}")), "//mcp/{slug}");
        assert_eq!(logged_path(&format!("/mcp//{SLUG}")), "/mcp//{slug}");
        assert_eq!(logged_path(&format!("/mcp%2f{SLUG}")), "/mcp/{slug}");
        // Other paths are shown as they are, control characters replaced, length bounded.
        assert_eq!(logged_path("/health"), "/health");
        assert_eq!(logged_path("/mcp"), "/mcp");
        assert_eq!(logged_path("/a%0ab"), "/a?b");
        assert_eq!(logged_path(&format!("/{}", "a".repeat(500))).len(), 64);
    }

    #[test]
    fn metrics_name_routes_not_paths() {
        assert_eq!(endpoint_name(&format!("/mcp/{SLUG}")), "mcp_slug");
        assert_eq!(endpoint_name("/mcp"), "mcp");
        assert_eq!(endpoint_name("/messages/"), "messages");
        assert_eq!(
            endpoint_name("/.well-known/oauth-protected-resource/mcp"),
            "oauth_metadata"
        );
        assert_eq!(endpoint_name(&format!("//mcp/{SLUG}")), "other");
        assert_eq!(endpoint_name(&format!("/mcp%2F{SLUG}")), "other");
        assert_eq!(endpoint_name(&format!("/MCP/{SLUG}")), "other");
    }
}
