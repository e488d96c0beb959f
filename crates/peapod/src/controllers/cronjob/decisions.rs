//! What one sync of a CronJob decides, as kube's `syncCronJob` decides it, without I/O: how
//! its Jobs change `status` ([`account_for_jobs`]), then whether a Job starts now
//! ([`decide`]), with the events kube records on the way, in kube's words.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use peapod_api::validation::go_quote;
use peapod_apis::batch::v1::cronjob::schedule::{load_location, parse_standard, Schedule};

use super::jobs;
use super::times::{self, Clock, MissedSchedules};
use crate::controllers::events::Event;

/// How a CronJob's Jobs changed its status.
#[derive(Debug, Default, PartialEq)]
pub struct Accounted {
    pub events: Vec<Event>,
    /// Whether `status` changed and must be written.
    pub status_changed: bool,
    /// Active references to Jobs not among the CronJob's: to look up, and drop if gone.
    pub unaccounted: Vec<ObjectReference>,
}

/// The first half of `syncCronJob`: finished Jobs leave `status.active` (SawCompletedJob) and
/// move `lastSuccessfulTime`; an unfinished Job the CronJob controls but does not list is
/// reported (UnexpectedJob), as a manual `kubectl create job --from` is.
pub fn account_for_jobs(cron_job: &mut CronJob, owned: &[&Job]) -> Accounted {
    let mut accounted = Accounted::default();
    for job in owned {
        let name = job.metadata.name.as_deref().unwrap_or_default();
        let uid = job.metadata.uid.as_deref().unwrap_or_default();
        let listed = jobs::in_active_list(cron_job, uid);
        let Some(finished) = jobs::finished(job) else {
            if !listed {
                let message =
                    format!("Saw a job that the controller did not create or forgot: {name}");
                accounted
                    .events
                    .push(Event::warning("UnexpectedJob", message));
            }
            continue;
        };
        if listed {
            jobs::delete_from_active_list(cron_job, uid);
            let message = format!(
                "Saw completed job: {name}, condition: {}",
                finished.as_str()
            );
            accounted
                .events
                .push(Event::normal("SawCompletedJob", message));
            accounted.status_changed = true;
        }
        if jobs::succeeded(job) {
            accounted.status_changed |= note_success(cron_job, job);
        }
    }
    let owned_uids: Vec<&str> = owned
        .iter()
        .filter_map(|j| j.metadata.uid.as_deref())
        .collect();
    accounted.unaccounted = jobs::active(cron_job)
        .iter()
        .filter(|r| !owned_uids.contains(&r.uid.as_deref().unwrap_or_default()))
        .cloned()
        .collect();
    accounted
}

/// Moves `lastSuccessfulTime` to the Job's completion if later (or first).
fn note_success(cron_job: &mut CronJob, job: &Job) -> bool {
    let completion = job.status.as_ref().and_then(|s| s.completion_time.clone());
    let status = cron_job.status.get_or_insert_with(Default::default);
    match (&status.last_successful_time, completion) {
        (None, completion) => {
            let changed = completion.is_some();
            status.last_successful_time = completion;
            changed
        }
        (Some(last), Some(completion)) if completion.0 > last.0 => {
            status.last_successful_time = Some(completion);
            true
        }
        _ => false,
    }
}

/// "Active job went missing": an active Job that no longer exists.
pub fn missing_job(name: &str) -> Event {
    Event::normal("MissingJob", format!("Active job went missing: {name}"))
}

/// What to do about starting a Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing until the CronJob changes: being deleted, suspended, or with a zone or
    /// schedule that cannot be used.
    Stop,
    /// No Job to start now (none due, missed, already started, or forbidden): come back then.
    RequeueAfter(Duration),
    /// Start the Job of `scheduled`, first deleting the active ones if `replace`; then come
    /// back after `requeue`.
    Start {
        scheduled: Timestamp,
        replace: bool,
        requeue: Duration,
    },
}

/// A decision and the events that come with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub step: Step,
}

impl Decision {
    fn stop(events: Vec<Event>) -> Decision {
        Decision {
            events,
            step: Step::Stop,
        }
    }
}

