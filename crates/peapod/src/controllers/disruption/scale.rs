//! The expected pod count of a budget that needs its pods' controllers' scale, as kube's
//! `getExpectedScale` finds it: each pod's controller (a ReplicaSet, the Deployment above its
//! ReplicaSet, a StatefulSet) counted once by its uid; pods without a controller are
//! unmanaged, a controller that is gone or of another kind is an error.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client, Resource};

use crate::controllers::ownership::controller_of;

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    #[error("{0} does not implement the scale subresource")]
    NoScaleSubresource(&'static str),
}

/// The pods' controllers' summed scale, and the names of the pods no controller manages.
pub async fn expected_scale(
    client: &Client,
    namespace: &str,
    pods: &[&Pod],
) -> Result<(i32, Vec<String>), ScaleError> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(owner) = controller_of(&pod.metadata) else {
            unmanaged.push(name);
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        match controller_scale(client, namespace, owner).await? {
            Some((uid, replicas)) => scales.insert(uid, replicas),
            None => return Err(ScaleError::NoController(name)),
        };
    }
    Ok((scales.values().sum(), unmanaged))
}

/// The finders in kube's order: the controller's uid and its desired replicas, `None` when
/// no finder knows it (or it is gone, or another object of that name).
async fn controller_scale(
    client: &Client,
    namespace: &str,
    owner: &OwnerReference,
) -> Result<Option<(String, i32)>, ScaleError> {
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, owner.kind.as_str()) {
        ("apps", "ReplicaSet") => replica_set_scale(client, namespace, owner).await,
        ("apps", "StatefulSet") => {
            let api = Api::<StatefulSet>::namespaced(client.clone(), namespace);
            let set = api.get_opt(&owner.name).await?;
            let set = set.filter(|s| s.meta().uid.as_deref() == Some(&owner.uid));
            Ok(set.map(|s| {
                (
                    owner.uid.clone(),
                    s.spec.and_then(|s| s.replicas).unwrap_or(1),
                )
            }))
        }
        ("apps", "DaemonSet") => Err(ScaleError::NoScaleSubresource("daemonsets.apps")),
        ("batch", "Job") => Err(ScaleError::NoScaleSubresource("jobs.batch")),
        _ => Ok(None),
    }
}

/// getPodReplicaSet and getPodDeployment: a ReplicaSet counts on its own unless a
/// Deployment controls it, which then counts instead.
async fn replica_set_scale(
    client: &Client,
    namespace: &str,
    owner: &OwnerReference,
) -> Result<Option<(String, i32)>, ScaleError> {
    let api = Api::<ReplicaSet>::namespaced(client.clone(), namespace);
    let Some(rs) = api.get_opt(&owner.name).await? else {
        return Ok(None);
    };
    if rs.metadata.uid.as_deref() != Some(&owner.uid) {
        return Ok(None);
    }
    let Some(deployment_ref) = controller_of(&rs.metadata).filter(|c| c.kind == "Deployment")
    else {
        let replicas = rs.spec.and_then(|s| s.replicas).unwrap_or(1);
        return Ok(Some((owner.uid.clone(), replicas)));
    };
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace);
    let deployment = deployments.get_opt(&deployment_ref.name).await?;
    let deployment = deployment.filter(|d| d.metadata.uid.as_deref() == Some(&deployment_ref.uid));
    Ok(deployment.map(|d| {
        let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
        (deployment_ref.uid.clone(), replicas)
    }))
}
