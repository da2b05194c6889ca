//! Names for the ids of plain timesheet rows: one read each of `/projects`, `/activities`,
//! `/users` and `/customers`, remembered per Kimai token for a short time.
//!
//! Statistics and team analyses read every page of `/timesheets` in the plain shape (ids only,
//! about a quarter of the bytes of `full=true`, and far less work for Kimai's database and
//! serializer). The names come from the lists, read in parallel with the first page
//! ([`read_with`]), all with `visible=3` so that hidden and archived entities keep their names:
//! `/projects?ignoreDates=1` (each entry carries its customer's name as `parentTitle`, so
//! customers need no read of their own for names), `/activities`, `/users`, and `/customers` only
//! where the customers' currencies are needed (revenue). What a read gave, or Kimai's 403, is
//! remembered in the client's memo (`kimai::Memo`, per token, [`kimai::MEMO_TTL`]); a record
//! whose id a remembered list lacks makes that list be read again once ([`Names::complete`]).
//!
//! A list Kimai refuses (`GET /users` needs ROLE_SUPER_ADMIN by default) costs only its names:
//! the users it lacks are then named one by one from a one-record expanded page of their own
//! records (the token sees those records, so it may see that user's name), at most
//! [`MAX_USER_PROBES`] of them; whatever stays unnamed is shown by id, and [`Names::note`] says
//! why. Projects and activities a token cannot list (a team lead sees the records of his team's
//! members on projects of other teams) are named from one of their records each, read again in
//! the expanded shape ([`Names::probe_records`], at most [`MAX_RECORD_PROBES`]). Failures other
//! than a refusal are not remembered.

use super::{Context, ToolError, fanout, users};
use crate::kimai::Request;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Users named one by one (one small request each) when the token may not list users.
pub const MAX_USER_PROBES: usize = 20;
/// Projects and activities named from one of their records each, when the lists lack them.
pub const MAX_RECORD_PROBES: usize = 10;

/// One record of an entity that the lists do not name: enough to find the record again in
/// the expanded shape (see [`Names::probe_records`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub record: i64,
    pub user: i64,
    /// The record's `begin` as Kimai sent it.
    pub begin: String,
}

/// What record probes found, remembered per token.
#[derive(Clone, Debug, Default)]
struct Probed {
    projects: HashMap<i64, ProjectName>,
    activities: HashMap<i64, String>,
    customers: HashMap<i64, CustomerName>,
    users: HashMap<i64, String>,
}

/// A project as the names need it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectName {
    pub name: String,
    pub customer: Option<i64>,
    /// The customer's name (`parentTitle`).
    pub customer_name: Option<String>,
}

/// A customer as the revenue needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerName {
    pub name: String,
    pub currency: Option<String>,
}

/// What is remembered of one list.
enum Cached<T> {
    Map(Arc<HashMap<i64, T>>),
    Denied,
}

/// One list as this call has it.
#[derive(Debug, Default)]
pub enum List<T> {
    /// Read by this call (`fresh`) or remembered from an earlier one.
    Read {
        map: Arc<HashMap<i64, T>>,
        fresh: bool,
    },
    /// Kimai refused the list to this token (403).
    Denied,
    /// Another failure, described.
    Failed(String),
    /// Not asked for.
    #[default]
    Skipped,
}

impl<T> List<T> {
    fn get(&self, id: i64) -> Option<&T> {
        match self {
            List::Read { map, .. } => map.get(&id),
            _ => None,
        }
    }
}

/// Which lists a call needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Want {
    pub projects: bool,
    pub activities: bool,
    pub users: bool,
    pub customers: bool,
}

/// The kinds of names, for notes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Project,
    Activity,
    User,
    Customer,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Project => "projects",
            Kind::Activity => "activities",
            Kind::User => "users",
            Kind::Customer => "customers",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::Activity => "activity",
            Kind::User => "user",
            Kind::Customer => "customer",
        }
    }
}

/// The names one call could get.
#[derive(Debug, Default)]
pub struct Names {
    pub projects: List<ProjectName>,
    pub activities: List<String>,
    pub users: List<String>,
    pub customers: List<CustomerName>,
    /// Users named from their own records (see the module header).
    probed: HashMap<i64, String>,
    /// Projects, activities and customers named from one of their records.
    from_records: Probed,
}

#[derive(Deserialize)]
struct ProjectItem {
    id: i64,
    name: Option<String>,
    customer: Option<Value>,
    #[serde(rename = "parentTitle")]
    parent_title: Option<String>,
}

