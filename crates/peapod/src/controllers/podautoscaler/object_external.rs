//! horizontal.go's `computeStatusForObjectMetric` and `computeStatusForExternalMetric`: an
//! object's metric (custom metrics API) or an external metric (external metrics API), either
//! as a value to compare with the target (scaled by the ready pods) or as a value per pod.

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricStatus, MetricIdentifier, MetricSpec, MetricStatus,
    MetricValueStatus, ObjectMetricStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use peapod_api::label_selector::to_selector_string;

use super::compute::{MetricProposal, Targets};
use super::controller::Context;
use super::metrics::{self, milli_quantity, milli_value, MetricsError};
use super::scale_target::{self, TargetError};

/// Go's `%+v` of a `*metav1.LabelSelector`, as kube's messages print it.
pub fn go_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "nil".to_owned();
    };
    let labels: String = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let expressions: String = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            let values = e.values.clone().unwrap_or_default().join(" ");
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{values}],}},",
                e.key, e.operator
            )
        })
        .collect();
    format!("&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}")
}

fn selector_text(selector: Option<&LabelSelector>) -> Result<String, String> {
    let text = selector.map(to_selector_string).transpose();
    Ok(text.map_err(|err| err.to_string())?.unwrap_or_default())
}

fn value_status(value: Option<i64>, average: Option<i64>) -> MetricValueStatus {
    MetricValueStatus {
        value: value.map(milli_quantity),
        average_value: average.map(milli_quantity),
        ..MetricValueStatus::default()
    }
}

impl Context {
    /// The object metric's proposal; errors as kube words them (before the outer wrap).
    pub(super) async fn object_metric(
        &self,
        spec: &MetricSpec,
        targets: &Targets<'_>,
    ) -> Result<MetricProposal, String> {
        let source = spec.object.clone().unwrap_or_default();
        let (name, object) = (source.metric.name.clone(), source.described_object.clone());
        let metric_selector = selector_text(source.metric.selector.as_ref())?;
        let fetch = async {
            let unable = |err: MetricsError| {
                format!(
                    "unable to get metric {name}: {} on {} {}/{err}",
                    object.kind, targets.namespace, object.name
                )
            };
            self.fetch_object_metric(&name, &object, targets, &metric_selector)
                .await
                .map_err(unable)
        };
        let identifier = MetricIdentifier {
            name: name.clone(),
            selector: source.metric.selector.clone(),
        };
        let status = |described_object: CrossVersionObjectReference, current| MetricStatus {
            type_: "Object".to_owned(),
            object: Some(ObjectMetricStatus {
                described_object,
                metric: identifier.clone(),
                current,
            }),
            ..MetricStatus::default()
        };
        if let (Some(target), "Value") =
            (source.target.value.as_ref(), source.target.type_.as_str())
        {
            let (usage, _) = fetch.await?;
            let ratio = usage as f64 / milli_value(target).unwrap_or_default() as f64;
            let ready = |err: String| format!("unable to calculate ready pods: {err}");
            let pods = self.pods(targets).await.map_err(ready)?;
            let replicas =
                self.calculator
                    .usage_ratio_replicas(targets.spec_replicas, ratio, &pods);
            let replicas = replicas.map_err(|err| err.to_string())?;
            let current = value_status(Some(usage), None);
            return Ok((
                replicas,
                format!("{} metric {name}", object.kind),
                status(object, current),
            ));
        }
        if let (Some(target), "AverageValue") = (
            source.target.average_value.as_ref(),
            source.target.type_.as_str(),
        ) {
            let (usage, _) = fetch
                .await
                .map_err(|err| format!("failed to get {name} object metric: {err}"))?;
            let per_pod = milli_value(target).unwrap_or_default();
            let (replicas, usage) =
                self.calculator
                    .per_pod_replicas(targets.status_replicas, usage, per_pod);
            let current = value_status(None, Some(usage));
            let metric = format!(
                "external metric {name}({})",
                go_selector(source.metric.selector.as_ref())
            );
            return Ok((
                replicas,
                metric,
                status(CrossVersionObjectReference::default(), current),
            ));
        }
        Err("invalid object metric source: neither a value target nor an average value target was set".to_owned())
    }

