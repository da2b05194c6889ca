//! Users: create, update and preferences (§5.7), with the role and timezone rules of the form.

use serde_json::Value;

use super::form::{ADMIN, Form, SUPER_ADMIN, at_least, leak, next_id, read_color, scalar};
use crate::sim::data::{self, State, User, rank};
use crate::sim::json as js;
use crate::sim::time::Tz;
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, not_found};
use crate::sim::writes::INVALID_CHOICE;

fn parse_tz(s: &str) -> Option<Tz> {
    // The simulator models three timezones (see `time::Tz`); other IANA names are refused as
    // invalid, which real Kimai would accept.
    [Tz::Berlin, Tz::NewYork, Tz::Utc]
        .into_iter()
        .find(|t| t.name() == s)
}

const ROLES: &[&str] = &[
    "ROLE_USER",
    "ROLE_TEAMLEAD",
    "ROLE_ADMIN",
    "ROLE_SUPER_ADMIN",
];

/// Reads `roles` (array of role names; replaces all roles). The simulator stores one role per
/// user, the highest one given.
fn read_roles(f: &mut Form) -> Option<&'static str> {
    let v = f.body.get("roles")?.clone();
    let names: Option<Vec<String>> = match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    };
    let Some(names) = names else {
        f.err("roles", INVALID_CHOICE);
        return None;
    };
    let mut best = "ROLE_USER";
    for n in &names {
        match ROLES.iter().find(|r| *r == n) {
            Some(r) if rank(r) > rank(best) => best = r,
            Some(_) => {}
            None => {
                f.err("roles", INVALID_CHOICE);
                return None;
            }
        }
    }
    Some(best)
}

fn user_fields(
    st: &State,
    f: &mut Form,
    u: &mut User,
    flags: &mut (bool, bool),
) -> Option<Option<String>> {
    for (k, slot) in [
        ("alias", &mut u.alias),
        ("title", &mut u.title),
        ("accountNumber", &mut u.account_number),
    ] {
        if let Some(v) = f.text(k) {
            *slot = v;
        }
    }
    if let Some(c) = read_color(f) {
        u.color = c;
    }
    if let Some(e) = f.text("email") {
        match e {
            Some(e) if e.contains('@') => u.email = e,
            Some(_) => f.err("email", "This value is not a valid email address."),
            None => f.err("email", "This value should not be blank."),
        }
    }
    if let Some(Some(l)) = f.text("language") {
        u.language = leak(l);
    }
    if let Some(Some(l)) = f.text("locale") {
        // The simulator keeps one value for language and locale (as its JSON shows them).
        u.language = leak(l.split('_').next().unwrap_or("en").to_string());
    }
    if let Some(tz) = f.text("timezone") {
        match tz.as_deref().and_then(parse_tz) {
            Some(t) => u.tz = t,
            None => f.err("timezone", "Please select a valid timezone."),
        }
    }
    if let Some(e) = f.flag("enabled") {
        u.enabled = e;
    }
    if let Some(s) = f.flag("systemAccount") {
        flags.0 = s;
    }
    if let Some(r) = f.flag("requiresPasswordReset") {
        flags.1 = r;
    }
    if let Some(s) = f.text("supervisor") {
        match s {
            None => u.supervisor = None,
            Some(s) => match s.parse::<u64>().ok().and_then(|id| st.user(id)) {
                Some(sup) if sup.id != u.id => u.supervisor = Some(sup.id),
                _ => f.err("supervisor", INVALID_CHOICE),
            },
        }
    }
    if let Some(r) = read_roles(f) {
        u.role = r;
    }
    f.text("plainPassword")
}

pub fn create_user(st: &mut State, req: &Req, caller: &User) -> Res {
    if !at_least(caller, SUPER_ADMIN) {
        return Err(forbidden());
    }
    let mut f = Form::new(
        req,
        &[
            "username",
            "alias",
            "title",
            "accountNumber",
            "color",
            "email",
            "language",
            "locale",
            "timezone",
            "plainPassword",
            "plainApiToken",
            "enabled",
            "systemAccount",
            "requiresPasswordReset",
            "supervisor",
            "roles",
        ],
    )?;
    let id = next_id(&st.users, |u| u.id);
    let mut u = User {
        id,
        username: String::new(),
        alias: None,
        title: None,
        email: String::new(),
        account_number: None,
        // §7.9: POST /users submits the complete form, so an omitted boolean is false.
        enabled: false,
        role: "ROLE_USER",
        tz: caller.tz,
        language: "en",
        color: None,
        supervisor: None,
        hourly_rate: 0.0,
        internal_rate: None,
        token: token(id),
    };
    match f.text("username").flatten() {
        None => f.err("username", "This value should not be blank."),
        Some(n) if n.chars().count() < 2 || n.chars().count() > 64 || n.contains('/') => {
            f.err("username", "This value is not valid.")
        }
        Some(n) if st.users.iter().any(|x| x.username == n) => {
            f.err("username", "This value is already used.")
        }
        Some(n) => u.username = n,
    }
    if !f.has("email") {
        f.err("email", "This value should not be blank.");
    }
    let mut flags = (false, false);
    let password = user_fields(st, &mut f, &mut u, &mut flags);
    if !u.email.is_empty() && st.users.iter().any(|x| x.email == u.email) {
        f.err("email", "This value is already used.");
    }
    match password.flatten() {
        None => f.err("plainPassword", "This value should not be blank."),
        Some(p) if p.chars().count() < 8 => f.err(
            "plainPassword",
            "This value is too short. It should have 8 characters or more.",
        ),
        Some(_) => {}
    }
    f.text("plainApiToken");
    f.finish()?;
    st.admin.flags.insert(id, flags);
    st.users.push(u);
    let u = st.users.last().cloned().ok_or_else(not_found)?;
    Ok(Answer::ok(user_json(st, &u)))
}

