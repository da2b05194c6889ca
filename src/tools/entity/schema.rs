//! The input schema of `entity`: the arguments every action shares, the list filters, and the
//! `data` fields of each type (create and update), narrowed per type by `if`/`then` branches.

use serde_json::{Map, Value, json};

fn meta_fields_schema() -> Value {
    json!({
        "type": "array",
        "description": "Custom fields as [{name, value}] (only names defined in Kimai).",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
            "required": ["name", "value"],
            "additionalProperties": false
        }
    })
}

fn time_budget_schema() -> Value {
    json!({"type": ["integer", "string"], "description": "seconds, or '1:30:00', '1.5h', '90m'; '' clears"})
}

fn ids_schema(d: &str) -> Value {
    json!({"type": "array", "items": {"type": "integer"}, "description": d})
}

/// `{"type": "string"}`.
fn string_schema() -> Value {
    json!({"type": "string"})
}
/// `{"type": "boolean"}`.
fn boolean_schema() -> Value {
    json!({"type": "boolean"})
}

fn customer_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": string_schema(), "country": {"type": "string", "description": "ISO 3166 alpha-2, e.g. DE"},
            "currency": {"type": "string", "description": "ISO 4217, e.g. EUR"},
            "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
            "number": string_schema(), "comment": string_schema(), "visible": boolean_schema(), "billable": boolean_schema(),
            "budget": {"type": "number"}, "timeBudget": time_budget_schema(),
            "budgetType": {"type": "string", "enum": ["month"]}, "color": string_schema(),
            "phone": string_schema(), "fax": string_schema(), "mobile": string_schema(), "email": string_schema(), "homepage": string_schema(),
            "addressLine1": string_schema(), "addressLine2": string_schema(), "addressLine3": string_schema(), "postCode": string_schema(),
            "city": string_schema(), "address": string_schema(),
            "contact": string_schema(), "company": string_schema(), "vatId": string_schema(), "buyerReference": string_schema(),
            "invoiceText": string_schema(), "invoiceTemplate": string_schema(), "language": string_schema(), "invoiceEmail": string_schema(),
            "teams": ids_schema("Team ids to give access (create only)."),
            "metaFields": meta_fields_schema()
        },
        "additionalProperties": false
    })
}

fn project_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": string_schema(), "customer": {"type": "integer"}, "comment": string_schema(), "visible": boolean_schema(),
            "billable": boolean_schema(), "budget": {"type": "number"}, "timeBudget": time_budget_schema(),
            "budgetType": {"type": "string", "enum": ["month"]}, "color": string_schema(),
            "globalActivities": boolean_schema(), "number": string_schema(), "orderNumber": string_schema(),
            "orderDate": {"type": "string", "description": "YYYY-MM-DD"},
            "start": {"type": "string", "description": "YYYY-MM-DD"},
            "end": {"type": "string", "description": "YYYY-MM-DD"},
            "lockedUntil": {"type": "string", "description": "YYYY-MM-DD: a day (Kimai keeps no time), '' clears (Kimai 2.66+)"},
            "invoiceText": string_schema(), "teams": ids_schema("Team ids to give access (create only)."),
            "metaFields": meta_fields_schema()
        },
        "additionalProperties": false
    })
}

fn activity_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": string_schema(), "project": {"type": "integer", "description": "Omit for a global activity."},
            "comment": string_schema(), "visible": boolean_schema(), "billable": boolean_schema(), "budget": {"type": "number"},
            "timeBudget": time_budget_schema(), "budgetType": {"type": "string", "enum": ["month"]},
            "color": string_schema(), "number": string_schema(), "invoiceText": string_schema(),
            "teams": ids_schema("Team ids to give access (create only)."),
            "metaFields": meta_fields_schema()
        },
        "additionalProperties": false
    })
}

const USER_UPDATE_FIELDS: &[&str] = &[
    "alias",
    "title",
    "accountNumber",
    "avatar",
    "color",
    "email",
    "language",
    "locale",
    "timezone",
];

fn user_data(create: bool) -> Value {
    let mut props = Map::new();
    if create {
        props.insert("username".into(), string_schema());
    }
    for k in USER_UPDATE_FIELDS {
        props.insert((*k).into(), string_schema());
    }
    props.insert("supervisor".into(), json!({"type": "integer"}));
    props.insert(
        "roles".into(),
        json!({"type": "array", "items": {"type": "string"}, "description": "replaces all roles, e.g. ROLE_TEAMLEAD"}),
    );
    if create {
        props.insert(
            "plainPassword".into(),
            json!({"type": "string", "description": "At least 8 characters."}),
        );
        props.insert("plainApiToken".into(), string_schema());
    }
    props.insert("enabled".into(), boolean_schema());
    props.insert("systemAccount".into(), boolean_schema());
    props.insert("requiresPasswordReset".into(), boolean_schema());
    let mut v = json!({"type": "object", "properties": props, "additionalProperties": false});
    if create {
        v["required"] = json!([
            "username",
            "email",
            "language",
            "locale",
            "timezone",
            "plainPassword"
        ]);
    }
    v
}

