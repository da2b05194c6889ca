//! Unit tests of `timesheet`: bodies, list queries and filter warnings.

use super::query::{ListQuery, MetaFilter, Scope, build_query, utc};
use super::write::body;
use crate::tools::ToolError;
use crate::tools::args::Args;
use serde_json::{Value, json};

fn f(v: Value) -> Args {
    v.as_object().unwrap().clone()
}

fn query(q: &ListQuery) -> Vec<(String, String)> {
    q.request.query.clone()
}

#[test]
fn filters_become_kimai_query_parameters() {
    let q = build_query(&f(json!({
        "user_scope": "all", "projects": [3, 3, 4], "tags": ["a b"], "begin": "2026-03-01", "end": "2026-03-31",
        "exported": 0, "order_by": "begin", "order": "ASC", "term": "x", "size": 900, "page": 2
    })))
    .unwrap();
    assert_eq!(
        query(&q),
        vec![
            ("user".into(), "all".into()),
            ("projects[]".into(), "3".into()),
            ("projects[]".into(), "4".into()),
            ("tags[]".into(), "a b".into()),
            ("begin".into(), "2026-03-01T00:00:00".into()),
            ("end".into(), "2026-03-31T23:59:59".into()),
            ("exported".into(), "0".into()),
            ("orderBy".into(), "begin".into()),
            ("order".into(), "ASC".into()),
            ("term".into(), "x".into()),
        ]
    );
    assert_eq!((q.page, q.size), (2, 500));
    assert!(q.notes[0].contains("500"));
}

#[test]
fn offsets_are_refused_with_the_fix() {
    let e = build_query(&f(json!({"begin": "2026-03-01T10:00:00+02:00"})))
        .err()
        .unwrap();
    assert!(matches!(e, ToolError::Invalid(m) if m.contains("without an offset")));
    let e = build_query(&f(json!({"end": "2026-03-01T10:00:00Z"})))
        .err()
        .unwrap();
    assert!(matches!(e, ToolError::Invalid(m) if m.contains("filters.end")));
    let e = build_query(&f(json!({"begin": "2026-03-02", "end": "2026-03-01"})))
        .err()
        .unwrap();
    assert!(matches!(e, ToolError::Invalid(m) if m.contains("before")));
}

#[test]
fn modified_after_is_utc() {
    assert_eq!(
        utc("2026-03-01T10:00:00+02:00").unwrap(),
        "2026-03-01T08:00:00"
    );
    assert_eq!(utc("2026-03-01T00:30:00Z").unwrap(), "2026-03-01T00:30:00");
    assert_eq!(
        utc("2026-03-01T01:00:00-0300").unwrap(),
        "2026-03-01T04:00:00"
    );
    assert_eq!(utc("2026-03-01").unwrap(), "2026-03-01T00:00:00");
}

#[test]
fn specific_scope_needs_a_numeric_user() {
    assert!(matches!(
        build_query(&f(json!({"user_scope": "specific"}))),
        Err(ToolError::Invalid(_))
    ));
    assert!(
        matches!(build_query(&f(json!({"user_scope": "specific", "user": "anna"}))), Err(ToolError::Invalid(m)) if m.contains("numeric"))
    );
    let q = build_query(&f(json!({"user_scope": "specific", "user": "7"}))).unwrap();
    assert_eq!(q.scope, Scope::One(7));
    assert!(matches!(
        build_query(&f(json!({"user": "7"}))),
        Err(ToolError::Invalid(_))
    ));
}

#[test]
fn write_bodies_send_only_what_was_given_in_kimai_formats() {
    let b = body(&f(json!({"project": 1, "activity": 2.0, "begin": "2026-03-01T09:00", "break": 1800, "description": "x"}))).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"project": 1, "activity": 2, "begin": "2026-03-01T09:00:00", "break": "0:30:00", "description": "x"})
    );
    let b = body(&f(json!({"break": "45m"}))).unwrap();
    assert_eq!(b["break"], json!("0:45:00"));
    assert!(
        body(&f(json!({"break": "30"}))).is_err(),
        "a bare number string is ambiguous"
    );
    assert!(body(&f(json!({"begin": "2026-03-01T09:00:00Z"}))).is_err());
}

#[test]
fn meta_filter_terms_and_matching() {
    let m = MetaFilter {
        name: "ticket".into(),
        value: Some("T-1".into()),
    };
    assert_eq!(m.term().as_deref(), Some("ticket:T-1"));
    assert!(m.matches(&json!({"metaFields": [{"name": "Ticket", "value": "t-1"}]})));
    assert!(!m.matches(&json!({"metaFields": [{"name": "ticket", "value": "T-10"}]})));
    let m = MetaFilter {
        name: "ticket".into(),
        value: Some("a b".into()),
    };
    assert_eq!(m.term().as_deref(), Some("ticket:*"));
    let m = MetaFilter {
        name: "ticket".into(),
        value: Some(String::new()),
    };
    assert_eq!(m.term(), None);
    assert!(m.matches(&json!({"metaFields": []})));
    let m = MetaFilter {
        name: "ticket".into(),
        value: None,
    };
    assert!(!m.matches(&json!({"metaFields": [{"name": "ticket", "value": ""}]})));
}
