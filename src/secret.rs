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
}
