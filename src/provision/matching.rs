//! Which Kimai user an identity belongs to: the match rules of `--provision-match`, strongest
//! first. A wrong match hands one person another person's Kimai token, so each rule must find
//! exactly one enabled user; a rule that finds several stops the search ("ambiguous") instead
//! of falling through to a weaker one. Pure functions over Kimai's user list.
//!
//! The rules (2.20.1's; `exact` runs the first two, `normalized` (default) the first four,
//! `fuzzy` all six):
//! 1. `email`: the user's e-mail address is the identity (case-insensitive);
//! 2. `username==identity`: the user name is the identity;
//! 3. `username==local-part`: the user name is the part before `@`;
//! 4. `normalized`: the folded local part is a folded user name, alias or e-mail local part —
//!    only when the local part has at least two name parts (`anna.vondorf`, not `anna`: a
//!    given name alone is no identifier);
//! 5. `display-name` (fuzzy): the folded alias is the folded `name` claim, or `given_name` +
//!    `family_name` — again only with two name parts. These claims are profile fields people
//!    can often edit themselves;
//! 6. `name-part` (fuzzy): one whole name part of at least four letters in common (`anna@` and
//!    `anna.vondorf`), never a prefix.
//!
//! Folding: lowercase; ä ö ü ß å ø æ expanded as German and Nordic spellings do (ae, oe, ue,
//! ss, a, o, ae), other Latin diacritics dropped (é → e), in composed or decomposed form;
//! everything but letters and digits removed. 2.20.1 folds with Unicode NFC/NFKD; this
//! covers the Latin letters those reach (Latin-1 and Latin Extended-A) without a Unicode table
//! crate; other scripts are compared lowercased as written.

/// A user of Kimai's `GET /api/users` (`visible=3`: enabled and disabled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KimaiUser {
    pub id: i64,
    pub username: String,
    pub alias: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
}

impl KimaiUser {
    /// From one item of the list; None for an item without id or username.
    pub fn from_json(v: &serde_json::Value) -> Option<KimaiUser> {
        let text = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Some(KimaiUser {
            id: v.get("id")?.as_i64()?,
            username: text("username")?,
            alias: text("alias"),
            email: text("email"),
            // A list without the field is read as enabled: Kimai lists only enabled users
            // unless asked for more.
            enabled: v
                .get("enabled")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
        })
    }
}

/// The match rules, strongest first.
pub const RULES: [&str; 6] = [
    "email",
    "username==identity",
    "username==local-part",
    "normalized",
    "display-name",
    "name-part",
];

/// A name part must be this long to count as evidence in the `name-part` rule.
pub const MIN_NAME_PART: usize = 4;

/// Name claims of the ID token (for the fuzzy display-name rule).
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

impl Names {
    pub fn from_claims(claims: &serde_json::Value) -> Names {
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Names {
            name: text("name"),
            given_name: text("given_name"),
            family_name: text("family_name"),
        }
    }
}

/// What matching found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    Matched {
        user: &'a KimaiUser,
        rule: &'static str,
    },
    /// The identity cannot be matched at all (not an address, or a domain not allowed).
    Unsupported(String),
    /// A rule found several users (their user names).
    Ambiguous {
        rule: &'static str,
        usernames: Vec<String>,
    },
    /// No rule found an enabled user; the disabled users that would have matched, if any.
    NotFound { disabled: Vec<String> },
}

/// Folds one character (or, with the next, a base and a combining mark) to its comparable
/// form; pushed onto `out`.
fn fold_into(out: &mut String, c: char) {
    let s: &str = match c {
        'ä' | 'æ' => "ae",
        'ö' | 'œ' => "oe",
        'ü' => "ue",
        'ß' => "ss",
        'å' | 'à' | 'á' | 'â' | 'ã' | 'ā' | 'ă' | 'ą' => "a",
        'ø' | 'ò' | 'ó' | 'ô' | 'õ' | 'ō' | 'ŏ' | 'ő' => "o",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ţ' | 'ť' | 'ŧ' => "t",
        'ù' | 'ú' | 'û' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'þ' => "th",
        c if c.is_alphanumeric() => {
            out.push(c);
            return;
        }
        _ => return,
    };
    out.push_str(s);
}

