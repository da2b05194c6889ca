//! What one connection may do with the tools: read only, and which tools and actions.
//!
//! A [`Policy`] comes from every level that may restrict — the command line (`--read-only`,
//! `--tools`, `--exclude-tools`), the user's `users.json` entry (`read_only`, `tools`,
//! `exclude_tools`), and an OAuth token's scope (`kimai:read`) — combined by
//! [`Policy::narrow`], which can only take away. `tools/list` shows what the policy leaves
//! (action enums pruned, a tool with no action left not listed, annotations saying read-only
//! when only reads are left), and a call outside it is refused before any Kimai request.
//!
//! Selectors name a tool (`timesheet`) or one action of it (`timesheet.delete`); they are
//! checked against the registry, so a typo stops the server at start instead of silently
//! allowing or hiding nothing.

use super::{READ_ACTIONS, REGISTRY, Tool};
use serde_json::{Map, Value};
use std::fmt;

/// A tool, or one action of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub tool: String,
    pub action: Option<String>,
}

impl Selector {
    fn matches(&self, tool: &str, action: Option<&str>) -> bool {
        self.tool == tool
            && match &self.action {
                None => true,
                Some(a) => action == Some(a.as_str()),
            }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Some(a) => write!(f, "{}.{a}", self.tool),
            None => f.write_str(&self.tool),
        }
    }
}

/// What a connection may do. The default allows everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Only actions that read; where it comes from, for messages (e.g. "--read-only").
    pub read_only: Option<String>,
    /// Only these tools or actions (`None`: all); several lists must all allow.
    pub allow: Vec<Vec<Selector>>,
    /// Never these.
    pub deny: Vec<Selector>,
}

