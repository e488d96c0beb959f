//! The events.k8s.io group: core/v1 events seen through the newer Event API.

pub mod v1;
