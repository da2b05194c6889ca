//! The simulated Kimai REST API: routing, authentication, permission checks, query-parameter
//! strictness and the read endpoints of contract §5 (timesheet writes live in `writes`).
//!
//! Owns the order of checks Kimai applies: routing (404/405) before security (401), entity load
//! before the voter (404 before 403), parameter validation (400). A handler is a plain function
//! from a parsed request and the locked `State` to an owned `Answer`; `mod.rs` is the only place
//! that knows HTTP. Called on worker threads with the state mutex held for the duration of
//! one handler (no I/O happens under the lock).

use serde_json::{Value, json};

use super::admin;
use super::data::{self, State, User, can};
use super::json::{self as js, TsShape};
use super::plugin;
use super::time::{self, Tz};
use super::wire::{Answer, Req, Res, bad, forbidden, id, not_found};
use super::writes;

/// Every route of the simulator. Matching is on `(segments)` slices like cargo's fake registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Ping,
    Version,
    Plugins,
    ConfigTimesheet,
    ConfigColors,
    Timesheets,
    TimesheetsActive,
    TimesheetsRecent,
    /// `GET /api/favorites/timesheets` (Kimai 2.66-dev; simulated although the version says 2.65).
    Favorites,
    Favorite(u64),
    Timesheet(u64),
    TimesheetAction(u64, &'static str),
    Customers,
    Customer(u64),
    Projects,
    Project(u64),
    Activities,
    Activity(u64),
    Users,
    UsersMe,
    User(u64),
    Teams,
    Team(u64),
    Tags,
    TagsFind,
    Tag(u64),
    /// `/api/{customers,projects,activities}/{id}/{meta,rates,team}`.
    Sub(&'static str, u64, &'static str),
    /// `/api/{customers,projects,activities}/{id}/rates/{rateId}`.
    RateItem(&'static str, u64, u64),
    /// `/api/{customers,projects}/{id}/comments[/{comment}[/pin]]`.
    Comments(&'static str, u64, Option<u64>, bool),
    UserPreferences(u64),
    Invoices,
    Invoice(u64),
    InvoiceCustomFields(u64),
    /// `/api/teams/{id}/{members,customers,projects,activities}/{id}`.
    TeamLink(u64, &'static str, u64),
    /// A WorkContract plugin route (`plugin`); unknown (404) when the plugin is off.
    Plugin(plugin::Route),
}

fn entity_kind(seg: &str) -> &'static str {
    match seg {
        "customers" => "customer",
        "projects" => "project",
        _ => "activity",
    }
}

fn route(segs: &[&str]) -> Option<(Route, &'static [&'static str])> {
    use Route::*;
    const GET: &[&str] = &["GET"];
    const PATCH: &[&str] = &["PATCH"];
    const LIST: &[&str] = &["GET", "POST"];
    const ONE: &[&str] = &["GET", "PATCH", "DELETE"];
    const GET_PATCH: &[&str] = &["GET", "PATCH"];
    const DELETE: &[&str] = &["DELETE"];
    const POST: &[&str] = &["POST"];
    const POST_DELETE: &[&str] = &["POST", "DELETE"];
    let r = match segs {
        ["ping"] => (Ping, GET),
        ["version"] => (Version, GET),
        ["plugins"] => (Plugins, GET),
        ["config", "timesheet"] => (ConfigTimesheet, GET),
        ["config", "colors"] => (ConfigColors, GET),
        ["timesheets"] => (Timesheets, LIST),
        ["timesheets", "active"] => (TimesheetsActive, GET),
        ["timesheets", "recent"] => (TimesheetsRecent, GET),
        ["timesheets", n] => (Timesheet(id(n)?), ONE),
        [
            "timesheets",
            n,
            action @ ("stop" | "restart" | "duplicate" | "export" | "meta"),
        ] => {
            let action: &'static str = match *action {
                "stop" => "stop",
                "restart" => "restart",
                "duplicate" => "duplicate",
                "export" => "export",
                _ => "meta",
            };
            (TimesheetAction(id(n)?, action), PATCH)
        }
        ["customers"] => (Customers, LIST),
        ["customers", n] => (Customer(id(n)?), ONE),
        ["projects"] => (Projects, LIST),
        ["projects", n] => (Project(id(n)?), ONE),
        ["activities"] => (Activities, LIST),
        ["activities", n] => (Activity(id(n)?), ONE),
        ["users"] => (Users, LIST),
        ["users", "me"] => (UsersMe, GET),
        ["users", n] => (User(id(n)?), GET_PATCH),
        ["teams"] => (Teams, LIST),
        ["teams", n] => (Team(id(n)?), ONE),
        ["tags"] => (Tags, LIST),
        ["tags", "find"] => (TagsFind, GET),
        ["tags", n] => (Tag(id(n)?), DELETE),
        ["favorites", "timesheets"] => (Favorites, GET),
        ["favorites", "timesheets", n] => (Favorite(id(n)?), POST_DELETE),
        [
            "customers" | "projects" | "activities",
            n,
            sub @ ("meta" | "rates" | "team"),
        ] => {
            let kind = entity_kind(segs[0]);
            match *sub {
                "meta" => (Sub(kind, id(n)?, "meta"), PATCH),
                "rates" => (Sub(kind, id(n)?, "rates"), LIST),
                _ => (Sub(kind, id(n)?, "team"), POST),
            }
        }
        ["customers" | "projects", n, "comments"] => {
            (Comments(entity_kind(segs[0]), id(n)?, None, false), LIST)
        }
        ["customers" | "projects", n, "comments", c] => (
            Comments(entity_kind(segs[0]), id(n)?, Some(id(c)?), false),
            DELETE,
        ),
        ["customers" | "projects", n, "comments", c, "pin"] => (
            Comments(entity_kind(segs[0]), id(n)?, Some(id(c)?), true),
            PATCH,
        ),
        ["customers" | "projects" | "activities", n, "rates", r] => {
            (RateItem(entity_kind(segs[0]), id(n)?, id(r)?), DELETE)
        }
        ["users", n, "preferences"] => (UserPreferences(id(n)?), PATCH),
        ["invoices"] => (Invoices, GET),
        // Kimai 2.65: PATCH (2.68) and DELETE (2.66) of an invoice do not exist yet → 405.
        ["invoices", n] => (Invoice(id(n)?), GET),
        ["invoices", n, "custom-fields"] => (InvoiceCustomFields(id(n)?), PATCH),
        [
            "teams",
            n,
            what @ ("members" | "customers" | "projects" | "activities"),
            x,
        ] => {
            let what: &'static str = match *what {
                "members" => "members",
                "customers" => "customers",
                "projects" => "projects",
                _ => "activities",
            };
            (TeamLink(id(n)?, what, id(x)?), POST_DELETE)
        }
        _ => {
            let (r, methods) = plugin::route(segs)?;
            (Plugin(r), methods)
        }
    };
    Some(r)
}

