//! The security headers every response carries, whatever its status ([`security_headers`]).

/// Headers every response carries, whatever its status. The server returns JSON and event
/// streams only, never pages: nothing may be sniffed, framed, cached or load anything.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'"),
];

/// The security headers every response carries.
pub fn security_headers() -> &'static [(&'static str, &'static str)] {
    &SECURITY_HEADERS
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- headers ---

    #[test]
    fn security_headers_are_all_there() {
        let h = security_headers();
        for (name, value) in [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'"),
        ] {
            assert!(h.contains(&(name, value)), "{name}");
        }
        assert_eq!(h.len(), 5);
    }
}
