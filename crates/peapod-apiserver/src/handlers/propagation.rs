//! Which of the garbage collector's finalizers a delete leaves on an object, as kube-apiserver's
//! generic store decides (`deletionFinalizersForGarbageCollection`, `shouldOrphanDependents`,
//! `shouldDeleteDependents`): the delete's options first, then the object's own finalizers,
//! then the kind's default policy.

use crate::registry::GarbageCollectionPolicy;

/// `metav1.FinalizerOrphanDependents`: the garbage collector strips the object's dependents'
/// ownerReferences to it, then removes this finalizer.
pub(super) const ORPHAN_FINALIZER: &str = "orphan";
/// `metav1.FinalizerDeleteDependents`: the garbage collector deletes the object's dependents
/// and removes this finalizer once none with `blockOwnerDeletion` is left.
pub(super) const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// What a delete asks of the object's dependents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Propagation<'a> {
    /// The deprecated `orphanDependents`, which wins over everything.
    pub orphan_dependents: Option<bool>,
    /// `propagationPolicy`: `Orphan`, `Background` or `Foreground` (validated before).
    pub policy: Option<&'a str>,
}

impl Propagation<'_> {
    /// The finalizers an object with `current` carries after this delete, or `None` when they
    /// stay as they are. The collector's finalizers go last, as kube appends them.
    pub fn finalizers_after(
        &self,
        current: &[String],
        default: GarbageCollectionPolicy,
    ) -> Option<Vec<String>> {
        let mut wanted: Vec<String> = current
            .iter()
            .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
            .cloned()
            .collect();
        if self.orphans(current, default) {
            wanted.push(ORPHAN_FINALIZER.to_owned());
        }
        if self.deletes_in_foreground(current, default) {
            wanted.push(FOREGROUND_FINALIZER.to_owned());
        }
        let same = wanted.iter().all(|f| current.contains(f))
            && current.iter().all(|f| wanted.contains(f));
        (!same).then_some(wanted)
    }

    /// kube's `shouldOrphanDependents`.
    fn orphans(&self, current: &[String], default: GarbageCollectionPolicy) -> bool {
        if default == GarbageCollectionPolicy::Unsupported {
            return false;
        }
        if let Some(orphan) = self.orphan_dependents {
            return orphan;
        }
        match (self.policy, first_gc_finalizer(current)) {
            (Some(policy), _) => policy == "Orphan",
            (None, Some(finalizer)) => finalizer == ORPHAN_FINALIZER,
            (None, None) => default == GarbageCollectionPolicy::OrphanDependents,
        }
    }

    /// kube's `shouldDeleteDependents`: Foreground asked for, or already the object's way.
    fn deletes_in_foreground(&self, current: &[String], default: GarbageCollectionPolicy) -> bool {
        if default == GarbageCollectionPolicy::Unsupported || self.orphan_dependents.is_some() {
            return false;
        }
        match self.policy {
            Some(policy) => policy == "Foreground",
            None => first_gc_finalizer(current) == Some(FOREGROUND_FINALIZER),
        }
    }
}

