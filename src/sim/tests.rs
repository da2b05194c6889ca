//! HTTP-level tests of the simulator: a started `Sim` on port 0, spoken to through a raw
//! `TcpStream` with hand-written requests so nothing in a client library can mask a wrong
//! byte. Every read has a timeout.

use super::*;
use std::io::Read as _;
use std::io::Write;

/// 2026-08-13T05:46:40Z (07:46 in Berlin), a Thursday.
const NOW: i64 = 1_786_600_000;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

fn start() -> Sim {
    Sim::start(Options {
        now: Some(NOW),
        ..Options::default()
    })
    .expect("sim starts")
}

/// Send one request and read the whole answer (`Connection: close`). Returns raw bytes.
fn raw(sim: &Sim, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", sim.port())).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(sim: &Sim, path: &str, token: &str) -> Resp {
    parse(&raw(
        sim,
        "GET",
        path,
        Some(&format!("Bearer {token}")),
        None,
    ))
}

#[test]
fn auth_failures_have_the_three_shapes() {
    let sim = start();
    // No credentials / malformed header → JSON 401.
    for auth in [
        None,
        Some("bearer abc"),
        Some("Basic Zm9vOmJhcg=="),
        Some("Bearer"),
    ] {
        let r = parse(&raw(&sim, "GET", "/api/ping", auth, None));
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.json(), json!({"code": 401, "message": "Unauthorized"}));
    }
    // Unknown token → empty body + WWW-Authenticate.
    let r = get(&sim, "/api/ping", "0123456789abcdef012345678");
    assert_eq!(r.status, 401);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(r#"Bearer error="invalid_token",error_description="Invalid credentials.""#)
    );
    // Disabled user.
    let disabled = sim.token("olga_disabled").expect("seeded");
    let r = get(&sim, "/api/ping", &disabled);
    assert_eq!(r.status, 401);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(r#"Bearer error="invalid_token",error_description="Account is disabled.""#)
    );
    // A good token works.
    let r = get(&sim, "/api/ping", &sim.demo_token());
    assert_eq!((r.status, r.json()), (200, json!({"message": "pong"})));
}

#[test]
fn routing_before_security_and_404_before_403() {
    let sim = start();
    let r = parse(&raw(&sim, "GET", "/api/nope", None, None));
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"code": 404, "message": "Not Found"}))
    );
    let r = parse(&raw(&sim, "GET", "/api/timesheets/abc", None, None));
    assert_eq!(r.status, 404);
    let r = parse(&raw(&sim, "GET", "/api/timesheets/1/stop", None, None));
    assert_eq!(
        (r.status, r.json()),
        (405, json!({"code": 405, "message": "Method Not Allowed"}))
    );
    let user = sim.token("john_user").expect("seeded");
    // Plain users may list customers but not GET one: unknown id → 404, known → 403.
    assert_eq!(get(&sim, "/api/customers/999", &user).status, 404);
    let r = get(&sim, "/api/customers/1", &user);
    assert_eq!(
        (r.status, r.json()),
        (403, json!({"code": 403, "message": "Forbidden"}))
    );
    assert_eq!(
        get(&sim, "/api/customers/1", &sim.admin_token()).status,
        200
    );
    // Users list is SUPER_ADMIN only.
    assert_eq!(
        get(
            &sim,
            "/api/users",
            &sim.token("anna_admin").expect("seeded")
        )
        .status,
        403
    );
    assert_eq!(get(&sim, "/api/users", &sim.admin_token()).status, 200);
}

