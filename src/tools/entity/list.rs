//! `entity` action `list`: which filters apply to which type (the others are named in a
//! note, not sent), the Kimai query they become, and the list as text.

use super::failures::plugin_404;
use super::types::Type;
use crate::kimai::Request;
use crate::tools::common::missing_route::needs;
use crate::tools::common::user_render::render_user;
use crate::tools::render;
use crate::tools::{Context, Output, ToolError, args, text, time};
use serde_json::{Map, Value};

/// Which filters apply to which type.
fn applies(ty: Type, filter: &str) -> bool {
    use Type::*;
    match filter {
        "visible" | "order_by" | "order" => matches!(ty, Project | Activity | Customer | User),
        "term" => matches!(ty, Project | Activity | Customer | User | Tag),
        "customer" | "global_activities" | "ignore_dates" => ty == Project,
        "customers" => matches!(ty, Project | Invoice),
        "project" | "projects" | "globals" => ty == Activity,
        "name" => ty == Tag,
        "group" => ty == Holiday,
        "page" | "size" | "status" => ty == Invoice,
        "begin" | "end" => matches!(ty, Project | Invoice | Holiday),
        "full" => ty == Customer,
        _ => false,
    }
}

fn order_by_allowed(ty: Type) -> &'static [&'static str] {
    match ty {
        Type::Project => &["id", "name", "customer"],
        Type::Activity => &["id", "name", "project"],
        Type::Customer => &["id", "name"],
        Type::User => &["id", "username", "alias", "email"],
        _ => &[],
    }
}

fn filter_local(
    f: &Map<String, Value>,
    key: &str,
    edge: time::DayEdge,
) -> Result<Option<time::Local>, ToolError> {
    match args::string(f, key) {
        None => Ok(None),
        Some(s) => time::parse_local(&format!("filters.{key}"), s, edge)
            .map(Some)
            .map_err(ToolError::Invalid),
    }
}

/// Builds the list request for `ty` from the filters that apply; returns it with the names of
/// the filters that were ignored.
pub(super) fn list_request(
    ty: Type,
    f: &Map<String, Value>,
) -> Result<(Request, Vec<String>), ToolError> {
    let mut ignored: Vec<String> = f.keys().filter(|k| !applies(ty, k)).cloned().collect();
    ignored.sort();
    let has = |k: &str| applies(ty, k) && f.get(k).is_some_and(|v| !v.is_null());
    let mut req = Request::get(ty.path());
    if ty == Type::Tag {
        let name = args::string(f, "name");
        let term = args::string(f, "term");
        if let (Some(n), Some(t)) = (name, term)
            && n != t
        {
            return Err(ToolError::Invalid(
                "filters.name and filters.term both name the tag to find; send only one".into(),
            ));
        }
        // GET /tags/find answers [] without a name (§5.9); without one the plain name list of
        // GET /tags is the only way to see every tag.
        return Ok(match name.or(term) {
            Some(n) => (Request::get("/tags/find").query("name", n), ignored),
            None => (Request::get("/tags"), ignored),
        });
    }
    if has("visible") {
        req = req.query("visible", args::int(f, "visible").unwrap_or(1));
    }
    if has("term")
        && let Some(t) = args::string(f, "term")
    {
        req = req.query("term", t);
    }
    if has("order_by") {
        let o = args::string(f, "order_by").unwrap_or("");
        let allowed = order_by_allowed(ty);
        if !allowed.contains(&o) {
            return Err(ToolError::Invalid(format!(
                "invalid value for 'filters.order_by' ({}): for type={} use one of {}",
                text::quote(o),
                ty.name(),
                allowed.join(", ")
            )));
        }
        req = req.query("orderBy", o);
    }
    if has("order")
        && let Some(o) = args::string(f, "order")
    {
        req = req.query("order", o);
    }
    if has("customer")
        && let Some(c) = args::int(f, "customer")
    {
        req = req.query("customer", c);
    }
    if has("customers") {
        req = req.query_list("customers", args::ids(f, "customers"));
    }
    if has("project")
        && let Some(p) = args::int(f, "project")
    {
        req = req.query("project", p);
    }
    if has("projects") {
        req = req.query_list("projects", args::ids(f, "projects"));
    }
    if has("globals")
        && let Some(g) = args::string(f, "globals")
    {
        req = req.query("globals", g);
    }
    if has("global_activities")
        && let Some(g) = args::string(f, "global_activities")
    {
        req = req.query("globalActivities", g);
    }
    if has("ignore_dates") && args::boolean(f, "ignore_dates") == Some(true) {
        req = req.query("ignoreDates", 1);
    }
    if has("full") && args::boolean(f, "full") == Some(true) {
        req = req.query("full", 1);
    }
    if has("group")
        && let Some(g) = args::int(f, "group")
    {
        req = req.query("group", g);
    }
    let begin = if has("begin") {
        filter_local(f, "begin", time::DayEdge::Start)?
    } else {
        None
    };
    let end = if has("end") {
        filter_local(f, "end", time::DayEdge::End)?
    } else {
        None
    };
    if let (Some(b), Some(e)) = (begin, end)
        && e < b
    {
        return Err(ToolError::Invalid(
            "filters.end lies before filters.begin".into(),
        ));
    }
    match ty {
        // Kimai's project list takes `start`/`end` days and keeps projects whose own period
        // overlaps them (§5.4).
        Type::Project => {
            if let Some(b) = begin {
                req = req.query("start", b.date);
            }
            if let Some(e) = end {
                req = req.query("end", e.date);
            }
        }
        _ => {
            if let Some(b) = begin {
                req = req.query("begin", b);
            }
            if let Some(e) = end {
                req = req.query("end", e);
            }
        }
    }
    if ty == Type::Invoice {
        if has("status") {
            let status: Vec<String> = f
                .get("status")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            req = req.query_list("status", status);
        }
        req = req
            .query("page", args::int(f, "page").unwrap_or(1))
            .query("size", args::int(f, "size").unwrap_or(50));
    }
    Ok((req, ignored))
}

