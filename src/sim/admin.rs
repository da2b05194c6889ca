//! Administration endpoints of the simulated Kimai: customer/project/activity create, update,
//! delete and custom fields; rates; comments; users (create, update, preferences); teams with
//! members and access grants; tags; invoices (list, get, custom fields). Contract §5.3–§5.10,
//! §6, §7.7, §7.9, §11.
//!
//! Owns the state these endpoints add ([`Extra`]: wire fields the entity structs of `data` do not
//! model, custom-field definitions and values, rate ids, comments, invoices, stored preferences)
//! and the overlay that puts those fields back into the JSON shapes of `json`. Reuses the form
//! error shape of `writes` (§2.2). Order of checks as everywhere in the simulator: entity load
//! (404) before the voter (403) before the form (400). Runs on worker threads with the state
//! mutex held by `api::handle`; no I/O under the lock.
//!
//! The simulator speaks Kimai 2.65: `PATCH /api/invoices/{id}` (2.68) and
//! `DELETE /api/invoices/{id}` (2.66) answer 405, `lockedUntil` on projects (2.66) is an extra
//! field, and rate fields are visible to everyone who may read rates.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::data::{self, Activity, Customer, Project, RateOn, State, Tag, Team, User, rank};
use super::json as js;
use super::time::{self, DAY, Tz};
use super::wire::{Answer, Req, Res, bad, forbidden, not_found};
use super::writes::{EXTRA_FIELDS, FormErrors, INVALID_CHOICE, truthy};

const TEAMLEAD: u8 = 1;
const ADMIN: u8 = 2;
const SUPER_ADMIN: u8 = 3;

/// Whether the caller's role holds permissions granted from `min` upwards (§11 table).
fn at_least(caller: &User, min: u8) -> bool {
    rank(caller.role) >= min
}

/// A comment on a customer or project (§5.6).
#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub kind: &'static str,
    pub on: u64,
    pub message: String,
    pub created_by: u64,
    /// Unix seconds; shown in UTC (§4.1).
    pub created_at: i64,
    pub pinned: bool,
}

/// An invoice (§6.7); invoices cannot be created through the API, so they come from the seed.
#[derive(Clone, Debug)]
pub struct Invoice {
    pub id: u64,
    pub number: String,
    pub customer: u64,
    pub user: u64,
    pub created_at: i64,
    pub total: f64,
    pub tax: f64,
    pub vat: f64,
    pub currency: String,
    pub due_days: i64,
    pub status: &'static str,
    pub filename: String,
    pub payment_date: Option<i64>,
    pub comment: Option<String>,
}

/// State of the administration endpoints that the entity structs of `data` do not hold.
#[derive(Debug, Default)]
pub struct Extra {
    /// Wire fields per (entity kind, id) that `data` does not model (phone, vatId, budgets,
    /// invoiceText, systemAccount …); [`overlay`] writes them over the JSON shapes.
    pub fields: HashMap<(&'static str, u64), Map<String, Value>>,
    /// Custom-field definitions (§7.7): (entity type, field name). Core Kimai has none; the
    /// seed defines one per type so that the `/meta` endpoints can succeed.
    pub meta_defs: Vec<(&'static str, &'static str)>,
    /// Custom-field values per (entity kind, id), in the order they were first set.
    pub meta: HashMap<(&'static str, u64), Vec<(String, String)>>,
    /// Rate ids, parallel to `State::rates` (rates are matched by position in `data`).
    pub rate_ids: Vec<u64>,
    pub next_rate_id: u64,
    pub comments: Vec<Comment>,
    pub next_comment_id: u64,
    pub invoices: Vec<Invoice>,
    /// Preferences set through `PATCH /users/{id}/preferences` other than the rates.
    pub prefs: HashMap<u64, Vec<(String, String)>>,
    /// Users' `systemAccount` / `requiresPasswordReset` flags (absent = false).
    pub flags: HashMap<u64, (bool, bool)>,
}

impl Extra {
    /// The seed: custom-field definitions, two comments, four invoices. `rates` is the number
    /// of seeded rates (their ids are 1..=rates, as Kimai would have numbered them).
    pub fn seed(now: i64, rates: usize) -> Extra {
        let day = now.div_euclid(DAY) * DAY;
        let invoice = |id: u64, customer: u64, days_ago: i64, status: &'static str, total: f64| {
            let created_at = day - days_ago * DAY + 10 * 3600;
            Invoice {
                id,
                number: format!("2026-{id:03}"),
                customer,
                user: 2,
                created_at,
                total,
                tax: (total * 0.19 / 1.19 * 100.0).round() / 100.0,
                vat: 19.0,
                currency: if customer == 2 { "USD" } else { "EUR" }.to_string(),
                due_days: 30,
                status,
                filename: format!("invoice-2026-{id:03}.pdf"),
                payment_date: (status == "paid").then_some(created_at + 20 * DAY),
                comment: None,
            }
        };
        Extra {
            meta_defs: vec![
                ("customer", "crm_id"),
                ("project", "cost_center"),
                ("activity", "category"),
                ("invoice", "po_reference"),
            ],
            rate_ids: (1..=rates as u64).collect(),
            next_rate_id: rates as u64 + 1,
            comments: vec![
                Comment {
                    id: 1,
                    kind: "project",
                    on: 1,
                    message: "Kick-off went well; next review in two weeks.".into(),
                    created_by: 2,
                    created_at: day - 30 * DAY + 9 * 3600,
                    pinned: false,
                },
                Comment {
                    id: 2,
                    kind: "project",
                    on: 1,
                    message: "Budget **approved** by the customer.".into(),
                    created_by: 1,
                    created_at: day - 10 * DAY + 14 * 3600,
                    pinned: true,
                },
            ],
            next_comment_id: 3,
            invoices: vec![
                invoice(1, 1, 90, "paid", 5950.0),
                invoice(2, 2, 40, "pending", 3200.0),
                invoice(3, 1, 10, "new", 1190.0),
                invoice(4, 3, 5, "canceled", 800.0),
            ],
            ..Extra::default()
        }
    }
}

/// Writes the stored extra fields and custom-field values of an entity over its JSON shape.
/// Only keys the shape already has are replaced, so list shapes stay without budget fields
/// (Kimai ≤ 2.65 shows them only on the entity, §6.5).
pub fn overlay(st: &State, kind: &'static str, id: u64, v: &mut Value) {
    let Some(obj) = v.as_object_mut() else { return };
    if let Some(fields) = st.admin.fields.get(&(kind, id)) {
        for (k, val) in fields {
            if let Some(slot) = obj.get_mut(k) {
                *slot = val.clone();
            }
        }
    }
    if let Some(meta) = st.admin.meta.get(&(kind, id))
        && obj.contains_key("metaFields")
    {
        obj.insert(
            "metaFields".into(),
            meta.iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect(),
        );
    }
    if kind == "user" {
        let (system, _) = st.admin.flags.get(&id).copied().unwrap_or_default();
        obj.insert("systemAccount".into(), json!(system));
        if let (Some(Value::Array(list)), Some(prefs)) =
            (obj.get_mut("preferences"), st.admin.prefs.get(&id))
        {
            for (n, v) in prefs {
                list.push(json!({"name": n, "value": v}));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Body and field helpers

/// The JSON body as an object (empty body = no fields); anything else → 400.
fn body_object(req: &Req) -> Result<Map<String, Value>, Answer> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(bad()),
    }
}

/// A scalar as the form sees it (§0: `true` → "1", `false`/`null` → empty).
fn scalar(v: &Value) -> Result<Option<String>, ()> {
    match v {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some("1".into())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(()),
    }
}

/// One form submission: the caller's field set, the body, and the errors collected.
struct Form {
    body: Map<String, Value>,
    errs: FormErrors,
}

impl Form {
    /// Refuses fields outside `allowed` with the global "extra fields" error (§2.4).
    fn new(req: &Req, allowed: &[&'static str]) -> Result<Form, Answer> {
        let body = body_object(req)?;
        let mut errs = FormErrors::new(allowed);
        if body.keys().any(|k| !allowed.contains(&k.as_str())) {
            errs.global.push(EXTRA_FIELDS.into());
            return Err(errs.reply());
        }
        Ok(Form { body, errs })
    }
    fn has(&self, k: &str) -> bool {
        self.body.contains_key(k)
    }
    /// `Some(value)` when the field was sent (value `None` = sent empty).
    fn text(&mut self, k: &'static str) -> Option<Option<String>> {
        let v = self.body.get(k)?;
        match scalar(v) {
            Ok(s) => Some(s),
            Err(()) => {
                self.errs.field(k, "This value is not valid.");
                None
            }
        }
    }
    fn flag(&mut self, k: &'static str) -> Option<bool> {
        self.text(k).map(|v| truthy(&v))
    }
    fn err(&mut self, k: &str, msg: &str) {
        self.errs.field(k, msg);
    }
    fn finish(self) -> Result<(), Answer> {
        if self.errs.is_empty() {
            Ok(())
        } else {
            Err(self.errs.reply())
        }
    }
}

/// Name rules of the customer/project/team/tag forms: not blank, length, no `< > " =`.
fn check_name(f: &mut Form, field: &'static str, value: &Option<String>, max: usize) {
    match value {
        None => f.err(field, "This value should not be blank."),
        Some(v) => {
            let n = v.chars().count();
            if n < 2 {
                f.err(
                    field,
                    "This value is too short. It should have 2 characters or more.",
                );
            } else if n > max {
                f.err(
                    field,
                    &format!("This value is too long. It should have {max} characters or less."),
                );
            }
            if v.contains(['<', '>', '"', '=']) {
                f.err(field, "These characters are not allowed: < > \" =");
            }
        }
    }
}

/// Kimai's duration input (§4.2): `h:mm[:ss]`, decimal hours (`1.5`, `1,5`; a bare number is
/// hours), or natural `2h30m15s`. Returns seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Some(0);
    }
    if t.contains(':') {
        let p: Vec<&str> = t.split(':').collect();
        let n = |x: &str| x.parse::<i64>().ok().filter(|v| *v >= 0);
        return match p.as_slice() {
            [h, m] => Some(n(h)? * 3600 + n(m)? * 60),
            [h, m, s] => Some(n(h)? * 3600 + n(m)? * 60 + n(s)?),
            _ => None,
        };
    }
    if let Ok(h) = t.replace(',', ".").parse::<f64>() {
        return h.is_finite().then(|| (h * 3600.0).round() as i64);
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
        } else {
            let v: f64 = num.parse().ok()?;
            total += v * match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            };
            num.clear();
        }
    }
    num.is_empty().then_some(total.round() as i64)
}

