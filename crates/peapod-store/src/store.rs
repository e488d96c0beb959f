//! The `Store`: typed CRUD over Kubernetes objects with the API server's semantics, one
//! SQLite transaction and one resourceVersion per change, each change broadcast to watchers.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::db::{self, Row};
use crate::key::{ObjectKey, TypeInfo};
use crate::meta;
use crate::watch::{Change, WatchEvent, WatchEventType, WatchStream};
use crate::{Object, StoreError};

/// Attempts at a free name when the name comes from `generateName`.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// Tuning of a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Changes a watcher may fall behind before it gets `Expired`.
    pub watch_capacity: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            watch_capacity: 4096,
        }
    }
}

/// Handle to the object database; clones share one connection and one watch channel.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

struct Inner {
    conn: Mutex<Connection>,
    changes: broadcast::Sender<Arc<Change>>,
}

/// How an update derives the stored object from the caller's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateMode {
    /// `update`: everything but status (kept from the stored object, as for a status subresource).
    Update,
    /// `update_status`: only status.
    Status,
    /// `modify`: the whole object as the closure left it.
    Whole,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(Some(path), StoreOptions::default())
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::open_with(None, StoreOptions::default())
    }

    /// Opens the database at `path` (in memory when `None`) with explicit options.
    pub fn open_with(path: Option<&Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let conn = db::open(path)?;
        let (changes, _) = broadcast::channel(options.watch_capacity.max(1));
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                changes,
            }),
        })
    }

    /// The latest committed resourceVersion.
    pub fn revision(&self) -> Result<u64, StoreError> {
        db::revision(&self.lock())
    }

    /// Creates `obj`; the store sets uid, creationTimestamp, generation and resourceVersion.
    pub fn create<K: Object>(&self, obj: K) -> Result<K, StoreError> {
        self.write(|w| w.create(obj))
    }

    pub fn get<K: Object>(&self, namespace: &str, name: &str) -> Result<Option<K>, StoreError> {
        let key = TypeInfo::of::<K>().object(Some(namespace), name);
        let row = db::load(&self.lock(), &key)?;
        row.map(|row| decode(&key, row.value)).transpose()
    }

    /// All objects of `K`, in one namespace or all, sorted by namespace then name.
    pub fn list<K: Object>(&self, namespace: Option<&str>) -> Result<Vec<K>, StoreError> {
        let ty = TypeInfo::of::<K>();
        let rows = db::load_all(&self.lock(), &ty, ty.namespace_filter(namespace).as_deref())?;
        decode_rows(rows)
    }

    /// Replaces everything but `status`; a set resourceVersion must match the stored one.
    pub fn update<K: Object>(&self, obj: K) -> Result<K, StoreError> {
        self.write(|w| w.update(obj, UpdateMode::Update))
    }

    /// Replaces only `status`; a set resourceVersion must match the stored one.
    pub fn update_status<K: Object>(&self, obj: K) -> Result<K, StoreError> {
        self.write(|w| w.update(obj, UpdateMode::Status))
    }

    /// Read-modify-write under the store's lock: `f` gets the current object and returns whether
    /// it changed it. `Ok(None)` means nothing changed and nothing was written. `f` must not call
    /// the store (it would deadlock).
    pub fn modify<K: Object>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut K) -> bool,
    ) -> Result<Option<K>, StoreError> {
        let key = TypeInfo::of::<K>().object(Some(namespace), name);
        self.write(|w| {
            let old = w.existing(&key)?;
            let mut obj: K = decode(&key, old.value.clone())?;
            if !f(&mut obj) {
                return Ok(None);
            }
            let new = derive_update(&key, obj, &old, UpdateMode::Whole)?;
            w.replace(&old, new)?
                .map(|value| decode(&key, value))
                .transpose()
        })
    }

    /// Removes the object and returns its last state, carrying the deletion's resourceVersion.
    pub fn delete<K: Object>(&self, namespace: &str, name: &str) -> Result<K, StoreError> {
        let key = TypeInfo::of::<K>().object(Some(namespace), name);
        self.write(|w| {
            let old = w.existing(&key)?;
            decode(&key, w.remove(old)?)
        })
    }

    /// The current list, its resourceVersion, and a stream of every later change (no gap).
    pub fn list_watch<K: Object>(
        &self,
        namespace: Option<&str>,
    ) -> Result<(Vec<K>, String, WatchStream), StoreError> {
        let ty = TypeInfo::of::<K>();
        let filter = ty.namespace_filter(namespace);
        let (rows, rv, receiver) = {
            // Writers broadcast while holding this lock, so subscribing under it splits the
            // changes exactly at the listed revision.
            let conn = self.lock();
            let rows = db::load_all(&conn, &ty, filter.as_deref())?;
            (rows, db::revision(&conn)?, self.inner.changes.subscribe())
        };
        let items = decode_rows(rows)?;
        Ok((
            items,
            rv.to_string(),
            WatchStream::new(receiver, ty.key, filter),
        ))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a write dropped its transaction, which rolled it back.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one immediate transaction; on commit, broadcasts its changes in order.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let mut writer = Writer {
            tx: conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
            changes: Vec::new(),
        };
        let result = f(&mut writer)?;
        let Writer { tx, changes } = writer;
        tx.commit()?;
        for change in changes {
            // No receivers is fine: nobody is watching.
            let _ = self.inner.changes.send(Arc::new(change));
        }
        Ok(result)
    }
}

