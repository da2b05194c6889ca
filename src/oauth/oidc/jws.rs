//! The signed ID token as it arrives from an identity provider: a JWS in compact serialisation
//! (RFC 7515 §7.1) and the JSON Web Keys that may have signed it (RFC 7517, RFC 7518 §6).
//!
//! Owns parsing and the signature check, and nothing else: the claims inside are checked by
//! `id_token`, the keys are fetched and cached by `provider`. The cryptography is `ring`'s
//! (`RsaPublicKeyComponents`, `UnparsedPublicKey`); this file only turns bytes into the inputs
//! ring takes, strictly, so that it stays small enough to read in one sitting and to fuzz
//! (`fuzz/fuzz_targets/jws.rs`).
//!
//! Rules, each a refusal with its own [`Error`]:
//! - three base64url parts without padding, decoded strictly (canonical trailing bits), at most
//!   [`MAX_TOKEN_BYTES`] in all; a header that is a JSON object with `alg`;
//! - `alg` one of [`Alg`]: RS256/384/512, PS256/384/512, ES256, ES384. Never `none`, never the
//!   HMAC family (a shared secret would let anyone who knows the client secret, or with `none`
//!   anyone at all, mint identities), never an algorithm the key does not carry;
//! - a `crit` header (extensions we would have to understand) is refused; `typ`, when present,
//!   must say JWT;
//! - the key: by `kid` when the token names one, else the only key of the right type; a key
//!   whose `use` is not `sig`, whose `key_ops` lack `verify`, or whose own `alg` differs from
//!   the token's is never used for it. RSA keys below 2048 bits are refused by ring.
//!
//! Pure functions, no state, no I/O.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use std::fmt;

/// Longest token accepted (real ID tokens are 1–3 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Keys read from one JWKS at most; the rest are ignored.
pub const MAX_KEYS: usize = 32;
/// Longest `kid` kept.
const MAX_KID: usize = 256;

/// The signature algorithms accepted (RFC 7518 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
        }
    }

    /// The JWK key type that can verify it.
    fn kty(self) -> &'static str {
        match self {
            Alg::ES256 | Alg::ES384 => "EC",
            _ => "RSA",
        }
    }

    /// The curve of an ECDSA algorithm.
    fn curve(self) -> Option<Curve> {
        match self {
            Alg::ES256 => Some(Curve::P256),
            Alg::ES384 => Some(Curve::P384),
            _ => None,
        }
    }
}

/// An elliptic curve of an EC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    /// Bytes of one coordinate.
    fn len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// Why a token or key cannot be used. Short lowercase texts for the log; never a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a compact JWS as the rules above want it.
    Malformed(&'static str),
    /// The header names an algorithm that is not accepted (the name, cut short).
    Algorithm(String),
    /// The header has `crit`, or a `typ` that is not JWT.
    Header(&'static str),
    /// No key with the token's `kid` (or, without one, no single suitable key). A reason to
    /// fetch the key set once more: the provider may have rotated its keys.
    UnknownKey,
    /// The key named by `kid` cannot verify this algorithm (type, curve, `use`, `alg`).
    KeyMismatch,
    /// The signature does not verify with the key.
    Signature,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(why) => write!(f, "malformed token: {why}"),
            Error::Algorithm(alg) => write!(f, "signature algorithm {alg:?} is not accepted"),
            Error::Header(why) => write!(f, "token header refused: {why}"),
            Error::UnknownKey => f.write_str("no signing key of the identity provider matches"),
            Error::KeyMismatch => f.write_str("the signing key does not fit the algorithm"),
            Error::Signature => f.write_str("the signature does not verify"),
        }
    }
}

impl std::error::Error for Error {}

/// A parsed, not yet verified, token.
#[derive(Debug)]
pub struct Jws<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    /// `header.payload` as sent: what the signature covers.
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws<'_> {
    /// The payload, once [`verify`] has accepted the signature.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Strict base64url without padding (RFC 7515 §2): the URL alphabet only, no `=`, and zero
