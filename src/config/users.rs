//! `users.json`: the users of `kimai-mcp serve` that connect through a personal URL
//! (`/mcp/{slug}`), each mapped to their own Kimai URL and token.
//!
//! ```json
//! {"_comment": "keys starting with _ are ignored",
//!  "k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://kimai.example.com", "kimai_token": "…",
//!                           "ssl_verify": true, "kimai_user_id": 12,
//!                           "auth_secret": "…"}}
//! ```
//!
//! `auth_secret` lets the user sign in through OAuth (`--public-url`): the sign-in form asks for
//! the slug and this secret.
//!
//! The slug is a secret: whoever knows it acts as that Kimai user. Invalid slugs and entries are
//! refused with the reason (the server does not start with a half-read file); weak slugs and a
//! file readable by other users are warned about. `kimai_user_id` is informational (it is shown
//! in audit lines instead of the slug). Errors never print a token or a slug.

use super::slug::{SlugCheck, check_slug};
use crate::kimai::{Tls, Token};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// Largest users file read.
pub const MAX_USERS_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One configured user.
#[derive(Clone, Debug)]
pub struct User {
    pub kimai_url: String,
    pub token: Token,
    pub tls: Tls,
    /// Informational; used as the audit label when set.
    pub kimai_user_id: Option<i64>,
    /// Position in the file (1-based), for labels and messages that must not show the slug.
    pub index: usize,
    /// The secret for the OAuth sign-in form (with the slug); none = this user cannot sign in.
    pub auth_secret: Option<Token>,
}

impl User {
    /// The label for logs: never the slug.
    pub fn label(&self) -> String {
        match self.kimai_user_id {
            Some(id) => format!("kimai-user-{id}"),
            None => format!("users.json#{}", self.index),
        }
    }
}

/// The users by slug.
#[derive(Clone, Debug, Default)]
pub struct Users {
    pub by_slug: HashMap<String, User>,
    /// Warnings to log at start (weak slugs, file mode); never contain a slug or token.
    pub warnings: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the JSON text of a users file. `where_` names the source in messages.
pub fn parse(text: &str, where_: &str) -> Result<Users, Error> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error(format!("{where_} is not valid JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(Error(format!(
            "{where_} must be a JSON object keyed by slug"
        )));
    };
    let mut users = Users::default();
    let mut index = 0;
    for (position, (slug, entry)) in map.into_iter().enumerate() {
        if slug.starts_with('_') {
            // A comment, as in the Python server — but one holding a user is almost always a
            // slug that happens to start with `_` (Python's `secrets.token_urlsafe` makes one
            // about 1 time in 64). Named by position: the key itself may be a secret.
            let user_like = entry
                .as_object()
                .is_some_and(|e| e.contains_key("kimai_url") || e.contains_key("kimai_token"));
            if user_like {
                users.warnings.push(format!(
                    "{where_}: the key at position {} looks like a user (it has kimai_url or kimai_token) but starts with `_`, so it is treated as a comment and that person has no access; give the user a slug that starts with a letter or digit (kimai-mcp generate slug)",
                    position + 1
                ));
            }
            continue;
        }
        index += 1;
        let at = format!("{where_}, entry #{index}");
        match check_slug(&slug) {
            SlugCheck::Invalid(why) => return Err(Error(format!("{at}: invalid slug: {why}"))),
            SlugCheck::Weak(why) => users.warnings.push(format!(
                "{at}: weak slug: {why}; anyone who guesses it acts as that Kimai user"
            )),
            SlugCheck::Ok => {}
        }
        let Value::Object(e) = entry else {
            return Err(Error(format!(
                "{at}: must be an object with kimai_url and kimai_token"
            )));
        };
        for k in e.keys() {
            if !k.starts_with('_')
                && ![
                    "kimai_url",
                    "kimai_token",
                    "ssl_verify",
                    "kimai_user_id",
                    "auth_secret",
                ]
                .contains(&k.as_str())
            {
                return Err(Error(format!(
                    "{at}: unknown field \"{}\" (known: kimai_url, kimai_token, ssl_verify, kimai_user_id, auth_secret; fields starting with _ are comments)",
                    k.chars().take(40).collect::<String>()
                )));
            }
        }
        let url = e
            .get("kimai_url")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let Some(url) = url else {
            return Err(Error(format!("{at}: \"kimai_url\" is required")));
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error(format!(
                "{at}: \"kimai_url\" must start with https:// or http://"
            )));
        }
        let token = e
            .get("kimai_token")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let Some(token) = token else {
            return Err(Error(format!("{at}: \"kimai_token\" is required")));
        };
        let tls = match e.get("ssl_verify") {
            None | Some(Value::Null) | Some(Value::Bool(true)) => Tls::Verify,
            Some(Value::Bool(false)) => Tls::NoVerify,
            Some(Value::String(s)) => {
                Tls::parse(s).map_err(|why| Error(format!("{at}: \"ssl_verify\": {why}")))?
            }
            Some(_) => {
                return Err(Error(format!(
                    "{at}: \"ssl_verify\" must be true, false or the path of a CA file"
                )));
            }
        };
        let kimai_user_id = match e.get("kimai_user_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| Error(format!("{at}: \"kimai_user_id\" must be a number")))?,
            ),
        };
        let auth_secret = match e.get("auth_secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => {
                let s = s.trim();
                if s.len() > 512 {
                    return Err(Error(format!(
                        "{at}: \"auth_secret\" is longer than 512 characters"
                    )));
                }
                if s.chars().count() < 12 {
                    users.warnings.push(format!(
                        "{at}: the auth_secret is shorter than 12 characters; anyone who guesses it and the slug signs in as that Kimai user (make one with `kimai-mcp generate token`)"
                    ));
                }
                Some(Token::new(s.to_string()))
            }
            Some(_) => {
                return Err(Error(format!(
                    "{at}: \"auth_secret\" must be a non-empty string"
                )));
            }
        };
        let base = crate::kimai::without_api(url).to_string();
        users.by_slug.insert(
            slug,
            User {
                kimai_url: base,
                token: Token::new(token.to_string()),
                tls,
                kimai_user_id,
                index,
                auth_secret,
            },
        );
    }
    Ok(users)
}