/// A value that lives for the rest of the simulator's run: the entity structs of `data` keep
/// country, currency, timezone and language as `&'static str` (seeded constants). Leaking a few
/// bytes per create/update is fine for a test server.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn set_extra(st: &mut State, kind: &'static str, id: u64, key: &str, v: Value) {
    st.admin
        .fields
        .entry((kind, id))
        .or_default()
        .insert(key.to_string(), v);
}

/// Budget fields (`budget`, `timeBudget`, `budgetType`) exist on the form only with the budget
/// and time permissions (ADMIN+ by default, §11). Unsure: teamleads hold `budget_teamlead_*`
/// for entities of teams they lead; the simulator leaves them out.
fn budget_fields(caller: &User) -> &'static [&'static str] {
    if at_least(caller, ADMIN) {
        &["budget", "timeBudget", "budgetType"]
    } else {
        &[]
    }
}

/// Reads the budget fields into (key, value) pairs to store, recording form errors.
fn read_budgets(f: &mut Form) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if let Some(b) = f.text("budget") {
        match b.map(|s| s.replace(',', ".").parse::<f64>()) {
            None => out.push(("budget", json!(0.0))),
            Some(Ok(x)) => out.push(("budget", json!(x))),
            Some(Err(_)) => f.err("budget", "Please enter a number."),
        }
    }
    if let Some(t) = f.text("timeBudget") {
        match t.as_deref().map(parse_duration) {
            None => out.push(("timeBudget", json!(0))),
            Some(Some(secs)) => out.push(("timeBudget", json!(secs))),
            Some(None) => f.err("timeBudget", "This value is not valid."),
        }
    }
    if let Some(t) = f.text("budgetType") {
        match t.as_deref() {
            None => out.push(("budgetType", Value::Null)),
            Some("month") => out.push(("budgetType", json!("month"))),
            Some(_) => f.err("budgetType", "The selected choice is invalid."),
        }
    }
    out
}

/// `teams` (POST only): team ids; unknown ids are a field error.
fn read_teams(st: &State, f: &mut Form) -> Vec<u64> {
    let Some(v) = f.body.get("teams").cloned() else {
        return Vec::new();
    };
    let ids: Option<Vec<u64>> = match &v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
            .collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    };
    match ids {
        Some(ids) if ids.iter().all(|id| st.teams.iter().any(|t| t.id == *id)) => ids,
        _ => {
            f.err("teams", INVALID_CHOICE);
            Vec::new()
        }
    }
}

/// Optional string fields stored as extra wire fields (`None` stores `null`).
fn read_extra_texts(f: &mut Form, keys: &[&'static str]) -> Vec<(&'static str, Value)> {
    keys.iter()
        .filter_map(|k| f.text(k).map(|v| (*k, json!(v))))
        .collect()
}

fn read_color(f: &mut Form) -> Option<Option<String>> {
    let c = f.text("color")?;
    if let Some(s) = &c {
        let ok =
            s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            f.err("color", "This value is not a valid color.");
            return None;
        }
    }
    Some(c)
}

fn next_id<T>(items: &[T], id: impl Fn(&T) -> u64) -> u64 {
    items.iter().map(id).max().unwrap_or(0) + 1
}

// ---------------------------------------------------------------------------------------------
// Customers, projects, activities: create, update, delete

const CUSTOMER_TEXTS: &[&str] = &[
    "vatId",
    "contact",
    "addressLine2",
    "addressLine3",
    "phone",
    "fax",
    "mobile",
    "invoiceText",
    "invoiceTemplate",
    "invoiceEmail",
    "buyerReference",
    "language",
];

fn customer_form(caller: &User, post: bool) -> Vec<&'static str> {
    let mut f = vec![
        "name",
        "number",
        "comment",
        "company",
        "vatId",
        "contact",
        "addressLine1",
        "addressLine2",
        "addressLine3",
        "postCode",
        "city",
        "country",
        "language",
        "currency",
        "phone",
        "fax",
        "mobile",
        "email",
        "homepage",
        "timezone",
        "invoiceText",
        "invoiceTemplate",
        "invoiceEmail",
        "buyerReference",
    ];
    if post {
        f.push("teams");
    }
    f.extend(["color", "visible", "billable"]);
    f.extend(budget_fields(caller));
    // The legacy free-text `address` is only on the form when the customer already has one;
    // the simulator's customers never do, so it is always an extra field (§5.3).
    f
}

