//! horizontal.go's `computeReplicasForMetrics`: each metric of an HPA reckoned from the pods
//! its target's scale selects, the highest proposal kept; a metric that fails records its
//! event and ScalingActive condition, and when every metric fails (or a failure would let
//! the others scale down) nothing is scaled.

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, HorizontalPodAutoscaler, MetricIdentifier, MetricSpec,
    MetricStatus, MetricTarget, MetricValueStatus, PodsMetricStatus, ResourceMetricSource,
    ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::conditions::{Condition, SCALING_ACTIVE};
use super::controller::Context;
use super::metrics::{self, milli_quantity, milli_value};
use crate::controllers::api_errors::error_message;
use crate::controllers::events::Event;

/// The replicas the valid metrics ask for: the highest proposal, its metric, every metric's
/// status, and the first failure when some failed.
#[derive(Debug)]
pub struct Computed {
    pub replicas: i32,
    pub metric: String,
    pub statuses: Vec<MetricStatus>,
    pub error: Option<String>,
}

/// No replica count: the statuses so far and why.
#[derive(Debug)]
pub struct Failed {
    pub statuses: Vec<MetricStatus>,
    pub message: String,
}

/// A metric's replicas, its name for the rescale reason, and its status.
pub(super) type MetricProposal = (i32, String, MetricStatus);

/// One metric's proposal.
struct Proposal {
    replicas: i32,
    metric: String,
    status: MetricStatus,
}

/// One metric's failure: the ScalingActive condition it proposes and the error.
struct MetricFailure {
    condition: Condition,
    message: String,
}

/// The counts and pods one HPA's metrics are reckoned on.
pub(super) struct Targets<'a> {
    pub namespace: &'a str,
    pub selector: &'a str,
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub now: Timestamp,
}

/// An HPA's metrics, kube's default (80% cpu) when it names none.
fn metric_specs(hpa: &HorizontalPodAutoscaler) -> Vec<MetricSpec> {
    let specs = hpa
        .spec
        .as_ref()
        .and_then(|s| s.metrics.clone())
        .unwrap_or_default();
    if !specs.is_empty() {
        return specs;
    }
    vec![MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: "cpu".to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(80),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }]
}

impl Context {
    /// `computeReplicasForMetrics`.
    pub(super) async fn compute_replicas_for_metrics(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        scale: &Scale,
        now: Timestamp,
    ) -> Result<Computed, Failed> {
        let selector = self
            .validate_selector(hpa, scale, now)
            .await
            .map_err(|message| Failed {
                statuses: Vec::new(),
                message,
            })?;
        let namespace = hpa.namespace().unwrap_or_default();
        let targets = Targets {
            namespace: &namespace,
            selector: &selector,
            spec_replicas: scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            status_replicas: scale.status.as_ref().map_or(0, |s| s.replicas),
            now,
        };
        let specs = metric_specs(hpa);
        let mut statuses = vec![MetricStatus::default(); specs.len()];
        let (mut replicas, mut metric) = (0, String::new());
        let (mut invalid, mut first_failure) = (0, None);
        for (spec, status) in specs.iter().zip(statuses.iter_mut()) {
            match self.compute_replicas_for_metric(hpa, spec, &targets).await {
                Ok(proposal) => {
                    *status = proposal.status;
                    if replicas == 0 || proposal.replicas > replicas {
                        (replicas, metric) = (proposal.replicas, proposal.metric);
                    }
                }
                Err(failure) => {
                    invalid += 1;
                    first_failure.get_or_insert(failure);
                }
            }
        }
        let error = first_failure.as_ref().map(|f| {
            let total = specs.len();
            format!(
                "invalid metrics ({invalid} invalid out of {total}), first error is: {}",
                f.message
            )
        });
        if let Some(failure) = first_failure {
            if invalid >= specs.len() || replicas < targets.spec_replicas {
                super::controller::set_condition(hpa, failure.condition, now);
                let message = error.unwrap_or_default();
                return Err(Failed { statuses, message });
            }
        }
        let valid = Condition::new(
            SCALING_ACTIVE,
            "True",
            "ValidMetricFound",
            format!("the HPA was able to successfully calculate a replica count from {metric}"),
        );
        super::controller::set_condition(hpa, valid, now);
        Ok(Computed {
            replicas,
            metric,
            statuses,
            error,
        })
    }

