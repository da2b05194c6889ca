//! `timesheet` and `timer` end to end against the simulated Kimai: every action, the traps of
//! the Python project as regression tests, and the Kimai requests each list makes.

use crate::util::{Server, sim};
use kimai_mcp::sim::{Fault, FaultKind, Recorded, Sim};
use serde_json::{Value, json};
use std::time::Duration;

fn token(sim: &Sim, username: &str) -> String {
    sim.token(username)
        .unwrap_or_else(|| panic!("no seeded user {username}"))
}

fn ready(sim: &Sim, username: &str) -> Server {
    let mut s = Server::stdio(sim, &token(sim, username));
    s.initialize("2025-11-25");
    sim.clear_requests();
    s
}

fn timesheet_gets(sim: &Sim) -> Vec<Recorded> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path == "/api/timesheets" && r.method == "GET")
        .collect()
}

fn q<'a>(r: &'a Recorded, key: &str) -> Vec<&'a str> {
    r.query
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A record row (`#123 …`), not a markdown heading.
fn is_row(l: &str) -> bool {
    l.strip_prefix('#')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// The first `#id` of a list output.
fn first_id(text: &str) -> i64 {
    text.lines()
        .filter(|l| is_row(l))
        .find_map(|l| l.strip_prefix('#'))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record in {text}"))
}

#[test]
fn list_reads_one_page_with_names_and_totals() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"size": 5}}),
    );
    assert!(!err, "{text}");
    assert!(text.starts_with("Found "), "{text}");
    assert!(
        text.contains("for your records; showing 1-5 (page 1 of "),
        "{text}"
    );
    assert!(
        text.contains("More records: use filters.page = 2"),
        "{text}"
    );
    // Names, not bare ids (expanded shape).
    let rows: Vec<&str> = text.lines().filter(|l| is_row(l)).collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" / ") && !r.contains("project #")),
        "{text}"
    );
    // Exactly one Kimai request, with the page, size and full=true.
    let gets = timesheet_gets(&sim);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(q(&gets[0], "page"), ["1"]);
    assert_eq!(q(&gets[0], "size"), ["5"]);
    assert_eq!(q(&gets[0], "full"), ["true"]);
    assert!(q(&gets[0], "user").is_empty());
    assert_eq!(sim.requests().len(), 1);
}

#[test]
fn a_page_past_the_end_is_not_an_error() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"page": 9999, "size": 500}}),
    );
    assert!(!err, "{text}");
    assert!(text.contains("Page 9999 is past the last page"), "{text}");
}

#[test]
fn filter_datetimes_are_local_and_a_date_only_end_means_the_end_of_the_day() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (text, err) = s.call("timesheet", json!({"action": "list", "filters": {"begin": "2026-03-01", "end": "2026-03-31", "size": 1}}));
    assert!(!err, "{text}");
    let gets = timesheet_gets(&sim);
    assert_eq!(q(&gets[0], "begin"), ["2026-03-01T00:00:00"]);
    assert_eq!(q(&gets[0], "end"), ["2026-03-31T23:59:59"]);
    sim.clear_requests();
    for bad in ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00+02:00"] {
        let (text, err) = s.call(
            "timesheet",
            json!({"action": "list", "filters": {"begin": bad}}),
        );
        assert!(err, "{text}");
        assert!(text.contains("without an offset"), "{text}");
    }
    assert!(
        sim.requests().is_empty(),
        "an invalid filter must not reach Kimai"
    );
}

