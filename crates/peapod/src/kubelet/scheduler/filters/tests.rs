//! Cases from kube's plugin tests (node_unschedulable_test.go, node_name_test.go,
//! taint_toleration_test.go, node_affinity_test.go, fit_test.go).

use super::*;
use serde_json::{json, Value};

fn pod(spec: Value) -> Pod {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c"}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "uid-p"},
        "spec": spec,
    }))
    .unwrap()
}

fn node(labels: Value, spec: Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "node1", "labels": labels},
        "spec": spec,
        "status": {"allocatable": {"cpu": "10", "memory": "20", "pods": "32"}},
    }))
    .unwrap()
}

fn reasons(result: Filtered) -> Vec<String> {
    result.err().map(|r| r.reasons).unwrap_or_default()
}

#[test]
fn node_unschedulable_table() {
    let cordoned = node(json!({}), json!({"unschedulable": true}));
    let refusal = node_unschedulable(&pod(json!({})), &cordoned).unwrap_err();
    assert_eq!(refusal.code, Code::UnschedulableAndUnresolvable);
    assert_eq!(refusal.reasons, ["node(s) were unschedulable"]);
    let normal = node(json!({}), json!({"unschedulable": false}));
    assert!(node_unschedulable(&pod(json!({})), &normal).is_ok());
    let tolerating = pod(json!({"tolerations": [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}));
    assert!(node_unschedulable(&tolerating, &cordoned).is_ok());
}

#[test]
fn node_name_table() {
    let n = node(json!({}), json!({}));
    assert!(node_name(&pod(json!({})), &n).is_ok());
    assert!(node_name(&pod(json!({"nodeName": "node1"})), &n).is_ok());
    assert_eq!(
        reasons(node_name(&pod(json!({"nodeName": "node2"})), &n)),
        ["node(s) didn't match the requested node name"]
    );
}

#[test]
fn taint_toleration_table() {
    let taint = |key: &str, value: &str, effect: &str| json!({"key": key, "value": value, "effect": effect});
    let tolerations = |t: Value| pod(json!({"tolerations": t}));
    let cases = [
        // No tolerations against a NoSchedule taint.
        (
            json!([]),
            json!([taint("dedicated", "user1", "NoSchedule")]),
            Some("{dedicated: user1}"),
        ),
        (
            json!([taint("dedicated", "user1", "NoSchedule")]),
            json!([taint("dedicated", "user1", "NoSchedule")]),
            None,
        ),
        (
            json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
            json!([taint("dedicated", "user1", "NoSchedule")]),
            Some("{dedicated: user1}"),
        ),
        (
            json!([{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}]),
            json!([taint("foo", "bar", "NoSchedule")]),
            None,
        ),
        (
            json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"},
                {"key": "foo", "operator": "Exists", "effect": "NoSchedule"}]),
            json!([
                taint("dedicated", "user2", "NoSchedule"),
                taint("foo", "bar", "NoSchedule")
            ]),
            None,
        ),
        // A non-empty effect that differs does not tolerate.
        (
            json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
            json!([taint("foo", "bar", "NoSchedule")]),
            Some("{foo: bar}"),
        ),
        // An empty effect tolerates every effect.
        (
            json!([{"key": "foo", "operator": "Equal", "value": "bar"}]),
            json!([taint("foo", "bar", "NoSchedule")]),
            None,
        ),
        // PreferNoSchedule is no filter.
        (
            json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
            json!([taint("dedicated", "user1", "PreferNoSchedule")]),
            None,
        ),
        (
            json!([]),
            json!([taint("dedicated", "user1", "PreferNoSchedule")]),
            None,
        ),
        // NoExecute filters too; the first untolerated taint is named.
        (
            json!([]),
            json!([
                taint("a", "", "PreferNoSchedule"),
                taint("gone", "", "NoExecute")
            ]),
            Some("{gone: }"),
        ),
    ];
    for (i, (tols, taints, want)) in cases.into_iter().enumerate() {
        let n = node(json!({}), json!({"taints": taints}));
        let got = taint_toleration(&tolerations(tols), &n);
        let want = want.map(|t| vec![format!("node(s) had untolerated taint {t}")]);
        assert_eq!(got.clone().err().map(|r| r.reasons), want, "case {i}");
        if let Err(refusal) = got {
            assert_eq!(refusal.code, Code::UnschedulableAndUnresolvable);
        }
    }
}

