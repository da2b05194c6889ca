//! Dynamic client registration (RFC 7591): [`OAuth::register`] checks a client's metadata
//! (redirect URIs, grant types, the token endpoint authentication method), bounds registrations
//! per client address and in total, and stores the client with its secret as a digest.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::encoding::{check_redirect_uri, digest_hex, random_secret};
use super::tables::Client;
use super::{AuthMethod, OAuth, OAuthError, now_ms, short};

impl OAuth {
    /// Registers a client from its metadata, for a caller at `ip`; the answer for a 201.
    pub fn register(&self, meta: &Value, ip: IpAddr) -> Result<Value, OAuthError> {
        let bad = |d: String| OAuthError::new(400, "invalid_client_metadata", d);
        let Value::Object(m) = meta else {
            return Err(bad("the registration must be a JSON object".into()));
        };
        let uris = match m.get("redirect_uris") {
            Some(Value::Array(a)) if !a.is_empty() && a.len() <= 10 => a,
            Some(Value::Array(a)) if a.len() > 10 => {
                return Err(OAuthError::new(
                    400,
                    "invalid_redirect_uri",
                    "at most 10 redirect_uris",
                ));
            }
            _ => {
                return Err(OAuthError::new(
                    400,
                    "invalid_redirect_uri",
                    "redirect_uris is required: a list of the client's callback URLs",
                ));
            }
        };
        let mut redirect_uris = Vec::new();
        for u in uris {
            let Some(u) = u.as_str() else {
                return Err(OAuthError::new(
                    400,
                    "invalid_redirect_uri",
                    "redirect_uris must be strings",
                ));
            };
            check_redirect_uri(u).map_err(|d| OAuthError::new(400, "invalid_redirect_uri", d))?;
            redirect_uris.push(u.to_string());
        }
        let auth_method = match m.get("token_endpoint_auth_method") {
            None | Some(Value::Null) => AuthMethod::ClientSecretBasic,
            Some(Value::String(s)) => AuthMethod::parse(s).ok_or_else(|| {
                bad("token_endpoint_auth_method must be none, client_secret_post or client_secret_basic".into())
            })?,
            Some(_) => return Err(bad("token_endpoint_auth_method must be a string".into())),
        };
        let strings = |key: &str, default: &[&str]| -> Result<Vec<String>, OAuthError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(default.iter().map(|s| s.to_string()).collect()),
                Some(Value::Array(a)) if a.len() <= 10 => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("{key} must be a list of strings"))),
                Some(_) => Err(bad(format!("{key} must be a list of strings"))),
            }
        };
        let grant_types = strings("grant_types", &["authorization_code"])?;
        if let Some(g) = grant_types
            .iter()
            .find(|g| !["authorization_code", "refresh_token"].contains(&g.as_str()))
        {
            return Err(bad(format!(
                "grant type {:?} is not supported (only authorization_code and refresh_token)",
                g.chars().take(40).collect::<String>()
            )));
        }
        if !grant_types.iter().any(|g| g == "authorization_code") {
            return Err(bad("grant_types must include authorization_code".into()));
        }
        let response_types = strings("response_types", &["code"])?;
        if response_types.iter().any(|r| r != "code") {
            return Err(bad("only the response type code is supported".into()));
        }
        let name = match m.get("client_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let clean: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
                (!clean.trim().is_empty()).then(|| clean.trim().to_string())
            }
            Some(_) => return Err(bad("client_name must be a string".into())),
        };
        let client_id = random_secret("kmc_");
        let secret = (auth_method != AuthMethod::None).then(|| random_secret("kmcs_"));
        let now = now_ms();
        let client = Client {
            secret_hash: secret.as_deref().map(digest_hex),
            auth_method,
            redirect_uris: redirect_uris.clone(),
            name: name.clone(),
            grant_types: grant_types.clone(),
            created: now,
            last_used: now,
        };
        if let Some(store) = self.store() {
            self.shared_count_registration(store, ip)?;
            self.shared_put_client(store, &client_id, &client)?;
        } else {
            let mut t = self.lock();
            let ip = ip.to_canonical();
            t.check_registration_rate(&self.settings, ip, now)?;
            if t.clients.len() >= self.settings.max_clients {
                t.make_room_for_client(&self.settings, now)?;
            }
            t.put_client(&client_id, client);
            t.count_registration(&self.settings, ip, now);
            drop(t);
            self.save();
        }
        log::info!(
            target: "kimai_mcp::audit",
            "oauth: registered client {} ({}, {})",
            short(&client_id),
            name.as_deref().unwrap_or("unnamed").chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(40).collect::<String>(),
            auth_method.as_str()
        );
        let mut out = json!({
            "client_id": client_id,
            "client_id_issued_at": now / 1000,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": auth_method.as_str(),
            "grant_types": grant_types,
            "response_types": ["code"],
        });
        if let Some(n) = name {
            out["client_name"] = Value::String(n);
        }
        if let Some(s) = secret {
            out["client_secret"] = Value::String(s);
            out["client_secret_expires_at"] = json!(0);
        }
        Ok(out)
    }
}
