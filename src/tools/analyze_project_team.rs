//! `analyze_project_team`: who worked how much on one project over a period, per user and per
//! activity.
//!
//! The project is found by id (`GET /projects/{id}`) or by name (`GET /projects?visible=3&
//! ignoreDates=1&term=…`, case-insensitive; an exact name wins, several candidates are listed
//! back). The user scope is all (`user=all`), self (`/users/me`), one user, or a team's members
//! (`GET /teams/{id}`, sent as `users[]`). Then the reads run in parallel on scoped threads:
//! every page of `/timesheets` in the plain shape (ids only; `paging::read_pages`, each page
//! decoded into small records and added up as it arrives, bounded at 10,000 records; a
//! truncated read is refused rather than shown as a partial analysis), and the user and
//! activity lists for names (`lookups`, remembered per token for a minute; a refusal only costs
//! the names, and users the token may not list are named from their own records).
//! Hours come from Kimai's `duration`.

use super::args::{self, Args};
use super::common::user_lookup::resolve_user;
use super::lookups::{self, Kind, List, Want};
use super::stats::Ref;
use super::time::{self, DayEdge};
use super::{Context, Output, Tool, ToolError, paging, text};
use crate::kimai::Request;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The fields of a timesheet record that the analysis uses.
#[derive(Deserialize)]
struct Record {
    id: Option<i64>,
    begin: Option<String>,
    duration: Option<i64>,
    #[serde(default)]
    user: Ref,
    #[serde(default)]
    activity: Ref,
}

/// One user's time.
#[derive(Default)]
struct UserTime {
    secs: i64,
    entries: usize,
    by_activity: HashMap<i64, i64>,
}

/// The pages added up, shared by the threads that read them.
#[derive(Default)]
struct Team {
    seen: HashSet<i64>,
    users: HashMap<i64, UserTime>,
    activities: HashMap<i64, (i64, usize)>,
    total: i64,
    entries: usize,
    /// A user whose records came back for a single-user analysis.
    foreign: Option<i64>,
    /// A record of each activity, to name it by when the activity list does not.
    samples: HashMap<i64, lookups::Sample>,
}