#[derive(Deserialize)]
struct NamedItem {
    id: i64,
    name: Option<String>,
}

#[derive(Deserialize)]
struct UserItem {
    id: i64,
    username: Option<String>,
    alias: Option<String>,
}

#[derive(Deserialize)]
struct CustomerItem {
    id: i64,
    name: Option<String>,
    currency: Option<String>,
}

fn projects_req() -> Request {
    Request::get("/projects")
        .query("visible", 3)
        .query("ignoreDates", 1)
}

fn activities_req() -> Request {
    Request::get("/activities").query("visible", 3)
}

fn users_req() -> Request {
    Request::get("/users").query("visible", 3)
}

fn customers_req() -> Request {
    Request::get("/customers").query("visible", 3)
}

fn decode_projects(items: Vec<ProjectItem>) -> HashMap<i64, ProjectName> {
    items
        .into_iter()
        .map(|p| {
            let customer = match &p.customer {
                Some(Value::Object(o)) => o.get("id").and_then(super::args::as_int),
                Some(v) => super::args::as_int(v),
                None => None,
            };
            (
                p.id,
                ProjectName {
                    name: p.name.unwrap_or_default(),
                    customer,
                    customer_name: p.parent_title,
                },
            )
        })
        .collect()
}

fn decode_activities(items: Vec<NamedItem>) -> HashMap<i64, String> {
    items
        .into_iter()
        .map(|a| (a.id, a.name.unwrap_or_default()))
        .collect()
}

fn decode_users(items: Vec<UserItem>) -> HashMap<i64, String> {
    items
        .into_iter()
        .map(|u| {
            let name = u
                .alias
                .filter(|a| !a.is_empty())
                .or(u.username)
                .unwrap_or_default();
            (u.id, name)
        })
        .collect()
}

fn decode_customers(items: Vec<CustomerItem>) -> HashMap<i64, CustomerName> {
    items
        .into_iter()
        .map(|c| {
            (
                c.id,
                CustomerName {
                    name: c.name.unwrap_or_default(),
                    currency: c.currency.filter(|c| !c.is_empty()),
                },
            )
        })
        .collect()
}

/// Reads one list (or takes it from the memo unless `fresh` is demanded) and decodes its items
/// straight into `I`, then into the map.
fn lookup<I, T>(
    ctx: &Context,
    kind: &'static str,
    req: Request,
    decode: fn(Vec<I>) -> HashMap<i64, T>,
    fresh: bool,
) -> List<T>
where
    I: DeserializeOwned,
    T: Send + Sync + 'static,
{
    if !fresh && let Some(hit) = ctx.remembered::<Cached<T>>(kind) {
        return match &*hit {
            Cached::Map(map) => List::Read {
                map: map.clone(),
                fresh: false,
            },
            Cached::Denied => List::Denied,
        };
    }
    match ctx.call(&req.raw_array()) {
        Ok(resp) => {
            let items: Vec<I> = match resp.raw.as_deref().map(serde_json::from_slice) {
                Some(Ok(items)) => items,
                Some(Err(e)) => {
                    return List::Failed(format!("Kimai sent a list that could not be read: {e}"));
                }
                // Not an array: nothing to name with.
                None => Vec::new(),
            };
            let map = Arc::new(decode(items));
            ctx.remember(kind, Arc::new(Cached::Map(map.clone())));
            List::Read { map, fresh: true }
        }
        Err(ToolError::Kimai(e)) if e.status() == Some(403) => {
            ctx.remember(kind, Arc::new(Cached::<T>::Denied));
            List::Denied
        }
        Err(e) => List::Failed(super::fanout::short_error(&e)),
    }
}

fn projects(ctx: &Context, fresh: bool) -> List<ProjectName> {
    lookup(ctx, "projects", projects_req(), decode_projects, fresh)
}
fn activities(ctx: &Context, fresh: bool) -> List<String> {
    lookup(
        ctx,
        "activities",
        activities_req(),
        decode_activities,
        fresh,
    )
}
fn user_names(ctx: &Context, fresh: bool) -> List<String> {
    lookup(ctx, "users", users_req(), decode_users, fresh)
}
fn customers(ctx: &Context, fresh: bool) -> List<CustomerName> {
    lookup(ctx, "customers", customers_req(), decode_customers, fresh)
}

