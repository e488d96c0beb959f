//! batch/v1 Jobs and CronJobs through the real kubectl, at the API (the Job that is stored is
//! suspended, so no pods follow): discovery lists them, `kubectl create job` gets the selector kube generates from
//! the uid and batch/v1's defaults, tables show kubectl's columns, and bad Jobs and CronJobs
//! (restartPolicy Always, a bad schedule, an unknown time zone, TZ in the schedule) are refused
//! with kube's messages. `kubectl create job --from=cronjob/...` builds the Job client-side;
//! it is created owned by the CronJob and marked as a manual instantiation.

mod controller;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// What `kubectl create job x --image=busybox` sends, suspended.
const SUSPENDED: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  suspend: true\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {name: x, image: busybox}\n";

/// A line of kubectl's table split on its column gaps.
fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn api_resource(kubectl: &Kubectl, resource: &str) -> Vec<String> {
    let resources = kubectl.ok(&["api-resources", "--api-group=batch"]);
    let row = resources
        .lines()
        .find(|line| line.starts_with(&format!("{resource} ")))
        .unwrap_or_else(|| panic!("no {resource} in api-resources:\n{resources}"));
    row.split_whitespace().map(str::to_owned).collect()
}

fn refused(kubectl: &Kubectl, args: &[&str], manifest: Option<&str>) -> String {
    let out = kubectl.run(args, manifest);
    assert!(!out.status.success(), "{args:?} was accepted");
    text(&out.stderr)
}

/// Nothing ran: the stored Job is suspended.
fn no_pods(kubectl: &Kubectl) {
    let pods = kubectl.json(&["get", "pods"]);
    assert_eq!(pods["items"], json!([]), "{pods}");
}

#[test]
fn job_api_create_generates_the_selector_and_defaults() {
    let (agent, kubectl) = start_with_kubectl();
    assert_eq!(
        api_resource(&kubectl, "jobs"),
        ["jobs", "batch/v1", "true", "Job"]
    );
    let all = kubectl.ok(&[
        "api-resources",
        "--categories=all",
        "--api-group=batch",
        "-o",
        "name",
    ]);
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        ["cronjobs.batch", "jobs.batch"],
        "{all}"
    );
    dry_run_shows_the_generated_selector(&kubectl);
    // Suspended, so that once a controller runs Jobs this one still makes no pods.
    let created = kubectl.apply(SUSPENDED);
    assert_eq!(created.trim(), "job.batch/x created");
    job_tables(&kubectl);
    job_refusals(&kubectl);
    let deleted = kubectl.ok(&["delete", "job", "x"]);
    assert_eq!(deleted.trim(), r#"job.batch "x" deleted"#);
    no_pods(&kubectl);
    drop(agent);
}