fn project_form(caller: &User, post: bool) -> Vec<&'static str> {
    let mut f = vec![
        "name",
        "customer",
        "number",
        "comment",
        "invoiceText",
        "orderNumber",
        "orderDate",
        "start",
        "end",
        "globalActivities",
    ];
    if post {
        f.push("teams");
    }
    f.extend(["color", "visible", "billable"]);
    f.extend(budget_fields(caller));
    f
}

fn activity_form(caller: &User, post: bool, has_project: bool) -> Vec<&'static str> {
    let mut f = vec!["name", "number", "comment", "invoiceText"];
    // Unsure: Kimai's ActivityEditForm leaves `project` out when editing a global activity
    // (a global activity cannot be moved into a project); on create it is always there.
    if post || has_project {
        f.push("project");
    }
    if post {
        f.push("teams");
    }
    f.extend(["color", "visible", "billable"]);
    f.extend(budget_fields(caller));
    f
}

fn may_create(caller: &User, kind: &str) -> bool {
    match kind {
        // create_activity: TEAMLEAD+; create_customer / create_project: ADMIN+.
        "activity" => at_least(caller, TEAMLEAD),
        _ => at_least(caller, ADMIN),
    }
}

/// Voter `edit` (§11): ADMIN+, or for an activity a teamlead leading one of its teams.
fn may_edit(st: &State, caller: &User, kind: &str, id: u64) -> bool {
    at_least(caller, ADMIN)
        || (kind == "activity"
            && at_least(caller, TEAMLEAD)
            && st.leads_team_with(caller, |t| t.activities.contains(&id)))
}

fn exists(st: &State, kind: &str, id: u64) -> bool {
    match kind {
        "customer" => st.customer(id).is_some(),
        "project" => st.project(id).is_some(),
        _ => st.activity(id).is_some(),
    }
}

pub fn entity_json(st: &State, kind: &'static str, id: u64) -> Value {
    match kind {
        "customer" => st
            .customer(id)
            .map(|c| js::customer_entity(st, c))
            .unwrap_or(Value::Null),
        "project" => st
            .project(id)
            .map(|p| js::project_entity(st, p))
            .unwrap_or(Value::Null),
        _ => st
            .activity(id)
            .map(|a| js::activity_entity(st, a))
            .unwrap_or(Value::Null),
    }
}

pub fn create(st: &mut State, req: &Req, caller: &User, kind: &'static str) -> Res {
    if !may_create(caller, kind) {
        return Err(forbidden());
    }
    let allowed = match kind {
        "customer" => customer_form(caller, true),
        "project" => project_form(caller, true),
        _ => activity_form(caller, true, true),
    };
    let f = Form::new(req, &allowed)?;
    save(st, caller, kind, None, f)
}

pub fn update(st: &mut State, req: &Req, caller: &User, kind: &'static str, id: u64) -> Res {
    if !exists(st, kind, id) {
        return Err(not_found());
    }
    if !may_edit(st, caller, kind, id) {
        return Err(forbidden());
    }
    let allowed = match kind {
        "customer" => customer_form(caller, false),
        "project" => project_form(caller, false),
        _ => activity_form(
            caller,
            false,
            st.activity(id).is_some_and(|a| a.project.is_some()),
        ),
    };
    let f = Form::new(req, &allowed)?;
    save(st, caller, kind, Some(id), f)
}

/// Project body dates (§4.2, kimai/kimai#4132): POST expects `YYYY-MM-DD`, PATCH expects
/// `YYYY-MM-DDTHH:MM:SS`; the simulator reproduces the mismatch strictly. Returns day numbers.
fn project_date(f: &mut Form, k: &'static str, post: bool) -> Option<Option<i64>> {
    let v = f.text(k)?;
    let Some(s) = v else { return Some(None) };
    let day = if post {
        time::parse_date(&s)
    } else {
        time::parse_local_strict(&s).map(|l| l.div_euclid(DAY))
    };
    match day {
        Some(d) => Some(Some(d)),
        None => {
            f.err(k, "Please enter a valid date.");
            None
        }
    }
}

