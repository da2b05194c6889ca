//! The browser side of sign-in through the identity provider (`--auth-backend oidc`,
//! `crate::oauth::oidc`): the page that names the application and sends the person on to
//! their provider, the start of the provider's flow, and `/oauth/oidc/callback`.
//!
//! `/authorize` validates the MCP client's request as with the local form and opens
//! `/oauth/login?txn=…`; with the identity provider that page holds no fields, only the
//! application's name, where the person returns to, and "Continue with <provider>". That one
//! click is deliberate: this server signs every registered application in with one client id
//! at the provider, and a provider that remembers the person would otherwise sign them in
//! for an application they never saw (the MCP security best practices require consent per
//! dynamically registered client for exactly this case). The form is CSRF-protected like the
//! local one; its POST starts the provider's flow and binds it to this browser with a cookie
//! (`kmoidc_…`, `HttpOnly`, `SameSite=Lax` so that it comes back on the provider's redirect,
//! `Path=/oauth/oidc`).
//!
//! Every refusal after that — another browser, the provider's `error`, a code or ID token that
//! does not verify, no usable identity, no user for it, a provisioning that cannot be done —
//! shows the same neutral page (403) with a reference, ends the MCP client's request with
//! `access_denied` at its redirect URI (a link, followed by itself after a few seconds, so
//! the client does not wait forever), and logs the reason with the reference. The page never
//! says which of these it was: it must not tell a stranger whether an address has a Kimai
//! account. The log never holds the code, a token or the client secret.

use super::app::{App, Ctx};
use super::oauth::{
    MapReply, cookie, csp_source, escape, expired_request, html_error, page, redirect,
};
use super::server::{Handled, Request};
use crate::oauth::oidc::{self, Oidc};
use crate::oauth::{self, OAuth, PendingView};
use std::sync::Arc;

/// Seconds after which the neutral page sends the browser back to the application by itself.
const RETURN_AFTER_SECS: u32 = 8;

/// The origin of the provider's sign-in page, for our pages' CSP `form-action`.
fn provider_origin(oidc: &Oidc) -> Result<String, oidc::provider::Error> {
    let meta = oidc.provider().metadata()?;
    Ok(oauth::uri_origin(&meta.authorization_endpoint).unwrap_or_default())
}

/// The host people see the provider by.
fn provider_host(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, h)| h)
}

/// `GET /oauth/login` with the identity provider: the application, where the person returns,
/// and the button that goes on to the provider. Err: the provider cannot be reached (the
/// request ends with `temporarily_unavailable`).
pub(super) fn continue_page(
    app: &Arc<App>,
    oidc: &Oidc,
    oauth: &OAuth,
    txn: &str,
    view: &PendingView,
) -> Handled {
    let idp = match provider_origin(oidc) {
        Ok(o) => o,
        Err(e) => return unavailable(app, oauth, txn, &e),
    };
    let app_name = view
        .client_name
        .as_deref()
        .map(|n| format!("<strong>{}</strong>", escape(n)))
        .unwrap_or_else(|| "An application".into());
    let app_name = match &view.document_host {
        Some(host) => format!(
            "{app_name} (described by <strong>{}</strong>)",
            escape(host)
        ),
        None => app_name,
    };
    let back_to = oauth::uri_origin(&view.redirect_uri).unwrap_or_default();
    let host = escape(provider_host(&idp));
    let body = format!(
        "<h1>Sign in to Kimai MCP</h1>\n<p>{app_name} asks to use your Kimai account through this server. You sign in with your organisation's account at <strong>{host}</strong>, then return to <strong>{}</strong>.</p>\n<form method=\"post\" action=\"/oauth/login\">\n<input type=\"hidden\" name=\"txn\" value=\"{}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n<div class=\"buttons\">\n<button type=\"submit\" name=\"action\" value=\"continue\" autofocus>Continue with {host}</button>\n<button type=\"submit\" name=\"action\" value=\"deny\" class=\"secondary\">Cancel</button>\n</div>\n</form>\n<p class=\"hint\">Continue only if you started this sign-in from that application yourself.</p>\n",
        escape(&back_to),
        escape(txn),
        escape(&view.csrf),
    );
    let mut sources = csp_source(&view.redirect_uri);
    let idp_source = csp_source(&idp);
    if !idp_source.is_empty() {
        sources = format!("{sources} {idp_source}").trim().to_string();
    }
    page(200, "Sign in", &body, &sources)
}

/// The form's "Continue": starts the provider's flow and sends the browser there.
pub(super) fn start(app: &Arc<App>, oidc: &Oidc, oauth: &OAuth, txn: &str) -> Handled {
    match oidc.start(txn) {
        Ok(started) => {
            let secure = oauth.origin.starts_with("https://");
            let set_cookie = format!(
                "{}={}; Path=/oauth/oidc; Max-Age={}; HttpOnly; SameSite=Lax{}",
                started.cookie_name,
                started.cookie_value,
                oauth.settings().request_ttl.as_secs(),
                if secure { "; Secure" } else { "" }
            );
            app.metrics.oauth("oidc_started");
            redirect(&started.url).map_reply(|r| r.header("Set-Cookie", set_cookie))
        }
        Err(e) => unavailable(app, oauth, txn, &e),
    }
}