/// Contract §1.1: `Bearer<whitespace><token>` with token chars `[A-Za-z0-9-_+~/.]` (Symfony's
/// extractor also allows trailing `=` padding). Anything else counts as no credentials.
fn bearer(header: &str) -> Option<&str> {
    let rest = header.strip_prefix("Bearer")?;
    let token = rest.trim_start_matches([' ', '\t']);
    if token.len() == rest.len() || token.is_empty() {
        return None;
    }
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+~/.".contains(&b))
    {
        return None;
    }
    Some(token)
}

fn invalid_token(description: &str) -> Answer {
    Answer::empty(401).header(
        "WWW-Authenticate",
        format!("Bearer error=\"invalid_token\",error_description=\"{description}\""),
    )
}

fn authenticate(st: &State, req: &Req) -> Result<User, Answer> {
    let Some(token) = req.authorization.as_deref().and_then(bearer) else {
        // §1.2: the legacy scheme is only considered when both headers are present. Seeded
        // users have no API password (`apiToken: false`), so a non-empty pair always fails.
        // Not simulated: the 200–500 ms delay and the 5-per-minute limit (→ 400).
        return Err(match &req.x_auth {
            Some((user, _)) if user.is_empty() => Answer::json(
                403,
                &json!({"message": "Authentication required, missing user header: X-AUTH-USER"}),
            ),
            Some((_, token)) if token.is_empty() => Answer::json(
                403,
                &json!({"message": "Authentication required, missing token header: X-AUTH-TOKEN"}),
            ),
            Some(_) => Answer::json(403, &json!({"message": "Invalid credentials"})),
            None => Answer::error(401),
        });
    };
    if st.revoked.iter().any(|t| t == token) {
        return Err(invalid_token("Invalid credentials."));
    }
    match st.users.iter().find(|u| u.token == token) {
        None => Err(invalid_token("Invalid credentials.")),
        Some(u) if !u.enabled => Err(invalid_token("Account is disabled.")),
        Some(u) => Ok(u.clone()),
    }
}

/// Outcome of one API request: the reply, and whether it was a write that reached a handler
/// (for `Sim::write_count`).
pub struct Outcome {
    pub reply: Answer,
    pub write_reached_handler: bool,
}

pub fn handle(st: &mut State, req: &Req) -> Outcome {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let done = |reply| Outcome {
        reply,
        write_reached_handler: false,
    };
    let Some(("api", rest)) = segs.split_first().map(|(a, b)| (*a, b)) else {
        return done(not_found());
    };
    // Routing runs before security (§1.3).
    let Some((route, methods)) = route(rest) else {
        return done(not_found());
    };
    // Without the plugin its routes do not exist.
    if matches!(route, Route::Plugin(_)) && !st.workcontract_plugin {
        return done(not_found());
    }
    // Symfony routes HEAD like GET (the reply then goes out without its body).
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    if !methods.contains(&method) {
        return done(Answer::error(405));
    }
    let caller = match authenticate(st, req) {
        Ok(u) => u,
        Err(r) => return done(r),
    };
    let write = matches!(req.method.as_str(), "POST" | "PATCH" | "DELETE");
    let result = dispatch(st, req, &caller, route);
    Outcome {
        reply: result.unwrap_or_else(|e| e),
        write_reached_handler: write,
    }
}

