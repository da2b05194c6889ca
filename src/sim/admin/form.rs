//! Helpers shared by the administration handlers: the role ranks of the §11 table, reading a
//! JSON body as a Kimai form (field by field, with the form-error shape of `writes`), names,
//! durations, budgets, teams, colours and custom texts.

use serde_json::{Map, Value, json};

use crate::sim::data::{State, User, rank};
use crate::sim::wire::{Answer, Req, bad};
use crate::sim::writes::{EXTRA_FIELDS, FormErrors, INVALID_CHOICE, truthy};

pub(super) const TEAMLEAD: u8 = 1;
pub(super) const ADMIN: u8 = 2;
pub(super) const SUPER_ADMIN: u8 = 3;

/// Whether the caller's role holds permissions granted from `min` upwards (§11 table).
pub(super) fn at_least(caller: &User, min: u8) -> bool {
    rank(caller.role) >= min
}

/// The JSON body as an object (empty body = no fields); anything else → 400.
fn body_object(req: &Req) -> Result<Map<String, Value>, Answer> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(bad()),
    }
}

/// A scalar as the form sees it (§0: `true` → "1", `false`/`null` → empty).
pub(super) fn scalar(v: &Value) -> Result<Option<String>, ()> {
    match v {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some("1".into())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(()),
    }
}

/// One form submission: the caller's field set, the body, and the errors collected.
pub(super) struct Form {
    pub(super) body: Map<String, Value>,
    pub(super) errs: FormErrors,
}

impl Form {
    /// Refuses fields outside `allowed` with the global "extra fields" error (§2.4).
    pub(super) fn new(req: &Req, allowed: &[&'static str]) -> Result<Form, Answer> {
        let body = body_object(req)?;
        let mut errs = FormErrors::new(allowed);
        if body.keys().any(|k| !allowed.contains(&k.as_str())) {
            errs.global.push(EXTRA_FIELDS.into());
            return Err(errs.reply());
        }
        Ok(Form { body, errs })
    }
    pub(super) fn has(&self, k: &str) -> bool {
        self.body.contains_key(k)
    }
    /// `Some(value)` when the field was sent (value `None` = sent empty).
    pub(super) fn text(&mut self, k: &'static str) -> Option<Option<String>> {
        let v = self.body.get(k)?;
        match scalar(v) {
            Ok(s) => Some(s),
            Err(()) => {
                self.errs.field(k, "This value is not valid.");
                None
            }
        }
    }
    pub(super) fn flag(&mut self, k: &'static str) -> Option<bool> {
        self.text(k).map(|v| truthy(&v))
    }
    pub(super) fn err(&mut self, k: &str, msg: &str) {
        self.errs.field(k, msg);
    }
    pub(super) fn finish(self) -> Result<(), Answer> {
        if self.errs.is_empty() {
            Ok(())
        } else {
            Err(self.errs.reply())
        }
    }
}

/// Name rules of the customer/project/team/tag forms: not blank, length, no `< > " =`.
pub(super) fn check_name(f: &mut Form, field: &'static str, value: &Option<String>, max: usize) {
    match value {
        None => f.err(field, "This value should not be blank."),
        Some(v) => {
            let n = v.chars().count();
            if n < 2 {
                f.err(
                    field,
                    "This value is too short. It should have 2 characters or more.",
                );
            } else if n > max {
                f.err(
                    field,
                    &format!("This value is too long. It should have {max} characters or less."),
                );
            }
            if v.contains(['<', '>', '"', '=']) {
                f.err(field, "These characters are not allowed: < > \" =");
            }
        }
    }
}

/// Kimai's duration input (§4.2): `h:mm[:ss]`, decimal hours (`1.5`, `1,5`; a bare number is
/// hours), or natural `2h30m15s`. Returns seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Some(0);
    }
    if t.contains(':') {
        let p: Vec<&str> = t.split(':').collect();
        let n = |x: &str| x.parse::<i64>().ok().filter(|v| *v >= 0);
        return match p.as_slice() {
            [h, m] => Some(n(h)? * 3600 + n(m)? * 60),
            [h, m, s] => Some(n(h)? * 3600 + n(m)? * 60 + n(s)?),
            _ => None,
        };
    }
    if let Ok(h) = t.replace(',', ".").parse::<f64>() {
        return h.is_finite().then(|| (h * 3600.0).round() as i64);
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
        } else {
            let v: f64 = num.parse().ok()?;
            total += v * match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            };
            num.clear();
        }
    }
    num.is_empty().then_some(total.round() as i64)
}