#[test]
fn statistics_read_every_page_in_few_requests_and_report() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (resp, notes) = s.request_with_notes(
        "tools/call",
        json!({"name": "timesheet", "arguments": {"action": "list", "filters": {"calculate_stats": true}}, "_meta": {"progressToken": "p-1"}}),
    );
    let text = resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(resp["result"]["isError"], json!(false), "{text}");
    assert!(text.contains("## Statistics ("), "{text}");
    assert!(
        text.contains("Total: ") && text.contains("By project:") && text.contains("By month:"),
        "{text}"
    );
    assert!(!text.lines().any(is_row), "summary shows no rows: {text}");
    let gets = timesheet_gets(&sim);
    let found: usize = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(found > 500, "the demo user has more than one page: {found}");
    assert_eq!(
        gets.len(),
        found.div_ceil(500),
        "one request per page of 500"
    );
    // Plain pages (no full=true); the names from one read of the projects and activities
    // (with hidden ones), and no user list for the caller's own records.
    assert!(
        gets.iter()
            .all(|g| q(g, "size") == ["500"] && q(g, "full").is_empty())
    );
    let mut others: Vec<(String, Vec<(String, String)>)> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path != "/api/timesheets")
        .map(|r| (r.path, r.query))
        .collect();
    others.sort();
    let visible = ("visible".to_string(), "3".to_string());
    assert_eq!(
        others,
        [
            ("/api/activities".to_string(), vec![visible.clone()]),
            ("/api/customers".to_string(), vec![visible.clone()]),
            (
                "/api/projects".to_string(),
                vec![visible, ("ignoreDates".into(), "1".into())]
            ),
        ],
        "one lookup each, besides the pages"
    );
    // Progress notifications arrived for the pages.
    let progress: Vec<&Value> = notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "no progress: {notes:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-1"
                && p["params"]["total"].as_u64() == Some(gets.len() as u64))
    );

    // detailed: report plus the requested page's rows; json: a JSON block.
    let (text, _) = s.call("timesheet", json!({"action": "list", "filters": {"calculate_stats": true, "stats_format": "detailed", "size": 3}}));
    assert_eq!(text.lines().filter(|l| is_row(l)).count(), 3, "{text}");
    let (text, _) = s.call("timesheet", json!({"action": "list", "filters": {"calculate_stats": true, "stats_format": "json", "begin": "2025-01-01", "end": "2026-12-31"}}));
    let json_part = text.split("## Statistics (JSON):\n").nth(1).unwrap();
    let end = json_part.find("\n}").map(|i| i + 2).unwrap();
    let v: Value = serde_json::from_str(&json_part[..end]).unwrap();
    assert!(v["total_hours"].as_f64().unwrap() > 0.0);
    assert!(
        v["years"].is_array(),
        "a period over a year breaks down by year"
    );
}

#[test]
fn a_cancelled_statistics_call_stops_fetching() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    sim.set_fault(Fault {
        kind: FaultKind::Delay(Duration::from_millis(300)),
        times: None,
        path_prefix: Some("/api/timesheets".into()),
    });
    s.send(&json!({"jsonrpc":"2.0","id":"stats","method":"tools/call","params":{"name":"timesheet","arguments":{"action":"list","filters":{"user_scope":"all","calculate_stats":true}}}}));
    std::thread::sleep(Duration::from_millis(150));
    s.send(
        &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"stats"}}),
    );
    std::thread::sleep(Duration::from_millis(1500));
    sim.clear_fault();
    let r = s.request("ping", json!({}));
    assert_eq!(
        r["result"],
        json!({}),
        "only the ping answer may arrive: {r}"
    );
    let pages = timesheet_gets(&sim).len();
    assert!(
        pages <= 5,
        "fetching went on after the cancellation: {pages} pages"
    );
}

#[test]
fn ignored_filters_are_pointed_out() {
    let sim = sim();
    // An unknown project id: Kimai applies no filter at all.
    let mut s = ready(&sim, "tony_teamlead");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"project": 999999, "size": 5}}),
    );
    assert!(!err, "{text}");
    assert!(
        text.contains("Warning: Kimai returned records of project")
            && text.contains("not filtered by project"),
        "{text}"
    );
    // A plain user asking for someone else's records gets their own.
    let users = sim.users();
    let tony = users
        .iter()
        .find(|u| u.username == "tony_teamlead")
        .unwrap()
        .id;
    let mut s = ready(&sim, "john_user");
    let (text, err) = s.call("timesheet", json!({"action": "list", "filters": {"user_scope": "specific", "user": tony.to_string(), "size": 5}}));
    assert!(!err, "{text}");
    assert!(
        text.contains(&format!(
            "Warning: Kimai returned records of other users than user {tony}"
        )),
        "{text}"
    );
    let (text, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "size": 5}}),
    );
    assert!(text.contains("only your own records came back"), "{text}");
}