fn team_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": string_schema(), "color": string_schema(),
            "members": {
                "type": "array",
                "description": "the whole list; at least one team lead",
                "items": {
                    "type": "object",
                    "properties": {"user": {"type": "integer"}, "teamlead": {"type": "boolean"}},
                    "required": ["user"],
                    "additionalProperties": false
                }
            }
        },
        "additionalProperties": false
    })
}

fn tag_data() -> Value {
    json!({"type": "object", "properties": {"name": string_schema(), "color": string_schema(), "visible": boolean_schema()}, "additionalProperties": false})
}

fn invoice_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "comment": string_schema(),
            "status": {"type": "string", "enum": ["pending", "paid", "canceled", "new"]},
            "paymentDate": {"type": "string", "description": "YYYY-MM-DD"}
        },
        "additionalProperties": false
    })
}

/// The union of every type's `data` fields (the per-type branches below narrow it), so that the
/// top-level `data` can be a closed object as the registry requires.
fn data_union() -> Value {
    let mut props = Map::new();
    for branch in [
        customer_data(),
        project_data(),
        activity_data(),
        user_data(true),
        team_data(),
        tag_data(),
        invoice_data(),
    ] {
        for (k, v) in branch["properties"].as_object().into_iter().flatten() {
            props.entry(k.clone()).or_insert_with(|| {
                // The loosest type among the branches; the branch checks the exact one.
                let mut v = v.clone();
                if k == "project" || k == "customer" {
                    v = json!({"type": "integer"});
                }
                v
            });
        }
    }
    json!({
        "type": "object",
                "properties": props,
        "additionalProperties": false
    })
}

/// The branch for `ty` and `actions`: `data` holds only that type's fields (by name: their
/// schemas are those of the top-level `data`, the same for every type), with its required ones.
fn branch(ty: &str, actions: &[&str], data: Value) -> Value {
    let names: Vec<&String> = data["properties"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    let mut narrowed = json!({"propertyNames": {"enum": names}});
    if let Some(r) = data.get("required") {
        narrowed["required"] = r.clone();
    }
    json!({
        "if": {"properties": {"type": {"const": ty}, "action": {"enum": actions}}},
        "then": {"properties": {"data": narrowed}, "required": ["data"]}
    })
}

/// The input schema of `entity`: the common arguments, then one branch per type and action
/// that narrows `data`.
pub(super) fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["project", "activity", "customer", "user", "team", "tag", "invoice", "holiday"]},
            "action": {"type": "string", "enum": ["list", "get", "create", "update", "delete", "lock_month", "unlock_month", "batch_delete", "set_preferences"]},
            "id": {"type": "integer"},
            "filters": {
                "type": "object",
                                "properties": {
                    "visible": {"type": "integer", "enum": [1, 2, 3], "description": "1 visible (default), 2 hidden, 3 both"},
                    "term": {"type": "string", "description": "search words, all must match"},
                    "customer": {"type": "integer", "description": "project"},
                    "project": {"type": "integer", "description": "activity (also lists global activities)"},
                    "projects": {"type": "array", "items": {"type": "integer"}, "description": "activity"},
                    "globals": {"type": "string", "enum": ["0", "1"], "description": "activity: 1 = only global activities"},
                    "global_activities": {"type": "string", "enum": ["0", "1"], "description": "project: whether the project allows global activities"},
                    "ignore_dates": {"type": "boolean", "description": "project: also finished and future ones"},
                    "name": {"type": "string", "description": "tag: part of the name"},
                    "group": {"type": "integer", "description": "holiday: holiday group id"},
                    "page": {"type": "integer", "minimum": 1, "description": "invoice (default 1)"},
                    "size": {"type": "integer", "minimum": 1, "description": "invoice (default 50, at most 500)"},
                    "order_by": {"type": "string"},
                    "order": {"type": "string", "enum": ["ASC", "DESC"]},
                    "begin": {"type": "string", "format": "date-time", "description": "YYYY-MM-DD[THH:MM:SS]"},
                    "end": {"type": "string", "format": "date-time", "description": "as begin"},
                    "customers": {"type": "array", "items": {"type": "integer"}, "description": "project, invoice"},
                    "status": {"type": "array", "items": {"type": "string", "enum": ["pending", "paid", "canceled", "new"]}, "description": "invoice"},
                    "full": {"type": "boolean", "description": "customer: address and VAT fields (Kimai 2.62+)"}
                },
                "additionalProperties": false
            },
            "data": data_union(),
            "month": {"type": "string", "description": "YYYY-MM-DD, any day of the month"},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "dry_run": {"type": "boolean", "description": "only show what would change"},
            "user_scope": {"type": "string", "enum": ["all"], "description": "every user you can see"},
            "preferences": {
                "type": "array",
                "description": "set_preferences: [{name, value}]",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["type", "action"],
        "allOf": [
            branch("customer", &["create", "update"], customer_data()),
            branch("project", &["create", "update"], project_data()),
            branch("activity", &["create", "update"], activity_data()),
            branch("user", &["create"], user_data(true)),
            branch("user", &["update"], user_data(false)),
            branch("team", &["create", "update"], team_data()),
            branch("tag", &["create"], tag_data()),
            branch("invoice", &["update"], invoice_data()),
            {"if": {"properties": {"action": {"enum": ["get", "update", "delete"]}}}, "then": {"required": ["id"]}}
        ],
        "additionalProperties": false
    })
}