fn dispatch(st: &mut State, req: &Req, caller: &User, route: Route) -> Res {
    use Route::*;
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    match (method, route) {
        ("GET", Ping) => Ok(Answer::ok(json!({"message": "pong"}))),
        ("GET", Version) => Ok(Answer::ok(json!({
            "version": "2.65.0", "versionId": 26500, "copyright": "Kimai 2.65.0 by Kevin Papst."
        }))),
        ("GET", Plugins) => Ok(Answer::ok(if st.workcontract_plugin {
            // Plugin version: the contract gives no number for WorkContract; this is a
            // plausible current release, not a verified one.
            json!([{"name": "WorkContractBundle", "version": "2.41.0"}])
        } else {
            json!([])
        })),
        ("GET", ConfigTimesheet) => Ok(Answer::ok(json!({
            "trackingMode": "default", "defaultBeginTime": "now",
            "activeEntriesHardLimit": data::TIMESHEET_CONFIG_HARD_LIMIT,
            "isAllowFutureTimes": true, "isAllowOverlapping": true,
        }))),
        ("GET", ConfigColors) => Ok(Answer::ok(colors())),
        ("GET", Timesheets) => timesheet_list(st, req, caller),
        ("POST", Timesheets) => writes::create(st, req, caller),
        ("GET", TimesheetsActive) => {
            let mut v: Vec<&data::Timesheet> = st
                .timesheets
                .iter()
                .filter(|t| t.user == caller.id && t.end.is_none())
                .collect();
            v.sort_by(|a, b| b.begin.cmp(&a.begin).then(b.id.cmp(&a.id)));
            Ok(Answer::ok(Value::Array(
                v.iter()
                    .map(|t| js::timesheet(st, t, TsShape::Expanded))
                    .collect(),
            )))
        }
        ("GET", TimesheetsRecent) => recent(st, req, caller),
        ("GET", Favorites) => favorites(st, caller),
        ("POST" | "DELETE", Favorite(id)) => favorite(st, method == "POST", caller, id),
        ("GET", Timesheet(id)) => {
            let t = st
                .timesheet_index(id)
                .map(|i| &st.timesheets[i])
                .ok_or_else(not_found)?;
            if !can_view_timesheet(st, caller, t.user) {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::timesheet(st, t, TsShape::Entity)))
        }
        ("PATCH", Timesheet(id)) => writes::update(st, req, caller, id),
        ("DELETE", Timesheet(id)) => writes::delete(st, caller, id),
        ("PATCH", TimesheetAction(id, action)) => writes::action(st, req, caller, id, action),
        ("GET", Customers) => customer_list(st, req, caller),
        ("GET", Customer(id)) => {
            let c = st.customer(id).ok_or_else(not_found)?;
            let ok = can(caller, "view_customer")
                || st.leads_team_with(caller, |t| t.customers.contains(&id));
            if !ok {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::customer_entity(st, c)))
        }
        ("GET", Projects) => project_list(st, req, caller),
        ("GET", Project(id)) => {
            let p = st.project(id).ok_or_else(not_found)?;
            let ok = can(caller, "view_project")
                || st.leads_team_with(caller, |t| {
                    t.projects.contains(&id) || t.customers.contains(&p.customer)
                });
            if !ok {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::project_entity(st, p)))
        }
        ("GET", Activities) => activity_list(st, req, caller),
        ("GET", Activity(id)) => {
            let a = st.activity(id).ok_or_else(not_found)?;
            // Unsure: whether a teamlead may view a global activity assigned to no team. The
            // voter needs `view_teamlead_activity` plus a led team on the activity (or its
            // project); we require that and deny otherwise.
            let ok = can(caller, "view_activity")
                || st.leads_team_with(caller, |t| {
                    t.activities.contains(&id) || a.project.is_some_and(|p| t.projects.contains(&p))
                });
            if !ok {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::activity_entity(st, a)))
        }
        ("GET", Users) => user_list(st, req, caller),
        ("GET", UsersMe) => Ok(Answer::ok(js::user_entity(st, caller))),
        ("GET", User(id)) => {
            let u = st.user(id).ok_or_else(not_found)?;
            if u.id != caller.id && !can(caller, "view_other_profile") {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::user_entity(st, u)))
        }
        ("GET", Teams) => {
            if !can(caller, "view_team") {
                return Err(forbidden());
            }
            let mut teams: Vec<&data::Team> = st.teams.iter().collect();
            teams.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Answer::ok(Value::Array(
                teams.iter().map(|t| js::team_small(t)).collect(),
            )))
        }
        ("GET", Team(id)) => {
            let t = st.teams.iter().find(|t| t.id == id).ok_or_else(not_found)?;
            if !can(caller, "view_team") {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::team_entity(st, t)))
        }
        ("GET", Tags) => {
            let needle = req.param("name").map(str::to_lowercase).unwrap_or_default();
            let mut names: Vec<&str> = st
                .tags
                .iter()
                .filter(|t| t.visible && t.name.to_lowercase().contains(&needle))
                .map(|t| t.name.as_str())
                .collect();
            names.sort();
            Ok(Answer::ok(json!(names)))
        }
        ("GET", TagsFind) => {
            // §8.19: without `name` the result is empty.
            let Some(needle) = req.param("name").map(str::to_lowercase) else {
                return Ok(Answer::ok(json!([])));
            };
            let mut tags: Vec<&data::Tag> = st
                .tags
                .iter()
                .filter(|t| t.visible && t.name.to_lowercase().contains(&needle))
                .collect();
            tags.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Answer::ok(Value::Array(
                tags.iter().map(|t| js::tag(t)).collect(),
            )))
        }
        (_, Sub(kind, id, sub)) => sub_resource(st, req, caller, kind, id, sub),
        ("POST", Customers) => admin::create(st, req, caller, "customer"),
        ("POST", Projects) => admin::create(st, req, caller, "project"),
        ("POST", Activities) => admin::create(st, req, caller, "activity"),
        ("PATCH", Customer(id)) => admin::update(st, req, caller, "customer", id),
        ("PATCH", Project(id)) => admin::update(st, req, caller, "project", id),
        ("PATCH", Activity(id)) => admin::update(st, req, caller, "activity", id),
        ("DELETE", Customer(id)) => admin::delete(st, caller, "customer", id),
        ("DELETE", Project(id)) => admin::delete(st, caller, "project", id),
        ("DELETE", Activity(id)) => admin::delete(st, caller, "activity", id),
        (_, RateItem(kind, id, rate)) => admin::delete_rate(st, caller, kind, id, rate),
        (_, Comments(kind, id, comment, pin)) => {
            admin::comments(st, req, caller, kind, id, comment, pin)
        }
        ("POST", Users) => admin::create_user(st, req, caller),
        ("PATCH", User(id)) => admin::update_user(st, req, caller, id),
        (_, UserPreferences(id)) => admin::preferences(st, req, caller, id),
        ("POST", Teams) => admin::create_team(st, req, caller),
        ("PATCH", Team(id)) => admin::update_team(st, req, caller, id),
        ("DELETE", Team(id)) => admin::delete_team(st, caller, id),
        (_, TeamLink(id, what, target)) => admin::team_link(st, req, caller, id, what, target),
        ("POST", Tags) => admin::create_tag(st, req, caller),
        ("DELETE", Tag(id)) => admin::delete_tag(st, caller, id),
        ("GET", Invoices) => admin::invoice_list(st, req, caller),
        ("GET", Invoice(id)) => admin::invoice(st, caller, id),
        (_, InvoiceCustomFields(id)) => admin::invoice_custom_fields(st, req, caller, id),
        (_, Plugin(r)) => plugin::dispatch(st, req, caller, r),
        _ => {
            log::warn!(
                "sim: {} {} exists in Kimai but is not simulated",
                req.method,
                req.path
            );
            Err(Answer::error(500))
        }
    }
}

