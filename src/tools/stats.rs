//! Statistics over a set of timesheet records (`timesheet list` with `calculate_stats`).
//!
//! Hours come from Kimai's own `duration` (break already deducted); running records count
//! their time so far. Records are grouped by the local date of their begin, in the record's
//! own timezone as Kimai sends it. No overtime is computed: Kimai's REST API exposes no
//! working-time balance, and guessing one from a contract would mislead.
//!
//! Records are added one at a time ([`Stats::add`]), so a caller can aggregate page by page
//! and drop each page. The figures are kept by id; names come at report time from the lookups
//! (`lookups::Names`) or, for records of the expanded shape, from the records themselves.
//!
//! Revenue: Kimai's `rate` of each record is its money value (fixed or hourly × duration, in
//! the currency of the project's customer). It is summed per project and user and split into
//! billable and not billable; the report groups it by currency (customers can bill in
//! different currencies, and sums across them would mean nothing). Kimai 2.66 omits the rate
//! fields for tokens without the `view_rate_*` permissions: records without a rate are counted
//! and named, never taken as zero.

use super::lookups::{Kind, Names, Sample};
use super::rows;
use super::text;
use super::time::{self, Date};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Default)]
struct Bucket {
    /// The name an expanded record carried (plain records carry none).
    name: Option<String>,
    secs: i64,
    entries: u64,
    /// A record of this project or activity, to name it by when the lists do not.
    sample: Option<Sample>,
}

/// Money of records: billable and not billable.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Money {
    billable: f64,
    not_billable: f64,
}

impl Money {
    fn add(&mut self, other: Money) {
        self.billable += other.billable;
        self.not_billable += other.not_billable;
    }
}

/// Figures computed over the records.
#[derive(Default)]
pub struct Stats {
    entries: u64,
    running: u64,
    total: i64,
    billable: i64,
    first: Option<Date>,
    last: Option<Date>,
    days: BTreeMap<Date, i64>,
    person_days: HashSet<(i64, Date)>,
    users: HashMap<i64, Bucket>,
    projects: HashMap<i64, Bucket>,
    activities: HashMap<i64, Bucket>,
    months: BTreeMap<(i32, u32), i64>,
    weeks: BTreeMap<(i32, u32), i64>,
    years: BTreeMap<i32, (i64, u64)>,
    tags: HashMap<String, u64>,
    start_hours: [u64; 24],
    /// The customer an expanded record named for its project: (id, name).
    customers: HashMap<i64, (i64, Option<String>)>,
    /// Revenue per (project, user).
    money: HashMap<(i64, i64), Money>,
    /// Records with a rate, and without one (Kimai 2.66 hides rates from some tokens).
    rated: u64,
    unrated: u64,
}

