//! The overlay that writes the stored extra fields of [`Extra`](super::store::Extra) back over
//! the JSON shapes of `json` (entity views of users, customers, projects and activities).

use serde_json::{Value, json};

use crate::sim::data::State;

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
