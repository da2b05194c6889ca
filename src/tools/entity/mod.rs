//! `entity`: list, read, create, update and delete Kimai's master data — projects, activities,
//! customers, users, teams, tags, invoices and public holidays — plus the user-only
//! `lock_month` / `unlock_month` (WorkContract plugin) and `set_preferences`.
//!
//! Contract §5.3–§5.10 and reference §1.3. What this tool takes care of, because Kimai will not:
//! - only the fields the caller gave are sent (Kimai's forms depend on the token's permissions
//!   and reject any field they lack, §2.4);
//! - `timeBudget` is read as seconds but written as a duration where a bare number means
//!   hours, so it goes out as `H:MM:SS` and a digits-only string is refused as ambiguous;
//! - project dates are `YYYY-MM-DD` on create and `YYYY-MM-DDTHH:MM:SS` on update
//!   (kimai/kimai#4132);
//! - `GET /projects` hides projects outside their start..end window unless `ignoreDates=1`;
//! - `POST /users`, `/teams`, `/tags` turn an omitted boolean into false (§7.9), so `enabled`
//!   (users), `visible` (tags) and `teamlead` (members) are sent explicitly;
//! - a missing route (405, debug 404) is explained with the Kimai version that added it.
//!
//! Filters that do not apply to the chosen type are not sent and are named in a note.
//!
//! Files: this one holds the tool and its action dispatch; `types` the entity types,
//! `failures` the Kimai failures it explains, `schema` the input schema, `list` the list
//! action, `write` get/create/update/delete, `user` the user-only actions.

mod failures;
mod list;
mod schema;
mod types;
mod user;
mod write;

use super::{Context, Output, Tool, ToolError, args, text};
use crate::tools::common::preview;
use list::list;
use schema::schema;
use serde_json::{Map, Value};
use types::Type;
use user::{lock, set_preferences};
use write::{batch_delete, create, delete, get, update};

pub const TOOL: Tool = Tool {
    name: "entity",
    title: "Kimai master data",
    description: "Kimai master data: projects, activities, customers, users, teams, tags, invoices, public holidays. type + action pick the operation; data holds fields as Kimai names them (dates YYYY-MM-DD, timeBudget seconds or '1:30:00'). Not every pair exists (a tag cannot be read alone, a user cannot be deleted: update data.enabled=false); the error says what to do instead. Users only: lock_month/unlock_month (WorkContract plugin) and set_preferences (e.g. hourly_rate, holidays). Lists show visible entities and running projects only: filters.visible=3 and filters.ignore_dates=true show all. dry_run previews deletes and locks.",
    schema,
    read_only: false,
    destructive: true,
    idempotent: false,
    handler,
};

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let ty = a
        .get("type")
        .and_then(Value::as_str)
        .and_then(Type::parse)
        .ok_or_else(|| ToolError::Invalid("'type' is required".into()))?;
    let action = args::action(a);
    if let Some(why) = unsupported(ty, action) {
        return Err(ToolError::Invalid(why));
    }
    match action {
        "list" => {
            args::refuse_unused(a, action, &["type", "filters"])?;
            list(ctx, ty, args::object(a, "filters"))
        }
        "get" => {
            args::refuse_unused(a, action, &["type", "id"])?;
            let id = args::need_id(a, "id", "for get")?;
            get(ctx, ty, id)
        }
        "create" => {
            args::refuse_unused(a, action, &["type", "data"])?;
            let data = args::object(a, "data")
                .ok_or_else(|| ToolError::Invalid("'data' is required for create".into()))?;
            create(ctx, ty, data)
        }
        "update" => {
            args::refuse_unused(a, action, &["type", "id", "data"])?;
            let id = args::need_id(a, "id", "for update")?;
            let data = args::object(a, "data")
                .ok_or_else(|| ToolError::Invalid("'data' is required for update".into()))?;
            update(ctx, ty, id, data)
        }
        "delete" => {
            args::refuse_unused(a, action, &["type", "id", "dry_run"])?;
            let id = args::need_id(a, "id", "for delete")?;
            if preview::wanted(a) {
                return write::delete_preview(ctx, ty, &[id]);
            }
            delete(ctx, ty, id)
        }
        "batch_delete" => {
            args::refuse_unused(a, action, &["type", "ids", "dry_run"])?;
            let ids = args::need_ids(a, "ids", "for batch_delete")?;
            if preview::wanted(a) {
                return write::delete_preview(ctx, ty, &ids);
            }
            batch_delete(ctx, ty, &ids)
        }
        "lock_month" | "unlock_month" => {
            args::refuse_unused(
                a,
                action,
                &["type", "id", "ids", "user_scope", "month", "dry_run"],
            )?;
            lock(ctx, a, action == "lock_month")
        }
        "set_preferences" => {
            args::refuse_unused(a, action, &["type", "id", "preferences"])?;
            set_preferences(ctx, a)
        }
        other => Err(ToolError::Invalid(format!(
            "unknown action '{}'",
            text::safe(other)
        ))),
    }
}

/// The type × action pairs Kimai has no endpoint for, with what to do instead.
fn unsupported(ty: Type, action: &str) -> Option<String> {
    let user_only = ["lock_month", "unlock_month", "set_preferences"];
    if user_only.contains(&action) && ty != Type::User {
        return Some(format!(
            "action '{action}' is only available for type=user (it acts on a user's work contract)"
        ));
    }
    Some(
        match (ty, action) {
            (Type::Tag, "get") => {
                "Kimai cannot read a single tag: use action=list with filters.name to find it"
            }
            (Type::Tag, "update") => {
                "Kimai cannot update tags: delete the tag and create it again (records lose the old tag)"
            }
            (Type::Holiday, "get") => {
                "Kimai cannot read a single public holiday: use action=list with filters.begin/end"
            }
            (Type::Holiday, "create") => {
                "public holidays cannot be created through the API: an administrator adds them in Kimai (Working hours plugin settings)"
            }
            (Type::Holiday, "update") => {
                "public holidays cannot be updated through the API: delete the holiday and have an administrator add it again in Kimai"
            }
            (Type::Invoice, "create") => {
                "invoices cannot be created through the API: create them in Kimai's invoice screen; here you can list, read, update (Kimai 2.68+) and delete (2.66+) them"
            }
            (Type::User, "delete" | "batch_delete") => {
                "Kimai users cannot be deleted through the API: deactivate the user with action=update, data={\"enabled\": false}"
            }
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests;
