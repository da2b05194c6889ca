//! Finding the users a caller may act on, for `user_scope=all` and user lists.
//!
//! Kimai only lets SUPER_ADMINs list users (`GET /api/users`, contract §5.7), but team leads and
//! admins can read the teams they may see. So discovery goes teams first: `GET /teams` (a 403
//! means "no teams visible"), then every team's members (`GET /teams/{id}`, fanned out with
//! [`fanout::read_all`]: a team that answers 403/404 is skipped and named, any other failure
//! fails the whole answer), and only if that finds nobody, `GET /users` (`visible=1`).

use super::{Context, ToolError, fanout};
use crate::kimai::Request;
use serde_json::Value;

/// A user found by discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub id: i64,
    pub username: String,
    /// Alias if set, else the username.
    pub display: String,
}

/// Who could be found, and how.
#[derive(Debug, Default)]
pub struct Discovery {
    pub users: Vec<Found>,
    /// Teams whose members could not be read (id, HTTP status).
    pub skipped_teams: Vec<(i64, u16)>,
    /// Where the list came from: "teams" or "users".
    pub source: &'static str,
}

impl Discovery {
    /// A note naming what could not be read, if anything.
    pub fn note(&self) -> Option<String> {
        if self.skipped_teams.is_empty() {
            return None;
        }
        let teams: Vec<String> = self
            .skipped_teams
            .iter()
            .map(|(id, st)| format!("team {id} ({st})"))
            .collect();
        Some(format!(
            "Note: the members of {} could not be read with this token.",
            teams.join(", ")
        ))
    }
}

pub fn found_from(u: &Value) -> Option<Found> {
    let id = u.get("id").and_then(super::args::as_int)?;
    let username = u
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let display = u
        .get("alias")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .unwrap_or(&username)
        .to_string();
    Some(Found {
        id,
        username,
        display,
    })
}

/// Discovers the users the caller may see (see the module header).
pub fn discover(ctx: &Context) -> Result<Discovery, ToolError> {
    let teams = match ctx.call(&Request::get("/teams")) {
        Ok(r) => r.body.as_array().cloned().unwrap_or_default(),
        Err(ToolError::Kimai(e)) if e.status() == Some(403) => Vec::new(),
        Err(e) => return Err(e),
    };
    let team_ids: Vec<i64> = teams
        .iter()
        .filter_map(|t| t.get("id").and_then(super::args::as_int))
        .collect();
    let mut d = Discovery {
        source: "teams",
        ..Discovery::default()
    };
    if !team_ids.is_empty() {
        let (read, skipped) = fanout::read_all(ctx, &team_ids, |id| {
            Ok(ctx.call(&Request::get(format!("/teams/{id}")))?.body)
        })?;
        d.skipped_teams = skipped;
        for (_, team) in read {
            for m in team
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(f) = m.get("user").and_then(found_from)
                    && !d.users.iter().any(|u| u.id == f.id)
                {
                    d.users.push(f);
                }
            }
        }
    }
    if d.users.is_empty() {
        let users = ctx
            .call(&Request::get("/users").query("visible", "1"))?
            .body;
        d.users = users
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(found_from)
            .collect();
        d.source = "users";
    }
    d.users.sort_by(|a, b| {
        a.display
            .to_lowercase()
            .cmp(&b.display.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    Ok(d)
}