/// The comparable form of a login or name ([module docs](self)).
pub fn fold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let chars: Vec<char> = value.trim().to_lowercase().chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mark = chars.get(i + 1).copied();
        // A decomposed umlaut (base + U+0308) folds like the composed one.
        if mark == Some('\u{308}') && matches!(c, 'a' | 'o' | 'u') {
            out.push(c);
            out.push('e');
            i += 2;
            continue;
        }
        if ('\u{300}'..='\u{36f}').contains(&c) {
            i += 1;
            continue;
        }
        fold_into(&mut out, c);
        i += 1;
    }
    out
}

/// The folded name parts of a login or display name, split at `.`, `-`, `_`, `+` and
/// spaces, of at least `min` characters.
pub fn name_parts(value: &str, min: usize) -> Vec<String> {
    let mut parts: Vec<String> = value
        .split(|c: char| matches!(c, '.' | '-' | '_' | '+') || c.is_whitespace())
        .map(fold)
        .filter(|p| p.chars().count() >= min)
        .collect();
    parts.sort();
    parts.dedup();
    parts
}

/// Whether a value names more than a single given name (two parts of any length).
pub fn is_multi_part(value: &str) -> bool {
    name_parts(value, 1).len() >= 2
}

fn local_part(address: &str) -> &str {
    address.split('@').next().unwrap_or(address)
}

/// The folded identifiers a user can be recognised by.
fn user_keys(u: &KimaiUser) -> Vec<String> {
    let mut keys = vec![fold(&u.username)];
    if let Some(a) = &u.alias {
        keys.push(fold(a));
    }
    if let Some(e) = &u.email {
        keys.push(fold(local_part(e)));
    }
    keys.retain(|k| !k.is_empty());
    keys
}

fn name_part_match(local: &str, u: &KimaiUser) -> bool {
    let mine = name_parts(local, MIN_NAME_PART);
    if mine.is_empty() {
        return false;
    }
    let folded_local = fold(local);
    let mut values = vec![u.username.as_str()];
    values.extend(u.alias.as_deref());
    values.extend(u.email.as_deref().map(local_part));
    values.iter().any(|v| {
        let parts = name_parts(v, MIN_NAME_PART);
        if !parts.iter().any(|p| mine.contains(p)) {
            return false;
        }
        let whole = fold(v);
        parts.contains(&folded_local) || (!whole.is_empty() && mine.contains(&whole))
    })
}

/// Whether `u` matches `identity` by `rule`.
fn rule_matches(rule: &str, u: &KimaiUser, identity: &str, names: &Names) -> bool {
    let id = identity.trim().to_lowercase();
    let local = local_part(&id);
    match rule {
        "email" => u
            .email
            .as_deref()
            .is_some_and(|e| e.trim().to_lowercase() == id),
        "username==identity" => u.username.trim().to_lowercase() == id,
        "username==local-part" => u.username.trim().to_lowercase() == local,
        "normalized" => is_multi_part(local) && user_keys(u).contains(&fold(local)),
        "display-name" => {
            let Some(alias) = u.alias.as_deref().map(fold).filter(|a| !a.is_empty()) else {
                return false;
            };
            let full = format!(
                "{} {}",
                names.given_name.as_deref().unwrap_or(""),
                names.family_name.as_deref().unwrap_or("")
            );
            let mut evidence = Vec::new();
            if let Some(n) = names.name.as_deref().filter(|n| is_multi_part(n)) {
                evidence.push(fold(n));
            }
            if is_multi_part(&full) {
                evidence.push(fold(&full));
            }
            evidence.contains(&alias)
        }
        "name-part" => name_part_match(local, u),
        _ => false,
    }
}

/// The rules `mode` runs.
pub fn rules_of(mode: crate::config::MatchMode) -> &'static [&'static str] {
    use crate::config::MatchMode;
    match mode {
        MatchMode::Exact => &RULES[..2],
        MatchMode::Normalized => &RULES[..4],
        MatchMode::Fuzzy => &RULES[..],
    }
}

