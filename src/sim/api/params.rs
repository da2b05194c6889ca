//! Query-parameter helpers of the read endpoints (§7.10: strict, case-sensitive patterns;
//! unknown parameters ignored) and the `term` search of §7.8.

use crate::sim::time::{self, Tz};
use crate::sim::wire::{Answer, Req, bad, id};

pub(super) fn digits_param(req: &Req, name: &str) -> Result<Option<u64>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => id(v).map(Some).ok_or_else(bad),
    }
}

pub(super) fn id_array(req: &Req, name: &str) -> Result<Vec<u64>, Answer> {
    req.array(name)
        .into_iter()
        .map(|v| id(v).ok_or_else(bad))
        .collect()
}

pub(super) fn one_of<'a>(
    req: &'a Req,
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(_) => Err(bad()),
    }
}

/// Strict `YYYY-MM-DDTHH:MM:SS` in `tz` → unix seconds.
pub(super) fn date_param(req: &Req, name: &str, tz: Tz) -> Result<Option<i64>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => time::parse_local_strict(v)
            .map(|l| Some(tz.to_utc(l)))
            .ok_or_else(bad),
    }
}

pub(super) fn ascending(req: &Req, default_asc: bool) -> Result<bool, Answer> {
    Ok(match one_of(req, "order", &["ASC", "DESC"])? {
        Some(o) => o == "ASC",
        None => default_asc,
    })
}

/// §7.8: whitespace-separated words, all must match (AND); `!word` excludes; `field:value`
/// targets a custom field (substring, case-insensitive); `field:*` = has a value, `field:~` and
/// `field:""` = not set or empty. Entities without custom fields pass an empty `meta`.
pub(super) fn term_matches(term: &str, fields: &[Option<&str>]) -> bool {
    term_matches_meta(term, fields, &[])
}

pub(super) fn term_matches_meta(
    term: &str,
    fields: &[Option<&str>],
    meta: &[(String, String)],
) -> bool {
    term.split_whitespace().all(|word| {
        let (negate, word) = match word.strip_prefix('!') {
            Some(w) => (true, w),
            None => (false, word),
        };
        let hit = if let Some((name, value)) = word.split_once(':') {
            let stored = meta
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            match value {
                "~" | "\"\"" => stored.is_empty(),
                "*" => !stored.is_empty(),
                v => stored.to_lowercase().contains(&v.to_lowercase()),
            }
        } else {
            let w = word.to_lowercase();
            fields
                .iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(&w))
        };
        hit != negate
    })
}
