//! kube's TestControllerV2SyncCronJob cases for the decision, and the accounting of Jobs.

use jiff::SignedDuration;
use serde_json::json;

use super::*;
use crate::controllers::cronjob::jobs::reference_of;
use crate::controllers::cronjob::times::NEXT_SCHEDULE_DELTA;

const ON_THE_HOUR: &str = "0 * * * ?";
const SHORT_DEAD: i64 = 10;
const MEDIUM_DEAD: i64 = 2 * 60 * 60;
const LONG_DEAD: i64 = 1_000_000;

fn at(time: &str) -> Timestamp {
    time.parse().expect("a timestamp")
}

fn just_before_the_hour() -> Timestamp {
    at("2016-05-19T09:59:00Z")
}

fn just_after_the_hour() -> Timestamp {
    at("2016-05-19T10:01:00Z")
}

fn week_after_the_hour() -> Timestamp {
    at("2016-05-26T10:00:00Z")
}

fn minutes(minutes: u64) -> Duration {
    Duration::from_secs(minutes * 60) + NEXT_SCHEDULE_DELTA
}

/// kube's test CronJob; one that ran was created before the prior hour and last scheduled
/// just after it, with that Job still active if `still_active`.
fn cron_job(policy: &str, ran_previously: bool, still_active: bool) -> CronJob {
    let mut cron_job: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "mycronjob", "namespace": "snazzycats", "uid": "1a2b3c",
                     "creationTimestamp": "2016-05-19T09:59:00Z"},
        "spec": {"schedule": ON_THE_HOUR, "concurrencyPolicy": policy, "suspend": false,
                 "jobTemplate": {"metadata": {"labels": {"a": "b"}}}},
    }))
    .expect("a cron job");
    if ran_previously {
        cron_job.metadata.creation_timestamp = Some(Time(at("2016-05-19T08:59:00Z")));
        let status = cron_job.status.get_or_insert_with(Default::default);
        status.last_schedule_time = Some(Time(at("2016-05-19T09:01:00Z")));
        if still_active {
            status.active = Some(vec![reference_of(&prior_job(None))]);
        }
    }
    cron_job
}

fn prior_job(condition: Option<&str>) -> Job {
    let conditions: Vec<_> = condition
        .into_iter()
        .map(|type_| json!({"type": type_, "status": "True"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "mycronjob-24394141", "namespace": "snazzycats", "uid": "1234"},
        "status": {"conditions": conditions, "completionTime": "2016-05-19T09:01:10Z"},
    }))
    .expect("a job")
}

fn with_spec(
    mut cron_job: CronJob,
    change: impl FnOnce(&mut k8s_openapi::api::batch::v1::CronJobSpec),
) -> CronJob {
    change(cron_job.spec.as_mut().expect("a spec"));
    cron_job
}

fn reasons(decision: &Decision) -> Vec<&'static str> {
    decision.events.iter().map(|e| e.reason).collect()
}

fn start(scheduled: Timestamp, replace: bool, requeue: Duration) -> Step {
    Step::Start {
        scheduled,
        replace,
        requeue,
    }
}

#[test]
fn a_cron_job_that_never_ran_starts_on_the_hour_under_every_policy() {
    let top = at("2016-05-19T10:00:00Z");
    for policy in ["Allow", "Forbid", "Replace"] {
        let fresh = cron_job(policy, false, false);
        let not_time = decide(&fresh, just_before_the_hour(), &TimeZone::UTC);
        assert_eq!(not_time.step, Step::RequeueAfter(minutes(1)), "{policy}");
        let is_time = decide(&fresh, just_after_the_hour(), &TimeZone::UTC);
        let replace = policy == "Replace";
        assert_eq!(is_time.step, start(top, replace, minutes(59)), "{policy}");
        assert!(is_time.events.is_empty());
    }
}

