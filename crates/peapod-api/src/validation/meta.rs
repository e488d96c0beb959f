//! ObjectMeta validation (name, generateName, namespace, labels, annotations, ownerReferences,
//! finalizers) as apimachinery's `ValidateObjectMeta` does it for namespaced objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::names;
use super::{FieldError, FieldPath};

/// 256 KiB, the total size allowed for all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// ValidateObjectMeta for a namespaced object whose name is a DNS-1123 subdomain.
pub fn validate_object_meta(meta: &ObjectMeta, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or_default();
    if !generate_name.is_empty() {
        for msg in names::object_name(generate_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        if generate_name.is_empty() {
            let detail = "name or generateName is required";
            errs.push(FieldError::required(&path.child("name"), detail));
        }
    } else {
        for msg in names::object_name(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, &msg));
        }
    }
    errs.extend(validate_namespace(meta, path));
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or_default(),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref().unwrap_or_default(),
        &path.child("finalizers"),
    ));
    errs
}

/// Kinds that may not own objects (apimachinery's `BannedOwners`).
const BANNED_OWNERS: &[(&str, &str, &str)] = &[("", "v1", "Event")];

/// ValidateOwnerReferences: apiVersion, kind, name and uid set, no banned owner kind, and at
/// most one reference with `controller: true`.
pub fn validate_owner_references(refs: &[OwnerReference], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for (index, reference) in refs.iter().enumerate() {
        errs.extend(validate_owner_reference(reference, &path.index(index)));
        if reference.controller != Some(true) {
            continue;
        }
        let current = format!("{}/{}", reference.kind, reference.name);
        match &first_controller {
            Some(first) => {
                let detail = format!(
                    "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                );
                let value = serde_json::to_value(refs).unwrap_or_default();
                errs.push(FieldError::invalid(path, value, &detail));
            }
            None => first_controller = Some(current),
        }
    }
    errs
}

fn validate_owner_reference(reference: &OwnerReference, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let api_version = reference.api_version.as_str();
    let parsed = parse_group_version(api_version);
    if api_version.is_empty() {
        errs.push(FieldError::required(
            &path.child("apiVersion"),
            "must not be empty",
        ));
    } else if parsed.is_none_or(|(_, version)| version.is_empty()) {
        let detail = "must be <group>/<version> or <version>";
        errs.push(FieldError::invalid(
            &path.child("apiVersion"),
            api_version,
            detail,
        ));
    }
    let required = [
        ("kind", &reference.kind),
        ("name", &reference.name),
        ("uid", &reference.uid),
    ];
    for (field, value) in required {
        if value.is_empty() {
            errs.push(FieldError::required(
                &path.child(field),
                "must not be empty",
            ));
        }
    }
    let (group, version) = parsed.unwrap_or_default();
    if BANNED_OWNERS.contains(&(group, version, reference.kind.as_str())) {
        let detail = format!(
            "{group}/{version}, Kind={} is disallowed from being an owner",
            reference.kind
        );
        let value = serde_json::to_value(reference).unwrap_or_default();
        errs.push(FieldError::invalid(path, value, &detail));
    }
    errs
}

/// apimachinery's `ParseGroupVersion`: `v1` is the core group, `apps/v1` a named one; more
/// than one slash is no group version.
fn parse_group_version(value: &str) -> Option<(&str, &str)> {
    if value.is_empty() || value == "/" {
        return Some(("", ""));
    }
    match value.split_once('/') {
        None => Some(("", value)),
        Some((_, version)) if version.contains('/') => None,
        Some(pair) => Some(pair),
    }
}

/// ValidateFinalizers: qualified names, and never both `orphan` and `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for finalizer in finalizers {
        for msg in names::qualified_name(finalizer) {
            errs.push(FieldError::invalid(path, finalizer, &msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        let value = serde_json::to_value(finalizers).unwrap_or_default();
        let detail = "finalizer orphan and foregroundDeletion cannot be both set";
        errs.push(FieldError::invalid(path, value, detail));
    }
    errs
}

fn validate_namespace(meta: &ObjectMeta, path: &FieldPath) -> Vec<FieldError> {
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let ns_path = path.child("namespace");
    if namespace.is_empty() {
        return vec![FieldError::required(&ns_path, "")];
    }
    names::dns1123_label(namespace)
        .iter()
        .map(|msg| FieldError::invalid(&ns_path, namespace, msg))
        .collect()
}

/// ValidateLabels: keys are qualified names, values label values.
pub fn validate_labels(
    labels: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (key, value) in labels.into_iter().flatten() {
        for msg in names::qualified_name(key) {
            errs.push(FieldError::invalid(path, key, &msg));
        }
        for msg in names::label_value(value) {
            errs.push(FieldError::invalid(path, value, &msg));
        }
    }
    errs
}

/// ValidateAnnotations: keys are case-insensitive qualified names; total size capped.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0;
    for (key, value) in annotations.into_iter().flatten() {
        for msg in names::qualified_name(&key.to_lowercase()) {
            errs.push(FieldError::invalid(path, key, &msg));
        }
        total += key.len() + value.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// ValidateObjectMetaUpdate: identity fields are immutable.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let immutable = [
        ("name", &new.name, &old.name),
        ("namespace", &new.namespace, &old.namespace),
        ("uid", &new.uid, &old.uid),
    ];
    for (field, new_value, old_value) in immutable {
        if new_value != old_value {
            let value = new_value.as_deref().unwrap_or_default();
            errs.push(FieldError::invalid(
                &path.child(field),
                value,
                "field is immutable",
            ));
        }
    }
    if new.creation_timestamp != old.creation_timestamp {
        let value = new
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let field = path.child("creationTimestamp");
        errs.push(FieldError::invalid(&field, value, "field is immutable"));
    }
    errs.extend(validate_labels(new.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        new.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: Option<&str>, generate: Option<&str>, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: name.map(str::to_string),
            generate_name: generate.map(str::to_string),
            namespace: ns.map(str::to_string),
            ..Default::default()
        }
    }

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn root() -> FieldPath {
        FieldPath::new("metadata")
    }

    #[test]
    fn name_required_unless_generate_name() {
        let errs = validate_object_meta(&meta(None, None, Some("default")), &root());
        assert_eq!(
            messages(errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert!(
            validate_object_meta(&meta(None, Some("web-"), Some("default")), &root()).is_empty()
        );
    }

    #[test]
    fn name_and_namespace_formats() {
        let errs = messages(validate_object_meta(
            &meta(Some("Web_1"), None, Some("a.b")),
            &root(),
        ));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with(
            r#"metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain"#
        ));
        assert_eq!(
            errs[1],
            r#"metadata.namespace: Invalid value: "a.b": must not contain dots"#
        );
        let errs = messages(validate_object_meta(&meta(Some("a"), None, None), &root()));
        assert_eq!(errs, vec!["metadata.namespace: Required value"]);
        let errs = messages(validate_object_meta(
            &meta(Some("a"), Some("Bad_"), Some("x")),
            &root(),
        ));
        assert!(
            errs[0].starts_with(r#"metadata.generateName: Invalid value: "Bad_""#),
            "{errs:?}"
        );
    }

    #[test]
    fn labels_and_annotations() {
        let mut m = meta(Some("a"), None, Some("default"));
        m.labels = Some(
            [
                ("bad key".to_string(), "ok".to_string()),
                ("k".to_string(), "bad value".to_string()),
            ]
            .into(),
        );
        m.annotations = Some(
            [
                ("Example.COM/Key".to_string(), "x".to_string()),
                ("a/b/c".to_string(), String::new()),
            ]
            .into(),
        );
        let errs = messages(validate_object_meta(&m, &root()));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with(
            r#"metadata.labels: Invalid value: "bad key": name part must consist of"#
        ));
        assert!(errs[1]
            .starts_with(r#"metadata.labels: Invalid value: "bad value": a valid label must be"#));
        assert!(errs[2]
            .starts_with(r#"metadata.annotations: Invalid value: "a/b/c": a qualified name"#));
        m.labels = None;
        m.annotations = Some([("big".to_string(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT))].into());
        let errs = messages(validate_object_meta(&m, &root()));
        assert_eq!(
            errs,
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            ..Default::default()
        }
    }

    #[test]
    fn owner_references_need_every_coordinate() {
        let mut m = meta(Some("a"), None, Some("default"));
        m.owner_references = Some(vec![
            owner("apps/v1", "ReplicaSet", "web", "u1"),
            owner("", "", "", ""),
            owner("a/b/c", "X", "x", "u3"),
            owner("apps/", "X", "x", "u4"),
        ]);
        let errs = messages(validate_object_meta(&m, &root()));
        assert_eq!(
            errs,
            vec![
                "metadata.ownerReferences[1].apiVersion: Required value: must not be empty",
                "metadata.ownerReferences[1].kind: Required value: must not be empty",
                "metadata.ownerReferences[1].name: Required value: must not be empty",
                "metadata.ownerReferences[1].uid: Required value: must not be empty",
                r#"metadata.ownerReferences[2].apiVersion: Invalid value: "a/b/c": must be <group>/<version> or <version>"#,
                r#"metadata.ownerReferences[3].apiVersion: Invalid value: "apps/": must be <group>/<version> or <version>"#,
            ]
        );
        m.owner_references = Some(vec![owner("v1", "Event", "e", "u")]);
        let errs = messages(validate_object_meta(&m, &root()));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("metadata.ownerReferences[0]: Invalid value: {")
                && errs[0].ends_with("}: /v1, Kind=Event is disallowed from being an owner"),
            "{errs:?}"
        );
    }

    #[test]
    fn at_most_one_owner_reference_is_the_controller() {
        let mut m = meta(Some("a"), None, Some("default"));
        let mut first = owner("apps/v1", "ReplicaSet", "one", "u1");
        first.controller = Some(true);
        let mut second = owner("apps/v1", "ReplicaSet", "two", "u2");
        second.controller = Some(true);
        let third = owner("v1", "ConfigMap", "three", "u3");
        m.owner_references = Some(vec![first.clone(), third, second]);
        let errs = messages(validate_object_meta(&m, &root()));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("metadata.ownerReferences: Invalid value: ["));
        assert!(errs[0].ends_with(
            r#": Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/one and ReplicaSet/two"#
        ));
        m.owner_references = Some(vec![first]);
        assert!(validate_object_meta(&m, &root()).is_empty());
    }

    #[test]
    fn finalizers_are_qualified_names_and_never_orphan_and_foreground() {
        let mut m = meta(Some("a"), None, Some("default"));
        m.finalizers = Some(vec!["example.com/hold".into(), "orphan".into()]);
        assert!(validate_object_meta(&m, &root()).is_empty());
        m.finalizers = Some(vec![
            "orphan".into(),
            "foregroundDeletion".into(),
            "a b".into(),
        ]);
        let errs = messages(validate_object_meta(&m, &root()));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with(r#"metadata.finalizers: Invalid value: "a b": name part"#));
        assert_eq!(
            errs[1],
            r#"metadata.finalizers: Invalid value: ["orphan","foregroundDeletion","a b"]: finalizer orphan and foregroundDeletion cannot be both set"#
        );
    }

    #[test]
    fn identity_is_immutable_on_update() {
        let old = meta(Some("a"), None, Some("default"));
        let new = meta(Some("b"), None, Some("default"));
        let errs = messages(validate_object_meta_update(&new, &old, &root()));
        assert_eq!(
            errs,
            vec![r#"metadata.name: Invalid value: "b": field is immutable"#]
        );
    }
}
