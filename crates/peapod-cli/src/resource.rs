//! One resource type the agent serves (from discovery), its REST paths, and how kubectl
//! resolves a type argument (`pods`, `pod`, `po`, `Pod`, `configmaps.v1.`, `deployments.apps`)
//! or a manifest's apiVersion and kind to it.

use crate::query::encode;

/// A resource type as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiResource {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    /// The plural: the path segment (`configmaps`).
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
}

impl ApiResource {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind as kubectl names it in output: `configmap`, `deployment.apps`.
    pub fn kind_label(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }

    pub fn is_pod(&self) -> bool {
        self.is("", "Pod")
    }

    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection in `namespace`; `None` (or a cluster-scoped type) is every namespace.
    pub fn collection(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!(
                "{}/namespaces/{}/{}",
                self.prefix(),
                encode(ns),
                self.plural
            ),
            None => format!("{}/{}", self.prefix(), self.plural),
        }
    }

    /// One object; `namespace` is ignored for cluster-scoped types.
    pub fn object(&self, namespace: &str, name: &str) -> String {
        format!("{}/{}", self.collection(Some(namespace)), encode(name))
    }

    /// Whether `name` (lower case) names this type: plural, singular, kind or short name.
    fn named(&self, name: &str) -> bool {
        self.plural == name
            || self.singular == name
            || self.kind.to_lowercase() == name
            || self.short_names.iter().any(|s| s == name)
    }
}

/// Every resource type the agent serves, core group first, each group's preferred version
/// first (kubectl's priority when two groups serve the same name, as `pods` of
/// metrics.k8s.io).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub resources: Vec<ApiResource>,
}

impl Discovery {
    /// The type a `get`/`delete`/`describe` argument names, as kubectl's REST mapper finds it
    /// (case-insensitive; `resource.version.group`, then `resource.group`, then `resource`).
    pub fn resolve(&self, arg: &str) -> Option<&ApiResource> {
        let lower = arg.to_lowercase();
        let parts: Vec<&str> = lower.splitn(3, '.').collect();
        if let [name, version, group] = parts[..] {
            if let Some(found) = self.find(name, Some(group), Some(version)) {
                return Some(found);
            }
        }
        if let Some((name, group)) = lower.split_once('.') {
            return self.find(name, Some(group), None);
        }
        self.find(&lower, None, None)
    }

    fn find(&self, name: &str, group: Option<&str>, version: Option<&str>) -> Option<&ApiResource> {
        self.resources.iter().find(|r| {
            group.is_none_or(|g| r.group == g)
                && version.is_none_or(|v| r.version == v)
                && r.named(name)
        })
    }

    /// The types in a category (`all`), in discovery order.
    pub fn category(&self, name: &str) -> Vec<&ApiResource> {
        let lower = name.to_lowercase();
        self.resources
            .iter()
            .filter(|r| r.categories.contains(&lower))
            .collect()
    }

    /// The type of a manifest's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ApiResource> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn resource(group: &str, plural: &str, kind: &str, namespaced: bool) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: if group.is_empty() { "v1" } else { "v1beta1" }.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            ..ApiResource::default()
        }
    }

    /// Pods, configmaps, namespaces and metrics.k8s.io's pods.
    pub fn discovery() -> Discovery {
        let mut pods = resource("", "pods", "Pod", true);
        pods.short_names = vec!["po".into()];
        pods.categories = vec!["all".into()];
        let mut cm = resource("", "configmaps", "ConfigMap", true);
        cm.short_names = vec!["cm".into()];
        let mut ns = resource("", "namespaces", "Namespace", false);
        ns.short_names = vec!["ns".into()];
        let metrics = resource("metrics.k8s.io", "pods", "PodMetrics", true);
        Discovery {
            resources: vec![pods, cm, ns, metrics],
        }
    }

    #[test]
    fn resolves_as_kubectl_does() {
        let d = discovery();
        for arg in ["pods", "pod", "po", "Pod", "PODS", "pods.", "pods.v1."] {
            assert_eq!(d.resolve(arg).map(|r| r.group.as_str()), Some(""), "{arg}");
        }
        assert_eq!(d.resolve("cm").unwrap().kind, "ConfigMap");
        let metrics = d.resolve("pods.metrics.k8s.io").unwrap();
        assert_eq!(metrics.kind, "PodMetrics");
        assert_eq!(d.resolve("pods.v1beta1.metrics.k8s.io").unwrap(), metrics);
        assert!(d.resolve("pods.v2.metrics.k8s.io").is_none());
        assert!(d.resolve("svc").is_none());
        assert_eq!(d.category("all").len(), 1);
    }

    #[test]
    fn paths_and_labels() {
        let d = discovery();
        let pods = d.resolve("po").unwrap();
        assert_eq!(pods.collection(None), "/api/v1/pods");
        assert_eq!(pods.object("a b", "x"), "/api/v1/namespaces/a%20b/pods/x");
        let ns = d.resolve("ns").unwrap();
        assert_eq!(ns.object("default", "team"), "/api/v1/namespaces/team");
        let metrics = d.by_kind("metrics.k8s.io/v1beta1", "PodMetrics").unwrap();
        assert_eq!(
            metrics.collection(Some("dev")),
            "/apis/metrics.k8s.io/v1beta1/namespaces/dev/pods"
        );
        assert_eq!(metrics.kind_label(), "podmetrics.metrics.k8s.io");
        assert_eq!(pods.kind_label(), "pod");
        assert!(d.by_kind("v1", "Deployment").is_none());
    }
}
