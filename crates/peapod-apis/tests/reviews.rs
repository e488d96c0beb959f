//! The create-only kinds that store nothing, as kube-apiserver serves them: a
//! SelfSubjectReview answers the requesting user (`kubectl auth whoami`), a
//! SelfSubjectAccessReview and a SelfSubjectRulesReview answer what the authorizer lets that
//! user do (`kubectl auth can-i`); every other method is refused, and discovery lists `create`
//! alone.

mod common;

use std::sync::Arc;

use axum::http::Method;
use common::{Api, DISCOVERY_V2};
use k8s_openapi::api::authorization::v1::{ResourceRule, SubjectRulesReviewStatus};
use peapod_apiserver::authn::{Authorizer, User};
use peapod_apiserver::request_info::RequestInfo;
use serde_json::{json, Value};

const WHOAMI: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const CAN_I: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
const RULES: &str = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";

fn review() -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
           "metadata": {"creationTimestamp": null}, "status": {"userInfo": {}}})
}

fn access_review(spec: Value) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
           "metadata": {"creationTimestamp": null}, "spec": spec})
}

#[tokio::test]
async fn a_self_subject_review_answers_the_requesting_user() {
    let api = Api::start().await;
    let dana = User::new("dana", &["developers"]);
    let answer = api.post_as(WHOAMI, &review(), dana).await.expect(201);
    assert_eq!(answer["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(answer["kind"], "SelfSubjectReview");
    assert_eq!(
        answer["status"]["userInfo"],
        json!({"username": "dana", "groups": ["developers", "system:authenticated"]})
    );
    assert!(answer["metadata"]["creationTimestamp"].is_string());

    let admin = api.post(WHOAMI, &json!({})).await.expect(201);
    assert_eq!(
        admin["status"]["userInfo"],
        json!({"username": "system:admin", "groups": ["system:masters", "system:authenticated"]})
    );
}

#[tokio::test]
async fn reviews_answer_nothing_but_creates() {
    let api = Api::start().await;
    for path in [WHOAMI, CAN_I, RULES] {
        for method in [Method::GET, Method::DELETE, Method::PUT, Method::PATCH] {
            let refused = api
                .send(method.clone(), path, &[], None, Some(User::admin()))
                .await;
            assert_eq!(refused.status, 405, "{method} {path}: {}", refused.text);
            assert_eq!(refused.json["reason"], "MethodNotAllowed");
            assert_eq!(
                refused.message(),
                "the server does not allow this method on the requested resource"
            );
        }
        let named = api.get(&format!("{path}/mine")).await;
        assert_eq!(named.status, 404, "{path}/mine: {}", named.text);
        let watch = api.get(&format!("{path}?watch=true")).await;
        assert_eq!(watch.status, 405, "watch {path}: {}", watch.text);
    }
    let anonymous = api
        .send(Method::POST, WHOAMI, &[], Some(&review()), None)
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    let other_kind = api.post(WHOAMI, &json!({"kind": "TokenReview"})).await;
    assert_eq!(other_kind.status, 400, "{}", other_kind.text);
    assert_eq!(
        other_kind.message(),
        "the kind in the data (TokenReview) does not match the expected kind (SelfSubjectReview)"
    );
}

#[tokio::test]
async fn an_access_review_asks_the_authorizer() {
    let api = Api::start().await;
    let create_pods = access_review(json!({"resourceAttributes": {
        "namespace": "default", "verb": "create", "resource": "pods"}}));
    let answer = api.post(CAN_I, &create_pods).await.expect(201);
    assert_eq!(answer["kind"], "SelfSubjectAccessReview");
    assert_eq!(answer["spec"], create_pods["spec"]);
    assert_eq!(answer["status"], json!({"allowed": true}));

    let healthz =
        access_review(json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}));
    let answer = api.post(CAN_I, &healthz).await.expect(201);
    assert_eq!(answer["status"]["allowed"], true);
}

/// Lets everyone create reviews and namespaces and read pods, nothing else; its one rule
/// says so.
struct ReadPodsOnly;

impl Authorizer for ReadPodsOnly {
    fn allows(&self, _user: &User, request: &RequestInfo) -> bool {
        let review = request.api_group.starts_with("authorization.k8s.io")
            || request.api_group.starts_with("authentication.k8s.io");
        let namespaces = request.resource == "namespaces" && request.verb == "create";
        review || namespaces || (request.resource == "pods" && request.verb == "get")
    }

