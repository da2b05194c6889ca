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

use serde_json::{Map, Value, json};

use super::data::{State, User, rank};
use super::json as js;
use super::time::{self, DAY, Tz};
use super::wire::{Answer, Req, Res, bad, forbidden, id, not_found};

/// The absence types of `AbsenceForm.type`, with their English and German labels.
pub const TYPES: &[(&str, &str, &str)] = &[
    ("holiday", "Vacation", "Urlaub"),
    ("time_off", "Time off", "Zeitausgleich"),
    ("sickness", "Sickness", "Krankheit"),
    ("sickness_child", "Sick child", "Kind krank"),
    ("other", "Other", "Sonstiges"),
    ("parental", "Parental leave", "Elternzeit"),
    ("unpaid_vacation", "Unpaid vacation", "Unbezahlter Urlaub"),
];

/// Longest range one `POST /absences` accepts (third-party observation, §9.1).
pub const MAX_CREATE_DAYS: i64 = 30;
/// Length of a full absence day when no duration is given (the seeded work contracts' day).
const CONTRACT_DAY_SECS: i64 = 8 * 3600;

#[derive(Clone, Debug)]
pub struct Absence {
    pub id: u64,
    pub user: u64,
    /// Day number (days since 1970-01-01), in the owner's calendar.
    pub date: i64,
    pub kind: &'static str,
    /// Assumption: `new` (created, approval not yet requested), `open` (approval requested),
    /// `approved`, `rejected`. The list filter `open` covers `new` and `open`.
    pub status: &'static str,
    pub half_day: bool,
    /// Seconds; `Absence2.duration` is always positive.
    pub duration: i64,
    pub comment: String,
}

#[derive(Clone, Debug)]
pub struct HolidayGroup {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct PublicHoliday {
    pub id: u64,
    pub group: u64,
    pub date: i64,
    pub name: String,
    pub half_day: bool,
}

/// Everything the plugin stores.
#[derive(Clone, Debug, Default)]
pub struct PluginState {
    pub absences: Vec<Absence>,
    pub next_absence_id: u64,
    pub groups: Vec<HolidayGroup>,
    pub holidays: Vec<PublicHoliday>,
    /// Locked months: (user id, day number of the month's first day).
    pub locked_months: Vec<(u64, i64)>,
    /// Users whose absences answer 403 to everyone but themselves (`Sim::deny_absence_reads`:
    /// an instance whose permission setup hides one user's contract).
    pub denied_reads: Vec<u64>,
}

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

/// Assumption: the plugin's permissions by role. §11 gives `contract_other_profile` to
/// ADMIN+; the rest are not in the contract and are granted as a plausible default set.
fn can(user: &User, perm: &str) -> bool {
    let need = match perm {
        "contract_other_profile" | "edit_public_holidays" | "lock_times_contract" => 2,
        // ROLE_USER lacks `delete_own_absence` (§9.1).
        "approve_absence" | "delete_own_absence" => 1,
        _ => return false,
    };
    rank(user.role) >= need
}

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
        ("DELETE", Contract(op, user, day)) => contract_lock(st, caller, op, user, day),
        _ => Err(Answer::error(405)),
    }
}

// ---------------------------------------------------------------------------------------------
// Absences

/// The user a read is about: `user` (digits) or the caller. Unknown → 404; another user
/// without `contract_other_profile` → 403.
fn subject(st: &State, req: &Req, caller: &User) -> Result<User, Answer> {
    let Some(raw) = req.param("user").filter(|v| !v.is_empty()) else {
        return Ok(caller.clone());
    };
    let uid = id(raw).ok_or_else(bad)?;
    let u = st.user(uid).ok_or_else(not_found)?.clone();
    if u.id != caller.id
        && (!can(caller, "contract_other_profile") || st.plugin.denied_reads.contains(&u.id))
    {
        return Err(forbidden());
    }
    Ok(u)
}

/// `begin`/`end` list filters: full `YYYY-MM-DDTHH:MM:SS` (date-only → 400), as local days
/// of `tz`. Begin after end answers 404 (observed by the Python client, §2.2 hints).
fn range(req: &Req) -> Result<(Option<i64>, Option<i64>), Answer> {
    let day = |name: &str| -> Result<Option<i64>, Answer> {
        match req.param(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => time::parse_local_strict(v)
                .map(|l| Some(l.div_euclid(DAY)))
                .ok_or_else(bad),
        }
    };
    let (b, e) = (day("begin")?, day("end")?);
    if let (Some(b), Some(e)) = (b, e)
        && b > e
    {
        return Err(not_found());
    }
    Ok((b, e))
}