#[test]
fn node_affinity_table() {
    let affinity = |terms: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": terms}}}})
    };
    let expr = |key: &str, op: &str, values: Value| json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]);
    let foo_bar = json!({"foo": "bar"});
    let cases = [
        ("no selector", json!({}), foo_bar.clone(), true),
        (
            "missing labels",
            json!({"nodeSelector": {"foo": "bar"}}),
            json!({}),
            false,
        ),
        (
            "same labels",
            json!({"nodeSelector": {"foo": "bar"}}),
            foo_bar.clone(),
            true,
        ),
        (
            "node has more labels",
            json!({"nodeSelector": {"foo": "bar"}}),
            json!({"foo": "bar", "baz": "blah"}),
            true,
        ),
        (
            "pod has more labels",
            json!({"nodeSelector": {"foo": "bar", "baz": "blah"}}),
            foo_bar.clone(),
            false,
        ),
        (
            "In",
            affinity(expr("foo", "In", json!(["value1", "bar"]))),
            foo_bar.clone(),
            true,
        ),
        (
            "Gt",
            affinity(expr("kernel-version", "Gt", json!(["0204"]))),
            json!({"kernel-version": "0206"}),
            true,
        ),
        (
            "NotIn",
            affinity(expr("mem-type", "NotIn", json!(["DDR", "DDR2"]))),
            json!({"mem-type": "DDR3"}),
            true,
        ),
        (
            "Exists",
            affinity(expr("GPU", "Exists", Value::Null)),
            json!({"GPU": "NVIDIA-GRID-K1"}),
            true,
        ),
        (
            "In fails",
            affinity(expr("foo", "In", json!(["value1", "value2"]))),
            foo_bar.clone(),
            false,
        ),
        ("empty terms", affinity(json!([])), foo_bar.clone(), false),
        ("empty term", affinity(json!([{}])), foo_bar.clone(), false),
        (
            "empty expressions",
            affinity(json!([{"matchExpressions": []}])),
            foo_bar.clone(),
            false,
        ),
        (
            "no required affinity",
            json!({"affinity": {"nodeAffinity": {}}}),
            foo_bar.clone(),
            true,
        ),
        (
            "terms are ORed",
            affinity(json!([
            {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]},
            {"matchExpressions": [{"key": "diffkey", "operator": "In", "values": ["wrong"]}]}])),
            foo_bar.clone(),
            true,
        ),
        (
            "expressions are ANDed",
            affinity(json!([{"matchExpressions": [
            {"key": "foo", "operator": "In", "values": ["bar"]},
            {"key": "GPU", "operator": "Exists"}]}])),
            foo_bar.clone(),
            false,
        ),
        (
            "selector and affinity both",
            {
                let mut spec = affinity(expr("foo", "Exists", Value::Null));
                spec["nodeSelector"] = json!({"foo": "bar"});
                spec
            },
            foo_bar.clone(),
            true,
        ),
        (
            "DoesNotExist",
            affinity(expr("foo", "DoesNotExist", Value::Null)),
            foo_bar.clone(),
            false,
        ),
        (
            "matchFields name",
            affinity(json!([{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["node1"]}]}])),
            json!({}),
            true,
        ),
        (
            "matchFields other name",
            affinity(json!([{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["node2"]}]}])),
            json!({}),
            false,
        ),
    ];
    for (name, spec, labels, fits) in cases {
        let got = node_affinity(&pod(spec), &node(labels, json!({})));
        assert_eq!(got.is_ok(), fits, "{name}");
        if let Err(refusal) = got {
            assert_eq!(
                refusal.reasons,
                ["node(s) didn't match Pod's node affinity/selector"]
            );
            assert_eq!(refusal.code, Code::UnschedulableAndUnresolvable);
        }
    }
}

