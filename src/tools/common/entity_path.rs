//! The Kimai collection an `entity` argument names (`customer` → `/customers`, …), for the
//! tools that act on one record of a chosen kind: `rate`, `comment` and `meta`.

use crate::tools::ToolError;
use serde_json::{Map, Value};

/// `/customers` etc. for the `entity` argument (the schema checked the enum).
pub fn entity_path(args: &Map<String, Value>) -> Result<&'static str, ToolError> {
    match args.get("entity").and_then(Value::as_str) {
        Some("customer") => Ok("/customers"),
        Some("project") => Ok("/projects"),
        Some("activity") => Ok("/activities"),
        Some("timesheet") => Ok("/timesheets"),
        Some("invoice") => Ok("/invoices"),
        _ => Err(ToolError::Invalid("'entity' is required".into())),
    }
}
