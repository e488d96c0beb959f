//! What callers pass to the raw writes and what they get back.

use serde_json::Value;

/// Options of `create_raw` and `update_raw`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Run every rule, then roll back: nothing stored, broadcast, or revision consumed.
    pub dry_run: bool,
}

/// Options of `delete_raw`: kube's `DeleteOptions.preconditions` and `dryRun`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptionsRaw {
    /// Delete only the object with this uid.
    pub uid: Option<String>,
    /// Delete only if the stored object is at this resourceVersion.
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// The outcome of `update_raw`.
#[derive(Clone, Debug, PartialEq)]
pub enum Updated {
    /// A new revision was stored.
    Written(Value),
    /// The object was already as asked: no new revision, the stored object.
    Unchanged(Value),
    /// The update took the last finalizer of an object being deleted, so it was removed; the
    /// value is its last state, with the deletion's resourceVersion.
    Removed(Value),
}

impl Updated {
    pub fn object(&self) -> &Value {
        match self {
            Updated::Written(value) | Updated::Unchanged(value) | Updated::Removed(value) => value,
        }
    }

    pub fn into_object(self) -> Value {
        match self {
            Updated::Written(value) | Updated::Unchanged(value) | Updated::Removed(value) => value,
        }
    }

    /// Whether the store changed (a revision was written or the object removed).
    pub fn written(&self) -> bool {
        !matches!(self, Updated::Unchanged(_))
    }
}

/// The outcome of `delete_raw`.
#[derive(Clone, Debug, PartialEq)]
pub enum Deleted {
    /// The object has finalizers: it is kept, marked with a deletionTimestamp.
    Pending(Value),
    /// The object is gone; its last state, with the deletion's resourceVersion.
    Removed(Value),
}

impl Deleted {
    pub fn object(&self) -> &Value {
        match self {
            Deleted::Pending(value) | Deleted::Removed(value) => value,
        }
    }

    pub fn into_object(self) -> Value {
        match self {
            Deleted::Pending(value) | Deleted::Removed(value) => value,
        }
    }
}

/// What a kind decides of its own updates beyond the store's rules (kube's strategy hooks).
pub trait UpdateRules {
    /// Whether an update that took the last finalizer of an object being deleted removes it
    /// (kube's `ShouldDeleteDuringUpdate`); asked only when the store's rule would.
    fn should_delete(&self, _new: &Value, _old: &Value) -> bool {
        true
    }

    /// Whether the update starts a new generation of an object that has one: a `spec`
    /// change, as most kinds' `PrepareForUpdate` says (the start of deletion always does).
    fn new_generation(&self, new: &Value, old: &Value) -> bool {
        new.get("spec") != old.get("spec")
    }
}

/// The store's own rules, for writers with no kind strategy.
pub struct StoreRules;

impl UpdateRules for StoreRules {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn outcomes_expose_their_object() {
        let value = json!({"a": 1});
        assert!(Updated::Written(value.clone()).written());
        assert!(Updated::Removed(value.clone()).written());
        assert!(!Updated::Unchanged(value.clone()).written());
        assert_eq!(Updated::Unchanged(value.clone()).object(), &value);
        assert_eq!(Deleted::Pending(value.clone()).into_object(), value);
    }
}