fn save(st: &mut State, caller: &User, kind: &'static str, id: Option<u64>, mut f: Form) -> Res {
    let post = id.is_none();
    let teams = if post {
        read_teams(st, &mut f)
    } else {
        Vec::new()
    };
    let budgets = read_budgets(&mut f);
    let color = read_color(&mut f);
    let visible = f.flag("visible");
    let billable = f.flag("billable");
    let name = f.text("name");
    if post || name.is_some() {
        let max = 150;
        check_name(&mut f, "name", &name.clone().flatten(), max);
    }
    let number = f.text("number");
    let comment = f.text("comment");
    let mut extras: Vec<(&'static str, Value)> = Vec::new();
    let new_id = match kind {
        "customer" => {
            let mut c = match id {
                Some(id) => st.customer(id).cloned().ok_or_else(not_found)?,
                None => Customer {
                    id: next_id(&st.customers, |c| c.id),
                    name: String::new(),
                    number: String::new(),
                    comment: None,
                    visible: true,
                    billable: true,
                    company: None,
                    country: "DE",
                    currency: "EUR",
                    timezone: "Europe/Berlin",
                    color: None,
                    address_line1: None,
                    post_code: None,
                    city: None,
                    email: None,
                    homepage: None,
                },
            };
            if let Some(Some(cc)) = f.text("country") {
                if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) {
                    c.country = leak(cc);
                } else {
                    f.err("country", "Please select a valid country.");
                }
            }
            if let Some(Some(cur)) = f.text("currency") {
                if cur.len() == 3 && cur.bytes().all(|b| b.is_ascii_uppercase()) {
                    c.currency = leak(cur);
                } else {
                    f.err("currency", "Please select a valid currency.");
                }
            }
            if let Some(Some(tz)) = f.text("timezone") {
                // Unsure: Kimai accepts every IANA name; "Area/City" or UTC is accepted here.
                if tz == "UTC" || (tz.contains('/') && !tz.contains(' ')) {
                    c.timezone = leak(tz);
                } else {
                    f.err("timezone", "Please select a valid timezone.");
                }
            }
            if let Some(e) = f.text("email") {
                if e.as_deref().is_some_and(|e| !e.contains('@')) {
                    f.err("email", "This value is not a valid email address.");
                }
                c.email = e;
            }
            for (k, slot) in [
                ("company", &mut c.company),
                ("addressLine1", &mut c.address_line1),
                ("postCode", &mut c.post_code),
                ("city", &mut c.city),
                ("homepage", &mut c.homepage),
            ] {
                if let Some(v) = f.text(k) {
                    *slot = v;
                }
            }
            extras.extend(read_extra_texts(&mut f, CUSTOMER_TEXTS));
            if let Some(n) = name.clone().flatten() {
                c.name = n;
            }
            if let Some(n) = number {
                c.number = n.unwrap_or_default();
            }
            if c.number.is_empty() {
                c.number = format!("{:04}", c.id);
            }
            if let Some(cm) = comment {
                c.comment = cm;
            }
            if let Some(col) = color {
                c.color = col;
            }
            if let Some(v) = visible {
                c.visible = v;
            }
            if let Some(b) = billable {
                c.billable = b;
            }
            f.finish()?;
            let cid = c.id;
            match st.customers.iter_mut().find(|x| x.id == cid) {
                Some(slot) => *slot = c,
                None => st.customers.push(c),
            }
            cid
        }
        "project" => {
            let mut p = match id {
                Some(id) => st.project(id).cloned().ok_or_else(not_found)?,
                None => Project {
                    id: next_id(&st.projects, |p| p.id),
                    name: String::new(),
                    number: String::new(),
                    customer: 0,
                    comment: None,
                    order_number: None,
                    order_date: None,
                    start: None,
                    end: None,
                    visible: true,
                    billable: true,
                    global_activities: true,
                    color: None,
                },
            };
            match f.text("customer") {
                Some(Some(c)) => match c.parse::<u64>().ok().and_then(|c| st.customer(c)) {
                    Some(cu) if st.customer_accessible(caller, cu.id) => p.customer = cu.id,
                    _ => f.err("customer", INVALID_CHOICE),
                },
                Some(None) => f.err("customer", "This value should not be blank."),
                None if post => f.err("customer", "This value should not be blank."),
                None => {}
            }
            for (k, slot) in [("orderDate", 0usize), ("start", 1), ("end", 2)] {
                if let Some(d) = project_date(&mut f, k, post) {
                    match slot {
                        0 => p.order_date = d,
                        1 => p.start = d,
                        _ => p.end = d,
                    }
                }
            }
            if let Some(o) = f.text("orderNumber") {
                p.order_number = o;
            }
            if let Some(g) = f.flag("globalActivities") {
                p.global_activities = g;
            }
            extras.extend(read_extra_texts(&mut f, &["invoiceText"]));
            if let (Some(s), Some(e)) = (p.start, p.end)
                && e < s
            {
                f.errs
                    .global
                    .push("The end date must not be earlier than the start date.".into());
            }
            if let Some(n) = name.clone().flatten() {
                p.name = n;
            }
            if let Some(n) = number {
                p.number = n.unwrap_or_default();
            }
            if p.number.is_empty() {
                p.number = format!("{:04}", p.id);
            }
            if let Some(cm) = comment {
                p.comment = cm;
            }
            if let Some(col) = color {
                p.color = col;
            }
            if let Some(v) = visible {
                p.visible = v;
            }
            if let Some(b) = billable {
                p.billable = b;
            }
            f.finish()?;
            let pid = p.id;
            match st.projects.iter_mut().find(|x| x.id == pid) {
                Some(slot) => *slot = p,
                None => st.projects.push(p),
            }
            pid
        }
        _ => {
            let mut a = match id {
                Some(id) => st.activity(id).cloned().ok_or_else(not_found)?,
                None => Activity {
                    id: next_id(&st.activities, |a| a.id),
                    name: String::new(),
                    number: String::new(),
                    project: None,
                    comment: None,
                    visible: true,
                    billable: true,
                    color: None,
                },
            };
            match f.text("project") {
                Some(Some(p)) => match p.parse::<u64>().ok().and_then(|p| st.project(p)) {
                    Some(pr) if st.project_accessible(caller, pr) => a.project = Some(pr.id),
                    _ => f.err("project", INVALID_CHOICE),
                },
                Some(None) if post => a.project = None,
                Some(None) => f.err("project", "This value should not be blank."),
                None => {}
            }
            extras.extend(read_extra_texts(&mut f, &["invoiceText"]));
            if let Some(n) = name.clone().flatten() {
                a.name = n;
            }
            if let Some(n) = number {
                a.number = n.unwrap_or_default();
            }
            if a.number.is_empty() {
                a.number = format!("{:04}", a.id);
            }
            if let Some(cm) = comment {
                a.comment = cm;
            }
            if let Some(col) = color {
                a.color = col;
            }
            if let Some(v) = visible {
                a.visible = v;
            }
            if let Some(b) = billable {
                a.billable = b;
            }
            f.finish()?;
            let aid = a.id;
            match st.activities.iter_mut().find(|x| x.id == aid) {
                Some(slot) => *slot = a,
                None => st.activities.push(a),
            }
            aid
        }
    };
    for (k, v) in extras.into_iter().chain(budgets) {
        set_extra(st, kind, new_id, k, v);
    }
    for team in teams {
        if let Some(t) = st.teams.iter_mut().find(|t| t.id == team) {
            let list = match kind {
                "customer" => &mut t.customers,
                "project" => &mut t.projects,
                _ => &mut t.activities,
            };
            if !list.contains(&new_id) {
                list.push(new_id);
            }
        }
    }
    Ok(Answer::ok(entity_json(st, kind, new_id)))
}

/// DELETE a customer (with its projects, activities and timesheets), a project (with its
/// activities and timesheets) or an activity (with its timesheets), §5.3–§5.5. Voter `delete`
/// is ADMIN+ for all three (`delete_activity` too, §11).
pub fn delete(st: &mut State, caller: &User, kind: &'static str, id: u64) -> Res {
    if !exists(st, kind, id) {
        return Err(not_found());
    }
    if !at_least(caller, ADMIN) {
        return Err(forbidden());
    }
    let (customers, projects): (Vec<u64>, Vec<u64>) = match kind {
        "customer" => (
            vec![id],
            st.projects
                .iter()
                .filter(|p| p.customer == id)
                .map(|p| p.id)
                .collect(),
        ),
        "project" => (vec![], vec![id]),
        _ => (vec![], vec![]),
    };
    let activities: Vec<u64> = if kind == "activity" {
        vec![id]
    } else {
        st.activities
            .iter()
            .filter(|a| a.project.is_some_and(|p| projects.contains(&p)))
            .map(|a| a.id)
            .collect()
    };
    st.timesheets
        .retain(|t| !projects.contains(&t.project) && !activities.contains(&t.activity));
    st.activities.retain(|a| !activities.contains(&a.id));
    st.projects.retain(|p| !projects.contains(&p.id));
    st.customers.retain(|c| !customers.contains(&c.id));
    for t in &mut st.teams {
        t.customers.retain(|c| !customers.contains(c));
        t.projects.retain(|p| !projects.contains(p));
        t.activities.retain(|a| !activities.contains(a));
    }
    let gone = |on: &RateOn| match on {
        RateOn::Customer(c) => customers.contains(c),
        RateOn::Project(p) => projects.contains(p),
        RateOn::Activity(a) => activities.contains(a),
    };
    let mut i = 0;
    while i < st.rates.len() {
        if gone(&st.rates[i].on) {
            st.rates.remove(i);
            st.admin.rate_ids.remove(i);
        } else {
            i += 1;
        }
    }
    st.admin.comments.retain(|c| match c.kind {
        "customer" => !customers.contains(&c.on),
        _ => !projects.contains(&c.on),
    });
    Ok(Answer::empty(204))
}

// ---------------------------------------------------------------------------------------------
// Custom fields (§7.7)

/// `PATCH /{customers,projects,activities}/{id}/meta` with `{name, value}` (existence and the
/// `edit` voter already checked by the caller). Missing name or value → 400; a name without a
/// definition → 404.
pub fn meta(st: &mut State, req: &Req, kind: &'static str, id: u64) -> Res {
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad())?;
    let name = body.get("name").and_then(|v| scalar(v).ok().flatten());
    let value = match body.get("value") {
        None | Some(Value::Null) => return Err(bad()),
        Some(v) => scalar(v).map_err(|_| bad())?.unwrap_or_default(),
    };
    let Some(name) = name else { return Err(bad()) };
    set_meta(st, kind, id, &name, value)?;
    Ok(Answer::ok(entity_json(st, kind, id)))
}

