//! Timesheet reads: the list with its filters and pagination, recent entries and favorites
//! (§5.1, §7.10).

use serde_json::Value;

use super::params::{ascending, date_param, digits_param, id_array, one_of, term_matches_meta};
use crate::sim::data::{self, State, User, can};
use crate::sim::json::{self as js, TsShape};
use crate::sim::time::Tz;
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, id, not_found};

pub(super) fn timesheet_list(st: &State, req: &Req, caller: &User) -> Res {
    if !can(caller, "view_own_timesheet") && !can(caller, "view_other_timesheet") {
        return Err(forbidden());
    }
    let tz = caller.tz;
    // Validate every parameter first. Unsure: FOSRest's ParamFetcher validates a parameter
    // when it is fetched, and Kimai fetches `user`/`users` only with `view_other_timesheet`; if
    // it never fetches them for a plain user, `user=me` would be ignored there rather than 400.
    // We choose the strict reading.
    let user_param = match req.param("user") {
        None => None,
        Some("all") => Some(None),
        Some(v) => Some(Some(id(v).ok_or_else(bad)?)),
    };
    let users_param = id_array(req, "users")?;
    let customers = [
        digits_param(req, "customer")?.into_iter().collect(),
        id_array(req, "customers")?,
    ]
    .concat();
    let projects = [
        digits_param(req, "project")?.into_iter().collect(),
        id_array(req, "projects")?,
    ]
    .concat();
    let activities = [
        digits_param(req, "activity")?.into_iter().collect(),
        id_array(req, "activities")?,
    ]
    .concat();
    let begin = date_param(req, "begin", tz)?;
    let end = date_param(req, "end", tz)?;
    let modified_after = date_param(req, "modified_after", Tz::Utc)?;
    let exported = one_of(req, "exported", &["0", "1"])?;
    let active = one_of(req, "active", &["0", "1"])?;
    let billable = one_of(req, "billable", &["0", "1"])?;
    let order_by = one_of(req, "orderBy", &["id", "begin", "end", "rate"])?.unwrap_or("begin");
    let asc = ascending(req, false)?;
    let page = digits_param(req, "page")?.unwrap_or(1).max(1);
    let size = match digits_param(req, "size")? {
        None | Some(0) => 50,
        Some(s) => s.min(500),
    };
    let full = one_of(req, "full", &["0", "1", "true", "false"])?;
    let expanded = matches!(full, Some("1" | "true"));
    let term = req.param("term").filter(|t| !t.trim().is_empty());

    // Users: only evaluated with view_other_timesheet; otherwise silently own records.
    let user_filter: Option<Vec<u64>> = if can(caller, "view_other_timesheet") {
        match user_param {
            Some(None) => {
                if can(caller, "view_all_data") {
                    None
                } else {
                    Some(
                        st.users
                            .iter()
                            .filter(|u| st.can_access_user(caller, u.id))
                            .map(|u| u.id)
                            .collect(),
                    )
                }
            }
            _ => {
                // Unsure: the contract does not say what an unknown `user` id does; it is
                // treated like an unknown `users[]` id (dropped).
                let mut ids: Vec<u64> = user_param
                    .flatten()
                    .into_iter()
                    .chain(users_param)
                    .collect();
                ids.retain(|id| st.user(*id).is_some());
                for id in &ids {
                    if !st.can_access_user(caller, *id) {
                        return Err(forbidden());
                    }
                }
                if ids.is_empty() {
                    Some(vec![caller.id])
                } else {
                    Some(ids)
                }
            }
        }
    } else {
        Some(vec![caller.id])
    };

    // Customer/project/activity: unknown ids ignored; found but inaccessible → 403.
    let mut cust_ids = Vec::new();
    for c in customers {
        if st.customer(c).is_some() {
            if !st.customer_accessible(caller, c) {
                return Err(forbidden());
            }
            cust_ids.push(c);
        }
    }
    let mut proj_ids = Vec::new();
    for p in projects {
        if let Some(pr) = st.project(p) {
            if !st.project_accessible(caller, pr) {
                return Err(forbidden());
            }
            proj_ids.push(p);
        }
    }
    let mut act_ids = Vec::new();
    for a in activities {
        if let Some(ac) = st.activity(a) {
            if !st.activity_accessible(caller, ac) {
                return Err(forbidden());
            }
            act_ids.push(a);
        }
    }
    let tag_names = req.array("tags");
    let tag_ids: Option<Vec<u64>> = if tag_names.is_empty() {
        None
    } else {
        let found: Vec<u64> = st
            .tags
            .iter()
            .filter(|t| t.visible && tag_names.contains(&t.name.as_str()))
            .map(|t| t.id)
            .collect();
        if found.is_empty() {
            return Err(bad());
        }
        Some(found)
    };

    let mut hits: Vec<&data::Timesheet> = st
        .timesheets
        .iter()
        .filter(|t| {
            user_filter.as_ref().is_none_or(|u| u.contains(&t.user))
                && (cust_ids.is_empty()
                    || st.project(t.project).is_some_and(|p| cust_ids.contains(&p.customer)))
                && (proj_ids.is_empty() || proj_ids.contains(&t.project))
                && (act_ids.is_empty() || act_ids.contains(&t.activity))
                && tag_ids.as_ref().is_none_or(|ids| t.tags.iter().any(|x| ids.contains(x)))
                && begin.is_none_or(|b| t.begin >= b)
                // §5.2: `end` compares the record's begin.
                && end.is_none_or(|e| t.begin <= e)
                && modified_after.is_none_or(|m| t.modified_at >= m)
                && exported.is_none_or(|e| t.exported == (e == "1"))
                && active.is_none_or(|a| t.end.is_none() == (a == "1"))
                && billable.is_none_or(|b| t.billable == (b == "1"))
                && term.is_none_or(|term| term_matches_meta(term, &[t.description.as_deref()], &t.meta))
        })
        .collect();
    hits.sort_by(|a, b| {
        let primary = match order_by {
            "id" => a.id.cmp(&b.id),
            // SQL puts NULL first in ASC (MySQL/MariaDB ordering), i.e. running records.
            "end" => a.end.cmp(&b.end),
            "rate" => a.rate.total_cmp(&b.rate),
            _ => a.begin.cmp(&b.begin),
        };
        let o = primary.then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    let total = hits.len() as u64;
    let pages = total.div_ceil(size).max(1);
    if page > pages {
        return Err(not_found());
    }
    let shape = if expanded {
        TsShape::Expanded
    } else {
        TsShape::Collection
    };
    let items: Vec<&data::Timesheet> = hits
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .copied()
        .collect();
    let rates = |t: &data::Timesheet| st.rates_visible(caller, t.user);
    Ok(
        Answer::raw_json(js::timesheets_body(st, &items, shape, &rates))
            .header("X-Page", page.to_string())
            .header("X-Total-Count", total.to_string())
            .header("X-Total-Pages", pages.to_string())
            .header("X-Per-Page", size.to_string()),
    )
}

/// One record as `caller` sees it: without the rate fields where Kimai 2.66 hides them.
pub(super) fn timesheet_for(
    st: &State,
    caller: &User,
    t: &data::Timesheet,
    shape: TsShape,
) -> Value {
    let mut v = js::timesheet(st, t, shape);
    if !st.rates_visible(caller, t.user) {
        js::strip_rates(&mut v);
    }
    v
}

pub(super) fn recent(st: &State, req: &Req, caller: &User) -> Res {
    if !can(caller, "view_own_timesheet") {
        return Err(forbidden());
    }
    // §5.2: no default begin despite the docs; size default 10, no cap.
    let begin = date_param(req, "begin", caller.tz)?;
    let size = digits_param(req, "size")?.unwrap_or(10) as usize;
    let mut own: Vec<&data::Timesheet> = st
        .timesheets
        .iter()
        .filter(|t| t.user == caller.id && begin.is_none_or(|b| t.begin >= b))
        .collect();
    own.sort_by(|a, b| b.begin.cmp(&a.begin).then(b.id.cmp(&a.id)));
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for t in own {
        if out.len() >= size {
            break;
        }
        if seen.contains(&(t.project, t.activity)) {
            continue;
        }
        seen.push((t.project, t.activity));
        out.push(timesheet_for(st, caller, t, TsShape::Expanded));
    }
    Ok(Answer::ok(Value::Array(out)))
}

/// Contract §5.11: the caller's favorite records, expanded, newest first; needs
/// `start_own_timesheet`. Favorites of deleted records are gone with them.
pub(super) fn favorites(st: &State, caller: &User) -> Res {
    if !can(caller, "start_own_timesheet") {
        return Err(forbidden());
    }
    let mut out: Vec<&data::Timesheet> = st
        .favorites
        .iter()
        .filter(|(u, _)| *u == caller.id)
        .filter_map(|(_, t)| st.timesheet_index(*t).map(|i| &st.timesheets[i]))
        .collect();
    out.sort_by(|a, b| b.begin.cmp(&a.begin).then(b.id.cmp(&a.id)));
    Ok(Answer::ok(Value::Array(
        out.iter()
            .map(|t| timesheet_for(st, caller, t, TsShape::Expanded))
            .collect(),
    )))
}

/// Contract §5.11: add or remove a favorite; only the caller's own records (another user's →
/// 403, unknown → 404); 204; removing a record that is no favorite is not an error. Whether
/// adding one twice is an error is not documented: treated as a no-op here.
pub(super) fn favorite(st: &mut State, add: bool, caller: &User, id: u64) -> Res {
    let Some(i) = st.timesheet_index(id) else {
        return Err(not_found());
    };
    if st.timesheets[i].user != caller.id || !can(caller, "start_own_timesheet") {
        return Err(forbidden());
    }
    let entry = (caller.id, id);
    if add {
        if !st.favorites.contains(&entry) {
            st.favorites.push(entry);
        }
    } else {
        st.favorites.retain(|f| *f != entry);
    }
    Ok(Answer::empty(204))
}
