//! kube-apiserver's bootstrap policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), as
//! far as peapod serves it: cluster-admin for system:masters; admin, edit and view, filled by
//! aggregation from system:aggregate-to-*; system:basic-user, system:discovery and
//! system:public-info-viewer with their bindings; the roles of the controllers peapod runs,
//! bound to their service accounts; and the rules the Node authorizer gives nodes. Created at start when missing, as kube's `rbac/bootstrap-roles` hook does.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use peapod_store::{Store, StoreError};

use super::rules::{rule, url_rule};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";

/// Creates every bootstrap cluster role and binding the store lacks; existing ones (perhaps
/// changed by the cluster's owner) are left as they are.
pub fn ensure_bootstrap_policy(store: &Store) -> Result<(), StoreError> {
    for role in cluster_roles() {
        let name = role.metadata.name.clone().unwrap_or_default();
        if store.get::<ClusterRole>("", &name)?.is_none() {
            store.create(role)?;
        }
    }
    for binding in cluster_role_bindings() {
        let name = binding.metadata.name.clone().unwrap_or_default();
        if store.get::<ClusterRoleBinding>("", &name)?.is_none() {
            store.create(binding)?;
        }
    }
    Ok(())
}

fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    let mut all: BTreeMap<String, String> = [(
        "kubernetes.io/bootstrapping".to_owned(),
        "rbac-defaults".to_owned(),
    )]
    .into();
    all.extend(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(all),
        annotations: Some(
            [(
                "rbac.authorization.kubernetes.io/autoupdate".to_owned(),
                "true".to_owned(),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    }
}

fn role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta(name, labels),
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

/// A role filled from the roles labelled `aggregate-to-<name>`.
fn aggregated(name: &str, labels: &[(&str, &str)]) -> ClusterRole {
    let key = format!("{AGGREGATE_TO}{name}");
    ClusterRole {
        metadata: meta(name, labels),
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some([(key, "true".to_owned())].into()),
                ..LabelSelector::default()
            }]),
        }),
        rules: Some(Vec::new()),
    }
}

/// kube's default cluster roles.
pub fn cluster_roles() -> Vec<ClusterRole> {
    let read_write: Vec<&str> = READ.iter().chain(WRITE).copied().collect();
    let discovery_urls = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    let public_urls = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    let to = |role: &str| format!("{AGGREGATE_TO}{role}");
    let (to_admin, to_edit, to_view) = (to("admin"), to("edit"), to("view"));
    vec![
        role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        aggregated("admin", &[]),
        aggregated("edit", &[(&to_admin, "true")]),
        aggregated("view", &[(&to_edit, "true")]),
        role(
            "system:aggregate-to-admin",
            &[(&to_admin, "true")],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                rule(&read_write, &[RBAC_GROUP], &["rolebindings", "roles"]),
            ],
        ),
        role(
            "system:aggregate-to-edit",
            &[(&to_edit, "true")],
            vec![
                rule(
                    READ,
                    &[""],
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(&["impersonate"], &[""], &["serviceaccounts"]),
                rule(
                    WRITE,
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                ),
                rule(&["create"], &[""], &["pods/eviction"]),
                rule(
                    WRITE,
                    &[""],
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                ),
                rule(&["create"], &[""], &["serviceaccounts/token"]),
                rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
                rule(WRITE, &["coordination.k8s.io"], &["leases"]),
                rule(WRITE, &["networking.k8s.io"], &["ingresses"]),
            ],
        ),
        role(
            "system:aggregate-to-view",
            &[(&to_view, "true")],
            vec![
                rule(
                    READ,
                    &[""],
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                ),
                rule(
                    READ,
                    &[""],
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                ),
                rule(READ, &[""], &["namespaces"]),
                rule(READ, &["autoscaling"], &["horizontalpodautoscalers"]),
                rule(READ, &["coordination.k8s.io"], &["leases"]),
                rule(READ, &["events.k8s.io"], &["events"]),
                rule(
                    READ,
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status"],
                ),
            ],
        ),
        role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        role(
            "system:discovery",
            &[],
            vec![url_rule(&["get"], &discovery_urls)],
        ),
        role(
            "system:public-info-viewer",
            &[],
            vec![url_rule(&["get"], &public_urls)],
        ),
        role(COREDNS_ROLE, &[], coredns_rules()),
        role(INGRESS_ROLE, &[], ingress_rules()),
        role(NODE_PROXIER_ROLE, &[], node_proxier_rules()),
    ]
    .into_iter()
    .chain(
        CONTROLLERS
            .iter()
            .map(|c| role(&c.role(), &[], (c.rules)())),
    )
    .collect()
}

