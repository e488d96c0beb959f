//! kube's `findMatchingVolume`: which volume a claim may bind — one pre-bound to it first
//! (size, volume mode and access modes permitting), else the smallest available volume of its
//! class whose access modes, size, volume mode and labels fit.

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

/// The volume `claim` should bind, from `volumes`: one pre-bound to it, else the smallest
/// available one that fits.
pub fn find_matching_volume<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
) -> Option<&'a PersistentVolume> {
    find_pre_bound_volume(claim, volumes).or_else(|| {
        volumes
            .iter()
            .filter(|v| v.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()))
            .filter(|v| holds(claim, v) && available_for(claim, v))
            .min_by(|a, b| capacity(a).cmp(&capacity(b)))
    })
}

/// A volume whose claimRef names `claim` and that holds it. As kube's binder, neither its
/// class, its phase nor the claim's selector matter: the volume was reserved for the claim,
/// even before the claim existed, and binds it at once, whatever the binding mode.
pub fn find_pre_bound_volume<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
) -> Option<&'a PersistentVolume> {
    volumes
        .iter()
        .find(|v| is_bound_to(v, claim) && holds(claim, v))
}

/// Size, volume mode and access modes, which every binding needs.
fn holds(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let (Some(claim_spec), Some(volume_spec)) = (&claim.spec, &volume.spec) else {
        return false;
    };
    if volume.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let mode = |m: &Option<String>| m.clone().unwrap_or_else(|| FILESYSTEM.to_owned());
    if mode(&claim_spec.volume_mode) != mode(&volume_spec.volume_mode) {
        return false;
    }
    let modes = volume_spec.access_modes.as_deref().unwrap_or_default();
    let wanted = claim_spec.access_modes.as_deref().unwrap_or_default();
    if !wanted.iter().all(|m| modes.contains(m)) {
        return false;
    }
    match (requested(claim), capacity(volume)) {
        (Some(wanted), Some(has)) => has >= wanted,
        _ => false,
    }
}

/// What an unreserved volume needs besides: availability, the claim's class and selector.
fn available_for(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
    if !matches!(phase, None | Some("Pending" | "Available")) {
        return false;
    }
    if claim_class(claim).unwrap_or_default() != volume_class(volume) {
        return false;
    }
    match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(selector) => as_selector(selector).is_ok_and(|s| s.matches(volume.labels())),
        None => true,
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

    /// kube's `TestFindingPreboundVolumes`: a reservation wins over a better fit, ignores the
    /// class and phase, but not the size; another claim's reservation is never taken.
    #[test]
    fn reserved_volumes_wait_for_their_claim() {
        let reserve = |v: &mut PersistentVolume, name: &str, uid: Option<&str>| {
            v.spec.as_mut().unwrap().claim_ref = Some(
                serde_json::from_value(json!({"namespace": "ns", "name": name, "uid": uid}))
                    .unwrap(),
            );
        };
        let mut reserved = volume("reserved", "5Gi", &["ReadWriteOnce"], "");
        reserve(&mut reserved, "claim", None);
        reserved.status = None;
        let free = volume("free", "1Gi", &["ReadWriteOnce"], "local-path");
        let wanted = claim("1Gi", &["ReadWriteOnce"], "local-path");
        let volumes = [free.clone(), reserved.clone()];
        assert_eq!(found(&wanted, &volumes).as_deref(), Some("reserved"));
        assert_eq!(
            find_pre_bound_volume(&wanted, &volumes).and_then(|v| v.metadata.name.clone()),
            Some("reserved".to_owned())
        );
        assert_eq!(found(&claim("8Gi", &["ReadWriteOnce"], ""), &volumes), None);

        let mut other = claim("1Gi", &["ReadWriteOnce"], "");
        other.metadata.name = Some("other".into());
        assert_eq!(found(&other, &volumes[1..]), None);
        let mut stale = reserved.clone();
        reserve(&mut stale, "claim", Some("uid-old"));
        assert_eq!(found(&wanted, &[stale]), None);
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
