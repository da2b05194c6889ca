//! Any bytes as one stdio line / HTTP body: the JSON-RPC parser and the dispatcher must answer
//! (or stay silent for notifications) without panicking. Tool calls reach a Kimai URL where
//! nothing listens, so they fail fast.
#![no_main]

use kimai_mcp::dispatch::{Connection, Dispatcher, Env};
use kimai_mcp::kimai::{Client, Settings, Tls, Token};
use kimai_mcp::mcp::NoNotifier;
use kimai_mcp::kimai::Account;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn backend() -> &'static Account {
    static B: OnceLock<Account> = OnceLock::new();
    B.get_or_init(|| {
        let mut s = Settings::new("http://127.0.0.1:9", Tls::Verify);
        s.max_retries = 0;
        let client = Client::new(s).expect("a client for a fixed URL");
        Account::new(Arc::new(client), Token::new("t".into()))
    })
}

/// What a transport does with one line or body: parse and classify, then dispatch.
fn handle(d: &Dispatcher, conn: &Connection, bytes: &[u8], env: &Env) -> Option<serde_json::Value> {
    match kimai_mcp::mcp::parse_incoming(bytes) {
        Err(resp) => Some(resp),
        Ok(incoming) => d.handle_incoming(conn, incoming, env),
    }
}

fuzz_target!(|data: &[u8]| {
    let d = Dispatcher::new();
    let conn = Connection::new();
    let env = Env { backend: backend(), notifier: &NoNotifier, label: "user=fuzz" };
    // Once as the first message, once after a handshake (so tools/list and batches are reached).
    let _ = handle(&d, &conn, data, &env);
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}"#;
    let conn = Connection::new();
    let _ = handle(&d, &conn, init, &env);
    if let Some(reply) = handle(&d, &conn, data, &env) {
        // Every reply serialises to one line.
        let line = serde_json::to_string(&reply).expect("a reply serialises");
        assert!(!line.contains('\n'));
    }
});