/// A reference to a user, project, activity or customer as a record carries it: a bare id
/// (plain shape) or an object (expanded shape, `full=true`). Decoded by hand so that both
/// shapes are read without buffering, and everything else in the object is skipped.
#[derive(Clone, Debug, Default)]
pub struct Ref {
    pub id: i64,
    /// Alias (users, when set), name (entities) or username.
    pub name: Option<String>,
    pub customer: Option<Box<Ref>>,
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ref, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ref;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an id or an object with an id")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ref, E> {
                Ok(Ref {
                    id: v,
                    ..Ref::default()
                })
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ref, E> {
                Ok(Ref {
                    id: i64::try_from(v).unwrap_or(0),
                    ..Ref::default()
                })
            }
            fn visit_unit<E>(self) -> Result<Ref, E> {
                Ok(Ref::default())
            }
            fn visit_none<E>(self) -> Result<Ref, E> {
                Ok(Ref::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ref, A::Error> {
                let mut r = Ref::default();
                let (mut name, mut username, mut alias) = (None, None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "id" => r.id = map.next_value::<Option<i64>>()?.unwrap_or(0),
                        "name" => name = map.next_value::<Option<String>>()?,
                        "username" => username = map.next_value::<Option<String>>()?,
                        "alias" => alias = map.next_value::<Option<String>>()?,
                        "customer" => r.customer = map.next_value::<Option<Ref>>()?.map(Box::new),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                r.name = alias.filter(|a| !a.is_empty()).or(name).or(username);
                Ok(r)
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of a timesheet record that statistics use.
#[derive(Clone, Debug, Deserialize)]
pub struct Rec {
    pub id: Option<i64>,
    pub begin: Option<String>,
    pub end: Option<String>,
    pub duration: Option<i64>,
    pub billable: Option<bool>,
    /// The record's money value; absent when Kimai hides rates from the token.
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub user: Ref,
    #[serde(default)]
    pub project: Ref,
    #[serde(default)]
    pub activity: Ref,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Rec {
    /// A record from its JSON value (either shape).
    pub fn from_value(v: &Value) -> Option<Rec> {
        Rec::deserialize(v).ok()
    }

    /// The record's id, for de-duplicating pages.
    pub fn id(&self) -> Option<i64> {
        self.id
    }
}

/// `Name` for a compact line, or `kind #id` when no name is known.
fn label(name: Option<&str>, kind: &str, id: i64) -> String {
    name.map(rows::name)
        .unwrap_or_else(|| format!("{kind} #{id}"))
}

/// ISO 8601 (year, week) of a date.
pub fn iso_week(d: Date) -> (i32, u32) {
    let thursday = d.add_days(4 - i64::from(d.weekday()));
    let jan1 = Date {
        year: thursday.year,
        month: 1,
        day: 1,
    };
    let week = ((thursday.to_days() - jan1.to_days()) / 7 + 1) as u32;
    (thursday.year, week)
}

impl Stats {
    pub fn compute(records: &[Rec], now: i64) -> Stats {
        let mut s = Stats::default();
        for r in records {
            s.add(r, now);
        }
        s
    }

    /// Adds one record (a record without a readable begin is skipped).
    pub fn add(&mut self, r: &Rec, now: i64) {
        let s = self;
        let Some(begin) = r.begin.as_deref().and_then(time::parse_stamp) else {
            return;
        };
        let running = r.end.is_none();
        // Kimai's own duration (break deducted); a running record counts its time so far.
        let secs = if running {
            (now - begin.unix()).max(0)
        } else {
            r.duration.unwrap_or(0)
        };
        let date = begin.local.date;
        s.entries += 1;
        if running {
            s.running += 1;
        }
        s.total += secs;
        let billable = r.billable != Some(false);
        if billable {
            s.billable += secs;
        }
        s.first = Some(s.first.map_or(date, |f| f.min(date)));
        s.last = Some(s.last.map_or(date, |l| l.max(date)));
        *s.days.entry(date).or_default() += secs;
        s.person_days.insert((r.user.id, date));
        let add = |map: &mut HashMap<i64, Bucket>, rf: &Ref, sample: bool| {
            let b = map.entry(rf.id).or_default();
            if b.name.is_none() {
                b.name = rf.name.clone();
            }
            if sample && b.sample.is_none() && rf.name.is_none() {
                b.sample = r.id.zip(r.begin.clone()).map(|(record, begin)| Sample {
                    record,
                    user: r.user.id,
                    begin,
                });
            }
            b.secs += secs;
            b.entries += 1;
        };
        add(&mut s.users, &r.user, false);
        add(&mut s.projects, &r.project, true);
        add(&mut s.activities, &r.activity, true);
        if let Some(c) = &r.project.customer
            && c.name.is_some()
        {
            s.customers
                .entry(r.project.id)
                .or_insert_with(|| (c.id, c.name.clone()));
        }
        *s.months.entry((date.year, date.month)).or_default() += secs;
        *s.weeks.entry(iso_week(date)).or_default() += secs;
        let y = s.years.entry(date.year).or_default();
        y.0 += secs;
        y.1 += 1;
        for t in &r.tags {
            if let Some(n) = s.tags.get_mut(t) {
                *n += 1;
            } else {
                s.tags.insert(t.clone(), 1);
            }
        }
        s.start_hours[begin.local.hour as usize % 24] += 1;
        match r.rate {
            Some(rate) if rate.is_finite() => {
                s.rated += 1;
                let m = s.money.entry((r.project.id, r.user.id)).or_default();
                if billable {
                    m.billable += rate;
                } else {
                    m.not_billable += rate;
                }
            }
            _ => s.unrated += 1,
        }
    }

    /// The distinct user, project and activity ids of the records.
    pub fn ids(&self) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let keys = |m: &HashMap<i64, Bucket>| {
            let mut v: Vec<i64> = m.keys().copied().filter(|i| *i != 0).collect();
            v.sort_unstable();
            v
        };
        (
            keys(&self.users),
            keys(&self.projects),
            keys(&self.activities),
        )
    }

    /// Records added.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    fn user_name(&self, names: &Names, id: i64) -> String {
        let embedded = self.users.get(&id).and_then(|b| b.name.as_deref());
        label(names.user(id).or(embedded), "user", id)
    }

    fn activity_name(&self, names: &Names, id: i64) -> String {
        let embedded = self.activities.get(&id).and_then(|b| b.name.as_deref());
        label(names.activity(id).or(embedded), "activity", id)
    }

    /// The customer of a project: id and name, from the lookups or an expanded record.
    fn customer_of<'a>(&'a self, names: &'a Names, project: i64) -> Option<(i64, Option<&'a str>)> {
        names.customer_of(project).or_else(|| {
            self.customers
                .get(&project)
                .map(|(id, n)| (*id, n.as_deref()))
        })
    }

    fn customer_name(&self, names: &Names, project: i64) -> Option<String> {
        let (cid, name) = self.customer_of(names, project)?;
        let name = name.or_else(|| names.customer(cid).map(|c| c.name.as_str()))?;
        Some(label(Some(name), "customer", cid))
    }

    /// `Customer / Project`, or `Project` when the customer is unknown.
    fn project_name(&self, names: &Names, id: i64) -> String {
        let embedded = self.projects.get(&id).and_then(|b| b.name.as_deref());
        let project = label(
            names.project(id).map(|p| p.name.as_str()).or(embedded),
            "project",
            id,
        );
        match self.customer_name(names, id) {
            Some(c) => format!("{c} / {project}"),
            None => project,
        }
    }

    /// One record of each project and activity that `names` cannot name, busiest first.
    pub fn unnamed_samples(&self, names: &Names) -> Vec<Sample> {
        let mut out = Vec::new();
        for (id, b) in Self::sorted(&self.projects) {
            if names.project(id).is_none() && b.name.is_none() {
                out.extend(b.sample.clone());
            }
        }
        for (id, b) in Self::sorted(&self.activities) {
            if names.activity(id).is_none() && b.name.is_none() {
                out.extend(b.sample.clone());
            }
        }
        out
    }

    /// Notes for entities shown by id, saying why.
    pub fn name_notes(&self, names: &Names) -> Vec<String> {
        let (users, projects, activities) = self.ids();
        let unnamed_users = users
            .iter()
            .filter(|u| names.user(**u).is_none() && self.users[*u].name.is_none())
            .count();
        let unnamed_projects = projects
            .iter()
            .filter(|p| names.project(**p).is_none() && self.projects[*p].name.is_none())
            .count();
        let unnamed_activities = activities
            .iter()
            .filter(|a| names.activity(**a).is_none() && self.activities[*a].name.is_none())
            .count();
        // Users are named in the report only when there are several of them.
        let unnamed_users = if self.users.len() > 1 {
            unnamed_users
        } else {
            0
        };
        [
            names.note(Kind::Project, unnamed_projects),
            names.note(Kind::Activity, unnamed_activities),
            names.note(Kind::User, unnamed_users),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn sorted(map: &HashMap<i64, Bucket>) -> Vec<(i64, &Bucket)> {
        let mut v: Vec<(i64, &Bucket)> = map.iter().map(|(k, b)| (*k, b)).collect();
        v.sort_by(|a, b| b.1.secs.cmp(&a.1.secs).then(a.0.cmp(&b.0)));
        v
    }

    fn pct(&self, secs: i64) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            secs as f64 * 100.0 / self.total as f64
        }
    }

    /// Years in the data that the period `[from, to]` does not cover completely.
    fn partial_years(&self, from: Option<Date>, to: Option<Date>) -> HashSet<i32> {
        let from = from.or(self.first);
        let to = to.or(self.last);
        self.years
            .keys()
            .copied()
            .filter(|y| {
                from.is_some_and(|f| {
                    f > Date {
                        year: *y,
                        month: 1,
                        day: 1,
                    }
                }) || to.is_some_and(|t| {
                    t < Date {
                        year: *y,
                        month: 12,
                        day: 31,
                    }
                })
            })
            .collect()
    }

    /// A short readable report (markdown) with the names the records carried.
    pub fn report(&self, by_year: bool, period: (Option<Date>, Option<Date>)) -> String {
        self.report_named(&Names::default(), by_year, period)
    }

    /// A short readable report (markdown), names from `names`. `period` is the filter's
    /// begin/end when given.
    pub fn report_named(
        &self,
        names: &Names,
        by_year: bool,
        period: (Option<Date>, Option<Date>),
    ) -> String {
        if self.entries == 0 {
            return "## Statistics\nNo timesheets match this filter.".into();
        }
        let h = |s: i64| time::hours(s);
        let mut o = Vec::new();
        o.push(format!("## Statistics ({} timesheets)", self.entries));
        if let (Some(f), Some(l)) = (self.first, self.last) {
            o.push(format!(
                "Period with records: {f} to {l}; days with records: {}, person-days: {}",
                self.days.len(),
                self.person_days.len()
            ));
        }
        o.push(format!(
            "Total: {} h; billable {} h ({:.1}%), not billable {} h",
            h(self.total),
            h(self.billable),
            self.pct(self.billable),
            h(self.total - self.billable)
        ));
        o.push(format!(
            "Entries: {} completed, {} running; users: {}",
            self.entries - self.running,
            self.running,
            self.users.len()
        ));
        let per_day = self.total as f64 / 3600.0 / self.days.len().max(1) as f64;
        let per_pd = self.total as f64 / 3600.0 / self.person_days.len().max(1) as f64;
        o.push(format!(
            "Average: {per_day:.2} h per day with records, {per_pd:.2} h per person-day"
        ));
        let section = |title: &str,
                       map: &HashMap<i64, Bucket>,
                       name: &dyn Fn(i64) -> String,
                       limit: usize| {
            let items = Self::sorted(map);
            let mut lines = vec![format!("{title}:")];
            for (i, (id, b)) in items.iter().take(limit).enumerate() {
                lines.push(format!(
                    "{}. {} (#{id}): {} h ({:.1}%), {} entries",
                    i + 1,
                    name(*id),
                    h(b.secs),
                    self.pct(b.secs),
                    b.entries
                ));
            }
            if items.len() > limit {
                lines.push(format!("… and {} more", items.len() - limit));
            }
            lines.join("\n")
        };
        o.push(section(
            "By project",
            &self.projects,
            &|id| self.project_name(names, id),
            10,
        ));
        o.push(section(
            "By activity",
            &self.activities,
            &|id| self.activity_name(names, id),
            10,
        ));
        if self.users.len() > 1 {
            o.push(section(
                "By user",
                &self.users,
                &|id| self.user_name(names, id),
                20,
            ));
        }
        let months: Vec<String> = self
            .months
            .iter()
            .map(|((y, m), s)| format!("{y}-{m:02}: {} h", h(*s)))
            .collect();
        o.push(format!("By month: {}", months.join("; ")));
        if self.weeks.len() <= 12 {
            let weeks: Vec<String> = self
                .weeks
                .iter()
                .map(|((y, w), s)| format!("{y}-W{w:02}: {} h", h(*s)))
                .collect();
            o.push(format!("By ISO week: {}", weeks.join("; ")));
        }
        if by_year {
            let partial = self.partial_years(period.0, period.1);
            let mut lines = vec!["By year:".to_string()];
            let mut prev_full: Option<(i32, i64)> = None;
            for (y, (secs, n)) in &self.years {
                let mark = if partial.contains(y) {
                    " (partial year)"
                } else {
                    ""
                };
                let mut line = format!("- {y}: {} h, {n} entries{mark}", h(*secs));
                if mark.is_empty() {
                    if let Some((py, ps)) = prev_full
                        && ps > 0
                    {
                        line.push_str(&format!(
                            ", {:+.1}% vs {py}",
                            (*secs - ps) as f64 * 100.0 / ps as f64
                        ));
                    }
                    prev_full = Some((*y, *secs));
                }
                lines.push(line);
            }
            o.push(lines.join("\n"));
        }
        if !self.tags.is_empty() {
            let mut tags: Vec<(&String, &u64)> = self.tags.iter().collect();
            tags.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let shown: Vec<String> = tags
                .iter()
                .take(10)
                .map(|(t, n)| format!("{} ×{n}", text::safe(t)))
                .collect();
            o.push(format!("Tags: {}", shown.join(", ")));
        }
        if let Some((hour, n)) = self
            .start_hours
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        {
            o.push(format!(
                "Most common start hour: {hour:02}:00 ({n} entries)"
            ));
        }
        o.extend(self.revenue_report(names));
        o.push("Overtime: not computed (Kimai's API offers no working-time balance).".into());
        o.join("\n")
    }

    /// Revenue grouped by currency: totals, and per customer, project and user.
    fn revenue(&self, names: &Names) -> Revenue {
        let currency = |pid: i64| {
            names
                .currency_of(pid)
                .unwrap_or(UNKNOWN_CURRENCY)
                .to_string()
        };
        let mut r = Revenue::default();
        let mut customers: HashMap<i64, (String, Money)> = HashMap::new();
        let mut projects: HashMap<i64, Money> = HashMap::new();
        let mut users: HashMap<i64, BTreeMap<String, Money>> = HashMap::new();
        for ((pid, uid), m) in &self.money {
            let cur = currency(*pid);
            r.totals.entry(cur.clone()).or_default().add(*m);
            projects.entry(*pid).or_default().add(*m);
            let cid = self.customer_of(names, *pid).map_or(0, |(c, _)| c);
            customers
                .entry(cid)
                .or_insert_with(|| (cur.clone(), Money::default()))
                .1
                .add(*m);
            users
                .entry(*uid)
                .or_default()
                .entry(cur)
                .or_default()
                .add(*m);
        }
        let by_money = |a: &(String, Money, i64), b: &(String, Money, i64)| {
            a.0.cmp(&b.0)
                .then(b.1.billable.total_cmp(&a.1.billable))
                .then(b.1.not_billable.total_cmp(&a.1.not_billable))
                .then(a.2.cmp(&b.2))
        };
        let mut c: Vec<(String, Money, i64)> = customers
            .into_iter()
            .map(|(cid, (cur, m))| (cur, m, cid))
            .collect();
        c.sort_by(by_money);
        r.customers = c
            .into_iter()
            .map(|(cur, m, cid)| {
                let name = if cid == 0 {
                    "customer unknown".to_string()
                } else {
                    let n = names.customer(cid).map(|c| c.name.as_str()).or_else(|| {
                        self.projects
                            .keys()
                            .find_map(|p| match self.customer_of(names, *p) {
                                Some((id, n)) if id == cid => n,
                                _ => None,
                            })
                    });
                    label(n, "customer", cid)
                };
                (cid, name, cur, m)
            })
            .collect();
        let mut p: Vec<(String, Money, i64)> = projects
            .into_iter()
            .map(|(pid, m)| (currency(pid), m, pid))
            .collect();
        p.sort_by(by_money);
        r.projects = p
            .into_iter()
            .map(|(cur, m, pid)| (pid, self.project_name(names, pid), cur, m))
            .collect();
        for (uid, _) in Self::sorted(&self.users) {
            if let Some(amounts) = users.remove(&uid) {
                r.users.push((
                    uid,
                    self.user_name(names, uid),
                    amounts.into_iter().collect(),
                ));
            }
        }
        r
    }

    /// The revenue lines of the report (see the module header).
    fn revenue_report(&self, names: &Names) -> Vec<String> {
        if self.rated == 0 {
            return vec![format!(
                "Revenue: not shown: Kimai sent no rates to this token ({RATES_HIDDEN})."
            )];
        }
        let r = self.revenue(names);
        let mut o = vec![
            "Revenue (Kimai's rate of each record, in the currency of the project's customer):"
                .to_string(),
        ];
        for (cur, m) in &r.totals {
            o.push(format!(
                "- {}: {}",
                currency_label(cur),
                money_text(None, m)
            ));
        }
        let list = |title: &str, items: &[(i64, String, String, Money)], limit: usize| {
            let mut lines = vec![format!("{title}:")];
            for (i, (id, name, cur, m)) in items.iter().take(limit).enumerate() {
                let id = if *id == 0 {
                    String::new()
                } else {
                    format!(" (#{id})")
                };
                lines.push(format!(
                    "{}. {name}{id}: {}",
                    i + 1,
                    money_text(Some(cur), m)
                ));
            }
            if items.len() > limit {
                lines.push(format!("… and {} more", items.len() - limit));
            }
            lines.join("\n")
        };
        o.push(list("Revenue by customer", &r.customers, 10));
        o.push(list("Revenue by project", &r.projects, 10));
        if r.users.len() > 1 {
            let mut lines = vec!["Revenue by user:".to_string()];
            for (i, (id, name, amounts)) in r.users.iter().take(20).enumerate() {
                let parts: Vec<String> = amounts
                    .iter()
                    .map(|(cur, m)| money_text(Some(cur), m))
                    .collect();
                lines.push(format!("{}. {name} (#{id}): {}", i + 1, parts.join("; ")));
            }
            if r.users.len() > 20 {
                lines.push(format!("… and {} more", r.users.len() - 20));
            }
            o.push(lines.join("\n"));
        }
        if self.unrated > 0 {
            o.push(format!(
                "Note: {} of {} records came without a rate and are not in the revenue ({RATES_HIDDEN}).",
                self.unrated,
                self.rated + self.unrated
            ));
        }
        if r.totals.contains_key(UNKNOWN_CURRENCY) {
            o.push("Note: the currency of some customers is unknown (their project or customer is not in the lists this token can see); their amounts are shown apart.".into());
        }
        vec![o.join("\n")]
    }

    fn revenue_json(&self, names: &Names) -> Value {
        if self.rated == 0 {
            return Value::Null;
        }
        let r = self.revenue(names);
        let currency = |cur: &str| (cur != UNKNOWN_CURRENCY).then(|| cur.to_string());
        let m = |cur: &str, m: &Money| json!({"currency": currency(cur), "billable": cents(m.billable), "not_billable": cents(m.not_billable)});
        let list = |items: &[(i64, String, String, Money)]| -> Vec<Value> {
            items
                .iter()
                .map(|(id, name, cur, money)| {
                    json!({"id": id, "name": name, "currency": currency(cur), "billable": cents(money.billable), "not_billable": cents(money.not_billable)})
                })
                .collect()
        };
        json!({
            "records_with_rate": self.rated,
            "records_without_rate": self.unrated,
            "totals": r.totals.iter().map(|(c, x)| m(c, x)).collect::<Vec<_>>(),
            "customers": list(&r.customers),
            "projects": list(&r.projects),
            "users": r.users.iter().map(|(id, name, amounts)| json!({"id": id, "name": name, "amounts": amounts.iter().map(|(c, x)| m(c, x)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        })
    }

    /// The same figures as JSON, with the names the records carried.
    pub fn json(&self, by_year: bool, period: (Option<Date>, Option<Date>)) -> Value {
        self.json_named(&Names::default(), by_year, period)
    }

    /// The same figures as JSON, names from `names`.
    pub fn json_named(
        &self,
        names: &Names,
        by_year: bool,
        period: (Option<Date>, Option<Date>),
    ) -> Value {
        let hrs = |s: i64| (s as f64 / 36.0).round() / 100.0;
        let list = |map: &HashMap<i64, Bucket>, name: &dyn Fn(i64) -> String| -> Vec<Value> {
            Self::sorted(map).iter().map(|(id, b)| json!({"id": id, "name": name(*id), "hours": hrs(b.secs), "entries": b.entries})).collect()
        };
        let partial = self.partial_years(period.0, period.1);
        let mut v = json!({
            "entries": self.entries,
            "running": self.running,
            "total_hours": hrs(self.total),
            "billable_hours": hrs(self.billable),
            "non_billable_hours": hrs(self.total - self.billable),
            "first_date": self.first.map(|d| d.to_string()),
            "last_date": self.last.map(|d| d.to_string()),
            "days_with_records": self.days.len(),
            "person_days": self.person_days.len(),
            "users": list(&self.users, &|id| self.user_name(names, id)),
            "projects": list(&self.projects, &|id| self.project_name(names, id)),
            "activities": list(&self.activities, &|id| self.activity_name(names, id)),
            "months": self.months.iter().map(|((y, m), s)| json!({"month": format!("{y}-{m:02}"), "hours": hrs(*s)})).collect::<Vec<_>>(),
            "tags": self.tags.iter().collect::<BTreeMap<_, _>>(),
            "working_time_balance": null,
            "working_time_note": "Kimai's API offers no working-time balance; overtime is not computed.",
            "revenue": self.revenue_json(names),
        });
        if self.rated == 0 {
            v["revenue_note"] = json!(format!(
                "Kimai sent no rates to this token ({RATES_HIDDEN})."
            ));
        }
        if by_year {
            v["years"] = self
                .years
                .iter()
                .map(|(y, (s, n))| json!({"year": y, "hours": hrs(*s), "entries": n, "partial": partial.contains(y)}))
                .collect::<Vec<_>>()
                .into();
        }
        v
    }
}

/// Why a token may get no rates (contract §6.1).
const RATES_HIDDEN: &str = "Kimai 2.66+ sends them only with the view_rate_own_timesheet / view_rate_other_timesheet permission";

/// The currency key of amounts whose customer's currency is unknown.
const UNKNOWN_CURRENCY: &str = "?";

fn currency_label(cur: &str) -> String {
    if cur == UNKNOWN_CURRENCY {
        "currency unknown".into()
    } else {
        text::safe(cur)
    }
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `EUR 1200.00 billable, 0.00 not billable` (the currency left out when `cur` is `None`).
fn money_text(cur: Option<&str>, m: &Money) -> String {
    let prefix = cur
        .map(|c| format!("{} ", currency_label(c)))
        .unwrap_or_default();
    format!(
        "{prefix}{:.2} billable, {:.2} not billable",
        cents(m.billable),
        cents(m.not_billable)
    )
}

/// Amounts of one customer, project or user: (currency, money).
type Amounts = Vec<(String, Money)>;

/// Revenue as the report shows it.
#[derive(Default)]
struct Revenue {
    totals: BTreeMap<String, Money>,
    /// (id, name, currency, money); customer id 0 = unknown.
    customers: Vec<(i64, String, String, Money)>,
    projects: Vec<(i64, String, String, Money)>,
    /// (id, name, amounts per currency), in the order of hours.
    users: Vec<(i64, String, Amounts)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, begin: &str, secs: i64, user: i64, project: i64, billable: bool) -> Value {
        json!({"id": id, "begin": begin, "end": "x", "duration": secs, "billable": billable, "user": {"id": user, "username": format!("u{user}")},
               "project": {"id": project, "name": format!("P{project}"), "customer": {"id": 1, "name": "C"}}, "activity": {"id": 5, "name": "Dev"}, "tags": ["t"]})
    }

    #[test]
    fn totals_and_groupings() {
        let r = [
            rec(1, "2026-01-05T09:00:00+0100", 3600, 1, 1, true),
            rec(2, "2026-01-05T13:00:00+0100", 1800, 2, 2, false),
            rec(3, "2026-02-02T09:00:00+0100", 7200, 1, 1, true),
        ];
        let recs: Vec<Rec> = r.iter().map(|v| Rec::from_value(v).unwrap()).collect();
        let s = Stats::compute(&recs, 0);
        let out = s.report(false, (None, None));
        assert!(out.contains("## Statistics (3 timesheets)"), "{out}");
        assert!(
            out.contains("Total: 3.50 h; billable 3.00 h (85.7%), not billable 0.50 h"),
            "{out}"
        );
        assert!(
            out.contains("days with records: 2, person-days: 3"),
            "{out}"
        );
        assert!(
            out.contains("1. C / P1 (#1): 3.00 h (85.7%), 2 entries"),
            "{out}"
        );
        assert!(
            out.contains("By month: 2026-01: 1.50 h; 2026-02: 2.00 h"),
            "{out}"
        );
        assert!(
            out.contains("Most common start hour: 09:00 (2 entries)"),
            "{out}"
        );
        let j = s.json(true, (None, None));
        assert_eq!(j["total_hours"], json!(3.5));
        assert_eq!(j["years"][0]["partial"], json!(true));
    }

    #[test]
    fn records_of_both_shapes_decode() {
        let plain: Rec = serde_json::from_value(json!({"id": 1, "begin": "2026-01-05T09:00:00+0100", "end": null, "duration": 0, "user": 3, "project": 4, "activity": 5, "tags": [], "extra": {"a": [1, 2]}})).unwrap();
        assert_eq!(
            (plain.user.id, plain.project.id, plain.activity.id),
            (3, 4, 5)
        );
        assert!(plain.end.is_none() && plain.user.name.is_none());
        let expanded: Rec = serde_json::from_value(json!({"id": 2, "begin": "x", "user": {"id": 3, "username": "u", "alias": "", "teams": []},
            "project": {"id": 4, "name": "P", "customer": {"id": 9, "name": "C", "metaFields": []}}, "activity": {"id": 5, "name": "A", "project": null}})).unwrap();
        assert_eq!(expanded.user.name.as_deref(), Some("u"));
        assert_eq!(
            expanded.project.customer.as_ref().unwrap().name.as_deref(),
            Some("C")
        );
    }

    #[test]
    fn revenue_is_grouped_by_currency_and_split_by_billable() {
        use crate::tools::lookups::{CustomerName, List, ProjectName};
        use std::sync::Arc;
        let plain = |id: i64, user: i64, project: i64, rate: Option<f64>, billable: bool| {
            let mut v = json!({"id": id, "begin": "2026-01-05T09:00:00+0100", "end": "x", "duration": 3600,
                "billable": billable, "user": user, "project": project, "activity": 5, "tags": []});
            if let Some(r) = rate {
                v["rate"] = json!(r);
            }
            Rec::from_value(&v).unwrap()
        };
        let recs = [
            plain(1, 1, 10, Some(100.0), true),
            plain(2, 2, 10, Some(50.5), false),
            plain(3, 2, 20, Some(200.0), true),
            plain(4, 1, 30, Some(7.0), true),
        ];
        let s = Stats::compute(&recs, 0);
        let project = |name: &str, customer: i64, cname: &str| ProjectName {
            name: name.into(),
            customer: Some(customer),
            customer_name: Some(cname.into()),
        };
        let names = Names::from_lists(
            List::Read {
                map: Arc::new(
                    [
                        (10, project("Web", 1, "Acme")),
                        (20, project("App", 2, "Globex")),
                    ]
                    .into_iter()
                    .collect(),
                ),
                fresh: true,
            },
            List::Skipped,
            List::Read {
                map: Arc::new(
                    [(1, "Ann".to_string()), (2, "Bob".to_string())]
                        .into_iter()
                        .collect(),
                ),
                fresh: true,
            },
            List::Read {
                map: Arc::new(
                    [
                        (
                            1,
                            CustomerName {
                                name: "Acme".into(),
                                currency: Some("EUR".into()),
                            },
                        ),
                        (
                            2,
                            CustomerName {
                                name: "Globex".into(),
                                currency: Some("USD".into()),
                            },
                        ),
                    ]
                    .into_iter()
                    .collect(),
                ),
                fresh: true,
            },
        );
        let out = s.report_named(&names, false, (None, None));
        let revenue = &out[out.find("Revenue (").unwrap()..out.find("Overtime").unwrap()];
        assert_eq!(
            revenue,
            "Revenue (Kimai's rate of each record, in the currency of the project's customer):
- currency unknown: 7.00 billable, 0.00 not billable
- EUR: 100.00 billable, 50.50 not billable
- USD: 200.00 billable, 0.00 not billable
Revenue by customer:
1. customer unknown: currency unknown 7.00 billable, 0.00 not billable
2. Acme (#1): EUR 100.00 billable, 50.50 not billable
3. Globex (#2): USD 200.00 billable, 0.00 not billable
Revenue by project:
1. project #30 (#30): currency unknown 7.00 billable, 0.00 not billable
2. Acme / Web (#10): EUR 100.00 billable, 50.50 not billable
3. Globex / App (#20): USD 200.00 billable, 0.00 not billable
Revenue by user:
1. Ann (#1): currency unknown 7.00 billable, 0.00 not billable; EUR 100.00 billable, 0.00 not billable
2. Bob (#2): EUR 0.00 billable, 50.50 not billable; USD 200.00 billable, 0.00 not billable
Note: the currency of some customers is unknown (their project or customer is not in the lists this token can see); their amounts are shown apart.
"
        );
        let j = s.json_named(&names, false, (None, None));
        assert_eq!(
            j["revenue"]["totals"][1],
            json!({"currency": "EUR", "billable": 100.0, "not_billable": 50.5})
        );
        assert_eq!(j["revenue"]["customers"][2]["name"], json!("Globex"));
        // Records without a rate are counted, never taken as zero.
        let s = Stats::compute(
            &[
                plain(1, 1, 10, None, true),
                plain(2, 1, 10, Some(10.0), true),
            ],
            0,
        );
        let out = s.report_named(&names, false, (None, None));
        assert!(
            out.contains("Note: 1 of 2 records came without a rate and are not in the revenue"),
            "{out}"
        );
        let s = Stats::compute(&[plain(1, 1, 10, None, true)], 0);
        let out = s.report_named(&names, false, (None, None));
        assert!(
            out.contains("Revenue: not shown: Kimai sent no rates to this token"),
            "{out}"
        );
        assert!(s.json_named(&names, false, (None, None))["revenue"].is_null());
    }

    #[test]
    fn iso_weeks() {
        assert_eq!(iso_week(Date::new(2026, 1, 1).unwrap()), (2026, 1));
        assert_eq!(iso_week(Date::new(2027, 1, 1).unwrap()), (2026, 53));
        assert_eq!(iso_week(Date::new(2024, 12, 30).unwrap()), (2025, 1));
    }
}
