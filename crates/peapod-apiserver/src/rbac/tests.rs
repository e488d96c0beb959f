//! Ported from kube's `TestAuthorizer` and `TestAggregatedClusterRole` cases.

use http::Method;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_store::Store;

use super::bootstrap::ensure_bootstrap_policy;
use super::rules::rule;
use super::RbacAuthorizer;
use crate::authn::{Authorizer, User};
use crate::request_info::RequestInfo;

fn authorizer() -> RbacAuthorizer {
    let store = Store::open_in_memory().unwrap();
    ensure_bootstrap_policy(&store).unwrap();
    RbacAuthorizer::new(store)
}

fn request(method: Method, path: &str) -> RequestInfo {
    RequestInfo::parse(&method, path, None)
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..ObjectMeta::default()
    }
}

fn bind(store: &Store, namespace: &str, kind: &str, role: &str, user: &str) {
    store
        .create(RoleBinding {
            metadata: meta(&format!("{role}-{user}"), Some(namespace)),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: kind.into(),
                name: role.into(),
            },
            subjects: Some(vec![Subject {
                kind: "User".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                name: user.into(),
                namespace: None,
            }]),
        })
        .unwrap();
}

#[test]
fn masters_may_do_everything_and_others_nothing_until_bound() {
    let rbac = authorizer();
    let list = request(Method::GET, "/api/v1/namespaces/default/pods");
    assert!(rbac.allows(&User::admin(), &list));
    assert!(rbac.allows(&User::admin(), &request(Method::GET, "/metrics")));
    let alice = User::new("alice", &["dev"]);
    assert!(!rbac.allows(&alice, &list));
    assert!(rbac.allows(&alice, &request(Method::GET, "/healthz")));
    assert!(rbac.allows(
        &alice,
        &request(Method::GET, "/apis/rbac.authorization.k8s.io")
    ));
    let review = request(
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    );
    assert!(rbac.allows(&alice, &review));

    rbac.store
        .create(Role {
            metadata: meta("reader", Some("default")),
            rules: Some(vec![rule(&["get", "list"], &[""], &["pods", "pods/log"])]),
        })
        .unwrap();
    bind(&rbac.store, "default", "Role", "reader", "alice");
    assert!(rbac.allows(&alice, &list));
    let log = request(Method::GET, "/api/v1/namespaces/default/pods/web/log");
    assert!(rbac.allows(&alice, &log));
    let other_namespace = request(Method::GET, "/api/v1/namespaces/other/pods");
    assert!(!rbac.allows(&alice, &other_namespace));
    let everywhere = request(Method::GET, "/api/v1/pods");
    assert!(
        !rbac.allows(&alice, &everywhere),
        "a RoleBinding grants in its namespace only"
    );
    let delete = request(Method::DELETE, "/api/v1/namespaces/default/pods/web");
    assert!(!rbac.allows(&alice, &delete));
}

#[test]
fn view_holds_the_rules_of_roles_aggregated_into_it() {
    let rbac = authorizer();
    let bob = User::new("bob", &[]);
    bind(&rbac.store, "default", "ClusterRole", "view", "bob");
    let pods = request(Method::GET, "/api/v1/namespaces/default/pods");
    assert!(rbac.allows(&bob, &pods));
    let widgets = request(
        Method::GET,
        "/apis/example.com/v1/namespaces/default/widgets",
    );
    assert!(!rbac.allows(&bob, &widgets));
    rbac.store
        .create(ClusterRole {
            metadata: ObjectMeta {
                labels: Some(
                    [(
                        "rbac.authorization.k8s.io/aggregate-to-view".into(),
                        "true".into(),
                    )]
                    .into(),
                ),
                ..meta("widget-reader", None)
            },
            rules: Some(vec![rule(&["list"], &["example.com"], &["widgets"])]),
            ..ClusterRole::default()
        })
        .unwrap();
    assert!(rbac.allows(&bob, &widgets));
    let secrets = request(Method::GET, "/api/v1/namespaces/default/secrets");
    assert!(!rbac.allows(&bob, &secrets), "view does not read secrets");

    let carol = User::new("carol", &[]);
    bind(&rbac.store, "default", "ClusterRole", "admin", "carol");
    assert!(
        rbac.allows(&carol, &widgets),
        "admin aggregates edit, which aggregates view"
    );
    assert!(rbac.allows(&carol, &secrets));
}