fn set_meta(
    st: &mut State,
    kind: &'static str,
    id: u64,
    name: &str,
    value: String,
) -> Result<(), Answer> {
    if !st
        .admin
        .meta_defs
        .iter()
        .any(|(k, n)| *k == kind && *n == name)
    {
        return Err(not_found());
    }
    let list = st.admin.meta.entry((kind, id)).or_default();
    match list.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => list.push((name.to_string(), value)),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rates (§5.6)

fn rate_on(kind: &str, id: u64) -> RateOn {
    match kind {
        "customer" => RateOn::Customer(id),
        "project" => RateOn::Project(id),
        _ => RateOn::Activity(id),
    }
}

fn rate_json(st: &State, i: usize) -> Value {
    let r = &st.rates[i];
    json!({
        "id": st.admin.rate_ids.get(i).copied().unwrap_or(0),
        "user": r.user.and_then(|u| st.user(u)).map(js::user),
        "rate": r.rate,
        "internalRate": r.internal_rate,
        "isFixed": r.is_fixed,
    })
}

/// GET and POST `…/rates` (existence and the `edit` voter already checked by the caller).
pub fn rates(st: &mut State, req: &Req, kind: &'static str, id: u64) -> Res {
    let on = rate_on(kind, id);
    if req.method == "GET" {
        let list: Vec<Value> = (0..st.rates.len())
            .filter(|i| st.rates[*i].on == on)
            .map(|i| rate_json(st, i))
            .collect();
        return Ok(Answer::ok(Value::Array(list)));
    }
    let mut f = Form::new(req, &["user", "rate", "internalRate", "isFixed"])?;
    let number = |f: &mut Form, k: &'static str| -> Option<Option<f64>> {
        let v = f.text(k)?;
        match v.map(|s| s.replace(',', ".").parse::<f64>()) {
            None => Some(None),
            Some(Ok(x)) => Some(Some(x)),
            Some(Err(_)) => {
                f.err(k, "Please enter a number.");
                None
            }
        }
    };
    let rate = match number(&mut f, "rate") {
        Some(Some(r)) if r >= 0.0 => Some(r),
        Some(Some(_)) => {
            f.err("rate", "This value should be greater than or equal to 0.");
            None
        }
        Some(None) => {
            f.err("rate", "This value should not be blank.");
            None
        }
        // Not sent, or sent and not a number (that error is already recorded).
        None => {
            if !f.has("rate") {
                f.err("rate", "This value should not be blank.");
            }
            None
        }
    };
    let internal = number(&mut f, "internalRate").flatten();
    let is_fixed = f.flag("isFixed").unwrap_or(false);
    let user = match f.text("user") {
        Some(Some(u)) => match u.parse::<u64>().ok().and_then(|u| st.user(u)) {
            Some(u) => Some(u.id),
            None => {
                f.err("user", INVALID_CHOICE);
                None
            }
        },
        _ => None,
    };
    f.finish()?;
    let Some(rate) = rate else { return Err(bad()) };
    st.rates.push(data::Rate {
        on,
        user,
        rate,
        internal_rate: internal,
        is_fixed,
    });
    st.admin.rate_ids.push(st.admin.next_rate_id);
    st.admin.next_rate_id += 1;
    Ok(Answer::ok(rate_json(st, st.rates.len() - 1)))
}

/// DELETE `…/rates/{rateId}`: 404 for an unknown entity or a rate of another entity.
pub fn delete_rate(st: &mut State, caller: &User, kind: &'static str, id: u64, rate: u64) -> Res {
    if !exists(st, kind, id) {
        return Err(not_found());
    }
    if !may_edit(st, caller, kind, id) {
        return Err(forbidden());
    }
    let on = rate_on(kind, id);
    let i = (0..st.rates.len())
        .find(|i| st.admin.rate_ids.get(*i) == Some(&rate) && st.rates[*i].on == on)
        .ok_or_else(not_found)?;
    st.rates.remove(i);
    st.admin.rate_ids.remove(i);
    Ok(Answer::empty(204))
}

// ---------------------------------------------------------------------------------------------
// Comments (§5.3, §5.6; Kimai 2.57+)

/// Voters `view` + `comments` (ADMIN+, or a teamlead leading a team the entity is assigned to,
/// via `comments_teamlead_*`); `edit` (pin, delete) is ADMIN+.
fn may_comment(st: &State, caller: &User, kind: &str, id: u64) -> bool {
    at_least(caller, ADMIN)
        || (at_least(caller, TEAMLEAD)
            && st.leads_team_with(caller, |t| match kind {
                "customer" => t.customers.contains(&id),
                _ => {
                    t.projects.contains(&id)
                        || st
                            .project(id)
                            .is_some_and(|p| t.customers.contains(&p.customer))
                }
            }))
}

fn comment_json(st: &State, c: &Comment) -> Value {
    json!({
        "id": c.id,
        "message": c.message,
        "createdBy": st.user(c.created_by).map(js::user),
        "createdAt": time::format_datetime(c.created_at, Tz::Utc),
        "pinned": c.pinned,
    })
}

pub fn comments(
    st: &mut State,
    req: &Req,
    caller: &User,
    kind: &'static str,
    id: u64,
    comment: Option<u64>,
    pin: bool,
) -> Res {
    if !exists(st, kind, id) {
        return Err(not_found());
    }
    if !may_comment(st, caller, kind, id) {
        return Err(forbidden());
    }
    let Some(cid) = comment else {
        if req.method == "GET" {
            let mut list: Vec<&Comment> = st
                .admin
                .comments
                .iter()
                .filter(|c| c.kind == kind && c.on == id)
                .collect();
            // Pinned first, then newest first (§7.11).
            list.sort_by(|a, b| {
                b.pinned
                    .cmp(&a.pinned)
                    .then(b.created_at.cmp(&a.created_at))
                    .then(b.id.cmp(&a.id))
            });
            return Ok(Answer::ok(Value::Array(
                list.iter().map(|c| comment_json(st, c)).collect(),
            )));
        }
        let mut f = Form::new(req, &["message", "pinned"])?;
        let message = f.text("message").flatten();
        if message.is_none() {
            f.err("message", "This value should not be blank.");
        }
        let pinned = f.flag("pinned").unwrap_or(false);
        f.finish()?;
        let c = Comment {
            id: st.admin.next_comment_id,
            kind,
            on: id,
            message: message.unwrap_or_default(),
            created_by: caller.id,
            created_at: st.now(),
            pinned,
        };
        st.admin.next_comment_id += 1;
        let out = comment_json(st, &c);
        st.admin.comments.push(c);
        return Ok(Answer::ok(out));
    };
    let i = st
        .admin
        .comments
        .iter()
        .position(|c| c.id == cid)
        .ok_or_else(not_found)?;
    let c = &st.admin.comments[i];
    // A comment of another entity, or no `edit` on the entity → 403 (§5.3).
    if c.kind != kind || c.on != id || !at_least(caller, ADMIN) {
        return Err(forbidden());
    }
    if pin {
        st.admin.comments[i].pinned = !st.admin.comments[i].pinned;
        Ok(Answer::ok(comment_json(st, &st.admin.comments[i])))
    } else {
        st.admin.comments.remove(i);
        Ok(Answer::empty(204))
    }
}

// ---------------------------------------------------------------------------------------------
// Users (§5.7)

fn parse_tz(s: &str) -> Option<Tz> {
    // The simulator models three timezones (see `time::Tz`); other IANA names are refused as
    // invalid, which real Kimai would accept.
    [Tz::Berlin, Tz::NewYork, Tz::Utc]
        .into_iter()
        .find(|t| t.name() == s)
}