/// A controller of kube-controller-manager's: the service account it runs as in kube-system,
/// bound to `system:controller:<account>` with kube's `controller_policy.go` rules.
pub struct ControllerRole {
    pub account: &'static str,
    rules: fn() -> Vec<PolicyRule>,
}

impl ControllerRole {
    fn role(&self) -> String {
        format!("system:controller:{}", self.account)
    }
}

/// The service account kube-controller-manager's ReplicaSet controller runs as.
pub const REPLICASET_CONTROLLER: &str = "replicaset-controller";
/// The service account kube-controller-manager's Deployment controller runs as.
pub const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
/// The service account kube-controller-manager's DaemonSet controller runs as.
pub const DAEMON_SET_CONTROLLER: &str = "daemon-set-controller";
/// The service account kube-controller-manager's StatefulSet controller runs as.
pub const STATEFULSET_CONTROLLER: &str = "statefulset-controller";
/// The service account kube-controller-manager's CronJob controller runs as.
pub const CRONJOB_CONTROLLER: &str = "cronjob-controller";
/// The service account kube-controller-manager's Job controller runs as.
pub const JOB_CONTROLLER: &str = "job-controller";
/// The service account kube-controller-manager's disruption controller runs as.
pub const DISRUPTION_CONTROLLER: &str = "disruption-controller";
/// The service account kube-controller-manager's TTL-after-finished controller runs as.
pub const TTL_AFTER_FINISHED_CONTROLLER: &str = "ttl-after-finished-controller";
/// The service account kube-controller-manager's taint-eviction controller runs as.
pub const TAINT_EVICTION_CONTROLLER: &str = "taint-eviction-controller";
/// The service account kube-controller-manager's node lifecycle controller runs as.
pub const NODE_CONTROLLER: &str = "node-controller";
/// The service account kube-controller-manager's PersistentVolume binder runs as.
pub const PERSISTENT_VOLUME_BINDER: &str = "persistent-volume-binder";
/// The service account kube-controller-manager's pvc-protection controller runs as.
pub const PVC_PROTECTION_CONTROLLER: &str = "pvc-protection-controller";
/// The service account kube-controller-manager's pv-protection controller runs as.
pub const PV_PROTECTION_CONTROLLER: &str = "pv-protection-controller";
/// The service account kube-controller-manager's HorizontalPodAutoscaler controller runs as.
pub const HORIZONTAL_POD_AUTOSCALER: &str = "horizontal-pod-autoscaler";
/// The service account kube-controller-manager's endpoints controller runs as.
pub const ENDPOINT_CONTROLLER: &str = "endpoint-controller";
/// The service account kube-controller-manager's EndpointSlice controller runs as.
pub const ENDPOINTSLICE_CONTROLLER: &str = "endpointslice-controller";
/// The service account kube-controller-manager's EndpointSlice mirroring controller runs as.
pub const ENDPOINTSLICE_MIRRORING_CONTROLLER: &str = "endpointslicemirroring-controller";
/// The service account kube's service controller (LoadBalancer status) runs as.
pub const SERVICE_CONTROLLER: &str = "service-controller";