/// The actions a tool's schema declares (`properties.action.enum`); empty for a tool without
/// actions.
pub fn actions_of(schema: &Value) -> Vec<&str> {
    schema
        .pointer("/properties/action/enum")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `action` of `tool` may change Kimai data (no action: the tool's own flag).
pub fn writes(tool: &Tool, action: Option<&str>) -> bool {
    !tool.read_only && !action.is_some_and(|a| READ_ACTIONS.contains(&a))
}

/// Parses a comma- or space-separated list of selectors, each checked against the registry.
/// `what` names the setting in messages.
pub fn parse_selectors(list: &str, what: &str) -> Result<Vec<Selector>, String> {
    let mut out = Vec::new();
    for item in list
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (tool, action) = match item.split_once('.') {
            Some((t, a)) => (t, Some(a)),
            None => (item, None),
        };
        let Some(t) = REGISTRY.iter().find(|t| t.name == tool) else {
            return Err(format!(
                "{what}: unknown tool {:?}; the tools are {}",
                item.chars().take(40).collect::<String>(),
                REGISTRY
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if let Some(a) = action {
            let schema = (t.schema)();
            let known = actions_of(&schema);
            if !known.contains(&a) {
                return Err(format!(
                    "{what}: {tool} has no action {:?}; its actions are {}",
                    a.chars().take(40).collect::<String>(),
                    if known.is_empty() {
                        "none (name the tool alone)".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        out.push(Selector {
            tool: tool.to_string(),
            action: action.map(str::to_string),
        });
    }
    Ok(out)
}

impl Policy {
    /// Whether this policy allows everything.
    pub fn is_unrestricted(&self) -> bool {
        self.read_only.is_none() && self.allow.is_empty() && self.deny.is_empty()
    }

    /// Only reads, naming where that comes from.
    pub fn read_only(from: &str) -> Policy {
        Policy {
            read_only: Some(from.to_string()),
            ..Policy::default()
        }
    }

    /// This policy further restricted by `other`: read-only if either is, allowed only what
    /// both allow, denied what either denies.
    pub fn narrow(&self, other: &Policy) -> Policy {
        let mut p = self.clone();
        if p.read_only.is_none() {
            p.read_only.clone_from(&other.read_only);
        }
        p.allow.extend(other.allow.iter().cloned());
        p.deny.extend(other.deny.iter().cloned());
        p
    }

    /// Whether the tool is there at all (some action of it, or the tool itself, is allowed).
    fn tool_selected(&self, tool: &str) -> bool {
        !self
            .deny
            .iter()
            .any(|s| s.tool == tool && s.action.is_none())
            && self
                .allow
                .iter()
                .all(|list| list.iter().any(|s| s.tool == tool))
    }

    /// `Err(why)` when `action` of `tool` is outside this policy.
    pub fn check(&self, tool: &Tool, action: Option<&str>) -> Result<(), String> {
        if !self.tool_selected(tool.name) {
            return Err(format!(
                "the tool {} is not available to this connection (--tools / --exclude-tools or the user's tools in users.json)",
                tool.name
            ));
        }
        if let Some(a) = action {
            let denied = self.deny.iter().any(|s| s.matches(tool.name, Some(a)))
                || !self
                    .allow
                    .iter()
                    .all(|list| list.iter().any(|s| s.matches(tool.name, Some(a))));
            if denied {
                return Err(format!(
                    "{} action {a:?} is not available to this connection (--tools / --exclude-tools or the user's tools in users.json)",
                    tool.name
                ));
            }
        }
        if let Some(from) = &self.read_only
            && writes(tool, action)
        {
            return Err(format!(
                "this connection is read-only ({from}): {} {} changes Kimai data, so it was not sent to Kimai",
                tool.name,
                action.map_or(String::new(), |a| format!("action {a:?}"))
            ));
        }
        Ok(())
    }

    /// Whether anything of `tool` is left under this policy (else it is not listed, and a call
    /// of it is a call of an unknown tool).
    pub fn offers(&self, tool: &Tool) -> bool {
        if !self.tool_selected(tool.name) {
            return false;
        }
        let schema = super::schema_of(tool);
        let actions = actions_of(&schema);
        if actions.is_empty() {
            self.check(tool, None).is_ok()
        } else {
            actions.iter().any(|a| self.check(tool, Some(a)).is_ok())
        }
    }

    /// The tool as `tools/list` shows it under this policy, or `None` when nothing of it is
    /// left. `entry` is the unrestricted entry (name, description, inputSchema, annotations).
    pub fn list_entry(&self, tool: &Tool, entry: &Value) -> Option<Value> {
        if !self.tool_selected(tool.name) {
            return None;
        }
        let schema = entry.get("inputSchema")?;
        let actions = actions_of(schema);
        if actions.is_empty() {
            return self.check(tool, None).is_ok().then(|| entry.clone());
        }
        let left: Vec<&str> = actions
            .iter()
            .copied()
            .filter(|a| self.check(tool, Some(a)).is_ok())
            .collect();
        if left.is_empty() {
            return None;
        }
        let mut e = entry.clone();
        if left.len() != actions.len()
            && let Some(en) = e.pointer_mut("/inputSchema/properties/action/enum")
        {
            *en = Value::Array(left.iter().map(|a| Value::from(*a)).collect());
        }
        if !left.iter().any(|a| writes(tool, Some(a))) {
            e["annotations"] = super::annotations(true, false, true);
        }
        Some(e)
    }

    /// The action a call names (`action`), for [`Policy::check`].
    pub fn action_of(args: &Map<String, Value>) -> Option<&str> {
        args.get("action").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{find, list_json};

    fn tool(name: &str) -> &'static Tool {
        find(REGISTRY, name).unwrap()
    }

    #[test]
    fn selectors_are_checked_against_the_registry() {
        let s = parse_selectors("timesheet.list, user_current entity.delete", "--tools").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].to_string(), "timesheet.list");
        assert!(
            parse_selectors("timesheets", "--tools")
                .unwrap_err()
                .contains("unknown tool")
        );
        let e = parse_selectors("timesheet.remove", "--exclude-tools").unwrap_err();
        assert!(e.contains("no action") && e.contains("batch_delete"), "{e}");
        assert!(
            parse_selectors("calendar.list", "x")
                .unwrap_err()
                .contains("name the tool alone")
        );
    }

    #[test]
    fn read_only_leaves_only_reads_everywhere() {
        let p = Policy::read_only("--read-only");
        let list = list_json(REGISTRY);
        let mut listed = Vec::new();
        for (t, e) in REGISTRY.iter().zip(list.as_array().unwrap()) {
            match p.list_entry(t, e) {
                Some(e) => {
                    assert_eq!(e["annotations"]["readOnlyHint"], true, "{}", t.name);
                    for a in actions_of(&e["inputSchema"]) {
                        assert!(!writes(t, Some(a)), "{}.{a}", t.name);
                    }
                    listed.push(t.name);
                }
                None => {
                    // Nothing of it reads.
                    for a in actions_of(&e["inputSchema"]) {
                        assert!(writes(t, Some(a)), "{}.{a}", t.name);
                    }
                }
            }
            // Every write action is refused with the reason.
            for a in actions_of(&e["inputSchema"]) {
                let r = p.check(t, Some(a));
                assert_eq!(r.is_err(), writes(t, Some(a)), "{}.{a}", t.name);
                if let Err(why) = r {
                    assert!(why.contains("read-only (--read-only)"), "{why}");
                }
            }
        }
        assert!(!listed.contains(&"team_access") && !listed.contains(&"meta"));
        assert!(listed.contains(&"timesheet") && listed.contains(&"calendar"));
        // A call without an action on a tool with actions counts as a write.
        assert!(p.check(tool("timesheet"), None).is_err());
    }

    #[test]
    fn selections_narrow_and_never_widen() {
        let three = Policy {
            allow: vec![parse_selectors("timesheet,timer.active,user_current", "t").unwrap()],
            ..Policy::default()
        };
        let no_delete = Policy {
            deny: parse_selectors("timesheet.delete,timesheet.batch_delete", "t").unwrap(),
            ..Policy::default()
        };
        let p = three.narrow(&no_delete).narrow(&Policy::default());
        assert!(p.check(tool("timesheet"), Some("create")).is_ok());
        assert!(p.check(tool("timesheet"), Some("delete")).is_err());
        assert!(p.check(tool("timer"), Some("active")).is_ok());
        assert!(p.check(tool("timer"), Some("start")).is_err());
        assert!(p.check(tool("entity"), Some("list")).is_err());
        assert!(p.check(tool("user_current"), None).is_ok());
        // Two allow lists: only what both allow.
        let q = p.narrow(&Policy {
            allow: vec![parse_selectors("timer,user_current", "u").unwrap()],
            ..Policy::default()
        });
        assert!(q.check(tool("timesheet"), Some("list")).is_err());
        assert!(q.check(tool("timer"), Some("active")).is_ok());
        assert!(q.check(tool("timer"), Some("stop")).is_err());
        let list = list_json(REGISTRY);
        let names: Vec<&str> = REGISTRY
            .iter()
            .zip(list.as_array().unwrap())
            .filter_map(|(t, e)| q.list_entry(t, e).map(|_| t.name))
            .collect();
        assert_eq!(names, ["timer", "user_current"]);
        let timer = q.list_entry(tool("timer"), &list[2]).unwrap();
        assert_eq!(
            timer["inputSchema"]["properties"]["action"]["enum"],
            serde_json::json!(["active"])
        );
        assert_eq!(timer["annotations"]["readOnlyHint"], true);
    }
}
