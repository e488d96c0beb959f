//! peapod's Kubernetes API server: one request parser ([`request_info`]) and one set of
//! generic handlers serve every kind in the [`registry`], over the object store, with
//! kube-apiserver's protocol: discovery, content negotiation, Tables, patches, watches and
//! `Status` errors.

pub mod admission;
pub mod authn;
pub mod client;
pub mod discovery;
mod handlers;
mod impersonation;
pub mod negotiate;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod request_info;
pub mod selectors;
mod server;
pub mod status;
pub mod table;

pub use handlers::MAX_REQUEST_BYTES;
pub use server::{authorize, ApiServer};
