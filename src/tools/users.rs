//! Finding the users a caller may act on, for `user_scope=all` and user lists.
//!
//! Kimai only lets SUPER_ADMINs list users (`GET /api/users`, contract §5.7), but team leads and
//! admins can read the teams they may see. So discovery goes teams first: `GET /teams` (a 403
//! means "no teams visible"), then every team's members (`GET /teams/{id}`, fanned out with
//! [`fanout::read_all`]: a team that answers 403/404 is skipped and named, any other failure
//! fails the whole answer), and only if that finds nobody, `GET /users` (`visible=1`). A team
//! lead may do neither, but sees the records of their teams' members: then the users of the
//! latest 500 records of `user=all` (and the caller) are the answer, with a note saying so.

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
    /// False for a deactivated account (Kimai's `enabled`); true when Kimai did not say.
    pub enabled: bool,
}

/// Who could be found, and how.
#[derive(Debug, Default)]
pub struct Discovery {
    pub users: Vec<Found>,
    /// Teams whose members could not be read (id, HTTP status).
    pub skipped_teams: Vec<(i64, u16)>,
    /// Where the list came from: "teams", "users", or "timesheets" (the users of the latest
    /// records, for tokens that may list neither teams nor users).
    pub source: &'static str,
}

impl Discovery {
    /// A note naming what could not be read, if anything.
    pub fn note(&self) -> Option<String> {
        if self.source == "timesheets" {
            return Some(
                "Note: this token may list neither teams nor users; these are you and the users of the latest records you can see.".into(),
            );
        }
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
    let enabled = u.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    Some(Found {
        id,
        username,
        display,
        enabled,
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
        match ctx.call(&Request::get("/users").query("visible", "1")) {
            Ok(r) => {
                d.users = r
                    .body
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(found_from)
                    .collect();
                d.source = "users";
            }
            // Team leads may neither list teams nor users, but Kimai shows them the records
            // of the members of the teams they lead: the users of the latest records are the
            // users they can act on.
            Err(ToolError::Kimai(e)) if e.status() == Some(403) => {
                let me = ctx.get("/users/me")?;
                let recent = ctx
                    .call(
                        &Request::get("/timesheets")
                            .query("user", "all")
                            .query("full", "true")
                            .query("size", 500),
                    )?
                    .body;
                for u in std::iter::once(&me).chain(
                    recent
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.get("user")),
                ) {
                    if let Some(f) = found_from(u)
                        && !d.users.iter().any(|x| x.id == f.id)
                    {
                        d.users.push(f);
                    }
                }
                d.source = "timesheets";
            }
            Err(e) => return Err(e),
        }
    }
    d.users.sort_by(|a, b| {
        a.display
            .to_lowercase()
            .cmp(&b.display.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    Ok(d)
}
