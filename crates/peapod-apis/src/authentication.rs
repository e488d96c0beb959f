//! The authentication.k8s.io group: who the requester is (`kubectl auth whoami`).

pub mod v1;
