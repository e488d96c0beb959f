//! The paths of one kind, in kube-apiserver's shape: collection, item, `status` and
//! all-namespaces paths, each operation tagged with `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind` (what `kubectl explain` and kubectl's field validation
//! look for), writes taking `dryRun`, `fieldManager` and `fieldValidation`.

use serde_json::{json, Map, Value};

use super::document::{gvk_value, reference, scale_gvk, Target, DELETE_OPTIONS, PATCH, STATUS};
use super::gv_path;
use crate::registry::GroupVersionKind;

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml"];

/// An operation on a path, by its `x-kubernetes-action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    List,
    Post,
    DeleteCollection,
    Get,
    Put,
    Patch,
    Delete,
}

/// What an action is: its `x-kubernetes-action`, the kube verb allowing it, its HTTP method,
/// the verb of its operationId and its query parameters.
struct Spec {
    name: &'static str,
    verb: &'static str,
    method: &'static str,
    id: &'static str,
    params: &'static [&'static str],
}

const fn spec(
    name: &'static str,
    verb: &'static str,
    method: &'static str,
    id: &'static str,
    params: &'static [&'static str],
) -> Spec {
    Spec {
        name,
        verb,
        method,
        id,
        params,
    }
}

impl Action {
    fn spec(self) -> Spec {
        match self {
            Action::List => spec("list", "list", "get", "list", LIST_PARAMS),
            Action::Post => spec("post", "create", "post", "create", WRITE_PARAMS),
            Action::DeleteCollection => spec(
                "deletecollection",
                "deletecollection",
                "delete",
                "deleteCollection",
                DELETE_PARAMS,
            ),
            Action::Get => spec("get", "get", "get", "read", &[]),
            Action::Put => spec("put", "update", "put", "replace", WRITE_PARAMS),
            Action::Patch => spec("patch", "patch", "patch", "patch", PATCH_PARAMS),
            Action::Delete => spec("delete", "delete", "delete", "delete", DELETE_PARAMS),
        }
    }
}

const LIST_PARAMS: &[&str] = &[
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &["dryRun", "gracePeriodSeconds", "propagationPolicy"];

const COLLECTION: &[Action] = &[Action::List, Action::Post, Action::DeleteCollection];
const ITEM: &[Action] = &[Action::Get, Action::Put, Action::Patch, Action::Delete];
const STATUS_ITEM: &[Action] = &[Action::Get, Action::Put, Action::Patch];

/// Where an operation lives and what names it.
struct Place<'a> {
    target: &'a Target<'a>,
    /// `Namespaced` (the path has a `{namespace}`) or empty, in operationIds.
    scope: &'static str,
    /// `Status`, `ForAllNamespaces` or empty, after the kind in operationIds.
    suffix: &'static str,
    /// Whether the path ends in `{name}`.
    named: bool,
    /// What the operations take and answer when it is not the kind itself (a `scale`
    /// subresource's Scale): its GVK and component schema.
    response: Option<(GroupVersionKind, &'a str)>,
}

impl Place<'_> {
    fn gvk(&self) -> &GroupVersionKind {
        match &self.response {
            Some((gvk, _)) => gvk,
            None => &self.target.kind.gvk,
        }
    }

    fn schema(&self) -> &str {
        match &self.response {
            Some((_, schema)) => schema,
            None => &self.target.schema,
        }
    }
}

/// The collection, item, all-namespaces, status and scale paths of one kind.
pub(super) fn kind_paths(target: &Target, paths: &mut Map<String, Value>) {
    let kind = target.kind;
    let base = format!("/{}", gv_path(&kind.gvk.group, &kind.gvk.version));
    let (collection, scope) = if kind.namespaced {
        let path = format!("{base}/namespaces/{{namespace}}/{}", kind.plural);
        (path, "Namespaced")
    } else {
        (format!("{base}/{}", kind.plural), "")
    };
    let item = format!("{collection}/{{name}}");
    let place = |suffix, named| Place {
        target,
        scope,
        suffix,
        named,
        response: None,
    };
    insert_path(paths, &collection, place("", false), COLLECTION);
    insert_path(paths, &item, place("", true), ITEM);
    if kind.has_subresource("status") {
        let status = format!("{item}/status");
        insert_path(paths, &status, place("Status", true), STATUS_ITEM);
    }
    if let Some(scale) = &target.scale {
        let path = format!("{item}/scale");
        let place = Place {
            response: Some((scale_gvk(), scale)),
            ..place("Scale", true)
        };
        insert_path(paths, &path, place, STATUS_ITEM);
    }
    if kind.namespaced {
        let all = Place {
            target,
            scope: "",
            suffix: "ForAllNamespaces",
            named: false,
            response: None,
        };
        let path = format!("{base}/{}", kind.plural);
        insert_path(paths, &path, all, &[Action::List]);
    }
}

/// Adds a path item with the operations `verbs` the kind allows, if it allows any.
fn insert_path(paths: &mut Map<String, Value>, path: &str, place: Place, actions: &[Action]) {
    let mut item = Map::new();
    for &action in actions {
        let spec = action.spec();
        if place.target.kind.allows(spec.verb) {
            item.insert(spec.method.into(), operation(&place, action));
        }
    }
    if item.is_empty() {
        return;
    }
    let mut params = Vec::new();
    if place.named {
        let kind = &place.gvk().kind;
        params.push(path_param("name", &format!("name of the {kind}")));
    }
    if !place.scope.is_empty() {
        let description = "object name and auth scope, such as for teams and projects";
        params.push(path_param("namespace", description));
    }
    params.push(query_param("pretty"));
    item.insert("parameters".into(), Value::Array(params));
    paths.insert(path.to_owned(), Value::Object(item));
}

