//! `serve --state URL` (`KIMAI_MCP_STATE_URL`) and `--state-password-file FILE`
//! (`KIMAI_MCP_STATE_PASSWORD_FILE`): where several instances keep the state they share
//! (design §4, issue 21). Resolved here into a [`StateConfig`]; the connection itself is made by
//! `crate::state` when the server starts. Nothing here touches the network.
//!
//! The URL is `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` or `rediss://…` (TLS, verified
//! against the compiled-in web PKI roots). The password may be in the URL or, better, in a file
//! (the URL then holds none); it is never logged, printed or shown by `Debug`: what the logs show
//! is [`StateConfig::shown`], the URL without its user part.

use super::{EnvFn, Error};

/// The shared state store's address, resolved.
#[derive(Clone)]
pub struct StateConfig {
    /// The URL as given (it may hold a password: never log it).
    url: String,
    /// A password read from `--state-password-file` (never log it).
    password: Option<String>,
    /// `scheme://host:port/db` without user or password, for logs and `/health`.
    pub shown: String,
    /// `--state-ca-file`: PEM certificates to trust for `rediss://` instead of the web PKI.
    pub ca_pem: Option<Vec<u8>>,
    /// `--state-key-file`: the key that seals what the store must keep usable (provisioned
    /// Kimai tokens), as SHA-256 of the file's text (never log it).
    pub key: Option<[u8; 32]>,
}

impl std::fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateConfig")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

impl StateConfig {
    /// The URL to connect to (may hold a password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The password from `--state-password-file`, if one was given.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
}

const FLAG: &str = "--state";
const VAR: &str = "KIMAI_MCP_STATE_URL";
const PASSWORD_FLAG: &str = "--state-password-file";
const PASSWORD_VAR: &str = "KIMAI_MCP_STATE_PASSWORD_FILE";
const CA_FLAG: &str = "--state-ca-file";
const CA_VAR: &str = "KIMAI_MCP_STATE_CA_FILE";
pub const KEY_FLAG: &str = "--state-key-file";
pub const KEY_VAR: &str = "KIMAI_MCP_STATE_KEY_FILE";
/// The shortest key file accepted (characters, after trimming).
const MIN_KEY_CHARS: usize = 32;

