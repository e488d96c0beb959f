//! Ported from kube's `policy_comparator_test.go` (`TestCoversExactMatch`, ...), the
//! `CompactString` cases, and the role/binding storage escalation cases.

use http::Method;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::*;
use crate::rbac::bootstrap::ensure_bootstrap_policy;
use crate::rbac::rules::{rule, url_rule};

fn named(mut rule: PolicyRule, names: &[&str]) -> PolicyRule {
    rule.resource_names = Some(names.iter().map(|n| (*n).to_owned()).collect());
    rule
}

fn covers(owner: Vec<PolicyRule>, servant: Vec<PolicyRule>) -> bool {
    uncovered(&owner, &servant).is_empty()
}

#[test]
fn owners_cover_exact_star_and_subresource_rules() {
    let pods = || rule(&["get"], &["v1"], &["pods"]);
    let log = || rule(&["get"], &["v1"], &["pods/log"]);
    assert!(covers(vec![pods()], vec![pods()]));
    assert!(covers(vec![rule(&["*"], &["*"], &["*"])], vec![pods()]));
    assert!(!covers(
        vec![rule(&["get"], &["v1"], &["builds"])],
        vec![pods()]
    ));
    assert!(covers(
        vec![rule(&["get", "list"], &["v1"], &["pods", "builds"])],
        vec![rule(&["get", "list"], &["v1"], &["builds"])]
    ));
    assert!(covers(
        vec![rule(&["get"], &["v1"], &["*/log"])],
        vec![log()]
    ));
    assert!(!covers(vec![pods()], vec![log()]));
    assert!(!covers(
        vec![pods()],
        vec![rule(&["get"], &["v1"], &["*/log"])]
    ));
}

#[test]
fn resource_names_and_urls_are_covered_as_kube_covers_them() {
    let pods = || rule(&["get"], &[""], &["pods"]);
    let some = || named(pods(), &["a", "b"]);
    assert!(covers(vec![pods()], vec![some()]));
    assert!(!covers(vec![named(pods(), &["a"])], vec![some()]));
    assert!(
        !covers(vec![some()], vec![pods()]),
        "named rights do not cover every name"
    );
    let url = |urls: &[&str]| url_rule(&["get"], urls);
    assert!(covers(vec![url(&["/api/*"])], vec![url(&["/api/v1"])]));
    assert!(covers(
        vec![url_rule(&["*"], &["*"])],
        vec![url(&["/metrics"])]
    ));
    assert!(!covers(vec![url(&["/api"])], vec![url(&["/apis"])]));
}

#[test]
fn missing_rights_are_compacted_and_printed_as_kube_prints_them() {
    let missing = uncovered(
        &[],
        &[
            rule(&["get", "list"], &[""], &["pods"]),
            url_rule(&["get"], &["/healthz"]),
        ],
    );
    let printed: Vec<String> = compact(missing).iter().map(compact_string).collect();
    assert_eq!(
        printed,
        [
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}"#,
            r#"{NonResourceURLs:["/healthz"], Verbs:["get"]}"#,
        ]
    );
}

fn object_meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        ..ObjectMeta::default()
    }
}

#[test]
fn roles_and_bindings_grant_only_what_the_writer_holds() {
    let store = Store::open_in_memory().unwrap();
    ensure_bootstrap_policy(&store).unwrap();
    let authorizer = RbacAuthorizer::new(store.clone());
    store
        .create(Role {
            metadata: object_meta("pod-reader", "default"),
            rules: Some(vec![rule(&["get", "list"], &[""], &["pods"])]),
        })
        .unwrap();
    let alice = User::new("alice", &[]);
    let write = |resource| RbacWrite {
        user: &alice,
        authorizer: &authorizer,
        store: &store,
        resource,
        namespace: "default",
    };
    let role = json!({"metadata": {"name": "mine"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
    let refused = write("roles").check(RBAC_GROUP, &role, None).unwrap_err();
    assert_eq!(
        refused.message,
        "roles.rbac.authorization.k8s.io \"mine\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"
    );
    let binding = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "pod-reader"}});
    assert!(write("rolebindings")
        .check(RBAC_GROUP, &binding, None)
        .is_err());

    store
        .create(RoleBinding {
            metadata: object_meta("alice-reads", "default"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: "pod-reader".into(),
            },
            subjects: Some(vec![Subject {
                kind: "User".into(),
                api_group: Some(RBAC_GROUP.into()),
                name: "alice".into(),
                namespace: None,
            }]),
        })
        .unwrap();
    assert!(write("roles").check(RBAC_GROUP, &role, None).is_ok());
    assert!(write("rolebindings")
        .check(RBAC_GROUP, &binding, None)
        .is_ok());
    let to_admin = json!({"metadata": {"name": "c"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "admin"}});
    assert!(write("rolebindings")
        .check(RBAC_GROUP, &to_admin, None)
        .is_err());

    let admin = User::admin();
    let masters = RbacWrite {
        user: &admin,
        ..write("rolebindings")
    };
    assert!(masters.check(RBAC_GROUP, &to_admin, None).is_ok());
    let list = RequestInfo::parse(&Method::GET, "/api/v1/namespaces/default/pods", None);
    assert!(authorizer.allows(&alice, &list));
}
