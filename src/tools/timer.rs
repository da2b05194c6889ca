//! `timer`: the running-timer actions on the caller's own records.
//!
//! Kimai has no "start" endpoint: a record without `end` is a running one (contract §7.2), and
//! Kimai then stops the caller's oldest running records beyond its limit of running records
//! (`timesheet.active_entries.hard_limit`, 1 unless changed; `TimesheetService::
//! stopActiveEntries`). So `start` reads the running records, posts the new one, and reports
//! which ones that rule stopped: two requests. The limit is a system setting, read from
//! `/config/timesheet` once an hour per Kimai, only when something is running. `start` never sends
//! `begin` (Kimai uses "now" in the user's timezone, rounded by its rules). Favorites exist from
//! Kimai 2.66 on; an older Kimai answers 404 and the hint says so.

use super::args;
use super::rows::{self, RowOpts};
use super::time::{self, DayEdge};
use super::{Context, Output, Tool, ToolError, text};
use crate::kimai::Request;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub const TOOL: Tool = Tool {
    name: "timer",
    title: "Timers",
    description: "The current user's running timers. start: data.project and data.activity (Kimai stops the older timer when only one may run); stop, restart: id; active; recent: latest record per project/activity, to restart one; favorites, favorite, unfavorite (Kimai 2.66+).",
    schema,
    read_only: false,
    destructive: false,
    idempotent: false,
    handler,
};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["start", "stop", "restart", "active", "recent", "favorites", "favorite", "unfavorite"]},
            "id": {"type": "integer"},
            "data": {
                "type": "object",
                "description": "start: what to track.",
                "properties": {
                    "project": {"type": "integer"},
                    "activity": {"type": "integer"},
                    "description": {"type": "string"},
                    "tags": {"type": "string", "description": "Comma-separated tag names."}
                },
                "additionalProperties": false
            },
            "size": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10, "description": "recent: how many."},
            "begin": {"type": "string", "description": "recent: since this local time"}
        },
        "required": ["action"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let action = args::action(a);
    let now = rows::now_unix();
    let opts = RowOpts::default();
    match action {
        "start" => {
            args::refuse_unused(a, action, &["data"])?;
            start(ctx, args::object(a, "data"), now)
        }
        "stop" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(
                a,
                "id",
                "for action 'stop' (find running ids with action=active)",
            )?;
            let r = ctx
                .call(&Request::patch(format!("/timesheets/{id}/stop"), json!({})))?
                .body;
            let secs = rows::seconds(&r, now);
            Ok(Output::text(format!(
                "Stopped timer ID {id}. Duration: {} h ({}).",
                time::hours(secs),
                time::hms(secs)
            )))
        }
        "restart" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(
                a,
                "id",
                "for action 'restart' (find ids with action=recent)",
            )?;
            let r = ctx
                .call(&Request::patch(
                    format!("/timesheets/{id}/restart"),
                    json!({}),
                ))?
                .body;
            let new_id = r
                .get("id")
                .and_then(args::as_int)
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".into());
            Ok(Output::text(format!(
                "Restarted: new running timer ID {new_id}, like timesheet ID {id}.\n{}",
                rows::row(&r, opts, now)
            )))
        }
        "active" => {
            args::refuse_unused(a, action, &[])?;
            let list = ctx.get("/timesheets/active")?;
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(Output::text("No timer is running."));
            }
            let mut out = vec![format!("{} running timer(s):", items.len())];
            out.extend(items.iter().map(|r| rows::row(r, opts, now)));
            out.push("Stop one with timer action=stop id=<ID>.".into());
            Ok(Output::text(out.join("\n")))
        }
        "recent" => {
            args::refuse_unused(a, action, &["size", "begin"])?;
            let size = args::int(a, "size").unwrap_or(10).clamp(1, 100);
            let mut req = Request::get("/timesheets/recent").query("size", size);
            if let Some(b) = args::string(a, "begin") {
                req = req.query(
                    "begin",
                    time::parse_local("begin", b, DayEdge::Start).map_err(ToolError::Invalid)?,
                );
            }
            let items = ctx.call(&req)?.body.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(Output::text("No recent records."));
            }
            let mut out = vec![format!(
                "{} recent record(s), the latest per project and activity:",
                items.len()
            )];
            out.extend(items.iter().map(|r| rows::row(r, opts, now)));
            out.push("Restart one with timer action=restart id=<ID>.".into());
            Ok(Output::text(out.join("\n")))
        }
        "favorites" => {
            args::refuse_unused(a, action, &[])?;
            let items = ctx
                .get("/favorites/timesheets")?
                .as_array()
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                return Ok(Output::text(
                    "No favorites yet. Mark a record of yours with timer action=favorite id=<ID>.",
                ));
            }
            let mut out = vec![format!("{} favorite(s):", items.len())];
            out.extend(items.iter().map(|r| rows::row(r, opts, now)));
            out.push("Start one again with timer action=restart id=<ID>.".into());
            Ok(Output::text(out.join("\n")))
        }
        "favorite" | "unfavorite" => {
            args::refuse_unused(a, action, &["id"])?;
            let id = args::need_id(a, "id", &format!("for action '{action}'"))?;
            let path = format!("/favorites/timesheets/{id}");
            if action == "favorite" {
                ctx.call(&Request::post(path, json!({})))?;
                Ok(Output::text(format!(
                    "Timesheet ID {id} added to your favorites."
                )))
            } else {
                ctx.call(&Request::delete(path))?;
                Ok(Output::text(format!(
                    "Timesheet ID {id} removed from your favorites."
                )))
            }
        }
        other => Err(ToolError::Invalid(format!(
            "unknown action '{}'",
            text::safe(other)
        ))),
    }
}

