//! The storage.k8s.io group: storage classes, which say how claims get their volumes.

pub mod v1;
