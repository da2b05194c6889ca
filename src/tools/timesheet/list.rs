//! `timesheet` action `list`: one page with Kimai's totals, or every page with statistics,
//! and warnings when the rows show that Kimai ignored a filter.
//!
//! Statistics read plain pages: each page is decoded on the thread that fetched it, straight
//! into `stats::Rec` records (or JSON values where rows are to be shown or a meta filter must
//! look at custom fields), added to the shared [`Acc`] under its mutex and dropped. Names come
//! from `lookups`, read beside the first page; the requested page's rows are expanded with
//! them so that they read as `full=true` rows do.

use super::query::{ListQuery, MetaFilter, Scope, build_query};
use crate::tools::args::{self, Args};
use crate::tools::lookups::{self, Want};
use crate::tools::rows::{self, RowOpts};
use crate::tools::stats::{Rec, Stats};
use crate::tools::{Context, Output, ToolError, paging, text, users};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// What the pages of a statistics read add up to, shared by the threads that read them.
#[derive(Default)]
struct Acc {
    /// Ids of the records taken (a record may move to the next page while pages are read).
    seen: HashSet<i64>,
    stats: Stats,
    /// Records kept as rows, by (page, position): the requested page's, or every match of a
    /// meta filter.
    rows: BTreeMap<(u64, usize), Value>,
    /// Records read before the meta filter.
    before: usize,
    /// Records taken (after the meta filter).
    taken: usize,
}

impl Acc {
    /// Whether a record is new (and may be taken): no id, or one not seen yet, and room left.
    fn first_time(&mut self, id: Option<i64>) -> bool {
        self.seen.len() < paging::MAX_RECORDS && id.is_none_or(|id| self.seen.insert(id))
    }

    fn stats_users(&self) -> usize {
        self.stats.ids().0.len()
    }
}

fn lock(m: &Mutex<Acc>) -> MutexGuard<'_, Acc> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unreadable(e: serde_json::Error) -> ToolError {
    ToolError::Failed(format!(
        "Kimai sent a page of timesheets that could not be read: {e}"
    ))
}

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
        // Every page: statistics and/or the exact meta-field match need all records. Plain
        // pages (ids only), decoded and aggregated one by one as they arrive; the names come
        // from the lookups read alongside the first page.
        let mut req = q.request.clone();
        if let Some(term) = meta.as_ref().and_then(MetaFilter::term) {
            let combined = match args::string(&f, "term") {
                Some(t) => format!("{t} {term}"),
                None => term,
            };
            req.query.retain(|(k, _)| k != "term");
            req = req.query("term", combined);
        }
        let start = ((q.page - 1) * q.size) as usize;
        let show_rows = !stats || format != "summary";
        let users_shown = q.scope != Scope::Own || format == "json";
        let want = Want {
            projects: true,
            activities: true,
            users: users_shown,
            customers: stats,
        };
        let acc = Mutex::new(Acc::default());
        let visit = |page: u64, bytes: Vec<u8>| -> Result<usize, ToolError> {
            let first = ((page - 1) * paging::PAGE_SIZE) as usize;
            let overlaps =
                first < start + q.size as usize && first + paging::PAGE_SIZE as usize > start;
            if meta.is_none() && !(show_rows && overlaps) {
                // The common case: only figures, straight from the bytes into small records.
                let recs: Vec<Rec> = serde_json::from_slice(&bytes).map_err(unreadable)?;
                drop(bytes);
                let mut a = lock(&acc);
                for r in &recs {
                    if a.first_time(r.id()) {
                        a.stats.add(r, now);
                        a.taken += 1;
                    }
                }
                return Ok(recs.len());
            }
            let values: Vec<Value> = serde_json::from_slice(&bytes).map_err(unreadable)?;
            drop(bytes);
            let len = values.len();
            for (i, v) in values.into_iter().enumerate() {
                let matches = meta.as_ref().is_none_or(|m| m.matches(&v));
                let rec = Rec::from_value(&v);
                let mut a = lock(&acc);
                if !a.first_time(rec.as_ref().and_then(Rec::id)) {
                    continue;
                }
                a.before += 1;
                if !matches {
                    continue;
                }
                if let Some(r) = &rec {
                    a.stats.add(r, now);
                }
                a.taken += 1;
                // Without a meta filter the page position is the list position; with one, the
                // matches are numbered once all pages are in.
                let pos = first + i;
                if meta.is_some() || (show_rows && pos >= start && pos < start + q.size as usize) {
                    a.rows.insert((page, i), v);
                }
            }
            Ok(len)
        };
        let (read, mut names) =
            lookups::read_with(ctx, want, || paging::read_pages(ctx, &req, visit));
        let read = read?;
        let acc = acc.into_inner().unwrap_or_else(|e| e.into_inner());
        let (user_ids, project_ids, activity_ids) = acc.stats.ids();
        let users_named = if users_shown || acc.stats_users() > 1 {
            user_ids.clone()
        } else {
            Vec::new()
        };
        names.complete(ctx, &project_ids, &activity_ids, &users_named);
        names.probe_records(ctx, &acc.stats.unnamed_samples(&names));
        names.probe_users(ctx, &users_named);
        let total = acc.taken;
        let truncated = read.truncated;
        if let Some(m) = &meta {
            notes.push(format!(
                "Meta filter {}{}: {} of {} records match exactly.",
                text::safe(&m.name),
                m.value
                    .as_deref()
                    .map(|v| format!(" = {}", text::safe(v)))
                    .unwrap_or_else(|| " (has a value)".into()),
                total,
                acc.before
            ));
        }
        let qualifier = if truncated { "at least " } else { "" };
        out.push(format!(
            "Found {qualifier}{total} timesheets for {}.",
            q.scope.describe()
        ));
        if truncated {
            notes.push(format!(
                "Note: the read stopped at {} records (of {} that Kimai counted); narrow the filter (begin/end, project, user) for complete figures.",
                paging::MAX_RECORDS,
                read.total.map(|t| t.to_string()).unwrap_or_else(|| "more".into())
            ));
        }
        let by_year = args::boolean(&f, "breakdown_by_year").unwrap_or(false)
            || matches!(q.period, (Some(b), Some(e)) if e.to_days() - b.to_days() > 365);
        let skip = if meta.is_some() { start } else { 0 };
        let page_rows: Vec<String> = acc
            .rows
            .into_values()
            .skip(skip)
            .take(q.size as usize)
            .map(|mut r| {
                names.expand(&mut r);
                rows::row(&r, opts, now)
            })
            .collect();
        if stats {
            let s = &acc.stats;
            match format {
                "json" => out.push(format!(
                    "## Statistics (JSON):\n{}",
                    serde_json::to_string_pretty(&s.json_named(&names, by_year, q.period))
                        .unwrap_or_default()
                )),
                _ => out.push(s.report_named(&names, by_year, q.period)),
            }
        }
        if show_rows {
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
        notes.extend(acc.stats.name_notes(&names));
        let mut ids: Vec<Ids> = Vec::new();
        let some = |id: i64| (id != 0).then_some(id);
        ids.extend(user_ids.iter().map(|u| Ids::only_user(some(*u))));
        ids.extend(activity_ids.iter().map(|a| Ids {
            activity: some(*a),
            ..Ids::only_user(None)
        }));
        ids.extend(project_ids.iter().map(|p| Ids {
            project: some(*p),
            customer: names.customer_of(*p).and_then(|(c, _)| some(c)),
            ..Ids::only_user(None)
        }));
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

    fn only_user(user: Option<i64>) -> Ids {
        Ids {
            user,
            project: None,
            activity: None,
            customer: None,
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
