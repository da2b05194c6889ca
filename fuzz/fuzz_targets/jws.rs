//! Any bytes as an identity provider's ID token and key set: parsing and the signature check
//! refuse or accept without panicking, and nothing is accepted that no key signed. The first
//! line of the input is read as a JWKS document, the rest as the token; a fixed key set is
//! tried as well (an RSA and an EC key), so that inputs which reach `verify` are common.
#![no_main]

use kimai_mcp::oauth::oidc::jws;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::sync::OnceLock;

fn fixed_keys() -> &'static Vec<jws::Jwk> {
    static K: OnceLock<Vec<jws::Jwk>> = OnceLock::new();
    K.get_or_init(|| {
        jws::parse_jwks(&json!({"keys": [
            {"kty": "RSA", "kid": "r", "use": "sig", "alg": "RS256", "e": "AQAB",
             "n": "42cTyfRP5vt2WWyebbEg7Vv5LIVA6m_5mhiE1pKgam5SF-CdfBxiO33n3pFhsW3OOyLuhB_hesiH13wdN0MJo-LowL04OxFTlG3_ygB_qHzB2aR-Ny0irtuOYa9WVUkPIWAgZR_ZRMn4ymQhnzjFgskUf4nn8MpNnrwGGjEMS6TSfdnvbzSGWxtSk-HvjgsIur2et83xpwHoIOMzkXInncGayuw6yxi2kl0udpVz41mlyafcHO8YnYg5rvi0njfqRuD4GuzfIMo4Z46-kEska0h6J-XZVIphGfMCGjUtUxCzuQIpv464S_aWyRYV7APNn61MNsavjOp81sJQ2NJ8iQ"},
            {"kty": "EC", "kid": "e", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = jws::b64url_decode(&String::from_utf8_lossy(data));
        return;
    };
    let (first, token) = text.split_once('\n').unwrap_or(("", text));
    let _ = jws::b64url_decode(token);
    let mut key_sets = vec![fixed_keys().clone()];
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(first) {
        key_sets.push(jws::parse_jwks(&doc));
    }
    let Ok(parsed) = jws::parse(token) else { return };
    for keys in &key_sets {
        if let Ok(key) = jws::select(keys, &parsed) {
            // Random bytes never carry a valid signature of the fixed keys (their private
            // halves are not in this program).
            let verified = jws::verify(&parsed, key);
            if std::ptr::eq(keys, &key_sets[0]) {
                assert!(verified.is_err(), "a signature of a key nobody here holds");
            }
        }
    }
});
