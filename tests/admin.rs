//! The administration tools (`entity`, `rate`, `team_access`, `meta`, `comment`) through the
//! built binary over stdio against the simulated Kimai: every type × action with success and
//! failure, the traps of the issue as regression tests, and the reachability of every query
//! parameter the tools can send.

use crate::util::{Server, sim};
use kimai_mcp::sim::Sim;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn ok(s: &mut Server, tool: &str, args: Value) -> String {
    let (text, is_error) = s.call(tool, args.clone());
    assert!(!is_error, "{tool} {args} failed:\n{text}");
    text
}

fn fails(s: &mut Server, tool: &str, args: Value) -> String {
    let (text, is_error) = s.call(tool, args.clone());
    assert!(is_error, "{tool} {args} should fail:\n{text}");
    text
}

fn admin(sim: &Sim) -> Server {
    let mut s = Server::stdio(sim, &sim.admin_token());
    s.initialize("2025-11-25");
    s
}

fn as_user(sim: &Sim, username: &str) -> Server {
    let mut s = Server::stdio(sim, &sim.token(username).expect("seeded user"));
    s.initialize("2025-11-25");
    s
}

/// Requests the simulator saw since the last clear, as `METHOD path`.
fn seen(sim: &Sim) -> Vec<String> {
    sim.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn projects_every_action_and_the_date_and_budget_traps() {
    let sim = sim();
    let mut s = admin(&sim);

    // Trap: the default project list hides the project that ended yesterday (5, "Data
    // Migration"); ignore_dates=true sends ignoreDates=1 and shows it.
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "list"}),
    );
    assert!(!out.contains("Data Migration"), "{out}");
    assert!(out.contains("Note: Kimai lists only projects running today"));
    sim.clear_requests();
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "list", "filters": {"ignore_dates": true, "visible": 3, "order_by": "id", "status": ["paid"]}}),
    );
    assert!(
        out.contains("Data Migration") && out.contains("Legacy Archive"),
        "{out}"
    );
    assert!(out.contains("Note: ignored filter(s) that do not apply to type=project: status"));
    let q = &sim.requests()[0].query;
    assert!(q.contains(&("ignoreDates".into(), "1".into())), "{q:?}");
    let bad = fails(
        &mut s,
        "entity",
        json!({"type": "project", "action": "list", "filters": {"order_by": "username"}}),
    );
    assert!(bad.contains("id, name, customer"), "{bad}");

    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "get", "id": 1}),
    );
    assert!(
        out.contains("Name: Website Relaunch") && out.contains("Customer: Acme GmbH (ID 1)"),
        "{out}"
    );

    // Create: dates go out as YYYY-MM-DD, the time budget as H:MM:SS (7200 s, not 7200 h).
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "create", "data": {"name": "Audit", "customer": 2, "start": "2026-01-01", "end": "2026-12-31", "timeBudget": 7200, "budget": 5000}}),
    );
    assert!(out.starts_with("Created project"), "{out}");
    assert!(
        out.contains("Start: 2026-01-01") && out.contains("End: 2026-12-31"),
        "{out}"
    );
    assert!(out.contains("Time budget: 2:00:00 (2.00 h)"), "{out}");
    let id: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID: "))
        .and_then(|v| v.parse().ok())
        .expect("id line");
    // Update: the same date-only input must go out as a full date-time (Kimai's PATCH format).
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "update", "id": id, "data": {"end": "2027-06-30", "timeBudget": "1:30"}}),
    );
    assert!(
        out.contains("End: 2027-06-30") && out.contains("Time budget: 1:30:00"),
        "{out}"
    );

    // Trap: a digits-only duration is refused before any request.
    let writes = sim.write_count();
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "project", "action": "update", "id": id, "data": {"timeBudget": "7200"}}),
    );
    assert!(e.contains("ambiguous"), "{e}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "project", "action": "create", "data": {"name": "No customer"}}),
    );
    assert!(e.contains("data.customer"), "{e}");
    assert_eq!(
        sim.write_count(),
        writes,
        "no request for refused arguments"
    );

    // lockedUntil is a plain day, read like the other project dates: YYYY-MM-DD on create
    // (a date-time there is refused by Kimai's form) and a date-time on update.
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "create", "data": {"name": "Locked", "customer": 2, "lockedUntil": "2025-06-30"}}),
    );
    let locked: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID: "))
        .and_then(|v| v.parse().ok())
        .expect("id line");
    let stored = |sim: &Sim| {
        let r = crate::util::http::request(
            sim.url().trim_start_matches("http://"),
            "GET",
            &format!("/api/projects/{locked}"),
            &[("Authorization", &format!("Bearer {}", sim.admin_token()))],
            "",
        );
        r.json()["lockedUntil"].clone()
    };
    assert_eq!(stored(&sim), json!("2025-06-30"));
    ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "update", "id": locked, "data": {"lockedUntil": "2026-03-31"}}),
    );
    assert_eq!(stored(&sim), json!("2026-03-31"));
    ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "update", "id": locked, "data": {"lockedUntil": ""}}),
    );
    assert_eq!(stored(&sim), Value::Null);

    // Kimai's own validation: the message names the field.
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "project", "action": "create", "data": {"name": "X", "customer": 999}}),
    );
    assert!(
        e.contains("customer: The selected choice is invalid."),
        "{e}"
    );

    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "delete", "id": id}),
    );
    assert!(out.contains("Deleted project"), "{out}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "project", "action": "get", "id": id}),
    );
    assert!(e.contains("404"), "{e}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "batch_delete", "ids": [8, 999, 8]}),
    );
    assert!(
        out.contains("1 of 2 projects deleted") && out.contains("ID 999"),
        "{out}"
    );
}

