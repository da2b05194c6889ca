//! `--oauth-state-file`: registered clients and live grants, so that a restart neither makes
//! every application register again nor signs everyone out. Access tokens are not kept (an
//! application refreshes after a restart). Secrets are kept only as SHA-256 digests, so the
//! file holds no usable token; it does name each grant's user (the `users.json` slug), so it is
//! written with mode 0600 like `users.json` itself.
//!
//! ```json
//! {"version": 1,
//!  "clients": {"kmc_…": {"auth_method": "none", "redirect_uris": ["…"], "client_name": "…",
//!              "grant_types": ["authorization_code", "refresh_token"], "secret_sha256": null,
//!              "created": 1764400000000, "last_used": 1764400000000}},
//!  "grants": {"…": {"client_id": "kmc_…", "subject": "SLUG", "resource": "https://…/mcp",
//!             "refresh_sha256": "…", "refresh_expires": 1767000000000, "rotated": ["…"],
//!             "created": 1764400000000}}}
//! ```
//!
//! Writes are atomic: a temporary file created with mode 0600 in the same folder, written and
//! synced, renamed over the old one, then the folder synced.

use super::{AuthMethod, Client, Grant};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Largest state file read.
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

pub(super) struct Loaded {
    pub clients: HashMap<String, Client>,
    pub grants: HashMap<String, Grant>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the state file; a missing file is an empty state. A file that cannot be understood
/// stops the server (it is never overwritten with less).
pub(super) fn load(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let empty = Loaded {
        clients: HashMap::new(),
        grants: HashMap::new(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(empty),
        Err(e) => return Err(format!("cannot read the OAuth state file {shown}: {e}")),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(format!(
            "the OAuth state file {shown} is larger than {MAX_STATE_BYTES} bytes"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "the OAuth state file {shown} can be read by other users of this machine (mode {:o}); it is rewritten with mode 600 on the next change: chmod 600 it now",
                mode & 0o777
            );
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the OAuth state file {shown}: {e}"))?;
    if text.trim().is_empty() {
        return Ok(empty);
    }
    let bad = |why: String| {
        format!(
            "the OAuth state file {shown} is not usable ({why}); move it away to start with no registered clients (applications then register again and people sign in again)"
        )
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if v.get("version").and_then(Value::as_u64) != Some(1) {
        return Err(bad("unknown version; expected \"version\": 1".into()));
    }
    let mut out = empty;
    for (id, c) in v
        .get("clients")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(auth_method) = c
            .get("auth_method")
            .and_then(Value::as_str)
            .and_then(AuthMethod::parse)
        else {
            return Err(bad(format!("client {id:.12}: no valid auth_method")));
        };
        let redirect_uris = strings(c.get("redirect_uris"));
        if redirect_uris.is_empty() {
            return Err(bad(format!("client {id:.12}: no redirect_uris")));
        }
        out.clients.insert(
            id.clone(),
            Client {
                secret_hash: c
                    .get("secret_sha256")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                auth_method,
                redirect_uris,
                name: c
                    .get("client_name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                grant_types: strings(c.get("grant_types")),
                created: c.get("created").and_then(Value::as_u64).unwrap_or(0),
                last_used: c.get("last_used").and_then(Value::as_u64).unwrap_or(0),
            },
        );
    }
    for (id, g) in v
        .get("grants")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| {
            g.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(format!("a grant has no {k}")))
        };
        let grant = Grant {
            client_id: field("client_id")?,
            subject: field("subject")?,
            resource: field("resource")?,
            refresh_hash: field("refresh_sha256")?,
            refresh_expires: g
                .get("refresh_expires")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            access_hash: None,
            rotated: strings(g.get("rotated")),
            created: g.get("created").and_then(Value::as_u64).unwrap_or(0),
        };
        // A grant of a client that is gone cannot be refreshed: drop it.
        if out.clients.contains_key(&grant.client_id) {
            out.grants.insert(id.clone(), grant);
        }
    }
    Ok(out)
}

/// The file's text for the current tables.
pub(super) fn render(clients: &HashMap<String, Client>, grants: &HashMap<String, Grant>) -> String {
    let clients: serde_json::Map<String, Value> = clients
        .iter()
        .map(|(id, c)| {
            (
                id.clone(),
                json!({
                    "auth_method": c.auth_method.as_str(),
                    "redirect_uris": c.redirect_uris,
                    "client_name": c.name,
                    "grant_types": c.grant_types,
                    "secret_sha256": c.secret_hash,
                    "created": c.created,
                    "last_used": c.last_used,
                }),
            )
        })
        .collect();
    let grants: serde_json::Map<String, Value> = grants
        .iter()
        .map(|(id, g)| {
            (
                id.clone(),
                json!({
                    "client_id": g.client_id,
                    "subject": g.subject,
                    "resource": g.resource,
                    "refresh_sha256": g.refresh_hash,
                    "refresh_expires": g.refresh_expires,
                    "rotated": g.rotated,
                    "created": g.created,
                }),
            )
        })
        .collect();
    let doc = json!({"version": 1, "clients": clients, "grants": grants});
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Replaces `path` with `text` atomically, mode 0600.
pub(super) fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oauth-state.json".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            // An old temporary file keeps its mode on open: set it again.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
