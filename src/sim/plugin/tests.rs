//! The WorkContract plugin through the whole API: routes off without the plugin, filters,
//! permissions, creates, transitions, holidays and month locks.

use serde_json::{Value, json};

use super::absences::parse_duration;
use crate::sim::api;
use crate::sim::data::{self, State};
use crate::sim::time;
use crate::sim::wire::Req;

/// 2026-08-13T05:46:40Z (07:46 in Berlin), a Thursday.
const NOW: i64 = 1_786_600_000;

fn state(plugin: bool) -> State {
    let mut st = data::seed(42, NOW, plugin);
    st.fixed_now = Some(NOW);
    st
}

fn token(st: &State, username: &str) -> String {
    st.users
        .iter()
        .find(|u| u.username == username)
        .unwrap()
        .token
        .clone()
}

fn call(st: &mut State, who: &str, method: &str, path_query: &str, body: &str) -> (u16, Value) {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let req = Req {
        method: method.into(),
        path: path.into(),
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        authorization: Some(format!("Bearer {}", token(st, who))),
        x_auth: None,
        body: body.as_bytes().to_vec(),
    };
    let out = api::handle(st, &req);
    let v = serde_json::from_slice(&out.reply.body).unwrap_or(Value::Null);
    (out.reply.status, v)
}

const ADMIN: &str = "anna_admin";
const LEAD: &str = "tony_teamlead";
const USER: &str = "john_user";

#[test]
fn without_the_plugin_every_route_is_unknown() {
    let mut st = state(false);
    for (m, p) in [
        ("GET", "/api/absences"),
        ("POST", "/api/absences"),
        ("GET", "/api/absences/types"),
        ("PATCH", "/api/absences/1/confirm"),
        ("GET", "/api/public-holidays"),
        ("DELETE", "/api/work-contract/lock/5/2026-08-01"),
    ] {
        assert_eq!(call(&mut st, ADMIN, m, p, "{}").0, 404, "{m} {p}");
    }
    let mut st = state(true);
    assert_eq!(call(&mut st, ADMIN, "GET", "/api/absences", "").0, 200);
}

#[test]
fn list_filters_permissions_and_dates() {
    let mut st = state(true);
    // Own absences, approved by default.
    let (s, v) = call(&mut st, USER, "GET", "/api/absences", "");
    assert_eq!(s, 200);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "approved" && a["user"]["id"] == 5)
    );
    assert_eq!(v.as_array().unwrap().len(), 6, "{v}");
    let (_, all) = call(&mut st, USER, "GET", "/api/absences?status=all", "");
    assert_eq!(all.as_array().unwrap().len(), 9);
    let (_, open) = call(&mut st, USER, "GET", "/api/absences?status=open", "");
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "new")
    );
    // Another user: contract_other_profile (ADMIN+).
    assert_eq!(
        call(&mut st, USER, "GET", "/api/absences?user=6", "").0,
        403
    );
    assert_eq!(
        call(&mut st, LEAD, "GET", "/api/absences?user=6", "").0,
        403
    );
    assert_eq!(
        call(&mut st, ADMIN, "GET", "/api/absences?user=6", "").0,
        200
    );
    assert_eq!(
        call(&mut st, ADMIN, "GET", "/api/absences?user=99", "").0,
        404
    );
    // Dates: full local date-time only; begin after end → 404.
    assert_eq!(
        call(&mut st, USER, "GET", "/api/absences?begin=2026-08-01", "").0,
        400
    );
    assert_eq!(
        call(
            &mut st,
            USER,
            "GET",
            "/api/absences?begin=2026-08-02T00:00:00&end=2026-08-01T23:59:59",
            ""
        )
        .0,
        404
    );
    let (s, v) = call(
        &mut st,
        ADMIN,
        "GET",
        "/api/absences?user=6&begin=2026-08-13T00:00:00&end=2026-08-13T23:59:59",
        "",
    );
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "maria is away today: {v}");
    assert_eq!(v[0]["date"], "2026-08-13T00:00:00+0200");
    assert_eq!(
        call(&mut st, USER, "GET", "/api/absences?status=bad", "").0,
        400
    );
    st.plugin.denied_reads.push(6);
    assert_eq!(
        call(&mut st, ADMIN, "GET", "/api/absences?user=6", "").0,
        403
    );
}

