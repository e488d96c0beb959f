//! kube's `findMatchingVolume`: which volume a claim may bind — one pre-bound to it first,
//! else the smallest available volume of its class whose access modes, size, volume mode and
//! labels fit.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use peapod_api::label_selector::as_selector;
use peapod_api::quantity::Quantity;
use peapod_apis::core::v1::persistentvolume::volume_class;
use peapod_apis::core::v1::persistentvolumeclaim::claim_class;
use peapod_apis::core::v1::volume_claims::{storage_of, FILESYSTEM};

/// Whether `volume`'s claimRef names `claim` (by uid when it has one).
pub fn is_bound_to(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    reference.name.as_deref() == claim.metadata.name.as_deref()
        && reference.namespace.as_deref() == claim.metadata.namespace.as_deref()
        && reference
            .uid
            .as_deref()
            .is_none_or(|uid| Some(uid) == claim.metadata.uid.as_deref())
}

pub fn requested(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    storage_of(claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref())
}

pub fn capacity(volume: &PersistentVolume) -> Option<Quantity> {
    storage_of(volume.spec.as_ref()?.capacity.as_ref())
}

/// The volume `claim` should bind, from `volumes`.
pub fn find_matching_volume<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
) -> Option<&'a PersistentVolume> {
    let mut fitting: Vec<&PersistentVolume> = volumes.iter().filter(|v| fits(claim, v)).collect();
    if let Some(pre_bound) = fitting.iter().find(|v| is_bound_to(v, claim)) {
        return Some(pre_bound);
    }
    fitting.retain(|v| v.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()));
    fitting
        .into_iter()
        .min_by(|a, b| capacity(a).cmp(&capacity(b)))
}

fn fits(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let (Some(claim_spec), Some(volume_spec)) = (&claim.spec, &volume.spec) else {
        return false;
    };
    let claimed_elsewhere = volume_spec.claim_ref.is_some() && !is_bound_to(volume, claim);
    let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
    let usable =
        matches!(phase, None | Some("Pending" | "Available")) || is_bound_to(volume, claim);
    if claimed_elsewhere || !usable || volume.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let mode = |m: &Option<String>| m.clone().unwrap_or_else(|| FILESYSTEM.to_owned());
    if mode(&claim_spec.volume_mode) != mode(&volume_spec.volume_mode) {
        return false;
    }
    if claim_class(claim).unwrap_or_default() != volume_class(volume) {
        return false;
    }
    let modes = volume_spec.access_modes.as_deref().unwrap_or_default();
    let wanted = claim_spec.access_modes.as_deref().unwrap_or_default();
    if !wanted.iter().all(|m| modes.contains(m)) {
        return false;
    }
    if let Some(selector) = &claim_spec.selector {
        match as_selector(selector) {
            Ok(selector) if selector.matches(volume.labels()) => {}
            _ => return false,
        }
    }
    match (requested(claim), capacity(volume)) {
        (Some(wanted), Some(has)) => has >= wanted,
        _ => false,
    }
}

/// The first scheduled, non-terminal pod that mounts the claim named `claim`.
pub fn first_consumer<'a>(claim: &str, pods: &'a [Pod]) -> Option<&'a Pod> {
    pods.iter().find(|pod| {
        let scheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        scheduled && !matches!(phase, Some("Succeeded" | "Failed")) && mounts(pod, claim)
    })
}

/// Whether `pod` has a volume of the claim named `claim`.
pub fn mounts(pod: &Pod, claim: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .any(|source| source.claim_name == claim)
}

/// kube's `TestFindingVolume` cases that apply to one node's volumes.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn volume(name: &str, size: &str, modes: &[&str], class: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"tier": name}},
            "spec": {"capacity": {"storage": size}, "accessModes": modes,
                "storageClassName": class, "hostPath": {"path": "/tmp"}, "volumeMode": "Filesystem"},
            "status": {"phase": "Available"},
        }))
        .unwrap()
    }

    fn claim(size: &str, modes: &[&str], class: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "claim", "namespace": "ns", "uid": "uid-1"},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}},
                "storageClassName": class, "volumeMode": "Filesystem"},
        }))
        .unwrap()
    }

    fn found(claim: &PersistentVolumeClaim, volumes: &[PersistentVolume]) -> Option<String> {
        find_matching_volume(claim, volumes).and_then(|v| v.metadata.name.clone())
    }

    #[test]
    fn the_smallest_fitting_volume_of_the_class_wins() {
        let volumes = [
            volume("small", "1Gi", &["ReadWriteOnce"], "manual"),
            volume(
                "large",
                "10Gi",
                &["ReadWriteOnce", "ReadOnlyMany"],
                "manual",
            ),
            volume("medium", "5Gi", &["ReadWriteOnce"], "manual"),
            volume("other-class", "5Gi", &["ReadWriteOnce"], "fast"),
        ];
        let rwo = ["ReadWriteOnce"];
        assert_eq!(
            found(&claim("2Gi", &rwo, "manual"), &volumes).as_deref(),
            Some("medium")
        );
        assert_eq!(
            found(&claim("1Gi", &rwo, "manual"), &volumes).as_deref(),
            Some("small")
        );
        let rox = ["ReadOnlyMany"];
        assert_eq!(
            found(&claim("1Gi", &rox, "manual"), &volumes).as_deref(),
            Some("large")
        );
        assert_eq!(found(&claim("20Gi", &rwo, "manual"), &volumes), None);
        assert_eq!(found(&claim("1Gi", &rwo, "none"), &volumes), None);
    }

    #[test]
    fn pre_bound_and_claimed_volumes() {
        let mut taken = volume("taken", "1Gi", &["ReadWriteOnce"], "manual");
        taken.spec.as_mut().unwrap().claim_ref =
            Some(serde_json::from_value(json!({"namespace": "ns", "name": "other"})).unwrap());
        let mut mine = volume("mine", "8Gi", &["ReadWriteOnce"], "manual");
        mine.spec.as_mut().unwrap().claim_ref =
            Some(serde_json::from_value(json!({"namespace": "ns", "name": "claim"})).unwrap());
        let free = volume("free", "2Gi", &["ReadWriteOnce"], "manual");
        let volumes = [taken, free, mine];
        let wanted = claim("1Gi", &["ReadWriteOnce"], "manual");
        assert_eq!(found(&wanted, &volumes).as_deref(), Some("mine"));
        assert_eq!(found(&wanted, &volumes[..2]).as_deref(), Some("free"));
    }

    #[test]
    fn selectors_filter_volumes() {
        let volumes = [
            volume("a", "1Gi", &["ReadWriteOnce"], ""),
            volume("b", "2Gi", &["ReadWriteOnce"], ""),
        ];
        let mut wanted = claim("1Gi", &["ReadWriteOnce"], "");
        wanted.spec.as_mut().unwrap().selector =
            Some(serde_json::from_value(json!({"matchLabels": {"tier": "b"}})).unwrap());
        assert_eq!(found(&wanted, &volumes).as_deref(), Some("b"));
    }
}
