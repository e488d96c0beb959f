//! core/v1 kinds.

pub mod configmap;
mod data;
pub mod event;
pub mod namespace;
pub mod node;
pub mod persistentvolume;
pub mod persistentvolumeclaim;
pub mod pod;
pub mod secret;
pub mod serviceaccount;
pub mod volume_claims;
