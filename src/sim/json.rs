//! JSON shapes of the simulated Kimai's entities (contract §6), built by hand with
//! `serde_json::json!` so field order and `null`s match Kimai 2.65 (`preserve_order` keeps
//! insertion order). Pure functions over `&State`; called with the state lock held, so they
//! only build values, never do I/O.

use serde_json::{Value, json};
use std::collections::HashMap;

use super::data::{Activity, Customer, Project, State, Tag, Team, Timesheet, User};
use super::time::{format_date, format_datetime};

/// §6.8 palette for names without an explicit colour.
const SAFE_PALETTE: [&str; 41] = [
    "#AAAAAA", "#DDDDDD", "#a972c9", "#9C27B0", "#673AB7", "#041fd1", "#5319e7", "#3F51B5",
    "#0074D9", "#2196F3", "#03A9F4", "#7FDBFF", "#39CCCC", "#00BCD4", "#006b75", "#009688",
    "#00bb32", "#4CAF50", "#3D9970", "#2ECC40", "#01FF70", "#8BC34A", "#CDDC39", "#FFDC00",
    "#FFC107", "#FF851B", "#FF9800", "#FF5722", "#f41a00", "#E91E63", "#85144b", "#b60205",
    "#FF4136", "#cc317c", "#F012BE", "#d82d80", "#B10DC9", "#e135f4", "#2d3748", "#4a5568",
    "#718096",
];

/// §6.8: `color` if set (and not the "unset" marker `#d2d6de`), else derived from the name.
fn color_pair(color: &Option<String>, name: &str) -> (Value, String) {
    match color {
        Some(c) if c != "#d2d6de" => (json!(c), c.clone()),
        _ => {
            let sum: u64 = name.bytes().map(u64::from).sum();
            (Value::Null, SAFE_PALETTE[(sum % 41) as usize].to_string())
        }
    }
}

/// §6.6 initials: two characters of a one-word display name, else first letters of the first
/// two words; e-mail-like names use the local part with dots as separators.
pub fn initials(display: &str) -> String {
    let base = display.split('@').next().unwrap_or(display);
    let words: Vec<&str> = base
        .split(|c: char| c.is_whitespace() || c == '.')
        .filter(|w| !w.is_empty())
        .collect();
    let out: String = match words.as_slice() {
        [] => String::new(),
        [one] => one.chars().take(2).collect(),
        [a, b, ..] => a.chars().take(1).chain(b.chars().take(1)).collect(),
    };
    out.to_uppercase()
}

pub fn user(u: &User) -> Value {
    let display = u.alias.clone().unwrap_or_else(|| u.username.clone());
    let (color, safe) = color_pair(&u.color, &display);
    json!({
        "id": u.id,
        "username": u.username,
        "alias": u.alias,
        "title": u.title,
        "avatar": null,
        "accountNumber": u.account_number,
        "email": u.email,
        "enabled": u.enabled,
        "systemAccount": false,
        "apiToken": false,
        "color": color,
        "color-safe": safe,
        "initials": initials(&display),
        "language": u.language,
        "locale": u.language,
        "timezone": u.tz.name(),
    })
}

pub fn team_small(t: &Team) -> Value {
    let (color, safe) = color_pair(&t.color, &t.name);
    json!({"id": t.id, "name": t.name, "color": color, "color-safe": safe})
}

