//! Which lists strategic merge patch merges, and by which key: the `patchStrategy` /
//! `patchMergeKey` struct tags of k8s.io/api (v1.33) as a table per kind.
//!
//! A field is named by its JSON path from the object root with list indices dropped, e.g.
//! `["spec", "template", "spec", "containers", "env"]`. Fields the table does not know are
//! plain: maps merge, lists are replaced.

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the live one (no `patchStrategy` tag; `listType=atomic`).
    Replace,
    /// `patchStrategy: merge`: entries are matched by `key` (`patchMergeKey`), or, when `key` is
    /// `None`, the list is a set of primitives and the patch's values are added to it.
    Merge { key: Option<&'static str> },
}

/// The patch metadata strategic merge patch needs about a kind's fields.
pub trait MergeSchema {
    /// The strategy of the list field at `path`.
    fn list_strategy(&self, path: &[&str]) -> ListStrategy;
    /// Whether the field at `path` carries the `retainKeys` strategy (a union whose cleared
    /// members a patch generator lists in `$retainKeys`).
    fn retain_keys(&self, path: &[&str]) -> bool;
}

/// The strategies Kubernetes declares for one built-in kind (metadata only for other kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinSchema {
    kind: String,
}

impl BuiltinSchema {
    /// The schema of `kind` (e.g. `"Deployment"`); unknown kinds get the `ObjectMeta` rules only.
    pub fn for_kind(kind: &str) -> Self {
        BuiltinSchema {
            kind: kind.to_string(),
        }
    }

    /// The kind this schema describes.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    fn field(&self, path: &[&str]) -> Option<&'static Field> {
        let (last, parents) = path.split_last()?;
        let mut fields = root(&self.kind);
        for name in parents {
            fields = lookup(fields, name)?.fields;
        }
        lookup(fields, last)
    }
}

impl MergeSchema for BuiltinSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        self.field(path)
            .map_or(ListStrategy::Replace, |field| field.strategy)
    }

    fn retain_keys(&self, path: &[&str]) -> bool {
        self.field(path).is_some_and(|field| field.retain_keys)
    }
}

/// One struct field: its strategies and, for structs and lists of structs, the element's fields.
#[derive(Debug)]
struct Field {
    name: &'static str,
    strategy: ListStrategy,
    retain_keys: bool,
    fields: &'static [Field],
}

const fn field(name: &'static str, fields: &'static [Field]) -> Field {
    Field {
        name,
        strategy: ListStrategy::Replace,
        retain_keys: false,
        fields,
    }
}

const fn merge(name: &'static str, key: &'static str, fields: &'static [Field]) -> Field {
    Field {
        name,
        strategy: ListStrategy::Merge { key: Some(key) },
        retain_keys: false,
        fields,
    }
}

const fn union(name: &'static str) -> Field {
    Field {
        name,
        strategy: ListStrategy::Merge { key: None },
        retain_keys: false,
        fields: &[],
    }
}

const fn retain(field: Field) -> Field {
    Field {
        retain_keys: true,
        ..field
    }
}

fn lookup(fields: &'static [Field], name: &str) -> Option<&'static Field> {
    fields.iter().find(|field| field.name == name)
}

fn root(kind: &str) -> &'static [Field] {
    match kind {
        "Pod" => POD,
        "PodTemplate" => POD_TEMPLATE,
        "ReplicationController" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" => WORKLOAD,
        "Deployment" => DEPLOYMENT,
        "CronJob" => CRON_JOB,
        "Service" => SERVICE,
        "Node" => NODE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Namespace" | "PersistentVolumeClaim" | "HorizontalPodAutoscaler" => CONDITIONED,
        "ComponentStatus" => COMPONENT_STATUS,
        _ => GENERIC,
    }
}

const NONE: &[Field] = &[];

const OBJECT_META: &[Field] = &[union("finalizers"), merge("ownerReferences", "uid", NONE)];

const CONTAINER: &[Field] = &[
    merge("ports", "containerPort", NONE),
    merge("env", "name", NONE),
    merge("volumeMounts", "mountPath", NONE),
    merge("volumeDevices", "devicePath", NONE),
];

const POD_SPEC: &[Field] = &[
    retain(merge("volumes", "name", NONE)),
    merge("initContainers", "name", CONTAINER),
    merge("containers", "name", CONTAINER),
    merge("ephemeralContainers", "name", CONTAINER),
    merge("imagePullSecrets", "name", NONE),
    merge("hostAliases", "ip", NONE),
    merge("topologySpreadConstraints", "topologyKey", NONE),
    merge("schedulingGates", "name", NONE),
    retain(merge("resourceClaims", "name", NONE)),
];

const POD_STATUS: &[Field] = &[
    merge("conditions", "type", NONE),
    merge("hostIPs", "ip", NONE),
    merge("podIPs", "ip", NONE),
    retain(merge("resourceClaimStatuses", "name", NONE)),
];

const CONDITIONS: &[Field] = &[merge("conditions", "type", NONE)];

const POD_TEMPLATE_SPEC: &[Field] = &[field("metadata", OBJECT_META), field("spec", POD_SPEC)];

const TEMPLATED_SPEC: &[Field] = &[field("template", POD_TEMPLATE_SPEC)];

const DEPLOYMENT_SPEC: &[Field] = &[
    field("template", POD_TEMPLATE_SPEC),
    retain(field("strategy", NONE)),
];

