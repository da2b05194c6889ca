//! `timesheet`: list, read, write and analyse time records (`/api/timesheets`).
//!
//! `list` reads one page with names (`full=true`) and Kimai's totals from the pagination
//! headers; with `calculate_stats` or a `meta` filter it reads every page in the plain shape
//! (see `paging`), adds each up as it arrives and takes the names from `lookups`. Writes send only the fields the caller gave (Kimai rejects fields a
//! token may not set, and invents nothing we would have to guess). Traps handled here, each with
//! a test: filter datetimes are local without offset (an offset is refused with the fix), a
//! date-only `end` is the end of that day, `break` is written as `H:MM:SS`, the export
//! endpoint toggles (so batch export reads first and never un-exports), repeated ids are
//! handled once, and filters that Kimai silently ignored are pointed out.
//!
//! Files: this one holds the tool, its schema, the action dispatch and the user guide;
//! `write` create/update/meta, `query` the list filters as a Kimai query, `list` the list
//! itself with statistics and the warnings about ignored filters.

mod list;
mod query;
mod write;

use super::common::preview;
use super::{Context, Output, Tool, ToolError, args, fanout, rows, text, users};
use crate::kimai::Request;
use list::list;
use serde_json::{Map, Value, json};
use write::{create, meta_update, update};

pub const TOOL: Tool = Tool {
    name: "timesheet",
    title: "Timesheets",
    description: "Time records. list: one page with names (filters: user_scope self/all/specific, users, projects, activities, customers, tags, begin/end local time without offset, exported/active/billable, term, order, page, size ≤ 500); calculate_stats=true adds statistics over every matching record. get, delete, duplicate, export_toggle: id; create: data.project and data.activity (no data.end: a running record); update: id + data; meta_update: id + meta; batch_delete, batch_export: ids (dry_run previews); user_guide: user scopes and the users you can see.",
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
            "dry_run": {"type": "boolean", "description": "batch_delete, batch_export: only show what would change"},
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
        "batch_delete" | "batch_export" if preview::wanted(a) => {
            args::refuse_unused(a, action, &["ids", "dry_run"])?;
            let ids = args::need_ids(a, "ids", &format!("for action '{action}'"))?;
            let export = action == "batch_export";
            let changed = std::sync::atomic::AtomicU64::new(0);
            let seconds = std::sync::atomic::AtomicU64::new(0);
            let lines = preview::lines(ctx, &ids, |id| {
                let (row, r) = preview::timesheet_line(ctx, id)?;
                let exported = r.get("exported").and_then(Value::as_bool) == Some(true);
                if export && exported {
                    return Ok(format!("{row} — already exported: unchanged"));
                }
                changed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let d = r.get("duration").and_then(args::as_int).unwrap_or(0).max(0);
                seconds.fetch_add(d as u64, std::sync::atomic::Ordering::SeqCst);
                Ok(row)
            })?;
            let changed = changed.into_inner();
            let hours = seconds.into_inner() as f64 / 3600.0;
            let verb = if export { "mark as exported" } else { "delete" };
            Ok(preview::output(
                preview::heading(&format!(
                    "{action} would {verb} {changed} of {} timesheets ({hours:.2} h):",
                    ids.len()
                )),
                lines,
                Some("Send the same call without dry_run to do it.".into()),
            ))
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

#[cfg(test)]
mod tests;