    async fn fetch_object_metric(
        &self,
        metric: &str,
        object: &CrossVersionObjectReference,
        targets: &Targets<'_>,
        metric_selector: &str,
    ) -> Result<(i64, Timestamp), MetricsError> {
        let api_version = object.api_version.as_deref().unwrap_or_default();
        let (group, _) = scale_target::parse_group_version(api_version).unwrap_or_default();
        if object.kind == "Namespace" && group.is_empty() {
            return metrics::object_metric(
                &self.client,
                metric,
                targets.namespace,
                None,
                metric_selector,
            )
            .await;
        }
        let unmapped = |err: TargetError| MetricsError::UnmappedKind {
            group_kind: match group.as_str() {
                "" => object.kind.clone(),
                group => format!("{}.{group}", object.kind),
            },
            reason: err.to_string(),
        };
        let mappings = scale_target::mappings(&self.client, object)
            .await
            .map_err(unmapped)?;
        let resource = (&mappings[0], object.name.as_str());
        metrics::object_metric(
            &self.client,
            metric,
            targets.namespace,
            Some(resource),
            metric_selector,
        )
        .await
    }

    /// The external metric's proposal; errors as kube words them (before the outer wrap).
    pub(super) async fn external_metric(
        &self,
        spec: &MetricSpec,
        targets: &Targets<'_>,
    ) -> Result<MetricProposal, String> {
        let source = spec.external.clone().unwrap_or_default();
        let name = source.metric.name.clone();
        let printed = go_selector(source.metric.selector.as_ref());
        let fetch = async {
            let selector = selector_text(source.metric.selector.as_ref())?;
            let fetched =
                metrics::external_metric(&self.client, &name, targets.namespace, &selector).await;
            let (values, _) = fetched.map_err(|err| {
                format!(
                    "unable to get external metric {}/{name}/{printed}: {err}",
                    targets.namespace
                )
            })?;
            Ok::<i64, String>(values.iter().sum())
        };
        let status = |current| MetricStatus {
            type_: "External".to_owned(),
            external: Some(ExternalMetricStatus {
                metric: MetricIdentifier {
                    name: name.clone(),
                    selector: source.metric.selector.clone(),
                },
                current,
            }),
            ..MetricStatus::default()
        };
        let metric = format!("external metric {name}({printed})");
        if let Some(target) = source.target.average_value.as_ref() {
            let usage = fetch
                .await
                .map_err(|err| format!("failed to get {name} external metric: {err}"))?;
            let per_pod = milli_value(target).unwrap_or_default();
            let (replicas, usage) =
                self.calculator
                    .per_pod_replicas(targets.status_replicas, usage, per_pod);
            return Ok((replicas, metric, status(value_status(None, Some(usage)))));
        }
        if let Some(target) = source.target.value.as_ref() {
            let wrap = |err: String| format!("failed to get external metric {name}: {err}");
            let usage = fetch.await.map_err(wrap)?;
            let ratio = usage as f64 / milli_value(target).unwrap_or_default() as f64;
            let ready = |err: String| wrap(format!("unable to calculate ready pods: {err}"));
            let pods = self.pods(targets).await.map_err(ready)?;
            let replicas =
                self.calculator
                    .usage_ratio_replicas(targets.spec_replicas, ratio, &pods);
            let replicas = replicas.map_err(|err| wrap(err.to_string()))?;
            return Ok((replicas, metric, status(value_status(Some(usage), None))));
        }
        Err("invalid external metric source: neither a value target nor an average value target was set".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    #[test]
    fn selectors_print_as_go_s_plus_v() {
        assert_eq!(go_selector(None), "nil");
        let selector = LabelSelector {
            match_labels: Some([("label".to_owned(), "value".to_owned())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert_eq!(
            go_selector(Some(&selector)),
            "&LabelSelector{MatchLabels:map[string]string{label: value,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:In,Values:[a b],},},}"
        );
    }
}
