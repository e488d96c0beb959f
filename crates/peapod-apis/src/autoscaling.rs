//! The autoscaling group: HorizontalPodAutoscalers, kept at v2 (the storage version, which
//! discovery prefers) and served at v1 too, converted as kube-apiserver converts them.

pub mod v1;
pub mod v2;