#[test]
fn create_get_update_duplicate_export_and_delete() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    // Pick a project/activity pair the user really uses.
    let (recent, _) = s.call("timer", json!({"action": "recent", "size": 1}));
    let id = first_id(&recent);
    let r = s.request(
        "tools/call",
        json!({"name": "timesheet", "arguments": {"action": "get", "id": id}}),
    );
    let got = r["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let field = |name: &str| -> i64 {
        got.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: #")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {got}"))
    };
    let (project, activity) = (field("Project"), field("Activity"));
    assert!(got.contains("Status: ") && got.contains("Begin: "), "{got}");

    // Missing activity: refused before any request.
    sim.clear_requests();
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "create", "data": {"project": project}}),
    );
    assert!(
        err && text.contains("'data.activity' is required"),
        "{text}"
    );
    assert!(sim.requests().is_empty());

    let (text, err) = s.call(
        "timesheet",
        json!({"action": "create", "data": {"project": project, "activity": activity, "begin": "2026-01-13T09:00", "end": "2026-01-13T10:30", "description": "Review"}}),
    );
    assert!(!err, "{text}");
    assert!(text.starts_with("Created timesheet ID "), "{text}");
    assert!(
        text.contains("2026-01-13 09:00-10:30, 1.50 h") && text.contains("- Review"),
        "{text}"
    );
    let new_id: i64 = text["Created timesheet ID ".len()..]
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let (text, err) = s.call("timesheet", json!({"action": "update", "id": new_id, "data": {"description": "Code review", "end": "2026-01-13T11:00:00"}}));
    assert!(!err, "{text}");
    assert!(
        text.contains("Description: Code review") && text.contains("Duration: 2.00 h"),
        "{text}"
    );

    // Kimai's own validation message comes through.
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "update", "id": new_id, "data": {"end": "2026-01-12T08:00:00"}}),
    );
    assert!(err, "{text}");
    assert!(
        text.contains("400") && text.contains("end date must not be earlier"),
        "{text}"
    );

    // break is written as a duration; this Kimai has break time off, so Kimai refuses the field.
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "update", "id": new_id, "data": {"break": 900}}),
    );
    assert!(err && text.contains("extra fields"), "{text}");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "update", "id": new_id, "data": {"break": "15"}}),
    );
    assert!(err && text.contains("ambiguous"), "{text}");

    let (text, err) = s.call("timesheet", json!({"action": "duplicate", "id": new_id}));
    assert!(
        !err && text.starts_with(&format!(
            "Duplicated timesheet ID {new_id} as new timesheet ID "
        )),
        "{text}"
    );
    let dup: i64 = text
        .split("new timesheet ID ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // Custom fields: this Kimai defines none, so Kimai answers 404 for the name.
    let (text, err) = s.call("timesheet", json!({"action": "meta_update", "id": new_id, "meta": [{"name": "ticket", "value": "T-1"}]}));
    assert!(err && text.contains("404"), "{text}");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "meta_update", "id": new_id, "meta": [{"name": "ticket", "value": 5}]}),
    );
    assert!(err && text.contains("must be a string"), "{text}");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "export_toggle", "id": new_id}),
    );
    assert!(!err && text.contains("now marked as exported"), "{text}");
    // An exported record cannot be changed by a team lead (no edit_exported_timesheet).
    let (text, err) = s.call("timesheet", json!({"action": "delete", "id": new_id}));
    assert!(err && text.contains("403"), "{text}");

    let (text, err) = s.call("timesheet", json!({"action": "delete", "id": dup}));
    assert!(
        !err && text == format!("Deleted timesheet ID {dup}."),
        "{text}"
    );
    let (text, err) = s.call("timesheet", json!({"action": "get", "id": dup}));
    assert!(err && text.contains("404"), "{text}");

    let (text, err) = s.call("timesheet", json!({"action": "get"}));
    assert!(err && text.contains("'id' is required"), "{text}");
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "get", "id": 1, "filters": {}}),
    );
    assert!(
        err && text.contains("'filters' not used by action 'get'"),
        "{text}"
    );
}

