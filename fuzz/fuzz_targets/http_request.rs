//! Any bytes as what a client sends on a connection: request lines, headers, bodies, query
//! strings. The parser answers each request or refuses with a 4xx, never panics, and never
//! returns a body larger than the limit.
#![no_main]

use kimai_mcp::http::server::{Limits, parse_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head_bytes: 4096, max_body_bytes: 8192, ..Limits::default() };
    let (requests, refused) = parse_all(data, &limits);
    for (method, path, body) in &requests {
        assert!(!method.is_empty() && path.starts_with('/'));
        assert!(*body <= limits.max_body_bytes);
    }
    if let Some(status) = refused {
        assert!((400..500).contains(&status), "{status}");
    }
});
