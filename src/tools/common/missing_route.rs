//! Missing Kimai endpoints: a route this Kimai does not have (405, or a debug 404) becomes a
//! sentence naming the Kimai version or plugin that added it, so the model can tell the user
//! to upgrade instead of retrying. Used by every tool that calls a versioned endpoint.

use crate::tools::ToolError;

/// Turns a missing-route failure into a sentence naming the Kimai version (or plugin) that
/// has the endpoint; other failures pass through.
pub fn needs(e: ToolError, what: &str, since: &str) -> ToolError {
    match e {
        ToolError::Kimai(k) if k.is_missing_route() => ToolError::Failed(format!(
            "{what} needs {since}; this Kimai does not have the endpoint ({k})"
        )),
        other => other,
    }
}