#[test]
fn customers_activities_and_permissions() {
    let sim = sim();
    let mut s = admin(&sim);
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "customer", "action": "create", "data": {"name": "Solo"}}),
    );
    assert!(
        e.contains("data.country, data.currency, data.timezone"),
        "{e}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "customer", "action": "create", "data": {"name": "Stark Industries", "country": "US", "currency": "USD", "timezone": "America/New_York", "phone": "+1 555", "metaFields": [{"name": "crm_id", "value": "C-42"}]}}),
    );
    assert!(
        out.contains("Phone: +1 555") && out.contains("Custom fields: crm_id=C-42"),
        "{out}"
    );
    let id: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "customer", "action": "update", "id": id, "data": {"vatId": "US123", "visible": false}}),
    );
    assert!(
        out.contains("VAT ID: US123") && out.contains("Visible: no"),
        "{out}"
    );
    // The legacy address is only on Kimai's form for customers that already have one.
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "customer", "action": "update", "id": id, "data": {"address": "Main St"}}),
    );
    assert!(e.contains("extra fields"), "{e}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "customer", "action": "list", "filters": {"visible": 2, "term": "Stark"}}),
    );
    assert!(
        out.starts_with("1 customers:") && out.contains("Stark Industries"),
        "{out}"
    );
    ok(
        &mut s,
        "entity",
        json!({"type": "customer", "action": "delete", "id": id}),
    );

    // Activities: a global one, then a project activity; list by project includes globals.
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "activity", "action": "create", "data": {"name": "Pairing"}}),
    );
    assert!(out.contains("Project: (none: global activity"), "{out}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "activity", "action": "create", "data": {"name": "QA", "project": 1, "billable": false}}),
    );
    assert!(
        out.contains("Project: Website Relaunch (ID 1)") && out.contains("Billable: no"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "activity", "action": "list", "filters": {"project": 1, "order_by": "name"}}),
    );
    assert!(
        out.contains("Name: QA") && out.contains("Name: Pairing"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "activity", "action": "get", "id": 12}),
    );
    assert!(out.contains("Name: Migration Scripts"), "{out}");
    ok(
        &mut s,
        "entity",
        json!({"type": "activity", "action": "update", "id": 12, "data": {"comment": "scripts"}}),
    );
    ok(
        &mut s,
        "entity",
        json!({"type": "activity", "action": "delete", "id": 12}),
    );

    // A team lead may create activities but not customers; a plain user may read neither one.
    let mut lead = as_user(&sim, "tony_teamlead");
    ok(
        &mut lead,
        "entity",
        json!({"type": "activity", "action": "create", "data": {"name": "Lead task"}}),
    );
    let e = fails(
        &mut lead,
        "entity",
        json!({"type": "customer", "action": "create", "data": {"name": "N", "country": "DE", "currency": "EUR", "timezone": "Europe/Berlin"}}),
    );
    assert!(e.contains("403"), "{e}");
    // Budget fields are not on a team lead's form (only caller-supplied fields are sent).
    let e = fails(
        &mut lead,
        "entity",
        json!({"type": "activity", "action": "create", "data": {"name": "Budgeted", "budget": 10}}),
    );
    assert!(
        e.contains("extra fields") && e.contains("likely budget"),
        "{e}"
    );
    let mut user = as_user(&sim, "john_user");
    let e = fails(
        &mut user,
        "entity",
        json!({"type": "customer", "action": "get", "id": 1}),
    );
    assert!(e.contains("403"), "{e}");
    let e = fails(
        &mut user,
        "entity",
        json!({"type": "customer", "action": "delete", "id": 999}),
    );
    assert!(e.contains("404"), "404 before 403: {e}");
}