#[test]
fn status_endpoints() {
    let sim = start();
    let t = sim.demo_token();
    assert_eq!(
        get(&sim, "/api/version", &t).json(),
        json!({"version": "2.65.0", "versionId": 26500, "copyright": "Kimai 2.65.0 by Kevin Papst."})
    );
    assert_eq!(
        get(&sim, "/api/plugins", &t).json()[0]["name"],
        "WorkContractBundle"
    );
    let colors = get(&sim, "/api/config/colors", &t).json();
    let keys: Vec<&String> = colors.as_object().expect("object").keys().collect();
    assert_eq!(keys.first().map(|s| s.as_str()), Some("Silver"));
    assert_eq!(keys.last().map(|s| s.as_str()), Some("Lavender"));
    assert_eq!(keys.len(), 27);
    let me = get(&sim, "/api/users/me", &t).json();
    assert_eq!(me["username"], data::DEMO_USER);
    assert_eq!(me["roles"], json!(["ROLE_TEAMLEAD"]));
    assert_eq!(me["memberships"][0]["teamlead"], true);
    assert_eq!(me["initials"], "TT");
    assert!(me["supervisor"]["username"].is_string());
}

#[test]
fn timesheet_pagination_headers() {
    let sim = start();
    let t = sim.demo_token();
    let all = get(&sim, "/api/timesheets?size=500", &t);
    let total: usize = all
        .header("X-Total-Count")
        .and_then(|v| v.parse().ok())
        .expect("header");
    assert!(total > 100, "{total}");
    let r = get(&sim, "/api/timesheets?page=2&size=7", &t);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Page"), Some("2"));
    assert_eq!(r.header("X-Per-Page"), Some("7"));
    assert_eq!(r.header("X-Total-Count"), Some(total.to_string().as_str()));
    assert_eq!(
        r.header("X-Total-Pages"),
        Some(total.div_ceil(7).to_string().as_str())
    );
    let items = r.json();
    assert_eq!(items.as_array().map(Vec::len), Some(7));
    // Collection shape: no fixedRate/hourlyRate; user is an id.
    assert!(items[0].get("fixedRate").is_none());
    assert!(items[0]["user"].is_u64());
    // Size cap and page past the end.
    assert_eq!(
        get(&sim, "/api/timesheets?size=100000", &t).header("X-Per-Page"),
        Some("500")
    );
    let last = total.div_ceil(7);
    assert_eq!(
        get(&sim, &format!("/api/timesheets?page={last}&size=7"), &t).status,
        200
    );
    let r = get(
        &sim,
        &format!("/api/timesheets?page={}&size=7", last + 1),
        &t,
    );
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"code": 404, "message": "Not Found"}))
    );
    // Empty result: one page, page 1 valid.
    let r = get(&sim, "/api/timesheets?begin=2030-01-01T00:00:00", &t);
    assert_eq!(
        (
            r.status,
            r.header("X-Total-Pages"),
            r.header("X-Total-Count")
        ),
        (200, Some("1"), Some("0"))
    );
}

#[test]
fn timesheet_filters_are_strict() {
    let sim = start();
    let t = sim.demo_token();
    for q in [
        "begin=2026-08-01",
        "begin=2026-08-01T10:00",
        "end=2026-08-01T10:00:00Z",
        "modified_after=2026-08-01%2010:00:00",
        "order=desc",
        "orderBy=duration",
        "exported=true",
        "size=-1",
        "user=me",
        "full=yes",
        "tags[]=doesnotexist",
    ] {
        let r = get(&sim, &format!("/api/timesheets?{q}"), &t);
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"code": 400, "message": "Bad Request"})),
            "{q}"
        );
    }
    // Unknown customer id → no filter applied.
    let all = get(&sim, "/api/timesheets", &t);
    let unk = get(&sim, "/api/timesheets?customer=999", &t);
    assert_eq!(all.header("X-Total-Count"), unk.header("X-Total-Count"));
    // The `end` filter compares the record begin; running record is found with active=1.
    let r = get(&sim, "/api/timesheets?active=1&full=true", &t).json();
    assert_eq!(r.as_array().map(Vec::len), Some(1));
    assert!(r[0]["end"].is_null());
    assert_eq!(r[0]["duration"], 0);
    assert_eq!(r[0]["rate"], json!(0.0));
    assert_eq!(r[0]["user"]["username"], data::DEMO_USER);
    assert!(r[0]["project"]["customer"].is_object());
    // A plain user's `user=all` is silently ignored; a teamlead sees team members but not a
    // stranger (tara's team member kai) → 403.
    let john = sim.token("john_user").expect("seeded");
    let own = get(&sim, "/api/timesheets?size=1", &john);
    let ignored = get(&sim, "/api/timesheets?size=1&user=all", &john);
    assert_eq!(own.header("X-Total-Count"), ignored.header("X-Total-Count"));
    assert_eq!(get(&sim, "/api/timesheets?user=5", &t).status, 200);
    assert_eq!(get(&sim, "/api/timesheets?user=7", &t).status, 403);
}

