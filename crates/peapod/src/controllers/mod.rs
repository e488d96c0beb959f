//! Controllers in the agent, as kube-controller-manager runs them: each watches the objects it
//! owns and drives them toward their spec through the API server, in-process.

pub mod client;
pub mod cluster_role_aggregation;
pub mod garbage_collector;
pub mod namespace;
pub mod replicaset;
pub mod root_ca_publisher;
pub mod service_account_tokens;
pub mod service_accounts;
