//! test/e2e/network/endpointslice.go on one node, through the real kubectl: the API server's
//! Endpoints and EndpointSlice name the same addresses and ports; a Service whose selector
//! matches nothing still gets an empty Endpoints and an empty slice of the endpointslice
//! controller, both gone with it; pods matching Services by number and by named port are
//! listed with their own ports and pod references, no pods is one slice without ports, and
//! deleted slices are made again; and the EndpointSlice API's verbs, discovery to
//! deletecollection.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl, Watch};
use crate::endpoints::{endpoints_object, items, slices, wait_for};

fn array(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

#[test]
fn the_api_servers_endpoints_and_slices_agree() {
    let (_agent, kubectl) = start_with_kubectl();
    kubectl.ok(&["get", "service", "kubernetes"]);
    let endpoints = endpoints_object(&kubectl, "kubernetes").expect("the kubernetes Endpoints");
    let subsets = array(&endpoints["subsets"]);
    assert!(!subsets.is_empty(), "{endpoints:#}");
    let mut addresses = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for subset in &subsets {
        for field in ["addresses", "notReadyAddresses"] {
            for address in array(&subset[field]) {
                addresses.insert(address["ip"].as_str().unwrap().to_owned());
            }
        }
        for port in array(&subset["ports"]) {
            ports.insert(port["port"].as_i64().unwrap());
        }
    }

    let api_slices = slices(&kubectl, "kubernetes");
    assert!(
        !api_slices.is_empty(),
        "no EndpointSlice for the API server"
    );
    let (mut slice_addresses, mut slice_ports) = (BTreeSet::new(), BTreeSet::new());
    for slice in api_slices.iter().filter(|s| s["addressType"] == "IPv4") {
        for endpoint in array(&slice["endpoints"]) {
            for address in array(&endpoint["addresses"]) {
                slice_addresses.insert(address.as_str().unwrap().to_owned());
            }
        }
        for port in array(&slice["ports"]) {
            slice_ports.insert(port["port"].as_i64().unwrap());
        }
    }
    assert_eq!(slice_addresses, addresses, "{api_slices:#?}");
    assert_eq!(slice_ports, ports, "{api_slices:#?}");
}

#[test]
fn a_selector_matching_nothing_gets_empty_endpoints_and_slices_removed_with_it() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(
        "apiVersion: v1
kind: Service
metadata:
  name: example-empty-selector
spec:
  selector: {does-not-match-anything: endpoints-and-endpoint-slices-should-still-be-created}
  ports:
  - {name: example, port: 80, protocol: TCP}
",
    );
    let cluster_ip = kubectl.ok(&[
        "get",
        "service",
        "example-empty-selector",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let endpoints = wait_for(
        "the Endpoints",
        || endpoints_object(&kubectl, "example-empty-selector"),
        Option::is_some,
    );
    assert!(array(&endpoints.unwrap()["subsets"]).is_empty());
    let made = wait_for(
        "the EndpointSlice",
        || slices(&kubectl, "example-empty-selector"),
        |slices| !slices.is_empty(),
    );
    let slice = &made[0];
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io",
        "{slice:#}"
    );
    assert!(array(&slice["endpoints"]).is_empty(), "{slice:#}");

    kubectl.ok(&["delete", "service", "example-empty-selector"]);
    wait_for(
        "the Endpoints to go",
        || endpoints_object(&kubectl, "example-empty-selector"),
        Option::is_none,
    );
    wait_for(
        "the EndpointSlice to go",
        || slices(&kubectl, "example-empty-selector"),
        Vec::is_empty,
    );
    agent.service_leak_check(&cluster_ip, &[]);
}

/// endpointslice.go's pods and Services: by number, by named port, and matching nothing.
const MATCHING: &str = "apiVersion: v1
kind: Pod
metadata: {name: pod1, labels: {pod1: 'on', shared12: 'on'}}
spec: {terminationGracePeriodSeconds: 0, containers: [{name: container1, image: busybox, \
 command: [sleep, '3600'], ports: [{name: example-name, containerPort: 3000}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pod2, labels: {pod2: 'on', shared12: 'on'}}
spec: {terminationGracePeriodSeconds: 0, containers: [{name: container1, image: busybox, \
 command: [sleep, '3600'], ports: [{name: example-name, containerPort: 3001}, \
 {name: other-port, containerPort: 3002}]}]}
---
apiVersion: v1
kind: Service
metadata:
  name: example-int-port
spec:
  selector: {pod1: 'on'}
  publishNotReadyAddresses: true
  ports:
  - {name: example, port: 80, targetPort: 3000, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata:
  name: example-named-port
spec:
  selector: {shared12: 'on'}
  publishNotReadyAddresses: true
  ports:
  - {name: http, port: 80, targetPort: example-name, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata:
  name: example-no-match
spec:
  selector: {pod3: 'on'}
  publishNotReadyAddresses: true
  ports:
  - {name: example-no-match, port: 80, targetPort: 8080, protocol: TCP}
";

/// What endpointslice.go's expectEndpointsAndSlices asks of a Service's objects.
struct Expected<'a> {
    service: &'a str,
    /// The matching pods with the port each is reached on.
    pods: Vec<(&'a Value, i64)>,
    port_name: &'a str,
    subsets: usize,
    min_slices: usize,
}

impl Expected<'_> {
    fn pod_by_ip(&self, ip: &str) -> (&Value, i64) {
        let found = self
            .pods
            .iter()
            .find(|(pod, _)| pod["status"]["podIP"] == ip);
        *found.unwrap_or_else(|| panic!("{}: unexpected address {ip}", self.service))
    }

    fn slices_settled(&self, slices: &[Value]) -> bool {
        let endpoints: usize = slices.iter().map(|s| array(&s["endpoints"]).len()).sum();
        slices.len() >= self.min_slices && endpoints >= self.pods.len()
    }

    fn endpoints_settled(&self, endpoints: &Option<Value>) -> bool {
        let Some(endpoints) = endpoints else {
            return false;
        };
        let subsets = array(&endpoints["subsets"]);
        let addresses: usize = subsets
            .iter()
            .map(|s| array(&s["addresses"]).len() + array(&s["notReadyAddresses"]).len())
            .sum();
        subsets.len() == self.subsets && addresses == self.pods.len()
    }

    fn check(&self, kubectl: &Kubectl) {
        let slices = wait_for(
            &format!("the slices of {}", self.service),
            || slices(kubectl, self.service),
            |slices| self.slices_settled(slices),
        );
        let endpoints = wait_for(
            &format!("the Endpoints of {}", self.service),
            || endpoints_object(kubectl, self.service),
            |endpoints| self.endpoints_settled(endpoints),
        );
        for subset in array(&endpoints.unwrap()["subsets"]) {
            let ports = array(&subset["ports"]);
            assert_eq!(ports.len(), 1, "{subset:#}");
            for field in ["addresses", "notReadyAddresses"] {
                for address in array(&subset[field]) {
                    let (pod, port) = self.pod_by_ip(address["ip"].as_str().unwrap());
                    assert_pod_reference(pod, &address["targetRef"]);
                    assert_eq!(ports[0]["port"], port, "{subset:#}");
                    assert_eq!(ports[0]["name"], self.port_name, "{subset:#}");
                    assert_eq!(ports[0]["protocol"], "TCP", "{subset:#}");
                }
            }
        }
        self.check_slices(&slices);
    }

    fn check_slices(&self, slices: &[Value]) {
        if self.pods.is_empty() {
            assert_eq!(slices.len(), 1, "{slices:#?}");
        }
        let mut addresses = BTreeSet::new();
        for slice in slices {
            let ports = array(&slice["ports"]);
            let expected_ports = if self.pods.is_empty() { 0 } else { 1 };
            assert_eq!(ports.len(), expected_ports, "{slice:#}");
            for endpoint in array(&slice["endpoints"]) {
                let ip = endpoint["addresses"][0].as_str().expect("an address");
                addresses.insert(ip.to_owned());
                let (pod, port) = self.pod_by_ip(ip);
                assert_pod_reference(pod, &endpoint["targetRef"]);
                assert_eq!(ports[0]["port"], port, "{slice:#}");
                assert_eq!(ports[0]["name"], self.port_name, "{slice:#}");
                assert_eq!(ports[0]["protocol"], "TCP", "{slice:#}");
            }
        }
        assert_eq!(addresses.len(), self.pods.len(), "{slices:#?}");
    }
}

fn assert_pod_reference(pod: &Value, reference: &Value) {
    assert_eq!(reference["kind"], "Pod", "{reference}");
    for field in ["namespace", "name", "uid"] {
        assert_eq!(reference[field], pod["metadata"][field], "{reference}");
    }
}

#[test]
fn pods_matching_services_are_their_endpoints_and_slices() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(MATCHING);
    let with_ip = |name: &str| {
        wait_for(
            &format!("{name}'s IP"),
            || kubectl.json(&["get", "pod", name]),
            |pod| pod["status"]["podIP"].is_string(),
        )
    };
    let (pod1, pod2) = (with_ip("pod1"), with_ip("pod2"));

    let expect = |service, pods, port_name, subsets, min_slices| Expected {
        service,
        pods,
        port_name,
        subsets,
        min_slices,
    };
    expect("example-int-port", vec![(&pod1, 3000)], "example", 1, 1).check(&kubectl);
    let named_port = expect(
        "example-named-port",
        vec![(&pod1, 3000), (&pod2, 3001)],
        "http",
        2,
        2,
    );
    named_port.check(&kubectl);
    expect("example-no-match", vec![], "example-no-match", 0, 1).check(&kubectl);

    let deleted: Vec<String> = slices(&kubectl, "example-named-port")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut delete = vec!["delete", "endpointslice"];
    delete.extend(deleted.iter().map(String::as_str));
    kubectl.ok(&delete);
    named_port.check(&kubectl);
    let remade = slices(&kubectl, "example-named-port");
    assert!(
        remade
            .iter()
            .all(|s| !deleted.contains(&s["metadata"]["name"].as_str().unwrap().to_owned())),
        "{deleted:?} {remade:#?}"
    );

    let services = ["example-int-port", "example-named-port", "example-no-match"];
    let cluster_ips: Vec<String> = services
        .iter()
        .map(|s| kubectl.ok(&["get", "service", s, "-o", "jsonpath={.spec.clusterIP}"]))
        .collect();
    let mut delete = vec!["delete", "service"];
    delete.extend(services);
    kubectl.ok(&delete);
    for ip in &cluster_ips {
        agent.service_leak_check(ip, &[]);
    }
    agent.delete_and_check("pod1", "0");
    agent.delete_and_check("pod2", "0");
}

fn slice_template() -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"generateName": "e2e-example-ing", "labels": {"special-label": "e2e-eps"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["1.2.3.4", "5.6.7.8"]},
            {"addresses": ["2.2.3.4", "6.6.7.8"]},
        ],
    })
}

