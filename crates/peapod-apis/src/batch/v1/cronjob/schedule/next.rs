//! When a schedule next fires, as robfig/cron v3's `Next` computes it: field by field from the
//! coming second, in the schedule's zone, with Go's `time.Date` choosing the offset of a
//! wall-clock time that a DST change skips or repeats (so midnight-less days come out as robfig's).

use jiff::civil::{date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::{Schedule, STAR_BIT};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;

/// Go's `time.LoadLocation`: "" and "UTC" are UTC, "Local" the host's zone, anything else a
/// zone of the tz database, named exactly.
pub fn load_location(name: &str) -> Option<TimeZone> {
    match name {
        "" | "UTC" => Some(TimeZone::UTC),
        "Local" => Some(TimeZone::system()),
        _ => jiff::tz::db()
            .get(name)
            .ok()
            .filter(|tz| tz.iana_name() == Some(name)),
    }
}

impl Schedule {
    /// The first time the schedule fires strictly after `after`, or `None` when no time within
    /// five years matches (robfig's zero time). `local` is the zone of a schedule without `TZ=`.
    pub fn next(&self, after: Timestamp, local: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(delay) => {
                let delay = delay.as_secs().max(1) as i64;
                Timestamp::from_second(whole_second(after).checked_add(delay)?).ok()
            }
            Schedule::Fields { time_zone, .. } => {
                let tz = match time_zone {
                    Some(name) => load_location(name)?,
                    None => local.clone(),
                };
                let start = whole_second(after).checked_add(1)?;
                Timestamp::from_second(next_in_fields(self, start, &tz)?).ok()
            }
        }
    }
}

/// `after` without its fraction of a second (the floor, as Go's `t.Nanosecond()` is never
/// negative).
fn whole_second(after: Timestamp) -> i64 {
    let seconds = after.as_second();
    match after.subsec_nanosecond() < 0 {
        true => seconds - 1,
        false => seconds,
    }
}

fn has(bits: u64, value: i64) -> bool {
    (0..64).contains(&value) && bits & (1 << value) != 0
}

/// robfig's `SpecSchedule.Next` from `t` (unix seconds) on; seconds are always 0 in the
/// standard five-field form.
fn next_in_fields(schedule: &Schedule, mut t: i64, tz: &TimeZone) -> Option<i64> {
    let Schedule::Fields {
        minute,
        hour,
        month,
        ..
    } = schedule
    else {
        return None;
    };
    let mut added = false;
    let year_limit = i64::from(civil(t, tz)?.year()) + 5;
    'wrap: loop {
        let mut now = civil(t, tz)?;
        if i64::from(now.year()) > year_limit {
            return None;
        }
        while !has(*month, now.month().into()) {
            if !added {
                added = true;
                t = go_date(tz, now.with_day(1).with_clock(0, 0, 0))?;
            }
            t = go_date(tz, civil(t, tz)?.with_months_added(1))?;
            now = civil(t, tz)?;
            if now.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(schedule, now) {
            if !added {
                added = true;
                t = go_date(tz, now.with_clock(0, 0, 0))?;
            }
            t = go_date(tz, civil(t, tz)?.with_days_added(1))?;
            t = back_to_midnight(t, civil(t, tz)?.hour().into());
            now = civil(t, tz)?;
            if now.day() == 1 {
                continue 'wrap;
            }
        }
        while !has(*hour, now.hour().into()) {
            if !added {
                added = true;
                t = go_date(tz, now.with_clock(now.hour(), 0, 0))?;
            }
            t += HOUR;
            now = civil(t, tz)?;
            if now.hour() == 0 {
                continue 'wrap;
            }
        }
        while !has(*minute, now.minute().into()) {
            if !added {
                added = true;
                t -= t.rem_euclid(MINUTE);
            }
            t += MINUTE;
            now = civil(t, tz)?;
            if now.minute() == 0 {
                continue 'wrap;
            }
        }
        while now.second() != 0 {
            added = true;
            t += 1;
            now = civil(t, tz)?;
            if now.second() == 0 {
                continue 'wrap;
            }
        }
        return Some(t);
    }
}

