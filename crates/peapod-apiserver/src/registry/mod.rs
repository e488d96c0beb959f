//! The kinds the server serves. A kind is one [`Kind`] entry: its names, scope, verbs and
//! subresources (what discovery shows) and its [`Strategy`] (what the generic handlers ask of
//! it). Adding a kind is one `Kind` value in the list given to [`Registry::new`]. A version kept
//! in another version's storage adds a [`Conversion`] ([`Kind::stored_as`]); a create-only kind
//! that stores nothing is a [`Review`] ([`Kind::review`]). A kind whose objects share a pool
//! of values (cluster IPs, node ports) has an [`Allocator`] ([`Kind::with_allocator`]).

mod allocation;
mod conversion;
mod review;
mod strategy;

use std::collections::HashMap;
use std::sync::Arc;

use peapod_store::{Object, ResourceKey};
use schemars::{JsonSchema, Schema, SchemaGenerator};

pub use allocation::{Allocation, AllocationError, Allocator};
pub use conversion::{Conversion, TypedConversion, VersionConversion};
pub use review::{KindReview, Requester, Review, TypedReview};
pub use strategy::{
    validate_meta, Decoded, DeleteDecision, GarbageCollectionPolicy, KindStrategy, Strategy, Typed,
};

/// group, version and kind of an object or of a subresource's response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GroupVersionKind {
    pub fn new(group: &str, version: &str, kind: &str) -> GroupVersionKind {
        GroupVersionKind {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        }
    }

    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }
}

/// `v1` for the core group, `apps/v1` otherwise.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The verbs of a stored kind, as discovery lists them.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource: `status`, `scale`, `log`, `exec`, `binding`, ...
#[derive(Clone, Debug)]
pub struct Subresource {
    pub name: &'static str,
    /// What the subresource takes and answers (the kind itself for `status`).
    pub response: GroupVersionKind,
    pub verbs: &'static [&'static str],
}

/// Where a kind keeps what its `scale` subresource reads and writes (kube's per-kind
/// `scaleFromX`), as JSON pointers into the object as served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleFields {
    /// The desired count, the one field a scale write changes.
    pub spec_replicas: &'static str,
    /// The observed count.
    pub status_replicas: &'static str,
    /// A metav1 LabelSelector, shown in the Scale as its string form.
    pub selector: &'static str,
}

/// Where ReplicaSets, Deployments and StatefulSets keep them.
pub const WORKLOAD_SCALE: ScaleFields = ScaleFields {
    spec_replicas: "/spec/replicas",
    status_replicas: "/status/replicas",
    selector: "/spec/selector",
};

/// What serves a kind's objects.
#[derive(Clone)]
pub enum Backend {
    /// The object store, through the generic handlers and the kind's strategy.
    Store(Arc<dyn Strategy>),
    /// Creates answered from who asks and kept nowhere (SelfSubjectReview).
    Review(Arc<dyn Review>),
    /// Routes outside the generic handlers (metrics, images): listed in discovery only.
    External,
}

