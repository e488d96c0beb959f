//! Service account tokens with the real kubectl: `kubectl create token` (plain, short, for
//! another audience, bound to a pod) answered with kube's claims and messages, the tokens
//! authenticating `kubectl auth whoami` and raw requests as the service account until what
//! they are bound to is gone, and `kube-root-ca.crt` published in every namespace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const DEFAULT_USER: &str = "system:serviceaccount:default:default";

#[test]
fn service_account_tokens_authenticate_until_their_binding_goes() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let ca = admin_ca(&agent);
    root_ca_published(&kubectl, &ca);

    let token = kubectl
        .ok(&["create", "token", "default"])
        .trim()
        .to_owned();
    let claims = claims_of(&token);
    assert_eq!(claims["iss"], ISSUER, "{claims}");
    assert_eq!(claims["sub"], DEFAULT_USER);
    assert_eq!(claims["aud"], json!([ISSUER]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let account = kubectl.json(&["get", "serviceaccount", "default"]);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "default", "uid": account["metadata"]["uid"]}})
    );
    let as_account = token_kubeconfig(&agent, dir.path(), "plain", &token);
    assert_eq!(whoami(&kubectl, &as_account), Ok(account_user()));
    raw_get_as_account(&kubectl, &as_account);

    let short = kubectl.fails(&["create", "token", "default", "--duration=5m"]);
    assert!(
        short.contains("TokenRequest.authentication.k8s.io \"default\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"),
        "{short}"
    );
    let elsewhere = kubectl.ok(&["create", "token", "default", "--audience=vault"]);
    assert_eq!(claims_of(elsewhere.trim())["aud"], json!(["vault"]));
    let for_vault = token_kubeconfig(&agent, dir.path(), "vault", elsewhere.trim());
    assert_eq!(whoami(&kubectl, &for_vault), Err(unauthorized()));
    let forged = token_kubeconfig(&agent, dir.path(), "forged", &format!("{token}x"));
    assert_eq!(whoami(&kubectl, &forged), Err(unauthorized()));

    let missing = kubectl.fails(&[
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=nope",
    ]);
    assert!(missing.contains("pods \"nope\" not found"), "{missing}");
    kubectl.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: holder\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n");
    let pod = agent.wait_running("holder");
    let bound = kubectl.ok(&[
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=holder",
    ]);
    let bound_claims = claims_of(bound.trim());
    assert_eq!(
        bound_claims["kubernetes.io"]["pod"],
        json!({"name": "holder", "uid": pod["metadata"]["uid"]})
    );
    let node = kubectl.json(&["get", "node", pod["spec"]["nodeName"].as_str().unwrap()]);
    assert_eq!(
        bound_claims["kubernetes.io"]["node"]["uid"],
        node["metadata"]["uid"]
    );
    let as_pod = token_kubeconfig(&agent, dir.path(), "bound", bound.trim());
    assert_eq!(whoami(&kubectl, &as_pod), Ok(account_user()));
    let extra = &user_info(&kubectl, &as_pod).unwrap()["extra"];
    let key = |name: &str| format!("authentication.kubernetes.io/{name}");
    assert_eq!(extra[key("pod-name")], json!(["holder"]), "{extra}");
    assert_eq!(extra[key("pod-uid")], json!([pod["metadata"]["uid"]]));
    assert_eq!(extra[key("node-name")], json!([pod["spec"]["nodeName"]]));
    assert_eq!(extra[key("node-uid")], json!([node["metadata"]["uid"]]));
    let jti = bound_claims["jti"].as_str().unwrap();
    assert_eq!(extra[key("credential-id")], json!([format!("JTI={jti}")]));

    agent.delete_and_check("holder", "1");
    assert_eq!(whoami(&kubectl, &as_pod), Err(unauthorized()));
    assert_eq!(
        whoami(&kubectl, &as_account),
        Ok(account_user()),
        "the unbound token still works"
    );
}

