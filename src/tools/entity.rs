//! `entity`: list, read, create, update and delete Kimai's master data — projects, activities,
//! customers, users, teams, tags, invoices and public holidays — plus the user-only
//! `lock_month` / `unlock_month` (WorkContract plugin) and `set_preferences`.
//!
//! Contract §5.3–§5.10 and reference §1.3. What this file takes care of, because Kimai will not:
//! - only the fields the caller gave are sent (Kimai's forms depend on the token's permissions
//!   and reject any field they lack, §2.4);
//! - `timeBudget` is read as seconds but written as a duration where a bare number means
//!   hours, so it goes out as `H:MM:SS` and a digits-only string is refused as ambiguous;
//! - project dates are `YYYY-MM-DD` on create and `YYYY-MM-DDTHH:MM:SS` on update
//!   (kimai/kimai#4132);
//! - `GET /projects` hides projects outside their start..end window unless `ignoreDates=1`;
//! - `POST /users`, `/teams`, `/tags` turn an omitted boolean into false (§7.9), so `enabled`
//!   (users), `visible` (tags) and `teamlead` (members) are sent explicitly;
//! - a missing route (405, debug 404) is explained with the Kimai version that added it.
//!
//! Filters that do not apply to the chosen type are not sent and are named in a note.

use super::common::missing_route::needs;
use super::common::user_render::render_user;
use super::render::{self, Kind};
use super::{Context, Output, Tool, ToolError, args, fanout, text, time, users};
use crate::kimai::Request;
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "entity",
    title: "Kimai master data",
    description: "List, read, create, update and delete Kimai projects, activities, customers, \
        users, teams, tags, invoices and public holidays. type + action select what to do; id \
        (get/update/delete), ids (batch_delete), filters (list), data (create/update; fields as \
        Kimai names them, e.g. project {name, customer, start: 'YYYY-MM-DD', timeBudget: \
        seconds or '1:30:00'}). Not every pair exists: tags cannot be read one by one or \
        updated, users cannot be deleted (update data.enabled=false instead), invoices cannot \
        be created. Users only: lock_month / unlock_month (month 'YYYY-MM-DD'; id, ids or \
        user_scope=all; needs the WorkContract plugin) and set_preferences (preferences \
        [{name, value}], e.g. hourly_rate, holidays, work_monday). By default Kimai lists only \
        visible entities and only projects running today: use filters.visible=3 and \
        filters.ignore_dates=true to see everything. New users are enabled and new tags \
        visible unless data says otherwise.",
    schema,
    read_only: false,
    destructive: true,
    idempotent: false,
    handler,
};

fn meta_fields_schema() -> Value {
    json!({
        "type": "array",
        "description": "Custom fields as [{name, value}] (only names defined in Kimai).",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
            "required": ["name", "value"],
            "additionalProperties": false
        }
    })
}

fn time_budget_schema() -> Value {
    json!({"type": ["integer", "string"], "description": "Seconds as an integer, or a duration such as '1:30:00', '1.5h', '90m'; '' clears it."})
}

fn ids_schema(d: &str) -> Value {
    json!({"type": "array", "items": {"type": "integer"}, "description": d})
}

fn s() -> Value {
    json!({"type": "string"})
}
fn b() -> Value {
    json!({"type": "boolean"})
}

fn customer_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": s(), "country": {"type": "string", "description": "ISO 3166 alpha-2, e.g. DE"},
            "currency": {"type": "string", "description": "ISO 4217, e.g. EUR"},
            "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
            "number": s(), "comment": s(), "visible": b(), "billable": b(),
            "budget": {"type": "number"}, "timeBudget": time_budget_schema(),
            "budgetType": {"type": "string", "enum": ["month"]}, "color": s(),
            "phone": s(), "fax": s(), "mobile": s(), "email": s(), "homepage": s(),
            "addressLine1": s(), "addressLine2": s(), "addressLine3": s(), "postCode": s(),
            "city": s(), "address": {"type": "string", "description": "Legacy one-line address; Kimai accepts it only if the customer already has one."},
            "contact": s(), "company": s(), "vatId": s(), "buyerReference": s(),
            "invoiceText": s(), "invoiceTemplate": s(), "language": s(), "invoiceEmail": s(),
            "teams": ids_schema("Team ids to give access (create only)."),
            "metaFields": meta_fields_schema()
        },
        "additionalProperties": false
    })
}

fn project_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": s(), "customer": {"type": "integer"}, "comment": s(), "visible": b(),
            "billable": b(), "budget": {"type": "number"}, "timeBudget": time_budget_schema(),
            "budgetType": {"type": "string", "enum": ["month"]}, "color": s(),
            "globalActivities": b(), "number": s(), "orderNumber": s(),
            "orderDate": {"type": "string", "description": "YYYY-MM-DD"},
            "start": {"type": "string", "description": "YYYY-MM-DD"},
            "end": {"type": "string", "description": "YYYY-MM-DD"},
            "lockedUntil": {"type": "string", "description": "YYYY-MM-DDTHH:MM:SS, '' clears (Kimai 2.66+)"},
            "invoiceText": s(), "teams": ids_schema("Team ids to give access (create only)."),
            "metaFields": meta_fields_schema()
        },
        "additionalProperties": false
    })
}

fn activity_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": s(), "project": {"type": "integer", "description": "Omit for a global activity."},
            "comment": s(), "visible": b(), "billable": b(), "budget": {"type": "number"},
            "timeBudget": time_budget_schema(), "budgetType": {"type": "string", "enum": ["month"]},
            "color": s(), "number": s(), "invoiceText": s(),
            "teams": ids_schema("Team ids to give access (create only)."),
            "metaFields": meta_fields_schema()
        },
        "additionalProperties": false
    })
}

const USER_UPDATE_FIELDS: &[&str] = &[
    "alias",
    "title",
    "accountNumber",
    "avatar",
    "color",
    "email",
    "language",
    "locale",
    "timezone",
];

