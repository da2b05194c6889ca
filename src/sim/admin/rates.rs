//! Rates of customers, projects and activities: list, add, delete (§5.6).

use serde_json::{Value, json};

use super::entities::{exists, may_edit};
use super::form::Form;
use crate::sim::data::{self, RateOn, State, User};
use crate::sim::json as js;
use crate::sim::wire::{Answer, Req, Res, bad, forbidden, not_found};
use crate::sim::writes::INVALID_CHOICE;

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
