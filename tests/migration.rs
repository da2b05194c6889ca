//! Coming from the Python `kimai-mcp` and its deployment guide: each trap its steps ran into has
//! a test here — the guide's grep for the generated token, `/health` saying `healthy`, a
//! loopback listener that says so, the nginx `Host $host` 403 naming its option, an untrusted
//! proxy warned about once, users from `USERS_CONFIG` and `KIMAI_USER_<NAME>_*`, and
//! `--log-format json` for log pipelines.

use crate::oauth::{form, open_sign_in, pkce, post_form, query_of, submit, whoami};
use crate::util::http::{SLUG_A, Serve, init_body, post, request};
use crate::util::sim;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Waits until `f` holds (the server's output arrives through a reader thread).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_guides_grep_finds_the_generated_token_and_json_logs_carry_the_fields() {
    let srv = Serve::start_plain(&["--port", "0", "--log-format", "json"], &[]);
    eventually("the token line", || {
        srv.stdout()
            .contains("Generated new authentication token for MCP server: ")
    });
    let out = srv.stdout();
    let token = out
        .split("Generated new authentication token for MCP server: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64, "{out}");
    // The token works (the metrics endpoint takes the server token) and nothing else does.
    let auth = format!("Bearer {token}");
    assert_eq!(
        request(
            &srv.addr,
            "GET",
            "/metrics",
            &[("Authorization", &auth)],
            ""
        )
        .status,
        200
    );
    assert_eq!(
        request(
            &srv.addr,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer x")],
            ""
        )
        .status,
        401
    );
    let health = request(&srv.addr, "GET", "/health", &[], "").json();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["transport"], "streamable-http");

    eventually("the access line of /health", || {
        srv.logs().contains("/health")
    });
    let lines: Vec<Value> = srv
        .logs()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        for k in ["time", "level", "target", "message"] {
            assert!(l[k].is_string(), "{k} in {l}");
        }
        assert!(
            !l.to_string().contains(&token),
            "the token is never logged: {l}"
        );
    }
    // The loopback listener says so, with the option that changes it.
    assert!(
        lines.iter().any(|l| {
            let m = l["message"].as_str().unwrap();
            m.contains("listening on loopback") && m.contains("--host 0.0.0.0")
        }),
        "{lines:?}"
    );
    let access = lines
        .iter()
        .find(|l| l["target"] == "kimai_mcp::access" && l["path"] == "/health")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(access["status"], 200);
    assert_eq!(access["method"], "GET");
    assert!(access["duration_ms"].is_u64(), "{access}");
    assert_eq!(access["client"], "127.0.0.1");
}

#[test]
fn the_guides_nginx_block_needs_one_documented_option() {
    let sim = sim();
    // `proxy_set_header Host $host` sends the public name to a loopback listener.
    let srv = Serve::start(&sim, &[]);
    let host = [("Host", "mcp.example.com")];
    let r = request(&srv.addr, "GET", "/health", &host, "");
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("--public-host mcp.example.com")
            && r.body.contains("KIMAI_MCP_PUBLIC_HOSTS"),
        "{}",
        r.body
    );
    request(&srv.addr, "GET", "/health", &host, "");
    eventually("the warning", || {
        srv.logs().contains("--public-host mcp.example.com")
    });
    eventually("both access lines", || {
        srv.logs().matches("GET /health 403").count() >= 2
    });
    let logs = srv.logs();
    assert_eq!(
        logs.matches("--public-host mcp.example.com").count(),
        1,
        "logged once: {logs}"
    );
    // A Host that is not a plain name is not echoed.
    let r = request(&srv.addr, "GET", "/health", &[("Host", "<b>x</b>")], "");
    assert!(r.status == 403 || r.status == 400, "{r:?}");
    assert!(!r.body.contains("<b>"), "{}", r.body);

    let srv = Serve::start(&sim, &["--public-host", "mcp.example.com"]);
    assert_eq!(request(&srv.addr, "GET", "/health", &host, "").status, 200);
}

#[test]
fn forwarded_addresses_from_a_proxy_that_is_not_trusted_are_warned_about_once() {
    let sim = sim();
    let srv = Serve::start(&sim, &[]);
    for n in 1..=3 {
        let xff = format!("10.0.0.{n}");
        request(
            &srv.addr,
            "GET",
            "/health",
            &[("X-Forwarded-For", &xff)],
            "",
        );
    }
    eventually("three access lines", || {
        srv.logs().matches("GET /health 200").count() >= 3
    });
    let logs = srv.logs();
    assert_eq!(
        logs.matches("is not a --trusted-proxy").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("--trusted-proxy 127.0.0.1"), "{logs}");
    let srv = Serve::start(&sim, &["--trusted-proxy", "127.0.0.1"]);
    request(
        &srv.addr,
        "GET",
        "/health",
        &[("X-Forwarded-For", "10.0.0.9")],
        "",
    );
    request(&srv.addr, "GET", "/health", &[], "");
    eventually("two access lines", || {
        srv.logs().matches("GET /health").count() >= 2
    });
    assert!(!srv.logs().contains("is not a --trusted-proxy"));
}