const ROLES: &[&str] = &[
    "ROLE_USER",
    "ROLE_TEAMLEAD",
    "ROLE_ADMIN",
    "ROLE_SUPER_ADMIN",
];

/// Reads `roles` (array of role names; replaces all roles). The simulator stores one role per
/// user, the highest one given.
fn read_roles(f: &mut Form) -> Option<&'static str> {
    let v = f.body.get("roles")?.clone();
    let names: Option<Vec<String>> = match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    };
    let Some(names) = names else {
        f.err("roles", INVALID_CHOICE);
        return None;
    };
    let mut best = "ROLE_USER";
    for n in &names {
        match ROLES.iter().find(|r| *r == n) {
            Some(r) if rank(r) > rank(best) => best = r,
            Some(_) => {}
            None => {
                f.err("roles", INVALID_CHOICE);
                return None;
            }
        }
    }
    Some(best)
}

fn user_fields(
    st: &State,
    f: &mut Form,
    u: &mut User,
    flags: &mut (bool, bool),
) -> Option<Option<String>> {
    for (k, slot) in [
        ("alias", &mut u.alias),
        ("title", &mut u.title),
        ("accountNumber", &mut u.account_number),
    ] {
        if let Some(v) = f.text(k) {
            *slot = v;
        }
    }
    if let Some(c) = read_color(f) {
        u.color = c;
    }
    if let Some(e) = f.text("email") {
        match e {
            Some(e) if e.contains('@') => u.email = e,
            Some(_) => f.err("email", "This value is not a valid email address."),
            None => f.err("email", "This value should not be blank."),
        }
    }
    if let Some(Some(l)) = f.text("language") {
        u.language = leak(l);
    }
    if let Some(Some(l)) = f.text("locale") {
        // The simulator keeps one value for language and locale (as its JSON shows them).
        u.language = leak(l.split('_').next().unwrap_or("en").to_string());
    }
    if let Some(tz) = f.text("timezone") {
        match tz.as_deref().and_then(parse_tz) {
            Some(t) => u.tz = t,
            None => f.err("timezone", "Please select a valid timezone."),
        }
    }
    if let Some(e) = f.flag("enabled") {
        u.enabled = e;
    }
    if let Some(s) = f.flag("systemAccount") {
        flags.0 = s;
    }
    if let Some(r) = f.flag("requiresPasswordReset") {
        flags.1 = r;
    }
    if let Some(s) = f.text("supervisor") {
        match s {
            None => u.supervisor = None,
            Some(s) => match s.parse::<u64>().ok().and_then(|id| st.user(id)) {
                Some(sup) if sup.id != u.id => u.supervisor = Some(sup.id),
                _ => f.err("supervisor", INVALID_CHOICE),
            },
        }
    }
    if let Some(r) = read_roles(f) {
        u.role = r;
    }
    f.text("plainPassword")
}

pub fn create_user(st: &mut State, req: &Req, caller: &User) -> Res {
    if !at_least(caller, SUPER_ADMIN) {
        return Err(forbidden());
    }
    let mut f = Form::new(
        req,
        &[
            "username",
            "alias",
            "title",
            "accountNumber",
            "color",
            "email",
            "language",
            "locale",
            "timezone",
            "plainPassword",
            "plainApiToken",
            "enabled",
            "systemAccount",
            "requiresPasswordReset",
            "supervisor",
            "roles",
        ],
    )?;
    let id = next_id(&st.users, |u| u.id);
    let mut u = User {
        id,
        username: String::new(),
        alias: None,
        title: None,
        email: String::new(),
        account_number: None,
        // §7.9: POST /users submits the complete form, so an omitted boolean is false.
        enabled: false,
        role: "ROLE_USER",
        tz: caller.tz,
        language: "en",
        color: None,
        supervisor: None,
        hourly_rate: 0.0,
        internal_rate: None,
        token: token(id),
    };
    match f.text("username").flatten() {
        None => f.err("username", "This value should not be blank."),
        Some(n) if n.chars().count() < 2 || n.chars().count() > 64 || n.contains('/') => {
            f.err("username", "This value is not valid.")
        }
        Some(n) if st.users.iter().any(|x| x.username == n) => {
            f.err("username", "This value is already used.")
        }
        Some(n) => u.username = n,
    }
    if !f.has("email") {
        f.err("email", "This value should not be blank.");
    }
    let mut flags = (false, false);
    let password = user_fields(st, &mut f, &mut u, &mut flags);
    if !u.email.is_empty() && st.users.iter().any(|x| x.email == u.email) {
        f.err("email", "This value is already used.");
    }
    match password.flatten() {
        None => f.err("plainPassword", "This value should not be blank."),
        Some(p) if p.chars().count() < 8 => f.err(
            "plainPassword",
            "This value is too short. It should have 8 characters or more.",
        ),
        Some(_) => {}
    }
    f.text("plainApiToken");
    f.finish()?;
    st.admin.flags.insert(id, flags);
    st.users.push(u);
    let u = st.users.last().cloned().ok_or_else(not_found)?;
    Ok(Answer::ok(user_json(st, &u)))
}

fn token(id: u64) -> String {
    let mut rng = data::Rng::new(0x5EED_0000 ^ id.wrapping_mul(0x9E37_79B9));
    let mut out = String::new();
    while out.len() < 25 {
        out.push_str(&format!("{:016x}", rng.next()));
    }
    out.truncate(25);
    out
}

pub fn user_json(st: &State, u: &User) -> Value {
    js::user_entity(st, u)
}

pub fn update_user(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let mut u = st.user(id).cloned().ok_or_else(not_found)?;
    let own = id == caller.id;
    let super_admin = at_least(caller, SUPER_ADMIN);
    if !own && !super_admin {
        return Err(forbidden());
    }
    // UserEditForm: profile fields; language/locale/timezone with `preferences` on the profile
    // (own: everyone); `enabled` only for someone else; supervisor and roles need the
    // SUPER_ADMIN-only `supervisor`/`roles` permissions; systemAccount and
    // requiresPasswordReset need `password` (own: everyone). username, plainPassword and
    // plainApiToken are never on it.
    let mut allowed = vec![
        "alias",
        "title",
        "accountNumber",
        "color",
        "email",
        "language",
        "locale",
        "timezone",
        "systemAccount",
        "requiresPasswordReset",
    ];
    if !own {
        allowed.push("enabled");
    }
    if super_admin {
        allowed.extend(["supervisor", "roles"]);
    }
    let mut f = Form::new(req, &allowed)?;
    let mut flags = st.admin.flags.get(&id).copied().unwrap_or_default();
    user_fields(st, &mut f, &mut u, &mut flags);
    if st.users.iter().any(|x| x.id != id && x.email == u.email) {
        f.err("email", "This value is already used.");
    }
    f.finish()?;
    st.admin.flags.insert(id, flags);
    if let Some(slot) = st.users.iter_mut().find(|x| x.id == id) {
        *slot = u.clone();
    }
    Ok(Answer::ok(user_json(st, &u)))
}

/// Work-contract preference names (§5.7): only for callers with `contract_other_profile`
/// (ADMIN+), otherwise 403.
const CONTRACT_PREFS: &[&str] = &[
    "work_contract_type",
    "work_monday",
    "work_tuesday",
    "work_wednesday",
    "work_thursday",
    "work_friday",
    "work_saturday",
    "work_sunday",
    "holidays",
    "public_holiday_group",
    "work_start_day",
    "work_last_day",
    "hours_per_week",
];

