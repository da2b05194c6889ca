//! The OAuth scopes this server grants (MCP 2025-11-25, Authorization: scope selection and
//! step-up): `kimai:read` (read Kimai data through the tools) and `kimai:write` (change it;
//! it implies `kimai:read`). This file owns their names, the parse of a space-separated
//! `scope` parameter (RFC 6749 §3.3) and its one canonical spelling; which request needs
//! which scope is the HTTP layer's decision (`http::auth`), and which tool call writes is the
//! tools' (`tools::call_writes`).
//!
//! A set of scopes is a small bit set. It is always normalized: a set that holds `kimai:write`
//! holds `kimai:read` as well, so "covers" is a plain subset test.

use std::fmt;

/// Every scope name this server knows, in the order it writes them.
pub const SUPPORTED: [&str; 2] = ["kimai:read", "kimai:write"];

const READ_BIT: u8 = 1;
const WRITE_BIT: u8 = 2;

/// Longest part of an unknown scope value repeated in an error message.
const MAX_SHOWN: usize = 40;

/// A normalized set of scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// `kimai:read`.
    pub const READ: Scopes = Scopes(READ_BIT);
    /// `kimai:read kimai:write`: everything, and what a sign-in without `scope` gets (the
    /// access every token had before scopes existed).
    pub const FULL: Scopes = Scopes(READ_BIT | WRITE_BIT);

    /// Parses a space-separated `scope` value. `Ok(None)` when it names no scope at all
    /// (missing or blank: the caller's default applies); `kimai:write` alone means both.
    pub fn parse(value: &str) -> Result<Option<Scopes>, UnknownScope> {
        let mut bits = 0;
        for token in value.split(' ').filter(|t| !t.is_empty()) {
            bits |= match token {
                "kimai:read" => READ_BIT,
                "kimai:write" => READ_BIT | WRITE_BIT,
                other => return Err(UnknownScope(shown(other))),
            };
        }
        Ok((bits != 0).then_some(Scopes(bits)))
    }

    /// The scopes of this server that a sign-in's `scope` names, ignoring any other (RFC 6749
    /// §3.3 lets the server grant less than asked and say so in the token response): clients
    /// add `openid`, `profile` or `offline_access` by habit, and refusing those would stop
    /// their sign-in for nothing. `None` when it names none of ours.
    pub fn parse_known(value: &str) -> Option<Scopes> {
        let bits = value
            .split(' ')
            .filter(|t| !t.is_empty())
            .fold(0, |bits, token| {
                bits | match token {
                    "kimai:read" => READ_BIT,
                    "kimai:write" => READ_BIT | WRITE_BIT,
                    _ => 0,
                }
            });
        (bits != 0).then_some(Scopes(bits))
    }

    /// Whether these scopes include everything `needed` asks for.
    pub fn covers(self, needed: Scopes) -> bool {
        self.0 & needed.0 == needed.0
    }
}

impl fmt::Display for Scopes {
    /// The scope names, space-separated, in the order of [`SUPPORTED`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [READ_BIT, WRITE_BIT]
            .iter()
            .zip(SUPPORTED)
            .filter(|(bit, _)| self.0 & **bit != 0)
            .map(|(_, name)| name)
            .collect();
        f.write_str(&names.join(" "))
    }
}

/// A `scope` value named a scope this server does not grant; holds that name, shortened and
/// made safe for an `error_description` (RFC 6749 §5.2 allows no `"` or `\` and nothing
/// outside printable ASCII there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scope '{}'; this server grants {} (kimai:write includes kimai:read)",
            self.0,
            SUPPORTED.join(" and ")
        )
    }
}

/// `name` for an error message: printable ASCII without quotes or backslashes (anything else
/// becomes `?`), at most [`MAX_SHOWN`] characters.
fn shown(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_SHOWN)
        .map(|c| match c {
            '"' | '\\' | '\'' => '?',
            c if c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect();
    if name.chars().count() > MAX_SHOWN {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalizes_and_prints_in_one_order() {
        assert_eq!(Scopes::parse(""), Ok(None));
        assert_eq!(Scopes::parse("  "), Ok(None));
        assert_eq!(Scopes::parse("kimai:read"), Ok(Some(Scopes::READ)));
        // Write implies read.
        assert_eq!(Scopes::parse("kimai:write"), Ok(Some(Scopes::FULL)));
        assert_eq!(
            Scopes::parse("kimai:write  kimai:read kimai:write"),
            Ok(Some(Scopes::FULL))
        );
        assert_eq!(
            Scopes::parse_known("openid kimai:read offline_access"),
            Some(Scopes::READ)
        );
        assert_eq!(Scopes::parse_known("openid profile"), None);
        assert_eq!(Scopes::parse_known("kimai:write"), Some(Scopes::FULL));
        assert_eq!(Scopes::READ.to_string(), "kimai:read");
        assert_eq!(Scopes::FULL.to_string(), "kimai:read kimai:write");
        assert_eq!(
            Scopes::parse(&Scopes::FULL.to_string()),
            Ok(Some(Scopes::FULL))
        );
        assert!(Scopes::FULL.covers(Scopes::READ) && Scopes::FULL.covers(Scopes::FULL));
        assert!(Scopes::READ.covers(Scopes::READ) && !Scopes::READ.covers(Scopes::FULL));
    }

    #[test]
    fn unknown_scopes_are_named_safely() {
        let e = Scopes::parse("kimai:read admin").unwrap_err();
        assert_eq!(e, UnknownScope("admin".into()));
        assert_eq!(
            e.to_string(),
            "unknown scope 'admin'; this server grants kimai:read and kimai:write (kimai:write includes kimai:read)"
        );
        // Case matters (RFC 6749 §3.3), and a tab is no separator.
        assert!(Scopes::parse("KIMAI:READ").is_err());
        assert_eq!(
            Scopes::parse("kimai:read\tx").unwrap_err().0,
            "kimai:read?x"
        );
        let e = Scopes::parse(&format!("\"<é>\\'{}", "x".repeat(100))).unwrap_err();
        assert_eq!(e.0, format!("?<?>??{}...", "x".repeat(34)));
        assert!(
            e.to_string()
                .chars()
                .all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\')),
            "{e}"
        );
    }
}