fn status_filter(req: &Req) -> Result<&'static [&'static str], Answer> {
    Ok(match req.param("status").filter(|v| !v.is_empty()) {
        None | Some("approved") => &["approved"],
        Some("open") => &["new", "open"],
        Some("all") => &["new", "open", "approved", "rejected"],
        Some(_) => return Err(bad()),
    })
}

fn absence_json(st: &State, a: &Absence) -> Value {
    let owner = st.user(a.user);
    let tz = owner.map(|u| u.tz).unwrap_or(Tz::Utc);
    json!({
        "id": a.id,
        "user": owner.map(js::user),
        "date": time::format_datetime(tz.to_utc(a.date * DAY), tz),
        "duration": a.duration,
        "type": a.kind,
        "status": a.status,
        "halfDay": a.half_day,
        "comment": a.comment,
    })
}

fn selected<'a>(st: &'a State, req: &Req, user: &User) -> Result<Vec<&'a Absence>, Answer> {
    let (begin, end) = range(req)?;
    let statuses = status_filter(req)?;
    let mut v: Vec<&Absence> = st
        .plugin
        .absences
        .iter()
        .filter(|a| {
            a.user == user.id
                && begin.is_none_or(|b| a.date >= b)
                && end.is_none_or(|e| a.date <= e)
                && statuses.contains(&a.status)
        })
        .collect();
    v.sort_by_key(|a| (a.date, a.id));
    Ok(v)
}

fn list(st: &State, req: &Req, caller: &User) -> Res {
    let user = subject(st, req, caller)?;
    let v = selected(st, req, &user)?;
    Ok(Answer::ok(Value::Array(
        v.iter().map(|a| absence_json(st, a)).collect(),
    )))
}

fn label(kind: &str, german: bool) -> &'static str {
    TYPES
        .iter()
        .find(|t| t.0 == kind)
        .map(|t| if german { t.2 } else { t.1 })
        .unwrap_or("Other")
}

/// Assumption: `en`, `de` and their regional forms are known; anything else answers 404 like
/// an unknown locale does in the plugin (§2.2 hints).
fn language(req: &Req) -> Result<bool, Answer> {
    match req.param("language").filter(|v| !v.is_empty()) {
        None => Ok(false),
        Some(l) => {
            let base = l.split(['_', '-']).next().unwrap_or(l);
            match base {
                "en" => Ok(false),
                "de" => Ok(true),
                _ => Err(not_found()),
            }
        }
    }
}

fn types(req: &Req) -> Res {
    let german = language(req)?;
    let mut m = Map::new();
    for (key, en, de) in TYPES {
        m.insert(key.to_string(), json!(if german { de } else { en }));
    }
    Ok(Answer::ok(Value::Object(m)))
}

/// A calendar event: all-day from the day's midnight to the next midnight, in `tz`.
fn event(title: String, color: &str, day: i64, half: bool, tz: Tz) -> Value {
    json!({
        "title": if half { format!("{title} (half day)") } else { title },
        "color": color,
        "textColor": "#ffffff",
        "allDay": true,
        "start": time::format_datetime(tz.to_utc(day * DAY), tz),
        "end": time::format_datetime(tz.to_utc((day + 1) * DAY), tz),
    })
}

fn type_color(kind: &str) -> &'static str {
    match kind {
        "holiday" => "#4CAF50",
        "sickness" | "sickness_child" => "#f41a00",
        "time_off" => "#2196F3",
        "parental" => "#FF9800",
        "unpaid_vacation" => "#718096",
        _ => "#cc317c",
    }
}

fn absence_calendar(st: &State, req: &Req, caller: &User) -> Res {
    let german = language(req)?;
    let user = subject(st, req, caller)?;
    let v = selected(st, req, &user)?;
    let display = user.alias.clone().unwrap_or_else(|| user.username.clone());
    Ok(Answer::ok(Value::Array(
        v.iter()
            .map(|a| {
                event(
                    format!("{}: {display}", label(a.kind, german)),
                    type_color(a.kind),
                    a.date,
                    a.half_day,
                    user.tz,
                )
            })
            .collect(),
    )))
}

