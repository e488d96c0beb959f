//! The service accounts controller: every namespace has a ServiceAccount `default`, created as
//! soon as the namespace appears and again whenever it is deleted, but never in a namespace
//! being deleted, as kube-controller-manager's ServiceAccountsController does. Pods wait for
//! it in admission ([`peapod_apis::core::v1::serviceaccount::admission`]).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use peapod_apis::core::v1::serviceaccount::admission::DEFAULT_SERVICE_ACCOUNT;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use peapod_store::{Store, StoreError, WatchEventType, WatchStream};
use serde_json::{json, Value};

/// How long a failed watch waits before it is opened again.
const REOPEN: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountsError {
    #[error("creating the default service account of namespace {namespace}: {source}")]
    Create {
        namespace: String,
        #[source]
        source: ApiError,
    },
    #[error("reading namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: ApiError,
    },
    #[error("watching namespaces and service accounts: {0}")]
    Watch(#[from] StoreError),
    #[error("opening the watches: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Keeps a `default` ServiceAccount in every live namespace.
#[derive(Clone)]
pub struct ServiceAccountsController {
    client: LocalClient,
    store: Store,
}

/// The two watches the controller follows.
struct Watches {
    namespaces: WatchStream,
    accounts: WatchStream,
}

impl ServiceAccountsController {
    pub fn new(client: LocalClient, store: Store) -> ServiceAccountsController {
        ServiceAccountsController { client, store }
    }

    /// Watches namespaces and service accounts until the store goes away.
    pub async fn run(self) {
        loop {
            if let Err(err) = self.follow().await {
                tracing::warn!(%err, "service accounts controller; watching again");
            }
            tokio::time::sleep(REOPEN).await;
        }
    }

    /// Ensures every listed namespace has its account, then reacts to each change, until a
    /// watch ends.
    async fn follow(&self) -> Result<(), ServiceAccountsError> {
        let (namespaces, mut watches) = self.open().await?;
        for namespace in &namespaces {
            self.ensure_logged(namespace).await;
        }
        loop {
            tokio::select! {
                change = watches.namespaces.next() => {
                    let Some(event) = change.transpose()? else { return Ok(()) };
                    if matches!(event.kind, WatchEventType::Added | WatchEventType::Modified) {
                        self.ensure_logged(&event.object).await;
                    }
                }
                change = watches.accounts.next() => {
                    let Some(event) = change.transpose()? else { return Ok(()) };
                    if event.kind == WatchEventType::Deleted
                        && event.object["metadata"]["name"] == DEFAULT_SERVICE_ACCOUNT
                    {
                        let namespace = event.object["metadata"]["namespace"].as_str();
                        self.recreate(namespace.unwrap_or_default()).await;
                    }
                }
            }
        }
    }

    /// The namespaces now, and watches of namespaces and service accounts from then on.
    async fn open(&self) -> Result<(Vec<Value>, Watches), ServiceAccountsError> {
        let store = self.store.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let (_, _, accounts) = store.list_watch::<ServiceAccount>(None)?;
            let (namespaces, _, namespace_watch) = store.list_watch::<Namespace>(None)?;
            let namespaces = namespaces
                .iter()
                .map(|namespace| serde_json::to_value(namespace).unwrap_or_default())
                .collect();
            let watches = Watches {
                namespaces: namespace_watch,
                accounts,
            };
            Ok::<_, StoreError>((namespaces, watches))
        })
        .await??;
        Ok(opened)
    }

    async fn ensure_logged(&self, namespace: &Value) {
        if let Err(err) = self.ensure(namespace).await {
            tracing::warn!(%err, "service accounts controller");
        }
    }

    /// After `default` was deleted in `namespace`: made again unless the namespace is going.
    async fn recreate(&self, namespace: &str) {
        let path = format!("/api/v1/namespaces/{namespace}");
        match self.client.get(&path).await {
            Ok(found) => self.ensure_logged(&found).await,
            Err(err) if err.reason == "NotFound" => {}
            Err(source) => {
                let err = ServiceAccountsError::Namespace {
                    namespace: namespace.to_owned(),
                    source,
                };
                tracing::warn!(%err, "service accounts controller");
            }
        }
    }

    /// Creates `default` in `namespace` (a Namespace object) if it is live and has none.
    async fn ensure(&self, namespace: &Value) -> Result<(), ServiceAccountsError> {
        let terminating = namespace["metadata"].get("deletionTimestamp").is_some()
            || namespace["status"]["phase"] == "Terminating";
        let name = namespace["metadata"]["name"].as_str().unwrap_or_default();
        if terminating || name.is_empty() {
            return Ok(());
        }
        let accounts = format!("/api/v1/namespaces/{name}/serviceaccounts");
        let existing = format!("{accounts}/{DEFAULT_SERVICE_ACCOUNT}");
        if self.client.get(&existing).await.is_ok() {
            return Ok(());
        }
        let account = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT},
        });
        let created = self
            .client
            .send(
                axum::http::Method::POST,
                &accounts,
                Some(("application/json", account)),
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            // Made meanwhile, or the namespace went or started terminating: nothing to do.
            Err(err) if matches!(err.reason, "AlreadyExists" | "NotFound" | "Forbidden") => Ok(()),
            Err(source) => Err(ServiceAccountsError::Create {
                namespace: name.to_owned(),
                source,
            }),
        }
    }
}