pub fn can_view_timesheet(st: &State, caller: &User, owner: u64) -> bool {
    if owner == caller.id {
        can(caller, "view_own_timesheet")
    } else {
        can(caller, "view_other_timesheet") && st.can_access_user(caller, owner)
    }
}

fn colors() -> Value {
    let palette = [
        ("Silver", "#c0c0c0"),
        ("Gray", "#808080"),
        ("Black", "#000000"),
        ("Maroon", "#800000"),
        ("Brown", "#a52a2a"),
        ("Red", "#ff0000"),
        ("Orange", "#ffa500"),
        ("Gold", "#ffd700"),
        ("Yellow", "#ffff00"),
        ("Peach", "#ffdab9"),
        ("Khaki", "#f0e68c"),
        ("Olive", "#808000"),
        ("Lime", "#00ff00"),
        ("Jelly", "#9acd32"),
        ("Green", "#008000"),
        ("Teal", "#008080"),
        ("Aqua", "#00ffff"),
        ("LightBlue", "#add8e6"),
        ("DeepSky", "#00bfff"),
        ("Dodger", "#1e90ff"),
        ("Blue", "#0000ff"),
        ("Navy", "#000080"),
        ("Purple", "#800080"),
        ("Fuchsia", "#ff00ff"),
        ("Violet", "#ee82ee"),
        ("Rose", "#ffe4e1"),
        ("Lavender", "#E6E6FA"),
    ];
    let mut m = serde_json::Map::new();
    for (k, v) in palette {
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// Parameter helpers (§7.10: strict, case-sensitive patterns; unknown parameters ignored)

fn digits_param(req: &Req, name: &str) -> Result<Option<u64>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => id(v).map(Some).ok_or_else(bad),
    }
}

fn id_array(req: &Req, name: &str) -> Result<Vec<u64>, Answer> {
    req.array(name)
        .into_iter()
        .map(|v| id(v).ok_or_else(bad))
        .collect()
}

fn one_of<'a>(req: &'a Req, name: &str, allowed: &[&str]) -> Result<Option<&'a str>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(_) => Err(bad()),
    }
}

/// Strict `YYYY-MM-DDTHH:MM:SS` in `tz` → unix seconds.
fn date_param(req: &Req, name: &str, tz: Tz) -> Result<Option<i64>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => time::parse_local_strict(v)
            .map(|l| Some(tz.to_utc(l)))
            .ok_or_else(bad),
    }
}

