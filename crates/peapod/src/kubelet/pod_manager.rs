//! kubelet's pod manager: the pods its watches (and its own writes) last showed, by uid, so
//! that pod workers read their pod without asking the API. A version never replaces a newer
//! one, and a pod once gone stays gone, whatever order the watches deliver in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;

/// How many removed pods are remembered, so that a late event cannot bring one back.
const REMEMBERED_REMOVALS: usize = 4096;

#[derive(Default)]
pub struct PodManager {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pods: HashMap<String, Pod>,
    removed: HashSet<String>,
    removal_order: VecDeque<String>,
}

impl PodManager {
    pub fn get(&self, uid: &str) -> Option<Pod> {
        self.lock().pods.get(uid).cloned()
    }

    /// Every pod known.
    pub fn pods(&self) -> Vec<Pod> {
        self.lock().pods.values().cloned().collect()
    }

    /// Keeps `pod` unless a newer version of it is known or it was removed; whether it did.
    pub fn update(&self, pod: Pod) -> bool {
        let Some(uid) = pod.metadata.uid.clone() else {
            return false;
        };
        let mut state = self.lock();
        if state.removed.contains(&uid) {
            return false;
        }
        if let Some(known) = state.pods.get(&uid) {
            if !at_least_as_new(&pod, known) {
                return false;
            }
        }
        state.pods.insert(uid, pod);
        true
    }

    /// Forgets the pod for good.
    pub fn remove(&self, uid: &str) {
        let mut state = self.lock();
        state.pods.remove(uid);
        if state.removed.insert(uid.to_owned()) {
            state.removal_order.push_back(uid.to_owned());
        }
        while state.removal_order.len() > REMEMBERED_REMOVALS {
            if let Some(oldest) = state.removal_order.pop_front() {
                state.removed.remove(&oldest);
            }
        }
    }

    /// `pod`, or the newer version of it the manager holds.
    pub fn freshest(&self, pod: &Pod) -> Pod {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        match self.lock().pods.get(uid) {
            Some(known) if at_least_as_new(known, pod) => known.clone(),
            _ => pod.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `a` is the same version as `b` or a later one (resourceVersions are the store's
/// revisions; one that is not a number is taken as new).
pub fn at_least_as_new(a: &Pod, b: &Pod) -> bool {
    let version = |pod: &Pod| {
        pod.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (version(a), version(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(uid: &str, version: &str, label: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                resource_version: Some(version.into()),
                labels: Some([("v".to_owned(), label.to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let pods = PodManager::default();
        assert!(pods.update(pod("u", "10", "new")));
        assert!(!pods.update(pod("u", "9", "old")));
        assert!(pods.update(pod("u", "10", "same")));
        assert_eq!(pods.get("u").unwrap(), pod("u", "10", "same"));
        assert_eq!(
            pods.freshest(&pod("u", "3", "held")),
            pod("u", "10", "same")
        );
        assert_eq!(
            pods.freshest(&pod("u", "12", "held")),
            pod("u", "12", "held")
        );
    }

    #[test]
    fn a_removed_pod_stays_removed() {
        let pods = PodManager::default();
        pods.update(pod("u", "1", "a"));
        pods.remove("u");
        assert!(!pods.update(pod("u", "2", "late")));
        assert!(pods.get("u").is_none());
        assert!(pods.pods().is_empty());
    }
}
