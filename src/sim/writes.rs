//! Timesheet writes of the simulated Kimai: POST/PATCH/DELETE `/api/timesheets` and the
//! `stop`/`restart`/`duplicate`/`export`/`meta` actions (contract §5.2, §7.2–§7.7).
//!
//! Owns the per-caller form (§2.4: fields the caller may not set are absent, so sending them is
//! the global "extra fields" error), the two 400 shapes (§2.2 form, §2.3 service), rounding,
//! rates and billable on save, and the auto-stop of older running records (hard limit 1).
//! Runs on worker threads with the state mutex held by `api::handle`.

use serde_json::{Map, Value, json};

use super::data::{State, Timesheet, User, can, rank};
use super::json::{self as js, TsShape};
use super::time;
use super::wire::{Answer, Req, Res, bad, forbidden, not_found};

pub(super) const EXTRA_FIELDS: &str = "This form should not contain extra fields.";
pub(super) const INVALID_CHOICE: &str = "The selected choice is invalid.";
const END_BEFORE_BEGIN: &str = "The end date must not be earlier than the start date.";

/// §2.2 form error: `children` lists every field of the caller's form, in form order.
pub(super) struct FormErrors {
    pub(super) global: Vec<String>,
    fields: Vec<(&'static str, Vec<String>)>,
}

impl FormErrors {
    pub(super) fn new(fields: &[&'static str]) -> FormErrors {
        FormErrors {
            global: Vec::new(),
            fields: fields.iter().map(|f| (*f, Vec::new())).collect(),
        }
    }
    pub(super) fn field(&mut self, name: &str, msg: &str) {
        if let Some((_, errs)) = self.fields.iter_mut().find(|(n, _)| *n == name) {
            errs.push(msg.to_string());
        }
    }
    pub(super) fn is_empty(&self) -> bool {
        self.global.is_empty() && self.fields.iter().all(|(_, e)| e.is_empty())
    }
    pub(super) fn reply(self) -> Answer {
        let mut children = Map::new();
        for (name, errs) in self.fields {
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
        if !self.global.is_empty() {
            errors.insert("errors".into(), json!(self.global));
        }
        errors.insert("children".into(), Value::Object(children));
        Answer::json(
            400,
            &json!({"code": 400, "message": "Validation Failed", "errors": errors}),
        )
    }
}

/// §2.3 service-layer error: `code` is the string "400", children keyed by property path.
pub(super) fn service_error(message: &str, path: &str, msg: &str) -> Answer {
    Answer::json(
        400,
        &json!({"code": "400", "message": message, "errors": {"children": {path: {"errors": [msg]}}}}),
    )
}

/// FOSRest's camel-keys normalizer: `fixed_rate` → `fixedRate`.
fn camel(key: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Form-style conversion (§0): `true` → "1", `false`/`null` → None, numbers → strings.
/// Arrays/objects stay as they are (and fail the text fields).
#[derive(Clone, Debug)]
enum FormValue {
    Text(Option<String>),
    Compound,
}

fn form_value(v: &Value) -> FormValue {
    match v {
        Value::Null | Value::Bool(false) => FormValue::Text(None),
        Value::Bool(true) => FormValue::Text(Some("1".into())),
        Value::Number(n) => FormValue::Text(Some(n.to_string())),
        Value::String(s) => FormValue::Text(Some(s.clone())),
        _ => FormValue::Compound,
    }
}

/// Parse the JSON body into camel-cased form values; malformed JSON or a non-object → 400.
fn body_fields(req: &Req) -> Result<Vec<(String, FormValue)>, Answer> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (camel(k), form_value(v))).collect()),
        Ok(Value::Null) => Ok(Vec::new()),
        _ => Err(bad()),
    }
}

/// §7.9: accepted false values; anything else is true.
pub(super) fn truthy(v: &Option<String>) -> bool {
    !matches!(v.as_deref(), None | Some("") | Some("0") | Some("false"))
}