fn user_data(create: bool) -> Value {
    let mut props = Map::new();
    if create {
        props.insert("username".into(), s());
    }
    for k in USER_UPDATE_FIELDS {
        props.insert((*k).into(), s());
    }
    props.insert("supervisor".into(), json!({"type": "integer"}));
    props.insert(
        "roles".into(),
        json!({"type": "array", "items": {"type": "string"}, "description": "e.g. ROLE_TEAMLEAD, ROLE_ADMIN; replaces all roles (ROLE_USER is implicit)"}),
    );
    if create {
        props.insert(
            "plainPassword".into(),
            json!({"type": "string", "description": "At least 8 characters."}),
        );
        props.insert("plainApiToken".into(), s());
    }
    props.insert("enabled".into(), b());
    props.insert("systemAccount".into(), b());
    props.insert("requiresPasswordReset".into(), b());
    let mut v = json!({"type": "object", "properties": props, "additionalProperties": false});
    if create {
        v["required"] = json!([
            "username",
            "email",
            "language",
            "locale",
            "timezone",
            "plainPassword"
        ]);
    }
    v
}

fn team_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": s(), "color": s(),
            "members": {
                "type": "array",
                "description": "The whole member list (replaces it on update); at least one team lead.",
                "items": {
                    "type": "object",
                    "properties": {"user": {"type": "integer"}, "teamlead": {"type": "boolean"}},
                    "required": ["user"],
                    "additionalProperties": false
                }
            }
        },
        "additionalProperties": false
    })
}

fn tag_data() -> Value {
    json!({"type": "object", "properties": {"name": s(), "color": s(), "visible": b()}, "additionalProperties": false})
}

fn invoice_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "comment": s(),
            "status": {"type": "string", "enum": ["pending", "paid", "canceled", "new"]},
            "paymentDate": {"type": "string", "description": "YYYY-MM-DD"}
        },
        "additionalProperties": false
    })
}

/// The union of every type's `data` fields (the per-type branches below narrow it), so that the
/// top-level `data` can be a closed object as the registry requires.
fn data_union() -> Value {
    let mut props = Map::new();
    for branch in [
        customer_data(),
        project_data(),
        activity_data(),
        user_data(true),
        team_data(),
        tag_data(),
        invoice_data(),
    ] {
        for (k, v) in branch["properties"].as_object().into_iter().flatten() {
            props.entry(k.clone()).or_insert_with(|| {
                // The loosest type among the branches; the branch checks the exact one.
                let mut v = v.clone();
                if k == "project" || k == "customer" {
                    v = json!({"type": "integer"});
                }
                v
            });
        }
    }
    json!({
        "type": "object",
        "description": "Fields for create/update, named as Kimai names them; which fields apply depends on type.",
        "properties": props,
        "additionalProperties": false
    })
}

fn branch(ty: &str, actions: &[&str], data: Value) -> Value {
    json!({
        "if": {"properties": {"type": {"const": ty}, "action": {"enum": actions}}},
        "then": {"properties": {"data": data}, "required": ["data"]}
    })
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["project", "activity", "customer", "user", "team", "tag", "invoice", "holiday"]},
            "action": {"type": "string", "enum": ["list", "get", "create", "update", "delete", "lock_month", "unlock_month", "batch_delete", "set_preferences"]},
            "id": {"type": "integer", "description": "Entity id (get, update, delete; user id for lock_month, unlock_month, set_preferences)."},
            "filters": {
                "type": "object",
                "description": "For list. A filter that does not apply to the type is ignored and named in a note.",
                "properties": {
                    "visible": {"type": "integer", "enum": [1, 2, 3], "description": "1 visible (Kimai's default), 2 hidden, 3 both (project, activity, customer, user)"},
                    "term": {"type": "string", "description": "Search words, all must match (project, activity, customer, user; tag: same as name). If nothing matches, list without it."},
                    "customer": {"type": "integer", "description": "project"},
                    "project": {"type": "integer", "description": "activity (also lists global activities)"},
                    "projects": {"type": "array", "items": {"type": "integer"}, "description": "activity"},
                    "globals": {"type": "string", "enum": ["0", "1"], "description": "activity: 1 = only global activities"},
                    "global_activities": {"type": "string", "enum": ["0", "1"], "description": "project: whether the project allows global activities"},
                    "ignore_dates": {"type": "boolean", "description": "project: also list finished and not yet started projects"},
                    "name": {"type": "string", "description": "tag: part of the name"},
                    "group": {"type": "integer", "description": "holiday: holiday group id"},
                    "page": {"type": "integer", "minimum": 1, "description": "invoice (default 1)"},
                    "size": {"type": "integer", "minimum": 1, "description": "invoice (default 50, at most 500)"},
                    "order_by": {"type": "string", "description": "project: id, name, customer; activity: id, name, project; customer: id, name; user: id, username, alias, email"},
                    "order": {"type": "string", "enum": ["ASC", "DESC"]},
                    "begin": {"type": "string", "format": "date-time", "description": "project (period overlaps), invoice (created), holiday: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"},
                    "end": {"type": "string", "format": "date-time", "description": "as begin"},
                    "customers": {"type": "array", "items": {"type": "integer"}, "description": "project, invoice"},
                    "status": {"type": "array", "items": {"type": "string", "enum": ["pending", "paid", "canceled", "new"]}, "description": "invoice"},
                    "full": {"type": "boolean", "description": "customer: include address and VAT fields (Kimai 2.62+, needs the details permission)"}
                },
                "additionalProperties": false
            },
            "data": data_union(),
            "month": {"type": "string", "description": "lock_month / unlock_month: a day of the month, YYYY-MM-DD. unlock_month unlocks that month and the later months of its year."},
            "ids": {"type": "array", "items": {"type": "integer"}, "description": "batch_delete; lock_month / unlock_month for several users"},
            "user_scope": {"type": "string", "enum": ["all"], "description": "lock_month / unlock_month for every user the token can see"},
            "preferences": {
                "type": "array",
                "description": "set_preferences: [{name, value}]. Aliases: vacation_days, annual_leave, vacation → holidays; weekly_hours → hours_per_week; contract_type → work_contract_type.",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["type", "action"],
        "allOf": [
            branch("customer", &["create", "update"], customer_data()),
            branch("project", &["create", "update"], project_data()),
            branch("activity", &["create", "update"], activity_data()),
            branch("user", &["create"], user_data(true)),
            branch("user", &["update"], user_data(false)),
            branch("team", &["create", "update"], team_data()),
            branch("tag", &["create"], tag_data()),
            branch("invoice", &["update"], invoice_data()),
            {"if": {"properties": {"action": {"enum": ["get", "update", "delete"]}}}, "then": {"required": ["id"]}}
        ],
        "additionalProperties": false
    })
}

