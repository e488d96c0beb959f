//! The HPA controller's loop: kube-runtime's Controller over the HPAs, each HPA synced once
//! per sync period as kube's rate-limited queue resyncs it (failures included; a trigger
//! before its time, such as the controller's own status write, waits for it, unless the
//! HPA's spec changed), each sync a `reconcileAutoscaler` in the
//! [shared loop](crate::controllers::reconciler).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus,
    MetricStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::conditions::{self, Condition, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED};
use super::normalize::{Bounds, History};
use super::replica_calculator::ReplicaCalculator;
use super::scale_target::{self, Target, TargetError};
use super::selectors::HpaSelectors;
use crate::controllers::api_errors::error_message;
use crate::controllers::events::{Event, Events};
use crate::controllers::reconciler::{self, Reconciler};
use crate::controllers::retries::key_of;

/// The controller's name, its events' source.
pub const NAME: &str = "horizontal-pod-autoscaler";
/// `--horizontal-pod-autoscaler-sync-period`.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(15);
const SYNC_PERIOD_ENV: &str = "PEAPOD_HPA_SYNC_PERIOD";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PEAPOD_HPA_SYNC_PERIOD: {0:?} is not a whole number of seconds from 1")]
pub struct SyncPeriodError(String);

/// The sync period: `PEAPOD_HPA_SYNC_PERIOD` in seconds, else kube's 15 s.
pub fn sync_period(env: Option<&str>) -> Result<Duration, SyncPeriodError> {
    let Some(text) = env else {
        return Ok(DEFAULT_SYNC_PERIOD);
    };
    let seconds = text.parse::<u64>().ok().filter(|s| *s >= 1);
    seconds
        .map(Duration::from_secs)
        .ok_or_else(|| SyncPeriodError(text.to_owned()))
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{}", error_message(.0))]
    Api(#[from] kube::Error),
    #[error("invalid API version in scale target reference: {0}")]
    InvalidApiVersion(TargetError),
    #[error("unable to determine resource for scale target reference: {0}")]
    NoMapping(TargetError),
    #[error("failed to query scale subresource for {reference}: {source}")]
    GetScale {
        reference: String,
        source: TargetError,
    },
    #[error("failed to compute desired number of replicas based on listed metrics for {reference}: {message}")]
    ComputeReplicas { reference: String, message: String },
    /// Some metrics failed, the others scaled.
    #[error("{0}")]
    InvalidMetrics(String),
    #[error("failed to rescale {reference}: {source}")]
    Rescale {
        reference: String,
        source: TargetError,
    },
    #[error("failed to update status for {name}: {message}")]
    UpdateStatus { name: String, message: String },
}

/// What every sync shares: the client, the recorder, the calculator and what is kept of
/// each HPA between its syncs.
pub struct Context {
    pub(super) client: Client,
    pub(super) events: Events,
    pub(super) calculator: ReplicaCalculator,
    sync_period: Duration,
    histories: Mutex<HashMap<String, History>>,
    /// When each HPA last synced, and its spec then (kube's HPAs have no generation).
    synced: Mutex<HashMap<String, (Option<HorizontalPodAutoscalerSpec>, Instant)>>,
    pub(super) selectors: HpaSelectors,
}

impl Context {
    pub fn new(client: Client, sync_period: Duration) -> Context {
        Context {
            events: Events::new(client.clone(), NAME),
            client,
            calculator: ReplicaCalculator::default(),
            sync_period,
            histories: Mutex::default(),
            synced: Mutex::default(),
            selectors: HpaSelectors::default(),
        }
    }

    /// How long `hpa` still waits for its next sync; `None` when due (or its spec changed),
    /// and then its sync starts now.
    fn wait_for_sync(&self, hpa: &HorizontalPodAutoscaler) -> Option<Duration> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let key = key_of(hpa);
        if let Some((last_spec, at)) = synced.get(&key) {
            let left = self.sync_period.saturating_sub(at.elapsed());
            if *last_spec == hpa.spec && !left.is_zero() {
                return Some(left);
            }
        }
        synced.insert(key, (hpa.spec.clone(), Instant::now()));
        None
    }

    fn with_history<T>(&self, key: &str, f: impl FnOnce(&mut History) -> T) -> T {
        let mut histories = self.histories.lock().unwrap_or_else(|e| e.into_inner());
        f(histories.entry(key.to_owned()).or_default())
    }
}