#[test]
fn batch_actions_handle_repeats_once_and_never_unexport() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (list, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"exported": 0, "active": 0, "size": 3}}),
    );
    let ids: Vec<i64> = list
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{list}");
    // Export the first, then batch-export all three: the first stays exported.
    s.call(
        "timesheet",
        json!({"action": "export_toggle", "id": ids[0]}),
    );
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "batch_export", "ids": [ids[0], ids[1], ids[1], ids[2]]}),
    );
    assert!(!err, "{text}");
    assert!(
        text.contains("2 of 3 timesheets marked as exported"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Left unchanged (already exported): {}", ids[0])),
        "{text}"
    );
    for id in &ids {
        let (t, _) = s.call("timesheet", json!({"action": "get", "id": id}));
        assert!(t.contains("Exported: yes"), "{t}");
    }
    // Batch delete with a repeat and an unknown id: each id is tried once.
    let (list, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"exported": 0, "active": 0, "size": 2}}),
    );
    let del: Vec<i64> = list
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let writes_before = sim.write_count();
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "batch_delete", "ids": [del[0], del[0], del[1], 99999999]}),
    );
    assert!(!err, "{text}");
    assert!(text.contains("2 of 3 timesheets deleted"), "{text}");
    assert!(
        text.contains("- ID 99999999: ") && text.contains("404"),
        "{text}"
    );
    assert_eq!(sim.write_count() - writes_before, 3, "each id exactly once");
}

#[test]
fn user_guide_lists_the_users_a_team_lead_sees() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (text, err) = s.call("timesheet", json!({"action": "user_guide"}));
    assert!(!err, "{text}");
    assert!(
        text.contains("user_scope") && text.contains("## Users you can see"),
        "{text}"
    );
    // A team lead may list neither teams nor users: the members of the team come from the
    // records the team lead can see.
    assert!(
        text.contains("john_user") && text.contains("maria_user") && text.contains("tony_teamlead"),
        "{text}"
    );
    assert!(text.contains("may list neither teams nor users"), "{text}");
    // An admin lists teams.
    let mut admin = ready(&sim, "anna_admin");
    let (text, err) = admin.call("timesheet", json!({"action": "user_guide"}));
    assert!(!err && text.contains("## Users you can see"), "{text}");
    let (text, _) = s.call(
        "timesheet",
        json!({"action": "user_guide", "show_users": false}),
    );
    assert!(!text.contains("## Users you can see"));
}

#[test]
fn timers_start_stop_restart_active_recent_and_favorites() {
    let sim = sim();
    let mut s = ready(&sim, "tony_teamlead");
    let (active, _) = s.call("timer", json!({"action": "active"}));
    assert!(
        active.contains("running timer(s):") && active.contains("-now (running,"),
        "{active}"
    );
    let running = first_id(&active);
    let (recent, _) = s.call("timer", json!({"action": "recent", "size": 3}));
    assert!(recent.contains("recent record(s)"), "{recent}");
    assert!(
        recent
            .lines()
            .filter(|l| is_row(l))
            .all(|l| l.contains(" / ") && !l.contains("project #")),
        "{recent}"
    );
    let pick = first_id(&recent);
    let (text, _) = s.call("timesheet", json!({"action": "get", "id": pick}));
    let num = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: #")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (project, activity) = (num("Project"), num("Activity"));

    let calls = |sim: &kimai_mcp::sim::Sim| -> Vec<String> {
        sim.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    };
    sim.clear_requests();
    let (text, err) = s.call("timer", json!({"action": "start", "data": {"project": project, "activity": activity, "description": "Standup"}}));
    assert!(!err, "{text}");
    assert!(text.starts_with("Started timer ID "), "{text}");
    assert!(
        text.contains(&format!(
            "Kimai stopped the previously running timer ID {running} (only one may run at a time)"
        )),
        "{text}"
    );
    // The running records, Kimai's limit (read once per Kimai), the new record: no re-read.
    assert_eq!(
        calls(&sim),
        [
            "GET /api/timesheets/active",
            "GET /api/config/timesheet",
            "POST /api/timesheets"
        ]
    );
    let first = first_id(&text.lines().skip(1).collect::<Vec<_>>().join("\n"));
    let (active, _) = s.call("timer", json!({"action": "active"}));
    assert!(!active.contains(&format!("#{running} ")), "{active}");
    // With the limit known: two requests.
    sim.clear_requests();
    let (text, err) = s.call("timer", json!({"action": "start", "data": {"project": project, "activity": activity, "description": "Standup"}}));
    assert!(!err, "{text}");
    assert!(
        text.contains(&format!(
            "Kimai stopped the previously running timer ID {first} "
        )),
        "{text}"
    );
    assert_eq!(
        calls(&sim),
        ["GET /api/timesheets/active", "POST /api/timesheets"]
    );
    let started = first_id(&text.lines().skip(1).collect::<Vec<_>>().join("\n"));
    let (active, _) = s.call("timer", json!({"action": "active"}));
    assert!(
        active.contains(&format!("#{started} ")) && !active.contains(&format!("#{first} ")),
        "{active}"
    );
    let (text, err) = s.call("timer", json!({"action": "stop", "id": started}));
    assert!(
        !err && text.starts_with(&format!("Stopped timer ID {started}. Duration: ")),
        "{text}"
    );
    let (text, _) = s.call("timer", json!({"action": "active"}));
    assert_eq!(text, "No timer is running.");
    let (text, err) = s.call("timer", json!({"action": "restart", "id": started}));
    assert!(
        !err && text.starts_with("Restarted: new running timer ID "),
        "{text}"
    );
    let (text, err) = s.call(
        "timer",
        json!({"action": "start", "data": {"project": project}}),
    );
    assert!(err && text.contains("'data.activity'"), "{text}");
    let (text, err) = s.call(
        "timer",
        json!({"action": "recent", "begin": "2026-01-01T00:00:00Z"}),
    );
    assert!(err && text.contains("offset"), "{text}");

    // Favorites.
    let (text, _) = s.call("timer", json!({"action": "favorites"}));
    assert!(text.starts_with("No favorites yet"), "{text}");
    let (text, err) = s.call("timer", json!({"action": "favorite", "id": started}));
    assert!(!err && text.contains("added to your favorites"), "{text}");
    let (text, _) = s.call("timer", json!({"action": "favorites"}));
    assert!(
        text.starts_with("1 favorite(s):") && text.contains(&format!("#{started} ")),
        "{text}"
    );
    let (text, err) = s.call("timer", json!({"action": "unfavorite", "id": started}));
    assert!(!err && text.contains("removed"), "{text}");
    // Someone else's record cannot be a favorite.
    let mut john = ready(&sim, "john_user");
    let (text, err) = john.call("timer", json!({"action": "favorite", "id": started}));
    assert!(err && text.contains("403"), "{text}");
}

