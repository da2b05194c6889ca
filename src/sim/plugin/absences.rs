//! Absences of the WorkContract plugin: list, types, calendar feed, create (with the one-month
//! and year-boundary rules), delete and the status transitions (§9.1).

use serde_json::{Map, Value, json};

use super::rules::can;
use super::store::{Absence, CONTRACT_DAY_SECS, MAX_CREATE_DAYS, TYPES};
use crate::sim::data::{State, User};
use crate::sim::json as js;
use crate::sim::time::{self, DAY, Tz};
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, id, not_found};

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
pub(super) fn range(req: &Req) -> Result<(Option<i64>, Option<i64>), Answer> {
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

pub(super) fn list(st: &State, req: &Req, caller: &User) -> Res {
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

pub(super) fn types(req: &Req) -> Res {
    let german = language(req)?;
    let mut m = Map::new();
    for (key, en, de) in TYPES {
        m.insert(key.to_string(), json!(if german { de } else { en }));
    }
    Ok(Answer::ok(Value::Object(m)))
}

/// A calendar event: all-day from the day's midnight to the next midnight, in `tz`.
pub(super) fn event(title: String, color: &str, day: i64, half: bool, tz: Tz) -> Value {
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

pub(super) fn absence_calendar(st: &State, req: &Req, caller: &User) -> Res {
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
pub(super) fn parse_duration(s: &str) -> Option<i64> {
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

pub(super) fn create(st: &mut State, req: &Req, caller: &User) -> Res {
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

pub(super) fn delete(st: &mut State, caller: &User, id: u64) -> Res {
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

pub(super) fn transition(st: &mut State, caller: &User, id: u64, action: &str) -> Res {
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
