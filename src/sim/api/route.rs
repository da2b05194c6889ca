//! Every route of the simulated Kimai: path segments after `/api` to a [`Route`] and the methods
//! it allows. A path that matches nothing is a 404, a known path with another method a 405;
//! both are decided before authentication (§1.3).

use crate::sim::plugin;
use crate::sim::wire::id;

/// Every route of the simulator. Matching is on `(segments)` slices like cargo's fake registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
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
    /// `/api/users/{id}/api-token` of the ApiTokenBundle plugin (`plugin::api_tokens`);
    /// unknown (404) when it is not installed.
    ApiToken(u64),
}

fn entity_kind(seg: &str) -> &'static str {
    match seg {
        "customers" => "customer",
        "projects" => "project",
        _ => "activity",
    }
}

pub(super) fn route(segs: &[&str]) -> Option<(Route, &'static [&'static str])> {
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
        ["users", n, "api-token"] => (ApiToken(id(n)?), LIST),
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
