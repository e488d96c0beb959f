//! configMap, secret, downwardAPI and projected volumes end to end: the volume behaviours of
//! Kubernetes' conformance tests (test/e2e/common/storage/configmap_volume.go,
//! secrets_volume.go, downwardapi_volume.go, projected_*.go) — file contents and modes, items,
//! optional sources, updates reaching the files (never through a subPath), secrets on tmpfs,
//! fsGroup, kubelet's FailedMount for a missing source, and the API's refusal of `..` paths.

use std::time::{Duration, Instant};

use crate::common::kubectl::start_with_kubectl;
use crate::common::*;
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(30);

/// Runs `sh -c script` in the pod's container; its stdout, failing the test on an error.
fn sh(agent: &Agent, pod: &str, script: &str) -> String {
    let (code, out, err) = agent.exec(pod, "main", &["sh", "-c", script]);
    assert_eq!(code, 0, "{script}: {out}{err}");
    out.trim_end().to_string()
}

/// Waits until `script` prints `expected` in the pod; how long that took.
fn wait_output(agent: &Agent, pod: &str, script: &str, expected: &str) -> Duration {
    let start = Instant::now();
    let last = poll(
        WITHIN,
        Duration::from_millis(100),
        || sh(agent, pod, script),
        |out| out == expected,
    );
    assert_eq!(last, expected, "{script} never printed {expected:?}");
    start.elapsed()
}

fn volume_dir(agent: &Agent, uid: &str, plugin: &str, volume: &str) -> std::path::PathBuf {
    agent
        .path()
        .join("var/lib/peapod/pods")
        .join(uid)
        .join("volumes")
        .join(plugin)
        .join(volume)
}

/// The filesystem type of the mount at `path` in the container.
fn mount_type(agent: &Agent, pod: &str, path: &str) -> String {
    let mounts = sh(agent, pod, "cat /proc/mounts");
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&path))
        .map(|fields| fields[2].to_string())
        .unwrap_or_else(|| panic!("{path} is not mounted: {mounts}"))
}

const CONFIG_MAP_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {data-1: value-1, data-2: value-2, data-3: value-3}
---
apiVersion: v1
kind: Pod
metadata: {name: cm-vol}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - name: all
    configMap: {name: cm}
  - name: items
    configMap:
      name: cm
      defaultMode: 0400
      items:
      - {key: data-2, path: path/to/data-2, mode: 0600}
      - {key: data-1, path: one}
  - name: opt
    configMap: {name: no-such-cm, optional: true}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts:
    - {name: all, mountPath: /etc/all}
    - {name: items, mountPath: /etc/items}
    - {name: opt, mountPath: /etc/opt}
    - {name: all, mountPath: /etc/sub/data-1, subPath: data-1}
"#;

/// Every key as a file with defaultMode 0644; items with their paths and modes under
/// defaultMode 0400; an optional ConfigMap that does not exist gives an empty volume; the
/// volume is read-only, on disk, in kubelet's `..data` layout; an update of the ConfigMap
/// reaches the files (a removed key's file goes), but not a subPath mount.
#[test]
fn config_map_volume_files_modes_items_and_updates() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(CONFIG_MAP_POD);
    agent.wait_running("cm-vol");
    let pod = "cm-vol";
    assert_eq!(
        sh(&agent, pod, "cat /etc/all/data-1 /etc/all/data-2"),
        "value-1value-2"
    );
    assert_eq!(sh(&agent, pod, "stat -L -c %a /etc/all/data-1"), "644");
    assert_eq!(
        sh(
            &agent,
            pod,
            "cat /etc/items/one; stat -L -c %a /etc/items/one"
        ),
        "value-1400"
    );
    assert_eq!(
        sh(
            &agent,
            pod,
            "cat /etc/items/path/to/data-2; stat -L -c %a /etc/items/path/to/data-2"
        ),
        "value-2600"
    );
    assert_eq!(sh(&agent, pod, "ls /etc/items"), "one\npath");
    assert_eq!(sh(&agent, pod, "ls /etc/all"), "data-1\ndata-2\ndata-3");
    assert_eq!(sh(&agent, pod, "ls /etc/opt | wc -l"), "0");
    assert_eq!(sh(&agent, pod, "cat /etc/sub/data-1"), "value-1");
    let (code, _, err) = agent.exec(pod, "main", &["sh", "-c", "echo x > /etc/all/new"]);
    assert_ne!(code, 0, "a configMap volume must be read-only");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_ne!(mount_type(&agent, pod, "/etc/all"), "tmpfs");

    let uid = agent.uid(pod);
    let dir = volume_dir(&agent, &uid, "kubernetes.io~configmap", "all");
    let data = std::fs::read_link(dir.join("..data")).unwrap();
    assert!(data.to_string_lossy().starts_with("..20"), "{data:?}");
    assert_eq!(
        std::fs::read_link(dir.join("data-1")).unwrap(),
        std::path::Path::new("..data/data-1")
    );

    agent.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {data-1: value-1b, data-2: value-2}\n");
    let took = wait_output(&agent, pod, "cat /etc/all/data-1", "value-1b");
    eprintln!("the ConfigMap update reached the volume in {took:?}");
    assert_eq!(sh(&agent, pod, "ls /etc/all"), "data-1\ndata-2");
    let one = sh(&agent, pod, "cat /etc/items/one");
    let uid = agent.uid(pod);
    assert_eq!(
        one,
        "value-1b",
        "{:?}\n{}",
        failed_mounts(&agent, &uid),
        tail(&agent.agent_log(), 30)
    );
    assert_eq!(
        sh(&agent, pod, "cat /etc/sub/data-1"),
        "value-1",
        "a subPath mount does not update"
    );
    let old = std::fs::read_link(dir.join("..data")).unwrap();
    assert_ne!(old, data);
    assert!(
        !dir.join(&data).exists(),
        "the old timestamped directory is removed"
    );
    agent.delete_and_check(pod, "0");
}