#[test]
fn create_validates_like_a_form_and_returns_one_absence_per_weekday() {
    let mut st = state(true);
    let (s, v) = call(
        &mut st,
        USER,
        "POST",
        "/api/absences",
        r#"{"comment":"Trip","date":"2026-10-09","end":"2026-10-13","type":"holiday"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let days: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["date"].as_str().unwrap())
        .collect();
    // Friday, (weekend skipped), Monday, Tuesday.
    assert_eq!(
        days,
        [
            "2026-10-09T00:00:00+0200",
            "2026-10-12T00:00:00+0200",
            "2026-10-13T00:00:00+0200"
        ]
    );
    assert_eq!(v[0]["status"], "new");
    // 31 days, a year boundary, missing fields, extra fields, a duration on a holiday.
    for (body, field) in [
        (
            r#"{"comment":"x","date":"2026-09-01","end":"2026-10-01","type":"holiday"}"#,
            "end",
        ),
        (
            r#"{"comment":"x","date":"2026-12-30","end":"2027-01-02","type":"holiday"}"#,
            "end",
        ),
        (r#"{"date":"2026-09-01","type":"holiday"}"#, "comment"),
        (
            r#"{"comment":"x","date":"2026-09-01","type":"bogus"}"#,
            "type",
        ),
        (
            r#"{"comment":"x","date":"01.09.2026","type":"holiday"}"#,
            "date",
        ),
        (
            r#"{"comment":"x","date":"2026-09-21","type":"holiday","duration":"2:00"}"#,
            "duration",
        ),
    ] {
        let (s, v) = call(&mut st, USER, "POST", "/api/absences", body);
        assert_eq!(s, 400, "{body}");
        assert!(
            v["errors"]["children"][field]["errors"].is_array(),
            "{body}: {v}"
        );
    }
    let (s, v) = call(
        &mut st,
        USER,
        "POST",
        "/api/absences",
        r#"{"comment":"x","date":"2026-09-21","type":"holiday","foo":1}"#,
    );
    assert_eq!(
        (s, v["errors"]["errors"][0].as_str()),
        (400, Some("This form should not contain extra fields."))
    );
    // Time off with a duration; for another user only with contract_other_profile.
    let body =
        r#"{"comment":"Dentist","date":"2026-09-22","type":"time_off","duration":"1:30","user":6}"#;
    assert_eq!(call(&mut st, USER, "POST", "/api/absences", body).0, 403);
    let (s, v) = call(&mut st, ADMIN, "POST", "/api/absences", body);
    assert_eq!(
        (s, &v[0]["duration"], &v[0]["user"]["id"]),
        (200, &json!(5400), &json!(6))
    );
}

#[test]
fn approval_workflow_and_delete() {
    let mut st = state(true);
    let (_, v) = call(
        &mut st,
        USER,
        "POST",
        "/api/absences",
        r#"{"comment":"x","date":"2026-10-05","type":"holiday"}"#,
    );
    let id = v[0]["id"].as_u64().unwrap();
    // Nobody approves their own; a plain user cannot approve.
    assert_eq!(
        call(
            &mut st,
            USER,
            "PATCH",
            &format!("/api/absences/{id}/confirm"),
            ""
        )
        .0,
        403
    );
    let (s, v) = call(
        &mut st,
        USER,
        "PATCH",
        &format!("/api/absences/{id}/request"),
        "",
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("open")));
    assert_eq!(
        call(
            &mut st,
            USER,
            "PATCH",
            &format!("/api/absences/{id}/request"),
            ""
        )
        .0,
        400
    );
    // john's supervisor is tony (the team lead).
    let (s, v) = call(
        &mut st,
        LEAD,
        "PATCH",
        &format!("/api/absences/{id}/confirm"),
        "",
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("approved")));
    assert_eq!(
        call(
            &mut st,
            LEAD,
            "PATCH",
            &format!("/api/absences/{id}/reject"),
            ""
        )
        .0,
        400
    );
    assert_eq!(
        call(&mut st, LEAD, "PATCH", "/api/absences/9999/reject", "").0,
        404
    );
    // ROLE_USER lacks delete_own_absence; admins delete anyone's.
    assert_eq!(
        call(&mut st, USER, "DELETE", &format!("/api/absences/{id}"), "").0,
        403
    );
    assert_eq!(
        call(&mut st, ADMIN, "DELETE", &format!("/api/absences/{id}"), "").0,
        204
    );
    assert_eq!(
        call(&mut st, ADMIN, "DELETE", &format!("/api/absences/{id}"), "").0,
        404
    );
}