/// A write transaction in progress, collecting the changes to broadcast after commit.
pub(crate) struct Writer<'conn> {
    tx: Transaction<'conn>,
    changes: Vec<Change>,
}

impl Writer<'_> {
    pub fn conn(&self) -> &Connection {
        &self.tx
    }

    pub fn load(&self, key: &ObjectKey) -> Result<Option<Row>, StoreError> {
        db::load(&self.tx, key)
    }

    /// The stored row at `key`, or NotFound.
    pub fn existing(&self, key: &ObjectKey) -> Result<Row, StoreError> {
        self.load(key)?.ok_or_else(|| key.not_found())
    }

    /// Creates `obj` with the API server's create rules, naming it from `generateName` if needed.
    pub fn create<K: Object>(&mut self, mut obj: K) -> Result<K, StoreError> {
        let ty = TypeInfo::of::<K>();
        let metadata = obj.metadata_mut();
        meta::prepare_create(metadata, Timestamp::now());
        let namespace = ty.namespace(metadata.namespace.as_deref());
        metadata.namespace = Some(namespace.clone()).filter(|_| ty.namespaced);
        let key = self.free_key(&ty, &namespace, metadata)?;
        metadata.name = Some(key.name.clone());
        let value = self.insert(&key, serde_json::to_value(&obj)?)?;
        decode(&key, value)
    }

    /// Updates the stored object named by `obj` after checking its resourceVersion precondition.
    pub fn update<K: Object>(&mut self, obj: K, mode: UpdateMode) -> Result<K, StoreError> {
        let key = key_of(&obj)?;
        let old = self.existing(&key)?;
        if let Some(expected) = obj.metadata().resource_version.as_deref() {
            if !expected.is_empty() && expected != old.rv.to_string() {
                return Err(key.conflict());
            }
        }
        let new = derive_update(&key, obj, &old, mode)?;
        let value = self.replace(&old, new)?.unwrap_or(old.value);
        decode(&key, value)
    }

    /// Stores a new object at `key`; AlreadyExists when taken.
    pub fn insert(&mut self, key: &ObjectKey, value: Value) -> Result<Value, StoreError> {
        if self.load(key)?.is_some() {
            return Err(key.already_exists());
        }
        self.commit_change(key, value, WatchEventType::Added)
    }

    /// Stores `new` over `old`; `None` (and no new revision) when nothing would change.
    pub fn replace(&mut self, old: &Row, mut new: Value) -> Result<Option<Value>, StoreError> {
        meta::set_resource_version(&mut new, old.rv);
        if new == old.value {
            return Ok(None);
        }
        self.commit_change(&old.key, new, WatchEventType::Modified)
            .map(Some)
    }

    /// Deletes `old`; returns its last state stamped with the deletion's revision.
    pub fn remove(&mut self, old: Row) -> Result<Value, StoreError> {
        db::remove(&self.tx, &old.key)?;
        let rv = db::next_revision(&self.tx)?;
        let mut value = old.value;
        meta::set_resource_version(&mut value, rv);
        self.record(&old.key, WatchEventType::Deleted, &value, rv);
        Ok(value)
    }

    fn commit_change(
        &mut self,
        key: &ObjectKey,
        mut value: Value,
        kind: WatchEventType,
    ) -> Result<Value, StoreError> {
        let rv = db::next_revision(&self.tx)?;
        meta::set_resource_version(&mut value, rv);
        db::put(&self.tx, key, rv, &value)?;
        self.record(key, kind, &value, rv);
        Ok(value)
    }

    fn record(&mut self, key: &ObjectKey, kind: WatchEventType, value: &Value, rv: u64) {
        self.changes.push(Change {
            type_key: key.ty.key.clone(),
            namespace: key.namespace.clone(),
            event: WatchEvent {
                kind,
                object: value.clone(),
                resource_version: rv,
            },
        });
    }

    /// The key a new object gets: its name, or a free one generated from `generateName`.
    fn free_key(
        &self,
        ty: &TypeInfo,
        namespace: &str,
        metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Result<ObjectKey, StoreError> {
        let given = metadata.name.as_deref().unwrap_or_default();
        let key = ty.object(Some(namespace), given);
        if ty.namespaced && namespace.is_empty() {
            return Err(key.invalid("metadata.namespace: Required value"));
        }
        if metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(key.invalid(
                "metadata.resourceVersion: Invalid value: \
                 resourceVersion should not be set on objects to be created",
            ));
        }
        if !given.is_empty() {
            return Ok(key);
        }
        let Some(prefix) = metadata.generate_name.as_deref().filter(|p| !p.is_empty()) else {
            return Err(
                key.invalid("metadata.name: Required value: name or generateName is required")
            );
        };
        for _ in 0..GENERATE_NAME_ATTEMPTS {
            let candidate = ty.object(Some(namespace), &meta::generate_name(prefix));
            if self.load(&candidate)?.is_none() {
                return Ok(candidate);
            }
        }
        Err(ty.object(Some(namespace), prefix).already_exists())
    }
}

