//! The relying party against the fake provider (`fake.rs`): the whole code flow, each refusal
//! of the ID token, key rotation, the cache with its stale copy, and the sign-in table.

use super::fake::Fake;
use super::jws::Alg;
use super::jws::testkeys::{RSA_A, RSA_B, Signer};
use super::*;
use crate::oauth::parse_form;
use serde_json::json;
use std::sync::Arc;

fn settings(fake: &Fake) -> Settings {
    Settings {
        issuer: fake.issuer.clone(),
        client_id: "kimai-mcp".into(),
        client_secret: Some(crate::kimai::Token::new("client-secret-0123456789".into())),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        identity: id_token::Rules {
            claim: "email".into(),
            allow_unverified_email: false,
        },
        discovery_url: None,
        login_ttl: Duration::from_secs(600),
        timing: Timing::default(),
    }
}

fn rp(fake: &Fake) -> Oidc {
    Oidc::new(settings(fake), "http://127.0.0.1:8000")
}

/// What the browser would do: follow the authorization URL to the provider, which redirects
/// back with a code. Returns the callback's parameters.
fn browse(url: &str) -> HashMap<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent.get(url).call().expect("the fake provider answers");
    assert_eq!(resp.status().as_u16(), 302);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with("http://127.0.0.1:8000/oauth/oidc/callback?"),
        "{loc}"
    );
    parse_form(loc.split_once('?').unwrap().1).unwrap()
}

/// One whole sign-in; the result of `finish`.
fn sign_in(o: &Oidc) -> Result<Signed, Failure> {
    let started = o.start("txn-1").expect("start");
    let back = browse(&started.url);
    let login = o.take(&back["state"]).expect("the sign-in is open");
    assert_eq!(login.txn, "txn-1");
    assert!(login.same_browser(Some(&started.cookie_value)));
    o.finish(&login, &back["code"])
}

#[test]
fn a_sign_in_names_the_verified_identity() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
    let o = rp(&fake);
    let s = sign_in(&o).unwrap();
    assert_eq!(s.identity.value, "ann@corp.example");
    assert_eq!(s.identity.claim, "email");
    assert_eq!(s.claims["sub"], "u-1");
    // What the provider was asked: code flow, PKCE S256, state, nonce, our redirect URI.
    let st = fake.state();
    let a = &st.last_authorize;
    assert_eq!(a["response_type"], "code");
    assert_eq!(a["client_id"], "kimai-mcp");
    assert_eq!(a["scope"], "openid email profile");
    assert_eq!(a["code_challenge_method"], "S256");
    assert_eq!(a["code_challenge"].len(), 43);
    assert_eq!(
        a["redirect_uri"],
        "http://127.0.0.1:8000/oauth/oidc/callback"
    );
    assert!(a["nonce"].len() >= 43 && a["state"].len() >= 43);
    // The provider lists client_secret_basic: the secret went in the header.
    assert_eq!(st.last_client_auth, "basic");
}

#[test]
fn the_client_authenticates_as_the_provider_allows() {
    let fake = Fake::start(Signer::ec(Alg::ES256, "e1"));
    // A public client (no secret): PKCE alone.
    fake.state().client_secret = None;
    let mut s = settings(&fake);
    s.client_secret = None;
    let o = Oidc::new(s, "http://127.0.0.1:8000");
    sign_in(&o).unwrap();
    assert_eq!(fake.state().last_client_auth, "none");
    // A wrong secret: the provider refuses, the reason names the status and error code only.
    fake.state().client_secret = Some("another-secret-000000".into());
    let e = sign_in(&rp(&fake)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("answered 401 invalid_client") && !text.contains("client-secret"),
        "{text}"
    );
}

#[test]
fn each_bad_id_token_is_refused_with_its_reason() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
    let o = rp(&fake);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (overrides, want) in [
        (json!({"nonce": "not-the-nonce-we-sent"}), "nonce"),
        (json!({"nonce": null}), "nonce"),
        (json!({"exp": t - 120, "iat": t - 420}), "expired"),
        (json!({"iat": t + 600, "exp": t + 900}), "future"),
        (json!({"aud": "someone-else"}), "aud"),
        (json!({"aud": ["kimai-mcp", "someone-else"]}), "azp"),
        (json!({"azp": "someone-else"}), "azp"),
        (json!({"iss": "http://127.0.0.1:1/idp"}), "iss"),
        (json!({"exp": null}), "exp"),
    ] {
        fake.state().overrides = overrides.clone();
        let e = sign_in(&o).unwrap_err();
        assert!(
            matches!(&e, Failure::Token(m) if m.contains(want)),
            "{overrides}: {e}"
        );
    }
    fake.state().overrides = json!({});
    // A token signed by a key the provider never published: the keys are fetched once more,
    // then it is refused; within the refetch gap, not even that.
    let before = fake.hits("/idp/jwks");
    fake.state().signer = Arc::new(Signer::rsa(RSA_B, Alg::RS256, "intruder"));
    let e = sign_in(&o).unwrap_err();
    assert!(
        matches!(&e, Failure::Token(m) if m.contains("no signing key")),
        "{e}"
    );
    assert_eq!(fake.hits("/idp/jwks"), before, "fetched within the gap");
    std::thread::sleep(Timing::default().refetch_gap);
    let e = sign_in(&o).unwrap_err();
    assert!(
        matches!(&e, Failure::Token(m) if m.contains("no signing key")),
        "{e}"
    );
    assert_eq!(fake.hits("/idp/jwks"), before + 1);
    sign_in(&o).unwrap_err();
    assert_eq!(fake.hits("/idp/jwks"), before + 1, "one refetch per gap");
    // The published kid, but another key behind it.
    fake.state().signer = Arc::new(Signer::rsa(RSA_B, Alg::RS256, "k1"));
    let e = sign_in(&o).unwrap_err();
    assert!(
        matches!(&e, Failure::Token(m) if m.contains("signature")),
        "{e}"
    );
    // The published key, another algorithm.
    fake.state().signer = Arc::new(Signer::rsa(RSA_A, Alg::PS256, "k1"));
    let e = sign_in(&o).unwrap_err();
    assert!(
        matches!(&e, Failure::Token(m) if m.contains("does not fit")),
        "{e}"
    );
}

