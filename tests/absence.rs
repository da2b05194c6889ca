//! `absence` and `calendar` end to end: the binary over stdio against the simulated Kimai with
//! its WorkContract plugin (and without it), every action with success and failure, the
//! create split, partial-permission and outage fan-outs, progress notifications.

use crate::util::Server;
use kimai_mcp::sim::{Fault, FaultKind, Options, Sim};
use serde_json::{Value, json};

/// 2026-08-13T05:46:40Z (07:46 in Berlin), a Thursday. The seed places absences around it:
/// maria (6) is on vacation today and tomorrow, tara (4) was sick yesterday, kai (7) took two
/// hours off on Monday, john (5) was sick on 2026-08-03.
const NOW: i64 = 1_786_600_000;

fn sim_with(plugin: bool) -> Sim {
    Sim::start(Options {
        now: Some(NOW),
        workcontract_plugin: plugin,
        ..Options::default()
    })
    .expect("start the simulated Kimai")
}

fn server(sim: &Sim, username: &str) -> Server {
    let mut s = Server::stdio(sim, &sim.token(username).expect("seeded user"));
    s.initialize("2025-11-25");
    s
}

fn ok(s: &mut Server, tool: &str, args: Value) -> String {
    let (text, err) = s.call(tool, args.clone());
    assert!(!err, "{tool} {args} failed: {text}");
    text
}

fn fails(s: &mut Server, tool: &str, args: Value) -> String {
    let (text, err) = s.call(tool, args.clone());
    assert!(err, "{tool} {args} should fail: {text}");
    text
}

