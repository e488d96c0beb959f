//! kube's ReplicaCalculator (replica_calculator.go) for pod metrics: the replica count a
//! target asks for, given the pods the target's selector picks and their samples. Pods being
//! deleted or failed are ignored; pending pods, and for cpu pods still warming up, count as
//! unready (zero usage, and only on a scale up); pods without a sample count as using all of
//! their request on a scale down and nothing on a scale up; no change within the tolerance.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, Pod};
use peapod_api::quantity::Quantity;

use super::utilization::{
    metric_usage_ratio, resource_utilization_ratio, PodMetric, PodMetricsInfo, UtilizationError,
};

/// `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-cpu-initialization-period`.
pub const CPU_INITIALIZATION_PERIOD: Duration = Duration::from_secs(5 * 60);
/// `--horizontal-pod-autoscaler-initial-readiness-delay`.
pub const DELAY_OF_INITIAL_READINESS_STATUS: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalculationError {
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    #[error("unable to calculate ready pods: no pods returned by selector while calculating replica count")]
    NoReadyPods,
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        resource: String,
        container: String,
        pod: String,
    },
    #[error(transparent)]
    Utilization(#[from] UtilizationError),
}

/// What `GetResourceReplicas` finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceReplicas {
    pub replicas: i32,
    /// Percent of the pods' requests.
    pub utilization: i32,
    /// Average usage in milli-units.
    pub raw_utilization: i64,
}

/// The calculator's settings, kube's flags.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaCalculator {
    pub tolerance: f64,
    pub cpu_initialization_period: Duration,
    pub delay_of_initial_readiness_status: Duration,
}

impl Default for ReplicaCalculator {
    fn default() -> Self {
        ReplicaCalculator {
            tolerance: TOLERANCE,
            cpu_initialization_period: CPU_INITIALIZATION_PERIOD,
            delay_of_initial_readiness_status: DELAY_OF_INITIAL_READINESS_STATUS,
        }
    }
}

/// The selected pods sorted as `groupPods` does.
#[derive(Debug, Default)]
struct PodGroups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

/// How a sample set is to be corrected before the second reckoning.
struct Fill {
    /// A missing pod's value on a scale down, by pod.
    missing_on_scale_down: BTreeMap<String, i64>,
}

impl ReplicaCalculator {
    /// `GetResourceReplicas` on `metrics` (from the resource metrics API) and `pods` (the
    /// scale's selector), of `resource` in `container` (empty for the whole pod).
    pub fn resource_replicas(
        &self,
        current_replicas: i32,
        target_utilization: i32,
        (resource, container): (&str, &str),
        pods: &[Pod],
        mut metrics: PodMetricsInfo,
        now: Timestamp,
    ) -> Result<ResourceReplicas, CalculationError> {
        if pods.is_empty() {
            return Err(CalculationError::NoPods);
        }
        let groups = self.group_pods(pods, &metrics, resource, now);
        remove_metrics_for(&mut metrics, &groups.ignored);
        remove_metrics_for(&mut metrics, &groups.unready);
        if metrics.is_empty() {
            return Err(CalculationError::NoMetrics);
        }
        let requests = pod_requests(pods, container, resource)?;
        let first = resource_utilization_ratio(&metrics, &requests, target_utilization)?;
        let fallback = i64::from(target_utilization.max(100));
        let fill = Fill {
            missing_on_scale_down: requests
                .iter()
                .map(|(pod, request)| (pod.clone(), request * fallback / 100))
                .collect(),
        };
        let replicas =
            self.corrected(current_replicas, first.ratio, &groups, metrics, fill, |m| {
                resource_utilization_ratio(m, &requests, target_utilization).map(|u| u.ratio)
            })?;
        Ok(ResourceReplicas {
            replicas,
            utilization: first.utilization,
            raw_utilization: first.raw_average,
        })
    }