#[test]
fn users_teams_and_tags() {
    let sim = sim();
    let mut s = admin(&sim);
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "user", "action": "list", "filters": {"visible": 3, "order_by": "id"}}),
    );
    assert!(
        out.starts_with("8 users:") && out.contains("Username: olga_disabled"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "user", "action": "get", "id": 3}),
    );
    assert!(out.contains("Username: tony_teamlead"), "{out}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "create", "data": {"username": "neo", "email": "neo@example.com", "language": "en", "locale": "en", "timezone": "UTC"}}),
    );
    assert!(e.contains("plainPassword"), "{e}");
    // Omitted `enabled` would give a disabled user on POST /users: the tool sends true.
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "user", "action": "create", "data": {"username": "neo", "email": "neo@example.com", "language": "en", "locale": "en", "timezone": "UTC", "plainPassword": "secret-pass", "roles": ["ROLE_TEAMLEAD"]}}),
    );
    assert!(
        out.contains("Enabled: yes") && out.contains("created enabled"),
        "{out}"
    );
    assert!(out.contains("ROLE_TEAMLEAD"), "{out}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "user", "action": "update", "id": 7, "data": {"title": "Developer", "enabled": false}}),
    );
    assert!(out.contains("Title: Developer"), "{out}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "delete", "id": 5}),
    );
    assert!(e.contains("enabled\": false"), "{e}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "project", "action": "set_preferences", "id": 5}),
    );
    assert!(e.contains("only available for type=user"), "{e}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "user", "action": "set_preferences", "id": 6, "preferences": [{"name": "vacation_days", "value": "28"}, {"name": "hourly_rate", "value": "70"}]}),
    );
    assert!(
        out.contains("holidays=28") && out.contains("hourly_rate=70"),
        "{out}"
    );
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "set_preferences", "id": 6, "preferences": [{"name": "favourite_color", "value": "red"}]}),
    );
    assert!(e.contains("Work-contract preferences"), "{e}");
    let mut lead = as_user(&sim, "tony_teamlead");
    let e = fails(
        &mut lead,
        "entity",
        json!({"type": "user", "action": "list"}),
    );
    assert!(e.contains("403"), "{e}");
    let e = fails(
        &mut lead,
        "entity",
        json!({"type": "user", "action": "set_preferences", "id": 3, "preferences": [{"name": "holidays", "value": "30"}]}),
    );
    assert!(e.contains("403"), "{e}");

    // Teams.
    let out = ok(&mut s, "entity", json!({"type": "team", "action": "list"}));
    assert!(
        out.contains("Name: Design") && out.contains("Name: Development"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "team", "action": "get", "id": 1}),
    );
    assert!(
        out.contains("Members: Tony Teamlead (ID 3), team lead"),
        "{out}"
    );
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "team", "action": "create", "data": {"name": "Ops", "members": [{"user": 7}]}}),
    );
    assert!(e.contains("teamlead"), "{e}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "team", "action": "create", "data": {"name": "Ops", "members": [{"user": 7, "teamlead": true}, {"user": 6}]}}),
    );
    assert!(
        out.contains("Kai (ID 7), team lead; maria_user (ID 6)"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "team", "action": "update", "id": 3, "data": {"members": [{"user": 6, "teamlead": true}]}}),
    );
    assert!(
        out.contains("Members: maria_user (ID 6), team lead\n") && out.contains("replaced"),
        "{out}"
    );
    ok(
        &mut s,
        "entity",
        json!({"type": "team", "action": "delete", "id": 3}),
    );
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "team", "action": "delete", "id": 3}),
    );
    assert!(e.contains("404"), "{e}");

    // Tags: no single read, no update; omitted `visible` would hide a new tag.
    let out = ok(&mut s, "entity", json!({"type": "tag", "action": "list"}));
    assert!(
        out.contains("meeting") && out.contains("filters.name"),
        "{out}"
    );
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "tag", "action": "get", "id": 1}),
    );
    assert!(e.contains("action=list with filters.name"), "{e}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "tag", "action": "update", "id": 1, "data": {"name": "x"}}),
    );
    assert!(e.contains("delete the tag and create it again"), "{e}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "tag", "action": "create", "data": {"name": "review"}}),
    );
    assert!(out.contains("Visible: yes"), "{out}");
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "tag", "action": "list", "filters": {"name": "revi"}}),
    );
    assert!(
        out.starts_with("1 tags:") && out.contains("Name: review"),
        "{out}"
    );
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "tag", "action": "create", "data": {"name": "review"}}),
    );
    assert!(e.contains("This value is already used."), "{e}");
    let mut user = as_user(&sim, "john_user");
    let e = fails(
        &mut user,
        "entity",
        json!({"type": "tag", "action": "delete", "id": 1}),
    );
    assert!(e.contains("403"), "{e}");
    ok(
        &mut lead,
        "entity",
        json!({"type": "tag", "action": "delete", "id": 1}),
    );
}