/// The entity types of this tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Project,
    Activity,
    Customer,
    User,
    Team,
    Tag,
    Invoice,
    Holiday,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "project" => Type::Project,
            "activity" => Type::Activity,
            "customer" => Type::Customer,
            "user" => Type::User,
            "team" => Type::Team,
            "tag" => Type::Tag,
            "invoice" => Type::Invoice,
            "holiday" => Type::Holiday,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Type::Project => "project",
            Type::Activity => "activity",
            Type::Customer => "customer",
            Type::User => "user",
            Type::Team => "team",
            Type::Tag => "tag",
            Type::Invoice => "invoice",
            Type::Holiday => "holiday",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Type::Project => "projects",
            Type::Activity => "activities",
            Type::Customer => "customers",
            Type::User => "users",
            Type::Team => "teams",
            Type::Tag => "tags",
            Type::Invoice => "invoices",
            Type::Holiday => "public holidays",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Type::Project => "/projects",
            Type::Activity => "/activities",
            Type::Customer => "/customers",
            Type::User => "/users",
            Type::Team => "/teams",
            Type::Tag => "/tags",
            Type::Invoice => "/invoices",
            Type::Holiday => "/public-holidays",
        }
    }
    fn kind(self) -> Kind {
        match self {
            Type::Project => Kind::Project,
            Type::Activity => Kind::Activity,
            Type::Customer => Kind::Customer,
            Type::Team => Kind::Team,
            Type::Tag => Kind::Tag,
            Type::Invoice => Kind::Invoice,
            // Users are rendered by `render_user`.
            Type::User | Type::Holiday => Kind::Holiday,
        }
    }
}

fn handler(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let ty = a
        .get("type")
        .and_then(Value::as_str)
        .and_then(Type::parse)
        .ok_or_else(|| ToolError::Invalid("'type' is required".into()))?;
    let action = args::action(a);
    if let Some(why) = unsupported(ty, action) {
        return Err(ToolError::Invalid(why));
    }
    match action {
        "list" => {
            args::refuse_unused(a, action, &["type", "filters"])?;
            list(ctx, ty, args::object(a, "filters"))
        }
        "get" => {
            args::refuse_unused(a, action, &["type", "id"])?;
            let id = args::need_id(a, "id", "for get")?;
            get(ctx, ty, id)
        }
        "create" => {
            args::refuse_unused(a, action, &["type", "data"])?;
            let data = args::object(a, "data")
                .ok_or_else(|| ToolError::Invalid("'data' is required for create".into()))?;
            create(ctx, ty, data)
        }
        "update" => {
            args::refuse_unused(a, action, &["type", "id", "data"])?;
            let id = args::need_id(a, "id", "for update")?;
            let data = args::object(a, "data")
                .ok_or_else(|| ToolError::Invalid("'data' is required for update".into()))?;
            update(ctx, ty, id, data)
        }
        "delete" => {
            args::refuse_unused(a, action, &["type", "id"])?;
            let id = args::need_id(a, "id", "for delete")?;
            delete(ctx, ty, id)
        }
        "batch_delete" => {
            args::refuse_unused(a, action, &["type", "ids"])?;
            let ids = args::need_ids(a, "ids", "for batch_delete")?;
            batch_delete(ctx, ty, &ids)
        }
        "lock_month" | "unlock_month" => {
            args::refuse_unused(a, action, &["type", "id", "ids", "user_scope", "month"])?;
            lock(ctx, a, action == "lock_month")
        }
        "set_preferences" => {
            args::refuse_unused(a, action, &["type", "id", "preferences"])?;
            set_preferences(ctx, a)
        }
        other => Err(ToolError::Invalid(format!(
            "unknown action '{}'",
            text::safe(other)
        ))),
    }
}

/// The type × action pairs Kimai has no endpoint for, with what to do instead.
fn unsupported(ty: Type, action: &str) -> Option<String> {
    let user_only = ["lock_month", "unlock_month", "set_preferences"];
    if user_only.contains(&action) && ty != Type::User {
        return Some(format!(
            "action '{action}' is only available for type=user (it acts on a user's work contract)"
        ));
    }
    Some(
        match (ty, action) {
            (Type::Tag, "get") => {
                "Kimai cannot read a single tag: use action=list with filters.name to find it"
            }
            (Type::Tag, "update") => {
                "Kimai cannot update tags: delete the tag and create it again (records lose the old tag)"
            }
            (Type::Holiday, "get") => {
                "Kimai cannot read a single public holiday: use action=list with filters.begin/end"
            }
            (Type::Holiday, "create") => {
                "public holidays cannot be created through the API: an administrator adds them in Kimai (Working hours plugin settings)"
            }
            (Type::Holiday, "update") => {
                "public holidays cannot be updated through the API: delete the holiday and have an administrator add it again in Kimai"
            }
            (Type::Invoice, "create") => {
                "invoices cannot be created through the API: create them in Kimai's invoice screen; here you can list, read, update (Kimai 2.68+) and delete (2.66+) them"
            }
            (Type::User, "delete" | "batch_delete") => {
                "Kimai users cannot be deleted through the API: deactivate the user with action=update, data={\"enabled\": false}"
            }
            _ => return None,
        }
        .to_string(),
    )
}

