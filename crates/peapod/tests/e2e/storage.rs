//! Storage through the real kubectl: the default `local-path` class, claims provisioned on
//! first use (WaitForFirstConsumer) and mounted by pods, data kept across pods, a claim in use
//! kept Terminating until its pod goes, the Delete policy taking volume and directory; a
//! hand-made hostPath volume bound to a matching claim (its pod waiting, FailedMount, until the
//! claim exists and is bound) then Released under Retain, and one bound by the claim that names
//! it; a ReadWriteOncePod claim serving one pod at a time; a bound claim grown only when its
//! class allows expansion (kube's PersistentVolumeClaimResize message otherwise); a volume
//! reserved by its claimRef kept from other claims and bound once its claim appears.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const SETTLE_WITHIN: Duration = Duration::from_secs(60);

fn claim(name: &str, size: &str, class: Option<&str>) -> String {
    let class = class.map_or(String::new(), |c| format!("  storageClassName: {c}\n"));
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n{class}  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {size}\n"
    )
}

fn pod_with_claim(name: &str, claim: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 0\n  volumes:\n  - name: data\n    persistentVolumeClaim: {{claimName: {claim}}}\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, '3600']\n    volumeMounts:\n    - {{name: data, mountPath: /data}}\n"
    )
}

fn get(kubectl: &Kubectl, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json", "--ignore-not-found"]);
    let out = kubectl.ok(&all);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).expect("kubectl -o json"))
}

fn wait_gone(kubectl: &Kubectl, args: &[&str]) {
    wait_until(SETTLE_WITHIN, &format!("{} to go", args.join(" ")), || {
        get(kubectl, args).is_none()
    });
}

fn storage_entries(agent: &Agent) -> Vec<String> {
    let dir = agent.path().join("var/lib/peapod/storage");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn local_path_claims_are_provisioned_on_first_use_and_go_with_their_claim() {
    let (agent, kubectl) = start_with_kubectl();
    let resources = kubectl.ok(&["api-resources"]);
    for expected in [
        "persistentvolumeclaims pvc v1 true PersistentVolumeClaim",
        "persistentvolumes pv v1 false PersistentVolume",
        "storageclasses sc storage.k8s.io/v1 false StorageClass",
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == expected),
            "{expected}:\n{resources}"
        );
    }
    let classes = kubectl.ok(&["get", "sc"]);
    assert_eq!(
        classes
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    let row: Vec<&str> = classes
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..6],
        [
            "local-path",
            "(default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ],
        "{classes}"
    );

    kubectl.apply(&claim("data", "64Mi", None));
    let pending = get(&kubectl, &["get", "pvc", "data"]).unwrap();
    assert_eq!(pending["spec"]["storageClassName"], "local-path");
    assert_eq!(
        pending["metadata"]["finalizers"][0],
        "kubernetes.io/pvc-protection"
    );
    std::thread::sleep(Duration::from_secs(2));
    let pending = get(&kubectl, &["get", "pvc", "data"]).unwrap();
    assert_eq!(pending["status"]["phase"], "Pending", "{pending:#}");
    assert!(pending["spec"]["volumeName"].is_null(), "{pending:#}");

    kubectl.apply(&pod_with_claim("writer", "data"));
    agent.wait_running("writer");
    let bound = get(&kubectl, &["get", "pvc", "data"]).unwrap();
    assert_eq!(bound["status"]["phase"], "Bound", "{bound:#}");
    let volume = bound["spec"]["volumeName"].as_str().unwrap().to_owned();
    let uid = bound["metadata"]["uid"].as_str().unwrap();
    assert_eq!(volume, format!("pvc-{uid}"));
    let annotations = &bound["metadata"]["annotations"];
    assert_eq!(annotations["pv.kubernetes.io/bind-completed"], "yes");
    assert!(
        annotations["volume.kubernetes.io/selected-node"].is_string(),
        "{bound:#}"
    );
    let pv = get(&kubectl, &["get", "pv", &volume]).unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["name"], "data");
    assert_eq!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
        "rancher.io/local-path"
    );
    let table = kubectl.ok(&["get", "pvc", "data", "-o", "wide"]);
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE",
            "VOLUMEMODE"
        ]
    );
    assert!(
        table.lines().nth(1).unwrap().ends_with("Filesystem"),
        "{table}"
    );
    let volumes = kubectl.ok(&["get", "pv"]);
    assert_eq!(
        volumes
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    let row: Vec<&str> = volumes.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..7],
        [
            volume.as_str(),
            "64Mi",
            "RWO",
            "Delete",
            "Bound",
            "default/data",
            "local-path"
        ],
        "{volumes}"
    );
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        cells[..6],
        [
            "data",
            "Bound",
            volume.as_str(),
            "64Mi",
            "RWO",
            "local-path"
        ],
        "{table}"
    );
    assert_eq!(storage_entries(&agent), [format!("{volume}_default_data")]);

    let (code, _, err) = agent.exec("writer", "main", &["sh", "-c", "echo kept > /data/file"]);
    assert_eq!(code, 0, "{err}");
    agent.delete_and_check("writer", "0");

    kubectl.apply(&pod_with_claim("reader", "data"));
    agent.wait_running("reader");
    let (code, data, err) = agent.exec("reader", "main", &["cat", "/data/file"]);
    assert_eq!((code, data.as_str()), (0, "kept\n"), "{err}");

    kubectl.ok(&["delete", "pvc", "data", "--wait=false"]);
    std::thread::sleep(Duration::from_secs(1));
    let table = kubectl.ok(&["get", "pvc", "data"]);
    assert!(
        table.contains("Terminating"),
        "a claim in use must stay: {table}"
    );
    agent.delete_and_check("reader", "0");
    wait_gone(&kubectl, &["get", "pvc", "data"]);
    wait_gone(&kubectl, &["get", "pv", &volume]);
    wait_until(SETTLE_WITHIN, "the volume's directory to go", || {
        storage_entries(&agent).is_empty()
    });
}

