//! Customers, projects and activities: create, update, delete (§5.3–§5.5) and their custom
//! fields (§7.7).

use serde_json::Value;

use super::form::{
    ADMIN, Form, TEAMLEAD, at_least, budget_fields, check_name, leak, next_id, read_budgets,
    read_color, read_extra_texts, read_teams, scalar, set_extra,
};
use crate::sim::data::{Activity, Customer, Project, RateOn, State, User};
use crate::sim::json as js;
use crate::sim::time::{self, DAY};
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, not_found};
use crate::sim::writes::INVALID_CHOICE;

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
        // Kimai's `project-lockdown` work (the Python server calls it 2.66): simulated although
        // the version says 2.65, as the favorites are.
        "lockedUntil",
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
pub(super) fn may_edit(st: &State, caller: &User, kind: &str, id: u64) -> bool {
    at_least(caller, ADMIN)
        || (kind == "activity"
            && at_least(caller, TEAMLEAD)
            && st.leads_team_with(caller, |t| t.activities.contains(&id)))
}

pub(super) fn exists(st: &State, kind: &str, id: u64) -> bool {
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
            // A plain day without time zone: the form reads it with the API's date format
            // (`yyyy-MM-dd` on POST, the date-time format on PATCH) and drops the time; it is
            // written back as `Y-m-d`.
            if let Some(d) = project_date(&mut f, "lockedUntil", post) {
                extras.push((
                    "lockedUntil",
                    d.map_or(Value::Null, |day| Value::String(time::format_date(day))),
                ));
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

pub(super) fn set_meta(
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