/// How long a Kimai's limit of running records is remembered.
const LIMIT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Kimais whose limit is remembered at most.
const MAX_LIMITS: usize = 256;

/// Kimai's limit of running records per user, by Kimai URL (a system setting, the same for every
/// token): read from `/config/timesheet` and remembered [`LIMIT_TTL`]. `None` when the token
/// may not read it.
fn running_limit(ctx: &Context) -> Option<usize> {
    type Limits = HashMap<String, (usize, Instant)>;
    static LIMITS: OnceLock<Mutex<Limits>> = OnceLock::new();
    let limits = LIMITS.get_or_init(|| Mutex::new(HashMap::new()));
    let url = ctx.kimai_url().to_string();
    let now = Instant::now();
    if let Some(&(n, at)) = limits.lock().unwrap_or_else(|e| e.into_inner()).get(&url)
        && now.duration_since(at) < LIMIT_TTL
    {
        return Some(n);
    }
    let n = ctx
        .get("/config/timesheet")
        .ok()?
        .get("activeEntriesHardLimit")
        .and_then(args::as_int)
        .filter(|n| *n >= 1)? as usize;
    let mut m = limits.lock().unwrap_or_else(|e| e.into_inner());
    if m.len() >= MAX_LIMITS && !m.contains_key(&url) {
        m.retain(|_, (_, at)| now.duration_since(*at) < LIMIT_TTL);
        if m.len() >= MAX_LIMITS {
            m.clear();
        }
    }
    m.insert(url, (n, now));
    Some(n)
}

fn start(ctx: &Context, data: Option<&Map<String, Value>>, now: i64) -> Result<Output, ToolError> {
    let data = data.ok_or_else(|| {
        ToolError::Invalid(
            "'data' with 'project' and 'activity' is required for action 'start'".into(),
        )
    })?;
    let mut body = Map::new();
    for key in ["project", "activity"] {
        let id = args::int(data, key).filter(|i| *i > 0).ok_or_else(|| {
            ToolError::Invalid(format!("'data.{key}' (an id) is required for action 'start'; find ids with the entity tool or timer action=recent"))
        })?;
        body.insert(key.into(), json!(id));
    }
    for key in ["description", "tags"] {
        if let Some(v) = data.get(key).and_then(Value::as_str) {
            body.insert(key.into(), json!(v));
        }
    }
    let before = ctx.get("/timesheets/active")?;
    // (begin, id) of the running records: Kimai stops the oldest first.
    let mut before: Vec<(String, i64)> = before
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = r.get("id").and_then(args::as_int)?;
            let begin = r
                .get("begin")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Some((begin, id))
        })
        .collect();
    before.sort();
    let limit = if before.is_empty() {
        None
    } else {
        Some(running_limit(ctx))
    };
    let r = ctx
        .call(&Request::post("/timesheets", Value::Object(body)).query("full", "true"))?
        .body;
    let id = r
        .get("id")
        .and_then(args::as_int)
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".into());
    let mut out = format!(
        "Started timer ID {id}.\n{}",
        rows::row(&r, RowOpts::default(), now)
    );
    if let Some(limit) = limit {
        // Kimai's rule: with the new record, the oldest running ones beyond the limit stop.
        let known = limit.is_some();
        let limit = limit.unwrap_or(1);
        let stop = (before.len() + 1).saturating_sub(limit);
        let stopped: Vec<String> = before
            .iter()
            .take(stop)
            .map(|(_, id)| id.to_string())
            .collect();
        if !stopped.is_empty() {
            let rule = match (known, limit) {
                (true, 1) => "only one may run at a time".to_string(),
                (true, n) => format!("at most {n} may run at a time"),
                (false, _) => "Kimai's default of one running timer; its setting cannot be read with this token".to_string(),
            };
            out.push_str(&format!(
                "\nKimai stopped the previously running timer ID {} ({rule}).",
                stopped.join(", ")
            ));
        }
    }
    Ok(Output::text(out))
}
