//! How far the pods' metrics are from their target, as kube's metrics/utilization.go reckons
//! it: a resource as a percentage of the pods' requests, a plain metric as its average.

use std::collections::BTreeMap;

use jiff::Timestamp;

/// One pod's sample (`PodMetric`): when it was taken, over how long, and its value in
/// milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodMetric {
    pub timestamp: Timestamp,
    pub window: std::time::Duration,
    pub value: i64,
}

/// The pods' samples by pod name (`PodMetricsInfo`).
pub type PodMetricsInfo = BTreeMap<String, PodMetric>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UtilizationError {
    #[error("no metrics returned matched known pods")]
    NoMatchingPods,
}

/// What `GetResourceUtilizationRatio` returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceUtilization {
    /// Utilization over target.
    pub ratio: f64,
    /// The pods' usage as a percentage of their requests.
    pub utilization: i32,
    /// The average usage of the pods counted, in milli-units.
    pub raw_average: i64,
}

/// `GetResourceUtilizationRatio`: metrics of pods without a known request are ignored.
pub fn resource_utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<ResourceUtilization, UtilizationError> {
    let (mut metrics_total, mut requests_total, mut entries) = (0i64, 0i64, 0i64);
    for (pod, metric) in metrics {
        let Some(request) = requests.get(pod) else {
            continue;
        };
        metrics_total += metric.value;
        requests_total += request;
        entries += 1;
    }
    if requests_total == 0 {
        return Err(UtilizationError::NoMatchingPods);
    }
    let utilization = ((metrics_total * 100) / requests_total) as i32;
    Ok(ResourceUtilization {
        ratio: f64::from(utilization) / f64::from(target_utilization),
        utilization,
        raw_average: metrics_total / entries,
    })
}

/// `GetMetricUsageRatio`: the average usage over the target, and the average usage.
pub fn metric_usage_ratio(metrics: &PodMetricsInfo, target_usage: i64) -> (f64, i64) {
    let total: i64 = metrics.values().map(|m| m.value).sum();
    let average = total / (metrics.len().max(1) as i64);
    (average as f64 / target_usage as f64, average)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[(&str, i64)]) -> PodMetricsInfo {
        values
            .iter()
            .map(|(pod, value)| {
                let metric = PodMetric {
                    timestamp: Timestamp::UNIX_EPOCH,
                    window: std::time::Duration::from_secs(60),
                    value: *value,
                };
                ((*pod).to_owned(), metric)
            })
            .collect()
    }

    /// kube's `TestGetResourceUtilizationRatioBaseCase` and its disjoint-requests case.
    #[test]
    fn utilization_is_usage_over_requests_of_the_pods_with_both() {
        let metrics = samples(&[("test-pod-0", 5000), ("test-pod-1", 10000)]);
        let requests = [
            ("test-pod-0".to_owned(), 1000),
            ("test-pod-1".to_owned(), 2000),
        ];
        let found = resource_utilization_ratio(&metrics, &requests.into(), 50).unwrap();
        assert_eq!(found.utilization, 500);
        assert_eq!(found.raw_average, 7500);
        assert!((found.ratio - 10.0).abs() < 1e-9);
        let other = [("an-older-pod".to_owned(), 1000)];
        let err = resource_utilization_ratio(&metrics, &other.into(), 50).unwrap_err();
        assert_eq!(err.to_string(), "no metrics returned matched known pods");
    }

    #[test]
    fn usage_is_the_average_over_the_target() {
        let metrics = samples(&[("a", 20000), ("b", 10000), ("c", 30000)]);
        let (ratio, average) = metric_usage_ratio(&metrics, 15000);
        assert_eq!(average, 20000);
        assert!((ratio - 4.0 / 3.0).abs() < 1e-9);
    }
}