pub fn user_entity(st: &State, u: &User) -> Value {
    let mut v = user(u);
    let teams = st.teams_of(u.id);
    let roles: Vec<&str> = if u.role == "ROLE_USER" {
        vec![]
    } else {
        vec![u.role]
    };
    let extra = json!({
        "supervisor": u.supervisor.and_then(|s| st.user(s)).map(user),
        "teams": teams.iter().map(|t| team_small(t)).collect::<Vec<_>>(),
        "roles": roles,
        "memberships": teams.iter().map(|t| json!({
            "team": team_small(t),
            "teamlead": t.members.iter().any(|m| m.0 == u.id && m.1),
        })).collect::<Vec<_>>(),
        // §6.6: timezone/locale/language/skin are hidden from this list.
        "preferences": [
            {"name": "hourly_rate", "value": format!("{}", u.hourly_rate)},
            {"name": "internal_rate", "value": u.internal_rate.map(|r| format!("{r}"))},
            {"name": "first_weekday", "value": "monday"},
        ],
    });
    merge(&mut v, extra);
    super::admin::overlay::overlay(st, "user", u.id, &mut v);
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

pub fn customer(c: &Customer) -> Value {
    let (color, safe) = color_pair(&c.color, &c.name);
    json!({
        "id": c.id, "name": c.name, "number": c.number, "comment": c.comment,
        "visible": c.visible, "billable": c.billable, "company": c.company,
        "country": c.country, "language": "en", "currency": c.currency,
        "phone": null, "fax": null, "mobile": null, "homepage": c.homepage,
        "timezone": c.timezone, "color": color, "color-safe": safe, "metaFields": [],
    })
}

fn teams_where(st: &State, f: impl Fn(&Team) -> bool) -> Vec<Value> {
    st.teams.iter().filter(|t| f(t)).map(team_small).collect()
}

pub fn customer_collection(st: &State, c: &Customer, details: bool) -> Value {
    let mut v = customer(c);
    if details {
        merge(
            &mut v,
            json!({
                "vatId": null, "addressLine1": c.address_line1, "addressLine2": null, "addressLine3": null,
                "postCode": c.post_code, "city": c.city,
            }),
        );
    }
    merge(
        &mut v,
        json!({"teams": teams_where(st, |t| t.customers.contains(&c.id))}),
    );
    super::admin::overlay::overlay(st, "customer", c.id, &mut v);
    v
}

pub fn customer_entity(st: &State, c: &Customer) -> Value {
    let (color, safe) = color_pair(&c.color, &c.name);
    let mut v = json!({
        "id": c.id, "name": c.name, "number": c.number, "comment": c.comment,
        "visible": c.visible, "billable": c.billable, "company": c.company,
        "vatId": null, "contact": null, "address": null,
        "addressLine1": c.address_line1, "addressLine2": null, "addressLine3": null,
        "postCode": c.post_code, "city": c.city, "country": c.country, "language": "en",
        "currency": c.currency, "phone": null, "fax": null, "mobile": null, "email": c.email,
        "homepage": c.homepage, "timezone": c.timezone, "invoiceEmail": null, "buyerReference": null,
        "color": color, "color-safe": safe, "metaFields": [],
        "teams": teams_where(st, |t| t.customers.contains(&c.id)),
        "budget": 0.0, "timeBudget": 0, "budgetType": null,
    });
    super::admin::overlay::overlay(st, "customer", c.id, &mut v);
    v
}

/// Embedded project; `customer` is an id unless `expanded_customer` is given.
pub fn project(p: &Project, expanded_customer: Option<Value>) -> Value {
    let (color, safe) = color_pair(&p.color, &p.name);
    json!({
        "id": p.id, "name": p.name, "number": p.number, "comment": p.comment,
        "orderNumber": p.order_number, "orderDate": p.order_date.map(format_date),
        "start": p.start.map(format_date), "end": p.end.map(format_date),
        "visible": p.visible, "billable": p.billable, "globalActivities": p.global_activities,
        "color": color, "color-safe": safe, "metaFields": [],
        "customer": expanded_customer.unwrap_or(json!(p.customer)),
    })
}

pub fn project_collection(st: &State, p: &Project) -> Value {
    let mut v = project(p, None);
    merge(
        &mut v,
        json!({
            "parentTitle": st.customer(p.customer).map(|c| c.name.clone()),
            "teams": teams_where(st, |t| t.projects.contains(&p.id)),
            // Set through the form (admin `store`): a `Y-m-d` day or null.
            "lockedUntil": null,
        }),
    );
    super::admin::overlay::overlay(st, "project", p.id, &mut v);
    v
}

pub fn project_entity(st: &State, p: &Project) -> Value {
    let mut v = project_collection(st, p);
    merge(
        &mut v,
        json!({"budget": 0.0, "timeBudget": 0, "budgetType": null}),
    );
    super::admin::overlay::overlay(st, "project", p.id, &mut v);
    v
}

pub fn activity(a: &Activity, expanded_project: Option<Value>) -> Value {
    let (color, safe) = color_pair(&a.color, &a.name);
    json!({
        "id": a.id, "name": a.name, "number": a.number, "comment": a.comment,
        "visible": a.visible, "billable": a.billable, "color": color, "color-safe": safe,
        "metaFields": [],
        "project": expanded_project.unwrap_or(json!(a.project)),
    })
}

pub fn activity_collection(st: &State, a: &Activity) -> Value {
    let mut v = activity(a, None);
    merge(
        &mut v,
        json!({
            "parentTitle": a.project.and_then(|p| st.project(p)).map(|p| p.name.clone()),
            "teams": teams_where(st, |t| t.activities.contains(&a.id)),
        }),
    );
    super::admin::overlay::overlay(st, "activity", a.id, &mut v);
    v
}

pub fn activity_entity(st: &State, a: &Activity) -> Value {
    let mut v = activity_collection(st, a);
    merge(
        &mut v,
        json!({"budget": 0.0, "timeBudget": 0, "budgetType": null}),
    );
    super::admin::overlay::overlay(st, "activity", a.id, &mut v);
    v
}

pub fn tag(t: &Tag) -> Value {
    let (color, safe) = color_pair(&t.color, &t.name);
    json!({"id": t.id, "name": t.name, "visible": t.visible, "color": color, "color-safe": safe})
}

pub fn team_entity(st: &State, t: &Team) -> Value {
    let mut v = team_small(t);
    merge(
        &mut v,
        json!({
            "members": t.members.iter().filter_map(|(u, lead)| st.user(*u).map(|u| json!({"user": user(u), "teamlead": lead}))).collect::<Vec<_>>(),
            "customers": t.customers.iter().filter_map(|c| st.customer(*c)).map(customer).collect::<Vec<_>>(),
            "projects": t.projects.iter().filter_map(|p| st.project(*p)).map(|p| project(p, None)).collect::<Vec<_>>(),
            "activities": t.activities.iter().filter_map(|a| st.activity(*a)).map(|a| activity(a, None)).collect::<Vec<_>>(),
        }),
    );
    v
}

fn expanded_project(st: &State, id: u64) -> Value {
    match st.project(id) {
        Some(p) => project(p, st.customer(p.customer).map(customer)),
        None => Value::Null,
    }
}

/// Which of the timesheet shapes of §6.1 to build.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TsShape {
    Entity,
    Collection,
    Expanded,
}

