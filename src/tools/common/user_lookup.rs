//! Finding one user from what the caller typed: a numeric id is taken as is, a username or
//! display name is looked up (case-insensitively) among the users the token can see, and an
//! ambiguous or unknown name is refused with what to send instead. Used by `absence` and
//! `analyze_project_team`.

use crate::tools::users::{self, Found};
use crate::tools::{Context, ToolError, text};

/// A user named by id or by username/display name, among the users the caller can see.
pub fn resolve_user(ctx: &Context, who: &str) -> Result<Found, ToolError> {
    let who = who.trim();
    if let Ok(id) = who.parse::<i64>() {
        if id < 1 {
            return Err(ToolError::Invalid(format!(
                "filters.user must be a positive user id or a username, got {id}"
            )));
        }
        return Ok(Found {
            id,
            username: String::new(),
            display: format!("user {id}"),
            enabled: true,
        });
    }
    let d = users::discover(ctx)?;
    let lower = who.to_lowercase();
    let hits: Vec<&Found> = d
        .users
        .iter()
        .filter(|u| u.username.to_lowercase() == lower || u.display.to_lowercase() == lower)
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ToolError::Invalid(format!(
            "no user {} among the {} users this token can see; send the numeric user id",
            text::quote(who),
            d.users.len()
        ))),
        many => Err(ToolError::Invalid(format!(
            "{} matches several users ({}); send the numeric user id",
            text::quote(who),
            many.iter()
                .map(|u| format!("{} (ID {})", text::safe(&u.display), u.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
