//! The sub-resources of customers, projects and activities (`/meta`, `/rates`, the removed
//! `/team`): entity load and the `edit` voter, then the handlers of `admin`.

use serde_json::json;

use crate::sim::admin;
use crate::sim::data::{State, User, can};
use crate::sim::wire::{Answer, Req, Res, forbidden, not_found};

/// Voter `edit` on a customer/project/activity (§11): ADMIN+, or for activities a teamlead
/// leading a team the activity is assigned to (`edit_teamlead_activity`).
fn may_edit_entity(st: &State, caller: &User, kind: &str, id: u64) -> bool {
    match kind {
        "customer" => can(caller, "edit_customer"),
        "project" => can(caller, "edit_project"),
        _ => {
            can(caller, "edit_activity")
                || (can(caller, "view_other_timesheet")
                    && st.leads_team_with(caller, |t| t.activities.contains(&id)))
        }
    }
}

pub(super) fn sub_resource(
    st: &mut State,
    req: &Req,
    caller: &User,
    kind: &'static str,
    id: u64,
    sub: &str,
) -> Res {
    if sub == "team" {
        // §5.3: removed in 2.65. Unsure whether the entity is loaded first (404 for an unknown
        // id); we answer 410 regardless.
        return Err(Answer::json(
            410,
            &json!({"code": 410, "message": "This endpoint was removed, use \"POST /api/teams/\" instead."}),
        ));
    }
    let exists = match kind {
        "customer" => st.customer(id).is_some(),
        "project" => st.project(id).is_some(),
        _ => st.activity(id).is_some(),
    };
    if !exists {
        return Err(not_found());
    }
    if !may_edit_entity(st, caller, kind, id) {
        return Err(forbidden());
    }
    match (req.method.as_str(), sub) {
        (_, "rates") => admin::rates(st, req, kind, id),
        ("PATCH", "meta") => admin::meta(st, req, kind, id),
        _ => {
            log::warn!(
                "sim: {} {} exists in Kimai but is not simulated",
                req.method,
                req.path
            );
            Err(Answer::error(500))
        }
    }
}
