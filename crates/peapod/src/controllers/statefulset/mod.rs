//! The StatefulSet controller, as kube-controller-manager's (pkg/controller/statefulset):
//! pods with stable ordinal identities and claims, over k8s-openapi types, and
//! [`controller`], the loop that runs it:
//!
//! - [`identity`]: pod and claim names, the pod a create sends (hostname, subdomain,
//!   identity labels, claim volumes) and the claims of its volumeClaimTemplates;
//! - [`plan`]: which pods to create or delete in one sync (OrderedReady or Parallel, scale
//!   down from the highest ordinal, RollingUpdate down to the partition, OnDelete);
//! - [`retention`]: the claims' owner references of persistentVolumeClaimRetentionPolicy;
//! - [`revisions`]: the ControllerRevisions (current and update revision, history limit);
//! - [`status`]: the counts written back.
//!
//! kube's expectations are not kept: reads go to the API in process, which is consistent.

pub mod controller;
pub mod identity;
pub mod plan;
pub mod retention;
mod revisions;
pub mod status;