    /// `computeReplicasForMetric`.
    async fn compute_replicas_for_metric(
        &self,
        hpa: &HorizontalPodAutoscaler,
        spec: &MetricSpec,
        targets: &Targets<'_>,
    ) -> Result<Proposal, MetricFailure> {
        let (reason, wrap, result) = match spec.type_.as_str() {
            "Resource" => {
                let name = spec.resource.as_ref().map(|r| r.name.clone());
                let wrap = format!(
                    "failed to get {} resource metric value",
                    name.unwrap_or_default()
                );
                let result = self.resource_source(spec, targets).await;
                ("FailedGetResourceMetric", wrap, result)
            }
            "ContainerResource" => {
                let source = spec.container_resource.as_ref();
                let container = source.map(|c| c.container.clone()).unwrap_or_default();
                let wrap = format!("failed to get {container} container metric value");
                let result = self.container_resource_source(spec, targets).await;
                ("FailedGetContainerResourceMetric", wrap, result)
            }
            "Pods" => {
                let result = self.pods_metric(spec, targets).await;
                (
                    "FailedGetPodsMetric",
                    "failed to get pods metric value".to_owned(),
                    result,
                )
            }
            "Object" => {
                let result = self.object_metric(spec, targets).await;
                let wrap = "failed to get object metric value".to_owned();
                ("FailedGetObjectMetric", wrap, result)
            }
            "External" => {
                let name = spec
                    .external
                    .as_ref()
                    .map(|e| e.metric.name.clone())
                    .unwrap_or_default();
                let result = self.external_metric(spec, targets).await;
                let wrap = format!("failed to get {name} external metric value");
                ("FailedGetExternalMetric", wrap, result)
            }
            other => {
                let message = format!("unknown metric source type {other:?}");
                let condition = self
                    .unable_to_compute(hpa, "InvalidMetricSourceType", &message)
                    .await;
                return Err(MetricFailure { condition, message });
            }
        };
        match result {
            Ok((replicas, metric, status)) => Ok(Proposal {
                replicas,
                metric,
                status,
            }),
            Err(err) => {
                let condition = self.unable_to_compute(hpa, reason, &err).await;
                Err(MetricFailure {
                    condition,
                    message: format!("{wrap}: {err}"),
                })
            }
        }
    }

    /// `computeStatusForResourceMetric`.
    async fn resource_source(
        &self,
        spec: &MetricSpec,
        targets: &Targets<'_>,
    ) -> Result<MetricProposal, String> {
        let source = spec.resource.clone().unwrap_or_default();
        let (replicas, current, metric) = self
            .resource_metric(&source.name, "", &source.target, targets)
            .await?;
        let status = MetricStatus {
            type_: "Resource".to_owned(),
            resource: Some(ResourceMetricStatus {
                name: source.name,
                current,
            }),
            ..MetricStatus::default()
        };
        Ok((replicas, metric, status))
    }

    /// `computeStatusForContainerResourceMetric`.
    async fn container_resource_source(
        &self,
        spec: &MetricSpec,
        targets: &Targets<'_>,
    ) -> Result<MetricProposal, String> {
        let source = spec.container_resource.clone().unwrap_or_default();
        let found = self
            .resource_metric(&source.name, &source.container, &source.target, targets)
            .await;
        let (replicas, current, metric) = found?;
        let status = MetricStatus {
            type_: "ContainerResource".to_owned(),
            container_resource: Some(ContainerResourceMetricStatus {
                name: source.name,
                container: source.container,
                current,
            }),
            ..MetricStatus::default()
        };
        Ok((replicas, metric, status))
    }

