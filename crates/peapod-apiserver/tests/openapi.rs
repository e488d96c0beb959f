//! `/openapi/v3` and `/openapi/v2` over the whole router with the builtin kinds: the index lists
//! the group versions, each document is served under its hash, and what kubectl looks for is
//! there; the Swagger document has every definition, and its gnostic protobuf decodes by the
//! vendored descriptor to the same document.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::openapi::gnostic;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value as Pb};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

fn server() -> Arc<ApiServer> {
    let node = NodeInfo {
        name: "node".into(),
        addresses: Vec::new,
    };
    let store = Store::open_in_memory().expect("an in-memory store");
    Arc::new(ApiServer::new(peapod_apis::builtin(node), store))
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: Vec<u8>,
}

async fn get(server: &Arc<ApiServer>, uri: &str, accept: &str) -> Answer {
    let mut request = Request::get(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(User::admin());
    let response = server.clone().router().oneshot(request).await.unwrap();
    let header = |name| {
        let value = response.headers().get(name)?;
        value.to_str().ok().map(str::to_owned)
    };
    let (status, content_type) = (response.status(), header("content-type"));
    let cache_control = header("cache-control");
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        cache_control,
        body,
    }
}

fn json(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).expect("a JSON body")
}

#[tokio::test]
async fn kubectl_finds_the_core_document_and_server_side_validation() {
    let server = server();
    let started = Instant::now();
    let index = get(&server, "/openapi/v3?timeout=32s", "application/json").await;
    let built = started.elapsed();
    assert_eq!(index.status, StatusCode::OK);
    let index = json(&index);
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let doc = get(&server, &format!("{url}&timeout=32s"), "application/json").await;
    eprintln!(
        "index built in {built:?}; api/v1 is {} bytes",
        doc.body.len()
    );
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.content_type.as_deref(), Some("application/json"));
    assert_eq!(doc.cache_control.as_deref(), Some("public, immutable"));
    let doc = json(&doc);
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"];
    let gvk = json!({"group": "", "kind": "ConfigMap", "version": "v1"});
    assert_eq!(item["patch"]["x-kubernetes-group-version-kind"], gvk);
    let params = item["patch"]["parameters"].as_array().unwrap();
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
    let pod_gvk = json!([{"group": "", "kind": "Pod", "version": "v1"}]);
    assert_eq!(pod["x-kubernetes-group-version-kind"], pod_gvk);
    assert!(doc["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
}

#[tokio::test]
async fn unknown_group_versions_are_not_found() {
    let server = server();
    let unknown = get(
        &server,
        "/openapi/v3/apis/certificates.k8s.io/v1",
        "application/json",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let metrics = get(&server, "/openapi/v3", "application/json").await;
    assert!(json(&metrics)["paths"]["apis/metrics.k8s.io/v1beta1"].is_null());
}

const GNOSTIC: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The v2 document as JSON and as kubectl 1.20 asks for it, decoded by the vendored
/// descriptor.
async fn swagger_both_ways() -> (Value, DynamicMessage) {
    let server = server();
    let answer = get(&server, "/openapi/v2", "application/json").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let swagger = json(&answer);
    let answer = get(&server, "/openapi/v2", GNOSTIC).await;
    assert_eq!(answer.status, StatusCode::OK);
    let content_type = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
    assert_eq!(answer.content_type.as_deref(), Some(content_type));
    let descriptor = gnostic::document_descriptor();
    let document = DynamicMessage::decode(descriptor, answer.body.as_slice())
        .expect("the body is an openapi.v2.Document");
    (swagger, document)
}

#[tokio::test]
async fn v2_has_every_definition_with_its_gvk() {
    let (swagger, _) = swagger_both_ways().await;
    assert_eq!(swagger["swagger"], "2.0");
    let definitions = swagger["definitions"].as_object().unwrap();
    for (name, group, kind) in [
        ("io.k8s.api.core.v1.Pod", "", "Pod"),
        ("io.k8s.api.core.v1.ConfigMapList", "", "ConfigMapList"),
        ("io.k8s.api.core.v1.Namespace", "", "Namespace"),
        (
            "io.k8s.api.coordination.v1.Lease",
            "coordination.k8s.io",
            "Lease",
        ),
    ] {
        let gvk = json!([{"group": group, "kind": kind, "version": "v1"}]);
        assert_eq!(
            definitions[name]["x-kubernetes-group-version-kind"], gvk,
            "{name}"
        );
    }
    let text = swagger.to_string();
    assert!(!text.contains("#/components/"), "a v3 reference is left");
    let pods = &swagger["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(pods["patch"]["x-kubernetes-action"], "patch");
}

#[tokio::test]
async fn v2_protobuf_decodes_to_the_json_document() {
    let (swagger, document) = swagger_both_ways().await;
    assert_eq!(gnostic_json(&document), swagger);
}

#[tokio::test]
async fn v2_schemas_round_trip_field_by_field() {
    let (swagger, document) = swagger_both_ways().await;
    let definition = |name: &str| pair(&document, &["definitions"], name);
    let property = |schema: &DynamicMessage, name: &str| pair(schema, &["properties"], name);

    let pod = definition("io.k8s.api.core.v1.Pod");
    let gvk = pair_any(&pod, "x-kubernetes-group-version-kind");
    let json_pod = &swagger["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(gvk, json_pod["x-kubernetes-group-version-kind"]);
    assert_eq!(string(&pod, "description"), json_pod["description"]);
    assert_eq!(types(&pod), ["object"]);

    let metadata = property(&pod, "metadata");
    let object_meta = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    assert_eq!(string(&metadata, "_ref"), object_meta);
    assert_eq!(
        string(&metadata, "description"),
        json_pod["properties"]["metadata"]["description"]
    );
    assert!(types(&metadata).is_empty());

    let containers = property(&definition("io.k8s.api.core.v1.PodSpec"), "containers");
    assert_eq!(types(&containers), ["array"]);
    let items = message(&containers, "items");
    let items = items.get_field_by_name("schema").unwrap();
    let items = items.as_list().unwrap();
    assert_eq!(items.len(), 1);
    let container = items[0].as_message().unwrap();
    assert_eq!(
        string(container, "_ref"),
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    assert_eq!(
        pair_any(&containers, "x-kubernetes-patch-merge-key"),
        "name"
    );
    assert_eq!(
        pair_any(&containers, "x-kubernetes-patch-strategy"),
        "merge"
    );

    let data = property(&definition("io.k8s.api.core.v1.ConfigMap"), "data");
    assert_eq!(types(&data), ["object"]);
    let values = message(&data, "additional_properties");
    let (alternative, values) = values.fields().next().expect("one alternative");
    assert_eq!(alternative.name(), "schema");
    assert_eq!(types(values.as_message().unwrap()), ["string"]);
}

/// The message in field `name`.
fn message(message: &DynamicMessage, name: &str) -> DynamicMessage {
    let value = message.get_field_by_name(name).expect("a known field");
    value.as_message().expect("a message field").clone()
}

fn string(message: &DynamicMessage, name: &str) -> String {
    let value = message.get_field_by_name(name).expect("a known field");
    value.as_str().expect("a string field").to_owned()
}

fn types(schema: &DynamicMessage) -> Vec<String> {
    let value = message(schema, "type")
        .get_field_by_name("value")
        .unwrap()
        .into_owned();
    let list = value.as_list().unwrap();
    list.iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The value of the pair named `key` in the map message at `path` (its `additional_properties`).
fn pair(from: &DynamicMessage, path: &[&str], key: &str) -> DynamicMessage {
    let map = path.iter().fold(from.clone(), |m, name| message(&m, name));
    let pairs = map
        .get_field_by_name("additional_properties")
        .unwrap()
        .into_owned();
    let found = pairs
        .as_list()
        .unwrap()
        .iter()
        .map(|p| p.as_message().unwrap().clone())
        .find(|p| string(p, "name") == key)
        .unwrap_or_else(|| panic!("no {key}"));
    message(&found, "value")
}

/// A vendor extension's value, read from its YAML as kubectl reads it.
fn pair_any(from: &DynamicMessage, name: &str) -> Value {
    let extensions = from
        .get_field_by_name("vendor_extension")
        .unwrap()
        .into_owned();
    let found = extensions
        .as_list()
        .unwrap()
        .iter()
        .map(|p| p.as_message().unwrap().clone())
        .find(|p| string(p, "name") == name)
        .unwrap_or_else(|| panic!("no {name}"));
    serde_yaml_ng::from_str(&string(&message(&found, "value"), "yaml")).unwrap()
}

/// A gnostic message back as Swagger JSON, generically: the inverse of the server's encoding.
fn gnostic_json(message: &DynamicMessage) -> Value {
    let descriptor = message.descriptor();
    if descriptor.name() == "Any" {
        return serde_yaml_ng::from_str(&string(message, "yaml")).unwrap();
    }
    let fields: Vec<_> = descriptor.fields().collect();
    if descriptor.oneofs().len() == 1
        && descriptor.oneofs().next().unwrap().fields().len() == fields.len()
    {
        let (_, value) = message.fields().next().expect("one alternative");
        return pb_json(value);
    }
    if let [only] = fields.as_slice() {
        if only.is_list() && !is_named(only) {
            let list = pb_json(&message.get_field(only));
            let single = descriptor.name() != "StringArray" && list.as_array().unwrap().len() == 1;
            return if single { list[0].clone() } else { list };
        }
    }
    let mut object = Map::new();
    for (field, value) in message.fields() {
        if is_named(&field) {
            for pair in value.as_list().unwrap() {
                let pair = pair.as_message().unwrap();
                let value = pair.get_field_by_name("value").unwrap();
                object.insert(string(pair, "name"), pb_json(&value));
            }
        } else {
            let key = if field.name() == "_ref" {
                "$ref"
            } else {
                field.json_name()
            };
            object.insert(key.to_owned(), pb_json(value));
        }
    }
    Value::Object(object)
}

fn is_named(field: &prost_reflect::FieldDescriptor) -> bool {
    let Kind::Message(pair) = field.kind() else {
        return false;
    };
    field.is_list() && pair.name().starts_with("Named")
}

fn pb_json(value: &Pb) -> Value {
    match value {
        Pb::Message(message) => gnostic_json(message),
        Pb::List(items) => items.iter().map(pb_json).collect(),
        Pb::String(text) => json!(text),
        Pb::Bool(flag) => json!(flag),
        Pb::I64(number) => json!(number),
        Pb::F64(number) if number.fract() == 0.0 => json!(*number as i64),
        Pb::F64(number) => json!(number),
        other => panic!("gnostic has no {other:?}"),
    }
}
