//! Calendar arithmetic and the three timezones the simulated Kimai knows.
//!
//! Owns: civil-date <-> day-number conversion, the DST rules of `Europe/Berlin` and
//! `America/New_York` (plus `UTC`), Kimai's output format `Y-m-d\TH:i:sO` and the strict /
//! lenient input formats of contract §4.2. Deliberately written again here instead of shared
//! with `crate::kimai`, so a misreading of Kimai's date rules cannot hide in both.
//! Pure functions; no thread state.

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// 0 = Monday … 6 = Sunday.
pub fn weekday(days: i64) -> u32 {
    (days + 3).rem_euclid(7) as u32
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Day number of the last Sunday of a month.
fn last_sunday(y: i64, m: u32) -> i64 {
    let last = days_from_civil(y, m, days_in_month(y, m));
    last - ((weekday(last) + 1) % 7) as i64
}

/// Day number of the n-th (1-based) Sunday of a month.
fn nth_sunday(y: i64, m: u32, n: i64) -> i64 {
    let first = days_from_civil(y, m, 1);
    let to_sunday = (6 - weekday(first) as i64).rem_euclid(7);
    first + to_sunday + 7 * (n - 1)
}

/// The timezones users of the simulator can have. Kimai accepts any IANA name; the seed only
/// uses these three, and user updates are not simulated, so three rule sets suffice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tz {
    Berlin,
    NewYork,
    Utc,
}

impl Tz {
    pub fn name(self) -> &'static str {
        match self {
            Tz::Berlin => "Europe/Berlin",
            Tz::NewYork => "America/New_York",
            Tz::Utc => "UTC",
        }
    }

    /// UTC offset in seconds at the instant `ts` (unix seconds).
    pub fn offset_at(self, ts: i64) -> i64 {
        let (y, _, _) = civil_from_days(ts.div_euclid(DAY));
        match self {
            Tz::Utc => 0,
            // EU rule since 1996: summer time from the last Sunday of March 01:00 UTC to the
            // last Sunday of October 01:00 UTC.
            Tz::Berlin => {
                let start = last_sunday(y, 3) * DAY + 3600;
                let end = last_sunday(y, 10) * DAY + 3600;
                if ts >= start && ts < end { 7200 } else { 3600 }
            }
            // US rule since 2007: second Sunday of March 02:00 EST (07:00 UTC) to the first
            // Sunday of November 02:00 EDT (06:00 UTC).
            Tz::NewYork => {
                let start = nth_sunday(y, 3, 2) * DAY + 7 * 3600;
                let end = nth_sunday(y, 11, 1) * DAY + 6 * 3600;
                if ts >= start && ts < end {
                    -4 * 3600
                } else {
                    -5 * 3600
                }
            }
        }
    }

    /// Unix seconds of a wall-clock time (seconds since the epoch as if local were UTC).
    /// Ambiguous times (autumn overlap) take the earlier instant (summer offset) and
    /// non-existent times (spring gap) are moved forward by the gap, as PHP's DateTime does.
    pub fn to_utc(self, local: i64) -> i64 {
        let guess = local - self.offset_at(local);
        let first = local - self.offset_at(guess);
        // Prefer the larger offset (earlier instant) when both interpretations are valid.
        let candidates = [local - self.offset_at(guess - 3 * 3600), first];
        for c in candidates {
            if c + self.offset_at(c) == local {
                return c;
            }
        }
        // Spring gap: PHP interprets with the pre-transition offset, landing after the jump.
        local - self.offset_at(guess - 3 * 3600)
    }
}

/// Kimai's output format `Y-m-d\TH:i:sO`, e.g. `2026-08-12T09:00:00+0200`.
pub fn format_datetime(ts: i64, tz: Tz) -> String {
    let off = tz.offset_at(ts);
    let local = ts + off;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY));
    let s = local.rem_euclid(DAY);
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.abs();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        a / 3600,
        a / 60 % 60
    )
}

/// `Y-m-d` of the local day of `ts`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` -> day number, validating the calendar.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&s[0..4])? as i64;
    let m = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn parse_time(s: &str, with_seconds: bool) -> Option<i64> {
    let b = s.as_bytes();
    let ok = if with_seconds {
        b.len() == 8 && b[2] == b':' && b[5] == b':'
    } else {
        b.len() == 5 && b[2] == b':'
    };
    if !ok {
        return None;
    }
    let h = digits(&s[0..2])? as i64;
    let mi = digits(&s[3..5])? as i64;
    let se = if with_seconds {
        digits(&s[6..8])? as i64
    } else {
        0
    };
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(h * 3600 + mi * 60 + se)
}