#[test]
fn nodes_hold_the_node_rules_and_rules_reviews_list_what_is_held() {
    let rbac = authorizer();
    let node = User::new("system:node:n1", &["system:nodes"]);
    let status = request(Method::PATCH, "/api/v1/namespaces/default/pods/web/status");
    assert!(rbac.allows(&node, &status));
    let lease = request(
        Method::PUT,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
    );
    assert!(rbac.allows(&node, &lease));
    let roles = request(
        Method::GET,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    );
    assert!(!rbac.allows(&node, &roles));

    let alice = User::new("alice", &[]);
    let review = rbac.rules(&alice, "default");
    assert!(!review.incomplete);
    assert!(review.resource_rules.iter().any(|r| r
        .resources
        .as_ref()
        .unwrap()
        .contains(&"selfsubjectaccessreviews".to_owned())));
    assert!(review.non_resource_rules.iter().any(|r| r
        .non_resource_urls
        .as_ref()
        .unwrap()
        .contains(&"/healthz".to_owned())));
    assert!(!review.resource_rules.iter().any(|r| r
        .resources
        .as_ref()
        .unwrap()
        .contains(&"pods".to_owned())));
}

#[test]
fn the_replicaset_controller_may_manage_pods_and_nothing_more() {
    let rbac = authorizer();
    let controller = User::new(
        "system:serviceaccount:kube-system:replicaset-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let sets = "/apis/apps/v1/namespaces/team/replicasets";
    let pods = "/api/v1/namespaces/team/pods";
    let allowed = [
        RequestInfo::parse(
            &Method::GET,
            "/apis/apps/v1/replicasets",
            Some("watch=true"),
        ),
        request(Method::GET, &format!("{sets}/web")),
        request(Method::PUT, &format!("{sets}/web/status")),
        RequestInfo::parse(&Method::GET, "/api/v1/pods", Some("watch=true")),
        request(Method::GET, pods),
        request(Method::POST, pods),
        request(Method::PATCH, &format!("{pods}/web-x7k2p")),
        request(Method::DELETE, &format!("{pods}/web-x7k2p")),
        request(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/team/events",
        ),
    ];
    for request in &allowed {
        assert!(rbac.allows(&controller, request), "{request:?}");
    }
    for denied in [
        request(Method::GET, &format!("{pods}/web-x7k2p")),
        request(Method::DELETE, &format!("{sets}/web")),
        request(Method::GET, "/api/v1/namespaces/team/secrets"),
    ] {
        assert!(!rbac.allows(&controller, &denied), "{denied:?}");
    }
}

#[test]
fn the_statefulset_controller_has_kubes_controller_role() {
    let rbac = authorizer();
    let controller = User::new(
        "system:serviceaccount:kube-system:statefulset-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let sets = "/apis/apps/v1/namespaces/team/statefulsets";
    let revisions = "/apis/apps/v1/namespaces/team/controllerrevisions";
    let pods = "/api/v1/namespaces/team/pods";
    let claims = "/api/v1/namespaces/team/persistentvolumeclaims";
    for allowed in [
        request(Method::GET, &format!("{sets}/web")),
        request(Method::PUT, &format!("{sets}/web/status")),
        request(Method::GET, pods),
        request(Method::POST, pods),
        request(Method::DELETE, &format!("{pods}/web-1")),
        request(Method::POST, revisions),
        request(Method::DELETE, &format!("{revisions}/web-5d4")),
        request(Method::GET, &format!("{claims}/data-web-0")),
        request(Method::POST, claims),
        request(Method::PUT, &format!("{claims}/data-web-0")),
    ] {
        assert!(rbac.allows(&controller, &allowed), "{allowed:?}");
    }
    for denied in [
        request(Method::PUT, &format!("{sets}/web")),
        request(Method::GET, claims),
        request(Method::GET, "/api/v1/namespaces/team/secrets"),
    ] {
        assert!(!rbac.allows(&controller, &denied), "{denied:?}");
    }
}

#[test]
fn the_daemon_set_controller_has_kubes_controller_role() {
    let rbac = authorizer();
    let controller = User::new(
        "system:serviceaccount:kube-system:daemon-set-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let sets = "/apis/apps/v1/namespaces/team/daemonsets";
    let revisions = "/apis/apps/v1/namespaces/team/controllerrevisions";
    let pods = "/api/v1/namespaces/team/pods";
    let allowed = [
        request(Method::GET, &format!("{sets}/agent")),
        request(Method::PUT, &format!("{sets}/agent/status")),
        RequestInfo::parse(&Method::GET, "/api/v1/nodes", Some("watch=true")),
        request(Method::GET, "/api/v1/nodes"),
        request(Method::POST, pods),
        request(Method::DELETE, &format!("{pods}/agent-x7k2p")),
        request(Method::POST, &format!("{pods}/agent-x7k2p/binding")),
        request(Method::POST, revisions),
        request(Method::PUT, &format!("{revisions}/agent-5d4")),
        request(Method::DELETE, &format!("{revisions}/agent-5d4")),
    ];
    for request in &allowed {
        assert!(rbac.allows(&controller, request), "{request:?}");
    }
    for denied in [
        request(Method::PUT, &format!("{sets}/agent")),
        request(Method::GET, "/api/v1/nodes/node1"),
        request(Method::PATCH, "/api/v1/nodes/node1"),
    ] {
        assert!(!rbac.allows(&controller, &denied), "{denied:?}");
    }
}

#[test]
fn the_horizontal_pod_autoscaler_has_kubes_controller_role() {
    let rbac = authorizer();
    let controller = User::new(
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let hpas = "/apis/autoscaling/v2/namespaces/team/horizontalpodautoscalers";
    let allowed = [
        request(Method::GET, hpas),
        request(Method::PUT, &format!("{hpas}/web/status")),
        request(
            Method::GET,
            "/apis/apps/v1/namespaces/team/deployments/web/scale",
        ),
        request(
            Method::PUT,
            "/apis/apps/v1/namespaces/team/statefulsets/db/scale",
        ),
        request(Method::GET, "/api/v1/namespaces/team/pods"),
        request(
            Method::GET,
            "/apis/metrics.k8s.io/v1beta1/namespaces/team/pods",
        ),
        request(Method::POST, "/api/v1/namespaces/team/events"),
    ];
    for request in &allowed {
        assert!(rbac.allows(&controller, request), "{request:?}");
    }
    for denied in [
        request(Method::PUT, &format!("{hpas}/web")),
        request(Method::PUT, "/apis/apps/v1/namespaces/team/deployments/web"),
        request(Method::GET, "/api/v1/namespaces/team/pods/web-1"),
    ] {
        assert!(!rbac.allows(&controller, &denied), "{denied:?}");
    }
}

#[test]
fn edit_writes_and_view_reads_horizontal_pod_autoscalers() {
    let rbac = authorizer();
    let (editor, viewer) = (User::new("eve", &[]), User::new("vic", &[]));
    bind(&rbac.store, "default", "ClusterRole", "edit", "eve");
    bind(&rbac.store, "default", "ClusterRole", "view", "vic");
    let hpas = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    let create = request(Method::POST, hpas);
    let list = request(Method::GET, hpas);
    assert!(rbac.allows(&editor, &create) && rbac.allows(&editor, &list));
    assert!(rbac.allows(&viewer, &list) && !rbac.allows(&viewer, &create));
}

#[test]
fn the_taint_eviction_controller_has_kubes_controller_role() {
    let rbac = authorizer();
    let controller = User::new(
        "system:serviceaccount:kube-system:taint-eviction-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let pods = "/api/v1/namespaces/team/pods";
    for allowed in [
        request(Method::GET, "/api/v1/pods"),
        request(Method::GET, "/api/v1/nodes"),
        request(Method::GET, &format!("{pods}/web")),
        request(Method::PATCH, &format!("{pods}/web/status")),
        request(Method::DELETE, &format!("{pods}/web")),
        request(Method::POST, "/api/v1/namespaces/team/events"),
    ] {
        assert!(rbac.allows(&controller, &allowed), "{allowed:?}");
    }
    for denied in [
        request(Method::POST, pods),
        request(Method::PATCH, &format!("{pods}/web")),
        request(Method::PATCH, "/api/v1/nodes/host"),
        request(Method::GET, "/api/v1/namespaces/team/secrets"),
    ] {
        assert!(!rbac.allows(&controller, &denied), "{denied:?}");
    }
}

#[test]
fn the_endpoint_controllers_have_kubes_controller_roles() {
    let rbac = authorizer();
    let account = |name: &str| {
        User::new(
            format!("system:serviceaccount:kube-system:{name}"),
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
            ],
        )
    };
    let slices = "/apis/discovery.k8s.io/v1/namespaces/team/endpointslices";
    let endpoints = "/api/v1/namespaces/team/endpoints";
    let controller = account("endpoint-controller");
    for allowed in [
        request(Method::GET, "/api/v1/namespaces/team/pods"),
        request(Method::GET, "/api/v1/namespaces/team/services"),
        request(Method::POST, endpoints),
        request(Method::PUT, &format!("{endpoints}/web")),
        request(Method::DELETE, &format!("{endpoints}/web")),
    ] {
        assert!(rbac.allows(&controller, &allowed), "{allowed:?}");
    }
    assert!(!rbac.allows(&controller, &request(Method::POST, slices)));
    let controller = account("endpointslice-controller");
    for allowed in [
        request(Method::GET, "/api/v1/namespaces/team/pods"),
        request(Method::POST, slices),
        request(Method::PUT, &format!("{slices}/web-abcde")),
        request(Method::DELETE, &format!("{slices}/web-abcde")),
    ] {
        assert!(rbac.allows(&controller, &allowed), "{allowed:?}");
    }
    assert!(!rbac.allows(&controller, &request(Method::POST, endpoints)));
    let controller = account("endpointslicemirroring-controller");
    assert!(rbac.allows(&controller, &request(Method::GET, endpoints)));
    assert!(rbac.allows(&controller, &request(Method::POST, slices)));
    assert!(!rbac.allows(
        &controller,
        &request(Method::GET, "/api/v1/namespaces/team/pods")
    ));
}

#[test]
fn the_ingress_controller_reads_what_it_routes_and_writes_ingress_status() {
    let rbac = authorizer();
    let controller = User::new(
        "system:serviceaccount:kube-system:peapod-ingress",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let ingresses = "/apis/networking.k8s.io/v1/namespaces/team/ingresses";
    for allowed in [
        request(Method::GET, ingresses),
        request(Method::GET, "/apis/networking.k8s.io/v1/ingressclasses"),
        request(Method::GET, "/api/v1/namespaces/team/secrets"),
        request(Method::GET, "/api/v1/namespaces/team/services"),
        request(
            Method::GET,
            "/apis/discovery.k8s.io/v1/namespaces/team/endpointslices",
        ),
        request(Method::PATCH, &format!("{ingresses}/web/status")),
        request(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/team/events",
        ),
    ] {
        assert!(rbac.allows(&controller, &allowed), "{allowed:?}");
    }
    for denied in [
        request(Method::PATCH, &format!("{ingresses}/web")),
        request(Method::POST, "/api/v1/namespaces/team/secrets"),
    ] {
        assert!(!rbac.allows(&controller, &denied), "{denied:?}");
    }
}

#[test]
fn edit_writes_and_view_reads_ingresses() {
    let rbac = authorizer();
    let (editor, viewer) = (User::new("eve", &[]), User::new("vic", &[]));
    bind(&rbac.store, "default", "ClusterRole", "edit", "eve");
    bind(&rbac.store, "default", "ClusterRole", "view", "vic");
    let ingresses = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
    let create = request(Method::POST, ingresses);
    let list = request(Method::GET, ingresses);
    let status = request(Method::GET, &format!("{ingresses}/web/status"));
    assert!(rbac.allows(&editor, &create) && rbac.allows(&editor, &list));
    assert!(rbac.allows(&viewer, &list) && rbac.allows(&viewer, &status));
    assert!(!rbac.allows(&viewer, &create));
}
