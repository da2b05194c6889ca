//! `analyze_project_team`: who worked how much on one project over a period, per user and per
//! activity.
//!
//! The project is found by id (`GET /projects/{id}`) or by name (`GET /projects?visible=3&
//! ignoreDates=1&term=…`, case-insensitive; an exact name wins, several candidates are listed
//! back). The user scope is all (`user=all`), self (`/users/me`), one user, or a team's members
//! (`GET /teams/{id}`, sent as `users[]`). Then three independent reads run in parallel on
//! scoped threads: every page of `/timesheets` (`paging::fetch_all`, bounded at 10,000
//! records; a truncated read is refused rather than shown as a partial analysis), and the user
//! and activity lists for names (best effort: a refusal only costs the names).
//! Hours come from Kimai's `duration`.

use super::args::{self, Args};
use super::common::user_lookup::resolve_user;
use super::time::{self, DayEdge};
use super::{Context, Output, Tool, ToolError, paging, text};
use crate::kimai::Request;
use serde_json::{Value, json};
use std::collections::HashMap;

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
        .query("end", end)
        // Names of users and activities embedded, so a token that may not list users still
        // sees who booked the time.
        .query("full", "true");
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

    // The three independent reads, in parallel.
    let (sheets, users, activities) = std::thread::scope(|s| {
        let users = s.spawn(|| {
            ctx.call(&Request::get("/users").query("visible", 3))
                .ok()
                .map(|r| r.body)
        });
        let activities = s.spawn(|| {
            ctx.call(
                &Request::get("/activities")
                    .query("visible", 3)
                    .query("project", pid),
            )
            .ok()
            .map(|r| r.body)
        });
        let sheets = paging::fetch_all(ctx, &req);
        (
            sheets,
            users.join().ok().flatten(),
            activities.join().ok().flatten(),
        )
    });
    let sheets = sheets?;
    if sheets.truncated {
        return Err(ToolError::Failed(format!(
            "the period holds more than {} timesheets for this project; analyse a shorter period",
            paging::MAX_RECORDS
        )));
    }
    let names = |list: &Option<Value>, key: &str| -> HashMap<i64, String> {
        list.as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let id = v.get("id").and_then(args::as_int)?;
                let name = v
                    .get("alias")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .or_else(|| v.get(key).and_then(Value::as_str))?;
                Some((id, name.to_string()))
            })
            .collect()
    };
    let user_names = names(&users, "username");
    let activity_names = names(&activities, "name");
    let id_of = |v: Option<&Value>| -> i64 {
        match v {
            Some(Value::Object(o)) => o.get("id").and_then(args::as_int).unwrap_or(0),
            Some(v) => args::as_int(v).unwrap_or(0),
            None => 0,
        }
    };
    let name_of = |v: Option<&Value>, map: &HashMap<i64, String>, key: &str, kind: &str| {
        let id = id_of(v);
        let embedded = v
            .and_then(|o| {
                o.get("alias")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| v.and_then(|o| o.get(key)).and_then(Value::as_str));
        match embedded.or(map.get(&id).map(String::as_str)) {
            Some(n) => format!("{} (ID {id})", text::safe(n)),
            None => format!("{kind} {id}"),
        }
    };

    // Per user: total seconds, entries, per activity seconds.
    struct Row {
        name: String,
        secs: i64,
        entries: usize,
        by_activity: HashMap<String, i64>,
    }
    let mut rows: HashMap<i64, Row> = HashMap::new();
    let mut by_activity: HashMap<String, (i64, usize)> = HashMap::new();
    let mut total = 0i64;
    for t in &sheets.records {
        let uid = id_of(t.get("user"));
        if let Some(o) = only
            && uid != o
        {
            return Err(ToolError::Failed(format!(
                "Kimai returned timesheets of user {uid} for a single-user analysis; refusing to mix them in"
            )));
        }
        let secs = t.get("duration").and_then(args::as_int).unwrap_or(0).max(0);
        let act = name_of(t.get("activity"), &activity_names, "name", "activity");
        let row = rows.entry(uid).or_insert_with(|| Row {
            name: name_of(t.get("user"), &user_names, "username", "user"),
            secs: 0,
            entries: 0,
            by_activity: HashMap::new(),
        });
        row.secs += secs;
        row.entries += 1;
        *row.by_activity.entry(act.clone()).or_default() += secs;
        let a = by_activity.entry(act).or_default();
        a.0 += secs;
        a.1 += 1;
        total += secs;
    }
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
        sheets.records.len(),
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
    if users.is_none() {
        out.push_str("\n\nNote: this token may not list users; users without a name in the timesheets are shown by id.");
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