const CONTROLLERS: &[ControllerRole] = &[
    ControllerRole {
        account: REPLICASET_CONTROLLER,
        rules: replicaset_controller_rules,
    },
    ControllerRole {
        account: DEPLOYMENT_CONTROLLER,
        rules: deployment_controller_rules,
    },
    ControllerRole {
        account: DAEMON_SET_CONTROLLER,
        rules: daemon_set_controller_rules,
    },
    ControllerRole {
        account: STATEFULSET_CONTROLLER,
        rules: statefulset_controller_rules,
    },
    ControllerRole {
        account: CRONJOB_CONTROLLER,
        rules: cronjob_controller_rules,
    },
    ControllerRole {
        account: JOB_CONTROLLER,
        rules: job_controller_rules,
    },
    ControllerRole {
        account: DISRUPTION_CONTROLLER,
        rules: disruption_controller_rules,
    },
    ControllerRole {
        account: TTL_AFTER_FINISHED_CONTROLLER,
        rules: ttl_after_finished_controller_rules,
    },
    ControllerRole {
        account: TAINT_EVICTION_CONTROLLER,
        rules: taint_eviction_controller_rules,
    },
    ControllerRole {
        account: NODE_CONTROLLER,
        rules: node_controller_rules,
    },
    ControllerRole {
        account: PERSISTENT_VOLUME_BINDER,
        rules: persistent_volume_binder_rules,
    },
    ControllerRole {
        account: PVC_PROTECTION_CONTROLLER,
        rules: pvc_protection_controller_rules,
    },
    ControllerRole {
        account: PV_PROTECTION_CONTROLLER,
        rules: pv_protection_controller_rules,
    },
    ControllerRole {
        account: HORIZONTAL_POD_AUTOSCALER,
        rules: horizontal_pod_autoscaler_rules,
    },
    ControllerRole {
        account: ENDPOINT_CONTROLLER,
        rules: endpoint_controller_rules,
    },
    ControllerRole {
        account: ENDPOINTSLICE_CONTROLLER,
        rules: endpointslice_controller_rules,
    },
    ControllerRole {
        account: ENDPOINTSLICE_MIRRORING_CONTROLLER,
        rules: endpointslice_mirroring_controller_rules,
    },
    ControllerRole {
        account: SERVICE_CONTROLLER,
        rules: service_controller_rules,
    },
];

fn events_rule() -> PolicyRule {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

/// controller_policy.go's statefulset-controller, with StatefulSetAutoDeletePVC's claim rule.
fn statefulset_controller_rules() -> Vec<PolicyRule> {
    let apps = &["apps"];
    vec![
        rule(&["list", "watch"], &[""], &["pods"]),
        rule(&["get", "list", "watch"], apps, &["statefulsets"]),
        rule(&["update"], apps, &["statefulsets/status"]),
        rule(&["update"], apps, &["statefulsets/finalizers"]),
        rule(
            &["get", "create", "delete", "update", "patch"],
            &[""],
            &["pods"],
        ),
        rule(
            &[
                "get", "create", "delete", "update", "patch", "list", "watch",
            ],
            apps,
            &["controllerrevisions"],
        ),
        rule(&["get", "create"], &[""], &["persistentvolumeclaims"]),
        events_rule(),
        rule(&["update", "delete"], &[""], &["persistentvolumeclaims"]),
    ]
}

fn daemon_set_controller_rules() -> Vec<PolicyRule> {
    let apps = &["extensions", "apps"];
    vec![
        rule(&["get", "list", "watch"], apps, &["daemonsets"]),
        rule(&["update"], apps, &["daemonsets/status"]),
        rule(&["update"], apps, &["daemonsets/finalizers"]),
        rule(&["list", "watch"], &[""], &["nodes"]),
        rule(
            &["list", "watch", "create", "delete", "patch"],
            &[""],
            &["pods"],
        ),
        rule(&["create"], &[""], &["pods/binding"]),
        rule(
            &[
                "get", "list", "watch", "create", "delete", "update", "patch",
            ],
            &["apps"],
            &["controllerrevisions"],
        ),
        events_rule(),
    ]
}

fn replicaset_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update"],
            &["apps"],
            &["replicasets"],
        ),
        rule(&["update"], &["apps"], &["replicasets/status"]),
        rule(&["update"], &["apps"], &["replicasets/finalizers"]),
        rule(
            &["list", "watch", "patch", "create", "delete"],
            &[""],
            &["pods"],
        ),
        events_rule(),
    ]
}

