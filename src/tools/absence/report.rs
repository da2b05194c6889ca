//! `absence` actions that read: `list`, `statistics` (days and hours per user and type),
//! `types`, and `attendance` (who is absent on one day).

use super::entry::{Entry, entries};
use super::names::{label, who};
use super::read::{Query, Scope, period_text, read, scope, scope_text, status_arg};
use crate::kimai::Request;
use crate::tools::args::{self, Args};
use crate::tools::common::day_range::{date_arg, range};
use crate::tools::common::work_contract::explain_404;
use crate::tools::time::{self, Date};
use crate::tools::users::Found;
use crate::tools::{Context, Output, ToolError, text};
use std::collections::BTreeMap;

pub(super) fn list(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let filters = args::object(a, "filters");
    let (begin, end) = range(filters)?;
    let q = Query {
        begin,
        end,
        status: status_arg(filters),
    };
    let scope = scope(ctx, filters, "self")?;
    let read = read(ctx, &scope, &q)?;
    let list = entries(&read);
    let mut out = format!(
        "{} ({}, status {}): {}",
        capitalise(&scope_text(&scope)),
        period_text(begin, end),
        q.status,
        list.len()
    );
    if list.is_empty() {
        out.push_str("\nNo absences match.");
    }
    for e in &list {
        out.push_str("\n- ");
        out.push_str(&e.line());
    }
    for n in &read.notes {
        out.push_str("\n\n");
        out.push_str(n);
    }
    Ok(Output::text(out))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Days and hours of a group of absences.
#[derive(Default, Clone, Copy)]
pub(super) struct Tally {
    pub(super) entries: usize,
    pub(super) days: f64,
    hourly_secs: i64,
}

impl Tally {
    pub(super) fn add(&mut self, e: &Entry) {
        self.entries += 1;
        self.days += e.days();
        if e.hourly() {
            self.hourly_secs += e.duration;
        }
    }
    pub(super) fn text(&self) -> String {
        let mut s = format!(
            "{} {}, {} {}",
            self.entries,
            if self.entries == 1 {
                "entry"
            } else {
                "entries"
            },
            fmt_days(self.days),
            if self.days == 1.0 { "day" } else { "days" }
        );
        if self.hourly_secs > 0 {
            s.push_str(&format!(" + {} h", time::hours(self.hourly_secs)));
        }
        s
    }
}

fn fmt_days(d: f64) -> String {
    if d.fract() == 0.0 {
        format!("{d:.0}")
    } else {
        format!("{d:.1}")
    }
}

/// One user's totals and their totals per type label.
type UserTally = (Found, Tally, BTreeMap<String, Tally>);

pub(super) fn statistics(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let filters = args::object(a, "filters");
    let (mut begin, mut end) = range(filters)?;
    let mut defaulted = false;
    if begin.is_none() && end.is_none() {
        // Default: the current calendar year.
        let y = today().year;
        begin = Date::new(y, 1, 1);
        end = Date::new(y, 12, 31);
        defaulted = true;
    }
    let q = Query {
        begin,
        end,
        status: status_arg(filters),
    };
    let scope = scope(ctx, filters, "all")?;
    let read = read(ctx, &scope, &q)?;
    let list = entries(&read);
    let group_by = args::string(a, "group_by").unwrap_or("type");
    let by_month = args::boolean(a, "breakdown_by_month").unwrap_or(false) || group_by == "month";

    let mut total = Tally::default();
    let mut by_type: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_status: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_user: BTreeMap<(String, i64), UserTally> = BTreeMap::new();
    let mut months: BTreeMap<String, Tally> = BTreeMap::new();
    for e in &list {
        total.add(e);
        by_type.entry(label(&e.kind)).or_default().add(e);
        by_status.entry(text::safe(&e.status)).or_default().add(e);
        if let Some(u) = &e.user {
            let slot = by_user
                .entry((u.display.to_lowercase(), u.id))
                .or_insert_with(|| (u.clone(), Tally::default(), BTreeMap::new()));
            slot.1.add(e);
            slot.2.entry(label(&e.kind)).or_default().add(e);
        }
        if let Some(d) = e.date {
            months
                .entry(format!("{:04}-{:02}", d.year, d.month))
                .or_default()
                .add(e);
        }
    }

    let mut out = format!(
        "Absence statistics: {}, {}{}, status {}\nTotal: {}",
        scope_text(&scope),
        period_text(begin, end),
        if defaulted { " (current year)" } else { "" },
        q.status,
        total.text()
    );
    out.push_str("\n(Half days count 0.5 days; time off and other absences count in hours.)");
    let section = |title: &str, rows: Vec<(String, String)>| -> String {
        let mut s = format!("\n\n{title}:");
        if rows.is_empty() {
            s.push_str("\n- (none)");
        }
        for (k, v) in rows {
            s.push_str(&format!("\n- {k}: {v}"));
        }
        s
    };
    let type_rows = by_type.iter().map(|(k, t)| (k.clone(), t.text())).collect();
    let status_rows = by_status
        .iter()
        .map(|(k, t)| (k.clone(), t.text()))
        .collect();
    let user_rows = by_user
        .values()
        .map(|(u, t, types)| {
            let detail: Vec<String> = types
                .iter()
                .map(|(k, t)| {
                    if t.hourly_secs > 0 && t.days == 0.0 {
                        format!("{k} {} h", time::hours(t.hourly_secs))
                    } else {
                        format!("{k} {}", fmt_days(t.days))
                    }
                })
                .collect();
            (who(u), format!("{} ({})", t.text(), detail.join(", ")))
        })
        .collect();
    let month_rows = months.iter().map(|(k, t)| (k.clone(), t.text())).collect();
    let mut sections = vec![
        ("type", section("By type", type_rows)),
        ("user", section("By user", user_rows)),
    ];
    if by_month {
        sections.push(("month", section("By month", month_rows)));
    }
    // The `group_by` breakdown leads, then by status, then the others.
    sections.sort_by_key(|(k, _)| *k != group_by);
    sections.insert(1, ("status", section("By status", status_rows)));
    for (_, s) in &sections {
        out.push_str(s);
    }
    for n in &read.notes {
        out.push_str("\n\n");
        out.push_str(n);
    }
    Ok(Output::text(out))
}

pub(super) fn types(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let lang = args::string(a, "language").unwrap_or("en");
    let body = ctx
        .call(&Request::get("/absences/types").query("language", lang))
        .map_err(|e| explain_404(ctx, e))?
        .body;
    let Some(m) = body.as_object() else {
        return Err(ToolError::Failed(
            "Kimai answered /api/absences/types with something that is not a list of types".into(),
        ));
    };
    let mut out = format!("Absence types ({}):", text::safe(lang));
    for (k, v) in m {
        out.push_str(&format!(
            "\n- {}: {}",
            text::safe(k),
            text::safe(v.as_str().unwrap_or(""))
        ));
    }
    Ok(Output::text(out))
}

pub(super) fn attendance(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let data = args::object(a, "data");
    if let Some(d) = data {
        let extra: Vec<&str> = d
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "date")
            .collect();
        if !extra.is_empty() {
            return Err(ToolError::Invalid(format!(
                "attendance only reads data.date; data.{} not used",
                extra.join(", data.")
            )));
        }
    }
    let top = args::string(a, "date")
        .map(|s| date_arg("date", s))
        .transpose()?;
    let inner = data
        .and_then(|d| args::string(d, "date"))
        .map(|s| date_arg("data.date", s))
        .transpose()?;
    let day = match (top, inner) {
        (Some(t), Some(i)) if t != i => {
            return Err(ToolError::Invalid(format!(
                "date ({t}) and data.date ({i}) disagree; send the day once"
            )));
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => today(),
    };
    let filters = args::object(a, "filters");
    if let Some(f) = filters {
        for k in ["begin", "end", "status"] {
            if f.contains_key(k) {
                return Err(ToolError::Invalid(format!(
                    "attendance covers one day: send date instead of filters.{k}"
                )));
            }
        }
    }
    let scope = scope(ctx, filters, "all")?;
    let q = Query {
        begin: Some(day),
        end: Some(day),
        status: "all",
    };
    let read = read(ctx, &scope, &q)?;
    // Per user: the absences that day (rejected ones do not count).
    let mut away: BTreeMap<i64, Vec<Entry>> = BTreeMap::new();
    for e in read.absences.iter().map(Entry::from) {
        if e.status == "rejected" || e.date.is_some_and(|d| d != day) {
            continue;
        }
        let uid = e.user.as_ref().map(|u| u.id).unwrap_or(0);
        away.entry(uid).or_default().push(e);
    }
    let own_id = match scope {
        Scope::Own => read.users.first().map(|u| u.id),
        _ => None,
    };
    let mut present = Vec::new();
    let mut absent = Vec::new();
    // A deactivated account is neither present nor absent.
    for u in read.users.iter().filter(|u| u.enabled) {
        let list = away
            .get(&u.id)
            .or_else(|| own_id.filter(|i| *i == u.id).and(away.get(&0)));
        match list {
            Some(list) if !list.is_empty() => {
                let what: Vec<String> = list
                    .iter()
                    .map(|e| {
                        let mut s = label(&e.kind);
                        if e.half_day {
                            s.push_str(", half day");
                        }
                        if e.hourly() {
                            s.push_str(&format!(", {} h", time::hours(e.duration)));
                        }
                        if e.status != "approved" {
                            s.push_str(&format!(", {} (not yet approved)", text::safe(&e.status)));
                        }
                        s
                    })
                    .collect();
                absent.push(format!("- {}: {}", who(u), what.join("; ")));
            }
            _ => present.push(format!("- {}", who(u))),
        }
    }
    let checked = read.users.iter().filter(|u| u.enabled).count();
    let deactivated = read.users.len() - checked;
    let weekday = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ][(day.weekday() as usize).saturating_sub(1).min(6)];
    let mut out = format!(
        "Attendance on {weekday}, {day} ({checked} user(s) checked)\n\nPresent ({} of {checked}):",
        present.len()
    );
    if present.is_empty() {
        out.push_str("\n- (nobody)");
    }
    for p in &present {
        out.push('\n');
        out.push_str(p);
    }
    out.push_str(&format!("\n\nAbsent ({} of {checked}):", absent.len()));
    if absent.is_empty() {
        out.push_str("\n- (nobody)");
    }
    for p in &absent {
        out.push('\n');
        out.push_str(p);
    }
    if deactivated > 0 {
        out.push_str(&format!(
            "\n\nNot counted: {deactivated} deactivated account(s)."
        ));
    }
    if !read.skipped.is_empty() {
        out.push_str(&format!(
            "\n\nNot checked ({}): this token may not read their absences:",
            read.skipped.len()
        ));
        for (u, s) in &read.skipped {
            out.push_str(&format!("\n- {} ({s})", who(u)));
        }
    }
    for n in read.notes.iter().filter(|n| !n.contains("absences of")) {
        out.push_str("\n\n");
        out.push_str(n);
    }
    Ok(Output::text(out))
}

/// Today's date (UTC; the server has no timezone database).
pub fn today() -> Date {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Date::from_days(secs.div_euclid(86_400))
}
