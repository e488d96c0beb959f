//! The coordination.k8s.io group: leases (the node's heartbeat, leader election).

pub mod v1;
