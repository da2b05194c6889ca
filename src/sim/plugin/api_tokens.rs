//! The ApiTokenBundle plugin of the simulated Kimai (the Python kimai-mcp project's own plugin,
//! `kimai-plugin/ApiTokenBundle` in its 2.20.1 source distribution, whose PHP controller is the
//! reference): `GET /api/users/{id}/api-token` lists a user's token metadata, `POST` creates a
//! token and returns it once (201). It exists so that auto-provisioning (`serve
//! --auto-provision`) can be tested end to end; it is a separate plugin from WorkContract, off
//! unless `Options::api_token_plugin` (`kimai-mcp sim --api-token-plugin`) installs it.
//!
//! Behaviour, as the controller has it:
//! - permission: the `api-token` voter — anyone for their own profile, `api-token_other_profile`
//!   (ROLE_SUPER_ADMIN by default) for someone else's; else 403. An unknown user is 404 (entity
//!   load before the voter);
//! - body (all optional): `name` (string, trimmed, 2–50 characters, default "API token"),
//!   `expiresAt` (`Y-m-d` or `Y-m-dTH:i:s`, UTC here, in the future), `replaceExisting` (PHP's
//!   boolean filter: true/false, 1/0, "yes"/"no", "on"/"off"; anything else false). With
//!   `replaceExisting` the user's other tokens of the same name are deleted after the new one is
//!   created (here under the one state lock, so atomically);
//! - the token: 25 lowercase hex characters, as Kimai makes them; it authenticates like any
//!   Kimai API token (`api::auth`) until it expires, is replaced, revoked or its user disabled.
//!
//! Not simulated: `lastUsage` (always null), and the seeded token of each user, which predates
//! the plugin and is not listed.
//!
//! Runs on worker threads with the state mutex held by `api::handle`; no I/O under it.

use serde_json::{Value, json};

use crate::sim::data::{State, User, rank};
use crate::sim::time::{self, Tz};
use crate::sim::wire::{Answer, Req, Res, forbidden, not_found};

/// Kimai's name rules for an access token.
const NAME_MIN: usize = 2;
const NAME_MAX: usize = 50;
const DEFAULT_NAME: &str = "API token";
/// Tokens kept at most in the simulator (a bound for long test runs).
const MAX_TOKENS: usize = 10_000;

/// One token the plugin made.
#[derive(Clone, Debug)]
struct ApiToken {
    id: u64,
    user: u64,
    name: String,
    token: String,
    expires_at: Option<i64>,
}

/// The plugin's data: whether it is installed, and the tokens it made.
#[derive(Clone, Debug, Default)]
pub struct ApiTokens {
    pub installed: bool,
    tokens: Vec<ApiToken>,
    next_id: u64,
}

impl ApiTokens {
    /// The user a token made by the plugin authenticates (while it has not expired).
    pub fn owner(&self, token: &str, now: i64) -> Option<u64> {
        self.tokens
            .iter()
            .find(|t| t.token == token && t.expires_at.is_none_or(|e| e > now))
            .map(|t| t.user)
    }
}

/// The `/api/plugins` entry when installed.
pub fn plugin_entry(st: &State) -> Option<Value> {
    st.api_tokens
        .installed
        .then(|| json!({"name": "ApiTokenBundle", "version": "1.0.0"}))
}

/// The `api-token` voter: one's own profile, or someone else's with
/// `api-token_other_profile`.
fn may_manage(caller: &User, target: u64) -> bool {
    caller.id == target || rank(caller.role) >= 3
}

fn target(st: &State, caller: &User, id: u64) -> Result<u64, Answer> {
    st.user(id).ok_or_else(not_found)?;
    if !may_manage(caller, id) {
        return Err(forbidden());
    }
    Ok(id)
}

fn bad_request(message: &str) -> Answer {
    Answer::json(400, &json!({"code": 400, "message": message}))
}

fn date(ts: Option<i64>) -> Value {
    ts.map_or(Value::Null, |t| json!(time::format_datetime(t, Tz::Utc)))
}

fn metadata(t: &ApiToken) -> Value {
    json!({"id": t.id, "name": t.name, "lastUsage": null, "expiresAt": date(t.expires_at)})
}

/// `GET /api/users/{id}/api-token`.
pub fn list(st: &State, caller: &User, id: u64) -> Res {
    let user = target(st, caller, id)?;
    Ok(Answer::ok(Value::Array(
        st.api_tokens
            .tokens
            .iter()
            .filter(|t| t.user == user)
            .map(metadata)
            .collect(),
    )))
}

