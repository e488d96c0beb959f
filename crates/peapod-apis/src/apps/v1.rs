//! apps/v1 kinds.

pub mod controllerrevision;
pub mod daemonset;
pub mod deployment;
mod int_or_percent;
pub mod replicaset;
pub mod statefulset;
mod workload;
