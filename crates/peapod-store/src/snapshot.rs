//! A kind's objects as they were at an earlier revision, for the later pages of a paged list:
//! the current rows with the changes since that revision undone, newest first, from the watch
//! history (which keeps the object each change replaced or removed), as etcd serves a list at
//! its first page's revision.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;

use crate::meta;
use crate::watch::{Change, WatchEventType};

/// A stored object's place in its kind's list: namespace ("" when cluster-scoped), then name.
pub(crate) type ListKey = (String, String);

/// The objects changed after a snapshot's revision: what each was then and whether it is now.
#[derive(Debug, Default)]
pub(crate) struct Rewind {
    changed: BTreeMap<ListKey, Changed>,
}

#[derive(Debug)]
pub(crate) struct Changed {
    /// The object at the snapshot's revision (`None`: it did not exist).
    pub then: Option<Value>,
    /// Whether it exists at the current revision.
    pub exists_now: bool,
}

impl Rewind {
    /// Undoes `changes`, every change of the listed kind after the snapshot's revision up to
    /// the current one, in revision order.
    pub fn new(changes: &[Arc<Change>]) -> Rewind {
        let mut changed: BTreeMap<ListKey, Changed> = BTreeMap::new();
        for change in changes.iter().rev() {
            let Some(then) = state_before(change) else {
                continue;
            };
            let name = meta::str_field(&change.event.object, "name").unwrap_or_default();
            let key = (change.namespace.clone(), name.to_owned());
            let exists_now = change.event.kind != WatchEventType::Deleted;
            match changed.entry(key) {
                // An older change: the object was as it left it before.
                Entry::Occupied(mut newer) => newer.get_mut().then = then,
                Entry::Vacant(newest) => {
                    newest.insert(Changed { then, exists_now });
                }
            }
        }
        Rewind { changed }
    }

    /// The changed objects after `after` (all when `None`), in list order.
    pub fn after(
        &self,
        after: Option<(&str, &str)>,
    ) -> impl Iterator<Item = (&ListKey, &Changed)> + '_ {
        let start = match after {
            Some((namespace, name)) => Bound::Excluded((namespace.to_owned(), name.to_owned())),
            None => Bound::Unbounded,
        };
        self.changed.range((start, Bound::Unbounded))
    }

    /// How many more objects there were after `after` at the snapshot than there are now.
    pub fn count_difference_after(&self, after: (&str, &str)) -> i64 {
        self.after(Some(after))
            .map(|(_, changed)| i64::from(changed.then.is_some()) - i64::from(changed.exists_now))
            .sum()
    }
}

/// The object as it was before `change`: `Some(None)` when the change created it, `None` for a
/// change that is not a write.
fn state_before(change: &Change) -> Option<Option<Value>> {
    let event = &change.event;
    match event.kind {
        WatchEventType::Added => Some(None),
        WatchEventType::Modified => Some(event.previous.clone()),
        WatchEventType::Deleted => {
            let mut last = event.object.clone();
            if let Some(rv) = change.removed_rv {
                meta::set_resource_version(&mut last, rv);
            }
            Some(Some(last))
        }
        WatchEventType::Bookmark => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::watch::WatchEvent;

    fn change(kind: WatchEventType, name: &str, rv: u64, object: Value) -> Arc<Change> {
        let previous = (kind == WatchEventType::Modified).then(|| json!({"v": "before"}));
        let mut object = object;
        object["metadata"] = json!({"name": name, "resourceVersion": rv.to_string()});
        Arc::new(Change {
            type_key: "Pod".into(),
            namespace: "default".into(),
            event: WatchEvent {
                kind,
                object,
                resource_version: rv,
                previous,
            },
            removed_rv: (kind == WatchEventType::Deleted).then_some(rv - 1),
        })
    }

    fn key(name: &str) -> ListKey {
        ("default".into(), name.into())
    }

    #[test]
    fn undoing_changes_newest_first_leaves_the_state_at_the_snapshot() {
        let changes = [
            change(WatchEventType::Added, "new", 11, json!({})),
            change(
                WatchEventType::Modified,
                "edited",
                12,
                json!({"v": "after"}),
            ),
            change(WatchEventType::Deleted, "gone", 13, json!({"v": "last"})),
            change(WatchEventType::Added, "back", 14, json!({})),
            change(WatchEventType::Deleted, "back", 15, json!({})),
        ];
        let rewind = Rewind::new(&changes);
        let then = |name: &str| rewind.changed[&key(name)].then.clone();
        assert_eq!(then("new"), None);
        assert_eq!(then("edited"), Some(json!({"v": "before"})));
        let gone = then("gone").unwrap();
        assert_eq!(gone["v"], "last");
        assert_eq!(gone["metadata"]["resourceVersion"], "12");
        assert_eq!(then("back"), None);
        assert!(!rewind.changed[&key("back")].exists_now);
        assert!(rewind.changed[&key("new")].exists_now);
        let after_edited: Vec<_> = rewind
            .after(Some(("default", "edited")))
            .map(|(key, _)| key.1.as_str())
            .collect();
        assert_eq!(after_edited, ["gone", "new"]);
        // "gone" existed then and not now, "new" the other way round.
        assert_eq!(rewind.count_difference_after(("default", "edited")), 0);
        assert_eq!(rewind.count_difference_after(("default", "gone")), -1);
    }
}