/// The provider cannot be reached: the request ends with `temporarily_unavailable`.
fn unavailable(app: &Arc<App>, oauth: &OAuth, txn: &str, e: &oidc::provider::Error) -> Handled {
    log::error!("oidc: cannot start a sign-in at the identity provider: {e}");
    app.metrics.oauth("oidc_unavailable");
    let url = oauth.deny_with(
        txn,
        "temporarily_unavailable",
        "the identity provider cannot be reached",
    );
    let back = url
        .as_deref()
        .map(|u| {
            format!(
                "<p><a href=\"{}\">Return to the application</a></p>\n",
                escape(u)
            )
        })
        .unwrap_or_default();
    page(
        503,
        "Sign-in unavailable",
        &format!(
            "<h1>Sign-in unavailable</h1>\n<p role=\"alert\" class=\"alert\">This server cannot reach your organisation's sign-in service right now. Try again in a few minutes.</p>\n{back}"
        ),
        "",
    )
    .map_reply(|r| r.header("Retry-After", "60"))
}

/// A short random reference that ties the neutral page to its log line.
fn reference() -> String {
    crate::secret::random_hex::<4>().unwrap_or_else(|_| "--------".into())
}

/// Every refusal after the provider: the reason to the log, the neutral page to the person,
/// `access_denied` to the application.
fn refuse(app: &Arc<App>, oauth: &OAuth, ctx: &Ctx, txn: &str, reason: &str) -> Handled {
    let reference = reference();
    log::warn!(
        target: "kimai_mcp::audit",
        "oauth: identity-provider sign-in refused from {} (reference {reference}): {reason}",
        ctx.ip
    );
    app.metrics.oauth("oidc_refused");
    let url = oauth.deny_with(txn, "access_denied", "the sign-in was refused");
    neutral_page(url.as_deref(), &reference)
}

/// The one page every refusal shows.
fn neutral_page(return_to: Option<&str>, reference: &str) -> Handled {
    let back = return_to
        .map(|u| {
            format!(
                "<p><a href=\"{}\">Return to the application</a> (it opens by itself in a few seconds)</p>\n",
                escape(u)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign-in not possible</h1>\n<p role=\"alert\" class=\"alert\">Your account could not be connected to Kimai through this server.</p>\n<p>If you should have access, ask your administrator and give them this reference: <strong>{}</strong>.</p>\n{back}",
        escape(reference)
    );
    let refresh = return_to.map(|u| format!("{RETURN_AFTER_SECS};url={u}"));
    page(403, "Sign-in not possible", &body, "").map_reply(|r| match refresh {
        // The Refresh header does what <meta http-equiv=refresh> does, and needs no markup.
        Some(v) => r.header("Refresh", v),
        None => r,
    })
}

/// `GET /oauth/oidc/callback`: the provider sends the browser back here.
pub(super) fn callback(app: &Arc<App>, ctx: &Ctx, req: &Request) -> Result<Handled, Handled> {
    let (Some(oauth), Some(oidc)) = (app.oauth.as_ref(), app.oidc.as_ref()) else {
        return Err(super::reply::json_error(
            404,
            crate::mcp::code::SERVER_ERROR,
            "Not Found",
        ));
    };
    // GET only: a HEAD (a prefetch) must not use up the sign-in.
    if req.method != "GET" {
        return Err(super::reply::method_not_allowed("GET"));
    }
    let p = oauth::parse_form(&req.query).map_err(|_| {
        html_error(
            400,
            "The answer of the identity provider is malformed. Go back to your application and start the sign-in again.",
        )
    })?;
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let state = get("state").unwrap_or("");
    let Some(login) = oidc.take(state) else {
        log::info!(
            target: "kimai_mcp::audit",
            "oauth: identity-provider callback from {} with an unknown or expired state",
            ctx.ip
        );
        return Err(html_error(
            400,
            "Invalid or expired sign-in state. Go back to your application and start the sign-in again.",
        ));
    };
    let clear = format!(
        "{}=; Path=/oauth/oidc; Max-Age=0; HttpOnly; SameSite=Lax",
        oidc::cookie_name(state)
    );
    let txn = login.txn.clone();
    if oauth.pending(&txn).is_none() {
        return Err(expired_request());
    }
    let out = finish(app, oidc, oauth, ctx, req, state, &login, &p);
    let out = match out {
        Ok(h) | Err(h) => h,
    };
    Ok(out.map_reply(|r| r.header("Set-Cookie", clear)))
}

#[allow(clippy::too_many_arguments)] // the callback's facts, each checked once here
fn finish(
    app: &Arc<App>,
    oidc: &Oidc,
    oauth: &OAuth,
    ctx: &Ctx,
    req: &Request,
    state: &str,
    login: &oidc::Login,
    p: &std::collections::HashMap<String, String>,
) -> Result<Handled, Handled> {
    let txn = login.txn.as_str();
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let fail = |reason: &str| refuse(app, oauth, ctx, txn, reason);
    if !login.same_browser(cookie(req, &oidc::cookie_name(state)).as_deref()) {
        return Err(fail(
            "the callback came from a browser that did not start this sign-in (its cookie is missing or wrong)",
        ));
    }
    if let Some(error) = get("error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(fail(&format!(
            "the identity provider answered error={error}"
        )));
    }
    // RFC 9207: a provider that names itself must be ours (a mix-up otherwise).
    if let Some(iss) = get("iss") {
        let ours = oidc.provider().metadata().map(|m| m.issuer.clone());
        if ours.as_deref().is_ok_and(|o| o != iss) {
            return Err(fail(
                "the callback's iss is not the identity provider's issuer",
            ));
        }
    }
    let Some(code) = get("code") else {
        return Err(fail("the identity provider sent no code"));
    };
    if code.len() > 4096 {
        return Err(fail("the identity provider's code is too long"));
    }
    let signed = oidc.finish(login, code).map_err(|e| fail(&e.to_string()))?;
    let identity = &signed.identity;
    let (slug, label) = match user_for(app, identity, &signed.claims) {
        Ok(found) => found,
        Err(reason) => return Err(fail(&reason)),
    };
    match oauth.approve(txn, &slug) {
        Some(url) => {
            app.metrics.oauth("sign_in");
            app.metrics.oauth("oidc_sign_in");
            log::info!(
                target: "kimai_mcp::audit",
                "oauth: {label} signed in through the identity provider ({} {}) from {}",
                identity.claim,
                identity.value,
                ctx.ip
            );
            Ok(redirect(&url))
        }
        None => Err(expired_request()),
    }
}

