//! OAuth floods cannot harm another user: each test runs an attack from many loopback
//! addresses (127.0.x.y standing for many machines) against `serve --public-url`, checks that
//! it is refused or contained, and measures, while it runs, that a second user signs in, that
//! `/health` answers and that a tool call is served, and how fast.
//!
//! The server runs in the test process (`kimai_mcp::http::start`) so that the table sizes can
//! be made small: at the defaults (10,000 clients, 10,000 sign-ins in progress) the same
//! attacks need 10,000 requests; here they need a few hundred.

use crate::util::http::{Resp, SERVER_TOKEN, SLUG_A, SLUG_B, post_from, request_from};
use crate::util::{DEADLINE, TempDir, sim};
use kimai_mcp::config::{Command, ServeConfig};
use kimai_mcp::http::Running;
use kimai_mcp::sim::Sim;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET_A: &str = "auth-secret-for-tony-0123456789";
const SECRET_B: &str = "auth-secret-for-john-9876543210";
const REDIRECT: &str = "http://127.0.0.1:45999/callback";
/// Where the people (not the attackers) connect from.
const HOME: [u8; 4] = [127, 0, 0, 1];
/// The generous bound for `/health` and a tool call while an attack runs.
const FAST: Duration = Duration::from_secs(2);

struct Server {
    running: Running,
    addr: String,
    _dir: TempDir,
}

impl Server {
    fn oauth(&self) -> &kimai_mcp::oauth::OAuth {
        self.running.app.oauth.as_ref().expect("OAuth is on")
    }
}

/// `serve --public-url` in this process, with `args` and then `tweak` applied to the
/// configuration.
fn start(sim: &Sim, args: &[&str], tweak: impl FnOnce(&mut ServeConfig)) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");
    let url = sim.url();
    let mut argv = vec![
        "serve",
        "--port",
        &port,
        "--public-url",
        &base,
        "--rate-limit-rpm",
        "0",
        "--server-token",
        SERVER_TOKEN,
        "--default-kimai-url",
        &url,
    ];
    argv.extend_from_slice(args);
    let argv = argv.into_iter().map(std::ffi::OsString::from).collect();
    let Ok(Command::Serve(mut cfg)) = kimai_mcp::config::parse(argv, &|_| None) else {
        panic!("the serve arguments do not parse");
    };
    tweak(&mut cfg);
    let users = json!({
        SLUG_A: {"kimai_url": sim.url(), "kimai_token": sim.token("tony_teamlead").unwrap(), "auth_secret": SECRET_A},
        SLUG_B: {"kimai_url": sim.url(), "kimai_token": sim.token("john_user").unwrap(), "auth_secret": SECRET_B},
    });
    let users = kimai_mcp::config::users::parse(&users.to_string(), "test users").unwrap();
    let running = kimai_mcp::http::start(
        cfg,
        users,
        vec![SERVER_TOKEN.to_string()],
        kimai_mcp::guard::EnumerationSettings::default(),
    )
    .unwrap();
    Server {
        addr: running.addr().to_string(),
        running,
        _dir: TempDir::new(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", kimai_mcp::oauth::form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn register(src: [u8; 4], addr: &str) -> Resp {
    request_from(
        src,
        addr,
        "POST",
        "/register",
        &[("Content-Type", "application/json")],
        &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}).to_string(),
    )
}

fn client_id(r: &Resp) -> String {
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["client_id"].as_str().unwrap().to_string()
}

/// `GET /authorize` for `client` from `src`: the response (302 to the sign-in page) and the
/// PKCE verifier.
fn authorize(src: [u8; 4], addr: &str, client: &str) -> (Resp, String) {
    let verifier = kimai_mcp::oauth::random_secret("v");
    let path = format!(
        "/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &kimai_mcp::oauth::s256(&verifier)),
            ("code_challenge_method", "S256"),
            ("state", "st"),
        ])
    );
    (request_from(src, addr, "GET", &path, &[], ""), verifier)
}

