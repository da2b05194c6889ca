//! "Does this Kimai URL and token work?": the version of the instance and the token's user,
//! as `kimai-mcp check`, `kimai-mcp setup` and the legacy SSE stream ask it when they start.

use super::{Client, Error, Request, Token};
use serde_json::Value;

/// The token's user, as `GET /api/users/me` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    pub username: String,
    pub id: Option<i64>,
    /// As Kimai lists them; a plain user has none listed (ROLE_USER is implied).
    pub roles: Vec<String>,
    pub timezone: Option<String>,
}

/// What the probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `(unknown version)` when Kimai's answer has none.
    pub version: String,
    pub me: Me,
}

impl Client {
    /// The Kimai version (`GET /api/version`).
    pub fn version(&self, token: &Token) -> Result<String, Error> {
        let r = self.call(token, &Request::get("/version"))?;
        Ok(r.body
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("(unknown version)")
            .to_string())
    }

    /// The token's user (`GET /api/users/me`).
    pub fn me(&self, token: &Token) -> Result<Me, Error> {
        let me = self.call(token, &Request::get("/users/me"))?.body;
        let text = |k: &str| me.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Me {
            username: text("username").unwrap_or_else(|| "?".into()),
            id: me.get("id").and_then(Value::as_i64),
            roles: me
                .get("roles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            timezone: text("timezone"),
        })
    }

    /// The version, then the token's user: the first failure ends it.
    pub fn probe(&self, token: &Token) -> Result<Probe, Error> {
        let version = self.version(token)?;
        let me = self.me(token)?;
        Ok(Probe { version, me })
    }
}
