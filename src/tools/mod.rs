//! The tool registry and what every tool shares: the call context, argument checking, the
//! mapping of failures to tool results, and the advertised `tools/list` entries.
//!
//! Tools are data (conventions §8): each tool is one file declaring its name, schema,
//! annotations and handler side by side; [`REGISTRY`] lists them in the order the Python
//! kimai-mcp advertised them, so that users' prompts carry over. Names, `action` values and
//! parameter names follow `reference/upstream-tool-schemas.json`; descriptions and output are
//! our own.
//!
//! Two kinds of failure end a call, both as a result with `isError: true` (MCP 2025-11-25:
//! input-validation errors are tool results so the model can correct itself): arguments that
//! do not fit the schema or the handler's own rules, and Kimai refusing, failing or being
//! unreachable. Protocol errors (unknown tool, malformed `tools/call`) are `dispatch`'s job.
//!
//! Threads: a handler runs on the transport's worker thread and may fan out reads with
//! `std::thread::scope`; [`Context`] is `Sync` for that.
//!
//! Files, by kind. The twelve tools, one file (or folder) each, in registry order: `entity`,
//! `timesheet`, `timer`, `rate`, `team_access`, `absence`, `calendar`, `meta`,
//! `user_current`, `analyze_project_team`, `config`, `comment`. The framework they stand on:
//! this file (registry, [`Context`], [`ToolError`], `tools/list`, `tools/call`), `args`
//! (argument access), `schema` (the JSON Schema subset we validate), `render` and `rows`
//! (text for entities and time records), `text` (safe strings), `time` (dates and
//! durations), `paging` and `fanout` (reading many pages or users), `lookups` (names for the
//! ids of plain records, remembered per token), `stats` (timesheet statistics) and `users`
//! (discovering the users a token can see). Helpers that several
//! tools share live in `common/`. A tool imports the framework, `common` and lower layers,
//! never another tool.

pub mod absence;
pub mod analyze_project_team;
pub mod args;
pub mod calendar;
pub mod comment;
pub mod common;
pub mod config;
pub mod entity;
pub mod fanout;
pub mod lookups;
pub mod meta;
pub mod paging;
pub mod policy;
pub mod rate;
pub mod render;
pub mod rows;
pub mod schema;
pub mod stats;
pub mod team_access;
/// The rendering of Kimai text, shared with the transports (it lives below `tools`).
pub use crate::text;
pub mod time;
pub mod timer;
pub mod timesheet;
pub mod user_current;
pub mod users;

use crate::kimai::{self, Account};
use crate::mcp::{self, Notifier};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// One tool: everything `tools/list` advertises and the handler that serves `tools/call`.
pub struct Tool {
    pub name: &'static str,
    /// Human-readable display name (`title`, MCP 2025-06-18).
    pub title: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
    /// The tool only reads (MCP `readOnlyHint`).
    pub read_only: bool,
    /// Some action may delete or overwrite data (`destructiveHint`).
    pub destructive: bool,
    /// Repeating a call with the same arguments has no further effect (`idempotentHint`).
    pub idempotent: bool,
    pub handler: fn(&Context, &Map<String, Value>) -> Result<Output, ToolError>,
}

/// Every tool, in the order the Python kimai-mcp advertised them.
pub static REGISTRY: &[Tool] = &[
    entity::TOOL,
    timesheet::TOOL,
    timer::TOOL,
    rate::TOOL,
    team_access::TOOL,
    absence::TOOL,
    calendar::TOOL,
    meta::TOOL,
    user_current::TOOL,
    analyze_project_team::TOOL,
    config::TOOL,
    comment::TOOL,
];

/// What a handler returns on success: one or more text blocks.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    pub blocks: Vec<String>,
}

impl Output {
    pub fn text(s: impl Into<String>) -> Output {
        Output {
            blocks: vec![s.into()],
        }
    }
}

/// Why a tool call failed.
#[derive(Debug)]
pub enum ToolError {
    /// The arguments are wrong: the message names the argument and what to send instead.
    Invalid(String),
    /// Kimai refused the request, failed, or could not be reached (boxed: the error carries
    /// Kimai's message and details, and most results are not errors).
    Kimai(Box<kimai::Error>),
    /// Any other failure the model can act on (e.g. nothing matched).
    Failed(String),
}