/// robfig's fix for days whose midnight a DST change skips: a day that `time.Date` starts at
/// 23:00 or 01:00 is moved to the hour closest to midnight.
fn back_to_midnight(t: i64, hour: i64) -> i64 {
    match hour {
        0 => t,
        hour if hour > 12 => t + (24 - hour) * HOUR,
        hour => t - hour * HOUR,
    }
}

/// robfig's dayMatches: day of month and day of week both match, unless neither is `*`, when
/// either does.
fn day_matches(schedule: &Schedule, now: DateTime) -> bool {
    let Schedule::Fields {
        day_of_month,
        day_of_week,
        ..
    } = schedule
    else {
        return false;
    };
    let dom = has(*day_of_month, now.day().into());
    let dow = has(*day_of_week, now.weekday().to_sunday_zero_offset().into());
    match (day_of_month | day_of_week) & STAR_BIT != 0 {
        true => dom && dow,
        false => dom || dow,
    }
}

fn civil(t: i64, tz: &TimeZone) -> Option<DateTime> {
    Some(tz.to_datetime(Timestamp::from_second(t).ok()?))
}

/// Go's `time.Date`: the offset in force at the wall clock read as UTC, unless the instant it
/// gives falls under another offset, which is then taken (how Go resolves skipped and
/// repeated wall-clock times).
fn go_date(tz: &TimeZone, wall: DateTime) -> Option<i64> {
    let as_utc = wall.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second();
    let offset = i64::from(tz.to_offset(Timestamp::from_second(as_utc).ok()?).seconds());
    let guess = as_utc - offset;
    let settled = i64::from(tz.to_offset(Timestamp::from_second(guess).ok()?).seconds());
    Some(as_utc - settled)
}

/// Go's normalising arithmetic on a wall clock: months, then days, past their ends roll over.
trait GoCivil: Sized {
    fn with_months_added(self, months: i32) -> Self;
    fn with_days_added(self, days: i32) -> Self;
    fn with_day(self, day: i8) -> Self;
    fn with_clock(self, hour: i8, minute: i8, second: i8) -> Self;
}

impl GoCivil for DateTime {
    fn with_months_added(self, months: i32) -> Self {
        let total = i32::from(self.year()) * 12 + i32::from(self.month()) - 1 + months;
        let first = date(
            total.div_euclid(12) as i16,
            (total.rem_euclid(12) + 1) as i8,
            1,
        );
        let day = first
            .checked_add(jiff::Span::new().days(i64::from(self.day()) - 1))
            .unwrap_or(first);
        day.to_datetime(self.time())
    }

    fn with_days_added(self, days: i32) -> Self {
        let day = self.date().checked_add(jiff::Span::new().days(days));
        day.map_or(self, |day| day.to_datetime(self.time()))
    }

    fn with_day(self, day: i8) -> Self {
        date(self.year(), self.month(), day).to_datetime(self.time())
    }

