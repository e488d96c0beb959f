//! The EndpointSlice controller, as kube-controller-manager's (pkg/controller/endpointslice
//! and staging k8s.io/endpointslice): for every Service with a selector, IPv4 EndpointSlices
//! of the pods it selects ([`desired`]), placed with kube's minimal churn ([`placement`]),
//! labelled and owned as kube's, with the last-change trigger time ([`trigger_time`]). The
//! slices of a deleted Service go with the garbage collector, through their owner reference.
//! [`pods`], [`selecting`] and [`trigger_time`] serve the Endpoints controller too.

pub mod controller;
pub mod desired;
pub mod placement;
pub mod pods;
pub mod selecting;
pub mod trigger_time;
