//! `timer`: the running-timer actions on the caller's own records.
//!
//! Kimai has no "start" endpoint: a record without `end` is a running one (contract §7.2), and
//! when only one may run, Kimai stops the caller's older running record by itself. So `start`
//! reads the running records first and reports which ones Kimai stopped. `start` never sends
//! `begin` (Kimai uses "now" in the user's timezone, rounded by its rules). Favorites exist from
//! Kimai 2.66 on; an older Kimai answers 404 and the hint says so.

use super::args;
use super::rows::{self, RowOpts};
use super::time::{self, DayEdge};
use super::{Context, Output, Tool, ToolError, text};
use crate::kimai::Request;
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "timer",
    title: "Timers",
    description: "Running timers of the current user. action=start: start a timer now \
        (data.project and data.activity required; data.description, data.tags optional; a \
        running timer is stopped by Kimai when only one may run); stop/restart: stop a running \
        record or start a new one like it (id); active: the running records; recent: the latest \
        record per project/activity (size 1-100, optional begin as local time) — good to pick \
        one to restart; favorites, favorite, unfavorite (id): favorite records (Kimai 2.66+).",
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
            "id": {"type": "integer", "description": "Timesheet id (stop, restart, favorite, unfavorite)."},
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
            "begin": {"type": "string", "description": "recent: only records since this local time (no offset)."}
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
    let before: Vec<i64> = before
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("id").and_then(args::as_int))
        .collect();
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
    if !before.is_empty() {
        // Which of the earlier running records did Kimai stop?
        let after = ctx.get("/timesheets/active")?;
        let still: Vec<i64> = after
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("id").and_then(args::as_int))
            .collect();
        let stopped: Vec<String> = before
            .iter()
            .filter(|b| !still.contains(b))
            .map(|b| b.to_string())
            .collect();
        if !stopped.is_empty() {
            out.push_str(&format!(
                "\nKimai stopped the previously running timer ID {} (only one may run at a time).",
                stopped.join(", ")
            ));
        }
    }
    Ok(Output::text(out))
}
