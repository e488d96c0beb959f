//! networking.k8s.io/v1 kinds.

pub mod ingress;
pub mod ingressclass;
