//! What the WorkContract plugin stores ([`PluginState`], one field of `data::State`): absences,
//! public-holiday groups and holidays, locked months; and the absence types. Plain data: it
//! must not know `data`, so that `data` can hold it.

/// The absence types of `AbsenceForm.type`, with their English and German labels.
pub const TYPES: &[(&str, &str, &str)] = &[
    ("holiday", "Vacation", "Urlaub"),
    ("time_off", "Time off", "Zeitausgleich"),
    ("sickness", "Sickness", "Krankheit"),
    ("sickness_child", "Sick child", "Kind krank"),
    ("other", "Other", "Sonstiges"),
    ("parental", "Parental leave", "Elternzeit"),
    ("unpaid_vacation", "Unpaid vacation", "Unbezahlter Urlaub"),
];

/// Longest range one `POST /absences` accepts (third-party observation, §9.1).
pub const MAX_CREATE_DAYS: i64 = 30;
/// Length of a full absence day when no duration is given (the seeded work contracts' day).
pub(super) const CONTRACT_DAY_SECS: i64 = 8 * 3600;

#[derive(Clone, Debug)]
pub struct Absence {
    pub id: u64,
    pub user: u64,
    /// Day number (days since 1970-01-01), in the owner's calendar.
    pub date: i64,
    pub kind: &'static str,
    /// Assumption: `new` (created, approval not yet requested), `open` (approval requested),
    /// `approved`, `rejected`. The list filter `open` covers `new` and `open`.
    pub status: &'static str,
    pub half_day: bool,
    /// Seconds; `Absence2.duration` is always positive.
    pub duration: i64,
    pub comment: String,
}

#[derive(Clone, Debug)]
pub struct HolidayGroup {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct PublicHoliday {
    pub id: u64,
    pub group: u64,
    pub date: i64,
    pub name: String,
    pub half_day: bool,
}

/// Everything the plugin stores.
#[derive(Clone, Debug, Default)]
pub struct PluginState {
    pub absences: Vec<Absence>,
    pub next_absence_id: u64,
    pub groups: Vec<HolidayGroup>,
    pub holidays: Vec<PublicHoliday>,
    /// Locked months: (user id, day number of the month's first day).
    pub locked_months: Vec<(u64, i64)>,
    /// Users whose absences answer 403 to everyone but themselves (`Sim::deny_absence_reads`:
    /// an instance whose permission setup hides one user's contract).
    pub denied_reads: Vec<u64>,
}