#[test]
fn the_identity_rules_apply_to_verified_tokens() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
    let o = rp(&fake);
    fake.state().account = json!({"sub": "u-2", "email": "bob@corp.example", "email_verified": false,
                                  "preferred_username": "bob@corp.example"});
    let e = sign_in(&o).unwrap_err();
    assert!(
        matches!(&e, Failure::Identity(m) if m.contains("not verified")),
        "{e}"
    );
    // Entra-like: map on oid.
    let mut s = settings(&fake);
    s.identity.claim = "oid".into();
    fake.state().account = json!({"sub": "x", "oid": "00000000-aaaa", "email": "bob@corp.example"});
    let o = Oidc::new(s, "http://127.0.0.1:8000");
    assert_eq!(sign_in(&o).unwrap().identity.value, "00000000-aaaa");
}

#[test]
fn a_rotated_key_is_found_with_one_more_fetch() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "old"));
    let o = rp(&fake);
    sign_in(&o).unwrap();
    sign_in(&o).unwrap();
    assert_eq!(fake.hits("/idp/jwks"), 1, "the keys are cached");
    assert_eq!(
        fake.hits("/idp/.well-known/openid-configuration"),
        1,
        "discovery is cached"
    );
    // The provider rotates: a new key signs, both are published.
    std::thread::sleep(Timing::default().refetch_gap);
    let new = Arc::new(Signer::ec(Alg::ES384, "new"));
    {
        let mut st = fake.state();
        st.published.push(new.clone());
        st.signer = new;
    }
    sign_in(&o).unwrap();
    assert_eq!(fake.hits("/idp/jwks"), 2);
    sign_in(&o).unwrap();
    assert_eq!(fake.hits("/idp/jwks"), 2);
}

#[test]
fn a_provider_that_fails_a_refresh_is_served_from_the_stale_copy() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
    let mut s = settings(&fake);
    s.timing = Timing {
        ttl: Duration::from_millis(50),
        refetch_gap: Duration::from_millis(10),
    };
    let o = Oidc::new(s.clone(), "http://127.0.0.1:8000");
    sign_in(&o).unwrap();
    fake.state().down = true;
    std::thread::sleep(Duration::from_millis(80));
    // Both caches are stale and their refresh fails: the old copies carry the sign-in.
    sign_in(&o).unwrap();
    assert!(fake.hits("/idp/jwks") >= 2);
    // Without any copy, start fails and says why.
    let cold = Oidc::new(s, "http://127.0.0.1:8000");
    let Err(e) = cold.start("t") else {
        panic!("started without discovery")
    };
    assert!(e.to_string().contains("answered 503"), "{e}");
    fake.state().down = false;
    cold.start("t").unwrap();
}

#[test]
fn the_discovery_document_must_name_the_configured_issuer() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
    fake.state().discovery_issuer = Some("http://127.0.0.1:1/idp".into());
    let Err(e) = rp(&fake).start("t") else {
        panic!("a foreign issuer was accepted")
    };
    assert!(e.to_string().contains("not the configured"), "{e}");
    // A trailing slash on either side is the same issuer.
    fake.state().discovery_issuer = Some(format!("{}/", fake.issuer));
    let mut s = settings(&fake);
    s.issuer = format!("{}/", fake.issuer);
    let o = Oidc::new(s, "http://127.0.0.1:8000");
    o.start("t").unwrap();
}

#[test]
fn a_sign_in_is_used_once_and_bound_to_its_browser() {
    let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
    let o = rp(&fake);
    let started = o.start("txn-9").unwrap();
    let back = browse(&started.url);
    assert!(o.take("unknown-state").is_none());
    assert!(o.take("").is_none());
    let login = o.take(&back["state"]).unwrap();
    assert!(o.take(&back["state"]).is_none(), "single use");
    assert!(!login.same_browser(None));
    assert!(!login.same_browser(Some("another-browser")));
    assert!(login.same_browser(Some(&started.cookie_value)));
    assert!(started.cookie_name.starts_with("kmoidc_"));
    // The code itself is single use at the provider too.
    o.finish(&login, &back["code"]).unwrap();
    let e = o.finish(&login, &back["code"]).unwrap_err();
    assert!(e.to_string().contains("invalid_grant"), "{e}");
    // A second start for the same request replaces the first.
    let a = o.start("txn-2").unwrap();
    let b = o.start("txn-2").unwrap();
    assert_eq!(o.in_flight(), 1);
    let sa = parse_form(a.url.split_once('?').unwrap().1).unwrap()["state"].clone();
    let sb = parse_form(b.url.split_once('?').unwrap().1).unwrap()["state"].clone();
    assert!(o.take(&sa).is_none() && o.take(&sb).is_some());
    // Expired sign-ins are not taken, and the sweeper forgets them.
    let mut s = settings(&fake);
    s.login_ttl = Duration::from_millis(20);
    let short = Oidc::new(s, "http://127.0.0.1:8000");
    let st = short.start("t").unwrap();
    let state = parse_form(st.url.split_once('?').unwrap().1).unwrap()["state"].clone();
    std::thread::sleep(Duration::from_millis(40));
    short.sweep();
    assert_eq!(short.in_flight(), 0);
    assert!(short.take(&state).is_none());
}