/// The user an identity signs in as: the users-file entry with that `oidc_identity`. The
/// slug and the user's audit label; else why not (for the log).
fn user_for(
    app: &Arc<App>,
    identity: &oidc::Identity,
    claims: &serde_json::Value,
) -> Result<(String, String), String> {
    let users = app.users();
    if let Some((slug, user)) = users.by_identity(&identity.value) {
        return Ok((slug.clone(), user.label()));
    }
    let Some(provisioner) = app.provisioner.as_ref() else {
        return Err(format!(
            "no user in the users file has the oidc_identity {} ({} claim), and auto-provisioning is off",
            identity.value, identity.claim
        ));
    };
    if let Some((slug, user)) = provisioner.find(&identity.value) {
        return Ok((slug, user.label()));
    }
    // Provisioning needs an address; one from the e-mail claim only when it is verified,
    // which `id_token::identity` has made sure of.
    provisioner
        .provision(&identity.value, claims)
        .map(|(slug, user)| (slug, user.label()))
        .map_err(|why| format!("{} ({} claim) {why}", identity.value, identity.claim))
}

#[cfg(test)]
pub(crate) mod tests {
    //! The whole path in-process: `serve` with `--auth-backend oidc` against the fake provider
    //! (`oauth::oidc::fake`) and the simulated Kimai, driven by a scripted browser (ureq with
    //! a hand-kept cookie jar): registration, `/authorize`, the continue page, the provider,
    //! the callback, the code exchange and a tool call as the person; and each refusal.

    use crate::config::Command;
    use crate::http::Running;
    use crate::oauth::oidc::fake::Fake;
    use crate::oauth::oidc::jws::Alg;
    use crate::oauth::oidc::jws::testkeys::{RSA_A, Signer};
    use crate::oauth::{parse_form, random_secret, s256};
    use crate::sim::{Options, Sim};
    use serde_json::{Value, json};
    use std::collections::HashMap;

    pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/cb";

    pub(crate) struct World {
        pub(crate) sim: Sim,
        pub(crate) fake: Fake,
        pub(crate) running: Running,
        pub(crate) base: String,
        agent: ureq::Agent,
    }

    pub(crate) struct Answer {
        pub(crate) status: u16,
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: String,
    }

