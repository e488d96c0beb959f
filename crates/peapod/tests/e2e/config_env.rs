//! Container environments from ConfigMaps, Secrets and the downward API, end to end: the env
//! behaviours of Kubernetes' conformance tests (test/e2e/common/node/configmap.go, secrets.go,
//! downwardapi.go, expansion.go), kubelet's CreateContainerConfigError for a missing
//! reference, and the start that follows by itself once the object appears.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(30);

/// The `NAME=value` lines a container printed, as a map (values may hold `=`).
fn env_of(agent: &Agent, pod: &str, container: &str) -> BTreeMap<String, String> {
    agent
        .ok(&["logs", pod, "-c", container])
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn assert_vars(env: &BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (name, value) in expected {
        assert_eq!(
            env.get(*name).map(String::as_str),
            Some(*value),
            "{name} in {env:#?}"
        );
    }
}

/// A byte count of a quantity the node prints (`16318484Ki`, `8Gi`, `1024`).
fn bytes_of(quantity: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    for (suffix, scale) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().expect("whole number") * scale;
        }
    }
    quantity.parse().expect("a byte count")
}

fn waiting(pod: &Value, container_name: &str) -> (String, String) {
    let state = &container(pod, container_name)["state"]["waiting"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (text(&state["reason"]), text(&state["message"]))
}

const SOURCES: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-env}
data: {data-1: value-1, data-2: value-2, 1badkey: one, REPLACE_ME: FROM_CONFIG_MAP, DUPE: CONFIG_MAP}
---
apiVersion: v1
kind: Secret
metadata: {name: secret-env}
data: {data-1: dmFsdWUtMQ==, password: czNjcjN0}
---
apiVersion: v1
kind: Pod
metadata: {name: env-sources}
spec:
  restartPolicy: Never
  containers:
  - name: env-test
    image: busybox
    imagePullPolicy: Never
    command: [env]
    envFrom:
    - configMapRef: {name: cm-env}
    - prefix: p-
      configMapRef: {name: cm-env}
    - prefix: s_
      secretRef: {name: secret-env}
    - configMapRef: {name: missing-cm, optional: true}
    - secretRef: {name: missing-secret, optional: true}
    env:
    - name: CONFIG_DATA_1
      valueFrom: {configMapKeyRef: {name: cm-env, key: data-1}}
    - name: SECRET_DATA
      valueFrom: {secretKeyRef: {name: secret-env, key: password}}
    - name: OPT_CM
      valueFrom: {configMapKeyRef: {name: missing-cm, key: k, optional: true}}
    - name: OPT_KEY
      valueFrom: {configMapKeyRef: {name: cm-env, key: nokey, optional: true}}
    - name: OPT_SECRET
      valueFrom: {secretKeyRef: {name: missing-secret, key: k, optional: true}}
    - {name: DUPE, value: ENV_VAR}
    - {name: EXPANSION, value: "$(REPLACE_ME)-$(SECRET_DATA)-$(UNDEFINED)-$$(DUPE)"}
  - name: expand
    image: busybox
    imagePullPolicy: Never
    command: [sh, -c, 'echo "CMD=$1"', sh, "$(DUPE)"]
    env:
    - {name: DUPE, value: "from $(POD)"}
    - name: POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
"#;