#[test]
fn suspended_deleted_and_unusable_cron_jobs_stop() {
    let now = just_after_the_hour();
    let suspended = with_spec(cron_job("Allow", false, false), |s| s.suspend = Some(true));
    assert_eq!(
        decide(&suspended, now, &TimeZone::UTC),
        Decision::stop(vec![])
    );
    let mut deleted = cron_job("Allow", false, false);
    deleted.metadata.deletion_timestamp = Some(Time(now));
    assert_eq!(decide(&deleted, now, &TimeZone::UTC).step, Step::Stop);

    let bad_schedule = with_spec(cron_job("Forbid", false, false), |s| {
        s.schedule = "obvious error schedule".into()
    });
    let decision = decide(&bad_schedule, now, &TimeZone::UTC);
    assert_eq!(decision.step, Step::Stop);
    assert_eq!(
        decision.events,
        [Event::warning(
            "UnparseableSchedule",
            r#"unparseable schedule: "obvious error schedule" : expected exactly 5 fields, found 3: [obvious error schedule]"#.into()
        )]
    );
    let bad_zone = with_spec(cron_job("Allow", false, false), |s| {
        s.time_zone = Some("bad timezone".into())
    });
    let decision = decide(&bad_zone, now, &TimeZone::UTC);
    assert_eq!(decision.step, Step::Stop);
    assert_eq!(
        decision.events,
        [Event::warning(
            "UnknownTimeZone",
            r#"invalid timeZone: "bad timezone": unknown time zone bad timezone"#.into()
        )]
    );
    let rogue = with_spec(cron_job("Allow", false, false), |s| {
        s.schedule = "59 23 31 2 *".into()
    });
    let decision = decide(&rogue, now, &TimeZone::UTC);
    assert_eq!(decision.step, Step::Stop);
    assert_eq!(reasons(&decision), ["InvalidSchedule"]);
}

#[test]
fn time_zones_come_from_the_spec_or_the_schedule() {
    let top = at("2016-05-19T10:00:00Z");
    let new_york = with_spec(cron_job("Allow", false, false), |s| {
        s.time_zone = Some("America/New_York".into())
    });
    let decision = decide(&new_york, just_after_the_hour(), &TimeZone::UTC);
    assert_eq!(decision.step, start(top, false, minutes(59)));
    let not_yet = decide(&new_york, just_before_the_hour(), &TimeZone::UTC);
    assert_eq!(not_yet.step, Step::RequeueAfter(minutes(1)));

    let both = with_spec(new_york, |s| s.schedule = format!("TZ=UTC {ON_THE_HOUR}"));
    let decision = decide(&both, just_after_the_hour(), &TimeZone::UTC);
    assert_eq!(decision.step, start(top, false, minutes(59)));
    assert_eq!(reasons(&decision), ["UnsupportedSchedule"]);

    // Without a zone, the agent's: noon in Rome is 10:00 UTC in May.
    let daily = with_spec(cron_job("Allow", false, false), |s| {
        s.schedule = "0 12 * * *".into()
    });
    let rome = load_location("Europe/Rome").expect("Europe/Rome");
    let decision = decide(&daily, just_after_the_hour(), &rome);
    assert!(matches!(decision.step, Step::Start { scheduled, .. } if scheduled == top));
}

#[test]
fn starting_deadlines_miss_late_starts() {
    let late = just_after_the_hour() + SignedDuration::from_mins(SHORT_DEAD + 1);
    let short = with_spec(cron_job("Allow", false, false), |s| {
        s.starting_deadline_seconds = Some(SHORT_DEAD)
    });
    let decision = decide(&short, late, &TimeZone::UTC);
    assert_eq!(
        decision.step,
        Step::RequeueAfter(minutes(60 - 1 - (SHORT_DEAD as u64 + 1)))
    );
    // The deadline moves the earliest start past the hour: nothing is due, nothing missed.
    assert!(decision.events.is_empty());
    let long = with_spec(cron_job("Allow", false, false), |s| {
        s.starting_deadline_seconds = Some(LONG_DEAD)
    });
    let decision = decide(&long, just_after_the_hour(), &TimeZone::UTC);
    assert!(matches!(decision.step, Step::Start { .. }));
}

#[test]
fn a_cron_job_that_ran_follows_its_concurrency_policy() {
    let top = at("2016-05-19T10:00:00Z");
    let now = just_after_the_hour();
    let allow = decide(&cron_job("Allow", true, true), now, &TimeZone::UTC);
    assert_eq!(allow.step, start(top, false, minutes(59)));
    let forbid = decide(&cron_job("Forbid", true, true), now, &TimeZone::UTC);
    assert_eq!(forbid.step, Step::RequeueAfter(minutes(59)));
    assert_eq!(
        forbid.events,
        [Event::normal(
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into()
        )]
    );
    let replace = decide(&cron_job("Replace", true, true), now, &TimeZone::UTC);
    assert_eq!(replace.step, start(top, true, minutes(59)));
    let done = decide(&cron_job("Forbid", true, false), now, &TimeZone::UTC);
    assert_eq!(done.step, start(top, false, minutes(59)));

    let drifted_back = decide(
        &cron_job("Forbid", true, false),
        just_before_the_hour(),
        &TimeZone::UTC,
    );
    assert_eq!(drifted_back.step, Step::RequeueAfter(minutes(1)));
    let mut processed = cron_job("Allow", true, false);
    if let Some(status) = processed.status.as_mut() {
        status.last_schedule_time = Some(Time(top));
    }
    let decision = decide(&processed, now, &TimeZone::UTC);
    assert_eq!(decision.step, Step::RequeueAfter(minutes(59)));
}

