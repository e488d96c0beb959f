//! The namespace controller: a namespace marked for deletion reads `Terminating`, everything in
//! it is deleted through the API (pods gracefully, by their kubelet), and once nothing is left
//! its `kubernetes` finalizer is dropped and it is removed, as kube-controller-manager's
//! namespace lifecycle does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::registry::{Backend, Registry};
use peapod_apiserver::status::ApiError;
use peapod_store::{DeleteOptionsRaw, ResourceKey, Store, StoreError, WriteOptions};
use serde_json::{json, Value};

/// How often a terminating namespace is checked again while content remains.
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace {namespace}: {source}")]
    Api {
        namespace: String,
        #[source]
        source: ApiError,
    },
    #[error("namespace {namespace}: {source}")]
    Store {
        namespace: String,
        #[source]
        source: StoreError,
    },
}

/// Empties and removes namespaces marked for deletion.
#[derive(Clone)]
pub struct NamespaceController {
    client: LocalClient,
    registry: Arc<Registry>,
    store: Store,
    finalizing: Arc<Mutex<HashSet<String>>>,
}

impl NamespaceController {
    pub fn new(client: LocalClient, registry: Arc<Registry>, store: Store) -> NamespaceController {
        NamespaceController {
            client,
            registry,
            store,
            finalizing: Arc::default(),
        }
    }

    /// Watches namespaces until the store goes away.
    pub async fn run(self) {
        loop {
            let store = self.store.clone();
            let opened =
                tokio::task::spawn_blocking(move || store.list_watch::<Namespace>(None)).await;
            let Ok(Ok((namespaces, _, mut changes))) = opened else {
                tracing::warn!("namespace controller: listing namespaces failed; retrying");
                tokio::time::sleep(RECHECK).await;
                continue;
            };
            for namespace in namespaces {
                self.consider(&serde_json::to_value(namespace).unwrap_or_default());
            }
            while let Some(change) = changes.next().await {
                match change {
                    Ok(event) => self.consider(&event.object),
                    Err(_) => break,
                }
            }
        }
    }

    /// Starts finalizing `namespace` if it is marked and not already being finalized.
    fn consider(&self, namespace: &Value) {
        if namespace.pointer("/metadata/deletionTimestamp").is_none() {
            return;
        }
        let name = namespace["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut finalizing = self.finalizing.lock().unwrap_or_else(|p| p.into_inner());
        if !finalizing.insert(name.clone()) {
            return;
        }
        let controller = self.clone();
        tokio::spawn(async move {
            loop {
                match controller.finalize(&name).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%err, "namespace controller"),
                }
                tokio::time::sleep(RECHECK).await;
            }
            controller
                .finalizing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }

    /// One pass: marks the namespace Terminating, deletes what is in it, and removes it when
    /// nothing is left. `true` once it is gone.
    async fn finalize(&self, namespace: &str) -> Result<bool, NamespaceError> {
        let api = |source| NamespaceError::Api {
            namespace: namespace.to_owned(),
            source,
        };
        let status_path = format!("/api/v1/namespaces/{namespace}/status");
        match self
            .client
            .merge_patch(&status_path, json!({"status": {"phase": "Terminating"}}))
            .await
        {
            Ok(_) => {}
            Err(err) if err.reason == "NotFound" => return Ok(true),
            Err(err) => return Err(api(err)),
        }
        if self.delete_content(namespace).await.map_err(api)? > 0 {
            return Ok(false);
        }
        self.remove(namespace).await?;
        tracing::info!(namespace, "namespace deleted");
        Ok(true)
    }

    /// Deletes every object in `namespace`; the number still there.
    async fn delete_content(&self, namespace: &str) -> Result<usize, ApiError> {
        let mut remaining = 0;
        let stored = self
            .registry
            .kinds()
            .iter()
            .filter(|kind| kind.namespaced && matches!(kind.backend, Backend::Store(_)));
        for kind in stored {
            for object in self.client.list(&kind.path(Some(namespace), None)).await? {
                remaining += 1;
                if object.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let path = kind.path(Some(namespace), Some(name));
                match self
                    .client
                    .delete(&path, json!({"propagationPolicy": "Background"}))
                    .await
                {
                    Ok(_) => {}
                    Err(err) if err.reason == "NotFound" => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(remaining)
    }

    /// Drops the `kubernetes` finalizer and removes the empty namespace.
    async fn remove(&self, namespace: &str) -> Result<(), NamespaceError> {
        let store = self.store.clone();
        let name = namespace.to_owned();
        let removed = tokio::task::spawn_blocking(move || {
            let key = ResourceKey::of::<Namespace>();
            store.update_raw(&key, "", &name, &WriteOptions::default(), |old: &Value| {
                let mut new = old.clone();
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
                Ok::<Value, StoreError>(new)
            })?;
            store.delete_raw(&key, "", &name, &DeleteOptionsRaw::default())
        })
        .await
        .map_err(|err| NamespaceError::Api {
            namespace: namespace.to_owned(),
            source: ApiError::internal(err.to_string()),
        })?;
        match removed {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(source) => Err(NamespaceError::Store {
                namespace: namespace.to_owned(),
                source,
            }),
        }
    }
}