#[test]
fn custom_fields_can_be_set_and_filtered_exactly() {
    let sim = kimai_mcp::sim::Sim::start(kimai_mcp::sim::Options {
        timesheet_meta_fields: vec!["ticket".into()],
        ..kimai_mcp::sim::Options::default()
    })
    .unwrap();
    let mut s = ready(&sim, "tony_teamlead");
    let (list, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"exported": 0, "active": 0, "size": 2}}),
    );
    let ids: Vec<i64> = list
        .lines()
        .filter(|l| is_row(l))
        .map(|l| l[1..].split(' ').next().unwrap().parse().unwrap())
        .collect();
    let (text, err) = s.call("timesheet", json!({"action": "meta_update", "id": ids[0], "meta": [{"name": "Ticket", "value": "T-1"}]}));
    assert!(!err && text.contains("Updated 1 meta field(s)"), "{text}");
    s.call("timesheet", json!({"action": "meta_update", "id": ids[1], "meta": [{"name": "ticket", "value": "T-10"}]}));
    let (got, _) = s.call("timesheet", json!({"action": "get", "id": ids[0]}));
    assert!(got.contains("Meta fields: ticket=T-1"), "{got}");
    // Kimai matches `ticket:T-1` as a substring (T-10 too); the tool keeps exact matches only.
    sim.clear_requests();
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"meta": {"name": "ticket", "value": "t-1"}}}),
    );
    assert!(!err, "{text}");
    assert!(text.contains("1 of 2 records match exactly"), "{text}");
    assert!(
        text.contains(&format!("#{} ", ids[0])) && !text.contains(&format!("#{} ", ids[1])),
        "{text}"
    );
    let sent = timesheet_gets(&sim);
    assert!(
        sent.iter().all(|r| r
            .query
            .iter()
            .any(|(k, v)| k == "term" && v == "ticket:t-1")),
        "{sent:?}"
    );
    // Unknown field name: Kimai's 404.
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "meta_update", "id": ids[0], "meta": [{"name": "nope", "value": "x"}]}),
    );
    assert!(err && text.contains("404"), "{text}");
}

