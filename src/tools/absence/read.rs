//! Reading the absences of a scope (`self`, one user, or every user the token can see, read
//! 10 at a time with progress), with the users that could not be read and the notes for the
//! reader.

use super::names::who;
use crate::kimai::Request;
use crate::tools::args::{self, Args};
use crate::tools::common::day_range::with_range;
use crate::tools::common::user_lookup::resolve_user;
use crate::tools::common::work_contract::{PLUGIN_MISSING, explain_404, is_404};
use crate::tools::time::Date;
use crate::tools::users::{self, Found};
use crate::tools::{Context, ToolError, fanout};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whose absences a read covers.
pub(super) enum Scope {
    Own,
    One(Found),
    All,
}

pub(super) fn scope(
    ctx: &Context,
    filters: Option<&Args>,
    default: &str,
) -> Result<Scope, ToolError> {
    let s = filters
        .and_then(|f| args::string(f, "user_scope"))
        .unwrap_or(default);
    let user = filters.and_then(|f| args::string(f, "user"));
    match s {
        "specific" => {
            let u = user.ok_or_else(|| {
                ToolError::Invalid(
                    "filters.user (user id or username) is required for user_scope=specific".into(),
                )
            })?;
            Ok(Scope::One(resolve_user(ctx, u)?))
        }
        _ if user.is_some() => Err(ToolError::Invalid(format!(
            "filters.user only applies to user_scope=specific (got user_scope={s})"
        ))),
        "all" => Ok(Scope::All),
        _ => Ok(Scope::Own),
    }
}

/// What a scoped read found.
pub(super) struct Read {
    pub(super) absences: Vec<Value>,
    /// Users whose absences could not be read (403/404).
    pub(super) skipped: Vec<(Found, u16)>,
    /// Users read (for attendance: who was checked).
    pub(super) users: Vec<Found>,
    pub(super) notes: Vec<String>,
}

fn absences_of(ctx: &Context, user: Option<i64>, q: &Query) -> Result<Vec<Value>, ToolError> {
    let mut r = Request::get("/absences");
    if let Some(u) = user {
        r = r.query("user", u);
    }
    let r = with_range(r, q.begin, q.end).query("status", q.status);
    let body = ctx.call(&r)?.body;
    Ok(body.as_array().cloned().unwrap_or_default())
}

pub(super) struct Query {
    pub(super) begin: Option<Date>,
    pub(super) end: Option<Date>,
    pub(super) status: &'static str,
}

pub(super) fn read(ctx: &Context, scope: &Scope, q: &Query) -> Result<Read, ToolError> {
    match scope {
        Scope::Own | Scope::One(_) => {
            let (uid, found) = match scope {
                Scope::One(u) => (Some(u.id), Some(u.clone())),
                _ => (None, None),
            };
            let absences = absences_of(ctx, uid, q).map_err(|e| explain_404(ctx, e))?;
            let users = match found {
                // A user named by id: take the name from their absences when there are any.
                Some(u) => vec![
                    absences
                        .iter()
                        .find_map(|a| a.get("user").and_then(users::found_from))
                        .filter(|f| f.id == u.id)
                        .unwrap_or(u),
                ],
                None => {
                    let me = ctx.get("/users/me")?;
                    users::found_from(&me).into_iter().collect()
                }
            };
            Ok(Read {
                absences,
                skipped: Vec::new(),
                users,
                notes: Vec::new(),
            })
        }
        Scope::All => {
            let d = users::discover(ctx)?;
            let mut notes: Vec<String> = d.note().into_iter().collect();
            let total = d.users.len() as u64;
            let done = AtomicU64::new(0);
            let (ok, skipped) = fanout::read_all(ctx, &d.users, |u| {
                let r = absences_of(ctx, Some(u.id), q);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                ctx.progress(
                    n,
                    Some(total),
                    Some(&format!("absences read for {n} of {total} users")),
                );
                r
            })?;
            if ok.is_empty() && !skipped.is_empty() && skipped.iter().all(|(_, s)| *s == 404) {
                // Everyone answered 404: most likely the plugin is missing.
                if let Err(e) = ctx.call(&Request::get("/absences/types"))
                    && is_404(&e)
                {
                    return Err(ToolError::Failed(PLUGIN_MISSING.into()));
                }
            }
            if !skipped.is_empty() {
                notes.push(format!(
                    "Note: the absences of {} could not be read with this token (not included).",
                    skipped
                        .iter()
                        .map(|(u, s)| format!("{} ({s})", who(u)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(Read {
                absences: ok.iter().flat_map(|(_, v)| v.iter().cloned()).collect(),
                users: ok.into_iter().map(|(u, _)| u).collect(),
                skipped,
                notes,
            })
        }
    }
}

pub(super) fn status_arg(filters: Option<&Args>) -> &'static str {
    match filters.and_then(|f| args::string(f, "status")) {
        Some("approved") => "approved",
        Some("open") => "open",
        _ => "all",
    }
}

pub(super) fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Own => "your absences".into(),
        Scope::One(u) => format!("absences of {}", who(u)),
        Scope::All => "absences of all users you can see".into(),
    }
}

pub(super) fn period_text(begin: Option<Date>, end: Option<Date>) -> String {
    match (begin, end) {
        (Some(b), Some(e)) => format!("{b} to {e}"),
        (Some(b), None) => format!("from {b}"),
        (None, Some(e)) => format!("until {e}"),
        (None, None) => "all dates".into(),
    }
}
