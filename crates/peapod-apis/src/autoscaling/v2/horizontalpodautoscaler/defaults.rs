//! autoscaling/v2's SetDefaults_HorizontalPodAutoscaler (kube 1.32): one replica at least, a
//! CPU utilization target of 80 % when no metric is given, and a given behavior completed by
//! GenerateHPAScaleUpRules / GenerateHPAScaleDownRules (the controller's former fixed rules).

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, MetricSpec, MetricTarget,
    ResourceMetricSource,
};

/// `autoscaling.DefaultCPUUtilization`.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub fn default(hpa: &mut HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![cpu_utilization(DEFAULT_CPU_UTILIZATION)]);
    }
    if let Some(behavior) = &mut spec.behavior {
        behavior.scale_up = Some(scale_up_rules(behavior.scale_up.take()));
        behavior.scale_down = Some(scale_down_rules(behavior.scale_down.take()));
    }
}

/// A Resource metric aiming at `percent` average CPU utilization.
pub fn cpu_utilization(percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// GenerateHPAScaleUpRules: `given` with every unset part taken from the defaults (no
/// stabilization, the larger of 4 pods or 100 % every 15 s).
pub fn scale_up_rules(given: Option<HPAScalingRules>) -> HPAScalingRules {
    let defaults = HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".into()),
        policies: Some(vec![policy("Pods", 4, 15), policy("Percent", 100, 15)]),
        tolerance: None,
    };
    completed(given, defaults)
}

/// GenerateHPAScaleDownRules: `given` with every unset part taken from the defaults (100 %
/// every 15 s); the stabilization window stays unset, as the controller's flag decides it.
pub fn scale_down_rules(given: Option<HPAScalingRules>) -> HPAScalingRules {
    let defaults = HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".into()),
        policies: Some(vec![policy("Percent", 100, 15)]),
        tolerance: None,
    };
    completed(given, defaults)
}

fn policy(type_: &str, value: i32, period_seconds: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds,
    }
}

/// copyHPAScalingRules: the set fields of `given` over `defaults`.
fn completed(given: Option<HPAScalingRules>, defaults: HPAScalingRules) -> HPAScalingRules {
    let Some(given) = given else {
        return defaults;
    };
    HPAScalingRules {
        stabilization_window_seconds: given
            .stabilization_window_seconds
            .or(defaults.stabilization_window_seconds),
        select_policy: given.select_policy.or(defaults.select_policy),
        policies: given.policies.or(defaults.policies),
        tolerance: given.tolerance,
    }
}
