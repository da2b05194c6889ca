//! Secret comparison in constant time: [`ct_eq`] for one secret, [`token_matches`] for a list of
//! valid tokens (several during a rotation). Pure functions; they never log or return a secret.

/// Constant-time equality of two secrets. The length may leak through timing (tokens have a
/// public format); the content must not, so every byte of `a` is compared, differences are
/// OR-accumulated, and there is no early return.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // A length mismatch is folded into the accumulator instead of returning early, so the loop
    // below runs for every presented byte either way.
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    // black_box keeps the optimizer from turning the accumulation into an early exit.
    std::hint::black_box(diff) == 0
}

/// True if `presented` equals any of `valid` (several during a token rotation). Every entry is
/// compared, so the timing does not reveal which one matched. An empty presented token never
/// matches, so that an empty entry in the configured list (`"a,,b"`) cannot open the door to a
/// request with an empty `Authorization: Bearer ` header.
pub fn token_matches(presented: &str, valid: &[String]) -> bool {
    let mut any = false;
    for v in valid {
        // `|` and not `||`: no short-circuit.
        any |= ct_eq(presented.as_bytes(), v.as_bytes());
    }
    any & !presented.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- secrets ---

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"secret-token", b"secret-token"));
        assert!(!ct_eq(b"secret-token", b"secret-tokem"));
        assert!(!ct_eq(b"Xecret-token", b"secret-token"));
        assert!(!ct_eq(b"secret", b"secret-token"));
        assert!(!ct_eq(b"secret-token", b"secret"));
        // A prefix padded with NULs must not equal the longer value (the padding in ct_eq).
        assert!(!ct_eq(b"ab\0", b"ab"));
        assert!(!ct_eq(b"ab", b"ab\0"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"", b"x"));
        assert!(!ct_eq(b"x", b""));
    }

    #[test]
    fn token_matches_any_token_of_a_rotation() {
        let valid = vec!["old-token-1234".to_string(), "new-token-5678".to_string()];
        assert!(token_matches("old-token-1234", &valid));
        assert!(token_matches("new-token-5678", &valid));
        assert!(!token_matches("new-token-567", &valid));
        assert!(!token_matches("other", &valid));
        assert!(!token_matches("old-token-1234", &[]));
    }

    #[test]
    fn token_matches_never_accepts_an_empty_token() {
        let valid = vec!["a".to_string(), String::new()];
        assert!(!token_matches("", &valid));
        assert!(token_matches("a", &valid));
    }
}
