//! Administration endpoints of the simulated Kimai: customer/project/activity create, update,
//! delete and custom fields; rates; comments; users (create, update, preferences); teams with
//! members and access grants; tags; invoices (list, get, custom fields). Contract §5.3–§5.10,
//! §6, §7.7, §7.9, §11.
//!
//! One file per resource; `store` holds the state these endpoints add ([`Extra`](store::Extra):
//! wire fields the entity structs of `data` do not model, custom-field definitions and values,
//! rate ids, comments, invoices, stored preferences), `overlay` puts those fields back into the
//! JSON shapes of `json`, and `form` holds the body and field helpers, which reuse the form
//! error shape of `writes` (§2.2). Order of checks as everywhere in the simulator: entity load
//! (404) before the voter (403) before the form (400). Runs on worker threads with the state
//! mutex held by `api::handle`; no I/O under the lock.
//!
//! The simulator speaks Kimai 2.65: `PATCH /api/invoices/{id}` (2.68) and
//! `DELETE /api/invoices/{id}` (2.66) answer 405, and rate fields are visible to everyone who may
//! read rates. Project `lockedUntil` (Kimai's `project-lockdown` work, 2.66 by the Python server's
//! count) is simulated: a day, `YYYY-MM-DD` on POST and a date-time on PATCH, like the other
//! project dates.
//!
//! `data` reaches `store` and `json` reaches `overlay` by their own paths, not through this
//! file, so that neither imports the handlers (which import them).

mod comments;
mod entities;
mod form;
mod invoices;
pub(super) mod overlay;
mod rates;
pub(super) mod store;
mod tags;
mod teams;
mod users;

pub use comments::comments;
pub use entities::{create, delete, meta, update};
pub use invoices::{invoice, invoice_custom_fields, invoice_list};
pub use rates::{delete_rate, rates};
pub use tags::{create_tag, delete_tag};
pub use teams::{create_team, delete_team, team_link, update_team};
pub use users::{create_user, preferences, update_user};
