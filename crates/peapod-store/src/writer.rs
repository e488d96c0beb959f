//! A write transaction and the API server's write rules: create, update, delete of raw objects,
//! one revision per change, the changes collected for the watch history.

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::Value;

use crate::db::{self, Row};
use crate::key::{ObjectKey, ResourceKey};
use crate::meta;
use crate::options::{DeleteOptionsRaw, Deleted, UpdateRules, Updated};
use crate::watch::{Change, WatchEvent, WatchEventType};
use crate::{Object, StoreError};

/// Attempts at a free name when the name comes from `generateName`.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// A write transaction in progress, collecting the changes to publish after commit.
pub(crate) struct Writer<'conn> {
    tx: Transaction<'conn>,
    changes: Vec<Change>,
    /// Store nothing and take no revision: results carry the stored revision (or none).
    dry_run: bool,
}

impl<'conn> Writer<'conn> {
    pub fn begin(conn: &'conn mut Connection, dry_run: bool) -> Result<Self, StoreError> {
        Ok(Writer {
            tx: conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
            changes: Vec::new(),
            dry_run,
        })
    }

    /// Commits (or, for a dry run, rolls back) and returns the changes to publish.
    pub fn finish(self) -> Result<Vec<Change>, StoreError> {
        if self.dry_run {
            self.tx.rollback()?;
            return Ok(Vec::new());
        }
        self.tx.commit()?;
        Ok(self.changes)
    }
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

    /// Creates a typed object with the create rules.
    pub fn create<K: Object>(&mut self, obj: K) -> Result<K, StoreError> {
        let value = self.create_value(&ResourceKey::of::<K>(), serde_json::to_value(&obj)?)?;
        let key = ResourceKey::of::<K>().object(
            meta::str_field(&value, "namespace"),
            meta::str_field(&value, "name").unwrap_or_default(),
        );
        key.decode(&value)
    }

    /// Creates `value` with the API server's create rules, naming it from `generateName` if
    /// needed: system fields set, namespace required for namespaced kinds, no resourceVersion.
    pub fn create_value(
        &mut self,
        ty: &ResourceKey,
        mut value: Value,
    ) -> Result<Value, StoreError> {
        if !value.is_object() {
            return Err(ty
                .object(None, "")
                .invalid("the object must be a JSON object"));
        }
        meta::prepare_create(&mut value, Timestamp::now());
        let namespace = ty.namespace(meta::str_field(&value, "namespace"));
        meta::set_namespace(
            &mut value,
            Some(namespace.as_str()).filter(|_| ty.namespaced()),
        );
        let key = self.free_key(ty, &namespace, &value)?;
        meta::set_name(&mut value, &key.name);
        self.insert(&key, value)
    }

    /// Stores `new` over `old` with the update rules: a set resourceVersion must match the
    /// stored one, system metadata is kept, an existing generation follows the kind's
    /// [`UpdateRules::new_generation`] and the start of deletion, and taking the last finalizer
    /// of an object being deleted removes it when the kind's `should_delete` agrees.
    pub fn update_value(
        &mut self,
        old: Row,
        mut new: Value,
        rules: &dyn UpdateRules,
    ) -> Result<Updated, StoreError> {
        let key = old.key.clone();
        if !new.is_object() {
            return Err(key.invalid("the object must be a JSON object"));
        }
        if let Some(expected) = meta::str_field(&new, "resourceVersion") {
            if !expected.is_empty() && expected != old.rv.to_string() {
                return Err(key.conflict());
            }
        }
        meta::carry_over(&mut new, &old.value).map_err(|message| key.invalid(message))?;
        let new_generation = rules.new_generation(&new, &old.value);
        meta::bump_generation(&mut new, &old.value, new_generation);
        if meta::empties_finalizers(&new, &old.value) && rules.should_delete(&new, &old.value) {
            let last = Row { value: new, ..old };
            return self.remove(last).map(Updated::Removed);
        }
        Ok(match self.replace(&old, new)? {
            Some(value) => Updated::Written(value),
            None => Updated::Unchanged(old.value),
        })
    }

    /// Deletes `old` after checking the preconditions; with finalizers it is only marked.
    pub fn delete_value(
        &mut self,
        old: Row,
        options: &DeleteOptionsRaw,
    ) -> Result<Deleted, StoreError> {
        check_preconditions(&old, options)?;
        if !meta::has_finalizers(&old.value) {
            return self.remove(old).map(Deleted::Removed);
        }
        let mut pending = old.value.clone();
        meta::mark_deleting(&mut pending, Timestamp::now());
        let stored = self.replace(&old, pending)?;
        Ok(Deleted::Pending(stored.unwrap_or(old.value)))
    }

