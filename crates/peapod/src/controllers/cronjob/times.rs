//! A CronJob's schedule arithmetic, as kube's pkg/controller/cronjob/utils.go does it: the most
//! recent time a Job should have started (within `startingDeadlineSeconds`), how many were
//! missed, and how long to wait for the next one.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::CronJob;
use peapod_apis::batch::v1::cronjob::schedule::Schedule;

/// The padding added to each requeue, for clocks that drift (kube's `nextScheduleDelta`).
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// More missed start times than this is "too many" (kube's arbitrary 100).
const TOO_MANY_MISSED: i64 = 100;

/// How many start times went by unmet since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedSchedules {
    None,
    Few,
    Many,
}

/// A schedule that fires twice within the same second: robfig accepts `59 23 31 2 *`, which
/// never fires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time difference between two schedules is less than 1 second")]
pub struct ScheduleTooDense;

/// What [`most_recent_schedule_time`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MostRecent {
    /// The last schedule time, else the creation time (later: the starting deadline).
    pub earliest: Timestamp,
    /// The most recent time a Job should have started, if any is due.
    pub recent: Option<Timestamp>,
    pub missed: MissedSchedules,
}

/// A schedule and the zone it runs in when it names none.
pub struct Clock<'a> {
    pub schedule: &'a Schedule,
    pub local: &'a TimeZone,
}

impl Clock<'_> {
    fn next(&self, after: Timestamp) -> Option<Timestamp> {
        self.schedule.next(after, self.local)
    }
}