fn join<T>(h: Option<std::thread::ScopedJoinHandle<'_, List<T>>>) -> List<T> {
    match h {
        None => List::Skipped,
        Some(h) => h
            .join()
            .unwrap_or_else(|_| List::Failed("the lookup failed".into())),
    }
}

/// Runs `read` (the pages) on this thread while the lists in `want` are read on scoped threads
/// (a remembered list costs no request).
pub fn read_with<R>(ctx: &Context, want: Want, read: impl FnOnce() -> R) -> (R, Names) {
    std::thread::scope(|s| {
        let p = want.projects.then(|| s.spawn(|| projects(ctx, false)));
        let a = want.activities.then(|| s.spawn(|| activities(ctx, false)));
        let u = want.users.then(|| s.spawn(|| user_names(ctx, false)));
        let c = want.customers.then(|| s.spawn(|| customers(ctx, false)));
        let r = read();
        let names = Names {
            projects: join(p),
            activities: join(a),
            users: join(u),
            customers: join(c),
            probed: HashMap::new(),
            from_records: Probed::default(),
        };
        (r, names)
    })
}

impl Names {
    /// Names from lists already at hand (no probes yet).
    pub fn from_lists(
        projects: List<ProjectName>,
        activities: List<String>,
        users: List<String>,
        customers: List<CustomerName>,
    ) -> Names {
        Names {
            projects,
            activities,
            users,
            customers,
            ..Names::default()
        }
    }

    pub fn project(&self, id: i64) -> Option<&ProjectName> {
        self.projects
            .get(id)
            .or_else(|| self.from_records.projects.get(&id))
    }

    pub fn activity(&self, id: i64) -> Option<&str> {
        self.activities
            .get(id)
            .or_else(|| self.from_records.activities.get(&id))
            .map(String::as_str)
    }

    /// A user's display name (alias, else username).
    pub fn user(&self, id: i64) -> Option<&str> {
        self.users
            .get(id)
            .or_else(|| self.probed.get(&id))
            .or_else(|| self.from_records.users.get(&id))
            .map(String::as_str)
    }

    pub fn customer(&self, id: i64) -> Option<&CustomerName> {
        self.customers
            .get(id)
            .or_else(|| self.from_records.customers.get(&id))
    }

    /// The customer id of a project, and the customer's name as the project list gives it.
    pub fn customer_of(&self, project: i64) -> Option<(i64, Option<&str>)> {
        let p = self.project(project)?;
        Some((p.customer?, p.customer_name.as_deref()))
    }

    /// The currency a project bills in: its customer's.
    pub fn currency_of(&self, project: i64) -> Option<&str> {
        let (c, _) = self.customer_of(project)?;
        self.customer(c)?.currency.as_deref()
    }

    /// Reads a remembered list again when it lacks an id of the records (a project created
    /// since). Best effort: a failure only leaves ids unnamed.
    pub fn complete(&mut self, ctx: &Context, projects: &[i64], activities: &[i64], users: &[i64]) {
        fn stale<T>(list: &List<T>, ids: &[i64]) -> bool {
            matches!(list, List::Read { fresh: false, map } if ids.iter().any(|i| *i != 0 && !map.contains_key(i)))
        }
        if stale(&self.projects, projects) {
            self.projects = self::projects(ctx, true);
        }
        if stale(&self.activities, activities) {
            self.activities = self::activities(ctx, true);
        }
        if stale(&self.users, users) {
            self.users = user_names(ctx, true);
        }
        let customer_ids: Vec<i64> = projects
            .iter()
            .filter_map(|p| self.customer_of(*p).map(|(c, _)| c))
            .collect();
        if stale(&self.customers, &customer_ids) {
            self.customers = self::customers(ctx, true);
        }
    }

