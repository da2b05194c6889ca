//! One compact line per timesheet record, for lists (`timesheet list`, `timer active`,
//! `recent`, `favorites`) and the block of a single record.
//!
//! Kimai sends two shapes (contract §6.1): plain (project, activity, user as ids) and expanded
//! (`full=true`, `/active`, `/recent`, favorites, POST with `full`: nested objects with names).
//! Both render here; names appear when the shape has them. Text from Kimai goes through
//! [`text::safe`], and names that could be mistaken for this format's separators (`#`, ` / `,
//! ` · `) are quoted, so a record can never forge another one.

use super::text;
use super::time;
use serde_json::Value;

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(super::args::as_int)
}

/// A name for a compact row: quoted when it contains this format's separators.
pub fn name(s: &str) -> String {
    if s.contains('#') || s.contains(" / ") || s.contains(" · ") || s.contains('|') {
        text::quote(s)
    } else {
        text::safe(s)
    }
}

/// `Name (#id)` for an embedded object (expanded shape) or `#id` for a bare id.
fn reference(v: Option<&Value>, name_key: &str) -> Option<String> {
    match v? {
        Value::Object(o) => {
            let id = o.get("id").and_then(super::args::as_int);
            let n = o
                .get("alias")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
                .or_else(|| o.get(name_key).and_then(Value::as_str))
                .unwrap_or("?");
            Some(match id {
                Some(id) => format!("{} (#{id})", name(n)),
                None => name(n),
            })
        }
        Value::Number(_) => super::args::as_int(v?).map(|id| format!("#{id}")),
        _ => None,
    }
}