#[test]
fn invoices_and_missing_routes_name_the_kimai_version() {
    let sim = sim();
    let mut s = admin(&sim);
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "list", "filters": {"size": 2, "page": 2}}),
    );
    assert!(
        out.contains("Page 2 of 2 (4 invoices in total, 2 per page)"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "list", "filters": {"status": ["paid"], "customers": [1], "begin": "2020-01-01", "end": "2099-12-31"}}),
    );
    assert!(
        out.starts_with("1 invoices:") && out.contains("Status: paid"),
        "{out}"
    );
    let out = ok(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "get", "id": 2}),
    );
    assert!(
        out.contains("Customer: Globex Corporation (ID 2)") && out.contains("Currency: USD"),
        "{out}"
    );
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "create", "data": {}}),
    );
    assert!(e.contains("cannot be created through the API"), "{e}");
    // The simulator is Kimai 2.65: PATCH (2.68) and DELETE (2.66) answer 405.
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "update", "id": 2, "data": {"status": "paid"}}),
    );
    assert!(e.contains("needs Kimai 2.68 or later"), "{e}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "delete", "id": 2}),
    );
    assert!(e.contains("needs Kimai 2.66 or later"), "{e}");
    let mut user = as_user(&sim, "john_user");
    let e = fails(
        &mut user,
        "entity",
        json!({"type": "invoice", "action": "list"}),
    );
    assert!(e.contains("403"), "{e}");
}

#[test]
fn holidays_and_month_locks_explain_what_is_unsupported() {
    let sim = sim();
    let mut s = admin(&sim);
    for (action, needle) in [
        ("get", "cannot read a single public holiday"),
        ("create", "cannot be created through the API"),
        ("update", "cannot be updated through the API"),
    ] {
        let mut a = json!({"type": "holiday", "action": action, "id": 1});
        if action != "get" {
            a["data"] = json!({});
        }
        let e = fails(&mut s, "entity", a);
        assert!(e.contains(needle), "{action}: {e}");
    }
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "lock_month", "id": 5}),
    );
    assert!(e.contains("'month' is required"), "{e}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "lock_month", "month": "2026-13-01", "id": 5}),
    );
    assert!(e.contains("YYYY-MM-DD"), "{e}");
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "unlock_month", "month": "2026-03-01"}),
    );
    assert!(e.contains("'user_scope'"), "{e}");

    // Kimai answers 404 alike for a missing plugin, a plugin version without month locks in
    // its API, and an unknown user: the message says which.
    let e = fails(
        &mut s,
        "entity",
        json!({"type": "user", "action": "lock_month", "month": "2026-08-01", "id": 9999}),
    );
    assert!(e.contains("404") && !e.contains("WorkContract"), "{e}");
    for (options, needle) in [
        (
            kimai_mcp::sim::Options {
                workcontract_month_locks: false,
                ..Default::default()
            },
            "offers no month locks through the API",
        ),
        (
            kimai_mcp::sim::Options {
                workcontract_plugin: false,
                ..Default::default()
            },
            "the WorkContract plugin is not installed",
        ),
    ] {
        let older = Sim::start(options).unwrap();
        let mut s = admin(&older);
        for action in ["lock_month", "unlock_month"] {
            let e = fails(
                &mut s,
                "entity",
                json!({"type": "user", "action": action, "month": "2026-08-01", "id": 5}),
            );
            assert!(e.contains(needle), "{action}: {e}");
        }
        // A batch reports each user's failure (the summary is not an error, as in 2.20.1).
        let out = ok(
            &mut s,
            "entity",
            json!({"type": "user", "action": "lock_month", "month": "2026-08-01", "ids": [5, 6]}),
        );
        assert!(
            out.contains("0 of 2 users locked") && out.matches(needle).count() == 2,
            "batch: {out}"
        );
    }
}

