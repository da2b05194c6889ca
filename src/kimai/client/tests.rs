//! Tests of the Kimai [`Client`](super::Client) against the scripted servers of
//! [`fake`](super::fake): requests, error shapes, retries, cancellation, construction, TLS and
//! secrets, and the classification of ureq and I/O errors.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::fake::*;
use super::*;

const TOKEN: &str = "0123456789abcdef01234567x";

fn token() -> Token {
    Token::new(TOKEN.to_string())
}

/// Fast settings for tests: short timeouts and backoff.
fn settings(url: &str) -> Settings {
    let mut s = Settings::new(url, Tls::Verify);
    s.connect_timeout = Duration::from_secs(2);
    s.timeout = Duration::from_secs(3);
    s.retry_backoff = [Duration::from_millis(20), Duration::from_millis(40)];
    s
}

fn client(url: &str) -> Client {
    Client::new(settings(url)).expect("test client settings are valid")
}

/// One call with these settings that must fail; its error.
fn call_err(s: Settings, req: &Request) -> Error {
    Client::new(s)
        .expect("test client settings are valid")
        .call(&token(), req)
        .expect_err("the call must fail")
}

// ----- requests -------------------------------------------------------------------------

#[test]
fn sends_bearer_headers_and_encoded_query() {
    let fake = Fake::new(vec![Reply::json(200, json!([]))]);
    let c = client(&format!("{}/", fake.url));
    let req = Request::get("/timesheets")
        .query("page", 2)
        .query_list("users", [1, 2])
        .query("term", "a b&c");
    let resp = c.call(&token(), &req).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, json!([]));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, "GET");
    assert_eq!(
        s.url,
        "/api/timesheets?page=2&users%5B%5D=1&users%5B%5D=2&term=a%20b%26c"
    );
    assert_eq!(
        s.header("Authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(s.header("Accept"), Some("application/json"));
    assert_eq!(s.header("User-Agent"), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("kimai-mcp/"));
    assert_eq!(s.header("Content-Type"), None);
}

#[test]
fn sends_json_body_on_writes() {
    let fake = Fake::new(vec![Reply::json(200, json!({"id": 7}))]);
    let c = client(&fake.url);
    let body = json!({"project": 1, "activity": 2, "description": "ü"});
    let resp = c
        .call(&token(), &Request::post("/timesheets", body.clone()))
        .unwrap();
    assert_eq!(resp.body, json!({"id": 7}));
    let s = &fake.seen()[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.header("Content-Type"), Some("application/json"));
    assert_eq!(serde_json::from_str::<Value>(&s.body).unwrap(), body);
    c.call(&token(), &Request::patch("/timesheets/7/stop", json!({})))
        .unwrap();
    assert_eq!(fake.seen()[1].method, "PATCH");
    assert_eq!(fake.seen()[1].url, "/api/timesheets/7/stop");
}

#[test]
fn pagination_headers() {
    let paged = Reply::json(200, json!([{"id": 1}]))
        .header("X-Page", "2")
        .header("X-Per-Page", "4")
        .header("X-Total-Count", "22")
        .header("X-Total-Pages", "6");
    let partial = Reply::json(200, json!([])).header("X-Page", "1");
    let fake = Fake::new(vec![paged, partial]);
    let c = client(&fake.url);
    let r = c.call(&token(), &Request::get("/timesheets")).unwrap();
    assert_eq!(
        r.page,
        Some(Page {
            page: 2,
            per_page: 4,
            total_count: 22,
            total_pages: 6
        })
    );
    let r = c.call(&token(), &Request::get("/customers")).unwrap();
    assert_eq!(r.page, None);
}

#[test]
fn no_content_is_null() {
    let fake = Fake::new(vec![Reply::raw(204, "application/json", "")]);
    let r = client(&fake.url)
        .call(&token(), &Request::delete("/tags/3"))
        .unwrap();
    assert_eq!((r.status, r.body), (204, Value::Null));
    assert_eq!(fake.seen()[0].method, "DELETE");
}

// ----- error shapes ---------------------------------------------------------------------

/// One call against a fake answering `reply`, without retries.
fn error_for(reply: Reply, req: Request) -> Error {
    let fake = Fake::new(vec![reply]);
    let mut s = settings(&fake.url);
    s.max_retries = 0;
    let e = Client::new(s).unwrap().call(&token(), &req).unwrap_err();
    assert_eq!(fake.seen().len(), 1);
    e
}

#[test]
fn form_validation_400() {
    let body = json!({"code": 400, "message": "Validation Failed", "errors": {
        "errors": ["This form should not contain extra fields."],
        "children": {"begin": {}, "project": {"errors": ["A project needs to be selected."]}, "tags": {}}}});
    let e = error_for(
        Reply::json(400, body),
        Request::post("/timesheets", json!({})),
    );
    let Error::Api {
        status,
        message,
        details,
        method,
        path,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        (*status, message.as_str(), *method, path.as_str()),
        (400, "Validation Failed", Method::Post, "/timesheets")
    );
    assert_eq!(
        details.as_ref().unwrap(),
        &json!({"errors": ["This form should not contain extra fields."],
                "children": {"project": {"errors": ["A project needs to be selected."]}}})
    );
    assert_eq!(
        e.to_string(),
        "kimai answered 400 to POST /api/timesheets: Validation Failed"
    );
}

#[test]
fn service_validation_400() {
    let body = json!({"code": "400", "message": "You have an active time record which cannot be stopped automatically.",
        "errors": {"children": {"end_date": {"errors": ["The end date must not be earlier than the start date."]}}}});
    let e = error_for(
        Reply::json(400, body),
        Request::patch("/timesheets/1/stop", json!({})),
    );
    let Error::Api {
        status,
        message,
        details,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 400);
    assert!(message.starts_with("You have an active time record"));
    assert_eq!(
        details.as_ref().unwrap()["children"]["end_date"]["errors"][0],
        "The end date must not be earlier than the start date."
    );
}

#[test]
fn unauthorized_shapes() {
    let empty = Reply::raw(401, "text/plain", "").header(
        "WWW-Authenticate",
        "Bearer error=\"invalid_token\",error_description=\"Invalid credentials.\"",
    );
    let e = error_for(empty, Request::get("/users/me"));
    assert!(
        matches!(&e, Error::Unauthorized { reason: Some(r) } if r == "Invalid credentials."),
        "{e:?}"
    );
    assert!(e.hint().unwrap().contains("token"));
    assert!(!format!("{e} {e:?}").contains(TOKEN));

    let json401 = Reply::json(401, json!({"code": 401, "message": "Unauthorized"}));
    let e = error_for(json401, Request::get("/users/me"));
    assert!(
        matches!(&e, Error::Unauthorized { reason: Some(r) } if r == "Unauthorized"),
        "{e:?}"
    );
}

#[test]
fn generic_error_shapes() {
    let cases = [
        (
            Reply::json(403, json!({"code": 403, "message": "Forbidden"})),
            403,
            "Forbidden",
        ),
        (
            Reply::json(403, json!({"message": "Invalid credentials"})),
            403,
            "Invalid credentials",
        ),
        (
            Reply::json(404, json!({"code": 404, "message": "Not Found"})),
            404,
            "Not Found",
        ),
        (
            Reply::json(405, json!({"code": 405, "message": "Method Not Allowed"})),
            405,
            "Method Not Allowed",
        ),
        (
            Reply::json(
                410,
                json!({"code": 410, "message": "This endpoint was removed, use \"POST /api/teams/\" instead."}),
            ),
            410,
            "This endpoint was removed, use \"POST /api/teams/\" instead.",
        ),
        (
            Reply::json(
                500,
                json!({"code": 500, "message": "Internal Server Error"}),
            ),
            500,
            "Internal Server Error",
        ),
        (
            Reply::raw(
                502,
                "text/html",
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            ),
            502,
            "Bad Gateway",
        ),
    ];
    for (reply, want_status, want_message) in cases {
        let e = error_for(reply, Request::get("/projects/1"));
        let Error::Api {
            status,
            message,
            details,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*status, message.as_str()), (want_status, want_message));
        assert_eq!(details, &None);
        assert!(!e.to_string().contains('<'), "{e}");
        assert_eq!(e.is_missing_route(), want_status == 405);
    }
    // Something other than Kimai: its words are not passed on, and the message says so.
    for reply in [
        Reply::json(
            404,
            json!({"error": "no such key", "message": "internal-secret-value"}),
        ),
        Reply::raw(404, "text/html", "<html>internal-secret-value</html>"),
        Reply::raw(400, "text/plain", "internal-secret-value"),
    ] {
        let e = error_for(reply, Request::get("/users/me"));
        let text = e.to_string();
        assert!(!text.contains("internal-secret-value"), "{text}");
        assert!(text.contains("does not look like Kimai's"), "{text}");
    }
    let e = error_for(
        Reply::json(403, json!({"code": 403, "message": "Forbidden"})),
        Request::get("/users"),
    );
    assert!(e.hint().unwrap().contains("permission"));
    let e = error_for(
        Reply::json(404, json!({"code": 404, "message": "Not Found"})),
        Request::get("/version"),
    );
    assert!(e.hint().unwrap().contains("does not point to a Kimai API"));
}

