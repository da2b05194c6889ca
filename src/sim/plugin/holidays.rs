//! Public holidays (list and calendar feed) and the work-contract month locks (§9.1).

use serde_json::{Value, json};

use super::absences::{event, range};
use super::rules::can;
use super::store::PublicHoliday;
use crate::sim::data::{State, User};
use crate::sim::time::{self, DAY};
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, id, not_found};

pub(super) fn holidays(st: &State, req: &Req, caller: &User, calendar: bool) -> Res {
    let group = match req.param("group").filter(|v| !v.is_empty()) {
        None => st.plugin.groups.first().map(|g| g.id),
        Some(g) => {
            let g = id(g).ok_or_else(bad)?;
            Some(
                st.plugin
                    .groups
                    .iter()
                    .find(|x| x.id == g)
                    .ok_or_else(not_found)?
                    .id,
            )
        }
    };
    let (begin, end) = range(req)?;
    let mut v: Vec<&PublicHoliday> = st
        .plugin
        .holidays
        .iter()
        .filter(|h| {
            Some(h.group) == group
                && begin.is_none_or(|b| h.date >= b)
                && end.is_none_or(|e| h.date <= e)
        })
        .collect();
    v.sort_by_key(|h| (h.date, h.id));
    let tz = caller.tz;
    Ok(Answer::ok(Value::Array(
        v.iter()
            .map(|h| {
                if calendar {
                    event(h.name.clone(), "#FFC107", h.date, h.half_day, tz)
                } else {
                    let g = st.plugin.groups.iter().find(|g| g.id == h.group);
                    json!({
                        "id": h.id,
                        "date": time::format_datetime(tz.to_utc(h.date * DAY), tz),
                        "name": h.name,
                        "publicHolidayGroup": g.map(|g| json!({"id": g.id, "name": g.name})),
                        "halfDay": h.half_day,
                    })
                }
            })
            .collect(),
    )))
}

/// Lock one month, or unlock the given month and every later month of that year (the
/// July 2025 export's description of "unlock months").
pub(super) fn contract_lock(st: &mut State, caller: &User, op: &str, user: u64, day: i64) -> Res {
    st.user(user).ok_or_else(not_found)?;
    if !can(caller, "lock_times_contract") || !st.can_access_user(caller, user) {
        return Err(forbidden());
    }
    let (y, m, _) = time::civil_from_days(day);
    let first = time::days_from_civil(y, m, 1);
    let locks = &mut st.plugin.locked_months;
    if op == "lock" {
        if !locks.contains(&(user, first)) {
            locks.push((user, first));
        }
    } else {
        let year_end = time::days_from_civil(y, 12, 31);
        locks.retain(|(u, d)| !(*u == user && *d >= first && *d <= year_end));
    }
    Ok(Answer::empty(204))
}
