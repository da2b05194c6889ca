//! Tags: create and delete (§5.9).

use super::form::{Form, TEAMLEAD, at_least, check_name, next_id, read_color};
use crate::sim::data::{State, Tag, User};
use crate::sim::json as js;
use crate::sim::wire::{Answer, Req, Res, forbidden, not_found};

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
