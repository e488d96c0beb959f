//! What server-side apply knows of a kind's fields (SMD's `schema`, which kube-apiserver makes
//! from its OpenAPI): structs (declared fields, unknown ones refused), maps, scalars, and lists
//! that are atomic, sets, or associative by keys.
//!
//! The shapes come from the kind's schemars schema (k8s-openapi's, the one `/openapi/v3`
//! publishes). List and map semantics come, in kube's order, from `x-kubernetes-list-type` /
//! `-list-map-keys` / `-map-type` extensions when a schema has them, from the `+listType`,
//! `+listMapKey` and `+structType=atomic` tags of k8s.io/api where they say more than the
//! patch strategy ([`SSA_LISTS`], [`ATOMIC`]), and otherwise from the strategic merge patch
//! schema ([`BuiltinSchema`]): a merge key makes an associative list, a merge list without key
//! a set, anything else is atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use schemars::generate::SchemaSettings;
use schemars::{Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::path::Pe;
use crate::patch::schema::{BuiltinSchema, ListStrategy, MergeSchema};

/// How a list merges.
#[derive(Clone, Debug, PartialEq)]
pub enum ListKind {
    Atomic,
    /// Scalars, each a member by value.
    Set,
    /// Maps, each a member by these key fields (with the default of a key its entries omit).
    Map(Vec<(String, Option<Value>)>),
}

/// A kind's types.
pub struct TypeSchema {
    definitions: Map<String, Value>,
    root: Option<Value>,
    builtin: BuiltinSchema,
}

/// A type: a schema node (none for untyped values) and the struct field holding it.
#[derive(Clone, Copy, Debug)]
pub struct Ty<'s> {
    node: Option<&'s Value>,
    field_of: Option<(&'s str, &'s str)>,
}

/// A type resolved for one value (SMD's `Atom` after `deduceAtom`).
#[derive(Clone, Debug)]
pub enum Atom<'s> {
    Scalar,
    Struct {
        fields: &'s Map<String, Value>,
        def: Option<&'s str>,
        atomic: bool,
    },
    Map {
        elem: Ty<'s>,
        atomic: bool,
    },
    List {
        elem: Ty<'s>,
        kind: ListKind,
    },
}

impl<'s> Atom<'s> {
    pub fn is_atomic(&self) -> bool {
        match self {
            Atom::Scalar => true,
            Atom::Struct { atomic, .. } | Atom::Map { atomic, .. } => *atomic,
            Atom::List { kind, .. } => *kind == ListKind::Atomic,
        }
    }

    /// The type of field `key` of a struct or map (untyped when undeclared).
    pub fn field(&self, key: &str) -> Ty<'s> {
        match self {
            Atom::Struct { fields, def, .. } => Ty {
                node: fields.get(key),
                field_of: def.zip(fields.get_key_value(key).map(|(k, _)| k.as_str())),
            },
            Atom::Map { elem, .. } => *elem,
            _ => Ty::UNTYPED,
        }
    }

    /// Whether `key` is a declared field of a struct (SMD's `FindField`).
    pub fn declares(&self, key: &str) -> bool {
        matches!(self, Atom::Struct { fields, .. } if fields.contains_key(key))
    }
}

impl<'s> Ty<'s> {
    pub const UNTYPED: Ty<'static> = Ty {
        node: None,
        field_of: None,
    };
}

/// `+structType=atomic` / `+mapType=atomic` of k8s.io/api and apimachinery: definitions, and
/// struct fields as `definition.field`.
const ATOMIC: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.PodSpec.nodeSelector",
    "io.k8s.api.core.v1.ServiceSpec.selector",
    "io.k8s.api.core.v1.ReplicationControllerSpec.selector",
];

/// The definition of `metadata`, whose empty `managedFields` [`TypeSchema::omit_empty`] keeps.
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// A key field of an associative list and its default.
type KeyField = (&'static str, Option<&'static str>);

