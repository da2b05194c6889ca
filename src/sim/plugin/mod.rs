//! The WorkContract plugin of the simulated Kimai: absences, public holidays, calendar feeds
//! and the work-contract month locks (contract §9.1, schemas from
//! `openapi-2.37-workcontract.json`: `Absence2`, `AbsenceForm`, `PublicHoliday`,
//! `PublicHolidayGroup`, `CalendarEvent`).
//!
//! Owns the plugin's routes, its data ([`PluginState`], one field of `data::State`) and its
//! seed. When the simulator is started with `workcontract_plugin: false`, `api::handle` answers
//! every route here with 404 before authentication, exactly like a route that does not exist.
//!
//! The plugin is closed source and §9 is lower-confidence than core Kimai, so several rules
//! here are the simulator's own reading, marked "Assumption" where they are made: the status
//! values and their transitions, which role holds which plugin permission, weekends being
//! skipped by a multi-day create, and the 400/404 answers for malformed input. The observed
//! ones are followed: list filters need full `YYYY-MM-DDTHH:MM:SS` (date-only → 400), body
//! dates are `YYYY-MM-DD`, one create covers at most 30 days and never crosses a year boundary,
//! and a 404 answers an unknown user, group or language.
//!
//! Runs on worker threads with the state mutex held by `api::handle`; no I/O under it.
//!
//! One file per part: `store` (the plugin's data, plain and without `data::State`, so that
//! `State` can hold it), `route` (paths to routes), `rules` (its permissions), `absences`,
//! `holidays` (public holidays and month locks), `seed`; this file is the method table.

mod absences;
pub mod api_tokens;
mod holidays;
mod route;
mod rules;
pub(super) mod seed;
pub(super) mod store;
#[cfg(test)]
mod tests;

pub use route::{Route, route};

use crate::sim::data::{State, User};
use crate::sim::wire::{Answer, Req, Res, forbidden, not_found};
use absences::{absence_calendar, create, delete, list, transition, types};
use holidays::{contract_lock, holidays};
use rules::can;

pub fn dispatch(st: &mut State, req: &Req, caller: &User, route: Route) -> Res {
    use Route::*;
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    match (method, route) {
        ("GET", Absences) => list(st, req, caller),
        ("POST", Absences) => create(st, req, caller),
        ("DELETE", Absence(id)) => delete(st, caller, id),
        ("PATCH", AbsenceAction(id, action)) => transition(st, caller, id, action),
        ("GET", AbsenceTypes) => types(req),
        ("GET", AbsenceCalendar) => absence_calendar(st, req, caller),
        ("GET", Holidays) => holidays(st, req, caller, false),
        ("GET", HolidayCalendar) => holidays(st, req, caller, true),
        ("DELETE", Holiday(id)) => {
            let i = st
                .plugin
                .holidays
                .iter()
                .position(|h| h.id == id)
                .ok_or_else(not_found)?;
            if !can(caller, "edit_public_holidays") {
                return Err(forbidden());
            }
            st.plugin.holidays.remove(i);
            Ok(Answer::empty(204))
        }
        ("DELETE", HolidayGroup(id)) => {
            let i = st
                .plugin
                .groups
                .iter()
                .position(|g| g.id == id)
                .ok_or_else(not_found)?;
            if !can(caller, "edit_public_holidays") {
                return Err(forbidden());
            }
            st.plugin.groups.remove(i);
            st.plugin.holidays.retain(|h| h.group != id);
            Ok(Answer::empty(204))
        }
        // A plugin version without month locks in its API: the route does not exist.
        ("DELETE", Contract(..)) if !st.workcontract_month_locks => Err(not_found()),
        ("DELETE", Contract(op, user, day)) => contract_lock(st, caller, op, user, day),
        _ => Err(Answer::error(405)),
    }
}
