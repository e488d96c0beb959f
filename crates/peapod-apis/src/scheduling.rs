//! The scheduling.k8s.io group: priority classes, which give pods their priority.

pub mod v1;
