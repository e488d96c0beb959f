//! The service account's API credentials in a pod, as kube-apiserver's ServiceAccount admission
//! mounts them: a projected `kube-api-access-xxxxx` volume (a bound token, the cluster CA from
//! `kube-root-ca.crt`, the namespace) at /var/run/secrets/kubernetes.io/serviceaccount in every
//! init and app container that has nothing mounted there, unless automounting is turned off.

use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{json, Value};

use super::admission::volumes;
use super::token_request::WARN_ONLY_EXPIRATION_SECONDS;

/// Where containers find the token, `ca.crt` and `namespace` (`DefaultAPITokenMountPath`).
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The volume's name before its random suffix (`ServiceAccountVolumeName`).
const VOLUME_PREFIX: &str = "kube-api-access-";
/// `ProjectedVolumeSourceDefaultMode`, 0644, set explicitly as kube does (#104464).
const DEFAULT_MODE: i32 = 0o644;

/// `shouldAutomount`: the pod's choice, else the account's, else yes.
pub fn should_automount(spec: &Value, account: &ServiceAccount) -> bool {
    spec["automountServiceAccountToken"]
        .as_bool()
        .or(account.automount_service_account_token)
        .unwrap_or(true)
}

/// `mountServiceAccountToken`: the volume (reused when the pod already has one of that name
/// prefix, added otherwise) mounted read-only where a container has no mount at the path.
pub fn mount(spec: &mut Value) {
    let existing = volumes(spec)
        .filter_map(|v| v["name"].as_str())
        .find(|name| name.starts_with(VOLUME_PREFIX))
        .map(str::to_owned);
    let name = existing
        .clone()
        .unwrap_or_else(|| peapod_store::generate_name(VOLUME_PREFIX));
    let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            if mounts_at_token_path(container) {
                continue;
            }
            match container["volumeMounts"].as_array_mut() {
                Some(mounts) => mounts.push(mount.clone()),
                None => container["volumeMounts"] = json!([mount.clone()]),
            }
            needed = true;
        }
    }
    if needed && existing.is_none() {
        let volume = json!({"name": name, "projected": source()});
        match spec["volumes"].as_array_mut() {
            Some(list) => list.push(volume),
            None => spec["volumes"] = json!([volume]),
        }
    }
}

fn mounts_at_token_path(container: &Value) -> bool {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["mountPath"] == MOUNT_PATH)
}

/// `TokenVolumeSource`.
fn source() -> Value {
    json!({
        "defaultMode": DEFAULT_MODE,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": WARN_ONLY_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [
                {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
            ]}}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(automount: Option<bool>) -> ServiceAccount {
        ServiceAccount {
            automount_service_account_token: automount,
            ..ServiceAccount::default()
        }
    }

    #[test]
    fn the_pod_decides_before_the_account() {
        let cases = [
            (None, None, true),
            (None, Some(false), false),
            (Some(true), Some(false), true),
            (Some(false), Some(true), false),
        ];
        for (pod, sa, expected) in cases {
            let spec = match pod {
                Some(p) => json!({"automountServiceAccountToken": p}),
                None => json!({}),
            };
            assert_eq!(
                should_automount(&spec, &account(sa)),
                expected,
                "{pod:?} {sa:?}"
            );
        }
    }

    #[test]
    fn every_init_and_app_container_mounts_the_volume_once() {
        let mut spec = json!({
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": MOUNT_PATH}]}
            ],
            "ephemeralContainers": [{"name": "e"}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        });
        mount(&mut spec);
        let volumes = spec["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        let name = volumes[1]["name"].as_str().unwrap();
        assert!(
            name.starts_with("kube-api-access-") && name.len() == 21,
            "{name}"
        );
        assert_eq!(volumes[1]["projected"], source());
        let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
        assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(spec["containers"][0]["volumeMounts"][1], mount);
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(spec["ephemeralContainers"][0].get("volumeMounts"), None);
    }

    #[test]
    fn a_volume_of_the_prefix_is_reused_and_none_is_added_when_no_container_needs_it() {
        let mut spec = json!({
            "containers": [{"name": "a"}],
            "volumes": [{"name": "kube-api-access-mine", "emptyDir": {}}]
        });
        mount(&mut spec);
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            spec["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-mine"
        );

        let mut covered = json!({"containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": MOUNT_PATH}]}]});
        mount(&mut covered);
        assert_eq!(covered.get("volumes"), None);
    }
}