/// The second half of `syncCronJob`, after the Jobs are accounted for: the most recent unmet
/// start time, checked against the starting deadline, the Job already made for it, and the
/// concurrency policy. `local` is the zone of CronJobs that name none.
pub fn decide(cron_job: &CronJob, now: Timestamp, local: &TimeZone) -> Decision {
    let spec = cron_job.spec.clone().unwrap_or_default();
    if cron_job.metadata.deletion_timestamp.is_some() {
        return Decision::stop(Vec::new());
    }
    if let Some(zone) = spec.time_zone.as_deref() {
        if load_location(zone).is_none() {
            let message = format!(
                "invalid timeZone: {}: unknown time zone {zone}",
                go_quote(zone)
            );
            return Decision::stop(vec![Event::warning("UnknownTimeZone", message)]);
        }
    }
    if spec.suspend == Some(true) {
        return Decision::stop(Vec::new());
    }
    let (schedule, mut events) = match parse_schedule(cron_job) {
        (Ok(schedule), events) => (schedule, events),
        (Err(err), mut events) => {
            let message = format!("unparseable schedule: {} : {err}", go_quote(&spec.schedule));
            events.push(Event::warning("UnparseableSchedule", message));
            return Decision::stop(events);
        }
    };
    let clock = Clock {
        schedule: &schedule,
        local,
    };
    let requeue = || times::next_schedule_time_duration(cron_job, now, &clock);
    let scheduled = match times::next_schedule_time(cron_job, now, &clock) {
        Err(err) => {
            let message = format!("invalid schedule: {} : {err}", spec.schedule);
            events.push(Event::warning("InvalidSchedule", message));
            return Decision::stop(events);
        }
        Ok((scheduled, missed)) => {
            if scheduled.is_some() && missed == MissedSchedules::Many {
                events.push(too_many_missed());
            }
            scheduled
        }
    };
    let wait = |events| Decision {
        events,
        step: Step::RequeueAfter(requeue()),
    };
    let Some(scheduled) = scheduled else {
        return wait(events);
    };
    let deadline = spec.starting_deadline_seconds;
    if deadline.is_some_and(|s| scheduled + jiff::SignedDuration::from_secs(s) < now) {
        events.push(missed_schedule(scheduled));
        return wait(events);
    }
    if already_processed(cron_job, scheduled) {
        return wait(events);
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !jobs::active(cron_job).is_empty() {
        let message =
            "Not starting job because prior execution is running and concurrency policy is Forbid";
        events.push(Event::normal("JobAlreadyActive", message.to_owned()));
        return wait(events);
    }
    let mut started = cron_job.clone();
    let status = started.status.get_or_insert_with(Default::default);
    status.last_schedule_time = Some(Time(scheduled));
    Decision {
        events,
        step: Step::Start {
            scheduled,
            replace: policy == "Replace",
            requeue: times::next_schedule_time_duration(&started, now, &clock),
        },
    }
}

/// `formatSchedule` and `cron.ParseStandard`: a `TZ` in the schedule is used as written (with a
/// warning), else `spec.timeZone` prefixes it.
fn parse_schedule(cron_job: &CronJob) -> (Result<Schedule, String>, Vec<Event>) {
    let spec = cron_job.spec.as_ref();
    let schedule = spec.map(|s| s.schedule.as_str()).unwrap_or_default();
    let mut events = Vec::new();
    if schedule.contains("TZ") {
        let message = format!(
            "CRON_TZ or TZ used in schedule {} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
            go_quote(schedule)
        );
        events.push(Event::warning("UnsupportedSchedule", message));
    }
    (schedule_of(cron_job), events)
}

/// The CronJob's schedule in its zone, as `formatSchedule` writes it for robfig's parser.
fn schedule_of(cron_job: &CronJob) -> Result<Schedule, String> {
    let spec = cron_job.spec.as_ref();
    let schedule = spec.map(|s| s.schedule.as_str()).unwrap_or_default();
    let zone = spec.and_then(|s| s.time_zone.as_deref());
    let formatted = match zone {
        Some(zone) if !schedule.contains("TZ") && load_location(zone).is_some() => {
            format!("TZ={zone} {schedule}")
        }
        _ => schedule.to_owned(),
    };
    parse_standard(&formatted, |zone| load_location(zone).is_some())
}

/// `updateCronJob` on a new schedule or zone: the sync waits for the next start time of the
/// new schedule, unless it does not parse (UnParseableCronJobSchedule, and no sync).
pub fn wait_for_new_schedule(
    cron_job: &CronJob,
    now: Timestamp,
    local: &TimeZone,
) -> Result<Duration, Event> {
    let schedule = schedule_of(cron_job).map_err(|_| {
        let spec = cron_job.spec.as_ref();
        let written = spec.map(|s| s.schedule.as_str()).unwrap_or_default();
        let message = format!("unparseable schedule for cronjob: {written}");
        Event::warning("UnParseableCronJobSchedule", message)
    })?;
    let clock = Clock {
        schedule: &schedule,
        local,
    };
    Ok(times::next_schedule_time_duration(cron_job, now, &clock))
}

/// The Job of `scheduled` is already active, or `scheduled` is the last schedule time.
fn already_processed(cron_job: &CronJob, scheduled: Timestamp) -> bool {
    let namespace = cron_job.metadata.namespace.as_deref().unwrap_or_default();
    let name = cron_job.metadata.name.as_deref().unwrap_or_default();
    let job_name = times::job_name(name, scheduled);
    let status = cron_job.status.as_ref();
    let last = status.and_then(|s| s.last_schedule_time.as_ref());
    jobs::in_active_list_by_name(cron_job, namespace, &job_name)
        || last.is_some_and(|last| last.0 == scheduled)
}

fn too_many_missed() -> Event {
    Event::warning(
        "TooManyMissedTimes",
        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".to_owned(),
    )
}

/// MissSchedule, the time as Go's `RFC1123Z` in UTC.
fn missed_schedule(scheduled: Timestamp) -> Event {
    let when = scheduled
        .to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S %z");
    Event::warning(
        "MissSchedule",
        format!("Missed scheduled time to start a job: {when}"),
    )
}

/// The events of the Job writes a sync makes.
pub mod outcomes {
    use crate::controllers::events::Event;

    pub fn created(job: &str) -> Event {
        Event::normal("SuccessfulCreate", format!("Created job {job}"))
    }

    pub fn create_failed(error: &str) -> Event {
        Event::warning("FailedCreate", format!("Error creating job: {error}"))
    }

    pub fn deleted(job: &str) -> Event {
        Event::normal("SuccessfulDelete", format!("Deleted job {job}"))
    }

    pub fn delete_failed(error: &str) -> Event {
        Event::warning("FailedDelete", format!("Deleted job: {error}"))
    }

    pub fn get_failed(error: &str) -> Event {
        Event::warning("FailedGet", format!("Get job: {error}"))
    }
}

#[cfg(test)]
mod tests;