const JOB_TEMPLATE_SPEC: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", TEMPLATED_SPEC),
];

const GENERIC: &[Field] = &[field("metadata", OBJECT_META)];

const POD: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", POD_SPEC),
    field("status", POD_STATUS),
];

const POD_TEMPLATE: &[Field] = &[
    field("metadata", OBJECT_META),
    field("template", POD_TEMPLATE_SPEC),
];

const WORKLOAD: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", TEMPLATED_SPEC),
    field("status", CONDITIONS),
];

const DEPLOYMENT: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", DEPLOYMENT_SPEC),
    field("status", CONDITIONS),
];

const CRON_JOB: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", &[field("jobTemplate", JOB_TEMPLATE_SPEC)]),
];

const SERVICE: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", &[merge("ports", "port", NONE)]),
    field("status", CONDITIONS),
];

const NODE: &[Field] = &[
    field("metadata", OBJECT_META),
    field("spec", &[union("podCIDRs")]),
    field(
        "status",
        &[
            merge("conditions", "type", NONE),
            merge("addresses", "type", NONE),
        ],
    ),
];

const SERVICE_ACCOUNT: &[Field] = &[
    field("metadata", OBJECT_META),
    merge("secrets", "name", NONE),
];

const CONDITIONED: &[Field] = &[field("metadata", OBJECT_META), field("status", CONDITIONS)];

const COMPONENT_STATUS: &[Field] = &[
    field("metadata", OBJECT_META),
    merge("conditions", "type", NONE),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(kind: &str, path: &str) -> ListStrategy {
        let path: Vec<&str> = path.split('.').collect();
        BuiltinSchema::for_kind(kind).list_strategy(&path)
    }

    fn by(key: &'static str) -> ListStrategy {
        ListStrategy::Merge { key: Some(key) }
    }

    #[test]
    fn pod_spec_is_found_under_every_workload_prefix() {
        assert_eq!(strategy("Pod", "spec.containers"), by("name"));
        assert_eq!(
            strategy("Deployment", "spec.template.spec.containers"),
            by("name")
        );
        assert_eq!(
            strategy("StatefulSet", "spec.template.spec.initContainers.env"),
            by("name")
        );
        assert_eq!(strategy("Job", "spec.template.spec.volumes"), by("name"));
        assert_eq!(
            strategy(
                "CronJob",
                "spec.jobTemplate.spec.template.spec.containers.ports"
            ),
            by("containerPort")
        );
        assert_eq!(
            strategy("PodTemplate", "template.spec.hostAliases"),
            by("ip")
        );
        assert_eq!(
            strategy("Deployment", "spec.containers"),
            ListStrategy::Replace
        );
    }

    #[test]
    fn tags_match_k8s_api() {
        assert_eq!(
            strategy("Pod", "spec.containers.volumeMounts"),
            by("mountPath")
        );
        assert_eq!(
            strategy("Pod", "spec.containers.resizePolicy"),
            ListStrategy::Replace
        );
        assert_eq!(
            strategy("Pod", "spec.containers.envFrom"),
            ListStrategy::Replace
        );
        assert_eq!(strategy("Pod", "spec.tolerations"), ListStrategy::Replace);
        assert_eq!(
            strategy("Pod", "spec.topologySpreadConstraints"),
            by("topologyKey")
        );
        assert_eq!(strategy("Pod", "status.podIPs"), by("ip"));
        assert_eq!(
            strategy("Pod", "status.containerStatuses"),
            ListStrategy::Replace
        );
        assert_eq!(strategy("Node", "spec.taints"), ListStrategy::Replace);
        assert_eq!(
            strategy("Node", "spec.podCIDRs"),
            ListStrategy::Merge { key: None }
        );
        assert_eq!(strategy("Node", "status.addresses"), by("type"));
        assert_eq!(strategy("Node", "status.images"), ListStrategy::Replace);
        assert_eq!(strategy("Service", "spec.ports"), by("port"));
        assert_eq!(strategy("ServiceAccount", "secrets"), by("name"));
        assert_eq!(strategy("Job", "status.conditions"), by("type"));
        assert_eq!(
            strategy("HorizontalPodAutoscaler", "status.conditions"),
            by("type")
        );
        assert_eq!(
            strategy("Namespace", "spec.finalizers"),
            ListStrategy::Replace
        );
    }

    #[test]
    fn metadata_rules_apply_to_every_kind() {
        for kind in ["ConfigMap", "Secret", "Event", "Ingress", "Widget", "Pod"] {
            assert_eq!(
                strategy(kind, "metadata.finalizers"),
                ListStrategy::Merge { key: None }
            );
            assert_eq!(strategy(kind, "metadata.ownerReferences"), by("uid"));
        }
        assert_eq!(
            strategy("Deployment", "spec.template.metadata.finalizers"),
            ListStrategy::Merge { key: None }
        );
    }

    #[test]
    fn retain_keys_fields() {
        let deployment = BuiltinSchema::for_kind("Deployment");
        assert!(deployment.retain_keys(&["spec", "strategy"]));
        assert!(deployment.retain_keys(&["spec", "template", "spec", "volumes"]));
        assert!(!deployment.retain_keys(&["spec", "template", "spec", "containers"]));
        assert!(!BuiltinSchema::for_kind("DaemonSet").retain_keys(&["spec", "updateStrategy"]));
    }
}
