//! `team_access`: team membership and team access to customers, projects and activities
//! (`POST`/`DELETE /teams/{id}/members/{user}` and `/teams/{id}/{customers,projects,
//! activities}/{id}`, contract §5.8).
//!
//! Kimai answers every one of these with the whole team, so the result shows the team as it
//! now is. Business-rule refusals come back as a bare 400; the error explains the likely rule.

use super::render::{self, Kind};
use super::{Context, Output, Tool, ToolError, args};
use crate::kimai::Request;
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "team_access",
    title: "Kimai team access",
    description: "Change a team: add_member/remove_member (user_id; not for team leads: use entity type=team action=update with the full member list), grant/revoke the team's access to a customer, project or activity (target, target_id). Team-assigned entities are visible only to their teams.",
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
            "team_id": {"type": "integer"},
            "action": {"type": "string", "enum": ["add_member", "remove_member", "grant", "revoke"]},
            "target": {"type": "string", "enum": ["customer", "project", "activity"], "description": "grant / revoke"},
            "user_id": {"type": "integer", "description": "add_member / remove_member"},
            "target_id": {"type": "integer", "description": "grant / revoke"}
        },
        "required": ["team_id", "action"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let team = args::need_id(a, "team_id", "")?;
    let action = args::action(a);
    let (method_post, path, what, rule) = match action {
        "add_member" | "remove_member" => {
            args::refuse_unused(a, action, &["team_id", "user_id"])?;
            let user = args::need_id(a, "user_id", &format!("for {action}"))?;
            let add = action == "add_member";
            (
                add,
                format!("/teams/{team}/members/{user}"),
                format!("user {user}"),
                if add {
                    "the user is probably already a member of the team"
                } else {
                    "the user is probably not a member, or is a team lead (change team leads with entity type=team action=update)"
                },
            )
        }
        "grant" | "revoke" => {
            args::refuse_unused(a, action, &["team_id", "target", "target_id"])?;
            let target = args::need_string(a, "target", &format!("for {action}"))?;
            let id = args::need_id(a, "target_id", &format!("for {action}"))?;
            let seg = match target {
                "customer" => "customers",
                "project" => "projects",
                _ => "activities",
            };
            let grant = action == "grant";
            (
                grant,
                format!("/teams/{team}/{seg}/{id}"),
                format!("{target} {id}"),
                if grant {
                    "the team probably has access already"
                } else {
                    "the team probably has no access to it"
                },
            )
        }
        other => {
            return Err(ToolError::Invalid(format!(
                "unknown action '{}'",
                super::text::safe(other)
            )));
        }
    };
    let req = if method_post {
        Request::post(path, json!({}))
    } else {
        Request::delete(path)
    };
    let team_json = match ctx.call(&req) {
        Ok(r) => r.body,
        Err(ToolError::Kimai(k)) if k.status() == Some(400) => {
            return Err(ToolError::Failed(format!(
                "Kimai refused to {} {what} on team {team}: {rule} ({k})",
                action.replace('_', " ")
            )));
        }
        Err(e) => return Err(e),
    };
    let done = match action {
        "add_member" => format!("Added {what} to team {team}"),
        "remove_member" => format!("Removed {what} from team {team}"),
        "grant" => format!("Granted team {team} access to {what}"),
        _ => format!("Revoked team {team}'s access to {what}"),
    };
    Ok(Output::text(format!(
        "{done}\n{}",
        render::entity(Kind::Team, &team_json, true)
    )))
}