const SECRET_POD: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: sec}
data: {data-1: dmFsdWUtMQo=, data-2: dmFsdWUtMgo=}
---
apiVersion: v1
kind: Pod
metadata: {name: sec-vol}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {runAsUser: 1000, fsGroup: 1234}
  volumes:
  - name: sec
    secret: {secretName: sec, defaultMode: 0400}
  - name: mapped
    secret:
      secretName: sec
      items: [{key: data-2, path: new-path-data-2, mode: 0400}]
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts:
    - {name: sec, mountPath: /etc/secret-volume}
    - {name: mapped, mountPath: /etc/mapped}
"#;

/// A secret volume is a tmpfs on the host (never on disk); defaultMode 0400 with an fsGroup
/// gives `-r--r-----` and the group, so a non-root user of the group reads it; items map keys
/// to paths with their own mode.
#[test]
fn secret_volume_is_tmpfs_with_default_mode_and_fs_group() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(SECRET_POD);
    agent.wait_running("sec-vol");
    let pod = "sec-vol";
    assert_eq!(
        sh(&agent, pod, "id -u; cat /etc/secret-volume/data-1"),
        "1000\nvalue-1"
    );
    assert_eq!(
        sh(&agent, pod, "stat -L -c '%a %g' /etc/secret-volume/data-1"),
        "440 1234"
    );
    assert_eq!(sh(&agent, pod, "ls /etc/mapped"), "new-path-data-2");
    assert_eq!(
        sh(&agent, pod, "cat /etc/mapped/new-path-data-2"),
        "value-2"
    );
    assert_eq!(
        sh(&agent, pod, "stat -L -c %a /etc/mapped/new-path-data-2"),
        "440"
    );
    assert_eq!(mount_type(&agent, pod, "/etc/secret-volume"), "tmpfs");

    let uid = agent.uid(pod);
    let dir = volume_dir(&agent, &uid, "kubernetes.io~secret", "sec");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir_text = dir.to_string_lossy().to_string();
    assert!(
        host_mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(dir_text.as_str()) && l.contains(" - tmpfs ")),
        "no tmpfs at {dir_text} on the host"
    );
    agent.delete_and_check(pod, "0");
}

