//! Teams: create, update, delete, and linking members, customers, projects and activities
//! (§5.8).

use serde_json::Value;

use super::form::{ADMIN, Form, at_least, check_name, next_id, read_color, scalar};
use crate::sim::data::{State, Team, User};
use crate::sim::json as js;
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, not_found};
use crate::sim::writes::{EXTRA_FIELDS, INVALID_CHOICE, truthy};

fn team_json(st: &State, id: u64) -> Result<Answer, Answer> {
    let t = st.teams.iter().find(|t| t.id == id).ok_or_else(not_found)?;
    Ok(Answer::ok(js::team_entity(st, t)))
}

/// `edit_team` / `delete_team` (ADMIN+) and "admin or teamlead of that team": with the default
/// roles only admins pass.
fn may_manage_team(caller: &User) -> bool {
    at_least(caller, ADMIN)
}

/// Reads `members` into (user, teamlead) pairs with the §2.2 collection error shape folded
/// into field messages on `members`.
fn read_members(st: &State, f: &mut Form, post: bool) -> Option<Vec<(u64, bool)>> {
    let v = f.body.get("members")?.clone();
    let Value::Array(items) = v else {
        f.err("members", "This value is not valid.");
        return None;
    };
    let mut out: Vec<(u64, bool)> = Vec::new();
    for it in &items {
        let Some(o) = it.as_object() else {
            f.err("members", "This value is not valid.");
            return None;
        };
        if o.keys().any(|k| k != "user" && k != "teamlead") {
            f.errs.global.push(EXTRA_FIELDS.into());
            return None;
        }
        let user = o
            .get("user")
            .and_then(|u| scalar(u).ok().flatten())
            .and_then(|u| u.parse::<u64>().ok())
            .and_then(|u| st.user(u));
        let Some(user) = user else {
            f.err("members", INVALID_CHOICE);
            return None;
        };
        // §7.9: on POST the member sub-form is complete, so an omitted `teamlead` is false;
        // on PATCH the new member list is submitted as given, which is the same here.
        let _ = post;
        let lead = o
            .get("teamlead")
            .map(|v| truthy(&scalar(v).ok().flatten()))
            .unwrap_or(false);
        if out.iter().any(|(u, _)| *u == user.id) {
            f.err("members", "This value is already used.");
            return None;
        }
        out.push((user.id, lead));
    }
    if out.is_empty() {
        f.err("members", "This value should not be blank.");
        return None;
    }
    if !out.iter().any(|(_, lead)| *lead) {
        f.err(
            "members",
            "At least one team leader must be assigned to the team.",
        );
        return None;
    }
    Some(out)
}

pub fn create_team(st: &mut State, req: &Req, caller: &User) -> Res {
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    let mut f = Form::new(req, &["name", "color", "members"])?;
    let name = f.text("name").flatten();
    check_name(&mut f, "name", &name, 100);
    if name
        .as_ref()
        .is_some_and(|n| st.teams.iter().any(|t| &t.name == n))
    {
        f.err("name", "This value is already used.");
    }
    let color = read_color(&mut f).flatten();
    let members = read_members(st, &mut f, true);
    if !f.has("members") {
        f.err("members", "This value should not be blank.");
    }
    f.finish()?;
    let id = next_id(&st.teams, |t| t.id);
    st.teams.push(Team {
        id,
        name: name.unwrap_or_default(),
        color,
        members: members.unwrap_or_default(),
        customers: Vec::new(),
        projects: Vec::new(),
        activities: Vec::new(),
    });
    team_json(st, id)
}

pub fn update_team(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let mut t = st
        .teams
        .iter()
        .find(|t| t.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    let mut f = Form::new(req, &["name", "color", "members"])?;
    if let Some(name) = f.text("name") {
        check_name(&mut f, "name", &name, 100);
        if let Some(n) = name {
            if st.teams.iter().any(|x| x.id != id && x.name == n) {
                f.err("name", "This value is already used.");
            }
            t.name = n;
        }
    }
    if let Some(c) = read_color(&mut f) {
        t.color = c;
    }
    if let Some(m) = read_members(st, &mut f, false) {
        // §5.8: sending `members` replaces the whole list.
        t.members = m;
    }
    f.finish()?;
    if let Some(slot) = st.teams.iter_mut().find(|x| x.id == id) {
        *slot = t;
    }
    team_json(st, id)
}

pub fn delete_team(st: &mut State, caller: &User, id: u64) -> Res {
    let i = st
        .teams
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(not_found)?;
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    st.teams.remove(i);
    Ok(Answer::empty(204))
}

/// POST/DELETE `/teams/{id}/members/{user}` and `/teams/{id}/{customers,projects,activities}/{x}`.
/// Both ids are loaded first (404), then the team voter and, for access grants, `permissions`
/// on the target (ADMIN+, §5.8 since 2.63/2.65); business-rule violations are a plain 400.
pub fn team_link(
    st: &mut State,
    req: &Req,
    caller: &User,
    id: u64,
    what: &'static str,
    target: u64,
) -> Res {
    let i = st
        .teams
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(not_found)?;
    let target_exists = match what {
        "members" => st.user(target).is_some(),
        "customers" => st.customer(target).is_some(),
        "projects" => st.project(target).is_some(),
        _ => st.activity(target).is_some(),
    };
    if !target_exists {
        return Err(not_found());
    }
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    if what == "members" && !st.can_access_user(caller, target) {
        return Err(forbidden());
    }
    let add = req.method == "POST";
    let team = &mut st.teams[i];
    if what == "members" {
        let pos = team.members.iter().position(|(u, _)| *u == target);
        match (add, pos) {
            (true, Some(_)) => return Err(bad()),
            (true, None) => team.members.push((target, false)),
            (false, None) => return Err(bad()),
            (false, Some(p)) if team.members[p].1 => return Err(bad()),
            (false, Some(p)) => {
                team.members.remove(p);
            }
        }
    } else {
        let list = match what {
            "customers" => &mut team.customers,
            "projects" => &mut team.projects,
            _ => &mut team.activities,
        };
        let pos = list.iter().position(|x| *x == target);
        match (add, pos) {
            (true, Some(_)) | (false, None) => return Err(bad()),
            (true, None) => list.push(target),
            (false, Some(p)) => {
                list.remove(p);
            }
        }
    }
    team_json(st, id)
}
