//! `timesheet`: list, read, write and analyse time records (`/api/timesheets`).
//!
//! `list` reads one page with names (`full=true`) and Kimai's totals from the pagination
//! headers; with `calculate_stats` or a `meta` filter it reads every page (see `paging`) and
//! computes statistics. Writes send only the fields the caller gave (Kimai rejects fields a
//! token may not set, and invents nothing we would have to guess). Traps handled here, each with
//! a test: filter datetimes are local without offset (an offset is refused with the fix), a
//! date-only `end` is the end of that day, `break` is written as `H:MM:SS`, the export
//! endpoint toggles (so batch export reads first and never un-exports), repeated ids are
//! handled once, and filters that Kimai silently ignored are pointed out.

use super::args::{self, Args};
use super::rows::{self, RowOpts};
use super::stats::{Rec, Stats};
use super::time::{self, DayEdge};
use super::{Context, Output, Tool, ToolError, fanout, paging, text, users};
use crate::kimai::Request;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

pub const TOOL: Tool = Tool {
    name: "timesheet",
    title: "Timesheets",
    description: "Time records in Kimai. action=list: one page of records with names (filters: \
        user_scope self/all/specific, user, users, project(s), activity/activities, customer(s), \
        tags, begin/end as local time without offset (a date alone: end means end of day), \
        exported/active/billable 0|1, term, order_by, order, page, size ≤ 500, meta, \
        modified_after in UTC); calculate_stats=true adds statistics over every matching record \
        (stats_format summary|detailed|json, breakdown_by_year). action=get|delete|duplicate|\
        export_toggle need id; create needs data.project and data.activity (omit data.end to \
        start a running record); update needs id and data; meta_update needs id and meta \
        [{name, value}]; batch_delete and batch_export need ids; user_guide explains user \
        scopes and lists the users you can see.",
    schema,
    read_only: false,
    destructive: true,
    idempotent: false,
    handler,
};