/// List fields whose `+listType` says more than their patch strategy: (definition.field,
/// keys with their defaults; no keys means atomic).
const SSA_LISTS: &[(&str, &[KeyField])] = &[
    (
        "io.k8s.api.core.v1.Container.ports",
        &[("containerPort", None), ("protocol", Some("TCP"))],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer.ports",
        &[("containerPort", None), ("protocol", Some("TCP"))],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec.ports",
        &[("port", None), ("protocol", Some("TCP"))],
    ),
    (
        "io.k8s.api.core.v1.PodSpec.topologySpreadConstraints",
        &[("topologyKey", None), ("whenUnsatisfiable", None)],
    ),
    (
        "io.k8s.api.core.v1.ResourceRequirements.claims",
        &[("name", None)],
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus.volumeMounts",
        &[("mountPath", None)],
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus.allocatedResourcesStatus",
        &[("name", None)],
    ),
    (
        "io.k8s.api.core.v1.ResourceStatus.resources",
        &[("resourceID", None)],
    ),
    ("io.k8s.api.core.v1.PodStatus.hostIPs", &[]),
];

impl TypeSchema {
    /// The types of a kind with this schemars schema (`None`: untyped, every map granular,
    /// lists as the strategic merge schema of `kind` says).
    pub fn new(kind: &str, schema_of: Option<fn(&mut SchemaGenerator) -> Schema>) -> TypeSchema {
        let builtin = BuiltinSchema::for_kind(kind);
        let Some(schema_of) = schema_of else {
            return TypeSchema {
                definitions: Map::new(),
                root: None,
                builtin,
            };
        };
        let mut generator = SchemaSettings::openapi3().into_generator();
        let root = schema_of(&mut generator).to_value();
        TypeSchema {
            definitions: generator.take_definitions(true),
            root: Some(root),
            builtin,
        }
    }

    /// A schema from JSON definitions and a root node (tests).
    pub fn from_json(kind: &str, root: Value, definitions: Map<String, Value>) -> TypeSchema {
        TypeSchema {
            definitions,
            root: Some(root),
            builtin: BuiltinSchema::for_kind(kind),
        }
    }