/// Strict query format of contract §4.2: exactly `YYYY-MM-DDTHH:MM:SS`. Returns local seconds
/// (wall clock as if UTC); convert with [`Tz::to_utc`].
pub fn parse_local_strict(s: &str) -> Option<i64> {
    if s.len() != 19 || s.as_bytes()[10] != b'T' {
        return None;
    }
    Some(parse_date(&s[..10])? * DAY + parse_time(&s[11..], true)?)
}

/// Lenient body format of timesheet `begin`/`end` (§4.2): `T` or space, seconds optional.
/// Offsets are not accepted (the contract calls that optional; Kimai's docs say not to rely on it).
pub fn parse_local_lenient(s: &str) -> Option<i64> {
    if s.len() < 16 {
        return None;
    }
    let sep = s.as_bytes()[10];
    if sep != b'T' && sep != b' ' {
        return None;
    }
    let time = &s[11..];
    let t = parse_time(time, true).or_else(|| parse_time(time, false))?;
    Some(parse_date(&s[..10])? * DAY + t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip_and_weekday() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            civil_from_days(days_from_civil(2026, 2, 28) + 1),
            (2026, 3, 1)
        );
        // 2026-08-12 is a Wednesday.
        assert_eq!(weekday(days_from_civil(2026, 8, 12)), 2);
    }

    #[test]
    fn berlin_and_new_york_dst() {
        let summer = days_from_civil(2026, 8, 12) * DAY + 7 * 3600;
        assert_eq!(
            format_datetime(summer, Tz::Berlin),
            "2026-08-12T09:00:00+0200"
        );
        assert_eq!(
            format_datetime(summer, Tz::NewYork),
            "2026-08-12T03:00:00-0400"
        );
        let winter = days_from_civil(2026, 1, 5) * DAY + 12 * 3600;
        assert_eq!(
            format_datetime(winter, Tz::Berlin),
            "2026-01-05T13:00:00+0100"
        );
        assert_eq!(
            format_datetime(winter, Tz::NewYork),
            "2026-01-05T07:00:00-0500"
        );
        // 2026: EU switches on 29 March, US on 8 March.
        let before = days_from_civil(2026, 3, 29) * DAY + 3599;
        assert_eq!(Tz::Berlin.offset_at(before), 3600);
        assert_eq!(Tz::Berlin.offset_at(before + 1), 7200);
        assert_eq!(
            Tz::NewYork.offset_at(days_from_civil(2026, 3, 8) * DAY + 7 * 3600),
            -4 * 3600
        );
        assert_eq!(
            Tz::NewYork.offset_at(days_from_civil(2026, 11, 1) * DAY + 6 * 3600),
            -5 * 3600
        );
    }

    #[test]
    fn local_to_utc() {
        let local = parse_local_strict("2026-08-12T09:00:00").expect("valid");
        assert_eq!(
            format_datetime(Tz::Berlin.to_utc(local), Tz::Berlin),
            "2026-08-12T09:00:00+0200"
        );
        let local = parse_local_strict("2026-01-12T09:00:00").expect("valid");
        assert_eq!(
            format_datetime(Tz::NewYork.to_utc(local), Tz::NewYork),
            "2026-01-12T09:00:00-0500"
        );
        // Overlap: 02:30 on 25 Oct 2026 in Berlin happens twice; the first (+0200) wins.
        let local = parse_local_strict("2026-10-25T02:30:00").expect("valid");
        assert_eq!(
            format_datetime(Tz::Berlin.to_utc(local), Tz::Berlin),
            "2026-10-25T02:30:00+0200"
        );
    }

    #[test]
    fn strict_and_lenient_formats() {
        assert!(parse_local_strict("2026-08-01T10:00:00").is_some());
        for bad in [
            "2026-08-01",
            "2026-08-01T10:00",
            "2026-08-01T10:00:00Z",
            "2026-02-30T10:00:00",
            "2026-08-01 10:00:00",
            "2026-08-01T24:00:00",
        ] {
            assert!(parse_local_strict(bad).is_none(), "{bad}");
        }
        assert_eq!(
            parse_local_lenient("2026-08-01 10:00"),
            parse_local_strict("2026-08-01T10:00:00")
        );
        assert!(parse_local_lenient("2026-08-01T10:00:00+02:00").is_none());
    }
}