fn timestamp_of(time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Timestamp {
    time.map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

/// `mostRecentScheduleTime`: from the last schedule time (or the creation time, or with
/// `include_deadline` no earlier than `startingDeadlineSeconds` ago) to `now`, the latest
/// start time passed.
pub fn most_recent_schedule_time(
    cron_job: &CronJob,
    now: Timestamp,
    clock: &Clock,
    include_deadline: bool,
) -> Result<MostRecent, (Timestamp, ScheduleTooDense)> {
    let status = cron_job.status.as_ref();
    let last = status.and_then(|s| s.last_schedule_time.as_ref());
    let mut earliest = match last {
        Some(last) => last.0,
        None => timestamp_of(cron_job.metadata.creation_timestamp.as_ref()),
    };
    let deadline = cron_job
        .spec
        .as_ref()
        .and_then(|s| s.starting_deadline_seconds);
    if let (true, Some(seconds)) = (include_deadline, deadline) {
        let scheduling_deadline = now - SignedDuration::from_secs(seconds);
        earliest = earliest.max(scheduling_deadline);
    }
    let none_due = |missed| MostRecent {
        earliest,
        recent: None,
        missed,
    };
    let t1 = clock.next(earliest);
    let t2 = t1.and_then(|t1| clock.next(t1));
    if t1.is_some_and(|t1| now < t1) {
        return Ok(none_due(MissedSchedules::None));
    }
    if let (Some(t1), true) = (t1, t2.is_some_and(|t2| now < t2)) {
        return Ok(MostRecent {
            recent: Some(t1),
            ..none_due(MissedSchedules::None)
        });
    }
    let (Some(t1), Some(t2)) = (t1, t2) else {
        return Err((earliest, ScheduleTooDense));
    };
    let between = rounded_seconds(t2.duration_since(t1));
    if between < 1 {
        return Err((earliest, ScheduleTooDense));
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed_count = elapsed / between + 1;
    // Back two intervals from the estimate, so irregular schedules (`30 6-16/4 * * 1-5`) and
    // `@every` land on their true latest time.
    let potential_earliest = t1 + SignedDuration::from_secs((missed_count - 2) * between);
    let mut recent = None;
    let mut next = clock.next(potential_earliest);
    while let Some(t) = next.filter(|t| *t <= now) {
        recent = Some(t);
        next = clock.next(t);
    }
    let missed = match missed_count {
        count if count > TOO_MANY_MISSED => MissedSchedules::Many,
        count if count > 0 => MissedSchedules::Few,
        _ => MissedSchedules::None,
    };
    Ok(MostRecent {
        recent,
        ..none_due(missed)
    })
}

/// Go's `Duration.Round(time.Second).Seconds()` as a whole number.
fn rounded_seconds(duration: SignedDuration) -> i64 {
    let nanos = duration.as_nanos();
    let second = 1_000_000_000i128;
    let rounded = (nanos.abs() + second / 2) / second;
    (rounded * nanos.signum()) as i64
}

/// `nextScheduleTimeDuration`: how long until the start after the most recent one (ignoring the
/// starting deadline), plus [`NEXT_SCHEDULE_DELTA`]. A schedule that never fires comes back
/// after the delta alone.
pub fn next_schedule_time_duration(cron_job: &CronJob, now: Timestamp, clock: &Clock) -> Duration {
    let most_recent = match most_recent_schedule_time(cron_job, now, clock, false) {
        Err(_) => now,
        Ok(MostRecent {
            recent: Some(recent),
            ..
        }) => recent,
        Ok(MostRecent {
            earliest,
            missed: MissedSchedules::None,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let next = clock.next(most_recent).unwrap_or(now);
    let wait = next.duration_since(now)
        + SignedDuration::try_from(NEXT_SCHEDULE_DELTA).unwrap_or_default();
    Duration::try_from(wait).unwrap_or(NEXT_SCHEDULE_DELTA)
}

/// `nextScheduleTime`: the most recent unmet start time within the starting deadline, and
/// whether too many were missed (kube then warns).
pub fn next_schedule_time(
    cron_job: &CronJob,
    now: Timestamp,
    clock: &Clock,
) -> Result<(Option<Timestamp>, MissedSchedules), ScheduleTooDense> {
    let found = most_recent_schedule_time(cron_job, now, clock, true).map_err(|(_, err)| err)?;
    match found.recent {
        Some(recent) if recent <= now => Ok((Some(recent), found.missed)),
        _ => Ok((None, found.missed)),
    }
}

/// `getJobName`: the CronJob's name and the scheduled time in minutes since the epoch, so a
/// start time makes one Job however often it is tried.
pub fn job_name(cron_job_name: &str, scheduled: Timestamp) -> String {
    format!("{cron_job_name}-{}", scheduled.as_second().div_euclid(60))
}

#[cfg(test)]
mod tests {
    use peapod_apis::batch::v1::cronjob::schedule::parse_standard;
    use serde_json::json;

    use super::*;

    fn top_of_the_hour() -> Timestamp {
        "2016-05-19T10:00:00Z".parse().expect("a timestamp")
    }

    fn after_top(minutes: i64, seconds: i64) -> Timestamp {
        top_of_the_hour() + SignedDuration::from_secs(minutes * 60 + seconds)
    }

    fn hours(hours: i64, minutes: i64) -> Timestamp {
        after_top(hours * 60 + minutes, 0)
    }

    fn cron_job(
        schedule: &str,
        created: Timestamp,
        last: Option<Timestamp>,
        deadline: Option<i64>,
    ) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "mycronjob", "namespace": "default",
                         "creationTimestamp": created.to_string()},
            "spec": {"schedule": schedule, "startingDeadlineSeconds": deadline,
                     "jobTemplate": {}},
            "status": {"lastScheduleTime": last.map(|t| t.to_string())},
        }))
        .expect("a cron job")
    }

    fn schedule_of(cron_job: &CronJob) -> Schedule {
        let spec = cron_job.spec.as_ref().expect("a spec");
        parse_standard(&spec.schedule, |_| true).expect("a valid schedule")
    }

    fn most_recent(
        cron_job: &CronJob,
        now: Timestamp,
        include_deadline: bool,
    ) -> Result<MostRecent, (Timestamp, ScheduleTooDense)> {
        let schedule = schedule_of(cron_job);
        let clock = Clock {
            schedule: &schedule,
            local: &TimeZone::UTC,
        };
        most_recent_schedule_time(cron_job, now, &clock, include_deadline)
    }

    /// kube's TestMostRecentScheduleTime.
    #[test]
    fn most_recent_schedule_times_follow_kube() {
        use MissedSchedules as M;
        let top = top_of_the_hour();
        let half_past = after_top(30, 0);
        let cases = [
            (
                "now before next schedule",
                cron_job("0 * * * *", top, None, None),
                false,
                after_top(0, 30),
                top,
                None,
                M::None,
            ),
            (
                "now just after next schedule",
                cron_job("0 * * * *", top, None, None),
                false,
                after_top(61, 0),
                top,
                Some(after_top(60, 0)),
                M::None,
            ),
            (
                "missed 5 schedules",
                cron_job("0 * * * *", after_top(0, 10), None, None),
                false,
                after_top(301, 0),
                after_top(0, 10),
                Some(after_top(300, 0)),
                M::Few,
            ),
            (
                "complex schedule",
                cron_job("30 6-16/4 * * 1-5", top, Some(half_past), None),
                false,
                hours(24, 31),
                half_past,
                Some(hours(24, 30)),
                M::Few,
            ),
            (
                "another complex schedule",
                cron_job("30 10,11,12 * * 1-5", top, Some(half_past), None),
                false,
                hours(30, 30),
                half_past,
                None,
                M::Few,
            ),
            (
                "complex schedule with longer diff between executions",
                cron_job("30 6-16/4 * * 1-5", top, Some(half_past), None),
                false,
                hours(96, 31),
                half_past,
                Some(hours(96, 30)),
                M::Few,
            ),
            (
                "complex schedule with shorter diff between executions",
                cron_job("30 6-16/4 * * 1-5", top, None, None),
                false,
                hours(24, 31),
                top,
                Some(hours(24, 30)),
                M::Few,
            ),
            (
                "@every schedule",
                cron_job(
                    "@every 1h",
                    after_top(-59, 0),
                    Some(after_top(1, 0)),
                    Some(10),
                ),
                false,
                hours(7 * 24, 0),
                after_top(1, 0),
                Some(hours(6 * 24 + 23, 1)),
                M::Many,
            ),
            (
                "earliestTime being CreationTimestamp and LastScheduleTime",
                cron_job("0 * * * *", top, Some(top), None),
                false,
                after_top(0, 30),
                top,
                None,
                M::None,
            ),
            (
                "earliestTime being LastScheduleTime",
                cron_job("*/5 * * * *", top, Some(half_past), None),
                false,
                after_top(31, 0),
                half_past,
                None,
                M::None,
            ),
            (
                "earliestTime being LastScheduleTime (within StartingDeadlineSeconds)",
                cron_job("*/5 * * * *", top, Some(half_past), Some(60)),
                false,
                after_top(31, 0),
                half_past,
                None,
                M::None,
            ),
            (
                "earliestTime being LastScheduleTime (outside StartingDeadlineSeconds)",
                cron_job("*/5 * * * *", top, Some(half_past), Some(60)),
                true,
                after_top(32, 0),
                after_top(31, 0),
                None,
                M::None,
            ),
        ];
        for (name, cron_job, include_deadline, now, earliest, recent, missed) in cases {
            let found = most_recent(&cron_job, now, include_deadline)
                .unwrap_or_else(|_| panic!("{name}: an error"));
            assert_eq!(
                found,
                MostRecent {
                    earliest,
                    recent,
                    missed
                },
                "{name}"
            );
        }
        let rogue = cron_job("59 23 31 2 *", after_top(0, 10), None, None);
        assert!(most_recent(&rogue, after_top(60, 0), false).is_err());
    }

    /// kube's TestNextScheduleTimeDuration.
    #[test]
    fn requeues_wait_for_the_next_start_plus_the_delta() {
        let top = top_of_the_hour();
        let cases = [
            (
                "complex schedule skipping weekend",
                cron_job("30 6-16/4 * * 1-5", top, Some(after_top(30, 0)), None),
                hours(24, 31),
                Duration::from_secs(3 * 3600 + 59 * 60),
            ),
            (
                "another complex schedule skipping weekend",
                cron_job("30 10,11,12 * * 1-5", top, Some(after_top(30, 0)), None),
                hours(30, 30),
                Duration::from_secs(66 * 3600),
            ),
            (
                "once a week cronjob, missed two runs",
                cron_job("0 12 * * 4", top, Some(hours(2, 0)), None),
                hours(19 * 24 + 1, 30),
                Duration::from_secs(48 * 3600 + 30 * 60),
            ),
            (
                "no previous run of a cronjob",
                cron_job("0 12 * * 5", top, None, None),
                hours(6, 0),
                Duration::from_secs(20 * 3600),
            ),
        ];
        for (name, cron_job, now, expected) in cases {
            let schedule = schedule_of(&cron_job);
            let clock = Clock {
                schedule: &schedule,
                local: &TimeZone::UTC,
            };
            let wait = next_schedule_time_duration(&cron_job, now, &clock);
            assert_eq!(wait, expected + NEXT_SCHEDULE_DELTA, "{name}");
        }
    }

    /// kube's TestNextScheduleTime, hourly on the hour.
    #[test]
    fn the_next_schedule_time_is_the_latest_unmet_one() {
        let t1 = top_of_the_hour();
        let t2 = hours(1, 0);
        let schedule = parse_standard("0 * * * ?", |_| true).expect("a schedule");
        let clock = Clock {
            schedule: &schedule,
            local: &TimeZone::UTC,
        };
        let next = |cron_job: &CronJob, now| next_schedule_time(cron_job, now, &clock);
        let created = t1 - SignedDuration::from_mins(10);
        let fresh = cron_job("0 * * * ?", created, None, None);
        assert_eq!(
            next(&fresh, t1 - SignedDuration::from_mins(7)),
            Ok((None, MissedSchedules::None))
        );
        assert_eq!(
            next(&fresh, t1 + SignedDuration::from_secs(2)).map(|n| n.0),
            Ok(Some(t1))
        );
        let started = cron_job("0 * * * ?", created, Some(t1), None);
        assert_eq!(
            next(&started, t1 + SignedDuration::from_mins(2)).map(|n| n.0),
            Ok(None)
        );
        let later = t2 + SignedDuration::from_mins(5);
        assert_eq!(next(&started, later).map(|n| n.0), Ok(Some(t2)));
        let two_due = cron_job(
            "0 * * * ?",
            t1 - SignedDuration::from_hours(2),
            Some(t1 - SignedDuration::from_hours(1)),
            None,
        );
        assert_eq!(next(&two_due, later).map(|n| n.0), Ok(Some(t2)));
        let far = t2 + SignedDuration::from_hours(240);
        assert!(matches!(
            next(&two_due, far),
            Ok((Some(_), MissedSchedules::Many))
        ));
        let deadline = cron_job(
            "0 * * * ?",
            t1 - SignedDuration::from_hours(2),
            Some(t1 - SignedDuration::from_hours(1)),
            Some(7200),
        );
        assert!(matches!(
            next(&deadline, far),
            Ok((Some(_), MissedSchedules::Few))
        ));
        let rogue = parse_standard("59 23 31 2 *", |_| true).expect("a schedule");
        let rogue_clock = Clock {
            schedule: &rogue,
            local: &TimeZone::UTC,
        };
        let fresh = cron_job(
            "59 23 31 2 *",
            t1 + SignedDuration::from_secs(10),
            None,
            None,
        );
        assert_eq!(
            next_schedule_time(&fresh, t2, &rogue_clock),
            Err(ScheduleTooDense)
        );
    }

    #[test]
    fn job_names_count_minutes_since_the_epoch() {
        let scheduled: Timestamp = "2016-05-19T10:00:00Z".parse().expect("a timestamp");
        assert_eq!(job_name("mycronjob", scheduled), "mycronjob-24394200");
    }
}