/// Seconds of a record: Kimai's `duration`, or for a running record the time since begin.
pub fn seconds(r: &Value, now_unix: i64) -> i64 {
    let running = r.get("end").is_none_or(Value::is_null);
    if running {
        return r
            .get("begin")
            .and_then(Value::as_str)
            .and_then(time::parse_stamp)
            .map(|b| (now_unix - b.unix()).max(0))
            .unwrap_or(0);
    }
    int(r, "duration").unwrap_or(0)
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Options for [`row`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RowOpts {
    /// Show the user (lists spanning several users).
    pub user: bool,
}

/// One record as one line (plus a second, indented line for flags, tags and meta fields when
/// any apply).
pub fn row(r: &Value, opts: RowOpts, now: i64) -> String {
    let id = int(r, "id")
        .map(|i| format!("#{i}"))
        .unwrap_or_else(|| "#?".into());
    let begin = r
        .get("begin")
        .and_then(Value::as_str)
        .and_then(time::parse_stamp);
    let end = r
        .get("end")
        .and_then(Value::as_str)
        .and_then(time::parse_stamp);
    let secs = seconds(r, now);
    let span = match (begin, end) {
        (Some(b), Some(e)) => {
            let end_text = if e.local.date == b.local.date {
                format!("{:02}:{:02}", e.local.hour, e.local.minute)
            } else {
                format!("{} {:02}:{:02}", e.local.date, e.local.hour, e.local.minute)
            };
            format!(
                "{} {:02}:{:02}-{end_text}, {} h",
                b.local.date,
                b.local.hour,
                b.local.minute,
                time::hours(secs)
            )
        }
        (Some(b), None) => format!(
            "{} {:02}:{:02}-now (running, {} h so far)",
            b.local.date,
            b.local.hour,
            b.local.minute,
            time::hours(secs)
        ),
        _ => "(no time)".to_string(),
    };
    let brk = int(r, "break")
        .filter(|b| *b > 0)
        .map(|b| format!(" (break {} min)", b / 60))
        .unwrap_or_default();
    // Customer / project / activity: the expanded shape nests the customer in the project.
    let project = r.get("project");
    let customer = project
        .and_then(|p| p.get("customer"))
        .filter(|c| c.is_object());
    let mut path = Vec::new();
    if let Some(c) = reference(customer, "name") {
        path.push(c);
    }
    path.push(
        reference(project, "name")
            .map(|p| {
                if project.is_some_and(Value::is_object) {
                    p
                } else {
                    format!("project {p}")
                }
            })
            .unwrap_or_else(|| "project ?".into()),
    );
    let activity = r.get("activity");
    path.push(
        reference(activity, "name")
            .map(|a| {
                if activity.is_some_and(Value::is_object) {
                    a
                } else {
                    format!("activity {a}")
                }
            })
            .unwrap_or_else(|| "activity ?".into()),
    );
    let mut line = format!("{id} {span}{brk}, {}", path.join(" / "));
    if opts.user
        && let Some(u) = reference(r.get("user"), "username")
    {
        let u = if r.get("user").is_some_and(Value::is_object) {
            u
        } else {
            format!("user {u}")
        };
        line.push_str(&format!(", {u}"));
    }
    match r.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => line.push_str(&format!(" - {}", text::safe(d))),
        _ => {}
    }
    let mut extra = Vec::new();
    if r.get("billable").and_then(Value::as_bool) == Some(false) {
        extra.push("not billable".to_string());
    }
    if r.get("exported").and_then(Value::as_bool) == Some(true) {
        extra.push("exported".to_string());
    }
    // Money as the Python server lists it: only the rate fields Kimai sent (2.66 omits them
    // for tokens without the view_rate_* permission), Python's float notation.
    for (key, label) in [
        ("rate", "rate"),
        ("internalRate", "internal rate"),
        ("fixedRate", "fixed rate"),
        ("hourlyRate", "hourly rate"),
    ] {
        if let Some(v) = r.get(key).and_then(Value::as_f64) {
            extra.push(format!("{label} {}", py_float(v)));
        }
    }
    let tags: Vec<String> = r
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(tag)
        .collect();
    if !tags.is_empty() {
        extra.push(format!("tags: {}", tags.join(", ")));
    }
    let meta = meta_text(r);
    if !meta.is_empty() {
        extra.push(format!("meta: {meta}"));
    }
    if !extra.is_empty() {
        line.push_str("\n  ");
        line.push_str(&extra.join("; "));
    }
    line
}

/// A tag or meta value in a `, `/`; `-separated list: quoted when it holds a separator.
fn tag(s: &str) -> String {
    if s.contains([',', ';', '=', '"', '\\']) {
        text::quote(s)
    } else {
        text::safe(s)
    }
}

/// `name=value, …` for the record's visible meta fields.
pub fn meta_text(r: &Value) -> String {
    r.get("metaFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let n = m.get("name").and_then(Value::as_str)?;
            let v = match m.get("value") {
                Some(Value::String(s)) if !s.is_empty() => tag(s),
                Some(Value::Null) | None => "(empty)".to_string(),
                Some(Value::String(_)) => "(empty)".to_string(),
                Some(other) => other.to_string(),
            };
            Some(format!("{}={v}", tag(n)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number as Python's `str(float)` writes it (`135.0`, `54.6667`), which is how the Python
/// server shows rates in a list.
pub fn py_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn money(v: &Value) -> Option<String> {
    v.as_f64().map(|f| format!("{f:.2}"))
}

/// The full block of one record (`timesheet get`, and after a write).
pub fn block(r: &Value, now: i64) -> String {
    let mut lines = Vec::new();
    lines.push(format!(
        "Timesheet ID: {}",
        int(r, "id")
            .map(|i| i.to_string())
            .unwrap_or_else(|| "?".into())
    ));
    let running = r.get("end").is_none_or(Value::is_null);
    lines.push(format!(
        "Status: {}",
        if running { "running" } else { "stopped" }
    ));
    let show = |k: &str| r.get(k).and_then(Value::as_str).map(time::show_stamp);
    lines.push(format!(
        "Begin: {}",
        show("begin").unwrap_or_else(|| "(none)".into())
    ));
    lines.push(format!(
        "End: {}",
        show("end").unwrap_or_else(|| "(running)".into())
    ));
    let secs = seconds(r, now);
    lines.push(format!(
        "Duration: {} h ({} s){}",
        time::hours(secs),
        secs,
        if running { " so far" } else { "" }
    ));
    if let Some(b) = int(r, "break") {
        lines.push(format!("Break: {} min", b / 60));
    }
    for (label, key, name_key) in [
        ("User", "user", "username"),
        ("Project", "project", "name"),
        ("Activity", "activity", "name"),
    ] {
        if let Some(v) = reference(r.get(key), name_key) {
            lines.push(format!("{label}: {v}"));
        }
    }
    if let Some(c) = reference(
        r.get("project")
            .and_then(|p| p.get("customer"))
            .filter(|c| c.is_object()),
        "name",
    ) {
        lines.push(format!("Customer: {c}"));
    }
    lines.push(format!(
        "Description: {}",
        text::safe_opt(r.get("description").and_then(Value::as_str))
    ));
    let tags: Vec<String> = r
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(tag)
        .collect();
    lines.push(format!(
        "Tags: {}",
        if tags.is_empty() {
            "(none)".into()
        } else {
            tags.join(", ")
        }
    ));
    for (label, key) in [("Billable", "billable"), ("Exported", "exported")] {
        if let Some(b) = r.get(key).and_then(Value::as_bool) {
            lines.push(format!("{label}: {}", if b { "yes" } else { "no" }));
        }
    }
    // Kimai 2.66 omits rate fields the token may not see: say so instead of showing 0.
    let rates: Vec<String> = [
        ("rate", "Rate"),
        ("internalRate", "Internal rate"),
        ("hourlyRate", "Hourly rate"),
        ("fixedRate", "Fixed rate"),
    ]
    .iter()
    .filter_map(|(k, label)| {
        let v = r.get(*k)?;
        Some(format!(
            "{label}: {}",
            money(v).unwrap_or_else(|| "(none)".into())
        ))
    })
    .collect();
    if rates.is_empty() {
        lines.push("Rates: not visible to this token (Kimai 2.66+ shows them only with the view_rate_own_timesheet / view_rate_other_timesheet permission)".into());
    } else {
        lines.extend(rates);
    }
    let meta = meta_text(r);
    if !meta.is_empty() {
        lines.push(format!("Meta fields: {meta}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expanded_row_has_names_and_ids() {
        let r = json!({
            "id": 42, "begin": "2026-08-12T09:00:00+0200", "end": "2026-08-12T10:30:00+0200", "duration": 5400, "break": 0,
            "description": "Sprint planning", "billable": false, "exported": true, "tags": ["meeting", "a,b"],
            "project": {"id": 1, "name": "Website", "customer": {"id": 7, "name": "Acme"}},
            "activity": {"id": 3, "name": "Design"}, "user": {"id": 2, "username": "anna", "alias": "Anna"},
            "metaFields": [{"name": "ticket", "value": "T-1"}]
        });
        assert_eq!(
            row(&r, RowOpts { user: true }, 0),
            "#42 2026-08-12 09:00-10:30, 1.50 h, Acme (#7) / Website (#1) / Design (#3), Anna (#2) - Sprint planning\n  not billable; exported; tags: meeting, \"a,b\"; meta: ticket=T-1"
        );
    }

    #[test]
    fn plain_and_running_rows() {
        let r = json!({"id": 5, "begin": "2026-08-12T09:00:00+0000", "end": null, "duration": 0, "project": 1, "activity": 3, "user": 2, "tags": []});
        let now = time::parse_stamp("2026-08-12T10:15:00+0000")
            .unwrap()
            .unix();
        assert_eq!(
            row(&r, RowOpts::default(), now),
            "#5 2026-08-12 09:00-now (running, 1.25 h so far), project #1 / activity #3"
        );
    }

    #[test]
    fn forged_names_and_descriptions_stay_on_their_line() {
        let r = json!({"id": 1, "begin": "2026-08-12T09:00:00+0000", "end": "2026-08-12T10:00:00+0000", "duration": 3600,
            "project": {"id": 1, "name": "X / #99 Fake"}, "activity": {"id": 2, "name": "A"},
            "description": "ok\n#2 2026-01-01 00:00-01:00, 9.00 h, forged"});
        let out = row(&r, RowOpts::default(), 0);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("\"X / #99 Fake\" (#1)"), "{out}");
        assert!(out.contains("- \"ok\\n#2"), "{out}");
    }

    #[test]
    fn rows_show_the_rates_kimai_sent_as_the_python_server_does() {
        let r = json!({"id": 7, "begin": "2026-08-12T09:00:00+0200", "end": "2026-08-12T10:30:00+0200", "duration": 5400,
            "project": 1, "activity": 3, "rate": 135.0, "internalRate": 54.6667, "billable": false, "tags": ["x"]});
        assert_eq!(
            row(&r, RowOpts::default(), 0),
            "#7 2026-08-12 09:00-10:30, 1.50 h, project #1 / activity #3\n  not billable; rate 135.0; internal rate 54.6667; tags: x"
        );
        // Kimai 2.66 left them out (or sent null): nothing about money.
        let hidden = json!({"id": 7, "begin": "2026-08-12T09:00:00+0200", "end": "2026-08-12T10:30:00+0200", "duration": 5400,
            "project": 1, "activity": 3, "internalRate": null});
        assert_eq!(
            row(&hidden, RowOpts::default(), 0),
            "#7 2026-08-12 09:00-10:30, 1.50 h, project #1 / activity #3"
        );
        let entity = json!({"id": 7, "begin": "2026-08-12T09:00:00+0200", "end": null, "duration": 0,
            "project": 1, "activity": 3, "rate": 0.0, "internalRate": 0.0, "fixedRate": 250, "hourlyRate": null});
        assert!(
            row(&entity, RowOpts::default(), 0)
                .ends_with("\n  rate 0.0; internal rate 0.0; fixed rate 250.0"),
            "{}",
            row(&entity, RowOpts::default(), 0)
        );
        assert_eq!(py_float(1e20), "100000000000000000000");
    }

    #[test]
    fn block_says_when_rates_are_hidden() {
        let r = json!({"id": 9, "begin": "2026-08-12T09:00:00+0200", "end": "2026-08-12T10:00:00+0200", "duration": 3600, "project": 1, "activity": 2, "user": 3, "tags": [], "description": null});
        let b = block(&r, 0);
        assert!(b.contains("Rates: not visible to this token"), "{b}");
        let r2 = json!({"id": 9, "begin": "2026-08-12T09:00:00+0200", "end": "2026-08-12T10:00:00+0200", "duration": 3600, "rate": 90.0, "internalRate": 0.0, "tags": []});
        let b2 = block(&r2, 0);
        assert!(
            b2.contains("Rate: 90.00") && b2.contains("Internal rate: 0.00"),
            "{b2}"
        );
    }
}