impl Reconciler for Context {
    type Object = HorizontalPodAutoscaler;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "horizontal pod autoscaler controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, hpa: HorizontalPodAutoscaler) -> Result<Action, ReconcileError> {
        if let Some(left) = self.wait_for_sync(&hpa) {
            return Ok(Action::requeue(left));
        }
        self.reconcile_autoscaler(hpa).await?;
        Ok(Action::requeue(self.sync_period))
    }

    fn forget(&self, gone: &HorizontalPodAutoscaler) {
        let key = key_of(gone);
        let mut histories = self.histories.lock().unwrap_or_else(|e| e.into_inner());
        histories.remove(&key);
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.remove(&key);
        let namespace = gone.namespace().unwrap_or_default();
        self.selectors.delete(&namespace, &gone.name_any());
    }

    /// kube's HPA queue retries a failure at the next sync period, not with a backoff.
    fn retry_after(&self, _backoff: Duration) -> Duration {
        self.sync_period
    }
}

/// `sync_period` of the environment's `PEAPOD_HPA_SYNC_PERIOD`.
pub fn sync_period_from_env() -> Result<Duration, SyncPeriodError> {
    sync_period(std::env::var(SYNC_PERIOD_ENV).ok().as_deref())
}

/// Runs the controller until its task is aborted. `peapod serve` refuses a bad sync period
/// at start; were one to reach here, it is logged and the default used.
pub async fn run(client: Client) {
    let period = sync_period_from_env().unwrap_or_else(|err| {
        tracing::error!(%err, "using the default HPA sync period");
        DEFAULT_SYNC_PERIOD
    });
    let hpas = Api::<HorizontalPodAutoscaler>::all(client.clone());
    let controller = Controller::new(hpas, watcher::Config::default());
    reconciler::run(controller, Context::new(client, period)).await;
}

/// `setCondition`.
pub(super) fn set_condition(
    hpa: &mut HorizontalPodAutoscaler,
    condition: Condition,
    now: Timestamp,
) {
    let status = hpa.status.get_or_insert_default();
    conditions::set(&mut status.conditions, condition, now);
}

/// `setStatus`: the counts and metrics anew, the conditions and last scale time kept (the
/// latter now on a rescale).
fn set_status(
    hpa: &mut HorizontalPodAutoscaler,
    (current, desired): (i32, i32),
    metrics: Vec<MetricStatus>,
    rescaled_at: Option<Timestamp>,
) {
    let old = hpa.status.take().unwrap_or_default();
    hpa.status = Some(HorizontalPodAutoscalerStatus {
        current_replicas: (current != 0).then_some(current),
        desired_replicas: desired,
        last_scale_time: rescaled_at.map(Time).or(old.last_scale_time),
        current_metrics: (!metrics.is_empty()).then_some(metrics),
        conditions: old.conditions,
        observed_generation: old.observed_generation,
    });
}

/// `setCurrentReplicasAndMetricsInStatus`.
fn set_current_replicas_and_metrics(
    hpa: &mut HorizontalPodAutoscaler,
    current: i32,
    metrics: Vec<MetricStatus>,
) {
    let desired = hpa.status.as_ref().map_or(0, |s| s.desired_replicas);
    set_status(hpa, (current, desired), metrics, None);
}

/// What a sync decided: the replicas, whether to write them and why, the metrics' statuses
/// and an error to return once done.
struct Decision {
    desired: i32,
    rescale: bool,
    reason: String,
    statuses: Vec<MetricStatus>,
    error: Option<String>,
}

impl Context {
    /// `reconcileAutoscaler`.
    pub(super) async fn reconcile_autoscaler(
        &self,
        shared: HorizontalPodAutoscaler,
    ) -> Result<(), ReconcileError> {
        let mut hpa = shared;
        let original = hpa.status.clone();
        let now = Timestamp::now();
        let target = self.target(&mut hpa, &original, now).await?;
        let able = Condition::new(
            ABLE_TO_SCALE,
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        );
        set_condition(&mut hpa, able, now);
        let current = target
            .scale
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(0);
        let key = key_of(&hpa);
        self.with_history(&key, |h| h.record_initial_recommendation(current, now));
        let decision = self
            .decide(&mut hpa, &target, current, &original, now)
            .await?;
        let mut rescaled_at = None;
        if decision.rescale {
            self.rescale(&mut hpa, &target, current, &decision, &original, now)
                .await?;
            rescaled_at = Some(now);
        }
        let desired = if decision.rescale {
            decision.desired
        } else {
            current
        };
        set_status(&mut hpa, (current, desired), decision.statuses, rescaled_at);
        self.update_status_if_needed(&original, &hpa).await?;
        decision
            .error
            .map_or(Ok(()), |e| Err(ReconcileError::InvalidMetrics(e)))
    }

