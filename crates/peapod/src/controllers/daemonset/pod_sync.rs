//! `syncNodes`: the creates (in slow-start batches, each pod pinned to its node) and deletes
//! one step of the DaemonSet controller sends, with the events kube's pod control records
//! and the aggregate of what failed.

use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use super::controller::{Context, ReconcileError};
use super::pods::pod_for_node;
use crate::controllers::api_errors::{error_message, namespace_terminating};
use crate::controllers::replicaset::batches::{slow_start_batch, SLOW_START_INITIAL_BATCH_SIZE};
use crate::controllers::replicaset::pod_control;

/// `daemon.BurstReplicas`: the most creates or deletes of one step.
pub const BURST_REPLICAS: usize = 250;

/// One sync's DaemonSet, its current revision's hash, and the controller's context.
pub struct NodeSync<'a> {
    pub ds: &'a DaemonSet,
    pub hash: &'a str,
    pub ctx: &'a Context,
}

impl NodeSync<'_> {
    fn pods(&self) -> Api<Pod> {
        let namespace = self.ds.namespace().unwrap_or_default();
        Api::namespaced(self.ctx.client.clone(), &namespace)
    }

    /// Creates a pod on each of `create_on` and deletes `delete`, each at most
    /// [`BURST_REPLICAS`]; the errors come back together.
    pub async fn sync_nodes(
        &self,
        delete: &[String],
        create_on: &[String],
    ) -> Result<(), ReconcileError> {
        let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
        let delete = &delete[..delete.len().min(BURST_REPLICAS)];
        let mut errors = self.create(create_on).await;
        let deletes = delete.iter().map(|name| self.delete(name));
        errors.extend(
            futures::future::join_all(deletes)
                .await
                .into_iter()
                .flatten(),
        );
        match errors.as_slice() {
            [] => Ok(()),
            [one] => Err(ReconcileError::Sync(one.clone())),
            many => Err(ReconcileError::Sync(format!("[{}]", many.join(", ")))),
        }
    }

    /// The creates, in slow-start batches; a failed batch stops the rest for this step.
    async fn create(&self, nodes: &[String]) -> Vec<String> {
        let next = AtomicUsize::new(0);
        let create = || {
            let node = &nodes[next.fetch_add(1, Ordering::SeqCst)];
            self.create_on(node)
        };
        let (_, error) = slow_start_batch(nodes.len(), SLOW_START_INITIAL_BATCH_SIZE, create).await;
        error.into_iter().collect()
    }

    async fn create_on(&self, node: &str) -> Result<(), String> {
        let pod = pod_for_node(self.ds, self.hash, node);
        match self.pods().create(&PostParams::default(), &pod).await {
            Ok(created) => {
                let event = pod_control::created(&created.name_any());
                self.ctx.events.record(self.ds, event).await;
                Ok(())
            }
            Err(kube::Error::Api(status)) if namespace_terminating(&status) => Ok(()),
            Err(err) => {
                let message = error_message(&err);
                let event = pod_control::create_failed(&message);
                self.ctx.events.record(self.ds, event).await;
                Err(message)
            }
        }
    }

    async fn delete(&self, name: &str) -> Option<String> {
        match self.pods().delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.ctx
                    .events
                    .record(self.ds, pod_control::deleted(name))
                    .await;
                None
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => None,
            Err(err) => {
                let message = error_message(&err);
                let event = pod_control::delete_failed(&message);
                self.ctx.events.record(self.ds, event).await;
                Some(message)
            }
        }
    }
}
