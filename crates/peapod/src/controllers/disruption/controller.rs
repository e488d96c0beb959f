//! The disruption controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by PodDisruptionBudgets and by pods (mapped to the budgets of their namespace
//! that select them), each reconcile kube's `sync` of one budget in the
//! [shared loop](crate::controllers::reconciler).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use peapod_api::label_selector::{as_selector, format_label_selector};
use peapod_apis::policy::v1::poddisruptionbudget::budget::selects;

use super::scale::{expected_scale, ScaleError};
use super::status::{self, Counts};
use crate::controllers::events::{Event, Events};
use crate::controllers::pod_selectors::triggered_by_pods;
use crate::controllers::reconciler::{self, Reconciler};

/// The controller's name, in its events.
pub const NAME: &str = "controllermanager";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Scale(#[from] ScaleError),
    #[error("{0}")]
    Selector(String),
    #[error("{0}")]
    Budget(String),
}

impl SyncError {
    /// A conflict is retried as is, without the fail-safe status (kube's `IsConflict`).
    fn is_conflict(&self) -> bool {
        matches!(self, SyncError::Api(kube::Error::Api(status)) if status.code == 409)
    }
}

pub struct Context {
    client: Client,
    events: Events,
}

impl Reconciler for Context {
    type Object = PodDisruptionBudget;
    type Error = SyncError;
    const LOG_NAME: &'static str = "disruption controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, pdb: PodDisruptionBudget) -> Result<Action, SyncError> {
        match try_sync(&pdb, self).await {
            Err(err) if !err.is_conflict() => {
                tracing::info!(budget = %pdb.name_any(), %err, "disruption controller: sync failed");
                let now = Timestamp::now();
                write_status(&pdb, status::fail_safe(&pdb, &err.to_string(), now), self).await?;
                Ok(Action::await_change())
            }
            synced => synced,
        }
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let budgets = Api::<PodDisruptionBudget>::all(client.clone());
    let controller = Controller::new(budgets, watcher::Config::default());
    let controller = triggered_by_pods(controller, &client, selects);
    let context = Context {
        events: Events::new(client.clone(), NAME),
        client,
    };
    reconciler::run(controller, context).await;
}

/// trySync: the budget's pods counted, its status written when it changed, and a requeue
/// for when the earliest pending disruption times out.
async fn try_sync(pdb: &PodDisruptionBudget, ctx: &Context) -> Result<Action, SyncError> {
    let pods = pods_of(pdb, ctx).await?;
    let pods: Vec<&Pod> = pods.iter().collect();
    if pods.is_empty() {
        let event = Event::normal("NoPods", "No matching pods found".to_owned());
        ctx.events.record(pdb, event).await;
    }
    let (expected_pods, desired_healthy) = match expected_counts(pdb, &pods, ctx).await {
        Ok(counts) => counts,
        Err(err) => {
            let message = format!("Failed to calculate the number of expected pods: {err}");
            let event = Event::warning("CalculateExpectedPodCountFailed", message);
            ctx.events.record(pdb, event).await;
            return Err(err);
        }
    };
    let now = Timestamp::now();
    let disruptions = status::pending_disruptions(&pods, pdb, now);
    for name in &disruptions.overdue {
        warn_not_deleted(
            pdb,
            pods.iter().find(|p| p.metadata.name.as_ref() == Some(name)),
            ctx,
        )
        .await;
    }
    let (disrupted_pods, recheck) = (disruptions.pending, disruptions.recheck);
    let counts = Counts {
        current_healthy: status::count_healthy(&pods, &disrupted_pods, now),
        desired_healthy,
        expected_pods,
        disrupted_pods,
    };
    if let Some(new_status) = status::status_update(pdb, counts, now) {
        write_status(pdb, new_status, ctx).await?;
    }
    let action = recheck.map(|at| at.duration_since(now).unsigned_abs());
    Ok(action.map_or_else(Action::await_change, Action::requeue))
}

/// kube's NotDeleted warning on a pod evicted longer ago than the timeout (naming the
/// budget's namespace twice, as kube's does).
async fn warn_not_deleted(pdb: &PodDisruptionBudget, pod: Option<&&Pod>, ctx: &Context) {
    let Some(pod) = pod else {
        return;
    };
    let namespace = pdb.namespace().unwrap_or_default();
    let message =
        format!("Pod was expected by PDB {namespace}/{namespace} to be deleted but it wasn't");
    let event = Event::warning("NotDeleted", message);
    ctx.events.record(*pod, event).await;
}

/// getPodsForPdb: the pods of the budget's namespace its selector matches (a missing
/// selector matches none).
async fn pods_of(pdb: &PodDisruptionBudget, ctx: &Context) -> Result<Vec<Pod>, SyncError> {
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Ok(Vec::new());
    };
    let selector = as_selector(selector).map_err(|err| SyncError::Selector(err.to_string()))?;
    let namespace = pdb.namespace().unwrap_or_default();
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
    let pods = api.list(&ListParams::default()).await?.items;
    let labels = |pod: &Pod| pod.metadata.labels.clone().unwrap_or_default();
    Ok(pods
        .into_iter()
        .filter(|p| selector.matches(&labels(p)))
        .collect())
}

/// getExpectedPodCount: the expected pods (the pods themselves, or their controllers' scale)
/// and how many of them must stay healthy.
async fn expected_counts(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    ctx: &Context,
) -> Result<(i32, i32), SyncError> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let expected = if status::needs_scale(&spec) {
        let namespace = pdb.namespace().unwrap_or_default();
        let (expected, unmanaged) = expected_scale(&ctx.client, &namespace, pods).await?;
        if !unmanaged.is_empty() {
            let message = format!("Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", format_label_selector(spec.selector.as_ref()));
            ctx.events
                .record(pdb, Event::warning("UnmanagedPods", message))
                .await;
        }
        expected
    } else {
        i32::try_from(pods.len()).unwrap_or(i32::MAX)
    };
    let desired = status::desired_healthy(&spec, expected).map_err(SyncError::Budget)?;
    Ok((expected, desired))
}

async fn write_status(
    pdb: &PodDisruptionBudget,
    new_status: PodDisruptionBudgetStatus,
    ctx: &Context,
) -> Result<(), SyncError> {
    let namespace = pdb.namespace().unwrap_or_default();
    let api = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &namespace);
    let mut updated = pdb.clone();
    updated.status = Some(new_status);
    api.replace_status(&pdb.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}
