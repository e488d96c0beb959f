//! ConfigMaps, Secrets and ServiceAccounts through the real kubectl, as a user of scenarios
//! S14 and S15 makes them: `create configmap|secret` in their forms, kustomize generators,
//! YAML with stringData, what `get` and `describe` show, kube-apiserver's refusals (bad keys,
//! oversize objects, each Secret type's rules, immutability) with nothing half-created, and
//! the `default` ServiceAccount every namespace gets and every pod runs as.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// kube's rule for ConfigMap and Secret keys, as it words a broken one.
const KEY_RULE: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const IMMUTABLE_FLAG: &str = "immutable: Forbidden: field is immutable when `immutable` is set";
const IMMUTABLE_DATA: &str = "data: Forbidden: field is immutable when `immutable` is set";

/// What kubectl prints for an Invalid answer about `kind` `name` with `causes`.
fn invalid(kind: &str, name: &str, causes: &[&str]) -> String {
    let head = format!("The {kind} \"{name}\" is invalid: ");
    match causes {
        [one] => format!("{head}{one}"),
        many => format!("{head}\n* {}", many.join("\n* ")),
    }
}

/// Decodes the base64 `data` of a Secret into text values.
fn decoded(secret: &Value) -> Value {
    use base64::Engine as _;
    let data = secret["data"].as_object().cloned().unwrap_or_default();
    let decode = |v: &Value| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64 data");
        json!(String::from_utf8(bytes).expect("UTF-8 data"))
    };
    data.iter().map(|(k, v)| (k.clone(), decode(v))).collect()
}

