//! The lists of customers, projects, activities and users, with their visibility, term and
//! order parameters (§5.3–§5.7).

use serde_json::Value;

use super::params::{ascending, digits_param, id_array, one_of, term_matches};
use crate::sim::data::{self, State, User, can};
use crate::sim::json as js;
use crate::sim::time;
use crate::sim::wire::{Answer, Req, Res, bad, forbidden};

/// §7.1 tri-state `visible`: 1 visible (default), 2 hidden, 3 both.
fn visible_param(req: &Req) -> Result<u8, Answer> {
    Ok(match one_of(req, "visible", &["1", "2", "3"])? {
        Some("2") => 2,
        Some("3") => 3,
        _ => 1,
    })
}

fn visible_ok(mode: u8, visible: bool) -> bool {
    match mode {
        1 => visible,
        2 => !visible,
        _ => true,
    }
}

pub(super) fn customer_list(st: &State, req: &Req, caller: &User) -> Res {
    let vis = visible_param(req)?;
    let asc = ascending(req, true)?;
    let order_by = one_of(req, "orderBy", &["id", "name"])?.unwrap_or("name");
    let full = one_of(req, "full", &["0", "1"])? == Some("1");
    let details = full && can(caller, "details_customer");
    let term = req.param("term").unwrap_or("");
    let mut v: Vec<&data::Customer> = st
        .customers
        .iter()
        .filter(|c| {
            st.customer_accessible(caller, c.id)
                && visible_ok(vis, c.visible)
                && term_matches(
                    term,
                    &[
                        Some(&c.name),
                        c.comment.as_deref(),
                        c.company.as_deref(),
                        Some(&c.number),
                        c.email.as_deref(),
                        c.address_line1.as_deref(),
                    ],
                )
        })
        .collect();
    v.sort_by(|a, b| {
        let o = if order_by == "id" {
            a.id.cmp(&b.id)
        } else {
            a.name.cmp(&b.name).then(a.id.cmp(&b.id))
        };
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter()
            .map(|c| js::customer_collection(st, c, details))
            .collect(),
    )))
}

/// Project list `start`/`end`: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (§4.2 exception).
fn day_param(req: &Req, name: &str) -> Result<Option<i64>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => time::parse_date(v)
            .or_else(|| time::parse_local_strict(v).map(|l| l.div_euclid(time::DAY)))
            .map(Some)
            .ok_or_else(bad),
    }
}

pub(super) fn project_list(st: &State, req: &Req, caller: &User) -> Res {
    let customers = [
        digits_param(req, "customer")?.into_iter().collect(),
        id_array(req, "customers")?,
    ]
    .concat();
    let vis = visible_param(req)?;
    let start = day_param(req, "start")?;
    let end = day_param(req, "end")?;
    let ignore_dates = one_of(req, "ignoreDates", &["1"])?.is_some();
    let global = one_of(req, "globalActivities", &["0", "1"])?;
    let asc = ascending(req, true)?;
    let order_by = one_of(req, "orderBy", &["id", "name", "customer"])?.unwrap_or("name");
    let term = req.param("term").unwrap_or("");
    let mut cust_ids = Vec::new();
    for c in customers {
        if st.customer(c).is_some() {
            if !st.customer_accessible(caller, c) {
                return Err(forbidden());
            }
            cust_ids.push(c);
        }
    }
    // §5.4: without ignoreDates and without start/end both default to today (caller's day).
    let today = (st.now() + caller.tz.offset_at(st.now())).div_euclid(time::DAY);
    let (start, end) = if ignore_dates {
        (None, None)
    } else if start.is_none() && end.is_none() {
        (Some(today), Some(today))
    } else {
        (start, end)
    };
    let mut v: Vec<&data::Project> = st
        .projects
        .iter()
        .filter(|p| {
            let cust = st.customer(p.customer);
            let visible = p.visible && cust.is_some_and(|c| c.visible);
            st.project_accessible(caller, p)
                && visible_ok(vis, if vis == 2 { p.visible } else { visible })
                && (cust_ids.is_empty() || cust_ids.contains(&p.customer))
                // Unsure: how start/end combine when only one is given; each bounds its side.
                && start.is_none_or(|d| p.end.is_none_or(|e| e >= d))
                && end.is_none_or(|d| p.start.is_none_or(|s| s <= d))
                && global.is_none_or(|g| p.global_activities == (g == "1"))
                && term_matches(term, &[Some(&p.name), p.comment.as_deref(), p.order_number.as_deref(), Some(&p.number)])
        })
        .collect();
    let cname = |p: &data::Project| {
        st.customer(p.customer)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    v.sort_by(|a, b| {
        let o = match order_by {
            "id" => a.id.cmp(&b.id),
            "customer" => cname(a).cmp(&cname(b)).then(a.name.cmp(&b.name)),
            _ => a.name.cmp(&b.name),
        }
        .then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter().map(|p| js::project_collection(st, p)).collect(),
    )))
}