fn with_requests(cpu: &str, memory: &str) -> Value {
    json!({"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}})
}

/// `enoughRequestsTests`: the node has 10 millicpu... here 10 cpu and 20 bytes, as kube's
/// `makeAllocatableResources(10, 20, 32, ...)` with cpu counted in whole cores.
#[test]
fn node_resources_fit_table() {
    let n = node(json!({}), json!({}));
    let bound_pod =
        |cpu: &str, memory: &str| pod(json!({"containers": [with_requests(cpu, memory)]}));
    let init = |cpu: &str, memory: &str| json!([with_requests(cpu, memory)]);
    let cases: Vec<(&str, Value, Vec<Pod>, Vec<&str>)> = vec![
        (
            "no resources requested always fits",
            json!({}),
            vec![bound_pod("10", "20")],
            vec![],
        ),
        (
            "too many resources fails",
            json!({"containers": [with_requests("1", "1")]}),
            vec![bound_pod("10", "20")],
            vec!["Insufficient cpu", "Insufficient memory"],
        ),
        (
            "too many resources fails due to init container cpu",
            json!({"containers": [with_requests("1", "1")], "initContainers": init("3", "1")}),
            vec![bound_pod("8", "19")],
            vec!["Insufficient cpu"],
        ),
        (
            "too many resources fails due to highest init container cpu",
            json!({"containers": [with_requests("1", "1")],
                   "initContainers": [with_requests("3", "1"), with_requests("2", "1")]}),
            vec![bound_pod("8", "19")],
            vec!["Insufficient cpu"],
        ),
        (
            "too many resources fails due to init container memory",
            json!({"containers": [with_requests("1", "1")], "initContainers": init("1", "3")}),
            vec![bound_pod("9", "19")],
            vec!["Insufficient memory"],
        ),
        (
            "init container fits because it's the max, not sum, of containers and init containers",
            json!({"containers": [with_requests("1", "1")], "initContainers": init("1", "1")}),
            vec![bound_pod("9", "19")],
            vec![],
        ),
        (
            "both resources fit",
            json!({"containers": [with_requests("1", "1")]}),
            vec![bound_pod("5", "5")],
            vec![],
        ),
        (
            "one resource memory fits",
            json!({"containers": [with_requests("2", "1")]}),
            vec![bound_pod("9", "5")],
            vec!["Insufficient cpu"],
        ),
        (
            "one resource cpu fits",
            json!({"containers": [with_requests("1", "2")]}),
            vec![bound_pod("5", "19")],
            vec!["Insufficient memory"],
        ),
        (
            "equal edge case",
            json!({"containers": [with_requests("5", "1")]}),
            vec![bound_pod("5", "19")],
            vec![],
        ),
        (
            "equal edge case for init container",
            json!({"containers": [with_requests("4", "1")], "initContainers": init("5", "1")}),
            vec![bound_pod("5", "19")],
            vec![],
        ),
        (
            "resources + pod overhead fits",
            json!({"containers": [with_requests("1", "1")], "overhead": {"cpu": "3", "memory": "13"}}),
            vec![bound_pod("5", "5")],
            vec![],
        ),
        (
            "requests + overhead does not fit for memory",
            json!({"containers": [with_requests("1", "1")], "overhead": {"cpu": "1", "memory": "15"}}),
            vec![bound_pod("5", "5")],
            vec!["Insufficient memory"],
        ),
    ];
    for (name, spec, bound, want) in cases {
        let bound: Vec<&Pod> = bound.iter().collect();
        let got = node_resources_fit(&pod(spec), &n, &bound);
        assert_eq!(reasons(got.clone()), want, "{name}");
        if let Err(refusal) = got {
            assert_eq!(refusal.code, Code::Unschedulable, "{name}");
        }
    }
}

#[test]
fn too_many_pods_counts_the_bound_ones() {
    let mut n = node(json!({}), json!({}));
    let allocatable = n.status.as_mut().unwrap().allocatable.as_mut().unwrap();
    allocatable.insert(
        "pods".into(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
    );
    let other = pod(json!({}));
    assert_eq!(
        reasons(node_resources_fit(&pod(json!({})), &n, &[&other])),
        ["Too many pods"]
    );
    assert!(node_resources_fit(&pod(json!({})), &n, &[]).is_ok());
}

#[test]
fn the_first_plugin_to_refuse_decides() {
    let n = node(
        json!({}),
        json!({"unschedulable": true, "taints": [{"key": "k", "effect": "NoSchedule"}]}),
    );
    let big = pod(json!({"containers": [with_requests("100", "1")], "nodeSelector": {"a": "b"}}));
    assert_eq!(
        run(&big, &n, &[], &Default::default()).unwrap_err().plugin,
        "NodeUnschedulable"
    );
    let n = node(
        json!({}),
        json!({"taints": [{"key": "k", "effect": "NoSchedule"}]}),
    );
    assert_eq!(
        run(&big, &n, &[], &Default::default()).unwrap_err().plugin,
        "TaintToleration"
    );
    let n = node(json!({}), json!({}));
    assert_eq!(
        run(&big, &n, &[], &Default::default()).unwrap_err().plugin,
        "NodeAffinity"
    );
    let big = pod(json!({"containers": [with_requests("100", "1")]}));
    assert_eq!(
        run(&big, &n, &[], &Default::default()).unwrap_err().plugin,
        "NodeResourcesFit"
    );
}

#[test]
fn node_affinity_pre_filter_table() {
    let by_name = |terms: Value| {
        pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": terms}}}}),
        )
    };
    let name_in = |names: Value| json!({"key": "metadata.name", "operator": "In", "values": names});
    let n = node(json!({}), json!({}));
    let cases = [
        (
            "not pinned",
            json!([{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]),
            None,
        ),
        (
            "pinned here",
            json!([{"matchFields": [name_in(json!(["node1"]))]}]),
            None,
        ),
        (
            "one of two terms pinned elsewhere, the other open",
            json!([{"matchFields": [name_in(json!(["node2"]))]},
                   {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}]),
            None,
        ),
        (
            "pinned elsewhere",
            json!([{"matchFields": [name_in(json!(["node2"]))]}]),
            Some(("node(s) didn't satisfy plugin(s) [NodeAffinity]", false)),
        ),
        (
            "names that cancel out",
            json!([{"matchFields": [name_in(json!(["node1"])), name_in(json!(["node2"]))]}]),
            Some(("pod affinity terms conflict", true)),
        ),
    ];
    for (name, terms, want) in cases {
        let got = node_affinity_pre_filter(&by_name(terms), &n).err();
        let got = got.map(|r| (r.reasons[0].clone(), r.pre_filter));
        assert_eq!(got, want.map(|(r, p)| (r.to_string(), p)), "{name}");
    }
}