#[test]
fn the_lockdown_period_is_reported_with_kimais_message() {
    // Records that began more than 30 days ago are locked.
    let locked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 30 * 86_400;
    let sim = kimai_mcp::sim::Sim::start(kimai_mcp::sim::Options {
        lockdown_before: Some(locked),
        ..kimai_mcp::sim::Options::default()
    })
    .unwrap();
    let mut s = ready(&sim, "tony_teamlead");
    let (recent, _) = s.call("timer", json!({"action": "recent", "size": 1}));
    let (got, _) = s.call(
        "timesheet",
        json!({"action": "get", "id": first_id(&recent)}),
    );
    let num = |name: &str| -> i64 {
        got.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: #")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (project, activity) = (num("Project"), num("Activity"));
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "create", "data": {"project": project, "activity": activity, "begin": "2020-01-06T09:00:00", "end": "2020-01-06T10:00:00"}}),
    );
    assert!(
        err && text.contains("400") && text.contains("This period is locked"),
        "{text}"
    );
    // An old record cannot be changed: Kimai's voter says 403.
    let (old, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"end": "2025-01-31", "size": 1}}),
    );
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "update", "id": first_id(&old), "data": {"description": "late fix"}}),
    );
    assert!(err && text.contains("403"), "{text}");
}

/// The earliest first-of-month `begin` from which at most 5,000 records match for all users
/// (the benchmark's workload).
fn begin_for_5000(sim: &Sim) -> String {
    use kimai_mcp::kimai::{Client, Request, Settings, Tls, Token};
    let client = Client::new(Settings::new(sim.url(), Tls::Verify)).unwrap();
    let token = Token::new(sim.admin_token());
    for year in 2024..=2026 {
        for month in 1..=12 {
            let begin = format!("{year:04}-{month:02}-01");
            let r = client
                .call(
                    &token,
                    &Request::get("/timesheets")
                        .query("user", "all")
                        .query("size", 1)
                        .query("begin", format!("{begin}T00:00:00")),
                )
                .unwrap();
            if r.page.unwrap().total_count <= 5000 {
                return begin;
            }
        }
    }
    panic!("no begin with at most 5,000 records")
}

#[test]
fn statistics_and_team_analysis_stay_within_their_byte_budgets() {
    let sim = sim();
    let begin = begin_for_5000(&sim);
    let mut s = ready(&sim, "susan_super");
    sim.clear_requests();
    let (text, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "begin": begin, "calculate_stats": true}}),
    );
    assert!(!err, "{text}");
    let found: usize = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((4000..=5000).contains(&found), "{text}");
    let bytes = sim.bytes_sent();
    let requests = sim.requests().len();
    // The Python server 2.20.1 receives about 1.5 MB for the same call (plain pages plus its
    // project list); full=true pages were about 6.2 MB.
    assert!(
        bytes <= 1_500_000,
        "statistics over {found} records: {bytes} bytes"
    );
    assert_eq!(requests, found.div_ceil(500) + 4, "pages and four lookups");
    // The next call within the minute reads only the pages: the names are remembered.
    sim.clear_requests();
    let (again, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "begin": begin, "calculate_stats": true}}),
    );
    // The same answer from remembered names (a running record's hours may tick on between
    // the calls: compare everything but the figures' lines).
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split(':').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(names(&again), names(&text));
    assert_eq!(timesheet_gets(&sim).len(), sim.requests().len());
    assert!(sim.bytes_sent() < bytes);

    // Team analysis of the busiest project over the same period: plain pages and the two lists
    // (each at most what the Python server reads: the same pages, /users and /activities).
    let mut fresh = ready(&sim, "susan_super");
    let (team, err) = fresh.call(
        "analyze_project_team",
        json!({"project_id": 1, "begin": begin, "end": "2026-12-31"}),
    );
    assert!(!err, "{team}");
    let entries: usize = team
        .split(" h in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{team}"));
    let log = sim.requests();
    let pages: usize = log
        .iter()
        .filter(|r| r.path == "/api/timesheets")
        .map(|r| r.bytes)
        .sum();
    let lookups: Vec<&str> = log
        .iter()
        .filter(|r| r.path != "/api/timesheets" && r.path != "/api/projects/1")
        .map(|r| r.path.as_str())
        .collect();
    assert!(entries > 500, "{team}");
    assert!(
        log.iter()
            .filter(|r| r.path == "/api/timesheets")
            .all(|r| q(r, "full").is_empty())
    );
    assert!(
        pages <= entries * 320 + 2_000,
        "{pages} bytes of pages for {entries} records"
    );
    let mut lookups_sorted = lookups.clone();
    lookups_sorted.sort();
    assert_eq!(lookups_sorted, ["/api/activities", "/api/users"], "{log:?}");
    assert!(sim.bytes_sent() <= pages + 30_000, "{log:?}");
}

