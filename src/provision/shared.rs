//! Provisioned people in the shared state store (`serve --state` with `--auto-provision`), so
//! that a person provisioned through one instance is served by every other with the same Kimai
//! token — provisioning again elsewhere would replace (and so revoke) that token.
//!
//! An entry holds a usable Kimai API token, so the store never sees it in clear: each entry is
//! sealed with AES-256-GCM under a key derived from `--state-key-file` (a file every instance
//! has, like the users file, and the store does not), with a random nonce and the identity's
//! digest as associated data (an entry cannot be moved to another identity). Keys are digests
//! of the identity and the slug. One instance provisions an identity at a time (a lock with a
//! 30 s expiry); the others wait for its entry.

use super::store::{Saved, entry_json, parse_entry};
use crate::oauth::{b64_decode, b64url, digest_hex};
use crate::state::{Store, Unreachable};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::sync::Arc;
use std::time::Duration;

/// How long one instance holds the provisioning of an identity at most.
pub const LOCK_TTL: Duration = Duration::from_secs(30);

pub struct Shared {
    store: Arc<Store>,
    key: LessSafeKey,
}

fn identity_key(identity: &str) -> String {
    format!(
        "prov:{}",
        digest_hex(&crate::config::users::identity_key(identity))
    )
}

fn slug_key(slug: &str) -> String {
    format!("provslug:{}", digest_hex(slug))
}

impl Shared {
    /// `secret` is `--state-key-file`'s key.
    pub fn new(store: Arc<Store>, secret: &[u8; 32]) -> Shared {
        let derived = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            b"kimai-mcp provisioned users",
        );
        let unbound = UnboundKey::new(&AES_256_GCM, derived.as_ref())
            .unwrap_or_else(|_| unreachable!("a SHA-256 output is an AES-256 key"));
        Shared {
            store,
            key: LessSafeKey::new(unbound),
        }
    }

    fn seal(&self, aad: &str, plain: &[u8]) -> Option<String> {
        let nonce_bytes = crate::secret::random_bytes::<NONCE_LEN>().ok()?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .ok()?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Some(b64url(&out))
    }

    fn open(&self, aad: &str, sealed: &str) -> Option<Vec<u8>> {
        let mut bytes = b64_decode(sealed)?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let mut rest = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut rest)
            .ok()?;
        Some(plain.to_vec())
    }

    /// The entry of `identity`, if one instance provisioned it. An entry the key cannot open
    /// (another `--state-key-file`) is logged and treated as absent.
    pub fn get(&self, identity: &str) -> Result<Option<Saved>, Unreachable> {
        let key = identity_key(identity);
        let Some(sealed) = self.store.oauth_get(&key)? else {
            return Ok(None);
        };
        let saved = self
            .open(&key, &sealed)
            .and_then(|plain| serde_json::from_slice::<serde_json::Value>(&plain).ok())
            .and_then(|v| parse_entry(identity, &v));
        if saved.is_none() {
            log::error!(
                "provisioning: a provisioned person's entry in the shared store cannot be opened: do all instances have the same --state-key-file? The person is provisioned again"
            );
        }
        Ok(saved)
    }

    /// The entry behind a slug.
    pub fn by_slug(&self, slug: &str) -> Result<Option<Saved>, Unreachable> {
        let Some(key) = self.store.oauth_get(&slug_key(slug))? else {
            return Ok(None);
        };
        let Some(sealed) = self.store.oauth_get(&key)? else {
            return Ok(None);
        };
        let Some(v) = self
            .open(&key, &sealed)
            .and_then(|plain| serde_json::from_slice::<serde_json::Value>(&plain).ok())
        else {
            return Ok(None);
        };
        // The identity is inside the sealed entry.
        let identity = v
            .get("identity")
            .and_then(|i| i.as_str())
            .unwrap_or_default();
        Ok(parse_entry(identity, &v).filter(|s| s.slug == slug))
    }

    /// Stores an entry (replacing the identity's earlier one).
    pub fn put(&self, s: &Saved) -> Result<(), Unreachable> {
        let key = identity_key(&s.identity);
        let mut v = entry_json(s);
        v["identity"] = serde_json::Value::String(s.identity.clone());
        let Some(sealed) = self.seal(&key, v.to_string().as_bytes()) else {
            return Err(Unreachable);
        };
        self.store.oauth_set(&key, &sealed, None, false)?;
        self.store
            .oauth_set(&slug_key(&s.slug), &key, None, false)?;
        Ok(())
    }

    /// Forgets an entry.
    pub fn forget(&self, identity: &str, slug: &str) -> Result<(), Unreachable> {
        self.store
            .oauth_del(&[&identity_key(identity), &slug_key(slug)])
    }

    /// Takes the provisioning of `identity` for this instance: false when another holds it.
    pub fn lock(&self, identity: &str) -> Result<bool, Unreachable> {
        let key = format!("provlock:{}", &identity_key(identity)["prov:".len()..]);
        self.store.oauth_set(&key, "1", Some(LOCK_TTL), true)
    }

    pub fn unlock(&self, identity: &str) {
        let key = format!("provlock:{}", &identity_key(identity)["prov:".len()..]);
        let _ = self.store.oauth_del(&[&key]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Shared` whose store is never contacted (the store connects lazily).
    fn shared(secret: u8) -> Shared {
        let store = crate::state::testing::store_at("redis://127.0.0.1:1/0");
        Shared::new(Arc::new(store), &[secret; 32])
    }

    #[test]
    fn sealed_entries_open_only_with_the_same_key_and_identity() {
        let a = shared(7);
        let sealed = a.seal("prov:one", b"kmt_the-token").unwrap();
        assert!(!sealed.contains("the-token"));
        assert_eq!(a.open("prov:one", &sealed).unwrap(), b"kmt_the-token");
        // Another identity's key, another --state-key-file, or a flipped byte: nothing.
        assert_eq!(a.open("prov:two", &sealed), None);
        assert_eq!(shared(8).open("prov:one", &sealed), None);
        let mut bytes = b64_decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(a.open("prov:one", &b64url(&bytes)), None);
        assert_eq!(a.open("prov:one", "AAAA"), None);
        // A fresh nonce each time.
        assert_ne!(
            a.seal("prov:one", b"x").unwrap(),
            a.seal("prov:one", b"x").unwrap()
        );
    }
}