fn operation(place: &Place, action: Action) -> Value {
    let gvk = &place.target.kind.gvk;
    let spec = action.spec();
    let group_version = group_title(&gvk.group, &gvk.version);
    let (scope, kind, suffix) = (place.scope, &gvk.kind, place.suffix);
    let mut op = json!({
        "description": format!("{} {kind}{suffix}", spec.id),
        "operationId": format!("{}{group_version}{scope}{kind}{suffix}", spec.id),
        "parameters": spec.params.iter().map(|p| query_param(p)).collect::<Vec<_>>(),
        "responses": responses(place, action),
        "tags": [tag(&gvk.group, &gvk.version)],
        "x-kubernetes-action": spec.name,
        "x-kubernetes-group-version-kind": gvk_value(place.gvk()),
    });
    if let Some(body) = request_body(place, action) {
        op["requestBody"] = body;
    }
    op
}

fn request_body(place: &Place, action: Action) -> Option<Value> {
    let content = match action {
        Action::Post | Action::Put => json!({"*/*": {"schema": reference(place.schema())}}),
        Action::Patch => PATCH_TYPES
            .iter()
            .map(|t| (t.to_string(), json!({"schema": reference(PATCH)})))
            .collect::<Map<String, Value>>()
            .into(),
        Action::Delete | Action::DeleteCollection => {
            json!({"*/*": {"schema": reference(DELETE_OPTIONS)}})
        }
        Action::List | Action::Get => return None,
    };
    let required = matches!(action, Action::Post | Action::Put | Action::Patch);
    Some(json!({"content": content, "required": required}))
}

fn responses(place: &Place, action: Action) -> Value {
    const OK: (&str, &str) = ("200", "OK");
    const CREATED: (&str, &str) = ("201", "Created");
    const ACCEPTED: (&str, &str) = ("202", "Accepted");
    let (codes, schema): (&[(&str, &str)], String) = match action {
        Action::List => (&[OK], place.target.list()),
        Action::Post => (&[OK, CREATED, ACCEPTED], place.schema().to_owned()),
        Action::Put | Action::Patch => (&[OK, CREATED], place.schema().to_owned()),
        Action::Get => (&[OK], place.schema().to_owned()),
        Action::Delete => (&[OK, ACCEPTED], STATUS.to_owned()),
        Action::DeleteCollection => (&[OK], STATUS.to_owned()),
    };
    let content: Map<String, Value> = RESPONSE_TYPES
        .iter()
        .map(|t| (t.to_string(), json!({"schema": reference(&schema)})))
        .collect();
    let mut responses: Map<String, Value> = codes
        .iter()
        .map(|(code, text)| {
            (
                code.to_string(),
                json!({"content": content, "description": text}),
            )
        })
        .collect();
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(responses)
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the group version in operationIds.
fn group_title(group: &str, version: &str) -> String {
    let group = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut title: String = group.split(['.', '-']).map(capitalize).collect();
    title.push_str(&capitalize(version));
    title
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`: the tag of a group version's operations.
fn tag(group: &str, version: &str) -> String {
    let title = group_title(group, "");
    let mut chars = title.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    format!("{first}{}_{version}", chars.as_str())
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "description": description,
        "in": "path",
        "name": name,
        "required": true,
        "schema": {"type": "string"},
    })
}

/// A query parameter kube-apiserver documents, with its type and meaning.
fn query_param(name: &str) -> Value {
    let (kind, description) = match name {
        "dryRun" => (
            "string",
            "When present, indicates that modifications should not be persisted. Valid values \
             are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => (
            "string",
            "fieldManager is a name associated with the actor or entity that is making these \
             changes. Required for apply requests (application/apply-patch).",
        ),
        "fieldValidation" => (
            "string",
            "fieldValidation instructs the server on how to handle objects in the request \
             (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: \
             drop unknown fields silently. - Warn: drop them with a warning for each. - Strict: \
             fail the request with a BadRequest error naming every unknown and duplicate field.",
        ),
        "force" => (
            "boolean",
            "Force is going to \"force\" Apply requests: the user re-acquires fields owned by \
             other managers. Must be unset for non-apply patch requests.",
        ),
        "gracePeriodSeconds" => (
            "integer",
            "The duration in seconds before the object should be deleted. Zero means delete \
             immediately.",
        ),
        "propagationPolicy" => (
            "string",
            "Whether and how garbage collection will be performed: 'Orphan', 'Background' or \
             'Foreground'.",
        ),
        "continue" => (
            "string",
            "The continue token of the previous page of a list.",
        ),
        "fieldSelector" => ("string", "Restricts the returned objects by their fields."),
        "labelSelector" => ("string", "Restricts the returned objects by their labels."),
        "limit" => (
            "integer",
            "The maximum number of objects to return in one page.",
        ),
        "resourceVersion" => (
            "string",
            "Which resource versions the request may be served from.",
        ),
        "timeoutSeconds" => ("integer", "Timeout for the list/watch call."),
        "watch" => (
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, \
             update, and remove notifications.",
        ),
        _ => ("string", "If 'true', then the output is pretty printed."),
    };
    json!({"description": description, "in": "query", "name": name, "schema": {"type": kind}})
}
