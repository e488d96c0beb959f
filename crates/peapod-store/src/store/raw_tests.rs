use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::{
    DeleteOptionsRaw, Deleted, ListOptions, RawList, ResourceKey, UpdateRules, Updated, WatchEvent,
    WatchEventType, WatchStream, WriteOptions,
};

fn widgets() -> ResourceKey {
    ResourceKey::new("example.com", "Widget", "widgets", true)
}

fn gadgets() -> ResourceKey {
    ResourceKey::new("example.com", "Gadget", "gadgets", false)
}

fn widget(namespace: &str, name: &str, size: i64) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"size": size},
    })
}

fn rv(value: &Value) -> u64 {
    value["metadata"]["resourceVersion"]
        .as_str()
        .expect("stored objects have a resourceVersion")
        .parse()
        .expect("resourceVersion is decimal")
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn create(store: &Store, value: Value) -> Value {
    store
        .create_raw(&widgets(), value, &WriteOptions::default())
        .unwrap()
}

/// Sets `spec.size` of a widget through `update_raw`.
fn resize(store: &Store, name: &str, size: i64, options: &WriteOptions) -> Updated {
    store
        .update_raw(&widgets(), "default", name, options, |old| {
            let mut new = old.clone();
            new["spec"]["size"] = json!(size);
            Ok::<_, StoreError>(new)
        })
        .unwrap()
}

fn set_finalizers(store: &Store, name: &str, finalizers: Value) -> Updated {
    store
        .update_raw(
            &widgets(),
            "default",
            name,
            &WriteOptions::default(),
            |old| {
                let mut new = old.clone();
                new["metadata"]["finalizers"] = finalizers;
                Ok::<_, StoreError>(new)
            },
        )
        .unwrap()
}

async fn next_events(watch: &mut WatchStream, count: usize) -> Vec<(WatchEventType, String, u64)> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let event: WatchEvent = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("an event arrives")
            .unwrap()
            .unwrap();
        let name = event.object["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        seen.push((event.kind, name, event.resource_version));
    }
    seen
}

/// A widget of a kind that keeps a generation (its API server strategy sets the first).
fn tracked_widget(namespace: &str, name: &str, size: i64) -> Value {
    let mut value = widget(namespace, name, size);
    value["metadata"]["generation"] = json!(1);
    value
}

#[test]
fn raw_round_trip_of_a_kind_without_a_rust_type() {
    let store = Store::open_in_memory().unwrap();
    let created = create(&store, tracked_widget("default", "w1", 1));
    let meta = &created["metadata"];
    assert_eq!(meta["uid"].as_str().map(str::len), Some(36));
    assert!(meta["creationTimestamp"].is_string());
    assert_eq!((meta["generation"].clone(), rv(&created)), (json!(1), 1));
    assert_eq!(created["kind"], "Widget");

    let got = store.get_raw(&widgets(), "default", "w1").unwrap();
    assert_eq!(got.as_ref(), Some(&created));
    assert!(store.get_raw(&widgets(), "other", "w1").unwrap().is_none());

    let Updated::Written(updated) = resize(&store, "w1", 2, &WriteOptions::default()) else {
        panic!("a new spec is written");
    };
    assert_eq!(
        (updated["metadata"]["generation"].clone(), rv(&updated)),
        (json!(2), 2)
    );
    assert_eq!(updated["metadata"]["uid"], meta["uid"]);

    let deleted = store
        .delete_raw(&widgets(), "default", "w1", &DeleteOptionsRaw::default())
        .unwrap();
    let Deleted::Removed(last) = deleted else {
        panic!("no finalizers: removed at once");
    };
    assert_eq!((last["spec"]["size"].clone(), rv(&last)), (json!(2), 3));
    assert!(store
        .get_raw(&widgets(), "default", "w1")
        .unwrap()
        .is_none());
    assert!(matches!(
        store.delete_raw(&widgets(), "default", "w1", &DeleteOptionsRaw::default()),
        Err(StoreError::NotFound { kind, .. }) if kind == "widgets.example.com"
    ));
}

