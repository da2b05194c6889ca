//! Dates, times and durations as the tools read them from arguments and show them to the model.
//!
//! Kimai's rules (contract §4): query date-times are local `YYYY-MM-DDTHH:MM:SS` without offset
//! or fractional seconds, interpreted in the user's timezone; responses carry
//! `YYYY-MM-DDTHH:MM:SS+hhmm`; durations are seconds on output but duration strings on input,
//! where a bare number means *hours*. This module is independent of the simulator's own date
//! code on purpose (design §7).

use std::fmt;

/// A calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// A local date-time without offset (what Kimai's filters expect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Local {
    pub date: Date,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Display for Local {
    /// Kimai's query format: `YYYY-MM-DDTHH:MM:SS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )
    }
}

pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        ((1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && (1970..=9999).contains(&year))
        .then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (proleptic Gregorian).
    pub fn to_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    pub fn add_days(self, n: i64) -> Date {
        Date::from_days(self.to_days() + n)
    }

    /// ISO weekday, Monday = 1 … Sunday = 7.
    pub fn weekday(self) -> u32 {
        ((self.to_days() + 3).rem_euclid(7) + 1) as u32
    }

    pub fn start(self) -> Local {
        Local {
            date: self,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    pub fn end(self) -> Local {
        Local {
            date: self,
            hour: 23,
            minute: 59,
            second: 59,
        }
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.trim().split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    Date::new(digits(y, 4)? as i32, digits(m, 2)?, digits(d, 2)?)
}

/// Which end of a day a date-only value stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayEdge {
    Start,
    End,
}

/// Parses a local date-time from a tool argument: `YYYY-MM-DD` (the start or the end of that
/// day, per `edge`), `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (a space may replace `T`;
/// fractional seconds are dropped). An offset or `Z` is refused: Kimai reads these values in
/// the user's own timezone and would reject them.
pub fn parse_local(field: &str, s: &str, edge: DayEdge) -> Result<Local, String> {
    let s = s.trim();
    let how = format!(
        "write '{field}' as local time in your Kimai timezone without an offset, e.g. 2026-03-01T09:00:00 or 2026-03-01"
    );
    if let Some(date) = parse_date(s) {
        return Ok(if edge == DayEdge::End {
            date.end()
        } else {
            date.start()
        });
    }
    let (d, t) = s
        .split_once(['T', ' '])
        .ok_or_else(|| format!("'{field}' is not a date or date-time ({s:?}): {how}"))?;
    let date =
        parse_date(d).ok_or_else(|| format!("'{field}' has an invalid date ({d:?}): {how}"))?;
    if t.ends_with('Z') || t.contains('+') || t.matches('-').count() > 0 {
        return Err(format!(
            "'{field}' carries a timezone offset ({s:?}); {how}"
        ));
    }
    let t = t.split('.').next().unwrap_or(t);
    let parts: Vec<&str> = t.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (digits(h, 2), digits(m, 2), Some(0)),
        [h, m, s] => (digits(h, 2), digits(m, 2), digits(s, 2)),
        _ => (None, None, None),
    };
    match (h, m, sec) {
        (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec < 60 => Ok(Local {
            date,
            hour: h,
            minute: m,
            second: sec,
        }),
        _ => Err(format!("'{field}' has an invalid time ({t:?}): {how}")),
    }
}

/// A date-time as Kimai returns it: `2026-08-12T09:00:00+0200`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub local: Local,
    /// Offset east of UTC in seconds.
    pub offset: i32,
}

impl Stamp {
    /// Seconds since the epoch (UTC).
    pub fn unix(&self) -> i64 {
        self.local.date.to_days() * 86_400
            + i64::from(self.local.hour * 3600 + self.local.minute * 60 + self.local.second)
            - i64::from(self.offset)
    }
}

/// Parses Kimai's `Y-m-d\TH:i:sO` (also tolerating `+hh:mm`, `Z` and fractions).
pub fn parse_stamp(s: &str) -> Option<Stamp> {
    let (d, rest) = s.split_once('T')?;
    let date = parse_date(d)?;
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else {
        let pos = rest.rfind(['+', '-'])?;
        let (t, o) = rest.split_at(pos);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let o = o[1..].replace(':', "");
        let (oh, om) = (digits(o.get(..2)?, 2)?, digits(o.get(2..4)?, 2)?);
        (t, sign * (oh * 3600 + om * 60) as i32)
    };
    let time = time.split('.').next()?;
    let p: Vec<&str> = time.split(':').collect();
    let (h, m, s) = match p.as_slice() {
        [h, m, s] => (digits(h, 2)?, digits(m, 2)?, digits(s, 2)?),
        [h, m] => (digits(h, 2)?, digits(m, 2)?, 0),
        _ => return None,
    };
    Some(Stamp {
        local: Local {
            date,
            hour: h,
            minute: m,
            second: s,
        },
        offset,
    })
}

/// `2026-08-12 09:00` from a Kimai stamp (the record's own local time); the raw text if it
/// does not parse.
pub fn show_stamp(s: &str) -> String {
    match parse_stamp(s) {
        Some(st) => format!(
            "{} {:02}:{:02}",
            st.local.date, st.local.hour, st.local.minute
        ),
        None => super::text::safe(s),
    }
}

/// Seconds as Kimai's duration input `H:MM:SS` (a bare number would mean hours to Kimai).
pub fn hms(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// Seconds as hours with two decimals, e.g. `1.50`.
pub fn hours(seconds: i64) -> String {
    format!("{:.2}", seconds as f64 / 3600.0)
}

/// The longest duration argument accepted (a year of 366 days).
pub const MAX_DURATION_SECS: i64 = 366 * 86_400;

/// Reads a duration argument: an integer is seconds; a string is Kimai's duration syntax
/// (`1:30`, `1:30:00`, `1.5` hours, `2h30m`, `90m`), except a bare digit string, which is
/// refused as ambiguous (Kimai would read `"7200"` as 7200 hours). Returns seconds.
pub fn parse_duration(field: &str, v: &serde_json::Value) -> Result<i64, String> {
    use serde_json::Value;
    let bad = |s: &str| {
        format!(
            "'{field}' must be seconds as an integer (e.g. 1800) or a duration string such as \"0:30\", \"1:30:00\", \"1.5h\" or \"45m\"; got {s:?}"
        )
    };
    match v {
        Value::Number(_) => match super::args::as_int(v) {
            Some(n) if (0..=MAX_DURATION_SECS).contains(&n) => Ok(n),
            _ => Err(bad(&v.to_string())),
        },
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "'{field}' is ambiguous ({s:?}): Kimai reads a bare number as hours; send an integer number of seconds, or a string with a unit such as \"{t}m\" or \"{t}h\""
                ));
            }
            if t.contains(':') {
                let p: Vec<&str> = t.split(':').collect();
                // At most 366 days in hours: anything longer is a typo, and the bound keeps
                // the arithmetic below from overflowing.
                let num = |x: &str| {
                    (!x.is_empty() && x.len() <= 6 && x.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| x.parse::<i64>().ok())
                        .flatten()
                        .filter(|n| *n <= MAX_DURATION_SECS / 3600)
                };
                let secs = match p.as_slice() {
                    [h, m] => Some(
                        num(h).ok_or(bad(s))? * 3600
                            + num(m).filter(|m| *m < 60).ok_or(bad(s))? * 60,
                    ),
                    [h, m, sec] => Some(
                        num(h).ok_or(bad(s))? * 3600
                            + num(m).filter(|m| *m < 60).ok_or(bad(s))? * 60
                            + num(sec).filter(|x| *x < 60).ok_or(bad(s))?,
                    ),
                    _ => None,
                };
                return secs.ok_or_else(|| bad(s));
            }
            // Natural forms: 1.5h, 1,5h, 2h30m, 90m, 45s, 1.5 (decimal hours with a point).
            let t = t.replace(',', ".").replace(' ', "");
            if let Ok(h) = t.parse::<f64>() {
                return if h.is_finite() && h >= 0.0 && h * 3600.0 <= MAX_DURATION_SECS as f64 {
                    Ok((h * 3600.0).round() as i64)
                } else {
                    Err(bad(s))
                };
            }
            let mut total = 0f64;
            let mut num = String::new();
            let mut any = false;
            for c in t.chars() {
                if c.is_ascii_digit() || c == '.' {
                    num.push(c);
                } else {
                    let n: f64 = num.parse().map_err(|_| bad(s))?;
                    total += n * match c {
                        'h' => 3600.0,
                        'm' => 60.0,
                        's' => 1.0,
                        _ => return Err(bad(s)),
                    };
                    num.clear();
                    any = true;
                }
            }
            if !num.is_empty() || !any {
                return Err(bad(s));
            }
            if total > MAX_DURATION_SECS as f64 {
                return Err(bad(s));
            }
            Ok(total.round() as i64)
        }
        other => Err(bad(&other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn day_arithmetic() {
        let d = Date::new(2024, 2, 28).unwrap();
        assert_eq!(d.add_days(1).to_string(), "2024-02-29");
        assert_eq!(d.add_days(2).to_string(), "2024-03-01");
        assert_eq!(Date::new(1970, 1, 1).unwrap().to_days(), 0);
        assert_eq!(Date::new(2026, 11, 29).unwrap().weekday(), 7);
        assert_eq!(Date::new(2026, 11, 30).unwrap().weekday(), 1);
        assert!(Date::new(2025, 2, 29).is_none());
        for n in [-1000, 0, 365, 20_000, 30_000] {
            assert_eq!(Date::from_days(n).to_days(), n);
        }
    }

    #[test]
    fn local_forms() {
        assert_eq!(
            parse_local("begin", "2026-03-01", DayEdge::Start)
                .unwrap()
                .to_string(),
            "2026-03-01T00:00:00"
        );
        assert_eq!(
            parse_local("end", "2026-03-01", DayEdge::End)
                .unwrap()
                .to_string(),
            "2026-03-01T23:59:59"
        );
        assert_eq!(
            parse_local("begin", "2026-03-01T09:30", DayEdge::Start)
                .unwrap()
                .to_string(),
            "2026-03-01T09:30:00"
        );
        assert_eq!(
            parse_local("begin", "2026-03-01 09:30:15.123", DayEdge::Start)
                .unwrap()
                .to_string(),
            "2026-03-01T09:30:15"
        );
        let e = parse_local("begin", "2026-03-01T09:30:00Z", DayEdge::Start).unwrap_err();
        assert!(
            e.contains("offset") && e.contains("without an offset"),
            "{e}"
        );
        assert!(parse_local("begin", "2026-03-01T09:30:00+02:00", DayEdge::Start).is_err());
        assert!(parse_local("begin", "2026-03-01T09:30:00-05:00", DayEdge::Start).is_err());
        assert!(parse_local("begin", "2026-02-30", DayEdge::Start).is_err());
        assert!(parse_local("begin", "2026-03-01T24:00", DayEdge::Start).is_err());
        assert!(parse_local("begin", "yesterday", DayEdge::Start).is_err());
    }

    #[test]
    fn stamps() {
        let s = parse_stamp("2026-08-12T09:00:00+0200").unwrap();
        assert_eq!(s.offset, 7200);
        assert_eq!(show_stamp("2026-08-12T09:00:00+0200"), "2026-08-12 09:00");
        let a = parse_stamp("2026-08-12T07:00:00+0000").unwrap();
        assert_eq!(s.unix(), a.unix());
        assert_eq!(
            parse_stamp("2020-03-27T14:35:00-0500").unwrap().offset,
            -18000
        );
    }

    #[test]
    fn durations() {
        assert_eq!(hms(5400), "1:30:00");
        assert_eq!(hms(59), "0:00:59");
        assert_eq!(hours(5400), "1.50");
        assert_eq!(parse_duration("break", &json!(1800)).unwrap(), 1800);
        assert_eq!(parse_duration("break", &json!("0:30")).unwrap(), 1800);
        assert_eq!(parse_duration("break", &json!("1:30:15")).unwrap(), 5415);
        assert_eq!(parse_duration("break", &json!("1.5h")).unwrap(), 5400);
        assert_eq!(parse_duration("break", &json!("2h30m")).unwrap(), 9000);
        assert_eq!(parse_duration("break", &json!("45m")).unwrap(), 2700);
        assert_eq!(parse_duration("break", &json!("1,5")).unwrap(), 5400);
        let e = parse_duration("timeBudget", &json!("7200")).unwrap_err();
        assert!(e.contains("ambiguous") && e.contains("hours"), "{e}");
        assert!(parse_duration("break", &json!("1:75")).is_err());
        assert!(parse_duration("break", &json!("abc")).is_err());
        assert!(parse_duration("break", &json!(-5)).is_err());
        // Found by fuzzing: huge hour counts overflowed instead of being refused.
        assert!(parse_duration("break", &json!("97777777777777777:76")).is_err());
        assert!(parse_duration("break", &json!("9999999999:00:00")).is_err());
        assert!(parse_duration("break", &json!("1e300")).is_err());
        assert!(parse_duration("break", &json!("99999999999h")).is_err());
        assert_eq!(
            parse_duration("break", &json!("8784:00")).unwrap(),
            MAX_DURATION_SECS
        );
    }
}