fn posts(sim: &Sim, path: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

#[test]
fn list_in_every_scope_with_progress_for_everyone() {
    let sim = sim_with(true);
    let mut john = server(&sim, "john_user");
    let own = ok(&mut john, "absence", json!({"action": "list"}));
    assert!(
        own.starts_with("Your absences (all dates, status all): 9"),
        "{own}"
    );
    assert!(
        own.contains("| 2026-08-03 | Sickness | John Doe (ID 5) | approved | comment: Flu"),
        "{own}"
    );
    let approved = ok(
        &mut john,
        "absence",
        json!({"action": "list", "filters": {"status": "approved", "begin": "2026-08-01", "end": "2026-08-31"}}),
    );
    assert!(
        approved.contains(": 1\n") && approved.contains("Flu"),
        "{approved}"
    );
    // A plain user may not read someone else's absences: Kimai's 403 is the error.
    let denied = fails(
        &mut john,
        "absence",
        json!({"action": "list", "filters": {"user_scope": "specific", "user": "6"}}),
    );
    assert!(denied.contains("403"), "{denied}");
    let bad = fails(
        &mut john,
        "absence",
        json!({"action": "list", "filters": {"begin": "2026-09-01", "end": "2026-08-01"}}),
    );
    assert!(
        bad.contains("filters.begin") && bad.contains("after"),
        "{bad}"
    );
    let bad = fails(
        &mut john,
        "absence",
        json!({"action": "list", "filters": {"user_scope": "specific"}}),
    );
    assert!(bad.contains("filters.user"), "{bad}");
    let bad = fails(&mut john, "absence", json!({"action": "list", "id": 3}));
    assert!(bad.contains("'id' not used by action 'list'"), "{bad}");

    let mut anna = server(&sim, "anna_admin");
    let (resp, notes) = anna.request_with_notes(
        "tools/call",
        json!({"name": "absence", "arguments": {"action": "list", "filters": {"user_scope": "all", "begin": "2026-08-01", "end": "2026-08-31"}}, "_meta": {"progressToken": "p1"}}),
    );
    let text = resp["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(resp["result"]["isError"], false, "{text}");
    for needle in [
        "Absences of all users you can see (2026-08-01 to 2026-08-31, status all): 6",
        "| 2026-08-13 | Vacation | maria_user (ID 6) | approved",
        "| 2026-08-10 | Time off | Kai (ID 7) | approved | 2.00 h",
        "| 2026-08-12 | Sickness | Tara Lead (ID 4) | approved",
        "| 2026-08-27 | Other | Tony Teamlead (ID 3) | open | 4.00 h",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
    let progress: Vec<&Value> = notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    // Six users discovered through the two teams: one notification per user read.
    assert_eq!(progress.len(), 6, "{notes:?}");
    assert!(
        progress
            .iter()
            .all(|n| n["params"]["total"] == 6 && n["params"]["progressToken"] == "p1")
    );
    // Specific user by username.
    let one = ok(
        &mut anna,
        "absence",
        json!({"action": "list", "filters": {"user_scope": "specific", "user": "john_user", "status": "open"}}),
    );
    assert!(
        one.starts_with("Absences of John Doe (ID 5)")
            && one.contains("Long weekend")
            && !one.contains("Flu"),
        "{one}"
    );
    let none = fails(
        &mut anna,
        "absence",
        json!({"action": "list", "filters": {"user_scope": "specific", "user": "nobody"}}),
    );
    assert!(none.contains("no user \"nobody\""), "{none}");
}

#[test]
fn statistics_and_types() {
    let sim = sim_with(true);
    let mut anna = server(&sim, "anna_admin");
    let stats = ok(
        &mut anna,
        "absence",
        json!({"action": "statistics", "filters": {"begin": "2026-01-01", "end": "2026-12-31"}, "breakdown_by_month": true}),
    );
    for needle in [
        "Absence statistics: absences of all users you can see, 2026-01-01 to 2026-12-31, status all",
        "Total: 18 entries, 15.5 days + 6.00 h",
        "By type:\n- Other: 1 entry, 0 days + 4.00 h",
        "- Sick child: 1 entry, 0.5 days",
        "- Vacation: 13 entries, 13 days",
        "By status:\n- approved: 13 entries, 11.5 days + 2.00 h\n- new: 3 entries, 3 days\n- open: 2 entries, 1 day + 4.00 h",
        "- Kai (ID 7): 2 entries, 1 day + 2.00 h (Time off 2.00 h, Vacation 1)",
        "By month:\n- 2026-05: 2 entries, 2 days",
    ] {
        assert!(stats.contains(needle), "{needle}\n{stats}");
    }
    // group_by=user puts the per-user breakdown first.
    let by_user = ok(
        &mut anna,
        "absence",
        json!({"action": "statistics", "filters": {"begin": "2026-01-01", "end": "2026-12-31"}, "group_by": "user"}),
    );
    assert!(
        by_user.find("By user:").unwrap() < by_user.find("By type:").unwrap(),
        "{by_user}"
    );
    assert!(!by_user.contains("By month:"));

    let types = ok(&mut anna, "absence", json!({"action": "types"}));
    assert!(
        types.contains("- holiday: Vacation")
            && types.contains("- unpaid_vacation: Unpaid vacation"),
        "{types}"
    );
    let de = ok(
        &mut anna,
        "absence",
        json!({"action": "types", "language": "de"}),
    );
    assert!(de.contains("- sickness: Krankheit"), "{de}");
    // An unknown language is a 404 too, but the plugin is there: not reported as missing.
    let xx = fails(
        &mut anna,
        "absence",
        json!({"action": "types", "language": "xx"}),
    );
    assert!(xx.contains("404") && !xx.contains("not installed"), "{xx}");
}

#[test]
fn create_splits_long_ranges_and_validates_first() {
    let sim = sim_with(true);
    let mut john = server(&sim, "john_user");
    let text = ok(
        &mut john,
        "absence",
        json!({"action": "create", "data": {"comment": "Sabbatical", "date": "2026-12-01", "end": "2027-01-20", "type": "unpaid_vacation"}}),
    );
    assert!(
        text.contains("Sent as 3 requests")
            && text.contains(
                "2026-12-01 to 2026-12-30; 2026-12-31 to 2026-12-31; 2027-01-01 to 2027-01-20"
            ),
        "{text}"
    );
    assert_eq!(posts(&sim, "/api/absences"), 3);
    // Weekdays only (the plugin's choice): 22 + 1 + 14.
    assert!(
        text.starts_with("Created 37 absence(s) (Unpaid vacation, 2026-12-01 to 2027-01-20)."),
        "{text}"
    );
    let half = ok(
        &mut john,
        "absence",
        json!({"action": "create", "data": {"comment": "Doctor", "date": "2026-10-05", "type": "other", "duration": "1:30"}}),
    );
    assert!(
        half.contains("| 2026-10-05 | Other | John Doe (ID 5) | new | 1.50 h | comment: Doctor"),
        "{half}"
    );
    sim.clear_requests();
    for (data, needle) in [
        (
            json!({"date": "2026-10-06", "type": "holiday"}),
            "data.comment",
        ),
        (
            json!({"comment": "x", "date": "06.10.2026", "type": "holiday"}),
            "data.date",
        ),
        (
            json!({"comment": "x", "date": "2026-10-06", "end": "2026-10-01", "type": "holiday"}),
            "data.end",
        ),
        (
            json!({"comment": "x", "date": "2026-10-06", "end": "2026-10-07", "type": "holiday", "halfDay": true}),
            "halfDay",
        ),
        (
            json!({"comment": "x", "date": "2026-10-06", "type": "holiday", "duration": "2h"}),
            "data.duration",
        ),
        (
            json!({"comment": "x", "date": "2026-10-06", "type": "other", "duration": "90"}),
            "ambiguous",
        ),
    ] {
        let e = fails(
            &mut john,
            "absence",
            json!({"action": "create", "data": data}),
        );
        assert!(e.contains(needle), "{needle}: {e}");
    }
    assert!(
        sim.requests().is_empty(),
        "nothing is sent for invalid arguments"
    );
    // Kimai's own refusal (a day already taken) comes back with its validation message.
    let e = fails(
        &mut john,
        "absence",
        json!({"action": "create", "data": {"comment": "again", "date": "2026-08-03", "type": "holiday"}}),
    );
    assert!(e.contains("400") && e.contains("already an absence"), "{e}");
}

#[test]
fn approval_workflow_single_and_batch() {
    let sim = sim_with(true);
    let mut john = server(&sim, "john_user");
    let created = ok(
        &mut john,
        "absence",
        json!({"action": "create", "data": {"comment": "Trip", "date": "2026-10-05", "end": "2026-10-07", "type": "holiday"}}),
    );
    let ids: Vec<i64> = created
        .lines()
        .filter_map(|l| l.strip_prefix("- ID "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{created}");
    let r = ok(
        &mut john,
        "absence",
        json!({"action": "request", "id": ids[0]}),
    );
    assert!(
        r.contains("Approval requested for absence") && r.contains("| open"),
        "{r}"
    );
    // Nobody approves their own absence.
    let own = fails(
        &mut john,
        "absence",
        json!({"action": "approve", "id": ids[0]}),
    );
    assert!(own.contains("403"), "{own}");
    let del = fails(
        &mut john,
        "absence",
        json!({"action": "delete", "id": ids[0]}),
    );
    assert!(del.contains("403"), "{del}");
    let missing = fails(&mut john, "absence", json!({"action": "delete"}));
    assert!(
        missing.contains("'id' is required for action 'delete'"),
        "{missing}"
    );

    // john's supervisor approves and rejects.
    let mut tony = server(&sim, "tony_teamlead");
    let a = ok(
        &mut tony,
        "absence",
        json!({"action": "approve", "id": ids[0]}),
    );
    assert!(
        a.contains(&format!("Absence {} approved.", ids[0])) && a.contains("| approved"),
        "{a}"
    );
    let again = fails(
        &mut tony,
        "absence",
        json!({"action": "reject", "id": ids[0]}),
    );
    assert!(
        again.contains("400") && again.contains("not waiting for approval"),
        "{again}"
    );
    let r = ok(
        &mut tony,
        "absence",
        json!({"action": "reject", "id": ids[1]}),
    );
    assert!(r.contains("| rejected"), "{r}");
    let unknown = fails(
        &mut tony,
        "absence",
        json!({"action": "approve", "id": 99999}),
    );
    assert!(
        unknown.contains("404") && !unknown.contains("not installed"),
        "{unknown}"
    );
    let batch = ok(
        &mut tony,
        "absence",
        json!({"action": "batch_approve", "ids": [ids[2], 99999, ids[2]]}),
    );
    assert!(
        batch.contains("1 of 2 absences approved.")
            && batch.contains(&format!("Succeeded: {}", ids[2]))
            && batch.contains("- ID 99999:"),
        "{batch}"
    );
    let empty = fails(
        &mut tony,
        "absence",
        json!({"action": "batch_reject", "ids": []}),
    );
    assert!(empty.contains("'ids'"), "{empty}");

    let mut anna = server(&sim, "anna_admin");
    let d = ok(
        &mut anna,
        "absence",
        json!({"action": "delete", "id": ids[0]}),
    );
    assert_eq!(d, format!("Absence {} deleted.", ids[0]));
    let b = ok(
        &mut anna,
        "absence",
        json!({"action": "batch_delete", "ids": [ids[1], ids[2]]}),
    );
    assert!(b.contains("2 of 2 absences deleted."), "{b}");
    let b = ok(
        &mut anna,
        "absence",
        json!({"action": "batch_reject", "ids": [ids[1]]}),
    );
    assert!(
        b.contains("0 of 1 absences rejected.") && b.contains("Failed: 1"),
        "{b}"
    );
}

#[test]
fn attendance_takes_the_day_from_date_or_data() {
    let sim = sim_with(true);
    let mut anna = server(&sim, "anna_admin");
    let text = ok(
        &mut anna,
        "absence",
        json!({"action": "attendance", "date": "2026-08-13"}),
    );
    assert!(
        text.starts_with("Attendance on Thursday, 2026-08-13 (5 user(s) checked)"),
        "{text}"
    );
    assert!(
        text.contains("Absent (1 of 5):\n- maria_user (ID 6): Vacation"),
        "{text}"
    );
    assert!(
        text.contains("Present (4 of 5):") && text.contains("- John Doe (ID 5)"),
        "{text}"
    );
    // The deactivated team member is neither present nor absent.
    assert!(
        !text.contains("olga") && text.contains("Not counted: 1 deactivated account(s)."),
        "{text}"
    );
    // The same day given inside data (the Python tool ignored it and reported today).
    let inner = ok(
        &mut anna,
        "absence",
        json!({"action": "attendance", "data": {"date": "2026-08-12"}}),
    );
    assert!(
        inner.contains("Wednesday, 2026-08-12") && inner.contains("- Tara Lead (ID 4): Sickness"),
        "{inner}"
    );
    let both = fails(
        &mut anna,
        "absence",
        json!({"action": "attendance", "date": "2026-08-12", "data": {"date": "2026-08-13"}}),
    );
    assert!(both.contains("disagree"), "{both}");
    let extra = fails(
        &mut anna,
        "absence",
        json!({"action": "attendance", "data": {"date": "2026-08-12", "comment": "x"}}),
    );
    assert!(extra.contains("data.comment"), "{extra}");
    let hours = ok(
        &mut anna,
        "absence",
        json!({"action": "attendance", "date": "2026-08-10"}),
    );
    assert!(hours.contains("- Kai (ID 7): Time off, 2.00 h"), "{hours}");
    // Self scope.
    let mut maria = server(&sim, "maria_user");
    let me = ok(
        &mut maria,
        "absence",
        json!({"action": "attendance", "date": "2026-08-14", "filters": {"user_scope": "self"}}),
    );
    assert!(
        me.contains("Absent (1 of 1):\n- maria_user (ID 6): Vacation"),
        "{me}"
    );
}

#[test]
fn a_user_whose_absences_answer_403_is_named_not_hidden() {
    let sim = sim_with(true);
    sim.deny_absence_reads(6);
    let mut anna = server(&sim, "anna_admin");
    let text = ok(
        &mut anna,
        "absence",
        json!({"action": "list", "filters": {"user_scope": "all", "begin": "2026-08-01", "end": "2026-08-31"}}),
    );
    assert!(
        text.contains(": 4\n") && !text.contains("| maria_user"),
        "{text}"
    );
    assert!(
        text.contains("Note: the absences of maria_user (ID 6) (403) could not be read"),
        "{text}"
    );
    let att = ok(
        &mut anna,
        "absence",
        json!({"action": "attendance", "date": "2026-08-13"}),
    );
    assert!(
        att.contains("(4 user(s) checked)")
            && att.contains("Not checked (1)")
            && att.contains("- maria_user (ID 6) (403)"),
        "{att}"
    );
}

#[test]
fn an_outage_during_fan_out_fails_the_whole_answer() {
    let sim = sim_with(true);
    let mut anna = server(&sim, "anna_admin");
    sim.set_fault(Fault {
        kind: FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        times: Some(1),
        path_prefix: Some("/api/absences".into()),
    });
    let text = fails(
        &mut anna,
        "absence",
        json!({"action": "statistics", "filters": {"begin": "2026-01-01", "end": "2026-12-31"}}),
    );
    assert!(text.contains("500"), "{text}");
    assert!(!text.contains("Total:"), "no partial report: {text}");
    // 401 while fanning out also fails it (the token revoked between discovery and reads).
    sim.set_fault(Fault {
        kind: FaultKind::Status {
            status: 401,
            retry_after: None,
        },
        times: Some(1),
        path_prefix: Some("/api/absences".into()),
    });
    let text = fails(
        &mut anna,
        "absence",
        json!({"action": "attendance", "date": "2026-08-13"}),
    );
    assert!(text.contains("401"), "{text}");
}

#[test]
fn a_missing_plugin_is_reported_as_such() {
    let sim = sim_with(false);
    let mut anna = server(&sim, "anna_admin");
    for args in [
        json!({"action": "list"}),
        json!({"action": "list", "filters": {"user_scope": "all"}}),
        json!({"action": "attendance", "date": "2026-08-13"}),
        json!({"action": "types"}),
        json!({"action": "approve", "id": 1}),
        json!({"action": "batch_delete", "ids": [1, 2]}),
        json!({"action": "create", "data": {"comment": "x", "date": "2026-10-05", "type": "holiday"}}),
    ] {
        let text = fails(&mut anna, "absence", args.clone());
        assert!(
            text.contains("WorkContract plugin is not installed"),
            "{args}: {text}"
        );
    }
    for t in ["absences", "holidays"] {
        let text = fails(&mut anna, "calendar", json!({"type": t}));
        assert!(
            text.contains("WorkContract plugin is not installed"),
            "{text}"
        );
    }
}

#[test]
fn calendar_feeds() {
    let sim = sim_with(true);
    let mut anna = server(&sim, "anna_admin");
    let text = ok(
        &mut anna,
        "calendar",
        json!({"type": "absences", "filters": {"user": 6, "begin": "2026-08-01", "end": "2026-08-14"}}),
    );
    assert!(
        text.starts_with("Absences of user 6 (2026-08-01 to 2026-08-14): 2 event(s)"),
        "{text}"
    );
    assert!(
        text.contains("- 2026-08-13 (all day): Vacation: maria_user | color #4CAF50"),
        "{text}"
    );
    // The last day is included (end of day, not midnight).
    let q = sim
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/api/absences/calendar")
        .unwrap();
    assert!(
        q.query
            .contains(&("end".into(), "2026-08-14T23:59:59".into())),
        "{q:?}"
    );
    let hol = ok(
        &mut anna,
        "calendar",
        json!({"type": "holidays", "filters": {"begin": "2026-12-24", "end": "2026-12-26"}}),
    );
    assert!(
        hol.contains("3 event(s)")
            && hol.contains("- 2026-12-24 (all day): Christmas Eve (half day)"),
        "{hol}"
    );
    let bad = fails(
        &mut anna,
        "calendar",
        json!({"type": "holidays", "filters": {"user": 6}}),
    );
    assert!(
        bad.contains("filters.user only applies to type=absences"),
        "{bad}"
    );
    let mut john = server(&sim, "john_user");
    let denied = fails(
        &mut john,
        "calendar",
        json!({"type": "absences", "filters": {"user": 6}}),
    );
    assert!(denied.contains("403"), "{denied}");
}

#[test]
fn analyze_project_team_by_id_and_name_in_every_scope() {
    let sim = sim_with(true);
    let mut anna = server(&sim, "anna_admin");
    let period = json!({"begin": "2026-06-01", "end": "2026-07-31"});
    let mut args = period.clone();
    args["project_id"] = json!(1);
    let by_id = ok(&mut anna, "analyze_project_team", args);
    assert!(by_id.starts_with("Project team analysis: Website Relaunch (ID 1)\nPeriod: 2026-06-01T00:00:00 to 2026-07-31T23:59:59; scope: all users\nTotal: "), "{by_id}");
    assert!(
        by_id.contains("By user:\n- ") && by_id.contains("By activity:\n- "),
        "{by_id}"
    );
    // Exact name (case-insensitive) gives the same report.
    let mut args = period.clone();
    args["project_name"] = json!("website relaunch");
    assert_eq!(ok(&mut anna, "analyze_project_team", args), by_id);
    // The three reads: all timesheet pages, users and activities.
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/api/users") && paths.iter().any(|p| p == "/api/activities")
    );
    // Ambiguous and unknown names.
    let mut args = period.clone();
    args["project_name"] = json!("o");
    let many = fails(&mut anna, "analyze_project_team", args);
    assert!(
        many.contains("projects:") && many.contains("send project_id"),
        "{many}"
    );
    let mut args = period.clone();
    args["project_name"] = json!("zzz-none");
    assert!(fails(&mut anna, "analyze_project_team", args).contains("no project matches"));
    // Scopes: one user, a team; wrong combinations fail before any request.
    let mut args = period.clone();
    args["project_id"] = json!(1);
    args["user_scope"] = json!("specific");
    args["user"] = json!("5");
    let one = ok(&mut anna, "analyze_project_team", args.clone());
    assert!(
        one.contains("scope: user 5")
            && one.contains("- John Doe (ID 5): ")
            && !one.contains("maria"),
        "{one}"
    );
    args["user_scope"] = json!("team");
    args.as_object_mut().unwrap().remove("user");
    args["team"] = json!(1);
    let team = ok(&mut anna, "analyze_project_team", args);
    assert!(
        team.contains("scope: team Development (4 members)"),
        "{team}"
    );
    for (bad, needle) in [
        (
            json!({"begin": "2026-06-01", "end": "2026-07-31"}),
            "project_id or project_name",
        ),
        (
            json!({"begin": "2026-08-01", "end": "2026-07-31", "project_id": 1}),
            "after end",
        ),
        (
            json!({"begin": "2026-06-01", "end": "2026-07-31", "project_id": 1, "user_scope": "team"}),
            "team (team id) is required",
        ),
        (
            json!({"begin": "2026-06-01T10:00:00Z", "end": "2026-07-31", "project_id": 1}),
            "offset",
        ),
    ] {
        assert!(
            fails(&mut anna, "analyze_project_team", bad.clone()).contains(needle),
            "{bad}"
        );
    }
}
