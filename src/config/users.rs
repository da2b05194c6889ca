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
//! the slug and this secret. `oidc_identity` lets the user sign in through the identity provider
//! (`--auth-backend oidc`): the identity the provider asserts (by default the verified e-mail
//! address; see `--oidc-identity-claim`), compared without regard to case. Two users with the
//! same identity are refused.
//!
//! The slug is a secret: whoever knows it acts as that Kimai user. Invalid slugs and entries are
//! refused with the reason (the server does not start with a half-read file); weak slugs and a
//! file readable by other users are warned about. `kimai_user_id` is informational (it is shown
//! in audit lines instead of the slug). Errors never print a token or a slug.

use super::slug::{SlugCheck, check_slug};
use crate::kimai::{Tls, Token};
use crate::tools::policy::{Policy, parse_selectors};
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
    /// The identity-provider identity of this user (`--auth-backend oidc`), as written.
    pub oidc_identity: Option<String>,
    /// Whether `/mcp/{slug}` serves this user. Users of a file or of `USERS_CONFIG` have a
    /// random slug; a `KIMAI_USER_<NAME>_*` user's slug is its lowercased name, a personal URL
    /// only when that name passes the slug rules (else OAuth sign-in only).
    pub personal_url: bool,
    /// Where the user was configured, for labels and messages (never the slug).
    pub source: Source,
    /// What this user's connections may do with the tools (`read_only`, `tools`,
    /// `exclude_tools`); it narrows the server's own.
    pub policy: Policy,
}

/// Where a user comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A users file or `USERS_CONFIG` (labelled `users.json#N`).
    File,
    /// `KIMAI_USER_<NAME>_*` variables (labelled `env#N`).
    Env,
    /// Auto-provisioning (`crate::provision`; labelled by the Kimai user id it always has).
    Provisioned,
}

impl User {
    /// The label for logs: never the slug.
    pub fn label(&self) -> String {
        match (self.kimai_user_id, self.source) {
            (Some(id), _) => format!("kimai-user-{id}"),
            (None, Source::File) => format!("users.json#{}", self.index),
            (None, Source::Env) => format!("env#{}", self.index),
            (None, Source::Provisioned) => format!("provisioned#{}", self.index),
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
                    "read_only",
                    "tools",
                    "exclude_tools",
                    "oidc_identity",
                ]
                .contains(&k.as_str())
            {
                return Err(Error(format!(
                    "{at}: unknown field \"{}\" (known: kimai_url, kimai_token, ssl_verify, kimai_user_id, auth_secret, oidc_identity, read_only, tools, exclude_tools; fields starting with _ are comments)",
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
        let policy = entry_policy(&e, &at)?;
        let oidc_identity = match e.get("oidc_identity") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                check_identity(s).map_err(|why| Error(format!("{at}: \"oidc_identity\" {why}")))?,
            ),
            Some(_) => {
                return Err(Error(format!("{at}: \"oidc_identity\" must be a string")));
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
                oidc_identity,
                personal_url: true,
                source: Source::File,
                policy,
            },
        );
    }
    check_unique_identities(&users, where_)?;
    Ok(users)
}

/// The fields of a `KIMAI_USER_<NAME>_<FIELD>` variable, a field that ends another after it (a
/// name may hold `_`).
const ENV_FIELDS: [&str; 8] = [
    "SSL_VERIFY",
    "AUTH_SECRET",
    "OIDC_IDENTITY",
    "READ_ONLY",
    "EXCLUDE_TOOLS",
    "TOOLS",
    "URL",
    "TOKEN",
];

/// A users.json entry's `read_only`, `tools` and `exclude_tools`.
fn entry_policy(e: &serde_json::Map<String, Value>, at: &str) -> Result<Policy, Error> {
    let mut p = Policy::default();
    match e.get("read_only") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => p.read_only = Some("read_only in users.json".into()),
        Some(_) => return Err(Error(format!("{at}: \"read_only\" must be true or false"))),
    }
    let list = |key: &str| -> Result<Vec<crate::tools::policy::Selector>, Error> {
        let text = match e.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Some(_) => {
                return Err(Error(format!(
                    "{at}: \"{key}\" must be a list of tool names (or tool.action)"
                )));
            }
        };
        parse_selectors(&text, &format!("{at}: \"{key}\"")).map_err(Error)
    };
    let allow = list("tools")?;
    if !allow.is_empty() {
        p.allow.push(allow);
    }
    p.deny = list("exclude_tools")?;
    Ok(p)
}

