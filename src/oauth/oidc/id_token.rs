//! The claims of a verified ID token (OpenID Connect Core 1.0 §3.1.3.7) and the identity they
//! assert. Runs after `jws` has accepted the signature; pure functions of the claims, the
//! expectations and the clock.
//!
//! The checks: `iss` equal to the discovered issuer; `aud` this client (a string, or a list
//! that holds it, and then `azp` is required); `azp`, when present, this client; `exp` in the
//! future and `iat` not in the future, `nbf` (if any) passed, each with [`LEEWAY_SECS`] for
//! clocks that differ; the `nonce` we sent, compared in constant time.
//!
//! The identity: the configured claim (`--oidc-identity-claim`, default `email`), then the
//! 2.20.1 fallbacks `email`, `preferred_username`, `upn` — the first non-empty string. A
//! fallback `preferred_username` or `upn` counts only when it looks like an address (`@`).
//! `email` is used only when the token says `email_verified: true` (`--oidc-allow-unverified-
//! email` lifts that), and a token whose `email` is unverified gives no identity through the
//! fallbacks either: providers put the same user-editable address into `preferred_username`.
//! A configured claim other than `email` that is present (Entra ID's `oid`, `sub`, or `upn` in
//! a directory that owns it) is taken as it is: it does not come from the e-mail address, so
//! `email_verified` says nothing about it. (2.20.1 refuses such a token whenever it carries an
//! unverified `email`, which makes `oid` unusable with Entra ID's defaults.)

use serde_json::Value;

/// Allowed clock difference, in seconds, for `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;
/// Longest identity accepted.
pub const MAX_IDENTITY_CHARS: usize = 256;
/// The fallback claims after the configured one, in order (2.20.1).
pub const FALLBACK_CLAIMS: [&str; 3] = ["email", "preferred_username", "upn"];

/// What the token must say.
pub struct Expected<'a> {
    /// The issuer exactly as the discovery document writes it.
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the epoch.
    pub now: i64,
}

/// A numeric date claim (seconds since the epoch; JSON numbers, fractions allowed).
fn date(claims: &Value, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| Some(f as i64))
            .ok_or_else(|| format!("{name} is not a date")),
        Some(_) => Err(format!("{name} is not a number")),
    }
}

/// Checks the claims; the reason in lowercase for the log when they fail.
pub fn check(claims: &Value, e: &Expected<'_>) -> Result<(), String> {
    if !claims.is_object() {
        return Err("the ID token's payload is not a JSON object".into());
    }
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == e.issuer => {}
        Some(_) => return Err("the ID token's iss is not the provider's issuer".into()),
        None => return Err("the ID token has no iss".into()),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err("the ID token has no aud".into()),
    };
    if !audiences.contains(&e.client_id) {
        return Err("the ID token is for another client (aud)".into());
    }
    let azp = claims.get("azp");
    match azp {
        None | Some(Value::Null) if audiences.len() > 1 => {
            return Err("the ID token has several audiences and no azp".into());
        }
        None | Some(Value::Null) => {}
        Some(Value::String(a)) if a == e.client_id => {}
        Some(_) => return Err("the ID token's azp is another client".into()),
    }
    let exp = date(claims, "exp")?.ok_or("the ID token has no exp")?;
    if exp.saturating_add(LEEWAY_SECS) <= e.now {
        return Err(format!(
            "the ID token expired {} s ago",
            e.now.saturating_sub(exp)
        ));
    }
    let iat = date(claims, "iat")?.ok_or("the ID token has no iat")?;
    if iat > e.now.saturating_add(LEEWAY_SECS) {
        return Err(format!(
            "the ID token was issued {} s in the future (iat); check the clocks",
            iat.saturating_sub(e.now)
        ));
    }
    if let Some(nbf) = date(claims, "nbf")?
        && nbf > e.now.saturating_add(LEEWAY_SECS)
    {
        return Err("the ID token is not valid yet (nbf)".into());
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if e.nonce.is_empty() || !crate::guard::ct_eq(nonce.as_bytes(), e.nonce.as_bytes()) {
        return Err("the ID token's nonce is not the one this sign-in sent".into());
    }
    Ok(())
}

