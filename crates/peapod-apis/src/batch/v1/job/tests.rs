//! kube's TestValidateJob, TestValidateJobUpdate and TestValidateJobUpdateStatus cases, the
//! defaults and the generated selector, ported.

use k8s_openapi::api::batch::v1::Job;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::JobStrategy;

const UID: &str = "1a2b3c";

fn generated_labels() -> Value {
    json!({
        "batch.kubernetes.io/controller-uid": UID, "controller-uid": UID,
        "batch.kubernetes.io/job-name": "myjob", "job-name": "myjob",
    })
}

fn template(labels: Value, restart_policy: &str) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {"restartPolicy": restart_policy, "dnsPolicy": "ClusterFirst",
                 "containers": [{"name": "abc", "image": "image", "imagePullPolicy": "IfNotPresent",
                                 "terminationMessagePolicy": "File"}],
                 "initContainers": [{"name": "def", "image": "image", "imagePullPolicy": "IfNotPresent",
                                     "terminationMessagePolicy": "File"}]}
    })
}

/// A valid spec with a generated selector; `extra` is merged over it.
fn spec_with(extra: Value) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": generated_labels()},
        "template": template(generated_labels(), "OnFailure"),
    });
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}

fn job(spec: Value) -> Job {
    let mut job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "myjob", "namespace": "default", "uid": UID},
        "spec": spec,
    }))
    .unwrap();
    JobStrategy.default(&mut job);
    job
}

fn errors(job: &Job) -> Vec<String> {
    JobStrategy
        .validate(job)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn update_errors(new: &Job, old: &Job) -> Vec<String> {
    JobStrategy
        .validate_update(new, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_jobs_pass() {
    let never = template(generated_labels(), "Never");
    let cases = [
        ("generated selector", spec_with(json!({}))),
        (
            "manual selector",
            json!({"manualSelector": true, "selector": {"matchLabels": {"a": "b"}},
                                   "template": template(json!({"a": "b"}), "OnFailure")}),
        ),
        (
            "pod replacement Failed",
            spec_with(json!({"podReplacementPolicy": "Failed"})),
        ),
        (
            "Indexed",
            spec_with(
                json!({"completionMode": "Indexed", "completions": 2, "parallelism": 100000}),
            ),
        ),
        (
            "success policy",
            spec_with(
                json!({"completionMode": "Indexed", "completions": 10, "template": never,
            "successPolicy": {"rules": [{"succeededCount": 1, "succeededIndexes": "0,2,4"},
                                        {"succeededIndexes": "1,3,5-9"}]}}),
            ),
        ),
        (
            "pod failure policy",
            spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onPodConditions": [{"type": "CustomConditionType", "status": "False"}]},
            {"action": "Count", "onExitCodes": {"containerName": "abc", "operator": "In", "values": [1, 2, 3]}},
            {"action": "Ignore", "onExitCodes": {"containerName": "def", "operator": "In", "values": [4]}},
            {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [5, 6, 7]}}]}})),
        ),
        (
            "high completions with per-index backoff",
            spec_with(json!({"completionMode": "Indexed",
            "completions": 1_000_000_000, "parallelism": 10_000, "maxFailedIndexes": 10_000,
            "backoffLimitPerIndex": 1})),
        ),
        (
            "managedBy",
            spec_with(json!({"managedBy": "example.com/foo"})),
        ),
    ];
    for (name, spec) in cases {
        let job = job(spec);
        assert!(errors(&job).is_empty(), "{name}: {:?}", errors(&job));
    }
}