/// The whitespace-separated cells of each line.
fn table(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// `kubectl <args> -f -` with `manifest`, expected to fail: its stderr.
fn refused(kubectl: &Kubectl, args: &[&str], manifest: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["-f", "-"]);
    let out = kubectl.run(&all, Some(manifest));
    assert!(
        !out.status.success(),
        "{all:?} should fail: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

/// Asserts `kubectl get <what>` finds nothing.
fn absent(kubectl: &Kubectl, what: &[&str]) {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let stderr = kubectl.fails(&args);
    assert!(stderr.contains("(NotFound)"), "{what:?}: {stderr}");
}

/// The names `kubectl kustomize` gives the objects of `dir`.
fn kustomized_names(kubectl: &Kubectl, dir: &Path) -> Vec<String> {
    let built = kubectl.ok(&["kustomize", dir.to_str().unwrap()]);
    serde_yaml_ng::Deserializer::from_str(&built)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter_map(|doc| doc["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

const KUSTOMIZATION: &str = "configMapGenerator:
- name: app-config
  literals:
  - colour=blue
  files:
  - settings.ini
secretGenerator:
- name: creds
  literals:
  - user=admin
  - password=s3cr3t
resources:
- pod.yaml
";

const KUSTOMIZED_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: Never
    command: [sleep, '3600']
    env:
    - name: COLOUR
      valueFrom:
        configMapKeyRef: {name: app-config, key: colour}
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: creds, key: password}
";

#[test]
fn configmaps_from_literals_files_env_files_and_kustomize() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    creates_configmaps_from_literals_and_files(&kubectl, dir.path());
    let (config, creds) = applies_generators_and_a_pod_using_them(&agent, &kubectl, dir.path());

    let listed = kubectl.ok(&["get", "cm,secret"]);
    let rows: Vec<Vec<&str>> = table(&listed)
        .into_iter()
        .filter(|row| !row.is_empty())
        .map(|row| row[..row.len() - 1].to_vec())
        .collect();
    let config_row = format!("configmap/{config}");
    let creds_row = format!("secret/{creds}");
    assert_eq!(
        rows,
        [
            vec!["NAME", "DATA"],
            vec![config_row.as_str(), "2"],
            vec!["configmap/binary", "1"],
            vec!["configmap/from-env", "3"],
            vec!["configmap/kube-root-ca.crt", "1"],
            vec!["configmap/mixed", "4"],
            vec!["NAME", "TYPE", "DATA"],
            vec![creds_row.as_str(), "Opaque", "2"],
        ],
        "{listed}"
    );
    agent.delete_and_check("reader", "1");
}

/// `create configmap` with literals, files (named and renamed), an env file and a binary
/// file: the data stored as a cluster stores it, and `describe` showing it.
fn creates_configmaps_from_literals_and_files(kubectl: &Kubectl, dir: &Path) {
    let ini = write(dir, "settings.ini", "[ui]\ntheme = dark\n");
    let env = write(
        dir,
        "app.env",
        "# comment\nLEVEL=debug\n\nGREETING=hello world\nEMPTY=\n",
    );
    let created = kubectl.ok(&[
        "create",
        "configmap",
        "mixed",
        "--from-literal=colour=blue",
        "--from-literal=padded= spaced ",
        &format!("--from-file={ini}"),
        &format!("--from-file=renamed.ini={ini}"),
    ]);
    assert_eq!(created, "configmap/mixed created\n");
    let mixed = kubectl.json(&["get", "cm", "mixed"]);
    assert_eq!(
        mixed["data"],
        json!({"colour": "blue", "padded": " spaced ", "settings.ini": "[ui]\ntheme = dark\n",
               "renamed.ini": "[ui]\ntheme = dark\n"})
    );
    assert_eq!(mixed.get("binaryData"), None);
    kubectl.ok(&[
        "create",
        "cm",
        "from-env",
        &format!("--from-env-file={env}"),
    ]);
    assert_eq!(
        kubectl.json(&["get", "cm", "from-env"])["data"],
        json!({"LEVEL": "debug", "GREETING": "hello world", "EMPTY": ""})
    );
    let binary = dir.join("blob.bin");
    std::fs::write(&binary, [0u8, 159, 146, 150]).unwrap();
    kubectl.ok(&[
        "create",
        "cm",
        "binary",
        &format!("--from-file={}", binary.display()),
    ]);
    let stored = kubectl.json(&["get", "cm", "binary"]);
    assert_eq!(stored["binaryData"], json!({"blob.bin": "AJ+Slg=="}));
    assert_eq!(stored.get("data"), None);

    let described = kubectl.ok(&["describe", "configmap", "mixed"]);
    for line in [
        "Name:         mixed",
        "Namespace:    default",
        "colour:\n----\nblue\n",
        "settings.ini:\n----\n[ui]\ntheme = dark\n",
    ] {
        assert!(described.contains(line), "{line:?} in:\n{described}");
    }
}

/// `apply -k` of a configMapGenerator, a secretGenerator and a running pod naming both: the
/// hashed names `kubectl kustomize` gives, in the objects and in the pod. The generated names.
fn applies_generators_and_a_pod_using_them(
    agent: &Agent,
    kubectl: &Kubectl,
    dir: &Path,
) -> (String, String) {
    write(dir, "kustomization.yaml", KUSTOMIZATION);
    write(dir, "pod.yaml", KUSTOMIZED_POD);
    let names = kustomized_names(kubectl, dir);
    let [config, creds, pod]: [String; 3] = names.try_into().expect("three objects");
    assert!(config.starts_with("app-config-") && config.len() == "app-config-".len() + 10);
    assert!(creds.starts_with("creds-") && creds.len() == "creds-".len() + 10);
    assert_eq!(
        kubectl.ok(&["apply", "-k", dir.to_str().unwrap()]),
        format!("configmap/{config} created\nsecret/{creds} created\npod/{pod} created\n")
    );
    assert_eq!(
        kubectl.json(&["get", "cm", &config])["data"],
        json!({"colour": "blue", "settings.ini": "[ui]\ntheme = dark\n"})
    );
    let secret = kubectl.json(&["get", "secret", &creds]);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        decoded(&secret),
        json!({"user": "admin", "password": "s3cr3t"})
    );
    let reader = agent.wait_running("reader");
    let env = &reader["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0]["valueFrom"]["configMapKeyRef"]["name"],
        json!(config)
    );
    assert_eq!(env[1]["valueFrom"]["secretKeyRef"]["name"], json!(creds));
    (config, creds)
}

#[test]
fn configmaps_refuse_bad_keys_oversize_data_and_changes_when_immutable() {
    let (agent, kubectl) = start_with_kubectl();
    let bad_keys = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-keys\ndata:\n  a*b: x\n  '..': v\n  ok: z\n";
    let stderr = refused(&kubectl, &["create"], bad_keys);
    assert_eq!(
        stderr.trim_end(),
        invalid(
            "ConfigMap",
            "bad-keys",
            &[
                r#"data[..]: Invalid value: "..": must not be '..'"#,
                &format!(r#"data[a*b]: Invalid value: "a*b": {KEY_RULE}"#)
            ]
        )
    );
    absent(&kubectl, &["cm", "bad-keys"]);

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "x".repeat(1024 * 1024 + 1)).unwrap();
    let stderr = kubectl.fails(&[
        "create",
        "cm",
        "big",
        &format!("--from-file={}", big.display()),
    ]);
    assert_eq!(
        stderr.trim_end(),
        r#"error: failed to create configmap: ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes"#
    );
    absent(&kubectl, &["cm", "big"]);

    let frozen = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  colour: blue\n";
    kubectl.with_manifest(&["create"], frozen);
    let change = kubectl.run(
        &[
            "patch",
            "cm",
            "frozen",
            "-p",
            r#"{"data":{"colour":"red"}}"#,
        ],
        None,
    );
    assert!(!change.status.success());
    assert_eq!(
        text(&change.stderr).trim_end(),
        invalid("ConfigMap", "frozen", &[IMMUTABLE_DATA])
    );
    let thaw = kubectl.run(
        &[
            "patch",
            "cm",
            "frozen",
            "-p",
            r#"{"immutable":false,"data":{"colour":"red"}}"#,
        ],
        None,
    );
    assert_eq!(
        text(&thaw.stderr).trim_end(),
        invalid("ConfigMap", "frozen", &[IMMUTABLE_FLAG, IMMUTABLE_DATA])
    );
    let stored = kubectl.json(&["get", "cm", "frozen"]);
    assert_eq!(stored["data"], json!({"colour": "blue"}));
    assert_eq!(stored["immutable"], true);
    assert_eq!(
        kubectl.ok(&["label", "cm", "frozen", "tier=front"]),
        "configmap/frozen labeled\n",
        "metadata stays mutable"
    );
    assert_eq!(
        kubectl.ok(&["delete", "cm", "frozen"]),
        "configmap \"frozen\" deleted\n"
    );

    run_pod(&agent, &kubectl, "after-configmaps");
    agent.delete_and_check("after-configmaps", "1");
}

/// A self-signed certificate and its key, made by openssl: (cert path, key path).
fn tls_pair(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=peapod.test",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed");
    assert!(status.status.success(), "openssl: {}", text(&status.stderr));
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    (path(&cert), path(&key))
}

#[test]
fn secrets_of_each_type_from_kubectl_and_yaml() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "plain",
        "--from-literal=user=admin",
    ]);
    let cert = creates_tls_and_registry_secrets(&kubectl, dir.path());

    let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mixed\ntype: kubernetes.io/basic-auth\ndata:\n  username: YWRtaW4=\n  password: b2xk\nstringData:\n  password: new\n";
    kubectl.with_manifest(&["apply"], yaml);
    let as_yaml = kubectl.ok(&["get", "secret", "mixed", "-o", "yaml"]);
    assert!(
        as_yaml.contains("  password: bmV3\n  username: YWRtaW4=\n"),
        "{as_yaml}"
    );
    let parsed: Value = serde_yaml_ng::from_str(&as_yaml).unwrap();
    assert_eq!(parsed.get("stringData"), None, "{as_yaml}");
    assert!(
        as_yaml.contains("type: kubernetes.io/basic-auth\n"),
        "{as_yaml}"
    );

    let described = kubectl.ok(&["describe", "secret", "site"]);
    let cert_len = std::fs::metadata(&cert).unwrap().len();
    for line in [
        "Name:         site".to_owned(),
        "Type:  kubernetes.io/tls".to_owned(),
        format!("tls.crt:  {cert_len} bytes"),
    ] {
        assert!(described.contains(&line), "{line:?} in:\n{described}");
    }
    assert!(
        !described.contains("BEGIN"),
        "describe shows no secret content"
    );

    let listed = kubectl.ok(&["get", "secrets"]);
    let rows: Vec<Vec<&str>> = table(&listed)
        .into_iter()
        .map(|r| r[..3].to_vec())
        .collect();
    assert_eq!(
        rows,
        [
            ["NAME", "TYPE", "DATA"],
            ["mixed", "kubernetes.io/basic-auth", "2"],
            ["plain", "Opaque", "1"],
            ["registry", "kubernetes.io/dockerconfigjson", "1"],
            ["site", "kubernetes.io/tls", "2"],
        ],
        "{listed}"
    );

    refuses_bad_secrets(&kubectl, dir.path());
    run_pod(&agent, &kubectl, "after-secrets");
    agent.delete_and_check("after-secrets", "1");
}

