//! `absence` actions that write: `create` (a range split into the plugin's chunks), the
//! approval workflow (`request`, `approve`, `reject`), `delete`, and their batch forms.

use super::entry::Entry;
use super::names::{TYPES, label};
use crate::kimai::Request;
use crate::tools::args::{self, Args};
use crate::tools::common::day_range::date_arg;
use crate::tools::common::work_contract::{PLUGIN_MISSING, explain_404, is_404};
use crate::tools::time::{self, Date};
use crate::tools::{Context, Output, ToolError, fanout};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest range one create request may cover (observed plugin limit, §9.1).
pub const MAX_CHUNK_DAYS: i64 = 30;

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

pub(super) fn create(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
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

pub(super) fn single(ctx: &Context, action: &str, id: i64) -> Result<Output, ToolError> {
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

/// `batch_*` with `dry_run`: the absences each id names (read from every user the token can
/// see, three years back and two ahead — Kimai has no single-absence GET), and what the call
/// would do to them.
pub(super) fn batch_preview(ctx: &Context, action: &str, ids: &[i64]) -> Result<Output, ToolError> {
    use crate::tools::common::preview;
    let today =
        crate::tools::time::Date::from_days(crate::tools::rows::now_unix().div_euclid(86_400));
    let q = super::read::Query {
        begin: Some(today.add_days(-3 * 366)),
        end: Some(today.add_days(2 * 366)),
        status: "all",
    };
    let read = super::read::read(ctx, &super::read::Scope::All, &q)?;
    let verb = match action {
        "batch_delete" => "delete",
        "batch_approve" => "approve",
        _ => "reject",
    };
    let mut lines = Vec::new();
    let mut n = 0;
    for id in ids {
        match read
            .absences
            .iter()
            .find(|a| a.get("id").and_then(crate::tools::args::as_int) == Some(*id))
        {
            Some(a) => {
                n += 1;
                lines.push(Entry::from(a).line());
            }
            None => lines.push(format!(
                "ID {id}: would fail — not among the absences this token can read"
            )),
        }
    }
    let mut footer: Vec<String> = read.notes;
    footer.push("Send the same call without dry_run to do it.".into());
    Ok(preview::output(
        preview::heading(&format!(
            "{action} would {verb} {n} of {} absences:",
            ids.len()
        )),
        lines,
        Some(footer.join("\n")),
    ))
}

pub(super) fn batch(ctx: &Context, action: &str, ids: &[i64]) -> Result<Output, ToolError> {
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