/// ConfigMapKeyRef, SecretKeyRef, envFrom with and without prefix, optional references to
/// what does not exist, env over envFrom, and `$(VAR)` in values and in the command.
#[test]
fn config_maps_and_secrets_feed_env_and_env_from() {
    let agent = Agent::start();
    agent.apply(SOURCES);
    agent.wait_phase("env-sources", "Succeeded", WITHIN);
    let env = env_of(&agent, "env-sources", "env-test");
    assert_vars(
        &env,
        &[
            ("CONFIG_DATA_1", "value-1"),
            ("SECRET_DATA", "s3cr3t"),
            ("data-1", "value-1"),
            ("data-2", "value-2"),
            ("p-data-1", "value-1"),
            ("p-DUPE", "CONFIG_MAP"),
            ("s_data-1", "value-1"),
            ("s_password", "s3cr3t"),
            ("REPLACE_ME", "FROM_CONFIG_MAP"),
            ("DUPE", "ENV_VAR"),
            ("EXPANSION", "FROM_CONFIG_MAP-s3cr3t-$(UNDEFINED)-$(DUPE)"),
            // 1.32's RelaxedEnvironmentVariableValidation: no key is skipped.
            ("1badkey", "one"),
            ("p-1badkey", "one"),
        ],
    );
    for absent in ["OPT_CM", "OPT_KEY", "OPT_SECRET"] {
        assert!(!env.contains_key(absent), "{absent} set: {env:#?}");
    }
    // A variable refers only to those before it: POD comes after DUPE.
    let expand = agent.ok(&["logs", "env-sources", "-c", "expand"]);
    assert_eq!(expand.trim(), "CMD=from $(POD)");
    let uid = agent.uid("env-sources");
    let invalid = agent
        .events_of(&uid)
        .into_iter()
        .filter(|e| e["reason"] == "InvalidEnvironmentVariableNames")
        .count();
    assert_eq!(invalid, 0, "no key was skipped");
    agent.delete_and_check("env-sources", "0");
}

const DOWNWARD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: dapi
  labels: {app: web}
  annotations: {note: "hello world"}
spec:
  restartPolicy: Never
  containers:
  - name: limited
    image: busybox
    imagePullPolicy: Never
    command: [env]
    resources:
      limits: {cpu: 1250m, memory: 64Mi}
      requests: {cpu: 250m, memory: 32Mi}
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: LABEL_APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: NOTE, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['note']"}}}
    - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: SA_NAME, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: HOST_IPS, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: POD_IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: CPU_LIMIT_M, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    - {name: MEMORY_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU_REQUEST, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: MEMORY_REQUEST, valueFrom: {resourceFieldRef: {resource: requests.memory}}}
    - {name: GREETING, value: "$(POD_NAME) in $(POD_NAMESPACE) at $(POD_IP)"}
  - name: unlimited
    image: busybox
    imagePullPolicy: Never
    command: [env]
    env:
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: MEMORY_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory}}}
    - name: NEIGHBOUR_MEMORY
      valueFrom: {resourceFieldRef: {containerName: limited, resource: limits.memory, divisor: 1Ki}}
"#;

/// fieldRef for every path env may read, resourceFieldRef with divisors, and limits left
/// unset reading the node's allocatable.
#[test]
fn the_downward_api_feeds_env() {
    let agent = Agent::start();
    agent.apply(DOWNWARD);
    let pod = agent.wait_phase("dapi", "Succeeded", WITHIN);
    let status = &pod["status"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let (uid, node) = (
        text(&pod["metadata"]["uid"]),
        text(&pod["spec"]["nodeName"]),
    );
    let (pod_ip, host_ip) = (text(&status["podIP"]), text(&status["hostIP"]));
    assert!(!pod_ip.is_empty() && !host_ip.is_empty() && !node.is_empty());
    let greeting = format!("dapi in default at {pod_ip}");
    assert_vars(
        &env_of(&agent, "dapi", "limited"),
        &[
            ("POD_NAME", "dapi"),
            ("POD_NAMESPACE", "default"),
            ("POD_UID", &uid),
            ("LABEL_APP", "web"),
            ("NOTE", "hello world"),
            ("NODE_NAME", &node),
            ("SA_NAME", "default"),
            ("HOST_IP", &host_ip),
            ("HOST_IPS", &host_ip),
            ("POD_IP", &pod_ip),
            ("POD_IPS", &pod_ip),
            ("CPU_LIMIT", "2"),
            ("CPU_LIMIT_M", "1250"),
            ("MEMORY_LIMIT", "64"),
            ("CPU_REQUEST", "250"),
            ("MEMORY_REQUEST", "33554432"),
            ("GREETING", &greeting),
        ],
    );
    let nodes = agent.api_get("/api/v1/nodes");
    let allocatable = &nodes["items"][0]["status"]["allocatable"];
    let memory = bytes_of(allocatable["memory"].as_str().expect("allocatable memory"));
    assert_vars(
        &env_of(&agent, "dapi", "unlimited"),
        &[
            (
                "CPU_LIMIT",
                allocatable["cpu"].as_str().expect("allocatable cpu"),
            ),
            ("MEMORY_LIMIT", &memory.to_string()),
            ("NEIGHBOUR_MEMORY", "65536"),
        ],
    );
    agent.delete_and_check("dapi", "0");
}

const WAITS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: waits}
spec:
  containers:
  - name: app
    image: busybox
    imagePullPolicy: Never
    command: [sh, -c, "echo MODE=$MODE; echo TOKEN=$s_token; sleep 3600"]
    envFrom:
    - prefix: s_
      secretRef: {name: app-secret}
    env:
    - name: MODE
      valueFrom: {configMapKeyRef: {name: app-config, key: mode}}