    /// When the token may not list users: names the users of `ids` that no probe named yet from
    /// a one-record expanded page of their own records (see the module header).
    pub fn probe_users(&mut self, ctx: &Context, ids: &[i64]) {
        if !matches!(self.users, List::Denied) {
            return;
        }
        const KIND: &str = "user-probes";
        let known = ctx.remembered::<HashMap<i64, String>>(KIND);
        let mut probed: HashMap<i64, String> = known.as_deref().cloned().unwrap_or_default();
        let mut missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| {
                *i != 0 && !probed.contains_key(i) && !self.from_records.users.contains_key(i)
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing.truncate(MAX_USER_PROBES);
        if !missing.is_empty() {
            let found = fanout::parallel(ctx, &missing, 4, |id| {
                let r = ctx
                    .call(
                        &Request::get("/timesheets")
                            .query("user", id)
                            .query("size", 1)
                            .query("full", "true"),
                    )
                    .ok()?;
                let user = r.body.as_array()?.first()?.get("user")?.clone();
                users::found_from(&user).filter(|f| f.id == *id)
            });
            let mut added = false;
            for f in found.into_iter().flatten().flatten() {
                probed.insert(f.id, f.display);
                added = true;
            }
            if added {
                ctx.remember(KIND, Arc::new(probed.clone()));
            }
        }
        self.probed = probed;
    }

    /// Names projects and activities from one record each: the record is read again in the
    /// expanded shape, as one of its user's records around its begin (a window of three local
    /// days, wide enough for any difference between the record's and the caller's timezone,
    /// since filters are in the caller's time). The token sees the record, so it may see these
    /// names. At most [`MAX_RECORD_PROBES`] reads, four at a time; best effort.
    pub fn probe_records(&mut self, ctx: &Context, samples: &[Sample]) {
        const KIND: &str = "record-probes";
        let mut probed: Probed = ctx
            .remembered::<Probed>(KIND)
            .map(|p| (*p).clone())
            .unwrap_or_default();
        self.from_records = probed.clone();
        let mut todo: Vec<&Sample> = Vec::new();
        for s in samples {
            if !todo.iter().any(|t| t.record == s.record) && todo.len() < MAX_RECORD_PROBES {
                todo.push(s);
            }
        }
        if todo.is_empty() {
            return;
        }
        let found = fanout::parallel(ctx, &todo, 4, |s| {
            let stamp = super::time::parse_stamp(&s.begin)?;
            let day = stamp.local.date;
            let r = ctx
                .call(
                    &Request::get("/timesheets")
                        .query("user", s.user)
                        .query("begin", day.add_days(-1).start())
                        .query("end", day.add_days(1).end())
                        .query("size", 100)
                        .query("full", "true"),
                )
                .ok()?;
            r.body
                .as_array()?
                .iter()
                .find(|t| t.get("id").and_then(super::args::as_int) == Some(s.record))
                .cloned()
        });
        let mut added = false;
        for t in found.into_iter().flatten().flatten() {
            added |= learn(&mut probed, &t);
        }
        if added {
            ctx.remember(KIND, Arc::new(probed.clone()));
        }
        self.from_records = probed;
    }

    /// A note for `unnamed` entities of `kind` shown by id, saying why; `None` when all have
    /// names.
    pub fn note(&self, kind: Kind, unnamed: usize) -> Option<String> {
        if unnamed == 0 {
            return None;
        }
        let state = match kind {
            Kind::Project => state_of(&self.projects),
            Kind::Activity => state_of(&self.activities),
            Kind::User => state_of(&self.users),
            Kind::Customer => state_of(&self.customers),
        };
        let plural = kind.plural();
        let (what, are, they) = if unnamed == 1 {
            (kind.singular(), "is", "it is")
        } else {
            (plural, "are", "they are")
        };
        Some(match state {
            Some(reason) => format!("Note: {unnamed} {what} {are} shown by id: {reason}."),
            None => format!(
                "Note: {unnamed} {what} {are} shown by id: {they} not in the list of {plural} this token can see."
            ),
        })
    }

    /// Fills in names of a plain record (ids only) as an expanded one would carry them, so that
    /// it renders as a `full=true` row does.
    pub fn expand(&self, r: &mut Value) {
        let Some(obj) = r.as_object_mut() else { return };
        let id = |v: Option<&Value>| v.and_then(super::args::as_int);
        if let Some(pid) = id(obj.get("project"))
            && let Some(p) = self.project(pid)
        {
            let mut project = json!({"id": pid, "name": p.name});
            if let (Some(cid), Some(cname)) = (p.customer, p.customer_name.as_deref()) {
                project["customer"] = json!({"id": cid, "name": cname});
            }
            obj.insert("project".into(), project);
        }
        if let Some(aid) = id(obj.get("activity"))
            && let Some(a) = self.activity(aid)
        {
            obj.insert("activity".into(), json!({"id": aid, "name": a}));
        }
        if let Some(uid) = id(obj.get("user"))
            && let Some(u) = self.user(uid)
        {
            obj.insert("user".into(), json!({"id": uid, "alias": u}));
        }
    }
}

/// Takes the names of an expanded record's project (with its customer) and activity.
fn learn(p: &mut Probed, t: &Value) -> bool {
    let int = |v: Option<&Value>| v.and_then(super::args::as_int);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let mut added = false;
    if let Some(project) = t.get("project").filter(|v| v.is_object())
        && let (Some(id), Some(name)) = (int(project.get("id")), text(project.get("name")))
    {
        let customer = project.get("customer").filter(|c| c.is_object());
        let cid = customer.and_then(|c| int(c.get("id")));
        let cname = customer.and_then(|c| text(c.get("name")));
        if let (Some(cid), Some(cname)) = (cid, cname.clone()) {
            p.customers.insert(
                cid,
                CustomerName {
                    name: cname,
                    currency: customer
                        .and_then(|c| text(c.get("currency")))
                        .filter(|c| !c.is_empty()),
                },
            );
        }
        p.projects.insert(
            id,
            ProjectName {
                name,
                customer: cid,
                customer_name: cname,
            },
        );
        added = true;
    }
    if let Some(activity) = t.get("activity").filter(|v| v.is_object())
        && let (Some(id), Some(name)) = (int(activity.get("id")), text(activity.get("name")))
    {
        p.activities.insert(id, name);
        added = true;
    }
    if let Some(f) = t.get("user").and_then(users::found_from) {
        p.users.insert(f.id, f.display);
        added = true;
    }
    added
}

/// Why a list has no entry: `None` when it was read (the entity is just not in it).
fn state_of<T>(l: &List<T>) -> Option<String> {
    match l {
        List::Read { .. } => None,
        List::Denied => Some("this token may not list them (Kimai answered 403)".into()),
        List::Failed(e) => Some(format!(
            "their list could not be read ({})",
            crate::text::safe(e)
        )),
        List::Skipped => Some("their list was not read".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_decode_into_names() {
        let p: Vec<ProjectItem> = serde_json::from_value(json!([
            {"id": 1, "name": "Web", "customer": 7, "parentTitle": "Acme", "teams": [], "metaFields": []},
            {"id": 2, "name": "X", "customer": {"id": 8}, "parentTitle": null}
        ]))
        .unwrap();
        let p = decode_projects(p);
        assert_eq!(
            p[&1],
            ProjectName {
                name: "Web".into(),
                customer: Some(7),
                customer_name: Some("Acme".into())
            }
        );
        assert_eq!(p[&2].customer, Some(8));
        let u: Vec<UserItem> = serde_json::from_value(json!([
            {"id": 1, "username": "anna", "alias": "Anna A"},
            {"id": 2, "username": "bob", "alias": ""},
            {"id": 3, "username": "carl", "alias": null}
        ]))
        .unwrap();
        let u = decode_users(u);
        assert_eq!((&*u[&1], &*u[&2], &*u[&3]), ("Anna A", "bob", "carl"));
    }

    #[test]
    fn notes_say_why_names_are_missing() {
        let mut n = Names {
            users: List::Denied,
            ..Names::default()
        };
        assert_eq!(n.note(Kind::User, 0), None);
        assert_eq!(
            n.note(Kind::User, 2).as_deref(),
            Some(
                "Note: 2 users are shown by id: this token may not list them (Kimai answered 403)."
            )
        );
        n.projects = List::Read {
            map: Arc::new(HashMap::new()),
            fresh: true,
        };
        assert!(
            n.note(Kind::Project, 1)
                .unwrap()
                .contains("not in the list of projects")
        );
    }

    #[test]
    fn plain_rows_are_expanded_with_the_names() {
        let mut projects = HashMap::new();
        projects.insert(
            4,
            ProjectName {
                name: "Web".into(),
                customer: Some(9),
                customer_name: Some("Acme".into()),
            },
        );
        let n = Names {
            projects: List::Read {
                map: Arc::new(projects),
                fresh: true,
            },
            users: List::Denied,
            ..Names::default()
        };
        let mut r = json!({"id": 1, "project": 4, "activity": 5, "user": 6});
        n.expand(&mut r);
        assert_eq!(
            r,
            json!({"id": 1, "project": {"id": 4, "name": "Web", "customer": {"id": 9, "name": "Acme"}}, "activity": 5, "user": 6})
        );
        assert_eq!(n.customer_of(4), Some((9, Some("Acme"))));
        assert_eq!(n.currency_of(4), None);
    }
}