pub(super) fn activity_list(st: &State, req: &Req, caller: &User) -> Res {
    let projects = [
        digits_param(req, "project")?.into_iter().collect(),
        id_array(req, "projects")?,
    ]
    .concat();
    let vis = visible_param(req)?;
    let globals = one_of(req, "globals", &["0", "1", "true", "false"])?;
    let only_globals = matches!(globals, Some("1" | "true"));
    let asc = ascending(req, true)?;
    let order_by = one_of(req, "orderBy", &["id", "name", "project"])?.unwrap_or("name");
    let term = req.param("term").unwrap_or("");
    let mut proj_ids = Vec::new();
    for p in &projects {
        if let Some(pr) = st.project(*p) {
            if !st.project_accessible(caller, pr) {
                return Err(forbidden());
            }
            proj_ids.push(*p);
        }
    }
    // §5.5: a project filter lists that project's activities plus globals, unless exactly one
    // project is requested and it has globalActivities=false.
    let include_globals = !(proj_ids.len() == 1
        && st
            .project(proj_ids[0])
            .is_some_and(|p| !p.global_activities));
    let mut v: Vec<&data::Activity> = st
        .activities
        .iter()
        .filter(|a| {
            let parent_visible = match a.project.and_then(|p| st.project(p)) {
                Some(p) => p.visible && st.customer(p.customer).is_some_and(|c| c.visible),
                None => true,
            };
            let vis_ok = match vis {
                1 => a.visible && parent_visible,
                2 => !a.visible,
                _ => true,
            };
            let project_ok = if only_globals {
                a.project.is_none()
            } else if proj_ids.is_empty() {
                true
            } else {
                match a.project {
                    Some(p) => proj_ids.contains(&p),
                    None => include_globals,
                }
            };
            st.activity_accessible(caller, a)
                && vis_ok
                && project_ok
                && term_matches(
                    term,
                    &[Some(&a.name), a.comment.as_deref(), Some(&a.number)],
                )
        })
        .collect();
    let pname = |a: &data::Activity| {
        a.project
            .and_then(|p| st.project(p))
            .map(|p| p.name.clone())
    };
    v.sort_by(|a, b| {
        let o = match order_by {
            "id" => a.id.cmp(&b.id),
            "project" => pname(a).cmp(&pname(b)).then(a.name.cmp(&b.name)),
            _ => a.name.cmp(&b.name),
        }
        .then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter().map(|a| js::activity_collection(st, a)).collect(),
    )))
}

pub(super) fn user_list(st: &State, req: &Req, caller: &User) -> Res {
    if !can(caller, "view_user") {
        return Err(forbidden());
    }
    let vis = visible_param(req)?;
    let asc = ascending(req, true)?;
    let order_by =
        one_of(req, "orderBy", &["id", "username", "alias", "email"])?.unwrap_or("username");
    let full = matches!(
        one_of(req, "full", &["0", "1", "true", "false"])?,
        Some("1" | "true")
    );
    let term = req.param("term").unwrap_or("");
    let mut v: Vec<&User> = st
        .users
        .iter()
        .filter(|u| {
            visible_ok(vis, u.enabled)
                && term_matches(
                    term,
                    &[
                        u.alias.as_deref(),
                        u.title.as_deref(),
                        u.account_number.as_deref(),
                        Some(&u.email),
                        Some(&u.username),
                    ],
                )
        })
        .collect();
    v.sort_by(|a, b| {
        let o = match order_by {
            "id" => a.id.cmp(&b.id),
            "alias" => a.alias.cmp(&b.alias),
            "email" => a.email.cmp(&b.email),
            _ => a.username.cmp(&b.username),
        }
        .then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter()
            .map(|u| {
                if full {
                    js::user_entity(st, u)
                } else {
                    js::user(u)
                }
            })
            .collect(),
    )))
}
