//! What the administration endpoints store beyond the entity structs of `data` ([`Extra`]: wire
//! fields, custom-field definitions and values, rate ids, comments, invoices, preferences, user
//! flags) and its seed. Plain data: it must not know `data::State`, so `data` can hold it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::sim::time::DAY;

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
#[derive(Clone, Debug, Default)]
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
