//! peapod's object store: Kubernetes objects kept in SQLite the way the API server keeps them in
//! etcd, with a global resourceVersion, optimistic concurrency, core/v1 Event aggregation and a
//! gapless list + watch. Objects of any kind are reachable as JSON values keyed at run time
//! ([`ResourceKey`], `Store::*_raw`), the API a generic API server sits on; the typed API over
//! k8s-openapi types is a thin layer over it.

mod db;
mod error;
mod events;
mod history;
mod key;
mod list;
mod meta;
pub mod meta_rules;
mod options;
mod readers;
mod snapshot;
mod store;
mod watch;
mod writer;

pub use db::DATABASE_MODE;
pub use error::StoreError;
pub use key::ResourceKey;
pub use list::{ListOptions, Predicate, RawList};
pub use meta::generate_name;
pub use options::{DeleteOptionsRaw, Deleted, StoreRules, UpdateRules, Updated, WriteOptions};
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