/// Longest `oidc_identity`.
pub const MAX_IDENTITY_CHARS: usize = 256;

/// An `oidc_identity` as kept: trimmed, non-empty, short, no control characters.
fn check_identity(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty");
    }
    if s.chars().count() > MAX_IDENTITY_CHARS || s.chars().any(char::is_control) {
        return Err("must be at most 256 characters without control characters");
    }
    Ok(s.to_string())
}

/// The form identities are compared in: lowercase (Unicode), as 2.20.1 compares them.
pub fn identity_key(identity: &str) -> String {
    identity.trim().to_lowercase()
}

/// Two users with one identity would make a sign-in ambiguous: refused, naming entries by
/// position only.
fn check_unique_identities(users: &Users, where_: &str) -> Result<(), Error> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut list: Vec<&User> = users.by_slug.values().collect();
    list.sort_by_key(|u| (u.source == Source::Env, u.index));
    for u in list {
        let Some(id) = &u.oidc_identity else { continue };
        if let Some(first) = seen.insert(identity_key(id), u.label()) {
            return Err(Error(format!(
                "{where_}: {first} and {} have the same oidc_identity; each identity may belong to one user only",
                u.label()
            )));
        }
    }
    Ok(())
}

impl Users {
    /// The user whose `oidc_identity` is `identity` (compared without regard to case): its
    /// slug and entry.
    pub fn by_identity(&self, identity: &str) -> Option<(&String, &User)> {
        let key = identity_key(identity);
        self.by_slug.iter().find(|(_, u)| {
            u.oidc_identity
                .as_deref()
                .is_some_and(|i| identity_key(i) == key)
        })
    }
}

/// The users of `serve`, from the first source that is there, as the Python server reads
/// them: a users file (`--users-config`, `USERS_CONFIG_FILE`), else `USERS_CONFIG` (the
/// file's JSON inline), else the `KIMAI_USER_<NAME>_URL/_TOKEN/_SSL_VERIFY/_AUTH_SECRET`
/// variables (one user per NAME, its slug the lowercased NAME). Then, for every user,
/// `KIMAI_USER_<SLUG>_AUTH_SECRET` (slug uppercased, `-` as `_`) sets its auth secret.
/// `env` reads one variable; `vars` are all of them (for the `KIMAI_USER_` ones).
pub fn load_sources(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    vars: &[(String, String)],
) -> Result<Users, Error> {
    let inline = env("USERS_CONFIG").filter(|s| !s.trim().is_empty());
    let env_names = env_user_names(vars);
    let mut users = if let Some(path) = file {
        let mut u = load(path)?;
        if inline.is_some() {
            u.warnings
                .push("USERS_CONFIG is ignored: a users file is given (--users-config or USERS_CONFIG_FILE), which comes first".into());
        }
        u
    } else if let Some(text) = &inline {
        parse(text, "USERS_CONFIG").map_err(|e| {
            // serde's message quotes no input, but say where the JSON came from.
            Error(format!("{e} (the USERS_CONFIG environment variable)"))
        })?
    } else {
        from_env(vars, &env_names)?
    };
    if (file.is_some() || inline.is_some())
        && env_names.iter().any(|n| {
            vars.iter().any(|(k, _)| {
                k == &format!("KIMAI_USER_{n}_URL") || k == &format!("KIMAI_USER_{n}_TOKEN")
            })
        })
    {
        users.warnings.push(
            "KIMAI_USER_<NAME>_URL/_TOKEN variables are ignored: a users file or USERS_CONFIG is given, which comes first".into(),
        );
    }
    // Per-slug auth secrets from the environment (as 2.20.1 does).
    let slugs: Vec<String> = users.by_slug.keys().cloned().collect();
    for slug in slugs {
        let var = format!(
            "KIMAI_USER_{}_AUTH_SECRET",
            slug.to_ascii_uppercase().replace('-', "_")
        );
        if let Some(secret) = env(&var)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            if let Some(u) = users.by_slug.get_mut(&slug) {
                u.auth_secret = Some(Token::new(secret));
            }
        }
        let var = format!(
            "KIMAI_USER_{}_OIDC_IDENTITY",
            slug.to_ascii_uppercase().replace('-', "_")
        );
        if let Some(identity) = env(&var).filter(|s| !s.trim().is_empty()) {
            let identity =
                check_identity(&identity).map_err(|why| Error(format!("{var} {why}")))?;
            if let Some(u) = users.by_slug.get_mut(&slug) {
                u.oidc_identity = Some(identity);
            }
        }
    }
    check_unique_identities(&users, "the users")?;
    Ok(users)
}

