//! Controllers in the agent, as kube-controller-manager runs them: each watches the objects it
//! owns and drives them toward their spec through the API server, in-process.

pub mod client;
pub mod cluster_role_aggregation;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod events;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
pub mod ownership;
pub mod replicaset;
pub mod retries;
pub mod root_ca_publisher;
pub mod service_account_tokens;
pub mod service_accounts;
pub mod ttl_after_finished;