#[test]
fn error_envelope_in_a_200() {
    let body = json!({"code": 400, "message": "Validation Failed",
        "errors": {"children": {"end": {"errors": ["bad"]}, "begin": {}}}});
    let e = error_for(
        Reply::json(200, body),
        Request::patch("/timesheets/5", json!({"end": "x"})),
    );
    let Error::Api {
        status, details, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 400);
    assert_eq!(
        details.as_ref().unwrap(),
        &json!({"children": {"end": {"errors": ["bad"]}}})
    );
    let e = error_for(
        Reply::json(200, json!({"code": 401, "message": "Unauthorized"})),
        Request::get("/users/me"),
    );
    assert!(
        matches!(&e, Error::Unauthorized { reason: Some(r) } if r == "Unauthorized"),
        "{e:?}"
    );
    // A record that merely has a `code` field is not an envelope.
    let fake = Fake::new(vec![Reply::json(
        200,
        json!({"code": 7, "message": "hello"}),
    )]);
    assert!(
        client(&fake.url)
            .call(&token(), &Request::get("/x"))
            .is_ok()
    );
}

#[test]
fn redirect_is_reported_not_followed() {
    let reply = Reply::raw(301, "text/html", "moved")
        .header("Location", "https://kimai.example.com/api/version");
    let e = error_for(reply, Request::get("/version"));
    let Error::Api {
        status, message, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 301);
    assert!(
        message.contains("https://kimai.example.com/api/version"),
        "{message}"
    );
    assert!(e.hint().unwrap().contains("redirect"));
}