#[test]
fn long_overdue_cron_jobs_start_the_latest_and_warn_past_a_hundred_misses() {
    let week = week_after_the_hour();
    let overdue = decide(&cron_job("Allow", true, false), week, &TimeZone::UTC);
    assert_eq!(overdue.step, start(week, false, minutes(60)));
    assert_eq!(reasons(&overdue), ["TooManyMissedTimes"]);
    let medium = with_spec(cron_job("Forbid", true, false), |s| {
        s.starting_deadline_seconds = Some(MEDIUM_DEAD)
    });
    let decision = decide(&medium, week, &TimeZone::UTC);
    assert_eq!(decision.step, start(week, false, minutes(60)));
    assert!(decision.events.is_empty());
}

#[test]
fn finished_jobs_leave_the_active_list_and_unexpected_ones_are_reported() {
    let mut cron_job = cron_job("Allow", true, true);
    let done = prior_job(Some("Complete"));
    let accounted = account_for_jobs(&mut cron_job, &[&done]);
    assert_eq!(
        accounted.events,
        [Event::normal(
            "SawCompletedJob",
            "Saw completed job: mycronjob-24394141, condition: Complete".into()
        )]
    );
    assert!(accounted.status_changed);
    assert!(accounted.unaccounted.is_empty());
    assert!(jobs::active(&cron_job).is_empty());
    let status = cron_job.status.clone().expect("a status");
    assert_eq!(
        status.last_successful_time,
        Some(Time(at("2016-05-19T09:01:10Z")))
    );
    let again = account_for_jobs(&mut cron_job, &[&done]);
    assert_eq!(again, Accounted::default());

    let mut manual = prior_job(None);
    manual.metadata.uid = Some("manual".into());
    manual.metadata.name = Some("by-hand".into());
    let accounted = account_for_jobs(&mut cron_job, &[&manual]);
    assert_eq!(
        accounted.events,
        [Event::warning(
            "UnexpectedJob",
            "Saw a job that the controller did not create or forgot: by-hand".into()
        )]
    );
    assert!(!accounted.status_changed);
}

#[test]
fn active_jobs_the_cron_job_no_longer_owns_are_unaccounted() {
    let mut cron_job = cron_job("Allow", true, true);
    let accounted = account_for_jobs(&mut cron_job, &[]);
    assert!(accounted.events.is_empty());
    assert_eq!(accounted.unaccounted, [reference_of(&prior_job(None))]);
    let failed = prior_job(Some("Failed"));
    let accounted = account_for_jobs(&mut cron_job, &[&failed]);
    assert_eq!(
        accounted.events,
        [Event::normal(
            "SawCompletedJob",
            "Saw completed job: mycronjob-24394141, condition: Failed".into()
        )]
    );
    assert_eq!(cron_job.status.and_then(|s| s.last_successful_time), None);
}

#[test]
fn missed_starts_are_told_in_utc_as_rfc_1123z() {
    let event = missed_schedule(at("2016-05-19T10:00:00Z"));
    assert_eq!(
        event,
        Event::warning(
            "MissSchedule",
            "Missed scheduled time to start a job: Thu, 19 May 2016 10:00:00 +0000".into()
        )
    );
}

#[test]
fn a_new_schedule_waits_for_its_next_time() {
    let every_five = with_spec(cron_job("Allow", false, false), |s| {
        s.schedule = "*/5 * * * *".into()
    });
    let wait = wait_for_new_schedule(&every_five, just_after_the_hour(), &TimeZone::UTC);
    assert_eq!(wait, Ok(minutes(4)));
    let broken = with_spec(every_five, |s| s.schedule = "every day".into());
    assert_eq!(
        wait_for_new_schedule(&broken, just_after_the_hour(), &TimeZone::UTC),
        Err(Event::warning(
            "UnParseableCronJobSchedule",
            "unparseable schedule for cronjob: every day".into()
        ))
    );
}