/// The user and groups `kubectl auth whoami` reports as; Err(stderr) when it fails.
pub(crate) fn whoami(kubectl: &Kubectl, kubeconfig: &Path) -> Result<(String, Value), String> {
    let user = user_info(kubectl, kubeconfig)?;
    let name = user["username"].as_str().unwrap_or_default().to_owned();
    Ok((name, user["groups"].clone()))
}

/// The `userInfo` of `kubectl auth whoami -o json`; Err(stderr) when it fails.
fn user_info(kubectl: &Kubectl, kubeconfig: &Path) -> Result<Value, String> {
    let path = kubeconfig.to_str().unwrap();
    let out = kubectl.run(
        &["--kubeconfig", path, "auth", "whoami", "-o", "json"],
        None,
    );
    if !out.status.success() {
        return Err(text(&out.stderr).trim().to_owned());
    }
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(review["status"]["userInfo"].clone())
}

fn account_user() -> (String, Value) {
    let groups = json!([
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated"
    ]);
    (DEFAULT_USER.to_owned(), groups)
}

pub(crate) fn unauthorized() -> String {
    "error: You must be logged in to the server (Unauthorized)".to_owned()
}

/// A raw GET with the token reaches the API as the service account: answered, or refused
/// by the authorizer naming the account.
fn raw_get_as_account(kubectl: &Kubectl, kubeconfig: &Path) {
    let path = kubeconfig.to_str().unwrap();
    let url = "/api/v1/namespaces/default/serviceaccounts/default";
    let out = kubectl.run(&["--kubeconfig", path, "get", "--raw", url], None);
    if out.status.success() {
        let account: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(account["metadata"]["name"], "default");
    } else {
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Forbidden") || stderr.contains("forbidden"),
            "{stderr}"
        );
        assert!(stderr.contains(DEFAULT_USER), "{stderr}");
    }
}

/// The payload of a JWT.
pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn admin_kubeconfig(agent: &Agent) -> Value {
    let text =
        std::fs::read_to_string(agent.path().join("var/lib/peapod/kubeconfig.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The CA certificate (PEM) of the agent's kubeconfig.
pub(crate) fn admin_ca(agent: &Agent) -> String {
    let config = admin_kubeconfig(agent);
    let data = config["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    )
    .unwrap()
}

/// A kubeconfig for the agent authenticating with `token` alone.
pub(crate) fn token_kubeconfig(agent: &Agent, dir: &Path, name: &str, token: &str) -> PathBuf {
    let mut config = admin_kubeconfig(agent);
    config["users"][0]["user"] = json!({"token": token});
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

/// `kube-root-ca.crt` appears in a new namespace with the CA, and comes back when deleted or
/// changed.
fn root_ca_published(kubectl: &Kubectl, ca: &str) {
    kubectl.ok(&["create", "namespace", "published"]);
    let get = [
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "published",
        "-o",
        "json",
    ];
    let published = || -> Option<Value> {
        let out = kubectl.run(&get, None);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    };
    let is_right = |cm: &Value| cm["data"] == json!({"ca.crt": ca});
    wait_until(Duration::from_secs(10), "kube-root-ca.crt", || {
        published().is_some_and(|cm| is_right(&cm))
    });
    let config_map = published().unwrap();
    assert_eq!(
        config_map["metadata"]["annotations"]["kubernetes.io/description"],
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
    );
    let uid = config_map["metadata"]["uid"].clone();
    kubectl.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "published",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    wait_until(Duration::from_secs(10), "the CA put back", || {
        published().is_some_and(|cm| is_right(&cm))
    });
    kubectl.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "published"]);
    wait_until(
        Duration::from_secs(10),
        "kube-root-ca.crt made again",
        || published().is_some_and(|cm| is_right(&cm) && cm["metadata"]["uid"] != uid),
    );
    kubectl.ok(&["delete", "namespace", "published", "--timeout=60s"]);
}
