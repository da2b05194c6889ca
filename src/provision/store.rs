//! `--provision-store FILE`: the provisioned users across restarts, in 2.20.1's format — a JSON
//! object keyed by the lowercased identity, each entry `{slug, kimai_url, kimai_token,
//! ssl_verify, created_at}` — so that a Python deployment's store is taken over as it is.
//!
//! The file holds Kimai API tokens in plain text: it is written atomically (a temporary file
//! created with mode 0600, fsynced, renamed over the old one, the directory fsynced), and a
//! store other users of the machine can read is warned about. A file that cannot be read or
//! has the wrong shape does not stop the server: it is logged, its usable entries are taken,
//! and the people whose entries are lost are provisioned again at their next sign-in (which
//! replaces their token by name, so nothing piles up in Kimai).
//!
//! Threads: only the provisioner calls in, under its store lock.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::kimai::Tls;

/// Largest store read.
pub const MAX_STORE_BYTES: u64 = 16 * 1024 * 1024;

/// One provisioned user as kept in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    /// Lowercased identity (the key).
    pub identity: String,
    pub slug: String,
    pub kimai_url: String,
    pub kimai_token: String,
    pub tls: Tls,
    pub created_at: i64,
    /// The Kimai user id, when this version wrote the entry (2.20.1 does not keep it).
    pub kimai_user_id: Option<i64>,
}

/// The store file.
pub struct Store {
    path: PathBuf,
}

fn tls_json(t: &Tls) -> Value {
    match t {
        Tls::Verify => json!(true),
        Tls::NoVerify => json!(false),
        Tls::CaFile(p) => json!(p.display().to_string()),
    }
}

fn tls_of(v: Option<&Value>) -> Option<Tls> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(true)) => Some(Tls::Verify),
        Some(Value::Bool(false)) => Some(Tls::NoVerify),
        Some(Value::String(s)) => Tls::parse(s).ok(),
        Some(_) => None,
    }
}

impl Store {
    pub fn new(path: &Path) -> Store {
        Store {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries of the file; problems go to the log (never a token). A missing file is an
    /// empty store.
    pub fn load(&self) -> Vec<Saved> {
        let shown = self.path.display();
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::error!("provisioning store {shown} cannot be read ({e}); starting empty");
                return Vec::new();
            }
        };
        if meta.len() > MAX_STORE_BYTES {
            log::error!(
                "provisioning store {shown} is larger than {} MiB; starting empty",
                MAX_STORE_BYTES >> 20
            );
            return Vec::new();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!(
                    "provisioning store {shown} can be read by other users of this machine (mode {mode:o}); it holds Kimai tokens. It is rewritten with mode 600 at the next sign-in; chmod 600 it now"
                );
            }
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                log::error!("provisioning store {shown} cannot be read ({e}); starting empty");
                return Vec::new();
            }
        };
        let doc: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                log::error!(
                    "provisioning store {shown} is not valid JSON (line {}, column {}); starting empty: its users are provisioned again at their next sign-in",
                    e.line(),
                    e.column()
                );
                return Vec::new();
            }
        };
        let Value::Object(map) = doc else {
            log::error!(
                "provisioning store {shown} is not a JSON object of identities; starting empty"
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (n, (identity, entry)) in map.into_iter().enumerate() {
            match parse_entry(&identity, &entry) {
                Some(s) => out.push(s),
                None => log::error!(
                    "provisioning store {shown}: entry #{} is not usable (it needs slug, kimai_url and kimai_token); skipped",
                    n + 1
                ),
            }
        }
        out
    }

    /// Replaces the file with `entries`.
    pub fn save(&self, entries: &[Saved]) -> std::io::Result<()> {
        let mut map = Map::new();
        for s in entries {
            map.insert(s.identity.clone(), entry_json(s));
        }
        let text = serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_default();
        crate::oauth::write_atomic(&self.path, &text)
    }
}

/// One entry as the file (and the shared store, sealed) keeps it, without its identity.
pub fn entry_json(s: &Saved) -> Value {
    let mut e = json!({
        "slug": s.slug,
        "kimai_url": s.kimai_url,
        "kimai_token": s.kimai_token,
        "ssl_verify": tls_json(&s.tls),
        "created_at": s.created_at,
    });
    if let Some(id) = s.kimai_user_id {
        e["kimai_user_id"] = json!(id);
    }
    e
}

/// Reads what [`entry_json`] wrote, for `identity`; `None` when it is not usable.
pub fn parse_entry(identity: &str, e: &Value) -> Option<Saved> {
    let text = |k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let slug = text("slug")?;
    if slug.len() > 128
        || !slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let kimai_url = text("kimai_url")?;
    if !(kimai_url.starts_with("https://") || kimai_url.starts_with("http://")) {
        return None;
    }
    let kimai_token = text("kimai_token")?;
    let identity = crate::config::users::identity_key(identity);
    if identity.is_empty() || identity.chars().count() > crate::config::users::MAX_IDENTITY_CHARS {
        return None;
    }
    Some(Saved {
        identity,
        slug,
        kimai_url: crate::kimai::without_api(&kimai_url).to_string(),
        kimai_token,
        tls: tls_of(e.get("ssl_verify"))?,
        created_at: e.get("created_at").and_then(Value::as_i64).unwrap_or(0),
        kimai_user_id: e.get("kimai_user_id").and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> (PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!(
            "kimai-mcp-store-{}-{}",
            std::process::id(),
            &crate::oauth::random_secret("")[..8]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("provisioned.json");
        (dir, Store::new(&path))
    }

    fn saved(identity: &str, slug: &str) -> Saved {
        Saved {
            identity: identity.into(),
            slug: slug.into(),
            kimai_url: "https://kimai.example.com".into(),
            kimai_token: "0123456789abcdef012345678".into(),
            tls: Tls::Verify,
            created_at: 1_700_000_000,
            kimai_user_id: Some(5),
        }
    }

    #[test]
    fn a_store_round_trips_with_mode_600() {
        let (dir, store) = temp();
        assert!(store.load().is_empty(), "a missing file is empty");
        let entries = vec![
            saved("ann@corp.example", "slugA"),
            saved("bob@corp.example", "slugB"),
        ];
        store.save(&entries).unwrap();
        assert_eq!(store.load(), entries);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["provisioned.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_python_store_is_read_and_bad_ones_do_not_stop_the_server() {
        let (dir, store) = temp();
        // 2.20.1's shape: no kimai_user_id, ssl_verify a bool or a CA path.
        std::fs::write(
            store.path(),
            r#"{"Ann@Corp.Example": {"slug": "Xy_12-ab", "kimai_url": "https://k.example/api/",
                 "kimai_token": "t1", "ssl_verify": false, "created_at": 1700000000},
                "bad": {"slug": "has space", "kimai_url": "https://k", "kimai_token": "t"},
                "nourl": {"slug": "s", "kimai_token": "t"},
                "list": [1, 2]}"#,
        )
        .unwrap();
        let got = store.load();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].identity, "ann@corp.example");
        assert_eq!(got[0].kimai_url, "https://k.example");
        assert_eq!(got[0].tls, Tls::NoVerify);
        assert_eq!(got[0].kimai_user_id, None);
        for bad in ["[]", "{", "\"x\"", ""] {
            std::fs::write(store.path(), bad).unwrap();
            assert!(store.load().is_empty(), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
