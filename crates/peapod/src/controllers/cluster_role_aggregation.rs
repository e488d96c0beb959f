//! The ClusterRole aggregation controller, as kube-controller-manager's
//! `clusterrole-aggregation`: a ClusterRole with an `aggregationRule` gets, as its `rules`,
//! those of every ClusterRole its selectors match, whenever any ClusterRole changes (the RBAC
//! authorizer computes the same on each request, so access never waits for this).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRole;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::rbac::aggregated_rules;
use peapod_apiserver::status::ApiError;
use peapod_store::{Store, StoreError, WatchStream};

/// How long a failed watch waits before it is opened again.
const REOPEN: Duration = Duration::from_secs(1);

const CLUSTER_ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";

#[derive(Debug, thiserror::Error)]
pub enum AggregationError {
    #[error("updating the rules of cluster role {name}: {source}")]
    Update {
        name: String,
        #[source]
        source: ApiError,
    },
    #[error("watching cluster roles: {0}")]
    Watch(#[from] StoreError),
    #[error("opening the watch: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Keeps every aggregated ClusterRole's rules those of the roles it selects.
pub struct ClusterRoleAggregation {
    client: LocalClient,
    store: Store,
}

impl ClusterRoleAggregation {
    pub fn new(client: LocalClient, store: Store) -> ClusterRoleAggregation {
        ClusterRoleAggregation { client, store }
    }

    /// Watches cluster roles until the store goes away.
    pub async fn run(self) {
        loop {
            if let Err(err) = self.follow().await {
                tracing::warn!(%err, "cluster role aggregation; watching again");
            }
            tokio::time::sleep(REOPEN).await;
        }
    }

    /// Aggregates now and after every change, until the watch ends.
    async fn follow(&self) -> Result<(), AggregationError> {
        let (roles, mut watch) = self.open().await?;
        self.sync_logged(roles).await;
        while let Some(event) = watch.next().await {
            event?;
            let roles = self.list().await?;
            self.sync_logged(roles).await;
        }
        Ok(())
    }

    async fn open(&self) -> Result<(Vec<ClusterRole>, WatchStream), AggregationError> {
        let store = self.store.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let (roles, _, watch) = store.list_watch::<ClusterRole>(None)?;
            Ok::<_, StoreError>((roles, watch))
        })
        .await??;
        Ok(opened)
    }

    async fn list(&self) -> Result<Vec<ClusterRole>, AggregationError> {
        let store = self.store.clone();
        let roles = tokio::task::spawn_blocking(move || store.list::<ClusterRole>(None)).await??;
        Ok(roles)
    }

    async fn sync_logged(&self, roles: Vec<ClusterRole>) {
        if let Err(err) = self.sync(roles).await {
            tracing::warn!(%err, "cluster role aggregation");
        }
    }

    /// Writes the aggregated rules of each aggregating role whose stored rules differ.
    async fn sync(&self, roles: Vec<ClusterRole>) -> Result<(), AggregationError> {
        let by_name: BTreeMap<String, ClusterRole> = roles
            .into_iter()
            .map(|role| (role.metadata.name.clone().unwrap_or_default(), role))
            .collect();
        for (name, role) in &by_name {
            if role.aggregation_rule.is_none() {
                continue;
            }
            let rules = aggregated_rules(name, &by_name);
            if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
                continue;
            }
            let mut updated = role.clone();
            updated.rules = Some(rules);
            let body = serde_json::to_value(&updated).unwrap_or_default();
            let path = format!("{CLUSTER_ROLES}/{name}");
            let written = self
                .client
                .send(
                    axum::http::Method::PUT,
                    &path,
                    Some(("application/json", body)),
                )
                .await;
            match written {
                Ok(_) => {}
                // Changed or deleted meanwhile: the watch brings the next round.
                Err(err) if matches!(err.reason, "Conflict" | "NotFound") => {}
                Err(source) => {
                    let name = name.clone();
                    return Err(AggregationError::Update { name, source });
                }
            }
        }
        Ok(())
    }
}
