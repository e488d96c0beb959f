//! `kubectl apply --server-side` against an agent: a ConfigMap created and changed by apply,
//! a conflicting `kubectl patch` and applier, `--force-conflicts`, the managers
//! `--show-managed-fields` shows, and kubectl's migration of an object client-side apply made.

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;
use serde_json::Value;

fn configmap(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n{data}")
}

/// (manager, operation) of each managedFields entry.
fn managers(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |n: &str| e[n].as_str().unwrap_or_default().to_owned();
            (text("manager"), text("operation"))
        })
        .collect()
}

fn pair(manager: &str, operation: &str) -> (String, String) {
    (manager.to_owned(), operation.to_owned())
}

#[test]
fn server_side_apply_with_kubectl() {
    let (agent, kubectl) = start_with_kubectl();
    let ssa = ["apply", "--server-side"];

    let created = kubectl.with_manifest(&ssa, &configmap("ssa", "  colour: blue\n  size: small\n"));
    assert_eq!(created.trim(), "configmap/ssa serverside-applied");
    let cm = kubectl.json_managed(&["get", "cm", "ssa"]);
    assert_eq!(managers(&cm), [pair("kubectl", "Apply")]);
    assert_eq!(
        cm["metadata"]["managedFields"][0]["fieldsV1"],
        serde_json::json!({"f:data": {"f:colour": {}, "f:size": {}}})
    );

    // Applied again: size is no longer applied, so it goes.
    let changed = kubectl.with_manifest(&ssa, &configmap("ssa", "  colour: green\n"));
    assert_eq!(changed.trim(), "configmap/ssa serverside-applied");
    let cm = kubectl.json_managed(&["get", "cm", "ssa"]);
    assert_eq!(cm["data"], serde_json::json!({"colour": "green"}));

    // kubectl patch takes colour; another applier changing it conflicts.
    let patched = kubectl.ok(&["patch", "cm", "ssa", "-p", r#"{"data":{"colour":"red"}}"#]);
    assert_eq!(patched.trim(), "configmap/ssa patched");
    let other = configmap("ssa", "  colour: purple\n");
    let refused = kubectl.run(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&other),
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.colour"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--force-conflicts"), "{stderr}");

    let forced = kubectl.with_manifest(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=other",
        ],
        &other,
    );
    assert_eq!(forced.trim(), "configmap/ssa serverside-applied");
    let yaml = kubectl.ok(&["get", "cm", "ssa", "-o", "yaml", "--show-managed-fields"]);
    assert!(yaml.contains("manager: other"), "{yaml}");
    assert!(yaml.contains("operation: Apply"), "{yaml}");
    assert!(yaml.contains("f:colour: {}"), "{yaml}");
    let cm = kubectl.json_managed(&["get", "cm", "ssa"]);
    assert_eq!(cm["data"]["colour"], "purple");
    assert_eq!(
        managers(&cm),
        [pair("other", "Apply")],
        "kubectl and kubectl-patch lost colour, their only field"
    );
    let plain = kubectl.ok(&["get", "cm", "ssa", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // An object client-side apply made: kubectl's server-side apply takes it over without
    // conflicts, keeps the annotation under kubectl-last-applied and migrates the fields.
    let csa = configmap("legacy", "  colour: blue\n");
    let created = kubectl.with_manifest(&["apply"], &csa);
    assert_eq!(created.trim(), "configmap/legacy created");
    let cm = kubectl.json_managed(&["get", "cm", "legacy"]);
    assert_eq!(managers(&cm), [pair("kubectl-client-side-apply", "Update")]);
    let migrated = kubectl.with_manifest(&ssa, &configmap("legacy", "  colour: yellow\n"));
    assert_eq!(migrated.trim(), "configmap/legacy serverside-applied");
    let cm = kubectl.json_managed(&["get", "cm", "legacy"]);
    assert_eq!(cm["data"]["colour"], "yellow");
    let names: Vec<(String, String)> = managers(&cm);
    assert!(
        names.contains(&pair("kubectl", "Apply"))
            && names.contains(&pair("kubectl-last-applied", "Apply"))
            && !names.iter().any(|(m, _)| m == "kubectl-client-side-apply"),
        "{names:?}"
    );
    let annotation = cm["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_default();
    assert!(annotation.contains("yellow"), "{annotation}");
    drop(agent);
}

trait ManagedFields {
    fn json_managed(&self, args: &[&str]) -> Value;
}

impl ManagedFields for Kubectl {
    /// `-o json` with `metadata.managedFields` shown.
    fn json_managed(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--show-managed-fields");
        self.json(&all)
    }
}