    fn rules(&self, _user: &User, _namespace: &str) -> SubjectRulesReviewStatus {
        SubjectRulesReviewStatus {
            resource_rules: vec![ResourceRule {
                verbs: vec!["get".into()],
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".into()]),
                resource_names: None,
            }],
            ..SubjectRulesReviewStatus::default()
        }
    }
}

#[tokio::test]
async fn reviews_answer_what_the_servers_authorizer_decides() {
    let api = Api::start_with(Arc::new(ReadPodsOnly)).await;
    let ask = |verb: &str| {
        access_review(json!({"resourceAttributes": {
            "namespace": "default", "verb": verb, "resource": "pods"}}))
    };
    let answer = api.post(CAN_I, &ask("get")).await.expect(201);
    assert_eq!(answer["status"], json!({"allowed": true}));
    let answer = api.post(CAN_I, &ask("delete")).await.expect(201);
    assert_eq!(answer["status"], json!({"allowed": false}));
    let body = json!({"spec": {"namespace": "default"}});
    let rules = api.post(RULES, &body).await.expect(201);
    assert_eq!(
        rules["status"],
        json!({
            "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
            "nonResourceRules": [],
            "incomplete": false,
        })
    );
}

#[tokio::test]
async fn an_access_review_needs_exactly_one_kind_of_attributes() {
    let api = Api::start().await;
    let neither = api.post(CAN_I, &access_review(json!({}))).await;
    assert_eq!(neither.status, 422, "{}", neither.text);
    assert_eq!(
        neither.message(),
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: \
         Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be \
         specified"
    );
    let both = access_review(json!({
        "resourceAttributes": {"verb": "get", "resource": "pods"},
        "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
    }));
    let both = api.post(CAN_I, &both).await;
    assert_eq!(both.status, 422, "{}", both.text);
    assert!(
        both.message()
            .contains("spec.nonResourceAttributes: Invalid value: {\"path\":\"/healthz\",\"verb\":\"get\"}: cannot be specified in combination with resourceAttributes"),
        "{}",
        both.message()
    );
}

#[tokio::test]
async fn a_rules_review_lists_the_authorizers_rules() {
    let api = Api::start().await;
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                      "spec": {"namespace": "default"}});
    let answer = api.post(RULES, &body).await.expect(201);
    assert_eq!(
        answer["status"],
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })
    );
    let without = api.post(RULES, &json!({"spec": {}})).await;
    assert_eq!(without.status, 400, "{}", without.text);
    assert_eq!(without.message(), "no namespace on request");
}

#[tokio::test]
async fn discovery_lists_reviews_with_create_alone() {
    let api = Api::start().await;
    let authentication = api.get("/apis/authentication.k8s.io/v1").await.expect(200);
    assert_eq!(
        authentication["resources"],
        json!([{"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                "namespaced": false, "kind": "SelfSubjectReview", "verbs": ["create"]}])
    );
    let authorization = api.get("/apis/authorization.k8s.io/v1").await.expect(200);
    let names: Vec<(&str, &Value)> = authorization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), &r["verbs"]))
        .collect();
    let create = json!(["create"]);
    assert_eq!(
        names,
        [
            ("localsubjectaccessreviews", &create),
            ("selfsubjectaccessreviews", &create),
            ("selfsubjectrulesreviews", &create),
            ("subjectaccessreviews", &create)
        ]
    );
    let aggregated = api.get_as("/apis", DISCOVERY_V2).await.expect(200);
    let group = aggregated["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "authentication.k8s.io")
        .cloned()
        .expect("authentication.k8s.io in aggregated discovery");
    let resource = &group["versions"][0]["resources"][0];
    assert_eq!(resource["resource"], "selfsubjectreviews");
    assert_eq!(resource["scope"], "Cluster");
    assert_eq!(resource["verbs"], json!(["create"]));

    let index = api.get("/openapi/v3").await.expect(200);
    let url = index["paths"]["apis/authentication.k8s.io/v1"]["serverRelativeURL"]
        .as_str()
        .expect("an authentication.k8s.io/v1 document");
    let document = api.get(url).await.expect(200);
    let paths = document["paths"].as_object().unwrap();
    let path_names: Vec<&String> = paths.keys().collect();
    assert_eq!(path_names, [WHOAMI]);
    let methods: Vec<&String> = paths[WHOAMI]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "parameters")
        .collect();
    assert_eq!(methods, ["post"]);
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("io.k8s.api.authentication.v1.SelfSubjectReview"));
    assert!(!schemas.contains_key("io.k8s.api.authentication.v1.SelfSubjectReviewList"));
}