/// PHP's `filter_var(…, FILTER_VALIDATE_BOOL, FILTER_NULL_ON_FAILURE) ?? false`.
fn php_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "on" | "yes"
        ),
        _ => false,
    }
}

/// `expiresAt`: `Y-m-d` (midnight UTC) or `Y-m-dTH:i:s` with an optional zone (read as UTC).
fn parse_expiry(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() == 10 {
        return time::parse_date(s).map(|d| d * 86_400);
    }
    let (day, rest) = s.split_at_checked(10)?;
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let hms = rest.get(..8)?;
    let parts: Vec<i64> = hms.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    if *h > 23 || *m > 59 || *sec > 59 {
        return None;
    }
    Some(time::parse_date(day)? * 86_400 + h * 3600 + m * 60 + sec)
}

fn new_token() -> String {
    crate::secret::random_hex::<13>()
        .map(|h| h[..25].to_string())
        .unwrap_or_else(|_| "0".repeat(25))
}

/// `POST /api/users/{id}/api-token`.
pub fn create(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let user = target(st, caller, id)?;
    let payload: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| bad_request(&format!("Invalid JSON body: {e}")))?
    };
    let Value::Object(payload) = payload else {
        return Err(bad_request("Request body must be a JSON object"));
    };
    let name = match payload.get("name") {
        None | Some(Value::Null) => DEFAULT_NAME.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(bad_request("\"name\" must be a string")),
    };
    if !(NAME_MIN..=NAME_MAX).contains(&name.chars().count()) {
        return Err(bad_request(&format!(
            "\"name\" must be between {NAME_MIN} and {NAME_MAX} characters"
        )));
    }
    let expires_at = match payload.get("expiresAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let t =
                parse_expiry(s).ok_or_else(|| bad_request("\"expiresAt\" is not a valid date"))?;
            if t <= st.now() {
                return Err(bad_request("\"expiresAt\" must be in the future"));
            }
            Some(t)
        }
        Some(_) => return Err(bad_request("\"expiresAt\" must be a date string")),
    };
    let replace = php_bool(payload.get("replaceExisting"));
    let tokens = &mut st.api_tokens;
    // Created first, then the superseded ones go (the controller's order, in one transaction).
    let superseded: Vec<u64> = if replace {
        tokens
            .tokens
            .iter()
            .filter(|t| t.user == user && t.name == name)
            .map(|t| t.id)
            .collect()
    } else {
        Vec::new()
    };
    tokens.next_id += 1;
    let made = ApiToken {
        id: tokens.next_id,
        user,
        name,
        token: new_token(),
        expires_at,
    };
    tokens.tokens.push(made.clone());
    tokens.tokens.retain(|t| !superseded.contains(&t.id));
    if tokens.tokens.len() > MAX_TOKENS {
        tokens.tokens.remove(0);
    }
    let mut out = metadata(&made);
    out["token"] = json!(made.token);
    Ok(Answer::json(201, &out))
}

#[cfg(test)]
mod tests {
    use crate::sim::{Options, Sim};
    use serde_json::{Value, json};