impl From<kimai::Error> for ToolError {
    fn from(e: kimai::Error) -> ToolError {
        ToolError::Kimai(Box::new(e))
    }
}

impl ToolError {
    /// The text the model sees.
    pub fn message(&self) -> String {
        match self {
            ToolError::Invalid(m) => format!("Invalid arguments: {m}"),
            ToolError::Failed(m) => format!("Error: {m}"),
            ToolError::Kimai(e) => kimai_error_text(e),
        }
    }
}

/// Describes a Kimai failure for the model: what happened, Kimai's own validation messages,
/// and what to do about it.
pub fn kimai_error_text(e: &kimai::Error) -> String {
    let mut out = format!("Kimai error: {e}");
    if let kimai::Error::Api {
        details: Some(details),
        ..
    } = e
    {
        out.push_str("\nDetails: ");
        out.push_str(&details_text(details));
    }
    if let Some(hint) = e.hint() {
        out.push_str("\nHint: ");
        out.push_str(hint);
    }
    // A refused change of a time record is most often not a role problem (contract §7.5).
    if let kimai::Error::Api {
        status: 403,
        method,
        path,
        ..
    } = e
        && *method != kimai::Method::Get
        && path.starts_with("/timesheets/")
    {
        out.push_str(
            "\nFor a time record, Kimai also refuses this when the record is exported or lies in the \
             locked period (lockdown); an administrator can unlock or change it.",
        );
    }
    out
}

/// Flattens Kimai's validation error tree (both 400 shapes) to `field: message` pairs.
fn details_text(details: &Value) -> String {
    let mut parts = Vec::new();
    collect_errors(details, "", &mut parts);
    if parts.is_empty() {
        text::safe(&details.to_string())
    } else {
        parts.join("; ")
    }
}

