//! A Service's endpoints through the real kubectl, as test/e2e/network/endpointslice.go and
//! service.go read them: the EndpointSlice, Endpoints and mirroring controllers.
//!
//! Selected pods: a Deployment of 2 busybox pods with a readiness probe (and a lone pod whose
//! named port resolves to another number) behind `web`: the slices list them (ready, serving,
//! not terminating, their node and pod, the Service's labels and owner, the trigger time),
//! the pods of each resolved port in a slice of their own; the Endpoints list them per port.
//! A failing readiness probe moves an address to notReadyAddresses and marks its endpoint
//! not ready (but ready in `web-all`, which publishes not-ready addresses); a scale-down shows
//! the leaving pod terminating, then removes it; deleting the Service removes its slices (the
//! garbage collector) and its Endpoints.
//!
//! Hostnames and mirroring: a pod naming its hostname and the headless Service `db` as its
//! subdomain is listed with that hostname; the hand-written Endpoints of the selectorless
//! `ext` are mirrored into a slice (updated with them), those labelled skip-mirror are not;
//! deleting the Service deletes its Endpoints, and so the mirrored slice.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const INTERVAL: Duration = Duration::from_millis(100);

/// Pods ready while /tmp/ready exists; sh as PID 1 ignores SIGTERM, so a deleted pod stays
/// terminating for its 4 s grace period.
const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 4
      containers:
      - name: app
        image: busybox
        command: [sh, -c, 'touch /tmp/ready; sleep 3600']
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {tier: front}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
";

/// A pod of `web` whose `http` port is another number.
const ODD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: odd
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox
    command: [sleep, '3600']
    ports:
    - {name: http, containerPort: 9090}
";

const WEB_ALL: &str = "apiVersion: v1
kind: Service
metadata:
  name: web-all
spec:
  selector: {app: web}
  publishNotReadyAddresses: true
  ports:
  - {port: 80, targetPort: 8080}
";

