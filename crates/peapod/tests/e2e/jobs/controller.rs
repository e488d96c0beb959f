//! The Job controller and the TTL-after-finished controller through the real kubectl, as
//! test/e2e/apps/job.go and ttl_after_finished.go drive them: completions run `parallelism` at
//! a time to Complete (`kubectl wait --for=condition=complete`); failures end in Failed with
//! BackoffLimitExceeded, PodFailurePolicy or DeadlineExceeded and kube's messages; an Indexed
//! Job's pods see their JOB_COMPLETION_INDEX and hostname; suspend deletes the pods and resume
//! brings new ones; ttlSecondsAfterFinished deletes a finished Job and its pods; an agent
//! killed in the middle of a Job neither loses nor repeats a completion. Every pod seen is
//! leak-checked once gone.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// How long a Job gets to finish, or its pods to go.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

/// A Job named `name` running `script` in busybox; `spec` holds extra spec lines (2 spaces).
fn job(name: &str, spec: &str, script: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: work\n        image: busybox\n        command: [sh, -c, '{script}']\n"
    )
}

fn pods_of(kubectl: &Kubectl, job: &str) -> Vec<Value> {
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let pods = kubectl.json(&["get", "pods", "-l", &selector]);
    pods["items"].as_array().cloned().unwrap_or_default()
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The True condition of `type_`, Null if none.
fn true_condition(job: &Value, type_: &str) -> Value {
    let conditions = job["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let found = conditions
        .into_iter()
        .find(|c| c["type"] == type_ && c["status"] == "True");
    found.unwrap_or(Value::Null)
}

/// Waits for the Job's `type_` condition, recording the uids of the pods seen meanwhile.
fn wait_for_condition(
    kubectl: &Kubectl,
    job: &str,
    type_: &str,
    seen: &mut BTreeSet<String>,
) -> Value {
    let found = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || {
            seen.extend(pods_of(kubectl, job).iter().map(uid));
            kubectl.json(&["get", "job", job])
        },
        |j| !true_condition(j, type_).is_null(),
    );
    assert!(
        !true_condition(&found, type_).is_null(),
        "{job} to be {type_}: {found:#}"
    );
    found
}

fn events_of(kubectl: &Kubectl, job: &str) -> Vec<(String, String)> {
    let selector = format!("involvedObject.name={job},involvedObject.kind=Job");
    let events = kubectl.json(&["get", "events", "--field-selector", &selector]);
    let items = events["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Deletes the Job as kubectl does (background) and waits for its pods to go.
fn delete_job(kubectl: &Kubectl, job: &str) {
    let deleted = kubectl.ok(&["delete", "job", job]);
    assert_eq!(deleted.trim(), format!(r#"job.batch "{job}" deleted"#));
    wait_until(SETTLE_WITHIN, "the Job's pods to go", || {
        pods_of(kubectl, job).is_empty()
    });
}

#[test]
fn completions_run_in_parallel_until_complete() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&job(
        "five",
        "  completions: 5\n  parallelism: 2\n",
        "sleep 1",
    ));
    let most_active = poll(
        SETTLE_WITHIN,
        Duration::from_millis(100),
        || {
            let pods = pods_of(&kubectl, "five");
            seen.extend(pods.iter().map(uid));
            let job = kubectl.json(&["get", "job", "five"]);
            let running = pods
                .iter()
                .filter(|p| {
                    p["status"]["phase"] != "Succeeded"
                        && p["metadata"]["deletionTimestamp"].is_null()
                })
                .count();
            assert!(
                running <= 2,
                "more than parallelism pods at once: {pods:#?}"
            );
            (job, seen.len())
        },
        |(job, _)| !true_condition(job, "Complete").is_null(),
    );
    let waited = kubectl.ok(&[
        "wait",
        "--for=condition=complete",
        "job/five",
        "--timeout=60s",
    ]);
    assert_eq!(waited.trim(), "job.batch/five condition met");
    let (done, _) = most_active;
    let status = &done["status"];
    assert_eq!(status["succeeded"], 5, "{done:#}");
    assert_eq!(status["failed"], Value::Null, "{done:#}");
    assert_eq!(status["uncountedTerminatedPods"], json!({}), "{done:#}");
    assert!(status["completionTime"].is_string(), "{done:#}");
    assert!(
        !true_condition(&done, "SuccessCriteriaMet").is_null(),
        "{done:#}"
    );

    let pods = pods_of(&kubectl, "five");
    assert_eq!(pods.len(), 5, "{pods:#?}");
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Succeeded", "{pod:#}");
        assert!(
            pod["metadata"]["finalizers"].is_null(),
            "counted, so released: {pod:#}"
        );
        assert!(name(pod).starts_with("five-"), "{pod:#}");
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["uid"],
            done["metadata"]["uid"]
        );
        assert_eq!(
            pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
            done["metadata"]["uid"]
        );
    }
    let table = kubectl.ok(&["get", "job", "five"]);
    let row = columns(&table, 1);
    assert_eq!(row[..3], ["five", "Complete", "5/5"], "{table}");
    let events = events_of(&kubectl, "five");
    let created = events
        .iter()
        .filter(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: five-"))
        .count();
    assert_eq!(created, 5, "{events:?}");
    assert!(
        events.contains(&("Completed".into(), "Job completed".into())),
        "{events:?}"
    );

    delete_job(&kubectl, "five");
    for uid in &seen {
        agent.leak_check(uid);
    }
}

#[test]
fn failures_end_in_kubes_failed_conditions() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&job("backoff", "  backoffLimit: 1\n", "exit 1"));
    let policy = "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {operator: In, values: [42]}\n";
    kubectl.apply(&job("policy", policy, "exit 42"));
    kubectl.apply(&job("deadline", "  activeDeadlineSeconds: 2\n", "sleep 60"));

    let failed = wait_for_condition(&kubectl, "policy", "Failed", &mut seen);
    let pod = pods_of(&kubectl, "policy").remove(0);
    let condition = true_condition(&failed, "Failed");
    assert_eq!(condition["reason"], "PodFailurePolicy");
    let message = format!("Container work for pod default/{} failed with exit code 42 matching FailJob rule at index 0", name(&pod));
    assert_eq!(condition["message"], message);
    assert_eq!(true_condition(&failed, "FailureTarget")["message"], message);
    assert_eq!(failed["status"]["failed"], 1, "{failed:#}");

    let expired = wait_for_condition(&kubectl, "deadline", "Failed", &mut seen);
    let condition = true_condition(&expired, "Failed");
    assert_eq!(condition["reason"], "DeadlineExceeded");
    assert_eq!(
        condition["message"],
        "Job was active longer than specified deadline"
    );
    assert_eq!(expired["status"]["active"], Value::Null, "{expired:#}");
    wait_until(SETTLE_WITHIN, "the deadline's pod to go", || {
        pods_of(&kubectl, "deadline")
            .iter()
            .all(|p| p["status"]["phase"] == "Failed")
    });
    let events = events_of(&kubectl, "deadline");
    assert!(
        events.contains(&(
            "DeadlineExceeded".into(),
            "Job was active longer than specified deadline".into()
        )),
        "{events:?}"
    );

    let exceeded = wait_for_condition(&kubectl, "backoff", "Failed", &mut seen);
    let condition = true_condition(&exceeded, "Failed");
    assert_eq!(condition["reason"], "BackoffLimitExceeded");
    assert_eq!(
        condition["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(exceeded["status"]["failed"], 2, "{exceeded:#}");
    let pods = pods_of(&kubectl, "backoff");
    assert_eq!(pods.len(), 2, "one pod and its replacement: {pods:#?}");
    let table = kubectl.ok(&["get", "job", "backoff"]);
    assert_eq!(
        columns(&table, 1)[..3],
        ["backoff", "Failed", "0/1"],
        "{table}"
    );
    let waited = kubectl.ok(&[
        "wait",
        "--for=condition=failed",
        "job/backoff",
        "--timeout=10s",
    ]);
    assert_eq!(waited.trim(), "job.batch/backoff condition met");

    for job in ["backoff", "policy", "deadline"] {
        delete_job(&kubectl, job);
    }
    for uid in &seen {
        agent.leak_check(uid);
    }
}

#[test]
fn indexed_pods_see_their_completion_index() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    let spec = "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n";
    kubectl.apply(&job(
        "idx",
        spec,
        "echo index=$JOB_COMPLETION_INDEX host=$(hostname)",
    ));
    let done = wait_for_condition(&kubectl, "idx", "Complete", &mut seen);
    assert_eq!(done["status"]["completedIndexes"], "0-2", "{done:#}");
    assert_eq!(done["status"]["succeeded"], 3, "{done:#}");
    let pods = pods_of(&kubectl, "idx");
    assert_eq!(pods.len(), 3, "{pods:#?}");
    for pod in &pods {
        let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            index.as_str()
        );
        assert!(name(pod).starts_with(&format!("idx-{index}-")), "{pod:#}");
        let logs = kubectl.ok(&["logs", &name(pod)]);
        assert_eq!(logs.trim(), format!("index={index} host=idx-{index}"));
    }
    delete_job(&kubectl, "idx");
    for uid in &seen {
        agent.leak_check(uid);
    }
}

/// Created suspended, resumed, scaled down to parallelism 1, suspended again, and resumed once
/// more: the second resume restarts the Job's clock (a new startTime, as kubernetes#135128
/// lets the controller write) and starts a pod again.
#[test]
fn suspend_deletes_the_pods_and_resume_starts_them() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    let spec = "  completions: 2\n  parallelism: 2\n  suspend: true\n";
    kubectl.apply(&job("pausing", spec, "sleep 300"));
    let suspended = wait_for_condition(&kubectl, "pausing", "Suspended", &mut seen);
    assert_eq!(
        true_condition(&suspended, "Suspended")["reason"],
        "JobSuspended"
    );
    assert_eq!(
        true_condition(&suspended, "Suspended")["message"],
        "Job suspended"
    );
    assert!(suspended["status"]["startTime"].is_null(), "{suspended:#}");
    assert!(pods_of(&kubectl, "pausing").is_empty());

    set_suspend(&kubectl, false);
    let pods = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || pods_of(&kubectl, "pausing"),
        |pods| pods.len() == 2 && pods.iter().all(all_running),
    );
    assert!(pods.len() == 2 && pods.iter().all(all_running), "{pods:#?}");
    seen.extend(pods.iter().map(uid));
    let resumed = kubectl.json(&["get", "job", "pausing"]);
    assert_eq!(suspension(&resumed), (json!("False"), json!("JobResumed")));
    assert!(resumed["status"]["startTime"].is_string(), "{resumed:#}");
    assert_eq!(resumed["status"]["active"], 2, "{resumed:#}");

    let fewer = json!({"spec": {"parallelism": 1}}).to_string();
    kubectl.ok(&["patch", "job", "pausing", "--type=merge", "-p", &fewer]);
    let one = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "job", "pausing"]),
        |job| job["status"]["active"] == 1,
    );
    assert_eq!(
        one["status"]["active"], 1,
        "parallelism 1 leaves one pod: {one:#}"
    );

    set_suspend(&kubectl, true);
    wait_until(SETTLE_WITHIN, "the suspended Job's pods to go", || {
        pods_of(&kubectl, "pausing").is_empty()
    });
    let again = kubectl.json(&["get", "job", "pausing"]);
    assert_eq!(suspension(&again), (json!("True"), json!("JobSuspended")));
    assert_eq!(again["status"]["active"], Value::Null, "{again:#}");
    let events = events_of(&kubectl, "pausing");
    for expected in [("Suspended", "Job suspended"), ("Resumed", "Job resumed")] {
        assert!(
            events.contains(&(expected.0.into(), expected.1.into())),
            "{events:?}"
        );
    }
    let deletes = events
        .iter()
        .filter(|(r, m)| r == "SuccessfulDelete" && m.starts_with("Deleted pod: pausing-"));
    assert_eq!(deletes.count(), 2, "{events:?}");

    set_suspend(&kubectl, false);
    let back = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "job", "pausing"]),
        |job| suspension(job).0 == "False" && job["status"]["active"] == 1,
    );
    assert_eq!(suspension(&back), (json!("False"), json!("JobResumed")));
    assert_eq!(back["status"]["active"], 1, "{back:#}");
    let restarted = back["status"]["startTime"].as_str().unwrap_or_default();
    let first = resumed["status"]["startTime"].as_str().unwrap_or_default();
    assert!(restarted > first, "startTime {restarted} after {first}");
    seen.extend(pods_of(&kubectl, "pausing").iter().map(uid));
    delete_job(&kubectl, "pausing");
    for uid in &seen {
        agent.leak_check(uid);
    }
}

