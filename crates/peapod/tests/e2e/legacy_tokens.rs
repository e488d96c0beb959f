//! Legacy service account token Secrets with the real kubectl: a Secret of type
//! `kubernetes.io/service-account-token` filled by the tokens controller with kube's legacy JWT,
//! the CA and the namespace; the token authenticating as its service account (and labelling
//! its Secret last used) while the Secret holds it, read by a pod that mounts it; Secrets of
//! missing accounts deleted, and an account's Secrets and tokens going with it.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;
use crate::service_account_tokens::{admin_ca, claims_of, token_kubeconfig, unauthorized, whoami};

const ROBOT: &str = "system:serviceaccount:default:robot";

#[test]
fn legacy_token_secrets_authenticate_until_their_account_goes() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    kubectl.ok(&["create", "serviceaccount", "robot"]);
    let account = kubectl.json(&["get", "serviceaccount", "robot"]);
    let uid = account["metadata"]["uid"].as_str().unwrap();

    kubectl.apply(&token_secret("robot-token", "robot"));
    let secret = filled(&kubectl, "robot-token");
    assert_eq!(decoded(&secret, "namespace"), "default");
    assert_eq!(decoded(&secret, "ca.crt"), admin_ca(&agent));
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        uid
    );
    let token = decoded(&secret, "token");
    assert_eq!(
        claims_of(&token),
        json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "default",
            "kubernetes.io/serviceaccount/secret.name": "robot-token",
            "kubernetes.io/serviceaccount/service-account.name": "robot",
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "sub": ROBOT,
        })
    );
    let as_robot = token_kubeconfig(&agent, dir.path(), "robot", &token);
    assert_eq!(whoami(&kubectl, &as_robot), Ok(robot_user()));
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let used = kubectl.json(&["get", "secret", "robot-token"]);
    assert_eq!(
        used["metadata"]["labels"]["kubernetes.io/legacy-token-last-used"],
        today
    );

    tampered_secrets_refuse_their_token(&agent, &kubectl, dir.path());
    kubectl.apply(&token_secret("ghost-token", "ghost"));
    wait_until(
        Duration::from_secs(10),
        "the Secret of a missing account deleted",
        || !exists(&kubectl, "ghost-token"),
    );
    read_by_a_pod(&agent, &kubectl, &token);

    kubectl.ok(&["delete", "serviceaccount", "robot"]);
    wait_until(
        Duration::from_secs(10),
        "the account's token Secret deleted",
        || !exists(&kubectl, "robot-token"),
    );
    assert_eq!(whoami(&kubectl, &as_robot), Err(unauthorized()));
}

/// A second token Secret for robot, listed in its `secrets`, whose token stops working once
/// its data is changed, and which leaves the list when deleted.
fn tampered_secrets_refuse_their_token(agent: &Agent, kubectl: &Kubectl, dir: &Path) {
    let listed = r#"{"secrets":[{"name":"robot-token-2"}]}"#;
    kubectl.ok(&["patch", "serviceaccount", "robot", "-p", listed]);
    kubectl.apply(&token_secret("robot-token-2", "robot"));
    let token = decoded(&filled(kubectl, "robot-token-2"), "token");
    let as_second = token_kubeconfig(agent, dir, "second", &token);
    assert_eq!(whoami(kubectl, &as_second), Ok(robot_user()));
    let tampered = base64::engine::general_purpose::STANDARD.encode(format!("{token}x"));
    let patch = json!({"data": {"token": tampered}}).to_string();
    kubectl.ok(&["patch", "secret", "robot-token-2", "-p", &patch]);
    assert_eq!(whoami(kubectl, &as_second), Err(unauthorized()));
    kubectl.ok(&["delete", "secret", "robot-token-2"]);
    wait_until(
        Duration::from_secs(10),
        "the deleted Secret out of the account's secrets",
        || {
            let account = kubectl.json(&["get", "serviceaccount", "robot"]);
            account["secrets"].as_array().is_none_or(Vec::is_empty)
        },
    );
}

/// A pod mounting robot's token Secret reads the token the Secret holds.
fn read_by_a_pod(agent: &Agent, kubectl: &Kubectl, token: &str) {
    kubectl.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: reader\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n    volumeMounts:\n    - name: legacy\n      mountPath: /var/run/secrets/legacy\n  volumes:\n  - name: legacy\n    secret:\n      secretName: robot-token\n");
    agent.wait_running("reader");
    let (code, out, err) = agent.exec("reader", "c", &["cat", "/var/run/secrets/legacy/token"]);
    assert_eq!((code, out.as_str()), (0, token), "{err}");
    agent.delete_and_check("reader", "1");
}

fn token_secret(name: &str, account: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  annotations:\n    kubernetes.io/service-account.name: {account}\ntype: kubernetes.io/service-account-token\n")
}

/// The Secret once the tokens controller has written its token.
fn filled(kubectl: &Kubectl, name: &str) -> Value {
    let secret = poll(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || kubectl.json(&["get", "secret", name]),
        |secret| secret["data"]["token"].is_string(),
    );
    assert!(secret["data"]["token"].is_string(), "{secret}");
    secret
}

/// A key of a Secret's data, decoded.
fn decoded(secret: &Value, key: &str) -> String {
    let data = secret["data"][key].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn exists(kubectl: &Kubectl, secret: &str) -> bool {
    kubectl
        .run(&["get", "secret", secret], None)
        .status
        .success()
}

fn robot_user() -> (String, Value) {
    let groups = json!([
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated"
    ]);
    (ROBOT.to_owned(), groups)
}