#[test]
fn date_filters_use_the_callers_timezone() {
    let sim = start();
    let t = sim.demo_token();
    let r = get(
        &sim,
        "/api/timesheets?begin=2026-08-03T00:00:00&end=2026-08-07T23:59:59&order=ASC",
        &t,
    )
    .json();
    let items = r.as_array().expect("array");
    assert!(!items.is_empty());
    for it in items {
        let b = it["begin"].as_str().expect("begin");
        assert!(
            b.ends_with("+0200") && ("2026-08-03T00:00:00"..="2026-08-07T23:59:59").contains(&b),
            "{b}"
        );
    }
}

#[test]
fn project_list_hides_finished_projects_by_default() {
    let sim = start();
    let t = sim.admin_token();
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let default = names(get(&sim, "/api/projects", &t).json());
    assert!(
        !default.contains(&"Data Migration".to_string()),
        "{default:?}"
    );
    let all = names(get(&sim, "/api/projects?ignoreDates=1", &t).json());
    assert!(all.contains(&"Data Migration".to_string()));
    assert!(
        !all.contains(&"Legacy Archive".to_string()),
        "hidden by default"
    );
}

#[test]
fn each_fault_kind_is_observable() {
    let sim = start();
    let t = sim.demo_token();
    let fault = |kind| Fault {
        kind,
        times: Some(1),
        path_prefix: Some("/api/version".into()),
    };

    sim.set_fault(fault(FaultKind::Status {
        status: 503,
        retry_after: Some("1".into()),
    }));
    let r = get(&sim, "/api/version", &t);
    assert_eq!((r.status, r.header("Retry-After")), (503, Some("1")));
    assert_eq!(
        r.json(),
        json!({"code": 503, "message": "Service Unavailable"})
    );
    assert_eq!(
        get(&sim, "/api/version", &t).status,
        200,
        "times=1 is used up"
    );

    sim.set_fault(fault(FaultKind::Garbage));
    let r = get(&sim, "/api/version", &t);
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    sim.set_fault(fault(FaultKind::Truncated));
    let r = get(&sim, "/api/version", &t);
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    sim.set_fault(fault(FaultKind::Html));
    let r = get(&sim, "/api/version", &t);
    assert!(
        r.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/html"))
    );

    sim.set_fault(fault(FaultKind::Delay(Duration::from_millis(300))));
    let started = std::time::Instant::now();
    assert_eq!(get(&sim, "/api/version", &t).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Prefix filter: other paths are untouched.
    sim.set_fault(Fault {
        kind: FaultKind::Garbage,
        times: None,
        path_prefix: Some("/api/version".into()),
    });
    assert_eq!(get(&sim, "/api/ping", &t).status, 200);
    sim.clear_fault();
    assert_eq!(get(&sim, "/api/version", &t).json()["versionId"], 26500);
}

#[test]
fn drop_connection_closes_a_keep_alive_socket_without_answering() {
    let sim = start();
    sim.set_fault(Fault {
        kind: FaultKind::DropConnection,
        times: Some(1),
        path_prefix: None,
    });
    let mut s = TcpStream::connect(("127.0.0.1", sim.port())).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    // Keep-alive (HTTP/1.1 default): only the fault can close this socket.
    s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 64];
    let started = std::time::Instant::now();
    match s.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "got bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
            "{e:?}"
        ),
    }
    assert!(started.elapsed() < READ_TIMEOUT, "socket was not closed");
    assert_eq!(sim.requests().last().map(|r| r.status), Some(0));
    // The next connection is served normally.
    assert_eq!(get(&sim, "/api/ping", &sim.demo_token()).status, 200);
}

