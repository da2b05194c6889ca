//! kimai-mcp: an MCP server for the Kimai time-tracking system.
//!
//! Data flows one way (see the design card): a transport (`stdio`, later `http`) hands each
//! message to `dispatch`, which runs the MCP lifecycle and calls `tools`; tools talk to Kimai
//! through `kimai`. `sim` is a simulated Kimai for the demo, the tests and the benchmarks; it
//! shares no code with `kimai` or `tools`. `config` turns the command line and environment into
//! one immutable value before anything runs.
#![forbid(unsafe_code)]

pub mod config;
pub mod dispatch;
pub mod guard;
pub mod http;
pub mod kimai;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod oauth;
pub mod secret;
pub mod session;
pub mod setup;
pub mod sim;
pub mod stdio;
pub mod text;
pub mod tools;

/// The version printed by `--version` and sent as `serverInfo.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
