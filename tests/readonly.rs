//! Limited access for an AI agent: `--read-only`, `--tools`/`--exclude-tools`, and the same per
//! user in users.json — `tools/list` shows only what is left, and a call outside it is refused
//! before any Kimai request. Every write action of every tool is tried against a read-only
//! server, and the simulator must see no request at all.

use crate::util::http::{SLUG_A, SLUG_B, Serve, call, init_body, post, session, tool_text};
use crate::util::{Server, sim};
use serde_json::{Value, json};

fn stdio(sim: &kimai_mcp::sim::Sim, extra: &[&str]) -> Server {
    let mut args = vec!["stdio"];
    args.extend_from_slice(extra);
    let mut s = Server::spawn(
        &args,
        &[
            ("KIMAI_URL", &sim.url()),
            ("KIMAI_API_TOKEN", &sim.token("tony_teamlead").unwrap()),
        ],
    );
    s.initialize("2025-11-25");
    s
}

fn tools(s: &mut Server) -> Vec<Value> {
    s.request("tools/list", json!({}))["result"]["tools"]
        .as_array()
        .unwrap()
        .clone()
}

fn actions(t: &Value) -> Vec<String> {
    t["inputSchema"]["properties"]["action"]["enum"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Compact JSON size of a tools array.
fn size(list: &[Value]) -> usize {
    Value::Array(list.to_vec()).to_string().len()
}

#[test]
fn a_read_only_server_offers_reads_and_refuses_every_write_unsent() {
    let sim = sim();
    let mut full = stdio(&sim, &[]);
    let all = tools(&mut full);
    let mut ro = stdio(&sim, &["--read-only"]);
    let listed = tools(&mut ro);
    let names: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(
        !names.contains(&"team_access") && !names.contains(&"meta"),
        "{names:?}"
    );
    for t in &listed {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{}", t["name"]);
    }
    let writes: Vec<(String, String)> = all
        .iter()
        .flat_map(|t| {
            let name = t["name"].as_str().unwrap().to_string();
            let offered = listed
                .iter()
                .find(|l| l["name"] == t["name"])
                .map(actions)
                .unwrap_or_default();
            actions(t)
                .into_iter()
                .filter(move |a| !offered.contains(a))
                .map(move |a| (name.clone(), a))
        })
        .collect();
    // Every tool that writes has its writes here: 40-odd actions.
    assert!(writes.len() > 30, "{writes:?}");
    sim.clear_requests();
    let before = sim.write_count();
    for (tool, action) in &writes {
        let r = ro.request(
            "tools/call",
            json!({"name": tool, "arguments": {"action": action, "type": "project", "id": 1, "ids": [1, 2], "data": {"name": "x"}}}),
        );
        if tool == "team_access" || tool == "meta" {
            // Nothing of these tools is left: they are unknown here.
            assert_eq!(r["error"]["code"], -32602, "{tool}.{action}: {r}");
            continue;
        }
        let text = r["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert_eq!(r["result"]["isError"], true, "{tool}.{action}: {r}");
        assert!(
            text.contains("read-only (--read-only)") && text.contains("was not sent"),
            "{tool}.{action}: {text}"
        );
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(sim.write_count(), before);
    // Reads still work.
    let (text, err) = ro.call("timesheet", json!({"action": "list"}));
    assert!(!err, "{text}");
    let (text, err) = ro.call("user_current", json!({}));
    assert!(!err && text.contains("tony_teamlead"), "{text}");

    // The sizes the README states.
    let three = {
        let mut s = stdio(&sim, &["--tools", "timesheet,timer,user_current"]);
        tools(&mut s)
    };
    assert_eq!(three.len(), 3);
    eprintln!(
        "tools array: full {} bytes, read-only {} bytes, three tools {} bytes",
        size(&all),
        size(&listed),
        size(&three)
    );
    assert!(size(&listed) < size(&all) && size(&three) < size(&listed));
}

#[test]
fn tool_selections_narrow_the_list_and_the_calls() {
    let sim = sim();
    let mut s = stdio(
        &sim,
        &[
            "--tools",
            "timesheet,timer.active,user_current",
            "--exclude-tools",
            "timesheet.delete",
        ],
    );
    let listed = tools(&mut s);
    let names: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["timesheet", "timer", "user_current"]);
    let timer = &listed[1];
    assert_eq!(actions(timer), ["active"]);
    assert_eq!(timer["annotations"]["readOnlyHint"], true);
    assert!(!actions(&listed[0]).contains(&"delete".to_string()));
    let (text, err) = s.call("timer", json!({"action": "active"}));
    assert!(!err, "{text}");
    sim.clear_requests();
    let (text, err) = s.call(
        "timer",
        json!({"action": "start", "data": {"project": 1, "activity": 1}}),
    );
    assert!(
        err && text.contains("timer action \"start\" is not available"),
        "{text}"
    );
    let (text, err) = s.call("timesheet", json!({"action": "delete", "id": 1}));
    assert!(err && text.contains("not available"), "{text}");
    let r = s.request(
        "tools/call",
        json!({"name": "entity", "arguments": {"action": "list", "type": "project"}}),
    );
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Available tools: timesheet, timer, user_current"),
        "{r}"
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());

    // A selection that names something that does not exist stops the server with the reason.
    let (code, _, err) = crate::util::run(
        &["stdio", "--tools", "timesheets"],
        &[("KIMAI_URL", "https://k.example"), ("KIMAI_API_TOKEN", "t")],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown tool") && err.contains("timesheet"),
        "{err}"
    );
    let (code, _, err) = crate::util::run(
        &["check", "--read-only"],
        &[("KIMAI_URL", "https://k.example"), ("KIMAI_API_TOKEN", "t")],
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_read_only_user_in_users_json_is_read_only_on_every_route() {
    let sim = sim();
    let body = json!({
        SLUG_A: {"kimai_url": sim.url(), "kimai_token": sim.token("tony_teamlead").unwrap(), "read_only": true},
        SLUG_B: {"kimai_url": sim.url(), "kimai_token": sim.token("john_user").unwrap(), "exclude_tools": ["entity"]},
    });
    let srv = Serve::start_with(&sim, &body, &["--rate-limit-rpm", "0"], "info");
    let a = format!("/mcp/{SLUG_A}");
    let sid = session(&srv, &a, &[]);
    let h = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = post(
        &srv,
        &a,
        &h,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    let list = r.json()["result"]["tools"].as_array().unwrap().clone();
    assert!(
        list.iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true)
    );
    sim.clear_requests();
    let r = post(
        &srv,
        &a,
        &h,
        &call(
            3,
            "timesheet",
            json!({"action": "create", "data": {"project": 1, "activity": 1, "begin": "2026-01-13T09:00:00"}}),
        ),
    );
    let text = tool_text(&r);
    assert!(
        text.contains("read-only (read_only in users.json)"),
        "{text}"
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    // A 2026-07-28 request of the same user is refused the same way, and its list is private.
    let modern = |id: i64, method: &str, params: Value| {
        let mut p = params;
        p["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
        post(
            &srv,
            &a,
            &[
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", method),
            ],
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": p}),
        )
    };
    let r = modern(4, "tools/list", json!({}));
    assert_eq!(r.json()["result"]["cacheScope"], "private", "{r:?}");
    // The other user keeps its writes and loses only `entity`.
    let b = format!("/mcp/{SLUG_B}");
    let r = post(&srv, &b, &[], &init_body());
    let sid = r.header("Mcp-Session-Id").unwrap().to_string();
    let h = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = post(
        &srv,
        &b,
        &h,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    let names: Vec<String> = r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 11);
    assert!(!names.contains(&"entity".to_string()) && names.contains(&"timer".to_string()));
    let r = post(&srv, &b, &h, &call(3, "timer", json!({"action": "active"})));
    assert!(!tool_text(&r).contains("Refused"), "{}", tool_text(&r));
}

#[test]
fn the_audit_log_lists_exactly_the_writes_and_follows_a_rotation() {
    let sim = sim();
    let dir = crate::util::TempDir::new();
    let log = dir.0.join("audit.jsonl");
    let log_s = log.to_str().unwrap().to_string();
    let mut s = stdio(
        &sim,
        &[
            "--audit-log",
            &log_s,
            "--exclude-tools",
            "timesheet.batch_delete",
        ],
    );
    // Reads are not audited.
    let (_, err) = s.call("timesheet", json!({"action": "list"}));
    assert!(!err);
    let (text, err) = s.call("timer", json!({"action": "start", "data": {"project": 1, "activity": 1, "description": "private words"}}));
    assert!(!err, "{text}");
    let started: i64 = text
        .split("ID ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap();
    let (_, err) = s.call("timesheet", json!({"action": "delete", "id": 999_999}));
    assert!(err);
    let (_, err) = s.call(
        "timesheet",
        json!({"action": "batch_delete", "ids": [1, 2]}),
    );
    assert!(err);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["tool"].as_str().unwrap().to_string(),
                l["action"].as_str().unwrap().to_string(),
                l["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("timer".into(), "start".into(), "ok".into()),
            ("timesheet".into(), "delete".into(), "error".into()),
            ("timesheet".into(), "batch_delete".into(), "refused".into()),
        ]
    );
    assert_eq!(lines[0]["created"], started);
    assert_eq!(lines[0]["user"], "stdio");
    assert_eq!(lines[0]["client"], "tests");
    assert_eq!(lines[1]["ids"], json!([999_999]));
    assert_eq!(lines[2]["ids"], json!([1, 2]));
    assert!(
        !text.contains("private words") && !text.contains(&sim.token("tony_teamlead").unwrap())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // serve: a rotation moves the file away; SIGHUP makes the server write to the path again.
    let slog = dir.0.join("serve-audit.jsonl");
    let srv = Serve::start(
        &sim,
        &[
            "--rate-limit-rpm",
            "0",
            "--audit-log",
            slog.to_str().unwrap(),
        ],
    );
    let a = format!("/mcp/{SLUG_A}");
    let sid = session(&srv, &a, &[]);
    let h = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let timer = |id: i64| {
        call(
            id,
            "timer",
            json!({"action": "start", "data": {"project": 1, "activity": 1}}),
        )
    };
    assert!(
        !post(&srv, &a, &h, &timer(2))
            .body
            .contains("\"isError\":true")
    );
    let rotated = dir.0.join("serve-audit.jsonl.1");
    std::fs::rename(&slog, &rotated).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &srv.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    while !srv.logs().contains("Reloaded") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{}",
            srv.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !post(&srv, &a, &h, &timer(3))
            .body
            .contains("\"isError\":true")
    );
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&slog).unwrap();
    assert_eq!(
        (old.lines().count(), new.lines().count()),
        (1, 1),
        "{old}\n{new}"
    );
    let v: Value = serde_json::from_str(new.trim()).unwrap();
    assert!(v["session"].as_str().is_some_and(|s| s.len() == 8), "{v}");
    assert!(!new.contains(SLUG_A) && !old.contains(SLUG_A));
}

#[test]
fn dry_runs_show_what_would_change_and_send_only_reads() {
    let sim = sim();
    let mut s = Server::spawn(
        &["stdio"],
        &[
            ("KIMAI_URL", &sim.url()),
            ("KIMAI_API_TOKEN", &sim.admin_token()),
        ],
    );
    s.initialize("2025-11-25");
    let (list, _) = s.call(
        "timesheet",
        json!({"action": "list", "filters": {"user_scope": "all", "size": 2}}),
    );
    let ids: Vec<i64> = list
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .take(2)
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    let (absences, _) = s.call(
        "absence",
        json!({"action": "list", "filters": {"user_scope": "all", "status": "all"}}),
    );
    let absence: i64 = absences
        .lines()
        .find_map(|l| l.trim_start_matches("- ").strip_prefix("ID "))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("{absences}"));
    sim.clear_requests();
    let before = sim.write_count();

    let (text, err) = s.call(
        "timesheet",
        json!({"action": "batch_delete", "ids": [ids[0], ids[1], 99_999_999], "dry_run": true}),
    );
    assert!(!err, "{text}");
    assert!(
        text.starts_with(
            "Dry run (nothing was changed): batch_delete would delete 2 of 3 timesheets ("
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("#{} ", ids[0])) && text.contains("ID 99999999: would fail"),
        "{text}"
    );
    let (text, _) = s.call(
        "timesheet",
        json!({"action": "batch_export", "ids": ids, "dry_run": true}),
    );
    assert!(
        text.contains("batch_export would mark as exported"),
        "{text}"
    );

    let (text, err) = s.call(
        "entity",
        json!({"type": "project", "action": "delete", "id": 1, "dry_run": true}),
    );
    assert!(!err, "{text}");
    assert!(
        text.contains("would delete 1 of 1 projects")
            && text.contains("project 1: Website Relaunch (Acme GmbH)")
            && text.contains("Kimai would also delete its "),
        "{text}"
    );
    let (text, _) = s.call(
        "entity",
        json!({"type": "activity", "action": "batch_delete", "ids": [1, 2], "dry_run": true}),
    );
    assert!(text.contains("would delete 2 of 2 activities"), "{text}");
    let (text, err) = s.call("entity", json!({"type": "user", "action": "lock_month", "month": "2026-08-01", "ids": [5, 6], "dry_run": true}));
    assert!(
        !err && text.contains("lock_month would lock 2026-08 for 2 user(s)")
            && text.contains("user 5: "),
        "{text}"
    );
    let (text, err) = s.call(
        "absence",
        json!({"action": "batch_approve", "ids": [absence, 88_888], "dry_run": true}),
    );
    assert!(!err, "{text}");
    assert!(
        text.contains("batch_approve would approve 1 of 2 absences")
            && text.contains(&format!("ID {absence}"))
            && text.contains("ID 88888: would fail"),
        "{text}"
    );

    // Nothing was written, and only reads went out.
    assert_eq!(sim.write_count(), before);
    let methods: std::collections::BTreeSet<String> =
        sim.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods.into_iter().collect::<Vec<_>>(), ["GET"]);
    // A read-only connection may preview nothing: a dry run is still the write action.
    let mut ro = stdio(&sim, &["--read-only"]);
    let (text, err) = ro.call(
        "timesheet",
        json!({"action": "batch_delete", "ids": ids, "dry_run": true}),
    );
    assert!(err && text.contains("read-only"), "{text}");
}
