//! `meta`: set custom (meta) field values on customers, projects, activities, timesheets and
//! invoices.
//!
//! Customers, projects, activities and timesheets take one `PATCH …/{id}/meta` with
//! `{name, value}` per field (contract §5.2–§5.5), sent in order, stopping at the first
//! failure so that the result says exactly which fields were set. Invoices take all fields in
//! one `PATCH /invoices/{id}/custom-fields` (Kimai 2.56+). Kimai core defines no custom fields:
//! they come from a plugin, and an unknown name is a 404.

use super::common::entity_path::entity_path;
use super::common::missing_route::needs;
use super::{Context, Output, Tool, ToolError, args, text};
use crate::kimai::Request;
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "meta",
    title: "Kimai custom fields",
    description: "Set custom field values on a customer, project, activity, timesheet or invoice: action=update, entity, entity_id, data [{name, value}]. Only fields defined in Kimai exist.",
    schema,
    read_only: false,
    destructive: false,
    idempotent: true,
    handler,
};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "entity": {"type": "string", "enum": ["customer", "project", "activity", "timesheet", "invoice"]},
            "entity_id": {"type": "integer"},
            "action": {"type": "string", "enum": ["update"]},
            "data": {
                "type": "array",
                "description": "The fields to set: [{name, value}]",
                "items": {
                    "type": "object",
                    "required": ["name", "value"],
                    "properties": {
                        "name": {"type": "string"},
                        "value": {"type": ["string", "number", "boolean", "null"]}
                    },
                    "additionalProperties": false
                }
            }
        },
        "required": ["entity", "entity_id", "action"],
        "additionalProperties": false
    })
}

/// A value as Kimai's custom fields store it: text (`null` clears).
fn as_text(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Null => v.clone(),
        Value::Bool(b) => json!(if *b { "1" } else { "0" }),
        other => json!(other.to_string()),
    }
}

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let base = entity_path(a)?;
    let entity = a.get("entity").and_then(Value::as_str).unwrap_or("");
    let id = args::need_id(a, "entity_id", "")?;
    let fields: Vec<(String, Value)> = a
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let name = m.get("name")?.as_str()?.trim();
            (!name.is_empty()).then(|| {
                (
                    name.to_string(),
                    as_text(m.get("value").unwrap_or(&Value::Null)),
                )
            })
        })
        .collect();
    if fields.is_empty() {
        return Err(ToolError::Invalid(
            "'data' must list at least one {name, value} for update".into(),
        ));
    }
    let names: Vec<String> = fields.iter().map(|(n, _)| text::safe(n)).collect();
    if entity == "invoice" {
        let body: Vec<Value> = fields
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        ctx.call(&Request::patch(
            format!("{base}/{id}/custom-fields"),
            Value::Array(body),
        ))
        .map_err(|e| {
            unknown_field(
                needs(e, "invoice custom fields", "Kimai 2.56 or later"),
                &names,
            )
        })?;
    } else {
        for (i, (n, v)) in fields.iter().enumerate() {
            let r = ctx.call(&Request::patch(
                format!("{base}/{id}/meta"),
                json!({"name": n, "value": v}),
            ));
            if let Err(e) = r {
                let e = unknown_field(e, &names[i..=i]);
                if i == 0 {
                    return Err(e);
                }
                return Err(ToolError::Failed(format!(
                    "set {} of {} custom field(s) on {entity} {id} ({}), then '{}' failed: {}",
                    i,
                    fields.len(),
                    names[..i].join(", "),
                    names[i],
                    e.message()
                )));
            }
        }
    }
    Ok(Output::text(format!(
        "Updated {} custom field(s) on {entity} {id}: {}",
        fields.len(),
        names.join(", ")
    )))
}

/// A 404 on a meta write is (for an existing entity) an undefined field name.
fn unknown_field(e: ToolError, names: &[String]) -> ToolError {
    match e {
        ToolError::Kimai(k) if k.status() == Some(404) && !k.is_missing_route() => {
            ToolError::Failed(format!(
                "Kimai answered 404: either the entity does not exist or {} is not a custom field defined for it (custom fields come from a Kimai plugin) ({k})",
                names.join(", ")
            ))
        }
        other => other,
    }
}
