//! `absence`: absences (vacation, sickness, time off) from Kimai's WorkContract plugin
//! (contract §9.1): list, statistics, types, create, the approval workflow (request, approve,
//! reject), delete, batch operations and an attendance report for one day.
//!
//! Reads for `user_scope=all` discover the users (`users::discover`: teams first, then users)
//! and read each user's absences with [`fanout::read_all`]: 10 at a time, a user whose
//! absences answer 403/404 is named in a note, and any other failure (401, 5xx, timeout) fails
//! the whole answer, because a partial "everyone" is a wrong answer. Progress notifications
//! go out per user read when the call carried a `progressToken`.
//!
//! Kimai's 404 is ambiguous here: a missing plugin, an unknown absence, user or language all
//! answer it. On a 404 the tool asks `GET /absences/types` (which exists exactly when the
//! plugin does) and reports a missing plugin as such, never as "no absences".
//!
//! Dates follow §9.1: bodies carry `YYYY-MM-DD`, list filters the full local
//! `YYYY-MM-DDTHH:MM:SS`. Differences from the Python kimai-mcp: English labels throughout,
//! `group_by` really orders the statistics, and attendance takes its day from `date` or
//! `data.date` (the Python tool silently ignored the latter).

use super::args::{self, Args};
use super::common::day_range::{date_arg, range, with_range};
use super::common::user_lookup::resolve_user;
use super::common::work_contract::{PLUGIN_MISSING, explain_404, is_404};
use super::time::{self, Date};
use super::users::{self, Found};
use super::{Context, Output, Tool, ToolError, fanout, text};
use crate::kimai::Request;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub const TOOL: Tool = Tool {
    name: "absence",
    title: "Absences",
    description: "Absences (vacation, sickness, time off) from Kimai's WorkContract plugin. \
        action=list: absences of yourself (filters.user_scope=self, default), one user \
        (specific, filters.user = id or username) or everyone you can see (all), optionally \
        between filters.begin and filters.end (YYYY-MM-DD) and by status (default all). \
        statistics: totals by type, status and user (default scope all; half days count 0.5; \
        time_off and other count in hours), group_by picks the leading breakdown, \
        breakdown_by_month adds months. types: the absence types (language, e.g. en, de). \
        create: data={comment, date, type, end?, halfDay?, duration?, user?}; ranges longer \
        than 30 days or crossing a year end are split into several requests. \
        request/approve/reject/delete: one absence by id; batch_approve/batch_reject/\
        batch_delete: ids. attendance: who is present or absent on one day (date or \
        data.date, default today; default scope all).",
    schema,
    read_only: false,
    destructive: true,
    idempotent: false,
    handler,
};

/// Absence types and their English labels (the plugin's `AbsenceForm.type`).
pub const TYPES: &[(&str, &str)] = &[
    ("holiday", "Vacation"),
    ("time_off", "Time off"),
    ("sickness", "Sickness"),
    ("sickness_child", "Sick child"),
    ("other", "Other"),
    ("parental", "Parental leave"),
    ("unpaid_vacation", "Unpaid vacation"),
];

/// Longest range one create request may cover (observed plugin limit, §9.1).
pub const MAX_CHUNK_DAYS: i64 = 30;