// ----- retries --------------------------------------------------------------------------

fn unavailable() -> Reply {
    Reply::json(503, json!({"code": 503, "message": "Service Unavailable"}))
}

#[test]
fn get_retried_on_503_then_succeeds() {
    let fake = Fake::new(vec![
        unavailable(),
        unavailable(),
        Reply::json(200, json!({"v": 1})),
    ]);
    let r = client(&fake.url)
        .call(&token(), &Request::get("/version"))
        .unwrap();
    assert_eq!(r.body, json!({"v": 1}));
    assert_eq!(fake.seen().len(), 3);
}

#[test]
fn get_gives_up_after_max_retries() {
    let fake = Fake::new(vec![Reply::raw(429, "text/plain", "slow down")]);
    let e = client(&fake.url)
        .call(&token(), &Request::get("/version"))
        .unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(fake.seen().len(), 3);
}

#[test]
fn get_not_retried_on_504_or_404() {
    for status in [504, 404, 500] {
        let fake = Fake::new(vec![Reply::raw(status, "text/plain", "")]);
        let e = client(&fake.url)
            .call(&token(), &Request::get("/version"))
            .unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert_eq!(fake.seen().len(), 1, "status {status}");
    }
}

#[test]
fn retry_after_respected() {
    let fake = Fake::new(vec![
        unavailable().header("Retry-After", "1"),
        Reply::json(200, json!({})),
    ]);
    let started = Instant::now();
    client(&fake.url)
        .call(&token(), &Request::get("/version"))
        .unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(fake.seen().len(), 2);
}