    /// `calcPlainMetricReplicas`: `GetRawResourceReplicas` (`resource` named) and
    /// `GetMetricReplicas` (`resource` empty) on an average-value target.
    pub fn plain_metric_replicas(
        &self,
        current_replicas: i32,
        target_usage: i64,
        resource: &str,
        pods: &[Pod],
        mut metrics: PodMetricsInfo,
        now: Timestamp,
    ) -> Result<(i32, i64), CalculationError> {
        if pods.is_empty() {
            return Err(CalculationError::NoPods);
        }
        let groups = self.group_pods(pods, &metrics, resource, now);
        remove_metrics_for(&mut metrics, &groups.ignored);
        remove_metrics_for(&mut metrics, &groups.unready);
        if metrics.is_empty() {
            return Err(CalculationError::NoMetrics);
        }
        let (ratio, usage) = metric_usage_ratio(&metrics, target_usage);
        let fill = Fill {
            missing_on_scale_down: groups
                .missing
                .iter()
                .map(|pod| (pod.clone(), target_usage))
                .collect(),
        };
        let replicas = self.corrected(current_replicas, ratio, &groups, metrics, fill, |m| {
            Ok(metric_usage_ratio(m, target_usage).0)
        })?;
        Ok((replicas, usage))
    }

    /// `getUsageRatioReplicaCount`: the ready pods times the ratio, outside the tolerance;
    /// from zero replicas the ratio alone.
    pub fn usage_ratio_replicas(
        &self,
        current_replicas: i32,
        usage_ratio: f64,
        pods: &[Pod],
    ) -> Result<i32, CalculationError> {
        if current_replicas == 0 {
            return Ok(usage_ratio.ceil() as i32);
        }
        if (1.0 - usage_ratio).abs() <= self.tolerance {
            return Ok(current_replicas);
        }
        if pods.is_empty() {
            return Err(CalculationError::NoReadyPods);
        }
        let ready = pods.iter().filter(|p| running_and_ready(p)).count();
        Ok((usage_ratio * ready as f64).ceil() as i32)
    }

    /// `GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas`: `usage` over
    /// the per-pod target, outside the tolerance; and the usage per replica.
    pub fn per_pod_replicas(
        &self,
        status_replicas: i32,
        usage: i64,
        target_per_pod: i64,
    ) -> (i32, i64) {
        let (usage, target) = (usage as f64, target_per_pod as f64);
        let ratio = usage / (target * f64::from(status_replicas));
        let replicas = match (1.0 - ratio).abs() > self.tolerance {
            true => (usage / target).ceil() as i32,
            false => status_replicas,
        };
        (replicas, (usage / f64::from(status_replicas)).ceil() as i64)
    }

    /// The shared tail of both reckonings: at once when every pod reported and none is
    /// unready on a scale up, else again with the gaps filled toward the smaller change.
    fn corrected(
        &self,
        current_replicas: i32,
        usage_ratio: f64,
        groups: &PodGroups,
        mut metrics: PodMetricsInfo,
        fill: Fill,
        ratio_of: impl Fn(&PodMetricsInfo) -> Result<f64, UtilizationError>,
    ) -> Result<i32, CalculationError> {
        let scale_up_with_unready = !groups.unready.is_empty() && usage_ratio > 1.0;
        if !scale_up_with_unready && groups.missing.is_empty() {
            if (1.0 - usage_ratio).abs() <= self.tolerance {
                return Ok(current_replicas);
            }
            return Ok((usage_ratio * groups.ready as f64).ceil() as i32);
        }
        let filler = PodMetric {
            timestamp: Timestamp::UNIX_EPOCH,
            window: Duration::ZERO,
            value: 0,
        };
        for pod in &groups.missing {
            let value = match usage_ratio {
                r if r < 1.0 => fill.missing_on_scale_down.get(pod).copied().unwrap_or(0),
                r if r > 1.0 => 0,
                _ => continue,
            };
            metrics.insert(pod.clone(), PodMetric { value, ..filler });
        }
        if scale_up_with_unready {
            for pod in &groups.unready {
                metrics.insert(pod.clone(), filler);
            }
        }
        let new_ratio = ratio_of(&metrics)?;
        let flips =
            (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0);
        if (1.0 - new_ratio).abs() <= self.tolerance || flips {
            return Ok(current_replicas);
        }
        let new_replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
        if (new_ratio < 1.0 && new_replicas > current_replicas)
            || (new_ratio > 1.0 && new_replicas < current_replicas)
        {
            return Ok(current_replicas);
        }
        Ok(new_replicas)
    }