const DOWNWARD_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: dapi-vol
  labels: {key1: value1, key2: value2}
  annotations: {builder: bar}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - name: podinfo
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
      - {path: podname, fieldRef: {fieldPath: metadata.name}, mode: 0400}
      - {path: cpu_limit, resourceFieldRef: {containerName: main, resource: limits.cpu, divisor: 1m}}
      - {path: memory_limit, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
    resources:
      limits: {cpu: 250m, memory: 64Mi}
    volumeMounts:
    - {name: podinfo, mountPath: /etc/podinfo}
"#;

/// Labels and annotations as kubelet formats them, the pod's name with an item mode, limits
/// with divisors; changing the pod's labels and annotations rewrites the files; tmpfs.
#[test]
fn downward_api_volume_shows_metadata_and_follows_updates() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.with_manifest(&["create"], DOWNWARD_POD);
    agent.wait_running("dapi-vol");
    let pod = "dapi-vol";
    assert_eq!(
        sh(&agent, pod, "cat /etc/podinfo/labels"),
        "key1=\"value1\"\nkey2=\"value2\""
    );
    assert_eq!(
        sh(&agent, pod, "cat /etc/podinfo/annotations"),
        "builder=\"bar\""
    );
    assert_eq!(
        sh(
            &agent,
            pod,
            "cat /etc/podinfo/podname; stat -L -c %a /etc/podinfo/podname"
        ),
        "dapi-vol400"
    );
    assert_eq!(sh(&agent, pod, "cat /etc/podinfo/cpu_limit"), "250");
    assert_eq!(sh(&agent, pod, "cat /etc/podinfo/memory_limit"), "64");
    assert_eq!(mount_type(&agent, pod, "/etc/podinfo"), "tmpfs");

    kubectl.ok(&["label", "pod", pod, "key3=value3", "key2-"]);
    kubectl.ok(&["annotate", "pod", pod, "builder=foo", "--overwrite"]);
    let took = wait_output(
        &agent,
        pod,
        "cat /etc/podinfo/labels",
        "key1=\"value1\"\nkey3=\"value3\"",
    );
    eprintln!("the label update reached the volume in {took:?}");
    wait_output(
        &agent,
        pod,
        "cat /etc/podinfo/annotations",
        "builder=\"foo\"",
    );
    agent.delete_and_check(pod, "0");
}

const PROJECTED_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: proj-cm}
data: {data-1: value-1}
---
apiVersion: v1
kind: Secret
metadata: {name: proj-secret}
data: {data-2: dmFsdWUtMg==}
---
apiVersion: v1
kind: Pod
metadata: {name: proj-vol, labels: {app: proj}}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - name: all-in-one
    projected:
      defaultMode: 0440
      sources:
      - configMap:
          name: proj-cm
          items: [{key: data-1, path: cm/data-1}]
      - secret: {name: proj-secret}
      - downwardAPI:
          items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
      - configMap: {name: proj-missing, optional: true}
      - serviceAccountToken: {path: token}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts:
    - {name: all-in-one, mountPath: /all-in-one}
"#;

/// ConfigMap, Secret, downward API and service account token files in one volume with the
/// projection's defaultMode; an update of the ConfigMap reaches the projected file.
#[test]
fn projected_volume_merges_config_map_secret_and_downward_api() {
    let (agent, kubectl) = start_with_kubectl();
    let out = kubectl.run(&["apply", "-f", "-"], Some(PROJECTED_POD));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!said.contains("not supported"), "{said}");
    agent.wait_running("proj-vol");
    let pod = "proj-vol";
    assert_eq!(
        sh(&agent, pod, "ls /all-in-one"),
        "cm\ndata-2\nlabels\ntoken"
    );
    assert_eq!(sh(&agent, pod, "stat -L -c %a /all-in-one/token"), "440");
    assert_eq!(sh(&agent, pod, "cut -c1-3 /all-in-one/token"), "eyJ");
    assert_eq!(
        sh(&agent, pod, "cat /all-in-one/cm/data-1 /all-in-one/data-2"),
        "value-1value-2"
    );
    assert_eq!(sh(&agent, pod, "cat /all-in-one/labels"), "app=\"proj\"");
    assert_eq!(sh(&agent, pod, "stat -L -c %a /all-in-one/data-2"), "440");
    assert_eq!(mount_type(&agent, pod, "/all-in-one"), "tmpfs");
    agent.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: proj-cm}\ndata: {data-1: value-1b}\n",
    );
    wait_output(&agent, pod, "cat /all-in-one/cm/data-1", "value-1b");
    agent.delete_and_check(pod, "0");
}

