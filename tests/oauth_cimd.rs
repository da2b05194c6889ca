//! Client ID Metadata Documents at the OAuth server: a client that names itself by an https
//! URL signs in without registering; the document is validated, cached by its `Cache-Control`,
//! and fetched only from public addresses — every forbidden target is refused before a
//! connection is made — with no redirects, a size and a time bound, and a per-address budget.
//! Documents here are served by a local server, which needs the tests-only switch
//! `--allow-localhost-client-metadata-for-tests` (the tests of forbidden targets run without it).

use crate::oauth::{
    SECRET_A, form, oauth_error, open_sign_in, pkce, post_form, query_of, start, submit, whoami,
};
use crate::util::http::{Resp, request, request_from};
use crate::util::sim;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const LOCAL_DOCS: &str = "--allow-localhost-client-metadata-for-tests";
pub(crate) const CALLBACK: &str = "http://127.0.0.1:45998/callback";

/// A local web server for client metadata documents that counts the requests per path.
pub(crate) struct Docs {
    port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Docs {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl Docs {
    pub(crate) fn start() -> Docs {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (s, h) = (server.clone(), hits.clone());
        std::thread::spawn(move || {
            for req in s.incoming_requests() {
                let path = req.url().to_string();
                *h.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                std::thread::spawn(move || answer(req, port, &path));
            }
        });
        Docs { port, hits, server }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn document(url: &str) -> String {
    json!({
        "client_id": url,
        "client_name": "Report <Writer>",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

fn answer(req: tiny_http::Request, port: u16, path: &str) {
    let url = format!("http://localhost:{port}{path}");
    let header = |s: &str| s.parse::<tiny_http::Header>().unwrap();
    let json = header("Content-Type: application/json");
    let (status, body, headers): (u16, String, Vec<tiny_http::Header>) = match path {
        "/client.json" | "/other.json" => (
            200,
            document(&url),
            vec![json, header("Cache-Control: max-age=300")],
        ),
        "/no-store.json" => (
            200,
            document(&url),
            vec![json, header("Cache-Control: no-store")],
        ),
        "/redirect.json" => (
            302,
            String::new(),
            vec![header(&format!(
                "Location: http://localhost:{port}/client.json"
            ))],
        ),
        "/big.json" => {
            let mut d: serde_json::Value = serde_json::from_str(&document(&url)).unwrap();
            d["logo_uri"] = json!("x".repeat(6000));
            (200, d.to_string(), vec![json])
        }
        "/wrong-id.json" => (
            200,
            document("https://elsewhere.example/client.json"),
            vec![json],
        ),
        "/html.json" => (200, document(&url), vec![header("Content-Type: text/html")]),
        "/secret.json" => {
            let mut d: serde_json::Value = serde_json::from_str(&document(&url)).unwrap();
            d["token_endpoint_auth_method"] = json!("client_secret_basic");
            (200, d.to_string(), vec![json])
        }
        "/slow.json" => {
            std::thread::sleep(Duration::from_secs(8));
            (200, document(&url), vec![json])
        }
        p if p.starts_with("/many/") => (200, document(&url), vec![json]),
        p if p.starts_with("/slow.json?") => {
            std::thread::sleep(Duration::from_secs(8));
            (200, document(&url), vec![json])
        }
        _ => (404, String::new(), vec![]),
    };
    let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
    for h in headers {
        resp.add_header(h);
    }
    let _ = req.respond(resp);
}

pub(crate) fn authorize(client_id: &str, challenge: &str) -> String {
    authorize_to(client_id, challenge, CALLBACK)
}

fn authorize_to(client_id: &str, challenge: &str, redirect_uri: &str) -> String {
    format!(
        "/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-9"),
        ])
    )
}

fn token(srv: &crate::util::http::Serve, pairs: &[(&str, &str)]) -> Resp {
    post_form(srv, "/token", &[], pairs)
}

#[test]
fn a_client_named_by_its_document_signs_in_without_registering() {
    let sim = sim();
    let docs = Docs::start();
    let (srv, _) = start(&sim, &[LOCAL_DOCS]);
    let meta = request(
        &srv.addr,
        "GET",
        "/.well-known/oauth-authorization-server",
        &[],
        "",
    );
    assert_eq!(meta.json()["client_id_metadata_document_supported"], true);

    let client_id = docs.url("/client.json");
    let (verifier, challenge) = pkce();
    let page = open_sign_in(&srv, &authorize(&client_id, &challenge));
    // The person sees the application's own name and the host that vouches for it.
    assert!(
        page.resp.body.contains(
            "<strong>Report &lt;Writer&gt;</strong> (described by <strong>localhost</strong>)"
        ),
        "{}",
        page.resp.body
    );
    let r = submit(&srv, &page, crate::util::http::SLUG_A, SECRET_A);
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("Location").unwrap();
    assert!(loc.starts_with(CALLBACK), "{loc}");
    let code = query_of(loc)["code"].clone();
    let r = token(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    let access = j["access_token"].as_str().unwrap();
    assert_eq!(whoami(&srv, access).unwrap(), "tony_teamlead");
    let r = token(
        &srv,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", j["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");

    // Cached for its max-age: a second sign-in does not fetch again.
    assert_eq!(docs.hits("/client.json"), 1);
    let (_, challenge) = pkce();
    open_sign_in(&srv, &authorize(&client_id, &challenge));
    assert_eq!(docs.hits("/client.json"), 1);
    // `no-store` is fetched for every sign-in.
    let no_store = docs.url("/no-store.json");
    for n in 1..=2 {
        let (_, challenge) = pkce();
        open_sign_in(&srv, &authorize(&no_store, &challenge));
        assert_eq!(docs.hits("/no-store.json"), n);
    }

    // A redirect URI the document does not list is refused on a page, never redirected to.
    let (_, challenge) = pkce();
    let path = authorize_to(&client_id, &challenge, "http://127.0.0.1:1/elsewhere");
    let r = request(&srv.addr, "GET", &path, &[], "");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("does not match"), "{}", r.body);

    // The token endpoint knows no secret for such a client: a wrong client_id is refused.
    let r = token(
        &srv,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "kmrt_x"),
            ("client_id", &docs.url("/never-fetched.json")),
        ],
    );
    assert_eq!(oauth_error(&r), "invalid_client", "{r:?}");
}

#[test]
fn bad_documents_are_refused_with_the_reason() {
    let sim = sim();
    let docs = Docs::start();
    let (srv, _) = start(&sim, &[LOCAL_DOCS]);
    let refused = |path: &str, why: &str| {
        let (_, challenge) = pkce();
        let r = request(
            &srv.addr,
            "GET",
            &authorize(&docs.url(path), &challenge),
            &[],
            "",
        );
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert!(r.body.contains(why), "{path}: {}", r.body);
        assert!(r.header("Location").is_none(), "{path}: never redirected");
    };
    refused("/redirect.json", "redirects are not followed");
    // The redirect's target was not fetched.
    assert_eq!(docs.hits("/client.json"), 0);
    refused("/big.json", "larger than 5 KiB");
    refused("/wrong-id.json", "differs from its own URL");
    refused("/html.json", "application/json");
    refused("/secret.json", "accepts only");
    refused("/missing.json", "answered 404");
    // A failure is remembered for a minute: asking again does not fetch again.
    refused("/wrong-id.json", "differs from its own URL");
    assert_eq!(docs.hits("/wrong-id.json"), 1);

    // A document that never comes holds its fetch for 5 s at most; another person is served
    // meanwhile.
    let addr = srv.addr.clone();
    let slow_url = docs.url("/slow.json");
    let slow = std::thread::spawn(move || {
        let (_, challenge) = pkce();
        let t = Instant::now();
        let r = request_from(
            [127, 0, 0, 7],
            &addr,
            "GET",
            &authorize(&slow_url, &challenge),
            &[],
            "",
        );
        (r, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let h = request(&srv.addr, "GET", "/health", &[], "");
    assert_eq!(h.status, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let (r, took) = slow.join().unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("did not answer within 5 s"), "{}", r.body);
    assert!(took < Duration::from_secs(7), "{took:?}");
}

#[test]
fn forbidden_targets_are_refused_without_a_connection() {
    let sim = sim();
    // No tests-only switch: this is the production behaviour.
    let (srv, _) = start(&sim, &[]);
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let p = trap.local_addr().unwrap().port();
    let cases = [
        (
            format!("https://127.0.0.1:{p}/c.json"),
            "public internet address",
        ),
        (
            format!("https://localhost:{p}/c.json"),
            "public internet address",
        ),
        (
            format!("https://[::1]:{p}/c.json"),
            "public internet address",
        ),
        (
            format!("https://[::ffff:127.0.0.1]:{p}/c.json"),
            "public internet address",
        ),
        ("https://10.0.0.1/c.json".into(), "public internet address"),
        (
            "https://192.168.1.1/c.json".into(),
            "public internet address",
        ),
        (
            "https://172.20.0.1/c.json".into(),
            "public internet address",
        ),
        (
            "https://169.254.169.254/latest/meta-data".into(),
            "public internet address",
        ),
        (
            "https://100.64.0.1/c.json".into(),
            "public internet address",
        ),
        ("https://[fd00::1]/c.json".into(), "public internet address"),
        ("https://[fe80::1]/c.json".into(), "public internet address"),
        ("https://0.0.0.0/c.json".into(), "public internet address"),
        (format!("http://localhost:{p}/c.json"), "must use https"),
        (
            format!("https://me@localhost:{p}/c.json"),
            "user information",
        ),
        ("https://example.com/".into(), "must have a path"),
        ("https://example.com/a/../c.json".into(), "segments"),
    ];
    for (url, why) in &cases {
        let (_, challenge) = pkce();
        let t = Instant::now();
        let r = request(&srv.addr, "GET", &authorize(url, &challenge), &[], "");
        assert_eq!(r.status, 400, "{url}: {r:?}");
        assert!(r.body.contains(why), "{url}: {}", r.body);
        // Refused before any connection: a connection attempt to a silent private address
        // would take the 3 s connect timeout.
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{url}: {:?}",
            t.elapsed()
        );
    }
    assert!(
        trap.accept().is_err(),
        "no request may reach a loopback listener"
    );
}

#[test]
fn document_fetches_share_the_registration_budget_of_an_address() {
    let sim = sim();
    let docs = Docs::start();
    let (srv, _) = start(&sim, &[LOCAL_DOCS, "--max-registrations-per-address", "3"]);
    let from = |src: [u8; 4], n: usize| {
        let (_, challenge) = pkce();
        let url = docs.url(&format!("/many/{n}.json"));
        request_from(src, &srv.addr, "GET", &authorize(&url, &challenge), &[], "")
    };
    for n in 0..3 {
        assert_eq!(from([127, 0, 0, 21], n).status, 302);
    }
    let r = from([127, 0, 0, 21], 3);
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.header("Retry-After").is_some());
    assert!(
        r.body.contains("--max-registrations-per-address"),
        "{}",
        r.body
    );
    assert_eq!(docs.hits("/many/3.json"), 0, "refused before fetching");
    // A cached document costs nothing, and another address has its own budget.
    assert_eq!(from([127, 0, 0, 21], 0).status, 302);
    assert_eq!(from([127, 0, 0, 22], 3).status, 302);
    let served: usize = (0..4).map(|n| docs.hits(&format!("/many/{n}.json"))).sum();
    assert_eq!(served, 4);
}

#[test]
fn documents_can_be_turned_off() {
    let sim = sim();
    let docs = Docs::start();
    let (srv, _) = start(&sim, &[LOCAL_DOCS, "--disable-client-metadata-documents"]);
    let meta = request(
        &srv.addr,
        "GET",
        "/.well-known/oauth-authorization-server",
        &[],
        "",
    );
    assert!(
        meta.json()
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    let (_, challenge) = pkce();
    let r = request(
        &srv.addr,
        "GET",
        &authorize(&docs.url("/client.json"), &challenge),
        &[],
        "",
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("--disable-client-metadata-documents"),
        "{}",
        r.body
    );
    assert_eq!(docs.hits("/client.json"), 0);
}

#[test]
fn slow_documents_from_many_addresses_hold_only_the_fetch_slots() {
    let sim = sim();
    let docs = Docs::start();
    let (srv, _) = start(&sim, &[LOCAL_DOCS]);
    // Twelve addresses name documents that never come: eight hold the fetch slots for 5 s, the
    // others are told to come back.
    let slow: Vec<_> = (0..12u8)
        .map(|i| {
            let addr = srv.addr.clone();
            let url = docs.url(&format!("/slow.json?{i}"));
            std::thread::spawn(move || {
                let (_, challenge) = pkce();
                request_from(
                    [127, 0, 1, 10 + i],
                    &addr,
                    "GET",
                    &authorize(&url, &challenge),
                    &[],
                    "",
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile a registered application signs a person in, and that person's calls work.
    let t = Instant::now();
    let r = request(
        &srv.addr,
        "POST",
        "/register",
        &[("Content-Type", "application/json")],
        &json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}).to_string(),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let client_id = r.json()["client_id"].as_str().unwrap().to_string();
    let (verifier, challenge) = pkce();
    let page = open_sign_in(&srv, &authorize(&client_id, &challenge));
    let r = submit(&srv, &page, crate::util::http::SLUG_A, SECRET_A);
    let code = query_of(r.header("Location").unwrap())["code"].clone();
    let r = token(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        whoami(&srv, r.json()["access_token"].as_str().unwrap()).unwrap(),
        "tony_teamlead"
    );
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the other sign-in took {took:?}"
    );
    let statuses: Vec<u16> = slow.into_iter().map(|h| h.join().unwrap().status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        8,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        4,
        "{statuses:?}"
    );
}