fn assert_discovery_lists_endpointslices(kubectl: &Kubectl) {
    let get = |path: &str| -> Value {
        serde_json::from_str(&kubectl.ok(&["get", "--raw", path])).unwrap()
    };
    let serves_v1 = |group: &Value| {
        array(&group["versions"])
            .iter()
            .any(|v| v["version"] == "v1")
    };
    let groups = get("/apis");
    let group = array(&groups["groups"])
        .into_iter()
        .find(|g| g["name"] == "discovery.k8s.io")
        .expect("discovery.k8s.io in /apis");
    assert!(serves_v1(&group), "{group}");
    let group = get("/apis/discovery.k8s.io");
    assert!(serves_v1(&group), "{group}");
    let resources = get("/apis/discovery.k8s.io/v1");
    assert!(
        array(&resources["resources"])
            .iter()
            .any(|r| r["name"] == "endpointslices"),
        "{resources}"
    );
}

#[test]
fn the_endpointslice_api_supports_every_verb() {
    let (_agent, kubectl) = start_with_kubectl();
    assert_discovery_lists_endpointslices(&kubectl);
    let template = slice_template().to_string();
    let created: Vec<Value> = (0..3)
        .map(|_| {
            let out = kubectl.with_manifest(&["create", "-o", "json"], &template);
            serde_json::from_str(&out).unwrap()
        })
        .collect();
    let name = created[2]["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("e2e-example-ing"), "{name}");
    let got = kubectl.json(&["get", "endpointslice", &name]);
    assert_eq!(got["metadata"]["uid"], created[2]["metadata"]["uid"]);

    let selector = "special-label=e2e-eps";
    assert_eq!(
        items(&kubectl, &["get", "endpointslices", "-l", selector]).len(),
        3
    );
    assert_eq!(
        items(&kubectl, &["get", "endpointslices", "-A", "-l", selector]).len(),
        3
    );
    let watch = Watch::start(&kubectl, &["endpointslices", "-l", selector]);

    let patch = r#"{"metadata":{"annotations":{"patched":"true"}}}"#;
    let patched = kubectl.json(&[
        "patch",
        "endpointslice",
        &name,
        "--type",
        "merge",
        "-p",
        patch,
    ]);
    assert_eq!(patched["metadata"]["annotations"]["patched"], "true");
    let mut to_update = kubectl.json(&["get", "endpointslice", &name]);
    to_update["metadata"]["annotations"]["updated"] = json!("true");
    let out = kubectl.with_manifest(&["replace", "-o", "json"], &to_update.to_string());
    let updated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(updated["metadata"]["annotations"]["updated"], "true");
    wait_for(
        "the watch to see the annotations",
        || watch.objects(),
        |events| {
            events.iter().any(|(kind, object)| {
                kind == "MODIFIED"
                    && object["metadata"]["annotations"]["patched"] == "true"
                    && object["metadata"]["annotations"]["updated"] == "true"
            })
        },
    );

    kubectl.ok(&["delete", "endpointslice", &name]);
    let missing = kubectl.fails(&["get", "endpointslice", &name]);
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );
    let left = items(&kubectl, &["get", "endpointslices", "-l", selector]);
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|s| s["metadata"]["name"] != name.as_str()));

    let collection = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=special-label%3De2e-eps";
    kubectl.ok(&["delete", "--raw", collection]);
    assert!(items(&kubectl, &["get", "endpointslices", "-l", selector]).is_empty());
}
