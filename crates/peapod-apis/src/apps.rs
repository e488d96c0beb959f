//! The apps group: the workloads that keep pods running (ReplicaSet first).

pub mod v1;