fn ascending(req: &Req, default_asc: bool) -> Result<bool, Answer> {
    Ok(match one_of(req, "order", &["ASC", "DESC"])? {
        Some(o) => o == "ASC",
        None => default_asc,
    })
}

/// §7.8: whitespace-separated words, all must match (AND); `!word` excludes; `field:value`
/// targets a custom field (substring, case-insensitive); `field:*` = has a value, `field:~` and
/// `field:""` = not set or empty. Entities without custom fields pass an empty `meta`.
fn term_matches(term: &str, fields: &[Option<&str>]) -> bool {
    term_matches_meta(term, fields, &[])
}

fn term_matches_meta(term: &str, fields: &[Option<&str>], meta: &[(String, String)]) -> bool {
    term.split_whitespace().all(|word| {
        let (negate, word) = match word.strip_prefix('!') {
            Some(w) => (true, w),
            None => (false, word),
        };
        let hit = if let Some((name, value)) = word.split_once(':') {
            let stored = meta
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            match value {
                "~" | "\"\"" => stored.is_empty(),
                "*" => !stored.is_empty(),
                v => stored.to_lowercase().contains(&v.to_lowercase()),
            }
        } else {
            let w = word.to_lowercase();
            fields
                .iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(&w))
        };
        hit != negate
    })
}

// ---------------------------------------------------------------------------------------------
// Timesheets