/// How the identity is taken from the claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// `--oidc-identity-claim`.
    pub claim: String,
    /// `--oidc-allow-unverified-email`.
    pub allow_unverified_email: bool,
}

/// The identity a token asserts and the claim it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub value: String,
    pub claim: String,
}

fn email_verified(claims: &Value) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        // Some providers (AWS Cognito among them) send the boolean as a string.
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn usable(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    (!s.is_empty() && s.chars().count() <= MAX_IDENTITY_CHARS && !s.chars().any(char::is_control))
        .then(|| s.to_string())
}

/// The identity of verified claims, or why there is none (for the log).
pub fn identity(claims: &Value, rules: &Rules) -> Result<Identity, String> {
    let unverified_email = claims.get("email").is_some_and(|e| !e.is_null())
        && !email_verified(claims)
        && !rules.allow_unverified_email;
    let found = |name: &str| claims.get(name).and_then(usable);
    // The configured claim, when it is not the e-mail address, stands on its own.
    if rules.claim != "email"
        && let Some(v) = found(&rules.claim)
    {
        return Ok(Identity {
            value: v,
            claim: rules.claim.clone(),
        });
    }
    if unverified_email {
        return Err(format!(
            "the token's email is not verified (email_verified is not true){}; the sign-in is refused rather than mapped through an address anyone may have typed (--oidc-allow-unverified-email overrides, only for providers that verify every address)",
            if rules.claim == "email" {
                String::new()
            } else {
                format!(" and it has no {} claim", rules.claim)
            }
        ));
    }
    for name in FALLBACK_CLAIMS {
        let Some(v) = found(name) else { continue };
        if name != "email" && name != rules.claim && !v.contains('@') {
            continue;
        }
        return Ok(Identity {
            value: v,
            claim: name.to_string(),
        });
    }
    Err(format!(
        "the token has none of the identity claims {} (non-empty; preferred_username and upn must contain @)",
        std::iter::once(rules.claim.as_str())
            .chain(
                FALLBACK_CLAIMS
                    .iter()
                    .copied()
                    .filter(|c| *c != rules.claim)
            )
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example/realms/x",
            client_id: "kimai-mcp",
            nonce: "n-0123456789",
            now: NOW,
        }
    }

    fn good() -> Value {
        json!({"iss": "https://idp.example/realms/x", "aud": "kimai-mcp", "sub": "u1",
               "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-0123456789"})
    }

    fn with(k: &str, v: Value) -> Value {
        let mut c = good();
        c[k] = v;
        c
    }

    fn without(k: &str) -> Value {
        let mut c = good();
        c.as_object_mut().unwrap().remove(k);
        c
    }

    #[test]
    fn a_good_token_passes_and_each_claim_is_checked() {
        assert_eq!(check(&good(), &expected()), Ok(()));
        let refused = [
            (with("iss", json!("https://idp.example/realms/x/")), "iss"),
            (with("iss", json!("https://evil.example")), "iss"),
            (without("iss"), "no iss"),
            (with("aud", json!("other")), "aud"),
            (without("aud"), "no aud"),
            (with("aud", json!(["other", "kimai-mcp"])), "no azp"),
            (with("azp", json!("other")), "azp"),
            (without("exp"), "no exp"),
            (with("exp", json!("soon")), "exp"),
            (with("exp", json!(NOW - 61)), "expired"),
            (without("iat"), "no iat"),
            (with("iat", json!(NOW + 61)), "future"),
            (with("nbf", json!(NOW + 120)), "nbf"),
            (without("nonce"), "nonce"),
            (with("nonce", json!("n-0123456780")), "nonce"),
            (with("nonce", json!(5)), "nonce"),
            (json!("a string"), "object"),
        ];
        for (claims, want) in refused {
            let e = check(&claims, &expected()).unwrap_err();
            assert!(e.contains(want), "{claims}: {e}");
        }
        // The leeway: a minute either way.
        assert!(check(&with("exp", json!(NOW - 59)), &expected()).is_ok());
        assert!(check(&with("iat", json!(NOW + 59)), &expected()).is_ok());
        assert!(check(&with("exp", json!(NOW as f64 + 10.5)), &expected()).is_ok());
        // A list of audiences with azp = us.
        let mut multi = with("aud", json!(["other", "kimai-mcp"]));
        multi["azp"] = json!("kimai-mcp");
        assert!(check(&multi, &expected()).is_ok());
        assert!(check(&with("aud", json!(["kimai-mcp"])), &expected()).is_ok());
        // No nonce expected is never a pass.
        let mut e = expected();
        e.nonce = "";
        assert!(check(&with("nonce", json!("")), &e).is_err());
    }

    fn rules(claim: &str) -> Rules {
        Rules {
            claim: claim.into(),
            allow_unverified_email: false,
        }
    }

    fn id(claims: Value, r: &Rules) -> Result<(String, String), String> {
        identity(&claims, r).map(|i| (i.value, i.claim))
    }

    #[test]
    fn the_identity_follows_the_claim_and_the_fallback_chain() {
        let email = rules("email");
        assert_eq!(
            id(
                json!({"email": " Ann@Corp.Example ", "email_verified": true}),
                &email
            ),
            Ok(("Ann@Corp.Example".into(), "email".into()))
        );
        // Unverified (false, missing, "false"): refused, also through the fallbacks.
        for claims in [
            json!({"email": "a@corp.example", "email_verified": false, "preferred_username": "a@corp.example"}),
            json!({"email": "a@corp.example", "upn": "a@corp.example"}),
            json!({"email": "a@corp.example", "email_verified": "false"}),
        ] {
            let e = id(claims.clone(), &email).unwrap_err();
            assert!(e.contains("not verified"), "{claims}: {e}");
        }
        assert!(
            id(
                json!({"email": "a@corp.example", "email_verified": "true"}),
                &email
            )
            .is_ok()
        );
        let lax = Rules {
            claim: "email".into(),
            allow_unverified_email: true,
        };
        assert_eq!(
            id(json!({"email": "a@corp.example"}), &lax),
            Ok(("a@corp.example".into(), "email".into()))
        );
        // No email claim at all: the directory's preferred_username / upn, if addresses.
        assert_eq!(
            id(
                json!({"preferred_username": "jdoe", "upn": "j.doe@corp.example"}),
                &email
            ),
            Ok(("j.doe@corp.example".into(), "upn".into()))
        );
        assert!(id(json!({"preferred_username": "jdoe"}), &email).is_err());
        // Entra ID with --oidc-identity-claim oid: its email is unverified, oid is used.
        let oid = rules("oid");
        let entra =
            json!({"oid": "7f3c…-guid", "email": "ann@corp.example", "upn": "ann@corp.example"});
        assert_eq!(
            id(entra.clone(), &oid),
            Ok(("7f3c…-guid".into(), "oid".into()))
        );
        // Without oid, the unverified email stops the fallbacks.
        let mut no_oid = entra;
        no_oid.as_object_mut().unwrap().remove("oid");
        assert!(id(no_oid, &oid).unwrap_err().contains("no oid claim"));
        // A configured preferred_username need not be an address.
        assert_eq!(
            id(
                json!({"preferred_username": "jdoe"}),
                &rules("preferred_username")
            ),
            Ok(("jdoe".into(), "preferred_username".into()))
        );
        // Empty, too long, control characters, non-strings: skipped.
        let long = "a".repeat(MAX_IDENTITY_CHARS + 1) + "@x";
        for v in [
            json!(""),
            json!("  "),
            json!(long),
            json!("a\u{0}@x"),
            json!(12),
        ] {
            let e = id(json!({"sub": v}), &rules("sub")).unwrap_err();
            assert!(e.contains("none of the identity claims sub, email"), "{e}");
        }
    }
}
