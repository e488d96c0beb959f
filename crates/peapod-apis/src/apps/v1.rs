//! apps/v1 kinds.

pub mod controllerrevision;
pub mod daemonset;
pub mod deployment;
pub(crate) mod int_or_percent;
pub mod replicaset;
pub mod statefulset;
pub(crate) mod workload;
