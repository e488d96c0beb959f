//! core/v1 kinds.

pub mod configmap;
mod data;
pub mod endpoints;
pub mod event;
pub mod namespace;
pub mod node;
pub mod persistentvolume;
pub mod persistentvolumeclaim;
pub mod pod;
pub mod ports;
pub mod secret;
pub mod service;
pub mod serviceaccount;
pub mod volume_claims;
