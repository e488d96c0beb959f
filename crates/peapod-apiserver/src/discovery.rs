//! What a client discovers before it asks for anything: `/version`, the legacy discovery
//! documents (`/api`, `/apis`, `/apis/{group}`, one resource list per group version) and
//! aggregated discovery (`apidiscovery.k8s.io/v2` and `v2beta1` on `/api` and `/apis`), all
//! generated from the [`Registry`] in the shapes kube-apiserver 1.32 emits.

use serde_json::{json, Value};

use crate::negotiate::Output;
use crate::registry::{Group, Kind, Registry, Subresource};
use crate::status::ApiError;

/// The Kubernetes release whose API peapod serves (kubectl's version dispatcher picks its
/// binary by this minor).
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "32";

/// `v1.32.0+peapod.<version>`: semver with build metadata, as k3s does (`v1.32.3+k3s1`), so
/// clients comparing versions see exactly 1.32.0 (a `-` pre-release would sort below it).
pub const GIT_VERSION: &str = concat!("v1.32.0+peapod.", env!("CARGO_PKG_VERSION"));

/// kube's defaults for a build that did not stamp these.
const UNSET_BUILD_DATE: &str = "1970-01-01T00:00:00Z";

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";

/// The `/version` document (`version.Info`).
pub fn version_info() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": option_env!("PEAPOD_GIT_COMMIT").unwrap_or(""),
        "gitTreeState": option_env!("PEAPOD_GIT_TREE_STATE").unwrap_or(""),
        "buildDate": option_env!("PEAPOD_BUILD_DATE").unwrap_or(UNSET_BUILD_DATE),
        "goVersion": "n/a",
        "compiler": "rustc",
        "platform": platform(),
    })
}

/// `linux/amd64`, in Go's architecture names.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "arm" => "arm",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// The answer to a discovery path, or `None` when `path` is no discovery path. Unknown groups
/// and versions are 404s. `/api` and `/apis` are aggregated when `output` asks for it; every
/// other answer is a legacy document, in YAML if asked, else JSON.
pub fn respond(
    registry: &Registry,
    path: &str,
    output: &Output,
) -> Option<Result<(Value, &'static str), ApiError>> {
    respond_at(registry, path, output, None)
}

/// [`respond`], naming `server_address` (`host:port`) in `/api`'s `serverAddressByClientCIDRs`.
pub fn respond_at(
    registry: &Registry,
    path: &str,
    output: &Output,
    server_address: Option<&str>,
) -> Option<Result<(Value, &'static str), ApiError>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let legacy_type = if *output == Output::Yaml { YAML } else { JSON };
    let legacy = |document: Option<Value>| {
        document
            .map(|value| (value, legacy_type))
            .ok_or_else(ApiError::no_route)
    };
    let answer = match segments.as_slice() {
        ["version"] => Ok((version_info(), JSON)),
        ["api"] | ["apis"] if output.is_aggregated_discovery() => {
            let core = segments == ["api"];
            Ok((aggregated(registry, core, output), output.content_type()))
        }
        ["api"] => legacy(Some(api_versions(registry, server_address))),
        ["apis"] => legacy(Some(api_group_list(registry))),
        ["api", version] => legacy(api_resource_list(registry, "", version)),
        ["apis", group] if !group.is_empty() => legacy(api_group(registry, group)),
        ["apis", group, version] if !group.is_empty() => {
            legacy(api_resource_list(registry, group, version))
        }
        _ => return None,
    };
    Some(answer)
}

/// `GET /api`: the core group's versions.
pub fn api_versions(registry: &Registry, server_address: Option<&str>) -> Value {
    let versions = registry
        .groups()
        .into_iter()
        .find(|group| group.name.is_empty())
        .map(|group| group.versions)
        .unwrap_or_default();
    let addresses: Vec<Value> = server_address
        .map(|address| json!({"clientCIDR": "0.0.0.0/0", "serverAddress": address}))
        .into_iter()
        .collect();
    json!({
        "kind": "APIVersions",
        "versions": versions,
        "serverAddressByClientCIDRs": addresses,
    })
}

