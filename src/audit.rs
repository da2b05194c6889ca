//! `--audit-log FILE`: one JSON line per tool call that writes (or tried to), for the people who
//! answer for the time records — when, who (the user label, never a token or slug), which
//! client and session, which tool and action, which Kimai ids it named or created, and how it
//! ended (`ok`, `error`, `refused`, `cancelled`). Never a token, a request body or any free
//! text of the call (descriptions, comments, names).
//!
//! The file is opened for appending only (created with mode 0600), each line is written in
//! one `write` and synced before the call's answer goes out, and `reopen` (SIGHUP) opens the
//! path again, so that a log rotation can move the file away first. One process-wide log:
//! [`install`] it at start; without it [`record`] does nothing.

use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

struct Log {
    path: PathBuf,
    file: Mutex<File>,
}

static LOG: OnceLock<Log> = OnceLock::new();

fn open(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Opens the audit log for this process. Fails with a message naming the path.
pub fn install(path: &Path) -> Result<(), String> {
    let file =
        open(path).map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?;
    LOG.set(Log {
        path: path.to_path_buf(),
        file: Mutex::new(file),
    })
    .map_err(|_| "the audit log is already open".to_string())
}

/// Opens the path again (after a log rotation moved the file); the old file stays in use when
/// that fails, and the failure is logged.
pub fn reopen() {
    let Some(log) = LOG.get() else { return };
    match open(&log.path) {
        Ok(f) => *log.file.lock().unwrap_or_else(|e| e.into_inner()) = f,
        Err(e) => log::error!(
            "cannot reopen the audit log {}: {e}; still writing to the file that was open",
            log.path.display()
        ),
    }
}

/// Whether an audit log is open.
pub fn enabled() -> bool {
    LOG.get().is_some()
}

/// What one write call did.
pub struct Entry<'a> {
    /// `key=value` words of the connection (`session=1a2b3c4d user=kimai-user-3`).
    pub label: &'a str,
    pub client: Option<&'a str>,
    pub tool: &'a str,
    pub args: &'a Map<String, Value>,
    pub outcome: &'a str,
    /// The call's answer, for the id of what it created.
    pub output: Option<&'a str>,
}

/// Printable ASCII, at most `n` characters.
fn clean(s: &str, n: usize) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(n)
        .collect()
}

/// The JSON line for `e` at `time`.
pub fn line(time: &str, e: &Entry<'_>) -> String {
    let mut m = Map::new();
    m.insert("time".into(), json!(time));
    for word in e.label.split_whitespace() {
        if let Some((k, v)) = word.split_once('=')
            && (k == "session" || k == "user")
        {
            m.insert(k.into(), json!(clean(v, 80)));
        }
    }
    if let Some(c) = e.client {
        m.insert("client".into(), json!(clean(c, 80)));
    }
    m.insert("tool".into(), json!(e.tool));
    if let Some(a) = e.args.get("action").and_then(Value::as_str) {
        m.insert("action".into(), json!(clean(a, 32)));
    }
    // The kind of record, where a tool serves several (entity, rate, comment).
    for key in ["type", "entity"] {
        if let Some(t) = e.args.get(key).and_then(Value::as_str) {
            m.insert(key.into(), json!(clean(t, 32)));
        }
    }
    let mut ids: Vec<i64> = Vec::new();
    for key in ["id", "entity_id"] {
        if let Some(i) = e.args.get(key).and_then(super::tools::args::as_int) {
            ids.push(i);
        }
    }
    if let Some(list) = e.args.get("ids").and_then(Value::as_array) {
        ids.extend(
            list.iter()
                .filter_map(super::tools::args::as_int)
                .take(1000),
        );
    }
    if let Some(user) = e.args.get("user").and_then(super::tools::args::as_int) {
        m.insert("kimai_user".into(), json!(user));
    }
    if !ids.is_empty() {
        m.insert("ids".into(), json!(ids));
    }
    if e.outcome == "ok"
        && let Some(created) = e.output.and_then(created_id)
    {
        m.insert("created".into(), json!(created));
    }
    m.insert("outcome".into(), json!(e.outcome));
    Value::Object(m).to_string()
}

/// The id a create-like answer names on its first line ("Created project ID 12", "Started
/// timer ID 5805.", "ID: 12").
fn created_id(output: &str) -> Option<i64> {
    let first = output.lines().next()?;
    let starts = ["Created", "Started", "Restarted", "Duplicated", "Added"];
    if !starts.iter().any(|s| first.starts_with(s)) {
        return output
            .lines()
            .take(3)
            .find_map(|l| l.strip_prefix("ID: "))
            .and_then(|v| v.trim().parse().ok())
            .filter(|_| first.starts_with("Created"));
    }
    let at = first.find("ID")?;
    first[at + 2..]
        .trim_start_matches([':', ' '])
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .or_else(|| {
            output
                .lines()
                .find_map(|l| l.strip_prefix("ID: "))
                .and_then(|v| v.trim().parse().ok())
        })
}

/// Appends `e` to the audit log, if one is open, and syncs it.
pub fn record(e: &Entry<'_>) {
    let Some(log) = LOG.get() else { return };
    let time = humantime_now();
    let mut text = line(&time, e);
    text.push('\n');
    let mut f = log.file.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(err) = f.write_all(text.as_bytes()).and_then(|()| f.sync_data()) {
        log::error!("cannot write the audit log {}: {err}", log.path.display());
    }
}

/// Now as RFC 3339 UTC with milliseconds.
fn humantime_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) (the civil-from-days algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_ids_and_outcome_and_no_free_text() {
        let args = json!({"action": "create", "type": "project", "data": {"name": "Secret Project", "comment": "private words"}});
        let l = line(
            "2026-12-06T07:00:00.000Z",
            &Entry {
                label: "session=1a2b3c4d user=kimai-user-3",
                client: Some("Claude\u{7} Desktop"),
                tool: "entity",
                args: args.as_object().unwrap(),
                outcome: "ok",
                output: Some("Created project ID 42\nName: Secret Project"),
            },
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["session"], "1a2b3c4d");
        assert_eq!(v["user"], "kimai-user-3");
        assert_eq!(v["client"], "Claude Desktop");
        assert_eq!(v["tool"], "entity");
        assert_eq!(v["action"], "create");
        assert_eq!(v["type"], "project");
        assert_eq!(v["created"], 42);
        assert_eq!(v["outcome"], "ok");
        assert!(!l.contains("Secret") && !l.contains("private"), "{l}");
        let args = json!({"action": "batch_delete", "ids": [3, 4, "x"]});
        let v: Value = serde_json::from_str(&line(
            "t",
            &Entry {
                label: "user=stdio",
                client: None,
                tool: "timesheet",
                args: args.as_object().unwrap(),
                outcome: "refused",
                output: None,
            },
        ))
        .unwrap();
        assert_eq!(v["ids"], json!([3, 4]));
        assert_eq!(v["user"], "stdio");
        assert!(v.get("session").is_none() && v.get("created").is_none());
        assert_eq!(created_id("Started timer ID 5805.\n#5805 …"), Some(5805));
        assert_eq!(created_id("Deleted project 4"), None);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_428), (2025, 12, 6));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(humantime_now().len(), 24);
    }
}