#[test]
fn users_from_users_config_and_kimai_user_variables() {
    let sim = sim();
    // The whole file inline, as the Python server's compose setups pass it.
    let inline = json!({SLUG_A: {"kimai_url": sim.url(), "kimai_token": sim.token("tony_teamlead").unwrap()}})
        .to_string();
    let srv = Serve::start_plain(
        &[
            "--port",
            "0",
            "--server-token",
            "test-server-token-0123456789abcdef",
        ],
        &[("USERS_CONFIG", &inline)],
    );
    let r = post(&srv, &format!("/mcp/{SLUG_A}"), &[], &init_body());
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!srv.logs().contains(&sim.token("tony_teamlead").unwrap()));

    // KIMAI_USER_<NAME>_*: a short name is no secret, so it signs in with OAuth only.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");
    let token = sim.token("john_user").unwrap();
    let srv = Serve::start_plain(
        &[
            "--port",
            &port,
            "--public-url",
            &base,
            "--server-token",
            "test-server-token-0123456789abcdef",
        ],
        &[
            ("KIMAI_USER_ALICE_URL", &sim.url()),
            ("KIMAI_USER_ALICE_TOKEN", &token),
            (
                "KIMAI_USER_ALICE_AUTH_SECRET",
                "alice-auth-secret-0123456789",
            ),
        ],
    );
    eventually("the warning about alice", || {
        srv.logs().contains("/mcp/alice is off")
    });
    let logs = srv.logs();
    assert!(
        logs.contains("KIMAI_USER_ALICE_*") && logs.contains("/mcp/alice is off"),
        "{logs}"
    );
    let r = post(&srv, "/mcp/alice", &[], &init_body());
    assert_eq!(r.status, 404, "{r:?}");
    // The sign-in with the name and the auth secret acts as that Kimai user.
    let reg = request(
        &srv.addr,
        "POST",
        "/register",
        &[("Content-Type", "application/json")],
        &json!({"redirect_uris": ["http://127.0.0.1:45997/cb"], "token_endpoint_auth_method": "none"})
            .to_string(),
    );
    let client = reg.json()["client_id"].as_str().unwrap().to_string();
    let (verifier, challenge) = pkce();
    let path = format!(
        "/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", &client),
            ("redirect_uri", "http://127.0.0.1:45997/cb"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    let page = open_sign_in(&srv, &path);
    let r = submit(&srv, &page, "alice", "alice-auth-secret-0123456789");
    assert_eq!(r.status, 302, "{r:?}");
    let code = query_of(r.header("Location").unwrap())["code"].clone();
    let r = post_form(
        &srv,
        "/token",
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:45997/cb"),
            ("client_id", &client),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        whoami(&srv, r.json()["access_token"].as_str().unwrap()).unwrap(),
        "john_user"
    );
    assert!(!srv.logs().contains(&token));
}

#[test]
fn the_python_compose_files_environment_starts_the_server_with_warnings() {
    // 2.20.1's docker-compose.yml sets the state file whether or not OAuth is on, and its
    // commented OIDC block may have been uncommented without turning the backend on.
    let srv = Serve::start_plain(
        &[
            "--port",
            "0",
            "--server-token",
            "test-server-token-0123456789abcdef",
        ],
        &[
            (
                "KIMAI_MCP_OAUTH_STATE_FILE",
                "/app/config/oauth_clients.json",
            ),
            ("KIMAI_MCP_PUBLIC_URL", ""),
            ("KIMAI_MCP_OIDC_ISSUER", "https://login.example.com/t/v2.0"),
            (
                "KIMAI_MCP_PROVISION_ADMIN_TOKEN",
                "admin-token-value-0123456789",
            ),
        ],
    );
    eventually("the warnings", || {
        let l = srv.logs();
        l.contains("KIMAI_MCP_OAUTH_STATE_FILE (/app/config/oauth_clients.json) is not used")
            && l.contains("KIMAI_MCP_OIDC_ISSUER set but not used")
            && l.contains("KIMAI_MCP_PROVISION_ADMIN_TOKEN set but not used")
    });
    assert!(!srv.logs().contains("admin-token-value"));
    assert!(!std::path::Path::new("/app/config/oauth_clients.json").exists());
    assert_eq!(request(&srv.addr, "GET", "/health", &[], "").status, 200);
}

#[test]
fn the_python_compose_files_oidc_block_without_its_settings_stops_the_server() {
    // KIMAI_MCP_AUTH_BACKEND=oidc turns the identity provider on, as in 2.20.1: without an
    // issuer, a client id and a public URL the server says what is missing and does not start.
    let out = std::process::Command::new(crate::util::bin())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KIMAI_MCP_AUTH_BACKEND", "oidc")
        .env("KIMAI_MCP_OIDC_CLIENT_SECRET", "client-secret-value-0123")
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--auth-backend oidc requires --oidc-issuer, --oidc-client-id")
            && err.contains("KIMAI_MCP_OIDC_"),
        "{err}"
    );
    assert!(!err.contains("client-secret-value"));
}
