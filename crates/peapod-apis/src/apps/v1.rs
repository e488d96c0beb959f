//! apps/v1 kinds.

pub mod replicaset;
