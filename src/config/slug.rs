//! The rules for a `users.json` slug ([`check_slug`]): which keys are refused, which are
//! accepted with a low-entropy warning. Used when the users file is loaded; reasons name the
//! rule, never the slug.

use std::collections::HashSet;

/// Slugs shorter than this are refused outright.
pub const SLUG_MIN_CHARS: usize = 8;

/// Slugs shorter than this are accepted with a low-entropy warning (16 random characters from
/// the 64-symbol alphabet are 96 bits).
pub const SLUG_STRONG_CHARS: usize = 16;

/// Slugs longer than this are refused (they end up in URLs and client configs).
pub const SLUG_MAX_CHARS: usize = 128;

/// A slug with fewer distinct characters than this looks typed, not generated: 16 random
/// characters from 64 symbols almost always have 13 or more distinct ones.
pub const SLUG_MIN_DISTINCT_CHARS: usize = 10;

/// The verdict on a `users.json` key. Reasons never contain the slug (it is a secret and the
/// reason gets logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlugCheck {
    Ok,
    /// Accepted, with a low-entropy warning.
    Weak(String),
    /// Refused.
    Invalid(String),
}

/// Judges a `users.json` key (keys starting with `_` are comments and are filtered out by the
/// caller before this). Valid: 16 to 128 characters from `[A-Za-z0-9_-]`. Weak (accepted with a
/// warning):
/// - 8 to 15 characters;
/// - or it looks typed, not generated: fewer than [`SLUG_MIN_DISTINCT_CHARS`] distinct
///   characters, or a single character class (only lowercase, only uppercase or only digits),
///   or the shape of a word with a number (letters, then optionally digits: `Password2024`).
///
/// Anything else is invalid, with the reason.
pub fn check_slug(slug: &str) -> SlugCheck {
    if let Some(pos) = slug
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return SlugCheck::Invalid(format!(
            "character {} is not one of A-Z a-z 0-9 _ -",
            pos + 1
        ));
    }
    // ASCII only from here, so bytes are characters.
    let len = slug.len();
    if len < SLUG_MIN_CHARS {
        return SlugCheck::Invalid(format!(
            "{len} characters, at least {SLUG_MIN_CHARS} required ({SLUG_STRONG_CHARS} or more recommended)"
        ));
    }
    if len > SLUG_MAX_CHARS {
        return SlugCheck::Invalid(format!(
            "{len} characters, at most {SLUG_MAX_CHARS} allowed"
        ));
    }
    if len < SLUG_STRONG_CHARS {
        return SlugCheck::Weak(format!(
            "only {len} characters; use {SLUG_STRONG_CHARS} or more random ones"
        ));
    }
    let b = slug.as_bytes();
    let distinct = b.iter().collect::<HashSet<_>>().len();
    if distinct < SLUG_MIN_DISTINCT_CHARS {
        return SlugCheck::Weak(format!(
            "only {distinct} distinct characters; use a random slug"
        ));
    }
    let single_class = b.iter().all(u8::is_ascii_lowercase)
        || b.iter().all(u8::is_ascii_uppercase)
        || b.iter().all(u8::is_ascii_digit);
    if single_class {
        return SlugCheck::Weak("a single character class; use a random slug".to_string());
    }
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters > 0 && b[letters..].iter().all(u8::is_ascii_digit) {
        return SlugCheck::Weak("looks like a word with a number; use a random slug".to_string());
    }
    SlugCheck::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- slugs ---

    /// A generated-looking slug of `n` characters.
    fn random_looking(n: usize) -> String {
        "k7Q2xZp9-Lm4_Vb8RtcW".chars().cycle().take(n).collect()
    }

    #[test]
    fn slugs_valid_weak_and_invalid() {
        assert_eq!(check_slug("k7Q2xZp9-Lm4_Vb8Rt"), SlugCheck::Ok);
        assert_eq!(
            check_slug("550e8400-e29b-41d4-a716-446655440000"),
            SlugCheck::Ok
        );
        assert_eq!(
            check_slug("3f9a1c7e5b2d4086af13c9e7b5d20468"),
            SlugCheck::Ok
        );
        assert_eq!(
            check_slug(&random_looking(16)),
            SlugCheck::Ok,
            "16 characters"
        );
        assert_eq!(
            check_slug(&random_looking(128)),
            SlugCheck::Ok,
            "128 characters"
        );

        let weak = |s: &str| matches!(check_slug(s), SlugCheck::Weak(_));
        assert!(weak("k7Q2xZp9"), "8 characters");
        assert!(weak("k7Q2xZp9-Lm4_Vb"), "15 characters");
        assert!(weak("correcthorsebatterystaple"), "only lowercase");
        assert!(weak("CORRECTHORSEBATTERY"), "only uppercase");
        assert!(weak("12345678901234567890"), "only digits");
        assert!(weak("abababababababab1"), "few distinct characters");
        assert!(
            weak("a1-b2_c3Da1-b2_c3D"),
            "9 distinct characters, mixed classes"
        );
        assert_eq!(
            check_slug("a1-b2_c3D4a1-b2_c3D4"),
            SlugCheck::Ok,
            "10 distinct"
        );
        assert!(weak("CorrectHorseBattery2024"), "word and number");

        let invalid = |s: &str| matches!(check_slug(s), SlugCheck::Invalid(_));
        assert!(invalid(""));
        assert!(invalid("k7Q2xZp"), "7 characters");
        assert!(invalid(&random_looking(129)), "129 characters");
        assert!(invalid("k7Q2xZp9/Lm4_Vb8Rt"));
        assert!(invalid("k7Q2xZp9 Lm4_Vb8Rt"));
        assert!(invalid("k7Q2xZp9.Lm4_Vb8Rt"));
        assert!(invalid("k7Q2xZp9-Lm4_Vb8Rä"));
    }

    #[test]
    fn slug_reasons_never_contain_the_slug() {
        for slug in ["k7Q2x/Zp9Lm4Vb8Rt", "k7Q2xZp9", "passwordpassword", "k7Q"] {
            match check_slug(slug) {
                SlugCheck::Weak(why) | SlugCheck::Invalid(why) => {
                    assert!(!why.contains(slug), "{why}");
                    assert!(!why.contains("k7Q"), "{why}");
                    assert!(!why.contains("password"), "{why}");
                }
                SlugCheck::Ok => panic!("{slug} should not be Ok"),
            }
        }
    }
}
