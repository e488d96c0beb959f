//! The preemption of victims through the API, as kube's `Evaluator.PreemptPod`: each victim
//! gets the DisruptionTarget condition (PreemptionByScheduler), is deleted with its grace
//! period, and a `Preempted` event names the preemptor.

use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::preemption::{DISRUPTION_TARGET, PREEMPTION_BY_SCHEDULER};
use super::DEFAULT_SCHEDULER;
use crate::kubelet::events::{self, EventType};
use crate::kubelet::status_manager::{self, StatusError, Written};
use crate::kubelet::{status, Context};
use peapod_apiserver::status::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum PreemptError {
    #[error("marking victim {victim} disrupted: {source}")]
    Condition {
        victim: String,
        #[source]
        source: StatusError,
    },
    #[error("deleting victim {victim}: {source}")]
    Delete {
        victim: String,
        #[source]
        source: Box<ApiError>,
    },
}

/// Preempts each victim for `preemptor`, nominated to this node; a victim already gone is
/// skipped.
pub async fn preempt(ctx: &Context, preemptor: &Pod, victims: &[Pod]) -> Result<(), PreemptError> {
    for victim in victims {
        if !mark_disrupted(ctx, preemptor, victim).await? {
            continue;
        }
        delete(ctx, victim).await?;
        let message = format!(
            "Preempted by pod {} on node {}",
            preemptor.metadata.uid.as_deref().unwrap_or_default(),
            ctx.node_name
        );
        let mut event = events::make(
            victim,
            DEFAULT_SCHEDULER,
            &ctx.node_name,
            EventType::Normal,
            "Preempted",
            &message,
            None,
        );
        event.action = Some("Preempting".into());
        event.related = Some(reference(preemptor));
        ctx.recorder.record(event);
    }
    Ok(())
}

/// The victim's DisruptionTarget condition, as `UpdatePodCondition` adds it; false when the
/// victim is gone.
async fn mark_disrupted(
    ctx: &Context,
    preemptor: &Pod,
    victim: &Pod,
) -> Result<bool, PreemptError> {
    let scheduler = preemptor
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(DEFAULT_SCHEDULER);
    let message = format!("{scheduler}: preempting to accommodate a higher priority pod");
    let now = Time(jiff::Timestamp::now());
    let desired = |base: &Pod| {
        let mut status = base.status.clone().unwrap_or_default();
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        let condition = status::condition(
            conditions,
            DISRUPTION_TARGET,
            true,
            Some(PREEMPTION_BY_SCHEDULER),
            Some(message.clone()),
            &now,
        );
        set_condition(conditions, condition);
        status
    };
    let written = status_manager::write_status(&ctx.client, &ctx.pods, victim, desired).await;
    match written {
        Ok(Written::PodGone) => Ok(false),
        Ok(_) => Ok(true),
        Err(source) => Err(PreemptError::Condition {
            victim: super::namespaced_name(victim),
            source,
        }),
    }
}

/// Replaces the condition of its type, or appends it.
fn set_condition(conditions: &mut Vec<PodCondition>, condition: PodCondition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(held) => *held = condition,
        None => conditions.push(condition),
    }
}

/// `util.DeletePod`: the pod's own grace period; its uid as precondition, so that a pod of
/// the same name made since is left alone.
async fn delete(ctx: &Context, victim: &Pod) -> Result<(), PreemptError> {
    let options = json!({"preconditions": {"uid": victim.metadata.uid}});
    let path = status_manager::pod_path(victim);
    match ctx.client.delete(&path, options).await {
        Ok(_) => Ok(()),
        Err(err) if err.code == axum::http::StatusCode::NOT_FOUND => Ok(()),
        Err(err) if err.code == axum::http::StatusCode::CONFLICT => Ok(()),
        Err(source) => Err(PreemptError::Delete {
            victim: super::namespaced_name(victim),
            source: Box::new(source),
        }),
    }
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_is_replaced_or_appended() {
        let condition = |type_: &str, status: &str| PodCondition {
            type_: type_.into(),
            status: status.into(),
            ..PodCondition::default()
        };
        let mut conditions = vec![condition("Ready", "True")];
        set_condition(&mut conditions, condition(DISRUPTION_TARGET, "False"));
        set_condition(&mut conditions, condition(DISRUPTION_TARGET, "True"));
        assert_eq!(
            conditions,
            [
                condition("Ready", "True"),
                condition(DISRUPTION_TARGET, "True")
            ]
        );
    }
}
