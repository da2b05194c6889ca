//! Random values from the operating system, and their hex form: session ids, server tokens,
//! slugs, per-process keys. One place, so that every secret comes from the same source and a
//! failure of that source reads the same everywhere. Imports nothing of ours.

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(b)
}

/// Lowercase hex, two characters a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// `N` random bytes as `2N` lowercase hex characters.
pub fn random_hex<const N: usize>() -> Result<String, String> {
    random_bytes::<N>().map(|b| hex(&b))
}

/// A random slug for `users.json`: 24 URL-safe characters (144 bits), the first a letter or a
/// digit. A leading `_` would make the entry a comment (in the Python server too) and a
/// leading `-` reads as an option on command lines, so such draws are drawn again (the result
/// stays uniform over the slugs that qualify).
pub fn random_slug() -> Result<String, String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    loop {
        let b = random_bytes::<24>()?;
        // 64 symbols: each byte's low 6 bits pick one uniformly.
        let s: String = b
            .iter()
            .map(|x| ALPHABET[usize::from(x & 63)] as char)
            .collect();
        if s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_random_values() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let a = random_hex::<16>().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex::<16>().unwrap());
    }

    #[test]
    fn slugs_never_start_with_an_underscore_or_a_dash() {
        // With a free first character, 2 of 64 draws start so: in 2,000 draws about 62 would.
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..2000 {
            let s = random_slug().unwrap();
            assert_eq!(s.len(), 24);
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{s}"
            );
            let first = s.chars().next().unwrap();
            assert!(first.is_ascii_alphanumeric(), "{s}");
            firsts.insert(first);
        }
        assert!(
            firsts.len() > 50,
            "first characters are spread: {}",
            firsts.len()
        );
    }
}
