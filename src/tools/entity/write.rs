//! `entity` actions `get`, `create`, `update`, `delete` and `batch_delete`: the body Kimai
//! gets (only the caller's fields, durations and dates converted, the booleans Kimai would
//! flip sent explicitly), the checks before a create, custom fields, and the cascade notes.

use super::failures::extra_fields;
use super::types::Type;
use crate::kimai::Request;
use crate::tools::common::missing_route::needs;
use crate::tools::common::preview;
use crate::tools::common::user_render::render_user;
use crate::tools::render;
use crate::tools::{Context, Output, ToolError, args, fanout, text, time};
use serde_json::{Map, Value, json};

fn show(ty: Type, v: &Value) -> String {
    match ty {
        Type::User => render_user(v),
        _ => render::entity(ty.kind(), v, true),
    }
}

pub(super) fn get(ctx: &Context, ty: Type, id: i64) -> Result<Output, ToolError> {
    let body = ctx
        .get(&format!("{}/{id}", ty.path()))
        .map_err(|e| match ty {
            Type::Invoice => needs(e, "reading invoices", "Kimai 2.22 or later"),
            _ => e,
        })?;
    Ok(Output::text(format!(
        "{} {id}\n{}",
        capitalize(ty.name()),
        show(ty, &body)
    )))
}

/// A date for a project body: `YYYY-MM-DD` on create, `YYYY-MM-DDTHH:MM:SS` on update
/// (kimai/kimai#4132). Accepts either form from the caller.
fn project_date(key: &str, v: &Value, create: bool) -> Result<Value, ToolError> {
    let s = v.as_str().unwrap_or("");
    if s.trim().is_empty() {
        // Clearing a date: an empty value is what Kimai's form reads as "no date".
        return Ok(json!(""));
    }
    let edge = if key == "end" {
        time::DayEdge::End
    } else {
        time::DayEdge::Start
    };
    let local = time::parse_local(&format!("data.{key}"), s, edge).map_err(ToolError::Invalid)?;
    Ok(if create {
        json!(local.date.to_string())
    } else {
        json!(local.to_string())
    })
}

