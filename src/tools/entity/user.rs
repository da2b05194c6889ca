//! `entity` actions for `type=user` only: `set_preferences` (with the aliases users know) and
//! `lock_month` / `unlock_month` of the WorkContract plugin, for one, several or all users.

use super::write::capitalize;
use crate::kimai::Request;
use crate::tools::common::missing_route::needs;
use crate::tools::common::user_render::render_user;
use crate::tools::common::work_contract::{self, is_404};
use crate::tools::{Context, Output, ToolError, args, fanout, text, time, users};
use serde_json::{Map, Value, json};

/// Preference names users know by other words (reference §1.3).
pub(super) fn canonical_preference(name: &str) -> &str {
    match name {
        "vacation_days" | "annual_leave" | "vacation" => "holidays",
        "weekly_hours" => "hours_per_week",
        "contract_type" => "work_contract_type",
        other => other,
    }
}

pub(super) fn set_preferences(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let id = args::need_id(a, "id", "for set_preferences (the user id)")?;
    let prefs: Vec<(String, Value)> = a
        .get("preferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.trim();
            (!name.is_empty()).then(|| {
                (
                    canonical_preference(name).to_string(),
                    p.get("value").cloned().unwrap_or(json!("")),
                )
            })
        })
        .collect();
    if prefs.is_empty() {
        return Err(ToolError::Invalid(
            "'preferences' must list at least one {name, value} for set_preferences".into(),
        ));
    }
    let body: Vec<Value> = prefs
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let names: Vec<&str> = prefs.iter().map(|(n, _)| n.as_str()).collect();
    let resp = ctx.call(&Request::patch(
        format!("/users/{id}/preferences"),
        Value::Array(body),
    ));
    let user = match resp {
        Ok(r) => r.body,
        Err(ToolError::Kimai(k)) if k.is_missing_route() => {
            return Err(needs(
                ToolError::Kimai(k),
                "setting user preferences",
                "Kimai 2.40 or later",
            ));
        }
        Err(ToolError::Kimai(k)) if k.status() == Some(404) => {
            return Err(ToolError::Failed(format!(
                "Kimai does not know user {id} or one of the preferences {} ({k}). Work-contract preferences (holidays, work_monday … work_sunday, work_contract_type, public_holiday_group, hours_per_week) exist only with the WorkContract plugin and are set up automatically since Kimai 2.61; on older versions open the user's contract page in Kimai once (profile → contract).",
                names.join(", ")
            )));
        }
        Err(e) => return Err(e),
    };
    let shown: Vec<String> = prefs
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                text::safe(n),
                match v {
                    Value::String(s) if s.is_empty() => "(empty)".into(),
                    Value::String(s) => text::safe(s),
                    other => other.to_string(),
                }
            )
        })
        .collect();
    Ok(Output::text(format!(
        "Updated preferences of user {id}: {}\n{}",
        shown.join(", "),
        render_user(&user)
    )))
}

/// What a 404 from `DELETE /work-contract/{lock,unlock}/{user}/{month}` means. Kimai answers it
/// alike for a Kimai without the plugin, for a plugin version whose API has no month locks (the
/// routes are not in the plugin's published API export, contract §9.1), and for an unknown
/// user; two probes tell them apart: `GET /absences/types` (exists exactly with the plugin, once
/// per call) and `GET /users/{id}`. `None`: the user is unknown, and Kimai's 404 says so.
fn lock_404(
    ctx: &Context,
    verdict: &std::sync::OnceLock<Option<String>>,
    path: &str,
    id: i64,
    month: &str,
) -> Option<ToolError> {
    let plugin_missing = verdict.get_or_init(|| match ctx.call(&Request::get("/absences/types")) {
        Err(probe) if is_404(&probe) => Some(work_contract::PLUGIN_MISSING.to_string()),
        _ => None,
    });
    if let Some(m) = plugin_missing {
        return Some(ToolError::Failed(m.clone()));
    }
    match ctx.call(&Request::get(format!("/users/{id}"))) {
        Err(probe) if is_404(&probe) => None,
        _ => Some(ToolError::Failed(format!(
            "this Kimai's WorkContract plugin offers no month locks through the API: DELETE /api/work-contract/{path}/{id}/{month} answered 404 although the plugin is installed and user {id} exists. Locking months through the API needs a plugin version with these routes; lock the month in Kimai's web interface (Working hours) instead."
        ))),
    }
}

