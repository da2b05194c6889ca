//! The simulated Kimai REST API: the order of checks and the method table. Owns the order Kimai
//! applies: routing (404/405) before security (401), entity load before the voter (404 before
//! 403), parameter validation (400). A handler is a plain function from a parsed request
//! ([`Req`]) and the `State` to an owned [`Answer`]; `http` is the only place that knows HTTP.
//! Reads ([`handle_read`]: the GET routes whose handlers take `&State`) run on a snapshot of the
//! data without any lock; every other request ([`handle`]) runs with the state mutex held for
//! the duration of its handler (no I/O happens under the lock).
//!
//! The routes are in `route`, authentication in `auth`, the read endpoints of contract §5 in
//! `timesheets`, `lists` and `sub_resources`; writes live in `writes` (timesheets), `admin`
//! and `plugin`, which import only the wire types, never this module.

mod auth;
mod lists;
mod params;
mod route;
mod sub_resources;
mod timesheets;

use serde_json::{Value, json};

use crate::sim::data::{self, State, User, can};
use crate::sim::json::{self as js, TsShape};
use crate::sim::wire::{Answer, Req, Res, forbidden, not_found};
use crate::sim::{admin, plugin, writes};
use auth::authenticate;
use lists::{activity_list, customer_list, project_list, user_list};
use route::{Route, route};
use sub_resources::sub_resource;
use timesheets::{favorite, favorites, recent, timesheet_for, timesheet_list};

/// Outcome of one API request: the reply, and whether it was a write that reached a handler
/// (for `Sim::write_count`).
pub struct Outcome {
    pub reply: Answer,
    pub write_reached_handler: bool,
}

/// Routing, the method check and authentication, in Kimai's order: what every request goes
/// through before its handler. `Err` is the finished outcome (404, 405, 401).
fn prelude(st: &State, req: &Req) -> Result<(Route, User), Outcome> {
    let done = |reply| Outcome {
        reply,
        write_reached_handler: false,
    };
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let Some(("api", rest)) = segs.split_first().map(|(a, b)| (*a, b)) else {
        return Err(done(not_found()));
    };
    // Routing runs before security (§1.3).
    let Some((route, methods)) = route(rest) else {
        return Err(done(not_found()));
    };
    // Without the plugin its routes do not exist.
    if matches!(route, Route::Plugin(_)) && !st.workcontract_plugin {
        return Err(done(not_found()));
    }
    if matches!(route, Route::ApiToken(_)) && !st.api_tokens.installed {
        return Err(done(not_found()));
    }
    if !methods.contains(&method_of(req)) {
        return Err(done(Answer::error(405)));
    }
    let caller = authenticate(st, req).map_err(done)?;
    Ok((route, caller))
}

/// Symfony routes HEAD like GET (the reply then goes out without its body).
fn method_of(req: &Req) -> &str {
    if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    }
}

pub fn handle(st: &mut State, req: &Req) -> Outcome {
    let (route, caller) = match prelude(st, req) {
        Ok(rc) => rc,
        Err(done) => return done,
    };
    let write = matches!(req.method.as_str(), "POST" | "PATCH" | "DELETE");
    let result = dispatch(st, req, &caller, route);
    Outcome {
        reply: result.unwrap_or_else(|e| e),
        write_reached_handler: write,
    }
}

/// A request that only reads, answered from `st` without changing it: `None` when the request
/// may change the data (then it goes to [`handle`] under the lock). The simulator answers reads
/// from a snapshot (see `mod.rs`); a request refused before its handler (404, 405, 401) is a
/// read too.
pub fn handle_read(st: &State, req: &Req) -> Option<Outcome> {
    if method_of(req) != "GET" {
        return None;
    }
    let (route, caller) = match prelude(st, req) {
        Ok(rc) => rc,
        Err(done) => return Some(done),
    };
    let result = dispatch_read(st, req, &caller, route)?;
    Some(Outcome {
        reply: result.unwrap_or_else(|e| e),
        write_reached_handler: false,
    })
}

