//! `timesheet` writes: the body of a create or update (only the fields given, `break` as
//! `H:MM:SS`), create, update, and `meta_update` for custom fields.

use crate::kimai::Request;
use crate::tools::args::{self, Args};
use crate::tools::rows::{self, RowOpts};
use crate::tools::time::{self, DayEdge};
use crate::tools::{Context, Output, ToolError, fanout, text};
use serde_json::{Map, Value, json};

/// Builds the body of a create or update from `data`: only the keys given, converted to what
/// Kimai expects.
pub(super) fn body(data: &Args) -> Result<Map<String, Value>, ToolError> {
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

pub(super) fn create(ctx: &Context, data: Option<&Args>) -> Result<Output, ToolError> {
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

pub(super) fn update(ctx: &Context, id: i64, data: Option<&Args>) -> Result<Output, ToolError> {
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

pub(super) fn meta_update(
    ctx: &Context,
    id: i64,
    meta: Option<&Value>,
) -> Result<Output, ToolError> {
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