fn job_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update", "patch"],
            &["batch"],
            &["jobs"],
        ),
        rule(&["update"], &["batch"], &["jobs/status"]),
        rule(&["update"], &["batch"], &["jobs/finalizers"]),
        rule(
            &["list", "watch", "create", "delete", "patch"],
            &[""],
            &["pods"],
        ),
        events_rule(),
    ]
}

/// kube's persistent-volume-binder role, without the rules of its removed in-tree plugins
/// (glusterfs endpoints and services, openstack nodes) but their storageclasses read.
fn persistent_volume_binder_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update", "create", "delete"],
            &[""],
            &["persistentvolumes"],
        ),
        rule(&["update"], &[""], &["persistentvolumes/status"]),
        rule(
            &["get", "list", "watch", "update"],
            &[""],
            &["persistentvolumeclaims"],
        ),
        rule(&["update"], &[""], &["persistentvolumeclaims/status"]),
        rule(
            &["list", "watch", "get", "create", "delete"],
            &[""],
            &["pods"],
        ),
        rule(
            &["get", "list", "watch"],
            &["storage.k8s.io"],
            &["storageclasses"],
        ),
        rule(&["watch"], &[""], &["events"]),
        events_rule(),
    ]
}

fn pvc_protection_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update"],
            &[""],
            &["persistentvolumeclaims"],
        ),
        rule(&["list", "watch", "get"], &[""], &["pods"]),
        events_rule(),
    ]
}

fn pv_protection_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update"],
            &[""],
            &["persistentvolumes"],
        ),
        events_rule(),
    ]
}

/// controller_policy.go's endpoint-controller, with the watch on endpoints kube's reads
/// through kube-controller-manager's shared informers.
fn endpoint_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch"], &[""], &["services", "pods"]),
        rule(
            &["get", "list", "create", "update", "delete"],
            &[""],
            &["endpoints"],
        ),
        rule(&["create"], &[""], &["endpoints/restricted"]),
        events_rule(),
        rule(&["watch"], &[""], &["endpoints"]),
    ]
}

/// controller_policy.go's endpointslice-controller, with the watch on endpointslices kube's
/// reads through kube-controller-manager's shared informers.
fn endpointslice_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch"],
            &[""],
            &["services", "pods", "nodes"],
        ),
        rule(&["update"], &[""], &["services/finalizers"]),
        rule(
            &["get", "list", "create", "update", "delete"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
        events_rule(),
        rule(&["watch"], &["discovery.k8s.io"], &["endpointslices"]),
    ]
}

/// controller_policy.go's endpointslicemirroring-controller, with the watch on
/// endpointslices kube's reads through kube-controller-manager's shared informers.
fn endpointslice_mirroring_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch"], &[""], &["services", "endpoints"]),
        rule(&["update"], &[""], &["services/finalizers"]),
        rule(&["update"], &[""], &["endpoints/finalizers"]),
        rule(
            &["get", "list", "create", "update", "delete"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
        events_rule(),
        rule(&["watch"], &["discovery.k8s.io"], &["endpointslices"]),
    ]
}

/// controller_policy.go's disruption-controller, with the pods kube's reads through
/// kube-controller-manager's shared informers.
fn disruption_controller_rules() -> Vec<PolicyRule> {
    let read = &["get", "list", "watch"];
    vec![
        rule(read, &["extensions", "apps"], &["deployments"]),
        rule(read, &["apps", "extensions"], &["replicasets"]),
        rule(read, &[""], &["replicationcontrollers"]),
        rule(read, &["policy"], &["poddisruptionbudgets"]),
        rule(read, &["apps"], &["statefulsets"]),
        rule(&["update"], &["policy"], &["poddisruptionbudgets/status"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(&["get"], &["*"], &["*/scale"]),
        events_rule(),
        rule(&["list", "watch"], &[""], &["pods"]),
    ]
}

fn ttl_after_finished_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["delete", "get", "list", "watch"], &["batch"], &["jobs"]),
        events_rule(),
    ]
}