/// The GET routes whose handlers only read; `None` for every other route.
fn dispatch_read(st: &State, req: &Req, caller: &User, route: Route) -> Option<Res> {
    use Route::*;
    Some(match route {
        Ping => Ok(Answer::ok(json!({"message": "pong"}))),
        Version => Ok(Answer::ok(json!({
            "version": "2.65.0", "versionId": 26500, "copyright": "Kimai 2.65.0 by Kevin Papst."
        }))),
        Plugins => Ok(Answer::ok({
            let mut list = if st.workcontract_plugin {
                // Plugin version: the contract gives no number for WorkContract; this is a
                // plausible current release, not a verified one.
                json!([{"name": "WorkContractBundle", "version": "2.41.0"}])
            } else {
                json!([])
            };
            if let (Some(entry), Some(l)) =
                (plugin::api_tokens::plugin_entry(st), list.as_array_mut())
            {
                l.push(entry);
            }
            list
        })),
        ConfigTimesheet => Ok(Answer::ok(json!({
            "trackingMode": "default", "defaultBeginTime": "now",
            "activeEntriesHardLimit": data::TIMESHEET_CONFIG_HARD_LIMIT,
            "isAllowFutureTimes": true, "isAllowOverlapping": true,
        }))),
        ConfigColors => Ok(Answer::ok(colors())),
        Timesheets => timesheet_list(st, req, caller),
        TimesheetsActive => {
            let mut v: Vec<&data::Timesheet> = st
                .timesheets
                .iter()
                .filter(|t| t.user == caller.id && t.end.is_none())
                .collect();
            v.sort_by(|a, b| b.begin.cmp(&a.begin).then(b.id.cmp(&a.id)));
            Ok(Answer::ok(Value::Array(
                v.iter()
                    .map(|t| timesheet_for(st, caller, t, TsShape::Expanded))
                    .collect(),
            )))
        }
        TimesheetsRecent => recent(st, req, caller),
        Favorites => favorites(st, caller),
        Timesheet(id) => (|| {
            let t = st
                .timesheet_index(id)
                .map(|i| &st.timesheets[i])
                .ok_or_else(not_found)?;
            if !can_view_timesheet(st, caller, t.user) {
                return Err(forbidden());
            }
            Ok(Answer::ok(timesheet_for(st, caller, t, TsShape::Entity)))
        })(),
        Customers => customer_list(st, req, caller),
        Customer(id) => (|| {
            let c = st.customer(id).ok_or_else(not_found)?;
            let ok = can(caller, "view_customer")
                || st.leads_team_with(caller, |t| t.customers.contains(&id));
            if !ok {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::customer_entity(st, c)))
        })(),
        Projects => project_list(st, req, caller),
        Project(id) => (|| {
            let p = st.project(id).ok_or_else(not_found)?;
            let ok = can(caller, "view_project")
                || st.leads_team_with(caller, |t| {
                    t.projects.contains(&id) || t.customers.contains(&p.customer)
                });
            if !ok {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::project_entity(st, p)))
        })(),
        Activities => activity_list(st, req, caller),
        Activity(id) => (|| {
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
        })(),
        Users => user_list(st, req, caller),
        UsersMe => Ok(Answer::ok(js::user_entity(st, caller))),
        User(id) => (|| {
            let u = st.user(id).ok_or_else(not_found)?;
            if u.id != caller.id && !can(caller, "view_other_profile") {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::user_entity(st, u)))
        })(),
        Teams => (|| {
            if !can(caller, "view_team") {
                return Err(forbidden());
            }
            let mut teams: Vec<&data::Team> = st.teams.iter().collect();
            teams.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Answer::ok(Value::Array(
                teams.iter().map(|t| js::team_small(t)).collect(),
            )))
        })(),
        Team(id) => (|| {
            let t = st.teams.iter().find(|t| t.id == id).ok_or_else(not_found)?;
            if !can(caller, "view_team") {
                return Err(forbidden());
            }
            Ok(Answer::ok(js::team_entity(st, t)))
        })(),
        Tags => {
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
        TagsFind => {
            // §8.19: without `name` the result is empty.
            let Some(needle) = req.param("name").map(str::to_lowercase) else {
                return Some(Ok(Answer::ok(json!([]))));
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
        _ => return None,
    })
}

fn dispatch(st: &mut State, req: &Req, caller: &User, route: Route) -> Res {
    use Route::*;
    let method = method_of(req);
    if method == "GET"
        && let Some(res) = dispatch_read(st, req, caller, route)
    {
        return res;
    }
    match (method, route) {
        ("POST", Timesheets) => writes::create(st, req, caller),
        ("POST" | "DELETE", Favorite(id)) => favorite(st, method == "POST", caller, id),
        ("PATCH", Timesheet(id)) => writes::update(st, req, caller, id),
        ("DELETE", Timesheet(id)) => writes::delete(st, caller, id),
        ("PATCH", TimesheetAction(id, action)) => writes::action(st, req, caller, id, action),
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
        // The ApiTokenBundle plugin: its list is answered under the lock too (rarely read).
        ("GET", ApiToken(id)) => plugin::api_tokens::list(st, caller, id),
        ("POST", ApiToken(id)) => plugin::api_tokens::create(st, req, caller, id),
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