    /// The schema of a registered kind, built once per process.
    pub fn cached(
        kind: &str,
        schema_of: Option<fn(&mut SchemaGenerator) -> Schema>,
    ) -> Arc<TypeSchema> {
        type Cache = Mutex<HashMap<(String, usize), Arc<TypeSchema>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let key = (kind.to_owned(), schema_of.map_or(0, |f| f as usize));
        let cache = CACHE.get_or_init(Default::default);
        if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return found.clone();
        }
        let built = Arc::new(TypeSchema::new(kind, schema_of));
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry(key).or_insert(built).clone()
    }

    /// The kind's empty object as kube's typed zero value serializes it: `metadata`, `spec`
    /// and `status` structs, and the required structs and lists below them, are present (the
    /// lists as `null`), so a create does not own them as wholes.
    pub fn zero_object(&self) -> Value {
        let mut out = Value::Object(Map::new());
        if let Some(node) = self.root.as_ref() {
            self.zero_fill(node, &mut out, 0);
        }
        out
    }

    fn zero_fill(&self, node: &Value, out: &mut Value, depth: usize) {
        let (node, _) = self.deref(node);
        let (Some(properties), Some(out)) = (
            node.get("properties").and_then(Value::as_object),
            out.as_object_mut(),
        ) else {
            return;
        };
        let required = node.get("required").and_then(Value::as_array);
        let required = |name: &str| required.is_some_and(|r| r.iter().any(|n| n == name));
        for (name, property) in properties {
            let (body, _) = self.deref(property);
            let is_struct = body.get("properties").is_some();
            let named = matches!(name.as_str(), "metadata" | "spec" | "status");
            if is_struct && (named || required(name)) && depth < 8 {
                let mut child = Value::Object(Map::new());
                self.zero_fill(body, &mut child, depth + 1);
                out.insert(name.clone(), child);
            } else if required(name) && body.get("type") == Some(&json!("array")) {
                out.insert(name.clone(), Value::Null);
            }
        }
    }

    /// Drops the empty lists and maps of optional fields, as Go's `omitempty` leaves them out
    /// of an object that went through its Go type: kube-apiserver decodes every write into the
    /// kind's struct, so neither `labels: {}` (what `kubectl label NAME key-` leaves of the last
    /// label) nor `annotations: {}` (what client-side `kubectl diff` and `apply` send) is ever
    /// stored. Structs stay even when empty (`securityContext: {}`), as Go writes non-pointer
    /// structs, and so do required fields and `metadata.managedFields`, whose `[]` asks the
    /// field manager to reset it.
    pub fn omit_empty(&self, value: &mut Value) {
        if let Some(root) = self.root.as_ref() {
            self.omit_empty_at(root, value, 0);
        }
    }

    fn omit_empty_at(&self, node: &Value, value: &mut Value, depth: usize) {
        const MAX_DEPTH: usize = 64;
        let (node, def) = self.deref(node);
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Object(map) => {
                let Some(properties) = node.get("properties").and_then(Value::as_object) else {
                    if let Some(elem) = node.get("additionalProperties").filter(|e| e.is_object()) {
                        let values = map.values_mut();
                        values.for_each(|v| self.omit_empty_at(elem, v, depth + 1));
                    }
                    return;
                };
                for (name, field) in map.iter_mut() {
                    if let Some(property) = properties.get(name) {
                        self.omit_empty_at(property, field, depth + 1);
                    }
                }
                let required = node.get("required").and_then(Value::as_array);
                let kept = |name: &str| {
                    required.is_some_and(|r| r.iter().any(|n| n == name))
                        || (def == Some(OBJECT_META) && name == "managedFields")
                };
                map.retain(|name, field| {
                    kept(name)
                        || !properties
                            .get(name)
                            .is_some_and(|p| self.empty_of(p, field))
                });
            }
            Value::Array(items) => {
                if let Some(elem) = node.get("items") {
                    items
                        .iter_mut()
                        .for_each(|item| self.omit_empty_at(elem, item, depth + 1));
                }
            }
            _ => {}
        }
    }

    /// Whether `value` of a field typed `property` is an empty list or an empty map (not an
    /// empty struct).
    fn empty_of(&self, property: &Value, value: &Value) -> bool {
        match value {
            Value::Array(items) => items.is_empty(),
            Value::Object(map) if map.is_empty() => {
                let (node, _) = self.deref(property);
                node.get("properties").is_none()
                    && node
                        .get("additionalProperties")
                        .is_some_and(Value::is_object)
            }
            _ => false,
        }
    }

    pub fn root(&self) -> Ty<'_> {
        Ty {
            node: self.root.as_ref(),
            field_of: None,
        }
    }

    /// Follows `$ref` and single-member `allOf`s to the definition's body.
    fn deref<'s>(&'s self, mut node: &'s Value) -> (&'s Value, Option<&'s str>) {
        let mut def = None;
        for _ in 0..16 {
            if let Some(target) = node.get("$ref").and_then(Value::as_str) {
                let name = target.rsplit('/').next().unwrap_or(target);
                match self.definitions.get_key_value(name) {
                    Some((name, body)) => {
                        def = Some(name.as_str());
                        node = body;
                        continue;
                    }
                    None => break,
                }
            }
            match node
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([only]) => node = only,
                _ => break,
            }
        }
        (node, def)
    }

    /// The type `ty` has for `value` at `path`; `None` for a value its type cannot hold (the
    /// walkers treat it as a leaf, and decoding refuses it later).
    /// Without a value, the declared type only (`None` when untyped).
    pub fn atom<'s>(&'s self, ty: Ty<'s>, value: Option<&Value>, path: &[Pe]) -> Option<Atom<'s>> {
        let atom = ty.node.and_then(|outer| {
            let (node, def) = self.deref(outer);
            self.resolve(outer, node, def, ty.field_of, path)
        });
        let Some(value) = value else {
            return atom;
        };
        let fits = match (&atom, value) {
            (None, _) => return Some(self.untyped(value, path)),
            (_, Value::Null) => true,
            (Some(Atom::Scalar), v) => !v.is_object() && !v.is_array(),
            (Some(Atom::Struct { .. } | Atom::Map { .. }), v) => v.is_object(),
            (Some(Atom::List { .. }), v) => v.is_array(),
        };
        if fits {
            atom
        } else {
            None
        }
    }

    /// `outer` is the node as the parent holds it (a `$ref` with extensions beside it), `node`
    /// the definition it leads to.
    fn resolve<'s>(
        &'s self,
        outer: &'s Value,
        node: &'s Value,
        def: Option<&'s str>,
        field_of: Option<(&str, &str)>,
        path: &[Pe],
    ) -> Option<Atom<'s>> {
        if node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return Some(Atom::Scalar);
        }
        let named = |name: &str| ATOMIC.contains(&name);
        let atomic_map = |n: &Value| n.get("x-kubernetes-map-type") == Some(&json!("atomic"));
        let atomic = atomic_map(outer)
            || atomic_map(node)
            || def.is_some_and(named)
            || field_of.is_some_and(|(d, f)| named(&format!("{d}.{f}")));
        let properties = node.get("properties").and_then(Value::as_object);
        match node.get("type").and_then(Value::as_str) {
            Some("object") | None if properties.is_some() => Some(Atom::Struct {
                fields: properties?,
                def,
                atomic,
            }),
            Some("object") => match node.get("additionalProperties") {
                Some(elem @ Value::Object(_)) => Some(Atom::Map {
                    elem: Ty {
                        node: Some(elem),
                        field_of: None,
                    },
                    atomic,
                }),
                _ => None,
            },
            Some("array") => Some(Atom::List {
                elem: Ty {
                    node: node.get("items"),
                    field_of: None,
                },
                kind: self.list_kind(outer, node, field_of, path),
            }),
            Some(_) => Some(Atom::Scalar),
            None => None,
        }
    }

    /// SMD's deduced type: maps are granular, lists as the strategic schema says.
    fn untyped(&self, value: &Value, path: &[Pe]) -> Atom<'_> {
        match value {
            Value::Object(_) => Atom::Map {
                elem: Ty::UNTYPED,
                atomic: false,
            },
            Value::Array(_) => Atom::List {
                elem: Ty::UNTYPED,
                kind: self.builtin_list(path),
            },
            _ => Atom::Scalar,
        }
    }

    fn list_kind(
        &self,
        outer: &Value,
        node: &Value,
        field_of: Option<(&str, &str)>,
        path: &[Pe],
    ) -> ListKind {
        let extension =
            |name: &str| (outer.get(name).or_else(|| node.get(name))).and_then(Value::as_str);
        let element = node.get("items").map(|items| self.deref(items).0);
        let default_of = |key: &str| {
            element
                .and_then(|e| e.pointer(&format!("/properties/{key}/default")))
                .cloned()
        };
        match extension("x-kubernetes-list-type") {
            Some("atomic") => return ListKind::Atomic,
            Some("set") => return ListKind::Set,
            Some("map") => {
                let keys = node
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array);
                let keys = keys.into_iter().flatten().filter_map(Value::as_str);
                return ListKind::Map(keys.map(|k| (k.to_owned(), default_of(k))).collect());
            }
            _ => {}
        }
        if let Some((def, field)) = field_of {
            let name = format!("{def}.{field}");
            if let Some((_, keys)) = SSA_LISTS.iter().find(|(n, _)| *n == name) {
                if keys.is_empty() {
                    return ListKind::Atomic;
                }
                let keys = keys
                    .iter()
                    .map(|(k, d)| (k.to_string(), d.map(Value::from)));
                return ListKind::Map(keys.collect());
            }
        }
        if let Some(strategy) = extension("x-kubernetes-patch-strategy") {
            if strategy.split(',').any(|s| s == "merge") {
                return match extension("x-kubernetes-patch-merge-key") {
                    Some(key) => ListKind::Map(vec![(key.to_owned(), default_of(key))]),
                    None => ListKind::Set,
                };
            }
        }
        self.builtin_list(path)
    }

    fn builtin_list(&self, path: &[Pe]) -> ListKind {
        let names: Vec<&str> = path.iter().filter_map(Pe::name).collect();
        match self.builtin.list_strategy(&names) {
            ListStrategy::Merge { key: Some(key) } => ListKind::Map(vec![(key.to_owned(), None)]),
            ListStrategy::Merge { key: None } => ListKind::Set,
            ListStrategy::Replace => ListKind::Atomic,
        }
    }
}