#[test]
fn a_hand_made_host_path_volume_binds_a_matching_claim_and_is_released() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = agent.path().join("manual-volume");
    std::fs::create_dir_all(&dir).unwrap();
    let volume = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: manual\n  labels: {{tier: gold}}\nspec:\n  storageClassName: manual\n  capacity: {{storage: 2Gi}}\n  accessModes: [ReadWriteOnce, ReadOnlyMany]\n  hostPath: {{path: {}}}\n",
        dir.display()
    );
    kubectl.apply(&volume);
    let table = kubectl.ok(&["get", "pv", "manual"]);
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["manual", "2Gi", "RWO,ROX", "Retain"],
        "{table}"
    );

    let refused = kubectl.run(
        &["apply", "-f", "-"],
        Some(&claim("bad", "0", Some("manual"))),
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr
            .contains(r#"spec.resources[storage]: Invalid value: "0": must be greater than zero"#),
        "{stderr}"
    );

    kubectl.apply(&pod_with_claim("user", "wanted"));
    let waiting = "error processing PVC default/wanted: failed to fetch PVC from API server: persistentvolumeclaims \"wanted\" not found";
    wait_until(SETTLE_WITHIN, "the pod to wait for its claim", || {
        let events = kubectl.json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=user",
        ]);
        events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "FailedMount"
                && e["message"].as_str().is_some_and(|m| m.ends_with(waiting))
        })
    });
    assert_eq!(
        get(&kubectl, &["get", "pod", "user"]).unwrap()["status"]["phase"],
        "Pending"
    );

    kubectl.apply(&claim("wanted", "1Gi", Some("manual")));
    wait_until(SETTLE_WITHIN, "the claim to bind", || {
        get(&kubectl, &["get", "pvc", "wanted"]).is_some_and(|c| c["status"]["phase"] == "Bound")
    });
    let claim_now = get(&kubectl, &["get", "pvc", "wanted"]).unwrap();
    assert_eq!(claim_now["spec"]["volumeName"], "manual");
    assert_eq!(claim_now["status"]["capacity"]["storage"], "2Gi");
    let pv = get(&kubectl, &["get", "pv", "manual"]).unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );

    agent.wait_running("user");
    let (code, _, err) = agent.exec("user", "main", &["sh", "-c", "echo manual > /data/file"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("file")).unwrap(),
        "manual\n"
    );
    agent.delete_and_check("user", "0");

    kubectl.ok(&["delete", "pvc", "wanted"]);
    wait_until(SETTLE_WITHIN, "the volume to be Released", || {
        get(&kubectl, &["get", "pv", "manual"]).is_some_and(|v| v["status"]["phase"] == "Released")
    });
    assert!(
        Path::new(&dir).join("file").exists(),
        "Retain keeps the data"
    );
    kubectl.ok(&["delete", "pv", "manual"]);
    wait_gone(&kubectl, &["get", "pv", "manual"]);

    let named = volume
        .replace("name: manual\n", "name: named\n")
        .replace("storageClassName: manual", "storageClassName: \"\"");
    kubectl.apply(&named);
    let chooser =
        claim("chooser", "1Gi", Some("\"\"")).replace("spec:\n", "spec:\n  volumeName: named\n");
    kubectl.apply(&chooser);
    wait_until(
        SETTLE_WITHIN,
        "the claim to bind the volume it names",
        || {
            get(&kubectl, &["get", "pv", "named"]).is_some_and(|v| {
                v["status"]["phase"] == "Bound" && v["spec"]["claimRef"]["name"] == "chooser"
            }) && get(&kubectl, &["get", "pvc", "chooser"])
                .is_some_and(|c| c["status"]["phase"] == "Bound")
        },
    );
    kubectl.ok(&["delete", "pvc", "chooser"]);
    kubectl.ok(&["delete", "pv", "named", "--wait=false"]);
    wait_gone(&kubectl, &["get", "pv", "named"]);
    assert!(storage_entries(&agent).is_empty());
}