/// `create secret tls` from an openssl pair and `create secret docker-registry`: their types
/// and content. The certificate's path.
fn creates_tls_and_registry_secrets(kubectl: &Kubectl, dir: &Path) -> String {
    let (cert, key) = tls_pair(dir);
    assert_eq!(
        kubectl.ok(&[
            "create",
            "secret",
            "tls",
            "site",
            &format!("--cert={cert}"),
            &format!("--key={key}")
        ]),
        "secret/site created\n"
    );
    let site = kubectl.json(&["get", "secret", "site"]);
    assert_eq!(site["type"], "kubernetes.io/tls");
    assert_eq!(
        decoded(&site)["tls.crt"],
        json!(std::fs::read_to_string(&cert).unwrap())
    );
    assert_eq!(
        decoded(&site)["tls.key"],
        json!(std::fs::read_to_string(&key).unwrap())
    );
    kubectl.ok(&[
        "create",
        "secret",
        "docker-registry",
        "registry",
        "--docker-server=registry.example:5000",
        "--docker-username=robot",
        "--docker-password=pa55",
        "--docker-email=robot@example.test",
    ]);
    let registry = kubectl.json(&["get", "secret", "registry"]);
    assert_eq!(registry["type"], "kubernetes.io/dockerconfigjson");
    let config: Value =
        serde_json::from_str(decoded(&registry)[".dockerconfigjson"].as_str().unwrap()).unwrap();
    assert_eq!(
        config,
        json!({"auths": {"registry.example:5000": {"username": "robot", "password": "pa55",
               "email": "robot@example.test", "auth": "cm9ib3Q6cGE1NQ=="}}})
    );
    cert
}

