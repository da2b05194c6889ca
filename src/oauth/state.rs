//! `--oauth-state-file`: registered clients and live grants, so that a restart neither makes
//! every application register again nor signs everyone out. Access tokens are not kept (an
//! application refreshes after a restart). Secrets are kept only as SHA-256 digests, so the
//! files hold no usable token; they do name each grant's user (the `users.json` slug), so they
//! are written with mode 0600 like `users.json` itself.
//!
//! Two files: the snapshot at the configured path, and a journal next to it (`PATH.journal`)
//! of the changes made since. A change (a registration, a sign-in, a refresh, a revocation, a
//! forgotten client) appends one line to the journal and is synced before it is acknowledged,
//! so a registration costs the same whether 10 or 10,000 clients are registered. When the
//! journal holds more lines than the snapshot has records, the sweeper (or, past four times
//! that, the writer) folds it into a new snapshot and empties it.
//!
//! Snapshot:
//!
//! ```json
//! {"version": 1, "seq": 42,
//!  "clients": {"kmc_…": {"auth_method": "none", "redirect_uris": ["…"], "client_name": "…",
//!              "grant_types": ["authorization_code", "refresh_token"], "secret_sha256": null,
//!              "created": 1764400000000, "last_used": 1764400000000}},
//!  "grants": {"…": {"client_id": "kmc_…", "subject": "SLUG", "resource": "https://…/mcp",
//!             "scope": "kimai:read kimai:write",
//!             "refresh_sha256": "…", "refresh_expires": 1767000000000, "rotated": ["…"],
//!             "created": 1764400000000}}}
//! ```
//!
//! A grant without `scope` (written before scopes existed) has them all, as it had then.
//!
//! Journal, one JSON object per line, each with the sequence number of the change:
//!
//! ```json
//! {"seq": 43, "op": "client", "id": "kmc_…", …the client's fields as above}
//! {"seq": 44, "op": "grant", "id": "…", …the grant's fields as above}
//! {"seq": 45, "op": "rotate", "id": "…", "refresh_sha256": "…", "refresh_expires": …, "at": …}
//! {"seq": 46, "op": "revoke", "id": "…"}
//! {"seq": 47, "op": "forget_client", "id": "kmc_…"}
//! ```
//!
//! Loading reads the snapshot and replays the journal lines whose `seq` is above the
//! snapshot's, so a crash between writing a new snapshot and emptying the journal replays
//! nothing twice. What a crash can lose: a change whose line was being written (it was never
//! acknowledged; its torn last line is ignored on load). Nothing acknowledged is lost, on a
//! clean shutdown or otherwise, unless the disk itself drops synced data.
//!
//! Snapshot writes are atomic: a temporary file created with mode 0600 in the same folder,
//! written and synced, renamed over the old one, then the folder synced.

use super::tables::{Client, Grant};
use super::{AuthMethod, MAX_ROTATED, Scopes};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest snapshot or journal read.
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// Journal lines below which no compaction is done, however few records the snapshot has.
pub(super) const COMPACT_MIN_LINES: usize = 1024;

pub(super) struct Loaded {
    pub clients: HashMap<String, Client>,
    pub grants: HashMap<String, Grant>,
    /// The sequence number of the last change loaded.
    pub seq: u64,
    /// Lines in the journal (replayed or not).
    pub journal_lines: usize,
}

/// One change to the persistent tables, as the journal records it.
#[derive(Clone, Debug)]
pub(super) enum Record {
    Client(String, Client),
    ForgetClient(String),
    Grant(String, Grant),
    /// A refresh: the grant's current refresh digest becomes a rotated one.
    Rotate {
        grant: String,
        refresh_hash: String,
        refresh_expires: u64,
        at: u64,
    },
    Revoke(String),
}

/// The journal's path for a state file.
pub(super) fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".journal");
    PathBuf::from(name)
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

/// Reads a file of at most [`MAX_STATE_BYTES`]; `None` when it does not exist.
fn read_bounded(path: &Path, what: &str) -> Result<Option<String>, String> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the OAuth {what} {shown}: {e}")),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(format!(
            "the OAuth {what} {shown} is larger than {MAX_STATE_BYTES} bytes"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "the OAuth {what} {shown} can be read by other users of this machine (mode {:o}); it is rewritten with mode 600 at start: chmod 600 it now",
                mode & 0o777
            );
        }
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| format!("cannot read the OAuth {what} {shown}: {e}"))
}

