//! horizontal.go's `validateAndParseSelector`: the target's scale must name a selector that
//! parses, and the pods it selects must be controlled by this HPA alone; the selectors of the
//! HPAs synced so far are kept to tell (kube's `hpaSelectors`).

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use peapod_api::selector::LabelSelector;

use super::conditions::{Condition, SCALING_ACTIVE};
use super::controller::{set_condition, Context};
use crate::controllers::api_errors::error_message;
use crate::controllers::events::Event;

/// The parsed selector of each HPA synced, by namespace and name.
#[derive(Default)]
pub struct HpaSelectors(Mutex<HashMap<(String, String), LabelSelector>>);

impl HpaSelectors {
    pub fn put(&self, namespace: &str, name: &str, selector: LabelSelector) {
        let mut selectors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        selectors.insert((namespace.to_owned(), name.to_owned()), selector);
    }

    pub fn delete(&self, namespace: &str, name: &str) {
        let mut selectors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        selectors.remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// `hpasControllingPodsUnderSelector`: the HPAs ("namespace/name", sorted) selecting
    /// any of `pods`.
    pub fn controlling(&self, pods: &[Pod]) -> BTreeSet<String> {
        let selectors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut hpas = BTreeSet::new();
        for pod in pods {
            let namespace = pod.namespace().unwrap_or_default();
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            for ((hpa_namespace, name), selector) in selectors.iter() {
                if *hpa_namespace == namespace && selector.matches(&labels) {
                    hpas.insert(format!("{hpa_namespace}/{name}"));
                }
            }
        }
        hpas
    }
}

impl Context {
    /// `validateAndParseSelector`: the scale's selector, or the message of why it will not do
    /// (its event and ScalingActive condition recorded).
    pub(super) async fn validate_selector(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        scale: &Scale,
        now: Timestamp,
    ) -> Result<String, String> {
        let selector = scale.status.as_ref().and_then(|s| s.selector.clone());
        let selector = selector.unwrap_or_default();
        if selector.is_empty() {
            let message = "selector is required";
            let condition = "the HPA target's scale is missing a selector";
            return Err(self
                .invalid(
                    hpa,
                    ("SelectorRequired", "InvalidSelector"),
                    message,
                    condition,
                    now,
                )
                .await);
        }
        let parsed = match LabelSelector::from_str(&selector) {
            Ok(parsed) => parsed,
            Err(err) => {
                let message = format!("couldn't convert selector into a corresponding internal selector object: {err}");
                let reasons = ("InvalidSelector", "InvalidSelector");
                return Err(self.invalid(hpa, reasons, &message, &message, now).await);
            }
        };
        let (namespace, name) = (hpa.namespace().unwrap_or_default(), hpa.name_any());
        self.selectors.put(&namespace, &name, parsed);
        let api = Api::<Pod>::namespaced(self.client.clone(), &namespace);
        let pods = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|err| error_message(&err))?;
        let controlling = self.selectors.controlling(&pods.items);
        if controlling.len() > 1 {
            let listed: Vec<String> = controlling.into_iter().collect();
            let message = format!(
                "pods by selector {selector} are controlled by multiple HPAs: [{}]",
                listed.join(" ")
            );
            let reasons = ("AmbiguousSelector", "AmbiguousSelector");
            return Err(self.invalid(hpa, reasons, &message, &message, now).await);
        }
        Ok(selector)
    }

    /// Records the warning event and the ScalingActive condition of a selector refused.
    async fn invalid(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        (event_reason, condition_reason): (&'static str, &'static str),
        message: &str,
        condition: &str,
        now: Timestamp,
    ) -> String {
        let event = Event::warning(event_reason, message.to_owned());
        self.events.record(hpa, event).await;
        let condition = Condition::new(SCALING_ACTIVE, "False", condition_reason, condition);
        set_condition(hpa, condition, now);
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(namespace: &str, app: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": namespace, "labels": {"app": app}},
        }))
        .unwrap()
    }

    #[test]
    fn the_hpas_selecting_a_pod_of_their_namespace_control_it() {
        let selectors = HpaSelectors::default();
        selectors.put("default", "a", "app=web".parse().unwrap());
        selectors.put("default", "b", "app in (web,api)".parse().unwrap());
        selectors.put("other", "c", "app=web".parse().unwrap());
        let found = selectors.controlling(&[pod("default", "web")]);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["default/a", "default/b"]
        );
        selectors.delete("default", "b");
        assert_eq!(selectors.controlling(&[pod("default", "web")]).len(), 1);
        assert!(selectors.controlling(&[pod("default", "db")]).is_empty());
    }
}
