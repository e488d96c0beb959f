//! The CronJob controller through the real kubectl, as test/e2e/apps/cronjob.go drives it: a
//! `*/1 * * * *` CronJob starts a Job each minute, named for its scheduled minute, owned by the
//! CronJob, with the template's labels and annotations and the scheduled time annotated; the
//! status lists it active, then its success; the successful history keeps one Job. Forbid
//! skips a start while a Job runs (a manual `kubectl create job --from` is reported and not
//! counted), suspend stops starts and resuming starts the missed one, Replace deletes the
//! running Job for the next, and deleting the CronJob takes its Jobs and their pods with it.
//! Each test waits for minute boundaries, so each takes a few minutes.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// A scheduled start comes at the next minute boundary, then the controller has to see it.
const NEXT_START_WITHIN: Duration = Duration::from_secs(100);
/// How long Jobs, pods and statuses get to follow a change.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const MANUAL_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";
const SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// A CronJob every minute whose pods run `command` and stop within a second.
fn cron_job(name: &str, policy: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: '*/1 * * * *'\n  concurrencyPolicy: {policy}\n  successfulJobsHistoryLimit: 1\n  failedJobsHistoryLimit: 1\n  jobTemplate:\n    metadata:\n      labels: {{team: cron}}\n      annotations: {{note: hello}}\n    spec:\n      backoffLimit: 0\n      template:\n        spec:\n          restartPolicy: Never\n          terminationGracePeriodSeconds: 1\n          containers:\n          - name: app\n            image: busybox\n            command: [sh, -c, '{command}']\n"
    )
}

fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn items(list: Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The Jobs the CronJob controls and has not let go (deleting ones are left out).
fn jobs_of(kubectl: &Kubectl, cron_job: &str) -> Vec<Value> {
    let controlled = |job: &Value| {
        let owners = job["metadata"]["ownerReferences"].as_array().cloned();
        owners
            .unwrap_or_default()
            .iter()
            .any(|o| o["controller"] == true && o["kind"] == "CronJob" && o["name"] == cron_job)
    };
    items(kubectl.json(&["get", "jobs"]))
        .into_iter()
        .filter(|job| controlled(job) && job["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

/// The Jobs the CronJob started on its schedule (not by hand).
fn scheduled_jobs(kubectl: &Kubectl, cron_job: &str) -> Vec<Value> {
    jobs_of(kubectl, cron_job)
        .into_iter()
        .filter(|job| job["metadata"]["annotations"][MANUAL_ANNOTATION].is_null())
        .collect()
}

fn wait_for_scheduled(
    kubectl: &Kubectl,
    cron_job: &str,
    done: impl Fn(&Vec<Value>) -> bool,
) -> Vec<Value> {
    let jobs = poll(
        NEXT_START_WITHIN,
        Duration::from_millis(500),
        || scheduled_jobs(kubectl, cron_job),
        &done,
    );
    assert!(done(&jobs), "scheduled jobs of {cron_job}: {jobs:#?}");
    jobs
}

/// The reason and note of each event recorded on the CronJob.
fn events_of(kubectl: &Kubectl, cron_job: &str) -> Vec<(String, String)> {
    items(kubectl.json(&["get", "events.events.k8s.io"]))
        .into_iter()
        .filter(|e| e["regarding"]["kind"] == "CronJob" && e["regarding"]["name"] == cron_job)
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["reason"]), text(&e["note"]))
        })
        .collect()
}

fn wait_for_event(kubectl: &Kubectl, cron_job: &str, reason: &str, note: &str, within: Duration) {
    let seen =
        |events: &Vec<(String, String)>| events.iter().any(|(r, n)| r == reason && n == note);
    let events = poll(
        within,
        Duration::from_millis(500),
        || events_of(kubectl, cron_job),
        seen,
    );
    assert!(
        seen(&events),
        "{reason} {note:?} on {cron_job}: {events:#?}"
    );
}

