//! The DaemonSet controller, as kube-controller-manager's (pkg/controller/daemon and its
//! util package): one pod per node that should run the daemon, over k8s-openapi types, and
//! [`controller`], the loop that runs it:
//!
//! - [`placement`]: whether a node should run the daemon (`NodeShouldRunDaemonPod`), the
//!   default tolerations, the node affinity pinning a pod to its node;
//! - [`pods`]: what each node needs (`podsShouldBeOnNode`) and the pod a create sends;
//! - [`update`]: the RollingUpdate step within maxUnavailable and maxSurge;
//! - [`history`]: the ControllerRevisions' data, names, dedup and cleanup;
//! - [`status`]: the counts written back;
//! - [`backoff`]: the backoff on deleting failed pods.
//!
//! A reconcile of one DaemonSet, as `syncDaemonSet`:
//!
//! 1. Read it from the API (gone: done); an empty selector gets a SelectingAll warning and
//!    nothing else; a DaemonSet being deleted is left to the garbage collector.
//! 2. List the nodes; [`revisions::construct_history`] claims the revisions and finds or
//!    creates the current one, whose hash labels the pods.
//! 3. `manage`: claim the namespace's pods, group them by node, and create or delete per
//!    [`pods::pods_should_be_on_node`] ([`pod_sync`]: slow-start creates, events).
//! 4. When manage sent nothing (kube's expectations would hold the rest back until its
//!    pods are seen) and the strategy is RollingUpdate, [`update::rolling_update`].
//! 5. [`revisions::cleanup_history`], then [`status::counts`] written when they changed;
//!    a minReadySeconds wait or a failed-pod backoff comes back later.
//!
//! kube's expectations are not kept: reads go to the API in process, which is consistent.

mod backoff;
pub mod controller;
pub mod history;
pub mod placement;
mod pod_sync;
pub mod pods;
mod revisions;
pub mod status;
pub mod update;