/// An open sign-in page: its request id, CSRF token and cookie, and the PKCE verifier.
struct Page {
    txn: String,
    csrf: String,
    cookie: String,
    verifier: String,
}

fn open_page(src: [u8; 4], addr: &str, client: &str) -> Page {
    let (r, verifier) = authorize(src, addr, client);
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("Location").unwrap().to_string();
    let page = request_from(src, addr, "GET", &loc, &[], "");
    assert_eq!(page.status, 200, "{page:?}");
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let rest = page.body.split(&marker).nth(1).expect(name);
        rest.split('"').next().unwrap().to_string()
    };
    Page {
        txn: field("txn"),
        csrf: field("csrf"),
        cookie: page
            .header("Set-Cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string(),
        verifier,
    }
}

fn submit(src: [u8; 4], addr: &str, p: &Page, slug: &str, secret: &str) -> Resp {
    request_from(
        src,
        addr,
        "POST",
        "/oauth/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &p.cookie),
        ],
        &form(&[
            ("txn", &p.txn),
            ("csrf", &p.csrf),
            ("username", slug),
            ("secret", secret),
            ("action", "sign-in"),
        ]),
    )
}

/// The code of a successful sign-in answer.
fn code_of(r: &Resp) -> String {
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("Location").unwrap();
    let q = kimai_mcp::oauth::parse_form(loc.split_once('?').unwrap().1).unwrap();
    q.get("code")
        .unwrap_or_else(|| panic!("no code: {loc}"))
        .clone()
}

fn token(addr: &str, pairs: &[(&str, &str)]) -> Resp {
    request_from(
        HOME,
        addr,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(pairs),
    )
}

fn exchange(addr: &str, client: &str, code: &str, verifier: &str) -> Resp {
    token(
        addr,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client),
            ("code_verifier", verifier),
        ],
    )
}

fn mcp(addr: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    post_from(HOME, addr, path, headers, body)
}

/// `user_current` through `path` with `auth` headers: the Kimai user name.
fn whoami(addr: &str, path: &str, auth: &[(&str, &str)]) -> String {
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let r = mcp(addr, path, auth, &init);
    assert_eq!(r.status, 200, "{r:?}");
    let sid = r.header("Mcp-Session-Id").unwrap().to_string();
    let mut h = auth.to_vec();
    h.push(("Mcp-Session-Id", &sid));
    let n = mcp(
        addr,
        path,
        &h,
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    assert_eq!(n.status, 202, "{n:?}");
    h.push(("MCP-Protocol-Version", "2025-11-25"));
    let r = mcp(
        addr,
        path,
        &h,
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"user_current","arguments":{}}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text: {}", r.body))
        .to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("Username: "))
        .unwrap_or_else(|| panic!("no user name: {text}"))
        .to_string()
}

