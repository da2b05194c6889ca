//! `user_current`: who the configured Kimai token belongs to (`GET /api/users/me`).
//!
//! Shows the user entity of contract §6.6: names, roles, timezone, supervisor, team
//! memberships and preferences, one field per line, rendered by
//! [`render_user`] (shared with `entity`).

use super::common::user_render::render_user;
use super::{Context, Output, Tool, ToolError};
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "user_current",
    title: "Current Kimai user",
    description: "The Kimai user this connection acts as: id, username, roles, timezone, language, supervisor, teams and preferences such as the hourly rate. Use it to learn your id and timezone.",
    schema,
    read_only: true,
    destructive: false,
    idempotent: true,
    handler,
};

fn schema() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

fn handler(ctx: &Context, _args: &Map<String, Value>) -> Result<Output, ToolError> {
    let me = ctx.get("/users/me")?;
    if !me.is_object() {
        return Err(ToolError::Failed(
            "Kimai answered /api/users/me with something that is not a user".into(),
        ));
    }
    Ok(Output::text(format!("Current user\n{}", render_user(&me))))
}
