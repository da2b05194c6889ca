//! `timesheet` action `list`: one page with Kimai's totals, or every page with statistics,
//! and warnings when the rows show that Kimai ignored a filter.

use super::query::{ListQuery, MetaFilter, Scope, build_query};
use crate::tools::args::{self, Args};
use crate::tools::rows::{self, RowOpts};
use crate::tools::stats::{Rec, Stats};
use crate::tools::{Context, Output, ToolError, paging, text, users};
use serde_json::Value;
use std::collections::HashSet;

pub(super) fn list(ctx: &Context, f: Args) -> Result<Output, ToolError> {
    let q = build_query(&f)?;
    let stats = args::boolean(&f, "calculate_stats").unwrap_or(false);
    let meta = MetaFilter::from(&f);
    let format = args::string(&f, "stats_format").unwrap_or("summary");
    if !stats && (f.contains_key("stats_format") || f.contains_key("breakdown_by_year")) {
        return Err(ToolError::Invalid(
            "'stats_format' and 'breakdown_by_year' need filters.calculate_stats = true".into(),
        ));
    }
    let now = rows::now_unix();
    let opts = RowOpts {
        user: q.scope != Scope::Own,
    };
    let mut out = Vec::new();
    let mut notes = q.notes.clone();

    if !stats && meta.is_none() {
        // One page, with names.
        let req = q
            .request
            .clone()
            .query("page", q.page)
            .query("size", q.size)
            .query("full", "true");
        let resp = match ctx.call(&req) {
            Ok(r) => r,
            Err(ToolError::Kimai(e)) if e.status() == Some(404) && q.page > 1 => {
                return Ok(Output::text(format!(
                    "Page {} is past the last page of timesheets for this filter; use a lower 'page'.",
                    q.page
                )));
            }
            Err(e) => return Err(e),
        };
        let records = resp.body.as_array().cloned().unwrap_or_default();
        let head = match resp.page {
            Some(p) if p.total_count == 0 => {
                format!("No timesheets found for {}.", q.scope.describe())
            }
            Some(p) => {
                let from = (p.page - 1) * p.per_page + 1;
                format!(
                    "Found {} timesheets for {}; showing {}-{} (page {} of {}).",
                    p.total_count,
                    q.scope.describe(),
                    from,
                    from + records.len() as u64 - 1,
                    p.page,
                    p.total_pages
                )
            }
            None if records.is_empty() => format!(
                "No timesheets found for {} on page {}.",
                q.scope.describe(),
                q.page
            ),
            None => format!(
                "Found {} timesheets for {} on page {}.",
                records.len(),
                q.scope.describe(),
                q.page
            ),
        };
        out.push(head);
        out.extend(records.iter().map(|r| rows::row(r, opts, now)));
        match resp.page {
            Some(p) if p.page < p.total_pages => out.push(format!(
                "More records: use filters.page = {} (of {}).",
                p.page + 1,
                p.total_pages
            )),
            None if records.len() as u64 == q.size => {
                out.push("There may be more records: try the next page.".into())
            }
            _ => {}
        }
        let ids: Vec<Ids> = records.iter().map(Ids::of_value).collect();
        notes.extend(ignored_filter_warnings(ctx, &f, &q, &ids)?);
    } else {
        // Every page: statistics and/or the exact meta-field match need all records.
        let mut req = q.request.clone().query("full", "true");
        if let Some(term) = meta.as_ref().and_then(MetaFilter::term) {
            let combined = match args::string(&f, "term") {
                Some(t) => format!("{t} {term}"),
                None => term,
            };
            req.query.retain(|(k, _)| k != "term");
            req = req.query("term", combined);
        }
        // A summary needs only a few fields of each record: decode pages straight into them.
        let summary_only = stats && format == "summary" && meta.is_none();
        let (records, recs, truncated, kimai_total) = if summary_only {
            let all = paging::fetch_all_as::<Rec>(ctx, &req, Rec::id)?;
            (Vec::new(), all.records, all.truncated, all.total)
        } else {
            let all = paging::fetch_all(ctx, &req)?;
            let mut records = all.records;
            if let Some(m) = &meta {
                let before = records.len();
                records.retain(|r| m.matches(r));
                notes.push(format!(
                    "Meta filter {}{}: {} of {} records match exactly.",
                    text::safe(&m.name),
                    m.value
                        .as_deref()
                        .map(|v| format!(" = {}", text::safe(v)))
                        .unwrap_or_else(|| " (has a value)".into()),
                    records.len(),
                    before
                ));
            }
            let recs = records.iter().filter_map(Rec::from_value).collect();
            (records, recs, all.truncated, all.total)
        };
        let total = recs.len();
        let qualifier = if truncated { "at least " } else { "" };
        out.push(format!(
            "Found {qualifier}{total} timesheets for {}.",
            q.scope.describe()
        ));
        if truncated {
            notes.push(format!(
                "Note: the read stopped at {} records (of {} that Kimai counted); narrow the filter (begin/end, project, user) for complete figures.",
                paging::MAX_RECORDS,
                kimai_total.map(|t| t.to_string()).unwrap_or_else(|| "more".into())
            ));
        }
        let by_year = args::boolean(&f, "breakdown_by_year").unwrap_or(false)
            || matches!(q.period, (Some(b), Some(e)) if e.to_days() - b.to_days() > 365);
        let start = ((q.page - 1) * q.size) as usize;
        let page_rows: Vec<String> = records
            .iter()
            .skip(start)
            .take(q.size as usize)
            .map(|r| rows::row(r, opts, now))
            .collect();
        if stats {
            let s = Stats::compute(&recs, now);
            match format {
                "json" => out.push(format!(
                    "## Statistics (JSON):\n{}",
                    serde_json::to_string_pretty(&s.json(by_year, q.period)).unwrap_or_default()
                )),
                _ => out.push(s.report(by_year, q.period)),
            }
        }
        if !stats || format != "summary" {
            if !page_rows.is_empty() {
                out.push(format!(
                    "Records {}-{} (page {}):",
                    start + 1,
                    start + page_rows.len(),
                    q.page
                ));
                out.extend(page_rows);
            }
            if total > start + q.size as usize {
                out.push(format!("More records: use filters.page = {}.", q.page + 1));
            }
        }
        let ids: Vec<Ids> = recs.iter().map(Ids::of_rec).collect();
        notes.extend(ignored_filter_warnings(ctx, &f, &q, &ids)?);
    }
    if args::boolean(&f, "include_user_list").unwrap_or(false) {
        out.push(user_list(ctx)?);
    }
    out.extend(notes);
    Ok(Output::text(out.join("\n")))
}