/// §2.2-shaped form error for the absence form (fields in `AbsenceForm` order).
fn form_error(global: &[&str], fields: &[(&str, &str)]) -> Answer {
    let mut children = Map::new();
    for name in [
        "halfDay", "duration", "comment", "user", "date", "end", "type",
    ] {
        let errs: Vec<&str> = fields
            .iter()
            .filter(|(f, _)| *f == name)
            .map(|(_, m)| *m)
            .collect();
        children.insert(
            name.to_string(),
            if errs.is_empty() {
                json!({})
            } else {
                json!({"errors": errs})
            },
        );
    }
    let mut errors = Map::new();
    if !global.is_empty() {
        errors.insert("errors".into(), json!(global));
    }
    errors.insert("children".into(), Value::Object(children));
    Answer::json(
        400,
        &json!({"code": 400, "message": "Validation Failed", "errors": errors}),
    )
}

/// Kimai's duration input (§4.2): `h:mm[:ss]`, decimal hours (`1.5`, `1,5`), `2h30m`.
fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.contains(':') {
        let p: Vec<i64> = s
            .split(':')
            .map(|x| x.parse().ok())
            .collect::<Option<Vec<i64>>>()?;
        return match p.as_slice() {
            [h, m] if *m < 60 => Some(h * 3600 + m * 60),
            [h, m, sec] if *m < 60 && *sec < 60 => Some(h * 3600 + m * 60 + sec),
            _ => None,
        };
    }
    if let Ok(h) = s.replace(',', ".").parse::<f64>() {
        return (h.is_finite() && h >= 0.0).then(|| (h * 3600.0).round() as i64);
    }
    let mut total = 0i64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
        }
    }
    num.is_empty().then_some(total)
}

fn create(st: &mut State, req: &Req, caller: &User) -> Res {
    let body: Map<String, Value> = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => m,
        _ => return Err(bad()),
    };
    const FIELDS: &[&str] = &[
        "halfDay", "duration", "comment", "user", "date", "end", "type",
    ];
    if body.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(form_error(
            &["This form should not contain extra fields."],
            &[],
        ));
    }
    let text = |k: &str| -> Option<String> {
        match body.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut errs: Vec<(&str, &str)> = Vec::new();
    let comment = text("comment");
    if comment.is_none() {
        errs.push(("comment", "This value should not be blank."));
    }
    let kind = match text("type") {
        None => {
            errs.push(("type", "This value should not be blank."));
            None
        }
        Some(t) => match TYPES.iter().find(|x| x.0 == t) {
            Some(x) => Some(x.0),
            None => {
                errs.push(("type", "The selected choice is invalid."));
                None
            }
        },
    };
    let date = match text("date") {
        None => {
            errs.push(("date", "This value should not be blank."));
            None
        }
        Some(d) => {
            let parsed = time::parse_date(&d);
            if parsed.is_none() {
                errs.push(("date", "Please enter a valid date."));
            }
            parsed
        }
    };
    let end = match text("end") {
        None => None,
        Some(d) => {
            let parsed = time::parse_date(&d);
            if parsed.is_none() {
                errs.push(("end", "Please enter a valid date."));
            }
            parsed
        }
    };
    let owner = match body.get("user") {
        None | Some(Value::Null) => Some(caller.clone()),
        Some(v) => {
            let found = v
                .as_u64()
                .or_else(|| v.as_str().and_then(id))
                .and_then(|u| st.user(u))
                .cloned();
            if found.is_none() {
                errs.push(("user", "The selected choice is invalid."));
            }
            found
        }
    };
    let half_day = matches!(body.get("halfDay"), Some(Value::Bool(true)))
        || matches!(body.get("halfDay"), Some(Value::String(s)) if s == "1" || s == "true");
    let duration = match text("duration") {
        None => None,
        Some(d) => {
            let parsed = parse_duration(&d).filter(|s| *s > 0);
            if parsed.is_none() {
                errs.push(("duration", "This value is not a valid duration."));
            }
            parsed
        }
    };
    if let (Some(kind), Some(_)) = (kind, duration)
        && !matches!(kind, "time_off" | "other")
    {
        errs.push(("duration", "This absence type does not support a duration."));
    }
    if let (Some(kind), Some(_)) = (kind, end)
        && matches!(kind, "time_off" | "other")
    {
        errs.push(("end", "This absence type does not support an end date."));
    }
    if let (Some(d), Some(e)) = (date, end) {
        let (dy, _, _) = time::civil_from_days(d);
        let (ey, _, _) = time::civil_from_days(e);
        if e < d {
            errs.push((
                "end",
                "The end date must not be earlier than the start date.",
            ));
        } else if e - d + 1 > MAX_CREATE_DAYS {
            errs.push(("end", "An absence may cover at most 30 days."));
        } else if dy != ey {
            errs.push(("end", "An absence must not span two years."));
        } else if half_day && e != d {
            errs.push(("halfDay", "A half day can only be a single day."));
        }
    }
    if !errs.is_empty() {
        return Err(form_error(&[], &errs));
    }
    let (Some(owner), Some(kind), Some(date), Some(comment)) = (owner, kind, date, comment) else {
        return Err(bad());
    };
    if owner.id != caller.id && !can(caller, "contract_other_profile") {
        return Err(forbidden());
    }
    let end = end.unwrap_or(date);
    // Assumption: a multi-day absence skips Saturdays and Sundays (a one-day one never does).
    let days: Vec<i64> = (date..=end)
        .filter(|d| date == end || time::weekday(*d) < 5)
        .collect();
    // Assumption: sickness needs no approval; every other type starts as `new`.
    let status = if matches!(kind, "sickness" | "sickness_child") {
        "approved"
    } else {
        "new"
    };
    let mut out = Vec::new();
    for day in days {
        if st
            .plugin
            .absences
            .iter()
            .any(|a| a.user == owner.id && a.date == day && a.status != "rejected")
        {
            return Err(form_error(
                &[],
                &[("date", "There is already an absence on this day.")],
            ));
        }
        let a = Absence {
            id: st.plugin.next_absence_id,
            user: owner.id,
            date: day,
            kind,
            status,
            half_day,
            duration: duration.unwrap_or(if half_day {
                CONTRACT_DAY_SECS / 2
            } else {
                CONTRACT_DAY_SECS
            }),
            comment: comment.clone(),
        };
        st.plugin.next_absence_id += 1;
        out.push(absence_json(st, &a));
        st.plugin.absences.push(a);
    }
    Ok(Answer::json(200, &Value::Array(out)))
}

