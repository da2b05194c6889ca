//! `comment`: comments on customers and projects (Kimai 2.57+, contract §5.3, §5.6): list,
//! create, delete, and pin — which toggles, so the result says the state it left.
//!
//! Messages are markdown and often span lines; they are shown JSON-quoted so that no message
//! can forge another comment in the result.

use super::common::entity_path::entity_path;
use super::common::missing_route::needs;
use super::render;
use super::{Context, Output, Tool, ToolError, args};
use crate::kimai::Request;
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "comment",
    title: "Kimai comments",
    description: "Comments on a project or customer (Kimai 2.57+): list (pinned first), create (data.message, markdown; data.pinned), delete and pin (comment_id; pin toggles). Needs comment rights.",
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
            "entity": {"type": "string", "enum": ["project", "customer"]},
            "entity_id": {"type": "integer"},
            "action": {"type": "string", "enum": ["list", "create", "delete", "pin"]},
            "comment_id": {"type": "integer", "description": "delete / pin"},
            "data": {
                "type": "object",
                "description": "create",
                "properties": {
                    "message": {"type": "string", "minLength": 1},
                    "pinned": {"type": "boolean", "default": false}
                },
                "required": ["message"],
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
    let path = format!("{base}/{id}/comments");
    let since = |e| needs(e, "comments", "Kimai 2.57 or later");
    match action {
        "list" => {
            args::refuse_unused(a, action, &["entity", "entity_id"])?;
            let list = ctx.get(&path).map_err(since)?;
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(Output::text(format!("No comments on {entity} {id}.")));
            }
            let blocks: Vec<String> = items.iter().map(render::comment).collect();
            Ok(Output::text(format!(
                "{} comment(s) on {entity} {id}:\n\n{}",
                blocks.len(),
                blocks.join("\n\n")
            )))
        }
        "create" => {
            args::refuse_unused(a, action, &["entity", "entity_id", "data"])?;
            let data = args::object(a, "data").ok_or_else(|| {
                ToolError::Invalid("'data' with 'message' is required for create".into())
            })?;
            let message = args::need_string(data, "message", "in data for create")?;
            let mut body = json!({"message": message});
            if let Some(p) = args::boolean(data, "pinned") {
                body["pinned"] = json!(p);
            }
            let c = ctx.call(&Request::post(path, body)).map_err(since)?.body;
            Ok(Output::text(format!(
                "Created comment on {entity} {id}\n{}",
                render::comment(&c)
            )))
        }
        "delete" => {
            args::refuse_unused(a, action, &["entity", "entity_id", "comment_id"])?;
            let cid = args::need_id(a, "comment_id", "for delete")?;
            ctx.call(&Request::delete(format!("{path}/{cid}")))
                .map_err(since)?;
            Ok(Output::text(format!(
                "Deleted comment {cid} on {entity} {id}."
            )))
        }
        "pin" => {
            args::refuse_unused(a, action, &["entity", "entity_id", "comment_id"])?;
            let cid = args::need_id(a, "comment_id", "for pin")?;
            let c = ctx
                .call(&Request::patch(format!("{path}/{cid}/pin"), json!({})))
                .map_err(since)?
                .body;
            let state = match c.get("pinned").and_then(Value::as_bool) {
                Some(true) => "now pinned",
                Some(false) => "now unpinned (pin toggles: call it again to pin)",
                None => "toggled (Kimai did not say the new state)",
            };
            Ok(Output::text(format!(
                "Comment {cid} on {entity} {id} is {state}\n{}",
                render::comment(&c)
            )))
        }
        other => Err(ToolError::Invalid(format!(
            "unknown action '{}'",
            super::text::safe(other)
        ))),
    }
}
