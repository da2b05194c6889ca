//! Comments on customers and projects: list, add, pin, delete (§5.3, §5.6; Kimai 2.57+).

use serde_json::{Value, json};

use super::entities::exists;
use super::form::{ADMIN, Form, TEAMLEAD, at_least};
use super::store::Comment;
use crate::sim::data::{State, User};
use crate::sim::json as js;
use crate::sim::time::{self, Tz};
use crate::sim::wire::{Answer, Req, Res, forbidden, not_found};

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