fn schema() -> Value {
    let date = |d: &str| json!({"type": "string", "format": "date", "description": d});
    json!({
        "type": "object",
        "properties": {
            "action": {
                "type": "string",
                "enum": ["list", "statistics", "types", "create", "delete", "approve", "reject",
                         "request", "attendance", "batch_delete", "batch_approve", "batch_reject"],
                "description": "What to do."
            },
            "ids": {"type": "array", "items": {"type": "integer"}, "description": "Absence ids for batch_delete, batch_approve, batch_reject."},
            "id": {"type": "integer", "description": "Absence id for delete, approve, reject, request."},
            "filters": {
                "type": "object",
                "properties": {
                    "user_scope": {"type": "string", "enum": ["self", "all", "specific"], "default": "self",
                        "description": "Whose absences: self (list default), all users you can see (statistics and attendance default), or one user (specific, with user)."},
                    "user": {"type": "string", "description": "For user_scope=specific: user id or username."},
                    "begin": date("First day (YYYY-MM-DD)."),
                    "end": date("Last day (YYYY-MM-DD)."),
                    "status": {"type": "string", "enum": ["approved", "open", "all"], "default": "all",
                        "description": "approved, open (awaiting approval) or all."}
                },
                "additionalProperties": false
            },
            "data": {
                "type": "object",
                "properties": {
                    "comment": {"type": "string", "description": "Required for create."},
                    "date": date("create: first day; attendance: the day to report."),
                    "type": {"type": "string", "enum": TYPES.iter().map(|t| t.0).collect::<Vec<_>>(), "default": "other",
                        "description": "Absence type (required for create)."},
                    "user": {"type": "integer", "description": "Create for this user id (default: yourself)."},
                    "end": date("Last day for multi-day absences."),
                    "halfDay": {"type": "boolean", "description": "A half day (single day only)."},
                    "duration": {"type": "string", "description": "For time_off and other: a duration such as \"1:30\" or \"2h\"."}
                },
                "additionalProperties": false
            },
            "language": {"type": "string", "default": "en", "description": "types: label language (en, de, …)."},
            "group_by": {"type": "string", "enum": ["type", "user", "month"], "default": "type",
                "description": "statistics: the breakdown shown first."},
            "breakdown_by_month": {"type": "boolean", "default": false, "description": "statistics: add a per-month breakdown."},
            "date": date("attendance: the day to report (default today).")
        },
        "required": ["action"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let action = args::action(a);
    match action {
        "list" => {
            args::refuse_unused(a, action, &["filters"])?;
            list(ctx, a)
        }
        "statistics" => {
            args::refuse_unused(a, action, &["filters", "group_by", "breakdown_by_month"])?;
            statistics(ctx, a)
        }
        "types" => {
            args::refuse_unused(a, action, &["language"])?;
            types(ctx, a)
        }
        "create" => {
            args::refuse_unused(a, action, &["data"])?;
            create(ctx, a)
        }
        "delete" | "approve" | "reject" | "request" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(a, "id", &format!("for action '{action}'"))?;
            single(ctx, action, id)
        }
        "batch_delete" | "batch_approve" | "batch_reject" => {
            args::refuse_unused(a, action, &["ids"])?;
            let ids = args::need_ids(a, "ids", &format!("for action '{action}'"))?;
            batch(ctx, action, &ids)
        }
        "attendance" => {
            args::refuse_unused(a, action, &["date", "data", "filters"])?;
            attendance(ctx, a)
        }
        other => Err(ToolError::Invalid(format!("unknown action '{other}'"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Today, and the names of users and absence types in answers

/// Today's date (UTC; the server has no timezone database).
pub fn today() -> Date {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Date::from_days(secs.div_euclid(86_400))
}

/// `Name (ID n)`.
fn who(u: &Found) -> String {
    format!("{} (ID {})", text::safe(&u.display), u.id)
}

fn label(kind: &str) -> String {
    TYPES
        .iter()
        .find(|t| t.0 == kind)
        .map(|t| t.1.to_string())
        .unwrap_or_else(|| text::safe(kind))
}

// ---------------------------------------------------------------------------------------------
// Reading absences for a scope

/// Whose absences a read covers.
enum Scope {
    Own,
    One(Found),
    All,
}

fn scope(ctx: &Context, filters: Option<&Args>, default: &str) -> Result<Scope, ToolError> {
    let s = filters
        .and_then(|f| args::string(f, "user_scope"))
        .unwrap_or(default);
    let user = filters.and_then(|f| args::string(f, "user"));
    match s {
        "specific" => {
            let u = user.ok_or_else(|| {
                ToolError::Invalid(
                    "filters.user (user id or username) is required for user_scope=specific".into(),
                )
            })?;
            Ok(Scope::One(resolve_user(ctx, u)?))
        }
        _ if user.is_some() => Err(ToolError::Invalid(format!(
            "filters.user only applies to user_scope=specific (got user_scope={s})"
        ))),
        "all" => Ok(Scope::All),
        _ => Ok(Scope::Own),
    }
}

/// What a scoped read found.
struct Read {
    absences: Vec<Value>,
    /// Users whose absences could not be read (403/404).
    skipped: Vec<(Found, u16)>,
    /// Users read (for attendance: who was checked).
    users: Vec<Found>,
    notes: Vec<String>,
}

fn absences_of(ctx: &Context, user: Option<i64>, q: &Query) -> Result<Vec<Value>, ToolError> {
    let mut r = Request::get("/absences");
    if let Some(u) = user {
        r = r.query("user", u);
    }
    let r = with_range(r, q.begin, q.end).query("status", q.status);
    let body = ctx.call(&r)?.body;
    Ok(body.as_array().cloned().unwrap_or_default())
}

struct Query {
    begin: Option<Date>,
    end: Option<Date>,
    status: &'static str,
}

fn read(ctx: &Context, scope: &Scope, q: &Query) -> Result<Read, ToolError> {
    match scope {
        Scope::Own | Scope::One(_) => {
            let (uid, found) = match scope {
                Scope::One(u) => (Some(u.id), Some(u.clone())),
                _ => (None, None),
            };
            let absences = absences_of(ctx, uid, q).map_err(|e| explain_404(ctx, e))?;
            let users = match found {
                // A user named by id: take the name from their absences when there are any.
                Some(u) => vec![
                    absences
                        .iter()
                        .find_map(|a| a.get("user").and_then(users::found_from))
                        .filter(|f| f.id == u.id)
                        .unwrap_or(u),
                ],
                None => {
                    let me = ctx.get("/users/me")?;
                    users::found_from(&me).into_iter().collect()
                }
            };
            Ok(Read {
                absences,
                skipped: Vec::new(),
                users,
                notes: Vec::new(),
            })
        }
        Scope::All => {
            let d = users::discover(ctx)?;
            let mut notes: Vec<String> = d.note().into_iter().collect();
            let total = d.users.len() as u64;
            let done = AtomicU64::new(0);
            let (ok, skipped) = fanout::read_all(ctx, &d.users, |u| {
                let r = absences_of(ctx, Some(u.id), q);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                ctx.progress(
                    n,
                    Some(total),
                    Some(&format!("absences read for {n} of {total} users")),
                );
                r
            })?;
            if ok.is_empty() && !skipped.is_empty() && skipped.iter().all(|(_, s)| *s == 404) {
                // Everyone answered 404: most likely the plugin is missing.
                if let Err(e) = ctx.call(&Request::get("/absences/types"))
                    && is_404(&e)
                {
                    return Err(ToolError::Failed(PLUGIN_MISSING.into()));
                }
            }
            if !skipped.is_empty() {
                notes.push(format!(
                    "Note: the absences of {} could not be read with this token (not included).",
                    skipped
                        .iter()
                        .map(|(u, s)| format!("{} ({s})", who(u)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(Read {
                absences: ok.iter().flat_map(|(_, v)| v.iter().cloned()).collect(),
                users: ok.into_iter().map(|(u, _)| u).collect(),
                skipped,
                notes,
            })
        }
    }
}

fn status_arg(filters: Option<&Args>) -> &'static str {
    match filters.and_then(|f| args::string(f, "status")) {
        Some("approved") => "approved",
        Some("open") => "open",
        _ => "all",
    }
}

fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Own => "your absences".into(),
        Scope::One(u) => format!("absences of {}", who(u)),
        Scope::All => "absences of all users you can see".into(),
    }
}

fn period_text(begin: Option<Date>, end: Option<Date>) -> String {
    match (begin, end) {
        (Some(b), Some(e)) => format!("{b} to {e}"),
        (Some(b), None) => format!("from {b}"),
        (None, Some(e)) => format!("until {e}"),
        (None, None) => "all dates".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// One absence, as read

struct Entry {
    id: i64,
    date: Option<Date>,
    kind: String,
    status: String,
    half_day: bool,
    duration: i64,
    user: Option<Found>,
    comment: Option<String>,
}

impl Entry {
    fn from(v: &Value) -> Entry {
        Entry {
            id: v.get("id").and_then(args::as_int).unwrap_or(0),
            date: v.get("date").and_then(Value::as_str).and_then(|s| {
                time::parse_stamp(s)
                    .map(|st| st.local.date)
                    .or_else(|| time::parse_date(s))
            }),
            kind: v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string(),
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            half_day: v.get("halfDay").and_then(Value::as_bool).unwrap_or(false),
            duration: v.get("duration").and_then(args::as_int).unwrap_or(0),
            user: v.get("user").and_then(users::found_from),
            comment: v
                .get("comment")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        }
    }

    /// Counted in hours rather than days: the types that take a duration.
    fn hourly(&self) -> bool {
        matches!(self.kind.as_str(), "time_off" | "other")
    }

    fn days(&self) -> f64 {
        if self.hourly() {
            0.0
        } else if self.half_day {
            0.5
        } else {
            1.0
        }
    }

    fn line(&self) -> String {
        let mut parts = vec![
            format!("ID {}", self.id),
            self.date
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into()),
            label(&self.kind),
            self.user.as_ref().map(who).unwrap_or_else(|| "?".into()),
            text::safe(&self.status),
        ];
        if self.half_day {
            parts.push("half day".into());
        }
        if self.hourly() {
            parts.push(format!("{} h", time::hours(self.duration)));
        }
        if let Some(c) = &self.comment {
            parts.push(format!("comment: {}", text::safe(c)));
        }
        parts.join(" | ")
    }
}

fn entries(read: &Read) -> Vec<Entry> {
    let mut v: Vec<Entry> = read.absences.iter().map(Entry::from).collect();
    v.sort_by(|a, b| {
        a.date
            .cmp(&b.date)
            .then_with(|| {
                a.user
                    .as_ref()
                    .map(|u| u.id)
                    .cmp(&b.user.as_ref().map(|u| u.id))
            })
            .then(a.id.cmp(&b.id))
    });
    v
}

// ---------------------------------------------------------------------------------------------
// Actions

fn list(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
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
struct Tally {
    entries: usize,
    days: f64,
    hourly_secs: i64,
}

impl Tally {
    fn add(&mut self, e: &Entry) {
        self.entries += 1;
        self.days += e.days();
        if e.hourly() {
            self.hourly_secs += e.duration;
        }
    }
    fn text(&self) -> String {
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

fn statistics(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
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

fn types(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
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

/// Splits `begin..=end` into ranges of at most [`MAX_CHUNK_DAYS`] days that never cross a
/// year boundary.
pub fn split(begin: Date, end: Date) -> Vec<(Date, Date)> {
    let mut out = Vec::new();
    let mut start = begin;
    while start <= end {
        let year_end = Date {
            year: start.year,
            month: 12,
            day: 31,
        };
        let limit = start.add_days(MAX_CHUNK_DAYS - 1);
        let stop = end.min(year_end).min(limit);
        out.push((start, stop));
        start = stop.add_days(1);
    }
    out
}

fn create(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let data = args::object(a, "data").ok_or_else(|| {
        ToolError::Invalid("'data' with comment, date and type is required for create".into())
    })?;
    let mut missing: Vec<&str> = ["comment", "date", "type"]
        .into_iter()
        .filter(|k| args::string(data, k).is_none())
        .collect();
    missing.sort_unstable();
    if !missing.is_empty() {
        return Err(ToolError::Invalid(format!(
            "create needs data.{} (comment: text shown in the absence list; date: YYYY-MM-DD; type: one of {})",
            missing.join(", data."),
            TYPES.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        )));
    }
    let comment = args::string(data, "comment").unwrap_or_default();
    let kind = args::string(data, "type").unwrap_or("other");
    let begin = date_arg("data.date", args::string(data, "date").unwrap_or_default())?;
    let end = match args::string(data, "end") {
        Some(e) => date_arg("data.end", e)?,
        None => begin,
    };
    if end < begin {
        return Err(ToolError::Invalid(format!(
            "data.end ({end}) is before data.date ({begin}); send an end on or after the first day"
        )));
    }
    let half_day = args::boolean(data, "halfDay").unwrap_or(false);
    if half_day && end != begin {
        return Err(ToolError::Invalid(
            "data.halfDay applies to a single day; drop data.end or halfDay".into(),
        ));
    }
    let duration = match data.get("duration").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => {
            if !matches!(kind, "time_off" | "other") {
                return Err(ToolError::Invalid(format!(
                    "data.duration only applies to type time_off or other (got type {kind})"
                )));
            }
            let secs = time::parse_duration("data.duration", v).map_err(ToolError::Invalid)?;
            if secs <= 0 {
                return Err(ToolError::Invalid("data.duration must be positive".into()));
            }
            Some(time::hms(secs))
        }
    };
    let user = args::int(data, "user");
    if let Some(u) = user
        && u < 1
    {
        return Err(ToolError::Invalid(format!(
            "data.user must be a positive user id, got {u}"
        )));
    }
    let chunks = split(begin, end);
    let mut created: Vec<Entry> = Vec::new();
    for (i, (from, to)) in chunks.iter().enumerate() {
        let mut body = Map::new();
        body.insert("comment".into(), json!(comment));
        body.insert("date".into(), json!(from.to_string()));
        if to != from {
            body.insert("end".into(), json!(to.to_string()));
        }
        body.insert("type".into(), json!(kind));
        if let Some(u) = user {
            body.insert("user".into(), json!(u));
        }
        if half_day {
            body.insert("halfDay".into(), json!(true));
        }
        if let Some(d) = &duration {
            body.insert("duration".into(), json!(d));
        }
        match ctx.call(&Request::post("/absences", Value::Object(body))) {
            Ok(r) => created.extend(
                r.body
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(Entry::from)
                    .chain(r.body.as_object().map(|_| Entry::from(&r.body))),
            ),
            Err(e) => {
                let e = explain_404(ctx, e);
                if created.is_empty() {
                    return Err(e);
                }
                return Err(ToolError::Failed(format!(
                    "created {} absence(s) for the first {i} of {} date ranges (IDs {}), then \
                     the range {from} to {to} failed: {}. Nothing after it was sent.",
                    created.len(),
                    chunks.len(),
                    created
                        .iter()
                        .map(|e| e.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    e.message()
                )));
            }
        }
    }
    let mut out = format!(
        "Created {} absence(s) ({}, {begin}{}).",
        created.len(),
        label(kind),
        if end != begin {
            format!(" to {end}")
        } else {
            String::new()
        }
    );
    if chunks.len() > 1 {
        out.push_str(&format!(
            " Sent as {} requests: Kimai accepts at most {MAX_CHUNK_DAYS} days per absence and no range across a year end ({}).",
            chunks.len(),
            chunks
                .iter()
                .map(|(f, t)| format!("{f} to {t}"))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for e in &created {
        out.push_str("\n- ");
        out.push_str(&e.line());
    }
    Ok(Output::text(out))
}

fn request_for(action: &str, id: i64) -> Request {
    match action {
        "delete" | "batch_delete" => Request::delete(format!("/absences/{id}")),
        "approve" | "batch_approve" => Request::patch(format!("/absences/{id}/confirm"), json!({})),
        "reject" | "batch_reject" => Request::patch(format!("/absences/{id}/reject"), json!({})),
        _ => Request::patch(format!("/absences/{id}/request"), json!({})),
    }
}

fn single(ctx: &Context, action: &str, id: i64) -> Result<Output, ToolError> {
    let r = ctx
        .call(&request_for(action, id))
        .map_err(|e| explain_404(ctx, e))?;
    Ok(Output::text(match action {
        "delete" => format!("Absence {id} deleted."),
        "approve" => format!("Absence {id} approved.\n- {}", Entry::from(&r.body).line()),
        "reject" => format!("Absence {id} rejected.\n- {}", Entry::from(&r.body).line()),
        _ => format!(
            "Approval requested for absence {id} (the supervisor is notified by Kimai).\n- {}",
            Entry::from(&r.body).line()
        ),
    }))
}

fn batch(ctx: &Context, action: &str, ids: &[i64]) -> Result<Output, ToolError> {
    let done = AtomicU64::new(0);
    let total = ids.len() as u64;
    let b = fanout::batch(ctx, ids, "", |id| {
        let r = ctx.call(&request_for(action, id)).map(|_| true);
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.progress(n, Some(total), None);
        r
    })?;
    if b.done.is_empty()
        && !b.failed.is_empty()
        && b.failed.iter().all(|(_, m)| m.contains(" 404 "))
        && let Err(e) = ctx.call(&Request::get("/absences/types"))
        && is_404(&e)
    {
        return Err(ToolError::Failed(PLUGIN_MISSING.into()));
    }
    let verb = match action {
        "batch_delete" => "deleted",
        "batch_approve" => "approved",
        _ => "rejected",
    };
    Ok(Output::text(format!(
        "Batch {}: {}",
        action.trim_start_matches("batch_"),
        b.summary(verb, "absences")
    )))
}

fn attendance(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        time::parse_date(s).unwrap()
    }

    #[test]
    fn split_keeps_chunks_within_thirty_days_and_one_year() {
        assert_eq!(
            split(d("2026-03-02"), d("2026-03-02")),
            vec![(d("2026-03-02"), d("2026-03-02"))]
        );
        assert_eq!(
            split(d("2026-03-01"), d("2026-03-30")),
            vec![(d("2026-03-01"), d("2026-03-30"))]
        );
        assert_eq!(
            split(d("2026-03-01"), d("2026-03-31")),
            vec![
                (d("2026-03-01"), d("2026-03-30")),
                (d("2026-03-31"), d("2026-03-31"))
            ]
        );
        assert_eq!(
            split(d("2026-12-20"), d("2027-01-10")),
            vec![
                (d("2026-12-20"), d("2026-12-31")),
                (d("2027-01-01"), d("2027-01-10"))
            ]
        );
        // 75 days across a year end: 30 + 30 (stops at Dec 31? no: Nov 1 + 29 = Nov 30) …
        let chunks = split(d("2026-11-01"), d("2027-01-14"));
        assert_eq!(
            chunks,
            vec![
                (d("2026-11-01"), d("2026-11-30")),
                (d("2026-12-01"), d("2026-12-30")),
                (d("2026-12-31"), d("2026-12-31")),
                (d("2027-01-01"), d("2027-01-14")),
            ]
        );
        // Every rule holds on a long leap-year range, and the chunks tile the range exactly.
        let (b, e) = (d("2027-12-15"), d("2028-12-31"));
        let chunks = split(b, e);
        assert_eq!(chunks.first().unwrap().0, b);
        assert_eq!(chunks.last().unwrap().1, e);
        for w in chunks.windows(2) {
            assert_eq!(w[0].1.add_days(1), w[1].0);
        }
        for (f, t) in &chunks {
            assert!(t.to_days() - f.to_days() < MAX_CHUNK_DAYS && f.year == t.year && f <= t);
        }
    }

    #[test]
    fn half_days_count_half_and_hourly_types_count_hours() {
        let e = Entry::from(
            &json!({"id": 1, "date": "2026-08-13T00:00:00+0200", "type": "holiday", "status": "approved", "halfDay": true, "duration": 14400}),
        );
        assert_eq!(e.days(), 0.5);
        let t = Entry::from(
            &json!({"id": 2, "date": "2026-08-13T00:00:00+0200", "type": "time_off", "status": "approved", "halfDay": false, "duration": 5400}),
        );
        assert_eq!(t.days(), 0.0);
        let mut tally = Tally::default();
        tally.add(&e);
        tally.add(&t);
        assert_eq!(tally.text(), "2 entries, 0.5 days + 1.50 h");
        assert_eq!(e.date, Some(d("2026-08-13")));
    }

    #[test]
    fn entry_lines_neutralise_kimai_text() {
        let e = Entry::from(
            &json!({"id": 7, "date": "2026-08-13T00:00:00+0200", "type": "sickness", "status": "approved",
            "user": {"id": 5, "username": "john", "alias": "John\nID 99 | forged"}, "comment": "ok\u{202E}"}),
        );
        let line = e.line();
        assert!(!line.contains('\n') && !line.contains('\u{202E}'), "{line}");
        assert!(
            line.starts_with("ID 7 | 2026-08-13 | Sickness | \"John\\nID 99 | forged\" (ID 5)"),
            "{line}"
        );
    }
}
