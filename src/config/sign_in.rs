//! How people sign in to `serve`'s OAuth server: `--auth-backend local|oidc`, the `--oidc-*`
//! options of the identity provider, and `--auto-provision` with its `--provision-*` options,
//! each with the 2.20.1 name and `KIMAI_MCP_*` variable. Flag beats variable beats default.
//!
//! Resolves what was given into [`SignIn`] and refuses what cannot work, naming the flag and the
//! variable: `oidc` without an issuer, a client id or a public URL; an `http` issuer that is not
//! on loopback; provisioning without `oidc`, a Kimai URL or an admin token. Options given as
//! flags that their switch does not turn on are usage errors; the same settings from the
//! environment only warn (a compose file may carry a commented-in block). Nothing here touches
//! the network.

use std::path::PathBuf;

use super::{EnvFn, Error, check_url as check_kimai_url};
use crate::kimai::{Tls, Token};
use crate::oauth::oidc::{self, id_token, provider};

/// One option: its flag, its variable, and whether it takes a value (else a switch).
pub(super) struct Opt {
    pub(super) flag: &'static str,
    pub(super) var: &'static str,
    pub(super) value: bool,
}

const fn opt(flag: &'static str, var: &'static str, value: bool) -> Opt {
    Opt { flag, var, value }
}

/// Every option of this file, as 2.20.1 names them.
pub(super) const OPTIONS: [Opt; 16] = [
    opt("--auth-backend", "KIMAI_MCP_AUTH_BACKEND", true),
    opt("--oidc-issuer", "KIMAI_MCP_OIDC_ISSUER", true),
    opt("--oidc-client-id", "KIMAI_MCP_OIDC_CLIENT_ID", true),
    opt("--oidc-client-secret", "KIMAI_MCP_OIDC_CLIENT_SECRET", true),
    opt("--oidc-scopes", "KIMAI_MCP_OIDC_SCOPES", true),
    opt(
        "--oidc-identity-claim",
        "KIMAI_MCP_OIDC_IDENTITY_CLAIM",
        true,
    ),
    opt("--oidc-discovery-url", "KIMAI_MCP_OIDC_DISCOVERY_URL", true),
    opt(
        "--oidc-allow-unverified-email",
        "KIMAI_MCP_OIDC_ALLOW_UNVERIFIED_EMAIL",
        false,
    ),
    opt("--auto-provision", "KIMAI_MCP_AUTO_PROVISION", false),
    opt(
        "--provision-kimai-url",
        "KIMAI_MCP_PROVISION_KIMAI_URL",
        true,
    ),
    opt(
        "--provision-admin-token",
        "KIMAI_MCP_PROVISION_ADMIN_TOKEN",
        true,
    ),
    opt(
        "--provision-token-name",
        "KIMAI_MCP_PROVISION_TOKEN_NAME",
        true,
    ),
    opt("--provision-match", "KIMAI_MCP_PROVISION_MATCH", true),
    opt("--provision-store", "KIMAI_MCP_PROVISION_STORE", true),
    opt(
        "--provision-ssl-verify",
        "KIMAI_MCP_PROVISION_SSL_VERIFY",
        true,
    ),
    opt(
        "--provision-allowed-domains",
        "KIMAI_MCP_PROVISION_ALLOWED_DOMAINS",
        true,
    ),
];

/// The name of provisioned tokens in Kimai by default (2.20.1).
pub const DEFAULT_TOKEN_NAME: &str = "Kimai MCP (auto)";

/// How far `--provision-match` goes when it looks for a person's Kimai user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchMode {
    /// E-mail address, or user name equal to the identity.
    Exact,
    /// Also the address's local part against user names, aliases and e-mail local parts, with
    /// umlauts, diacritics and separators folded (the default).
    Normalized,
    /// Also display names and single name parts: the risky one.
    Fuzzy,
}

/// `--auto-provision`: giving a signed-in person without a users-file entry their own Kimai
/// API token.
#[derive(Clone, Debug)]
pub struct ProvisionConfig {
    /// Where the users are and the tokens are made (`--provision-kimai-url`).
    pub kimai_url: String,
    /// A Kimai token with `view_user` and `api-token_other_profile` (a super admin's).
    pub admin_token: Token,
    /// The name of the tokens made (2–50 characters).
    pub token_name: String,
    pub match_mode: MatchMode,
    /// Where provisioned users are kept across restarts (none: in memory).
    pub store: Option<PathBuf>,
    pub tls: Tls,
    /// Mail domains an identity must be in, lowercase; empty: any.
    pub allowed_domains: Vec<String>,
}

