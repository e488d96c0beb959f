//! The runtime-keyed API: objects of any kind as JSON values, with kube-apiserver's generic
//! registry semantics (create/update/delete rules, preconditions, finalizers, dry run, paged
//! lists, watches from a revision). All calls are synchronous; async callers use
//! `spawn_blocking`.

use serde_json::Value;

use crate::db;
use crate::key::ResourceKey;
use crate::list::{self, ListOptions, Predicate, RawList};
use crate::options::{DeleteOptionsRaw, Deleted, StoreRules, UpdateRules, Updated, WriteOptions};
use crate::watch::{WatchFilter, WatchStream};
use crate::{Store, StoreError};

/// Times `list_watch_raw` lists again when more changes than the history keeps were committed
/// between its list and its watch.
const LIST_WATCH_ATTEMPTS: usize = 3;

impl Store {
    /// The object `namespace/name` (namespace ignored for cluster-scoped kinds).
    pub fn get_raw(
        &self,
        ty: &ResourceKey,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, StoreError> {
        let key = ty.object(Some(namespace), name);
        Ok(self.read(|conn| db::load(conn, &key))?.map(|row| row.value))
    }

    /// One page of the objects of `ty`, sorted by namespace then name; see [`ListOptions`].
    pub fn list_raw(&self, ty: &ResourceKey, options: &ListOptions) -> Result<RawList, StoreError> {
        self.read(|conn| list::read_page(conn, self.history(), ty, options))
    }

    /// Creates `value`: the store sets uid, creationTimestamp and resourceVersion, and names it
    /// from `generateName` when it has no name. A generation is stored as given (the API
    /// server's strategies give one to the kinds that have it).
    pub fn create_raw(
        &self,
        ty: &ResourceKey,
        value: Value,
        options: &WriteOptions,
    ) -> Result<Value, StoreError> {
        self.write(options.dry_run, |w| w.create_value(ty, value))
    }

    /// Read-modify-write under the write lock (kube's GuaranteedUpdate): `f` gets the stored
    /// object and returns the new one, to which the update rules apply: a non-empty
    /// resourceVersion must match the stored one (Conflict), system metadata is kept, an
    /// existing generation follows `spec` and the start of deletion, an unchanged object writes
    /// nothing, and taking the last finalizer of an object being deleted removes it. `f` must
    /// not call the store.
    pub fn update_raw<E, F>(
        &self,
        ty: &ResourceKey,
        namespace: &str,
        name: &str,
        options: &WriteOptions,
        f: F,
    ) -> Result<Updated, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Value) -> Result<Value, E>,
    {
        self.update_raw_with(ty, namespace, name, options, &StoreRules, f)
    }

    /// [`Store::update_raw`] for a kind with [`UpdateRules`] of its own: what starts a new
    /// generation, and whether an update that took the last finalizer of an object being
    /// deleted removes it (kube's `ShouldDeleteDuringUpdate`).
    pub fn update_raw_with<E, F>(
        &self,
        ty: &ResourceKey,
        namespace: &str,
        name: &str,
        options: &WriteOptions,
        rules: &dyn UpdateRules,
        f: F,
    ) -> Result<Updated, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Value) -> Result<Value, E>,
    {
        let key = ty.object(Some(namespace), name);
        self.write(options.dry_run, |w| {
            let old = w.existing(&key)?;
            let new = f(&old.value)?;
            Ok(w.update_value(old, new, rules)?)
        })
    }

    /// Deletes the object after checking `options`' preconditions (Conflict when they fail).
    /// An object with finalizers is kept, marked with deletionTimestamp (now) and
    /// deletionGracePeriodSeconds (0) where unset: [`Deleted::Pending`].
    pub fn delete_raw(
        &self,
        ty: &ResourceKey,
        namespace: &str,
        name: &str,
        options: &DeleteOptionsRaw,
    ) -> Result<Deleted, StoreError> {
        let key = ty.object(Some(namespace), name);
        self.write(options.dry_run, |w| {
            let old = w.existing(&key)?;
            w.delete_value(old, options)
        })
    }

    /// The current list (one read transaction, so items and revision agree) and every later
    /// change of `ty` in `namespace`, without gap or overlap. Watch events are not filtered by
    /// `predicate`.
    pub fn list_watch_raw(
        &self,
        ty: &ResourceKey,
        namespace: Option<&str>,
        predicate: Option<Predicate>,
    ) -> Result<(RawList, WatchStream), StoreError> {
        let filter = ty.namespace_filter(namespace);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (rows, revision) = self.read(|conn| {
                Ok((
                    db::load_all(conn, ty, filter.as_deref())?,
                    db::revision(conn)?,
                ))
            })?;
            match self.watch_raw(ty, namespace, revision) {
                Ok(stream) => {
                    let items = rows
                        .into_iter()
                        .map(|row| row.value)
                        .filter(|value| predicate.as_ref().is_none_or(|keep| keep(value)))
                        .collect();
                    let list = RawList {
                        items,
                        resource_version: revision,
                        ..RawList::default()
                    };
                    return Ok((list, stream));
                }
                Err(StoreError::Expired { .. }) if attempt < LIST_WATCH_ATTEMPTS => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Every change of `ty` in `namespace` after `from_rv`, as it happened, then live ones.
    /// `Expired` when changes after `from_rv` are no longer kept (always for a revision from
    /// before the store was opened); a `from_rv` beyond the current revision is fine.
    pub fn watch_raw(
        &self,
        ty: &ResourceKey,
        namespace: Option<&str>,
        from_rv: u64,
    ) -> Result<WatchStream, StoreError> {
        let filter = WatchFilter {
            type_key: ty.storage_kind().to_owned(),
            namespace: ty.namespace_filter(namespace),
        };
        self.history().watch(filter, from_rv)
    }
}
