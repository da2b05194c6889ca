//! Authentication of an API request (§1.1, §1.2): the Bearer token, the legacy `X-AUTH-*`
//! headers (always refused), revoked and disabled accounts.

use serde_json::json;

use crate::sim::data::{State, User};
use crate::sim::wire::{Answer, Req};

/// Contract §1.1: `Bearer<whitespace><token>` with token chars `[A-Za-z0-9-_+~/.]` (Symfony's
/// extractor also allows trailing `=` padding). Anything else counts as no credentials.
fn bearer(header: &str) -> Option<&str> {
    let rest = header.strip_prefix("Bearer")?;
    let token = rest.trim_start_matches([' ', '\t']);
    if token.len() == rest.len() || token.is_empty() {
        return None;
    }
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+~/.".contains(&b))
    {
        return None;
    }
    Some(token)
}

fn invalid_token(description: &str) -> Answer {
    Answer::empty(401).header(
        "WWW-Authenticate",
        format!("Bearer error=\"invalid_token\",error_description=\"{description}\""),
    )
}

pub(super) fn authenticate(st: &State, req: &Req) -> Result<User, Answer> {
    let Some(token) = req.authorization.as_deref().and_then(bearer) else {
        // §1.2: the legacy scheme is only considered when both headers are present. Seeded
        // users have no API password (`apiToken: false`), so a non-empty pair always fails.
        // Not simulated: the 200–500 ms delay and the 5-per-minute limit (→ 400).
        return Err(match &req.x_auth {
            Some((user, _)) if user.is_empty() => Answer::json(
                403,
                &json!({"message": "Authentication required, missing user header: X-AUTH-USER"}),
            ),
            Some((_, token)) if token.is_empty() => Answer::json(
                403,
                &json!({"message": "Authentication required, missing token header: X-AUTH-TOKEN"}),
            ),
            Some(_) => Answer::json(403, &json!({"message": "Invalid credentials"})),
            None => Answer::error(401),
        });
    };
    if st.revoked.iter().any(|t| t == token) {
        return Err(invalid_token("Invalid credentials."));
    }
    let plugin_token = || {
        let id = st.api_tokens.owner(token, st.now())?;
        st.users.iter().find(|u| u.id == id)
    };
    match st
        .users
        .iter()
        .find(|u| u.token == token)
        .or_else(plugin_token)
    {
        None => Err(invalid_token("Invalid credentials.")),
        Some(u) if !u.enabled => Err(invalid_token("Account is disabled.")),
        Some(u) => Ok(u.clone()),
    }
}