/// How people sign in.
#[derive(Clone, Debug, Default)]
pub struct SignIn {
    /// `--auth-backend oidc`: through the identity provider (else the local form).
    pub oidc: Option<oidc::Settings>,
    /// `--auto-provision`.
    pub provision: Option<ProvisionConfig>,
}

fn truthy(flag: &'static str, var: &'static str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::Invalid {
            flag,
            var,
            problem: format!("expected true or false, got {v:?}"),
        }),
    }
}

/// Resolves the options. `given` are the flags as given (flag, value; a switch has ""),
/// `public_url` the resolved `--public-url`; warnings go to `warnings`.
pub(super) fn resolve(
    given: &[(&'static str, String)],
    public_url: Option<&str>,
    env: EnvFn,
    warnings: &mut Vec<String>,
) -> Result<SignIn, Error> {
    let by_flag = |flag: &str| given.iter().rev().find(|(f, _)| *f == flag);
    let var_of = |flag: &str| {
        OPTIONS
            .iter()
            .find(|o| o.flag == flag)
            .map_or("", |o| o.var)
    };
    // The value of an option: its flag, else its variable; empty counts as not given.
    let value = |flag: &'static str| -> Option<String> {
        by_flag(flag)
            .map(|(_, v)| v.clone())
            .or_else(|| env(var_of(flag)))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let switch = |flag: &'static str| -> Result<bool, Error> {
        if by_flag(flag).is_some() {
            return Ok(true);
        }
        match env(var_of(flag)) {
            None => Ok(false),
            Some(v) => truthy(flag, var_of(flag), &v),
        }
    };
    let invalid = |flag: &'static str, problem: String| Error::Invalid {
        flag,
        var: var_of(flag),
        problem,
    };

    let oidc_on = match value("--auth-backend") {
        None => false,
        Some(b) if b.eq_ignore_ascii_case("local") => false,
        Some(b) if b.eq_ignore_ascii_case("oidc") => true,
        Some(b) => {
            return Err(invalid(
                "--auth-backend",
                format!("expected local or oidc, got {b:?}"),
            ));
        }
    };
    let provision_on = switch("--auto-provision")?;

    // Options that their switch leaves off: a flag is a mistake, a variable a warning.
    let idle = |prefix: &str, on: bool| -> Result<Vec<&'static str>, Error> {
        let mut from_env = Vec::new();
        for o in OPTIONS.iter().filter(|o| o.flag.starts_with(prefix)) {
            if on {
                continue;
            }
            if by_flag(o.flag).is_some() {
                return Err(Error::Usage(format!(
                    "{} needs {}",
                    o.flag,
                    if prefix == "--oidc-" {
                        "--auth-backend oidc"
                    } else {
                        "--auto-provision"
                    }
                )));
            }
            if env(o.var).is_some_and(|v| !v.trim().is_empty()) {
                from_env.push(o.var);
            }
        }
        Ok(from_env)
    };
    let unused_oidc = idle("--oidc-", oidc_on)?;
    if !unused_oidc.is_empty() {
        warnings.push(format!(
            "{} set but not used: identity-provider sign-in is off (KIMAI_MCP_AUTH_BACKEND=oidc or --auth-backend oidc turns it on)",
            unused_oidc.join(", ")
        ));
    }
    let unused_provision = idle("--provision-", provision_on)?;
    if !unused_provision.is_empty() {
        warnings.push(format!(
            "{} set but not used: auto-provisioning is off (KIMAI_MCP_AUTO_PROVISION=true or --auto-provision turns it on)",
            unused_provision.join(", ")
        ));
    }
    if !oidc_on {
        if provision_on {
            return Err(Error::Usage(
                "--auto-provision requires --auth-backend oidc: there is no verified identity to look up in Kimai without the identity provider".into(),
            ));
        }
        return Ok(SignIn::default());
    }

    // --- the identity provider
    let issuer = value("--oidc-issuer");
    let client_id = value("--oidc-client-id");
    if issuer.is_none() || client_id.is_none() {
        let missing: Vec<&str> = [
            ("--oidc-issuer", issuer.is_none()),
            ("--oidc-client-id", client_id.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
        .collect();
        return Err(Error::Usage(format!(
            "--auth-backend oidc requires {} (or the corresponding KIMAI_MCP_OIDC_* environment variables)",
            missing.join(", ")
        )));
    }
    let (issuer, client_id) = (issuer.unwrap_or_default(), client_id.unwrap_or_default());
    if public_url.is_none() {
        return Err(Error::Usage(
            "--auth-backend oidc needs --public-url (KIMAI_MCP_PUBLIC_URL): OAuth sign-in is on only with a public URL, and the identity provider sends people back to <public URL>/oauth/oidc/callback".into(),
        ));
    }
    let issuer = issuer.trim_end_matches('/').to_string();
    provider::check_url(&issuer, true).map_err(|p| invalid("--oidc-issuer", p))?;
    let loopback = provider::is_loopback_http(&issuer);
    let discovery_url = match value("--oidc-discovery-url") {
        None => None,
        Some(u) => {
            provider::check_url(&u, loopback).map_err(|p| invalid("--oidc-discovery-url", p))?;
            Some(u)
        }
    };
    if client_id.len() > 512 || client_id.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "--oidc-client-id",
            "must be at most 512 characters without control characters".into(),
        ));
    }
    let client_secret = value("--oidc-client-secret").map(Token::new);
    if by_flag("--oidc-client-secret").is_some() {
        warnings.push(
            "--oidc-client-secret on the command line can be read by other users of this machine (ps); prefer KIMAI_MCP_OIDC_CLIENT_SECRET".into(),
        );
    }
    let mut scopes: Vec<String> = value("--oidc-scopes")
        .unwrap_or_else(|| oidc::DEFAULT_SCOPES.into())
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = scopes.iter().find(|s| {
        s.len() > 128
            || !s
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        return Err(invalid(
            "--oidc-scopes",
            format!("{bad:?} is not a scope name"),
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        warnings.push(
            "--oidc-scopes does not name openid, which OpenID Connect needs; it is added".into(),
        );
        scopes.insert(0, "openid".into());
    }
    scopes.dedup();
    let claim = value("--oidc-identity-claim").unwrap_or_else(|| "email".into());
    if claim.len() > 128 || !claim.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "--oidc-identity-claim",
            format!("{claim:?} is not a claim name"),
        ));
    }
    let allow_unverified_email = switch("--oidc-allow-unverified-email")?;
    if allow_unverified_email {
        warnings.push(
            "--oidc-allow-unverified-email: e-mail addresses the identity provider has not verified are accepted as identities; whoever can set such an address at the provider can sign in as the person it names. Use it only with a provider that verifies every address".into(),
        );
    }
    let oidc = oidc::Settings {
        issuer,
        client_id,
        client_secret,
        scopes,
        identity: id_token::Rules {
            claim,
            allow_unverified_email,
        },
        discovery_url,
        login_ttl: crate::oauth::Settings::default().request_ttl,
        timing: oidc::Timing::default(),
    };

    // --- provisioning
    let provision = if provision_on {
        Some(resolve_provision(&value, &by_flag, &invalid, warnings)?)
    } else {
        None
    };
    Ok(SignIn {
        oidc: Some(oidc),
        provision,
    })
}

