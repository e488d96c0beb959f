//! apps/v1 kinds.

pub mod deployment;
pub mod replicaset;
mod workload;