#[test]
fn control_endpoint_drives_faults_and_lists_requests() {
    let sim = start();
    let r = parse(&raw(
        &sim,
        "POST",
        "/__sim/fault",
        None,
        Some(r#"{"kind":"status","status":502,"times":1}"#),
    ));
    assert_eq!(r.status, 200);
    assert_eq!(get(&sim, "/api/ping", &sim.demo_token()).status, 502);
    let r = parse(&raw(
        &sim,
        "POST",
        "/__sim/fault",
        None,
        Some(r#"{"kind":"bogus"}"#),
    ));
    assert_eq!(r.status, 400);
    let r = parse(&raw(
        &sim,
        "POST",
        "/__sim/fault",
        None,
        Some(r#"{"kind":"html"}"#),
    ));
    assert_eq!(r.status, 200);
    assert_eq!(
        parse(&raw(&sim, "DELETE", "/__sim/fault", None, None)).status,
        204
    );
    let ping = raw(
        &sim,
        "GET",
        "/api/ping?x=a%20b",
        Some(&format!("Bearer {}", sim.demo_token())),
        None,
    );
    assert_eq!(parse(&ping).status, 200);
    let list = parse(&raw(&sim, "GET", "/__sim/requests", None, None)).json();
    let last = list["requests"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .expect("recorded");
    assert_eq!(
        last,
        json!({"method": "GET", "path": "/api/ping", "query": [["x", "a b"]], "status": 200, "bytes": ping.len()})
    );
    assert_eq!(sim.requests().len(), 2, "control requests are not recorded");
}

#[test]
fn revoke_token_and_deterministic_tokens() {
    let sim = start();
    let other = Sim::start(Options {
        now: Some(NOW),
        ..Options::default()
    })
    .expect("starts");
    assert_eq!(sim.users(), other.users(), "same seed → same tokens");
    let third = Sim::start(Options {
        seed: 7,
        now: Some(NOW),
        ..Options::default()
    })
    .expect("starts");
    assert_ne!(sim.demo_token(), third.demo_token());
    let t = sim.token("john_user").expect("seeded");
    assert_eq!(get(&sim, "/api/ping", &t).status, 200);
    sim.revoke_token(&t);
    let r = get(&sim, "/api/ping", &t);
    assert_eq!(r.status, 401);
    assert!(r.body.is_empty());
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|h| h.contains("Invalid credentials."))
    );
    assert_eq!(sim.users().len(), 8);
    assert!(
        sim.users()
            .iter()
            .any(|u| u.role == "ROLE_SUPER_ADMIN" && u.token == sim.admin_token())
    );
}

#[test]
fn body_limit() {
    let sim = start();
    let big = "x".repeat(MAX_BODY_BYTES + 10);
    let r = parse(&raw(
        &sim,
        "POST",
        "/api/timesheets",
        Some(&format!("Bearer {}", sim.demo_token())),
        Some(&big),
    ));
    assert_eq!(r.status, 413);
    assert_eq!(sim.write_count(), 0);
}

#[test]
fn write_count_counts_writes_that_reach_a_handler() {
    let sim = start();
    let auth = format!("Bearer {}", sim.demo_token());
    // Rejected before a handler: no credentials, wrong method, unknown route.
    assert_eq!(
        parse(&raw(&sim, "POST", "/api/timesheets", None, Some("{}"))).status,
        401
    );
    assert_eq!(
        parse(&raw(
            &sim,
            "POST",
            "/api/timesheets/1/stop",
            Some(&auth),
            None
        ))
        .status,
        405
    );
    assert_eq!(
        parse(&raw(&sim, "DELETE", "/api/nothing", Some(&auth), None)).status,
        404
    );
    assert_eq!(sim.write_count(), 0);
    // A GET is never a write.
    assert_eq!(
        get(&sim, "/api/timesheets/active", &sim.demo_token()).status,
        200
    );
    assert_eq!(sim.write_count(), 0);
    let r = parse(&raw(
        &sim,
        "POST",
        "/api/timesheets",
        Some(&auth),
        Some(
            r#"{"project":1,"activity":1,"begin":"2026-08-12T08:00:00","end":"2026-08-12T09:00:00"}"#,
        ),
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["duration"], 3600);
    assert_eq!(sim.write_count(), 1);
    // A validation failure still reached the handler.
    assert_eq!(
        parse(&raw(
            &sim,
            "POST",
            "/api/timesheets",
            Some(&auth),
            Some("{}")
        ))
        .status,
        400
    );
    assert_eq!(sim.write_count(), 2);
    let id = r.json()["id"].as_u64().expect("id");
    assert_eq!(
        parse(&raw(
            &sim,
            "DELETE",
            &format!("/api/timesheets/{id}"),
            Some(&auth),
            None
        ))
        .status,
        204
    );
    assert_eq!(sim.write_count(), 3);
    assert_eq!(
        get(&sim, &format!("/api/timesheets/{id}"), &sim.demo_token()).status,
        404
    );
}

#[test]
fn stop_in_drop_releases_the_port() {
    let sim = start();
    let port = sim.port();
    // An idle keep-alive connection must not keep the simulator alive.
    let idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sim.stop();
    drop(idle);
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port still in use after stop"
    );
}

#[test]
fn legacy_auth_headers_fail_with_403() {
    let sim = start();
    let send = |user: &str, token: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", sim.port())).expect("connect");
        s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        let req = format!(
            "GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-AUTH-USER: {user}\r\nX-AUTH-TOKEN: {token}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse(&out)
    };
    let r = send("john_user", "secret123");
    assert_eq!(
        (r.status, r.json()),
        (403, json!({"message": "Invalid credentials"}))
    );
    let r = send("", "secret123");
    assert_eq!(
        r.json()["message"],
        "Authentication required, missing user header: X-AUTH-USER"
    );
}

#[test]
fn entity_sub_resources() {
    let sim = start();
    let admin = sim.admin_token();
    let auth = format!("Bearer {admin}");
    let r = get(&sim, "/api/customers/2/rates", &admin);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"id": 1, "user": null, "rate": 110.0, "internalRate": 70.0, "isFixed": false}])
    );
    assert_eq!(
        get(&sim, "/api/customers/2/rates", &sim.demo_token()).status,
        403
    );
    assert_eq!(
        get(&sim, "/api/customers/99/rates", &sim.demo_token()).status,
        404
    );
    let meta = |body: &str| {
        parse(&raw(
            &sim,
            "PATCH",
            "/api/projects/1/meta",
            Some(&auth),
            Some(body),
        ))
        .status
    };
    assert_eq!(meta(r#"{"name":"x","value":"y"}"#), 404);
    assert_eq!(meta(r#"{"name":"x"}"#), 400);
    let r = parse(&raw(
        &sim,
        "POST",
        "/api/activities/1/team",
        Some(&auth),
        None,
    ));
    assert_eq!(r.status, 410);
    assert_eq!(
        r.json()["message"],
        "This endpoint was removed, use \"POST /api/teams/\" instead."
    );
}

#[test]
fn the_request_log_counts_the_bytes_sent() {
    let sim = start();
    let token = format!("Bearer {}", sim.demo_token());
    let page = raw(&sim, "GET", "/api/timesheets?size=50", Some(&token), None);
    let head = raw(&sim, "HEAD", "/api/timesheets?size=50", Some(&token), None);
    let refused = raw(&sim, "GET", "/api/timesheets", Some("Bearer nope"), None);
    let log = sim.requests();
    let bytes: Vec<usize> = log.iter().map(|r| r.bytes).collect();
    // Status line, headers and body as they went out; HEAD without its body.
    assert_eq!(bytes, [page.len(), head.len(), refused.len()]);
    assert!(page.len() > head.len() + 5_000, "{bytes:?}");
    assert_eq!(sim.bytes_sent(), page.len() + head.len() + refused.len());
    sim.clear_requests();
    assert_eq!(sim.bytes_sent(), 0);
    // A dropped connection sent nothing.
    sim.set_fault(Fault {
        kind: FaultKind::DropConnection,
        times: Some(1),
        path_prefix: None,
    });
    let _ = raw(&sim, "GET", "/api/ping", Some(&token), None);
    assert_eq!(
        sim.requests().last().map(|r| (r.status, r.bytes)),
        Some((0, 0))
    );
}

#[test]
fn reads_run_on_a_snapshot_and_writes_do_not_change_it() {
    let sim = start();
    let token = sim.demo_token();
    // A read in flight holds a snapshot (here: the test's own clone of the Arc).
    let snapshot = lock(&sim.shared.state).clone();
    let before = snapshot.timesheets.len();
    let created = parse(&raw(
        &sim,
        "POST",
        "/api/timesheets",
        Some(&format!("Bearer {token}")),
        Some(
            r#"{"project": 2, "activity": 9, "begin": "2026-08-10T09:00:00", "end": "2026-08-10T10:00:00"}"#,
        ),
    ));
    assert_eq!(created.status, 200, "{:?}", created.json());
    // The write went to a copy: the snapshot is unchanged, and the next read sees the write.
    assert_eq!(snapshot.timesheets.len(), before);
    assert_eq!(lock(&sim.shared.state).timesheets.len(), before + 1);
    let id = created.json()["id"].as_u64().unwrap();
    assert_eq!(
        get(&sim, &format!("/api/timesheets/{id}"), &token).status,
        200
    );
    // Without a snapshot held, a write changes the data in place (no copy).
    drop(snapshot);
    let ptr = Arc::as_ptr(&lock(&sim.shared.state));
    let r = raw(
        &sim,
        "DELETE",
        &format!("/api/timesheets/{id}"),
        Some(&format!("Bearer {token}")),
        None,
    );
    assert_eq!(parse(&r).status, 204);
    assert_eq!(Arc::as_ptr(&lock(&sim.shared.state)), ptr);
    // Reads of many pages at once all answer (none waits for another's rendering).
    let pages: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=4)
            .map(|p| {
                let (sim, token) = (&sim, &token);
                s.spawn(move || {
                    get(
                        sim,
                        &format!("/api/timesheets?user=all&size=500&full=true&page={p}"),
                        token,
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(pages, [200, 200, 200, 200]);
}

#[test]
fn kimai_266_hides_rate_fields_without_the_permission() {
    let sim = Sim::start(Options {
        now: Some(NOW),
        rates_need_permission: true,
        ..Options::default()
    })
    .expect("sim starts");
    let john = sim.token("john_user").unwrap();
    let tony = sim.demo_token();
    let has_rate = |v: &Value| v.get("rate").is_some() || v.get("internalRate").is_some();
    for full in ["false", "true"] {
        let plain = get(&sim, &format!("/api/timesheets?size=5&full={full}"), &john).json();
        let rows = plain.as_array().unwrap();
        assert!(!rows.is_empty() && !rows.iter().any(has_rate), "{plain}");
        let lead = get(&sim, &format!("/api/timesheets?size=5&full={full}"), &tony).json();
        assert!(lead.as_array().unwrap().iter().all(has_rate), "{lead}");
    }
    let id = get(&sim, "/api/timesheets?size=1", &john).json()[0]["id"]
        .as_u64()
        .unwrap();
    let one = get(&sim, &format!("/api/timesheets/{id}"), &john).json();
    assert!(one.get("hourlyRate").is_none() && !has_rate(&one), "{one}");
    assert!(one.get("duration").is_some());
    // Kimai 2.65 (the default) sends them to everyone.
    let sim = start();
    let plain = get(
        &sim,
        "/api/timesheets?size=5",
        &sim.token("john_user").unwrap(),
    )
    .json();
    assert!(plain.as_array().unwrap().iter().all(has_rate), "{plain}");
}
