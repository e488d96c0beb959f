//! kube-controller-manager's PersistentVolume controllers, in-process: the binder
//! ([`controller`]: `syncClaim` and `syncVolume` of pkg/controller/volume/persistentvolume, with
//! the local-path provisioner of [`provisioner`] for the default class), the matching of claims
//! to volumes ([`matching`]) and the protection finalizers ([`protection`]).
//!
//! WaitForFirstConsumer: peapod's scheduler binds every pod to this node as soon as it is
//! created, so the binder itself sets a waiting claim's `volume.kubernetes.io/selected-node`
//! from the first scheduled, non-terminal pod that mounts it, then binds or provisions as kube's
//! binder does once the scheduler has chosen. A volume pre-bound to a claim binds it at once,
//! whatever the binding mode, as kube's binder does.
//!
//! Expansion (pkg/controller/volume/expand): kube has no in-tree plugin that grows a hostPath
//! volume, so any volume but ours waits for an external controller (`ExternalExpanding`); the
//! local-path directories have no size to grow, so the binder raises their volume's capacity to
//! the request and the claim's status follows, as an expansion needing no filesystem resize.

pub mod controller;
pub mod matching;
pub mod protection;
pub mod provisioner;

/// The annotations the binder reads and writes, as kube names them.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
