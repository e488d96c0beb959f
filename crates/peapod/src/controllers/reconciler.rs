//! The loop the workload controllers share, as kube's workers run `syncHandler`: each
//! reconcile reads its object fresh through the API (gone: its retries and what else the
//! controller keeps of it are forgotten), syncs it, and forgets its retries on success; a
//! failure is logged and comes back after the object's [`Retries`] backoff.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::retries::{key_of, Retries};

/// One controller's sync of a fresh read of its object, and what it keeps beside it.
pub trait Reconciler: Send + Sync + 'static {
    type Object: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static;
    type Error: std::error::Error + From<kube::Error> + Send + 'static;

    /// The controller in the logs, e.g. "replicaset controller".
    const LOG_NAME: &'static str;

    fn client(&self) -> &Client;

    /// Drives `fresh`, as just read from the API, toward its spec.
    fn sync(&self, fresh: Self::Object)
        -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// Drops what the controller keeps of an object that is gone.
    fn forget(&self, _gone: &Self::Object) {}

    /// When to retry after a failure, from the default limiter's `backoff`.
    fn retry_after(&self, backoff: Duration) -> Duration {
        backoff
    }
}

/// A reconciler with the consecutive failures of each object it syncs.
struct Looped<R> {
    reconciler: R,
    retries: Retries,
}

/// Runs `controller` with `reconciler` until its task is aborted.
pub async fn run<R: Reconciler>(controller: Controller<R::Object>, reconciler: R) {
    let context = Arc::new(Looped {
        reconciler,
        retries: Retries::default(),
    });
    controller
        .run(reconcile::<R>, error_policy::<R>, context)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "{}", R::LOG_NAME);
            }
        })
        .await;
}

async fn reconcile<R: Reconciler>(
    cached: Arc<R::Object>,
    ctx: Arc<Looped<R>>,
) -> Result<Action, R::Error> {
    let key = key_of(cached.as_ref());
    let namespace = cached.namespace().unwrap_or_default();
    let api = Api::<R::Object>::namespaced(ctx.reconciler.client().clone(), &namespace);
    let Some(fresh) = api.get_opt(&cached.name_any()).await? else {
        ctx.reconciler.forget(&cached);
        ctx.retries.succeeded(&key);
        return Ok(Action::await_change());
    };
    let action = ctx.reconciler.sync(fresh).await?;
    ctx.retries.succeeded(&key);
    Ok(action)
}

fn error_policy<R: Reconciler>(
    object: Arc<R::Object>,
    err: &R::Error,
    ctx: Arc<Looped<R>>,
) -> Action {
    let key = key_of(object.as_ref());
    tracing::info!(object = %key, %err, "{}: sync failed", R::LOG_NAME);
    let backoff = ctx.retries.failed(&key);
    Action::requeue(ctx.reconciler.retry_after(backoff))
}
