//! The claims' owner references that carry persistentVolumeClaimRetentionPolicy out, as
//! kube's `updateClaimOwnerRefForSetAndPod`: whenDeleted Delete makes the set an owner of
//! the claims of the pods in range, whenScaled Delete makes a scaled-down pod the owner of
//! its claims; the garbage collector then deletes a claim whose owners are gone. Retain
//! takes the reference away. The references are plain ones (no controller), as kube's.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use peapod_apis::apps::v1::statefulset::DELETE;

/// `setOwnerRef`'s reference to `owner`.
fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        ..OwnerReference::default()
    }
}

/// The claim's references as the policy wants them for `pod` (in range or scaled down), or
/// None when they are already so.
pub fn wanted_owners(
    existing: &[OwnerReference],
    set: &StatefulSet,
    pod: Option<&Pod>,
    in_range: bool,
) -> Option<Vec<OwnerReference>> {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.clone())
        .unwrap_or_default();
    let when_deleted = policy.when_deleted.as_deref() == Some(DELETE);
    let when_scaled = policy.when_scaled.as_deref() == Some(DELETE);
    let set_owns = when_deleted && (in_range || !when_scaled);
    let pod_owns = when_scaled && !in_range;
    let set_uid = set.meta().uid.clone().unwrap_or_default();
    let pod_uid = pod.and_then(|p| p.meta().uid.clone()).unwrap_or_default();
    let mut wanted: Vec<OwnerReference> = existing
        .iter()
        .filter(|r| r.uid != set_uid && (pod.is_none() || r.uid != pod_uid))
        .cloned()
        .collect();
    if set_owns {
        wanted.push(owner_ref(set));
    }
    match (pod, pod_owns) {
        (Some(pod), true) => wanted.push(owner_ref(pod)),
        (None, _) => wanted.extend(existing.iter().filter(|r| r.kind == "Pod").cloned()),
        _ => {}
    }
    wanted.dedup_by(|a, b| a.uid == b.uid);
    let same = |a: &[OwnerReference], b: &[OwnerReference]| {
        let uids = |refs: &[OwnerReference]| {
            let mut uids: Vec<String> = refs.iter().map(|r| r.uid.clone()).collect();
            uids.sort();
            uids
        };
        uids(a) == uids(b)
    };
    (!same(&wanted, existing)).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(when_deleted: &str, when_scaled: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "uid": "set-uid"},
            "spec": {"selector": {}, "template": {},
                     "persistentVolumeClaimRetentionPolicy":
                        {"whenDeleted": when_deleted, "whenScaled": when_scaled}}
        }))
        .unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web-1", "uid": "pod-uid"}})).unwrap()
    }

    fn uids(refs: Option<Vec<OwnerReference>>) -> Option<Vec<String>> {
        refs.map(|r| r.into_iter().map(|r| r.uid).collect())
    }

    #[test]
    fn retain_retain_wants_no_references() {
        let set = set("Retain", "Retain");
        assert_eq!(wanted_owners(&[], &set, Some(&pod()), true), None);
        let owned = [owner_ref(&set)];
        assert_eq!(
            uids(wanted_owners(&owned, &set, Some(&pod()), true)),
            Some(vec![])
        );
    }

    #[test]
    fn when_deleted_delete_makes_the_set_an_owner() {
        let set = set("Delete", "Retain");
        assert_eq!(
            uids(wanted_owners(&[], &set, Some(&pod()), true)),
            Some(vec!["set-uid".into()])
        );
        assert_eq!(
            uids(wanted_owners(&[], &set, Some(&pod()), false)),
            Some(vec!["set-uid".into()])
        );
        let made = wanted_owners(&[], &set, None, true).unwrap();
        assert_eq!(made[0].controller, None);
    }

    #[test]
    fn when_scaled_delete_makes_a_scaled_down_pod_the_owner() {
        let both = set("Delete", "Delete");
        assert_eq!(
            uids(wanted_owners(&[], &both, Some(&pod()), false)),
            Some(vec!["pod-uid".into()])
        );
        assert_eq!(
            uids(wanted_owners(&[], &both, Some(&pod()), true)),
            Some(vec!["set-uid".into()])
        );
        let scaled = set("Retain", "Delete");
        assert_eq!(wanted_owners(&[], &scaled, Some(&pod()), true), None);
        assert_eq!(
            uids(wanted_owners(&[], &scaled, Some(&pod()), false)),
            Some(vec!["pod-uid".into()])
        );
    }
}