pub fn timesheet(st: &State, t: &Timesheet, shape: TsShape) -> Value {
    let tags: Vec<&str> = t
        .tags
        .iter()
        .filter_map(|id| st.tag(*id))
        .map(|t| t.name.as_str())
        .collect();
    let (activity_v, project_v, user_v) = if shape == TsShape::Expanded {
        (
            st.activity(t.activity)
                .map(|a| {
                    activity(
                        a,
                        Some(
                            a.project
                                .map(|p| expanded_project(st, p))
                                .unwrap_or(Value::Null),
                        ),
                    )
                })
                .unwrap_or(Value::Null),
            expanded_project(st, t.project),
            st.user(t.user).map(user).unwrap_or(Value::Null),
        )
    } else {
        (json!(t.activity), json!(t.project), json!(t.user))
    };
    let mut v = json!({
        "id": t.id,
        "begin": format_datetime(t.begin, t.tz),
        "end": t.end.map(|e| format_datetime(e, t.tz)),
        "duration": t.duration,
        "break": t.break_secs,
        "description": t.description,
        "rate": t.rate,
        "internalRate": t.internal_rate,
    });
    if shape == TsShape::Entity {
        merge(
            &mut v,
            json!({"fixedRate": t.fixed_rate, "hourlyRate": t.hourly_rate}),
        );
    }
    merge(
        &mut v,
        json!({
            "exported": t.exported,
            "billable": t.billable,
            "activity": activity_v,
            "project": project_v,
            "user": user_v,
            "tags": tags,
            "metaFields": t.meta.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        }),
    );
    v
}

/// Serialised nested objects of one list response, built once per id: an expanded page of 500
/// records repeats the same few projects, activities and users, and building each of them per
/// record made the simulator the slowest part of every statistics benchmark.
#[derive(Default)]
pub struct Fragments {
    activities: HashMap<u64, String>,
    projects: HashMap<u64, String>,
    users: HashMap<u64, String>,
}

/// Removes the rate fields of a timesheet value, as Kimai 2.66 does for a caller without the
/// `view_rate_*` permission (contract §6.1).
pub fn strip_rates(v: &mut Value) {
    if let Value::Object(m) = v {
        for k in ["rate", "internalRate", "fixedRate", "hourlyRate"] {
            m.shift_remove(k);
        }
    }
}

/// A list of timesheets as a JSON array, byte for byte what `timesheet` would give for each
/// (with [`strip_rates`] applied to the records for which `rates` says no).
pub fn timesheets_body(
    st: &State,
    items: &[&Timesheet],
    shape: TsShape,
    rates: &dyn Fn(&Timesheet) -> bool,
) -> Vec<u8> {
    let mut frags = Fragments::default();
    let mut out = Vec::with_capacity(
        items.len()
            * if shape == TsShape::Expanded {
                1400
            } else {
                300
            },
    );
    out.push(b'[');
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        timesheet_bytes(st, t, shape, rates(t), &mut frags, &mut out);
    }
    out.push(b']');
    out
}