/// `PATCH /users/{id}/preferences`: a JSON array of `{name, value}`. Item not an object or
/// without name/value → 400; unknown name → 404; a disabled preference → 403. All items are
/// checked before anything is stored.
pub fn preferences(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    st.user(id).ok_or_else(not_found)?;
    if id != caller.id && !at_least(caller, SUPER_ADMIN) {
        return Err(forbidden());
    }
    let items = name_value_items(req)?;
    for (name, _) in &items {
        let known = matches!(
            name.as_str(),
            "hourly_rate" | "internal_rate" | "first_weekday"
        ) || CONTRACT_PREFS.contains(&name.as_str());
        if !known {
            return Err(not_found());
        }
        if CONTRACT_PREFS.contains(&name.as_str()) && !at_least(caller, ADMIN) {
            return Err(forbidden());
        }
        // Unsure: rate preferences need `hourly-rate_*_profile`; the simulator lets anyone who
        // may edit the profile set them.
    }
    for (name, value) in items {
        let u = st
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .ok_or_else(not_found)?;
        match name.as_str() {
            "hourly_rate" => u.hourly_rate = value.parse().unwrap_or(0.0),
            "internal_rate" => u.internal_rate = value.parse().ok(),
            "first_weekday" => {}
            _ => {
                let list = st.admin.prefs.entry(id).or_default();
                match list.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = value,
                    None => list.push((name, value)),
                }
            }
        }
    }
    let u = st.user(id).cloned().ok_or_else(not_found)?;
    Ok(Answer::ok(user_json(st, &u)))
}