/// A Secret manifest: `extra` holds its data, stringData or immutable lines.
fn secret_manifest(name: &str, type_: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: {type_}\n{extra}")
}

/// Each Secret type's rule, the size limit, and immutability, as kubectl reports them.
fn refuses_bad_secrets(kubectl: &Kubectl, dir: &Path) {
    let key_error = format!(r#"data[a b]: Invalid value: "a b": {KEY_RULE}"#);
    let redacted = r#"data[.dockerconfigjson]: Invalid value: "<secret contents redacted>""#;
    let truncated = format!("{redacted}: unexpected end of JSON input");
    let array = format!(
        "{redacted}: json: cannot unmarshal array into Go value of type map[string]interface {{}}"
    );
    let tls = "stringData:\n  tls.crt: x\n";
    let ssh = "stringData:\n  ssh-privatekey: ''\n";
    let cases: [(String, Vec<&str>); 8] = [
        (
            secret_manifest("bad-tls", "kubernetes.io/tls", tls),
            vec!["data[tls.key]: Required value"],
        ),
        (
            secret_manifest("bad-ssh", "kubernetes.io/ssh-auth", ssh),
            vec!["data[ssh-privatekey]: Required value"],
        ),
        (
            secret_manifest(
                "bad-basic",
                "kubernetes.io/basic-auth",
                "stringData:\n  user: x\n",
            ),
            vec![
                "data[username]: Required value",
                "data[password]: Required value",
            ],
        ),
        (
            secret_manifest("bad-cfg", "kubernetes.io/dockercfg", ""),
            vec!["data[.dockercfg]: Required value"],
        ),
        (
            secret_manifest(
                "bad-json",
                "kubernetes.io/dockerconfigjson",
                "stringData:\n  .dockerconfigjson: '{\"auths\": '\n",
            ),
            vec![&truncated],
        ),
        (
            secret_manifest(
                "bad-json2",
                "kubernetes.io/dockerconfigjson",
                "stringData:\n  .dockerconfigjson: '[]'\n",
            ),
            vec![&array],
        ),
        (
            secret_manifest("bad-token", "kubernetes.io/service-account-token", ""),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
        (
            secret_manifest("bad-key", "Opaque", "stringData:\n  'a b': x\n"),
            vec![&key_error],
        ),
    ];
    for (manifest, why) in &cases {
        let name = manifest
            .split("name: ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap();
        let stderr = refused(kubectl, &["create"], manifest);
        assert_eq!(stderr.trim_end(), invalid("Secret", name, why));
        absent(kubectl, &["secret", name]);
    }

    refuses_oversize_and_immutable_changes(kubectl, dir);
}

/// A Secret over 1 MiB, and changes to an immutable one.
fn refuses_oversize_and_immutable_changes(kubectl: &Kubectl, dir: &Path) {
    let big = dir.join("big.bin");
    std::fs::write(&big, vec![7u8; 1024 * 1024 + 1]).unwrap();
    let stderr = kubectl.fails(&[
        "create",
        "secret",
        "generic",
        "big",
        &format!("--from-file={}", big.display()),
    ]);
    assert_eq!(
        stderr.trim_end(),
        r#"error: failed to create secret Secret "big" is invalid: data: Too long: may not be more than 1048576 bytes"#
    );
    absent(kubectl, &["secret", "big"]);

    let frozen = secret_manifest("frozen", "Opaque", "immutable: true\nstringData:\n  k: v\n");
    kubectl.with_manifest(&["create"], &frozen);
    let out = kubectl.run(
        &[
            "patch",
            "secret",
            "frozen",
            "-p",
            r#"{"stringData":{"k":"w"}}"#,
        ],
        None,
    );
    assert_eq!(
        text(&out.stderr).trim_end(),
        invalid("Secret", "frozen", &[IMMUTABLE_DATA])
    );
    let out = kubectl.run(
        &[
            "patch",
            "secret",
            "frozen",
            "-p",
            r#"{"type":"kubernetes.io/tls"}"#,
        ],
        None,
    );
    assert_eq!(
        text(&out.stderr).trim_end(),
        invalid(
            "Secret",
            "frozen",
            &[
                r#"type: Invalid value: "kubernetes.io/tls": field is immutable"#,
                "data[tls.crt]: Required value",
                "data[tls.key]: Required value",
            ]
        )
    );
    assert_eq!(
        decoded(&kubectl.json(&["get", "secret", "frozen"])),
        json!({"k": "v"})
    );
}

/// Starts a pod `name` in the default namespace and waits until it runs.
fn run_pod(agent: &Agent, kubectl: &Kubectl, name: &str) -> Value {
    kubectl.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n"
    ));
    agent.wait_running(name)
}

/// A pod manifest in `namespace` running as `account` (none: the field is left out).
fn pod_as(name: &str, namespace: &str, account: Option<&str>) -> String {
    let account = account.map_or(String::new(), |a| format!("  serviceAccountName: {a}\n"));
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{account}  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n"
    )
}