fn timesheet_list(st: &State, req: &Req, caller: &User) -> Res {
    if !can(caller, "view_own_timesheet") && !can(caller, "view_other_timesheet") {
        return Err(forbidden());
    }
    let tz = caller.tz;
    // Validate every parameter first. Unsure: FOSRest's ParamFetcher validates a parameter
    // when it is fetched, and Kimai fetches `user`/`users` only with `view_other_timesheet`; if
    // it never fetches them for a plain user, `user=me` would be ignored there rather than 400.
    // We choose the strict reading.
    let user_param = match req.param("user") {
        None => None,
        Some("all") => Some(None),
        Some(v) => Some(Some(id(v).ok_or_else(bad)?)),
    };
    let users_param = id_array(req, "users")?;
    let customers = [
        digits_param(req, "customer")?.into_iter().collect(),
        id_array(req, "customers")?,
    ]
    .concat();
    let projects = [
        digits_param(req, "project")?.into_iter().collect(),
        id_array(req, "projects")?,
    ]
    .concat();
    let activities = [
        digits_param(req, "activity")?.into_iter().collect(),
        id_array(req, "activities")?,
    ]
    .concat();
    let begin = date_param(req, "begin", tz)?;
    let end = date_param(req, "end", tz)?;
    let modified_after = date_param(req, "modified_after", Tz::Utc)?;
    let exported = one_of(req, "exported", &["0", "1"])?;
    let active = one_of(req, "active", &["0", "1"])?;
    let billable = one_of(req, "billable", &["0", "1"])?;
    let order_by = one_of(req, "orderBy", &["id", "begin", "end", "rate"])?.unwrap_or("begin");
    let asc = ascending(req, false)?;
    let page = digits_param(req, "page")?.unwrap_or(1).max(1);
    let size = match digits_param(req, "size")? {
        None | Some(0) => 50,
        Some(s) => s.min(500),
    };
    let full = one_of(req, "full", &["0", "1", "true", "false"])?;
    let expanded = matches!(full, Some("1" | "true"));
    let term = req.param("term").filter(|t| !t.trim().is_empty());

    // Users: only evaluated with view_other_timesheet; otherwise silently own records.
    let user_filter: Option<Vec<u64>> = if can(caller, "view_other_timesheet") {
        match user_param {
            Some(None) => {
                if can(caller, "view_all_data") {
                    None
                } else {
                    Some(
                        st.users
                            .iter()
                            .filter(|u| st.can_access_user(caller, u.id))
                            .map(|u| u.id)
                            .collect(),
                    )
                }
            }
            _ => {
                // Unsure: the contract does not say what an unknown `user` id does; it is
                // treated like an unknown `users[]` id (dropped).
                let mut ids: Vec<u64> = user_param
                    .flatten()
                    .into_iter()
                    .chain(users_param)
                    .collect();
                ids.retain(|id| st.user(*id).is_some());
                for id in &ids {
                    if !st.can_access_user(caller, *id) {
                        return Err(forbidden());
                    }
                }
                if ids.is_empty() {
                    Some(vec![caller.id])
                } else {
                    Some(ids)
                }
            }
        }
    } else {
        Some(vec![caller.id])
    };

    // Customer/project/activity: unknown ids ignored; found but inaccessible → 403.
    let mut cust_ids = Vec::new();
    for c in customers {
        if st.customer(c).is_some() {
            if !st.customer_accessible(caller, c) {
                return Err(forbidden());
            }
            cust_ids.push(c);
        }
    }
    let mut proj_ids = Vec::new();
    for p in projects {
        if let Some(pr) = st.project(p) {
            if !st.project_accessible(caller, pr) {
                return Err(forbidden());
            }
            proj_ids.push(p);
        }
    }
    let mut act_ids = Vec::new();
    for a in activities {
        if let Some(ac) = st.activity(a) {
            if !st.activity_accessible(caller, ac) {
                return Err(forbidden());
            }
            act_ids.push(a);
        }
    }
    let tag_names = req.array("tags");
    let tag_ids: Option<Vec<u64>> = if tag_names.is_empty() {
        None
    } else {
        let found: Vec<u64> = st
            .tags
            .iter()
            .filter(|t| t.visible && tag_names.contains(&t.name.as_str()))
            .map(|t| t.id)
            .collect();
        if found.is_empty() {
            return Err(bad());
        }
        Some(found)
    };

    let mut hits: Vec<&data::Timesheet> = st
        .timesheets
        .iter()
        .filter(|t| {
            user_filter.as_ref().is_none_or(|u| u.contains(&t.user))
                && (cust_ids.is_empty()
                    || st.project(t.project).is_some_and(|p| cust_ids.contains(&p.customer)))
                && (proj_ids.is_empty() || proj_ids.contains(&t.project))
                && (act_ids.is_empty() || act_ids.contains(&t.activity))
                && tag_ids.as_ref().is_none_or(|ids| t.tags.iter().any(|x| ids.contains(x)))
                && begin.is_none_or(|b| t.begin >= b)
                // §5.2: `end` compares the record's begin.
                && end.is_none_or(|e| t.begin <= e)
                && modified_after.is_none_or(|m| t.modified_at >= m)
                && exported.is_none_or(|e| t.exported == (e == "1"))
                && active.is_none_or(|a| t.end.is_none() == (a == "1"))
                && billable.is_none_or(|b| t.billable == (b == "1"))
                && term.is_none_or(|term| term_matches_meta(term, &[t.description.as_deref()], &t.meta))
        })
        .collect();
    hits.sort_by(|a, b| {
        let primary = match order_by {
            "id" => a.id.cmp(&b.id),
            // SQL puts NULL first in ASC (MySQL/MariaDB ordering), i.e. running records.
            "end" => a.end.cmp(&b.end),
            "rate" => a.rate.total_cmp(&b.rate),
            _ => a.begin.cmp(&b.begin),
        };
        let o = primary.then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    let total = hits.len() as u64;
    let pages = total.div_ceil(size).max(1);
    if page > pages {
        return Err(not_found());
    }
    let shape = if expanded {
        TsShape::Expanded
    } else {
        TsShape::Collection
    };
    let items: Vec<&data::Timesheet> = hits
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .copied()
        .collect();
    Ok(Answer::raw_json(js::timesheets_body(st, &items, shape))
        .header("X-Page", page.to_string())
        .header("X-Total-Count", total.to_string())
        .header("X-Total-Pages", pages.to_string())
        .header("X-Per-Page", size.to_string()))
}

fn recent(st: &State, req: &Req, caller: &User) -> Res {
    if !can(caller, "view_own_timesheet") {
        return Err(forbidden());
    }
    // §5.2: no default begin despite the docs; size default 10, no cap.
    let begin = date_param(req, "begin", caller.tz)?;
    let size = digits_param(req, "size")?.unwrap_or(10) as usize;
    let mut own: Vec<&data::Timesheet> = st
        .timesheets
        .iter()
        .filter(|t| t.user == caller.id && begin.is_none_or(|b| t.begin >= b))
        .collect();
    own.sort_by(|a, b| b.begin.cmp(&a.begin).then(b.id.cmp(&a.id)));
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for t in own {
        if out.len() >= size {
            break;
        }
        if seen.contains(&(t.project, t.activity)) {
            continue;
        }
        seen.push((t.project, t.activity));
        out.push(js::timesheet(st, t, TsShape::Expanded));
    }
    Ok(Answer::ok(Value::Array(out)))
}

/// Contract §5.11: the caller's favorite records, expanded, newest first; needs
/// `start_own_timesheet`. Favorites of deleted records are gone with them.
fn favorites(st: &State, caller: &User) -> Res {
    if !can(caller, "start_own_timesheet") {
        return Err(forbidden());
    }
    let mut out: Vec<&data::Timesheet> = st
        .favorites
        .iter()
        .filter(|(u, _)| *u == caller.id)
        .filter_map(|(_, t)| st.timesheet_index(*t).map(|i| &st.timesheets[i]))
        .collect();
    out.sort_by(|a, b| b.begin.cmp(&a.begin).then(b.id.cmp(&a.id)));
    Ok(Answer::ok(Value::Array(
        out.iter()
            .map(|t| js::timesheet(st, t, TsShape::Expanded))
            .collect(),
    )))
}

/// Contract §5.11: add or remove a favorite; only the caller's own records (another user's →
/// 403, unknown → 404); 204; removing a record that is no favorite is not an error. Whether
/// adding one twice is an error is not documented: treated as a no-op here.
fn favorite(st: &mut State, add: bool, caller: &User, id: u64) -> Res {
    let Some(i) = st.timesheet_index(id) else {
        return Err(not_found());
    };
    if st.timesheets[i].user != caller.id || !can(caller, "start_own_timesheet") {
        return Err(forbidden());
    }
    let entry = (caller.id, id);
    if add {
        if !st.favorites.contains(&entry) {
            st.favorites.push(entry);
        }
    } else {
        st.favorites.retain(|f| *f != entry);
    }
    Ok(Answer::empty(204))
}

// ---------------------------------------------------------------------------------------------
// Customers, projects, activities, users

/// §7.1 tri-state `visible`: 1 visible (default), 2 hidden, 3 both.
fn visible_param(req: &Req) -> Result<u8, Answer> {
    Ok(match one_of(req, "visible", &["1", "2", "3"])? {
        Some("2") => 2,
        Some("3") => 3,
        _ => 1,
    })
}

fn visible_ok(mode: u8, visible: bool) -> bool {
    match mode {
        1 => visible,
        2 => !visible,
        _ => true,
    }
}

fn customer_list(st: &State, req: &Req, caller: &User) -> Res {
    let vis = visible_param(req)?;
    let asc = ascending(req, true)?;
    let order_by = one_of(req, "orderBy", &["id", "name"])?.unwrap_or("name");
    let full = one_of(req, "full", &["0", "1"])? == Some("1");
    let details = full && can(caller, "details_customer");
    let term = req.param("term").unwrap_or("");
    let mut v: Vec<&data::Customer> = st
        .customers
        .iter()
        .filter(|c| {
            st.customer_accessible(caller, c.id)
                && visible_ok(vis, c.visible)
                && term_matches(
                    term,
                    &[
                        Some(&c.name),
                        c.comment.as_deref(),
                        c.company.as_deref(),
                        Some(&c.number),
                        c.email.as_deref(),
                        c.address_line1.as_deref(),
                    ],
                )
        })
        .collect();
    v.sort_by(|a, b| {
        let o = if order_by == "id" {
            a.id.cmp(&b.id)
        } else {
            a.name.cmp(&b.name).then(a.id.cmp(&b.id))
        };
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter()
            .map(|c| js::customer_collection(st, c, details))
            .collect(),
    )))
}

/// Project list `start`/`end`: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (§4.2 exception).
fn day_param(req: &Req, name: &str) -> Result<Option<i64>, Answer> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => time::parse_date(v)
            .or_else(|| time::parse_local_strict(v).map(|l| l.div_euclid(time::DAY)))
            .map(Some)
            .ok_or_else(bad),
    }
}

