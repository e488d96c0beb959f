//! The HPA's metrics client, as kube's metrics/client.go: pod resource usage from the
//! resource metrics API (metrics.k8s.io, summed over a pod's containers or one container's),
//! pod metrics from the custom metrics API, each sample kept with its time and window.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::ApiResource;
use kube::Client;
use serde::Deserialize;

use super::utilization::{PodMetric, PodMetricsInfo};
use crate::controllers::api_errors::error_message;

/// `metricServerDefaultMetricWindow`: a custom metric's window when it names none.
const DEFAULT_METRIC_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("unable to fetch metrics from resource metrics API: {0}")]
    ResourceFetch(String),
    #[error("no metrics returned from resource metrics API")]
    NoResourceMetrics,
    #[error("failed to get container metrics: container {container} not present in metrics for pod {namespace}/{pod}")]
    NoContainer {
        container: String,
        namespace: String,
        pod: String,
    },
    #[error("unable to fetch metrics from custom metrics API: {0}")]
    CustomFetch(String),
    #[error("no metrics returned from custom metrics API")]
    NoCustomMetrics,
    #[error("unable to fetch metrics from custom metrics API: unable to map kind {group_kind} to resource: {reason}")]
    UnmappedKind { group_kind: String, reason: String },
    #[error("unable to fetch metrics from custom metrics API: the custom metrics API server returned {0} results when we asked for exactly one")]
    NotOneObjectMetric(usize),
    #[error("unable to fetch metrics from external metrics API: {0}")]
    ExternalFetch(String),
    #[error("no metrics returned from external metrics API")]
    NoExternalMetrics,
}

/// A `PodMetrics` of metrics.k8s.io/v1beta1.
#[derive(Debug, Clone, Deserialize)]
pub struct PodMetrics {
    pub metadata: ObjectMeta,
    pub timestamp: Time,
    pub window: String,
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContainerMetrics {
    pub name: String,
    pub usage: BTreeMap<String, Quantity>,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    items: Vec<T>,
}

/// A `MetricValue` of custom.metrics.k8s.io/v1beta2.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricValue {
    described_object: DescribedObject,
    timestamp: Time,
    window_seconds: Option<i64>,
    value: Quantity,
}

#[derive(Debug, Clone, Deserialize)]
struct DescribedObject {
    name: String,
}

/// An `ExternalMetricValue` of external.metrics.k8s.io/v1beta1.
#[derive(Debug, Clone, Deserialize)]
struct ExternalMetricValue {
    timestamp: Time,
    value: Quantity,
}

/// The samples of the pods a selector picks, and the first one's time.
pub type Samples = (PodMetricsInfo, Timestamp);

/// `GetResourceMetric`: the pods' usage of `resource`, `container`'s alone unless empty.
pub async fn resource_metric(
    client: &Client,
    resource: &str,
    namespace: &str,
    selector: &str,
    container: &str,
) -> Result<Samples, MetricsError> {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods");
    let list: List<PodMetrics> = get(client, &path, &[("labelSelector", selector)])
        .await
        .map_err(|err| MetricsError::ResourceFetch(error_message(&err)))?;
    resource_samples(&list.items, resource, container)
}

/// The samples of a resource metrics list, as `getPodMetrics` / `getContainerMetrics`.
pub fn resource_samples(
    items: &[PodMetrics],
    resource: &str,
    container: &str,
) -> Result<Samples, MetricsError> {
    let first = items.first().ok_or(MetricsError::NoResourceMetrics)?;
    let mut samples = PodMetricsInfo::new();
    for item in items {
        let value = if container.is_empty() {
            pod_usage(item, resource)
        } else {
            container_usage(item, resource, container)?
        };
        if let Some(value) = value {
            let metric = PodMetric {
                timestamp: item.timestamp.0,
                window: window_of(&item.window),
                value,
            };
            samples.insert(item.metadata.name.clone().unwrap_or_default(), metric);
        }
    }
    Ok((samples, first.timestamp.0))
}

/// A pod's usage summed over its containers; none if any container lacks it.
fn pod_usage(item: &PodMetrics, resource: &str) -> Option<i64> {
    if item.containers.is_empty() {
        return None;
    }
    let mut sum = 0;
    for container in &item.containers {
        let Some(value) = container.usage.get(resource).and_then(milli_value) else {
            tracing::debug!(pod = ?item.metadata.name, resource, "missing resource metric");
            return None;
        };
        sum += value;
    }
    Some(sum)
}

fn container_usage(
    item: &PodMetrics,
    resource: &str,
    container: &str,
) -> Result<Option<i64>, MetricsError> {
    let found = item.containers.iter().find(|c| c.name == container);
    let found = found.ok_or_else(|| MetricsError::NoContainer {
        container: container.to_owned(),
        namespace: item.metadata.namespace.clone().unwrap_or_default(),
        pod: item.metadata.name.clone().unwrap_or_default(),
    })?;
    Ok(found.usage.get(resource).and_then(milli_value))
}

/// `GetRawMetric`: a pod metric of the custom metrics API for the pods a selector picks.
pub async fn raw_metric(
    client: &Client,
    metric: &str,
    namespace: &str,
    selector: &str,
    metric_selector: &str,
) -> Result<Samples, MetricsError> {
    let path =
        format!("/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/*/{metric}");
    let mut query = vec![("labelSelector", selector)];
    if !metric_selector.is_empty() {
        query.push(("metricLabelSelector", metric_selector));
    }
    let list: List<MetricValue> = get(client, &path, &query)
        .await
        .map_err(|err| MetricsError::CustomFetch(error_message(&err)))?;
    let first = list.items.first().ok_or(MetricsError::NoCustomMetrics)?;
    let timestamp = first.timestamp.0;
    let samples = list
        .items
        .iter()
        .map(|m| {
            let window = m.window_seconds.map_or(DEFAULT_METRIC_WINDOW, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or_default())
            });
            let metric = PodMetric {
                timestamp: m.timestamp.0,
                window,
                value: milli_value(&m.value).unwrap_or_default(),
            };
            (m.described_object.name.clone(), metric)
        })
        .collect();
    Ok((samples, timestamp))
}