/// `GET /apis`: every group but the core one.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = named_groups(registry).iter().map(group_entry).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`.
pub fn api_group(registry: &Registry, name: &str) -> Option<Value> {
    let group = named_groups(registry)
        .into_iter()
        .find(|g| g.name == name)?;
    let mut document = group_entry(&group);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

fn named_groups(registry: &Registry) -> Vec<Group> {
    let mut groups = registry.groups();
    groups.retain(|group| !group.name.is_empty());
    groups
}

/// An `APIGroup` without kind: the first registered version is the preferred one.
fn group_entry(group: &Group) -> Value {
    let version = |version: &String| json!({"groupVersion": format!("{}/{version}", group.name), "version": version});
    let versions: Vec<Value> = group.versions.iter().map(version).collect();
    json!({
        "name": group.name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `GET /api/{version}` or `/apis/{group}/{version}`: an `APIResourceList` with one entry per
/// resource and one per subresource (`pods/status`), sorted by name as kube sorts them.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let kinds = sorted_kinds(registry, group, version);
    if kinds.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for kind in kinds {
        resources.push(legacy_resource(kind));
        resources.extend(
            sorted_subresources(kind)
                .into_iter()
                .map(|sub| legacy_subresource(kind, sub)),
        );
    }
    let group_version = crate::registry::api_version(group, version);
    let mut list = json!({
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": resources,
    });
    if !group.is_empty() {
        // kube's core list carries no apiVersion; the group lists do.
        list["apiVersion"] = json!("v1");
    }
    Some(list)
}

fn sorted_kinds<'a>(registry: &'a Registry, group: &'a str, version: &'a str) -> Vec<&'a Kind> {
    let mut kinds: Vec<&Kind> = registry.kinds_in(group, version).map(|k| &**k).collect();
    kinds.sort_by_key(|kind| kind.plural);
    kinds
}

fn sorted_subresources(kind: &Kind) -> Vec<&Subresource> {
    let mut subresources: Vec<&Subresource> = kind.subresources.iter().collect();
    subresources.sort_by_key(|sub| sub.name);
    subresources
}

/// A `metav1.APIResource` of a resource (storageVersionHash left out).
fn legacy_resource(kind: &Kind) -> Value {
    let mut resource = json!({
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.gvk.kind,
        "verbs": kind.verbs,
    });
    if !kind.short_names.is_empty() {
        resource["shortNames"] = json!(kind.short_names);
    }
    if !kind.categories.is_empty() {
        resource["categories"] = json!(kind.categories);
    }
    resource
}

/// The `metav1.APIResource` of `parent/sub`: group and version given only when the response
/// is of another group version (`deployments/scale` answers `autoscaling/v1 Scale`).
fn legacy_subresource(kind: &Kind, sub: &Subresource) -> Value {
    let mut resource = json!({
        "name": format!("{}/{}", kind.plural, sub.name),
        "singularName": "",
        "namespaced": kind.namespaced,
        "kind": sub.response.kind,
        "verbs": sub.verbs,
    });
    let (group, version) = foreign_group_version(kind, sub);
    if !group.is_empty() {
        resource["group"] = json!(group);
    }
    if !version.is_empty() {
        resource["version"] = json!(version);
    }
    resource
}

/// The response's group and version when they differ from the parent's, else empty strings.
fn foreign_group_version<'a>(kind: &Kind, sub: &'a Subresource) -> (&'a str, &'a str) {
    let response = &sub.response;
    if response.group == kind.gvk.group && response.version == kind.gvk.version {
        ("", "")
    } else {
        (&response.group, &response.version)
    }
}

/// An `APIGroupDiscoveryList` of the core group (`core`) or of every other group.
fn aggregated(registry: &Registry, core: bool, output: &Output) -> Value {
    let api_version = match output {
        Output::DiscoveryV2Beta1 => "apidiscovery.k8s.io/v2beta1",
        _ => "apidiscovery.k8s.io/v2",
    };
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|group| group.name.is_empty() == core)
        .map(|group| group_discovery(registry, &group))
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

