//! authentication.k8s.io/v1 kinds.

pub mod selfsubjectreview;