#[test]
fn rates_team_access_meta_and_comments() {
    let sim = sim();
    let mut s = admin(&sim);
    // Rates.
    let out = ok(
        &mut s,
        "rate",
        json!({"entity": "customer", "entity_id": 2, "action": "list"}),
    );
    assert!(
        out.contains(
            "User: all users (default rate)\nRate: 110.0\nInternal rate: 70.0\nType: hourly"
        ),
        "{out}"
    );
    let e = fails(
        &mut s,
        "rate",
        json!({"entity": "project", "entity_id": 3, "action": "add", "data": {"user": 5}}),
    );
    assert!(e.contains("data.rate"), "{e}");
    let out = ok(
        &mut s,
        "rate",
        json!({"entity": "project", "entity_id": 3, "action": "add", "data": {"user": 5, "rate": 99.5, "internal_rate": 50, "is_fixed": true}}),
    );
    assert!(
        out.contains("User: John Doe (ID 5)") && out.contains("Type: fixed amount per record"),
        "{out}"
    );
    let rate_id: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let e = fails(
        &mut s,
        "rate",
        json!({"entity": "project", "entity_id": 4, "action": "delete", "rate_id": rate_id}),
    );
    assert!(e.contains("404"), "a rate of another project: {e}");
    ok(
        &mut s,
        "rate",
        json!({"entity": "project", "entity_id": 3, "action": "delete", "rate_id": rate_id}),
    );
    let out = ok(
        &mut s,
        "rate",
        json!({"entity": "project", "entity_id": 3, "action": "list"}),
    );
    assert!(out.starts_with("No rates"), "{out}");
    let mut user = as_user(&sim, "john_user");
    let e = fails(
        &mut user,
        "rate",
        json!({"entity": "customer", "entity_id": 2, "action": "list"}),
    );
    assert!(e.contains("403"), "{e}");

    // Team access.
    let out = ok(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "add_member", "user_id": 7}),
    );
    assert!(out.contains("Kai (ID 7)"), "{out}");
    let e = fails(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "add_member", "user_id": 7}),
    );
    assert!(e.contains("already a member"), "{e}");
    ok(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "remove_member", "user_id": 7}),
    );
    let e = fails(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "remove_member", "user_id": 3}),
    );
    assert!(e.contains("team lead"), "{e}");
    let e = fails(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "grant", "target_id": 1}),
    );
    assert!(e.contains("'target' is required"), "{e}");
    let out = ok(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "grant", "target": "customer", "target_id": 1}),
    );
    assert!(out.contains("Customers: Acme GmbH (ID 1)"), "{out}");
    ok(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "revoke", "target": "customer", "target_id": 1}),
    );
    let e = fails(
        &mut s,
        "team_access",
        json!({"team_id": 1, "action": "revoke", "target": "activity", "target_id": 1}),
    );
    assert!(e.contains("no access"), "{e}");
    let mut lead = as_user(&sim, "tony_teamlead");
    let e = fails(
        &mut lead,
        "team_access",
        json!({"team_id": 1, "action": "grant", "target": "project", "target_id": 1}),
    );
    assert!(e.contains("403"), "{e}");

    // Custom fields.
    let out = ok(
        &mut s,
        "meta",
        json!({"entity": "project", "entity_id": 1, "action": "update", "data": [{"name": "cost_center", "value": 4711}]}),
    );
    assert!(
        out.contains("Updated 1 custom field(s) on project 1"),
        "{out}"
    );
    let got = ok(
        &mut s,
        "entity",
        json!({"type": "project", "action": "get", "id": 1}),
    );
    assert!(got.contains("Custom fields: cost_center=4711"), "{got}");
    let e = fails(
        &mut s,
        "meta",
        json!({"entity": "activity", "entity_id": 1, "action": "update", "data": [{"name": "category", "value": "dev"}, {"name": "nope", "value": "x"}]}),
    );
    assert!(e.contains("set 1 of 2") && e.contains("nope"), "{e}");
    ok(
        &mut s,
        "meta",
        json!({"entity": "invoice", "entity_id": 1, "action": "update", "data": [{"name": "po_reference", "value": "PO-9"}]}),
    );
    let got = ok(
        &mut s,
        "entity",
        json!({"type": "invoice", "action": "get", "id": 1}),
    );
    assert!(got.contains("po_reference=PO-9"), "{got}");
    let e = fails(
        &mut s,
        "meta",
        json!({"entity": "timesheet", "entity_id": 1, "action": "update", "data": [{"name": "ticket", "value": "1"}]}),
    );
    assert!(e.contains("404"), "{e}");
    let e = fails(
        &mut s,
        "meta",
        json!({"entity": "customer", "entity_id": 1, "action": "update"}),
    );
    assert!(e.contains("'data'"), "{e}");

    // Comments: pinned first; pin toggles and says the state it left.
    let out = ok(
        &mut s,
        "comment",
        json!({"entity": "project", "entity_id": 1, "action": "list"}),
    );
    assert!(
        out.starts_with("2 comment(s)") && out.contains("ID: 2 [PINNED]"),
        "{out}"
    );
    assert!(
        out.find("ID: 2").unwrap() < out.find("ID: 1").unwrap(),
        "{out}"
    );
    let out = ok(
        &mut s,
        "comment",
        json!({"entity": "customer", "entity_id": 1, "action": "create", "data": {"message": "Line one\nID: 99 forged"}}),
    );
    assert!(
        out.contains("Message: \"Line one\\nID: 99 forged\""),
        "{out}"
    );
    let out = ok(
        &mut s,
        "comment",
        json!({"entity": "project", "entity_id": 1, "action": "pin", "comment_id": 2}),
    );
    assert!(out.contains("is now unpinned"), "{out}");
    let out = ok(
        &mut s,
        "comment",
        json!({"entity": "project", "entity_id": 1, "action": "pin", "comment_id": 2}),
    );
    assert!(out.contains("is now pinned"), "{out}");
    let e = fails(
        &mut s,
        "comment",
        json!({"entity": "customer", "entity_id": 1, "action": "pin", "comment_id": 2}),
    );
    assert!(e.contains("403"), "comment of another entity: {e}");
    ok(
        &mut s,
        "comment",
        json!({"entity": "project", "entity_id": 1, "action": "delete", "comment_id": 1}),
    );
    let e = fails(
        &mut s,
        "comment",
        json!({"entity": "project", "entity_id": 1, "action": "delete", "comment_id": 1}),
    );
    assert!(e.contains("404"), "{e}");
    let e = fails(
        &mut user,
        "comment",
        json!({"entity": "project", "entity_id": 1, "action": "list"}),
    );
    assert!(e.contains("403"), "{e}");
}