/// controller_policy.go's taint-eviction-controller, with the pod and node reads kube's
/// does through kube-controller-manager's shared informers.
fn taint_eviction_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["patch"], &[""], &["pods/status"]),
        rule(&["get", "list", "watch", "delete"], &[""], &["pods"]),
        rule(&["get", "list", "watch"], &[""], &["nodes"]),
        events_rule(),
    ]
}

/// kube's node-controller rules for the node lifecycle controller's taints (it watches nodes
/// here, as the other controllers do).
fn node_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "patch", "update"],
            &[""],
            &["nodes"],
        ),
        rule(&["patch", "update"], &[""], &["nodes/status"]),
        events_rule(),
    ]
}

fn cronjob_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update"],
            &["batch"],
            &["cronjobs"],
        ),
        rule(
            &[
                "get", "list", "watch", "create", "update", "delete", "patch",
            ],
            &["batch"],
            &["jobs"],
        ),
        rule(&["update"], &["batch"], &["cronjobs/status"]),
        rule(&["update"], &["batch"], &["cronjobs/finalizers"]),
        rule(&["list", "delete"], &[""], &["pods"]),
        events_rule(),
    ]
}

/// controller_policy.go's horizontal-pod-autoscaler: its HPAs, any kind's scale, the pods and
/// their resource, custom and external metrics.
fn horizontal_pod_autoscaler_rules() -> Vec<PolicyRule> {
    vec![
        rule(READ, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(
            &["update"],
            &["autoscaling"],
            &["horizontalpodautoscalers/status"],
        ),
        rule(&["get", "update"], &["*"], &["*/scale"]),
        rule(&["list"], &[""], &["pods"]),
        rule(&["list"], &["metrics.k8s.io"], &["pods"]),
        rule(&["get", "list"], &["custom.metrics.k8s.io"], &["*"]),
        rule(&["get", "list"], &["external.metrics.k8s.io"], &["*"]),
        events_rule(),
    ]
}

fn deployment_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "update"],
            &["apps"],
            &["deployments"],
        ),
        rule(&["update"], &["apps"], &["deployments/status"]),
        rule(&["update"], &["apps"], &["deployments/finalizers"]),
        rule(
            &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
            &["apps"],
            &["replicasets"],
        ),
        rule(&["get", "list", "watch", "update"], &[""], &["pods"]),
        events_rule(),
    ]
}

fn group(name: &str) -> Subject {
    Subject {
        kind: "Group".to_owned(),
        api_group: Some(RBAC_GROUP.to_owned()),
        name: name.to_owned(),
        namespace: None,
    }
}

fn binding(name: &str, groups: &[&str]) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, &[]),
        role_ref: RoleRef {
            api_group: RBAC_GROUP.to_owned(),
            kind: "ClusterRole".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(groups.iter().map(|g| group(g)).collect()),
    }
}

/// kube's default cluster role bindings.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding("system:discovery", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
    .into_iter()
    .chain(CONTROLLERS.iter().map(controller_binding))
    .chain([coredns_binding(), node_proxier_binding(), ingress_binding()])
    .collect()
}

/// The service account in kube-system the ingress controller runs as, as ingress-nginx's
/// Deployment runs.
pub const INGRESS_CONTROLLER: &str = "peapod-ingress";
const INGRESS_ROLE: &str = "peapod-ingress";

/// ingress-nginx's ClusterRole: what the controller watches, its Ingresses' status and events.
fn ingress_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch"], &[""], &["services", "secrets"]),
        rule(
            &["get", "list", "watch"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
        rule(
            &["get", "list", "watch"],
            &["networking.k8s.io"],
            &["ingresses", "ingressclasses"],
        ),
        rule(
            &["update", "patch"],
            &["networking.k8s.io"],
            &["ingresses/status"],
        ),
        events_rule(),
    ]
}

