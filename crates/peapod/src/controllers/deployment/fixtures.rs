//! Deployments and ReplicaSets built the way kube's deployment controller tests build them.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
    RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

pub fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// kube's `newDeployment`: rolling with maxSurge and maxUnavailable 0 unless given, the
/// template labelled with the selector.
pub fn deployment(
    name: &str,
    replicas: i32,
    max_surge: Option<IntOrString>,
    max_unavailable: Option<IntOrString>,
    selector: &[(&str, &str)],
) -> Deployment {
    let rolling = RollingUpdateDeployment {
        max_surge: Some(max_surge.unwrap_or(IntOrString::Int(0))),
        max_unavailable: Some(max_unavailable.unwrap_or(IntOrString::Int(0))),
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(selector)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(rolling),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(selector)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec::default()),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// kube's `generateDeployment`: one container running `image`, labelled name=`image`.
pub fn generate_deployment(image: &str) -> Deployment {
    let mut d = deployment(image, 1, None, None, &[("name", image)]);
    let spec = d.spec.as_mut().unwrap();
    spec.strategy = None;
    spec.template.spec = Some(PodSpec {
        containers: vec![Container {
            name: image.into(),
            image: Some(image.into()),
            image_pull_policy: Some("Always".into()),
            termination_message_path: Some("/dev/termination-log".into()),
            ..Container::default()
        }],
        dns_policy: Some("ClusterFirst".into()),
        restart_policy: Some("Always".into()),
        termination_grace_period_seconds: Some(30),
        ..PodSpec::default()
    });
    d
}

/// kube's `generateRS`: a set running the Deployment's template, with 0 replicas.
pub fn generate_rs(d: &Deployment, name: &str) -> ReplicaSet {
    let template = d.spec.as_ref().unwrap().template.clone();
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            labels: labels.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            selector: LabelSelector {
                match_labels: labels,
                ..LabelSelector::default()
            },
            template: Some(template),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    }
}

/// kube's `rs`: a named set of `replicas` created at `created` (unset when `None`).
pub fn rs(name: &str, replicas: i32, created: Option<&str>) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: created.map(|t| Time(ts(t))),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            template: Some(PodTemplateSpec::default()),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    }
}

/// A set of `spec` replicas with `replicas` and `available` in its status.
pub fn rs_with_status(name: &str, spec: i32, replicas: i32, available: i32) -> ReplicaSet {
    let mut set = rs(name, spec, None);
    set.status = Some(ReplicaSetStatus {
        replicas,
        available_replicas: Some(available),
        ..ReplicaSetStatus::default()
    });
    set
}

/// The names and sizes of a plan, for comparing.
pub fn plan(steps: &[(&str, i32)]) -> Vec<(String, i32)> {
    steps.iter().map(|(n, r)| (n.to_string(), *r)).collect()
}