fn collect_errors(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else { return };
    if let Some(Value::Array(errors)) = obj.get("errors") {
        for e in errors.iter().filter_map(Value::as_str) {
            if path.is_empty() {
                out.push(text::safe(e));
            } else {
                out.push(format!("{path}: {}", text::safe(e)));
            }
        }
    } else if let Some(inner @ Value::Object(_)) = obj.get("errors") {
        collect_errors(inner, path, out);
    }
    match obj.get("children") {
        Some(Value::Object(children)) => {
            for (k, v) in children {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect_errors(v, &p, out);
            }
        }
        Some(Value::Array(children)) => {
            for (i, v) in children.iter().enumerate() {
                collect_errors(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The finished result of one `tools/call`.
#[derive(Debug, PartialEq)]
pub struct CallOutcome {
    pub blocks: Vec<String>,
    pub is_error: bool,
}

impl CallOutcome {
    pub fn failed(message: String) -> CallOutcome {
        CallOutcome {
            blocks: vec![message],
            is_error: true,
        }
    }

    /// The MCP `CallToolResult`.
    pub fn to_json(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .map(|b| json!({"type": "text", "text": b}))
            .collect();
        json!({"content": content, "isError": self.is_error})
    }
}

/// What a handler may use: the Kimai account, progress notifications and cancellation.
pub struct Context<'a> {
    backend: &'a Account,
    notifier: &'a dyn Notifier,
    progress_token: Option<Value>,
    cancelled: &'a AtomicBool,
}

impl<'a> Context<'a> {
    pub fn new(
        backend: &'a Account,
        notifier: &'a dyn Notifier,
        progress_token: Option<Value>,
        cancelled: &'a AtomicBool,
    ) -> Context<'a> {
        Context {
            backend,
            notifier,
            progress_token,
            cancelled,
        }
    }

    /// Sends one request to Kimai as this connection's user. A cancelled call stops here,
    /// before the request goes out.
    pub fn call(&self, req: &kimai::Request) -> Result<kimai::Response, ToolError> {
        let cancelled = || self.cancelled.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        let result = self
            .backend
            .client
            .call_cancellable(&self.backend.token, req, &cancelled);
        if let Some(usage) = &self.backend.usage
            && !matches!(result, Err(kimai::Error::Cancelled))
        {
            usage.kimai_request(started.elapsed());
            if matches!(result, Err(kimai::Error::Unauthorized { .. })) {
                usage.kimai_unauthorized();
            }
        }
        Ok(result?)
    }

    /// GET `path` and return the body.
    /// The Kimai this call talks to (its base URL; no secret).
    pub fn kimai_url(&self) -> &str {
        self.backend.client.base_url()
    }

    pub fn get(&self, path: &str) -> Result<Value, ToolError> {
        Ok(self.call(&kimai::Request::get(path))?.body)
    }

    /// What an earlier call of this token remembered under `kind` (see `kimai::Memo`).
    pub fn remembered<T: std::any::Any + Send + Sync>(
        &self,
        kind: &'static str,
    ) -> Option<std::sync::Arc<T>> {
        self.backend.client.memo_get(&self.backend.token, kind)
    }

    /// Remembers `value` under `kind` for this token, for a short time.
    pub fn remember<T: std::any::Any + Send + Sync>(
        &self,
        kind: &'static str,
        value: std::sync::Arc<T>,
    ) {
        self.backend
            .client
            .memo_put(&self.backend.token, kind, value);
    }

    /// Marks the call cancelled, as a `notifications/cancelled` would (tests only).
    #[cfg(test)]
    pub fn test_cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Reports progress when the call carried a `progressToken`; otherwise does nothing.
    pub fn progress(&self, done: u64, total: Option<u64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({"progressToken": token, "progress": done});
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.notifier
            .notify(mcp::notification("notifications/progress", params));
    }
}

/// Looks a tool up by name.
pub fn find(registry: &'static [Tool], name: &str) -> Option<&'static Tool> {
    registry.iter().find(|t| t.name == name)
}

/// The `action`s that only read, whatever the tool: a call of any other action of a tool
/// that is not read-only changes Kimai data.
pub const READ_ACTIONS: [&str; 9] = [
    "list",
    "get",
    "user_guide",
    "active",
    "recent",
    "favorites",
    "statistics",
    "types",
    "attendance",
];

/// Whether a `tools/call` of `name` with `args` may change Kimai data (and so needs the OAuth
/// scope `kimai:write`). A read-only tool never writes, and an unknown one is no call at all
/// (the dispatcher refuses it). Otherwise only an `action` in [`READ_ACTIONS`] reads; any
/// other action, a missing one or one that is not a string counts as a write, so that a new
/// action is refused to read-only tokens until it is classified here.
pub fn call_writes(name: &str, args: &Map<String, Value>) -> bool {
    let Some(tool) = find(REGISTRY, name) else {
        return false;
    };
    if tool.read_only {
        return false;
    }
    let action = args.get("action").and_then(Value::as_str);
    !action.is_some_and(|a| READ_ACTIONS.contains(&a))
}

/// Every tool name, in registry order.
pub fn names(registry: &[Tool]) -> Vec<&'static str> {
    registry.iter().map(|t| t.name).collect()
}

/// A client-supplied name, made safe to echo in an error message.
pub use crate::text::quote_name;

fn schemas() -> &'static [Value] {
    static SCHEMAS: OnceLock<Vec<Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| REGISTRY.iter().map(|t| (t.schema)()).collect())
}

/// The input schema of `tool`: built once for the tools of [`REGISTRY`], on demand for others
/// (test registries).
pub(crate) fn schema_of(tool: &Tool) -> Cow<'static, Value> {
    match REGISTRY.iter().position(|t| std::ptr::eq(t, tool)) {
        Some(i) => Cow::Borrowed(&schemas()[i]),
        None => Cow::Owned((tool.schema)()),
    }
}

/// The `tools` array of `tools/list`; built once for [`REGISTRY`].
pub fn list_json(registry: &'static [Tool]) -> Cow<'static, Value> {
    static LIST: OnceLock<Value> = OnceLock::new();
    if std::ptr::eq(registry, REGISTRY) {
        Cow::Borrowed(LIST.get_or_init(|| build_list(REGISTRY)))
    } else {
        Cow::Owned(build_list(registry))
    }
}

fn build_list(registry: &[Tool]) -> Value {
    {
        Value::Array(
            registry
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "title": t.title,
                        "description": t.description,
                        "inputSchema": schema_of(t).into_owned(),
                        "annotations": annotations(t.read_only, t.destructive, t.idempotent),
                    })
                })
                .collect(),
        )
    }
}

