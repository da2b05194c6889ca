//! The WorkContract (Working hours) plugin: whether a 404 from one of its routes means the
//! plugin is missing. Kimai's 404 is ambiguous there (a missing plugin, an unknown absence,
//! user or language all answer it), so a 404 is checked against `GET /absences/types`, which
//! exists exactly when the plugin does. Used by `absence` and `calendar`.

use crate::kimai::Request;
use crate::tools::{Context, ToolError};

/// The message for a Kimai without the WorkContract plugin.
pub const PLUGIN_MISSING: &str = "the WorkContract plugin is not installed on this Kimai (it \
    answers 404 on /api/absences/types): absences, public holidays and month locks need that \
    plugin. This does not mean there are no absences.";

/// Whether `e` is Kimai's 404.
pub fn is_404(e: &ToolError) -> bool {
    matches!(e, ToolError::Kimai(k) if k.status() == Some(404))
}

/// Turns a 404 from a plugin route into "plugin missing" when `/absences/types` answers 404
/// too; any other error (or a 404 while the plugin is there) is returned unchanged.
pub fn explain_404(ctx: &Context, e: ToolError) -> ToolError {
    if !is_404(&e) {
        return e;
    }
    match ctx.call(&Request::get("/absences/types")) {
        Err(probe) if is_404(&probe) => ToolError::Failed(PLUGIN_MISSING.into()),
        _ => e,
    }
}