fn schema() -> Value {
    let ids = json!({"type": "array", "items": {"type": "integer"}});
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["list", "get", "create", "update", "delete", "duplicate", "export_toggle", "meta_update", "user_guide", "batch_delete", "batch_export"]},
            "id": {"type": "integer", "description": "Timesheet id (get, update, delete, duplicate, export_toggle, meta_update)."},
            "ids": {"type": "array", "items": {"type": "integer"}, "description": "Timesheet ids (batch_delete, batch_export); repeats are handled once."},
            "filters": {
                "type": "object",
                "description": "Filters for list.",
                "properties": {
                    "user_scope": {"type": "string", "enum": ["self", "all", "specific"], "description": "self (default): your records; all: everyone you may see; specific: the user in 'user'."},
                    "user": {"type": "string", "description": "User id for user_scope=specific."},
                    "project": {"type": "integer"},
                    "activity": {"type": "integer"},
                    "customer": {"type": "integer"},
                    "begin": {"type": "string", "description": "Records beginning at or after this local time, e.g. 2026-03-01 or 2026-03-01T08:00:00 (no offset)."},
                    "end": {"type": "string", "description": "Records beginning at or before this local time; a date alone means the end of that day."},
                    "exported": {"type": "integer", "enum": [0, 1]},
                    "active": {"type": "integer", "enum": [0, 1], "description": "1: running records only; 0: stopped only."},
                    "billable": {"type": "integer", "enum": [0, 1]},
                    "users": ids.clone(),
                    "customers": ids.clone(),
                    "projects": ids.clone(),
                    "activities": ids,
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Tag names; records with any of them."},
                    "order_by": {"type": "string", "enum": ["id", "begin", "end", "rate"]},
                    "order": {"type": "string", "enum": ["ASC", "DESC"]},
                    "modified_after": {"type": "string", "description": "Records changed at or after this time, in UTC (an offset or Z is converted)."},
                    "page": {"type": "integer", "minimum": 1, "default": 1},
                    "size": {"type": "integer", "minimum": 1, "default": 50, "description": "Records per page, at most 500."},
                    "term": {"type": "string", "description": "Search words in the description (all must match)."},
                    "meta": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                        "additionalProperties": false,
                        "description": "Custom field filter: name alone = has a value; value = exact match (case-insensitive); value \"\" = empty."
                    },
                    "include_user_list": {"type": "boolean", "default": false},
                    "calculate_stats": {"type": "boolean", "default": false},
                    "stats_format": {"type": "string", "enum": ["summary", "detailed", "json"], "default": "summary"},
                    "breakdown_by_year": {"type": "boolean", "default": false}
                },
                "additionalProperties": false
            },
            "data": {
                "type": "object",
                "description": "Fields for create and update; only the fields given are sent.",
                "properties": {
                    "project": {"type": "integer"},
                    "activity": {"type": "integer"},
                    "begin": {"type": "string", "format": "date-time", "description": "Local time without offset; omitted on create = now."},
                    "end": {"type": "string", "format": "date-time", "description": "Local time without offset; omitted on create = a running record."},
                    "description": {"type": "string"},
                    "tags": {"type": "string", "description": "Comma-separated tag names; Kimai ignores unknown tags; \"\" clears."},
                    "user": {"type": "integer", "description": "Record for another user (team leads and above)."},
                    "billable": {"type": "boolean"},
                    "fixedRate": {"type": "number"},
                    "hourlyRate": {"type": "number"},
                    "exported": {"type": "boolean"},
                    "break": {"type": ["integer", "string"], "description": "Break as seconds (integer) or a duration such as \"0:30\" or \"45m\"."}
                },
                "additionalProperties": false
            },
            "meta": {
                "type": "array",
                "description": "Custom fields to set (meta_update).",
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "value": {}}, "additionalProperties": false}
            },
            "show_users": {"type": "boolean", "default": true, "description": "user_guide: also list the users you can see."}
        },
        "required": ["action"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let action = args::action(a);
    match action {
        "list" => {
            args::refuse_unused(a, action, &["filters"])?;
            list(ctx, args::object(a, "filters").cloned().unwrap_or_default())
        }
        "get" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(a, "id", "for action 'get'")?;
            let r = ctx.get(&format!("/timesheets/{id}"))?;
            Ok(Output::text(rows::block(&r, rows::now_unix())))
        }
        "create" => {
            args::refuse_unused(a, action, &["data"])?;
            create(ctx, args::object(a, "data"))
        }
        "update" => {
            args::refuse_unused(a, action, &["id", "data"])?;
            update(
                ctx,
                args::need_id(a, "id", "for action 'update'")?,
                args::object(a, "data"),
            )
        }
        "delete" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(a, "id", "for action 'delete'")?;
            ctx.call(&Request::delete(format!("/timesheets/{id}")))?;
            Ok(Output::text(format!("Deleted timesheet ID {id}.")))
        }
        "duplicate" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(a, "id", "for action 'duplicate'")?;
            let r = ctx
                .call(&Request::patch(
                    format!("/timesheets/{id}/duplicate"),
                    json!({}),
                ))?
                .body;
            let new_id = r
                .get("id")
                .and_then(args::as_int)
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".into());
            Ok(Output::text(format!(
                "Duplicated timesheet ID {id} as new timesheet ID {new_id}.\n{}",
                rows::block(&r, rows::now_unix())
            )))
        }
        "export_toggle" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(a, "id", "for action 'export_toggle'")?;
            let r = ctx
                .call(&Request::patch(
                    format!("/timesheets/{id}/export"),
                    json!({}),
                ))?
                .body;
            let state = match r.get("exported").and_then(Value::as_bool) {
                Some(true) => "now marked as exported",
                Some(false) => "now marked as not exported",
                None => "toggled (Kimai did not say the new state)",
            };
            Ok(Output::text(format!("Timesheet ID {id} is {state}.")))
        }
        "meta_update" => {
            args::refuse_unused(a, action, &["id", "meta"])?;
            meta_update(
                ctx,
                args::need_id(a, "id", "for action 'meta_update'")?,
                a.get("meta"),
            )
        }
        "user_guide" => {
            args::refuse_unused(a, action, &["show_users"])?;
            user_guide(ctx, args::boolean(a, "show_users").unwrap_or(true))
        }
        "batch_delete" => {
            args::refuse_unused(a, action, &["ids"])?;
            let ids = args::need_ids(a, "ids", "for action 'batch_delete'")?;
            let b = fanout::batch(ctx, &ids, "", |id| {
                ctx.call(&Request::delete(format!("/timesheets/{id}")))?;
                Ok(true)
            })?;
            Ok(Output::text(format!(
                "Batch delete: {}",
                b.summary("deleted", "timesheets")
            )))
        }
        "batch_export" => {
            args::refuse_unused(a, action, &["ids"])?;
            let ids = args::need_ids(a, "ids", "for action 'batch_export'")?;
            // The export endpoint toggles: read first, so that an exported record is never
            // un-exported by a batch that means "export".
            let b = fanout::batch(ctx, &ids, "already exported", |id| {
                let r = ctx.get(&format!("/timesheets/{id}"))?;
                if r.get("exported").and_then(Value::as_bool) == Some(true) {
                    return Ok(false);
                }
                ctx.call(&Request::patch(
                    format!("/timesheets/{id}/export"),
                    json!({}),
                ))?;
                Ok(true)
            })?;
            Ok(Output::text(format!(
                "Batch export: {}",
                b.summary("marked as exported", "timesheets")
            )))
        }
        other => Err(ToolError::Invalid(format!(
            "unknown action '{}'",
            text::safe(other)
        ))),
    }
}

