//! `"dry_run": true` on the bulk and destructive actions (`batch_delete`, `batch_export`,
//! `batch_approve`, `batch_reject`, entity `delete`, `lock_month`): what the call would change —
//! ids, names, dates, hours, and what Kimai would delete along with it — read with GET requests
//! only, so that a person can check before anything is written. Unknown to the Python server,
//! and additive: without `dry_run` nothing changes.

use crate::kimai::Request;
use crate::tools::{Context, Output, ToolError, args, fanout, rows, text};
use serde_json::{Map, Value};

/// Whether the call asks for a preview.
pub fn wanted(a: &Map<String, Value>) -> bool {
    args::boolean(a, "dry_run") == Some(true)
}

/// The heading every preview starts with.
pub fn heading(what: &str) -> String {
    format!("Dry run (nothing was changed): {what}")
}

/// One line per id, read with `line` (a GET each, 10 at a time); an id that cannot be read is
/// named with why, as the real call would fail on it.
pub fn lines(
    ctx: &Context,
    ids: &[i64],
    line: impl Fn(i64) -> Result<String, ToolError> + Sync,
) -> Result<Vec<String>, ToolError> {
    let results = fanout::parallel(ctx, ids, 10, |id| match line(*id) {
        Ok(l) => l,
        Err(e) => format!("ID {id}: would fail — {}", e.message()),
    });
    if ctx.is_cancelled() {
        return Err(ToolError::Failed("cancelled".into()));
    }
    Ok(results.into_iter().flatten().collect())
}

/// A timesheet as its row (date, times, hours, customer / project / activity, description).
pub fn timesheet_line(ctx: &Context, id: i64) -> Result<(String, Value), ToolError> {
    let r = ctx.get(&format!("/timesheets/{id}"))?;
    let row = rows::row(&r, rows::RowOpts::default(), rows::now_unix());
    Ok((row, r))
}

/// How many timesheets Kimai would delete together with a customer, project or activity
/// (`filter` is `customers[]`, `projects[]` or `activities[]`), from the count header of a
/// one-record page; `None` when the token may not list them.
pub fn timesheet_count(ctx: &Context, filter: &str, id: i64) -> Option<u64> {
    let r = ctx
        .call(
            &Request::get("/timesheets")
                .query(filter, id)
                .query("user", "all")
                .query("size", 1),
        )
        .ok()?;
    r.page.map(|p| p.total_count).or_else(|| {
        r.body
            .as_array()
            .map(|a| a.len() as u64)
            .filter(|n| *n == 0)
    })
}

/// A plain name of a Kimai JSON record (`name`, else `username`, else `title`).
pub fn name_of(v: &Value) -> String {
    ["name", "username", "title"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(text::safe)
        .unwrap_or_else(|| "(no name)".into())
}

/// The preview as the tool's answer.
pub fn output(heading_text: String, lines: Vec<String>, footer: Option<String>) -> Output {
    let mut out = heading_text;
    for l in lines {
        out.push_str("\n- ");
        out.push_str(&l);
    }
    if let Some(f) = footer {
        out.push('\n');
        out.push_str(&f);
    }
    Output::text(out)
}
