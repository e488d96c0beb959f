//! The HorizontalPodAutoscaler controller, as kube-controller-manager's
//! (pkg/controller/podautoscaler): every sync period each HPA reads its target's scale,
//! reckons the replicas its metrics ask for ([`replica_calculator`] over samples from
//! metrics.k8s.io, [`metrics`]; object and external metrics from their APIs,
//! [`object_external`]), steadies and bounds that count ([`normalize`]), writes the scale
//! found through discovery ([`scale_target`]) and reports in its status ([`conditions`]).

pub mod compute;
pub mod conditions;
pub mod controller;
pub mod metrics;
pub mod normalize;
pub mod object_external;
pub mod replica_calculator;
pub mod scale_target;
pub mod selectors;
pub mod utilization;

#[cfg(test)]
mod tests;