#[test]
fn raw_create_applies_the_create_rules() {
    let store = Store::open_in_memory().unwrap();
    let ty = widgets();
    let options = WriteOptions::default();
    let no_namespace = json!({"metadata": {"name": "w"}});
    let err = store.create_raw(&ty, no_namespace, &options).unwrap_err();
    assert!(
        err.to_string()
            .contains("metadata.namespace: Required value"),
        "{err}"
    );
    let mut versioned = widget("default", "w", 1);
    versioned["metadata"]["resourceVersion"] = json!("4");
    let err = store.create_raw(&ty, versioned, &options).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert!(store.create_raw(&ty, json!([1]), &options).is_err());

    let generated = json!({"metadata": {"namespace": "default", "generateName": "w-"}});
    let created = store.create_raw(&ty, generated, &options).unwrap();
    assert!(created["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("w-"));
    let name = created["metadata"]["name"].as_str().unwrap().to_owned();
    let again = store.create_raw(&ty, widget("default", &name, 1), &options);
    assert!(matches!(again, Err(StoreError::AlreadyExists { .. })));

    let gadget = json!({"metadata": {"name": "g", "namespace": "ignored"}});
    let gadget = store.create_raw(&gadgets(), gadget, &options).unwrap();
    assert!(gadget["metadata"].get("namespace").is_none());
    assert!(store.get_raw(&gadgets(), "", "g").unwrap().is_some());
}

#[test]
fn raw_update_rules() {
    let store = Store::open_in_memory().unwrap();
    let created = create(&store, widget("default", "w", 1));
    let options = WriteOptions::default();

    let same = store
        .update_raw(&widgets(), "default", "w", &options, |old| {
            Ok::<_, StoreError>(old.clone())
        })
        .unwrap();
    assert_eq!(same, Updated::Unchanged(created.clone()));
    assert_eq!(store.revision().unwrap(), 1);

    let relabeled = store
        .update_raw(&widgets(), "default", "w", &options, |old| {
            let mut new = old.clone();
            new["metadata"]["labels"] = json!({"a": "b"});
            new["metadata"]["uid"] = Value::Null;
            new["metadata"]["generation"] = json!(9);
            Ok::<_, StoreError>(new)
        })
        .unwrap()
        .into_object();
    assert_eq!(relabeled["metadata"]["uid"], created["metadata"]["uid"]);
    assert!(
        relabeled["metadata"].get("generation").is_none(),
        "an update cannot give an object a generation: {relabeled}"
    );

    let stale = store.update_raw(&widgets(), "default", "w", &options, |old| {
        let mut new = old.clone();
        new["metadata"]["resourceVersion"] = json!("1");
        new["spec"]["size"] = json!(5);
        Ok::<_, StoreError>(new)
    });
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );

    #[derive(Debug, PartialEq)]
    enum CallerError {
        Refused,
        Store(String),
    }
    impl From<StoreError> for CallerError {
        fn from(err: StoreError) -> Self {
            CallerError::Store(err.to_string())
        }
    }
    let refused = store.update_raw(&widgets(), "default", "w", &options, |_| {
        Err::<Value, _>(CallerError::Refused)
    });
    assert_eq!(refused, Err(CallerError::Refused));
    let missing = store.update_raw(&widgets(), "default", "nope", &options, |old| {
        Ok::<_, CallerError>(old.clone())
    });
    assert!(matches!(missing, Err(CallerError::Store(m)) if m.contains("not found")));
    assert_eq!(store.revision().unwrap(), 2);
}

#[test]
fn list_filters_pages_and_continues() {
    let store = Store::open_in_memory().unwrap();
    for (namespace, name, size) in [
        ("default", "a", 1),
        ("default", "b", 2),
        ("default", "c", 3),
        ("default", "d", 4),
        ("other", "e", 5),
    ] {
        create(&store, widget(namespace, name, size));
    }
    let even = |value: &Value| value["spec"]["size"].as_i64().unwrap() % 2 == 0;
    let filtered = store
        .list_raw(
            &widgets(),
            &ListOptions {
                predicate: Some(Arc::new(even)),
                ..ListOptions::default()
            },
        )
        .unwrap();
    assert_eq!(names(&filtered.items), ["b", "d"]);
    assert_eq!(
        (filtered.resource_version, filtered.continue_token),
        (5, None)
    );

    let page = |token: Option<String>| -> RawList {
        let options = ListOptions {
            limit: Some(2),
            continue_token: token,
            ..ListOptions::default()
        };
        store.list_raw(&widgets(), &options).unwrap()
    };
    let first = page(None);
    assert_eq!(names(&first.items), ["a", "b"]);
    assert_eq!(
        (first.resource_version, first.remaining_item_count),
        (5, Some(3))
    );
    let second = page(first.continue_token);
    assert_eq!(names(&second.items), ["c", "d"]);
    assert_eq!(
        (second.resource_version, second.remaining_item_count),
        (5, Some(1))
    );
    let third = page(second.continue_token);
    assert_eq!(names(&third.items), ["e"]);
    assert_eq!(
        (third.continue_token, third.remaining_item_count),
        (None, None)
    );

    let in_default = ListOptions {
        namespace: Some("default".into()),
        predicate: Some(Arc::new(even)),
        limit: Some(1),
        ..ListOptions::default()
    };
    let first = store.list_raw(&widgets(), &in_default).unwrap();
    assert_eq!(
        (names(&first.items), first.remaining_item_count),
        (vec!["b".into()], None)
    );
    let rest = ListOptions {
        continue_token: first.continue_token,
        limit: None,
        ..in_default
    };
    assert_eq!(
        names(&store.list_raw(&widgets(), &rest).unwrap().items),
        ["d"]
    );
}

/// One page of widgets after `token`, in `namespace` (all when `None`).
fn widget_page(
    store: &Store,
    namespace: Option<&str>,
    limit: usize,
    token: Option<String>,
) -> Result<RawList, StoreError> {
    let options = ListOptions {
        namespace: namespace.map(str::to_owned),
        limit: Some(limit),
        continue_token: token,
        ..ListOptions::default()
    };
    store.list_raw(&widgets(), &options)
}

#[test]
fn later_pages_show_the_objects_as_they_were_at_the_first_page() {
    let store = Store::open_in_memory().unwrap();
    for name in ["a", "b", "c", "d", "e"] {
        create(&store, widget("default", name, 1));
    }
    create(&store, widget("other", "x", 1));
    let first = widget_page(&store, Some("default"), 2, None).unwrap();
    assert_eq!(names(&first.items), ["a", "b"]);
    let snapshot = first.resource_version;
    let first_everywhere = widget_page(&store, None, 1, None).unwrap();

    // Between the pages: one object changes twice, one goes, others come, one goes and comes
    // back, and another namespace and another kind change too.
    resize(&store, "c", 2, &WriteOptions::default());
    resize(&store, "c", 3, &WriteOptions::default());
    let options = DeleteOptionsRaw::default();
    store
        .delete_raw(&widgets(), "default", "d", &options)
        .unwrap();
    create(&store, widget("default", "bb", 1));
    create(&store, widget("default", "z", 1));
    store
        .delete_raw(&widgets(), "default", "e", &options)
        .unwrap();
    create(&store, widget("default", "e", 7));
    create(&store, widget("other", "y", 1));
    let gadget = json!({"metadata": {"name": "g"}});
    store
        .create_raw(&gadgets(), gadget, &WriteOptions::default())
        .unwrap();

    let second = widget_page(&store, Some("default"), 2, first.continue_token).unwrap();
    assert_eq!(names(&second.items), ["c", "d"]);
    assert_eq!(second.items[0]["spec"]["size"], 1, "c as it was");
    assert_eq!(rv(&second.items[0]), 3);
    assert_eq!(rv(&second.items[1]), 4, "d as it was before its deletion");
    assert_eq!(
        (second.resource_version, second.remaining_item_count),
        (snapshot, Some(1))
    );
    let third = widget_page(&store, Some("default"), 2, second.continue_token).unwrap();
    assert_eq!(names(&third.items), ["e"]);
    assert_eq!(third.items[0]["spec"]["size"], 1, "the e of the snapshot");
    assert_eq!(third.continue_token, None);

    // Across namespaces, the snapshot holds x but not y.
    let rest = widget_page(&store, None, 10, first_everywhere.continue_token).unwrap();
    assert_eq!(names(&rest.items), ["b", "c", "d", "e", "x"]);
    let now = widget_page(&store, None, 10, None).unwrap();
    assert_eq!(names(&now.items), ["a", "b", "bb", "c", "e", "z", "x", "y"]);
}

#[test]
fn a_continue_token_older_than_the_history_is_expired_with_an_inconsistent_token() {
    let options = StoreOptions {
        watch_history: 2,
        ..StoreOptions::default()
    };
    let store = Store::open_with(None, options).unwrap();
    for name in ["a", "b", "c"] {
        create(&store, widget("default", name, 1));
    }
    let first = widget_page(&store, None, 1, None).unwrap();
    assert_eq!(names(&first.items), ["a"]);
    resize(&store, "b", 2, &WriteOptions::default());
    let within_history = widget_page(&store, None, 1, first.continue_token.clone()).unwrap();
    assert_eq!(within_history.items[0]["spec"]["size"], 1);

    create(&store, widget("default", "bb", 1));
    create(&store, widget("default", "d", 1));
    let err = widget_page(&store, None, 1, first.continue_token).unwrap_err();
    assert_eq!((err.code(), err.reason()), (410, "Expired"));
    assert!(
        err.to_string().starts_with(
            "The provided continue parameter is too old to display a consistent list result."
        ),
        "{err}"
    );
    let StoreError::ContinueExpired { continue_token } = err else {
        panic!("expected ContinueExpired, got {err:?}");
    };
    // The token goes on after "a" at the latest revision: an inconsistent list.
    let rest = widget_page(&store, None, 10, Some(continue_token)).unwrap();
    assert_eq!(names(&rest.items), ["b", "bb", "c", "d"]);
    assert_eq!(rest.items[0]["spec"]["size"], 2);
    assert_eq!(rest.resource_version, store.revision().unwrap());
    let more = widget_page(&store, None, 1, None).unwrap();
    let next = widget_page(&store, None, 1, more.continue_token).unwrap();
    assert_eq!(next.resource_version, store.revision().unwrap());
}

#[test]
fn continue_tokens_from_before_a_restart_are_expired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let token = {
        let store = Store::open(&path).unwrap();
        create(&store, widget("default", "a", 1));
        create(&store, widget("default", "b", 1));
        let token = widget_page(&store, None, 1, None).unwrap().continue_token;
        create(&store, widget("default", "c", 1));
        token
    };
    let store = Store::open(&path).unwrap();
    let err = widget_page(&store, None, 1, token).unwrap_err();
    assert!(matches!(err, StoreError::ContinueExpired { .. }), "{err:?}");
    // A list started since the restart pages through its snapshot.
    let first = widget_page(&store, None, 1, None).unwrap();
    store
        .delete_raw(&widgets(), "default", "b", &DeleteOptionsRaw::default())
        .unwrap();
    let second = widget_page(&store, None, 1, first.continue_token).unwrap();
    assert_eq!(names(&second.items), ["b"]);
}

