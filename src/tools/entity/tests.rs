//! Unit tests of `entity`: bodies, list filters and preference aliases.

use super::list::list_request;
use super::user::canonical_preference;
use super::write::body;
use super::*;
use serde_json::json;

fn as_map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn time_budget_goes_out_as_a_duration_and_digits_are_refused() {
    let out = body(Type::Project, &as_map(json!({"timeBudget": 7200})), true).unwrap();
    assert_eq!(out["timeBudget"], "2:00:00");
    let out = body(Type::Project, &as_map(json!({"timeBudget": "1.5h"})), true).unwrap();
    assert_eq!(out["timeBudget"], "1:30:00");
    let out = body(Type::Customer, &as_map(json!({"timeBudget": ""})), false).unwrap();
    assert_eq!(out["timeBudget"], "");
    let e = body(Type::Activity, &as_map(json!({"timeBudget": "7200"})), true).unwrap_err();
    assert!(matches!(e, ToolError::Invalid(m) if m.contains("ambiguous")));
}

#[test]
fn project_dates_differ_between_create_and_update() {
    let d = as_map(
        json!({"start": "2026-03-01", "end": "2026-03-31T12:00:00", "orderDate": "2026-02-15"}),
    );
    let c = body(Type::Project, &d, true).unwrap();
    assert_eq!(c["start"], "2026-03-01");
    assert_eq!(c["end"], "2026-03-31");
    let u = body(Type::Project, &d, false).unwrap();
    assert_eq!(u["start"], "2026-03-01T00:00:00");
    assert_eq!(u["end"], "2026-03-31T12:00:00");
    assert_eq!(u["orderDate"], "2026-02-15T00:00:00");
    assert!(body(Type::Project, &as_map(json!({"start": "March"})), true).is_err());
}

#[test]
fn only_caller_fields_are_sent_except_the_booleans_kimai_would_flip() {
    let out = body(
        Type::Customer,
        &as_map(json!({"name": "A", "metaFields": [{"name": "x", "value": "y"}]})),
        false,
    )
    .unwrap();
    assert_eq!(Value::Object(out), json!({"name": "A"}));
    let out = body(Type::Tag, &as_map(json!({"name": "t"})), true).unwrap();
    assert_eq!(Value::Object(out), json!({"name": "t", "visible": true}));
    let out = body(
        Type::Team,
        &as_map(json!({"name": "T", "members": [{"user": 3}]})),
        true,
    )
    .unwrap();
    assert_eq!(out["members"], json!([{"user": 3, "teamlead": false}]));
}

#[test]
fn filters_apply_per_type() {
    let f = as_map(
        json!({"visible": 3, "order_by": "customer", "ignore_dates": true, "status": ["paid"], "begin": "2026-01-01"}),
    );
    let (r, ignored) = list_request(Type::Project, &f).unwrap();
    assert_eq!(
        r.query,
        vec![
            ("visible".into(), "3".into()),
            ("orderBy".into(), "customer".into()),
            ("ignoreDates".into(), "1".into()),
            ("start".into(), "2026-01-01".into())
        ]
    );
    assert_eq!(ignored, vec!["status".to_string()]);
    let e = list_request(Type::Customer, &as_map(json!({"order_by": "customer"}))).unwrap_err();
    assert!(matches!(e, ToolError::Invalid(m) if m.contains("id, name")));
    let (r, _) = list_request(Type::Invoice, &as_map(json!({"begin": "2026-01-01", "end": "2026-01-31", "status": ["new", "paid"], "customers": [1]}))).unwrap();
    assert_eq!(
        r.query,
        vec![
            ("customers[]".into(), "1".into()),
            ("begin".into(), "2026-01-01T00:00:00".into()),
            ("end".into(), "2026-01-31T23:59:59".into()),
            ("status[]".into(), "new".into()),
            ("status[]".into(), "paid".into()),
            ("page".into(), "1".into()),
            ("size".into(), "50".into())
        ]
    );
    assert!(list_request(Type::Tag, &as_map(json!({"name": "a", "term": "b"}))).is_err());
}

#[test]
fn preference_aliases() {
    assert_eq!(canonical_preference("vacation_days"), "holidays");
    assert_eq!(canonical_preference("weekly_hours"), "hours_per_week");
    assert_eq!(canonical_preference("contract_type"), "work_contract_type");
    assert_eq!(canonical_preference("hourly_rate"), "hourly_rate");
}