    fn with_clock(self, hour: i8, minute: i8, second: i8) -> Self {
        self.date().at(hour, minute, second, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_standard;
    use super::*;

    fn next(from: &str, spec: &str) -> Option<Timestamp> {
        let schedule = parse_standard(spec, |zone| load_location(zone).is_some())
            .unwrap_or_else(|err| panic!("{spec}: {err}"));
        let from: Timestamp = from.parse().expect("a timestamp");
        schedule.next(from, &TimeZone::UTC)
    }

    fn at(time: &str) -> Option<Timestamp> {
        Some(time.parse().expect("a timestamp"))
    }

    /// robfig's TestNext cases, in the five-field form.
    #[test]
    fn next_walks_the_fields_as_robfig_does() {
        let cases = [
            (
                "2012-07-09T14:45:00Z",
                "0/15 * * * *",
                "2012-07-09T15:00:00Z",
            ),
            (
                "2012-07-09T14:59:00Z",
                "0/15 * * * *",
                "2012-07-09T15:00:00Z",
            ),
            (
                "2012-07-09T14:59:59Z",
                "0/15 * * * *",
                "2012-07-09T15:00:00Z",
            ),
            (
                "2012-07-09T15:45:00Z",
                "20-35/15 * * * *",
                "2012-07-09T16:20:00Z",
            ),
            (
                "2012-07-09T23:46:00Z",
                "*/15 * * * *",
                "2012-07-10T00:00:00Z",
            ),
            (
                "2012-07-09T23:45:00Z",
                "20-35/15 * * * *",
                "2012-07-10T00:20:00Z",
            ),
            (
                "2012-07-09T23:35:51Z",
                "20-35/15 1/2 * * *",
                "2012-07-10T01:20:00Z",
            ),
            (
                "2012-07-09T23:35:51Z",
                "20-35/15 10-12 * * *",
                "2012-07-10T10:20:00Z",
            ),
            (
                "2012-07-09T23:35:51Z",
                "20-35/15 1/2 */2 * *",
                "2012-07-11T01:20:00Z",
            ),
            (
                "2012-07-09T23:35:51Z",
                "20-35/15 * 9-20 * *",
                "2012-07-10T00:20:00Z",
            ),
            (
                "2012-07-09T23:35:51Z",
                "20-35/15 * 9-20 Jul *",
                "2012-07-10T00:20:00Z",
            ),
            (
                "2012-07-09T23:35:00Z",
                "0 0 9 Apr-Oct ?",
                "2012-08-09T00:00:00Z",
            ),
            (
                "2012-07-09T23:35:00Z",
                "0 0 */5 Apr,Aug,Oct Mon",
                "2012-08-01T00:00:00Z",
            ),
            (
                "2012-07-09T23:35:00Z",
                "0 0 */5 Oct Mon",
                "2012-10-01T00:00:00Z",
            ),
            (
                "2012-07-09T23:35:00Z",
                "0 0 * Feb Mon",
                "2013-02-04T00:00:00Z",
            ),
            (
                "2012-07-09T23:35:00Z",
                "0 0 * Feb Mon/2",
                "2013-02-01T00:00:00Z",
            ),
            ("2012-12-31T23:59:45Z", "* * * * *", "2013-01-01T00:00:00Z"),
            (
                "2012-07-09T23:35:00Z",
                "0 0 29 Feb ?",
                "2016-02-29T00:00:00Z",
            ),
        ];
        for (from, spec, expected) in cases {
            assert_eq!(next(from, spec), at(expected), "{spec} after {from}");
        }
    }

    #[test]
    fn daylight_saving_changes_skip_and_repeat_wall_clock_times() {
        let ny = "TZ=America/New_York";
        let cases = [
            (
                "2012-03-11T00:00:00-05:00",
                "30 2 11 Mar ?",
                "2013-03-11T02:30:00-04:00",
            ),
            (
                "2012-03-11T00:00:00-05:00",
                "0 * * * ?",
                "2012-03-11T01:00:00-05:00",
            ),
            (
                "2012-03-11T01:00:00-05:00",
                "0 * * * ?",
                "2012-03-11T03:00:00-04:00",
            ),
            (
                "2012-03-11T00:00:00-05:00",
                "0 1 * * ?",
                "2012-03-11T01:00:00-05:00",
            ),
            (
                "2012-03-11T01:00:00-05:00",
                "0 1 * * ?",
                "2012-03-12T01:00:00-04:00",
            ),
            (
                "2012-03-11T00:00:00-05:00",
                "0 2 * * ?",
                "2012-03-12T02:00:00-04:00",
            ),
            (
                "2012-11-04T00:00:00-04:00",
                "30 2 04 Nov ?",
                "2012-11-04T02:30:00-05:00",
            ),
            (
                "2012-11-04T01:45:00-04:00",
                "30 1 04 Nov ?",
                "2012-11-04T01:30:00-05:00",
            ),
            (
                "2012-11-04T00:00:00-04:00",
                "0 * * * ?",
                "2012-11-04T01:00:00-04:00",
            ),
            (
                "2012-11-04T01:00:00-04:00",
                "0 * * * ?",
                "2012-11-04T01:00:00-05:00",
            ),
            (
                "2012-11-04T01:00:00-05:00",
                "0 * * * ?",
                "2012-11-04T02:00:00-05:00",
            ),
            (
                "2012-11-04T00:00:00-04:00",
                "0 1 * * ?",
                "2012-11-04T01:00:00-04:00",
            ),
            (
                "2012-11-04T01:00:00-04:00",
                "0 1 * * ?",
                "2012-11-04T01:00:00-05:00",
            ),
            (
                "2012-11-04T01:00:00-05:00",
                "0 1 * * ?",
                "2012-11-05T01:00:00-05:00",
            ),
            (
                "2012-11-04T00:00:00-04:00",
                "0 2 * * ?",
                "2012-11-04T02:00:00-05:00",
            ),
            (
                "2012-11-04T02:00:00-05:00",
                "0 2 * * ?",
                "2012-11-05T02:00:00-05:00",
            ),
            (
                "2012-11-04T00:00:00-04:00",
                "0 3 * * ?",
                "2012-11-04T03:00:00-05:00",
            ),
            (
                "2012-11-04T03:00:00-05:00",
                "0 3 * * ?",
                "2012-11-05T03:00:00-05:00",
            ),
        ];
        for (from, spec, expected) in cases {
            let spec = format!("{ny} {spec}");
            assert_eq!(next(from, &spec), at(expected), "{spec} after {from}");
        }
        let sao_paulo = [
            (
                "2018-10-17T05:00:00-04:00",
                "0 9 10 * ?",
                "2018-11-10T06:00:00-05:00",
            ),
            (
                "2018-02-14T05:00:00-05:00",
                "0 9 22 * ?",
                "2018-02-22T07:00:00-05:00",
            ),
        ];
        for (from, spec, expected) in sao_paulo {
            let spec = format!("TZ=America/Sao_Paulo {spec}");
            assert_eq!(next(from, &spec), at(expected), "{spec} after {from}");
        }
    }

    #[test]
    fn unsatisfiable_schedules_have_no_next_time() {
        assert_eq!(next("2012-07-09T23:35:00Z", "0 0 30 Feb ?"), None);
        assert_eq!(next("2012-07-09T23:35:00Z", "0 0 31 Apr ?"), None);
        assert_eq!(next("2016-05-19T10:00:10Z", "59 23 31 2 *"), None);
    }

    #[test]
    fn every_adds_whole_seconds_to_the_whole_second() {
        assert_eq!(
            next("2016-05-19T10:00:00.5Z", "@every 1h"),
            at("2016-05-19T11:00:00Z")
        );
        assert_eq!(
            next("2016-05-19T10:00:00Z", "@every 100ms"),
            at("2016-05-19T10:00:01Z")
        );
        assert_eq!(
            next("2016-05-19T10:00:00Z", "@every 90.5s"),
            at("2016-05-19T10:01:30Z")
        );
    }

    #[test]
    fn schedules_without_a_zone_run_in_the_local_zone() {
        let schedule = parse_standard("0 12 * * *", |_| true).expect("a schedule");
        let rome = load_location("Europe/Rome").expect("Europe/Rome in the tz database");
        let from: Timestamp = "2016-05-19T10:00:00Z".parse().expect("a timestamp");
        assert_eq!(schedule.next(from, &rome), at("2016-05-20T10:00:00Z"));
        assert_eq!(
            schedule.next(from, &TimeZone::UTC),
            at("2016-05-19T12:00:00Z")
        );
        assert!(load_location("europe/rome").is_none());
        assert!(load_location("Mars/Olympus").is_none());
        assert_eq!(load_location(""), Some(TimeZone::UTC));
    }
}