/// `kubectl create job --dry-run=server` answers the Job as kube would store it.
fn dry_run_shows_the_generated_selector(kubectl: &Kubectl) {
    let dry_run = [
        "create",
        "job",
        "x",
        "--image=busybox",
        "--dry-run=server",
        "-o",
    ];
    let yaml = kubectl.ok(&[&dry_run[..], &["yaml"]].concat());
    assert!(
        yaml.contains("batch.kubernetes.io/controller-uid:"),
        "{yaml}"
    );
    let job: Value = serde_json::from_str(&kubectl.ok(&[&dry_run[..], &["json"]].concat()))
        .expect("the Job as JSON");
    let uid = job["metadata"]["uid"].as_str().expect("a uid").to_owned();
    let generated = json!({
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "x",
        "controller-uid": uid, "job-name": "x",
    });
    let spec = &job["spec"];
    let selector = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    assert_eq!(spec["selector"], selector, "{job}");
    assert_eq!(spec["template"]["metadata"]["labels"], generated, "{job}");
    assert_eq!(job["metadata"]["labels"], generated, "{job}");
    for (field, want) in [
        ("backoffLimit", json!(6)),
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(spec[field], want, "spec.{field}: {job}");
    }
    let pod_spec = &spec["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Never");
    assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(job["metadata"]["generation"], 1);
    let missing = kubectl.fails(&["get", "job", "x"]);
    assert!(missing.contains(r#"jobs.batch "x" not found"#), "{missing}");
}

fn job_tables(kubectl: &Kubectl) {
    let table = kubectl.ok(&["get", "jobs"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    let row = columns(lines[1]);
    assert_eq!((row[0], row[2]), ("x", "0/1"), "{table}");
    let wide = kubectl.ok(&["get", "job", "x", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(
        columns(lines[0])[5..],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
        "{wide}"
    );
    let uid = kubectl.json(&["get", "job", "x"])["metadata"]["uid"].clone();
    let selector = format!(
        "batch.kubernetes.io/controller-uid={}",
        uid.as_str().unwrap_or_default()
    );
    assert_eq!(
        columns(lines[1])[4..],
        ["x", "busybox", selector.as_str()],
        "{wide}"
    );
}

fn job_refusals(kubectl: &Kubectl) {
    let always = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: bad\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - {name: app, image: busybox}\n";
    let message = refused(kubectl, &["apply", "-f", "-"], Some(always));
    assert!(
        message.contains(r#"The Job "bad" is invalid: spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#),
        "{message}"
    );
    let patch = ["patch", "job", "x", "-p", r#"{"spec":{"completions":3}}"#];
    let message = refused(kubectl, &patch, None);
    assert!(
        message.contains("spec.completions: Invalid value: 3: field is immutable"),
        "{message}"
    );
}

#[test]
fn cronjob_api_create_get_and_refusals() {
    let (agent, kubectl) = start_with_kubectl();
    assert_eq!(
        api_resource(&kubectl, "cronjobs"),
        ["cronjobs", "cj", "batch/v1", "true", "CronJob"]
    );
    legacy_discovery_and_explain(&kubectl);
    // Once a leap year, so the CronJob controller starts nothing while the table is read.
    let schedule = "--schedule=0 0 29 2 *";
    let created = kubectl.ok(&["create", "cronjob", "c", "--image=busybox", schedule]);
    assert_eq!(created.trim(), "cronjob.batch/c created");
    let cron_job = cron_job_table_and_defaults(&kubectl);
    cron_job_refusals(&kubectl);
    from_cron_job(&kubectl, &cron_job);
    for name in ["c", "zoned"] {
        let deleted = kubectl.ok(&["delete", "cronjob", name]);
        assert_eq!(deleted.trim(), format!(r#"cronjob.batch "{name}" deleted"#));
    }
    drop(agent);
}

fn legacy_discovery_and_explain(kubectl: &Kubectl) {
    let raw = kubectl.ok(&["get", "--raw", "/apis/batch/v1"]);
    let legacy: Value = serde_json::from_str(&raw).expect("a resource list");
    let resources = legacy["resources"].as_array().into_iter().flatten();
    let names: Vec<&str> = resources.filter_map(|r| r["name"].as_str()).collect();
    let want = ["cronjobs", "cronjobs/status", "jobs", "jobs/status"];
    assert_eq!(names, want, "{legacy}");
    let explained = kubectl.ok(&["explain", "cronjob.spec.timeZone"]);
    assert!(
        explained.contains("FIELD: timeZone <string>"),
        "{explained}"
    );
}

/// `kubectl get cj` and the CronJob as stored; the CronJob is returned.
fn cron_job_table_and_defaults(kubectl: &Kubectl) -> Value {
    let table = kubectl.ok(&["get", "cj"]);
    let lines: Vec<&str> = table.lines().collect();
    let header = [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ];
    assert_eq!(columns(lines[0]), header);
    let row = ["c", "0 0 29 2 *", "<none>", "False", "0", "<none>"];
    assert_eq!(columns(lines[1])[..6], row, "{table}");
    let cron_job = kubectl.json(&["get", "cronjob", "c"]);
    let spec = &cron_job["spec"];
    for (field, want) in [
        ("concurrencyPolicy", json!("Allow")),
        ("suspend", json!(false)),
        ("successfulJobsHistoryLimit", json!(3)),
        ("failedJobsHistoryLimit", json!(1)),
    ] {
        assert_eq!(spec[field], want, "spec.{field}: {cron_job}");
    }
    let pod_spec = &spec["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "OnFailure");
    cron_job
}

/// A bad schedule, TZ in the schedule and an unknown zone are refused; a known zone is not.
fn cron_job_refusals(kubectl: &Kubectl) {
    let create = ["create", "cronjob", "bad", "--image=busybox"];
    let message = refused(kubectl, &[&create[..], &["--schedule=bad"]].concat(), None);
    assert!(
        message.contains(
            r#"spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]"#
        ),
        "{message}"
    );
    let tz = [&create[..], &["--schedule=TZ=UTC 0 * * * *"]].concat();
    let message = refused(kubectl, &tz, None);
    assert!(
        message.contains(r#"spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"#),
        "{message}"
    );
    let zoned = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: zoned\nspec:\n  schedule: '@hourly'\n  timeZone: Mars/Olympus\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - {name: app, image: busybox}\n";
    let message = refused(kubectl, &["apply", "-f", "-"], Some(zoned));
    assert!(
        message.contains(r#"The CronJob "zoned" is invalid: spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus"#),
        "{message}"
    );
    let accepted = kubectl.apply(&zoned.replace("Mars/Olympus", "Europe/Rome"));
    assert_eq!(accepted.trim(), "cronjob.batch/zoned created");
}

/// kubectl builds the Job from the CronJob's template itself, owned by the CronJob.
fn from_cron_job(kubectl: &Kubectl, cron_job: &Value) {
    let created = kubectl.ok(&["create", "job", "y", "--from=cronjob/c"]);
    assert_eq!(created.trim(), "job.batch/y created");
    let job = kubectl.json(&["get", "job", "y"]);
    assert_eq!(
        job["metadata"]["ownerReferences"],
        json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "c",
                "uid": cron_job["metadata"]["uid"], "controller": true}]),
        "{job}"
    );
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let uid = job["metadata"]["uid"].as_str().unwrap_or_default();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let deleted = kubectl.ok(&["delete", "job", "y"]);
    assert_eq!(deleted.trim(), r#"job.batch "y" deleted"#);
}