/// The value an update stores, from the caller's object and the stored row.
fn derive_update<K: Object>(
    key: &ObjectKey,
    mut obj: K,
    old: &Row,
    mode: UpdateMode,
) -> Result<Value, StoreError> {
    let old_meta = serde_json::from_value(old.value.get("metadata").cloned().unwrap_or_default())
        .map_err(|source| key.decode(source))?;
    if mode == UpdateMode::Status {
        let mut value = old.value.clone();
        meta::copy_status(&mut value, &serde_json::to_value(&obj)?);
        return Ok(value);
    }
    meta::carry_over(obj.metadata_mut(), &old_meta).map_err(|message| key.invalid(message))?;
    let mut value = serde_json::to_value(&obj)?;
    if mode == UpdateMode::Update {
        meta::copy_status(&mut value, &old.value);
    }
    meta::bump_generation(&mut value, &old.value);
    Ok(value)
}

fn key_of<K: Object>(obj: &K) -> Result<ObjectKey, StoreError> {
    let metadata = obj.metadata();
    let key = TypeInfo::of::<K>().object(
        metadata.namespace.as_deref(),
        metadata.name.as_deref().unwrap_or_default(),
    );
    if key.name.is_empty() {
        return Err(key.invalid("metadata.name: Required value"));
    }
    Ok(key)
}

pub(crate) fn decode<K: Object>(key: &ObjectKey, value: Value) -> Result<K, StoreError> {
    serde_json::from_value(value).map_err(|source| key.decode(source))
}

pub(crate) fn decode_rows<K: Object>(rows: Vec<Row>) -> Result<Vec<K>, StoreError> {
    rows.into_iter()
        .map(|row| decode(&row.key, row.value))
        .collect()
}

#[cfg(test)]
mod tests;
