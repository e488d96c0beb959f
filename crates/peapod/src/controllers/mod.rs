//! Controllers in the agent, as kube-controller-manager runs them: each watches the objects it
//! owns and drives them toward their spec through the API server, in-process.
//!
//! The workload controllers share their loop ([`reconciler`]: fresh read, retries, error
//! policy), their controller references and watch mappers ([`ownership`]), their events
//! ([`events`]), the rules of their status conditions ([`conditions`]) and their reading of
//! the API's refusals ([`api_errors`]).

pub mod api_errors;
pub mod client;
pub mod cluster_role_aggregation;
pub mod conditions;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod events;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
pub mod node_lifecycle;
pub mod ownership;
pub mod persistent_volume;
pub mod pod_selectors;
pub mod podautoscaler;
pub mod reconciler;
pub mod replicaset;
pub mod retries;
pub mod root_ca_publisher;
pub mod service_account_tokens;
pub mod service_accounts;
pub mod statefulset;
pub mod taint_eviction;
pub mod ttl_after_finished;
