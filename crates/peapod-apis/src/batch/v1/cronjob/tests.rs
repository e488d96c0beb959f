//! kube's TestValidateCronJob*, the schedule parser against robfig/cron's cases, the defaults
//! and the table, ported.

use std::time::Duration;

use k8s_openapi::api::batch::v1::CronJob;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::schedule::{parse_go_duration, parse_standard, Schedule};
use super::validation::zone_exists;
use super::CronJobStrategy;

fn job_template(restart_policy: &str) -> Value {
    json!({"spec": {"template": {"spec": {"restartPolicy": restart_policy, "dnsPolicy": "ClusterFirst",
        "containers": [{"name": "abc", "image": "image", "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePolicy": "File"}]}}}})
}

/// A valid spec; `extra` is merged over it.
fn spec_with(extra: Value) -> Value {
    let mut spec = json!({"schedule": "* * * * ?", "concurrencyPolicy": "Allow",
                          "jobTemplate": job_template("OnFailure")});
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}

fn cron_job(name: &str, spec: Value) -> CronJob {
    let mut cron_job: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": "default", "uid": "1a2b3c"},
        "spec": spec,
    }))
    .unwrap();
    CronJobStrategy.default(&mut cron_job);
    cron_job
}

fn errors(cron_job: &CronJob) -> Vec<String> {
    CronJobStrategy
        .validate(cron_job)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_cron_jobs_pass() {
    for spec in [
        spec_with(json!({})),
        spec_with(json!({"schedule": "@every 1h30m"})),
        spec_with(json!({"schedule": "@hourly", "timeZone": "Europe/Rome"})),
        spec_with(json!({"schedule": "0 0 1,15 jan-jun mon-fri", "timeZone": "UTC"})),
        spec_with(json!({"schedule": "*/5 9-17/2 ? * SUN", "concurrencyPolicy": "Forbid"})),
        spec_with(json!({"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0})),
    ] {
        let cron_job = cron_job("mycronjob", spec.clone());
        assert!(
            errors(&cron_job).is_empty(),
            "{spec}: {:?}",
            errors(&cron_job)
        );
    }
}

#[test]
fn invalid_cron_jobs_are_refused_with_kubes_messages() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no schedule", spec_with(json!({"schedule": ""})), "spec.schedule: Required value"),
        ("bad schedule", spec_with(json!({"schedule": "error"})),
         r#"spec.schedule: Invalid value: "error": expected exactly 5 fields, found 1: [error]"#),
        ("minute out of range", spec_with(json!({"schedule": "60 * * * *"})),
         r#"spec.schedule: Invalid value: "60 * * * *": end of range (60) above maximum (59): 60"#),
        ("TZ in schedule", spec_with(json!({"schedule": "TZ=UTC 0 * * * *"})),
         r#"spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"#),
        ("CRON_TZ in schedule", spec_with(json!({"schedule": "CRON_TZ=UTC 0 * * * *"})),
         "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        ("negative deadline", spec_with(json!({"startingDeadlineSeconds": -1})),
         "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"),
        ("negative history", spec_with(json!({"successfulJobsHistoryLimit": -1})),
         "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0"),
        ("bad concurrency policy", spec_with(json!({"concurrencyPolicy": "Sometimes"})),
         r#"spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace""#),
        ("empty time zone", spec_with(json!({"timeZone": ""})),
         r#"spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string"#),
        ("Local", spec_with(json!({"timeZone": "LOCAL"})),
         r#"spec.timeZone: Invalid value: "LOCAL": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"#),
        ("bad prefix", spec_with(json!({"timeZone": " Europe/Rome"})),
         r#"spec.timeZone: Invalid value: " Europe/Rome": unknown time zone  Europe/Rome"#),
        ("bad name", spec_with(json!({"timeZone": "Europe/InvalidRome"})),
         r#"spec.timeZone: Invalid value: "Europe/InvalidRome": unknown time zone Europe/InvalidRome"#),
        ("restartPolicy Always", spec_with(json!({"jobTemplate": job_template("Always")})),
         r#"spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#),
        ("selector given", spec_with(json!({"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": job_template("OnFailure")["spec"]["template"]}}})),
         r#"spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated"#),
        ("manual selector", spec_with(json!({"jobTemplate": {"spec": {"manualSelector": true,
            "template": job_template("OnFailure")["spec"]["template"]}}})),
         r#"spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", "false""#),
        ("negative parallelism", spec_with(json!({"jobTemplate": {"spec": {"parallelism": -1,
            "template": job_template("OnFailure")["spec"]["template"]}}})),
         "spec.jobTemplate.spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
    ];
    for (name, spec, want) in cases {
        let got = errors(&cron_job("mycronjob", spec));
        assert!(
            got.iter().any(|e| e.contains(want)),
            "{name}: want {want:?} in {got:?}"
        );
    }
    let long = "a".repeat(53);
    let got = errors(&cron_job(&long, spec_with(json!({}))));
    let want =
        format!(r#"metadata.name: Invalid value: "{long}": must be no more than 52 characters"#);
    assert!(got.contains(&want), "{got:?}");
}

#[test]
fn updates_keep_an_old_tz_schedule_and_skip_the_name_limit() {
    let long = "a".repeat(53);
    let old = cron_job(&long, spec_with(json!({"schedule": "TZ=UTC 0 * * * *"})));
    let new = cron_job(&long, spec_with(json!({"schedule": "TZ=UTC 1 * * * *"})));
    let got = CronJobStrategy.validate_update(&new, &old);
    assert!(got.is_empty(), "{got:?}");
    let with_zone = cron_job(
        &long,
        spec_with(json!({"schedule": "TZ=UTC 1 * * * *", "timeZone": "UTC"})),
    );
    let got: Vec<String> = CronJobStrategy
        .validate_update(&with_zone, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        got.iter()
            .any(|e| e.ends_with("cannot use both timeZone field and TZ or CRON_TZ in schedule")),
        "{got:?}"
    );
}

#[test]
fn schedules_parse_as_robfig_cron_does() {
    let every_five = parse_standard("*/5 * * * *", zone_exists).unwrap();
    let Schedule::Fields { minute, hour, .. } = every_five else {
        panic!("{every_five:?}")
    };
    assert_eq!(minute, (0..60).step_by(5).fold(0, |b, i| b | 1 << i));
    assert_eq!(hour, ((1 << 24) - 1) | (1 << 63));
    assert_eq!(
        parse_standard("@every 5m", zone_exists),
        Ok(Schedule::Every(Duration::from_secs(300)))
    );
    let cases = [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("@unrecognized", "unrecognized descriptor: @unrecognized"),
        (
            "@every Xm",
            r#"failed to parse duration @every Xm: time: invalid duration "Xm""#,
        ),
        ("5--5 * * * *", "too many hyphens: 5--5"),
        (
            "* j * * *",
            r#"failed to parse int from j: strconv.Atoi: parsing "j": invalid syntax"#,
        ),
        ("*/-12 * * * *", "negative number (-12) not allowed: -12"),
        ("*//2 * * * *", "too many slashes: *//2"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        (
            "5-3 * * * *",
            "beginning of range (5) beyond end of range (3): 5-3",
        ),
        (
            "*/0 * * * *",
            "step of range should be a positive number: */0",
        ),
        (
            "TZ=Mars/Base * * * * *",
            "provided bad location Mars/Base: unknown time zone Mars/Base",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            parse_standard(spec, zone_exists),
            Err(want.to_owned()),
            "{spec}"
        );
    }
}

#[test]
fn go_durations_parse() {
    assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(
        parse_go_duration("5"),
        Err(r#"time: missing unit in duration "5""#.into())
    );
    assert_eq!(
        parse_go_duration("5x"),
        Err(r#"time: unknown unit "x" in duration "5x""#.into())
    );
}

#[test]
fn defaults_follow_batch_v1() {
    let cron_job = cron_job(
        "c",
        json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template":
        {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}),
    );
    let spec = cron_job.spec.unwrap();
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(
        (
            spec.successful_jobs_history_limit,
            spec.failed_jobs_history_limit
        ),
        (Some(3), Some(1))
    );
    let job_spec = spec.job_template.spec.unwrap();
    assert_eq!((job_spec.completions, job_spec.backoff_limit), (None, None));
    assert_eq!(
        job_spec.template.spec.unwrap().restart_policy.as_deref(),
        Some("Always")
    );
}

#[test]
fn table_shows_schedule_zone_and_suspend() {
    let mut cron_job = cron_job("c", spec_with(json!({"timeZone": "Europe/Rome"})));
    cron_job.status = serde_json::from_value(json!({"active": [{"name": "c-1"}]})).unwrap();
    let cells = CronJobStrategy.cells(&cron_job);
    assert_eq!(
        &cells[1..6],
        &[
            json!("* * * * ?"),
            json!("Europe/Rome"),
            json!("False"),
            json!(1),
            json!("<none>")
        ]
    );
    assert_eq!(cells[7], "abc");
}

#[test]
fn tz_in_the_schedule_warns() {
    let cron_job = cron_job("c", spec_with(json!({"schedule": "TZ=UTC * * * * *"})));
    let warnings = CronJobStrategy.warnings(&cron_job);
    assert!(warnings
        .contains(&"cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_owned()));
}