pub const TOOL: Tool = Tool {
    name: "analyze_project_team",
    title: "Project team analysis",
    description: "Time booked on one project between begin and end, per user and activity. Name the project by project_id or project_name; user_scope all (default), self, specific (user) or team (team).",
    schema,
    read_only: true,
    destructive: false,
    idempotent: true,
    handler,
};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "project_name": {"type": "string", "description": "Project name (or part of it)."},
            "project_id": {"type": "integer", "description": "Project id (instead of project_name)."},
            "begin": {"type": "string", "description": "Start, local time: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS."},
            "end": {"type": "string", "description": "End, local time; a date means the end of that day."},
            "user_scope": {"type": "string", "enum": ["self", "all", "specific", "team"], "description": "Whose time: all (default), self, one user, or a team."},
            "user": {"type": "string", "description": "For user_scope=specific: user id or username."},
            "team": {"type": "integer", "description": "For user_scope=team: team id."},
            "include_details": {"type": "boolean", "default": true, "description": "Show each user's activities."}
        },
        "required": ["begin", "end"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let begin = time::parse_local(
        "begin",
        args::string(a, "begin").unwrap_or(""),
        DayEdge::Start,
    )
    .map_err(ToolError::Invalid)?;
    let end = time::parse_local("end", args::string(a, "end").unwrap_or(""), DayEdge::End)
        .map_err(ToolError::Invalid)?;
    if begin > end {
        return Err(ToolError::Invalid(format!(
            "begin ({begin}) is after end ({end}); send a begin before the end"
        )));
    }
    let project_id = args::int(a, "project_id");
    let project_name = args::string(a, "project_name");
    if project_id.is_none() && project_name.is_none() {
        return Err(ToolError::Invalid(
            "send project_id or project_name to say which project to analyse".into(),
        ));
    }
    if let Some(id) = project_id
        && id < 1
    {
        return Err(ToolError::Invalid(format!(
            "project_id must be a positive id, got {id}"
        )));
    }
    let scope = args::string(a, "user_scope").unwrap_or("all");
    let user = args::string(a, "user");
    let team = args::int(a, "team");
    match scope {
        "specific" if user.is_none() => {
            return Err(ToolError::Invalid(
                "user (id or username) is required for user_scope=specific".into(),
            ));
        }
        "team" if team.is_none() => {
            return Err(ToolError::Invalid(
                "team (team id) is required for user_scope=team".into(),
            ));
        }
        _ => {}
    }
    if user.is_some() && scope != "specific" {
        return Err(ToolError::Invalid(format!(
            "user only applies to user_scope=specific (got {scope})"
        )));
    }
    if team.is_some() && scope != "team" {
        return Err(ToolError::Invalid(format!(
            "team only applies to user_scope=team (got {scope})"
        )));
    }
    let details = args::boolean(a, "include_details").unwrap_or(true);

    let project = match project_id {
        Some(id) => ctx.get(&format!("/projects/{id}"))?,
        None => find_project(ctx, project_name.unwrap_or_default())?,
    };
    let pid = project.get("id").and_then(args::as_int).unwrap_or(0);

    let mut req = Request::get("/timesheets")
        .query("project", pid)
        .query("begin", begin)
        .query("end", end);
    let mut scope_text = "all users".to_string();
    let mut only: Option<i64> = None;
    match scope {
        "self" => {
            let me = ctx.get("/users/me")?;
            let id = me.get("id").and_then(args::as_int).unwrap_or(0);
            req = req.query("user", id);
            only = Some(id);
            scope_text = "your own time".into();
        }
        "specific" => {
            let u = resolve_user(ctx, user.unwrap_or_default())?;
            req = req.query("user", u.id);
            only = Some(u.id);
            scope_text = format!("user {}", u.id);
        }
        "team" => {
            let t = ctx.get(&format!("/teams/{}", team.unwrap_or(0)))?;
            let members: Vec<i64> = t
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    m.get("user")
                        .and_then(|u| u.get("id"))
                        .and_then(args::as_int)
                })
                .collect();
            if members.is_empty() {
                return Err(ToolError::Failed(format!(
                    "team {} has no members this token can see",
                    team.unwrap_or(0)
                )));
            }
            req = req.query_list("users", &members);
            scope_text = format!(
                "team {} ({} members)",
                text::safe(t.get("name").and_then(Value::as_str).unwrap_or("?")),
                members.len()
            );
        }
        _ => req = req.query("user", "all"),
    }

    // The pages and the two lists for names, in parallel.
    let team = Mutex::new(Team::default());
    let visit = |_page: u64, bytes: Vec<u8>| -> Result<usize, ToolError> {
        let rows: Vec<Record> = serde_json::from_slice(&bytes).map_err(|e| {
            ToolError::Failed(format!(
                "Kimai sent a page of timesheets that could not be read: {e}"
            ))
        })?;
        drop(bytes);
        let mut t = team.lock().unwrap_or_else(|e| e.into_inner());
        for r in &rows {
            if r.id.is_some_and(|id| !t.seen.insert(id)) {
                continue;
            }
            let uid = r.user.id;
            if let Some(o) = only
                && uid != o
            {
                t.foreign = Some(uid);
                continue;
            }
            let secs = r.duration.unwrap_or(0).max(0);
            let u = t.users.entry(uid).or_default();
            u.secs += secs;
            u.entries += 1;
            *u.by_activity.entry(r.activity.id).or_default() += secs;
            let a = t.activities.entry(r.activity.id).or_default();
            a.0 += secs;
            a.1 += 1;
            if !t.samples.contains_key(&r.activity.id)
                && let (Some(record), Some(begin)) = (r.id, &r.begin)
            {
                t.samples.insert(
                    r.activity.id,
                    lookups::Sample {
                        record,
                        user: uid,
                        begin: begin.clone(),
                    },
                );
            }
            t.total += secs;
            t.entries += 1;
        }
        Ok(rows.len())
    };
    let want = Want {
        activities: true,
        users: true,
        ..Want::default()
    };
    let (sheets, mut names) =
        lookups::read_with(ctx, want, || paging::read_pages(ctx, &req, visit));
    let sheets = sheets?;
    if sheets.truncated {
        return Err(ToolError::Failed(format!(
            "the period holds more than {} timesheets for this project; analyse a shorter period",
            paging::MAX_RECORDS
        )));
    }
    let t = team.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(uid) = t.foreign {
        return Err(ToolError::Failed(format!(
            "Kimai returned timesheets of user {uid} for a single-user analysis; refusing to mix them in"
        )));
    }
    let user_ids: Vec<i64> = t.users.keys().copied().collect();
    let activity_ids: Vec<i64> = t.activities.keys().copied().collect();
    names.complete(ctx, &[], &activity_ids, &user_ids);
    let unnamed: Vec<lookups::Sample> = activity_ids
        .iter()
        .filter(|a| names.activity(**a).is_none())
        .filter_map(|a| t.samples.get(a).cloned())
        .collect();
    names.probe_records(ctx, &unnamed);
    names.probe_users(ctx, &user_ids);
    let user_name = |id: i64| match names.user(id) {
        Some(n) => format!("{} (ID {id})", text::safe(n)),
        None => format!("user {id}"),
    };
    let activity_name = |id: i64| match names.activity(id) {
        Some(n) => format!("{} (ID {id})", text::safe(n)),
        None => format!("activity {id}"),
    };

    // Per user: total seconds, entries, per activity seconds.
    struct Row {
        name: String,
        secs: i64,
        entries: usize,
        by_activity: HashMap<String, i64>,
    }
    let rows: HashMap<i64, Row> = t
        .users
        .iter()
        .map(|(uid, u)| {
            (
                *uid,
                Row {
                    name: user_name(*uid),
                    secs: u.secs,
                    entries: u.entries,
                    by_activity: u
                        .by_activity
                        .iter()
                        .map(|(a, s)| (activity_name(*a), *s))
                        .collect(),
                },
            )
        })
        .collect();
    let mut by_activity: HashMap<String, (i64, usize)> = HashMap::new();
    for (a, (secs, n)) in &t.activities {
        let e = by_activity.entry(activity_name(*a)).or_default();
        e.0 += secs;
        e.1 += n;
    }
    let total = t.total;
    let pct = |s: i64| {
        if total > 0 {
            s as f64 * 100.0 / total as f64
        } else {
            0.0
        }
    };
    let customer = project
        .get("customer")
        .and_then(|c| c.get("name").and_then(Value::as_str));
    let mut out = format!(
        "Project team analysis: {} (ID {pid}){}\nPeriod: {begin} to {end}; scope: {scope_text}\nTotal: {} h in {} entries by {} user(s) on {} activit{}",
        text::safe(project.get("name").and_then(Value::as_str).unwrap_or("?")),
        customer
            .map(|c| format!(", customer {}", text::safe(c)))
            .unwrap_or_default(),
        time::hours(total),
        t.entries,
        rows.len(),
        by_activity.len(),
        if by_activity.len() == 1 { "y" } else { "ies" }
    );
    let mut users_sorted: Vec<&Row> = rows.values().collect();
    users_sorted.sort_by(|a, b| b.secs.cmp(&a.secs).then(a.name.cmp(&b.name)));
    out.push_str("\n\nBy user:");
    if users_sorted.is_empty() {
        out.push_str("\n- (no time booked)");
    }
    for r in users_sorted {
        out.push_str(&format!(
            "\n- {}: {} h ({:.1}%), {} entries",
            r.name,
            time::hours(r.secs),
            pct(r.secs),
            r.entries
        ));
        if details {
            let mut acts: Vec<(&String, &i64)> = r.by_activity.iter().collect();
            acts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (name, secs) in acts {
                out.push_str(&format!("\n  - {name}: {} h", time::hours(*secs)));
            }
        }
    }
    let mut acts: Vec<(&String, &(i64, usize))> = by_activity.iter().collect();
    acts.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    out.push_str("\n\nBy activity:");
    if acts.is_empty() {
        out.push_str("\n- (none)");
    }
    for (name, (secs, n)) in acts {
        out.push_str(&format!(
            "\n- {name}: {} h ({:.1}%), {n} entries",
            time::hours(*secs),
            pct(*secs)
        ));
    }
    let unnamed_users = user_ids
        .iter()
        .filter(|u| names.user(**u).is_none())
        .count();
    if unnamed_users > 0 {
        if matches!(names.users, List::Denied) {
            out.push_str("\n\nNote: this token may not list users; users without a name in the timesheets are shown by id.");
        } else if let Some(n) = names.note(Kind::User, unnamed_users) {
            out.push_str(&format!("\n\n{n}"));
        }
    }
    let unnamed_activities = activity_ids
        .iter()
        .filter(|a| names.activity(**a).is_none())
        .count();
    if let Some(n) = names.note(Kind::Activity, unnamed_activities) {
        out.push_str(&format!("\n\n{n}"));
    }
    Ok(Output::text(out))
}