/// One served resource.
#[derive(Clone)]
pub struct Kind {
    pub gvk: GroupVersionKind,
    /// The resource name in URLs: `pods`.
    pub plural: &'static str,
    /// `pod`.
    pub singular: String,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: Vec<Subresource>,
    /// The storage identity (database key) of its objects.
    pub storage: ResourceKey,
    /// How its objects become the stored version's and back, when that is another kind's
    /// (`None`: stored as served).
    pub conversion: Option<Arc<dyn Conversion>>,
    pub backend: Backend,
    /// Adds the kind's OpenAPI schema to a generator and returns a `$ref` to it (`None` for
    /// kinds without a Rust type): what [`crate::openapi`] publishes.
    pub schema: Option<fn(&mut SchemaGenerator) -> Schema>,
    /// What a create on a subresource does (pods/binding, pods/eviction).
    pub actions: Vec<(&'static str, Action)>,
    /// What the `scale` subresource maps to, for kinds that have one.
    pub scale: Option<ScaleFields>,
    /// The pool creates and updates take values from, for kinds that have one.
    pub allocator: Option<Arc<dyn Allocator>>,
}

/// A subresource that acts on its parent when created.
#[derive(Clone)]
pub enum Action {
    /// Changes the parent under the store's lock, outside its update rules (pods/binding).
    UpdateParent(Arc<ActionFn>),
    /// Deletes the parent with the body's `deleteOptions` once its [`GuardFn`] allows, first
    /// changing it with the [`ActionFn`] unless the request is a dry run (pods/eviction).
    DeleteParent(Arc<GuardFn>, Arc<ActionFn>),
    /// Answers with an object made from the parent and the body, keeping nothing
    /// (serviceaccounts/token).
    Answer(Arc<AnswerFn>),
}

/// What an [`Action::Answer`] makes: from the parent (as served), the request body and the
/// store it may read other objects from, the object it answers with.
pub type AnswerFn = dyn Fn(
        &serde_json::Value,
        &serde_json::Value,
        &peapod_store::Store,
    ) -> Result<serde_json::Value, crate::status::ApiError>
    + Send
    + Sync;

/// Whether an [`Action::DeleteParent`] may delete the parent (as served): given whether the
/// request is a dry run and the store it may read and write other objects in, an error
/// refuses the delete.
pub type GuardFn = dyn Fn(&serde_json::Value, bool, &peapod_store::Store) -> Result<Allowed, crate::status::ApiError>
    + Send
    + Sync;

/// How a [`GuardFn`] lets a delete go ahead.
#[derive(Debug)]
pub enum Allowed {
    /// Whatever the parent becomes meanwhile.
    Always,
    /// Only while the parent keeps the resourceVersion the guard judged; otherwise refused
    /// with this error (unless the request gave a resourceVersion of its own).
    IfUnchanged(crate::status::ApiError),
}

/// The change an [`Action::UpdateParent`] makes: the parent and the request body.
pub type ActionFn = dyn Fn(&mut serde_json::Value, &serde_json::Value) -> Result<(), crate::status::ApiError>
    + Send
    + Sync;

impl Kind {
    /// A kind kept in the store, its names and scope taken from k8s-openapi's `Resource`.
    pub fn of<S: KindStrategy>(strategy: S) -> Kind
    where
        S::Object: JsonSchema,
    {
        let gvk = gvk_of::<S::Object>();
        Kind {
            plural: <S::Object as k8s_openapi::Resource>::URL_PATH_SEGMENT,
            singular: gvk.kind.to_lowercase(),
            namespaced: ResourceKey::of::<S::Object>().namespaced(),
            short_names: &[],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: Vec::new(),
            storage: ResourceKey::of::<S::Object>(),
            conversion: None,
            backend: Backend::Store(Arc::new(Typed(strategy))),
            actions: Vec::new(),
            scale: None,
            allocator: None,
            schema: Some(schema_ref::<S::Object>),
            gvk,
        }
    }

    /// A kind served by routes of its own (listed in discovery, answered elsewhere).
    pub fn external<K: Object + JsonSchema>(verbs: &'static [&'static str]) -> Kind {
        let gvk = gvk_of::<K>();
        Kind {
            plural: K::URL_PATH_SEGMENT,
            singular: gvk.kind.to_lowercase(),
            namespaced: ResourceKey::of::<K>().namespaced(),
            short_names: &[],
            categories: &[],
            verbs,
            subresources: Vec::new(),
            storage: ResourceKey::of::<K>(),
            conversion: None,
            backend: Backend::External,
            actions: Vec::new(),
            scale: None,
            allocator: None,
            schema: Some(schema_ref::<K>),
            gvk,
        }
    }

