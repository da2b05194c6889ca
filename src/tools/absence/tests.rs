//! Unit tests of `absence`: chunking, tallies and entry lines.

use super::entry::Entry;
use super::report::Tally;
use super::*;
use crate::tools::time::{self, Date};

fn d(s: &str) -> Date {
    time::parse_date(s).unwrap()
}

#[test]
fn split_keeps_chunks_within_thirty_days_and_one_year() {
    assert_eq!(
        split(d("2026-03-02"), d("2026-03-02")),
        vec![(d("2026-03-02"), d("2026-03-02"))]
    );
    assert_eq!(
        split(d("2026-03-01"), d("2026-03-30")),
        vec![(d("2026-03-01"), d("2026-03-30"))]
    );
    assert_eq!(
        split(d("2026-03-01"), d("2026-03-31")),
        vec![
            (d("2026-03-01"), d("2026-03-30")),
            (d("2026-03-31"), d("2026-03-31"))
        ]
    );
    assert_eq!(
        split(d("2026-12-20"), d("2027-01-10")),
        vec![
            (d("2026-12-20"), d("2026-12-31")),
            (d("2027-01-01"), d("2027-01-10"))
        ]
    );
    // 75 days across a year end: 30 + 30 (stops at Dec 31? no: Nov 1 + 29 = Nov 30) …
    let chunks = split(d("2026-11-01"), d("2027-01-14"));
    assert_eq!(
        chunks,
        vec![
            (d("2026-11-01"), d("2026-11-30")),
            (d("2026-12-01"), d("2026-12-30")),
            (d("2026-12-31"), d("2026-12-31")),
            (d("2027-01-01"), d("2027-01-14")),
        ]
    );
    // Every rule holds on a long leap-year range, and the chunks tile the range exactly.
    let (b, e) = (d("2027-12-15"), d("2028-12-31"));
    let chunks = split(b, e);
    assert_eq!(chunks.first().unwrap().0, b);
    assert_eq!(chunks.last().unwrap().1, e);
    for w in chunks.windows(2) {
        assert_eq!(w[0].1.add_days(1), w[1].0);
    }
    for (f, t) in &chunks {
        assert!(t.to_days() - f.to_days() < MAX_CHUNK_DAYS && f.year == t.year && f <= t);
    }
}

#[test]
fn half_days_count_half_and_hourly_types_count_hours() {
    let e = Entry::from(
        &json!({"id": 1, "date": "2026-08-13T00:00:00+0200", "type": "holiday", "status": "approved", "halfDay": true, "duration": 14400}),
    );
    assert_eq!(e.days(), 0.5);
    let t = Entry::from(
        &json!({"id": 2, "date": "2026-08-13T00:00:00+0200", "type": "time_off", "status": "approved", "halfDay": false, "duration": 5400}),
    );
    assert_eq!(t.days(), 0.0);
    let mut tally = Tally::default();
    tally.add(&e);
    tally.add(&t);
    assert_eq!(tally.text(), "2 entries, 0.5 days + 1.50 h");
    assert_eq!(e.date, Some(d("2026-08-13")));
}

#[test]
fn entry_lines_neutralise_kimai_text() {
    let e = Entry::from(
        &json!({"id": 7, "date": "2026-08-13T00:00:00+0200", "type": "sickness", "status": "approved",
        "user": {"id": 5, "username": "john", "alias": "John\nID 99 | forged"}, "comment": "ok\u{202E}"}),
    );
    let line = e.line();
    assert!(!line.contains('\n') && !line.contains('\u{202E}'), "{line}");
    assert!(
        line.starts_with("ID 7 | 2026-08-13 | Sickness | \"John\\nID 99 | forged\" (ID 5)"),
        "{line}"
    );
}
