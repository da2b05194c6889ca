//! The provisioner against the simulated Kimai with the ApiTokenBundle plugin: a match becomes
//! a working token of that user; two sign-ins of one identity make one token; each refusal
//! (ambiguous, disabled, foreign domain, no plugin, a weak admin token) says why; the store
//! round-trips and yields to the users file; a forgotten user is provisioned again.

use super::*;
use crate::config::MatchMode;
use crate::sim::{Options, Sim};
use serde_json::json;

fn sim(plugin: bool) -> Sim {
    Sim::start(Options {
        api_token_plugin: plugin,
        ..Options::default()
    })
    .unwrap()
}

fn cfg(sim: &Sim, admin: String) -> ProvisionConfig {
    ProvisionConfig {
        kimai_url: sim.url(),
        admin_token: Token::new(admin),
        token_name: "Kimai MCP (auto)".into(),
        match_mode: MatchMode::Normalized,
        store: None,
        tls: crate::kimai::Tls::Verify,
        allowed_domains: vec!["example.com".into()],
    }
}

fn provisioner(cfg: ProvisionConfig) -> Provisioner {
    let settings = crate::kimai::Settings::new(cfg.kimai_url.clone(), cfg.tls.clone());
    Provisioner::new(cfg, settings).unwrap()
}

/// `GET path` on the sim with a token: status and body.
fn get(sim: &Sim, token: &str, path: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(format!("{}/api{path}", sim.url()))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn a_matched_person_gets_a_working_token_once() {
    let sim = sim(true);
    let p = provisioner(cfg(&sim, sim.admin_token()));
    let (slug, user) = p
        .provision("John_User@Example.com", &json!({}))
        .expect("provisioned");
    assert_eq!(user.kimai_user_id, Some(5));
    assert_eq!(user.source, Source::Provisioned);
    assert!(!user.personal_url && user.auth_secret.is_none());
    assert_eq!(user.label(), "kimai-user-5");
    assert_ne!(user.token.expose(), sim.token("john_user").unwrap());
    let (s, me) = get(&sim, user.token.expose(), "/users/me");
    assert_eq!((s, me["username"].as_str()), (200, Some("john_user")));
    assert!(p.last_took().is_some());
    // Found again by identity (any case) and slug, without asking Kimai for another token.
    assert_eq!(p.find("john_user@example.com").unwrap().0, slug);
    assert!(p.user(&slug).is_some());
    let (again, _) = p.provision("JOHN_USER@example.com", &json!({})).unwrap();
    assert_eq!(again, slug);
    let (_, list) = get(&sim, &sim.admin_token(), "/users/5/api-token");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "Kimai MCP (auto)");
}

#[test]
fn two_sign_ins_of_one_identity_make_one_token() {
    let sim = sim(true);
    let p = Arc::new(provisioner(cfg(&sim, sim.admin_token())));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || p.provision("maria_user@example.com", &json!({})).unwrap().0)
        })
        .collect();
    let slugs: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(slugs.iter().all(|s| s == &slugs[0]), "{slugs:?}");
    let (_, list) = get(&sim, &sim.admin_token(), "/users/6/api-token");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let token = p.user(&slugs[0]).unwrap().token;
    assert_eq!(get(&sim, token.expose(), "/users/me").0, 200);
    // The lock of the identity is gone once nobody uses it.
    assert!(p.locks.lock().unwrap().is_empty());
}

#[test]
fn each_refusal_names_its_reason() {
    let sim = sim(true);
    let admin = sim.admin_token();
    // Two enabled users that the normalized rule cannot tell apart.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for name in ["sam_jones", "samjones"] {
        let r = agent
            .post(format!("{}/api/users", sim.url()))
            .header("Authorization", format!("Bearer {admin}"))
            .header("Content-Type", "application/json")
            .send(
                json!({"username": name, "email": format!("{name}@elsewhere.example"),
                       "plainPassword": "password-123", "enabled": true,
                       "language": "en", "locale": "en", "timezone": "UTC"})
                .to_string()
                .as_bytes(),
            )
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let p = provisioner(cfg(&sim, admin.clone()));
    let why = |identity: &str| p.provision(identity, &json!({})).unwrap_err();
    let e = why("sam.jones@example.com");
    assert!(
        e.contains("ambiguous") && e.contains("samjones") && e.contains("sam_jones"),
        "{e}"
    );
    let e = why("olga_disabled@example.com");
    assert!(e.contains("disabled (olga_disabled)"), "{e}");
    let e = why("john_user@other.example");
    assert!(e.contains("not in --provision-allowed-domains"), "{e}");
    let e = why("nobody@example.com");
    assert!(e.contains("no enabled Kimai user matches"), "{e}");
    let e = why("0000-0000-guid");
    assert!(e.contains("not an e-mail address"), "{e}");
    assert_eq!(p.count(), 0);
    // An admin token without view_user (ROLE_ADMIN).
    let weak = provisioner(cfg(&sim, sim.token("anna_admin").unwrap()));
    let e = weak
        .provision("john_user@example.com", &json!({}))
        .unwrap_err();
    assert!(e.contains("view_user"), "{e}");
    // A Kimai without the plugin.
    let plain = self::sim(false);
    let p = provisioner(cfg(&plain, plain.admin_token()));
    let e = p
        .provision("john_user@example.com", &json!({}))
        .unwrap_err();
    assert!(e.contains("ApiTokenBundle plugin is not installed"), "{e}");
    // No token appears in any reason.
    for who in ["john_user", "olga_disabled"] {
        assert!(!e.contains(&plain.token(who).unwrap()));
    }
}

#[test]
fn the_store_keeps_provisioned_users_and_the_users_file_wins() {
    let sim = sim(true);
    let dir = std::env::temp_dir().join(format!(
        "kimai-mcp-provision-{}-{}",
        std::process::id(),
        &crate::oauth::random_secret("")[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("provisioned.json");
    let mut c = cfg(&sim, sim.admin_token());
    c.store = Some(path.clone());
    let p = provisioner(c.clone());
    let (slug, user) = p.provision("kai_user@example.com", &json!({})).unwrap();
    let (slug2, _) = p.provision("john_user@example.com", &json!({})).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"kai_user@example.com\"") && text.contains(&slug));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A restart: both are back, with the same slugs and a token that works.
    let again = provisioner(c.clone());
    assert_eq!(again.load(&Users::default()), 2);
    let back = again.user(&slug).unwrap();
    assert_eq!(back.token.expose(), user.token.expose());
    assert_eq!(back.kimai_user_id, Some(7));
    // A users file that now maps one of them wins.
    let file = crate::config::users::parse(
        &json!({"k7Hq2vX9mPz4Lw8Rt3NsQa": {"kimai_url": sim.url(), "kimai_token": "t",
                 "oidc_identity": "KAI_USER@example.com"}})
        .to_string(),
        "users.json",
    )
    .unwrap();
    let third = provisioner(c);
    assert_eq!(third.load(&file), 1);
    assert!(third.user(&slug).is_none() && third.user(&slug2).is_some());
    // Forgetting removes the entry from memory and from the file.
    again.forget(&slug, "a test");
    assert!(again.take_forgotten());
    assert!(!again.take_forgotten());
    assert!(again.user(&slug).is_none());
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("kai_user@example.com")
    );
    // ... and the next sign-in provisions a new token.
    let (fresh, u) = again.provision("kai_user@example.com", &json!({})).unwrap();
    assert_ne!(fresh, slug);
    assert_ne!(u.token.expose(), user.token.expose());
    assert_eq!(
        get(&sim, user.token.expose(), "/users/me").0,
        401,
        "replaced by name"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
