//! Integration tests: the built `kimai-mcp` binary against the simulated Kimai.
//!
//! One test binary (conventions §11) with one module per area; `util` holds the helpers that
//! start the simulator and drive the binary over stdio with deadlines, and `util::http` those
//! that run `serve` and talk raw HTTP to it (also from chosen 127.x.y.z source addresses).

mod absence;
mod admin;
mod cli;
mod faults;
mod healthcheck;
mod hostile;
mod http;
mod isolation;
mod isolation_http;
mod isolation_oauth;
mod migration;
mod oauth;
mod oauth_cimd;
mod readonly;
mod secrets;
mod shared_state;
mod signals;
mod soak;
mod sse;
mod stdio;
mod systemd;
mod timesheet;
mod util;