fn user_list(ctx: &Context) -> Result<String, ToolError> {
    match users::discover(ctx) {
        Ok(d) => {
            let mut s = format!("Available users ({}):", d.users.len());
            for u in d.users.iter().take(10) {
                s.push_str(&format!("\n- {} (ID {})", text::safe(&u.display), u.id));
            }
            if d.users.len() > 10 {
                s.push_str(&format!(
                    "\n- … and {} more (timesheet action=user_guide lists 20)",
                    d.users.len() - 10
                ));
            }
            Ok(s)
        }
        Err(ToolError::Kimai(e)) if e.status() == Some(403) => {
            Ok("Available users: this token may not list users.".into())
        }
        Err(e) => Err(e),
    }
}

fn ref_id(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Object(o) => o.get("id").and_then(args::as_int),
        other => args::as_int(other),
    }
}

/// Kimai silently ignores filters for unknown or inaccessible ids and, without the permission
/// to see others' records, the user filter itself (contract §5.2). Rows that contradict the
/// request reveal it; say so rather than let a wrong list pass for the asked one.
/// The ids a record refers to, whatever its shape.
struct Ids {
    pub(super) user: Option<i64>,
    pub(super) project: Option<i64>,
    pub(super) activity: Option<i64>,
    pub(super) customer: Option<i64>,
}

impl Ids {
    fn of_value(r: &Value) -> Ids {
        Ids {
            user: ref_id(r.get("user")),
            project: ref_id(r.get("project")),
            activity: ref_id(r.get("activity")),
            customer: r
                .get("project")
                .and_then(|p| p.get("customer"))
                .and_then(|c| ref_id(Some(c))),
        }
    }

    fn of_rec(r: &Rec) -> Ids {
        let some = |id: i64| (id != 0).then_some(id);
        Ids {
            user: some(r.user.id),
            project: some(r.project.id),
            activity: some(r.activity.id),
            customer: r.project.customer.as_ref().and_then(|c| some(c.id)),
        }
    }
}

fn ignored_filter_warnings(
    ctx: &Context,
    f: &Args,
    q: &ListQuery,
    records: &[Ids],
) -> Result<Vec<String>, ToolError> {
    let mut warnings = Vec::new();
    let check = |key_one: &str,
                 key_many: &str,
                 label: &str,
                 get: &dyn Fn(&Ids) -> Option<i64>|
     -> Option<String> {
        let mut wanted: HashSet<i64> = args::ids(f, key_many).into_iter().collect();
        if let Some(id) = args::int(f, key_one) {
            wanted.insert(id);
        }
        if wanted.is_empty() {
            return None;
        }
        let mut other: Vec<i64> = records
            .iter()
            .filter_map(get)
            .filter(|id| !wanted.contains(id))
            .collect();
        other.sort_unstable();
        other.dedup();
        (!other.is_empty()).then(|| {
            format!(
                "Warning: Kimai returned records of {label} {} which were not requested: it ignores a {label} filter whose id is unknown or not accessible to this token, so this list is not filtered by {label}.",
                other.iter().take(5).map(|i| format!("#{i}")).collect::<Vec<_>>().join(", ")
            )
        })
    };
    warnings.extend(check("project", "projects", "project", &|r| r.project));
    warnings.extend(check("activity", "activities", "activity", &|r| r.activity));
    warnings.extend(check("customer", "customers", "customer", &|r| r.customer));
    let row_users: HashSet<i64> = records.iter().filter_map(|r| r.user).collect();
    match &q.scope {
        Scope::One(id) if !row_users.is_empty() && !row_users.contains(id) => warnings.push(format!(
            "Warning: Kimai returned records of other users than user {id}: the token may not see that user's records (it needs view_other_timesheet and access to the user), so Kimai showed the caller's own."
        )),
        Scope::Several(ids) if row_users.iter().any(|u| !ids.contains(u)) => warnings.push(
            "Warning: Kimai returned records of users that were not requested: the token may not see the requested users' records, so Kimai showed the caller's own.".into(),
        ),
        Scope::All if row_users.len() == 1 => {
            let me = ctx.get("/users/me")?.get("id").and_then(args::as_int);
            if me.is_some_and(|me| row_users.contains(&me)) {
                warnings.push("Note: only your own records came back for user_scope = all: either nobody else has matching records or this token may not see other users' records (view_other_timesheet).".into());
            }
        }
        _ => {}
    }
    Ok(warnings)
}
