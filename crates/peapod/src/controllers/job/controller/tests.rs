use kube::runtime::reflector;
use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::{build_pod, job};

fn pod(labels: serde_json::Value, owner: Option<(&str, &str)>, deleting: bool) -> Pod {
    let mut pod = build_pod().pod();
    pod.metadata.labels = serde_json::from_value(labels).unwrap();
    if let Some((kind, name)) = owner {
        pod.metadata.owner_references = Some(vec![serde_json::from_value(json!({
            "apiVersion": if kind == "Job" { "batch/v1" } else { "apps/v1" },
            "kind": kind, "name": name, "uid": "u", "controller": true,
        }))
        .unwrap()]);
    }
    if deleting {
        pod.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
    }
    pod
}

#[test]
fn pods_trigger_their_job_and_orphans_the_jobs_that_select_them() {
    let (cache, mut writer) = reflector::store::<Job>();
    let mut other = job(json!({"selector": {"matchLabels": {"job": "other"}}}));
    other.metadata.name = Some("other".into());
    let mut elsewhere = job(json!({}));
    elsewhere.metadata.namespace = Some("elsewhere".into());
    for job in [job(json!({})), other, elsewhere] {
        writer.apply_watcher_event(&watcher::Event::Apply(job));
    }
    let names = |pod: &Pod| -> Vec<String> {
        ownership::controllers_to_sync(&cache, pod)
            .iter()
            .map(|r| format!("{}/{}", r.namespace.clone().unwrap_or_default(), r.name))
            .collect()
    };
    assert_eq!(
        names(&pod(json!({"job": "x"}), Some(("Job", "other")), false)),
        ["default/other"]
    );
    assert!(names(&pod(
        json!({"job": "pi"}),
        Some(("ReplicaSet", "web")),
        false
    ))
    .is_empty());
    assert_eq!(
        names(&pod(json!({"job": "pi"}), None, false)),
        ["default/pi"]
    );
    assert!(names(&pod(json!({"job": "pi"}), None, true)).is_empty());
    assert!(names(&pod(json!({"job": "none"}), None, false)).is_empty());
}

#[test]
fn waits_keep_the_earliest() {
    let (one, two) = (Duration::from_secs(1), Duration::from_secs(2));
    assert_eq!(earliest(Some(two), Some(one)), Some(one));
    assert_eq!(earliest(None, Some(two)), Some(two));
    assert_eq!(earliest(None, None), None);
}
