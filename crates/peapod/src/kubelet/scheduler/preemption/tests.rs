//! kube's default_preemption_test.go tables (SelectVictimsOnNode on one node) and the queue.

use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use super::*;
use crate::kubelet::scheduler::filters;

const LOW: i32 = 0;
const MID: i32 = 100;
const HIGH: i32 = 1000;

fn node() -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "node1"},
        "status": {"allocatable": {"cpu": "500", "memory": "500Gi", "pods": "110"}},
    }))
    .unwrap()
}

fn pod(name: &str, priority: i32, cpu: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": name,
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"priority": priority, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
    }))
    .unwrap()
}

fn started(mut pod: Pod, at: &str) -> Pod {
    pod.status = Some(serde_json::from_value(json!({"startTime": at})).unwrap());
    pod
}

fn with_port(mut pod: Pod, port: i32) -> Pod {
    let container = &mut pod.spec.as_mut().unwrap().containers[0];
    container.ports = Some(vec![serde_json::from_value(
        json!({"containerPort": port, "hostPort": port}),
    )
    .unwrap()]);
    pod
}

fn fits(pod: &Pod, on_node: &[&Pod]) -> Result<(), Refusal> {
    let node = node();
    filters::node_ports(pod, on_node)?;
    filters::node_resources_fit(pod, &node, on_node)
}

fn victims(pod: &Pod, bound: &[Pod], violating: &[&str]) -> Selection {
    let bound: Vec<&Pod> = bound.iter().collect();
    let mut violates = |p: &Pod| violating.contains(&p.metadata.name.as_deref().unwrap());
    select_victims(pod, &bound, &[], &fits, &mut violates)
}

fn names(selection: Selection) -> Vec<String> {
    let Selection::Victims(pods) = selection else {
        panic!("no victims: {selection:?}");
    };
    let mut names: Vec<String> = pods.into_iter().filter_map(|p| p.metadata.name).collect();
    names.sort();
    names
}

#[test]
fn mixed_priority_pods_are_preempted() {
    let bound = [
        pod("p1.1", MID, "100"),
        pod("p1.2", LOW, "100"),
        pod("p1.3", MID, "200"),
        pod("p1.4", HIGH, "100"),
    ];
    assert_eq!(
        names(victims(&pod("p", HIGH, "300"), &bound, &[])),
        ["p1.2", "p1.3"]
    );
}

#[test]
fn mixed_priority_pods_are_preempted_picking_the_later_started_when_priorities_are_equal() {
    let bound = [
        started(pod("p1.1", LOW, "100"), "2019-01-07T00:00:00Z"),
        started(pod("p1.2", LOW, "100"), "2019-01-06T00:00:00Z"),
        started(pod("p1.3", MID, "200"), "2019-01-05T00:00:00Z"),
        started(pod("p1.4", HIGH, "100"), "2019-01-04T00:00:00Z"),
    ];
    assert_eq!(
        names(victims(&pod("p", HIGH, "300"), &bound, &[])),
        ["p1.1", "p1.3"]
    );
}

#[test]
fn pods_of_equal_or_higher_priority_are_never_victims() {
    let bound = [pod("p1.1", HIGH, "300"), pod("p1.2", HIGH, "200")];
    assert_eq!(
        victims(&pod("p", HIGH, "300"), &bound, &[]),
        Selection::NoneLower
    );
}

#[test]
fn a_pod_too_big_for_the_empty_node_preempts_nothing() {
    let bound = [pod("p1.1", LOW, "100")];
    let Selection::Unfit(refusal) = victims(&pod("p", HIGH, "600"), &bound, &[]) else {
        panic!("expected the filters' refusal");
    };
    assert_eq!(refusal.reasons, ["Insufficient cpu"]);
}

#[test]
fn preemption_resolves_a_host_port_conflict() {
    let bound = [
        with_port(pod("p1.1", LOW, "100"), 80),
        pod("p1.2", LOW, "100"),
    ];
    let preemptor = with_port(pod("p", HIGH, "100"), 80);
    assert_eq!(names(victims(&preemptor, &bound, &[])), ["p1.1"]);
}

#[test]
fn victims_violating_a_budget_are_reprieved_first() {
    let bound = [
        started(pod("a", LOW, "200"), "2019-01-07T00:00:00Z"),
        started(pod("b", LOW, "200"), "2019-01-06T00:00:00Z"),
        pod("c", HIGH, "100"),
    ];
    let preemptor = pod("p", HIGH, "200");
    assert_eq!(names(victims(&preemptor, &bound, &[])), ["a"]);
    assert_eq!(names(victims(&preemptor, &bound, &["a"])), ["b"]);
}

