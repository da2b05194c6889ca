//! `calendar`: absences and public holidays as calendar events for a date range, from the
//! WorkContract plugin's feeds (`GET /api/absences/calendar`, `GET /api/public-holidays/calendar`,
//! contract §9.1, schema `CalendarEvent`).
//!
//! Dates go out in the plugin's list-filter format: the first day at `T00:00:00`, the last day
//! at `T23:59:59` (the Python tool sent midnight of the last day, which dropped that day's
//! events). A 404 is checked against the plugin probe of [`explain_404`].

use super::args::{self, Args};
use super::common::day_range::{range, with_range};
use super::common::work_contract::explain_404;
use super::{Context, Output, Tool, ToolError, text, time};
use crate::kimai::Request;
use serde_json::{Value, json};

pub const TOOL: Tool = Tool {
    name: "calendar",
    title: "Absence and holiday calendar",
    description: "Calendar events of Kimai's WorkContract plugin between filters.begin and filters.end (YYYY-MM-DD, inclusive): type=absences (approved absences; filters.user for another user) or type=holidays (public holidays).",
    schema,
    read_only: true,
    destructive: false,
    idempotent: true,
    handler,
};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["absences", "holidays"], "description": "Which feed."},
            "filters": {
                "type": "object",
                "properties": {
                    "user": {"type": "integer", "description": "absences only: user id (default: yourself)."},
                    "begin": {"type": "string", "format": "date", "description": "First day (YYYY-MM-DD)."},
                    "end": {"type": "string", "format": "date", "description": "Last day (YYYY-MM-DD), inclusive."}
                },
                "additionalProperties": false
            }
        },
        "required": ["type"],
        "additionalProperties": false
    })
}

fn handler(ctx: &Context, a: &Args) -> Result<Output, ToolError> {
    let kind = args::string(a, "type").unwrap_or("absences");
    let filters = args::object(a, "filters");
    let (begin, end) = range(filters)?;
    let user = filters.and_then(|f| args::int(f, "user"));
    let path = match kind {
        "holidays" => {
            if user.is_some() {
                return Err(ToolError::Invalid(
                    "filters.user only applies to type=absences".into(),
                ));
            }
            "/public-holidays/calendar"
        }
        _ => "/absences/calendar",
    };
    let mut r = Request::get(path);
    if let Some(u) = user {
        if u < 1 {
            return Err(ToolError::Invalid(format!(
                "filters.user must be a positive user id, got {u}"
            )));
        }
        r = r.query("user", u);
    }
    let r = with_range(r, begin, end);
    let body = ctx.call(&r).map_err(|e| explain_404(ctx, e))?.body;
    let events = body.as_array().cloned().unwrap_or_default();
    let what = if kind == "holidays" {
        "Public holidays"
    } else if let Some(u) = user {
        &format!("Absences of user {u}")
    } else {
        "Your absences"
    };
    let period = match (begin, end) {
        (Some(b), Some(e)) => format!("{b} to {e}"),
        (Some(b), None) => format!("from {b}"),
        (None, Some(e)) => format!("until {e}"),
        (None, None) => "all dates".into(),
    };
    let mut out = format!("{what} ({period}): {} event(s)", events.len());
    if events.is_empty() {
        out.push_str("\nNo events.");
    }
    for e in &events {
        out.push_str("\n- ");
        out.push_str(&event_line(e));
    }
    Ok(Output::text(out))
}

/// `2026-08-13 (all day): Vacation: maria | color #4CAF50`.
fn event_line(e: &Value) -> String {
    let s = |k: &str| e.get(k).and_then(Value::as_str);
    let all_day = e.get("allDay").and_then(Value::as_bool).unwrap_or(false);
    let start = s("start").and_then(time::parse_stamp);
    let end = s("end").and_then(time::parse_stamp);
    let when = match (start, end) {
        (Some(b), Some(en)) if all_day => {
            // An all-day event ends at midnight after its last day.
            let last = if en.local.hour == 0 && en.local.minute == 0 && en.local.second == 0 {
                en.local.date.add_days(-1)
            } else {
                en.local.date
            };
            if last <= b.local.date {
                format!("{} (all day)", b.local.date)
            } else {
                format!("{} to {last} (all day)", b.local.date)
            }
        }
        (Some(_), _) | (None, _) => {
            let show = |k: &str| s(k).map(time::show_stamp).unwrap_or_else(|| "?".into());
            format!("{} to {}", show("start"), show("end"))
        }
    };
    let mut line = format!("{when}: {}", text::safe_opt(s("title")));
    if let Some(c) = s("color").filter(|c| !c.is_empty()) {
        line.push_str(&format!(" | color {}", text::safe(c)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_day_events_show_their_days() {
        let one = json!({"title": "Vacation: anna", "allDay": true, "start": "2026-08-13T00:00:00+0200", "end": "2026-08-14T00:00:00+0200", "color": "#4CAF50"});
        assert_eq!(
            event_line(&one),
            "2026-08-13 (all day): Vacation: anna | color #4CAF50"
        );
        let two = json!({"title": "x\ny", "allDay": true, "start": "2026-08-13T00:00:00+0200", "end": "2026-08-15T00:00:00+0200"});
        assert_eq!(
            event_line(&two),
            "2026-08-13 to 2026-08-14 (all day): \"x\\ny\""
        );
        let timed = json!({"title": "Dentist", "allDay": false, "start": "2026-08-13T09:00:00+0200", "end": "2026-08-13T10:30:00+0200"});
        assert_eq!(
            event_line(&timed),
            "2026-08-13 09:00 to 2026-08-13 10:30: Dentist"
        );
    }
}
