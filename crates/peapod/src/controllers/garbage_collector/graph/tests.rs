use serde_json::json;

use super::*;

fn id(kind: &str, namespace: &str, name: &str, uid: &str) -> Identity {
    Identity {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
        uid: uid.into(),
        path: format!("/api/v1/namespaces/{namespace}/{kind}s/{name}"),
    }
}

fn reference(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        ..Default::default()
    }
}

fn blocking(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        block_owner_deletion: Some(true),
        ..reference(kind, name, uid)
    }
}

fn node(name: &str, uid: &str, owners: Vec<OwnerReference>) -> Node {
    Node {
        id: id("ConfigMap", "dev", name, uid),
        owners,
        finalizers: Vec::new(),
        deleting: false,
    }
}

fn deleting(mut node: Node, finalizer: &str) -> Node {
    node.deleting = true;
    node.finalizers.push(finalizer.into());
    node
}

fn delete(uid: &str) -> Task {
    Task::Delete(uid.into())
}

/// An owner `o` (uid 1) and its dependent `d` (uid 2, blocking when asked).
fn owner_and_dependent(block: bool) -> Graph {
    let mut graph = Graph::default();
    assert_eq!(graph.upsert(node("o", "1", vec![])), vec![]);
    let to_owner = if block {
        blocking("ConfigMap", "o", "1")
    } else {
        reference("ConfigMap", "o", "1")
    };
    assert_eq!(graph.upsert(node("d", "2", vec![to_owner])), vec![]);
    graph
}

#[test]
fn a_node_reads_its_metadata() {
    let object = json!({"metadata": {
        "name": "d", "namespace": "dev", "uid": "2", "deletionTimestamp": "2024-01-01T00:00:00Z",
        "finalizers": ["orphan"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "1"}],
    }});
    let read = Node::of(id("ConfigMap", "dev", "d", ""), &object).unwrap();
    assert_eq!(read.id.uid, "2");
    assert_eq!(read.owners, vec![reference("ConfigMap", "o", "1")]);
    assert!(read.orphaning() && !read.deleting_dependents());
    assert!(Node::of(id("ConfigMap", "dev", "d", ""), &json!({"metadata": {}})).is_none());
    assert_eq!(
        read.id.to_string(),
        "[v1/ConfigMap, namespace: dev, name: d, uid: 2]"
    );
}

#[test]
fn a_dependent_of_an_unknown_owner_is_checked() {
    let mut graph = Graph::default();
    let tasks = graph.upsert(node("d", "2", vec![reference("ConfigMap", "o", "1")]));
    assert_eq!(tasks, vec![delete("2")]);
    assert_eq!(graph.dependents("1").len(), 1);
    // The owner appearing later makes nothing due.
    assert_eq!(graph.upsert(node("o", "1", vec![])), vec![]);
}

#[test]
fn a_reference_with_other_coordinates_is_checked() {
    let mut graph = Graph::default();
    graph.upsert(node("o", "1", vec![]));
    let renamed = node("d", "2", vec![reference("ConfigMap", "other", "1")]);
    assert_eq!(graph.upsert(renamed), vec![delete("2")]);
    let other_kind = node("e", "3", vec![reference("Secret", "o", "1")]);
    assert_eq!(graph.upsert(other_kind), vec![delete("3")]);
}

#[test]
fn a_dependent_in_another_namespace_is_warned_about_and_checked() {
    let mut graph = Graph::default();
    graph.upsert(node("o", "1", vec![]));
    let mut elsewhere = node("d", "2", vec![reference("ConfigMap", "o", "1")]);
    elsewhere.id.namespace = "prod".into();
    let warned = Task::InvalidNamespace {
        dependent: "2".into(),
        owner: "1".into(),
    };
    assert_eq!(
        graph.upsert(elsewhere.clone()),
        vec![warned.clone(), delete("2")]
    );

    // The other order: the owner observed after its dependent.
    let mut graph = Graph::default();
    assert_eq!(graph.upsert(elsewhere), vec![delete("2")]);
    assert_eq!(
        graph.upsert(node("o", "1", vec![])),
        vec![warned, delete("2")]
    );
}

#[test]
fn a_cluster_scoped_owner_serves_every_namespace() {
    let mut graph = Graph::default();
    let mut owner = node("o", "1", vec![]);
    owner.id.namespace = String::new();
    graph.upsert(owner);
    let mut dependent = node("d", "2", vec![reference("ConfigMap", "o", "1")]);
    dependent.id.namespace = "prod".into();
    assert_eq!(graph.upsert(dependent), vec![]);
}

#[test]
fn an_owner_removed_makes_its_dependents_due() {
    let mut graph = owner_and_dependent(false);
    let owner = graph.node("1").cloned().unwrap();
    assert_eq!(graph.remove(&owner), vec![delete("2")]);
    assert!(graph.node("1").is_none());
    // Still named by the dependent until it goes.
    assert_eq!(graph.dependents("1").len(), 1);
    let dependent = graph.node("2").cloned().unwrap();
    assert_eq!(graph.remove(&dependent), vec![]);
    assert!(graph.dependents("1").is_empty());
}