#[test]
fn invalid_jobs_are_refused_with_kubes_messages() {
    let never = template(generated_labels(), "Never");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("restartPolicy Always", spec_with(json!({"template": template(generated_labels(), "Always")})),
         r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#),
        ("negative parallelism", spec_with(json!({"parallelism": -1})),
         "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
        ("negative completions", spec_with(json!({"completions": -1})),
         "spec.completions: Invalid value: -1: must be greater than or equal to 0"),
        ("negative backoffLimit", spec_with(json!({"backoffLimit": -1})),
         "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
        ("negative activeDeadlineSeconds", spec_with(json!({"activeDeadlineSeconds": -1})),
         "spec.activeDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"),
        ("negative ttl", spec_with(json!({"ttlSecondsAfterFinished": -1})),
         "spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0"),
        ("Indexed without completions", spec_with(json!({"completionMode": "Indexed", "parallelism": 2})),
         "spec.completions: Required value: when completion mode is Indexed"),
        ("Indexed parallelism too high", spec_with(json!({"completionMode": "Indexed", "completions": 2, "parallelism": 100001})),
         "spec.parallelism: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed"),
        ("unknown completion mode", spec_with(json!({"completionMode": "Foo"})),
         r#"spec.completionMode: Unsupported value: "Foo": supported values: "NonIndexed", "Indexed""#),
        ("per-index backoff without Indexed", spec_with(json!({"backoffLimitPerIndex": 1})),
         "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"),
        ("maxFailedIndexes without per-index backoff", spec_with(json!({"completionMode": "Indexed", "completions": 2, "maxFailedIndexes": 1})),
         "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified"),
        ("maxFailedIndexes above completions", spec_with(json!({"completionMode": "Indexed", "completions": 2,
            "backoffLimitPerIndex": 1, "maxFailedIndexes": 3})),
         "spec.maxFailedIndexes: Invalid value: 3: must be less than or equal to completions"),
        ("high completions need maxFailedIndexes", spec_with(json!({"completionMode": "Indexed",
            "completions": 100_001, "parallelism": 1, "backoffLimitPerIndex": 1})),
         "spec.maxFailedIndexes: Required value: must be specified when completions is above 100000"),
        ("selector does not match", spec_with(json!({"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}})),
         "`selector` does not match template `labels`"),
        ("generated labels missing", spec_with(json!({"template": template(json!({"a": "b"}), "OnFailure")})),
         "spec.template.metadata.labels[controller-uid]: Required value: must be '1a2b3c'"),
        ("selector not generated", spec_with(json!({"selector": {"matchLabels": {"a": "b"}},
            "template": template(json!({"a": "b", "controller-uid": UID, "job-name": "myjob",
                "batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "myjob"}), "OnFailure")})),
         r#"spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` not auto-generated"#),
        ("OnFailure with pod failure policy", spec_with(json!({"podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]}})),
         r#"spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified"#),
        ("pod failure policy with both requirements", spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]},
             "onPodConditions": [{"type": "DisruptionTarget"}]}]}})),
         "spec.podFailurePolicy.rules[0]: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"),
        ("exit code 0 with In", spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 2, 1]}}]}})),
         "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
        ("unordered exit codes", spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 1]}}]}})),
         "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [2,1]: must be ordered"),
        ("unknown container in rule", spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "xyz", "operator": "In", "values": [1]}}]}})),
         r#"spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "xyz": must be one of the container or initContainer names in the pod template"#),
        ("unknown action", spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "UnknownAction", "onExitCodes": {"operator": "In", "values": [1]}}]}})),
         r#"spec.podFailurePolicy.rules[0].action: Unsupported value: "UnknownAction": supported values: "Count", "FailIndex", "FailJob", "Ignore""#),
        ("FailIndex without per-index backoff", spec_with(json!({"template": never, "podFailurePolicy": {"rules": [
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}})),
         r#"spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set"#),
        ("too many rules", spec_with(json!({"template": never, "podFailurePolicy": {"rules":
            vec![json!({"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}); 21]}})),
         "spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items"),
        ("pod replacement with pod failure policy", spec_with(json!({"template": never, "podReplacementPolicy": "TerminatingOrFailed",
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}})),
         r#"spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported values: "Failed""#),
        ("success policy without Indexed", spec_with(json!({"template": never, "successPolicy": {"rules": []}})),
         r#"spec.successPolicy: Invalid value: {"rules":[]}: requires indexed completion mode"#),
        ("bad succeededIndexes", spec_with(json!({"completionMode": "Indexed", "completions": 5,
            "successPolicy": {"rules": [{"succeededIndexes": "3-1"}]}})),
         r#"spec.successPolicy.rules[0].succeededIndexes: Invalid value: "3-1": error parsing succeededIndexes: non-increasing order, previous: 3, current: 1"#),
        ("managedBy not a path", spec_with(json!({"managedBy": "invalid custom controller name"})),
         r#"spec.managedBy: Invalid value: "invalid custom controller name": must be a domain-prefixed path (such as "acme.io/foo")"#),
        ("managedBy too long", spec_with(json!({"managedBy": format!("example.com/{}", "x".repeat(60))})),
         "spec.managedBy: Too long: may not be more than 63 bytes"),
    ];
    for (name, spec, want) in cases {
        let got = errors(&job(spec));
        assert!(
            got.iter().any(|e| e.contains(want)),
            "{name}: want {want:?} in {got:?}"
        );
    }
}

#[test]
fn indexed_job_names_leave_room_for_the_index() {
    let mut long = job(spec_with(
        json!({"completionMode": "Indexed", "completions": 10}),
    ));
    long.metadata.name = Some("x".repeat(62));
    let got = errors(&long);
    let want = format!(
        "will not able to create pod with invalid DNS label: {}-9",
        "x".repeat(62)
    );
    assert!(got.iter().any(|e| e.contains(&want)), "{got:?}");
}

#[test]
fn defaults_follow_batch_v1() {
    let job = job(json!({"template": {"metadata": {"labels": {"app": "x"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}));
    let spec = job.spec.clone().unwrap();
    assert_eq!(
        (spec.completions, spec.parallelism, spec.backoff_limit),
        (Some(1), Some(1), Some(6))
    );
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    assert_eq!(
        (spec.suspend, spec.manual_selector),
        (Some(false), Some(false))
    );
    assert_eq!(
        spec.pod_replacement_policy.as_deref(),
        Some("TerminatingOrFailed")
    );
    assert_eq!(
        spec.template.spec.unwrap().restart_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(job.metadata.labels.unwrap()["app"], "x");

    let per_index = self::job(json!({"parallelism": 3, "backoffLimitPerIndex": 1,
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}));
    let spec = per_index.spec.unwrap();
    assert_eq!(
        (spec.completions, spec.backoff_limit),
        (None, Some(i32::MAX))
    );
    assert_eq!(spec.pod_replacement_policy.as_deref(), Some("Failed"));
    let rule = &spec.pod_failure_policy.unwrap().rules[0];
    assert_eq!(rule.on_pod_conditions.as_ref().unwrap()[0].status, "True");
}

#[test]
fn create_generates_the_selector_from_the_uid() {
    let mut created = job(json!({"template": template(json!({"app": "x"}), "Never")}));
    JobStrategy.prepare_for_create(&mut created);
    let spec = created.spec.clone().unwrap();
    let selector = spec.selector.unwrap().match_labels.unwrap();
    assert_eq!(
        selector,
        [(
            "batch.kubernetes.io/controller-uid".to_owned(),
            UID.to_owned()
        )]
        .into()
    );
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    for (key, value) in generated_labels().as_object().unwrap() {
        assert_eq!(labels[key], value.as_str().unwrap());
    }
    assert!(errors(&created).is_empty(), "{:?}", errors(&created));

    let mut manual =
        job(json!({"manualSelector": true, "template": template(json!({"a": "b"}), "Never")}));
    JobStrategy.prepare_for_create(&mut manual);
    assert!(manual.spec.unwrap().selector.is_none());
}

#[test]
fn updates_keep_selector_template_and_completions() {
    let old = job(spec_with(json!({})));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "completions",
            spec_with(json!({"completions": 3})),
            "spec.completions: Invalid value: 3: field is immutable",
        ),
        (
            "selector",
            spec_with(json!({"selector": {"matchLabels": {"controller-uid": UID}}})),
            "spec.selector: Invalid value:",
        ),
        (
            "template",
            spec_with(json!({"template": template(generated_labels(), "Never")})),
            "spec.template: Invalid value:",
        ),
        (
            "completion mode",
            spec_with(json!({"completionMode": "Indexed"})),
            "spec.completionMode: Invalid value: \"Indexed\": field is immutable",
        ),
    ];
    for (name, spec, want) in cases {
        let got = update_errors(&job(spec), &old);
        assert!(
            got.iter()
                .any(|e| e.starts_with(want) && e.contains("field is immutable")),
            "{name}: {got:?}"
        );
    }
    let changed = job(spec_with(
        json!({"completions": 1, "parallelism": 5, "activeDeadlineSeconds": 10}),
    ));
    assert!(
        update_errors(&changed, &old).is_empty(),
        "{:?}",
        update_errors(&changed, &old)
    );
}

#[test]
fn indexed_completions_change_with_parallelism() {
    let indexed = |completions: i32, parallelism: i32| {
        job(spec_with(
            json!({"completionMode": "Indexed", "completions": completions, "parallelism": parallelism}),
        ))
    };
    assert!(update_errors(&indexed(3, 3), &indexed(2, 2)).is_empty());
    let got = update_errors(&indexed(3, 2), &indexed(2, 2));
    assert!(got.contains(&"spec.completions: Invalid value: 3: can only be modified in tandem with spec.parallelism".to_owned()), "{got:?}");
}

#[test]
fn suspended_jobs_that_never_ran_may_change_scheduling_directives() {
    let suspended = |extra: Value| {
        job(spec_with(json!({"suspend": true}))
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .chain(extra.as_object().unwrap().clone())
            .collect::<serde_json::Map<_, _>>()
            .into())
    };
    let old = suspended(json!({}));
    let mut scheduled = template(generated_labels(), "OnFailure");
    scheduled["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    scheduled["metadata"]["annotations"] = json!({"a": "b"});
    let new = suspended(json!({"template": scheduled}));
    assert!(
        update_errors(&new, &old).is_empty(),
        "{:?}",
        update_errors(&new, &old)
    );
    let mut image = template(generated_labels(), "OnFailure");
    image["spec"]["containers"][0]["image"] = json!("other");
    let got = update_errors(&suspended(json!({"template": image})), &old);
    assert!(
        got.iter()
            .any(|e| e.starts_with("spec.template: Invalid value:")),
        "{got:?}"
    );
}

#[test]
fn status_updates_keep_terminal_conditions_and_counters() {
    let mut old = job(spec_with(json!({})));
    old.status = serde_json::from_value(json!({
        "startTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T00:01:00Z", "succeeded": 1,
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
    })).unwrap();
    let mut new = old.clone();
    new.status = serde_json::from_value(
        json!({"startTime": "2024-01-01T00:00:00Z", "succeeded": 0, "active": 1}),
    )
    .unwrap();
    let got = update_errors(&new, &old);
    for want in [
        "status.conditions: Invalid value: cannot disable the terminal Complete=True condition",
        "status.succeeded: Invalid value: 0: cannot decrease the succeeded counter",
        "status.conditions: Invalid value: cannot disable the SuccessCriteriaMet=True condition",
    ] {
        assert!(got.contains(&want.to_owned()), "want {want:?} in {got:?}");
    }

    let fresh = job(spec_with(json!({})));
    let mut done = fresh.clone();
    done.status = serde_json::from_value(json!({"active": 1,
        "conditions": [{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "True"}]})).unwrap();
    let got = update_errors(&done, &fresh);
    for want in [
        "status.conditions: Invalid value: cannot set Complete=True and Failed=true conditions",
        "status.completionTime: Required value: completionTime is required for Complete jobs",
        "status.active: Invalid value: 1: active>0 is invalid for finished job",
        "status.startTime: Required value: startTime is required for finished job",
    ] {
        assert!(got.contains(&want.to_owned()), "want {want:?} in {got:?}");
    }
}

/// A resumed Job's controller restarts its clock; an unsuspended Job's start time is otherwise
/// fixed (kube #134769).
#[test]
fn a_resume_may_reset_the_start_time() {
    let mut old = job(spec_with(json!({"suspend": false})));
    old.status = serde_json::from_value(json!({
        "startTime": "2024-01-01T00:00:00Z",
        "conditions": [{"type": "Suspended", "status": "True"}],
    }))
    .unwrap();
    let mut resumed = old.clone();
    resumed.status = serde_json::from_value(json!({
        "startTime": "2024-01-01T00:05:00Z",
        "conditions": [{"type": "Suspended", "status": "False"}],
    }))
    .unwrap();
    assert_eq!(update_errors(&resumed, &old), Vec::<String>::new());
    let mut running = old.clone();
    running.status = serde_json::from_value(json!({"startTime": "2024-01-01T00:00:00Z"})).unwrap();
    let mut moved = running.clone();
    moved.status = serde_json::from_value(json!({"startTime": "2024-01-01T00:05:00Z"})).unwrap();
    let got = update_errors(&moved, &running);
    let want = "status.startTime: Required value: startTime cannot be removed for unsuspended job";
    assert!(got.contains(&want.to_owned()), "{got:?}");
}

#[test]
fn table_shows_status_completions_and_duration() {
    let mut running = job(spec_with(json!({"completions": 3})));
    running.status = serde_json::from_value(json!({"succeeded": 1, "startTime": "2024-01-01T00:00:00Z",
        "completionTime": "2024-01-01T00:01:05Z", "conditions": [{"type": "Complete", "status": "True"}]})).unwrap();
    let cells = JobStrategy.cells(&running);
    assert_eq!(
        (&cells[1], &cells[2], &cells[3]),
        (&json!("Complete"), &json!("1/3"), &json!("65s"))
    );
    assert_eq!(cells[5], "abc");
    let queue = job(spec_with(json!({"parallelism": 3, "completions": null})));
    let mut queue = queue;
    queue.spec.as_mut().unwrap().completions = None;
    let cells = JobStrategy.cells(&queue);
    assert_eq!(
        (&cells[1], &cells[2], &cells[3]),
        (&json!("Running"), &json!("0/1 of 3"), &json!(""))
    );
}