/// The NAMEs of the `KIMAI_USER_<NAME>_<FIELD>` variables, sorted.
fn env_user_names(vars: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = vars
        .iter()
        .filter_map(|(k, _)| split_env_var(k).map(|(n, _)| n.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `KIMAI_USER_<NAME>_<FIELD>` → (NAME, FIELD).
fn split_env_var(key: &str) -> Option<(&str, &'static str)> {
    let rest = key.strip_prefix("KIMAI_USER_")?;
    ENV_FIELDS.iter().find_map(|f| {
        rest.strip_suffix(f)
            .and_then(|n| n.strip_suffix('_'))
            .filter(|n| !n.is_empty())
            .map(|n| (n, *f))
    })
}

/// Users from `KIMAI_USER_<NAME>_*` variables.
fn from_env(vars: &[(String, String)], names: &[String]) -> Result<Users, Error> {
    let mut users = Users::default();
    let get = |name: &str, field: &str| {
        vars.iter()
            .find(|(k, _)| *k == format!("KIMAI_USER_{name}_{field}"))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    for (i, name) in names.iter().enumerate() {
        let at = format!("KIMAI_USER_{name}_*");
        let url = get(name, "URL");
        let token = get(name, "TOKEN");
        let (url, token) = match (url, token) {
            (Some(u), Some(t)) => (u, t),
            // An AUTH_SECRET alone overrides a file user's secret (`load_sources`).
            (None, None) => continue,
            (None, Some(_)) => {
                return Err(Error(format!("{at}: KIMAI_USER_{name}_URL is missing")));
            }
            (Some(_), None) => {
                return Err(Error(format!("{at}: KIMAI_USER_{name}_TOKEN is missing")));
            }
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error(format!(
                "{at}: KIMAI_USER_{name}_URL must start with https:// or http://"
            )));
        }
        let tls = match get(name, "SSL_VERIFY") {
            None => Tls::Verify,
            Some(v) => Tls::parse(&v)
                .map_err(|why| Error(format!("{at}: KIMAI_USER_{name}_SSL_VERIFY: {why}")))?,
        };
        let auth_secret = get(name, "AUTH_SECRET").map(Token::new);
        let mut policy = Policy::default();
        match get(name, "READ_ONLY").map(|v| v.to_ascii_lowercase()) {
            None => {}
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => {
                policy.read_only = Some(format!("KIMAI_USER_{name}_READ_ONLY"));
            }
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => {}
            Some(_) => {
                return Err(Error(format!(
                    "{at}: KIMAI_USER_{name}_READ_ONLY must be true or false"
                )));
            }
        }
        if let Some(t) = get(name, "TOOLS") {
            policy
                .allow
                .push(parse_selectors(&t, &format!("KIMAI_USER_{name}_TOOLS")).map_err(Error)?);
        }
        if let Some(t) = get(name, "EXCLUDE_TOOLS") {
            policy.deny =
                parse_selectors(&t, &format!("KIMAI_USER_{name}_EXCLUDE_TOOLS")).map_err(Error)?;
        }
        let oidc_identity = match get(name, "OIDC_IDENTITY") {
            None => None,
            Some(i) => Some(
                check_identity(&i)
                    .map_err(|why| Error(format!("{at}: KIMAI_USER_{name}_OIDC_IDENTITY {why}")))?,
            ),
        };
        let slug = name.to_ascii_lowercase();
        // The name is a sign-in name here; it is a credential only if it makes a personal URL,
        // and it is named in messages only when it does not.
        let personal_url = check_slug(&slug) == SlugCheck::Ok;
        if !personal_url {
            let reach = if auth_secret.is_some() || oidc_identity.is_some() {
                "it signs in with OAuth (name and KIMAI_USER_<NAME>_AUTH_SECRET, or the identity provider with KIMAI_USER_<NAME>_OIDC_IDENTITY) only"
            } else {
                "and with no KIMAI_USER_<NAME>_AUTH_SECRET it cannot connect at all; set one and sign in with OAuth (--public-url)"
            };
            users.warnings.push(format!(
                "{at}: the name is too short or guessable to be a secret personal URL, so /mcp/{slug} is off for this user; {reach}. For a personal URL, use a users file with a random slug (kimai-mcp generate slug)"
            ));
        }
        users.by_slug.insert(
            slug,
            User {
                kimai_url: crate::kimai::without_api(&url).to_string(),
                token: Token::new(token),
                tls,
                kimai_user_id: None,
                index: i + 1,
                auth_secret,
                oidc_identity,
                personal_url,
                source: Source::Env,
                policy,
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

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn users_come_from_the_file_else_users_config_else_the_environment() {
        let inline = r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://inline.example", "kimai_token": "t-inline"}}"#;
        let env_vars = vars(&[
            ("KIMAI_USER_ALICE_URL", "https://env.example/api"),
            ("KIMAI_USER_ALICE_TOKEN", "t-alice"),
            ("KIMAI_USER_ALICE_AUTH_SECRET", "alice-secret-0123456789"),
            ("KIMAI_USER_BOB_SMITH_URL", "https://env.example"),
            ("KIMAI_USER_BOB_SMITH_TOKEN", "t-bob"),
            ("KIMAI_USER_BOB_SMITH_SSL_VERIFY", "false"),
            ("KIMAI_USER_Q8WM3ZT5XC7VB2NR9LK4_URL", "https://env.example"),
            ("KIMAI_USER_Q8WM3ZT5XC7VB2NR9LK4_TOKEN", "t-random"),
            (
                "KIMAI_USER_K7HQ2VX9MPZ4LW8RT3NS_AUTH_SECRET",
                "inline-secret-0123456789",
            ),
        ]);
        let with_inline = |k: &str| {
            (k == "USERS_CONFIG")
                .then(|| inline.to_string())
                .or_else(|| {
                    env_vars
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                })
        };
        // USERS_CONFIG before the variables; a per-slug AUTH_SECRET still applies.
        let u = load_sources(None, &with_inline, &env_vars).unwrap();
        assert_eq!(u.by_slug.len(), 1);
        let only = &u.by_slug["k7Hq2vX9mPz4Lw8Rt3Ns"];
        assert_eq!(only.kimai_url, "https://inline.example");
        assert_eq!(
            only.auth_secret.as_ref().map(Token::expose),
            Some("inline-secret-0123456789")
        );
        assert!(
            u.warnings
                .iter()
                .any(|w| w.contains("variables are ignored")),
            "{:?}",
            u.warnings
        );

        // Without USERS_CONFIG: one user per NAME, slug lowercased.
        let env_only = |k: &str| {
            env_vars
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let u = load_sources(None, &env_only, &env_vars).unwrap();
        assert_eq!(u.by_slug.len(), 3, "{:?}", u.by_slug.keys());
        let alice = &u.by_slug["alice"];
        assert_eq!(alice.kimai_url, "https://env.example");
        assert!(!alice.personal_url && alice.auth_secret.is_some());
        assert_eq!(alice.source, Source::Env);
        let bob = &u.by_slug["bob_smith"];
        assert_eq!(bob.tls, Tls::NoVerify);
        assert!(!bob.personal_url && bob.auth_secret.is_none());
        // A name that passes the slug rules is a personal URL, and never named in a warning.
        assert!(u.by_slug["q8wm3zt5xc7vb2nr9lk4"].personal_url);
        assert!(
            u.warnings
                .iter()
                .all(|w| !w.to_ascii_uppercase().contains("Q8WM3ZT5"))
        );
        assert!(
            u.warnings
                .iter()
                .any(|w| w.contains("KIMAI_USER_ALICE_*") && w.contains("OAuth")),
            "{:?}",
            u.warnings
        );
        assert!(
            u.warnings
                .iter()
                .any(|w| w.contains("KIMAI_USER_BOB_SMITH_*") && w.contains("cannot connect")),
            "{:?}",
            u.warnings
        );

        // Half a user is refused, naming the missing variable and no value.
        let half = vars(&[("KIMAI_USER_CAROL_URL", "https://k.example")]);
        let e = load_sources(None, &|_| None, &half).unwrap_err();
        assert!(e.0.contains("KIMAI_USER_CAROL_TOKEN is missing"), "{e}");
        // Broken inline JSON says where it came from, and quotes none of it.
        let e = load_sources(
            None,
            &|k| (k == "USERS_CONFIG").then(|| "{\"x\": tok".into()),
            &[],
        )
        .unwrap_err();
        assert!(e.0.contains("USERS_CONFIG") && !e.0.contains("tok"), "{e}");
    }

    #[test]
    fn oidc_identities_are_read_unique_and_matched_without_case() {
        let u = parse(
            r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k", "kimai_token": "t1", "oidc_identity": " Ann.Lee@Corp.Example "},
                "Ab3dEf6hIj9kLm2nOp": {"kimai_url": "https://k", "kimai_token": "t2"}}"#,
            "users.json",
        )
        .unwrap();
        let (slug, user) = u.by_identity("ann.lee@corp.example").unwrap();
        assert_eq!(slug, "k7Hq2vX9mPz4Lw8Rt3Ns");
        assert_eq!(user.oidc_identity.as_deref(), Some("Ann.Lee@Corp.Example"));
        assert!(u.by_identity("ANN.LEE@CORP.EXAMPLE").is_some());
        assert!(u.by_identity("ann@corp.example").is_none());
        // The same identity twice (in any case) is refused, naming entries by position.
        let e = parse(
            r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k", "kimai_token": "t1", "oidc_identity": "a@x.example"},
                "Ab3dEf6hIj9kLm2nOp": {"kimai_url": "https://k", "kimai_token": "t2", "oidc_identity": "A@X.example"}}"#,
            "users.json",
        )
        .unwrap_err();
        assert!(
            e.0.contains("users.json#1 and users.json#2 have the same oidc_identity")
                && !e.0.contains("k7Hq"),
            "{e}"
        );
        for bad in [r#""""#, r#"" ""#, "5", r#""a\u0000b""#] {
            let e = parse(
                &format!(r#"{{"k7Hq2vX9mPz4Lw8Rt3Ns": {{"kimai_url": "https://k", "kimai_token": "t", "oidc_identity": {bad}}}}}"#),
                "u.json",
            )
            .unwrap_err();
            assert!(e.0.contains("oidc_identity"), "{bad}: {e}");
        }
        // From the environment: per NAME, and per slug over a file's entry.
        let vars = vars(&[
            ("KIMAI_USER_ALICE_URL", "https://k"),
            ("KIMAI_USER_ALICE_TOKEN", "t-alice"),
            ("KIMAI_USER_ALICE_OIDC_IDENTITY", "alice@corp.example"),
        ]);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let u = load_sources(None, &get, &vars).unwrap();
        assert_eq!(
            u.by_slug["alice"].oidc_identity.as_deref(),
            Some("alice@corp.example")
        );
        assert!(
            u.warnings.iter().all(|w| !w.contains("not used")),
            "{:?}",
            u.warnings
        );
        let inline = r#"{"k7Hq2vX9mPz4Lw8Rt3Ns": {"kimai_url": "https://k", "kimai_token": "t1"}}"#;
        let env = |k: &str| match k {
            "USERS_CONFIG" => Some(inline.to_string()),
            "KIMAI_USER_K7HQ2VX9MPZ4LW8RT3NS_OIDC_IDENTITY" => Some("bob@corp.example".into()),
            _ => None,
        };
        let u = load_sources(None, &env, &[]).unwrap();
        assert!(u.by_identity("BOB@corp.example").is_some());
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
