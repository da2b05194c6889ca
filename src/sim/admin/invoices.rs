//! Invoices: list, get and custom fields (§5.10, §6.7). Kimai 2.65 has no invoice PATCH
//! (2.68) or DELETE (2.66): those answer 405 in the router.

use serde_json::{Value, json};

use super::entities::set_meta;
use super::form::{TEAMLEAD, at_least};
use super::overlay::overlay;
use super::store::Invoice;
use super::users::name_value_items;
use crate::sim::data::{State, User};
use crate::sim::json as js;
use crate::sim::time::{self, DAY, Tz};
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, not_found};

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
