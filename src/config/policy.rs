//! `--read-only`, `--tools` and `--exclude-tools` (and their `KIMAI_MCP_*` variables): what
//! every connection of this process may do with the tools, for `stdio`, `demo` and `serve`.
//! A users.json entry and an OAuth token's scope can narrow it further per connection
//! (`tools::policy`), never widen it.

use super::{EnvFn, Error};
use crate::tools::policy::{Policy, parse_selectors};

#[derive(Default)]
pub(super) struct PolicyFlags {
    pub(super) read_only: bool,
    pub(super) tools: Vec<String>,
    pub(super) exclude: Vec<String>,
    /// `--audit-log FILE`.
    pub(super) audit_log: Option<String>,
}

impl PolicyFlags {
    pub(super) fn is_empty(&self) -> bool {
        !self.read_only
            && self.tools.is_empty()
            && self.exclude.is_empty()
            && self.audit_log.is_none()
    }

    /// `--audit-log FILE`, else `KIMAI_MCP_AUDIT_LOG`.
    pub(super) fn audit_log(&self, env: EnvFn) -> Option<std::path::PathBuf> {
        self.audit_log
            .clone()
            .or_else(|| env("KIMAI_MCP_AUDIT_LOG"))
            .filter(|s| !s.trim().is_empty())
            .map(std::path::PathBuf::from)
    }

    pub(super) fn resolve(&self, env: EnvFn) -> Result<Policy, Error> {
        let mut p = Policy::default();
        if self.read_only {
            p.read_only = Some("--read-only".into());
        } else if super::serve::switch(false, "--read-only", "KIMAI_MCP_READ_ONLY", env)? {
            p.read_only = Some("KIMAI_MCP_READ_ONLY".into());
        }
        let list = |given: &[String], var: &'static str, flag: &'static str| {
            let text = if given.is_empty() {
                env(var).unwrap_or_default()
            } else {
                given.join(",")
            };
            parse_selectors(&text, flag).map_err(|problem| Error::Invalid { flag, var, problem })
        };
        let allow = list(&self.tools, "KIMAI_MCP_TOOLS", "--tools")?;
        if !allow.is_empty() {
            p.allow.push(allow);
        }
        p.deny = list(&self.exclude, "KIMAI_MCP_EXCLUDE_TOOLS", "--exclude-tools")?;
        Ok(p)
    }
}