type ValueFn<'a> = dyn Fn(&'static str) -> Option<String> + 'a;
type ByFlag<'a> = dyn Fn(&str) -> Option<&'a (&'static str, String)> + 'a;
type Invalid<'a> = dyn Fn(&'static str, String) -> Error + 'a;

fn resolve_provision(
    value: &ValueFn<'_>,
    by_flag: &ByFlag<'_>,
    invalid: &Invalid<'_>,
    warnings: &mut Vec<String>,
) -> Result<ProvisionConfig, Error> {
    let kimai_url = value("--provision-kimai-url");
    let admin_token = value("--provision-admin-token");
    if kimai_url.is_none() || admin_token.is_none() {
        let missing: Vec<&str> = [
            ("--provision-kimai-url", kimai_url.is_none()),
            ("--provision-admin-token", admin_token.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
        .collect();
        return Err(Error::Usage(format!(
            "--auto-provision requires {} (or the matching KIMAI_MCP_PROVISION_* environment variables)",
            missing.join(", ")
        )));
    }
    let kimai_url = check_kimai_url(&kimai_url.unwrap_or_default())
        .map_err(|p| invalid("--provision-kimai-url", p))?;
    let admin_token = admin_token.unwrap_or_default();
    if admin_token
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "--provision-admin-token",
            "the token contains spaces or control characters".into(),
        ));
    }
    if by_flag("--provision-admin-token").is_some() {
        warnings.push(
            "--provision-admin-token on the command line can be read by other users of this machine (ps); prefer KIMAI_MCP_PROVISION_ADMIN_TOKEN".into(),
        );
    }
    let token_name = value("--provision-token-name").unwrap_or_else(|| DEFAULT_TOKEN_NAME.into());
    if !(2..=50).contains(&token_name.chars().count()) {
        return Err(invalid(
            "--provision-token-name",
            "must be between 2 and 50 characters (Kimai's limit)".into(),
        ));
    }
    let match_mode = match value("--provision-match").as_deref() {
        None | Some("normalized") => MatchMode::Normalized,
        Some("exact") => MatchMode::Exact,
        Some("fuzzy") => MatchMode::Fuzzy,
        Some(other) => {
            return Err(invalid(
                "--provision-match",
                format!("expected exact, normalized or fuzzy, got {other:?}"),
            ));
        }
    };
    if match_mode == MatchMode::Fuzzy {
        warnings.push(
            "--provision-match fuzzy also matches display names and single name parts: a person whose name resembles a colleague's can be given that colleague's Kimai token. Prefer normalized (the default) or exact".into(),
        );
    }
    let store = value("--provision-store").map(PathBuf::from);
    let tls = match value("--provision-ssl-verify") {
        None => Tls::Verify,
        Some(v) => Tls::parse(&v).map_err(|p| invalid("--provision-ssl-verify", p))?,
    };
    let mut allowed_domains = Vec::new();
    for d in value("--provision-allowed-domains")
        .unwrap_or_default()
        .split(',')
        .map(|d| d.trim().trim_start_matches('@').to_lowercase())
        .filter(|d| !d.is_empty())
    {
        let ok = d.len() <= 253
            && d.contains('.')
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return Err(invalid(
                "--provision-allowed-domains",
                format!("{d:?} is not a mail domain such as corp.example"),
            ));
        }
        allowed_domains.push(d);
    }
    if allowed_domains.is_empty() {
        warnings.push(
            "auto-provisioning accepts identities from any mail domain the identity provider asserts: safe only with a single-tenant issuer. With a multi-tenant one (Entra ID common/organizations, guests, Google without an hd check) an outside account whose address resembles a Kimai user's is given that user's token. Set --provision-allowed-domains (KIMAI_MCP_PROVISION_ALLOWED_DOMAINS)".into(),
        );
    }
    Ok(ProvisionConfig {
        kimai_url,
        admin_token: Token::new(admin_token),
        token_name,
        match_mode,
        store,
        tls,
        allowed_domains,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Command, Error, MatchMode, ServeConfig, parse};
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn serve(args: &[&str], env: &[(&str, &str)]) -> Result<ServeConfig, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        match parse(all.iter().map(OsString::from).collect(), &|k| {
            env.get(k).cloned()
        })? {
            Command::Serve(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    const PUBLIC: [&str; 2] = ["--public-url", "https://mcp.example.com"];

    #[test]
    fn the_identity_provider_from_flags_and_variables() {
        let c = serve(
            &[
                PUBLIC[0],
                PUBLIC[1],
                "--auth-backend",
                "oidc",
                "--oidc-issuer",
                "https://login.example.com/tenant/v2.0/",
                "--oidc-client-id",
                "abc",
                "--oidc-scopes",
                "openid,email profile offline_access",
            ],
            &[
                ("KIMAI_MCP_OIDC_CLIENT_SECRET", "s3cret-value"),
                ("KIMAI_MCP_OIDC_IDENTITY_CLAIM", "oid"),
            ],
        )
        .unwrap();
        let o = c.sign_in.oidc.unwrap();
        assert_eq!(o.issuer, "https://login.example.com/tenant/v2.0");
        assert_eq!(o.client_id, "abc");
        assert_eq!(o.client_secret.unwrap().expose(), "s3cret-value");
        assert_eq!(o.scopes, ["openid", "email", "profile", "offline_access"]);
        assert_eq!(o.identity.claim, "oid");
        assert!(!o.identity.allow_unverified_email);
        assert!(c.sign_in.provision.is_none());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // All from the environment, as a compose file gives them; defaults.
        let c = serve(
            &[],
            &[
                ("KIMAI_MCP_PUBLIC_URL", "https://mcp.example.com"),
                ("KIMAI_MCP_AUTH_BACKEND", "OIDC"),
                ("KIMAI_MCP_OIDC_ISSUER", "https://kc.example.com/realms/x"),
                ("KIMAI_MCP_OIDC_CLIENT_ID", "kimai-mcp"),
                ("KIMAI_MCP_OIDC_ALLOW_UNVERIFIED_EMAIL", "true"),
            ],
        )
        .unwrap();
        let o = c.sign_in.oidc.unwrap();
        assert_eq!(o.scopes, ["openid", "email", "profile"]);
        assert_eq!(o.identity.claim, "email");
        assert!(o.identity.allow_unverified_email);
        assert!(o.client_secret.is_none());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("--oidc-allow-unverified-email")),
            "{:?}",
            c.warnings
        );
        // openid is added when missing.
        let c = serve(
            &[
                PUBLIC[0],
                PUBLIC[1],
                "--auth-backend",
                "oidc",
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-id",
                "x",
                "--oidc-scopes",
                "email",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.sign_in.oidc.unwrap().scopes, ["openid", "email"]);
        assert!(c.warnings.iter().any(|w| w.contains("openid")));
        // Local by default and by name.
        assert!(serve(&[], &[]).unwrap().sign_in.oidc.is_none());
        assert!(
            serve(&["--auth-backend", "local"], &[])
                .unwrap()
                .sign_in
                .oidc
                .is_none()
        );
    }

    #[test]
    fn what_cannot_work_is_refused_with_the_flag_and_variable() {
        let oidc = |extra: &[&str], env: &[(&str, &str)]| {
            let mut a = vec![PUBLIC[0], PUBLIC[1], "--auth-backend", "oidc"];
            a.extend_from_slice(extra);
            serve(&a, env).map(|_| ()).unwrap_err().to_string()
        };
        let e = oidc(&[], &[]);
        assert!(
            e.contains("--auth-backend oidc requires --oidc-issuer, --oidc-client-id")
                && e.contains("KIMAI_MCP_OIDC_"),
            "{e}"
        );
        let e = oidc(&["--oidc-issuer", "https://idp.example"], &[]);
        assert!(e.contains("requires --oidc-client-id"), "{e}");
        let e = oidc(
            &[
                "--oidc-issuer",
                "http://idp.example",
                "--oidc-client-id",
                "x",
            ],
            &[],
        );
        assert!(
            e.contains("invalid --oidc-issuer / KIMAI_MCP_OIDC_ISSUER") && e.contains("loopback"),
            "{e}"
        );
        // http on loopback is fine (a test provider); its discovery URL then may be too.
        assert!(
            serve(
                &[
                    "--public-url",
                    "http://127.0.0.1:8000",
                    "--auth-backend",
                    "oidc",
                    "--oidc-issuer",
                    "http://127.0.0.1:9000/idp",
                    "--oidc-client-id",
                    "x",
                    "--oidc-discovery-url",
                    "http://localhost:9000/idp/.well-known/openid-configuration",
                ],
                &[],
            )
            .is_ok()
        );
        let e = oidc(
            &[
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-id",
                "x",
                "--oidc-discovery-url",
                "http://127.0.0.1:9/d",
            ],
            &[],
        );
        assert!(e.contains("--oidc-discovery-url"), "{e}");
        let e = serve(
            &[
                "--auth-backend",
                "oidc",
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-id",
                "x",
            ],
            &[],
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs --public-url"), "{e}");
        let e = serve(&["--auth-backend", "ldap"], &[])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected local or oidc"), "{e}");
        // --oidc-* flags without the backend; provisioning without oidc.
        let e = serve(&["--oidc-issuer", "https://idp.example"], &[])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--oidc-issuer needs --auth-backend oidc"), "{e}");
        let e = serve(&["--auto-provision"], &[])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--auto-provision requires --auth-backend oidc"),
            "{e}"
        );
        let e = serve(&["--provision-match", "exact"], &[])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--provision-match needs --auto-provision"),
            "{e}"
        );
        let e = serve(&[], &[("KIMAI_MCP_AUTO_PROVISION", "maybe")])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected true or false"), "{e}");
    }

    #[test]
    fn variables_of_a_backend_that_is_off_only_warn_and_name_no_value() {
        let c = serve(
            &[],
            &[
                ("KIMAI_MCP_OIDC_ISSUER", "https://idp.example"),
                ("KIMAI_MCP_OIDC_CLIENT_SECRET", "secret-value-123"),
                ("KIMAI_MCP_PROVISION_ADMIN_TOKEN", "admin-token-value"),
                ("KIMAI_MCP_AUTH_BACKEND", "local"),
            ],
        )
        .unwrap();
        let all = c.warnings.join("\n");
        assert!(
            all.contains("KIMAI_MCP_OIDC_ISSUER, KIMAI_MCP_OIDC_CLIENT_SECRET set but not used")
                && all.contains("KIMAI_MCP_PROVISION_ADMIN_TOKEN set but not used"),
            "{all}"
        );
        assert!(!all.contains("secret-value") && !all.contains("admin-token-value"));
    }

    #[test]
    fn auto_provisioning_options() {
        let base = [
            PUBLIC[0],
            PUBLIC[1],
            "--auth-backend",
            "oidc",
            "--oidc-issuer",
            "https://idp.example",
            "--oidc-client-id",
            "x",
            "--auto-provision",
        ];
        let with = |extra: &[&str], env: &[(&str, &str)]| {
            let mut a = base.to_vec();
            a.extend_from_slice(extra);
            serve(&a, env)
        };
        let e = with(&[], &[]).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("--auto-provision requires --provision-kimai-url, --provision-admin-token"),
            "{e}"
        );
        let env = [
            (
                "KIMAI_MCP_PROVISION_KIMAI_URL",
                "https://kimai.example.com/api/",
            ),
            ("KIMAI_MCP_PROVISION_ADMIN_TOKEN", "admintoken"),
        ];
        let c = with(&[], &env).unwrap();
        let p = c.sign_in.provision.unwrap();
        assert_eq!(p.kimai_url, "https://kimai.example.com");
        assert_eq!(p.admin_token.expose(), "admintoken");
        assert_eq!(p.token_name, "Kimai MCP (auto)");
        assert_eq!(p.match_mode, MatchMode::Normalized);
        assert!(p.store.is_none() && p.allowed_domains.is_empty());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("--provision-allowed-domains")),
            "{:?}",
            c.warnings
        );
        let c = with(
            &[
                "--provision-match",
                "fuzzy",
                "--provision-allowed-domains",
                "@Corp.Example, corp.de",
                "--provision-store",
                "/var/lib/kimai-mcp/provisioned.json",
                "--provision-token-name",
                "MCP",
                "--provision-ssl-verify",
                "false",
            ],
            &env,
        )
        .unwrap();
        let p = c.sign_in.provision.unwrap();
        assert_eq!(p.match_mode, MatchMode::Fuzzy);
        assert_eq!(p.allowed_domains, ["corp.example", "corp.de"]);
        assert_eq!(p.token_name, "MCP");
        assert_eq!(p.tls, crate::kimai::Tls::NoVerify);
        assert!(c.warnings.iter().any(|w| w.contains("fuzzy")));
        for (flag, value, want) in [
            (
                "--provision-match",
                "loose",
                "expected exact, normalized or fuzzy",
            ),
            ("--provision-token-name", "x", "between 2 and 50"),
            ("--provision-allowed-domains", "corp", "not a mail domain"),
            ("--provision-kimai-url", "kimai.example.com", "https://"),
        ] {
            let e = with(&[flag, value], &env)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{flag}: {e}");
        }
        // A token on the command line is warned about, never shown.
        let c = with(
            &[
                "--provision-kimai-url",
                "https://k.example",
                "--provision-admin-token",
                "tok-on-cli",
            ],
            &[],
        )
        .unwrap();
        let all = c.warnings.join("\n");
        assert!(all.contains("KIMAI_MCP_PROVISION_ADMIN_TOKEN") && !all.contains("tok-on-cli"));
    }
}