#[test]
fn every_query_parameter_is_reachable_from_a_tool_argument() {
    let sim = sim();
    let mut s = admin(&sim);
    sim.clear_requests();
    let calls = [
        json!({"type": "project", "filters": {"customer": 1, "customers": [1], "visible": 3, "begin": "2020-01-01", "end": "2030-01-01", "global_activities": "1", "order": "ASC", "order_by": "name", "term": "e"}}),
        json!({"type": "project", "filters": {"ignore_dates": true}}),
        json!({"type": "activity", "filters": {"project": 1, "projects": [1], "visible": 1, "globals": "0", "term": "e", "order": "DESC", "order_by": "id"}}),
        json!({"type": "customer", "filters": {"visible": 1, "term": "a", "order": "ASC", "order_by": "id", "full": true}}),
        json!({"type": "user", "filters": {"visible": 1, "term": "a", "order": "ASC", "order_by": "email"}}),
        json!({"type": "invoice", "filters": {"begin": "2020-01-01", "end": "2030-01-01", "customers": [1], "status": ["new"], "page": 1, "size": 10}}),
        json!({"type": "holiday", "filters": {"group": 1, "begin": "2026-01-01", "end": "2026-12-31"}}),
        json!({"type": "tag", "filters": {"name": "e"}}),
    ];
    for mut c in calls {
        c["action"] = json!("list");
        // Holidays need the WorkContract plugin routes; the request is what matters here.
        let _ = s.call("entity", c);
    }
    let mut got: BTreeSet<String> = BTreeSet::new();
    for r in sim.requests() {
        for (k, _) in &r.query {
            got.insert(format!("{} {k}", r.path));
        }
    }
    let expected = [
        "/api/projects customer",
        "/api/projects customers[]",
        "/api/projects visible",
        "/api/projects start",
        "/api/projects end",
        "/api/projects ignoreDates",
        "/api/projects globalActivities",
        "/api/projects order",
        "/api/projects orderBy",
        "/api/projects term",
        "/api/activities project",
        "/api/activities projects[]",
        "/api/activities visible",
        "/api/activities globals",
        "/api/activities term",
        "/api/activities order",
        "/api/activities orderBy",
        "/api/customers visible",
        "/api/customers term",
        "/api/customers order",
        "/api/customers orderBy",
        "/api/customers full",
        "/api/users visible",
        "/api/users term",
        "/api/users order",
        "/api/users orderBy",
        "/api/invoices begin",
        "/api/invoices end",
        "/api/invoices customers[]",
        "/api/invoices status[]",
        "/api/invoices page",
        "/api/invoices size",
        "/api/public-holidays group",
        "/api/public-holidays begin",
        "/api/public-holidays end",
        "/api/tags/find name",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|e| !got.contains(*e))
        .collect();
    assert!(
        missing.is_empty(),
        "not reachable: {missing:?}\nseen: {got:?}"
    );
    // And nothing beyond them: a parameter the tools send must be in the table above.
    let extra: Vec<&String> = got
        .iter()
        .filter(|g| !expected.contains(&g.as_str()))
        .collect();
    assert!(extra.is_empty(), "unlisted parameters: {extra:?}");
    // Every list above was a plain GET (no writes).
    assert!(seen(&sim).iter().all(|r| r.starts_with("GET ")));
}