/// Finds the one enabled Kimai user of `identity` ([module docs](self)). `allowed_domains`
/// (lowercase; empty: any) is checked first.
pub fn resolve<'a>(
    users: &'a [KimaiUser],
    identity: &str,
    names: &Names,
    mode: crate::config::MatchMode,
    allowed_domains: &[String],
) -> Outcome<'a> {
    let id = identity.trim().to_lowercase();
    let Some((_, domain)) = id.split_once('@') else {
        return Outcome::Unsupported(
            "the identity is not an e-mail address, so it cannot be matched to a Kimai user (map it with oidc_identity in users.json, or choose an address claim with --oidc-identity-claim)".into(),
        );
    };
    if !allowed_domains.is_empty() && !allowed_domains.iter().any(|d| d == domain) {
        return Outcome::Unsupported(format!(
            "the domain {domain} is not in --provision-allowed-domains ({})",
            allowed_domains.join(", ")
        ));
    }
    let rules = rules_of(mode);
    let enabled: Vec<&KimaiUser> = users.iter().filter(|u| u.enabled).collect();
    for &rule in rules {
        let found: Vec<&&KimaiUser> = enabled
            .iter()
            .filter(|u| rule_matches(rule, u, &id, names))
            .collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Outcome::Matched { user: one, rule },
            many => {
                let mut usernames: Vec<String> = many.iter().map(|u| u.username.clone()).collect();
                usernames.sort();
                return Outcome::Ambiguous { rule, usernames };
            }
        }
    }
    let mut disabled: Vec<String> = users
        .iter()
        .filter(|u| !u.enabled && rules.iter().any(|r| rule_matches(r, u, &id, names)))
        .map(|u| u.username.clone())
        .collect();
    disabled.sort();
    Outcome::NotFound { disabled }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MatchMode;

    fn user(id: i64, username: &str, alias: Option<&str>, email: &str) -> KimaiUser {
        KimaiUser {
            id,
            username: username.into(),
            alias: alias.map(str::to_string),
            email: Some(email.into()),
            enabled: true,
        }
    }

    fn users() -> Vec<KimaiUser> {
        vec![
            user(
                1,
                "anna.vondorf",
                Some("Anna von Dorf"),
                "a.dorf@corp.example",
            ),
            user(
                2,
                "jmueller",
                Some("Jürgen Müller"),
                "juergen.mueller@corp.example",
            ),
            user(3, "mstone", Some("Max"), "max@partner.example"),
            user(4, "tara_lead", Some("Tara Lead"), "tara_lead@corp.example"),
            user(5, "kai", None, "kai@corp.example"),
            KimaiUser {
                enabled: false,
                ..user(6, "olga", Some("Olga Former"), "olga@corp.example")
            },
            user(7, "sam_jones", None, "sam_jones@corp.example"),
            user(8, "samjones", None, "samjones@other.example"),
        ]
    }

    fn found(identity: &str, mode: MatchMode) -> Result<(i64, &'static str), String> {
        let us = users();
        match resolve(&us, identity, &Names::default(), mode, &[]) {
            Outcome::Matched { user, rule } => Ok((user.id, rule)),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn folding_expands_umlauts_and_drops_other_marks_composed_or_not() {
        assert_eq!(fold("Jürgen Müller"), "juergenmueller");
        assert_eq!(fold("Ju\u{308}rgen Mu\u{308}ller"), "juergenmueller");
        assert_eq!(fold("Anna von Dorf"), "annavondorf");
        assert_eq!(fold("A.von-Dorf"), "avondorf");
        assert_eq!(fold("Renée Ørsted-Łukasiewicz"), "reneeorstedlukasiewicz");
        assert_eq!(fold("Ce\u{301}line"), "celine");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("Дмитрий"), "дмитрий");
        assert_eq!(name_parts("anna.von-dorf", MIN_NAME_PART), ["anna", "dorf"]);
        assert!(is_multi_part("max.mustermann"));
        assert!(!is_multi_part("max"));
    }

    #[test]
    fn each_rule_finds_its_user_and_the_modes_stop_where_they_should() {
        // 1 email, case-insensitive.
        assert_eq!(
            found("A.Dorf@Corp.Example", MatchMode::Exact),
            Ok((1, "email"))
        );
        // 2 username == identity.
        let mut us = users();
        us.push(user(9, "zed@corp.example", None, "z@x.example"));
        assert!(matches!(
            resolve(
                &us,
                "ZED@corp.example",
                &Names::default(),
                MatchMode::Exact,
                &[]
            ),
            Outcome::Matched {
                rule: "username==identity",
                ..
            }
        ));
        // 3 username == local part.
        assert_eq!(
            found("anna.vondorf@corp.example", MatchMode::Normalized),
            Ok((1, "username==local-part"))
        );
        assert!(found("anna.vondorf@corp.example", MatchMode::Exact).is_err());
        // 4 normalized: tara.lead → tara_lead; Jürgen's address against his alias.
        assert_eq!(
            found("tara.lead@corp.example", MatchMode::Normalized),
            Ok((4, "normalized"))
        );
        assert_eq!(
            found("jürgen.müller@mail.example", MatchMode::Normalized),
            Ok((2, "normalized"))
        );
        // A single given name is no evidence: max@ does not match the alias Max or the
        // address max@partner.example.
        assert!(found("max@corp.example", MatchMode::Normalized).is_err());
        // 6 name-part, fuzzy only: a whole name part of the login.
        assert_eq!(
            found("vondorf@corp.example", MatchMode::Fuzzy),
            Ok((1, "name-part"))
        );
        assert!(found("anna@corp.example", MatchMode::Normalized).is_err());
        assert_eq!(
            found("anna@corp.example", MatchMode::Fuzzy),
            Ok((1, "name-part"))
        );
        // A prefix is not a name part.
        assert!(found("ann@corp.example", MatchMode::Fuzzy).is_err());
    }

    #[test]
    fn the_display_name_rule_needs_two_name_parts() {
        let us = users();
        let names = Names {
            name: Some("Tara Lead".into()),
            ..Names::default()
        };
        let o = resolve(&us, "t.l@corp.example", &names, MatchMode::Fuzzy, &[]);
        assert!(
            matches!(o, Outcome::Matched { user, rule: "display-name" } if user.id == 4),
            "{o:?}"
        );
        assert!(matches!(
            resolve(&us, "t.l@corp.example", &names, MatchMode::Normalized, &[]),
            Outcome::NotFound { .. }
        ));
        // Someone who renames themselves "Max" at the provider gets nothing.
        let max = Names {
            name: Some("Max".into()),
            given_name: Some("Max".into()),
            family_name: None,
        };
        assert!(matches!(
            resolve(&us, "x.y@corp.example", &max, MatchMode::Fuzzy, &[]),
            Outcome::NotFound { .. }
        ));
    }

    #[test]
    fn several_candidates_disabled_users_and_foreign_domains_are_refused() {
        let us = users();
        let o = resolve(
            &us,
            "sam.jones@corp.example",
            &Names::default(),
            MatchMode::Normalized,
            &[],
        );
        assert_eq!(
            o,
            Outcome::Ambiguous {
                rule: "normalized",
                usernames: vec!["sam_jones".into(), "samjones".into()]
            }
        );
        // A disabled user is never matched, and is named in the outcome for the log.
        let o = resolve(
            &us,
            "olga@corp.example",
            &Names::default(),
            MatchMode::Fuzzy,
            &[],
        );
        assert_eq!(
            o,
            Outcome::NotFound {
                disabled: vec!["olga".into()]
            }
        );
        // Not an address; a domain outside the list.
        assert!(matches!(
            resolve(
                &us,
                "00000000-guid",
                &Names::default(),
                MatchMode::Exact,
                &[]
            ),
            Outcome::Unsupported(_)
        ));
        let allowed = vec!["corp.example".to_string()];
        let o = resolve(
            &us,
            "a.dorf@evil.example",
            &Names::default(),
            MatchMode::Exact,
            &allowed,
        );
        assert!(
            matches!(&o, Outcome::Unsupported(m) if m.contains("evil.example is not in")),
            "{o:?}"
        );
        assert!(matches!(
            resolve(
                &us,
                "a.dorf@corp.example",
                &Names::default(),
                MatchMode::Exact,
                &allowed
            ),
            Outcome::Matched { .. }
        ));
        // Nobody.
        assert_eq!(
            resolve(
                &us,
                "nobody@corp.example",
                &Names::default(),
                MatchMode::Fuzzy,
                &[]
            ),
            Outcome::NotFound { disabled: vec![] }
        );
    }

    #[test]
    fn users_are_read_from_kimais_list() {
        let v = serde_json::json!({"id": 5, "username": "john_user", "alias": null,
                                   "email": "john@example.com", "enabled": false});
        let u = KimaiUser::from_json(&v).unwrap();
        assert_eq!((u.id, u.enabled, u.alias), (5, false, None));
        assert!(KimaiUser::from_json(&serde_json::json!({"id": 5})).is_none());
        assert!(KimaiUser::from_json(&serde_json::json!({"username": "x"})).is_none());
        assert!(
            KimaiUser::from_json(&serde_json::json!({"id": 1, "username": "x"}))
                .unwrap()
                .enabled
        );
    }
}