#[test]
fn large_retry_after_not_retried() {
    let fake = Fake::new(vec![
        unavailable().header("Retry-After", "120"),
        Reply::json(200, json!({})),
    ]);
    let started = Instant::now();
    let e = client(&fake.url)
        .call(&token(), &Request::get("/version"))
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(fake.seen().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn writes_never_retried() {
    for req in [
        Request::post("/timesheets", json!({})),
        Request::patch("/timesheets/1", json!({})),
        Request::delete("/timesheets/1"),
    ] {
        let fake = Fake::new(vec![unavailable(), Reply::json(200, json!({}))]);
        let e = client(&fake.url).call(&token(), &req).unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert_eq!(fake.seen().len(), 1, "{:?}", req.method);
    }
}

#[test]
fn dropped_connection_retried_for_get() {
    // First connection: the head promises 100 bytes, 10 arrive, then the socket closes.
    let raw = Raw::new(|n, mut s, _| {
        read_head(&mut s);
        if n == 0 {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\": 123");
        } else {
            let _ = s.write_all(OK_JSON);
        }
    });
    let r = client(&raw.url)
        .call(&token(), &Request::get("/timesheets/1"))
        .unwrap();
    assert_eq!(r.body, json!({"ok": true}));
    assert_eq!(raw.conns(), 2);
}

#[test]
fn dropped_connection_not_retried_for_post() {
    let raw = Raw::new(|n, mut s, _| {
        read_head(&mut s);
        if n > 0 {
            let _ = s.write_all(OK_JSON);
        }
        // n == 0: close without an answer.
    });
    let e = client(&raw.url)
        .call(
            &token(),
            &Request::post("/timesheets", json!({"project": 1})),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(raw.conns(), 1);
}

#[test]
fn refused_connection_not_retried() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = settings(&format!("http://127.0.0.1:{port}"));
    s.retry_backoff = [Duration::from_secs(2); 2];
    let started = Instant::now();
    let e = call_err(s, &Request::get("/version"));
    assert!(
        matches!(&e, Error::Connect(m) if m.contains("refused")),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "retried: {:?}",
        started.elapsed()
    );
    assert!(e.hint().is_some());
}

#[test]
fn silent_server_times_out() {
    let raw = Raw::new(|_, mut s, stop| {
        read_head(&mut s);
        let until = Instant::now() + Duration::from_secs(5);
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut s = settings(&raw.url);
    s.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = call_err(s, &Request::get("/version"));
    assert!(matches!(e, Error::Timeout { connect: false }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(raw.conns(), 1);
}

#[test]
fn unknown_host_is_dns_error() {
    let e = client("http://kimai-mcp-test.invalid")
        .call(&token(), &Request::get("/version"))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Dns(m) if m.contains("kimai-mcp-test.invalid")),
        "{e:?}"
    );
}

#[test]
fn garbage_and_truncated_bodies() {
    let fake = Fake::new(vec![
        Reply::raw(200, "application/json", "{\"id\": 1, \"name\":"),
        Reply::raw(200, "text/plain", "hello, world"),
        Reply::raw(
            200,
            "text/html; charset=UTF-8",
            "<!DOCTYPE html><html><body>Login</body></html>",
        ),
    ]);
    let c = client(&fake.url);
    for want in ["not JSON", "not JSON", NOT_KIMAI_API] {
        let e = c.call(&token(), &Request::get("/version")).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidBody { status: 200, detail } if detail.starts_with(want)),
            "{e:?}"
        );
    }
    let e = c.call(&token(), &Request::get("/version")).unwrap_err();
    assert!(
        e.to_string().contains("does not look like a Kimai API"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("Kimai URL"));
}

#[test]
fn non_http_garbage_is_io_error() {
    let raw = Raw::new(|_, mut s, _| {
        read_head(&mut s);
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
    });
    let mut s = settings(&raw.url);
    s.max_retries = 0;
    let e = call_err(s, &Request::get("/version"));
    assert!(matches!(e, Error::Io(_)), "{e:?}");
}

#[test]
fn body_cap() {
    let big = format!("[{}]", vec!["1"; 1000].join(","));
    let fake = Fake::new(vec![Reply::raw(200, "application/json", &big)]);
    let mut s = settings(&fake.url);
    s.max_body_bytes = 1000;
    let e = call_err(s, &Request::get("/x"));
    assert!(matches!(e, Error::BodyTooLarge { limit: 1000 }), "{e:?}");
    let mut s = settings(&fake.url);
    s.max_body_bytes = big.len();
    assert!(
        Client::new(s)
            .unwrap()
            .call(&token(), &Request::get("/x"))
            .is_ok()
    );
}

#[test]
fn bodies_and_heads_larger_than_the_buffers() {
    // A 300 KiB request body and a 600 KiB response body stream through the 16/32 KiB
    // buffers; a 20 KiB response head fits (the limit is 24 KiB).
    let description = "x".repeat(300 * 1024);
    let rows: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": i, "n": "abcdefghij"}))
        .collect();
    let fake = Fake::new(vec![
        Reply::json(200, Value::Array(rows.clone())).header("X-Padding", &"p".repeat(20 * 1024)),
    ]);
    let body = json!({"description": description});
    let resp = client(&fake.url)
        .call(&token(), &Request::post("/timesheets", body.clone()))
        .unwrap();
    assert_eq!(resp.body, Value::Array(rows));
    let seen = fake.seen();
    assert_eq!(serde_json::from_str::<Value>(&seen[0].body).unwrap(), body);

    // A 40 KiB head is refused with a message that says so, not read without bound.
    let raw = Raw::new(|_, mut s, _| {
        read_head(&mut s);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: {}\r\nContent-Length: 2\r\n\r\n{{}}",
            "p".repeat(40 * 1024)
        );
        let _ = s.write_all(head.as_bytes());
    });
    let mut s = settings(&raw.url);
    s.max_retries = 0;
    let e = call_err(s, &Request::get("/version"));
    assert!(
        matches!(&e, Error::Io(m) if m.contains("too large")),
        "{e:?}"
    );
}

// ----- cancellation ---------------------------------------------------------------------

#[test]
fn cancelled_before_the_call_sends_nothing() {
    let fake = Fake::new(vec![Reply::json(200, json!({}))]);
    let e = client(&fake.url)
        .call_cancellable(&token(), &Request::get("/version"), &|| true)
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(fake.seen().len(), 0);
}

#[test]
fn cancelled_while_waiting_for_a_retry() {
    let fake = Fake::new(vec![unavailable()]);
    let mut s = settings(&fake.url);
    s.retry_backoff = [Duration::from_secs(5); 2];
    let c = Client::new(s).unwrap();
    let checks = AtomicUsize::new(0);
    let cancel = || checks.fetch_add(1, Ordering::SeqCst) >= 3;
    let started = Instant::now();
    let e = c
        .call_cancellable(&token(), &Request::get("/version"), &cancel)
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.seen().len(), 1);
}