    impl Answer {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        fn cookies(&self) -> Vec<(String, String)> {
            self.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
                .filter_map(|(_, v)| {
                    let first = v.split(';').next()?;
                    let (k, v) = first.split_once('=')?;
                    Some((k.to_string(), v.to_string()))
                })
                .collect()
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// `serve` with the identity provider; `users` maps slug to (sim user, oidc_identity);
    /// `extra` are more serve flags, `env` more variables.
    pub(crate) fn world(
        users: &[(&str, &str, Option<&str>)],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> World {
        let sim = Sim::start(Options {
            api_token_plugin: true,
            ..Options::default()
        })
        .unwrap();
        let fake = Fake::start(Signer::rsa(RSA_A, Alg::RS256, "k1"));
        let port = free_port().to_string();
        let base = format!("http://127.0.0.1:{port}");
        let running = serve(&sim, &fake, &base, &port, users, extra, env);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        World {
            sim,
            fake,
            running,
            base,
            agent,
        }
    }

    /// One `serve` instance for `world` (public URL `base`, listening on `port`).
    pub(crate) fn serve(
        sim: &Sim,
        fake: &Fake,
        base: &str,
        port: &str,
        users: &[(&str, &str, Option<&str>)],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Running {
        let mut args: Vec<String> = [
            "serve",
            "--port",
            port,
            "--public-url",
            base,
            "--rate-limit-rpm",
            "0",
            "--server-token",
            "test-server-token-0123456789abcdef",
            "--auth-backend",
            "oidc",
            "--oidc-issuer",
            &fake.issuer,
            "--oidc-client-id",
            "kimai-mcp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(
            extra
                .iter()
                .map(|s| s.replace("{sim}", &sim.url()).to_string()),
        );
        let mut vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert(
            "KIMAI_MCP_OIDC_CLIENT_SECRET".into(),
            "client-secret-0123456789".into(),
        );
        vars.insert("KIMAI_MCP_PROVISION_ADMIN_TOKEN".into(), sim.admin_token());
        let Ok(Command::Serve(cfg)) =
            crate::config::parse(args.iter().map(std::ffi::OsString::from).collect(), &|k| {
                vars.get(k).cloned()
            })
        else {
            panic!("serve options did not parse")
        };
        let mut file = serde_json::Map::new();
        for (slug, who, identity) in users {
            let mut e = json!({"kimai_url": sim.url(), "kimai_token": sim.token(who).unwrap()});
            if let Some(i) = identity {
                e["oidc_identity"] = json!(i);
            }
            file.insert(slug.to_string(), e);
        }
        let users = crate::config::users::parse(&Value::Object(file).to_string(), "test").unwrap();
        crate::http::start(
            cfg,
            users,
            vec!["test-server-token-0123456789abcdef".into()],
            crate::guard::EnumerationSettings::default(),
        )
        .unwrap()
    }

    impl World {
        pub(crate) fn get(&self, url: &str, cookies: &[(String, String)]) -> Answer {
            let mut r = self.agent.get(url);
            if !cookies.is_empty() {
                let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                r = r.header("Cookie", c.join("; "));
            }
            answer(r.call().unwrap())
        }

        pub(crate) fn post(
            &self,
            path: &str,
            content_type: &str,
            body: &str,
            cookies: &[(String, String)],
        ) -> Answer {
            let mut r = self
                .agent
                .post(format!("{}{path}", self.base))
                .header("Content-Type", content_type);
            if !cookies.is_empty() {
                let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                r = r.header("Cookie", c.join("; "));
            }
            answer(r.send(body.as_bytes()).unwrap())
        }

        pub(crate) fn register(&self) -> String {
            let a = self.post(
                "/register",
                "application/json",
                &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                        "client_name": "Test client"})
                .to_string(),
                &[],
            );
            assert_eq!(a.status, 201, "{}", a.body);
            serde_json::from_str::<Value>(&a.body).unwrap()["client_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    }

    fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A browser at the point where the continue page is shown.
    pub(crate) struct Browser {
        pub(crate) client_id: String,
        pub(crate) verifier: String,
        pub(crate) state: String,
        pub(crate) txn: String,
        pub(crate) csrf: String,
        pub(crate) jar: Vec<(String, String)>,
        pub(crate) page: Answer,
    }

    pub(crate) fn open(w: &World) -> Browser {
        let client_id = w.register();
        let verifier = random_secret("");
        let state = random_secret("");
        let url = crate::oauth::with_query(
            &format!("{}/authorize", w.base),
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT),
                ("code_challenge", &s256(&verifier)),
                ("code_challenge_method", "S256"),
                ("state", &state),
            ],
        );
        let a = w.get(&url, &[]);
        assert_eq!(a.status, 302, "{}", a.body);
        let loc = a.header("location").unwrap().to_string();
        assert!(loc.starts_with("/oauth/login?txn="), "{loc}");
        let txn = loc["/oauth/login?txn=".len()..].to_string();
        let page = w.get(&format!("{}{loc}", w.base), &[]);
        let jar = page.cookies();
        let csrf = page
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        Browser {
            client_id,
            verifier,
            state,
            txn,
            csrf,
            jar,
            page,
        }
    }

    /// From the continue page through the provider to our callback: the callback's answer.
    pub(crate) fn through_provider(w: &World, b: &mut Browser) -> Answer {
        let to_idp = to_provider(w, b);
        let cb = back_from_provider(w, &to_idp);
        w.get(&cb, &b.jar)
    }

    /// "Continue" on the page: the provider's sign-in URL (the browser's cookie is kept).
    pub(crate) fn to_provider(w: &World, b: &mut Browser) -> String {
        let form = format!(
            "txn={}&csrf={}&action=continue",
            b.txn,
            crate::oauth::form_encode(&b.csrf)
        );
        let a = w.post(
            "/oauth/login",
            "application/x-www-form-urlencoded",
            &form,
            &b.jar,
        );
        assert_eq!(a.status, 302, "{}", a.body);
        b.jar.extend(a.cookies());
        let to_idp = a.header("location").unwrap().to_string();
        assert!(
            to_idp.starts_with(&format!("{}/auth?", w.fake.issuer)),
            "{to_idp}"
        );
        to_idp
    }

    /// The provider signs the person in: the URL of our callback it sends the browser to.
    pub(crate) fn back_from_provider(w: &World, to_idp: &str) -> String {
        let back = w.get(to_idp, &[]);
        let cb = back.header("location").unwrap().to_string();
        assert!(
            cb.starts_with(&format!("{}/oauth/oidc/callback?", w.base)),
            "{cb}"
        );
        cb
    }

    /// The parameters the application's redirect URI gets, from a 302 or a neutral page.
    pub(crate) fn at_redirect(a: &Answer) -> HashMap<String, String> {
        let url = match a.status {
            302 => a.header("location").unwrap().to_string(),
            _ => a
                .header("refresh")
                .and_then(|r| r.split_once("url="))
                .map(|(_, u)| u.to_string())
                .unwrap_or_default(),
        };
        assert!(url.starts_with(REDIRECT), "{} {url}: {}", a.status, a.body);
        parse_form(url.split_once('?').unwrap().1).unwrap()
    }

    /// Code exchange: the access token.
    pub(crate) fn exchange(w: &World, b: &Browser, code: &str) -> String {
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&client_id={}&code_verifier={}",
            crate::oauth::form_encode(REDIRECT),
            crate::oauth::form_encode(&b.client_id),
            b.verifier
        );
        let t = w.post("/token", "application/x-www-form-urlencoded", &form, &[]);
        assert_eq!(t.status, 200, "{}", t.body);
        serde_json::from_str::<Value>(&t.body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `user_current` with an access token: the Kimai username, or the HTTP status and the
    /// text when there is none.
    pub(crate) fn user_current(w: &World, token: &str) -> Result<String, (u16, String)> {
        user_current_at(w, &w.base, token)
    }

    /// `user_current` through the instance at `base`.
    pub(crate) fn user_current_at(
        w: &World,
        base: &str,
        token: &str,
    ) -> Result<String, (u16, String)> {
        let post = |body: Value, session: Option<&str>| {
            let mut r = w
                .agent
                .post(format!("{base}/mcp"))
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json, text/event-stream")
                .header("MCP-Protocol-Version", "2025-06-18");
            if let Some(s) = session {
                r = r.header("Mcp-Session-Id", s);
            }
            answer(r.send(body.to_string().as_bytes()).unwrap())
        };
        let init = post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}),
            None,
        );
        if init.status != 200 {
            return Err((init.status, init.body));
        }
        let session = init.header("mcp-session-id").map(str::to_string);
        let out = post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "user_current", "arguments": {}}}),
            session.as_deref(),
        );
        let json_text = out
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .next_back()
            .map(str::trim)
            .unwrap_or(out.body.as_str())
            .to_string();
        let v: Value = serde_json::from_str(&json_text).unwrap_or(Value::Null);
        let shown = v["result"]["content"][0]["text"].as_str().unwrap_or("");
        shown
            .lines()
            .find_map(|l| l.strip_prefix("Username: "))
            .map(str::to_string)
            .ok_or((out.status, out.body.clone()))
    }

    /// Code exchange and `user_current` with the access token: the Kimai username.
    pub(crate) fn whoami(w: &World, b: &Browser, code: &str) -> String {
        let token = exchange(w, b, code);
        user_current(w, &token).unwrap_or_else(|e| panic!("no username: {e:?}"))
    }

    const ANN: &str = "k7Hq2vX9mPz4Lw8Rt3NsQa";

    #[test]
    fn a_mapped_person_signs_in_through_the_provider_and_acts_as_themselves() {
        let w = world(&[(ANN, "john_user", Some("ANN@corp.example"))], &[], &[]);
        let mut b = open(&w);
        // The continue page: the application, the provider, no password field; its CSP lets
        // the form go on to the provider.
        assert_eq!(b.page.status, 200);
        assert!(
            b.page.body.contains("<strong>Test client</strong>"),
            "{}",
            b.page.body
        );
        assert!(b.page.body.contains("Continue with 127.0.0.1:"));
        assert!(!b.page.body.contains("type=\"password\""));
        let csp = b
            .page
            .header("content-security-policy")
            .unwrap()
            .to_string();
        let idp_origin = w.fake.issuer.trim_end_matches("/idp").to_string();
        assert!(
            csp.contains(&format!(
                "form-action 'self' http://127.0.0.1:9 {idp_origin}"
            )),
            "{csp}"
        );
        let cb = through_provider(&w, &mut b);
        // The browser cookie was set for the callback only, Lax, HttpOnly.
        assert_eq!(cb.status, 302, "{}", cb.body);
        let p = at_redirect(&cb);
        assert_eq!(p["state"], b.state);
        assert_eq!(p["iss"], format!("{}/", w.base));
        assert!(
            cb.header("set-cookie").unwrap().contains("Max-Age=0"),
            "the sign-in cookie is cleared"
        );
        assert_eq!(whoami(&w, &b, &p["code"]), "john_user");
        // The sign-in was used once: the same callback again is an unknown state.
        assert_eq!(w.fake.hits("/idp/token"), 1);
    }

    use crate::state::testing::TestRedis;

    #[test]
    fn with_the_shared_store_the_providers_redirect_may_land_on_another_instance() {
        let Some(redis) = TestRedis::start("http::oidc") else {
            return;
        };
        let url = redis.url();
        let people = [(ANN, "john_user", Some("ann@corp.example"))];
        let w = world(&people, &["--state", &url], &[]);
        // A second instance behind the same public URL, with the same store.
        let port_b = free_port().to_string();
        let b_instance = serve(
            &w.sim,
            &w.fake,
            &w.base,
            &port_b,
            &people,
            &["--state", &url],
            &[],
        );
        let base_b = format!("http://127.0.0.1:{port_b}");
        let mut b = open(&w);
        // "Continue" twice (the person went back): one sign-in in flight in the store.
        let first = to_provider(&w, &mut b);
        let to_idp = to_provider(&w, &mut b);
        assert_ne!(first, to_idp);
        assert_eq!(redis.dump().matches("kimai-mcp:o:login:").count(), 1);
        let q = parse_form(to_idp.split_once('?').unwrap().1).unwrap();
        // The sign-in in flight is in the store, its nonce and the IdP-side state nowhere in
        // clear.
        let dump = redis.dump();
        assert!(dump.contains("kimai-mcp:o:login:"), "{dump}");
        assert!(!dump.contains(&q["nonce"]), "{dump}");
        assert!(!dump.contains(&q["state"]), "{dump}");
        let cb = back_from_provider(&w, &to_idp);
        // The provider sends the browser back through the other instance.
        let cb_b = cb.replace(&w.base, &base_b);
        assert_ne!(cb, cb_b);
        let done = w.get(&cb_b, &b.jar);
        let code = at_redirect(&done)["code"].clone();
        // Redeemed on the first instance, used on both.
        let token = exchange(&w, &b, &code);
        assert_eq!(user_current(&w, &token).unwrap(), "john_user");
        // The callback once more (a replayed redirect): the sign-in was taken, on any instance.
        let again = w.get(&cb, &b.jar);
        assert_ne!(again.status, 302, "{}", again.body);
        drop(b_instance);
    }

    #[test]
    fn every_refusal_ends_on_the_neutral_page_and_tells_the_application() {
        let w = world(&[(ANN, "john_user", Some("ann@corp.example"))], &[], &[]);
        let neutral = |cb: &Answer, b: &Browser| {
            assert_eq!(cb.status, 403, "{}", cb.body);
            assert!(cb.body.contains("Sign-in not possible"), "{}", cb.body);
            assert!(cb.body.contains("Return to the application"));
            let p = at_redirect(cb);
            assert_eq!(p["error"], "access_denied");
            assert_eq!(p["state"], b.state);
            assert!(!p.contains_key("code"));
            // Nothing on the page says why.
            for word in [
                "nonce",
                "verified",
                "ann@",
                "expired",
                "browser",
                "provider answered",
            ] {
                assert!(!cb.body.contains(word), "{word} in {}", cb.body);
            }
            cb.body
                .split("reference: <strong>")
                .nth(1)
                .and_then(|r| r.split('<').next())
                .unwrap()
                .to_string()
        };
        let mut refs = Vec::new();
        // An identity nobody has.
        w.fake.state().account =
            json!({"sub": "u-9", "email": "zed@corp.example", "email_verified": true});
        let mut b = open(&w);
        refs.push(neutral(&through_provider(&w, &mut b), &b));
        // An unverified address of a mapped person.
        w.fake.state().account =
            json!({"sub": "u-1", "email": "ann@corp.example", "email_verified": false});
        let mut b = open(&w);
        refs.push(neutral(&through_provider(&w, &mut b), &b));
        // A wrong nonce; an expired token.
        w.fake.state().account =
            json!({"sub": "u-1", "email": "ann@corp.example", "email_verified": true});
        w.fake.state().overrides = json!({"nonce": "another"});
        let mut b = open(&w);
        refs.push(neutral(&through_provider(&w, &mut b), &b));
        w.fake.state().overrides = json!({"exp": 1_000_000_000, "iat": 999_999_000});
        let mut b = open(&w);
        refs.push(neutral(&through_provider(&w, &mut b), &b));
        w.fake.state().overrides = json!({});
        // The provider says no.
        w.fake.state().deny = Some("access_denied".into());
        let mut b = open(&w);
        refs.push(neutral(&through_provider(&w, &mut b), &b));
        w.fake.state().deny = None;
        // The callback in another browser (no sign-in cookie).
        let mut b = open(&w);
        let to_idp = to_provider(&w, &mut b);
        b.jar.retain(|(k, _)| !k.starts_with("kmoidc_"));
        let cb = w.get(&back_from_provider(&w, &to_idp), &b.jar);
        refs.push(neutral(&cb, &b));
        // Each refusal has its own reference.
        refs.sort();
        refs.dedup();
        assert_eq!(refs.len(), 6);
        // After all that, the mapped person still gets in.
        let mut b = open(&w);
        let cb = through_provider(&w, &mut b);
        assert_eq!(whoami(&w, &b, &at_redirect(&cb)["code"]), "john_user");
    }

    #[test]
    fn cancel_unknown_states_and_an_unreachable_provider() {
        let w = world(&[(ANN, "john_user", Some("ann@corp.example"))], &[], &[]);
        // Cancel on the continue page.
        let b = open(&w);
        let form = format!(
            "txn={}&csrf={}&action=deny",
            b.txn,
            crate::oauth::form_encode(&b.csrf)
        );
        let a = w.post(
            "/oauth/login",
            "application/x-www-form-urlencoded",
            &form,
            &b.jar,
        );
        assert_eq!(at_redirect(&a)["error"], "access_denied");
        // The form without its CSRF cookie does not reach the provider.
        let b = open(&w);
        let form = format!(
            "txn={}&csrf={}&action=continue",
            b.txn,
            crate::oauth::form_encode(&b.csrf)
        );
        let a = w.post(
            "/oauth/login",
            "application/x-www-form-urlencoded",
            &form,
            &[],
        );
        assert_eq!(a.status, 403);
        // Slug and secret are not a way in with the provider on.
        let form = format!(
            "txn={}&csrf={}&action=sign-in&username={ANN}&secret=whatever-secret-000",
            b.txn,
            crate::oauth::form_encode(&b.csrf)
        );
        let a = w.post(
            "/oauth/login",
            "application/x-www-form-urlencoded",
            &form,
            &b.jar,
        );
        assert_eq!(a.status, 302);
        assert!(a.header("location").unwrap().starts_with(&w.fake.issuer));
        // A callback with a state nobody started: an error page, no redirect anywhere.
        let a = w.get(
            &format!("{}/oauth/oidc/callback?code=x&state=forged", w.base),
            &[],
        );
        assert_eq!(a.status, 400);
        assert!(a.body.contains("Invalid or expired sign-in state"));
        assert!(a.header("refresh").is_none() && a.header("location").is_none());
        // The provider is down and was never reached: the continue page cannot be shown; the
        // request ends with temporarily_unavailable.
        let w2 = world(&[(ANN, "john_user", Some("ann@corp.example"))], &[], &[]);
        w2.fake.state().down = true;
        let client_id = w2.register();
        let url = crate::oauth::with_query(
            &format!("{}/authorize", w2.base),
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT),
                ("code_challenge", &s256(&random_secret(""))),
                ("code_challenge_method", "S256"),
            ],
        );
        let a = w2.get(&url, &[]);
        let page = w2.get(
            &format!("{}{}", w2.base, a.header("location").unwrap()),
            &[],
        );
        assert_eq!(page.status, 503, "{}", page.body);
        assert!(page.body.contains("temporarily_unavailable"));
    }

    fn provisioning() -> World {
        world(
            &[],
            &[
                "--auto-provision",
                "--provision-kimai-url",
                "{sim}",
                "--provision-allowed-domains",
                "example.com",
            ],
            &[],
        )
    }

    #[test]
    fn a_new_person_is_provisioned_and_a_refused_token_is_provisioned_again() {
        let w = provisioning();
        let p = w.running.app.provisioner.clone().unwrap();
        w.fake.state().account =
            json!({"sub": "k", "email": "Kai_User@Example.com", "email_verified": true});
        let mut b = open(&w);
        let cb = through_provider(&w, &mut b);
        assert_eq!(cb.status, 302, "{}", cb.body);
        let token = exchange(&w, &b, &at_redirect(&cb)["code"]);
        assert_eq!(user_current(&w, &token).unwrap(), "kai_user");
        let (slug, user) = p.find("kai_user@example.com").unwrap();
        assert!(w.running.app.may_sign_in(&slug));
        // Never a personal URL.
        let a = w.post(&format!("/mcp/{slug}"), "application/json", "{}", &[]);
        assert_eq!(a.status, 404);
        // An administrator deletes the token in Kimai: the next tool call fails there, the
        // person is forgotten, their access token stops working, and signing in again
        // provisions a new token.
        w.sim.revoke_token(user.token.expose());
        let e = user_current(&w, &token).unwrap_err();
        assert_eq!(e.0, 200, "Kimai's 401 is a tool error: {e:?}");
        assert!(p.find("kai_user@example.com").is_none());
        assert_eq!(user_current(&w, &token).unwrap_err().0, 401);
        let mut b = open(&w);
        let cb = through_provider(&w, &mut b);
        assert_eq!(whoami(&w, &b, &at_redirect(&cb)["code"]), "kai_user");
        let (slug2, user2) = p.find("kai_user@example.com").unwrap();
        assert_ne!(slug2, slug);
        assert_ne!(user2.token.expose(), user.token.expose());
    }

    #[test]
    fn with_the_shared_store_a_person_provisioned_on_one_instance_is_served_by_the_other() {
        let Some(redis) = TestRedis::start("http::oidc") else {
            return;
        };
        let url = redis.url();
        let dir = std::env::temp_dir().join(format!("kimai-mcp-prov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("state-key");
        std::fs::write(&key_file, format!("{}\n", random_secret(""))).unwrap();
        let key_file = key_file.display().to_string();
        let args = [
            "--auto-provision",
            "--provision-kimai-url",
            "{sim}",
            "--provision-allowed-domains",
            "example.com",
            "--state",
            &url,
            "--state-key-file",
            &key_file,
        ];
        let w = world(&[], &args, &[]);
        let port_b = free_port().to_string();
        let b_instance = serve(&w.sim, &w.fake, &w.base, &port_b, &[], &args, &[]);
        let base_b = format!("http://127.0.0.1:{port_b}");
        w.fake.state().account =
            json!({"sub": "k", "email": "Kai_User@Example.com", "email_verified": true});
        let mut b = open(&w);
        let cb = through_provider(&w, &mut b);
        assert_eq!(cb.status, 302, "{}", cb.body);
        let token = exchange(&w, &b, &at_redirect(&cb)["code"]);
        assert_eq!(user_current(&w, &token).unwrap(), "kai_user");
        // The other instance serves the person with the same Kimai token.
        assert_eq!(user_current_at(&w, &base_b, &token).unwrap(), "kai_user");
        let pa = w.running.app.provisioner.clone().unwrap();
        let pb = b_instance.app.provisioner.clone().unwrap();
        let (slug, user) = pa.find("kai_user@example.com").unwrap();
        let (slug_b, user_b) = pb.find("kai_user@example.com").unwrap();
        assert_eq!(slug, slug_b);
        assert_eq!(user.token.expose(), user_b.token.expose());
        // Signing in again with the provider's redirect landing on the other instance finds
        // the person: no second token (which would replace the first in Kimai).
        let mut again = open(&w);
        let to_idp = to_provider(&w, &mut again);
        let cb = back_from_provider(&w, &to_idp).replace(&w.base, &base_b);
        let done = w.get(&cb, &again.jar);
        let token2 = exchange(&w, &again, &at_redirect(&done)["code"]);
        assert_eq!(user_current_at(&w, &base_b, &token2).unwrap(), "kai_user");
        assert_eq!(
            user_current(&w, &token).unwrap(),
            "kai_user",
            "the first token lives"
        );
        assert_eq!(
            pb.find("kai_user@example.com").unwrap().1.token.expose(),
            user.token.expose()
        );
        // The store holds neither the Kimai token nor the slug nor the identity in clear.
        let dump = redis.dump();
        assert!(dump.contains("kimai-mcp:o:prov:"), "{dump}");
        for secret in [user.token.expose(), slug.as_str(), "kai_user@example.com"] {
            assert!(!dump.contains(secret), "{secret} in the store: {dump}");
        }
        // Without the key file, an instance with --state and --auto-provision does not start.
        let mut no_key: Vec<&str> = args.to_vec();
        no_key.truncate(args.len() - 2);
        let cfg_args: Vec<std::ffi::OsString> = ["serve", "--port", "0", "--public-url", &w.base]
            .iter()
            .chain(
                [
                    "--server-token",
                    "test-server-token-0123456789abcdef",
                    "--auth-backend",
                    "oidc",
                    "--oidc-issuer",
                    &w.fake.issuer,
                    "--oidc-client-id",
                    "kimai-mcp",
                ]
                .iter(),
            )
            .map(|s| s.replace("{sim}", &w.sim.url()).into())
            .chain(
                no_key
                    .iter()
                    .map(|s| s.replace("{sim}", &w.sim.url()).into()),
            )
            .collect();
        let env = |k: &str| match k {
            "KIMAI_MCP_OIDC_CLIENT_SECRET" => Some("client-secret-0123456789".to_string()),
            "KIMAI_MCP_PROVISION_ADMIN_TOKEN" => Some(w.sim.admin_token()),
            _ => None,
        };
        let Ok(crate::config::Command::Serve(cfg)) = crate::config::parse(cfg_args, &env) else {
            panic!("serve options did not parse")
        };
        let users = crate::config::users::parse("{}", "test").unwrap();
        let e = crate::http::start(
            cfg,
            users,
            vec![],
            crate::guard::EnumerationSettings::default(),
        )
        .err()
        .expect("no start without the key file");
        assert!(e.to_string().contains("--state-key-file"), "{e}");
        drop(b_instance);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn provisioning_refusals_end_on_the_neutral_page() {
        let w = provisioning();
        for email in [
            "olga_disabled@example.com",
            "john_user@elsewhere.example",
            "nobody@example.com",
        ] {
            w.fake.state().account = json!({"sub": "x", "email": email, "email_verified": true});
            let mut b = open(&w);
            let cb = through_provider(&w, &mut b);
            assert_eq!(cb.status, 403, "{email}: {}", cb.body);
            assert_eq!(at_redirect(&cb)["error"], "access_denied");
        }
        assert_eq!(w.running.app.provisioner.as_ref().unwrap().count(), 0);
    }

    #[test]
    fn only_users_with_an_identity_keep_or_get_a_grant() {
        // A user with an auth_secret but no oidc_identity cannot be a subject under oidc.
        let w = world(
            &[
                (ANN, "john_user", Some("ann@corp.example")),
                ("Zp4Rt8Wq2Lm6Xv9Bn3KsJd", "tony_teamlead", None),
            ],
            &[],
            &[],
        );
        assert!(w.running.app.may_sign_in(ANN));
        assert!(!w.running.app.may_sign_in("Zp4Rt8Wq2Lm6Xv9Bn3KsJd"));
        assert!(!w.running.app.may_sign_in("unknown"));
        let _ = &w.sim;
    }
}