/// The timesheet form for this caller (§5.2 table, default tracking mode, break time off).
/// Order is our best reading of Kimai's TimesheetEditForm; unsure for the permission-bound
/// fields at the end.
fn form_fields(caller: &User, post: bool) -> Vec<&'static str> {
    let mut f = vec!["begin", "end", "project", "activity", "description", "tags"];
    if rank(caller.role) >= 2 {
        f.extend(["fixedRate", "hourlyRate"]);
    }
    if !post || can(caller, "create_other_timesheet") {
        f.push("user");
    }
    if can(caller, "edit_export_own_timesheet") {
        f.push("exported");
    }
    if can(caller, "edit_billable_own_timesheet") {
        f.push("billable");
    }
    f
}

fn floor_minute(ts: i64) -> i64 {
    ts.div_euclid(60) * 60
}
fn ceil_minute(ts: i64) -> i64 {
    -(-ts).div_euclid(60) * 60
}

fn may(st: &State, caller: &User, owner: u64, what: &str) -> bool {
    if owner == caller.id {
        can(caller, &format!("{what}_own_timesheet"))
    } else {
        can(caller, &format!("{what}_other_timesheet")) && st.can_access_user(caller, owner)
    }
}

/// Apply the submitted fields to `ts` (a fresh record for POST, a copy for PATCH).
/// `input_tz` is the zone begin/end are interpreted in (§4.2: caller's on POST, record's on PATCH).
fn apply_form(
    st: &State,
    caller: &User,
    ts: &mut Timesheet,
    fields: &[(String, FormValue)],
    post: bool,
) -> Result<(), Answer> {
    let allowed = form_fields(caller, post);
    let mut errs = FormErrors::new(&allowed);
    if fields.iter().any(|(k, _)| !allowed.contains(&k.as_str())) {
        errs.global.push(EXTRA_FIELDS.into());
        return Err(errs.reply());
    }
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let text = |errs: &mut FormErrors, name: &'static str| -> Option<Option<String>> {
        match get(name)? {
            FormValue::Text(t) => Some(t),
            FormValue::Compound => {
                // Unsure of the exact message for an array in a text input; Symfony's generic one.
                errs.field(name, "This value is not valid.");
                None
            }
        }
    };
    let input_tz = if post { caller.tz } else { ts.tz };
    let old_project = ts.project;
    let old_activity = ts.activity;
    let old_user = ts.user;

    if let Some(u) = text(&mut errs, "user") {
        match u
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|id| st.user(id))
        {
            Some(u) if u.enabled && st.can_access_user(caller, u.id) => {
                ts.user = u.id;
                ts.tz = u.tz;
            }
            _ if u.is_none() => errs.field("user", "This value should not be blank."),
            _ => errs.field("user", INVALID_CHOICE),
        }
    }
    for (name, slot) in [("begin", 0), ("end", 1)] {
        if let Some(v) = text(&mut errs, name) {
            match v {
                None if slot == 1 => ts.end = None,
                None => errs.field(name, "This value should not be blank."),
                Some(s) => match time::parse_local_lenient(&s) {
                    Some(local) => {
                        let utc = input_tz.to_utc(local);
                        if slot == 0 {
                            ts.begin = floor_minute(utc)
                        } else {
                            ts.end = Some(ceil_minute(utc))
                        }
                    }
                    None => errs.field(name, "Please enter a valid date and time."),
                },
            }
        }
    }
    let mut project_changed = false;
    match text(&mut errs, "project") {
        Some(Some(p)) => match p.parse::<u64>().ok().and_then(|id| st.project(id)) {
            Some(pr)
                if (pr.id == old_project && !post)
                    || (pr.visible
                        && st.customer(pr.customer).is_some_and(|c| c.visible)
                        && st.project_accessible(caller, pr)) =>
            {
                project_changed = pr.id != old_project;
                ts.project = pr.id;
            }
            _ => errs.field("project", INVALID_CHOICE),
        },
        Some(None) => errs.field("project", "A project needs to be selected."),
        None if post => errs.field("project", "A project needs to be selected."),
        None => {}
    }
    let mut activity_changed = false;
    match text(&mut errs, "activity") {
        Some(Some(a)) => match a.parse::<u64>().ok().and_then(|id| st.activity(id)) {
            Some(ac)
                if (ac.id == old_activity && !post)
                    || (ac.visible && st.activity_accessible(caller, ac)) =>
            {
                activity_changed = ac.id != old_activity;
                ts.activity = ac.id;
            }
            _ => errs.field("activity", INVALID_CHOICE),
        },
        Some(None) => errs.field("activity", "An activity needs to be selected."),
        None if post => errs.field("activity", "An activity needs to be selected."),
        None => {}
    }
    if let Some(d) = text(&mut errs, "description") {
        ts.description = d;
    }
    if let Some(t) = text(&mut errs, "tags") {
        // §5.2: comma-separated names; unknown names are dropped, never created.
        ts.tags = t
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter_map(|n| st.tags.iter().find(|t| t.visible && t.name == n))
            .map(|t| t.id)
            .fold(Vec::new(), |mut acc, id| {
                if !acc.contains(&id) {
                    acc.push(id);
                }
                acc
            });
    }
    let rate = |errs: &mut FormErrors, name: &'static str| -> Option<Option<f64>> {
        let v = text(errs, name)?;
        match v
            .as_deref()
            .map(|s| s.trim().replace(',', ".").parse::<f64>())
        {
            None => Some(None),
            Some(Ok(x)) => Some(Some(x)),
            Some(Err(_)) => {
                errs.field(name, "Please enter a number.");
                None
            }
        }
    };
    let fixed = rate(&mut errs, "fixedRate");
    let hourly = rate(&mut errs, "hourlyRate");
    if let Some(e) = text(&mut errs, "exported") {
        ts.exported = truthy(&e);
    }
    let billable_sent = text(&mut errs, "billable");

    // Entity-level rules (§7.6), only once the fields themselves are fine.
    if errs.is_empty() {
        if let (Some(p), Some(a)) = (st.project(ts.project), st.activity(ts.activity)) {
            match a.project {
                Some(ap) if ap != p.id => errs.field(
                    "activity",
                    "Project mismatch, project specific activity and timesheet project are different.",
                ),
                None if !p.global_activities => {
                    errs.field("activity", "Global activities are forbidden for the selected project.")
                }
                _ => {}
            }
            // Unsure whether these land on a field; the contract lists them without a path.
            let begin_day = (ts.begin + ts.tz.offset_at(ts.begin)).div_euclid(time::DAY);
            if p.start.is_some_and(|s| begin_day < s) {
                errs.global
                    .push("The project has not started at that time.".into());
            }
            if p.end.is_some_and(|e| begin_day > e) {
                errs.global
                    .push("The project is finished at that time.".into());
            }
            if ts.end.is_none() {
                if !p.visible {
                    errs.global.push("Cannot start a disabled project.".into());
                }
                if st.customer(p.customer).is_some_and(|c| !c.visible) {
                    errs.global.push("Cannot start a disabled customer.".into());
                }
                if !a.visible {
                    errs.global.push("Cannot start a disabled activity.".into());
                }
            }
        }
        if ts.end.is_some_and(|e| e < ts.begin) {
            errs.global.push(END_BEFORE_BEGIN.into());
        }
        // §7.5: a record may not begin inside the lockdown period (ADMIN+ override it).
        if st.lockdown_before.is_some_and(|l| ts.begin < l)
            && !can(caller, "lockdown_override_timesheet")
        {
            errs.global
                .push("This period is locked. Please choose a later date.".into());
        }
    }
    if !errs.is_empty() {
        return Err(errs.reply());
    }

    ts.duration = ts.end.map(|e| e - ts.begin - ts.break_secs).unwrap_or(0);
    // §7.4: a sent billable forces the flag; otherwise computed.
    ts.billable = match billable_sent {
        Some(b) => truthy(&b),
        None => st.computed_billable(ts.project, ts.activity),
    };
    // §7.3: explicit rates win; changing project/activity/user without a rate field recomputes.
    let reset = post || project_changed || activity_changed || ts.user != old_user;
    let explicit_fixed = match fixed {
        Some(f) => f,
        None if reset => None,
        None => ts.fixed_rate,
    };
    let explicit_hourly = match hourly {
        Some(h) => h,
        None if reset || explicit_fixed.is_some() => None,
        None => ts.hourly_rate,
    };
    st.apply_rates(
        ts,
        explicit_fixed,
        explicit_hourly.filter(|_| explicit_fixed.is_none() || hourly.is_some()),
    );
    Ok(())
}