    /// A kind with no Rust type, served by routes of its own (metrics, images).
    pub fn external_named(
        gvk: GroupVersionKind,
        plural: &'static str,
        namespaced: bool,
        verbs: &'static [&'static str],
    ) -> Kind {
        Kind {
            plural,
            singular: gvk.kind.to_lowercase(),
            namespaced,
            short_names: &[],
            categories: &[],
            verbs,
            subresources: Vec::new(),
            storage: ResourceKey::new(&gvk.group, &gvk.kind, plural, namespaced),
            conversion: None,
            backend: Backend::External,
            actions: Vec::new(),
            scale: None,
            allocator: None,
            schema: None,
            gvk,
        }
    }

    /// A create-only kind answered by `review` and never stored (discovery lists `create`).
    pub fn review<R: KindReview>(review: R) -> Kind
    where
        R::Object: JsonSchema,
    {
        let mut kind = Kind::external::<R::Object>(&["create"]);
        kind.backend = Backend::Review(Arc::new(TypedReview(review)));
        kind
    }

    /// Keeps the kind's objects in the storage of `conversion`'s stored kind, converted on
    /// every read and write, as kube-apiserver serves every version of a resource from one
    /// storage version.
    pub fn stored_as<C: VersionConversion>(mut self, conversion: C) -> Kind {
        let served = gvk_of::<C::Served>();
        assert_eq!(
            served, self.gvk,
            "a conversion from {served:?} given to the kind {:?}",
            self.gvk
        );
        self.storage = ResourceKey::of::<C::Stored>();
        self.conversion = Some(Arc::new(TypedConversion(conversion)));
        self
    }

    pub fn short_names(mut self, names: &'static [&'static str]) -> Kind {
        self.short_names = names;
        self
    }

    pub fn categories(mut self, categories: &'static [&'static str]) -> Kind {
        self.categories = categories;
        self
    }

    pub fn verbs(mut self, verbs: &'static [&'static str]) -> Kind {
        self.verbs = verbs;
        self
    }

    /// The `status` subresource (get, patch, update), answering the kind itself.
    pub fn with_status(mut self) -> Kind {
        self.subresources.push(Subresource {
            name: "status",
            response: self.gvk.clone(),
            verbs: &["get", "patch", "update"],
        });
        self
    }

    /// The `scale` subresource (get, patch, update), answering an autoscaling/v1 Scale made
    /// of `fields`.
    pub fn with_scale(mut self, fields: ScaleFields) -> Kind {
        self.subresources.push(Subresource {
            name: "scale",
            response: GroupVersionKind::new("autoscaling", "v1", "Scale"),
            verbs: &["get", "patch", "update"],
        });
        self.scale = Some(fields);
        self
    }

    /// Creates and updates take values from `allocator`'s pool.
    pub fn with_allocator(mut self, allocator: Arc<dyn Allocator>) -> Kind {
        self.allocator = Some(allocator);
        self
    }

    pub fn subresource(mut self, subresource: Subresource) -> Kind {
        self.subresources.push(subresource);
        self
    }

    /// Serves creates on subresource `name` with `action`.
    pub fn action(mut self, name: &'static str, action: Action) -> Kind {
        self.actions.push((name, action));
        self
    }

    pub fn action_of(&self, subresource: &str) -> Option<&Action> {
        self.actions
            .iter()
            .find(|(name, _)| *name == subresource)
            .map(|(_, action)| action)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// `pods`, or `deployments.apps`: how errors name the resource.
    pub fn qualified_resource(&self) -> String {
        if self.gvk.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.gvk.group)
        }
    }

    pub fn api_version(&self) -> String {
        self.gvk.api_version()
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.gvk.kind)
    }

    pub fn strategy(&self) -> Option<&Arc<dyn Strategy>> {
        match &self.backend {
            Backend::Store(strategy) => Some(strategy),
            Backend::Review(_) | Backend::External => None,
        }
    }
}

fn schema_ref<K: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<K>()
}

fn gvk_of<K: k8s_openapi::Resource>() -> GroupVersionKind {
    GroupVersionKind::new(K::GROUP, K::VERSION, K::KIND)
}

/// A group and its versions in the order they were registered (the first is preferred).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub versions: Vec<String>,
}

/// Every served kind, looked up by group, version and resource.
#[derive(Clone)]
pub struct Registry {
    kinds: Vec<Arc<Kind>>,
    index: HashMap<(String, String, String), usize>,
}

impl Registry {
    pub fn new(kinds: impl IntoIterator<Item = Kind>) -> Registry {
        let kinds: Vec<Arc<Kind>> = kinds.into_iter().map(Arc::new).collect();
        let index = kinds
            .iter()
            .enumerate()
            .map(|(at, kind)| {
                let key = (
                    kind.gvk.group.clone(),
                    kind.gvk.version.clone(),
                    kind.plural.to_owned(),
                );
                (key, at)
            })
            .collect();
        Registry { kinds, index }
    }

    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<&Arc<Kind>> {
        let key = (group.to_owned(), version.to_owned(), resource.to_owned());
        self.index.get(&key).map(|&at| &self.kinds[at])
    }

    /// The entry of a typed kind (for in-process clients such as the kubelet).
    pub fn kind_of<K: k8s_openapi::Resource>(&self) -> Option<&Arc<Kind>> {
        self.lookup(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
    }

    pub fn kinds(&self) -> &[Arc<Kind>] {
        &self.kinds
    }

    /// The kinds of one group version, in registration order.
    pub fn kinds_in<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Kind>> + 'a {
        self.kinds
            .iter()
            .filter(move |k| k.gvk.group == group && k.gvk.version == version)
    }

    /// The groups, the core group ("") first, then in registration order.
    pub fn groups(&self) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for kind in &self.kinds {
            let (name, version) = (&kind.gvk.group, &kind.gvk.version);
            match groups.iter_mut().find(|g| &g.name == name) {
                Some(group) if !group.versions.contains(version) => {
                    group.versions.push(version.clone())
                }
                Some(_) => {}
                None => groups.push(Group {
                    name: name.clone(),
                    versions: vec![version.clone()],
                }),
            }
        }
        groups.sort_by_key(|g| !g.name.is_empty());
        groups
    }
}
