//! Debian 12's own kubectl (package kubernetes-client, v1.20) against a real agent, unchanged.
//! It knows no OpenAPI v3: `apply`, `create -f` and `explain` read `/openapi/v2` as gnostic
//! protobuf, validate manifests client-side against its definitions and build client-side
//! apply's strategic merge patch from its patch extensions. kubectl 1.32 (on the PATH) keeps
//! reading v3 from the same agent.
//!
//! kubectl 1.20 is looked for at `$PEAPOD_KUBECTL_1_20`, by default where
//! scripts/install-deps.sh extracts the Debian package (next to, never over, the kubectl on the
//! PATH).

use std::path::PathBuf;
use std::process::Output;

use crate::common::kubectl::{start_with_binary, start_with_kubectl, Kubectl};
use crate::common::*;
use serde_json::Value;

/// Debian's kubectl 1.20 through the common harness; its successful runs must not warn.
struct Kubectl120(Kubectl);

/// Where kubectl 1.20 is; fails the test, before any agent starts, when it is not there.
fn kubectl_1_20_or_fail() -> PathBuf {
    kubectl::kubectl_1_20().unwrap_or_else(|| {
        panic!(
            "kubectl 1.20 is not installed: run scripts/install-deps.sh (it extracts Debian 12's \
             kubernetes-client to {}) or set PEAPOD_KUBECTL_1_20",
            kubectl::DEFAULT_KUBECTL_1_20
        )
    })
}

impl Kubectl120 {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.0.run(args, stdin)
    }

    /// stdout of a run that must succeed.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let stderr = text(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl 1.20 {}: {stderr}",
            args.join(" ")
        );
        assert!(
            !stderr.contains("warning"),
            "kubectl 1.20 {} warned: {stderr}",
            args.join(" ")
        );
        text(&out.stdout)
    }

    fn apply(&self, manifest: &str) -> String {
        self.ok(&["apply", "-f", "-"], Some(manifest))
    }

    /// stderr of a run that must fail.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl 1.20 {} should fail: {}",
            args.join(" "),
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all, None)).expect("kubectl -o json")
    }
}

fn start() -> (Agent, Kubectl120) {
    let (agent, kubectl) = start_with_binary(kubectl_1_20_or_fail());
    (agent, Kubectl120(kubectl))
}

fn configmap(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}")
}

#[test]
fn debian_kubectl_applies_creates_and_deletes_the_s1_pod_and_configmaps() {
    let (agent, kubectl) = start();
    let version = kubectl.ok(&["version", "--client", "--short"], None);
    assert!(version.contains("v1.20."), "{version}");

    let manifest = example_text("s1-web-content-sidecar.yaml");
    let created = kubectl.apply(&manifest);
    assert_eq!(created.trim(), "pod/example-pod created");
    let uid = agent.wait_running("example-pod")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    // "configured" as against a cluster: the patch orders the pod's volumes beside the
    // admitted kube-api-access volume, and changes nothing.
    let version = |kubectl: &Kubectl120| {
        let json = kubectl.ok(&["get", "pod", "example-pod", "-o", "json"], None);
        serde_json::from_str::<Value>(&json).unwrap()["metadata"]["resourceVersion"].clone()
    };
    let before = version(&kubectl);
    assert_eq!(
        kubectl.apply(&manifest).trim(),
        "pod/example-pod configured"
    );
    assert_eq!(version(&kubectl), before);
    let relabelled = manifest.replace(
        "service: example-pod",
        "service: example-pod\n    tier: web",
    );
    assert_eq!(
        kubectl.apply(&relabelled).trim(),
        "pod/example-pod configured"
    );
    let pod = kubectl.json(&["get", "pod", "example-pod"]);
    assert_eq!(pod["metadata"]["labels"]["tier"], "web");
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 2);
    let table = kubectl.ok(&["get", "pods"], None);
    let columns: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &columns[..4],
        ["example-pod", "2/2", "Running", "0"],
        "{table}"
    );

    applies_configmaps_with_last_applied(&kubectl);
    let created = kubectl.ok(&["create", "-f", "-"], Some(&configmap("made", "  a: b\n")));
    assert_eq!(created.trim(), "configmap/made created");

    let deleted = kubectl.ok(&["delete", "pod", "example-pod", "--timeout=60s"], None);
    assert_eq!(deleted.trim(), "pod \"example-pod\" deleted");
    let deleted = kubectl.ok(&["delete", "configmap", "settings", "made"], None);
    assert!(deleted.contains("configmap \"made\" deleted"), "{deleted}");
    let gone = kubectl.fails(&["get", "pod", "example-pod"], None);
    assert!(gone.contains("NotFound"), "{gone}");
    agent.leak_check(&uid);
}