/// Reads and parses a users file, warning when other users may read it.
pub fn load(path: &Path) -> Result<Users, Error> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error(format!("cannot read the users file {shown}: {e}")))?;
    if meta.len() > MAX_USERS_FILE_BYTES {
        return Err(Error(format!(
            "the users file {shown} is larger than {MAX_USERS_FILE_BYTES} bytes"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error(format!("cannot read the users file {shown}: {e}")))?;
    let mut users = parse(&text, &shown)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            users.warnings.push(format!(
                "the users file {shown} can be read by other users of this machine (mode {:o}); it holds Kimai tokens: chmod 600 it",
                mode & 0o777
            ));
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_comments() {
        let u = parse(
            r#"{"_comment": "x", "k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k.example/api/", "kimai_token": "t1", "kimai_user_id": 12},
                "Ab3dEf6hIj9kLm2nOp": {"kimai_url": "http://k2", "kimai_token": "t2", "ssl_verify": false}}"#,
            "users.json",
        )
        .unwrap();
        assert_eq!(u.by_slug.len(), 2);
        let a = &u.by_slug["k7Hq2vX9mPz4Lw8Rt3Ns"];
        assert_eq!(a.kimai_url, "https://k.example");
        assert_eq!(a.label(), "kimai-user-12");
        assert_eq!(u.by_slug["Ab3dEf6hIj9kLm2nOp"].tls, Tls::NoVerify);
        assert!(u.warnings.is_empty(), "{:?}", u.warnings);
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason_and_no_secret() {
        let e = parse(
            r#"{"bad slug!": {"kimai_url": "https://k", "kimai_token": "secret-token"}}"#,
            "u.json",
        )
        .unwrap_err();
        assert!(
            e.0.contains("invalid slug")
                && !e.0.contains("bad slug")
                && !e.0.contains("secret-token"),
            "{e}"
        );
        let e = parse(
            r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "kimai.example"}}"#,
            "u.json",
        )
        .unwrap_err();
        assert!(e.0.contains("https://"), "{e}");
        let e = parse(
            r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k"}}"#,
            "u.json",
        )
        .unwrap_err();
        assert!(e.0.contains("kimai_token"), "{e}");
        let e = parse(r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k", "kimai_token": "t", "tokn": 1}}"#, "u.json").unwrap_err();
        assert!(
            e.0.contains("unknown field") && e.0.contains("auth_secret"),
            "{e}"
        );
        assert!(parse("[]", "u.json").is_err());
        assert!(parse("{", "u.json").is_err());
    }

    #[test]
    fn a_user_behind_an_underscore_is_pointed_out_by_position_only() {
        // The Python guide's slugs (`secrets.token_urlsafe(12)`) start with `_` 1 time in 64.
        let u = parse(
            r#"{"_comment": "ignored", "k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k", "kimai_token": "t1"},
                "_x9Fq2vX9mPz4Lw8Rt3N": {"kimai_url": "https://k", "kimai_token": "t2"}}"#,
            "users.json",
        )
        .unwrap();
        assert_eq!(u.by_slug.len(), 1);
        assert_eq!(u.warnings.len(), 1, "{:?}", u.warnings);
        let w = &u.warnings[0];
        assert!(
            w.contains("position 3") && w.contains("treated as a comment") && !w.contains("_x9F"),
            "{w}"
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let u = parse(
            include_str!("../../config/users.example.json"),
            "users.example.json",
        )
        .unwrap();
        assert_eq!(u.by_slug.len(), 2);
        assert!(u.warnings.is_empty(), "{:?}", u.warnings);
    }

    #[test]
    fn weak_slugs_warn() {
        let u = parse(
            r#"{"alicealice": {"kimai_url": "https://k", "kimai_token": "t"}}"#,
            "u.json",
        )
        .unwrap();
        assert!(
            u.warnings[0].contains("weak slug") && !u.warnings[0].contains("alicealice"),
            "{:?}",
            u.warnings
        );
        assert!(matches!(check_slug("passwordpassword"), SlugCheck::Weak(_)));
        assert!(matches!(
            check_slug("aaaaaaaaaaaaaaaaaaaa"),
            SlugCheck::Weak(_)
        ));
        assert_eq!(check_slug("k7Hq2vX9mPz4Lw8Rt3Ns"), SlugCheck::Ok);
        assert!(matches!(check_slug("a/b"), SlugCheck::Invalid(_)));
        assert!(matches!(check_slug(""), SlugCheck::Invalid(_)));
        // Too short to be a secret at all: refused, with the reason.
        let e = parse(
            r#"{"alice": {"kimai_url": "https://k", "kimai_token": "t"}}"#,
            "u.json",
        )
        .unwrap_err();
        assert!(
            e.0.contains("invalid slug") && !e.0.contains("alice"),
            "{e}"
        );
    }
}
