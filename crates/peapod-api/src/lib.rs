//! Kubernetes manifests for peapod: decoding YAML/JSON streams, typing them into
//! `k8s_openapi` objects with Kubernetes-worded errors and warnings, API-server
//! defaulting, validation, label selectors and `$(VAR)` expansion.

pub mod decode;
pub mod defaults;
pub mod expand;
pub mod field_validation;
pub mod label_selector;
pub mod object;
pub mod qos;
pub mod quantity;
pub mod selector;
pub mod support;
pub mod validation;
pub mod warnings;
pub mod yaml_output;
