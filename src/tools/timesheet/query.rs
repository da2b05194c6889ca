//! `timesheet` list filters as a `/timesheets` query: whose records ([`Scope`]), dates as local
//! time without offset, `modified_after` in UTC, and the meta-field filter Kimai only
//! pre-filters.

use crate::kimai::Request;
use crate::tools::args::{self, Args};
use crate::tools::time::{self, DayEdge};
use crate::tools::{ToolError, text};
use serde_json::{Map, Value};

/// How the list was asked to pick users, for headers and warnings.
#[derive(Debug, PartialEq)]
pub(super) enum Scope {
    Own,
    All,
    One(i64),
    Several(Vec<i64>),
}

impl Scope {
    pub(super) fn describe(&self) -> String {
        match self {
            Scope::Own => "your records".into(),
            Scope::All => "all users you may see".into(),
            Scope::One(id) => format!("user {id}"),
            Scope::Several(ids) => format!(
                "users {}",
                ids.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The `/timesheets` query for `filters`, with the scope it asks for and notes for the reader.
pub(super) struct ListQuery {
    pub(super) request: Request,
    pub(super) scope: Scope,
    pub(super) page: u64,
    pub(super) size: u64,
    pub(super) notes: Vec<String>,
    pub(super) period: (Option<time::Date>, Option<time::Date>),
}

pub(super) fn build_query(f: &Args) -> Result<ListQuery, ToolError> {
    let mut req = Request::get("/timesheets");
    let mut notes = Vec::new();
    let scope = if let Some(users) = f
        .get("users")
        .filter(|u| u.as_array().is_some_and(|a| !a.is_empty()))
    {
        let ids = args::ids(&Map::from_iter([("u".to_string(), users.clone())]), "u");
        if f.contains_key("user_scope") || f.contains_key("user") {
            notes.push("Note: 'users' was given, so 'user_scope'/'user' were not used.".into());
        }
        req = req.query_list("users", ids.iter());
        Scope::Several(ids)
    } else {
        match f
            .get("user_scope")
            .and_then(Value::as_str)
            .unwrap_or("self")
        {
            "all" => {
                req = req.query("user", "all");
                Scope::All
            }
            "specific" => {
                let user = args::string(f, "user").ok_or_else(|| {
                    ToolError::Invalid("'filters.user' (a user id) is required when filters.user_scope is 'specific'".into())
                })?;
                let id: i64 = user.trim().parse().ok().filter(|i| *i > 0).ok_or_else(|| {
                    ToolError::Invalid(format!("'filters.user' must be a numeric user id, got {}; find ids with action=user_guide", text::safe(user)))
                })?;
                req = req.query("user", id);
                Scope::One(id)
            }
            _ => {
                if f.contains_key("user") {
                    return Err(ToolError::Invalid(
                        "'filters.user' needs filters.user_scope = 'specific'".into(),
                    ));
                }
                // Kimai's default is the caller's own records.
                Scope::Own
            }
        }
    };
    for key in ["project", "activity", "customer"] {
        if let Some(id) = args::int(f, key) {
            req = req.query(key, id);
        }
    }
    for key in ["projects", "activities", "customers"] {
        let ids = args::ids(f, key);
        if !ids.is_empty() {
            req = req.query_list(key, ids.iter());
        }
    }
    let tags: Vec<&str> = f
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !tags.is_empty() {
        req = req.query_list("tags", tags.iter());
    }
    let mut period = (None, None);
    if let Some(b) = args::string(f, "begin") {
        let l =
            time::parse_local("filters.begin", b, DayEdge::Start).map_err(ToolError::Invalid)?;
        period.0 = Some(l.date);
        req = req.query("begin", l);
    }
    if let Some(e) = args::string(f, "end") {
        let l = time::parse_local("filters.end", e, DayEdge::End).map_err(ToolError::Invalid)?;
        period.1 = Some(l.date);
        req = req.query("end", l);
    }
    if let (Some(b), Some(e)) = (period.0, period.1)
        && e < b
    {
        return Err(ToolError::Invalid(format!(
            "'filters.end' ({e}) is before 'filters.begin' ({b})"
        )));
    }
    for key in ["exported", "active", "billable"] {
        if let Some(v) = args::int(f, key) {
            req = req.query(key, v);
        }
    }
    if let Some(o) = args::string(f, "order_by") {
        req = req.query("orderBy", o);
    }
    if let Some(o) = args::string(f, "order") {
        req = req.query("order", o);
    }
    if let Some(m) = args::string(f, "modified_after") {
        req = req.query("modified_after", utc(m)?);
    }
    if let Some(t) = args::string(f, "term") {
        req = req.query("term", t);
    }
    let page = args::int(f, "page").unwrap_or(1).max(1) as u64;
    let mut size = args::int(f, "size").unwrap_or(50).max(1) as u64;
    if size > 500 {
        notes.push(format!(
            "Note: size {size} is more than Kimai's maximum; 500 per page are shown."
        ));
        size = 500;
    }
    Ok(ListQuery {
        request: req,
        scope,
        page,
        size,
        notes,
        period,
    })
}

/// `modified_after` is compared with Kimai's UTC column: a value with an offset or `Z` is
/// converted to UTC, a value without one is taken as UTC already.
pub(super) fn utc(s: &str) -> Result<String, ToolError> {
    let t = s.trim();
    let has_offset = t.ends_with('Z')
        || t.get(10..)
            .is_some_and(|rest| rest.contains('+') || rest.contains('-'));
    if has_offset {
        let st = time::parse_stamp(t).ok_or_else(|| {
            ToolError::Invalid(format!(
                "'filters.modified_after' is not a date-time: {}",
                text::safe(s)
            ))
        })?;
        let u = st.unix();
        let d = time::Date::from_days(u.div_euclid(86_400));
        let secs = u.rem_euclid(86_400);
        return Ok(format!(
            "{d}T{:02}:{:02}:{:02}",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        ));
    }
    let l = time::parse_local("filters.modified_after", t, DayEdge::Start)
        .map_err(ToolError::Invalid)?;
    Ok(l.to_string())
}

/// The meta-field filter: Kimai pre-filters with `term=name:value` (a substring match); the
/// exact, case-insensitive comparison is done here on every record.
pub(super) struct MetaFilter {
    pub(super) name: String,
    pub(super) value: Option<String>,
}

impl MetaFilter {
    pub(super) fn from(f: &Args) -> Option<MetaFilter> {
        let m = f.get("meta")?.as_object()?;
        Some(MetaFilter {
            name: m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            value: m.get("value").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The term Kimai can pre-filter with, if any is safe to send.
    pub(super) fn term(&self) -> Option<String> {
        let name_ok = !self.name.is_empty()
            && !self.name.contains(char::is_whitespace)
            && !self.name.contains(':');
        if !name_ok {
            return None;
        }
        match self.value.as_deref() {
            Some("") => None,
            Some(v)
                if v.contains(char::is_whitespace)
                    || v.starts_with('!')
                    || v.contains('\\')
                    || ["*", "~", "\"\""].contains(&v) =>
            {
                Some(format!("{}:*", self.name))
            }
            Some(v) => Some(format!("{}:{v}", self.name)),
            None => Some(format!("{}:*", self.name)),
        }
    }

    pub(super) fn matches(&self, r: &Value) -> bool {
        let field = r
            .get("metaFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| {
                m.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&self.name))
            });
        let value = field
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match self.value.as_deref() {
            None => !value.is_empty(),
            Some("") => value.is_empty(),
            Some(v) => value.to_lowercase() == v.to_lowercase(),
        }
    }
}