    /// Stores a new object at `key`; AlreadyExists when taken.
    pub fn insert(&mut self, key: &ObjectKey, value: Value) -> Result<Value, StoreError> {
        if self.load(key)?.is_some() {
            return Err(key.already_exists());
        }
        self.commit_change(key, value, WatchEventType::Added, None)
    }

    /// Stores `new` over `old` as it is; `None` (and no new revision) when nothing would change.
    pub fn replace(&mut self, old: &Row, mut new: Value) -> Result<Option<Value>, StoreError> {
        meta::set_resource_version(&mut new, old.rv);
        if new == old.value {
            return Ok(None);
        }
        self.commit_change(&old.key, new, WatchEventType::Modified, Some(old))
            .map(Some)
    }

    /// Deletes `old`; returns its last state stamped with the deletion's revision.
    pub fn remove(&mut self, old: Row) -> Result<Value, StoreError> {
        let mut value = old.value;
        if self.dry_run {
            meta::set_resource_version(&mut value, old.rv);
            return Ok(value);
        }
        db::remove(&self.tx, &old.key)?;
        let rv = db::next_revision(&self.tx)?;
        meta::set_resource_version(&mut value, rv);
        let event = WatchEvent {
            kind: WatchEventType::Deleted,
            object: value.clone(),
            resource_version: rv,
            previous: None,
        };
        self.record(&old.key, event, Some(old.rv));
        Ok(value)
    }

    /// Stores `value` at `key` with the next revision; `previous` is the replaced row.
    fn commit_change(
        &mut self,
        key: &ObjectKey,
        mut value: Value,
        kind: WatchEventType,
        previous: Option<&Row>,
    ) -> Result<Value, StoreError> {
        if self.dry_run {
            match previous.map(|row| row.rv) {
                Some(rv) => meta::set_resource_version(&mut value, rv),
                None => meta::clear_resource_version(&mut value),
            }
            return Ok(value);
        }
        let rv = db::next_revision(&self.tx)?;
        meta::set_resource_version(&mut value, rv);
        db::put(&self.tx, key, rv, &value)?;
        let event = WatchEvent {
            kind,
            object: value.clone(),
            resource_version: rv,
            previous: previous.map(|row| row.value.clone()),
        };
        self.record(key, event, None);
        Ok(value)
    }

    fn record(&mut self, key: &ObjectKey, event: WatchEvent, removed_rv: Option<u64>) {
        self.changes.push(Change {
            type_key: key.ty.storage_kind().to_owned(),
            namespace: key.namespace.clone(),
            event,
            removed_rv,
        });
    }

    /// The key a new object gets: its name, or a free one generated from `generateName`.
    fn free_key(
        &self,
        ty: &ResourceKey,
        namespace: &str,
        value: &Value,
    ) -> Result<ObjectKey, StoreError> {
        let given = meta::str_field(value, "name").unwrap_or_default();
        let key = ty.object(Some(namespace), given);
        if ty.namespaced() && namespace.is_empty() {
            return Err(key.invalid("metadata.namespace: Required value"));
        }
        if meta::str_field(value, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
            return Err(key.invalid(
                "metadata.resourceVersion: Invalid value: \
                 resourceVersion should not be set on objects to be created",
            ));
        }
        if !given.is_empty() {
            return Ok(key);
        }
        let Some(prefix) = meta::str_field(value, "generateName").filter(|p| !p.is_empty()) else {
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

/// kube's delete preconditions: the uid and resourceVersion the caller expects.
fn check_preconditions(old: &Row, options: &DeleteOptionsRaw) -> Result<(), StoreError> {
    let uid = meta::str_field(&old.value, "uid").unwrap_or_default();
    if let Some(expected) = options.uid.as_deref().filter(|expected| *expected != uid) {
        return Err(old.key.precondition_failed(format!(
            "Precondition failed: UID in precondition: {expected}, UID in object meta: {uid}"
        )));
    }
    let rv = old.rv.to_string();
    if let Some(expected) = options.resource_version.as_deref().filter(|e| *e != rv) {
        return Err(old.key.precondition_failed(format!(
            "Precondition failed: ResourceVersion in precondition: {expected}, \
             ResourceVersion in object meta: {rv}"
        )));
    }
    Ok(())
}
