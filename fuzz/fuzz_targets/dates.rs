//! Any text as a date, date-time, Kimai timestamp or duration argument: parsed or refused
//! with a message, never a panic; what parses prints back in Kimai's format.
#![no_main]

use kimai_mcp::tools::time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(l) = time::parse_local("begin", s, time::DayEdge::End) {
        let shown = l.to_string();
        assert_eq!(time::parse_local("begin", &shown, time::DayEdge::Start).ok(), Some(l));
    }
    if let Some(st) = time::parse_stamp(s) {
        let _ = st.unix();
    }
    let _ = time::parse_duration("break", &serde_json::Value::String(s.to_string()));
    let _ = time::show_stamp(s);
});