/// The first of the two garbage collector finalizers in `finalizers` (validation keeps an
/// object from holding both).
fn first_gc_finalizer(finalizers: &[String]) -> Option<&'static str> {
    finalizers.iter().find_map(|f| match f.as_str() {
        ORPHAN_FINALIZER => Some(ORPHAN_FINALIZER),
        FOREGROUND_FINALIZER => Some(FOREGROUND_FINALIZER),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use GarbageCollectionPolicy::{DeleteDependents, OrphanDependents, Unsupported};

    const X: &str = "foo.com/x";
    const Y: &str = "bar.com/y";

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The finalizers after the delete: `current` when they stay.
    fn after(
        asked: Propagation<'_>,
        default: GarbageCollectionPolicy,
        current: &[&str],
    ) -> Vec<String> {
        let current = strings(current);
        asked.finalizers_after(&current, default).unwrap_or(current)
    }

    fn orphan_dependents(value: Option<bool>) -> Propagation<'static> {
        Propagation {
            orphan_dependents: value,
            policy: None,
        }
    }

    fn policy(policy: Option<&str>) -> Propagation<'_> {
        Propagation {
            orphan_dependents: None,
            policy,
        }
    }

    /// The object's finalizers, `orphanDependents`, the kind's policy, the finalizers after.
    type OrphanCase = (
        &'static [&'static str],
        Option<bool>,
        GarbageCollectionPolicy,
        &'static [&'static str],
    );

    /// kube's store_test.go `TestStoreDeleteWithOrphanDependents`.
    #[test]
    fn orphan_dependents_then_finalizers_then_the_kind_decide() {
        let with_orphan: &[&str] = &[X, ORPHAN_FINALIZER, Y];
        let others: &[&str] = &[X, Y];
        let only_orphan: &[&str] = &[ORPHAN_FINALIZER];
        #[rustfmt::skip]
        let cases: &[OrphanCase] = &[
            // orphanDependents: true
            (with_orphan, Some(true), DeleteDependents, &[X, ORPHAN_FINALIZER, Y]),
            (others, Some(true), DeleteDependents, &[X, Y, ORPHAN_FINALIZER]),
            (&[], Some(true), DeleteDependents, &[ORPHAN_FINALIZER]),
            (only_orphan, Some(true), DeleteDependents, &[ORPHAN_FINALIZER]),
            // orphanDependents: false wins over an orphaning kind
            (with_orphan, Some(false), OrphanDependents, &[X, Y]),
            (others, Some(false), OrphanDependents, &[X, Y]),
            (&[], Some(false), OrphanDependents, &[]),
            (only_orphan, Some(false), OrphanDependents, &[]),
            // unset: the object's finalizer, else the kind's default
            (with_orphan, None, DeleteDependents, &[X, ORPHAN_FINALIZER, Y]),
            (with_orphan, None, OrphanDependents, &[X, ORPHAN_FINALIZER, Y]),
            (others, None, DeleteDependents, &[X, Y]),
            (others, None, OrphanDependents, &[X, Y, ORPHAN_FINALIZER]),
            (&[], None, DeleteDependents, &[]),
            (&[], None, OrphanDependents, &[ORPHAN_FINALIZER]),
            (only_orphan, None, DeleteDependents, &[ORPHAN_FINALIZER]),
            (only_orphan, None, OrphanDependents, &[ORPHAN_FINALIZER]),
        ];
        for (current, asked, default, expected) in cases {
            assert_eq!(
                after(orphan_dependents(*asked), *default, current),
                strings(expected),
                "{current:?} orphanDependents={asked:?} {default:?}"
            );
        }
    }

    /// kube's store_test.go `TestStoreDeletionPropagation`.
    #[test]
    fn a_propagation_policy_wins_over_finalizers_and_the_kind() {
        #[rustfmt::skip]
        let cases: &[(&[&str], Option<&str>, &[&str])] = &[
            (&[], Some("Foreground"), &[FOREGROUND_FINALIZER]),
            (&[], Some("Background"), &[]),
            (&[], Some("Orphan"), &[ORPHAN_FINALIZER]),
            (&[ORPHAN_FINALIZER], Some("Foreground"), &[FOREGROUND_FINALIZER]),
            (&[ORPHAN_FINALIZER], Some("Background"), &[]),
            (&[ORPHAN_FINALIZER], Some("Orphan"), &[ORPHAN_FINALIZER]),
            (&[ORPHAN_FINALIZER], None, &[ORPHAN_FINALIZER]),
            (&[FOREGROUND_FINALIZER], Some("Foreground"), &[FOREGROUND_FINALIZER]),
            (&[FOREGROUND_FINALIZER], Some("Background"), &[]),
            (&[FOREGROUND_FINALIZER], Some("Orphan"), &[ORPHAN_FINALIZER]),
            (&[FOREGROUND_FINALIZER], None, &[FOREGROUND_FINALIZER]),
        ];
        for (current, asked, expected) in cases {
            for default in [DeleteDependents, OrphanDependents] {
                assert_eq!(
                    after(policy(*asked), default, current),
                    strings(expected),
                    "{current:?} propagationPolicy={asked:?} {default:?}"
                );
            }
        }
        assert_eq!(after(policy(None), DeleteDependents, &[]), strings(&[]));
        assert_eq!(
            after(policy(None), OrphanDependents, &[]),
            strings(&[ORPHAN_FINALIZER])
        );
    }

    /// kube's `TestDeletionFinalizersForGarbageCollection`: an orphaning kind (batch/v1 Job,
    /// apps/v1beta2 ReplicaSet) gets the orphan finalizer from a delete without options; the
    /// same kind served where it deletes its dependents changes nothing.
    #[test]
    fn the_kind_default_applies_to_deletes_without_options() {
        let asked = Propagation::default();
        assert_eq!(
            asked.finalizers_after(&[], OrphanDependents),
            Some(strings(&[ORPHAN_FINALIZER]))
        );
        assert_eq!(asked.finalizers_after(&[], DeleteDependents), None);
    }

    #[test]
    fn kinds_without_garbage_collection_never_get_its_finalizers() {
        for asked in [
            orphan_dependents(Some(true)),
            policy(Some("Orphan")),
            policy(Some("Foreground")),
        ] {
            assert_eq!(asked.finalizers_after(&strings(&[X]), Unsupported), None);
        }
        // Ones already there are taken away, as kube rebuilds the list without them.
        let held = strings(&[ORPHAN_FINALIZER, X]);
        assert_eq!(
            policy(None).finalizers_after(&held, Unsupported),
            Some(strings(&[X]))
        );
    }
}