#[test]
fn a_read_write_once_pod_claim_serves_one_pod_at_a_time() {
    let (agent, kubectl) = start_with_kubectl();
    let only_one = claim("solo", "16Mi", None).replace("[ReadWriteOnce]", "[ReadWriteOncePod]");
    kubectl.apply(&only_one);
    kubectl.apply(&pod_with_claim("first", "solo"));
    agent.wait_running("first");
    kubectl.apply(&pod_with_claim("second", "solo"));
    let conflict = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";
    wait_until(SETTLE_WITHIN, "the second pod to wait", || {
        let events = kubectl.json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=second",
        ]);
        events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "FailedMount"
                && e["message"].as_str().is_some_and(|m| m.ends_with(conflict))
        })
    });
    assert_eq!(
        get(&kubectl, &["get", "pod", "second"]).unwrap()["status"]["phase"],
        "Pending"
    );
    agent.delete_and_check("first", "0");
    agent.wait_running("second");
    agent.delete_and_check("second", "0");
    kubectl.ok(&["delete", "pvc", "solo"]);
    wait_until(SETTLE_WITHIN, "the volume's directory to go", || {
        storage_entries(&agent).is_empty()
    });
}

fn local_path_class(name: &str, expandable: bool) -> String {
    format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\nprovisioner: rancher.io/local-path\nvolumeBindingMode: Immediate\nallowVolumeExpansion: {expandable}\n"
    )
}

fn wait_bound(kubectl: &Kubectl, claim: &str) -> Value {
    wait_until(SETTLE_WITHIN, &format!("claim {claim} to bind"), || {
        get(kubectl, &["get", "pvc", claim]).is_some_and(|c| c["status"]["phase"] == "Bound")
    });
    get(kubectl, &["get", "pvc", claim]).unwrap()
}