// ----- construction, TLS, secrets -------------------------------------------------------

#[test]
fn bad_settings_refused() {
    for url in ["kimai.example.com", "ftp://x", "https://"] {
        assert!(
            matches!(
                Client::new(Settings::new(url, Tls::Verify)),
                Err(Error::Config(_))
            ),
            "{url}"
        );
    }
    let mut s = Settings::new("https://k.example.com", Tls::Verify);
    s.proxy = Some("not a proxy url".into());
    assert!(matches!(Client::new(s), Err(Error::Config(_))));
    let c = client("https://k.example.com/api/");
    assert_eq!(c.base_url(), "https://k.example.com");
    let e = c
        .call(&Token::new("bad\ntoken".into()), &Request::get("/version"))
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kimai-mcp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn ca_file_missing_or_garbage() {
    let dir = temp_dir("ca-garbage");
    let missing = Settings::new("https://k.example.com", Tls::CaFile(dir.join("none.pem")));
    assert!(matches!(Client::new(missing), Err(Error::Config(m)) if m.contains("none.pem")));
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let e = Client::new(Settings::new("https://k.example.com", Tls::CaFile(garbage))).unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("no certificates")),
        "{e:?}"
    );
    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = Client::new(Settings::new("https://k.example.com", Tls::CaFile(broken))).unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("broken.pem")),
        "{e:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `openssl` with `args` in `dir`; `None` when it is missing or fails.
fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(())
}

/// A private CA and a server certificate for 127.0.0.1 / localhost signed by it.
fn make_ca(dir: &Path) -> Option<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kimai-mcp test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr)?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    )
}