    /// `groupPods`.
    fn group_pods(
        &self,
        pods: &[Pod],
        metrics: &PodMetricsInfo,
        resource: &str,
        now: Timestamp,
    ) -> PodGroups {
        let mut groups = PodGroups::default();
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if pod.metadata.deletion_timestamp.is_some() || phase == Some("Failed") {
                groups.ignored.insert(name);
            } else if phase == Some("Pending") {
                groups.unready.insert(name);
            } else if let Some(metric) = metrics.get(&name) {
                if resource == "cpu" && self.cpu_unready(pod, metric, now) {
                    groups.unready.insert(name);
                } else {
                    groups.ready += 1;
                }
            } else {
                groups.missing.insert(name);
            }
        }
        groups
    }

    /// A cpu sample not to trust: the pod is not ready yet, or was ready for less than a
    /// window of the sample within its initialization period, or never was ready.
    fn cpu_unready(&self, pod: &Pod, metric: &PodMetric, now: Timestamp) -> bool {
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        let started = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
        let (Some(ready), Some(started)) = (ready, started) else {
            return true;
        };
        let transition = ready
            .last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
        let span = |d: Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        if started + span(self.cpu_initialization_period) > now {
            ready.status == "False" || metric.timestamp < transition + span(metric.window)
        } else {
            ready.status == "False"
                && started + span(self.delay_of_initial_readiness_status) > transition
        }
    }
}

/// Running with the Ready condition True.
fn running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let conditions = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten();
    running
        && conditions
            .into_iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn remove_metrics_for(metrics: &mut PodMetricsInfo, pods: &BTreeSet<String>) {
    metrics.retain(|pod, _| !pods.contains(pod));
}

/// `calculatePodRequests`: each pod's request in milli-units, summed over its containers
/// (and restartable init containers) or taken from `container` alone.
fn pod_requests(
    pods: &[Pod],
    container: &str,
    resource: &str,
) -> Result<BTreeMap<String, i64>, CalculationError> {
    let mut requests = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let regular = spec.map(|s| s.containers.iter()).into_iter().flatten();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let mut sum = 0i64;
        for c in regular.chain(sidecars) {
            if container.is_empty() || container == c.name {
                sum += container_request(c, resource).ok_or_else(|| {
                    CalculationError::MissingRequest {
                        resource: resource.to_owned(),
                        container: c.name.clone(),
                        pod: name.clone(),
                    }
                })?;
            }
        }
        requests.insert(name, sum);
    }
    Ok(requests)
}