/// §7.2: after a new running record for `owner`, stop the oldest running ones beyond the hard
/// limit. Returns the §2.3 error if one cannot be stopped (end would precede begin).
fn auto_stop(st: &mut State, owner: u64, new_id: u64, now: i64) -> Result<(), Answer> {
    let mut running: Vec<usize> = (0..st.timesheets.len())
        .filter(|&i| {
            let t = &st.timesheets[i];
            t.user == owner && t.end.is_none() && t.id != new_id
        })
        .collect();
    running.sort_by_key(|&i| (st.timesheets[i].begin, st.timesheets[i].id));
    // The new record counts towards the limit of 1, so every older one is stopped.
    let end = ceil_minute(now);
    if running.iter().any(|&i| end < st.timesheets[i].begin) {
        return Err(service_error(
            "You have an active time record which cannot be stopped automatically.",
            "end_date",
            END_BEFORE_BEGIN,
        ));
    }
    for i in running {
        stop_at(st, i, end, now);
    }
    Ok(())
}

fn stop_at(st: &mut State, i: usize, end: i64, now: i64) {
    let mut t = st.timesheets[i].clone();
    t.end = Some(end);
    t.duration = end - t.begin - t.break_secs;
    t.modified_at = now;
    let (f, h) = (t.fixed_rate, t.hourly_rate);
    st.apply_rates(&mut t, f, if f.is_some() { None } else { h });
    st.timesheets[i] = t;
}