/// A whole sign-in of user B from a new application (register, authorize, sign-in form, code
/// exchange, a tool call with the access token); how long it took.
fn user_b_signs_in(addr: &str) -> Duration {
    let started = Instant::now();
    let client = client_id(&register(HOME, addr));
    let page = open_page(HOME, addr, &client);
    let code = code_of(&submit(HOME, addr, &page, SLUG_B, SECRET_B));
    let r = exchange(addr, &client, &code, &page.verifier);
    assert_eq!(r.status, 200, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {access}");
    assert_eq!(
        whoami(addr, "/mcp", &[("Authorization", &auth)]),
        "john_user"
    );
    started.elapsed()
}

/// `/health` and a tool call of user B on the personal URL; how long each took.
fn health_and_tool_call(addr: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let r = request_from(HOME, addr, "GET", "/health", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
    let health = started.elapsed();
    let started = Instant::now();
    assert_eq!(whoami(addr, &format!("/mcp/{SLUG_B}"), &[]), "john_user");
    (health, started.elapsed())
}

/// An attack on threads: `run(thread, round)` is called until `stop` is set or `rounds` are
/// done. `sent` counts calls, so the test can wait until the attack is under way.
struct Attack {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Attack {
    fn start(
        threads: usize,
        rounds: usize,
        run: impl Fn(usize, usize) + Send + Sync + 'static,
    ) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let run = Arc::new(run);
        let threads = (0..threads)
            .map(|t| {
                let (stop, sent, run) = (stop.clone(), sent.clone(), run.clone());
                std::thread::spawn(move || {
                    for round in 0..rounds {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        run(t, round);
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Attack {
            stop,
            sent,
            threads,
        }
    }

    /// Waits until `n` calls were made.
    fn under_way(&self, n: usize) {
        let deadline = Instant::now() + DEADLINE;
        while self.sent.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the attack did not get going");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while no thread has run out of rounds.
    fn running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("an attack thread panicked");
        }
    }
}

/// Attacker address `n` (1-based) in the block 127.0.`block`.0/24.
fn attacker(block: u8, n: usize) -> [u8; 4] {
    [127, 0, block, n as u8]
}

#[test]
fn a_registration_flood_is_limited_per_address_and_never_evicts_a_client_in_use() {
    let sim = sim();
    let srv = start(&sim, &["--max-registrations-per-address", "20"], |cfg| {
        cfg.oauth.max_clients = 300;
    });
    let addr = srv.addr.clone();
    // Three real applications in use: one in the middle of a sign-in (its page is open), one
    // holding a code it has not exchanged yet, one signed in.
    let mid = client_id(&register(HOME, &addr));
    let mid_page = open_page(HOME, &addr, &mid);
    let coded = client_id(&register(HOME, &addr));
    let coded_page = open_page(HOME, &addr, &coded);
    let code = code_of(&submit(HOME, &addr, &coded_page, SLUG_A, SECRET_A));
    let signed = client_id(&register(HOME, &addr));
    let page = open_page(HOME, &addr, &signed);
    let r = exchange(
        &addr,
        &signed,
        &code_of(&submit(HOME, &addr, &page, SLUG_A, SECRET_A)),
        &page.verifier,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let refresh_token = r.json()["refresh_token"].as_str().unwrap().to_string();

    // 60 addresses, each registering over and over: 1,200 registrations get through (four
    // times the table), every further one is refused.
    const ADDRESSES: usize = 60;
    let accepted: Arc<Mutex<HashMap<[u8; 4], usize>>> = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let (acc, refd, a) = (accepted.clone(), refused.clone(), addr.clone());
    let attack = Attack::start(4, 2000, move |t, round| {
        let src = attacker(1, 1 + (t + 4 * round) % ADDRESSES);
        let r = register(src, &a);
        match r.status {
            201 => *acc.lock().unwrap().entry(src).or_default() += 1,
            429 => {
                assert!(r.header("Retry-After").is_some(), "{r:?}");
                let j = r.json();
                assert_eq!(j["error"], "temporarily_unavailable");
                let d = j["error_description"].as_str().unwrap();
                assert!(
                    d.contains("at most 20 per hour")
                        && d.contains("--max-registrations-per-address"),
                    "{d}"
                );
                refd.fetch_add(1, Ordering::SeqCst);
            }
            _ => panic!("{r:?}"),
        }
    });
    attack.under_way(ADDRESSES * 20 + 100);
    let sign_in = user_b_signs_in(&addr);
    let (health, tool) = health_and_tool_call(&addr);
    assert!(attack.running(), "the measurements must overlap the attack");
    attack.stop();
    assert!(
        sign_in < Duration::from_secs(5),
        "B's sign-in took {sign_in:?}"
    );
    assert!(health < FAST, "/health took {health:?}");
    assert!(tool < FAST, "a tool call took {tool:?}");
    let accepted = accepted.lock().unwrap();
    eprintln!(
        "registration flood: {} accepted, {} refused; meanwhile B's sign-in {sign_in:?}, /health {health:?}, tool call {tool:?}",
        accepted.values().sum::<usize>(),
        refused.load(Ordering::SeqCst)
    );
    assert_eq!(accepted.len(), ADDRESSES);
    assert!(accepted.values().all(|&n| n == 20), "{accepted:?}");
    assert!(refused.load(Ordering::SeqCst) >= 100);
    // Full, less the batch last forgotten to make room (1% of the table).
    let clients = srv.oauth().counts().0;
    assert!((297..=300).contains(&clients), "{clients}");

    // The applications in use carry on: the open sign-in completes, the code is exchanged, the
    // signed-in one refreshes.
    let r = exchange(
        &addr,
        &mid,
        &code_of(&submit(HOME, &addr, &mid_page, SLUG_A, SECRET_A)),
        &mid_page.verifier,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = exchange(&addr, &coded, &code, &coded_page.verifier);
    assert_eq!(r.status, 200, "{r:?}");
    let r = token(
        &addr,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &signed),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn an_authorize_flood_cannot_block_sign_ins_or_end_a_persons_sign_in() {
    let sim = sim();
    let srv = start(&sim, &["--max-pending-sign-ins-per-address", "5"], |cfg| {
        cfg.oauth.max_requests = 200;
    });
    let addr = srv.addr.clone();
    let attacker_client = client_id(&register(attacker(2, 1), &addr));
    // A person has a sign-in page open before the flood starts.
    let client = client_id(&register(HOME, &addr));
    let person = open_page(HOME, &addr, &client);

    // 60 addresses open sign-ins over and over: 5 each would be 300, the table holds 200.
    const ADDRESSES: usize = 60;
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let (f, a, c) = (first.clone(), addr.clone(), attacker_client.clone());
    let attack = Attack::start(4, 3000, move |t, round| {
        let src = attacker(2, 1 + (t + 4 * round) % ADDRESSES);
        let (r, _) = authorize(src, &a, &c);
        assert_eq!(r.status, 302, "{r:?}");
        let loc = r.header("Location").unwrap().to_string();
        assert!(loc.starts_with("/oauth/login?txn="), "{loc}");
        f.lock().unwrap().get_or_insert(loc);
    });
    attack.under_way(600);
    let sign_in = user_b_signs_in(&addr);
    let (health, tool) = health_and_tool_call(&addr);
    assert!(attack.running(), "the measurements must overlap the attack");
    let sent = attack.sent.load(Ordering::SeqCst);
    attack.stop();
    eprintln!(
        "authorize flood: {sent} requests; meanwhile B's sign-in {sign_in:?}, /health {health:?}, tool call {tool:?}"
    );
    assert!(
        sign_in < Duration::from_secs(5),
        "B's sign-in took {sign_in:?}"
    );
    assert!(health < FAST, "/health took {health:?}");
    assert!(tool < FAST, "a tool call took {tool:?}");

    // Every address holds at most its 5, the table at most 200; the first pages of the flood
    // were ended by the flood itself.
    let o = srv.oauth();
    for n in 1..=ADDRESSES {
        let (total, mine) = o.pending_counts(IpAddr::from(attacker(2, n)));
        assert!(total <= 200 && mine <= 5, "{total} {mine}");
    }
    let first = first.lock().unwrap().clone().unwrap();
    assert_eq!(
        request_from(attacker(2, 1), &addr, "GET", &first, &[], "").status,
        400
    );
    // The person's sign-in, open all along, completes.
    assert_eq!(o.pending_counts(IpAddr::from(HOME)).1, 1);
    let r = exchange(
        &addr,
        &client,
        &code_of(&submit(HOME, &addr, &person, SLUG_A, SECRET_A)),
        &person.verifier,
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn wrong_secrets_from_many_addresses_are_slowed_per_user_not_the_right_one() {
    let sim = sim();
    let srv = start(&sim, &[], |_| {});
    let addr = srv.addr.clone();
    let client = client_id(&register(HOME, &addr));

    // 12 addresses guess user A's secret over and over, each staying below the per-address
    // block.
    const ADDRESSES: usize = 12;
    let outcomes: Arc<Mutex<HashMap<&'static str, usize>>> = Arc::default();
    let (o, a, c) = (outcomes.clone(), addr.clone(), client.clone());
    // Each address keeps a sign-in page open and guesses on it until it is closed (after five
    // checked guesses).
    let pages: Arc<Vec<Mutex<Option<Page>>>> =
        Arc::new((0..ADDRESSES).map(|_| Mutex::new(None)).collect());
    let attack = Attack::start(ADDRESSES, 2000, move |t, _| {
        // A short pause between guesses keeps this test from hogging a small machine.
        std::thread::sleep(Duration::from_millis(50));
        let src = attacker(3, 1 + t);
        let mut page = pages[t].lock().unwrap();
        let p = page.get_or_insert_with(|| open_page(src, &a, &c));
        let r = submit(src, &a, p, SLUG_A, "not-the-secret");
        let kind = match r.status {
            401 => "checked",
            400 if r.body.contains("Too many wrong attempts for this sign-in") => {
                *page = None;
                "checked"
            }
            429 if r.body.contains("for this user") => {
                assert!(r.header("Retry-After").is_some(), "{r:?}");
                "refused"
            }
            _ => panic!("{r:?}"),
        };
        *o.lock().unwrap().entry(kind).or_default() += 1;
    });
    // Every address has made its first guess (the later ones waited for their turn).
    attack.under_way(2 * ADDRESSES);
    // The person, from their own address, with the right secret: delayed by the cap (4 s) at
    // most, never refused.
    let page = open_page(HOME, &addr, &client);
    let started = Instant::now();
    let r = submit(HOME, &addr, &page, SLUG_A, SECRET_A);
    let person = started.elapsed();
    let r = exchange(&addr, &client, &code_of(&r), &page.verifier);
    assert_eq!(r.status, 200, "{r:?}");
    // Another user is not slowed at all.
    let sign_in = user_b_signs_in(&addr);
    let (health, tool) = health_and_tool_call(&addr);
    // Let the attack run for a while in total.
    std::thread::sleep(Duration::from_secs(3));
    assert!(attack.running(), "the measurements must overlap the attack");
    let elapsed = started.elapsed();
    attack.stop();
    assert!(
        person < Duration::from_secs(7),
        "A's sign-in took {person:?}"
    );
    assert!(
        sign_in < Duration::from_secs(5),
        "B's sign-in took {sign_in:?}"
    );
    assert!(health < FAST, "/health took {health:?}");
    assert!(tool < FAST, "a tool call took {tool:?}");
    let outcomes = outcomes.lock().unwrap();
    let checked = outcomes.get("checked").copied().unwrap_or(0);
    let refused = outcomes.get("refused").copied().unwrap_or(0);
    eprintln!(
        "wrong secrets for one user from {ADDRESSES} addresses for {elapsed:?}: {checked} checked, {refused} refused; meanwhile A's right secret {person:?}, B's sign-in {sign_in:?}, /health {health:?}, tool call {tool:?}"
    );
    // Without the per-user schedule every attempt is checked (12 addresses × 10 before any
    // address is blocked). With it: 3 free failures, one attempt per address that had not
    // failed yet, and the queue, whose slots are 0.25, 0.5, 1, 2, then 4 s apart and are
    // handed out up to 4 s ahead.
    let queue_slots = 6 + (elapsed.as_secs() as usize + 4) / 4;
    assert!(
        checked <= 3 + ADDRESSES + queue_slots + 4,
        "{checked} wrong secrets checked in {elapsed:?} ({refused} refused)"
    );
    assert!(refused >= 50, "{checked} checked, {refused} refused");
}
