//! peapod's object store: Kubernetes objects kept in SQLite the way the API server keeps them in
//! etcd, with a global resourceVersion, optimistic concurrency, core/v1 Event aggregation and a
//! gapless list + watch.

mod db;
mod error;
mod events;
mod key;
mod meta;
mod store;
mod watch;

pub use db::DATABASE_MODE;
pub use error::StoreError;
pub use store::{Store, StoreOptions};
pub use watch::{WatchEvent, WatchEventType, WatchStream};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{de::DeserializeOwned, Serialize};

/// A Kubernetes object type the store can keep: any k8s-openapi resource with `ObjectMeta`.
pub trait Object:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Object for T where
    T: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + 'static
{
}