/// A value that lives for the rest of the simulator's run: the entity structs of `data` keep
/// country, currency, timezone and language as `&'static str` (seeded constants). Leaking a few
/// bytes per create/update is fine for a test server.
pub(super) fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

pub(super) fn set_extra(st: &mut State, kind: &'static str, id: u64, key: &str, v: Value) {
    st.admin
        .fields
        .entry((kind, id))
        .or_default()
        .insert(key.to_string(), v);
}

/// Budget fields (`budget`, `timeBudget`, `budgetType`) exist on the form only with the budget
/// and time permissions (ADMIN+ by default, §11). Unsure: teamleads hold `budget_teamlead_*`
/// for entities of teams they lead; the simulator leaves them out.
pub(super) fn budget_fields(caller: &User) -> &'static [&'static str] {
    if at_least(caller, ADMIN) {
        &["budget", "timeBudget", "budgetType"]
    } else {
        &[]
    }
}

/// Reads the budget fields into (key, value) pairs to store, recording form errors.
pub(super) fn read_budgets(f: &mut Form) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if let Some(b) = f.text("budget") {
        match b.map(|s| s.replace(',', ".").parse::<f64>()) {
            None => out.push(("budget", json!(0.0))),
            Some(Ok(x)) => out.push(("budget", json!(x))),
            Some(Err(_)) => f.err("budget", "Please enter a number."),
        }
    }
    if let Some(t) = f.text("timeBudget") {
        match t.as_deref().map(parse_duration) {
            None => out.push(("timeBudget", json!(0))),
            Some(Some(secs)) => out.push(("timeBudget", json!(secs))),
            Some(None) => f.err("timeBudget", "This value is not valid."),
        }
    }
    if let Some(t) = f.text("budgetType") {
        match t.as_deref() {
            None => out.push(("budgetType", Value::Null)),
            Some("month") => out.push(("budgetType", json!("month"))),
            Some(_) => f.err("budgetType", "The selected choice is invalid."),
        }
    }
    out
}

/// `teams` (POST only): team ids; unknown ids are a field error.
pub(super) fn read_teams(st: &State, f: &mut Form) -> Vec<u64> {
    let Some(v) = f.body.get("teams").cloned() else {
        return Vec::new();
    };
    let ids: Option<Vec<u64>> = match &v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
            .collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    };
    match ids {
        Some(ids) if ids.iter().all(|id| st.teams.iter().any(|t| t.id == *id)) => ids,
        _ => {
            f.err("teams", INVALID_CHOICE);
            Vec::new()
        }
    }
}

/// Optional string fields stored as extra wire fields (`None` stores `null`).
pub(super) fn read_extra_texts(f: &mut Form, keys: &[&'static str]) -> Vec<(&'static str, Value)> {
    keys.iter()
        .filter_map(|k| f.text(k).map(|v| (*k, json!(v))))
        .collect()
}

pub(super) fn read_color(f: &mut Form) -> Option<Option<String>> {
    let c = f.text("color")?;
    if let Some(s) = &c {
        let ok =
            s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            f.err("color", "This value is not a valid color.");
            return None;
        }
    }
    Some(c)
}

pub(super) fn next_id<T>(items: &[T], id: impl Fn(&T) -> u64) -> u64 {
    items.iter().map(id).max().unwrap_or(0) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_kimai() {
        assert_eq!(parse_duration("2:00:00"), Some(7200));
        assert_eq!(parse_duration("1:30"), Some(5400));
        // A bare number is hours (§4.2).
        assert_eq!(parse_duration("7200"), Some(7200 * 3600));
        assert_eq!(parse_duration("1,5"), Some(5400));
        assert_eq!(parse_duration("2h30m"), Some(9000));
        assert_eq!(parse_duration(""), Some(0));
        assert_eq!(parse_duration("soon"), None);
    }
}