fn insert(st: &mut State, mut t: Timesheet) -> u64 {
    t.id = st.next_timesheet_id;
    st.next_timesheet_id += 1;
    let id = t.id;
    st.timesheets.push(t);
    id
}

fn entity(st: &State, id: u64, shape: TsShape) -> Res {
    let t = st
        .timesheet_index(id)
        .map(|i| &st.timesheets[i])
        .ok_or_else(not_found)?;
    Ok(Answer::ok(js::timesheet(st, t, shape)))
}

pub fn create(st: &mut State, req: &Req, caller: &User) -> Res {
    if !can(caller, "create_own_timesheet") {
        return Err(forbidden());
    }
    let fields = body_fields(req)?;
    let now = st.now();
    let mut ts = Timesheet {
        meta: Vec::new(),
        id: 0,
        user: caller.id,
        project: 0,
        activity: 0,
        begin: floor_minute(now),
        end: None,
        tz: caller.tz,
        duration: 0,
        break_secs: 0,
        description: None,
        rate: 0.0,
        internal_rate: 0.0,
        fixed_rate: None,
        hourly_rate: None,
        exported: false,
        billable: true,
        tags: Vec::new(),
        modified_at: now,
    };
    apply_form(st, caller, &mut ts, &fields, true)?;
    let running = ts.end.is_none();
    let owner = ts.user;
    let id = insert(st, ts);
    if running {
        if let Err(e) = auto_stop(st, owner, id, now) {
            // The create fails as a whole.
            st.timesheets.pop();
            st.next_timesheet_id -= 1;
            return Err(e);
        }
    }
    // §5.2: `full` with any value (even 0) → expanded.
    let shape = if req.query.iter().any(|(k, _)| k == "full") {
        TsShape::Expanded
    } else {
        TsShape::Entity
    };
    entity(st, id, shape)
}

/// Load + edit voter (§7.5: exported records need `edit_exported_timesheet`).
fn load_for(st: &State, caller: &User, id: u64, what: &str) -> Result<usize, Answer> {
    let i = st.timesheet_index(id).ok_or_else(not_found)?;
    let t = &st.timesheets[i];
    if !may(st, caller, t.user, what) {
        return Err(forbidden());
    }
    if t.exported && matches!(what, "edit" | "delete") && !can(caller, "edit_exported_timesheet") {
        return Err(forbidden());
    }
    // §7.5: records inside the lockdown period cannot be edited or deleted (voter → 403).
    if matches!(what, "edit" | "delete")
        && st.lockdown_before.is_some_and(|l| t.begin < l)
        && !can(caller, "lockdown_override_timesheet")
    {
        return Err(forbidden());
    }
    Ok(i)
}