    fn call(sim: &Sim, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/api{path}", sim.url());
        let auth = format!("Bearer {token}");
        let mut r = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
            (_, Some(b)) => agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b.to_string().as_bytes()),
            (_, None) => agent.post(&url).header("Authorization", &auth).send_empty(),
        }
        .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn with_plugin() -> Sim {
        Sim::start(Options {
            api_token_plugin: true,
            ..Options::default()
        })
        .unwrap()
    }

    #[test]
    fn an_admin_makes_a_token_that_then_works_as_that_user() {
        let sim = with_plugin();
        let admin = sim.admin_token();
        let (s, plugins) = call(&sim, "GET", "/plugins", &admin, None);
        assert_eq!(s, 200);
        assert!(
            plugins
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "ApiTokenBundle"),
            "{plugins}"
        );
        let (s, made) = call(
            &sim,
            "POST",
            "/users/5/api-token",
            &admin,
            Some(json!({"name": "Kimai MCP (auto)", "replaceExisting": true})),
        );
        assert_eq!(s, 201, "{made}");
        let token = made["token"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 25);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(made["name"], "Kimai MCP (auto)");
        assert_eq!(made["lastUsage"], Value::Null);
        assert_eq!(made["expiresAt"], Value::Null);
        let (s, me) = call(&sim, "GET", "/users/me", &token, None);
        assert_eq!((s, me["username"].as_str()), (200, Some("john_user")));
        // Listed without the token value.
        let (s, list) = call(&sim, "GET", "/users/5/api-token", &admin, None);
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(list[0].get("token").is_none());
        // replaceExisting: the new token works, the old one of that name does not; another
        // name is kept.
        let (_, other) = call(
            &sim,
            "POST",
            "/users/5/api-token",
            &admin,
            Some(json!({"name": "laptop"})),
        );
        let (s, again) = call(
            &sim,
            "POST",
            "/users/5/api-token",
            &admin,
            Some(json!({"name": "Kimai MCP (auto)", "replaceExisting": "yes"})),
        );
        assert_eq!(s, 201);
        assert_eq!(call(&sim, "GET", "/users/me", &token, None).0, 401);
        let new = again["token"].as_str().unwrap();
        assert_eq!(call(&sim, "GET", "/users/me", new, None).0, 200);
        assert_eq!(
            call(
                &sim,
                "GET",
                "/users/me",
                other["token"].as_str().unwrap(),
                None
            )
            .0,
            200
        );
        // "false" is false (PHP's boolean filter, not a cast): both survive.
        call(
            &sim,
            "POST",
            "/users/5/api-token",
            &admin,
            Some(json!({"name": "laptop", "replaceExisting": "false"})),
        );
        let (_, list) = call(&sim, "GET", "/users/5/api-token", &admin, None);
        assert_eq!(list.as_array().unwrap().len(), 3);
        // Revoked like any token.
        sim.revoke_token(new);
        assert_eq!(call(&sim, "GET", "/users/me", new, None).0, 401);
    }

    #[test]
    fn permissions_validation_and_a_kimai_without_the_plugin() {
        let sim = with_plugin();
        let admin = sim.admin_token();
        let john = sim.token("john_user").unwrap();
        let anna = sim.token("anna_admin").unwrap();
        // One's own profile: allowed; someone else's: super admin only; unknown user: 404.
        assert_eq!(call(&sim, "POST", "/users/5/api-token", &john, None).0, 201);
        assert_eq!(call(&sim, "POST", "/users/6/api-token", &john, None).0, 403);
        assert_eq!(call(&sim, "GET", "/users/6/api-token", &anna, None).0, 403);
        assert_eq!(
            call(&sim, "POST", "/users/999/api-token", &admin, None).0,
            404
        );
        assert_eq!(call(&sim, "GET", "/users/5/api-token", "nope", None).0, 401);
        for (body, want) in [
            (json!({"name": "x"}), "between 2 and 50"),
            (json!({"name": "y".repeat(51)}), "between 2 and 50"),
            (json!({"name": 5}), "must be a string"),
            (json!({"expiresAt": "2001-01-01"}), "in the future"),
            (json!({"expiresAt": "soon"}), "not a valid date"),
            (json!([1]), "JSON object"),
        ] {
            let (s, v) = call(
                &sim,
                "POST",
                "/users/5/api-token",
                &admin,
                Some(body.clone()),
            );
            assert_eq!(s, 400, "{body}");
            assert!(v["message"].as_str().unwrap().contains(want), "{body}: {v}");
        }
        // An expiry in the future is kept; the disabled user's token does not work.
        let (s, made) = call(
            &sim,
            "POST",
            "/users/8/api-token",
            &admin,
            Some(json!({"expiresAt": "2999-01-01T10:00:00"})),
        );
        assert_eq!(s, 201);
        assert_eq!(made["expiresAt"], "2999-01-01T10:00:00+0000");
        assert_eq!(made["name"], "API token");
        let t = made["token"].as_str().unwrap();
        assert_eq!(call(&sim, "GET", "/users/me", t, None).0, 401);
        // Without the plugin the routes do not exist and /plugins does not name it.
        let plain = Sim::start(Options::default()).unwrap();
        let admin = plain.admin_token();
        assert_eq!(
            call(&plain, "POST", "/users/5/api-token", &admin, None).0,
            404
        );
        assert_eq!(
            call(&plain, "GET", "/users/5/api-token", &admin, None).0,
            404
        );
        let (_, plugins) = call(&plain, "GET", "/plugins", &admin, None);
        assert!(!plugins.to_string().contains("ApiTokenBundle"));
    }
}