/// Builds the body of a create or update from `data`: only the keys given, converted to what
/// Kimai expects.
fn body(data: &Args) -> Result<Map<String, Value>, ToolError> {
    let mut out = Map::new();
    for (k, v) in data {
        let value = match k.as_str() {
            "begin" | "end" => {
                let s = v.as_str().unwrap_or_default();
                let local = time::parse_local(&format!("data.{k}"), s, DayEdge::Start)
                    .map_err(ToolError::Invalid)?;
                Value::from(local.to_string())
            }
            "break" => Value::from(time::hms(
                time::parse_duration("data.break", v).map_err(ToolError::Invalid)?,
            )),
            "project" | "activity" | "user" => match args::as_int(v) {
                Some(id) if id > 0 => Value::from(id),
                _ => {
                    return Err(ToolError::Invalid(format!(
                        "'data.{k}' must be a positive id"
                    )));
                }
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

fn create(ctx: &Context, data: Option<&Args>) -> Result<Output, ToolError> {
    let data = data.ok_or_else(|| {
        ToolError::Invalid(
            "'data' with at least 'project' and 'activity' is required for action 'create'".into(),
        )
    })?;
    let missing: Vec<&str> = ["project", "activity"]
        .into_iter()
        .filter(|k| !data.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::Invalid(format!(
            "'data.{}' is required for action 'create' (Kimai needs both project and activity; find ids with the entity tool)",
            missing.join("' and 'data.")
        )));
    }
    let body = body(data)?;
    let running = !body.contains_key("end");
    // `full` makes Kimai answer with names (project, customer, activity, user objects).
    let r = ctx
        .call(&Request::post("/timesheets", Value::Object(body)).query("full", "true"))?
        .body;
    let id = r
        .get("id")
        .and_then(args::as_int)
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".into());
    let head = if running {
        format!(
            "Started running timesheet ID {id} (Kimai stops your other running record when only one may run)."
        )
    } else {
        format!("Created timesheet ID {id}.")
    };
    Ok(Output::text(format!(
        "{head}\n{}",
        rows::row(&r, RowOpts { user: true }, rows::now_unix())
    )))
}

fn update(ctx: &Context, id: i64, data: Option<&Args>) -> Result<Output, ToolError> {
    let data = data.filter(|d| !d.is_empty()).ok_or_else(|| {
        ToolError::Invalid("'data' with the fields to change is required for action 'update' (e.g. {\"description\": \"…\"})".into())
    })?;
    let body = body(data)?;
    let fields: Vec<String> = body.keys().cloned().collect();
    let r = ctx
        .call(&Request::patch(
            format!("/timesheets/{id}"),
            Value::Object(body),
        ))?
        .body;
    Ok(Output::text(format!(
        "Updated timesheet ID {id} ({}).\n{}",
        fields.join(", "),
        rows::block(&r, rows::now_unix())
    )))
}

fn meta_update(ctx: &Context, id: i64, meta: Option<&Value>) -> Result<Output, ToolError> {
    let items = meta.and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(|| {
        ToolError::Invalid("'meta' must list the fields to set, e.g. [{\"name\": \"ticket\", \"value\": \"T-12\"}]".into())
    })?;
    let mut pairs = Vec::new();
    for (i, m) in items.iter().enumerate() {
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty());
        let Some(name) = name else {
            return Err(ToolError::Invalid(format!("'meta[{i}].name' is required")));
        };
        let value = match m.get("value") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                return Err(ToolError::Invalid(format!(
                    "'meta[{i}].value' is required (use \"\" to clear)"
                )));
            }
            Some(_) => {
                return Err(ToolError::Invalid(format!(
                    "'meta[{i}].value' must be a string (Kimai stores custom fields as text)"
                )));
            }
        };
        pairs.push((name.to_string(), value));
    }
    // One request per field, in order: Kimai's endpoint takes one name/value pair.
    let mut done = Vec::new();
    for (name, value) in &pairs {
        if let Err(e) = ctx.call(&Request::patch(
            format!("/timesheets/{id}/meta"),
            json!({"name": name, "value": value}),
        )) {
            if done.is_empty() {
                return Err(e);
            }
            return Ok(Output::text(format!(
                "Updated {} of {} meta field(s) on timesheet ID {id} ({}); '{}' failed: {}",
                done.len(),
                pairs.len(),
                done.join(", "),
                text::safe(name),
                fanout::short_error(&e)
            )));
        }
        done.push(text::safe(name));
    }
    Ok(Output::text(format!(
        "Updated {} meta field(s) on timesheet ID {id}: {}.",
        done.len(),
        done.join(", ")
    )))
}

