//! The simulated Kimai's database: entity structs, the permission table of contract §11 and the
//! deterministic seed.
//!
//! Owns: what is stored and who may see it (team visibility §7.1, role permissions §11), rate and
//! billable calculation on save (§7.3, §7.4). Leaves HTTP, parameters and JSON shapes to
//! `api`/`json`. The whole `State` lives behind one `Mutex` in `mod.rs`; worker threads lock it
//! briefly per request and never across socket I/O.

use super::time::{self, DAY, Tz};

#[derive(Clone, Debug)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub alias: Option<String>,
    pub title: Option<String>,
    pub email: String,
    pub account_number: Option<String>,
    pub enabled: bool,
    pub role: &'static str,
    pub tz: Tz,
    pub language: &'static str,
    pub color: Option<String>,
    pub supervisor: Option<u64>,
    pub hourly_rate: f64,
    pub internal_rate: Option<f64>,
    pub token: String,
}

#[derive(Clone, Debug)]
pub struct Team {
    pub id: u64,
    pub name: String,
    pub color: Option<String>,
    /// (user id, is teamlead), in insertion order.
    pub members: Vec<(u64, bool)>,
    pub customers: Vec<u64>,
    pub projects: Vec<u64>,
    pub activities: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct Customer {
    pub id: u64,
    pub name: String,
    pub number: String,
    pub comment: Option<String>,
    pub visible: bool,
    pub billable: bool,
    pub company: Option<String>,
    pub country: &'static str,
    pub currency: &'static str,
    pub timezone: &'static str,
    pub color: Option<String>,
    pub address_line1: Option<String>,
    pub post_code: Option<String>,
    pub city: Option<String>,
    pub email: Option<String>,
    pub homepage: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Project {
    pub id: u64,
    pub name: String,
    pub number: String,
    pub customer: u64,
    pub comment: Option<String>,
    pub order_number: Option<String>,
    /// Day numbers (days since 1970-01-01), serialized as `Y-m-d`.
    pub order_date: Option<i64>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub visible: bool,
    pub billable: bool,
    pub global_activities: bool,
    pub color: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Activity {
    pub id: u64,
    pub name: String,
    pub number: String,
    pub project: Option<u64>,
    pub comment: Option<String>,
    pub visible: bool,
    pub billable: bool,
    pub color: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Tag {
    pub id: u64,
    pub name: String,
    pub visible: bool,
    pub color: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateOn {
    Customer(u64),
    Project(u64),
    Activity(u64),
}

#[derive(Clone, Debug)]
pub struct Rate {
    pub on: RateOn,
    pub user: Option<u64>,
    pub rate: f64,
    pub internal_rate: Option<f64>,
    pub is_fixed: bool,
}

#[derive(Clone, Debug)]
pub struct Timesheet {
    pub id: u64,
    pub user: u64,
    pub project: u64,
    pub activity: u64,
    /// Unix seconds.
    pub begin: i64,
    pub end: Option<i64>,
    /// The timezone stored on the record (its owner's, §4.1).
    pub tz: Tz,
    pub duration: i64,
    pub break_secs: i64,
    pub description: Option<String>,
    pub rate: f64,
    pub internal_rate: f64,
    pub fixed_rate: Option<f64>,
    pub hourly_rate: Option<f64>,
    pub exported: bool,
    pub billable: bool,
    pub tags: Vec<u64>,
    /// Custom-field values (name as defined, value), in definition order.
    pub meta: Vec<(String, String)>,
    /// Unix seconds (UTC column in Kimai).
    pub modified_at: i64,
}

/// Everything the simulated Kimai stores. `Clone`, so that a read can work on a snapshot
/// (`Arc<State>` in `mod.rs`) while a write changes a copy.
#[derive(Clone)]
pub struct State {
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub customers: Vec<Customer>,
    pub projects: Vec<Project>,
    pub activities: Vec<Activity>,
    pub tags: Vec<Tag>,
    pub rates: Vec<Rate>,
    /// Ordered by id.
    pub timesheets: Vec<Timesheet>,
    pub next_timesheet_id: u64,
    /// Names of the visible custom fields defined for timesheets (contract §7.7: core Kimai
    /// defines none; a plugin adds them). Empty on a bare install.
    pub timesheet_meta_fields: Vec<String>,
    /// Kimai's optional lockdown (contract §7.5), simplified to one instant: records that
    /// begin before it are locked. `None` = no lockdown (the default).
    pub lockdown_before: Option<i64>,
    /// Favorite records as (user id, timesheet id) (Kimai 2.66-dev, contract §5.11).
    pub favorites: Vec<(u64, u64)>,
    pub workcontract_plugin: bool,
    /// Whether the plugin has its month-lock routes (`Options::workcontract_month_locks`).
    pub workcontract_month_locks: bool,
    /// The WorkContract plugin's data (absences, public holidays, month locks).
    pub plugin: super::plugin::store::PluginState,
    /// The ApiTokenBundle plugin: installed or not, and the tokens it made.
    pub api_tokens: super::plugin::api_tokens::ApiTokens,
    /// Tokens revoked through `Sim::revoke_token`.
    pub revoked: Vec<String>,
    /// Fixed "now" for tests; `None` = the real clock.
    pub fixed_now: Option<i64>,
    /// Kimai 2.66's per-record rate visibility (`Options::rates_need_permission`).
    pub rates_need_permission: bool,
    /// State of the administration endpoints (comments, invoices, custom fields, …).
    pub admin: super::admin::store::Extra,
}

/// splitmix64: small, deterministic, good enough for realistic-looking data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn now_real() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Role rank for the hierarchical default permission table of §11.
pub fn rank(role: &str) -> u8 {
    match role {
        "ROLE_SUPER_ADMIN" => 3,
        "ROLE_ADMIN" => 2,
        "ROLE_TEAMLEAD" => 1,
        _ => 0,
    }
}

/// The minimum role holding a permission by default (§11). Only permissions the simulator
/// checks are listed; an unlisted name is a bug in the simulator, so it is denied.
pub fn can(user: &User, perm: &str) -> bool {
    let need = match perm {
        "view_own_timesheet"
        | "create_own_timesheet"
        | "edit_own_timesheet"
        | "delete_own_timesheet"
        | "start_own_timesheet"
        | "stop_own_timesheet"
        | "export_own_timesheet"
        | "create_tag" => 0,
        "view_other_timesheet"
        | "create_other_timesheet"
        | "edit_other_timesheet"
        | "delete_other_timesheet"
        | "start_other_timesheet"
        | "stop_other_timesheet"
        | "view_rate_own_timesheet"
        | "view_rate_other_timesheet"
        | "edit_export_own_timesheet"
        | "edit_export_other_timesheet"
        | "edit_billable_own_timesheet"
        | "edit_billable_other_timesheet"
        | "create_activity"
        | "view_tag"
        | "manage_tag"
        | "delete_tag" => 1,
        "edit_rate_own_timesheet"
        | "edit_rate_other_timesheet"
        | "edit_exported_timesheet"
        | "view_all_data"
        | "view_customer"
        | "view_project"
        | "view_activity"
        | "view_team"
        | "details_customer"
        | "create_customer"
        | "create_project"
        | "edit_customer"
        | "edit_project"
        | "edit_activity" => 2,
        "view_user" | "view_other_profile" => 3,
        _ => return false,
    };
    rank(user.role) >= need
}

pub const TIMESHEET_CONFIG_HARD_LIMIT: usize = 1;

impl State {
    pub fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(now_real)
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Whether `caller` sees the rate fields of a record of `owner` (contract §6.1: always in
    /// Kimai 2.65; in 2.66 only with `view_rate_own_timesheet` / `view_rate_other_timesheet`).
    pub fn rates_visible(&self, caller: &User, owner: u64) -> bool {
        !self.rates_need_permission
            || can(
                caller,
                if owner == caller.id {
                    "view_rate_own_timesheet"
                } else {
                    "view_rate_other_timesheet"
                },
            )
    }
    pub fn customer(&self, id: u64) -> Option<&Customer> {
        self.customers.iter().find(|c| c.id == id)
    }
    pub fn project(&self, id: u64) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }
    pub fn activity(&self, id: u64) -> Option<&Activity> {
        self.activities.iter().find(|a| a.id == id)
    }
    pub fn tag(&self, id: u64) -> Option<&Tag> {
        self.tags.iter().find(|t| t.id == id)
    }
    pub fn timesheet_index(&self, id: u64) -> Option<usize> {
        self.timesheets.binary_search_by_key(&id, |t| t.id).ok()
    }

    /// Teams the user belongs to (as member or lead), in team order.
    pub fn teams_of(&self, user: u64) -> Vec<&Team> {
        self.teams
            .iter()
            .filter(|t| t.members.iter().any(|m| m.0 == user))
            .collect()
    }

    /// Whether `caller` may see `other`'s timesheets (§11 "Team checks"): admins everyone,
    /// teamleads themselves and members of teams they lead, others only themselves.
    pub fn can_access_user(&self, caller: &User, other: u64) -> bool {
        if caller.id == other || can(caller, "view_all_data") {
            return true;
        }
        if !can(caller, "view_other_timesheet") {
            return false;
        }
        self.teams.iter().any(|t| {
            t.members.iter().any(|m| m.0 == caller.id && m.1)
                && t.members.iter().any(|m| m.0 == other)
        })
    }

    /// §7.1: an entity without teams is visible to everybody; with teams only to members of one
    /// of them; admins (`view_all_data`) see everything.
    fn team_visible(&self, caller: &User, assigned: impl Fn(&Team) -> bool) -> bool {
        if can(caller, "view_all_data") {
            return true;
        }
        let mut any = false;
        for t in &self.teams {
            if assigned(t) {
                any = true;
                if t.members.iter().any(|m| m.0 == caller.id) {
                    return true;
                }
            }
        }
        !any
    }

    pub fn customer_accessible(&self, caller: &User, c: u64) -> bool {
        self.team_visible(caller, |t| t.customers.contains(&c))
    }
    pub fn project_accessible(&self, caller: &User, p: &Project) -> bool {
        self.customer_accessible(caller, p.customer)
            && self.team_visible(caller, |t| t.projects.contains(&p.id))
    }
    pub fn activity_accessible(&self, caller: &User, a: &Activity) -> bool {
        let project_ok = match a.project.and_then(|p| self.project(p)) {
            Some(p) => self.project_accessible(caller, p),
            None => true,
        };
        project_ok && self.team_visible(caller, |t| t.activities.contains(&a.id))
    }

    /// Per-record teamlead access to a customer/project for the GET-one voters: the caller leads
    /// a team the entity is assigned to.
    pub fn leads_team_with(&self, caller: &User, assigned: impl Fn(&Team) -> bool) -> bool {
        self.teams
            .iter()
            .any(|t| assigned(t) && t.members.iter().any(|m| m.0 == caller.id && m.1))
    }

    /// §7.4: computed billable flag.
    pub fn computed_billable(&self, project: u64, activity: u64) -> bool {
        let p = self.project(project);
        let c = p.and_then(|p| self.customer(p.customer));
        let a = self.activity(activity);
        p.is_some_and(|p| p.billable)
            && c.is_some_and(|c| c.billable)
            && a.is_some_and(|a| a.billable)
    }

    /// §7.3: fill `rate`, `internal_rate`, and — unless set explicitly — `hourly_rate` /
    /// `fixed_rate` from the best matching configured rate or the user's preference.
    pub fn apply_rates(
        &self,
        ts: &mut Timesheet,
        explicit_fixed: Option<f64>,
        explicit_hourly: Option<f64>,
    ) {
        let customer = self.project(ts.project).map(|p| p.customer);
        let mut best: Option<(u32, &Rate)> = None;
        for r in &self.rates {
            let base = match r.on {
                RateOn::Activity(a) if a == ts.activity => 5,
                RateOn::Project(p) if p == ts.project => 3,
                RateOn::Customer(c) if Some(c) == customer => 1,
                _ => continue,
            };
            let score = match r.user {
                Some(u) if u == ts.user => base + 1,
                Some(_) => continue,
                None => base,
            };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, r));
            }
        }
        let user = self.user(ts.user);
        let pref_hourly = user.map(|u| u.hourly_rate).unwrap_or(0.0);
        let pref_internal = user.and_then(|u| u.internal_rate);
        let (mut fixed, mut hourly, mut internal) = (None, None, None);
        if let Some((_, r)) = best {
            if r.is_fixed {
                fixed = Some(r.rate);
            } else {
                hourly = Some(r.rate);
            }
            internal = r.internal_rate;
        }
        if explicit_fixed.is_some() {
            fixed = explicit_fixed;
        }
        if explicit_hourly.is_some() {
            hourly = explicit_hourly;
            fixed = explicit_fixed;
        }
        let hourly_value = hourly.unwrap_or(pref_hourly);
        ts.fixed_rate = fixed;
        ts.hourly_rate = if fixed.is_some() {
            hourly
        } else {
            Some(hourly_value)
        };
        let internal_hourly = internal.or(pref_internal).unwrap_or(hourly_value);
        if ts.end.is_none() {
            ts.rate = 0.0;
            ts.internal_rate = 0.0;
            return;
        }
        let hours = ts.duration as f64 / 3600.0;
        ts.rate = round4(match fixed {
            Some(f) => f,
            None => hourly_value * hours,
        });
        ts.internal_rate = round4(match fixed {
            Some(f) => internal.unwrap_or(f),
            None => internal_hourly * hours,
        });
    }
}

/// Kimai's `Util::calculateRate` rounds to 4 decimals (`round($hourlyRate * ($seconds / 3600), 4)`).
pub fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn s(v: &str) -> String {
    v.to_string()
}
fn os(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// Username of the demo user: a teamlead who leads "Development" and has own timesheets.
pub const DEMO_USER: &str = "tony_teamlead";
/// Username of the super admin.
pub const ADMIN_USER: &str = "susan_super";

/// Kimai-style token: 25 lowercase hex characters, derived from the seed and the user id.
fn token_for(seed: u64, user: u64) -> String {
    let mut rng = Rng::new(seed ^ user.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut out = String::new();
    while out.len() < 25 {
        out.push_str(&format!("{:016x}", rng.next()));
    }
    out.truncate(25);
    out
}

#[allow(clippy::too_many_arguments)] // a row of seed data reads best as one call
fn user(
    seed: u64,
    id: u64,
    username: &str,
    alias: Option<&str>,
    role: &'static str,
    tz: Tz,
    enabled: bool,
    supervisor: Option<u64>,
    hourly_rate: f64,
) -> User {
    User {
        id,
        username: s(username),
        alias: alias.map(s),
        title: None,
        email: format!("{username}@example.com"),
        account_number: Some(format!("{:04}", 1000 + id)),
        enabled,
        role,
        tz,
        language: if tz == Tz::Berlin { "de" } else { "en" },
        color: None,
        supervisor,
        hourly_rate,
        internal_rate: None,
        token: token_for(seed, id),
    }
}

fn customer(
    id: u64,
    name: &str,
    company: &str,
    country: &'static str,
    currency: &'static str,
    tz: &'static str,
) -> Customer {
    Customer {
        id,
        name: s(name),
        number: format!("{id:04}"),
        comment: None,
        visible: true,
        billable: true,
        company: os(company),
        country,
        currency,
        timezone: tz,
        color: None,
        address_line1: None,
        post_code: None,
        city: None,
        email: None,
        homepage: None,
    }
}

fn project(id: u64, name: &str, customer: u64) -> Project {
    Project {
        id,
        name: s(name),
        number: format!("{id:04}"),
        customer,
        comment: None,
        order_number: None,
        order_date: None,
        start: None,
        end: None,
        visible: true,
        billable: true,
        global_activities: true,
        color: None,
    }
}

fn activity(id: u64, name: &str, project: Option<u64>) -> Activity {
    Activity {
        id,
        name: s(name),
        number: format!("{id:04}"),
        project,
        comment: None,
        visible: true,
        billable: true,
        color: None,
    }
}

const DESCRIPTIONS: &[&str] = &[
    "Sprint planning",
    "Daily stand-up",
    "Implemented login form",
    "Fixed pagination bug",
    "Code review for the API client",
    "Customer call about requirements",
    "Wrote documentation",
    "Refactored invoice export",
    "Deployment to staging",
    "Investigated performance issue",
    "Design review",
    "Updated dependencies",
    "Wireframes for the dashboard",
    "Support ticket triage",
    "Database migration",
    "Workshop with the client",
];

/// Build the deterministic world. `now` anchors every date (project windows, the two years of
/// timesheets, the running record).
pub fn seed(seed: u64, now: i64, workcontract_plugin: bool) -> State {
    use Tz::*;
    let users = vec![
        user(
            seed,
            1,
            ADMIN_USER,
            Some("Susan Super"),
            "ROLE_SUPER_ADMIN",
            Berlin,
            true,
            None,
            0.0,
        ),
        user(
            seed,
            2,
            "anna_admin",
            Some("Anna Admin"),
            "ROLE_ADMIN",
            Berlin,
            true,
            Some(1),
            80.0,
        ),
        user(
            seed,
            3,
            DEMO_USER,
            Some("Tony Teamlead"),
            "ROLE_TEAMLEAD",
            Berlin,
            true,
            Some(2),
            75.0,
        ),
        user(
            seed,
            4,
            "tara_lead",
            Some("Tara Lead"),
            "ROLE_TEAMLEAD",
            NewYork,
            true,
            Some(2),
            70.0,
        ),
        user(
            seed,
            5,
            "john_user",
            Some("John Doe"),
            "ROLE_USER",
            Berlin,
            true,
            Some(3),
            60.0,
        ),
        user(
            seed,
            6,
            "maria_user",
            None,
            "ROLE_USER",
            Berlin,
            true,
            Some(3),
            65.0,
        ),
        user(
            seed,
            7,
            "kai_user",
            Some("Kai"),
            "ROLE_USER",
            Utc,
            true,
            Some(4),
            55.0,
        ),
        user(
            seed,
            8,
            "olga_disabled",
            Some("Olga Former"),
            "ROLE_USER",
            Berlin,
            false,
            Some(3),
            50.0,
        ),
    ];
    let mut users = users;
    users[2].title = os("Lead Developer");
    users[3].color = os("#3F51B5");
    users[4].internal_rate = Some(40.0);

    let mut customers = vec![
        customer(1, "Acme GmbH", "Acme GmbH", "DE", "EUR", "Europe/Berlin"),
        customer(
            2,
            "Globex Corporation",
            "Globex Corp.",
            "US",
            "USD",
            "America/New_York",
        ),
        customer(
            3,
            "Initech Ltd",
            "Initech Ltd",
            "GB",
            "GBP",
            "Europe/London",
        ),
        customer(
            4,
            "Umbrella AG",
            "Umbrella AG",
            "CH",
            "CHF",
            "Europe/Zurich",
        ),
        customer(
            5,
            "Internal",
            "Example Software GmbH",
            "DE",
            "EUR",
            "Europe/Berlin",
        ),
    ];
    customers[0].address_line1 = os("Hauptstraße 1");
    customers[0].post_code = os("10115");
    customers[0].city = os("Berlin");
    customers[0].email = os("office@acme.example");
    customers[1].homepage = os("https://globex.example");
    customers[3].visible = false;
    customers[3].comment = os("Contract ended");
    customers[4].billable = false;
    customers[4].color = os("#2196F3");

    let today = (now + Berlin.offset_at(now)).div_euclid(DAY);
    let mut projects = vec![
        project(1, "Website Relaunch", 1),
        project(2, "Mobile App", 1),
        project(3, "Support 2026", 2),
        project(4, "Brand Redesign", 2),
        project(5, "Data Migration", 3),
        project(6, "Legacy Archive", 3),
        project(7, "Internal Tools", 5),
        project(8, "Consulting", 3),
        project(9, "Old ERP", 4),
    ];
    projects[0].order_number = os("PO-2024-117");
    projects[0].order_date = Some(today - 800);
    projects[1].start = Some(today - 700);
    projects[4].start = Some(today - 400);
    projects[4].end = Some(today - 1); // finished yesterday: gone from the default list (§5.4)
    projects[5].visible = false;
    projects[6].global_activities = false;
    projects[6].billable = false;
    projects[7].comment = os("Hourly consulting, billed monthly");
    projects[3].color = os("#FF5722");

    let mut activities = vec![
        activity(1, "Development", None),
        activity(2, "Meeting", None),
        activity(3, "Design", None),
        activity(4, "Testing", None),
        activity(5, "Support", None),
        activity(6, "Documentation", None),
        activity(7, "Travel", None),
        activity(8, "Fax handling", None),
        activity(9, "Sprint Planning", Some(2)),
        activity(10, "Code Review", Some(7)),
        activity(11, "Administration", Some(7)),
        activity(12, "Migration Scripts", Some(5)),
        activity(13, "Brand Workshop", Some(4)),
    ];
    activities[6].billable = false;
    activities[7].visible = false;
    activities[10].billable = false;

    let tags = vec![
        Tag {
            id: 1,
            name: s("meeting"),
            visible: true,
            color: None,
        },
        Tag {
            id: 2,
            name: s("remote"),
            visible: true,
            color: os("#4CAF50"),
        },
        Tag {
            id: 3,
            name: s("onsite"),
            visible: true,
            color: None,
        },
        Tag {
            id: 4,
            name: s("urgent"),
            visible: true,
            color: os("#f41a00"),
        },
        Tag {
            id: 5,
            name: s("bugfix"),
            visible: true,
            color: None,
        },
        Tag {
            id: 6,
            name: s("legacy"),
            visible: false,
            color: None,
        },
    ];

    let rates = vec![
        Rate {
            on: RateOn::Customer(2),
            user: None,
            rate: 110.0,
            internal_rate: Some(70.0),
            is_fixed: false,
        },
        Rate {
            on: RateOn::Project(4),
            user: None,
            rate: 120.0,
            internal_rate: None,
            is_fixed: false,
        },
        Rate {
            on: RateOn::Project(1),
            user: Some(5),
            rate: 95.0,
            internal_rate: None,
            is_fixed: false,
        },
        Rate {
            on: RateOn::Activity(12),
            user: None,
            rate: 250.0,
            internal_rate: Some(150.0),
            is_fixed: true,
        },
        Rate {
            on: RateOn::Activity(13),
            user: None,
            rate: 135.0,
            internal_rate: None,
            is_fixed: false,
        },
    ];

    let teams = vec![
        Team {
            id: 1,
            name: s("Development"),
            color: None,
            members: vec![(3, true), (5, false), (6, false), (8, false)],
            customers: vec![],
            projects: vec![2, 7],
            activities: vec![],
        },
        Team {
            id: 2,
            name: s("Design"),
            color: os("#FF9800"),
            members: vec![(4, true), (7, false), (5, false)],
            customers: vec![2],
            projects: vec![],
            activities: vec![13],
        },
    ];

    let admin = super::admin::store::Extra::seed(now, rates.len());
    let user_ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let plugin = super::plugin::seed::seed(&user_ids, today);
    let mut state = State {
        plugin,
        api_tokens: Default::default(),
        users,
        teams,
        customers,
        projects,
        activities,
        tags,
        rates,
        timesheets: Vec::new(),
        next_timesheet_id: 1,
        favorites: Vec::new(),
        timesheet_meta_fields: Vec::new(),
        lockdown_before: None,
        workcontract_plugin,
        workcontract_month_locks: true,
        revoked: Vec::new(),
        fixed_now: None,
        rates_need_permission: false,
        admin,
    };
    seed_timesheets(&mut state, seed, now);
    state
}

fn seed_timesheets(state: &mut State, seed: u64, now: i64) {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let mut out: Vec<Timesheet> = Vec::new();
    let workers: Vec<(u64, Tz)> = state
        .users
        .iter()
        .filter(|u| u.id != 1)
        .map(|u| (u.id, u.tz))
        .collect();
    let start_day = (now - 730 * DAY).div_euclid(DAY);
    let end_day = now.div_euclid(DAY);
    for day in start_day..end_day {
        if time::weekday(day) >= 5 {
            continue;
        }
        for &(uid, tz) in &workers {
            let Some(u) = state.user(uid) else { continue };
            // The disabled user left a year ago.
            if !u.enabled && day > end_day - 365 {
                continue;
            }
            if !rng.chance(85) {
                continue;
            }
            let caller = u.clone();
            let mut local = day * DAY + 8 * 3600 + rng.below(5) as i64 * 900;
            let entries = 1 + rng.below(3);
            for _ in 0..entries {
                // Nobody books past 18:30 local time.
                if local.rem_euclid(DAY) > 18 * 3600 + 1800 {
                    break;
                }
                let dur = (2 + rng.below(11) as i64) * 900 + rng.below(10) as i64 * 60;
                let begin = tz.to_utc(local);
                let end = begin + dur;
                if end > now - 3 * 3600 {
                    break;
                }
                let begin_day = (begin + Tz::Berlin.offset_at(begin)).div_euclid(DAY);
                let projects: Vec<u64> = state
                    .projects
                    .iter()
                    .filter(|p| {
                        state.project_accessible(&caller, p)
                            && p.start.is_none_or(|s| s <= begin_day)
                            && p.end.is_none_or(|e| e >= begin_day)
                            && (p.visible || begin_day < end_day - 500)
                    })
                    .map(|p| p.id)
                    .collect();
                if projects.is_empty() {
                    break;
                }
                let pid = projects[rng.below(projects.len() as u64) as usize];
                let Some(p) = state.project(pid) else { break };
                let acts: Vec<u64> = state
                    .activities
                    .iter()
                    .filter(|a| {
                        (a.project == Some(pid) || (a.project.is_none() && p.global_activities))
                            && (a.visible || begin_day < end_day - 500)
                            && state.activity_accessible(&caller, a)
                    })
                    .map(|a| a.id)
                    .collect();
                if acts.is_empty() {
                    break;
                }
                let aid = acts[rng.below(acts.len() as u64) as usize];
                let mut tags = Vec::new();
                if rng.chance(30) {
                    tags.push(1 + rng.below(5));
                    if rng.chance(30) {
                        let t = 1 + rng.below(6);
                        if !tags.contains(&t) {
                            tags.push(t);
                        }
                    }
                }
                let description = if rng.chance(90) {
                    Some(s(
                        DESCRIPTIONS[rng.below(DESCRIPTIONS.len() as u64) as usize]
                    ))
                } else {
                    None
                };
                let mut ts = Timesheet {
                    meta: Vec::new(),
                    id: 0,
                    user: uid,
                    project: pid,
                    activity: aid,
                    begin,
                    end: Some(end),
                    tz,
                    duration: dur,
                    break_secs: 0,
                    description,
                    rate: 0.0,
                    internal_rate: 0.0,
                    fixed_rate: None,
                    hourly_rate: None,
                    exported: begin < now - 60 * DAY && rng.chance(92),
                    billable: state.computed_billable(pid, aid),
                    tags,
                    modified_at: end + 600 + rng.below(3600) as i64,
                };
                state.apply_rates(&mut ts, None, None);
                out.push(ts);
                local += dur + rng.below(4) as i64 * 900;
            }
        }
    }
    // A running record for the demo user, started 1h20m ago, floored to the minute (§7.3).
    let demo = state
        .users
        .iter()
        .find(|u| u.username == DEMO_USER)
        .map(|u| (u.id, u.tz));
    if let Some((uid, tz)) = demo {
        let begin = (now - 80 * 60).div_euclid(60) * 60;
        let mut ts = Timesheet {
            meta: Vec::new(),
            id: 0,
            user: uid,
            project: 2,
            activity: 1,
            begin,
            end: None,
            tz,
            duration: 0,
            break_secs: 0,
            description: os("Working on the MCP integration"),
            rate: 0.0,
            internal_rate: 0.0,
            fixed_rate: None,
            hourly_rate: None,
            exported: false,
            billable: state.computed_billable(2, 1),
            tags: vec![2],
            modified_at: begin,
        };
        state.apply_rates(&mut ts, None, None);
        out.push(ts);
    }
    // Ids follow creation order, i.e. begin order, as in a real instance.
    out.sort_by_key(|t| t.begin);
    for (i, t) in out.iter_mut().enumerate() {
        t.id = i as u64 + 1;
    }
    state.next_timesheet_id = out.len() as u64 + 1;
    state.timesheets = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_786_600_000; // 2026-08-13T05:46:40Z

    #[test]
    fn seed_is_deterministic_and_realistic() {
        let a = seed(42, NOW, true);
        let b = seed(42, NOW, true);
        assert_eq!(a.timesheets.len(), b.timesheets.len());
        assert!(
            (4000..=6000).contains(&a.timesheets.len()),
            "{}",
            a.timesheets.len()
        );
        let tokens: Vec<_> = a.users.iter().map(|u| u.token.clone()).collect();
        assert_eq!(
            tokens,
            b.users.iter().map(|u| u.token.clone()).collect::<Vec<_>>()
        );
        assert!(tokens.iter().all(|t| {
            t.len() == 25
                && t.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }));
        let c = seed(43, NOW, true);
        assert_ne!(a.users[0].token, c.users[0].token);
        let running: Vec<_> = a.timesheets.iter().filter(|t| t.end.is_none()).collect();
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].rate, 0.0);
        assert!(a.timesheets.iter().all(|t| t.begin % 60 == 0));
    }

    #[test]
    fn rates_follow_the_best_match() {
        let st = seed(1, NOW, true);
        // Activity 12 carries a fixed rate of 250.
        let t = st
            .timesheets
            .iter()
            .find(|t| t.activity == 12 && t.end.is_some())
            .expect("seeded");
        assert_eq!(t.fixed_rate, Some(250.0));
        assert_eq!(t.rate, 250.0);
        // Customer 4/project 7 are non-billable: computed billable false.
        assert!(!st.computed_billable(7, 10));
    }
}