#[test]
fn a_kind_can_keep_an_object_whose_last_finalizer_goes() {
    let store = Store::open_in_memory().unwrap();
    let mut guarded = widget("default", "w", 1);
    guarded["metadata"]["finalizers"] = json!(["example.com/a"]);
    create(&store, guarded);
    let options = DeleteOptionsRaw::default();
    store
        .delete_raw(&widgets(), "default", "w", &options)
        .unwrap();
    struct HeldBySpec;
    impl UpdateRules for HeldBySpec {
        fn should_delete(&self, new: &Value, _old: &Value) -> bool {
            new["spec"]["hold"] != json!(true)
        }
    }
    let held_by_spec = HeldBySpec;
    let release = |hold: bool| {
        move |old: &Value| {
            let mut new = old.clone();
            new["metadata"]["finalizers"] = json!([]);
            new["spec"]["hold"] = json!(hold);
            Ok::<_, StoreError>(new)
        }
    };
    let write = WriteOptions::default();
    let kept = store
        .update_raw_with(
            &widgets(),
            "default",
            "w",
            &write,
            &held_by_spec,
            release(true),
        )
        .unwrap();
    assert!(matches!(kept, Updated::Written(_)), "{kept:?}");
    // Without finalizers in the stored object, the generic rule no longer applies.
    let mut again = kept.into_object();
    again["metadata"]["finalizers"] = json!(["example.com/a"]);
    store
        .update_raw(&widgets(), "default", "w", &write, |_| {
            Ok::<_, StoreError>(again)
        })
        .unwrap();
    let removed = store
        .update_raw_with(
            &widgets(),
            "default",
            "w",
            &write,
            &held_by_spec,
            release(false),
        )
        .unwrap();
    assert!(matches!(removed, Updated::Removed(_)), "{removed:?}");
}

