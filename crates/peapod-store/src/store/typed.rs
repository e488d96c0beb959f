//! The typed API over k8s-openapi types: a thin layer over the raw API that encodes and decodes.

use serde_json::Value;

use crate::key::{ObjectKey, ResourceKey};
use crate::list::ListOptions;
use crate::meta_rules::{spec_update, status_update};
use crate::options::{Updated, WriteOptions};
use crate::watch::WatchStream;
use crate::{Object, Store, StoreError};

impl Store {
    /// Creates `obj`; the store sets uid, creationTimestamp and resourceVersion (a generation
    /// is kept as given).
    pub fn create<K: Object>(&self, obj: K) -> Result<K, StoreError> {
        let ty = ResourceKey::of::<K>();
        let value = self.create_raw(&ty, serde_json::to_value(&obj)?, &WriteOptions::default())?;
        decode_value(&ty, value)
    }

    pub fn get<K: Object>(&self, namespace: &str, name: &str) -> Result<Option<K>, StoreError> {
        let ty = ResourceKey::of::<K>();
        let value = self.get_raw(&ty, namespace, name)?;
        value.map(|value| decode_value(&ty, value)).transpose()
    }

    /// All objects of `K`, in one namespace or all, sorted by namespace then name.
    pub fn list<K: Object>(&self, namespace: Option<&str>) -> Result<Vec<K>, StoreError> {
        let ty = ResourceKey::of::<K>();
        let options = ListOptions {
            namespace: namespace.map(str::to_owned),
            ..ListOptions::default()
        };
        decode_values(&ty, self.list_raw(&ty, &options)?.items)
    }

    /// Replaces everything but `status`; a set resourceVersion must match the stored one.
    pub fn update<K: Object>(&self, obj: K) -> Result<K, StoreError> {
        self.update_typed(obj, spec_update)
    }

    /// Replaces only `status`; a set resourceVersion must match the stored one.
    pub fn update_status<K: Object>(&self, obj: K) -> Result<K, StoreError> {
        self.update_typed(obj, status_update)
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
        let ty = ResourceKey::of::<K>();
        let options = WriteOptions::default();
        let updated = self.update_raw(&ty, namespace, name, &options, |old| {
            let mut obj: K = decode_value(&ty, old.clone())?;
            if !f(&mut obj) {
                return Ok::<_, StoreError>(old.clone());
            }
            Ok(serde_json::to_value(&obj)?)
        })?;
        match updated {
            Updated::Unchanged(_) => Ok(None),
            changed => decode_value(&ty, changed.into_object()).map(Some),
        }
    }

    /// Removes the object (finalizers or not) and returns its last state, carrying the
    /// deletion's resourceVersion.
    pub fn delete<K: Object>(&self, namespace: &str, name: &str) -> Result<K, StoreError> {
        let ty = ResourceKey::of::<K>();
        let key = ty.object(Some(namespace), name);
        let value = self.write(false, |w| {
            let old = w.existing(&key)?;
            w.remove(old)
        })?;
        decode_value(&ty, value)
    }

    /// The current list, its resourceVersion, and a stream of every later change (no gap).
    pub fn list_watch<K: Object>(
        &self,
        namespace: Option<&str>,
    ) -> Result<(Vec<K>, String, WatchStream), StoreError> {
        let ty = ResourceKey::of::<K>();
        let (list, stream) = self.list_watch_raw(&ty, namespace, None)?;
        let items = decode_values(&ty, list.items)?;
        Ok((items, list.resource_version.to_string(), stream))
    }

    /// Updates the object named by `obj` with the value `derive(stored, obj)` gives.
    fn update_typed<K: Object>(
        &self,
        obj: K,
        derive: fn(&Value, &Value) -> Value,
    ) -> Result<K, StoreError> {
        let key = key_of(&obj)?;
        let incoming = serde_json::to_value(&obj)?;
        let options = WriteOptions::default();
        let updated = self.update_raw(&key.ty, &key.namespace, &key.name, &options, |old| {
            Ok::<_, StoreError>(derive(old, &incoming))
        })?;
        decode_value(&key.ty, updated.into_object())
    }
}

fn key_of<K: Object>(obj: &K) -> Result<ObjectKey, StoreError> {
    let metadata = obj.metadata();
    let key = ResourceKey::of::<K>().object(
        metadata.namespace.as_deref(),
        metadata.name.as_deref().unwrap_or_default(),
    );
    if key.name.is_empty() {
        return Err(key.invalid("metadata.name: Required value"));
    }
    Ok(key)
}

/// Decodes a stored value of kind `ty`; errors name the object.
fn decode_value<K: Object>(ty: &ResourceKey, value: Value) -> Result<K, StoreError> {
    let field = |name| crate::meta::str_field(&value, name);
    ty.object(field("namespace"), field("name").unwrap_or_default())
        .decode(&value)
}

fn decode_values<K: Object>(ty: &ResourceKey, values: Vec<Value>) -> Result<Vec<K>, StoreError> {
    values
        .into_iter()
        .map(|value| decode_value(ty, value))
        .collect()
}