fn failed_mounts(agent: &Agent, uid: &str) -> Vec<String> {
    agent
        .events_of(uid)
        .iter()
        .filter(|e| e["reason"] == "FailedMount")
        .map(|e| {
            assert_eq!(e["type"], "Warning");
            e["message"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

fn is_container_creating(pod: &Value) -> bool {
    pod["status"]["phase"] == "Pending"
        && container(pod, "main")["state"]["waiting"]["reason"] == "ContainerCreating"
}

/// The API refuses an item path with `..`; a pod whose ConfigMap does not exist stays
/// ContainerCreating with kubelet's FailedMount warning, then one for a key the ConfigMap
/// lacks, and starts by itself once the key is there.
#[test]
fn a_missing_config_map_or_key_holds_the_pod_until_it_exists() {
    let agent = Agent::start();
    let bad = r#"
apiVersion: v1
kind: Pod
metadata: {name: bad-path}
spec:
  volumes:
  - name: cfg
    configMap:
      name: late
      items: [{key: k, path: ../x}]
  containers: [{name: main, image: busybox, imagePullPolicy: Never}]
"#;
    let out = agent.cli_stdin(&["apply", "-f", "-"], bad);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            r#"spec.volumes[0].configMap.items[0].path: Invalid value: "../x": must not contain '..'"#
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(agent.pod("bad-path").is_none());

    agent.apply(&bad.replace("bad-path", "late-cm").replace("../x", "dir/k").replace(
        "imagePullPolicy: Never}",
        "imagePullPolicy: Never, command: [sleep, \"3600\"], volumeMounts: [{name: cfg, mountPath: /cfg}]}",
    ));
    let uid = agent.uid("late-cm");
    let not_found = r#"MountVolume.SetUp failed for volume "cfg" : configmap "late" not found"#;
    agent.wait_event(&uid, "FailedMount", WITHIN, |m| m == not_found);
    let pod = agent.pod("late-cm").unwrap();
    assert!(is_container_creating(&pod), "{pod:#}");
    assert_eq!(agent.get_status("late-cm"), "ContainerCreating");

    agent.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\ndata: {other: x}\n");
    let no_key = r#"MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: k"#;
    agent.wait_event(&uid, "FailedMount", WITHIN, |m| m == no_key);
    assert!(is_container_creating(&agent.pod("late-cm").unwrap()));

    agent.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\ndata: {other: x, k: here}\n",
    );
    agent.wait_running("late-cm");
    assert_eq!(sh(&agent, "late-cm", "cat /cfg/dir/k"), "here");
    let messages = failed_mounts(&agent, &uid);
    assert!(
        messages.iter().all(|m| m == not_found || m == no_key),
        "{messages:?}"
    );
    agent.delete_and_check("late-cm", "0");
}

const KEPT_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: kept-cm}
data: {data-1: value-1}
---
apiVersion: v1
kind: Secret
metadata: {name: kept-secret}
data: {token: czNjcjN0}
---
apiVersion: v1
kind: Pod
metadata: {name: kept}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {fsGroup: 2000}
  volumes:
  - name: cfg
    configMap: {name: kept-cm}
  - name: sec
    secret: {secretName: kept-secret}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
"#;

/// A volume is the pod's, not the sandbox's: a sandbox re-created after its shim died finds
/// the files (the secret's tmpfs included) with the group fsGroup gave them; a ConfigMap
/// deleted meanwhile leaves them in place with kubelet's FailedMount warning, and comes back
/// into them once it exists again; an agent restart adopts the sandbox with its volumes.
#[test]
fn volumes_outlive_the_sandbox_and_a_deleted_source() {
    let (mut agent, kubectl) = start_with_kubectl();
    kubectl.apply(KEPT_POD);
    agent.wait_running("kept");
    let pod = "kept";
    assert_eq!(
        sh(&agent, pod, "cat /cfg/data-1 /sec/token"),
        "value-1s3cr3t"
    );
    let uid = agent.uid(pod);
    kubectl.ok(&["delete", "configmap", "kept-cm"]);
    let gone = r#"MountVolume.SetUp failed for volume "cfg" : configmap "kept-cm" not found"#;
    agent.wait_event(&uid, "FailedMount", WITHIN, |m| m == gone);
    assert_eq!(sh(&agent, pod, "cat /cfg/data-1"), "value-1");

    agent.kill_shim(&uid);
    agent.wait_pod("kept", "main restarted in a new sandbox", WITHIN, |p| {
        all_running(p) && container(p, "main")["restartCount"] == 1
    });
    assert_eq!(
        sh(&agent, pod, "cat /cfg/data-1 /sec/token"),
        "value-1s3cr3t"
    );
    assert_eq!(
        sh(&agent, pod, "stat -L -c %g /sec/token; stat -c %a%g /sec"),
        "2000\n27772000"
    );
    assert_eq!(mount_type(&agent, pod, "/sec"), "tmpfs");

    kubectl.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept-cm}\ndata: {data-1: back}\n",
    );
    wait_output(&agent, pod, "cat /cfg/data-1", "back");

    let container_id = container_id_of(&agent.pod(pod).unwrap(), "main");
    agent.kill_and_restart();
    kubectl.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept-cm}\ndata: {data-1: after}\n",
    );
    wait_output(&agent, pod, "cat /cfg/data-1", "after");
    let now = agent.pod(pod).unwrap();
    assert_eq!(
        container_id_of(&now, "main"),
        container_id,
        "the container was not replaced"
    );
    assert_eq!(container(&now, "main")["restartCount"], 1);
    agent.delete_and_check(pod, "0");
}