fn container_request(container: &Container, resource: &str) -> Option<i64> {
    let requests = container.resources.as_ref()?.requests.as_ref()?;
    let quantity = Quantity::from_str(&requests.get(resource)?.0).ok()?;
    i64::try_from(quantity.milli_value()?).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: &str = "2026-01-01T01:00:00Z";
    /// Started before the cpu initialization period: its samples count.
    const COOL: &str = "2026-01-01T00:50:00Z";
    /// Started within the period and ready for less than a window.
    const HOT: &str = "2026-01-01T00:59:30Z";

    struct PodCase {
        ready: bool,
        phase: &'static str,
        started: &'static str,
        deleting: bool,
        request: &'static str,
    }

    const RUNNING: PodCase = PodCase {
        ready: true,
        phase: "Running",
        started: COOL,
        deleting: false,
        request: "1",
    };

    fn pod(index: usize, case: &PodCase) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("test-pod-{index}"), "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": case.request}}}]},
            "status": {
                "phase": case.phase,
                "startTime": case.started,
                "conditions": [{
                    "type": "Ready",
                    "status": if case.ready { "True" } else { "False" },
                    "lastTransitionTime": case.started,
                }],
            },
        }))
        .unwrap();
        if case.deleting {
            pod.metadata.deletion_timestamp = Some(serde_json::from_value(json!(NOW)).unwrap());
        }
        pod
    }

    fn pods(cases: &[PodCase]) -> Vec<Pod> {
        cases.iter().enumerate().map(|(i, c)| pod(i, c)).collect()
    }

    fn running(count: usize) -> Vec<Pod> {
        (0..count).map(|i| pod(i, &RUNNING)).collect()
    }

    fn levels(values: &[i64]) -> PodMetricsInfo {
        let metric = |value| PodMetric {
            timestamp: NOW.parse().unwrap(),
            window: Duration::from_secs(60),
            value,
        };
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("test-pod-{i}"), metric(*v)))
            .collect()
    }

    fn cpu(current: i32, target: i32, pods: &[Pod], values: &[i64]) -> ResourceReplicas {
        let calculator = ReplicaCalculator::default();
        let now = NOW.parse().unwrap();
        calculator
            .resource_replicas(current, target, ("cpu", ""), pods, levels(values), now)
            .unwrap()
    }

    fn found(replicas: i32, utilization: i32, raw_utilization: i64) -> ResourceReplicas {
        ResourceReplicas {
            replicas,
            utilization,
            raw_utilization,
        }
    }

    #[test]
    fn scale_up_and_down_follow_the_utilization() {
        assert_eq!(cpu(3, 30, &running(3), &[300, 500, 700]), found(5, 50, 500));
        let five = running(5);
        assert_eq!(
            cpu(5, 50, &five, &[100, 300, 500, 250, 250]),
            found(3, 28, 280)
        );
    }

    #[test]
    fn a_change_within_the_tolerance_keeps_the_replicas() {
        let cases: Vec<PodCase> = ["900m", "1", "1100m"]
            .into_iter()
            .map(|request| PodCase { request, ..RUNNING })
            .collect();
        assert_eq!(
            cpu(3, 100, &pods(&cases), &[1010, 1030, 1020]),
            found(3, 102, 1020)
        );
    }

    #[test]
    fn unready_pods_count_as_idle_on_a_scale_up_only() {
        let unready = PodCase {
            ready: false,
            ..RUNNING
        };
        let less = pods(&[unready, RUNNING, RUNNING]);
        assert_eq!(cpu(3, 30, &less, &[300, 500, 700]), found(4, 60, 600));
        let unready = || PodCase {
            ready: false,
            ..RUNNING
        };
        let none = pods(&[RUNNING, unready(), unready()]);
        assert_eq!(cpu(3, 30, &none, &[400, 500, 700]), found(3, 40, 400));
        let hot = PodCase {
            started: HOT,
            ..RUNNING
        };
        let warming = pods(&[hot, RUNNING, RUNNING]);
        assert_eq!(cpu(3, 30, &warming, &[300, 500, 700]), found(4, 60, 600));
        let down = pods(&[RUNNING, RUNNING, RUNNING, unready(), unready()]);
        let values = [100, 300, 500, 250, 250];
        assert_eq!(cpu(5, 50, &down, &values), found(2, 30, 300));
    }

    #[test]
    fn deleted_failed_and_pending_pods_are_left_out() {
        let deleting = || PodCase {
            ready: false,
            deleting: true,
            ..RUNNING
        };
        let up = pods(&[RUNNING, RUNNING, deleting(), deleting()]);
        assert_eq!(cpu(2, 30, &up, &[500, 700]), found(4, 60, 600));
        let failed = || PodCase {
            ready: false,
            phase: "Failed",
            ..RUNNING
        };
        let down = pods(&[
            RUNNING,
            RUNNING,
            RUNNING,
            RUNNING,
            RUNNING,
            failed(),
            failed(),
        ]);
        let values = [100, 300, 500, 250, 250];
        assert_eq!(cpu(5, 50, &down, &values), found(3, 28, 280));
        let pending = || PodCase {
            ready: false,
            phase: "Pending",
            ..RUNNING
        };
        let unscheduled = pods(&[RUNNING, pending(), pending(), pending(), pending()]);
        assert_eq!(cpu(5, 50, &unscheduled, &[100]), found(1, 10, 100));
    }

    #[test]
    fn missing_samples_damp_the_change() {
        assert_eq!(cpu(4, 50, &running(4), &[100, 100, 100]), found(3, 10, 100));
        assert_eq!(cpu(2, 100, &running(2), &[2000]), found(2, 200, 2000));
    }

    #[test]
    fn plain_metrics_average_over_the_pods() {
        let calculator = ReplicaCalculator::default();
        let now = NOW.parse().unwrap();
        let plain = |current, target, pods: &[Pod], values: &[i64]| {
            calculator
                .plain_metric_replicas(current, target, "", pods, levels(values), now)
                .unwrap()
        };
        assert_eq!(
            plain(3, 15000, &running(3), &[20000, 10000, 30000]),
            (4, 20000)
        );
        let hot = PodCase {
            ready: false,
            started: HOT,
            ..RUNNING
        };
        let mixed = pods(&[RUNNING, RUNNING, hot]);
        assert_eq!(plain(3, 15000, &mixed, &[50000, 10000, 30000]), (6, 30000));
        let five = running(5);
        assert_eq!(plain(5, 20000, &five, &[12000; 5]), (3, 12000));
        assert_eq!(
            plain(3, 20000, &running(3), &[20000, 21000, 21000]),
            (3, 20666)
        );
    }

    /// kube's object and external cases: `TestReplicaCalcScaleUpCMObject` (20000 over 15000
    /// on 3 ready pods), `...ObjectIgnoresUnreadyPods` (only the ready pod counts),
    /// `...PerPodCMObject` and `...ScaleDownPerPodCMExternal`, and their tolerance cases.
    #[test]
    fn object_and_external_metrics_scale_on_the_ratio() {
        let calculator = ReplicaCalculator::default();
        let ratio = |usage: f64, target: f64| usage / target;
        let up = calculator.usage_ratio_replicas(3, ratio(20000.0, 15000.0), &running(3));
        assert_eq!(up, Ok(4));
        let unready = || PodCase {
            ready: false,
            ..RUNNING
        };
        let one_ready = pods(&[unready(), RUNNING, unready()]);
        let ignoring = calculator.usage_ratio_replicas(3, ratio(50000.0, 10000.0), &one_ready);
        assert_eq!(ignoring, Ok(5));
        let within = calculator.usage_ratio_replicas(3, ratio(20666.0, 20000.0), &running(3));
        assert_eq!(within, Ok(3));
        assert_eq!(calculator.usage_ratio_replicas(0, 1.3, &[]), Ok(2));
        assert_eq!(
            calculator.usage_ratio_replicas(3, 2.0, &[]).unwrap_err().to_string(),
            "unable to calculate ready pods: no pods returned by selector while calculating replica count"
        );
        assert_eq!(calculator.per_pod_replicas(3, 20000, 5000), (4, 6667));
        assert_eq!(calculator.per_pod_replicas(5, 8600, 2867), (3, 1720));
        assert_eq!(calculator.per_pod_replicas(4, 20166, 5000), (4, 5042));
    }

    #[test]
    fn errors_read_as_kube_s() {
        let calculator = ReplicaCalculator::default();
        let now = NOW.parse().unwrap();
        let run = |pods: &[Pod], values: &[i64]| {
            let err = calculator
                .resource_replicas(1, 50, ("cpu", ""), pods, levels(values), now)
                .unwrap_err();
            err.to_string()
        };
        assert_eq!(
            run(&[], &[]),
            "no pods returned by selector while calculating replica count"
        );
        let unready = pods(&[PodCase {
            ready: false,
            ..RUNNING
        }]);
        assert_eq!(
            run(&unready, &[100]),
            "did not receive metrics for targeted pods (pods might be unready)"
        );
        let mut no_request = running(1);
        no_request[0].spec.as_mut().unwrap().containers[0].resources = None;
        assert_eq!(
            run(&no_request, &[100]),
            "missing request for cpu in container c of Pod test-pod-0"
        );
    }

    #[test]
    fn a_container_s_request_alone_counts_for_its_metric() {
        let mut pods = running(1);
        let mut sidecar = pods[0].spec.as_ref().unwrap().containers[0].clone();
        sidecar.name = "c2".into();
        sidecar
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert(
                "cpu".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("500m".into()),
            );
        pods[0].spec.as_mut().unwrap().containers.push(sidecar);
        assert_eq!(pod_requests(&pods, "c2", "cpu").unwrap()["test-pod-0"], 500);
        assert_eq!(pod_requests(&pods, "", "cpu").unwrap()["test-pod-0"], 1500);
    }
}