/// bits in the unused tail, so that every byte string has exactly one encoding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// Splits and decodes a compact JWS; checks the header. Nothing is trusted yet.
pub fn parse(token: &str) -> Result<Jws<'_>, Error> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Malformed("longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("not three dot-separated parts"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(Error::Malformed("an empty part"));
    }
    let header = b64url_decode(h).ok_or(Error::Malformed("header is not base64url"))?;
    let payload = b64url_decode(p).ok_or(Error::Malformed("payload is not base64url"))?;
    let signature = b64url_decode(s).ok_or(Error::Malformed("signature is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&header).map_err(|_| Error::Malformed("header is not JSON"))?;
    let Value::Object(header) = header else {
        return Err(Error::Malformed("header is not a JSON object"));
    };
    let alg = match header.get("alg") {
        Some(Value::String(a)) => {
            Alg::parse(a).ok_or_else(|| Error::Algorithm(a.chars().take(20).collect()))?
        }
        _ => return Err(Error::Malformed("header has no alg")),
    };
    if header.contains_key("crit") {
        return Err(Error::Header("crit extensions are not supported"));
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt") => {}
        Some(_) => return Err(Error::Header("typ is not JWT")),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID => Some(k.clone()),
        Some(_) => return Err(Error::Malformed("kid is not a short string")),
    };
    Ok(Jws {
        alg,
        kid,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload,
        signature,
    })
}

/// The public part of a key that can verify signatures.
#[derive(Clone, PartialEq, Eq)]
enum Material {
    /// Big-endian modulus and exponent, leading zeros removed.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed point `04 || x || y`.
    Ec { curve: Curve, point: Vec<u8> },
}

/// One usable signing key of a JWKS.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, when it names one.
    alg: Option<String>,
    material: Material,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.material {
            Material::Rsa { n, .. } => format!("RSA {} bits", n.len() * 8),
            Material::Ec { curve, .. } => format!("EC {curve:?}"),
        };
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &kind)
            .finish()
    }
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`.
    fn suits(&self, alg: Alg) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return false;
        }
        match &self.material {
            Material::Rsa { .. } => alg.kty() == "RSA",
            Material::Ec { curve, .. } => alg.curve() == Some(*curve),
        }
    }
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.drain(..first);
    b
}

/// The signing keys of a JWKS document (`{"keys": [...]}`). Keys this server cannot use for
/// signatures (encryption keys, symmetric `oct` keys, other curves, private or malformed ones)
/// are skipped; at most [`MAX_KEYS`] are read.
pub fn parse_jwks(doc: &Value) -> Vec<Jwk> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    keys.iter().take(MAX_KEYS).filter_map(parse_jwk).collect()
}

fn parse_jwk(k: &Value) -> Option<Jwk> {
    let text = |name: &str| k.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(b64url_decode);
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = k.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return None;
        }
    }
    // A private key in a public document is a provider mistake; do not use it.
    if k.get("d").is_some() {
        return None;
    }
    let material = match text("kty")? {
        "RSA" => {
            let n = strip_zeros(bytes("n")?);
            let e = strip_zeros(bytes("e")?);
            if n.is_empty() || e.is_empty() || e.len() > 8 {
                return None;
            }
            Material::Rsa { n, e }
        }
        "EC" => {
            let curve = match text("crv")? {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                _ => return None,
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != curve.len() || y.len() != curve.len() {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * curve.len());
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::Ec { curve, point }
        }
        _ => return None,
    };
    let kid = match k.get("kid") {
        None => None,
        Some(Value::String(s)) if s.len() <= MAX_KID => Some(s.clone()),
        Some(_) => return None,
    };
    let alg = match k.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(a.clone()),
        Some(_) => return None,
    };
    Some(Jwk { kid, alg, material })
}

/// The key for a token: the one with its `kid` (which must suit the algorithm), or without a
/// `kid` the only key that suits it. [`Error::UnknownKey`] means a fresh key set might help.
pub fn select<'k>(keys: &'k [Jwk], jws: &Jws<'_>) -> Result<&'k Jwk, Error> {
    match &jws.kid {
        Some(kid) => {
            let mut named = keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
            let Some(first) = named.next() else {
                return Err(Error::UnknownKey);
            };
            // Two keys under one kid: take the one that suits (a provider may publish an RSA
            // and an EC key under the same name), refuse if both do.
            let suiting: Vec<&Jwk> = std::iter::once(first)
                .chain(named)
                .filter(|k| k.suits(jws.alg))
                .collect();
            match suiting.as_slice() {
                [one] => Ok(one),
                [] => Err(Error::KeyMismatch),
                _ => Err(Error::Malformed("several suitable keys share the kid")),
            }
        }
        None => {
            let suiting: Vec<&Jwk> = keys.iter().filter(|k| k.suits(jws.alg)).collect();
            match suiting.as_slice() {
                [one] => Ok(one),
                _ => Err(Error::UnknownKey),
            }
        }
    }
}

/// Verifies the token's signature with `key`. On success the payload may be read.
pub fn verify(jws: &Jws<'_>, key: &Jwk) -> Result<(), Error> {
    if !key.suits(jws.alg) {
        return Err(Error::KeyMismatch);
    }
    let msg = jws.signing_input.as_bytes();
    let sig = jws.signature.as_slice();
    let ok = match (&key.material, jws.alg) {
        (Material::Rsa { n, e }, alg) => {
            let params = match alg {
                Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                Alg::ES256 | Alg::ES384 => return Err(Error::KeyMismatch),
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, msg, sig)
                .is_ok()
        }
        (Material::Ec { point, .. }, Alg::ES256) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, sig)
                .is_ok()
        }
        (Material::Ec { point, .. }, Alg::ES384) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(msg, sig)
                .is_ok()
        }
        (Material::Ec { .. }, _) => return Err(Error::KeyMismatch),
    };
    if ok { Ok(()) } else { Err(Error::Signature) }
}

/// Signing keys and tokens for the unit tests (this module's and the fake identity provider's
/// in `oidc::fake`): ring signs, as a real provider would.
#[cfg(test)]
pub(crate) mod testkeys {
    use super::Alg;
    use crate::oauth::b64url;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
    use serde_json::{Value, json};

    /// Two fixed 2048-bit RSA keys, PKCS#1 DER (ring cannot generate RSA keys).
    pub const RSA_A: &[u8] = include_bytes!("../../../tests/data/oidc/rsa-a.der");
    pub const RSA_B: &[u8] = include_bytes!("../../../tests/data/oidc/rsa-b.der");

    /// A private key that signs as `alg`, with its public JWK.
    pub struct Signer {
        pub alg: Alg,
        pub kid: String,
        key: Key,
    }

    enum Key {
        Rsa(RsaKeyPair),
        Ec(EcdsaKeyPair),
    }

    impl Signer {
        /// An RSA signer from one of the fixed keys.
        pub fn rsa(der: &[u8], alg: Alg, kid: &str) -> Signer {
            let key = RsaKeyPair::from_der(der).expect("a valid fixed test key");
            Signer {
                alg,
                kid: kid.into(),
                key: Key::Rsa(key),
            }
        }

        /// A fresh EC key for ES256 or ES384.
        pub fn ec(alg: Alg, kid: &str) -> Signer {
            let rng = SystemRandom::new();
            let a = match alg {
                Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                _ => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            };
            let doc = EcdsaKeyPair::generate_pkcs8(a, &rng).expect("key generation");
            let key = EcdsaKeyPair::from_pkcs8(a, doc.as_ref(), &rng).expect("a generated key");
            Signer {
                alg,
                kid: kid.into(),
                key: Key::Ec(key),
            }
        }

        /// The public JWK (with `kid`, `use` and `alg`).
        pub fn jwk(&self) -> Value {
            match &self.key {
                Key::Rsa(k) => {
                    let c: RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                    json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": self.alg.as_str(),
                           "n": b64url(&c.n), "e": b64url(&c.e)})
                }
                Key::Ec(k) => {
                    let p = k.public_key().as_ref();
                    let half = (p.len() - 1) / 2;
                    let crv = if half == 32 { "P-256" } else { "P-384" };
                    json!({"kty": "EC", "kid": self.kid, "use": "sig", "alg": self.alg.as_str(),
                           "crv": crv, "x": b64url(&p[1..1 + half]), "y": b64url(&p[1 + half..])})
                }
            }
        }

        /// Signs `header.payload` as given (the header is used as is, for tampering tests).
        pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let rng = SystemRandom::new();
            let sig = match &self.key {
                Key::Rsa(k) => {
                    let enc: &dyn signature::RsaEncoding = match self.alg {
                        Alg::RS384 => &signature::RSA_PKCS1_SHA384,
                        Alg::RS512 => &signature::RSA_PKCS1_SHA512,
                        Alg::PS256 => &signature::RSA_PSS_SHA256,
                        Alg::PS384 => &signature::RSA_PSS_SHA384,
                        Alg::PS512 => &signature::RSA_PSS_SHA512,
                        _ => &signature::RSA_PKCS1_SHA256,
                    };
                    let mut sig = vec![0; k.public().modulus_len()];
                    k.sign(enc, &rng, input.as_bytes(), &mut sig)
                        .expect("signing");
                    sig
                }
                Key::Ec(k) => k
                    .sign(&rng, input.as_bytes())
                    .expect("signing")
                    .as_ref()
                    .to_vec(),
            };
            format!("{input}.{}", b64url(&sig))
        }

        /// A token with the usual header (`alg`, `kid`, `typ`).
        pub fn sign(&self, claims: &Value) -> String {
            self.sign_raw(
                &json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": "JWT"}),
                claims,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkeys::{RSA_A, RSA_B, Signer};
    use super::*;
    use crate::oauth::b64url;
    use serde_json::json;

    fn keys(signers: &[&Signer]) -> Vec<Jwk> {
        parse_jwks(&json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}))
    }

    fn check(token: &str, keys: &[Jwk]) -> Result<Vec<u8>, Error> {
        let jws = parse(token)?;
        let key = select(keys, &jws)?;
        verify(&jws, key)?;
        Ok(jws.payload().to_vec())
    }

    const CLAIMS: &str = r#"{"iss":"https://idp.example","sub":"123"}"#;

    fn claims() -> Value {
        serde_json::from_str(CLAIMS).unwrap()
    }

    #[test]
    fn every_accepted_algorithm_verifies_a_good_token() {
        let signers = [
            Signer::rsa(RSA_A, Alg::RS256, "rs256"),
            Signer::rsa(RSA_A, Alg::RS384, "rs384"),
            Signer::rsa(RSA_A, Alg::RS512, "rs512"),
            Signer::rsa(RSA_B, Alg::PS256, "ps256"),
            Signer::rsa(RSA_B, Alg::PS384, "ps384"),
            Signer::rsa(RSA_B, Alg::PS512, "ps512"),
            Signer::ec(Alg::ES256, "es256"),
            Signer::ec(Alg::ES384, "es384"),
        ];
        let all = keys(&signers.iter().collect::<Vec<_>>());
        assert_eq!(all.len(), 8);
        for s in &signers {
            let t = s.sign(&claims());
            let payload = check(&t, &all).unwrap_or_else(|e| panic!("{:?}: {e}", s.alg));
            assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap(), claims());
        }
    }

    #[test]
    fn any_tampering_is_refused() {
        let s = Signer::rsa(RSA_A, Alg::RS256, "a");
        let e = Signer::ec(Alg::ES256, "e");
        let ks = keys(&[&s, &e]);
        for signer in [&s, &e] {
            let t = signer.sign(&claims());
            let parts: Vec<&str> = t.split('.').collect();
            // Another payload under the old signature.
            let forged = b64url(br#"{"iss":"https://idp.example","sub":"124"}"#);
            let swapped = format!("{}.{forged}.{}", parts[0], parts[2]);
            assert_eq!(check(&swapped, &ks), Err(Error::Signature));
            // Every single bit of the signature, flipped.
            let sig = b64url_decode(parts[2]).unwrap();
            for i in 0..sig.len() * 8 {
                let mut bad = sig.clone();
                bad[i / 8] ^= 1 << (i % 8);
                let t = format!("{}.{}.{}", parts[0], parts[1], b64url(&bad));
                assert_eq!(check(&t, &ks), Err(Error::Signature), "bit {i}");
            }
            // A header changed after signing (the kid still names the key).
            let mut h: Value = serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
            h["x"] = json!(1);
            let t = format!(
                "{}.{}.{}",
                b64url(h.to_string().as_bytes()),
                parts[1],
                parts[2]
            );
            assert_eq!(check(&t, &ks), Err(Error::Signature));
            // Truncated and extended signatures; a missing part; a fourth part.
            assert!(check(&format!("{}.{}.", parts[0], parts[1]), &ks).is_err());
            assert!(check(&format!("{t}.x"), &ks).is_err());
            assert!(check(&format!("{}.{}", parts[0], parts[1]), &ks).is_err());
            let short = b64url(&sig[..sig.len() - 1]);
            assert_eq!(
                check(&format!("{}.{}.{short}", parts[0], parts[1]), &ks),
                Err(Error::Signature)
            );
        }
    }

    #[test]
    fn none_hmac_and_unknown_algorithms_are_refused_before_any_key() {
        let s = Signer::rsa(RSA_A, Alg::RS256, "a");
        let ks = keys(&[&s]);
        let payload = b64url(CLAIMS.as_bytes());
        for alg in [
            "none", "None", "HS256", "HS384", "HS512", "ES512", "EdDSA", "RS1", "",
        ] {
            let h = b64url(json!({"alg": alg, "kid": "a"}).to_string().as_bytes());
            for sig in ["", "AAAA"] {
                let t = format!("{h}.{payload}.{sig}");
                let e = check(&t, &ks).unwrap_err();
                assert!(
                    matches!(e, Error::Algorithm(_) | Error::Malformed(_)),
                    "{alg}: {e:?}"
                );
            }
        }
        // An HMAC "signature" computed with the RSA key's public modulus as the secret (the
        // classic confusion attack) never reaches a key.
        let t = s.sign_raw(&json!({"alg": "HS256", "kid": "a"}), &claims());
        assert!(matches!(check(&t, &ks), Err(Error::Algorithm(_))));
        // No alg, a non-string alg, crit, a foreign typ.
        for h in [
            json!({"kid": "a"}),
            json!({"alg": 256, "kid": "a"}),
            json!({"alg": "RS256", "kid": "a", "crit": ["exp"]}),
            json!({"alg": "RS256", "kid": "a", "typ": "at+jwt"}),
            json!({"alg": "RS256", "kid": 7}),
        ] {
            let t = s.sign_raw(&h, &claims());
            assert!(check(&t, &ks).is_err(), "{h}");
        }
        // typ JWT in any spelling is fine.
        for typ in ["JWT", "jwt", "application/jwt"] {
            let t = s.sign_raw(&json!({"alg": "RS256", "kid": "a", "typ": typ}), &claims());
            assert!(check(&t, &ks).is_ok(), "{typ}");
        }
    }

    #[test]
    fn a_key_is_used_only_for_its_own_algorithm() {
        let rsa = Signer::rsa(RSA_A, Alg::RS256, "k");
        let ec = Signer::ec(Alg::ES256, "k2");
        let ks = keys(&[&rsa, &ec]);
        // An ES256 token naming the RSA key's kid; an RS256 token naming the EC key's.
        let ec_as_rsa = ec.sign_raw(&json!({"alg": "ES256", "kid": "k"}), &claims());
        assert_eq!(check(&ec_as_rsa, &ks), Err(Error::KeyMismatch));
        let rsa_as_ec = rsa.sign_raw(&json!({"alg": "RS256", "kid": "k2"}), &claims());
        assert_eq!(check(&rsa_as_ec, &ks), Err(Error::KeyMismatch));
        // The key says RS256: a PS256 token (same RSA key) is refused.
        let ps = Signer::rsa(RSA_A, Alg::PS256, "k");
        assert_eq!(check(&ps.sign(&claims()), &ks), Err(Error::KeyMismatch));
        // Without alg in the JWK, the same key verifies PS256 too.
        let mut jwk = rsa.jwk();
        jwk.as_object_mut().unwrap().remove("alg");
        let loose = parse_jwks(&json!({"keys": [jwk]}));
        assert!(check(&ps.sign(&claims()), &loose).is_ok());
        // An ES384 token against a P-256 key.
        let es384 = Signer::ec(Alg::ES384, "k2");
        let t = es384.sign_raw(&json!({"alg": "ES384", "kid": "k2"}), &claims());
        assert_eq!(check(&t, &ks), Err(Error::KeyMismatch));
        // The right key type but another key: the signature fails.
        let other = Signer::rsa(RSA_B, Alg::RS256, "k");
        assert_eq!(check(&other.sign(&claims()), &ks), Err(Error::Signature));
    }

    #[test]
    fn keys_are_chosen_by_kid_or_as_the_only_suitable_one() {
        let a = Signer::rsa(RSA_A, Alg::RS256, "a");
        let b = Signer::rsa(RSA_B, Alg::RS256, "b");
        let t = b.sign(&claims());
        // kid unknown: the caller refetches once.
        assert_eq!(check(&t, &keys(&[&a])), Err(Error::UnknownKey));
        assert!(check(&t, &keys(&[&a, &b])).is_ok());
        // No kid: the only RSA key is used; with two, none is guessed.
        let no_kid = b.sign_raw(&json!({"alg": "RS256"}), &claims());
        assert!(check(&no_kid, &keys(&[&b])).is_ok());
        assert_eq!(check(&no_kid, &keys(&[&a, &b])), Err(Error::UnknownKey));
        assert_eq!(check(&no_kid, &keys(&[&a])), Err(Error::Signature));
        // An empty key set.
        assert_eq!(check(&t, &[]), Err(Error::UnknownKey));
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let a = Signer::rsa(RSA_A, Alg::RS256, "a");
        let good = a.jwk();
        let with = |k: &str, v: Value| {
            let mut j = good.clone();
            j[k] = v;
            j
        };
        let doc = json!({"keys": [
            with("use", json!("enc")),
            with("key_ops", json!(["encrypt"])),
            with("d", json!("AQAB")),
            with("kty", json!("oct")),
            with("n", json!("not base64!")),
            with("n", json!("AA==")),
            with("kid", json!(5)),
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
            "not an object",
            with("key_ops", json!(["verify"])),
        ]});
        let ks = parse_jwks(&doc);
        assert_eq!(ks.len(), 1, "{ks:?}");
        assert!(check(&a.sign(&claims()), &ks).is_ok());
        assert!(parse_jwks(&json!({"keys": "x"})).is_empty());
        assert!(parse_jwks(&json!([])).is_empty());
        // Bounded.
        let many = json!({"keys": vec![good.clone(); 100]});
        assert_eq!(parse_jwks(&many).len(), MAX_KEYS);
        // Leading zeros in n are harmless.
        let mut n = b64url_decode(good["n"].as_str().unwrap()).unwrap();
        n.insert(0, 0);
        let padded = parse_jwks(&json!({"keys": [with("n", json!(b64url(&n)))]}));
        assert!(check(&a.sign(&claims()), &padded).is_ok());
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode("").unwrap(), b"");
        assert_eq!(b64url_decode("YQ").unwrap(), b"a");
        assert_eq!(b64url_decode("YWI").unwrap(), b"ab");
        assert_eq!(b64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        for bad in ["YQ==", "Y", "YR", "a+b/", "YW I", "Y\u{e9}"] {
            assert_eq!(b64url_decode(bad), None, "{bad}");
        }
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(b64url_decode(&b64url(&bytes)).unwrap(), bytes);
        }
        // Size bound.
        let big = format!(
            "{}.{}.{}",
            "a".repeat(8000),
            "b".repeat(8000),
            "c".repeat(1000)
        );
        assert_eq!(
            parse(&big).unwrap_err(),
            Error::Malformed("longer than 16 KiB")
        );
    }
}