fn load(st: &State, caller: &User, id: u64) -> Result<usize, Answer> {
    let i = st
        .plugin
        .absences
        .iter()
        .position(|a| a.id == id)
        .ok_or_else(not_found)?;
    let owner = st.plugin.absences[i].user;
    if owner != caller.id && !can(caller, "contract_other_profile") {
        return Err(forbidden());
    }
    Ok(i)
}

fn delete(st: &mut State, caller: &User, id: u64) -> Res {
    let i = load(st, caller, id)?;
    let own = st.plugin.absences[i].user == caller.id;
    if own && !can(caller, "delete_own_absence") {
        return Err(forbidden());
    }
    st.plugin.absences.remove(i);
    Ok(Answer::empty(204))
}

/// Assumption: a supervisor or a lead of one of the owner's teams may approve (with
/// `approve_absence`); admins (`contract_other_profile`) may approve anyone's, nobody their own.
fn may_approve(st: &State, caller: &User, owner: u64) -> bool {
    if owner == caller.id || !can(caller, "approve_absence") {
        return false;
    }
    can(caller, "contract_other_profile")
        || st.user(owner).and_then(|u| u.supervisor) == Some(caller.id)
        || st.teams.iter().any(|t| {
            t.members.iter().any(|m| m.0 == caller.id && m.1)
                && t.members.iter().any(|m| m.0 == owner)
        })
}

fn service_error(msg: &str) -> Answer {
    Answer::json(
        400,
        &json!({"code": "400", "message": "Validation Failed", "errors": {"children": {"status": {"errors": [msg]}}}}),
    )
}

fn transition(st: &mut State, caller: &User, id: u64, action: &str) -> Res {
    let i = st
        .plugin
        .absences
        .iter()
        .position(|a| a.id == id)
        .ok_or_else(not_found)?;
    let (owner, status) = (st.plugin.absences[i].user, st.plugin.absences[i].status);
    let next = match action {
        "request" => {
            if owner != caller.id && !can(caller, "contract_other_profile") {
                return Err(forbidden());
            }
            if status != "new" {
                return Err(service_error(
                    "This absence is not waiting for an approval request.",
                ));
            }
            "open"
        }
        _ => {
            if !may_approve(st, caller, owner) {
                return Err(forbidden());
            }
            if !matches!(status, "new" | "open") {
                return Err(service_error("This absence is not waiting for approval."));
            }
            if action == "confirm" {
                "approved"
            } else {
                "rejected"
            }
        }
    };
    st.plugin.absences[i].status = next;
    Ok(Answer::ok(absence_json(st, &st.plugin.absences[i])))
}