fn ingress_binding() -> ClusterRoleBinding {
    ClusterRoleBinding {
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            api_group: None,
            name: INGRESS_CONTROLLER.to_owned(),
            namespace: Some("kube-system".to_owned()),
        }]),
        ..binding(INGRESS_ROLE, &[])
    }
}

/// The service account in kube-system the cluster DNS watches the cluster as, as CoreDNS's
/// Deployment runs.
pub const COREDNS: &str = "coredns";
const COREDNS_ROLE: &str = "system:coredns";

/// The rules of CoreDNS's `system:coredns` role (its kubernetes plugin's watches).
fn coredns_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["list", "watch"],
            &[""],
            &["endpoints", "services", "pods", "namespaces"],
        ),
        rule(
            &["list", "watch"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
    ]
}

fn coredns_binding() -> ClusterRoleBinding {
    ClusterRoleBinding {
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            api_group: None,
            name: COREDNS.to_owned(),
            namespace: Some("kube-system".to_owned()),
        }]),
        ..binding(COREDNS_ROLE, &[])
    }
}

/// The user kube-proxy authenticates as, bound to `system:node-proxier`.
pub const KUBE_PROXY_USER: &str = "system:kube-proxy";
const NODE_PROXIER_ROLE: &str = "system:node-proxier";

/// policy.go's `system:node-proxier`: what kube-proxy watches.
fn node_proxier_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["list", "watch"], &[""], &["services", "endpoints"]),
        rule(&["get", "list", "watch"], &[""], &["nodes"]),
        events_rule(),
        rule(
            &["list", "watch"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
    ]
}

fn node_proxier_binding() -> ClusterRoleBinding {
    ClusterRoleBinding {
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            api_group: Some(RBAC_GROUP.to_owned()),
            name: KUBE_PROXY_USER.to_owned(),
            namespace: None,
        }]),
        ..binding(NODE_PROXIER_ROLE, &[])
    }
}

/// controller_policy.go's service-controller (cloud-controller-manager's LoadBalancer
/// status).
fn service_controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch"], &[""], &["services"]),
        rule(&["patch", "update"], &[""], &["services"]),
        rule(&["patch", "update"], &[""], &["services/status"]),
        rule(&["list", "watch"], &[""], &["nodes"]),
        events_rule(),
    ]
}

/// A controller role bound to its service account in kube-system, as kube's
/// `addControllerRole` binds it.
fn controller_binding(controller: &ControllerRole) -> ClusterRoleBinding {
    ClusterRoleBinding {
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            api_group: None,
            name: controller.account.to_owned(),
            namespace: Some("kube-system".to_owned()),
        }]),
        ..binding(&controller.role(), &[])
    }
}

/// kube's `system:node` rules (what the Node authorizer lets a kubelet do), and the pod
/// bindings, namespace and disruption budget reads of kube-scheduler, whose work peapod's
/// kubelet does.
pub fn node_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(READ, &[""], &["services", "namespaces"]),
        rule(
            &["create", "get", "list", "watch", "update", "patch"],
            &[""],
            &["nodes"],
        ),
        rule(&["update", "patch"], &[""], &["nodes/status"]),
        rule(&["create", "update", "patch"], &[""], &["events"]),
        rule(
            &["create", "update", "patch"],
            &["events.k8s.io"],
            &["events"],
        ),
        rule(
            &["get", "list", "watch", "create", "delete"],
            &[""],
            &["pods"],
        ),
        rule(&["update", "patch"], &[""], &["pods/status"]),
        rule(
            &["create"],
            &[""],
            &["pods/eviction", "pods/binding", "bindings"],
        ),
        rule(READ, &[""], &["secrets", "configmaps"]),
        rule(
            &["get"],
            &[""],
            &["persistentvolumeclaims", "persistentvolumes", "endpoints"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(&["get"], &[""], &["serviceaccounts"]),
        rule(READ, &["policy"], &["poddisruptionbudgets"]),
    ]
}