pub(super) fn list(
    ctx: &Context,
    ty: Type,
    filters: Option<&Map<String, Value>>,
) -> Result<Output, ToolError> {
    let empty = Map::new();
    let f = filters.unwrap_or(&empty);
    let (req, ignored) = list_request(ty, f)?;
    let tag_names_only = ty == Type::Tag && req.path == "/tags";
    let resp = ctx.call(&req).map_err(|e| match ty {
        Type::Invoice => needs(e, "listing invoices", "Kimai 2.22 or later"),
        Type::Holiday => plugin_404(
            needs(
                e,
                "listing public holidays",
                "the WorkContract (Working hours) plugin",
            ),
            "an unknown holiday group",
        ),
        Type::Tag => needs(e, "finding tags", "Kimai 2.18 or later"),
        _ => e,
    })?;
    let items: Vec<Value> = resp.body.as_array().cloned().unwrap_or_default();
    let mut out = if tag_names_only {
        if items.is_empty() {
            "No tags found.".to_string()
        } else {
            let names: Vec<String> = items.iter().map(render::reference).collect();
            format!(
                "{} tags: {}\nNote: pass filters.name to see the tags' ids and colors.",
                names.len(),
                names.join(", ")
            )
        }
    } else if ty == Type::User {
        if items.is_empty() {
            "No users found.".to_string()
        } else {
            let blocks: Vec<String> = items.iter().map(render_user).collect();
            format!("{} users:\n\n{}", blocks.len(), blocks.join("\n\n"))
        }
    } else {
        let hint = match ty {
            Type::Project | Type::Activity | Type::Customer if !f.contains_key("visible") => {
                "Kimai lists only visible ones by default; filters.visible=3 shows hidden ones too."
            }
            _ => "",
        };
        render::entity_list(ty.kind(), ty.plural(), &items, hint)
    };
    if ty == Type::Project
        && args::boolean(f, "ignore_dates") != Some(true)
        && !f.contains_key("begin")
        && !f.contains_key("end")
    {
        out.push_str("\nNote: Kimai lists only projects running today (finished and not yet started projects are hidden); set filters.ignore_dates=true to include them.");
    }
    if let Some(p) = resp.page {
        out.push_str(&format!(
            "\nPage {} of {} ({} {} in total, {} per page).",
            p.page,
            p.total_pages,
            p.total_count,
            ty.plural(),
            p.per_page
        ));
    }
    if !ignored.is_empty() {
        out.push_str(&format!(
            "\nNote: ignored filter(s) that do not apply to type={}: {}",
            ty.name(),
            ignored.join(", ")
        ));
    }
    Ok(Output::text(out))
}