pub(super) fn client_from(
    id: &str,
    c: &Value,
    bad: &dyn Fn(String) -> String,
) -> Result<Client, String> {
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
    Ok(Client {
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
    })
}

fn grant_from(g: &Value, bad: &dyn Fn(String) -> String) -> Result<Grant, String> {
    let field = |k: &str| {
        g.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(format!("a grant has no {k}")))
    };
    // Absent in the files of the version before scopes: its grants had full access.
    let scopes = match g.get("scope") {
        None => Scopes::FULL,
        Some(v) => match v.as_str().map(Scopes::parse) {
            Some(Ok(Some(s))) => s,
            Some(Err(unknown)) => return Err(bad(format!("a grant's scope: {unknown}"))),
            _ => return Err(bad("a grant's scope is not a list of scopes".into())),
        },
    };
    Ok(Grant {
        client_id: field("client_id")?,
        subject: field("subject")?,
        resource: field("resource")?,
        scopes,
        refresh_hash: field("refresh_sha256")?,
        refresh_expires: g
            .get("refresh_expires")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        access_hash: None,
        rotated: strings(g.get("rotated")),
        created: g.get("created").and_then(Value::as_u64).unwrap_or(0),
    })
}

pub(super) fn client_json(c: &Client) -> Value {
    json!({
        "auth_method": c.auth_method.as_str(),
        "redirect_uris": c.redirect_uris,
        "client_name": c.name,
        "grant_types": c.grant_types,
        "secret_sha256": c.secret_hash,
        "created": c.created,
        "last_used": c.last_used,
    })
}

fn grant_json(g: &Grant) -> Value {
    json!({
        "client_id": g.client_id,
        "subject": g.subject,
        "resource": g.resource,
        "scope": g.scopes.to_string(),
        "refresh_sha256": g.refresh_hash,
        "refresh_expires": g.refresh_expires,
        "rotated": g.rotated,
        "created": g.created,
    })
}

/// Reads the snapshot and replays the journal; missing files are an empty state. Files that
/// cannot be understood stop the server (they are never overwritten with less).
pub(super) fn load(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let mut out = Loaded {
        clients: HashMap::new(),
        grants: HashMap::new(),
        seq: 0,
        journal_lines: 0,
    };
    let bad = |why: String| {
        format!(
            "the OAuth state file {shown} is not usable ({why}); move it and {shown}.journal away to start with no registered clients (applications then register again and people sign in again)"
        )
    };
    let text = read_bounded(path, "state file")?.unwrap_or_default();
    if !text.trim().is_empty() {
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if v.get("version").is_none() && v.get("clients").is_some_and(Value::is_object) {
            return take_over_python_file(path, &v);
        }
        if v.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(bad("unknown version; expected \"version\": 1".into()));
        }
        out.seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
        for (id, c) in v
            .get("clients")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            out.clients.insert(id.clone(), client_from(id, c, &bad)?);
        }
        for (id, g) in v
            .get("grants")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            out.grants.insert(id.clone(), grant_from(g, &bad)?);
        }
    }
    let jpath = journal_path(path);
    let journal = read_bounded(&jpath, "state journal")?.unwrap_or_default();
    let jbad = |why: String| {
        format!(
            "the OAuth state journal {} is not usable ({why}); move it and {shown} away to start with no registered clients (applications then register again and people sign in again)",
            jpath.display()
        )
    };
    let lines: Vec<&str> = journal.split_terminator('\n').collect();
    let complete = journal.ends_with('\n');
    for (i, line) in lines.iter().enumerate() {
        out.journal_lines += 1;
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            // A crash while appending leaves a torn last line: that change was never
            // acknowledged, so it is dropped.
            Err(_) if i + 1 == lines.len() && !complete => {
                log::warn!(
                    "the last line of the OAuth state journal {} is incomplete (the server stopped while writing it); that change is dropped",
                    jpath.display()
                );
                break;
            }
            Err(e) => return Err(jbad(format!("line {}: {e}", i + 1))),
        };
        let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
        if seq <= out.seq && seq != 0 {
            // Already in the snapshot (written before the journal was emptied).
            continue;
        }
        apply(&mut out, &v).map_err(|why| jbad(format!("line {}: {why}", i + 1)))?;
        out.seq = out.seq.max(seq);
    }
    // A grant of a client that is gone cannot be refreshed: drop it.
    let clients = &out.clients;
    out.grants.retain(|_, g| clients.contains_key(&g.client_id));
    Ok(out)
}

