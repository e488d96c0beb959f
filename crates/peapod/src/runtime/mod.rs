//! Turning a pod's container into something the shim can run: the OCI bundle.

pub mod spec;