/// The body of the preferences and invoice custom-field endpoints: an array of objects with
/// `name` and `value` (a scalar); any other structure → 400.
fn name_value_items(req: &Req) -> Result<Vec<(String, String)>, Answer> {
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad())?;
    let Value::Array(items) = body else {
        return Err(bad());
    };
    items
        .iter()
        .map(|it| {
            let o = it.as_object().ok_or_else(bad)?;
            let name = o
                .get("name")
                .and_then(|v| scalar(v).ok().flatten())
                .ok_or_else(bad)?;
            let value = match o.get("value") {
                None => return Err(bad()),
                Some(v) => scalar(v).map_err(|_| bad())?.unwrap_or_default(),
            };
            Ok((name, value))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Teams (§5.8)

fn team_json(st: &State, id: u64) -> Result<Answer, Answer> {
    let t = st.teams.iter().find(|t| t.id == id).ok_or_else(not_found)?;
    Ok(Answer::ok(js::team_entity(st, t)))
}

/// `edit_team` / `delete_team` (ADMIN+) and "admin or teamlead of that team": with the default
/// roles only admins pass.
fn may_manage_team(caller: &User) -> bool {
    at_least(caller, ADMIN)
}

/// Reads `members` into (user, teamlead) pairs with the §2.2 collection error shape folded
/// into field messages on `members`.
fn read_members(st: &State, f: &mut Form, post: bool) -> Option<Vec<(u64, bool)>> {
    let v = f.body.get("members")?.clone();
    let Value::Array(items) = v else {
        f.err("members", "This value is not valid.");
        return None;
    };
    let mut out: Vec<(u64, bool)> = Vec::new();
    for it in &items {
        let Some(o) = it.as_object() else {
            f.err("members", "This value is not valid.");
            return None;
        };
        if o.keys().any(|k| k != "user" && k != "teamlead") {
            f.errs.global.push(EXTRA_FIELDS.into());
            return None;
        }
        let user = o
            .get("user")
            .and_then(|u| scalar(u).ok().flatten())
            .and_then(|u| u.parse::<u64>().ok())
            .and_then(|u| st.user(u));
        let Some(user) = user else {
            f.err("members", INVALID_CHOICE);
            return None;
        };
        // §7.9: on POST the member sub-form is complete, so an omitted `teamlead` is false;
        // on PATCH the new member list is submitted as given, which is the same here.
        let _ = post;
        let lead = o
            .get("teamlead")
            .map(|v| truthy(&scalar(v).ok().flatten()))
            .unwrap_or(false);
        if out.iter().any(|(u, _)| *u == user.id) {
            f.err("members", "This value is already used.");
            return None;
        }
        out.push((user.id, lead));
    }
    if out.is_empty() {
        f.err("members", "This value should not be blank.");
        return None;
    }
    if !out.iter().any(|(_, lead)| *lead) {
        f.err(
            "members",
            "At least one team leader must be assigned to the team.",
        );
        return None;
    }
    Some(out)
}

pub fn create_team(st: &mut State, req: &Req, caller: &User) -> Res {
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    let mut f = Form::new(req, &["name", "color", "members"])?;
    let name = f.text("name").flatten();
    check_name(&mut f, "name", &name, 100);
    if name
        .as_ref()
        .is_some_and(|n| st.teams.iter().any(|t| &t.name == n))
    {
        f.err("name", "This value is already used.");
    }
    let color = read_color(&mut f).flatten();
    let members = read_members(st, &mut f, true);
    if !f.has("members") {
        f.err("members", "This value should not be blank.");
    }
    f.finish()?;
    let id = next_id(&st.teams, |t| t.id);
    st.teams.push(Team {
        id,
        name: name.unwrap_or_default(),
        color,
        members: members.unwrap_or_default(),
        customers: Vec::new(),
        projects: Vec::new(),
        activities: Vec::new(),
    });
    team_json(st, id)
}

pub fn update_team(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let mut t = st
        .teams
        .iter()
        .find(|t| t.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    let mut f = Form::new(req, &["name", "color", "members"])?;
    if let Some(name) = f.text("name") {
        check_name(&mut f, "name", &name, 100);
        if let Some(n) = name {
            if st.teams.iter().any(|x| x.id != id && x.name == n) {
                f.err("name", "This value is already used.");
            }
            t.name = n;
        }
    }
    if let Some(c) = read_color(&mut f) {
        t.color = c;
    }
    if let Some(m) = read_members(st, &mut f, false) {
        // §5.8: sending `members` replaces the whole list.
        t.members = m;
    }
    f.finish()?;
    if let Some(slot) = st.teams.iter_mut().find(|x| x.id == id) {
        *slot = t;
    }
    team_json(st, id)
}

pub fn delete_team(st: &mut State, caller: &User, id: u64) -> Res {
    let i = st
        .teams
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(not_found)?;
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    st.teams.remove(i);
    Ok(Answer::empty(204))
}

/// POST/DELETE `/teams/{id}/members/{user}` and `/teams/{id}/{customers,projects,activities}/{x}`.
/// Both ids are loaded first (404), then the team voter and, for access grants, `permissions`
/// on the target (ADMIN+, §5.8 since 2.63/2.65); business-rule violations are a plain 400.
pub fn team_link(
    st: &mut State,
    req: &Req,
    caller: &User,
    id: u64,
    what: &'static str,
    target: u64,
) -> Res {
    let i = st
        .teams
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(not_found)?;
    let target_exists = match what {
        "members" => st.user(target).is_some(),
        "customers" => st.customer(target).is_some(),
        "projects" => st.project(target).is_some(),
        _ => st.activity(target).is_some(),
    };
    if !target_exists {
        return Err(not_found());
    }
    if !may_manage_team(caller) {
        return Err(forbidden());
    }
    if what == "members" && !st.can_access_user(caller, target) {
        return Err(forbidden());
    }
    let add = req.method == "POST";
    let team = &mut st.teams[i];
    if what == "members" {
        let pos = team.members.iter().position(|(u, _)| *u == target);
        match (add, pos) {
            (true, Some(_)) => return Err(bad()),
            (true, None) => team.members.push((target, false)),
            (false, None) => return Err(bad()),
            (false, Some(p)) if team.members[p].1 => return Err(bad()),
            (false, Some(p)) => {
                team.members.remove(p);
            }
        }
    } else {
        let list = match what {
            "customers" => &mut team.customers,
            "projects" => &mut team.projects,
            _ => &mut team.activities,
        };
        let pos = list.iter().position(|x| *x == target);
        match (add, pos) {
            (true, Some(_)) | (false, None) => return Err(bad()),
            (true, None) => list.push(target),
            (false, Some(p)) => {
                list.remove(p);
            }
        }
    }
    team_json(st, id)
}

// ---------------------------------------------------------------------------------------------
// Tags (§5.9)

pub fn create_tag(st: &mut State, req: &Req, _caller: &User) -> Res {
    // `create_tag` is granted to every default role (§11).
    let mut f = Form::new(req, &["name", "color", "visible"])?;
    let name = f.text("name").flatten();
    check_name(&mut f, "name", &name, 100);
    if let Some(n) = &name {
        if n.contains(',') {
            f.err("name", "This value is not valid.");
        }
        if st.tags.iter().any(|t| t.name == *n) {
            f.err("name", "This value is already used.");
        }
    }
    let color = read_color(&mut f).flatten();
    // §7.9: POST /tags submits the complete form: an omitted `visible` is false.
    let visible = f.flag("visible").unwrap_or(false);
    f.finish()?;
    let tag = Tag {
        id: next_id(&st.tags, |t| t.id),
        name: name.unwrap_or_default(),
        visible,
        color,
    };
    let out = js::tag(&tag);
    st.tags.push(tag);
    Ok(Answer::ok(out))
}

pub fn delete_tag(st: &mut State, caller: &User, id: u64) -> Res {
    st.tag(id).ok_or_else(not_found)?;
    if !at_least(caller, TEAMLEAD) {
        return Err(forbidden());
    }
    st.tags.retain(|t| t.id != id);
    for t in &mut st.timesheets {
        t.tags.retain(|x| *x != id);
    }
    Ok(Answer::empty(204))
}

// ---------------------------------------------------------------------------------------------
// Invoices (§5.10)

fn invoice_json(st: &State, inv: &Invoice) -> Value {
    // Invoices keep their own timezone; the simulator's are all stored in Europe/Berlin.
    let tz = Tz::Berlin;
    let mut v = json!({
        "id": inv.id,
        "invoiceNumber": inv.number,
        "comment": inv.comment,
        "customer": st.customer(inv.customer).map(js::customer),
        "user": st.user(inv.user).map(js::user),
        "createdAt": time::format_datetime(inv.created_at, tz),
        "total": inv.total,
        "tax": inv.tax,
        "vat": inv.vat,
        "currency": inv.currency,
        "dueDays": inv.due_days,
        "status": inv.status,
        "invoiceFilename": inv.filename,
        "paymentDate": inv.payment_date.map(|p| time::format_datetime(p, tz)),
        "overdue": inv.status != "paid" && inv.status != "canceled"
            && inv.created_at + inv.due_days * DAY < st.now(),
        "metaFields": [],
    });
    overlay(st, "invoice", inv.id, &mut v);
    v
}

pub fn invoice_list(st: &State, req: &Req, caller: &User) -> Res {
    if !at_least(caller, TEAMLEAD) {
        return Err(forbidden());
    }
    let strict = |name: &str| -> Result<Option<i64>, Answer> {
        match req.param(name) {
            None => Ok(None),
            Some(v) => time::parse_local_strict(v)
                .map(|l| Some(caller.tz.to_utc(l)))
                .ok_or_else(bad),
        }
    };
    let begin = strict("begin")?;
    let end = strict("end")?;
    let mut customers = Vec::new();
    for c in req.array("customers") {
        let id: u64 = c.parse().map_err(|_| bad())?;
        if st.customer(id).is_some() {
            if !st.customer_accessible(caller, id) {
                return Err(forbidden());
            }
            customers.push(id);
        }
    }
    let status = req.array("status");
    if status
        .iter()
        .any(|s| !["new", "pending", "paid", "canceled"].contains(s))
    {
        return Err(bad());
    }
    let num = |name: &str| -> Result<Option<u64>, Answer> {
        match req.param(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| bad()),
        }
    };
    let page = num("page")?.unwrap_or(1).max(1);
    let size = match num("size")? {
        None | Some(0) => 50,
        Some(s) => s.min(500),
    };
    let mut hits: Vec<&Invoice> = st
        .admin
        .invoices
        .iter()
        .filter(|i| {
            st.customer_accessible(caller, i.customer)
                && (customers.is_empty() || customers.contains(&i.customer))
                && (status.is_empty() || status.contains(&i.status))
                && begin.is_none_or(|b| i.created_at >= b)
                && end.is_none_or(|e| i.created_at <= e)
        })
        .collect();
    hits.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let total = hits.len() as u64;
    let pages = total.div_ceil(size).max(1);
    if page > pages {
        return Err(not_found());
    }
    let items: Vec<Value> = hits
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|i| invoice_json(st, i))
        .collect();
    Ok(Answer::ok(Value::Array(items))
        .header("X-Page", page.to_string())
        .header("X-Total-Count", total.to_string())
        .header("X-Total-Pages", pages.to_string())
        .header("X-Per-Page", size.to_string()))
}

fn load_invoice(st: &State, caller: &User, id: u64, min: u8) -> Result<usize, Answer> {
    let i = st
        .admin
        .invoices
        .iter()
        .position(|i| i.id == id)
        .ok_or_else(not_found)?;
    if !at_least(caller, min) || !st.customer_accessible(caller, st.admin.invoices[i].customer) {
        return Err(forbidden());
    }
    Ok(i)
}

pub fn invoice(st: &State, caller: &User, id: u64) -> Res {
    let i = load_invoice(st, caller, id, TEAMLEAD)?;
    Ok(Answer::ok(invoice_json(st, &st.admin.invoices[i])))
}

/// `PATCH /invoices/{id}/custom-fields` (2.56+): `create_invoice` (TEAMLEAD+) and customer
/// access; body rules as for preferences; every name must be defined, else 404.
pub fn invoice_custom_fields(st: &mut State, req: &Req, caller: &User, id: u64) -> Res {
    let i = load_invoice(st, caller, id, TEAMLEAD)?;
    let items = name_value_items(req)?;
    let defined = |n: &str| {
        st.admin
            .meta_defs
            .iter()
            .any(|(k, d)| *k == "invoice" && *d == n)
    };
    if items.iter().any(|(n, _)| !defined(n)) {
        return Err(not_found());
    }
    for (n, v) in items {
        set_meta(st, "invoice", id, &n, v)?;
    }
    Ok(Answer::ok(invoice_json(st, &st.admin.invoices[i])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_kimai() {
        assert_eq!(parse_duration("2:00:00"), Some(7200));
        assert_eq!(parse_duration("1:30"), Some(5400));
        // A bare number is hours (§4.2).
        assert_eq!(parse_duration("7200"), Some(7200 * 3600));
        assert_eq!(parse_duration("1,5"), Some(5400));
        assert_eq!(parse_duration("2h30m"), Some(9000));
        assert_eq!(parse_duration(""), Some(0));
        assert_eq!(parse_duration("soon"), None);
    }
}