pub(crate) fn items(kubectl: &Kubectl, args: &[&str]) -> Vec<Value> {
    let list = kubectl.json(args);
    list["items"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn slices(kubectl: &Kubectl, service: &str) -> Vec<Value> {
    let selector = format!("kubernetes.io/service-name={service}");
    items(kubectl, &["get", "endpointslices", "-l", &selector])
}

/// Every endpoint of the Service's slices, by its pod's name (or address).
fn endpoints_by_pod(kubectl: &Kubectl, service: &str) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for slice in slices(kubectl, service) {
        for endpoint in slice["endpoints"].as_array().cloned().unwrap_or_default() {
            let name = endpoint["targetRef"]["name"].as_str().map(str::to_owned);
            let key = name.unwrap_or_else(|| endpoint["addresses"][0].to_string());
            all.push((key, endpoint));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

pub(crate) fn endpoints_object(kubectl: &Kubectl, name: &str) -> Option<Value> {
    let out = kubectl.ok(&["get", "endpoints", name, "-o", "json", "--ignore-not-found"]);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).expect("kubectl -o json"))
}

/// The `ip:port` pairs of the Endpoints' ready (or not-ready) addresses, sorted.
fn addresses(endpoints: &Value, field: &str) -> Vec<String> {
    let mut pairs = Vec::new();
    for subset in endpoints["subsets"].as_array().cloned().unwrap_or_default() {
        for address in subset[field].as_array().cloned().unwrap_or_default() {
            for port in subset["ports"].as_array().cloned().unwrap_or_default() {
                pairs.push(format!(
                    "{}:{}",
                    address["ip"].as_str().unwrap(),
                    port["port"]
                ));
            }
        }
    }
    pairs.sort();
    pairs
}

fn web_pods(kubectl: &Kubectl) -> Vec<Value> {
    items(kubectl, &["get", "pods", "-l", "app=web"])
}

fn ip(pod: &Value) -> String {
    pod["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn name(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().unwrap().to_owned()
}

fn conditions(endpoint: &Value) -> (bool, bool, bool) {
    let flag = |c: &str| endpoint["conditions"][c].as_bool().unwrap_or(false);
    (flag("ready"), flag("serving"), flag("terminating"))
}

pub(crate) fn wait_for<T>(what: &str, fetch: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let value = poll(SETTLE_WITHIN, INTERVAL, fetch, &done);
    assert!(done(&value), "timed out waiting for {what}");
    value
}

#[test]
fn a_services_pods_are_its_endpoint_slices_and_endpoints() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(WEB);
    let pods = wait_for(
        "2 ready web pods",
        || web_pods(&kubectl),
        |pods| {
            pods.len() == 2
                && pods
                    .iter()
                    .all(|p| condition(p, "Ready")["status"] == "True")
        },
    );
    let mut seen: BTreeSet<String> = pods
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_owned())
        .collect();
    let ips: BTreeSet<String> = pods.iter().map(ip).collect();
    let listed = wait_for(
        "the slice to list both pods ready",
        || endpoints_by_pod(&kubectl, "web"),
        |found| {
            found.len() == 2
                && found
                    .iter()
                    .all(|(_, e)| conditions(e) == (true, true, false))
        },
    );
    slice_shape(&kubectl, &pods, &listed);
    let want: Vec<String> = ips.iter().map(|ip| format!("{ip}:8080")).collect();
    let endpoints = wait_for(
        "the Endpoints to list both pods",
        || endpoints_object(&kubectl, "web"),
        |e| {
            e.as_ref()
                .is_some_and(|e| addresses(e, "addresses") == want)
        },
    )
    .unwrap();
    assert_eq!(
        endpoints["metadata"]["labels"]["tier"], "front",
        "{endpoints}"
    );
    assert_eq!(
        endpoints["metadata"]["labels"]["endpoints.kubernetes.io/managed-by"],
        "endpoint-controller"
    );
    assert_eq!(
        endpoints["subsets"][0]["ports"][0]["name"], "http",
        "{endpoints}"
    );

    kubectl.apply(WEB_ALL);
    seen.insert(named_port_per_pod(&kubectl));
    readiness_flip(&kubectl, &name(&pods[0]), &ip(&pods[0]));
    scale_down(&kubectl, &ips);

    let deleted = kubectl.ok(&["delete", "service", "web"]);
    assert_eq!(deleted.trim(), r#"service "web" deleted"#);
    wait_for(
        "the slices and Endpoints of web to go",
        || {
            (
                slices(&kubectl, "web").len(),
                endpoints_object(&kubectl, "web").is_some(),
            )
        },
        |gone| *gone == (0, false),
    );
    kubectl.ok(&["delete", "service", "web-all"]);
    kubectl.ok(&["delete", "deployment", "web"]);
    kubectl.ok(&["delete", "pod", "odd"]);
    wait_for("the web pods to go", || web_pods(&kubectl), Vec::is_empty);
    wait_for(
        "every slice and Endpoints of the test to go",
        || {
            (
                slices(&kubectl, "web-all").len(),
                endpoints_object(&kubectl, "web-all").is_some(),
            )
        },
        |gone| *gone == (0, false),
    );
    seen.extend(
        web_pods(&kubectl)
            .iter()
            .map(|p| p["metadata"]["uid"].as_str().unwrap().to_owned()),
    );
    for uid in &seen {
        agent.leak_check(uid);
    }
}

/// What kube's slice of `web` says of itself and of its pods.
fn slice_shape(kubectl: &Kubectl, pods: &[Value], listed: &[(String, Value)]) {
    let slice = slices(kubectl, "web").remove(0);
    let labels = &slice["metadata"]["labels"];
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(labels["tier"], "front", "{slice}");
    assert!(
        labels.get("service.kubernetes.io/headless").is_none(),
        "{slice}"
    );
    assert!(
        slice["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-"),
        "{slice}"
    );
    assert_eq!(slice["metadata"]["generateName"], "web-");
    let owner = &slice["metadata"]["ownerReferences"][0];
    let service = kubectl.json(&["get", "service", "web"]);
    assert_eq!(owner["kind"], "Service");
    assert_eq!(owner["uid"], service["metadata"]["uid"]);
    assert_eq!(
        (&owner["controller"], &owner["blockOwnerDeletion"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        serde_json::json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    for pod in pods {
        let (_, endpoint) = listed
            .iter()
            .find(|(n, _)| *n == name(pod))
            .expect("each pod listed");
        assert_eq!(endpoint["addresses"], serde_json::json!([ip(pod)]));
        assert_eq!(endpoint["nodeName"], pod["spec"]["nodeName"]);
        assert_eq!(endpoint["targetRef"]["kind"], "Pod");
        assert_eq!(endpoint["targetRef"]["uid"], pod["metadata"]["uid"]);
        assert!(
            endpoint.get("zone").is_none() && endpoint.get("hostname").is_none(),
            "{endpoint}"
        );
    }
}

/// A pod whose `http` is 9090 gets a slice (and a subset) of its own; answers its uid.
fn named_port_per_pod(kubectl: &Kubectl) -> String {
    kubectl.apply(ODD);
    let ports_of = |kubectl: &Kubectl| -> BTreeSet<(i64, usize)> {
        slices(kubectl, "web")
            .iter()
            .map(|s| {
                (
                    s["ports"][0]["port"].as_i64().unwrap_or(0),
                    s["endpoints"].as_array().map_or(0, Vec::len),
                )
            })
            .collect()
    };
    wait_for(
        "a slice for port 9090",
        || ports_of(kubectl),
        |p| *p == BTreeSet::from([(8080, 2), (9090, 1)]),
    );
    let endpoints = wait_for(
        "a subset for port 9090",
        || endpoints_object(kubectl, "web").unwrap(),
        |e| {
            addresses(e, "addresses")
                .iter()
                .any(|a| a.ends_with(":9090"))
        },
    );
    assert_eq!(
        endpoints["subsets"].as_array().unwrap().len(),
        2,
        "{endpoints}"
    );
    let odd = kubectl.json(&["get", "pod", "odd"]);
    odd["metadata"]["uid"].as_str().unwrap().to_owned()
}

/// Failing its probe, the pod's endpoint is not ready (ready anyway in `web-all`) and its
/// address not ready; passing again, it is back.
fn readiness_flip(kubectl: &Kubectl, pod: &str, pod_ip: &str) {
    kubectl.ok(&["exec", pod, "--", "rm", "/tmp/ready"]);
    let of_pod = |service: &str| -> Option<(bool, bool, bool)> {
        let listed = endpoints_by_pod(kubectl, service);
        listed
            .iter()
            .find(|(n, _)| n == pod)
            .map(|(_, e)| conditions(e))
    };
    wait_for(
        "the endpoint to be not ready",
        || of_pod("web"),
        |c| *c == Some((false, false, false)),
    );
    wait_for(
        "web-all to keep it ready",
        || of_pod("web-all"),
        |c| *c == Some((true, false, false)),
    );
    let endpoints = wait_for(
        "the address to be not ready",
        || endpoints_object(kubectl, "web").unwrap(),
        |e| addresses(e, "notReadyAddresses") == [format!("{pod_ip}:8080")],
    );
    assert!(
        !addresses(&endpoints, "addresses").contains(&format!("{pod_ip}:8080")),
        "{endpoints}"
    );
    let published = endpoints_object(kubectl, "web-all").unwrap();
    assert!(
        addresses(&published, "addresses").contains(&format!("{pod_ip}:8080")),
        "{published}"
    );
    kubectl.ok(&["exec", pod, "--", "touch", "/tmp/ready"]);
    wait_for(
        "the endpoint to be ready again",
        || of_pod("web"),
        |c| *c == Some((true, true, false)),
    );
    // A readiness transition is a change the trigger time tracks: the write it causes names
    // the pod's transition (other changes, such as a pod's IP, clear it, as kube's do).
    let transition =
        condition(&kubectl.json(&["get", "pod", pod]), "Ready")["lastTransitionTime"].clone();
    let trigger = |object: &Value| object["metadata"]["annotations"][TRIGGER_TIME].clone();
    wait_for(
        "the slice's trigger time",
        || slices(kubectl, "web"),
        |s| s.iter().any(|s| trigger(s) == transition),
    );
    wait_for(
        "the Endpoints' trigger time",
        || endpoints_object(kubectl, "web").unwrap(),
        |e| trigger(e) == transition,
    );
    wait_for(
        "the address to be ready again",
        || endpoints_object(kubectl, "web").unwrap(),
        |e| addresses(e, "addresses").contains(&format!("{pod_ip}:8080")),
    );
}

/// Scaled to one, the leaving pod is listed terminating (not ready, still serving), gone from
/// the Endpoints, then from the slice once deleted.
fn scale_down(kubectl: &Kubectl, ips: &BTreeSet<String>) {
    kubectl.ok(&["scale", "deployment", "web", "--replicas=1"]);
    let terminating = |listed: &Vec<(String, Value)>| -> Vec<String> {
        listed
            .iter()
            .filter(|(_, e)| conditions(e).2)
            .map(|(_, e)| e["addresses"][0].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = wait_for(
        "a terminating endpoint",
        || endpoints_by_pod(kubectl, "web"),
        |listed| terminating(listed).len() == 1,
    );
    let leaving = terminating(&listed).remove(0);
    assert!(ips.contains(&leaving), "{leaving} of {ips:?}");
    let (_, endpoint) = listed
        .iter()
        .find(|(_, e)| e["addresses"][0] == leaving.as_str())
        .unwrap();
    assert_eq!(conditions(endpoint), (false, true, true), "{endpoint}");
    let endpoints = endpoints_object(kubectl, "web").unwrap();
    let all = [
        addresses(&endpoints, "addresses"),
        addresses(&endpoints, "notReadyAddresses"),
    ]
    .concat();
    assert!(!all.contains(&format!("{leaving}:8080")), "{endpoints}");
    wait_for(
        "the terminated pod to leave the slice",
        || endpoints_by_pod(kubectl, "web"),
        |listed| {
            !listed
                .iter()
                .any(|(_, e)| e["addresses"][0] == leaving.as_str())
        },
    );
}

const DB: &str = "apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {port: 5432}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  labels: {app: db}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox
    command: [sleep, '3600']
";

/// A selectorless Service, its hand-written Endpoints, and a pair labelled skip-mirror.
const EXT: &str = "apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  ports:
  - {name: web, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
  labels: {owner: me}
subsets:
- addresses: [{ip: 192.0.2.10}]
  notReadyAddresses: [{ip: 192.0.2.11}]
  ports: [{name: web, port: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: skip
spec:
  ports:
  - {port: 80}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: skip
  labels: {endpointslice.kubernetes.io/skip-mirror: 'true'}
subsets:
- addresses: [{ip: 192.0.2.20}]
  ports: [{port: 80}]
";

#[test]
fn hostnames_and_hand_written_endpoints_as_kube_publishes_them() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(DB);
    let db = wait_for(
        "db-0 to run with an IP",
        || kubectl.json(&["get", "pod", "db-0"]),
        |p| !ip(p).is_empty(),
    );
    let listed = wait_for(
        "db-0 in the slice of db",
        || endpoints_by_pod(&kubectl, "db"),
        |l| l.len() == 1,
    );
    assert_eq!(listed[0].1["hostname"], "db-0", "{:?}", listed[0]);
    let slice = slices(&kubectl, "db").remove(0);
    assert_eq!(
        slice["metadata"]["labels"]["service.kubernetes.io/headless"], "",
        "{slice}"
    );
    let endpoints = wait_for(
        "db-0 in the Endpoints of db",
        || endpoints_object(&kubectl, "db"),
        |e| e.as_ref().is_some_and(|e| e["subsets"].is_array()),
    )
    .unwrap();
    let address = &endpoints["subsets"][0]["addresses"][0];
    assert_eq!(
        (&address["ip"], &address["hostname"]),
        (&Value::from(ip(&db)), &Value::from("db-0"))
    );
    assert_eq!(
        endpoints["metadata"]["labels"]["service.kubernetes.io/headless"], "",
        "{endpoints}"
    );

    kubectl.apply(EXT);
    let mirrored = wait_for(
        "the mirrored slice of ext",
        || slices(&kubectl, "ext"),
        |s| s.len() == 1,
    )
    .remove(0);
    let labels = &mirrored["metadata"]["labels"];
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(labels["owner"], "me");
    assert_eq!(
        mirrored["metadata"]["ownerReferences"][0]["kind"],
        "Endpoints"
    );
    assert_eq!(
        mirrored["ports"],
        serde_json::json!([{"name": "web", "port": 8080, "protocol": "TCP"}])
    );
    let ready: Vec<(Value, Value)> = mirrored["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["addresses"][0].clone(), e["conditions"]["ready"].clone()))
        .collect();
    assert_eq!(
        ready,
        [
            (Value::from("192.0.2.10"), Value::from(true)),
            (Value::from("192.0.2.11"), Value::from(false))
        ]
    );
    let user_endpoints = kubectl.json(&["get", "endpoints", "ext"]);
    assert!(user_endpoints["metadata"]["labels"]
        .get("endpoints.kubernetes.io/managed-by")
        .is_none());

    kubectl.apply(&EXT.replace("192.0.2.10", "192.0.2.12"));
    wait_for(
        "the mirrored slice to follow the Endpoints",
        || slices(&kubectl, "ext"),
        |s| {
            s.len() == 1
                && s[0]["endpoints"][0]["addresses"][0] == "192.0.2.11"
                && s[0]["metadata"]["name"] == mirrored["metadata"]["name"]
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        slices(&kubectl, "skip").is_empty(),
        "skip-mirror Endpoints are not mirrored"
    );
    // As kube's endpoints controller does, the Endpoints named after a deleted Service go
    // with it, hand-written ones too.
    kubectl.ok(&["delete", "service", "ext", "skip"]);
    wait_for(
        "the Endpoints and mirrored slice of ext to go with its Service",
        || {
            (
                slices(&kubectl, "ext").len(),
                endpoints_object(&kubectl, "ext").is_some(),
            )
        },
        |gone| *gone == (0, false),
    );
    wait_for(
        "the Endpoints of skip to go",
        || endpoints_object(&kubectl, "skip"),
        Option::is_none,
    );

    kubectl.ok(&["delete", "service", "db"]);
    kubectl.ok(&["delete", "pod", "db-0"]);
    wait_for(
        "db's slices and Endpoints to go",
        || {
            (
                slices(&kubectl, "db").len(),
                endpoints_object(&kubectl, "db").is_some(),
            )
        },
        |g| *g == (0, false),
    );
    agent.leak_check(db["metadata"]["uid"].as_str().unwrap());
}
