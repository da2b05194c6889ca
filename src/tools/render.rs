//! Text blocks for the entities the administration tools show: customers, projects,
//! activities, teams, tags, invoices, public holidays, rates and comments (users are
//! `common::user_render::render_user`).
//!
//! One `Label: value` line per field Kimai returned, in Kimai's order, so that nothing the
//! model may need is dropped and a field added by a newer Kimai still shows up. Embedded
//! entities become `name (ID n)`, durations `H:MM:SS`, custom fields `name=value`; every Kimai
//! string goes through [`text::safe`] so that no value can forge a line. Fields a token may not
//! see (rates and budgets since Kimai 2.66) are named "not visible", never shown as 0.

use super::{args, text, time};
use serde_json::Value;

/// What an entity block is about; decides a few labels and which absent fields to name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Customer,
    Project,
    Activity,
    Team,
    Tag,
    Invoice,
    Holiday,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Project => "project",
            Kind::Activity => "activity",
            Kind::Team => "team",
            Kind::Tag => "tag",
            Kind::Invoice => "invoice",
            Kind::Holiday => "public holiday",
        }
    }
}

const NOT_VISIBLE: &str = "not visible to this token";

/// `Order number` from `orderNumber`, with the few labels that read better by hand.
fn label(key: &str) -> String {
    match key {
        "id" => return "ID".into(),
        "vatId" => return "VAT ID".into(),
        "metaFields" => return "Custom fields".into(),
        "color-safe" => return "Display color".into(),
        "invoiceNumber" => return "Number".into(),
        "publicHolidayGroup" => return "Holiday group".into(),
        "halfDay" => return "Half day".into(),
        "globalActivities" => return "Global activities".into(),
        "createdBy" => return "By".into(),
        "createdAt" => return "At".into(),
        _ => {}
    }
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_ascii_uppercase()
            || c.is_ascii_digit() && !out.ends_with(|p: char| p.is_ascii_digit())
        {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else if c == '-' || c == '_' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// `Name (ID 3)` for an embedded entity (users by display name), or the safe text of a scalar.
pub fn reference(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let name = ["alias", "name", "username", "invoiceNumber"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
                .map(text::safe)
                .unwrap_or_else(|| "?".into());
            match o.get("id").and_then(args::as_int) {
                Some(id) => format!("{name} (ID {id})"),
                None => name,
            }
        }
        other => scalar(other),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => text::safe(s),
        Value::Array(_) | Value::Object(_) => text::safe(&v.to_string()),
    }
}

/// `name=value, …` for `metaFields` / preferences.
fn name_values(items: &[Value]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items
        .iter()
        .map(|m| {
            let name = m.get("name").and_then(Value::as_str).unwrap_or("?");
            let value = match m.get("value") {
                Some(Value::String(s)) if !s.is_empty() => text::safe(s),
                Some(Value::Null) | None => "(empty)".into(),
                Some(Value::String(_)) => "(empty)".into(),
                Some(other) => other.to_string(),
            };
            format!("{}={value}", text::safe(name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_refs(items: &[Value]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(reference).collect::<Vec<_>>().join("; ")
}

/// The value of one field, formatted for its key.
fn field(kind: Kind, key: &str, v: &Value, all: &serde_json::Map<String, Value>) -> String {
    match (key, v) {
        ("timeBudget", Value::Number(_)) => {
            let secs = args::as_int(v).unwrap_or(0);
            if secs == 0 {
                "none".into()
            } else {
                format!("{} ({} h)", time::hms(secs), time::hours(secs))
            }
        }
        ("budget", Value::Number(n)) if n.as_f64() == Some(0.0) => "none".into(),
        ("budgetType", Value::Null) => "lifetime".into(),
        ("budgetType", Value::String(s)) if s == "month" => "monthly".into(),
        ("metaFields", Value::Array(items)) => name_values(items),
        ("members", Value::Array(items)) => {
            if items.is_empty() {
                return "(none)".into();
            }
            items
                .iter()
                .map(|m| {
                    let who = m.get("user").map(reference).unwrap_or_else(|| "?".into());
                    if m.get("teamlead").and_then(Value::as_bool) == Some(true) {
                        format!("{who}, team lead")
                    } else {
                        who
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
        // A project's customer and an activity's project come as an id plus `parentTitle`.
        ("customer" | "project", Value::Number(_)) => match all.get("parentTitle") {
            Some(Value::String(t)) => format!("{} (ID {v})", text::safe(t)),
            _ => format!("ID {v}"),
        },
        ("project", Value::Null) if kind == Kind::Activity => {
            "(none: global activity, usable in every project that allows global activities)".into()
        }
        ("color", Value::Null) => match all.get("color-safe").and_then(Value::as_str) {
            Some(c) => format!("(not set; shown as {})", text::safe(c)),
            None => "(not set)".into(),
        },
        (_, Value::Array(items)) if items.iter().all(Value::is_string) => {
            if items.is_empty() {
                "(none)".into()
            } else {
                items.iter().map(scalar).collect::<Vec<_>>().join(", ")
            }
        }
        (_, Value::Array(items)) => list_refs(items),
        (_, Value::Object(_)) => reference(v),
        (k, Value::String(s)) if k.ends_with("At") || k == "paymentDate" || k == "date" => {
            time::show_stamp(s)
        }
        _ => scalar(v),
    }
}

/// The block of one entity: every field Kimai returned, one per line. `single` marks the
/// entity shape of GET one / create / update, where budget fields belong (a list does not
/// carry them before Kimai 2.66, so their absence there says nothing).
pub fn entity(kind: Kind, v: &Value, single: bool) -> String {
    let Some(obj) = v.as_object() else {
        return format!("{}: Kimai returned no object ({})", kind.noun(), scalar(v));
    };
    let mut lines = Vec::new();
    for (k, val) in obj {
        // Shown with `color`, `customer`/`project`.
        if k == "color-safe" && obj.contains_key("color") || k == "parentTitle" {
            continue;
        }
        lines.push(format!("{}: {}", label(k), field(kind, k, val, obj)));
    }
    let budgeted = matches!(kind, Kind::Customer | Kind::Project | Kind::Activity);
    if budgeted && single {
        for k in ["budget", "timeBudget"] {
            if !obj.contains_key(k) {
                lines.push(format!("{}: {NOT_VISIBLE}", label(k)));
            }
        }
    }
    lines.join("\n")
}

/// A list of entity blocks with a count header; `empty` says what to try when nothing came.
pub fn entity_list(kind: Kind, plural: &str, items: &[Value], empty: &str) -> String {
    if items.is_empty() {
        return format!("No {plural} found. {empty}").trim_end().to_string();
    }
    let blocks: Vec<String> = items.iter().map(|v| entity(kind, v, false)).collect();
    format!("{} {plural}:\n\n{}", items.len(), blocks.join("\n\n"))
}

/// One rate: the user it applies to, the amounts, hourly or fixed. Amounts the token may not
/// see (Kimai 2.66 without `view_rate_*`) are "not visible", never 0.
pub fn rate(v: &Value) -> String {
    let id = v.get("id").map(scalar).unwrap_or_else(|| "?".into());
    let user = match v.get("user") {
        Some(Value::Null) | None => "all users (default rate)".to_string(),
        Some(u) => reference(u),
    };
    let amount = |k: &str| match v.get(k) {
        None => NOT_VISIBLE.to_string(),
        Some(Value::Null) => "(not set)".into(),
        Some(x) => scalar(x),
    };
    let kind = match v.get("isFixed").and_then(Value::as_bool) {
        Some(true) => "fixed amount per record",
        Some(false) => "hourly",
        None => NOT_VISIBLE,
    };
    format!(
        "ID: {id}\nUser: {user}\nRate: {}\nInternal rate: {}\nType: {kind}",
        amount("rate"),
        amount("internalRate")
    )
}

/// One comment: id, pinned state, author, time (UTC as Kimai stores it), message.
pub fn comment(v: &Value) -> String {
    let id = v.get("id").map(scalar).unwrap_or_else(|| "?".into());
    let pinned = v.get("pinned").and_then(Value::as_bool) == Some(true);
    let by = v
        .get("createdBy")
        .map(reference)
        .unwrap_or_else(|| "(unknown)".into());
    let at = v
        .get("createdAt")
        .and_then(Value::as_str)
        .map(time::show_stamp)
        .unwrap_or_else(|| "(unknown)".into());
    // Messages are markdown and often span lines: always quoted, so they stay one line.
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .map(text::quote)
        .unwrap_or_else(|| "(empty)".into());
    format!(
        "ID: {id}{}\nBy: {by}\nAt: {at}\nMessage: {message}",
        if pinned { " [PINNED]" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn project_block_names_parents_and_budgets() {
        let p = json!({
            "id": 3, "name": "Web\nID: 9", "customer": 1, "parentTitle": "Acme",
            "start": "2026-01-01", "end": null, "visible": true, "color": null, "color-safe": "#4CAF50",
            "metaFields": [{"name": "cost_center", "value": "CC-1"}],
            "teams": [{"id": 2, "name": "Dev"}], "budget": 1000.5, "timeBudget": 7200, "budgetType": "month"
        });
        let out = entity(Kind::Project, &p, true);
        assert!(out.starts_with("ID: 3\nName: \"Web\\nID: 9\"\n"), "{out}");
        assert!(out.contains("Customer: Acme (ID 1)"));
        assert!(out.contains("End: (none)"));
        assert!(out.contains("Color: (not set; shown as #4CAF50)"));
        assert!(out.contains("Custom fields: cost_center=CC-1"));
        assert!(out.contains("Teams: Dev (ID 2)"));
        assert!(out.contains("Time budget: 2:00:00 (2.00 h)"));
        assert!(out.contains("Budget type: monthly"));
        assert!(!out.contains("Parent title"));
        assert!(out.lines().all(|l| !l.starts_with("ID: 9")));
    }

    #[test]
    fn missing_budgets_and_rates_are_not_visible_never_zero() {
        let out = entity(Kind::Customer, &json!({"id": 1, "name": "A"}), true);
        assert!(out.contains("Budget: not visible to this token"), "{out}");
        assert!(out.contains("Time budget: not visible to this token"));
        // A list item says nothing about budgets.
        assert!(!entity(Kind::Customer, &json!({"id": 1, "name": "A"}), false).contains("Budget"));
        let r = rate(&json!({"id": 4, "user": null}));
        assert!(r.contains("Rate: not visible to this token"), "{r}");
        assert!(r.contains("Internal rate: not visible to this token"));
        assert!(!r.contains(": 0"));
        let r = rate(
            &json!({"id": 5, "user": {"id": 7, "username": "kai", "alias": null}, "rate": 90.0, "internalRate": null, "isFixed": true}),
        );
        assert_eq!(
            r,
            "ID: 5\nUser: kai (ID 7)\nRate: 90.0\nInternal rate: (not set)\nType: fixed amount per record"
        );
    }

    #[test]
    fn team_members_and_comments() {
        let t = json!({"id": 1, "name": "Dev", "members": [{"user": {"id": 3, "username": "tony", "alias": "Tony"}, "teamlead": true}, {"user": {"id": 5, "username": "john"}, "teamlead": false}], "customers": []});
        let out = entity(Kind::Team, &t, true);
        assert!(
            out.contains("Members: Tony (ID 3), team lead; john (ID 5)"),
            "{out}"
        );
        assert!(out.contains("Customers: (none)"));
        let c = comment(
            &json!({"id": 2, "message": "line1\nline2", "createdBy": {"id": 1, "username": "s"}, "createdAt": "2026-05-21T10:12:00+0000", "pinned": true}),
        );
        assert_eq!(
            c,
            "ID: 2 [PINNED]\nBy: s (ID 1)\nAt: 2026-05-21 10:12\nMessage: \"line1\\nline2\""
        );
    }

    #[test]
    fn labels() {
        assert_eq!(label("orderNumber"), "Order number");
        assert_eq!(label("addressLine1"), "Address line 1");
        assert_eq!(label("vatId"), "VAT ID");
        assert_eq!(label("color-safe"), "Display color");
    }
}