    /// `computeStatusForResourceMetricGeneric`: replicas, current value and metric name.
    async fn resource_metric(
        &self,
        resource: &str,
        container: &str,
        target: &MetricTarget,
        targets: &Targets<'_>,
    ) -> Result<(i32, MetricValueStatus, String), String> {
        if let Some(average) = target.average_value.as_ref() {
            let usage = |err: String| format!("failed to get {resource} usage: {err}");
            let (samples, pods) = self
                .samples(resource, container, targets)
                .await
                .map_err(usage)?;
            let target_usage = milli_value(average).unwrap_or_default();
            let (replicas, raw) = self
                .calculator
                .plain_metric_replicas(
                    targets.spec_replicas,
                    target_usage,
                    resource,
                    &pods,
                    samples,
                    targets.now,
                )
                .map_err(|err| usage(err.to_string()))?;
            let current = MetricValueStatus {
                average_value: Some(milli_quantity(raw)),
                ..MetricValueStatus::default()
            };
            return Ok((replicas, current, format!("{resource} resource")));
        }
        let Some(target_utilization) = target.average_utilization else {
            return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".to_owned());
        };
        let utilization = |err: String| format!("failed to get {resource} utilization: {err}");
        let (samples, pods) = self
            .samples(resource, container, targets)
            .await
            .map_err(utilization)?;
        let found = self
            .calculator
            .resource_replicas(
                targets.spec_replicas,
                target_utilization,
                (resource, container),
                &pods,
                samples,
                targets.now,
            )
            .map_err(|err| utilization(err.to_string()))?;
        let current = MetricValueStatus {
            average_utilization: Some(found.utilization),
            average_value: Some(milli_quantity(found.raw_utilization)),
            ..MetricValueStatus::default()
        };
        let metric = match container {
            "" => format!("{resource} resource utilization (percentage of request)"),
            _ => format!("{resource} container resource utilization (percentage of request)"),
        };
        Ok((found.replicas, current, metric))
    }

    /// The resource samples and the pods of the selector, as `GetResourceReplicas` reads them.
    async fn samples(
        &self,
        resource: &str,
        container: &str,
        targets: &Targets<'_>,
    ) -> Result<(super::utilization::PodMetricsInfo, Vec<Pod>), String> {
        let (samples, _) = metrics::resource_metric(
            &self.client,
            resource,
            targets.namespace,
            targets.selector,
            container,
        )
        .await
        .map_err(|err| format!("unable to get metrics for resource {resource}: {err}"))?;
        Ok((samples, self.pods(targets).await?))
    }

    pub(super) async fn pods(&self, targets: &Targets<'_>) -> Result<Vec<Pod>, String> {
        let api = Api::<Pod>::namespaced(self.client.clone(), targets.namespace);
        let params = ListParams::default().labels(targets.selector);
        match api.list(&params).await {
            Ok(list) => Ok(list.items),
            Err(err) => Err(format!(
                "unable to get pods while calculating replica count: {}",
                error_message(&err)
            )),
        }
    }

    /// `computeStatusForPodsMetric`: a pod metric of the custom metrics API.
    async fn pods_metric(
        &self,
        spec: &MetricSpec,
        targets: &Targets<'_>,
    ) -> Result<MetricProposal, String> {
        let source = spec.pods.clone().unwrap_or_default();
        let name = source.metric.name.clone();
        let metric_selector = source
            .metric
            .selector
            .as_ref()
            .map(peapod_api::label_selector::to_selector_string);
        let metric_selector = metric_selector
            .transpose()
            .map_err(|err| err.to_string())?
            .unwrap_or_default();
        let (samples, _) = metrics::raw_metric(
            &self.client,
            &name,
            targets.namespace,
            targets.selector,
            &metric_selector,
        )
        .await
        .map_err(|err| format!("unable to get metric {name}: {err}"))?;
        let pods = self.pods(targets).await?;
        let target_usage = source
            .target
            .average_value
            .as_ref()
            .and_then(milli_value)
            .unwrap_or_default();
        let (replicas, usage) = self
            .calculator
            .plain_metric_replicas(
                targets.spec_replicas,
                target_usage,
                "",
                &pods,
                samples,
                targets.now,
            )
            .map_err(|err| err.to_string())?;
        let status = MetricStatus {
            type_: "Pods".to_owned(),
            pods: Some(PodsMetricStatus {
                metric: MetricIdentifier {
                    name: name.clone(),
                    selector: source.metric.selector,
                },
                current: MetricValueStatus {
                    average_value: Some(milli_quantity(usage)),
                    ..MetricValueStatus::default()
                },
            }),
            ..MetricStatus::default()
        };
        Ok((replicas, format!("pods metric {name}"), status))
    }

    /// `getUnableComputeReplicaCountCondition`: a warning event and the condition.
    async fn unable_to_compute(
        &self,
        hpa: &HorizontalPodAutoscaler,
        reason: &'static str,
        err: &str,
    ) -> Condition {
        self.events
            .record(hpa, Event::warning(reason, err.to_owned()))
            .await;
        Condition::new(
            SCALING_ACTIVE,
            "False",
            reason,
            format!("the HPA was unable to compute the replica count: {err}"),
        )
    }
}