#[test]
fn an_owner_removed_with_its_orphan_finalizer_orphans_rather_than_collects() {
    let mut graph = owner_and_dependent(false);
    let last = deleting(graph.node("1").cloned().unwrap(), ORPHAN);
    assert_eq!(graph.remove(&last), vec![Task::Orphan("1".into())]);
}

#[test]
fn deletion_with_the_orphan_finalizer_orphans() {
    let mut graph = owner_and_dependent(false);
    let owner = deleting(node("o", "1", vec![]), ORPHAN);
    assert_eq!(graph.upsert(owner.clone()), vec![Task::Orphan("1".into())]);
    // Only the transition makes it due.
    assert_eq!(graph.upsert(owner), vec![]);
}

#[test]
fn foreground_deletion_makes_the_owner_and_every_dependent_due() {
    let mut graph = owner_and_dependent(true);
    graph.upsert(node("e", "3", vec![reference("ConfigMap", "o", "1")]));
    let owner = deleting(node("o", "1", vec![]), FOREGROUND);
    let tasks = graph.upsert(owner);
    assert_eq!(tasks, vec![delete("1"), delete("2"), delete("3")]);
    let blocking: Vec<&str> = graph
        .blocking_dependents("1")
        .iter()
        .map(|n| n.id.name.as_str())
        .collect();
    assert_eq!(blocking, ["d"]);
}

#[test]
fn a_waiting_owner_is_due_when_a_blocking_dependent_goes_or_stops_blocking() {
    let mut graph = owner_and_dependent(true);
    graph.upsert(deleting(node("o", "1", vec![]), FOREGROUND));
    // The dependent no longer blocks: the owner is due (and so is the dependent, whose
    // owner waits).
    let unblocked = node("d", "2", vec![reference("ConfigMap", "o", "1")]);
    assert_eq!(graph.upsert(unblocked), vec![delete("2"), delete("1")]);
    assert!(graph.blocking_dependents("1").is_empty());

    let mut graph = owner_and_dependent(true);
    graph.upsert(deleting(node("o", "1", vec![]), FOREGROUND));
    let dependent = graph.node("2").cloned().unwrap();
    assert_eq!(graph.remove(&dependent), vec![delete("1")]);
}

#[test]
fn a_dependent_of_a_waiting_owner_is_not_solid() {
    let mut graph = Graph::default();
    graph.upsert(deleting(node("o", "1", vec![]), FOREGROUND));
    let tasks = graph.upsert(node("d", "2", vec![reference("ConfigMap", "o", "1")]));
    assert_eq!(tasks, vec![delete("2")]);
}

#[test]
fn the_objects_of_a_kind_are_listed_by_group_and_kind() {
    let mut graph = owner_and_dependent(false);
    let mut secret = node("s", "9", vec![]);
    secret.id.kind = "Secret".into();
    graph.upsert(secret);
    let mut uids = graph.uids_of_kind("", "ConfigMap");
    uids.sort();
    assert_eq!(uids, ["1", "2"]);
    assert_eq!(graph.uids_of_kind("", "Secret"), ["9"]);
    assert!(graph.uids_of_kind("apps", "ConfigMap").is_empty());
}

fn states(list: &[(&str, OwnerState)]) -> Vec<(OwnerReference, OwnerState)> {
    list.iter()
        .map(|(uid, state)| (reference("ConfigMap", uid, uid), *state))
        .collect()
}

#[test]
fn the_verdict_follows_attempt_to_delete_item() {
    use OwnerState::*;
    assert_eq!(verdict(&states(&[("a", Solid)]), false), Verdict::Keep);
    assert_eq!(
        verdict(
            &states(&[("a", Solid), ("b", Dangling), ("c", Waiting)]),
            true
        ),
        Verdict::Strip(vec!["b".into(), "c".into()])
    );
    assert_eq!(
        verdict(&states(&[("a", Dangling), ("b", Dangling)]), true),
        Verdict::Collect
    );
    assert_eq!(
        verdict(&states(&[("a", Dangling), ("b", Waiting)]), true),
        Verdict::DeleteForeground
    );
    assert_eq!(verdict(&states(&[("a", Waiting)]), false), Verdict::Collect);
}

#[test]
fn a_collected_object_keeps_the_propagation_its_finalizers_name() {
    assert_eq!(collect_policy(&[]), "Background");
    assert_eq!(collect_policy(&["orphan".into()]), "Orphan");
    assert_eq!(
        collect_policy(&["x/y".into(), "foregroundDeletion".into()]),
        "Foreground"
    );
}

#[test]
fn groups_of_api_versions() {
    assert_eq!(group_of("v1"), "");
    assert_eq!(group_of("apps/v1"), "apps");
}