/// `GetObjectMetric`: one object's metric of the custom metrics API, `resource` the
/// object's (plural) resource and group, or `None` for the namespace itself.
pub async fn object_metric(
    client: &Client,
    metric: &str,
    namespace: &str,
    object: Option<(&ApiResource, &str)>,
    metric_selector: &str,
) -> Result<(i64, Timestamp), MetricsError> {
    let base = "/apis/custom.metrics.k8s.io/v1beta2/namespaces";
    let path = match object {
        None => format!("{base}/{namespace}/metrics/{metric}"),
        Some((resource, name)) => {
            let plural = match resource.group.as_str() {
                "" => resource.plural.clone(),
                group => format!("{}.{group}", resource.plural),
            };
            format!("{base}/{namespace}/{plural}/{name}/{metric}")
        }
    };
    let query: Vec<(&str, &str)> = match metric_selector {
        "" => Vec::new(),
        selector => vec![("metricLabelSelector", selector)],
    };
    let list: List<MetricValue> = get(client, &path, &query)
        .await
        .map_err(|err| MetricsError::CustomFetch(error_message(&err)))?;
    match &list.items[..] {
        [one] => Ok((milli_value(&one.value).unwrap_or_default(), one.timestamp.0)),
        items => Err(MetricsError::NotOneObjectMetric(items.len())),
    }
}

/// `GetExternalMetric`: every value of an external metric the selector picks.
pub async fn external_metric(
    client: &Client,
    metric: &str,
    namespace: &str,
    selector: &str,
) -> Result<(Vec<i64>, Timestamp), MetricsError> {
    let path = format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}");
    let list: List<ExternalMetricValue> = get(client, &path, &[("labelSelector", selector)])
        .await
        .map_err(|err| MetricsError::ExternalFetch(error_message(&err)))?;
    let first = list.items.first().ok_or(MetricsError::NoExternalMetrics)?;
    let timestamp = first.timestamp.0;
    let values = list
        .items
        .iter()
        .map(|m| milli_value(&m.value).unwrap_or_default());
    Ok((values.collect(), timestamp))
}

async fn get<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    query: &[(&str, &str)],
) -> Result<T, kube::Error> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let request = axum::http::Request::get(format!("{path}?{query}"))
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request(request).await
}

/// `resource.NewMilliQuantity(value, DecimalSI)` as its canonical text ("500m", "2", "3k").
pub fn milli_quantity(value: i64) -> Quantity {
    const SUFFIXES: [&str; 8] = ["m", "", "k", "M", "G", "T", "P", "E"];
    if value == 0 {
        return Quantity("0".to_owned());
    }
    let (mut mantissa, mut step) = (value, 0);
    while step + 1 < SUFFIXES.len() && mantissa % 1000 == 0 {
        mantissa /= 1000;
        step += 1;
    }
    Quantity(format!("{mantissa}{}", SUFFIXES[step]))
}

/// A quantity's `MilliValue`.
pub fn milli_value(quantity: &Quantity) -> Option<i64> {
    let parsed = peapod_api::quantity::Quantity::from_str(&quantity.0).ok()?;
    i64::try_from(parsed.milli_value()?).ok()
}

fn window_of(text: &str) -> Duration {
    peapod_apis::batch::v1::cronjob::schedule::parse_go_duration(text)
        .unwrap_or(DEFAULT_METRIC_WINDOW)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items(pods: serde_json::Value) -> Vec<PodMetrics> {
        serde_json::from_value(pods).unwrap()
    }

    fn pod(name: &str, containers: serde_json::Value) -> serde_json::Value {
        json!({
            "metadata": {"name": name, "namespace": "ns"},
            "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
            "containers": containers,
        })
    }

    /// kube's `TestRESTClientCPU`-like cases: containers summed, a pod lacking the resource
    /// in any container left out, one container picked by name.
    #[test]
    fn usage_is_summed_per_pod_or_taken_per_container() {
        let list = items(json!([
            pod(
                "a",
                json!([
                    {"name": "c1", "usage": {"cpu": "300m", "memory": "1Mi"}},
                    {"name": "c2", "usage": {"cpu": "200m", "memory": "1Mi"}},
                ])
            ),
            pod("b", json!([{"name": "c1", "usage": {"memory": "1Mi"}}])),
            pod("c", json!([])),
        ]));
        let (samples, timestamp) = resource_samples(&list, "cpu", "").unwrap();
        assert_eq!(samples.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(samples["a"].value, 500);
        assert_eq!(samples["a"].window, Duration::from_secs(30));
        assert_eq!(timestamp, "2026-01-01T00:00:00Z".parse().unwrap());
        let (memory, _) = resource_samples(&list[..1], "memory", "c2").unwrap();
        assert_eq!(memory["a"].value, 1048576000);
        let err = resource_samples(&list, "cpu", "c2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to get container metrics: container c2 not present in metrics for pod ns/b"
        );
        let texts: Vec<String> = [500, 1000, 1500, 3_000_000, 0, -2000]
            .into_iter()
            .map(|v| milli_quantity(v).0)
            .collect();
        assert_eq!(texts, ["500m", "1", "1500m", "3k", "0", "-2"]);
        let err = resource_samples(&[], "cpu", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no metrics returned from resource metrics API"
        );
    }
}
