//! A fake OpenID Connect provider for the unit tests (tiny_http on a loopback thread, port 0,
//! stopped in `Drop`), as cargo's fake registry is a fake crates.io: discovery, a key set, an
//! authorization endpoint that signs the next person in at once (no login page: the browser
//! side is tested against the real `oidc-provider` in `tests/interop/oidc.sh`), and a token
//! endpoint that checks the code, the PKCE verifier, the redirect URI and the client's
//! credentials the way a provider must, then signs an ID token with ring.
//!
//! What the next sign-in gets is scripted through [`Fake::state`]: the account's claims, claims
//! to override or remove (a wrong nonce, an expired token, another issuer …), the signer (key
//! rotation, a key the provider never published), and whether discovery and keys answer at all.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use super::jws::testkeys::Signer;
use crate::oauth::{parse_form, random_secret, s256};

/// What the fake does on the next requests.
pub(crate) struct State {
    /// The key that signs ID tokens.
    pub signer: Arc<Signer>,
    /// The keys the key set publishes.
    pub published: Vec<Arc<Signer>>,
    /// The claims of the person who signs in next (besides iss, aud, exp, iat, nonce).
    pub account: Value,
    /// Claims set on the next ID tokens after the standard ones (a `null` removes one).
    pub overrides: Value,
    /// The client it accepts.
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Discovery and the key set answer 503 while this is set.
    pub down: bool,
    /// What the authorization endpoint answers instead of a code (`error=...`).
    pub deny: Option<String>,
    /// The issuer written into the discovery document (default: the fake's own URL).
    pub discovery_issuer: Option<String>,
    /// Requests seen, by path.
    pub hits: HashMap<String, usize>,
    /// The parameters of the last authorization request.
    pub last_authorize: HashMap<String, String>,
    /// How the last token request authenticated the client: "basic", "post" or "none".
    pub last_client_auth: String,
    codes: HashMap<String, Grant>,
}

struct Grant {
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    account: Value,
}

pub(crate) struct Fake {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Fake {
    /// A provider signing with `signer`, for the client `kimai-mcp` with the secret
    /// `client-secret-0123456789`.
    pub(crate) fn start(signer: Signer) -> Fake {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let issuer = format!("http://127.0.0.1:{port}/idp");
        let signer = Arc::new(signer);
        let state = Arc::new(Mutex::new(State {
            published: vec![signer.clone()],
            signer,
            account: json!({"sub": "u-1", "email": "ann@corp.example", "email_verified": true}),
            overrides: json!({}),
            client_id: "kimai-mcp".into(),
            client_secret: Some("client-secret-0123456789".into()),
            down: false,
            deny: None,
            discovery_issuer: None,
            hits: HashMap::new(),
            last_authorize: HashMap::new(),
            last_client_auth: String::new(),
            codes: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stop2, iss) = (state.clone(), stop.clone(), issuer.clone());
        let thread = std::thread::Builder::new()
            .name("fake-idp".into())
            .spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    let Ok(Some(mut rq)) = server.recv_timeout(Duration::from_millis(20)) else {
                        continue;
                    };
                    let mut body = String::new();
                    let _ = rq.as_reader().take(1 << 16).read_to_string(&mut body);
                    let auth = rq
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                        .map(|h| h.value.as_str().to_string());
                    let (status, headers, text) = handle(&st, &iss, rq.url(), &body, auth);
                    let mut resp = tiny_http::Response::from_string(text).with_status_code(status);
                    for (k, v) in headers {
                        resp = resp.with_header(
                            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes())
                                .expect("a valid header"),
                        );
                    }
                    let _ = rq.respond(resp);
                }
            })
            .expect("spawn the fake provider");
        Fake {
            issuer,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.state().hits.get(path).copied().unwrap_or(0)
    }
}

type Answer = (u16, Vec<(String, String)>, String);

fn json_answer(status: u16, v: Value) -> Answer {
    (
        status,
        vec![("Content-Type".into(), "application/json".into())],
        v.to_string(),
    )
}