#[test]
fn an_existing_generation_follows_spec_and_the_start_of_deletion() {
    let store = Store::open_in_memory().unwrap();
    let mut guarded = tracked_widget("default", "w", 1);
    guarded["metadata"]["finalizers"] = json!(["example.com/a"]);
    create(&store, guarded);
    create(&store, widget("default", "plain", 1));
    let generation = |name: &str| {
        store.get_raw(&widgets(), "default", name).unwrap().unwrap()["metadata"]["generation"]
            .clone()
    };
    resize(&store, "w", 2, &WriteOptions::default());
    resize(&store, "plain", 2, &WriteOptions::default());
    assert_eq!(
        (generation("w"), generation("plain")),
        (json!(2), Value::Null)
    );
    let options = DeleteOptionsRaw::default();
    store
        .delete_raw(&widgets(), "default", "w", &options)
        .unwrap();
    store
        .delete_raw(&widgets(), "default", "w", &options)
        .unwrap();
    assert_eq!(
        generation("w"),
        json!(3),
        "bumped once, when deletion started"
    );
}

#[test]
fn bad_continue_tokens_are_bad_requests() {
    let store = Store::open_in_memory().unwrap();
    let options = ListOptions {
        continue_token: Some("not a token".into()),
        ..ListOptions::default()
    };
    let err = store.list_raw(&widgets(), &options).unwrap_err();
    assert_eq!((err.code(), err.reason()), (400, "BadRequest"));
    assert!(
        err.to_string().starts_with("continue key is not valid: "),
        "{err}"
    );
}

