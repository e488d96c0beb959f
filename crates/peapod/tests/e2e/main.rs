//! The end-to-end tests, one binary: each module drives a real agent (`peapod serve`) on a
//! temporary root with real clients, and ends with the leak check of `common`. One binary links
//! once and shares one pool of test threads, however many modules there are.

mod common;

mod attach_shim;
mod autoscaling;
mod cli;
mod cli_streams;
mod clients;
mod config_env;
mod config_kubectl;
mod config_volumes;
mod crash;
mod cronjobs;
mod daemonsets;
mod deployments;
mod disk;
mod disruption;
mod gc;
mod hooks;
mod https;
mod images;
mod isolation;
mod jobs;
mod kubectl;
mod kubectl_1_20;
mod kubectl_identity;
mod kubectl_portforward;
mod kubectl_streams;
mod kubectl_verbs;
mod kubelet_api;
mod legacy_tokens;
mod lifecycle;
mod logs;
mod network;
mod permissions;
mod play;
mod preemption;
mod probes;
mod projected_tokens;
mod rbac;
mod replicasets;
mod resources;
mod scenarios;
mod scheduling;
mod security;
mod server_side_apply;
mod service_account_tokens;
mod statefulsets;
mod storage;
mod termination;
mod top;
mod uninstall;
mod volumes;
