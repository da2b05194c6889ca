//! kimai-mcp: an MCP server for the Kimai time-tracking system.
//!
//! Data flows one way (design §1): a transport (`stdio`, or `http` for `serve`: Streamable
//! HTTP and legacy SSE) reads a message, `mcp` parses and classifies it, `dispatch` runs the
//! MCP lifecycle and calls `tools`; tools talk to Kimai through `kimai`, as the connection's
//! `kimai::Account`. Beside `http`: `session` (the session table and its sweeper), `guard`
//! (limits per address and per credential, Host/Origin, trusted proxies, the Kimai URL
//! policy), `oauth` (the authorization server's rules and store, and `oauth::oidc`, the
//! relying party of the company's identity provider), `provision` (Kimai tokens made for people
//! the identity provider signs in), `metrics`. Below everything:
//! `text` (rendering Kimai text safely), `secret` (random values), `net` (sockets and URL
//! decoding shared by both HTTP servers). `config` turns the command line and environment into
//! one immutable value before anything runs; `setup` writes Claude Desktop's configuration;
//! `systemd` talks to the service manager; `logging` writes `--log-format json` lines;
//! `healthcheck` asks a running server's `/health` (`kimai-mcp health`, the container image's
//! health check). `sim` is a simulated Kimai for the demo, the tests and the benchmarks; it
//! shares no code with `kimai` or `tools` (only `net`).
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod dispatch;
pub mod guard;
pub mod healthcheck;
pub mod http;
pub mod kimai;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod provision;
pub mod secret;
pub mod session;
pub mod setup;
pub mod sim;
pub mod state;
pub mod stdio;
pub mod systemd;
pub mod text;
pub mod tools;

/// The version printed by `--version` and sent as `serverInfo.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
