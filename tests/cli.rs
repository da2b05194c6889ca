//! The command line: usage errors, help, version, `check`, and `demo` over stdio.

use crate::util::{Server, run, sim};
use kimai_mcp::sim::{Fault, FaultKind};
use serde_json::json;

#[test]
fn missing_settings_are_one_line_errors_with_status_2() {
    let (code, out, err) = run(&["stdio"], &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(
        err.trim(),
        "kimai-mcp: the Kimai URL is required: pass --kimai-url or set KIMAI_URL"
    );
    let (code, _, err) = run(&[], &[("KIMAI_URL", "https://kimai.example.com")]);
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        "kimai-mcp: the Kimai API token is required: pass --kimai-token or set KIMAI_API_TOKEN"
    );
    let (code, _, err) = run(&["--bogus"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn help_and_version() {
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    for needle in [
        "--kimai-url",
        "KIMAI_API_TOKEN",
        "--ssl-verify",
        "demo",
        "check",
        "RUST_LOG",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}");
    }
    let (code, out, _) = run(&["check", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("kimai-mcp check"));
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("kimai-mcp {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_reports_version_and_user() {
    let sim = sim();
    let (code, out, err) = run(
        &[
            "check",
            "--kimai-url",
            &sim.url(),
            "--kimai-token",
            &sim.demo_token(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Kimai 2.65.0 at"), "{out}");
    assert!(out.contains("Token belongs to"), "{out}");
}

#[test]
fn check_explains_what_is_wrong() {
    let sim = sim();
    // Wrong token.
    let (code, _, err) = run(
        &[
            "check",
            "--kimai-url",
            &sim.url(),
            "--kimai-token",
            "0123456789abcdef012345678",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    // Nothing listening.
    let (code, _, err) = run(
        &[
            "check",
            "--kimai-url",
            "http://127.0.0.1:9",
            "--kimai-token",
            "x",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.to_lowercase().contains("refused") || err.to_lowercase().contains("connect"),
        "{err}"
    );
    // A name that does not resolve.
    let (code, _, err) = run(
        &[
            "check",
            "--kimai-url",
            "http://kimai.invalid",
            "--kimai-token",
            "x",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.to_lowercase().contains("resolve")
            || err.to_lowercase().contains("dns")
            || err.to_lowercase().contains("host"),
        "{err}"
    );
    // A web page instead of the API.
    sim.set_fault(Fault {
        kind: FaultKind::Html,
        times: None,
        path_prefix: None,
    });
    let (code, _, err) = run(
        &[
            "check",
            "--kimai-url",
            &sim.url(),
            "--kimai-token",
            &sim.demo_token(),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("does not look like a Kimai API"), "{err}");
    sim.clear_fault();
    // A CA file that does not exist is a usage error.
    let (code, _, err) = run(
        &[
            "check",
            "--kimai-url",
            &sim.url(),
            "--kimai-token",
            "x",
            "--ssl-verify",
            "/nonexistent/ca.pem",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--ssl-verify"), "{err}");
}

#[test]
fn demo_serves_stdio_against_the_simulator() {
    let mut s = Server::spawn(&["demo"], &[]);
    assert_eq!(
        s.initialize("2025-11-25")["result"]["protocolVersion"],
        json!("2025-11-25")
    );
    let (text, err) = s.call("user_current", json!({}));
    assert!(!err, "{text}");
    assert!(text.contains("ROLE_TEAMLEAD"), "{text}");
    let (text, err) = s.call("config", json!({"type": "version"}));
    assert!(!err);
    assert!(text.contains("2.65.0"));
    s.close_stdin();
    assert_eq!(s.wait_exit(std::time::Duration::from_secs(5)), Some(0));
}

#[test]
fn generate_token_and_slug() {
    let (code, a, _) = run(&["generate", "token"], &[]);
    assert_eq!(code, 0);
    let a = a.trim().to_string();
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    let (_, b, _) = run(&["generate", "token"], &[]);
    assert_ne!(a, b.trim());
    let (code, slug, _) = run(&["generate", "slug"], &[]);
    assert_eq!(code, 0);
    let slug = slug.trim();
    assert_eq!(slug.len(), 24);
    assert_eq!(
        kimai_mcp::config::check_slug(slug),
        kimai_mcp::config::SlugCheck::Ok,
        "{slug}"
    );
    let (code, _, err) = run(&["generate", "password"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("token or slug"), "{err}");
}

#[test]
fn setup_checks_the_settings_and_writes_the_claude_desktop_configuration() {
    use std::io::Write as _;
    let sim = sim();
    let home = crate::util::TempDir::new();
    let mut child = std::process::Command::new(crate::util::bin())
        .arg("setup")
        .env("HOME", &home.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "{}\n{}\n\ny\n",
        sim.url(),
        sim.demo_token()
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Connected: Kimai 2.65.0, user tony_teamlead"),
        "{stdout}"
    );
    let cfg = home.0.join(".config/Claude/claude_desktop_config.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(
        v["mcpServers"]["kimai"]["env"]["KIMAI_URL"],
        json!(sim.url())
    );
    assert_eq!(
        v["mcpServers"]["kimai"]["env"]["KIMAI_API_TOKEN"],
        json!(sim.demo_token())
    );
    // A wrong token is refused and nothing is written.
    let home2 = crate::util::TempDir::new();
    let mut child = std::process::Command::new(crate::util::bin())
        .args(["setup", "--print"])
        .env("HOME", &home2.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "{}\n0123456789abcdef012345678\n\n",
        sim.url()
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not work"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!home2.0.join(".config").exists());
}