/// Where a state file in the Python server's format is kept when it is taken over.
pub(super) fn python_copy_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".python-kimai-mcp");
    PathBuf::from(name)
}

/// A state file of the Python `kimai-mcp` (`{"clients": {CLIENT_ID: RFC 7591 client
/// information}}`, its only content; it kept no sign-ins): its registered applications are
/// taken over — client secrets as digests — so that they need not register again, and the
/// file itself is moved aside to `PATH.python-kimai-mcp` (it holds client secrets in clear)
/// before this server writes its own. An entry this server cannot use (no valid redirect URI,
/// an unknown authentication method, an expired secret) is left out and counted in the log
/// line. The format is that of 2.12–2.20.1 (`kimai_mcp/oauth.py`: each client's
/// `model_dump(mode="json", exclude_none=True)`); a field it lacks takes the MCP SDK's default.
fn take_over_python_file(path: &Path, v: &Value) -> Result<Loaded, String> {
    let mut out = Loaded {
        clients: HashMap::new(),
        grants: HashMap::new(),
        seq: 0,
        journal_lines: 0,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let entries = v.get("clients").and_then(Value::as_object);
    let total = entries.map_or(0, serde_json::Map::len);
    for (id, c) in entries.into_iter().flatten() {
        if let Some(client) = python_client(c, now) {
            let id = c
                .get("client_id")
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_string();
            if !id.is_empty() && id.len() <= 256 {
                out.clients.insert(id, client);
            }
        }
    }
    let aside = python_copy_path(path);
    std::fs::rename(path, &aside).map_err(|e| {
        format!(
            "the OAuth state file {} is in the Python kimai-mcp's format and could not be moved to {}: {e}; move it away yourself",
            path.display(),
            aside.display()
        )
    })?;
    log::warn!(
        "the OAuth state file {} was written by the Python kimai-mcp: {} of its {total} registered applications were taken over (client secrets kept only as digests), the others register again by themselves; people sign in once more (that server kept no sign-ins). The original, which holds client secrets in clear, is now {}: delete it once this server runs as it should",
        path.display(),
        out.clients.len(),
        aside.display()
    );
    Ok(out)
}

/// One client entry of the Python server's state file, if this server can serve it.
fn python_client(c: &Value, now_secs: u64) -> Option<Client> {
    let redirect_uris = strings(c.get("redirect_uris"));
    if redirect_uris.is_empty()
        || redirect_uris.len() > 10
        || redirect_uris
            .iter()
            .any(|u| super::encoding::check_redirect_uri(u).is_err())
    {
        return None;
    }
    // The Python server writes `model_dump(mode="json", exclude_none=True)` of the MCP SDK's
    // client information, whose method defaults to client_secret_post.
    let auth_method = match c.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None => AuthMethod::ClientSecretPost,
        Some(m) => AuthMethod::parse(m)?,
    };
    let secret = c
        .get("client_secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let expires = c
        .get("client_secret_expires_at")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if expires != 0 && expires <= now_secs {
        return None;
    }
    let secret_hash = match (auth_method, secret) {
        (AuthMethod::None, _) => None,
        (_, Some(s)) => Some(super::encoding::digest_hex(s)),
        (_, None) => return None,
    };
    let mut grant_types = strings(c.get("grant_types"));
    if grant_types.is_empty() {
        grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return None;
    }
    let issued = c
        .get("client_id_issued_at")
        .and_then(Value::as_u64)
        .map_or(0, |s| s.saturating_mul(1000));
    let now_ms = now_secs.saturating_mul(1000);
    Some(Client {
        secret_hash,
        auth_method,
        redirect_uris,
        name: c
            .get("client_name")
            .and_then(Value::as_str)
            .map(|s| s.chars().filter(|c| !c.is_control()).take(100).collect()),
        grant_types,
        created: if issued > 0 { issued } else { now_ms },
        last_used: now_ms,
    })
}

/// Replays one journal line.
fn apply(out: &mut Loaded, v: &Value) -> Result<(), String> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or("no id")?
        .to_string();
    let plain = |w: String| w;
    match v.get("op").and_then(Value::as_str) {
        Some("client") => {
            let c = client_from(&id, v, &plain)?;
            out.clients.insert(id, c);
        }
        Some("forget_client") => {
            out.clients.remove(&id);
        }
        Some("grant") => {
            let g = grant_from(v, &plain)?;
            if let Some(c) = out.clients.get_mut(&g.client_id) {
                c.last_used = c.last_used.max(g.created);
            }
            out.grants.insert(id, g);
        }
        Some("rotate") => {
            let refresh = v
                .get("refresh_sha256")
                .and_then(Value::as_str)
                .ok_or("a rotation has no refresh_sha256")?;
            let at = v.get("at").and_then(Value::as_u64).unwrap_or(0);
            if let Some(g) = out.grants.get_mut(&id) {
                let old = std::mem::replace(&mut g.refresh_hash, refresh.to_string());
                g.rotated.push(old);
                if g.rotated.len() > MAX_ROTATED {
                    g.rotated.remove(0);
                }
                g.refresh_expires = v
                    .get("refresh_expires")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(c) = out.clients.get_mut(&g.client_id) {
                    c.last_used = c.last_used.max(at);
                }
            }
        }
        Some("revoke") => {
            out.grants.remove(&id);
        }
        _ => return Err("unknown op".into()),
    }
    Ok(())
}

