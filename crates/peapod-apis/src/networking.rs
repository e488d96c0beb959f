//! The networking.k8s.io group: Ingresses and the IngressClasses that pick their controller.

pub mod v1;