/// A tool's annotations, saying only what differs from MCP's defaults (no destructive or
/// idempotent hint for a read-only tool, where they mean nothing; `openWorldHint` is true by
/// default, as Kimai is an external system; the title is the tool's own `title`). The read-only
/// hint is always there: clients show it.
pub fn annotations(read_only: bool, destructive: bool, idempotent: bool) -> Value {
    if read_only {
        return json!({"readOnlyHint": true});
    }
    let mut a = json!({"readOnlyHint": false});
    if !destructive {
        a["destructiveHint"] = json!(false);
    }
    if idempotent {
        a["idempotentHint"] = json!(true);
    }
    a
}

/// Checks the arguments, runs the handler, and maps every failure to an `isError` result.
pub fn call(tool: &Tool, ctx: &Context, args: &Map<String, Value>) -> CallOutcome {
    let args_value = Value::Object(args.clone());
    if let Err(e) = schema::validate(&schema_of(tool), &args_value) {
        return CallOutcome::failed(format!("Invalid arguments for {}: {e}", tool.name));
    }
    match (tool.handler)(ctx, args) {
        Ok(out) => CallOutcome {
            blocks: out.blocks,
            is_error: false,
        },
        Err(e) => {
            if let ToolError::Kimai(k) = &e {
                log::warn!("tool {}: kimai request failed: {k}", tool.name);
            }
            CallOutcome::failed(e.message())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for t in REGISTRY {
            assert!(seen.insert(t.name), "duplicate tool {}", t.name);
            assert!(!t.name.is_empty() && t.name.len() <= 128);
            assert!(
                t.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
                "{}",
                t.name
            );
            assert!(
                t.description.len() >= 40,
                "{} needs a real description",
                t.name
            );
            assert!(!t.title.is_empty());
            // A read-only tool cannot be destructive.
            assert!(!(t.read_only && t.destructive), "{}", t.name);
        }
    }

    #[test]
    fn every_schema_is_a_closed_object_the_validator_fully_understands() {
        for t in REGISTRY {
            let s = (t.schema)();
            assert_eq!(s["type"], "object", "{}", t.name);
            assert_eq!(s["additionalProperties"], false, "{}", t.name);
            assert!(
                schema::unknown_keywords(&s).is_empty(),
                "{}: {:?}",
                t.name,
                schema::unknown_keywords(&s)
            );
            // Every nested object is closed too.
            fn closed(v: &Value, tool: &str) {
                if let Some(o) = v.as_object() {
                    if o.get("type") == Some(&json!("object")) {
                        assert_eq!(
                            o.get("additionalProperties"),
                            Some(&json!(false)),
                            "{tool}: open object {v}"
                        );
                    }
                    for sub in o.values() {
                        closed(sub, tool);
                    }
                }
            }
            closed(&s, t.name);
        }
    }

    #[test]
    fn names_and_parameters_match_the_python_kimai_mcp() {
        // The reference schemas: same names, same enums, same required fields.
        let reference: Value =
            serde_json::from_str(include_str!("../../tests/data/upstream-tool-schemas.json"))
                .unwrap();
        let reference = reference["tools"].as_array().unwrap();
        for t in REGISTRY {
            let r = reference
                .iter()
                .find(|r| r["name"] == t.name)
                .unwrap_or_else(|| panic!("{} not in reference", t.name));
            let ours = (t.schema)();
            let theirs = &r["inputSchema"];
            let keys = |v: &Value| {
                let mut k: Vec<String> = v["properties"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                k.sort();
                k
            };
            // Every parameter of the Python server, and nothing more but the additive ones of
            // this server (`dry_run` previews).
            const ADDED: [&str; 1] = ["dry_run"];
            let mut mine = keys(&ours);
            mine.retain(|k| !ADDED.contains(&k.as_str()));
            assert_eq!(mine, keys(theirs), "{}: parameter names", t.name);
            assert_eq!(
                ours.get("required"),
                theirs.get("required"),
                "{}: required",
                t.name
            );
            for (k, p) in theirs["properties"].as_object().unwrap() {
                assert_eq!(
                    ours["properties"][k].get("enum"),
                    p.get("enum"),
                    "{}.{k}: enum",
                    t.name
                );
                assert_eq!(
                    ours["properties"][k].get("type"),
                    p.get("type"),
                    "{}.{k}: type",
                    t.name
                );
                nested_match(&ours["properties"][k], p, &format!("{}.{k}", t.name));
            }
        }
    }

    /// The nested parameters of a reference schema (`filters.*`, `data.*`, array items) are all
    /// in ours, with the same type and enum; a closed object of theirs stays closed in ours.
    fn nested_match(ours: &Value, theirs: &Value, at: &str) {
        if theirs.get("additionalProperties") == Some(&Value::Bool(false)) {
            assert_eq!(
                ours.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{at}: closed"
            );
        }
        if let Some(props) = theirs.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                let mine = ours
                    .pointer(&format!("/properties/{k}"))
                    .unwrap_or_else(|| panic!("{at}.{k} is missing"));
                // Where theirs names a type or an enum, ours is the same.
                if p.get("type").is_some() {
                    assert_eq!(mine.get("type"), p.get("type"), "{at}.{k}: type");
                }
                if p.get("enum").is_some() {
                    assert_eq!(mine.get("enum"), p.get("enum"), "{at}.{k}: enum");
                }
                nested_match(mine, p, &format!("{at}.{k}"));
            }
            if let Some(r) = theirs.get("required") {
                assert_eq!(ours.get("required"), Some(r), "{at}: required");
            }
        }
        if let (Some(mi), Some(ti)) = (ours.get("items"), theirs.get("items")) {
            if ti.get("type").is_some() {
                assert_eq!(mi.get("type"), ti.get("type"), "{at}[]: type");
            }
            if ti.get("enum").is_some() {
                assert_eq!(mi.get("enum"), ti.get("enum"), "{at}[]: enum");
            }
            nested_match(mi, ti, &format!("{at}[]"));
        }
    }

    /// The tools array costs every conversation its size in context: at most 24,000 bytes of
    /// compact JSON with every tool (it was 33 KB), said once, without losing a parameter.
    #[test]
    fn the_tool_list_stays_small() {
        let size = list_json(REGISTRY).to_string().len();
        assert!(size <= 24_000, "the tools array is {size} bytes");
        // And no tool is cut to nothing.
        for t in REGISTRY {
            assert!(t.description.len() >= 100, "{}: {}", t.name, t.description);
        }
    }

    /// Every action of every tool, classified: a new action (or tool) fails here until it is
    /// put in one of these lists (and, if it reads, in [`READ_ACTIONS`]).
    #[test]
    fn every_action_is_classified_as_read_or_write() {
        let reads: &[(&str, &[&str])] = &[
            ("entity", &["list", "get"]),
            ("timesheet", &["list", "get", "user_guide"]),
            ("timer", &["active", "recent", "favorites"]),
            ("rate", &["list"]),
            ("team_access", &[]),
            ("absence", &["list", "statistics", "types", "attendance"]),
            ("meta", &[]),
            ("comment", &["list"]),
        ];
        let writes: &[(&str, &[&str])] = &[
            (
                "entity",
                &[
                    "create",
                    "update",
                    "delete",
                    "lock_month",
                    "unlock_month",
                    "batch_delete",
                    "set_preferences",
                ],
            ),
            (
                "timesheet",
                &[
                    "create",
                    "update",
                    "delete",
                    "duplicate",
                    "export_toggle",
                    "meta_update",
                    "batch_delete",
                    "batch_export",
                ],
            ),
            (
                "timer",
                &["start", "stop", "restart", "favorite", "unfavorite"],
            ),
            ("rate", &["add", "delete"]),
            (
                "team_access",
                &["add_member", "remove_member", "grant", "revoke"],
            ),
            (
                "absence",
                &[
                    "create",
                    "delete",
                    "approve",
                    "reject",
                    "request",
                    "batch_delete",
                    "batch_approve",
                    "batch_reject",
                ],
            ),
            ("meta", &["update"]),
            ("comment", &["create", "delete", "pin"]),
        ];
        let listed = |table: &[(&str, &[&str])], tool: &str, action: &str| {
            table
                .iter()
                .any(|(t, actions)| *t == tool && actions.contains(&action))
        };
        let args = |action: &str| {
            let mut m = Map::new();
            m.insert("action".into(), json!(action));
            m
        };
        for t in REGISTRY {
            let schema = (t.schema)();
            let Some(actions) = schema["properties"]["action"]["enum"].as_array() else {
                // No action: the whole tool reads or writes.
                assert!(t.read_only, "{} has no action and is not read-only", t.name);
                assert!(!call_writes(t.name, &Map::new()), "{}", t.name);
                continue;
            };
            for a in actions {
                let a = a.as_str().unwrap();
                let (read, write) = (listed(reads, t.name, a), listed(writes, t.name, a));
                assert!(
                    read != write,
                    "{}: action {a} must be listed once, as a read or as a write",
                    t.name
                );
                assert_eq!(call_writes(t.name, &args(a)), write, "{} {a}", t.name);
                // A read-only tool's actions never need write access.
                assert!(!(t.read_only && write), "{} {a}", t.name);
            }
        }
        // Every listed action exists.
        for (tool, actions) in reads.iter().chain(writes) {
            let t = find(REGISTRY, tool).unwrap_or_else(|| panic!("no tool {tool}"));
            let schema = (t.schema)();
            let enum_ = schema["properties"]["action"]["enum"].as_array().unwrap();
            for a in actions.iter() {
                assert!(enum_.contains(&json!(a)), "{tool} has no action {a}");
            }
        }
        // Failing closed: no action, an action that is not a string or one that no schema
        // knows, on a tool that writes; an unknown tool is no write (the dispatcher refuses it).
        assert!(call_writes("timesheet", &Map::new()));
        let mut odd = Map::new();
        odd.insert("action".into(), json!(["list"]));
        assert!(call_writes("timesheet", &odd));
        assert!(call_writes("timesheet", &args("export_everything")));
        assert!(!call_writes("user_current", &args("delete")));
        assert!(!call_writes("no_such_tool", &args("delete")));
    }

    #[test]
    fn list_json_has_descriptions_and_annotations() {
        let list = list_json(REGISTRY);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), REGISTRY.len());
        for t in list {
            assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
            assert!(t["annotations"]["readOnlyHint"].is_boolean());
            assert!(t["inputSchema"].is_object());
        }
    }

    /// An account whose client is never contacted (nothing listens on port 9).
    pub(crate) fn offline_backend() -> Account {
        Account::offline_for_tests()
    }

    #[test]
    fn parallel_keeps_order_and_bounds_concurrency() {
        use std::sync::atomic::AtomicUsize;
        let backend = offline_backend();
        let flag = AtomicBool::new(false);
        let ctx = Context::new(&backend, &mcp::NoNotifier, None, &flag);
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u32> = (0..40).collect();
        let out = fanout::parallel(&ctx, &items, 4, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| Some(i * 2)).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4 && peak.load(Ordering::SeqCst) >= 2);
        flag.store(true, Ordering::SeqCst);
        let out = fanout::parallel(&ctx, &items, 4, |i| *i);
        assert!(
            out.iter().all(Option::is_none),
            "nothing starts once cancelled"
        );
    }

    struct Collect(std::sync::Mutex<Vec<Value>>);
    impl Notifier for Collect {
        fn notify(&self, message: Value) {
            self.0.lock().unwrap().push(message);
        }
    }

    #[test]
    fn progress_is_sent_only_with_a_token() {
        let client = kimai::Client::new(kimai::Settings::new(
            "http://127.0.0.1:9",
            kimai::Tls::Verify,
        ))
        .unwrap();
        let backend = Account::new(std::sync::Arc::new(client), kimai::Token::new("t".into()));
        let sink = Collect(Default::default());
        let flag = AtomicBool::new(false);
        Context::new(&backend, &sink, None, &flag).progress(1, Some(2), None);
        assert!(sink.0.lock().unwrap().is_empty());
        Context::new(&backend, &sink, Some(json!("tok")), &flag).progress(
            1,
            Some(4),
            Some("page 1 of 4"),
        );
        let sent = sink.0.lock().unwrap();
        assert_eq!(
            sent[0],
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","progress":1,"total":4,"message":"page 1 of 4"}})
        );
    }

    #[test]
    fn validation_error_details_are_flattened() {
        let form = json!({"errors": ["This form should not contain extra fields."], "children": {"begin": {}, "project": {"errors": ["A project needs to be selected."]}}});
        assert_eq!(
            details_text(&form),
            "This form should not contain extra fields.; project: A project needs to be selected."
        );
        let service = json!({"children": {"end_date": {"errors": ["The end date must not be earlier than the start date."]}}});
        assert_eq!(
            details_text(&service),
            "end_date: The end date must not be earlier than the start date."
        );
        let nested = json!({"children": {"members": {"children": [{"children": {"user": {"errors": ["bad\nuser"]}}}]}}});
        assert_eq!(details_text(&nested), "members[0].user: \"bad\\nuser\"");
    }
}
