//! `rate`: hourly or fixed rates on customers, projects and activities, for everybody or one
//! user (`GET/POST …/{id}/rates`, `DELETE …/{id}/rates/{rateId}`, contract §5.6).
//!
//! The schema's snake_case data (`internal_rate`, `is_fixed`) goes out as Kimai's camelCase;
//! only the fields the caller gave are sent. Amounts a token may not see (Kimai 2.66 hides
//! them without `view_rate_*`) show as "not visible", never as 0.

use super::common::entity_path::entity_path;
use super::render;
use super::{Context, Output, Tool, ToolError, args};
use crate::kimai::Request;
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "rate",
    title: "Kimai rates",
    description: "Rates of a customer, project or activity: list, add (data.rate; hourly unless data.is_fixed; data.user for one user), delete (rate_id). Kimai prices a record with the most specific rate (activity, then project, then customer; a user's own first). Needs edit rights on the entity.",
    schema,
    read_only: false,
    destructive: true,
    idempotent: false,
    handler,
};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "entity": {"type": "string", "enum": ["customer", "project", "activity"]},
            "entity_id": {"type": "integer"},
            "action": {"type": "string", "enum": ["list", "add", "delete"]},
            "rate_id": {"type": "integer", "description": "delete: the rate's id (see list)"},
            "data": {
                "type": "object",
                "description": "add: the rate",
                "properties": {
                    "user": {"type": "integer", "description": "Only for this user; omit for everybody."},
                    "rate": {"type": "number", "minimum": 0},
                    "internal_rate": {"type": "number", "minimum": 0, "description": "Internal cost rate"},
                    "is_fixed": {"type": "boolean", "description": "A fixed amount per record instead of per hour"}
                },
                "additionalProperties": false
            }
        },
        "required": ["entity", "entity_id", "action"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let base = entity_path(a)?;
    let entity = a.get("entity").and_then(Value::as_str).unwrap_or("");
    let id = args::need_id(a, "entity_id", "")?;
    let action = args::action(a);
    let path = format!("{base}/{id}/rates");
    match action {
        "list" => {
            args::refuse_unused(a, action, &["entity", "entity_id"])?;
            let rates = ctx.get(&path)?;
            let items = rates.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(Output::text(format!(
                    "No rates on {entity} {id}: Kimai prices its records with a broader rate or the user's hourly rate preference."
                )));
            }
            let blocks: Vec<String> = items.iter().map(render::rate).collect();
            Ok(Output::text(format!(
                "{} rate(s) on {entity} {id}:\n\n{}",
                blocks.len(),
                blocks.join("\n\n")
            )))
        }
        "add" => {
            args::refuse_unused(a, action, &["entity", "entity_id", "data"])?;
            let data = args::object(a, "data").ok_or_else(|| {
                ToolError::Invalid("'data' with at least 'rate' is required for add".into())
            })?;
            if !data.get("rate").is_some_and(Value::is_number) {
                return Err(ToolError::Invalid(
                    "'data.rate' is required for add (the amount per hour, or per record with is_fixed)".into(),
                ));
            }
            let mut body = Map::new();
            for (ours, kimai) in [
                ("user", "user"),
                ("rate", "rate"),
                ("internal_rate", "internalRate"),
                ("is_fixed", "isFixed"),
            ] {
                if let Some(v) = data.get(ours).filter(|v| !v.is_null()) {
                    body.insert(kimai.into(), v.clone());
                }
            }
            let rate = ctx.call(&Request::post(path, Value::Object(body)))?.body;
            Ok(Output::text(format!(
                "Added rate to {entity} {id}\n{}",
                render::rate(&rate)
            )))
        }
        "delete" => {
            args::refuse_unused(a, action, &["entity", "entity_id", "rate_id"])?;
            let rate = args::need_id(a, "rate_id", "for delete (see action=list)")?;
            ctx.call(&Request::delete(format!("{path}/{rate}")))?;
            Ok(Output::text(format!(
                "Deleted rate {rate} from {entity} {id}."
            )))
        }
        other => Err(ToolError::Invalid(format!(
            "unknown action '{}'",
            super::text::safe(other)
        ))),
    }
}