"#;

/// Waits until the container waits with CreateContainerConfigError and `message`, and the
/// kubelet's Warning Failed event says so.
fn expect_config_error(agent: &Agent, uid: &str, message: &str) {
    let pod = agent.wait_pod("waits", message, WITHIN, |p| {
        waiting(p, "app") == ("CreateContainerConfigError".into(), message.into())
    });
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(container(&pod, "app")["restartCount"], 0);
    let event = format!("Error: {message}");
    let failed = agent.wait_event(uid, "Failed", WITHIN, |m| m == event);
    assert_eq!(failed["type"], "Warning");
    assert_eq!(
        failed["involvedObject"]["fieldPath"],
        "spec.containers{app}"
    );
}

/// A missing ConfigMap, then a missing key, then a missing Secret: each held in
/// CreateContainerConfigError with kubelet's message; once all exist the container starts by
/// itself, well within the minute of back-off this agent would otherwise wait.
#[test]
fn missing_references_hold_the_container_until_they_appear() {
    let agent = Agent::start_with_backoff("60s");
    agent.apply(WAITS);
    let uid = agent.uid("waits");
    expect_config_error(&agent, &uid, "secret \"app-secret\" not found");
    assert_eq!(agent.get_status("waits"), "CreateContainerConfigError");

    agent
        .apply("apiVersion: v1\nkind: Secret\nmetadata: {name: app-secret}\ndata: {token: dDBr}\n");
    expect_config_error(&agent, &uid, "configmap \"app-config\" not found");

    agent
        .apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {other: x}\n");
    expect_config_error(
        &agent,
        &uid,
        "couldn't find key mode in ConfigMap default/app-config",
    );

    agent.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {mode: fast}\n",
    );
    let pod = agent.wait_pod("waits", "running", Duration::from_secs(15), all_running);
    assert_eq!(container(&pod, "app")["restartCount"], 0);
    wait_until(WITHIN, "the container's output", || {
        agent.ok(&["logs", "waits"]) == "MODE=fast\nTOKEN=t0k\n"
    });
    agent.delete_and_check("waits", "0");
}

const INIT_WAITS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: init-waits}
spec:
  restartPolicy: Never
  initContainers:
  - name: setup
    image: busybox
    imagePullPolicy: Never
    command: [sh, -c, "echo STAGE=$STAGE"]
    env:
    - name: STAGE
      valueFrom: {configMapKeyRef: {name: init-config, key: stage}}
  containers:
  - name: app
    image: busybox
    imagePullPolicy: Never
    command: ["true"]
"#;

/// An init container of a `restartPolicy: Never` pod that never ran is not failed: it waits
/// for its ConfigMap, then runs, and the pod completes.
#[test]
fn an_init_container_waits_for_its_config_map_even_when_nothing_restarts() {
    let agent = Agent::start_with_backoff("60s");
    agent.apply(INIT_WAITS);
    let message = "configmap \"init-config\" not found";
    let pod = agent.wait_pod("init-waits", message, WITHIN, |p| {
        let state = &p["status"]["initContainerStatuses"][0]["state"]["waiting"];
        state["reason"] == "CreateContainerConfigError" && state["message"] == message
    });
    assert_eq!(pod["status"]["phase"], "Pending");
    agent.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: init-config}\ndata: {stage: one}\n",
    );
    agent.wait_phase("init-waits", "Succeeded", Duration::from_secs(15));
    assert_eq!(
        agent.ok(&["logs", "init-waits", "-c", "setup"]),
        "STAGE=one\n"
    );
    agent.delete_and_check("init-waits", "0");
}