fn project_list(st: &State, req: &Req, caller: &User) -> Res {
    let customers = [
        digits_param(req, "customer")?.into_iter().collect(),
        id_array(req, "customers")?,
    ]
    .concat();
    let vis = visible_param(req)?;
    let start = day_param(req, "start")?;
    let end = day_param(req, "end")?;
    let ignore_dates = one_of(req, "ignoreDates", &["1"])?.is_some();
    let global = one_of(req, "globalActivities", &["0", "1"])?;
    let asc = ascending(req, true)?;
    let order_by = one_of(req, "orderBy", &["id", "name", "customer"])?.unwrap_or("name");
    let term = req.param("term").unwrap_or("");
    let mut cust_ids = Vec::new();
    for c in customers {
        if st.customer(c).is_some() {
            if !st.customer_accessible(caller, c) {
                return Err(forbidden());
            }
            cust_ids.push(c);
        }
    }
    // §5.4: without ignoreDates and without start/end both default to today (caller's day).
    let today = (st.now() + caller.tz.offset_at(st.now())).div_euclid(time::DAY);
    let (start, end) = if ignore_dates {
        (None, None)
    } else if start.is_none() && end.is_none() {
        (Some(today), Some(today))
    } else {
        (start, end)
    };
    let mut v: Vec<&data::Project> = st
        .projects
        .iter()
        .filter(|p| {
            let cust = st.customer(p.customer);
            let visible = p.visible && cust.is_some_and(|c| c.visible);
            st.project_accessible(caller, p)
                && visible_ok(vis, if vis == 2 { p.visible } else { visible })
                && (cust_ids.is_empty() || cust_ids.contains(&p.customer))
                // Unsure: how start/end combine when only one is given; each bounds its side.
                && start.is_none_or(|d| p.end.is_none_or(|e| e >= d))
                && end.is_none_or(|d| p.start.is_none_or(|s| s <= d))
                && global.is_none_or(|g| p.global_activities == (g == "1"))
                && term_matches(term, &[Some(&p.name), p.comment.as_deref(), p.order_number.as_deref(), Some(&p.number)])
        })
        .collect();
    let cname = |p: &data::Project| {
        st.customer(p.customer)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    v.sort_by(|a, b| {
        let o = match order_by {
            "id" => a.id.cmp(&b.id),
            "customer" => cname(a).cmp(&cname(b)).then(a.name.cmp(&b.name)),
            _ => a.name.cmp(&b.name),
        }
        .then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter().map(|p| js::project_collection(st, p)).collect(),
    )))
}