/// Kimai's "This form should not contain extra fields." does not name the field; say which of
/// the fields sent exist only with a permission, setting or newer Kimai (contract §2.4).
fn extra_fields(e: ToolError, ty: Type, sent: &Map<String, Value>, create: bool) -> ToolError {
    let ToolError::Kimai(k) = &e else { return e };
    let text = super::kimai_error_text(k);
    if k.status() != Some(400) || !text.contains("extra fields") {
        return e;
    }
    let suspects: Vec<&str> = sent
        .keys()
        .map(String::as_str)
        .filter(|f| match *f {
            "budget" | "timeBudget" | "budgetType" => true,
            "teams" => !create,
            "address" | "lockedUntil" | "avatar" | "billable" => true,
            "project" => ty == Type::Activity && !create,
            "enabled" | "supervisor" | "roles" | "systemAccount" | "requiresPasswordReset" => {
                ty == Type::User
            }
            _ => false,
        })
        .collect();
    let why = if suspects.is_empty() {
        "one of the fields sent is not on Kimai's form for this token".to_string()
    } else {
        format!(
            "likely {}: these exist only with a permission or setting (budget fields need the budget/time permission; teams only on create; the legacy address only if the customer has one; lockedUntil needs Kimai 2.66; project cannot be set on a global activity; enabled only for other users; supervisor and roles need a super admin; avatar needs avatar URLs enabled)",
            suspects.join(", ")
        )
    };
    ToolError::Failed(format!(
        "{text}
Kimai rejected a field it does not offer this token: {why}. Send the request again without it."
    ))
}