/// The body Kimai gets: exactly the caller's fields, with durations, dates and (on create)
/// the booleans Kimai would otherwise turn into false converted.
pub(super) fn body(
    ty: Type,
    data: &Map<String, Value>,
    create: bool,
) -> Result<Map<String, Value>, ToolError> {
    let mut out = Map::new();
    for (k, v) in data {
        let v = match (ty, k.as_str()) {
            (_, "timeBudget") => match v {
                Value::String(s) if s.trim().is_empty() => json!(""),
                other => json!(time::hms(
                    time::parse_duration("data.timeBudget", other).map_err(ToolError::Invalid)?
                )),
            },
            // `lockedUntil` is a plain day in Kimai (its `project-lockdown` work: a date-only
            // field whose time is dropped), read with the form's date format like the other
            // project dates: `YYYY-MM-DD` on POST, `YYYY-MM-DDTHH:MM:SS` on PATCH.
            (Type::Project, "start" | "end" | "orderDate" | "lockedUntil") => {
                project_date(k, v, create)?
            }
            (Type::Team, "members") => {
                // §7.9: an omitted `teamlead` would be false anyway; sent explicitly so that
                // the request says what it means.
                let members: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        json!({
                            "user": m.get("user").cloned().unwrap_or(Value::Null),
                            "teamlead": m.get("teamlead").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect();
                Value::Array(members)
            }
            (Type::Invoice, "paymentDate") => {
                let s = v.as_str().unwrap_or("");
                if !s.is_empty() && time::parse_date(s).is_none() {
                    return Err(ToolError::Invalid(format!(
                        "'data.paymentDate' must be a date YYYY-MM-DD, got {}",
                        text::quote(s)
                    )));
                }
                v.clone()
            }
            (_, "metaFields") => {
                // Custom fields go through the `/meta` endpoints, not the entity form.
                continue;
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    if create {
        // POST /users, /tags submit the complete form: an omitted boolean becomes false, which
        // would create a disabled user or an invisible tag (§7.9).
        match ty {
            Type::User => {
                out.entry("enabled").or_insert(json!(true));
            }
            Type::Tag => {
                out.entry("visible").or_insert(json!(true));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Fields a create must have, checked before any request.
fn require(ty: Type, data: &Map<String, Value>) -> Result<(), ToolError> {
    let need: &[&str] = match ty {
        Type::Customer => &["name", "country", "currency", "timezone"],
        Type::Project => &["name", "customer"],
        Type::Activity | Type::Tag => &["name"],
        Type::Team => &["name", "members"],
        Type::User => &[
            "username",
            "email",
            "language",
            "locale",
            "timezone",
            "plainPassword",
        ],
        _ => &[],
    };
    let missing: Vec<&str> = need
        .iter()
        .copied()
        .filter(|k| match data.get(*k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        })
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::Invalid(format!(
            "creating a {} needs data.{}",
            ty.name(),
            missing.join(", data.")
        )));
    }
    if ty == Type::Team {
        check_team_lead(data)?;
    }
    if ty == Type::User
        && let Some(p) = args::string(data, "plainPassword")
        && p.chars().count() < 8
    {
        return Err(ToolError::Invalid(
            "'data.plainPassword' must have at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn check_team_lead(data: &Map<String, Value>) -> Result<(), ToolError> {
    if let Some(members) = data.get("members").and_then(Value::as_array) {
        let lead = members
            .iter()
            .any(|m| m.get("teamlead").and_then(Value::as_bool) == Some(true));
        if !lead {
            return Err(ToolError::Invalid(
                "'data.members' needs at least one member with \"teamlead\": true (Kimai requires a team lead)".into(),
            ));
        }
    }
    Ok(())
}

/// Sets the caller's custom fields after a create/update (one `PATCH …/meta` per field, in
/// order); returns the entity as the last write left it.
fn write_meta(
    ctx: &Context,
    ty: Type,
    id: i64,
    data: &Map<String, Value>,
    entity: Value,
) -> Result<Value, ToolError> {
    let Some(fields) = data.get("metaFields").and_then(Value::as_array) else {
        return Ok(entity);
    };
    let mut last = entity;
    for m in fields {
        let req = Request::patch(
            format!("{}/{id}/meta", ty.path()),
            json!({"name": m.get("name"), "value": m.get("value")}),
        );
        last = ctx.call(&req)?.body;
    }
    Ok(last)
}

pub(super) fn create(
    ctx: &Context,
    ty: Type,
    data: &Map<String, Value>,
) -> Result<Output, ToolError> {
    require(ty, data)?;
    let body = body(ty, data, true)?;
    let created = ctx
        .call(&Request::post(ty.path(), Value::Object(body.clone())))
        .map_err(|e| extra_fields(e, ty, &body, true))?
        .body;
    let id = created.get("id").and_then(args::as_int);
    let created = match (id, data.contains_key("metaFields")) {
        (Some(id), true) => write_meta(ctx, ty, id, data, created).map_err(|e| {
            ToolError::Failed(format!(
                "the {} was created (ID {id}) but setting its custom fields failed: {}",
                ty.name(),
                e.message()
            ))
        })?,
        _ => created,
    };
    let mut out = format!("Created {}\n{}", ty.name(), show(ty, &created));
    if ty == Type::User && !data.contains_key("enabled") {
        out.push_str("\nNote: the user was created enabled (Kimai would disable a user created without 'enabled').");
    }
    if ty == Type::Tag && !data.contains_key("visible") {
        out.push_str("\nNote: the tag was created visible (Kimai would hide a tag created without 'visible').");
    }
    Ok(Output::text(out))
}

pub(super) fn update(
    ctx: &Context,
    ty: Type,
    id: i64,
    data: &Map<String, Value>,
) -> Result<Output, ToolError> {
    if data.is_empty() {
        return Err(ToolError::Invalid(
            "'data' is empty: name at least one field to change".into(),
        ));
    }
    if ty == Type::Team {
        check_team_lead(data)?;
    }
    let body = body(ty, data, false)?;
    let path = format!("{}/{id}", ty.path());
    let updated = if body.is_empty() {
        // Only custom fields: nothing for the entity form.
        ctx.get(&path)?
    } else {
        ctx.call(&Request::patch(path, Value::Object(body.clone())))
            .map_err(|e| match ty {
                Type::Invoice => needs(e, "updating an invoice", "Kimai 2.68 or later"),
                _ => extra_fields(e, ty, &body, false),
            })?
            .body
    };
    let updated = write_meta(ctx, ty, id, data, updated)?;
    let mut out = format!("Updated {}\n{}", ty.name(), show(ty, &updated));
    if ty == Type::Team && data.contains_key("members") {
        out.push_str("\nNote: the member list was replaced by the one sent.");
    }
    Ok(Output::text(out))
}

fn delete_one(ctx: &Context, ty: Type, id: i64) -> Result<(), ToolError> {
    ctx.call(&Request::delete(format!("{}/{id}", ty.path())))
        .map_err(|e| match ty {
            Type::Invoice => needs(e, "deleting an invoice", "Kimai 2.66 or later"),
            Type::Customer | Type::Project | Type::Activity => needs(
                e,
                "deleting customers, projects and activities",
                "Kimai 2.25 or later",
            ),
            Type::Holiday => needs(
                e,
                "deleting public holidays",
                "the WorkContract (Working hours) plugin",
            ),
            _ => e,
        })?;
    Ok(())
}

fn cascade_note(ty: Type) -> &'static str {
    match ty {
        Type::Customer => " (Kimai also deleted its projects, activities and timesheets)",
        Type::Project => " (Kimai also deleted its activities and timesheets)",
        Type::Activity => " (Kimai also deleted its timesheets)",
        Type::Tag => " (it was removed from every record)",
        _ => "",
    }
}

/// One record as a preview line: its name, for a customer, project or activity the number of
/// timesheets Kimai deletes with it, and for a project or activity its parent.
fn preview_line(ctx: &Context, ty: Type, id: i64) -> Result<String, ToolError> {
    let v = ctx.get(&format!("{}/{id}", ty.path()))?;
    let mut l = format!("{} {id}: {}", ty.name(), preview::name_of(&v));
    if let Some(parent) = v.get("parentTitle").and_then(Value::as_str) {
        l.push_str(&format!(" ({})", crate::tools::text::safe(parent)));
    }
    let filter = match ty {
        Type::Customer => Some("customers[]"),
        Type::Project => Some("projects[]"),
        Type::Activity => Some("activities[]"),
        _ => None,
    };
    if let Some(f) = filter {
        match preview::timesheet_count(ctx, f, id) {
            Some(n) => l.push_str(&format!(
                "; Kimai would also delete its {n} timesheet(s){}",
                match ty {
                    Type::Customer => " and its projects and activities",
                    Type::Project => " and its activities",
                    _ => "",
                }
            )),
            None => l.push_str(
                "; its timesheets cannot be counted with this token (Kimai deletes them too)",
            ),
        }
    }
    Ok(l)
}

/// `delete` / `batch_delete` with `dry_run`: what would be deleted.
pub(super) fn delete_preview(ctx: &Context, ty: Type, ids: &[i64]) -> Result<Output, ToolError> {
    let lines = preview::lines(ctx, ids, |id| preview_line(ctx, ty, id))?;
    let n = lines.iter().filter(|l| !l.contains(": would fail")).count();
    Ok(preview::output(
        preview::heading(&format!(
            "would delete {n} of {} {}:",
            ids.len(),
            ty.plural()
        )),
        lines,
        Some("Send the same call without dry_run to do it.".into()),
    ))
}

pub(super) fn delete(ctx: &Context, ty: Type, id: i64) -> Result<Output, ToolError> {
    delete_one(ctx, ty, id)?;
    Ok(Output::text(format!(
        "Deleted {} {id}{}.",
        ty.name(),
        cascade_note(ty)
    )))
}

pub(super) fn batch_delete(ctx: &Context, ty: Type, ids: &[i64]) -> Result<Output, ToolError> {
    let b = fanout::batch(ctx, ids, "", |id| delete_one(ctx, ty, id).map(|()| true))?;
    let mut out = format!("Batch delete: {}", b.summary("deleted", ty.plural()));
    if !b.done.is_empty() {
        out.push_str(cascade_note(ty));
    }
    Ok(Output::text(out))
}

/// `s` with its first letter in upper case.
pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
