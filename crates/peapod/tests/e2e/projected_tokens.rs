//! A pod's identity with the real kubectl: the `kube-api-access-xxxxx` volume kube-apiserver's
//! admission adds (a bound token, the cluster CA, the namespace) as kubelet writes it, the
//! token authenticating as the pod's service account with the rights RBAC binds to it until
//! the pod is deleted; automounting turned off by the pod or its account; a projected token of
//! its own audience and path, owned by the one user the containers run as.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;
use crate::service_account_tokens::{claims_of, token_kubeconfig, unauthorized, whoami};

const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn pod_yaml(name: &str, spec_extra: &str, container_extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{spec_extra}  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n{container_extra}"
    )
}

fn exec(kubectl: &Kubectl, pod: &str, command: &[&str]) -> String {
    let mut args = vec!["exec", pod, "--"];
    args.extend_from_slice(command);
    kubectl.ok(&args)
}

/// The admitted `kube-api-access-` volume of `pod` and its name.
fn access_volume(pod: &Value) -> (String, Value) {
    let volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kube-api-access-"))
        })
        .unwrap_or_else(|| panic!("no kube-api-access volume: {}", pod["spec"]));
    (volume["name"].as_str().unwrap().to_owned(), volume.clone())
}

#[test]
fn a_pods_mounted_token_is_its_accounts_until_the_pod_is_deleted() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    kubectl.apply(&pod_yaml("reader", "", ""));
    agent.wait_running("reader");
    let pod = kubectl.json(&["get", "pod", "reader"]);
    let (name, volume) = access_volume(&pod);
    assert_eq!(name.len(), "kube-api-access-".len() + 5, "{name}");
    assert_eq!(
        volume["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]})
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        json!([{"mountPath": MOUNT, "name": name, "readOnly": true}])
    );

    let root_ca = kubectl.json(&["get", "configmap", "kube-root-ca.crt"]);
    assert_eq!(
        exec(&kubectl, "reader", &["cat", &format!("{MOUNT}/ca.crt")]),
        root_ca["data"]["ca.crt"].as_str().unwrap()
    );
    assert_eq!(
        exec(&kubectl, "reader", &["cat", &format!("{MOUNT}/namespace")]),
        "default"
    );
    let data = exec(
        &kubectl,
        "reader",
        &["readlink", &format!("{MOUNT}/..data")],
    );
    assert!(
        data.starts_with("..20"),
        "..data points at a timestamped dir: {data}"
    );
    let mode = exec(
        &kubectl,
        "reader",
        &["stat", "-L", "-c", "%a", &format!("{MOUNT}/token")],
    );
    assert_eq!(mode.trim(), "644");
    let writable = kubectl.run(
        &["exec", "reader", "--", "touch", &format!("{MOUNT}/x")],
        None,
    );
    assert!(
        !writable.status.success(),
        "the volume is mounted read-only"
    );

    let token = exec(&kubectl, "reader", &["cat", &format!("{MOUNT}/token")]);
    let claims = claims_of(&token);
    assert_eq!(claims["aud"], json!([ISSUER]), "{claims}");
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "reader", "uid": pod["metadata"]["uid"]})
    );
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(
        claims["kubernetes.io"]["warnafter"].as_i64().unwrap() - iat,
        3607
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 365 * 24 * 3600);

    let as_pod = token_kubeconfig(&agent, dir.path(), "pod", &token);
    let (user, _) = whoami(&kubectl, &as_pod).unwrap();
    assert_eq!(user, "system:serviceaccount:default:default");
    let can_list = |kubectl: &Kubectl| {
        let config = as_pod.to_str().unwrap();
        let out = kubectl.run(
            &["--kubeconfig", config, "auth", "can-i", "list", "pods"],
            None,
        );
        text(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        can_list(&kubectl),
        "no",
        "an account has no rights until bound"
    );
    kubectl.ok(&[
        "create",
        "rolebinding",
        "reader-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    wait_until(Duration::from_secs(10), "the binding to apply", || {
        can_list(&kubectl) == "yes"
    });

    kubectl.ok(&["delete", "pod", "reader", "--grace-period=1"]);
    assert!(agent.pod("reader").is_none());
    assert_eq!(
        whoami(&kubectl, &as_pod),
        Err(unauthorized()),
        "a deleted pod's token"
    );
    agent.leak_check(pod["metadata"]["uid"].as_str().unwrap());
}

#[test]
fn automounting_is_off_when_the_pod_or_its_account_says_so() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: quiet\nautomountServiceAccountToken: false\n");
    kubectl.apply(&pod_yaml(
        "by-pod",
        "  automountServiceAccountToken: false\n",
        "",
    ));
    kubectl.apply(&pod_yaml("by-account", "  serviceAccountName: quiet\n", ""));
    kubectl.apply(&pod_yaml(
        "overridden",
        "  serviceAccountName: quiet\n  automountServiceAccountToken: true\n",
        "",
    ));
    let own = "  volumes:\n  - name: own\n    emptyDir: {}\n";
    let own_mount = format!("    volumeMounts:\n    - name: own\n      mountPath: {MOUNT}\n");
    kubectl.apply(&pod_yaml("own-mount", own, &own_mount));
    for name in ["by-pod", "by-account", "overridden", "own-mount"] {
        agent.wait_running(name);
    }
    for name in ["by-pod", "by-account", "own-mount"] {
        let pod = kubectl.json(&["get", "pod", name]);
        let names: Vec<&str> = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with("kube-api-access-")),
            "{name}: {names:?}"
        );
    }
    let missing = kubectl.run(&["exec", "by-pod", "--", "ls", MOUNT], None);
    assert!(!missing.status.success(), "nothing mounted");
    assert_eq!(
        exec(&kubectl, "own-mount", &["ls", "-A", MOUNT]),
        "",
        "the pod's own volume"
    );
    let token = exec(&kubectl, "overridden", &["cat", &format!("{MOUNT}/token")]);
    assert_eq!(
        claims_of(&token)["sub"],
        "system:serviceaccount:default:quiet"
    );
    for name in ["by-pod", "by-account", "overridden", "own-mount"] {
        agent.delete_and_check(name, "1");
    }
}

#[test]
fn a_projected_token_has_its_audience_path_life_and_owner() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let volumes = "  securityContext:\n    runAsUser: 1000\n  automountServiceAccountToken: false\n  volumes:\n  - name: vault\n    projected:\n      sources:\n      - serviceAccountToken:\n          audience: vault\n          expirationSeconds: 600\n          path: auth/vault-token\n";
    let mount = "    volumeMounts:\n    - name: vault\n      mountPath: /vault\n";
    kubectl.apply(&pod_yaml("vaulted", volumes, mount));
    agent.wait_running("vaulted");
    let token = exec(&kubectl, "vaulted", &["cat", "/vault/auth/vault-token"]);
    let claims = claims_of(&token);
    assert_eq!(claims["aud"], json!(["vault"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(claims["kubernetes.io"].get("warnafter"), None);
    let owner = exec(
        &kubectl,
        "vaulted",
        &["stat", "-L", "-c", "%u %a", "/vault/auth/vault-token"],
    );
    assert_eq!(owner.trim(), "1000 600");
    let for_vault = token_kubeconfig(&agent, dir.path(), "vault", &token);
    assert_eq!(
        whoami(&kubectl, &for_vault),
        Err(unauthorized()),
        "not a token for the API"
    );
    agent.delete_and_check("vaulted", "1");
}
