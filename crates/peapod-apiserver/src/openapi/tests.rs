use axum::http::StatusCode;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::Value;

use super::document::SCHEMAS;
use super::*;
use crate::registry::{GroupVersionKind, ALL_VERBS};

const POD: &str = "io.k8s.api.core.v1.Pod";
const POD_ITEM: &str = "/api/v1/namespaces/{namespace}/pods/{name}";

fn registry() -> Registry {
    Registry::new([
        Kind::external::<Pod>(ALL_VERBS).with_status(),
        Kind::external::<Namespace>(&["create", "get", "list", "patch"]),
        Kind::external::<Deployment>(ALL_VERBS)
            .with_status()
            .with_scale(crate::registry::WORKLOAD_SCALE),
        Kind::external_named(
            GroupVersionKind::new("metrics.k8s.io", "v1beta1", "PodMetrics"),
            "pods",
            true,
            &["get", "list"],
        ),
    ])
}

fn core() -> Value {
    let registry = registry();
    let kinds: Vec<&Kind> = registry.kinds_in("", "v1").map(|k| &**k).collect();
    document(&kinds).expect("the core document builds")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

fn operations(doc: &Value) -> impl Iterator<Item = (&String, &String, &Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths.iter().flat_map(|(path, item)| {
        let item = item.as_object().expect("a path item");
        item.iter()
            .filter(|(method, _)| *method != "parameters")
            .map(move |(method, op)| (path, method, op))
    })
}

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("$ref") {
                found.push(value);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn kinds_are_named_as_kubernetes_names_them_and_carry_their_gvk() {
    let doc = core();
    assert_eq!(doc["openapi"], "3.0.0");
    let gvk = json!([{"group": "", "kind": "Pod", "version": "v1"}]);
    assert_eq!(schema(&doc, POD)["x-kubernetes-group-version-kind"], gvk);
    let list = json!([{"group": "", "kind": "PodList", "version": "v1"}]);
    assert_eq!(
        schema(&doc, "io.k8s.api.core.v1.PodList")["x-kubernetes-group-version-kind"],
        list
    );
    for name in [
        "io.k8s.api.core.v1.Namespace",
        "io.k8s.api.core.v1.Container",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    ] {
        assert!(schema(&doc, name).is_object(), "{name} missing");
    }
    assert!(
        schema(&doc, "io.k8s.api.apps.v1.Deployment").is_null(),
        "apps is its own document"
    );
    assert!(
        schema(&doc, POD).get("required").is_none(),
        "metadata is not required"
    );
}

#[test]
fn every_ref_resolves_and_stands_alone() {
    let doc = core();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 100);
    for reference in found {
        assert_eq!(
            reference.as_object().map(|o| o.len()),
            Some(1),
            "{reference}"
        );
        let name = reference["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix(SCHEMAS));
        let name = name.unwrap_or_else(|| panic!("not a component: {reference}"));
        assert!(schema(&doc, name).is_object(), "{name} unresolved");
    }
    let described = &schema(&doc, POD)["properties"]["spec"];
    assert_eq!(
        described["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    assert!(described["description"].is_string());
}

#[test]
fn patch_takes_field_validation_and_every_patch_type() {
    let doc = core();
    let patch = &doc["paths"][POD_ITEM]["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    let params = patch["parameters"].as_array().expect("parameters");
    let field_validation = params.iter().find(|p| p["name"] == "fieldValidation");
    assert_eq!(field_validation.map(|p| &p["in"]), Some(&json!("query")));
    for content_type in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(
            patch["requestBody"]["content"][content_type].is_object(),
            "{content_type}"
        );
    }
    let status_patch = &doc["paths"][format!("{POD_ITEM}/status")]["patch"];
    assert!(status_patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation"));
}

#[test]
fn every_operation_names_its_kind_and_action() {
    let doc = core();
    let mut ids = std::collections::HashSet::new();
    for (path, method, op) in operations(&doc) {
        assert!(
            op["x-kubernetes-group-version-kind"]["kind"].is_string(),
            "{method} {path}"
        );
        assert!(op["x-kubernetes-action"].is_string(), "{method} {path}");
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "{method} {path}"
        );
    }
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["x-kubernetes-action"],
        "list"
    );
    assert_eq!(
        doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]["operationId"],
        "createCoreV1NamespacedPod"
    );
}

#[test]
fn a_scale_subresource_takes_and_answers_an_autoscaling_scale() {
    let registry = registry();
    let kinds: Vec<&Kind> = registry.kinds_in("apps", "v1").map(|k| &**k).collect();
    let doc = document(&kinds).expect("the apps document builds");
    let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    let scale_ref = json!({"$ref": format!("{SCHEMAS}io.k8s.api.autoscaling.v1.Scale")});
    for method in ["get", "put", "patch"] {
        let op = &item[method];
        assert_eq!(
            op["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "kind": "Scale", "version": "v1"}),
            "{method}"
        );
        assert_eq!(op["tags"], json!(["apps_v1"]));
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"],
            scale_ref
        );
    }
    assert_eq!(
        item["get"]["operationId"],
        "readAppsV1NamespacedDeploymentScale"
    );
    assert_eq!(
        item["put"]["requestBody"]["content"]["*/*"]["schema"],
        scale_ref
    );
    assert!(item["delete"].is_null());
    assert_eq!(item["parameters"][0]["description"], "name of the Scale");
    assert_eq!(
        schema(&doc, "io.k8s.api.autoscaling.v1.Scale")["x-kubernetes-group-version-kind"],
        json!([{"group": "autoscaling", "kind": "Scale", "version": "v1"}])
    );
}

#[test]
fn operations_follow_the_kinds_verbs_and_scope() {
    let doc = core();
    let item = &doc["paths"]["/api/v1/namespaces/{name}"];
    assert!(item["get"].is_object() && item["patch"].is_object());
    assert!(item["put"].is_null() && item["delete"].is_null());
    let params: Vec<&Value> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(params, [&json!("name"), &json!("pretty")]);
    assert!(
        doc["paths"]["/api/v1/namespaces"]["delete"].is_null(),
        "no deletecollection"
    );
    assert!(doc["paths"]["/api/v1/namespaces/{namespace}/namespaces"].is_null());
}

#[test]
fn list_fields_carry_kubernetes_patch_strategies() {
    let doc = core();
    let containers = &schema(&doc, "io.k8s.api.core.v1.PodSpec")["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let volumes = &schema(&doc, "io.k8s.api.core.v1.PodSpec")["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let finalizers = &schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"]
        ["finalizers"];
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());
}

#[test]
fn every_patch_strategy_names_a_real_field() {
    let registry = registry();
    let mut docs = vec![core()];
    let apps: Vec<&Kind> = registry.kinds_in("apps", "v1").map(|k| &**k).collect();
    docs.push(document(&apps).unwrap());
    for (definition, fields) in document::PATCH_STRATEGIES {
        let Some(found) = docs
            .iter()
            .find_map(|d| d["components"]["schemas"].get(*definition))
        else {
            continue;
        };
        for (property, _, _) in *fields {
            let field = &found["properties"][*property];
            assert!(field.is_object(), "{definition}.{property}");
        }
    }
}

fn reply(path: &str, query: Option<&str>) -> Result<Reply, ApiError> {
    respond(&registry(), path, query, &HeaderMap::new()).expect("an openapi path")
}

fn body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("JSON")
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_index_lists_each_group_version_with_schemas_under_its_hash() {
    let index = body(&reply("/openapi/v3", None).unwrap());
    let paths = index["paths"].as_object().unwrap();
    let names: Vec<&String> = paths.keys().collect();
    assert_eq!(
        names,
        ["api/v1", "apis/apps/v1"],
        "PodMetrics has no schema"
    );
    let url = paths["api/v1"]["serverRelativeURL"].as_str().unwrap();
    let hash = url.strip_prefix("/openapi/v3/api/v1?hash=").unwrap();
    assert_eq!(hash.len(), 128);
    assert!(hash
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
}

#[test]
fn documents_are_immutable_under_their_hash() {
    let index = body(&reply("/openapi/v3/", None).unwrap());
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_owned();
    let (path, query) = url.split_once('?').unwrap();
    let hashed = reply(path, Some(query)).unwrap();
    assert_eq!(hashed.status, StatusCode::OK);
    assert_eq!(header(&hashed, "content-type"), Some("application/json"));
    assert_eq!(header(&hashed, "cache-control"), Some("public, immutable"));
    assert!(header(&hashed, "expires").is_some_and(|date| date.ends_with(" GMT")));
    assert!(body(&hashed)["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"].is_object());
    let plain = reply(path, None).unwrap();
    assert_eq!(
        (plain.status, header(&plain, "cache-control")),
        (StatusCode::OK, None)
    );
    assert_eq!(plain.body, hashed.body);
    let stale = reply(path, Some("hash=ABC")).unwrap();
    assert_eq!(stale.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&stale, "location"), Some(url.as_str()));
}

#[test]
fn unknown_documents_are_not_found_and_other_paths_are_not_ours() {
    let not_found = |path| reply(path, None).map(|r| r.status).unwrap_err().code;
    assert_eq!(
        not_found("/openapi/v3/apis/batch/v1"),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        not_found("/openapi/v3/apis/metrics.k8s.io/v1beta1"),
        StatusCode::NOT_FOUND
    );
    let none = HeaderMap::new();
    assert!(respond(&registry(), "/openapi/v3x", None, &none).is_none());
    assert!(respond(&registry(), "/openapi/v2x", None, &none).is_none());
    assert!(respond(&registry(), "/api/v1", None, &none).is_none());
}

fn swagger_of_registry() -> Value {
    let openapi = OpenApi::build(&registry()).unwrap();
    serde_json::from_slice(&openapi.swagger().unwrap().json).unwrap()
}

#[test]
fn v2_holds_every_group_version_with_definitions_refs() {
    let swagger = swagger_of_registry();
    assert_eq!(swagger["swagger"], "2.0");
    let definitions = &swagger["definitions"];
    let gvk = json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]);
    assert_eq!(
        definitions["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
        gvk
    );
    assert!(swagger["paths"][POD_ITEM].is_object());
    assert!(swagger["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"].is_object());
    let mut found = Vec::new();
    refs(&swagger, &mut found);
    assert!(found.len() > 100);
    for reference in found {
        let target = reference["$ref"].as_str().unwrap();
        let name = target.strip_prefix(swagger::DEFINITIONS);
        let name = name.unwrap_or_else(|| panic!("not a definition: {target}"));
        assert!(definitions[name].is_object(), "{name} unresolved");
    }
    let metadata = &definitions[POD]["properties"]["metadata"];
    assert_eq!(
        metadata["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(metadata["description"].is_string() && metadata.get("allOf").is_none());
}

#[test]
fn v2_operations_take_bodies_as_parameters_and_types_on_parameters() {
    let swagger = swagger_of_registry();
    let item = &swagger["paths"][POD_ITEM];
    let patch = &item["patch"];
    let patch_ref = format!("{}{}", swagger::DEFINITIONS, document::PATCH);
    assert_eq!(
        patch["parameters"][0],
        json!({"in": "body", "name": "body", "required": true, "schema": {"$ref": patch_ref}})
    );
    let field_validation = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fieldValidation")
        .unwrap();
    assert_eq!(field_validation["in"], "query");
    assert_eq!(field_validation["type"], "string");
    assert!(field_validation.get("schema").is_none());
    let consumes = patch["consumes"].as_array().unwrap();
    assert!(consumes.contains(&json!("application/strategic-merge-patch+json")));
    assert_eq!(
        patch["produces"],
        json!(["application/json", "application/yaml"])
    );
    assert_eq!(patch["schemes"], json!(["https"]));
    assert_eq!(
        patch["responses"]["200"],
        json!({"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}})
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(item["get"]["consumes"], json!(["*/*"]));
    assert!(item["get"].get("parameters").is_none());
    let delete_body = &item["delete"]["parameters"][0];
    assert_eq!(delete_body["in"], "body");
    assert!(delete_body.get("required").is_none(), "{delete_body}");
    let name = &item["parameters"][0];
    assert_eq!(
        (&name["in"], &name["required"], &name["type"]),
        (&json!("path"), &json!(true), &json!("string"))
    );
}

fn v2_reply(accept: Option<&str>, if_none_match: Option<&str>) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(accept) = accept {
        headers.insert("accept", accept.parse().unwrap());
    }
    if let Some(tag) = if_none_match {
        headers.insert("if-none-match", tag.parse().unwrap());
    }
    respond(&registry(), "/openapi/v2", None, &headers)
        .expect("an openapi path")
        .expect("an answer")
}

#[test]
fn v2_is_json_or_gnostic_protobuf_with_one_etag() {
    let json = v2_reply(None, None);
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(header(&json, "content-type"), Some(v2::JSON));
    assert_eq!(body(&json)["swagger"], "2.0");
    let protobuf = v2_reply(
        Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
        None,
    );
    assert_eq!(header(&protobuf, "content-type"), Some(v2::PROTOBUF));
    let openapi = cached(&registry()).unwrap();
    assert_eq!(protobuf.body, openapi.swagger().unwrap().protobuf);
    assert_ne!(protobuf.body, json.body);
    let etag = header(&json, "etag").unwrap().to_owned();
    assert_eq!(header(&protobuf, "etag"), Some(etag.as_str()));
    assert_eq!(header(&json, "vary"), Some("Accept"));
    let unchanged = v2_reply(Some(v2::PROTOBUF), Some(&etag));
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.body.is_empty());
    let changed = v2_reply(Some(v2::PROTOBUF), Some("\"OTHER\""));
    assert_eq!(changed.status, StatusCode::OK);
    let yaml = v2_reply(Some("application/yaml"), None);
    assert_eq!(yaml.status, StatusCode::NOT_ACCEPTABLE);
}
