//! Any JSON as the arguments of every tool: the schema check never panics and always either
//! accepts or names a reason.
#![no_main]

use kimai_mcp::tools::{REGISTRY, schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for tool in REGISTRY {
        let s = (tool.schema)();
        if let Err(reason) = schema::validate(&s, &value) {
            assert!(!reason.is_empty());
        }
    }
});