const GUIDE: &str = "## Whose timesheets a list shows
- filters.user_scope = \"self\" (default): your own records.
- filters.user_scope = \"all\": every user you may see (admins: everyone; team leads: themselves and the members of teams they lead).
- filters.user_scope = \"specific\" with filters.user = \"<user id>\": one user.
- filters.users = [ids]: several users (overrides user_scope).
Without the permission to see other users' records, Kimai silently returns your own; the list then says so.

Examples:
- {\"action\": \"list\", \"filters\": {\"user_scope\": \"all\", \"begin\": \"2026-03-01\", \"end\": \"2026-03-31\"}}
- {\"action\": \"list\", \"filters\": {\"user_scope\": \"specific\", \"user\": \"7\", \"calculate_stats\": true}}";

fn user_guide(ctx: &Context, show_users: bool) -> Result<Output, ToolError> {
    let mut out = GUIDE.to_string();
    if show_users {
        match users::discover(ctx) {
            Ok(d) => {
                out.push_str(&format!("\n\n## Users you can see ({})\n", d.users.len()));
                for u in d.users.iter().take(20) {
                    out.push_str(&format!(
                        "- {} (ID {}, username {})\n",
                        text::safe(&u.display),
                        u.id,
                        text::safe(&u.username)
                    ));
                }
                if d.users.len() > 20 {
                    out.push_str(&format!("- … and {} more\n", d.users.len() - 20));
                }
                if let Some(n) = d.note() {
                    out.push_str(&n);
                }
            }
            Err(ToolError::Kimai(e)) if e.status() == Some(403) => {
                out.push_str("\n\n## Users\nThis token may not list users (Kimai answered 403): only your own records are available.");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Output::text(out.trim_end().to_string()))
}

/// How the list was asked to pick users, for headers and warnings.
#[derive(Debug, PartialEq)]
enum Scope {
    Own,
    All,
    One(i64),
    Several(Vec<i64>),
}

impl Scope {
    fn describe(&self) -> String {
        match self {
            Scope::Own => "your records".into(),
            Scope::All => "all users you may see".into(),
            Scope::One(id) => format!("user {id}"),
            Scope::Several(ids) => format!(
                "users {}",
                ids.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The `/timesheets` query for `filters`, with the scope it asks for and notes for the reader.
struct ListQuery {
    request: Request,
    scope: Scope,
    page: u64,
    size: u64,
    notes: Vec<String>,
    period: (Option<time::Date>, Option<time::Date>),
}

fn build_query(f: &Args) -> Result<ListQuery, ToolError> {
    let mut req = Request::get("/timesheets");
    let mut notes = Vec::new();
    let scope = if let Some(users) = f
        .get("users")
        .filter(|u| u.as_array().is_some_and(|a| !a.is_empty()))
    {
        let ids = args::ids(&Map::from_iter([("u".to_string(), users.clone())]), "u");
        if f.contains_key("user_scope") || f.contains_key("user") {
            notes.push("Note: 'users' was given, so 'user_scope'/'user' were not used.".into());
        }
        req = req.query_list("users", ids.iter());
        Scope::Several(ids)
    } else {
        match f
            .get("user_scope")
            .and_then(Value::as_str)
            .unwrap_or("self")
        {
            "all" => {
                req = req.query("user", "all");
                Scope::All
            }
            "specific" => {
                let user = args::string(f, "user").ok_or_else(|| {
                    ToolError::Invalid("'filters.user' (a user id) is required when filters.user_scope is 'specific'".into())
                })?;
                let id: i64 = user.trim().parse().ok().filter(|i| *i > 0).ok_or_else(|| {
                    ToolError::Invalid(format!("'filters.user' must be a numeric user id, got {}; find ids with action=user_guide", text::safe(user)))
                })?;
                req = req.query("user", id);
                Scope::One(id)
            }
            _ => {
                if f.contains_key("user") {
                    return Err(ToolError::Invalid(
                        "'filters.user' needs filters.user_scope = 'specific'".into(),
                    ));
                }
                // Kimai's default is the caller's own records.
                Scope::Own
            }
        }
    };
    for key in ["project", "activity", "customer"] {
        if let Some(id) = args::int(f, key) {
            req = req.query(key, id);
        }
    }
    for key in ["projects", "activities", "customers"] {
        let ids = args::ids(f, key);
        if !ids.is_empty() {
            req = req.query_list(key, ids.iter());
        }
    }
    let tags: Vec<&str> = f
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !tags.is_empty() {
        req = req.query_list("tags", tags.iter());
    }
    let mut period = (None, None);
    if let Some(b) = args::string(f, "begin") {
        let l =
            time::parse_local("filters.begin", b, DayEdge::Start).map_err(ToolError::Invalid)?;
        period.0 = Some(l.date);
        req = req.query("begin", l);
    }
    if let Some(e) = args::string(f, "end") {
        let l = time::parse_local("filters.end", e, DayEdge::End).map_err(ToolError::Invalid)?;
        period.1 = Some(l.date);
        req = req.query("end", l);
    }
    if let (Some(b), Some(e)) = (period.0, period.1)
        && e < b
    {
        return Err(ToolError::Invalid(format!(
            "'filters.end' ({e}) is before 'filters.begin' ({b})"
        )));
    }
    for key in ["exported", "active", "billable"] {
        if let Some(v) = args::int(f, key) {
            req = req.query(key, v);
        }
    }
    if let Some(o) = args::string(f, "order_by") {
        req = req.query("orderBy", o);
    }
    if let Some(o) = args::string(f, "order") {
        req = req.query("order", o);
    }
    if let Some(m) = args::string(f, "modified_after") {
        req = req.query("modified_after", utc(m)?);
    }
    if let Some(t) = args::string(f, "term") {
        req = req.query("term", t);
    }
    let page = args::int(f, "page").unwrap_or(1).max(1) as u64;
    let mut size = args::int(f, "size").unwrap_or(50).max(1) as u64;
    if size > 500 {
        notes.push(format!(
            "Note: size {size} is more than Kimai's maximum; 500 per page are shown."
        ));
        size = 500;
    }
    Ok(ListQuery {
        request: req,
        scope,
        page,
        size,
        notes,
        period,
    })
}

/// `modified_after` is compared with Kimai's UTC column: a value with an offset or `Z` is
/// converted to UTC, a value without one is taken as UTC already.
fn utc(s: &str) -> Result<String, ToolError> {
    let t = s.trim();
    let has_offset = t.ends_with('Z')
        || t.get(10..)
            .is_some_and(|rest| rest.contains('+') || rest.contains('-'));
    if has_offset {
        let st = time::parse_stamp(t).ok_or_else(|| {
            ToolError::Invalid(format!(
                "'filters.modified_after' is not a date-time: {}",
                text::safe(s)
            ))
        })?;
        let u = st.unix();
        let d = time::Date::from_days(u.div_euclid(86_400));
        let secs = u.rem_euclid(86_400);
        return Ok(format!(
            "{d}T{:02}:{:02}:{:02}",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        ));
    }
    let l = time::parse_local("filters.modified_after", t, DayEdge::Start)
        .map_err(ToolError::Invalid)?;
    Ok(l.to_string())
}

/// The meta-field filter: Kimai pre-filters with `term=name:value` (a substring match); the
/// exact, case-insensitive comparison is done here on every record.
struct MetaFilter {
    name: String,
    value: Option<String>,
}

impl MetaFilter {
    fn from(f: &Args) -> Option<MetaFilter> {
        let m = f.get("meta")?.as_object()?;
        Some(MetaFilter {
            name: m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            value: m.get("value").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The term Kimai can pre-filter with, if any is safe to send.
    fn term(&self) -> Option<String> {
        let name_ok = !self.name.is_empty()
            && !self.name.contains(char::is_whitespace)
            && !self.name.contains(':');
        if !name_ok {
            return None;
        }
        match self.value.as_deref() {
            Some("") => None,
            Some(v)
                if v.contains(char::is_whitespace)
                    || v.starts_with('!')
                    || v.contains('\\')
                    || ["*", "~", "\"\""].contains(&v) =>
            {
                Some(format!("{}:*", self.name))
            }
            Some(v) => Some(format!("{}:{v}", self.name)),
            None => Some(format!("{}:*", self.name)),
        }
    }

    fn matches(&self, r: &Value) -> bool {
        let field = r
            .get("metaFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| {
                m.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&self.name))
            });
        let value = field
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match self.value.as_deref() {
            None => !value.is_empty(),
            Some("") => value.is_empty(),
            Some(v) => value.to_lowercase() == v.to_lowercase(),
        }
    }
}

fn list(ctx: &Context, f: Args) -> Result<Output, ToolError> {
    let q = build_query(&f)?;
    let stats = args::boolean(&f, "calculate_stats").unwrap_or(false);
    let meta = MetaFilter::from(&f);
    let format = args::string(&f, "stats_format").unwrap_or("summary");
    if !stats && (f.contains_key("stats_format") || f.contains_key("breakdown_by_year")) {
        return Err(ToolError::Invalid(
            "'stats_format' and 'breakdown_by_year' need filters.calculate_stats = true".into(),
        ));
    }
    let now = rows::now_unix();
    let opts = RowOpts {
        user: q.scope != Scope::Own,
    };
    let mut out = Vec::new();
    let mut notes = q.notes.clone();

    if !stats && meta.is_none() {
        // One page, with names.
        let req = q
            .request
            .clone()
            .query("page", q.page)
            .query("size", q.size)
            .query("full", "true");
        let resp = match ctx.call(&req) {
            Ok(r) => r,
            Err(ToolError::Kimai(e)) if e.status() == Some(404) && q.page > 1 => {
                return Ok(Output::text(format!(
                    "Page {} is past the last page of timesheets for this filter; use a lower 'page'.",
                    q.page
                )));
            }
            Err(e) => return Err(e),
        };
        let records = resp.body.as_array().cloned().unwrap_or_default();
        let head = match resp.page {
            Some(p) if p.total_count == 0 => {
                format!("No timesheets found for {}.", q.scope.describe())
            }
            Some(p) => {
                let from = (p.page - 1) * p.per_page + 1;
                format!(
                    "Found {} timesheets for {}; showing {}-{} (page {} of {}).",
                    p.total_count,
                    q.scope.describe(),
                    from,
                    from + records.len() as u64 - 1,
                    p.page,
                    p.total_pages
                )
            }
            None if records.is_empty() => format!(
                "No timesheets found for {} on page {}.",
                q.scope.describe(),
                q.page
            ),
            None => format!(
                "Found {} timesheets for {} on page {}.",
                records.len(),
                q.scope.describe(),
                q.page
            ),
        };
        out.push(head);
        out.extend(records.iter().map(|r| rows::row(r, opts, now)));
        match resp.page {
            Some(p) if p.page < p.total_pages => out.push(format!(
                "More records: use filters.page = {} (of {}).",
                p.page + 1,
                p.total_pages
            )),
            None if records.len() as u64 == q.size => {
                out.push("There may be more records: try the next page.".into())
            }
            _ => {}
        }
        let ids: Vec<Ids> = records.iter().map(Ids::of_value).collect();
        notes.extend(ignored_filter_warnings(ctx, &f, &q, &ids)?);
    } else {
        // Every page: statistics and/or the exact meta-field match need all records.
        let mut req = q.request.clone().query("full", "true");
        if let Some(term) = meta.as_ref().and_then(MetaFilter::term) {
            let combined = match args::string(&f, "term") {
                Some(t) => format!("{t} {term}"),
                None => term,
            };
            req.query.retain(|(k, _)| k != "term");
            req = req.query("term", combined);
        }
        // A summary needs only a few fields of each record: decode pages straight into them.
        let summary_only = stats && format == "summary" && meta.is_none();
        let (records, recs, truncated, kimai_total) = if summary_only {
            let all = paging::fetch_all_as::<Rec>(ctx, &req, Rec::id)?;
            (Vec::new(), all.records, all.truncated, all.total)
        } else {
            let all = paging::fetch_all(ctx, &req)?;
            let mut records = all.records;
            if let Some(m) = &meta {
                let before = records.len();
                records.retain(|r| m.matches(r));
                notes.push(format!(
                    "Meta filter {}{}: {} of {} records match exactly.",
                    text::safe(&m.name),
                    m.value
                        .as_deref()
                        .map(|v| format!(" = {}", text::safe(v)))
                        .unwrap_or_else(|| " (has a value)".into()),
                    records.len(),
                    before
                ));
            }
            let recs = records.iter().filter_map(Rec::from_value).collect();
            (records, recs, all.truncated, all.total)
        };
        let total = recs.len();
        let qualifier = if truncated { "at least " } else { "" };
        out.push(format!(
            "Found {qualifier}{total} timesheets for {}.",
            q.scope.describe()
        ));
        if truncated {
            notes.push(format!(
                "Note: the read stopped at {} records (of {} that Kimai counted); narrow the filter (begin/end, project, user) for complete figures.",
                paging::MAX_RECORDS,
                kimai_total.map(|t| t.to_string()).unwrap_or_else(|| "more".into())
            ));
        }
        let by_year = args::boolean(&f, "breakdown_by_year").unwrap_or(false)
            || matches!(q.period, (Some(b), Some(e)) if e.to_days() - b.to_days() > 365);
        let start = ((q.page - 1) * q.size) as usize;
        let page_rows: Vec<String> = records
            .iter()
            .skip(start)
            .take(q.size as usize)
            .map(|r| rows::row(r, opts, now))
            .collect();
        if stats {
            let s = Stats::compute(&recs, now);
            match format {
                "json" => out.push(format!(
                    "## Statistics (JSON):\n{}",
                    serde_json::to_string_pretty(&s.json(by_year, q.period)).unwrap_or_default()
                )),
                _ => out.push(s.report(by_year, q.period)),
            }
        }
        if !stats || format != "summary" {
            if !page_rows.is_empty() {
                out.push(format!(
                    "Records {}-{} (page {}):",
                    start + 1,
                    start + page_rows.len(),
                    q.page
                ));
                out.extend(page_rows);
            }
            if total > start + q.size as usize {
                out.push(format!("More records: use filters.page = {}.", q.page + 1));
            }
        }
        let ids: Vec<Ids> = recs.iter().map(Ids::of_rec).collect();
        notes.extend(ignored_filter_warnings(ctx, &f, &q, &ids)?);
    }
    if args::boolean(&f, "include_user_list").unwrap_or(false) {
        out.push(user_list(ctx)?);
    }
    out.extend(notes);
    Ok(Output::text(out.join("\n")))
}

fn user_list(ctx: &Context) -> Result<String, ToolError> {
    match users::discover(ctx) {
        Ok(d) => {
            let mut s = format!("Available users ({}):", d.users.len());
            for u in d.users.iter().take(10) {
                s.push_str(&format!("\n- {} (ID {})", text::safe(&u.display), u.id));
            }
            if d.users.len() > 10 {
                s.push_str(&format!(
                    "\n- … and {} more (timesheet action=user_guide lists 20)",
                    d.users.len() - 10
                ));
            }
            Ok(s)
        }
        Err(ToolError::Kimai(e)) if e.status() == Some(403) => {
            Ok("Available users: this token may not list users.".into())
        }
        Err(e) => Err(e),
    }
}

fn ref_id(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Object(o) => o.get("id").and_then(args::as_int),
        other => args::as_int(other),
    }
}

/// Kimai silently ignores filters for unknown or inaccessible ids and, without the permission
/// to see others' records, the user filter itself (contract §5.2). Rows that contradict the
/// request reveal it; say so rather than let a wrong list pass for the asked one.
/// The ids a record refers to, whatever its shape.
struct Ids {
    user: Option<i64>,
    project: Option<i64>,
    activity: Option<i64>,
    customer: Option<i64>,
}

impl Ids {
    fn of_value(r: &Value) -> Ids {
        Ids {
            user: ref_id(r.get("user")),
            project: ref_id(r.get("project")),
            activity: ref_id(r.get("activity")),
            customer: r
                .get("project")
                .and_then(|p| p.get("customer"))
                .and_then(|c| ref_id(Some(c))),
        }
    }

    fn of_rec(r: &Rec) -> Ids {
        let some = |id: i64| (id != 0).then_some(id);
        Ids {
            user: some(r.user.id),
            project: some(r.project.id),
            activity: some(r.activity.id),
            customer: r.project.customer.as_ref().and_then(|c| some(c.id)),
        }
    }
}

fn ignored_filter_warnings(
    ctx: &Context,
    f: &Args,
    q: &ListQuery,
    records: &[Ids],
) -> Result<Vec<String>, ToolError> {
    let mut warnings = Vec::new();
    let check = |key_one: &str,
                 key_many: &str,
                 label: &str,
                 get: &dyn Fn(&Ids) -> Option<i64>|
     -> Option<String> {
        let mut wanted: HashSet<i64> = args::ids(f, key_many).into_iter().collect();
        if let Some(id) = args::int(f, key_one) {
            wanted.insert(id);
        }
        if wanted.is_empty() {
            return None;
        }
        let mut other: Vec<i64> = records
            .iter()
            .filter_map(get)
            .filter(|id| !wanted.contains(id))
            .collect();
        other.sort_unstable();
        other.dedup();
        (!other.is_empty()).then(|| {
            format!(
                "Warning: Kimai returned records of {label} {} which were not requested: it ignores a {label} filter whose id is unknown or not accessible to this token, so this list is not filtered by {label}.",
                other.iter().take(5).map(|i| format!("#{i}")).collect::<Vec<_>>().join(", ")
            )
        })
    };
    warnings.extend(check("project", "projects", "project", &|r| r.project));
    warnings.extend(check("activity", "activities", "activity", &|r| r.activity));
    warnings.extend(check("customer", "customers", "customer", &|r| r.customer));
    let row_users: HashSet<i64> = records.iter().filter_map(|r| r.user).collect();
    match &q.scope {
        Scope::One(id) if !row_users.is_empty() && !row_users.contains(id) => warnings.push(format!(
            "Warning: Kimai returned records of other users than user {id}: the token may not see that user's records (it needs view_other_timesheet and access to the user), so Kimai showed the caller's own."
        )),
        Scope::Several(ids) if row_users.iter().any(|u| !ids.contains(u)) => warnings.push(
            "Warning: Kimai returned records of users that were not requested: the token may not see the requested users' records, so Kimai showed the caller's own.".into(),
        ),
        Scope::All if row_users.len() == 1 => {
            let me = ctx.get("/users/me")?.get("id").and_then(args::as_int);
            if me.is_some_and(|me| row_users.contains(&me)) {
                warnings.push("Note: only your own records came back for user_scope = all: either nobody else has matching records or this token may not see other users' records (view_other_timesheet).".into());
            }
        }
        _ => {}
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    fn query(q: &ListQuery) -> Vec<(String, String)> {
        q.request.query.clone()
    }

    #[test]
    fn filters_become_kimai_query_parameters() {
        let q = build_query(&f(json!({
            "user_scope": "all", "projects": [3, 3, 4], "tags": ["a b"], "begin": "2026-03-01", "end": "2026-03-31",
            "exported": 0, "order_by": "begin", "order": "ASC", "term": "x", "size": 900, "page": 2
        })))
        .unwrap();
        assert_eq!(
            query(&q),
            vec![
                ("user".into(), "all".into()),
                ("projects[]".into(), "3".into()),
                ("projects[]".into(), "4".into()),
                ("tags[]".into(), "a b".into()),
                ("begin".into(), "2026-03-01T00:00:00".into()),
                ("end".into(), "2026-03-31T23:59:59".into()),
                ("exported".into(), "0".into()),
                ("orderBy".into(), "begin".into()),
                ("order".into(), "ASC".into()),
                ("term".into(), "x".into()),
            ]
        );
        assert_eq!((q.page, q.size), (2, 500));
        assert!(q.notes[0].contains("500"));
    }

    #[test]
    fn offsets_are_refused_with_the_fix() {
        let e = build_query(&f(json!({"begin": "2026-03-01T10:00:00+02:00"})))
            .err()
            .unwrap();
        assert!(matches!(e, ToolError::Invalid(m) if m.contains("without an offset")));
        let e = build_query(&f(json!({"end": "2026-03-01T10:00:00Z"})))
            .err()
            .unwrap();
        assert!(matches!(e, ToolError::Invalid(m) if m.contains("filters.end")));
        let e = build_query(&f(json!({"begin": "2026-03-02", "end": "2026-03-01"})))
            .err()
            .unwrap();
        assert!(matches!(e, ToolError::Invalid(m) if m.contains("before")));
    }

    #[test]
    fn modified_after_is_utc() {
        assert_eq!(
            utc("2026-03-01T10:00:00+02:00").unwrap(),
            "2026-03-01T08:00:00"
        );
        assert_eq!(utc("2026-03-01T00:30:00Z").unwrap(), "2026-03-01T00:30:00");
        assert_eq!(
            utc("2026-03-01T01:00:00-0300").unwrap(),
            "2026-03-01T04:00:00"
        );
        assert_eq!(utc("2026-03-01").unwrap(), "2026-03-01T00:00:00");
    }

    #[test]
    fn specific_scope_needs_a_numeric_user() {
        assert!(matches!(
            build_query(&f(json!({"user_scope": "specific"}))),
            Err(ToolError::Invalid(_))
        ));
        assert!(
            matches!(build_query(&f(json!({"user_scope": "specific", "user": "anna"}))), Err(ToolError::Invalid(m)) if m.contains("numeric"))
        );
        let q = build_query(&f(json!({"user_scope": "specific", "user": "7"}))).unwrap();
        assert_eq!(q.scope, Scope::One(7));
        assert!(matches!(
            build_query(&f(json!({"user": "7"}))),
            Err(ToolError::Invalid(_))
        ));
    }

    #[test]
    fn write_bodies_send_only_what_was_given_in_kimai_formats() {
        let b = body(&f(json!({"project": 1, "activity": 2.0, "begin": "2026-03-01T09:00", "break": 1800, "description": "x"}))).unwrap();
        assert_eq!(
            Value::Object(b),
            json!({"project": 1, "activity": 2, "begin": "2026-03-01T09:00:00", "break": "0:30:00", "description": "x"})
        );
        let b = body(&f(json!({"break": "45m"}))).unwrap();
        assert_eq!(b["break"], json!("0:45:00"));
        assert!(
            body(&f(json!({"break": "30"}))).is_err(),
            "a bare number string is ambiguous"
        );
        assert!(body(&f(json!({"begin": "2026-03-01T09:00:00Z"}))).is_err());
    }

    #[test]
    fn meta_filter_terms_and_matching() {
        let m = MetaFilter {
            name: "ticket".into(),
            value: Some("T-1".into()),
        };
        assert_eq!(m.term().as_deref(), Some("ticket:T-1"));
        assert!(m.matches(&json!({"metaFields": [{"name": "Ticket", "value": "t-1"}]})));
        assert!(!m.matches(&json!({"metaFields": [{"name": "ticket", "value": "T-10"}]})));
        let m = MetaFilter {
            name: "ticket".into(),
            value: Some("a b".into()),
        };
        assert_eq!(m.term().as_deref(), Some("ticket:*"));
        let m = MetaFilter {
            name: "ticket".into(),
            value: Some(String::new()),
        };
        assert_eq!(m.term(), None);
        assert!(m.matches(&json!({"metaFields": []})));
        let m = MetaFilter {
            name: "ticket".into(),
            value: None,
        };
        assert!(!m.matches(&json!({"metaFields": [{"name": "ticket", "value": ""}]})));
    }
}