/// `--state`, `--state-password-file` and `--state-ca-file` (flag beats variable); `None`
/// without a URL.
pub fn resolve(
    url: Option<String>,
    password_file: Option<String>,
    ca_file: Option<String>,
    key_file: Option<String>,
    env: EnvFn,
) -> Result<Option<StateConfig>, Error> {
    let key_file = key_file
        .or_else(|| env(KEY_VAR))
        .filter(|s| !s.trim().is_empty());
    let password_file = password_file
        .or_else(|| env(PASSWORD_VAR))
        .filter(|s| !s.trim().is_empty());
    let ca_file = ca_file
        .or_else(|| env(CA_VAR))
        .filter(|s| !s.trim().is_empty());
    let Some(url) = url.or_else(|| env(VAR)).filter(|s| !s.trim().is_empty()) else {
        if password_file.is_some() {
            return Err(Error::Usage(format!(
                "{PASSWORD_FLAG} ({PASSWORD_VAR}) needs {FLAG} ({VAR})"
            )));
        }
        if ca_file.is_some() {
            return Err(Error::Usage(format!(
                "{CA_FLAG} ({CA_VAR}) needs {FLAG} ({VAR}) with a rediss:// URL"
            )));
        }
        if key_file.is_some() {
            return Err(Error::Usage(format!(
                "{KEY_FLAG} ({KEY_VAR}) needs {FLAG} ({VAR})"
            )));
        }
        return Ok(None);
    };
    let url = url.trim().to_string();
    let invalid = |problem: String| Error::Invalid {
        flag: FLAG,
        var: VAR,
        problem,
    };
    let lower = url.to_ascii_lowercase();
    let (scheme, rest) = if let Some(r) = lower.strip_prefix("rediss://") {
        ("rediss", &url[url.len() - r.len()..])
    } else if let Some(r) = lower.strip_prefix("redis://") {
        ("redis", &url[url.len() - r.len()..])
    } else {
        // Never echo the value: it may hold a password.
        return Err(invalid(
            "expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB (a Redis or Valkey server)"
                .into(),
        ));
    };
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (authority, db) = match hostpart.split_once('/') {
        Some((a, d)) => (a, d.split(['?', '#']).next().unwrap_or("")),
        None => (hostpart.split(['?', '#']).next().unwrap_or(""), ""),
    };
    if authority.is_empty() {
        return Err(invalid("the URL names no host".into()));
    }
    let db = if db.is_empty() { "0" } else { db };
    if db.parse::<u16>().is_err() {
        return Err(invalid(format!(
            "the database must be a number (redis://HOST:PORT/0), got {}",
            crate::text::quote_name(db)
        )));
    }
    let has_port = match authority.rsplit_once(':') {
        Some((_, p)) => !p.contains(']'),
        None => false,
    };
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:6379")
    };
    let in_url = userinfo.is_some_and(|u| u.split_once(':').is_some_and(|(_, p)| !p.is_empty()));
    let password = match password_file {
        None => None,
        Some(_) if in_url => {
            return Err(Error::Usage(format!(
                "give the state store's password either in the URL or in {PASSWORD_FLAG} ({PASSWORD_VAR}), not both"
            )));
        }
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Invalid {
                flag: PASSWORD_FLAG,
                var: PASSWORD_VAR,
                problem: format!("cannot read {path}: {e}"),
            })?;
            let pw = text.trim_end_matches(['\r', '\n']).to_string();
            if pw.is_empty() {
                return Err(Error::Invalid {
                    flag: PASSWORD_FLAG,
                    var: PASSWORD_VAR,
                    problem: format!("{path} is empty"),
                });
            }
            Some(pw)
        }
    };
    let ca_pem = match ca_file {
        None => None,
        Some(_) if scheme != "rediss" => {
            return Err(Error::Usage(format!(
                "{CA_FLAG} ({CA_VAR}) is for TLS: use a rediss:// URL with it"
            )));
        }
        Some(path) => {
            let bad = |problem: String| Error::Invalid {
                flag: CA_FLAG,
                var: CA_VAR,
                problem,
            };
            let pem = std::fs::read(&path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(bad(format!(
                    "{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                )));
            }
            Some(pem)
        }
    };
    let key = match key_file {
        None => None,
        Some(path) => Some(read_key(&path)?),
    };
    // The client's own parser is the one that will connect: make sure it accepts the URL now.
    if redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
        return Err(invalid(
            "not a valid Redis URL (expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB)".into(),
        ));
    }
    Ok(Some(StateConfig {
        shown: format!("{scheme}://{authority}/{db}"),
        url,
        password,
        ca_pem,
        key,
    }))
}

/// `--state-key-file`: at least 32 characters (e.g. `kimai-mcp generate token`), the same on
/// every instance; the key is the SHA-256 of the trimmed text.
fn read_key(path: &str) -> Result<[u8; 32], Error> {
    let bad = |problem: String| Error::Invalid {
        flag: KEY_FLAG,
        var: KEY_VAR,
        problem,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
    let text = text.trim();
    if text.chars().count() < MIN_KEY_CHARS {
        return Err(bad(format!(
            "{path} holds {} characters; a key needs at least {MIN_KEY_CHARS} (make one with: kimai-mcp generate token > {path}; chmod 600 {path})",
            text.chars().count()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            log::warn!(
                "{path} ({KEY_FLAG}) may be read by other users of this machine (mode {:o}); chmod 600 it",
                m.permissions().mode() & 0o777
            );
        }
    }
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(d.as_ref());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn urls_resolve_and_never_show_a_password() {
        let c = resolve(
            Some("redis://127.0.0.1:6390/2".into()),
            None,
            None,
            None,
            &no_env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.shown, "redis://127.0.0.1:6390/2");
        let c = resolve(
            Some("redis://:s3cret@cache.internal".into()),
            None,
            None,
            None,
            &no_env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.shown, "redis://cache.internal:6379/0");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = resolve(
            Some("rediss://u:pw@[::1]:7000/1".into()),
            None,
            None,
            None,
            &no_env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.shown, "rediss://[::1]:7000/1");
        assert!(
            resolve(None, None, None, None, &no_env).unwrap().is_none(),
            "no URL: in process"
        );
        for bad in ["http://x:1/0", "redis:///0", "redis://h:1/x"] {
            let e = resolve(Some(bad.into()), None, None, None, &no_env).unwrap_err();
            assert!(!e.to_string().contains("pw"), "{e}");
        }
        let e = resolve(
            Some("postgres://u:pw@h/0".into()),
            None,
            None,
            None,
            &no_env,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn a_key_file_needs_a_url_and_32_characters_and_is_never_shown() {
        let dir = std::env::temp_dir().join(format!("kimai-mcp-state-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("key");
        let path = f.display().to_string();
        std::fs::write(&f, "short\n").unwrap();
        let e = resolve(
            Some("redis://h:1/0".into()),
            None,
            None,
            Some(path.clone()),
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
        assert!(!e.to_string().contains("short"), "{e}");
        let secret = "k".repeat(40);
        std::fs::write(&f, format!("{secret}\n")).unwrap();
        let c = resolve(
            Some("redis://h:1/0".into()),
            None,
            None,
            Some(path.clone()),
            &no_env,
        )
        .unwrap()
        .unwrap();
        // The key is the digest of the trimmed text: the same file gives the same key.
        let again = resolve(
            Some("redis://h:1/0".into()),
            None,
            None,
            Some(path.clone()),
            &no_env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.key, again.key);
        assert!(c.key.is_some());
        assert!(!format!("{c:?}").contains(&secret));
        assert!(resolve(None, None, None, Some(path), &no_env).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_password_file_is_read_and_needs_a_url() {
        let dir = std::env::temp_dir().join(format!("kimai-mcp-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "from-file\n").unwrap();
        let path = f.display().to_string();
        let c = resolve(
            Some("redis://h:1/0".into()),
            Some(path.clone()),
            None,
            None,
            &no_env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.password(), Some("from-file"));
        assert!(!format!("{c:?}").contains("from-file"));
        assert!(resolve(None, Some(path.clone()), None, None, &no_env).is_err());
        assert!(
            resolve(
                Some("redis://:x@h:1/0".into()),
                Some(path),
                None,
                None,
                &no_env
            )
            .is_err()
        );
        let env = |k: &str| (k == "KIMAI_MCP_STATE_URL").then(|| "redis://e:2/3".to_string());
        assert_eq!(
            resolve(None, None, None, None, &env)
                .unwrap()
                .unwrap()
                .shown,
            "redis://e:2/3"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