    /// The target's scale; a failure is the FailedGetScale event and condition.
    async fn target(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        original: &Option<HorizontalPodAutoscalerStatus>,
        now: Timestamp,
    ) -> Result<Target, ReconcileError> {
        let reference = hpa.spec.clone().unwrap_or_default().scale_target_ref;
        let namespace = hpa.namespace().unwrap_or_default();
        let failure = match scale_target::mappings(&self.client, &reference).await {
            Ok(mappings) => {
                let found = scale_target::scale_for_mappings(
                    &self.client,
                    &namespace,
                    &reference.name,
                    mappings,
                );
                match found.await {
                    Ok(target) => return Ok(target),
                    Err(source) => {
                        let reference =
                            format!("{}/{}/{}", reference.kind, namespace, reference.name);
                        (
                            source.to_string(),
                            ReconcileError::GetScale { reference, source },
                        )
                    }
                }
            }
            Err(err @ TargetError::GroupVersion(_)) => {
                (err.to_string(), ReconcileError::InvalidApiVersion(err))
            }
            Err(err) => (err.to_string(), ReconcileError::NoMapping(err)),
        };
        let (message, error) = failure;
        self.events
            .record(hpa, Event::warning("FailedGetScale", message.clone()))
            .await;
        let condition = Condition::new(
            ABLE_TO_SCALE,
            "False",
            "FailedGetScale",
            format!("the HPA controller was unable to get the target's current scale: {message}"),
        );
        set_condition(hpa, condition, now);
        if let Err(err) = self.update_status_if_needed(original, hpa).await {
            tracing::info!(%err, "horizontal pod autoscaler controller");
        }
        Err(error)
    }
}

impl Context {
    /// The replicas to set: none while the target is scaled to zero, the bounds when it is
    /// outside them, else what the metrics ask for, normalized.
    async fn decide(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        target: &Target,
        current: i32,
        original: &Option<HorizontalPodAutoscalerStatus>,
        now: Timestamp,
    ) -> Result<Decision, ReconcileError> {
        let spec = hpa.spec.clone().unwrap_or_default();
        let (min, max) = (spec.min_replicas.unwrap_or(1), spec.max_replicas);
        let bounded = |desired, reason: &str| Decision {
            desired,
            rescale: true,
            reason: reason.to_owned(),
            statuses: Vec::new(),
            error: None,
        };
        if current == 0 && min != 0 {
            let disabled = Condition::new(
                SCALING_ACTIVE,
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            );
            set_condition(hpa, disabled, now);
            return Ok(Decision {
                rescale: false,
                ..bounded(0, "")
            });
        }
        if current > max {
            return Ok(bounded(
                max,
                "Current number of replicas above Spec.MaxReplicas",
            ));
        }
        if current < min {
            return Ok(bounded(
                min,
                "Current number of replicas below Spec.MinReplicas",
            ));
        }
        let bounds = Bounds {
            min_replicas: min,
            max_replicas: max,
            current_replicas: current,
            desired_replicas: 0,
        };
        self.decide_from_metrics(hpa, target, bounds, original, now)
            .await
    }

