//! The disruption controller, as kube-controller-manager's (pkg/controller/disruption): for
//! each PodDisruptionBudget, the pods it selects, how many of them it expects (the pods
//! themselves for an integer minAvailable, else the scale of their controllers), how many
//! must stay healthy, how many are, and so how many disruptions it allows; evictions the API
//! server approved (`disruptedPods`) stop counting as healthy until their pod goes or kube's
//! two-minute DeletionTimeout passes. A sync that fails leaves the budget allowing nothing,
//! with a SyncFailed condition.

pub mod controller;
pub mod scale;
pub mod status;
