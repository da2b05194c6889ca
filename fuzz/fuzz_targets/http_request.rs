//! Any bytes as what a client sends on a connection: request lines, headers, bodies, query
//! strings. The parser answers each request or refuses with a 4xx, never panics, never
//! returns a body larger than the limit, and accepts only strict HTTP/1.1 heads — checked here
//! on the raw bytes of each accepted head, independently of the parser (httparse plus our own
//! rules): every line ends in CRLF, no line is folded, the request line has exactly three
//! parts, and `Content-Length` is digits only and the length of the body returned.
#![no_main]

use kimai_mcp::http::server::{Limits, parse_requests};
use libfuzzer_sys::fuzz_target;

fn check_head(head: &[u8], body_len: usize) {
    // Empty lines before the request line are allowed (RFC 9112 §2.2); each is a CRLF.
    let mut head = head;
    while let Some(rest) = head.strip_prefix(b"\r\n") {
        head = rest;
    }
    assert!(head.ends_with(b"\r\n\r\n"), "{head:?}");
    for (i, b) in head.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && head[i - 1] == b'\r', "bare LF: {head:?}"),
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR: {head:?}"),
            _ => {}
        }
    }
    let text = std::str::from_utf8(head).expect("an accepted head is UTF-8");
    let mut lines = text[..text.len() - 4].split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    assert_eq!(request_line.split(' ').count(), 3, "{request_line:?}");
    let mut length = None;
    for line in lines {
        assert!(!line.starts_with([' ', '\t']), "folded: {line:?}");
        let (name, value) = line.split_once(':').expect("a header has a colon");
        assert!(!name.is_empty() && !name.contains([' ', '\t']), "{line:?}");
        if name.eq_ignore_ascii_case("content-length") {
            let value = value.trim_matches([' ', '\t']);
            assert!(
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
                "{value:?}"
            );
            length = Some(value.parse::<usize>().expect("within the body limit"));
        }
    }
    assert_eq!(length.unwrap_or(0), body_len);
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head_bytes: 4096, max_body_bytes: 8192, ..Limits::default() };
    let (requests, refused) = parse_requests(data, &limits);
    for r in &requests {
        assert!(!r.method.is_empty() && r.method.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(r.path.starts_with('/'));
        assert!(r.body_len <= limits.max_body_bytes);
        check_head(r.head, r.body_len);
    }
    if let Some(status) = refused {
        assert!((400..500).contains(&status), "{status}");
    }
});