fn token(id: u64) -> String {
    let mut rng = data::Rng::new(0x5EED_0000 ^ id.wrapping_mul(0x9E37_79B9));
    let mut out = String::new();
    while out.len() < 25 {
        out.push_str(&format!("{:016x}", rng.next()));
    }
    out.truncate(25);
    out
}

pub fn user_json(st: &State, u: &User) -> Value {
    js::user_entity(st, u)
}

pub fn update_user(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let mut u = st.user(id).cloned().ok_or_else(not_found)?;
    let own = id == caller.id;
    let super_admin = at_least(caller, SUPER_ADMIN);
    if !own && !super_admin {
        return Err(forbidden());
    }
    // UserEditForm: profile fields; language/locale/timezone with `preferences` on the profile
    // (own: everyone); `enabled` only for someone else; supervisor and roles need the
    // SUPER_ADMIN-only `supervisor`/`roles` permissions; systemAccount and
    // requiresPasswordReset need `password` (own: everyone). username, plainPassword and
    // plainApiToken are never on it.
    let mut allowed = vec![
        "alias",
        "title",
        "accountNumber",
        "color",
        "email",
        "language",
        "locale",
        "timezone",
        "systemAccount",
        "requiresPasswordReset",
    ];
    if !own {
        allowed.push("enabled");
    }
    if super_admin {
        allowed.extend(["supervisor", "roles"]);
    }
    let mut f = Form::new(req, &allowed)?;
    let mut flags = st.admin.flags.get(&id).copied().unwrap_or_default();
    user_fields(st, &mut f, &mut u, &mut flags);
    if st.users.iter().any(|x| x.id != id && x.email == u.email) {
        f.err("email", "This value is already used.");
    }
    f.finish()?;
    st.admin.flags.insert(id, flags);
    if let Some(slot) = st.users.iter_mut().find(|x| x.id == id) {
        *slot = u.clone();
    }
    Ok(Answer::ok(user_json(st, &u)))
}

/// Work-contract preference names (§5.7): only for callers with `contract_other_profile`
/// (ADMIN+), otherwise 403.
const CONTRACT_PREFS: &[&str] = &[
    "work_contract_type",
    "work_monday",
    "work_tuesday",
    "work_wednesday",
    "work_thursday",
    "work_friday",
    "work_saturday",
    "work_sunday",
    "holidays",
    "public_holiday_group",
    "work_start_day",
    "work_last_day",
    "hours_per_week",
];

/// `PATCH /users/{id}/preferences`: a JSON array of `{name, value}`. Item not an object or
/// without name/value → 400; unknown name → 404; a disabled preference → 403. All items are
/// checked before anything is stored.
pub fn preferences(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    st.user(id).ok_or_else(not_found)?;
    if id != caller.id && !at_least(caller, SUPER_ADMIN) {
        return Err(forbidden());
    }
    let items = name_value_items(req)?;
    for (name, _) in &items {
        let known = matches!(
            name.as_str(),
            "hourly_rate" | "internal_rate" | "first_weekday"
        ) || CONTRACT_PREFS.contains(&name.as_str());
        if !known {
            return Err(not_found());
        }
        if CONTRACT_PREFS.contains(&name.as_str()) && !at_least(caller, ADMIN) {
            return Err(forbidden());
        }
        // Unsure: rate preferences need `hourly-rate_*_profile`; the simulator lets anyone who
        // may edit the profile set them.
    }
    for (name, value) in items {
        let u = st
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .ok_or_else(not_found)?;
        match name.as_str() {
            "hourly_rate" => u.hourly_rate = value.parse().unwrap_or(0.0),
            "internal_rate" => u.internal_rate = value.parse().ok(),
            "first_weekday" => {}
            _ => {
                let list = st.admin.prefs.entry(id).or_default();
                match list.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = value,
                    None => list.push((name, value)),
                }
            }
        }
    }
    let u = st.user(id).cloned().ok_or_else(not_found)?;
    Ok(Answer::ok(user_json(st, &u)))
}

/// The body of the preferences and invoice custom-field endpoints: an array of objects with
/// `name` and `value` (a scalar); any other structure → 400.
pub(super) fn name_value_items(req: &Req) -> Result<Vec<(String, String)>, Answer> {
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad())?;
    let Value::Array(items) = body else {
        return Err(bad());
    };
    items
        .iter()
        .map(|it| {
            let o = it.as_object().ok_or_else(bad)?;
            let name = o
                .get("name")
                .and_then(|v| scalar(v).ok().flatten())
                .ok_or_else(bad)?;
            let value = match o.get("value") {
                None => return Err(bad()),
                Some(v) => scalar(v).map_err(|_| bad())?.unwrap_or_default(),
            };
            Ok((name, value))
        })
        .collect()
}
