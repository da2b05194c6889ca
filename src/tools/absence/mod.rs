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

//!
//! Files: this one holds the tool and its action dispatch; `names` the absence types and how
//! users and types are named in answers; `read` reads
//! the absences of a scope, `entry` turns one into a line, `report` answers list, statistics,
//! types and attendance, `write` creates, approves, rejects and deletes.

mod entry;
mod names;
mod read;
mod report;
mod write;

use super::args::{self, Args};
use super::{Context, Output, Tool, ToolError};
use report::{attendance, list, statistics, types};
use serde_json::{Value, json};
use write::{batch, create, single};

pub use names::TYPES;
pub use report::today;
pub use write::{MAX_CHUNK_DAYS, split};

pub const TOOL: Tool = Tool {
    name: "absence",
    title: "Absences",
    description: "Absences from Kimai's WorkContract plugin. list, statistics (totals by type, status, user; half days count 0.5), attendance (who is present on a day): filters.user_scope self/specific/all, begin/end YYYY-MM-DD, status. types: absence types. create: data {date, type, comment, end?, halfDay?, duration?, user?}; long ranges are split. request, approve, reject, delete: id; batch_approve, batch_reject, batch_delete: ids (dry_run previews).",
    schema,
    read_only: false,
    destructive: true,
    idempotent: false,
    handler,
};

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
            "ids": {"type": "array", "items": {"type": "integer"}},
            "dry_run": {"type": "boolean", "description": "only show what would change"},
            "id": {"type": "integer"},
            "filters": {
                "type": "object",
                "properties": {
                    "user_scope": {"type": "string", "enum": ["self", "all", "specific"], "default": "self",
                        "description": "self (list default), all (statistics, attendance default), specific (user)"},
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
            args::refuse_unused(a, action, &["ids", "dry_run"])?;
            let ids = args::need_ids(a, "ids", &format!("for action '{action}'"))?;
            if crate::tools::common::preview::wanted(a) {
                return write::batch_preview(ctx, action, &ids);
            }
            batch(ctx, action, &ids)
        }
        "attendance" => {
            args::refuse_unused(a, action, &["date", "data", "filters"])?;
            attendance(ctx, a)
        }
        other => Err(ToolError::Invalid(format!("unknown action '{other}'"))),
    }
}

#[cfg(test)]
mod tests;