pub(super) fn lock(ctx: &Context, a: &Map<String, Value>, lock: bool) -> Result<Output, ToolError> {
    let verb = if lock { "lock" } else { "unlock" };
    let month = args::need_string(a, "month", &format!("for {verb}_month (YYYY-MM-DD)"))?;
    let day = time::parse_date(month).ok_or_else(|| {
        ToolError::Invalid(format!(
            "'month' must be a date YYYY-MM-DD (any day of the month), got {}",
            text::quote(month)
        ))
    })?;
    let month = day.to_string();
    let mut note = None;
    let targets: Vec<i64> = if args::string(a, "user_scope") == Some("all") {
        let d = users::discover(ctx)?;
        note = d.note();
        // Deactivated accounts record no time: their months need no lock.
        d.users.iter().filter(|u| u.enabled).map(|u| u.id).collect()
    } else if a.contains_key("ids") {
        args::need_ids(a, "ids", &format!("for {verb}_month"))?
    } else if a.contains_key("id") {
        vec![args::need_id(a, "id", &format!("for {verb}_month"))?]
    } else {
        return Err(ToolError::Invalid(format!(
            "'id', 'ids' or 'user_scope'=\"all\" is required for {verb}_month"
        )));
    };
    if targets.is_empty() {
        return Err(ToolError::Failed(
            "no users found that this token can see".into(),
        ));
    }
    let scope_text = if lock {
        month[..7].to_string()
    } else {
        format!("{} and the later months of that year", &month[..7])
    };
    if crate::tools::common::preview::wanted(a) {
        use crate::tools::common::preview;
        let lines = preview::lines(ctx, &targets, |id| {
            let u = ctx.get(&format!("/users/{id}"))?;
            Ok(format!("user {id}: {}", preview::name_of(&u)))
        })?;
        let mut footer = String::from("Send the same call without dry_run to do it.");
        if let Some(n) = &note {
            footer = format!("{n}\n{footer}");
        }
        return Ok(preview::output(
            preview::heading(&format!(
                "{verb}_month would {verb} {scope_text} for {} user(s):",
                targets.len()
            )),
            lines,
            Some(footer),
        ));
    }
    let path = if lock { "lock" } else { "unlock" };
    // Why a lock route answered 404, worked out once per call (see `lock_404`).
    let plugin_verdict: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let one = |id: i64| -> Result<bool, ToolError> {
        ctx.call(&Request::delete(format!(
            "/work-contract/{path}/{id}/{month}"
        )))
        .map_err(|e| {
            let e = needs(
                e,
                "locking and unlocking months",
                "the WorkContract (Working hours) plugin",
            );
            if !is_404(&e) {
                return e;
            }
            lock_404(ctx, &plugin_verdict, path, id, &month).unwrap_or(e)
        })?;
        Ok(true)
    };
    let scope = if lock {
        month[..7].to_string()
    } else {
        format!("{} and the later months of that year", &month[..7])
    };
    if targets.len() == 1 {
        one(targets[0])?;
        return Ok(Output::text(format!(
            "{}ed {scope} for user {}.",
            capitalize(verb),
            targets[0]
        )));
    }
    let b = fanout::batch(ctx, &targets, "", one)?;
    let mut out = format!(
        "{}ed {scope}: {}",
        capitalize(verb),
        b.summary(&format!("{verb}ed"), "users")
    );
    if let Some(n) = note {
        out.push('\n');
        out.push_str(&n);
    }
    Ok(Output::text(out))
}