fn handle(
    st: &Arc<Mutex<State>>,
    issuer: &str,
    url: &str,
    body: &str,
    auth: Option<String>,
) -> Answer {
    let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    *s.hits.entry(path.to_string()).or_default() += 1;
    match path {
        "/idp/.well-known/openid-configuration" => {
            if s.down {
                return json_answer(503, json!({}));
            }
            let doc_issuer = s.discovery_issuer.clone().unwrap_or(issuer.to_string());
            json_answer(
                200,
                json!({
                    "issuer": doc_issuer,
                    "authorization_endpoint": format!("{issuer}/auth"),
                    "token_endpoint": format!("{issuer}/token"),
                    "jwks_uri": format!("{issuer}/jwks"),
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                }),
            )
        }
        "/idp/jwks" => {
            if s.down {
                return json_answer(503, json!({}));
            }
            let keys: Vec<Value> = s.published.iter().map(|k| k.jwk()).collect();
            json_answer(200, json!({ "keys": keys }))
        }
        "/idp/auth" => {
            let p = parse_form(query).unwrap_or_default();
            s.last_authorize = p.clone();
            let redirect = p.get("redirect_uri").cloned().unwrap_or_default();
            let state = p.get("state").cloned().unwrap_or_default();
            if let Some(error) = s.deny.clone() {
                let loc =
                    crate::oauth::with_query(&redirect, &[("error", &error), ("state", &state)]);
                return (302, vec![("Location".into(), loc)], String::new());
            }
            let code = random_secret("c");
            let grant = Grant {
                nonce: p.get("nonce").cloned(),
                challenge: p.get("code_challenge").cloned().unwrap_or_default(),
                redirect_uri: redirect.clone(),
                account: s.account.clone(),
            };
            s.codes.insert(code.clone(), grant);
            let loc = crate::oauth::with_query(
                &redirect,
                &[("code", &code), ("state", &state), ("iss", issuer)],
            );
            (302, vec![("Location".into(), loc)], String::new())
        }
        "/idp/token" => {
            let p = parse_form(body).unwrap_or_default();
            let bad = |e: &str| json_answer(400, json!({"error": e}));
            // Client authentication.
            let (id, secret, how) = match &auth {
                Some(a) if a.starts_with("Basic ") => {
                    let raw = crate::oauth::b64_decode(&a[6..]).unwrap_or_default();
                    let text = String::from_utf8(raw).unwrap_or_default();
                    let (i, sec) = text.split_once(':').unwrap_or(("", ""));
                    (i.to_string(), Some(sec.to_string()), "basic")
                }
                _ => match p.get("client_secret") {
                    Some(sec) => (
                        p.get("client_id").cloned().unwrap_or_default(),
                        Some(sec.clone()),
                        "post",
                    ),
                    None => (
                        p.get("client_id").cloned().unwrap_or_default(),
                        None,
                        "none",
                    ),
                },
            };
            s.last_client_auth = how.into();
            if id != s.client_id || secret != s.client_secret {
                return json_answer(401, json!({"error": "invalid_client"}));
            }
            let Some(code) = p.get("code") else {
                return bad("invalid_request");
            };
            let Some(grant) = s.codes.remove(code) else {
                return bad("invalid_grant");
            };
            if p.get("redirect_uri") != Some(&grant.redirect_uri)
                || p.get("grant_type").map(String::as_str) != Some("authorization_code")
                || p.get("code_verifier").map(|v| s256(v)) != Some(grant.challenge.clone())
            {
                return bad("invalid_grant");
            }
            let t = now();
            let mut claims = json!({
                "iss": issuer, "aud": s.client_id, "exp": t + 300, "iat": t,
            });
            if let Some(n) = grant.nonce {
                claims["nonce"] = json!(n);
            }
            for (k, v) in grant.account.as_object().into_iter().flatten() {
                claims[k] = v.clone();
            }
            for (k, v) in s.overrides.as_object().into_iter().flatten() {
                if v.is_null() {
                    claims.as_object_mut().map(|o| o.remove(k));
                } else {
                    claims[k] = v.clone();
                }
            }
            let id_token = s.signer.sign(&claims);
            json_answer(
                200,
                json!({"access_token": random_secret("at"), "token_type": "Bearer",
                       "expires_in": 300, "id_token": id_token}),
            )
        }
        _ => json_answer(404, json!({"error": "not found"})),
    }
}
