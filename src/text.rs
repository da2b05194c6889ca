//! Renders text that came from Kimai (or a client) so that it cannot forge lines or records in a
//! tool result or a log line. Used by the tools for their output and by the transports for
//! what they log about a client; imports nothing of ours.
//!
//! Everything a Kimai user can type (names, descriptions, comments, preference values) ends up
//! in front of a model. A value with a line break could start what looks like a new record;
//! bidi or zero-width characters could hide text. Such values are shown JSON-quoted (with every
//! invisible or control character escaped), which is lossless: the model can still read and
//! write back the exact value. Plain values are shown as they are.

/// Characters that must never appear raw in output: controls (including line and paragraph
/// separators), bidi embeddings/overrides/isolates, zero-width characters and the BOM.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// Quote characters (and look-alikes) that could make a value look like the end of a quoted one.
fn is_quote_like(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '`' | '\u{2018}'
            ..='\u{201F}' | '\u{00AB}' | '\u{00BB}' | '\u{FF02}' | '\u{FF07}'
    )
}

/// True when a value must be quoted to be shown unambiguously on one line.
pub fn is_ambiguous(s: &str) -> bool {
    s.is_empty()
        || s.chars().any(is_hidden)
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace)
        || s.starts_with(is_quote_like)
}

/// JSON-quotes `s`, escaping every hidden character as `\uXXXX` (serde_json would leave bidi
/// and zero-width characters raw).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_hidden(c) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value from Kimai, shown safely on one line: as it is when plain, JSON-quoted otherwise.
pub fn safe(s: &str) -> String {
    if is_ambiguous(s) {
        quote(s)
    } else {
        s.to_string()
    }
}

/// Like [`safe`], for an optional value; `None` and empty show as `(none)`.
pub fn safe_opt(s: Option<&str>) -> String {
    match s {
        None => "(none)".to_string(),
        Some("") => "(empty)".to_string(),
        Some(s) => safe(s),
    }
}

/// A name from the input, quoted and cut to 64 characters, for an error message.
pub fn quote_name(name: &str) -> String {
    let short: String = name.chars().take(64).collect();
    quote(&short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_pass_unchanged() {
        assert_eq!(safe("Acme GmbH"), "Acme GmbH");
        assert_eq!(safe("Müller & Söhne – Café"), "Müller & Söhne – Café");
        assert_eq!(safe("a \"quoted\" word"), "a \"quoted\" word");
    }

    #[test]
    fn values_that_could_forge_lines_are_quoted() {
        assert_eq!(safe("x\nID: 99 | forged"), "\"x\\nID: 99 | forged\"");
        assert_eq!(safe("a\r\nb"), "\"a\\r\\nb\"");
        assert_eq!(safe("line\u{2028}sep"), "\"line\\u2028sep\"");
        assert_eq!(safe("evil\u{202E}txt"), "\"evil\\u202etxt\"");
        assert_eq!(safe("zero\u{200B}width"), "\"zero\\u200bwidth\"");
        assert_eq!(safe(" padded"), "\" padded\"");
        assert_eq!(safe("\"starts with quote"), "\"\\\"starts with quote\"");
        assert_eq!(safe("\u{201C}smart"), "\"\u{201C}smart\"");
        assert_eq!(safe(""), "\"\"");
    }

    #[test]
    fn quoting_is_lossless_json() {
        for s in [
            "x\ny",
            "tab\there",
            "back\\slash\n",
            "bidi\u{202E}",
            "nul\u{0}",
        ] {
            let q = quote(s);
            assert!(!q.contains('\n') && !q.contains('\u{202E}'));
            let back: String = serde_json::from_str(&q).unwrap();
            assert_eq!(back, s);
        }
    }
}