/// A canned Kimai that answers every request with one fixed reply: for the 200-with-error
/// envelope that some Kimai versions send on an invalid PATCH (the simulator follows the
/// contract and answers 400 there).
fn canned(
    status: u16,
    body: &'static str,
) -> (
    String,
    std::thread::JoinHandle<()>,
    std::sync::Arc<tiny_http::Server>,
) {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let srv = server.clone();
    let h = std::thread::spawn(move || {
        for req in srv.incoming_requests() {
            let resp = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(
                    "Content-Type: application/json"
                        .parse::<tiny_http::Header>()
                        .unwrap(),
                );
            let _ = req.respond(resp);
        }
    });
    (format!("http://127.0.0.1:{port}"), h, server)
}

#[test]
fn a_200_with_an_error_envelope_on_patch_is_an_error() {
    let (url, handle, server) = canned(
        200,
        r#"{"code":400,"message":"Validation Failed","errors":{"children":{"members":{"errors":["At least one team leader must be assigned to the team."]}}}}"#,
    );
    let mut s = Server::spawn(
        &["stdio"],
        &[("KIMAI_URL", &url), ("KIMAI_API_TOKEN", "canned-token")],
    );
    s.initialize("2025-11-25");
    let (text, is_error) = s.call(
        "entity",
        json!({"type": "team", "action": "update", "id": 1, "data": {"name": "Renamed"}}),
    );
    assert!(is_error, "{text}");
    assert!(text.contains("Validation Failed"), "{text}");
    assert!(text.contains("members: At least one team leader"), "{text}");
    assert!(!text.starts_with("Updated"), "{text}");
    server.unblock();
    drop(s);
    let _ = handle.join();
}
