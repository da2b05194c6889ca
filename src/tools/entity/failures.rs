//! Kimai failures `entity` explains: a form that rejects a field it does not offer this token
//! (Kimai does not say which), and a 404 from a WorkContract plugin endpoint.

use super::types::Type;
use crate::tools::{ToolError, kimai_error_text};
use serde_json::{Map, Value};

/// Kimai's "This form should not contain extra fields." does not name the field; say which of
/// the fields sent exist only with a permission, setting or newer Kimai (contract §2.4).
pub(super) fn extra_fields(
    e: ToolError,
    ty: Type,
    sent: &Map<String, Value>,
    create: bool,
) -> ToolError {
    let ToolError::Kimai(k) = &e else { return e };
    let text = kimai_error_text(k);
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
pub(super) fn plugin_404(e: ToolError, or_else: &str) -> ToolError {
    match e {
        ToolError::Kimai(k) if k.status() == Some(404) => ToolError::Failed(format!(
            "Kimai answered 404 ({k}): either the WorkContract (Working hours) plugin is not installed (check config type=plugins) or the request names {or_else}"
        )),
        other => other,
    }
}
