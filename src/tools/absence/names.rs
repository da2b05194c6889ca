//! The absence types with their English labels, and how users and types are named in answers
//! (every Kimai string made safe).

use crate::tools::text;
use crate::tools::users::Found;

/// Absence types and their English labels (the plugin's `AbsenceForm.type`).
pub const TYPES: &[(&str, &str)] = &[
    ("holiday", "Vacation"),
    ("time_off", "Time off"),
    ("sickness", "Sickness"),
    ("sickness_child", "Sick child"),
    ("other", "Other"),
    ("parental", "Parental leave"),
    ("unpaid_vacation", "Unpaid vacation"),
];

/// `Name (ID n)`.
pub(super) fn who(u: &Found) -> String {
    format!("{} (ID {})", text::safe(&u.display), u.id)
}

/// The English label of an absence type (an unknown type is shown as sent, made safe).
pub(super) fn label(kind: &str) -> String {
    TYPES
        .iter()
        .find(|t| t.0 == kind)
        .map(|t| t.1.to_string())
        .unwrap_or_else(|| text::safe(kind))
}