#[tokio::test]
async fn watch_from_an_old_revision_replays_every_change() {
    let store = Store::open_in_memory().unwrap();
    create(&store, widget("default", "before", 1));
    let from = store.revision().unwrap();
    create(&store, widget("default", "w", 1));
    create(&store, widget("other", "elsewhere", 1));
    resize(&store, "w", 2, &WriteOptions::default());
    store
        .delete_raw(&widgets(), "default", "w", &DeleteOptionsRaw::default())
        .unwrap();
    store
        .create_raw(
            &gadgets(),
            json!({"metadata": {"name": "g"}}),
            &WriteOptions::default(),
        )
        .unwrap();

    let mut watch = store.watch_raw(&widgets(), Some("default"), from).unwrap();
    create(&store, widget("default", "live", 1));
    assert_eq!(
        next_events(&mut watch, 4).await,
        [
            (WatchEventType::Added, "w".into(), 2),
            (WatchEventType::Modified, "w".into(), 4),
            (WatchEventType::Deleted, "w".into(), 5),
            (WatchEventType::Added, "live".into(), 7),
        ]
    );

    // A revision beyond the current one streams the changes after it.
    let mut future = store.watch_raw(&widgets(), None, 8).unwrap();
    create(&store, widget("default", "x", 1));
    create(&store, widget("default", "y", 1));
    assert_eq!(
        next_events(&mut future, 1).await,
        [(WatchEventType::Added, "y".into(), 9)]
    );
}

