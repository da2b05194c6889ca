//! Any bytes as the OAuth server's inputs: form and query parsing, Basic credentials, client
//! registration metadata, authorization requests and token requests. None may panic; a
//! registration or authorization that is accepted must have produced a usable client or
//! request, and no token request without a real code or refresh token may succeed.
#![no_main]

use kimai_mcp::oauth::{OAuth, Settings, b64_decode, parse_form};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn server() -> &'static OAuth {
    static S: OnceLock<OAuth> = OnceLock::new();
    S.get_or_init(|| {
        let s = Settings {
            max_clients: 200,
            max_requests: 200,
            // No outbound fetches of client ID metadata documents from a fuzzer.
            client_metadata_documents: false,
            ..Settings::default()
        };
        OAuth::new("https://mcp.example.com", s, None).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = b64_decode(&String::from_utf8_lossy(data));
        return;
    };
    let _ = b64_decode(text);
    let o = server();
    let ip = std::net::IpAddr::from([192, 0, 2, 7]);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Ok(out) = o.register(&v, ip) {
            assert!(out["client_id"].as_str().is_some_and(|id| id.starts_with("kmc_")));
        }
    }
    if let Ok(p) = parse_form(text) {
        let _ = o.authorize(&p, ip);
        let issued = o.token(&p, None, &|_| true);
        assert!(issued.is_err(), "a token without a real code or refresh token");
        let _ = o.revoke(&p, None);
        let _ = o.verify(text);
    }
});