/// Finds a project by name: an exact (case-insensitive) name wins, else a single substring
/// match; several are listed back so the caller can pick by id.
fn find_project(ctx: &Context, name: &str) -> Result<Value, ToolError> {
    let mut r = Request::get("/projects")
        .query("visible", 3)
        .query("ignoreDates", 1);
    // Kimai's term syntax gives `:`, `\` and a leading `!` special meanings (§7.8).
    let plain = !name.contains(':')
        && !name.contains('\\')
        && !name.split_whitespace().any(|w| w.starts_with('!'));
    if plain {
        r = r.query("term", name);
    }
    let all = ctx.call(&r)?.body;
    let lower = name.to_lowercase();
    let list: Vec<&Value> = all.as_array().into_iter().flatten().collect();
    let pname = |p: &Value| {
        p.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase()
    };
    let exact: Vec<&&Value> = list.iter().filter(|p| pname(p) == lower).collect();
    if exact.len() == 1 {
        return Ok((*exact[0]).clone());
    }
    let hits: Vec<&&Value> = if exact.len() > 1 {
        exact
    } else {
        list.iter().filter(|p| pname(p).contains(&lower)).collect()
    };
    match hits.as_slice() {
        [one] => Ok((**one).clone()),
        [] => Err(ToolError::Failed(format!(
            "no project matches {}; check the name or send project_id",
            text::quote(name)
        ))),
        many => Err(ToolError::Failed(format!(
            "{} matches {} projects: {}; send project_id or the exact name",
            text::quote(name),
            many.len(),
            many.iter()
                .take(10)
                .map(|p| format!(
                    "{} (ID {})",
                    text::safe(p.get("name").and_then(Value::as_str).unwrap_or("?")),
                    p.get("id").and_then(args::as_int).unwrap_or(0)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
