//! The WorkContract plugin's routes: path segments after `/api` to a [`Route`] and its methods.

use crate::sim::time;
use crate::sim::wire::id;

/// The plugin's routes (segments after `/api`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Absences,
    Absence(u64),
    AbsenceAction(u64, &'static str),
    AbsenceTypes,
    AbsenceCalendar,
    Holidays,
    HolidayCalendar,
    Holiday(u64),
    HolidayGroup(u64),
    /// `lock` or `unlock` of a user's month. `DELETE /api/work-contract/lock|unlock/{user}/{month}`
    /// is what a 2026 client uses; contract §9.1 calls these paths unverified. The July 2025
    /// export documents only `DELETE /api/work-contract/approval/{user}/{month}` ("unlock
    /// months"), simulated as an alias of `unlock`.
    Contract(&'static str, u64, i64),
}

/// Matches a plugin route; `None` = not a plugin route.
pub fn route(segs: &[&str]) -> Option<(Route, &'static [&'static str])> {
    use Route::*;
    const GET: &[&str] = &["GET"];
    const LIST: &[&str] = &["GET", "POST"];
    const PATCH: &[&str] = &["PATCH"];
    const DELETE: &[&str] = &["DELETE"];
    Some(match segs {
        ["absences"] => (Absences, LIST),
        ["absences", "types"] => (AbsenceTypes, GET),
        ["absences", "calendar"] => (AbsenceCalendar, GET),
        ["absences", n] => (Absence(id(n)?), DELETE),
        ["absences", n, action @ ("request" | "confirm" | "reject")] => {
            let action: &'static str = match *action {
                "request" => "request",
                "confirm" => "confirm",
                _ => "reject",
            };
            (AbsenceAction(id(n)?, action), PATCH)
        }
        ["public-holidays"] => (Holidays, GET),
        ["public-holidays", "calendar"] => (HolidayCalendar, GET),
        ["public-holidays", "group", n] => (HolidayGroup(id(n)?), DELETE),
        ["public-holidays", n] => (Holiday(id(n)?), DELETE),
        [
            "work-contract",
            op @ ("lock" | "unlock" | "approval"),
            u,
            month,
        ] => {
            // The route requirement is a `Y-m-d` pattern: anything else does not match (404).
            let month = time::parse_date(month)?;
            let op: &'static str = if *op == "lock" { "lock" } else { "unlock" };
            (Contract(op, id(u)?, month), DELETE)
        }
        _ => return None,
    })
}