#[test]
fn ca_file_loads_every_certificate() {
    let dir = temp_dir("ca-load");
    if make_ca(&dir).is_none() {
        eprintln!("note: openssl unavailable, CA file test skipped");
        return;
    }
    // A bundle: two certificates and a private key (ignored).
    let bundle = [
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        std::fs::read_to_string(dir.join("server.key")).unwrap(),
        std::fs::read_to_string(dir.join("server.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
    assert_eq!(load_ca(&dir.join("bundle.pem")).unwrap().len(), 2);
    assert_eq!(load_ca(&dir.join("ca.pem")).unwrap().len(), 1);
    // A directory: every certificate of every file (ca, server, bundle = 4).
    assert_eq!(load_ca(&dir).unwrap().len(), 4);
    let s = Settings::new("https://127.0.0.1", Tls::CaFile(dir.join("ca.pem")));
    assert!(Client::new(s).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `openssl s_server -www` on a loopback port, killed on drop.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> Option<TlsServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-cert",
                "server.pem",
                "-key",
                "server.key",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let server = TlsServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_against_a_private_ca() {
    let dir = temp_dir("tls-live");
    let Some(server) = make_ca(&dir).and_then(|_| TlsServer::start(&dir)) else {
        eprintln!("note: openssl unavailable, live TLS test skipped");
        return;
    };
    let url = format!("https://127.0.0.1:{}", server.port);
    let call = |tls: Tls| {
        let mut s = settings(&url);
        s.tls = tls;
        s.max_retries = 0;
        call_err(s, &Request::get("/version"))
    };
    // Built-in roots: the private CA is unknown.
    let e = call(Tls::Verify);
    assert!(
        matches!(&e, Error::Tls(m) if m.contains("certificate")),
        "{e:?}"
    );
    assert!(e.hint().unwrap().contains("CA"));
    // With the CA file, and with verification off, the handshake succeeds and the
    // s_server status page (HTML) comes back.
    for tls in [Tls::CaFile(dir.join("ca.pem")), Tls::NoVerify] {
        let e = call(tls.clone());
        assert!(
            matches!(&e, Error::InvalidBody { detail, .. } if detail.starts_with(NOT_KIMAI_API)),
            "{tls:?}: {e:?}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_secrets_in_debug_output() {
    let mut s = settings("https://k.example.com");
    s.proxy = Some("http://puser:ppass@proxy.example.com:3128".into());
    let c = Client::new(s.clone()).unwrap();
    let req = Request::get("/timesheets").query("term", "x");
    for d in [
        format!("{:?}", token()),
        format!("{s:?}"),
        format!("{c:?}"),
        format!("{req:?}"),
    ] {
        assert!(!d.contains(TOKEN), "{d}");
        assert!(!d.contains("ppass"), "{d}");
    }
    assert!(format!("{c:?}").contains("https://k.example.com"));
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
    check::<Error>();
    check::<Token>();
}

#[test]
fn retry_after_parsing() {
    assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
    assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_imf_fixdate("Tue, 29 Feb 2028 12:00:00 GMT"),
        Some(1_835_438_400)
    );
    assert_eq!(parse_retry_after("soon"), None);
    assert_eq!(parse_retry_after("-1"), None);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // An HTTP-date 100 s ahead, built with the inverse of the parser's arithmetic.
    let ahead = parse_retry_after(&http_date(now + 100)).unwrap();
    assert!((98..=100).contains(&ahead.as_secs()), "{ahead:?}");
}

/// IMF-fixdate for a Unix time (civil from days, H. Hinnant); weekday is not checked.
fn http_date(t: u64) -> String {
    let days = i64::try_from(t / 86_400).unwrap() + 719_468;
    let secs = t % 86_400;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::try_from(m - 1).unwrap()];
    format!(
        "Mon, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[test]
fn www_authenticate_parsing() {
    assert_eq!(
        bearer_error_description(
            "Bearer error=\"invalid_token\",error_description=\"Account is disabled.\""
        )
        .as_deref(),
        Some("Account is disabled.")
    );
    assert_eq!(
        bearer_error_description("Bearer error=\"invalid_token\"").as_deref(),
        Some("invalid_token")
    );
    assert_eq!(
        bearer_error_description("Bearer realm=\"api\"").as_deref(),
        None
    );
}

// ----- classification of I/O errors ------------------------------------------------------

#[test]
fn io_classification() {
    let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
    assert!(matches!(Error::from_io(refused, "h"), Error::Connect(_)));
    let dns = io::Error::other("failed to lookup address information: Name or service not known");
    assert!(matches!(Error::from_io(dns, "h"), Error::Dns(s) if s.starts_with("h:")));
    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "Peer disconnected");
    assert!(Error::from_io(eof, "h").is_transient());
    let tls = io::Error::new(
        io::ErrorKind::InvalidData,
        "invalid peer certificate: UnknownIssuer",
    );
    assert!(matches!(Error::from_io(tls, "h"), Error::Tls(_)));
}
