//! Day ranges of the WorkContract plugin's lists: `filters.begin` / `filters.end` read as days
//! (a date-time is cut to its day) and sent as the plugin's full local `YYYY-MM-DDTHH:MM:SS`
//! bounds (contract §9.1). Used by `absence` and `calendar`.

use crate::kimai::Request;
use crate::tools::ToolError;
use crate::tools::args::{self, Args};
use crate::tools::time::{self, Date, DayEdge};

/// A date argument: `YYYY-MM-DD` (a date-time is cut to its day).
pub fn date_arg(field: &str, s: &str) -> Result<Date, ToolError> {
    time::parse_local(field, s, DayEdge::Start)
        .map(|l| l.date)
        .map_err(ToolError::Invalid)
}

/// `filters.begin` / `filters.end` as days; begin after end is refused.
pub fn range(filters: Option<&Args>) -> Result<(Option<Date>, Option<Date>), ToolError> {
    let get = |k: &str| -> Result<Option<Date>, ToolError> {
        filters
            .and_then(|f| args::string(f, k))
            .map(|s| date_arg(&format!("filters.{k}"), s))
            .transpose()
    };
    let (b, e) = (get("begin")?, get("end")?);
    if let (Some(b), Some(e)) = (b, e)
        && b > e
    {
        return Err(ToolError::Invalid(format!(
            "filters.begin ({b}) is after filters.end ({e}); send a begin on or before the end"
        )));
    }
    Ok((b, e))
}

/// Adds `begin=dayT00:00:00` / `end=dayT23:59:59`, the plugin's list filter format.
pub fn with_range(mut r: Request, begin: Option<Date>, end: Option<Date>) -> Request {
    if let Some(b) = begin {
        r = r.query("begin", b.start());
    }
    if let Some(e) = end {
        r = r.query("end", e.end());
    }
    r
}
