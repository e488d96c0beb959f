//! Asks the agent what it serves: aggregated discovery (`/api` and `/apis` answered as
//! `apidiscovery.k8s.io/v2 APIGroupDiscoveryList`, two requests), or, when the agent answers
//! with the legacy `APIVersions`/`APIGroupList`, one `APIResourceList` per group version.

use serde_json::Value;

use crate::client::{Call, Client, ClientError};
use crate::resource::{ApiResource, Discovery};

/// kubectl's Accept for aggregated discovery, falling back to the legacy documents.
const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// Every resource type the agent serves.
pub async fn discover(client: &Client) -> Result<Discovery, ClientError> {
    let mut resources = Vec::new();
    for root in ["/api", "/apis"] {
        let call = Call::get(root).header("accept", AGGREGATED);
        let answer: Value = client.send(call).await?.json().await?;
        if answer["kind"] == "APIGroupDiscoveryList" {
            resources.extend(aggregated(&answer));
            continue;
        }
        for group_version in legacy_group_versions(&answer) {
            let path = format!("{root}/{group_version}");
            let list: Value = client.get_json(&path).await?;
            resources.extend(legacy(&list));
        }
    }
    Ok(Discovery { resources })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The resources of an `APIGroupDiscoveryList` (subresources left out).
fn aggregated(list: &Value) -> Vec<ApiResource> {
    let mut resources = Vec::new();
    for group in list["items"].as_array().into_iter().flatten() {
        let name = text(&group["metadata"]["name"]);
        for version in group["versions"].as_array().into_iter().flatten() {
            for resource in version["resources"].as_array().into_iter().flatten() {
                resources.push(ApiResource {
                    group: name.clone(),
                    version: text(&version["version"]),
                    plural: text(&resource["resource"]),
                    singular: text(&resource["singularResource"]),
                    kind: text(&resource["responseKind"]["kind"]),
                    namespaced: resource["scope"] == "Namespaced",
                    short_names: strings(&resource["shortNames"]),
                    categories: strings(&resource["categories"]),
                    verbs: strings(&resource["verbs"]),
                });
            }
        }
    }
    resources
}

/// `v1` from `APIVersions`; `group/version` from `APIGroupList`, preferred version first.
fn legacy_group_versions(answer: &Value) -> Vec<String> {
    if answer["kind"] == "APIVersions" {
        return strings(&answer["versions"]);
    }
    let mut all = Vec::new();
    for group in answer["groups"].as_array().into_iter().flatten() {
        let preferred = text(&group["preferredVersion"]["groupVersion"]);
        if !preferred.is_empty() {
            all.push(preferred.clone());
        }
        for version in group["versions"].as_array().into_iter().flatten() {
            let group_version = text(&version["groupVersion"]);
            if group_version != preferred {
                all.push(group_version);
            }
        }
    }
    all
}

/// The resources of an `APIResourceList` (`pods/log` and other subresources left out).
fn legacy(list: &Value) -> Vec<ApiResource> {
    let group_version = text(&list["groupVersion"]);
    let (group, version) = group_version
        .rsplit_once('/')
        .unwrap_or(("", group_version.as_str()));
    list["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !text(&r["name"]).contains('/'))
        .map(|resource| ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            plural: text(&resource["name"]),
            singular: text(&resource["singularName"]),
            kind: text(&resource["kind"]),
            namespaced: resource["namespaced"] == true,
            short_names: strings(&resource["shortNames"]),
            categories: strings(&resource["categories"]),
            verbs: strings(&resource["verbs"]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aggregated_lists_each_version_of_each_group() {
        let list = json!({"kind": "APIGroupDiscoveryList", "items": [
            {"metadata": {"creationTimestamp": null}, "versions": [{"version": "v1", "resources": [
                {"resource": "pods", "responseKind": {"group": "", "version": "", "kind": "Pod"},
                 "scope": "Namespaced", "singularResource": "pod", "shortNames": ["po"],
                 "verbs": ["get"], "subresources": [{"subresource": "log"}]},
                {"resource": "namespaces", "responseKind": {"kind": "Namespace"},
                 "scope": "Cluster", "singularResource": "namespace"}]}]},
            {"metadata": {"name": "metrics.k8s.io"}, "versions": [{"version": "v1beta1",
                "resources": [{"resource": "pods", "responseKind": {"kind": "PodMetrics"},
                "scope": "Namespaced"}]}]}]});
        let resources = aggregated(&list);
        assert_eq!(resources.len(), 3);
        assert_eq!(resources[0].short_names, ["po"]);
        assert!(resources[0].namespaced && !resources[1].namespaced);
        assert_eq!(resources[2].api_version(), "metrics.k8s.io/v1beta1");
    }

    #[test]
    fn legacy_documents() {
        let groups = json!({"kind": "APIGroupList", "groups": [{"name": "apps",
            "versions": [{"groupVersion": "apps/v1beta1"}, {"groupVersion": "apps/v1"}],
            "preferredVersion": {"groupVersion": "apps/v1"}}]});
        assert_eq!(legacy_group_versions(&groups), ["apps/v1", "apps/v1beta1"]);
        let versions = json!({"kind": "APIVersions", "versions": ["v1"]});
        assert_eq!(legacy_group_versions(&versions), ["v1"]);
        let list = json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod"},
            {"name": "pods/log", "namespaced": true, "kind": "Pod"}]});
        let resources = legacy(&list);
        assert_eq!(resources.len(), 1);
        assert_eq!(
            (resources[0].group.as_str(), resources[0].version.as_str()),
            ("", "v1")
        );
    }
}