/// The snapshot's text for the current tables; `seq` is the last change they include.
pub(super) fn render(
    clients: &HashMap<String, Client>,
    grants: &HashMap<String, Grant>,
    seq: u64,
) -> String {
    let clients: serde_json::Map<String, Value> = clients
        .iter()
        .map(|(id, c)| (id.clone(), client_json(c)))
        .collect();
    let grants: serde_json::Map<String, Value> = grants
        .iter()
        .map(|(id, g)| (id.clone(), grant_json(g)))
        .collect();
    let doc = json!({"version": 1, "seq": seq, "clients": clients, "grants": grants});
    // Compact, not pretty: the snapshot of 10,000 clients is written in one go by the sweeper.
    let mut text = serde_json::to_string(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// One journal line (with its newline) for a change.
fn line(seq: u64, r: &Record) -> String {
    let mut v = match r {
        Record::Client(id, c) => {
            let mut v = client_json(c);
            v["op"] = json!("client");
            v["id"] = json!(id);
            v
        }
        Record::ForgetClient(id) => json!({"op": "forget_client", "id": id}),
        Record::Grant(id, g) => {
            let mut v = grant_json(g);
            v["op"] = json!("grant");
            v["id"] = json!(id);
            v
        }
        Record::Rotate {
            grant,
            refresh_hash,
            refresh_expires,
            at,
        } => json!({
            "op": "rotate",
            "id": grant,
            "refresh_sha256": refresh_hash,
            "refresh_expires": refresh_expires,
            "at": at,
        }),
        Record::Revoke(id) => json!({"op": "revoke", "id": id}),
    };
    v["seq"] = json!(seq);
    let mut text = v.to_string();
    text.push('\n');
    text
}

/// Opens a file for writing with mode 0600 (also when it existed with a wider mode).
fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    if append {
        opts.append(true).create(true);
    } else {
        opts.write(true).create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts.open(path)?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: set it again.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// The open journal of a state file.
pub(super) struct Journal {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Lines in the file.
    pub lines: usize,
    /// A write failed: the file may lack changes, so the next compaction must not wait.
    pub failed: bool,
}

impl Journal {
    pub fn new(state_path: &Path, lines: usize) -> Journal {
        Journal {
            path: journal_path(state_path),
            file: None,
            lines,
            failed: false,
        }
    }

    fn file(&mut self) -> std::io::Result<&mut std::fs::File> {
        if self.file.is_none() {
            self.file = Some(open_private(&self.path, true)?);
        }
        // Just set above when it was missing.
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the journal is not open"))
    }

    /// Appends changes and syncs them.
    pub fn append(&mut self, records: &[(u64, Record)]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let text: String = records.iter().map(|(seq, r)| line(*seq, r)).collect();
        let result = (|| {
            let f = self.file()?;
            f.write_all(text.as_bytes())?;
            f.sync_data()
        })();
        match &result {
            Ok(()) => self.lines += records.len(),
            Err(_) => {
                self.failed = true;
                // Reopened on the next write, in case the handle itself went bad.
                self.file = None;
            }
        }
        result
    }

    /// Empties the journal (its changes are in a snapshot now).
    pub fn clear(&mut self) -> std::io::Result<()> {
        let f = self.file()?;
        f.set_len(0)?;
        f.sync_all()?;
        self.lines = 0;
        self.failed = false;
        Ok(())
    }
}

/// Replaces `path` with `text` atomically, mode 0600.
pub(crate) fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oauth-state.json".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = open_private(&tmp, false)?;
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