fn active_names(kubectl: &Kubectl, cron_job: &str) -> Vec<String> {
    let cron_job = kubectl.json(&["get", "cronjob", cron_job]);
    let active = cron_job["status"]["active"].as_array().cloned();
    active
        .unwrap_or_default()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The uids of the pods there are now, added to `seen`.
fn note_pods(kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    seen.extend(items(kubectl.json(&["get", "pods"])).iter().map(uid));
}

/// `kubectl delete cronjob` takes the Jobs and their pods with it; nothing of a pod is left.
fn delete_and_check(agent: &Agent, kubectl: &Kubectl, cron_job: &str, seen: &mut BTreeSet<String>) {
    note_pods(kubectl, seen);
    let deleted = kubectl.ok(&["delete", "cronjob", cron_job]);
    assert_eq!(
        deleted.trim(),
        format!(r#"cronjob.batch "{cron_job}" deleted"#)
    );
    wait_until(
        SETTLE_WITHIN,
        "the garbage collector to delete the jobs",
        || items(kubectl.json(&["get", "jobs"])).is_empty(),
    );
    wait_until(
        SETTLE_WITHIN,
        "the garbage collector to delete the pods",
        || items(kubectl.json(&["get", "pods"])).is_empty(),
    );
    for uid in seen.iter() {
        agent.leak_check(uid);
    }
}

#[test]
fn a_cron_job_starts_a_job_each_minute_and_keeps_its_history() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    let created = kubectl.apply(&cron_job("tick", "Allow", "echo tick"));
    assert_eq!(created.trim(), "cronjob.batch/tick created");
    let cron_job = kubectl.json(&["get", "cronjob", "tick"]);

    let first = wait_for_scheduled(&kubectl, "tick", |jobs| !jobs.is_empty()).remove(0);
    the_job_of_a_start_time(&first, &cron_job);
    let status = kubectl.json(&["get", "cronjob", "tick"])["status"].clone();
    let scheduled = &first["metadata"]["annotations"][SCHEDULED_ANNOTATION];
    assert_eq!(&status["lastScheduleTime"], scheduled, "{status}");
    wait_for_event(
        &kubectl,
        "tick",
        "SuccessfulCreate",
        &format!("Created job {}", name(&first)),
        SETTLE_WITHIN,
    );

    // The Job succeeds; the CronJob sees it, and it leaves the active list.
    let completed = format!("Saw completed job: {}, condition: Complete", name(&first));
    wait_for_event(
        &kubectl,
        "tick",
        "SawCompletedJob",
        &completed,
        SETTLE_WITHIN,
    );
    let status = kubectl.json(&["get", "cronjob", "tick"])["status"].clone();
    assert!(status["lastSuccessfulTime"].is_string(), "{status}");
    assert!(
        !active_names(&kubectl, "tick").contains(&name(&first)),
        "{status}"
    );
    note_pods(&kubectl, &mut seen);

    // The next minute's Job succeeds too, and the history keeps one success: the first goes.
    let deleted = format!("Deleted job {}", name(&first));
    wait_for_event(
        &kubectl,
        "tick",
        "SuccessfulDelete",
        &deleted,
        NEXT_START_WITHIN + SETTLE_WITHIN,
    );
    note_pods(&kubectl, &mut seen);
    let jobs = scheduled_jobs(&kubectl, "tick");
    assert!(jobs.iter().all(|j| name(j) != name(&first)), "{jobs:#?}");
    let succeeded = jobs
        .iter()
        .filter(|j| j["status"]["succeeded"] == 1)
        .count();
    assert!(succeeded <= 1, "one successful job kept: {jobs:#?}");

    delete_and_check(&agent, &kubectl, "tick", &mut seen);
}

/// The Job of one start: named for its minute since the epoch, the template's labels and
/// annotations plus the scheduled time, controlled by the CronJob.
fn the_job_of_a_start_time(job: &Value, cron_job: &Value) {
    let scheduled = job["metadata"]["annotations"][SCHEDULED_ANNOTATION]
        .as_str()
        .unwrap_or_else(|| panic!("no scheduled time: {job}"));
    let at: jiff::Timestamp = scheduled.parse().expect("an RFC 3339 time");
    assert_eq!(at.as_second() % 60, 0, "{scheduled}");
    assert_eq!(name(job), format!("tick-{}", at.as_second() / 60));
    assert_eq!(job["metadata"]["labels"]["team"], "cron", "{job}");
    assert_eq!(job["metadata"]["annotations"]["note"], "hello", "{job}");
    assert_eq!(
        job["metadata"]["ownerReferences"],
        json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                "uid": uid(cron_job), "controller": true, "blockOwnerDeletion": true}])
    );
}

