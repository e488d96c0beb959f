//! One group version's document: the component schemas of its kinds, named as Kubernetes
//! names them and tagged with what kubectl looks for, and the paths of [`super::paths`].

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Patch, Status};
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::paths::kind_paths;
use super::OpenApiError;
use crate::discovery::GIT_VERSION;
use crate::registry::{GroupVersionKind, Kind};

pub(super) const SCHEMAS: &str = "#/components/schemas/";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The document of one group version, as a value.
pub fn document(kinds: &[&Kind]) -> Result<Value, OpenApiError> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut targets = Vec::new();
    for kind in kinds {
        let Some(schema_of) = kind.schema else {
            continue;
        };
        let schema = schema_of(&mut generator);
        let name = ref_name(schema.as_value()).ok_or_else(|| OpenApiError::NotAReference {
            kind: kind.gvk.kind.clone(),
            schema: schema.as_value().clone(),
        })?;
        let scale = match kind.scale {
            Some(_) => Some(scale_schema(&mut generator)?),
            None => None,
        };
        targets.push(Target {
            kind,
            schema: name,
            scale,
        });
    }
    add_common(&mut generator);
    let mut schemas = generator.take_definitions(true);
    for target in &targets {
        mark_kind(&mut schemas, target);
        if let Some(scale) = &target.scale {
            mark_gvk(&mut schemas, scale, &scale_gvk());
        }
    }
    annotate_patch_strategies(&mut schemas);
    let mut paths = Map::new();
    for target in &targets {
        kind_paths(target, &mut paths);
    }
    let document = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    });
    check_refs(&document, &document["components"]["schemas"])?;
    Ok(document)
}

/// A served kind and the name of its component schema (and of its Scale's, when it has a
/// `scale` subresource).
pub(super) struct Target<'a> {
    pub kind: &'a Kind,
    pub schema: String,
    pub scale: Option<String>,
}

/// What a `scale` subresource takes and answers.
pub(super) fn scale_gvk() -> GroupVersionKind {
    GroupVersionKind::new("autoscaling", "v1", "Scale")
}

/// Adds autoscaling/v1 Scale to the generator and returns its component name.
fn scale_schema(generator: &mut SchemaGenerator) -> Result<String, OpenApiError> {
    let schema = generator.subschema_for::<Scale>();
    ref_name(schema.as_value()).ok_or_else(|| OpenApiError::NotAReference {
        kind: "Scale".to_owned(),
        schema: schema.as_value().clone(),
    })
}

fn mark_gvk(schemas: &mut Map<String, Value>, name: &str, gvk: &GroupVersionKind) {
    if let Some(Value::Object(schema)) = schemas.get_mut(name) {
        schema.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk_value(gvk)]),
        );
    }
}

impl Target<'_> {
    pub fn list(&self) -> String {
        format!("{}List", self.schema)
    }
}

fn ref_name(schema: &Value) -> Option<String> {
    let reference = schema.get("$ref")?.as_str()?;
    reference.strip_prefix(SCHEMAS).map(str::to_owned)
}

pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

/// The schemas the operations refer to besides the kinds.
fn add_common(generator: &mut SchemaGenerator) {
    generator.subschema_for::<ListMeta>();
    generator.subschema_for::<Status>();
    generator.subschema_for::<DeleteOptions>();
    generator.subschema_for::<Patch>();
}

/// Tags the kind's schema with its GVK and adds its list schema when it can be listed (a
/// create-only review has none). k8s-openapi requires `metadata` (its Rust field is not
/// optional); the API does not.
fn mark_kind(schemas: &mut Map<String, Value>, target: &Target) {
    let gvk = &target.kind.gvk;
    if let Some(Value::Object(schema)) = schemas.get_mut(&target.schema) {
        schema.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk_value(gvk)]),
        );
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|field| field != "metadata");
            if required.is_empty() {
                schema.remove("required");
            }
        }
    }
    if target.kind.allows("list") {
        schemas.insert(target.list(), list_schema(target));
    }
}

pub(super) fn gvk_value(gvk: &GroupVersionKind) -> Value {
    json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version})
}

fn list_schema(target: &Target) -> Value {
    let GroupVersionKind {
        group,
        version,
        kind,
    } = &target.kind.gvk;
    let list_gvk = GroupVersionKind::new(group, version, &format!("{kind}List"));
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation \
                                of an object.",
                "type": "string",
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this \
                                object represents.",
                "type": "string",
            },
            "metadata": {"allOf": [reference(LIST_META)], "description": "Standard list metadata."},
            "items": {
                "description": format!("List of {}.", target.kind.plural),
                "type": "array",
                "items": reference(&target.schema),
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk_value(&list_gvk)],
    })
}