#[test]
fn watch_from_before_the_history_is_expired() {
    let options = StoreOptions {
        watch_history: 2,
        ..StoreOptions::default()
    };
    let store = Store::open_with(None, options).unwrap();
    for name in ["a", "b", "c", "d"] {
        create(&store, widget("default", name, 1));
    }
    let err = store.watch_raw(&widgets(), None, 1).unwrap_err();
    assert_eq!((err.code(), err.reason()), (410, "Expired"));
    assert_eq!(err.to_string(), "too old resource version: 1 (2)");
    assert!(store.watch_raw(&widgets(), None, 2).is_ok());
}

#[tokio::test]
async fn after_a_restart_only_the_current_revision_can_be_watched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let before = {
        let store = Store::open(&path).unwrap();
        create(&store, widget("default", "a", 1));
        create(&store, widget("default", "b", 1));
        1
    };
    let store = Store::open(&path).unwrap();
    let current = store.revision().unwrap();
    assert_eq!(current, 2);
    assert!(matches!(
        store.watch_raw(&widgets(), None, before),
        Err(StoreError::Expired {
            requested: 1,
            oldest: 2
        })
    ));
    let mut watch = store.watch_raw(&widgets(), None, current).unwrap();
    create(&store, widget("default", "c", 1));
    assert_eq!(
        next_events(&mut watch, 1).await,
        [(WatchEventType::Added, "c".into(), 3)]
    );
}

#[tokio::test]
async fn finalizers_hold_a_deletion_until_the_last_one_goes() {
    let store = Store::open_in_memory().unwrap();
    let mut guarded = widget("default", "w", 1);
    guarded["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    create(&store, guarded);
    let (_, mut watch) = store.list_watch_raw(&widgets(), None, None).unwrap();

    let options = DeleteOptionsRaw::default();
    let Deleted::Pending(pending) = store
        .delete_raw(&widgets(), "default", "w", &options)
        .unwrap()
    else {
        panic!("finalizers keep the object");
    };
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(pending["metadata"]["deletionGracePeriodSeconds"], 0);
    let again = store
        .delete_raw(&widgets(), "default", "w", &options)
        .unwrap();
    assert_eq!(again, Deleted::Pending(pending.clone()));

    let one_left = set_finalizers(&store, "w", json!(["example.com/b"]));
    assert!(matches!(one_left, Updated::Written(_)));
    let Updated::Removed(last) = set_finalizers(&store, "w", json!([])) else {
        panic!("taking the last finalizer removes the object");
    };
    assert!(store.get_raw(&widgets(), "default", "w").unwrap().is_none());
    assert_eq!(
        next_events(&mut watch, 3).await,
        [
            (WatchEventType::Modified, "w".into(), 2),
            (WatchEventType::Modified, "w".into(), 3),
            (WatchEventType::Deleted, "w".into(), rv(&last)),
        ]
    );
    assert_eq!(rv(&last), 4);
}

#[test]
fn graceful_deletion_without_finalizers_survives_updates() {
    let store = Store::open_in_memory().unwrap();
    create(&store, widget("default", "w", 1));
    let terminating = store
        .update_raw(
            &widgets(),
            "default",
            "w",
            &WriteOptions::default(),
            |old| {
                let mut new = old.clone();
                new["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
                new["metadata"]["deletionGracePeriodSeconds"] = json!(30);
                Ok::<_, StoreError>(new)
            },
        )
        .unwrap();
    assert!(matches!(terminating, Updated::Written(_)));
    assert!(matches!(
        resize(&store, "w", 2, &WriteOptions::default()),
        Updated::Written(_)
    ));
    assert!(store.get_raw(&widgets(), "default", "w").unwrap().is_some());
}

#[test]
fn delete_preconditions_are_conflicts() {
    let store = Store::open_in_memory().unwrap();
    let created = create(&store, widget("default", "w", 1));
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();

    let wrong_uid = DeleteOptionsRaw {
        uid: Some("other".into()),
        ..DeleteOptionsRaw::default()
    };
    let err = store
        .delete_raw(&widgets(), "default", "w", &wrong_uid)
        .unwrap_err();
    assert_eq!((err.code(), err.reason()), (409, "Conflict"));
    assert!(
        err.to_string().ends_with(&format!(
            "Precondition failed: UID in precondition: other, UID in object meta: {uid}"
        )),
        "{err}"
    );
    assert!(err.to_string().starts_with(
        "Operation cannot be fulfilled on widgets.example.com \"w\": StorageError: invalid \
         object, Code: 4, Key: /registry/example.com/widgets/default/w"
    ));

    let stale = DeleteOptionsRaw {
        uid: Some(uid.clone()),
        resource_version: Some("7".into()),
        ..DeleteOptionsRaw::default()
    };
    let err = store
        .delete_raw(&widgets(), "default", "w", &stale)
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "Precondition failed: ResourceVersion in precondition: 7, \
             ResourceVersion in object meta: 1"
        ),
        "{err}"
    );
    let matching = DeleteOptionsRaw {
        uid: Some(uid),
        resource_version: Some("1".into()),
        ..DeleteOptionsRaw::default()
    };
    assert!(store
        .delete_raw(&widgets(), "default", "w", &matching)
        .is_ok());
}

