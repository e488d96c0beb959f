//! The root CA publisher: every live namespace has a ConfigMap `kube-root-ca.crt` holding the
//! API server's CA certificate (`ca.crt`) and kube's description annotation, made again when
//! deleted and put back when changed, as kube-controller-manager's RootCACertPublisher does.

use std::time::Duration;

use axum::http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use peapod_store::{Store, StoreError, WatchEventType, WatchStream};
use serde_json::{json, Value};

/// The ConfigMap's name, and the key of the certificate in it.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";
/// How long a failed watch waits before it is opened again.
const REOPEN: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RootCaPublisherError {
    #[error("publishing the root CA in namespace {namespace}: {source}")]
    Publish {
        namespace: String,
        #[source]
        source: ApiError,
    },
    #[error("watching namespaces and config maps: {0}")]
    Watch(#[from] StoreError),
    #[error("opening the watches: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Keeps `kube-root-ca.crt` in every live namespace.
#[derive(Clone)]
pub struct RootCaPublisher {
    client: LocalClient,
    store: Store,
    ca_pem: String,
}

impl RootCaPublisher {
    pub fn new(client: LocalClient, store: Store, ca_pem: String) -> RootCaPublisher {
        RootCaPublisher {
            client,
            store,
            ca_pem,
        }
    }

    /// Watches namespaces and config maps until the store goes away.
    pub async fn run(self) {
        loop {
            if let Err(err) = self.follow().await {
                tracing::warn!(%err, "root CA publisher; watching again");
            }
            tokio::time::sleep(REOPEN).await;
        }
    }

    /// Publishes in every namespace, then again whenever a namespace appears or the
    /// ConfigMap changes or goes, until a watch ends.
    async fn follow(&self) -> Result<(), RootCaPublisherError> {
        let store = self.store.clone();
        let (namespaces, mut namespace_watch, mut config_maps) =
            tokio::task::spawn_blocking(move || {
                let (_, _, config_maps) = store.list_watch::<ConfigMap>(None)?;
                let (namespaces, _, namespace_watch) = store.list_watch::<Namespace>(None)?;
                Ok::<_, StoreError>((namespaces, namespace_watch, config_maps))
            })
            .await??;
        for namespace in &namespaces {
            let namespace = serde_json::to_value(namespace).unwrap_or_default();
            self.publish_logged(&namespace).await;
        }
        loop {
            tokio::select! {
                change = namespace_watch.next() => {
                    let Some(event) = change.transpose()? else { return Ok(()) };
                    if matches!(event.kind, WatchEventType::Added | WatchEventType::Modified) {
                        self.publish_logged(&event.object).await;
                    }
                }
                change = next_of_ours(&mut config_maps) => {
                    let Some(event) = change? else { return Ok(()) };
                    let namespace = event.object["metadata"]["namespace"].as_str().unwrap_or_default();
                    self.republish(namespace).await;
                }
            }
        }
    }

    async fn publish_logged(&self, namespace: &Value) {
        if let Err(err) = self.publish(namespace).await {
            tracing::warn!(%err, "root CA publisher");
        }
    }

    /// After the ConfigMap in `namespace` changed or went: published again there.
    async fn republish(&self, namespace: &str) {
        match self
            .client
            .get(&format!("/api/v1/namespaces/{namespace}"))
            .await
        {
            Ok(found) => self.publish_logged(&found).await,
            Err(err) if err.reason == "NotFound" => {}
            Err(err) => tracing::warn!(%err, namespace, "root CA publisher"),
        }
    }

    /// Creates or corrects the ConfigMap in `namespace` (a Namespace object) if it is live.
    async fn publish(&self, namespace: &Value) -> Result<(), RootCaPublisherError> {
        let terminating = namespace["metadata"].get("deletionTimestamp").is_some()
            || namespace["status"]["phase"] == "Terminating";
        let name = namespace["metadata"]["name"].as_str().unwrap_or_default();
        if terminating || name.is_empty() {
            return Ok(());
        }
        let config_maps = format!("/api/v1/namespaces/{name}/configmaps");
        let path = format!("{config_maps}/{ROOT_CA_CONFIG_MAP}");
        let written = match self.client.get(&path).await {
            Ok(existing) => match self.corrected(existing) {
                Some(corrected) => self.write(Method::PUT, &path, corrected).await,
                None => Ok(()),
            },
            Err(err) if err.reason == "NotFound" => {
                let config_map = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": ROOT_CA_CONFIG_MAP,
                        "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                    },
                    "data": {CA_KEY: self.ca_pem},
                });
                self.write(Method::POST, &config_maps, config_map).await
            }
            Err(err) => Err(err),
        };
        written.map_err(|source| RootCaPublisherError::Publish {
            namespace: name.to_owned(),
            source,
        })
    }

    /// The ConfigMap put right, if its data or description differ from what it should hold.
    fn corrected(&self, mut existing: Value) -> Option<Value> {
        let data = json!({CA_KEY: self.ca_pem});
        let described = existing["metadata"]["annotations"][DESCRIPTION_ANNOTATION]
            .as_str()
            .is_some_and(|d| !d.is_empty());
        if existing["data"] == data && described {
            return None;
        }
        existing["data"] = data;
        if !existing["metadata"]["annotations"].is_object() {
            existing["metadata"]["annotations"] = json!({});
        }
        existing["metadata"]["annotations"][DESCRIPTION_ANNOTATION] = json!(DESCRIPTION);
        Some(existing)
    }

    async fn write(&self, method: Method, path: &str, body: Value) -> Result<(), ApiError> {
        match self
            .client
            .send(method, path, Some(("application/json", body)))
            .await
        {
            Ok(_) => Ok(()),
            // Made or changed meanwhile (the watch brings it back), or the namespace is going.
            Err(err)
                if matches!(
                    err.reason,
                    "AlreadyExists" | "Conflict" | "NotFound" | "Forbidden"
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

/// The next change of a `kube-root-ca.crt` ConfigMap that may need undoing (a modification or
/// a deletion); None when the watch ended.
async fn next_of_ours(
    watch: &mut WatchStream,
) -> Result<Option<peapod_store::WatchEvent>, StoreError> {
    while let Some(event) = watch.next().await.transpose()? {
        let ours = event.object["metadata"]["name"] == ROOT_CA_CONFIG_MAP;
        if ours
            && matches!(
                event.kind,
                WatchEventType::Modified | WatchEventType::Deleted
            )
        {
            return Ok(Some(event));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher() -> RootCaPublisher {
        let store = Store::open_in_memory().unwrap();
        let client = LocalClient::new(axum::Router::new());
        RootCaPublisher::new(client, store, "PEM".into())
    }

    #[test]
    fn a_changed_config_map_is_put_right_and_a_right_one_left_alone() {
        let publisher = publisher();
        let changed = json!({
            "metadata": {"name": ROOT_CA_CONFIG_MAP, "annotations": {"team": "a"}},
            "data": {"ca.crt": "other", "extra": "x"},
        });
        let corrected = publisher.corrected(changed).unwrap();
        assert_eq!(corrected["data"], json!({"ca.crt": "PEM"}));
        assert_eq!(
            corrected["metadata"]["annotations"],
            json!({"team": "a", DESCRIPTION_ANNOTATION: DESCRIPTION})
        );
        assert_eq!(publisher.corrected(corrected), None);
    }
}
