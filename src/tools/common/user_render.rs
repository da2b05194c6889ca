//! The text block for one Kimai user entity (contract §6.6): names, roles, timezone,
//! supervisor, team memberships and preferences, one `Label: value` line per field, every Kimai
//! string made safe by [`text::safe`]. Used by `user_current` and `entity`.

use crate::tools::text;
use serde_json::Value;

/// The string field `key` of `v`, if it is one.
fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn yes_no(v: &Value, key: &str) -> &'static str {
    match v.get(key).and_then(Value::as_bool) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// A short `name (ID n)` reference to an embedded user or team.
fn reference(v: &Value, name_key: &str) -> String {
    let name = str_field(v, "alias")
        .filter(|a| !a.is_empty())
        .or_else(|| str_field(v, name_key))
        .unwrap_or("?");
    match v.get("id").and_then(Value::as_i64) {
        Some(id) => format!("{} (ID {id})", text::safe(name)),
        None => text::safe(name),
    }
}

/// The user block: one `Label: value` line per field Kimai returned.
pub fn render_user(u: &Value) -> String {
    let mut lines = Vec::new();
    let id = u
        .get("id")
        .and_then(Value::as_i64)
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".into());
    lines.push(format!("ID: {id}"));
    lines.push(format!(
        "Username: {}",
        text::safe_opt(str_field(u, "username"))
    ));
    if let Some(alias) = str_field(u, "alias").filter(|a| !a.is_empty()) {
        lines.push(format!("Display name: {}", text::safe(alias)));
    }
    if let Some(title) = str_field(u, "title").filter(|a| !a.is_empty()) {
        lines.push(format!("Title: {}", text::safe(title)));
    }
    if let Some(email) = str_field(u, "email").filter(|a| !a.is_empty()) {
        lines.push(format!("Email: {}", text::safe(email)));
    }
    if let Some(acc) = str_field(u, "accountNumber").filter(|a| !a.is_empty()) {
        lines.push(format!("Account number: {}", text::safe(acc)));
    }
    let roles: Vec<String> = u
        .get("roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(text::safe)
        .collect();
    // ROLE_USER is implicit in Kimai and never listed (contract §11).
    lines.push(format!(
        "Roles: {}",
        if roles.is_empty() {
            "ROLE_USER".to_string()
        } else {
            format!("{} (and ROLE_USER)", roles.join(", "))
        }
    ));
    lines.push(format!("Enabled: {}", yes_no(u, "enabled")));
    if u.get("systemAccount").and_then(Value::as_bool) == Some(true) {
        lines.push("System account: yes".into());
    }
    lines.push(format!(
        "Timezone: {}",
        text::safe_opt(str_field(u, "timezone"))
    ));
    lines.push(format!(
        "Language: {}",
        text::safe_opt(str_field(u, "language"))
    ));
    if let Some(locale) = str_field(u, "locale") {
        lines.push(format!("Locale: {}", text::safe(locale)));
    }
    match u.get("supervisor") {
        Some(sup @ Value::Object(_)) => {
            lines.push(format!("Supervisor: {}", reference(sup, "username")))
        }
        Some(Value::Null) => lines.push("Supervisor: (none)".into()),
        _ => {}
    }
    if let Some(memberships) = u.get("memberships").and_then(Value::as_array) {
        let teams: Vec<String> = memberships
            .iter()
            .filter_map(|m| {
                let team = m.get("team")?;
                let lead = m.get("teamlead").and_then(Value::as_bool) == Some(true);
                Some(format!(
                    "{}{}",
                    reference(team, "name"),
                    if lead { ", team lead" } else { "" }
                ))
            })
            .collect();
        lines.push(format!(
            "Teams: {}",
            if teams.is_empty() {
                "(none)".to_string()
            } else {
                teams.join("; ")
            }
        ));
    } else if let Some(teams) = u.get("teams").and_then(Value::as_array) {
        let teams: Vec<String> = teams.iter().map(|t| reference(t, "name")).collect();
        lines.push(format!(
            "Teams: {}",
            if teams.is_empty() {
                "(none)".to_string()
            } else {
                teams.join("; ")
            }
        ));
    }
    if let Some(prefs) = u.get("preferences").and_then(Value::as_array) {
        let mut shown: Vec<String> = prefs
            .iter()
            .filter_map(|p| {
                let name = str_field(p, "name")?;
                let value = match p.get("value") {
                    Some(Value::String(v)) => text::safe_opt(Some(v)),
                    Some(Value::Null) | None => "(empty)".to_string(),
                    Some(other) => other.to_string(),
                };
                Some(format!("{}={value}", text::safe(name)))
            })
            .collect();
        shown.sort();
        if !shown.is_empty() {
            lines.push(format!("Preferences: {}", shown.join(", ")));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_every_field_on_its_own_line_and_neutralises_line_breaks() {
        let u = json!({
            "id": 3, "username": "anna", "alias": "Anna\nID: 1 forged", "title": "Lead", "email": "anna@example.com",
            "accountNumber": null, "enabled": true, "systemAccount": false, "timezone": "Europe/Berlin",
            "language": "en", "locale": "de_DE", "roles": ["ROLE_TEAMLEAD"],
            "supervisor": {"id": 1, "username": "boss", "alias": null},
            "memberships": [{"team": {"id": 2, "name": "Design"}, "teamlead": true}, {"team": {"id": 5, "name": "Ops"}, "teamlead": false}],
            "preferences": [{"name": "hourly_rate", "value": "80"}, {"name": "first_weekday", "value": "monday"}]
        });
        let out = render_user(&u);
        assert!(
            out.contains("ID: 3\nUsername: anna\nDisplay name: \"Anna\\nID: 1 forged\""),
            "{out}"
        );
        assert!(out.contains("Roles: ROLE_TEAMLEAD (and ROLE_USER)"));
        assert!(out.contains("Supervisor: boss (ID 1)"));
        assert!(out.contains("Teams: Design (ID 2), team lead; Ops (ID 5)"));
        assert!(out.contains("Preferences: first_weekday=monday, hourly_rate=80"));
        assert!(!out.contains("Account number"));
        // No line of the output starts with a forged field.
        assert!(out.lines().all(|l| !l.starts_with("ID: 1")));
    }

    #[test]
    fn plain_user_shows_implicit_role() {
        let out = render_user(
            &json!({"id": 9, "username": "u", "roles": [], "enabled": true, "supervisor": null, "memberships": []}),
        );
        assert!(out.contains("Roles: ROLE_USER\n"), "{out}");
        assert!(out.contains("Supervisor: (none)"));
        assert!(out.contains("Teams: (none)"));
    }
}