#[test]
fn money_is_shown_where_kimai_sends_rates() {
    let sim = sim();
    // A team lead sees rates: list rows carry them as the Python server shows them, and the
    // statistics add revenue per currency, customer, project and user.
    let mut s = ready(&sim, "tony_teamlead");
    let (list, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"size": 20, "active": 0}}),
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("  ") && l.contains("rate ")),
        "{list}"
    );
    // The team lead sees records of team members on projects of a team he is not in: those
    // projects are not in his project list, so they are named from one record each, read
    // again in the expanded shape (with the customer and its currency).
    sim.clear_requests();
    let (stats, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "begin": "2026-01-01", "calculate_stats": true}}),
    );
    assert!(!err, "{stats}");
    assert!(
        stats.contains(". Globex Corporation / Support 2026 (#3): ")
            && stats
                .lines()
                .any(|l| l.contains(". Globex Corporation (#2): USD "))
            && !stats.contains("shown by id")
            && !stats.contains("currency unknown"),
        "{stats}"
    );
    let probes: Vec<Recorded> = timesheet_gets(&sim)
        .into_iter()
        .filter(|r| q(r, "full") == ["true"])
        .collect();
    assert!(
        (1..=3).contains(&probes.iter().filter(|r| !q(r, "begin").is_empty()).count()),
        "one probe per unnamed project or activity: {probes:?}"
    );
    assert!(probes.len() <= 5, "and one per unnamed user: {probes:?}");
    // An administrator sees everything: revenue per currency, customer, project and user.
    let mut s = ready(&sim, "susan_super");
    let (stats, err) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "begin": "2026-01-01", "calculate_stats": true}}),
    );
    assert!(!err, "{stats}");
    assert!(
        stats.contains(
            "Revenue (Kimai's rate of each record, in the currency of the project's customer):\n- CHF: "
        ) && stats.contains("\n- EUR: ")
            && stats.contains("\n- GBP: ")
            && stats.contains("\n- USD: "),
        "{stats}"
    );
    assert!(
        stats.contains("Revenue by customer:\n1. ")
            && stats.contains("Revenue by project:\n1. ")
            && stats.contains("Revenue by user:\n1. "),
        "{stats}"
    );
    // Per customer, in the customer's currency (Globex bills in USD), split by billable.
    assert!(
        stats
            .lines()
            .any(|l| l.contains(". Globex Corporation (#2): USD ") && l.ends_with(" not billable")),
        "{stats}"
    );
    assert!(
        stats
            .lines()
            .any(|l| l.contains(". Internal (#5): EUR 0.00 billable, ")),
        "the internal customer bills nothing: {stats}"
    );
    assert!(
        !stats.contains("currency unknown") && !stats.contains("shown by id"),
        "{stats}"
    );
    // The JSON form carries the same.
    let (json_text, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "begin": "2026-01-01", "calculate_stats": true, "stats_format": "json"}}),
    );
    let v: Value = serde_json::from_str(
        json_text
            .split("## Statistics (JSON):\n")
            .nth(1)
            .and_then(|j| j.find("\n}").map(|e| &j[..e + 2]))
            .unwrap(),
    )
    .unwrap();
    let totals = v["revenue"]["totals"].as_array().unwrap();
    assert!(totals.iter().any(|t| t["currency"] == "EUR"), "{totals:?}");
    assert!(v["revenue"]["records_without_rate"] == 0, "{v}");

    // Kimai 2.66 hides rates from a plain user: no money in rows, and the statistics say why.
    let sim = Sim::start(kimai_mcp::sim::Options {
        rates_need_permission: true,
        ..kimai_mcp::sim::Options::default()
    })
    .unwrap();
    let mut john = ready(&sim, "john_user");
    let (list, _) = john.call(
        "timesheet",
        json!({"action": "list", "filters": {"size": 20}}),
    );
    assert!(!list.contains("rate "), "{list}");
    let (stats, _) = john.call(
        "timesheet",
        json!({"action": "list", "filters": {"calculate_stats": true}}),
    );
    assert!(
        stats.contains("Revenue: not shown: Kimai sent no rates to this token"),
        "{stats}"
    );
    assert!(!stats.contains("Revenue by"), "{stats}");
}