#[test]
fn the_queue_lets_higher_priority_then_older_pods_take_the_room_first() {
    let mut queue = Queue::default();
    let mut older = pod("older", MID, "200");
    older.metadata.creation_timestamp =
        Some(serde_json::from_value(json!("2023-01-01T00:00:00Z")).unwrap());
    let (high, mid, low) = (
        pod("high", HIGH, "200"),
        pod("mid", MID, "200"),
        pod("low", LOW, "100"),
    );
    for waiting in [&high, &mid, &low, &older] {
        queue.wait(waiting);
    }
    let full = pod("full", LOW, "100");
    let bound = [&full];
    let ahead = |queue: &Queue, p: &Pod| -> Vec<String> {
        let placed = queue.ahead_of(p, &bound, &fits);
        placed.into_iter().filter_map(|p| p.metadata.name).collect()
    };
    assert!(ahead(&queue, &high).is_empty());
    assert_eq!(ahead(&queue, &older), ["high"]);
    assert_eq!(ahead(&queue, &mid), ["high", "older"]);
    assert_eq!(ahead(&queue, &low), ["high", "older"]);
    assert!(fits(&low, &[&full, &high, &older]).is_err());
    assert!(queue.forget("high"));
    assert_eq!(ahead(&queue, &low), ["older", "mid"]);
}

#[test]
fn post_filter_messages_as_kube_s_default_preemption() {
    let mut queue = Queue::default();
    let low = pod("low", LOW, "400");
    let bound = [&low];
    let refusal = fits(&pod("p", HIGH, "200"), &bound).unwrap_err();
    let mut no_budgets = |_: &Pod| false;
    let mut never = pod("never", HIGH, "200");
    never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
    assert_eq!(
        queue.post_filter(&never, &refusal, (&bound, &[]), &fits, &mut no_budgets),
        PostFilter::NotHelpful("not eligible due to preemptionPolicy=Never.".into())
    );
    let unresolvable = Refusal {
        code: Code::UnschedulableAndUnresolvable,
        ..refusal.clone()
    };
    let preemptor = pod("p", HIGH, "200");
    assert_eq!(
        queue.post_filter(
            &preemptor,
            &unresolvable,
            (&bound, &[]),
            &fits,
            &mut no_budgets
        ),
        PostFilter::NotHelpful(
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling.".into()
        )
    );
    let too_big = pod("big", HIGH, "600");
    let big_refusal = fits(&too_big, &bound).unwrap_err();
    assert_eq!(
        queue.post_filter(
            &too_big,
            &big_refusal,
            (&bound, &[]),
            &fits,
            &mut no_budgets
        ),
        PostFilter::NotHelpful("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
    let equal = pod("equal", LOW, "200");
    assert_eq!(
        queue.post_filter(&equal, &refusal, (&bound, &[]), &fits, &mut no_budgets),
        PostFilter::NotHelpful(
            "0/1 nodes are available: 1 No preemption victims found for incoming pod.".into()
        )
    );
    assert_eq!(
        queue.post_filter(&preemptor, &refusal, (&bound, &[]), &fits, &mut no_budgets),
        PostFilter::Victims(vec![low.clone()])
    );
    assert_eq!(
        queue.post_filter(&preemptor, &refusal, (&bound, &[]), &fits, &mut no_budgets),
        PostFilter::NotHelpful(
            "not eligible due to a terminating pod on the nominated node.".into()
        )
    );
    queue.forget("low");
    queue.forget("p");
    assert!(matches!(
        queue.post_filter(&preemptor, &refusal, (&bound, &[]), &fits, &mut no_budgets),
        PostFilter::Victims(_)
    ));
}

#[test]
fn a_budget_allowing_no_disruption_spares_the_pod_it_covers() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use peapod_apis::policy::v1::poddisruptionbudget::budget::RemainingDisruptions;
    let mut guarded = started(pod("guarded", LOW, "200"), "2019-01-07T00:00:00Z");
    guarded.metadata.labels = Some([("app".to_owned(), "foo".to_owned())].into());
    let bound = [
        guarded,
        started(pod("plain", LOW, "200"), "2019-01-06T00:00:00Z"),
        pod("c", HIGH, "100"),
    ];
    let preemptor = pod("p", HIGH, "200");
    assert_eq!(names(victims(&preemptor, &bound, &[])), ["guarded"]);
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "foo"},
        "spec": {"selector": {"matchLabels": {"app": "foo"}}},
        "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
                   "expectedPods": 1},
    }))
    .unwrap();
    let budgets = [budget];
    let mut disruptions = RemainingDisruptions::new(&budgets);
    let bound: Vec<&Pod> = bound.iter().collect();
    let selection = select_victims(&preemptor, &bound, &[], &fits, &mut |p| disruptions.take(p));
    assert_eq!(names(selection), ["plain"]);
}
