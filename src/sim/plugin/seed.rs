//! The WorkContract plugin's seed: public holidays of two groups around "today" and a few
//! absences per user. Knows user ids only, not `data`, so that `data::seed` can call it.

use super::store::{Absence, CONTRACT_DAY_SECS, HolidayGroup, PluginState, PublicHoliday};
use crate::sim::time;

/// The nearest weekday on or after `day`.
fn weekday_on_or_after(day: i64) -> i64 {
    let mut d = day;
    while time::weekday(d) >= 5 {
        d += 1;
    }
    d
}

/// Public holidays (two groups, three years around `today`) and a few absences per user, all
/// relative to `today` (the Berlin day of the seed's "now"); absences only for the seeded
/// `user_ids`.
pub fn seed(user_ids: &[u64], today: i64) -> PluginState {
    let mut p = PluginState {
        next_absence_id: 1,
        groups: vec![
            HolidayGroup {
                id: 1,
                name: "Germany (Berlin)".into(),
            },
            HolidayGroup {
                id: 2,
                name: "United States".into(),
            },
        ],
        ..PluginState::default()
    };
    let (year, _, _) = time::civil_from_days(today);
    let berlin: &[(u32, u32, &str, bool)] = &[
        (1, 1, "New Year's Day", false),
        (3, 8, "International Women's Day", false),
        (5, 1, "Labour Day", false),
        (10, 3, "German Unity Day", false),
        (12, 24, "Christmas Eve", true),
        (12, 25, "Christmas Day", false),
        (12, 26, "Second Day of Christmas", false),
        (12, 31, "New Year's Eve", true),
    ];
    let us: &[(u32, u32, &str, bool)] = &[
        (1, 1, "New Year's Day", false),
        (7, 4, "Independence Day", false),
        (12, 25, "Christmas Day", false),
    ];
    let mut hid = 1;
    for y in year - 1..=year + 1 {
        for (group, list) in [(1, berlin), (2, us)] {
            for (m, d, name, half) in list {
                p.holidays.push(PublicHoliday {
                    id: hid,
                    group,
                    date: time::days_from_civil(y, *m, *d),
                    name: name.to_string(),
                    half_day: *half,
                });
                hid += 1;
            }
        }
    }
    // (user, first day offset from today, number of weekdays, type, status, half day,
    // duration seconds or None, comment)
    type Row = (
        u64,
        i64,
        i64,
        &'static str,
        &'static str,
        bool,
        Option<i64>,
        &'static str,
    );
    let rows: &[Row] = &[
        (5, -45, 5, "holiday", "approved", false, None, "Summer trip"),
        (5, -10, 1, "sickness", "approved", false, None, "Flu"),
        (5, 20, 3, "holiday", "new", false, None, "Long weekend"),
        (6, 0, 2, "holiday", "approved", false, None, "Family visit"),
        (
            6,
            -20,
            1,
            "sickness_child",
            "approved",
            true,
            None,
            "Kindergarten closed",
        ),
        (
            7,
            -3,
            1,
            "time_off",
            "approved",
            false,
            Some(2 * 3600),
            "Overtime compensation",
        ),
        (7, 30, 1, "holiday", "open", false, None, "Conference"),
        (
            3,
            -100,
            2,
            "holiday",
            "approved",
            false,
            None,
            "Short break",
        ),
        (
            3,
            14,
            1,
            "other",
            "open",
            false,
            Some(4 * 3600),
            "Moving house",
        ),
        (4, -1, 1, "sickness", "approved", false, None, "Migraine"),
        (2, 60, 3, "holiday", "approved", false, None, "Hiking"),
        (
            2,
            -30,
            1,
            "holiday",
            "rejected",
            false,
            None,
            "Team event clash",
        ),
    ];
    for (user, offset, n, kind, status, half, duration, comment) in rows {
        if !user_ids.contains(user) {
            continue;
        }
        let mut day = weekday_on_or_after(today + offset);
        for _ in 0..*n {
            p.absences.push(Absence {
                id: p.next_absence_id,
                user: *user,
                date: day,
                kind,
                status,
                half_day: *half,
                duration: duration.unwrap_or(if *half {
                    CONTRACT_DAY_SECS / 2
                } else {
                    CONTRACT_DAY_SECS
                }),
                comment: comment.to_string(),
            });
            p.next_absence_id += 1;
            day = weekday_on_or_after(day + 1);
        }
    }
    p
}