fn set_suspend(kubectl: &Kubectl, suspend: bool) {
    let patch = json!({"spec": {"suspend": suspend}}).to_string();
    let patched = kubectl.ok(&["patch", "job", "pausing", "--type=merge", "-p", &patch]);
    assert_eq!(patched.trim(), "job.batch/pausing patched");
}

/// The Suspended condition's status and reason.
fn suspension(job: &Value) -> (Value, Value) {
    let conditions = job["status"]["conditions"].as_array().cloned();
    let found = conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c["type"] == "Suspended")
        .unwrap_or_default();
    (found["status"].clone(), found["reason"].clone())
}

#[test]
fn ttl_after_finished_deletes_the_job_and_its_pods() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&job("brief", "  ttlSecondsAfterFinished: 2\n", "true"));
    wait_for_condition(&kubectl, "brief", "Complete", &mut seen);
    wait_until(
        SETTLE_WITHIN,
        "the TTL controller to delete the Job",
        || !kubectl.run(&["get", "job", "brief"], None).status.success(),
    );
    wait_until(SETTLE_WITHIN, "the finished Job's pods to go", || {
        pods_of(&kubectl, "brief").is_empty()
    });
    for uid in &seen {
        agent.leak_check(uid);
    }
}

#[test]
fn an_agent_restart_neither_loses_nor_repeats_completions() {
    let (mut agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&job(
        "steady",
        "  completions: 6\n  parallelism: 2\n",
        "sleep 2",
    ));
    let some_done = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || {
            seen.extend(pods_of(&kubectl, "steady").iter().map(uid));
            kubectl.json(&["get", "job", "steady"])
        },
        |j| j["status"]["succeeded"].as_i64().unwrap_or(0) >= 2,
    );
    assert!(
        some_done["status"]["succeeded"].as_i64().unwrap_or(0) >= 2,
        "{some_done:#}"
    );
    agent.kill_and_restart();
    let done = wait_for_condition(&kubectl, "steady", "Complete", &mut seen);
    assert_eq!(done["status"]["succeeded"], 6, "{done:#}");
    let pods = pods_of(&kubectl, "steady");
    let succeeded = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    assert_eq!(succeeded, 6, "one pod per completion: {pods:#?}");
    assert!(
        pods.iter().all(|p| p["metadata"]["finalizers"].is_null()),
        "{pods:#?}"
    );
    delete_job(&kubectl, "steady");
    for uid in &seen {
        agent.leak_check(uid);
    }
}