    /// What the metrics ask for, normalized; no count at all is the
    /// FailedComputeMetricsReplicas event, the status written, and an error.
    async fn decide_from_metrics(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        target: &Target,
        bounds: Bounds,
        original: &Option<HorizontalPodAutoscalerStatus>,
        now: Timestamp,
    ) -> Result<Decision, ReconcileError> {
        let current = bounds.current_replicas;
        let computed = match self
            .compute_replicas_for_metrics(hpa, &target.scale, now)
            .await
        {
            Ok(computed) => computed,
            Err(failed) => {
                set_current_replicas_and_metrics(hpa, current, failed.statuses);
                if let Err(err) = self.update_status_if_needed(original, hpa).await {
                    tracing::info!(%err, "horizontal pod autoscaler controller");
                }
                let event = Event::warning("FailedComputeMetricsReplicas", failed.message.clone());
                self.events.record(hpa, event).await;
                let reference = reference_of(hpa);
                return Err(ReconcileError::ComputeReplicas {
                    reference,
                    message: failed.message,
                });
            }
        };
        let desired = computed.replicas.max(0);
        let reason = match desired.cmp(&current) {
            std::cmp::Ordering::Greater => format!("{} above target", computed.metric),
            std::cmp::Ordering::Less => "All metrics below target".to_owned(),
            std::cmp::Ordering::Equal => String::new(),
        };
        let bounds = Bounds {
            desired_replicas: desired,
            ..bounds
        };
        let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.clone());
        let normalized = self.with_history(&key_of(hpa), |h| {
            h.normalize(behavior.as_ref(), bounds, now)
        });
        for (type_, verdict) in [
            (ABLE_TO_SCALE, normalized.able_to_scale),
            (SCALING_LIMITED, normalized.scaling_limited),
        ] {
            let condition = Condition::new(type_, verdict.status, verdict.reason, verdict.message);
            set_condition(hpa, condition, now);
        }
        Ok(Decision {
            desired: normalized.replicas,
            rescale: normalized.replicas != current,
            reason,
            statuses: computed.statuses,
            error: computed.error,
        })
    }

    /// Writes the target's scale; the SuccessfulRescale event and the scale event kept, or
    /// the FailedRescale event and FailedUpdateScale condition.
    async fn rescale(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        target: &Target,
        current: i32,
        decision: &Decision,
        original: &Option<HorizontalPodAutoscalerStatus>,
        now: Timestamp,
    ) -> Result<(), ReconcileError> {
        let (desired, reason) = (decision.desired, &decision.reason);
        let namespace = hpa.namespace().unwrap_or_default();
        let spec = hpa.spec.clone().unwrap_or_default();
        let name = spec.scale_target_ref.name;
        if let Err(source) =
            scale_target::update_scale(&self.client, target, (&namespace, &name), desired).await
        {
            let message = format!("New size: {desired}; reason: {reason}; error: {source}");
            self.events
                .record(hpa, Event::warning("FailedRescale", message))
                .await;
            let condition = Condition::new(
                ABLE_TO_SCALE,
                "False",
                "FailedUpdateScale",
                format!("the HPA controller was unable to update the target scale: {source}"),
            );
            set_condition(hpa, condition, now);
            set_current_replicas_and_metrics(hpa, current, decision.statuses.clone());
            if let Err(err) = self.update_status_if_needed(original, hpa).await {
                tracing::info!(%err, "horizontal pod autoscaler controller");
            }
            let reference = reference_of(hpa);
            return Err(ReconcileError::Rescale { reference, source });
        }
        let condition = Condition::new(
            ABLE_TO_SCALE,
            "True",
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        );
        set_condition(hpa, condition, now);
        let message = format!("New size: {desired}; reason: {reason}");
        self.events
            .record(hpa, Event::normal("SuccessfulRescale", message))
            .await;
        let behavior = spec.behavior;
        self.with_history(&key_of(hpa), |h| {
            h.store_scale_event(behavior.as_ref(), current, desired, now)
        });
        tracing::info!(hpa = %key_of(hpa), current, desired, %reason, "successfully rescaled");
        Ok(())
    }

    /// `updateStatusIfNeeded`: written only when it changed; a failure is an event too.
    async fn update_status_if_needed(
        &self,
        original: &Option<HorizontalPodAutoscalerStatus>,
        hpa: &HorizontalPodAutoscaler,
    ) -> Result<(), ReconcileError> {
        if original == &hpa.status {
            return Ok(());
        }
        let api = Api::<HorizontalPodAutoscaler>::namespaced(
            self.client.clone(),
            &hpa.namespace().unwrap_or_default(),
        );
        match api
            .replace_status(&hpa.name_any(), &PostParams::default(), hpa)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let message = error_message(&err);
                self.events
                    .record(hpa, Event::warning("FailedUpdateStatus", message.clone()))
                    .await;
                Err(ReconcileError::UpdateStatus {
                    name: hpa.name_any(),
                    message,
                })
            }
        }
    }
}

/// kube's `reference`: "Kind/namespace/name" of the target.
fn reference_of(hpa: &HorizontalPodAutoscaler) -> String {
    let spec = hpa.spec.clone().unwrap_or_default();
    let target = &spec.scale_target_ref;
    format!(
        "{}/{}/{}",
        target.kind,
        hpa.namespace().unwrap_or_default(),
        target.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_period_is_whole_seconds_from_one() {
        assert_eq!(sync_period(None), Ok(DEFAULT_SYNC_PERIOD));
        assert_eq!(sync_period(Some("1")), Ok(Duration::from_secs(1)));
        let err = sync_period(Some("0")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PEAPOD_HPA_SYNC_PERIOD: \"0\" is not a whole number of seconds from 1"
        );
        assert!(sync_period(Some("1.5")).is_err());
    }
}
