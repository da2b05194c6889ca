//! Checks tool arguments against the tool's advertised input schema before the handler runs.
//!
//! A small validator for the subset of JSON Schema 2020-12 the tool schemas use: `type`,
//! `enum`, `const`, `properties`, `required`, `additionalProperties: false`, `items`,
//! `minimum`/`maximum`, `minLength`/`maxLength`, `minItems`/`maxItems`, `allOf`, and
//! `if`/`then`/`else`. `format` and `description` are documentation only. A registry test
//! makes sure no tool schema uses a keyword outside this set, so the advertised schema and the
//! check can never drift apart.
//!
//! Errors name the offending argument by its path (`data.name`, `ids[2]`) so that the model can
//! correct itself; MCP 2025-11-25 wants them as tool results with `isError`, not protocol errors.

use serde_json::{Map, Value};

/// Keywords the validator understands (or deliberately ignores as annotations).
pub const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "propertyNames",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "allOf",
    "if",
    "then",
    "else",
    "format",
    "description",
    "default",
    "title",
    "examples",
];

/// Validates `value` against `schema`. The error says which argument is wrong and why.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "")
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "the arguments".to_string()
    } else {
        format!("argument '{path}'")
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An integer in JSON Schema terms: any number with no fractional part (so `3.0` counts).
pub fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        }
        _ => false,
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };

    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
            let wanted = types
                .iter()
                .map(|t| match *t {
                    "integer" => "an integer",
                    "number" => "a number",
                    "string" => "a string",
                    "boolean" => "a boolean (true or false)",
                    "array" => "an array",
                    "object" => "an object",
                    _ => "null",
                })
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(format!(
                "{} must be {wanted}, not {}",
                at(path),
                type_name(value)
            ));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        let list = options
            .iter()
            .map(|o| {
                o.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| o.to_string())
            })
            .collect::<Vec<_>>();
        return Err(format!(
            "{} must be one of: {} (got {})",
            at(path),
            list.join(", "),
            short(value)
        ));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        return Err(format!("{} must be {}", at(path), c));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!(
                "{} must be at least {min}, got {}",
                at(path),
                short(value)
            ));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!(
                "{} must be at most {max}, got {}",
                at(path),
                short(value)
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            return Err(format!(
                "{} must be at least {min} characters long",
                at(path)
            ));
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            return Err(format!(
                "{} must be at most {max} characters long",
                at(path)
            ));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            return Err(format!("{} needs at least {min} item(s)", at(path)));
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            return Err(format!(
                "{} takes at most {max} item(s), got {}",
                at(path),
                items.len()
            ));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(
                    item_schema,
                    item,
                    &format!("{}[{i}]", if path.is_empty() { "arguments" } else { path }),
                )?;
            }
        }
    }
    if let Some(obj) = value.as_object() {
        check_object(s, obj, path)?;
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(sub, value, path)?;
        }
    }
    if let Some(cond) = s.get("if") {
        let branch = if check(cond, value, path).is_ok() {
            s.get("then")
        } else {
            s.get("else")
        };
        if let Some(branch) = branch {
            check(branch, value, path)?;
        }
    }
    Ok(())
}

fn check_object(
    s: &Map<String, Value>,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<(), String> {
    let props = s.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = s.get("required") {
        for r in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                return Err(format!("{} is required", at(&join(path, r))));
            }
        }
    }
    if s.get("additionalProperties") == Some(&Value::Bool(false)) {
        let mut unknown: Vec<&str> = obj
            .keys()
            .filter(|k| !props.is_some_and(|p| p.contains_key(*k)))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            let allowed = props
                .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let shown: Vec<String> = unknown
                .iter()
                .take(5)
                .map(|k| format!("'{}'", k.chars().take(40).collect::<String>()))
                .collect();
            return Err(if allowed.is_empty() {
                format!(
                    "{} takes no arguments; remove {}",
                    if path.is_empty() {
                        "this tool".to_string()
                    } else {
                        at(path)
                    },
                    shown.join(", ")
                )
            } else {
                format!(
                    "unknown {} {}{}; allowed: {allowed}",
                    if unknown.len() == 1 {
                        "argument"
                    } else {
                        "arguments"
                    },
                    join_prefix(path),
                    shown.join(", ")
                )
            });
        }
    }
    // `propertyNames` with an `enum`: the names this object may have (the entity tool's
    // per-type `data` fields; their types are in `properties` of the enclosing schema).
    if let Some(Value::Array(names)) = s.get("propertyNames").and_then(|p| p.get("enum")) {
        let mut unknown: Vec<&str> = obj
            .keys()
            .filter(|k| !names.iter().any(|n| n.as_str() == Some(k.as_str())))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            let allowed: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            return Err(format!(
                "unknown {} {}{}; allowed: {}",
                if unknown.len() == 1 {
                    "argument"
                } else {
                    "arguments"
                },
                join_prefix(path),
                unknown
                    .iter()
                    .take(5)
                    .map(|k| format!("'{}'", k.chars().take(40).collect::<String>()))
                    .collect::<Vec<_>>()
                    .join(", "),
                allowed.join(", ")
            ));
        }
    }
    if let Some(props) = props {
        for (k, sub) in props {
            if let Some(v) = obj.get(k) {
                check(sub, v, &join(path, k))?;
            }
        }
    }
    Ok(())
}