// ---------------------------------------------------------------------------------------------
// Public holidays and month locks

fn holidays(st: &State, req: &Req, caller: &User, calendar: bool) -> Res {
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
fn contract_lock(st: &mut State, caller: &User, op: &str, user: u64, day: i64) -> Res {
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

// ---------------------------------------------------------------------------------------------
// Seed

/// The nearest weekday on or after `day`.
fn weekday_on_or_after(day: i64) -> i64 {
    let mut d = day;
    while time::weekday(d) >= 5 {
        d += 1;
    }
    d
}

/// Public holidays (two groups, three years around `today`) and a few absences per user, all
/// relative to `today` (the Berlin day of the seed's "now").
pub fn seed(users: &[User], today: i64) -> PluginState {
    let mut p = PluginState {
        next_absence_id: 1,
        groups: vec![
            HolidayGroup {
                id: 1,
                name: "Germany (Berlin)".into(),
            },
            HolidayGroup {
                id: 2,
                name: "United States".into(),
            },
        ],
        ..PluginState::default()
    };
    let (year, _, _) = time::civil_from_days(today);
    let berlin: &[(u32, u32, &str, bool)] = &[
        (1, 1, "New Year's Day", false),
        (3, 8, "International Women's Day", false),
        (5, 1, "Labour Day", false),
        (10, 3, "German Unity Day", false),
        (12, 24, "Christmas Eve", true),
        (12, 25, "Christmas Day", false),
        (12, 26, "Second Day of Christmas", false),
        (12, 31, "New Year's Eve", true),
    ];
    let us: &[(u32, u32, &str, bool)] = &[
        (1, 1, "New Year's Day", false),
        (7, 4, "Independence Day", false),
        (12, 25, "Christmas Day", false),
    ];
    let mut hid = 1;
    for y in year - 1..=year + 1 {
        for (group, list) in [(1, berlin), (2, us)] {
            for (m, d, name, half) in list {
                p.holidays.push(PublicHoliday {
                    id: hid,
                    group,
                    date: time::days_from_civil(y, *m, *d),
                    name: name.to_string(),
                    half_day: *half,
                });
                hid += 1;
            }
        }
    }
    // (user, first day offset from today, number of weekdays, type, status, half day,
    // duration seconds or None, comment)
    type Row = (
        u64,
        i64,
        i64,
        &'static str,
        &'static str,
        bool,
        Option<i64>,
        &'static str,
    );
    let rows: &[Row] = &[
        (5, -45, 5, "holiday", "approved", false, None, "Summer trip"),
        (5, -10, 1, "sickness", "approved", false, None, "Flu"),
        (5, 20, 3, "holiday", "new", false, None, "Long weekend"),
        (6, 0, 2, "holiday", "approved", false, None, "Family visit"),
        (
            6,
            -20,
            1,
            "sickness_child",
            "approved",
            true,
            None,
            "Kindergarten closed",
        ),
        (
            7,
            -3,
            1,
            "time_off",
            "approved",
            false,
            Some(2 * 3600),
            "Overtime compensation",
        ),
        (7, 30, 1, "holiday", "open", false, None, "Conference"),
        (
            3,
            -100,
            2,
            "holiday",
            "approved",
            false,
            None,
            "Short break",
        ),
        (
            3,
            14,
            1,
            "other",
            "open",
            false,
            Some(4 * 3600),
            "Moving house",
        ),
        (4, -1, 1, "sickness", "approved", false, None, "Migraine"),
        (2, 60, 3, "holiday", "approved", false, None, "Hiking"),
        (
            2,
            -30,
            1,
            "holiday",
            "rejected",
            false,
            None,
            "Team event clash",
        ),
    ];
    for (user, offset, n, kind, status, half, duration, comment) in rows {
        if !users.iter().any(|u| u.id == *user) {
            continue;
        }
        let mut day = weekday_on_or_after(today + offset);
        for _ in 0..*n {
            p.absences.push(Absence {
                id: p.next_absence_id,
                user: *user,
                date: day,
                kind,
                status,
                half_day: *half,
                duration: duration.unwrap_or(if *half {
                    CONTRACT_DAY_SECS / 2
                } else {
                    CONTRACT_DAY_SECS
                }),
                comment: comment.to_string(),
            });
            p.next_absence_id += 1;
            day = weekday_on_or_after(day + 1);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::api;
    use super::super::data::{self, State};
    use super::super::wire::Req;
    use super::*;

    /// 2026-08-13T05:46:40Z (07:46 in Berlin), a Thursday.
    const NOW: i64 = 1_786_600_000;

    fn state(plugin: bool) -> State {
        let mut st = data::seed(42, NOW, plugin);
        st.fixed_now = Some(NOW);
        st
    }

    fn token(st: &State, username: &str) -> String {
        st.users
            .iter()
            .find(|u| u.username == username)
            .unwrap()
            .token
            .clone()
    }

    fn call(st: &mut State, who: &str, method: &str, path_query: &str, body: &str) -> (u16, Value) {
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        let req = Req {
            method: method.into(),
            path: path.into(),
            query: query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
            authorization: Some(format!("Bearer {}", token(st, who))),
            x_auth: None,
            body: body.as_bytes().to_vec(),
        };
        let out = api::handle(st, &req);
        let v = serde_json::from_slice(&out.reply.body).unwrap_or(Value::Null);
        (out.reply.status, v)
    }

    const ADMIN: &str = "anna_admin";
    const LEAD: &str = "tony_teamlead";
    const USER: &str = "john_user";

    #[test]
    fn without_the_plugin_every_route_is_unknown() {
        let mut st = state(false);
        for (m, p) in [
            ("GET", "/api/absences"),
            ("POST", "/api/absences"),
            ("GET", "/api/absences/types"),
            ("PATCH", "/api/absences/1/confirm"),
            ("GET", "/api/public-holidays"),
            ("DELETE", "/api/work-contract/lock/5/2026-08-01"),
        ] {
            assert_eq!(call(&mut st, ADMIN, m, p, "{}").0, 404, "{m} {p}");
        }
        let mut st = state(true);
        assert_eq!(call(&mut st, ADMIN, "GET", "/api/absences", "").0, 200);
    }

    #[test]
    fn list_filters_permissions_and_dates() {
        let mut st = state(true);
        // Own absences, approved by default.
        let (s, v) = call(&mut st, USER, "GET", "/api/absences", "");
        assert_eq!(s, 200);
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .all(|a| a["status"] == "approved" && a["user"]["id"] == 5)
        );
        assert_eq!(v.as_array().unwrap().len(), 6, "{v}");
        let (_, all) = call(&mut st, USER, "GET", "/api/absences?status=all", "");
        assert_eq!(all.as_array().unwrap().len(), 9);
        let (_, open) = call(&mut st, USER, "GET", "/api/absences?status=open", "");
        assert!(
            open.as_array()
                .unwrap()
                .iter()
                .all(|a| a["status"] == "new")
        );
        // Another user: contract_other_profile (ADMIN+).
        assert_eq!(
            call(&mut st, USER, "GET", "/api/absences?user=6", "").0,
            403
        );
        assert_eq!(
            call(&mut st, LEAD, "GET", "/api/absences?user=6", "").0,
            403
        );
        assert_eq!(
            call(&mut st, ADMIN, "GET", "/api/absences?user=6", "").0,
            200
        );
        assert_eq!(
            call(&mut st, ADMIN, "GET", "/api/absences?user=99", "").0,
            404
        );
        // Dates: full local date-time only; begin after end → 404.
        assert_eq!(
            call(&mut st, USER, "GET", "/api/absences?begin=2026-08-01", "").0,
            400
        );
        assert_eq!(
            call(
                &mut st,
                USER,
                "GET",
                "/api/absences?begin=2026-08-02T00:00:00&end=2026-08-01T23:59:59",
                ""
            )
            .0,
            404
        );
        let (s, v) = call(
            &mut st,
            ADMIN,
            "GET",
            "/api/absences?user=6&begin=2026-08-13T00:00:00&end=2026-08-13T23:59:59",
            "",
        );
        assert_eq!(s, 200);
        assert_eq!(v.as_array().unwrap().len(), 1, "maria is away today: {v}");
        assert_eq!(v[0]["date"], "2026-08-13T00:00:00+0200");
        assert_eq!(
            call(&mut st, USER, "GET", "/api/absences?status=bad", "").0,
            400
        );
        st.plugin.denied_reads.push(6);
        assert_eq!(
            call(&mut st, ADMIN, "GET", "/api/absences?user=6", "").0,
            403
        );
    }

    #[test]
    fn create_validates_like_a_form_and_returns_one_absence_per_weekday() {
        let mut st = state(true);
        let (s, v) = call(
            &mut st,
            USER,
            "POST",
            "/api/absences",
            r#"{"comment":"Trip","date":"2026-10-09","end":"2026-10-13","type":"holiday"}"#,
        );
        assert_eq!(s, 200, "{v}");
        let days: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["date"].as_str().unwrap())
            .collect();
        // Friday, (weekend skipped), Monday, Tuesday.
        assert_eq!(
            days,
            [
                "2026-10-09T00:00:00+0200",
                "2026-10-12T00:00:00+0200",
                "2026-10-13T00:00:00+0200"
            ]
        );
        assert_eq!(v[0]["status"], "new");
        // 31 days, a year boundary, missing fields, extra fields, a duration on a holiday.
        for (body, field) in [
            (
                r#"{"comment":"x","date":"2026-09-01","end":"2026-10-01","type":"holiday"}"#,
                "end",
            ),
            (
                r#"{"comment":"x","date":"2026-12-30","end":"2027-01-02","type":"holiday"}"#,
                "end",
            ),
            (r#"{"date":"2026-09-01","type":"holiday"}"#, "comment"),
            (
                r#"{"comment":"x","date":"2026-09-01","type":"bogus"}"#,
                "type",
            ),
            (
                r#"{"comment":"x","date":"01.09.2026","type":"holiday"}"#,
                "date",
            ),
            (
                r#"{"comment":"x","date":"2026-09-21","type":"holiday","duration":"2:00"}"#,
                "duration",
            ),
        ] {
            let (s, v) = call(&mut st, USER, "POST", "/api/absences", body);
            assert_eq!(s, 400, "{body}");
            assert!(
                v["errors"]["children"][field]["errors"].is_array(),
                "{body}: {v}"
            );
        }
        let (s, v) = call(
            &mut st,
            USER,
            "POST",
            "/api/absences",
            r#"{"comment":"x","date":"2026-09-21","type":"holiday","foo":1}"#,
        );
        assert_eq!(
            (s, v["errors"]["errors"][0].as_str()),
            (400, Some("This form should not contain extra fields."))
        );
        // Time off with a duration; for another user only with contract_other_profile.
        let body = r#"{"comment":"Dentist","date":"2026-09-22","type":"time_off","duration":"1:30","user":6}"#;
        assert_eq!(call(&mut st, USER, "POST", "/api/absences", body).0, 403);
        let (s, v) = call(&mut st, ADMIN, "POST", "/api/absences", body);
        assert_eq!(
            (s, &v[0]["duration"], &v[0]["user"]["id"]),
            (200, &json!(5400), &json!(6))
        );
    }

    #[test]
    fn approval_workflow_and_delete() {
        let mut st = state(true);
        let (_, v) = call(
            &mut st,
            USER,
            "POST",
            "/api/absences",
            r#"{"comment":"x","date":"2026-10-05","type":"holiday"}"#,
        );
        let id = v[0]["id"].as_u64().unwrap();
        // Nobody approves their own; a plain user cannot approve.
        assert_eq!(
            call(
                &mut st,
                USER,
                "PATCH",
                &format!("/api/absences/{id}/confirm"),
                ""
            )
            .0,
            403
        );
        let (s, v) = call(
            &mut st,
            USER,
            "PATCH",
            &format!("/api/absences/{id}/request"),
            "",
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("open")));
        assert_eq!(
            call(
                &mut st,
                USER,
                "PATCH",
                &format!("/api/absences/{id}/request"),
                ""
            )
            .0,
            400
        );
        // john's supervisor is tony (the team lead).
        let (s, v) = call(
            &mut st,
            LEAD,
            "PATCH",
            &format!("/api/absences/{id}/confirm"),
            "",
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("approved")));
        assert_eq!(
            call(
                &mut st,
                LEAD,
                "PATCH",
                &format!("/api/absences/{id}/reject"),
                ""
            )
            .0,
            400
        );
        assert_eq!(
            call(&mut st, LEAD, "PATCH", "/api/absences/9999/reject", "").0,
            404
        );
        // ROLE_USER lacks delete_own_absence; admins delete anyone's.
        assert_eq!(
            call(&mut st, USER, "DELETE", &format!("/api/absences/{id}"), "").0,
            403
        );
        assert_eq!(
            call(&mut st, ADMIN, "DELETE", &format!("/api/absences/{id}"), "").0,
            204
        );
        assert_eq!(
            call(&mut st, ADMIN, "DELETE", &format!("/api/absences/{id}"), "").0,
            404
        );
    }

    #[test]
    fn types_calendars_and_holidays() {
        let mut st = state(true);
        let (_, v) = call(&mut st, USER, "GET", "/api/absences/types", "");
        assert_eq!(v["holiday"], "Vacation");
        let (_, v) = call(
            &mut st,
            USER,
            "GET",
            "/api/absences/types?language=de_DE",
            "",
        );
        assert_eq!(v["sickness"], "Krankheit");
        assert_eq!(
            call(&mut st, USER, "GET", "/api/absences/types?language=xx", "").0,
            404
        );
        let (s, v) = call(
            &mut st,
            ADMIN,
            "GET",
            "/api/absences/calendar?user=6&begin=2026-08-13T00:00:00&end=2026-08-14T23:59:59",
            "",
        );
        assert_eq!(s, 200);
        assert_eq!(v[0]["title"], "Vacation: maria_user");
        assert_eq!(v[0]["allDay"], true);
        let (_, v) = call(
            &mut st,
            USER,
            "GET",
            "/api/public-holidays?begin=2026-12-01T00:00:00&end=2026-12-31T23:59:59",
            "",
        );
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Christmas Eve",
                "Christmas Day",
                "Second Day of Christmas",
                "New Year's Eve"
            ]
        );
        assert_eq!(v[0]["halfDay"], true);
        assert_eq!(v[0]["publicHolidayGroup"]["name"], "Germany (Berlin)");
        let (_, v) = call(
            &mut st,
            USER,
            "GET",
            "/api/public-holidays?group=2&begin=2026-07-01T00:00:00&end=2026-07-31T23:59:59",
            "",
        );
        assert_eq!(v[0]["name"], "Independence Day");
        assert_eq!(
            call(&mut st, USER, "GET", "/api/public-holidays?group=9", "").0,
            404
        );
        let (_, v) = call(
            &mut st,
            USER,
            "GET",
            "/api/public-holidays/calendar?begin=2026-10-03T00:00:00&end=2026-10-03T23:59:59",
            "",
        );
        assert_eq!(v[0]["title"], "German Unity Day");
        let hid = st.plugin.holidays[0].id;
        assert_eq!(
            call(
                &mut st,
                USER,
                "DELETE",
                &format!("/api/public-holidays/{hid}"),
                ""
            )
            .0,
            403
        );
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                &format!("/api/public-holidays/{hid}"),
                ""
            )
            .0,
            204
        );
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                &format!("/api/public-holidays/{hid}"),
                ""
            )
            .0,
            404
        );
    }

    #[test]
    fn month_locks() {
        let mut st = state(true);
        let aug = time::days_from_civil(2026, 8, 1);
        let sep = time::days_from_civil(2026, 9, 1);
        assert_eq!(
            call(
                &mut st,
                USER,
                "DELETE",
                "/api/work-contract/lock/5/2026-08-01",
                ""
            )
            .0,
            403
        );
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                "/api/work-contract/lock/5/2026-08-15",
                ""
            )
            .0,
            204
        );
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                "/api/work-contract/lock/5/2026-09-01",
                ""
            )
            .0,
            204
        );
        assert_eq!(st.plugin.locked_months, vec![(5, aug), (5, sep)]);
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                "/api/work-contract/lock/99/2026-08-01",
                ""
            )
            .0,
            404
        );
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                "/api/work-contract/lock/5/2026-13-01",
                ""
            )
            .0,
            404
        );
        // Unlock: that month and the rest of the year.
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                "/api/work-contract/unlock/5/2026-08-01",
                ""
            )
            .0,
            204
        );
        assert!(st.plugin.locked_months.is_empty());
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "DELETE",
                "/api/work-contract/approval/5/2026-08-01",
                ""
            )
            .0,
            204
        );
        assert_eq!(
            call(
                &mut st,
                ADMIN,
                "GET",
                "/api/work-contract/lock/5/2026-08-01",
                ""
            )
            .0,
            405
        );
    }

    #[test]
    fn duration_strings() {
        assert_eq!(parse_duration("1:30"), Some(5400));
        assert_eq!(parse_duration("1:30:15"), Some(5415));
        assert_eq!(parse_duration("1,5"), Some(5400));
        assert_eq!(parse_duration("2h30m"), Some(9000));
        assert_eq!(parse_duration("x"), None);
    }
}