#[tokio::test]
async fn dry_runs_store_and_emit_nothing() {
    let store = Store::open_in_memory().unwrap();
    let mut guarded = widget("default", "kept", 1);
    guarded["metadata"]["finalizers"] = json!(["example.com/a"]);
    create(&store, guarded);
    create(&store, tracked_widget("default", "w", 1));
    let (_, mut watch) = store.list_watch_raw(&widgets(), None, None).unwrap();
    let dry = WriteOptions { dry_run: true };

    let would_create = store
        .create_raw(&widgets(), widget("default", "new", 1), &dry)
        .unwrap();
    assert_eq!(
        would_create["metadata"]["uid"].as_str().map(str::len),
        Some(36)
    );
    assert!(would_create["metadata"]["creationTimestamp"].is_string());
    assert!(would_create["metadata"].get("resourceVersion").is_none());
    let duplicate = store.create_raw(&widgets(), widget("default", "w", 1), &dry);
    assert!(matches!(duplicate, Err(StoreError::AlreadyExists { .. })));

    let Updated::Written(would_update) = resize(&store, "w", 2, &dry) else {
        panic!("the dry run reports the update");
    };
    assert_eq!(
        (
            would_update["metadata"]["generation"].clone(),
            rv(&would_update)
        ),
        (json!(2), 2)
    );

    let dry_delete = DeleteOptionsRaw {
        dry_run: true,
        ..DeleteOptionsRaw::default()
    };
    let gone = store
        .delete_raw(&widgets(), "default", "w", &dry_delete)
        .unwrap();
    assert!(matches!(gone, Deleted::Removed(_)));
    let pending = store
        .delete_raw(&widgets(), "default", "kept", &dry_delete)
        .unwrap();
    assert!(pending.object()["metadata"]["deletionTimestamp"].is_string());

    assert_eq!(store.revision().unwrap(), 2);
    assert!(store
        .get_raw(&widgets(), "default", "new")
        .unwrap()
        .is_none());
    let kept = store
        .get_raw(&widgets(), "default", "kept")
        .unwrap()
        .unwrap();
    assert!(kept["metadata"].get("deletionTimestamp").is_none());
    assert_eq!(
        store.get_raw(&widgets(), "default", "w").unwrap().unwrap()["spec"]["size"],
        1
    );

    create(&store, widget("default", "real", 1));
    assert_eq!(
        next_events(&mut watch, 1).await,
        [(WatchEventType::Added, "real".into(), 3)]
    );
}

