//! SMD's `merge.Updater` (`merge/update.go`): how a write changes ownership. An update gives
//! its manager every field it added or changed; an apply makes its manager own exactly the
//! fields of its configuration, removes those it owned before and no longer applies (unless
//! someone else owns them too), and fails on a changed field another manager owns unless
//! forced, in which case it takes the field over.

use serde_json::Value;

use super::managed::{Managers, VersionedSet};
use super::path::{values_equal, Path};
use super::set::Set;
use super::typed::{Comparison, Walker};

/// Fields another manager owns that a write would change: (manager identifier, path), in
/// manager then path order.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflicts(pub Vec<(String, Path)>);

impl Conflicts {
    fn from_managers(sets: &Managers) -> Conflicts {
        Conflicts(
            sets.iter()
                .flat_map(|(manager, v)| v.set.paths().into_iter().map(|p| (manager.clone(), p)))
                .collect(),
        )
    }

    pub fn paths(&self) -> Set {
        let mut set = Set::new();
        for (_, path) in &self.0 {
            set.insert(path);
        }
        set
    }
}

/// The updater of one kind: its walkers and the fields its strategy resets (never owned).
pub struct Updater<'s> {
    pub walker: Walker<'s>,
    pub ignored: Set,
}

impl Updater<'_> {
    /// Takes the fields `new` changes from `live` away from every manager but `workflow`
    /// (conflicts unless `force`) and returns the comparison.
    fn update(
        &self,
        live: &Value,
        new: &Value,
        managers: &mut Managers,
        workflow: &str,
        force: bool,
    ) -> Result<Comparison, Conflicts> {
        let compare = self.walker.compare(live, new).exclude(&self.ignored);
        let changed = compare.modified.union(&compare.added);
        let mut conflicts = Managers::new();
        for (manager, versioned) in managers.iter() {
            if manager == workflow {
                continue;
            }
            let conflict = versioned.set.intersection(&changed);
            if !conflict.is_empty() {
                let entry = VersionedSet {
                    set: conflict,
                    ..versioned.clone()
                };
                conflicts.insert(manager.clone(), entry);
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(Conflicts::from_managers(&conflicts));
        }
        for (manager, versioned) in managers.iter_mut() {
            if manager == workflow {
                continue;
            }
            if let Some(conflict) = conflicts.get(manager) {
                versioned.set = versioned.set.difference(&conflict.set);
            }
            if !compare.removed.is_empty() {
                versioned.set = versioned.set.difference(&compare.removed);
            }
        }
        managers.retain(|_, versioned| !versioned.set.is_empty());
        Ok(compare)
    }

    /// A create, update or non-apply patch from `live` to `new` by `manager`.
    pub fn update_managers(
        &self,
        live: &Value,
        new: &Value,
        version: &str,
        managers: &mut Managers,
        manager: &str,
    ) {
        let Ok(compare) = self.update(live, new, managers, manager, true) else {
            return;
        };
        let previous = managers
            .get(manager)
            .map(|v| v.set.clone())
            .unwrap_or_default();
        let set = previous
            .difference(&compare.removed)
            .union(&compare.modified)
            .union(&compare.added)
            .recursive_difference(&self.ignored);
        if set.is_empty() {
            managers.remove(manager);
        } else {
            let versioned = VersionedSet {
                set,
                api_version: version.to_owned(),
                applied: false,
            };
            managers.insert(manager.to_owned(), versioned);
        }
    }

    /// Applies `config` to `live` for `manager`: the new object (`None` when nothing changes)
    /// with `managers` updated, or the conflicts.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: &mut Managers,
        manager: &str,
        force: bool,
    ) -> Result<Option<Value>, Conflicts> {
        let merged = self.walker.merge(live, config);
        let last = managers.get(manager).map(|v| v.set.clone());
        let set = self
            .walker
            .field_set(config)
            .recursive_difference(&self.ignored);
        let versioned = VersionedSet {
            set,
            api_version: version.to_owned(),
            applied: true,
        };
        managers.insert(manager.to_owned(), versioned);
        let new = match last.filter(|set| !set.is_empty()) {
            Some(last) => self.prune(&merged, managers, &last),
            None => merged,
        };
        self.update(live, &new, managers, manager, force)?;
        Ok((!values_equal(live, &new)).then_some(new))
    }

    /// Removes the fields the applier owned last time and no longer applies, unless another
    /// manager owns them or they were never the applier's to remove.
    fn prune(&self, merged: &Value, managers: &Managers, last: &Set) -> Value {
        let walker = &self.walker;
        let pruned = walker.remove_items(merged, &walker.ensure_named(last));
        // Add back what any manager (the applier's new configuration included) owns.
        let managed = managers
            .values()
            .fold(Set::new(), |all, v| all.union(&v.set));
        let merged_set = walker.ensure_named(&walker.field_set(merged));
        let pruned_set = walker.ensure_named(&walker.field_set(&pruned));
        let keep = pruned_set.union(&walker.ensure_named(&managed));
        let pruned = walker.remove_items(merged, &merged_set.difference(&keep));
        // Remove only what the applier owned (not unowned or updaters' fields).
        let pruned_set = walker.ensure_named(&walker.field_set(&pruned));
        let gone = merged_set
            .difference(&pruned_set)
            .intersection(&walker.ensure_named(last));
        walker.remove_items(merged, &gone)
    }
}
