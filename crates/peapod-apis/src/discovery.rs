//! The discovery.k8s.io group: EndpointSlices, the endpoints of Services.

pub mod v1;