/// Fails on a `$ref` that is not a component of the document.
fn check_refs(value: &Value, schemas: &Value) -> Result<(), OpenApiError> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let known = target
                    .strip_prefix(SCHEMAS)
                    .is_some_and(|name| schemas.get(name).is_some());
                if !known {
                    return Err(OpenApiError::Unresolved {
                        reference: target.clone(),
                    });
                }
            }
            map.values().try_for_each(|v| check_refs(v, schemas))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_refs(v, schemas)),
        _ => Ok(()),
    }
}

/// A list field: (property, `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key` or
/// empty).
pub(super) type PatchField = (&'static str, &'static str, &'static str);

/// The `patchStrategy` and `patchMergeKey` struct tags of k8s.io/api's list fields, by
/// definition. Client-side `kubectl apply` merges lists by these as the server does;
/// k8s-openapi's schemas do not carry them. Definitions a document lacks are skipped.
pub(super) const PATCH_STRATEGIES: &[(&str, &[PatchField])] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &[
            ("finalizers", "merge", ""),
            ("ownerReferences", "merge", "uid"),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        &[
            ("volumes", "merge,retainKeys", "name"),
            ("initContainers", "merge", "name"),
            ("containers", "merge", "name"),
            ("ephemeralContainers", "merge", "name"),
            ("imagePullSecrets", "merge", "name"),
            ("hostAliases", "merge", "ip"),
            ("topologySpreadConstraints", "merge", "topologyKey"),
            ("schedulingGates", "merge", "name"),
            ("resourceClaims", "merge,retainKeys", "name"),
        ],
    ),
    ("io.k8s.api.core.v1.Container", CONTAINER),
    ("io.k8s.api.core.v1.EphemeralContainer", CONTAINER),
    (
        "io.k8s.api.core.v1.PodStatus",
        &[
            ("conditions", "merge", "type"),
            ("podIPs", "merge", "ip"),
            ("hostIPs", "merge", "ip"),
            ("resourceClaimStatuses", "merge,retainKeys", "name"),
        ],
    ),
    ("io.k8s.api.core.v1.NodeSpec", &[("podCIDRs", "merge", "")]),
    (
        "io.k8s.api.core.v1.NodeStatus",
        &[
            ("conditions", "merge", "type"),
            ("addresses", "merge", "type"),
        ],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        &[("ports", "merge", "port")],
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        &[("secrets", "merge", "name")],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &[("strategy", "retainKeys", "")],
    ),
    ("io.k8s.api.core.v1.ServiceStatus", CONDITIONS),
    ("io.k8s.api.core.v1.NamespaceStatus", CONDITIONS),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", CONDITIONS),
    ("io.k8s.api.core.v1.ReplicationControllerStatus", CONDITIONS),
    ("io.k8s.api.core.v1.ComponentStatus", CONDITIONS),
    ("io.k8s.api.apps.v1.DeploymentStatus", CONDITIONS),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", CONDITIONS),
    ("io.k8s.api.apps.v1.DaemonSetStatus", CONDITIONS),
    ("io.k8s.api.apps.v1.StatefulSetStatus", CONDITIONS),
    ("io.k8s.api.batch.v1.JobStatus", CONDITIONS),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        CONDITIONS,
    ),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", CONDITIONS),
];

const CONTAINER: &[PatchField] = &[
    ("ports", "merge", "containerPort"),
    ("env", "merge", "name"),
    ("volumeMounts", "merge", "mountPath"),
    ("volumeDevices", "merge", "devicePath"),
];

const CONDITIONS: &[PatchField] = &[("conditions", "merge", "type")];

fn annotate_patch_strategies(schemas: &mut Map<String, Value>) {
    for (definition, fields) in PATCH_STRATEGIES {
        let Some(properties) = schemas
            .get_mut(*definition)
            .and_then(|schema| schema.get_mut("properties"))
        else {
            continue;
        };
        for (property, strategy, merge_key) in *fields {
            let Some(Value::Object(field)) = properties.get_mut(*property) else {
                continue;
            };
            field.insert("x-kubernetes-patch-strategy".into(), (*strategy).into());
            if !merge_key.is_empty() {
                field.insert("x-kubernetes-patch-merge-key".into(), (*merge_key).into());
            }
        }
    }
}