#[test]
fn types_calendars_and_holidays() {
    let mut st = state(true);
    let (_, v) = call(&mut st, USER, "GET", "/api/absences/types", "");
    assert_eq!(v["holiday"], "Vacation");
    let (_, v) = call(
        &mut st,
        USER,
        "GET",
        "/api/absences/types?language=de_DE",
        "",
    );
    assert_eq!(v["sickness"], "Krankheit");
    assert_eq!(
        call(&mut st, USER, "GET", "/api/absences/types?language=xx", "").0,
        404
    );
    let (s, v) = call(
        &mut st,
        ADMIN,
        "GET",
        "/api/absences/calendar?user=6&begin=2026-08-13T00:00:00&end=2026-08-14T23:59:59",
        "",
    );
    assert_eq!(s, 200);
    assert_eq!(v[0]["title"], "Vacation: maria_user");
    assert_eq!(v[0]["allDay"], true);
    let (_, v) = call(
        &mut st,
        USER,
        "GET",
        "/api/public-holidays?begin=2026-12-01T00:00:00&end=2026-12-31T23:59:59",
        "",
    );
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Christmas Eve",
            "Christmas Day",
            "Second Day of Christmas",
            "New Year's Eve"
        ]
    );
    assert_eq!(v[0]["halfDay"], true);
    assert_eq!(v[0]["publicHolidayGroup"]["name"], "Germany (Berlin)");
    let (_, v) = call(
        &mut st,
        USER,
        "GET",
        "/api/public-holidays?group=2&begin=2026-07-01T00:00:00&end=2026-07-31T23:59:59",
        "",
    );
    assert_eq!(v[0]["name"], "Independence Day");
    assert_eq!(
        call(&mut st, USER, "GET", "/api/public-holidays?group=9", "").0,
        404
    );
    let (_, v) = call(
        &mut st,
        USER,
        "GET",
        "/api/public-holidays/calendar?begin=2026-10-03T00:00:00&end=2026-10-03T23:59:59",
        "",
    );
    assert_eq!(v[0]["title"], "German Unity Day");
    let hid = st.plugin.holidays[0].id;
    assert_eq!(
        call(
            &mut st,
            USER,
            "DELETE",
            &format!("/api/public-holidays/{hid}"),
            ""
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            &format!("/api/public-holidays/{hid}"),
            ""
        )
        .0,
        204
    );
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            &format!("/api/public-holidays/{hid}"),
            ""
        )
        .0,
        404
    );
}

#[test]
fn month_locks() {
    let mut st = state(true);
    let aug = time::days_from_civil(2026, 8, 1);
    let sep = time::days_from_civil(2026, 9, 1);
    assert_eq!(
        call(
            &mut st,
            USER,
            "DELETE",
            "/api/work-contract/lock/5/2026-08-01",
            ""
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            "/api/work-contract/lock/5/2026-08-15",
            ""
        )
        .0,
        204
    );
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            "/api/work-contract/lock/5/2026-09-01",
            ""
        )
        .0,
        204
    );
    assert_eq!(st.plugin.locked_months, vec![(5, aug), (5, sep)]);
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            "/api/work-contract/lock/99/2026-08-01",
            ""
        )
        .0,
        404
    );
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            "/api/work-contract/lock/5/2026-13-01",
            ""
        )
        .0,
        404
    );
    // Unlock: that month and the rest of the year.
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            "/api/work-contract/unlock/5/2026-08-01",
            ""
        )
        .0,
        204
    );
    assert!(st.plugin.locked_months.is_empty());
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "DELETE",
            "/api/work-contract/approval/5/2026-08-01",
            ""
        )
        .0,
        204
    );
    assert_eq!(
        call(
            &mut st,
            ADMIN,
            "GET",
            "/api/work-contract/lock/5/2026-08-01",
            ""
        )
        .0,
        405
    );
}

#[test]
fn duration_strings() {
    assert_eq!(parse_duration("1:30"), Some(5400));
    assert_eq!(parse_duration("1:30:15"), Some(5415));
    assert_eq!(parse_duration("1,5"), Some(5400));
    assert_eq!(parse_duration("2h30m"), Some(9000));
    assert_eq!(parse_duration("x"), None);
}