/// Client-side apply of a ConfigMap, then of a changed one: a strategic merge patch against
/// the last-applied annotation removes the key the new manifest dropped.
fn applies_configmaps_with_last_applied(kubectl: &Kubectl120) {
    let first = configmap("settings", "  colour: blue\n  size: small\n");
    assert_eq!(kubectl.apply(&first).trim(), "configmap/settings created");
    let changed = configmap("settings", "  colour: green\n");
    assert_eq!(
        kubectl.apply(&changed).trim(),
        "configmap/settings configured"
    );
    let cm = kubectl.json(&["get", "configmap", "settings"]);
    assert_eq!(cm["data"], serde_json::json!({"colour": "green"}));
    let annotation = "kubectl.kubernetes.io/last-applied-configuration";
    let last_applied: Value =
        serde_json::from_str(cm["metadata"]["annotations"][annotation].as_str().unwrap()).unwrap();
    assert_eq!(last_applied["data"], serde_json::json!({"colour": "green"}));
}

#[test]
fn debian_kubectl_explains_and_validates_from_openapi_v2() {
    let (agent, kubectl) = start();
    let explained = kubectl.ok(&["explain", "pod.spec.containers"], None);
    for expected in [
        "KIND:     Pod",
        "VERSION:  v1",
        "RESOURCE: containers <[]Object>",
        "A single application container that you want to run within a pod.",
        "   image\t<string>",
        "   name\t<string> -required-",
        "   ports\t<[]Object>",
    ] {
        assert!(
            explained.contains(expected),
            "no {expected:?} in:\n{explained}"
        );
    }

    let invalid = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: c\n    imagee: busybox\n";
    let refused = kubectl.fails(&["apply", "-f", "-"], Some(invalid));
    assert_eq!(
        refused.trim(),
        "error: error validating \"STDIN\": error validating data: \
         ValidationError(Pod.spec.containers[0]): unknown field \"imagee\" in \
         io.k8s.api.core.v1.Container; if you choose to ignore these errors, turn validation \
         off with --validate=false"
    );
    let wrong_type =
        configmap("typed", "  count: 3\n").replace("data:", "immutable: \"yes\"\ndata:");
    let refused = kubectl.fails(&["create", "-f", "-"], Some(&wrong_type));
    assert!(
        refused.contains(
            "ValidationError(ConfigMap.immutable): invalid type for \
             io.k8s.api.core.v1.ConfigMap.immutable: got \"string\", expected \"boolean\""
        ),
        "{refused}"
    );
    let none = kubectl.fails(&["get", "pod", "typo"], None);
    assert!(none.contains("NotFound"), "refused client-side: {none}");
    drop(agent);
}

#[test]
fn kubectl_1_32_keeps_reading_openapi_v3() {
    let (agent, kubectl) = start_with_kubectl();
    let verbose = |args: &[&str], stdin: Option<&str>| {
        let mut all = args.to_vec();
        all.push("-v=6");
        let out = kubectl.run(&all, stdin);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            all.join(" "),
            text(&out.stderr)
        );
        text(&out.stderr)
    };
    let mut log = verbose(&["apply", "-f", "-"], Some(&configmap("cm", "  a: b\n")));
    log += &verbose(&["apply", "-f", "-"], Some(&configmap("cm", "  a: c\n")));
    log += &verbose(&["explain", "pod.spec.containers"], None);
    assert!(log.contains("/openapi/v3"), "{log}");
    assert!(
        !log.contains("/openapi/v2"),
        "kubectl 1.32 asked for v2:\n{log}"
    );

    let swagger: Value = serde_json::from_str(&kubectl.ok(&["get", "--raw", "/openapi/v2"]))
        .expect("the v2 document as JSON");
    assert_eq!(swagger["swagger"], "2.0");
    let pod = &swagger["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    drop(agent);
}
