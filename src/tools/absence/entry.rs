//! One absence as Kimai returned it, as a typed [`Entry`], and its line in an answer (every
//! Kimai string made safe).

use super::names::{label, who};
use super::read::Read;
use crate::tools::args;
use crate::tools::text;
use crate::tools::time::{self, Date};
use crate::tools::users::{self, Found};
use serde_json::Value;

pub(super) struct Entry {
    pub(super) id: i64,
    pub(super) date: Option<Date>,
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) half_day: bool,
    pub(super) duration: i64,
    pub(super) user: Option<Found>,
    pub(super) comment: Option<String>,
}

impl Entry {
    pub(super) fn from(v: &Value) -> Entry {
        Entry {
            id: v.get("id").and_then(args::as_int).unwrap_or(0),
            date: v.get("date").and_then(Value::as_str).and_then(|s| {
                time::parse_stamp(s)
                    .map(|st| st.local.date)
                    .or_else(|| time::parse_date(s))
            }),
            kind: v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string(),
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            half_day: v.get("halfDay").and_then(Value::as_bool).unwrap_or(false),
            duration: v.get("duration").and_then(args::as_int).unwrap_or(0),
            user: v.get("user").and_then(users::found_from),
            comment: v
                .get("comment")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        }
    }

    /// Counted in hours rather than days: the types that take a duration.
    pub(super) fn hourly(&self) -> bool {
        matches!(self.kind.as_str(), "time_off" | "other")
    }

    pub(super) fn days(&self) -> f64 {
        if self.hourly() {
            0.0
        } else if self.half_day {
            0.5
        } else {
            1.0
        }
    }

    pub(super) fn line(&self) -> String {
        let mut parts = vec![
            format!("ID {}", self.id),
            self.date
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into()),
            label(&self.kind),
            self.user.as_ref().map(who).unwrap_or_else(|| "?".into()),
            text::safe(&self.status),
        ];
        if self.half_day {
            parts.push("half day".into());
        }
        if self.hourly() {
            parts.push(format!("{} h", time::hours(self.duration)));
        }
        if let Some(c) = &self.comment {
            parts.push(format!("comment: {}", text::safe(c)));
        }
        parts.join(" | ")
    }
}

pub(super) fn entries(read: &Read) -> Vec<Entry> {
    let mut v: Vec<Entry> = read.absences.iter().map(Entry::from).collect();
    v.sort_by(|a, b| {
        a.date
            .cmp(&b.date)
            .then_with(|| {
                a.user
                    .as_ref()
                    .map(|u| u.id)
                    .cmp(&b.user.as_ref().map(|u| u.id))
            })
            .then(a.id.cmp(&b.id))
    });
    v
}
