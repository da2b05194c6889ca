//! The Kimai account a connection acts as: the shared client of its Kimai instance, this
//! user's token, and whoever wants to hear about its use (the HTTP server's metrics).
//!
//! It lives here, below the tools, so that transports and the session table can hold one
//! without knowing the tools, and the tools can report Kimai latency without knowing metrics.

use super::{Client, Token};
use std::sync::Arc;
use std::time::Duration;

/// Hears how an account is used: each Kimai request's duration, and each tool call's outcome.
/// Implemented by the server's metrics; absent on stdio.
pub trait Usage: Send + Sync {
    /// One request to Kimai took `took` (cancelled requests are not reported).
    fn kimai_request(&self, took: Duration);
    /// One tool call ended with `outcome` (`ok`, `error` or `cancelled`).
    fn tool_call(&self, tool: &'static str, outcome: &'static str);
    /// Kimai answered 401 to this account's token (a provisioned user's token is then
    /// forgotten, `provision::Watch`). Nothing by default.
    fn kimai_unauthorized(&self) {}
}

/// The Kimai account of a connection. Cheap to clone.
#[derive(Clone)]
pub struct Account {
    pub client: Arc<Client>,
    pub token: Token,
    /// Where its use is counted (`serve`); `None` elsewhere.
    pub usage: Option<Arc<dyn Usage>>,
}

impl Account {
    /// An account whose use nobody counts.
    pub fn new(client: Arc<Client>, token: Token) -> Account {
        Account {
            client,
            token,
            usage: None,
        }
    }

    /// An account whose client is never contacted (nothing listens on port 9), for unit tests
    /// of code that needs one.
    #[cfg(test)]
    pub(crate) fn offline_for_tests() -> Account {
        let settings = super::Settings::new("http://127.0.0.1:9", super::Tls::Verify);
        let client =
            Client::new(settings).unwrap_or_else(|e| panic!("a client for a fixed valid URL: {e}"));
        Account::new(Arc::new(client), Token::new("t".into()))
    }

    /// The same account, its use reported to `usage`.
    pub fn counted_by(mut self, usage: Arc<dyn Usage>) -> Account {
        self.usage = Some(usage);
        self
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("client", &self.client)
            .field("token", &self.token)
            .field("usage", &self.usage.is_some())
            .finish()
    }
}