/// A plain 404 from a WorkContract plugin endpoint: production Kimai answers an unknown route
/// exactly like an unknown entity, so say both.
fn plugin_404(e: ToolError, or_else: &str) -> ToolError {
    match e {
        ToolError::Kimai(k) if k.status() == Some(404) => ToolError::Failed(format!(
            "Kimai answered 404 ({k}): either the WorkContract (Working hours) plugin is not installed (check config type=plugins) or the request names {or_else}"
        )),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// list

/// Which filters apply to which type.
fn applies(ty: Type, filter: &str) -> bool {
    use Type::*;
    match filter {
        "visible" | "order_by" | "order" => matches!(ty, Project | Activity | Customer | User),
        "term" => matches!(ty, Project | Activity | Customer | User | Tag),
        "customer" | "global_activities" | "ignore_dates" => ty == Project,
        "customers" => matches!(ty, Project | Invoice),
        "project" | "projects" | "globals" => ty == Activity,
        "name" => ty == Tag,
        "group" => ty == Holiday,
        "page" | "size" | "status" => ty == Invoice,
        "begin" | "end" => matches!(ty, Project | Invoice | Holiday),
        "full" => ty == Customer,
        _ => false,
    }
}

fn order_by_allowed(ty: Type) -> &'static [&'static str] {
    match ty {
        Type::Project => &["id", "name", "customer"],
        Type::Activity => &["id", "name", "project"],
        Type::Customer => &["id", "name"],
        Type::User => &["id", "username", "alias", "email"],
        _ => &[],
    }
}

fn filter_local(
    f: &Map<String, Value>,
    key: &str,
    edge: time::DayEdge,
) -> Result<Option<time::Local>, ToolError> {
    match args::string(f, key) {
        None => Ok(None),
        Some(s) => time::parse_local(&format!("filters.{key}"), s, edge)
            .map(Some)
            .map_err(ToolError::Invalid),
    }
}

/// Builds the list request for `ty` from the filters that apply; returns it with the names of
/// the filters that were ignored.
fn list_request(ty: Type, f: &Map<String, Value>) -> Result<(Request, Vec<String>), ToolError> {
    let mut ignored: Vec<String> = f.keys().filter(|k| !applies(ty, k)).cloned().collect();
    ignored.sort();
    let has = |k: &str| applies(ty, k) && f.get(k).is_some_and(|v| !v.is_null());
    let mut req = Request::get(ty.path());
    if ty == Type::Tag {
        let name = args::string(f, "name");
        let term = args::string(f, "term");
        if let (Some(n), Some(t)) = (name, term)
            && n != t
        {
            return Err(ToolError::Invalid(
                "filters.name and filters.term both name the tag to find; send only one".into(),
            ));
        }
        // GET /tags/find answers [] without a name (§5.9); without one the plain name list of
        // GET /tags is the only way to see every tag.
        return Ok(match name.or(term) {
            Some(n) => (Request::get("/tags/find").query("name", n), ignored),
            None => (Request::get("/tags"), ignored),
        });
    }
    if has("visible") {
        req = req.query("visible", args::int(f, "visible").unwrap_or(1));
    }
    if has("term")
        && let Some(t) = args::string(f, "term")
    {
        req = req.query("term", t);
    }
    if has("order_by") {
        let o = args::string(f, "order_by").unwrap_or("");
        let allowed = order_by_allowed(ty);
        if !allowed.contains(&o) {
            return Err(ToolError::Invalid(format!(
                "invalid value for 'filters.order_by' ({}): for type={} use one of {}",
                text::quote(o),
                ty.name(),
                allowed.join(", ")
            )));
        }
        req = req.query("orderBy", o);
    }
    if has("order")
        && let Some(o) = args::string(f, "order")
    {
        req = req.query("order", o);
    }
    if has("customer")
        && let Some(c) = args::int(f, "customer")
    {
        req = req.query("customer", c);
    }
    if has("customers") {
        req = req.query_list("customers", args::ids(f, "customers"));
    }
    if has("project")
        && let Some(p) = args::int(f, "project")
    {
        req = req.query("project", p);
    }
    if has("projects") {
        req = req.query_list("projects", args::ids(f, "projects"));
    }
    if has("globals")
        && let Some(g) = args::string(f, "globals")
    {
        req = req.query("globals", g);
    }
    if has("global_activities")
        && let Some(g) = args::string(f, "global_activities")
    {
        req = req.query("globalActivities", g);
    }
    if has("ignore_dates") && args::boolean(f, "ignore_dates") == Some(true) {
        req = req.query("ignoreDates", 1);
    }
    if has("full") && args::boolean(f, "full") == Some(true) {
        req = req.query("full", 1);
    }
    if has("group")
        && let Some(g) = args::int(f, "group")
    {
        req = req.query("group", g);
    }
    let begin = if has("begin") {
        filter_local(f, "begin", time::DayEdge::Start)?
    } else {
        None
    };
    let end = if has("end") {
        filter_local(f, "end", time::DayEdge::End)?
    } else {
        None
    };
    if let (Some(b), Some(e)) = (begin, end)
        && e < b
    {
        return Err(ToolError::Invalid(
            "filters.end lies before filters.begin".into(),
        ));
    }
    match ty {
        // Kimai's project list takes `start`/`end` days and keeps projects whose own period
        // overlaps them (§5.4).
        Type::Project => {
            if let Some(b) = begin {
                req = req.query("start", b.date);
            }
            if let Some(e) = end {
                req = req.query("end", e.date);
            }
        }
        _ => {
            if let Some(b) = begin {
                req = req.query("begin", b);
            }
            if let Some(e) = end {
                req = req.query("end", e);
            }
        }
    }
    if ty == Type::Invoice {
        if has("status") {
            let status: Vec<String> = f
                .get("status")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            req = req.query_list("status", status);
        }
        req = req
            .query("page", args::int(f, "page").unwrap_or(1))
            .query("size", args::int(f, "size").unwrap_or(50));
    }
    Ok((req, ignored))
}

fn list(
    ctx: &Context,
    ty: Type,
    filters: Option<&Map<String, Value>>,
) -> Result<Output, ToolError> {
    let empty = Map::new();
    let f = filters.unwrap_or(&empty);
    let (req, ignored) = list_request(ty, f)?;
    let tag_names_only = ty == Type::Tag && req.path == "/tags";
    let resp = ctx.call(&req).map_err(|e| match ty {
        Type::Invoice => needs(e, "listing invoices", "Kimai 2.22 or later"),
        Type::Holiday => plugin_404(
            needs(
                e,
                "listing public holidays",
                "the WorkContract (Working hours) plugin",
            ),
            "an unknown holiday group",
        ),
        Type::Tag => needs(e, "finding tags", "Kimai 2.18 or later"),
        _ => e,
    })?;
    let items: Vec<Value> = resp.body.as_array().cloned().unwrap_or_default();
    let mut out = if tag_names_only {
        if items.is_empty() {
            "No tags found.".to_string()
        } else {
            let names: Vec<String> = items.iter().map(render::reference).collect();
            format!(
                "{} tags: {}\nNote: pass filters.name to see the tags' ids and colors.",
                names.len(),
                names.join(", ")
            )
        }
    } else if ty == Type::User {
        if items.is_empty() {
            "No users found.".to_string()
        } else {
            let blocks: Vec<String> = items.iter().map(render_user).collect();
            format!("{} users:\n\n{}", blocks.len(), blocks.join("\n\n"))
        }
    } else {
        let hint = match ty {
            Type::Project | Type::Activity | Type::Customer if !f.contains_key("visible") => {
                "Kimai lists only visible ones by default; filters.visible=3 shows hidden ones too."
            }
            _ => "",
        };
        render::entity_list(ty.kind(), ty.plural(), &items, hint)
    };
    if ty == Type::Project
        && args::boolean(f, "ignore_dates") != Some(true)
        && !f.contains_key("begin")
        && !f.contains_key("end")
    {
        out.push_str("\nNote: Kimai lists only projects running today (finished and not yet started projects are hidden); set filters.ignore_dates=true to include them.");
    }
    if let Some(p) = resp.page {
        out.push_str(&format!(
            "\nPage {} of {} ({} {} in total, {} per page).",
            p.page,
            p.total_pages,
            p.total_count,
            ty.plural(),
            p.per_page
        ));
    }
    if !ignored.is_empty() {
        out.push_str(&format!(
            "\nNote: ignored filter(s) that do not apply to type={}: {}",
            ty.name(),
            ignored.join(", ")
        ));
    }
    Ok(Output::text(out))
}

// ---------------------------------------------------------------------------------------------
// get, create, update, delete

fn show(ty: Type, v: &Value) -> String {
    match ty {
        Type::User => render_user(v),
        _ => render::entity(ty.kind(), v, true),
    }
}

fn get(ctx: &Context, ty: Type, id: i64) -> Result<Output, ToolError> {
    let body = ctx
        .get(&format!("{}/{id}", ty.path()))
        .map_err(|e| match ty {
            Type::Invoice => needs(e, "reading invoices", "Kimai 2.22 or later"),
            _ => e,
        })?;
    Ok(Output::text(format!(
        "{} {id}\n{}",
        capitalize(ty.name()),
        show(ty, &body)
    )))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A date for a project body: `YYYY-MM-DD` on create, `YYYY-MM-DDTHH:MM:SS` on update
/// (kimai/kimai#4132). Accepts either form from the caller.
fn project_date(key: &str, v: &Value, create: bool) -> Result<Value, ToolError> {
    let s = v.as_str().unwrap_or("");
    if s.trim().is_empty() {
        // Clearing a date: an empty value is what Kimai's form reads as "no date".
        return Ok(json!(""));
    }
    let edge = if key == "end" {
        time::DayEdge::End
    } else {
        time::DayEdge::Start
    };
    let local = time::parse_local(&format!("data.{key}"), s, edge).map_err(ToolError::Invalid)?;
    Ok(if create {
        json!(local.date.to_string())
    } else {
        json!(local.to_string())
    })
}

/// The body Kimai gets: exactly the caller's fields, with durations, dates and (on create)
/// the booleans Kimai would otherwise turn into false converted.
fn body(
    ty: Type,
    data: &Map<String, Value>,
    create: bool,
) -> Result<Map<String, Value>, ToolError> {
    let mut out = Map::new();
    for (k, v) in data {
        let v = match (ty, k.as_str()) {
            (_, "timeBudget") => match v {
                Value::String(s) if s.trim().is_empty() => json!(""),
                other => json!(time::hms(
                    time::parse_duration("data.timeBudget", other).map_err(ToolError::Invalid)?
                )),
            },
            (Type::Project, "start" | "end" | "orderDate") => project_date(k, v, create)?,
            (Type::Project, "lockedUntil") => match v.as_str() {
                Some(s) if s.trim().is_empty() => json!(""),
                Some(s) => json!(
                    time::parse_local("data.lockedUntil", s, time::DayEdge::End)
                        .map_err(ToolError::Invalid)?
                        .to_string()
                ),
                None => v.clone(),
            },
            (Type::Team, "members") => {
                // §7.9: an omitted `teamlead` would be false anyway; sent explicitly so that
                // the request says what it means.
                let members: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        json!({
                            "user": m.get("user").cloned().unwrap_or(Value::Null),
                            "teamlead": m.get("teamlead").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect();
                Value::Array(members)
            }
            (Type::Invoice, "paymentDate") => {
                let s = v.as_str().unwrap_or("");
                if !s.is_empty() && time::parse_date(s).is_none() {
                    return Err(ToolError::Invalid(format!(
                        "'data.paymentDate' must be a date YYYY-MM-DD, got {}",
                        text::quote(s)
                    )));
                }
                v.clone()
            }
            (_, "metaFields") => {
                // Custom fields go through the `/meta` endpoints, not the entity form.
                continue;
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    if create {
        // POST /users, /tags submit the complete form: an omitted boolean becomes false, which
        // would create a disabled user or an invisible tag (§7.9).
        match ty {
            Type::User => {
                out.entry("enabled").or_insert(json!(true));
            }
            Type::Tag => {
                out.entry("visible").or_insert(json!(true));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Fields a create must have, checked before any request.
fn require(ty: Type, data: &Map<String, Value>) -> Result<(), ToolError> {
    let need: &[&str] = match ty {
        Type::Customer => &["name", "country", "currency", "timezone"],
        Type::Project => &["name", "customer"],
        Type::Activity | Type::Tag => &["name"],
        Type::Team => &["name", "members"],
        Type::User => &[
            "username",
            "email",
            "language",
            "locale",
            "timezone",
            "plainPassword",
        ],
        _ => &[],
    };
    let missing: Vec<&str> = need
        .iter()
        .copied()
        .filter(|k| match data.get(*k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        })
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::Invalid(format!(
            "creating a {} needs data.{}",
            ty.name(),
            missing.join(", data.")
        )));
    }
    if ty == Type::Team {
        check_team_lead(data)?;
    }
    if ty == Type::User
        && let Some(p) = args::string(data, "plainPassword")
        && p.chars().count() < 8
    {
        return Err(ToolError::Invalid(
            "'data.plainPassword' must have at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn check_team_lead(data: &Map<String, Value>) -> Result<(), ToolError> {
    if let Some(members) = data.get("members").and_then(Value::as_array) {
        let lead = members
            .iter()
            .any(|m| m.get("teamlead").and_then(Value::as_bool) == Some(true));
        if !lead {
            return Err(ToolError::Invalid(
                "'data.members' needs at least one member with \"teamlead\": true (Kimai requires a team lead)".into(),
            ));
        }
    }
    Ok(())
}

/// Sets the caller's custom fields after a create/update (one `PATCH …/meta` per field, in
/// order); returns the entity as the last write left it.
fn write_meta(
    ctx: &Context,
    ty: Type,
    id: i64,
    data: &Map<String, Value>,
    entity: Value,
) -> Result<Value, ToolError> {
    let Some(fields) = data.get("metaFields").and_then(Value::as_array) else {
        return Ok(entity);
    };
    let mut last = entity;
    for m in fields {
        let req = Request::patch(
            format!("{}/{id}/meta", ty.path()),
            json!({"name": m.get("name"), "value": m.get("value")}),
        );
        last = ctx.call(&req)?.body;
    }
    Ok(last)
}

fn create(ctx: &Context, ty: Type, data: &Map<String, Value>) -> Result<Output, ToolError> {
    require(ty, data)?;
    let body = body(ty, data, true)?;
    let created = ctx
        .call(&Request::post(ty.path(), Value::Object(body.clone())))
        .map_err(|e| extra_fields(e, ty, &body, true))?
        .body;
    let id = created.get("id").and_then(args::as_int);
    let created = match (id, data.contains_key("metaFields")) {
        (Some(id), true) => write_meta(ctx, ty, id, data, created).map_err(|e| {
            ToolError::Failed(format!(
                "the {} was created (ID {id}) but setting its custom fields failed: {}",
                ty.name(),
                e.message()
            ))
        })?,
        _ => created,
    };
    let mut out = format!("Created {}\n{}", ty.name(), show(ty, &created));
    if ty == Type::User && !data.contains_key("enabled") {
        out.push_str("\nNote: the user was created enabled (Kimai would disable a user created without 'enabled').");
    }
    if ty == Type::Tag && !data.contains_key("visible") {
        out.push_str("\nNote: the tag was created visible (Kimai would hide a tag created without 'visible').");
    }
    Ok(Output::text(out))
}

fn update(
    ctx: &Context,
    ty: Type,
    id: i64,
    data: &Map<String, Value>,
) -> Result<Output, ToolError> {
    if data.is_empty() {
        return Err(ToolError::Invalid(
            "'data' is empty: name at least one field to change".into(),
        ));
    }
    if ty == Type::Team {
        check_team_lead(data)?;
    }
    let body = body(ty, data, false)?;
    let path = format!("{}/{id}", ty.path());
    let updated = if body.is_empty() {
        // Only custom fields: nothing for the entity form.
        ctx.get(&path)?
    } else {
        ctx.call(&Request::patch(path, Value::Object(body.clone())))
            .map_err(|e| match ty {
                Type::Invoice => needs(e, "updating an invoice", "Kimai 2.68 or later"),
                _ => extra_fields(e, ty, &body, false),
            })?
            .body
    };
    let updated = write_meta(ctx, ty, id, data, updated)?;
    let mut out = format!("Updated {}\n{}", ty.name(), show(ty, &updated));
    if ty == Type::Team && data.contains_key("members") {
        out.push_str("\nNote: the member list was replaced by the one sent.");
    }
    Ok(Output::text(out))
}

fn delete_one(ctx: &Context, ty: Type, id: i64) -> Result<(), ToolError> {
    ctx.call(&Request::delete(format!("{}/{id}", ty.path())))
        .map_err(|e| match ty {
            Type::Invoice => needs(e, "deleting an invoice", "Kimai 2.66 or later"),
            Type::Customer | Type::Project | Type::Activity => needs(
                e,
                "deleting customers, projects and activities",
                "Kimai 2.25 or later",
            ),
            Type::Holiday => needs(
                e,
                "deleting public holidays",
                "the WorkContract (Working hours) plugin",
            ),
            _ => e,
        })?;
    Ok(())
}

fn cascade_note(ty: Type) -> &'static str {
    match ty {
        Type::Customer => " (Kimai also deleted its projects, activities and timesheets)",
        Type::Project => " (Kimai also deleted its activities and timesheets)",
        Type::Activity => " (Kimai also deleted its timesheets)",
        Type::Tag => " (it was removed from every record)",
        _ => "",
    }
}

fn delete(ctx: &Context, ty: Type, id: i64) -> Result<Output, ToolError> {
    delete_one(ctx, ty, id)?;
    Ok(Output::text(format!(
        "Deleted {} {id}{}.",
        ty.name(),
        cascade_note(ty)
    )))
}

fn batch_delete(ctx: &Context, ty: Type, ids: &[i64]) -> Result<Output, ToolError> {
    let b = fanout::batch(ctx, ids, "", |id| delete_one(ctx, ty, id).map(|()| true))?;
    let mut out = format!("Batch delete: {}", b.summary("deleted", ty.plural()));
    if !b.done.is_empty() {
        out.push_str(cascade_note(ty));
    }
    Ok(Output::text(out))
}

// ---------------------------------------------------------------------------------------------
// User-only actions

/// Preference names users know by other words (reference §1.3).
fn canonical_preference(name: &str) -> &str {
    match name {
        "vacation_days" | "annual_leave" | "vacation" => "holidays",
        "weekly_hours" => "hours_per_week",
        "contract_type" => "work_contract_type",
        other => other,
    }
}

fn set_preferences(ctx: &Context, a: &Map<String, Value>) -> Result<Output, ToolError> {
    let id = args::need_id(a, "id", "for set_preferences (the user id)")?;
    let prefs: Vec<(String, Value)> = a
        .get("preferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.trim();
            (!name.is_empty()).then(|| {
                (
                    canonical_preference(name).to_string(),
                    p.get("value").cloned().unwrap_or(json!("")),
                )
            })
        })
        .collect();
    if prefs.is_empty() {
        return Err(ToolError::Invalid(
            "'preferences' must list at least one {name, value} for set_preferences".into(),
        ));
    }
    let body: Vec<Value> = prefs
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let names: Vec<&str> = prefs.iter().map(|(n, _)| n.as_str()).collect();
    let resp = ctx.call(&Request::patch(
        format!("/users/{id}/preferences"),
        Value::Array(body),
    ));
    let user = match resp {
        Ok(r) => r.body,
        Err(ToolError::Kimai(k)) if k.is_missing_route() => {
            return Err(needs(
                ToolError::Kimai(k),
                "setting user preferences",
                "Kimai 2.40 or later",
            ));
        }
        Err(ToolError::Kimai(k)) if k.status() == Some(404) => {
            return Err(ToolError::Failed(format!(
                "Kimai does not know user {id} or one of the preferences {} ({k}). Work-contract preferences (holidays, work_monday … work_sunday, work_contract_type, public_holiday_group, hours_per_week) exist only with the WorkContract plugin and are set up automatically since Kimai 2.61; on older versions open the user's contract page in Kimai once (profile → contract).",
                names.join(", ")
            )));
        }
        Err(e) => return Err(e),
    };
    let shown: Vec<String> = prefs
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                text::safe(n),
                match v {
                    Value::String(s) if s.is_empty() => "(empty)".into(),
                    Value::String(s) => text::safe(s),
                    other => other.to_string(),
                }
            )
        })
        .collect();
    Ok(Output::text(format!(
        "Updated preferences of user {id}: {}\n{}",
        shown.join(", "),
        render_user(&user)
    )))
}

fn lock(ctx: &Context, a: &Map<String, Value>, lock: bool) -> Result<Output, ToolError> {
    let verb = if lock { "lock" } else { "unlock" };
    let month = args::need_string(a, "month", &format!("for {verb}_month (YYYY-MM-DD)"))?;
    let day = time::parse_date(month).ok_or_else(|| {
        ToolError::Invalid(format!(
            "'month' must be a date YYYY-MM-DD (any day of the month), got {}",
            text::quote(month)
        ))
    })?;
    let month = day.to_string();
    let mut note = None;
    let targets: Vec<i64> = if args::string(a, "user_scope") == Some("all") {
        let d = users::discover(ctx)?;
        note = d.note();
        // Deactivated accounts record no time: their months need no lock.
        d.users.iter().filter(|u| u.enabled).map(|u| u.id).collect()
    } else if a.contains_key("ids") {
        args::need_ids(a, "ids", &format!("for {verb}_month"))?
    } else if a.contains_key("id") {
        vec![args::need_id(a, "id", &format!("for {verb}_month"))?]
    } else {
        return Err(ToolError::Invalid(format!(
            "'id', 'ids' or 'user_scope'=\"all\" is required for {verb}_month"
        )));
    };
    if targets.is_empty() {
        return Err(ToolError::Failed(
            "no users found that this token can see".into(),
        ));
    }
    let path = if lock { "lock" } else { "unlock" };
    let one = |id: i64| -> Result<bool, ToolError> {
        ctx.call(&Request::delete(format!(
            "/work-contract/{path}/{id}/{month}"
        )))
        .map_err(|e| {
            needs(
                e,
                "locking and unlocking months",
                "the WorkContract (Working hours) plugin",
            )
        })?;
        Ok(true)
    };
    let scope = if lock {
        month[..7].to_string()
    } else {
        format!("{} and the later months of that year", &month[..7])
    };
    if targets.len() == 1 {
        one(targets[0])?;
        return Ok(Output::text(format!(
            "{}ed {scope} for user {}.",
            capitalize(verb),
            targets[0]
        )));
    }
    let b = fanout::batch(ctx, &targets, "", one)?;
    let mut out = format!(
        "{}ed {scope}: {}",
        capitalize(verb),
        b.summary(&format!("{verb}ed"), "users")
    );
    if let Some(n) = note {
        out.push('\n');
        out.push_str(&n);
    }
    Ok(Output::text(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn time_budget_goes_out_as_a_duration_and_digits_are_refused() {
        let out = body(Type::Project, &m(json!({"timeBudget": 7200})), true).unwrap();
        assert_eq!(out["timeBudget"], "2:00:00");
        let out = body(Type::Project, &m(json!({"timeBudget": "1.5h"})), true).unwrap();
        assert_eq!(out["timeBudget"], "1:30:00");
        let out = body(Type::Customer, &m(json!({"timeBudget": ""})), false).unwrap();
        assert_eq!(out["timeBudget"], "");
        let e = body(Type::Activity, &m(json!({"timeBudget": "7200"})), true).unwrap_err();
        assert!(matches!(e, ToolError::Invalid(m) if m.contains("ambiguous")));
    }

    #[test]
    fn project_dates_differ_between_create_and_update() {
        let d = m(
            json!({"start": "2026-03-01", "end": "2026-03-31T12:00:00", "orderDate": "2026-02-15"}),
        );
        let c = body(Type::Project, &d, true).unwrap();
        assert_eq!(c["start"], "2026-03-01");
        assert_eq!(c["end"], "2026-03-31");
        let u = body(Type::Project, &d, false).unwrap();
        assert_eq!(u["start"], "2026-03-01T00:00:00");
        assert_eq!(u["end"], "2026-03-31T12:00:00");
        assert_eq!(u["orderDate"], "2026-02-15T00:00:00");
        assert!(body(Type::Project, &m(json!({"start": "March"})), true).is_err());
    }

    #[test]
    fn only_caller_fields_are_sent_except_the_booleans_kimai_would_flip() {
        let out = body(
            Type::Customer,
            &m(json!({"name": "A", "metaFields": [{"name": "x", "value": "y"}]})),
            false,
        )
        .unwrap();
        assert_eq!(Value::Object(out), json!({"name": "A"}));
        let out = body(Type::Tag, &m(json!({"name": "t"})), true).unwrap();
        assert_eq!(Value::Object(out), json!({"name": "t", "visible": true}));
        let out = body(
            Type::Team,
            &m(json!({"name": "T", "members": [{"user": 3}]})),
            true,
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"user": 3, "teamlead": false}]));
    }

    #[test]
    fn filters_apply_per_type() {
        let f = m(
            json!({"visible": 3, "order_by": "customer", "ignore_dates": true, "status": ["paid"], "begin": "2026-01-01"}),
        );
        let (r, ignored) = list_request(Type::Project, &f).unwrap();
        assert_eq!(
            r.query,
            vec![
                ("visible".into(), "3".into()),
                ("orderBy".into(), "customer".into()),
                ("ignoreDates".into(), "1".into()),
                ("start".into(), "2026-01-01".into())
            ]
        );
        assert_eq!(ignored, vec!["status".to_string()]);
        let e = list_request(Type::Customer, &m(json!({"order_by": "customer"}))).unwrap_err();
        assert!(matches!(e, ToolError::Invalid(m) if m.contains("id, name")));
        let (r, _) = list_request(Type::Invoice, &m(json!({"begin": "2026-01-01", "end": "2026-01-31", "status": ["new", "paid"], "customers": [1]}))).unwrap();
        assert_eq!(
            r.query,
            vec![
                ("customers[]".into(), "1".into()),
                ("begin".into(), "2026-01-01T00:00:00".into()),
                ("end".into(), "2026-01-31T23:59:59".into()),
                ("status[]".into(), "new".into()),
                ("status[]".into(), "paid".into()),
                ("page".into(), "1".into()),
                ("size".into(), "50".into())
            ]
        );
        assert!(list_request(Type::Tag, &m(json!({"name": "a", "term": "b"}))).is_err());
    }

    #[test]
    fn preference_aliases() {
        assert_eq!(canonical_preference("vacation_days"), "holidays");
        assert_eq!(canonical_preference("weekly_hours"), "hours_per_week");
        assert_eq!(canonical_preference("contract_type"), "work_contract_type");
        assert_eq!(canonical_preference("hourly_rate"), "hourly_rate");
    }
}