#[test]
fn forbid_skips_starts_while_a_job_runs_and_suspend_stops_them() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&cron_job("guard", "Forbid", "sleep 3600"));
    let first = wait_for_scheduled(&kubectl, "guard", |jobs| !jobs.is_empty()).remove(0);

    // A Job made by hand from the CronJob is its, but not one of its starts.
    let manual = kubectl.ok(&["create", "job", "by-hand", "--from=cronjob/guard"]);
    assert_eq!(manual.trim(), "job.batch/by-hand created");
    let unexpected = "Saw a job that the controller did not create or forgot: by-hand";
    wait_for_event(
        &kubectl,
        "guard",
        "UnexpectedJob",
        unexpected,
        SETTLE_WITHIN,
    );
    assert_eq!(active_names(&kubectl, "guard"), [name(&first)]);

    let forbidden =
        "Not starting job because prior execution is running and concurrency policy is Forbid";
    wait_for_event(
        &kubectl,
        "guard",
        "JobAlreadyActive",
        forbidden,
        NEXT_START_WITHIN,
    );
    let jobs = scheduled_jobs(&kubectl, "guard");
    assert_eq!(jobs.iter().map(name).collect::<Vec<_>>(), [name(&first)]);
    let table = kubectl.ok(&["get", "cronjob", "guard"]);
    let row = columns(&table, 1);
    assert_eq!(row[..6], ["guard", "*/1", "*", "*", "*", "*"], "{table}");
    assert_eq!(row[6..9], ["<none>", "False", "1"], "{table}");
    note_pods(&kubectl, &mut seen);

    // Suspended, with its Job gone, nothing starts past the next minute.
    let suspend = r#"{"spec":{"suspend":true}}"#;
    kubectl.ok(&["patch", "cronjob", "guard", "--type=merge", "-p", suspend]);
    kubectl.ok(&["delete", "job", &name(&first)]);
    let missed = poll(
        NEXT_START_WITHIN,
        Duration::from_secs(1),
        || active_names(&kubectl, "guard"),
        |active| active.is_empty(),
    );
    assert!(
        missed.is_empty(),
        "the deleted job left the active list: {missed:?}"
    );
    std::thread::sleep(Duration::from_secs(65));
    assert!(scheduled_jobs(&kubectl, "guard").is_empty());

    // Resumed, it starts the most recent start it missed at once.
    let resume = r#"{"spec":{"suspend":false}}"#;
    kubectl.ok(&["patch", "cronjob", "guard", "--type=merge", "-p", resume]);
    let resumed = poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || scheduled_jobs(&kubectl, "guard"),
        |jobs| !jobs.is_empty(),
    );
    assert_eq!(resumed.len(), 1, "{resumed:#?}");
    delete_and_check(&agent, &kubectl, "guard", &mut seen);
}

#[test]
fn replace_deletes_the_running_job_for_the_next() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&cron_job("swap", "Replace", "sleep 3600"));
    let first = wait_for_scheduled(&kubectl, "swap", |jobs| !jobs.is_empty()).remove(0);
    note_pods(&kubectl, &mut seen);
    let second = wait_for_scheduled(&kubectl, "swap", |jobs| {
        jobs.len() == 1 && name(&jobs[0]) != name(&first)
    })
    .remove(0);
    wait_for_event(
        &kubectl,
        "swap",
        "SuccessfulDelete",
        &format!("Deleted job {}", name(&first)),
        SETTLE_WITHIN,
    );
    wait_for_event(
        &kubectl,
        "swap",
        "SuccessfulCreate",
        &format!("Created job {}", name(&second)),
        SETTLE_WITHIN,
    );
    assert_eq!(active_names(&kubectl, "swap"), [name(&second)]);
    delete_and_check(&agent, &kubectl, "swap", &mut seen);
}
