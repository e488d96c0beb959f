//! peapod: Kubernetes pods on one Linux host.
//!
//! Layers, top to bottom: the CLI (crate peapod-cli) talks HTTP over a Unix socket to the
//! [`agent`] (Kubernetes REST paths over the object store and the image store); the
//! [`kubelet`] runs one worker per pod, which prepares [`runtime`] bundles and [`volume`]s and
//! drives one [`shim`] per pod; the shim holds the pod's namespaces and runs its containers
//! through libcontainer.

pub mod agent;
pub mod certs;
pub mod controllers;
pub mod kubelet;
pub mod paths;
pub mod perms;
pub mod play;
pub mod runtime;
pub mod shim;
pub mod uninstall;
pub mod volume;