/// An `APIGroupDiscovery`: its versions, preferred first, each with its resources.
fn group_discovery(registry: &Registry, group: &Group) -> Value {
    let mut metadata = json!({"creationTimestamp": null});
    if !group.name.is_empty() {
        metadata["name"] = json!(group.name);
    }
    let versions: Vec<Value> = group
        .versions
        .iter()
        .map(|version| {
            let resources: Vec<Value> = sorted_kinds(registry, &group.name, version)
                .into_iter()
                .map(resource_discovery)
                .collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": metadata, "versions": versions})
}

/// An `APIResourceDiscovery`. As in kube, `responseKind` leaves group and version empty when
/// they are the enclosing group version's.
fn resource_discovery(kind: &Kind) -> Value {
    let scope = if kind.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    };
    let mut resource = json!({
        "resource": kind.plural,
        "responseKind": {"group": "", "version": "", "kind": kind.gvk.kind},
        "scope": scope,
        "singularResource": kind.singular,
        "verbs": kind.verbs,
    });
    if !kind.short_names.is_empty() {
        resource["shortNames"] = json!(kind.short_names);
    }
    if !kind.categories.is_empty() {
        resource["categories"] = json!(kind.categories);
    }
    let subresources: Vec<Value> = sorted_subresources(kind)
        .into_iter()
        .map(|sub| {
            let (group, version) = foreign_group_version(kind, sub);
            json!({
                "subresource": sub.name,
                "responseKind": {"group": group, "version": version, "kind": sub.response.kind},
                "verbs": sub.verbs,
            })
        })
        .collect();
    if !subresources.is_empty() {
        resource["subresources"] = json!(subresources);
    }
    resource
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, Pod};

    use super::*;
    use crate::registry::{GroupVersionKind, ALL_VERBS};

    fn registry() -> Registry {
        Registry::new([
            Kind::external::<Pod>(ALL_VERBS)
                .short_names(&["po"])
                .categories(&["all"])
                .with_status()
                .subresource(Subresource {
                    name: "eviction",
                    response: GroupVersionKind::new("policy", "v1", "Eviction"),
                    verbs: &["create"],
                })
                .subresource(Subresource {
                    name: "log",
                    response: GroupVersionKind::new("", "v1", "Pod"),
                    verbs: &["get"],
                }),
            Kind::external::<Deployment>(ALL_VERBS)
                .short_names(&["deploy"])
                .categories(&["all"])
                .with_status()
                .subresource(Subresource {
                    name: "scale",
                    response: GroupVersionKind::new("autoscaling", "v1", "Scale"),
                    verbs: &["get", "patch", "update"],
                }),
            Kind::external::<Namespace>(&[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ])
            .short_names(&["ns"]),
        ])
    }

    fn answer(path: &str, output: Output) -> (Value, &'static str) {
        respond(&registry(), path, &output)
            .expect("a discovery path")
            .expect("served")
    }

    #[test]
    fn version_is_kube_1_32_with_a_semver_git_version() {
        let (info, content_type) = answer("/version", Output::Json);
        assert_eq!(content_type, "application/json");
        assert_eq!(info["major"], "1");
        assert_eq!(info["minor"], "32");
        let git = info["gitVersion"].as_str().unwrap();
        let build = git.strip_prefix("v1.32.0+").expect("build metadata");
        assert!(build
            .split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
        assert_eq!(info["compiler"], "rustc");
        assert!(info["platform"].as_str().unwrap().starts_with("linux/"));
        for field in ["gitCommit", "gitTreeState", "buildDate", "goVersion"] {
            assert!(info[field].is_string(), "{field}");
        }
    }

    #[test]
    fn legacy_api_lists_the_core_versions() {
        let (api, _) = answer("/api", Output::Json);
        assert_eq!(
            api,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        );
        let (api, _) = respond_at(&registry(), "/api", &Output::Json, Some("10.0.0.1:6443"))
            .unwrap()
            .unwrap();
        assert_eq!(
            api["serverAddressByClientCIDRs"],
            json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}])
        );
    }

    #[test]
    fn legacy_groups() {
        let apps = json!({
            "name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
        });
        let (list, content_type) = answer("/apis", Output::Json);
        assert_eq!(content_type, "application/json");
        assert_eq!(
            list,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [apps.clone()]})
        );
        let (group, _) = answer("/apis/apps", Output::Json);
        let mut expected = apps;
        expected["kind"] = json!("APIGroup");
        expected["apiVersion"] = json!("v1");
        assert_eq!(group, expected);
    }

    #[test]
    fn legacy_core_resource_list() {
        let (list, _) = answer("/api/v1", Output::Json);
        assert_eq!(list["kind"], "APIResourceList");
        assert_eq!(list["groupVersion"], "v1");
        assert!(list.get("apiVersion").is_none());
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "namespaces",
                "pods",
                "pods/eviction",
                "pods/log",
                "pods/status"
            ]
        );
        let pods = &list["resources"][1];
        assert_eq!(
            *pods,
            json!({
                "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                "verbs": ALL_VERBS, "shortNames": ["po"], "categories": ["all"],
            })
        );
        assert_eq!(
            list["resources"][2],
            json!({
                "name": "pods/eviction", "singularName": "", "namespaced": true,
                "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"],
            })
        );
        assert_eq!(
            list["resources"][4],
            json!({
                "name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
                "verbs": ["get", "patch", "update"],
            })
        );
        assert_eq!(list["resources"][0]["namespaced"], false);
    }

    #[test]
    fn legacy_group_resource_list_names_the_scale_kind() {
        let (list, _) = answer("/apis/apps/v1/", Output::Json);
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["groupVersion"], "apps/v1");
        assert_eq!(
            list["resources"][1],
            json!({
                "name": "deployments/scale", "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            })
        );
    }

    #[test]
    fn yaml_is_offered_for_legacy_documents() {
        let (_, content_type) = answer("/apis/apps/v1", Output::Yaml);
        assert_eq!(content_type, "application/yaml");
        let (_, content_type) = answer("/api", Output::Protobuf);
        assert_eq!(content_type, "application/json");
    }

    #[test]
    fn aggregated_core_group() {
        let (list, content_type) = answer("/api", Output::DiscoveryV2);
        assert_eq!(
            content_type,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert_eq!(list["kind"], "APIGroupDiscoveryList");
        assert_eq!(list["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(list["metadata"], json!({}));
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"], json!({"creationTimestamp": null}));
        let version = &items[0]["versions"][0];
        assert_eq!(version["version"], "v1");
        assert_eq!(version["freshness"], "Current");
        let namespaces = &version["resources"][0];
        assert_eq!(
            *namespaces,
            json!({
                "resource": "namespaces",
                "responseKind": {"group": "", "version": "", "kind": "Namespace"},
                "scope": "Cluster", "singularResource": "namespace",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                "shortNames": ["ns"],
            })
        );
        let pods = &version["resources"][1];
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(
            pods["subresources"][0],
            json!({
                "subresource": "eviction",
                "responseKind": {"group": "policy", "version": "v1", "kind": "Eviction"},
                "verbs": ["create"],
            })
        );
    }

    #[test]
    fn aggregated_groups_match_kubes_deployment_entry() {
        let (list, _) = answer("/apis", Output::DiscoveryV2);
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0]["metadata"],
            json!({"name": "apps", "creationTimestamp": null})
        );
        // as in kubernetes/kubernetes api/discovery/aggregated_v2.json
        let deployments = json!({
            "categories": ["all"],
            "resource": "deployments",
            "responseKind": {"group": "", "kind": "Deployment", "version": ""},
            "scope": "Namespaced",
            "shortNames": ["deploy"],
            "singularResource": "deployment",
            "subresources": [
                {
                    "responseKind": {"group": "autoscaling", "kind": "Scale", "version": "v1"},
                    "subresource": "scale",
                    "verbs": ["get", "patch", "update"],
                },
                {
                    "responseKind": {"group": "", "kind": "Deployment", "version": ""},
                    "subresource": "status",
                    "verbs": ["get", "patch", "update"],
                },
            ],
            "verbs": ALL_VERBS,
        });
        assert_eq!(
            items[0]["versions"],
            json!([{"version": "v1", "freshness": "Current", "resources": [deployments]}])
        );
    }

    #[test]
    fn aggregated_v2beta1_when_asked() {
        let (list, content_type) = answer("/apis", Output::DiscoveryV2Beta1);
        assert_eq!(list["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert!(content_type.contains("v=v2beta1"));
    }

    #[test]
    fn per_version_lists_stay_legacy_when_aggregation_is_asked() {
        let (list, content_type) = answer("/apis/apps/v1", Output::DiscoveryV2);
        assert_eq!(list["kind"], "APIResourceList");
        assert_eq!(content_type, "application/json");
    }

    #[test]
    fn unknown_groups_and_versions_are_404() {
        for path in ["/apis/batch", "/apis/batch/v1", "/apis/apps/v2", "/api/v2"] {
            let err = respond(&registry(), path, &Output::Json)
                .expect("a discovery path")
                .unwrap_err();
            assert_eq!(err.code, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn other_paths_are_not_discovery() {
        for path in [
            "/api/v1/pods",
            "/apis/apps/v1/deployments",
            "/healthz",
            "/openapi/v3",
            "/",
        ] {
            assert!(
                respond(&registry(), path, &Output::Json).is_none(),
                "{path}"
            );
        }
    }
}
