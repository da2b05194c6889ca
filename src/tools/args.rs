//! Reading tool arguments after the schema check: typed getters whose errors name the
//! argument, so that a handler's own rules ("`id` is required for get") read like the schema's.
//!
//! The schema already guaranteed the JSON types; these helpers only add presence rules and the
//! integral-float tolerance (`3.0` is the integer 3, as JSON Schema counts it).

use super::ToolError;
use serde_json::{Map, Value};

pub type Args = Map<String, Value>;

/// An integer argument (`3` or `3.0`), if present and not null.
pub fn int(args: &Args, key: &str) -> Option<i64> {
    as_int(args.get(key)?)
}

/// Reads an integer from a JSON value, accepting integral floats.
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// A required integer argument; the error says which action needs it.
pub fn need_int(args: &Args, key: &str, why: &str) -> Result<i64, ToolError> {
    int(args, key).ok_or_else(|| ToolError::Invalid(format!("'{key}' is required {why}")))
}

/// A positive id argument (Kimai ids start at 1).
pub fn need_id(args: &Args, key: &str, why: &str) -> Result<i64, ToolError> {
    let id = need_int(args, key, why)?;
    if id < 1 {
        return Err(ToolError::Invalid(format!(
            "'{key}' must be a positive id, got {id}"
        )));
    }
    Ok(id)
}

/// A string argument, if present, not null and not blank.
pub fn string<'a>(args: &'a Args, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

pub fn need_string<'a>(args: &'a Args, key: &str, why: &str) -> Result<&'a str, ToolError> {
    string(args, key).ok_or_else(|| ToolError::Invalid(format!("'{key}' is required {why}")))
}

pub fn boolean(args: &Args, key: &str) -> Option<bool> {
    args.get(key).and_then(Value::as_bool)
}

/// An object argument (e.g. `data`, `filters`), if present.
pub fn object<'a>(args: &'a Args, key: &str) -> Option<&'a Args> {
    args.get(key).and_then(Value::as_object)
}

/// A list of ids with repeats removed (first occurrence kept) and order preserved.
pub fn ids(args: &Args, key: &str) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for id in args
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(as_int)
    {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The ids for a batch action: `ids`, required and non-empty.
pub fn need_ids(args: &Args, key: &str, why: &str) -> Result<Vec<i64>, ToolError> {
    let ids = ids(args, key);
    if ids.is_empty() {
        return Err(ToolError::Invalid(format!(
            "'{key}' must list at least one id {why}"
        )));
    }
    if let Some(bad) = ids.iter().find(|i| **i < 1) {
        return Err(ToolError::Invalid(format!(
            "'{key}' must contain positive ids, got {bad}"
        )));
    }
    Ok(ids)
}

/// The `action` argument (the schema made it required and checked its enum).
pub fn action(args: &Args) -> &str {
    args.get("action").and_then(Value::as_str).unwrap_or("")
}

/// Fails when an argument was given that the chosen action does not use, so that a model
/// learns at once that e.g. `filters` only applies to `list`.
pub fn refuse_unused(args: &Args, action: &str, allowed: &[&str]) -> Result<(), ToolError> {
    let mut unused: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "action" && !allowed.contains(k))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    unused.sort_unstable();
    Err(ToolError::Invalid(format!(
        "{} not used by action '{action}'{}",
        unused
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", "),
        if allowed.is_empty() {
            String::new()
        } else {
            format!(" (it takes: {})", allowed.join(", "))
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn getters() {
        let a =
            args(json!({"id": 3.0, "name": " ", "ids": [3, 1, 3, 2.0], "flag": true, "neg": -1}));
        assert_eq!(int(&a, "id"), Some(3));
        assert_eq!(string(&a, "name"), None);
        assert_eq!(ids(&a, "ids"), vec![3, 1, 2]);
        assert_eq!(boolean(&a, "flag"), Some(true));
        assert!(
            matches!(need_id(&a, "neg", "for get"), Err(ToolError::Invalid(m)) if m.contains("positive"))
        );
        assert!(
            matches!(need_int(&a, "missing", "for get"), Err(ToolError::Invalid(m)) if m == "'missing' is required for get")
        );
        assert!(need_ids(&args(json!({"ids": []})), "ids", "for batch_delete").is_err());
    }

    #[test]
    fn unused_arguments_are_named() {
        let a = args(json!({"action": "get", "id": 1, "filters": {}}));
        let e = refuse_unused(&a, "get", &["id"]).unwrap_err();
        assert!(
            matches!(e, ToolError::Invalid(m) if m == "'filters' not used by action 'get' (it takes: id)")
        );
        refuse_unused(&a, "list", &["id", "filters"]).unwrap();
    }
}