fn join_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("in '{path}': ")
    }
}

/// Lists the keywords of `schema` (recursively) that the validator does not know, so that a
/// registry test can refuse them.
pub fn unknown_keywords(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, &mut out);
    out
}

fn walk(schema: &Value, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    for (k, v) in s {
        if !KNOWN_KEYWORDS.contains(&k.as_str()) {
            out.push(k.clone());
        }
        match k.as_str() {
            "properties" => {
                if let Some(p) = v.as_object() {
                    p.values().for_each(|sub| walk(sub, out));
                }
            }
            "items" | "if" | "then" | "else" => walk(v, out),
            "allOf" => {
                if let Some(a) = v.as_array() {
                    a.iter().for_each(|sub| walk(sub, out));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": ["list", "get"]},
                "id": {"type": "integer", "minimum": 1},
                "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
                "data": {"type": "object", "additionalProperties": false, "properties": {"name": {"type": "string", "maxLength": 5}}}
            },
            "allOf": [{"if": {"properties": {"action": {"const": "get"}}}, "then": {"required": ["id"]}}]
        })
    }

    #[test]
    fn accepts_valid_arguments() {
        validate(&schema(), &json!({"action": "list"})).unwrap();
        validate(&schema(), &json!({"action": "get", "id": 3})).unwrap();
        validate(&schema(), &json!({"action": "get", "id": 3.0})).unwrap();
        validate(
            &schema(),
            &json!({"action": "list", "ids": [1, 2], "data": {"name": "abc"}}),
        )
        .unwrap();
    }

    #[test]
    fn names_the_offending_argument() {
        let e = validate(&schema(), &json!({})).unwrap_err();
        assert_eq!(e, "argument 'action' is required");
        let e = validate(&schema(), &json!({"action": "delete"})).unwrap_err();
        assert!(
            e.starts_with("argument 'action' must be one of: list, get"),
            "{e}"
        );
        let e = validate(&schema(), &json!({"action": "get"})).unwrap_err();
        assert_eq!(e, "argument 'id' is required");
        let e = validate(&schema(), &json!({"action": "get", "id": "3"})).unwrap_err();
        assert_eq!(e, "argument 'id' must be an integer, not a string");
        let e = validate(&schema(), &json!({"action": "get", "id": 0})).unwrap_err();
        assert!(e.contains("'id' must be at least 1"), "{e}");
        let e = validate(&schema(), &json!({"action": "list", "ids": [1, "x"]})).unwrap_err();
        assert_eq!(e, "argument 'ids[1]' must be an integer, not a string");
        let e = validate(&schema(), &json!({"action": "list", "ids": [1, 2, 3, 4]})).unwrap_err();
        assert!(e.contains("at most 3"), "{e}");
        let e = validate(
            &schema(),
            &json!({"action": "list", "data": {"name": "too long"}}),
        )
        .unwrap_err();
        assert!(
            e.contains("'data.name' must be at most 5 characters"),
            "{e}"
        );
        let e = validate(&schema(), &json!({"action": "list", "colour": 1})).unwrap_err();
        assert!(
            e.starts_with("unknown argument 'colour'; allowed: action, id, ids, data"),
            "{e}"
        );
        let e = validate(&schema(), &json!({"action": "list", "data": {"x": 1}})).unwrap_err();
        assert!(e.contains("in 'data': 'x'"), "{e}");
    }

    #[test]
    fn empty_closed_schema_refuses_any_argument() {
        let s = json!({"type": "object", "properties": {}, "additionalProperties": false});
        validate(&s, &json!({})).unwrap();
        let e = validate(&s, &json!({"verbose": true})).unwrap_err();
        assert_eq!(e, "this tool takes no arguments; remove 'verbose'");
    }

    #[test]
    fn unknown_keywords_are_reported() {
        assert!(unknown_keywords(&schema()).is_empty());
        let s = json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}, "oneOf": []});
        let mut u = unknown_keywords(&s);
        u.sort();
        assert_eq!(u, vec!["oneOf", "pattern"]);
    }
}