fn uid_of_default_account(kubectl: &Kubectl, namespace: &str) -> Option<String> {
    let out = kubectl.run(
        &[
            "get",
            "sa",
            "default",
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    out.status.success().then(|| text(&out.stdout))
}

#[test]
fn every_namespace_has_a_default_service_account_that_pods_run_as() {
    let (agent, kubectl) = start_with_kubectl();
    wait_until(Duration::from_secs(5), "the default account", || {
        uid_of_default_account(&kubectl, "default").is_some()
    });
    let accounts = kubectl.ok(&["get", "sa"]);
    assert_eq!(table(&accounts)[1][..2], ["default", "0"], "{accounts}");

    // A namespace and a pod in it in one apply: the pod waits for the account in admission.
    let both = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\n{}",
        pod_as("member", "team", None)
    );
    assert_eq!(
        kubectl.apply(&both),
        "namespace/team created\npod/member created\n"
    );
    let member = kubectl.json(&["get", "pod", "member", "-n", "team"]);
    assert_eq!(member["spec"]["serviceAccountName"], "default");
    assert_eq!(member["spec"]["serviceAccount"], "default");
    let member_uid = member["metadata"]["uid"].as_str().unwrap().to_owned();

    let first = uid_of_default_account(&kubectl, "team").expect("team's default account");
    kubectl.ok(&["delete", "sa", "default", "-n", "team"]);
    wait_until(Duration::from_secs(5), "default made again", || {
        uid_of_default_account(&kubectl, "team").is_some_and(|uid| uid != first)
    });

    let stderr = refused(
        &kubectl,
        &["create"],
        &pod_as("ghostly", "team", Some("ghost")),
    );
    assert_eq!(
        stderr.trim_end(),
        r#"Error from server (Forbidden): error when creating "STDIN": pods "ghostly" is forbidden: error looking up service account team/ghost: serviceaccount "ghost" not found"#
    );
    absent(&kubectl, &["pod", "ghostly", "-n", "team"]);

    let builder = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: builder\n  namespace: team\nimagePullSecrets:\n- name: regcred\n";
    kubectl.apply(builder);
    let deprecated =
        pod_as("built", "team", None).replace("spec:\n", "spec:\n  serviceAccount: builder\n");
    let dry = kubectl.with_manifest(&["create", "--dry-run=server", "-o", "json"], &deprecated);
    let dry: Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(dry["spec"]["serviceAccountName"], "builder");
    assert_eq!(
        dry["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    absent(&kubectl, &["pod", "built", "-n", "team"]);

    kubectl.ok(&[
        "delete",
        "namespace",
        "team",
        "--wait=true",
        "--timeout=60s",
    ]);
    agent.leak_check(&member_uid);
    assert_eq!(uid_of_default_account(&kubectl, "team"), None);

    let pod = run_pod(&agent, &kubectl, "runner");
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let described = kubectl.ok(&["describe", "pod", "runner"]);
    assert!(
        described.contains("Service Account:  default\n"),
        "{described}"
    );
    agent.delete_and_check("runner", "1");
}
