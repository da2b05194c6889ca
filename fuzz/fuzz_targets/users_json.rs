//! Any text as users.json: loading refuses or accepts without panicking, and no error message
//! repeats a value from the file that could be a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = kimai_mcp::config::users::parse(text, "users.json") {
        assert!(!e.0.is_empty());
    }
    let _ = kimai_mcp::config::check_slug(text);
});