fn timesheet_bytes(
    st: &State,
    t: &Timesheet,
    shape: TsShape,
    rates: bool,
    frags: &mut Fragments,
    out: &mut Vec<u8>,
) {
    // Everything up to `billable` written directly (this runs for every record of a page),
    // then the (cached) nested objects and the lists.
    use std::io::Write as _;
    let num = |f: f64| serde_json::to_string(&f).unwrap_or_else(|_| "null".into());
    let opt_num = |f: Option<f64>| f.map(num).unwrap_or_else(|| "null".into());
    let _ = write!(
        out,
        "{{\"id\":{},\"begin\":\"{}\",\"end\":{},\"duration\":{},\"break\":{},\"description\":{}",
        t.id,
        format_datetime(t.begin, t.tz),
        t.end
            .map(|e| format!("\"{}\"", format_datetime(e, t.tz)))
            .unwrap_or_else(|| "null".into()),
        t.duration,
        t.break_secs,
        serde_json::to_string(&t.description).unwrap_or_else(|_| "null".into()),
    );
    if rates {
        let _ = write!(
            out,
            ",\"rate\":{},\"internalRate\":{}",
            num(t.rate),
            num(t.internal_rate)
        );
    }
    if rates && shape == TsShape::Entity {
        let _ = write!(
            out,
            ",\"fixedRate\":{},\"hourlyRate\":{}",
            opt_num(t.fixed_rate),
            opt_num(t.hourly_rate)
        );
    }
    let _ = write!(
        out,
        ",\"exported\":{},\"billable\":{}",
        t.exported, t.billable
    );
    if shape == TsShape::Expanded {
        let a = frags.activities.entry(t.activity).or_insert_with(|| {
            let v = st
                .activity(t.activity)
                .map(|a| {
                    activity(
                        a,
                        Some(
                            a.project
                                .map(|p| expanded_project(st, p))
                                .unwrap_or(Value::Null),
                        ),
                    )
                })
                .unwrap_or(Value::Null);
            v.to_string()
        });
        out.extend_from_slice(b",\"activity\":");
        out.extend_from_slice(a.as_bytes());
        let p = frags
            .projects
            .entry(t.project)
            .or_insert_with(|| expanded_project(st, t.project).to_string());
        out.extend_from_slice(b",\"project\":");
        out.extend_from_slice(p.as_bytes());
        let u = frags
            .users
            .entry(t.user)
            .or_insert_with(|| st.user(t.user).map(user).unwrap_or(Value::Null).to_string());
        out.extend_from_slice(b",\"user\":");
        out.extend_from_slice(u.as_bytes());
    } else {
        out.extend_from_slice(
            format!(
                ",\"activity\":{},\"project\":{},\"user\":{}",
                t.activity, t.project, t.user
            )
            .as_bytes(),
        );
    }
    let tags: Vec<&str> = t
        .tags
        .iter()
        .filter_map(|id| st.tag(*id))
        .map(|t| t.name.as_str())
        .collect();
    let meta: Vec<Value> = t
        .meta
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    out.extend_from_slice(b",\"tags\":");
    out.extend_from_slice(&serde_json::to_vec(&tags).unwrap_or_default());
    out.extend_from_slice(b",\"metaFields\":");
    out.extend_from_slice(&serde_json::to_vec(&meta).unwrap_or_default());
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_list_bodies_equal_the_value_form() {
        let st = crate::sim::data::seed(42, 1_786_600_000, true);
        let items: Vec<&Timesheet> = st.timesheets.iter().take(50).collect();
        for shape in [TsShape::Expanded, TsShape::Collection, TsShape::Entity] {
            let fast: Value =
                serde_json::from_slice(&timesheets_body(&st, &items, shape, &|_| true)).unwrap();
            let slow = Value::Array(items.iter().map(|t| timesheet(&st, t, shape)).collect());
            assert_eq!(fast, slow);
            // Same key order too.
            assert_eq!(fast.to_string(), slow.to_string());
            // Without the rate permission (Kimai 2.66) the rate fields are gone, nothing else.
            let odd = |t: &Timesheet| t.id % 2 == 0;
            let fast: Value =
                serde_json::from_slice(&timesheets_body(&st, &items, shape, &odd)).unwrap();
            let slow = Value::Array(
                items
                    .iter()
                    .map(|t| {
                        let mut v = timesheet(&st, t, shape);
                        if !odd(t) {
                            strip_rates(&mut v);
                        }
                        v
                    })
                    .collect(),
            );
            assert_eq!(fast.to_string(), slow.to_string());
        }
    }

    #[test]
    fn initials_follow_kimai() {
        assert_eq!(initials("Tony Teamlead"), "TT");
        assert_eq!(initials("maria_user"), "MA");
        assert_eq!(initials("john.doe@example.com"), "JD");
    }

    #[test]
    fn color_safe_derivation() {
        let (c, safe) = color_pair(&None, "A");
        assert!(c.is_null());
        assert_eq!(safe, SAFE_PALETTE[65 % 41]);
        let (c, safe) = color_pair(&Some("#d2d6de".into()), "A");
        assert!(c.is_null() && safe.starts_with('#'));
        assert_eq!(color_pair(&Some("#123456".into()), "x").1, "#123456");
    }
}
