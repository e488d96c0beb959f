use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;
use crate::{Object, WatchEventType, WatchStream};

fn pod(namespace: &str, name: &str, image: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

fn rv_of(obj: &impl Object) -> u64 {
    obj.metadata()
        .resource_version
        .as_deref()
        .expect("stored objects have a resourceVersion")
        .parse()
        .expect("resourceVersion is decimal")
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn image(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.containers[0].image.as_deref()
}

fn with_phase(mut pod: Pod, phase: &str) -> Pod {
    pod.status = Some(PodStatus {
        phase: Some(phase.into()),
        ..PodStatus::default()
    });
    pod
}

#[test]
fn handles_cross_threads_and_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<Store>();
    send::<WatchStream>();
}

#[test]
fn create_sets_system_fields_and_get_reads_back() {
    let store = Store::open_in_memory().unwrap();
    let created = store.create(pod("default", "web", "nginx")).unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().map(String::len), Some(36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(
        meta.generation, None,
        "pods have no generation in kube 1.32"
    );
    assert_eq!(rv_of(&created), 1);

    let got: Pod = store.get("default", "web").unwrap().unwrap();
    assert_eq!(got, created);
    assert!(store.get::<Pod>("other", "web").unwrap().is_none());
}

#[test]
fn create_twice_is_already_exists() {
    let store = Store::open_in_memory().unwrap();
    store.create(pod("default", "web", "nginx")).unwrap();
    let err = store.create(pod("default", "web", "nginx")).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(err.to_string(), r#"pods "web" already exists"#);
    assert_eq!(store.revision().unwrap(), 1);
}

#[test]
fn create_rejects_missing_names_and_set_resource_versions() {
    let store = Store::open_in_memory().unwrap();
    let mut nameless = pod("default", "", "nginx");
    nameless.metadata.name = None;
    let err = store.create(nameless).unwrap_err();
    assert!(
        err.to_string().contains("name or generateName is required"),
        "{err}"
    );

    let mut no_namespace = pod("default", "web", "nginx");
    no_namespace.metadata.namespace = None;
    let err = store.create(no_namespace).unwrap_err();
    assert!(
        err.to_string()
            .contains("metadata.namespace: Required value"),
        "{err}"
    );

    let mut versioned = pod("default", "web", "nginx");
    versioned.metadata.resource_version = Some("5".into());
    assert!(matches!(
        store.create(versioned),
        Err(StoreError::Invalid { .. })
    ));
}

#[test]
fn generate_name_picks_a_fresh_name() {
    let store = Store::open_in_memory().unwrap();
    let mut template = pod("default", "", "nginx");
    template.metadata.name = None;
    template.metadata.generate_name = Some("web-".into());
    let a = store.create(template.clone()).unwrap();
    let b = store.create(template).unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("web-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
    assert!(store.get::<Pod>("default", &a).unwrap().is_some());
}

#[test]
fn missing_objects_are_not_found() {
    let store = Store::open_in_memory().unwrap();
    let err = store.update(pod("default", "web", "nginx")).unwrap_err();
    assert_eq!(err.to_string(), r#"pods "web" not found"#);
    let err = store.delete::<Pod>("default", "web").unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { kind, namespace, name }
            if kind == "pods" && namespace == "default" && name == "web"),
        "{err:?}"
    );
    assert!(matches!(
        store.modify::<Pod>("default", "web", |_| true),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn stale_resource_version_is_a_conflict() {
    let store = Store::open_in_memory().unwrap();
    let first = store.create(pod("default", "web", "nginx")).unwrap();
    let mut newer = first.clone();
    newer.metadata.labels = Some([("v".to_string(), "2".to_string())].into());
    let newer = store.update(newer).unwrap();
    assert!(rv_of(&newer) > rv_of(&first));

    let mut stale = first;
    stale.metadata.labels = Some([("v".to_string(), "3".to_string())].into());
    let err = store.update(stale.clone()).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("Operation cannot be fulfilled on pods \"web\""));
    let err = store.update_status(stale.clone()).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    stale.metadata.resource_version = None;
    let forced = store.update(stale).unwrap();
    assert_eq!(forced.metadata.labels.unwrap()["v"], "3");
}

#[test]
fn a_given_generation_bumps_only_when_spec_changes() {
    let store = Store::open_in_memory().unwrap();
    let mut tracked = pod("default", "web", "nginx");
    tracked.metadata.generation = Some(1);
    let created = store.create(tracked).unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let mut relabeled = created.clone();
    relabeled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    let relabeled = store.update(relabeled).unwrap();
    assert_eq!(relabeled.metadata.generation, Some(1));

    let mut respecced = relabeled.clone();
    respecced.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
    let respecced = store.update(respecced).unwrap();
    assert_eq!(respecced.metadata.generation, Some(2));
    assert_eq!(respecced.metadata.uid, created.metadata.uid);
}

#[test]
fn unchanged_update_writes_nothing() {
    let store = Store::open_in_memory().unwrap();
    let created = store.create(pod("default", "web", "nginx")).unwrap();
    let same = store.update(created.clone()).unwrap();
    assert_eq!(same, created);
    assert_eq!(store.revision().unwrap(), 1);
}

#[test]
fn update_keeps_status_and_update_status_keeps_spec() {
    let store = Store::open_in_memory().unwrap();
    let created = store.create(pod("default", "web", "nginx")).unwrap();

    let mut status_change = with_phase(created.clone(), "Running");
    status_change.spec.as_mut().unwrap().containers[0].image = Some("ignored".into());
    status_change.metadata.labels = Some([("ignored".to_string(), "x".to_string())].into());
    let running = store.update_status(status_change).unwrap();
    assert_eq!(phase(&running), Some("Running"));
    assert_eq!(image(&running), Some("nginx"));
    assert_eq!(running.metadata.labels, None);
    assert_eq!(running.metadata.generation, None);
    assert!(rv_of(&running) > rv_of(&created));

    let mut spec_change = with_phase(running, "Failed");
    spec_change.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
    let updated = store.update(spec_change).unwrap();
    assert_eq!(phase(&updated), Some("Running"));
    assert_eq!(image(&updated), Some("nginx:2"));
}

#[test]
fn modify_writes_the_whole_object_or_nothing() {
    let store = Store::open_in_memory().unwrap();
    store.create(pod("default", "web", "nginx")).unwrap();

    let untouched = store
        .modify::<Pod>("default", "web", |p| {
            p.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
            false
        })
        .unwrap();
    assert!(untouched.is_none());
    let unchanged = store.modify::<Pod>("default", "web", |_| true).unwrap();
    assert!(unchanged.is_none());
    assert_eq!(store.revision().unwrap(), 1);

    let modified = store
        .modify::<Pod>("default", "web", |p| {
            *p = with_phase(p.clone(), "Running");
            p.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
            p.metadata.name = Some("renamed".into());
            true
        })
        .unwrap()
        .unwrap();
    assert_eq!(phase(&modified), Some("Running"));
    assert_eq!(modified.metadata.generation, None);
    assert_eq!(modified.metadata.name.as_deref(), Some("web"));
    assert_eq!(rv_of(&modified), 2);
}

#[test]
fn graceful_deletion_then_delete_returns_last_object() {
    let store = Store::open_in_memory().unwrap();
    let created = store.create(pod("default", "web", "nginx")).unwrap();
    let mut terminating = created;
    terminating.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    terminating.metadata.deletion_grace_period_seconds = Some(30);
    let terminating = store.update(terminating).unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());

    let mut undo = terminating.clone();
    undo.metadata.deletion_timestamp = None;
    let kept = store.update(undo).unwrap();
    assert_eq!(
        kept.metadata.deletion_timestamp,
        terminating.metadata.deletion_timestamp
    );

    let deleted: Pod = store.delete("default", "web").unwrap();
    assert_eq!(deleted.metadata.deletion_grace_period_seconds, Some(30));
    assert!(rv_of(&deleted) > rv_of(&terminating));
    assert!(store.get::<Pod>("default", "web").unwrap().is_none());
}

#[test]
fn list_is_sorted_and_filtered() {
    let store = Store::open_in_memory().unwrap();
    for (namespace, name) in [
        ("kube-system", "dns"),
        ("default", "web"),
        ("default", "api"),
    ] {
        store.create(pod(namespace, name, "img")).unwrap();
    }
    let names = |pods: Vec<Pod>| -> Vec<String> {
        pods.into_iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.metadata.namespace.unwrap(),
                    p.metadata.name.unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        names(store.list(None).unwrap()),
        ["default/api", "default/web", "kube-system/dns"]
    );
    assert_eq!(
        names(store.list(Some("kube-system")).unwrap()),
        ["kube-system/dns"]
    );
    assert!(store.list::<Node>(None).unwrap().is_empty());
}

#[test]
fn cluster_scoped_objects_have_no_namespace() {
    let store = Store::open_in_memory().unwrap();
    let node = Node {
        metadata: ObjectMeta {
            name: Some("host".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    let created = store.create(node).unwrap();
    assert_eq!(created.metadata.namespace, None);
    assert!(store.get::<Node>("", "host").unwrap().is_some());
    assert_eq!(store.list::<Node>(Some("default")).unwrap().len(), 1);
}

#[tokio::test]
async fn list_watch_has_no_gap_and_no_overlap() {
    let store = Store::open_in_memory().unwrap();
    let before = store.create(pod("default", "before", "img")).unwrap();
    let (items, rv, mut watch) = store.list_watch::<Pod>(Some("default")).unwrap();
    assert_eq!(items, vec![before.clone()]);
    assert_eq!(rv, "1");

    store.create(pod("other", "elsewhere", "img")).unwrap();
    let after = store.create(pod("default", "after", "img")).unwrap();
    store.update_status(with_phase(before, "Running")).unwrap();
    store.delete::<Pod>("default", "after").unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = watch.next().await.unwrap().unwrap();
        seen.push((
            event.kind,
            event.object["metadata"]["name"].clone(),
            event.resource_version,
        ));
    }
    assert_eq!(
        seen,
        [
            (WatchEventType::Added, "after".into(), rv_of(&after)),
            (WatchEventType::Modified, "before".into(), 4),
            (WatchEventType::Deleted, "after".into(), 5),
        ]
    );
}

#[tokio::test]
async fn deleted_events_carry_the_last_object() {
    let store = Store::open_in_memory().unwrap();
    let created = store.create(pod("default", "web", "nginx")).unwrap();
    store
        .update_status(with_phase(created, "Succeeded"))
        .unwrap();
    let (_, _, mut watch) = store.list_watch::<Pod>(None).unwrap();
    let deleted = store.delete::<Pod>("default", "web").unwrap();

    let event = watch.next().await.unwrap().unwrap();
    assert_eq!(event.kind, WatchEventType::Deleted);
    assert_eq!(event.object["status"]["phase"], "Succeeded");
    assert_eq!(event.object["metadata"]["resourceVersion"], "3");
    assert_eq!(event.resource_version, rv_of(&deleted));
}

#[tokio::test]
async fn lagged_watcher_gets_expired() {
    let options = StoreOptions {
        watch_capacity: 4,
        ..StoreOptions::default()
    };
    let store = Store::open_with(None, options).unwrap();
    let (_, _, mut watch) = store.list_watch::<Pod>(None).unwrap();
    for i in 0..10 {
        store
            .create(pod("default", &format!("p{i}"), "img"))
            .unwrap();
    }
    assert!(matches!(
        watch.next().await,
        Some(Err(StoreError::Expired { .. }))
    ));
    assert!(watch.next().await.is_none());
}

#[test]
fn revisions_keep_increasing_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let last = {
        let store = Store::open(&path).unwrap();
        store.create(pod("default", "a", "img")).unwrap();
        store.create(pod("default", "b", "img")).unwrap();
        let deleted = store.delete::<Pod>("default", "b").unwrap();
        rv_of(&deleted)
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.revision().unwrap(), last);
    assert!(store.get::<Pod>("default", "a").unwrap().is_some());
    let next = store.create(pod("default", "c", "img")).unwrap();
    assert_eq!(rv_of(&next), last + 1);
}

#[test]
fn concurrent_writers_get_unique_revisions() {
    let store = Store::open_in_memory().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        rv_of(
                            &store
                                .create(pod("default", &format!("t{t}-{i}"), "img"))
                                .unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let rvs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let unique: HashSet<_> = rvs.iter().copied().collect();
    assert_eq!(unique.len(), 200);
    assert_eq!(unique.iter().max(), Some(&200));
    assert_eq!(store.list::<Pod>(None).unwrap().len(), 200);
}

const CHILD_DB_ENV: &str = "PEAPOD_STORE_SIGKILL_DB";

/// Writes pods until killed, reporting each committed resourceVersion on stdout.
#[test]
#[ignore = "child process of survives_sigkill"]
fn sigkill_child() {
    let path = std::env::var(CHILD_DB_ENV).expect("run by survives_sigkill");
    let store = Store::open(Path::new(&path)).unwrap();
    let mut stdout = std::io::stdout();
    for i in 0.. {
        let created = store
            .create(pod("default", &format!("p{i}"), "img"))
            .unwrap();
        writeln!(stdout, "committed {i} {}", rv_of(&created)).unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::tests::sigkill_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = Vec::new();
    while committed.len() < 30 {
        let line = lines.next().expect("child stopped early").unwrap();
        if let Some(rest) = line.strip_prefix("committed ") {
            let (i, rv) = rest.split_once(' ').unwrap();
            committed.push((i.to_owned(), rv.parse::<u64>().unwrap()));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(&path).unwrap();
    for (i, _) in &committed {
        assert!(store
            .get::<Pod>("default", &format!("p{i}"))
            .unwrap()
            .is_some());
    }
    let last = committed.last().unwrap().1;
    assert!(store.revision().unwrap() >= last);
    let next = store.create(pod("default", "after-kill", "img")).unwrap();
    assert!(rv_of(&next) > last);
}
