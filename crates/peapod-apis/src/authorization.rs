//! The authorization.k8s.io group: what the requester may do (`kubectl auth can-i`).

pub mod v1;