#[test]
fn a_bound_claim_grows_only_when_its_class_allows_expansion() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(&local_path_class("fixed", false));
    kubectl.apply(&local_path_class("expandable", true));
    kubectl.apply(&claim("stays", "16Mi", Some("fixed")));
    kubectl.apply(&claim("grows", "16Mi", Some("expandable")));
    wait_bound(&kubectl, "stays");
    let bound = wait_bound(&kubectl, "grows");
    let volume = bound["spec"]["volumeName"].as_str().unwrap().to_owned();

    let grow = r#"{"spec":{"resources":{"requests":{"storage":"32Mi"}}}}"#;
    let refused = kubectl.fails(&["patch", "pvc", "stays", "-p", grow]);
    assert!(
        refused.contains(r#"Error from server (Forbidden): persistentvolumeclaims "stays" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"#),
        "{refused}"
    );
    let stays = get(&kubectl, &["get", "pvc", "stays"]).unwrap();
    assert_eq!(stays["spec"]["resources"]["requests"]["storage"], "16Mi");

    kubectl.ok(&["patch", "pvc", "grows", "-p", grow]);
    wait_until(SETTLE_WITHIN, "the claim's capacity to grow", || {
        get(&kubectl, &["get", "pvc", "grows"])
            .is_some_and(|c| c["status"]["capacity"]["storage"] == "32Mi")
    });
    let pv = get(&kubectl, &["get", "pv", &volume]).unwrap();
    assert_eq!(pv["spec"]["capacity"]["storage"], "32Mi");
    let events = kubectl.json(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=grows,reason=VolumeResizeSuccessful",
    ]);
    assert_eq!(
        events["items"][0]["message"],
        "ExpandVolume succeeded for volume default/grows"
    );
    let table = kubectl.ok(&["get", "pvc", "grows"]);
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["grows", "Bound", volume.as_str(), "32Mi"],
        "{table}"
    );

    let shrink = r#"{"spec":{"resources":{"requests":{"storage":"16Mi"}}}}"#;
    let refused = kubectl.fails(&["patch", "pvc", "grows", "-p", shrink]);
    assert!(
        refused.contains(
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
        ),
        "{refused}"
    );

    kubectl.ok(&["delete", "pvc", "stays", "grows"]);
    wait_until(SETTLE_WITHIN, "the volumes' directories to go", || {
        storage_entries(&agent).is_empty()
    });
    kubectl.ok(&["delete", "storageclass", "fixed", "expandable"]);
}

#[test]
fn a_volume_reserved_for_a_claim_waits_for_it_and_binds_it() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = agent.path().join("reserved-volume");
    std::fs::create_dir_all(&dir).unwrap();
    let volume = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: reserved\nspec:\n  claimRef: {{namespace: default, name: later}}\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  hostPath: {{path: {}}}\n",
        dir.display()
    );
    kubectl.apply(&volume);
    wait_until(SETTLE_WITHIN, "the reserved volume to be Available", || {
        get(&kubectl, &["get", "pv", "reserved"])
            .is_some_and(|v| v["status"]["phase"] == "Available")
    });

    kubectl.apply(&claim("early", "1Gi", Some("\"\"")));
    wait_until(SETTLE_WITHIN, "the other claim to find nothing", || {
        let events = kubectl.json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=early,reason=FailedBinding",
        ]);
        !events["items"].as_array().unwrap().is_empty()
    });
    let early = get(&kubectl, &["get", "pvc", "early"]).unwrap();
    assert_eq!(early["status"]["phase"], "Pending");
    let pv = get(&kubectl, &["get", "pv", "reserved"]).unwrap();
    assert_eq!(pv["status"]["phase"], "Available");
    assert_eq!(pv["spec"]["claimRef"]["name"], "later");
    assert!(pv["spec"]["claimRef"]["uid"].is_null(), "{pv}");

    kubectl.apply(&claim("later", "512Mi", None));
    let later = wait_bound(&kubectl, "later");
    assert_eq!(later["spec"]["volumeName"], "reserved");
    assert_eq!(later["spec"]["storageClassName"], "local-path");
    assert_eq!(later["status"]["capacity"]["storage"], "1Gi");
    let pv = get(&kubectl, &["get", "pv", "reserved"]).unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["uid"], later["metadata"]["uid"]);
    assert!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"].is_null(),
        "{pv}"
    );
    let table = kubectl.ok(&["get", "pv", "reserved"]);
    assert!(table.contains("default/later"), "{table}");
    assert!(storage_entries(&agent).is_empty(), "nothing provisioned");

    kubectl.ok(&["delete", "pvc", "early", "later"]);
    wait_until(SETTLE_WITHIN, "the volume to be Released", || {
        get(&kubectl, &["get", "pv", "reserved"])
            .is_some_and(|v| v["status"]["phase"] == "Released")
    });
    kubectl.ok(&["delete", "pv", "reserved"]);
    wait_gone(&kubectl, &["get", "pv", "reserved"]);
    assert!(storage_entries(&agent).is_empty());
}