fn activity_list(st: &State, req: &Req, caller: &User) -> Res {
    let projects = [
        digits_param(req, "project")?.into_iter().collect(),
        id_array(req, "projects")?,
    ]
    .concat();
    let vis = visible_param(req)?;
    let globals = one_of(req, "globals", &["0", "1", "true", "false"])?;
    let only_globals = matches!(globals, Some("1" | "true"));
    let asc = ascending(req, true)?;
    let order_by = one_of(req, "orderBy", &["id", "name", "project"])?.unwrap_or("name");
    let term = req.param("term").unwrap_or("");
    let mut proj_ids = Vec::new();
    for p in &projects {
        if let Some(pr) = st.project(*p) {
            if !st.project_accessible(caller, pr) {
                return Err(forbidden());
            }
            proj_ids.push(*p);
        }
    }
    // §5.5: a project filter lists that project's activities plus globals, unless exactly one
    // project is requested and it has globalActivities=false.
    let include_globals = !(proj_ids.len() == 1
        && st
            .project(proj_ids[0])
            .is_some_and(|p| !p.global_activities));
    let mut v: Vec<&data::Activity> = st
        .activities
        .iter()
        .filter(|a| {
            let parent_visible = match a.project.and_then(|p| st.project(p)) {
                Some(p) => p.visible && st.customer(p.customer).is_some_and(|c| c.visible),
                None => true,
            };
            let vis_ok = match vis {
                1 => a.visible && parent_visible,
                2 => !a.visible,
                _ => true,
            };
            let project_ok = if only_globals {
                a.project.is_none()
            } else if proj_ids.is_empty() {
                true
            } else {
                match a.project {
                    Some(p) => proj_ids.contains(&p),
                    None => include_globals,
                }
            };
            st.activity_accessible(caller, a)
                && vis_ok
                && project_ok
                && term_matches(
                    term,
                    &[Some(&a.name), a.comment.as_deref(), Some(&a.number)],
                )
        })
        .collect();
    let pname = |a: &data::Activity| {
        a.project
            .and_then(|p| st.project(p))
            .map(|p| p.name.clone())
    };
    v.sort_by(|a, b| {
        let o = match order_by {
            "id" => a.id.cmp(&b.id),
            "project" => pname(a).cmp(&pname(b)).then(a.name.cmp(&b.name)),
            _ => a.name.cmp(&b.name),
        }
        .then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter().map(|a| js::activity_collection(st, a)).collect(),
    )))
}

fn user_list(st: &State, req: &Req, caller: &User) -> Res {
    if !can(caller, "view_user") {
        return Err(forbidden());
    }
    let vis = visible_param(req)?;
    let asc = ascending(req, true)?;
    let order_by =
        one_of(req, "orderBy", &["id", "username", "alias", "email"])?.unwrap_or("username");
    let full = matches!(
        one_of(req, "full", &["0", "1", "true", "false"])?,
        Some("1" | "true")
    );
    let term = req.param("term").unwrap_or("");
    let mut v: Vec<&User> = st
        .users
        .iter()
        .filter(|u| {
            visible_ok(vis, u.enabled)
                && term_matches(
                    term,
                    &[
                        u.alias.as_deref(),
                        u.title.as_deref(),
                        u.account_number.as_deref(),
                        Some(&u.email),
                        Some(&u.username),
                    ],
                )
        })
        .collect();
    v.sort_by(|a, b| {
        let o = match order_by {
            "id" => a.id.cmp(&b.id),
            "alias" => a.alias.cmp(&b.alias),
            "email" => a.email.cmp(&b.email),
            _ => a.username.cmp(&b.username),
        }
        .then(a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    Ok(Answer::ok(Value::Array(
        v.iter()
            .map(|u| {
                if full {
                    js::user_entity(st, u)
                } else {
                    js::user(u)
                }
            })
            .collect(),
    )))
}

// ---------------------------------------------------------------------------------------------
// Sub-resources of customers, projects and activities

/// Voter `edit` on a customer/project/activity (§11): ADMIN+, or for activities a teamlead
/// leading a team the activity is assigned to (`edit_teamlead_activity`).
fn may_edit_entity(st: &State, caller: &User, kind: &str, id: u64) -> bool {
    match kind {
        "customer" => can(caller, "edit_customer"),
        "project" => can(caller, "edit_project"),
        _ => {
            can(caller, "edit_activity")
                || (can(caller, "view_other_timesheet")
                    && st.leads_team_with(caller, |t| t.activities.contains(&id)))
        }
    }
}

fn sub_resource(
    st: &mut State,
    req: &Req,
    caller: &User,
    kind: &'static str,
    id: u64,
    sub: &str,
) -> Res {
    if sub == "team" {
        // §5.3: removed in 2.65. Unsure whether the entity is loaded first (404 for an unknown
        // id); we answer 410 regardless.
        return Err(Answer::json(
            410,
            &json!({"code": 410, "message": "This endpoint was removed, use \"POST /api/teams/\" instead."}),
        ));
    }
    let exists = match kind {
        "customer" => st.customer(id).is_some(),
        "project" => st.project(id).is_some(),
        _ => st.activity(id).is_some(),
    };
    if !exists {
        return Err(not_found());
    }
    if !may_edit_entity(st, caller, kind, id) {
        return Err(forbidden());
    }
    match (req.method.as_str(), sub) {
        (_, "rates") => admin::rates(st, req, kind, id),
        ("PATCH", "meta") => admin::meta(st, req, kind, id),
        _ => {
            log::warn!(
                "sim: {} {} exists in Kimai but is not simulated",
                req.method,
                req.path
            );
            Err(Answer::error(500))
        }
    }
}