pub fn update(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let i = load_for(st, caller, id, "edit")?;
    let fields = body_fields(req)?;
    let mut ts = st.timesheets[i].clone();
    apply_form(st, caller, &mut ts, &fields, false)?;
    ts.modified_at = st.now();
    st.timesheets[i] = ts;
    entity(st, id, TsShape::Entity)
}

pub fn delete(st: &mut State, caller: &User, id: u64) -> Res {
    let i = load_for(st, caller, id, "delete")?;
    st.timesheets.remove(i);
    Ok(Answer::empty(204))
}

pub fn action(st: &mut State, req: &Req, caller: &User, id: u64, action: &str) -> Res {
    let now = st.now();
    match action {
        "stop" => {
            let i = load_for(st, caller, id, "stop")?;
            if st.timesheets[i].end.is_some() {
                return entity(st, id, TsShape::Entity); // §7.2: no-op
            }
            let end = ceil_minute(now);
            if end < st.timesheets[i].begin {
                return Err(service_error(
                    "Validation Failed",
                    "end_date",
                    END_BEFORE_BEGIN,
                ));
            }
            stop_at(st, i, end, now);
            entity(st, id, TsShape::Entity)
        }
        "restart" => {
            let i = load_for(st, caller, id, "start")?;
            let body = if req.body.iter().all(u8::is_ascii_whitespace) {
                Value::Object(Map::new())
            } else {
                serde_json::from_slice::<Value>(&req.body).map_err(|_| Answer::error(400))?
            };
            let copy = match body.get("copy") {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) if s == "all" => true,
                Some(_) => return Err(Answer::error(400)),
            };
            let begin = match body.get("begin") {
                None | Some(Value::Null) => floor_minute(now),
                Some(Value::String(s)) => {
                    let local = time::parse_local_strict(s).ok_or_else(bad)?;
                    floor_minute(caller.tz.to_utc(local))
                }
                Some(_) => return Err(bad()),
            };
            let orig = st.timesheets[i].clone();
            let (p, a) = (st.project(orig.project), st.activity(orig.activity));
            if p.is_none_or(|p| !p.visible) {
                return Err(service_error(
                    "Validation Failed",
                    "project",
                    "Cannot start a disabled project.",
                ));
            }
            if p.and_then(|p| st.customer(p.customer))
                .is_none_or(|c| !c.visible)
            {
                return Err(service_error(
                    "Validation Failed",
                    "customer",
                    "Cannot start a disabled customer.",
                ));
            }
            if a.is_none_or(|a| !a.visible) {
                return Err(service_error(
                    "Validation Failed",
                    "activity",
                    "Cannot start a disabled activity.",
                ));
            }
            let mut t = Timesheet {
                meta: Vec::new(),
                id: 0,
                user: caller.id,
                begin,
                end: None,
                tz: caller.tz,
                duration: 0,
                break_secs: 0,
                description: None,
                rate: 0.0,
                internal_rate: 0.0,
                fixed_rate: None,
                hourly_rate: None,
                exported: false,
                billable: st.computed_billable(orig.project, orig.activity),
                tags: Vec::new(),
                modified_at: now,
                ..orig.clone()
            };
            if copy {
                t.description = orig.description.clone();
                t.billable = orig.billable;
                t.tags = orig.tags.clone();
            }
            st.apply_rates(&mut t, None, None);
            let new_id = insert(st, t);
            if let Err(e) = auto_stop(st, caller.id, new_id, now) {
                st.timesheets.pop();
                st.next_timesheet_id -= 1;
                return Err(e);
            }
            entity(st, new_id, TsShape::Entity)
        }
        "duplicate" => {
            // Unsure: the `duplicate` voter; modelled as create + edit rights on the owner.
            let i = load_for(st, caller, id, "create")?;
            let mut t = st.timesheets[i].clone();
            t.exported = false;
            t.modified_at = now;
            let new_id = insert(st, t);
            entity(st, new_id, TsShape::Entity)
        }
        "export" => {
            let i = st.timesheet_index(id).ok_or_else(not_found)?;
            let owner = st.timesheets[i].user;
            if !may(st, caller, owner, "edit_export") {
                return Err(forbidden());
            }
            if st.timesheets[i].exported && !can(caller, "edit_exported_timesheet") {
                return Err(forbidden());
            }
            st.timesheets[i].exported = !st.timesheets[i].exported;
            st.timesheets[i].modified_at = now;
            entity(st, id, TsShape::Entity)
        }
        _ => {
            // meta: §7.7. The name is matched case-insensitively against the defined fields
            // and checked before the value: an unknown name is 404 even without a value.
            let i = load_for(st, caller, id, "edit")?;
            let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad())?;
            let name = match body.get("name") {
                Some(Value::String(n)) if !n.is_empty() => n.clone(),
                _ => return Err(bad()),
            };
            let Some(field) = st
                .timesheet_meta_fields
                .iter()
                .find(|f| f.eq_ignore_ascii_case(&name))
                .cloned()
            else {
                return Err(not_found());
            };
            let value = match body.get("value") {
                Some(Value::String(v)) => v.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => {
                    if *b {
                        "1".into()
                    } else {
                        String::new()
                    }
                }
                Some(Value::Null) => String::new(),
                _ => return Err(bad()),
            };
            let t = &mut st.timesheets[i];
            match t.meta.iter_mut().find(|(n, _)| *n == field) {
                Some(slot) => slot.1 = value,
                None => t.meta.push((field, value)),
            }
            t.modified_at = now;
            entity(st, id, TsShape::Entity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::api::handle;
    use crate::sim::data::seed;
    use crate::sim::wire::Req;

    const NOW: i64 = 1_786_600_000; // 2026-08-13T05:46:40Z

    fn st() -> State {
        let mut s = seed(42, NOW, true);
        s.fixed_now = Some(NOW);
        s
    }

    fn call(st: &mut State, user: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
        let token = st
            .users
            .iter()
            .find(|u| u.username == user)
            .map(|u| u.token.clone())
            .expect("user");
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (
                p,
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            None => (path, Vec::new()),
        };
        let req = Req {
            method: method.into(),
            path: path.into(),
            query,
            authorization: Some(format!("Bearer {token}")),
            x_auth: None,
            body: body.as_bytes().to_vec(),
        };
        let out = handle(st, &req);
        let v = if out.reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&out.reply.body).expect("json")
        };
        (out.reply.status, v)
    }

    #[test]
    fn create_stopped_record_rounds_and_rates() {
        let mut s = st();
        let (status, v) = call(
            &mut s,
            "john_user",
            "POST",
            "/api/timesheets",
            r#"{"project":1,"activity":"1","begin":"2026-08-12T10:00:30","end":"2026-08-12T11:00:10","tags":"meeting,nope","description":"x"}"#,
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["begin"], "2026-08-12T10:00:00+0200");
        assert_eq!(v["end"], "2026-08-12T11:01:00+0200");
        assert_eq!(v["duration"], 3660);
        // John has a user-bound project rate of 95 on project 1.
        assert_eq!(v["hourlyRate"], json!(95.0));
        assert_eq!(v["rate"], json!(96.5833));
        assert_eq!(v["tags"], json!(["meeting"]));
        assert_eq!(v["billable"], true);
    }

    #[test]
    fn extra_field_trap_and_form_shape() {
        let mut s = st();
        let (status, v) = call(
            &mut s,
            "john_user",
            "POST",
            "/api/timesheets",
            r#"{"project":1,"activity":1,"billable":true}"#,
        );
        assert_eq!(status, 400);
        assert_eq!(v["code"], 400);
        assert_eq!(v["message"], "Validation Failed");
        assert_eq!(v["errors"]["errors"], json!([EXTRA_FIELDS]));
        let keys: Vec<&String> = v["errors"]["children"]
            .as_object()
            .expect("children")
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["begin", "end", "project", "activity", "description", "tags"]
        );
        // Teamlead may send billable; missing project/activity are field errors.
        let (status, v) = call(
            &mut s,
            "tony_teamlead",
            "POST",
            "/api/timesheets",
            r#"{"billable":false}"#,
        );
        assert_eq!(status, 400);
        assert_eq!(
            v["errors"]["children"]["project"]["errors"],
            json!(["A project needs to be selected."])
        );
        assert!(
            v["errors"]["children"]["billable"]
                .as_object()
                .is_some_and(|o| o.is_empty())
        );
        // duration is never accepted.
        let (status, _) = call(
            &mut s,
            "susan_super",
            "POST",
            "/api/timesheets",
            r#"{"project":1,"activity":1,"duration":60}"#,
        );
        assert_eq!(status, 400);
        // Malformed JSON → generic 400.
        let (status, v) = call(&mut s, "john_user", "POST", "/api/timesheets", "{");
        assert_eq!(
            (status, v),
            (400, json!({"code": 400, "message": "Bad Request"}))
        );
    }

    #[test]
    fn starting_stops_the_older_running_record() {
        let mut s = st();
        let demo = s
            .users
            .iter()
            .find(|u| u.username == "tony_teamlead")
            .map(|u| u.id)
            .expect("demo");
        let old = s
            .timesheets
            .iter()
            .find(|t| t.user == demo && t.end.is_none())
            .map(|t| t.id)
            .expect("running");
        let (status, v) = call(
            &mut s,
            "tony_teamlead",
            "POST",
            "/api/timesheets?full=0",
            r#"{"project":1,"activity":2}"#,
        );
        assert_eq!(status, 200, "{v}");
        assert!(v["end"].is_null());
        assert!(v["user"].is_object(), "full with any value expands");
        let old = &s.timesheets[s.timesheet_index(old).expect("still there")];
        assert_eq!(old.end, Some(ceil_minute(NOW)));
        assert!(old.rate > 0.0);
        assert_eq!(
            s.timesheets
                .iter()
                .filter(|t| t.user == demo && t.end.is_none())
                .count(),
            1
        );
    }

    #[test]
    fn exported_records_are_locked_for_teamleads() {
        let mut s = st();
        let t = s
            .timesheets
            .iter()
            .find(|t| t.user == 3 && t.exported)
            .map(|t| t.id)
            .expect("exported");
        let (status, _) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{t}"),
            r#"{"description":"x"}"#,
        );
        assert_eq!(status, 403);
        let (status, _) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{t}/export"),
            "",
        );
        assert_eq!(status, 403, "un-exporting needs edit_exported_timesheet");
        let (status, v) = call(
            &mut s,
            "anna_admin",
            "PATCH",
            &format!("/api/timesheets/{t}/export"),
            "",
        );
        assert_eq!((status, v["exported"].clone()), (200, json!(false)));
        let (status, _) = call(&mut s, "john_user", "DELETE", "/api/timesheets/999999", "");
        assert_eq!(status, 404);
        let (status, _) = call(
            &mut s,
            "john_user",
            "DELETE",
            &format!("/api/timesheets/{t}"),
            "",
        );
        assert_eq!(status, 403);
    }

    #[test]
    fn stop_restart_duplicate_meta() {
        let mut s = st();
        let running = s
            .timesheets
            .iter()
            .find(|t| t.end.is_none())
            .map(|t| t.id)
            .expect("running");
        let (status, v) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/stop"),
            "",
        );
        assert_eq!(status, 200);
        assert!(v["end"].is_string() && v["duration"].as_i64().is_some_and(|d| d > 0));
        let (status, again) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/stop"),
            "",
        );
        assert_eq!((status, &again), (200, &v), "stopping twice is a no-op");
        let (status, v) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/restart"),
            r#"{"copy":"all"}"#,
        );
        assert_eq!(status, 200);
        assert!(v["end"].is_null());
        assert_eq!(v["description"], "Working on the MCP integration");
        let (status, _) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/restart"),
            r#"{"begin":"2026-08-13 08:00"}"#,
        );
        assert_eq!(status, 400);
        let (status, v) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/duplicate"),
            "",
        );
        assert_eq!((status, v["exported"].clone()), (200, json!(false)));
        let (status, _) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/meta"),
            r#"{"name":"x","value":"y"}"#,
        );
        assert_eq!(status, 404);
        let (status, _) = call(
            &mut s,
            "tony_teamlead",
            "PATCH",
            &format!("/api/timesheets/{running}/meta"),
            r#"{"value":"y"}"#,
        );
        assert_eq!(status, 400);
    }
}
