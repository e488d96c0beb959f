//! peapod: Kubernetes pods on one Linux host.
//!
//! Layers, top to bottom: [`cli`] (kubectl-shaped client) talks HTTP over a Unix socket to the
//! [`agent`] (Kubernetes REST paths, the object store, the [`kubelet`] pod workers, images);
//! the kubelet prepares [`runtime`] bundles and [`volume`]s and drives one [`shim`] per pod,
//! which holds the pod's namespaces and runs its containers through libcontainer.

pub mod paths;
pub mod runtime;
pub mod shim;