#[tokio::test]
async fn list_watch_raw_filters_the_list_and_misses_no_change() {
    let store = Store::open_in_memory().unwrap();
    create(&store, widget("default", "small", 1));
    create(&store, widget("default", "big", 9));
    let big = |value: &Value| value["spec"]["size"].as_i64() > Some(5);
    let (list, mut watch) = store
        .list_watch_raw(&widgets(), Some("default"), Some(Arc::new(big)))
        .unwrap();
    assert_eq!(
        (names(&list.items), list.resource_version),
        (vec!["big".into()], 2)
    );
    resize(&store, "small", 2, &WriteOptions::default());
    assert_eq!(
        next_events(&mut watch, 1).await,
        [(WatchEventType::Modified, "small".into(), 3)]
    );
}

#[test]
fn reads_do_not_wait_for_an_open_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.db")).unwrap();
    create(&store, widget("default", "w", 1));
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .update_raw(
                    &widgets(),
                    "default",
                    "w",
                    &WriteOptions::default(),
                    |old| {
                        entered_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        let mut new = old.clone();
                        new["spec"]["size"] = json!(2);
                        Ok::<_, StoreError>(new)
                    },
                )
                .unwrap()
        })
    };
    entered_rx.recv().unwrap();

    let (read_tx, read_rx) = mpsc::channel();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let got = store.get_raw(&widgets(), "default", "w").unwrap().unwrap();
            let listed = store.list_raw(&widgets(), &ListOptions::default()).unwrap();
            read_tx
                .send((got, listed.resource_version, store.revision().unwrap()))
                .unwrap();
        })
    };
    let (got, listed_rv, revision) = read_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("reads finish while the write is open");
    assert_eq!(
        (got["spec"]["size"].clone(), listed_rv, revision),
        (json!(1), 1, 1)
    );

    release_tx.send(()).unwrap();
    assert!(matches!(writer.join().unwrap(), Updated::Written(_)));
    reader.join().unwrap();
    let got = store.get_raw(&widgets(), "default", "w").unwrap().unwrap();
    assert_eq!(got["spec"]["size"], 2);
}

#[test]
fn a_kind_can_start_a_new_generation_on_more_than_its_spec() {
    struct AnnotationsToo;
    impl UpdateRules for AnnotationsToo {
        fn new_generation(&self, new: &Value, old: &Value) -> bool {
            new.get("spec") != old.get("spec")
                || new["metadata"].get("annotations") != old["metadata"].get("annotations")
        }
    }
    let store = Store::open_in_memory().unwrap();
    let mut tracked = widget("default", "w", 1);
    tracked["metadata"]["generation"] = json!(1);
    create(&store, tracked);
    let annotate = |old: &Value| {
        let mut new = old.clone();
        new["metadata"]["annotations"] = json!({"note": "x"});
        Ok::<_, StoreError>(new)
    };
    let write = WriteOptions::default();
    let plain = store
        .update_raw(&widgets(), "default", "w", &write, annotate)
        .unwrap()
        .into_object();
    assert_eq!(plain["metadata"]["generation"], 1);
    let relabel = |old: &Value| {
        let mut new = old.clone();
        new["metadata"]["annotations"] = json!({"note": "y"});
        Ok::<_, StoreError>(new)
    };
    let bumped = store
        .update_raw_with(&widgets(), "default", "w", &write, &AnnotationsToo, relabel)
        .unwrap()
        .into_object();
    assert_eq!(bumped["metadata"]["generation"], 2);
}
