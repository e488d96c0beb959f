//! The EndpointSlice mirroring controller, as kube-controller-manager's
//! (pkg/controller/endpointslicemirroring): the Endpoints of a Service without selector
//! (written by hand) mirrored into EndpointSlices ([`mirror`]), unless labelled
//! `endpointslice.kubernetes.io/skip-mirror=true`; the mirrored slices go when the Service
//! gains a selector or is deleted, or the Endpoints are.

pub mod controller;
pub mod mirror;
